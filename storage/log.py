"""One partition's log: a directory of segments (Kafka's ``UnifiedLog``/``LocalLog``).

Directory layout (Kafka's)::

    <topic>-<partition>/
        00000000000000000000.log         segments, named by base offset (see storage.segment)
        00000000000000000000.index
        00000000000000000000.timeindex
        00000000000000004242.log         ... the last segment is the active one
        leader-epoch-checkpoint          (storage.epoch_cache / storage.checkpoints)

Theory of operation:

- Appends go to the active segment; a batch that would overflow ``segment.bytes``, or whose
  timestamp is ``segment.ms`` past the segment's first batch, rolls a new segment first (the
  rule is per batch, so a follower appending the leader's bytes rolls at the same batches).
- Offsets strictly increase but may have gaps (a compacted log: Kafka's rules, see
  :mod:`storage.segment`): a read at an offset in a gap returns the next batch, going on to the
  next segment when a segment has nothing at or after it; a replica append may start above the
  log end offset (the leader's batches there were cleaned away), never below it.
- ``flush()`` is the group commit: one fsync per file written since the last flush (segment
  logs, the indexes of sealed segments, directories that got or lost names), after which the
  recovery point moves to the log end offset taken BEFORE the fsyncs. Flush may run in a worker
  thread while another thread appends: the lock guards the bookkeeping, never an fsync.
- ``open()`` recovers: segments wholly below the recovery point are trusted (their indexes are
  only sanity-checked); from the segment holding the recovery point on, batches are re-read
  and checked, and the log is cut at the first bad byte (WARNING with what was dropped).
  Corruption below the recovery point is never cut: reaching it takes the log offline. After
  a clean shutdown (the caller found Kafka's ``.kafka_cleanshutdown``) nothing is re-read.
- ``close()`` at a clean shutdown seals the active segment's indexes as a roll does (a final
  time-index entry, the files trimmed to their entries and fsynced: Kafka's
  ``LogSegment.close``); the next open makes them active (preallocated) again.
- Any read or write failure (corruption, I/O error) sets ``offline`` to a
  :class:`KafkaStorageError` naming file and position; every later call raises it.

Thread model: any thread may call any method (one lock serialises them); the lock is held
during appends and reads (page-cache work), never during an fsync.
"""

from __future__ import annotations

import bisect
import logging
import shutil
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from storage.batch import BatchHeader, NewRecord, Record, build_batch, iter_batches
from storage.batch import read_header as read_batch_header
from storage.batch import stamp as stamp_batch
from storage.clean_plan import LogToClean, SegmentSummary, log_to_clean
from storage.clean_swap import recover_swaps, swap_in
from storage.cleaner import CleanAbortedError, CleanedSegment, summarize
from storage.durable import fsync_path, timed_fsync
from storage.epoch_cache import LeaderEpochCache
from storage.errors import (
    CorruptRecordError,
    KafkaStorageError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    UnexpectedAppendOffsetError,
)
from storage.limits import BATCH_HEADERS_READ_BYTES, READ_BYTES_MAX
from storage.log_config import LogConfig
from storage.log_policy import (
    check_replica_batches,
    retained_segment_count,
    should_roll,
)
from storage.record_reads import LogRead, RecordsRead, records_in
from storage.recovery import load_segments
from storage.segment import Segment

log = logging.getLogger(__name__)

EPOCH_CHECKPOINT_FILE = "leader-epoch-checkpoint"

Fsync = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class AppendInfo:
    """Where an append landed: its offsets, largest timestamp and size in the log."""

    first_offset: int
    last_offset: int
    max_timestamp: int
    size_bytes: int


class Log:
    """A partition's log on disk. Make one with :meth:`open`."""

    def __init__(
        self,
        directory: Path,
        config: LogConfig,
        segments: list[Segment],
        epoch_cache: LeaderEpochCache,
        *,
        recovery_point: int,
        log_start_offset: int,
        fsync: Fsync,
    ) -> None:
        self.directory = directory
        self._config = config
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self.epoch_cache = epoch_cache
        self._leo = segments[-1].next_offset
        self._log_start = log_start_offset
        self._recovery_point = recovery_point
        self._high_watermark = log_start_offset
        self._offline: KafkaStorageError | None = None
        self._closed = False
        self._fsync = fsync
        self._lock = threading.Lock()
        # Directories whose entries changed since the last flush (new or deleted files).
        self._dirty_dirs: set[Path] = set()
        # Flushes in progress: segments retired meanwhile keep their fd open until they end
        # (a flush may be fsyncing it), and truncations meanwhile limit what they may claim.
        self._flushing = 0
        self._deferred_close: list[Segment] = []
        self._truncation_count = 0
        self._truncations: list[tuple[int, int]] = []
        # Segments deleted since the last flush that fsynced the directory: (deletion number,
        # base offset). A power cut may bring them back, so until then the oldest segment a
        # restart could find is the oldest of these (first_segment_base_offset).
        self._deletion_count = 0
        self._unsynced_deletions: list[tuple[int, int]] = []
        # Called (with the log's lock held: it must be quick and take no lock of the log's)
        # when the recovery point, the log start offset or the high watermark moved: the
        # owner's checkpoints then rewrite only what changed, not every partition's offsets.
        self.on_offsets_changed: Callable[[], None] | None = None

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        *,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        fsync: Fsync = timed_fsync,
        cleaned: bool = False,
        clean_shutdown: bool = False,
    ) -> Log:
        """Opens (creating it if missing) the log in ``directory`` and recovers it.

        ``cleaned``: the log cleaner has worked on this log (it has a cleaner checkpoint), so
        its gaps are compaction's even if its topic compacts no more: recovery keeps them.
        ``clean_shutdown``: the log was closed by :meth:`close` and nothing wrote to it since
        (Kafka's clean shutdown file): nothing is re-read, the recovery point is the log end.

        Everything at or after ``recovery_point`` is re-read and checked; a torn or corrupt
        tail is cut off (logged at WARNING). Corruption below the recovery point found while
        opening returns a log that is already offline. ``fsync`` is called with each fd a
        flush makes durable (a hook for tests).
        """
        directory = Path(directory)
        dirty_dirs: set[Path] = set()
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            dirty_dirs.update((directory, directory.parent))
        offline: KafkaStorageError | None = None
        try:
            epoch_cache = LeaderEpochCache(directory / EPOCH_CHECKPOINT_FILE)
        except KafkaStorageError as e:
            log.error("%s: leader epoch checkpoint unreadable, log offline: %s", directory, e)
            offline = e
            epoch_cache = LeaderEpochCache(None)
        # A clean interrupted mid-swap is settled first: the old segments or the new one.
        swapped = recover_swaps(directory, fsync)
        if swapped:
            log.warning("%s: %s", directory, swapped.describe())
        loaded = load_segments(
            directory,
            config,
            recovery_point,
            log_start_offset,
            gaps=config.compact or cleaned,
            clean_shutdown=clean_shutdown,
        )
        segments = loaded.segments
        offline = offline or loaded.offline
        if loaded.directory_changed:
            dirty_dirs.add(directory)
        log_end = segments[-1].next_offset
        start = min(max(log_start_offset, segments[0].base_offset), log_end)
        if offline is None:
            epoch_cache.truncate_from_end(log_end)
            epoch_cache.truncate_from_start(start)
        result = cls(
            directory,
            config,
            segments,
            epoch_cache,
            recovery_point=min(max(loaded.recovery_point, start), log_end),
            log_start_offset=start,
            fsync=fsync,
        )
        result._dirty_dirs = dirty_dirs
        result._offline = offline
        return result

    @classmethod
    def create(cls, directory: Path, config: LogConfig, *, fsync: Fsync = timed_fsync) -> Log:
        """A new, empty log in ``directory``, which must not exist (FileExistsError if it
        does; :meth:`open` is then the way): the directory is created, nothing is read (there
        is nothing to recover), and the first segment's ``.log`` is created by the first
        append (a mkdir or a file creation costs a quarter of a millisecond of kernel CPU on
        the machines we measure on, and a partition may never be written). The same log
        :meth:`open` returns for a missing directory; the first :meth:`flush` after an append
        makes the new names durable, as it does after :meth:`open`.
        """
        directory = Path(directory)
        directory.mkdir()
        segment = Segment.create_pending(directory, 0)
        try:
            epoch_cache = LeaderEpochCache(directory / EPOCH_CHECKPOINT_FILE)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        result = cls(
            directory,
            config,
            [segment],
            epoch_cache,
            recovery_point=0,
            log_start_offset=0,
            fsync=fsync,
        )
        result._dirty_dirs = {directory, directory.parent}
        return result

    # -- state -----------------------------------------------------------------------------

    @property
    def parent_unsynced(self) -> bool:
        """Whether this log's directory was created and its name not yet made durable (the
        parent directory needs an fsync, which the next :meth:`flush` does unless told it
        was done)."""
        with self._lock:
            return self.directory.parent in self._dirty_dirs

    @property
    def config(self) -> LogConfig:
        return self._config

    def update_config(self, config: LogConfig) -> None:
        """Uses ``config`` from now on (rolls and retention; nothing already written moves)."""
        with self._lock:
            self._config = config

    @property
    def log_start_offset(self) -> int:
        return self._log_start

    @property
    def log_end_offset(self) -> int:
        """The offset the next appended record gets."""
        return self._leo

    @property
    def recovery_point(self) -> int:
        """Everything below this offset is on disk (fsynced)."""
        return self._recovery_point

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    def update_high_watermark(self, offset: int) -> int:
        """Sets the high watermark, clamped to [log start offset, log end offset]; returns it."""
        with self._lock:
            hw = min(max(offset, self._log_start), self._leo)
            if hw != self._high_watermark:
                self._high_watermark = hw
                self._offsets_changed()
            return hw

    def _offsets_changed(self) -> None:
        if self.on_offsets_changed is not None:
            self.on_offsets_changed()

    @property
    def offline(self) -> KafkaStorageError | None:
        return self._offline

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(s.size_bytes for s in self._segments)

    @property
    def active_segment_base_offset(self) -> int:
        """The base offset of the segment appends go to (it changes when the log rolls)."""
        return self._bases[-1]

    @property
    def first_segment_base_offset(self) -> int:
        """The base offset of the oldest segment a restart could find (the log start offset is
        at or above it): a deleted one counts until a flush has fsynced the directory, as a
        power cut before then brings it back."""
        with self._lock:
            return min([self._bases[0], *(base for _, base in self._unsynced_deletions)])

    @property
    def segments(self) -> list[Segment]:
        """The segments, oldest first (a copy; for tools and tests)."""
        with self._lock:
            return list(self._segments)

    @property
    def fsync(self) -> Fsync:
        """The fsync this log makes its files durable with (the cleaner's files too)."""
        return self._fsync

    def _check_usable(self) -> None:
        if self._offline is not None:
            raise self._offline
        if self._closed:
            self._offline = KafkaStorageError("the log is closed", str(self.directory))
            raise self._offline

    def _fail(self, error: BaseException, path: Path | None = None) -> KafkaStorageError:
        """Takes the log offline because of ``error``; returns the error to raise."""
        if isinstance(error, KafkaStorageError):
            failure = error
        else:
            where = str(path) if path is not None else str(self.directory)
            failure = KafkaStorageError(f"I/O error: {error}", where)
        if self._offline is None:
            self._offline = failure
            log.error("%s is offline: %s", self.directory, failure)
        return failure

    # -- appending -------------------------------------------------------------------------

    def append_as_leader(
        self,
        records: Sequence[NewRecord],
        leader_epoch: int,
        *,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
    ) -> AppendInfo:
        """Appends ``records`` as one batch at the log end, stamped with ``leader_epoch``.

        Raises ``ValueError`` for no records, :class:`RecordTooLargeError` when the batch is
        larger than ``max.message.bytes`` (nothing written), :class:`KafkaStorageError` when
        the log is or goes offline.
        """
        if not records:
            raise ValueError("an append needs at least one record")
        # Built outside the lock (it is the slow part) at the offset we expect; restamped
        # under the lock if another append got there first.
        predicted = self._leo
        batch: bytes | bytearray = build_batch(
            records,
            base_offset=predicted,
            partition_leader_epoch=leader_epoch,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=base_sequence,
            # The topic's compression.type: "producer" (this leader is the producer) and
            # "uncompressed" store the records uncompressed.
            compression=self._config.codec or 0,
            level=self._config.level,
        )
        limit = self._config.max_message_bytes
        if len(batch) > limit:
            raise RecordTooLargeError(len(batch), limit)
        with self._lock:
            self._check_usable()
            if self._leo != predicted:
                batch = bytearray(batch)
                stamp_batch(batch, self._leo, leader_epoch)
            header = read_batch_header(batch)
            self._append_locked(batch, [header])
        return AppendInfo(header.base_offset, header.last_offset, header.max_timestamp, len(batch))

    def append_batches(self, data: bytes) -> AppendInfo:
        """Appends whole pre-built batches with the offsets they carry (the replica path).

        All of ``data`` is checked before any byte is written: every batch's header and CRC,
        that the first starts at or above the log end offset and that each next one starts
        above the previous one's last offset (a compacted leader's batches have gaps; Kafka
        refuses only offsets below the log end). The log end offset becomes the last batch's
        last offset + 1. ``max.message.bytes`` is not applied (Kafka: the leader accepted the
        batch). Raises :class:`CorruptRecordError` or :class:`UnexpectedAppendOffsetError`
        (nothing written) or :class:`KafkaStorageError`.
        """
        headers = check_replica_batches(data, self._leo)
        with self._lock:
            self._check_usable()
            if headers[0].base_offset < self._leo:
                raise UnexpectedAppendOffsetError(
                    "the batches start below the log end offset",
                    self._leo,
                    headers[0].base_offset,
                )
            self._append_locked(data, headers)
        return AppendInfo(
            headers[0].base_offset,
            headers[-1].last_offset,
            max(h.max_timestamp for h in headers),
            len(data),
        )

    def _append_locked(self, data: bytes | bytearray, headers: list[BatchHeader]) -> None:
        config = self._config
        view = memoryview(data)
        segment = self._segments[-1]
        if segment.file_pending:
            self._dirty_dirs.add(self.directory)  # the append creates the .log: a new name
        size = segment.size_bytes
        first_ts = segment.first_batch_timestamp
        group: list[BatchHeader] = []
        group_start = cursor = 0
        try:
            for header in headers:
                if should_roll(
                    config,
                    segment_base_offset=segment.base_offset,
                    segment_size_bytes=size,
                    segment_first_timestamp=first_ts,
                    batch_size_bytes=header.size,
                    batch_max_timestamp=header.max_timestamp,
                    batch_last_offset=header.last_offset,
                ):
                    if group:
                        segment.append(view[group_start:cursor], group, config.index_interval_bytes)
                        self._leo = group[-1].next_offset
                    segment = self._roll_locked(header.base_offset)
                    size, first_ts, group, group_start = 0, None, [], cursor
                group.append(header)
                size += header.size
                cursor += header.size
                if first_ts is None:
                    first_ts = header.max_timestamp
            segment.append(view[group_start:cursor], group, config.index_interval_bytes)
        except OSError as e:
            raise self._fail(e, segment.log_path) from e
        finally:
            view.release()
        self._leo = headers[-1].next_offset
        cache = self.epoch_cache
        for header in headers:
            epoch = header.partition_leader_epoch
            if epoch >= 0 and epoch != cache.latest_epoch:
                cache.assign(epoch, header.base_offset)

    def _roll_locked(self, base_offset: int) -> Segment:
        old = self._segments[-1]
        old.seal()
        # A sealed segment covers the offsets up to the next one's base (a replica append may
        # roll at a batch above the log end: the gap belongs to the old segment).
        old.next_offset = base_offset
        segment = Segment.create(self.directory, base_offset)
        self._segments.append(segment)
        self._bases.append(base_offset)
        self._dirty_dirs.add(self.directory)
        log.info("%s: rolled a new segment at offset %d", self.directory, base_offset)
        return segment

    # -- flushing --------------------------------------------------------------------------

    def flush(self, synced_dirs: Collection[Path] = ()) -> int:
        """Makes everything appended so far durable; returns the new recovery point.

        One fsync per file written since the last flush covers every batch in it; the
        recovery point then moves to the log end offset taken before the fsyncs (so it never
        claims a batch appended while they ran). Safe to call from a worker thread while
        another thread appends. ``synced_dirs``: directories the caller fsynced after this
        log's names in them were made (the log directory's parent, shared by many new logs:
        one fsync covers them all); they are not fsynced again here.
        """
        with self._lock:
            self._check_usable()
            target = self._leo
            try:
                for segment in self._segments:
                    if segment.write_indexes():
                        self._dirty_dirs.add(self.directory)  # new names: the index files
            except OSError as e:
                raise self._fail(e, segment.index_path) from e
            files = [(s.fd, s.log_path) for s in self._segments if s.dirty]
            index_files: list[Path] = []
            for s in self._segments:
                s.dirty = False
                if s.indexes_need_fsync:
                    index_files += [s.index_path, s.time_index_path]
                    s.indexes_need_fsync = False
            dirs = sorted(d for d in self._dirty_dirs if d not in synced_dirs)
            self._dirty_dirs.clear()
            self._flushing += 1
            truncation_mark = self._truncation_count
            deletion_mark = self._deletion_count
        failure: KafkaStorageError | None = None
        try:
            for fd, path in files:
                try:
                    self._fsync(fd)
                except OSError as e:
                    raise self._failed_fsync(e, path) from e
            for path in index_files + dirs:
                try:
                    fsync_path(path, self._fsync)
                except FileNotFoundError:
                    pass  # deleted meanwhile (retention, truncation): nothing to make durable
                except OSError as e:
                    raise self._failed_fsync(e, path) from e
        except KafkaStorageError as e:
            failure = e
        with self._lock:
            self._flushing -= 1
            if failure is None:
                lows = [offset for n, offset in self._truncations if n > truncation_mark]
                if lows:
                    target = min(target, *lows)
                point = min(max(self._recovery_point, target), self._leo)
                unsynced = [d for d in self._unsynced_deletions if d[0] > deletion_mark]
                if point != self._recovery_point or unsynced != self._unsynced_deletions:
                    # (Deletions now durable: the first segment's base offset may have moved.)
                    self._recovery_point = point
                    self._unsynced_deletions = unsynced
                    self._offsets_changed()
            if self._flushing == 0:
                for segment in self._deferred_close:
                    segment.close()
                self._deferred_close.clear()
                self._truncations.clear()
            if failure is not None:
                raise failure
            return self._recovery_point

    def _failed_fsync(self, error: OSError, path: Path) -> KafkaStorageError:
        # A failed fsync cannot be retried safely (the kernel may have dropped the dirty
        # pages): the log goes offline, as Kafka takes the log directory offline.
        with self._lock:
            return self._fail(KafkaStorageError(f"fsync failed: {error}", str(path)))

    # -- reading ---------------------------------------------------------------------------

    def _read_locked(
        self, offset: int, max_bytes: int, max_offset: int | None
    ) -> tuple[Segment | None, int, bytes]:
        self._check_usable()
        if offset < self._log_start or offset > self._leo:
            raise OffsetOutOfRangeError(offset, self._log_start, self._leo)
        if offset == self._leo or (max_offset is not None and offset >= max_offset):
            return None, -1, b""
        max_bytes = min(max_bytes, READ_BYTES_MAX)
        i = bisect.bisect_right(self._bases, offset) - 1
        try:
            # A segment with no batch at or after the offset (it lies in a gap at the
            # segment's end, or the segment was cleaned empty) sends the read on to the next
            # one, as Kafka's LocalLog.read does.
            for segment in self._segments[i:]:
                position, data = segment.read(offset, max_bytes, max_offset)
                if data:
                    return segment, position, data
                if max_offset is not None and segment.next_offset >= max_offset:
                    break
        except (KafkaStorageError, OSError) as e:
            raise self._fail(e) from e
        return None, -1, b""

    def read(self, offset: int, max_bytes: int, max_offset: int | None = None) -> bytes:
        """Raw whole batches from the first one whose last offset is >= ``offset`` (the one
        holding it; the next one when ``offset`` lies in a gap), CRC-checked.

        At most ``max_bytes`` (clamped to the storage read limit) but at least one batch;
        batches whose base offset is >= ``max_offset`` (the high watermark) are left out;
        batches come from one segment. ``b""`` when no batch is left before the log end (or
        ``max_offset``). A batch may hold no record (an idempotent producer's last batch kept
        by the cleaner): a reader moves on to its last offset + 1. Raises
        :class:`OffsetOutOfRangeError` outside [log start offset, log end offset] and
        :class:`KafkaStorageError` (the log goes offline) on corruption.
        """
        with self._lock:
            return self._read_locked(offset, max_bytes, max_offset)[2]

    def read_records(
        self, offset: int, max_bytes: int, max_offset: int | None = None
    ) -> list[Record]:
        """:meth:`read`, decoded: only the records with offsets in [``offset``, ``max_offset``)
        (and not below the log start offset)."""
        return self.fetch_records(offset, max_bytes, max_offset).records

    def fetch_records(
        self,
        offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        max_records: int | None = None,
    ) -> RecordsRead:
        """:meth:`read_records` (at most ``max_records``, and records of at most about
        ``max_bytes`` decompressed) with the offset a reader goes on from: past the batches
        read, gaps and empty ones included (see :func:`storage.record_reads.records_in`)."""
        read = self.read_for_records(offset, max_bytes, max_offset)
        return self.records_of(read, max_records, max_bytes)

    def read_for_records(
        self, offset: int, max_bytes: int, max_offset: int | None = None
    ) -> LogRead:
        """The first half of :meth:`fetch_records`: :meth:`read`'s batches, not decoded, with
        the offsets a reader takes from them. Decoding them (:meth:`records_of`) needs no lock,
        so a reader of compressed batches decodes them in a worker thread while appends go
        on."""
        with self._lock:
            segment, position, data = self._read_locked(offset, max_bytes, max_offset)
            low = max(offset, self._log_start)
            high = self._leo if max_offset is None else min(max_offset, self._leo)
        where = str(segment.log_path) if segment is not None else str(self.directory)
        return LogRead(data, offset, low, high, where, position)

    def records_of(
        self, read: LogRead, max_records: int | None = None, max_bytes: int | None = None
    ) -> RecordsRead:
        """The second half of :meth:`fetch_records`: the records of ``read`` (at most
        ``max_records``, their decoded bytes bounded by ``max_bytes`` if given), without the log's
        lock; a batch that does not decode takes the log offline."""
        try:
            return records_in(
                read.data,
                offset=read.offset,
                low=read.low,
                high=read.high,
                max_records=max_records,
                max_bytes=max_bytes,
            )
        except CorruptRecordError as e:
            with self._lock:
                raise self._fail(
                    KafkaStorageError(
                        f"cannot decode the log: {e}", read.where, read.position + (e.position or 0)
                    )
                ) from e

    def batch_headers(self, from_offset: int) -> Iterator[BatchHeader]:
        """The header of every batch from the one holding ``from_offset`` to the log end.

        Reads :data:`~storage.limits.BATCH_HEADERS_READ_BYTES` at a time (CRC-checked, as
        :meth:`read` is), so the memory it takes is bounded whatever the log's size. Raises
        :class:`OffsetOutOfRangeError` at the call outside [log start offset, log end offset].
        Not a snapshot: batches appended meanwhile are included, and a truncation or
        retention meanwhile may end it early or raise from the iteration.
        """
        with self._lock:
            self._check_usable()
            if from_offset < self._log_start or from_offset > self._leo:
                raise OffsetOutOfRangeError(from_offset, self._log_start, self._leo)
        return self._batch_headers_from(from_offset)

    def _batch_headers_from(self, offset: int) -> Iterator[BatchHeader]:
        while offset < self._leo:
            data = self.read(offset, BATCH_HEADERS_READ_BYTES)
            if not data:
                return
            for _position, header in iter_batches(data, verify=False):
                yield header
                offset = header.next_offset

    def offset_for_timestamp(self, timestamp: int) -> int | None:
        """The first offset (at or after the log start) whose record's timestamp is >=
        ``timestamp``, through the time indexes; None if every record is older."""
        with self._lock:
            self._check_usable()
            try:
                for segment in self._segments:
                    if segment.max_timestamp < timestamp or segment.next_offset <= self._log_start:
                        continue
                    found = segment.find_offset_by_timestamp(timestamp, self._log_start)
                    if found is not None:
                        return found
            except (KafkaStorageError, OSError) as e:
                raise self._fail(e) from e
            return None

    # -- truncation and retention ----------------------------------------------------------

    def _retire(self, segment: Segment) -> None:
        segment.delete_files()
        self._deletion_count += 1
        self._unsynced_deletions.append((self._deletion_count, segment.base_offset))
        if self._flushing:
            self._deferred_close.append(segment)
        else:
            segment.close()
        self._dirty_dirs.add(self.directory)

    def truncate_to(self, offset: int) -> None:
        """Removes every record at or after ``offset`` (a follower after a leader change).

        The log end offset becomes ``offset`` (Kafka's rule; also when ``offset`` lies in a gap
        of a compacted log), except that the batch holding ``offset`` is removed whole, so
        when ``offset`` lies inside a batch the log end offset becomes that batch's base
        offset (leader epoch end offsets are batch boundaries). Later segments, index entries
        and epoch cache entries go too; the recovery point and high watermark come down to the
        new log end. Truncating below the first segment empties the log and restarts it at
        ``offset``. At or past the log end no record goes, but epoch cache entries starting at
        the log end do.
        """
        if offset < 0:
            raise ValueError(f"cannot truncate to a negative offset ({offset})")
        with self._lock:
            self._check_usable()
            if offset >= self._leo:
                # No record goes, but an epoch may start at the log end with none written in
                # it (this node led at that epoch and appended nothing): it must go too, or a
                # follower keeps reporting an epoch its leader never had and the fetch that
                # tells it to truncate repeats forever (Kafka's truncateTo does the same).
                self.epoch_cache.truncate_from_end(self._leo)
                return
            try:
                if offset < self._segments[0].base_offset:
                    for segment in self._segments:
                        self._retire(segment)
                    self._segments = [Segment.create(self.directory, offset)]
                    self._bases = [offset]
                else:
                    i = bisect.bisect_right(self._bases, offset) - 1
                    for segment in self._segments[i + 1 :]:
                        self._retire(segment)
                    del self._segments[i + 1 :]
                    del self._bases[i + 1 :]
                    self._segments[i].truncate_to(offset)
                    # The last segment again, appends go to it (Kafka's LogSegment.truncateTo
                    # preallocates its indexes again): written with the next flush.
                    self._segments[i].activate()
            except (KafkaStorageError, OSError) as e:
                raise self._fail(e) from e
            new_end = self._segments[-1].next_offset
            log.info("%s: truncated to offset %d (asked %d)", self.directory, new_end, offset)
            self._leo = new_end
            self._log_start = min(self._log_start, new_end)
            self._recovery_point = min(self._recovery_point, new_end)
            self._high_watermark = min(self._high_watermark, new_end)
            self._offsets_changed()
            self._truncation_count += 1
            if self._flushing:
                self._truncations.append((self._truncation_count, new_end))
            self.epoch_cache.truncate_from_end(new_end)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Empties the log and restarts it at ``offset`` (Kafka's truncateFullyAndStartAt):
        a follower whose log ends before its leader's log start cannot fetch the records in
        between, which the leader no longer has, so it starts over where the leader's log
        starts. Every segment and epoch cache entry goes; the log start, log end, recovery
        point and high watermark all become ``offset``."""
        if offset < 0:
            raise ValueError(f"cannot start a log at a negative offset ({offset})")
        with self._lock:
            self._check_usable()
            try:
                for segment in self._segments:
                    self._retire(segment)
                self._segments = [Segment.create(self.directory, offset)]
                self._bases = [offset]
            except (KafkaStorageError, OSError) as e:
                raise self._fail(e) from e
            log.info("%s: emptied and restarted at offset %d", self.directory, offset)
            self._leo = self._log_start = self._recovery_point = self._high_watermark = offset
            self._offsets_changed()
            self._truncation_count += 1
            if self._flushing:
                self._truncations.append((self._truncation_count, offset))
            self.epoch_cache.clear()

    def delete_retained_segments(self, now_ms: int) -> int:
        """Deletes whole old segments as ``retention.ms`` and ``retention.bytes`` ask (only
        segments wholly below the high watermark); moves the log start offset; returns how
        many segments went. Deleting every segment first rolls a fresh empty one."""
        with self._lock:
            self._check_usable()
            count = retained_segment_count(
                self._config,
                self._segments,
                high_watermark=self._high_watermark,
                log_start_offset=self._log_start,
                now_ms=now_ms,
            )
            if count == 0:
                return 0
            try:
                if count == len(self._segments):
                    self._roll_locked(self._leo)
                for segment in self._segments[:count]:
                    self._retire(segment)
            except OSError as e:
                raise self._fail(e) from e
            del self._segments[:count]
            del self._bases[:count]
            self._log_start = max(self._log_start, self._segments[0].base_offset)
            self._recovery_point = max(self._recovery_point, self._log_start)
            self._high_watermark = max(self._high_watermark, self._log_start)
            self._offsets_changed()
            self.epoch_cache.truncate_from_start(self._log_start)
            log.info(
                "%s: retention deleted %d segment(s); log start offset is now %d",
                self.directory,
                count,
                self._log_start,
            )
            return count

    # -- compaction ------------------------------------------------------------------------

    def cleaning_view(self) -> tuple[list[SegmentSummary], int, int, int]:
        """What the log cleaner needs, read at one moment: the segments (oldest first, the
        active one last), the log start offset, the log end offset, and the offset the cleaner
        must stay below: the high watermark, but never past the recovery point (with
        ``flush.messages`` above 1 the HW may be ahead of it). A restart re-reads the log from
        the recovery point, and there a gap in a log no longer compacted is taken for damage
        and cut: the cleaner only makes gaps in what is fsynced."""
        with self._lock:
            self._check_usable()
            bound = min(self._high_watermark, self._recovery_point)
            return summarize(self._segments), self._log_start, self._leo, bound

    def to_clean(self, checkpoint: int | None, now_ms: int) -> LogToClean:
        """This log's cleanable range and dirt now (:func:`storage.clean_plan.log_to_clean` over
        :meth:`cleaning_view`), from the cleaner's ``checkpoint`` (None: never cleaned)."""
        segments, start, end, bound = self.cleaning_view()
        return log_to_clean(
            segments,
            log_start_offset=start,
            log_end_offset=end,
            high_watermark=bound,
            checkpoint=checkpoint,
            now_ms=now_ms,
            config=self._config,
        )

    def replace_segments(self, cleaned: CleanedSegment) -> None:
        """Swaps in a cleaned segment (``.cleaned`` files written and fsynced by
        :mod:`storage.cleaner`) for the old segments it replaces.

        Raises :class:`CleanAbortedError` (nothing changed) when those segments are no longer
        the log's, in a row (retention, a truncation or a close came first). The swap's
        renames and directory fsyncs (:func:`storage.clean_swap.swap_in`) run with the lock
        held: a flush, a retention or a truncation must not touch a segment's files while they
        change names. It is the one fsync made under the lock, once per cleaned group. An
        ``OSError`` takes the log offline; the next open settles the directory.
        """
        old = cleaned.old_bases
        with self._lock:
            if self._closed or self._offline is not None:
                raise CleanAbortedError("the log is closed or offline")
            i = bisect.bisect_left(self._bases, old[0])
            current = self._segments[i : i + len(old)]
            if [(c.base_offset, c.size_bytes, c.next_offset) for c in current] != [
                (r.base_offset, r.size_bytes, r.next_offset) for r in cleaned.replaces
            ] or i + len(old) >= len(self._segments):
                raise CleanAbortedError("the segments cleaned are no longer the log's")
            following = self._segments[i + len(old)]
            try:
                swap_in(self.directory, old, self._fsync)
                segment = Segment.open_existing(
                    self.directory, cleaned.base_offset, following.base_offset
                )
            except OSError as e:
                raise self._fail(e) from e
            segment.first_batch_timestamp = cleaned.first_batch_timestamp
            # Retention by time reads it: never below the records' own largest timestamp.
            segment.max_timestamp = max(segment.max_timestamp, cleaned.max_timestamp)
            for retired in self._segments[i : i + len(old)]:
                # Not _retire: the first one's names are the new segment's files now, and the
                # others' files are gone already. A flush in progress may still fsync its fd.
                if self._flushing:
                    self._deferred_close.append(retired)
                else:
                    retired.close()
            self._segments[i : i + len(old)] = [segment]
            self._bases[i : i + len(old)] = [cleaned.base_offset]

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Flushes (unless offline) and closes the files. Later calls raise. The active
        segment's indexes are sealed first (a final time-index entry, trimmed, fsynced with
        the flush: Kafka's ``LogSegment.close``), so a clean shutdown leaves every index file
        at its entries; a close that fails leaves the log offline (the caller's clean
        shutdown file must not vouch for it)."""
        if self._closed:
            return
        if self._offline is None:
            try:
                with self._lock:
                    try:
                        self._segments[-1].seal()
                    except OSError as e:
                        raise self._fail(e, self._segments[-1].index_path) from e
                self.flush()
            except KafkaStorageError as e:
                log.error("%s: flush at close failed: %s", self.directory, e)
        self._close_files()

    def delete(self) -> None:
        """Closes the log without flushing and removes its directory (topic deletion)."""
        self._close_files()
        shutil.rmtree(self.directory, ignore_errors=True)
        try:
            fsync_path(self.directory.parent, self._fsync)
        except OSError as e:
            log.warning("%s: fsync of the parent directory failed: %s", self.directory, e)

    def _close_files(self) -> None:
        with self._lock:
            self._closed = True
            for segment in self._segments:
                if self._flushing:
                    self._deferred_close.append(segment)  # closed when that flush ends
                else:
                    segment.close()
