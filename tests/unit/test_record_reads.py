"""Where a reader goes on after a read of a log with offset gaps (storage/record_reads.py),
and the JSON fetch built on it (server/http_records.py): past the last batch read, never
back to the last record + 1, and past a range that holds nothing up to the high watermark.
The logs are MemoryLogs holding batches as Kafka's cleaner writes them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from server import http_records, limits
from storage.batch import (
    NewRecord,
    assemble_batch,
    build_batch,
    compressed_batch,
    decode_batch,
    decompressed_batch,
    encode_record,
)
from storage.compression import GZIP, LZ4, SNAPPY, ZSTD, compress
from storage.errors import CorruptRecordError
from storage.memory_log import MemoryLog
from storage.record_reads import records_in
from tests.gapped_batches import empty_batch, rec, sparse_batch

NOW_MS = 1_700_000_000_000

# Records 0, 2 (batch 0..4), an empty batch 5..7, a gap 8..9, records 10, 12 (batch 10..12),
# then (from 13) a batch of records 13..15 with none cleaned.
BATCHES = [
    sparse_batch([0, 2], base_offset=0, last_offset=4),
    empty_batch(5, 7, producer_id=2, base_sequence=0),
    sparse_batch([10, 12], base_offset=10, last_offset=12),
    build_batch([rec(13), rec(14), rec(15)], base_offset=13),
]
DATA = b"".join(BATCHES)


def offsets_and_next(
    data: bytes, offset: int, high: int, max_records: int | None = None
) -> tuple[list[int], int]:
    read = records_in(data, offset=offset, low=offset, high=high, max_records=max_records)
    return [r.offset for r in read.records], read.next_offset


def test_the_next_offset_is_after_the_last_batch_not_the_last_record() -> None:
    assert offsets_and_next(BATCHES[0], 0, 16) == ([0, 2], 5)
    assert offsets_and_next(BATCHES[0] + BATCHES[1], 0, 16) == ([0, 2], 8)


def test_a_read_of_only_an_empty_batch_still_moves_on() -> None:
    assert offsets_and_next(BATCHES[1], 5, 16) == ([], 8)


def test_a_read_of_only_records_below_the_offset_still_moves_on() -> None:
    # Asked from 3 (cleaned away), the batch holding it comes whole: its records 0 and 2
    # are not the reader's, its end is.
    assert offsets_and_next(BATCHES[0], 3, 16) == ([], 5)


def test_a_record_limit_inside_a_batch_stops_after_the_last_record_taken() -> None:
    assert offsets_and_next(DATA, 0, 16, max_records=1) == ([0], 1)
    assert offsets_and_next(DATA, 0, 16, max_records=2) == ([0, 2], 5)
    assert offsets_and_next(DATA, 0, 16, max_records=3) == ([0, 2, 10], 11)
    assert offsets_and_next(DATA, 11, 16, max_records=1) == ([12], 13)


def test_nothing_read_below_the_high_watermark_moves_on_to_it() -> None:
    # The log read finds no batch below its bound only when none lies at or after the
    # offset: the whole range up to the bound is empty.
    assert offsets_and_next(b"", 8, 10) == ([], 10)
    assert offsets_and_next(b"", 10, 10) == ([], 10)


def test_a_batch_reaching_past_the_high_watermark_is_read_again_from_it() -> None:
    assert offsets_and_next(BATCHES[3], 13, 15) == ([13, 14], 15)


@dataclass
class TwinPartition:
    """What server/http_records.py's reads use of a partition."""

    log: MemoryLog
    high_watermark: int
    closed: bool = False


def twin(high_watermark: int | None = None) -> TwinPartition:
    log = MemoryLog()
    log.append_batches(DATA)
    log.update_high_watermark(16 if high_watermark is None else high_watermark)
    return TwinPartition(log, log.high_watermark)


def read_in_steps(
    partition: TwinPartition, offset: int, max_bytes: int, max_records: int
) -> tuple[list[int], int]:
    read = asyncio.run(
        http_records._read_in_steps(partition, offset, max_bytes, max_records)  # type: ignore[arg-type]
    )
    return [r.offset for r in read.records], read.next_offset


@pytest.mark.parametrize("step_bytes", [1, 100, 1 << 20])
def test_the_json_fetch_reads_across_gaps_in_steps(
    monkeypatch: pytest.MonkeyPatch, step_bytes: int
) -> None:
    # Small steps make every step one batch: an empty batch or a gap between two steps must
    # not end the answer early or send the reader back.
    monkeypatch.setattr(limits, "STREAM_READ_BYTES", step_bytes)
    assert read_in_steps(twin(), 0, 1 << 20, 100) == ([0, 2, 10, 12, 13, 14, 15], 16)
    assert read_in_steps(twin(), 3, 1 << 20, 100) == ([10, 12, 13, 14, 15], 16)
    assert read_in_steps(twin(), 0, 1 << 20, 3) == ([0, 2, 10], 11)


def test_the_json_fetch_from_a_gap_below_the_high_watermark_moves_on() -> None:
    partition = twin(high_watermark=10)
    # 8 and 9 hold nothing and the high watermark is 10: the answer is empty but says 10,
    # so the reader's next long poll waits there instead of answering at once forever.
    assert read_in_steps(partition, 8, 1 << 20, 100) == ([], 10)
    assert read_in_steps(partition, 5, 1 << 20, 100) == ([], 10)
    assert read_in_steps(partition, 10, 1 << 20, 100) == ([], 10)


# -- compressed batches: decoded lazily, bytes counted decompressed, off the event loop ---------

VALUE_BYTES = 1000
# 2,000 records of 1,000 zero bytes: 2 MB of records in a zstd batch of a few KB.
BIG = build_batch(
    [NewRecord(None, bytes(VALUE_BYTES), NOW_MS + i) for i in range(2000)], compression=ZSTD
)
RECORD_BYTES = 1009  # each record's bytes in the decompressed section (length varint first)


def with_records(first: bytes, rest: bytes, count: int, codec: int) -> bytes:
    """A batch of ``count`` records whose records section is ``first`` then ``rest``
    (``rest`` need not parse), compressed with ``codec``, its CRC right."""
    return assemble_batch(
        compress(codec, first + rest),
        base_offset=0,
        last_offset_delta=count - 1,
        record_count=count,
        base_timestamp=NOW_MS,
        max_timestamp=NOW_MS,
        attributes=codec,
    )


def test_a_read_of_a_compressed_batch_decodes_only_the_records_it_takes() -> None:
    first = encode_record(NewRecord(b"k", b"v", NOW_MS), 0, NOW_MS)
    # Records 1.. do not parse (a length past the section): a whole decode fails on them.
    batch = with_records(first, b"\x7e" * 20, 5, GZIP)
    with pytest.raises(CorruptRecordError):
        decode_batch(batch)
    read = records_in(batch, offset=0, low=0, high=5, max_records=1)
    assert [(r.offset, r.value) for r in read.records] == [(0, b"v")]
    assert read.next_offset == 1


def test_records_below_the_offset_of_a_dense_batch_are_stepped_over_undecoded() -> None:
    # Record 0's header name is not UTF-8: decoding it fails, stepping over it by its length
    # does not, so a read resuming at offset 1 reads on.
    bad = encode_record(NewRecord(b"k", b"v", NOW_MS, (("x", b"y"),)), 0, NOW_MS)
    bad = bad.replace(b"\x02x", b"\x02\xff")
    good = encode_record(NewRecord(b"k", b"w", NOW_MS), 1, NOW_MS)
    batch = with_records(bad, good, 2, LZ4)
    with pytest.raises(CorruptRecordError, match="not UTF-8"):
        records_in(batch, offset=0, low=0, high=2)
    read = records_in(batch, offset=1, low=1, high=2)
    assert [(r.offset, r.value) for r in read.records] == [(1, b"w")]
    assert read.next_offset == 2


def test_max_bytes_counts_a_compressed_batchs_records_decompressed() -> None:
    budget = 10 * RECORD_BYTES
    assert len(BIG) < budget  # the stored batch alone is under the budget
    read = records_in(BIG, offset=0, low=0, high=2000, max_bytes=budget)
    assert [r.offset for r in read.records] == list(range(10))
    assert read.next_offset == 10
    assert read.decoded_bytes == budget
    # At least one record, whatever the budget; uncompressed batches are the log read's to
    # bound (a batch is read whole).
    assert len(records_in(BIG, offset=0, low=0, high=2000, max_bytes=1).records) == 1
    plain = decompressed_batch(BIG)
    assert len(records_in(plain, offset=0, low=0, high=2000, max_bytes=1).records) == 2000


def test_reads_that_stop_inside_a_compressed_batch_resume_inside_it() -> None:
    # Every record once, in order, the batch's end after the last; and in a compacted
    # compressed batch (offsets 0, 3, 4, 9 of 0..11) the slow path finds the same.
    offset, seen = 0, []
    while offset < 2000:
        read = records_in(BIG, offset=offset, low=offset, high=2000, max_bytes=300 * RECORD_BYTES)
        assert read.next_offset > offset
        seen += [r.offset for r in read.records]
        offset = read.next_offset
    assert seen == list(range(2000))
    sparse = sparse_batch([0, 3, 4, 9], base_offset=0, last_offset=11)
    compacted = compressed_batch(sparse, SNAPPY)
    got = []
    offset = 0
    while offset < 12:
        read = records_in(compacted, offset=offset, low=offset, high=12, max_records=1)
        got.append(([r.offset for r in read.records], read.next_offset))
        offset = read.next_offset
    assert got == [([0], 1), ([3], 4), ([4], 5), ([9], 12)]


@dataclass
class CountedThreads:
    calls: int = 0


def test_the_json_fetch_decodes_compressed_batches_in_a_thread_and_resumes_inside_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = MemoryLog()
    log.append_batches(BATCHES[3] + BIG.replace(b"\x00" * 8, (16).to_bytes(8, "big"), 1))
    log.update_high_watermark(2016)
    partition = TwinPartition(log, 2016)
    threads = CountedThreads()
    to_thread = asyncio.to_thread

    async def counted(func: Any, /, *args: Any) -> Any:
        threads.calls += 1
        return await to_thread(func, *args)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    # The uncompressed batch is read on the loop; the compressed one in a thread, stopped
    # by the bytes of its records (decompressed) and resumed inside it by the next fetch.
    budget = 4 * limits.STREAM_READ_BYTES
    offsets, next_offset = read_in_steps(partition, 13, budget, 10_000)
    assert offsets == list(range(13, next_offset))
    assert 13 + 3 < next_offset < 2016
    assert (next_offset - 16) * RECORD_BYTES <= budget + RECORD_BYTES
    assert threads.calls >= 1
    offsets, after = read_in_steps(partition, next_offset, 1 << 26, 10_000)
    assert offsets == list(range(next_offset, 2016)) and after == 2016
    assert read_in_steps(partition, 500, 1, 1) == ([500], 501)
