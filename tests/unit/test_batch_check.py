"""The leader's check of a produced batch (storage/batch_check.py): Kafka's vectors and our
builder's batches pass; each way a batch can be wrong is refused as its kind; a batch that
passes decodes once stamped (the property that keeps a corrupt batch out of the log)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.batch import (
    ATTRIBUTES_OFFSET,
    HEADER_SIZE,
    NewRecord,
    build_batch,
    check_batch,
    crc32c,
    decode_batch,
    encode_varint,
)
from storage.batch_check import (
    CheckedBatch,
    InvalidBatchError,
    UnsupportedCompressionError,
    check_produce_batch,
)
from storage.errors import CorruptRecordError

DATA = Path(__file__).parents[1] / "data"
VECTORS: list[dict[str, Any]] = json.loads((DATA / "kafka_v2_batches.json").read_text())["batches"]
NOW_MS = 1_700_000_000_000


# -- a hand encoder, so each field can be made wrong ---------------------------------------------


def record_bytes(
    offset_delta: int,
    *,
    timestamp_delta: int = 0,
    key: bytes | None = None,
    value: bytes | None = b"v",
    headers: tuple[tuple[bytes | None, bytes | None], ...] = (),
    key_length: int | None = None,
    header_count: int | None = None,
    length_change: int = 0,
    trailing: bytes = b"",
) -> bytes:
    """One record; the ``*_length``/``*_count``/``length_change`` arguments lie about it."""
    parts = [b"\x00", encode_varint(timestamp_delta), encode_varint(offset_delta)]
    if key is None:
        parts.append(encode_varint(-1 if key_length is None else key_length))
    else:
        parts += [encode_varint(len(key) if key_length is None else key_length), key]
    parts += [b"\x01"] if value is None else [encode_varint(len(value)), value]
    parts.append(encode_varint(len(headers) if header_count is None else header_count))
    for name, hvalue in headers:
        parts += [b"\x01"] if name is None else [encode_varint(len(name)), name]
        parts += [b"\x01"] if hvalue is None else [encode_varint(len(hvalue)), hvalue]
    body = b"".join(parts) + trailing
    return encode_varint(len(body) + length_change) + body


def batch_bytes(
    records: list[bytes],
    *,
    count: int | None = None,
    last_offset_delta: int | None = None,
    attributes: int = 0,
    base_timestamp: int = NOW_MS,
    max_timestamp: int | None = None,
    producer: tuple[int, int, int] = (-1, -1, -1),
    magic: int = 2,
) -> bytes:
    """A batch around ``records`` with a correct CRC (over whatever the fields say)."""
    n = len(records) if count is None else count
    body = b"".join(records)
    tail = struct.pack(
        ">hiqqqhii",
        attributes,
        n - 1 if last_offset_delta is None else last_offset_delta,
        base_timestamp,
        base_timestamp if max_timestamp is None else max_timestamp,
        *producer,
        n,
    )
    tail += body
    head = struct.pack(">qiibI", 0, HEADER_SIZE - 12 + len(body), 0, magic, crc32c(tail))
    return head + tail


def simple(n: int = 3, **fields: Any) -> bytes:
    return batch_bytes([record_bytes(i, timestamp_delta=i) for i in range(n)], **fields)


# -- what passes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[v["about"] for v in VECTORS])
def test_kafka_vectors_pass_and_stamp_to_the_same_records(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    checked = check_produce_batch(data)
    assert checked.record_count == len(vector["records"])
    assert checked.max_timestamp == max(r["timestamp"] for r in vector["records"])
    assert checked.header.producer_id == vector["producer_id"]
    stamped = checked.stamped(1000, 9)
    assert stamped[12:16] == struct.pack(">i", 9)
    assert stamped[16:] == data[16:], "the producer's bytes are stored as they came"
    header, records = decode_batch(stamped)
    assert header.base_offset == 1000 and header.partition_leader_epoch == 9
    expected_offsets = [1000 + r["offset"] - vector["base_offset"] for r in vector["records"]]
    assert [r.offset for r in records] == expected_offsets


def test_a_thousand_record_batch_of_our_builder_passes() -> None:
    records = [NewRecord(None, bytes(100), NOW_MS + i // 3) for i in range(1000)]
    checked = check_produce_batch(build_batch(records))
    assert (checked.record_count, checked.max_timestamp) == (1000, NOW_MS + 333)


def test_keys_headers_null_values_and_long_varints_pass() -> None:
    record = NewRecord(
        b"k" * 300, None, NOW_MS + 100_000, (("h1", b"x" * 9000), ("h2", None), ("é", b""))
    )
    data = build_batch([NewRecord(None, b"", NOW_MS), record] * 40)
    assert check_produce_batch(data).max_timestamp == NOW_MS + 100_000


def test_a_wrong_max_timestamp_is_set_to_the_records_largest_with_a_new_crc() -> None:
    data = simple(3, max_timestamp=NOW_MS + 99)
    checked = check_produce_batch(data)
    assert checked.max_timestamp == NOW_MS + 2
    stamped = checked.stamped(5, 1)
    assert check_batch(stamped).max_timestamp == NOW_MS + 2


# -- what is refused, and as what ----------------------------------------------------------------


def refused(data: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as raised:
        check_produce_batch(data)
    assert words in str(raised.value)


def test_a_body_shorter_than_a_header_is_corrupt() -> None:
    refused(b"", CorruptRecordError, "61-byte batch header, found 0")
    refused(simple()[:60], CorruptRecordError, "found 60")


def test_a_magic_other_than_2_is_corrupt() -> None:
    refused(simple(magic=1), CorruptRecordError, "expected magic 2, found 1")


def test_a_batch_length_that_is_not_the_body_length_is_corrupt() -> None:
    refused(simple()[:-1], CorruptRecordError, "runs past the end of the body")
    refused(simple() + simple(), CorruptRecordError, "send exactly one batch per request")
    short = bytearray(simple())
    struct.pack_into(">i", short, 8, 10)
    refused(bytes(short), CorruptRecordError, "batch length of at least 49")


def test_a_wrong_crc_is_corrupt() -> None:
    data = bytearray(simple())
    data[-1] ^= 0x01
    refused(bytes(data), CorruptRecordError, "expected CRC-32C")


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_a_codec_id_kafka_has_none_for_is_an_unsupported_compression(codec: int) -> None:
    refused(simple(attributes=codec), UnsupportedCompressionError, f"compression codec {codec}")


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_records_that_do_not_decompress_with_the_named_codec_are_corrupt(codec: int) -> None:
    name = ["gzip", "snappy", "lz4", "zstd"][codec - 1]
    refused(simple(attributes=codec), CorruptRecordError, f"{name} records:")


def test_control_transactional_and_log_append_time_batches_are_invalid() -> None:
    refused(simple(attributes=0x20), InvalidBatchError, "control records")
    refused(simple(attributes=0x10), InvalidBatchError, "transactional")
    refused(simple(attributes=0x08), InvalidBatchError, "LogAppendTime")


def test_a_record_count_that_disagrees_is_corrupt() -> None:
    refused(simple(3, count=0, last_offset_delta=-1), CorruptRecordError, "at least 1, found 0")
    refused(simple(3, last_offset_delta=5), CorruptRecordError, "expected last offset delta 2")
    refused(simple(3, count=4), CorruptRecordError, "record 3 runs past the end of the batch")
    refused(simple(3, count=2), CorruptRecordError, "expected 2 records to fill the batch")


def test_offset_deltas_must_be_0_to_n_minus_1_in_order() -> None:
    swapped = [record_bytes(0), record_bytes(2), record_bytes(1)]
    refused(batch_bytes(swapped), CorruptRecordError, "record 1 has offset delta 2, expected 1")
    repeated = [record_bytes(0), record_bytes(0)]
    refused(batch_bytes(repeated), CorruptRecordError, "offset delta 0, expected 1")


@pytest.mark.parametrize(
    ("record", "words"),
    [
        (record_bytes(0, length_change=+1), "record 0 claims 8 bytes; 7 are left"),
        (record_bytes(0, length_change=-1), "record 0 should end at byte"),
        (record_bytes(0, trailing=b"\x00"), "record 0 should end at byte"),
        (record_bytes(0, key=b"abc", key_length=40), "record 0 runs past the end"),
        (record_bytes(0, key=b"", key_length=-2), "key length of -2"),
        (record_bytes(0, value=b"x" * 200, length_change=+100_000), "claims"),
        (record_bytes(0, headers=((None, b"x"),)), "a header name of -1 bytes"),
        (record_bytes(0, headers=((b"\xff\xfe", b"x"),)), "header name that is not UTF-8"),
        (record_bytes(0, header_count=-1), "impossible header count -1"),
        (record_bytes(0, headers=((b"h", b"x"),), header_count=5), "header"),
    ],
)
def test_a_record_whose_framing_does_not_add_up_is_corrupt(record: bytes, words: str) -> None:
    refused(batch_bytes([record]), CorruptRecordError, words)


def test_a_varint_longer_than_kafka_reads_is_corrupt() -> None:
    body = record_bytes(0)[1:]
    # The record's length as a six-byte varint (an over-long encoding of a small number).
    six = bytes([(len(body) << 1) & 0x7F | 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])
    refused(batch_bytes([six + body]), CorruptRecordError, "longer than 5 bytes")


def test_timestamps_outside_a_non_negative_long_are_invalid() -> None:
    refused(simple(base_timestamp=-5), InvalidBatchError, "timestamp -5 is outside")
    late = batch_bytes([record_bytes(0, timestamp_delta=10)], base_timestamp=(1 << 63) - 5)
    refused(late, InvalidBatchError, "is outside")


def test_producer_fields_kafka_refuses_are_invalid() -> None:
    refused(simple(producer=(-2, -1, -1)), InvalidBatchError, "invalid producer id -2")
    refused(simple(producer=(7, 0, -1)), InvalidBatchError, "Invalid sequence number -1")
    refused(simple(producer=(7, -1, 0)), InvalidBatchError, "invalid producer epoch -1")
    assert check_produce_batch(simple(producer=(7, 0, 0))).header.producer_id == 7


# -- any bytes: refused as one of the three, or stored and readable --------------------------------


def _with_crc(data: bytearray) -> bytes:
    if len(data) >= HEADER_SIZE:
        struct.pack_into(">I", data, 17, crc32c(bytes(data[ATTRIBUTES_OFFSET:])))
    return bytes(data)


SEED = build_batch(
    [
        NewRecord(b"key", b"value", NOW_MS, (("h", b"v"),)),
        NewRecord(None, b"x" * 70, NOW_MS + 70),
        NewRecord(b"", None, NOW_MS - 3),
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 8),
)
def test_a_mutated_batch_is_refused_or_decodes_once_stamped(
    edits: list[tuple[int, int]], cut: int
) -> None:
    """Mutations past the CRC (it is recomputed, so the record walk is what judges them)."""
    data = bytearray(SEED)
    for position, value in edits:
        data[position] = value
    mutated = _with_crc(data[: len(data) - cut])
    try:
        checked = check_produce_batch(mutated)
    except (CorruptRecordError, UnsupportedCompressionError, InvalidBatchError):
        return
    assert isinstance(checked, CheckedBatch)
    header, records = decode_batch(checked.stamped(42, 3))
    assert len(records) == header.record_count
    assert [r.offset for r in records] == list(range(42, 42 + len(records)))
    assert all(0 <= r.timestamp <= header.max_timestamp < 1 << 63 for r in records)


# -- null keys (a compacted topic refuses them) -------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "null_key"),
    [
        ([b"k"] * 1000, False),
        ([b""] * 3, False),  # an empty key is a key (Kafka's hasKey: not null)
        ([None] * 1000, True),
        ([b"k"] * 500 + [None] + [b"k"] * 499, True),  # one in the middle of a run
        ([b"k"] * 999 + [None], True),  # the last one
        ([None] + [b"k"] * 999, True),
        ([b"k", b"longer key", b"k"] * 10, False),
    ],
)
def test_the_check_says_whether_a_record_has_a_null_key(
    keys: list[bytes | None], null_key: bool
) -> None:
    data = build_batch([NewRecord(k, b"v" * 10, NOW_MS + i % 3) for i, k in enumerate(keys)])
    assert check_produce_batch(data).null_key is null_key
