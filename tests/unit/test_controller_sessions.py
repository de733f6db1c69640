"""The sessions a new controller starts with: from each voter's last Raft message, with a
grace period for live brokers to find it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from kraft.records import PartitionRecord, TopicRecord
from kraft.state import MetadataState
from server import limits
from server.clock import ManualClock
from server.controller_driver import ControllerDriver, LeaderBalance
from tests.unit.test_controller_plans import TOPIC_ID, state_with_brokers

NOW = 1000.0
SESSION = limits.BROKER_SESSION_TIMEOUT_S
GRACE = limits.NEW_CONTROLLER_GRACE_S


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
        (NOW - SESSION + 0.2, NOW + GRACE),  # silent for most of a session: the grace
        (NOW - 30.0, NOW + GRACE),  # long silent
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
