"""kraft-dump-log prints what Kafka's DumpLogSegments prints, and says where corruption is."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from storage.batch import (
    ATTRIBUTES_OFFSET,
    LOG_OVERHEAD,
    NewRecord,
    build_batch,
    crc32c,
    encode_varint,
)
from storage.dump_log import main
from storage.index import OFFSET_ENTRY_SIZE, TIME_ENTRY_SIZE, preallocated_bytes
from storage.producer_snapshot import ProducerSnapshotEntry, ProducerSnapshots
from tests.processes import default_sigint, interrupt_when_blocked, stop

REPO = Path(__file__).resolve().parents[2]
VECTORS = json.loads((REPO / "tests" / "data" / "kafka_v2_batches.json").read_text())
NEWS = bytes.fromhex(VECTORS["batches"][0]["hex"])  # built by kafka-python, not by us

NEWS_BATCH_LINE = (
    "baseOffset: 0 lastOffset: 2 count: 3 baseSequence: -1 lastSequence: -1 producerId: -1 "
    "producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false "
    "deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1700000000002 size: 121 "
    "magic: 2 compresscodec: none crc: 2043083019 isvalid: true"
)
NEWS_RECORDS = [
    "| offset: 0 CreateTime: 1700000000000 keySize: -1 valueSize: 12 sequence: -1 "
    "headerKeys: [] payload: Good morning",
    "| offset: 1 CreateTime: 1700000000001 keySize: -1 valueSize: 8 sequence: -1 "
    "headerKeys: [] payload: Good day",
    "| offset: 2 CreateTime: 1700000000002 keySize: -1 valueSize: 19 sequence: -1 "
    "headerKeys: [] payload: Enjoy the Kafka lab",
]


def keyed_batch() -> bytes:
    record = NewRecord(b"user1", b"login website", 1700000000003, (("source", b"web"),))
    return build_batch(
        [record],
        base_offset=3,
        partition_leader_epoch=1,
        producer_id=4000,
        producer_epoch=0,
        base_sequence=7,
    )


@pytest.fixture
def segment(tmp_path: Path) -> Path:
    """news-0/00000000000000000000.log with the news batch then a keyed batch."""
    d = tmp_path / "news-0"
    d.mkdir()
    log = d / "00000000000000000000.log"
    log.write_bytes(NEWS + keyed_batch())
    return log


def dump(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


# -- .log --------------------------------------------------------------------------------------


def test_batch_lines_match_kafkas_format(segment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = dump(capsys, "--files", str(segment))
    assert code == 0 and err == []
    assert out[:3] == [f"Dumping {segment}", "Log starting offset: 0", NEWS_BATCH_LINE]
    assert out[3].startswith("baseOffset: 3 lastOffset: 3 count: 1 baseSequence: 7 ")
    assert "producerId: 4000 producerEpoch: 0 partitionLeaderEpoch: 1 " in out[3]
    assert " position: 121 CreateTime: 1700000000003 size: " in out[3]
    assert len(out) == 4  # no record lines without --deep-iteration / --print-data-log


def test_print_data_log_adds_records_with_key_and_payload(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = dump(capsys, "--files", str(segment), "--print-data-log")
    assert code == 0
    assert out[2:6] == [NEWS_BATCH_LINE, *NEWS_RECORDS]
    assert out[7] == (
        "| offset: 3 CreateTime: 1700000000003 keySize: 5 valueSize: 13 sequence: 7 "
        "headerKeys: [source] key: user1 payload: login website"
    )


def test_deep_iteration_lists_records_without_their_contents(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = dump(capsys, "--files", str(segment), "--deep-iteration")
    assert code == 0
    assert out[3] == NEWS_RECORDS[0].removesuffix(" payload: Good morning")
    assert not any("payload" in line for line in out)


def test_skip_record_metadata_prints_only_key_and_payload(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = dump(capsys, "--files", str(segment), "--print-data-log", "--skip-record-metadata")
    assert out[3] == "| payload: Good morning"  # Kafka 4.4: no key, no metadata: "| payload"
    assert out[7] == "| key: user1 payload: login website"


def test_tombstones_and_log_append_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = bytearray(build_batch([NewRecord(b"k", None, 5)]))
    log = tmp_path / "00000000000000000042.log"
    log.write_bytes(batch)
    _, out, _ = dump(capsys, "--files", str(log), "--print-data-log")
    assert out[1] == "Log starting offset: 42"
    assert out[3].endswith("keySize: 1 valueSize: -1 sequence: -1 headerKeys: [] key: k")


def test_max_bytes_reads_only_the_batches_that_fit(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = dump(capsys, "--files", str(segment), "--max-bytes", str(len(NEWS) + 10))
    assert code == 0 and err == []
    assert out == [f"Dumping {segment}", "Log starting offset: 0", NEWS_BATCH_LINE]


def test_a_crc_mismatch_is_shown_invalid_and_located(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(segment.read_bytes())
    data[100] ^= 0x01  # inside the first batch's records
    segment.write_bytes(bytes(data))
    code, out, err = dump(capsys, "--files", str(segment), "--print-data-log")
    assert code == 1
    assert out[2] == NEWS_BATCH_LINE.replace("isvalid: true", "isvalid: false")
    assert out[3].startswith("baseOffset: 3 ")  # the framing held: the next batch is shown
    assert len(err) == 1
    assert err[0].startswith(f"Corrupt batch in {segment} at position 0: ")
    assert "CRC-32C" in err[0] and "Traceback" not in err[0]


def test_a_torn_tail_is_reported_like_kafka_and_located(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])
    code, out, err = dump(capsys, "--files", str(segment))
    assert code == 1
    assert (
        out[-1] == f"Found {len(data) - 5 - len(NEWS)} invalid bytes at the end of {segment.name}"
    )
    assert err == [
        f"Corrupt tail in {segment} at position {len(NEWS)}: expected a batch of "
        f"{len(data) - len(NEWS)} bytes, found {len(data) - 5 - len(NEWS)} bytes"
    ]


def test_a_tail_shorter_than_a_header_is_reported(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    segment.write_bytes(NEWS + b"\x00" * 20)
    code, out, err = dump(capsys, "--files", str(segment))
    assert code == 1
    assert out[-1] == f"Found 20 invalid bytes at the end of {segment.name}"
    assert "expected a header, found 20 bytes" in err[0]


def test_a_bad_magic_stops_the_dump_after_what_was_read(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(segment.read_bytes())
    data[len(NEWS) + 16] = 7  # the second batch's magic byte
    segment.write_bytes(bytes(data))
    code, out, err = dump(capsys, "--files", str(segment))
    assert code == 1
    assert out == [f"Dumping {segment}", "Log starting offset: 0", NEWS_BATCH_LINE]
    assert err[0].startswith(f"Corrupt batch in {segment} at position {len(NEWS)}: ")
    assert "expected magic 2, found 7" in err[0]


def test_garbage_records_inside_a_valid_crc_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A batch whose header claims 4 records but holds 3, with a correct CRC over that lie.
    from storage.batch import ATTRIBUTES_OFFSET, CRC_OFFSET, crc32c

    data = bytearray(NEWS)
    struct.pack_into(">i", data, 57, 4)
    struct.pack_into(">I", data, CRC_OFFSET, crc32c(bytes(data[ATTRIBUTES_OFFSET:])))
    log = tmp_path / "00000000000000000000.log"
    log.write_bytes(bytes(data))
    code, out, err = dump(capsys, "--files", str(log), "--print-data-log")
    assert code == 1
    assert out[2].endswith("isvalid: true")
    assert err[0].startswith(f"Cannot read the records of the batch in {log} at position 0: ")


def test_non_consecutive_offsets_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "00000000000000000000.log"
    log.write_bytes(NEWS + build_batch([NewRecord(None, b"x", 1)], base_offset=10))
    code, _, err = dump(capsys, "--files", str(log), "--deep-iteration")
    assert code == 0  # Kafka reports it as information, not as damage (compaction makes gaps)
    assert err == [f"Non-consecutive offsets in {log.absolute()}", "  2 is followed by 10"]


# -- compacted segments -----------------------------------------------------------------------
# What Kafka's cleaner leaves: batches that keep their base and last offsets with records gone
# from inside them, empty batches (count 0: an idempotent producer's last batch, kept for its
# sequence), offsets missing between batches, and tombstones under a delete horizon
# (attribute bit 0x40, the horizon in the base timestamp). Encoded by hand here, since
# build_batch writes only dense batches.


def _record(offset_delta: int, timestamp_delta: int, key: bytes, value: bytes | None) -> bytes:
    body = b"\x00" + encode_varint(timestamp_delta) + encode_varint(offset_delta)
    body += encode_varint(len(key)) + key
    body += b"\x01" if value is None else encode_varint(len(value)) + value
    body += encode_varint(0)  # no headers
    return encode_varint(len(body)) + body


def _compacted_batch(
    base_offset: int,
    last_offset_delta: int,
    records: list[bytes],
    *,
    base_timestamp: int,
    max_timestamp: int,
    attributes: int = 0,
    producer: tuple[int, int, int] = (-1, -1, -1),  # id, epoch, base sequence
    leader_epoch: int = 0,
) -> bytes:
    producer_id, producer_epoch, base_sequence = producer
    tail = struct.pack(
        ">hiqqqhii",
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    ) + b"".join(records)
    length = ATTRIBUTES_OFFSET - LOG_OVERHEAD + len(tail)  # leader epoch, magic, CRC, the tail
    head = struct.pack(">qiibI", base_offset, length, leader_epoch, 2, crc32c(tail))
    return head + tail


T = 1700000000000
HORIZON = 1700086400000


def compacted_segment() -> bytes:
    return b"".join(
        [
            # offsets 0..4, of which 1 and 3 are left
            _compacted_batch(
                0, 4, [_record(1, 1, b"k1", b"v1"), _record(3, 3, b"k2", b"v2")],
                base_timestamp=T, max_timestamp=T + 4,
            ),
            # 5..7, all gone: an idempotent producer's last batch, kept empty
            _compacted_batch(
                5, 2, [], base_timestamp=-1, max_timestamp=T + 7, producer=(4000, 0, 5)
            ),
            # 8 and 9 gone with their batch; a tombstone at 11 under a delete horizon
            _compacted_batch(
                10, 1, [_record(1, T + 11 - HORIZON, b"k3", None)],
                base_timestamp=HORIZON, max_timestamp=T + 11, attributes=0x40,
            ),
            # 12..14 of a producer, 13 gone: the sequences still follow the offsets
            _compacted_batch(
                12, 2, [_record(0, 0, b"k4", b"v4"), _record(2, 2, b"k5", b"v5")],
                base_timestamp=T + 12, max_timestamp=T + 14, producer=(4001, 1, 7),
                leader_epoch=1,
            ),
        ]
    )  # fmt: skip


# Kafka 4.4.0's DumpLogSegments on compacted_segment() (org.apache.kafka.tools.DumpLogSegments
# --files <it> --deep-iteration --print-data-log), after its "Dumping" line, pasted as printed.
KAFKA_COMPACTED_OUT = [
    "Log starting offset: 0",
    "baseOffset: 0 lastOffset: 4 count: 2 baseSequence: -1 lastSequence: -1 producerId: -1 "
    "producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false "
    "deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1700000000004 size: 83 "
    "magic: 2 compresscodec: none crc: 406288833 isvalid: true",
    "| offset: 1 CreateTime: 1700000000001 keySize: 2 valueSize: 2 sequence: -1 headerKeys: [] "
    "key: k1 payload: v1",
    "| offset: 3 CreateTime: 1700000000003 keySize: 2 valueSize: 2 sequence: -1 headerKeys: [] "
    "key: k2 payload: v2",
    "baseOffset: 5 lastOffset: 7 count: 0 baseSequence: 5 lastSequence: 7 producerId: 4000 "
    "producerEpoch: 0 partitionLeaderEpoch: 0 isTransactional: false isControl: false "
    "deleteHorizonMs: OptionalLong.empty position: 83 CreateTime: 1700000000007 size: 61 "
    "magic: 2 compresscodec: none crc: 1846998228 isvalid: true",
    "baseOffset: 10 lastOffset: 11 count: 1 baseSequence: -1 lastSequence: -1 producerId: -1 "
    "producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false "
    "deleteHorizonMs: OptionalLong[1700086400000] position: 144 CreateTime: 1700000000011 "
    "size: 73 magic: 2 compresscodec: none crc: 3486285763 isvalid: true",
    "| offset: 11 CreateTime: 1700000000011 keySize: 2 valueSize: -1 sequence: -1 "
    "headerKeys: [] key: k3",
    "baseOffset: 12 lastOffset: 14 count: 2 baseSequence: 7 lastSequence: 9 producerId: 4001 "
    "producerEpoch: 1 partitionLeaderEpoch: 1 isTransactional: false isControl: false "
    "deleteHorizonMs: OptionalLong.empty position: 217 CreateTime: 1700000000014 size: 83 "
    "magic: 2 compresscodec: none crc: 2359328223 isvalid: true",
    "| offset: 12 CreateTime: 1700000000012 keySize: 2 valueSize: 2 sequence: 7 headerKeys: [] "
    "key: k4 payload: v4",
    "| offset: 14 CreateTime: 1700000000014 keySize: 2 valueSize: 2 sequence: 9 headerKeys: [] "
    "key: k5 payload: v5",
]
# Its stderr, after "Non-consecutive offsets in <absolute path>". Kafka 4.4 starts from -1
# with no exception for the first record, hence "-1 is followed by 1"; the empty batch has no
# record, so 3 is followed by 11.
KAFKA_COMPACTED_GAPS = [
    "  -1 is followed by 1",
    "  1 is followed by 3",
    "  3 is followed by 11",
    "  12 is followed by 14",
]


def test_a_compacted_segment_prints_what_kafka_4_4_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "00000000000000000000.log"
    log.write_bytes(compacted_segment())
    code, out, err = dump(capsys, "--files", str(log), "--deep-iteration", "--print-data-log")
    assert code == 0  # gaps are what compaction leaves, not damage
    assert out == [f"Dumping {log}", *KAFKA_COMPACTED_OUT]
    assert err == [f"Non-consecutive offsets in {log.absolute()}", *KAFKA_COMPACTED_GAPS]


def test_batch_lines_of_a_compacted_segment_need_no_deep_iteration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "00000000000000000000.log"
    log.write_bytes(compacted_segment())
    code, out, err = dump(capsys, "--files", str(log))
    assert code == 0
    assert out[1:] == [line for line in KAFKA_COMPACTED_OUT if not line.startswith("|")]
    assert err == []  # Kafka looks for gaps only among the records it iterates


def test_a_segment_not_starting_at_offset_zero_reports_its_first_record_as_kafka_4_4_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Kafka 4.4.0 on such a segment (records at 100 and 105) printed, on stderr:
    # "  -1 is followed by 100" then "  100 is followed by 105".
    log = tmp_path / "00000000000000000100.log"
    log.write_bytes(
        build_batch([NewRecord(b"a", b"1", 1)], base_offset=100)
        + build_batch([NewRecord(b"a", b"1", 1)], base_offset=105)
    )
    code, _, err = dump(capsys, "--files", str(log), "--deep-iteration")
    assert code == 0
    assert err == [
        f"Non-consecutive offsets in {log.absolute()}",
        "  -1 is followed by 100",
        "  100 is followed by 105",
    ]


def test_the_records_of_a_batch_failing_its_crc_are_not_reported_as_a_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(compacted_segment())
    data[70] ^= 0x01  # inside the first batch's records: its CRC fails
    log = tmp_path / "00000000000000000000.log"
    log.write_bytes(bytes(data))
    code, _, err = dump(capsys, "--files", str(log), "--deep-iteration")
    assert code == 1
    assert err[0].startswith(f"Corrupt batch in {log} at position 0: ")
    # The batch claims 0..4: the next record read (11) follows 4, not -1.
    assert err[1:] == [
        f"Non-consecutive offsets in {log.absolute()}",
        "  4 is followed by 11",
        "  12 is followed by 14",
    ]


def test_an_empty_log_prints_only_its_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "00000000000000000000.log"
    log.write_bytes(b"")
    assert dump(capsys, "--files", str(log)) == (
        0,
        [f"Dumping {log}", "Log starting offset: 0"],
        [],
    )


# -- .index and .timeindex ---------------------------------------------------------------------


def write_indexes(
    segment: Path, offset_entries: bytes, time_entries: bytes, preallocated: bool = False
) -> tuple[Path, Path]:
    """The segment's index files holding these bytes; ``preallocated``: zero-filled to an
    active segment's length (sparse), as a running node's are."""
    index = segment.with_suffix(".index")
    timeindex = segment.with_suffix(".timeindex")
    index.write_bytes(offset_entries)
    timeindex.write_bytes(time_entries)
    if preallocated:
        os.truncate(index, preallocated_bytes(OFFSET_ENTRY_SIZE))
        os.truncate(timeindex, preallocated_bytes(TIME_ENTRY_SIZE))
    return index, timeindex


def test_index_and_time_index_entries_are_printed(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index, timeindex = write_indexes(
        segment,
        struct.pack(">ii", 2, 0) + struct.pack(">ii", 3, len(NEWS)),
        struct.pack(">qi", 1700000000002, 2) + struct.pack(">qi", 1700000000003, 3),
    )
    code, out, err = dump(capsys, "--files", f"{index},{timeindex}")
    assert (code, err) == (0, [])
    assert out == [
        f"Dumping {index}",
        "offset: 2 position: 0",
        f"offset: 3 position: {len(NEWS)}",
        f"Dumping {timeindex}",
        "timestamp: 1700000000002 offset: 2",
        "timestamp: 1700000000003 offset: 3",
    ]


def test_index_dump_stops_at_the_preallocated_zero_tail(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index, _ = write_indexes(segment, struct.pack(">ii", 2, 0) + bytes(8 * 3), b"")
    code, out, _ = dump(capsys, "--files", str(index))
    assert code == 0
    assert out == [f"Dumping {index}", "offset: 2 position: 0"]


def test_a_preallocated_index_without_entries_says_it_is_empty(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A running node's active segment before its first index entry: 10 MiB of zeros.
    index, timeindex = write_indexes(segment, b"", b"", preallocated=True)
    code, out, err = dump(capsys, "--files", f"{index},{timeindex}")
    assert (code, err) == (0, [])
    assert out == [f"Dumping {index}", f"{index} is empty.", f"Dumping {timeindex}"]


@pytest.mark.parametrize("preallocated", [False, True])
def test_a_time_index_whose_first_entry_is_timestamp_0_at_the_base_offset_is_printed(
    segment: Path, capsys: pytest.CaptureFixture[str], preallocated: bool
) -> None:
    # Kafka's TimeIndex.maybeAppend takes any timestamp above -1: a segment whose first
    # records carry timestamp 0 gets this all-zero first entry, sealed (trimmed) or active.
    _, timeindex = write_indexes(
        segment, b"", struct.pack(">qi", 0, 0) + struct.pack(">qi", 5, 1), preallocated
    )
    code, out, err = dump(capsys, "--files", str(timeindex))
    assert (code, err) == (0, [])
    assert out == [f"Dumping {timeindex}", "timestamp: 0 offset: 0", "timestamp: 5 offset: 1"]


def test_an_index_dump_reads_a_preallocated_file_only_up_to_its_entries(
    segment: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, timeindex = write_indexes(
        segment, struct.pack(">ii", 2, 0), struct.pack(">qi", 5, 2), preallocated=True
    )
    read: list[int] = []
    pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        read.append(length)
        return pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    code, out, err = dump(capsys, "--files", f"{index},{timeindex}")
    assert (code, err) == (0, [])
    assert out[1] == "offset: 2 position: 0" and out[3] == "timestamp: 5 offset: 2"
    assert 0 < sum(read) < 1 << 20  # the 10 MiB files are not read whole


def test_an_empty_index_says_so(segment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index, _ = write_indexes(segment, b"", b"")
    assert dump(capsys, "--files", str(index))[1] == [f"Dumping {index}", f"{index} is empty."]


def test_index_entries_that_disagree_with_the_log_are_reported_like_kafka(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index, _ = write_indexes(segment, struct.pack(">ii", 1, 0), b"")
    code, out, err = dump(capsys, "--files", str(index))
    assert code == 1
    assert out[1] == "offset: 1 position: 0"
    assert err == [f"Mismatches in :{index.absolute()}", "  Index offset: 1, log offset: 2"]


def test_a_damaged_index_fails_the_sanity_check(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index, _ = write_indexes(
        segment, struct.pack(">ii", 3, len(NEWS)) + struct.pack(">ii", 2, 0), b""
    )
    code, _, err = dump(capsys, "--files", str(index), "--index-sanity-check")
    assert code == 1
    assert err[0].startswith(f"{index} failed the sanity check")


def test_a_sound_index_passes_the_sanity_check(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index, timeindex = write_indexes(
        segment, struct.pack(">ii", 2, 0), struct.pack(">qi", 1700000000002, 2)
    )
    code, out, _ = dump(capsys, "--files", f"{index},{timeindex}", "--index-sanity-check")
    assert code == 0
    assert out == [
        f"Dumping {index}",
        f"{index} passed sanity check.",
        f"Dumping {timeindex}",
        f"{timeindex} passed sanity check.",
    ]


def test_a_partial_index_entry_is_reported(
    segment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, timeindex = write_indexes(segment, b"", struct.pack(">qi", 1700000000002, 2) + b"\x01")
    code, out, err = dump(capsys, "--files", str(timeindex))
    assert code == 1
    assert out[1] == "timestamp: 1700000000002 offset: 2"
    assert "1 bytes that are not a whole entry" in err[-1]


# -- command line ------------------------------------------------------------------------------


def test_unknown_files_are_ignored_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "leader-epoch-checkpoint"
    other.write_text("0\n0\n")
    code, out, err = dump(capsys, "--files", str(other))
    assert code == 0
    assert out == [f"Dumping {other}"] and err == [f"Ignoring unknown file {other}"]


def test_a_missing_file_fails_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "00000000000000000000.log"
    code, _, err = dump(capsys, "--files", str(missing))
    assert code == 1
    assert err == [f"Cannot read {missing}: No such file or directory"]


def test_files_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = dump(capsys)
    assert code == 2 and "--files" in err[-1]


@pytest.mark.parametrize("flag", ["--transaction-log-decoder", "--value-decoder-class"])
def test_kafka_decoder_flags_are_refused_by_name(
    segment: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    code, _, err = dump(capsys, "--files", str(segment), flag)
    assert code == 2 and f"{flag} is not supported" in err[-1]


def test_max_bytes_must_be_positive(segment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = dump(capsys, "--files", str(segment), "--max-bytes", "0")
    assert code == 2 and "--max-bytes" in err[-1]


def test_ctrl_c_exits_130_without_a_traceback(
    segment: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("storage.dump_log.dump_log", interrupted)
    assert main(["--files", str(segment)]) == 130


def test_the_tool_runs_as_a_module_and_exits_130_on_sigint(tmp_path: Path) -> None:
    fifo = tmp_path / "00000000000000000000.log"
    os.mkfifo(fifo)  # opening it blocks until a writer comes: the tool waits there
    proc = subprocess.Popen(
        [sys.executable, "-m", "storage.dump_log", "--files", str(fifo)],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed just before the tool opens the FIFO
        assert first.decode() == f"Dumping {fifo}\n"
        interrupt_when_blocked(proc)
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err


def test_a_reader_that_goes_away_ends_the_dump_quietly(tmp_path: Path) -> None:
    log = tmp_path / "00000000000000000000.log"
    # About 600 KB of output: far more than a pipe buffers, so the tool meets the closed pipe.
    log.write_bytes(
        b"".join(build_batch([NewRecord(None, b"v", 1)], base_offset=i) for i in range(2000))
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "storage.dump_log", "--files", str(log), "--print-data-log"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"Dumping")
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert err == b""


# -- .snapshot ---------------------------------------------------------------------------------


def test_a_producer_snapshot_prints_like_kafkas_dump_producer_id_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshots = ProducerSnapshots(tmp_path)
    path = snapshots.write(
        42,
        [
            ProducerSnapshotEntry(4000, 2, 9, 41, 4, 1700000000000),
            ProducerSnapshotEntry(4001, 0, 1, 12, 3, -1, 5, 10),  # sequences wrapped
            ProducerSnapshotEntry(4002, 7, -1, -1, 0, 1700000000001, 3),  # an epoch only
        ],
    )
    code, out, err = dump(capsys, "--files", str(path))
    assert code == 0 and err == []
    assert out == [
        f"Dumping {path}",
        "producerId: 4000 producerEpoch: 2 coordinatorEpoch: -1 currentTxnFirstOffset: "
        "OptionalLong.empty lastTimestamp: 1700000000000 firstSequence: 5 lastSequence: 9 "
        "lastOffset: 41 offsetDelta: 4 timestamp: 1700000000000",
        "producerId: 4001 producerEpoch: 0 coordinatorEpoch: 5 currentTxnFirstOffset: "
        "OptionalLong[10] lastTimestamp: -1 firstSequence: 2147483646 lastSequence: 1 "
        "lastOffset: 12 offsetDelta: 3 timestamp: -1",
        "producerId: 4002 producerEpoch: 7 coordinatorEpoch: 3 currentTxnFirstOffset: "
        "OptionalLong.empty lastTimestamp: 1700000000001 ",
    ]


def test_a_corrupt_producer_snapshot_is_reported_with_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ProducerSnapshots(tmp_path).write(42, [ProducerSnapshotEntry(4000, 2, 9, 41, 4)])
    path.write_bytes(path.read_bytes()[:-1])
    code, out, err = dump(capsys, "--files", str(path))
    assert code == 1 and out == [f"Dumping {path}"]
    assert len(err) == 1 and "malformed producer snapshot" in err[0] and str(path) in err[0]
