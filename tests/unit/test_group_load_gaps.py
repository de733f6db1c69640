"""Loading a group shard from a compacted ``__consumer_offsets`` partition
(server/groups/runtime.py replay_log): the cleaner leaves batches with records cleaned away
inside them, batches with no record left, and gaps between batches; the load reads on to the
log end past all of them and ends with the latest record of every key. The log is a
MemoryLog holding batches as Kafka's cleaner writes them (no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from server.config import GroupSettings
from server.groups.runtime import new_member_id, replay_log
from server.groups.shard import GroupShard
from storage.batch import NewRecord
from storage.group_records import OffsetCommitKey, OffsetCommitValue, encode_key, encode_value
from storage.memory_log import MemoryLog
from tests.gapped_batches import T0, empty_batch, gapped_batch


def commit(group: str, partition: int, offset: int | None) -> NewRecord:
    """An offset commit record (a tombstone for ``offset`` None)."""
    value = None if offset is None else OffsetCommitValue(offset, -1, "", T0)
    return NewRecord(encode_key(OffsetCommitKey(group, "a", partition)), encode_value(value), T0)


def cleaned_offsets_log() -> MemoryLog:
    """What a cleaned __consumer_offsets partition looks like: g's commits of partition 0
    at offsets 0..3 cleaned down to the last (3: offset 40); an empty batch 4..6 (an
    idempotent producer's last one); nothing at 7..9; h's commit at 10 and g's partition 1
    commit at 12 in a batch 10..13; then an empty batch at the log end (14..15)."""
    log = MemoryLog()
    log.append_batches(
        gapped_batch([(3, commit("g", 0, 40))], base_offset=0, last_offset=3)
        + empty_batch(4, 6, producer_id=5, base_sequence=0)
        + gapped_batch(
            [(10, commit("h", 0, 7)), (12, commit("g", 1, 12))], base_offset=10, last_offset=13
        )
        + empty_batch(14, 15, producer_id=5, base_sequence=3)
    )
    return log


def load(log: MemoryLog) -> tuple[GroupShard, int, int, int]:
    shard = GroupShard(GroupSettings(), new_member_id)
    checks = 0

    def check() -> None:
        nonlocal checks
        checks += 1
        assert checks < 100, "the load loops"

    count, skipped = asyncio.run(replay_log(log, shard, 0, check))
    return shard, count, skipped, checks


def offsets_of(shard: GroupShard, group: str) -> list[tuple[int, int]]:
    return [(c["partition"], c["offset"]) for c in shard.committed(group)]


def test_a_load_reads_past_gaps_and_empty_batches_to_the_log_end() -> None:
    shard, count, skipped, _checks = load(cleaned_offsets_log())
    assert (count, skipped) == (3, 0)
    assert offsets_of(shard, "g") == [(0, 40), (1, 12)]
    assert offsets_of(shard, "h") == [(0, 7)]


@pytest.mark.parametrize("read_bytes", [1, 150])
def test_a_load_in_small_reads_stops_at_no_empty_batch(
    monkeypatch: pytest.MonkeyPatch, read_bytes: int
) -> None:
    # One batch a read: a read that returns only an empty batch is not the end of the log.
    monkeypatch.setattr("server.groups.runtime.LOAD_READ_BYTES", read_bytes)
    shard, count, _skipped, checks = load(cleaned_offsets_log())
    assert count == 3
    assert offsets_of(shard, "g") == [(0, 40), (1, 12)]
    assert checks <= 4  # one read per batch at most: none read twice


def test_a_tombstone_kept_by_the_cleaner_still_deletes_on_load() -> None:
    log = cleaned_offsets_log()
    log.append_batches(gapped_batch([(20, commit("h", 0, None))], base_offset=18, last_offset=20))
    shard, count, _skipped, _checks = load(log)
    assert count == 4
    assert offsets_of(shard, "h") == []
    assert offsets_of(shard, "g") == [(0, 40), (1, 12)]
