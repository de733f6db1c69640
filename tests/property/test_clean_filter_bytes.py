"""The cleaner's filter writes from a record's own bytes what decoding and encoding would write.

:func:`storage.clean_filter.filter_batch` rebuilds a batch from its kept records' bytes (the
fields after the timestamp delta copied) instead of decoding the batch and encoding the kept
records again. These properties hold it to the slower way, on batches written by an encoder
of this file that can also write what our own encoder never does: record attributes that are
not 0, varints longer than needed (Kafka re-encodes both), headers, LogAppendTime batches,
batches that carry a delete horizon, offset gaps.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace

import crc32c as _crc32c
from hypothesis import event, given, settings
from hypothesis import strategies as st

from storage.batch import TIMESTAMP_TYPE_MASK, decode_batch, read_header
from storage.clean_filter import (
    DELETE_HORIZON_MASK,
    KeyOffsets,
    _rebuild_from_bytes,
    delete_horizon,
    empty_batch,
    filter_batch,
    rebuild_batch,
)
from storage.clean_map import OffsetMap, walk_records
from storage.errors import CorruptRecordError

SETTINGS = settings(max_examples=300, deadline=None)
T0 = 1_700_000_000_000
KEYS = [b"a", b"b", b"c", b"key-" + b"k" * 70]  # the last takes a two-byte length


def varint(value: int, padding: int = 0) -> bytes:
    """Zigzag LEB128 of ``value``, ``padding`` bytes longer than needed (0x80 groups, then a
    last 0x00: the value read is the same)."""
    zz = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while zz > 0x7F:
        out.append((zz & 0x7F) | 0x80)
        zz >>= 7
    out.append(zz)
    padding = min(padding, 10 - len(out))
    if padding:
        out[-1] |= 0x80
        out += b"\x80" * (padding - 1) + b"\x00"
    return bytes(out)


@dataclass(frozen=True)
class RawRecord:
    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    attributes: int
    # Which varint of the record is written longer than needed, and by how many bytes.
    padded_field: int
    padding: int


def record_bytes(r: RawRecord) -> bytes:
    fields: list[bytes] = []
    n = 0

    def v(value: int) -> bytes:
        nonlocal n
        n += 1
        return varint(value, r.padding if r.padded_field == n else 0)

    body = bytes([r.attributes]) + v(r.timestamp_delta) + v(r.offset_delta)
    for data in (r.key, r.value):
        body += v(-1) if data is None else v(len(data)) + data
    fields.append(body + v(len(r.headers)))
    for name, value in r.headers:
        encoded = name.encode("utf-8")
        fields.append(v(len(encoded)) + encoded)
        fields.append(v(-1) if value is None else v(len(value)) + value)
    record = b"".join(fields)
    return varint(len(record), r.padding if r.padded_field == 0 else 0) + record


def raw_batch(
    records: Sequence[RawRecord],
    *,
    base_offset: int,
    base_timestamp: int,
    max_timestamp: int,
    attributes: int,
    last_offset_delta: int,
) -> bytes:
    covered = struct.pack(
        ">hiqqqhii",
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        -1,
        -1,
        -1,
        len(records),
    ) + b"".join(record_bytes(r) for r in records)
    head = struct.pack(
        ">qiibI", base_offset, 4 + 1 + 4 + len(covered), 0, 2, _crc32c.crc32c(covered)
    )
    return head + covered


@st.composite
def batches(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A batch, and whether every varint in it is as short as it can be."""
    count = draw(st.integers(1, 8))
    deltas = sorted(draw(st.sets(st.integers(0, 3 * count), min_size=count, max_size=count)))
    plain = draw(st.booleans())  # as our encoder writes: attributes 0, no long varint
    records = [
        RawRecord(
            offset_delta=delta,
            timestamp_delta=draw(st.sampled_from([0, 1, 100, -5, 9_000, -(2**40)])),
            key=draw(st.sampled_from([None, *KEYS])),
            value=draw(st.sampled_from([None, b"", b"v", b"w" * 200])),
            headers=tuple(
                draw(
                    st.lists(
                        st.tuples(
                            st.sampled_from(["h", "é", ""]), st.sampled_from([None, b"", b"x"])
                        ),
                        max_size=2,
                    )
                )
            ),
            attributes=0 if plain else draw(st.sampled_from([0, 0x01, 0xFF])),
            padded_field=draw(st.integers(0, 9)),
            padding=0 if plain else draw(st.integers(0, 2)),
        )
        for delta in deltas
    ]
    timestamp_type = draw(st.sampled_from([0, TIMESTAMP_TYPE_MASK]))
    horizon = draw(st.booleans())
    shortest = all(record_bytes(r) == record_bytes(replace(r, padding=0)) for r in records)
    batch = raw_batch(
        records,
        base_offset=draw(st.integers(0, 2**40)),
        base_timestamp=T0 + draw(st.integers(-1000, 1000)),
        max_timestamp=T0 + 5_000,
        attributes=timestamp_type | (DELETE_HORIZON_MASK if horizon else 0),
        last_offset_delta=deltas[-1] + draw(st.integers(0, 2)),
    )
    return batch, shortest


@SETTINGS
@given(batch_shortest=batches(), data=st.data())
def test_a_batch_rebuilt_from_its_records_bytes_is_the_batch_decoding_would_rebuild(
    batch_shortest: tuple[bytes, bool], data: st.DataObject
) -> None:
    batch, shortest = batch_shortest
    header, records = decode_batch(batch)
    walk = walk_records(batch, 0, header)
    kept = sorted(data.draw(st.sets(st.integers(0, len(records) - 1), min_size=1)))
    horizon = data.draw(st.sampled_from([None, -1, T0 + 86_400_000, delete_horizon(header)]))
    fast = _rebuild_from_bytes(batch, header, walk.starts, kept, horizon)
    event("rebuilt from bytes" if fast is not None else "left to decoding")
    if fast is not None:
        assert fast == rebuild_batch(header, [records[i] for i in kept], horizon)
    if shortest:
        # Only a varint longer than needed leaves a batch that parses to the slow way.
        assert fast is not None


class Map:
    def __init__(self, offsets: dict[bytes, int], latest: int) -> None:
        self.offsets = offsets
        self.latest_offset = latest

    def get(self, key: bytes) -> int | None:
        return self.offsets.get(key)


def reference_filter(
    batch: bytes, offset_map: KeyOffsets, now_ms: int, retention_ms: int, upper: int
) -> tuple[bytes, int, int]:
    """The filter's rules (storage.clean_filter's docstring) over the decoded batch, every kept
    record encoded again: (bytes, records kept, keyless records dropped)."""
    header, records = decode_batch(batch)
    horizon = delete_horizon(header)
    keep: list[bool] = []
    keyless = 0
    for r in records:
        if r.offset > offset_map.latest_offset:
            keep.append(True)
        elif r.key is None:
            keyless += 1
            keep.append(False)
        else:
            found = offset_map.get(r.key)
            keep.append(
                (found is None or r.offset >= found)
                and (r.value is not None or horizon is None or now_ms < horizon)
            )
    kept = [r for r, k in zip(records, keep, strict=True) if k]
    tombstones = any(r.value is None for r in kept)
    if not kept:
        data = empty_batch(header) if header.next_offset == upper else b""
        return data, 0, keyless
    if len(kept) == len(records) and not (tombstones and horizon is None):
        return batch, len(kept), keyless
    new_horizon = now_ms + retention_ms if tombstones and horizon is None else horizon
    return rebuild_batch(header, kept, new_horizon), len(kept), keyless


@SETTINGS
@given(batch_shortest=batches(), data=st.data())
def test_filter_batch_writes_what_the_rules_over_decoded_records_write(
    batch_shortest: tuple[bytes, bool], data: st.DataObject
) -> None:
    batch, _shortest = batch_shortest
    header = read_header(batch)
    base, last = header.base_offset, header.last_offset
    offsets = {
        key: data.draw(st.integers(base - 1, last + 2)) for key in KEYS if data.draw(st.booleans())
    }
    # Often the whole batch within the map, as in a clean's dirty range.
    latest = data.draw(st.sampled_from([last, last + 1]) | st.integers(base - 1, last + 1))
    offset_map: KeyOffsets = Map(offsets, latest)
    if data.draw(st.booleans()):
        # The cleaner's own map (the filter asks it in one step when it can).
        offset_map = OffsetMap()
        for key, offset in offsets.items():
            offset_map.put(key, offset)
        offset_map.latest_offset = latest
        keyed = all(r.key is not None for r in decode_batch(batch)[1])
        event("own map, keyed, within it" if keyed and last <= latest else "own map")
    now = T0 + data.draw(st.sampled_from([0, 86_400_000, 10**10]))
    retention = data.draw(st.sampled_from([0, 86_400_000]))
    upper = data.draw(st.sampled_from([header.next_offset, 2**62]))
    _h, result = filter_batch(
        batch,
        0,
        offset_map=offset_map,
        now_ms=now,
        delete_retention_ms=retention,
        last_data_offsets={},
        upper_bound_offset=upper,
    )
    expected, kept, keyless = reference_filter(batch, offset_map, now, retention, upper)
    assert result.data == expected
    assert (result.records_kept, result.keyless_dropped) == (kept, keyless)
    assert result.records_read == header.record_count


def with_crc(batch: bytearray) -> bytes:
    """``batch`` with its CRC computed again: damage the CRC does not catch."""
    struct.pack_into(">I", batch, 17, _crc32c.crc32c(bytes(batch[21:])))
    return bytes(batch)


@SETTINGS
@given(batch_shortest=batches(), data=st.data())
def test_a_damaged_batch_under_a_good_crc_filters_as_decoding_would_or_is_refused(
    batch_shortest: tuple[bytes, bool], data: st.DataObject
) -> None:
    original, _shortest = batch_shortest
    damaged = bytearray(original)
    position = data.draw(st.integers(61, len(damaged) - 1))
    damaged[position] = data.draw(st.integers(0, 255))
    batch = with_crc(damaged)
    header = read_header(batch)
    offset_map = Map({b"a": header.last_offset}, header.last_offset)
    try:
        expected = reference_filter(batch, offset_map, T0, 0, 2**62)[0]
    except CorruptRecordError:
        # Decoding refuses the batch; the filter may too, or keep what it could read (a
        # dropped record is not read past its key, as Kafka's cleaner reads it whole).
        expected = None
    try:
        _h, result = filter_batch(
            batch,
            0,
            offset_map=offset_map,
            now_ms=T0,
            delete_retention_ms=0,
            last_data_offsets={},
            upper_bound_offset=2**62,
        )
    except CorruptRecordError:
        event("refused")
        assert expected is None
        return
    event("filtered")
    if expected is not None:
        assert result.data == expected
