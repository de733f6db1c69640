"""The log cleaner's work on one log: Kafka's ``Cleaner.doClean``, without threads or locks.

One clean of a compacted log (the driver picks the log with :func:`storage.clean_plan.filthiest`
and calls :func:`clean_log` from a background thread, never on the event loop):

1. **Map** the dirty range [first dirty, first uncleanable) segment by segment into an
   :class:`~storage.clean_map.OffsetMap` (key -> latest offset), stopping early when its memory
   budget is full. The clean then covers offsets up to the map's latest offset; the new
   cleaner checkpoint is that offset + 1.
2. **Group** every segment from the log's start up to that checkpoint (the clean part is
   cleaned again: its older duplicates of newly written keys go now) into runs that each make
   one new segment (:func:`storage.clean_plan.group_segments`).
3. For each group, oldest first: **filter** its batches (:mod:`storage.clean_filter`) into a new
   segment written as ``<base>.log.cleaned`` with its ``.index.cleaned`` and
   ``.timeindex.cleaned`` (each fsynced), then hand it to the caller's ``commit`` callback,
   which takes the log's lock, checks the group is still what it was, calls
   :func:`storage.clean_swap.swap_in` and replaces the in-memory segments.

The old segments are read through file descriptors of our own (``os.open`` of each ``.log``):
the log may retire a segment meanwhile (retention of a ``compact,delete`` log); a segment
already gone (``FileNotFoundError``) gives up the clean with :class:`CleanAbortedError`, and
nothing has changed. Reading is throttled (:class:`Throttle`, Kafka's
``log.cleaner.io.max.bytes.per.second``), on bytes read and written as Kafka counts them.

Index entries of a cleaned segment follow the append rule of :mod:`storage.index` (an entry
when more than ``index.interval.bytes`` were written since the last, keyed by the batch's
last offset), as our recovery expects of every segment. Kafka's cleaner instead indexes once
per I/O buffer it writes, so its index files depend on its buffer size; both are valid
sparse indexes of the same ``.log`` bytes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from storage.batch import BatchHeader, read_header
from storage.clean_filter import filter_batch
from storage.clean_map import OffsetMap, map_batch
from storage.clean_plan import LogToClean, SegmentSummary, group_segments, segments_in
from storage.clean_stats import CleanerStats, Throttle
from storage.clean_swap import cleaned_files, discard_cleaned
from storage.durable import Fsync
from storage.errors import CorruptRecordError
from storage.index import OffsetIndex, TimeIndex
from storage.log_config import LogConfig
from storage.scan import FileWindow, header_at
from storage.segment import Segment

# Throttle and CleanerStats live in storage.clean_stats; they are part of this module's API.
__all__ = [
    "CLEANER_CHECKPOINT_FILE",
    "CleanAbortedError",
    "CleanResult",
    "CleanedSegment",
    "CleanerStats",
    "Throttle",
    "UncleanableLogError",
    "build_offset_map",
    "clean_log",
    "clean_segment_group",
    "summarize",
]

log = logging.getLogger(__name__)

# Kafka's name for the file, in each log directory, that keeps every compacted partition's
# first dirty offset; its format is the recovery point checkpoint's
# (storage.checkpoints.OffsetCheckpointFile reads and writes it).
CLEANER_CHECKPOINT_FILE = "cleaner-offset-checkpoint"

# The old segments are read in windows of this size when the caller names none (the
# benchmark, tests). A node's cleaner thread reads through half its share of
# log.cleaner.io.buffer.size, as Kafka sizes its read buffer (server/log_cleaner.py; 256 KiB
# with Kafka's defaults). Like Kafka's read buffer, a window holds the whole batches that fit;
# a larger batch is read whole (Kafka grows its buffer for it). The size hardly matters to the
# speed: 64 KiB, 256 KiB and 1 MiB windows cleaned the same 31 MB at one MB/s, within noise.
CLEANER_READ_BYTES = 1024 * 1024
# The cleaned segment is written in pieces of at least this size: few pwrites, bounded memory.
CLEANER_WRITE_BYTES = 1024 * 1024

_NO_TIMESTAMP = -1


class CleanAbortedError(Exception):
    """The clean was given up (a segment went away, the log is being deleted or the node is
    stopping); every ``.cleaned`` file of it is gone and no segment changed."""


class UncleanableLogError(Exception):
    """A segment the cleaner cannot read (a corrupt batch). Kafka marks such a
    partition uncleanable and goes on with the other logs; the caller should do the same."""


@dataclass(frozen=True, slots=True)
class CleanedSegment:
    """A new segment written as ``.cleaned`` files, for the caller's ``commit``.

    ``replaces``: the old segments (oldest first; the new one takes the first one's name);
    ``next_offset``: the offset after its last batch (its base if it holds none), which may be
    below ``replaces[-1].next_offset`` when the clean removed the group's last batches.
    """

    base_offset: int
    replaces: tuple[SegmentSummary, ...]
    size_bytes: int
    next_offset: int
    max_timestamp: int
    first_batch_timestamp: int | None

    @property
    def old_bases(self) -> list[int]:
        return [s.base_offset for s in self.replaces]


@dataclass(frozen=True, slots=True)
class CleanResult:
    """A finished clean: the new cleaner checkpoint (the first offset not cleaned), and stats."""

    checkpoint: int
    first_dirty: int
    stats: CleanerStats
    segments: tuple[CleanedSegment, ...] = field(default=())


def summarize(segments: Sequence[Segment]) -> list[SegmentSummary]:
    """What the cleaner needs of a log's segments (oldest first, the active one last), read
    from the log's in-memory :class:`~storage.segment.Segment` objects under the log's lock."""
    return [
        SegmentSummary(
            base_offset=s.base_offset,
            next_offset=s.next_offset,
            size_bytes=s.size_bytes,
            max_timestamp=s.max_timestamp,
            first_batch_timestamp=s.first_batch_timestamp,
            index_entries=len(s.offset_index),
            time_index_entries=len(s.time_index),
            path=s.log_path,
        )
        for s in segments
    ]


def _open_segment(path: Path | None) -> int:
    assert path is not None, "the cleaner needs each segment's path"
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise CleanAbortedError(f"{path.name} went away (retention or truncation)") from None


def _batches(
    fd: int, size: int, path: Path | None, read_window_bytes: int
) -> Iterator[tuple[bytes, int, BatchHeader, int]]:
    """(buffer, offset in it, header) of each batch of the file, read ``read_window_bytes`` at
    a time (a larger batch whole); headers checked, not CRCs."""
    window = FileWindow(fd, size, read_window_bytes)
    pos = 0
    while pos < size:
        try:
            header = header_at(window, pos, size)
            buf, off = window.get(pos, header.size)
        except CorruptRecordError as e:
            raise UncleanableLogError(f"{path}: position {e.position}: {e}") from e
        yield buf, off, header, pos
        pos += header.size


class _CleanedWriter:
    """Writes one cleaned segment's ``.cleaned`` files: the batches and their indexes."""

    def __init__(
        self, directory: Path, base_offset: int, index_interval_bytes: int, fsync: Fsync
    ) -> None:
        self.log_path, self.index_path, self.time_index_path = cleaned_files(directory, base_offset)
        self.base_offset = base_offset
        self._interval = index_interval_bytes
        self._fsync = fsync
        self.fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.offset_index = OffsetIndex(base_offset)
        self.time_index = TimeIndex(base_offset)
        self.size_bytes = 0
        self.next_offset = base_offset
        self.max_timestamp = _NO_TIMESTAMP
        self._offset_of_max = -1
        self.first_batch_timestamp: int | None = None
        self._since_entry = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._written = 0

    def append(self, batch: bytes) -> None:
        header = read_header(batch)
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self._offset_of_max = header.last_offset
        if self._since_entry > self._interval:
            self.offset_index.append(header.last_offset, self.size_bytes)
            self.time_index.maybe_append(self.max_timestamp, self._offset_of_max)
            self._since_entry = 0
        self._since_entry += header.size
        if self.first_batch_timestamp is None:
            self.first_batch_timestamp = header.max_timestamp
        self.size_bytes += header.size
        self.next_offset = header.next_offset
        self._pending.append(batch)
        self._pending_bytes += len(batch)
        if self._pending_bytes >= CLEANER_WRITE_BYTES:
            self._write_pending()

    def _write_pending(self) -> None:
        data = memoryview(b"".join(self._pending))
        done = 0
        while done < len(data):
            done += os.pwrite(self.fd, data[done:], self._written + done)
        self._written += len(data)
        self._pending.clear()
        self._pending_bytes = 0

    def finish(self, mtime: float | None) -> None:
        """Writes what is left, seals the time index (Kafka's ``onBecomeInactiveSegment``),
        writes both index files and fsyncs the three files."""
        self._write_pending()
        self.time_index.maybe_append(self.max_timestamp, self._offset_of_max)
        self._fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        for path, data in (
            (self.index_path, self.offset_index.to_bytes()),
            (self.time_index_path, self.time_index.to_bytes()),
        ):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                done = 0
                while done < len(view):
                    done += os.write(fd, view[done:])
                self._fsync(fd)
            finally:
                os.close(fd)
        if mtime is not None:
            # Kafka keeps the last old segment's modification time on the cleaned one.
            os.utime(self.log_path, (mtime, mtime))

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def build_offset_map(
    segments: Sequence[SegmentSummary],
    first_dirty: int,
    first_uncleanable: int,
    offset_map: OffsetMap,
    stats: CleanerStats,
    *,
    throttle: Throttle | None = None,
    check_abort: Callable[[], None] | None = None,
    read_window_bytes: int = CLEANER_READ_BYTES,
) -> None:
    """Kafka's ``buildOffsetMap``: maps the segments holding [``first_dirty``,
    ``first_uncleanable``) (``segments``: the log's, oldest first) into ``offset_map`` (cleared
    first), oldest first, until it is full (storage.clean_map's rules)."""
    offset_map.clear()
    dirty = segments_in(segments, first_dirty, first_uncleanable)
    for i, segment in enumerate(dirty):
        next_start = dirty[i + 1].base_offset if i + 1 < len(dirty) else first_uncleanable
        fd = _open_segment(segment.path)
        try:
            batches = _batches(fd, segment.size_bytes, segment.path, read_window_bytes)
            for buf, off, header, _pos in batches:
                if check_abort is not None:
                    check_abort()
                if header.last_offset < first_dirty:
                    continue
                if throttle is not None:
                    throttle.maybe_throttle(header.size)
                try:
                    _header, full = map_batch(offset_map, buf, off, first_dirty)
                except CorruptRecordError as e:
                    raise UncleanableLogError(f"{segment.path}: {e}") from e
                if full:
                    log.debug(
                        "offset map full at offset %d of %s", header.base_offset, segment.path
                    )
                    return
                stats.map_bytes_read += header.size
                stats.map_records_read += header.record_count
        finally:
            os.close(fd)
        # Offsets the segment does not hold up to the next one (gaps) count as mapped.
        offset_map.update_latest_offset(next_start - 1)


def clean_segment_group(
    directory: Path,
    group: Sequence[SegmentSummary],
    *,
    offset_map: OffsetMap,
    config: LogConfig,
    last_data_offsets: Mapping[int, int],
    upper_bound_offset: int,
    now_ms: int,
    stats: CleanerStats,
    fsync: Fsync,
    throttle: Throttle | None = None,
    check_abort: Callable[[], None] | None = None,
    read_window_bytes: int = CLEANER_READ_BYTES,
) -> CleanedSegment:
    """Kafka's ``cleanSegments`` without the swap: filters the batches of ``group`` into a new
    segment's fsynced ``.cleaned`` files (named by the group's first base offset) and
    describes it. On any failure the ``.cleaned`` files are removed."""
    base = group[0].base_offset
    writer = _CleanedWriter(directory, base, config.index_interval_bytes, fsync)
    mtime: float | None = None
    try:
        for segment in group:
            fd = _open_segment(segment.path)
            try:
                mtime = os.fstat(fd).st_mtime
                batches = _batches(fd, segment.size_bytes, segment.path, read_window_bytes)
                for buf, off, header, _pos in batches:
                    if check_abort is not None:
                        check_abort()
                    if throttle is not None:
                        throttle.maybe_throttle(header.size)
                    try:
                        _h, result = filter_batch(
                            buf,
                            off,
                            offset_map=offset_map,
                            now_ms=now_ms,
                            delete_retention_ms=config.delete_retention_ms,
                            last_data_offsets=last_data_offsets,
                            upper_bound_offset=upper_bound_offset,
                        )
                    except CorruptRecordError as e:
                        raise UncleanableLogError(f"{segment.path}: {e}") from e
                    stats.bytes_read += header.size
                    stats.batches_read += 1
                    stats.records_read += result.records_read
                    stats.records_kept += result.records_kept
                    stats.keyless_dropped += result.keyless_dropped
                    if result.data:
                        writer.append(result.data)
                        stats.bytes_written += len(result.data)
                        stats.batches_written += 1
                        if throttle is not None:
                            throttle.maybe_throttle(len(result.data))
            finally:
                os.close(fd)
        writer.finish(mtime)
    except BaseException:
        writer.close()
        discard_cleaned(directory, base)
        raise
    return CleanedSegment(
        base_offset=base,
        replaces=tuple(group),
        size_bytes=writer.size_bytes,
        next_offset=writer.next_offset,
        max_timestamp=writer.max_timestamp,
        first_batch_timestamp=writer.first_batch_timestamp,
    )


def clean_log(
    directory: Path,
    segments: Sequence[SegmentSummary],
    target: LogToClean,
    *,
    config: LogConfig,
    offset_map: OffsetMap,
    last_data_offsets: Mapping[int, int],
    now_ms: int,
    commit: Callable[[CleanedSegment], None],
    throttle: Throttle | None = None,
    fsync: Fsync = os.fsync,
    clock: Callable[[], float] = time.monotonic,
    check_abort: Callable[[], None] | None = None,
    read_window_bytes: int = CLEANER_READ_BYTES,
) -> CleanResult:
    """One clean of the log in ``directory`` (Kafka's ``Cleaner.doClean``; module docstring).

    ``segments``: every segment of the log, oldest first, the active one last, each with its
    path; ``target``: the range to clean (:func:`storage.clean_plan.log_to_clean`);
    ``last_data_offsets``: the last data offset of each active idempotent producer (its last
    batch survives, even emptied); ``commit``: called once per cleaned segment, oldest first,
    with its ``.cleaned`` files fsynced; it swaps them in (:func:`storage.clean_swap.swap_in`
    under the log's lock, after checking the replaced segments are still the log's) or raises
    :class:`CleanAbortedError`. ``check_abort`` is called before each batch and may raise
    :class:`CleanAbortedError` to stop. ``read_window_bytes``: how much of an old segment is
    read at a time (Kafka's read buffer, half a thread's share of log.cleaner.io.buffer.size;
    a batch larger than it is read whole).

    Returns the new cleaner checkpoint (write it only once this returns) and the stats. Raises
    :class:`CleanAbortedError` (nothing more changes: the groups committed so far stay, each a
    valid clean) or :class:`UncleanableLogError`; an ``OSError`` from ``commit`` leaves the
    directory to :func:`storage.clean_swap.recover_swaps` at the next open.
    """
    assert target.first_dirty < target.first_uncleanable, "nothing to clean"
    stats = CleanerStats(start_s=clock())
    sealed = [s for s in segments[:-1] if s.base_offset < target.first_uncleanable]
    build_offset_map(
        sealed,
        target.first_dirty,
        target.first_uncleanable,
        offset_map,
        stats,
        throttle=throttle,
        check_abort=check_abort,
        read_window_bytes=read_window_bytes,
    )
    end_offset = offset_map.latest_offset + 1
    stats.map_done_s = clock()
    to_clean = [s for s in sealed if s.base_offset < end_offset]
    groups = group_segments(
        to_clean, segment_bytes=config.segment_bytes, first_uncleanable=target.first_uncleanable
    )
    done: list[CleanedSegment] = []
    for group in groups:
        cleaned = clean_segment_group(
            directory,
            group,
            offset_map=offset_map,
            config=config,
            last_data_offsets=last_data_offsets,
            upper_bound_offset=target.first_uncleanable,
            now_ms=now_ms,
            stats=stats,
            fsync=fsync,
            throttle=throttle,
            check_abort=check_abort,
            read_window_bytes=read_window_bytes,
        )
        try:
            commit(cleaned)
        except BaseException:
            with contextlib.suppress(OSError):
                discard_cleaned(directory, cleaned.base_offset)
            raise
        done.append(cleaned)
    stats.buffer_utilization = offset_map.utilization
    stats.end_s = clock()
    return CleanResult(end_offset, target.first_dirty, stats, tuple(done))
