"""Metadata records: self-validation, Kafka's topic-name rule, the entry encoding."""

from __future__ import annotations

import orjson
import pytest

from client.protocol import topic_name_problem
from kraft.errors import MetadataRecordError
from kraft.records import (
    ConfigRecord,
    FenceBrokerRecord,
    LeaderChangeRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    decode,
    encode,
    validate_topic_id,
)

TID = "x5Ujx2PtQ1C2rkC8-XNMZA"

ALL_RECORDS = [
    RegisterBrokerRecord(1, "inc-1", 7, "http://127.0.0.1:9092", "127.0.0.1:9093"),
    RegisterBrokerRecord(2, "inc-2", 8, "https://h:1", "h:2", fenced=False),
    FenceBrokerRecord(1, 7),
    UnfenceBrokerRecord(1, 7),
    TopicRecord("news", TID),
    PartitionRecord(TID, 0, (1, 2, 3), (1, 2), 1, 0, 0),
    PartitionChangeRecord(TID, 0, leader=-1),
    PartitionChangeRecord(TID, 0, isr=(2,), replicas=(2, 3)),
    RemoveTopicRecord(TID),
    ConfigRecord("topic", "news", "retention.ms", "1000"),
    ConfigRecord("broker", "", "log.retention.ms", None),
    ConfigRecord("broker", "3", "x", ""),
    ProducerIdsRecord(1, 7, 1000),
    LeaderChangeRecord(2),
    NoOpRecord(),
]


def test_every_record_type_round_trips_through_encode_and_decode() -> None:
    assert decode(encode(ALL_RECORDS)) == ALL_RECORDS


def test_entry_encoding_is_the_documented_json() -> None:
    data = encode([TopicRecord("news", TID)])
    assert orjson.loads(data) == {
        "v": 1,
        "records": [{"type": "topic", "v": 1, "name": "news", "topic_id": TID}],
    }


def test_fields_with_defaults_may_be_left_out() -> None:
    data = orjson.dumps(
        {
            "v": 1,
            "records": [
                {"type": "partition_change", "v": 1, "topic_id": TID, "partition": 0, "isr": [1]}
            ],
        }
    )
    assert decode(data) == [PartitionChangeRecord(TID, 0, isr=(1,))]


@pytest.mark.parametrize(
    "name, ok",
    [
        ("news", True),
        ("a.b_c-D9", True),
        ("x" * 249, True),
        ("x" * 250, False),
        ("", False),
        (".", False),
        ("..", False),
        ("...", True),
        ("has space", False),
        ("slash/", False),
        ("ünï", False),
    ],
)
def test_topic_name_follows_kafkas_rule(name: str, ok: bool) -> None:
    assert (topic_name_problem(name) is None) == ok


def test_topic_name_messages_are_kafkas() -> None:
    assert topic_name_problem("") == "Topic name is illegal, it can't be empty"
    assert topic_name_problem("a b") == (
        'Topic name "a b" is illegal, it contains a character other than ASCII '
        "alphanumerics, '.', '_' and '-'"
    )


@pytest.mark.parametrize(
    "topic_id",
    ["", "short", "A" * 22, TID + "A", "x5Ujx2PtQ1C2rkC8-XNMZ/", "x5Ujx2PtQ1C2rkC8-XNMZB"],
)
def test_topic_id_must_be_a_canonical_nonzero_base64url_uuid(topic_id: str) -> None:
    assert validate_topic_id(topic_id) is not None


def test_valid_topic_id_is_accepted() -> None:
    assert validate_topic_id(TID) is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: PartitionRecord(TID, 0, (), (), -1, 0, 0),  # no replicas
        lambda: PartitionRecord(TID, 0, (1, 1), (1,), 1, 0, 0),  # replicas not distinct
        lambda: PartitionRecord(TID, 0, (1, 2), (3,), -1, 0, 0),  # isr outside replicas
        lambda: PartitionRecord(TID, 0, (1, 2), (2,), 1, 0, 0),  # leader outside isr
        lambda: PartitionRecord(TID, -1, (1,), (1,), 1, 0, 0),  # negative partition
        lambda: PartitionRecord(TID, 0, (1,), (1,), 1, -1, 0),  # negative leader epoch
        lambda: PartitionRecord(TID, 0, [1], (1,), 1, 0, 0),  # type: ignore[arg-type] # a list is not a tuple
        lambda: PartitionRecord(TID, 0, (True,), (), -1, 0, 0),  # a bool is not a broker id
        lambda: PartitionChangeRecord(TID, 0),  # changes nothing
        lambda: PartitionChangeRecord(TID, 0, leader=-2),
        lambda: PartitionChangeRecord(TID, 0, replicas=()),
        lambda: TopicRecord("bad name", TID),
        lambda: TopicRecord("news", "nope"),
        lambda: RegisterBrokerRecord(-1, "i", 0, "http://h:1", "h:2"),
        lambda: RegisterBrokerRecord(1, "", 0, "http://h:1", "h:2"),
        lambda: RegisterBrokerRecord(1, "i", 0, "ftp://h:1", "h:2"),
        lambda: RegisterBrokerRecord(1, "i", 0, "http://h:1", "h"),
        lambda: RegisterBrokerRecord(1, "i", 0, "http://h:1", "h:0"),
        lambda: RegisterBrokerRecord(1, "i", 0, "http://h:1", "h:2", fenced=1),  # type: ignore[arg-type]
        lambda: ConfigRecord("topic", "bad name", "x", "1"),
        lambda: ConfigRecord("broker", "-1", "x", "1"),
        lambda: ConfigRecord("group", "g", "x", "1"),  # type: ignore[arg-type]
        lambda: ConfigRecord("topic", "t", "", "1"),
        lambda: ConfigRecord("topic", "t", "x y", "1"),
        lambda: ConfigRecord("topic", "t", "x", 1),  # type: ignore[arg-type]
        lambda: ProducerIdsRecord(1, 0, -5),
        lambda: FenceBrokerRecord(1, -1),
        lambda: LeaderChangeRecord(-1),
        lambda: LeaderChangeRecord(True),  # a bool is not a node id
    ],
)
def test_records_refuse_malformed_fields(build: object) -> None:
    with pytest.raises(MetadataRecordError):
        build()  # type: ignore[operator]


def _entry(*records: dict[str, object], v: object = 1) -> bytes:
    return orjson.dumps({"v": v, "records": list(records)})


@pytest.mark.parametrize(
    "data, words",
    [
        (b"not json", "invalid JSON"),
        (b"[]", "an entry is an object"),
        (_entry(v=2), "newer"),
        (_entry(v=True), "positive integer"),
        (_entry(), "1 to"),
        (_entry({"type": "nope", "v": 1}), "unknown type"),
        (_entry({"type": "no_op", "v": 2}), "newer"),
        (_entry({"type": "no_op", "v": 1, "extra": 1}), "unknown field"),
        (_entry({"type": "leader_change", "v": 1}), "lacks the field 'leader_id'"),
        (_entry({"type": "topic", "v": 1, "name": "t"}), "lacks the field 'topic_id'"),
        (_entry({"type": "topic", "v": 1, "name": 5, "topic_id": TID}), "field name must be"),
        (_entry({"type": "fence_broker", "v": 1, "broker_id": 1.0, "broker_epoch": 1}), "int"),
        (
            _entry(
                {
                    "type": "partition",
                    "v": 1,
                    "topic_id": TID,
                    "partition": 0,
                    "replicas": [1, "2"],
                    "isr": [],
                    "leader": -1,
                    "leader_epoch": 0,
                    "partition_epoch": 0,
                }
            ),
            "replicas",
        ),
        (_entry("string"), "must be an object"),  # type: ignore[arg-type]
    ],
)
def test_decode_raises_one_error_naming_the_problem(data: bytes, words: str) -> None:
    with pytest.raises(MetadataRecordError) as info:
        decode(data)
    assert words in str(info.value)


def test_encode_refuses_an_empty_entry_and_non_records() -> None:
    with pytest.raises(MetadataRecordError):
        encode([])
    with pytest.raises(MetadataRecordError):
        encode(["topic"])  # type: ignore[list-item]


def test_records_are_frozen() -> None:
    record = TopicRecord("news", TID)
    with pytest.raises(AttributeError):
        record.name = "other"  # type: ignore[misc]
