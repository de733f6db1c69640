"""A node that stops, crashes or finds damage on disk keeps every committed record it can prove."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

from scripts.node_process import NodeProcess, http

MakeNode = Callable[..., NodeProcess]


def produce(node: NodeProcess, topic: str, values: list[str], partition: int = 0) -> None:
    status, body = http(
        "POST",
        f"{node.url}/v1/topics/{topic}/partitions/{partition}/records",
        {"records": [{"value": v} for v in values]},
    )
    assert status == 200, body


def values(node: NodeProcess, topic: str, partition: int = 0) -> list[str]:
    status, body = http(
        "GET", f"{node.url}/v1/topics/{topic}/partitions/{partition}/records?offset=0"
    )
    assert status == 200, body
    return [r["value"] for r in body["records"]]


def test_topics_and_acknowledged_records_survive_kill_9_and_restart(make_node: MakeNode) -> None:
    node = make_node()
    node.format()
    node.start()
    http("POST", f"{node.url}/v1/topics", {"name": "news", "partitions": 2})
    produce(node, "news", ["Good morning", "Good day"])
    produce(node, "news", ["Enjoy the Kafka lab"], partition=1)
    node.stop(signal.SIGKILL)
    node.start()
    assert values(node, "news") == ["Good morning", "Good day"]
    assert values(node, "news", 1) == ["Enjoy the Kafka lab"]
    produce(node, "news", ["after restart"])
    assert values(node, "news") == ["Good morning", "Good day", "after restart"]


def test_torn_tail_is_cut_at_restart_and_the_log_goes_on(make_node: MakeNode) -> None:
    node = make_node()
    node.format()
    node.start()
    http("POST", f"{node.url}/v1/topics", {"name": "torn"})
    produce(node, "torn", ["one", "two"])
    node.stop(signal.SIGKILL)
    segment = node.log_dir / "torn-0" / "00000000000000000000.log"
    with open(segment, "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x01")  # half a batch header
    # Recovery runs from the recovery point; a torn write past it is cut off and logged.
    checkpoint = node.log_dir / "recovery-point-offset-checkpoint"
    checkpoint.write_text("0\n0\n")
    node.start()
    assert values(node, "torn") == ["one", "two"]
    produce(node, "torn", ["three"])
    assert values(node, "torn") == ["one", "two", "three"]
    assert "recovery cut the log at position" in node.log_file.read_text()
    assert "dropping 11 bytes" in node.log_file.read_text()


def test_corruption_below_the_recovery_point_takes_only_that_partition_offline(
    make_node: MakeNode,
) -> None:
    node = make_node()
    node.format()
    node.start()
    http("POST", f"{node.url}/v1/topics", {"name": "damaged", "partitions": 2})
    produce(node, "damaged", ["precious"] * 3, partition=0)
    produce(node, "damaged", ["fine"], partition=1)
    node.stop()  # clean: the recovery point covers everything
    segment = node.log_dir / "damaged-0" / "00000000000000000000.log"
    data = bytearray(segment.read_bytes())
    size = len(data)
    data[70] ^= 0xFF  # inside the first batch's records, under its CRC
    segment.write_bytes(bytes(data))
    node.start()
    status, body = http("GET", f"{node.url}/v1/topics/damaged/partitions/0/records?offset=0")
    assert (status, body["error"]) == (500, "KAFKA_STORAGE_ERROR")
    assert str(segment) in body["message"] and body["position"] == 0
    assert segment.stat().st_size == size, "nothing is dropped silently"
    assert values(node, "damaged", 1) == ["fine"]
    status, body = http(
        "POST", f"{node.url}/v1/topics/damaged/partitions/0/records", {"value": "x"}
    )
    assert (status, body["error"]) == (500, "KAFKA_STORAGE_ERROR")
    _, described = http("GET", f"{node.url}/v1/topics/damaged")
    assert [p["offline"] for p in described["partitions"]] == [True, False]


def test_node_refuses_a_directory_of_another_node_and_an_unformatted_one(
    make_node: MakeNode,
) -> None:
    node = make_node()
    node.format()
    props = node.properties.read_text().replace("node.id=1", "node.id=2")
    props = props.replace("controller.quorum.voters=1@", "controller.quorum.voters=2@")
    node.properties.write_text(props)
    node.start(wait=False)
    assert node.process is not None and node.process.wait(30) == 1
    assert "node.id" in node.log_tail()
    fresh = make_node()
    fresh.format()
    (fresh.log_dir / "meta.properties").unlink()
    fresh.start(wait=False)
    assert fresh.process is not None and fresh.process.wait(30) == 1
    assert "not formatted" in fresh.log_tail()


def test_ctrl_c_stops_the_node_cleanly_even_with_a_stream_open(make_node: MakeNode) -> None:
    node = make_node()
    node.format()
    node.start()
    http("POST", f"{node.url}/v1/topics", {"name": "live"})
    stream = subprocess.Popen(
        ["curl", "-sN", f"{node.url}/v1/topics/live/partitions/0/records?follow=true"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        assert node.stop(signal.SIGINT) == 0
    finally:
        stream.kill()
        stream.wait()
    log = node.log_file.read_text()
    assert "Traceback" not in log and "node 1 stopped" in log
