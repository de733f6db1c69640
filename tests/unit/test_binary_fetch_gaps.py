"""The binary fetch (``Accept: application/vnd.kafka.batch``) over a compacted log's gaps: its
``Kafka-Next-Offset`` moves past every offset the read showed to hold no batch below the high
watermark, as the JSON fetch's next offset does (storage/record_reads.py), so a client at a gap
below the high watermark is never told to fetch the same offset again. Both log kinds, the file
log written as Kafka's cleaner leaves one and its in-memory twin; no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from client.protocol import NEXT_OFFSET_HEADER
from server.http_batches import fetch_batches, read_batches
from server.partition import LeaderState, Partition
from storage.batch import build_batch, iter_batches
from storage.log import Log
from storage.log_config import LogConfig
from storage.memory_log import MemoryLog
from tests.gapped_batches import empty_batch, rec, sparse_batch

CONFIG = LogConfig(cleanup_policy="compact")
# Records 0..4 whole; 5..9 cleaned away (a whole batch); of the batch 10..14 only record 12
# left; an empty batch 15..16 (an idempotent producer's last); record 17. Log end: 18.
CLEANED = (
    build_batch([rec(o) for o in range(5)], base_offset=0)
    + sparse_batch([12], base_offset=10, last_offset=14)
    + empty_batch(15, 16, producer_id=4, base_sequence=0)
    + build_batch([rec(17)], base_offset=17)
)


def memory_log(_tmp_path: Path) -> MemoryLog:
    log = MemoryLog(CONFIG)
    log.append_batches(CLEANED)
    log.flush()
    return log


def file_log(tmp_path: Path) -> Log:
    directory = tmp_path / "t-0"
    directory.mkdir()
    (directory / f"{0:020d}.log").write_bytes(CLEANED)
    return Log.open(directory, CONFIG)


LOGS: list[Callable[[Path], MemoryLog | Log]] = [memory_log, file_log]


def leader(log: MemoryLog | Log, high_watermark: int) -> Partition:
    partition = Partition(
        topic="t",
        topic_id="AAAAAAAAAAAAAAAAAAAAAQ",
        index=0,
        node_id=1,
        log=log,
        state=LeaderState(1, 0, (1,), (1,)),
    )
    assert log.update_high_watermark(high_watermark) == high_watermark
    return partition


def fetch(partition: Partition, offset: int, max_bytes: int = 1 << 20) -> tuple[list[int], int]:
    """The base offsets of the batches a binary fetch at ``offset`` sends, and its next
    offset."""
    parts, next_offset = asyncio.run(read_batches(partition, offset, max_bytes))
    return [h.base_offset for part in parts for _p, h in iter_batches(part)], next_offset


@pytest.mark.parametrize("make_log", LOGS)
def test_a_fetch_in_a_gap_below_the_high_watermark_moves_to_the_high_watermark(
    tmp_path: Path, make_log: Callable[[Path], MemoryLog | Log]
) -> None:
    log = make_log(tmp_path)
    # The high watermark inside the gap 5..9 (a follower truncated there reported it).
    partition = leader(log, 7)
    for offset in (5, 6):
        assert fetch(partition, offset) == ([], 7), offset
    # At the high watermark: nothing to move past, the same offset again.
    assert fetch(partition, 7) == ([], 7)
    # From the start: the batch 0..4, then nothing below the high watermark.
    assert fetch(partition, 0) == ([0], 7)
    log.close()


@pytest.mark.parametrize("make_log", LOGS)
def test_a_fetch_in_a_gap_goes_on_to_the_next_batch_below_the_high_watermark(
    tmp_path: Path, make_log: Callable[[Path], MemoryLog | Log]
) -> None:
    log = make_log(tmp_path)
    partition = leader(log, 18)
    assert fetch(partition, 5) == ([10, 15, 17], 18)
    assert fetch(partition, 13) == ([10, 15, 17], 18), "the batch holding the offset, whole"
    # max_bytes stops after the first batch: the next fetch starts after it, not at the HW.
    first = len(sparse_batch([12], base_offset=10, last_offset=14))
    assert fetch(partition, 5, max_bytes=first) == ([10], 15)
    # The high watermark at the empty batch's base: the fetch ends at it.
    partition = leader(log, 15)
    assert fetch(partition, 5) == ([10], 15)
    log.close()


def test_the_answer_carries_the_next_offset_past_the_gap(tmp_path: Path) -> None:
    partition = leader(memory_log(tmp_path), 10)
    response = asyncio.run(fetch_batches(partition, 5, 1 << 20))
    assert response.body == b""
    assert response.headers[NEXT_OFFSET_HEADER] == "10"
