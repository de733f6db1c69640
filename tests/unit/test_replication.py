"""The leader's side of replication without sockets: wire format, epochs, divergence, ISR lag."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.partition import FollowerProgress, LeaderState, Partition
from server.replication import (
    FetchPartition,
    FetchRequest,
    ReplicaFetchHandler,
    decode_response,
    encode_response,
    isr_to_shrink,
)
from storage.batch import NewRecord
from storage.memory_log import MemoryLog

TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"


def leader_partition(epoch: int = 0, isr: tuple[int, ...] = (1, 2, 3)) -> Partition:
    return Partition(
        topic="t",
        topic_id=TOPIC_ID,
        index=0,
        node_id=1,
        log=MemoryLog(),
        state=LeaderState(1, epoch, (1, 2, 3), isr),
        leader_since_ms=0,
    )


def fetch(p: Partition, **fields: int) -> tuple[dict[str, Any], bytes]:
    want = {"leader_epoch": p.state.leader_epoch, "fetch_offset": 0, "last_fetched_epoch": -1}
    want.update(fields)
    want.setdefault("flushed_offset", want["fetch_offset"])  # a follower fsyncs, then fetches
    request = FetchRequest(
        replica_id=2,
        max_wait_ms=0,
        max_bytes=1 << 20,
        partitions=(FetchPartition("t", 0, TOPIC_ID, **want),),
    )
    changes: list[tuple[int, ...]] = []
    handler = ReplicaFetchHandler(1, lambda t, i: p, lambda part, isr: changes.append(isr))
    ((entry, data),) = decode_response(asyncio.run(handler.fetch(request)))
    return entry, data


def append(p: Partition, count: int) -> None:
    p.append_now([[NewRecord(None, b"v", 1000 + i) for i in range(count)]], "1")


def test_the_response_format_round_trips_and_malformed_bytes_raise_value_error() -> None:
    body = encode_response([{"size": 3}, {"size": 0}, {"size": 2}], [b"abc", b"", b"de"])
    assert [data for _, data in decode_response(body)] == [b"abc", b"", b"de"]
    for bad in (b"", b"\x00\x00\x00\x09{}", body[:-1], body + b"x"):
        with pytest.raises(ValueError):
            decode_response(bad)


def test_a_fetch_returns_the_leaders_bytes_and_counts_as_the_followers_flushed_offset() -> None:
    p = leader_partition(isr=(1, 2))
    append(p, 3)
    p.log.flush()
    entry, data = fetch(p, fetch_offset=0)
    assert entry["log_end_offset"] == 3 and data == p.log.read(0, 1 << 20)
    assert p.high_watermark == 0, "the follower has flushed nothing yet"
    fetch(p, fetch_offset=3, last_fetched_epoch=0)
    assert p.follower_offsets[2] == 3 and p.high_watermark == 3


def test_an_older_epoch_is_fenced_and_a_newer_one_deposes_the_leader() -> None:
    p = leader_partition(epoch=5)
    entry, _ = fetch(p, leader_epoch=4)
    assert entry["error"]["error"] == "FENCED_LEADER_EPOCH" and p.is_leader
    entry, _ = fetch(p, leader_epoch=6)
    assert entry["error"]["error"] == "UNKNOWN_LEADER_EPOCH"
    assert not p.is_leader, "a leader told of a newer epoch acknowledges nothing more"


def test_a_follower_ahead_in_an_old_epoch_is_told_where_the_logs_diverge() -> None:
    p = leader_partition(epoch=0)
    append(p, 2)  # epoch 0: offsets 0-1
    p.update_state(LeaderState(1, 2, (1, 2, 3), (1, 2, 3)), now_ms=0)
    append(p, 1)  # epoch 2 starts at offset 2
    entry, data = fetch(p, leader_epoch=2, fetch_offset=4, last_fetched_epoch=1)
    assert entry["diverging"] == {"epoch": 0, "end_offset": 2} and data == b""


def test_followers_that_lag_too_long_leave_the_isr_and_the_leader_stays() -> None:
    p = leader_partition(isr=(1, 2, 3))
    p.followers[2] = FollowerProgress(last_fetch_ms=9_000, last_caught_up_ms=9_000)
    p.followers[3] = FollowerProgress(last_fetch_ms=9_000, last_caught_up_ms=100)
    assert isr_to_shrink(p, now_ms=10_000, lag_max_ms=5_000) == (1, 2)
    assert isr_to_shrink(p, now_ms=10_000, lag_max_ms=20_000) is None
