"""Kafka 4.4.0's kafka-metadata-quorum against our three nodes' KAFKA listeners: its Admin
client's describeMetadataQuorum sends DescribeQuorum (55) to a node, which answers the quorum
leader's view (server/kafka/admin_quorum.py); the lines it prints are checked against
GET /v1/cluster/quorum and each node's meta.properties."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from scripts.node_process import http
from storage.properties import MetaProperties
from tests.compat.conftest import KafkaNodes, KafkaToolRunner


def ok(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a tool printed on stdout; it must have exited 0 without an exception."""
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Exception" not in done.stderr, done.stderr
    return done.stdout.splitlines()


def quorum(nodes: KafkaNodes) -> dict[str, Any]:
    status, body = http("GET", f"{nodes.cluster.nodes[0].url}/v1/cluster/quorum")
    assert status == 200, body
    controller = body["leader_id"]
    status, body = http("GET", f"{nodes.cluster.node(controller).url}/v1/cluster/quorum")
    assert status == 200, body
    view: dict[str, Any] = body
    return view


def test_metadata_quorum_describe_status(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    before = quorum(kafka_nodes)
    follower = next(n for n in kafka_nodes.cluster.nodes if n.node_id != before["leader_id"])
    lines = ok(
        kafka_tool.run(
            "kafka-metadata-quorum",
            "--bootstrap-server",
            kafka_nodes.address(follower),
            "describe",
            "--status",
        )
    )
    after = quorum(kafka_nodes)
    fields: dict[str, str] = {}
    for line in lines:
        match = re.match(r"(\w+):\s+(.*)$", line)
        assert match is not None, lines
        fields[match[1]] = match[2]
    assert list(fields) == [
        "ClusterId",
        "LeaderId",
        "LeaderEpoch",
        "HighWatermark",
        "MaxFollowerLag",
        "MaxFollowerLagTimeMs",
        "CurrentVoters",
        "CurrentObservers",
    ], lines
    assert fields["ClusterId"] == kafka_nodes.cluster.cluster_id
    assert int(fields["LeaderId"]) == before["leader_id"] == after["leader_id"]
    assert int(fields["LeaderEpoch"]) == before["term"] == after["term"]
    assert before["commit_index"] <= int(fields["HighWatermark"]) <= after["commit_index"]
    assert int(fields["MaxFollowerLag"]) >= 0
    # [{"id": 1, "directoryId": "...", "endpoints": ["CONTROLLER://127.0.0.1:port"]}, ...]
    voters = json.loads(fields["CurrentVoters"])
    expected = []
    for node in kafka_nodes.cluster.nodes:
        meta = MetaProperties.read(node.log_dir)
        assert meta is not None
        expected.append(
            {
                "id": node.node_id,
                "directoryId": meta.directory_id,
                "endpoints": [f"CONTROLLER://127.0.0.1:{node.raft_port}"],
            }
        )
    assert sorted(voters, key=lambda v: v["id"]) == expected
    assert json.loads(fields["CurrentObservers"]) == []


def test_metadata_quorum_describe_replication(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    before = quorum(kafka_nodes)
    lines = ok(
        kafka_tool.run(
            "kafka-metadata-quorum",
            "--bootstrap-server",
            kafka_nodes.bootstrap,
            "describe",
            "--replication",
        )
    )
    after = quorum(kafka_nodes)
    header, *rows = [line.split() for line in lines]
    assert header == [
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ]
    leader = before["leader_id"]
    assert [(int(r[0]), r[6]) for r in rows][0] == (leader, "Leader")
    assert sorted((int(r[0]), r[6]) for r in rows) == sorted(
        (n.node_id, "Leader" if n.node_id == leader else "Follower")
        for n in kafka_nodes.cluster.nodes
    )
    ends_before = {v["id"]: v["log_end_offset"] for v in before["voters"]}
    ends_after = {v["id"]: v["log_end_offset"] for v in after["voters"]}
    for node_id, directory, end, lag, fetched, caught_up, _ in rows:
        i = int(node_id)
        meta = MetaProperties.read(kafka_nodes.cluster.node(i).log_dir)
        assert meta is not None and directory == meta.directory_id
        assert ends_before[i] <= int(end) <= ends_after[i]
        assert int(lag) >= 0
        # The leader heard from each voter: a wall-clock time in milliseconds, not -1.
        assert int(fetched) > 0
        assert int(caught_up) == -1 or int(caught_up) > 0
