"""Kafka's producer over the HTTP API: ``AsyncProducer`` and its synchronous twin ``Producer``.

Use::

    async with AsyncProducer({"bootstrap.servers": "127.0.0.1:9092", "linger.ms": "5"}) as p:
        future = await p.send("news", b"Good morning", key=b"user1")
        metadata = await future          # RecordMetadata(topic, partition, offset, timestamp)

    with Producer(bootstrap_servers="127.0.0.1:9092") as p:
        p.send("news", "Good day").result()

Theory of operation (Kafka's producer, in one event loop):

- ``send`` stamps the record's timestamp, picks its partition (the one given; murmur2 of the
  key; else the sticky partitioner), counts its size as Kafka does, and appends it to its
  partition's batch (client/accumulator.py). It waits only for what Kafka's ``send`` blocks
  on, at most ``max.block.ms``: the topic's metadata (the topic is created on first use when
  the cluster auto-creates topics) and room in ``buffer.memory``. A record over
  ``max.request.size`` fails at once with RECORD_TOO_LARGE, before anything is sent.
- One sender task sends each ready partition's batches as one request straight to the
  partition's leader (``POST /v1/topics/T/partitions/P/records``, its body one Kafka v2
  record batch, ``Content-Type: application/vnd.kafka.batch``, built by aiokafka's Cython
  builder, client/batches.py), at most ``max.in.flight.requests.per.connection`` requests
  per partition (Kafka counts per connection; here every request is to one partition's
  leader; the default is 1, see client/producer_config.py for the measurement).
- ``send_many`` queues a run of keyless records with one future and one callback for the run
  (each still a record of its own), for callers producing at high rates: per-call work is
  what a Python producer spends most of its time on.
- Idempotence (default, needs acks=all): a producer id from ``POST /v1/producers``, and each
  batch's header carries the producer id, epoch and base sequence (its first record's,
  counted per partition), as Kafka's do. A request is retried exactly as first sent (the
  same bytes), so the node recognises a retry of what it stored and answers the original
  offsets (``"duplicate": true``). While a partition has a batch to retry, only that batch
  is in flight, in sequence order; a request answered OUT_OF_ORDER_SEQUENCE_NUMBER because
  an earlier one was lost is retried after it. A batch that fails for good after it was
  sent leaves its sequence unresolved: the partition's later batches move to a new producer
  id, built again from sequence 0 (Kafka bumps the epoch instead, KIP-360).
- Retries: 307 NOT_LEADER_OR_FOLLOWER goes at once to the leader it names (the metadata cache
  learns it); retriable errors (no leader, not enough replicas, timeouts, unknown topic or
  partition) and transport errors are retried after Kafka's exponential backoff with jitter
  (``retry.backoff.ms`` to ``retry.backoff.max.ms``) to the partition's current leader, with
  the metadata read again from any node that answers, until ``retries`` or
  ``delivery.timeout.ms`` end the record's attempts with the last error. Other errors
  (RECORD_TOO_LARGE, INVALID_RECORD, TOPIC_AUTHORIZATION_FAILED...) fail the batch at once.
  A node that cannot be reached uses up no retry (as in Kafka, where the batch waits for a
  connection): the batch goes to the leader the metadata names once it is read again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, cast

from client import limits
from client.accumulator import (
    FUTURE,
    RECORD_BATCH_OVERHEAD,
    Accumulator,
    StickyPartitioner,
    backoff_ms,
    payload_size,
    record_size,
)
from client.batches import NO_HEADERS
from client.client import TransportError
from client.metadata import Metadata, TopicMetadata
from client.producer_config import ConfigException, ProducerConfig
from client.protocol import RECORD_TOO_LARGE, UNKNOWN_PARTITION, UNKNOWN_TOPIC, ApiError, murmur2
from client.record_results import (
    Callback,
    GroupCallback,
    RecordGroup,
    RecordMetadata,
    RecordResults,
)
from client.record_values import as_bytes, parse_headers
from client.sender import ProducerClosed, ProducerTimeout, Sender
from client.sync import LoopThread
from client.transport import Transport

__all__ = [
    "AsyncProducer",
    "Callback",
    "GroupCallback",
    "ConfigException",
    "Producer",
    "ProducerClosed",
    "ProducerConfig",
    "ProducerTimeout",
    "RecordMetadata",
    "RecordResults",
]

# A record's framing beyond its payload is at most this (attributes, two varlongs, the length
# varint): a payload this far below the limits needs no exact size check.
_FRAMING_BYTES_MAX = 1 + 10 + 5 + 5


def run_payloads(values: Sequence[bytes | str | None]) -> tuple[list[int], list[bytes | None]]:
    """send_many's values as bytes (raises as send() does for one that cannot be) and each
    one's :func:`payload_size` as a keyless, headerless record's."""
    if set(map(type, values)) == {bytes}:
        # The usual run (encoded events; the perf tool's): measured in C, not value by value
        # (the loop below was a seventh of kraft-producer-perf-test's CPU).
        datas = cast(list[bytes | None], list(values))
        lengths = list(map(len, cast(list[bytes], datas)))
        first = lengths[0]
        if lengths.count(first) == len(lengths):
            return [payload_size(None, first, ())] * len(lengths), datas
        return [payload_size(None, n, ()) for n in lengths], datas
    payloads: list[int] = []
    datas = []
    data: bytes | None
    for value in values:
        if type(value) is bytes:
            data = value
        elif type(value) is str:
            data = value.encode("utf-8")
        else:
            data = as_bytes(value, "value")
        datas.append(data)
        if data is None:
            payloads.append(payload_size(None, None, ()))
            continue
        size = len(data)
        payloads.append(
            size + (3 if size < 64 else 4) if size < 8192 else payload_size(None, size, ())
        )
    return payloads, datas


class AsyncProducer:
    """Kafka's producer on asyncio (see the module text). Give Kafka producer properties as a
    dict, or fields of :class:`ProducerConfig` as keywords (``bootstrap_servers=...``);
    raises ConfigException for a setting it cannot use."""

    def __init__(
        self,
        config: ProducerConfig | Mapping[str, Any] | None = None,
        /,
        *,
        rng: random.Random | None = None,
        transport: Transport | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(config, ProducerConfig):
            self.config = ProducerConfig.from_properties({}, **{**config.__dict__, **overrides})
        else:
            self.config = ProducerConfig.from_properties(config or {}, **overrides)
        cfg = self.config
        self._rng = rng or random.Random()
        # ``transport`` stands in for the network in tests (an in-memory twin).
        self._transport = transport or Transport(
            cfg.security, connections_max=limits.PRODUCER_CONNECTIONS_MAX
        )
        self.metadata = Metadata(
            self._transport,
            cfg.bootstrap_servers,
            max_age_ms=cfg.metadata_max_age_ms,
            request_timeout_s=cfg.request_timeout_ms / 1000,
        )
        self._acc = Accumulator(cfg.batch_size, cfg.linger_ms / 1000)
        self._sticky = StickyPartitioner(
            cfg.batch_size, cfg.partitioner_adaptive_partitioning_enable, self._rng
        )
        # The exact size check is needed only for a record this close to a limit.
        self._size_limit = min(cfg.max_request_size, cfg.buffer_memory) - RECORD_BATCH_OVERHEAD
        self._buffer_memory = cfg.buffer_memory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffered = 0
        self._space: asyncio.Event | None = None
        self._sender: Sender | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self._flushes = 0

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Opens the connection pool and starts the sender (``async with`` calls it)."""
        if self._sender is None:
            self._transport.open()
            self._loop = asyncio.get_running_loop()
            self._space = asyncio.Event()
            self._sender = Sender(
                self.config, self._acc, self.metadata, self._transport, self._release, self._rng
            )
            self._sender_task = asyncio.create_task(
                self._sender.run(), name="kraft-producer-sender"
            )
            self._sender_task.add_done_callback(self._sender_ended)

    def _sender_ended(self, task: asyncio.Task[None]) -> None:
        """A sender that died of a bug fails every record it held and refuses new ones (the
        error is each record's), rather than leaving callers waiting for ever."""
        error = None if task.cancelled() else task.exception()
        sender = self._sender
        if error is None or sender is None:
            return
        sender.closing = True
        sender.fail_all(error)

    async def __aenter__(self) -> AsyncProducer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _release(self, size: int) -> None:
        self._buffered -= size
        if self._space is not None:
            self._space.set()

    async def flush(self) -> None:
        """Sends every record sent before the call at once (lingering no longer) and waits
        until each is acknowledged or failed."""
        if self._sender is None:
            return
        batches = [*self._acc.batches(), *self._sender.in_flight]
        # A batch's records are done together: its last record's future stands for them all.
        waits: list[Any] = []
        for batch in batches:
            if batch.records:
                last = batch.records[-1][FUTURE]
                waits.append(last.future if type(last) is RecordGroup else last)
        if not waits:
            return
        self._flushes += 1
        self._acc.flushing = True
        self._sender.poke()
        try:
            await asyncio.gather(*waits, return_exceptions=True)
        finally:
            self._flushes -= 1
            self._acc.flushing = self._flushes > 0 or self._sender.closing

    async def close(self, timeout_s: float | None = None) -> None:
        """Sends what waits (up to ``timeout_s``; by default for ever, as Kafka's ``close()``),
        then stops; records still unsent then fail with ProducerClosed."""
        sender, task = self._sender, self._sender_task
        if sender is None or task is None or sender.closed:
            return
        sender.closing = True
        self._acc.flushing = True
        sender.poke()
        # asyncio.wait, not wait_for: a sender that died of a bug (its records failed with
        # the error already) must not make close() raise it again.
        done, _pending = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await sender.stop()
        sender.closed = True
        sender.fail_all(ProducerClosed("Producer is closed forcefully."))
        await self._transport.close()

    # -- sending --------------------------------------------------------------------------------

    async def partitions_for(self, topic: str) -> list[int]:
        """The topic's partitions (reading its metadata, creating it when the cluster
        auto-creates topics)."""
        metadata = await self._wait_metadata(topic, time.monotonic() + self._max_block_s)
        return list(range(metadata.partition_count))

    async def send_and_wait(self, topic: str, value: Any, **kwargs: Any) -> RecordMetadata:
        """Sends one record and waits for its acknowledgement."""
        return await (await self.send(topic, value, **kwargs))

    async def send(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        callback: Callback | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queues one record; returns the future of its RecordMetadata (see the module text).
        ``callback(metadata, error)`` runs on the loop when the record is done, as Kafka's.
        Raises ProducerTimeout when metadata or buffer space is not there in max.block.ms,
        ValueError/TypeError for a record that cannot be one, ProducerClosed after close;
        a record too large gives a future that failed with RECORD_TOO_LARGE."""
        sender = self._sender
        if sender is None or sender.closing:
            raise ProducerClosed("Cannot perform operation after producer has been closed")
        # This runs once per record: the common case (bytes or a str value, no key, no
        # headers) takes the short paths.
        value_bytes: bytes | None
        if type(value) is bytes:
            value_bytes = value
        elif type(value) is str:
            value_bytes = value.encode("utf-8")
        else:
            value_bytes = as_bytes(value, "value")
        key_bytes = None if key is None else as_bytes(key, "key")
        record_headers = parse_headers(headers) if headers else NO_HEADERS
        metadata = self.metadata.cached(topic)
        if metadata is None or not metadata.partitions:
            metadata = await self._wait_metadata(topic, time.monotonic() + self._max_block_s)
        count = len(metadata.partitions)
        sticky = False
        if partition is not None:
            if not 0 <= partition < count:
                raise ValueError(
                    f"Invalid partition given with record: {partition} is not in the range "
                    f"[0...{count})."
                )
            chosen = partition
        elif key_bytes is not None and not self.config.partitioner_ignore_keys:
            chosen = (murmur2(key_bytes) & 0x7FFFFFFF) % count
        else:
            sticky = True
            chosen = self._sticky.partition(topic, count, self._candidates, metadata)
        timestamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        assert self._loop is not None  # set by start(), as the sender is
        future: asyncio.Future[RecordMetadata] = self._loop.create_future()
        value_len = None if value_bytes is None else len(value_bytes)
        if key_bytes is None and not record_headers and value_len is not None and value_len < 8192:
            # payload_size() of the commonest record (no key, no headers), inline.
            payload = value_len + (3 if value_len < 64 else 4)
        else:
            key_len = None if key_bytes is None else len(key_bytes)
            payload = payload_size(key_len, value_len, record_headers)
        if payload + _FRAMING_BYTES_MAX > self._size_limit:
            problem = self._size_problem(RECORD_BATCH_OVERHEAD + record_size(0, 0, payload))
            if problem is not None:
                error = ApiError(RECORD_TOO_LARGE, problem)
                future.set_exception(error)
                if callback is not None:
                    callback(None, error)
                return future
        if self._buffered + payload > self._buffer_memory:
            await self._wait_for_space(payload, time.monotonic() + self._max_block_s)
        size, batch, news = self._acc.append(
            topic,
            chosen,
            payload,
            timestamp,
            key_bytes,
            value_bytes,
            record_headers,
            future,
            callback,
            time.monotonic(),
        )
        self._buffered += size
        if sticky:
            self._sticky.update(topic, chosen, size, batch.full, count, self._candidates, metadata)
        if news:
            sender.poke()
            # A batch started or filled: let the sender (and the requests in flight) run, as
            # Kafka's sender thread would, before the caller queues more.
            await asyncio.sleep(0)
        return future

    async def send_many(
        self,
        topic: str,
        values: Sequence[bytes | str | None],
        callback: GroupCallback | None = None,
    ) -> asyncio.Future[RecordResults]:
        """Queues one keyless record per value (no key, no headers, stamped now), exactly as
        that many :meth:`send` calls would, for callers that produce at high rates: one future
        for them all (their RecordMetadata in order, or the first error) and one
        ``callback(results, first_error)`` when every record is done, instead of one per
        record. ``results`` is a :class:`RecordResults`, a sequence of each record's
        RecordMetadata or None (failed), made only when looked at; its ``acknowledged`` and
        ``failed`` count them without that. Blocks and raises as :meth:`send` does."""
        sender = self._sender
        if sender is None or sender.closing:
            raise ProducerClosed("Cannot perform operation after producer has been closed")
        assert self._loop is not None
        metadata = self.metadata.cached(topic)
        if metadata is None or not metadata.partitions:
            metadata = await self._wait_metadata(topic, time.monotonic() + self._max_block_s)
        timestamp = int(time.time() * 1000)
        group = RecordGroup(self._loop.create_future(), topic, len(values), timestamp, callback)
        if not values:
            return group.future  # done already: no records
        count = len(metadata.partitions)
        payloads, datas = run_payloads(values)
        sticky, candidates = self._sticky, self._candidates
        index = 0
        while index < len(values):
            payload = payloads[index]
            if payload + _FRAMING_BYTES_MAX > self._size_limit:
                problem = self._size_problem(RECORD_BATCH_OVERHEAD + record_size(0, 0, payload))
                if problem is not None:
                    group.failed(1, ApiError(RECORD_TOO_LARGE, problem))
                    index += 1
                    continue
            if self._buffered + payload > self._buffer_memory:
                await self._wait_for_space(payload, time.monotonic() + self._max_block_s)
            chosen = sticky.partition(topic, count, candidates, metadata)
            # Up to the next batch started or filled; records near a limit (too large, no
            # buffer room) one at a time, as above.
            end = index + 1
            room = self._buffer_memory - self._buffered
            while end < len(values) and payloads[end] + _FRAMING_BYTES_MAX <= self._size_limit:
                room -= payloads[end] + _FRAMING_BYTES_MAX
                if room < 0:
                    break
                end += 1
            after, size, batch, news = self._acc.append_run(
                topic, chosen, payloads, datas, index, end, timestamp, group, time.monotonic()
            )
            self._buffered += size
            sticky.update(topic, chosen, size, batch.full, count, candidates, metadata)
            index = after
            if news:
                sender.poke()
                await asyncio.sleep(0)  # let the sender run, as after a send()
        return group.future

    @property
    def _max_block_s(self) -> float:
        return self.config.max_block_ms / 1000

    def _candidates(self, metadata: TopicMetadata) -> tuple[list[int], list[int]]:
        lengths = [
            self._acc.queue_length(metadata.name, p) for p in range(len(metadata.partitions))
        ]
        return metadata.available(), lengths

    def _size_problem(self, size: int) -> str | None:
        if size > self.config.max_request_size:
            return (
                f"The message is {size} bytes when serialized which is larger than "
                f"{self.config.max_request_size}, which is the value of the max.request.size "
                "configuration."
            )
        if size > self.config.buffer_memory:
            return (
                f"The message is {size} bytes when serialized which is larger than the total "
                "memory buffer you have configured with the buffer.memory configuration."
            )
        return None

    async def _wait_metadata(self, topic: str, deadline: float) -> TopicMetadata:
        """The topic's metadata with at least one partition, read (and the topic created,
        where the cluster auto-creates topics) until ``deadline``."""
        attempt = 0
        while True:
            try:
                metadata = await self.metadata.topic(topic, auto_create=True)
                if metadata.partition_count > 0:
                    return metadata
            except ApiError as exc:
                if exc.kind not in (UNKNOWN_TOPIC, UNKNOWN_PARTITION) and not exc.kind.retriable:
                    raise
            except TransportError:
                pass
            self.metadata.invalidate(topic)
            pause = backoff_ms(
                attempt, self.config.retry_backoff_ms, self.config.retry_backoff_max_ms, self._rng
            )
            attempt += 1
            if time.monotonic() + pause / 1000 > deadline:
                raise ProducerTimeout(
                    f"Topic {topic} not present in metadata after {self.config.max_block_ms} ms."
                )
            await asyncio.sleep(pause / 1000)

    async def _wait_for_space(self, size: int, deadline: float) -> None:
        assert self._space is not None
        while self._buffered + size > self.config.buffer_memory:
            self._space.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProducerTimeout(
                    "Failed to allocate memory within the configured max blocking time "
                    f"{self.config.max_block_ms} ms."
                )
            try:
                await asyncio.wait_for(self._space.wait(), left)
            except TimeoutError:
                pass


class Producer:
    """The synchronous twin of :class:`AsyncProducer`, for scripts: the same arguments; its
    own event loop runs on a daemon thread (client/sync.py). ``send`` returns a
    ``concurrent.futures.Future`` of the RecordMetadata; callbacks run on the loop's thread."""

    def __init__(
        self, config: ProducerConfig | Mapping[str, Any] | None = None, /, **overrides: Any
    ) -> None:
        self._thread = LoopThread("kraft-producer")

        async def create() -> AsyncProducer:
            producer = AsyncProducer(config, **overrides)
            await producer.start()
            return producer

        try:
            self._producer = self._thread.run(create())
        except BaseException:
            self._thread.stop()
            raise
        self.config = self._producer.config

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        callback: Callback | None = None,
    ) -> concurrent.futures.Future[RecordMetadata]:
        """Queues one record (blocking at most max.block.ms, as Kafka's ``send``)."""

        async def queue() -> concurrent.futures.Future[RecordMetadata]:
            future = await self._producer.send(
                topic, value, key, partition, timestamp_ms, headers, callback
            )
            result: concurrent.futures.Future[RecordMetadata] = concurrent.futures.Future()

            def copy(done: asyncio.Future[RecordMetadata]) -> None:
                if done.cancelled():
                    result.cancel()
                    return
                error = done.exception()
                if error is not None:
                    result.set_exception(error)
                else:
                    result.set_result(done.result())

            future.add_done_callback(copy)
            return result

        return self._thread.run(queue())

    def partitions_for(self, topic: str) -> list[int]:
        return self._thread.run(self._producer.partitions_for(topic))

    def flush(self) -> None:
        self._thread.run(self._producer.flush())

    def close(self, timeout_s: float | None = None) -> None:
        try:
            self._thread.run(self._producer.close(timeout_s))
        except RuntimeError:
            pass  # closed already
        self._thread.stop()
