"""A segment's sparse offset index and time index, as Kafka writes them (pure: no file I/O).

Both files sit beside the segment's ``.log`` and share its 20-digit base-offset name. All
integers are big-endian; offsets are stored relative to the segment's base offset.

``<base>.index``: one 8-byte entry per indexed batch::

    offset  size  field
    0       4     relative_offset  int32  the batch's LAST offset - base offset (Kafka's choice
                                          for v2 batches, so Kafka's DumpLogSegments agrees)
    4       4     position         int32  byte position in the .log where that batch starts

``<base>.timeindex``: one 12-byte entry each time the segment's largest timestamp grows at an
indexed batch::

    offset  size  field
    0       8     timestamp        int64  the largest timestamp in the segment up to here
    8       4     relative_offset  int32  the last offset of the batch where that timestamp
                                          first appeared (Kafka's "shallow" offset of the max
                                          timestamp)

Entries are strictly increasing in both columns. When an entry is added follows Kafka's
``LogSegment.append``: before appending a batch, if more than ``index.interval.bytes`` bytes
were appended since the last entry, the batch gets an offset-index entry (its last offset, its
start position) and the time index gets (largest timestamp so far, its offset) if that
timestamp is larger than the time index's last one. When a segment stops being the active one
its time index gets a final entry for its largest timestamp (Kafka's ``onBecomeInactive``).

Lookups:

- ``OffsetIndex.lookup(o)``: the entry with the largest offset <= o. The batch at its position
  ends at or before o, so a scan of batch headers from there finds the batch holding o.
- ``TimeIndex.lookup(t)``: the entry with the largest timestamp <= t. Every batch up to the one
  holding its offset has timestamps <= that entry's, so the first batch with a timestamp >= t
  is at or after it.

File length (Kafka's ``AbstractIndex``): an active segment's two files are preallocated to
``segment.index.bytes`` (:data:`~storage.limits.INDEX_PREALLOCATE_BYTES`, rounded down to whole
entries: 10485760 and 10485756 bytes), zero-filled after the entries, and trimmed to exactly
their entries when the segment stops being active (a roll, or the log's close at a clean
shutdown: Kafka's ``trimToValidSize``). So an active segment's file length says nothing of how
many entries it holds: Kafka counts a new index's entries from 0 and rebuilds an active
segment's indexes by recovery after an unclean stop. A file at the preallocated length is read
up to its first unused entry, an all-zero one (:func:`read_used_entries`), so a node opening
many partitions after a crash does not read 10 MiB of zeros for each; a file of any other
length was trimmed, and all of it is entries. One real entry can be all zeros: a time index's
first, (timestamp 0, the base offset), as Kafka's ``TimeIndex.maybeAppend`` takes any timestamp
above -1 (an offset-index entry's position is never 0: no entry is made for a segment's first
batch). It is read as an entry when the one after it is not all zeros, or when the file was
trimmed; alone in an active segment's preallocated file it reads as no entry, which only makes
that index sparser until the segment's seal appends its final entry.

Index files are not fsynced with the log (only when a segment is sealed): :meth:`parse` checks
what was read, and anything suspicious (a cut entry, entries not increasing, positions or
offsets past the end of the log) makes the segment rebuild the index from the log.
"""

from __future__ import annotations

import bisect
import os
import struct
from array import array

from storage.limits import INDEX_PREALLOCATE_BYTES, INDEX_READ_BYTES_MIN

OFFSET_ENTRY = struct.Struct(">ii")
TIME_ENTRY = struct.Struct(">qi")
OFFSET_ENTRY_SIZE = OFFSET_ENTRY.size  # 8
TIME_ENTRY_SIZE = TIME_ENTRY.size  # 12


class IndexDamagedError(ValueError):
    """An index file that cannot be trusted; the segment rebuilds it from its log."""


def preallocated_bytes(entry_size: int) -> int:
    """The length of an active segment's index file: :data:`INDEX_PREALLOCATE_BYTES` rounded
    down to whole entries (Kafka's 10485760 and 10485756 bytes)."""
    return INDEX_PREALLOCATE_BYTES // entry_size * entry_size


def read_used_entries(fd: int, entry_size: int, file_bytes: int) -> bytes:
    """The bytes of an index file (open as ``fd``, ``file_bytes`` long) holding entries: all
    of a file trimmed to its entries (any length but the preallocated one, as Kafka assumes),
    and of a preallocated file those before its first unused entry, an all-zero one (entry 0
    excepted when entry 1 is not: a time index's (timestamp 0, base offset)). A cut entry at
    the end is included, for :meth:`parse` to refuse. Reads of a preallocated file start small
    and double, so it costs about as much as its entries, not its length."""
    if file_bytes != preallocated_bytes(entry_size):
        return os.pread(fd, file_bytes, 0)
    zero = bytes(entry_size)
    parts: list[bytes] = []
    position = 0
    chunk = INDEX_READ_BYTES_MIN
    while position < file_bytes:
        data = os.pread(fd, min(chunk, file_bytes - position), position)
        if not data:
            break  # the file shrank meanwhile: what was read is all there is
        # Entry 0 may be all zeros: not unused if entry 1 is not (chunks hold several entries).
        start = entry_size if position == 0 and data[entry_size : 2 * entry_size] != zero else 0
        at = data.find(zero, start)
        while at >= 0 and at % entry_size:
            at = data.find(zero, at + 1)
        if at >= 0:
            parts.append(data[:at])
            break
        parts.append(data)
        position += len(data)
        chunk *= 2
    return b"".join(parts)


class _Index:
    """Two strictly increasing int columns (a key and a value) and what is not yet on disk."""

    entry: struct.Struct = OFFSET_ENTRY
    key_type = "i"
    value_type = "i"

    def __init__(self, base_offset: int) -> None:
        self.base_offset = base_offset
        self._keys: array[int] = array(self.key_type)
        self._values: array[int] = array(self.value_type)
        # Entries [0, _written) are in the file. With _cut_file the file may hold stale bytes
        # after them (entries truncated after being written, or a crash's leftovers), so the
        # writer cuts it to _written entries first.
        self._written = 0
        self._cut_file = False
        # The file's length as last written or read (None: not known, or no file yet).
        self._file_bytes: int | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def _append(self, key: int, value: int) -> None:
        if self._keys:
            assert key > self._keys[-1] and value >= self._values[-1], (
                f"index entries must increase: ({key}, {value}) after "
                f"({self._keys[-1]}, {self._values[-1]})"
            )
        self._keys.append(key)
        self._values.append(value)

    def _floor(self, key: int) -> int:
        """Index of the entry with the largest key <= ``key``, or -1."""
        return bisect.bisect_right(self._keys, key) - 1

    def _truncate_entries(self, count: int) -> None:
        if count >= len(self._keys):
            return
        del self._keys[count:]
        del self._values[count:]
        if count < self._written:
            self._written = count
            self._cut_file = True

    def rewrite_file(self) -> None:
        """Makes the next write replace the whole file (it was found damaged)."""
        self._written = 0
        self._cut_file = True

    def clear(self) -> None:
        """Drops every entry (the file is emptied on the next write)."""
        self._truncate_entries(0)

    def cut_stale_tail(self) -> None:
        """Makes the next write cut the file after the entries it holds (anything there is
        stale: a crash's leftovers, or a preallocated tail to make again)."""
        self._cut_file = True

    def file_bytes_for(self, preallocate_bytes: int) -> int:
        """The length the file should have: its entries, or ``preallocate_bytes`` rounded down
        to whole entries when that is more (an active segment's; 0 for a sealed one). An index
        that outgrew its preallocation (a tiny ``index.interval.bytes``) just grows: Kafka
        would roll the segment instead, a rule we do not have."""
        size = self.entry.size
        return max(len(self._keys) * size, preallocate_bytes // size * size)

    def needs_write(self, file_bytes: int) -> bool:
        """Whether the file differs from the entries (new entries, entries dropped, a stale
        tail) or its length is not ``file_bytes``."""
        return self._cut_file or len(self._keys) > self._written or self._file_bytes != file_bytes

    @property
    def has_pending(self) -> bool:
        """Whether entries are not in the file as they are in memory (new or dropped ones)."""
        return self._cut_file or len(self._keys) > self._written

    @property
    def pending_entries(self) -> int:
        return len(self._keys) - self._written

    def take_pending(self) -> tuple[int, bytes, bool]:
        """What the file needs to match the entries: (byte position, bytes to write there,
        whether the file must first be cut to that position), and counts it as done; the
        writer then calls :meth:`wrote` with the file's new length."""
        start = self._written
        pack = self.entry.pack
        data = b"".join(pack(self._keys[i], self._values[i]) for i in range(start, len(self._keys)))
        cut = self._cut_file
        self._written = len(self._keys)
        self._cut_file = False
        return start * self.entry.size, data, cut

    def wrote(self, file_bytes: int) -> None:
        """The file is now ``file_bytes`` long, holding the entries and zeros after them."""
        self._file_bytes = file_bytes

    def to_bytes(self) -> bytes:
        """The whole file's content."""
        pack = self.entry.pack
        return b"".join(pack(k, v) for k, v in zip(self._keys, self._values, strict=True))

    def _load(self, data: bytes, what: str, file_bytes: int | None) -> None:
        size = self.entry.size
        self._file_bytes = file_bytes
        if len(data) % size:
            raise IndexDamagedError(
                f"{what} of {len(data)} bytes is not made of {size}-byte entries"
            )
        for key, value in self.entry.iter_unpack(data):
            if self._keys and (key <= self._keys[-1] or value < self._values[-1]):
                raise IndexDamagedError(
                    f"{what} entry {len(self._keys)} ({key}, {value}) does not follow "
                    f"({self._keys[-1]}, {self._values[-1]})"
                )
            self._keys.append(key)
            self._values.append(value)
        self._written = len(self._keys)


class OffsetIndex(_Index):
    """The ``.index`` of one segment: (last offset of a batch, its position), sparse."""

    entry = OFFSET_ENTRY
    key_type = "i"
    value_type = "i"

    @classmethod
    def parse(
        cls,
        base_offset: int,
        data: bytes,
        *,
        log_size: int,
        end_offset: int | None = None,
        file_bytes: int | None = None,
    ) -> OffsetIndex:
        """The index in ``data`` (a file's used entries, :func:`read_used_entries`; the file is
        ``file_bytes`` long, when known); raises :class:`IndexDamagedError` if it cannot be
        trusted: not whole entries, entries not increasing, a position at or past
        ``log_size`` or an offset at or past ``end_offset`` (the segment's next offset, when
        known)."""
        index = cls(base_offset)
        index._load(data, ".index", file_bytes)
        if index._keys:
            if index._keys[0] < 0 or index._values[0] < 0:
                raise IndexDamagedError(".index has a negative offset or position")
            if index._values[-1] >= log_size:
                raise IndexDamagedError(
                    f".index points at position {index._values[-1]}, the log has {log_size} bytes"
                )
            if end_offset is not None and base_offset + index._keys[-1] >= end_offset:
                raise IndexDamagedError(
                    f".index holds offset {base_offset + index._keys[-1]}, the segment ends "
                    f"before {end_offset}"
                )
        for i in range(1, len(index._values)):
            if index._values[i] <= index._values[i - 1]:
                raise IndexDamagedError(f".index positions do not increase at entry {i}")
        return index

    def append(self, last_offset: int, position: int) -> None:
        """Indexes the batch that ends at ``last_offset`` and starts at ``position``."""
        self._append(last_offset - self.base_offset, position)

    def lookup(self, offset: int) -> tuple[int, int] | None:
        """(offset, position) of the entry with the largest offset <= ``offset``, or None."""
        i = self._floor(offset - self.base_offset)
        if i < 0:
            return None
        return self.base_offset + self._keys[i], self._values[i]

    def floor_by_position(self, position: int) -> tuple[int, int] | None:
        """(offset, position) of the entry with the largest position <= ``position``."""
        i = bisect.bisect_right(self._values, position) - 1
        if i < 0:
            return None
        return self.base_offset + self._keys[i], self._values[i]

    def last_entry(self) -> tuple[int, int] | None:
        if not self._keys:
            return None
        return self.base_offset + self._keys[-1], self._values[-1]

    def truncate_from_position(self, position: int) -> None:
        """Drops the entries of batches that start at or after ``position``."""
        self._truncate_entries(bisect.bisect_left(self._values, position))

    def keep_through_position(self, position: int) -> None:
        """Drops the entries of batches that start after ``position``."""
        self._truncate_entries(bisect.bisect_right(self._values, position))

    def entries(self) -> list[tuple[int, int]]:
        """Every (offset, position), for tools and tests."""
        return [(self.base_offset + k, v) for k, v in zip(self._keys, self._values, strict=True)]


class TimeIndex(_Index):
    """The ``.timeindex`` of one segment: (largest timestamp so far, offset where it appeared)."""

    entry = TIME_ENTRY
    key_type = "q"
    value_type = "i"

    @classmethod
    def parse(
        cls,
        base_offset: int,
        data: bytes,
        *,
        end_offset: int | None = None,
        file_bytes: int | None = None,
    ) -> TimeIndex:
        """The index in ``data`` (as :meth:`OffsetIndex.parse`); raises
        :class:`IndexDamagedError` if it cannot be trusted: not whole entries, entries not
        increasing, an offset below the base offset or at or past ``end_offset`` (the
        segment's next offset, when known)."""
        index = cls(base_offset)
        index._load(data, ".timeindex", file_bytes)
        if index._keys:
            if index._values[0] < 0:
                raise IndexDamagedError(".timeindex has a negative relative offset")
            if end_offset is not None and base_offset + index._values[-1] >= end_offset:
                raise IndexDamagedError(
                    f".timeindex holds offset {base_offset + index._values[-1]}, the segment "
                    f"ends before {end_offset}"
                )
        return index

    def maybe_append(self, timestamp: int, offset: int) -> bool:
        """Adds (``timestamp``, ``offset``) if ``timestamp`` is larger than the last entry's;
        says whether it did."""
        # An empty index acts as if it held (-1, base offset), as Kafka's does: a segment
        # whose records carry no timestamp (-1) gets no entry.
        if timestamp <= (self._keys[-1] if self._keys else -1):
            return False
        rel = offset - self.base_offset
        if self._values and rel < self._values[-1]:
            return False
        self._append(timestamp, rel)
        return True

    def lookup(self, timestamp: int) -> tuple[int, int] | None:
        """(timestamp, offset) of the entry with the largest timestamp <= ``timestamp``."""
        i = self._floor(timestamp)
        if i < 0:
            return None
        return self._keys[i], self.base_offset + self._values[i]

    def last_entry(self) -> tuple[int, int] | None:
        if not self._keys:
            return None
        return self._keys[-1], self.base_offset + self._values[-1]

    def truncate_from_offset(self, offset: int) -> None:
        """Drops the entries whose offset is >= ``offset``."""
        self._truncate_entries(bisect.bisect_left(self._values, offset - self.base_offset))

    def entries(self) -> list[tuple[int, int]]:
        """Every (timestamp, offset), for tools and tests."""
        return [(k, self.base_offset + v) for k, v in zip(self._keys, self._values, strict=True)]
