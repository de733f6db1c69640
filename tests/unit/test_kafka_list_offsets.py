"""The offset lookups Kafka's ListOffsets and GET .../offsets share (server/http_records.
find_offset): earliest, latest, by timestamp and by the largest timestamp (KIP-734), each only
below the high watermark, over both log kinds; no sockets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from server.http_records import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP, find_offset
from server.partition import LeaderState, Partition
from storage.batch import NewRecord, build_batch
from storage.log import Log
from storage.log_config import LogConfig
from storage.memory_log import MemoryLog

# Three batches, leader epochs 0, 0 and 2; timestamps 100..104, then 90, 500, 500, then 300.
BATCHES = (
    build_batch([NewRecord(b"k", b"v", 100 + i) for i in range(5)], base_offset=0)
    + build_batch(
        [NewRecord(b"k", b"v", ts) for ts in (90, 500, 500)],
        base_offset=5,
        partition_leader_epoch=0,
    )
    + build_batch([NewRecord(b"k", b"v", 300)], base_offset=8, partition_leader_epoch=2)
)


def memory_log(_tmp_path: Path) -> MemoryLog:
    log = MemoryLog(LogConfig())
    log.append_batches(BATCHES)
    log.flush()
    return log


def file_log(tmp_path: Path) -> Log:
    directory = tmp_path / "t-0"
    directory.mkdir()
    log = Log.open(directory, LogConfig())
    log.append_batches(BATCHES)
    log.flush()
    return log


LOGS: list[Callable[[Path], MemoryLog | Log]] = [memory_log, file_log]


def leader(log: MemoryLog | Log, high_watermark: int) -> Partition:
    partition = Partition(
        topic="t",
        topic_id="AAAAAAAAAAAAAAAAAAAAAQ",
        index=0,
        node_id=1,
        log=log,
        state=LeaderState(1, 3, (1,), (1,)),
    )
    partition.restore_high_watermark(high_watermark)
    return partition


@pytest.mark.parametrize("make_log", LOGS)
def test_earliest_and_latest_are_the_log_start_and_the_high_watermark(
    make_log: Callable[[Path], MemoryLog | Log], tmp_path: Path
) -> None:
    partition = leader(make_log(tmp_path), 9)
    earliest = find_offset(partition, EARLIEST_TIMESTAMP)
    latest = find_offset(partition, LATEST_TIMESTAMP)
    assert earliest is not None and (earliest.offset, earliest.timestamp) == (0, -1)
    assert latest is not None and latest.offset == 9 and latest.leader_epoch == 3


@pytest.mark.parametrize("make_log", LOGS)
def test_a_timestamp_finds_the_first_record_at_or_after_it_with_its_own_timestamp(
    make_log: Callable[[Path], MemoryLog | Log], tmp_path: Path
) -> None:
    partition = leader(make_log(tmp_path), 9)
    found = find_offset(partition, 102)
    assert found is not None and (found.offset, found.timestamp, found.leader_epoch) == (2, 102, 0)
    later = find_offset(partition, 301)
    assert later is not None and (later.offset, later.timestamp) == (6, 500)
    assert find_offset(partition, 501) is None


@pytest.mark.parametrize("make_log", LOGS)
def test_the_largest_timestamp_is_its_first_record(
    make_log: Callable[[Path], MemoryLog | Log], tmp_path: Path
) -> None:
    partition = leader(make_log(tmp_path), 9)
    found = find_offset(partition, MAX_TIMESTAMP)
    assert found is not None and (found.offset, found.timestamp) == (6, 500)


@pytest.mark.parametrize("make_log", LOGS)
def test_nothing_at_or_above_the_high_watermark_is_found(
    make_log: Callable[[Path], MemoryLog | Log], tmp_path: Path
) -> None:
    partition = leader(make_log(tmp_path), 6)
    assert find_offset(partition, MAX_TIMESTAMP) is None  # offset 6 is not committed yet
    assert find_offset(partition, 301) is None
    found = find_offset(partition, 90)
    assert found is not None and found.offset == 0, "the first record at or after 90"
