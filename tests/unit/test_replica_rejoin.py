"""A replica removed and added back, as its leader sees it, without sockets: what the leader
knew of it before counts for nothing (its broker deleted its log when it left), so neither
a stale report nor the fetch state its session still holds can put it back in the ISR, and
the high watermark never counts a broker that is not a replica (Kafka's
Partition.updateAssignmentAndIsr drops a removed replica's state)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from server.fetch_sessions import FULL_EPOCH
from server.partition import LeaderState, Partition
from server.replication import (
    FetchPartition,
    FetchRequest,
    ReplicaFetchHandler,
    decode_fetch_response,
)
from storage.batch import NewRecord
from storage.memory_log import MemoryLog

TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"
LAG_MS = 10_000
QUIET_MS = LAG_MS // 2


class Leader:
    """Node 1 leading t-0 with replicas 1, 2, 3 (all in the ISR), five records committed,
    and the follower's fetch sessions and ISR requests kept for the test to read."""

    def __init__(self) -> None:
        self.p = Partition(
            topic="t",
            topic_id=TOPIC_ID,
            index=0,
            node_id=1,
            log=MemoryLog(),
            state=LeaderState(1, 0, (1, 2, 3), (1, 2, 3), partition_epoch=0),
            leader_since_ms=0,
        )
        self.now_ms = 0
        self.isr_changes: list[tuple[int, ...]] = []
        self.handler = ReplicaFetchHandler(
            1,
            lambda t, i: self.p if (t, i) == ("t", 0) else None,
            lambda part, isr: self.isr_changes.append(isr),
            _Clock(self),
            watch_isr=lambda part, due: None,
            lag_max_ms=LAG_MS,
        )
        self.p.change_listener = self.handler.partition_changed
        self.sessions: dict[int, tuple[int, int]] = {}
        self.p.append_now([[NewRecord(None, b"v", 1000 + i) for i in range(5)]], "1")
        self.p.log.flush()

    def fetch(self, replica: int, fetch_offset: int | None, at_ms: int) -> dict[str, Any] | None:
        """A request of ``replica``'s session at ``at_ms`` (full the first time, and after a
        session error), naming t-0 only when ``fetch_offset`` is given; the answer's entry
        for t-0, if any, or the session error (the next request is then full)."""
        self.now_ms = at_ms
        wants: tuple[FetchPartition, ...] = ()
        if fetch_offset is not None:
            last_epoch = -1 if fetch_offset == 0 else 0
            wants = (FetchPartition("t", 0, TOPIC_ID, 0, fetch_offset, fetch_offset, last_epoch),)
        session_id, epoch = self.sessions.get(replica, (0, FULL_EPOCH))
        request = FetchRequest(replica, 0, 1 << 20, wants, session_id, epoch)
        answer = decode_fetch_response(asyncio.run(self.handler.fetch(request)))
        if answer.error is not None:
            del self.sessions[replica]
            return answer.error
        session = self.handler.sessions.of_replica(replica)
        assert session is not None
        self.sessions[replica] = (session.session_id, session.epoch)
        return next((entry for entry, _ in answer.partitions if entry["partition"] == 0), None)

    def metadata(self, replicas: tuple[int, ...], isr: tuple[int, ...], at_ms: int) -> None:
        """The metadata's next partition epoch, same leader and leader epoch."""
        self.now_ms = at_ms
        state = self.p.state
        self.p.update_state(
            dataclasses.replace(
                state, replicas=replicas, isr=isr, partition_epoch=state.partition_epoch + 1
            ),
            at_ms,
        )

    def expand(self) -> None:
        self.handler.expand_isr_if_caught_up(self.p, self.now_ms, QUIET_MS)


class _Clock:
    def __init__(self, leader: Leader) -> None:
        self.leader = leader

    def wall_ms(self) -> int:
        return self.leader.now_ms

    def monotonic_s(self) -> float:
        return self.leader.now_ms / 1000


def test_a_removed_replica_added_back_is_not_put_in_the_isr_from_what_it_said_before() -> None:
    leader = Leader()
    leader.fetch(2, 5, at_ms=1_000)
    leader.fetch(3, 5, at_ms=1_000)  # caught up at the log end: the HW
    assert leader.p.follower_offsets[3] == 5 and leader.p.high_watermark == 5
    leader.metadata((1, 2), (1, 2), at_ms=1_100)  # a cancel: 3 leaves and deletes its log
    assert 3 not in leader.p.follower_offsets and 3 not in leader.p.followers
    leader.metadata((1, 2, 3), (1, 2), at_ms=1_200)  # added back within the quiet time
    leader.expand()
    assert leader.isr_changes == [], "its session's fetch state predates its new, empty log"
    # Its session names nothing new (an idle round, or it lost the race): the session ends.
    error = leader.fetch(3, None, at_ms=1_300)
    assert error is not None and error["error"] == "FETCH_SESSION_ID_NOT_FOUND"
    assert "named its fetch state of t-0 before it joined the replicas" in error["message"]
    leader.expand()
    assert leader.isr_changes == [] and 3 not in leader.p.follower_offsets
    assert leader.handler.sessions.of_replica(3) is None
    # Its new log's first fetch (a full session): behind the HW, not in the ISR; caught up,
    # it joins.
    entry = leader.fetch(3, 0, at_ms=1_400)
    assert entry is not None and "error" not in entry and entry["size"] > 0
    assert leader.isr_changes == [] and leader.p.follower_offsets[3] == 0
    leader.fetch(3, 5, at_ms=1_500)
    assert leader.isr_changes == [(1, 2, 3)]


def test_a_removal_and_its_undoing_applied_together_still_distrust_the_follower() -> None:
    leader = Leader()
    leader.metadata((1, 2, 3), (1, 2), at_ms=500)  # 3 out of the ISR, still a replica
    leader.fetch(3, 5, at_ms=1_000)
    leader.isr_changes.clear()
    # The removal and the re-adding reach this leader in one reconcile: the replicas look
    # unchanged, but the partition epoch jumped by two.
    state = leader.p.state
    leader.now_ms = 1_200
    leader.p.update_state(
        dataclasses.replace(state, partition_epoch=state.partition_epoch + 2), 1_200
    )
    assert 3 not in leader.p.follower_offsets
    leader.expand()
    assert leader.isr_changes == []
    error = leader.fetch(3, None, at_ms=1_300)
    assert error is not None and error["error"] == "FETCH_SESSION_ID_NOT_FOUND"
    assert leader.isr_changes == []


def test_a_fetch_from_a_broker_that_is_not_a_replica_is_held_and_records_nothing() -> None:
    leader = Leader()
    leader.metadata((1, 2), (1, 2), at_ms=100)
    entry = leader.fetch(3, 5, at_ms=1_000)
    assert entry is not None and entry["error"]["error"] == "UNKNOWN_LEADER_EPOCH", entry
    assert "broker 3 is not a replica of t-0" in entry["error"]["message"]
    assert 3 not in leader.p.follower_offsets and 3 not in leader.p.followers
    assert leader.isr_changes == []


def test_a_new_replica_whose_fetch_came_before_the_metadata_starts_a_full_session() -> None:
    leader = Leader()
    leader.metadata((1, 2), (1, 2), at_ms=100)
    leader.fetch(4, 0, at_ms=1_000)  # ahead of this leader's metadata: held, not counted
    leader.metadata((1, 2, 4), (1, 2), at_ms=1_100)
    error = leader.fetch(4, None, at_ms=1_200)
    assert error is not None and error["error"] == "FETCH_SESSION_ID_NOT_FOUND"
    entry = leader.fetch(4, 0, at_ms=1_300)  # the follower's full request
    assert entry is not None and "error" not in entry and entry["size"] > 0
    assert leader.p.follower_offsets[4] == 0


def test_the_high_watermark_never_counts_a_broker_that_is_not_a_replica() -> None:
    leader = Leader()
    leader.metadata((1, 2, 3), (1, 2), at_ms=100)
    leader.p.isr_change_requested((1, 2, 3))
    assert list(leader.p.maximal_isr) == [1, 2, 3], "a pending member counts"
    # Asked before 3 left (the metadata normally clears it with the new partition epoch).
    leader.p.state = dataclasses.replace(leader.p.state, replicas=(1, 2))
    assert list(leader.p.maximal_isr) == [1, 2], "a pending ISR member that left is not counted"
    leader.p.follower_reported(2, 5, 5)
    leader.p.advance_high_watermark()
    assert leader.p.high_watermark == 5


def test_a_leader_epoch_change_forgets_every_follower_and_every_rejoin_time() -> None:
    leader = Leader()
    leader.metadata((1, 2), (1, 2), at_ms=100)
    leader.metadata((1, 2, 3), (1, 2), at_ms=200)
    assert leader.p.replica_since_ms == {3: 200}
    assert leader.p.follower_since_ms(3) == 200 and leader.p.follower_since_ms(2) == 0
    state = leader.p.state
    leader.p.update_state(
        dataclasses.replace(
            state, leader_epoch=state.leader_epoch + 1, partition_epoch=state.partition_epoch + 1
        ),
        300,
    )
    assert leader.p.replica_since_ms == {} and leader.p.follower_since_ms(3) == 300
