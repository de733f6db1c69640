"""The produce plan: partition choice as Kafka's, whole-request validation, batch cuts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client.protocol import ApiError, ProduceRecord
from server.produce import PartitionPlan, plan_produce
from storage.batch import build_batch

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "murmur2.json").read_text())["vectors"]


def plan(records: list[ProduceRecord], **kwargs: Any) -> dict[int, PartitionPlan]:
    options: dict[str, Any] = dict(
        partitions=3, fixed_partition=None, round_robin=0, now_ms=1_000, max_message_bytes=1 << 20
    )
    options.update(kwargs)
    return plan_produce(records, **options)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["key"] or "empty")
def test_keyed_record_goes_to_kafkas_murmur2_partition(vector: dict[str, Any]) -> None:
    for partitions in (3, 12):
        plans = plan([ProduceRecord(vector["key"].encode(), b"v")], partitions=partitions)
        assert list(plans) == [vector[f"partition_of_{partitions}"]]


def test_same_key_records_land_in_one_partition_in_order() -> None:
    records = [ProduceRecord(b"user1", f"event {i}".encode()) for i in range(5)]
    (only,) = plan(records).values()
    assert only.positions == [0, 1, 2, 3, 4]
    assert [r.value for r in only.batches[0]] == [f"event {i}".encode() for i in range(5)]


def test_keyless_records_of_one_request_share_the_rotation_partition() -> None:
    records = [ProduceRecord(None, b"a"), ProduceRecord(None, b"b")]
    assert list(plan(records, round_robin=7)) == [7 % 3]
    assert list(plan(records, round_robin=8)) == [8 % 3]


def test_explicit_partition_outside_the_topic_rejects_the_request() -> None:
    with pytest.raises(ApiError) as caught:
        plan([ProduceRecord(None, b"ok"), ProduceRecord(None, b"x", partition=3)])
    assert caught.value.code == 40402


def test_record_naming_another_partition_than_the_endpoint_is_invalid() -> None:
    with pytest.raises(ApiError) as caught:
        plan([ProduceRecord(None, b"x", partition=1)], fixed_partition=0)
    assert caught.value.code == 42206


def test_record_whose_batch_exceeds_max_message_bytes_is_too_large() -> None:
    big = ProduceRecord(None, b"x" * 1000)
    (only,) = plan([big]).values()
    limit = len(build_batch(only.batches[0]))
    assert plan([big], max_message_bytes=limit)  # exactly at the limit: accepted
    with pytest.raises(ApiError) as caught:
        plan([ProduceRecord(None, b"ok"), big], max_message_bytes=limit - 1)
    assert caught.value.code == 41301


def test_many_records_are_cut_into_batches_within_the_limit() -> None:
    records = [ProduceRecord(b"k", b"x" * 100) for _ in range(100)]
    limit = 2_000
    (only,) = plan(records, max_message_bytes=limit).values()
    assert len(only.batches) > 1
    assert sum(len(b) for b in only.batches) == 100
    for batch in only.batches:
        assert len(build_batch(batch)) <= limit


def test_timestamp_defaults_to_now_and_is_kept_when_given() -> None:
    plans = plan([ProduceRecord(b"k", b"a"), ProduceRecord(b"k", b"b", timestamp=5)], now_ms=42)
    (only,) = plans.values()
    assert [r.timestamp for r in only.batches[0]] == [42, 5]


# -- compacted topics --------------------------------------------------------------------------


def test_a_keyless_record_refuses_a_request_to_a_compacted_topic_in_kafkas_words() -> None:
    records = [ProduceRecord(b"a", b"1"), ProduceRecord(None, b"2"), ProduceRecord(b"c", b"3")]
    with pytest.raises(ApiError) as caught:
        plan(records, compacted=True, topic="tables", round_robin=4)
    assert caught.value.name == "INVALID_RECORD"
    # The partition the keyless record would have gone to: the rotation's (4 % 3).
    assert caught.value.message == (
        "Compacted topic cannot accept message without key in topic partition tables-1."
    )
    with pytest.raises(ApiError) as fixed:
        plan([ProduceRecord(None, b"x")], compacted=True, topic="t", fixed_partition=2)
    assert fixed.value.message.endswith("in topic partition t-2.")


def test_keyed_records_and_tombstones_go_to_a_compacted_topic() -> None:
    records = [ProduceRecord(b"a", b"1"), ProduceRecord(b"a", None), ProduceRecord(b"", b"e")]
    plans = plan(records, compacted=True, topic="tables")
    assert sorted(p for plan_ in plans.values() for p in plan_.positions) == [0, 1, 2]
    # The same keyless records are fine where the topic is not compacted.
    assert plan([ProduceRecord(None, b"2")], topic="tables")
