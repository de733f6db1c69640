#!/usr/bin/env python3
"""Benchmark of opening partitions at node start (issue 9 item 7, bounded startup). Prints
figures, asserts nothing.

What a node does for each partition after a clean shutdown (recovery point = log end):

  before: Log.open, then ProducerStateTable.rebuild from every batch header of the log (what
          a node did before producer snapshots: Log.batch_headers, 1 MiB read at a time, each
          batch CRC-checked)
  after:  Log.open, then server.partition.restore_producers, as a node opens a replica now:
          the latest producer snapshot at or below the log end and the headers after it (the
          snapshot written at the log end, as a clean shutdown writes it)

Cases:

  (a) one partition with a --log-mib log (1 GiB) written by --producers idempotent producers
      (batches of 100 records of 1 KiB; segment.bytes --segment-mib, Kafka's default 1 GiB)
  (b) --partitions small partitions (1,000), each --small-batches batches of 10 records
  (c) a real node (one-node cluster) with a topic of --node-partitions partitions (1,000),
      replication factor 1, each with a few batches of an idempotent producer: stopped with
      SIGTERM (a clean shutdown) and started again; prints the time from start to ready and
      the longest time its HTTP server went without answering while it started (polled every
      10 ms from another thread): what its broker heartbeats would have waited. --code DIR
      runs the node from another checkout (a git worktree of an older commit: the "before")

Each case runs cold (the partition's files dropped from the page cache with posix_fadvise
DONTNEED first, as after a reboot; a virtual disk may still be cached by its host) and warm
(the files read once first). "longest step" is the longest single synchronous
call (Log.open, the rebuild, the snapshot load, the replay): what would block an event loop.

Usage: .venv/bin/python scripts/bench_startup.py [--log-mib 1024] [--partitions 1000]
       [--node-partitions 1000] [--code DIR] [--only a,b,c] [--dir ./.bench-storage]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts import node_process  # noqa: E402
from scripts.node_process import NodeProcess, http  # noqa: E402
from server.partition import restore_producers  # noqa: E402
from server.producer_state import ProducerStateTable  # noqa: E402
from storage.batch import NewRecord, build_batch, iter_batches  # noqa: E402
from storage.log import Log  # noqa: E402
from storage.log_config import LogConfig  # noqa: E402
from storage.producer_snapshot import ProducerSnapshots  # noqa: E402

MIB = 1024 * 1024
VALUE_BYTES = 1024
T0 = 1_700_000_000_000
FIRST_PRODUCER_ID = 4000


# -- writing the logs ------------------------------------------------------------------------


class Producers:
    """A few idempotent producers taking turns, each continuing its own sequence."""

    def __init__(self, count: int, records_per_batch: int) -> None:
        self.next_sequence = [0] * count
        self.turn = 0
        self.records_per_batch = records_per_batch
        # A pool of random values, reused: the log is not compressed, so reuse changes nothing.
        self.values = [os.urandom(VALUE_BYTES) for _ in range(records_per_batch)]

    def batch(self, base_offset: int) -> bytes:
        i = self.turn % len(self.next_sequence)
        self.turn += 1
        n = self.records_per_batch
        records = [
            NewRecord(b"key-%06d" % k, self.values[k], T0 + base_offset + k) for k in range(n)
        ]
        data = build_batch(
            records,
            base_offset=base_offset,
            producer_id=FIRST_PRODUCER_ID + i,
            producer_epoch=0,
            base_sequence=self.next_sequence[i],
        )
        self.next_sequence[i] += n
        return data


def write_partition(
    directory: Path, config: LogConfig, log_bytes: int, producers: Producers
) -> tuple[int, int]:
    """Writes about ``log_bytes`` of batches through the replica path (Log.append_batches,
    a flush every 64 MiB) and a clean shutdown: close, then the producer snapshot at the log
    end. Returns (log end offset, snapshot write time in ns)."""
    log = Log.open(directory, config)
    table = ProducerStateTable()
    written = unflushed = 0
    chunk: list[bytes] = []
    chunk_bytes = 0
    offset = 0
    while written < log_bytes:
        batch = producers.batch(offset)
        offset += producers.records_per_batch
        chunk.append(batch)
        chunk_bytes += len(batch)
        written += len(batch)
        if chunk_bytes >= MIB or written >= log_bytes:
            data = b"".join(chunk)
            log.append_batches(data)
            for _position, header in iter_batches(data, verify=False):
                table.observe(header)
            unflushed += chunk_bytes
            chunk, chunk_bytes = [], 0
            if unflushed >= 64 * MIB:
                log.flush()
                unflushed = 0
    log_end = log.log_end_offset
    log.close()
    started = time.perf_counter_ns()
    ProducerSnapshots(directory).write(log_end, table.snapshot_entries())
    return log_end, time.perf_counter_ns() - started


# -- opening them ----------------------------------------------------------------------------


def drop_page_cache(directory: Path) -> None:
    """Evicts the directory's files from the page cache (clean pages only: they were flushed),
    so the next open reads from the disk, as after a reboot."""
    for child in directory.iterdir():
        fd = os.open(child, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm_page_cache(directory: Path) -> None:
    """Reads the directory's files once, so the next open finds them in the page cache."""
    for child in directory.iterdir():
        with open(child, "rb") as f:
            while f.read(8 * MIB):
                pass


@dataclass
class Timing:
    """Nanoseconds per step, summed over partitions, and the longest single step."""

    steps: dict[str, int] = field(default_factory=dict)
    longest_ns: int = 0
    longest_step: str = ""

    def add(self, step: str, ns: int) -> None:
        self.steps[step] = self.steps.get(step, 0) + ns
        if ns > self.longest_ns:
            self.longest_ns, self.longest_step = ns, step

    @property
    def total_ns(self) -> int:
        return sum(self.steps.values())


def open_before(directory: Path, config: LogConfig, log_end: int, timing: Timing) -> list[object]:
    """Today's open: Log.open, then a rebuild from every header. Returns the table's
    snapshot entries (to compare the two paths)."""
    t0 = time.perf_counter_ns()
    log = Log.open(directory, config, recovery_point=log_end, log_start_offset=0)
    t1 = time.perf_counter_ns()
    table = ProducerStateTable()
    table.rebuild(log.batch_headers(log.log_start_offset), log.log_start_offset)
    t2 = time.perf_counter_ns()
    timing.add("Log.open", t1 - t0)
    timing.add("rebuild from every header", t2 - t1)
    log.close()
    return list(table.snapshot_entries())


def open_after(directory: Path, config: LogConfig, log_end: int, timing: Timing) -> list[object]:
    """The node's open now: Log.open, then server.partition.restore_producers (the latest
    snapshot at or below the log end, and the headers after it)."""
    t0 = time.perf_counter_ns()
    log = Log.open(directory, config, recovery_point=log_end, log_start_offset=0)
    t1 = time.perf_counter_ns()
    table = restore_producers(log, ProducerSnapshots(directory))
    t2 = time.perf_counter_ns()
    timing.add("Log.open", t1 - t0)
    timing.add("restore from the snapshot", t2 - t1)
    log.close()
    return list(table.snapshot_entries())


def ms(ns: int) -> str:
    return f"{ns / 1e6:9.1f} ms"


def report(label: str, timing: Timing) -> None:
    parts = ", ".join(f"{step} {ns / 1e6:.1f} ms" for step, ns in timing.steps.items())
    print(
        f"  {label:<14} total {ms(timing.total_ns)}   longest step {ms(timing.longest_ns)} "
        f"({timing.longest_step})"
    )
    print(f"  {'':<14} {parts}")


def run_case(name: str, directories: list[Path], config: LogConfig, log_ends: list[int]) -> None:
    same = True
    for cache in ("cold", "warm"):
        before, after = Timing(), Timing()
        for directory, log_end in zip(directories, log_ends, strict=True):
            prepare = drop_page_cache if cache == "cold" else warm_page_cache
            prepare(directory)
            entries_before = open_before(directory, config, log_end, before)
            prepare(directory)
            entries_after = open_after(directory, config, log_end, after)
            same = same and entries_before == entries_after
        print(f"{name}, {cache} page cache:")
        report("before", before)
        report("after", after)
    print(f"  same producer state on both paths: {'yes' if same else 'NO'}")


def big_case(work: Path, config: LogConfig, log_mib: int, producers: int) -> None:
    started = time.perf_counter()
    big = work / "big-0"
    big_end, snapshot_ns = write_partition(big, config, log_mib * MIB, Producers(producers, 100))
    segments = len(list(big.glob("*.log")))
    print(
        f"(a) one partition: {log_mib} MiB, {segments} segment(s), {big_end:,} records, "
        f"{producers} producers (written in {time.perf_counter() - started:.1f} s; "
        f"snapshot at the log end written in {snapshot_ns / 1e6:.1f} ms, fsyncs included)"
    )
    run_case("(a) 1 GiB partition" if log_mib == 1024 else "(a)", [big], config, [big_end])
    shutil.rmtree(big)


def small_case(work: Path, config: LogConfig, partitions: int, batches: int) -> None:
    started = time.perf_counter()
    small_dirs: list[Path] = []
    small_ends: list[int] = []
    small_bytes = batches * 10 * (VALUE_BYTES + 40)
    for i in range(partitions):
        directory = work / f"small-{i}"
        end, _ = write_partition(directory, config, small_bytes, Producers(2, 10))
        small_dirs.append(directory)
        small_ends.append(end)
    print(
        f"(b) {partitions} partitions of {batches} batches of 10 records "
        f"(written in {time.perf_counter() - started:.1f} s)"
    )
    run_case(f"(b) {partitions} small partitions", small_dirs, config, small_ends)


def node_case(work: Path, partitions: int, code: Path) -> None:
    node_process.ROOT = code  # the node and the storage tool run from that checkout
    node = NodeProcess(work / "node")
    node.format()
    try:
        node.start()
        status, body = http(
            "POST", f"{node.url}/v1/topics", {"name": "many", "partitions": partitions}
        )
        assert status == 201, body
        status, body = http("POST", f"{node.url}/v1/producers")
        assert status == 200, body
        headers = {"Producer-Id": str(body["producer_id"]), "Producer-Epoch": "0"}
        started = time.perf_counter()
        for index in range(partitions):
            for sequence in range(0, 30, 10):
                request = urllib.request.Request(
                    f"{node.url}/v1/topics/many/partitions/{index}/records",
                    data=json.dumps({"records": [{"value": "x" * 100}] * 10}).encode(),
                    headers={**headers, "Producer-Seq": str(sequence)},
                    method="POST",
                )
                for _attempt in range(600):  # the replica may still be opening: 503, retry
                    try:
                        with urllib.request.urlopen(request, timeout=60) as answer:
                            assert answer.status == 200
                            break
                    except urllib.error.HTTPError as e:
                        if e.code != 503:
                            raise
                        time.sleep(0.1)
        print(
            f"(c) a node with {partitions} partitions of 30 records each "
            f"(filled in {time.perf_counter() - started:.1f} s), code at {code}"
        )
        node.stop(signal.SIGTERM)
        gaps: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            last: float | None = None
            while not stop.is_set():
                try:
                    http("GET", f"{node.url}/v1/health/ready", timeout=10)
                    now = time.perf_counter()
                    if last is not None:
                        gaps.append(now - last)
                    last = now
                except OSError:
                    pass  # not listening yet
                time.sleep(0.01)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        started = time.perf_counter()
        node.start(wait=False)
        node.wait_ready(deadline_s=600)
        ready_s = time.perf_counter() - started
        time.sleep(0.5)
        stop.set()
        poller.join()
        print(
            f"  restart to ready {ready_s:.2f} s; longest HTTP silence while starting "
            f"{max(gaps, default=0) * 1000:.0f} ms (broker session: 1.5 s)"
        )
    finally:
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-mib", type=int, default=1024, help="size of the log in (a)")
    parser.add_argument("--segment-mib", type=int, default=1024, help="segment.bytes in MiB")
    parser.add_argument("--producers", type=int, default=5, help="producer ids in (a)")
    parser.add_argument("--partitions", type=int, default=1000, help="partitions in (b)")
    parser.add_argument("--small-batches", type=int, default=8, help="batches per partition (b)")
    parser.add_argument("--node-partitions", type=int, default=1000, help="partitions in (c)")
    parser.add_argument("--code", type=Path, default=node_process.ROOT, help="checkout for (c)")
    parser.add_argument("--only", default="a,b,c", help="cases to run, e.g. c")
    parser.add_argument("--dir", type=Path, default=Path(".bench-storage"), help="work directory")
    args = parser.parse_args()
    cases = set(args.only.split(","))

    work = (args.dir / f"startup-{os.getpid()}").resolve()
    work.mkdir(parents=True)
    config = LogConfig(segment_bytes=args.segment_mib * MIB)
    try:
        if "a" in cases:
            big_case(work, config, args.log_mib, args.producers)
        if "b" in cases:
            small_case(work, config, args.partitions, args.small_batches)
        if "c" in cases:
            node_case(work, args.node_partitions, args.code.resolve())
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.dir.is_dir() and not any(args.dir.iterdir()):
            args.dir.rmdir()


if __name__ == "__main__":
    main()
