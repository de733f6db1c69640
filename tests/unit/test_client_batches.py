"""The client's batches (client/batches.py) are Kafka's: built batches equal Kafka's bytes for the
same records (tests/data/kafka_v2_batches.json, built by kafka-python, an implementation
independent of ours and of aiokafka), reading Kafka's bytes gives the stated records, and a body
that is not whole, valid batches raises CORRUPT_MESSAGE, never wrong records."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from aiokafka.record.util import calc_crc32c  # type: ignore[import-untyped]

from client.accumulator import RECORD_BATCH_OVERHEAD as ACCUMULATOR_OVERHEAD
from client.accumulator import payload_size, record_size
from client.batches import (
    CYTHON,
    NO_HEADERS,
    RECORD_BATCH_OVERHEAD,
    BatchReader,
    ConsumerRecord,
    build,
    read_all,
)
from client.protocol import CORRUPT_MESSAGE, ApiError

DATA = Path(__file__).parents[1] / "data"
VECTORS: list[dict[str, Any]] = json.loads((DATA / "kafka_v2_batches.json").read_text())["batches"]
IDS = [v["about"] for v in VECTORS]

ATTRIBUTES_AT = struct.calcsize(">qiibI")
CRC_AT = struct.calcsize(">qiib")


def _text(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8")


def _inputs(vector: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(key, value, headers, timestamp) of the vector's records, as build() takes them."""
    return [
        (
            _text(r["key"]),
            _text(r["value"]),
            [(name, _text(value)) for name, value in r["headers"]] or NO_HEADERS,
            r["timestamp"],
        )
        for r in vector["records"]
    ]


def _expected(vector: dict[str, Any], topic: str = "t", partition: int = 0) -> list[Any]:
    return [
        ConsumerRecord(
            topic,
            partition,
            r["offset"],
            r["timestamp"],
            _text(r["key"]),
            _text(r["value"]),
            tuple((name, _text(value)) for name, value in r["headers"]),
        )
        for r in vector["records"]
    ]


def _stamp(batch: bytes, base_offset: int, leader_epoch: int) -> bytes:
    """What the leader does to a produced batch: base offset and leader epoch (outside the CRC)."""
    return (
        struct.pack(">q", base_offset) + batch[8:12] + struct.pack(">i", leader_epoch) + batch[16:]
    )


def _with_attributes(batch: bytes, attributes: int) -> bytes:
    """The batch with other attributes and its CRC computed again (a valid batch)."""
    changed = bytearray(batch)
    struct.pack_into(">h", changed, ATTRIBUTES_AT, attributes)
    struct.pack_into(">I", changed, CRC_AT, calc_crc32c(bytes(changed[ATTRIBUTES_AT:])))
    return bytes(changed)


def test_the_cython_builder_and_reader_are_in_use() -> None:
    assert CYTHON


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_built_batch_equals_kafkas_bytes_for_the_same_records(vector: dict[str, Any]) -> None:
    built = build(
        _inputs(vector), vector["producer_id"], vector["producer_epoch"], vector["base_sequence"]
    )
    kafka = bytes.fromhex(vector["hex"])
    # The producer sends base offset 0 and leader epoch -1; the vector was stamped by a leader.
    assert built[:8] == bytes(8)
    assert built[12:16] == struct.pack(">i", -1)
    assert _stamp(built, vector["base_offset"], vector["partition_leader_epoch"]) == kafka


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_reading_kafkas_bytes_gives_the_stated_records(vector: dict[str, Any]) -> None:
    body = bytes.fromhex(vector["hex"])
    reader = BatchReader("t", 0, body, vector["base_offset"])
    assert reader.read(1 << 20) == _expected(vector)
    assert reader.done
    assert reader.next_offset == vector["records"][-1]["offset"] + 1


def test_an_answer_of_several_batches_reads_in_order() -> None:
    body = b"".join(bytes.fromhex(v["hex"]) for v in VECTORS[:2])
    assert read_all("t", 0, body, 0) == _expected(VECTORS[0]) + _expected(VECTORS[1])


def test_records_below_the_offset_asked_for_are_skipped() -> None:
    body = b"".join(bytes.fromhex(v["hex"]) for v in VECTORS[:2])
    reader = BatchReader("t", 0, body, 4)
    assert [r.offset for r in reader.read(1 << 20)] == [4, 5]
    assert reader.next_offset == 6


def test_a_batch_wholly_below_the_offset_only_moves_next_offset() -> None:
    body = bytes.fromhex(VECTORS[0]["hex"])
    reader = BatchReader("t", 0, body, 3)
    assert reader.read(1 << 20) == []
    assert reader.done and reader.next_offset == 3


def test_an_empty_body_reads_nothing_and_keeps_the_offset() -> None:
    reader = BatchReader("t", 2, b"", 17)
    assert reader.done
    assert reader.read(100) == []
    assert reader.next_offset == 17


def test_a_read_takes_whole_batches_about_bytes_max_at_a_time() -> None:
    batches = [build([(None, b"v%d" % i, NO_HEADERS, 1000)]) for i in range(5)]
    stamped = [_stamp(b, i, 0) for i, b in enumerate(batches)]
    reader = BatchReader("t", 0, b"".join(stamped), 0)
    slices = []
    while not reader.done:
        slices.append([r.value for r in reader.read(len(stamped[0]) * 2)])
    assert slices == [[b"v0", b"v1"], [b"v2", b"v3"], [b"v4"]]
    # A slice smaller than one batch still reads a whole batch (never stalls).
    reader = BatchReader("t", 0, b"".join(stamped), 0)
    assert [r.value for r in reader.read(1)] == [b"v0"]


def test_log_append_time_batches_give_every_record_the_max_timestamp() -> None:
    batch = build(
        [(None, b"a", NO_HEADERS, 1000), (None, b"b", NO_HEADERS, 1005)],
    )
    log_append = _with_attributes(batch, 0x08)  # the leader's timestamp type bit
    # The leader also sets the max timestamp (its clock) before the CRC.
    changed = bytearray(log_append)
    struct.pack_into(">q", changed, struct.calcsize(">qiibIhiq"), 9999)
    struct.pack_into(">I", changed, CRC_AT, calc_crc32c(bytes(changed[ATTRIBUTES_AT:])))
    assert [r.timestamp for r in read_all("t", 0, bytes(changed), 0)] == [9999, 9999]


def test_control_batches_give_no_records_but_move_the_offset() -> None:
    control = _with_attributes(build([(b"\x00\x00\x00\x00", None, NO_HEADERS, 1)]), 0x30)
    data = _stamp(build([(None, b"x", NO_HEADERS, 2)]), 1, 0)
    reader = BatchReader("t", 0, control + data, 0)
    assert [(r.offset, r.value) for r in reader.read(1 << 20)] == [(1, b"x")]
    assert reader.next_offset == 2


def _corruption(body: bytes) -> str:
    with pytest.raises(ApiError) as caught:
        read_all("t", 0, body, 0)
    assert caught.value.kind is CORRUPT_MESSAGE
    return caught.value.message


def test_a_flipped_bit_fails_the_crc_check() -> None:
    body = bytearray(bytes.fromhex(VECTORS[1]["hex"]))
    body[-3] ^= 0x01
    assert "CRC-32C" in _corruption(bytes(body))


def test_a_cut_batch_is_corrupt_never_a_short_answer() -> None:
    whole = bytes.fromhex(VECTORS[0]["hex"]) + bytes.fromhex(VECTORS[1]["hex"])
    for cut in (len(whole) - 1, len(whole) - 40, len(VECTORS[0]["hex"]) // 2 + 5):
        message = _corruption(whole[:cut])
        assert "cut short" in message or "fewer than a batch header" in message


def test_a_batch_of_another_magic_is_corrupt() -> None:
    body = bytearray(bytes.fromhex(VECTORS[0]["hex"]))
    body[16] = 1
    assert "magic 1" in _corruption(bytes(body))


def test_a_record_whose_framing_does_not_add_up_is_corrupt() -> None:
    batch = bytearray(build([(None, b"abc", NO_HEADERS, 1)]))
    # The record's value length says 4 where 3 bytes follow; the CRC is made right again so
    # only the framing is wrong.
    at = RECORD_BATCH_OVERHEAD + 1 + 1 + 1 + 1 + 1
    assert batch[at] == 6  # zigzag 3
    batch[at] = 8
    struct.pack_into(">I", batch, CRC_AT, calc_crc32c(bytes(batch[ATTRIBUTES_AT:])))
    assert "offset 0" in _corruption(bytes(batch))


def test_garbage_is_corrupt() -> None:
    assert _corruption(b"\x00" * 7)
    assert _corruption(b"\xff" * 200)


def test_build_refuses_an_empty_batch() -> None:
    with pytest.raises(ValueError):
        build([])


@pytest.mark.parametrize(
    ("key", "value", "headers"),
    [
        (None, b"x" * 100, NO_HEADERS),
        (b"user1", b"x" * 5000, NO_HEADERS),
        (b"k", None, [("source", b"web"), ("empty", None)]),
        (None, b"y" * 20000, [("\u00e9t\u00e9", b"z" * 70)]),
    ],
)
def test_the_accumulators_sizes_are_the_built_bytes(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]]
) -> None:
    """batch.size and max.request.size are counted in the bytes the batch will have."""
    payload = payload_size(
        None if key is None else len(key), None if value is None else len(value), tuple(headers)
    )
    records = [(key, value, headers, 1_700_000_000_000 + i * 37) for i in range(200)]
    expected = ACCUMULATOR_OVERHEAD + sum(
        record_size(i, 37 * i, payload) for i in range(len(records))
    )
    assert len(build(records)) == expected
