"""The synchronous face of the asyncio client: one event loop on a daemon thread.

The Producer, Consumer and Admin classes are asyncio at heart (``AsyncProducer`` ...); their
synchronous twins, for scripts, hand each call to a :class:`LoopThread` and wait for it. One
loop per client object keeps clients independent (closing one never stalls another), and the
loop thread is a daemon so a script that forgets ``close()`` still exits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop running on its own daemon thread until :meth:`stop`."""

    def __init__(self, name: str = "kraft-client") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Runs ``coro`` on the loop and returns its result (or raises its exception).

        Raises RuntimeError when called from the loop's own thread (it would deadlock) or
        after :meth:`stop`; a ``timeout_s`` that passes cancels the coroutine and raises
        TimeoutError."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a synchronous client call was made from its own event loop")
        if not self._thread.is_alive():
            coro.close()
            raise RuntimeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        """Stops the loop (after what is running on it yields) and joins the thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            if threading.current_thread() is not self._thread:
                self._thread.join()
