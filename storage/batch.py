"""Kafka's record batch, format v2 (magic 2), byte for byte.

A log file is a plain sequence of record batches. One batch, all integers big-endian::

    offset  size  field
    0       8     base_offset             offset of the first record
    8       4     batch_length            bytes after this field (the batch's size - 12)
    12      4     partition_leader_epoch  leader epoch of the leader that appended it
    16      1     magic                   2
    17      4     crc                     CRC-32C (Castagnoli) of bytes 21..end, unsigned
    21      2     attributes              bits 0-2 compression (0 = none), bit 3 timestamp
                                          type (1 = LogAppendTime), bit 4 transactional,
                                          bit 5 control
    23      4     last_offset_delta       last record's offset - base_offset
    27      8     base_timestamp          first record's timestamp (ms)
    35      8     max_timestamp           largest timestamp in the batch (ms)
    43      8     producer_id             -1 without an idempotent producer
    51      2     producer_epoch          -1 without
    53      4     base_sequence           -1 without
    57      4     record_count
    61      ...   records

The base offset and the partition leader epoch lie outside the CRC, so a leader stamps them
on a batch built elsewhere without recomputing it. Each record, with varints written as
zigzag LEB128 as in protobuf::

    length           varint  bytes of the record after this field
    attributes       int8    unused, 0
    timestamp_delta  varlong timestamp - base_timestamp
    offset_delta     varint  offset - base_offset
    key_length       varint  -1 for a null key
    key              bytes
    value_length     varint  -1 for a null value (a tombstone)
    value            bytes
    header_count     varint
    headers          header_count x (key_length varint, key utf-8, value_length varint,
                     value bytes; -1 = null value)

A compressed batch (a codec id in attributes bits 0-2: 1 gzip, 2 snappy, 3 lz4, 4 zstd) holds
the same records, back to back, compressed as one stream after the header
(:mod:`storage.compression`); the header, its record count and the CRC (over the compressed
bytes) are as above. The reader decompresses them, bounded.

The builder (:func:`build_batch`) and the reader (:func:`read_header`, :func:`check_batch`,
:func:`decode_batch`) are separate. The reader raises one error, :class:`CorruptRecordError`,
for every byte string it cannot parse, saying what it expected and what it found.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import crc32c as _crc32c

from storage.compression import compress, decompress
from storage.errors import CorruptRecordError

# One struct for the whole header: base_offset, batch_length, partition_leader_epoch, magic,
# crc, attributes, last_offset_delta, base_timestamp, max_timestamp, producer_id,
# producer_epoch, base_sequence, record_count.
BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = BATCH_HEADER.size  # 61
# base_offset and batch_length: the part of a batch that batch_length does not count.
LOG_OVERHEAD = struct.calcsize(">qi")  # 12
# The header fields before the magic byte and the CRC.
MAGIC_OFFSET = struct.calcsize(">qii")  # 16
CRC_OFFSET = MAGIC_OFFSET + 1  # 17
# The CRC covers attributes..end.
ATTRIBUTES_OFFSET = CRC_OFFSET + struct.calcsize(">I")  # 21
# The smallest batch_length: a header with no records.
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD  # 49

_BASE_OFFSET = struct.Struct(">q")
_LEADER_EPOCH = struct.Struct(">i")

MAGIC = 2
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C (Castagnoli) as Kafka computes it for the batch checksum."""
    return int(_crc32c.crc32c(data))


Header = tuple[str, bytes | None]


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A record to put into a batch: what a producer sends, before it has an offset."""

    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: tuple[Header, ...] = ()


@dataclass(frozen=True, slots=True)
class Record:
    """A record read back from a batch, with its offset."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The 61-byte header of one batch, as read (see the layout at the top of the module)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch takes in the log."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_MASK)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


# ---------------------------------------------------------------------------------------------
# Varints
# ---------------------------------------------------------------------------------------------

# Precomputed encodings of the small values that make up most of a record (lengths up to a
# few KiB, offset deltas, small timestamp deltas): a list lookup instead of a loop.
_SMALL_MIN = -(1 << 13)
_SMALL_MAX = 1 << 13  # zigzag of [-8192, 8192) fits in two bytes


def _encode_varint_slow(value: int) -> bytes:
    zz = (value << 1) ^ (value >> 63)
    zz &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while zz > 0x7F:
        out.append((zz & 0x7F) | 0x80)
        zz >>= 7
    out.append(zz)
    return bytes(out)


_SMALL_VARINTS = [_encode_varint_slow(v) for v in range(_SMALL_MIN, _SMALL_MAX)]


def encode_varint(value: int) -> bytes:
    """Zigzag LEB128, as Kafka's ``ByteUtils.writeVarint``/``writeVarlong``."""
    if _SMALL_MIN <= value < _SMALL_MAX:
        return _SMALL_VARINTS[value - _SMALL_MIN]
    return _encode_varint_slow(value)


def decode_varint(buf: bytes | bytearray | memoryview, pos: int, end: int) -> tuple[int, int]:
    """Reads a zigzag varint at ``pos`` (at most 10 bytes, not past ``end``): (value, new pos)."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise CorruptRecordError("a varint runs past the end of the batch", pos)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise CorruptRecordError("a varint is longer than 10 bytes", pos)
    return (result >> 1) ^ -(result & 1), pos


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


class RecordFields(Protocol):
    """What a record's encoding needs: :class:`NewRecord` and :class:`Record` both have it."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def headers(self) -> tuple[Header, ...]: ...


def encode_record(record: RecordFields, offset_delta: int, base_timestamp: int) -> bytes:
    """One record in a batch's layout (length first), at ``offset_delta`` from the batch's
    base offset and its timestamp as a delta from ``base_timestamp``."""
    key = record.key
    value = record.value
    parts = [
        b"\x00",  # attributes
        encode_varint(record.timestamp - base_timestamp),
        encode_varint(offset_delta),
    ]
    if key is None:
        parts.append(b"\x01")  # varint -1
    else:
        parts.append(encode_varint(len(key)))
        parts.append(key)
    if value is None:
        parts.append(b"\x01")
    else:
        parts.append(encode_varint(len(value)))
        parts.append(value)
    headers = record.headers
    parts.append(encode_varint(len(headers)))
    for name, hvalue in headers:
        name_bytes = name.encode("utf-8")
        parts.append(encode_varint(len(name_bytes)))
        parts.append(name_bytes)
        if hvalue is None:
            parts.append(b"\x01")
        else:
            parts.append(encode_varint(len(hvalue)))
            parts.append(hvalue)
    body = b"".join(parts)
    return encode_varint(len(body)) + body


def build_batch(
    records: Sequence[NewRecord],
    *,
    base_offset: int = 0,
    partition_leader_epoch: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    is_transactional: bool = False,
    compression: int = 0,
    level: int | None = None,
) -> bytes:
    """One v2 batch holding ``records`` at offsets ``base_offset``, ``+1``, ..., its records
    section compressed with codec ``compression`` at ``level`` (:mod:`storage.compression`;
    0: uncompressed, None: Kafka's default level).

    The base timestamp is the first record's, as Kafka's producer writes it.
    """
    assert records, "a batch holds at least one record"
    base_timestamp = records[0].timestamp
    max_timestamp = max(r.timestamp for r in records)
    body = b"".join([encode_record(r, delta, base_timestamp) for delta, r in enumerate(records)])
    if compression:
        body = compress(compression, body, level)
    return assemble_batch(
        body,
        base_offset=base_offset,
        last_offset_delta=len(records) - 1,
        record_count=len(records),
        base_timestamp=base_timestamp,
        max_timestamp=max_timestamp,
        attributes=(TRANSACTIONAL_MASK if is_transactional else 0) | compression,
        partition_leader_epoch=partition_leader_epoch,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
    )


_TAIL = struct.Struct(">hiqqqhii")  # attributes .. record_count: the fields the CRC covers
_HEAD = struct.Struct(">qiibI")  # base_offset .. crc


def assemble_batch(
    body: bytes,
    *,
    base_offset: int,
    last_offset_delta: int,
    record_count: int,
    base_timestamp: int,
    max_timestamp: int,
    attributes: int = 0,
    partition_leader_epoch: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
) -> bytes:
    """A whole v2 batch: the header with these fields and the CRC-32C, then ``body`` (its
    records, :func:`encode_record`'s, back to back). The offsets its records hold are the
    caller's: a cleaned batch keeps its last offset with records gone from inside it."""
    tail = (
        _TAIL.pack(
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
        )
        + body
    )
    batch_length = HEADER_SIZE - LOG_OVERHEAD + len(body)
    head = _HEAD.pack(base_offset, batch_length, partition_leader_epoch, MAGIC, crc32c(tail))
    return head + tail


def stamp(batch: bytearray, base_offset: int, partition_leader_epoch: int) -> None:
    """Sets a batch's base offset and leader epoch in place; both lie outside the CRC."""
    _BASE_OFFSET.pack_into(batch, 0, base_offset)
    _LEADER_EPOCH.pack_into(batch, LOG_OVERHEAD, partition_leader_epoch)


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """The header of the batch at ``pos``; checks the length and magic, not the CRC.

    Raises :class:`CorruptRecordError` if the header is cut short, the length is impossible,
    the magic is not 2, or the batch runs past the end of ``buf``.
    """
    return check_header(buf, pos, position=pos, room=len(buf) - pos, end="the end")


def check_header(
    buf: bytes | bytearray | memoryview, off: int, *, position: int, room: int, end: str
) -> BatchHeader:
    """The header at ``buf[off:]``, with the checks of :func:`read_header`: the batch must fit
    in the ``room`` bytes that follow it before ``end``. Errors name file position
    ``position`` (a file scan reads the file through a window: ``off`` is not ``position``)."""
    available = len(buf) - off
    if available < HEADER_SIZE:
        raise CorruptRecordError(
            f"expected a {HEADER_SIZE}-byte batch header, found {max(available, 0)} bytes",
            position,
        )
    header = BatchHeader(*BATCH_HEADER.unpack_from(buf, off))
    if header.magic != MAGIC:
        raise CorruptRecordError(f"expected magic {MAGIC}, found {header.magic}", position)
    if header.batch_length < MIN_BATCH_LENGTH:
        raise CorruptRecordError(
            f"expected a batch length of at least {MIN_BATCH_LENGTH}, found {header.batch_length}",
            position,
        )
    if header.size > room:
        raise CorruptRecordError(
            f"batch of {header.size} bytes runs past {end} ({room} bytes left)", position
        )
    if header.record_count < 0 or header.last_offset_delta < 0:
        raise CorruptRecordError(
            f"expected non-negative record count and offset delta, found "
            f"{header.record_count} and {header.last_offset_delta}",
            position,
        )
    return header


def check_batch(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """:func:`read_header` plus the CRC check: the batch's bytes are what was written."""
    header = read_header(buf, pos)
    view = memoryview(buf)[pos + ATTRIBUTES_OFFSET : pos + header.size]
    actual = crc32c(view)
    if actual != header.crc:
        raise CorruptRecordError(
            f"expected CRC-32C {header.crc:#010x}, computed {actual:#010x}", pos
        )
    return header


def _read_bytes(
    buf: bytes | bytearray | memoryview, pos: int, end: int, what: str
) -> tuple[bytes | None, int]:
    length, pos = decode_varint(buf, pos, end)
    if length == -1:
        return None, pos
    if length < 0 or pos + length > end:
        raise CorruptRecordError(f"{what} of {length} bytes does not fit in its record", pos)
    return bytes(buf[pos : pos + length]), pos + length


def decode_batch(
    buf: bytes | bytearray | memoryview, pos: int = 0
) -> tuple[BatchHeader, list[Record]]:
    """Checks and decodes the batch at ``pos`` into its header and records; a compressed
    batch's records are decompressed (bounded: :func:`storage.compression.decompress`), and
    positions in the errors about them are positions in the decompressed records."""
    header = check_batch(buf, pos)
    if header.compression:
        body = records_of(buf, pos, header)
        return header, _decode_records(header, body, 0, len(body))
    return header, _decode_records(header, buf, pos + HEADER_SIZE, pos + header.size)


def records_of(buf: bytes | bytearray | memoryview, pos: int, header: BatchHeader) -> bytes:
    """The records section of the (checked) batch at ``pos``, decompressed if its codec says
    so: the records back to back, as an uncompressed batch holds them after its header."""
    with memoryview(buf) as view:
        section = view[pos + HEADER_SIZE : pos + header.size]
        if header.compression:
            return decompress(header.compression, section)
        return bytes(section)


def decompressed_batch(buf: bytes | bytearray | memoryview, pos: int = 0) -> bytes:
    """The (checked) batch at ``pos`` as an uncompressed batch: the same header fields, its
    codec bits cleared, its records decompressed, a new length and CRC. A batch that is not
    compressed comes back as its bytes."""
    header = read_header(buf, pos)
    if not header.compression:
        return bytes(buf[pos : pos + header.size])
    return _reassembled(header, records_of(buf, pos, header), header.attributes & ~COMPRESSION_MASK)


def compressed_batch(batch: bytes, codec: int, level: int | None = None) -> bytes:
    """The uncompressed batch ``batch`` with its records compressed with ``codec`` at
    ``level`` (Kafka's default when None); codec 0 returns it as it is."""
    header = read_header(batch)
    assert not header.compression, "compressed_batch takes an uncompressed batch"
    if not codec:
        return batch
    body = compress(codec, memoryview(batch)[HEADER_SIZE : header.size], level)
    return _reassembled(header, body, header.attributes | codec)


def _reassembled(header: BatchHeader, body: bytes, attributes: int) -> bytes:
    return assemble_batch(
        body,
        base_offset=header.base_offset,
        last_offset_delta=header.last_offset_delta,
        record_count=header.record_count,
        base_timestamp=header.base_timestamp,
        max_timestamp=header.max_timestamp,
        attributes=attributes,
        partition_leader_epoch=header.partition_leader_epoch,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
    )


def batch_records(
    buf: bytes | bytearray | memoryview, pos: int, header: BatchHeader, from_offset: int
) -> Iterator[tuple[Record, int, bool]]:
    """The records of the (checked) batch at ``pos`` with offsets at or after ``from_offset``,
    decoded one at a time as the caller takes them: (record, its bytes in the records section,
    decompressed for a compressed batch, whether more records follow it in the batch). A
    reader that stops early decodes no more than it took; a compressed batch is decompressed
    first (bounded). The records below ``from_offset`` are stepped over by their lengths alone
    in a batch whose offsets are dense (a producer's: deltas 0..n-1), so a read that resumes
    inside a large compressed batch does not decode what it already read. Raises
    :class:`CorruptRecordError` as :func:`decode_batch` does, for what it reaches."""
    if header.compression:
        body = records_of(buf, pos, header)
        return _iter_records(header, body, 0, len(body), from_offset)
    return _iter_records(header, buf, pos + HEADER_SIZE, pos + header.size, from_offset)


def _decode_records(
    header: BatchHeader, buf: bytes | bytearray | memoryview, cursor: int, end: int
) -> list[Record]:
    """The ``header.record_count`` records in ``buf[cursor:end]``, which they must fill."""
    return [r for r, _size, _more in _iter_records(header, buf, cursor, end, header.base_offset)]


def _iter_records(
    header: BatchHeader,
    buf: bytes | bytearray | memoryview,
    cursor: int,
    end: int,
    from_offset: int,
) -> Iterator[tuple[Record, int, bool]]:
    """:func:`batch_records` over ``buf[cursor:end]``, which the records must fill."""
    log_append_time = header.is_log_append_time
    count = header.record_count
    first = 0
    skip = from_offset - header.base_offset
    if skip > 0 and count == header.last_offset_delta + 1:
        # Dense: record i has offset delta i (checked below at the first record decoded).
        first = min(skip, count)
        for _ in range(first):
            length, cursor = decode_varint(buf, cursor, end)
            if length < 1 or cursor + length > end:
                raise CorruptRecordError(
                    f"a record of {length} bytes does not fit the batch", cursor
                )
            cursor += length
    for index in range(first, count):
        start = cursor
        length, cursor = decode_varint(buf, cursor, end)
        record_end = cursor + length
        if length < 1 or record_end > end:
            raise CorruptRecordError(f"a record of {length} bytes does not fit the batch", cursor)
        cursor += 1  # attributes
        ts_delta, cursor = decode_varint(buf, cursor, record_end)
        offset_delta, cursor = decode_varint(buf, cursor, record_end)
        if index == first and first and offset_delta != first:
            raise CorruptRecordError(
                f"expected offset delta {first} after {first} records of a batch of "
                f"{count} records and last offset delta {header.last_offset_delta}, "
                f"found {offset_delta}",
                cursor,
            )
        if offset_delta < 0 or offset_delta > header.last_offset_delta:
            raise CorruptRecordError(
                f"offset delta {offset_delta} is outside [0, {header.last_offset_delta}]", cursor
            )
        if header.base_offset + offset_delta < from_offset:
            cursor = record_end  # a compacted batch's record below the reader's offset
            continue
        key, cursor = _read_bytes(buf, cursor, record_end, "a key")
        value, cursor = _read_bytes(buf, cursor, record_end, "a value")
        header_count, cursor = decode_varint(buf, cursor, record_end)
        if header_count < 0 or header_count > record_end - cursor:
            raise CorruptRecordError(f"impossible header count {header_count}", cursor)
        headers: list[Header] = []
        for _h in range(header_count):
            name, cursor = _read_bytes(buf, cursor, record_end, "a header name")
            if name is None:
                raise CorruptRecordError("expected a header name, found null", cursor)
            try:
                name_text = name.decode("utf-8")
            except UnicodeDecodeError:
                raise CorruptRecordError("a header name is not UTF-8", cursor) from None
            hvalue, cursor = _read_bytes(buf, cursor, record_end, "a header value")
            headers.append((name_text, hvalue))
        if cursor != record_end:
            raise CorruptRecordError(
                f"expected a record to end at byte {record_end}, it ends at {cursor}", cursor
            )
        timestamp = header.max_timestamp if log_append_time else header.base_timestamp + ts_delta
        record = Record(header.base_offset + offset_delta, timestamp, key, value, tuple(headers))
        yield record, record_end - start, index < count - 1
    if cursor != end:
        raise CorruptRecordError(
            f"expected {header.record_count} records to fill the batch to byte {end}, "
            f"they end at {cursor}",
            cursor,
        )


def iter_batches(
    buf: bytes | bytearray | memoryview, pos: int = 0, *, verify: bool = True
) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each batch from ``pos`` to the end of ``buf``, checked if asked.

    Stops with :class:`CorruptRecordError` at the first batch that does not parse.
    """
    read = check_batch if verify else read_header
    end = len(buf)
    while pos < end:
        header = read(buf, pos)
        yield pos, header
        pos += header.size


_BASE_OFFSET_AND_LENGTH = struct.Struct(">qi")
_LAST_OFFSET_DELTA = struct.Struct(">i")
_LAST_OFFSET_DELTA_OFFSET = ATTRIBUTES_OFFSET + struct.calcsize(">h")  # 23


def batches_within(buf: bytes | bytearray | memoryview, limit_bytes: int) -> tuple[int, int]:
    """(end, next offset) of the whole batches at the start of ``buf`` that fit in
    ``limit_bytes``: the byte length they take and the offset after their last record.
    (0, -1) if not even the first fits. ``buf`` is whole batches the caller has checked (a log
    read): only the lengths and offsets of the headers are read, not the CRCs."""
    end = 0
    next_offset = -1
    size = min(len(buf), limit_bytes)
    while end + LOG_OVERHEAD <= size:
        base_offset, batch_length = _BASE_OFFSET_AND_LENGTH.unpack_from(buf, end)
        assert batch_length >= MIN_BATCH_LENGTH, "batches_within reads checked batches"
        batch_end = end + LOG_OVERHEAD + batch_length
        if batch_end > size:
            break
        last_delta = _LAST_OFFSET_DELTA.unpack_from(buf, end + _LAST_OFFSET_DELTA_OFFSET)[0]
        next_offset = base_offset + last_delta + 1
        end = batch_end
    return end, next_offset
