"""Runs of alike records (send_many's records of one size) appended at once by the
accumulator (client/accumulator.py ``_append_alike``) land in the same batches, with the same
sizes and states, as the same records appended one at a time, and build into the bytes they
count."""

from __future__ import annotations

import random

import pytest

from client.accumulator import (
    CALLBACK,
    HEADERS,
    KEY,
    TIMESTAMP,
    UNIFORM_RUN_RECORDS_MIN,
    VALUE,
    Accumulator,
    Batch,
    payload_size,
)
from client.batches import NO_HEADERS, build


def _state(batches: list[Batch]) -> list[tuple[int, int, int, bool, list[int]]]:
    def sizes(batch: Batch) -> list[int]:
        return [size for _key, _value, _headers, size, _ts, _future, _cb in batch.records]

    return [(b.size, b.wire_size, len(b.records), b.full, sizes(b)) for b in batches]


def _one_by_one(values: list[bytes], batch_size: int, timestamp: int) -> list[Batch]:
    acc = Accumulator(batch_size=batch_size, linger_s=1.0)
    for index, value in enumerate(values):
        payload = payload_size(None, len(value), ())
        acc.append("t", 0, payload, timestamp, None, value, NO_HEADERS, None, index, 0.0)
    return list(acc.queues[("t", 0)])


def _in_runs(values: list[bytes], batch_size: int, timestamp: int, run: int) -> list[Batch]:
    acc = Accumulator(batch_size=batch_size, linger_s=1.0)
    payloads = [payload_size(None, len(v), ()) for v in values]
    index = 0
    while index < len(values):
        end = min(len(values), index - index % run + run)
        index, _size, _batch, _news = acc.append_run(
            "t", 0, payloads, list(values), index, end, timestamp, None, 0.0
        )
    return list(acc.queues[("t", 0)])


@pytest.mark.parametrize(
    ("count", "value_bytes", "batch_size", "run"),
    [
        (1000, 100, 16_384, 1000),  # batches of ~140 records
        (1000, 100, 116_000, 1000),  # one batch past 64 records (2-byte offset deltas)
        (9000, 3, 1 << 20, 500),  # past 8,192 records (3-byte offset deltas)
        (300, 50, 61 + 20 * 53, 40),  # batches filled to the byte
        (200, 60, 4000, 9),  # short runs, the shortest taken alike
        (100, 0, 700, 100),  # empty values
    ],
)
def test_alike_records_appended_in_runs_are_batched_as_one_by_one(
    count: int, value_bytes: int, batch_size: int, run: int
) -> None:
    values = [bytes([i % 256]) * value_bytes for i in range(count)]
    assert run >= UNIFORM_RUN_RECORDS_MIN or run == 9
    expected = _one_by_one(values, batch_size, 7_000)
    batches = _in_runs(values, batch_size, 7_000, run)
    assert _state(batches) == _state(expected)
    assert [r[CALLBACK] for b in batches for r in b.records] == list(range(count))
    assert [r[VALUE] for b in batches for r in b.records] == values
    for batch in batches:
        built = build(batch.records, key=KEY, value=VALUE, headers=HEADERS, timestamp=TIMESTAMP)
        assert batch.size == batch.wire_size == len(built)


def test_a_run_joining_a_batch_started_earlier_counts_its_longer_timestamp_delta() -> None:
    acc = Accumulator(batch_size=1 << 20, linger_s=1.0)
    values: list[bytes | None] = [b"v" * 70] * 400
    payloads = [payload_size(None, 70, ())] * 400
    for start, timestamp in ((0, 7_000), (100, 7_050), (200, 7_100), (300, 9_000_000)):
        index = start
        while index < start + 100:
            index, _size, _batch, _news = acc.append_run(
                "t", 0, payloads, values, index, start + 100, timestamp, None, 0.0
            )
    (batch,) = acc.queues[("t", 0)]
    built = build(batch.records, key=KEY, value=VALUE, headers=HEADERS, timestamp=TIMESTAMP)
    assert batch.size == batch.wire_size == len(built)


class _Group:
    """Stands for a send_many group in the records' future slot."""


def _runs_by_scan(batch: Batch) -> list[tuple[int, object, int]]:
    """(position, group, index) of every record of a group, read from the records."""
    found: list[tuple[int, object, int]] = []
    for position, (_k, _v, _h, _s, _t, future, index) in enumerate(batch.records):
        if type(future) is _Group:
            found.append((position, future, index))
    return found


def _runs_listed(batch: Batch) -> list[tuple[int, object, int]]:
    """The same, from the batch's ``group_runs``; their positions must increase."""
    listed = [
        (position + i, group, first + i)
        for position, group, first, count in batch.group_runs
        for i in range(count)
    ]
    assert [p for p, _g, _i in listed] == sorted({p for p, _g, _i in listed})
    return listed


@pytest.mark.parametrize("seed", range(12))
def test_every_group_record_is_in_exactly_one_listed_run_through_drain_and_split(
    seed: int,
) -> None:
    rng = random.Random(seed)
    acc = Accumulator(batch_size=rng.choice([300, 2_000, 16_384]), linger_s=1.0)
    groups = [_Group() for _ in range(3)]
    values: list[bytes | None] = [b"x" * rng.choice([5, 40]) for _ in range(400)]
    payloads = [payload_size(None, len(v or b""), ()) for v in values]
    next_index = dict.fromkeys(groups, 0)
    for _step in range(60):
        if rng.random() < 0.2:  # a record of send(): a future of its own
            acc.append("t", 0, payloads[0], 7_000, None, values[0], NO_HEADERS, object(), None, 0)
            continue
        group = rng.choice(groups)
        start = next_index[group]
        end = min(len(values), start + rng.randint(1, 60))
        if start >= end:
            continue
        index = start
        while index < end:
            index, _size, _batch, _news = acc.append_run(
                "t", 0, payloads, values, index, end, 7_000, group, 0.0
            )
        next_index[group] = end
    queue = acc.queues[("t", 0)]
    drained: list[Batch] = []
    while queue:
        drained.append(acc.drain("t", 0, rng.choice([1_000, 50_000]), 10_000))
    for batch in drained:
        assert _runs_listed(batch) == _runs_by_scan(batch)
        if len(batch.records) > 1:
            parts = acc.split(batch, 0.0)
            assert [r for p in parts for r in p.records] == batch.records
            for part in parts:
                assert _runs_listed(part) == _runs_by_scan(part)
            acc.queues[("t", 0)].clear()
