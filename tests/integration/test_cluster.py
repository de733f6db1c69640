"""Three real node processes that manage themselves: registration, failover, fencing, restarts.

After every test, the running nodes' metadata states are identical (applied index and digest
from /v1/cluster/quorum).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.internal_calls import proof


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    handle = Cluster.create(tmp_path)
    try:
        handle.start()
        yield handle
        assert_same_metadata(handle.running())
    finally:
        handle.stop()


def quorum(node: NodeProcess) -> dict:
    status, body = http("GET", f"{node.url}/v1/cluster/quorum", timeout=5)
    assert status == 200, body
    return body


def assert_same_metadata(nodes: list[NodeProcess]) -> None:
    """Every node reaches the same applied index with the same metadata digest."""

    def agreed() -> bool:
        views = {
            (q["node"]["applied_index"], q["node"]["metadata_digest"]) for q in map(quorum, nodes)
        }
        return len(views) == 1

    wait_until("the nodes' metadata states agree", agreed)


def create_topic(node: NodeProcess, name: str, **fields: object) -> dict:
    """Creates a topic through any node (a follower forwards it to the controller), retrying
    while there is no controller (after a kill) as a Kafka admin client does."""

    def attempt() -> tuple[int, dict] | None:
        status, body = http("POST", f"{node.url}/v1/topics", {"name": name, **fields})
        if status == 503:
            return None
        return status, body

    status, body = wait_until(f"topic {name} created", attempt)
    assert status == 201, body
    return body


def describe(node: NodeProcess, name: str) -> dict:
    status, body = http("GET", f"{node.url}/v1/topics/{name}")
    assert status == 200, body
    return body


def test_three_nodes_register_and_agree_on_one_controller(cluster: Cluster) -> None:
    # A node is ready once it sees itself unfenced; another broker's unfencing reaches it with
    # the metadata, a Raft round later, so the views are compared once they have all applied it.
    def all_unfenced() -> list[dict] | None:
        views = [http("GET", f"{n.url}/v1/cluster")[1] for n in cluster.nodes]
        brokers = [[(b["id"], b["fenced"]) for b in v["brokers"]] for v in views]
        return views if all(b == [(1, False), (2, False), (3, False)] for b in brokers) else None

    views = wait_until("every node sees the three brokers unfenced", all_unfenced)
    assert len({v["controller_id"] for v in views}) == 1
    follower = next(n for n in cluster.nodes if n.node_id != views[0]["controller_id"])
    created = create_topic(follower, "spread", partitions=3, replication_factor=3)
    assert sorted(p["leader"] for p in created["partitions"]) == [1, 2, 3]
    for node in cluster.nodes:
        wait_until(
            f"node {node.node_id} has the replicas",
            lambda node=node: all((node.log_dir / f"spread-{i}").is_dir() for i in range(3)),
        )


def test_kill_9_of_the_controller_elects_another_and_metadata_writes_go_on(
    cluster: Cluster,
) -> None:
    create_topic(cluster.nodes[0], "before")
    old = cluster.node(wait_until("a controller", cluster.controller_id))
    old.kill()
    survivors = cluster.running()
    new_id = wait_until(
        "a new controller",
        lambda: (c := cluster.controller_id(survivors[0])) not in (None, old.node_id) and c,
    )
    assert new_id != old.node_id
    wait_until(
        "a topic created after the failover",
        lambda: http("POST", f"{survivors[0].url}/v1/topics", {"name": "after"})[0] in (201, 409),
    )

    def other_survivor_sees_both() -> bool:
        # Right after the failover it may still be catching up on the metadata: 503 (with
        # Retry-After) until it has, as docs/api.md's "Readiness" says.
        status, body = http("GET", f"{survivors[1].url}/v1/topics")
        if status == 503:
            return False
        assert status == 200, body
        return {t["name"] for t in body["topics"]} >= {"before", "after"}

    wait_until("the other survivor sees both topics", other_survivor_sees_both)
    old.start()
    assert_same_metadata(cluster.nodes)


def test_a_dead_broker_is_fenced_leaves_every_isr_and_loses_its_leaderships(
    cluster: Cluster,
) -> None:
    create_topic(cluster.nodes[0], "moves", partitions=3, replication_factor=3)
    controller = wait_until("a controller", cluster.controller_id)
    victim = next(n for n in cluster.nodes if n.node_id != controller)
    victim.kill()
    watcher = cluster.node(controller)

    def fenced_and_moved() -> bool:
        view = http("GET", f"{watcher.url}/v1/cluster")[1]
        fenced = {b["id"]: b["fenced"] for b in view["brokers"]}
        partitions = describe(watcher, "moves")["partitions"]
        return fenced[victim.node_id] and all(
            p["leader"] not in (victim.node_id, None) and victim.node_id not in p["isr"]
            for p in partitions
        )

    wait_until(
        f"broker {victim.node_id} fenced, out of every ISR, leading nothing", fenced_and_moved
    )
    epochs = [p["leader_epoch"] for p in describe(watcher, "moves")["partitions"]]
    assert max(epochs) >= 1, "a leader change bumps the leader epoch"
    victim.start()
    wait_until(
        "the broker unfenced again",
        lambda: (
            not {
                b["id"]: b["fenced"] for b in http("GET", f"{watcher.url}/v1/cluster")[1]["brokers"]
            }[victim.node_id]
        ),
    )


def test_kill_9_of_all_three_keeps_every_acknowledged_topic(cluster: Cluster) -> None:
    names = [f"durable-{i}" for i in range(10)]
    for i, name in enumerate(names):
        create_topic(cluster.nodes[i % 3], name)
    for node in cluster.nodes:
        node.stop(signal.SIGKILL)
    cluster.start()
    for node in cluster.nodes:
        listed = {t["name"] for t in http("GET", f"{node.url}/v1/topics")[1]["topics"]}
        assert set(names) <= listed


def test_a_node_restarted_alone_catches_up(cluster: Cluster) -> None:
    lagging = cluster.nodes[2]
    lagging.stop()
    for i in range(5):
        create_topic(cluster.nodes[0], f"while-away-{i}")
    http("DELETE", f"{cluster.nodes[0].url}/v1/topics/while-away-0")
    lagging.start()
    listed = {t["name"] for t in http("GET", f"{lagging.url}/v1/topics")[1]["topics"]}
    assert {f"while-away-{i}" for i in range(1, 5)} <= listed and "while-away-0" not in listed


def test_topic_deletion_removes_the_directories_on_every_node(cluster: Cluster) -> None:
    create_topic(cluster.nodes[1], "doomed", partitions=2, replication_factor=3)
    for node in cluster.nodes:
        wait_until("replicas exist", lambda node=node: (node.log_dir / "doomed-1").is_dir())
    status, _ = http("DELETE", f"{cluster.nodes[2].url}/v1/topics/doomed")
    assert status == 204
    for node in cluster.nodes:
        wait_until(
            f"no doomed-* left on node {node.node_id}",
            lambda node=node: not any(p.name.startswith("doomed-") for p in node.log_dir.iterdir()),
        )


def test_the_controller_hands_out_disjoint_producer_id_blocks(cluster: Cluster) -> None:
    controller = cluster.node(wait_until("a controller", cluster.controller_id))
    blocks = []
    for broker in (1, 2, 3):  # every broker is at its first registration, epoch 0
        path, request = "/v1/internal/producer-ids", {"broker_id": broker, "broker_epoch": 0}
        status, body = http(
            "POST", controller.url + path, request, headers=proof(controller, "POST", path, request)
        )
        assert status == 200, body
        blocks.append((body["first_producer_id"], body["count"]))
    starts = sorted(start for start, _ in blocks)
    assert all(b - a >= 1000 for a, b in zip(starts, starts[1:], strict=False))
