"""kraft-console-consumer --group and kraft-consumer-perf-test --group against real nodes, and
the console consumer riding out kill -9 of the only node it was given.

The kill -9 test has its own three-node cluster (``min.insync.replicas=2``); the others, which
stop tools but never a node and each use their own topic and group, share one for the module.
Every cluster and tool process is stopped by pid. Deadlines are generous; nothing asserts a
duration.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.node_process import ROOT, Cluster, run_tool
from tests.integration.conftest import running_cluster
from tests.integration.test_cluster import create_topic
from tests.integration.test_consumer import produce

DEADLINE_S = 90.0
CONSUMER = "client.tools.console_consumer"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The module's cluster, for the tests that never stop a node."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as handle:
        yield handle


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of one test, for a test that kills a node."""
    with running_cluster(tmp_path) as handle:
        yield handle


def test_console_consumer_keeps_every_line_through_kill_9_of_its_only_node(
    own_cluster: Cluster,
) -> None:
    cluster = own_cluster
    given = cluster.nodes[0]
    create_topic(given, "survive", partitions=3, replication_factor=3)
    for p in range(3):
        produce(cluster, "survive", p, [{"value": f"before-{p}-{i}"} for i in range(10)])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            CONSUMER,
            "--bootstrap-server",
            given.bootstrap,
            "--topic",
            "survive",
            "--group",
            "survivors",
            "--from-beginning",
            "--max-messages",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        printed: list[str] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(printed) < 30:
            assert time.monotonic() < deadline, printed
            try:
                printed.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        given.kill()
        for p in range(3):
            produce(cluster, "survive", p, [{"value": f"after-{p}-{i}"} for i in range(10)])
        assert process.wait(DEADLINE_S) == 0
        while not lines.empty():
            printed.append(lines.get())
        expected = {
            f"{when}-{p}-{i}" for when in ("before", "after") for p in range(3) for i in range(10)
        }
        assert sorted(printed) == sorted(expected)
        assert process.stderr is not None
        assert process.stderr.read().strip().endswith("Processed a total of 60 messages")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_console_consumer_group_flags_are_checked_as_kafka_checks_them(cluster: Cluster) -> None:
    bs = ["--bootstrap-server", cluster.nodes[0].bootstrap, "--topic", "t"]
    out = run_tool(CONSUMER, *bs, "--group", "a", "--consumer-property", "group.id=b")
    assert out.returncode == 1
    assert "Detected group ids: 'a', 'b'" in out.stderr
    out = run_tool(CONSUMER, *bs, "--group", "a", "--partition", "0")
    assert (out.returncode, out.stderr.strip()) == (
        1,
        "Options group and partition cannot be specified together.",
    )


def test_perf_test_in_a_group_reads_everything_and_reports_the_join_time(cluster: Cluster) -> None:
    node = cluster.nodes[1]
    create_topic(node, "gperf", partitions=2, replication_factor=3)
    for p in range(2):
        produce(cluster, "gperf", p, [{"value": "x" * 100} for _ in range(100)])
    out = run_tool(
        "client.tools.consumer_perf_test",
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        "gperf",
        "--messages",
        "200",
        "--group",
        "perfers",
        "--hide-header",
    )
    assert out.returncode == 0, out.stderr
    fields = out.stdout.strip().split(", ")
    assert fields[4] == "200"  # data.consumed.in.nMsg
    assert re.fullmatch(r"\d+", fields[6]) and int(fields[6]) > 0  # rebalance.time.ms
    assert float(fields[2]) == pytest.approx(200 * 100 / 1024 / 1024, abs=1e-4)
    # The group committed what it read: a second run in the group finds nothing new.
    again = run_tool(
        "client.tools.consumer_perf_test",
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        "gperf",
        "--messages",
        "1",
        "--group",
        "perfers",
        "--timeout",
        "3000",
        "--hide-header",
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("WARNING: Exiting before consuming the expected number")


def test_ctrl_c_commits_what_was_printed_and_prints_kafkas_closing_line(cluster: Cluster) -> None:
    node = cluster.nodes[2]
    create_topic(node, "interrupted", partitions=2, replication_factor=3)
    for p in range(2):
        produce(cluster, "interrupted", p, [{"value": f"{p}-{i}"} for i in range(5)])
    argv = [sys.executable, "-m", CONSUMER, "--bootstrap-server", node.bootstrap]
    argv += ["--topic", "interrupted", "--group", "ctrlc", "--from-beginning"]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline().rstrip("\n") for _ in range(10)]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert err == "Processed a total of 10 messages\n"  # no traceback
    assert out == "" and sorted(printed) == sorted(f"{p}-{i}" for p in range(2) for i in range(5))
    produce(cluster, "interrupted", 0, [{"value": "later"}])
    again = run_tool(
        CONSUMER,
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        "interrupted",
        "--group",
        "ctrlc",
        "--timeout-ms",
        "5000",
    )
    assert again.stdout == "later\n"  # resumed after the commit made at Ctrl+C
