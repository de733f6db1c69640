"""The ISR keeper's rules without sockets: the next-deadline timer, the lag check, and what a
leader's fetch sessions say of a follower being caught up (per event, not per tick)."""

from __future__ import annotations

import asyncio

from server.deadlines import Deadlines
from server.fetch_sessions import FULL_EPOCH
from server.partition import FollowerProgress, LeaderState, Partition
from server.replication import FetchPartition, FetchRequest, ReplicaFetchHandler, isr_check
from storage.batch import NewRecord
from storage.memory_log import MemoryLog

TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"
LAG_MS = 10_000
QUIET_MS = LAG_MS // 2


def test_deadlines_keep_a_key_once_at_its_earliest_time_and_pop_what_is_due() -> None:
    due: Deadlines[str] = Deadlines()
    due.schedule("a", 50)
    due.schedule("b", 20)
    due.schedule("a", 10)  # earlier: moves
    due.schedule("b", 90)  # later: ignored
    assert len(due) == 2 and due.next_ms() == 10
    assert due.pop_due(15) == ["a"] and "a" not in due
    assert due.pop_due(19) == [] and due.next_ms() == 20
    due.schedule("a", 20)
    assert due.pop_due(100) == ["b", "a"] and due.next_ms() is None and len(due) == 0


def leader(isr: tuple[int, ...] = (1, 2, 3)) -> Partition:
    return Partition(
        topic="t",
        topic_id=TOPIC_ID,
        index=0,
        node_id=1,
        log=MemoryLog(),
        state=LeaderState(1, 0, (1, 2, 3), isr),
        leader_since_ms=0,
    )


def test_the_lag_check_drops_who_lagged_too_long_and_says_when_to_look_again() -> None:
    p = leader()
    p.followers[2] = FollowerProgress(last_fetch_ms=9_000, last_caught_up_ms=9_000)
    p.followers[3] = FollowerProgress(last_fetch_ms=9_000, last_caught_up_ms=100)
    assert isr_check(p, 10_500, LAG_MS) == ((1, 2), 9_000 + LAG_MS + 1)
    assert isr_check(p, 10_000, LAG_MS) == (None, 100 + LAG_MS + 1)


def test_a_follower_covered_by_its_session_needs_no_look_until_an_event() -> None:
    p = leader()

    def caught_up(part: Partition, replica: int) -> tuple[int, bool]:
        return (9_000, True) if replica == 2 else (8_000, False)

    assert isr_check(p, 10_000, LAG_MS, caught_up) == (None, 8_000 + LAG_MS + 1)

    def all_covered(part: Partition, replica: int) -> tuple[int, bool]:
        return 9_000, True

    assert isr_check(p, 10_000, LAG_MS, all_covered) == (None, None), "idle: no timer at all"


class Node:
    def __init__(self, isr: tuple[int, ...] = (1, 2, 3)) -> None:
        self.p = leader(isr)
        self.now_ms = 0
        self.isr_changes: list[tuple[int, ...]] = []
        self.watched: list[int] = []
        clock = _Clock(self)
        self.handler = ReplicaFetchHandler(
            1,
            lambda t, i: self.p if (t, i) == ("t", 0) else None,
            lambda part, isr: self.isr_changes.append(isr),
            clock,
            watch_isr=lambda part, due: self.watched.append(due),
            lag_max_ms=LAG_MS,
        )
        self.p.change_listener = self.handler.partition_changed
        self.session_id = 0
        self.epoch = FULL_EPOCH

    def fetch(self, replica: int, fetch_offset: int | None, at_ms: int) -> None:
        """A request of ``replica``'s session at ``at_ms``: full the first time, then naming
        the partition only if ``fetch_offset`` is given (its state changed)."""
        self.now_ms = at_ms
        wants: tuple[FetchPartition, ...] = ()
        if fetch_offset is not None:
            last_epoch = -1 if fetch_offset == 0 else 0
            wants = (FetchPartition("t", 0, TOPIC_ID, 0, fetch_offset, fetch_offset, last_epoch),)
        request = FetchRequest(replica, 0, 1 << 20, wants, self.session_id, self.epoch)
        asyncio.run(self.handler.fetch(request))
        session = self.handler.sessions.of_replica(replica)
        assert session is not None
        self.session_id, self.epoch = session.session_id, session.epoch

    def caught_up(self, replica: int) -> tuple[int, bool]:
        return self.handler.caught_up(self.p, replica, self.now_ms, QUIET_MS)

    def append(self, count: int) -> None:
        self.p.append_now([[NewRecord(None, b"v", 1000 + i) for i in range(count)]], "1")


class _Clock:
    def __init__(self, node: Node) -> None:
        self.node = node

    def wall_ms(self) -> int:
        return self.node.now_ms

    def monotonic_s(self) -> float:
        return self.node.now_ms / 1000


def test_a_caught_up_follower_in_a_live_session_is_covered_until_it_goes_quiet() -> None:
    node = Node()
    node.fetch(2, 0, at_ms=1_000)
    assert node.caught_up(2) == (1_000, True)
    node.fetch(2, None, at_ms=4_000)  # an idle round: names nothing, still caught up
    assert node.caught_up(2) == (4_000, True)
    node.now_ms = 4_000 + QUIET_MS + 1
    assert node.caught_up(2) == (4_000, False), "quiet: the keeper looks at it by the lag"
    assert node.handler.quiet_sessions(node.now_ms, QUIET_MS) != []
    assert node.handler.quiet_sessions(node.now_ms, QUIET_MS) == [], "told once"


def test_an_append_uncovers_a_follower_until_it_reports_the_new_end() -> None:
    node = Node()
    node.fetch(2, 0, at_ms=1_000)
    node.append(2)
    node.now_ms = 2_000
    assert node.caught_up(2) == (1_000, False)
    node.fetch(2, 2, at_ms=3_000)
    assert node.caught_up(2) == (3_000, True)


def test_a_follower_behind_is_watched_at_the_time_it_would_lag_too_long() -> None:
    node = Node()
    node.append(5)
    node.fetch(2, 0, at_ms=1_000)  # behind at once: caught up as of its first fetch
    assert node.watched == [1_000 + LAG_MS + 1]


def test_a_follower_back_from_a_pause_is_added_to_the_isr_again_though_it_names_nothing() -> None:
    node = Node(isr=(1, 3))
    node.append(2)
    node.p.log.flush()
    node.fetch(2, 2, at_ms=1_000)
    assert node.isr_changes == [(1, 3, 2)], "caught up: asked to join"
    node.isr_changes.clear()
    node.now_ms = 1_000 + QUIET_MS + 1
    node.handler.expand_isr_if_caught_up(node.p, node.now_ms, QUIET_MS)
    assert node.isr_changes == [], "a quiet session is no proof the follower is there"
    assert node.handler.quiet_sessions(node.now_ms, QUIET_MS) != []
    node.watched.clear()
    node.fetch(2, None, at_ms=20_000)  # back: an idle request
    assert node.watched == [20_000], "the keeper looks at its partitions again"
    node.handler.expand_isr_if_caught_up(node.p, node.now_ms, QUIET_MS)
    assert node.isr_changes == [(1, 3, 2)]
