"""Kafka's rules for a consumer's Fetch that the session table alone does not show, through the
Fetch handler over real partitions (MemoryLog) of a fake node (no sockets): an incremental
session serves its partitions in turn under max_bytes, a session's partition named by a topic
id is not served from a recreated topic of the same name, READ is checked before existence, and
a session holds at most FETCH_SESSION_PARTITIONS_MAX partitions."""

from __future__ import annotations

import datetime
from typing import Any, cast

from kio.schema.errors import ErrorCode

from client.protocol import UNKNOWN_TOPIC, ApiError
from kraft.records import (
    AclRecord,
    MetadataRecord,
    PartitionRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from server.kafka import limits
from server.kafka.entities import topic_uuid
from server.kafka.fetch import sessions_of
from server.node import Node
from server.partition import LeaderState, Partition
from storage.batch import NewRecord, build_batch
from storage.memory_log import MemoryLog
from tests.unit.test_kafka_groups import FakeNode, call, metadata

TOPIC = "clicks"
OLD_ID = "AAAAAAAAAAAAAAAAAAAAEQ"
NEW_ID = "AAAAAAAAAAAAAAAAAAAAIg"
VALUE_BYTES = 2000  # one record per batch: a batch is a little over this
BATCHES = 5  # per partition: each holds more than one answer's max_bytes


def _batches(count: int, first_value: int = 0) -> bytes:
    return b"".join(
        build_batch(
            [NewRecord(None, bytes([first_value + i % 200]) * VALUE_BYTES, 1)], base_offset=i
        )
        for i in range(count)
    )


class Replicas:
    """The replica manager's lookups the Fetch handler makes, over partitions held here."""

    def __init__(self) -> None:
        self.partitions: dict[tuple[str, int], Partition] = {}

    def add(self, topic_id: str, index: int, data: bytes) -> Partition:
        log = MemoryLog()
        if data:
            log.append_batches(data)
        log.update_high_watermark(log.log_end_offset)
        partition = Partition(
            topic=TOPIC,
            topic_id=topic_id,
            index=index,
            node_id=1,
            log=log,
            state=LeaderState(1, 0, (1,), (1,)),
            leader_since_ms=0,
        )
        self.partitions[(TOPIC, index)] = partition
        return partition

    async def await_opening(self, topic: str, index: int) -> None:
        return None

    def partition(self, topic: str, index: int) -> Partition:
        found = self.partitions.get((topic, index))
        if found is None:
            raise ApiError(UNKNOWN_TOPIC, f"no partition {topic}-{index} here")
        return found

    def leader_partition(self, topic: str, index: int) -> Partition:
        return self.partition(topic, index)

    def local(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get((topic, index))


def _topic(topic_id: str, partitions: int) -> list[MetadataRecord]:
    records: list[MetadataRecord] = [TopicRecord(TOPIC, topic_id)]
    records += [PartitionRecord(topic_id, p, (1,), (1,), 1, 0, 0) for p in range(partitions)]
    return records


def _node(partitions: int = 3, acls: tuple[AclRecord, ...] = ()) -> tuple[FakeNode, Replicas]:
    state = metadata(acls)
    state.apply_entry(2, _topic(OLD_ID, partitions))
    node = FakeNode(state, authorizer=bool(acls))
    replicas = Replicas()
    node.replica_manager = replicas  # type: ignore[attr-defined]
    return node, replicas


def _partition(index: int, offset: int = 0, max_bytes: int = 1 << 20) -> dict[str, Any]:
    return {
        "partition": index,
        "current_leader_epoch": -1,
        "fetch_offset": offset,
        "log_start_offset": -1,
        "partition_max_bytes": max_bytes,
    }


def _fetch(
    node: FakeNode,
    version: int,
    topics: list[dict[str, Any]],
    *,
    session_id: int = 0,
    epoch: int = -1,
    max_bytes: int = 1 << 20,
    forgotten: list[dict[str, Any]] | None = None,
) -> Any:
    return call(
        node,
        1,
        version,
        {
            "max_wait": datetime.timedelta(milliseconds=0),
            "min_bytes": 1,
            "max_bytes": max_bytes,
            "session_id": session_id,
            "session_epoch": epoch,
            "topics": topics,
            "forgotten_topics_data": forgotten or [],
        },
    )


def _answers(response: Any) -> dict[int, Any]:
    return {p.partition_index: p for t in response.responses for p in t.partitions}


def _served(response: Any) -> list[int]:
    """The partitions the answer gave records, in its order."""
    return [p.partition_index for t in response.responses for p in t.partitions if p.records]


# -- rotation ------------------------------------------------------------------------------------


def test_an_incremental_session_serves_its_partitions_in_turn_under_max_bytes() -> None:
    # Kafka moves a partition that returned records to the end of the session: with max_bytes
    # smaller than any partition's data, each fetch serves the next partition, none starved.
    node, replicas = _node(3)
    for index in range(3):
        replicas.add(OLD_ID, index, _batches(BATCHES))
    offsets = {index: 0 for index in range(3)}
    max_bytes = VALUE_BYTES  # below one batch: only the first partition with data gets one

    def topic(indices: list[int]) -> list[dict[str, Any]]:
        return [{"topic": TOPIC, "partitions": [_partition(i, offsets[i]) for i in indices]}]

    full = _fetch(node, 12, topic([0, 1, 2]), epoch=0, max_bytes=max_bytes)
    assert full.session_id != 0 and _served(full) == [0]
    served = [0]
    offsets[0] = 1
    moved = [0]
    for epoch in range(1, 7):
        answer = _fetch(
            node, 12, topic(moved), session_id=full.session_id, epoch=epoch, max_bytes=max_bytes
        )
        assert answer.error_code is ErrorCode.none
        [index] = _served(answer)
        served.append(index)
        offsets[index] += 1
        moved = [index]
    # The full answer does not rotate (Kafka's FullFetchContext keeps the request's order), so
    # the first incremental answer serves partition 0 again; from there, each in turn.
    assert served == [0, 0, 1, 2, 0, 1, 2]


def test_a_full_answer_keeps_the_request_s_order() -> None:
    # Kafka rotates only in incremental answers: a full request opens the session in its order.
    node, replicas = _node(3)
    for index in range(3):
        replicas.add(OLD_ID, index, _batches(BATCHES))
    topics = [{"topic": TOPIC, "partitions": [_partition(i) for i in (2, 0, 1)]}]
    full = _fetch(node, 12, topics, epoch=0, max_bytes=VALUE_BYTES)
    assert _served(full) == [2]
    session = sessions_of(cast(Node, node)).table.get(full.session_id)
    assert session is not None
    assert list(session.partitions) == [(TOPIC, 2), (TOPIC, 0), (TOPIC, 1)]


# -- topic ids -----------------------------------------------------------------------------------


def _recreate(node: FakeNode, replicas: Replicas) -> None:
    """Deletes the topic and creates it again under its name, with another id and a log that
    has records at the offsets the old one had."""
    node.state.apply_entry(3, [RemoveTopicRecord(OLD_ID), *_topic(NEW_ID, 3)])
    for p in range(3):
        replicas.add(NEW_ID, p, _batches(BATCHES, 100))


def test_a_session_s_partition_of_a_recreated_topic_answers_inconsistent_topic_id() -> None:
    node, replicas = _node(3)
    for index in range(3):
        replicas.add(OLD_ID, index, _batches(BATCHES))
    by_id = [{"topic_id": topic_uuid(OLD_ID), "partitions": [_partition(i) for i in range(3)]}]
    full = _fetch(node, 13, by_id, epoch=0)
    assert {i: p.error_code for i, p in _answers(full).items()} == dict.fromkeys(
        range(3), ErrorCode.none
    )
    _recreate(node, replicas)
    # The client still fetches the old id at its offsets: the new log must not be served.
    answer = _fetch(node, 13, [], session_id=full.session_id, epoch=1)
    assert answer.error_code is ErrorCode.none
    answers = _answers(answer)
    assert {i: p.error_code for i, p in answers.items()} == dict.fromkeys(
        range(3), ErrorCode.inconsistent_topic_id
    )
    assert not any(p.records for p in answers.values())
    [topic] = answer.responses
    assert topic.topic_id == topic_uuid(OLD_ID), "answered under the id the client fetched"
    # Its metadata refreshed, the client forgets the old id (unknown now) and adds the new one.
    moved = _fetch(
        node,
        13,
        [{"topic_id": topic_uuid(NEW_ID), "partitions": [_partition(0)]}],
        session_id=full.session_id,
        epoch=2,
        forgotten=[{"topic_id": topic_uuid(OLD_ID), "partitions": [0, 1, 2]}],
    )
    assert moved.error_code is ErrorCode.none
    [topic] = moved.responses
    assert topic.topic_id == topic_uuid(NEW_ID)
    assert [(p.partition_index, p.error_code) for p in topic.partitions] == [(0, ErrorCode.none)]
    session = sessions_of(cast(Node, node)).table.get(full.session_id)
    assert session is not None and list(session.partitions) == [(TOPIC, 0)]
    assert session.partitions[(TOPIC, 0)].want.topic_id == NEW_ID


def test_a_session_s_partition_of_a_deleted_topic_answers_unknown_topic_or_partition() -> None:
    # Kafka keeps the name a session resolved: a topic gone answers UNKNOWN_TOPIC_OR_PARTITION.
    node, replicas = _node(3)
    replicas.add(OLD_ID, 0, _batches(BATCHES))
    by_id = [{"topic_id": topic_uuid(OLD_ID), "partitions": [_partition(0)]}]
    full = _fetch(node, 13, by_id, epoch=0)
    node.state.apply_entry(3, [RemoveTopicRecord(OLD_ID)])
    del replicas.partitions[(TOPIC, 0)]
    answer = _fetch(node, 13, [], session_id=full.session_id, epoch=1)
    assert _answers(answer)[0].error_code is ErrorCode.unknown_topic_or_partition
    # A request naming the unknown id itself: UNKNOWN_TOPIC_ID.
    named = _fetch(node, 13, by_id)
    assert _answers(named)[0].error_code is ErrorCode.unknown_topic_id


def test_a_session_by_name_is_served_from_the_recreated_topic_as_kafka_does() -> None:
    # Before v13 a partition is its name: Kafka compares no id (the offset decides).
    node, replicas = _node(3)
    replicas.add(OLD_ID, 0, _batches(BATCHES))
    full = _fetch(node, 12, [{"topic": TOPIC, "partitions": [_partition(0)]}], epoch=0)
    _recreate(node, replicas)
    answer = _fetch(node, 12, [], session_id=full.session_id, epoch=1)
    assert _answers(answer)[0].error_code is ErrorCode.none


# -- authorization before existence --------------------------------------------------------------


def _read_acl(topic: str) -> AclRecord:
    return AclRecord(
        "AQIDBAUGBwgJCgsMDQ4PEQ", "TOPIC", topic, "LITERAL", "User:alice", "*", "READ", "ALLOW"
    )


def test_read_is_checked_before_a_topic_or_partition_is_known_to_exist() -> None:
    # alice may read "orders" only: of a topic she may not read, whether it or its partition
    # exists is not told (Kafka's KafkaApis.handleFetchRequest authorizes first).
    node, replicas = _node(3, acls=(_read_acl("orders"),))
    replicas.add(OLD_ID, 0, _batches(1))
    topics = [
        {"topic": TOPIC, "partitions": [_partition(0), _partition(9)]},  # exists, unreadable
        {"topic": "nowhere", "partitions": [_partition(0)]},  # does not exist, unreadable
        {"topic": "orders", "partitions": [_partition(7)]},  # readable, no partition 7
    ]
    answer = _fetch(node, 12, topics)
    codes = {(t.topic, p.partition_index): p.error_code for t in answer.responses
             for p in t.partitions}  # fmt: skip
    assert codes == {
        (TOPIC, 0): ErrorCode.topic_authorization_failed,
        (TOPIC, 9): ErrorCode.topic_authorization_failed,
        ("nowhere", 0): ErrorCode.topic_authorization_failed,
        ("orders", 7): ErrorCode.unknown_topic_or_partition,
    }
    # By id: an unknown id names no topic, so Kafka answers UNKNOWN_TOPIC_ID before READ.
    by_id = [{"topic_id": topic_uuid(NEW_ID), "partitions": [_partition(0)]}]
    assert _answers(_fetch(node, 13, by_id))[0].error_code is ErrorCode.unknown_topic_id


# -- the session's size --------------------------------------------------------------------------


def _capped(node: FakeNode, partitions_max: int) -> None:
    table = sessions_of(cast(Node, node)).table
    assert table.partitions_max == limits.FETCH_SESSION_PARTITIONS_MAX
    table.partitions_max = partitions_max


def test_a_full_request_above_the_session_cap_is_answered_sessionless() -> None:
    node, replicas = _node(3)
    _capped(node, 2)
    for index in range(3):
        replicas.add(OLD_ID, index, _batches(1))
    topics = [{"topic": TOPIC, "partitions": [_partition(i) for i in range(3)]}]
    answer = _fetch(node, 12, topics, epoch=0)
    # Kafka's answer when it cannot cache a session: session id 0, every partition answered.
    assert answer.error_code is ErrorCode.none and answer.session_id == 0
    assert sorted(_served(answer)) == [0, 1, 2]
    assert len(sessions_of(cast(Node, node)).table) == 0


def test_an_incremental_request_above_the_session_cap_ends_the_session() -> None:
    node, replicas = _node(3)
    _capped(node, 2)
    for index in range(3):
        replicas.add(OLD_ID, index, _batches(1))
    two = [{"topic": TOPIC, "partitions": [_partition(0), _partition(1)]}]
    full = _fetch(node, 12, two, epoch=0)
    assert full.session_id != 0
    third = [{"topic": TOPIC, "partitions": [_partition(2)]}]
    answer = _fetch(node, 12, third, session_id=full.session_id, epoch=1)
    # As Kafka ends a session an incremental request empties: answered sessionless (session
    # id 0, the Java client's "session closed by the server"), its next request full.
    assert answer.error_code is ErrorCode.none and answer.session_id == 0
    assert _served(answer) == [2]
    assert sessions_of(cast(Node, node)).table.get(full.session_id) is None
    again = _fetch(node, 12, third, session_id=full.session_id, epoch=2)
    assert again.error_code is ErrorCode.fetch_session_id_not_found
