"""The partition log's interface: what the server calls on one partition's log.

Two classes implement it: :class:`storage.log.Log` (segment files in a directory) and its
in-memory twin :class:`storage.memory_log.MemoryLog`. tests/unit/test_log_contract.py runs one
suite against both through this Protocol, and mypy checks there that both still satisfy it.
Code that only reads, appends, truncates and flushes a log should depend on
:class:`PartitionLog`, not on either class; opening a log (``Log.open``) is not part of it.

Offsets: the log holds [``log_start_offset``, ``log_end_offset``); the high watermark and the
recovery point lie in that range. Offsets strictly increase but need not be dense (Kafka's
compacted logs): a batch may hold fewer records than its offset range (even none), batches
and segments may have gaps between them, and any of these offsets may lie in a gap. A reader
moves on to the last batch's last offset + 1, never to its last record's offset + 1. Every
method raises :class:`~storage.errors.KafkaStorageError` once the log is offline (``offline``
says why).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from storage.batch import BatchHeader, NewRecord, Record
from storage.epoch_cache import LeaderEpochCache
from storage.errors import KafkaStorageError
from storage.log import AppendInfo
from storage.log_config import LogConfig
from storage.record_reads import LogRead, RecordsRead


class SegmentSummary(Protocol):
    """What tools and tests read of one segment, on disk or in memory."""

    @property
    def base_offset(self) -> int: ...
    @property
    def next_offset(self) -> int:
        """The end of the offsets the segment covers: the next segment's base offset for a
        sealed segment (a gap at its end counts as its own), the log end offset for the last
        one; at least the offset after its last batch (its base offset when empty)."""
        ...

    @property
    def size_bytes(self) -> int: ...
    @property
    def max_timestamp(self) -> int: ...


class PartitionLog(Protocol):
    """One partition's log, as the server uses it."""

    @property
    def directory(self) -> Path:
        """The partition directory (a name only, for the in-memory log)."""
        ...

    @property
    def epoch_cache(self) -> LeaderEpochCache:
        """The leader epochs of the log's batches (assign, entries, latest_epoch,
        end_offset_for); appends and truncations keep it in step."""
        ...

    @property
    def config(self) -> LogConfig: ...
    def update_config(self, config: LogConfig) -> None:
        """Uses ``config`` from now on (rolls and retention; nothing written moves)."""
        ...

    @property
    def log_start_offset(self) -> int: ...
    @property
    def log_end_offset(self) -> int:
        """The offset the next appended record gets."""
        ...

    @property
    def recovery_point(self) -> int:
        """Everything below this offset is durable."""
        ...

    @property
    def high_watermark(self) -> int: ...
    def update_high_watermark(self, offset: int) -> int:
        """Sets the high watermark, clamped to [log start offset, log end offset]; returns it."""
        ...

    @property
    def offline(self) -> KafkaStorageError | None:
        """Why the log is offline (every later call raises it), or None."""
        ...

    @property
    def size_bytes(self) -> int: ...
    @property
    def segments(self) -> Sequence[SegmentSummary]:
        """The segments, oldest first (a copy)."""
        ...

    @property
    def active_segment_base_offset(self) -> int:
        """The base offset of the segment appends go to (it changes when the log rolls)."""
        ...

    @property
    def first_segment_base_offset(self) -> int:
        """The base offset of the oldest segment (one deleted counts until its deletion is
        durable): the log start offset is at or above it, and ``log-start-offset-checkpoint``
        names the log only when it is above (Kafka's rule)."""
        ...

    def append_as_leader(
        self,
        records: Sequence[NewRecord],
        leader_epoch: int,
        *,
        producer_id: int = ...,
        producer_epoch: int = ...,
        base_sequence: int = ...,
    ) -> AppendInfo:
        """Appends ``records`` as one batch at the log end, stamped with ``leader_epoch``;
        :class:`~storage.errors.RecordTooLargeError` (nothing written) past
        ``max.message.bytes``."""
        ...

    def append_batches(self, data: bytes) -> AppendInfo:
        """Appends a leader's whole batches with the offsets they carry (the replica path);
        all of ``data`` is checked before any byte is written. The first batch may start
        above the log end offset (a gap), never below it
        (:class:`~storage.errors.UnexpectedAppendOffsetError`)."""
        ...

    def flush(self) -> int:
        """Makes everything appended durable; returns the new recovery point."""
        ...

    def read(self, offset: int, max_bytes: int, max_offset: int | None = None) -> bytes:
        """Whole batches from the first whose last offset is >= ``offset`` (the next one when
        ``offset`` lies in a gap, in a later segment if need be): at most ``max_bytes`` but
        at least one batch, none whose base offset is >= ``max_offset``; ``b""`` when no
        batch is left before the log end (or ``max_offset``).
        :class:`~storage.errors.OffsetOutOfRangeError` outside [log start, log end]."""
        ...

    def read_records(
        self, offset: int, max_bytes: int, max_offset: int | None = None
    ) -> list[Record]:
        """:meth:`read`, decoded, keeping the records in [``offset``, ``max_offset``)."""
        ...

    def fetch_records(
        self,
        offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        max_records: int | None = None,
    ) -> RecordsRead:
        """:meth:`read_records` (at most ``max_records``) and the offset to read from next:
        past the batches read (gaps and empty batches included), or ``max_offset`` (the log
        end when None) when nothing is left below it; never below ``offset``."""
        ...

    def read_for_records(
        self, offset: int, max_bytes: int, max_offset: int | None = None
    ) -> LogRead:
        """:meth:`fetch_records`' read, not decoded (under the log's lock)."""
        ...

    def records_of(
        self, read: LogRead, max_records: int | None = None, max_bytes: int | None = None
    ) -> RecordsRead:
        """:meth:`fetch_records`' decoding of ``read`` (no lock: a worker thread may do it),
        the records' decompressed bytes bounded by ``max_bytes`` if given."""
        ...

    def batch_headers(self, from_offset: int) -> Iterator[BatchHeader]:
        """The header of every batch from the one holding ``from_offset`` to the log end,
        read a bounded chunk at a time (the producer state is rebuilt from them).
        :class:`~storage.errors.OffsetOutOfRangeError` at the call, outside [log start,
        log end]. Not a snapshot: batches appended meanwhile are included."""
        ...

    def offset_for_timestamp(self, timestamp: int) -> int | None:
        """The first offset whose record's timestamp is >= ``timestamp``; None if none is."""
        ...

    def truncate_to(self, offset: int) -> None:
        """Removes every record at or after ``offset`` (a follower's divergent tail): the
        log end becomes ``offset`` (also inside a gap), or the base offset of the batch
        holding it, which goes whole; the epoch cache, recovery point and high watermark come
        down to the new log end."""
        ...

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Empties the log and restarts it at ``offset``, which may be past the log end (a
        follower behind its leader's log start): the log start, log end, recovery point and
        high watermark become ``offset``, and the epoch cache is cleared."""
        ...

    def delete_retained_segments(self, now_ms: int) -> int:
        """Deletes the old segments retention lets go (only those wholly below the high
        watermark; by ``retention.ms`` and ``retention.bytes`` only when ``cleanup.policy``
        has ``delete``, wholly below the log start offset under any) and moves the log start
        offset; returns how many went."""
        ...

    def close(self) -> None:
        """Flushes and closes; later calls raise."""
        ...

    def delete(self) -> None:
        """Closes without flushing and removes the log (topic deletion)."""
        ...
