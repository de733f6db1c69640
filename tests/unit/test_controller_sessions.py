"""The sessions a new controller starts with: from each voter's last Raft message, with a
grace period for brokers alive on Raft to find it, and when the controller wakes to end one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from client.protocol import ApiError
from kraft.records import PartitionRecord, TopicRecord
from kraft.state import MetadataState
from server import limits
from server.clock import ManualClock
from server.controller_driver import ControllerDriver, LeaderBalance
from tests.unit.test_controller_plans import TOPIC_ID, state_with_brokers

NOW = 1000.0
SESSION = limits.BROKER_SESSION_TIMEOUT_S
GRACE = limits.NEW_CONTROLLER_GRACE_S
RAFT_GRACE = limits.NEW_CONTROLLER_RAFT_GRACE_S


@dataclass
class Snapshot:
    brokers: dict[int, Any]


@dataclass
class FakeQuorum:
    """The quorum as the driver sees it on node 1 (unit tests only)."""

    heard: dict[int, float] = field(default_factory=dict)
    node_id: int = 1

    def snapshot_state(self) -> Snapshot:
        return Snapshot({1: None, 2: None, 3: None, 4: None})

    def last_heard(self, node_id: int) -> float | None:
        return self.heard.get(node_id)


async def never(*_: Any) -> None:
    raise AssertionError("nothing is written here")


@pytest.mark.parametrize(
    ("heard", "deadline"),
    [
        (None, NOW + SESSION),  # this node, a non-voter, or a voter never heard from
        (NOW - 0.01, NOW - 0.01 + SESSION),  # a live voter keeps (almost) a whole session
        (NOW - SESSION + 0.7, NOW + 0.7),  # silent for most of a session: the rest of it
        # Long silent (a follower messages only the leader, so one that voted long ago): it
        # has RAFT_GRACE to answer this leader's first appends, then is fenced.
        (NOW - SESSION + 0.2, NOW + RAFT_GRACE),
        (NOW - 30.0, NOW + RAFT_GRACE),
        (NOW + 5.0, NOW + SESSION),  # never later than a session from now
    ],
)
def test_a_new_controller_counts_a_voters_session_from_its_last_raft_message(
    heard: float | None, deadline: float
) -> None:
    quorum = FakeQuorum({} if heard is None else {2: heard})
    driver = ControllerDriver(quorum, "cluster", never)  # type: ignore[arg-type]
    deadlines = driver._inherited_sessions(NOW)
    assert deadlines[2] == pytest.approx(deadline)
    assert deadlines[1] == deadlines[3] == deadlines[4] == NOW + SESSION


def test_a_voter_last_heard_long_ago_that_answers_the_new_leader_is_not_fenced() -> None:
    # A leadership handed over: node 2 voted 30 s ago and has sent nothing since; its first
    # Raft message to this leader comes 5 ms after the election, its heartbeat later.
    quorum = FakeQuorum({2: NOW - 30.0})
    driver = ControllerDriver(quorum, "cluster", never)  # type: ignore[arg-type]
    driver._deadlines = driver._inherited_sessions(NOW)
    driver._raft_counts_until = NOW + GRACE
    assert driver._deadlines[2] > NOW + 0.005  # not over at the controller's first tick
    quorum.heard[2] = NOW + 0.005
    driver._count_raft_messages(NOW + 0.005)
    assert driver._deadlines[2] == pytest.approx(NOW + GRACE)


@pytest.mark.parametrize(
    ("heard_later", "deadline"),
    [
        (None, NOW - 1.0 + SESSION),  # silent since: its session from its last message
        (NOW + 0.1, NOW + GRACE),  # alive on Raft: the grace to find this controller
        (NOW - 0.5, NOW - 0.5 + SESSION),  # heard once more, then silent again
    ],
)
def test_until_its_first_heartbeat_a_brokers_raft_messages_count_for_at_most_the_grace(
    heard_later: float | None, deadline: float
) -> None:
    quorum = FakeQuorum({2: NOW - 1.0})  # its heartbeat may be stuck on the old controller
    driver = ControllerDriver(quorum, "cluster", never)  # type: ignore[arg-type]
    driver._deadlines = driver._inherited_sessions(NOW)
    driver._raft_counts_until = NOW + GRACE
    if heard_later is not None:
        quorum.heard[2] = heard_later
    driver._count_raft_messages(NOW + 0.1)
    assert driver._deadlines[2] == pytest.approx(deadline)
    # Its first heartbeat ends the stand-in: from then on only heartbeats count.
    driver._heard.add(2)
    quorum.heard[2] = NOW + 1.0
    driver._count_raft_messages(NOW + 1.0)
    assert driver._deadlines[2] == pytest.approx(deadline)


@dataclass
class Broker:
    id: int
    fenced: bool = False


@dataclass
class BrokersQuorum(FakeQuorum):
    fenced: set[int] = field(default_factory=set)

    def snapshot_state(self) -> Snapshot:
        return Snapshot({i: Broker(i, i in self.fenced) for i in (1, 2, 3)})


RAFT_NOW = NOW - 0.1  # a Raft message a moment ago
HTTP_EXPIRED = NOW - 0.5  # the broker's session (HTTP heartbeats) ended half a second ago
HTTP_LIVE = NOW + 1.0


@pytest.mark.parametrize(
    ("heard_on_raft", "sessions", "heard_this_term", "fenced", "steps_down_for"),
    [
        # Issue 10: the controller's HTTP links are cut, its Raft links are not.
        ({2: RAFT_NOW, 3: RAFT_NOW}, {2: HTTP_EXPIRED, 3: HTTP_EXPIRED}, {2, 3}, set(), [2, 3]),
        # One broker's HTTP server hung: a minority, fenced as usual.
        ({2: RAFT_NOW, 3: RAFT_NOW}, {2: HTTP_EXPIRED, 3: HTTP_LIVE}, {2, 3}, set(), []),
        # Silent on Raft too: they are down, not cut off from this node alone.
        ({2: NOW - 5, 3: NOW - 5}, {2: HTTP_EXPIRED, 3: HTTP_EXPIRED}, {2, 3}, set(), []),
        # Never heard over HTTP in this term: they may be starting.
        ({2: RAFT_NOW, 3: RAFT_NOW}, {2: HTTP_EXPIRED, 3: HTTP_EXPIRED}, set(), set(), []),
        # The one other unfenced broker is silent on HTTP, alive on Raft: a majority of one.
        ({2: RAFT_NOW, 3: RAFT_NOW}, {2: HTTP_EXPIRED, 3: HTTP_EXPIRED}, {2, 3}, {3}, [2]),
    ],
)
def test_a_controller_that_hears_most_brokers_only_on_raft_steps_down_instead_of_fencing(
    heard_on_raft: dict[int, float],
    sessions: dict[int, float],
    heard_this_term: set[int],
    fenced: set[int],
    steps_down_for: list[int],
) -> None:
    quorum = BrokersQuorum(heard_on_raft, fenced=fenced)
    driver = ControllerDriver(quorum, "cluster", never)  # type: ignore[arg-type]
    driver._deadlines = dict(sessions)
    driver._heard = set(heard_this_term)
    state = quorum.snapshot_state()
    assert driver._cut_off_from_brokers(state, NOW) == steps_down_for  # type: ignore[arg-type]


# -- preferred-leader balancing ------------------------------------------------------------------


def test_the_balancer_checks_once_an_interval_after_each_new_term_and_only_when_enabled() -> None:
    state: MetadataState = state_with_brokers(1, 2)
    state.apply_entry(
        2,
        [
            TopicRecord(name="news", topic_id=TOPIC_ID),
            PartitionRecord(TOPIC_ID, 0, (1, 2), (1, 2), 2, 0, 0),  # broker 1 prefers, 2 leads
        ],
    )
    written: list[int] = []

    async def write(plan: Any, term: int | None) -> int | None:
        records = plan(state)
        if records:
            state.apply_entry(state.applied_index + 1, records)
            written.append(len(records))
        return None

    clock = ManualClock()
    quorum: Any = FakeQuorum()
    off = ControllerDriver(quorum, "c", write, clock, LeaderBalance(False, 5, 10))
    driver = ControllerDriver(quorum, "c", write, clock, LeaderBalance(True, 5, 10))

    async def steps() -> None:
        await off._balance_leaders(7, 100.0)
        await off._balance_leaders(7, 200.0)
        assert written == [], "auto.leader.rebalance.enable=false: never"
        await driver._balance_leaders(7, 100.0)  # a new term starts the interval
        await driver._balance_leaders(7, 104.9)
        assert written == [] and state.topics["news"].partitions[0].leader == 2
        await driver._balance_leaders(7, 105.0)
        assert written == [1] and state.topics["news"].partitions[0].leader == 1

    asyncio.run(steps())


# -- a killed controller, and waking at a session's end -----------------------------------------


@dataclass
class ElectionQuorum(BrokersQuorum):
    """Node 1's quorum: a follower until ``leading`` is set."""

    leading: bool = False
    term: int = 1

    def is_leader(self) -> bool:
        return self.leading

    def current_term(self) -> int:
        return self.term


@pytest.mark.parametrize("election_ms", [450, 1200])
def test_a_killed_controller_is_fenced_one_session_after_its_last_raft_message(
    election_ms: int,
) -> None:
    # Node 2 led the quorum until it was killed at t=0 (its last Raft message); node 1 won
    # the election later. Node 3 is alive and heartbeats node 1 from then on. A grace counted
    # from the election would have kept node 2 until 1.65 or 2.4 s; only an election later
    # than RAFT_MAX_TIMEOUT_S (a split vote) keeps it past one session, by the short grace
    # every voter gets to answer the new leader.
    fenced_at = max(SESSION, election_ms / 1000 + RAFT_GRACE)
    clock = ManualClock(monotonic_s=0.0)
    quorum = ElectionQuorum({2: 0.0, 3: 0.0})
    fenced: list[tuple[int, float]] = []

    async def write(plan: Any, term: int | None) -> int | None:
        broker = getattr(plan, "keywords", {}).get("broker_id")
        if broker is not None:
            fenced.append((broker, clock.monotonic_s()))
            quorum.fenced.add(broker)
        return None

    fake: Any = quorum
    driver = ControllerDriver(fake, "c", write, clock, LeaderBalance(enabled=False))

    def at(ms: int) -> None:
        clock.advance_ms(ms - round(clock.monotonic_s() * 1000))
        quorum.heard[3] = clock.monotonic_s()

    async def steps() -> None:
        with pytest.raises(ApiError):
            driver._leading_term()
        at(election_ms)
        quorum.leading, quorum.term = True, 2
        term = driver._leading_term()
        driver._heard.add(3)
        driver._deadlines[3] = 100.0  # node 3's heartbeats
        for ms in range(election_ms, round(fenced_at * 1000) - 40, 50):  # to 50 ms before
            at(ms)
            await driver._tick(term)
        assert fenced == []
        # It wakes just past the session's end, not at its next 100 ms tick.
        state: Any = quorum.snapshot_state()
        pause = driver.next_pause_s(state, clock.monotonic_s())
        assert clock.monotonic_s() + pause == pytest.approx(
            fenced_at + limits.CONTROLLER_DEADLINE_SLACK_S
        )
        at(round((clock.monotonic_s() + pause) * 1000))
        await driver._tick(term)
        assert [broker for broker, _at in fenced] == [2]

    asyncio.run(steps())


def test_the_controller_sleeps_a_tick_unless_an_unfenced_brokers_session_ends_sooner() -> None:
    quorum = BrokersQuorum(fenced={3})
    driver = ControllerDriver(quorum, "cluster", never)  # type: ignore[arg-type]
    state: Any = quorum.snapshot_state()
    slack = limits.CONTROLLER_DEADLINE_SLACK_S
    driver._deadlines = {1: NOW + 5, 2: NOW + 5, 3: NOW - 10}  # 3 is fenced already
    assert driver.next_pause_s(state, NOW) == limits.CONTROLLER_TICK_S
    driver._deadlines[2] = NOW + 0.03
    assert driver.next_pause_s(state, NOW) == pytest.approx(0.03 + slack)
    driver._deadlines[2] = NOW - 0.5  # ended: the tick after this pause fences it
    assert driver.next_pause_s(state, NOW) == slack
