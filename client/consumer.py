"""The Consumer: Kafka's consumer over the nodes' HTTP API, asyncio at heart, with a sync twin.

    consumer = Consumer({"bootstrap.servers": "localhost:9092", "group.id": "billing",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders"])
    while True:
        for record in consumer.poll(1000):
            handle(record.key, record.value)     # bytes, exactly as produced

Theory of operation:

- **Partitions**: :meth:`AsyncConsumer.assign` names them (no group needed), or
  :meth:`AsyncConsumer.subscribe` lets the group's coordinator hand them out (``group.id``
  required; Kafka 4's consumer protocol, see client/group_member.py). Subscribing and
  assigning are exclusive, as in Kafka.
- **Fetching**: each owned partition has a task that long-polls the partition's leader
  (``fetch.max.wait.ms``, up to ``max.partition.fetch.bytes``, ``format=binary`` so bytes come
  back exactly) and keeps up to ``FETCH_AHEAD_BATCHES`` answers buffered, so the partitions are
  read in parallel and the next batch is on its way while the application handles this one.
  Leader changes and dead nodes are followed by client/consumer_client.py; retriable errors and
  lost connections are retried, with backoff, for as long as the consumer runs (Kafka's
  consumer never gives up on a partition either).
- **Positions**: :meth:`poll` returns at most ``max.poll.records`` buffered records and moves
  each partition's position past what it returned (not past what was fetched); that position
  is what :meth:`commit` commits (the next offset to read). A partition with no committed
  offset, or whose position falls out of the log (OFFSET_OUT_OF_RANGE), starts at
  ``auto.offset.reset`` (``latest`` by default; ``none`` raises instead).
- **Commits**: ``enable.auto.commit`` (default with a group) commits the positions every
  ``auto.commit.interval.ms`` from :meth:`poll`, when partitions are revoked, and on
  :meth:`close`. Commits of a group member carry its member id and epoch.
- **Rebalances** run inside :meth:`poll`, as in Kafka: revoked partitions stop fetching, their
  positions are committed, ``on_partitions_revoked`` is called, and the next heartbeat reports
  them given up; new partitions start at their committed offset and ``on_partitions_assigned``
  is called. A fenced member's partitions are lost (``on_partitions_lost``, nothing committed)
  and it joins again.
- **Isolation**: a node serves only records below the high watermark (stored by every in-sync
  replica), and there are no transactions, so ``isolation.level`` read_committed and
  read_uncommitted read the same records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from client.async_consumer import (
    AsyncConsumer,
    ConsumerRebalanceListener,
    IllegalStateError,
    Offsets,
)
from client.consumer_config import ConsumerConfig, ConsumerConfigError
from client.consumer_fetch import ConsumerRecord, NoOffsetForPartitionError
from client.group_member import TopicPartition
from client.security import ClientSecurity
from client.sync import LoopThread

__all__ = [
    "AsyncConsumer",
    "Consumer",
    "ConsumerConfigError",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "IllegalStateError",
    "NoOffsetForPartitionError",
    "TopicPartition",
]


class _ThreadedListener(ConsumerRebalanceListener):
    """Runs a sync consumer's listener on a worker thread, so that the listener may call the
    consumer (whose calls run on the event loop, which is free while it waits here)."""

    def __init__(self, listener: ConsumerRebalanceListener) -> None:
        self._listener = listener

    async def on_partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        await asyncio.to_thread(self._listener.on_partitions_revoked, partitions)

    async def on_partitions_assigned(self, partitions: list[TopicPartition]) -> None:
        await asyncio.to_thread(self._listener.on_partitions_assigned, partitions)

    async def on_partitions_lost(self, partitions: list[TopicPartition]) -> None:
        await asyncio.to_thread(self._listener.on_partitions_lost, partitions)


class Consumer:
    """The synchronous twin of :class:`AsyncConsumer`: the same methods, run on a private
    event loop thread (client/sync.LoopThread). Not safe to use from several threads at once,
    like Kafka's KafkaConsumer."""

    def __init__(
        self, config: Mapping[str, object], *, security: ClientSecurity | None = None
    ) -> None:
        self._thread = LoopThread("kraft-consumer")

        async def make() -> AsyncConsumer:
            return AsyncConsumer(config, security=security)

        try:
            self._consumer = self._thread.run(make())
        except BaseException:
            self._thread.stop()
            raise

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def config(self) -> ConsumerConfig:
        return self._consumer.config

    def assign(self, partitions: Iterable[tuple[str, int]]) -> None:
        self._thread.run(self._consumer.assign(list(partitions)))

    def subscribe(
        self, topics: Iterable[str], listener: ConsumerRebalanceListener | None = None
    ) -> None:
        wrapped = None if listener is None else _ThreadedListener(listener)
        self._thread.run(self._consumer.subscribe(list(topics), wrapped))

    def assignment(self) -> set[TopicPartition]:
        async def get() -> set[TopicPartition]:
            return self._consumer.assignment()

        return self._thread.run(get())

    def subscription(self) -> list[str]:
        return self._consumer.subscription()

    def partitions_for_topic(self, topic: str) -> list[int]:
        return self._thread.run(self._consumer.partitions_for_topic(topic))

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> list[ConsumerRecord]:
        return self._thread.run(self._consumer.poll(timeout_ms, max_records))

    def position(self, tp: tuple[str, int]) -> int:
        return self._thread.run(self._consumer.position(tp))

    def seek(self, tp: tuple[str, int], offset: int) -> None:
        self._thread.run(self._consumer.seek(tp, offset))

    def seek_to_beginning(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        self._thread.run(self._consumer.seek_to_beginning(partitions))

    def seek_to_end(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        self._thread.run(self._consumer.seek_to_end(partitions))

    def offsets_for_times(self, timestamps: Offsets) -> dict[TopicPartition, int | None]:
        return self._thread.run(self._consumer.offsets_for_times(timestamps))

    def beginning_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int]:
        return self._thread.run(self._consumer.beginning_offsets(list(partitions)))

    def end_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int]:
        return self._thread.run(self._consumer.end_offsets(list(partitions)))

    def commit(self, offsets: Offsets | None = None) -> None:
        self._thread.run(self._consumer.commit(offsets))

    def commit_async(
        self,
        offsets: Offsets | None = None,
        callback: Callable[[dict[TopicPartition, int], BaseException | None], Any] | None = None,
    ) -> None:
        """Starts a commit and returns at once; ``callback`` runs on the consumer's thread."""

        async def start() -> None:
            self._consumer.commit_async(offsets, callback)

        self._thread.run(start())

    def committed(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int | None]:
        return self._thread.run(self._consumer.committed(list(partitions)))

    def close(self) -> None:
        """Closes the consumer (see :meth:`AsyncConsumer.close`) and stops its thread."""
        try:
            self._thread.run(self._consumer.close())
        except RuntimeError:
            pass  # closed already: the thread is gone
        finally:
            self._thread.stop()
