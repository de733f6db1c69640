"""A follower whose log ends below its leader's log start (retention or deleted records went
past it, or a new replica of a moved partition meets a leader whose log no longer starts at
0) restarts its log at the leader's log start, as Kafka's fetcher does on OFFSET_OUT_OF_RANGE;
any other out-of-range answer changes nothing."""

from __future__ import annotations

from client.protocol import NOT_LEADER_OR_FOLLOWER, OFFSET_OUT_OF_RANGE, ErrorKind
from server.fetcher import _apply
from server.partition import LeaderState, Partition
from server.replica_fetch_wire import error_entry
from storage.batch import build_batch
from storage.memory_log import MemoryLog
from tests.unit.test_partition_hw import records


def follower() -> Partition:
    log = MemoryLog()
    log.append_batches(build_batch(records(5), base_offset=0, partition_leader_epoch=0))
    return Partition(
        topic="t",
        topic_id="AAAAAAAAAAAAAAAAAAAAAQ",
        index=0,
        node_id=2,
        log=log,
        state=LeaderState(1, 0, (1, 2), (1, 2)),
        min_insync_replicas=1,
    )


def answer(kind: ErrorKind, log_start: int, log_end: int) -> dict[str, object]:
    return {
        "error": error_entry(kind, "fetch offset 5 is outside [40, 60]"),
        "log_start_offset": log_start,
        "log_end_offset": log_end,
        "high_watermark": log_end,
    }


def test_a_follower_behind_the_leaders_log_start_restarts_there() -> None:
    p = follower()
    assert _apply(p, answer(OFFSET_OUT_OF_RANGE, 40, 60), b"") is False
    assert (p.log.log_start_offset, p.log.log_end_offset, p.high_watermark) == (40, 40, 40)
    assert p.log.epoch_cache.entries == []
    data = build_batch(records(3), base_offset=40, partition_leader_epoch=2)
    assert _apply(p, {"log_end_offset": 60, "high_watermark": 43}, data) is True
    assert (p.log.log_end_offset, p.high_watermark) == (43, 43)


def test_other_fetch_errors_leave_the_log_alone() -> None:
    p = follower()
    _apply(p, answer(OFFSET_OUT_OF_RANGE, 0, 3), b"")  # ahead of the leader: epochs decide
    _apply(p, answer(NOT_LEADER_OR_FOLLOWER, 40, 60), b"")
    assert (p.log.log_start_offset, p.log.log_end_offset) == (0, 5)
