"""The pure parts of scripts/bench/vs-kafka: reading the tools' lines, the plan (systems, ways,
produce runs), the table, Kafka's fetch plan and node settings, and the commands of Kafka's
tools pointed at our nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.bench import kafka_dist, parse
from scripts.bench.kafka_side import server_properties
from scripts.bench.ours_kafka_side import OursKafkaToolsSide
from scripts.bench.plan import (
    BATCH_HEADER_BYTES,
    KAFKA,
    KAFKA_WAYS,
    KT_PAIR,
    KT_WAYS,
    OURS,
    OURS_KAFKA_TOOLS,
    OURS_OWN,
    SYSTEMS,
    Plan,
    ProduceRun,
    batch_bytes,
    full_plan,
    quick_plan,
    systems_named,
    tool_timeout_s,
    way_topic,
)
from scripts.bench.table import (
    RATIO_KT,
    RATIO_OURS,
    machine_line,
    ratio,
    render,
    rows,
    size_label,
    tools_legend,
)

# Lines as Kafka 4.4.0's tools printed them in a run of the harness.
KAFKA_PRODUCER_OUTPUT = """\
Option --producer-props has been deprecated and will be removed in a future version. Use --command-property instead.
9781 records sent, 1955.8 records/sec (0.19 MB/sec), 702.3 ms avg latency, 1201.0 ms max latency.
20000 records sent, 9095.043201 records/sec (0.87 MB/sec), 955.90 ms avg latency, 1440.00 ms max latency, 999 ms 50th, 1349 ms 95th, 1429 ms 99th, 1440 ms 99.9th.
"""  # noqa: E501
KAFKA_CONSUMER_OUTPUT = """\
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-12-06 02:57:46:583, 2026-12-06 02:57:53:090, 1.9073, 0.2931, 20000, 3073.6130, 5712, 795, 2.3992, 25157.2327
"""  # noqa: E501
DESCRIBE_OUTPUT = (
    "Topic: bench-failover\tTopicId: 8s7fm2nYQ7Kl1wT0b7dK3A\tPartitionCount: 2\t"
    "ReplicationFactor: 3\tConfigs: min.insync.replicas=2\n"
    "\tTopic: bench-failover\tPartition: 0\tLeader: 2\tReplicas: 2,3,1\tIsr: 2,3,1\t"
    "Elr: \tLastKnownElr: \n"
    "\tTopic: bench-failover\tPartition: 1\tLeader: none\tReplicas: 3,1,2\tIsr: 3\n"
)


# -- parse -----------------------------------------------------------------------------------


def test_producer_performance_reads_the_closing_line_not_a_window_line() -> None:
    result = parse.producer_performance(KAFKA_PRODUCER_OUTPUT)
    assert result == parse.ProduceResult(
        20000, 9095.043201, 0.87, 955.90, 1440.0, 999, 1349, 1429, 1440
    )


def test_producer_performance_without_a_closing_line_says_what_it_found() -> None:
    with pytest.raises(parse.ParseError, match="(?s)ProducerPerformance total line.*Connection"):
        parse.producer_performance("starting\nConnection to node -1 could not be established")


def test_consumer_performance_reads_the_line_under_the_header() -> None:
    result = parse.consumer_performance(KAFKA_CONSUMER_OUTPUT)
    assert result == parse.ConsumeResult(
        1.9073, 0.2931, 20000, 3073.613, 5712, 795, 2.3992, 25157.2327
    )


def test_consumer_performance_refuses_the_header_alone() -> None:
    header = KAFKA_CONSUMER_OUTPUT.splitlines()[0]
    with pytest.raises(parse.ParseError, match="ConsumerPerformance result line"):
        parse.consumer_performance(header + "\n")


def test_latency_line_is_read_back_by_e2e_latency() -> None:
    # 100 warm-up records of 1 s are left out; then 1..1000 ms.
    latencies = [1_000_000_000] * parse.E2E_WARMUP_RECORDS + [
        ms * 1_000_000 for ms in range(1000, 0, -1)
    ]
    line = parse.latency_line(latencies, 1200, 1000.0)
    result = parse.e2e_latency("some log line\n" + line + "\n")
    assert result == parse.LatencyResult(1100, 1200, 1000.0, 501.0, 991.0, 1000.0, 1000.0)


def test_latency_line_of_no_record_reads_as_zero_count() -> None:
    assert parse.e2e_latency(parse.latency_line([], 10, 5.0)).count == 0


def test_e2e_latency_without_its_line_fails() -> None:
    with pytest.raises(parse.ParseError, match="e2e count"):
        parse.e2e_latency("e2e count=abc")


def test_first_ack_ms_takes_the_probe_line() -> None:
    assert parse.first_ack_ms("[warn] retrying\nfirst-ack ms=8512\n") == 8512
    with pytest.raises(parse.ParseError):
        parse.first_ack_ms("")


def test_acks_leave_out_an_unfinished_last_line() -> None:
    assert parse.acks("ack 100 102\nack 105 107\nack 108 1") == [(100, 102), (105, 107)]
    assert parse.acks("ack 100 102\nack 105") == [(100, 102)]


def test_failover_ends_with_the_first_record_sent_after_the_leader_died() -> None:
    # The record sent at 108 was answered by the old leader as it died (acknowledged at
    # 111, after the kill at 110): it does not end the failover; the one sent at 112 does.
    acked = [(100, 102), (105, 107), (108, 111), (112, 9500), (9501, 9503)]
    assert parse.first_ack_sent_after(acked, 110) == 9500
    assert parse.first_ack_sent_after(acked, 105) == 107
    assert parse.first_ack_sent_after(acked, 9502) is None


def test_partition_leader_from_describe_output() -> None:
    assert parse.partition_leader(DESCRIBE_OUTPUT, 0) == 2
    assert parse.partition_leader(DESCRIBE_OUTPUT, 1) is None  # "Leader: none"
    assert parse.partition_leader(DESCRIBE_OUTPUT, 7) is None
    assert parse.partition_leader("\tTopic: t\tPartition: 0\tLeader: -1\tReplicas: 1", 0) is None


def test_vm_rss_kib_from_proc_status() -> None:
    status = "Name:\tjava\nVmPeak:\t 4000000 kB\nVmRSS:\t  391234 kB\nRssAnon:\t 1 kB\n"
    assert parse.vm_rss_kib(status) == 391234
    with pytest.raises(parse.ParseError):
        parse.vm_rss_kib("Name:\tzombie\n")


METRICS = """\
# HELP kraft_kafka_request_duration_seconds Time from a Kafka request's frame read to its answer.
# TYPE kraft_kafka_request_duration_seconds histogram
kraft_kafka_request_duration_seconds_bucket{api="produce",le="0.005",long_poll="false"} 3.0
kraft_kafka_request_duration_seconds_sum{api="produce",long_poll="false"} 2.5
kraft_kafka_request_duration_seconds_sum{api="fetch",long_poll="true"} 1.25
kraft_http_request_duration_seconds_sum{endpoint="/v1/topics/{topic}",method="POST"} 4.0
kraft_http_request_duration_seconds_sum{endpoint="/v1/topics/{topic}",method="GET"} 1e-3
"""


def test_metric_total_sums_the_samples_whose_labels_match() -> None:
    name = "kraft_kafka_request_duration_seconds_sum"
    assert parse.metric_total(METRICS, name, api="produce") == 2.5
    assert parse.metric_total(METRICS, name) == 3.75
    assert parse.metric_total(METRICS, name, api="produce", long_poll="true") == 0.0
    http = "kraft_http_request_duration_seconds_sum"
    assert parse.metric_total(METRICS, http, endpoint="/v1/topics/{topic}") == pytest.approx(4.001)
    # A counter not touched yet is absent from the text: 0, and a prefix is another name.
    assert parse.metric_total(METRICS, "kraft_kafka_requests_total") == 0.0
    assert parse.metric_total(METRICS, "kraft_kafka_request_duration_seconds") == 0.0


# -- plan ------------------------------------------------------------------------------------


def test_batch_bytes_holds_the_records_at_their_largest_framing() -> None:
    # A 100-byte value: at most 21 bytes of framing each, 61 bytes of batch header.
    assert batch_bytes(1000, 100) == BATCH_HEADER_BYTES + 1000 * 121
    assert batch_bytes(1, 0) == BATCH_HEADER_BYTES + 21
    with pytest.raises(ValueError):
        batch_bytes(0, 100)


def test_plans_scale_the_kib_records_by_a_fifth() -> None:
    assert quick_plan().records == 200_000 and quick_plan().records_1k == 40_000
    assert full_plan(3_000_000).records_1k == 600_000
    assert full_plan().records_for(100) == 1_000_000
    assert full_plan().records_for(1024) == 200_000
    assert quick_plan().e2e_records() == 5000


def test_tuned_producer_props_are_the_batch_for_the_record_size() -> None:
    plan = Plan(batch_records=10)
    assert plan.tuned_producer_props(1024) == {"batch.size": str(61 + 10 * (1024 + 21))}


def test_a_perf_tool_gets_time_in_proportion_to_its_records() -> None:
    assert tool_timeout_s(0) == 300.0
    assert tool_timeout_s(1_000_000) == 300.0 + 2000.0


def test_only_names_systems_and_keeps_the_tables_order() -> None:
    assert systems_named("ours-kafka-tools,kafka") == (KAFKA, OURS_KAFKA_TOOLS)
    assert systems_named(" ours ") == (OURS_OWN,)
    for bad in ("", ",", "kafka,theirs"):
        with pytest.raises(ValueError, match="ours-kafka-tools"):
            systems_named(bad)


def test_every_way_belongs_to_one_system_and_pairs_with_a_kafka_way() -> None:
    ways = [w for s in SYSTEMS for w in s.ways]
    assert sorted(ways) == sorted({*KAFKA_WAYS, OURS, *KT_WAYS})
    assert set(KT_PAIR) == set(KAFKA_WAYS) and set(KT_PAIR.values()) == set(KT_WAYS)
    assert OURS_KAFKA_TOOLS.tools == KAFKA.tools == "kafka" and OURS_OWN.tools == "ours"


def test_produce_runs_give_each_way_its_topic_and_settings() -> None:
    plan = Plan(batch_records=10)
    tuned = plan.tuned_producer_props(100)
    assert plan.produce_runs(KAFKA, 100) == [
        ProduceRun("kafka-default", "p100-default", {}, {}),
        ProduceRun("kafka-flush", "p100-flush", {"flush.messages": "1"}, {}),
        ProduceRun("kafka-tuned", "p100-tuned", {}, tuned),
    ]
    assert plan.produce_runs(OURS_OWN, 100) == [ProduceRun(OURS, "p100-ours", {}, tuned)]
    # Kafka's producer on ours: as Kafka's defaults and as its tuned producer, never the
    # flush topic (our nodes fsync every append anyway).
    assert plan.produce_runs(OURS_KAFKA_TOOLS, 1024) == [
        ProduceRun("ours-kt-default", "p1024-kt-default", {}, {}),
        ProduceRun("ours-kt-tuned", "p1024-kt-tuned", {}, plan.tuned_producer_props(1024)),
    ]


def test_the_consumer_reads_the_main_ways_topic() -> None:
    assert way_topic(KAFKA.main, 100) == "p100-default"
    assert way_topic(OURS_OWN.main, 100) == "p100-ours"
    assert way_topic(OURS_KAFKA_TOOLS.main, 100) == "p100-kt-default"


@pytest.mark.parametrize(
    "bad",
    [
        {"records": 0},
        {"partitions": 0},
        {"batch_records": 0},
        {"e2e_rate": 0.0},
        {"e2e_seconds": -1.0},
    ],
)
def test_plan_refuses_sizes_that_measure_nothing(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Plan(**bad)  # type: ignore[arg-type]


# -- table -----------------------------------------------------------------------------------


def test_ratio_is_ours_over_kafka_or_na() -> None:
    assert ratio(134454.0, 77509.0) == "1.73"
    assert ratio(None, 1.0) == "n/a"
    assert ratio(1.0, None) == "n/a"
    assert ratio(1.0, 0.0) == "n/a"


def test_size_label() -> None:
    assert size_label(100) == "100 B"
    assert size_label(1024) == "1 KiB"
    assert size_label(1500) == "1500 B"


FIGURES = {
    "kafka-default": {"produce_rps/100": 77509.0, "cold_start_s": 8.5},
    "kafka-flush": {"produce_rps/100": 40000.0},
    "kafka-tuned": {"produce_rps/100": 200000.0},
    OURS: {"produce_rps/100": 134454.0, "cold_start_s": 2.1},
    "ours-kt-default": {"produce_rps/100": 50000.0, "cold_start_s": 4.25},
    "ours-kt-tuned": {"produce_rps/100": 100000.0},
}


def test_render_shows_each_kafka_way_ours_and_the_ratios_in_order() -> None:
    figures = {w: FIGURES[w] for w in (*KAFKA_WAYS, OURS)}
    table = render(figures, (100,), 1000.0, (KAFKA, OURS_OWN)).splitlines()
    assert table[0] == (
        "| figure | Kafka, defaults | Kafka, flush.messages=1 | Kafka, producer tuned | ours "
        "| ours/Kafka |"
    )
    assert table[2] == "| made by | Kafka's | Kafka's | Kafka's | ours |  |"
    produce = next(line for line in table if "100 B: produce, records/s" in line)
    assert produce == (
        "| 100 B: produce, records/s | 77,509 | 40,000 | 200,000 | 134,454 | 1.73 / 3.36 / 0.67 |"
    )
    cold = next(line for line in table if line.startswith("| cold start"))
    assert cold == "| cold start to first acked produce, s | 8.50 | - | - | 2.10 | 0.25 |"
    consume = next(line for line in table if "100 B: consume, records/s" in line)
    assert consume == "| 100 B: consume, records/s | n/a | - | - | n/a | n/a |"


def test_kafkas_tools_on_ours_compare_with_kafka_at_the_same_producer_settings() -> None:
    table = render(FIGURES, (100,), 1000.0).splitlines()
    assert table[0] == (
        "| figure | Kafka, defaults | Kafka, flush.messages=1 | Kafka, producer tuned | ours "
        "| ours, Kafka's tools, defaults | ours, Kafka's tools, producer tuned | ours/Kafka "
        "| Kafka's tools: ours/Kafka |"
    )
    assert table[2] == (
        "| made by | Kafka's | Kafka's | Kafka's | ours | Kafka's | Kafka's |  |  |"
    )
    # Kafka's producer with its defaults on ours against Kafka's defaults and Kafka with
    # flush.messages=1 (a topic setting); the tuned producer against the tuned one.
    produce = next(line for line in table if "100 B: produce, records/s" in line)
    assert produce == (
        "| 100 B: produce, records/s | 77,509 | 40,000 | 200,000 | 134,454 | 50,000 | 100,000 "
        "| 1.73 / 3.36 / 0.67 | 0.65 / 1.25 / 0.50 |"
    )
    cold = next(line for line in table if line.startswith("| cold start"))
    assert cold == (
        "| cold start to first acked produce, s | 8.50 | - | - | 2.10 | 4.25 | - | 0.25 | 0.50 |"
    )


def test_render_shows_only_the_systems_measured_and_ratios_with_both_sides() -> None:
    table = render(FIGURES, (100,), 1000.0, (KAFKA, OURS_KAFKA_TOOLS)).splitlines()
    header = table[0].split(" | ")
    assert RATIO_KT + " |" in header and RATIO_OURS not in header and "ours" not in header
    alone = render(FIGURES, (100,), 1000.0, (OURS_KAFKA_TOOLS,)).splitlines()
    assert alone[0] == (
        "| figure | ours, Kafka's tools, defaults | ours, Kafka's tools, producer tuned |"
    )
    cold = next(line for line in alone if line.startswith("| cold start"))
    assert cold == "| cold start to first acked produce, s | 4.25 | - |"


def test_tools_legend_names_the_tools_of_the_systems_measured() -> None:
    assert "ProducerPerformance" in tools_legend((KAFKA,))
    assert "kraft-producer-perf-test" not in tools_legend((KAFKA, OURS_KAFKA_TOOLS))
    both = tools_legend(SYSTEMS)
    assert "KAFKA listeners" in both and "kraft-producer-perf-test" in both


def test_rows_cover_every_figure_the_issue_asks_for_each_size() -> None:
    keys = {row.key for row in rows((100, 1024), 1000.0)}
    for size in (100, 1024):
        for figure in ("produce_rps", "produce_mbs", "consume_rps", "e2e_p50", "e2e_p99"):
            assert f"{figure}/{size}" in keys
    assert {"rss_idle_mib", "rss_load_mib", "cold_start_s", "failover_s"} <= keys
    produce = next(r for r in rows((100,), 1.0) if r.key == "produce_rps/100")
    assert produce.kafka_ways == KAFKA_WAYS


def test_machine_line_from_proc_files() -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nprocessor\t: 1\n"
    meminfo = "MemTotal:       24730624 kB\nMemFree: 1 kB\n"
    assert machine_line(cpuinfo, meminfo, 2) == (
        "machine: 2 cores, 23.6 GiB RAM, Intel(R) Xeon(R) Processor"
    )
    assert machine_line("", "", None) == "machine: ? cores, 0.0 GiB RAM, unknown CPU"


# -- Kafka's fetch plan and settings ---------------------------------------------------------


def test_pom_depends_on_kafkas_broker_tools_and_logging_binding() -> None:
    pom = kafka_dist.pom_text()
    for artifact in ("kafka_2.13", "kafka-tools", "log4j-slf4j-impl"):
        assert f"<artifactId>{artifact}</artifactId>" in pom
    assert pom.count("<version>4.4.0</version>") == 2


def test_maven_runs_offline_first_then_online() -> None:
    offline, online = kafka_dist.maven_commands(Path("/c/pom.xml"), Path("/c/libs"))
    assert "-o" in offline and "-o" not in online
    for command in (offline, online):
        assert command[0] == "mvn"
        assert "dependency:copy-dependencies" in command
        assert "-DoutputDirectory=/c/libs" in command
        assert "-DincludeScope=runtime" in command


def test_javac_compiles_the_probe_against_the_jars() -> None:
    command = kafka_dist.javac_command(Path("/c/libs"), Path("/c/classes"))
    assert command[:3] == ["javac", "-d", "/c/classes"]
    assert command[command.index("-cp") + 1] == "/c/libs/*"
    assert command[-1].endswith("KafkaProbe.java")


def test_kafka_nodes_are_combined_with_a_static_quorum_and_our_topic_defaults() -> None:
    props = server_properties(2, 9001, 9002, "1@a:1,2@a:2,3@a:3", Path("/d"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@a:1,2@a:2,3@a:3"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9001,CONTROLLER://127.0.0.1:9002"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"


# -- Kafka's tools pointed at our nodes --------------------------------------------------------

DIST = kafka_dist.KafkaDist(Path("/c"))


def test_kafkas_tools_on_ours_talk_to_our_nodes_kafka_listeners(tmp_path: Path) -> None:
    side = OursKafkaToolsSide(DIST, tmp_path)
    side.ours.kafka_ports = [19092, 19094, 19096]
    assert side.bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert (side.replication_factor, side.min_insync) == (3, 2)
    probe = side.probe("e2e", "t", "10", "1000", "100")
    assert probe[0] == "java" and "-Xmx512M" in probe
    assert probe[probe.index("-cp") + 1] == "/c/libs/*:/c/classes"
    assert probe[probe.index("KafkaProbe") :] == [
        "KafkaProbe", "e2e", side.bootstrap, "t", "10", "1000", "100"
    ]  # fmt: skip
