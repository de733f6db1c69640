#!/usr/bin/env python3
"""Benchmark of the partition log against the raw disk it sits on. Prints figures, asserts
nothing.

Cases, each writing --mib MiB with one fsync per MiB, on the same file system:

  (a) raw:      os.write of 1 MiB buffers + fsync            (what the disk gives; run
                before and after the log cases, after a warm-up; the better run counts)
  (b) replica:  Log.append_batches of pre-built batches + flush every MiB (indexes included)
  (c) leader:   Log.append_as_leader building batches of 100 records of 1 KiB + flush every MiB
  (d) reads:    random-offset Log.read(offset, 1 MiB) in a --read-log-bytes log built with the
                replica path: median and p99 time per read

Targets: (b) >= 70% of (a), (c) >= 25% of (a), a random-offset read under 1 ms.

Usage: .venv/bin/python scripts/bench_storage.py [--mib 512] [--dir ./.bench-storage]
       [--read-log-bytes 1073741824] [--reads 2000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.batch import NewRecord, build_batch, iter_batches  # noqa: E402
from storage.log import Log  # noqa: E402
from storage.log_config import LogConfig  # noqa: E402

MIB = 1024 * 1024
RECORDS_PER_BATCH = 100
VALUE_BYTES = 1024
T0 = 1_700_000_000_000


def records(count: int = RECORDS_PER_BATCH) -> list[NewRecord]:
    # Random values, each its own: the raw case writes random bytes too, and a disk (or the
    # virtual disk under it) that compresses or dedups must not favour one side.
    return [NewRecord(b"key-%06d" % i, os.urandom(VALUE_BYTES), T0 + i) for i in range(count)]


class Chunk:
    """About 1 MiB of pre-built batches, restamped in place with the next offsets."""

    def __init__(self) -> None:
        one = build_batch(records())
        count = max(1, MIB // len(one))
        self.data = bytearray(b"".join(build_batch(records()) for _ in range(count)))
        self.positions = [p for p, _ in iter_batches(self.data)]
        self.batch_records = RECORDS_PER_BATCH
        self.records = RECORDS_PER_BATCH * count

    def at(self, base_offset: int) -> bytearray:
        """The chunk with its batches' base offsets set to follow ``base_offset`` (the base
        offset lies outside the CRC, as a leader's stamp does)."""
        for i, position in enumerate(self.positions):
            self.data[position : position + 8] = (base_offset + i * self.batch_records).to_bytes(
                8, "big"
            )
        return self.data


def rate(label: str, nbytes: int, seconds: float, nrecords: int | None) -> float:
    mb_s = nbytes / MIB / seconds
    recs = f"{nrecords / seconds:12,.0f} records/s" if nrecords is not None else " " * 23
    print(f"  {label:<44} {mb_s:9.1f} MiB/s {recs}   ({nbytes / MIB:.0f} MiB in {seconds:.2f} s)")
    return mb_s


def bench_raw(directory: Path, mib: int, quiet: bool = False) -> float:
    path = directory / "raw.bin"
    buf = os.urandom(MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    start = time.perf_counter()
    try:
        for _ in range(mib):
            view = memoryview(buf)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - start
    path.unlink()
    if quiet:
        return mib * MIB / seconds
    return rate("(a) raw os.write + fsync per MiB", mib * MIB, seconds, None)


def bench_replica(directory: Path, mib: int) -> float:
    log = Log.open(directory / "replica-0", LogConfig())
    chunk = Chunk()
    written = 0
    start = time.perf_counter()
    while written < mib * MIB:
        info = log.append_batches(chunk.at(log.log_end_offset))  # type: ignore[arg-type]
        log.flush()
        written += info.size_bytes
    seconds = time.perf_counter() - start
    total_records = log.log_end_offset
    log.delete()
    return rate("(b) Log.append_batches + flush per MiB", written, seconds, total_records)


def bench_leader(directory: Path, mib: int) -> float:
    log = Log.open(directory / "leader-0", LogConfig())
    batch_records = records()
    written = since_flush = 0
    start = time.perf_counter()
    while written < mib * MIB:
        info = log.append_as_leader(batch_records, 0)
        written += info.size_bytes
        since_flush += info.size_bytes
        if since_flush >= MIB:
            log.flush()
            since_flush = 0
    log.flush()
    seconds = time.perf_counter() - start
    total_records = log.log_end_offset
    log.delete()
    return rate("(c) Log.append_as_leader (100 x 1 KiB) + flush", written, seconds, total_records)


def bench_reads(directory: Path, log_bytes: int, reads: int) -> tuple[float, float]:
    log = Log.open(directory / "reads-0", LogConfig())
    chunk = Chunk()
    start = time.perf_counter()
    while log.size_bytes < log_bytes:
        log.append_batches(chunk.at(log.log_end_offset))  # type: ignore[arg-type]
        log.flush()
    build = time.perf_counter() - start
    print(
        f"  (d) built a {log.size_bytes / MIB:.0f} MiB log of {log.log_end_offset:,} records "
        f"in {len(log.segments)} segment(s) in {build:.1f} s"
    )
    rng = random.Random(42)
    end = log.log_end_offset
    times = []
    returned = 0
    for _ in range(reads):
        offset = rng.randrange(end)
        t = time.perf_counter()
        data = log.read(offset, MIB)
        times.append(time.perf_counter() - t)
        returned += len(data)
    log.delete()
    times.sort()
    median = statistics.median(times) * 1000
    p99 = times[int(len(times) * 0.99) - 1] * 1000
    print(
        f"  (d) Log.read(random offset, 1 MiB) x {reads}: median {median:.3f} ms, "
        f"p99 {p99:.3f} ms, {returned / reads / 1024:.0f} KiB per read"
    )
    return median, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=512, help="MiB written per case (512)")
    parser.add_argument("--dir", type=Path, default=Path(".bench-storage"), help="work directory")
    parser.add_argument("--read-log-bytes", type=int, default=1024 * MIB, help="log size for (d)")
    parser.add_argument("--reads", type=int, default=2000, help="random reads in (d)")
    args = parser.parse_args()
    created = not args.dir.exists()
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"storage benchmark in {args.dir.resolve()}, {args.mib} MiB per case")
        # The first writes to a file system pay for warming it up (allocation, journal):
        # an untimed pass first, and raw is measured before and after the log cases, the
        # better of the two being what the log is compared with.
        bench_raw(args.dir, min(args.mib, 64), quiet=True)
        raw_before = bench_raw(args.dir, args.mib)
        replica = bench_replica(args.dir, args.mib)
        leader = bench_leader(args.dir, args.mib)
        raw = max(raw_before, bench_raw(args.dir, args.mib))
        median, p99 = bench_reads(args.dir, args.read_log_bytes, args.reads)
        print("results against targets:")
        print(f"  (b)/(a) = {replica / raw:6.1%}   target >= 70%   {_ok(replica / raw >= 0.70)}")
        print(f"  (c)/(a) = {leader / raw:6.1%}   target >= 25%   {_ok(leader / raw >= 0.25)}")
        print(f"  read median {median:.3f} ms, p99 {p99:.3f} ms   target < 1 ms   {_ok(p99 < 1)}")
    finally:
        if created:
            shutil.rmtree(args.dir, ignore_errors=True)


def _ok(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    main()
