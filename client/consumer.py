"""The Consumer: Kafka's consumer over the nodes' HTTP API, asyncio at heart, with a sync twin.

    consumer = Consumer({"bootstrap.servers": "localhost:9092", "group.id": "billing",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["orders"])
    while True:
        for record in consumer.poll(1000):
            handle(record.key, record.value)     # bytes, exactly as produced

The public face of the consumer: :class:`Consumer` (synchronous, for scripts) and
:class:`AsyncConsumer` (asyncio), with Kafka's consumer properties and method names
(``assign``, ``subscribe``, ``poll``, ``position``, ``seek``, ``seek_to_beginning``,
``seek_to_end``, ``offsets_for_times``, ``commit``, ``commit_async``, ``committed``, ``close``).
Where each part lives:

- client/async_consumer.py: AsyncConsumer, its theory of operation (positions, commits,
  rebalances inside ``poll``, what ``isolation.level`` means here);
- client/consumer_fetch.py: the per-partition long polls and the records they decode;
- client/consumer_client.py: HTTP to each partition's leader and the group's coordinator;
- client/group_member.py: the member's half of Kafka 4's consumer protocol (KIP-848), pure;
- client/consumer_offsets.py: committing and reading a group's offsets;
- client/consumer_config.py: the properties, checked once.

:class:`Consumer` runs an AsyncConsumer on a private event loop thread; a rebalance listener
given to it runs on a worker thread while the caller waits in ``poll`` or ``close``.
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
