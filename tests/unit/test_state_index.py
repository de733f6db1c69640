"""The controller's index in the metadata state (leaderless partitions, partitions led by
another than their preferred replica, partitions preferring each broker) always equals what a
scan of every partition finds: after random entries, legal or refused, after a snapshot round
trip, and in a copy that later entries do not touch. And the plans that read it decide what
they decided when they scanned."""

from __future__ import annotations

import random

import pytest

from kraft.errors import IllegalRecordError
from kraft.records import (
    NO_LEADER,
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from kraft.state import MetadataState, PartitionKey
from server import controller
from storage.ids import random_uuid

BROKERS = (1, 2, 3, 4)
ENTRIES = 300


def scanned(state: MetadataState) -> tuple[set[PartitionKey], set[PartitionKey], dict[int, int]]:
    """The index as a full scan computes it."""
    leaderless: set[PartitionKey] = set()
    elsewhere: set[PartitionKey] = set()
    counts: dict[int, int] = {}
    for topic in state.topics.values():
        for p in topic.partitions.values():
            key = (p.topic_id, p.partition)
            counts[p.replicas[0]] = counts.get(p.replicas[0], 0) + 1
            if p.leader == NO_LEADER:
                leaderless.add(key)
            elif p.leader != p.replicas[0]:
                elsewhere.add(key)
    return leaderless, elsewhere, counts


def indexed(state: MetadataState) -> tuple[set[PartitionKey], set[PartitionKey], dict[int, int]]:
    return set(state.leaderless()), set(state.led_elsewhere()), dict(state.preferred_counts())


def scan_elect_leaderless(state: MetadataState) -> list[MetadataRecord]:
    """plan_elect_leaderless as it was when it scanned every partition."""
    live = {b.id for b in state.brokers.values() if not b.fenced}
    records: list[MetadataRecord] = []
    for topic in state.topics.values():
        for p in topic.partitions.values():
            if p.leader == NO_LEADER:
                leader = next((r for r in p.replicas if r in p.isr and r in live), NO_LEADER)
                if leader != NO_LEADER:
                    records.append(PartitionChangeRecord(p.topic_id, p.partition, leader=leader))
    return records


def scan_imbalance(state: MetadataState) -> dict[int, tuple[int, list[tuple[str, int]]]]:
    """imbalanced_partitions as it was when it scanned every partition."""
    out: dict[int, tuple[int, list[tuple[str, int]]]] = {}
    for name in sorted(state.topics):
        for index, p in sorted(state.topics[name].partitions.items()):
            preferred = p.replicas[0]
            count, elsewhere = out.get(preferred, (0, []))
            if p.leader not in (NO_LEADER, preferred):
                elsewhere.append((name, index))
            out[preferred] = (count + 1, elsewhere)
    return out


def change_key(record: MetadataRecord) -> PartitionKey:
    assert isinstance(record, PartitionChangeRecord)
    return record.topic_id, record.partition


class Scripter:
    """Random records against a state: mostly legal, sometimes not (the state refuses
    those whole, and its index must not move)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.epochs: dict[int, int] = {}
        self.names = 0

    def replicas(self) -> tuple[int, ...]:
        return tuple(self.rng.sample(BROKERS, self.rng.randint(1, 3)))

    def partition_shape(self, replicas: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
        isr = tuple(r for r in replicas if self.rng.random() < 0.7) or replicas[:1]
        leader = self.rng.choice([*isr, NO_LEADER])
        return isr, leader

    def entry(self, state: MetadataState) -> list[MetadataRecord]:
        """One to four records, each scripted against a draft with the ones before applied
        (a refused record leaves the draft as it was; the state refuses its whole entry)."""
        draft = state.copy()
        records: list[MetadataRecord] = []
        for _ in range(self.rng.randint(1, 4)):
            record = self.record(draft)
            records.append(record)
            try:
                draft.apply(record)
            except IllegalRecordError:
                pass
        return records

    def record(self, state: MetadataState) -> MetadataRecord:
        rng = self.rng
        topics = list(state.topics.values())
        roll = rng.random()
        if roll < 0.08 or not state.brokers:
            broker = rng.choice(BROKERS)
            epoch = self.epochs.get(broker, -1) + 1
            self.epochs[broker] = epoch
            return RegisterBrokerRecord(
                broker, f"inc-{broker}-{epoch}", epoch, "http://h:1", "h:2", rng.random() < 0.5
            )
        if roll < 0.2:
            registered = rng.choice(list(state.brokers.values()))
            kind = FenceBrokerRecord if rng.random() < 0.5 else UnfenceBrokerRecord
            return kind(registered.id, registered.epoch)
        if roll < 0.3 or not topics:
            self.names += 1
            return TopicRecord(f"t{self.names % 7}", random_uuid())
        topic = rng.choice(topics)
        if roll < 0.6:
            replicas = self.replicas()
            isr, leader = self.partition_shape(replicas)
            number = len(topic.partitions) if rng.random() < 0.9 else rng.randint(0, 5)
            return PartitionRecord(topic.topic_id, number, replicas, isr, leader, 0, 0)
        if roll < 0.97 and topic.partitions:
            p = rng.choice(list(topic.partitions.values()))
            replicas = self.replicas() if rng.random() < 0.3 else p.replicas
            isr, leader = self.partition_shape(replicas)
            return PartitionChangeRecord(
                p.topic_id,
                p.partition,
                leader=leader if rng.random() < 0.8 else None,
                isr=isr,
                replicas=None if replicas == p.replicas else replicas,
            )
        return RemoveTopicRecord(topic.topic_id)


@pytest.mark.parametrize("seed", range(12))
def test_the_index_equals_a_full_scan_after_every_entry(seed: int) -> None:
    rng = random.Random(seed)
    script = Scripter(rng)
    state = MetadataState()
    applied = refused = most_partitions = 0
    for index in range(1, ENTRIES + 1):
        before = indexed(state)
        kept = state.copy()
        # Entries of one to four records; a refused record refuses its whole entry.
        records = script.entry(state)
        try:
            state.apply_entry(index, records)
            applied += 1
        except IllegalRecordError:
            refused += 1
            assert indexed(state) == before, "a refused entry moved the index"
        assert indexed(state) == scanned(state)
        assert indexed(kept) == before == scanned(kept), "an entry changed an earlier copy"
        assert controller.plan_elect_leaderless(state) == sorted(
            scan_elect_leaderless(state), key=change_key
        )
        assert controller.imbalanced_partitions(state) == scan_imbalance(state)
        most_partitions = max(
            most_partitions, sum(len(t.partitions) for t in state.topics.values())
        )
    assert applied > ENTRIES // 4 and refused > 0, (applied, refused)
    assert most_partitions >= 5, "the script made partitions"
    loaded = MetadataState.from_snapshot(state.to_snapshot())
    assert indexed(loaded) == scanned(loaded) == indexed(state)


def test_a_topic_of_many_partitions_is_built_in_one_dictionary() -> None:
    """A draft fills the partitions dictionary it made in place: the adopted state has all
    the partitions, and an earlier copy sees none of them."""
    state = MetadataState()
    state.apply_entry(1, [RegisterBrokerRecord(1, "i", 0, "http://h:1", "h:2", False)])
    before = state.copy()
    topic_id = random_uuid()
    records: list[MetadataRecord] = [TopicRecord("big", topic_id)]
    records += [PartitionRecord(topic_id, n, (1,), (1,), 1, 0, 0) for n in range(5000)]
    state.apply_entry(2, records)
    assert len(state.topics["big"].partitions) == 5000
    assert state.preferred_counts() == {1: 5000}
    assert "big" not in before.topics and before.preferred_counts() == {}
    after = state.copy()
    state.apply_entry(3, [PartitionChangeRecord(topic_id, 7, leader=NO_LEADER)])
    assert after.topics["big"].partitions[7].leader == 1, "a later entry changed a copy"
    assert state.leaderless() == {(topic_id, 7)} and after.leaderless() == frozenset()
