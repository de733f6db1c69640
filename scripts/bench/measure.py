"""One system's measurements for scripts/bench/vs-kafka, in the same order for Kafka, for ours
and for ours measured with Kafka's tools (the I/O: processes, clocks, /proc); the figures go
into a dict per way (scripts/bench/plan.py) under the keys scripts/bench/table.py shows.

The order, on one cluster started once:

1. cold start: the nodes are launched (their directories formatted before), and at the same
   moment a probe that produces one record (``acks=all``) to a new topic until one is
   acknowledged; the figure is launch to acknowledgement
2. resident memory idle: VmRSS of the three node processes (and any children), summed, after
   ``idle_settle_s``
3. per record size: produce (each way's topic and producer settings, from the perf tool's
   closing line), consume the main way's topic (with a group, as Kafka's tool always
   joins one; its line also gives the rate without the join), end-to-end latency at a fixed
   rate on a new topic
4. resident memory after load
5. failover: a probe sends to partition 0 of a new topic one record at a time; once it is
   acknowledging, the partition's leader is killed with SIGKILL; the figure is the kill to
   the acknowledgement of the first record sent after the killed process was reaped (an
   answer of the old leader read just after the kill once made a failover of 0 s)

A step that fails is reported (stderr and the run's log) and its figures are left out: the
table shows ``n/a`` for them; the other steps still run.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Protocol

from scripts.bench import parse
from scripts.bench.plan import Plan, ProduceRun, System, way_topic
from scripts.bench.table import size_label
from scripts.node_process import ROOT

Figures = dict[str, dict[str, float]]
COLD_START_DEADLINE_S = 300.0
PROBE_TIMEOUT_S = 600.0
FAILOVER_ACKS_BEFORE_KILL = 20


class Side(Protocol):
    name: str

    @property
    def bootstrap(self) -> str: ...
    def prepare(self) -> None: ...
    def launch(self) -> None: ...
    def node_pids(self) -> list[int]: ...
    def create_topic(self, topic: str, partitions: int, configs: dict[str, str]) -> None: ...
    def producer_perf(self, topic: str, records: int, size: int, props: dict[str, str]) -> str: ...
    def consumer_perf(self, topic: str, records: int, group: str) -> str: ...
    def probe(self, *args: str) -> list[str]: ...
    def leader(self, topic: str, partition: int) -> int | None: ...
    def kill(self, node_id: int) -> None: ...
    def stop(self) -> None: ...
    def log_tail(self) -> str: ...


class Reporter:
    """Progress on stderr, everything (commands' failures, log tails) in the run's log."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def say(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        with self.log.open("a") as f:
            f.write(line + "\n")

    def detail(self, text: str) -> None:
        with self.log.open("a") as f:
            f.write(text + "\n")


def rss_mib(pids: list[int]) -> float:
    """VmRSS of the processes and their descendants, summed, in MiB."""
    total_kib = 0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            total_kib += parse.vm_rss_kib(Path(f"/proc/{pid}/status").read_text())
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, parse.ParseError):
            continue  # exited meanwhile
    return total_kib / 1024


def run_command(command: list[str], what: str, timeout_s: float, cwd: Path | None = None) -> str:
    """Runs a tool or probe to completion; its stdout. A failure raises RuntimeError naming
    ``what``, with the end of its stderr."""
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout_s, cwd=cwd, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{what} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out.stdout


def run_probe(command: list[str], timeout_s: float = PROBE_TIMEOUT_S) -> str:
    return run_command(command, f"probe {command[-6:]}", timeout_s, ROOT)


def measure(side: Side, plan: Plan, system: System, report: Reporter) -> Figures:
    """Every figure of ``side`` (each way of ``system``), the cluster stopped after."""
    main = system.main
    figures: Figures = {w: {} for w in system.ways}
    tag = system.name

    def step(label: str, action: Callable[[], None]) -> None:
        started = time.monotonic()
        try:
            action()
        except Exception as exc:  # noqa: BLE001  (reported; the run goes on without it)
            report.say(f"[{tag}] {label}: FAILED ({type(exc).__name__}: {str(exc)[:300]})")
            report.detail(traceback.format_exc() + "\n" + side.log_tail())
        else:
            report.detail(f"[{tag}] {label}: {time.monotonic() - started:.1f} s")

    report.say(f"[{tag}] formatting three nodes")
    side.prepare()
    try:
        step("cold start", lambda: _cold_start(side, figures[main], report, tag))

        def idle() -> None:
            time.sleep(plan.idle_settle_s)
            figures[main]["rss_idle_mib"] = rss_mib(side.node_pids())
            report.say(f"[{tag}] resident memory idle: {figures[main]['rss_idle_mib']:.0f} MiB")

        step("idle memory", idle)
        for size in plan.record_sizes:
            for run in plan.produce_runs(system, size):
                step(
                    f"produce {size_label(size)} {run.way}",
                    partial(_produce, side, plan, size, run, figures, report, tag),
                )
            consume_topic = way_topic(main, size)
            if f"produce_rps/{size}" in figures[main]:
                step(
                    f"consume {size_label(size)}",
                    partial(_consume, side, plan, size, consume_topic, figures[main], report, tag),
                )
            else:
                # A topic the producer did not fill would measure a partial read and a wait.
                report.say(f"[{tag}] consume {size_label(size)}: skipped (its produce run failed)")
            step(
                f"end-to-end {size_label(size)}",
                partial(_e2e, side, plan, size, figures[main], report, tag),
            )

        def load() -> None:
            figures[main]["rss_load_mib"] = rss_mib(side.node_pids())
            report.say(
                f"[{tag}] resident memory after load: {figures[main]['rss_load_mib']:.0f} MiB"
            )

        step("memory after load", load)
        step("failover", lambda: _failover(side, plan, figures[main], report, tag))
    finally:
        report.say(f"[{tag}] stopping the nodes")
        side.stop()
    return figures


def _cold_start(side: Side, out: dict[str, float], report: Reporter, tag: str) -> None:
    start_ms = int(time.time() * 1000)
    side.launch()
    text = run_probe(
        side.probe("first-ack", "bench-first-ack", str(start_ms)), COLD_START_DEADLINE_S
    )
    out["cold_start_s"] = parse.first_ack_ms(text) / 1000
    report.say(f"[{tag}] cold start to first acked produce: {out['cold_start_s']:.2f} s")


def _produce(
    side: Side,
    plan: Plan,
    size: int,
    run: ProduceRun,
    figures: Figures,
    report: Reporter,
    tag: str,
) -> None:
    side.create_topic(run.topic, plan.partitions, dict(run.topic_configs))
    text = side.producer_perf(run.topic, plan.records_for(size), size, dict(run.producer_props))
    report.detail(text)
    result = parse.producer_performance(text)
    out = figures[run.way]
    out[f"produce_rps/{size}"] = result.records_per_s
    out[f"produce_mbs/{size}"] = result.mb_per_s
    out[f"produce_p99/{size}"] = result.p99_ms
    settings = (
        " ".join(f"{k}={v}" for k, v in {**run.topic_configs, **run.producer_props}.items())
        or "defaults"
    )
    report.say(
        f"[{tag}] produce {size_label(size)} {run.way} ({settings}): {result.records:,} records, "
        f"{result.records_per_s:,.0f} records/s, {result.mb_per_s:.2f} MB/s, p99 {result.p99_ms} ms"
    )


def _consume(
    side: Side, plan: Plan, size: int, topic: str, out: dict[str, float], report: Reporter, tag: str
) -> None:
    text = side.consumer_perf(topic, plan.records_for(size), f"bench-{size}")
    report.detail(text)
    result = parse.consumer_performance(text)
    if result.records < plan.records_for(size):
        raise RuntimeError(
            f"only {result.records} of {plan.records_for(size)} records were read (it stopped "
            "after 30 s without one)"
        )
    out[f"consume_rps/{size}"] = result.records_per_s
    out[f"consume_fetch_rps/{size}"] = result.fetch_records_per_s
    out[f"consume_mbs/{size}"] = result.mb_per_s
    report.say(
        f"[{tag}] consume {size_label(size)}: {result.records:,} records, "
        f"{result.records_per_s:,.0f} records/s ({result.fetch_records_per_s:,.0f} without the "
        f"{result.rebalance_ms} ms group join)"
    )


def _e2e(
    side: Side, plan: Plan, size: int, out: dict[str, float], report: Reporter, tag: str
) -> None:
    topic = f"e2e-{size}"
    side.create_topic(topic, plan.partitions, {})
    records = plan.e2e_records()
    text = run_probe(side.probe("e2e", topic, str(records), str(plan.e2e_rate), str(size)))
    result = parse.e2e_latency(text)
    if result.count < result.expected:
        raise RuntimeError(f"only {result.count} of {result.expected} records came back")
    out[f"e2e_p50/{size}"] = result.p50_ms
    out[f"e2e_p99/{size}"] = result.p99_ms
    report.say(
        f"[{tag}] end-to-end {size_label(size)} at {result.rate:,.0f}/s: p50 {result.p50_ms:.1f} "
        f"ms, p99 {result.p99_ms:.1f} ms, p99.9 {result.p999_ms:.1f} ms"
    )


def _failover(side: Side, plan: Plan, out: dict[str, float], report: Reporter, tag: str) -> None:
    topic = "bench-failover"
    side.create_topic(topic, 1, {})
    probe = subprocess.Popen(
        side.probe("acks", topic, str(plan.failover_probe_s + 60)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    lines: list[str] = []

    def read() -> None:
        assert probe.stdout is not None
        for line in probe.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while len(parse.acks("".join(lines))) < FAILOVER_ACKS_BEFORE_KILL:
            if time.monotonic() > deadline or probe.poll() is not None:
                raise RuntimeError("the failover probe is not acknowledging")
            time.sleep(0.1)
        leader = side.leader(topic, 0)
        if leader is None:
            raise RuntimeError(f"{topic}-0 has no leader")
        kill_ms = int(time.time() * 1000)
        side.kill(leader)
        dead_ms = int(time.time() * 1000)  # reaped: nothing sent from now on reached it
        deadline = time.monotonic() + plan.failover_probe_s
        while (ack := parse.first_ack_sent_after(parse.acks("".join(lines)), dead_ms)) is None:
            if time.monotonic() > deadline or probe.poll() is not None:
                raise RuntimeError(
                    f"no acknowledgement within {plan.failover_probe_s:.0f} s of the kill"
                )
            time.sleep(0.01)
        out["failover_s"] = (ack - kill_ms) / 1000
        report.say(
            f"[{tag}] failover, kill -9 of node {leader} to the next ack: {out['failover_s']:.2f} s"
        )
    finally:
        if probe.poll() is None:
            probe.kill()
        probe.wait()
        reader.join(5)
