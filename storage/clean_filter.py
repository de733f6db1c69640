"""Filtering one record batch for the cleaner (pure: bytes in, bytes out), Kafka's rules.

Which records stay (Kafka's ``Cleaner.shouldRetainRecord``):

- a record after the offset map's ``latest_offset`` stays (the map knows nothing past it);
- a record without a key goes (counted as invalid: a compacted topic refuses them at produce,
  so only a topic switched to compact later holds any);
- a keyed record stays if its offset is >= the map's offset for its key (a key the map lacks
  was last written before the dirty range: it stays), and, if it is a tombstone (null value),
  only while the batch carries no delete horizon or ``now < horizon``.

What becomes of the batch (Kafka's ``checkBatchRetention`` and ``MemoryRecords.filterTo``):

- every record stays and no horizon is needed: the batch is copied byte for byte;
- some records stay, or a kept tombstone needs a horizon: the batch is rebuilt (below);
- no record stays: the batch goes, unless it is the last data batch of an active idempotent
  producer (its sequence must survive: ``last_data_offsets[producer_id]`` is its last offset)
  or the batch ends the cleaning round (its next offset is the round's upper bound, so the
  cleaned range keeps its last offset), which stay as an empty batch (a header only, as
  Kafka's ``DefaultRecordBatch.writeEmptyHeader`` writes it: base timestamp -1, max timestamp
  kept, no delete horizon, record count 0, the last offset delta kept).
- control batches are copied whole: we have no transactions (produce refuses transactional
  and control batches), so there is no marker to judge; one could come only from a foreign log.

A rebuilt batch (Kafka's ``buildRetainedRecordsInto`` through ``MemoryRecordsBuilder``) has the
original base offset, last offset delta, partition leader epoch, producer id, epoch and base
sequence; attributes are recomputed: the original's codec (Kafka's ``filterTo`` builds with
the batch's own compression type, at the codec's default level), the timestamp type and
transactional and control bits kept, bit 6 (0x40) set when it carries a delete horizon. The
delete horizon is ``now + delete.retention.ms`` the first time the cleaner keeps a tombstone of
a batch that has none; a batch that has one keeps it. With a horizon, the base timestamp IS the
horizon and each record's timestamp delta is relative to it; without, the base timestamp is the
first kept record's. The max timestamp is the largest kept record's (-1 if none has one), or the
original's for a LogAppendTime batch (whose records all read as it). Each kept record keeps
its offset (its delta from the base offset), timestamp, key, value and headers, re-encoded with
record attributes 0, as Kafka's ``DefaultRecord.writeTo``. The CRC-32C covers attributes..end.

How (the cleaner's speed is this module's and storage.clean_map's walk): each batch's records
are walked once for their offsets, keys and null marks, without decoding values or headers;
a rebuilt batch is made from its kept records' own bytes (the fields after the timestamp
delta copied, the length and timestamp delta written anew), which is the encoding above
whenever every varint of the record is as short as it can be; a record that is not, or that
does not parse, sends the batch through ``decode_batch`` and the encoder instead. A compressed
batch is filtered as its decompressed twin (:func:`storage.batch.decompressed_batch`, bounded):
copied whole, its original bytes are kept; rebuilt, its kept records are compressed again
with its codec; emptied, it becomes the uncompressed empty header Kafka writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import ge
from typing import Protocol

from storage.batch import (
    CONTROL_MASK,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_MASK,
    BatchHeader,
    Record,
    assemble_batch,
    check_batch,
    compressed_batch,
    decode_batch,
    decode_varint,
    decompressed_batch,
    encode_record,
    encode_varint,
)
from storage.clean_map import OffsetMap, walk_records
from storage.errors import CorruptRecordError

# Batch attribute bit 6 (Kafka's DELETE_HORIZON_FLAG_MASK): the base timestamp holds the
# delete horizon of the batch's tombstones.
DELETE_HORIZON_MASK = 0x40
NO_TIMESTAMP = -1


class KeyOffsets(Protocol):
    """What the filter reads of the offset map (storage.clean_map.OffsetMap)."""

    latest_offset: int

    def get(self, key: bytes) -> int | None: ...


@dataclass(frozen=True, slots=True)
class FilterResult:
    """What became of one batch: ``data`` is what to write ('' when the batch goes)."""

    data: bytes
    records_read: int
    records_kept: int
    # Keyless records dropped (Kafka's "invalid messages").
    keyless_dropped: int
    # The batch was copied unchanged.
    copied: bool


def delete_horizon(header: BatchHeader) -> int | None:
    """The batch's delete horizon (ms), or None if it carries none."""
    return header.base_timestamp if header.attributes & DELETE_HORIZON_MASK else None


def _attributes(header: BatchHeader, with_horizon: bool) -> int:
    """Kafka's ``computeAttributes`` for a batch rebuilt uncompressed from ``header``."""
    attributes = header.attributes & (TIMESTAMP_TYPE_MASK | TRANSACTIONAL_MASK | CONTROL_MASK)
    if with_horizon:
        attributes |= DELETE_HORIZON_MASK
    return attributes


def _assemble(
    header: BatchHeader,
    attributes: int,
    base_timestamp: int,
    max_timestamp: int,
    body: bytes,
    count: int,
) -> bytes:
    """``header``'s batch with these attributes, timestamps and records (its offsets, leader
    epoch and producer fields kept)."""
    return assemble_batch(
        body,
        base_offset=header.base_offset,
        last_offset_delta=header.last_offset_delta,
        record_count=count,
        base_timestamp=base_timestamp,
        max_timestamp=max_timestamp,
        attributes=attributes,
        partition_leader_epoch=header.partition_leader_epoch,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
    )


def empty_batch(header: BatchHeader) -> bytes:
    """The header-only batch Kafka's ``writeEmptyHeader`` writes in place of ``header``'s."""
    return _assemble(header, _attributes(header, False), NO_TIMESTAMP, header.max_timestamp, b"", 0)


def rebuild_batch(header: BatchHeader, kept: Sequence[Record], horizon: int | None) -> bytes:
    """``header``'s batch holding only ``kept`` (at least one), with delete horizon
    ``horizon`` (None: none), as Kafka's ``MemoryRecordsBuilder`` writes it (module docstring)."""
    assert kept, "a rebuilt batch holds at least one record; an empty one is empty_batch"
    with_horizon = horizon is not None and horizon >= 0
    base_timestamp = horizon if with_horizon and horizon is not None else kept[0].timestamp
    if header.is_log_append_time:
        max_timestamp = header.max_timestamp
    else:
        max_timestamp = max(NO_TIMESTAMP, max(r.timestamp for r in kept))
    base = header.base_offset
    body = b"".join([encode_record(r, r.offset - base, base_timestamp) for r in kept])
    return _assemble(
        header, _attributes(header, with_horizon), base_timestamp, max_timestamp, body, len(kept)
    )


class _NotAsWeWrite(Exception):
    """A kept record whose bytes are not what :func:`rebuild_batch` would write of it."""


def _exact_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it, if it is written as
    :func:`storage.batch.encode_varint` writes its value (no longer than needed)."""
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    b2 = buf[pos + 1]
    if 0 < b2 < 0x80:  # two bytes, the second not 0: the shortest form of its value
        zz = (b & 0x7F) | (b2 << 7)
        return (zz >> 1) ^ -(zz & 1), pos + 2
    value, after = decode_varint(buf, pos, end)
    if buf[pos:after] != encode_varint(value):
        raise _NotAsWeWrite
    return value, after


def _rebuild_from_bytes(
    buf: bytes, header: BatchHeader, starts: Sequence[int], kept: Sequence[int], horizon: int | None
) -> bytes | None:
    """What :func:`rebuild_batch` writes for the records ``kept`` (indexes into ``starts``,
    :class:`storage.clean_map.RecordWalk`'s) of ``header``'s batch, made from their bytes
    instead of decoding and encoding them: a record's fields after its timestamp delta do not
    depend on where it sits or on the batch's base timestamp, so they are copied, and the
    record's length, attributes (0) and timestamp delta (from the new base) written before
    them; a record that needs neither is copied whole. Returns None when a kept record is not
    as :func:`rebuild_batch` would write it (a varint longer than needed) or does not parse:
    the caller then decodes the batch and rebuilds it, as Kafka re-encodes every record it
    keeps (and :func:`storage.batch.decode_batch` names what is wrong)."""
    log_append_time = header.is_log_append_time
    old_base = header.base_timestamp
    timestamps: list[int] = []
    deltas: list[int] = []
    fields: list[int] = []  # where each record's offset delta starts
    plain: list[bool] = []  # length, attributes and timestamp delta as we write them
    try:
        for i in kept:
            start, end = starts[i], starts[i + 1]
            # One- and two-byte varints are read inline (nearly every field of a record).
            # (A two-byte varint is as short as it can be when its second byte is not 0.)
            b = buf[start]
            if b < 0x80:
                length, p = b >> 1, start + 1  # positive: the walk checked it
            elif 0 < buf[start + 1] < 0x80:
                length, p = ((b & 0x7F) | (buf[start + 1] << 7)) >> 1, start + 2
            else:
                length, p = _exact_varint(buf, start, end)
            if p + length != end:
                return None
            attributes = buf[p]
            b = buf[p + 1]
            if b < 0x80:
                delta, q = (b >> 1) ^ -(b & 1), p + 2
            elif 0 < buf[p + 2] < 0x80:
                zz = (b & 0x7F) | (buf[p + 2] << 7)
                delta, q = (zz >> 1) ^ -(zz & 1), p + 3
            else:
                delta, q = _exact_varint(buf, p + 1, end)
            # The offset delta, then the key's length.
            if buf[q] < 0x80:
                r = q + 1
            elif 0 < buf[q + 1] < 0x80:
                r = q + 2
            else:
                r = _exact_varint(buf, q, end)[1]
            b = buf[r]
            if b < 0x80 and not b & 1:
                r += 1 + (b >> 1)
            else:
                key_length, r = _exact_varint(buf, r, end)
                if key_length >= 0:
                    r += key_length
                elif key_length != -1:
                    return None
            b = buf[r]
            if b < 0x80 and not b & 1:
                r += 1 + (b >> 1)
            elif 0 < buf[r + 1] < 0x80 and not b & 1:
                r += 2 + (((b & 0x7F) | (buf[r + 1] << 7)) >> 1)
            else:
                value_length, r = _exact_varint(buf, r, end)
                if value_length >= 0:
                    r += value_length
                elif value_length != -1:
                    return None
            if r == end - 1 and buf[r] == 0:
                pass  # no headers: the common case
            else:
                header_count, r = _exact_varint(buf, r, end)
                if not 0 <= header_count <= end - r:
                    return None
                for _h in range(header_count):
                    name_length, r = _exact_varint(buf, r, end)
                    if name_length < 0:
                        return None
                    # A name is decoded and encoded again by rebuild_batch: UTF-8 only.
                    buf[r : r + name_length].decode("utf-8")
                    r += name_length
                    value_length, r = _exact_varint(buf, r, end)
                    if value_length >= 0:
                        r += value_length
                    elif value_length != -1:
                        return None
                if r != end:
                    return None
            timestamps.append(header.max_timestamp if log_append_time else old_base + delta)
            deltas.append(delta)
            fields.append(q)
            plain.append(attributes == 0)
    except (IndexError, UnicodeDecodeError, CorruptRecordError, _NotAsWeWrite):
        return None
    with_horizon = horizon is not None and horizon >= 0
    base_timestamp = horizon if with_horizon and horizon is not None else timestamps[0]
    if log_append_time:
        max_timestamp = header.max_timestamp
    else:
        max_timestamp = max(NO_TIMESTAMP, max(timestamps))
    parts: list[bytes] = []
    for i, timestamp, delta, q, as_written in zip(
        kept, timestamps, deltas, fields, plain, strict=True
    ):
        new_delta = timestamp - base_timestamp
        if as_written and new_delta == delta:
            parts.append(buf[starts[i] : starts[i + 1]])
        else:
            body = b"\x00" + encode_varint(new_delta) + buf[q : starts[i + 1]]
            parts.append(encode_varint(len(body)))
            parts.append(body)
    return _assemble(
        header,
        _attributes(header, with_horizon),
        base_timestamp,
        max_timestamp,
        b"".join(parts),
        len(kept),
    )


def filter_batch(
    buf: bytes | memoryview,
    pos: int,
    *,
    offset_map: KeyOffsets,
    now_ms: int,
    delete_retention_ms: int,
    last_data_offsets: Mapping[int, int],
    upper_bound_offset: int,
) -> tuple[BatchHeader, FilterResult]:
    """The cleaner's verdict on the batch at ``pos`` of ``buf`` (module docstring): its
    header and what to write in its place. Checks the CRC; a compressed batch is filtered
    decompressed and rebuilt with its codec (module docstring).
    Raises :class:`CorruptRecordError` for a batch that does not parse: each record is read up
    to its value's null mark, and a kept one whole when the batch is rebuilt."""
    if not isinstance(buf, bytes):
        buf = bytes(buf)  # the kept records' bytes are slices of it
    header = check_batch(buf, pos)
    if header.compression and not header.is_control:
        plain = decompressed_batch(buf, pos)
        _plain_header, result = filter_batch(
            plain,
            0,
            offset_map=offset_map,
            now_ms=now_ms,
            delete_retention_ms=delete_retention_ms,
            last_data_offsets=last_data_offsets,
            upper_bound_offset=upper_bound_offset,
        )
        if result.copied:
            kept_data = buf[pos : pos + header.size]
        elif result.records_kept:
            kept_data = compressed_batch(result.data, header.compression)
        else:
            kept_data = result.data  # gone, or Kafka's empty header (uncompressed)
        return header, FilterResult(
            kept_data,
            result.records_read,
            result.records_kept,
            result.keyless_dropped,
            result.copied,
        )
    size = header.size
    if header.is_control:
        count = header.record_count
        return header, FilterResult(bytes(buf[pos : pos + size]), count, count, 0, True)
    latest = offset_map.latest_offset
    horizon = delete_horizon(header)
    get = offset_map.get
    walk = walk_records(buf, pos, header)
    offsets, keys, tombstones = walk.offsets, walk.keys, walk.tombstones
    # Decided on the keys and null marks alone, first as if no record were a tombstone (one
    # expression a record: the cleaner's second hottest loop), then the tombstones amended.
    if (
        isinstance(offset_map, OffsetMap)
        and not walk.keyless
        and 0 <= header.base_offset
        and header.last_offset <= latest
    ):
        # Every record keyed and within the map: kept if at or after its key's latest (-1 for
        # a key the map lacks, so kept), asked in C.
        keep = list(map(ge, offsets, offset_map.offsets_of(keys)))  # type: ignore[arg-type]
    else:
        keep = [
            offset > latest
            or (key is not None and ((found := get(key)) is None or offset >= found))
            for offset, key in zip(offsets, keys, strict=True)
        ]
    keyless = walk.keyless
    if keyless and header.last_offset > latest:
        # A keyless record after the map's latest offset stays and is not counted.
        keyless = sum(
            1 for offset, key in zip(offsets, keys, strict=True) if key is None and offset <= latest
        )
    tombstones_kept = False
    for i in tombstones:
        if keep[i]:
            if offsets[i] <= latest and horizon is not None and now_ms >= horizon:
                keep[i] = False
            else:
                tombstones_kept = True
    read = len(keep)
    kept_count = keep.count(True)
    if kept_count:
        needs_horizon = tombstones_kept and horizon is None
        if kept_count == read and not needs_horizon:
            return header, FilterResult(bytes(buf[pos : pos + size]), read, read, keyless, True)
        new_horizon = now_ms + delete_retention_ms if needs_horizon else horizon
        kept = list(compress(range(read), keep))
        data = _rebuild_from_bytes(buf, header, walk.starts, kept, new_horizon)
        if data is None:
            _header, records = decode_batch(buf, pos)
            data = rebuild_batch(header, [records[i] for i in kept], new_horizon)
        return header, FilterResult(data, read, kept_count, keyless, False)
    producer_last = last_data_offsets.get(header.producer_id) if header.producer_id >= 0 else None
    if producer_last == header.last_offset or header.next_offset == upper_bound_offset:
        return header, FilterResult(empty_batch(header), read, 0, keyless, False)
    return header, FilterResult(b"", read, 0, keyless, False)
