"""Kafka's dedicated layout: three controller-only voters and two broker-only observers.

One cluster for the module (the tests run in order and share it): the brokers follow the
metadata log as observers, every node serves the admin calls, a controller holds no
partitions and sends a data-plane call to the leader, the controller leader's kill -9 changes
nothing a client sees but a moment, and a restarted broker catches up.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.node_process import ROOT, Cluster, NodeProcess, free_ports, wait_until

CONTROLLERS = [1, 2, 3]
BROKERS = [4, 5]
WAIT_S = 60.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    handle = Cluster.create(tmp_path_factory.mktemp("roles"), controllers=3, brokers=2)
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def get(node: NodeProcess, path: str) -> Any:
    status, body = node.http("GET", path, timeout=5)
    assert status == 200, (node.node_id, path, status, body)
    return body


def digests_agree(cluster: Cluster) -> bool:
    """Every running node applied the same metadata index and holds the same state."""
    seen = set()
    for node in cluster.running():
        try:
            status, body = node.http("GET", "/v1/cluster/quorum", timeout=5)
        except OSError:
            return False
        if status != 200:
            return False
        seen.add((body["node"]["applied_index"], body["node"]["metadata_digest"]))
    return len(seen) == 1


def leader_of(cluster: Cluster) -> int:
    leader = wait_until("a controller", lambda: cluster.controller_id(), WAIT_S)
    assert isinstance(leader, int)
    return leader


def test_every_node_lists_the_controllers_and_the_brokers(cluster: Cluster) -> None:
    def all_registered() -> bool:
        return all(
            len(body["controllers"]) == 3 and all(c["url"] for c in body["controllers"])
            for body in (get(node, "/v1/cluster") for node in cluster.nodes)
        )

    wait_until("every node to know every controller", all_registered, WAIT_S)
    for node in cluster.nodes:
        body = get(node, "/v1/cluster")
        assert body["controllers"] == [
            {"id": c, "url": cluster.node(c).url, "voter": True} for c in CONTROLLERS
        ]
        assert [b["id"] for b in body["brokers"]] == BROKERS  # a controller is no broker
        assert body["controller_id"] in CONTROLLERS


def test_topics_live_on_brokers_and_records_flow_through_every_role(cluster: Cluster) -> None:
    controller = cluster.node(CONTROLLERS[1])
    status, topic = controller.http(
        "POST", "/v1/topics", {"name": "roles", "partitions": 2, "replication_factor": 2}
    )
    assert status == 201, topic
    for partition in topic["partitions"]:
        assert sorted(partition["replicas"]) == BROKERS
    broker = cluster.node(BROKERS[0])
    status, answer = broker.http(
        "POST", "/v1/topics/roles/records?acks=all", {"records": [{"value": "v0"}, {"value": "v1"}]}
    )
    assert status == 200, answer
    # A controller holds no replica: a data-plane call gets the usual redirect to the leader
    # (a POST, which urllib does not follow).
    leader = topic["partitions"][0]["leader"]
    status, redirect = controller.http(
        "POST", "/v1/topics/roles/partitions/0/records", {"records": [{"value": "no"}]}
    )
    assert status == 307 and redirect["leader_id"] == leader, redirect
    # A produce to the topic on a controller is carried to each partition's leader.
    status, answer = controller.http(
        "POST", "/v1/topics/roles/records?acks=all", {"records": [{"value": "v-c"}]}
    )
    assert status == 200, answer
    values = []
    for partition in topic["partitions"]:
        owner = cluster.node(partition["leader"])
        body = get(owner, f"/v1/topics/roles/partitions/{partition['partition']}/records?offset=0")
        values += [r["value"] for r in body["records"]]
    assert sorted(values) == ["v-c", "v0", "v1"]
    wait_until("the metadata digests to agree", lambda: digests_agree(cluster), WAIT_S)


def test_brokers_are_observers_of_the_quorum(cluster: Cluster) -> None:
    leader = cluster.node(leader_of(cluster))
    view = get(leader, "/v1/cluster/quorum")
    assert [v["id"] for v in view["voters"]] == CONTROLLERS
    assert [(o["id"], o["status"]) for o in view["observers"]] == [(b, "Observer") for b in BROKERS]
    own = get(cluster.node(BROKERS[1]), "/v1/cluster/quorum")
    assert [(o["id"], o["status"]) for o in own["observers"]] == [(BROKERS[1], "Observer")]
    assert own["leader_id"] == leader.node_id
    assert [v["id"] for v in own["voters"]] == CONTROLLERS


def test_the_brokers_follow_a_new_controller_after_a_kill(cluster: Cluster) -> None:
    old = cluster.node(leader_of(cluster))
    old.stop(signal.SIGKILL)
    try:
        broker = cluster.node(BROKERS[0])

        def new_leader() -> int | None:
            body = get(broker, "/v1/cluster")
            leader = body["controller_id"]
            return leader if leader not in (None, old.node_id) else None

        wait_until("the brokers to follow a new controller", new_leader, WAIT_S)

        def created() -> bool:  # forwarded by a broker to a controller that holds no partition
            status, body = broker.http(
                "POST", "/v1/topics", {"name": "after-kill", "replication_factor": 2}
            )
            assert status in (201, 503), body  # 503: the new controller is taking over
            return status == 201

        wait_until("a topic created after the kill", created, WAIT_S)
        status, answer = broker.http(
            "POST", "/v1/topics/roles/records?acks=all", {"records": [{"value": "v2"}]}
        )
        assert status == 200, answer
    finally:
        old.start()
    wait_until("the metadata digests to agree", lambda: digests_agree(cluster), WAIT_S)


def test_a_restarted_broker_catches_up(cluster: Cluster) -> None:
    broker = cluster.node(BROKERS[1])
    broker.stop()
    try:
        status, body = cluster.node(BROKERS[0]).http(
            "POST", "/v1/topics", {"name": "while-away", "replication_factor": 1}
        )
        assert status == 201, body
    finally:
        broker.start()
    assert "while-away" in [t["name"] for t in get(broker, "/v1/topics")["topics"]]
    wait_until("the metadata digests to agree", lambda: digests_agree(cluster), WAIT_S)


def test_a_broker_with_a_raft_listener_is_refused_at_start(tmp_path: Path) -> None:
    http_port, raft_port = free_ports(2)
    properties = tmp_path / "broker.properties"
    properties.write_text(
        "node.id=9\nprocess.roles=broker\n"
        "controller.quorum.bootstrap.servers=127.0.0.1:9093\n"
        f"listeners=HTTP://127.0.0.1:{http_port},CONTROLLER://127.0.0.1:{raft_port}\n"
        f"log.dirs={tmp_path / 'logs'}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "server.main", str(properties)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert (
        "kraft-server-start: listeners: controller.listener.names must not contain a value "
        "appearing in the 'listeners' configuration when running KRaft with just the broker "
        "role" in done.stderr
    ), done.stderr
