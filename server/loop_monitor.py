"""Event-loop lag: how late the loop wakes a task that asked to sleep.

Everything the node does on its event loop (heartbeats, Raft's HTTP side, replica fetches,
every request) waits while one callback runs; a handler that computes for 300 ms delays a
heartbeat by 300 ms, and a few of those get a broker fenced. The monitor sleeps for
``interval_s`` again and again and measures how much later than asked it woke: that delay is
the longest any callback held the loop in that interval, give or take.

A lag above ``warn_ms`` is logged as a WARNING, at most once per ``warn_every_s`` with the
count and the worst lag since the last line (a loop that stays slow does not flood the log).
``max_lag_ms`` is /metrics' ``kraft_event_loop_lag_max_seconds``, and each lag measured goes to
``observe`` (``server/metrics.py`` sets it: the ``kraft_event_loop_lag_seconds`` histogram).
The node's app holds the monitor under :data:`LOOP_MONITOR`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from server import limits

log = logging.getLogger(__name__)


@dataclass
class LagReport:
    """Lags above the threshold since the last warning: how many, and the worst."""

    count: int
    worst_ms: float


class LagTracker:
    """Pure bookkeeping of measured lags and when to warn; time is passed in."""

    def __init__(
        self,
        warn_ms: float = limits.LOOP_LAG_WARN_MS,
        warn_every_s: float = limits.LOOP_LAG_WARN_EVERY_S,
    ) -> None:
        self.warn_ms = warn_ms
        self.warn_every_s = warn_every_s
        self.last_lag_ms = 0.0
        self.max_lag_ms = 0.0
        self._pending_count = 0
        self._pending_worst_ms = 0.0
        self._last_warning_s: float | None = None

    def record(self, lag_ms: float, now_s: float) -> LagReport | None:
        """Records one measured lag; returns the report to log now, if any."""
        self.last_lag_ms = lag_ms
        self.max_lag_ms = max(self.max_lag_ms, lag_ms)
        if lag_ms > self.warn_ms:
            self._pending_count += 1
            self._pending_worst_ms = max(self._pending_worst_ms, lag_ms)
        if self._pending_count == 0:
            return None
        if self._last_warning_s is not None and now_s - self._last_warning_s < self.warn_every_s:
            return None
        report = LagReport(self._pending_count, self._pending_worst_ms)
        self._pending_count = 0
        self._pending_worst_ms = 0.0
        self._last_warning_s = now_s
        return report


class LoopMonitor:
    """Measures the running loop's lag until cancelled (see the module doc)."""

    def __init__(self, interval_s: float = limits.LOOP_LAG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.tracker = LagTracker()
        # Called with each measured lag in seconds (one call per interval, not per request).
        self.observe: Callable[[float], None] | None = None

    @property
    def last_lag_ms(self) -> float:
        return self.tracker.last_lag_ms

    @property
    def max_lag_ms(self) -> float:
        return self.tracker.max_lag_ms

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            now = loop.time()
            lag_s = max(now - asked, 0.0)
            if self.observe is not None:
                self.observe(lag_s)
            report = self.tracker.record(lag_s * 1000, now)
            if report is not None:
                log.warning(
                    "the event loop was blocked for up to %.0f ms (%d time(s) over %.0f ms "
                    "since the last warning): a callback or request ran too long without "
                    "yielding",
                    report.worst_ms,
                    report.count,
                    self.tracker.warn_ms,
                )


LOOP_MONITOR = web.AppKey("loop_monitor", LoopMonitor)
