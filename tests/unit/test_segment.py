"""One segment: appending writes the batches and Kafka's index entries, lookups go through
the index, truncation removes whole batches, and sealing finishes the time index."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.batch import NewRecord, build_batch, read_header
from storage.errors import KafkaStorageError
from storage.index import OFFSET_ENTRY_SIZE, TIME_ENTRY_SIZE, read_used_entries
from storage.limits import INDEX_PREALLOCATE_BYTES
from storage.recovery import recover_segment
from storage.segment import Segment, segment_name

T0 = 1_700_000_000_000


def batch(base: int, count: int, ts: int = T0, value_bytes: int = 50) -> bytes:
    return build_batch(
        [NewRecord(None, b"x" * value_bytes, ts + i) for i in range(count)], base_offset=base
    )


def append(segment: Segment, data: bytes, interval: int = 200) -> None:
    segment.append(data, [read_header(data)], interval)


def used(path: Path) -> bytes:
    """An index file's entries: its bytes before the first unused (all-zero) entry."""
    size = OFFSET_ENTRY_SIZE if path.suffix == ".index" else TIME_ENTRY_SIZE
    with open(path, "rb") as f:
        return read_used_entries(f.fileno(), size, path.stat().st_size)


# Kafka's preallocated lengths: segment.index.bytes rounded down to whole entries.
OFFSET_INDEX_FILE_BYTES = INDEX_PREALLOCATE_BYTES // OFFSET_ENTRY_SIZE * OFFSET_ENTRY_SIZE
TIME_INDEX_FILE_BYTES = INDEX_PREALLOCATE_BYTES // TIME_ENTRY_SIZE * TIME_ENTRY_SIZE


def assert_preallocated(segment: Segment) -> None:
    """The active segment's index files: Kafka's preallocated length, its entries first."""
    assert segment.index_path.stat().st_size == OFFSET_INDEX_FILE_BYTES == 10485760
    assert segment.time_index_path.stat().st_size == TIME_INDEX_FILE_BYTES == 10485756
    assert used(segment.index_path) == segment.offset_index.to_bytes()
    assert used(segment.time_index_path) == segment.time_index.to_bytes()


def assert_trimmed(segment: Segment) -> None:
    """A sealed segment's index files: exactly its entries (Kafka's trimToValidSize)."""
    assert segment.index_path.read_bytes() == segment.offset_index.to_bytes()
    assert segment.time_index_path.read_bytes() == segment.time_index.to_bytes()


@pytest.fixture
def segment(tmp_path: Path) -> Iterator[Segment]:
    made = Segment.create(tmp_path, 100)
    yield made
    made.close()


def filled(segment: Segment, batches: int = 20) -> list[tuple[int, bytes]]:
    """Appends ``batches`` batches of 1..3 records; returns (position, bytes) of each."""
    written = []
    offset = segment.base_offset
    for i in range(batches):
        data = batch(offset, 1 + i % 3, ts=T0 + 100 * i)
        written.append((segment.size_bytes, data))
        append(segment, data)
        offset += 1 + i % 3
    return written


def test_segment_name_is_the_base_offset_in_20_digits() -> None:
    assert segment_name(0) == "00000000000000000000"
    assert segment_name(1234) == "00000000000000001234"


def test_create_makes_the_log_and_the_first_index_write_makes_the_index_files(
    tmp_path: Path, segment: Segment
) -> None:
    assert [p.name for p in tmp_path.iterdir()] == [f"{100:020d}.log"]
    assert (segment.size_bytes, segment.next_offset) == (0, 100)
    assert segment.write_indexes() is True  # created: the directory needs an fsync
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"{100:020d}.index", f"{100:020d}.log", f"{100:020d}.timeindex"]
    assert_preallocated(segment)
    assert used(segment.index_path) == used(segment.time_index_path) == b""
    assert segment.write_indexes() is False


def test_create_empties_stale_index_files_of_the_same_name(tmp_path: Path) -> None:
    stale = batch(100, 3)
    old = Segment.create(tmp_path, 100)
    append(old, stale, interval=0)
    append(old, batch(103, 3), interval=0)
    old.write_indexes()
    old.close()
    assert used(old.index_path) != b""
    made = Segment.create(tmp_path, 100)
    try:
        made.write_indexes()
        assert used(made.index_path) == used(made.time_index_path) == b""
        assert_preallocated(made)
    finally:
        made.close()


def test_an_empty_segment_without_index_files_opens_quietly(tmp_path: Path) -> None:
    Segment.create(tmp_path, 100).close()
    reopened = Segment.open_existing(tmp_path, 100)
    try:
        assert reopened.index_damage is None
        assert len(reopened.offset_index) == len(reopened.time_index.entries()) == 0
        assert reopened.write_indexes() is True  # the files come with its first flush
        assert reopened.index_path.exists() and reopened.time_index_path.exists()
    finally:
        reopened.close()


def test_a_segment_with_data_but_no_index_files_has_them_rebuilt(tmp_path: Path) -> None:
    made = Segment.create(tmp_path, 100)
    append(made, batch(100, 3))
    made.close()  # never flushed: no index files
    reopened = Segment.open_existing(tmp_path, 100)
    try:
        assert reopened.index_damage == f"{100:020d}.index is missing"
    finally:
        reopened.close()


def test_append_writes_the_batches_back_to_back(segment: Segment) -> None:
    written = filled(segment)
    assert segment.log_path.read_bytes() == b"".join(data for _, data in written)
    assert segment.next_offset == 100 + sum(1 + i % 3 for i in range(20))
    assert segment.max_timestamp == T0 + 1900 + 1
    assert segment.first_batch_timestamp == T0


def test_index_entries_reach_the_file_only_when_written(segment: Segment) -> None:
    filled(segment)
    assert len(segment.offset_index) > 2
    assert not segment.index_path.exists()
    segment.write_indexes()
    assert_preallocated(segment)


def test_locate_finds_the_batch_holding_each_offset(segment: Segment) -> None:
    written = filled(segment)
    for position, data in written:
        header = read_header(data)
        for offset in range(header.base_offset, header.next_offset):
            assert segment.locate(offset) == (position, header)
    assert segment.locate(segment.next_offset) is None


def test_read_returns_whole_checked_batches_within_max_bytes(segment: Segment) -> None:
    written = filled(segment)
    position, first = written[3]
    data = written[3][1] + written[4][1]
    assert segment.read(read_header(first).base_offset, len(data), None) == (position, data)
    assert segment.read(read_header(first).base_offset, 1, None) == (position, first)
    assert segment.read(read_header(first).base_offset, 10**6, read_header(first).base_offset) == (
        -1,
        b"",
    )


def test_truncate_to_removes_the_batch_holding_the_offset_and_all_after(segment: Segment) -> None:
    written = filled(segment)
    segment.write_indexes()
    position, data = written[10]
    header = read_header(data)
    dropped = segment.truncate_to(header.base_offset + 1)
    assert dropped == sum(len(d) for _, d in written[10:])
    assert (segment.size_bytes, segment.next_offset) == (position, header.base_offset)
    assert segment.log_path.stat().st_size == position
    assert all(p < position for _, p in segment.offset_index.entries())
    assert all(o < header.base_offset for _, o in segment.time_index.entries())
    assert segment.max_timestamp == T0 + 900  # batch 9 holds one record
    segment.write_indexes()
    assert_preallocated(segment)  # the entries dropped are zeros now, not stale entries


def test_seal_adds_the_largest_timestamp_to_the_time_index(segment: Segment) -> None:
    append(segment, batch(100, 2, ts=T0))
    assert segment.time_index.entries() == []  # too few bytes for an index entry
    segment.seal()
    assert segment.time_index.entries() == [(T0 + 1, 101)]
    assert segment.indexes_need_fsync
    assert_trimmed(segment)


def test_seal_trims_preallocated_index_files_to_their_entries(segment: Segment) -> None:
    filled(segment)
    segment.write_indexes()
    assert_preallocated(segment)
    segment.seal()
    assert not segment.active
    assert_trimmed(segment)
    assert segment.index_path.stat().st_size == 8 * len(segment.offset_index) > 0


def test_activate_preallocates_again_and_zeroes_what_follows_the_entries(
    tmp_path: Path, segment: Segment
) -> None:
    filled(segment)
    segment.seal()
    segment.close()
    # After the entries, an unused (zero) entry and then leftovers of an older index (a crash
    # may leave a hole in an active segment's preallocated file): the entries end at the zero
    # one, the rest must not survive. (A file of any other length was trimmed to its entries.)
    with open(segment.index_path, "ab") as f:
        f.write(bytes(8) + b"\x00\x00\x7f\x00\x00\x00\x7f\x00" * 3)
        f.truncate(OFFSET_INDEX_FILE_BYTES)
    reopened = Segment.open_existing(tmp_path, 100)
    try:
        assert reopened.index_damage is None
        reopened.activate()
        reopened.write_indexes()
        assert_preallocated(reopened)
        assert used(reopened.index_path) == segment.offset_index.to_bytes()
    finally:
        reopened.close()


def test_a_preallocated_index_opens_with_its_entries_without_reading_its_zeros(
    tmp_path: Path, segment: Segment, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled(segment)
    segment.write_indexes()  # preallocated, as an unclean stop leaves an active segment's
    entries = segment.offset_index.entries()
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        data = real_pread(fd, length, offset)
        read.append(len(data))
        return data

    monkeypatch.setattr("storage.index.os.pread", counting_pread)
    reopened = Segment.open_existing(tmp_path, 100)
    try:
        assert reopened.index_damage is None
        assert reopened.offset_index.entries() == entries
        assert reopened.time_index.entries() == segment.time_index.entries()
        assert sum(read) < 64 * 1024  # not 20 MiB: the reads stop at the first zero entry
    finally:
        reopened.close()


def test_find_offset_by_timestamp_decodes_the_batch_it_lands_in(segment: Segment) -> None:
    filled(segment)
    assert segment.find_offset_by_timestamp(T0 + 101, 100) == 102
    assert segment.find_offset_by_timestamp(T0 + 102, 100) == 103
    assert segment.find_offset_by_timestamp(T0 + 102, 110) == 110
    assert segment.find_offset_by_timestamp(T0 + 10**6, 100) is None


def test_recover_of_a_whole_segment_rebuilds_the_same_indexes(
    tmp_path: Path, segment: Segment
) -> None:
    filled(segment)
    segment.seal()
    index, time_index = segment.index_path.read_bytes(), segment.time_index_path.read_bytes()
    reopened = Segment.open_existing(tmp_path, 100)
    reopened.offset_index.clear()
    reopened.time_index.clear()
    result = recover_segment(reopened, 0, 200)
    assert result.error is None
    reopened.seal()
    reopened.write_indexes()
    assert (reopened.index_path.read_bytes(), reopened.time_index_path.read_bytes()) == (
        index,
        time_index,
    )
    assert (reopened.next_offset, reopened.max_timestamp) == (
        segment.next_offset,
        segment.max_timestamp,
    )
    reopened.close()


def test_a_read_of_a_corrupt_batch_names_the_file_and_position(segment: Segment) -> None:
    written = filled(segment)
    position = written[5][0]
    with open(segment.log_path, "r+b") as f:
        f.seek(position + 70)
        f.write(b"\xff\xfe")
    offset = read_header(written[5][1]).base_offset
    with pytest.raises(KafkaStorageError) as raised:
        segment.read(offset, 10**6, None)
    assert (raised.value.path, raised.value.position) == (str(segment.log_path), position)
