"""The clock the broker's drivers read, injected so tests and the simulation tier set the time.

Two readings, as Kafka's ``Time``: wall-clock milliseconds (record timestamps, retention, the
ISR lag rule, which compare with times written in batches or carried between nodes) and a
monotonic reading in seconds (deadlines and sessions, which must not jump with the wall clock).
Waiting itself stays with asyncio (``asyncio.sleep``, ``wait_for``), whose loop has its own
monotonic clock; code that a test must drive without a loop takes ``now_ms`` as an argument.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def wall_ms(self) -> int:
        """Milliseconds since the Unix epoch."""

    def monotonic_s(self) -> float:
        """Seconds from an arbitrary start; never goes back."""


class SystemClock:
    """The machine's clocks."""

    def wall_ms(self) -> int:
        return int(time.time() * 1000)

    def monotonic_s(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to (unit tests, the simulation tier)."""

    def __init__(self, wall_ms: int = 1_700_000_000_000, monotonic_s: float = 0.0) -> None:
        self._wall_ms = wall_ms
        self._monotonic_s = monotonic_s

    def wall_ms(self) -> int:
        return self._wall_ms

    def monotonic_s(self) -> float:
        return self._monotonic_s

    def advance_ms(self, ms: int) -> None:
        if ms < 0:
            raise ValueError(f"a clock never goes back (asked to move {ms} ms)")
        self._wall_ms += ms
        self._monotonic_s += ms / 1000


SYSTEM_CLOCK = SystemClock()
