"""Producing and end-to-end latency on our three nodes, as scripts/bench/vs-kafka measures them,
repeated: several runs in one cluster, each figure per run and their medians.

    .venv/bin/python scripts/bench_e2e.py [--runs 3] [--sizes 100,1024] [--rate 1000]
        [--seconds 10] [--produce-records 300000] [--skip-produce] [--skip-e2e]
        [--profile-dir DIR] [--baseline DIR]

Starts three nodes (scripts/bench/ours_side.py's, as the harness does: replication factor 3,
``min.insync.replicas=2``, topics of 3 partitions), then for each run and each record size:

- produce: ``kraft-producer-perf-test`` of ``--produce-records`` records (a fifth of them of
  1 KiB or more, as the harness), acks=all, its ``batch.size`` for 1,000 records (the
  harness's); records/s, its latency line, and the CPU time a record cost the producer
  process and the three nodes (less sensitive to the machine's other load than the rate),
  and the producer's without its start-up (measured first with one-record runs);
- end-to-end: ``scripts/bench/probe.py e2e`` (a producer process at ``--rate`` records/s,
  linger.ms 5, acks=all; a consumer assigned every partition) for ``--seconds``: p50, p99,
  p99.9 and max of send -> received, the first 100 records left out as the harness does.

With ``--baseline DIR`` (another checkout: a git worktree, or ``git archive REV client | tar -x
-C DIR`` for a client change) each produce is made twice in a row, by this tree's perf tool and
by DIR's, to the same cluster, and both are reported: a client change measured interleaved.
With ``--profile-dir``, py-spy (``pip install py-spy``; not a dependency) samples every node
through each phase (the thread holding the GIL: where Python spends the CPU) and writes
``<phase>-<size>-run<N>-node<id>.txt`` there (py-spy's raw format: one stack a line, its
count last; the script prints each node's busiest functions).
The machine's other load shows in every figure: compare runs made in the same minutes.
"""

from __future__ import annotations

import argparse
import collections
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench import parse  # noqa: E402
from scripts.bench.measure import run_command  # noqa: E402
from scripts.bench.ours_side import OursSide  # noqa: E402
from scripts.bench.plan import batch_bytes, tool_timeout_s  # noqa: E402
from scripts.node_process import cpu_seconds  # noqa: E402

PARTITIONS = 3
BATCH_RECORDS = 1000
# One-record runs of the perf tool that measure its start-up CPU (their median is taken).
STARTUP_RUNS = 3
PROBE_TIMEOUT_S = 180.0
# py-spy's sampling rate while profiling (samples a second).
PROFILE_RATE_HZ = 200
# A node's busiest functions printed per profile.
PROFILE_TOP = 12


class Profiler:
    """py-spy on every node through one phase (nothing when no directory is given)."""

    def __init__(self, directory: Path | None, side: OursSide) -> None:
        self.directory = directory
        self.side = side
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, phase: str) -> None:
        if self.directory is None:
            return
        assert self.side.cluster is not None
        for node in self.side.cluster.running():
            assert node.pid is not None
            out = self.directory / f"{phase}-node{node.node_id}.txt"
            command = [
                str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(node.pid),
                "--rate", str(PROFILE_RATE_HZ), "--gil", "--format", "raw", "--output", str(out),
            ]  # fmt: skip
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            self.running.append((process, out))

    def stop(self) -> None:
        for process, out in self.running:
            process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if out.exists():
                print(f"  profile {out.name}: {summary(out)}")
        self.running = []


def summary(path: Path) -> str:
    """The busiest functions of a py-spy raw profile (share of samples, own time)."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        own[stack.split(";")[-1]] += int(count)
    if not total:
        return "no samples"
    return "; ".join(f"{100 * n / total:.0f}% {frame}" for frame, n in own.most_common(PROFILE_TOP))


class CpuMeter:
    """CPU seconds (user + system) used by the nodes and by this script's children (the perf
    tool, the probe) between :meth:`start` and :meth:`stop`: a figure much less sensitive
    to the machine's other load than a rate."""

    def __init__(self, side: OursSide) -> None:
        self.side = side
        self.nodes_s = self.tools_s = 0.0

    def _nodes(self) -> float:
        assert self.side.cluster is not None
        return sum(cpu_seconds(pid) for pid in self.side.node_pids())

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self.nodes_s, self.tools_s = self._nodes(), self._children()

    def stop(self) -> tuple[float, float]:
        """(the nodes' CPU seconds, the tools' CPU seconds) since :meth:`start`."""
        return self._nodes() - self.nodes_s, self._children() - self.tools_s


def produce(
    side: OursSide, topic: str, records: int, size: int, tree: Path | None = None
) -> parse.ProduceResult:
    """``kraft-producer-perf-test`` on ``topic``; with ``tree``, that checkout's tool and
    client (run from its directory) instead of this one's."""
    props = {"batch.size": str(batch_bytes(BATCH_RECORDS, size))}
    if tree is None:
        return parse.producer_performance(side.producer_perf(topic, records, size, props))
    pairs = [f"{k}={v}" for k, v in {"acks": "all", **props}.items()]
    command = [
        sys.executable, "-m", "client.tools.producer_perf_test",
        "--bootstrap-server", side.bootstrap, "--topic", topic,
        "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
        "--producer-props", *pairs,
    ]  # fmt: skip
    text = run_command(command, f"perf tool of {tree}", tool_timeout_s(records), tree)
    return parse.producer_performance(text)


def e2e(side: OursSide, topic: str, records: int, rate: float, size: int) -> parse.LatencyResult:
    command = side.probe("e2e", topic, str(records), str(rate), str(size))
    text = run_command(command, "e2e probe", PROBE_TIMEOUT_S, ROOT)
    return parse.e2e_latency(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="100,1024")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--produce-records", type=int, default=300_000)
    parser.add_argument("--skip-produce", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--profile-dir", type=Path)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (git worktree, or `git archive REV client | tar -x -C DIR`) "
        "whose perf tool and client produce too, right after this tree's in each run, to the "
        "same cluster: the two interleaved, as a change must be measured on a busy machine",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.profile_dir is not None:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    # Keyed by (tree, size): tree "" is this one, "baseline" the --baseline checkout.
    produced: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
    # (producer, nodes, producer past its start-up), us a record.
    cpu: dict[tuple[str, int], list[tuple[float, float, float]]] = collections.defaultdict(list)
    trees: list[tuple[str, Path | None]] = [("", None)]
    if args.baseline is not None:
        trees.append(("baseline", args.baseline.resolve()))
    latencies: dict[int, list[parse.LatencyResult]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as directory:
        side = OursSide(Path(directory))
        side.prepare()
        profiler = Profiler(args.profile_dir, side)
        meter = CpuMeter(side)
        try:
            side.launch()
            assert side.cluster is not None
            for node in side.cluster.nodes:
                node.wait_ready()
            for size in sizes:
                for kind in ("perf", "e2e"):
                    side.create_topic(f"{kind}-{size}", PARTITIONS, {})
            # The perf tool's start-up (imports, metadata: ~0.26-0.29 s of CPU here) is part
            # of each produce's CPU: 0.9 us a record of 300,000. Measured alone (one record),
            # it is taken out of the figure "past its start-up".
            startup_s: dict[str, float] = {}
            for name, tree in [] if args.skip_produce else trees:
                spent = []
                for _ in range(STARTUP_RUNS):
                    meter.start()
                    produce(side, f"perf-{sizes[0]}", 1, sizes[0], tree)
                    spent.append(meter.stop()[1])
                startup_s[name] = statistics.median(spent)
                print(
                    f"perf tool{' ' if name else ''}{name} start-up and one record: "
                    f"{startup_s[name]:.3f} s of CPU (median of {STARTUP_RUNS})",
                    flush=True,
                )
            for run in range(1, args.runs + 1):
                for size in sizes:
                    # Every other run the other tree first: neither gains from going first.
                    order = trees if run % 2 else trees[::-1]
                    for name, tree in [] if args.skip_produce else order:
                        label = f"produce{'-' if name else ''}{name}-{size}-run{run}"
                        profiler.start(label)
                        count = args.produce_records // (5 if size >= 1024 else 1)
                        meter.start()
                        result = produce(side, f"perf-{size}", count, size, tree)
                        nodes_s, tool_s = meter.stop()
                        profiler.stop()
                        key = (name, size)
                        produced[key].append(result.records_per_s)
                        past_startup = (tool_s - startup_s[name]) / max(count - 1, 1)
                        cpu[key].append(
                            (tool_s / count * 1e6, nodes_s / count * 1e6, past_startup * 1e6)
                        )
                        print(
                            f"run {run} produce{' ' if name else ''}{name} {size} B: "
                            f"{result.records_per_s:,.0f} records/s, {result.mb_per_s:.1f} MB/s, "
                            f"latency p50 {result.p50_ms:.0f} ms p99 {result.p99_ms:.0f} ms; "
                            f"CPU a record: producer {cpu[key][-1][0]:.2f} us "
                            f"({cpu[key][-1][2]:.2f} us past its start-up), nodes "
                            f"{cpu[key][-1][1]:.2f} us",
                            flush=True,
                        )
                    if not args.skip_e2e:
                        records = max(1, int(args.rate * args.seconds))
                        profiler.start(f"e2e-{size}-run{run}")
                        latency = e2e(side, f"e2e-{size}", records, args.rate, size)
                        profiler.stop()
                        latencies[size].append(latency)
                        print(
                            f"run {run} e2e {size} B at {latency.rate:,.0f}/s: p50 "
                            f"{latency.p50_ms:.1f} p99 {latency.p99_ms:.1f} p99.9 "
                            f"{latency.p999_ms:.1f} max {latency.max_ms:.1f} ms "
                            f"({latency.count} of {latency.expected})",
                            flush=True,
                        )
                    time.sleep(0.5)
        finally:
            profiler.stop()
            side.stop()
    for size in sizes:
        for name, _tree in trees:
            rates = produced[(name, size)]
            if not rates:
                continue
            cpus = cpu[(name, size)]
            print(
                f"produce{' ' if name else ''}{name} {size} B: median "
                f"{statistics.median(rates):,.0f} records/s "
                f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}); CPU a record, medians: "
                f"producer {statistics.median(c[0] for c in cpus):.2f} us "
                f"(runs: {', '.join(f'{c[0]:.2f}' for c in cpus)}; past its start-up "
                f"{statistics.median(c[2] for c in cpus):.2f} us), nodes "
                f"{statistics.median(c[1] for c in cpus):.2f} us"
            )
        if latencies[size]:
            rows = latencies[size]
            print(
                f"e2e {size} B: median p50 {statistics.median(r.p50_ms for r in rows):.1f} "
                f"p99 {statistics.median(r.p99_ms for r in rows):.1f} "
                f"p99.9 {statistics.median(r.p999_ms for r in rows):.1f} "
                f"max {statistics.median(r.max_ms for r in rows):.1f} ms "
                f"(p99 of the runs: {', '.join(f'{r.p99_ms:.1f}' for r in rows)})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
