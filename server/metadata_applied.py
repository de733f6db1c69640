"""Waiting until this node has applied a metadata entry: read your own admin write.

An admin request (create a topic, alter a config) is answered once the controller has
committed and applied its records, as Kafka's CreateTopics is: the brokers create the logs
from the metadata they apply, afterwards and asynchronously (a produce or fetch that comes in
that moment waits for its replica: ``ReplicaManager.await_opening``). A node that forwarded
the request to the controller waits only until its own metadata holds the change (one Raft
round), so its client's next describe on that node sees what it wrote; it does not wait for
any replica to open.

The quorum applies entries on its own thread and tells the event loop after each one; the
node's listener passes the index on to :meth:`MetadataApplied.applied` (one hop to the loop
per entry, where a listener of its own would add a second: a wake-up of the loop costs a
system call), and this module wakes each waiter, kept in a heap by index, once its entry is
applied.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from kraft.quorum import MetadataQuorum


class MetadataApplied:
    """Wakes the coroutines waiting for metadata entries as this node applies them."""

    def __init__(self, quorum: MetadataQuorum) -> None:
        """Reads the applied index of ``quorum``; the owner calls :meth:`applied` on the event
        loop after each entry the quorum applies."""
        self._quorum = quorum
        # (index, tie-break, future): the tie-break keeps futures out of the comparison.
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def applied_index(self) -> int:
        return self._quorum.snapshot_state().applied_index

    async def wait(self, index: int, timeout_s: float) -> bool:
        """Returns True once this node has applied entry ``index``, False after ``timeout_s``
        without it (the caller answers anyway; the change is committed)."""
        if self.applied_index() >= index:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (index, next(self._order), future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            return False
        finally:
            if not future.done():
                future.cancel()  # its heap entry goes at the next wake-up
        return True

    def applied(self, index: int) -> None:
        """On the event loop: this node has applied entry ``index`` (or a snapshot replaced
        its state up to ``index``); wakes the waiters it satisfies."""
        waiters = self._waiters
        while waiters and waiters[0][0] <= index:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)
