"""The node's long-running tasks: each one's failure stops the node with its name and reason,
never a task that died silently while the node kept answering."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


def supervised(
    name: str, body: Coroutine[Any, Any, None], on_fatal: Callable[[str], None]
) -> asyncio.Task[None]:
    """Runs ``body`` as a task named ``name``; an exception in it calls ``on_fatal`` (a
    cancellation, the node stopping, does not)."""
    task = asyncio.create_task(body, name=name)

    def done(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            on_fatal(f"the {name} task failed: {t.exception()!r}")

    task.add_done_callback(done)
    return task
