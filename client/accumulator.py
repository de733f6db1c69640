"""The producer's pure core: record sizes as Kafka counts them, per-partition batches, the
sticky partitioner and the retry backoff. No I/O, no clock (times are arguments), no asyncio.

Sizes (Kafka's ``DefaultRecord.sizeInBytes``): a record in a v2 batch takes its length varint
plus ``attributes`` (1) + timestamp delta (varlong) + offset delta (varint) + key length
(varint, -1 for null) + key + value length + value + header count + each header's name
length, name, value length and value, all varints zigzag-encoded (see storage/batch.py). A
batch is ``RECORD_BATCH_OVERHEAD`` (61) bytes of header plus its records; a record fits in a
batch while the total stays within ``batch.size`` (Kafka's ``MemoryRecordsBuilder.hasRoomFor``);
a record larger than ``batch.size`` gets a batch of its own.

Batches (Kafka's ``RecordAccumulator``): records of one partition append to the last batch of
its queue, a new batch starting when it is full. A partition is *ready* when its first batch
is full, has waited ``linger.ms``, is due again after a backoff, or when the producer flushes
or closes. :meth:`Accumulator.drain` takes the whole queue (up to ``max.request.size`` bytes and
the node's record limit per request) as one :class:`Batch`: over HTTP every request costs a
round trip and, with acks=all, a replication round, so a partition's ready batches travel
together as Kafka's drain packs a node's batches into one request (here as one v2 record
batch: a produce body holds exactly one). Joined batches take offset and timestamp deltas
counted from the first one's, which can make a record's varints longer: ``wire_size`` is then
an upper bound of the built batch's bytes (:func:`joined_growth`), so ``max.request.size``
is never exceeded. A batch is built when first sent and retried as it is, so the node
recognises a retried idempotent batch (same producer id, epoch and sequences in its header).

Sticky partitioner (KIP-794, Kafka's ``BuiltInPartitioner``): records without a key go to one
partition until ``batch.size`` bytes went there (twice that at most), then to another picked at
random among the partitions with a leader, weighted against long queues when adaptive
partitioning is on.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any

from client.batches import NO_HEADERS

# Kafka's DefaultRecordBatch.RECORD_BATCH_OVERHEAD: the v2 batch header.
RECORD_BATCH_OVERHEAD = 61
# Kafka's ExponentialBackoff for retry.backoff.ms: the multiplier and the jitter.
BACKOFF_MULTIPLIER = 2
BACKOFF_JITTER = 0.2
# A run of send_many's records this long or longer, all of one size, is appended by
# Accumulator._append_alike; shorter ones by the loop (zip's setup would cost more).
UNIFORM_RUN_RECORDS_MIN = 8

Header = tuple[str, bytes | None]


def varint_size(value: int) -> int:
    """Bytes of ``value`` as a zigzag varint (or varlong)."""
    # The common sizes first: this runs a few times for every record sent.
    if -64 <= value < 64:
        return 1
    if -8192 <= value < 8192:
        return 2
    zigzag = ((value << 1) ^ (value >> 63)) >> 14
    size = 2
    while zigzag:
        zigzag >>= 7
        size += 1
    return size


def payload_size(key_len: int | None, value_len: int | None, headers: Sequence[Header]) -> int:
    """The bytes of a record's key, value and headers with their length varints (None: a
    null key or value): the part of its size that does not depend on its batch."""
    size = 1 if key_len is None else varint_size(key_len) + key_len
    size += 1 if value_len is None else varint_size(value_len) + value_len
    size += varint_size(len(headers))
    for name, header_value in headers:
        encoded = len(name.encode("utf-8"))
        size += varint_size(encoded) + encoded
        size += 1 if header_value is None else varint_size(len(header_value)) + len(header_value)
    return size


def record_size(offset_delta: int, timestamp_delta: int, payload: int) -> int:
    """The bytes a record takes in a v2 batch, length prefix included (DefaultRecord), from
    its :func:`payload_size`, offset delta and timestamp delta."""
    body = 1 + varint_size(timestamp_delta) + varint_size(offset_delta) + payload
    return varint_size(body) + body


def joined_growth(first: Batch, following: Batch) -> int:
    """The most bytes any record of ``following`` can grow by when joined behind ``first``:
    its offset delta (at most the joined count - 1) and timestamp delta (from ``first``'s base
    timestamp) may take longer varints than within its own batch, where each took one byte at
    least, and its length varint may then take one more."""
    last_offset = len(first.records) + len(following.records) - 1
    base = first.base_timestamp
    timestamp_delta = max(abs(following.max_timestamp - base), abs(following.min_timestamp - base))
    growth = varint_size(last_offset) - 1 + varint_size(timestamp_delta) - 1
    return growth + 1 if growth else 0


def backoff_ms(attempt: int, base_ms: int, max_ms: int, rng: random.Random) -> float:
    """Kafka's retry backoff before retry number ``attempt`` (0 for the first retry):
    ``base * 2**attempt`` with +-20% jitter, never above ``max_ms``."""
    if base_ms <= 0:
        return 0.0
    term = float(base_ms) * float(BACKOFF_MULTIPLIER) ** min(attempt, 32)
    return min(float(max_ms), term * rng.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER))


# One record waiting for its acknowledgement: (its key and value as bytes or None, its headers
# as client/batches.py takes them, its bytes in the batch format, its timestamp, and the
# driver's future and callback). A tuple: one is made for every record sent, and a tuple is
# the cheapest to make.
PendingRecord = tuple[bytes | None, bytes | None, list[Header], int, int, Any, Any]
KEY, VALUE, HEADERS, SIZE, TIMESTAMP, FUTURE, CALLBACK = range(7)
# A run of one send_many group's records in a batch: (position in the batch's records, the
# group, the first record's index in the group, how many records).
GroupRun = tuple[int, Any, int, int]


def runs_within(runs: list[GroupRun], start: int, end: int) -> list[GroupRun]:
    """The parts of ``runs`` over the positions ``start:end``, counted from ``start`` (the
    runs of a batch cut out of a larger one)."""
    within: list[GroupRun] = []
    for position, group, first, count in runs:
        low, high = max(position, start), min(position + count, end)
        if low < high:
            within.append((low - start, group, first + low - position, high - low))
    return within


@dataclass(eq=False)
class Batch:
    """Records of one partition that travel (and are retried) together."""

    topic: str
    partition: int
    created_s: float
    records: list[PendingRecord] = field(default_factory=list)
    size: int = RECORD_BATCH_OVERHEAD  # as appended: what buffer.memory counts
    base_timestamp: int = 0  # the first record's timestamp (deltas are counted from it)
    # The records' smallest and largest timestamps (a caller may give any timestamp).
    min_timestamp: int = 0
    max_timestamp: int = 0
    # The built batch's bytes, or an upper bound of them once other batches were joined to
    # this one (see the module text).
    wire_size: int = RECORD_BATCH_OVERHEAD
    full: bool = False
    # Set when first sent: the idempotent producer's id, epoch and first sequence.
    producer_id: int | None = None
    producer_epoch: int = 0
    base_sequence: int | None = None
    attempts: int = 0
    unreachable: int = 0  # attempts that found no connection (they use up no retry)
    retry_at_s: float = 0.0
    last_error: BaseException | None = None
    # The request's body (one record batch), built when first sent and kept so that a retry
    # sends the same bytes; dropped when the batch moves to a new producer id.
    body: bytes | None = None
    # The send_many runs among the records, in order: (position of the first in ``records``,
    # the run's group, the first's index in the run, how many). Every record whose future
    # slot holds a group is in exactly one: the sender settles each at once, not record by
    # record (client/record_results.py).
    group_runs: list[GroupRun] = field(default_factory=list)

    @property
    def record_bytes(self) -> int:
        """The bytes of the records, without the batch header (what buffer.memory counts)."""
        return self.size - RECORD_BATCH_OVERHEAD

    @property
    def sent(self) -> bool:
        return self.base_sequence is not None or self.attempts > 0


class Accumulator:
    """Per-partition queues of batches (see the module text); counts the bytes it holds."""

    def __init__(self, batch_size: int, linger_s: float) -> None:
        self.batch_size = max(batch_size, 1)
        self.linger_s = linger_s
        self.queues: dict[tuple[str, int], deque[Batch]] = {}
        self.flushing = False

    def append(
        self,
        topic: str,
        partition: int,
        payload: int,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[Header],
        future: Any,
        callback: Any,
        now_s: float,
    ) -> tuple[int, Batch, bool]:
        """Adds a record of ``payload`` bytes (:func:`payload_size`) to its partition's last
        batch, or a new one; returns the record's size, its batch, and whether a batch was
        started or filled (the sender has something new to do)."""
        queue = self.queues.get((topic, partition))
        if queue is None:
            queue = self.queues[(topic, partition)] = deque()
        last = queue[-1] if queue else None
        news = False
        if last is not None and not last.full and not last.sent:
            # record_size() inline, the common one-byte deltas first: this runs for every
            # record sent.
            delta = timestamp - last.base_timestamp
            body = payload + (2 if -64 <= delta < 64 else 1 + varint_size(delta))
            count = len(last.records)
            body += 1 if count < 64 else varint_size(count)
            size = body + (1 if body < 64 else 2 if body < 8192 else varint_size(body))
            if last.size + size > self.batch_size:
                last = None
        else:
            last = None
        if last is None:
            # A new batch: the record is its first, whatever its size.
            last = Batch(
                topic,
                partition,
                now_s,
                base_timestamp=timestamp,
                min_timestamp=timestamp,
                max_timestamp=timestamp,
            )
            queue.append(last)
            size = record_size(0, 0, payload)
            news = True
        elif timestamp > last.max_timestamp:
            last.max_timestamp = timestamp
        elif timestamp < last.min_timestamp:
            last.min_timestamp = timestamp
        last.records.append((key, value, headers, size, timestamp, future, callback))
        last.size += size
        last.wire_size += size
        if last.size >= self.batch_size:
            last.full = news = True
        return size, last, news

    def append_run(
        self,
        topic: str,
        partition: int,
        payloads: list[int],
        values: list[bytes | None],
        start: int,
        end: int,
        timestamp: int,
        group: Any,
        now_s: float,
    ) -> tuple[int, int, Batch, bool]:
        """:meth:`append` of the keyless, headerless records ``start:end`` of a run (their
        payload sizes and values; the future slot holds ``group``, the callback slot each
        record's index), all stamped ``timestamp``, until one starts or fills a batch;
        returns (the index after the last record appended, their bytes, the last batch,
        whether a batch was started or filled). The same sizes as :meth:`append`, in one
        loop; the batch's ``group_runs`` names the records appended."""
        after, total, batch, news = self._append_run(
            topic, partition, payloads, values, start, end, timestamp, group, now_s
        )
        # Every record appended went to ``batch`` (the first may have started it), last.
        count = after - start
        position = len(batch.records) - count
        runs = batch.group_runs
        if runs:
            last_position, last_group, last_first, last_count = runs[-1]
            if (
                last_group is group
                and last_position + last_count == position
                and last_first + last_count == start
            ):
                runs[-1] = (last_position, group, last_first, last_count + count)
                return after, total, batch, news
        runs.append((position, group, start, count))
        return after, total, batch, news

    def _append_run(
        self,
        topic: str,
        partition: int,
        payloads: list[int],
        values: list[bytes | None],
        start: int,
        end: int,
        timestamp: int,
        group: Any,
        now_s: float,
    ) -> tuple[int, int, Batch, bool]:
        size, batch, news = self.append(
            topic,
            partition,
            payloads[start],
            timestamp,
            None,
            values[start],
            NO_HEADERS,
            group,
            start,
            now_s,
        )
        total = first_size = size
        index = start + 1
        if news:
            return index, total, batch, news
        # The run's timestamp is within the batch's range (append() counted it), but the batch
        # may have started earlier: its delta is the same for every record of the run.
        delta = timestamp - batch.base_timestamp
        framing = 1 + (1 if -64 <= delta < 64 else varint_size(delta))  # attributes, delta
        records = batch.records
        limit = self.batch_size
        no_headers = NO_HEADERS
        if end - index >= UNIFORM_RUN_RECORDS_MIN:
            rest = payloads[index:end]
            if rest.count(rest[0]) == len(rest):
                return self._append_alike(
                    batch, rest[0], framing, values, index, end, timestamp, group, total
                )
        while index < end:
            payload = payloads[index]
            count = len(records)
            body = payload + framing + (1 if count < 64 else varint_size(count))
            size = body + (1 if body < 64 else 2 if body < 8192 else varint_size(body))
            if batch.size + size > limit:
                break
            records.append((None, values[index], no_headers, size, timestamp, group, index))
            batch.size += size
            total += size
            index += 1
            if batch.size >= limit:
                batch.full = True
                batch.wire_size += total - first_size
                return index, total, batch, True
        batch.wire_size += total - first_size
        return index, total, batch, False

    def _append_alike(
        self,
        batch: Batch,
        payload: int,
        framing: int,
        values: list[bytes | None],
        index: int,
        end: int,
        timestamp: int,
        group: Any,
        total: int,
    ) -> tuple[int, int, Batch, bool]:
        """The rest of :meth:`append_run` when records ``index:end`` all have ``payload``
        bytes (the usual run of ``send_many``): a record's size then changes only where its
        offset delta takes one more byte (at 64, 8,192, ... records), so the records that fit
        are counted per stretch of one size, and their tuples made by ``zip`` in C rather than
        one by one (the loop was a fifth of the producer's CPU). The same records, sizes and
        batch state as the loop."""
        first_size = total
        count = len(batch.records)
        room = self.batch_size - batch.size
        left = end - index
        sizes: list[Iterable[int]] = []
        while left:
            width = 1 if count < 64 else varint_size(count)
            stretch = min(left, (1 << (7 * width - 1)) - count)  # records of this width
            body = payload + framing + width
            size = body + (1 if body < 64 else 2 if body < 8192 else varint_size(body))
            fits = min(stretch, room // size)
            if fits:
                sizes.append(repeat(size, fits))
                count += fits
                left -= fits
                room -= fits * size
            if fits < stretch:
                break  # the next record does not fit: the caller starts a batch for it
        stop = end - left
        batch.records.extend(
            zip(
                repeat(None),
                values[index:stop],
                repeat(NO_HEADERS),
                chain.from_iterable(sizes),
                repeat(timestamp),
                repeat(group),
                range(index, stop),
            )
        )
        added = self.batch_size - room - batch.size
        batch.size += added
        total += added
        batch.wire_size += total - first_size
        if batch.size >= self.batch_size:
            batch.full = True
            return stop, total, batch, True
        return stop, total, batch, False

    def queue_length(self, topic: str, partition: int) -> int:
        queue = self.queues.get((topic, partition))
        return 0 if queue is None else len(queue)

    def ready(self, now_s: float) -> tuple[list[tuple[str, int]], float | None]:
        """The partitions whose first batch may leave now, and the seconds until the next
        one may (None: nothing waits)."""
        ready: list[tuple[str, int]] = []
        wait: float | None = None
        for tp, queue in self.queues.items():
            if not queue:
                continue
            first = queue[0]
            if first.sent:
                due = first.retry_at_s
            elif first.full or len(queue) > 1 or self.flushing:
                due = now_s
            else:
                due = first.created_s + self.linger_s
            if due <= now_s:
                ready.append(tp)
            else:
                wait = due - now_s if wait is None else min(wait, due - now_s)
        return ready, wait

    def drain(self, topic: str, partition: int, max_bytes: int, max_records: int) -> Batch:
        """Takes the partition's first batch; a batch never sent takes along the fresh batches
        behind it while the result stays within ``max_bytes`` (its ``wire_size``, an upper
        bound of the batch it will be built into) and ``max_records``."""
        queue = self.queues[(topic, partition)]
        first = queue.popleft()
        if first.sent:
            return first
        while queue and not queue[0].sent:
            following = queue[0]
            count = len(first.records)
            wire_size = (
                first.wire_size
                + following.wire_size
                - RECORD_BATCH_OVERHEAD
                + len(following.records) * joined_growth(first, following)
            )
            if wire_size > max_bytes or count + len(following.records) > max_records:
                break
            queue.popleft()
            shift = len(first.records)
            first.group_runs.extend(
                (position + shift, group, index, run)
                for position, group, index, run in following.group_runs
            )
            first.records.extend(following.records)
            first.size += following.size - RECORD_BATCH_OVERHEAD
            first.wire_size = wire_size
            first.min_timestamp = min(first.min_timestamp, following.min_timestamp)
            first.max_timestamp = max(first.max_timestamp, following.max_timestamp)
        return first

    def split(self, batch: Batch, now_s: float) -> list[Batch]:
        """Kafka's ``splitAndReenqueue``, for a batch the leader refused as larger than the
        topic's ``max.message.bytes``: its records in order, cut into batches of at most
        ``batch.size`` bytes and half the refused one's (so each split makes progress), put
        back first, due at once. Each keeps the refused batch's producer id and takes the
        sequences that follow its base sequence, and counts as sent (a split is never joined
        again). A batch of one record cannot be split: the caller fails it."""
        assert len(batch.records) > 1
        limit = max(RECORD_BATCH_OVERHEAD + 1, min(self.batch_size, batch.wire_size // 2))
        parts: list[Batch] = []
        starts: list[int] = []  # each part's first position in the refused batch
        part: Batch | None = None
        for position, record in enumerate(batch.records):
            key, value, headers, appended, timestamp = record[:5]
            payload = payload_size(
                None if key is None else len(key), None if value is None else len(value), headers
            )
            if part is not None:
                size = record_size(len(part.records), timestamp - part.base_timestamp, payload)
                if part.wire_size + size > limit:
                    part = None
            if part is None:
                part = Batch(
                    batch.topic,
                    batch.partition,
                    batch.created_s,
                    base_timestamp=timestamp,
                    min_timestamp=timestamp,
                    max_timestamp=timestamp,
                    full=True,
                    producer_id=batch.producer_id,
                    producer_epoch=batch.producer_epoch,
                    attempts=batch.attempts,
                    unreachable=batch.unreachable,
                    retry_at_s=now_s,
                    last_error=batch.last_error,
                )
                if batch.base_sequence is not None:
                    # Sequences wrap after 2**31 - 1, as Kafka's do.
                    done = sum(len(p.records) for p in parts)
                    part.base_sequence = (batch.base_sequence + done) % 2**31
                parts.append(part)
                starts.append(position)
                size = record_size(0, 0, payload)
            part.records.append(record)
            part.size += appended  # as appended: what buffer.memory counts
            part.wire_size += size
            part.min_timestamp = min(part.min_timestamp, timestamp)
            part.max_timestamp = max(part.max_timestamp, timestamp)
        for part, start in zip(parts, starts, strict=True):
            part.group_runs = runs_within(batch.group_runs, start, start + len(part.records))
        queue = self.queues.setdefault((batch.topic, batch.partition), deque())
        queue.extendleft(reversed(parts))
        return parts

    def reenqueue(self, batch: Batch) -> None:
        """Puts a sent batch back for a retry, before every fresh batch and after the sent
        ones with a lower sequence (the node must see sequences in order)."""
        queue = self.queues.setdefault((batch.topic, batch.partition), deque())
        index = 0
        while (
            index < len(queue)
            and queue[index].sent
            and (queue[index].base_sequence or 0) < (batch.base_sequence or 0)
        ):
            index += 1
        queue.insert(index, batch)

    def batches(self) -> list[Batch]:
        return [batch for queue in self.queues.values() for batch in queue]

    def take_all(self) -> list[Batch]:
        """Removes and returns every batch (the producer fails them when it closes)."""
        taken = self.batches()
        self.queues.clear()
        return taken


# The partitions of a topic that have a leader, and each partition's queue length, from the
# topic's metadata (the argument): asked for only when the sticky partitioner picks a new
# partition (computing them per record would cost more than the rest of a send).
Candidates = Callable[[Any], tuple[list[int], list[int]]]


class StickyPartitioner:
    """Kafka's built-in partitioner for records without a key (see the module text)."""

    def __init__(self, batch_size: int, adaptive: bool, rng: random.Random) -> None:
        self._sticky_bytes = max(batch_size, 1)
        self._adaptive = adaptive
        self._rng = rng
        self._current: dict[str, list[int]] = {}  # topic -> [partition, bytes produced]

    def partition(self, topic: str, partitions: int, candidates: Candidates, metadata: Any) -> int:
        """The partition of the topic's next keyless record."""
        current = self._current.get(topic)
        if current is None or current[0] >= partitions:
            current = self._current[topic] = [self._next(partitions, candidates, metadata), 0]
        return current[0]

    def update(
        self,
        topic: str,
        partition: int,
        appended_bytes: int,
        batch_full: bool,
        partitions: int,
        candidates: Candidates,
        metadata: Any,
    ) -> None:
        """Counts bytes appended to the sticky partition; switches to another partition
        after ``batch.size`` bytes once its batch is full, or after twice that regardless."""
        current = self._current.get(topic)
        if current is None or current[0] != partition:
            return
        current[1] += appended_bytes
        if current[1] >= 2 * self._sticky_bytes or (
            current[1] >= self._sticky_bytes and batch_full
        ):
            self._current[topic] = [self._next(partitions, candidates, metadata), 0]

    def _next(self, partitions: int, candidates: Candidates, metadata: Any) -> int:
        available, queue_lengths = candidates(metadata)
        choices = [p for p in available if p < partitions] or list(range(partitions))
        if not self._adaptive or len(choices) == 1:
            return self._rng.choice(choices)
        # Kafka's adaptive choice: weight maxQueue + 1 - queue, so a partition whose batches
        # pile up (a slow leader) gets fewer new records.
        lengths = [queue_lengths[p] if p < len(queue_lengths) else 0 for p in choices]
        top = max(lengths) + 1
        weights = [top - length for length in lengths]
        return self._rng.choices(choices, weights=weights)[0]
