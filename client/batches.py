"""Kafka v2 record batches on the client: built for produce requests and read from fetch
answers (``Content-Type: application/vnd.kafka.batch``, docs/binary-records.md),
with aiokafka's Cython builder and reader.

Why aiokafka: its Cython ``DefaultRecordBatchBuilder`` and ``DefaultRecordBatch`` build and
read about 3 million 100-byte records a second each way on the development machine, ten times
a loop in Python (see the commit that added this module for the figures); they are Kafka's
format as Kafka's Java client writes it (tests/unit/test_client_batches.py checks them against
Kafka's own bytes), and the client must not import ``storage/`` (the server's own batch code).
``CYTHON`` says whether the C versions were found; without them aiokafka falls back to its
pure-Python twins, which give the same bytes, only slower.

The bytes (Kafka's ``DefaultRecordBatch``, magic 2; all integers big-endian)::

    base offset        int64   0 from the producer; the leader writes the real one
    batch length       int32   the bytes after this field
    leader epoch       int32   -1 from the producer; the leader writes its epoch
    magic              int8    2
    crc                uint32  CRC-32C of everything after it (attributes to the end)
    attributes         int16   bits 0-2 compression (0: none), 3 timestamp type
                               (1: LogAppendTime), 4 transactional, 5 control
    last offset delta  int32   record count - 1
    first timestamp    int64   the first record's; records carry deltas from it
    max timestamp      int64
    producer id        int64   -1: not idempotent
    producer epoch     int16
    base sequence      int32   the first record's sequence (-1: not idempotent)
    record count       int32
    records            each: length varint, attributes int8, timestamp delta varlong,
                       offset delta varint, key (varint length, -1 null, bytes), value
                       (likewise), header count varint, headers (name: varint length,
                       UTF-8; value: varint length, -1 null, bytes); varints zigzag

A compressed batch (the producer's ``compression.type``) is built uncompressed, then its records
section, every byte after the 61-byte header, is replaced by that section compressed; the
attributes take the codec id in bits 0-2, the length and the CRC-32C are computed again. The
header's other fields (counts, timestamps, producer fields) describe the records, not their
bytes, and stay as they were.

A produce request carries exactly one batch (Kafka's rule since produce v3); a fetch answer
carries whole stored batches as they lie on the leader's disk, the first of which may start
below the offset asked for (the reader skips those records, as Kafka's consumer does).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

import crc32c as _crc32c

# aiokafka ships .pyi files but no py.typed marker, so mypy cannot use them.
from aiokafka.errors import CorruptRecordException, UnsupportedCodecError  # type: ignore[import-untyped]
from aiokafka.record.default_records import (  # type: ignore[import-untyped]
    DefaultRecordBatch,
    DefaultRecordBatchBuilder,
)

from client.protocol import CORRUPT_MESSAGE, UNSUPPORTED_COMPRESSION_TYPE, ApiError
from storage import compression

# True when aiokafka's Cython classes are the ones in use (the fast path).
CYTHON = DefaultRecordBatchBuilder.__module__.startswith("aiokafka.record._crecords") and (
    DefaultRecordBatch.__module__.startswith("aiokafka.record._crecords")
)

MAGIC = 2
# The v2 header, Kafka's DefaultRecordBatch.RECORD_BATCH_OVERHEAD.
RECORD_BATCH_OVERHEAD = 61
# The base offset and the batch length field: the bytes a batch's length does not count
# (Kafka's LOG_OVERHEAD).
_LENGTH = struct.Struct(">i")
_LENGTH_OFFSET = struct.calcsize(">q")
LOG_OVERHEAD = _LENGTH_OFFSET + _LENGTH.size
_MAGIC_OFFSET = struct.calcsize(">qii")
# The CRC, then the attributes: the CRC covers the attributes to the end of the batch.
_CRC = struct.Struct(">I")
_CRC_OFFSET = _MAGIC_OFFSET + struct.calcsize(">b")
_ATTRIBUTES = struct.Struct(">h")
_ATTRIBUTES_OFFSET = _CRC_OFFSET + _CRC.size
_CODEC_MASK = 0x07
# Where the producer id, epoch and base sequence start (">qhi" from there).
PRODUCER_ID_AT = struct.calcsize(">qiibIhiqq")
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
# The builder's own bound on a batch: never reached, since the producer's accumulator decides
# what a request holds (batch.size, max.request.size) before it builds.
_BUILDER_SIZE_MAX = 2**31 - 1
# The header list of a record without headers (aiokafka's builder wants a list; never changed).
NO_HEADERS: list[tuple[str, bytes | None]] = []

Header = tuple[str, bytes | None]


class ConsumerRecord(NamedTuple):
    """One record as stored: key, value and header values are bytes (or None)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


def build(
    records: Sequence[tuple[Any, ...]],
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    *,
    key: int = 0,
    value: int = 1,
    headers: int = 2,
    timestamp: int = 3,
    codec: int = compression.NONE,
    level: int | None = None,
) -> bytes:
    """One v2 batch of ``records`` (offset deltas 0..n-1, base offset 0, leader epoch -1),
    with the idempotent producer's id, epoch and first sequence in its header, its records
    compressed with ``codec`` at ``level`` (storage/compression.py's ids and Kafka's levels;
    None: the codec's default) unless ``codec`` is 0. Each record is a tuple; ``key``,
    ``value``, ``headers`` and ``timestamp`` name the positions of its key and value (bytes
    or None), its headers (a list of (str, bytes or None)) and its timestamp (ms). Raises
    ValueError for no records, TypeError for a field of the wrong type."""
    if not records:
        raise ValueError("a record batch holds at least one record")
    builder = DefaultRecordBatchBuilder(
        MAGIC, 0, 0, producer_id, producer_epoch, base_sequence, _BUILDER_SIZE_MAX
    )
    append = builder.append
    for offset, record in enumerate(records):
        append(offset, record[timestamp], record[key], record[value], record[headers])
    batch = bytes(builder.build())
    return batch if codec == compression.NONE else compressed(batch, codec, level)


def compressed(batch: bytes, codec: int, level: int | None = None) -> bytes:
    """The uncompressed batch ``batch`` (one, as :func:`build` makes it) with its records
    section compressed with ``codec`` at ``level`` (module text): the codec in the
    attributes, a new length and CRC-32C. A programmer's error for a batch that is compressed
    already, or for codec 0 or an unknown one."""
    (attributes,) = _ATTRIBUTES.unpack_from(batch, _ATTRIBUTES_OFFSET)
    assert not attributes & _CODEC_MASK, "compressed() takes an uncompressed batch"
    body = compression.compress(codec, memoryview(batch)[RECORD_BATCH_OVERHEAD:], level)
    out = bytearray(batch[:RECORD_BATCH_OVERHEAD])
    out += body
    _LENGTH.pack_into(out, _LENGTH_OFFSET, len(out) - LOG_OVERHEAD)
    _ATTRIBUTES.pack_into(out, _ATTRIBUTES_OFFSET, attributes | codec)
    _CRC.pack_into(out, _CRC_OFFSET, _crc32c.crc32c(memoryview(out)[_ATTRIBUTES_OFFSET:]))
    return bytes(out)


class BatchReader:
    """Reads the records of a fetch answer's batches, a slice of the body at a time, so that a
    large answer can be decoded between other work on the event loop.

    Records below ``from_offset`` are skipped; control batches hold no records for the
    application and are skipped whole. Every batch is checked before its records are read:
    its length within the body, magic 2, CRC-32C (Kafka's ``check.crcs``, on by default), and
    the framing of each record; a failure raises ApiError CORRUPT_MESSAGE naming the batch's
    place and what was wrong (UNSUPPORTED_COMPRESSION_TYPE for a codec aiokafka cannot read),
    and nothing of that batch is returned.
    """

    __slots__ = ("_topic", "_partition", "_from", "_body", "_pos", "next_offset")

    def __init__(self, topic: str, partition: int, body: bytes, from_offset: int) -> None:
        self._topic = topic
        self._partition = partition
        self._from = from_offset
        self._body = body
        self._pos = 0
        # The offset after the last batch read so far (``from_offset`` before any).
        self.next_offset = from_offset

    @property
    def done(self) -> bool:
        """True once every batch of the body is read."""
        return self._pos >= len(self._body)

    def read(self, bytes_max: int) -> list[ConsumerRecord]:
        """The records of the next whole batches: at least one batch, then more while they
        end within ``bytes_max`` bytes of the body from where this read started."""
        out: list[ConsumerRecord] = []
        append = out.append
        make = tuple.__new__  # the NamedTuple's own __new__ is a Python function: too slow
        cls = ConsumerRecord
        topic, partition, first = self._topic, self._partition, self._from
        body = self._body
        size = len(body)
        view = memoryview(body)
        pos = start = self._pos
        while pos < size and (pos == start or pos - start < bytes_max):
            if size - pos < RECORD_BATCH_OVERHEAD:
                raise _corrupt(
                    f"{size - pos} bytes at byte {pos} of the answer, fewer than a batch header"
                )
            (length,) = _LENGTH.unpack_from(body, pos + _LENGTH_OFFSET)
            end = pos + LOG_OVERHEAD + length
            if length < RECORD_BATCH_OVERHEAD - LOG_OVERHEAD or end > size:
                raise _corrupt(
                    f"the batch at byte {pos} of the answer claims {length} bytes, where "
                    f"{size - pos - LOG_OVERHEAD} follow (a batch cut short, or not a batch)"
                )
            magic = body[pos + _MAGIC_OFFSET]
            if magic != MAGIC:
                raise _corrupt(f"the batch at byte {pos} has magic {magic}, where 2 is read")
            batch = DefaultRecordBatch(view[pos:end])
            pos = end
            base = batch.base_offset
            if not batch.validate_crc():
                raise _corrupt(f"the batch at offset {base} fails its CRC-32C check")
            next_offset = batch.next_offset
            if batch.is_control_batch or next_offset <= first:
                self.next_offset = max(self.next_offset, next_offset)
                continue
            try:
                for record in batch:
                    offset = record.offset
                    if offset < first:
                        continue
                    headers = record.headers
                    append(
                        make(
                            cls,
                            (
                                topic,
                                partition,
                                offset,
                                record.timestamp,
                                record.key,
                                record.value,
                                tuple(headers) if headers else (),
                            ),
                        )
                    )
            except CorruptRecordException as exc:
                raise _corrupt(f"the batch at offset {base}: {exc}") from None
            except UnsupportedCodecError as exc:
                raise ApiError(
                    UNSUPPORTED_COMPRESSION_TYPE, f"the batch at offset {base}: {exc}"
                ) from None
            self.next_offset = max(self.next_offset, next_offset)
        self._pos = pos
        return out


def read_all(topic: str, partition: int, body: bytes, from_offset: int) -> list[ConsumerRecord]:
    """Every record at or above ``from_offset`` in a fetch answer's body (see BatchReader)."""
    return BatchReader(topic, partition, body, from_offset).read(len(body))


def _corrupt(message: str) -> ApiError:
    return ApiError(CORRUPT_MESSAGE, message)
