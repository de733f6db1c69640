"""What the producer hands back for acknowledged records: ``RecordMetadata`` per record, and for
a ``send_many`` run one :class:`RecordGroup` whose results are a :class:`RecordResults`.

A run's results are kept as spans, one per stretch of its records that a batch acknowledged
(first index, count, partition, first offset), and turned into ``RecordMetadata`` tuples only
when someone looks at them. A caller that only counts (the perf tool: how many were
acknowledged, how many failed) never pays for a tuple per record: making them was a quarter of
kraft-producer-perf-test's CPU (Sender._complete, 23-26% in engineer E's profiles), and the
tuples, alive from the acknowledgement to the run's callback, fed the garbage collector's young
generation a thousand objects per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from typing import NamedTuple, overload


class RecordMetadata(NamedTuple):
    """Where an acknowledged record was stored (offset -1 with acks=0, as in Kafka). A named
    tuple: one is made for every record acknowledged, and a tuple is the cheapest to make."""

    topic: str
    partition: int
    offset: int
    timestamp: int


Callback = Callable[[RecordMetadata | None, BaseException | None], None]

# The NamedTuple's own __new__ is a Python function: too slow once per record.
_make_tuple = tuple.__new__


class RecordResults(Sequence[RecordMetadata | None]):
    """A ``send_many`` run's results in order: each record's RecordMetadata, or None for a
    record that failed. A sequence (``len``, indexing, slicing, iteration, ``==`` with a list
    of the same items); the tuples are made on the first look at an item and kept. ``failed``
    counts the records that failed without making anything."""

    __slots__ = ("topic", "timestamp", "failed", "_count", "_spans", "_done", "_items")

    def __init__(self, topic: str, count: int, timestamp: int) -> None:
        self.topic = topic
        self.timestamp = timestamp  # a run's records are all stamped with the same time
        self.failed = 0
        self._count = count
        # (first index, count, partition, first offset, offset step: 1, or 0 with acks=0)
        self._spans: list[tuple[int, int, int, int, int]] = []
        self._done = 0
        self._items: list[RecordMetadata | None] | None = None

    @property
    def acknowledged(self) -> int:
        """How many records were acknowledged (so far)."""
        return self._done - self.failed

    def add_acknowledged(
        self, first: int, count: int, partition: int, offset: int, step: int
    ) -> None:
        """Records ``first:first + count`` stored at ``offset``, ``offset + step``, ..."""
        self._spans.append((first, count, partition, offset, step))
        self._done += count

    def add_failed(self, count: int) -> None:
        self.failed += count
        self._done += count

    def _list(self) -> list[RecordMetadata | None]:
        items = self._items
        if items is not None:
            return items
        items = [None] * self._count
        topic, timestamp, cls = self.topic, self.timestamp, RecordMetadata
        for first, count, partition, offset, step in self._spans:
            offsets = range(offset, offset + count) if step else repeat(offset, count)
            items[first : first + count] = map(
                _make_tuple,
                repeat(cls),
                zip(repeat(topic), repeat(partition), offsets, repeat(timestamp)),
            )
        if self._done == self._count:
            self._items = items  # complete: nothing can change any more
        return items

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> RecordMetadata | None: ...

    @overload
    def __getitem__(self, index: slice) -> list[RecordMetadata | None]: ...

    def __getitem__(
        self, index: int | slice
    ) -> RecordMetadata | None | list[RecordMetadata | None]:
        return self._list()[index]

    def __iter__(self) -> Iterator[RecordMetadata | None]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordResults):
            return self._list() == other._list()
        if isinstance(other, list | tuple):
            return self._list() == list(other)
        return NotImplemented

    # Compared by its items, as a list: unhashable as a list.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RecordResults({self._list()!r})"


GroupCallback = Callable[[RecordResults, BaseException | None], None]


class RecordGroup:
    """The records of one ``send_many`` call: one future for all of them (their results, or
    the first error), and one callback once every record is done. A record's future slot in
    the accumulator holds the group, its callback slot its index; each batch lists the runs of
    a group's records it holds (client/accumulator.py, ``Batch.group_runs``), and the sender
    settles a run at once."""

    __slots__ = ("future", "callback", "results", "left", "error")

    def __init__(
        self,
        future: asyncio.Future[RecordResults],
        topic: str,
        count: int,
        timestamp: int,
        callback: GroupCallback | None,
    ) -> None:
        self.future = future
        self.callback = callback
        self.results = RecordResults(topic, count, timestamp)
        self.left = count
        self.error: BaseException | None = None
        if not count:
            self._finish()

    def acknowledged(self, first: int, count: int, partition: int, offset: int, step: int) -> None:
        """Records ``first:first + count`` were stored at ``offset`` on (``step`` 0: acks=0,
        every offset -1)."""
        self.results.add_acknowledged(first, count, partition, offset, step)
        self.left -= count
        if not self.left:
            self._finish()

    def failed(self, count: int, error: BaseException) -> None:
        """``count`` records failed with ``error`` (the group keeps the first error)."""
        self.results.add_failed(count)
        if self.error is None:
            self.error = error
        self.left -= count
        if not self.left:
            self._finish()

    def _finish(self) -> None:
        if not self.future.done():
            if self.error is None:
                self.future.set_result(self.results)
            else:
                self.future.set_exception(self.error)
                self.future.exception()  # retrieved: the callback may be all the caller uses
        if self.callback is not None:
            self.callback(self.results, self.error)
