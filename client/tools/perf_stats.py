"""Kafka's ProducerPerformance lines, the statistics behind them, and its throttle: pure,
every time is given as an argument (no clock is read here)."""

from __future__ import annotations

# Kafka prints a window line every 5 s.
REPORTING_INTERVAL_S = 5.0
# Kafka keeps at most this many latency samples for the percentiles (every n-th record).
LATENCY_SAMPLES_MAX = 500_000
# The throttler does not sleep for less than this (Kafka's ThroughputThrottler: 2 ms): shorter
# sleeps cost more in timer overhead than they smooth.
THROTTLE_SLEEP_MIN_S = 0.002

_MIB = 1024.0 * 1024.0


def window_line(
    count: int, elapsed_s: float, nbytes: int, total_latency_ms: float, max_latency_ms: float
) -> str:
    """Kafka's periodic line (ProducerPerformance.Stats.printWindow)."""
    elapsed_s = max(elapsed_s, 1e-9)
    avg = total_latency_ms / count if count else 0.0
    return (
        f"{count} records sent, {count / elapsed_s:.1f} records/sec "
        f"({nbytes / elapsed_s / _MIB:.2f} MB/sec), {avg:.1f} ms avg latency, "
        f"{max_latency_ms:.1f} ms max latency."
    )


def percentiles(latencies_ms: list[float], *ranks: float) -> list[int]:
    """Kafka's percentiles: the sorted sample at index ``int(rank * size)``, in whole ms."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return [0 for _ in ranks]
    return [int(ordered[min(int(rank * len(ordered)), len(ordered) - 1)]) for rank in ranks]


def total_line(
    count: int,
    elapsed_s: float,
    nbytes: int,
    total_latency_ms: float,
    max_latency_ms: float,
    latencies_ms: list[float],
) -> str:
    """Kafka's closing line (ProducerPerformance.Stats.printTotal)."""
    elapsed_s = max(elapsed_s, 1e-9)
    avg = total_latency_ms / count if count else 0.0
    p50, p95, p99, p999 = percentiles(latencies_ms, 0.5, 0.95, 0.99, 0.999)
    return (
        f"{count} records sent, {count / elapsed_s:f} records/sec "
        f"({nbytes / elapsed_s / _MIB:.2f} MB/sec), {avg:.2f} ms avg latency, "
        f"{max_latency_ms:.2f} ms max latency, {p50} ms 50th, {p95} ms 95th, "
        f"{p99} ms 99th, {p999} ms 99.9th."
    )


class PerfStats:
    """Acknowledged records' counts, bytes and latencies; times are given, never read here."""

    def __init__(
        self, num_records: int, start_s: float, reporting_interval_s: float = REPORTING_INTERVAL_S
    ) -> None:
        self.start_s = start_s
        self.reporting_interval_s = reporting_interval_s
        # Every n-th record is kept for the percentiles, as Kafka does.
        self.sampling = max(1, num_records // min(max(num_records, 1), LATENCY_SAMPLES_MAX))
        self.count = 0
        self.bytes = 0
        self.total_latency_ms = 0.0
        self.max_latency_ms = 0.0
        self.latencies_ms: list[float] = []
        self._new_window(start_s)

    def _new_window(self, now_s: float) -> None:
        self.window_start_s = now_s
        self.window_count = 0
        self.window_bytes = 0
        self.window_total_latency_ms = 0.0
        self.window_max_latency_ms = 0.0

    def record(self, latency_ms: float, nbytes: int, now_s: float) -> str | None:
        """Counts one acknowledged record; returns the window line when a window is over."""
        return self.record_group(latency_ms, 1, nbytes, now_s)

    def record_group(self, latency_ms: float, count: int, nbytes: int, now_s: float) -> str | None:
        """Counts ``count`` records acknowledged together (one latency, ``nbytes`` bytes in
        all), as that many :meth:`record` calls at ``now_s`` would: the same samples (every
        ``sampling``-th record's latency), sums and maximum; the window line, when the window
        is over, comes after the group. (Recording each record of a 1,000-record request
        was a fifth of the perf tool's CPU.)"""
        if count <= 0:
            return None
        first = self.count
        # Kafka samples the records whose number is a multiple of ``sampling``: those of
        # first .. first + count - 1.
        sampled = (first + count - 1) // self.sampling - (first - 1) // self.sampling
        if sampled:
            self.latencies_ms += [latency_ms] * sampled
        self.count = first + count
        self.bytes += nbytes
        total_ms = latency_ms * count
        self.total_latency_ms += total_ms
        if latency_ms > self.max_latency_ms:
            self.max_latency_ms = latency_ms
        self.window_count += count
        self.window_bytes += nbytes
        self.window_total_latency_ms += total_ms
        if latency_ms > self.window_max_latency_ms:
            self.window_max_latency_ms = latency_ms
        if now_s - self.window_start_s < self.reporting_interval_s:
            return None
        line = window_line(
            self.window_count,
            now_s - self.window_start_s,
            self.window_bytes,
            self.window_total_latency_ms,
            self.window_max_latency_ms,
        )
        self._new_window(now_s)
        return line

    def total(self, now_s: float) -> str:
        return total_line(
            self.count,
            now_s - self.start_s,
            self.bytes,
            self.total_latency_ms,
            self.max_latency_ms,
            self.latencies_ms,
        )


def throttle_sleep_s(sent: int, elapsed_s: float, throughput: float) -> float:
    """How long to pause after ``sent`` records in ``elapsed_s`` to stay at ``throughput``
    records/s (0 when behind schedule, unlimited, or the pause would be under 2 ms)."""
    if throughput <= 0:
        return 0.0
    ahead_s = sent / throughput - elapsed_s
    return ahead_s if ahead_s >= THROTTLE_SLEEP_MIN_S else 0.0
