"""Recovery at open: find a log's segments, re-read what may be torn, cut it, rebuild indexes.

The rules (Kafka's ``LogLoader``, with two differences noted):

- Segments wholly below the recovery point were fsynced: they are trusted. Their indexes are
  sanity-checked (:mod:`storage.index`) and rebuilt from the batch headers if damaged.
- From the segment holding the recovery point on, every batch at or after the recovery point
  is re-read and checked: header, length, CRC, and that its base offset is above the last
  offset of the one before (offsets strictly increase; an overlap or a step back is
  corruption). The first bad byte (torn write, zero fill, bad CRC) ends the log: the file is
  cut there, later segments are deleted, and a WARNING says how many bytes went and where.
- Below the recovery point nothing is ever cut. Kafka re-reads the whole segment holding the
  recovery point; we re-read it only from the last time-index entry below the recovery point
  (every batch before it has a smaller timestamp, so the segment's largest timestamp still
  comes out exact), checking headers only there. A header that does not parse below the
  recovery point takes the log offline (KafkaStorageError naming file and position).
- Gaps (Kafka's compacted logs, see :mod:`storage.segment`): a batch may start above the end
  of the one before, and a segment above the end of the one before it; a sealed segment
  covers the offsets up to the next segment's base (its ``next_offset``), so a segment the
  cleaner left empty is a normal part of the log. A segment that overlaps the one before is
  dropped with every later one. The second difference from Kafka: in the part re-read (at
  and after the recovery point), a log whose ``cleanup.policy`` does not compact must be
  dense, as it was written. There a gap can only be damage: a crash that kept a later
  segment's pages but lost the end of the one before leaves a hole that Kafka's loader
  accepts, and a replica would never fetch it again; a base offset changed by a bit flip
  (it lies outside the CRC) looks like a gap too. The log is cut at the hole instead, and a
  follower fetches the rest again.
- After a clean shutdown (the log directory's ``.kafka_cleanshutdown``, which the caller
  passes as ``clean_shutdown``) nothing is re-read, as Kafka's ``LogLoader.recoverLog`` skips
  recovery then: every segment is loaded as one below the recovery point is, and the active
  one's end is found from its offset index's last entry by reading the batch headers after it
  (Kafka's ``LogSegment.readNextOffset``), its largest timestamp from its time index (whose
  final entry the clean close appended). The recovery point becomes the log end. Should the
  active segment's indexes not match its batches after all, it is recovered as after a crash.
- The segment that ends up active gets its index files preallocated again at once (Kafka's
  ``LogLoader.load``: ``resizeIndexes(maxIndexSize)``), when it has them.
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from storage.errors import CorruptRecordError, KafkaStorageError
from storage.limits import RECOVERY_WINDOW_BYTES, RELATIVE_OFFSET_MAX
from storage.log_config import LogConfig
from storage.scan import FileWindow, check_crc_at, header_at
from storage.segment import LOG_SUFFIX, NO_TIMESTAMP, Segment

log = logging.getLogger(__name__)

_SEGMENT_FILE = re.compile(r"^(\d{20})(\.log|\.index|\.timeindex)$")
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ScanResult:
    """How a scan of a segment's batches ended.

    ``valid_bytes``: the length of the whole, valid batches from the start of the file;
    ``error``: what stopped the scan there, with its file position (None: the scan reached the
    end of the file); ``below_recovery_point``: the bad batch lies below the recovery point
    (it is never cut: the log goes offline instead).
    """

    valid_bytes: int
    error: CorruptRecordError | None = None
    below_recovery_point: bool = False


class _IndexMismatchError(Exception):
    """An index entry names a batch that is not at its position: rebuild the index."""


def recover_segment(
    segment: Segment, recovery_point: int, index_interval_bytes: int, *, gaps: bool = True
) -> ScanResult:
    """Re-reads ``segment`` from the recovery point (see the module's rules), rebuilding the
    index entries of the part it reads and the segment's next offset, largest timestamp and
    first timestamp; stops at the first bad batch and says where. The caller cuts there.
    ``gaps``: whether batches may start above the end of the one before (a compacted log);
    when not, they must follow each other densely. The time index ends with the largest
    timestamp of what was kept, as Kafka's ``LogSegment.recover`` leaves it."""
    result = _recover_entries(segment, recovery_point, index_interval_bytes, gaps)
    segment.time_index.maybe_append(segment.max_timestamp, segment.offset_of_max_timestamp)
    return result


def _recover_entries(
    segment: Segment, recovery_point: int, index_interval_bytes: int, gaps: bool
) -> ScanResult:
    if recovery_point > segment.base_offset and segment.index_damage is None:
        segment.time_index.truncate_from_offset(recovery_point)
        last_time = segment.time_index.last_entry()
        entry = segment.offset_index.lookup(last_time[1]) if last_time is not None else None
        if last_time is not None and entry is not None:
            segment.offset_index.keep_through_position(entry[1])
            try:
                return _scan(
                    segment,
                    entry[1],
                    entry[0],
                    recovery_point,
                    last_time,
                    index_interval_bytes,
                    gaps,
                )
            except _IndexMismatchError as e:
                segment.drop_indexes(str(e))
    segment.offset_index.clear()
    segment.time_index.clear()
    return _scan(segment, 0, None, recovery_point, None, index_interval_bytes, gaps)


def rebuild_indexes(segment: Segment, index_interval_bytes: int) -> ScanResult:
    """Rebuilds both indexes from the batch headers of the whole segment (no CRC: this is for
    segments below the recovery point, whose next offset is already known), the time index
    ending with the largest timestamp (Kafka's ``LogSegment.recover``)."""
    end_offset = segment.next_offset
    segment.offset_index.clear()
    segment.time_index.clear()
    result = _scan(segment, 0, None, _INT64_MAX, None, index_interval_bytes, True)
    segment.next_offset = max(segment.next_offset, end_offset)
    segment.time_index.maybe_append(segment.max_timestamp, segment.offset_of_max_timestamp)
    return result


def _scan(
    segment: Segment,
    start: int,
    last_offset_at_start: int | None,
    crc_from_offset: int,
    time_entry: tuple[int, int] | None,
    index_interval_bytes: int,
    gaps: bool,
) -> ScanResult:
    """Walks the batches from ``start``, checking headers (and CRCs from ``crc_from_offset``
    on) and that offsets increase (densely unless ``gaps``), adding index entries as appends
    would."""
    max_ts, offset_of_max = time_entry if time_entry is not None else (NO_TIMESTAMP, -1)
    end = segment.size_bytes
    header_window = FileWindow(segment.fd, end)
    crc_window = FileWindow(segment.fd, end, RECOVERY_WINDOW_BYTES)
    # The batch at `start` is known only through the index entry that points there.
    expected: int | None = segment.base_offset if start == 0 else None
    since = 0
    pos = start
    first_ts: int | None = None
    result = ScanResult(end)
    while pos < end:
        try:
            header = header_at(header_window, pos, end)
            if expected is None:
                if header.last_offset != last_offset_at_start:
                    raise _IndexMismatchError(
                        f".index says the batch at {pos} ends at offset "
                        f"{last_offset_at_start}, it ends at {header.last_offset}"
                    )
            elif header.base_offset < expected or (
                # Dense only where a crash may have torn the log: below the recovery point a
                # flushed gap stays (a topic compacted once, then switched to delete).
                not gaps
                and header.base_offset != expected
                and header.last_offset >= crc_from_offset
            ):
                or_later = " or later" if gaps else ""
                raise CorruptRecordError(
                    f"expected a batch at offset {expected}{or_later}, found base offset "
                    f"{header.base_offset}",
                    pos,
                )
            if header.last_offset - segment.base_offset > RELATIVE_OFFSET_MAX:
                raise CorruptRecordError(
                    f"offset {header.last_offset} is too far from the segment's base offset "
                    f"{segment.base_offset}",
                    pos,
                )
            if header.last_offset >= crc_from_offset:
                check_crc_at(segment.fd, crc_window, pos, header)
        except CorruptRecordError as e:
            if expected is None:
                raise _IndexMismatchError(f".index points at a bad batch: {e}") from e
            result = ScanResult(pos, e, expected < crc_from_offset)
            break
        except OSError as e:
            raise KafkaStorageError(f"cannot read the log: {e}", str(segment.log_path), pos) from e
        if header.max_timestamp > max_ts:
            max_ts = header.max_timestamp
            offset_of_max = header.last_offset
        if since > index_interval_bytes:
            segment.offset_index.append(header.last_offset, pos)
            segment.time_index.maybe_append(max_ts, offset_of_max)
            since = 0
        since += header.size
        if pos == 0:
            first_ts = header.max_timestamp
        expected = header.next_offset
        pos += header.size
    segment.next_offset = expected if expected is not None else segment.base_offset
    segment.max_timestamp = max_ts
    segment.offset_of_max_timestamp = offset_of_max
    segment.bytes_since_index_entry = since
    if first_ts is None and pos > 0:
        first_ts = _first_timestamp(segment, max_ts)
    segment.first_batch_timestamp = first_ts
    segment.index_damage = None
    return result


def _first_timestamp(segment: Segment, fallback: int) -> int:
    try:
        return header_at(
            FileWindow(segment.fd, segment.size_bytes), 0, segment.size_bytes
        ).max_timestamp
    except (CorruptRecordError, OSError):
        return fallback


# -- a whole log directory ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedLog:
    """What :func:`load_segments` found: the recovered segments (never empty), the recovery
    point to use, the error that takes the log offline (or None), and whether directory
    entries changed (files created or deleted: the directory needs an fsync)."""

    segments: list[Segment]
    recovery_point: int
    offline: KafkaStorageError | None
    directory_changed: bool


def load_segments(
    directory: Path,
    config: LogConfig,
    recovery_point: int,
    log_start_offset: int,
    *,
    gaps: bool | None = None,
    clean_shutdown: bool = False,
) -> LoadedLog:
    """Opens the segments of ``directory`` and recovers them (the module's rules; with
    ``clean_shutdown`` they are trusted instead). An empty directory gets one empty segment
    at ``log_start_offset``."""
    bases: set[int] = set()
    index_only: list[Path] = []
    for child in directory.iterdir():
        match = _SEGMENT_FILE.match(child.name)
        if match is None:
            continue
        if match[2] == LOG_SUFFIX:
            bases.add(int(match[1]))
        else:
            index_only.append(child)
    changed = False
    for path in index_only:
        if int(path.name[:20]) not in bases:
            # An index whose log is gone (a deletion cut short): nothing to index.
            log.warning("%s: removing %s, which has no .log", directory, path.name)
            path.unlink()
            changed = True
    ordered = sorted(bases)
    if not ordered:
        return LoadedLog(
            [Segment.create(directory, log_start_offset)], log_start_offset, None, True
        )
    segments: list[Segment] = []
    try:
        for i, base in enumerate(ordered):
            end = ordered[i + 1] if i + 1 < len(ordered) else None
            segments.append(Segment.open_existing(directory, base, end))
    except BaseException:
        for segment in segments:
            segment.close()
        raise
    interval = config.index_interval_bytes
    recovery_point = max(recovery_point, segments[0].base_offset)
    first_recovered = bisect.bisect_right(ordered, recovery_point) - 1
    if clean_shutdown:
        why = _load_trusted_tail(segments[-1], interval)
        if why is None:
            first_recovered = len(segments)  # nothing to re-read
            recovery_point = segments[-1].next_offset
        else:
            log.warning(
                "%s: clean shutdown, but the active segment cannot be trusted (%s): recovering",
                segments[-1].log_path,
                why,
            )
    for segment in segments[:first_recovered]:
        _check_flushed_segment(segment, interval)
    error: KafkaStorageError | None = None
    dropped = 0
    # Only a compacted log (or one the cleaner worked on: ``gaps``) has gaps where a crash may
    # have torn it (the module's rules).
    dense = not (config.compact if gaps is None else gaps)
    for i in range(first_recovered, len(segments)):
        segment = segments[i]
        previous_end = segments[i - 1].next_offset if i > first_recovered else None
        if previous_end is not None and (
            segment.base_offset < previous_end or (dense and segment.base_offset != previous_end)
        ):
            log.warning(
                "%s: expected a segment at offset %d%s, found %s: dropping it and later ones",
                directory,
                previous_end,
                "" if dense else " or later",
                segment.log_path.name,
            )
            dropped += drop_segments(segments, i)
            changed = True
            break
        if segment.index_damage is not None:
            log.warning("%s: rebuilding the indexes: %s", segment.log_path, segment.index_damage)
        result = recover_segment(segment, recovery_point, interval, gaps=not dense)
        segment.dirty = True  # read back from the page cache; the next flush makes it durable
        if result.error is None:
            continue
        if result.below_recovery_point:
            error = KafkaStorageError(
                f"corrupt batch below the recovery point {recovery_point}: {result.error}",
                str(segment.log_path),
                result.error.position,
            )
            log.error("%s: log offline: %s", directory, error)
            break
        cut = segment.cut(result.valid_bytes)
        log.warning(
            "%s: recovery cut the log at position %d (offset %d), dropping %d bytes: %s",
            segment.log_path,
            result.valid_bytes,
            segment.next_offset,
            cut,
            result.error,
        )
        changed = changed or len(segments) > i + 1
        dropped += cut + drop_segments(segments, i + 1)
        break
    if dropped:
        log.warning("%s: recovery dropped %d bytes in all", directory, dropped)
    for segment, following in zip(segments, segments[1:], strict=False):
        segment.seal()
        # A sealed segment covers the offsets up to the next one's base: a gap at its end
        # (or all of it, left empty by the cleaner) is part of it.
        segment.next_offset = following.base_offset
    active = segments[-1]
    active.activate()
    if active.index_files_exist and error is None:
        # Preallocated again now, as Kafka does at load; a segment still without index files
        # (empty, its first flush never came) gets them, preallocated, from its first flush.
        active.write_indexes()
    log_end = segments[-1].next_offset
    if recovery_point > log_end and error is None:
        log.warning(
            "%s: recovery point %d is past the log end offset %d; using the log end",
            directory,
            recovery_point,
            log_end,
        )
        recovery_point = log_end
    return LoadedLog(segments, recovery_point, error, changed)


def _load_trusted_tail(segment: Segment, index_interval_bytes: int) -> str | None:
    """After a clean shutdown: the active segment's next offset, largest timestamp, first
    batch timestamp and bytes since its last index entry, from its indexes and the batch
    headers after its offset index's last entry (Kafka's ``readNextOffset``), nothing else
    read. Returns why the segment cannot be trusted (damaged indexes, a header that does not
    parse or does not follow, entries missing where the append rule makes them), or None."""
    if segment.index_damage is not None:
        return segment.index_damage
    end = segment.size_bytes
    window = FileWindow(segment.fd, end)
    last = segment.offset_index.last_entry()
    start = position = last[1] if last is not None else 0
    max_ts, offset_of_max = segment.time_index.last_entry() or (NO_TIMESTAMP, -1)
    next_offset = segment.base_offset
    first_ts: int | None = None
    since = 0
    try:
        while position < end:
            header = header_at(window, position, end)
            if last is not None and position == start and header.last_offset != last[0]:
                return f".index says the batch at {position} ends at offset {last[0]}"
            if header.base_offset < next_offset:
                return f"the batch at {position} starts at offset {header.base_offset}"
            if since > index_interval_bytes:
                return "the .index lacks entries for the end of the log"
            if position == 0:
                first_ts = header.max_timestamp
            if header.max_timestamp > max_ts:
                max_ts, offset_of_max = header.max_timestamp, header.last_offset
            since += header.size
            position += header.size
            next_offset = header.next_offset
        if first_ts is None and end > 0:
            first_ts = header_at(window, 0, end).max_timestamp
    except CorruptRecordError as e:
        return f"a batch header does not parse: {e}"
    except OSError as e:
        raise KafkaStorageError(f"cannot read the log: {e}", str(segment.log_path)) from e
    segment.next_offset = next_offset
    segment.max_timestamp = max_ts
    segment.offset_of_max_timestamp = offset_of_max
    segment.first_batch_timestamp = first_ts
    segment.bytes_since_index_entry = since
    return None


def _check_flushed_segment(segment: Segment, index_interval_bytes: int) -> None:
    """A segment wholly below the recovery point: trusted, but its indexes are rebuilt when
    damaged (or when its time index is empty, to learn its largest timestamp). An empty one
    (the cleaner left nothing in it) has nothing to index."""
    if segment.size_bytes == 0 and segment.index_damage is None:
        return
    if segment.index_damage is None:
        if segment.time_index.last_entry() is None:
            segment.index_damage = "the .timeindex is empty (the largest timestamp is unknown)"
        elif not _index_covers_tail(segment, index_interval_bytes):
            segment.index_damage = "the .index lacks entries for the end of the log"
        else:
            return
    if segment.index_damage is not None:
        log.warning("%s: rebuilding the indexes: %s", segment.log_path, segment.index_damage)
    result = rebuild_indexes(segment, index_interval_bytes)
    if result.error is not None:
        log.warning(
            "%s: corrupt batch below the recovery point at position %s: %s "
            "(kept; a read that reaches it takes the log offline)",
            segment.log_path,
            result.error.position,
            result.error,
        )


def _index_covers_tail(segment: Segment, index_interval_bytes: int) -> bool:
    """Whether the offset index has every entry the append rule would have made after its
    last one: walking from that entry's batch, no batch comes more than the interval after
    it. Reads at most one interval of headers (an index cut short is otherwise valid)."""
    last = segment.offset_index.last_entry()
    position = last[1] if last is not None else 0
    window = FileWindow(segment.fd, segment.size_bytes)
    since = 0
    try:
        while position < segment.size_bytes:
            if since > index_interval_bytes:
                return False
            header = header_at(window, position, segment.size_bytes)
            since += header.size
            position += header.size
    except (CorruptRecordError, OSError):
        return True  # not the index's fault; a read that reaches it will report it
    return True


def drop_segments(segments: list[Segment], first: int) -> int:
    """Deletes ``segments[first:]`` (files too) and returns their total size."""
    dropped = 0
    for segment in segments[first:]:
        log.warning(
            "%s: dropping the whole segment (%d bytes)", segment.log_path, segment.size_bytes
        )
        dropped += segment.size_bytes
        segment.close()
        segment.delete_files()
    del segments[first:]
    return dropped
