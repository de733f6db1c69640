"""The metadata quorum's Raft journal: pysyncobj's journal interface over our own durable files.

pysyncobj keeps its Raft log in a journal object that it gets from ``createJournal(path)``.
Its own ``FileJournal`` writes an mmap it never msyncs and renames its term/vote file without
fsync, so nothing it writes survives a power cut. :class:`DurableJournal` keeps the same
interface (``add``, ``clear``, ``deleteEntriesFrom``, ``deleteEntriesTo``, indexing, term, vote
and commit index) and:

- appends entries with ``pwrite`` and makes them durable with one ``fdatasync`` per batch,
  in :meth:`DurableJournal.sync`. The quorum calls it before any Raft message leaves the node
  and at the end of every tick, so a follower's acknowledgement, a vote, and the leader's own
  share of a commit all mean "on disk";
- rewrites the whole file atomically (:func:`storage.durable.atomic_write`: tmp, fsync,
  rename, fsync dir) when entries are dropped from the front (log compaction) or the journal
  is cleared (a snapshot was installed);
- keeps term, vote and commit index in a small JSON file replaced the same way; term and vote
  are written before the call returns (Raft needs them durable before any vote is sent);
- syncs, too, before it records a higher commit index: a leader counts its own log toward a
  commit before its entries are synced, and nothing may be applied or answered past what
  this node holds on disk;
- checks every entry with a CRC when loading and cuts a torn or corrupt tail (logging how many
  bytes it dropped), so a crash in the middle of an append never leaves garbage entries;
- fails for good after one failed write or fsync (``failed``): Linux may drop the dirty pages
  of a failed fsync and report the next one as a success ("fsyncgate"), so nothing written
  after a failure can be trusted. The quorum then stops taking part (see quorum.py).

Only the quorum's tick thread calls a journal; it is not thread-safe.

Journal file (``raft-journal.log``), all integers big-endian::

    offset  size  field
    0       8     magic       b"KRJRNL\\r\\n"
    8       4     version     1
    12      4     reserved    0
    16      ...   entries, each:
                    0   4  command_length  bytes of command
                    4   4  crc             CRC-32 (zlib) of index, term and command
                    8   8  index           Raft index; each entry's is the previous one's + 1
                    16  8  term            Raft term of the entry
                    24  .. command         pysyncobj's command bytes (type byte + pickle)

Meta file (``quorum-state``): JSON ``{"version": 1, "current_term": 3, "voted_for":
"127.0.0.1:9093" | null, "commit_index": 42}``.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, overload

import orjson

from kraft.errors import JournalCorruptError
from kraft.limits import JOURNAL_ENTRY_BYTES_MAX
from storage.durable import atomic_write

logger = logging.getLogger(__name__)

MAGIC = b"KRJRNL\r\n"
FORMAT_VERSION = 1
FILE_HEADER = struct.Struct(">8sII")  # magic, version, reserved
ENTRY_HEADER = struct.Struct(">IIQQ")  # command_length, crc, index, term
# The CRC covers everything after the crc field: index, term, command.
_CRC_START = struct.calcsize(">II")
_INDEX_TERM = struct.Struct(">QQ")

META_VERSION = 1

# The first byte of a pysyncobj membership entry's command (syncobj._COMMAND_TYPE.MEMBERSHIP;
# kraft/voters.py MEMBERSHIP).
MEMBERSHIP_COMMAND = b"\x02"

Entry = tuple[bytes, int, int]  # (command, index, term): pysyncobj's entry shape


def encode_entry(command: bytes, index: int, term: int) -> bytes:
    """One entry's bytes in the journal file."""
    body = _INDEX_TERM.pack(index, term) + command
    return struct.pack(">II", len(command), zlib.crc32(body)) + body


def parse_entries(data: bytes, start: int) -> tuple[list[Entry], list[int], int]:
    """The entries of a journal file's bytes from `start`: (entries, their offsets, end).

    Parsing stops at the first entry that is short, fails its CRC, is too large, or does not
    follow its predecessor's index; `end` is where the good entries end.
    """
    entries: list[Entry] = []
    offsets: list[int] = []
    pos = start
    while len(data) - pos >= ENTRY_HEADER.size:
        length, crc, index, term = ENTRY_HEADER.unpack_from(data, pos)
        end = pos + ENTRY_HEADER.size + length
        if length > JOURNAL_ENTRY_BYTES_MAX or end > len(data):
            break
        if zlib.crc32(data[pos + _CRC_START : end]) != crc:
            break
        if entries and index != entries[-1][1] + 1:
            break
        entries.append((bytes(data[pos + ENTRY_HEADER.size : end]), index, term))
        offsets.append(pos)
        pos = end
    return entries, offsets, pos


class DurableJournal:
    """A Raft journal in `path` with its meta file `meta_path` (see the module docstring)."""

    def __init__(self, path: Path, meta_path: Path) -> None:
        self._path = path
        self._meta_path = meta_path
        self._entries: list[Entry] = []
        self._offsets: list[int] = []
        self._dirty = False
        self._closed = False
        self.failed: OSError | None = None  # the first write or fsync that failed
        self._meta = self._load_meta()
        self._meta_saved = True
        if not path.exists():
            atomic_write(path, FILE_HEADER.pack(MAGIC, FORMAT_VERSION, 0), mode=0o600)
        self._fd = os.open(path, os.O_RDWR)
        self._end = self._load()

    # --- Loading -------------------------------------------------------------------------------

    def _load_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"current_term": 0, "voted_for": None, "commit_index": 1}
        try:
            data = self._meta_path.read_bytes()
        except FileNotFoundError:
            return meta
        try:
            stored = orjson.loads(data)
            assert type(stored) is dict and stored.get("version") == META_VERSION
            assert type(stored["current_term"]) is int and stored["current_term"] >= 0
            assert stored["voted_for"] is None or type(stored["voted_for"]) is str
            assert type(stored["commit_index"]) is int and stored["commit_index"] >= 1
        except (orjson.JSONDecodeError, AssertionError, KeyError) as e:
            raise JournalCorruptError(
                f"{self._meta_path}: expected the quorum state JSON, found {data[:200]!r} ({e!r})"
            ) from None
        for key in meta:
            meta[key] = stored[key]
        return meta

    def _load(self) -> int:
        data = self._path.read_bytes()
        if len(data) < FILE_HEADER.size:
            raise JournalCorruptError(
                f"{self._path}: expected a {FILE_HEADER.size}-byte journal header, "
                f"found {len(data)} bytes"
            )
        magic, version, _reserved = FILE_HEADER.unpack_from(data, 0)
        if magic != MAGIC or version != FORMAT_VERSION:
            raise JournalCorruptError(
                f"{self._path}: expected magic {MAGIC!r} version {FORMAT_VERSION}, "
                f"found {magic!r} version {version}"
            )
        self._entries, self._offsets, end = parse_entries(data, FILE_HEADER.size)
        if end < len(data):
            logger.warning(
                "%s: cut a torn or corrupt tail of %d bytes after %d entries (last index %s)",
                self._path,
                len(data) - end,
                len(self._entries),
                self._entries[-1][1] if self._entries else None,
            )
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        return end

    # --- pysyncobj's Journal interface ---------------------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        command = bytes(command)
        # pysyncobj appends in index order; a gap would be cut at the next load.
        assert not self._entries or idx == self._entries[-1][1] + 1, (idx, self._entries[-1])
        record = encode_entry(command, idx, term)
        with self._failing():
            os.pwrite(self._fd, record, self._end)
        self._entries.append((command, idx, term))
        self._offsets.append(self._end)
        self._end += len(record)
        self._dirty = True

    def clear(self) -> None:
        self._rewrite([])

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 (pysyncobj's name)
        """Drop the entries from position `entryFrom` on (a conflicting tail)."""
        if entryFrom >= len(self._entries):
            return
        self._end = self._offsets[entryFrom]
        del self._entries[entryFrom:]
        del self._offsets[entryFrom:]
        with self._failing():
            os.ftruncate(self._fd, self._end)
        self._dirty = True

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802 (pysyncobj's name)
        """Drop the entries before position `entryTo` (after a dump was written)."""
        self._rewrite(self._entries[entryTo:])

    @overload
    def __getitem__(self, item: int) -> Entry: ...
    @overload
    def __getitem__(self, item: slice) -> list[Entry]: ...
    def __getitem__(self, item: int | slice) -> Entry | list[Entry]:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def _destroy(self) -> None:
        self.close()

    def flush(self) -> None:
        self.sync()

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802, N803
        if raftCommitIndex > self._meta["commit_index"]:
            # pysyncobj applies entries up to the commit index right after this call.
            try:
                self.sync()
            except OSError:
                pass  # `failed` is set: the quorum applies nothing more and stops
        if self._meta["commit_index"] != raftCommitIndex:
            passes_change = self._has_membership(self._meta["commit_index"], raftCommitIndex)
            self._meta["commit_index"] = raftCommitIndex
            self._meta_saved = False
            if passes_change and self.failed is None:
                # A start decides voter or observer by whether its "add self" is known
                # committed (server/main.py): a voter change's commit is saved at once, the
                # rest lazily (onOneSecondTimer).
                try:
                    self._store_meta()
                except OSError:
                    pass  # `failed` is set: the quorum applies nothing more and stops

    def _has_membership(self, after: int, through: int) -> bool:
        """Whether an entry with an index in (``after``, ``through``] is a voter change."""
        if not self._entries or through <= after:
            return False
        first = self._entries[0][1]
        start = max(after + 1 - first, 0)
        stop = min(through + 1 - first, len(self._entries))
        return any(
            command[:1] == MEMBERSHIP_COMMAND for command, _i, _t in self._entries[start:stop]
        )

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return int(self._meta["commit_index"])

    def setCurrentTerm(self, term: int, votedForNodeId: str | None) -> None:  # noqa: N802, N803
        self._meta["current_term"] = term
        self._meta["voted_for"] = None if votedForNodeId is None else str(votedForNodeId)
        # Raft: term and vote are durable before any message that reflects them is sent.
        self._store_meta()

    def getCurrentTerm(self) -> int:  # noqa: N802
        return int(self._meta["current_term"])

    def getVotedForNodeId(self) -> str | None:  # noqa: N802
        voted: str | None = self._meta["voted_for"]
        return voted

    def onOneSecondTimer(self) -> None:  # noqa: N802
        if not self._meta_saved and self.failed is None:
            try:
                self._store_meta()
            except OSError:
                pass  # `failed` is set; raising would only make pysyncobj log it every second

    # --- Ours ----------------------------------------------------------------------------------

    def sync(self) -> None:
        """Make every added or deleted entry durable (one fdatasync for the whole batch).

        Raises OSError if that fails, and again on every later call (see ``failed``).
        """
        if self._dirty and not self._closed:
            with self._failing():
                os.fdatasync(self._fd)
            self._dirty = False
        elif self.failed is not None:
            raise self.failed

    @contextmanager
    def _failing(self) -> Iterator[None]:
        """Refuse I/O once an earlier write failed; remember the first failure."""
        if self.failed is not None:
            raise self.failed
        try:
            yield
        except OSError as e:
            self.failed = e
            logger.critical("%s: a write or fsync failed: %s", self._path, e)
            raise

    def term_of(self, index: int) -> int | None:
        """The term of the entry at Raft `index`, or None if the journal does not hold it."""
        if not self._entries:
            return None
        position = index - self._entries[0][1]
        if not 0 <= position < len(self._entries):
            return None
        return self._entries[position][2]

    @property
    def last_index(self) -> int:
        return self._entries[-1][1] if self._entries else 0

    def close(self) -> None:
        """Sync, save the meta file and close; later calls do nothing."""
        if self._closed:
            return
        if self.failed is None:
            try:
                self.sync()
                if not self._meta_saved:
                    self._store_meta()
            except OSError:
                pass  # logged; `failed` is set
        self._closed = True
        try:
            os.close(self._fd)
        except OSError:
            pass  # only after a failed rewrite, which left no file open

    def _store_meta(self) -> None:
        data = orjson.dumps({"version": META_VERSION, **self._meta})
        with self._failing():
            atomic_write(self._meta_path, data, mode=0o600)
        self._meta_saved = True

    def _rewrite(self, entries: list[Entry]) -> None:
        parts = [FILE_HEADER.pack(MAGIC, FORMAT_VERSION, 0)]
        offsets = []
        end = FILE_HEADER.size
        for command, index, term in entries:
            record = encode_entry(command, index, term)
            parts.append(record)
            offsets.append(end)
            end += len(record)
        with self._failing():
            atomic_write(self._path, b"".join(parts), mode=0o600)
            os.close(self._fd)
            self._fd = os.open(self._path, os.O_RDWR)
        self._entries = list(entries)
        self._offsets = offsets
        self._end = end
        self._dirty = False
