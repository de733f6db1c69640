"""The Kafka lab of the README with the real kraft-* tools, as subprocesses, against a node."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client.protocol import partition_for_key
from scripts.node_process import NodeProcess, http, run_tool
from tests.processes import default_sigint

TOPICS = "client.tools.topics"
PRODUCER = "client.tools.console_producer"
CONSUMER = "client.tools.console_consumer"
ROOT = Path(__file__).resolve().parents[2]
# Waiting for something the cluster does in the background (a deleted topic's directory going
# away, a consumer's output); a deadline to fail on, not a speed being measured.
WAIT_DEADLINE_S = 30.0
LAB_LINES = ["Good morning", "Good day", "Enjoy the Kafka lab"]


def topics_tool(node: NodeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return run_tool(TOPICS, "--bootstrap-server", node.bootstrap, *args)


def create(node: NodeProcess, topic: str, *args: str) -> None:
    result = topics_tool(node, "--create", "--topic", topic, *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"Created topic {topic}.\n")


def listed(node: NodeProcess) -> list[str]:
    result = topics_tool(node, "--list")
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def high_watermarks(node: NodeProcess, topic: str) -> list[int]:
    status, body = http("GET", f"{node.url}/v1/topics/{topic}")
    assert status == 200, body
    return [p["high_watermark"] for p in body["partitions"]]


def start_consumer(node: NodeProcess, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", CONSUMER, "--bootstrap-server", node.bootstrap, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        preexec_fn=default_sigint,
    )


def read_lines(process: subprocess.Popen[bytes], count: int) -> list[bytes]:
    """The first ``count`` lines the process prints, waiting up to the deadline for them."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    data = b""
    deadline = time.monotonic() + WAIT_DEADLINE_S
    while data.count(b"\n") < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {data!r} after {WAIT_DEADLINE_S} s"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"consumer exited early: {data!r}"
            data += chunk
    return data.splitlines()[:count]


def interrupt(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Ctrl+C: SIGINT, then the exit code and stderr."""
    process.send_signal(signal.SIGINT)
    try:
        _out, err = process.communicate(timeout=WAIT_DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, err.decode(errors="replace")


def test_lab_news_create_list_describe_produce_consume(node: NodeProcess) -> None:
    create(node, "news")
    assert "news" in listed(node)

    described = topics_tool(node, "--describe", "--topic", "news")
    assert described.returncode == 0, described.stderr
    lines = described.stdout.splitlines()
    assert re.fullmatch(
        r"Topic: news\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 1\tReplicationFactor: 1"
        r"\tConfigs: .*",
        lines[0],
    ), lines[0]
    assert lines[1:] == [
        f"\tTopic: news\tPartition: 0\tLeader: {node.node_id}\tReplicas: {node.node_id}"
        f"\tIsr: {node.node_id}"
    ]

    produced = run_tool(
        PRODUCER,
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        "news",
        input="".join(line + "\n" for line in LAB_LINES),
    )
    assert produced.returncode == 0, produced.stderr
    assert produced.stdout == ">" * (len(LAB_LINES) + 1)
    assert produced.stderr == ""

    consumed = run_tool(
        CONSUMER,
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        "news",
        "--from-beginning",
        "--max-messages",
        "3",
    )
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.splitlines() == LAB_LINES
    assert "Processed a total of 3 messages" in consumed.stderr

    files = {p.name for p in (node.log_dir / "news-0").iterdir()}
    assert {
        "00000000000000000000.log",
        "00000000000000000000.index",
        "00000000000000000000.timeindex",
    } <= files


def test_broker_list_is_accepted_like_bootstrap_server(node: NodeProcess) -> None:
    create(node, "log_topic", "--partitions", "2")
    produced = run_tool(
        PRODUCER, "--broker-list", node.bootstrap, "--topic", "log_topic", input="log1\nlog2\n"
    )
    assert produced.returncode == 0, produced.stderr
    assert sum(high_watermarks(node, "log_topic")) == 2


def test_keyed_records_land_in_one_partition_the_murmur2_one(node: NodeProcess) -> None:
    create(node, "user_topic", "--partitions", "3")
    produced = run_tool(
        PRODUCER,
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        "user_topic",
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=,",
        input="user1,login website\nuser1,click the top item\nuser1,logout website\n",
    )
    assert produced.returncode == 0, produced.stderr
    consumed = run_tool(
        CONSUMER,
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        "user_topic",
        "--from-beginning",
        "--max-messages",
        "3",
        "--property",
        "print.partition=true",
        "--property",
        "print.key=true",
    )
    assert consumed.returncode == 0, consumed.stderr
    expected = partition_for_key(b"user1", 3)
    assert consumed.stdout.splitlines() == [
        f"Partition:{expected}\tuser1\tlogin website",
        f"Partition:{expected}\tuser1\tclick the top item",
        f"Partition:{expected}\tuser1\tlogout website",
    ]
    hw = high_watermarks(node, "user_topic")
    assert hw[expected] == 3 and sum(hw) == 3


def test_line_without_key_separator_stores_nothing_and_exits_1(node: NodeProcess) -> None:
    create(node, "keyed_strict", "--partitions", "1")
    produced = run_tool(
        PRODUCER,
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        "keyed_strict",
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=,",
        input="user2 no separator\n",
    )
    assert produced.returncode == 1
    assert produced.stderr == "No key separator found on line number 1: 'user2 no separator'\n"
    assert high_watermarks(node, "keyed_strict") == [0]


def test_replication_factor_above_the_live_brokers_is_a_clear_error(node: NodeProcess) -> None:
    result = topics_tool(
        node, "--create", "--topic", "too_many_replicas", "--replication-factor", "2"
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error while executing topic command : ")
    assert "replication" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    assert "too_many_replicas" not in listed(node)


def test_existing_topic_and_missing_topic_get_kafkas_messages(node: NodeProcess) -> None:
    create(node, "twice")
    again = topics_tool(node, "--create", "--topic", "twice")
    assert again.returncode == 1
    assert again.stderr == "Error while executing topic command : Topic 'twice' already exists.\n"
    assert topics_tool(node, "--create", "--topic", "twice", "--if-not-exists").returncode == 0
    missing = topics_tool(node, "--describe", "--topic", "nope")
    assert (missing.returncode, missing.stderr) == (1, "Topic 'nope' does not exist as expected\n")


def test_unknown_flag_is_refused(node: NodeProcess) -> None:
    result = topics_tool(node, "--list", "--bogus")
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr


def test_zookeeper_is_refused_by_name(node: NodeProcess) -> None:
    result = run_tool(TOPICS, "--zookeeper", "localhost:2181", "--list")
    assert result.returncode == 1
    assert result.stderr == (
        "--zookeeper is not supported: this cluster has no ZooKeeper; use --bootstrap-server\n"
    )


def test_ctrl_c_ends_a_waiting_consumer_cleanly_with_kafkas_closing_line(
    node: NodeProcess,
) -> None:
    create(node, "ctrl_c")
    produced = run_tool(
        PRODUCER, "--bootstrap-server", node.bootstrap, "--topic", "ctrl_c", input="a\nb\nc\n"
    )
    assert produced.returncode == 0, produced.stderr
    consumer = start_consumer(node, "--topic", "ctrl_c", "--from-beginning")
    assert read_lines(consumer, 3) == [b"a", b"b", b"c"]
    code, err = interrupt(consumer)  # it is now long-polling for a fourth record
    assert code == 130
    assert "Traceback" not in err
    assert err.endswith("Processed a total of 3 messages\n")


def test_consumer_without_from_beginning_shows_only_new_events(node: NodeProcess) -> None:
    create(node, "live")
    assert (
        run_tool(
            PRODUCER, "--bootstrap-server", node.bootstrap, "--topic", "live", input="old\n"
        ).returncode
        == 0
    )
    consumer = start_consumer(node, "--topic", "live", "--max-messages", "1")
    try:
        # The consumer starts at the end at a moment we cannot see, so keep producing new
        # events until one shows up; "old" must never be printed.
        deadline = time.monotonic() + WAIT_DEADLINE_S
        sent = 0
        while consumer.poll() is None and time.monotonic() < deadline:
            status, body = http(
                "POST",
                f"{node.url}/v1/topics/live/records",
                {"records": [{"value": f"new-{sent}"}]},
            )
            assert 200 <= status < 300, body
            sent += 1
            try:
                consumer.wait(timeout=0.3)
            except subprocess.TimeoutExpired:
                pass
        out, err = consumer.communicate(timeout=WAIT_DEADLINE_S)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    assert consumer.returncode == 0, err
    line = out.decode().splitlines()[0]
    assert line.startswith("new-")
    assert b"Processed a total of 1 messages" in err


def test_delete_removes_the_topic_from_the_list_and_its_directory(node: NodeProcess) -> None:
    create(node, "doomed", "--partitions", "2")
    assert (node.log_dir / "doomed-0").is_dir()
    deleted = topics_tool(node, "--delete", "--topic", "doomed")
    assert (deleted.returncode, deleted.stdout, deleted.stderr) == (0, "", "")
    assert "doomed" not in listed(node)
    deadline = time.monotonic() + WAIT_DEADLINE_S
    while (node.log_dir / "doomed-0").exists() or (node.log_dir / "doomed-1").exists():
        if time.monotonic() > deadline:
            pytest.fail(f"doomed-* still in {node.log_dir}: {os.listdir(node.log_dir)}")
        time.sleep(0.1)


def test_describe_all_and_list_show_the_same_topics(node: NodeProcess) -> None:
    create(node, "listed_a", "--partitions", "2")
    names = listed(node)
    assert names == sorted(names)
    described = topics_tool(node, "--describe")
    assert described.returncode == 0, described.stderr
    topic_lines = [ln for ln in described.stdout.splitlines() if ln.startswith("Topic: ")]
    assert [ln.split("\t")[0].removeprefix("Topic: ") for ln in topic_lines] == names
