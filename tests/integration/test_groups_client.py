"""Consumer groups through the Consumer, against real node processes (issue 12's group tests).

Members that are killed run in their own process (``python -c MEMBER``), printing one JSON
line per assignment change and per record; members that only join and leave run in this
process, each a sync Consumer polled in turn from the test's thread (a rebalance runs inside
``poll``, as in Kafka). Every cluster is three nodes (``min.insync.replicas=2``), stopped by pid:
the tests that kill members but never a node (each with its own topic and group) share the
module's; the coordinator's kill -9 has its own. Every member process is killed by pid.
Deadlines are generous (60 s) and nothing asserts how long something took: the rebalance time
is printed, for the report.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from client.consumer import Consumer, ConsumerRebalanceListener, TopicPartition
from scripts.node_process import ROOT, Cluster, run_tool
from server.groups.runtime import partition_for_group
from tests.integration.conftest import running_cluster
from tests.integration.test_cluster import create_topic
from tests.integration.test_consumer import produce
from tests.integration.test_replication import leader_of

DEADLINE_S = 60.0
# The coordinator's smallest allowed session (group.consumer.min.session.timeout.ms): a killed
# member is noticed as soon as the nodes allow.
SESSION_TIMEOUT_MS = 6000
FAST = {"session.timeout.ms": str(SESSION_TIMEOUT_MS), "heartbeat.interval.ms": "500"}

MEMBER = """
import json, sys, time
from client.consumer import Consumer, ConsumerRebalanceListener
bootstrap, group = sys.argv[1], sys.argv[2]
topics, props = sys.argv[3].split(","), json.loads(sys.argv[4])
def say(**line):
    print(json.dumps(line), flush=True)
class Listener(ConsumerRebalanceListener):
    def on_partitions_assigned(self, partitions):
        say(assigned=[list(tp) for tp in partitions])
    def on_partitions_revoked(self, partitions):
        say(revoked=[list(tp) for tp in partitions])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **props})
c.subscribe(topics, Listener())
while True:
    for r in c.poll(200):
        say(record=[r.topic, r.partition, r.offset, r.value.decode()])
    c.commit()
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The module's cluster, for the tests that never stop a node."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as handle:
        yield handle


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of one test, for a test that kills a node."""
    with running_cluster(tmp_path) as handle:
        yield handle


class MemberProcess:
    """A group member in its own process; its JSON lines are read on a thread."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], props: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "-c", MEMBER, bootstrap, group, ",".join(topics), json.dumps(props)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.owned: set[TopicPartition] = set()
        self.records: list[tuple[str, int, int, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def drain(self) -> None:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            if "assigned" in line:
                self.owned |= {TopicPartition(t, p) for t, p in line["assigned"]}
            elif "revoked" in line:
                self.owned -= {TopicPartition(t, p) for t, p in line["revoked"]}
            else:
                self.records.append(tuple(line["record"]))  # type: ignore[arg-type]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def members() -> Iterator[list[MemberProcess]]:
    started: list[MemberProcess] = []
    yield started
    for member in started:
        member.kill()


class Recorder(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, list[TopicPartition]]] = []

    def on_partitions_assigned(self, partitions: list[TopicPartition]) -> None:
        self.events.append(("assigned", partitions))

    def on_partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        self.events.append(("revoked", partitions))


def poll_all(consumers: list[Consumer], until: Callable[[], bool], what: str) -> None:
    """Polls every consumer in turn (rebalances run inside poll) until ``until()``."""
    deadline = time.monotonic() + DEADLINE_S
    while not until():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        for consumer in consumers:
            consumer.poll(50)


def all_partitions(topic: str, count: int) -> set[TopicPartition]:
    return {TopicPartition(topic, p) for p in range(count)}


def test_two_members_split_four_partitions_and_the_survivor_takes_all_after_kill_9(
    cluster: Cluster, members: list[MemberProcess]
) -> None:
    create_topic(cluster.nodes[0], "split", partitions=4, replication_factor=3)
    bootstrap = ",".join(n.bootstrap for n in cluster.nodes)
    props = {"auto.offset.reset": "earliest", **FAST}
    dead = MemberProcess(bootstrap, "splitters", ["split"], props)
    members.append(dead)
    survivor = Consumer({"bootstrap.servers": bootstrap, "group.id": "splitters", **props})
    try:
        survivor.subscribe(["split"])

        def split_in_two() -> bool:
            dead.drain()
            mine = survivor.assignment()
            return (
                len(mine) == 2
                and len(dead.owned) == 2
                and mine | dead.owned == all_partitions("split", 4)
            )

        poll_all([survivor], split_in_two, "two members with two partitions each")
        for p in range(4):
            produce(cluster, "split", p, [{"value": f"before-{p}"}])
        seen: list[tuple[int, str]] = []

        def everything_read_once() -> bool:
            dead.drain()
            return len(seen) + len(dead.records) >= 4

        deadline = time.monotonic() + DEADLINE_S
        while not everything_read_once():
            assert time.monotonic() < deadline
            seen.extend((r.partition, r.value.decode()) for r in survivor.poll(100))  # type: ignore[union-attr]
        assert sorted([p for p, _ in seen] + [r[1] for r in dead.records]) == [0, 1, 2, 3]
        assert {TopicPartition("split", p) for p, _ in seen} == survivor.assignment()
        survivor.commit()

        orphaned = sorted(dead.owned)
        # The dead member commits after each poll; its commit of what it read lands first,
        # so the survivor can be checked to resume exactly after it.
        deadline = time.monotonic() + DEADLINE_S
        while set(survivor.committed(orphaned).values()) != {1}:
            assert time.monotonic() < deadline, survivor.committed(orphaned)
            survivor.poll(100)
        dead.kill()
        killed_at = time.monotonic()
        for tp in orphaned:
            produce(cluster, "split", tp.partition, [{"value": f"after-{tp.partition}"}])
        after: list[tuple[int, str]] = []
        first_orphan_record_s: float | None = None
        while {p for p, v in after if v.startswith("after")} != {tp.partition for tp in orphaned}:
            assert time.monotonic() - killed_at < DEADLINE_S, f"survivor read {after}"
            for r in survivor.poll(100):
                assert r.value is not None
                after.append((r.partition, r.value.decode()))
                if (
                    first_orphan_record_s is None
                    and TopicPartition("split", r.partition) in orphaned
                ):
                    first_orphan_record_s = time.monotonic() - killed_at
        assert survivor.assignment() == all_partitions("split", 4)
        # The dead member committed after each poll: its partitions resume after what it read.
        assert sorted(v for _, v in after) == sorted(f"after-{tp.partition}" for tp in orphaned)
        print(
            f"\nrebalance: kill -9 -> orphaned partitions consumed again in "
            f"{first_orphan_record_s:.2f} s (session.timeout.ms={SESSION_TIMEOUT_MS})"
        )
    finally:
        survivor.close()


def test_a_third_member_moves_only_the_partitions_it_gets(cluster: Cluster) -> None:
    create_topic(cluster.nodes[0], "six", partitions=6, replication_factor=3)
    bootstrap = cluster.nodes[0].bootstrap
    props = {"bootstrap.servers": bootstrap, "group.id": "trio", **FAST}
    listeners = [Recorder(), Recorder(), Recorder()]
    consumers = [Consumer(props), Consumer(props)]
    try:
        for consumer, listener in zip(consumers, listeners, strict=False):
            consumer.subscribe(["six"], listener)
        poll_all(
            consumers,
            lambda: [len(c.assignment()) for c in consumers] == [3, 3],
            "two members with three partitions each",
        )
        before = [c.assignment() for c in consumers]
        for listener in listeners[:2]:
            listener.events.clear()
        third = Consumer(props)
        consumers.append(third)
        third.subscribe(["six"], listeners[2])
        poll_all(
            consumers,
            lambda: [len(c.assignment()) for c in consumers] == [2, 2, 2],
            "three members with two partitions each",
        )
        after = [c.assignment() for c in consumers]
        assert after[0] | after[1] | after[2] == all_partitions("six", 6)
        for i in range(2):
            assert after[i] <= before[i]  # kept partitions never moved
            moved = before[i] - after[i]
            assert len(moved) == 1
            # Only what moved was revoked; nothing was assigned to the old members meanwhile.
            assert listeners[i].events == [("revoked", sorted(moved))]
        assert after[2] == (before[0] - after[0]) | (before[1] - after[1])
        # The newcomer gets each partition once its owner has given it up (KIP-848's
        # incremental hand-over), so possibly in two steps; it never gives one back.
        kinds = {kind for kind, _ in listeners[2].events}
        taken = [tp for _, partitions in listeners[2].events for tp in partitions]
        assert kinds == {"assigned"} and sorted(taken) == sorted(after[2])
    finally:
        for consumer in consumers:
            consumer.close()


def test_two_members_of_two_topics_get_kafkas_range_assignment(cluster: Cluster) -> None:
    for topic in ("left", "right"):
        create_topic(cluster.nodes[0], topic, partitions=3, replication_factor=3)
    props = {
        "bootstrap.servers": cluster.nodes[1].bootstrap,
        "group.id": "ranged",
        "group.remote.assignor": "range",
        **FAST,
    }
    consumers = [Consumer(props), Consumer(props)]
    try:
        for consumer in consumers:
            consumer.subscribe(["left", "right"])
        poll_all(
            consumers,
            lambda: (
                sum(len(c.assignment()) for c in consumers) == 6
                and all(c.assignment() for c in consumers)
            ),
            "six partitions assigned",
        )
        # Kafka's RangeAssignor: per topic, the first member (by member id) gets partitions
        # 0 and 1, the second gets 2; the same shape for both topics.
        shapes = sorted(sorted(c.assignment()) for c in consumers)
        assert shapes == [
            [
                TopicPartition("left", 0),
                TopicPartition("left", 1),
                TopicPartition("right", 0),
                TopicPartition("right", 1),
            ],
            [TopicPartition("left", 2), TopicPartition("right", 2)],
        ]
    finally:
        for consumer in consumers:
            consumer.close()


def test_restarted_console_consumer_resumes_after_its_last_commit(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    create_topic(node, "resume", partitions=1, replication_factor=3)
    produce(cluster, "resume", 0, [{"value": f"line{i}"} for i in range(10)])
    common = ["--bootstrap-server", node.bootstrap, "--topic", "resume", "--group", "readers"]
    first = run_tool(
        "client.tools.console_consumer", *common, "--from-beginning", "--max-messages", "4"
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [f"line{i}" for i in range(4)]
    assert first.stderr.strip().endswith("Processed a total of 4 messages")
    produce(cluster, "resume", 0, [{"value": f"line{i}"} for i in range(10, 12)])
    # No --from-beginning: the group's commit decides where it starts.
    second = run_tool("client.tools.console_consumer", *common, "--max-messages", "8")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [f"line{i}" for i in range(4, 12)]


def test_a_restarted_member_process_resumes_after_its_last_commit_with_nothing_skipped(
    cluster: Cluster, members: list[MemberProcess]
) -> None:
    create_topic(cluster.nodes[0], "again", partitions=2, replication_factor=3)
    bootstrap = cluster.nodes[2].bootstrap
    for p in range(2):
        produce(cluster, "again", p, [{"value": f"{p}-{i}"} for i in range(30)])
    props = {"auto.offset.reset": "earliest", **FAST}
    member = MemberProcess(bootstrap, "again", ["again"], props)
    members.append(member)
    deadline = time.monotonic() + DEADLINE_S
    while len(member.records) < 10:
        assert time.monotonic() < deadline
        member.drain()
        time.sleep(0.05)
    member.kill()  # kill -9: no closing commit, no leave
    member.drain()
    read_before = member.records
    with Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "again",
            "auto.offset.reset": "earliest",
            **FAST,
        }
    ) as c:
        c.subscribe(["again"])
        committed_start: dict[int, int] = {}
        rest: list[tuple[int, int]] = []
        deadline = time.monotonic() + DEADLINE_S
        while len({(p, o) for _, p, o, _ in read_before} | set(rest)) < 60:
            assert time.monotonic() < deadline, f"read {len(rest)} after the restart"
            for r in c.poll(200):
                committed_start.setdefault(r.partition, r.offset)
                rest.append((r.partition, r.offset))
    # Resumed after the last commit: at most the records read since that commit are seen twice
    # (at-least-once), and no offset was skipped.
    seen = {(p, o) for _, p, o, _ in read_before} | set(rest)
    assert seen == {(p, o) for p in range(2) for o in range(30)}
    for p, start in committed_start.items():
        read_by_dead = [o for _, q, o, _ in read_before if q == p]
        assert start <= (max(read_by_dead) + 1 if read_by_dead else 0)
        assert [o for q, o in rest if q == p] == list(range(start, 30))


def test_committed_offsets_survive_kill_9_of_the_coordinator(own_cluster: Cluster) -> None:
    cluster = own_cluster
    node = cluster.nodes[0]
    create_topic(node, "kept", partitions=2, replication_factor=3)
    produce(cluster, "kept", 0, [{"value": "x"} for _ in range(5)])
    bootstrap = ",".join(n.bootstrap for n in cluster.nodes)
    props = {"bootstrap.servers": bootstrap, "group.id": "durable", "enable.auto.commit": "false"}
    with Consumer(props) as c:
        c.assign([("kept", 0), ("kept", 1)])
        c.commit({("kept", 0): 5, ("kept", 1): 0})
        assert c.committed([("kept", 0), ("kept", 1)]) == {
            TopicPartition("kept", 0): 5,
            TopicPartition("kept", 1): 0,
        }
    partitions = int(_offsets_topic_partitions(cluster))
    coordinator = leader_of(
        cluster, "__consumer_offsets", partition_for_group("durable", partitions)
    )
    coordinator.kill()
    with Consumer(props) as c:
        c.assign([("kept", 0)])
        assert c.committed([("kept", 0), ("kept", 1)]) == {
            TopicPartition("kept", 0): 5,
            TopicPartition("kept", 1): 0,
        }
        assert c.position(("kept", 0)) == 5  # a new consumer starts at the committed offset
        c.commit({("kept", 0): 3})
        assert c.committed([("kept", 0)]) == {TopicPartition("kept", 0): 3}


def _offsets_topic_partitions(cluster: Cluster) -> int:
    from scripts.node_process import http

    status, body = http("GET", f"{cluster.nodes[0].url}/v1/topics/__consumer_offsets")
    assert status == 200, body
    return len(body["partitions"])
