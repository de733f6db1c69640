"""The shared invariant checker (tests/invariants.py) catches what it should, says where, and
lets pass what replication allows (a lagging follower, a divergent tail above the HW)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.log_manager import HW_FILE, RECOVERY_POINT_FILE
from storage.batch import NewRecord
from storage.checkpoints import OffsetCheckpointFile
from storage.log import Log
from storage.log_config import LogConfig
from storage.memory_log import MemoryLog
from tests.invariants import (
    CommitTracker,
    InvariantViolation,
    ReplicaView,
    check_identical,
    check_one_leader_per_epoch,
    check_replicas,
    identical,
    view_of_directory,
    view_of_log,
)


def records(*values: str) -> list[NewRecord]:
    return [NewRecord(None, v.encode(), 1_700_000_000_000) for v in values]


def leader_log(batches: int, epoch: int = 0) -> MemoryLog:
    log = MemoryLog()
    for i in range(batches):
        log.append_as_leader(records(f"v{i}"), epoch)
    return log


def copy(log: MemoryLog, upto_batches: int | None = None) -> MemoryLog:
    """A follower that fetched the leader's first ``upto_batches`` batches."""
    follower = MemoryLog()
    batches = log.segments[0].batches[:upto_batches]
    if batches:
        follower.append_batches(b"".join(batches))
    return follower


def view(node: int, log: MemoryLog, hw: int, in_isr: bool = True) -> ReplicaView:
    log.update_high_watermark(hw)
    return view_of_log(node, log, in_isr=in_isr)


def test_replicas_that_agree_pass_and_a_lagging_follower_is_allowed() -> None:
    leader = leader_log(5)
    views = [view(1, leader, 5), view(2, copy(leader), 5), view(3, copy(leader, 2), 2, False)]
    check_replicas("t-0", views)
    assert not identical(views)
    assert identical(views[:2])


def test_a_different_batch_below_the_hw_is_reported_with_partition_node_and_offset() -> None:
    leader = leader_log(3)
    other = leader_log(2)
    other.append_as_leader(records("something else"), 0)
    with pytest.raises(InvariantViolation, match=r"t-0: offset 2 differs: node 2 .* node 1"):
        check_replicas("t-0", [view(1, leader, 3), view(2, other, 3)])


def test_a_divergent_tail_above_a_replicas_own_hw_is_allowed_outside_the_isr() -> None:
    leader = leader_log(4)
    old = copy(leader, 2)
    old.append_as_leader(records("a tail no one has"), 0)
    check_replicas("t-0", [view(1, leader, 4), view(2, old, 2, in_isr=False)])


def test_an_isr_member_missing_a_batch_below_the_hw_is_reported() -> None:
    leader = leader_log(4)
    with pytest.raises(InvariantViolation, match=r"offset 3 .* node 2 \(in the ISR\) does not"):
        check_replicas("t-0", [view(1, leader, 4), view(2, copy(leader, 3), 3)])


def test_the_tracker_reports_a_committed_batch_truncated_later() -> None:
    tracker = CommitTracker()
    leader = leader_log(4)
    follower = copy(leader)
    tracker.observe("t-0", [view(1, leader, 4), view(2, follower, 4)])
    assert tracker.committed_offset("t-0") == 4
    # A new leader's HW may start lower: allowed, as long as nothing committed goes.
    tracker.observe("t-0", [view(1, leader, 4, False), view(2, follower, 1)])
    assert tracker.committed_offset("t-0") == 4
    follower.truncate_to(3)
    with pytest.raises(InvariantViolation, match=r"offset 3 is committed .* node 2 \(in the ISR\)"):
        tracker.observe("t-0", [view(2, follower, 1)])


def test_one_leader_per_epoch() -> None:
    check_one_leader_per_epoch("t-0", {1: 3, 2: 4})
    with pytest.raises(InvariantViolation, match=r"nodes \[1, 2\] all believe .* epoch 4"):
        check_one_leader_per_epoch("t-0", {1: 4, 2: 4})


def test_a_directory_view_reads_what_the_log_view_sees_and_counts_a_torn_tail(
    tmp_path: Path,
) -> None:
    log_dir = tmp_path / "node"
    log = Log.open(log_dir / "t-0", LogConfig(segment_bytes=200))
    for i in range(6):
        log.append_as_leader(records(f"value {i}"), i // 3)
    log.update_high_watermark(4)
    log.flush()
    OffsetCheckpointFile(log_dir / HW_FILE).write({("t", 0): 4})
    OffsetCheckpointFile(log_dir / RECOVERY_POINT_FILE).write({("t", 0): 6})
    live = view_of_log(1, log, in_isr=True)
    log.close()
    on_disk = view_of_directory(1, log_dir, "t", 0, in_isr=True)
    assert len(list((log_dir / "t-0").glob("*.log"))) > 1, "the view spans segments"
    assert on_disk == live
    check_identical("t-0", [live, on_disk])

    last = sorted((log_dir / "t-0").glob("*.log"))[-1]
    with last.open("ab") as f:
        f.write(b"\x00" * 30)  # a write the power cut tore
    torn = view_of_directory(1, log_dir, "t", 0)
    assert torn.batches == live.batches and torn.tail_bytes == 30
    with pytest.raises(InvariantViolation, match="torn tail"):
        check_identical("t-0", [live, torn])
