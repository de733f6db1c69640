"""The file log with offset gaps, as Kafka's cleaner leaves a log: segments written by hand
(gaps inside batches, between batches, at a segment's end, empty batches, an empty segment in
the middle) are recovered, read and truncated as Kafka's LogLoader and LocalLog do, and real
damage is still told from a gap."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from storage.batch import build_batch, iter_batches
from storage.errors import KafkaStorageError
from storage.log import Log
from storage.log_config import LogConfig
from storage.segment import Segment
from tests.gapped_batches import empty_batch, rec, sparse_batch

CONFIG = LogConfig(index_interval_bytes=100, cleanup_policy="compact")


def write_segments(directory: Path, segments: dict[int, bytes]) -> None:
    """``.log`` files only (the indexes are rebuilt at open, as after a crash)."""
    directory.mkdir(parents=True, exist_ok=True)
    for base, data in segments.items():
        (directory / f"{base:020d}.log").write_bytes(data)


def cleaned_segments() -> dict[int, bytes]:
    """Three segments: [0, 20) with gaps inside and between batches and an empty batch at
    its end; [20, 30) emptied by the cleaner; [30, ...) with a batch starting above its
    base. Records: 0, 2, 9, 11, 33, 34, 40."""
    return {
        0: sparse_batch([0, 2], base_offset=0, last_offset=4)
        + sparse_batch([9, 11], base_offset=8, last_offset=11)
        + empty_batch(12, 15, producer_id=7, base_sequence=3),
        20: b"",
        30: sparse_batch([33, 34], base_offset=32, last_offset=35)
        + build_batch([rec(40)], base_offset=40),
    }


RECORDS = [0, 2, 9, 11, 33, 34, 40]


def consume(log: Log, start: int = 0, max_bytes: int = 1000) -> list[int]:
    found: list[int] = []
    while start < log.log_end_offset:
        data = log.read(start, max_bytes)
        if not data:
            break
        found += [r.offset for r in log.read_records(start, max_bytes)]
        start = list(iter_batches(data))[-1][1].next_offset
    return found


@pytest.mark.parametrize("recovery_point", [0, 12, 30, 41])
def test_a_cleaned_log_recovers_whole_with_its_gaps_and_an_empty_segment(
    tmp_path: Path, recovery_point: int, caplog: pytest.LogCaptureFixture
) -> None:
    write_segments(tmp_path / "t-0", cleaned_segments())
    with caplog.at_level(logging.WARNING):
        log = Log.open(tmp_path / "t-0", CONFIG, recovery_point=recovery_point)
    assert log.offline is None
    assert "dropping" not in caplog.text and "cut" not in caplog.text
    assert log.log_end_offset == 41
    assert [(s.base_offset, s.next_offset) for s in log.segments] == [(0, 20), (20, 30), (30, 41)]
    assert consume(log) == RECORDS
    assert consume(log, max_bytes=1) == RECORDS
    for offset in range(41):
        assert consume(log, offset) == [o for o in RECORDS if o >= offset], offset
    log.close()


def test_an_empty_middle_segment_opens_without_a_warning_every_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_segments(tmp_path / "t-0", cleaned_segments())
    Log.open(tmp_path / "t-0", CONFIG, recovery_point=0).close()  # indexes written
    for recovery_point in (0, 41):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            log = Log.open(tmp_path / "t-0", CONFIG, recovery_point=recovery_point)
        assert caplog.text == ""
        assert consume(log, 16) == [33, 34, 40]
        log.close()


def test_reads_in_each_kind_of_gap_return_the_next_batch(tmp_path: Path) -> None:
    write_segments(tmp_path / "t-0", cleaned_segments())
    log = Log.open(tmp_path / "t-0", CONFIG, recovery_point=41)
    for offset, first in [(5, 8), (7, 8), (10, 8), (13, 12), (16, 32), (20, 32), (31, 32)]:
        data = log.read(offset, 1)
        assert next(iter_batches(data))[1].base_offset == first, offset
    assert log.read_records(13, 1000) == []  # the empty batch alone
    assert [h.base_offset for h in log.batch_headers(16)] == [32, 40]
    log.close()


def test_truncating_into_a_gap_then_reopening_keeps_the_records_below(tmp_path: Path) -> None:
    write_segments(tmp_path / "t-0", cleaned_segments())
    log = Log.open(tmp_path / "t-0", CONFIG, recovery_point=41)
    log.truncate_to(25)  # in the empty segment
    assert log.log_end_offset == 25
    assert [s.base_offset for s in log.segments] == [0, 20]
    log.append_batches(build_batch([rec(26)], base_offset=26))
    assert consume(log) == [0, 2, 9, 11, 26]
    log.close()
    reopened = Log.open(tmp_path / "t-0", CONFIG, recovery_point=0)
    assert reopened.log_end_offset == 27
    assert consume(reopened) == [0, 2, 9, 11, 26]
    reopened.close()


def test_a_truncation_into_a_gap_is_not_kept_past_a_restart_as_in_kafka(tmp_path: Path) -> None:
    # Kafka's log end after a restart is the active segment's last batch's next offset: an
    # end raised by a truncation into a gap comes back down to it.
    write_segments(tmp_path / "t-0", cleaned_segments())
    log = Log.open(tmp_path / "t-0", CONFIG, recovery_point=41)
    log.truncate_to(38)
    assert log.log_end_offset == 38
    log.close()
    assert Log.open(tmp_path / "t-0", CONFIG, recovery_point=38).log_end_offset == 36


def test_a_log_that_is_not_compacted_is_cut_at_a_gap_above_the_recovery_point(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Its gaps can only be damage there (a hole a crash left, a base offset flipped outside
    # the CRC): the log ends at the hole and a follower fetches the rest again.
    delete = LogConfig(index_interval_bytes=100)
    write_segments(tmp_path / "t-0", cleaned_segments())
    with caplog.at_level(logging.WARNING):
        log = Log.open(tmp_path / "t-0", delete, recovery_point=0)
    assert log.log_end_offset == 5
    assert consume(log) == [0, 2]
    assert "expected a batch at offset 5, found base offset 8" in caplog.text
    assert [s.base_offset for s in log.segments] == [0]
    log.close()


def test_a_log_that_is_not_compacted_keeps_its_gaps_below_the_recovery_point(
    tmp_path: Path,
) -> None:
    # A topic compacted once and then switched to delete: what was flushed is trusted.
    write_segments(tmp_path / "t-0", cleaned_segments())
    log = Log.open(tmp_path / "t-0", LogConfig(index_interval_bytes=100), recovery_point=41)
    assert log.log_end_offset == 41
    assert consume(log) == RECORDS
    log.close()


def test_overlapping_batches_are_still_corruption(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = sparse_batch([0, 2], base_offset=0, last_offset=4)
    overlapping = sparse_batch([4], base_offset=4, last_offset=5)
    write_segments(tmp_path / "t-0", {0: good + overlapping})
    with caplog.at_level(logging.WARNING):
        log = Log.open(tmp_path / "t-0", CONFIG, recovery_point=0)
    assert log.log_end_offset == 5
    assert "expected a batch at offset 5 or later, found base offset 4" in caplog.text
    log.close()


def test_a_segment_starting_below_the_previous_ones_end_is_dropped(tmp_path: Path) -> None:
    write_segments(
        tmp_path / "t-0",
        {
            0: sparse_batch([0, 6], base_offset=0, last_offset=9),
            8: build_batch([rec(8)], base_offset=8),
            20: build_batch([rec(20)], base_offset=20),
        },
    )
    log = Log.open(tmp_path / "t-0", CONFIG, recovery_point=0)
    assert log.log_end_offset == 10
    assert [s.base_offset for s in log.segments] == [0]
    assert consume(log) == [0, 6]
    log.close()


def test_a_read_of_overlapping_batches_below_the_recovery_point_takes_the_log_offline(
    tmp_path: Path,
) -> None:
    # Below the recovery point nothing is re-read at open: the read finds it.
    good = sparse_batch([0, 2], base_offset=0, last_offset=4)
    overlapping = build_batch([rec(3)], base_offset=3)
    write_segments(
        tmp_path / "t-0", {0: good + overlapping, 10: build_batch([rec(10)], base_offset=10)}
    )
    log = Log.open(tmp_path / "t-0", CONFIG, recovery_point=11)
    with pytest.raises(KafkaStorageError, match="at or after offset 5"):
        log.read(0, 1000)
    assert log.offline is not None
    log.close()


def test_a_segment_reads_and_locates_across_its_gaps(tmp_path: Path) -> None:
    data = cleaned_segments()[0]
    (tmp_path / f"{0:020d}.log").write_bytes(data)
    segment = Segment.open_existing(tmp_path, 0, end_offset=20)
    positions = [pos for pos, _h in iter_batches(data)]
    assert segment.locate(3) == (positions[0], next(iter_batches(data))[1])
    for offset, position in [(5, positions[1]), (12, positions[2]), (15, positions[2])]:
        found = segment.locate(offset)
        assert found is not None and found[0] == position
    assert segment.locate(16) is None  # the gap at the segment's end
    assert segment.read(16, 1000, None) == (-1, b"")
    assert segment.read(5, 1000, None) == (positions[1], data[positions[1] :])
    assert segment.read(5, 1000, 12) == (positions[1], data[positions[1] : positions[2]])
    segment.close()
