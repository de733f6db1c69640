"""One segment of a partition log: a ``.log`` file of record batches and its two indexes.

Files, named by the segment's base offset as 20 zero-padded digits::

    00000000000000000000.log        record batches back to back in Kafka's v2 layout
                                    (see :mod:`storage.batch`); no file header, no padding;
                                    offsets strictly increase (each batch's base offset is
                                    above the previous batch's last offset, the first is at
                                    or above the segment's base offset) but need not be
                                    dense: a compacted log has gaps
    00000000000000000000.index      the sparse offset index, 8-byte entries
    00000000000000000000.timeindex  the time index, 12-byte entries
                                    (layouts and the rule for adding entries in
                                    :mod:`storage.index`)

The ``.log`` is written with ``pwrite`` at the end and fsynced by the owner's flush; index
entries are kept in memory and written with each flush (and when a segment is sealed), and the
index files are fsynced only when a segment is sealed: an active segment's indexes are checked
at open and rebuilt from the log when they look damaged.

The active segment's index files are preallocated (zero-filled to ``segment.index.bytes``) and
a sealed segment's trimmed to their entries, as Kafka's ``LogSegment`` and ``AbstractIndex``
do (:mod:`storage.index` has the layout and how a file's entries are counted): a roll seals the
old segment (Kafka's ``onBecomeInactiveSegment``: a final time-index entry for its largest
timestamp, the files trimmed), the log's close at a clean shutdown does the same to the active
one (Kafka's ``LogSegment.close``), and the segment that is active after an open or a
truncation has its files preallocated again (Kafka's ``resizeIndexes(maxIndexSize)``).

A new segment's index files are created by its first flush, not with its ``.log``: creating a
file is the costliest step of opening a new partition (about 0.35 ms of kernel time each on
the machines we measured), and a node creating thousands of partitions, most of them empty for
a while, saves two of the four. An empty segment without index files is therefore normal at
open (its indexes are empty and the files appear with its next flush); a non-empty one without
them has its indexes rebuilt, as any damaged index is.

Offset gaps (Kafka's compacted logs): the cleaner drops records inside a batch (the batch keeps
its base and last offsets), whole batches (between batches, and at a segment's end before the
next segment's base), and may leave a batch with no record at all (an idempotent producer's last
batch, kept for its sequence) or a segment with no batch. So a segment covers the offsets
[``base_offset``, ``next_offset``), where ``next_offset`` is the next segment's base offset for a
sealed segment and the log end offset for the active one; a read of an offset in a gap starts
at the next batch, and finds nothing when no batch of the segment is at or after it.

A segment is not thread-safe; :class:`storage.log.Log` serialises every call.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import crc32c as _crc32c

from storage.batch import (
    ATTRIBUTES_OFFSET,
    LOG_OVERHEAD,
    MAGIC,
    MIN_BATCH_LENGTH,
    BatchHeader,
    batch_records,
    check_batch,
)
from storage.errors import CorruptRecordError, KafkaStorageError
from storage.index import (
    OFFSET_ENTRY_SIZE,
    TIME_ENTRY_SIZE,
    IndexDamagedError,
    OffsetIndex,
    TimeIndex,
    read_used_entries,
)
from storage.limits import INDEX_PENDING_ENTRIES_MAX, INDEX_PREALLOCATE_BYTES
from storage.scan import iter_headers, pread_exactly

NO_TIMESTAMP = -1
LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"

# The fields of a batch header up to last_offset_delta: enough for a read to walk and check
# batches without building a BatchHeader for each (base_offset, batch_length, epoch, magic,
# crc, attributes, last_offset_delta).
_PREFIX = struct.Struct(">qiibIhi")


def _read_index_file(path: Path, entry_size: int) -> tuple[bytes, int]:
    """An index file's used entries (:func:`storage.index.read_used_entries`) and its length."""
    fd = os.open(path, os.O_RDONLY)
    try:
        length = os.fstat(fd).st_size
        return read_used_entries(fd, entry_size, length), length
    finally:
        os.close(fd)


def segment_name(base_offset: int) -> str:
    """The file name stem of the segment at ``base_offset`` (20 digits, Kafka's)."""
    return f"{base_offset:020d}"


class Segment:
    """A ``.log`` file with its offset and time indexes, and what is known of its batches."""

    def __init__(self, directory: Path, base_offset: int, fd: int, size_bytes: int) -> None:
        stem = directory / segment_name(base_offset)
        self.base_offset = base_offset
        self.log_path = stem.with_suffix(LOG_SUFFIX)
        self.index_path = stem.with_suffix(INDEX_SUFFIX)
        self.time_index_path = stem.with_suffix(TIME_INDEX_SUFFIX)
        self.fd = fd
        self.size_bytes = size_bytes
        self.offset_index = OffsetIndex(base_offset)
        self.time_index = TimeIndex(base_offset)
        # Why the indexes on disk were not trusted at open (None: they were).
        self.index_damage: str | None = None
        self.next_offset = base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = -1
        # The first batch's max timestamp, which segment.ms is measured from (Kafka's
        # rollingBasedTimestamp); None while the segment is empty.
        self.first_batch_timestamp: int | None = None
        # Log bytes written (or cut) since the last fsync of the .log.
        self.dirty = False
        # The index files got their final content and need an fsync (sealed segments only).
        self.indexes_need_fsync = False
        # Whether the index files exist: a new segment's are created by its first flush.
        self.index_files_exist = True
        # A new log's first segment has no .log file until its first append (fd is -1 until
        # then): a partition that is created and never written costs no file.
        self.file_pending = False
        self.bytes_since_index_entry = 0
        # The segment appends go to: its index files are preallocated, a sealed one's trimmed.
        self.active = False

    def __repr__(self) -> str:
        return (
            f"Segment({self.log_path.name}, offsets [{self.base_offset}, {self.next_offset}), "
            f"{self.size_bytes} bytes)"
        )

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, base_offset: int) -> Segment:
        """A new empty segment: its ``.log`` created (replacing any stale one of that name);
        its index files, replacing any stale ones, are written by the first :meth:`write_indexes`
        (the owner's next flush)."""
        stem = directory / segment_name(base_offset)
        fd = os.open(stem.with_suffix(LOG_SUFFIX), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        segment = cls(directory, base_offset, fd, 0)
        segment._index_files_pending()
        segment.dirty = True
        segment.active = True
        return segment

    @classmethod
    def create_pending(cls, directory: Path, base_offset: int) -> Segment:
        """A new empty segment whose ``.log`` is created by its first :meth:`append` (and its
        index files by the first flush after that). Until then it reads as an empty file and
        nothing of it is on disk, nor needs to be: it holds nothing."""
        segment = cls(directory, base_offset, -1, 0)
        segment.file_pending = True
        segment._index_files_pending()
        segment.active = True
        return segment

    def _create_pending_file(self) -> None:
        # O_TRUNC: a stale file of that name (a crash of an earlier incarnation) goes.
        self.fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self.file_pending = False

    def _index_files_pending(self) -> None:
        # The next write_indexes creates (or empties) both files, whatever their entries.
        self.index_files_exist = False
        self.offset_index.rewrite_file()
        self.time_index.rewrite_file()

    @classmethod
    def open_existing(
        cls, directory: Path, base_offset: int, end_offset: int | None = None
    ) -> Segment:
        """Opens a segment's files and loads its indexes.

        ``end_offset`` is the next segment's base offset when there is one (the index sanity
        check uses it). Damaged or missing index files are not fatal: ``index_damage`` says
        why, and :meth:`recover` or :meth:`rebuild_indexes` rebuilds them. The segment is not
        active until :meth:`activate` says so.
        """
        stem = directory / segment_name(base_offset)
        fd = os.open(stem.with_suffix(LOG_SUFFIX), os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            segment = cls(directory, base_offset, fd, size)
            segment._load_indexes(end_offset)
        except BaseException:
            os.close(fd)
            raise
        if end_offset is not None:
            segment.next_offset = end_offset
        return segment

    def _load_indexes(self, end_offset: int | None) -> None:
        try:
            offset_data, offset_bytes = _read_index_file(self.index_path, OFFSET_ENTRY_SIZE)
            time_data, time_bytes = _read_index_file(self.time_index_path, TIME_ENTRY_SIZE)
            self.offset_index = OffsetIndex.parse(
                self.base_offset,
                offset_data,
                log_size=self.size_bytes,
                end_offset=end_offset,
                file_bytes=offset_bytes,
            )
            self.time_index = TimeIndex.parse(
                self.base_offset, time_data, end_offset=end_offset, file_bytes=time_bytes
            )
        except FileNotFoundError as e:
            if self.size_bytes == 0:
                # An empty segment whose first flush did not come: nothing to index.
                self.offset_index = OffsetIndex(self.base_offset)
                self.time_index = TimeIndex(self.base_offset)
                self._index_files_pending()
            else:
                self.drop_indexes(f"{Path(str(e.filename)).name} is missing")
        except IndexDamagedError as e:
            self.drop_indexes(str(e))
        else:
            last = self.time_index.last_entry()
            if last is not None:
                self.max_timestamp, self.offset_of_max_timestamp = last

    def drop_indexes(self, why: str) -> None:
        """Forgets both indexes (to be rebuilt) and says why."""
        self.index_damage = why
        self.offset_index = OffsetIndex(self.base_offset)
        self.time_index = TimeIndex(self.base_offset)
        self.offset_index.rewrite_file()
        self.time_index.rewrite_file()
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = -1

    # -- low-level I/O ---------------------------------------------------------------------

    def _pread(self, pos: int, length: int) -> bytes:
        if self.file_pending:
            return b""  # no file yet: an empty one
        return pread_exactly(self.fd, pos, length)

    def headers(self, start: int = 0) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each batch from ``start`` (a batch boundary), headers only;
        raises :class:`CorruptRecordError` with the file position where one does not parse."""
        return iter_headers(self.fd, start, self.size_bytes)

    def _storage_error(self, error: CorruptRecordError | OSError) -> KafkaStorageError:
        position = error.position if isinstance(error, CorruptRecordError) else None
        return KafkaStorageError(f"cannot read the log: {error}", str(self.log_path), position)

    # -- appending -------------------------------------------------------------------------

    def append(
        self, data: bytes | memoryview, headers: list[BatchHeader], index_interval_bytes: int
    ) -> None:
        """Writes ``data`` (the whole batches ``headers`` describe, back to back) at the end
        and indexes them. The caller has checked the batches and that they belong here."""
        if self.file_pending:
            self._create_pending_file()
        position = self.size_bytes
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.pwrite(self.fd, view[written:], position + written)
        max_ts = self.max_timestamp
        offset_of_max = self.offset_of_max_timestamp
        since = self.bytes_since_index_entry
        for header in headers:
            if header.max_timestamp > max_ts:
                max_ts = header.max_timestamp
                offset_of_max = header.last_offset
            if since > index_interval_bytes:
                self.offset_index.append(header.last_offset, position)
                self.time_index.maybe_append(max_ts, offset_of_max)
                since = 0
            since += header.size
            position += header.size
        if self.first_batch_timestamp is None and headers:
            self.first_batch_timestamp = headers[0].max_timestamp
        self.max_timestamp = max_ts
        self.offset_of_max_timestamp = offset_of_max
        self.bytes_since_index_entry = since
        self.size_bytes = position
        self.next_offset = headers[-1].next_offset
        self.dirty = True
        if self.offset_index.pending_entries > INDEX_PENDING_ENTRIES_MAX:
            self.write_indexes()

    def write_indexes(self) -> bool:
        """Brings the index files up to date with the entries in memory (no fsync): new
        entries written, a stale tail cut, the length an active segment's preallocation or a
        sealed one's entries. Returns whether it created them (their names need an fsync of
        the directory)."""
        if self.file_pending:
            return False  # created with the .log, at the first flush after its first append
        created = not self.index_files_exist
        preallocate = INDEX_PREALLOCATE_BYTES if self.active else 0
        for index, path in (
            (self.offset_index, self.index_path),
            (self.time_index, self.time_index_path),
        ):
            length = index.file_bytes_for(preallocate)
            if not index.needs_write(length):
                continue
            start, data, cut = index.take_pending()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                if cut:
                    os.ftruncate(fd, start)  # the stale bytes go; what follows reads as zeros
                if data:
                    os.pwrite(fd, data, start)
                # Kafka's RandomAccessFile.setLength: growing makes the zeros (sparse: no
                # blocks until written), shrinking trims to the entries.
                os.ftruncate(fd, length)
            finally:
                os.close(fd)
            index.wrote(length)
        self.index_files_exist = True
        return created

    def seal(self) -> None:
        """The segment stops being the active one (a roll, or the log's close): its time
        index gets a final entry for its largest timestamp, and the index files are written,
        trimmed to their entries and marked for an fsync with the next flush (Kafka's
        ``LogSegment.onBecomeInactiveSegment``; its ``close`` appends the same entry)."""
        self.active = False
        self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        if self.offset_index.needs_write(self.offset_index.file_bytes_for(0)) or (
            self.time_index.needs_write(self.time_index.file_bytes_for(0))
        ):
            self.write_indexes()
            # (A segment whose files are not created yet, never written, has none to fsync.)
            self.indexes_need_fsync = self.index_files_exist

    def activate(self) -> None:
        """The segment is the one appends go to (the last after an open or a truncation):
        its index files are preallocated again, anything after their entries cut, by the
        next :meth:`write_indexes` (Kafka's ``resizeIndexes(maxIndexSize)`` at load and in
        ``truncateTo``)."""
        self.active = True
        self.offset_index.cut_stale_tail()
        self.time_index.cut_stale_tail()
        self.indexes_need_fsync = False

    # -- reading ---------------------------------------------------------------------------

    def locate(self, offset: int) -> tuple[int, BatchHeader] | None:
        """(position, header) of the first batch whose last offset is >= ``offset``: the batch
        holding it, or the next one when ``offset`` lies in a gap. Offset index lookup, then a
        short header scan. None if no batch of the segment is at or after ``offset``. Raises
        :class:`KafkaStorageError` on corruption."""
        if offset >= self.next_offset:
            return None
        entry = self.offset_index.lookup(offset)
        start = entry[1] if entry is not None else 0
        try:
            for pos, header in self.headers(start):
                if header.last_offset >= offset:
                    return pos, header
        except (CorruptRecordError, OSError) as e:
            raise self._storage_error(e) from e
        # No batch at or after the offset: it lies in a gap at the segment's end (the cleaner
        # dropped the batches there), and the next segment has what follows.
        return None

    def read(self, offset: int, max_bytes: int, max_offset: int | None) -> tuple[int, bytes]:
        """(file position, whole batches) from the first batch whose last offset is >= ``offset``
        (the one holding it, or the next after a gap): as many as fit in
        ``max_bytes`` but at least one, none whose base offset is >= ``max_offset``. Each batch
        returned has had its CRC checked; corruption raises :class:`KafkaStorageError` naming
        the file and position. Nothing to return: (-1, b"").

        The end is found first (index entries, then a few headers), so the batches are read
        with one pread of exactly their size: no over-read, no copy.
        """
        found = self.locate(offset)
        if found is None:
            return -1, b""
        pos, first = found
        if max_offset is not None and first.base_offset >= max_offset:
            return -1, b""
        end = self._end_within(pos, pos + max(max_bytes, first.size))
        if max_offset is not None and max_offset < self.next_offset:
            stop = self.locate(max_offset)
            if stop is not None:
                end = min(
                    end, stop[0] if stop[1].base_offset >= max_offset else stop[0] + stop[1].size
                )
        try:
            buf = self._pread(pos, end - pos)
        except OSError as e:
            raise self._storage_error(e) from e
        self._verify(buf, pos, first.base_offset)
        return pos, buf

    def _end_within(self, start: int, limit: int) -> int:
        """The last batch boundary at or before ``limit`` (and after ``start``, a boundary
        whose batch fits): from the index entry nearest below ``limit``, then headers."""
        if limit >= self.size_bytes:
            return self.size_bytes
        entry = self.offset_index.floor_by_position(limit)
        position = entry[1] if entry is not None and entry[1] > start else start
        try:
            for header_pos, header in self.headers(position):
                if header_pos + header.size > limit:
                    return header_pos
        except (CorruptRecordError, OSError) as e:
            raise self._storage_error(e) from e
        return self.size_bytes

    def _verify(self, buf: bytes, pos: int, base_offset: int) -> None:
        """Checks that ``buf`` (read at ``pos``) is whole batches with good CRCs, the first at
        ``base_offset`` and each next one's base above the previous one's last offset (gaps
        are fine, overlaps are corruption)."""
        expected = base_offset
        end = 0
        with memoryview(buf) as view:
            while end < len(buf):
                if len(buf) - end < _PREFIX.size:
                    raise self._storage_error(
                        CorruptRecordError("a batch header is cut short", pos + end)
                    )
                base, length, _epoch, magic, crc, _attr, last_delta = _PREFIX.unpack_from(buf, end)
                size = length + LOG_OVERHEAD
                if (
                    magic != MAGIC
                    or length < MIN_BATCH_LENGTH
                    or base < expected
                    or (end == 0 and base != expected)
                    or last_delta < 0
                    or end + size > len(buf)
                ):
                    at = "at" if end == 0 else "at or after"
                    raise self._storage_error(
                        CorruptRecordError(
                            f"expected a batch {at} offset {expected} (magic {MAGIC}), found "
                            f"base offset {base}, magic {magic}, length {length}",
                            pos + end,
                        )
                    )
                actual = int(_crc32c.crc32c(view[end + ATTRIBUTES_OFFSET : end + size]))
                if actual != crc:
                    raise self._storage_error(
                        CorruptRecordError(
                            f"expected CRC-32C {crc:#010x}, computed {actual:#010x}", pos + end
                        )
                    )
                expected = base + last_delta + 1
                end += size

    def find_offset_by_timestamp(self, timestamp: int, starting_offset: int) -> int | None:
        """The first offset >= ``starting_offset`` in this segment whose record's timestamp is
        >= ``timestamp``, found through the time index; None if there is none here."""
        entry = self.time_index.lookup(timestamp)
        from_offset = max(entry[1] if entry is not None else self.base_offset, starting_offset)
        found = self.locate(from_offset)
        if found is None:
            return None
        try:
            for pos, header in self.headers(found[0]):
                if header.last_offset < starting_offset or header.max_timestamp < timestamp:
                    continue
                batch = self._pread(pos, header.size)
                try:
                    # Lazily: the first match ends the walk (a compressed batch of a million
                    # records is not decoded whole for its first records).
                    for record, _size, _more in batch_records(
                        batch, 0, check_batch(batch), starting_offset
                    ):
                        if record.timestamp >= timestamp:
                            return record.offset
                except CorruptRecordError as e:
                    raise CorruptRecordError(str(e), pos) from e
        except (CorruptRecordError, OSError) as e:
            raise self._storage_error(e) from e
        return None

    # -- recovery and truncation -----------------------------------------------------------

    def cut(self, position: int) -> int:
        """Cuts the file at ``position`` (a batch boundary found by a scan); returns the number
        of bytes dropped."""
        dropped = self.size_bytes - position
        os.ftruncate(self.fd, position)
        self.size_bytes = position
        self.dirty = True
        return dropped

    def truncate_to(self, offset: int) -> int:
        """Removes every batch whose last offset is >= ``offset``, and ``next_offset`` becomes
        ``offset`` (Kafka sets the log end to the target): the batch holding ``offset`` goes
        whole, so when ``offset`` lies inside a batch the segment ends at that batch's base
        offset instead. ``offset`` at or past ``next_offset`` removes nothing and changes
        nothing. Returns the number of bytes removed."""
        if offset >= self.next_offset:
            return 0
        if offset <= self.base_offset:
            position, new_next = 0, self.base_offset
        else:
            found = self.locate(offset)
            if found is None:
                # In the gap after the last batch: no batch goes.
                position, new_next = self.size_bytes, offset
            else:
                position, new_next = found[0], min(offset, found[1].base_offset)
        dropped = self.cut(position)
        self.next_offset = new_next
        self.offset_index.truncate_from_position(position)
        self.time_index.truncate_from_offset(new_next)
        # As if the cut batches were never appended (Kafka's truncateTo counts from 0): the
        # next entry comes where it would have, as on the leader, and a trusted reopen finds
        # the entries its append rule expects.
        last = self.offset_index.last_entry()
        self.bytes_since_index_entry = position - (last[1] if last is not None else 0)
        self._recompute_max_timestamp()
        if position == 0:
            self.first_batch_timestamp = None
        self.indexes_need_fsync = False
        return dropped

    def _recompute_max_timestamp(self) -> None:
        """The largest timestamp after a truncation: from the time index's last entry plus the
        headers of the batches after it."""
        last = self.time_index.last_entry()
        max_ts, offset_of_max = last if last is not None else (NO_TIMESTAMP, -1)
        entry = self.offset_index.lookup(last[1]) if last is not None else None
        start = entry[1] if entry is not None else 0
        try:
            for _pos, header in self.headers(start):
                if header.max_timestamp > max_ts:
                    max_ts, offset_of_max = header.max_timestamp, header.last_offset
        except (CorruptRecordError, OSError) as e:
            raise self._storage_error(e) from e
        self.max_timestamp = max_ts
        self.offset_of_max_timestamp = offset_of_max

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the log file (index files are opened only while written)."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def delete_files(self) -> None:
        """Removes the segment's three files (the caller closes the fd when it is safe)."""
        for path in (self.log_path, self.index_path, self.time_index_path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
