"""Kafka 4.4.0's own checks of a partition directory our storage wrote (compacted or not):
scripts/bench_cleaner.py's ``--check-with-kafka``, usable from anywhere with a Kafka cache.

1. :func:`dump_log_segments`: Kafka's DumpLogSegments (``kafka-dump-log.sh``) over every
   ``.log`` (``--deep-iteration --print-data-log``: every batch's CRC, every record decoded)
   and every ``.index``/``.timeindex`` (``--index-sanity-check``, the check a broker makes at
   start to decide whether to rebuild an index, then ``--verify-index-only``: each entry
   against the batches it points at). Non-consecutive offsets are counted as compaction's
   gaps, not errors; anything else it complains of is an error
   (:mod:`scripts.bench.cleaner_stats` reads its output).
2. :func:`serve_unchanged`: "a Kafka broker serves them unchanged". A one-node Kafka (its own
   cleaner off, so nothing but loading touches the files) creates the topic, stops (a clean
   shutdown: it will trust its checkpoints at the next start instead of recovering), gets our
   segment files and leader-epoch checkpoint in place of its own (its ``partition.metadata``
   stays: the topic id is Kafka's), its recovery point, high watermark and log start
   checkpoints set to our log's, starts again, and Kafka's consumer reads the partition from
   its first offset (KafkaProbe's ``read-partition``); every (offset, timestamp, key, value) is
   compared with what our files hold, and every file we put there is compared byte for byte
   with what the running broker has (an active segment's index may have been grown by Kafka
   for appends: equal up to our length and zeros after it counts as unchanged).

The same machinery checks a whole node (tests/compat/test_kafka_reads_our_files.py):
:func:`dump_log_dirs` runs DumpLogSegments once over every file of many partition
directories, and :func:`transplant` and :func:`set_checkpoint_entries` put a node's partition
directories in place of a stopped Kafka node's, for topics that node created.

From the command line, on any partition directory (a node's, stopped, or a copy)::

    .venv/bin/python -m scripts.bench.kafka_check DIR [--topic T] [--config k=v ...]
        [--no-serve] [--cache DIR]

prints both verdicts and exits 0 when Kafka found nothing wrong, 1 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scripts.bench import kafka_dist
from scripts.bench.cleaner_stats import DumpFindings, dump_stderr_findings, dump_stdout_findings
from scripts.bench.kafka_dist import KafkaDist
from scripts.bench.kafka_side import TOOL_HEAP, KafkaSide
from storage.batch import decode_batch, iter_batches
from storage.errors import CorruptRecordError

DUMP_MAIN = "org.apache.kafka.tools.DumpLogSegments"
# The files of a segment (Kafka's suffixes); with the epoch checkpoint, what is copied.
SEGMENT_SUFFIXES = (".log", ".index", ".timeindex", ".snapshot", ".txnindex")
EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
RECOVERY_CHECKPOINT = "recovery-point-offset-checkpoint"
HW_CHECKPOINT = "replication-offset-checkpoint"
LOG_START_CHECKPOINT = "log-start-offset-checkpoint"
# A dump of a large log, or a read of a million records, takes a while on two busy cores.
DUMP_TIMEOUT_S = 1800.0
READ_TIMEOUT_S = 1800.0
PARTITION_DIR_DEADLINE_S = 60.0
# Kafka 4.x refuses a smaller segment.bytes ("Value must be at least 1048576"). The served
# topic's segment.bytes only decides where Kafka would roll next, not which files it loads.
KAFKA_SEGMENT_BYTES_MIN = 1024 * 1024
MISMATCHES_KEPT = 10


def segment_files(directory: Path, *suffixes: str) -> list[Path]:
    """The files of ``directory`` with those suffixes, in offset order (20-digit names)."""
    return sorted(p for p in directory.iterdir() if p.suffix in suffixes and p.is_file())


# -- what our files hold (pure but for reading them) -----------------------------------------


def _hex(data: bytes | None) -> str:
    return "-" if data is None else "x" + data.hex()


def record_line(offset: int, timestamp: int, key: bytes | None, value: bytes | None) -> str:
    """A record as KafkaProbe's ``read-partition`` prints it."""
    return f"record {offset} {timestamp} {_hex(key)} {_hex(value)}"


def log_records(directory: Path) -> Iterator[str]:
    """Every record of the partition directory's segments, in offset order, as
    :func:`record_line` lines (batches decoded and CRC-checked by storage.batch)."""
    for path in segment_files(directory, ".log"):
        data = path.read_bytes()
        for pos, _header in iter_batches(data, verify=False):
            _h, records = decode_batch(data, pos)
            for r in records:
                yield record_line(r.offset, r.timestamp, r.key, r.value)


@dataclass(frozen=True)
class LogExtent:
    start_offset: int  # the first segment's base offset (our log start after a clean)
    end_offset: int  # the offset after the last batch


def log_extent(directory: Path) -> LogExtent:
    logs = segment_files(directory, ".log")
    if not logs:
        raise ValueError(f"{directory} holds no .log file")
    end = int(logs[0].stem)
    for path in logs:
        data = path.read_bytes()
        for _pos, header in iter_batches(data, verify=False):
            end = header.next_offset
        end = max(end, int(path.stem))
    return LogExtent(int(logs[0].stem), end)


def with_checkpoint_entry(text: str, topic: str, partition: int, offset: int) -> str:
    """Kafka's offset checkpoint text (``0``, a count, then ``topic partition offset`` lines)
    with ``topic partition`` at ``offset``, added when missing. Raises ValueError for a text
    that is not version 0 with as many entries as it says."""
    lines = text.splitlines()
    if len(lines) < 2 or lines[0].strip() != "0" or not lines[1].strip().isdigit():
        raise ValueError(f"not a version 0 offset checkpoint: {text[:80]!r}")
    entries = [line.split() for line in lines[2:] if line.strip()]
    if len(entries) != int(lines[1]) or any(len(e) != 3 for e in entries):
        raise ValueError(f"an offset checkpoint whose entries do not match its count: {text!r}")
    kept = [e for e in entries if (e[0], e[1]) != (topic, str(partition))]
    kept.append([topic, str(partition), str(offset)])
    return "".join(f"{line}\n" for line in ["0", str(len(kept)), *(" ".join(e) for e in kept)])


# -- DumpLogSegments -------------------------------------------------------------------------


def _run_dump(side: KafkaSide, files: list[Path], *flags: str) -> DumpFindings:
    """Runs DumpLogSegments over ``files``, reading its stdout as it comes (a deep dump of a
    large log is hundreds of MB) and its stderr through a file."""
    findings = DumpFindings()
    if not files:
        return findings
    command = side.java(DUMP_MAIN, "--files", ",".join(map(str, files)), *flags, heap=TOOL_HEAP)
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, text=True, errors="replace"
        )
        assert process.stdout is not None
        timer = threading.Timer(DUMP_TIMEOUT_S, process.kill)
        timer.start()
        try:
            dump_stdout_findings(process.stdout, findings)
            returncode = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        err.seek(0)
        dump_stderr_findings(err.read(), returncode, findings)
    return findings


def dump_log_segments(side: KafkaSide, directory: Path) -> DumpFindings:
    """Kafka's DumpLogSegments over a partition directory (see the module's docstring)."""
    return dump_log_dirs(side, [directory])


def dump_log_dirs(side: KafkaSide, directories: Iterable[Path]) -> DumpFindings:
    """Kafka's DumpLogSegments over every segment and index file of ``directories``, three
    runs in all (the batches, the index sanity check, the index entries), whatever their
    number: a JVM's start costs more than a small directory's files."""
    side.write_tools_config()
    logs: list[Path] = []
    indexes: list[Path] = []
    for directory in directories:
        logs += segment_files(directory, ".log")
        indexes += segment_files(directory, ".index", ".timeindex")
    found = _run_dump(side, logs, "--deep-iteration", "--print-data-log")
    sanity = _run_dump(side, indexes, "--index-sanity-check")
    # An offset index with no entry is reported as empty instead of checked (Kafka's tool).
    empty = [p for p in indexes if p.suffix == ".index" and p.stat().st_size == 0]
    if sanity.ok and sanity.sane_indexes + len(empty) < len(indexes):
        sanity.errors.append(
            f"{len(indexes) - len(empty) - sanity.sane_indexes} of {len(indexes)} indexes got "
            "no 'passed sanity check' verdict"
        )
    verify = _run_dump(side, indexes, "--verify-index-only")
    verify.files = sanity.files = 0  # the same files, counted once (by the log run)
    return found.merge(sanity).merge(verify)


# -- a broker serving our files --------------------------------------------------------------


@dataclass
class ServeCheck:
    records: int = 0
    expected: int = 0
    mismatches: list[str] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.changed_files and self.records == self.expected


def file_unchanged(ours: Path, theirs: Path, grown_ok: bool) -> bool:
    """Whether ``theirs`` holds the bytes of ``ours`` (followed only by zeros if
    ``grown_ok``: Kafka grows an active segment's index files for the entries to come)."""
    if not theirs.exists():
        return False
    a, b = ours.read_bytes(), theirs.read_bytes()
    if a == b:
        return True
    return grown_ok and b[: len(a)] == a and not b[len(a) :].strip(b"\0")


def wait_for_file(path: Path, deadline_s: float) -> None:
    """Waits until ``path`` exists (a Kafka node creating a partition's directory)."""
    deadline = time.monotonic() + deadline_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {deadline_s:.0f} s")
        time.sleep(0.2)


def transplant(source: Path, target: Path) -> list[Path]:
    """Puts the segment files (with their indexes and producer snapshots) and the leader
    epoch checkpoint of our partition directory ``source`` in place of those of a stopped
    Kafka node's directory ``target`` for the same partition (its ``partition.metadata``
    stays: the topic id is that node's). Returns the files of ``source`` copied."""
    for path in segment_files(target, *SEGMENT_SUFFIXES):
        path.unlink()
    copied = [*segment_files(source, *SEGMENT_SUFFIXES)]
    if (source / EPOCH_CHECKPOINT).exists():
        copied.append(source / EPOCH_CHECKPOINT)
    for path in copied:
        shutil.copyfile(path, target / path.name)
    return copied


def set_checkpoint_entries(data: Path, name: str, entries: Mapping[tuple[str, int], int]) -> None:
    """Sets ``topic partition offset`` entries in the offset checkpoint ``name`` of a stopped
    Kafka node's log directory ``data`` (other entries kept; an empty or missing file is
    taken as one without entries, as Kafka reads it)."""
    path = data / name
    text = path.read_text() if path.exists() else ""
    for (topic, partition), offset in entries.items():
        text = with_checkpoint_entry(text or "0\n0\n", topic, partition, offset)
    path.write_text(text or "0\n0\n")


def serve_unchanged(
    dist: KafkaDist, work: Path, source: Path, topic: str, configs: dict[str, str]
) -> ServeCheck:
    """Whether a one-node Kafka serves the partition directory ``source`` (our files) as it
    is; ``work`` is where its node lives (created; left for the caller to remove). The topic
    is created with ``configs`` (a ``segment.bytes`` below Kafka's minimum raised to it).
    Kafka deletes a producer snapshot that is neither at a segment's base offset nor the
    latest (its removeStraySnapshots at load): such a file is reported as changed."""
    side = KafkaSide(dist, work, count=1, extra={"log.cleaner.enable": "false"})
    side.prepare()
    check = ServeCheck()
    try:
        side.launch()
        side.wait_ready()
        segment_bytes = int(configs.get("segment.bytes", KAFKA_SEGMENT_BYTES_MIN))
        side.create_topic(
            topic,
            1,
            {**configs, "segment.bytes": str(max(segment_bytes, KAFKA_SEGMENT_BYTES_MIN))},
        )
        data = side.data_dir(1)
        target = data / f"{topic}-0"
        wait_for_file(target / "partition.metadata", PARTITION_DIR_DEADLINE_S)
        side.stop()
        copied = transplant(source, target)
        extent = log_extent(source)
        for name, offset in (
            (RECOVERY_CHECKPOINT, extent.end_offset),
            (HW_CHECKPOINT, extent.end_offset),
            (LOG_START_CHECKPOINT, extent.start_offset),
        ):
            set_checkpoint_entries(data, name, {(topic, 0): offset})
        side.processes.clear()
        side.launch()
        side.wait_ready()
        try:
            _compare_records(side, topic, source, extent, check)
        except CorruptRecordError as exc:
            check.mismatches.append(f"our own files do not decode: {exc}")
        active = segment_files(source, ".log")[-1].stem
        for path in copied:
            if path.name == EPOCH_CHECKPOINT:
                continue  # Kafka adds its new leader epoch: not a segment file
            grown_ok = path.stem == active and path.suffix in (".index", ".timeindex")
            if not file_unchanged(path, target / path.name, grown_ok):
                check.changed_files.append(path.name)
    finally:
        side.stop()
    return check


def _compare_records(
    side: KafkaSide, topic: str, source: Path, extent: LogExtent, check: ServeCheck
) -> None:
    expected = log_records(source)
    taken = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
        process = subprocess.Popen(
            side.probe("read-partition", topic, "0"), stdout=subprocess.PIPE, stderr=err, text=True
        )
        assert process.stdout is not None
        timer = threading.Timer(READ_TIMEOUT_S, process.kill)
        timer.start()
        try:
            for line in process.stdout:
                if line.startswith("start "):
                    _s, start, _e, end = line.split()
                    if (int(start), int(end)) != (extent.start_offset, extent.end_offset):
                        check.mismatches.append(
                            f"Kafka's log starts at {start} and ends at {end}, ours at "
                            f"{extent.start_offset} and {extent.end_offset}"
                        )
                if not line.startswith("record "):
                    continue
                check.records += 1
                want = next(expected, None)
                taken += want is not None
                got = line.rstrip("\n")
                if got != want and len(check.mismatches) < MISMATCHES_KEPT:
                    check.mismatches.append(
                        f"Kafka served {got[:160]!r}, our log holds {str(want)[:160]!r}"
                    )
            returncode = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        err.seek(0)
        stderr = err.read()
    check.expected = taken + sum(1 for _ in expected)
    if returncode != 0:
        check.mismatches.append(f"read-partition exited {returncode}: {stderr[-1500:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.kafka_check",
        description="Kafka 4.4.0's DumpLogSegments over a partition directory, and a Kafka "
        "broker serving its files unchanged.",
    )
    parser.add_argument("directory", type=Path, help="a partition directory (<topic>-<n>)")
    parser.add_argument("--topic", help="the topic Kafka serves it as (default: from DIR)")
    parser.add_argument(
        "--config", action="append", default=[], help="a topic config k=v for Kafka's topic"
    )
    parser.add_argument("--no-serve", action="store_true", help="only DumpLogSegments")
    parser.add_argument("--cache", type=Path, default=None, help="where Kafka's jars are")
    args = parser.parse_args(argv)
    directory: Path = args.directory
    if not directory.is_dir() or not segment_files(directory, ".log"):
        print(f"kafka_check: {directory} is not a partition directory", file=sys.stderr)
        return 2
    topic = args.topic or directory.name.rpartition("-")[0]
    configs = dict(c.split("=", 1) for c in args.config if "=" in c)
    work = Path(tempfile.mkdtemp(prefix="kafka-check-"))
    try:
        dist = kafka_dist.ensure(args.cache or kafka_dist.default_cache(), work / "fetch.log")
        found = dump_log_segments(KafkaSide(dist, work / "dump"), directory)
        print(
            f"DumpLogSegments: {'accepted' if found.ok else 'ERRORS'} ({found.files} .log files, "
            f"{found.batches:,} batches, {found.records:,} records, {found.gaps:,} offset gaps, "
            f"{found.sane_indexes} indexes passed the sanity check)"
        )
        for error in found.errors:
            print(f"  {error}")
        ok = found.ok
        if not args.no_serve:
            served = serve_unchanged(dist, work / "serve", directory, topic, configs)
            print(
                f"A Kafka broker serving it as {topic}-0: "
                f"{'unchanged' if served.ok else 'NOT unchanged'} ({served.records:,} of "
                f"{served.expected:,} records read back equal; files Kafka changed: "
                f"{', '.join(served.changed_files) or 'none'})"
            )
            for mismatch in served.mismatches:
                print(f"  {mismatch}")
            ok = ok and served.ok
    except kafka_dist.FetchError as exc:
        print(f"kafka_check: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
