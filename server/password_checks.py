"""The node's password checks (PBKDF2, milliseconds by design) off the event loop, at most
PASSWORD_CHECKS_AT_ONCE_MAX at once over the whole process: the HTTP listener's basic
authentication (server/http_security.py) and the KAFKA listener's SASL/PLAIN
(server/kafka/sasl_apis.py) share one pool of that many threads.

A pool of its own, not a semaphore around asyncio.to_thread: a check whose client went away
is cancelled, which released a semaphore at once while its thread went on hashing in the
default executor (shared with other work), so a client that sent its password and closed,
again and again, ran any number of checks at once. A pool's thread runs one check to its
end; a check cancelled while still queued never runs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from server import limits

T = TypeVar("T")

_pool = ThreadPoolExecutor(
    max_workers=limits.PASSWORD_CHECKS_AT_ONCE_MAX, thread_name_prefix="password-check"
)


async def run(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``fn(*args, **kwargs)`` in the password checks' pool, waiting its turn."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, functools.partial(fn, *args, **kwargs))
