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

Choice: Kafka preallocates index files (10 MiB) and trims them on roll; we write them at their
real length (appending entries with each flush), which is simpler and gives the same bytes.
Index files are not fsynced with the log: :meth:`parse` checks a file and anything suspicious
(length not a multiple of the entry size, entries not increasing, positions or offsets past
the end of the log) makes the segment rebuild it from the log.
"""

from __future__ import annotations

import bisect
import struct
from array import array

OFFSET_ENTRY = struct.Struct(">ii")
TIME_ENTRY = struct.Struct(">qi")
OFFSET_ENTRY_SIZE = OFFSET_ENTRY.size  # 8
TIME_ENTRY_SIZE = TIME_ENTRY.size  # 12


class IndexDamagedError(ValueError):
    """An index file that cannot be trusted; the segment rebuilds it from its log."""


class _Index:
    """Two strictly increasing int columns (a key and a value) and what is not yet on disk."""

    entry: struct.Struct = OFFSET_ENTRY
    key_type = "i"
    value_type = "i"

    def __init__(self, base_offset: int) -> None:
        self.base_offset = base_offset
        self._keys: array[int] = array(self.key_type)
        self._values: array[int] = array(self.value_type)
        # Entries [0, _written) are in the file; the file may be longer when entries were
        # truncated after being written, so the writer cuts it to _written entries first.
        self._written = 0
        self._cut_file = False

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

    @property
    def has_pending(self) -> bool:
        """Whether the file differs from the entries (new entries, or entries dropped)."""
        return self._cut_file or len(self._keys) > self._written

    @property
    def pending_entries(self) -> int:
        return len(self._keys) - self._written

    def take_pending(self) -> tuple[int, bytes, bool]:
        """What the file needs to match the entries: (byte position, bytes to write there,
        whether the file must first be cut to that position), and counts it as done."""
        start = self._written
        pack = self.entry.pack
        data = b"".join(pack(self._keys[i], self._values[i]) for i in range(start, len(self._keys)))
        cut = self._cut_file
        self._written = len(self._keys)
        self._cut_file = False
        return start * self.entry.size, data, cut

    def to_bytes(self) -> bytes:
        """The whole file's content."""
        pack = self.entry.pack
        return b"".join(pack(k, v) for k, v in zip(self._keys, self._values, strict=True))

    def _load(self, data: bytes, what: str) -> None:
        size = self.entry.size
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
        cls, base_offset: int, data: bytes, *, log_size: int, end_offset: int | None = None
    ) -> OffsetIndex:
        """The index in ``data``; raises :class:`IndexDamagedError` if it cannot be trusted:
        not whole entries, entries not increasing, a position at or past ``log_size`` or an
        offset at or past ``end_offset`` (the segment's next offset, when known)."""
        index = cls(base_offset)
        index._load(data, ".index")
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
    def parse(cls, base_offset: int, data: bytes, *, end_offset: int | None = None) -> TimeIndex:
        """The index in ``data``; raises :class:`IndexDamagedError` if it cannot be trusted:
        not whole entries, entries not increasing, an offset below the base offset or at or
        past ``end_offset`` (the segment's next offset, when known)."""
        index = cls(base_offset)
        index._load(data, ".timeindex")
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
