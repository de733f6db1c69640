"""What the quorum keeps for its first entry listener (kraft/applied_entries.py): the start it
replays from always matches the entries that follow it."""

from __future__ import annotations

from kraft.applied_entries import AppliedEntry, EarlyEntries
from kraft.records import MetadataRecord, NoOpRecord, RegisterBrokerRecord
from kraft.state import MetadataState


class EntryLog:
    def __init__(self) -> None:
        self.bases: list[tuple[int, MetadataState]] = []
        self.entries: list[AppliedEntry] = []

    def state_replaced(self, index: int, state: MetadataState) -> None:
        self.bases.append((index, state))

    def entry_applied(self, entry: AppliedEntry) -> None:
        self.entries.append(entry)


def register(broker_id: int) -> RegisterBrokerRecord:
    return RegisterBrokerRecord(broker_id, "inc", 1, "http://127.0.0.1:1", "127.0.0.1:2")


def apply(state: MetadataState, early: EarlyEntries, index: int, record: MetadataRecord) -> None:
    state.apply_entry(index, [record])
    early.applied(AppliedEntry(index, 1, 1000 + index, (record,)), state)


def test_the_first_listener_replays_from_the_empty_start_through_every_entry_kept() -> None:
    state, early = MetadataState(), EarlyEntries(count_max=10)
    for index in (1, 2, 3):
        apply(state, early, index, register(index))
    log = EntryLog()
    early.replay(log)
    assert [index for index, _ in log.bases] == [0]
    assert not log.bases[0][1].brokers
    assert [e.index for e in log.entries] == [1, 2, 3]


def test_a_dump_starts_the_replay_over_from_its_state() -> None:
    state, early = MetadataState(), EarlyEntries(count_max=10)
    apply(state, early, 1, register(1))
    dumped = state.copy()
    early.replaced(1, dumped)
    apply(state, early, 2, register(2))
    log = EntryLog()
    early.replay(log)
    assert log.bases == [(1, dumped)]
    assert [e.index for e in log.entries] == [2]


def test_past_its_bound_the_start_moves_to_the_state_after_the_newest_entry() -> None:
    state, early = MetadataState(), EarlyEntries(count_max=2)
    for index in (1, 2, 3):
        apply(state, early, index, register(index))
    # The third entry did not fit: the replay starts after it, from a state that holds it
    # (not from the empty state, which the kept entries would no longer lead to).
    apply(state, early, 4, NoOpRecord())
    log = EntryLog()
    early.replay(log)
    ((index, base),) = log.bases
    assert index == 3 and sorted(base.brokers) == [1, 2, 3]
    assert [e.index for e in log.entries] == [4]
    # The base is a copy: later entries applied to the live state do not change it.
    state.apply_entry(5, [register(5)])
    assert sorted(base.brokers) == [1, 2, 3]
