"""kraft-producer-perf-test and kraft-consumer-perf-test against real nodes: a short run on one
node and on three, checking the lines' shape and that the records arrived (never the speed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.node_process import Cluster, NodeProcess, http, run_tool, wait_until

RECORDS = 300

TOTAL_RE = re.compile(
    r"^(\d+) records sent, \d+\.\d{6} records/sec \(\d+\.\d\d MB/sec\), \d+\.\d\d ms avg latency, "
    r"\d+\.\d\d ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99\.9th\.$"
)
SUMMARY_RE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}, "
    r"(\d+\.\d{4}), \d+\.\d{4}, (\d+), \d+\.\d{4}, 0, \d+, \d+\.\d{4}, \d+\.\d{4}$"
)
HEADER = (
    "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
    "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    handle = Cluster.create(tmp_path_factory.mktemp("perf3"))
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def create_topic(node: NodeProcess, name: str, partitions: int, replication_factor: int) -> None:
    def attempt() -> tuple[int, object] | None:
        status, body = http(
            "POST",
            f"{node.url}/v1/topics",
            {"name": name, "partitions": partitions, "replication_factor": replication_factor},
        )
        return None if status == 503 else (status, body)

    status, body = wait_until(f"topic {name} created", attempt)
    assert status == 201, body

    def leaders_known() -> bool:
        status, described = http("GET", f"{node.url}/v1/topics/{name}")
        return status == 200 and all(p["leader"] is not None for p in described["partitions"])

    wait_until(f"topic {name} has leaders", leaders_known)


def stored_counts(node: NodeProcess, topic: str, partitions: int) -> list[int]:
    """Each partition's high watermark, asked of its leader (the 307 is followed by urllib)."""
    counts = []
    for p in range(partitions):
        status, body = http("GET", f"{node.url}/v1/topics/{topic}/partitions/{p}/offsets")
        assert status == 200, body
        counts.append(body["latest"] - body["earliest"])
    return counts


def produce(bootstrap: str, topic: str, *extra: str) -> list[str]:
    out = run_tool(
        "client.tools.producer_perf_test",
        "--topic",
        topic,
        "--num-records",
        str(RECORDS),
        "--record-size",
        "100",
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        *extra,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    return out.stdout.splitlines()


def consume(bootstrap: str, topic: str, messages: int, *extra: str) -> list[str]:
    out = run_tool(
        "client.tools.consumer_perf_test",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--messages",
        str(messages),
        *extra,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def assert_total_line(lines: list[str], count: int) -> None:
    match = TOTAL_RE.match(lines[-1])
    assert match, lines
    assert int(match.group(1)) == count


def test_one_node_producer_stores_every_record_and_prints_kafkas_total(node: NodeProcess) -> None:
    create_topic(node, "perf1", partitions=2, replication_factor=1)
    lines = produce(node.bootstrap, "perf1", "acks=1", "batch.size=50")
    assert_total_line(lines, RECORDS)
    assert sum(stored_counts(node, "perf1", 2)) == RECORDS


def test_one_node_consumer_reads_every_record_and_prints_kafkas_line(node: NodeProcess) -> None:
    create_topic(node, "perf1c", partitions=2, replication_factor=1)
    produce(node.bootstrap, "perf1c")
    lines = consume(node.bootstrap, "perf1c", RECORDS)
    assert lines[0] == HEADER
    match = SUMMARY_RE.match(lines[1])
    assert match, lines
    assert int(match.group(2)) == RECORDS
    assert float(match.group(1)) == pytest.approx(RECORDS * 100 / (1024 * 1024), abs=1e-4)


def test_consumer_warns_and_reports_what_it_read_when_messages_run_out(node: NodeProcess) -> None:
    create_topic(node, "perf1t", partitions=1, replication_factor=1)
    produce(node.bootstrap, "perf1t")
    lines = consume(node.bootstrap, "perf1t", RECORDS + 100, "--timeout", "1000")
    assert lines[1].startswith("WARNING: Exiting before consuming the expected number of messages")
    match = SUMMARY_RE.match(lines[2])
    assert match, lines
    assert int(match.group(2)) == RECORDS


def test_producer_reports_a_topic_it_cannot_have_and_exits_1(node: NodeProcess) -> None:
    # A missing topic is created on first use (auto.create.topics.enable), as in Kafka; one
    # whose name is illegal cannot be.
    out = run_tool(
        "client.tools.producer_perf_test",
        "--topic",
        "no-such-topic!",
        "--num-records",
        "10",
        "--record-size",
        "10",
        "--throughput",
        "-1",
        "--bootstrap-server",
        node.bootstrap,
    )
    assert out.returncode == 1
    assert "no-such-topic!" in out.stderr and "Traceback" not in out.stderr


def test_three_nodes_acks_all_stores_every_record_on_each_leader(cluster: Cluster) -> None:
    first = cluster.nodes[0]
    create_topic(first, "perf3", partitions=3, replication_factor=3)
    lines = produce(first.bootstrap, "perf3", "acks=all", "batch.size=40", "linger.ms=1")
    assert_total_line(lines, RECORDS)
    assert sum(stored_counts(first, "perf3", 3)) == RECORDS
    consumed = consume(cluster.nodes[1].bootstrap, "perf3", RECORDS)
    match = SUMMARY_RE.match(consumed[1])
    assert match, consumed
    assert int(match.group(2)) == RECORDS


def test_three_nodes_throttled_run_prints_kafkas_total(cluster: Cluster, tmp_path: Path) -> None:
    first = cluster.nodes[0]
    create_topic(first, "perf3t", partitions=3, replication_factor=3)
    payloads = tmp_path / "payloads.txt"
    payloads.write_text("alpha\nbeta\ngamma\n")
    out = run_tool(
        "client.tools.producer_perf_test",
        "--topic",
        "perf3t",
        "--num-records",
        str(RECORDS),
        "--payload-file",
        str(payloads),
        "--throughput",
        "1000",
        "--bootstrap-server",
        cluster.nodes[2].bootstrap,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"Reading payloads from: {payloads}"
    assert lines[1] == "Number of messages read: 3"
    assert_total_line(lines, RECORDS)
    assert sum(stored_counts(first, "perf3t", 3)) == RECORDS
