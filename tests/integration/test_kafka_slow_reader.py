"""A Kafka client that stops reading does not pin its answer (server/kafka/listener.py): an
answer must be read within http.request.read.timeout.ms plus FRAME_TRANSFER_MIN_BYTES_PER_S,
or the connection is closed, the close counted as a timeout, and what the node held of the
answer dropped (not kept to be flushed to a client that may never read it).

One node with its own low http.request.read.timeout.ms; the client speaks the protocol by
hand (kio's codecs build the Fetch) so that it can send a request and never read the answer.
"""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from kio.index import load_request_schema

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from server.kafka.entities import build
from server.kafka.limits import FRAME_TRANSFER_MIN_BYTES_PER_S
from tests.integration.test_cluster import create_topic
from tests.integration.test_kafka_clients import _request

DEADLINE_S = 60.0
READ_TIMEOUT_MS = 1000
TOPIC = "slow-reader"
VALUE_BYTES = 512 * 1024


def _send_buffer_max_bytes() -> int:
    """What the kernel may buffer of the node's answer in its socket (tcp_wmem's maximum)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024  # Linux's default


# The answer must outgrow what the kernel buffers between the two sockets (the node's send
# buffer, up to tcp_wmem's maximum; the client's receive buffer is made small) by 2 MiB, so
# that part waits in the node's process; and the node must give up on it (READ_TIMEOUT_MS plus
# its size at FRAME_TRANSFER_MIN_BYTES_PER_S: about 25 s for 6 MiB) well within DEADLINE_S.
VALUES = -(-(_send_buffer_max_bytes() + 2 * 1024 * 1024) // VALUE_BYTES)
assert READ_TIMEOUT_MS / 1000 + VALUES * VALUE_BYTES / FRAME_TRANSFER_MIN_BYTES_PER_S < 45


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One combined node with a KAFKA listener and a 1 s http.request.read.timeout.ms."""
    properties: dict[str, Any] = {"http.request.read.timeout.ms": str(READ_TIMEOUT_MS)}
    handle = Cluster.create(tmp_path_factory.mktemp("slow-reader"), 1, **properties)
    [only] = handle.nodes
    handle.give_kafka_listeners()
    try:
        handle.start()
        yield only
    finally:
        handle.stop()


def _timeouts(node: NodeProcess) -> float:
    """The node's count of Kafka connections closed for a timeout."""
    status, body = http("GET", f"{node.url}/metrics")
    assert status == 200, body
    text = body if isinstance(body, str) else str(body)
    found = re.search(
        r'^kraft_kafka_connections_closed_total\{reason="timeout"\} (\S+)$', text, re.M
    )
    return 0.0 if found is None else float(found.group(1))


def _fetch_everything() -> bytes:
    """A sessionless Fetch v12 of the topic's partition 0 from offset 0, as much as allowed."""
    request = build(
        load_request_schema(1, 12),
        {
            "replica_id": -1,
            "max_wait": 0,
            "min_bytes": 1,
            "max_bytes": 50 * 1024 * 1024,
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": -1,
            "topics": [
                {
                    "topic": TOPIC,
                    "partitions": [
                        {
                            "partition": 0,
                            "current_leader_epoch": -1,
                            "fetch_offset": 0,
                            "log_start_offset": -1,
                            "partition_max_bytes": 50 * 1024 * 1024,
                        }
                    ],
                }
            ],
            "forgotten_topics_data": [],
            "rack_id": "",
        },
    )
    return _request(1, 12, request)


def test_a_client_that_stops_reading_an_answer_is_closed_and_its_answer_dropped(
    node: NodeProcess,
) -> None:
    process, port = node, node.kafka_port
    create_topic(process, TOPIC, partitions=1, replication_factor=1)
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "acks": "all"})
    for i in range(VALUES):
        producer.produce(TOPIC, value=bytes([i]) * VALUE_BYTES)
    assert producer.flush(DEADLINE_S) == 0
    before = _timeouts(process)

    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # A small receive window before connecting: the kernel takes little of the answer.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.settimeout(DEADLINE_S)
        client.connect(("127.0.0.1", port))
        client.sendall(_fetch_everything())
        # The client reads nothing until the node has given up on it.
        wait_until(
            "the slow reader's connection closed for a timeout",
            lambda: _timeouts(process) > before,
            DEADLINE_S,
        )
        size_prefix = client.recv(4, socket.MSG_WAITALL)
        assert len(size_prefix) == 4, "the answer's size came first"
        (size,) = struct.unpack(">i", size_prefix)
        assert size > VALUES * VALUE_BYTES, "the answer holds every record"
        received = 0
        try:
            while part := client.recv(1 << 20):
                received += len(part)
        except ConnectionResetError:
            pass  # the node aborted the connection: what it still held is gone
        # Had the node only closed its end, its buffers would have been kept until flushed
        # and this client would now get the whole answer.
        assert received < size, "the whole answer stayed pinned for the client that stopped"
    finally:
        client.close()
    assert _timeouts(process) == before + 1

    # The node goes on serving Kafka clients.
    producer.produce(TOPIC, value=b"after")
    assert producer.flush(DEADLINE_S) == 0
