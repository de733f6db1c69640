"""The chaos tier's checker: Jepsen's Kafka anomalies from a recorded history, and the node
logs' health. Pure: it takes what the workload recorded and what was read after the heal, and
returns anomalies; it opens no socket and reads no clock.

What it is given:

- writes: one :class:`Write` per attempt to send a batch (an idempotent writer sends the same
  batch, with the same sequence, until one attempt is acknowledged): ``ok`` with the offsets
  the leader gave, ``failed`` (the leader said it did not append), or ``unknown`` (a timeout,
  a reset, a 5xx: it may or may not be in the log).
- polls: one :class:`Poll` per answer a reader got: the offset it asked from, the records
  (offset, value) it was given, the high watermark (HW) in the answer, and which node answered.
- final: per partition, the whole log read from its leader after the heal, as (offset, value).

The anomalies (Jepsen's names, from its Kafka workload):

- ``lost-write``: an acknowledged value that the final log does not hold at all.
- ``duplicate``: one value at two or more offsets (in the final log, or across what readers saw).
- ``two-values-at-offset``: two different values at one offset, between any of the ack, the
  readers' views and the final log (an acknowledged value moved is reported this way too).
- ``non-monotonic-poll``: an answer whose offsets go back, or start below the offset asked
  for.
- ``skipped-offset``: a reader's view with a hole: the answer starts above the offset asked
  for, or two consecutive records of one answer are more than one apart (no compaction here,
  so offsets are dense).
- ``hw-went-back``: one node's answers to one reader, in one session (no error and no other
  node answering between them), show the HW lower than before. (A new leader's HW may start
  below the old one's, as in Kafka, and so may a restarted leader's, from its checkpoint: only
  a run of answers by one node process is compared.)

Log checks (:func:`check_log`): a Traceback, an ERROR line not allowed by the caller, and one
message template logged more than ``repeat_max`` times (a loop; numbers are masked so
"truncating from 2 to 2" and "from 3 to 3" count as one template).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["ok", "failed", "unknown"]


@dataclass(frozen=True)
class Write:
    """One attempt to send a batch of ``values`` to ``partition``."""

    partition: str
    values: tuple[str, ...]
    outcome: Outcome
    offsets: tuple[int, ...] = ()
    at_s: float = 0.0

    def __post_init__(self) -> None:
        assert self.outcome in ("ok", "failed", "unknown"), self.outcome
        assert self.outcome != "ok" or len(self.offsets) == len(self.values), self


@dataclass(frozen=True)
class Poll:
    """One answer a reader got from ``node``: records from ``asked`` on, and the HW."""

    reader: str
    partition: str
    node: int
    asked: int
    records: tuple[tuple[int, str], ...]
    high_watermark: int
    at_s: float = 0.0
    # The reader's n-th look-up of the leader: after any error it asks again, so a node that
    # restarted (and leads with the HW of its checkpoint) starts a new session.
    session: int = 0


@dataclass(frozen=True)
class Anomaly:
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def check_history(
    writes: Sequence[Write],
    polls: Sequence[Poll],
    final: Mapping[str, Sequence[tuple[int, str]]],
) -> list[Anomaly]:
    """Every anomaly the history shows, in a stable order (kind, then detail)."""
    found: list[Anomaly] = []
    found += _lost_writes(writes, final)
    found += _duplicates(polls, final)
    found += _two_values(writes, polls, final)
    found += _poll_order(polls)
    found += _hw_went_back(polls)
    return sorted(set(found), key=lambda a: (a.kind, a.detail))


def _lost_writes(
    writes: Sequence[Write], final: Mapping[str, Sequence[tuple[int, str]]]
) -> list[Anomaly]:
    held: dict[str, set[str]] = {p: {v for _, v in log} for p, log in final.items()}
    out = []
    for w in writes:
        if w.outcome != "ok":
            continue
        for value, offset in zip(w.values, w.offsets, strict=True):
            if value not in held.get(w.partition, set()):
                out.append(
                    Anomaly("lost-write", f"{w.partition}: {value!r} acknowledged at {offset}")
                )
    return out


def _duplicates(
    polls: Sequence[Poll], final: Mapping[str, Sequence[tuple[int, str]]]
) -> list[Anomaly]:
    offsets_of: dict[tuple[str, str], set[int]] = defaultdict(set)
    for partition, log in final.items():
        for offset, value in log:
            offsets_of[partition, value].add(offset)
    for poll in polls:
        for offset, value in poll.records:
            offsets_of[poll.partition, value].add(offset)
    return [
        Anomaly("duplicate", f"{partition}: {value!r} at offsets {sorted(offsets)}")
        for (partition, value), offsets in offsets_of.items()
        if len(offsets) > 1
    ]


def _two_values(
    writes: Sequence[Write],
    polls: Sequence[Poll],
    final: Mapping[str, Sequence[tuple[int, str]]],
) -> list[Anomaly]:
    values_at: dict[tuple[str, int], set[str]] = defaultdict(set)
    for w in writes:
        if w.outcome == "ok":
            for value, offset in zip(w.values, w.offsets, strict=True):
                values_at[w.partition, offset].add(value)
    for poll in polls:
        for offset, value in poll.records:
            values_at[poll.partition, offset].add(value)
    for partition, log in final.items():
        for offset, value in log:
            values_at[partition, offset].add(value)
    return [
        Anomaly("two-values-at-offset", f"{partition} offset {offset}: {sorted(values)}")
        for (partition, offset), values in values_at.items()
        if len(values) > 1
    ]


def _poll_order(polls: Sequence[Poll]) -> list[Anomaly]:
    out = []
    for poll in polls:
        where = f"{poll.reader} on {poll.partition} from node {poll.node}, asked {poll.asked}"
        expected = poll.asked
        for offset, _ in poll.records:
            if offset < expected:
                out.append(
                    Anomaly("non-monotonic-poll", f"{where}: offset {offset} after {expected - 1}")
                )
            elif offset > expected:
                out.append(
                    Anomaly(
                        "skipped-offset", f"{where}: offsets {expected} to {offset - 1} missing"
                    )
                )
            expected = max(expected, offset + 1)
    return out


def _hw_went_back(polls: Sequence[Poll]) -> list[Anomaly]:
    out = []
    last: dict[tuple[str, str], Poll] = {}
    for poll in polls:
        key = (poll.reader, poll.partition)
        before = last.get(key)
        if (
            before is not None
            and (before.node, before.session) == (poll.node, poll.session)
            and poll.high_watermark < before.high_watermark
        ):
            out.append(
                Anomaly(
                    "hw-went-back",
                    f"{poll.reader} on {poll.partition}: node {poll.node} answered HW "
                    f"{before.high_watermark} then {poll.high_watermark}",
                )
            )
        last[key] = poll
    return out


def longest_gap_s(ack_times: Iterable[float], start_s: float, end_s: float) -> float:
    """The longest stretch of [start_s, end_s] with no acknowledged write in it."""
    times = sorted(t for t in ack_times if start_s <= t <= end_s)
    edges = [start_s, *times, end_s]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


# -- the node logs ----------------------------------------------------------------------------

# "[2026-12-05 18:39:33,123] LEVEL message (logger)", server/logs.py's format.
_LINE = re.compile(r"^\[[^\]]*\] (?P<level>[A-Z]+) (?P<message>.*)$")
_NUMBERS = re.compile(r"\d+")


def check_log(
    node: str,
    text: str,
    *,
    repeat_max: int,
    allowed_errors: Sequence[re.Pattern[str]] = (),
) -> list[Anomaly]:
    """A node log's problems: tracebacks, ERROR lines none of ``allowed_errors`` matches, and
    any message template (numbers masked) logged more than ``repeat_max`` times."""
    out = []
    templates: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("Traceback"):
            out.append(Anomaly("traceback", f"node {node}: {line}"))
        match = _LINE.match(line)
        if match is None:
            continue
        message = match["message"]
        templates[_NUMBERS.sub("N", message)] += 1
        if match["level"] in ("ERROR", "CRITICAL") and not any(
            p.search(message) for p in allowed_errors
        ):
            out.append(Anomaly("error-line", f"node {node}: {line[:300]}"))
    for template, count in templates.items():
        if count > repeat_max:
            out.append(Anomaly("log-loop", f"node {node}: {count} times: {template[:200]}"))
    return out
