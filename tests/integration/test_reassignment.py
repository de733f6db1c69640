"""Partition reassignment with real nodes (issue 16, item 2; Kafka's KIP-455): a partition
moved onto another broker while an acks=all idempotent writer goes on, the replication factor
raised and lowered by the same path, a move that outlives kill -9 of its destination and of
the controller, and bad requests refused whole.

One four-node combined cluster serves the module: each test makes its own topic.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from client.admin import Admin
from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.test_cluster import create_topic
from tests.integration.test_failover import partition_view, read_records
from tests.integration.test_replication import produce, wait_identical_replicas
from tests.integration.writer import IdempotentWriter

NODES = 4
# Generous: a restarted node rejoins, or a move completes, within seconds.
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("reassignment")
    properties = {"min.insync.replicas": "2", "log.retention.check.interval.ms": "200"}
    handle = Cluster.create(directory, NODES, **properties)  # type: ignore[arg-type]
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def reassign(node: NodeProcess, moves: dict[int, list[int] | None], topic: str) -> Any:
    body = {
        "partitions": [
            {"topic": topic, "partition": p, "replicas": replicas} for p, replicas in moves.items()
        ]
    }
    status, answer = node.http("POST", "/v1/reassignments", body)
    assert status == 200, answer
    return answer


def moving(node: NodeProcess, topic: str) -> list[dict[str, Any]] | None:
    """The topic's moves as ``node`` sees them, or None while it cannot answer."""
    try:
        status, body = node.http("GET", f"/v1/reassignments?topic={topic}", timeout=5)
    except OSError:
        return None
    return body["reassignments"] if status == 200 else None


def wait_moved(cluster: Cluster, topic: str, target: list[int]) -> dict[str, Any]:
    """Waits until every running node sees the partition settled on ``target`` with all of it
    in the ISR; returns the view."""

    def settled() -> dict[str, Any] | None:
        views = [partition_view(n, topic) for n in cluster.running()]
        if any(
            v is None
            or v["replicas"] != target
            or v["adding_replicas"]
            or sorted(v["isr"]) != sorted(target)
            for v in views
        ):
            return None
        return views[0]

    view: dict[str, Any] = wait_until(f"{topic} moved to {target}", settled, DEADLINE_S)
    return view


def placed(
    cluster: Cluster, topic: str, factor: int, configs: dict[str, str] | None = None
) -> dict[str, Any]:
    """Creates a one-partition topic and waits until every node knows its leader."""
    create_topic(
        cluster.nodes[0], topic, partitions=1, replication_factor=factor, configs=configs or {}
    )

    def agreed() -> dict[str, Any] | None:
        views = [partition_view(n, topic) for n in cluster.nodes]
        known = [v for v in views if v is not None]
        if len(known) < len(views) or len({v["leader"] for v in known}) != 1:
            return None
        return known[0] if known[0]["leader"] is not None else None

    view: dict[str, Any] = wait_until(f"{topic} has a leader everywhere", agreed)
    return view


def log_bytes(node: NodeProcess, topic: str) -> list[tuple[str, bytes]]:
    directory = node.log_dir / f"{topic}-0"
    return [(f.name, f.read_bytes()) for f in sorted(directory.glob("*.log"))]


def test_a_partition_moves_to_a_new_broker_under_an_acks_all_writer(cluster: Cluster) -> None:
    topic = "moved"
    view = placed(cluster, topic, 3)
    original, leader = view["replicas"], view["leader"]
    newcomer = next(n.node_id for n in cluster.nodes if n.node_id not in original)
    # The newcomer leads once the move is done, and the current leader is the one removed.
    target = [newcomer] + [r for r in original if r != leader]
    produce(cluster.node(leader), topic, ["x" * 1000] * 500)  # something to catch up on
    writer = IdempotentWriter(cluster, topic, total=1_000_000, batch_size=20)
    writer.start()
    try:
        wait_until("the writer is under way", lambda: writer.acknowledged_records() >= 200)
        started = time.monotonic()
        answer = reassign(cluster.nodes[0], {0: target}, topic)
        assert answer == {"partitions": [{"topic": topic, "partition": 0}]}
        wait_moved(cluster, topic, target)
        wait_until(
            f"node {newcomer} acknowledges writes as the new leader: {writer.status()}",
            lambda: writer.error is not None or writer.acks_since(started, newcomer),
            DEADLINE_S,
        )
    finally:
        writer.stop()
    assert writer.error is None, writer.error
    acknowledged = [v for a in writer.acks for v in a.values]
    stored = Counter(
        value for _, value in read_records(cluster.node(newcomer), topic) if value[0] != "x"
    )
    assert [v for v in acknowledged if stored[v] != 1] == []
    assert all(count == 1 for count in stored.values())
    targets = [cluster.node(r) for r in target]
    wait_identical_replicas(targets, topic)
    files = [log_bytes(n, topic) for n in targets]
    assert files[0] and all(f == files[0] for f in files[1:])
    removed = cluster.node(leader)
    wait_until(
        f"node {leader} deleted its replica",
        lambda: not (removed.log_dir / f"{topic}-0").exists(),
        DEADLINE_S,
    )
    assert moving(cluster.nodes[0], topic) == []


def test_the_replication_factor_goes_from_2_to_3_and_back(cluster: Cluster) -> None:
    topic = "factor"
    original = placed(cluster, topic, 2)["replicas"]
    produce(cluster.node(original[0]), topic, [f"v{i}" for i in range(100)])
    extra = next(n.node_id for n in cluster.nodes if n.node_id not in original)
    with Admin(cluster.nodes[1].bootstrap) as admin:
        assert admin.alter_partition_reassignments({(topic, 0): [*original, extra]}) == {
            (topic, 0): None
        }
        view = wait_moved(cluster, topic, [*original, extra])
        assert view["replicas"] == [*original, extra]
        assert admin.describe_topic(topic)["replication_factor"] == 3
        assert read_records(cluster.node(extra), topic)[-1] == (99, "v99")
        assert admin.alter_partition_reassignments({(topic, 0): original}) == {(topic, 0): None}
        wait_moved(cluster, topic, original)
        assert admin.describe_topic(topic)["replication_factor"] == 2
        assert admin.list_partition_reassignments(topic) == []
    dropped = cluster.node(extra)
    wait_until(
        f"node {extra} deleted its replica",
        lambda: not (dropped.log_dir / f"{topic}-0").exists(),
        DEADLINE_S,
    )


def test_a_move_outlives_kill_9_of_its_destination_and_of_the_controller(
    cluster: Cluster,
) -> None:
    topic = "outlives"
    original = placed(cluster, topic, 2)["replicas"]
    produce(cluster.node(original[0]), topic, [f"v{i}" for i in range(200)])
    controller_id = cluster.controller_id()
    assert controller_id is not None
    destination = cluster.node(
        next(n.node_id for n in cluster.nodes if n.node_id not in [*original, controller_id])
    )
    target = [original[0], destination.node_id]
    # Paused, the destination cannot catch up: the move stays pending until it is back.
    assert destination.process is not None
    destination.process.send_signal(signal.SIGSTOP)
    controller = cluster.node(controller_id)
    reassign(controller, {0: target}, topic)
    pending = [
        {
            "topic": topic,
            "partition": 0,
            "replicas": [*target, original[1]],
            "adding_replicas": [destination.node_id],
            "removing_replicas": [original[1]],
        }
    ]
    assert moving(controller, topic) == pending
    destination.kill()
    controller.kill()  # two of four voters gone: no quorum until one is back
    controller.start()
    survivor = next(n for n in cluster.nodes if n.node_id not in (destination.node_id,))
    assert wait_until("the move is still listed", lambda: moving(survivor, topic), DEADLINE_S) == (
        pending
    )
    destination.start()
    wait_moved(cluster, topic, target)
    records = read_records(destination, topic)
    assert [v for _, v in records] == [f"v{i}" for i in range(200)]
    wait_identical_replicas([cluster.node(r) for r in target], topic)
    gone = cluster.node(original[1])
    wait_until(
        f"node {original[1]} deleted its replica",
        lambda: not (gone.log_dir / f"{topic}-0").exists(),
        DEADLINE_S,
    )


def test_a_new_replica_starts_at_the_leaders_log_start_when_retention_moved_it(
    cluster: Cluster,
) -> None:
    topic = "retained"
    # Small segments that retention deletes; one replica to start from (min.insync.replicas
    # 1 lets it take acks=all alone).
    configs = {"segment.bytes": "20000", "retention.bytes": "40000", "min.insync.replicas": "1"}
    leader = cluster.node(placed(cluster, topic, 1, configs)["leader"])
    for n in range(10):
        produce(leader, topic, [f"{n:02d}{i:02d}" + "x" * 996 for i in range(20)])
    start = wait_until(
        f"retention moved {topic}'s log start",
        lambda: (v := partition_view(leader, topic)) is not None and v["log_start_offset"],
        DEADLINE_S,
    )
    newcomer = next(n for n in cluster.nodes if n is not leader)
    reassign(cluster.nodes[0], {0: [leader.node_id, newcomer.node_id]}, topic)
    wait_moved(cluster, topic, [leader.node_id, newcomer.node_id])
    wait_identical_replicas([leader, newcomer], topic)
    moved = partition_view(newcomer, topic)
    assert moved is not None and moved["log_start_offset"] >= start
    assert moved["high_watermark"] == 200


def throttle(node: NodeProcess, topic: str, followers: str, brokers: dict[int, str | None]) -> None:
    """Sets the topic's follower throttle list ("" removes it) and brokers' follower rates
    (None removes one)."""
    value = followers or None
    status, body = node.http(
        "PUT",
        f"/v1/topics/{topic}/configs",
        {"configs": {"follower.replication.throttled.replicas": value}},
    )
    assert status == 200 or (value is None and status == 400), body
    for broker, rate in brokers.items():
        status, body = node.http(
            "PUT",
            f"/v1/brokers/{broker}/configs",
            {"configs": {"follower.replication.throttled.rate": rate}},
        )
        assert status == 200 or (rate is None and status == 400), body


def test_a_replica_cancelled_and_added_back_rejoins_the_isr_only_once_caught_up(
    cluster: Cluster,
) -> None:
    # The second reader's case: a move's new replica joins the ISR, the move is cancelled
    # (it deletes its log) and started again at once. Its leader must not put it back in the
    # ISR from what it reported before: with its new, empty log, it could then lead once the
    # other new replica catches up, and acknowledged records would be lost.
    topic = "rejoined"
    view = placed(cluster, topic, 2)
    original, leader = view["replicas"], view["leader"]
    back, slow = [n.node_id for n in cluster.nodes if n.node_id not in original]
    target = [back, slow]  # both original replicas leave, the leader too
    values = [f"{i:04d}" + "x" * 10_000 for i in range(1000)]  # 10 MB: 4 MB a fetch answer
    for start in range(0, len(values), 50):
        produce(cluster.node(leader), topic, values[start : start + 50])
    admin = cluster.nodes[0]
    # The slow one takes one answer, then waits for its 1 KB/s follower throttle.
    throttle(admin, topic, f"0:{slow}", {slow: "1000"})
    try:
        reassign(admin, {0: target}, topic)
        wait_until(
            f"node {back} in the ISR of {topic}-0",
            lambda: (
                (v := partition_view(cluster.node(leader), topic)) is not None and back in v["isr"]
            ),
            DEADLINE_S,
        )
        reassign(admin, {0: None}, topic)
        directory = cluster.node(back).log_dir / f"{topic}-0"
        wait_until(f"node {back} deleted its replica", lambda: not directory.exists(), DEADLINE_S)
        # Added back with a new log that now fills at 1 KB/s, within the leader's 5 s of
        # trusting a quiet fetch session; then the slow one is let go and catches up.
        throttle(admin, topic, f"0:{back},0:{slow}", {back: "1000"})
        reassign(admin, {0: target}, topic)
        throttle(admin, topic, f"0:{back}", {})

        def slow_in_sync() -> dict[str, Any] | None:
            v = partition_view(cluster.node(leader), topic)
            return v if v is not None and (slow in v["isr"] or not v["adding_replicas"]) else None

        settled = wait_until(f"node {slow} in the ISR of {topic}-0", slow_in_sync, DEADLINE_S)
        assert back not in settled["isr"] and back in settled["adding_replicas"], settled
        assert settled["leader"] == leader, "the move waits for the replica added back"
    finally:
        throttle(admin, topic, "", {back: None, slow: None})
    view = wait_moved(cluster, topic, target)
    assert view["leader"] == back
    assert [value for _, value in read_records(cluster.node(back), topic)] == values
    wait_identical_replicas([cluster.node(r) for r in target], topic)


@pytest.mark.parametrize(
    ("entry", "status", "error", "message"),
    [
        (
            {"topic": "kept", "partition": 0, "replicas": [1, 9]},
            400,
            "INVALID_REPLICA_ASSIGNMENT",
            "replica assignment [1, 9] of kept-0 names brokers [9] that are not registered",
        ),
        (
            {"topic": "kept", "partition": 0, "replicas": [2, 2]},
            400,
            "INVALID_REPLICA_ASSIGNMENT",
            "replica assignment [2, 2] of kept-0 has duplicate replicas [2]",
        ),
        (
            {"topic": "kept", "partition": 0, "replicas": []},
            400,
            "INVALID_REPLICA_ASSIGNMENT",
            "replica assignment [] of kept-0 is empty",
        ),
        (
            {"topic": "missing", "partition": 0, "replicas": [1]},
            404,
            "UNKNOWN_TOPIC_OR_PARTITION",
            "Topic 'missing' does not exist.",
        ),
        (
            {"topic": "kept", "partition": 5, "replicas": [1]},
            404,
            "UNKNOWN_TOPIC_OR_PARTITION",
            "Partition 5 of topic 'kept' does not exist.",
        ),
    ],
)
def test_bad_input_is_refused_whole_and_changes_nothing(
    cluster: Cluster, entry: dict[str, Any], status: int, error: str, message: str
) -> None:
    if partition_view(cluster.nodes[0], "kept") is None:
        placed(cluster, "kept", 2)
    before = partition_view(cluster.nodes[0], "kept")
    assert before is not None
    free = next(n.node_id for n in cluster.nodes if n.node_id not in before["replicas"])
    good = {"topic": "kept", "partition": 0, "replicas": [free]}
    # A good entry beside the bad one: the whole request is refused, the good one too.
    same = (entry["topic"], entry["partition"]) == ("kept", 0)
    body = {"partitions": [entry] if same else [good, entry]}
    answer = http("POST", f"{cluster.nodes[2].url}/v1/reassignments", body)
    assert answer[0] == status and answer[1]["error"] == error, answer
    assert answer[1]["message"] == message
    assert partition_view(cluster.nodes[0], "kept") == before
    assert moving(cluster.nodes[0], "kept") == []
