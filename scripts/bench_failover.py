#!/usr/bin/env python3
"""Failover as scripts/bench/vs-kafka measures it, round after round, with a timeline of each
round. Prints figures, asserts nothing.

It starts its own three node processes (scripts/node_process.py's Cluster, free ports on
127.0.0.1, a temporary directory, the harness's node properties: replication factor 3,
min.insync.replicas=2; every process it started is stopped by its pid at the end, and the
directory removed), then runs ``--rounds`` rounds of each kind, the kinds taking turns:

- a new topic of one partition (made again until its leader is of the round's kind: the
  active controller, or another node);
- the harness's probe (``python -m scripts.bench.probe acks``: our Python producer, one record
  at a time to partition 0, acks=all, linger.ms=0), with its client's debug lines on;
- once it has had ``FAILOVER_ACKS_BEFORE_KILL`` acknowledgements, kill -9 of the partition's
  leader; the figure is the time from the kill to the acknowledgement of the first record
  sent after the killed process was reaped (scripts/bench/measure.py's definition);
- the round's timeline, in ms from the kill: the survivors' log lines (a new controller,
  fencing, ISR changes), what each survivor said of the metadata quorum and of the partition
  (polled every ``POLL_S``: its Raft state, the leader, the term, its log end and commit
  index; the partition's leader, leader epoch and ISR), and the client's attempts, answers,
  metadata reads and retries, so a slow round shows where its time went;
- the killed node is started again, and the next round waits until it is back in the ISR.

Then the median and the maximum of each kind. Target (issue 13): every round <= 2 s.

Usage: .venv/bin/python scripts/bench_failover.py [--rounds 10] [--kinds other,controller]
       [--quiet] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout, so that the scripts package imports (run as a file, only scripts/ is on the path).
sys.path.insert(0, str(ROOT))

from scripts.bench import parse  # noqa: E402
from scripts.bench.measure import FAILOVER_ACKS_BEFORE_KILL  # noqa: E402
from scripts.node_process import Cluster, NodeProcess, http, wait_until  # noqa: E402

TARGET_S = 2.0
KINDS = ("other", "controller")
KIND_LABELS = {"other": "leader is not the controller", "controller": "leader is the controller"}
# The harness's node properties (scripts/bench/ours_side.py).
NODE_PROPERTIES = {
    "num.partitions": "1",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
}
# The survivors' metadata is read this often during a round: fine enough to place a leader
# change within a tenth of the time it measures, light enough to leave the nodes alone.
POLL_S = 0.05
# Topics made before one's leader is of the wanted kind (a third of them are, by chance).
TOPIC_TRIES_MAX = 30
# The probe's run: longer than any round; it is killed when its round ends.
PROBE_SECONDS = 600
# A failover slower than this is a failed round (the harness allows 30 s too).
ROUND_DEADLINE_S = 30.0
# Lines of the timeline from this long before the kill (the last attempt that was answered).
BEFORE_KILL_MS = 20
# Node log lines left out of a timeline: one per request or connection, not a failover step.
_NOISE = re.compile(r"closed a connection|went away|refused a connection")
_LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] (\w+) (.*)$")
_TRACE_LINE = re.compile(r"^trace (\d+) (\S+) (.*)$")


# ---------------------------------------------------------------------------------------------
# Pure: lines in, timeline events out
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Event:
    at_ms: int  # wall clock, ms since the epoch
    source: str  # "node 2", "client", "poll node 3", "bench"
    text: str


def node_log_events(text: str, source: str, start_ms: int, end_ms: int) -> list[Event]:
    """The lines of a node's log (server/logs.py's format, local time) stamped within
    [start_ms, end_ms], noise left out; a line without a stamp belongs to the one above
    (a traceback) and is left out too."""
    events = []
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match is None:
            continue
        stamp, level, message = match.groups()
        at_ms = round(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp() * 1000)
        if start_ms <= at_ms <= end_ms and not _NOISE.search(message):
            shown = message if level == "INFO" else f"{level} {message}"
            events.append(Event(at_ms, source, shown))
    return events


def trace_events(lines: Iterable[str], start_ms: int, end_ms: int) -> list[Event]:
    """The probe's ``trace <ms> <logger> <message>`` lines within [start_ms, end_ms]."""
    events = []
    for line in lines:
        match = _TRACE_LINE.match(line.rstrip("\n"))
        if match is not None and start_ms <= int(match.group(1)) <= end_ms:
            events.append(Event(int(match.group(1)), "client", match.group(3)))
    return events


def timeline(events: Iterable[Event], kill_ms: int) -> list[str]:
    """The events in order, each as "+1234 ms  source  text" (ms after the kill)."""
    return [f"{e.at_ms - kill_ms:+6d} ms  {e.source:<12} {e.text}" for e in sorted(events)]


def summary(times: list[float]) -> str:
    """ "median M s, max X s over N rounds (target: every round <= 2 s: met|MISSED)"."""
    if not times:
        return "no round completed"
    verdict = "met" if max(times) <= TARGET_S else "MISSED"
    return (
        f"median {statistics.median(times):.2f} s, max {max(times):.2f} s over {len(times)} "
        f"rounds (target: every round <= {TARGET_S:.0f} s: {verdict})"
    )


# ---------------------------------------------------------------------------------------------
# The cluster, the probe and the pollers
# ---------------------------------------------------------------------------------------------


def describe(node: NodeProcess, topic: str) -> dict[str, Any] | None:
    status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=5)
    return body if status == 200 and isinstance(body, dict) else None


def all_in_sync(cluster: Cluster, topic: str) -> bool:
    for node in cluster.running():
        described = describe(node, topic)
        if described is None or any(len(p["isr"]) != 3 for p in described["partitions"]):
            return False
    return True


def every_broker_unfenced(cluster: Cluster) -> bool:
    for node in cluster.running():
        status, body = node.http("GET", "/v1/cluster", timeout=5)
        brokers = body.get("brokers", []) if status == 200 and isinstance(body, dict) else []
        if len(brokers) != len(cluster.nodes) or any(b.get("fenced") for b in brokers):
            return False
    return True


def topic_of_kind(cluster: Cluster, kind: str, serial: list[int]) -> tuple[str, int, int]:
    """A new topic of one partition whose leader is (kind "controller") or is not the active
    controller, every replica in sync: (topic, leader, controller)."""
    for _ in range(TOPIC_TRIES_MAX):
        serial[0] += 1
        topic = f"failover-{serial[0]}"
        status, body = cluster.nodes[0].http(
            "POST",
            "/v1/topics",
            {"name": topic, "partitions": 1, "replication_factor": 3},
            timeout=30,
        )
        if status != 201:
            raise RuntimeError(f"topic {topic} not created: {status} {body}")
        wait_until(f"{topic} in sync", lambda t=topic: all_in_sync(cluster, t), 60)
        controller = wait_until("a controller", cluster.controller_id)
        described = describe(cluster.nodes[0], topic)
        leader = None if described is None else described["partitions"][0]["leader"]
        if leader is not None and (leader == controller) == (kind == "controller"):
            return topic, int(leader), int(controller)
    raise RuntimeError(f"no topic led by the wanted kind of node after {TOPIC_TRIES_MAX} tries")


class Probe:
    """scripts/bench/probe.py acks, tracing, its stdout and stderr lines collected."""

    def __init__(self, cluster: Cluster, topic: str) -> None:
        bootstrap = ",".join(n.bootstrap for n in cluster.nodes)
        command = [sys.executable, "-m", "scripts.bench.probe", "acks", bootstrap, topic]
        self.process = subprocess.Popen(
            [*command, str(PROBE_SECONDS), "trace"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def acks(self) -> list[tuple[int, int]]:
        return parse.acks("".join(self.out))

    def wait_for(self, what: str, check: Callable[[], Any], deadline_s: float) -> Any:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            if self.process.poll() is not None:
                raise RuntimeError(f"the probe ended: {''.join(self.err[-5:])}")
            time.sleep(0.005)
        raise RuntimeError(f"{what}: not within {deadline_s:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for reader in self._readers:
            reader.join(5)


class Poller:
    """Reads each survivor's view of the controller and of the partition every POLL_S, and
    keeps the changes as events."""

    def __init__(self, nodes: list[NodeProcess], topic: str) -> None:
        self.events: list[Event] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, args=(node, topic), daemon=True) for node in nodes
        ]
        for thread in self._threads:
            thread.start()

    def _poll(self, node: NodeProcess, topic: str) -> None:
        seen: dict[str, str] = {}
        while not self._stop.is_set():
            views: dict[str, str] = {}
            try:
                status, body = node.http("GET", "/v1/cluster/quorum", timeout=2)
                if status == 200:
                    me: dict[str, Any] = next(
                        (v for v in body["voters"] if v["id"] == node.node_id), {}
                    )
                    views["raft"] = (
                        f"raft: {me.get('status', '?').lower()}, leader {body.get('leader_id')}, "
                        f"term {body.get('term')}, log end {me.get('log_end_offset')}, "
                        f"commit {body.get('commit_index')}"
                    )
                part = (describe(node, topic) or {}).get("partitions", [{}])[0]
                if part:
                    views["partition"] = (
                        f"leader {part.get('leader')} epoch {part.get('leader_epoch')} "
                        f"isr {part.get('isr')}"
                    )
            except OSError as e:
                views["error"] = str(e)
            now_ms = int(time.time() * 1000)
            for key, view in views.items():
                if seen.get(key) != view:
                    seen[key] = view
                    self.events.append(Event(now_ms, f"poll node {node.node_id}", view))
            self._stop.wait(POLL_S)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


@dataclass
class Round:
    kind: str
    victim: int
    seconds: float | None
    lines: list[str] = field(default_factory=list)


def failover_round(cluster: Cluster, kind: str, serial: list[int]) -> Round:
    topic, leader, controller = topic_of_kind(cluster, kind, serial)
    victim = cluster.node(leader)
    survivors = [n for n in cluster.nodes if n is not victim]
    probe = Probe(cluster, topic)
    poller: Poller | None = None
    events: list[Event] = []
    try:
        probe.wait_for(
            "acknowledgements before the kill",
            lambda: len(probe.acks()) >= FAILOVER_ACKS_BEFORE_KILL,
            120,
        )
        poller = Poller(survivors, topic)
        kill_ms = int(time.time() * 1000)
        victim.stop(signal.SIGKILL)
        dead_ms = int(time.time() * 1000)  # reaped: nothing sent from now on reached it
        killed = f"kill -9 of node {leader} (controller {controller})"
        events.append(Event(kill_ms, "bench", killed))
        events.append(Event(dead_ms, "bench", "killed process reaped"))
        try:
            ack_ms = probe.wait_for(
                "an acknowledgement after the kill",
                lambda: parse.first_ack_sent_after(probe.acks(), dead_ms),
                ROUND_DEADLINE_S,
            )
        except RuntimeError as e:
            ack_ms = None
            events.append(Event(int(time.time() * 1000), "bench", str(e)))
        end_ms = int(time.time() * 1000) if ack_ms is None else ack_ms
        time.sleep(0.1)  # the last log lines reach the files
    finally:
        if poller is not None:
            poller.stop()
        probe.stop()
    events += poller.events if poller is not None else []
    if ack_ms is not None:
        events.append(Event(ack_ms, "bench", "first record sent after the kill acknowledged"))
    for node in survivors:
        text = node.log_file.read_text(errors="replace")
        events += node_log_events(text, f"node {node.node_id}", kill_ms - BEFORE_KILL_MS, end_ms)
    events += trace_events(probe.err, kill_ms - BEFORE_KILL_MS, end_ms)
    seconds = None if ack_ms is None else (ack_ms - kill_ms) / 1000
    result = Round(kind, leader, seconds, timeline(events, kill_ms))
    victim.start()
    wait_until("the killed node back in the ISR", lambda: all_in_sync(cluster, topic), 120)
    wait_until("every broker unfenced", lambda: every_broker_unfenced(cluster), 60)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of each kind")
    parser.add_argument("--kinds", default=",".join(KINDS), help="other, controller or both")
    parser.add_argument("--quiet", action="store_true", help="no timelines, one line a round")
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary dir goes")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"--kinds: unknown kind(s) {', '.join(unknown)}; give other, controller")
    workdir = Path(tempfile.mkdtemp(prefix="bench-failover-", dir=args.dir))
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    serial = [0]
    try:
        properties: Any = NODE_PROPERTIES  # through **: Kafka's dotted names
        cluster = Cluster.create(workdir, 3, **properties)
        try:
            cluster.start()
            print(f"three nodes up on 127.0.0.1 (load average {os.getloadavg()[0]:.1f})")
            for round_no in range(1, args.rounds + 1):
                for kind in kinds:
                    result = failover_round(cluster, kind, serial)
                    figure = "no ack" if result.seconds is None else f"{result.seconds:.2f} s"
                    print(
                        f"round {round_no}, {KIND_LABELS[kind]}: node {result.victim} killed, "
                        f"next ack after {figure}",
                        flush=True,
                    )
                    if not args.quiet:
                        print("\n".join("    " + line for line in result.lines), flush=True)
                    if result.seconds is not None:
                        times[kind].append(result.seconds)
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for kind in kinds:
        print(f"{KIND_LABELS[kind]}: {summary(times[kind])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
