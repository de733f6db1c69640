"""What the cleaner driver (server.log_cleaner) keeps for /metrics, and the families a scrape
makes of it: Kafka's LogCleaner gauges over the threads' last cleans, LogCleanerManager's over
the last pick and the uncleanable logs, our counters; and each thread's read window, half its
share of log.cleaner.io.buffer.size as Kafka splits it. Real logs in tmp_path, the driver's
own loop; no sockets."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import server.log_cleaner as log_cleaner_module
from server.clock import ManualClock
from server.log_cleaner import LogCleaner
from server.metrics import CleanerFacts, CleanerSlotFacts, NodeFacts, cleaner_families, families
from server.metrics import gather_cleaner as gather
from storage.batch import Record
from storage.clean_map import OffsetMap
from storage.cleaner import CLEANER_READ_BYTES, clean_log
from storage.log import Log
from tests.unit.cleaner_logs import CONFIG, NOW, FakePartition, T, driver, read_all, write


@pytest.fixture
def dirty(tmp_path: Path) -> Iterator[Log]:
    log = Log.open(tmp_path / "t-0", CONFIG)
    write(log, 200)
    yield log
    log.close()


def scraped(cleaner: LogCleaner) -> dict[str, float]:
    facts = gather(cleaner)
    assert facts is not None
    return {m.name: m.samples[0].value for m in cleaner_families(facts)}


# -- the families, over made-up facts --------------------------------------------------------


def test_the_gauges_are_kafkas_over_the_threads_last_cleans() -> None:
    facts = CleanerFacts(
        slots=(
            CleanerSlotFacts(1000, 250, 2.5, 0.4, 3_000),
            CleanerSlotFacts(3000, 750, 0.5, 0.9, 0),
            CleanerSlotFacts(),  # a thread that has not cleaned yet
        ),
        max_dirty_ratio=0.75,
        uncleanable_partitions=2,
        uncleanable_bytes=4096,
        since_last_run_s=1.5,
        cleans=7,
        bytes_read=9000,
        bytes_written=1000,
    )
    values = {m.name: m.samples[0].value for m in cleaner_families(facts)}
    assert values == {
        "kraft_log_cleaner_buffer_utilization_max_ratio": 0.9,
        "kraft_log_cleaner_recopy_ratio": 0.25,  # (250 + 750) / (1000 + 3000)
        "kraft_log_cleaner_clean_time_max_seconds": 2.5,
        "kraft_log_cleaner_compaction_delay_max_seconds": 3.0,
        "kraft_log_cleaner_dirty_max_ratio": 0.75,
        "kraft_log_cleaner_uncleanable_partitions": 2,
        "kraft_log_cleaner_uncleanable_bytes": 4096,
        "kraft_log_cleaner_time_since_last_run_seconds": 1.5,
        "kraft_log_cleaner_cleans": 7,
        "kraft_log_cleaner_bytes_read": 9000,
        "kraft_log_cleaner_bytes_written": 1000,
    }


def test_before_any_clean_every_gauge_is_zero_and_a_node_without_a_cleaner_has_none() -> None:
    values = {m.name: m.samples[0].value for m in cleaner_families(CleanerFacts())}
    assert set(values.values()) == {0}
    names = {m.name for m in families(NodeFacts())}
    assert not [n for n in names if n.startswith("kraft_log_cleaner")]
    with_cleaner = {m.name for m in families(NodeFacts(cleaner=CleanerFacts()))}
    assert set(values) <= with_cleaner


def test_a_node_whose_cleaner_does_not_run_reports_none(tmp_path: Path) -> None:
    for settings in ({"enable": False}, {"threads": 0}):
        assert gather(driver(tmp_path, [], ManualClock(NOW), **settings)) is None


# -- the driver's state ------------------------------------------------------------------------


def test_a_pick_sets_the_last_run_the_dirtiest_ratio_and_the_compaction_delay(
    tmp_path: Path, dirty: Log
) -> None:
    # Records from T on, max.compaction.lag.ms 1 s, now T + 10 s: 9 s overdue.
    dirty.update_config(dataclasses.replace(CONFIG, max_compaction_lag_ms=1_000))
    clean = Log.open(tmp_path / "c-0", CONFIG)
    try:
        write(clean, 3)  # all in the active segment: nothing cleanable, a ratio of 0
        clock = ManualClock(NOW)
        cleaner = driver(tmp_path, [FakePartition(clean, "c"), FakePartition(dirty)], clock)
        clock.advance_ms(2_500)
        assert scraped(cleaner)["kraft_log_cleaner_time_since_last_run_seconds"] == 2.5
        picked = cleaner.pick()
        assert picked is not None and picked.log is dirty
        assert cleaner.last_run_ms == NOW + 2_500 and cleaner.since_last_run_ms() == 0
        expected = dirty.to_clean(None, NOW + 2_500)
        assert cleaner.max_dirty_ratio == expected.dirty_ratio == 1.0  # never cleaned
        assert picked.compaction_delay_ms == (NOW + 2_500 - 1_000) - T
    finally:
        clean.close()


def test_the_driver_loop_records_each_clean_for_the_scrape(tmp_path: Path, dirty: Log) -> None:
    size_before = dirty.size_bytes

    async def run() -> LogCleaner:
        clock = ManualClock(NOW)
        cleaner = driver(tmp_path, [FakePartition(dirty)], clock, backoff_ms=10)
        failures: list[str] = []
        cleaner.start(failures.append)
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while cleaner.cleans == 0 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
        finally:
            await cleaner.stop()
        assert not failures
        return cleaner

    cleaner = asyncio.run(run())
    assert cleaner.cleans == 1, "one dirty range: cleaned once, then nothing is left to clean"
    stats = cleaner.last_stats[0]
    assert stats is not None
    assert 0 < stats.bytes_written < stats.bytes_read
    assert cleaner.bytes_read == stats.bytes_read + stats.map_bytes_read
    assert cleaner.bytes_written == stats.bytes_written
    assert dirty.size_bytes == size_before - (stats.bytes_read - stats.bytes_written)
    values = scraped(cleaner)
    assert values["kraft_log_cleaner_recopy_ratio"] == stats.bytes_written / stats.bytes_read
    assert values["kraft_log_cleaner_buffer_utilization_max_ratio"] == stats.buffer_utilization
    assert 0 < stats.buffer_utilization < 1
    assert values["kraft_log_cleaner_clean_time_max_seconds"] == stats.elapsed_s
    assert values["kraft_log_cleaner_cleans"] == 1
    assert values["kraft_log_cleaner_uncleanable_partitions"] == 0
    # After the clean, the log's cleaned part is all its cleanable bytes: its ratio is 0.
    assert values["kraft_log_cleaner_dirty_max_ratio"] == 0.0


def test_an_uncleanable_log_is_counted_with_the_bytes_it_would_clean(
    tmp_path: Path, dirty: Log
) -> None:
    first = dirty.segments[0].log_path
    data = bytearray(first.read_bytes())
    data[20] ^= 0xFF  # the first batch's header no longer parses
    first.write_bytes(bytes(data))
    cleaner = driver(tmp_path, [FakePartition(dirty)], ManualClock(NOW))
    picked = cleaner.pick()
    assert picked is not None
    assert cleaner.clean(picked, OffsetMap()) is None
    values = scraped(cleaner)
    assert values["kraft_log_cleaner_uncleanable_partitions"] == 1
    assert values["kraft_log_cleaner_uncleanable_bytes"] == picked.target.cleanable_bytes > 0
    assert values["kraft_log_cleaner_cleans"] == 0
    cleaner.forget(("t", 0))  # the partition left the node
    assert scraped(cleaner)["kraft_log_cleaner_uncleanable_bytes"] == 0


# -- the read window ---------------------------------------------------------------------------


def test_each_thread_reads_through_half_its_share_of_the_io_buffer(
    tmp_path: Path, dirty: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        windows.append(kwargs["read_window_bytes"])
        return clean_log(*args, **kwargs)

    monkeypatch.setattr(log_cleaner_module, "clean_log", spy)
    cleaner = driver(
        tmp_path, [FakePartition(dirty)], ManualClock(NOW), threads=2, io_buffer_size=1000
    )
    picked = cleaner.pick()
    assert picked is not None
    assert cleaner.clean(picked, OffsetMap()) is not None
    assert windows == [250]


@pytest.mark.parametrize("window", [0, 1, 150, 100_000])
def test_any_read_window_cleans_to_the_same_bytes(tmp_path: Path, window: int) -> None:
    """Batches (about 50 bytes each) straddle small windows, or one window holds a segment."""
    cleaned: list[tuple[bytes, list[Record]]] = []
    for name, read_window in (("default", CLEANER_READ_BYTES), ("window", window)):
        log = Log.open(tmp_path / name / "t-0", CONFIG)
        try:
            write(log, 200)
            clean_log(
                log.directory,
                log.cleaning_view()[0],
                log.to_clean(None, NOW),
                config=CONFIG,
                offset_map=OffsetMap(),
                last_data_offsets={},
                now_ms=NOW,
                commit=log.replace_segments,
                read_window_bytes=read_window,
            )
            files = b"".join(s.log_path.read_bytes() for s in log.segments)
            cleaned.append((files, read_all(log)))
        finally:
            log.close()
    assert cleaned[0] == cleaned[1]
    assert len(cleaned[0][1]) < 200
