"""What one clean measured, and how fast it may read and write (Kafka's CleanerStats and
Throttler, for storage.cleaner).

:class:`Throttle` takes an injectable clock and sleep, so its tests need no real time; the
cleaner calls it with the bytes of each batch it reads and of each it writes, as Kafka counts
them for ``log.cleaner.io.max.bytes.per.second``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


class Throttle:
    """Kafka's ``Throttler``: sleeps, when asked, long enough that the units observed (bytes)
    average at most ``rate_per_second``, checked every ``check_interval_s`` (Kafka: 300 ms).
    A rate of 0 or less, or infinite, never sleeps (Kafka's default: Double.MAX_VALUE)."""

    def __init__(
        self,
        rate_per_second: float,
        *,
        check_interval_s: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate_per_second = rate_per_second
        self._check_interval_s = check_interval_s
        self._clock = clock
        self._sleep = sleep
        self._period_start = clock()
        self._observed = 0.0
        self.slept_s = 0.0

    @property
    def unlimited(self) -> bool:
        rate = self.rate_per_second
        return rate <= 0 or rate == float("inf")

    def maybe_throttle(self, observed: float) -> None:
        """Counts ``observed`` units; once per interval, sleeps if the rate since the last
        check is above the desired one (for the time that brings it down to it)."""
        if self.unlimited:
            return
        self._observed += observed
        now = self._clock()
        elapsed = now - self._period_start
        if elapsed <= self._check_interval_s or self._observed <= 0:
            return
        if self._observed / elapsed > self.rate_per_second:
            # Kafka rounds the sleep to whole milliseconds.
            sleep_ms = round(self._observed / (self.rate_per_second / 1000.0) - elapsed * 1000.0)
            if sleep_ms > 0:
                self._sleep(sleep_ms / 1000.0)
                self.slept_s += sleep_ms / 1000.0
        self._period_start = self._clock()
        self._observed = 0.0


@dataclass
class CleanerStats:
    """Kafka's ``CleanerStats``: what one clean read, kept and wrote, and how long it took."""

    start_s: float = 0.0
    map_done_s: float = 0.0
    end_s: float = 0.0
    map_bytes_read: int = 0
    map_records_read: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_kept: int = 0
    batches_read: int = 0
    batches_written: int = 0
    keyless_dropped: int = 0
    buffer_utilization: float = 0.0

    @property
    def elapsed_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def map_elapsed_s(self) -> float:
        return self.map_done_s - self.start_s

    def describe(self, name: str, first_dirty: int, end_offset: int) -> str:
        """Kafka's log line for a finished clean (``LogCleaner.recordStats``), on one line."""
        mib = 1024 * 1024
        elapsed = max(self.elapsed_s, 1e-9)
        reduction = 100.0 * (1.0 - self.bytes_written / self.bytes_read) if self.bytes_read else 0
        return (
            f"cleaned log {name} (dirty section = [{first_dirty}, {end_offset}]): "
            f"{self.bytes_read / mib:,.1f} MB of log processed in {elapsed:,.1f} seconds "
            f"({self.bytes_read / mib / elapsed:,.1f} MB/sec); indexed "
            f"{self.map_bytes_read / mib:,.1f} MB in {self.map_elapsed_s:.1f} seconds; "
            f"buffer utilization {100 * self.buffer_utilization:.1f}%; "
            f"start size {self.bytes_read / mib:,.1f} MB ({self.records_read:,} messages), "
            f"end size {self.bytes_written / mib:,.1f} MB ({self.records_kept:,} messages), "
            f"{reduction:.1f}% size reduction"
            + (
                f"; {self.keyless_dropped} records without a key dropped"
                if self.keyless_dropped
                else ""
            )
        )
