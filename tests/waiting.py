"""Waiting on the running event loop for a condition, with a deadline (unit and integration
tests of in-process parts: a quorum, a log manager)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], bool], what: str = "", timeout_s: float = 30) -> None:
    """Polls ``predicate`` every 20 ms; fails with "gave up waiting <what>" after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, f"gave up waiting {what}"
        await asyncio.sleep(0.02)
