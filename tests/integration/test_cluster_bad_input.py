"""Three real node processes, one of them started wrong: it refuses to start or to join, and
says why in its log, naming the setting; the nodes that are right are not disturbed.

Each test builds a three-node cluster (one cluster id, one secret, shared voters) and starts
only what it needs; every process a test started is stopped after it, by pid.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.node_process import (
    Cluster,
    NodeProcess,
    free_ports,
    http,
    run_tool,
    wait_until,
)
from storage.properties import MetaProperties

# A refused node gives up within a few broker sessions; a minute is generous on a busy machine.
EXIT_DEADLINE_S = 60.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A formatted three-node cluster, not started; whatever the test starts is stopped."""
    handle = Cluster.create(tmp_path / "cluster")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def extra(tmp_path: Path) -> Iterator[list[NodeProcess]]:
    """Processes a test starts beside the cluster's three; all are stopped after it."""
    started: list[NodeProcess] = []
    try:
        yield started
    finally:
        for node in started:
            node.stop()


def ready_status(node: NodeProcess) -> int:
    status, _ = http("GET", f"{node.url}/v1/health/ready", timeout=5)
    return status


def brokers(node: NodeProcess) -> dict[int, dict[str, Any]]:
    status, body = http("GET", f"{node.url}/v1/cluster", timeout=5)
    assert status == 200, body
    return {b["id"]: b for b in body["brokers"]}


def wait_exit(node: NodeProcess) -> int:
    """The process's exit code once it ends by itself (it is killed if it does not)."""
    assert node.process is not None
    deadline = time.monotonic() + EXIT_DEADLINE_S
    while node.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    code = node.process.poll()
    assert code is not None, f"node {node.node_id} still runs:\n{node.log_tail()}"
    return code


def reformat(node: NodeProcess, cluster_id: str, secret: Path) -> None:
    """Formats the node's log directory afresh with this cluster id and secret."""
    shutil.rmtree(node.log_dir)
    node.format(cluster_id, secret)


def cluster_id_of(node: NodeProcess) -> str:
    meta = MetaProperties.read(node.log_dir)
    assert meta is not None
    return meta.cluster_id


def test_a_node_formatted_for_another_cluster_id_is_refused_and_exits_naming_cluster_id(
    cluster: Cluster,
) -> None:
    first, second, stranger = cluster.nodes
    other = run_tool("storage.storage_tool", "random-uuid").stdout.strip()
    assert other and other != cluster_id_of(first)
    # Same secret and voters: its Raft links work, so it reaches the controller.
    reformat(stranger, other, stranger.directory.parent / "cluster.secret")
    first.start(wait=False)
    second.start(wait=False)
    first.wait_ready()
    second.wait_ready()

    stranger.start(wait=False)
    code = wait_exit(stranger)

    assert code != 0
    log = stranger.log_file.read_text(errors="replace")
    assert "cluster.id" in log, log[-3000:]
    assert other in log, "the message names the cluster id it was formatted with"
    for node in (first, second):
        assert node.process is not None and node.process.poll() is None
        assert ready_status(node) == 200
        assert stranger.node_id not in brokers(node), "a refused node is never registered"


def test_a_second_process_with_a_live_node_id_and_its_own_raft_port_is_refused_naming_the_voters(
    cluster: Cluster, extra: list[NodeProcess], tmp_path: Path
) -> None:
    cluster.start()
    live = cluster.nodes[0]
    before = brokers(live)[live.node_id]
    # Its own ports and log dir; the voters list keeps node 1 at the live node's Raft address,
    # which disagrees with this process's CONTROLLER listener: the config check refuses it.
    duplicate = NodeProcess(tmp_path / "duplicate", node_id=live.node_id, voters=live.voters)
    duplicate.format(cluster_id_of(live), tmp_path / "cluster" / "cluster.secret")
    extra.append(duplicate)

    duplicate.start(wait=False)
    code = wait_exit(duplicate)

    assert code != 0
    log = duplicate.log_file.read_text(errors="replace")
    assert "controller.quorum.voters" in log, log[-3000:]
    assert f"node {live.node_id}" in log
    assert brokers(live)[live.node_id] == before, "the live node's registration is untouched"
    assert ready_status(live) == 200


def test_a_second_process_with_a_live_node_id_and_its_raft_address_cannot_start(
    cluster: Cluster, extra: list[NodeProcess], tmp_path: Path
) -> None:
    cluster.start()
    live = cluster.nodes[0]
    before = brokers(live)[live.node_id]
    # The config agrees with the voters (same Raft address), but that address is taken.
    http_port = free_ports(1)[0]
    duplicate = NodeProcess(
        tmp_path / "duplicate",
        node_id=live.node_id,
        http_port=http_port,
        raft_port=live.raft_port,
        voters=live.voters,
    )
    duplicate.format(cluster_id_of(live), tmp_path / "cluster" / "cluster.secret")
    extra.append(duplicate)

    duplicate.start(wait=False)
    code = wait_exit(duplicate)

    assert code != 0
    log = duplicate.log_file.read_text(errors="replace")
    assert "listeners" in log and f"127.0.0.1:{live.raft_port}" in log, log[-3000:]
    assert brokers(live)[live.node_id] == before, "the live node's registration is untouched"
    assert ready_status(live) == 200
    for node in cluster.nodes:
        assert node.process is not None and node.process.poll() is None


def test_a_node_that_cannot_bind_its_raft_address_exits_without_leaking_its_http_client(
    cluster: Cluster, extra: list[NodeProcess], tmp_path: Path
) -> None:
    taken = cluster.nodes[0]
    taken.start(wait=False)
    wait_until("the Raft port is taken", lambda: taken.log_file.exists() and port_open(taken))
    duplicate = NodeProcess(
        tmp_path / "duplicate",
        node_id=taken.node_id,
        http_port=free_ports(1)[0],
        raft_port=taken.raft_port,
        voters=taken.voters,
    )
    duplicate.format(cluster_id_of(taken), tmp_path / "cluster" / "cluster.secret")
    extra.append(duplicate)

    duplicate.start(wait=False)
    assert wait_exit(duplicate) != 0

    assert "Unclosed client session" not in duplicate.log_file.read_text(errors="replace")


def port_open(node: NodeProcess) -> bool:
    """The node's Raft port accepts connections."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", node.raft_port)) == 0


def test_a_node_whose_voters_are_unreachable_stays_up_not_ready_naming_them_until_a_majority(
    cluster: Cluster,
) -> None:
    alone, second, third = cluster.nodes
    alone.start(wait=False)

    def names_the_unreachable_voters() -> bool:
        lines = alone.log_file.read_text(errors="replace").splitlines()
        return any(
            "cannot reach voters" in line
            and f"127.0.0.1:{second.raft_port}" in line
            and f"127.0.0.1:{third.raft_port}" in line
            for line in lines
        )

    wait_until("node 1 logs the voters it cannot reach", names_the_unreachable_voters)
    assert alone.process is not None and alone.process.poll() is None, alone.log_tail()
    assert ready_status(alone) == 503

    second.start(wait=False)
    alone.wait_ready()
    second.wait_ready()
    assert third.process is None, "the third voter was never started"
    assert {b for b, v in brokers(alone).items() if not v["fenced"]} == {1, 2}


def test_a_node_with_another_cluster_secret_cannot_join_and_its_log_names_cluster_secret(
    cluster: Cluster, tmp_path: Path
) -> None:
    first, second, outsider = cluster.nodes
    wrong_secret = tmp_path / "wrong.secret"
    wrong_secret.write_text("not-the-cluster-secret-" + "x" * 20)
    reformat(outsider, cluster_id_of(first), wrong_secret)
    first.start(wait=False)
    second.start(wait=False)
    first.wait_ready()
    second.wait_ready()

    outsider.start(wait=False)
    wait_until(
        "the outsider's log says the cluster secret differs",
        lambda: "cluster.secret" in outsider.log_file.read_text(errors="replace"),
    )
    # Its quorum starts before its HTTP listener (server.main): the line may come first.
    wait_until(
        "the outsider serves HTTP",
        lambda: "serving HTTP" in outsider.log_file.read_text(errors="replace"),
    )
    assert ready_status(outsider) == 503
    for node in (first, second):
        assert ready_status(node) == 200
        assert outsider.node_id not in brokers(node), "it never registered"
    wait_until(
        "a node of the cluster logs the failed authentication too",
        lambda: any(
            "cluster.secret" in n.log_file.read_text(errors="replace") for n in (first, second)
        ),
    )
