"""The consumer's fetching half: one task per partition long-polling its leader, and the
buffers ``poll()`` drains.

Theory of operation:

- A :class:`PartitionFetch` holds a partition's *position* (the next offset ``poll()``
  returns; None until the node resolves ``earliest``/``latest``), its *fetch offset* (the next
  offset to ask for, ahead of the position by what is buffered), the buffered answers, and its
  task.
- :func:`fetch_loop` asks the leader for records from the fetch offset (``format=binary``:
  base64 on the wire, exact bytes here), up to ``max.partition.fetch.bytes``, long-polling
  ``fetch.max.wait.ms``; it keeps at most ``FETCH_AHEAD_BATCHES`` answers buffered, so one is
  on its way while the application handles another. OFFSET_OUT_OF_RANGE resets the partition
  by ``auto.offset.reset``; retriable errors and lost connections are retried with backoff for
  as long as the partition is owned (the transport finds the new leader); any other error is
  left in ``error`` for ``poll()`` to raise, and the task ends.
- :func:`drain` hands out up to ``max.poll.records`` buffered records, taking the partitions
  in turn so none starves, and moves each position past what it returned.
"""

from __future__ import annotations

import asyncio
import binascii
import gc
from collections import deque
from typing import Any, NamedTuple

from client import limits
from client.client import TransportError
from client.consumer_config import ConsumerConfig
from client.group_member import TopicPartition
from client.protocol import OFFSET_OUT_OF_RANGE, ApiError

# Answers buffered per partition: two hide a fetch's round trip behind the application's work
# on the previous answer; more would only hold memory (each up to max.partition.fetch.bytes).
FETCH_AHEAD_BATCHES = 2
# Records asked for per fetch: the node's own bound. max.partition.fetch.bytes is the real
# limit, as in Kafka, where a fetch is bounded by bytes only.
FETCH_RECORDS_MAX = 10_000
# Failed attempts (a dead leader, no coordinator yet) back off, doubling from
# retry.backoff.ms up to this: quick enough to follow an election within a second, slow
# enough not to spin against a dead node.
RETRY_BACKOFF_MAX_S = 1.0

# CPython collects its youngest generation every 700 allocations by default. A fetch answer
# makes three objects a record (the answer's dict and header list, then the record), so the
# collector ran dozens of times an answer and kept traversing the buffered records as they
# aged: about a third of a busy consumer's CPU (measured reading 300,000 records). A process
# that mostly consumes can collect less often; the consumer tools do, for their own process.
GC_GEN0_THRESHOLD = 10_000

Header = tuple[str, bytes | None]


def tune_collector() -> None:
    """Raises the collector's youngest-generation threshold to ``GC_GEN0_THRESHOLD`` (for a
    process that mostly consumes; a library never calls this on its own)."""
    gen0, gen1, gen2 = gc.get_threshold()
    if gen0 < GC_GEN0_THRESHOLD:
        gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


class ConsumerRecord(NamedTuple):
    """One record as stored: key, value and header values are bytes (or None)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


class NoOffsetForPartitionError(Exception):
    """``auto.offset.reset=none`` and a partition without a committed or valid position."""


def records_from_answer(topic: str, partition: int, raw: list[Any]) -> list[ConsumerRecord]:
    """The records of a ``format=binary`` fetch answer, bytes decoded. (A null key or value
    comes as ``"key": null``, any other as ``key_b64``; a ``key`` holding text, from an answer
    in text format, is its UTF-8.)"""
    a2b = binascii.a2b_base64
    # Hundreds of thousands of records a second pass through here, so the loop avoids Python
    # calls per record: the tuple is built directly (the NamedTuple's own __new__ is a Python
    # function), and each field costs one dict look-up.
    make = tuple.__new__
    cls = ConsumerRecord
    out: list[ConsumerRecord] = []
    append = out.append
    for r in raw:
        encoded = r.get("key_b64")
        if encoded is not None:
            key: Any = a2b(encoded)
        else:
            key = r.get("key")
            if key is not None:
                key = str(key).encode("utf-8")
        encoded = r.get("value_b64")
        if encoded is not None:
            value: Any = a2b(encoded)
        else:
            value = r.get("value")
            if value is not None:
                value = str(value).encode("utf-8")
        raw_headers = r.get("headers")
        headers: tuple[Header, ...] = (
            tuple((str(h[0]), None if h[1] is None else a2b(h[1])) for h in raw_headers)
            if raw_headers
            else ()
        )
        append(
            make(cls, (topic, partition, r["offset"], r.get("timestamp", -1), key, value, headers))
        )
    return out


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
    """A fetched answer's records and how many of them poll() has handed out."""

    __slots__ = ("records", "taken")

    def __init__(self, records: list[ConsumerRecord]) -> None:
        self.records = records
        self.taken = 0


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
        try:
            answer = await client.fetch(
                tp.topic,
                tp.partition,
                state.fetch_from,
                max_records=FETCH_RECORDS_MAX,
                max_bytes=config.max_partition_fetch_bytes,
                timeout_ms=config.fetch_max_wait_ms,
                fmt="binary",
            )
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
        raw = answer.get("records")
        records = records_from_answer(tp.topic, tp.partition, raw) if raw else []
        next_offset = answer.get("next_offset")
        # The answer's thousands of dicts go now, not when the next answer replaces them:
        # kept across the waits below they would age into the collector's older generations,
        # whose passes then cost more than the decoding (measured: a third more CPU).
        del answer, raw
        if not isinstance(next_offset, int):
            if records:
                next_offset = records[-1].offset + 1
            elif isinstance(state.fetch_from, int):
                next_offset = state.fetch_from
            else:
                continue  # nothing resolved "earliest"/"latest": ask again
        if state.position is None:
            # "earliest"/"latest" resolved by the node: where this answer starts.
            state.position = records[0].offset if records else next_offset
        state.fetch_from = next_offset
        if records:
            state.buffer.append(_Batch(records))
            if len(state.buffer) >= FETCH_AHEAD_BATCHES:
                state.room.clear()
            wake.set()


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
            state.position = records[end - 1].offset + 1
            if end >= len(records):
                buffer.popleft()
                state.room.set()
        if len(out) >= limit:
            break
    return out
