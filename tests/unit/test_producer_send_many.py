"""send_many through the sender, against the in-memory network of test_producer_sender: a run's
results name each record's partition, offset and timestamp as send() would, are settled a run
at a time, and the callbacks of a partition's records still run in the order sent."""

from __future__ import annotations

from typing import Any

import pytest

from client.accumulator import payload_size
from client.producer import AsyncProducer, RecordMetadata, RecordResults, run_payloads
from client.protocol import ApiError
from client.transport import Answer
from tests.unit.test_producer_sender import Network, error, ok, run


def test_a_runs_results_are_the_offsets_the_leader_answered_in_order() -> None:
    network = Network([ok(100), ok(200)])

    async def body(producer: AsyncProducer) -> tuple[RecordResults, RecordResults]:
        first = await producer.send_many("t", [b"a", b"b", b"c"])
        await producer.flush()
        second = await producer.send_many("t", ["d", "e"])
        await producer.flush()
        return first.result(), second.result()

    def offset(metadata: RecordMetadata | None) -> tuple[str, int, int]:
        assert metadata is not None
        return metadata.topic, metadata.partition, metadata.offset

    first, second = run(network, body)
    assert len(network.produced) == 2
    (a, b, c), (d, e) = list(first), list(second)
    assert [offset(m) for m in (a, b, c, d, e)] == [
        ("t", 0, 100),
        ("t", 0, 101),
        ("t", 0, 102),
        ("t", 0, 200),
        ("t", 0, 201),
    ]
    assert a is not None and b is not None and c is not None
    assert a.timestamp == b.timestamp == c.timestamp > 0
    assert (first.acknowledged, first.failed) == (3, 0)
    assert first == [RecordMetadata("t", 0, 100 + i, a.timestamp) for i in range(3)]


def at(metadata: RecordMetadata | None) -> int | None:
    return None if metadata is None else metadata.offset


def test_callbacks_of_sends_and_runs_in_one_batch_run_in_the_order_sent() -> None:
    network = Network([ok(10)])
    seen: list[Any] = []

    async def body(producer: AsyncProducer) -> None:
        await producer.send("t", b"one", partition=0, callback=lambda m, e: seen.append(at(m)))
        await producer.send_many(
            "t", [b"x", b"y"], callback=lambda r, e: seen.append([at(m) for m in r])
        )
        await producer.send("t", b"two", partition=0, callback=lambda m, e: seen.append(at(m)))
        await producer.flush()

    run(network, body, linger_ms=1000)
    assert len(network.produced) == 1, "one batch"
    assert seen == [10, [11, 12], 13]


def test_a_run_whose_batch_fails_counts_its_records_failed_and_fails_its_future() -> None:
    network = Network([error(400, 87, "INVALID_RECORD")])
    seen: list[tuple[int, int, list[Any], str]] = []

    async def body(producer: AsyncProducer) -> BaseException | None:
        future = await producer.send_many(
            "t",
            [b"a", b"b"],
            callback=lambda r, e: seen.append(
                (r.acknowledged, r.failed, list(r), type(e).__name__)
            ),
        )
        await producer.flush()
        return future.exception()

    exc = run(network, body)
    assert isinstance(exc, ApiError)
    assert seen == [(0, 2, [None, None], "ApiError")]


def test_acks_0_results_carry_offset_minus_one_as_kafkas() -> None:
    async def body(producer: AsyncProducer) -> list[int]:
        future = await producer.send_many("t", [b"a", b"b"])
        await producer.flush()
        return [m.offset for m in future.result() if m is not None]

    network = Network([Answer(202, {}, b"")])  # acks=0: the node answers at once, no offsets
    assert run(network, body, acks="0", enable_idempotence=False) == [-1, -1]


@pytest.mark.parametrize(
    "values",
    [
        [b"x" * 100] * 50,  # the perf tool's run: one value, measured once
        [b"a", b"bb" * 40, b"", b"c" * 9000],  # bytes of every varint width
        ["é", b"b", None, bytearray(b"cd")],  # str, None and bytes-like, one by one
        [b"x" * 8192] * 3,
    ],
)
def test_a_runs_payloads_are_each_records_payload_size(values: list[Any]) -> None:
    payloads, datas = run_payloads(values)
    expected = [
        None if v is None else v.encode() if isinstance(v, str) else bytes(v) for v in values
    ]
    assert datas == expected
    assert payloads == [payload_size(None, None if d is None else len(d), ()) for d in expected]


def test_a_run_value_that_cannot_be_bytes_is_refused_as_send_refuses_it() -> None:
    with pytest.raises(TypeError):
        run_payloads([b"a", 5])  # type: ignore[list-item]
