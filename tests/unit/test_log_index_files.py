"""Kafka's index file lengths and its clean shutdown, on one log: the active segment's indexes
preallocated, a sealed segment's trimmed to their entries with a final time-index entry, an
open after a clean shutdown that re-reads nothing, and an unclean stop (what ``kill -9``
leaves: the files as written so far) that recovers to the same log and the same indexes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from storage.batch import NewRecord
from storage.index import OFFSET_ENTRY_SIZE, TIME_ENTRY_SIZE, read_used_entries
from storage.limits import INDEX_PREALLOCATE_BYTES
from storage.log import Log
from storage.log_config import LogConfig
from storage.segment import Segment

T0 = 1_700_000_000_000
SMALL = LogConfig(segment_bytes=4000, index_interval_bytes=300)
OFFSET_INDEX_FILE_BYTES = 10485760  # Kafka's segment.index.bytes in whole 8-byte entries
TIME_INDEX_FILE_BYTES = 10485756  # ... in whole 12-byte entries


def recs(count: int, ts: int) -> list[NewRecord]:
    return [NewRecord(b"key", bytes([65 + i % 26]) * 40, ts + i) for i in range(count)]


def fill(log: Log, batches: int, start: int = 0) -> None:
    """Appends ``batches`` batches of 3 records, the largest timestamp in the middle one of
    every fourth (so a segment's largest timestamp is not always its last record's)."""
    for i in range(start, start + batches):
        ts = T0 + 10 * i + (500 if i % 4 == 1 else 0)
        log.append_as_leader(recs(3, ts), 1)


def used(path: Path) -> bytes:
    size = OFFSET_ENTRY_SIZE if path.suffix == ".index" else TIME_ENTRY_SIZE
    with open(path, "rb") as f:
        return read_used_entries(f.fileno(), size, os.fstat(f.fileno()).st_size)


def index_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*index"))}


def crash(log: Log) -> None:
    """What ``kill -9`` leaves: every file as written so far (the page cache survives a
    killed process), nothing sealed, trimmed or closed cleanly."""
    for segment in log.segments:
        segment.close()


def assert_active_preallocated(segment: Segment) -> None:
    assert segment.index_path.stat().st_size == OFFSET_INDEX_FILE_BYTES
    assert segment.time_index_path.stat().st_size == TIME_INDEX_FILE_BYTES
    assert used(segment.index_path) == segment.offset_index.to_bytes()
    assert used(segment.time_index_path) == segment.time_index.to_bytes()


def test_kafkas_preallocated_lengths_are_segment_index_bytes_in_whole_entries() -> None:
    assert INDEX_PREALLOCATE_BYTES == 10 * 1024 * 1024
    assert INDEX_PREALLOCATE_BYTES // OFFSET_ENTRY_SIZE * OFFSET_ENTRY_SIZE == 10485760
    assert INDEX_PREALLOCATE_BYTES // TIME_ENTRY_SIZE * TIME_ENTRY_SIZE == 10485756


def test_a_roll_trims_the_old_segments_indexes_and_preallocates_the_new_ones(
    tmp_path: Path,
) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 40)
    log.flush()
    *sealed, active = log.segments
    assert len(sealed) >= 2
    for segment in sealed:
        # Trimmed (Kafka's onBecomeInactiveSegment), ending with the largest timestamp.
        assert segment.index_path.read_bytes() == segment.offset_index.to_bytes()
        assert segment.time_index_path.read_bytes() == segment.time_index.to_bytes()
        assert segment.time_index.last_entry() == (
            segment.max_timestamp,
            segment.offset_of_max_timestamp,
        )
    assert_active_preallocated(active)
    log.close()


def test_a_clean_close_seals_the_active_segment_too(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 7)  # one segment, its largest timestamp (T0 + 552) not in its last batch
    active = log.segments[-1]
    largest = (active.max_timestamp, active.offset_of_max_timestamp)
    assert largest == (T0 + 552, 17) and active.next_offset == 21
    log.close()
    # Kafka's LogSegment.close: the final time-index entry, and every file trimmed.
    assert active.time_index.last_entry() == largest
    for path in (active.index_path, active.time_index_path):
        assert path.read_bytes() == used(path)
    assert len(active.time_index_path.read_bytes()) == 12 * len(active.time_index)


def test_an_open_after_a_clean_shutdown_re_reads_nothing_and_trusts_the_log_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    twin = Log.open(tmp_path / "twin-0", SMALL)  # the same appends, never closed between
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 30)
    fill(twin, 30)
    at_close = log.segments[-1]
    close_entry = (at_close.max_timestamp, at_close.offset_of_max_timestamp)
    log.close()
    crc_checks: list[int] = []
    monkeypatch.setattr("storage.recovery.check_crc_at", lambda *args: crc_checks.append(args[2]))
    reopened = Log.open(tmp_path / "t-0", SMALL, recovery_point=0, clean_shutdown=True)
    assert crc_checks == []  # Kafka's LogLoader skips recovery after a clean shutdown
    assert (reopened.log_end_offset, reopened.recovery_point) == (90, 90)
    assert reopened.offset_for_timestamp(T0 + 600) == 39
    assert_active_preallocated(reopened.segments[-1])
    # It goes on exactly as the log that never stopped (index entries, rolls, timestamps).
    fill(reopened, 30, start=30)
    fill(twin, 30, start=30)
    for mine, theirs in zip(reopened.segments, twin.segments, strict=True):
        assert (mine.base_offset, mine.next_offset, mine.max_timestamp) == (
            theirs.base_offset,
            theirs.next_offset,
            theirs.max_timestamp,
        )
        assert mine.offset_index.entries() == theirs.offset_index.entries()
    mine_segments, twin_segments = reopened.segments, twin.segments
    reopened.close()
    twin.close()
    for mine, theirs in zip(mine_segments, twin_segments, strict=True):
        assert mine.index_path.read_bytes() == theirs.index_path.read_bytes()
        # The close appended the then active segment's largest timestamp (Kafka's close does
        # too): the only difference a clean restart makes to the files.
        extra = {close_entry} if mine.base_offset == at_close.base_offset else set()
        assert mine.time_index.entries() == sorted(set(theirs.time_index.entries()) | extra)


def test_a_clean_shutdown_whose_active_segment_does_not_match_its_index_is_recovered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 8)
    log.close()
    active = sorted((tmp_path / "t-0").glob("*.log"))[-1]
    with open(active, "r+b") as f:  # cut inside the last batch
        f.truncate(active.stat().st_size - 5)
    with caplog.at_level(logging.WARNING):
        reopened = Log.open(tmp_path / "t-0", SMALL, clean_shutdown=True)
    assert "cannot be trusted" in caplog.text
    assert reopened.log_end_offset == 21  # the 7 whole batches: recovered as after a crash
    assert [r.offset for r in reopened.read_records(18, 10_000)] == [18, 19, 20]
    reopened.close()


@pytest.mark.parametrize("recovery_point", [0, 45, 90])
def test_an_unclean_stop_with_preallocated_indexes_recovers_the_same_log_and_indexes(
    tmp_path: Path, recovery_point: int
) -> None:
    twin = Log.open(tmp_path / "twin-0", SMALL)
    fill(twin, 30)
    twin.close()
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 30)
    log.flush()
    assert_active_preallocated(log.segments[-1])
    crash(log)
    reopened = Log.open(tmp_path / "t-0", SMALL, recovery_point=recovery_point)
    assert reopened.offline is None
    assert reopened.log_end_offset == 90
    recovered = reopened.segments[-1]  # ending with its largest timestamp, as Kafka's recover
    assert recovered.time_index.last_entry() == (
        recovered.max_timestamp,
        recovered.offset_of_max_timestamp,
    )
    assert [r.offset for r in reopened.read_records(0, 10**6)][:3] == [0, 1, 2]
    assert reopened.offset_for_timestamp(T0 + 600) == 39
    assert_active_preallocated(reopened.segments[-1])
    reopened.close()
    assert index_files(tmp_path / "t-0") == index_files(tmp_path / "twin-0")


def test_stale_entries_after_a_hole_in_a_preallocated_index_are_not_read(
    tmp_path: Path,
) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 10)
    log.flush()
    active = log.segments[-1]
    entries = active.offset_index.to_bytes()
    assert len(entries) >= 3 * 8
    crash(log)
    # The page cache lost the second entry (zeros) but kept the third, and after them lie the
    # entries of a longer log this one was truncated from: none may be believed.
    with open(active.index_path, "r+b") as f:
        f.seek(8)
        f.write(bytes(8))
        f.seek(len(entries))
        f.write((10_000).to_bytes(4, "big") + (3000).to_bytes(4, "big"))
    reopened = Log.open(tmp_path / "t-0", SMALL, recovery_point=30)
    assert reopened.segments[-1].offset_index.entries()[:1] == active.offset_index.entries()[:1]
    assert reopened.log_end_offset == 30
    assert [r.offset for r in reopened.read_records(20, 10**6)] == list(range(20, 30))
    assert_active_preallocated(reopened.segments[-1])
    reopened.close()


def test_a_truncation_into_a_sealed_segment_makes_it_active_again(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 40)
    log.flush()
    first = log.segments[0]
    assert first.index_path.stat().st_size < 1000  # sealed: trimmed
    log.truncate_to(first.base_offset + 6)
    log.append_as_leader(recs(3, T0 + 10_000), 2)
    log.flush()
    assert log.segments == [first]
    assert_active_preallocated(first)  # Kafka's truncateTo: resize(maxIndexSize)
    log.close()


def test_a_time_index_whose_first_entry_is_timestamp_0_at_the_base_offset_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kafka's TimeIndex.maybeAppend takes any timestamp above -1: records of timestamp 0 at a
    # segment's start give its time index the all-zero first entry (timestamp 0, base offset).
    log = Log.open(tmp_path / "t-0", SMALL)
    for _ in range(10):
        log.append_as_leader([NewRecord(None, b"x" * 50, 0)], 1)
    for i in range(60):
        log.append_as_leader([NewRecord(None, b"y" * 50, 1000 + i)], 1)
    sealed = log.segments[0]
    entries = sealed.time_index.entries()
    assert entries[0] == (0, 0) and len(entries) > 3
    active = log.segments[-1]
    log.flush()
    assert used(sealed.time_index_path) == sealed.time_index.to_bytes()  # trimmed: read whole
    end = log.log_end_offset
    log.close()

    def no_rebuild(segment: Segment, index_interval_bytes: int) -> None:
        raise AssertionError(f"{segment.log_path}: indexes rebuilt")

    monkeypatch.setattr("storage.recovery.rebuild_indexes", no_rebuild)
    reopened = Log.open(tmp_path / "t-0", SMALL, recovery_point=end, clean_shutdown=True)
    assert reopened.segments[0].time_index.entries() == entries
    monkeypatch.undo()
    # A cleaned segment swapped in, then written at the next flush: its file keeps them.
    swapped = Segment.open_existing(tmp_path / "t-0", 0, reopened.segments[1].base_offset)
    swapped.write_indexes()
    assert swapped.time_index_path.stat().st_size == len(entries) * TIME_ENTRY_SIZE
    swapped.close()
    reopened.close()
    # In an active segment's preallocated file the all-zero first entry counts as one when the
    # next is not all zeros.
    with open(active.time_index_path, "wb") as f:
        f.write(bytes(TIME_ENTRY_SIZE) + (7).to_bytes(8, "big") + (3).to_bytes(4, "big"))
        f.truncate(TIME_INDEX_FILE_BYTES)
    assert used(active.time_index_path) == bytes(12) + (7).to_bytes(8, "big") + bytes([0, 0, 0, 3])
    with open(active.time_index_path, "wb") as f:
        f.truncate(TIME_INDEX_FILE_BYTES)
    assert used(active.time_index_path) == b""


def test_after_a_follower_truncation_the_index_goes_on_as_the_leaders_and_a_clean_start_trusts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = LogConfig(index_interval_bytes=300)
    leader = Log.open(tmp_path / "leader-0", config)
    follower = Log.open(tmp_path / "follower-0", config)
    for i in range(38):
        for log in (leader, follower):
            log.append_as_leader([NewRecord(None, b"y" * 50, T0 + i)], 1)
    for i in range(2):  # the follower's diverging tail, which the new leader never had
        follower.append_as_leader([NewRecord(None, b"y" * 50, T0 + 38 + i)], 1)
    follower.flush()
    follower.truncate_to(38)
    for i in range(4):
        for log in (leader, follower):
            log.append_as_leader([NewRecord(None, b"z" * 50, T0 + 100 + i)], 2)
    assert (
        follower.segments[-1].offset_index.entries() == leader.segments[-1].offset_index.entries()
    )
    end = follower.log_end_offset
    follower.close()
    leader.close()
    assert (tmp_path / "follower-0" / "00000000000000000000.index").read_bytes() == (
        tmp_path / "leader-0" / "00000000000000000000.index"
    ).read_bytes()
    with caplog.at_level(logging.INFO):
        reopened = Log.open(
            tmp_path / "follower-0", config, recovery_point=end, clean_shutdown=True
        )
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert reopened.log_end_offset == end
    reopened.close()
