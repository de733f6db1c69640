"""How the examples run: until their work ends or Ctrl+C (or SIGTERM) asks them to stop."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

from client.client import TransportError
from client.producer import ProducerTimeout
from client.protocol import ApiError


def run_until_stopped(
    prog: str, work: Callable[[asyncio.Event], Awaitable[int]]
) -> tuple[int, int]:
    """Runs ``work(stop)``, where ``stop`` is set by SIGINT or SIGTERM, and returns (exit code,
    the count it returned): 130 after Ctrl+C, as Kafka's tools exit, 0 otherwise. A cluster
    error is one line on stderr and exit code 1; Ctrl+C before the handlers were set is 130.
    The count is -1 when the work did not finish."""
    interrupted = False
    counted: list[int] = []

    async def run() -> None:
        stop = asyncio.Event()

        def on_signal(number: int) -> None:
            nonlocal interrupted
            interrupted = interrupted or number == signal.SIGINT
            stop.set()

        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, on_signal, number)
        counted.append(await work(stop))

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 130, -1
    except (ApiError, TransportError, ProducerTimeout) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1, -1
    return (130 if interrupted else 0), counted[0]
