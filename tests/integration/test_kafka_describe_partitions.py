"""DescribeTopicPartitions (key 75) against the KAFKA listeners of a three-node cluster: raw
requests built with kio's codecs, their answers compared with what ``GET /v1/topics/{t}`` says
on the same node (leaders, epochs, replicas, ISR, topic ids), Kafka's pages followed through
the cursor across topics, and Kafka's errors for an unknown topic and a refused cursor.

One cluster serves the module; each test uses topics of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from server.kafka.entities import topic_uuid
from server.kafka.metadata import TOPIC_OPERATIONS, operations_bitfield
from tests.integration.kafka_helpers import kafka_call
from tests.integration.test_kafka_admin import topic_over_http

DESCRIBE_TOPIC_PARTITIONS = 75
DEADLINE_S = 60.0
# Without an authorizer every topic operation is allowed.
ALL_TOPIC_OPERATIONS = operations_bitfield(TOPIC_OPERATIONS, lambda _: True)


@pytest.fixture(scope="module")
def dtp_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three combined nodes, each with a KAFKA listener on K + 2(i-1)."""
    handle = Cluster.create(tmp_path_factory.mktemp("kafka-dtp"))
    handle.give_kafka_listeners()
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def create_topic(cluster: Cluster, name: str, partitions: int) -> None:
    """``name`` created over HTTP, then known with every replica in the ISR on every node."""
    node = cluster.nodes[0]
    status, body = http("POST", f"{node.url}/v1/topics", {"name": name, "partitions": partitions})
    assert status == 201, body
    for n in cluster.nodes:
        wait_until(
            f"{name} whole on node {n.node_id}",
            lambda n=n: (
                (v := topic_over_http(n, name)) is not None
                and all(set(p["isr"]) == set(p["replicas"]) for p in v["partitions"])
            ),
            DEADLINE_S,
        )


def describe(
    node: NodeProcess,
    names: list[str],
    limit: int = 2000,
    cursor: tuple[str, int] | None = None,
) -> Any:
    body: dict[str, Any] = {
        "topics": [{"name": n} for n in names],
        "response_partition_limit": limit,
        "cursor": None
        if cursor is None
        else {"topic_name": cursor[0], "partition_index": cursor[1]},
    }
    return kafka_call(node.kafka_port, DESCRIBE_TOPIC_PARTITIONS, 0, body)


def as_http(topic: Any) -> dict[str, Any]:
    """A DescribeTopicPartitions topic in the HTTP view's terms (what both must agree on)."""
    return {
        "topic_id": topic.topic_id,
        "partitions": [
            {
                "partition": p.partition_index,
                "leader": p.leader_id,
                "leader_epoch": p.leader_epoch,
                "replicas": list(p.replica_nodes),
                "isr": list(p.isr_nodes),
            }
            for p in topic.partitions
        ],
    }


def http_terms(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "topic_id": topic_uuid(view["topic_id"]),
        "partitions": [
            {k: p[k] for k in ("partition", "leader", "leader_epoch", "replicas", "isr")}
            for p in view["partitions"]
        ],
    }


def test_each_node_answers_the_partitions_its_http_api_shows(dtp_cluster: Cluster) -> None:
    create_topic(dtp_cluster, "dtp-orders", 3)
    for node in dtp_cluster.nodes:

        def agrees(node: NodeProcess = node) -> Any:
            view = topic_over_http(node, "dtp-orders")
            answer = describe(node, ["dtp-orders", "dtp-missing"])
            topics = {t.name: t for t in answer.topics}
            return view is not None and as_http(topics["dtp-orders"]) == http_terms(view) and answer

        answer = wait_until(f"node {node.node_id} agrees with its HTTP view", agrees, DEADLINE_S)
        assert answer.next_cursor is None
        missing, orders = answer.topics  # in name order, as Kafka answers
        assert (orders.name, orders.error_code) == ("dtp-orders", ErrorCode.none)
        assert orders.is_internal is False
        assert orders.topic_authorized_operations == ALL_TOPIC_OPERATIONS
        assert [p.partition_index for p in orders.partitions] == [0, 1, 2]
        for p in orders.partitions:
            assert p.error_code is ErrorCode.none
            assert p.offline_replicas == ()
            # No ELR here: empty lists, as a Kafka 4.4 cluster without the ELR feature sends.
            assert p.eligible_leader_replicas == () and p.last_known_elr == ()
        assert (missing.name, missing.error_code) == (
            "dtp-missing",
            ErrorCode.unknown_topic_or_partition,
        )
        assert missing.partitions == ()


def test_pages_follow_the_cursor_across_topics(dtp_cluster: Cluster) -> None:
    create_topic(dtp_cluster, "dtp-page-a", 3)
    create_topic(dtp_cluster, "dtp-page-b", 2)
    node = dtp_cluster.nodes[1]
    expected = [("dtp-page-a", p) for p in range(3)] + [("dtp-page-b", p) for p in range(2)]

    seen: list[tuple[str, int]] = []
    cursors: list[tuple[str, int] | None] = []
    cursor: tuple[str, int] | None = None
    for _ in range(10):
        answer = describe(node, ["dtp-page-b", "dtp-page-a"], 2, cursor)
        seen += [(t.name, p.partition_index) for t in answer.topics for p in t.partitions]
        c = answer.next_cursor
        cursor = None if c is None else (c.topic_name, c.partition_index)
        cursors.append(cursor)
        if cursor is None:
            break
    assert seen == expected
    # Kafka's cursors: the first partition a page left out; the last page has none.
    assert cursors == [("dtp-page-a", 2), ("dtp-page-b", 1), None]

    # Every topic (none named), a page of one partition at a time: every partition of every
    # topic the HTTP API lists, once, in name order.
    status, listed = http("GET", f"{node.url}/v1/topics")
    assert status == 200, listed
    every: list[tuple[str, int]] = []
    cursor = None
    for _ in range(1000):
        answer = describe(node, [], 1, cursor)
        assert all(t.error_code is ErrorCode.none for t in answer.topics)
        every += [(t.name, p.partition_index) for t in answer.topics for p in t.partitions]
        c = answer.next_cursor
        cursor = None if c is None else (c.topic_name, c.partition_index)
        if cursor is None:
            break
    assert every == [(t["name"], p) for t in listed["topics"] for p in range(t["partition_count"])]


def test_a_cursor_whose_topic_is_not_named_is_invalid_for_every_topic(
    dtp_cluster: Cluster,
) -> None:
    create_topic(dtp_cluster, "dtp-cursor", 1)
    node = dtp_cluster.nodes[2]
    answer = describe(node, ["dtp-cursor", "dtp-cursor"], cursor=("dtp-other", 0))
    assert [(t.name, t.error_code) for t in answer.topics] == [
        ("dtp-cursor", ErrorCode.invalid_request),
        ("dtp-cursor", ErrorCode.invalid_request),
    ]
    assert answer.next_cursor is None
    # The connection's node goes on answering.
    answer = describe(node, ["dtp-cursor"], cursor=("dtp-cursor", 0))
    assert [len(t.partitions) for t in answer.topics] == [1]
