"""The launcher's layouts (scripts/cluster_nodes.py, scripts/cluster.py): the dedicated layout's
properties per role, roles read back from a directory, the node lines, and the flags that do
not mix. Pure: files in tmp_path, no process and no socket."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import cluster_nodes as cn
from storage.properties import parse_properties


def _write(directory: Path, node: cn.NodeLayout, nodes: list[cn.NodeLayout]) -> None:
    node_dir = directory / f"node-{node.node_id}"
    node_dir.mkdir(parents=True)
    props = cn.node_properties(node, nodes)
    (node_dir / "node.properties").write_text(cn.properties_text(props, node.node_id, len(nodes)))


def test_the_dedicated_layout_numbers_controllers_first_then_brokers() -> None:
    nodes = cn.plan_nodes(Path("/c"), 5, 9092, controllers=3)
    assert [(n.node_id, n.roles, n.http_port) for n in nodes] == [
        (1, cn.CONTROLLER, 9092),
        (2, cn.CONTROLLER, 9094),
        (3, cn.CONTROLLER, 9096),
        (4, cn.BROKER, 9098),
        (5, cn.BROKER, 9100),
    ]
    assert [n.roles for n in cn.plan_nodes(Path("/c"), 3, 9092)] == [cn.COMBINED] * 3


def test_a_controller_is_a_voter_of_the_controllers_only() -> None:
    nodes = cn.plan_nodes(Path("/c"), 5, 9092, controllers=3)
    assert cn.node_properties(nodes[1], nodes) == {
        "node.id": "2",
        "process.roles": "controller",
        "controller.quorum.voters": "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097",
        "listeners": "HTTP://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095",
        "advertised.listeners": "HTTP://127.0.0.1:9094",
        "log.dirs": "/c/node-2/kraft-combined-logs",
        "num.partitions": "1",
        # Two brokers: the replication factor cannot exceed them.
        "default.replication.factor": "2",
        "min.insync.replicas": "1",
        "log.cleaner.backoff.ms": "1000",
    }


def test_a_broker_has_no_raft_listener_and_bootstraps_from_the_controllers() -> None:
    nodes = cn.plan_nodes(Path("/c"), 6, 9092, controllers=3)
    props = cn.node_properties(nodes[4], nodes)
    assert props["process.roles"] == "broker"
    assert props["controller.quorum.bootstrap.servers"] == (
        "127.0.0.1:9093,127.0.0.1:9095,127.0.0.1:9097"
    )
    assert "controller.quorum.voters" not in props
    assert props["listeners"] == "HTTP://127.0.0.1:9100,KAFKA://127.0.0.1:19100"
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("3", "2")
    text = cn.properties_text(props, 5, 6)
    assert "# A broker: it holds partitions" in text
    assert parse_properties(text) == props


def test_topic_defaults_count_brokers_not_nodes() -> None:
    assert cn.topic_defaults(1) == {"default.replication.factor": "1", "min.insync.replicas": "1"}
    assert cn.topic_defaults(2) == {"default.replication.factor": "2", "min.insync.replicas": "1"}
    assert cn.topic_defaults(3) == {"default.replication.factor": "3", "min.insync.replicas": "2"}
    assert cn.topic_defaults(7) == {"default.replication.factor": "3", "min.insync.replicas": "2"}


def test_roles_and_ports_are_read_back_from_each_node_directory(tmp_path: Path) -> None:
    nodes = cn.plan_nodes(tmp_path, 4, 9092, controllers=1)
    for node in nodes:
        _write(tmp_path, node, nodes)
    found = cn.existing_nodes(tmp_path)
    assert [(n.node_id, n.roles, n.http_port, n.raft_port) for n in found] == [
        (1, cn.CONTROLLER, 9092, 9093),
        (2, cn.BROKER, 9094, 9095),
        (3, cn.BROKER, 9096, 9097),
        (4, cn.BROKER, 9098, 9099),
    ]


def test_roles_of_takes_any_order_and_keeps_an_unknown_value() -> None:
    assert cn.roles_of({"process.roles": "controller, broker"}) == cn.COMBINED
    assert cn.roles_of({}) == cn.COMBINED
    assert cn.roles_of({"process.roles": " broker"}) == cn.BROKER
    assert cn.roles_of({"process.roles": "observer"}) == "observer"


def test_a_directory_with_an_unknown_role_or_no_controller_is_refused(tmp_path: Path) -> None:
    nodes = cn.plan_nodes(tmp_path, 2, 9092, controllers=1)
    _write(tmp_path, nodes[1], nodes)  # node 2 alone: a broker
    (tmp_path / "node-1").mkdir()
    (tmp_path / "node-1" / "node.properties").write_text(
        "process.roles=observer\nlisteners=HTTP://127.0.0.1:9092\n"
    )
    with pytest.raises(cn.LauncherError, match="process.roles must be broker, controller"):
        cn.existing_nodes(tmp_path)
    (tmp_path / "node-1" / "node.properties").write_text(
        "process.roles=broker\nlisteners=HTTP://127.0.0.1:9092\n"
    )
    with pytest.raises(cn.LauncherError, match="holds brokers but no controller"):
        cn.existing_nodes(tmp_path)


def test_a_broker_needs_only_an_http_listener_a_controller_both() -> None:
    broker = {"process.roles": "broker", "listeners": "HTTP://127.0.0.1:9098"}
    assert cn.ports_of(broker) == (9098, 9099)
    controller = {"process.roles": "controller", "listeners": "HTTP://127.0.0.1:9092"}
    assert cn.ports_of(controller) is None


def test_node_lines_name_the_role_unless_the_node_is_combined() -> None:
    combined = cn.plan_nodes(Path("/c"), 1, 9092)[0]
    assert cn.node_line(combined, 42) == "node 1 http://127.0.0.1:9092 pid 42 kafka 127.0.0.1:19092"
    dedicated = cn.plan_nodes(Path("/c"), 4, 9092, controllers=3)
    assert cn.node_line(dedicated[0], 42) == "node 1 http://127.0.0.1:9092 pid 42 controller"
    assert cn.node_line(dedicated[3], 43) == (
        "node 4 http://127.0.0.1:9098 pid 43 broker kafka 127.0.0.1:19098"
    )


def test_a_removed_broker_leaves_a_gap_but_a_removed_controller_is_refused(
    tmp_path: Path,
) -> None:
    nodes = cn.plan_nodes(tmp_path, 5, 9092, controllers=2)
    for node in nodes:
        if node.node_id != 4:
            _write(tmp_path, node, nodes)
    assert [n.node_id for n in cn.existing_nodes(tmp_path)] == [1, 2, 3, 5]
    (tmp_path / "node-2" / "node.properties").unlink()
    with pytest.raises(cn.LauncherError, match=r"no node directory for voters \[2\]"):
        cn.existing_nodes(tmp_path)
