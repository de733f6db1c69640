"""What scripts/bench_cleaner.py reads and prints: pure (text in, figures out; figures in,
Markdown out). A line that is not there raises :class:`scripts.bench.parse.ParseError`.

Kafka's cleaner logs one block per clean (LogCleaner's CleanerThread.recordStats, at INFO;
``%,.1f`` is Java's format with a thousands separator)::

    [2026-12-06 11:33:07,944] INFO [kafka-log-cleaner-thread-0]:
    \tLog cleaner thread 0 cleaned log bench-0 (dirty section = [0, 96000])
    \t11.2 MB of log processed in 0.3 seconds (34.6 MB/sec).
    \tIndexed 11.2 MB in 0.2 seconds (73.4 Mb/sec, 47.1% of total time)
    \tBuffer utilization: 0.2%
    \tCleaned 11.2 MB in 0.2 seconds (65.3 Mb/sec, 52.9% of total time)
    \tStart size: 11.2 MB (96,000 messages)
    \tEnd size: 1.2 MB (10,000 messages)
    \t89.2% size reduction (89.6% fewer messages)

MB there is 2^20 bytes; "processed" is the bytes of the segments rewritten (the map's reading
is counted apart, as "Indexed"), and the time is the whole clean, map and rewrite.

Kafka's DumpLogSegments prints a line per batch (``baseOffset: ... isvalid: true``), with
``--deep-iteration`` a line per record (``| offset: ...``), ``Found N invalid bytes at the end
of F`` for a torn tail, ``F passed sanity check.`` per index with ``--index-sanity-check``, and
on stderr its findings: ``Non-consecutive offsets in F`` with ``  A is followed by B`` lines
(what compaction leaves: information, not an error), and the errors of ``--verify-index-only``
(``Mismatches in :F``, ``Found timestamp mismatch in :F``, ``Found out of order timestamp in
:F``, ``The following indexed offsets are not found in the log.``). A failure to read a file
ends it with a Java stack trace and a non-zero exit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from scripts.bench.parse import ParseError

MIB = 1024 * 1024


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@dataclass(frozen=True)
class CleanStats:
    """One clean of one log, in the terms of Kafka's stats block."""

    log: str
    first_dirty_offset: int
    end_offset: int
    mb_processed: float  # MiB of segments rewritten
    seconds: float
    mb_per_s: float
    start_mb: float
    start_records: int
    end_mb: float
    end_records: int


_KAFKA_BLOCK = re.compile(
    r"Log cleaner thread (\d+) cleaned log (\S+) \(dirty section = \[(\d+), (\d+)\]\)\s*\n"
    r"\s*([\d,.]+) MB of log processed in ([\d,.]+) seconds \(([\d,.]+|NaN|Infinity) MB/sec\)\."
    r".*?\n\s*Start size: ([\d,.]+) MB \(([\d,]+) messages\)\s*\n"
    r"\s*End size: ([\d,.]+) MB \(([\d,]+) messages\)",
    re.DOTALL,
)


def kafka_clean_stats(text: str, log: str | None = None) -> list[CleanStats]:
    """Every stats block of Kafka's cleaner in ``text`` (a broker's log), in order; only
    those of ``log`` (a partition directory's name, ``topic-0``) when given."""
    found = []
    for m in _KAFKA_BLOCK.finditer(text):
        if log is not None and m.group(2) != log:
            continue
        rate = m.group(7)
        found.append(
            CleanStats(
                log=m.group(2),
                first_dirty_offset=int(m.group(3)),
                end_offset=int(m.group(4)),
                mb_processed=_number(m.group(5)),
                seconds=_number(m.group(6)),
                mb_per_s=_number(rate) if rate[0].isdigit() else float("inf"),
                start_mb=_number(m.group(8)),
                start_records=int(m.group(9).replace(",", "")),
                end_mb=_number(m.group(10)),
                end_records=int(m.group(11).replace(",", "")),
            )
        )
    return found


def combined(stats: list[CleanStats]) -> CleanStats:
    """Several cleans of one log (Kafka cleans in rounds when its offset map fills) as one:
    sums of sizes, records and time; the rate of the sums."""
    if not stats:
        raise ParseError("no 'Log cleaner thread N cleaned log' block in the broker's log")
    seconds = sum(s.seconds for s in stats)
    mb = sum(s.mb_processed for s in stats)
    return CleanStats(
        log=stats[0].log,
        first_dirty_offset=stats[0].first_dirty_offset,
        end_offset=stats[-1].end_offset,
        mb_processed=mb,
        seconds=seconds,
        mb_per_s=mb / seconds if seconds > 0 else float("inf"),
        start_mb=sum(s.start_mb for s in stats),
        start_records=sum(s.start_records for s in stats),
        end_mb=sum(s.end_mb for s in stats),
        end_records=sum(s.end_records for s in stats),
    )


# -- DumpLogSegments -------------------------------------------------------------------------

_NON_CONSECUTIVE = re.compile(r"^(Non-consecutive offsets in .*|\s+-?\d+ is followed by \d+)$")
# log4j lines of the tool itself (TOOLS_LOG4J's pattern): a WARN is not a finding about files.
_LOG4J_WARN = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+\] WARN ")
_INVALID_TAIL = re.compile(r"^Found (\d+) invalid bytes at the end of (.*)$")


@dataclass
class DumpFindings:
    """What DumpLogSegments said about a set of files: counts, and every error line."""

    files: int = 0
    batches: int = 0
    records: int = 0
    gaps: int = 0  # "A is followed by B" pairs: compaction's gaps (information)
    sane_indexes: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def merge(self, other: DumpFindings) -> DumpFindings:
        return DumpFindings(
            self.files + other.files,
            self.batches + other.batches,
            self.records + other.records,
            self.gaps + other.gaps,
            self.sane_indexes + other.sane_indexes,
            self.errors + other.errors,
        )


def dump_stdout_findings(lines: Iterable[str], findings: DumpFindings) -> None:
    """Counts DumpLogSegments' stdout into ``findings``. Lines are read one by one (a
    deep iteration of a large log prints hundreds of MB); a record's printed payload may hold
    a newline, so only lines that start as the tool starts its own are read."""
    for line in lines:
        if line.startswith("| offset: "):
            findings.records += 1
        elif line.startswith("baseOffset: "):
            findings.batches += 1
            if not line.rstrip().endswith("isvalid: true"):
                findings.errors.append(line.rstrip()[:300])
        elif line.startswith("Dumping "):
            findings.files += 1
        elif line.rstrip("\n").endswith(" passed sanity check."):
            findings.sane_indexes += 1
        elif _INVALID_TAIL.match(line.rstrip("\n")):
            findings.errors.append(line.rstrip("\n"))


def dump_stderr_findings(text: str, returncode: int, findings: DumpFindings) -> None:
    """Reads DumpLogSegments' stderr and exit status into ``findings``: the non-consecutive
    offsets are counted as gaps; every other line (but the tool's own WARN lines) is an
    error, as is a non-zero exit."""
    for line in text.splitlines():
        if not line.strip() or _LOG4J_WARN.match(line):
            continue
        if _NON_CONSECUTIVE.match(line):
            if "is followed by" in line and not line.lstrip().startswith("-1 "):
                findings.gaps += 1
            continue
        findings.errors.append(line[:300])
    if returncode != 0:
        findings.errors.append(f"DumpLogSegments exited {returncode}")


# -- the table -------------------------------------------------------------------------------

Figures = Mapping[str, Mapping[str, float]]  # side ("kafka", "ours") -> key -> value
SIDES = ("kafka", "ours")
SIDE_TITLES = {"kafka": "Kafka 4.4.0", "ours": "ours"}


def _two(value: float) -> str:
    return f"{value:,.2f}"


def _one(value: float) -> str:
    return f"{value:,.1f}"


def _int(value: float) -> str:
    return f"{value:,.0f}"


def throttle_label(throttle_bytes_per_s: int | None) -> str:
    if throttle_bytes_per_s is None:
        return "no throttle"
    if throttle_bytes_per_s % MIB == 0:
        return f"throttle {throttle_bytes_per_s // MIB} MiB/s"
    return f"throttle {throttle_bytes_per_s:,} B/s"


def figure_keys(run: str) -> list[tuple[str, str, bool]]:
    """(key, label suffix, whether a ratio is shown) of one clean's rows."""
    return [
        (f"mb_per_s/{run}", "MB/s", True),
        (f"seconds/{run}", "time, s", True),
        (f"start_mb/{run}", "cleaned section before, MB", False),
        (f"start_records/{run}", "cleaned section before, records", False),
        (f"end_mb/{run}", "cleaned section after, MB", False),
        (f"end_records/{run}", "cleaned section after, records", False),
        (f"log_bytes_after/{run}", "whole log after, bytes", False),
    ]


_SHOW = {
    "mb_per_s": _two,
    "seconds": _two,
    "start_mb": _one,
    "end_mb": _one,
    "start_records": _int,
    "end_records": _int,
    "log_bytes_after": _int,
}


def figures_of(stats: CleanStats, run: str) -> dict[str, float]:
    """A clean's figures under the table's keys for ``run`` (a throttle label)."""
    return {
        f"mb_per_s/{run}": stats.mb_per_s,
        f"seconds/{run}": stats.seconds,
        f"start_mb/{run}": stats.start_mb,
        f"start_records/{run}": float(stats.start_records),
        f"end_mb/{run}": stats.end_mb,
        f"end_records/{run}": float(stats.end_records),
    }


def render(figures: Figures, runs: list[str]) -> str:
    """The Markdown table: figure | Kafka 4.4.0 | ours | ours/Kafka (for rates and times;
    above 1 is better for MB/s, below 1 for time). ``n/a``: not measured or failed."""
    header = ["figure", SIDE_TITLES["kafka"], SIDE_TITLES["ours"], "ours/Kafka"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    before = "log_bytes_before"
    rows: list[tuple[str, str, bool]] = [(before, "whole log before the clean, bytes", False)]
    for run in runs:
        rows += [(k, f"{run}: {label}", ratio) for k, label, ratio in figure_keys(run)]
    for key, label, with_ratio in rows:
        show = _SHOW.get(key.split("/")[0], _int)
        values = [figures.get(side, {}).get(key) for side in SIDES]
        cells = [label] + ["n/a" if v is None else show(v) for v in values]
        kafka, ours = values
        if with_ratio and kafka is not None and ours is not None and kafka > 0:
            cells.append(f"{ours / kafka:.2f}")
        else:
            cells.append("-" if not with_ratio else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
