"""The batch codec agrees with Kafka's bytes: the vectors in tests/data (built by kafka-python,
an independent implementation) decode as stated, and build_batch reproduces them byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from storage.batch import (
    HEADER_SIZE,
    NewRecord,
    Record,
    build_batch,
    check_batch,
    decode_batch,
    iter_batches,
    read_header,
    stamp,
)
from storage.errors import CorruptRecordError

DATA = Path(__file__).parents[1] / "data"
VECTORS: list[dict[str, Any]] = json.loads((DATA / "kafka_v2_batches.json").read_text())["batches"]


def _text(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8")


def _records(vector: dict[str, Any]) -> list[Record]:
    return [
        Record(
            r["offset"],
            r["timestamp"],
            _text(r["key"]),
            _text(r["value"]),
            tuple((name, _text(value)) for name, value in r["headers"]),
        )
        for r in vector["records"]
    ]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["about"] for v in VECTORS])
def test_kafka_vector_decodes_to_the_stated_records(vector: dict[str, Any]) -> None:
    header, records = decode_batch(bytes.fromhex(vector["hex"]))
    assert records == _records(vector)
    assert header.base_offset == vector["base_offset"]
    assert header.partition_leader_epoch == vector["partition_leader_epoch"]
    assert header.producer_id == vector["producer_id"]
    assert header.producer_epoch == vector["producer_epoch"]
    assert header.base_sequence == vector["base_sequence"]
    assert header.record_count == len(vector["records"])
    assert header.max_timestamp == max(r["timestamp"] for r in vector["records"])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["about"] for v in VECTORS])
def test_build_batch_reproduces_the_kafka_vector_byte_for_byte(vector: dict[str, Any]) -> None:
    records = [NewRecord(r.key, r.value, r.timestamp, r.headers) for r in _records(vector)]
    built = build_batch(
        records,
        base_offset=vector["base_offset"],
        partition_leader_epoch=vector["partition_leader_epoch"],
        producer_id=vector["producer_id"],
        producer_epoch=vector["producer_epoch"],
        base_sequence=vector["base_sequence"],
    )
    assert built.hex() == vector["hex"]


def test_stamp_changes_offset_and_epoch_without_breaking_the_crc() -> None:
    batch = bytearray(bytes.fromhex(VECTORS[0]["hex"]))
    stamp(batch, 1234, 9)
    header = check_batch(batch)
    assert (header.base_offset, header.partition_leader_epoch) == (1234, 9)
    assert [r.offset for r in decode_batch(batch)[1]] == [1234, 1235, 1236]


def test_a_flipped_payload_byte_fails_the_crc_check() -> None:
    batch = bytearray(bytes.fromhex(VECTORS[1]["hex"]))
    batch[HEADER_SIZE + 3] ^= 0x01
    read_header(batch)  # the header alone still parses
    with pytest.raises(CorruptRecordError, match="CRC"):
        check_batch(batch)


def test_iter_batches_walks_concatenated_vectors() -> None:
    data = b"".join(bytes.fromhex(v["hex"]) for v in VECTORS)
    assert [h.base_offset for _, h in iter_batches(data)] == [v["base_offset"] for v in VECTORS]
