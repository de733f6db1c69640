"""One chaos run: a three-node cluster behind Toxiproxy, the workload, a fault schedule, the
heal, and every check the issue asks for after it.

A run is: create the cluster (every inter-node link proxied), create a busy topic and an idle
canary topic (written once, before any fault), start the writers and readers, let them work
a moment, run the schedule's faults, heal (toxics removed, paused nodes resumed, dead nodes
restarted), let the workload prove the cluster writable, stop it, then check: every partition
of every topic with its full ISR, the same metadata on every node, the replicas byte-identical,
the history free of anomalies, the node logs clean. Every process started here is stopped
here, by pid.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.chaos import toxics
from tests.chaos.checker import Anomaly, Write, check_history, check_log, longest_gap_s
from tests.chaos.workload import History, Reader, Writer, leader_node, read_partition
from tests.integration.test_cluster import create_topic
from tests.integration.test_replication import wait_identical_replicas

BUSY = "busy"
BUSY_PARTITIONS = 3
CANARY = "canary"
CANARY_PARTITIONS = 3
# The workload runs this long before the faults and after the heal (the cluster must take
# writes again before the checks).
WARM_UP_S = 3.0
AFTER_HEAL_S = 5.0
# The deadline for every partition to have its full ISR again after the heal.
FULL_ISR_DEADLINE_S = 60.0
METADATA_DEADLINE_S = 30.0
# A message template logged more often than this after the heal is a loop (the node's own
# limiter lets 50 a minute through, and the checked window is well under a minute).
AFTER_HEAL_REPEAT_MAX = 30
# With no client and the cluster whole, a node long-polls its leaders and heartbeats; the
# issue's looping follower burned about 40% of a core. Measured over IDLE_WINDOW_S.
IDLE_CPU_MAX = 0.25
IDLE_WINDOW_S = 3.0
# ERROR lines a fault is expected to cause (a peer unreachable is the fault itself).
ALLOWED_ERRORS: tuple[re.Pattern[str], ...] = ()


@dataclass
class Run:
    """What a schedule acts on: the cluster, its links, and the workload's history."""

    cluster: Cluster
    links: toxics.Links
    history: History = field(default_factory=History)
    paused: set[int] = field(default_factory=set)

    # -- what schedules use -------------------------------------------------------------------

    def leader(self, partition: int = 0) -> int:
        node = wait_until(
            f"{BUSY}-{partition} has a leader",
            lambda: leader_node(self.cluster, BUSY, partition),
        )
        return int(node.node_id)

    def controller(self) -> int:
        return int(wait_until("a controller", self.cluster.controller_id))

    def kill(self, node_id: int) -> None:
        self.cluster.node(node_id).kill()

    def restart(self, node_id: int) -> None:
        node = self.cluster.node(node_id)
        if node.process is None or node.process.poll() is not None:
            node.start(wait=False)

    def pause(self, node_id: int) -> None:
        pid = self.cluster.node(node_id).pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        self.paused.add(node_id)

    def resume(self, node_id: int) -> None:
        pid = self.cluster.node(node_id).pid
        if pid is not None and node_id in self.paused:
            os.kill(pid, signal.SIGCONT)
        self.paused.discard(node_id)

    def heal(self) -> None:
        toxics.reset()
        for node_id in list(self.paused):
            self.resume(node_id)
        for node in self.cluster.nodes:
            self.restart(node.node_id)
        for node in self.cluster.nodes:
            node.wait_ready()


@dataclass
class Result:
    schedule: str
    ok: int = 0
    failed: int = 0
    unknown: int = 0
    anomalies: list[str] = field(default_factory=list)
    unavailable_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    ack_times: list[float] = field(default_factory=list)
    idle_cpu: dict[int, float] = field(default_factory=dict)

    def row(self) -> str:
        return (
            f"{self.schedule:<26} {self.ok:>6} {self.failed:>6} {self.unknown:>7} "
            f"{len(self.anomalies):>9} {self.unavailable_s:>9.1f} s "
            f"{max(self.idle_cpu.values(), default=0):>8.0%}"
        )


HEADER = (
    f"{'schedule':<26} {'ok':>6} {'failed':>6} {'unknown':>7} {'anomalies':>9} "
    f"{'unavail.':>11} {'idle cpu':>8}"
)


def _log_offsets(cluster: Cluster) -> dict[int, int]:
    return {
        n.node_id: n.log_file.stat().st_size if n.log_file.exists() else 0 for n in cluster.nodes
    }


def run_schedule(
    directory: Path, name: str, faults: Callable[[Run], None], result: Result
) -> list[Anomaly]:
    """Runs one schedule end to end and returns every anomaly found; fills ``result``."""
    cluster = Cluster.create(directory, **{"min.insync.replicas": "2"})
    prefix = re.sub(r"[^a-z0-9]+", "-", name.lower())
    links = toxics.Links.create(cluster, prefix)
    run = Run(cluster, links)
    clients: list[Writer | Reader] = []
    try:
        cluster.start()
        create_topic(cluster.nodes[0], BUSY, partitions=BUSY_PARTITIONS, replication_factor=3)
        create_topic(cluster.nodes[0], CANARY, partitions=CANARY_PARTITIONS, replication_factor=3)
        _write_canary(run)
        for p in range(BUSY_PARTITIONS):
            clients.append(Writer(cluster, BUSY, p, run.history, f"w{p}"))
            clients.append(Reader(cluster, BUSY, p, run.history, f"r{p}"))
        for client in clients:
            client.start()
        time.sleep(WARM_UP_S)
        fault_start = time.monotonic()
        faults(run)
        run.heal()
        time.sleep(AFTER_HEAL_S)
        for client in clients:
            client.stop()
        for client in clients:
            client.join()
        end = time.monotonic()
        result.unavailable_s = longest_gap_s(run.history.ack_times(), fault_start, end)
        log_marks = _log_offsets(cluster)
        found = _after_heal(run)
        result.idle_cpu = _idle_cpu(cluster)
        found += [
            Anomaly("idle-cpu", f"node {n}: {share:.0%} of a core with no client")
            for n, share in result.idle_cpu.items()
            if share > IDLE_CPU_MAX
        ]
        found += _check_logs(cluster, log_marks)
        return found
    finally:
        for client in clients:
            client.stop()
        for node_id in list(run.paused):
            run.resume(node_id)
        cluster.stop()
        links.destroy()
        writes = run.history.writes
        result.ok = sum(w.outcome == "ok" for w in writes)
        result.failed = sum(w.outcome == "failed" for w in writes)
        result.unknown = sum(w.outcome == "unknown" for w in writes)
        result.errors = dict(run.history.errors)
        result.ack_times = run.history.ack_times()


def _write_canary(run: Run) -> None:
    """Two records in each canary partition, acknowledged before any fault, never again."""
    for p in range(CANARY_PARTITIONS):
        values = (f"{CANARY}-{p}-a", f"{CANARY}-{p}-b")

        def attempt(p: int = p, values: tuple[str, ...] = values) -> list[int] | None:
            leader = leader_node(run.cluster, CANARY, p)
            if leader is None:
                return None
            status, body = http(
                "POST",
                f"{leader.url}/v1/topics/{CANARY}/partitions/{p}/records?acks=all&timeout_ms=5000",
                {"records": [{"value": v} for v in values]},
            )
            return [int(o["offset"]) for o in body["offsets"]] if status == 200 else None

        offsets = wait_until(f"{CANARY}-{p} written", attempt)
        run.history.write(Write(f"{CANARY}-{p}", values, "ok", tuple(offsets), time.monotonic()))


def _full_isr(cluster: Cluster, topic: str, partitions: int) -> bool:
    for node in cluster.nodes:
        status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=5)
        if status != 200:
            return False
        for p in body["partitions"][:partitions]:
            if sorted(p["isr"]) != [n.node_id for n in cluster.nodes] or p["leader"] is None:
                return False
    return True


def _describe_isr(cluster: Cluster, topic: str) -> str:
    out = []
    for node in cluster.nodes:
        try:
            status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=5)
        except OSError as e:
            out.append(f"node {node.node_id}: {e}")
            continue
        if status == 200:
            parts = [(p["partition"], p["leader"], p["isr"]) for p in body["partitions"]]
            out.append(f"node {node.node_id}: (partition, leader, isr) {parts}")
        else:
            out.append(f"node {node.node_id}: {status} {body}")
    return "; ".join(out)


def _digests(cluster: Cluster) -> dict[int, tuple[int, str]]:
    out = {}
    for node in cluster.nodes:
        status, body = http("GET", f"{node.url}/v1/cluster/quorum", timeout=5)
        assert status == 200, body
        out[node.node_id] = (body["node"]["applied_index"], body["node"]["metadata_digest"])
    return out


def _after_heal(run: Run) -> list[Anomaly]:
    cluster = run.cluster
    found: list[Anomaly] = []
    for topic, count in ((BUSY, BUSY_PARTITIONS), (CANARY, CANARY_PARTITIONS)):
        try:
            wait_until(
                f"{topic}: full ISR",
                lambda t=topic, c=count: _full_isr(cluster, t, c),
                FULL_ISR_DEADLINE_S,
            )
        except AssertionError:
            found.append(
                Anomaly(
                    "isr-not-full",
                    f"{topic} after {FULL_ISR_DEADLINE_S:.0f} s: {_describe_isr(cluster, topic)}",
                )
            )
    try:
        wait_until(
            "the same metadata on every node",
            lambda: len(set(_digests(cluster).values())) == 1,
            METADATA_DEADLINE_S,
        )
    except AssertionError:
        found.append(Anomaly("metadata-differs", f"(applied index, digest): {_digests(cluster)}"))
    final: dict[str, list[tuple[int, str]]] = {}
    for topic, count in ((BUSY, BUSY_PARTITIONS), (CANARY, CANARY_PARTITIONS)):
        for p in range(count):
            leader = wait_until(
                f"{topic}-{p} leader", lambda t=topic, p=p: leader_node(cluster, t, p)
            )
            final[f"{topic}-{p}"] = read_partition(leader, topic, p)
            try:
                wait_identical_replicas(cluster.nodes, topic, p)
            except AssertionError as e:
                found.append(Anomaly("replicas-differ", f"{topic}-{p}: {str(e)[:500]}"))
    found += check_history(run.history.writes, run.history.polls, final)
    return found


def _check_logs(cluster: Cluster, marks: dict[int, int]) -> list[Anomaly]:
    """Tracebacks and ERROR lines in the whole log; loops in what was logged after the heal
    (a fault may well make a node repeat a warning while it lasts)."""
    found = []
    for node in cluster.nodes:
        text = _read(node)
        whole = check_log(str(node.node_id), text, repeat_max=10**9, allowed_errors=ALLOWED_ERRORS)
        tail = text.encode()[marks.get(node.node_id, 0) :].decode(errors="replace")
        loops = check_log(str(node.node_id), tail, repeat_max=AFTER_HEAL_REPEAT_MAX)
        found += whole + [a for a in loops if a.kind == "log-loop"]
    return found


def _read(node: NodeProcess) -> str:
    try:
        return node.log_file.read_text(errors="replace")
    except OSError:
        return ""


def _cpu_s(node: NodeProcess) -> float:
    assert node.pid is not None
    fields = Path(f"/proc/{node.pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime, fields 14 and 15 of proc(5), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _idle_cpu(cluster: Cluster) -> dict[int, float]:
    """Each node's share of a core over IDLE_WINDOW_S, with no client at work."""
    before = {n.node_id: _cpu_s(n) for n in cluster.nodes}
    time.sleep(IDLE_WINDOW_S)
    return {n.node_id: (_cpu_s(n) - before[n.node_id]) / IDLE_WINDOW_S for n in cluster.nodes}
