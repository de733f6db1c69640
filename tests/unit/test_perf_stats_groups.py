"""kraft-producer-perf-test counts a run of records acknowledged together once, with a count
(client/tools/perf_stats.py ``PerfStats.record_group``): the same samples, sums, maximum and
percentiles as counting each of its records."""

from __future__ import annotations

import random

import pytest

from client.tools.perf_stats import PerfStats


@pytest.mark.parametrize(("num_records", "seed"), [(1_000, 1), (1_200_000, 2), (1_700_000, 3)])
def test_groups_counted_with_a_count_give_the_same_figures_as_record_by_record(
    num_records: int, seed: int
) -> None:
    rng = random.Random(seed)
    by_record = PerfStats(num_records, start_s=0.0, reporting_interval_s=1e9)
    by_group = PerfStats(num_records, start_s=0.0, reporting_interval_s=1e9)
    assert by_group.sampling == by_record.sampling
    for _ in range(400):
        count = rng.choice([0, 1, 2, 3, 7, 199, 200])
        latency_ms = rng.uniform(0.5, 900.0)
        for _record in range(count):
            by_record.record(latency_ms, 100, 0.0)
        by_group.record_group(latency_ms, count, 100 * count, 0.0)
    assert by_group.latencies_ms == by_record.latencies_ms
    assert (by_group.count, by_group.bytes) == (by_record.count, by_record.bytes)
    assert by_group.max_latency_ms == by_record.max_latency_ms
    assert by_group.total_latency_ms == pytest.approx(by_record.total_latency_ms)
    assert by_group.total(10.0) == by_record.total(10.0)


def test_a_group_past_the_window_ends_it_with_its_records_counted() -> None:
    stats = PerfStats(num_records=1_000, start_s=100.0, reporting_interval_s=5.0)
    assert stats.record_group(10.0, 200, 20_000, 101.0) is None
    line = stats.record_group(30.0, 200, 20_000, 105.0)
    assert line == (
        "400 records sent, 80.0 records/sec (0.01 MB/sec), 20.0 ms avg latency, "
        "30.0 ms max latency."
    )
    assert stats.record_group(5.0, 0, 0, 106.0) is None  # nothing acknowledged: nothing counted
    assert stats.count == 400 and stats.window_count == 0
