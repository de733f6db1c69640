"""A Kafka connection's pipelined requests (server/kafka/listener.py): the listener's reader
and writer over an in-memory stream, with a scripted handler for Produce that the test steps
through (when it starts, when it ends its ordered part, when it answers); and the Produce
handler's own ordered part (server/kafka/data_apis.py) with a fake append. No sockets."""

from __future__ import annotations

import asyncio
import datetime
import io
import struct
from collections.abc import Callable, Coroutine
from types import SimpleNamespace
from typing import Any, cast

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_writer
from prometheus_client import CollectorRegistry

from server.kafka import data_apis
from server.kafka.apis import ApiSpec, ApiTable, RequestContext
from server.kafka.entities import build
from server.kafka.frames import CloseConnection, FrameError
from server.kafka.limits import REQUESTS_IN_FLIGHT_MAX
from server.kafka.listener import KafkaListener
from server.metrics import KafkaRequestMetrics
from storage.batch import NewRecord, build_batch
from tests.unit.test_kafka_groups import FakeNode, context, metadata

PRODUCE_VERSION = 9
FRAME_SIZE = struct.Struct(">i")


class Script:
    """The scripted Produce handler: each request (by correlation id) starts, then waits for
    ``order[cid]`` to end its ordered part, then for ``finish[cid]`` to answer."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.order: dict[int, asyncio.Event] = {}
        self.finish: dict[int, asyncio.Event] = {}
        self.fail: set[int] = set()  # these raise CloseConnection in their ordered part
        self.changed = asyncio.Event()

    def _note(self, what: str, cid: int) -> None:
        self.events.append((what, cid))
        self.changed.set()

    def gates(self, cid: int) -> tuple[asyncio.Event, asyncio.Event]:
        return self.order.setdefault(cid, asyncio.Event()), self.finish.setdefault(
            cid, asyncio.Event()
        )

    async def handler(self, ctx: RequestContext, request: Any) -> Any:
        cid = ctx.correlation_id
        order, finish = self.gates(cid)
        self._note("start", cid)
        try:
            await order.wait()
            if cid in self.fail:
                raise CloseConnection(f"request {cid} failed")
            ctx.release_order()
            await finish.wait()
        except asyncio.CancelledError:
            self._note("cancelled", cid)
            raise
        self._note("answer", cid)
        return build(
            load_response_schema(ctx.api_key, ctx.api_version),
            {"throttle_time": 0, "responses": []},
        )

    def started(self) -> list[int]:
        return [cid for what, cid in self.events if what == "start"]


class Writer:
    """What the listener writes, collected."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None

    def answers(self) -> list[int]:
        """The correlation ids of the answer frames written, in order."""
        ids, at = [], 0
        while at < len(self.data):
            (size,) = FRAME_SIZE.unpack_from(self.data, at)
            ids.append(FRAME_SIZE.unpack_from(self.data, at + 4)[0])
            at += 4 + size
        return ids


def produce_frame(cid: int) -> bytes:
    request_cls = load_request_schema(0, PRODUCE_VERSION)
    body = build(
        request_cls,
        {"acks": -1, "timeout": datetime.timedelta(seconds=5), "topic_data": []},
    )
    header_cls = request_cls.__header_schema__
    header = build(
        header_cls,
        {
            "request_api_key": 0,
            "request_api_version": PRODUCE_VERSION,
            "correlation_id": cid,
            "client_id": "t",
        },
    )
    buffer = io.BytesIO()
    entity_writer(header_cls)(buffer, header)
    entity_writer(request_cls)(buffer, body)
    return FRAME_SIZE.pack(len(buffer.getvalue())) + buffer.getvalue()


class Connection:
    """One connection of a listener whose only API is the scripted Produce."""

    def __init__(self, script: Script) -> None:
        config = SimpleNamespace(
            queued_max_request_bytes=1 << 20,
            socket_request_max_bytes=1 << 20,
            connections_max_idle_ms=600_000,
            request_read_timeout_ms=30_000,
            kafka_tls=False,
            kafka_sasl=False,
        )
        node = SimpleNamespace(
            metrics=SimpleNamespace(kafka=KafkaRequestMetrics(CollectorRegistry()))
        )
        table = ApiTable((ApiSpec(0, PRODUCE_VERSION, PRODUCE_VERSION, script.handler),))
        self.listener = KafkaListener(cast(Any, node), cast(Any, config), table)
        self.reader = asyncio.StreamReader()
        self.writer = Writer()
        self.serving = asyncio.create_task(
            self.listener._serve(1, "10.0.0.9", self.reader, cast(Any, self.writer))
        )

    def send(self, *cids: int) -> None:
        self.reader.feed_data(b"".join(produce_frame(cid) for cid in cids))


async def settle() -> None:
    """Lets every task that can run, run."""
    for _ in range(200):
        await asyncio.sleep(0)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_each_request_starts_once_the_ordered_part_before_it_is_done() -> None:
    async def test() -> None:
        script = Script()
        connection = Connection(script)
        connection.send(1, 2, 3)
        await settle()
        assert script.started() == [1]
        script.gates(1)[0].set()  # request 1 ends its ordered part; it has not answered
        await settle()
        assert script.started() == [1, 2]
        script.gates(2)[0].set()
        await settle()
        assert script.started() == [1, 2, 3]
        assert connection.writer.answers() == []
        connection.serving.cancel()
        await asyncio.gather(connection.serving, return_exceptions=True)

    run(test)


def test_answers_are_written_in_request_order_when_later_ones_finish_first() -> None:
    async def test() -> None:
        script = Script()
        connection = Connection(script)
        connection.send(1, 2, 3)
        for cid in (1, 2, 3):
            script.gates(cid)[0].set()
        await settle()
        script.gates(3)[1].set()
        script.gates(2)[1].set()
        await settle()
        assert ("answer", 3) in script.events and ("answer", 2) in script.events
        assert connection.writer.answers() == []  # 1 has not answered
        script.gates(1)[1].set()
        await settle()
        assert connection.writer.answers() == [1, 2, 3]
        connection.reader.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError):
            await connection.serving

    run(test)


def test_at_most_requests_in_flight_max_of_a_connection_are_read() -> None:
    async def test() -> None:
        script = Script()
        connection = Connection(script)
        cids = list(range(1, REQUESTS_IN_FLIGHT_MAX + 4))
        for cid in cids:
            script.gates(cid)[0].set()  # every ordered part ends at once
        connection.send(*cids)
        await settle()
        assert script.started() == cids[:REQUESTS_IN_FLIGHT_MAX]
        script.gates(1)[1].set()  # one answered: one more is read
        await settle()
        assert script.started() == cids[: REQUESTS_IN_FLIGHT_MAX + 1]
        assert connection.writer.answers() == [1]
        connection.serving.cancel()
        await asyncio.gather(connection.serving, return_exceptions=True)

    run(test)


def test_a_closing_connection_cancels_its_requests_in_flight_and_gives_their_bytes_back() -> None:
    async def test() -> None:
        script = Script()
        connection = Connection(script)
        connection.send(1, 2)
        script.gates(1)[0].set()
        script.gates(2)[0].set()
        await settle()
        assert script.started() == [1, 2]
        assert connection.listener._budget.held_bytes > 0
        connection.reader.feed_eof()  # the client went away
        with pytest.raises(asyncio.IncompleteReadError):
            await connection.serving
        assert sorted(cid for what, cid in script.events if what == "cancelled") == [1, 2]
        assert connection.listener._budget.held_bytes == 0
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no task left behind

    run(test)


def test_a_request_that_fails_closes_the_connection_after_the_answers_before_it() -> None:
    async def test() -> None:
        script = Script()
        script.fail.add(2)
        connection = Connection(script)
        connection.send(1, 2, 3)
        script.gates(1)[0].set()
        script.gates(1)[1].set()
        await settle()
        script.gates(2)[0].set()  # 2 fails in its ordered part: 3 never starts
        with pytest.raises(CloseConnection):
            await connection.serving
        assert script.started() == [1, 2]
        assert connection.writer.answers() == [1]
        assert connection.listener._budget.held_bytes == 0
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(test)


def test_bad_input_behind_requests_in_flight_closes_the_connection_after_their_answers() -> None:
    async def test() -> None:
        script = Script()
        connection = Connection(script)
        connection.send(1, 2)
        connection.reader.feed_data(FRAME_SIZE.pack(3) + b"abc")  # no request header fits
        for cid in (1, 2):
            script.gates(cid)[0].set()
        await settle()
        assert script.started() == [1, 2] and not connection.serving.done()
        script.gates(2)[1].set()
        script.gates(1)[1].set()
        with pytest.raises(FrameError):
            await connection.serving
        assert connection.writer.answers() == [1, 2]
        assert connection.listener._budget.held_bytes == 0

    run(test)


# -- the Produce handler's ordered part ---------------------------------------------------------


class WaitingPartition:
    """A leader whose high watermark passes the batch when the test says."""

    def __init__(self) -> None:
        self.is_leader = True
        self.log = SimpleNamespace(log_start_offset=0)
        self.committed = asyncio.Event()

    async def wait_for_high_watermark_above(self, offset: int, timeout_s: float) -> bool:
        await self.committed.wait()
        return True

    def acks_all_error(self, last_offset: int) -> None:
        return None


def _produce(acks: int) -> Any:
    return build(
        load_request_schema(0, PRODUCE_VERSION),
        {
            "acks": acks,
            "timeout": datetime.timedelta(seconds=5),
            "topic_data": [
                {
                    "name": "orders",
                    "partition_data": [
                        {"index": i, "records": build_batch([NewRecord(b"k", b"v", 1)])}
                        for i in (0, 1)
                    ],
                }
            ],
        },
    )


@pytest.mark.parametrize("acks", [-1, 1])
def test_a_produce_ends_its_ordered_part_once_appended_only_for_acks_all(
    monkeypatch: pytest.MonkeyPatch, acks: int
) -> None:
    async def test() -> None:
        partitions = {0: WaitingPartition(), 1: WaitingPartition()}
        appended: list[tuple[int, str, float]] = []

        async def append(
            node: Any, topic: str, index: int, body: bytes, acks: str, timeout_s: float
        ) -> Any:
            appended.append((index, acks, timeout_s))
            info = SimpleNamespace(first_offset=10 * index, last_offset=10 * index)
            return partitions[index], SimpleNamespace(infos=[info], commit_error=None)

        monkeypatch.setattr(data_apis, "append_producer_batch", append)
        released: list[list[int]] = []
        base = context(FakeNode(metadata()), 0, PRODUCE_VERSION)
        ctx = RequestContext(
            base.node,
            0,
            PRODUCE_VERSION,
            base.correlation_id,
            base.client_id,
            base.principal,
            base.client_host,
            release_order=lambda: released.append([index for index, *_ in appended]),
        )
        answering = asyncio.create_task(data_apis.produce(ctx, _produce(acks)))
        await settle()
        if acks == 1:
            assert answering.done() and released == []  # the whole handler is ordered
        else:
            # Both partitions appended, with no time for append_producer_batch's own wait;
            # the answer waits for the high watermark of both.
            assert released == [[0, 1]]
            assert {(i, a, t) for i, a, t in appended} == {(0, "all", 0.0), (1, "all", 0.0)}
            partitions[0].committed.set()
            await settle()
            assert not answering.done()
            partitions[1].committed.set()
        response = await answering
        answers = response.responses[0].partition_responses
        assert [(a.index, a.base_offset, a.error_code) for a in answers] == [
            (0, 0, ErrorCode.none),
            (1, 10, ErrorCode.none),
        ]

    run(test)
