"""The metadata state machine: record scripts and the state they must leave."""

from __future__ import annotations

import pytest

from kraft.errors import IllegalRecordError, MetadataSnapshotError
from kraft.records import (
    ConfigRecord,
    FenceBrokerRecord,
    LeaderChangeRecord,
    MetadataRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from kraft.state import MetadataState, PartitionState

T1 = "x5Ujx2PtQ1C2rkC8-XNMZA"
T2 = "Q2rkC8-XNMZAx5Ujx2PtQA"


def register(broker_id: int, epoch: int = 10, fenced: bool = False) -> RegisterBrokerRecord:
    return RegisterBrokerRecord(
        broker_id,
        f"inc-{broker_id}-{epoch}",
        epoch,
        f"http://127.0.0.1:{9000 + broker_id}",
        f"127.0.0.1:{9100 + broker_id}",
        fenced=fenced,
    )


def cluster() -> list[MetadataRecord]:
    """Three unfenced brokers and topic news (T1) with 2 partitions of 3 replicas."""
    return [
        register(1),
        register(2),
        register(3),
        TopicRecord("news", T1),
        PartitionRecord(T1, 0, (1, 2, 3), (1, 2, 3), 1, 0, 0),
        PartitionRecord(T1, 1, (2, 3, 1), (2, 3, 1), 2, 0, 0),
    ]


def state_of(*records: MetadataRecord) -> MetadataState:
    state = MetadataState()
    state.apply_entry(1, cluster())
    for index, record in enumerate(records, start=2):
        state.apply_entry(index, [record])
    return state


def partition(state: MetadataState, number: int = 0) -> PartitionState:
    return state.topics["news"].partitions[number]


def test_create_topic_with_partitions() -> None:
    state = state_of()
    topic = state.topics["news"]
    assert topic.topic_id == T1 and state.topic_by_id(T1) is topic
    assert sorted(topic.partitions) == [0, 1]
    assert partition(state, 1) == PartitionState(T1, 1, (2, 3, 1), (2, 3, 1), 2, 0, 0)
    assert state.applied_index == 1
    assert sorted(state.brokers) == [1, 2, 3]


def test_isr_change_bumps_partition_epoch_but_not_leader_epoch() -> None:
    state = state_of(PartitionChangeRecord(T1, 0, isr=(1, 3)))
    assert partition(state) == PartitionState(T1, 0, (1, 2, 3), (1, 3), 1, 0, 1)


def test_leader_change_bumps_leader_epoch_by_one() -> None:
    state = state_of(
        PartitionChangeRecord(T1, 0, leader=2),
        PartitionChangeRecord(T1, 0, leader=-1),
        PartitionChangeRecord(T1, 0, leader=3, isr=(3,)),
    )
    assert partition(state) == PartitionState(T1, 0, (1, 2, 3), (3,), 3, 3, 3)


def test_naming_the_current_leader_is_not_a_leader_change() -> None:
    state = state_of(PartitionChangeRecord(T1, 0, leader=1))
    assert (partition(state).leader_epoch, partition(state).partition_epoch) == (0, 1)


def test_replica_reassignment_keeps_isr_within_replicas() -> None:
    state = state_of(PartitionChangeRecord(T1, 0, replicas=(1, 2), isr=(1, 2)))
    assert partition(state).replicas == (1, 2)


@pytest.mark.parametrize(
    "record, rule",
    [
        (PartitionChangeRecord(T1, 0, leader=4), "neither -1 nor in the isr"),
        (PartitionChangeRecord(T1, 0, isr=(2, 3)), "leader 1 would be neither -1 nor in the isr"),
        (PartitionChangeRecord(T1, 0, replicas=(2, 3)), "isr [1, 2, 3] would not be within"),
        (PartitionChangeRecord(T1, 0, replicas=(1, 2, 3, 9)), "[9] are not registered"),
        (PartitionChangeRecord(T1, 5, leader=-1), "partition 5 does not exist"),
        (PartitionChangeRecord(T2, 0, leader=-1), "no topic has the id"),
        (PartitionRecord(T1, 3, (1,), (1,), 1, 0, 0), "next partition number is 2"),
        (PartitionRecord(T1, 1, (1,), (1,), 1, 0, 0), "next partition number is 2"),
        (TopicRecord("news", T2), "a topic with this name exists"),
        (TopicRecord("other", T1), "a topic with this id exists"),
        (register(1, epoch=10), "a re-registration needs a larger broker epoch"),
        (FenceBrokerRecord(1, 9), "broker epoch 9 is not the current one"),
        (FenceBrokerRecord(7, 10), "broker 7 is unknown"),
        (UnfenceBrokerRecord(1, 10), "already unfenced"),
        (ConfigRecord("topic", "nope", "retention.ms", "1"), "no topic is named nope"),
        (ProducerIdsRecord(1, 10, 0), "only grows"),
        (ProducerIdsRecord(1, 11, 1000), "not the current one"),
        (RemoveTopicRecord(T2), "no topic has the id"),
    ],
)
def test_illegal_record_raises_naming_state_and_rule_and_changes_nothing(
    record: MetadataRecord, rule: str
) -> None:
    state = state_of()
    before = state.digest()
    with pytest.raises(IllegalRecordError) as info:
        state.apply_entry(2, [record])
    assert rule in info.value.rule
    assert info.value.record == record
    assert repr(record) in str(info.value)
    assert state.digest() == before and state.applied_index == 1


def test_error_names_the_partition_state_it_met() -> None:
    state = state_of()
    with pytest.raises(IllegalRecordError) as info:
        state.apply(PartitionChangeRecord(T1, 0, leader=4))
    assert info.value.state == (
        "partition news-0 (replicas [1, 2, 3], isr [1, 2, 3], leader 1, leader epoch 0, "
        "partition epoch 0)"
    )


def test_an_entry_applies_whole_or_not_at_all() -> None:
    state = state_of()
    before = state.digest()
    with pytest.raises(IllegalRecordError):
        state.apply_entry(
            2,
            [
                TopicRecord("logs", T2),
                PartitionRecord(T2, 0, (1,), (1,), 1, 0, 0),
                PartitionRecord(T2, 2, (1,), (1,), 1, 0, 0),  # not dense: the entry fails
            ],
        )
    assert "logs" not in state.topics
    assert state.topic_by_id(T2) is None
    assert state.digest() == before


def test_fenced_broker_cannot_become_leader() -> None:
    state = state_of(FenceBrokerRecord(2, 10))
    assert state.brokers[2].fenced
    with pytest.raises(IllegalRecordError, match="new leader 2 is fenced"):
        state.apply(PartitionChangeRecord(T1, 0, leader=2))
    state.apply(UnfenceBrokerRecord(2, 10))
    state.apply(PartitionChangeRecord(T1, 0, leader=2))
    assert partition(state).leader == 2


def test_reregistration_with_larger_epoch_replaces_the_broker_fenced() -> None:
    state = state_of(register(2, epoch=11, fenced=True))
    broker = state.brokers[2]
    assert (broker.epoch, broker.fenced, broker.incarnation_id) == (11, True, "inc-2-11")


def test_delete_topic_removes_partitions_and_configs_and_frees_the_name() -> None:
    state = state_of(
        ConfigRecord("topic", "news", "retention.ms", "1000"),
        RemoveTopicRecord(T1),
    )
    assert state.topics == {} and state.topic_by_id(T1) is None
    state.apply(TopicRecord("news", T2))
    assert state.topics["news"].configs == {}


def test_configs_set_replace_and_delete() -> None:
    state = state_of(
        ConfigRecord("topic", "news", "retention.ms", "1000"),
        ConfigRecord("topic", "news", "retention.ms", "2000"),
        ConfigRecord("topic", "news", "cleanup.policy", "delete"),
        ConfigRecord("topic", "news", "cleanup.policy", None),
        ConfigRecord("topic", "news", "never.set", None),
        ConfigRecord("broker", "", "min.insync.replicas", "2"),
        ConfigRecord("broker", "1", "x", "y"),
        ConfigRecord("broker", "1", "x", None),
    )
    assert state.topics["news"].configs == {"retention.ms": "2000"}
    assert state.broker_configs == {"": {"min.insync.replicas": "2"}}


def test_producer_id_blocks_only_grow() -> None:
    state = state_of(ProducerIdsRecord(1, 10, 1000), ProducerIdsRecord(2, 10, 2000))
    assert state.next_producer_id == 2000


def test_apply_entry_requires_a_growing_index() -> None:
    state = state_of()
    with pytest.raises(ValueError):
        state.apply_entry(1, [NoOpRecord()])
    state.apply_entry(5, [NoOpRecord()])
    assert state.applied_index == 5


def test_a_leader_change_record_changes_nothing_but_the_applied_index() -> None:
    before = state_of()
    after = state_of(LeaderChangeRecord(2))
    assert after.applied_index == 2
    # The snapshot, and so the digest, hold nothing of it: a node that took the state from a
    # dump agrees with one that applied the record.
    plain = MetadataState.from_snapshot(before.to_snapshot())
    plain.apply_entry(2, [NoOpRecord()])
    assert after.to_snapshot() == plain.to_snapshot()
    assert after.digest() == plain.digest()


def test_digest_is_equal_for_equal_histories_and_differs_otherwise() -> None:
    a = state_of(PartitionChangeRecord(T1, 0, isr=(1, 2)))
    b = state_of(PartitionChangeRecord(T1, 0, isr=(1, 2)))
    c = state_of(PartitionChangeRecord(T1, 0, isr=(1, 3)))
    assert a.digest() == b.digest() != c.digest()
    assert len(a.digest()) == 64


def test_snapshot_round_trip_keeps_everything() -> None:
    state = state_of(
        FenceBrokerRecord(3, 10),
        ConfigRecord("topic", "news", "retention.ms", "1000"),
        ConfigRecord("broker", "", "x", "y"),
        ProducerIdsRecord(1, 10, 1000),
        PartitionChangeRecord(T1, 1, leader=-1, isr=(1,)),
    )
    restored = MetadataState.from_snapshot(state.to_snapshot())
    assert restored.digest() == state.digest()
    assert restored == state
    assert restored.topics["news"].partitions[1] == partition(state, 1)
    assert restored.brokers == state.brokers
    assert restored.applied_index == state.applied_index == 6
    # The restored state goes on applying records.
    restored.apply_entry(7, [PartitionChangeRecord(T1, 1, leader=1)])
    assert restored.topics["news"].partitions[1].leader_epoch == 2  # -1 then 1: two changes


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.replace(b'"v":1', b'"v":2'),
        lambda s: s.replace(b'"partition":1', b'"partition":2'),
        lambda s: s.replace(b'"leader":2', b'"leader":7'),
        lambda s: s.replace(b'"applied_index":1', b'"applied_index":-1'),
        lambda s: s.replace(b'"fenced":false', b'"fenced":0', 1),
        lambda s: s[:-1],
        lambda s: s.replace(b'"topics":[', b'"topics":[1,'),
    ],
)
def test_from_snapshot_refuses_broken_snapshots(mutate: object) -> None:
    data = state_of().to_snapshot()
    broken = mutate(data)  # type: ignore[operator]
    assert broken != data
    with pytest.raises(MetadataSnapshotError):
        MetadataState.from_snapshot(broken)


def test_copy_is_a_snapshot_untouched_by_later_entries() -> None:
    state = state_of()
    view = state.copy()
    topics_before = state.topics
    state.apply_entry(2, [PartitionChangeRecord(T1, 0, isr=(1,)), RemoveTopicRecord(T1)])
    assert view.topics["news"].partitions[0].isr == (1, 2, 3)
    assert "news" in topics_before  # a mapping handed out earlier does not change either
    assert "news" not in state.topics


def test_read_side_mappings_are_read_only() -> None:
    state = state_of()
    with pytest.raises(TypeError):
        state.topics["x"] = state.topics["news"]  # type: ignore[index]
    with pytest.raises(TypeError):
        state.topics["news"].partitions[0] = partition(state)  # type: ignore[index]
