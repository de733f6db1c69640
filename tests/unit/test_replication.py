"""The leader's side of replication without sockets: wire format, epochs, divergence, ISR lag."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from client.protocol import INVALID_REQUEST, ApiError
from server import limits
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


def test_an_older_epoch_is_fenced_and_a_newer_one_is_unknown_and_deposes_nobody() -> None:
    p = leader_partition(epoch=5, isr=(1, 2))
    append(p, 2)
    p.log.flush()
    entry, _ = fetch(p, leader_epoch=4)
    assert entry["error"]["error"] == "FENCED_LEADER_EPOCH" and p.is_leader
    for epoch in (6, 2_000_000_000):  # issue 11: one request stopped a partition for good
        entry, data = fetch(p, leader_epoch=epoch, fetch_offset=2, last_fetched_epoch=5)
        assert entry["error"]["error"] == "UNKNOWN_LEADER_EPOCH" and data == b""
        assert str(epoch) in entry["error"]["message"]
    assert p.is_leader and p.state.leader_epoch == 5, "only the metadata says who leads"
    assert 2 not in p.follower_offsets, "a refused fetch reports no progress"
    assert p.high_watermark == 0
    fetch(p, leader_epoch=5, fetch_offset=2, last_fetched_epoch=5)
    assert p.high_watermark == 2, "the leader goes on committing"


def test_a_fetch_with_an_epoch_the_leader_has_not_applied_waits_for_its_metadata() -> None:
    """A long poll, not an answer at once (the follower would ask again in a loop): when the
    leader applies the epoch, the same fetch is answered with the data."""
    p = leader_partition(epoch=5, isr=(1, 2))
    request = FetchRequest(2, 60_000, 1 << 20, (FetchPartition("t", 0, TOPIC_ID, 6, 0, 0, -1),))
    handler = ReplicaFetchHandler(1, lambda t, i: p, lambda part, isr: None)

    async def scenario() -> bytes:
        waiting = asyncio.create_task(handler.fetch(request))
        await asyncio.sleep(0)
        assert not waiting.done(), "held, like a fetch with nothing new"
        append(p, 1)  # not for epoch 6 yet: still held
        await asyncio.sleep(0)
        assert not waiting.done()
        p.update_state(LeaderState(1, 6, (1, 2, 3), (1, 2)), now_ms=0)
        append(p, 2)
        return await waiting

    ((entry, data),) = decode_response(asyncio.run(scenario()))
    assert "error" not in entry and data == p.log.read(0, 1 << 20)


def fetch_json(**changes: Any) -> dict[str, Any]:
    partition = {
        "topic": "t",
        "partition": 0,
        "topic_id": TOPIC_ID,
        "leader_epoch": 0,
        "fetch_offset": 0,
        "flushed_offset": 0,
        "last_fetched_epoch": -1,
    }
    body: dict[str, Any] = {"replica_id": 2, "max_wait_ms": 500, "max_bytes": 1024}
    for name, value in changes.items():
        (partition if name in partition else body)[name] = value
    body["partitions"] = [partition]
    return body


def test_a_well_formed_replica_fetch_parses_and_clamps_its_wait_and_bytes() -> None:
    request = FetchRequest.from_json(fetch_json(max_wait_ms=2**31 - 1, max_bytes=0))
    assert request.max_wait_ms == limits.REPLICA_FETCH_WAIT_MS_MAX and request.max_bytes == 1
    assert request.partitions[0] == FetchPartition("t", 0, TOPIC_ID, 0, 0, 0, -1)
    assert FetchRequest.from_json(orjson.loads(orjson.dumps(request.to_json()))) == request


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("partition", "1", "partitions[0].partition must be an integer, got str"),
        ("partition", 1.0, "partitions[0].partition must be an integer, got 1.0"),
        ("partition", True, "partitions[0].partition must be an integer, got a boolean"),
        ("partition", -1, "partitions[0].partition must be in [0, 2147483647], got -1"),
        ("partition", 2**31, "partitions[0].partition must be in [0, 2147483647]"),
        ("leader_epoch", 2**31, "partitions[0].leader_epoch must be in [0, 2147483647]"),
        ("leader_epoch", None, "partitions[0].leader_epoch must be an integer, got NoneType"),
        ("fetch_offset", 2**63, "partitions[0].fetch_offset must be in [0, 9223372036854775807]"),
        ("flushed_offset", -5, "partitions[0].flushed_offset must be in [0, "),
        ("last_fetched_epoch", -2, "partitions[0].last_fetched_epoch must be in [-1, "),
        ("topic", 7, "partitions[0].topic must be a string"),
        ("topic_id", None, "partitions[0].topic_id must be a string"),
        ("replica_id", "2", "replica_id must be an integer, got str"),
        ("replica_id", -1, "replica_id must be in [0, 2147483647], got -1"),
        ("max_wait_ms", 0.5, "max_wait_ms must be an integer, got 0.5"),
        ("max_bytes", -1, "max_bytes must be in [0, 2147483647], got -1"),
    ],
)
def test_a_replica_fetch_with_a_bad_number_is_a_400_naming_the_field(
    field: str, value: Any, problem: str
) -> None:
    with pytest.raises(ApiError) as caught:
        FetchRequest.from_json(fetch_json(**{field: value}))
    assert caught.value.kind is INVALID_REQUEST and caught.value.status == 400
    assert problem in caught.value.message


def test_a_22_digit_partition_is_a_400_not_a_500() -> None:
    """orjson makes a float of an integer beyond 64 bits: it is refused as not an integer."""
    raw = orjson.dumps(fetch_json()).replace(b'"partition":0', b'"partition":' + b"9" * 22)
    with pytest.raises(ApiError) as caught:
        FetchRequest.from_json(orjson.loads(raw))
    assert caught.value.kind is INVALID_REQUEST
    assert "partitions[0].partition must be an integer, got 1e+22 (a float" in caught.value.message


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "the body must be a JSON object"),
        ({"replica_id": 2}, "partitions must be a list"),
        ({"replica_id": 2, "partitions": [5]}, "partitions[0] must be a JSON object"),
        ({"partitions": []}, "replica_id is missing"),
        (fetch_json(fetch_offset=None) | {"partitions": [{}]}, "partitions[0].topic must be"),
    ],
)
def test_a_replica_fetch_of_the_wrong_shape_is_a_400(body: Any, problem: str) -> None:
    with pytest.raises(ApiError) as caught:
        FetchRequest.from_json(body)
    assert caught.value.kind is INVALID_REQUEST and problem in caught.value.message


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
