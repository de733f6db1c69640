"""The shared invariant checker (tests/invariants.py) catches what it should, says where, and
lets pass what replication allows (a lagging follower, a divergent tail above the HW)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from server.log_manager import HW_FILE, RECOVERY_POINT_FILE
from storage.batch import NewRecord
from storage.checkpoints import OffsetCheckpointFile
from storage.log import Log
from storage.log_config import LogConfig
from storage.memory_log import MemoryLog
from tests.gapped_batches import T0, gapped_batch
from tests.invariants import (
    CommitTracker,
    InvariantViolation,
    ReplicaView,
    check_identical,
    check_one_leader_per_epoch,
    check_replicas,
    identical,
    records_of,
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


# -- compacted logs ----------------------------------------------------------------------------


def keyed(offset: int, key: str, value: str | None) -> tuple[int, NewRecord]:
    return offset, NewRecord(key.encode(), None if value is None else value.encode(), T0 + offset)


def compacted_view(
    node: int,
    batches: list[tuple[int, int, list[tuple[int, NewRecord]]]],
    hw: int,
    *,
    in_isr: bool = True,
    log_end: int | None = None,
) -> ReplicaView:
    """A view of a compacted replica: (base, last offset, records) per batch."""
    data = b"".join(gapped_batch(r, base_offset=b, last_offset=e) for b, e, r in batches)
    view = ReplicaView.of_bytes(node, data, high_watermark=hw, in_isr=in_isr)
    if log_end is not None:
        view = dataclasses.replace(view, log_end_offset=log_end)
    return view


# The committed history, in three batches (0-2, 3-5, 6-9): d written once, c deleted at 6, a
# and b written again and again.
BATCHES = ((0, 2), (3, 5), (6, 9))
HISTORY = [
    keyed(0, "d", "d0"),
    keyed(1, "b", "b0"),
    keyed(2, "c", "c0"),
    keyed(3, "a", "a1"),
    keyed(4, "b", "b1"),
    keyed(5, "a", "a2"),
    keyed(6, "c", None),
    keyed(7, "a", "a3"),
    keyed(8, "b", "b2"),
    keyed(9, "a", "a4"),
]


Batches = list[tuple[int, int, list[tuple[int, NewRecord]]]]


def as_written() -> Batches:
    return [(b, e, HISTORY[b : e + 1]) for b, e in BATCHES]


def cleaned_below(upto: int, *, drop_tombstones: bool = False) -> Batches:
    """As a cleaner up to ``upto`` leaves the history: each key's latest below it kept, the
    batches left with no record dropped."""
    latest = {r.key: o for o, r in HISTORY if o < upto}
    kept = [
        (o, r)
        for o, r in HISTORY
        if o >= upto or (latest[r.key] == o and not (drop_tombstones and r.value is None))
    ]
    batches = [(b, e, [(o, r) for o, r in kept if b <= o <= e]) for b, e in BATCHES]
    return [batch for batch in batches if batch[2]]


def test_compacted_replicas_cleaned_at_different_points_agree() -> None:
    views = [
        compacted_view(1, cleaned_below(10), 10),
        compacted_view(2, as_written(), 10),
        compacted_view(3, cleaned_below(10, drop_tombstones=True), 10),
        # A follower whose HW lags the leader's, cleaned up to its own HW only.
        compacted_view(4, cleaned_below(6), 6),
    ]
    check_replicas("t-0", views, compacted=True)
    with pytest.raises(InvariantViolation, match="not dense"):
        check_replicas("t-0", views[:1])  # the delete-policy rules refuse gaps


def test_a_leader_cleaned_past_a_lagging_followers_hw_is_not_a_violation() -> None:
    # The leader cleaned up to 10 (its HW): b1 at 4 went for b2 at 8. The follower's HW is 6,
    # so below 6 it still sees b1 as b's latest; the leader holds b's later record below its HW.
    check_replicas(
        "t-0",
        [compacted_view(1, cleaned_below(10), 10), compacted_view(2, as_written(), 6)],
        compacted=True,
    )


def test_a_replica_missing_a_keys_latest_value_is_caught() -> None:
    lost = [(b, e, [(o, r) for o, r in rs if o != 9]) for b, e, rs in cleaned_below(10)]
    assert [b for b, _e, _r in cleaned_below(10)] == [0, 6], "the middle batch went whole"
    with pytest.raises(InvariantViolation, match=r"key b'a'.*node 2 holds no later record"):
        check_replicas(
            "t-0",
            [compacted_view(1, cleaned_below(10), 10), compacted_view(2, lost, 10)],
            compacted=True,
        )


def test_a_deleted_key_back_from_the_dead_is_caught() -> None:
    # Node 2 dropped the tombstone of c but kept c's older value: c lives again there.
    revived = [(0, 2, [HISTORY[0], HISTORY[2]]), (6, 9, [HISTORY[8], HISTORY[9]])]
    with pytest.raises(InvariantViolation, match=r"key b'c'"):
        check_replicas(
            "t-0",
            [compacted_view(1, cleaned_below(10), 10), compacted_view(2, revived, 10)],
            compacted=True,
        )


def test_compacted_replicas_that_differ_at_one_offset_are_caught() -> None:
    other = as_written()
    other[1] = (3, 5, [HISTORY[3], keyed(4, "b", "other"), HISTORY[5]])
    with pytest.raises(InvariantViolation, match="offset 4 holds different records"):
        check_replicas(
            "t-0",
            [compacted_view(1, as_written(), 10), compacted_view(2, other, 10)],
            compacted=True,
        )


def test_compacted_offsets_must_increase_and_an_isr_member_must_reach_the_hw() -> None:
    backwards = gapped_batch([HISTORY[5]], base_offset=5, last_offset=5) + gapped_batch(
        [HISTORY[3]], base_offset=3, last_offset=3
    )
    view = ReplicaView.of_bytes(1, backwards, high_watermark=4, log_start_offset=3)
    with pytest.raises(InvariantViolation, match="offsets do not increase"):
        check_replicas("t-0", [view], compacted=True)
    short = compacted_view(2, as_written()[:2], 6)
    with pytest.raises(InvariantViolation, match="is in the ISR but its log ends at 6"):
        check_replicas("t-0", [compacted_view(1, as_written(), 10), short], compacted=True)
    # Out of the ISR, a replica may lag.
    check_replicas(
        "t-0",
        [compacted_view(1, as_written(), 10), dataclasses.replace(short, in_isr=False)],
        compacted=True,
    )


def test_a_directory_view_of_a_compacted_log_reads_past_its_gaps(tmp_path: Path) -> None:
    directory = tmp_path / "t-0"
    directory.mkdir()
    data = b"".join(gapped_batch(r, base_offset=b, last_offset=e) for b, e, r in cleaned_below(10))
    (directory / f"{0:020d}.log").write_bytes(data)
    OffsetCheckpointFile(tmp_path / HW_FILE).write({("t", 0): 10})
    OffsetCheckpointFile(tmp_path / RECOVERY_POINT_FILE).write({("t", 0): 10})
    view = view_of_directory(1, tmp_path, "t", 0, compacted=True)
    assert (view.log_end_offset, view.tail_bytes) == (10, 0)
    assert sorted(records_of(view, 0, 10)) == [0, 6, 8, 9]
    # Read as a delete-policy log, the first gap below the recovery point is damage.
    with pytest.raises(InvariantViolation, match="corrupt"):
        view_of_directory(1, tmp_path, "t", 0)
