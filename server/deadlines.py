"""A set of keys, each due at a time: the next-deadline timer of per-event work.

Work that must happen "if nothing else happens by then" (a follower that stops being caught
up leaves the ISR after ``replica.lag.time.max.ms``) is scheduled here when the event that
may lead to it happens, instead of scanning every partition on every tick: a key is kept
once, at its earliest time; popping the due keys costs what is due, not what exists.
"""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

K = TypeVar("K")


class Deadlines(Generic[K]):
    def __init__(self) -> None:
        self._due: dict[K, int] = {}
        # (time, sequence, key); entries whose time is no longer the key's are skipped.
        self._heap: list[tuple[int, int, K]] = []
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: K) -> bool:
        return key in self._due

    def schedule(self, key: K, at_ms: int) -> None:
        """``key`` is due at ``at_ms``, or earlier if it already was."""
        due = self._due.get(key)
        if due is not None and due <= at_ms:
            return
        self._due[key] = at_ms
        self._sequence += 1  # keys need not be comparable: the sequence breaks ties
        heapq.heappush(self._heap, (at_ms, self._sequence, key))

    def pop_due(self, now_ms: int) -> list[K]:
        """The keys due at or before ``now_ms``, earliest first; they are no longer held."""
        out: list[K] = []
        while self._heap and self._heap[0][0] <= now_ms:
            at_ms, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == at_ms:
                del self._due[key]
                out.append(key)
        return out

    def next_ms(self) -> int | None:
        """When the earliest key is due, or None if none is held."""
        while self._heap:
            at_ms, _, key = self._heap[0]
            if self._due.get(key) == at_ms:
                return at_ms
            heapq.heappop(self._heap)
        return None
