"""The group coordinator's driver of classic groups (server/groups/runtime.py): the entry points
the Kafka listener calls, parked JoinGroup/SyncGroup requests answered through futures, the
groups' timers on the event loop, the leader's assignment handed out only once its record is
committed, parked requests answered NOT_COORDINATOR when leadership moves, and a new
coordinator carrying on from the records. The node is an in-memory twin of what the
coordinator uses of it: one ``__consumer_offsets`` partition led here, a MemoryLog whose high
watermark moves when the test commits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest

from client.protocol import REQUEST_TIMED_OUT, ApiError
from server.auto_topics import OFFSETS_TOPIC
from server.config import GroupSettings
from server.groups.classic import ClassicSettings
from server.groups.classic_messages import (
    ILLEGAL_GENERATION,
    UNKNOWN_MEMBER,
    HeartbeatRequest,
    JoinRequest,
    JoinResponse,
    KafkaError,
    LeaveRequest,
    LeavingMember,
    SyncRequest,
    SyncResponse,
)
from server.groups.runtime import GroupCoordinator
from server.groups.shard import CommitOffset
from storage.batch import NewRecord
from storage.group_records import ClassicGroupKey, decode
from storage.memory_log import MemoryLog

GROUP = "g"
SESSION_MS = 300
WAIT_S = 60.0  # for the cluster-free waits on timers: generous, never a speed check


class TwinPartition:
    """What the coordinator uses of the partition it leads: appends, the high watermark and
    waits on it. ``auto_commit``: each append is committed at once (a healthy ISR)."""

    def __init__(self, log: MemoryLog | None = None, leader_epoch: int = 0) -> None:
        self.log = log or MemoryLog()
        self.is_leader = True
        self.closed = False
        self.state = SimpleNamespace(leader_epoch=leader_epoch)
        self.auto_commit = True
        self.moved = asyncio.Event()

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    def append_now(self, batches: Sequence[Sequence[NewRecord]], acks: str) -> Any:
        assert acks == "all"
        infos = [self.log.append_as_leader(list(b), self.state.leader_epoch) for b in batches]
        if self.auto_commit:
            self.commit()
        return SimpleNamespace(infos=tuple(infos))

    def commit(self) -> None:
        self.log.update_high_watermark(self.log.log_end_offset)
        self.moved.set()
        self.moved = asyncio.Event()

    async def wait_for_high_watermark_above(self, offset: int, timeout_s: float) -> bool:
        while self.high_watermark <= offset and self.is_leader:
            await asyncio.wait_for(self.moved.wait(), timeout_s)
        return self.high_watermark > offset

    def acks_all_error(self, last_offset: int) -> ApiError | None:
        return None

    def not_committed_error(self) -> ApiError:
        return ApiError(REQUEST_TIMED_OUT, "not committed")

    def raise_storage_error(self) -> None:
        raise AssertionError("the twin's log is never offline")


class TwinNode:
    """Node 1, leader of the one partition of ``__consumer_offsets``."""

    node_id = 1

    def __init__(self) -> None:
        self.partition = TwinPartition()
        self.config = SimpleNamespace(groups=GroupSettings())
        self.replica_manager = SimpleNamespace(local=lambda topic, index: self.partition)
        offsets = SimpleNamespace(
            topic_id="AAAAAAAAAAAAAAAAAAAAAQ", partitions={0: SimpleNamespace(leader=1)}
        )
        topic = SimpleNamespace(topic_id="AQIDBAUGBwgJCgsMDQ4PEA", partitions={0: None})
        state = SimpleNamespace(topics={OFFSETS_TOPIC: offsets, "t": topic}, brokers={})
        self.quorum = SimpleNamespace(snapshot_state=lambda: state)

    def topic(self, name: str) -> Any:
        return self.quorum.snapshot_state().topics[name]

    def topic_configs(self, topic: Any) -> dict[str, str]:
        return {"max.message.bytes": "1048588"}

    def broker_url(self, broker_id: int, dial: bool = False) -> str | None:
        return None


def coordinator(node: TwinNode, **settings: Any) -> GroupCoordinator:
    classic = ClassicSettings(
        **{"initial_rebalance_delay_ms": 0, "min_session_timeout_ms": 1, **settings}
    )
    return GroupCoordinator(cast(Any, node), classic)


def join_request(member_id: str = UNKNOWN_MEMBER, metadata: bytes = b"m") -> JoinRequest:
    return JoinRequest(
        member_id=member_id,
        protocol_type="consumer",
        protocols=(("range", metadata),),
        session_timeout_ms=SESSION_MS,
        rebalance_timeout_ms=60_000,
        client_id="app",
    )


async def new_member(c: GroupCoordinator) -> str:
    answer = await c.join_group(GROUP, join_request())
    assert answer.error == KafkaError.MEMBER_ID_REQUIRED
    return answer.member_id


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not await check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.01)


async def settle() -> None:
    """Runs every callback that is ready (no timer is due in these tests meanwhile)."""
    for _ in range(20):
        await asyncio.sleep(0)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_joins_wait_for_the_join_phase_then_the_leader_assigns_once_its_record_commits() -> None:
    async def test() -> None:
        node = TwinNode()
        c = coordinator(node)
        a, b = await new_member(c), await new_member(c)
        answers = await asyncio.gather(
            c.join_group(GROUP, join_request(a)), c.join_group(GROUP, join_request(b))
        )
        assert [x.error for x in answers] == [None, None]
        assert answers[0].generation_id == answers[1].generation_id == 1
        assert answers[0].leader == answers[1].leader == a
        assert {m.member_id for m in answers[0].members} == {a, b}
        node.partition.auto_commit = False
        follower = asyncio.ensure_future(c.sync_group(GROUP, SyncRequest(b, 1)))
        leader = asyncio.ensure_future(
            c.sync_group(GROUP, SyncRequest(a, 1, ((a, b"A"), (b, b"B"))))
        )
        await settle()
        # The record is appended, not committed: nobody has an assignment yet.
        assert not follower.done() and not leader.done()
        last = node.partition.log.log_end_offset - 1
        record = node.partition.log.fetch_records(last, 1 << 20, last + 1).records[-1]
        decoded = decode(record.key or b"", record.value)
        assert decoded is not None and decoded[0] == ClassicGroupKey(GROUP)
        node.partition.commit()
        assert await leader == SyncResponse(None, b"A", "consumer", "range")
        assert await follower == SyncResponse(None, b"B", "consumer", "range")
        assert await c.heartbeat(GROUP, HeartbeatRequest(a, 1)) is None
        assert await c.heartbeat(GROUP, HeartbeatRequest(a, 0)) == KafkaError.ILLEGAL_GENERATION

    run(test)


async def stable_member(c: GroupCoordinator) -> str:
    a = await new_member(c)
    assert (await c.join_group(GROUP, join_request(a))).generation_id == 1
    assert (await c.sync_group(GROUP, SyncRequest(a, 1, ((a, b"A"),)))).error is None
    return a


def test_member_without_heartbeats_is_removed_by_its_session_timer() -> None:
    async def test() -> None:
        node = TwinNode()
        c = coordinator(node)
        a = await stable_member(c)

        async def gone() -> bool:
            return c.local_groups() == [
                {
                    "group": GROUP,
                    "state": "Empty",
                    "type": "classic",
                    "protocol_type": "consumer",
                    "members": 0,
                }
            ]

        await eventually(gone)
        assert await c.heartbeat(GROUP, HeartbeatRequest(a, 1)) == KafkaError.UNKNOWN_MEMBER_ID

    run(test)


def test_leadership_moving_answers_parked_requests_not_coordinator() -> None:
    async def test() -> None:
        node = TwinNode()
        c = coordinator(node, initial_rebalance_delay_ms=60_000)
        a = await new_member(c)
        parked = asyncio.ensure_future(c.join_group(GROUP, join_request(a)))
        await settle()
        assert not parked.done()
        node.partition.is_leader = False
        c._unload_stale()  # what the coordinator's background duty does every half second
        assert await parked == JoinResponse(KafkaError.NOT_COORDINATOR, a)
        assert c.classic.parked_count == 0

    run(test)


def test_new_coordinator_carries_on_from_the_records() -> None:
    async def test() -> None:
        node = TwinNode()
        c = coordinator(node)
        a = await stable_member(c)
        await c.commit_offsets(GROUP, a, 1, [CommitOffset("t", 0, 5)])
        # Another leader epoch of the same log: the shard is loaded again from it.
        node.partition = TwinPartition(node.partition.log, leader_epoch=1)
        assert await c.heartbeat(GROUP, HeartbeatRequest(a, 1)) is None
        assert (await c.sync_group(GROUP, SyncRequest(a, 1))).assignment == b"A"
        with pytest.raises(ApiError) as caught:
            await c.commit_offsets(GROUP, a, 2, [CommitOffset("t", 0, 6)])
        assert caught.value.kind == ILLEGAL_GENERATION
        left = await c.leave_group(GROUP, LeaveRequest((LeavingMember(a),)))
        assert left.error is None and left.members[0].error is None
        assert c.local_groups()[0]["state"] == "Empty"

    run(test)


def test_a_join_asked_again_answers_the_first_request_as_a_rebalance() -> None:
    async def test() -> None:
        node = TwinNode()
        c = coordinator(node, initial_rebalance_delay_ms=60_000)
        a = await new_member(c)
        first = asyncio.ensure_future(c.join_group(GROUP, join_request(a)))
        await settle()
        second = asyncio.ensure_future(c.join_group(GROUP, join_request(a)))
        assert await first == JoinResponse(KafkaError.REBALANCE_IN_PROGRESS, a)
        second.cancel()  # the client went away: its future is forgotten, not leaked
        await asyncio.gather(second, return_exceptions=True)
        assert c.classic.parked_count == 0

    run(test)
