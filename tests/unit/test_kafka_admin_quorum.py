"""DescribeQuorum on the Kafka listener (server/kafka/admin_quorum.py), and every admin API on
a node that is not ready yet: each answers Kafka's error in its response, never a raise (which
closes the client's connection). The handlers run against the in-memory controller of
test_kafka_admin, with a quorum status as pysyncobj's shell gives it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from client.protocol import LEADER_NOT_AVAILABLE, ApiError
from kraft.records import RegisterControllerRecord
from server.kafka import admin_apis
from server.kafka.admin_quorum import quorum_fields
from server.kafka.entities import ZERO_UUID, build
from tests.unit.test_kafka_admin import Controller, call, state_with_brokers

NOW_MS = 1_700_000_000_000
DIRECTORY_1 = "AAAAAAAAAAAAAAAAAAAAAQ"  # Kafka's Uuid text of the UUID whose int is 1
METADATA = [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]


def leader_view() -> dict[str, Any]:
    """GET /v1/cluster/quorum's answer on leader 1: follower 2 caught up, follower 3 unknown
    (never heard from), observer 4 behind."""

    def member(i: int, status: str, end: int | None, fetch: int | None, lag: int | None) -> Any:
        caught_up = fetch if lag == 0 else None
        return {
            "id": i,
            "status": status,
            "connected": end is not None,
            "log_end_offset": end,
            "lag": lag,
            "last_fetch_ms": fetch,
            "last_caught_up_ms": caught_up,
        }

    return {
        "cluster_id": "c",
        "leader_id": 1,
        "term": 4,
        "commit_index": 120,
        "node": {"id": 1, "applied_index": 120, "metadata_digest": "d"},
        "voters": [
            member(1, "Leader", 121, NOW_MS, 0),
            member(2, "Follower", 121, NOW_MS - 40, 0),
            member(3, "Follower", None, None, None),
        ],
        "observers": [member(4, "Observer", 100, NOW_MS - 7, 21)],
    }


@pytest.mark.parametrize("version", range(3))
def test_the_quorum_maps_onto_kafkas_fields_with_minus_one_for_the_unknown(version: int) -> None:
    fields = quorum_fields(
        leader_view(),
        {1: DIRECTORY_1, 2: None},
        {1: "node1:9093", 2: "node2:9093", 3: "node3:9093"},
    )
    from kio.index import load_response_schema

    response = build(load_response_schema(55, version), {"throttle_time": 0, **fields})
    assert response.error_code == ErrorCode.none
    (topic,) = response.topics
    (partition,) = topic.partitions
    assert (topic.topic_name, partition.partition_index, partition.error_code) == (
        "__cluster_metadata",
        0,
        ErrorCode.none,
    )
    assert (partition.leader_id, partition.leader_epoch, partition.high_watermark) == (1, 4, 120)
    voters = [(v.replica_id, v.log_end_offset) for v in partition.current_voters]
    assert voters == [(1, 121), (2, 121), (3, -1)]
    if version >= 1:
        assert [
            (v.last_fetch_timestamp, v.last_caught_up_timestamp) for v in partition.current_voters
        ] == [
            (NOW_MS, NOW_MS),
            (NOW_MS - 40, NOW_MS - 40),
            (-1, -1),
        ]
        (observer,) = partition.observers
        assert (observer.replica_id, observer.log_end_offset) == (4, 100)
        assert (observer.last_fetch_timestamp, observer.last_caught_up_timestamp) == (
            NOW_MS - 7,
            -1,
        )
    if version >= 2:
        directories = [v.replica_directory_id for v in partition.current_voters]
        assert directories == [uuid.UUID(int=1), ZERO_UUID, ZERO_UUID]
        assert partition.observers[0].replica_directory_id == ZERO_UUID
        nodes = {n.node_id: [(e.name, e.host, e.port) for e in n.listeners] for n in response.nodes}
        assert nodes == {i: [("CONTROLLER", f"node{i}", 9093)] for i in (1, 2, 3)}


def test_a_voter_without_an_id_or_an_address_is_left_out_not_invented() -> None:
    view = leader_view()
    view["voters"][2]["id"] = None  # a voter that has not registered yet
    fields = quorum_fields(view, {}, {1: "node1:9093"})
    (partition,) = fields["topics"][0]["partitions"]
    assert [v["replica_id"] for v in partition["current_voters"]] == [1, 2]
    assert [n["node_id"] for n in fields["nodes"]] == [1]


class _LeadingQuorum:
    """The in-memory controller's quorum, leading (``leader``: 1) or not knowing a leader."""

    def __init__(self, node: Controller, leader: int | None) -> None:
        self.inner = node.quorum
        self.leader = leader

    def snapshot_state(self) -> Any:
        return self.inner.snapshot_state()

    def is_leader(self) -> bool:
        return self.leader == 1

    def leader_id(self) -> int | None:
        return self.leader

    def voter_addresses(self) -> tuple[str, ...]:
        return ("127.0.0.1:9093", "127.0.0.1:9095")

    def voter_id(self, address: str) -> int | None:
        return {"127.0.0.1:9093": 1, "127.0.0.1:9095": 2}[address]

    def status(self) -> dict[str, Any]:
        return {
            "leader_id": self.leader,
            "term": 3,
            "commit_index": 17,
            "metadata_applied_index": 17,
            "metadata_digest": "x",
            "voters": [
                {
                    "id": 1,
                    "status": "Leader",
                    "connected": True,
                    "log_end_index": 18,
                    "last_contact_ms": 0,
                },
                {
                    "id": 2,
                    "status": "Follower",
                    "connected": True,
                    "match_index": 18,
                    "last_contact_ms": 5,
                },
            ],
            "observers": [],
        }


def quorum_node(leader: int | None = 1, properties: dict[str, str] | None = None) -> Controller:
    node = Controller(state_with_brokers(1, 2), **(properties or {}))
    node.state.apply_entry(
        2,
        [
            RegisterControllerRecord(
                1, "inc1", "http://127.0.0.1:9092", "127.0.0.1:9093", DIRECTORY_1
            )
        ],
    )
    node.quorum = _LeadingQuorum(node, leader)  # type: ignore[assignment]
    return node


@pytest.mark.parametrize("version", range(3))
def test_the_leader_answers_describe_quorum_from_its_own_view(version: int) -> None:
    response = call(quorum_node(), 55, version, {"topics": METADATA})
    (partition,) = response.topics[0].partitions
    assert (response.error_code, partition.error_code) == (ErrorCode.none, ErrorCode.none)
    assert (partition.leader_id, partition.leader_epoch, partition.high_watermark) == (1, 3, 17)
    assert [(v.replica_id, v.log_end_offset) for v in partition.current_voters] == [
        (1, 18),
        (2, 18),
    ]
    if version >= 2:
        # Node 1's endpoint from its registration, node 2's from the quorum's configuration.
        nodes = {n.node_id: [(e.host, e.port) for e in n.listeners] for n in response.nodes}
        assert nodes == {1: [("127.0.0.1", 9093)], 2: [("127.0.0.1", 9095)]}
        assert partition.current_voters[0].replica_directory_id == uuid.UUID(int=1)


@pytest.mark.parametrize(
    "topics",
    [
        [{"topic_name": "orders", "partitions": [{"partition_index": 0}]}],
        [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 1}]}],
        [
            {
                "topic_name": "__cluster_metadata",
                "partitions": [{"partition_index": 0}, {"partition_index": 0}],
            }
        ],
    ],
)
def test_anything_but_the_metadata_partition_is_unknown_per_partition(topics: Any) -> None:
    response = call(quorum_node(), 55, 2, {"topics": topics})
    assert response.error_code == ErrorCode.none
    answered = [
        (t.topic_name, p.partition_index, p.error_code)
        for t in response.topics
        for p in t.partitions
    ]
    asked = [(t["topic_name"], p["partition_index"]) for t in topics for p in t["partitions"]]
    assert answered == [(*a, ErrorCode.unknown_topic_or_partition) for a in asked]


def test_describe_quorum_needs_describe_on_the_cluster() -> None:
    node = quorum_node(
        properties={
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
        }
    )
    response = call(node, 55, 2, {"topics": METADATA}, principal="User:mallory")
    assert (response.error_code, response.topics) == (ErrorCode.cluster_authorization_failed, ())


def test_no_leader_to_ask_is_a_timeout_the_admin_client_retries() -> None:
    response = call(quorum_node(leader=None), 55, 2, {"topics": METADATA})
    assert response.error_code == ErrorCode.request_timed_out
    assert "no controller is known" in (response.error_message or "")


# -- a node that is not ready ---------------------------------------------------------------------


class NotReady(Controller):
    def require_ready(self) -> None:
        raise ApiError(LEADER_NOT_AVAILABLE, "node 1 is starting; retry shortly")


# One request of each admin API at its newest version, naming a topic or resource.
REQUESTS: dict[int, dict[str, Any]] = {
    19: {
        "topics": [
            {
                "name": "t",
                "num_partitions": 1,
                "replication_factor": 1,
                "assignments": [],
                "configs": [],
            }
        ],
        "timeout": 5000,
        "validate_only": False,
    },
    20: {"topics": [{"name": "t", "topic_id": None}], "timeout": 5000},
    32: {
        "resources": [
            {"resource_type": 2, "resource_name": "t", "configuration_keys": None},
            {"resource_type": 4, "resource_name": "1", "configuration_keys": None},
        ],
        "include_synonyms": False,
        "include_documentation": False,
    },
    35: {"topics": None},
    37: {
        "topics": [{"name": "t", "count": 2, "assignments": None}],
        "timeout": 5000,
        "validate_only": False,
    },
    43: {
        "election_type": 0,
        "topic_partitions": [{"topic": "t", "partitions": [0]}],
        "timeout": 5000,
    },
    44: {
        "resources": [
            {
                "resource_type": 2,
                "resource_name": "t",
                "configs": [{"name": "retention.ms", "config_operation": 0, "value": "1000"}],
            }
        ],
        "validate_only": False,
    },
    45: {
        "timeout": 5000,
        "topics": [{"name": "t", "partitions": [{"partition_index": 0, "replicas": [1]}]}],
    },
    46: {"timeout": 5000, "topics": None},
    55: {"topics": METADATA},
    60: {"include_cluster_authorized_operations": False, "include_fenced_brokers": False},
    75: {"topics": [{"name": "t"}], "response_partition_limit": 2000, "cursor": None},
}


def error_codes(value: Any) -> list[ErrorCode]:
    """Every error code in a response, depth first."""
    if isinstance(value, tuple):
        return [c for item in value for c in error_codes(item)]
    slots = getattr(type(value), "__dataclass_fields__", None)
    if slots is None:
        return []
    out: list[ErrorCode] = []
    for name in slots:
        item = getattr(value, name)
        if name == "error_code" and isinstance(item, ErrorCode):
            out.append(item)
        else:
            out += error_codes(item)
    return out


@pytest.mark.parametrize("spec", admin_apis.ADMIN_APIS, ids=lambda s: s.handler.__name__)
def test_a_node_that_is_not_ready_answers_every_admin_request_with_a_retriable_error(
    spec: Any,
) -> None:
    assert set(REQUESTS) == {s.api_key for s in admin_apis.ADMIN_APIS}, "a new admin API"
    node = NotReady(
        state_with_brokers(),
        **{
            # Before the metadata is loaded no ACL is known: readiness is answered first.
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
        },
    )
    response = call(node, spec.api_key, spec.max_version, REQUESTS[spec.api_key])
    codes = error_codes(response)
    if spec.api_key == 60:
        # DescribeCluster needs no metadata: no controller known, no broker, no error.
        assert (response.controller_id, response.brokers, codes) == (-1, (), [ErrorCode.none])
        return
    assert codes, response
    assert set(codes) == {ErrorCode.leader_not_available}, response
