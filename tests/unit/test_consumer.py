"""AsyncConsumer against an in-memory twin of the cluster (no sockets): fetching, positions,
resets, errors, commits and the group's reconciliation order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from client.async_consumer import AsyncConsumer, ConsumerRebalanceListener, IllegalStateError
from client.consumer_client import FetchedBatches
from client.consumer_fetch import (
    ConsumerRecord,
    NoOffsetForPartitionError,
    PartitionFetch,
    _Batch,
    drain,
)
from client.group_member import TopicPartition
from client.protocol import (
    CORRUPT_MESSAGE,
    FENCED_MEMBER_EPOCH,
    LEADER_NOT_AVAILABLE,
    OFFSET_OUT_OF_RANGE,
    UNKNOWN_TOPIC,
    ApiError,
)
from tests.batch_bodies import log_answer, stamped

T0, T1, T2 = (TopicPartition("t", p) for p in range(3))
DEADLINE_S = 10.0


class FakeCluster:
    """Partitions in memory answering as the nodes do (stored batches, ``per_batch`` records
    each), and a scriptable coordinator. ``calls`` records what the consumer asked, in order."""

    def __init__(self, logs: dict[TopicPartition, list[bytes]], per_batch: int = 1) -> None:
        self.logs = logs
        self.per_batch = per_batch
        self.calls: list[tuple[str, Any]] = []
        self.committed: dict[TopicPartition, int] = {}
        self.fetch_errors: list[ApiError] = []
        self.target: list[TopicPartition] = []
        self.epoch = 0
        self.fence_next = False

    async def describe_topic(self, name: str) -> dict[str, Any]:
        parts = sorted(tp.partition for tp in self.logs if tp.topic == name)
        if not parts:
            raise ApiError(UNKNOWN_TOPIC, f"Topic '{name}' does not exist")
        return {"partitions": [{"partition": p} for p in parts]}

    async def fetch_batches(
        self, topic: str, partition: int, offset: int | str, **_: Any
    ) -> FetchedBatches:
        self.calls.append(("fetch", (partition, offset)))
        if self.fetch_errors:
            raise self.fetch_errors.pop(0)
        log = self.logs[TopicPartition(topic, partition)]
        start = offset if isinstance(offset, int) else {"earliest": 0, "latest": len(log)}[offset]
        if not 0 <= start <= len(log):
            raise ApiError(OFFSET_OUT_OF_RANGE, "out of range", {"log_start_offset": 0})
        if start == len(log):
            await asyncio.sleep(0.005)  # an empty long poll
        return log_answer(log, start, per_batch=self.per_batch)

    async def offsets(self, topic: str, partition: int, timestamp: int | None = None) -> Any:
        log = self.logs[TopicPartition(topic, partition)]
        return {"earliest": 0, "latest": len(log)}

    async def heartbeat(self, group: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("heartbeat", body))
        if body["member_epoch"] == -1:
            return {"member_id": "m1", "member_epoch": -1, "assignment": []}
        if self.fence_next:
            self.fence_next = False
            raise ApiError(FENCED_MEMBER_EPOCH, "fenced")
        self.epoch += 1
        return {
            "member_id": "m1",
            "member_epoch": self.epoch,
            "heartbeat_interval_ms": 10,
            "assignment": [{"topic": t, "partition": p} for t, p in self.target],
        }

    async def commit_offsets(self, group: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("commit", body))
        for item in body["offsets"]:
            self.committed[TopicPartition(item["topic"], item["partition"])] = item["offset"]
        return {"group": group, "offsets": body["offsets"]}

    async def committed_offsets(self, group: str, topic: str | None = None) -> dict[str, Any]:
        return {
            "group": group,
            "offsets": [
                {"topic": tp.topic, "partition": tp.partition, "offset": o}
                for tp, o in self.committed.items()
                if topic in (None, tp.topic)
            ],
        }


def consumer(cluster: FakeCluster, **props: str) -> AsyncConsumer:
    return AsyncConsumer({"bootstrap.servers": "127.0.0.1:1", **props}, transport=cluster)


async def poll_until(
    c: AsyncConsumer, done: Callable[[list[ConsumerRecord]], bool]
) -> list[ConsumerRecord]:
    got: list[ConsumerRecord] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not done(got):
        assert loop.time() < deadline, f"gave up after {len(got)} records"
        got.extend(await c.poll(20))
    return got


# -- decoding and draining ---------------------------------------------------------------------


def test_fetched_batches_decode_to_exact_bytes_nulls_and_headers() -> None:
    body = stamped([(None, b"\xff\x00", [], 9), (b"k", None, [("h", b"\x01"), ("n", None)], 10)], 4)

    class OneAnswer(FakeCluster):
        async def fetch_batches(self, *args: Any, **kw: Any) -> FetchedBatches:
            if self.calls:
                await asyncio.sleep(10)  # one answer, then an idle long poll
            self.calls.append(("fetch", args))
            return FetchedBatches(body, 6, 6, 0)

    async def scenario() -> None:
        c = consumer(OneAnswer({T2: [b""] * 6}))
        await c.assign([T2])
        await c.seek(T2, 4)
        got = await poll_until(c, lambda got: len(got) == 2)
        assert got == [
            ConsumerRecord("t", 2, 4, 9, None, b"\xff\x00", ()),
            ConsumerRecord("t", 2, 5, 10, b"k", None, (("h", b"\x01"), ("n", None))),
        ]
        await c.close()

    asyncio.run(scenario())


def test_records_below_the_fetch_offset_in_the_first_batch_are_skipped() -> None:
    async def run() -> None:
        cluster = FakeCluster({T0: [b"v%d" % i for i in range(8)]}, per_batch=4)
        c = consumer(cluster)
        await c.assign([T0])
        await c.seek(T0, 2)  # inside the stored batch 0-3, which comes whole
        got = await poll_until(c, lambda g: len(g) >= 6)
        assert [r.offset for r in got] == [2, 3, 4, 5, 6, 7]
        assert [r.timestamp for r in got] == [1002, 1003, 1004, 1005, 1006, 1007]
        assert await c.position(T0) == 8
        await c.close()

    asyncio.run(run())


def test_an_answer_larger_than_a_decode_slice_is_read_whole_and_in_order() -> None:
    async def run() -> None:
        values = [b"%06d" % i + b"x" * 1000 for i in range(700)]  # about 2.8 slices
        cluster = FakeCluster({T0: values}, per_batch=50)
        c = consumer(cluster, **{"auto.offset.reset": "earliest", "max.poll.records": "1000"})
        await c.assign([T0])
        got = await poll_until(c, lambda g: len(g) >= 700)
        assert [r.value for r in got] == values
        await c.close()

    asyncio.run(run())


def test_a_corrupt_answer_is_raised_by_poll_and_no_record_of_it_returned() -> None:
    class Corrupt(FakeCluster):
        async def fetch_batches(self, *args: Any, **kw: Any) -> FetchedBatches:
            answer = log_answer([b"a", b"b"], 0, per_batch=2)
            body = bytearray(answer.body)
            body[-2] ^= 0xFF
            return answer._replace(body=bytes(body))

    async def run() -> None:
        c = consumer(Corrupt({T0: []}), **{"auto.offset.reset": "earliest"})
        await c.assign([T0])
        with pytest.raises(ApiError) as caught:
            await poll_until(c, bool)
        assert caught.value.kind is CORRUPT_MESSAGE and "CRC-32C" in caught.value.message
        await c.close()

    asyncio.run(run())


def _state(tp: TopicPartition, offsets: range, position: int | None) -> PartitionFetch:
    state = PartitionFetch(tp, position, 0)
    state.buffer.append(
        _Batch([ConsumerRecord(tp.topic, tp.partition, o, 0, None, b"", ()) for o in offsets])
    )
    return state


def test_drain_hands_out_at_most_the_limit_and_moves_the_positions() -> None:
    a, b = _state(T0, range(0, 4), 0), _state(T1, range(10, 12), 10)
    got = drain([a, b], 5)
    assert [(r.partition, r.offset) for r in got] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 10)]
    assert (a.position, b.position) == (4, 11)
    assert not a.buffer and a.room.is_set()
    assert [(r.partition, r.offset) for r in drain([a, b], 5)] == [(1, 11)]


def test_drain_skips_records_below_the_position() -> None:
    state = _state(T0, range(0, 6), 3)  # a batch fetched before a seek to 3
    assert [r.offset for r in drain([state], 10)] == [3, 4, 5]
    state = _state(T0, range(0, 3), 7)
    assert drain([state], 10) == [] and not state.buffer


# -- assign mode -------------------------------------------------------------------------------


def test_assigned_partitions_are_read_in_order_within_max_poll_records() -> None:
    async def run() -> None:
        cluster = FakeCluster({T0: [b"a%d" % i for i in range(7)], T1: [b"b0"]})
        c = consumer(cluster, **{"auto.offset.reset": "earliest", "max.poll.records": "3"})
        await c.assign([T0, T1])
        first = await c.poll(1000)
        assert len(first) <= 3
        got = first + await poll_until(c, lambda g: len(g) + len(first) >= 8)
        assert [r.value for r in got if r.partition == 0] == [b"a%d" % i for i in range(7)]
        assert await c.position(T0) == 7 and await c.position(T1) == 1
        await c.close()

    asyncio.run(run())


def test_latest_is_where_the_log_ends_when_reading_starts() -> None:
    async def run() -> None:
        cluster = FakeCluster({T0: [b"old"]})
        c = consumer(cluster)
        await c.assign([T0])
        assert await c.poll(50) == []
        cluster.logs[T0].append(b"new")
        assert [r.value for r in await poll_until(c, bool)] == [b"new"]
        await c.close()

    asyncio.run(run())


def test_an_out_of_range_position_is_reset_by_auto_offset_reset() -> None:
    async def run() -> None:
        cluster = FakeCluster({T0: [b"x", b"y"]})
        c = consumer(cluster, **{"auto.offset.reset": "earliest"})
        await c.assign([T0])
        await c.seek(T0, 50)
        assert [r.offset for r in await poll_until(c, lambda g: len(g) >= 2)] == [0, 1]
        assert ("fetch", (0, 50)) in cluster.calls and ("fetch", (0, "earliest")) in cluster.calls
        await c.close()

    asyncio.run(run())


def test_position_asked_while_the_first_fetch_resolves_it_is_that_fetch_s() -> None:
    """position() looks "latest" up; the partition's first fetch may resolve it (to an offset)
    while the lookup waits, and position() then answers the fetch's position."""

    class SlowOffsets(FakeCluster):
        async def offsets(self, topic: str, partition: int, timestamp: int | None = None) -> Any:
            while not any(call[0] == "fetch" for call in self.calls):
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.05)  # the fetch's answer lands during the lookup
            return await super().offsets(topic, partition, timestamp)

    async def run() -> None:
        cluster = SlowOffsets({T0: [b"x", b"y", b"z"]})
        c = consumer(cluster, **{"auto.offset.reset": "latest"})
        await c.assign([T0])
        assert await c.position(T0) == 3
        await c.close()

    asyncio.run(run())


def test_reset_none_raises_instead_of_guessing() -> None:
    async def run() -> None:
        c = consumer(FakeCluster({T0: [b"x"]}), **{"auto.offset.reset": "none"})
        await c.assign([T0])
        with pytest.raises(NoOffsetForPartitionError, match="t-0"):
            await c.poll(100)
        await c.seek(T0, 0)  # a seek gives the partition a position again
        assert [r.value for r in await poll_until(c, bool)] == [b"x"]
        await c.close()

    asyncio.run(run())


def test_retriable_errors_are_retried_and_others_raised_once_by_poll() -> None:
    async def run() -> None:
        cluster = FakeCluster({T0: [b"x"]})
        cluster.fetch_errors = [
            ApiError(LEADER_NOT_AVAILABLE, "election"),
            ApiError(UNKNOWN_TOPIC, "gone"),
        ]
        c = consumer(cluster, **{"auto.offset.reset": "earliest", "retry.backoff.ms": "1"})
        await c.assign([T0])
        with pytest.raises(ApiError, match="gone"):
            await poll_until(c, bool)
        assert [r.value for r in await poll_until(c, bool)] == [b"x"]  # tried again
        await c.close()

    asyncio.run(run())


def test_group_calls_need_a_group_id_and_modes_are_exclusive() -> None:
    async def run() -> None:
        c = consumer(FakeCluster({T0: []}))
        with pytest.raises(IllegalStateError, match="group.id"):
            await c.commit({T0: 1})
        with pytest.raises(IllegalStateError, match="not subscribed"):
            await c.poll(0)
        await c.assign([T0])
        with pytest.raises(IllegalStateError, match="group.id"):
            await c.subscribe(["t"])
        await c.close()
        g = consumer(FakeCluster({T0: []}), **{"group.id": "g"})
        await g.assign([T0])
        with pytest.raises(IllegalStateError, match="mutually exclusive"):
            await g.subscribe(["t"])
        await g.close()

    asyncio.run(run())


def test_assign_with_a_group_starts_at_the_committed_offset() -> None:
    async def run() -> None:
        cluster = FakeCluster({T0: [b"a", b"b", b"c"]})
        cluster.committed[T0] = 2
        c = consumer(cluster, **{"group.id": "g"})
        await c.assign([T0])
        assert await c.committed([T0]) == {T0: 2}
        assert [r.value for r in await poll_until(c, bool)] == [b"c"]
        await c.commit()
        assert cluster.committed[T0] == 3
        await c.close()

    asyncio.run(run())


# -- the group ---------------------------------------------------------------------------------


class Recorder(ConsumerRebalanceListener):
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    def on_partitions_assigned(self, partitions: list[TopicPartition]) -> None:
        self.cluster.calls.append(("assigned", partitions))

    def on_partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        self.cluster.calls.append(("revoked", partitions))

    def on_partitions_lost(self, partitions: list[TopicPartition]) -> None:
        self.cluster.calls.append(("lost", partitions))


def _after(calls: list[tuple[str, Any]], kind: str, match: Callable[[Any], bool]) -> int:
    return next(i for i, (k, v) in enumerate(calls) if k == kind and match(v))


def test_revocation_stops_commits_calls_the_listener_then_reports_it_given_up() -> None:
    async def run() -> None:
        cluster = FakeCluster({T0: [b"a0", b"a1"], T1: [b"b0"], T2: []})
        cluster.committed[T1] = 0
        cluster.target = [T0, T1]
        c = consumer(
            cluster,
            **{"group.id": "g", "auto.offset.reset": "earliest", "heartbeat.interval.ms": "10"},
        )
        await c.subscribe(["t"], Recorder(cluster))
        got = await poll_until(c, lambda g: len(g) >= 3)
        assert sorted((r.partition, r.offset) for r in got) == [(0, 0), (0, 1), (1, 0)]
        assert ("assigned", [T0, T1]) in cluster.calls

        cluster.target = [T0, T2]  # T1 moves away, T2 comes
        await poll_until(c, lambda g: c.assignment() == {T0, T2})
        calls = cluster.calls
        commit = _after(calls, "commit", lambda b: b["offsets"][0]["partition"] == 1)
        revoked = _after(calls, "revoked", lambda v: v == [T1])
        # The first heartbeat after the revocation reports partition 1 given up.
        reported = next(
            i
            for i, (k, v) in enumerate(calls)
            if i > revoked and k == "heartbeat" and {"topic": "t", "partition": 1} not in v["owned"]
        )
        assigned = _after(calls, "assigned", lambda v: v == [T2])
        assert commit < revoked < reported
        assert revoked < assigned
        body = calls[commit][1]
        assert body["member_id"] == "m1" and body["member_epoch"] >= 1
        assert body["offsets"] == [{"topic": "t", "partition": 1, "offset": 1}]
        await c.close()
        leave = cluster.calls[-1]
        assert leave == ("heartbeat", {"member_id": "m1", "member_epoch": -1})
        assert ("revoked", [T0, T2]) in cluster.calls  # close gives up what was owned

    asyncio.run(run())


def test_a_fenced_member_loses_its_partitions_and_joins_again_owning_nothing() -> None:
    async def run() -> None:
        cluster = FakeCluster({T0: [b"a"], T1: []})
        cluster.target = [T0]
        c = consumer(cluster, **{"group.id": "g", "heartbeat.interval.ms": "10"})
        await c.subscribe(["t"], Recorder(cluster))
        await poll_until(c, lambda g: c.assignment() == {T0})
        commits_before = sum(1 for k, _ in cluster.calls if k == "commit")
        cluster.target = [T1]
        cluster.fence_next = True
        await poll_until(c, lambda g: c.assignment() == {T1})
        lost = _after(cluster.calls, "lost", lambda v: v == [T0])
        rejoin = _after(
            cluster.calls,
            "heartbeat",
            lambda b: b["member_epoch"] == 0 and b.get("member_id") == "m1",
        )
        assert rejoin < lost  # the rejoin does not wait for the application's poll
        assert cluster.calls[rejoin][1]["owned"] == []
        assert sum(1 for k, _ in cluster.calls if k == "commit") == commits_before  # lost: none
        assert not any(k == "revoked" and v == [T0] for k, v in cluster.calls)
        await c.close()

    asyncio.run(run())


def test_auto_commit_commits_the_positions_of_what_poll_returned() -> None:
    async def run() -> None:
        cluster = FakeCluster({T0: [b"a", b"b"]})
        c = consumer(
            cluster,
            **{"group.id": "g", "auto.offset.reset": "earliest", "auto.commit.interval.ms": "0"},
        )
        await c.assign([T0])
        await poll_until(c, lambda g: len(g) >= 2)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while cluster.committed.get(T0) != 2:  # committed from a later poll, in the background
            assert loop.time() < deadline, cluster.committed
            await c.poll(10)
        await c.close()

    asyncio.run(run())


def test_a_member_that_stops_polling_leaves_and_joins_again_at_its_next_poll() -> None:
    async def run() -> None:
        cluster = FakeCluster({T0: [b"a"]})
        cluster.target = [T0]
        c = consumer(
            cluster,
            **{"group.id": "g", "heartbeat.interval.ms": "10", "max.poll.interval.ms": "50"},
        )
        await c.subscribe(["t"], Recorder(cluster))
        await poll_until(c, lambda g: c.assignment() == {T0})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while ("heartbeat", {"member_id": "m1", "member_epoch": -1}) not in cluster.calls:
            assert loop.time() < deadline, "never left"
            await asyncio.sleep(0.01)  # the application is busy: no poll
        assert c.assignment() == set()
        await poll_until(c, lambda g: c.assignment() == {T0})
        left = cluster.calls.index(("heartbeat", {"member_id": "m1", "member_epoch": -1}))
        assert any(
            k == "heartbeat" and v["member_epoch"] == 0 for k, v in cluster.calls[left + 1 :]
        )
        assert ("lost", [T0]) in cluster.calls
        await c.close()

    asyncio.run(run())
