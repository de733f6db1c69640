"""Partition replication across three real nodes: acks=all, the high watermark, failover."""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.test_cluster import assert_same_metadata, create_topic, describe
from tests.invariants import (
    ReplicaView,
    check_identical,
    check_replicas,
    identical,
    view_of_directory,
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    handle = Cluster.create(tmp_path, **{"min.insync.replicas": "2"})
    try:
        handle.start()
        yield handle
        assert_same_metadata(handle.running())
    finally:
        handle.stop()


def leader_of(cluster: Cluster, topic: str, partition: int = 0) -> NodeProcess:
    def known() -> int | None:
        status, body = http("GET", f"{cluster.running()[0].url}/v1/topics/{topic}")
        return body["partitions"][partition]["leader"] if status == 200 else None

    leader = cluster.node(wait_until(f"{topic}-{partition} has a leader", known))
    # Metadata reaches the nodes a moment apart: wait until the leader itself knows it leads.
    wait_until(f"node {leader.node_id} knows {topic}", lambda: isr(leader, topic) is not None)
    return leader


def produce(node: NodeProcess, topic: str, values: list[str], partition: int = 0) -> list[int]:
    """acks=all through the partition's leader, retrying while leadership moves."""

    def attempt() -> list[int] | None:
        status, body = http(
            "POST",
            f"{node.url}/v1/topics/{topic}/partitions/{partition}/records?timeout_ms=10000",
            {"records": [{"value": v} for v in values]},
        )
        if status == 200:
            return [o["offset"] for o in body["offsets"]]
        # 404: the leader has not applied the topic's creation yet (metadata reaches every
        # node a moment apart, as in Kafka, where the error is retriable too).
        assert status in (307, 404, 503), body
        return None

    return wait_until(f"records produced to {topic}-{partition}", attempt)


def read_all(node: NodeProcess, topic: str, partition: int = 0) -> list[str]:
    status, body = http(
        "GET",
        f"{node.url}/v1/topics/{topic}/partitions/{partition}/records?offset=0&max_records=10000",
    )
    assert status == 200, body
    return [r["value"] for r in body["records"]]


def isr(node: NodeProcess, topic: str) -> list[int] | None:
    """The ISR as the node sees it, or None while it cannot answer (an election)."""
    status, body = http("GET", f"{node.url}/v1/topics/{topic}")
    return sorted(body["partitions"][0]["isr"]) if status == 200 else None


def replica_views(
    nodes: Sequence[NodeProcess], topic: str, partition: int = 0
) -> list[ReplicaView]:
    """Each node's replica as the invariant checker sees it: the HW the node reports (asked
    before its files are read), the ISR as the partition's leader reports it (the one its HW
    is computed over; none if the leader does not answer), and the node's files."""
    infos: dict[int, dict[str, Any] | None] = {}
    for node in nodes:
        try:
            status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=5)
        except OSError:
            status, body = 0, None
        infos[node.node_id] = body["partitions"][partition] if status == 200 else None
    leaders = {info["leader"] for info in infos.values() if info is not None}
    leader_info = infos.get(leaders.pop()) if len(leaders) == 1 else None
    isr = set(leader_info["isr"]) if leader_info is not None else set()
    hws = {n: None if info is None else info["high_watermark"] for n, info in infos.items()}
    return [
        view_of_directory(
            node.node_id,
            node.log_dir,
            topic,
            partition,
            in_isr=node.node_id in isr,
            high_watermark=hws[node.node_id],
        )
        for node in nodes
    ]


def wait_identical_replicas(
    nodes: Sequence[NodeProcess], topic: str, partition: int = 0, *, invariants: bool = True
) -> list[ReplicaView]:
    """Waits until the nodes' replicas hold the same batches, byte for byte, and returns their
    views. The replication invariants are checked at every look, unless ``invariants`` is
    False: a topic that relaxes flushing may lose committed records to a power cut, and a
    node's HW may cover records the cut took until it follows again."""

    def same() -> list[ReplicaView] | None:
        views = replica_views(nodes, topic, partition)
        if invariants:
            check_replicas(f"{topic}-{partition}", views)
        return views if views[0].batches and identical(views) else None

    views: list[ReplicaView] = wait_until(
        f"{topic}-{partition}: the replicas are byte-identical", same
    )
    check_identical(f"{topic}-{partition}", views)
    return views


def test_acks_all_commits_on_every_replica_and_the_logs_are_byte_identical(
    cluster: Cluster,
) -> None:
    create_topic(cluster.nodes[0], "replicated", replication_factor=3)
    leader = leader_of(cluster, "replicated")
    offsets = produce(leader, "replicated", [f"event {i}" for i in range(20)])
    assert offsets == list(range(20))
    assert read_all(leader, "replicated") == [f"event {i}" for i in range(20)]
    views = wait_identical_replicas(cluster.nodes, "replicated")
    assert views[0].log_end_offset == 20
    partition = describe(leader, "replicated")["partitions"][0]
    assert partition["high_watermark"] == 20 and sorted(partition["isr"]) == [1, 2, 3]


def test_kill_9_of_the_partition_leader_loses_no_acknowledged_record(cluster: Cluster) -> None:
    create_topic(cluster.nodes[0], "failover", replication_factor=3)
    old = leader_of(cluster, "failover")
    acknowledged = []
    for i in range(10):
        produce(old, "failover", [f"before {i}"])
        acknowledged.append(f"before {i}")
    old.stop(signal.SIGKILL)

    def new_leader() -> NodeProcess | None:
        status, body = http("GET", f"{cluster.running()[0].url}/v1/topics/failover")
        leader = body["partitions"][0]["leader"] if status == 200 else None
        return None if leader in (None, old.node_id) else cluster.node(leader)

    new = wait_until("a new leader from the ISR", new_leader)
    for i in range(5):
        produce(new, "failover", [f"after {i}"])
        acknowledged.append(f"after {i}")
    assert read_all(new, "failover") == acknowledged
    old.start()
    wait_identical_replicas(cluster.nodes, "failover")


def test_acks_all_is_refused_when_the_isr_is_below_min_insync_replicas(cluster: Cluster) -> None:
    create_topic(cluster.nodes[0], "strict", replication_factor=2)
    leader = leader_of(cluster, "strict")
    follower = next(
        cluster.node(r)
        for r in describe(leader, "strict")["partitions"][0]["replicas"]
        if r != leader.node_id
    )
    produce(leader, "strict", ["ok"])
    follower.stop(signal.SIGKILL)
    wait_until(
        "the dead follower leaves the ISR",
        lambda: isr(leader, "strict") == [leader.node_id],
    )
    status, body = http(
        "POST", f"{leader.url}/v1/topics/strict/partitions/0/records", {"value": "no"}
    )
    assert (status, body["error"]) == (503, "NOT_ENOUGH_REPLICAS")
    status, body = http(
        "POST", f"{leader.url}/v1/topics/strict/partitions/0/records?acks=1", {"value": "one"}
    )
    assert status == 200
    follower.start()
    wait_until(
        "the follower rejoins the ISR once caught up",
        lambda: (
            sorted(describe(leader, "strict")["partitions"][0]["isr"])
            == sorted([leader.node_id, follower.node_id])
        ),
    )
    assert produce(leader, "strict", ["again"]) == [2]


def test_the_topic_endpoint_of_any_node_routes_records_to_their_leaders(cluster: Cluster) -> None:
    create_topic(cluster.nodes[0], "routed", partitions=3, replication_factor=3)
    keys = ["21", "abc", "a-little-bit-long-string"]  # Kafka's murmur2: partitions 0, 0, 2 of 3
    for node in cluster.nodes:  # every node has applied the creation: routes are known
        wait_until(f"node {node.node_id} knows the topic", lambda n=node: isr(n, "routed"))
    for node in cluster.nodes:
        status, body = http(
            "POST",
            f"{node.url}/v1/topics/routed/records",
            {"records": [{"key": k, "value": f"from {node.node_id}"} for k in keys]},
        )
        assert status == 200, body
        assert [o["partition"] for o in body["offsets"]] == [0, 0, 2]
    for partition, expected in ((0, 6), (2, 3)):
        leader = leader_of(cluster, "routed", partition)
        assert len(read_all(leader, "routed", partition)) == expected
