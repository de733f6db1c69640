"""The idempotent producer's rules, as Kafka's ProducerStateManager applies them per partition."""

from __future__ import annotations

import pytest

from server.producer_state import (
    APPEND,
    BATCHES_PER_PRODUCER,
    SEQUENCE_MAX,
    Duplicate,
    InvalidProducerEpoch,
    OutOfOrderSequence,
    ProducerStateTable,
    last_sequence_of,
)
from storage.batch import NewRecord, build_batch, iter_batches
from storage.producer_snapshot import ProducerSnapshotEntry, decode, encode

PID = 4000


class Writer:
    """A leader's produce path in miniature: check, append at the log end, record."""

    def __init__(self, table: ProducerStateTable | None = None) -> None:
        self.table = table if table is not None else ProducerStateTable()
        self.log_end = 0
        self.log = bytearray()

    def produce(self, pid: int, epoch: int, seq: int, count: int = 1) -> object:
        decision = self.table.check(pid, epoch, seq, count)
        if decision == APPEND:
            first = self.log_end
            self.log_end += count
            self.log += build_batch(
                [NewRecord(None, b"v", 0)] * count,
                base_offset=first,
                producer_id=pid,
                producer_epoch=epoch,
                base_sequence=seq,
            )
            self.table.record(
                pid, epoch, seq, last_sequence_of(seq, count), first, self.log_end - 1
            )
        return decision

    def headers(self) -> list:  # type: ignore[type-arg]
        return [h for _, h in iter_batches(bytes(self.log))]


def test_new_producer_must_start_at_sequence_zero() -> None:
    table = ProducerStateTable()
    assert table.check(PID, 0, 5, 1) == OutOfOrderSequence(0, 5, 0)
    assert table.check(PID, 0, 0, 1) == APPEND


def test_new_producer_at_any_epoch_must_start_at_sequence_zero() -> None:
    assert ProducerStateTable().check(PID, 3, 1, 1) == OutOfOrderSequence(0, 1, 3)


def test_unknown_producer_may_start_anywhere_once_log_start_moved() -> None:
    w = Writer()
    w.produce(PID, 0, 0, 3)
    w.produce(PID + 1, 0, 0, 1)
    w.table.advance_log_start(3)
    assert w.table.producer(PID) is None  # its last batch lies below the log start
    assert not w.table.history_complete
    assert w.table.check(PID, 0, 3, 1) == APPEND


def test_unknown_producer_may_start_anywhere_in_table_rebuilt_from_log_starting_above_zero() -> (
    None
):
    table = ProducerStateTable()
    table.rebuild([], log_start_offset=100)
    assert table.check(PID, 0, 77, 1) == APPEND


def test_unknown_producer_may_start_anywhere_after_an_eviction() -> None:
    w = Writer(ProducerStateTable(max_producers=2))
    for pid in (1, 2, 3):
        w.produce(pid, 0, 0)
    assert w.table.producer(1) is None
    assert w.table.check(1, 0, 1, 1) == APPEND


def test_next_batch_must_continue_the_sequence() -> None:
    w = Writer()
    assert w.produce(PID, 0, 0, 3) == APPEND
    assert w.produce(PID, 0, 3, 2) == APPEND
    assert w.table.producer(PID).last_sequence == 4  # type: ignore[union-attr]


def test_sequence_gap_is_out_of_order_and_names_expected_sequence() -> None:
    w = Writer()
    w.produce(PID, 0, 0, 3)
    decision = w.table.check(PID, 0, 4, 1)
    assert decision == OutOfOrderSequence(
        expected_sequence=3, received_sequence=4, producer_epoch=0
    )
    assert "expected 3" in decision.message


def test_sequence_wraps_from_int32_max_to_zero() -> None:
    table = ProducerStateTable(log_start_offset=10)  # history incomplete: may start anywhere
    assert table.check(PID, 0, SEQUENCE_MAX - 1, 2) == APPEND
    table.record(PID, 0, SEQUENCE_MAX - 1, SEQUENCE_MAX, 10, 11)
    assert table.check(PID, 0, 0, 1) == APPEND
    assert table.check(PID, 0, SEQUENCE_MAX, 1) == OutOfOrderSequence(0, SEQUENCE_MAX, 0)


def test_batch_spanning_the_wrap_ends_at_a_small_sequence() -> None:
    table = ProducerStateTable(log_start_offset=10)
    table.record(PID, 0, SEQUENCE_MAX, last_sequence_of(SEQUENCE_MAX, 3), 10, 12)
    assert table.check(PID, 0, SEQUENCE_MAX, 3) == Duplicate(10, 12)
    assert table.check(PID, 0, 2, 1) == APPEND


def test_retry_of_any_of_the_last_five_batches_is_a_duplicate_with_its_original_offsets() -> None:
    w = Writer()
    for i in range(7):
        w.produce(PID, 0, 2 * i, 2)
    for i in range(2, 7):
        assert w.table.check(PID, 0, 2 * i, 2) == Duplicate(2 * i, 2 * i + 1)
    assert w.log_end == 14  # nothing written by the checks


def test_retry_of_a_batch_older_than_the_last_five_is_out_of_order() -> None:
    w = Writer()
    for i in range(BATCHES_PER_PRODUCER + 1):
        w.produce(PID, 0, i)
    assert w.table.check(PID, 0, 0, 1) == OutOfOrderSequence(6, 0, 0)


def test_duplicate_needs_the_same_first_and_last_sequence() -> None:
    w = Writer()
    w.produce(PID, 0, 0, 3)
    assert w.table.check(PID, 0, 0, 2) == OutOfOrderSequence(3, 0, 0)
    assert w.table.check(PID, 0, 0, 3) == Duplicate(0, 2)


def test_older_epoch_is_fenced() -> None:
    w = Writer()
    w.produce(PID, 0, 0)
    w.produce(PID, 1, 0)
    decision = w.table.check(PID, 0, 1, 1)
    assert decision == InvalidProducerEpoch(current_epoch=1, received_epoch=0)
    assert "fenced" in decision.message
    # Even a retry of the fenced epoch's own batch: the old instance must not learn offsets.
    assert w.table.check(PID, 0, 0, 1) == InvalidProducerEpoch(1, 0)


def test_bumped_epoch_must_start_at_sequence_zero() -> None:
    w = Writer()
    w.produce(PID, 0, 0, 5)
    assert w.table.check(PID, 1, 5, 1) == OutOfOrderSequence(0, 5, 1)
    assert w.produce(PID, 1, 0) == APPEND


def test_bumped_epoch_starts_a_new_duplicate_window() -> None:
    w = Writer()
    w.produce(PID, 0, 0)
    w.produce(PID, 0, 1)
    w.produce(PID, 1, 0)
    view = w.table.producer(PID)
    assert view is not None and view.producer_epoch == 1 and len(view.batches) == 1
    assert w.table.check(PID, 1, 0, 1) == Duplicate(2, 2)
    assert w.table.check(PID, 1, 1, 1) == APPEND


def test_check_changes_nothing() -> None:
    table = ProducerStateTable()
    for _ in range(3):
        assert table.check(PID, 0, 0, 1) == APPEND
    assert len(table) == 0


@pytest.mark.parametrize(
    "pid, epoch, seq, count",
    [
        (-1, 0, 0, 1),
        (PID, -1, 0, 1),
        (PID, 2**15, 0, 1),
        (PID, 0, -1, 1),
        (PID, 0, 2**31, 1),
        (PID, 0, 0, 0),
    ],
)
def test_fields_outside_kafkas_ranges_raise(pid: int, epoch: int, seq: int, count: int) -> None:
    with pytest.raises(ValueError):
        ProducerStateTable().check(pid, epoch, seq, count)


def test_batches_recorded_out_of_log_order_raise() -> None:
    table = ProducerStateTable()
    table.record(PID, 0, 0, 0, 5, 5)
    with pytest.raises(ValueError, match="log order"):
        table.record(PID, 0, 1, 1, 5, 5)


def test_full_table_evicts_the_producer_idle_longest() -> None:
    w = Writer(ProducerStateTable(max_producers=3))
    w.produce(1, 0, 0)
    w.produce(2, 0, 0)
    w.produce(3, 0, 0)
    w.produce(1, 0, 1)  # 2 is now idle longest
    w.produce(4, 0, 0)
    assert sorted(w.table.producer_ids()) == [1, 3, 4]
    assert len(w.table) == 3


def test_rebuild_from_log_headers_gives_the_same_decisions() -> None:
    w = Writer()
    w.produce(PID, 0, 0, 2)
    w.produce(PID + 1, 0, 0, 1)
    w.produce(PID, 0, 2, 3)
    w.produce(PID + 1, 1, 0, 1)
    rebuilt = ProducerStateTable()
    rebuilt.rebuild(w.headers())
    for args in [
        (PID, 0, 0, 2),
        (PID, 0, 2, 3),
        (PID, 0, 5, 1),
        (PID, 0, 6, 1),
        (PID + 1, 0, 1, 1),
        (PID + 1, 1, 0, 1),
        (PID + 1, 1, 1, 1),
        (PID + 2, 0, 3, 1),
    ]:
        assert rebuilt.check(*args) == w.table.check(*args), args


def test_rebuild_skips_batches_without_a_producer_id() -> None:
    data = build_batch([NewRecord(None, b"x", 0)], base_offset=0)
    data += build_batch(
        [NewRecord(None, b"y", 0)],
        base_offset=1,
        producer_id=PID,
        producer_epoch=0,
        base_sequence=0,
    )
    table = ProducerStateTable()
    table.rebuild(h for _, h in iter_batches(data))
    assert table.producer_ids() == [PID]
    assert table.check(PID, 0, 0, 1) == Duplicate(1, 1)


def test_rebuild_forgets_producers_whose_batches_lie_below_the_log_start() -> None:
    w = Writer()
    w.produce(1, 0, 0, 4)
    w.produce(2, 0, 0, 1)
    table = ProducerStateTable()
    table.rebuild(w.headers(), log_start_offset=4)
    assert table.producer_ids() == [2]


def test_truncation_forgets_batches_at_or_after_the_offset() -> None:
    w = Writer()
    for seq in range(3):
        w.produce(PID, 0, seq)
    assert w.table.truncate_to(1)
    assert w.table.check(PID, 0, 1, 1) == APPEND
    assert w.table.check(PID, 0, 0, 1) == Duplicate(0, 0)


def test_truncation_removes_the_batch_holding_the_offset_whole() -> None:
    w = Writer()
    w.produce(PID, 0, 0, 2)
    w.produce(PID, 0, 2, 3)  # offsets 2..4
    assert w.table.truncate_to(3)
    assert w.table.check(PID, 0, 2, 3) == APPEND


def test_truncating_every_batch_of_a_new_producer_makes_it_new_again() -> None:
    w = Writer()
    w.produce(1, 0, 0)
    w.produce(PID, 0, 0)
    w.produce(PID, 0, 1)
    assert w.table.truncate_to(1)
    assert w.table.producer(PID) is None
    assert w.table.check(PID, 0, 2, 1) == OutOfOrderSequence(0, 2, 0)


def test_truncating_past_what_the_table_kept_asks_for_a_rebuild() -> None:
    w = Writer()
    for seq in range(BATCHES_PER_PRODUCER + 2):
        w.produce(PID, 0, seq)
    assert not w.table.truncate_to(2)
    # The caller rebuilds from the truncated log: the producer continues at sequence 2.
    w.log = bytearray(
        b"".join(
            build_batch(
                [NewRecord(None, b"v", 0)],
                base_offset=i,
                producer_id=PID,
                producer_epoch=0,
                base_sequence=i,
            )
            for i in range(2)
        )
    )
    w.table.rebuild(w.headers())
    assert w.table.check(PID, 0, 2, 1) == APPEND


def test_truncating_every_batch_of_a_bumped_epoch_asks_for_a_rebuild() -> None:
    w = Writer()
    w.produce(PID, 0, 0)
    w.produce(PID, 1, 0)
    assert not w.table.truncate_to(1)


def test_truncation_keeps_eviction_by_last_offset() -> None:
    w = Writer(ProducerStateTable(max_producers=2))
    w.produce(1, 0, 0)  # offset 0
    w.produce(2, 0, 0)  # offset 1
    w.produce(1, 0, 1)  # offset 2
    assert w.table.truncate_to(2)
    assert w.table.producer_ids() == [1, 2]  # 1 now ends at 0, below 2's 1
    w.produce(3, 0, 0)
    assert sorted(w.table.producer_ids()) == [2, 3]


# -- snapshots (Kafka keeps each producer's last batch) ----------------------------------------


def reload(
    table: ProducerStateTable, snapshot_offset: int, log_start: int = 0, **kw: int
) -> ProducerStateTable:
    """A table loaded from ``table``'s snapshot, through the bytes of the file."""
    entries = decode(encode(table.snapshot_entries()), "snapshot")
    loaded = ProducerStateTable(**kw)
    loaded.load(entries, snapshot_offset, log_start)
    return loaded


def test_snapshot_holds_each_producers_epoch_and_last_batch_idle_longest_first() -> None:
    table = ProducerStateTable()
    table.record(PID, 0, 0, 2, 0, 2, max_timestamp=1700000000000)
    table.record(PID + 1, 3, 0, 0, 3, 3)
    table.record(PID, 0, 3, 6, 4, 7, max_timestamp=1700000000009)
    assert table.snapshot_entries() == [
        ProducerSnapshotEntry(PID + 1, 3, 0, 3, 0, -1),
        ProducerSnapshotEntry(PID, 0, 6, 7, 3, 1700000000009),
    ]


def test_observed_batches_keep_their_largest_timestamp() -> None:
    data = build_batch(
        [NewRecord(None, b"a", 1700000000005), NewRecord(None, b"b", 1700000000002)],
        base_offset=0,
        producer_id=PID,
        producer_epoch=0,
        base_sequence=0,
    )
    table = ProducerStateTable()
    table.rebuild(h for _, h in iter_batches(data))
    assert table.snapshot_entries()[0].timestamp == 1700000000005


def test_a_loaded_table_decides_as_the_one_it_was_taken_from_for_last_batches() -> None:
    w = Writer()
    w.produce(PID, 0, 0, 2)
    w.produce(PID + 1, 0, 0, 1)
    w.produce(PID, 0, 2, 3)
    w.produce(PID + 1, 1, 0, 1)
    loaded = reload(w.table, w.log_end)
    for args in [
        (PID, 0, 2, 3),  # a retry of the last batch
        (PID, 0, 5, 1),  # the next one
        (PID, 0, 6, 1),  # a gap
        (PID + 1, 0, 1, 1),  # a fenced epoch
        (PID + 1, 1, 0, 1),
        (PID + 1, 1, 1, 1),
        (PID + 1, 2, 0, 1),  # a bump
        (PID + 2, 0, 3, 1),  # an unknown producer (the history is complete)
    ]:
        assert loaded.check(*args) == w.table.check(*args), args
    assert loaded.history_complete


def test_observe_continues_a_loaded_table_with_the_headers_after_the_snapshot() -> None:
    w = Writer()
    w.produce(PID, 0, 0, 2)
    loaded = reload(w.table, w.log_end)
    w.produce(PID, 0, 2, 1)
    w.produce(PID + 1, 0, 0, 1)
    for header in w.headers()[1:]:
        loaded.observe(header)
    assert loaded.check(PID, 0, 2, 1) == Duplicate(2, 2)
    assert loaded.check(PID, 0, 0, 2) == Duplicate(0, 1)  # still in the window
    assert loaded.check(PID, 0, 3, 1) == APPEND
    assert loaded.check(PID + 1, 0, 0, 1) == Duplicate(3, 3)


def test_a_retry_of_an_older_batch_right_after_a_load_is_out_of_order() -> None:
    w = Writer()
    w.produce(PID, 0, 0, 2)
    w.produce(PID, 0, 2, 2)
    assert w.table.check(PID, 0, 0, 2) == Duplicate(0, 1)
    # The snapshot kept only the last batch: safe, nothing is written twice.
    assert reload(w.table, w.log_end).check(PID, 0, 0, 2) == OutOfOrderSequence(4, 0, 0)


def test_loading_a_wrapped_last_batch_recovers_its_first_sequence() -> None:
    table = ProducerStateTable(log_start_offset=10)
    table.record(PID, 0, SEQUENCE_MAX, last_sequence_of(SEQUENCE_MAX, 3), 10, 12)
    assert reload(table, 13, 10).check(PID, 0, SEQUENCE_MAX, 3) == Duplicate(10, 12)


def test_load_drops_producers_below_the_log_start_and_is_no_longer_strict() -> None:
    w = Writer()
    w.produce(1, 0, 0, 4)
    w.produce(2, 0, 0, 1)
    loaded = reload(w.table, w.log_end, log_start=4)
    assert loaded.producer_ids() == [2]
    assert not loaded.history_complete
    assert loaded.check(1, 0, 4, 1) == APPEND


def test_a_snapshot_with_room_for_another_producer_keeps_the_table_strict() -> None:
    w = Writer(ProducerStateTable(max_producers=3))
    w.produce(1, 0, 0)
    w.produce(2, 0, 0)
    loaded = reload(w.table, w.log_end, max_producers=3)
    assert loaded.history_complete
    assert loaded.check(9, 0, 5, 1) == OutOfOrderSequence(0, 5, 0)


def test_a_full_snapshot_may_come_from_a_table_that_evicted_so_any_sequence_goes() -> None:
    w = Writer(ProducerStateTable(max_producers=2))
    for pid in (1, 2, 3):
        w.produce(pid, 0, 0)
    loaded = reload(w.table, w.log_end, max_producers=2)
    assert not loaded.history_complete
    assert loaded.check(1, 0, 1, 1) == APPEND  # 1 was evicted: it may be live


def test_load_evicts_down_to_the_bound_keeping_the_latest_producers() -> None:
    w = Writer()
    for pid in (1, 2, 3, 1):
        w.produce(pid, 0, 0 if w.table.producer(pid) is None else 1)
    loaded = reload(w.table, w.log_end, max_producers=2)
    assert sorted(loaded.producer_ids()) == [1, 3]
    assert not loaded.history_complete


def test_load_refuses_a_batch_at_or_past_the_snapshot_offset() -> None:
    table = ProducerStateTable()
    with pytest.raises(ValueError, match="cannot hold"):
        table.load([ProducerSnapshotEntry(PID, 0, 0, 5, 0)], snapshot_offset=5)


def test_load_skips_entries_without_a_batch() -> None:
    table = ProducerStateTable()
    table.load([ProducerSnapshotEntry(PID, 3, -1, -1, 0)], snapshot_offset=5)
    assert len(table) == 0


def test_truncating_a_loaded_producers_batch_asks_for_a_reload() -> None:
    w = Writer()
    w.produce(PID, 0, 0)
    w.produce(PID, 0, 1)
    loaded = reload(w.table, w.log_end)
    assert not loaded.truncate_to(1)  # its batch before 1 is unknown to the loaded table
    assert reload(w.table, w.log_end).truncate_to(2)  # nothing of it goes


def test_a_table_that_evicted_asks_for_a_rebuild_rather_than_lose_a_whole_producer() -> None:
    # It must stay full, or a snapshot of it would claim a complete history (rule 5).
    w = Writer(ProducerStateTable(max_producers=2))
    for pid in (1, 2, 3):
        w.produce(pid, 0, 0)
    assert not w.table.truncate_to(2)
    # The rebuild from the truncated log finds two producers: no eviction, strict again.
    w.log = bytearray(w.log[: 2 * len(w.log) // 3])
    w.table.rebuild(w.headers())
    assert w.table.history_complete and len(w.table) == 2


def test_a_table_that_evicted_may_still_truncate_batches_exactly() -> None:
    w = Writer(ProducerStateTable(max_producers=2))
    for pid in (1, 2, 3):
        w.produce(pid, 0, 0)
    w.produce(3, 0, 1)
    assert w.table.truncate_to(3)  # 3 keeps its first batch


def test_last_data_offsets_name_each_producers_last_batch() -> None:
    log = Writer()
    log.produce(7, 0, 0, count=3)  # offsets 0-2
    log.produce(8, 0, 0, count=2)  # 3-4
    log.produce(7, 0, 3, count=1)  # 5
    assert log.table.last_data_offsets() == {7: 5, 8: 4}
