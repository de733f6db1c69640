"""Compacted logs and a cleaner driver for the unit tests of server/log_cleaner.py and
Log.replace_segments: real logs in a temporary directory, partitions reduced to what the
cleaner reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from server.clock import ManualClock
from server.config import CleanerSettings
from server.log_cleaner import LogCleaner
from server.partition import Partition
from server.producer_state import ProducerStateTable
from storage.batch import NewRecord, Record
from storage.log import Log
from storage.log_config import LogConfig

T = 1_700_000_000_000
NOW = T + 10_000
CONFIG = LogConfig(cleanup_policy="compact", segment_bytes=2_000, index_interval_bytes=200)
KEYS = 5


@dataclass
class FakePartition:
    """The attributes of a Partition the cleaner reads."""

    log: Log
    topic: str = "t"
    index: int = 0
    closed: bool = False
    producers: ProducerStateTable = field(default_factory=ProducerStateTable)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.index}"


def write(log: Log, count: int, start: int = 0) -> dict[bytes, int]:
    """``count`` records over KEYS keys, one per batch, timestamps T + i, flushed and below the
    high watermark; returns each key's last offset."""
    latest: dict[bytes, int] = {}
    for i in range(start, start + count):
        key = b"k%d" % (i % KEYS)
        info = log.append_as_leader([NewRecord(key, b"v%05d" % i, T + i)], 0)
        latest[key] = info.last_offset
    log.flush()
    log.update_high_watermark(log.log_end_offset)
    return latest


def read_all(log: Log) -> list[Record]:
    """Every record from the log start, read as a consumer reads (past gaps)."""
    out: list[Record] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        read = log.fetch_records(offset, 1 << 20)
        out += read.records
        offset = read.next_offset
    return out


def driver(
    log_dir: Path,
    partitions: list[FakePartition],
    clock: ManualClock | None = None,
    **settings: Any,
) -> LogCleaner:
    """The node's cleaner over ``partitions`` (not started: tests call pick and clean)."""
    return LogCleaner(
        log_dir,
        CleanerSettings(**settings),
        lambda: cast(list[Partition], partitions),
        clock if clock is not None else ManualClock(wall_ms=NOW),
    )
