"""kraft-producer-perf-test and kraft-consumer-perf-test, the pure parts: flags the Kafka way,
Kafka's report lines from given counts and latencies, the throttle."""

from __future__ import annotations

import re
import time

import pytest

from client.client import error_from_answer
from client.metadata import base_url
from client.tools import common, perf_stats
from client.tools import consumer_perf_test as cperf
from client.tools import producer_perf_test as pperf

BASE = [
    "--topic",
    "perf",
    "--num-records",
    "1000",
    "--record-size",
    "100",
    "--throughput",
    "-1",
    "--producer-props",
    "bootstrap.servers=127.0.0.1:9092",
]

# Kafka's lines, as ProducerPerformance prints them.
WINDOW_RE = re.compile(
    r"^\d+ records sent, \d+\.\d records/sec \(\d+\.\d\d MB/sec\), \d+\.\d ms avg latency, "
    r"\d+\.\d ms max latency\.$"
)
TOTAL_RE = re.compile(
    r"^\d+ records sent, \d+\.\d{6} records/sec \(\d+\.\d\d MB/sec\), \d+\.\d\d ms avg latency, "
    r"\d+\.\d\d ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99\.9th\.$"
)


# -- producer flags ----------------------------------------------------------------------------


def test_producer_flags_give_kafka_defaults_and_props() -> None:
    cmd = pperf.parse_command(BASE + ["acks=1", "linger.ms=7", "batch.size=50"])
    assert (cmd.topic, cmd.num_records, cmd.record_size, cmd.throughput) == ("perf", 1000, 100, -1)
    assert (cmd.bootstrap, cmd.acks, cmd.config.linger_ms, cmd.config.batch_size) == (
        "127.0.0.1:9092",
        "1",
        7,
        50,
    )
    assert pperf.parse_command(BASE).acks == "all"
    assert pperf.parse_command(BASE + ["acks=-1"]).acks == "all"


def test_producer_bootstrap_server_flag_wins_over_the_property() -> None:
    cmd = pperf.parse_command(BASE + ["--bootstrap-server", "localhost:9094"])
    assert cmd.bootstrap == "localhost:9094"


@pytest.mark.parametrize("flag", ["--print-metrics", "--transactional-id"])
def test_producer_refuses_kafka_flags_it_does_not_honour_by_name(flag: str) -> None:
    with pytest.raises(common.UsageError, match=re.escape(flag)):
        pperf.parse_command(BASE + [flag])


def test_producer_refuses_a_compression_type_kafka_has_not_with_kafkas_message() -> None:
    with pytest.raises(
        common.UsageError,
        match="Invalid value LZ4 for configuration compression.type: String must be one of: "
        "none, gzip, snappy, lz4, zstd",
    ):
        pperf.parse_command(BASE + ["compression.type=LZ4"])
    assert pperf.parse_command(BASE + ["compression.type=lz4"]).config.compression_type == "lz4"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["acks=2"], "Invalid value 2 for configuration acks"),
        (["novalue"], "Invalid property: novalue"),
        (["batch.size=-1"], "batch.size: Value must be at least 0"),
        (["lingr.ms=5"], "Unknown producer config: lingr.ms"),
        (["linger.ms=soon"], "linger.ms"),
        (["max.in.flight.requests.per.connection=0"], "at least 1"),
    ],
)
def test_producer_rejects_bad_property_values(extra: list[str], message: str) -> None:
    with pytest.raises(common.UsageError, match=re.escape(message)):
        pperf.parse_command(BASE + extra)


def test_producer_needs_topic_count_throughput_payload_and_bootstrap() -> None:
    def without(flag: str, has_value: bool = True) -> list[str]:
        i = BASE.index(flag)
        return BASE[:i] + BASE[i + (2 if has_value else 1) :]

    for flag in ("--topic", "--num-records", "--throughput"):
        with pytest.raises(common.UsageError, match=f"argument {flag} is required"):
            pperf.parse_command(without(flag))
    with pytest.raises(common.UsageError, match="one of the arguments --record-size"):
        pperf.parse_command(without("--record-size"))
    with pytest.raises(common.UsageError, match="bootstrap.servers"):
        pperf.parse_command(BASE[:-2])
    with pytest.raises(common.UsageError, match="not allowed with argument --record-size"):
        pperf.parse_command(BASE + ["--payload-file", "/dev/null"])
    with pytest.raises(common.UsageError, match="use -1 for no limit"):
        pperf.parse_command(BASE[:7] + ["0"] + BASE[8:])


def test_producer_unknown_flag_exits_2() -> None:
    assert pperf.main(BASE + ["--no-such-flag"]) == common.EXIT_USAGE_UNKNOWN_FLAG


def test_payload_delimiter_default_is_a_new_line() -> None:
    args = BASE[:4] + ["--payload-file", "p.txt"] + BASE[6:]
    assert pperf.parse_command(args).payload_delimiter == "\n"
    assert pperf.split_payloads("a\nbb\n\nccc\n", "\n") == ["a", "bb", "ccc"]


def test_random_payload_is_record_size_printable_bytes() -> None:
    import random

    payload = pperf.random_payload(100, random.Random(1))
    assert len(payload.encode()) == 100 and payload.isalpha() and payload.isupper()


# -- producer lines ----------------------------------------------------------------------------


def test_window_line_is_kafkas_format_with_its_figures() -> None:
    line = perf_stats.window_line(50_000, 5.0, 50_000 * 100, 50_000 * 12.5, 80.0)
    assert line == (
        "50000 records sent, 10000.0 records/sec (0.95 MB/sec), 12.5 ms avg latency, "
        "80.0 ms max latency."
    )
    assert WINDOW_RE.match(line)


def test_total_line_is_kafkas_format_with_percentiles_from_given_latencies() -> None:
    latencies = [float(ms) for ms in range(1, 1001)]  # 1..1000 ms
    line = perf_stats.total_line(1000, 2.0, 1000 * 100, sum(latencies), 1000.0, latencies)
    assert line == (
        "1000 records sent, 500.000000 records/sec (0.05 MB/sec), 500.50 ms avg latency, "
        "1000.00 ms max latency, 501 ms 50th, 951 ms 95th, 991 ms 99th, 1000 ms 99.9th."
    )
    assert TOTAL_RE.match(line)


def test_percentiles_take_kafkas_index_and_whole_milliseconds() -> None:
    assert perf_stats.percentiles([3.9, 1.2, 2.5, 4.0], 0.5, 0.99) == [3, 4]
    assert perf_stats.percentiles([], 0.5) == [0]


def test_stats_print_a_window_line_once_the_interval_is_over() -> None:
    stats = perf_stats.PerfStats(num_records=10, start_s=100.0, reporting_interval_s=5.0)
    assert stats.record(10.0, 100, 101.0) is None
    line = stats.record(30.0, 100, 105.0)
    assert line == (
        "2 records sent, 0.4 records/sec (0.00 MB/sec), 20.0 ms avg latency, 30.0 ms max latency."
    )
    assert stats.record(5.0, 100, 106.0) is None  # a new window began
    assert stats.total(110.0).startswith("3 records sent, 0.300000 records/sec")
    assert ", 15.00 ms avg latency, 30.00 ms max latency, 10 ms 50th," in stats.total(110.0)


def test_stats_sample_latencies_like_kafka_when_records_are_many() -> None:
    stats = perf_stats.PerfStats(num_records=1_000_000, start_s=0.0)
    assert stats.sampling == 2
    for i in range(10):
        stats.record(float(i), 1, 0.0)
    assert stats.latencies_ms == [0.0, 2.0, 4.0, 6.0, 8.0] and stats.count == 10


def test_throttle_pauses_only_when_ahead_of_the_target_rate() -> None:
    assert perf_stats.throttle_sleep_s(100, 0.0, 10_000) == pytest.approx(0.01)
    assert perf_stats.throttle_sleep_s(100, 0.02, 10_000) == 0.0  # behind schedule
    assert perf_stats.throttle_sleep_s(10, 0.0, 10_000) == 0.0  # 1 ms: under the 2 ms minimum
    assert perf_stats.throttle_sleep_s(10**6, 0.0, -1) == 0.0  # no limit


# -- consumer flags and lines ------------------------------------------------------------------

CBASE = ["--bootstrap-server", "127.0.0.1:9092", "--topic", "perf", "--messages", "500"]


def test_consumer_flags_give_kafka_defaults() -> None:
    cmd = cperf.parse_command(CBASE)
    assert (cmd.topic, cmd.messages, cmd.timeout_ms, cmd.fetch_bytes) == (
        "perf",
        500,
        10_000,
        1024 * 1024,
    )
    assert not cmd.from_latest and not cmd.show_detailed_stats
    cmd = cperf.parse_command(CBASE + ["--timeout", "2000", "--from-latest", "--hide-header"])
    assert (cmd.timeout_ms, cmd.from_latest, cmd.hide_header) == (2000, True, True)
    assert cperf.parse_command(["--broker-list", "h:1", "--topic", "t", "--num-records", "3"])


@pytest.mark.parametrize("flag", ["--include", "--threads", "--print-metrics"])
def test_consumer_refuses_kafka_flags_it_does_not_honour_by_name(flag: str) -> None:
    with pytest.raises(common.UsageError, match=re.escape(flag)):
        cperf.parse_command(CBASE + [flag, "g1"])


def test_consumer_names_missing_required_options() -> None:
    with pytest.raises(common.UsageError, match=r"Missing required option\(s\) \[messages\]"):
        cperf.parse_command(CBASE[:4])
    with pytest.raises(common.UsageError, match="bootstrap-server"):
        cperf.parse_command(CBASE[2:])
    with pytest.raises(common.UsageError, match="expects a number"):
        cperf.parse_command(CBASE[:5] + ["many"])


def test_consumer_summary_line_is_kafkas_format() -> None:
    start_ms = int(time.mktime((2024, 2, 21, 19, 36, 23, 0, 0, -1)) * 1000) + 839
    line = cperf.summary_line(start_ms, start_ms + 2000, 2 * 1024 * 1024, 20_000, 0)
    assert line == (
        "2024-02-21 19:36:23:839, 2024-02-21 19:36:25:839, 2.0000, 1.0000, 20000, "
        "10000.0000, 0, 2000, 1.0000, 10000.0000"
    )
    assert cperf.HEADER.split(", ") == [
        "start.time",
        "end.time",
        "data.consumed.in.MB",
        "MB.sec",
        "data.consumed.in.nMsg",
        "nMsg.sec",
        "rebalance.time.ms",
        "fetch.time.ms",
        "fetch.MB.sec",
        "fetch.nMsg.sec",
    ]


def test_consumer_detailed_line_counts_the_interval() -> None:
    end_ms = int(time.mktime((2024, 1, 2, 3, 4, 5, 0, 0, -1)) * 1000) + 7
    line = cperf.detailed_line(end_ms, 3 * 1024 * 1024, 1024 * 1024, 3000, 1000, 1000)
    assert line == (
        "2024-01-02 03:04:05:007, 0, 3.0000, 2.0000, 3000, 2000.0000, 0, 1000, 2.0000, 2000.0000"
    )


def test_consumer_timeout_warning_is_kafkas() -> None:
    assert cperf.timeout_warning(10000).startswith(
        "WARNING: Exiting before consuming the expected number of messages: timeout (10000 ms)"
    )


# -- the leader router's pure helpers ----------------------------------------------------------


def test_redirect_location_gives_the_leaders_base_url() -> None:
    assert base_url("http://127.0.0.1:9094/v1/topics/t/partitions/0/records?acks=all") == (
        "http://127.0.0.1:9094"
    )
    assert base_url("/v1/topics") is None


def test_error_answer_keeps_kafka_name_and_retry_after() -> None:
    body = b'{"error_code":50302,"error":"LEADER_NOT_AVAILABLE","message":"no leader"}'
    error = error_from_answer(503, {"Retry-After": "1"}, body)
    assert (error.name, error.extra["retry_after_s"]) == ("LEADER_NOT_AVAILABLE", 1.0)
    assert error_from_answer(502, {}, b"bad gateway").name == "UNKNOWN_SERVER_ERROR"
