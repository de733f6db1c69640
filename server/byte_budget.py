"""Request body bytes held at once over every request (Kafka's ``queued.max.request.bytes``).

Pure accounting, no I/O and no clock: a request takes bytes before it reads them into memory
and gives all of them back when its handler is done, on every path (answer, error, client gone,
cancellation). The waiting for room is the driver's (``server/http_util.py``).

Invariants, asserted: ``0 <= held_bytes <= capacity_bytes``; nothing is given back that was not
taken. A single request never needs more than ``socket.request.max.bytes``, and the config keeps
``queued.max.request.bytes`` at least that large, so an empty budget always has room for any
request: waiting can be refused (503), but never deadlock.
"""

from __future__ import annotations


class ByteBudget:
    """A capacity of bytes shared by requests; ``try_take`` either takes all or nothing."""

    def __init__(self, capacity_bytes: int) -> None:
        assert capacity_bytes > 0, capacity_bytes
        self.capacity_bytes = capacity_bytes
        self.held_bytes = 0
        self.peak_bytes = 0  # the most held at once since start (for a later /metrics)

    @property
    def free_bytes(self) -> int:
        return self.capacity_bytes - self.held_bytes

    def try_take(self, size_bytes: int) -> bool:
        """Takes ``size_bytes`` if they fit beside what is held; returns whether it did."""
        assert size_bytes >= 0, size_bytes
        if size_bytes > self.free_bytes:
            return False
        self.held_bytes += size_bytes
        self.peak_bytes = max(self.peak_bytes, self.held_bytes)
        return True

    def give_back(self, size_bytes: int) -> None:
        """Returns bytes taken earlier (all a request holds, once, when it is done)."""
        assert 0 <= size_bytes <= self.held_bytes, (size_bytes, self.held_bytes)
        self.held_bytes -= size_bytes
