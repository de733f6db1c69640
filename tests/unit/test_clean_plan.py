"""The cleaner's selection (storage.clean_plan), as Kafka's LogCleanerManager decides it."""

from __future__ import annotations

import pytest

from storage.clean_plan import (
    INDEX_BYTES_MAX,
    CleanableOffsets,
    LogToClean,
    SegmentSummary,
    cleanable_offsets,
    compaction_delay_ms,
    filthiest,
    group_segments,
    log_to_clean,
)
from storage.limits import RELATIVE_OFFSET_MAX
from storage.log_config import LogConfig

NOW = 1_700_000_000_000
COMPACT = LogConfig(cleanup_policy="compact")


def seg(base: int, end: int, size: int = 100, ts: int = NOW - 10_000) -> SegmentSummary:
    return SegmentSummary(base, end, size, ts, first_batch_timestamp=ts)


# Four sealed segments of 100 bytes and an active one.
LOG = [seg(0, 10), seg(10, 20), seg(20, 30), seg(30, 40), seg(40, 45)]


def offsets(
    checkpoint: int | None, hw: int = 45, config: LogConfig = COMPACT, log_start: int = 0
) -> CleanableOffsets:
    return cleanable_offsets(
        LOG,
        log_start_offset=log_start,
        log_end_offset=45,
        high_watermark=hw,
        checkpoint=checkpoint,
        now_ms=NOW,
        config=config,
    )


def to_clean(checkpoint: int | None, hw: int = 45, config: LogConfig = COMPACT) -> LogToClean:
    return log_to_clean(
        LOG,
        log_start_offset=0,
        log_end_offset=45,
        high_watermark=hw,
        checkpoint=checkpoint,
        now_ms=NOW,
        config=config,
    )


def test_first_dirty_is_the_checkpoint_or_the_log_start() -> None:
    assert offsets(20).first_dirty == 20
    assert offsets(None).first_dirty == 0
    assert not offsets(20).force_checkpoint


def test_a_checkpoint_below_the_log_start_or_past_the_log_end_is_reset() -> None:
    below = offsets(5, log_start=10)
    assert (below.first_dirty, below.force_checkpoint) == (10, True)
    past = offsets(46)
    assert (past.first_dirty, past.force_checkpoint) == (0, True)


def test_the_active_segment_is_never_cleanable() -> None:
    assert offsets(0).uncleanable == 40
    assert to_clean(0).first_uncleanable == 40


def test_cleaning_stops_at_the_segment_holding_the_high_watermark() -> None:
    assert offsets(0, hw=25).uncleanable == 25
    # Rounded down to the base of the segment that holds it: only whole segments are cleaned.
    assert to_clean(0, hw=25).first_uncleanable == 20


def test_a_segment_younger_than_min_compaction_lag_stops_cleaning() -> None:
    config = LogConfig(cleanup_policy="compact", min_compaction_lag_ms=5_000)
    young = [seg(0, 10), seg(10, 20, ts=NOW - 1_000), seg(20, 30), seg(30, 35)]
    result = cleanable_offsets(
        young,
        log_start_offset=0,
        log_end_offset=35,
        high_watermark=35,
        checkpoint=None,
        now_ms=NOW,
        config=config,
    )
    assert result.uncleanable == 10


def test_the_uncleanable_offset_is_never_below_the_first_dirty_one() -> None:
    assert offsets(30, hw=25).uncleanable == 30


def test_dirty_ratio_counts_whole_segments_on_both_sides() -> None:
    state = to_clean(20)
    assert (state.clean_bytes, state.cleanable_bytes) == (200, 200)
    assert state.dirty_ratio == 0.5
    # Kafka counts the segment holding a first dirty offset inside it on both sides.
    inside = to_clean(25)
    assert (inside.clean_bytes, inside.cleanable_bytes) == (300, 200)


def test_a_log_is_cleanable_only_above_the_ratio() -> None:
    state = to_clean(20)  # ratio 0.5
    assert not state.is_cleanable(0.5)  # strictly above, as Kafka
    assert state.is_cleanable(0.49)


def test_max_compaction_lag_forces_a_clean_below_the_ratio() -> None:
    config = LogConfig(cleanup_policy="compact", max_compaction_lag_ms=5_000)
    assert compaction_delay_ms(LOG, 30, NOW, config) == 5_000
    state = log_to_clean(
        LOG,
        log_start_offset=0,
        log_end_offset=45,
        high_watermark=45,
        checkpoint=30,
        now_ms=NOW,
        config=config,
    )
    assert state.dirty_ratio == 0.25
    assert state.must_clean_now and state.is_cleanable(0.9)


def test_max_compaction_lag_ignores_the_active_segment_and_missing_timestamps() -> None:
    config = LogConfig(cleanup_policy="compact", max_compaction_lag_ms=5_000)
    assert compaction_delay_ms(LOG, 40, NOW, config) == 0
    no_ts = [SegmentSummary(0, 10, 100, -1, first_batch_timestamp=-1), seg(10, 12)]
    assert compaction_delay_ms(no_ts, 0, NOW, config) == 0


def test_filthiest_takes_the_largest_ratio_among_cleanable_compacted_logs() -> None:
    a = to_clean(20)  # 0.5
    b = to_clean(30)  # 0.25
    c = to_clean(0)  # 1.0
    delete = LogConfig()
    assert filthiest([(a, COMPACT), (b, COMPACT), (c, COMPACT)]) == 2
    assert filthiest([(a, COMPACT), (c, delete)]) is None  # a is at the default 0.5
    assert filthiest([(b, COMPACT)]) is None


def test_groups_hold_at_most_segment_bytes() -> None:
    segments = [seg(i * 10, i * 10 + 10, size=400) for i in range(5)]
    groups = group_segments(segments, segment_bytes=1000, first_uncleanable=50)
    assert [[s.base_offset for s in g] for g in groups] == [[0, 10], [20, 30], [40]]


def test_groups_bound_index_sizes() -> None:
    per = INDEX_BYTES_MAX // 8 // 2 + 1  # two of these overflow an offset index
    segments = [SegmentSummary(i * 10, i * 10 + 10, 10, 0, 0, per, 0) for i in range(3)]
    groups = group_segments(segments, segment_bytes=10**9, first_uncleanable=30)
    assert [len(g) for g in groups] == [1, 1, 1]


def test_groups_keep_offsets_within_int32_of_their_base() -> None:
    far = RELATIVE_OFFSET_MAX
    segments = [seg(0, 10), seg(10, 20), seg(far + 1, far + 10)]
    groups = group_segments(segments, segment_bytes=10**9, first_uncleanable=far + 10)
    # Segment 10 may hold offsets up to far (the next base - 1): exactly MAX from base 0.
    assert [[s.base_offset for s in g] for g in groups] == [[0, 10], [far + 1]]
    tight = [seg(0, 10), seg(10, 20), seg(far + 2, far + 10)]
    groups = group_segments(tight, segment_bytes=10**9, first_uncleanable=far + 10)
    assert [[s.base_offset for s in g] for g in groups] == [[0], [10, far + 2]]


def test_an_empty_segment_joins_a_group_whatever_its_offsets() -> None:
    far = RELATIVE_OFFSET_MAX
    segments = [seg(0, 10), SegmentSummary(10, 10, 0, -1), seg(far + 5, far + 10)]
    groups = group_segments(segments, segment_bytes=10**9, first_uncleanable=far + 10)
    assert [[s.base_offset for s in g] for g in groups] == [[0, 10], [far + 5]]


@pytest.mark.parametrize("segment_bytes", [1, 99])
def test_a_segment_larger_than_segment_bytes_is_a_group_of_its_own(segment_bytes: int) -> None:
    groups = group_segments(LOG[:2], segment_bytes=segment_bytes, first_uncleanable=20)
    assert [len(g) for g in groups] == [1, 1]
