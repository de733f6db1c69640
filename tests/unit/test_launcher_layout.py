"""The local cluster launcher's pure rules (scripts/cluster_nodes.py): ports, properties, and
how a process is recognised as a node of the cluster."""

from __future__ import annotations

from pathlib import Path

from scripts import cluster_nodes as cn
from storage.properties import parse_properties


def test_node_i_serves_http_on_p_plus_2i_minus_2_and_raft_on_the_next_port() -> None:
    nodes = cn.plan_nodes(Path("/c"), 3, 9092)
    assert [(n.node_id, n.http_port, n.raft_port) for n in nodes] == [
        (1, 9092, 9093),
        (2, 9094, 9095),
        (3, 9096, 9097),
    ]
    assert nodes[1].directory == Path("/c/node-2")
    assert nodes[1].log_dir == Path("/c/node-2/kraft-combined-logs")
    assert nodes[1].url == "http://127.0.0.1:9094"


def test_three_node_properties_use_kafkas_names_and_the_three_node_topic_defaults() -> None:
    nodes = cn.plan_nodes(Path("/c"), 3, 9092)
    assert cn.node_properties(nodes[1], nodes) == {
        "node.id": "2",
        "process.roles": "broker,controller",
        "controller.quorum.voters": "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097",
        "listeners": "HTTP://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095,KAFKA://127.0.0.1:19094",
        "advertised.listeners": "HTTP://127.0.0.1:9094,KAFKA://127.0.0.1:19094",
        "log.dirs": "/c/node-2/kraft-combined-logs",
        "num.partitions": "1",
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "log.cleaner.backoff.ms": "1000",
    }


def test_topic_defaults_follow_the_node_count() -> None:
    def defaults(count: int) -> tuple[str, str]:
        nodes = cn.plan_nodes(Path("/c"), count, 9092)
        props = cn.node_properties(nodes[0], nodes)
        return props["default.replication.factor"], props["min.insync.replicas"]

    assert defaults(1) == ("1", "1")
    assert defaults(2) == ("2", "1")
    assert defaults(3) == ("3", "2")
    assert defaults(5) == ("3", "2")


def test_properties_text_reads_back_as_the_same_settings() -> None:
    nodes = cn.plan_nodes(Path("/tmp/a cluster"), 2, 9092)
    props = cn.node_properties(nodes[0], nodes)
    assert parse_properties(cn.properties_text(props, 1, 2)) == props


def test_ports_are_read_back_from_the_listeners() -> None:
    props = {"listeners": "HTTP://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"}
    assert cn.ports_of(props) == (9094, 9095)
    assert cn.ports_of({"listeners": "HTTP://127.0.0.1:9094"}) is None


def test_process_state_is_read_after_a_command_name_with_spaces_and_parentheses() -> None:
    assert cn.process_state("4242 (python3) S 1 4242 4242 0 -1") == "S"
    assert cn.process_state("4242 (a) Z (b)) Z 1 4242") == "Z"


def test_only_kraft_server_start_with_this_properties_file_is_our_node() -> None:
    props = Path("/c/node-1/node.properties")
    venv = "/w/.venv/bin/"
    assert cn.is_node_command([venv + "python", venv + "kraft-server-start", str(props)], props)
    assert cn.is_node_command(["/usr/bin/python3", "-m", "server.main", str(props)], props)
    # Another node of the same cluster, a recycled pid running something else, an editor.
    other = "/c/node-2/node.properties"
    assert not cn.is_node_command([venv + "python", venv + "kraft-server-start", other], props)
    assert not cn.is_node_command(["/usr/bin/sleep", "100"], props)
    assert not cn.is_node_command(["vi", str(props)], props)


def test_node_line_is_the_documented_format() -> None:
    node = cn.plan_nodes(Path("/c"), 1, 9092)[0]
    assert cn.node_line(node, 4242) == "node 1 http://127.0.0.1:9092 pid 4242 kafka 127.0.0.1:19092"
