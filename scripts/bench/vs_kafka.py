"""scripts/bench/vs-kafka: Apache Kafka 4.4.0 and our nodes measured side by side, one command.

Fetches Kafka 4.4.0 into a cache (scripts/bench/kafka_dist.py), runs three Kafka nodes
(scripts/bench/kafka_side.py) and measures them three ways, then our three nodes
(scripts/bench/ours_side.py), each with its own tools, then three fresh nodes of ours measured
with Kafka's tools through their KAFKA listeners (scripts/bench/ours_kafka_side.py), all in
the same order (scripts/bench/measure.py), and prints one table (scripts/bench/table.py) with
the machine and the command; ``--only`` picks the systems. Progress goes to stderr, the table
to stdout; the run's details (every perf tool's output, failures with the nodes' log tails) to
``vs-kafka.log`` in the run's temporary directory, which is kept only when ``--keep`` is
given. Every process started is stopped by its pid, on Ctrl+C too. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench import kafka_dist, measure  # noqa: E402
from scripts.bench.kafka_side import KafkaSide  # noqa: E402
from scripts.bench.ours_kafka_side import OursKafkaToolsSide  # noqa: E402
from scripts.bench.ours_side import OursSide  # noqa: E402
from scripts.bench.plan import (  # noqa: E402
    KAFKA,
    OURS_KAFKA_TOOLS,
    OURS_OWN,
    SYSTEM_NAMES,
    Plan,
    System,
    full_plan,
    quick_plan,
    systems_named,
)
from scripts.bench.table import render, this_machine, tools_legend  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench/vs-kafka",
        description="Apache Kafka 4.4.0 and our nodes side by side: three nodes each, "
        "replication factor 3, min.insync.replicas=2, acks=all.",
    )
    parser.add_argument(
        "--records", type=int, help="100-byte records per produce run (default 1,000,000; "
        "--quick: 200,000); 1 KiB runs use a fifth as many"
    )  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 200,000 records, 5 s end-to-end"
    )
    parser.add_argument(
        "--only",
        default=",".join(SYSTEM_NAMES),
        help="the systems to measure, comma-separated: kafka (Kafka with its tools), ours (ours "
        "with our tools), ours-kafka-tools (ours with Kafka's tools, through the nodes' KAFKA "
        f"listeners); default {','.join(SYSTEM_NAMES)}",
    )
    parser.add_argument("--partitions", type=int, default=3, help="partitions per topic (3)")
    parser.add_argument(
        "--batch-records", type=int, default=1000,
        help="records per batch of our producer and Kafka's tuned one (1000)",
    )  # fmt: skip
    parser.add_argument(
        "--e2e-rate", type=float, default=1000.0, help="end-to-end records/s (1000)"
    )
    parser.add_argument(
        "--cache", type=Path, default=None,
        help=f"where Kafka's jars go (default {kafka_dist.default_cache()})",
    )  # fmt: skip
    parser.add_argument(
        "--dir", type=Path, default=None, help="parent of the run's temporary directory"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's directory (logs, data) afterwards"
    )
    return parser


def make_plan(args: argparse.Namespace) -> Plan:
    base = quick_plan(args.records) if args.quick else full_plan(args.records)
    return Plan(
        records=base.records,
        records_1k=base.records_1k,
        partitions=args.partitions,
        batch_records=args.batch_records,
        e2e_rate=args.e2e_rate,
        e2e_seconds=base.e2e_seconds,
        idle_settle_s=base.idle_settle_s,
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the path of Ctrl+C, so the finally blocks stop every node.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        systems = systems_named(args.only)
        plan = make_plan(args)
    except ValueError as exc:
        print(f"vs-kafka: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    command = "scripts/bench/vs-kafka" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    try:
        if args.dir is not None:
            args.dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="vs-kafka-", dir=args.dir))
    except OSError as exc:
        print(f"vs-kafka: --dir {args.dir}: {exc.strerror}", file=sys.stderr)
        return 1
    report = measure.Reporter(run_dir / "vs-kafka.log")
    report.say(f"vs-kafka: run directory {run_dir}")
    figures: measure.Figures = {}
    started = time.monotonic()
    try:
        dist = None
        if any(s.tools == "kafka" for s in systems):
            cache = args.cache or kafka_dist.default_cache()
            report.say(f"vs-kafka: Kafka {kafka_dist.KAFKA_VERSION}'s jars in {cache}")
            dist = kafka_dist.ensure(cache, run_dir / "fetch.log")
        for system in systems:
            side: measure.Side
            if system == KAFKA:
                assert dist is not None
                side = KafkaSide(dist, run_dir / "kafka")
            elif system == OURS_OWN:
                side = OursSide(run_dir / "ours")
            else:
                assert system == OURS_KAFKA_TOOLS and dist is not None
                side = OursKafkaToolsSide(dist, run_dir / "ours-kafka-tools")
            figures |= _measure(side, plan, system, report)
    except kafka_dist.FetchError as exc:
        report.say(f"vs-kafka: {exc}")
        return 1
    except KeyboardInterrupt:
        report.say("vs-kafka: interrupted; every node was stopped")
        return 130
    finally:
        if args.keep:
            report.say(f"vs-kafka: kept {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    print(render(figures, plan.record_sizes, plan.e2e_rate, systems))
    print()
    print(tools_legend(systems))
    print(this_machine())
    print(f"command: {command}")
    print(
        f"settings: {plan.records:,} records of 100 B, {plan.records_1k:,} of 1 KiB per produce "
        f"run; {plan.partitions} partitions, replication factor 3, min.insync.replicas=2, "
        f"acks=all; batch of {plan.batch_records} records for ours and the producers tuned; "
        f"end-to-end {plan.e2e_records():,} records at {plan.e2e_rate:,.0f}/s; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    return 0


def _measure(
    side: measure.Side, plan: Plan, system: System, report: measure.Reporter
) -> measure.Figures:
    """One system's figures; a system that cannot even be set up (formatting failed) is
    reported and left out, so the others are still measured."""
    try:
        return measure.measure(side, plan, system, report)
    except (OSError, RuntimeError, AssertionError, subprocess.SubprocessError) as exc:
        report.say(f"[{side.name}] FAILED: {type(exc).__name__}: {str(exc)[:500]}")
        return {}


if __name__ == "__main__":
    sys.exit(main())
