"""Replication of a compacted log (Kafka's rules), leader and follower without sockets: a
follower fetching from an offset whose batches the leader's cleaner removed gets the next
batch and appends it as it is (its log end jumps past the gap), a fetch from inside a gap
works, and the high watermark may come to lie in a gap."""

from __future__ import annotations

import asyncio
from typing import Any

from server.fetcher import apply_response, fetch_request
from server.partition import LeaderState, Partition
from server.replication import (
    FetchPartition,
    FetchRequest,
    ReplicaFetchHandler,
    decode_response,
)
from storage.batch import build_batch, iter_batches
from storage.memory_log import MemoryLog
from tests.gapped_batches import empty_batch, rec, sparse_batch

TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"


def partition(node_id: int, log: MemoryLog) -> Partition:
    return Partition(
        topic="t",
        topic_id=TOPIC_ID,
        index=0,
        node_id=node_id,
        log=log,
        state=LeaderState(1, 0, (1, 2), (1, 2)),
        leader_since_ms=0,
    )


def cleaned_leader() -> Partition:
    """A leader whose log the cleaner went over: records 0..4 whole, then 5..9 gone (a
    whole batch), record 12 left of a batch 10..14, an empty batch 15..16, record 17."""
    log = MemoryLog()
    log.append_batches(
        build_batch([rec(o) for o in range(5)], base_offset=0)
        + sparse_batch([12], base_offset=10, last_offset=14)
        + empty_batch(15, 16, producer_id=4, base_sequence=0)
        + build_batch([rec(17)], base_offset=17)
    )
    log.flush()
    return partition(1, log)


def leader_answer(leader: Partition, request: FetchRequest) -> list[tuple[dict[str, Any], bytes]]:
    handler = ReplicaFetchHandler(1, lambda t, i: leader, lambda part, isr: None)
    return decode_response(asyncio.run(handler.fetch(request)))


def fetch_from(leader: Partition, offset: int) -> tuple[dict[str, Any], bytes]:
    request = FetchRequest(
        replica_id=2,
        max_wait_ms=0,
        max_bytes=1 << 20,
        partitions=(FetchPartition("t", 0, TOPIC_ID, 0, offset, offset, 0),),
    )
    ((entry, data),) = leader_answer(leader, request)
    return entry, data


def starts(data: bytes) -> list[int]:
    return [h.base_offset for _p, h in iter_batches(data)]


def test_a_fetch_from_inside_a_gap_returns_the_next_batch() -> None:
    leader = cleaned_leader()
    for offset, first in [(5, 10), (7, 10), (9, 10), (13, 10), (15, 15), (16, 15)]:
        entry, data = fetch_from(leader, offset)
        assert "error" not in entry
        assert starts(data)[0] == first, offset


def test_a_follower_behind_a_cleaned_range_takes_the_leaders_batches_as_they_are() -> None:
    leader = cleaned_leader()
    follower_log = MemoryLog()
    follower_log.append_batches(leader.log.read(0, 1))  # offsets 0..4, its log end 5
    follower = partition(2, follower_log)
    assert follower.log.log_end_offset == 5
    # Fetch rounds as the fetcher runs them, until the follower has all the leader has.
    for _round in range(5):
        request = fetch_request(2, [follower])
        answers = leader_answer(leader, request)
        apply_response(1, [follower], request, answers)
        follower.log.flush()
        if follower.log.log_end_offset == leader.log.log_end_offset:
            break
    assert follower.log.log_end_offset == 18
    # Byte for byte the leader's log: same batches, same offsets, same gaps.
    assert follower.log.read(0, 1 << 20) == leader.log.read(0, 1 << 20)
    # The follower's next fetch (from 18) moves the leader's high watermark to the end.
    fetch_from(leader, 18)
    assert leader.high_watermark == 18


def test_the_high_watermark_may_lie_in_a_gap() -> None:
    leader = cleaned_leader()
    # A follower whose log ends inside the gap (it truncated there) reports it.
    fetch_from(leader, 7)
    assert leader.high_watermark == 7
    entry, data = fetch_from(leader, 7)
    assert entry["high_watermark"] == 7
    assert starts(data)[0] == 10, "replication is not bounded by the high watermark"
    # Readers bounded by it see what lies below it, and nothing is left between it and them.
    assert leader.log.read(5, 1 << 20, max_offset=7) == b""
    assert leader.log.fetch_records(5, 1 << 20, max_offset=7).next_offset == 7
