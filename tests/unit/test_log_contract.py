"""One contract suite for the partition log, run against the file log (Log) and its in-memory
twin (MemoryLog): both must obey the same rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage.batch import NewRecord, build_batch, decode_batch, iter_batches
from storage.errors import (
    CorruptRecordError,
    KafkaStorageError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    UnexpectedAppendOffsetError,
)
from storage.log import Log
from storage.log_config import LogConfig
from storage.memory_log import MemoryLog
from storage.partition_log import PartitionLog
from tests.gapped_batches import empty_batch, gapped_batch, sparse_batch

DAY_MS = 24 * 3600 * 1000
T0 = 1_700_000_000_000


MakeLog = Callable[..., PartitionLog]


@pytest.fixture(params=["file", "memory"])
def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeLog]:
    made: list[PartitionLog] = []

    def make(config: LogConfig | None = None, name: str = "t-0") -> PartitionLog:
        config = config or LogConfig()
        # No cast and no ignore: mypy checks here that both classes satisfy PartitionLog.
        log: PartitionLog
        if request.param == "file":
            log = Log.open(tmp_path / name, config)
        else:
            log = MemoryLog(config)
        made.append(log)
        return log

    yield make
    for log in made:
        log.close()


def recs(
    count: int, ts: int = T0, value_bytes: int = 10, key: bytes | None = b"k"
) -> list[NewRecord]:
    return [NewRecord(key, b"v" * value_bytes, ts + i) for i in range(count)]


def offsets(log: PartitionLog, start: int = 0, max_bytes: int = 1 << 20) -> list[int]:
    """The offsets of one read (reads stop at the end of a segment)."""
    return [r.offset for r in log.read_records(start, max_bytes)]


def all_offsets(log: PartitionLog, start: int = 0) -> list[int]:
    """The offsets of every record from ``start`` to the log end, read as a consumer would."""
    found: list[int] = []
    while start < log.log_end_offset:
        records = log.read_records(start, 1000)
        assert records, f"no progress at offset {start}"
        found += [r.offset for r in records]
        start = records[-1].offset + 1
    return found


# -- appending ---------------------------------------------------------------------------------


def test_leader_appends_get_dense_offsets_from_the_log_end(make_log: MakeLog) -> None:
    log = make_log()
    first = log.append_as_leader(recs(3), 0)
    second = log.append_as_leader(recs(2, ts=T0 + 50), 0)
    assert (first.first_offset, first.last_offset, first.max_timestamp) == (0, 2, T0 + 2)
    assert (second.first_offset, second.last_offset) == (3, 4)
    assert log.log_end_offset == 5
    assert first.size_bytes + second.size_bytes == log.size_bytes
    assert offsets(log) == [0, 1, 2, 3, 4]


def test_append_stamps_the_leader_epoch_and_assigns_it_in_the_epoch_cache(
    make_log: MakeLog,
) -> None:
    log = make_log()
    log.append_as_leader(recs(2), 3)
    log.append_as_leader(recs(2), 3)
    log.append_as_leader(recs(1), 5)
    assert log.epoch_cache.entries == [(3, 0), (5, 4)]
    header, _ = decode_batch(log.read(4, 1000))
    assert header.partition_leader_epoch == 5


def test_an_oversized_batch_is_refused_and_nothing_is_written(make_log: MakeLog) -> None:
    log = make_log(LogConfig(max_message_bytes=500))
    log.append_as_leader(recs(1), 0)
    with pytest.raises(RecordTooLargeError) as raised:
        log.append_as_leader(recs(1, value_bytes=600), 0)
    assert isinstance(raised.value, ValueError)
    assert log.log_end_offset == 1
    assert offsets(log) == [0]


def test_an_empty_append_is_refused(make_log: MakeLog) -> None:
    log = make_log()
    with pytest.raises(ValueError):
        log.append_as_leader([], 0)
    with pytest.raises(ValueError):
        log.append_batches(b"")


def test_replica_append_keeps_the_offsets_and_bytes_it_is_given(make_log: MakeLog) -> None:
    log = make_log()
    data = build_batch(recs(2), base_offset=0, partition_leader_epoch=4) + build_batch(
        recs(3), base_offset=2, partition_leader_epoch=6
    )
    info = log.append_batches(data)
    assert (info.first_offset, info.last_offset, info.size_bytes) == (0, 4, len(data))
    assert log.read(0, 1 << 20) == data
    assert log.epoch_cache.entries == [(4, 0), (6, 2)]


def test_replica_append_may_not_start_below_the_log_end(make_log: MakeLog) -> None:
    log = make_log()
    log.append_as_leader(recs(2), 0)
    with pytest.raises(UnexpectedAppendOffsetError):
        log.append_batches(build_batch(recs(1), base_offset=1))
    assert log.log_end_offset == 2
    # Above it is a gap (the leader's batches there were cleaned away): Kafka appends it.
    log.append_batches(build_batch(recs(1), base_offset=5))
    assert log.log_end_offset == 6
    assert all_offsets(log) == [0, 1, 5]


def test_replica_append_is_validated_whole_before_any_byte_is_written(make_log: MakeLog) -> None:
    log = make_log()
    good = build_batch(recs(2), base_offset=0)
    overlapping = build_batch(recs(2), base_offset=1)
    with pytest.raises(UnexpectedAppendOffsetError):
        log.append_batches(good + overlapping)
    bad = bytearray(build_batch(recs(2), base_offset=2))
    bad[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        log.append_batches(good + bytes(bad))
    with pytest.raises(CorruptRecordError):
        log.append_batches(good + good[:30])
    assert log.log_end_offset == 0
    assert log.size_bytes == 0
    assert log.read(0, 1000) == b""


def test_a_follower_appending_the_leaders_bytes_ends_byte_identical(make_log: MakeLog) -> None:
    config = LogConfig(segment_bytes=2000, segment_ms=60_000)
    leader = make_log(config, name="leader-0")
    follower = make_log(config, name="follower-0")
    for i in range(40):
        leader.append_as_leader(recs(1 + i % 4, ts=T0 + i * 7_000, value_bytes=40), i // 10)
    # The follower fetches in chunks that do not follow segment boundaries.
    while follower.log_end_offset < leader.log_end_offset:
        follower.append_batches(leader.read(follower.log_end_offset, 700))
    assert [s.base_offset for s in follower.segments] == [s.base_offset for s in leader.segments]
    assert len(leader.segments) > 2
    for offset in [s.base_offset for s in leader.segments]:
        assert follower.read(offset, 1 << 20) == leader.read(offset, 1 << 20)
    assert follower.epoch_cache.entries == leader.epoch_cache.entries


# -- reading -----------------------------------------------------------------------------------


def test_reads_outside_the_log_raise_offset_out_of_range(make_log: MakeLog) -> None:
    log = make_log()
    log.append_as_leader(recs(3), 0)
    assert log.read(3, 1000) == b""
    with pytest.raises(OffsetOutOfRangeError):
        log.read(4, 1000)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 1000)


def test_a_read_from_inside_a_batch_returns_the_whole_batch(make_log: MakeLog) -> None:
    log = make_log()
    log.append_as_leader(recs(5), 0)
    data = log.read(3, 1000)
    header, records = decode_batch(data)
    assert header.base_offset == 0 and len(records) == 5
    assert [r.offset for r in log.read_records(3, 1000)] == [3, 4]


def test_reads_honour_max_bytes_but_return_at_least_one_batch(make_log: MakeLog) -> None:
    log = make_log()
    sizes = [log.append_as_leader(recs(2, value_bytes=100), 0).size_bytes for _ in range(5)]
    assert len(log.read(0, sizes[0] * 2)) == sizes[0] + sizes[1]
    assert len(log.read(0, sizes[0] * 2 + 10)) == sizes[0] + sizes[1]
    assert len(log.read(0, 1)) == sizes[0]
    assert len(log.read(0, 0)) == sizes[0]
    assert len(log.read(4, 10**6)) == sum(sizes[2:])


def test_reads_stop_at_max_offset(make_log: MakeLog) -> None:
    log = make_log()
    for _ in range(4):
        log.append_as_leader(recs(2), 0)
    data = log.read(0, 10**6, max_offset=4)
    assert [h.base_offset for _, h in iter_batches(data)] == [0, 2]
    assert log.read(4, 10**6, max_offset=4) == b""
    assert [r.offset for r in log.read_records(1, 10**6, max_offset=5)] == [1, 2, 3, 4]


def test_offset_for_timestamp_finds_the_first_offset_at_or_after_it(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_bytes=600, index_interval_bytes=100))
    for i in range(30):
        log.append_as_leader(recs(3, ts=T0 + i * 100), 0)  # records at T0 + 100 i + {0, 1, 2}
    assert len(log.segments) > 3
    assert log.offset_for_timestamp(0) == 0
    assert log.offset_for_timestamp(T0) == 0
    assert log.offset_for_timestamp(T0 + 1) == 1
    assert log.offset_for_timestamp(T0 + 3) == 3
    assert log.offset_for_timestamp(T0 + 1502) == 47
    assert log.offset_for_timestamp(T0 + 1503) == 48
    assert log.offset_for_timestamp(T0 + 2902) == 89
    assert log.offset_for_timestamp(T0 + 2903) is None


def test_offset_for_timestamp_with_timestamps_out_of_order(make_log: MakeLog) -> None:
    log = make_log(LogConfig(index_interval_bytes=50))
    stamps = [500, 100, 900, 300, 950, 200]
    for ts in stamps:
        log.append_as_leader([NewRecord(None, b"x" * 30, ts)], 0)
    for target in range(0, 1000, 25):
        expected = next((i for i, ts in enumerate(stamps) if ts >= target), None)
        assert log.offset_for_timestamp(target) == expected, target


# -- batch headers -----------------------------------------------------------------------------


def test_batch_headers_run_from_the_batch_holding_the_offset_to_the_log_end(
    make_log: MakeLog,
) -> None:
    log = make_log()
    log.append_as_leader(recs(3), 0)  # offsets 0-2
    log.append_as_leader(recs(2), 1)  # 3-4
    log.append_as_leader(recs(1), 1)  # 5

    def spans(start: int) -> list[tuple[int, int]]:
        return [(h.base_offset, h.last_offset) for h in log.batch_headers(start)]

    assert spans(0) == [(0, 2), (3, 4), (5, 5)]
    assert spans(4) == [(3, 4), (5, 5)]  # 4 is inside the second batch
    assert spans(5) == [(5, 5)]
    assert spans(6) == []  # the log end
    assert [h.partition_leader_epoch for h in log.batch_headers(0)] == [0, 1, 1]


def test_batch_headers_carry_the_producer_fields(make_log: MakeLog) -> None:
    log = make_log()
    log.append_as_leader(recs(2), 0, producer_id=7, producer_epoch=3, base_sequence=10)
    log.append_as_leader(recs(1), 0)
    found = [(h.producer_id, h.producer_epoch, h.base_sequence) for h in log.batch_headers(0)]
    assert found == [(7, 3, 10), (-1, -1, -1)]


def test_batch_headers_outside_the_log_raise_at_the_call(make_log: MakeLog) -> None:
    log = make_log()
    log.append_as_leader(recs(2), 0)
    with pytest.raises(OffsetOutOfRangeError):
        log.batch_headers(3)
    with pytest.raises(OffsetOutOfRangeError):
        log.batch_headers(-1)


def test_batch_headers_cross_segments_in_small_reads(
    make_log: MakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reads far smaller than the log: every read ends somewhere inside it.
    monkeypatch.setattr("storage.log.BATCH_HEADERS_READ_BYTES", 200)
    log = make_log(LogConfig(segment_bytes=1000))
    appended = [log.append_as_leader(recs(1 + i % 3), 0) for i in range(60)]
    assert len(log.segments) > 3
    spans = [(h.base_offset, h.last_offset, h.size) for h in log.batch_headers(0)]
    assert spans == [(a.first_offset, a.last_offset, a.size_bytes) for a in appended]


def test_batch_headers_start_at_the_log_start_after_retention(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_ms=3_600_000, retention_ms=2 * DAY_MS))
    fill_segments(log, 3)
    log.update_high_watermark(12)
    assert log.delete_retained_segments(T0 + 3 * DAY_MS + 11) == 1
    assert [h.base_offset for h in log.batch_headers(log.log_start_offset)] == [4, 6, 8, 10]
    with pytest.raises(OffsetOutOfRangeError):
        log.batch_headers(3)


# -- rolling -----------------------------------------------------------------------------------


def test_a_segment_rolls_when_a_batch_would_exceed_segment_bytes(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_bytes=1000))
    size = log.append_as_leader(recs(1, value_bytes=300), 0).size_bytes
    per_segment = 1000 // size
    for _ in range(per_segment * 3 - 1):
        log.append_as_leader(recs(1, value_bytes=300), 0)
    assert [s.base_offset for s in log.segments] == [0, per_segment, 2 * per_segment]
    assert all(s.size_bytes <= 1000 for s in log.segments)


def test_a_batch_larger_than_segment_bytes_gets_a_segment_of_its_own(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_bytes=100))
    log.append_as_leader(recs(1), 0)
    log.append_as_leader(recs(1, value_bytes=500), 0)
    log.append_as_leader(recs(1), 0)
    assert [s.base_offset for s in log.segments] == [0, 1, 2]
    assert offsets(log) == [0]
    assert offsets(log, 1) == [1]


def test_a_segment_rolls_by_segment_ms_judged_by_batch_timestamps(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_ms=1000))
    log.append_as_leader(recs(1, ts=T0), 0)
    log.append_as_leader(recs(1, ts=T0 + 1000), 0)  # exactly segment.ms later: no roll
    assert len(log.segments) == 1
    log.append_as_leader(recs(1, ts=T0 + 1001), 0)
    assert [s.base_offset for s in log.segments] == [0, 2]
    log.append_as_leader(recs(1, ts=T0 + 1500), 0)
    log.append_as_leader(recs(1, ts=T0 + 2002), 0)
    assert [s.base_offset for s in log.segments] == [0, 2, 4]


# -- retention ---------------------------------------------------------------------------------


def fill_segments(log: PartitionLog, count: int, per_segment_ms: int = DAY_MS) -> None:
    """``count`` full segments (segment_ms must be below per_segment_ms), one day apart."""
    for i in range(count):
        log.append_as_leader(recs(2, ts=T0 + i * per_segment_ms), 0)
        log.append_as_leader(recs(2, ts=T0 + i * per_segment_ms + 10), 0)


def test_retention_by_time_deletes_old_segments_below_the_high_watermark(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_ms=3_600_000, retention_ms=2 * DAY_MS))
    fill_segments(log, 5)
    assert [s.base_offset for s in log.segments] == [0, 4, 8, 12, 16]
    now = T0 + 4 * DAY_MS + 11  # segment 8 holds T0 + 2 days + 11 at most
    assert log.delete_retained_segments(now) == 0  # the high watermark is still at 0
    log.update_high_watermark(8)
    assert log.delete_retained_segments(now) == 2
    assert log.log_start_offset == 8
    assert [s.base_offset for s in log.segments] == [8, 12, 16]
    log.update_high_watermark(20)
    assert log.delete_retained_segments(now) == 0  # segment 8's newest record is 2 days old
    assert log.delete_retained_segments(now + 1) == 1
    with pytest.raises(OffsetOutOfRangeError):
        log.read(11, 1000)
    assert offsets(log, 12)[0] == 12


def test_retention_by_size_deletes_the_oldest_segments(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_ms=3_600_000, retention_ms=-1))
    fill_segments(log, 5)
    segment_size = log.segments[0].size_bytes
    log.update_config(
        LogConfig(segment_ms=3_600_000, retention_ms=-1, retention_bytes=2 * segment_size + 1)
    )
    log.update_high_watermark(log.log_end_offset)
    assert log.delete_retained_segments(T0) == 2
    assert [s.base_offset for s in log.segments] == [8, 12, 16]
    assert log.log_start_offset == 8
    assert log.size_bytes == 3 * segment_size


def test_retention_of_every_segment_rolls_a_fresh_empty_one(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_ms=3_600_000, retention_ms=DAY_MS))
    fill_segments(log, 2)
    log.update_high_watermark(log.log_end_offset)
    assert log.delete_retained_segments(T0 + 10 * DAY_MS) == 2
    assert [s.base_offset for s in log.segments] == [8]
    assert log.log_start_offset == log.log_end_offset == 8
    assert log.read(8, 1000) == b""
    log.append_as_leader(recs(1), 0)
    assert offsets(log, 8) == [8]
    assert log.delete_retained_segments(T0 + 10 * DAY_MS) == 0  # only wholly below the HW


def test_retention_moves_the_epoch_cache_start(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_ms=3_600_000, retention_ms=DAY_MS))
    for i in range(3):
        log.append_as_leader(recs(2, ts=T0 + i * DAY_MS), i)
    log.update_high_watermark(6)
    assert log.delete_retained_segments(T0 + 2 * DAY_MS + 1) == 1  # segment 2: 1 day old
    assert log.epoch_cache.entries == [(1, 2), (2, 4)]


# -- truncation and the high watermark -----------------------------------------------------


def test_truncate_to_removes_everything_at_or_after_the_offset(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_bytes=400))
    for i in range(10):
        log.append_as_leader(recs(2, value_bytes=50), i // 3)
    log.update_high_watermark(14)
    log.flush()
    log.truncate_to(8)
    assert log.log_end_offset == 8
    assert log.high_watermark == 8 and log.recovery_point == 8
    assert offsets(log, 6) == [6, 7]
    # Kafka's rule: segments that start after the offset go; the one holding it is cut.
    assert all(s.base_offset <= 8 for s in log.segments)
    assert sum(s.size_bytes for s in log.segments) == log.size_bytes
    assert log.epoch_cache.entries == [(0, 0), (1, 6)]
    log.append_as_leader(recs(1), 7)
    assert all_offsets(log, 5) == [5, 6, 7, 8]
    assert log.epoch_cache.entries == [(0, 0), (1, 6), (7, 8)]


def test_truncating_inside_a_batch_removes_the_whole_batch(make_log: MakeLog) -> None:
    log = make_log()
    log.append_as_leader(recs(3), 0)
    log.append_as_leader(recs(3), 0)
    log.truncate_to(4)
    assert log.log_end_offset == 3
    assert offsets(log) == [0, 1, 2]


def test_truncating_at_or_past_the_end_changes_nothing(make_log: MakeLog) -> None:
    log = make_log()
    log.append_as_leader(recs(3), 0)
    log.truncate_to(3)
    log.truncate_to(10)
    assert log.log_end_offset == 3


def test_truncating_at_the_log_end_drops_the_epochs_that_start_there(make_log: MakeLog) -> None:
    # Issue 10: a node that led at epoch 1 and appended nothing has (1, 3) at its log end. As a
    # follower of a leader that never had epoch 1 it is told to truncate to 3: no record goes,
    # but that entry must, or it keeps reporting epoch 1 and is told to truncate again.
    log = make_log()
    log.append_as_leader(recs(3), 0)
    log.epoch_cache.assign(1, 3)
    log.truncate_to(3)
    assert log.log_end_offset == 3
    assert log.epoch_cache.entries == [(0, 0)]
    log.epoch_cache.assign(2, 3)
    log.truncate_to(10)
    assert (log.log_end_offset, log.epoch_cache.entries) == (3, [(0, 0)])


def test_truncating_below_the_first_segment_restarts_the_log_there(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_ms=3_600_000, retention_ms=DAY_MS))
    fill_segments(log, 3)
    log.update_high_watermark(12)
    log.delete_retained_segments(T0 + 2 * DAY_MS + 20)
    assert log.log_start_offset == 8
    log.truncate_to(5)
    assert (log.log_start_offset, log.log_end_offset) == (5, 5)
    log.append_as_leader(recs(1), 0)
    assert offsets(log, 5) == [5]


def test_a_log_restarts_empty_at_an_offset_past_its_end(make_log: MakeLog) -> None:
    # A follower whose log ends below its leader's log start (Kafka's truncateFullyAndStartAt).
    log = make_log(LogConfig(segment_bytes=400))
    for i in range(6):
        log.append_as_leader(recs(2, value_bytes=50), i // 3)
    log.update_high_watermark(10)
    log.flush()
    log.truncate_fully_and_start_at(40)
    assert (log.log_start_offset, log.log_end_offset) == (40, 40)
    assert (log.high_watermark, log.recovery_point) == (40, 40)
    assert [s.base_offset for s in log.segments] == [40]
    assert log.size_bytes == 0 and log.epoch_cache.entries == []
    with pytest.raises(OffsetOutOfRangeError):
        log.read_records(0, 1 << 20)
    log.append_batches(build_batch(recs(2), base_offset=40, partition_leader_epoch=3))
    assert all_offsets(log, 40) == [40, 41]
    assert log.epoch_cache.entries == [(3, 40)]


def test_the_high_watermark_is_clamped_to_the_log(make_log: MakeLog) -> None:
    log = make_log()
    log.append_as_leader(recs(3), 0)
    assert log.update_high_watermark(10) == 3
    assert log.update_high_watermark(-4) == 0
    assert log.high_watermark == 0


def test_flush_moves_the_recovery_point_to_the_log_end(make_log: MakeLog) -> None:
    log = make_log()
    assert log.recovery_point == 0
    log.append_as_leader(recs(3), 0)
    assert log.flush() == 3
    assert log.recovery_point == 3


def test_a_closed_log_refuses_calls_with_a_storage_error(make_log: MakeLog) -> None:
    log = make_log()
    log.append_as_leader(recs(1), 0)
    log.close()
    with pytest.raises(KafkaStorageError):
        log.read(0, 100)
    with pytest.raises(KafkaStorageError):
        log.append_as_leader(recs(1), 0)
    assert log.offline is not None


# -- offset gaps (Kafka's compacted logs) ------------------------------------------------------


def batch_starts(data: bytes) -> list[int]:
    return [h.base_offset for _pos, h in iter_batches(data)]


def gapped_log(make_log: MakeLog, config: LogConfig | None = None) -> PartitionLog:
    """A log as the cleaner leaves one: records 0 and 2 in a batch covering 0..4, an empty
    batch 5..7 (an idempotent producer's last one, kept for its sequence), nothing at 8..9,
    records 10 and 12 in a batch covering 10..12; its log end offset is 13."""
    log = make_log(config)
    log.append_batches(
        sparse_batch([0, 2], base_offset=0, last_offset=4)
        + empty_batch(5, 7, producer_id=3, base_sequence=0)
        + sparse_batch([10, 12], base_offset=10, last_offset=12)
    )
    return log


def consume(log: PartitionLog, start: int = 0, max_bytes: int = 1000) -> tuple[list[int], int]:
    """Every record offset from ``start``, read as a consumer does: the next read starts
    after the last batch returned, not after its last record. Also returns the reads made."""
    found: list[int] = []
    reads = 0
    while start < log.log_end_offset:
        data = log.read(start, max_bytes)
        reads += 1
        assert reads < 100, f"no progress at offset {start}"
        if not data:
            break
        batches = list(iter_batches(data))
        found += [r.offset for r in log.read_records(start, max_bytes)]
        start = batches[-1][1].next_offset
    return found, reads


def test_a_gapped_log_reads_every_kept_record_at_its_offset(make_log: MakeLog) -> None:
    log = gapped_log(make_log)
    assert log.log_end_offset == 13
    assert consume(log)[0] == [0, 2, 10, 12]
    assert consume(log, max_bytes=1)[0] == [0, 2, 10, 12]
    assert [r.value for r in log.read_records(0, 1000)] == [b"v0", b"v2", b"v10", b"v12"]


@pytest.mark.parametrize(
    ("offset", "first_batch"),
    [(0, 0), (1, 0), (3, 0), (4, 0), (5, 5), (7, 5), (8, 10), (9, 10), (11, 10), (12, 10)],
)
def test_a_read_at_any_offset_starts_at_the_first_batch_ending_at_or_after_it(
    make_log: MakeLog, offset: int, first_batch: int
) -> None:
    log = gapped_log(make_log)
    assert batch_starts(log.read(offset, 1))[0] == first_batch
    assert [r.offset for r in log.read_records(offset, 1000)] == [
        o for o in (0, 2, 10, 12) if o >= offset
    ]


def test_an_empty_batch_is_returned_and_decodes_to_no_records(make_log: MakeLog) -> None:
    log = gapped_log(make_log)
    data = log.read(5, 1)
    header, records = decode_batch(data)
    assert (header.base_offset, header.last_offset, header.record_count) == (5, 7, 0)
    assert header.producer_id == 3
    assert records == []
    assert log.read_records(5, 1) == []
    assert [h.base_offset for h in log.batch_headers(6)] == [5, 10]


def test_a_read_in_a_gap_at_a_segments_end_goes_on_in_the_next_segment(
    make_log: MakeLog,
) -> None:
    # 100-byte segments: each batch of the leader's has a segment of its own.
    log = make_log(LogConfig(segment_bytes=100))
    log.append_batches(sparse_batch([0, 1], base_offset=0, last_offset=3))
    log.append_batches(sparse_batch([20, 22], base_offset=20, last_offset=25))
    log.append_batches(gapped_batch([], base_offset=30, last_offset=31))
    log.append_batches(sparse_batch([40], base_offset=40, last_offset=40))
    assert [s.base_offset for s in log.segments] == [0, 20, 30, 40]
    for offset, first in [(4, 20), (19, 20), (26, 30), (32, 40)]:
        assert batch_starts(log.read(offset, 1000))[0] == first, offset
    assert [r.offset for r in log.read_records(4, 1000)] == [20, 22]
    assert log.read_records(26, 1000) == []  # the empty batch: the reader moves past it
    assert consume(log, 4)[0] == [20, 22, 40]
    assert [h.base_offset for h in log.batch_headers(2)] == [0, 20, 30, 40]
    # The high watermark in a gap: batches from it on are left out, the ones below it read.
    log.update_high_watermark(28)
    assert log.high_watermark == 28
    assert batch_starts(log.read(4, 1000, max_offset=28)) == [20]
    assert log.read(26, 1000, max_offset=28) == b""


def test_a_replica_append_across_a_gap_continues_from_its_last_batch(
    make_log: MakeLog,
) -> None:
    # A follower whose log ends at 5 fetches from a leader whose batch 5..9 was cleaned away.
    log = make_log()
    log.append_as_leader(recs(5), 0)
    info = log.append_batches(sparse_batch([10, 13], base_offset=10, last_offset=14))
    assert (info.first_offset, info.last_offset) == (10, 14)
    assert log.log_end_offset == 15
    log.append_batches(build_batch(recs(1), base_offset=15))
    assert consume(log)[0] == [0, 1, 2, 3, 4, 10, 13, 15]
    with pytest.raises(UnexpectedAppendOffsetError):
        log.append_batches(build_batch(recs(1), base_offset=14))


def test_truncating_into_a_gap_ends_the_log_at_the_offset(make_log: MakeLog) -> None:
    log = gapped_log(make_log)
    log.update_high_watermark(13)
    log.truncate_to(9)
    assert log.log_end_offset == 9
    assert log.high_watermark == 9
    assert consume(log)[0] == [0, 2]
    assert log.read(8, 1000) == b""
    log.append_as_leader(recs(1), 1)
    assert consume(log)[0] == [0, 2, 9]


def test_truncating_into_a_gap_inside_a_batch_removes_the_whole_batch(
    make_log: MakeLog,
) -> None:
    log = gapped_log(make_log)
    log.truncate_to(11)  # inside 10..12 (11 itself was cleaned away)
    assert log.log_end_offset == 10
    log.truncate_to(6)  # inside the empty batch 5..7
    assert log.log_end_offset == 5
    assert consume(log)[0] == [0, 2]


def test_truncating_into_a_gap_between_segments_ends_the_log_at_the_offset(
    make_log: MakeLog,
) -> None:
    log = make_log(LogConfig(segment_bytes=100))
    log.append_batches(sparse_batch([0, 1], base_offset=0, last_offset=3))
    log.append_batches(sparse_batch([20, 22], base_offset=20, last_offset=25))
    log.truncate_to(12)
    assert log.log_end_offset == 12
    assert [s.base_offset for s in log.segments] == [0]
    log.append_batches(build_batch(recs(1), base_offset=12))
    assert consume(log)[0] == [0, 1, 12]


def test_a_compacted_log_keeps_old_segments_past_retention(make_log: MakeLog) -> None:
    log = make_log(LogConfig(segment_ms=3_600_000, retention_ms=DAY_MS, cleanup_policy="compact"))
    fill_segments(log, 3)
    log.update_high_watermark(log.log_end_offset)
    assert log.delete_retained_segments(T0 + 10 * DAY_MS) == 0
    log.update_config(
        LogConfig(segment_ms=3_600_000, retention_ms=DAY_MS, cleanup_policy="compact,delete")
    )
    assert log.delete_retained_segments(T0 + 10 * DAY_MS) == 3
