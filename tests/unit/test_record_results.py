"""A send_many run's results (client/record_results.py): kept as spans and made into
RecordMetadata only when looked at, they are the same list, item for item, as one
RecordMetadata made per record when it is acknowledged (the eager way they replaced)."""

from __future__ import annotations

import asyncio
import random

import pytest

from client.record_results import RecordGroup, RecordMetadata, RecordResults

TS = 1_700_000_000_000


def _eager(
    topic: str, count: int, spans: list[tuple[int, int, int, int, int]]
) -> list[RecordMetadata | None]:
    """One RecordMetadata per acknowledged record, None for the others, record by record."""
    items: list[RecordMetadata | None] = [None] * count
    for first, n, partition, offset, step in spans:
        for i in range(n):
            items[first + i] = RecordMetadata(topic, partition, offset + i * step, TS)
    return items


def _cut(count: int, rng: random.Random) -> list[tuple[int, int]]:
    """``0:count`` cut into consecutive stretches, in a random order."""
    stretches: list[tuple[int, int]] = []
    first = 0
    while first < count:
        n = rng.randint(1, max(1, count // 3))
        n = min(n, count - first)
        stretches.append((first, n))
        first += n
    rng.shuffle(stretches)
    return stretches


@pytest.mark.parametrize("seed", range(20))
def test_lazy_results_equal_the_metadata_made_record_by_record(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.randint(1, 300)
    results = RecordResults("t", count, TS)
    acknowledged: list[tuple[int, int, int, int, int]] = []
    failed = 0
    for first, n in _cut(count, rng):
        if rng.random() < 0.2:
            results.add_failed(n)
            failed += n
            continue
        step = 0 if rng.random() < 0.1 else 1  # acks=0: every offset -1
        span = (first, n, rng.randrange(6), -1 if not step else rng.randrange(10**9), step)
        results.add_acknowledged(*span)
        acknowledged.append(span)
    expected = _eager("t", count, acknowledged)
    assert results.failed == failed and results.acknowledged == count - failed
    assert len(results) == count
    assert list(results) == expected
    assert results == expected and expected == results
    assert [results[i] for i in range(count)] == expected
    assert results[-1] == expected[-1] and results[1:7] == expected[1:7]
    assert results.count(None) == failed


def test_results_are_tuples_of_recordmetadata_with_their_fields() -> None:
    results = RecordResults("news", 3, TS)
    results.add_acknowledged(0, 3, 2, 40, 1)
    first = results[0]
    assert type(first) is RecordMetadata
    assert first == RecordMetadata("news", 2, 40, TS)
    assert (first.topic, first.partition, first.offset, first.timestamp) == ("news", 2, 40, TS)
    assert results != [first] and results != "abc"


def test_a_group_resolves_its_future_and_calls_back_once_every_record_is_done() -> None:
    async def main() -> None:
        seen: list[tuple[list[RecordMetadata | None], BaseException | None]] = []
        future: asyncio.Future[RecordResults] = asyncio.get_running_loop().create_future()
        group = RecordGroup(future, "t", 5, TS, lambda r, e: seen.append((list(r), e)))
        group.acknowledged(3, 2, 1, 10, 1)
        assert not future.done() and not seen
        group.acknowledged(0, 3, 0, 7, 1)
        assert future.done() and len(seen) == 1
        expected = [
            RecordMetadata("t", 0, 7, TS),
            RecordMetadata("t", 0, 8, TS),
            RecordMetadata("t", 0, 9, TS),
            RecordMetadata("t", 1, 10, TS),
            RecordMetadata("t", 1, 11, TS),
        ]
        assert future.result() == expected
        assert seen == [(expected, None)]

    asyncio.run(main())


def test_a_group_with_a_failed_record_fails_its_future_with_the_first_error() -> None:
    async def main() -> None:
        seen: list[tuple[int, int, BaseException | None]] = []
        future: asyncio.Future[RecordResults] = asyncio.get_running_loop().create_future()
        group = RecordGroup(
            future, "t", 4, TS, lambda r, e: seen.append((r.acknowledged, r.failed, e))
        )
        first, second = ValueError("first"), ValueError("second")
        group.failed(1, first)
        group.acknowledged(1, 2, 0, 0, 1)
        group.failed(1, second)
        assert future.exception() is first
        assert seen == [(2, 2, first)]

    asyncio.run(main())


def test_a_group_of_no_records_is_done_at_once() -> None:
    async def main() -> None:
        seen: list[int] = []
        future: asyncio.Future[RecordResults] = asyncio.get_running_loop().create_future()
        RecordGroup(future, "t", 0, TS, lambda r, e: seen.append(len(r)))
        assert future.result() == [] and seen == [0]

    asyncio.run(main())
