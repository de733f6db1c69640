"""The replica views' shaping (server/replica_views.py): brokers' answers put beside the
metadata for a topic's replicas, the topic list's detail and the groups' lag. Pure: the
brokers' answers are plain data here."""

from __future__ import annotations

from typing import Any

import pytest

from kraft.records import (
    FenceBrokerRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
)
from kraft.state import MetadataState
from server.replica_views import (
    BrokerAnswer,
    ReplicaFigures,
    asking_plan,
    broker_answer,
    brokers_to_ask,
    group_lags,
    leader_ends,
    parse_broker_answer,
    parse_committed,
    topic_answer,
    topic_detail,
)

NEWS = "x5Ujx2PtQ1C2rkC8-XNMZA"
LOGS = "Q2rkC8-XNMZAx5Ujx2PtQA"


def cluster() -> MetadataState:
    """Brokers 1-3; news: 2 partitions of 3 replicas, led by 1 and 2; logs: 1 of 1, on 3."""
    state = MetadataState()
    state.apply_entry(
        1,
        [
            RegisterBrokerRecord(b, "i", 1, f"http://127.0.0.1:{9090 + b}", "h:1", fenced=False)
            for b in (1, 2, 3)
        ],
    )
    state.apply_entry(
        2,
        [
            TopicRecord("news", NEWS),
            PartitionRecord(NEWS, 0, (1, 2, 3), (1, 2, 3), 1, 0, 0),
            PartitionRecord(NEWS, 1, (2, 3, 1), (2, 3, 1), 2, 0, 0),
            TopicRecord("logs", LOGS),
            PartitionRecord(LOGS, 0, (3,), (3,), 3, 0, 0),
        ],
    )
    return state


def figures(
    topic: str, partition: int, leader: bool, end: int, hw: int, start: int = 0, size: int = 100
) -> ReplicaFigures:
    return ReplicaFigures(topic, partition, leader, 0, start, end, hw, size, False)


def healthy() -> dict[int, BrokerAnswer]:
    """Every broker answered: news has 10 records in partition 0 (follower 3 at 8) and 4 in
    partition 1 (from offset 2); logs has 7."""
    return {
        1: {
            ("news", 0): figures("news", 0, True, 10, 10),
            ("news", 1): figures("news", 1, False, 6, 6, start=2),
        },
        2: {
            ("news", 0): figures("news", 0, False, 10, 10),
            ("news", 1): figures("news", 1, True, 6, 6, start=2),
        },
        3: {
            ("news", 0): figures("news", 0, False, 8, 8),
            ("news", 1): figures("news", 1, False, 6, 6, start=2),
            ("logs", 0): figures("logs", 0, True, 7, 7, size=50),
        },
    }


def test_a_brokers_answer_lists_the_chosen_topics_sorted_and_reads_back() -> None:
    replicas = [
        figures("news", 1, False, 6, 6),
        figures("logs", 0, True, 7, 7),
        figures("news", 0, True, 1, 1),
    ]
    answer = broker_answer(3, replicas, frozenset({"news"}))
    assert answer["broker_id"] == 3
    assert [(r["topic"], r["partition"]) for r in answer["replicas"]] == [("news", 0), ("news", 1)]
    everything = broker_answer(3, replicas, None)
    assert [r["topic"] for r in everything["replicas"]] == ["logs", "news", "news"]
    assert parse_broker_answer(everything) == {(r.topic, r.partition): r for r in replicas}


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {"replicas": "none"},
        {"replicas": [{"topic": "news"}]},
        {"replicas": [{**figures("news", 0, True, 1, 1).to_json(), "partition": "0"}]},
        {"replicas": [{**figures("news", 0, True, 1, 1).to_json(), "is_leader": 1}]},
        {"replicas": [{**figures("news", 0, True, 1, 1).to_json(), "size": True}]},
    ],
)
def test_an_unreadable_brokers_answer_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_broker_answer(bad)


def test_fenced_and_unregistered_brokers_are_not_asked() -> None:
    state = cluster()
    state.apply_entry(3, [FenceBrokerRecord(3, 1)])
    ask, skipped = brokers_to_ask(state, [state.topics["news"]])
    assert ask == [1, 2]
    assert skipped == {3: "broker 3 is fenced"}
    ask, skipped = asking_plan(state.brokers, [1, 7])
    assert (ask, skipped) == ([1], {7: "broker 7 is not registered"})


def test_only_the_brokers_holding_the_topic_are_asked() -> None:
    state = cluster()
    assert brokers_to_ask(state, [state.topics["logs"]]) == ([3], {})


def test_every_replica_state_follows_the_order_of_the_replicas_with_the_leaders_figures() -> None:
    state = cluster()
    answer = topic_answer(state.topics["news"], healthy())
    assert answer["topic"] == "news" and answer["topic_id"] == NEWS
    first, second = answer["partitions"]
    assert [s["broker"] for s in first["replica_states"]] == [1, 2, 3]
    assert [s["broker"] for s in second["replica_states"]] == [2, 3, 1]
    assert (first["leader"], first["high_watermark"], first["log_start_offset"]) == (1, 10, 0)
    assert (second["leader"], second["high_watermark"], second["log_start_offset"]) == (2, 6, 2)
    assert [s["log_end_offset"] for s in first["replica_states"]] == [10, 10, 8]
    assert all(s["in_isr"] and s["error"] is None for s in first["replica_states"])
    assert first["replica_states"][0] == {
        "broker": 1,
        "in_isr": True,
        "log_end_offset": 10,
        "high_watermark": 10,
        "log_start_offset": 0,
        "size": 100,
        "offline": False,
        "error": None,
    }


def test_a_broker_that_could_not_be_asked_has_null_figures_and_its_error() -> None:
    state = cluster()
    state.apply_entry(3, [PartitionChangeRecord(NEWS, 0, isr=(1, 2))])
    answers = healthy()
    answers[1] = "the broker 1 at http://127.0.0.1:9091 did not answer: timed out"
    answers[3] = {("logs", 0): figures("logs", 0, True, 7, 7)}  # news not open there yet
    first, _ = topic_answer(state.topics["news"], answers)["partitions"]
    # The leader (1) did not answer: the partition's figures are unknown, not 0.
    assert (first["high_watermark"], first["log_start_offset"]) == (None, None)
    down, up, missing = first["replica_states"]
    assert down == {
        "broker": 1,
        "in_isr": True,
        "log_end_offset": None,
        "high_watermark": None,
        "log_start_offset": None,
        "size": None,
        "offline": None,
        "error": "the broker 1 at http://127.0.0.1:9091 did not answer: timed out",
    }
    assert up["error"] is None and up["log_end_offset"] == 10
    assert missing["error"] == "broker 3 has no replica of news-0 open"
    assert (missing["log_end_offset"], missing["in_isr"]) == (None, False)


def test_a_partition_without_a_leader_says_null() -> None:
    state = cluster()
    state.apply_entry(3, [PartitionChangeRecord(NEWS, 0, leader=-1, isr=(1,))])
    first, _ = topic_answer(state.topics["news"], healthy())["partitions"]
    assert (first["leader"], first["high_watermark"]) == (None, None)
    detail = topic_detail(state.topics["news"], healthy(), {})
    assert (detail["offline"], detail["under_replicated"], detail["records"]) == (1, 1, None)


def test_detail_counts_records_from_the_leaders_and_size_over_every_replica() -> None:
    state = cluster()
    detail = topic_detail(state.topics["news"], healthy(), {})
    assert detail == {
        "under_replicated": 0,
        "offline": 0,
        "records": 10 + (6 - 2),
        "size_bytes": 6 * 100,
        "groups": [],
    }
    answers = healthy()
    answers[3] = "broker 3 is fenced"
    detail = topic_detail(state.topics["news"], answers, {})
    assert (detail["records"], detail["size_bytes"]) == (14, None)
    # logs lives on broker 3 alone: with it gone nothing of logs is known.
    assert topic_detail(state.topics["logs"], answers, {})["records"] is None


def test_the_lag_is_the_leaders_high_watermark_minus_the_committed_offset_summed() -> None:
    state = cluster()
    ends = leader_ends(state, healthy())
    assert ends == {("news", 0): 10, ("news", 1): 6, ("logs", 0): 7}
    lags = group_lags(
        [
            ("billing", "news", 0, 4),
            ("billing", "news", 1, 6),
            ("billing", "logs", 0, 9),  # past the end (the log was truncated): 0, not -2
            ("audit", "news", 0, 10),
        ],
        ends,
        state.topics,
    )
    assert lags["billing"].lag == 6
    assert lags["billing"].topics_json() == [
        {"topic": "logs", "lag": 0},
        {"topic": "news", "lag": 6},
    ]
    assert lags["audit"].lag == 0
    detail = topic_detail(state.topics["news"], healthy(), lags)
    assert detail["groups"] == [{"group": "audit", "lag": 0}, {"group": "billing", "lag": 6}]


def test_a_lag_is_unknown_when_its_leader_could_not_be_asked() -> None:
    state = cluster()
    answers = healthy()
    answers[2] = "broker 2 is fenced"  # leads news-1
    lags = group_lags(
        [("billing", "news", 0, 4), ("billing", "news", 1, 0), ("billing", "logs", 0, 7)],
        leader_ends(state, answers),
        state.topics,
    )
    assert lags["billing"].lag is None
    assert lags["billing"].topics_json() == [
        {"topic": "logs", "lag": 0},
        {"topic": "news", "lag": None},
    ]


def test_offsets_on_a_deleted_topic_count_for_nothing() -> None:
    state = cluster()
    lags = group_lags(
        [("old", "gone", 0, 5), ("mixed", "gone", 0, 5), ("mixed", "logs", 0, 3)],
        leader_ends(state, healthy()),
        state.topics,
    )
    assert (lags["old"].lag, lags["old"].topics) == (None, ())
    assert lags["mixed"].lag == 4
    assert lags["mixed"].topics_json() == [{"topic": "logs", "lag": 4}]


def test_a_coordinators_committed_offsets_read_back_and_bad_ones_are_refused() -> None:
    assert parse_committed([["g", "news", 0, 4], ["g", "logs", 1, 0]]) == [
        ("g", "news", 0, 4),
        ("g", "logs", 1, 0),
    ]
    for bad in (
        {"g": 1},
        [["g", "news", 0]],
        [["g", "news", "0", 4]],
        [["g", 1, 0, 4]],
        [["g", "n", 0, True]],
    ):
        with pytest.raises(ValueError):
            parse_committed(bad)
