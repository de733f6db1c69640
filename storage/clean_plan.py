"""What the cleaner cleans, and when: Kafka's LogCleanerManager selection, as pure functions.

A compacted log is cut in three parts by two offsets::

    [log start ............ first_dirty) [first_dirty ... first_uncleanable) [.... log end)
      clean: cleaned before, each key      dirty and cleanable: written since    uncleanable:
      at most once                         the last clean                        never touched

- ``first_dirty`` is the cleaner checkpoint (``cleaner-offset-checkpoint``), or the log start
  offset when there is none. A checkpoint below the log start (retention deleted past it) or
  above the log end (the log was cut) is reset to the log start, and the caller rewrites the
  checkpoint (``force_checkpoint``), as Kafka does.
- ``first_uncleanable`` is the smallest of: the high watermark (Kafka's last stable offset:
  we have no transactions, so it is the HW), the active segment's base offset, and the base
  offset of the first dirty segment that holds a record younger than ``min.compaction.lag.ms``
  (its largest timestamp is after ``now - lag``); never below ``first_dirty``. Then, as
  Kafka's ``calculateCleanableBytes`` does, it is rounded down to the base offset of the
  segment that holds it: only whole segments are cleaned.
- The dirty ratio is cleanable bytes / (clean bytes + cleanable bytes), summed over whole
  segments (Kafka counts the segment holding ``first_dirty`` on both sides when
  ``first_dirty`` falls inside it; so do we, to pick the same logs).
- ``max.compaction.lag.ms``: a log must be cleaned now when the earliest first-batch timestamp
  of its dirty non-active segments is older than ``now - max.compaction.lag.ms``; it is then
  cleaned whatever its ratio (if it has cleanable bytes).
- Among several logs, the cleaner takes the one with the largest ratio among those that must
  be cleaned now or whose ratio is above ``min.cleanable.dirty.ratio`` (strictly, as Kafka).

Grouping (Kafka's ``groupSegmentsBySize``): consecutive segments are cleaned into one new
segment while the group's log bytes stay within ``segment.bytes``, each of its index files
within ``segment.index.bytes`` (Kafka's 10 MiB default; we have no such topic config), and
its offsets within the int32 relative offsets of the index (the last offset a segment may hold
is bounded by the next segment's base, or by ``first_uncleanable`` for the last one).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from storage.index import OFFSET_ENTRY_SIZE, TIME_ENTRY_SIZE
from storage.limits import INDEX_PREALLOCATE_BYTES, RELATIVE_OFFSET_MAX
from storage.log_config import LogConfig

# Kafka's segment.index.bytes default (10 MiB): the largest index file a cleaned segment may
# need. Kafka preallocates index files to this size (so do we, storage.limits), so it bounds a
# group's entries; a cleaned segment's files hold only their entries.
INDEX_BYTES_MAX = INDEX_PREALLOCATE_BYTES

_LONG_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """What the cleaner needs to know of one segment of a log (the log's segments are given
    oldest first, the active one last).

    ``next_offset``: the offset after its last batch (the next segment's base when the log has
    no gaps); ``max_timestamp``: its largest batch timestamp (-1: none); ``first_batch_timestamp``:
    its first batch's max timestamp (None: empty); ``index_entries`` / ``time_index_entries``:
    how many entries its index files hold (grouping bounds their sum); ``path``: its ``.log``.
    """

    base_offset: int
    next_offset: int
    size_bytes: int
    max_timestamp: int
    first_batch_timestamp: int | None = None
    index_entries: int = 0
    time_index_entries: int = 0
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class CleanableOffsets:
    """Kafka's ``OffsetsToClean``: where the dirty part starts and where cleaning must stop."""

    first_dirty: int
    # Not yet rounded down to a segment base (see LogToClean.first_uncleanable for that).
    uncleanable: int
    # The checkpoint was unusable and was reset to the log start: rewrite it.
    force_checkpoint: bool


@dataclass(frozen=True, slots=True)
class LogToClean:
    """One log's cleaning state: Kafka's ``LogToClean``.

    ``first_uncleanable`` is a segment base offset: the cleaned range is
    [``first_dirty``, ``first_uncleanable``); ``must_clean_now``: max.compaction.lag.ms forces
    a clean; ``compaction_delay_ms``: how far past that lag its oldest dirty record is."""

    first_dirty: int
    first_uncleanable: int
    clean_bytes: int
    cleanable_bytes: int
    compaction_delay_ms: int
    force_checkpoint: bool

    @property
    def total_bytes(self) -> int:
        return self.clean_bytes + self.cleanable_bytes

    @property
    def must_clean_now(self) -> bool:
        return self.compaction_delay_ms > 0

    @property
    def dirty_ratio(self) -> float:
        """Cleanable bytes over all bytes up to ``first_uncleanable`` (0 for an empty log)."""
        total = self.total_bytes
        return self.cleanable_bytes / total if total else 0.0

    def is_cleanable(self, min_cleanable_dirty_ratio: float) -> bool:
        """Whether the cleaner may take this log now (Kafka's filter in
        ``grabFilthiestCompactedLog``)."""
        if self.total_bytes <= 0:
            return False
        return (
            self.must_clean_now and self.cleanable_bytes > 0
        ) or self.dirty_ratio > min_cleanable_dirty_ratio


def _floor_index(segments: Sequence[SegmentSummary], offset: int) -> int:
    """Index of the segment whose base is the largest <= ``offset`` (0 if all are above)."""
    bases = [s.base_offset for s in segments]
    return max(bisect.bisect_right(bases, offset) - 1, 0)


def segments_in(
    segments: Sequence[SegmentSummary], start: int, end: int
) -> Sequence[SegmentSummary]:
    """Kafka's ``logSegments(from, to)``: the segment holding ``start`` (its floor) and every
    later one whose base is below ``end``; nothing when ``start == end``."""
    if start >= end or not segments:
        return []
    first = _floor_index(segments, start)
    return [s for s in segments[first:] if s.base_offset < end]


def cleanable_offsets(
    segments: Sequence[SegmentSummary],
    *,
    log_start_offset: int,
    log_end_offset: int,
    high_watermark: int,
    checkpoint: int | None,
    now_ms: int,
    config: LogConfig,
) -> CleanableOffsets:
    """Kafka's ``LogCleanerManager.cleanableOffsets`` (module docstring): the first dirty
    offset and the first offset that may not be cleaned. ``segments`` ends with the active
    segment."""
    assert segments, "a log has at least its active segment"
    wanted = checkpoint if checkpoint is not None else log_start_offset
    force = wanted < log_start_offset or wanted > log_end_offset
    first_dirty = log_start_offset if force else wanted
    candidates = [high_watermark, segments[-1].base_offset]
    lag = max(config.min_compaction_lag_ms, 0)
    if lag > 0:
        for segment in segments_in(segments[:-1], first_dirty, segments[-1].base_offset):
            if segment.max_timestamp > now_ms - lag:
                candidates.append(segment.base_offset)
                break
    return CleanableOffsets(first_dirty, max(first_dirty, min(candidates)), force)


def compaction_delay_ms(
    segments: Sequence[SegmentSummary], first_dirty: int, now_ms: int, config: LogConfig
) -> int:
    """Kafka's ``maxCompactionDelay``: how long past ``max.compaction.lag.ms`` the oldest dirty
    non-active segment's first batch is (0: not past it). Timestamps <= 0 are ignored."""
    earliest = _LONG_MAX
    for segment in segments_in(segments[:-1], first_dirty, segments[-1].base_offset):
        ts = segment.first_batch_timestamp
        if ts is not None and 0 < ts < earliest:
            earliest = ts
    clean_until = now_ms - max(config.max_compaction_lag_ms, 0)
    return clean_until - earliest if earliest < clean_until else 0


def log_to_clean(
    segments: Sequence[SegmentSummary],
    *,
    log_start_offset: int,
    log_end_offset: int,
    high_watermark: int,
    checkpoint: int | None,
    now_ms: int,
    config: LogConfig,
) -> LogToClean:
    """One log's :class:`LogToClean`: its cleanable range, byte counts and compaction delay
    (Kafka's ``LogToClean`` with ``calculateCleanableBytes``)."""
    offsets = cleanable_offsets(
        segments,
        log_start_offset=log_start_offset,
        log_end_offset=log_end_offset,
        high_watermark=high_watermark,
        checkpoint=checkpoint,
        now_ms=now_ms,
        config=config,
    )
    first_dirty = offsets.first_dirty
    # The segment holding the uncleanable offset, when it is not the active one, else the
    # active one: its base is where cleaning stops.
    active_base = segments[-1].base_offset
    if offsets.uncleanable < active_base:
        first_uncleanable = segments[_floor_index(segments, offsets.uncleanable)].base_offset
    else:
        first_uncleanable = active_base
    clean = segments_in(segments, -1, first_dirty)
    cleanable = segments_in(segments, min(first_dirty, first_uncleanable), first_uncleanable)
    return LogToClean(
        first_dirty=first_dirty,
        first_uncleanable=first_uncleanable,
        clean_bytes=sum(s.size_bytes for s in clean),
        cleanable_bytes=sum(s.size_bytes for s in cleanable),
        compaction_delay_ms=compaction_delay_ms(segments, first_dirty, now_ms, config),
        force_checkpoint=offsets.force_checkpoint,
    )


def filthiest(candidates: Sequence[tuple[LogToClean, LogConfig]]) -> int | None:
    """Index in ``candidates`` of the log to clean next (Kafka's
    ``grabFilthiestCompactedLog``): among the cleanable ones, the largest dirty ratio, the
    first of equals; None if none may be cleaned."""
    best: int | None = None
    for i, (state, config) in enumerate(candidates):
        if not config.compact or not state.is_cleanable(config.min_cleanable_dirty_ratio):
            continue
        if best is None or state.dirty_ratio > candidates[best][0].dirty_ratio:
            best = i
    return best


def group_segments(
    segments: Sequence[SegmentSummary],
    *,
    segment_bytes: int,
    first_uncleanable: int,
    index_bytes_max: int = INDEX_BYTES_MAX,
) -> list[list[SegmentSummary]]:
    """Kafka's ``groupSegmentsBySize``: ``segments`` (the ones to clean, oldest first) cut
    into runs that each become one cleaned segment: total log bytes <= ``segment_bytes``,
    each index's total bytes <= ``index_bytes_max``, and every offset of the run within
    ``RELATIVE_OFFSET_MAX`` of its first base (an empty segment skips that last check, as in
    Kafka, so empty segments every 2**31 offsets do not stay apart forever)."""
    groups: list[list[SegmentSummary]] = []
    i = 0
    while i < len(segments):
        head = segments[i]
        group = [head]
        log_size = head.size_bytes
        index_size = head.index_entries * OFFSET_ENTRY_SIZE
        time_size = head.time_index_entries * TIME_ENTRY_SIZE
        i += 1
        while i < len(segments):
            nxt = segments[i]
            # The largest offset nxt may hold: up to the following segment's base, or up to
            # the cleanable range's end for the last segment.
            last_offset = (
                segments[i + 1].base_offset - 1 if i + 1 < len(segments) else first_uncleanable - 1
            )
            if (
                log_size + nxt.size_bytes > segment_bytes
                or index_size + nxt.index_entries * OFFSET_ENTRY_SIZE > index_bytes_max
                or time_size + nxt.time_index_entries * TIME_ENTRY_SIZE > index_bytes_max
                or (
                    nxt.size_bytes != 0 and last_offset - group[0].base_offset > RELATIVE_OFFSET_MAX
                )
            ):
                break
            group.append(nxt)
            log_size += nxt.size_bytes
            index_size += nxt.index_entries * OFFSET_ENTRY_SIZE
            time_size += nxt.time_index_entries * TIME_ENTRY_SIZE
            i += 1
        groups.append(group)
    return groups
