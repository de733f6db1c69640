"""Replication throttles on both sides of the fetch, without sockets: the leader leaves a
throttled partition out of its answer to a follower out of the ISR while its quota is
exceeded; the follower leaves such a partition out of its request while its own is."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from server.clock import ManualClock
from server.fetcher import ReplicaFetcher, _LeaderFetch
from server.log_manager import LogManager
from server.partition import LeaderState, Partition
from server.replication import FetchPartition, FetchRequest, ReplicaFetchHandler, decode_response
from server.replication_quota import ReplicationQuota
from storage.batch import NewRecord
from storage.memory_log import MemoryLog

TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"


class Quota(ReplicationQuota):
    """A quota whose verdict the test sets (the measurement is tested on its own)."""

    over = False

    def exceeded(self, now_ms: int) -> bool:
        return self.over


# -- the leader ----------------------------------------------------------------------------------


def led(index: int, isr: tuple[int, ...]) -> Partition:
    p = Partition(
        topic="t",
        topic_id=TOPIC_ID,
        index=index,
        node_id=1,
        log=MemoryLog(),
        state=LeaderState(1, 0, (1, 2, 3), isr),
        leader_since_ms=0,
    )
    for batch in range(20):  # 20 batches of 10 records of 100 bytes
        records = [NewRecord(None, b"v" * 100, 1000 + batch * 10 + i) for i in range(10)]
        p.append_now([records], "1")
    p.log.flush()
    return p


def answer(
    partitions: list[Partition], quota: ReplicationQuota, replica: int = 2
) -> dict[int, tuple[dict[str, Any], bytes]]:
    """One sessionless fetch of every partition from offset 0, by partition."""
    request = FetchRequest(
        replica_id=replica,
        max_wait_ms=0,
        max_bytes=1 << 20,
        partitions=tuple(FetchPartition("t", p.index, TOPIC_ID, 0, 0, 0, -1) for p in partitions),
    )
    by_index = {p.index: p for p in partitions}
    handler = ReplicaFetchHandler(
        1, lambda t, i: by_index.get(i), lambda p, isr: None, ManualClock(), quota=quota
    )
    decoded = decode_response(asyncio.run(handler.fetch(request)))
    return {int(entry["partition"]): (entry, data) for entry, data in decoded}


def test_a_throttled_partition_is_left_out_for_a_follower_out_of_the_isr_while_exceeded() -> None:
    quota = Quota()
    quota.set_bound(1_000)
    quota.set_topic("t", frozenset({0}))
    quota.over = True
    throttled, free = led(0, isr=(1, 3)), led(1, isr=(1, 3))
    answers = answer([throttled, free], quota)
    entry, data = answers[0]
    assert data == b"" and entry["size"] == 0
    assert entry["high_watermark"] == throttled.log.high_watermark, "the answer still informs"
    assert answers[1][1] == free.log.read(0, 1 << 20), "an unthrottled partition is not slowed"
    assert quota.bytes_total == 0


def test_an_in_sync_follower_is_never_held_back_and_its_bytes_count() -> None:
    quota = Quota()
    quota.set_bound(1_000)
    quota.set_topic("t", None)
    quota.over = True
    p = led(0, isr=(1, 2, 3))
    data = answer([p], quota)[0][1]
    assert data == p.log.read(0, 1 << 20), "the whole budget: no cap for an in-sync follower"
    assert quota.bytes_total == len(data), "Kafka counts in-sync traffic against the bound"


def test_under_the_bound_a_throttled_read_takes_one_window_of_it_and_is_counted() -> None:
    quota = Quota()
    quota.set_bound(3_000)
    quota.set_topic("t", frozenset({0}))
    p = led(0, isr=(1, 3))
    data = answer([p], quota)[0][1]
    assert 0 < len(data) <= 3_000 < len(p.log.read(0, 1 << 20))
    assert quota.bytes_total == len(data)


def test_a_follower_the_leader_asked_to_add_to_the_isr_is_not_held_back() -> None:
    quota = Quota()
    quota.set_bound(1_000)
    quota.set_topic("t", frozenset({0}))
    quota.over = True
    p = led(0, isr=(1, 3))
    p.isr_change_requested((1, 3, 2))  # the HW counts 2 now (the maximal ISR)
    assert answer([p], quota)[0][1] == p.log.read(0, 1 << 20), "else the HW waits on it"


def test_a_bound_below_one_batch_still_moves_a_batch() -> None:
    quota = Quota()
    quota.set_bound(0)
    quota.set_topic("t", frozenset({0}))
    p = led(0, isr=(1, 3))
    data = answer([p], quota)[0][1]
    assert data and data == p.log.read(0, 1), "one whole batch: the partition progresses"


def test_an_unthrottled_cluster_counts_nothing() -> None:
    quota = Quota()
    quota.over = True  # never asked: no topic throttles anything
    p = led(0, isr=(1, 3))
    assert answer([p], quota)[0][1] == p.log.read(0, 1 << 20)
    assert not quota.active and quota.bytes_total == 0


# -- the follower --------------------------------------------------------------------------------

LEADER = 1
ME = 2


class Logs:
    def __init__(self, isr: tuple[int, ...]) -> None:
        self.partitions = {
            ("t", i): Partition(
                topic="t",
                topic_id=TOPIC_ID,
                index=i,
                node_id=ME,
                log=MemoryLog(),
                state=LeaderState(LEADER, 0, (1, 2, 3), isr),
            )
            for i in range(3)
        }


def follower(logs: Logs, quota: ReplicationQuota) -> tuple[ReplicaFetcher, _LeaderFetch]:
    fetcher = ReplicaFetcher(
        ME,
        cast(LogManager, logs),
        lambda leader: None,
        lambda: cast(Any, None),
        lambda method, url, body, peer: {},
        quota=quota,
    )

    async def assign() -> None:
        fetcher.update()  # starts a session task per leader: not run here
        await fetcher.close()

    asyncio.run(assign())
    fetch = fetcher._fetches[LEADER] = _LeaderFetch()
    return fetcher, fetch


def named(fetcher: ReplicaFetcher, fetch: _LeaderFetch) -> tuple[list[int], list[int]]:
    request = fetcher._next_request(LEADER, fetch)
    assert request is not None
    fetch.session.answered(7)
    return [p.partition for p in request.partitions], [i for _, i in request.forgotten]


def test_a_follower_out_of_the_isr_leaves_throttled_partitions_out_while_exceeded() -> None:
    quota = Quota()
    quota.set_bound(1_000)
    quota.set_topic("t", frozenset({1}))
    quota.over = True
    fetcher, fetch = follower(Logs(isr=(1, 3)), quota)
    assert named(fetcher, fetch) == ([0, 2], []), "a new session names it not"
    assert named(fetcher, fetch) == ([], [])
    quota.over = False
    assert named(fetcher, fetch) == ([1], []), "under the bound: named again"
    quota.over = True
    assert named(fetcher, fetch) == ([], [1]), "over it: forgotten in the session"


def test_a_partition_held_back_is_named_again_once_its_topic_is_no_longer_throttled() -> None:
    quota = Quota()
    quota.set_bound(1_000)
    quota.set_topic("t", frozenset({1}))
    quota.over = True
    fetcher, fetch = follower(Logs(isr=(1, 3)), quota)
    assert named(fetcher, fetch) == ([0, 2], [])
    quota.set_topic("t", frozenset())  # the list emptied: nothing throttled any more
    assert not quota.active
    assert named(fetcher, fetch) == ([1], []), "at once, not at the next recheck"
    assert named(fetcher, fetch) == ([], [])


def test_an_in_sync_follower_never_leaves_a_partition_out() -> None:
    quota = Quota()
    quota.set_bound(1_000)
    quota.set_topic("t", None)
    quota.over = True
    fetcher, fetch = follower(Logs(isr=(1, 2, 3)), quota)
    assert named(fetcher, fetch) == ([0, 1, 2], [])
    assert named(fetcher, fetch) == ([], [])


def test_the_follower_counts_the_bytes_it_receives_of_throttled_partitions() -> None:
    quota = Quota()
    quota.set_topic("t", frozenset({1}))
    fetcher, _ = follower(Logs(isr=(1, 3)), quota)
    fetcher._count_throttled(
        [({"topic": "t", "partition": 0}, b"x" * 50), ({"topic": "t", "partition": 1}, b"y" * 7)]
    )
    assert quota.bytes_total == 7


# -- /metrics -------------------------------------------------------------------------------------


def test_metrics_show_each_sides_throttled_bytes_rate_and_bound() -> None:
    from server.metrics import NodeFacts, ThrottleFacts, families

    facts = NodeFacts(
        throttles=[
            ThrottleFacts("leader", 5_000, 450.5, 1_000),
            ThrottleFacts("follower", 0, 0.0, (1 << 63) - 1),
        ]
    )
    samples = {
        (s.name, s.labels.get("side")): s.value
        for family in families(facts)
        for s in family.samples
        if "replication_thrott" in s.name
    }
    assert samples == {
        ("kraft_replication_throttled_bytes_total", "leader"): 5_000,
        ("kraft_replication_throttled_bytes_total", "follower"): 0,
        ("kraft_replication_throttled_byte_rate", "leader"): 450.5,
        ("kraft_replication_throttled_byte_rate", "follower"): 0.0,
        ("kraft_replication_throttle_rate_bytes_per_second", "leader"): 1_000,
        ("kraft_replication_throttle_rate_bytes_per_second", "follower"): (1 << 63) - 1,
    }
