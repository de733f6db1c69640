"""The cleaner's offset map (storage.clean_map): exact keys, a counted budget, Kafka's stops."""

from __future__ import annotations

import dataclasses
import struct

import crc32c
import pytest

from storage.batch import NewRecord, build_batch, read_header
from storage.clean_map import ENTRY_OVERHEAD_BYTES, OffsetMap, map_batch, record_keys
from storage.errors import CorruptRecordError

T = 1_700_000_000_000


def batch(keys: list[bytes | None], base: int) -> bytes:
    return build_batch([NewRecord(k, b"v", T) for k in keys], base_offset=base)


def test_each_entry_costs_its_key_plus_the_fixed_overhead() -> None:
    m = OffsetMap(10_000)
    assert m.put(b"abc", 5)
    assert m.used_bytes == 3 + ENTRY_OVERHEAD_BYTES
    assert m.put(b"abc", 9)  # an update costs nothing more
    assert (m.used_bytes, m.get(b"abc"), len(m)) == (3 + ENTRY_OVERHEAD_BYTES, 9, 1)


def test_a_new_key_past_the_budget_is_refused_unless_forced() -> None:
    m = OffsetMap(2 * (ENTRY_OVERHEAD_BYTES + 1))
    assert m.put(b"a", 1) and m.put(b"b", 2)
    assert not m.put(b"c", 3)
    assert m.get(b"c") is None
    assert m.put(b"a", 4)  # present keys still update
    assert m.put(b"c", 3, force=True) and m.utilization > 1.0


def test_a_budget_that_cannot_hold_one_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="offset map"):
        OffsetMap(ENTRY_OVERHEAD_BYTES)


def test_the_latest_offset_never_moves_back() -> None:
    m = OffsetMap()
    m.update_latest_offset(10)
    m.update_latest_offset(3)
    assert m.latest_offset == 10
    m.clear()
    assert (m.latest_offset, len(m), m.used_bytes) == (-1, 0, 0)


def test_record_keys_reads_each_records_offset_key_and_null_mark() -> None:
    data = build_batch(
        [
            NewRecord(b"a", b"1", T),
            NewRecord(None, b"2", T + 70_000),  # a timestamp delta of several bytes
            NewRecord(b"", None, T),
            NewRecord(b"bb", b"x" * 300, T, (("h", b"v"),)),  # a two-byte length
        ],
        base_offset=40,
    )
    assert record_keys(data, 0, read_header(data)) == [
        (40, b"a", False),
        (41, None, False),
        (42, b"", True),
        (43, b"bb", False),
    ]


def test_record_keys_refuses_records_that_do_not_fill_the_batch() -> None:
    data = batch([b"a", b"b"], 0)
    header = read_header(data)
    short = dataclasses.replace(header, record_count=1)
    with pytest.raises(CorruptRecordError, match="fill the batch"):
        record_keys(data, 0, short)
    long = dataclasses.replace(header, record_count=3)
    with pytest.raises(CorruptRecordError):
        record_keys(data, 0, long)


def test_map_batch_puts_keys_from_the_start_offset_and_moves_the_latest_offset() -> None:
    m = OffsetMap()
    data = batch([b"a", b"b", b"a"], 10)
    header, full = map_batch(m, data, 0, start_offset=11)
    assert not full and header.last_offset == 12
    assert (m.get(b"a"), m.get(b"b"), m.latest_offset) == (12, 11, 12)


def test_a_batch_wholly_before_the_start_offset_is_skipped() -> None:
    m = OffsetMap()
    _h, full = map_batch(m, batch([b"a"], 10), 0, start_offset=20)
    assert not full and len(m) == 0 and m.latest_offset == -1


def test_a_full_map_stops_before_the_batch_ends_and_keeps_the_latest_offset() -> None:
    m = OffsetMap(3 * (ENTRY_OVERHEAD_BYTES + 1))
    assert map_batch(m, batch([b"a", b"b"], 0), 0, start_offset=0) == (
        read_header(batch([b"a", b"b"], 0)),
        False,
    )
    _h, full = map_batch(m, batch([b"c", b"d"], 2), 0, start_offset=0)
    assert full and m.latest_offset == 1
    # The key that fitted stays: it points past the latest offset, where everything is kept.
    assert m.get(b"c") == 2 and m.get(b"d") is None


def test_the_first_batch_is_mapped_whole_past_the_budget() -> None:
    m = OffsetMap(ENTRY_OVERHEAD_BYTES + 1)
    _h, full = map_batch(m, batch([b"a", b"b", b"c"], 5), 0, start_offset=5)
    assert not full and m.latest_offset == 7 and len(m) == 3


def with_attributes(data: bytes, attributes: int) -> bytes:
    """``data`` with other batch attributes, its CRC recomputed."""
    out = bytearray(data)
    struct.pack_into(">h", out, 21, attributes)
    struct.pack_into(">I", out, 17, crc32c.crc32c(bytes(out[21:])))
    return bytes(out)


def test_control_batches_are_not_mapped() -> None:
    m = OffsetMap()
    _h, full = map_batch(m, with_attributes(batch([b"a"], 3), 0x20), 0, start_offset=0)
    assert not full and len(m) == 0 and m.latest_offset == 3


def test_a_corrupt_batch_or_one_whose_records_do_not_decompress_is_refused() -> None:
    data = bytearray(batch([b"a"], 3))
    data[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="CRC"):
        map_batch(OffsetMap(), bytes(data), 0, start_offset=0)
    # gzip named in the attributes, records left uncompressed.
    with pytest.raises(CorruptRecordError, match="gzip records: not a valid gzip stream"):
        map_batch(OffsetMap(), with_attributes(batch([b"a"], 3), 1), 0, start_offset=0)
