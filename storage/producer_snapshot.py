"""Producer state snapshots: Kafka's ``<offset>.snapshot`` files, byte for byte.

A snapshot records the idempotent producers of a partition as they stood after every batch
below its offset (the file name: the offset, 20 digits, then ``.snapshot``; Kafka's
``LogFileUtils.producerSnapshotFile``). Opening a partition loads the latest snapshot at or
below the log end and replays only the batch headers from there, instead of every header of
the log. Kafka takes one at each segment roll (named by the new segment's base offset) and at
clean shutdown (named by the log end offset).

The file is Kafka's ``ProducerSnapshot`` message, version 1 (``ProducerStateManager.
writeSnapshot``/``readSnapshot``, storage/src/main/resources/message/ProducerSnapshot.json),
all integers big-endian::

    offset  size  field
    0       2     version                  int16, 1
    2       4     crc                      uint32, CRC-32C (Castagnoli) of bytes 6..end
    6       4     entry_count              int32, the entries that follow
    10      46 x entry_count entries, one per producer, in no particular order:

    +0      8     producer_id              int64
    +8      2     producer_epoch           int16, the producer's current epoch
    +10     4     last_sequence            int32, last sequence of its last batch (-1: none)
    +14     8     last_offset              int64, last offset of its last batch (-1: none)
    +22     4     offset_delta             int32, last offset - first offset of that batch
    +26     8     timestamp                int64, largest timestamp of that batch (-1: unknown)
    +34     4     coordinator_epoch        int32, transactions only (-1: none)
    +38     8     current_txn_first_offset int64, transactions only (-1: none)

Only each producer's LAST batch is kept (Kafka keeps five in memory, one in a snapshot), so a
retry of an older in-flight batch right after a reload is answered OUT_OF_ORDER_SEQUENCE
instead of as a duplicate: safe, nothing is written twice. The first sequence of the last batch
is ``last_sequence - offset_delta`` (wrapping at 2**31), as Kafka's ``BatchMetadata.firstSeq``.

:func:`encode` and :func:`decode` are the pure format; :func:`decode` raises one error,
:class:`~storage.errors.CorruptSnapshotError`, for every byte string that is not a snapshot,
saying what it expected and what it found. :class:`ProducerSnapshots` handles the files of one
partition directory: a corrupt snapshot is logged, deleted and passed over, never fatal.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import crc32c as _crc32c

from storage.durable import atomic_write, fsync_dir
from storage.errors import CorruptSnapshotError, KafkaStorageError
from storage.limits import PRODUCER_SNAPSHOT_BYTES_MAX

log = logging.getLogger(__name__)

# version, crc.
_HEADER = struct.Struct(">hI")
# entry_count: the first field the CRC covers.
_COUNT = struct.Struct(">i")
# producer_id, producer_epoch, last_sequence, last_offset, offset_delta, timestamp,
# coordinator_epoch, current_txn_first_offset.
_ENTRY = struct.Struct(">qhiqiqiq")

VERSION = 1
CRC_OFFSET = struct.calcsize(">h")  # 2
CRC_START = _HEADER.size  # 6: the CRC covers everything from the entry count on
ENTRIES_OFFSET = CRC_START + _COUNT.size  # 10
ENTRY_SIZE = _ENTRY.size  # 46

SNAPSHOT_SUFFIX = ".snapshot"
_SNAPSHOT_FILE = re.compile(r"^(\d{20})\.snapshot$")

NO_VALUE = -1  # Kafka's -1 for "no batch", "no timestamp", "no transaction"
_INT16_MAX = 2**15 - 1
_INT32_MAX = 2**31 - 1
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ProducerSnapshotEntry:
    """One producer in a snapshot: its epoch and its last batch (see the module's layout).

    Checks itself: every field fits its integer type, ids and epochs are not negative, and a
    batch is either absent (last offset and last sequence -1, as in a Kafka entry that only
    carries an epoch) or has a first offset (``last_offset - offset_delta``) >= 0.
    """

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_offset: int
    offset_delta: int
    timestamp: int = NO_VALUE
    coordinator_epoch: int = NO_VALUE
    current_txn_first_offset: int = NO_VALUE

    def __post_init__(self) -> None:
        _in_range("producer id", self.producer_id, 0, _INT64_MAX)
        _in_range("producer epoch", self.producer_epoch, 0, _INT16_MAX)
        _in_range("last sequence", self.last_sequence, NO_VALUE, _INT32_MAX)
        _in_range("last offset", self.last_offset, NO_VALUE, _INT64_MAX)
        _in_range("offset delta", self.offset_delta, 0, _INT32_MAX)
        _in_range("timestamp", self.timestamp, _INT64_MIN, _INT64_MAX)
        _in_range("coordinator epoch", self.coordinator_epoch, NO_VALUE, _INT32_MAX)
        _in_range(
            "current transaction first offset", self.current_txn_first_offset, NO_VALUE, _INT64_MAX
        )
        if self.last_offset == NO_VALUE:
            if self.last_sequence != NO_VALUE or self.offset_delta != 0:
                raise ValueError(
                    f"an entry without a batch (last offset -1) has last sequence -1 and offset "
                    f"delta 0, found {self.last_sequence} and {self.offset_delta}"
                )
        else:
            if self.last_sequence == NO_VALUE:
                raise ValueError(
                    f"an entry with a batch (last offset {self.last_offset}) has a last "
                    "sequence >= 0, found -1"
                )
            if self.offset_delta > self.last_offset:
                raise ValueError(
                    f"offset delta {self.offset_delta} puts the batch's first offset below 0 "
                    f"(last offset {self.last_offset})"
                )

    @property
    def has_batch(self) -> bool:
        """False for an entry that carries only an epoch (Kafka writes those for
        transactional producers; we never do)."""
        return self.last_offset != NO_VALUE

    @property
    def first_offset(self) -> int:
        """First offset of the last batch."""
        return self.last_offset - self.offset_delta

    @property
    def first_sequence(self) -> int:
        """First sequence of the last batch: Kafka's ``DefaultRecordBatch.decrementSequence``
        (sequences wrap from 0 to 2**31 - 1)."""
        if not self.has_batch:
            return NO_VALUE
        return (self.last_sequence - self.offset_delta) & _INT32_MAX


def _in_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], found {value}")


# -- the format --------------------------------------------------------------------------------


def encode(entries: Iterable[ProducerSnapshotEntry]) -> bytes:
    """The bytes of a snapshot holding ``entries`` (in the order given). Raises ValueError for
    two entries of one producer id, or more entries than fit in
    :data:`~storage.limits.PRODUCER_SNAPSHOT_BYTES_MAX`."""
    entries = list(entries)
    size = ENTRIES_OFFSET + ENTRY_SIZE * len(entries)
    if size > PRODUCER_SNAPSHOT_BYTES_MAX:
        raise ValueError(
            f"{len(entries)} producers make a {size}-byte snapshot, larger than "
            f"{PRODUCER_SNAPSHOT_BYTES_MAX} bytes"
        )
    ids = {e.producer_id for e in entries}
    if len(ids) != len(entries):
        raise ValueError("a snapshot holds one entry per producer id; some id is repeated")
    out = bytearray(size)
    _COUNT.pack_into(out, CRC_START, len(entries))
    position = ENTRIES_OFFSET
    for e in entries:
        _ENTRY.pack_into(
            out,
            position,
            e.producer_id,
            e.producer_epoch,
            e.last_sequence,
            e.last_offset,
            e.offset_delta,
            e.timestamp,
            e.coordinator_epoch,
            e.current_txn_first_offset,
        )
        position += ENTRY_SIZE
    crc = int(_crc32c.crc32c(memoryview(out)[CRC_START:]))
    _HEADER.pack_into(out, 0, VERSION, crc)
    return bytes(out)


def decode(data: bytes, path: str) -> list[ProducerSnapshotEntry]:
    """The entries of the snapshot ``data`` (read from ``path``, named in errors), in file
    order. Raises :class:`CorruptSnapshotError` for anything that is not a whole, valid
    version 1 snapshot: too large, too short, another version, an entry count that does not
    match the length, a CRC mismatch, an entry out of range, a producer id twice."""
    size = len(data)
    if size > PRODUCER_SNAPSHOT_BYTES_MAX:
        raise CorruptSnapshotError(
            f"expected at most {PRODUCER_SNAPSHOT_BYTES_MAX} bytes, found {size}", path
        )
    if size < ENTRIES_OFFSET:
        raise CorruptSnapshotError(
            f"expected at least {ENTRIES_OFFSET} bytes (version, CRC, entry count), found {size}",
            path,
        )
    version, stored_crc = _HEADER.unpack_from(data)
    if version != VERSION:
        raise CorruptSnapshotError(f"expected version {VERSION}, found {version}", path, 0)
    (count,) = _COUNT.unpack_from(data, CRC_START)
    if count < 0:
        raise CorruptSnapshotError(f"expected an entry count >= 0, found {count}", path, CRC_START)
    body = size - ENTRIES_OFFSET
    if body != count * ENTRY_SIZE:
        raise CorruptSnapshotError(
            f"expected {count} entries of {ENTRY_SIZE} bytes ({count * ENTRY_SIZE} bytes) after "
            f"the entry count, found {body} bytes",
            path,
            ENTRIES_OFFSET,
        )
    computed = int(_crc32c.crc32c(memoryview(data)[CRC_START:]))
    if computed != stored_crc:
        raise CorruptSnapshotError(
            f"expected CRC-32C {stored_crc:#010x}, computed {computed:#010x}", path, CRC_OFFSET
        )
    entries: list[ProducerSnapshotEntry] = []
    seen: set[int] = set()
    for i, fields in enumerate(_ENTRY.iter_unpack(memoryview(data)[ENTRIES_OFFSET:])):
        position = ENTRIES_OFFSET + i * ENTRY_SIZE
        try:
            entry = ProducerSnapshotEntry(*fields)
        except ValueError as e:
            raise CorruptSnapshotError(f"entry {i}: {e}", path, position) from None
        if entry.producer_id in seen:
            raise CorruptSnapshotError(
                f"entry {i}: expected one entry per producer id, found producer "
                f"{entry.producer_id} again",
                path,
                position,
            )
        seen.add(entry.producer_id)
        entries.append(entry)
    return entries


def check_below(entries: Sequence[ProducerSnapshotEntry], offset: int, path: str) -> None:
    """Raises :class:`CorruptSnapshotError` unless every batch in ``entries`` lies below
    ``offset``, the snapshot's own offset (it describes the log below it, nothing more)."""
    for e in entries:
        if e.last_offset >= offset:
            raise CorruptSnapshotError(
                f"expected every batch below the snapshot's offset {offset}, found producer "
                f"{e.producer_id}'s last batch ending at offset {e.last_offset}",
                path,
            )


# -- the files of a partition directory --------------------------------------------------------


def snapshot_file_name(offset: int) -> str:
    """Kafka's name for the snapshot at ``offset``: 20 digits, then ``.snapshot``."""
    if offset < 0:
        raise ValueError(f"a snapshot offset is >= 0, got {offset}")
    return f"{offset:020d}{SNAPSHOT_SUFFIX}"


def snapshot_offset_of(name: str) -> int | None:
    """The offset a snapshot file's name carries, or None for any other file name."""
    match = _SNAPSHOT_FILE.match(name)
    return int(match[1]) if match is not None else None


class ProducerSnapshots:
    """The producer snapshots of one partition directory (Kafka's ``SnapshotFile`` handling in
    ``ProducerStateManager``). Stateless: every call looks at the directory.

    Errors: a snapshot that does not parse is never fatal (:meth:`latest_at_or_below` logs it,
    deletes it and goes on with an older one); an I/O error reading or writing one raises
    :class:`KafkaStorageError` naming the file, as the log's own I/O errors do.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path(self, offset: int) -> Path:
        return self.directory / snapshot_file_name(offset)

    def offsets(self) -> list[int]:
        """The offsets of the snapshot files present, ascending (none if the directory is
        missing). Temporary files of an interrupted write are not snapshots."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise KafkaStorageError(f"cannot list the snapshots: {e}", str(self.directory)) from e
        found = (snapshot_offset_of(name) for name in names)
        return sorted(offset for offset in found if offset is not None)

    def read(self, offset: int) -> list[ProducerSnapshotEntry]:
        """The entries of the snapshot at ``offset``. Raises :class:`CorruptSnapshotError`
        (it does not parse, or names a batch at or past its offset), FileNotFoundError, or
        :class:`KafkaStorageError` for another I/O error."""
        path = self.path(offset)
        try:
            with open(path, "rb") as f:
                # One byte past the cap, so that a larger file is seen as one without reading
                # all of it.
                data = f.read(PRODUCER_SNAPSHOT_BYTES_MAX + 1)
        except FileNotFoundError:
            raise
        except OSError as e:
            raise KafkaStorageError(f"cannot read the producer snapshot: {e}", str(path)) from e
        entries = decode(data, str(path))
        check_below(entries, offset, str(path))
        return entries

    def latest_at_or_below(self, offset: int) -> tuple[int, list[ProducerSnapshotEntry]] | None:
        """(offset, entries) of the latest readable snapshot at or below ``offset`` (the log
        end offset, on open), or None if there is none. Corrupt snapshots met on the way are
        logged at WARNING and deleted (Kafka's rule), so the next open does not meet them;
        unreadable ones (an I/O error) are logged and passed over. Never raises for a bad
        snapshot: the worst case is None, and the caller reads the whole log."""
        for candidate in reversed(self.offsets()):
            if candidate > offset:
                continue
            try:
                return candidate, self.read(candidate)
            except FileNotFoundError:
                continue  # deleted meanwhile
            except CorruptSnapshotError as e:
                log.warning("%s: deleting a corrupt producer snapshot: %s", self.directory, e)
                try:
                    self._unlink(candidate)
                except KafkaStorageError as failure:
                    log.warning("%s: %s", self.directory, failure)
            except KafkaStorageError as e:
                # A snapshot is a cache of what the log says: an unreadable one is passed
                # over; the log's own files report a failing disk when they are read.
                log.warning("%s: skipping a producer snapshot: %s", self.directory, e)
        return None

    def write(
        self, offset: int, entries: Sequence[ProducerSnapshotEntry], *, durable: bool = True
    ) -> Path:
        """Writes the snapshot at ``offset`` (replacing one already there) through
        :func:`storage.durable.atomic_write`; returns its path.

        Every batch in ``entries`` must lie below ``offset`` (ValueError otherwise: the caller
        took the snapshot at the wrong time). With ``durable=False`` nothing is fsynced: after
        a power cut the file may be missing, empty or torn, which its reader treats as no
        snapshot (CRC), so a snapshot at a segment roll need not wait for the disk.
        """
        if offset < 0:
            raise ValueError(f"a snapshot offset is >= 0, got {offset}")
        for e in entries:
            if e.last_offset >= offset:
                raise ValueError(
                    f"a snapshot at offset {offset} cannot hold producer {e.producer_id}'s "
                    f"batch ending at offset {e.last_offset}"
                )
        data = encode(entries)
        path = self.path(offset)
        try:
            atomic_write(path, data, durable=durable)
        except OSError as e:
            raise KafkaStorageError(f"cannot write the producer snapshot: {e}", str(path)) from e
        return path

    def delete_above(self, offset: int) -> list[int]:
        """Deletes the snapshots above ``offset`` (call it with the truncation offset BEFORE
        truncating the log: they describe records that are going) and returns their offsets.

        The deletion is made durable (the directory is fsynced) before this returns: were a
        deleted snapshot to come back after a power cut while the log was rewritten past it,
        it would describe records that are not there."""
        doomed = [o for o in self.offsets() if o > offset]
        for o in doomed:
            self._unlink(o)
        if doomed:
            self._fsync_directory()
        return doomed

    def delete_below(self, offset: int) -> list[int]:
        """Retention: deletes the snapshots below ``offset`` (the new log start offset) except
        the latest one at or below it, and returns their offsets.

        Kafka deletes the snapshot named by each deleted segment's base offset, which keeps
        the one at the new first segment's base; keeping the latest at or below the log start
        is the same whenever snapshots are taken at rolls, and still leaves one to load when
        the log start lies inside a segment. Not fsynced: an old snapshot that comes back is
        still true of the log below it, merely older than the one kept."""
        below = [o for o in self.offsets() if o <= offset]
        doomed = below[:-1]
        for o in doomed:
            self._unlink(o)
        return doomed

    def delete_all(self) -> list[int]:
        """Deletes every snapshot (a log restarted at another offset) and returns their
        offsets; durable as :meth:`delete_above`."""
        return self.delete_above(-1)

    def _unlink(self, offset: int) -> None:
        path = self.path(offset)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise KafkaStorageError(f"cannot delete the producer snapshot: {e}", str(path)) from e

    def _fsync_directory(self) -> None:
        try:
            fsync_dir(self.directory)
        except OSError as e:
            raise KafkaStorageError(f"fsync failed: {e}", str(self.directory)) from e
