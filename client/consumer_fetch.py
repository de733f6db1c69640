"""The consumer's fetching half: one task per partition long-polling its leader, and the
buffers ``poll()`` drains.

Theory of operation:

- A :class:`PartitionFetch` holds a partition's *position* (the next offset ``poll()``
  returns; None until the node resolves ``earliest``/``latest``), its *fetch offset* (the next
  offset to ask for, ahead of the position by what is buffered), the buffered answers, and its
  task.
- :func:`fetch_loop` asks the leader for the stored record batches from the fetch offset
  (``Accept: application/vnd.kafka.batch``: the bytes as they lie in the leader's log), up to
  ``max.partition.fetch.bytes``, long-polling ``fetch.max.wait.ms``, and reads them with
  client/batches.py (CRC checked; records below the fetch offset skipped, as the first batch
  may start below it), ``DECODE_SLICE_BYTES`` at a time with the event loop free between
  slices. The next fetch offset is the answer's ``Kafka-Next-Offset``. It keeps at most
  ``FETCH_AHEAD_BATCHES`` answers buffered, so one is on its way while the application
  handles another. OFFSET_OUT_OF_RANGE resets the partition
  by ``auto.offset.reset``; retriable errors and lost connections are retried with backoff for
  as long as the partition is owned (the transport finds the new leader); any other error is
  left in ``error`` for ``poll()`` to raise, and the task ends.
- :func:`drain` hands out up to ``max.poll.records`` buffered records, taking the partitions
  in turn so none starves, and moves each position past what it returned.
- Offsets may have gaps (a compacted topic: records cleaned away inside a batch, whole
  batches gone, batches with no record left). So the next fetch offset is the offset after
  the last batch of an answer, never the last record's + 1, and once an answer is drained the
  position moves to that offset too (as Kafka's consumer moves it to the batch's next
  offset): an answer of empty batches only moves both, and a committed position past the
  last record of a compacted log does not show a lag that never goes away.
"""

from __future__ import annotations

import asyncio
import gc
from collections import deque
from typing import Any

from client import limits
from client.batches import BatchReader, ConsumerRecord
from client.client import TransportError
from client.consumer_config import ConsumerConfig
from client.group_member import TopicPartition
from client.protocol import OFFSET_OUT_OF_RANGE, ApiError

# Answers buffered per partition: two hide a fetch's round trip behind the application's work
# on the previous answer; more would only hold memory (each up to max.partition.fetch.bytes).
FETCH_AHEAD_BATCHES = 2
# Bytes of an answer read between two yields to the event loop: about 2,000 records of 100
# bytes, one to two milliseconds of decoding (1.7 million records/s measured with
# scripts/bench_batches.py), so the group's heartbeats and the other partitions' answers are
# never held up for long by a large fetch (--fetch-size may be up to 64 MiB).
DECODE_SLICE_BYTES = 256 * 1024
# Failed attempts (a dead leader, no coordinator yet) back off, doubling from
# retry.backoff.ms up to this: quick enough to follow an election within a second, slow
# enough not to spin against a dead node.
RETRY_BACKOFF_MAX_S = 1.0

# CPython collects its youngest generation every 700 allocations by default. A fetch answer
# makes a few objects a record (the record's tuple, its key and value), so the collector
# ran dozens of times an answer and kept traversing the buffered records as they
# aged: about a third of a busy consumer's CPU (measured reading 300,000 records). A process
# that mostly consumes can collect less often; the consumer tools do, for their own process.
GC_GEN0_THRESHOLD = 10_000

__all__ = ["ConsumerRecord", "NoOffsetForPartitionError", "PartitionFetch", "drain", "fetch_loop"]


def tune_collector() -> None:
    """Raises the collector's youngest-generation threshold to ``GC_GEN0_THRESHOLD`` (for a
    process that mostly consumes; a library never calls this on its own)."""
    gen0, gen1, gen2 = gc.get_threshold()
    if gen0 < GC_GEN0_THRESHOLD:
        gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


class NoOffsetForPartitionError(Exception):
    """``auto.offset.reset=none`` and a partition without a committed or valid position."""


def retriable(exc: BaseException) -> bool:
    """Worth another attempt: no answer at all, or an answer that says "not now"."""
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, ApiError) and (exc.retriable or exc.status in (429, 503))


def next_backoff(previous_s: float, base_s: float) -> float:
    return min(max(previous_s * 2, base_s), RETRY_BACKOFF_MAX_S)


def wait_s(exc: BaseException, backoff_s: float) -> float:
    """The node's Retry-After (capped) when it gave one, else ``backoff_s``."""
    if isinstance(exc, ApiError) and "retry_after_s" in exc.extra:
        return min(float(exc.extra["retry_after_s"]), limits.RETRY_AFTER_MAX_S)
    return backoff_s


class _Batch:
    """A fetched answer's records, how many of them poll() has handed out, and the offset
    after the answer's last batch (where the position goes once all are handed out; the last
    record's offset + 1 when not given)."""

    __slots__ = ("records", "taken", "next_offset")

    def __init__(self, records: list[ConsumerRecord], next_offset: int | None = None) -> None:
        self.records = records
        self.taken = 0
        self.next_offset = records[-1].offset + 1 if next_offset is None else next_offset


class PartitionFetch:
    """One owned partition: its position, fetch offset, buffered answers and task."""

    __slots__ = ("tp", "position", "fetch_from", "buffer", "room", "task", "error")

    def __init__(self, tp: TopicPartition, position: int | None, fetch_from: int | str) -> None:
        self.tp = tp
        self.position = position
        self.fetch_from = fetch_from  # an offset, or "earliest"/"latest" until resolved
        self.buffer: deque[_Batch] = deque()
        self.room = asyncio.Event()
        self.room.set()
        self.task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def reset(self, position: int | None, fetch_from: int | str) -> None:
        """Drops what is buffered and fetches from ``fetch_from`` (the task is restarted by
        the caller)."""
        self.stop()
        self.position = position
        self.fetch_from = fetch_from
        self.buffer.clear()
        self.room.set()
        self.error = None


async def fetch_loop(
    state: PartitionFetch, client: Any, config: ConsumerConfig, wake: asyncio.Event
) -> None:
    """Fetches the partition into its buffer until cancelled or a lasting error (see the
    module text); sets ``wake`` whenever poll() has something new to look at."""
    tp = state.tp
    backoff_s = 0.0
    while True:
        await state.room.wait()
        fetch_from = state.fetch_from
        try:
            answer = await client.fetch_batches(
                tp.topic,
                tp.partition,
                fetch_from,
                max_bytes=config.max_partition_fetch_bytes,
                timeout_ms=config.fetch_max_wait_ms,
            )
            # "earliest" starts at the log start; "latest" at a batch boundary (the high
            # watermark), so nothing below it comes.
            first = (
                fetch_from
                if isinstance(fetch_from, int)
                else answer.log_start_offset
                if fetch_from == "earliest"
                else -1
            )
            reader = BatchReader(tp.topic, tp.partition, answer.body, first)
            records = reader.read(DECODE_SLICE_BYTES)
            while not reader.done:
                await asyncio.sleep(0)  # the loop's other work first (see DECODE_SLICE_BYTES)
                records.extend(reader.read(DECODE_SLICE_BYTES))
        except (ApiError, TransportError) as exc:
            if isinstance(exc, ApiError) and exc.code == OFFSET_OUT_OF_RANGE.code:
                if config.auto_offset_reset == "none":
                    state.error = NoOffsetForPartitionError(
                        f"Fetch position {state.fetch_from} is out of range for partition "
                        f"{tp.topic}-{tp.partition}: {exc.message}"
                    )
                    wake.set()
                    return
                state.position = None
                state.buffer.clear()
                state.fetch_from = config.auto_offset_reset
                continue
            if not retriable(exc):
                state.error = exc
                wake.set()
                return
            backoff_s = next_backoff(backoff_s, config.retry_backoff_ms / 1000)
            await asyncio.sleep(wait_s(exc, backoff_s))
            continue
        backoff_s = 0.0
        # Past the last batch of the answer (the reader saw it; the node says it too), not
        # the last record: a compacted log's gaps and empty batches are not asked for again.
        next_offset = max(answer.next_offset, reader.next_offset)
        del answer, reader  # the body goes now: the records hold their own bytes
        if records and next_offset <= records[-1].offset:
            next_offset = records[-1].offset + 1  # never ask again for what was read
        if state.position is None:
            # "earliest"/"latest" resolved by the node: where this answer starts.
            state.position = records[0].offset if records else next_offset
        state.fetch_from = next_offset
        if records:
            state.buffer.append(_Batch(records, next_offset))
            if len(state.buffer) >= FETCH_AHEAD_BATCHES:
                state.room.clear()
            wake.set()
        elif state.buffer:
            # Nothing but gaps or empty batches: what lies before them is still buffered,
            # and the position moves past them once that is handed out.
            state.buffer[-1].next_offset = next_offset
        elif state.position is not None and state.position < next_offset:
            state.position = next_offset


def drain(states: list[PartitionFetch], limit: int) -> list[ConsumerRecord]:
    """Up to ``limit`` buffered records, from the partitions in the order given (the caller
    rotates it); positions move past what is returned."""
    out: list[ConsumerRecord] = []
    for state in states:
        buffer = state.buffer
        while buffer and len(out) < limit:
            batch = buffer[0]
            records = batch.records
            position = state.position
            if position is not None and records[batch.taken].offset < position:
                # Fetched before a seek forward, or already handed out: skip to the position.
                while batch.taken < len(records) and records[batch.taken].offset < position:
                    batch.taken += 1
                if batch.taken >= len(records):
                    buffer.popleft()
                    state.room.set()
                    continue
            end = min(len(records), batch.taken + limit - len(out))
            out.extend(records[batch.taken : end])
            batch.taken = end
            if end >= len(records):
                state.position = batch.next_offset
                buffer.popleft()
                state.room.set()
            else:
                state.position = records[end - 1].offset + 1
        if len(out) >= limit:
            break
    return out
