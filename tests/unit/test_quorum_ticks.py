"""When the Raft tick thread wakes: it sleeps until its next timer, a socket event or a
writer's wake-up, not every 10 ms; how often it redials a lost peer (Kafka's backoff); and when
a new cluster's first election comes. Pure: fakes stand in for pysyncobj's SyncObj and
transport."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace
from typing import Any

import pytest
from pysyncobj.monotonic import monotonic as pysyncobj_clock

from kraft import limits
from kraft.quorum import _MetadataSyncObj
from kraft.transport import redial_delay_s


def sync(
    *,
    leader: bool = False,
    heartbeat_in_s: float = 0.05,
    election_in_s: float = 0.5,
    connected: bool = True,
    dial_in_s: float = float("inf"),
    queued: int = 0,
    commit: int = 5,
    applied: int = 5,
    last: int = 5,
    peers: int = 2,
    compaction: bool = False,
    transfer: bool = False,
) -> Any:
    now = pysyncobj_clock()
    fake = SimpleNamespace(
        _SyncObj__commandsQueue=SimpleNamespace(_FastQueue__queue=deque(range(queued))),
        raftCommitIndex=commit,
        raftLastApplied=applied,
        _SyncObj__forceLogCompaction=compaction,
        _kraft_owner=SimpleNamespace(_transfer_requested=transfer),
        _SyncObj__otherNodes=set(range(peers)),
        _SyncObj__getCurrentLogIndex=lambda: last,
        _isLeader=lambda: leader,
        _SyncObj__newAppendEntriesTime=now + heartbeat_in_s,
        _SyncObj__raftElectionDeadline=now + election_in_s,
        _SyncObj__connectedToAnyone=lambda: connected,
        _SyncObj__transport=SimpleNamespace(kraft_next_dial_s=lambda: dial_in_s),
    )
    fake._kraft_commits_alone = lambda: _MetadataSyncObj._kraft_commits_alone(fake)  # type: ignore[arg-type]
    return fake


def wait(fake: Any) -> float:
    return float(_MetadataSyncObj._kraft_wait_s(fake))


def test_an_idle_leader_sleeps_until_its_next_heartbeat() -> None:
    assert 0.04 < wait(sync(leader=True, heartbeat_in_s=0.05)) <= 0.05
    # A heartbeat already due: the shortest sleep, never a negative or busy one.
    assert wait(sync(leader=True, heartbeat_in_s=-0.2)) == limits.RAFT_TIMER_SLACK_S


def test_an_idle_follower_sleeps_at_most_the_idle_wait_or_until_its_election() -> None:
    assert wait(sync(election_in_s=0.7)) == limits.RAFT_IDLE_WAIT_S
    assert 0.02 < wait(sync(election_in_s=0.03)) <= 0.03
    # Connected to nobody, pysyncobj holds no election: a passed deadline is no reason to spin.
    assert wait(sync(election_in_s=-1.0, connected=False)) == limits.RAFT_IDLE_WAIT_S


def test_a_redial_due_soon_shortens_the_sleep() -> None:
    assert wait(sync(dial_in_s=0.02)) == pytest.approx(0.02)
    assert wait(sync(dial_in_s=-0.5)) == limits.RAFT_TIMER_SLACK_S


@pytest.mark.parametrize(
    "busy",
    [
        {"queued": 1},  # a command waits to be appended
        {"commit": 6, "applied": 5},  # a committed entry waits to be applied
        {"compaction": True},
        {"transfer": True},
        {"leader": True, "peers": 0, "last": 6},  # a quorum of one commits at its next tick
    ],
)
def test_work_waiting_for_a_tick_gets_the_short_tick(busy: dict[str, Any]) -> None:
    assert wait(sync(**{"heartbeat_in_s": 0.09, **busy})) == limits.RAFT_TICK_S


def test_a_leader_with_followers_waits_for_their_answers_not_a_tick() -> None:
    # Entries not committed yet: the followers' answers (socket events) wake the thread.
    assert wait(sync(leader=True, last=6, heartbeat_in_s=0.09)) > limits.RAFT_TICK_S


def test_redials_back_off_from_50_ms_to_the_retry_time_as_kafka_clients_do() -> None:
    delays = [redial_delay_s(n) for n in range(8)]
    assert delays[:5] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8])
    assert delays[5:] == [limits.RAFT_CONNECTION_RETRY_S] * 3
    assert redial_delay_s(10_000) == limits.RAFT_CONNECTION_RETRY_S


def first_election(term: int, *, connected: bool, leader: Any = None) -> Any:
    return SimpleNamespace(
        _kraft_first_election=True,
        raftCurrentTerm=term,
        _getLeader=lambda: leader,
        _SyncObj__connectedToAnyone=lambda: connected,
        _SyncObj__raftElectionDeadline=pysyncobj_clock() + 0.9,  # pysyncobj's, from its start
    )


def test_a_new_clusters_first_election_is_timed_from_the_first_peer_reached() -> None:
    fake = first_election(0, connected=False)
    _MetadataSyncObj._kraft_arm_first_election(fake)
    assert fake._kraft_first_election  # nobody reached yet: pysyncobj elects nothing anyway
    fake._SyncObj__connectedToAnyone = lambda: True
    before = pysyncobj_clock()
    _MetadataSyncObj._kraft_arm_first_election(fake)
    assert not fake._kraft_first_election
    deadline = fake._SyncObj__raftElectionDeadline
    assert before + limits.RAFT_FIRST_ELECTION_MIN_S <= deadline
    assert deadline <= pysyncobj_clock() + limits.RAFT_FIRST_ELECTION_MAX_S


@pytest.mark.parametrize(
    "fake",
    [
        first_election(3, connected=True),  # a restart: a leader may be alive, wait as usual
        first_election(0, connected=True, leader="127.0.0.1:2"),  # a leader already spoke
    ],
)
def test_a_node_that_was_in_a_term_or_knows_a_leader_keeps_the_usual_timeout(fake: Any) -> None:
    deadline = fake._SyncObj__raftElectionDeadline
    _MetadataSyncObj._kraft_arm_first_election(fake)
    assert not fake._kraft_first_election
    assert fake._SyncObj__raftElectionDeadline == deadline
