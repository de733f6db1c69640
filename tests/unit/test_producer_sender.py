"""The producer's sender against an in-memory twin of the network: where each request goes,
what it carries, and what each answer makes of the batch (retry, redirect, fail)."""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from client.batches import PRODUCER_ID_AT, read_all
from client.client import TransportError
from client.producer import AsyncProducer, Producer, ProducerConfig, ProducerTimeout, RecordMetadata
from client.protocol import BATCH_MEDIA_TYPE, RECORD_TOO_LARGE, ApiError
from client.sender import retry_pause_ms
from client.transport import Answer, NodeUnreachable, Transport

N1, N2 = "http://n1:1", "http://n2:2"
RECORDS = "/v1/topics/t/partitions/0/records"
Reply = Answer | Exception


def error(status: int, code: int, name: str, **extra: Any) -> Answer:
    body = {"error_code": code, "error": name, "message": name.lower(), **extra}
    return Answer(status, {}, orjson.dumps(body))


def stored(first_offset: int, count: int, duplicate: bool = False) -> Callable[[int], Answer]:
    def answer(_records: int) -> Answer:
        body: dict[str, Any] = {
            "topic": "t",
            "partition": 0,
            "base_offset": first_offset,
            "record_count": count,
            "log_start_offset": 0,
            "duplicate": duplicate,
        }
        return Answer(200, {}, orjson.dumps(body))

    return answer


def producer_fields(body: bytes) -> tuple[int, int, int]:
    """The producer id, epoch and base sequence in a produced batch's header."""
    producer_id, epoch, sequence = struct.unpack_from(">qhi", body, PRODUCER_ID_AT)
    return producer_id, epoch, sequence


def values(body: bytes) -> list[bytes | None]:
    return [r.value for r in read_all("t", 0, body, 0)]


def ok(first_offset: int = 0) -> Callable[[int], Answer]:
    """200 with offsets for however many records the request carries."""

    def answer(records: int) -> Answer:
        return stored(first_offset, records)(records)

    return answer


class Held:
    """A reply given only once ``until_requests`` produce requests have arrived (so that
    they are in flight together)."""

    def __init__(self, reply: Any, until_requests: int) -> None:
        self.reply = reply
        self.until_requests = until_requests


class Network(Transport):
    """Two nodes; the topic ``t`` (one partition) led by ``leader``. Produce answers come
    from ``replies`` in order (an Answer, a function of the record count, or an exception to
    raise); a node in ``dead`` cannot be reached."""

    def __init__(self, replies: list[Any], leader: int = 1) -> None:
        super().__init__()
        self.replies = list(replies)
        self.leader = leader
        self.dead: set[str] = set()
        self.produced: list[tuple[str, dict[str, str], bytes]] = []

    def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 0,
    ) -> Answer:
        await asyncio.sleep(0)
        node = url.split("/v1/")[0]
        if node in self.dead:
            raise NodeUnreachable(f"Could not connect to {node}")
        path = "/v1/" + url.split("/v1/", 1)[1]
        if path == "/v1/cluster":
            brokers = [{"id": 1, "url": N1}, {"id": 2, "url": N2}]
            return Answer(200, {}, orjson.dumps({"cluster_id": "c", "brokers": brokers}))
        if path.startswith("/v1/topics/t?"):
            partition = {"partition": 0, "leader": self.leader, "leader_epoch": self.leader}
            return Answer(200, {}, orjson.dumps({"name": "t", "partitions": [partition]}))
        if path == "/v1/producers":
            return Answer(200, {}, b'{"producer_id": 7, "producer_epoch": 0}')
        assert method == "POST" and path.startswith(RECORDS + "?"), (method, url)
        assert body is not None
        assert headers == {"Content-Type": BATCH_MEDIA_TYPE}
        self.produced.append((url, dict(headers or {}), body))
        reply = self.replies.pop(0) if self.replies else ok()
        if isinstance(reply, Held):
            while len(self.produced) < reply.until_requests:
                await asyncio.sleep(0.001)
            reply = reply.reply
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(len(read_all("t", 0, body, 0)))
        assert isinstance(reply, Answer)
        return reply


def run(network: Network, body: Callable[[AsyncProducer], Any], **settings: Any) -> Any:
    async def main() -> Any:
        producer = AsyncProducer(
            bootstrap_servers="n1:1", transport=network, **{"retry_backoff_ms": 1, **settings}
        )
        await producer.start()
        try:
            return await body(producer)
        finally:
            await producer.close(5)

    return asyncio.run(main())


async def send_all(producer: AsyncProducer, *values: str) -> list[RecordMetadata]:
    futures = [await producer.send("t", v, partition=0) for v in values]
    await producer.flush()
    return [f.result() for f in futures]


def test_a_partitions_records_go_to_its_leader_as_one_idempotent_request() -> None:
    network = Network([ok(40)])
    results = run(network, lambda p: send_all(p, "a", "b", "c"))
    assert [r.offset for r in results] == [40, 41, 42]
    ((url, _headers, body),) = network.produced
    assert url.startswith(N1 + RECORDS + "?acks=all")
    assert producer_fields(body) == (7, 0, 0)
    assert values(body) == [b"a", b"b", b"c"]


def test_a_producer_that_is_not_idempotent_sends_no_producer_id() -> None:
    network = Network([ok(0)])
    run(network, lambda p: send_all(p, "a"), enable_idempotence=False, acks="1")
    ((url, _headers, body),) = network.produced
    assert "acks=1" in url
    assert producer_fields(body) == (-1, -1, -1)


def test_the_next_batch_takes_the_next_sequence() -> None:
    network = Network([ok(0), ok(3)])

    async def twice(producer: AsyncProducer) -> None:
        await send_all(producer, "a", "b", "c")
        await send_all(producer, "d")

    run(network, twice)
    assert [producer_fields(b) for _u, _h, b in network.produced] == [(7, 0, 0), (7, 0, 3)]


def test_a_307_sends_the_same_request_at_once_to_the_leader_it_names() -> None:
    moved = Answer(
        307,
        {"Location": N2 + RECORDS, "X-Leader-Id": "2", "X-Leader-Epoch": "9"},
        orjson.dumps({"error_code": 30701, "error": "NOT_LEADER_OR_FOLLOWER"}),
    )
    network = Network([moved, ok(5)])
    results = run(network, lambda p: send_all(p, "a"))
    assert results[0].offset == 5
    (first, second) = network.produced
    assert first[0].startswith(N1) and second[0].startswith(N2)
    assert first[1:] == second[1:], "the same sequence and the same bytes"


def test_a_retriable_error_is_retried_with_the_same_sequence_and_bytes() -> None:
    network = Network([error(503, 50301, "NOT_ENOUGH_REPLICAS"), TransportError("reset"), ok(9)])
    results = run(network, lambda p: send_all(p, "a", "b"))
    assert [r.offset for r in results] == [9, 10]
    assert len(network.produced) == 3
    assert len({b for _u, _h, b in network.produced}) == 1, "the same bytes each time"


def test_a_retry_the_node_recognises_gets_the_original_offsets() -> None:
    network = Network([TransportError("timed out"), stored(20, 2, duplicate=True)])
    results = run(network, lambda p: send_all(p, "a", "b"))
    assert [r.offset for r in results] == [20, 21]


def test_a_non_retriable_error_fails_the_batch_at_once() -> None:
    denied = error(403, 40302, "TOPIC_AUTHORIZATION_FAILED")
    network = Network([denied])

    async def body(producer: AsyncProducer) -> BaseException | None:
        future = await producer.send("t", "a", partition=0)
        await producer.flush()
        return future.exception()

    failure = run(network, body)
    assert isinstance(failure, ApiError) and failure.name == "TOPIC_AUTHORIZATION_FAILED"
    assert len(network.produced) == 1


def test_retries_end_after_retries_attempts_with_the_last_error() -> None:
    busy = error(503, 50302, "LEADER_NOT_AVAILABLE")
    network = Network([busy, busy, busy, busy])

    async def body(producer: AsyncProducer) -> BaseException | None:
        future = await producer.send("t", "a", partition=0)
        await producer.flush()
        return future.exception()

    failure = run(network, body, retries=2, enable_idempotence=False)
    assert isinstance(failure, ApiError) and failure.name == "LEADER_NOT_AVAILABLE"
    assert len(network.produced) == 3  # the first attempt and two retries


def test_a_partition_between_leaders_is_retried_after_the_backoff_not_retry_after() -> None:
    # The node's Retry-After (1 s, the header's smallest) would outlast the delivery timeout.
    between = Answer(
        503,
        {"Retry-After": "1"},
        orjson.dumps({"error_code": 50302, "error": "LEADER_NOT_AVAILABLE", "message": "x"}),
    )
    network = Network([between, ok(3)])
    results = run(
        network,
        lambda p: send_all(p, "a"),
        delivery_timeout_ms=800,
        request_timeout_ms=200,
        linger_ms=0,
    )
    assert [r.offset for r in results] == [3]


def test_delivery_timeout_ends_a_records_attempts_with_the_last_error() -> None:
    network = Network([error(503, 50301, "NOT_ENOUGH_REPLICAS")] * 1000)

    async def body(producer: AsyncProducer) -> BaseException | None:
        future = await producer.send("t", "a", partition=0)
        await producer.flush()
        return future.exception()

    failure = run(network, body, delivery_timeout_ms=300, request_timeout_ms=200, linger_ms=0)
    assert isinstance(failure, ApiError) and failure.name == "NOT_ENOUGH_REPLICAS"


def test_a_record_over_max_request_size_fails_before_anything_is_sent() -> None:
    network = Network([])

    async def body(producer: AsyncProducer) -> BaseException | None:
        future = await producer.send("t", "x" * 2000, partition=0)
        return future.exception()

    failure = run(network, body, max_request_size=1000)
    assert isinstance(failure, ApiError) and failure.kind is RECORD_TOO_LARGE
    assert "which is the value of the max.request.size configuration" in failure.message
    assert network.produced == []


def test_a_dead_leader_is_left_for_the_leader_the_metadata_names_next() -> None:
    network = Network([ok(0)])
    network.dead.add(N1)

    async def body(producer: AsyncProducer) -> list[RecordMetadata]:
        network.leader = 2  # what any live node answers once node 1 is gone
        return await send_all(producer, "a")

    # Bootstrap through node 2 only, leader first named as node 1 by the cached metadata.
    async def main() -> list[RecordMetadata]:
        producer = AsyncProducer(bootstrap_servers="n2:2", transport=network, retry_backoff_ms=1)
        await producer.start()
        network.leader = 1
        await producer.partitions_for("t")  # caches leader 1
        try:
            return await body(producer)
        finally:
            await producer.close(5)

    results = asyncio.run(main())
    assert results[0].offset == 0
    assert [u.split("/v1/")[0] for u, _h, _b in network.produced] == [N2]


def test_max_block_ms_ends_a_send_that_waits_for_buffer_room() -> None:
    network = Network([])

    async def body(producer: AsyncProducer) -> None:
        # The sender never gets to run before the buffer is full: one batch lingers.
        await producer.send("t", "x" * 600, partition=0)
        with pytest.raises(ProducerTimeout, match="Failed to allocate memory within"):
            await producer.send("t", "x" * 600, partition=0)

    run(
        network,
        body,
        buffer_memory=1000,
        max_block_ms=50,
        linger_ms=10_000,
        delivery_timeout_ms=60_000,
    )


def test_a_request_refused_out_of_order_after_a_lost_one_is_sent_again_after_it() -> None:
    out_of_order = error(409, 40903, "OUT_OF_ORDER_SEQUENCE_NUMBER", expected_sequence=0)
    # Both requests are in flight when the first one's answer is lost.
    lost = Held(TransportError("reset"), until_requests=2)
    network = Network([lost, out_of_order, ok(0), ok(1)])

    async def body(producer: AsyncProducer) -> list[RecordMetadata]:
        first = await producer.send("t", "a", partition=0)
        while not network.produced:  # sent alone, before the second record exists
            await asyncio.sleep(0.001)
        second = await producer.send("t", "b", partition=0)
        await producer.flush()
        return [first.result(), second.result()]

    results = run(network, body, linger_ms=0, max_in_flight_requests_per_connection=2)
    assert [r.offset for r in results] == [0, 1]
    sequences = [producer_fields(b)[2] for _u, _h, b in network.produced]
    assert sequences == [0, 1, 0, 1], "the retries go in sequence order"
    assert network.produced[0][2] == network.produced[2][2], "a retry sends the same bytes"


def test_the_synchronous_producer_sends_and_waits_on_its_own_loop() -> None:
    network = Network([ok(3)])
    with Producer(bootstrap_servers="n1:1", transport=network, linger_ms=0) as producer:
        future = producer.send("t", b"\xff\x00", key="k", partition=0)
        assert future.result(timeout=10) == RecordMetadata("t", 0, 3, future.result().timestamp)
        assert producer.partitions_for("t") == [0]
    ((_url, _headers, body),) = network.produced
    (record,) = read_all("t", 0, body, 0)
    assert (record.key, record.value) == (b"k", b"\xff\x00")


def test_a_batch_that_cannot_be_built_fails_its_records_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: Any, **_kw: Any) -> bytes:
        raise RuntimeError("the builder broke")

    monkeypatch.setattr("client.sender.build", broken)
    network = Network([])

    async def body(producer: AsyncProducer) -> BaseException | None:
        future = await producer.send("t", "a", partition=0)
        await asyncio.wait_for(producer.flush(), 10)
        return future.exception()

    failure = run(network, body)
    assert isinstance(failure, RuntimeError) and str(failure) == "the builder broke"
    assert network.produced == []


def test_a_sender_that_dies_fails_every_record_and_refuses_new_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from client.sender import ProducerClosed, Sender

    def broken(*_args: Any, **_kw: Any) -> None:
        raise RuntimeError("a bug in the sender")

    monkeypatch.setattr(Sender, "_try_send", broken)

    async def body(producer: AsyncProducer) -> BaseException | None:
        future = await producer.send("t", "a", partition=0)
        await producer.flush()  # the sender dies at its next wake
        error = await asyncio.wait_for(asyncio.gather(future, return_exceptions=True), 10)
        with pytest.raises(ProducerClosed):
            await producer.send("t", "b", partition=0)
        result = error[0]
        assert isinstance(result, BaseException)
        return result

    failure = run(Network([]), body)
    assert isinstance(failure, RuntimeError) and str(failure) == "a bug in the sender"


class SmallTopic(Network):
    """A topic whose max.message.bytes is ``limit``: a larger batch is refused (413), a
    smaller one stored at the next offsets."""

    def __init__(self, limit: int) -> None:
        super().__init__([])
        self.limit = limit
        self.stored: list[bytes | None] = []

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 0,
    ) -> Answer:
        if body is None or "/records?" not in url:
            return await super().exchange(method, url, body=body, headers=headers)
        self.produced.append((url, dict(headers or {}), body))
        if len(body) > self.limit:
            return error(413, 41301, "RECORD_TOO_LARGE")
        base = len(self.stored)
        self.stored.extend(values(body))
        return stored(base, len(values(body)))(0)


@pytest.mark.parametrize("idempotent", [True, False])
def test_a_batch_over_the_topics_max_message_bytes_is_split_and_sent_again_in_order(
    idempotent: bool,
) -> None:
    network = SmallTopic(limit=3000)
    sent = [b"v%03d" % i + b"x" * 96 for i in range(100)]

    async def body(producer: AsyncProducer) -> list[RecordMetadata]:
        futures = [await producer.send("t", v, partition=0) for v in sent]
        await producer.flush()
        return [f.result() for f in futures]

    settings: dict[str, Any] = {"linger_ms": 10_000, "batch_size": 1 << 20}
    if not idempotent:
        settings |= {"enable_idempotence": False, "acks": "1"}
    results = run(network, body, **settings)
    assert network.stored == sent, "every record once, in order"
    assert [r.offset for r in results] == list(range(100))
    refused = [b for _u, _h, b in network.produced if len(b) > network.limit]
    assert len(refused) >= 1 and len(values(refused[0])) == 100
    accepted = [b for _u, _h, b in network.produced if len(b) <= network.limit]
    if idempotent:
        sequences = [producer_fields(b)[2] for b in accepted]
        counts = [len(values(b)) for b in accepted]
        assert sequences == [sum(counts[:i]) for i in range(len(counts))]
    else:
        assert all(producer_fields(b) == (-1, -1, -1) for b in accepted)


def test_a_single_record_over_max_message_bytes_fails_with_record_too_large() -> None:
    network = SmallTopic(limit=100)

    async def body(producer: AsyncProducer) -> BaseException | None:
        future = await producer.send("t", "x" * 200, partition=0)
        await producer.flush()
        return future.exception()

    failure = run(network, body)
    assert isinstance(failure, ApiError) and failure.kind is RECORD_TOO_LARGE
    assert len(network.produced) == 1


# -- a failover: a dead leader, then a new one that has not heard it leads yet ------------------


def test_the_backoff_grows_only_with_attempts_that_reached_a_node() -> None:
    config = ProducerConfig.from_properties(
        {"bootstrap.servers": "n1:1", "retry.backoff.ms": "100", "retry.backoff.max.ms": "1000"}
    )
    rng = random.Random(7)
    for delivered, low, high in [(0, 80, 120), (1, 80, 120), (2, 160, 240), (4, 640, 960)]:
        assert low <= retry_pause_ms(delivered, None, config, rng) <= high
    assert retry_pause_ms(9, None, config, rng) == 1000
    assert retry_pause_ms(9, 0.0, config, rng) == 0.0  # a 307 naming the leader: at once
    assert retry_pause_ms(1, 0.5, config, rng) == 500  # a Retry-After above the backoff


def retry_pauses(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The sender's "retry in N ms" debug lines, in order."""
    return [
        float(r.getMessage().rsplit(" ", 2)[-2])
        for r in caplog.records
        if r.name == "client.sender" and "retry in" in r.getMessage()
    ]


class Failover(Network):
    """Node 1 leads, then is gone: its connections are refused, and once ``refusals_left``
    attempts have been refused the metadata names node 2 at leader epoch 2."""

    def __init__(self, replies: list[Any], refusals_left: int) -> None:
        super().__init__(replies, leader=1)
        self.refusals_left = refusals_left

    async def exchange(self, method: str, url: str, **kwargs: Any) -> Answer:
        if url.startswith(N1 + RECORDS) and self.leader == 1:
            self.refusals_left -= 1
            if self.refusals_left == 0:
                self.leader = 2
            raise NodeUnreachable(f"Could not connect to {N1}")
        return await super().exchange(method, url, **kwargs)


def test_a_dead_leader_is_looked_up_again_every_retry_backoff_not_ever_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="client.sender")
    network = Failover([ok(4)], refusals_left=6)
    results = run(network, lambda p: send_all(p, "a"), retry_backoff_ms=10, retries=2)
    assert results[0].offset == 4
    assert [u.split("/v1/")[0] for u, _h, _b in network.produced] == [N2]
    pauses = retry_pauses(caplog)
    # Six refused connections, none of them a retry used up; each waits the first backoff
    # (10 ms +-20%), where a grown one would have reached 320 ms by the sixth.
    assert len(pauses) == 6 and max(pauses) <= 12


def test_a_new_leader_that_has_not_applied_its_election_is_asked_again_without_growing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The metadata (from a node ahead) names node 2 at epoch 2; node 2 itself still names
    # node 1 at epoch 1 in its 307s, twice, then leads.
    caplog.set_level(logging.DEBUG, logger="client.sender")
    behind = Answer(
        307,
        {"Location": N1 + RECORDS, "X-Leader-Id": "1", "X-Leader-Epoch": "1"},
        orjson.dumps({"error_code": 30701, "error": "NOT_LEADER_OR_FOLLOWER"}),
    )
    network = Network([behind, behind, ok(8)], leader=2)
    results = run(network, lambda p: send_all(p, "a"), retry_backoff_ms=10, retries=1)
    assert results[0].offset == 8
    assert [u.split("/v1/")[0] for u, _h, _b in network.produced] == [N2, N2, N2]
    pauses = retry_pauses(caplog)
    assert len(pauses) == 2 and max(pauses) <= 12
