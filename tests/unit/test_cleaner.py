"""One clean of a log directory (storage.cleaner): the map, the groups, the cleaned segments
and their indexes, the checkpoint, aborts, and the throttle."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage.batch import NewRecord, build_batch, decode_batch, iter_batches
from storage.clean_map import ENTRY_OVERHEAD_BYTES, OffsetMap
from storage.clean_plan import SegmentSummary, log_to_clean
from storage.clean_swap import swap_in
from storage.cleaner import (
    CleanAbortedError,
    CleanedSegment,
    CleanerStats,
    CleanResult,
    Throttle,
    UncleanableLogError,
    clean_log,
    summarize,
)
from storage.index import OffsetIndex, TimeIndex
from storage.log import Log
from storage.log_config import LogConfig
from storage.segment import segment_name

T = 1_700_000_000_000
NOW = T + 3_600_000
CONFIG = LogConfig(cleanup_policy="compact", segment_bytes=10_000, index_interval_bytes=100)


def write_segment(directory: Path, base: int, batches: list[bytes]) -> None:
    stem = directory / segment_name(base)
    stem.with_suffix(".log").write_bytes(b"".join(batches))
    stem.with_suffix(".index").write_bytes(b"")
    stem.with_suffix(".timeindex").write_bytes(b"")


def summaries(directory: Path) -> list[SegmentSummary]:
    """The segments of ``directory`` as the log would describe them, oldest first."""
    out: list[SegmentSummary] = []
    for path in sorted(directory.glob("*.log")):
        data = path.read_bytes()
        headers = [h for _pos, h in iter_batches(data, verify=False)]
        base = int(path.name[:20])
        out.append(
            SegmentSummary(
                base_offset=base,
                next_offset=headers[-1].next_offset if headers else base,
                size_bytes=len(data),
                max_timestamp=max((h.max_timestamp for h in headers), default=-1),
                first_batch_timestamp=headers[0].max_timestamp if headers else None,
                path=path,
            )
        )
    return out


def records(directory: Path) -> list[tuple[int, bytes | None, bytes | None]]:
    out: list[tuple[int, bytes | None, bytes | None]] = []
    for path in sorted(directory.glob("*.log")):
        data = path.read_bytes()
        for pos, _h in iter_batches(data):
            out.extend((r.offset, r.key, r.value) for r in decode_batch(data, pos)[1])
    return out


def kv(key: str, value: str | None, base: int, ts: int = T) -> bytes:
    return build_batch(
        [NewRecord(key.encode(), None if value is None else value.encode(), ts)], base_offset=base
    )


def commit_to(directory: Path, committed: list[CleanedSegment]) -> Callable[[CleanedSegment], None]:
    def commit(cleaned: CleanedSegment) -> None:
        swap_in(directory, cleaned.old_bases)
        committed.append(cleaned)

    return commit


def clean(
    directory: Path, *, checkpoint: int | None = None, hw: int | None = None, **kwargs: Any
) -> tuple[CleanResult, list[CleanedSegment]]:
    segs = summaries(directory)
    leo = segs[-1].next_offset
    target = log_to_clean(
        segs,
        log_start_offset=segs[0].base_offset,
        log_end_offset=leo,
        high_watermark=leo if hw is None else hw,
        checkpoint=checkpoint,
        now_ms=NOW,
        config=CONFIG,
    )
    committed: list[CleanedSegment] = []
    options: dict[str, Any] = {
        "config": CONFIG,
        "offset_map": OffsetMap(),
        "last_data_offsets": {},
        "now_ms": NOW,
        "commit": commit_to(directory, committed),
    }
    options.update(kwargs)
    result = clean_log(directory, segs, target, **options)
    return result, committed


@pytest.fixture
def three_segments(tmp_path: Path) -> Path:
    # [0, 3): a=1 b=1 a=2   [3, 6): b=2 c=1 a=3   [6, 8) active: a=4 c=2
    write_segment(tmp_path, 0, [kv("a", "1", 0), kv("b", "1", 1), kv("a", "2", 2)])
    write_segment(tmp_path, 3, [kv("b", "2", 3), kv("c", "1", 4), kv("a", "3", 5)])
    write_segment(tmp_path, 6, [kv("a", "4", 6), kv("c", "2", 7)])
    return tmp_path


def test_a_clean_keeps_each_keys_latest_record_at_its_offset(three_segments: Path) -> None:
    result, committed = clean(three_segments)
    assert result.checkpoint == 6 and result.first_dirty == 0
    assert records(three_segments) == [
        (3, b"b", b"2"),
        (4, b"c", b"1"),
        (5, b"a", b"3"),
        (6, b"a", b"4"),  # the active segment is never touched
        (7, b"c", b"2"),
    ]
    # Both sealed segments fit one group: one new segment named by the first base.
    assert [c.old_bases for c in committed] == [[0, 3]]
    assert sorted(p.name for p in three_segments.iterdir()) == [
        f"{segment_name(b)}{s}" for b in (0, 6) for s in (".index", ".log", ".timeindex")
    ]
    stats = result.stats
    assert (stats.records_read, stats.records_kept, stats.batches_read) == (6, 3, 6)


def test_the_next_clean_starts_at_the_checkpoint_and_recleans_the_clean_part(
    three_segments: Path,
) -> None:
    first, _ = clean(three_segments)
    # Roll: the old active segment is sealed, a new one takes writes.
    write_segment(three_segments, 8, [kv("z", "1", 8)])
    second, committed = clean(three_segments, checkpoint=first.checkpoint)
    assert (second.first_dirty, second.checkpoint) == (6, 8)
    assert records(three_segments) == [
        (3, b"b", b"2"),
        (6, b"a", b"4"),
        (7, b"c", b"2"),
        (8, b"z", b"1"),
    ]
    assert [c.old_bases for c in committed] == [[0, 6]]


def test_the_clean_stops_below_the_high_watermark(three_segments: Path) -> None:
    result, committed = clean(three_segments, hw=4)
    assert result.checkpoint == 3
    assert [c.old_bases for c in committed] == [[0]]
    assert [r[0] for r in records(three_segments)] == [1, 2, 3, 4, 5, 6, 7]


def test_a_full_map_cleans_up_to_the_last_mapped_batch(three_segments: Path) -> None:
    # Room for two keys: a and b; c (offset 4) does not fit, so the map covers [0, 3].
    result, committed = clean(three_segments, offset_map=OffsetMap(2 * (ENTRY_OVERHEAD_BYTES + 1)))
    assert result.checkpoint == 4
    # a=2 (2) and b=2 (3) supersede offsets 0 and 1; everything after offset 3 stays, a=3 too.
    assert [r[0] for r in records(three_segments)] == [2, 3, 4, 5, 6, 7]
    assert [c.old_bases for c in committed] == [[0, 3]]


def test_the_cleaned_segments_indexes_follow_the_append_rule(three_segments: Path) -> None:
    clean(three_segments)
    stem = three_segments / segment_name(0)
    data = stem.with_suffix(".log").read_bytes()
    positions = [(pos, h) for pos, h in iter_batches(data)]
    index = OffsetIndex.parse(0, stem.with_suffix(".index").read_bytes(), log_size=len(data))
    # Batches of 71 bytes, an entry once more than 100 bytes were written since the last.
    assert index.entries() == [(positions[2][1].last_offset, positions[2][0])]
    time_index = TimeIndex.parse(0, stem.with_suffix(".timeindex").read_bytes())
    assert time_index.entries() == [(T, 3)]


def test_a_clean_with_a_segment_gone_is_aborted_and_leaves_nothing(three_segments: Path) -> None:
    segs = summaries(three_segments)
    os.remove(segs[1].path)  # type: ignore[arg-type]
    target = log_to_clean(
        segs,
        log_start_offset=0,
        log_end_offset=8,
        high_watermark=8,
        checkpoint=None,
        now_ms=NOW,
        config=CONFIG,
    )
    with pytest.raises(CleanAbortedError, match="went away"):
        clean_log(
            three_segments,
            segs,
            target,
            config=CONFIG,
            offset_map=OffsetMap(),
            last_data_offsets={},
            now_ms=NOW,
            commit=lambda c: None,
        )
    assert not list(three_segments.glob("*.cleaned"))


def test_a_commit_that_refuses_removes_the_cleaned_files(three_segments: Path) -> None:
    def refuse(cleaned: CleanedSegment) -> None:
        assert (three_segments / f"{segment_name(0)}.log.cleaned").exists()
        raise CleanAbortedError("the log changed")

    before = {p.name: p.read_bytes() for p in three_segments.iterdir()}
    with pytest.raises(CleanAbortedError):
        clean(three_segments, commit=refuse)
    assert {p.name: p.read_bytes() for p in three_segments.iterdir()} == before


def test_a_corrupt_batch_makes_the_log_uncleanable(three_segments: Path) -> None:
    path = three_segments / f"{segment_name(3)}.log"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UncleanableLogError, match="CRC"):
        clean(three_segments)
    assert not list(three_segments.glob("*.cleaned"))


def test_the_cleaned_segments_are_fsynced_through_the_injected_fsync(three_segments: Path) -> None:
    synced: list[int] = []
    clean(three_segments, fsync=synced.append)
    assert len(synced) == 3  # the .log and its two indexes


def test_stats_describe_the_clean_as_kafka_logs_it() -> None:
    stats = CleanerStats(start_s=0.0, map_done_s=0.5, end_s=2.0, bytes_read=4 * 1024 * 1024)
    stats.bytes_written = 1024 * 1024
    line = stats.describe("t-0", 0, 99)
    assert line.startswith("cleaned log t-0 (dirty section = [0, 99]): 4.0 MB of log processed")
    assert "in 2.0 seconds (2.0 MB/sec)" in line and "75.0% size reduction" in line


# -- the throttle (Kafka's Throttler) ----------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_throttle_sleeps_down_to_the_desired_rate() -> None:
    t = FakeTime()
    throttle = Throttle(1000.0, check_interval_s=0.3, clock=t.clock, sleep=t.sleep)
    t.now = 0.5
    throttle.maybe_throttle(2000)  # 2000 units in 0.5 s: 4000/s; 2 s are due, 1.5 s to sleep
    assert t.sleeps == [1.5]
    t.now += 0.5
    throttle.maybe_throttle(100)  # 200/s: under the rate
    assert t.sleeps == [1.5]


def test_the_throttle_checks_only_once_an_interval_has_passed() -> None:
    t = FakeTime()
    throttle = Throttle(1000.0, check_interval_s=0.3, clock=t.clock, sleep=t.sleep)
    t.now = 0.2
    throttle.maybe_throttle(10_000)
    assert t.sleeps == []
    t.now = 0.4
    throttle.maybe_throttle(0)  # the 10,000 units are counted at the next check
    assert t.sleeps == [pytest.approx(9.6)]


@pytest.mark.parametrize("rate", [0.0, float("inf")])
def test_an_unlimited_throttle_never_sleeps(rate: float) -> None:
    t = FakeTime()
    throttle = Throttle(rate, clock=t.clock, sleep=t.sleep)
    t.now = 10.0
    throttle.maybe_throttle(10**12)
    assert t.sleeps == []


def test_summarize_describes_a_logs_segments(tmp_path: Path) -> None:
    directory = tmp_path / "t-0"
    log = Log.create(directory, LogConfig(segment_bytes=250), fsync=lambda fd: None)
    try:
        for i in range(4):
            log.append_as_leader([NewRecord(b"k", b"x" * 40, T + i)], leader_epoch=0)
        result = summarize(log.segments)
    finally:
        log.close()
    assert [(s.base_offset, s.next_offset) for s in result] == [(0, 2), (2, 4)]
    first = result[0]
    assert (first.size_bytes, first.max_timestamp, first.first_batch_timestamp) == (
        (directory / f"{segment_name(0)}.log").stat().st_size,
        T + 1,
        T,
    )
    assert first.path == directory / f"{segment_name(0)}.log"


def test_a_log_reopens_after_a_clean_with_every_kept_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "t-0"
    config = LogConfig(cleanup_policy="compact", segment_bytes=300, index_interval_bytes=100)
    log = Log.create(directory, config, fsync=lambda fd: None)
    try:
        for i in range(40):
            value = None if i % 7 == 3 else b"v%d" % i
            log.append_as_leader([NewRecord(b"k%d" % (i % 5), value, T + i)], leader_epoch=0)
        log.flush()
        segments = summarize(log.segments)
        leo = log.log_end_offset
    finally:
        log.close()
    target = log_to_clean(
        segments,
        log_start_offset=0,
        log_end_offset=leo,
        high_watermark=leo,
        checkpoint=None,
        now_ms=NOW,
        config=config,
    )
    result = clean_log(
        directory,
        segments,
        target,
        config=config,
        offset_map=OffsetMap(),
        last_data_offsets={},
        now_ms=NOW,
        commit=lambda c: swap_in(directory, c.old_bases),
        fsync=lambda fd: None,
    )
    assert result.stats.records_kept < result.stats.records_read
    kept = records(directory)
    with caplog.at_level(logging.WARNING):
        reopened = Log.open(directory, config, recovery_point=leo, fsync=lambda fd: None)
    # The cleaned segments' indexes are taken as they are: nothing is rebuilt or cut.
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    try:
        read: list[tuple[int, bytes | None, bytes | None]] = []
        offset = 0
        while offset < reopened.log_end_offset:  # a read returns one segment's batches
            got = reopened.fetch_records(offset, 10**6)
            read.extend((r.offset, r.key, r.value) for r in got.records)
            assert got.next_offset > offset
            offset = got.next_offset
        assert read == kept
        assert reopened.log_end_offset == leo
    finally:
        reopened.close()
