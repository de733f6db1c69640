"""Producer state properties: any run of (check, record) from a few producers, with follower
truncations, decides as a simple model that rereads the whole log each time; a table rebuilt
from the headers of what was appended decides as the live one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from server.producer_state import (
    APPEND,
    BATCHES_PER_PRODUCER,
    Decision,
    Duplicate,
    InvalidProducerEpoch,
    OutOfOrderSequence,
    ProducerStateTable,
    last_sequence_of,
    next_sequence,
)
from storage.batch import MIN_BATCH_LENGTH, BatchHeader

PRODUCERS = 2


@dataclass(frozen=True)
class Batch:
    pid: int
    epoch: int
    first_seq: int
    count: int
    first_offset: int

    @property
    def last_seq(self) -> int:
        return last_sequence_of(self.first_seq, self.count)

    @property
    def last_offset(self) -> int:
        return self.first_offset + self.count - 1

    def header(self) -> BatchHeader:
        return BatchHeader(
            base_offset=self.first_offset,
            batch_length=MIN_BATCH_LENGTH,
            partition_leader_epoch=0,
            magic=2,
            crc=0,
            attributes=0,
            last_offset_delta=self.count - 1,
            base_timestamp=0,
            max_timestamp=0,
            producer_id=self.pid,
            producer_epoch=self.epoch,
            base_sequence=self.first_seq,
            record_count=self.count,
        )


def model_decide(log: list[Batch], pid: int, epoch: int, seq: int, count: int) -> Decision:
    """Kafka's rules read straight off the whole log (a complete history)."""
    mine = [b for b in log if b.pid == pid]
    if not mine:
        return APPEND if seq == 0 else OutOfOrderSequence(0, seq, epoch)
    current = mine[-1].epoch
    if epoch < current:
        return InvalidProducerEpoch(current, epoch)
    if epoch > current:
        return APPEND if seq == 0 else OutOfOrderSequence(0, seq, epoch)
    window = [b for b in mine if b.epoch == current][-BATCHES_PER_PRODUCER:]
    for b in window:
        if b.first_seq == seq and b.last_seq == last_sequence_of(seq, count):
            return Duplicate(b.first_offset, b.last_offset)
    expected = next_sequence(mine[-1].last_seq)
    return APPEND if seq == expected else OutOfOrderSequence(expected, seq, epoch)


def agrees(live: Decision, model: Decision, window_shortened: bool) -> bool:
    """Equal; or, for a producer whose window an exact truncation shortened, a retry the model
    still recognises is refused as out of order (safe: nothing is written twice)."""
    if live == model:
        return True
    return (
        window_shortened and isinstance(model, Duplicate) and isinstance(live, OutOfOrderSequence)
    )


# An operation: ("produce", producer, how, count, pick) or ("truncate", batches back, whether
# to cut inside the batch rather than at its start).
_produce = st.tuples(
    st.just("produce"),
    st.integers(0, PRODUCERS - 1),
    st.sampled_from(["next", "next", "next", "retry", "gap", "bump", "stale", "any"]),
    st.integers(1, 3),
    st.integers(0, 2**31 - 1),
)
_truncate = st.tuples(st.just("truncate"), st.integers(1, 14), st.booleans())
_ops = st.lists(st.one_of(_produce, _produce, _produce, _truncate), min_size=10, max_size=80)


def request(log: list[Batch], pid: int, how: str, count: int, pick: int) -> tuple[int, int, int]:
    """(epoch, first sequence, count) of a request of the given kind, from the log's state."""
    mine = [b for b in log if b.pid == pid]
    epoch = mine[-1].epoch if mine else 0
    expected = next_sequence(mine[-1].last_seq) if mine else 0
    if how == "next":
        return epoch, expected, count
    if how == "retry" and mine:
        old = mine[-1 - pick % min(len(mine), BATCHES_PER_PRODUCER + 2)]
        return old.epoch, old.first_seq, old.count
    if how == "gap":
        return epoch, (expected + 1 + pick % 3) % 2**31, count
    if how == "bump":
        return epoch + 1, 0 if pick % 2 else pick % 5, count
    if how == "stale":
        return max(epoch - 1, 0), expected, count
    return pick % 3, pick % 12, count


def probes(log: list[Batch]) -> list[tuple[int, int, int, int]]:
    out = []
    for pid in range(PRODUCERS + 1):
        mine = [b for b in log if b.pid == pid]
        epoch = mine[-1].epoch if mine else 0
        expected = next_sequence(mine[-1].last_seq) if mine else 0
        for e in {max(epoch - 1, 0), epoch, epoch + 1}:
            for seq in {0, 1, expected, expected + 1}:
                out.append((pid, e, seq, 1))
        out.extend((pid, b.epoch, b.first_seq, b.count) for b in mine[-7:])
    return out


@settings(max_examples=200, deadline=None)
@given(ops=_ops)
def test_live_table_decides_as_the_model_and_rebuild_as_the_live_table(
    ops: list[tuple[Any, ...]],
) -> None:
    table = ProducerStateTable()
    log: list[Batch] = []
    # Producers whose window an exact truncation shortened: appends left until it is full.
    shortened: dict[int, int] = {}
    for op in ops:
        if op[0] == "truncate":
            _, back, inside = op
            if not log:
                continue
            cut = log[-min(back, len(log))]
            offset = cut.first_offset + (1 if inside and cut.count > 1 else 0)
            kept = [b for b in log if b.last_offset < offset]
            if table.truncate_to(offset):
                for b in log[len(kept) :]:
                    shortened[b.pid] = BATCHES_PER_PRODUCER
            else:
                table.rebuild(b.header() for b in kept)
                shortened.clear()
            log = kept
            continue
        _, pid, how, count, pick = op
        epoch, seq, count = request(log, pid, how, count, pick)
        live = table.check(pid, epoch, seq, count)
        model = model_decide(log, pid, epoch, seq, count)
        assert agrees(live, model, pid in shortened), (live, model)
        if live == APPEND:
            first = log[-1].last_offset + 1 if log else 0
            batch = Batch(pid, epoch, seq, count, first)
            mine = [b for b in log if b.pid == pid]
            bumped = bool(mine) and mine[-1].epoch != epoch
            log.append(batch)
            table.record(pid, epoch, seq, batch.last_seq, first, batch.last_offset)
            if pid in shortened:
                shortened[pid] -= 1
                if shortened[pid] == 0 or bumped:
                    del shortened[pid]

    rebuilt = ProducerStateTable()
    rebuilt.rebuild(b.header() for b in log)
    for probe in probes(log):
        assert rebuilt.check(*probe) == model_decide(log, *probe), probe
        assert agrees(table.check(*probe), rebuilt.check(*probe), probe[0] in shortened), probe


@settings(max_examples=100, deadline=None)
@given(
    ops=st.lists(st.tuples(st.integers(0, 9), st.integers(1, 3)), max_size=80),
    max_producers=st.integers(1, 4),
)
def test_table_never_holds_more_than_its_bound_and_keeps_the_most_recent_producers(
    ops: list[tuple[int, int]], max_producers: int
) -> None:
    table = ProducerStateTable(max_producers=max_producers)
    offset = 0
    last_offset: dict[int, int] = {}
    for pid, count in ops:
        view = table.producer(pid)
        seq = next_sequence(view.last_sequence) if view else 0
        table.record(pid, 0, seq, last_sequence_of(seq, count), offset, offset + count - 1)
        offset += count
        last_offset[pid] = offset - 1
        assert len(table) <= max_producers
    newest = sorted(last_offset, key=last_offset.__getitem__)[-max_producers:]
    assert sorted(table.producer_ids()) == sorted(newest)
