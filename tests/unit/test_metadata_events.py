"""The metadata log's events (server/metadata_events.py): one per change a person watches, with
what it changed from, in log order, the newest kept."""

from __future__ import annotations

from typing import Any

import pytest

from kraft.applied_entries import AppliedEntry
from kraft.records import (
    ConfigRecord,
    FenceBrokerRecord,
    LeaderChangeRecord,
    MetadataRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
)
from kraft.state import MetadataState
from server.metadata_events import EVENT_TYPES, MetadataEvents

NEWS = "x5Ujx2PtQ1C2rkC8-XNMZA"
LOGS = "Q2rkC8-XNMZAx5Ujx2PtQA"


def register(broker_id: int, epoch: int = 10) -> RegisterBrokerRecord:
    return RegisterBrokerRecord(
        broker_id, f"inc-{broker_id}", epoch, "http://127.0.0.1:1", "127.0.0.1:2", fenced=False
    )


def news(partitions: int = 2) -> list[MetadataRecord]:
    return [TopicRecord("news", NEWS)] + [
        PartitionRecord(NEWS, p, (1, 2, 3), (1, 2, 3), 1, 0, 0) for p in range(partitions)
    ]


class Log:
    """A state and a tracker fed the same entries, as the quorum feeds them."""

    def __init__(self, count_max: int = 1000) -> None:
        self.state = MetadataState()
        self.events = MetadataEvents(count_max)
        self.events.state_replaced(0, self.state.copy())
        self.term = 1

    def entry(self, *records: MetadataRecord) -> int:
        index = self.state.applied_index + 1
        self.state.apply_entry(index, records)  # the state must accept what the tracker reads
        self.events.entry_applied(AppliedEntry(index, self.term, 5000 + index, tuple(records)))
        return index

    def cluster(self) -> None:
        self.entry(register(1), register(2), register(3))
        self.entry(*news())

    def new(self, after: int) -> list[dict[str, Any]]:
        return self.events.events(after, 1000)


def test_a_new_controller_gives_a_quorum_leader_event_in_its_term() -> None:
    log = Log()
    log.term = 3
    index = log.entry(LeaderChangeRecord(2))
    assert log.new(0) == [
        {
            "index": index,
            "term": 3,
            "time_ms": 5000 + index,
            "type": "quorum_leader",
            "leader": 2,
            "text": "node 2 leads the metadata quorum (term 3)",
        }
    ]


def test_the_same_election_written_twice_gives_one_quorum_leader_event() -> None:
    # A controller whose LeaderChangeRecord timed out writes it again; the first may commit too.
    log = Log()
    log.term = 3
    first = log.entry(LeaderChangeRecord(2))
    log.cluster()
    log.entry(LeaderChangeRecord(2))
    log.term = 4
    again_later = log.entry(LeaderChangeRecord(2))  # the same node, a new term: told
    log.term = 5
    other = log.entry(LeaderChangeRecord(3))
    leaders = [
        (e["index"], e["leader"], e["term"]) for e in log.new(0) if e["type"] == "quorum_leader"
    ]
    assert leaders == [(first, 2, 3), (again_later, 2, 4), (other, 3, 5)]
    assert log.events.applied_index == other


def test_brokers_registered_fenced_and_unfenced() -> None:
    log = Log()
    log.entry(register(1), RegisterBrokerRecord(2, "i", 4, "http://h:1", "h:2"))
    log.entry(FenceBrokerRecord(1, 10))
    log.entry(UnfenceBrokerRecord(2, 4))
    assert [(e["type"], e["broker"], e["text"]) for e in log.new(0)] == [
        ("broker_registered", 1, "broker 1 registered (broker epoch 10)"),
        ("broker_registered", 2, "broker 2 registered (broker epoch 4)"),
        ("broker_fenced", 1, "broker 1 fenced"),
        ("broker_unfenced", 2, "broker 2 unfenced"),
    ]


def test_a_topic_created_counts_its_partitions_and_leader_changes_none() -> None:
    log = Log()
    log.entry(register(1), register(2), register(3))
    index = log.entry(*news(partitions=3))
    (event,) = log.new(index - 1)
    assert event == {
        "index": index,
        "term": 1,
        "time_ms": 5000 + index,
        "type": "topic_created",
        "topic": "news",
        "partitions": 3,
        "text": "topic news created with 3 partitions",
    }


def test_partitions_added_say_the_new_count_and_a_deleted_topic_its_name() -> None:
    log = Log()
    log.cluster()
    added = log.entry(
        PartitionRecord(NEWS, 2, (2, 3, 1), (2, 3, 1), 2, 0, 0),
        PartitionRecord(NEWS, 3, (3, 1, 2), (3, 1, 2), 3, 0, 0),
    )
    log.entry(RemoveTopicRecord(NEWS))
    assert [(e["type"], e.get("partitions"), e["text"]) for e in log.new(added - 1)] == [
        ("partitions_added", 4, "topic news now has 4 partitions"),
        ("topic_deleted", None, "topic news deleted"),
    ]


def test_a_fenced_leader_gives_its_fence_then_the_leader_change_then_the_shrink() -> None:
    log = Log()
    log.cluster()
    index = log.entry(
        FenceBrokerRecord(1, 10), PartitionChangeRecord(NEWS, 0, leader=2, isr=(2, 3))
    )
    fence, leader, shrink = log.new(index - 1)
    assert fence["type"] == "broker_fenced"
    assert leader == {
        "index": index,
        "term": 1,
        "time_ms": 5000 + index,
        "type": "leader_change",
        "topic": "news",
        "partition": 0,
        "leader": 2,
        "previous_leader": 1,
        "leader_epoch": 1,
        "text": "news-0: leader 1 -> 2 (epoch 1)",
    }
    assert shrink == {
        "index": index,
        "term": 1,
        "time_ms": 5000 + index,
        "type": "isr_shrink",
        "topic": "news",
        "partition": 0,
        "isr": [2, 3],
        "previous_isr": [1, 2, 3],
        "text": "news-0: ISR [1,2,3] -> [2,3]",
    }


def test_the_previous_leader_and_epoch_follow_each_change() -> None:
    log = Log()
    log.cluster()
    start = log.entry(PartitionChangeRecord(NEWS, 1, leader=-1, isr=(1,)))
    log.entry(PartitionChangeRecord(NEWS, 1, leader=1))
    log.entry(PartitionChangeRecord(NEWS, 1, isr=(1, 3)))
    log.entry(PartitionChangeRecord(NEWS, 1, leader=3))
    assert [e["text"] for e in log.new(start - 1)] == [
        "news-1: leader 1 -> none (epoch 1)",
        "news-1: ISR [1,2,3] -> [1]",
        "news-1: leader none -> 1 (epoch 2)",
        "news-1: ISR [1] -> [1,3]",
        "news-1: leader 1 -> 3 (epoch 3)",
    ]
    offline = log.new(start - 1)[0]
    assert offline["leader"] is None and offline["previous_leader"] == 1
    assert log.new(start - 1)[3]["type"] == "isr_expand"
    # Each epoch is the one the state holds.
    assert log.state.topics["news"].partitions[1].leader_epoch == 3


def test_an_isr_that_gains_and_loses_at_once_is_named_by_its_size() -> None:
    log = Log()
    log.cluster()
    log.entry(PartitionChangeRecord(NEWS, 0, isr=(1,)))
    index = log.entry(PartitionChangeRecord(NEWS, 0, isr=(2, 3), leader=2))
    assert [e["type"] for e in log.new(index - 1)] == ["leader_change", "isr_expand"]
    index = log.entry(PartitionChangeRecord(NEWS, 0, isr=(1,), leader=1))
    assert [e["type"] for e in log.new(index - 1)] == ["leader_change", "isr_shrink"]


def test_records_nobody_watches_give_no_event() -> None:
    log = Log()
    log.cluster()
    index = log.entry(
        ConfigRecord("topic", "news", "retention.ms", "1000"),
        NoOpRecord(),
        PartitionChangeRecord(NEWS, 0, replicas=(1, 2, 3)),  # replicas alone: no event
    )
    assert log.new(index - 1) == []
    assert log.events.applied_index == index


def test_every_event_type_is_one_the_tracker_makes() -> None:
    log = Log()
    log.entry(LeaderChangeRecord(1))
    log.cluster()
    log.entry(FenceBrokerRecord(1, 10), PartitionChangeRecord(NEWS, 0, leader=2, isr=(2, 3)))
    log.entry(UnfenceBrokerRecord(1, 10))
    log.entry(PartitionChangeRecord(NEWS, 0, isr=(2, 3, 1)))
    log.entry(PartitionRecord(NEWS, 2, (1, 2, 3), (1, 2, 3), 1, 0, 0))
    log.entry(register(4))
    log.entry(
        PartitionChangeRecord(
            NEWS, 1, replicas=(1, 2, 4, 3), adding_replicas=(4,), removing_replicas=(3,)
        )
    )
    log.entry(RemoveTopicRecord(NEWS))
    log.entry(UnregisterBrokerRecord(4, 10))
    assert {e["type"] for e in log.new(0)} == set(EVENT_TYPES)


def test_a_move_gives_its_start_then_its_end_with_the_leader_and_isr_changes_of_that_entry() -> (
    None
):
    log = Log()
    log.cluster()
    log.entry(register(4))
    start = log.entry(
        PartitionChangeRecord(
            NEWS, 0, replicas=(4, 2, 3, 1), adding_replicas=(4,), removing_replicas=(1,)
        )
    )
    end = log.entry(
        PartitionChangeRecord(
            NEWS,
            0,
            replicas=(4, 2, 3),
            isr=(2, 3, 4),
            leader=2,
            adding_replicas=(),
            removing_replicas=(),
        )
    )
    assert [(e["index"], e["type"], e["text"]) for e in log.new(start - 1)] == [
        (
            start,
            "replicas_change",
            "news-0: replicas [1,2,3] -> [4,2,3,1] (adding [4], removing [1])",
        ),
        (end, "replicas_change", "news-0: replicas [4,2,3,1] -> [4,2,3]"),
        (end, "leader_change", "news-0: leader 1 -> 2 (epoch 1)"),
        (end, "isr_expand", "news-0: ISR [1,2,3] -> [2,3,4]"),
    ]
    first = log.new(start - 1)[0]
    assert (first["replicas"], first["previous_replicas"]) == ([4, 2, 3, 1], [1, 2, 3])
    assert (first["adding_replicas"], first["removing_replicas"]) == ([4], [1])


def test_the_leader_epoch_shown_counts_the_bump_of_a_move_that_dropped_replicas() -> None:
    log = Log()
    log.cluster()
    log.entry(register(4))
    log.entry(
        PartitionChangeRecord(
            NEWS, 0, replicas=(1, 2, 4, 3), adding_replicas=(4,), removing_replicas=(3,)
        )
    )
    log.entry(
        PartitionChangeRecord(
            NEWS, 0, replicas=(1, 2, 4), isr=(1, 2, 4), adding_replicas=(), removing_replicas=()
        )
    )  # epoch 1
    index = log.entry(PartitionChangeRecord(NEWS, 0, leader=2, isr=(2, 4)))
    assert log.state.topics["news"].partitions[0].leader_epoch == 2
    assert [e["text"] for e in log.new(index - 1) if e["type"] == "leader_change"] == [
        "news-0: leader 1 -> 2 (epoch 2)"
    ]


def test_an_unregistered_broker_gives_its_event() -> None:
    log = Log()
    log.entry(register(1), register(4))
    index = log.entry(UnregisterBrokerRecord(4, 10))
    assert [(e["type"], e["broker"], e["text"]) for e in log.new(index - 1)] == [
        ("broker_unregistered", 4, "broker 4 unregistered")
    ]


def test_the_newest_events_are_kept_and_first_index_says_from_where_they_are_whole() -> None:
    log = Log(count_max=4)
    log.cluster()  # 3 registrations, 1 topic: 4 events, entries 1 and 2
    assert log.events.first_index == 1
    third = log.entry(FenceBrokerRecord(1, 10), FenceBrokerRecord(2, 10))
    # Two events in, two out: the first entry's second and third registrations go, so the
    # list is whole from entry 2 on (it kept one event of entry 1).
    assert [e["index"] for e in log.new(0)] == [1, 2, third, third]
    assert log.events.first_index == 2
    log.entry(LeaderChangeRecord(3))
    assert [e["index"] for e in log.new(0)] == [2, third, third, third + 1]
    assert log.events.first_index == 2


@pytest.mark.parametrize(
    ("after", "limit", "indexes"),
    [
        (None, 100, [1, 2, 3, 4, 5]),
        (None, 2, [4, 5]),  # the newest, oldest first
        (2, 100, [3, 4, 5]),
        (2, 2, [3, 4]),  # the first after `after`: a reader pages forward
        (5, 100, []),
        (0, 1, [1]),
    ],
)
def test_events_after_an_index_and_within_a_limit(
    after: int | None, limit: int, indexes: list[int]
) -> None:
    log = Log()
    for node in range(1, 6):
        log.entry(LeaderChangeRecord(node))
    assert [e["index"] for e in log.events.events(after, limit)] == indexes


def test_a_replaced_state_rebuilds_the_partition_map_and_keeps_the_events() -> None:
    log = Log()
    log.cluster()
    kept = log.new(0)
    # A dump from the leader: entries this node never applied one by one moved news-0 to
    # leader 3 with ISR [3]; the tracker learns it from the state, with no event for it.
    ahead = MetadataState.from_snapshot(log.state.to_snapshot())
    ahead.apply_entry(10, [PartitionChangeRecord(NEWS, 0, leader=3, isr=(3,))])
    log.events.state_replaced(10, ahead.copy())
    log.state = ahead
    assert log.new(0) == kept
    assert log.events.first_index == 11 and log.events.applied_index == 10
    index = log.entry(PartitionChangeRecord(NEWS, 0, isr=(3, 1)))
    (expand,) = log.new(index - 1)
    assert expand["previous_isr"] == [3] and expand["isr"] == [3, 1]


def test_an_answer_never_splits_an_entry_so_a_reader_paging_on_misses_nothing() -> None:
    log = Log()
    log.cluster()  # entry 1: three events; entry 2: one
    fence = log.entry(
        FenceBrokerRecord(1, 10), PartitionChangeRecord(NEWS, 0, leader=2, isr=(2, 3))
    )  # three events
    log.entry(LeaderChangeRecord(2))  # one
    # Whole entries until the limit is reached: the last one may take the answer past it.
    assert [e["index"] for e in log.events.events(0, 2)] == [1, 1, 1]
    assert [e["index"] for e in log.events.events(1, 1)] == [2]
    assert [e["index"] for e in log.events.events(1, 2)] == [2, fence, fence, fence]
    assert [e["index"] for e in log.events.events(1, 5)] == [2, fence, fence, fence, fence + 1]
    # The newest likewise, counted back from the newest entry.
    assert [e["index"] for e in log.events.events(None, 1)] == [fence + 1]
    assert [e["index"] for e in log.events.events(None, 2)] == [fence, fence, fence, fence + 1]
    assert [e["type"] for e in log.events.events(None, 2)][:2] == [
        "broker_fenced",
        "leader_change",
    ]
    assert [e["index"] for e in log.events.events(None, 5)] == [2, fence, fence, fence, fence + 1]


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_readers_paging_on_see_every_event_once(limit: int) -> None:
    log = Log()
    log.cluster()
    log.entry(FenceBrokerRecord(1, 10), PartitionChangeRecord(NEWS, 0, leader=2, isr=(2, 3)))
    log.entry(ConfigRecord("topic", "news", "retention.ms", "1000"))  # no event
    log.entry(LeaderChangeRecord(2))
    # A reader that goes on from the last index it got, until an empty answer.
    seen: list[dict[str, Any]] = []
    after = 0
    while page := log.events.events(after, limit):
        seen += page
        after = page[-1]["index"]
    assert seen == log.new(0)
    # One that takes a short answer for "up to date" and jumps to the applied index.
    seen, cursor = [], 0
    while True:
        page = log.events.events(cursor, limit)
        seen += page
        if len(page) < limit:
            cursor = log.events.applied_index
            break
        cursor = page[-1]["index"]
    assert seen == log.new(0) and cursor == log.events.applied_index
