"""Building Kafka's Metadata answer from the metadata state (server/kafka/metadata.py), the
response of any version from plain values (server/kafka/entities.py), and our errors as
Kafka's codes (server/kafka/errors.py)."""

from __future__ import annotations

import datetime
import uuid

import pytest
from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

import client.protocol as protocol
from client.protocol import ApiError
from kraft.records import (
    MetadataRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from kraft.state import MetadataState
from server.kafka import frames
from server.kafka.entities import build, has_field, topic_id_text, topic_uuid
from server.kafka.errors import error_code_of, error_message, kafka_error_code
from server.kafka.metadata import (
    AUTHORIZED_OPERATIONS_OMITTED,
    GROUP_OPERATIONS,
    TOPIC_OPERATIONS,
    broker_entries,
    endpoint_of,
    kafka_brokers,
    operations_bitfield,
    partition_entry,
    topic_entry,
)

TOPIC_ID = "x5Ujx2PtQ1C2rkC8-XNMZA"


def _state(
    *, kafka: dict[int, str | None], fenced: frozenset[int] = frozenset(), leader: int = 1
) -> MetadataState:
    state = MetadataState()
    records: list[MetadataRecord] = []
    for b, address in kafka.items():
        records.append(
            RegisterBrokerRecord(b, f"i{b}", 0, f"http://h{b}:9092", "", True, "rack-a", address)
        )
        if b not in fenced:
            records.append(UnfenceBrokerRecord(b, 0))
    records += [
        TopicRecord("orders", TOPIC_ID),
        PartitionRecord(TOPIC_ID, 0, (1, 2, 3), (1, 2, 3), leader, 4, 0),
    ]
    state.apply_entry(1, records)
    return state


def test_clients_are_told_of_unfenced_brokers_with_a_kafka_listener_only() -> None:
    state = _state(kafka={1: "k1:19092", 2: None, 3: "k3:19096"}, fenced=frozenset({3}))
    brokers = kafka_brokers(state)
    assert list(brokers) == [1]
    assert broker_entries(brokers) == [
        {"node_id": 1, "host": "k1", "port": 19092, "rack": "rack-a"}
    ]
    # A node_endpoints entry names a fenced leader too (it is where the client should go).
    assert endpoint_of(state, 3) == {"node_id": 3, "host": "k3", "port": 19096, "rack": "rack-a"}
    assert endpoint_of(state, 2) is None and endpoint_of(state, 9) is None


def test_a_partition_lists_offline_replicas_and_its_leader() -> None:
    state = _state(kafka={1: "k1:1", 2: None, 3: "k3:3"}, fenced=frozenset({3}))
    entry = partition_entry(state, state.topics["orders"].partitions[0], kafka_brokers(state))
    assert entry == {
        "error_code": ErrorCode.none,
        "partition_index": 0,
        "leader_id": 1,
        "leader_epoch": 4,
        "replica_nodes": [1, 2, 3],
        "isr_nodes": [1, 2, 3],
        "offline_replicas": [2, 3],  # no Kafka listener, fenced
    }


def test_a_leader_without_a_kafka_listener_is_listener_not_found() -> None:
    state = _state(kafka={1: "k1:1", 2: None, 3: "k3:3"}, leader=2)
    entry = partition_entry(state, state.topics["orders"].partitions[0], kafka_brokers(state))
    assert (entry["error_code"], entry["leader_id"]) == (ErrorCode.listener_not_found, -1)


def test_a_partition_without_leader_is_leader_not_available() -> None:
    state = _state(kafka={1: "k1:1", 2: "k2:2", 3: "k3:3"}, leader=-1)
    entry = partition_entry(state, state.topics["orders"].partitions[0], kafka_brokers(state))
    assert (entry["error_code"], entry["leader_id"]) == (ErrorCode.leader_not_available, -1)


def test_metadata_v0_leaves_out_brokers_it_does_not_list_and_says_so() -> None:
    state = _state(kafka={1: "k1:1", 2: "k2:2", 3: "k3:3"}, fenced=frozenset({3}))
    partition = state.topics["orders"].partitions[0]
    entry = partition_entry(state, partition, kafka_brokers(state), filter_replicas=True)
    assert entry["error_code"] == ErrorCode.replica_not_available
    assert (entry["replica_nodes"], entry["isr_nodes"]) == ([1, 2], [1, 2])


def test_a_topic_entry_builds_every_metadata_version() -> None:
    state = _state(kafka={1: "k1:19092", 2: "k2:19094", 3: "k3:19096"})
    brokers = kafka_brokers(state)
    values = {
        "throttle_time": 0,
        "brokers": broker_entries(brokers),
        "cluster_id": "c",
        "controller_id": 1,
        "topics": [topic_entry(state, state.topics["orders"], brokers)],
        "error_code": ErrorCode.none,
    }
    for version in range(14):
        response = build(load_response_schema(3, version), values)
        frames.encode(response)  # every version writes
        topic = response.topics[0]
        assert topic.name == "orders"
        assert [p.leader_id for p in topic.partitions] == [1]
        assert has_field(type(topic), "topic_id") == (version >= 10)
        if version >= 10:
            assert topic.topic_id == topic_uuid(TOPIC_ID)
        if version >= 8:
            assert topic.topic_authorized_operations == AUTHORIZED_OPERATIONS_OMITTED


def test_authorized_operations_are_kafkas_bit_field() -> None:
    assert operations_bitfield(TOPIC_OPERATIONS, lambda op: False) == 0
    allowed = {"READ", "DESCRIBE"}
    assert operations_bitfield(TOPIC_OPERATIONS, allowed.__contains__) == (1 << 3) | (1 << 8)
    # Only the resource type's supported operations count (a group has no WRITE).
    assert operations_bitfield(GROUP_OPERATIONS, lambda op: True) == (1 << 3) | (1 << 6) | (1 << 8)


def test_topic_ids_are_kafkas_uuid_text_both_ways() -> None:
    value = topic_uuid(TOPIC_ID)
    assert isinstance(value, uuid.UUID) and topic_id_text(value) == TOPIC_ID
    assert topic_id_text(uuid.UUID(int=0)) is None and topic_id_text(None) is None


def test_build_converts_durations_timestamps_and_codes_and_leaves_out_other_versions_fields() -> (
    None
):
    response = build(
        load_response_schema(0, 9),
        {
            "throttle_time": 5,
            "responses": [
                {
                    "name": "t",
                    "topic_id": TOPIC_ID,  # a v13 field: left out of v9
                    "partition_responses": [
                        {"index": 0, "error_code": 6, "base_offset": -1, "log_append_time": -1,
                         "record_errors": [], "log_start_offset": 3}
                    ],
                }
            ],
        },
    )  # fmt: skip
    assert response.throttle_time == datetime.timedelta(milliseconds=5)
    partition = response.responses[0].partition_responses[0]
    assert partition.error_code is ErrorCode.not_leader_or_follower
    assert partition.log_append_time is None
    assert not has_field(type(response.responses[0]), "topic_id")


# -- errors ----------------------------------------------------------------------------------

KINDS = [v for v in vars(protocol).values() if isinstance(v, protocol.ErrorKind)]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"{k.name}-{k.code}")
def test_every_error_kind_maps_to_kafkas_code_of_its_name_or_a_deliberate_one(
    kind: protocol.ErrorKind,
) -> None:
    code = error_code_of(kind)
    deliberate = {
        "RECORD_TOO_LARGE": ErrorCode.message_too_large,
        "REQUEST_TOO_LARGE": ErrorCode.message_too_large,
    }
    if kind.name in deliberate:
        assert code is deliberate[kind.name]
    elif kind.name.lower() in ErrorCode.__members__:
        assert code is ErrorCode[kind.name.lower()]
    else:  # HTTP-only kinds: no Kafka code says them
        assert code is ErrorCode.unknown_server_error
        assert kind.name in {
            "NOT_FOUND", "METHOD_NOT_ALLOWED", "UNSUPPORTED_MEDIA_TYPE", "TOO_MANY_REQUESTS",
            "SERVER_BUSY",
        }  # fmt: skip


def test_the_codes_clients_act_on_most() -> None:
    assert kafka_error_code(ApiError(protocol.NOT_LEADER_OR_FOLLOWER, "x")) is (
        ErrorCode.not_leader_or_follower
    )
    assert error_code_of(protocol.UNKNOWN_PARTITION) is ErrorCode.unknown_topic_or_partition
    assert error_code_of(protocol.OFFSET_OUT_OF_RANGE) is ErrorCode.offset_out_of_range
    assert error_code_of(protocol.OUT_OF_ORDER_SEQUENCE_NUMBER) is (
        ErrorCode.out_of_order_sequence_number
    )
    assert (
        error_code_of(protocol.FETCH_SESSION_ID_NOT_FOUND) is ErrorCode.fetch_session_id_not_found
    )


def test_an_error_message_is_cut_to_a_bounded_length() -> None:
    assert len(error_message(ApiError(protocol.INVALID_REQUEST, "x" * 10_000))) == 500
