"""A live log cleaned in place (Log.replace_segments) and the node's cleaner driver
(server.log_cleaner): what readers see during and after, what a reopen finds, what aborts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.batch import NewRecord, Record
from storage.checkpoints import OffsetCheckpointFile
from storage.clean_map import OffsetMap
from storage.cleaner import CLEANER_CHECKPOINT_FILE, CleanAbortedError, clean_log
from storage.log import Log
from storage.log_config import LogConfig
from tests.unit.cleaner_logs import CONFIG, KEYS, FakePartition, T, driver, read_all, write


@pytest.fixture
def dirty_log(tmp_path: Path) -> Iterator[Log]:
    log = Log.open(tmp_path / "t-0", CONFIG)
    write(log, 200)
    yield log
    log.close()


def clean_once(log: Log) -> int:
    segments = log.cleaning_view()[0]
    target = log.to_clean(None, T + 10_000)
    result = clean_log(
        log.directory,
        segments,
        target,
        config=log.config,
        offset_map=OffsetMap(),
        last_data_offsets={},
        now_ms=T + 10_000,
        commit=log.replace_segments,
        fsync=log.fsync,
    )
    return result.checkpoint


def test_a_cleaned_log_reads_each_keys_latest_below_the_active_segment(dirty_log: Log) -> None:
    before = read_all(dirty_log)
    size_before = dirty_log.size_bytes
    end_before = dirty_log.log_end_offset
    checkpoint = clean_once(dirty_log)
    after = read_all(dirty_log)
    active = dirty_log.active_segment_base_offset
    assert checkpoint == active
    latest_below: dict[bytes | None, Record] = {}
    for record in before:
        if record.offset < active:
            latest_below[record.key] = record
    expected = sorted(latest_below.values(), key=lambda r: r.offset) + [
        r for r in before if r.offset >= active
    ]
    assert after == expected
    assert dirty_log.log_end_offset == end_before
    assert dirty_log.size_bytes < size_before
    # Appends and reads go on as before.
    write(dirty_log, 3, start=500)
    assert [r.value for r in read_all(dirty_log)[-3:]] == [b"v00500", b"v00501", b"v00502"]


def test_a_reopened_cleaned_log_is_the_same_log(
    dirty_log: Log, caplog: pytest.LogCaptureFixture
) -> None:
    clean_once(dirty_log)
    records = read_all(dirty_log)
    bases = [s.base_offset for s in dirty_log.segments]
    end = dirty_log.log_end_offset
    dirty_log.close()
    with caplog.at_level(logging.WARNING):
        reopened = Log.open(dirty_log.directory, CONFIG, recovery_point=0)
    try:
        assert [s.base_offset for s in reopened.segments] == bases
        assert reopened.log_end_offset == end
        reopened.update_high_watermark(end)
        assert read_all(reopened) == records
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        reopened.close()


def test_a_group_retired_by_retention_meanwhile_is_not_swapped_in(dirty_log: Log) -> None:
    segments = dirty_log.cleaning_view()[0]
    target = dirty_log.to_clean(None, T + 10_000)
    records = read_all(dirty_log)

    def retention_first(cleaned: object) -> None:
        # Retention takes the oldest segment between the clean and its swap.
        dirty_log.update_config(LogConfig(cleanup_policy="compact,delete", retention_ms=1))
        assert dirty_log.delete_retained_segments(T + 10**9) > 0
        dirty_log.replace_segments(cleaned)  # type: ignore[arg-type]

    with pytest.raises(CleanAbortedError):
        clean_log(
            dirty_log.directory,
            segments,
            target,
            config=CONFIG,
            offset_map=OffsetMap(),
            last_data_offsets={},
            now_ms=T + 10_000,
            commit=retention_first,
        )
    assert not list(dirty_log.directory.glob("*.cleaned"))
    assert not list(dirty_log.directory.glob("*.replaced"))
    left = read_all(dirty_log)
    assert left == [r for r in records if r.offset >= dirty_log.log_start_offset]


# -- the driver ------------------------------------------------------------------------------


def test_the_driver_cleans_the_filthiest_log_and_keeps_its_position(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dirty = Log.open(tmp_path / "t-0", CONFIG)
    barely = Log.open(tmp_path / "t-1", CONFIG)
    plain = Log.open(tmp_path / "p-0", LogConfig(segment_bytes=2_000))
    try:
        write(dirty, 200)
        write(barely, 30)
        write(plain, 200)
        partitions = [
            FakePartition(dirty),
            FakePartition(barely, index=1),
            FakePartition(plain, "p"),
        ]
        cleaner = driver(tmp_path, partitions)
        picked = cleaner.pick()
        assert picked is not None and picked.log is dirty
        with caplog.at_level(logging.INFO):
            result = cleaner.clean(picked, OffsetMap())
        assert result is not None
        assert "cleaned log t-0 (dirty section = [0, " in caplog.text
        saved = OffsetCheckpointFile(tmp_path / CLEANER_CHECKPOINT_FILE).read()
        assert saved == {("t", 0): dirty.active_segment_base_offset}
        # Nothing dirty is left in t-0; t-1 and the log that does not compact stay.
        picked = cleaner.pick()
        assert picked is None or picked.log is barely
        # A new driver (a restart) starts from the file.
        assert driver(tmp_path, partitions).checkpoint(("t", 0)) == saved[("t", 0)]
    finally:
        for log in (dirty, barely, plain):
            log.close()


def test_a_log_the_cleaner_cannot_read_is_marked_and_skipped(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "t-0", CONFIG)
    try:
        write(log, 200)
        first = log.segments[0].log_path
        data = bytearray(first.read_bytes())
        data[20] ^= 0xFF  # inside the first batch's magic and CRC: the header does not parse
        first.write_bytes(bytes(data))
        cleaner = driver(tmp_path, [FakePartition(log)])
        picked = cleaner.pick()
        assert picked is not None
        assert cleaner.clean(picked, OffsetMap()) is None
        assert ("t", 0) in cleaner.uncleanable
        assert cleaner.pick() is None
    finally:
        log.close()


def test_a_closed_partition_aborts_quietly(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "t-0", CONFIG)
    try:
        write(log, 200)
        partition = FakePartition(log)
        cleaner = driver(tmp_path, [partition])
        picked = cleaner.pick()
        assert picked is not None
        partition.closed = True
        assert cleaner.clean(picked, OffsetMap()) is None
        assert cleaner.checkpoint(("t", 0)) is None
        assert not list(log.directory.glob("*.cleaned"))
    finally:
        log.close()


def test_the_cleaner_stays_below_the_recovery_point(tmp_path: Path) -> None:
    # flush.messages above 1: the HW may pass what is fsynced; the cleaner may not.
    log = Log.open(tmp_path / "t-0", CONFIG)
    try:
        write(log, 100)  # flushed: the recovery point is the log end
        flushed = log.recovery_point
        for i in range(100, 150):
            log.append_as_leader([NewRecord(b"k%d" % (i % KEYS), b"v", T + i)], 0)
        log.update_high_watermark(log.log_end_offset)
        assert log.cleaning_view()[3] == flushed < log.high_watermark
    finally:
        log.close()


def test_a_cleaned_log_keeps_its_gaps_at_a_crash_restart_after_a_switch_to_delete(
    dirty_log: Log,
) -> None:
    # Cleaned, then the topic goes back to delete, then a crash: the recovery point on disk
    # may be older than the clean. Recovery re-reads the gaps and must keep them.
    clean_once(dirty_log)
    records = read_all(dirty_log)
    end = dirty_log.log_end_offset
    reopened = Log.open(dirty_log.directory, LogConfig(segment_bytes=2_000), cleaned=True)
    try:
        assert reopened.log_end_offset == end
        reopened.update_high_watermark(end)
        assert read_all(reopened) == records
    finally:
        reopened.close()
