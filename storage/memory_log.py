"""The in-memory twin of :class:`storage.log.Log`: the same interface
(:class:`storage.partition_log.PartitionLog`) and rules, no files.

Batches are kept as the exact bytes the file log would hold, in segments that roll and are
deleted by the same policy (:mod:`storage.log_policy`), so a test written against one behaves
the same against the other (tests/unit/test_log_contract.py runs one suite on both).
``flush()`` just moves the recovery point; nothing is ever offline unless closed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from storage.batch import (
    BatchHeader,
    NewRecord,
    Record,
    build_batch,
    decode_batch,
    read_header,
)
from storage.epoch_cache import LeaderEpochCache
from storage.errors import KafkaStorageError, OffsetOutOfRangeError, RecordTooLargeError
from storage.limits import READ_BYTES_MAX
from storage.log import AppendInfo
from storage.log_config import LogConfig
from storage.log_policy import (
    check_replica_batches,
    retained_segment_count,
    should_roll,
)
from storage.record_reads import LogRead, RecordsRead, records_in
from storage.segment import NO_TIMESTAMP


@dataclass
class MemorySegment:
    """A segment's batches in memory, with the fields tools and tests read of a segment."""

    base_offset: int
    batches: list[bytes] = field(default_factory=list)
    headers: list[BatchHeader] = field(default_factory=list)
    size_bytes: int = 0
    max_timestamp: int = NO_TIMESTAMP
    first_batch_timestamp: int | None = None
    # The lowest next offset: above the last batch's after a truncation into a gap (the log
    # end becomes the truncation offset, as the file log's does).
    end_floor: int = -1

    @property
    def next_offset(self) -> int:
        last = self.headers[-1].next_offset if self.headers else self.base_offset
        return max(last, self.end_floor)

    def add(self, batch: bytes, header: BatchHeader) -> None:
        self.batches.append(batch)
        self.headers.append(header)
        self.size_bytes += header.size
        self.max_timestamp = max(self.max_timestamp, header.max_timestamp)
        if self.first_batch_timestamp is None:
            self.first_batch_timestamp = header.max_timestamp

    def batch_index(self, offset: int) -> int:
        """Index of the first batch whose last offset is >= ``offset`` (len if none)."""
        i = bisect.bisect_right([h.base_offset for h in self.headers], offset) - 1
        i = max(i, 0)
        while i < len(self.headers) and self.headers[i].last_offset < offset:
            i += 1
        return i

    def truncate_at(self, count: int, offset: int) -> None:
        """Keeps the first ``count`` batches, the rest held ``offset`` or came after it: the
        next offset becomes ``offset``, or the removed batch's base when ``offset`` lay
        inside it (as :meth:`storage.segment.Segment.truncate_to`)."""
        if count < len(self.headers):
            offset = min(offset, self.headers[count].base_offset)
        self.end_floor = offset
        del self.batches[count:]
        del self.headers[count:]
        self.size_bytes = sum(h.size for h in self.headers)
        self.max_timestamp = max((h.max_timestamp for h in self.headers), default=NO_TIMESTAMP)
        if not self.headers:
            self.first_batch_timestamp = None


class MemoryLog:
    """A partition log kept in memory, with :class:`storage.log.Log`'s interface."""

    def __init__(
        self,
        config: LogConfig | None = None,
        *,
        directory: Path | None = None,
        recovery_point: int = 0,
        log_start_offset: int = 0,
    ) -> None:
        self.directory = directory if directory is not None else Path("<memory>")
        self._config = config if config is not None else LogConfig()
        self.epoch_cache = LeaderEpochCache(None)
        self._segments = [MemorySegment(log_start_offset)]
        self._log_start = log_start_offset
        self._recovery_point = log_start_offset
        self._high_watermark = log_start_offset
        self._offline: KafkaStorageError | None = None
        self._closed = False

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        *,
        recovery_point: int = 0,
        log_start_offset: int = 0,
    ) -> MemoryLog:
        """A new empty log (nothing to recover in memory), named after ``directory``."""
        return cls(
            config,
            directory=directory,
            recovery_point=recovery_point,
            log_start_offset=log_start_offset,
        )

    # -- state -----------------------------------------------------------------------------

    @property
    def config(self) -> LogConfig:
        return self._config

    def update_config(self, config: LogConfig) -> None:
        self._config = config

    @property
    def log_start_offset(self) -> int:
        return self._log_start

    @property
    def log_end_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    def update_high_watermark(self, offset: int) -> int:
        self._high_watermark = min(max(offset, self._log_start), self.log_end_offset)
        return self._high_watermark

    @property
    def offline(self) -> KafkaStorageError | None:
        return self._offline

    @property
    def size_bytes(self) -> int:
        return sum(s.size_bytes for s in self._segments)

    @property
    def active_segment_base_offset(self) -> int:
        """The base offset of the segment appends go to (it changes when the log rolls)."""
        return self._segments[-1].base_offset

    @property
    def first_segment_base_offset(self) -> int:
        """The base offset of the oldest segment (the log start offset is at or above it)."""
        return self._segments[0].base_offset

    @property
    def segments(self) -> list[MemorySegment]:
        return list(self._segments)

    def _check_usable(self) -> None:
        if self._offline is not None:
            raise self._offline
        if self._closed:
            self._offline = KafkaStorageError("the log is closed", str(self.directory))
            raise self._offline

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
        """As :meth:`storage.log.Log.append_as_leader`."""
        if not records:
            raise ValueError("an append needs at least one record")
        batch = build_batch(
            records,
            base_offset=self.log_end_offset,
            partition_leader_epoch=leader_epoch,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=base_sequence,
            # The topic's compression.type: "producer" (this leader is the producer) and
            # "uncompressed" store the records uncompressed.
            compression=self._config.codec or 0,
            level=self._config.level,
        )
        if len(batch) > self._config.max_message_bytes:
            raise RecordTooLargeError(len(batch), self._config.max_message_bytes)
        self._check_usable()
        header = read_header(batch)
        self._append([batch], [header])
        return AppendInfo(header.base_offset, header.last_offset, header.max_timestamp, len(batch))

    def append_batches(self, data: bytes) -> AppendInfo:
        """As :meth:`storage.log.Log.append_batches`."""
        headers = check_replica_batches(data, self.log_end_offset)
        self._check_usable()
        batches: list[bytes] = []
        pos = 0
        for header in headers:
            batches.append(bytes(data[pos : pos + header.size]))
            pos += header.size
        self._append(batches, headers)
        return AppendInfo(
            headers[0].base_offset,
            headers[-1].last_offset,
            max(h.max_timestamp for h in headers),
            len(data),
        )

    def _append(self, batches: list[bytes], headers: list[BatchHeader]) -> None:
        for batch, header in zip(batches, headers, strict=True):
            active = self._segments[-1]
            if should_roll(
                self._config,
                segment_base_offset=active.base_offset,
                segment_size_bytes=active.size_bytes,
                segment_first_timestamp=active.first_batch_timestamp,
                batch_size_bytes=header.size,
                batch_max_timestamp=header.max_timestamp,
                batch_last_offset=header.last_offset,
            ):
                active.end_floor = header.base_offset  # sealed: it covers up to the next base
                active = MemorySegment(header.base_offset)
                self._segments.append(active)
            active.add(batch, header)
            epoch = header.partition_leader_epoch
            if epoch >= 0 and epoch != self.epoch_cache.latest_epoch:
                self.epoch_cache.assign(epoch, header.base_offset)

    def flush(self) -> int:
        """Everything appended counts as durable at once."""
        self._check_usable()
        self._recovery_point = self.log_end_offset
        return self._recovery_point

    # -- reading ---------------------------------------------------------------------------

    def _segment_for(self, offset: int) -> int:
        bases = [s.base_offset for s in self._segments]
        return max(bisect.bisect_right(bases, offset) - 1, 0)

    def read(self, offset: int, max_bytes: int, max_offset: int | None = None) -> bytes:
        """As :meth:`storage.log.Log.read`."""
        self._check_usable()
        end = self.log_end_offset
        if offset < self._log_start or offset > end:
            raise OffsetOutOfRangeError(offset, self._log_start, end)
        if offset == end or (max_offset is not None and offset >= max_offset):
            return b""
        max_bytes = min(max_bytes, READ_BYTES_MAX)
        # A segment with nothing at or after the offset (a gap at its end) sends the read on.
        for segment in self._segments[self._segment_for(offset) :]:
            i = segment.batch_index(offset)
            if i == len(segment.headers):
                continue
            out: list[bytes] = []
            size = 0
            for batch, header in zip(segment.batches[i:], segment.headers[i:], strict=True):
                if max_offset is not None and header.base_offset >= max_offset:
                    break
                if out and size + header.size > max_bytes:
                    break
                out.append(batch)
                size += header.size
            return b"".join(out)
        return b""

    def read_records(
        self, offset: int, max_bytes: int, max_offset: int | None = None
    ) -> list[Record]:
        """As :meth:`storage.log.Log.read_records`."""
        return self.fetch_records(offset, max_bytes, max_offset).records

    def fetch_records(
        self,
        offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        max_records: int | None = None,
    ) -> RecordsRead:
        """As :meth:`storage.log.Log.fetch_records`."""
        read = self.read_for_records(offset, max_bytes, max_offset)
        return self.records_of(read, max_records, max_bytes)

    def read_for_records(
        self, offset: int, max_bytes: int, max_offset: int | None = None
    ) -> LogRead:
        """As :meth:`storage.log.Log.read_for_records`."""
        data = self.read(offset, max_bytes, max_offset)
        low = max(offset, self._log_start)
        high = self.log_end_offset if max_offset is None else min(max_offset, self.log_end_offset)
        return LogRead(data, offset, low, high, "memory", 0)

    def records_of(
        self, read: LogRead, max_records: int | None = None, max_bytes: int | None = None
    ) -> RecordsRead:
        """As :meth:`storage.log.Log.records_of` (a batch that does not decode raises)."""
        return records_in(
            read.data,
            offset=read.offset,
            low=read.low,
            high=read.high,
            max_records=max_records,
            max_bytes=max_bytes,
        )

    def batch_headers(self, from_offset: int) -> Iterator[BatchHeader]:
        """As :meth:`storage.log.Log.batch_headers` (the headers are in memory already)."""
        self._check_usable()
        end = self.log_end_offset
        if from_offset < self._log_start or from_offset > end:
            raise OffsetOutOfRangeError(from_offset, self._log_start, end)
        found = [h for s in self._segments for h in s.headers if h.last_offset >= from_offset]
        return iter(found)

    def offset_for_timestamp(self, timestamp: int) -> int | None:
        """As :meth:`storage.log.Log.offset_for_timestamp`."""
        self._check_usable()
        for segment in self._segments:
            if segment.max_timestamp < timestamp:
                continue
            for batch, header in zip(segment.batches, segment.headers, strict=True):
                if header.max_timestamp < timestamp or header.last_offset < self._log_start:
                    continue
                for record in decode_batch(batch)[1]:
                    if record.offset >= self._log_start and record.timestamp >= timestamp:
                        return record.offset
        return None

    # -- truncation and retention ----------------------------------------------------------

    def truncate_to(self, offset: int) -> None:
        """As :meth:`storage.log.Log.truncate_to`."""
        if offset < 0:
            raise ValueError(f"cannot truncate to a negative offset ({offset})")
        self._check_usable()
        if offset >= self.log_end_offset:
            self.epoch_cache.truncate_from_end(self.log_end_offset)  # as Log: an empty epoch
            return
        if offset < self._segments[0].base_offset:
            self._segments = [MemorySegment(offset)]
        else:
            i = self._segment_for(offset)
            del self._segments[i + 1 :]
            segment = self._segments[i]
            segment.truncate_at(segment.batch_index(offset), offset)
        new_end = self.log_end_offset
        self._log_start = min(self._log_start, new_end)
        self._recovery_point = min(self._recovery_point, new_end)
        self._high_watermark = min(self._high_watermark, new_end)
        self.epoch_cache.truncate_from_end(new_end)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """As :meth:`storage.log.Log.truncate_fully_and_start_at`."""
        if offset < 0:
            raise ValueError(f"cannot start a log at a negative offset ({offset})")
        self._check_usable()
        self._segments = [MemorySegment(offset)]
        self._log_start = self._recovery_point = self._high_watermark = offset
        self.epoch_cache.clear()

    def delete_retained_segments(self, now_ms: int) -> int:
        """As :meth:`storage.log.Log.delete_retained_segments`."""
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
        if count == len(self._segments):
            self._segments.append(MemorySegment(self.log_end_offset))
        del self._segments[:count]
        self._log_start = max(self._log_start, self._segments[0].base_offset)
        self._recovery_point = max(self._recovery_point, self._log_start)
        self._high_watermark = max(self._high_watermark, self._log_start)
        self.epoch_cache.truncate_from_start(self._log_start)
        return count

    def close(self) -> None:
        self._closed = True

    def delete(self) -> None:
        self._closed = True
        self._segments = [MemorySegment(self.log_end_offset)]
