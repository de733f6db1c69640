"""Producer snapshots: Kafka's ``<offset>.snapshot`` bytes, and the files of a partition
directory (latest at or below the log end, corrupt ones passed over, deletion on truncation
and retention)."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import crc32c
import pytest

from storage.batch import NewRecord
from storage.errors import CorruptCheckpointError, CorruptSnapshotError, KafkaStorageError
from storage.limits import PRODUCER_SNAPSHOT_BYTES_MAX
from storage.log import Log
from storage.log_config import LogConfig
from storage.producer_snapshot import (
    ENTRY_SIZE,
    ProducerSnapshotEntry,
    ProducerSnapshots,
    decode,
    encode,
    snapshot_file_name,
    snapshot_offset_of,
)

ENTRY = ProducerSnapshotEntry(
    producer_id=4000,
    producer_epoch=2,
    last_sequence=9,
    last_offset=41,
    offset_delta=4,
    timestamp=1700000000000,
)

# ENTRY as Kafka's ProducerSnapshot v1 lays it out, field by field (ProducerSnapshot.json).
ENTRY_HEX = (
    "0000000000000fa0"  # producer id 4000, int64
    "0002"  # epoch, int16
    "00000009"  # last sequence, int32
    "0000000000000029"  # last offset 41, int64
    "00000004"  # offset delta, int32
    "0000018bcfe56800"  # timestamp 1700000000000, int64
    "ffffffff"  # coordinator epoch -1, int32
    "ffffffffffffffff"  # current transaction first offset -1, int64
)


def kafka_bytes(entries_hex: str, count: int) -> bytes:
    body = struct.pack(">i", count) + bytes.fromhex(entries_hex)
    return struct.pack(">hI", 1, crc32c.crc32c(body)) + body


# -- the format --------------------------------------------------------------------------------


def test_crc_is_castagnoli() -> None:
    assert crc32c.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


def test_encode_writes_kafkas_layout_byte_for_byte() -> None:
    data = encode([ENTRY])
    assert data == kafka_bytes(ENTRY_HEX, 1)
    assert len(data) == 2 + 4 + 4 + ENTRY_SIZE == 56
    assert data[:2] == b"\x00\x01"  # version 1
    assert struct.unpack(">I", data[2:6])[0] == crc32c.crc32c(data[6:])


def test_an_empty_snapshot_is_ten_bytes() -> None:
    data = encode([])
    assert data == kafka_bytes("", 0)
    assert decode(data, "x") == []


def test_decode_reads_kafkas_bytes() -> None:
    assert decode(kafka_bytes(ENTRY_HEX, 1), "x") == [ENTRY]


def test_round_trip_keeps_order_and_every_field() -> None:
    entries = [
        ENTRY,
        ProducerSnapshotEntry(7, 0, 2**31 - 1, 2**62, 0, -1, 3, 2**62 - 5),
        ProducerSnapshotEntry(8, 32767, -1, -1, 0),  # a Kafka entry with an epoch only
    ]
    assert decode(encode(entries), "x") == entries


def test_first_sequence_and_offset_of_the_last_batch() -> None:
    assert (ENTRY.first_sequence, ENTRY.first_offset) == (5, 37)
    wrapped = ProducerSnapshotEntry(1, 0, 1, 10, 3)  # sequences 2**31 - 2 .. 1
    assert wrapped.first_sequence == 2**31 - 2
    assert ProducerSnapshotEntry(1, 0, -1, -1, 0).first_sequence == -1


@pytest.mark.parametrize(
    "fields",
    [
        (-1, 0, 0, 0, 0),  # producer id
        (1, -1, 0, 0, 0),  # epoch
        (1, 2**15, 0, 0, 0),  # epoch past int16
        (1, 0, 2**31, 0, 0),  # sequence past int32
        (1, 0, 0, 0, -1),  # offset delta
        (1, 0, 5, 3, 4),  # first offset below 0
        (1, 0, -1, 3, 0),  # a batch without a sequence
        (1, 0, 3, -1, 0),  # a sequence without a batch
        (1, 0, 0, 2**63, 0),  # offset past int64
    ],
)
def test_entries_check_themselves(fields: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        ProducerSnapshotEntry(*fields)


def test_encode_refuses_a_producer_twice() -> None:
    with pytest.raises(ValueError, match="repeated"):
        encode([ENTRY, ENTRY])


def corrupt(data: bytes) -> CorruptSnapshotError:
    with pytest.raises(CorruptSnapshotError) as info:
        decode(data, "/p/00000000000000000042.snapshot")
    assert info.value.path == "/p/00000000000000000042.snapshot"
    assert "/p/00000000000000000042.snapshot" in str(info.value)
    return info.value


def test_a_short_file_is_corrupt() -> None:
    assert "expected at least 10 bytes" in str(corrupt(b"\x00\x01\x00"))
    assert "found 0" in str(corrupt(b""))


def test_another_version_is_corrupt() -> None:
    data = bytearray(encode([ENTRY]))
    data[1] = 2
    assert "expected version 1, found 2" in str(corrupt(bytes(data)))


def test_a_torn_file_is_corrupt_and_says_what_is_missing() -> None:
    error = corrupt(encode([ENTRY, ProducerSnapshotEntry(5, 0, 0, 0, 0)])[:-7])
    assert "expected 2 entries of 46 bytes (92 bytes)" in str(error)
    assert "found 85 bytes" in str(error)


def test_a_negative_count_is_corrupt() -> None:
    assert "entry count >= 0, found -1" in str(corrupt(kafka_bytes("", -1)))


def test_a_flipped_bit_fails_the_crc() -> None:
    data = bytearray(encode([ENTRY]))
    data[20] ^= 0x01
    error = corrupt(bytes(data))
    assert "expected CRC-32C" in str(error) and error.position == 2


def test_an_entry_out_of_range_under_a_good_crc_is_corrupt_and_located() -> None:
    bad = "ffffffffffffffff" + ENTRY_HEX[16:]  # producer id -1
    error = corrupt(kafka_bytes(ENTRY_HEX + bad, 2))
    assert "entry 1: producer id must be in" in str(error)
    assert error.position == 10 + ENTRY_SIZE


def test_a_producer_twice_is_corrupt() -> None:
    assert "producer 4000 again" in str(corrupt(kafka_bytes(ENTRY_HEX * 2, 2)))


def test_a_file_over_the_limit_is_corrupt() -> None:
    assert "at most" in str(corrupt(bytes(PRODUCER_SNAPSHOT_BYTES_MAX + 1)))


def test_the_error_is_the_checkpoint_family_and_a_storage_error() -> None:
    error = corrupt(b"")
    assert isinstance(error, CorruptCheckpointError)
    assert isinstance(error, KafkaStorageError)
    assert str(error).startswith("malformed producer snapshot, ")


# -- the files ---------------------------------------------------------------------------------


def test_file_names_are_kafkas() -> None:
    assert snapshot_file_name(42) == "00000000000000000042.snapshot"
    assert snapshot_offset_of("00000000000000000042.snapshot") == 42
    for other in (
        "00000000000000000042.log",
        "42.snapshot",
        ".00000000000000000042.snapshot.abc123.tmp",
        "00000000000000000042.snapshot.deleted",
    ):
        assert snapshot_offset_of(other) is None


def test_offsets_lists_only_snapshots_in_order(tmp_path: Path) -> None:
    snapshots = ProducerSnapshots(tmp_path)
    for offset in (30, 10, 20):
        snapshots.write(offset, [])
    (tmp_path / "00000000000000000000.log").write_bytes(b"")
    (tmp_path / ".00000000000000000040.snapshot.x.tmp").write_bytes(b"torn")
    assert snapshots.offsets() == [10, 20, 30]
    assert ProducerSnapshots(tmp_path / "missing").offsets() == []


def test_write_then_read(tmp_path: Path) -> None:
    snapshots = ProducerSnapshots(tmp_path)
    path = snapshots.write(42, [ENTRY])
    assert path == tmp_path / "00000000000000000042.snapshot"
    assert path.read_bytes() == encode([ENTRY])
    assert snapshots.read(42) == [ENTRY]
    snapshots.write(42, [], durable=False)  # replaces it
    assert snapshots.read(42) == []


def test_write_refuses_a_batch_at_or_past_its_offset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        ProducerSnapshots(tmp_path).write(41, [ENTRY])  # ENTRY's batch ends at 41
    assert ProducerSnapshots(tmp_path).offsets() == []


def test_a_snapshot_naming_a_batch_past_its_offset_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / snapshot_file_name(41)).write_bytes(encode([ENTRY]))
    with pytest.raises(CorruptSnapshotError, match="below the snapshot's offset 41"):
        ProducerSnapshots(tmp_path).read(41)


def test_latest_at_or_below_picks_the_newest_not_past_the_offset(tmp_path: Path) -> None:
    snapshots = ProducerSnapshots(tmp_path)
    snapshots.write(42, [ENTRY])
    snapshots.write(100, [])
    assert snapshots.latest_at_or_below(99) == (42, [ENTRY])
    assert snapshots.latest_at_or_below(100) == (100, [])
    assert snapshots.latest_at_or_below(41) is None


def test_a_corrupt_snapshot_is_logged_deleted_and_an_older_one_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    snapshots = ProducerSnapshots(tmp_path)
    snapshots.write(42, [ENTRY])
    snapshots.path(100).write_bytes(encode([ENTRY])[:-1])  # torn
    with caplog.at_level(logging.WARNING):
        assert snapshots.latest_at_or_below(200) == (42, [ENTRY])
    assert "corrupt producer snapshot" in caplog.text
    assert "00000000000000000100.snapshot" in caplog.text
    assert snapshots.offsets() == [42]


def test_only_corrupt_snapshots_mean_none(tmp_path: Path) -> None:
    snapshots = ProducerSnapshots(tmp_path)
    snapshots.path(5).write_bytes(b"")
    snapshots.path(9).write_bytes(b"garbage garbage garbage")
    assert snapshots.latest_at_or_below(10) is None
    assert snapshots.offsets() == []


def test_an_unreadable_snapshot_is_passed_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    snapshots = ProducerSnapshots(tmp_path)
    snapshots.write(42, [ENTRY])
    snapshots.path(100).mkdir()  # reading it fails with an I/O error, not corruption
    with caplog.at_level(logging.WARNING):
        assert snapshots.latest_at_or_below(200) == (42, [ENTRY])
    assert "skipping a producer snapshot" in caplog.text


def test_delete_above_removes_what_a_truncation_makes_false(tmp_path: Path) -> None:
    snapshots = ProducerSnapshots(tmp_path)
    for offset in (10, 20, 30):
        snapshots.write(offset, [])
    assert snapshots.delete_above(20) == [30]
    assert snapshots.offsets() == [10, 20]
    assert snapshots.delete_above(20) == []


def test_delete_below_keeps_the_latest_at_or_below_the_log_start(tmp_path: Path) -> None:
    snapshots = ProducerSnapshots(tmp_path)
    for offset in (10, 20, 30):
        snapshots.write(offset, [])
    assert snapshots.delete_below(25) == [10]
    assert snapshots.offsets() == [20, 30]
    assert snapshots.delete_below(30) == [20]
    assert snapshots.delete_below(5) == []
    assert snapshots.offsets() == [30]


def test_delete_all(tmp_path: Path) -> None:
    snapshots = ProducerSnapshots(tmp_path)
    for offset in (0, 10):
        snapshots.write(offset, [])
    assert snapshots.delete_all() == [0, 10]
    assert snapshots.offsets() == []


def test_the_log_opens_beside_snapshots_and_leaves_them_alone(tmp_path: Path) -> None:
    log = Log.open(tmp_path, LogConfig())
    records = [NewRecord(None, b"v", 1700000000000)] * 3
    log.append_as_leader(records, 0, producer_id=4000, producer_epoch=0, base_sequence=0)
    log.close()
    snapshots = ProducerSnapshots(tmp_path)
    snapshots.write(3, [ProducerSnapshotEntry(4000, 0, 2, 2, 2, 1700000000000)])
    snapshots.path(7).write_bytes(b"torn")
    (tmp_path / ".00000000000000000009.snapshot.x.tmp").write_bytes(b"")
    for recovery_point in (0, 3):  # a full recovery, a clean shutdown
        reopened = Log.open(tmp_path, LogConfig(), recovery_point=recovery_point)
        assert reopened.log_end_offset == 3 and reopened.offline is None
        reopened.close()
    assert snapshots.offsets() == [3, 7]
