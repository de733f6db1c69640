"""The node's password checks (PBKDF2, milliseconds by design) off the event loop, at most
PASSWORD_CHECKS_AT_ONCE_MAX at once over the whole process: the HTTP listener's basic
authentication (server/http_security.py) and the KAFKA listener's SASL/PLAIN
(server/kafka/sasl_apis.py) share one pool of that many threads.

A pool of its own, not a semaphore around asyncio.to_thread: a check whose client went away
is cancelled, which released a semaphore at once while its thread went on hashing in the
default executor (shared with other work), so a client that sent its password and closed,
again and again, ran any number of checks at once. A pool's thread runs one check to its
end; a check cancelled while still queued never runs.

:func:`verify` is the one check both listeners make: an unknown user is checked against a
decoy credential of the users file's most iterations, so a wrong name costs as much as a wrong
password and timing does not say which names exist.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from server import limits
from server.users import Credential

T = TypeVar("T")

# The decoy credentials by iteration count (derived once each, in the pool).
_decoys: dict[int, Credential] = {}

_pool = ThreadPoolExecutor(
    max_workers=limits.PASSWORD_CHECKS_AT_ONCE_MAX, thread_name_prefix="password-check"
)


async def run(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``fn(*args, **kwargs)`` in the password checks' pool, waiting its turn."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, functools.partial(fn, *args, **kwargs))


async def verify(credential: Credential | None, password: str, iterations_max: int) -> bool:
    """Whether ``password`` is ``credential``'s; for an unknown user (None), False after the
    same work against a decoy of ``iterations_max`` iterations."""
    if credential is not None:
        return await run(credential.verify, password)
    decoy = _decoys.get(iterations_max)
    if decoy is None:
        decoy = await run(Credential.derive, "decoy", iterations=iterations_max)
        _decoys[iterations_max] = decoy
    await run(decoy.verify, password)
    return False
