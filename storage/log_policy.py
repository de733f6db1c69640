"""The log's decisions, as pure functions: whether replica batches may be appended, when to
roll a segment, which segments retention deletes. :class:`storage.log.Log` and its in-memory
twin :class:`storage.memory_log.MemoryLog` both use them, so they validate, roll and delete
alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from storage.batch import BatchHeader, check_batch
from storage.errors import UnexpectedAppendOffsetError
from storage.limits import RELATIVE_OFFSET_MAX
from storage.log_config import LogConfig


def should_roll(
    config: LogConfig,
    *,
    segment_base_offset: int,
    segment_size_bytes: int,
    segment_first_timestamp: int | None,
    batch_size_bytes: int,
    batch_max_timestamp: int,
    batch_last_offset: int,
) -> bool:
    """Whether a batch must go into a new segment rather than the active one.

    It rolls (Kafka's ``shouldRoll``) when the batch's last offset is too far from the base
    offset for the index's int32 relative offsets (even from an empty segment: a replica
    append may jump a gap of a compacted log). Otherwise an empty segment never rolls, and a
    non-empty one rolls when the batch would make it larger than ``segment.bytes``, or when
    the batch's max timestamp is more than ``config.max_segment_ms`` (``segment.ms``, or
    ``max.compaction.lag.ms`` when smaller on a compacted log) after the segment's first
    batch's: the batches' own timestamps, not the clock, so a leader and its followers roll at
    the same batch.
    """
    if batch_last_offset - segment_base_offset > RELATIVE_OFFSET_MAX:
        return True
    if segment_size_bytes == 0:
        return False
    if segment_size_bytes + batch_size_bytes > config.segment_bytes:
        return True
    return (
        segment_first_timestamp is not None
        and segment_first_timestamp >= 0
        and batch_max_timestamp - segment_first_timestamp > config.max_segment_ms
    )


class SegmentSummary(Protocol):
    """What retention needs to know of a segment; both logs' segments have it, so they pass
    their segments as they are."""

    @property
    def base_offset(self) -> int: ...
    @property
    def next_offset(self) -> int: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def max_timestamp(self) -> int: ...


def retained_segment_count(
    config: LogConfig,
    segments: Sequence[SegmentSummary],
    *,
    high_watermark: int,
    log_start_offset: int,
    now_ms: int,
) -> int:
    """How many of the oldest ``segments`` retention deletes (Kafka's ``deleteOldSegments``).

    A segment is deletable only if it lies wholly below the high watermark (up to the next
    segment's base offset: a gap at its end counts as its own) and is not the last segment
    while that one is empty; scanning from the oldest, deletion stops at the first segment
    that is not deletable. When ``cleanup.policy`` has ``delete``, deletable are segments
    whose largest timestamp is more than ``retention.ms`` before ``now_ms``, then the oldest
    while the log without them is still at least ``retention.bytes``; under any policy, those
    wholly below ``log_start_offset``. The count may cover every segment: the caller rolls a
    fresh empty one first.
    """
    count = 0
    total = sum(s.size_bytes for s in segments)
    delete = config.delete
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if last and segment.size_bytes == 0:
            break
        upper = segment.next_offset if last else segments[i + 1].base_offset
        if upper > high_watermark:
            break
        by_time = (
            delete
            and config.retention_ms >= 0
            and now_ms - segment.max_timestamp > config.retention_ms
        )
        by_size = (
            delete
            and config.retention_bytes >= 0
            and total - segment.size_bytes >= config.retention_bytes
        )
        by_start = not last and segments[i + 1].base_offset <= log_start_offset
        if not (by_time or by_size or by_start):
            break
        total -= segment.size_bytes
        count += 1
    return count


def check_replica_batches(
    data: bytes | bytearray | memoryview, log_end_offset: int
) -> list[BatchHeader]:
    """The headers of the whole batches in ``data`` if they may be appended at
    ``log_end_offset`` as they are (the replica path): every batch parses and its CRC holds,
    the first starts at or above ``log_end_offset`` and each next one above the previous
    one's last offset. Gaps are fine (a compacted leader's log has them; Kafka refuses only an
    offset below the log end, ``UnexpectedAppendOffsetException``).

    Raises ``ValueError`` for no data, :class:`CorruptRecordError` for a bad batch and
    :class:`UnexpectedAppendOffsetError` for offsets that go back into the log.
    """
    if not data:
        raise ValueError("an append needs at least one batch")
    headers: list[BatchHeader] = []
    expected = log_end_offset
    pos = 0
    while pos < len(data):
        header = check_batch(data, pos)
        if header.base_offset < expected:
            raise UnexpectedAppendOffsetError(
                f"batch {len(headers)} at byte {pos} starts below offset {expected}",
                expected,
                header.base_offset,
            )
        headers.append(header)
        expected = header.next_offset
        pos += header.size
    return headers
