"""Waiting for a metadata entry to be applied on this node (server/metadata_applied.py): what
a node that forwarded an admin request waits for before it answers, instead of its replicas
opening. A stand-in quorum applies entries when told and tells the waiters, as the node's
metadata listener does (no sockets, no threads)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from kraft.quorum import MetadataQuorum
from kraft.records import MetadataRecord
from server.metadata_applied import MetadataApplied

Listener = Callable[[int, Sequence[MetadataRecord] | None], None]


@dataclass
class AppliedState:
    applied_index: int


class StandInQuorum:
    """Applies entries when told, then calls its listeners, as the quorum's loop callback."""

    def __init__(self) -> None:
        self.index = 0
        self.listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def snapshot_state(self) -> AppliedState:
        return AppliedState(self.index)

    def apply(self, index: int, records: Sequence[MetadataRecord] | None = ()) -> None:
        self.index = index
        for listener in self.listeners:
            listener(index, records)


def waiter(quorum: StandInQuorum) -> MetadataApplied:
    applied = MetadataApplied(cast(MetadataQuorum, cast(Any, quorum)))
    quorum.add_listener(lambda index, records: applied.applied(index))
    return applied


def test_an_entry_applied_already_needs_no_wait() -> None:
    async def run() -> None:
        quorum = StandInQuorum()
        applied = waiter(quorum)
        quorum.apply(7)
        assert await applied.wait(7, timeout_s=0.001)
        assert await applied.wait(3, timeout_s=0.001)

    asyncio.run(run())


def test_waiters_wake_in_index_order_as_entries_apply() -> None:
    async def run() -> None:
        quorum = StandInQuorum()
        applied = waiter(quorum)
        woke: list[int] = []

        async def wait_for(index: int) -> None:
            assert await applied.wait(index, timeout_s=60)
            woke.append(index)

        tasks = [asyncio.ensure_future(wait_for(i)) for i in (3, 1, 2, 5)]
        await asyncio.sleep(0)
        quorum.apply(1)
        await asyncio.sleep(0.01)
        assert woke == [1]
        quorum.apply(3)
        await asyncio.sleep(0.01)
        assert sorted(woke) == [1, 2, 3]
        quorum.apply(9, None)  # a snapshot replaced the state up to 9
        await asyncio.gather(*tasks)
        assert sorted(woke) == [1, 2, 3, 5]

    asyncio.run(run())


def test_a_wait_that_times_out_says_so_and_leaves_nothing_behind() -> None:
    async def run() -> None:
        quorum = StandInQuorum()
        applied = waiter(quorum)
        assert not await applied.wait(4, timeout_s=0.01)
        quorum.apply(4)
        assert applied._waiters == []
        assert await applied.wait(4, timeout_s=0.01)

    asyncio.run(run())
