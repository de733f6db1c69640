"""The sessions a new controller starts with: from each voter's last Raft message, with a
grace period for live brokers to find it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from server import limits
from server.controller_driver import ControllerDriver

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
