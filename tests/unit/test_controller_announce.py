"""A new controller puts its election in the metadata log: one LeaderChangeRecord per term."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from client.protocol import LEADER_NOT_AVAILABLE, ApiError
from kraft.records import LeaderChangeRecord, MetadataRecord
from kraft.state import MetadataState
from server.controller_driver import ControllerDriver

Plan = Callable[[MetadataState], list[MetadataRecord]]


@dataclass
class FakeQuorum:
    node_id: int = 2


class Writes:
    """The driver's write: records what each plan wrote and in which term; can fail once."""

    def __init__(self) -> None:
        self.written: list[tuple[list[MetadataRecord], int | None]] = []
        self.fail_next = False

    async def __call__(self, plan: Plan, term: int | None) -> int | None:
        if self.fail_next:
            self.fail_next = False
            raise ApiError(LEADER_NOT_AVAILABLE, "the metadata leader changed; retry")
        self.written.append((plan(MetadataState()), term))
        return len(self.written)


def test_the_controller_names_itself_once_in_each_term_it_leads() -> None:
    writes = Writes()
    driver = ControllerDriver(FakeQuorum(), "cluster", writes)  # type: ignore[arg-type]

    async def body() -> None:
        await driver._announce(3)
        await driver._announce(3)  # every tick of the term: written once
        await driver._announce(5)  # a later leadership of the same node
        writes.fail_next = True
        with pytest.raises(ApiError):
            await driver._announce(6)
        await driver._announce(6)  # not committed: the next tick writes it

    asyncio.run(body())
    assert writes.written == [
        ([LeaderChangeRecord(2)], 3),
        ([LeaderChangeRecord(2)], 5),
        ([LeaderChangeRecord(2)], 6),
    ]


def test_decisions_racing_at_the_start_of_a_term_write_one_leader_change_first() -> None:
    writes = Writes()
    driver = ControllerDriver(FakeQuorum(), "cluster", writes)  # type: ignore[arg-type]

    async def body() -> None:
        await asyncio.gather(*(driver._announce(4) for _ in range(3)))

    asyncio.run(body())
    assert writes.written == [([LeaderChangeRecord(2)], 4)]


@dataclass
class LeadingQuorum(FakeQuorum):
    """A quorum this node leads (or not) in ``term``, with no brokers heard from."""

    leading: bool = True
    term: int = 7

    def is_leader(self) -> bool:
        return self.leading

    def current_term(self) -> int:
        return self.term

    def snapshot_state(self) -> MetadataState:
        return MetadataState()

    def last_heard(self, node_id: int) -> float | None:
        return None


def test_an_admin_write_is_told_the_term_once_the_leader_change_is_written() -> None:
    # Node.write_metadata asks lead() before an admin write and writes in the term it gets.
    writes = Writes()
    quorum = LeadingQuorum()
    driver = ControllerDriver(quorum, "cluster", writes)  # type: ignore[arg-type]

    async def body() -> None:
        assert await driver.lead() == 7
        assert writes.written == [([LeaderChangeRecord(2)], 7)]
        assert await driver.lead() == 7  # written once per term
        quorum.leading = False
        with pytest.raises(ApiError) as raised:
            await driver.lead()
        assert raised.value.kind == LEADER_NOT_AVAILABLE

    asyncio.run(body())
    assert writes.written == [([LeaderChangeRecord(2)], 7)]
