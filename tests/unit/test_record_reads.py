"""Where a reader goes on after a read of a log with offset gaps (storage/record_reads.py),
and the JSON fetch built on it (server/http_records.py): past the last batch read, never
back to the last record + 1, and past a range that holds nothing up to the high watermark.
The logs are MemoryLogs holding batches as Kafka's cleaner writes them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from server import http_records, limits
from storage.batch import build_batch
from storage.memory_log import MemoryLog
from storage.record_reads import records_in
from tests.gapped_batches import empty_batch, rec, sparse_batch

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
