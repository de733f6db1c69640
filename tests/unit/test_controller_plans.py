"""The controller's plans: Kafka's placement and validation, before any record is written."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest

from client.protocol import ApiError
from kraft.records import (
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from kraft.state import MetadataState
from server import controller


def state_with_brokers(*ids: int) -> MetadataState:
    state = MetadataState()
    records: list[MetadataRecord] = []
    for i in ids:
        records.append(
            RegisterBrokerRecord(
                i, f"inc{i}", 0, f"http://127.0.0.1:{9000 + i}", f"127.0.0.1:{9100 + i}"
            )
        )
        records.append(UnfenceBrokerRecord(i, 0))
    state.apply_entry(1, records)
    return state


def create(
    state: MetadataState,
    name: object = "news",
    partitions: object = None,
    factor: object = None,
    configs: object = None,
) -> list[MetadataRecord]:
    return controller.plan_create_topic(
        state,
        name,
        partitions,
        factor,
        configs,
        default_partitions=1,
        default_replication_factor=1,
        rng=random.Random(7),
    )


def test_kafka_placement_spreads_leaders_and_replicas_evenly() -> None:
    # Kafka's tables are checked in test_replica_assignment.py; here, the controller's use.
    records = create(state_with_brokers(1, 2, 3), partitions=6, factor=3)
    assignment = [r.replicas for r in records if isinstance(r, PartitionRecord)]
    leaders = Counter(replicas[0] for replicas in assignment)
    assert leaders == {1: 2, 2: 2, 3: 2}
    for replicas in assignment:
        assert sorted(replicas) == [1, 2, 3]


def test_created_topic_applies_cleanly_with_leader_first_replica() -> None:
    state = state_with_brokers(1)
    records = create(state, partitions=3, configs={"retention.ms": 60000})
    state.apply_entry(2, records)
    topic = state.topics["news"]
    assert sorted(topic.partitions) == [0, 1, 2]
    assert all(p.leader == 1 and p.isr == (1,) for p in topic.partitions.values())
    assert topic.configs == {"retention.ms": "60000"}


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": "bad name"}, 40002),
        ({"name": "."}, 40002),
        ({"name": "x" * 250}, 40002),
        ({"partitions": 0}, 40004),
        ({"factor": 2}, 40003),
        ({"configs": {"retention.ms": "soon"}}, 40005),
        ({"configs": {"no.such.config": "1"}}, 40005),
    ],
)
def test_bad_create_requests_are_refused_before_any_record(
    kwargs: dict[str, object], code: int
) -> None:
    with pytest.raises(ApiError) as caught:
        create(state_with_brokers(1), **kwargs)
    assert caught.value.code == code


def test_replication_factor_above_live_brokers_uses_kafkas_message() -> None:
    with pytest.raises(ApiError) as caught:
        create(state_with_brokers(1), factor=2)
    assert caught.value.message == "Replication factor: 2 larger than available brokers: 1."


def test_existing_topic_is_refused() -> None:
    state = state_with_brokers(1)
    state.apply_entry(2, create(state))
    with pytest.raises(ApiError) as caught:
        create(state)
    assert caught.value.code == 40901


def test_adding_partitions_keeps_the_replication_factor_and_only_grows() -> None:
    state = state_with_brokers(1, 2, 3)
    state.apply_entry(2, create(state, partitions=2, factor=2))
    records = controller.plan_add_partitions(state, "news", 5, rng=random.Random(3))
    state.apply_entry(3, records)
    assert sorted(state.topics["news"].partitions) == [0, 1, 2, 3, 4]
    assert all(len(p.replicas) == 2 for p in state.topics["news"].partitions.values())
    with pytest.raises(ApiError) as caught:
        controller.plan_add_partitions(state, "news", 5, rng=random.Random(3))
    assert caught.value.code == 40004


def test_unknown_topic_is_reported_for_delete_and_configs() -> None:
    state = state_with_brokers(1)
    plans: tuple[Callable[[], object], ...] = (
        lambda: controller.plan_delete_topic(state, "nope"),
        lambda: controller.plan_alter_configs(state, "nope", {"retention.ms": "1"}),
    )
    for plan in plans:
        with pytest.raises(ApiError) as caught:
            plan()
        assert caught.value.code == 40401


def three_brokers_with_topic(partitions: int = 3) -> MetadataState:
    state = state_with_brokers(1, 2, 3)
    state.apply_entry(2, create(state, partitions=partitions, factor=3))
    return state


def test_fencing_a_broker_moves_its_leaderships_and_takes_it_out_of_every_isr() -> None:
    state = three_brokers_with_topic()
    records = controller.plan_fence_broker(state, 2)
    state.apply_entry(3, records)
    assert state.brokers[2].fenced
    for p in state.topics["news"].partitions.values():
        assert 2 not in p.isr and p.leader != 2 and p.leader in p.isr
    moved = [p for p in state.topics["news"].partitions.values() if p.leader_epoch == 1]
    assert len(moved) == 1, "only the partition broker 2 led changes leader"


def test_the_last_isr_member_stays_and_the_partition_has_no_leader() -> None:
    state = three_brokers_with_topic(partitions=1)
    state.apply_entry(3, controller.plan_fence_broker(state, 1))
    state.apply_entry(4, controller.plan_fence_broker(state, 2))
    state.apply_entry(5, controller.plan_fence_broker(state, 3))
    (p,) = state.topics["news"].partitions.values()
    assert p.isr == (3,) and p.leader == -1, "no unclean election: the last ISR member waits"
    state.apply_entry(6, controller.plan_unfence_broker(state, 3))
    assert state.topics["news"].partitions[0].leader == 3


def test_an_unfenced_broker_outside_the_isr_does_not_become_leader() -> None:
    state = three_brokers_with_topic(partitions=1)
    for index, broker in enumerate((1, 2, 3), start=3):
        state.apply_entry(index, controller.plan_fence_broker(state, broker))
    state.apply_entry(6, controller.plan_unfence_broker(state, 1))
    assert state.topics["news"].partitions[0].leader == -1
    assert controller.plan_elect_leaderless(state) == []


def test_fencing_is_idempotent_and_unknown_brokers_plan_nothing() -> None:
    state = three_brokers_with_topic()
    state.apply_entry(3, controller.plan_fence_broker(state, 2))
    assert controller.plan_fence_broker(state, 2) == []
    assert controller.plan_fence_broker(state, 9) == []
    assert controller.plan_unfence_broker(state, 1) == []


def test_a_live_duplicate_registration_is_refused_but_a_dead_ones_is_taken_over() -> None:
    state = state_with_brokers(1)
    with pytest.raises(ApiError) as caught:
        controller.plan_register_broker(
            state, 1, "other", "http://127.0.0.1:1", "127.0.0.1:2", session_alive=True
        )
    assert caught.value.name == "DUPLICATE_BROKER_REGISTRATION"
    (record,) = controller.plan_register_broker(
        state, 1, "other", "http://127.0.0.1:1", "127.0.0.1:2", session_alive=False
    )
    state.apply_entry(2, [record])
    assert state.brokers[1].epoch == 1 and state.brokers[1].fenced


def test_producer_id_blocks_never_overlap_and_need_the_current_broker_epoch() -> None:
    state = state_with_brokers(1, 2)
    blocks = []
    for index, broker in enumerate((1, 2, 1), start=2):
        (record,) = controller.plan_producer_id_block(state, broker, 0, 1000)
        assert isinstance(record, ProducerIdsRecord)
        state.apply_entry(index, [record])
        blocks.append((record.next_producer_id - 1000, record.next_producer_id))
    assert blocks == [(0, 1000), (1000, 2000), (2000, 3000)]
    with pytest.raises(ApiError) as caught:
        controller.plan_producer_id_block(state, 1, 7, 1000)
    assert caught.value.name == "STALE_BROKER_EPOCH"


def test_isr_changes_are_planned_together_and_a_stale_leader_is_refused_alone() -> None:
    state = three_brokers_with_topic(partitions=2)
    topic_id = state.topics["news"].topic_id
    parts = state.topics["news"].partitions
    leader0, leader1 = parts[0].leader, parts[1].leader
    records, refused = controller.plan_alter_isrs(
        state,
        leader0,
        [
            (topic_id, 0, 0, (leader0,), 0),  # this leader shrinks its ISR to itself
            (topic_id, 1, 0, (leader1,), 0),  # a partition it does not lead: refused
        ],
    )
    assert list(refused) == ([] if leader1 == leader0 else [1])
    state.apply_entry(3, records)
    assert state.topics["news"].partitions[0].isr == (leader0,)
    with pytest.raises(ApiError) as caught:
        controller.plan_alter_isr(state, topic_id, 0, leader0, 0, (1, 2, 9))
    assert caught.value.name == "INVALID_REQUEST"


def test_an_isr_change_asked_on_an_older_partition_epoch_is_refused() -> None:
    """A retried request whose first copy was applied (its answer lost), or one made before
    another change: applying it would change the ISR behind the leader's back."""
    state = three_brokers_with_topic(partitions=1)
    topic_id = state.topics["news"].topic_id
    p = state.topics["news"].partitions[0]
    (record,) = controller.plan_alter_isr(
        state, topic_id, 0, p.leader, 0, (p.leader,), p.partition_epoch
    )
    state.apply_entry(3, [record])
    with pytest.raises(ApiError) as caught:
        controller.plan_alter_isr(state, topic_id, 0, p.leader, 0, p.isr, p.partition_epoch)
    assert caught.value.name == "INVALID_UPDATE_VERSION"
    now = state.topics["news"].partitions[0]
    assert controller.plan_alter_isr(state, topic_id, 0, p.leader, 0, p.isr, now.partition_epoch), (
        "asked again on the state that is there, it is made"
    )


# -- preferred-leader election -------------------------------------------------------------------


def shaped(
    *partitions: tuple[tuple[int, ...], int, tuple[int, ...]], fenced: int = 0
) -> MetadataState:
    """Brokers 1-3 (``fenced`` fenced, if given) and topic "news" whose partition n has the
    n-th (replicas, leader, isr)."""
    state = state_with_brokers(1, 2, 3)
    records: list[MetadataRecord] = [TopicRecord(name="news", topic_id=TOPIC_ID)]
    for n, (replicas, leader, isr) in enumerate(partitions):
        records.append(PartitionRecord(TOPIC_ID, n, replicas, isr, leader, 0, 0))
    if fenced:
        records.append(FenceBrokerRecord(fenced, 0))
    state.apply_entry(2, records)
    return state


TOPIC_ID = "8s7fm2nYQ7Kl1wT0b7dK3A"
E, A, N = controller.ELECTED, controller.ALREADY_PREFERRED, controller.PREFERRED_NOT_AVAILABLE


@pytest.mark.parametrize(
    ("replicas", "leader", "isr", "fenced", "outcome", "leader_after"),
    [
        ((1, 2, 3), 2, (1, 2, 3), 0, E, 1),  # led elsewhere, preferred live and in sync
        ((1, 2, 3), 1, (1, 2, 3), 0, A, 1),  # already led by its preferred replica
        ((1, 2, 3), 2, (2, 3), 0, N, 2),  # preferred out of the ISR: not caught up
        ((1, 2, 3), 2, (1, 2, 3), 1, N, 2),  # preferred fenced (its session ended)
        ((1, 2, 3), -1, (2,), 0, N, -1),  # no leader, preferred out of the ISR
        ((3, 1), 1, (1, 3), 0, E, 3),  # the first replica is preferred, not the lowest id
    ],
)
def test_a_preferred_election_moves_the_leader_only_to_a_live_in_sync_first_replica(
    replicas: tuple[int, ...],
    leader: int,
    isr: tuple[int, ...],
    fenced: int,
    outcome: str,
    leader_after: int,
) -> None:
    state = shaped((replicas, leader, isr), fenced=fenced)
    records, outcomes = controller.plan_preferred_elections(state, [("news", 0)])
    assert [(o.topic, o.partition, o.outcome, o.leader) for o in outcomes] == [
        ("news", 0, outcome, leader_after)
    ]
    assert len(records) == (outcome == E)
    state.apply_entry(3, records)
    p = state.topics["news"].partitions[0]
    assert p.leader == leader_after
    assert p.leader_epoch == (1 if outcome == E else 0), "a leader change bumps the epoch"
    assert p.isr == isr, "an election leaves the ISR alone"


def test_a_preferred_election_of_all_partitions_reports_each_in_order() -> None:
    state = shaped(((1, 2), 2, (1, 2)), ((2, 1), 2, (1, 2)), ((3, 1), 1, (1,)))
    records, outcomes = controller.plan_preferred_elections(state, None)
    assert [(o.partition, o.outcome) for o in outcomes] == [(0, E), (1, A), (2, N)]
    assert records == [PartitionChangeRecord(TOPIC_ID, 0, leader=1)]


@pytest.mark.parametrize(
    ("asked", "name"),
    [
        ([("nope", 0)], "UNKNOWN_TOPIC_OR_PARTITION"),
        ([("news", 0), ("news", 7)], "UNKNOWN_TOPIC_OR_PARTITION"),
        ([("news", 0), ("news", 0)], "INVALID_REQUEST"),
    ],
)
def test_a_preferred_election_naming_a_missing_or_repeated_partition_writes_nothing(
    asked: list[tuple[str, int]], name: str
) -> None:
    state = shaped(((1, 2), 2, (1, 2)))
    with pytest.raises(ApiError) as caught:
        controller.plan_preferred_elections(state, asked)
    assert caught.value.name == name


@pytest.mark.parametrize(
    ("led_elsewhere", "of", "percentage", "moved"),
    [
        (1, 10, 10, 0),  # 10 %: not above the limit (Kafka's ratio must exceed it)
        (2, 10, 10, 2),  # 20 % > 10 %: every partition led elsewhere moves back
        (1, 1, 10, 1),
        (1, 2, 50, 0),
        (1, 2, 49, 1),
        (0, 5, 0, 0),  # nothing to move, whatever the limit
    ],
)
def test_the_rebalance_moves_a_brokers_partitions_back_only_above_its_imbalance_percentage(
    led_elsewhere: int, of: int, percentage: int, moved: int
) -> None:
    partitions = [((1, 2), 2 if n < led_elsewhere else 1, (1, 2)) for n in range(of)]
    state = shaped(*partitions)
    records, outcomes = controller.plan_leader_rebalance(state, percentage)
    assert len(records) == moved
    assert all(o.outcome == E and o.leader == 1 for o in outcomes)


def test_the_rebalance_counts_each_preferred_broker_apart_and_skips_unavailable_ones() -> None:
    state = shaped(
        ((1, 2, 3), 2, (1, 2, 3)),  # broker 1: led by 2, 1 in sync -> moves
        ((2, 1, 3), 1, (1, 3)),  # broker 2: out of the ISR -> tried, not available
        ((3, 1, 2), 3, (1, 2, 3)),  # broker 3: balanced
        ((1, 3, 2), -1, (3,)),  # no leader: left to plan_elect_leaderless
    )
    records, outcomes = controller.plan_leader_rebalance(state, 10)
    assert [(o.partition, o.outcome) for o in outcomes] == [(0, E), (1, N)]
    state.apply_entry(3, records)
    assert [p.leader for _, p in sorted(state.topics["news"].partitions.items())] == [1, 1, 3, -1]
    assert controller.plan_leader_rebalance(state, 10)[0] == [], "balanced now: nothing more"


def test_an_alter_conflicting_with_a_lag_the_topic_keeps_is_refused_in_kafkas_words() -> None:
    state = state_with_brokers(1)
    state.apply_entry(2, create(state, "t", configs={"max.compaction.lag.ms": "4000"}))
    with pytest.raises(ApiError) as caught:
        controller.plan_alter_configs(state, "t", {"min.compaction.lag.ms": "5000"})
    assert caught.value.message == (
        "conflict topic config setting min.compaction.lag.ms (5000) > max.compaction.lag.ms (4000)"
    )
    assert controller.plan_alter_configs(
        state, "t", {"min.compaction.lag.ms": "5000", "max.compaction.lag.ms": None}
    )
