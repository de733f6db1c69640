"""The offset and time indexes: Kafka's entry layout, floor lookups, truncation, and the sanity
check that decides whether an index file on disk can be trusted."""

from __future__ import annotations

import struct

import pytest

from storage.index import IndexDamagedError, OffsetIndex, TimeIndex


def offset_index(base: int, *entries: tuple[int, int]) -> OffsetIndex:
    index = OffsetIndex(base)
    for offset, position in entries:
        index.append(offset, position)
    return index


def test_offset_index_entries_are_relative_offset_and_position_big_endian_int32() -> None:
    index = offset_index(100, (105, 4200), (112, 8400))
    assert index.to_bytes() == struct.pack(">iiii", 5, 4200, 12, 8400)


def test_time_index_entries_are_timestamp_int64_and_relative_offset_int32() -> None:
    index = TimeIndex(100)
    index.maybe_append(1_700_000_000_000, 105)
    assert index.to_bytes() == struct.pack(">qi", 1_700_000_000_000, 5)


def test_offset_lookup_returns_the_entry_with_the_largest_offset_at_or_below() -> None:
    index = offset_index(100, (105, 4200), (112, 8400), (130, 12600))
    assert index.lookup(99) is None
    assert index.lookup(104) is None
    assert index.lookup(105) == (105, 4200)
    assert index.lookup(111) == (105, 4200)
    assert index.lookup(112) == (112, 8400)
    assert index.lookup(10**9) == (130, 12600)


def test_time_lookup_returns_the_entry_with_the_largest_timestamp_at_or_below() -> None:
    index = TimeIndex(0)
    for ts, off in [(1000, 3), (2000, 9), (3000, 20)]:
        assert index.maybe_append(ts, off)
    assert index.lookup(999) is None
    assert index.lookup(1000) == (1000, 3)
    assert index.lookup(2999) == (2000, 9)
    assert index.lookup(5000) == (3000, 20)


def test_time_index_appends_only_when_the_timestamp_grows() -> None:
    index = TimeIndex(0)
    assert not index.maybe_append(-1, 0)  # no timestamp: no entry, as Kafka's (-1, base) rule
    assert index.maybe_append(1000, 3)
    assert not index.maybe_append(1000, 7)
    assert not index.maybe_append(900, 8)
    assert index.maybe_append(1001, 8)
    assert index.entries() == [(1000, 3), (1001, 8)]


def test_offset_index_refuses_entries_that_do_not_increase() -> None:
    index = offset_index(0, (5, 100))
    with pytest.raises(AssertionError):
        index.append(5, 200)
    with pytest.raises(AssertionError):
        index.append(6, 50)


def test_truncation_drops_entries_and_the_next_write_cuts_the_file() -> None:
    index = offset_index(0, (5, 100), (9, 200), (15, 300))
    assert index.take_pending() == (0, index.to_bytes(), False)
    index.truncate_from_position(200)
    assert index.entries() == [(5, 100)]
    position, data, cut = index.take_pending()
    assert (position, data, cut) == (8, b"", True)
    index.append(11, 250)
    assert index.take_pending() == (8, struct.pack(">ii", 11, 250), False)


def test_keep_through_position_keeps_the_entry_at_that_position() -> None:
    index = offset_index(0, (5, 100), (9, 200), (15, 300))
    index.keep_through_position(200)
    assert index.entries() == [(5, 100), (9, 200)]


def test_time_index_truncate_from_offset() -> None:
    index = TimeIndex(10)
    index.maybe_append(1, 12)
    index.maybe_append(2, 20)
    index.truncate_from_offset(20)
    assert index.entries() == [(1, 12)]


def test_a_written_index_parses_back_to_the_same_entries() -> None:
    index = offset_index(1000, (1003, 50), (1010, 4200))
    parsed = OffsetIndex.parse(1000, index.to_bytes(), log_size=5000, end_offset=1011)
    assert parsed.entries() == index.entries()
    times = TimeIndex(1000)
    times.maybe_append(7, 1003)
    assert TimeIndex.parse(1000, times.to_bytes(), end_offset=1011).entries() == [(7, 1003)]


@pytest.mark.parametrize(
    ("data", "log_size", "end_offset", "why"),
    [
        (struct.pack(">ii", 5, 100) + b"\x00\x00", 1000, None, "not made of"),
        (struct.pack(">iiii", 5, 100, 0, 0), 1000, None, "does not follow"),  # zero fill
        (struct.pack(">iiii", 5, 100, 4, 200), 1000, None, "does not follow"),
        (struct.pack(">iiii", 5, 100, 9, 100), 1000, None, "does not follow|do not increase"),
        (struct.pack(">ii", 5, 1000), 1000, None, "points at position"),
        (struct.pack(">ii", 5, 100), 1000, 5, "segment ends"),
        (struct.pack(">ii", -5, 100), 1000, None, "negative"),
    ],
)
def test_an_untrustworthy_offset_index_file_is_refused(
    data: bytes, log_size: int, end_offset: int | None, why: str
) -> None:
    with pytest.raises(IndexDamagedError, match=why):
        OffsetIndex.parse(0, data, log_size=log_size, end_offset=end_offset)


@pytest.mark.parametrize(
    ("data", "end_offset", "why"),
    [
        (b"\x00" * 13, None, "not made of"),
        (struct.pack(">qiqi", 10, 1, 0, 0), None, "does not follow"),  # zero fill
        (struct.pack(">qi", 10, 7), 7, "segment ends"),
        (struct.pack(">qi", 10, -1), None, "negative"),
    ],
)
def test_an_untrustworthy_time_index_file_is_refused(
    data: bytes, end_offset: int | None, why: str
) -> None:
    with pytest.raises(IndexDamagedError, match=why):
        TimeIndex.parse(0, data, end_offset=end_offset)


def test_an_empty_index_file_is_a_valid_empty_index() -> None:
    assert len(OffsetIndex.parse(0, b"", log_size=0)) == 0
    assert len(TimeIndex.parse(0, b"")) == 0
