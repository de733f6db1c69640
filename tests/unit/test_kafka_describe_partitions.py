"""DescribeTopicPartitions' pages from the metadata state (server/kafka/describe_partitions.py):
Kafka's cursor and partition limit, authorization, unknown and illegal names, the refused
cursor, and the answer as kio's response class."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from kraft.records import (
    MetadataRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from kraft.state import MetadataState
from server.kafka import bounds, frames
from server.kafka.describe_partitions import (
    Cursor,
    InvalidCursorError,
    describe_page,
    java_order,
    page_limit,
    refused_answer,
)
from server.kafka.entities import ZERO_UUID, build, topic_uuid
from server.kafka.frames import FrameError
from server.kafka.limits import DESCRIBE_PARTITIONS_PER_RESPONSE_MAX
from server.kafka.metadata import AUTHORIZED_OPERATIONS_OMITTED
from storage.ids import random_uuid

# Partitions per topic of the cluster below: "alpha" 3, "beta" 2, "gamma" 1.
SIZES = {"alpha": 3, "beta": 2, "gamma": 1}
OPERATIONS = 0b1_0001_0000  # any bit field: what the answer carries is the callback's


def _state(sizes: dict[str, int] = SIZES) -> MetadataState:
    """Brokers 1 and 2 with a KAFKA listener, 3 without one; each partition on 1, 2, 3, led by
    1 (the last topic's partitions by 3)."""
    state = MetadataState()
    records: list[MetadataRecord] = []
    for b in (1, 2, 3):
        address = None if b == 3 else f"k{b}:1909{b}"
        records += [
            RegisterBrokerRecord(b, f"i{b}", 0, f"http://h{b}:9092", "", True, None, address),
            UnfenceBrokerRecord(b, 0),
        ]
    last = max(sizes)
    for name, count in sizes.items():
        topic_id = random_uuid()
        records.append(TopicRecord(name, topic_id))
        leader = 3 if name == last else 1
        records += [
            PartitionRecord(topic_id, p, (1, 2, 3), (leader, 2), leader, 5, 0) for p in range(count)
        ]
    state.apply_entry(1, records)
    return state


def _page(
    state: MetadataState,
    named: Sequence[str] | None = None,
    cursor: Cursor | None = None,
    limit: int = 2000,
    may_describe: Callable[[str], bool] = lambda name: True,
) -> dict[str, Any]:
    return describe_page(state, named, cursor, limit, may_describe, lambda name: OPERATIONS)


def _partitions(page: dict[str, Any]) -> list[tuple[str, int]]:
    return [(t["name"], p["partition_index"]) for t in page["topics"] for p in t["partitions"]]


def _next(page: dict[str, Any]) -> Cursor | None:
    c = page["next_cursor"]
    return None if c is None else Cursor(c["topic_name"], c["partition_index"])


def test_a_topic_cut_short_ends_the_page_with_the_cursor_at_its_first_partition_left_out() -> None:
    state = _state()
    first = _page(state, limit=2)
    assert _partitions(first) == [("alpha", 0), ("alpha", 1)]
    assert _next(first) == Cursor("alpha", 2)
    # The cursor's topic starts at its partition; the next topic is cut after one.
    second = _page(state, cursor=Cursor("alpha", 2), limit=2)
    assert _partitions(second) == [("alpha", 2), ("beta", 0)]
    assert _next(second) == Cursor("beta", 1)
    third = _page(state, cursor=Cursor("beta", 1), limit=2)
    assert _partitions(third) == [("beta", 1), ("gamma", 0)]
    assert _next(third) is None  # filled exactly, and no topic after it


def test_a_page_filled_exactly_by_a_topic_points_at_the_next_topic_partition_0() -> None:
    state = _state()
    page = _page(state, limit=3)
    assert _partitions(page) == [("alpha", 0), ("alpha", 1), ("alpha", 2)]
    assert [t["name"] for t in page["topics"]] == ["alpha"]
    assert _next(page) == Cursor("beta", 0)


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("named", [None, ["gamma", "alpha", "beta", "alpha"]])
def test_following_the_cursor_yields_every_partition_once_in_order(
    limit: int, named: list[str] | None
) -> None:
    state = _state()
    seen: list[tuple[str, int]] = []
    cursor: Cursor | None = None
    for _ in range(10):
        page = _page(state, named, cursor, limit)
        assert 1 <= len(_partitions(page)) <= limit
        seen += _partitions(page)
        cursor = _next(page)
        if cursor is None:
            break
    assert seen == [(t, p) for t, count in SIZES.items() for p in range(count)]


def test_topics_before_the_cursor_topic_are_left_out() -> None:
    page = _page(_state(), ["alpha", "gamma", "beta"], Cursor("beta", 0))
    assert [t["name"] for t in page["topics"]] == ["beta", "gamma"]


def test_a_cursor_past_a_topics_end_gives_none_of_it_and_no_cursor_within_it() -> None:
    page = _page(_state(), ["beta", "gamma"], Cursor("beta", 7), limit=1)
    assert [(t["name"], t["partitions"]) for t in page["topics"]][0] == ("beta", [])
    assert _partitions(page) == [("gamma", 0)]
    assert _next(page) is None


def test_a_cursor_topic_not_named_or_a_negative_partition_is_refused() -> None:
    state = _state()
    with pytest.raises(InvalidCursorError, match="should contain the cursor topic: gamma"):
        _page(state, ["alpha", "beta"], Cursor("gamma", 0))
    with pytest.raises(InvalidCursorError, match="cursor partition must be valid"):
        _page(state, ["alpha"], Cursor("alpha", -1))
    with pytest.raises(InvalidCursorError, match="cursor partition must be valid"):
        _page(state, None, Cursor("alpha", -1))
    # Every topic listed: the cursor's topic need not exist.
    assert _partitions(_page(state, None, Cursor("aardvark", 0), limit=1)) == [("alpha", 0)]
    # Kafka's error answer: every topic as named, twice when named twice.
    answer = refused_answer(["beta", "beta", "alpha"], ErrorCode.invalid_request)
    assert [(t["name"], t["error_code"]) for t in answer["topics"]] == [
        ("beta", ErrorCode.invalid_request),
        ("beta", ErrorCode.invalid_request),
        ("alpha", ErrorCode.invalid_request),
    ]
    assert answer["next_cursor"] is None


def test_a_named_topic_not_allowed_is_refused_after_the_rest_and_left_out_when_listing_all() -> (
    None
):
    state = _state()

    def may(name: str) -> bool:
        return name != "beta"

    page = _page(state, ["beta", "alpha", "ghost"], limit=1, may_describe=may)
    # alpha fills the page; beta's refusal is answered all the same, with nothing of it.
    assert [(t["name"], t["error_code"]) for t in page["topics"]] == [
        ("alpha", ErrorCode.none),
        ("beta", ErrorCode.topic_authorization_failed),
    ]
    refused = page["topics"][1]
    assert refused["topic_id"] == ZERO_UUID and refused["partitions"] == []
    assert refused["topic_authorized_operations"] == AUTHORIZED_OPERATIONS_OMITTED
    assert _next(page) == Cursor("alpha", 1)

    every = _page(state, None, may_describe=may)
    assert [t["name"] for t in every["topics"]] == ["alpha", "gamma"]
    assert all(t["error_code"] is ErrorCode.none for t in every["topics"])


def test_an_unknown_topic_is_unknown_an_illegal_name_invalid_and_neither_takes_room() -> None:
    state = _state()
    page = _page(state, ["alpha", "ghost", "bad name", "beta"], limit=6)
    answers = {t["name"]: t for t in page["topics"]}
    assert [t["name"] for t in page["topics"]] == ["alpha", "bad name", "beta", "ghost"]
    assert answers["ghost"]["error_code"] is ErrorCode.unknown_topic_or_partition
    assert answers["bad name"]["error_code"] is ErrorCode.invalid_topic_exception
    for name in ("ghost", "bad name"):
        assert answers[name]["topic_id"] == ZERO_UUID and answers[name]["partitions"] == []
        # Kafka gives a topic answered without partitions its operations too.
        assert answers[name]["topic_authorized_operations"] == OPERATIONS
    assert _partitions(page) == [("alpha", 0), ("alpha", 1), ("alpha", 2), ("beta", 0), ("beta", 1)]
    assert _next(page) is None
    # With the page full, an unknown topic next is where the next page starts.
    full = _page(state, ["alpha", "ghost"], limit=3)
    assert [t["name"] for t in full["topics"]] == ["alpha"]
    assert _next(full) == Cursor("ghost", 0)


def test_a_partition_is_metadata_s_without_an_error_and_with_empty_elr_lists() -> None:
    state = _state()
    page = _page(state, ["alpha", "gamma"])
    alpha, gamma = page["topics"]
    assert alpha["is_internal"] is False
    assert alpha["topic_id"] == state.topics["alpha"].topic_id
    assert alpha["topic_authorized_operations"] == OPERATIONS
    assert alpha["partitions"][0] == {
        "error_code": ErrorCode.none,
        "partition_index": 0,
        "leader_id": 1,
        "leader_epoch": 5,
        "replica_nodes": [1, 2, 3],
        "isr_nodes": [1, 2],
        "offline_replicas": [3],  # no KAFKA listener on 3
        "eligible_leader_replicas": [],
        "last_known_elr": [],
    }
    # A leader without a KAFKA listener: -1, and still no error (Kafka sets none here, where
    # Metadata answers LISTENER_NOT_FOUND).
    assert gamma["partitions"][0]["leader_id"] == -1
    assert gamma["partitions"][0]["error_code"] is ErrorCode.none


def test_the_partition_limit_is_kafkas_maximum_at_most_and_one_at_least() -> None:
    assert page_limit(2000) == DESCRIBE_PARTITIONS_PER_RESPONSE_MAX == 2000
    assert page_limit(1_000_000) == 2000
    assert page_limit(0) == 1 and page_limit(-5) == 1
    assert page_limit(7) == 7


def test_names_sort_as_java_s_string_compare_to() -> None:
    # Above U+FFFF Java compares UTF-16 surrogates (0xD800...) where Python compares code points.
    high, low = "\U00010000", "\uffff"
    assert high > low
    assert java_order(high) < java_order(low)
    assert sorted(["b", "a", "B"], key=java_order) == ["B", "a", "b"]


def test_the_page_builds_kios_response_and_encodes() -> None:
    state = _state()
    values = _page(state, ["alpha", "beta"], limit=2, may_describe=lambda name: name != "beta")
    cls = load_response_schema(75, 0)
    response = build(cls, {"throttle_time": 0, **values})
    assert response.next_cursor.topic_name == "alpha"
    assert response.next_cursor.partition_index == 2
    assert response.topics[0].topic_id == topic_uuid(state.topics["alpha"].topic_id)
    assert response.topics[1].topic_id == ZERO_UUID
    assert response.topics[0].partitions[0].eligible_leader_replicas == ()
    assert frames.encode(response)


@pytest.mark.parametrize("cursor", [None, {"topic_name": "alpha", "partition_index": 2}])
def test_a_request_with_or_without_its_cursor_passes_the_walk_and_decodes(
    cursor: dict[str, Any] | None,
) -> None:
    # The cursor is a nullable struct: an int8 marker (-1: null) before its fields, which the
    # walk over a request's lengths (server/kafka/bounds.py) must step over.
    cls = load_request_schema(75, 0)
    request = build(
        cls, {"topics": [{"name": "alpha"}], "response_partition_limit": 5, "cursor": cursor}
    )
    out = io.BytesIO()
    entity_writer(cls)(out, request)
    body = out.getvalue()
    bounds.check(cls, body, 0)
    assert entity_reader(cls)(body, 0) == (request, len(body))
    # A cursor cut short reaches past the end.
    if cursor is not None:
        with pytest.raises(FrameError, match="reaches past the request's end"):
            bounds.check(cls, body[:-6], 0)
