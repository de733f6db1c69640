"""The log's pure decisions (storage/log_policy.py) where compaction changes them: which
segments retention may delete under each cleanup.policy, when a segment rolls on a compacted
log, and which replica batches continue a log with gaps."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from storage.batch import build_batch
from storage.errors import UnexpectedAppendOffsetError
from storage.limits import RELATIVE_OFFSET_MAX
from storage.log_config import LogConfig
from storage.log_policy import check_replica_batches, retained_segment_count, should_roll
from tests.gapped_batches import rec, sparse_batch

DAY_MS = 24 * 3600 * 1000
NOW = 100 * DAY_MS


@dataclass(frozen=True)
class Seg:
    base_offset: int
    next_offset: int
    size_bytes: int = 100
    max_timestamp: int = 0  # 100 days before NOW


OLD = [Seg(0, 10), Seg(10, 20), Seg(20, 30), Seg(30, 30, size_bytes=0)]


@pytest.mark.parametrize(
    ("policy", "expected"), [("delete", 3), ("compact,delete", 3), ("compact", 0)]
)
def test_retention_by_time_applies_only_when_the_policy_has_delete(
    policy: str, expected: int
) -> None:
    config = LogConfig(retention_ms=DAY_MS, cleanup_policy=policy)
    count = retained_segment_count(config, OLD, high_watermark=30, log_start_offset=0, now_ms=NOW)
    assert count == expected


@pytest.mark.parametrize("policy", ["delete", "compact"])
def test_retention_by_size_applies_only_when_the_policy_has_delete(policy: str) -> None:
    config = LogConfig(retention_ms=-1, retention_bytes=100, cleanup_policy=policy)
    count = retained_segment_count(config, OLD, high_watermark=30, log_start_offset=0, now_ms=NOW)
    assert count == (2 if policy == "delete" else 0)


def test_segments_below_the_log_start_offset_go_under_any_policy() -> None:
    config = LogConfig(retention_ms=-1, cleanup_policy="compact")
    count = retained_segment_count(config, OLD, high_watermark=30, log_start_offset=20, now_ms=NOW)
    assert count == 2


def test_a_segment_whose_gap_reaches_past_the_high_watermark_is_kept() -> None:
    # The segment's last batch ends at 15, but it covers up to the next base, 20 (a gap the
    # cleaner made): deleting it would put the log start above a high watermark of 18.
    segments = [Seg(0, 15), Seg(20, 30), Seg(30, 30, size_bytes=0)]
    count = retained_segment_count(
        LogConfig(retention_ms=DAY_MS), segments, high_watermark=18, log_start_offset=0, now_ms=NOW
    )
    assert count == 0


def roll(config: LogConfig, *, size: int, first_ts: int | None, ts: int, last: int = 5) -> bool:
    return should_roll(
        config,
        segment_base_offset=0,
        segment_size_bytes=size,
        segment_first_timestamp=first_ts,
        batch_size_bytes=100,
        batch_max_timestamp=ts,
        batch_last_offset=last,
    )


def test_a_compacted_log_rolls_by_max_compaction_lag_when_it_is_below_segment_ms() -> None:
    config = LogConfig(segment_ms=DAY_MS, max_compaction_lag_ms=60_000, cleanup_policy="compact")
    assert not roll(config, size=100, first_ts=0, ts=60_000)
    assert roll(config, size=100, first_ts=0, ts=60_001)
    # The lag rolls nothing on a log that is not compacted: the active segment is never
    # cleaned, so only a compacted log needs it to roll in time.
    deleted = LogConfig(segment_ms=DAY_MS, max_compaction_lag_ms=60_000)
    assert not roll(deleted, size=100, first_ts=0, ts=60_001)


def test_even_an_empty_segment_rolls_for_a_batch_beyond_its_relative_offsets() -> None:
    # A replica append across a huge gap: the index's int32 offsets cannot reach the batch.
    config = LogConfig()
    assert not roll(config, size=0, first_ts=None, ts=0, last=RELATIVE_OFFSET_MAX)
    assert roll(config, size=0, first_ts=None, ts=0, last=RELATIVE_OFFSET_MAX + 1)


def test_replica_batches_may_jump_gaps_but_never_go_back() -> None:
    data = build_batch([rec(7)], base_offset=7) + sparse_batch([12], base_offset=10, last_offset=14)
    headers = check_replica_batches(data, 5)
    assert [(h.base_offset, h.last_offset) for h in headers] == [(7, 7), (10, 14)]
    with pytest.raises(UnexpectedAppendOffsetError, match="expected offset 15, found 7"):
        check_replica_batches(data + build_batch([rec(7)], base_offset=7), 5)
    with pytest.raises(UnexpectedAppendOffsetError, match="expected offset 8, found 7"):
        check_replica_batches(data, 8)
