"""Where nodes find a controller's HTTP URL: its RegisterControllerRecord, written with the
LeaderChangeRecord by a new leader and through the leader by the other controllers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from client.protocol import INCONSISTENT_CLUSTER_ID, INVALID_REQUEST, ApiError
from kraft.records import LeaderChangeRecord, MetadataRecord, RegisterControllerRecord
from kraft.state import MetadataState
from server.controller_driver import ControllerDriver

Plan = Callable[[MetadataState], list[MetadataRecord]]
MINE = RegisterControllerRecord(2, "inc-2", "http://127.0.0.1:9094", "127.0.0.1:9095")


@dataclass
class LeadingQuorum:
    """Node 2 leads term 7 of the voters 1, 2 and 3; ``state`` is the applied metadata."""

    node_id: int = 2
    peers: dict[int, str] = field(
        default_factory=lambda: {1: "127.0.0.1:9093", 3: "127.0.0.1:9097"}
    )
    state: MetadataState = field(default_factory=MetadataState)

    def is_leader(self) -> bool:
        return True

    def current_term(self) -> int:
        return 7

    def snapshot_state(self) -> MetadataState:
        return self.state.copy()

    def last_heard(self, node_id: int) -> float | None:
        return None

    def is_voter_address(self, address: str) -> bool:
        return address in ("127.0.0.1:9095", *self.peers.values())


class Writes:
    """The driver's write: applies each plan's records to the quorum's state."""

    def __init__(self, quorum: LeadingQuorum) -> None:
        self.quorum = quorum
        self.written: list[list[MetadataRecord]] = []

    async def __call__(self, plan: Plan, term: int | None) -> int | None:
        records = plan(self.quorum.snapshot_state())
        self.written.append(records)
        index = self.quorum.state.applied_index + 1
        self.quorum.state.apply_entry(index, records)
        return index


def driver() -> tuple[ControllerDriver, Writes]:
    quorum = LeadingQuorum()
    writes = Writes(quorum)
    return ControllerDriver(quorum, "cluster", writes, registration=MINE), writes  # type: ignore[arg-type]


def test_a_new_leader_registers_with_its_first_record_unless_the_log_has_it() -> None:
    control, writes = driver()

    async def body() -> None:
        await control._announce(7)
        control._announced_term = None  # a later term of the same process
        await control._announce(8)

    asyncio.run(body())
    assert writes.written == [[LeaderChangeRecord(2), MINE], [LeaderChangeRecord(2)]]


def registration(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cluster_id": "cluster",
        "controller_id": 3,
        "incarnation_id": "inc-3",
        "http_url": "http://127.0.0.1:9096",
        "raft_address": "127.0.0.1:9097",
    }
    return body | changes


def test_the_leader_writes_another_voters_registration() -> None:
    control, writes = driver()
    answer = asyncio.run(control.register_controller(registration()))
    assert answer == {"controller_id": 3, "registered_index": 2}
    assert writes.written[-1] == [
        RegisterControllerRecord(3, "inc-3", "http://127.0.0.1:9096", "127.0.0.1:9097")
    ]


@pytest.mark.parametrize(
    "changes, kind, words",
    [
        ({"controller_id": 4}, INVALID_REQUEST, "is not a voter of this quorum"),
        ({"raft_address": "127.0.0.1:1"}, INVALID_REQUEST, "is not a voter of this quorum"),
        ({"cluster_id": "other"}, INCONSISTENT_CLUSTER_ID, "formatted for cluster other"),
        ({"http_url": "ftp://x:1"}, INVALID_REQUEST, "http_url must start with http"),
        ({"controller_id": "3"}, INVALID_REQUEST, "controller_id must be an integer"),
    ],
)
def test_a_bad_controller_registration_is_refused_and_writes_nothing(
    changes: dict[str, Any], kind: object, words: str
) -> None:
    control, writes = driver()
    asyncio.run(control._announce(7))
    with pytest.raises(ApiError) as caught:
        asyncio.run(control.register_controller(registration(**changes)))
    assert caught.value.kind is kind and words in caught.value.message
    assert len(writes.written) == 1  # the takeover entry only
