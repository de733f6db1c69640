#!/usr/bin/env python3
"""The log cleaner's MB/s, ours beside Apache Kafka 4.4.0's, on the same data, with and
without a throttle. Prints figures, asserts nothing.

The data (scripts/bench/cleaner_workload.py): ``--records`` records over ``--keys`` keys,
values of ``--value-bytes``, a ``--tombstones`` share of tombstones, ``--batch-records`` per
batch, fixed timestamps, one partition of a compacted topic (``cleanup.policy=compact``) with
``--segment-bytes`` segments, so the cleaner has many sealed segments (the last, active one is
never cleaned).

- Kafka: for each throttle setting, a fresh one-node Kafka 4.4.0 (scripts/bench/kafka_side.py)
  with ``log.cleaner.backoff.ms=100`` and ``log.cleaner.io.max.bytes.per.second`` (unset, or
  ``--throttle-mib``). Its Java producer (KafkaProbe ``produce-workload``: no idempotence, a
  flush after each batch) writes the records while the topic's ``min.cleanable.dirty.ratio`` is
  1.0, which no log exceeds, so nothing is cleaned while they arrive; the harness then checks
  that Kafka's segment files are byte for byte the ones our storage wrote (the same input),
  sets the ratio to 0.01 (kafka-configs), and reads the figures of the clean from the stats
  block Kafka's cleaner logs (scripts/bench/cleaner_stats.py).
- Ours: the same records written with storage.log.Log.append_as_leader, one batch per call at
  leader epoch 0 (the storage level: the cleaner is measured alone, as Kafka's stats measure
  its own, without a node's produce path in the numbers), then cleaned by our cleaner as a
  node's cleaner thread calls it, over the same range (first offset to the active segment),
  with and without the same throttle; the same figures as Kafka's stats give (MB of
  segments rewritten per second of the whole clean, the offset map's reading included).
- ``--check-with-kafka``: Kafka's DumpLogSegments over our partition directory, and a Kafka
  broker serving it unchanged (scripts/bench/kafka_check.py), after our clean when there is
  one, else as written.

Progress goes to stderr, the table to stdout; the run's details to ``bench-cleaner.log`` in
the run's temporary directory, kept only with ``--keep``. Every process started is stopped by
its pid, on Ctrl+C too.

Usage: .venv/bin/python scripts/bench_cleaner.py [--records 1000000] [--keys 100000]
       [--value-bytes 100] [--tombstones 0.01] [--batch-records 1000] [--seed 1]
       [--segment-bytes 16777216] [--throttle-mib 10] [--only kafka,ours]
       [--check-with-kafka] [--cache DIR] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import filecmp
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.bench import kafka_dist  # noqa: E402
from scripts.bench.cleaner_stats import (  # noqa: E402
    CleanStats,
    DumpFindings,
    combined,
    figures_of,
    kafka_clean_stats,
    render,
    throttle_label,
)
from scripts.bench.cleaner_workload import Workload  # noqa: E402
from scripts.bench.kafka_check import (  # noqa: E402
    KAFKA_SEGMENT_BYTES_MIN,
    ServeCheck,
    dump_log_segments,
    log_extent,
    log_records,
    segment_files,
    serve_unchanged,
)
from scripts.bench.kafka_side import KafkaSide  # noqa: E402
from scripts.bench.measure import Reporter, run_command  # noqa: E402
from scripts.bench.table import this_machine  # noqa: E402
from storage.clean_map import OffsetMap  # noqa: E402
from storage.cleaner import Throttle, clean_log  # noqa: E402
from storage.log import Log  # noqa: E402
from storage.log_config import LogConfig  # noqa: E402

MIB = 1024 * 1024
TOPIC = "bench-cleaner"
PARTITION_DIR = f"{TOPIC}-0"
SYSTEMS = ("kafka", "ours")
# Kafka's cleaner wakes every log.cleaner.backoff.ms when it has nothing to do (15 s by
# default): short, so the clean starts as soon as the ratio allows it.
KAFKA_CLEANER_BACKOFF_MS = 100
# While the records arrive no log can exceed this ratio; after, one above the smallest.
RATIO_WHILE_WRITING = "1.0"
RATIO_TO_CLEAN = "0.01"
# How long a clean may take before the run gives up on it: generous, and longer when
# throttled (the bytes are read twice, map and rewrite, and written once).
CLEAN_DEADLINE_S = 300.0
PRODUCE_TIMEOUT_S = 1800.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/bench_cleaner.py",
        description="The log cleaner's MB/s, ours beside Kafka 4.4.0's, on the same data.",
    )
    p.add_argument("--records", type=int, default=1_000_000, help="records (1,000,000)")
    p.add_argument("--keys", type=int, default=100_000, help="distinct keys (100,000)")
    p.add_argument("--value-bytes", type=int, default=100, help="bytes per value (100)")
    p.add_argument("--tombstones", type=float, default=0.01, help="share of tombstones (0.01)")
    p.add_argument("--batch-records", type=int, default=1000, help="records per batch (1000)")
    p.add_argument("--seed", type=int, default=1, help="the workload's seed (1)")
    p.add_argument("--segment-bytes", type=int, default=16 * MIB, help="segment.bytes (16 MiB)")
    p.add_argument(
        "--throttle-mib", type=float, default=10.0,
        help="log.cleaner.io.max.bytes.per.second of the throttled runs, MiB/s (10; 0: none)",
    )  # fmt: skip
    p.add_argument("--only", default=",".join(SYSTEMS), help="kafka, ours or both")
    p.add_argument(
        "--check-with-kafka", action="store_true",
        help="Kafka's DumpLogSegments over our partition, and a Kafka broker serving it",
    )  # fmt: skip
    p.add_argument("--cache", type=Path, default=None, help="where Kafka's jars are")
    p.add_argument("--dir", type=Path, default=None, help="parent of the run's directory")
    p.add_argument("--keep", action="store_true", help="keep the run's directory")
    return p


def log_config(workload: Workload, segment_bytes: int) -> LogConfig:
    return LogConfig(
        segment_bytes=segment_bytes,
        cleanup_policy="compact",
        max_message_bytes=max(LogConfig().max_message_bytes, workload.max_batch_bytes()),
    )


def topic_configs(workload: Workload, segment_bytes: int) -> dict[str, str]:
    config = log_config(workload, segment_bytes)
    return {
        "cleanup.policy": "compact",
        "segment.bytes": str(segment_bytes),
        "max.message.bytes": str(config.max_message_bytes),
    }


def log_bytes(directory: Path) -> int:
    """The bytes of the partition's ``.log`` files (Kafka's ``.deleted`` ones left out)."""
    return sum(p.stat().st_size for p in segment_files(directory, ".log"))


def write_ours(directory: Path, workload: Workload, segment_bytes: int) -> float:
    """Writes the workload as a new log in ``directory``; the seconds it took."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log = Log.create(directory, log_config(workload, segment_bytes))
    try:
        for batch in workload.batches():
            log.append_as_leader(batch, 0)
        log.update_high_watermark(log.log_end_offset)
    finally:
        log.close()
    return time.monotonic() - started


def same_segments(ours: Path, theirs: Path) -> tuple[bool, str]:
    """Whether the two partition directories hold the same ``.log`` files byte for byte."""
    a = [p.name for p in segment_files(ours, ".log")]
    b = [p.name for p in segment_files(theirs, ".log")]
    if a != b:
        return False, f"segments differ: ours {len(a)} ({a[:3]}...), Kafka's {len(b)} ({b[:3]}...)"
    for name in a:
        if not filecmp.cmp(ours / name, theirs / name, shallow=False):
            return False, f"{name} differs"
    return True, f"{len(a)} segments, {log_bytes(ours):,} bytes, identical"


def kafka_clean(
    dist: kafka_dist.KafkaDist,
    work: Path,
    workload: Workload,
    segment_bytes: int,
    throttle: int | None,
    ours: Path | None,
    report: Reporter,
) -> tuple[CleanStats, int, int, str, Path]:
    """One clean by a fresh one-node Kafka: its stats, the log's bytes before and after, and
    how its segments compared with ours before the clean."""
    label = throttle_label(throttle)
    extra = {"log.cleaner.backoff.ms": str(KAFKA_CLEANER_BACKOFF_MS)}
    if throttle is not None:
        extra["log.cleaner.io.max.bytes.per.second"] = str(throttle)
    side = KafkaSide(dist, work, count=1, extra=extra)
    side.prepare()
    try:
        side.launch()
        side.wait_ready()
        configs = topic_configs(workload, segment_bytes)
        side.create_topic(TOPIC, 1, {**configs, "min.cleanable.dirty.ratio": RATIO_WHILE_WRITING})
        out = run_command(
            side.probe(
                "produce-workload", TOPIC, *workload.probe_args(), str(workload.max_batch_bytes())
            ),
            "KafkaProbe produce-workload",
            PRODUCE_TIMEOUT_S,
        )
        report.say(f"[kafka, {label}] {out.strip()}")
        partition = side.data_dir(1) / PARTITION_DIR
        detail = "not compared"
        if ours is not None:
            _same, detail = same_segments(ours, partition)
            report.say(f"[kafka, {label}] Kafka's segments against ours as written: {detail}")
        before = log_bytes(partition)
        active_base = int(segment_files(partition, ".log")[-1].stem)
        server_log = side.server_log(1)
        side.alter_topic(TOPIC, {"min.cleanable.dirty.ratio": RATIO_TO_CLEAN})
        deadline_s = CLEAN_DEADLINE_S + (3 * before / throttle if throttle else 0)
        deadline = time.monotonic() + deadline_s
        while True:
            stats = kafka_clean_stats(server_log.read_text(errors="replace"), PARTITION_DIR)
            if stats and stats[-1].end_offset >= active_base:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Kafka's cleaner did not reach offset {active_base} within "
                    f"{deadline_s:.0f} s (cleans logged: {len(stats)})"
                )
            time.sleep(0.5)
        return combined(stats), before, log_bytes(partition), detail, partition
    finally:
        side.stop()


def ours_clean(
    directory: Path, workload: Workload, segment_bytes: int, throttle: int | None
) -> tuple[CleanStats, int]:
    """One clean of the partition in ``directory`` by our cleaner, as one clean of a node's
    cleaner thread makes it (server/log_cleaner.py): the open log's ``cleaning_view``, the
    range from ``log_to_clean`` with no cleaner checkpoint (the log start to the active
    segment's base, as Kafka's first clean), an offset map with Kafka's default budget
    (log.cleaner.dedupe.buffer.size, 128 MiB), ``clean_log`` swapping each cleaned group in
    with ``Log.replace_segments``. Returns its stats in Kafka's terms and the log's bytes
    after; the log is opened again after, as a node would at its next start."""
    config = log_config(workload, segment_bytes)
    end = log_extent(directory).end_offset
    log = Log.open(directory, config, recovery_point=end)
    try:
        log.update_high_watermark(end)
        segments = log.cleaning_view()[0]
        now_ms = int(time.time() * 1000)
        target = log.to_clean(None, now_ms)
        result = clean_log(
            directory,
            segments,
            target,
            config=config,
            offset_map=OffsetMap(),
            last_data_offsets={},
            now_ms=now_ms,
            commit=log.replace_segments,
            throttle=Throttle(float(throttle)) if throttle is not None else None,
        )
    finally:
        log.close()
    reopened = Log.open(directory, config, recovery_point=end)
    try:
        if reopened.offline is not None or reopened.log_end_offset != end:
            raise RuntimeError(
                f"the cleaned log reopened offline ({reopened.offline}) or at another end "
                f"({reopened.log_end_offset}, was {end})"
            )
    finally:
        reopened.close()
    st = result.stats
    seconds = st.elapsed_s
    mb = st.bytes_read / MIB
    stats = CleanStats(
        log=directory.name,
        first_dirty_offset=result.first_dirty,
        end_offset=result.checkpoint,
        mb_processed=mb,
        seconds=seconds,
        mb_per_s=mb / seconds if seconds > 0 else float("inf"),
        start_mb=mb,
        start_records=st.records_read,
        end_mb=st.bytes_written / MIB,
        end_records=st.records_kept,
    )
    return stats, log_bytes(directory)


def same_records(ours: Path, theirs: Path) -> str:
    """How the records of two partition directories compare, read from the beginning."""
    mine, kafkas = log_records(ours), log_records(theirs)
    count = 0
    while True:
        a, b = next(mine, None), next(kafkas, None)
        if a is None and b is None:
            return f"identical, {count:,} records (offset, timestamp, key, value)"
        if a != b:
            return (
                f"differ after {count:,} records: ours {str(a)[:100]!r}, Kafka's {str(b)[:100]!r}"
            )
        count += 1


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM takes Ctrl+C's path: the finally blocks stop Kafka


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    systems = [s.strip() for s in args.only.split(",") if s.strip()]
    if not systems or any(s not in SYSTEMS for s in systems):
        print(
            f"bench_cleaner: --only takes kafka, ours or both, got {args.only!r}", file=sys.stderr
        )
        return 2
    try:
        workload = Workload(
            records=args.records,
            keys=args.keys,
            value_bytes=args.value_bytes,
            tombstone_share=args.tombstones,
            batch_records=args.batch_records,
            seed=args.seed,
        )
        log_config(workload, args.segment_bytes)
    except ValueError as exc:
        print(f"bench_cleaner: {exc}", file=sys.stderr)
        return 2
    kafka_involved = "kafka" in systems or args.check_with_kafka
    if kafka_involved and args.segment_bytes < KAFKA_SEGMENT_BYTES_MIN:
        print(
            f"bench_cleaner: Kafka 4.4 refuses segment.bytes below {KAFKA_SEGMENT_BYTES_MIN}, "
            f"got --segment-bytes {args.segment_bytes}",
            file=sys.stderr,
        )
        return 2
    if args.throttle_mib < 0:
        print("bench_cleaner: --throttle-mib must be 0 or more", file=sys.stderr)
        return 2
    throttles: list[int | None] = [None]
    if args.throttle_mib > 0:
        throttles.append(int(args.throttle_mib * MIB))
    runs = [throttle_label(t) for t in throttles]
    signal.signal(signal.SIGTERM, _terminate)
    command = "scripts/bench_cleaner.py" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-cleaner-", dir=args.dir))
    report = Reporter(run_dir / "bench-cleaner.log")
    report.say(f"bench_cleaner: run directory {run_dir}")
    figures: dict[str, dict[str, float]] = {s: {} for s in SYSTEMS}
    checks: list[str] = []
    kafka_cleaned: dict[str, Path] = {}
    ours_cleaned: dict[str, Path] = {}
    started = time.monotonic()
    try:
        written = run_dir / "ours" / "written" / PARTITION_DIR
        seconds = write_ours(written, workload, args.segment_bytes)
        figures["ours"]["log_bytes_before"] = log_bytes(written)
        report.say(
            f"[ours] wrote {workload.records:,} records in {workload.batch_count:,} batches, "
            f"{log_bytes(written):,} bytes in {len(segment_files(written, '.log'))} segments, "
            f"in {seconds:.1f} s"
        )
        dist = None
        if kafka_involved:
            cache = args.cache or kafka_dist.default_cache()
            dist = kafka_dist.ensure(cache, run_dir / "fetch.log")
        if "kafka" in systems:
            assert dist is not None
            for throttle, run in zip(throttles, runs, strict=True):
                try:
                    stats, before, after, same, kafka_partition = kafka_clean(
                        dist,
                        run_dir / f"kafka-{len(figures['kafka'])}",
                        workload,
                        args.segment_bytes,
                        throttle,
                        written,
                        report,
                    )
                except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                    report.say(f"[kafka, {run}] FAILED: {type(exc).__name__}: {str(exc)[:500]}")
                    continue
                checks.append(f"Kafka's segments before its clean ({run}) against ours: {same}")
                kafka_cleaned[run] = kafka_partition
                figures["kafka"] |= figures_of(stats, run)
                figures["kafka"][f"log_bytes_after/{run}"] = after
                figures["kafka"]["log_bytes_before"] = before
                report.say(
                    f"[kafka, {run}] cleaned [{stats.first_dirty_offset}, {stats.end_offset}): "
                    f"{stats.mb_processed:,.1f} MB in {stats.seconds:,.1f} s "
                    f"({stats.mb_per_s:,.1f} MB/s), {stats.start_records:,} -> "
                    f"{stats.end_records:,} records"
                )
        if "ours" in systems:
            for throttle, run in zip(throttles, runs, strict=True):
                partition = run_dir / "ours" / f"cleaned-{len(ours_cleaned)}" / PARTITION_DIR
                shutil.copytree(written, partition)
                stats, after = ours_clean(partition, workload, args.segment_bytes, throttle)
                ours_cleaned[run] = partition
                figures["ours"] |= figures_of(stats, run)
                figures["ours"][f"log_bytes_after/{run}"] = after
                report.say(
                    f"[ours, {run}] cleaned [{stats.first_dirty_offset}, {stats.end_offset}): "
                    f"{stats.mb_processed:,.1f} MB in {stats.seconds:,.1f} s "
                    f"({stats.mb_per_s:,.1f} MB/s), {stats.start_records:,} -> "
                    f"{stats.end_records:,} records"
                )
                if run in kafka_cleaned:
                    verdict = same_records(partition, kafka_cleaned[run])
                    checks.append(f"Records kept by Kafka's cleaner and ours ({run}): {verdict}")
                    report.say(f"[ours, {run}] records against Kafka's cleaned log: {verdict}")
        if args.check_with_kafka:
            assert dist is not None
            checked = ours_cleaned.get(runs[0])
            what = f"cleaned ({runs[0]})" if checked is not None else "as written (not cleaned)"
            checks += kafka_checks(
                dist, run_dir, checked or written, what, workload, args.segment_bytes, report
            )
    except kafka_dist.FetchError as exc:
        report.say(f"bench_cleaner: {exc}")
        return 1
    except KeyboardInterrupt:
        report.say("bench_cleaner: interrupted; every process was stopped")
        return 130
    finally:
        if args.keep:
            report.say(f"bench_cleaner: kept {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    print(render(figures, runs))
    print()
    for line in checks:
        print(line)
    print(this_machine())
    print(f"command: {command}")
    print(
        f"settings: {workload.records:,} records, {workload.keys:,} keys, values of "
        f"{workload.value_bytes} B, {workload.tombstone_share:.0%} tombstones, "
        f"{workload.batch_records} records a batch, seed {workload.seed}, segment.bytes "
        f"{args.segment_bytes:,}; MB = 2^20 bytes; {time.monotonic() - started:.0f} s in all"
    )
    return 0


def kafka_checks(
    dist: kafka_dist.KafkaDist,
    run_dir: Path,
    partition: Path,
    what: str,
    workload: Workload,
    segment_bytes: int,
    report: Reporter,
) -> list[str]:
    """Kafka's checks of our partition directory (``what`` says which state it is in), as
    lines for the output."""
    lines = []
    started = time.monotonic()
    findings: DumpFindings = dump_log_segments(KafkaSide(dist, run_dir / "dump"), partition)
    verdict = "accepted" if findings.ok else f"{len(findings.errors)} errors"
    lines.append(
        f"Kafka's DumpLogSegments on our {partition.name}, {what}: {verdict} "
        f"({findings.files} .log files, {findings.batches:,} batches, {findings.records:,} "
        f"records, {findings.gaps:,} offset gaps, {findings.sane_indexes} indexes passed the "
        "sanity check)"
    )
    lines += [f"  {e}" for e in findings.errors[:10]]
    report.say(f"[check] {lines[0]} in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    try:
        serve: ServeCheck = serve_unchanged(
            dist, run_dir / "serve", partition, TOPIC, topic_configs(workload, segment_bytes)
        )
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        lines.append(
            f"A Kafka broker serving our {partition.name}, {what}: FAILED: {str(exc)[:300]}"
        )
        report.say(f"[check] {lines[-1]}")
        return lines
    verdict = "served unchanged" if serve.ok else "NOT unchanged"
    lines.append(
        f"A Kafka broker serving our {partition.name}, {what}: {verdict} ({serve.records:,} of "
        f"{serve.expected:,} records read back by Kafka's consumer and equal to ours; files "
        f"Kafka changed: {', '.join(serve.changed_files) or 'none'})"
    )
    lines += [f"  {m}" for m in serve.mismatches]
    report.say(f"[check] {lines[-1 - len(serve.mismatches)]} in {time.monotonic() - started:.0f} s")
    return lines


if __name__ == "__main__":
    sys.exit(main())
