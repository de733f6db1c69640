"""A partition that moves onto a leader joins the follower's session there at once: the
request held in that leader's long poll is answered early (``end_poll``), not after its wait.

The fetcher runs its real session task against a real ``ReplicaFetchHandler`` in the same
event loop: the HTTP session is replaced by a stand-in that hands the JSON body to the
handler, so no socket is opened. The fetch wait is made two minutes long, so a partition that
had to wait for the held poll would not join within the test's generous deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, cast

import orjson
import pytest

from client.protocol import INVALID_REQUEST, ApiError
from server import limits
from server.fetcher import ReplicaFetcher
from server.log_manager import LogManager
from server.partition import LeaderState, Partition
from server.replication import FetchRequest, ReplicaFetchHandler
from storage.memory_log import MemoryLog

TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"
LEADER = 1
ME = 2
DEADLINE_S = 30.0  # generous: the held poll would take two minutes


def partition(index: int, node_id: int, state: LeaderState) -> Partition:
    return Partition(
        topic="t",
        topic_id=TOPIC_ID,
        index=index,
        node_id=node_id,
        log=MemoryLog(),
        state=state,
        leader_since_ms=0,
    )


class Response:
    def __init__(self, body: bytes) -> None:
        self.status = 200
        self._body = body

    async def read(self) -> bytes:
        return self._body


class Post:
    """``async with http.post(...)``: the leader's handler answers the request."""

    def __init__(self, answer: Awaitable[bytes]) -> None:
        self._answer = answer

    async def __aenter__(self) -> Response:
        return Response(await self._answer)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None


class InProcessHttp:
    """What the fetcher uses of aiohttp's ClientSession, delivering to one leader's handler;
    keeps every request it carried."""

    def __init__(self, handler: ReplicaFetchHandler) -> None:
        self.handler = handler
        self.requests: list[FetchRequest] = []

    def post(self, target: Any, *, data: bytes, headers: Any, timeout: Any) -> Post:
        request = FetchRequest.from_json(orjson.loads(data))
        self.requests.append(request)
        return Post(self.handler.fetch(request))


class Cluster:
    """Leader 1 leads t-0 and t-1, followed by this node (2); t-2 is led by this node."""

    def __init__(self) -> None:
        followed = LeaderState(LEADER, 0, (1, 2, 3), (1, 2, 3))
        self.leader_side = {("t", i): partition(i, LEADER, followed) for i in range(2)}
        self.handler = ReplicaFetchHandler(
            LEADER, lambda t, i: self.leader_side.get((t, i)), lambda p, isr: None
        )
        for p in self.leader_side.values():
            p.change_listener = self.handler.partition_changed
        self.partitions = {("t", i): partition(i, ME, followed) for i in range(2)}
        self.partitions[("t", 2)] = partition(2, ME, LeaderState(ME, 0, (1, 2, 3), (1, 2, 3)))
        self.http = InProcessHttp(self.handler)
        self.fetcher = ReplicaFetcher(
            ME,
            cast(LogManager, self),
            lambda leader: "http://leader" if leader == LEADER else None,
            lambda: cast(Any, self.http),
            lambda method, url, body, peer: {},
        )
        for p in self.partitions.values():
            p.change_listener = self.fetcher.partition_changed

    def move_to_leader(self, index: int, leader_epoch: int) -> None:
        """The metadata moves t-``index`` to leader 1 (a failover, or a new topic's first
        leader with epoch 0); both sides apply it, the follower's reconcile tells the
        fetcher."""
        state = LeaderState(LEADER, leader_epoch, (1, 2, 3), (1, 2))
        moved = self.leader_side[("t", index)] = partition(index, LEADER, state)
        moved.change_listener = self.handler.partition_changed
        self.partitions[("t", index)].update_state(state, now_ms=0)
        self.fetcher.update({("t", index)})

    def held(self) -> tuple[int, int] | None:
        fetch = self.fetcher._fetches.get(LEADER)
        return None if fetch is None else fetch.held


async def until(condition: Callable[[], object]) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while not condition():
            await asyncio.sleep(0.001)


def joined(cluster: Cluster, index: int) -> bool:
    return bool(cluster.handler.sessions.holding(("t", index)))


@pytest.fixture(autouse=True)
def long_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "REPLICA_FETCH_WAIT_MS", 120_000)
    monkeypatch.setattr(limits, "REPLICA_FETCH_WAIT_MS_MAX", 120_000)


def test_a_partition_moved_onto_the_leader_ends_the_held_poll_and_joins_at_once() -> None:
    async def scenario() -> None:
        cluster = Cluster()
        cluster.fetcher.update()
        try:
            await until(lambda: cluster.held() is not None)  # an incremental poll is held
            held = cluster.held()
            assert held is not None and not joined(cluster, 2)
            cluster.move_to_leader(2, leader_epoch=1)
            await until(lambda: joined(cluster, 2))
            kinds = [(r.session_epoch, r.end_poll) for r in cluster.http.requests]
            # The held request (epoch 1) was asked to answer now; the next one named t-2.
            assert kinds[:4] == [(0, False), (1, False), (1, True), (2, False)]
            assert [p.partition for p in cluster.http.requests[3].partitions] == [2]
            session = cluster.handler.sessions.of_replica(ME)
            assert session is not None and session.session_id == held[0]
            assert session.partitions[("t", 2)].want.leader_epoch == 1
        finally:
            await cluster.fetcher.close()

    asyncio.run(scenario())


def test_a_new_topics_first_leader_waits_for_the_next_request() -> None:
    """Leader epoch 0: a new partition, not a moved one; at 1,000s of topics created a
    second, ending the poll for each would double the requests."""

    async def scenario() -> None:
        cluster = Cluster()
        cluster.fetcher.update()
        try:
            await until(lambda: cluster.held() is not None)
            cluster.move_to_leader(2, leader_epoch=0)
            assert not cluster.fetcher._end_polls, "no end_poll for a new topic"
            for _ in range(20):
                await asyncio.sleep(0)
            assert not any(r.end_poll for r in cluster.http.requests)
            assert not joined(cluster, 2), "still held: the leader has no news"
        finally:
            await cluster.fetcher.close()

    asyncio.run(scenario())


# -- the leader's half ---------------------------------------------------------------------------


def test_an_end_poll_answers_the_held_request_of_its_epoch_even_one_still_on_its_way() -> None:
    async def scenario() -> None:
        handler = Cluster().handler
        await handler.fetch(FetchRequest(ME, 0, 1 << 20, (), 0, 0))  # opens a session
        session = handler.sessions.of_replica(ME)
        assert session is not None
        sid = session.session_id

        def poll(epoch: int) -> asyncio.Task[bytes]:
            return asyncio.create_task(
                handler.fetch(FetchRequest(ME, 60_000, 1 << 20, (), sid, epoch))
            )

        async def end_poll(epoch: int, session_id: int = sid, replica: int = ME) -> bytes:
            request = FetchRequest(replica, 0, 1, (), session_id, epoch, end_poll=True)
            return await handler.fetch(request)

        held = poll(1)
        await asyncio.sleep(0.01)
        assert not held.done(), "nothing new: held"
        # Another follower's end_poll, or one for another session, ends nothing.
        await end_poll(1, replica=3)
        await end_poll(1, session_id=sid + 1)
        await asyncio.sleep(0.01)
        assert not held.done()
        answer = await end_poll(1)
        assert orjson.loads(answer[4:]) == {"partitions": []}, "answered at once, empty"
        await asyncio.wait_for(held, DEADLINE_S)
        assert session.epoch == 2, "the end_poll moved no epoch"
        # An end_poll that overtakes its request: the request answers when it comes.
        await end_poll(2)
        await asyncio.wait_for(poll(2), DEADLINE_S)
        # A stale one (an epoch already answered) does not end the next poll.
        await end_poll(2)
        later = poll(3)
        await asyncio.sleep(0.01)
        assert not later.done()
        later.cancel()

    asyncio.run(scenario())


def test_an_end_poll_on_the_wire_names_a_session_request_and_nothing_else() -> None:
    request = FetchRequest(ME, 0, 1, (), 7, 3, end_poll=True)
    assert FetchRequest.from_json(orjson.loads(orjson.dumps(request.to_json()))) == request
    assert "end_poll" not in FetchRequest(ME, 0, 1, (), 7, 3).to_json()
    base = {"replica_id": ME, "session_id": 7, "session_epoch": 3, "partitions": []}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"end_poll": 1}, "end_poll must be a boolean, got int"),
        ({"end_poll": True, "session_epoch": 0}, "end_poll names a session's incremental"),
        (
            {"end_poll": True, "forgotten": [{"topic": "t", "partition": 0}]},
            "end_poll names a session's incremental",
        ),
    ]
    for bad, problem in cases:
        with pytest.raises(ApiError) as raised:
            FetchRequest.from_json({**base, **bad})
        assert raised.value.kind == INVALID_REQUEST and problem in str(raised.value)
