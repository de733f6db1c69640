"""How the examples run: until their work ends or Ctrl+C (or SIGTERM) asks them to stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable

from client.client import TransportError
from client.producer import ProducerTimeout
from client.protocol import ApiError

# After Ctrl+C the work gets this long to finish what it holds (commit, flush) at its next
# look at ``stop``; work waiting on the cluster (a connection, an acknowledgement) is
# cancelled then, or at once on a second Ctrl+C.
STOP_GRACE_S = 5.0


def run_until_stopped(
    prog: str, work: Callable[[asyncio.Event], Awaitable[int]]
) -> tuple[int, int]:
    """Runs ``work(stop)``, where ``stop`` is set by SIGINT or SIGTERM, and returns (exit code,
    the count it returned, -1 if it did not finish). The code is 130 after Ctrl+C, as Kafka's
    tools exit, else 0; a cluster error is one line on stderr and 1."""
    interrupted = False
    counted: list[int] = []

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(work(stop))

        def on_signal(number: int) -> None:
            nonlocal interrupted
            interrupted = interrupted or number == signal.SIGINT
            if stop.is_set():
                task.cancel()  # asked twice
                return
            stop.set()
            asyncio.get_running_loop().call_later(STOP_GRACE_S, task.cancel)

        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, on_signal, number)
        with contextlib.suppress(asyncio.CancelledError):
            counted.append(await task)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:  # before the handlers were installed
        return 130, -1
    except (ApiError, TransportError, ProducerTimeout) as e:
        if interrupted:
            return 130, -1
        print(f"{prog}: {e}", file=sys.stderr)
        return 1, -1
    code = 130 if interrupted else 0
    return code, (counted[0] if counted else -1)
