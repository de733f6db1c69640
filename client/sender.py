"""The producer's sender: the task that takes ready batches from the accumulator to the
partitions' leaders, and decides what each answer means (client/producer.py describes the
producer as a whole).

Theory of operation:

- Every wake (a batch started or filled, a request done, a linger or backoff ended, at least
  every ``PRODUCER_EXPIRY_SWEEP_S``) the sender expires batches past ``delivery.timeout.ms``,
  then, for each ready partition, sends its next request if the partition may have another in
  flight: ``max.in.flight.requests.per.connection``, or one while a batch is being retried.
- A partition's request goes straight to its leader's URL from the metadata cache; with no
  known leader the sender reads the topic again and looks back after ``retry.backoff.ms``.
- A request is one Kafka v2 record batch (``Content-Type: application/vnd.kafka.batch``),
  built from the drained records when the batch is first sent (client/batches.py) and kept
  for its retries; the answer gives the base offset the leader assigned. With
  ``compression.type`` its records are compressed (storage/compression.py, in a worker thread
  from ``COMPRESS_IN_THREAD_BYTES_MIN`` bytes). Batches are sized before compression (Kafka
  estimates the compressed size instead), so a compressed request is within
  ``max.request.size`` unless the codec made incompressible records larger: such a batch is
  split and its parts sent in its place, as a batch the leader refused RECORD_TOO_LARGE is,
  and a single record that no longer fits fails with RECORD_TOO_LARGE; nothing is sent over
  the limit.
- Idempotence: the first request of a batch fixes its producer id, epoch and first sequence
  (the partition's next), written in the batch's header; a retry sends the same bytes.
  ``unacked`` holds the first sequences of a partition's sent, unfinished batches: an
  OUT_OF_ORDER_SEQUENCE_NUMBER answer is retriable while an earlier one is among them (the
  node refused this one because that one was lost), and final otherwise. A batch that fails
  for good after being sent leaves an unresolved sequence: once nothing of the partition is
  in flight, it moves to a new producer id from ``POST /v1/producers``, and its queued
  batches are built again with new sequences from 0. (A batch re-sequenced so whose first
  copy was stored after all would be stored twice; it takes a failed batch *and* a lost
  answer at once, and Kafka's epoch bump has the same hole.)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson

from client import limits
from client.accumulator import (
    HEADERS,
    KEY,
    TIMESTAMP,
    VALUE,
    Accumulator,
    Batch,
    backoff_ms,
)
from client.batches import NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, build
from client.client import TransportError, error_from_answer
from client.metadata import Metadata, redirect_leader
from client.producer_config import ProducerConfig
from client.protocol import (
    BATCH_MEDIA_TYPE,
    LEADER_NOT_AVAILABLE,
    NOT_LEADER_OR_FOLLOWER,
    OUT_OF_ORDER_SEQUENCE_NUMBER,
    RECORD_TOO_LARGE,
    UNKNOWN_PARTITION,
    UNKNOWN_SERVER_ERROR,
    UNKNOWN_TOPIC,
    ApiError,
)
from client.record_results import RecordMetadata
from client.transport import Answer, NodeUnreachable, Transport
from storage.compression import codec_name

log = logging.getLogger(__name__)

SEQUENCE_MAX = 2**31 - 1
# An error answer is quoted in a debug line up to this many bytes: its code and message.
_LOGGED_ANSWER_BYTES_MAX = 200
# A produce request's body is one record batch (the JSON produce stays for curl users).
_BATCH_HEADERS = {"Content-Type": BATCH_MEDIA_TYPE}


def retry_pause_ms(
    delivered: int, after_s: float | None, config: ProducerConfig, rng: random.Random
) -> float:
    """The pause before a batch's next attempt, after ``delivered`` attempts that reached a
    node (at least one is counted): Kafka's exponential backoff from ``retry.backoff.ms`` to
    ``retry.backoff.max.ms``; ``after_s`` 0 means at once (a 307 naming the leader), another
    value is a node's Retry-After, honoured up to ``retry.backoff.max.ms``.

    Attempts that found no connection do not make the pause grow: the leader's process is
    gone, and the next attempt goes to whichever leader the metadata, read again, names. As
    Kafka's producer, which reads the metadata again every ``retry.backoff.ms`` after a
    disconnect and sends to the new leader once it is named. Counted, they made a batch wait
    0.1, 0.2, 0.4, 0.8, then 1 s for a dead leader and reach the new one up to a second after
    it was elected (scripts/bench_failover.py's timelines: 2.4-2.5 s where 1.5 s would do).
    """
    if after_s == 0.0:
        return 0.0
    pause = backoff_ms(
        max(delivered, 1) - 1, config.retry_backoff_ms, config.retry_backoff_max_ms, rng
    )
    if after_s is not None:
        pause = max(pause, min(after_s * 1000, config.retry_backoff_max_ms))
    return pause


class ProducerTimeout(Exception):
    """Kafka's TimeoutException: metadata or buffer space not there within max.block.ms, or a
    record that could not be sent within delivery.timeout.ms (and had no error to tell)."""


class ProducerClosed(RuntimeError):
    """A send after close, or a record still unsent when close gave up."""


class _PartitionState:
    """The sender's view of one partition: requests in flight and the idempotent sequence."""

    __slots__ = (
        "in_flight",
        "producer_id",
        "epoch",
        "next_sequence",
        "reset",
        "unacked",
        "blocked_until_s",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.producer_id: int | None = None
        self.epoch = 0
        self.next_sequence = 0
        self.reset = False  # an unresolved sequence: move to a new producer id when idle
        self.unacked: set[int] = set()  # first sequences of sent, unfinished batches
        self.blocked_until_s = 0.0


class Sender:
    """Sends the accumulator's batches (see the module text); ``released(bytes)`` is told of
    the bytes of every batch that is done, acknowledged or failed."""

    def __init__(
        self,
        config: ProducerConfig,
        accumulator: Accumulator,
        metadata: Metadata,
        transport: Transport,
        released: Callable[[int], None],
        rng: random.Random,
    ) -> None:
        self.config = config
        self._acc = accumulator
        self.metadata = metadata
        self._transport = transport
        self._released = released
        self._rng = rng
        self._states: dict[tuple[str, int], _PartitionState] = {}
        self.in_flight: set[Batch] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._producer_id: int | None = None
        self._allocating: asyncio.Task[int] | None = None
        self._refreshing: set[str] = set()
        self._refresh_failed_at: dict[str, float] = {}
        self.closing = False
        self.closed = False
        timeout_ms = min(config.request_timeout_ms, limits.PRODUCE_TIMEOUT_MS_MAX)
        self._query = f"acks={config.acks}&timeout_ms={timeout_ms}"

    def poke(self) -> None:
        """Wakes the sender: something new may be ready."""
        self._wake.set()

    async def stop(self) -> None:
        """Cancels the requests in flight (close gave up on them)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def fail_all(self, error: BaseException) -> None:
        for batch in [*self._acc.take_all(), *self.in_flight]:
            self.fail(batch, error)
        self.in_flight.clear()

    def _state(self, tp: tuple[str, int]) -> _PartitionState:
        state = self._states.get(tp)
        if state is None:
            state = self._states[tp] = _PartitionState()
        return state

    async def run(self) -> None:
        next_sweep = 0.0
        while True:
            now = time.monotonic()
            if now >= next_sweep:
                self._expire(now)
                next_sweep = now + limits.PRODUCER_EXPIRY_SWEEP_S
            ready, wait_s = self._acc.ready(now)
            for tp in ready:
                blocked = self._try_send(tp, now)
                if blocked is not None:
                    wait_s = blocked if wait_s is None else min(wait_s, blocked)
            if self.closing and not self.in_flight and not any(self._acc.queues.values()):
                return
            self._wake.clear()
            if wait_s is not None:
                wait_s = max(wait_s, limits.PRODUCER_WAKE_MIN_S)
                wait_s = min(wait_s, limits.PRODUCER_EXPIRY_SWEEP_S)
            try:
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _try_send(self, tp: tuple[str, int], now: float) -> float | None:
        """Sends the partition's next request if it may go now; otherwise the seconds until
        it should be looked at again (None: a request's completion will wake the sender)."""
        state = self._state(tp)
        if state.blocked_until_s > now:
            return state.blocked_until_s - now
        queue = self._acc.queues[tp]
        retrying = queue[0].sent
        if state.in_flight >= (
            1 if retrying else self.config.max_in_flight_requests_per_connection
        ):
            return None
        if self.config.enable_idempotence and (state.producer_id is None or state.reset):
            if state.in_flight:
                return None
            self._adopt_producer_id(tp, state, now)
            if state.producer_id is None or state.reset:
                return None  # the allocation's end wakes the sender
        if self.metadata.needs_refresh(tp[0]) or self.metadata.leader_url(*tp) is None:
            # The leader may have moved (an error said so, or a node stopped answering): read
            # the topic again first; the read's end wakes the sender.
            return self._refresh(tp[0], now)
        url = self.metadata.leader_url(*tp)
        assert url is not None
        batch = self._acc.drain(
            tp[0], tp[1], self.config.max_request_size, limits.PRODUCE_RECORDS_PER_REQUEST_MAX
        )
        if self.config.enable_idempotence and batch.base_sequence is None:
            batch.producer_id, batch.producer_epoch = state.producer_id, state.epoch
            batch.base_sequence = state.next_sequence
            state.next_sequence = (state.next_sequence + len(batch.records)) % (SEQUENCE_MAX + 1)
        if batch.base_sequence is not None:
            state.unacked.add(batch.base_sequence)
        state.in_flight += 1
        self.in_flight.add(batch)
        self._spawn(self._send_batch(state, batch, url, self.metadata.leader_epoch(*tp)))
        return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refresh(self, topic: str, now: float) -> float | None:
        """Starts a read of the topic unless one runs or the last failed within
        ``retry.backoff.ms``; the seconds until the sender should look again (None: the
        read's end wakes it)."""
        if topic in self._refreshing:
            return None
        retry_at = self._refresh_failed_at.get(topic, 0.0) + self.config.retry_backoff_ms / 1000
        if now < retry_at:
            return retry_at - now
        self._refreshing.add(topic)
        self._spawn(self._read_topic(topic))
        return None

    async def _read_topic(self, topic: str) -> None:
        try:
            await self.metadata.refresh_topic(topic, auto_create=True)
            self._refresh_failed_at.pop(topic, None)
        except (ApiError, TransportError) as exc:
            # The batches wait; delivery.timeout.ms ends them with this error if it lasts.
            self._refresh_failed_at[topic] = time.monotonic()
            for (name, _partition), queue in self._acc.queues.items():
                if name == topic and queue and queue[0].last_error is None:
                    queue[0].last_error = exc
        finally:
            self._refreshing.discard(topic)
            self.poke()

    def _adopt_producer_id(self, tp: tuple[str, int], state: _PartitionState, now: float) -> None:
        """Gives the partition a producer id: the producer's first one, or a new one after an
        unresolved sequence (its sent, unfinished batches then start again at sequence 0)."""
        if self._producer_id is not None and not state.reset and state.producer_id is None:
            state.producer_id, state.epoch, state.next_sequence = self._producer_id, 0, 0
            return
        if self._allocating is None:
            self._allocating = asyncio.ensure_future(self._allocate())
            self._allocating.add_done_callback(lambda _: self.poke())
            return
        if not self._allocating.done():
            return
        task, self._allocating = self._allocating, None
        try:
            producer_id = task.result()
        except (ApiError, TransportError) as exc:
            if isinstance(exc, ApiError) and not exc.kind.retriable:
                # Not allowed an id (IDEMPOTENT_WRITE), say: Kafka's producer fails too.
                queue = self._acc.queues.get(tp)
                while queue:
                    self.fail(queue.popleft(), exc)
                return
            state.blocked_until_s = now + self.config.retry_backoff_ms / 1000
            for batch in self._acc.queues.get(tp, ()):
                batch.last_error = exc
            return
        if self._producer_id is None:
            self._producer_id = producer_id
        state.producer_id, state.epoch, state.next_sequence = producer_id, 0, 0
        state.reset = False
        state.unacked.clear()
        for batch in self._acc.queues.get(tp, ()):
            # Built again with the new id and sequence when next sent.
            batch.producer_id, batch.base_sequence, batch.body = None, None, None

    async def _allocate(self) -> int:
        """A producer id from ``POST /v1/producers``, asked of any node that answers."""
        last: Exception | None = None
        for url in self.metadata.nodes():
            try:
                answer = await self._transport.exchange(
                    "POST",
                    url + "/v1/producers",
                    body=b"{}",
                    timeout_s=self.config.request_timeout_ms / 1000,
                )
            except TransportError as exc:
                self.metadata.node_failed(url)
                last = exc
                continue
            if answer.status == 503:
                last = error_from_answer(answer.status, answer.headers, answer.body)
                continue
            if answer.status != 200:
                raise error_from_answer(answer.status, answer.headers, answer.body)
            body = orjson.loads(answer.body)
            return int(body["producer_id"])
        raise last or TransportError("no node to ask for a producer id")

    async def _send_batch(
        self, state: _PartitionState, batch: Batch, url: str, leader_epoch: int | None
    ) -> None:
        """Sends the batch to ``url``, the leader's as the metadata named it (at
        ``leader_epoch``), and acts on the answer."""
        batch.attempts += 1
        path = (
            f"/v1/topics/{quote(batch.topic, safe='')}/partitions/{batch.partition}/records?"
            + self._query
        )
        try:
            if batch.body is None:
                try:
                    batch.body = await self._build(batch)
                except Exception as exc:
                    # Never sent: the records' futures carry the error rather than waiting
                    # for ever on a batch no request will finish.
                    batch.attempts -= 1
                    self.fail(batch, exc, state)
                    return
                if len(batch.body) > self.config.max_request_size:
                    self._compressed_too_large(state, batch)
                    return
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s-%d: attempt %d to %s", batch.topic, batch.partition, batch.attempts, url
                )
            try:
                answer = await self._transport.exchange(
                    "POST",
                    url + path,
                    body=batch.body,
                    headers=_BATCH_HEADERS,
                    # The node answers within timeout_ms; a little more for the way back.
                    timeout_s=self.config.request_timeout_ms / 1000 + limits.PRODUCE_ANSWER_SLACK_S,
                )
            except TransportError as exc:
                log.debug("%s-%d: no answer: %s", batch.topic, batch.partition, exc)
                if isinstance(exc, NodeUnreachable):
                    # Never sent: as in Kafka, a connection that cannot be made does not use
                    # up a retry (the batch waits for the metadata to name a live leader).
                    batch.unreachable += 1
                self.metadata.node_failed(url)
                self._retry(state, batch, exc, None)
                return
            self._handle(state, batch, answer, leader_epoch)
        finally:
            state.in_flight -= 1
            self.in_flight.discard(batch)
            self.poke()

    async def _build(self, batch: Batch) -> bytes:
        """The batch's request body: one v2 record batch with its producer fields, its
        records compressed as ``compression.type`` says."""
        if batch.base_sequence is None:
            producer = (NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE)
        else:
            assert batch.producer_id is not None
            producer = (batch.producer_id, batch.producer_epoch, batch.base_sequence)
        codec = self.config.codec
        encode = functools.partial(
            build,
            batch.records,
            *producer,
            key=KEY,
            value=VALUE,
            headers=HEADERS,
            timestamp=TIMESTAMP,
            codec=codec,
            level=self.config.compression_level,
        )
        if codec and batch.wire_size >= limits.COMPRESS_IN_THREAD_BYTES_MIN:
            # The records of a batch in flight are never changed (it is out of the queue).
            return await asyncio.to_thread(encode)
        return encode()

    def _compressed_too_large(self, state: _PartitionState, batch: Batch) -> None:
        """A batch that compression made larger than ``max.request.size`` (incompressible
        records; it was within the limit before): never sent. Split in two halves or smaller,
        as a batch the leader refused RECORD_TOO_LARGE is; one record alone fails with
        RECORD_TOO_LARGE."""
        assert batch.body is not None
        size, batch.body = len(batch.body), None
        batch.attempts -= 1
        codec = codec_name(self.config.codec)
        limit = self.config.max_request_size
        if len(batch.records) > 1:
            error = ApiError(
                RECORD_TOO_LARGE,
                f"The batch of {len(batch.records)} records is {size} bytes when compressed "
                f"with {codec}, which is larger than {limit}, the value of the "
                "max.request.size configuration; it is split and sent again.",
            )
            self._split(state, batch, error)
            return
        if batch.base_sequence is not None:
            # Its sequence was taken and will never be stored: the partition's next batches
            # would leave a gap the node refuses, so they move to a new producer id.
            state.reset = True
        self.fail(
            batch,
            ApiError(
                RECORD_TOO_LARGE,
                f"The message is {size} bytes when serialized and compressed with {codec} "
                f"which is larger than {limit}, which is the value of the max.request.size "
                "configuration.",
            ),
            state,
        )

    def _split(self, state: _PartitionState, batch: Batch, error: ApiError) -> None:
        """Puts the batch's records back as smaller batches (Accumulator.split), first in
        the queue, with the sequences that follow its base sequence."""
        if batch.base_sequence is not None:
            state.unacked.discard(batch.base_sequence)
        batch.last_error = error
        for part in self._acc.split(batch, time.monotonic()):
            if part.base_sequence is not None:
                state.unacked.add(part.base_sequence)

    def _handle(
        self, state: _PartitionState, batch: Batch, answer: Answer, leader_epoch: int | None
    ) -> None:
        status = answer.status
        if status in (200, 202):
            self._complete(state, batch, answer.body if status == 200 else None)
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s-%d: answered %d %s",
                batch.topic,
                batch.partition,
                status,
                answer.body[:_LOGGED_ANSWER_BYTES_MAX].decode(errors="replace").strip(),
            )
        if status == 307:
            redirect = redirect_leader(answer)
            if (
                redirect is not None
                and redirect.leader_epoch is not None
                and leader_epoch is not None
                and redirect.leader_epoch < leader_epoch
            ):
                # The node the metadata named leader at leader_epoch has not applied that
                # change yet (it names the leader before it): it leads in a moment. Not the
                # leader's refusal, so like a node not reached it uses up no retry and does
                # not make the backoff grow; the redirect, older than what we know, is not
                # taken, and the metadata is read again in case it moved on meanwhile. (A
                # failover lost 0.44 s here: a grown backoff after two of them.)
                batch.unreachable += 1
                self.metadata.invalidate(batch.topic)
                self._retry(
                    state, batch, error_from_answer(status, answer.headers, answer.body), None
                )
                return
            if redirect is not None:
                self.metadata.leader_moved(batch.topic, batch.partition, redirect)
                error = error_from_answer(status, answer.headers, answer.body)
                # At once to the leader it names, unless the last answer was a redirect too
                # (leadership moving back and forth): then after the backoff.
                again = isinstance(batch.last_error, ApiError) and (
                    batch.last_error.kind is NOT_LEADER_OR_FOLLOWER
                )
                self._retry(state, batch, error, None if again else 0.0)
                return
        error = error_from_answer(status, answer.headers, answer.body)
        kind = error.kind
        if kind is RECORD_TOO_LARGE and len(batch.records) > 1:
            # Over the topic's max.message.bytes (smaller than what a request may carry):
            # split and sent again as smaller batches, as Kafka's producer does.
            self._split(state, batch, error)
            return
        if kind in (UNKNOWN_TOPIC, UNKNOWN_PARTITION) or kind.retriable:
            self.metadata.invalidate(batch.topic)
            retry_after = error.extra.get("retry_after_s")
            if kind is LEADER_NOT_AVAILABLE:
                # A partition between leaders (an election takes a moment) or a node between
                # metadata states: the backoff and a fresh look at the metadata, as Kafka's
                # producer does, not the node's Retry-After, whose one second (the header's
                # smallest) could add a second to a failover.
                retry_after = None
            self._retry(state, batch, error, None if retry_after is None else float(retry_after))
            return
        if kind is OUT_OF_ORDER_SEQUENCE_NUMBER and batch.base_sequence is not None:
            earlier = [s for s in state.unacked if s != batch.base_sequence]
            if state.reset or (earlier and min(earlier) < batch.base_sequence):
                # An earlier batch was lost or refused: this one follows it (or moves to the
                # new producer id), in order.
                self._retry(state, batch, error, 0.0)
                return
        self.fail(batch, error, state)

    def _retry(
        self, state: _PartitionState, batch: Batch, error: BaseException, after_s: float | None
    ) -> None:
        """Puts a batch back for another attempt, or fails it when its attempts are over."""
        now = time.monotonic()
        cfg = self.config
        if (
            self.closed
            or batch.attempts - batch.unreachable > cfg.retries
            or (now - batch.created_s >= cfg.delivery_timeout_ms / 1000)
        ):
            self.fail(batch, error, state)
            return
        pause = retry_pause_ms(batch.attempts - batch.unreachable, after_s, cfg, self._rng)
        batch.retry_at_s = now + pause / 1000
        log.debug("%s-%d: retry in %.0f ms", batch.topic, batch.partition, pause)
        batch.last_error = error
        self._acc.reenqueue(batch)

    def _complete(self, state: _PartitionState, batch: Batch, raw: bytes | None) -> None:
        base_offset = -1  # acks=0: Kafka's RecordMetadata carries offset -1
        if raw is not None:
            try:
                answer = orjson.loads(raw)
                base_offset = answer["base_offset"]
                if type(base_offset) is not int or answer["record_count"] != len(batch.records):
                    raise ValueError("a base offset and every record counted")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                error = ApiError(
                    UNKNOWN_SERVER_ERROR, "a produce answer without the offsets of its records"
                )
                self.fail(batch, error, state)
                return
        if batch.base_sequence is not None:
            state.unacked.discard(batch.base_sequence)
        topic, partition = batch.topic, batch.partition
        step = 0 if raw is None else 1
        records = batch.records
        make, cls = tuple.__new__, RecordMetadata
        position = 0
        # In the batch's order (Kafka runs the callbacks of a partition's records in the order
        # sent): the records of send() one by one, each send_many run at once.
        for run_position, group, first, count in [*batch.group_runs, (len(records), None, 0, 0)]:
            while position < run_position:
                _key, _value, _headers, _size, timestamp, future, callback = records[position]
                # The NamedTuple's own __new__ is a Python function: too slow per record.
                metadata = make(cls, (topic, partition, base_offset + position * step, timestamp))
                if not future.done():
                    future.set_result(metadata)
                if callback is not None:
                    callback(metadata, None)
                position += 1
            if group is not None:
                group.acknowledged(first, count, partition, base_offset + position * step, step)
                position += count
        self._release(batch)

    def fail(
        self, batch: Batch, error: BaseException, state: _PartitionState | None = None
    ) -> None:
        if state is not None and batch.base_sequence is not None:
            state.unacked.discard(batch.base_sequence)
            if batch.attempts > 0:
                state.reset = True  # its sequence may or may not be stored
        records = batch.records
        position = 0
        for run_position, group, _first, count in [*batch.group_runs, (len(records), None, 0, 0)]:
            while position < run_position:
                _key, _value, _headers, _size, _timestamp, future, callback = records[position]
                if not future.done():
                    future.set_exception(error)
                    # Marked retrieved: a caller that only uses callbacks gets no "exception
                    # was never retrieved" noise.
                    future.exception()
                if callback is not None:
                    callback(None, error)
                position += 1
            if group is not None:
                group.failed(count, error)
                position += count
        self._release(batch)

    def _release(self, batch: Batch) -> None:
        self._released(batch.record_bytes)

    def _expire(self, now: float) -> None:
        """Fails queued batches older than delivery.timeout.ms with their last error."""
        limit_s = self.config.delivery_timeout_ms / 1000
        for tp, queue in self._acc.queues.items():
            if not queue or now - queue[0].created_s < limit_s:
                continue
            kept = [b for b in queue if now - b.created_s < limit_s]
            expired = [b for b in queue if now - b.created_s >= limit_s]
            queue.clear()
            queue.extend(kept)
            for batch in expired:
                error = batch.last_error or ProducerTimeout(
                    f"Expiring {len(batch.records)} record(s) for {tp[0]}-{tp[1]}:"
                    f"{int((now - batch.created_s) * 1000)} ms has passed since batch creation"
                )
                self.fail(batch, error, self._state(tp))
