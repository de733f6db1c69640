"""Helpers shared by the integration tests of the KAFKA listener (issue 18): requests sent by
hand with kio's codecs (on a connection of their own, or on a test's socket, plain or TLS),
confluent-kafka's settings for a secured listener, consumers that read what a test produced
(subscribed, or assigned partition 0), and partition 0 as the HTTP API and the segment files
show it.

The listeners themselves come from ``scripts/node_process.py``: ``Cluster.give_kafka_listeners``
(or ``NodeProcess.give_kafka_listener``) before the nodes start, then ``NodeProcess.kafka_port``
and ``Cluster.kafka_bootstrap()``.
"""

from __future__ import annotations

import io
import socket
import ssl
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from scripts.node_process import (
    SASL_PROTOCOLS,
    TLS_PROTOCOLS,
    Cluster,
    NodeProcess,
    http,
    wait_until,
)
from server.kafka.entities import build
from storage.batch import iter_batches

DEADLINE_S = 60.0
CORRELATION_ID = 42


def read_exactly(s: socket.socket, count: int) -> bytes:
    """``count`` bytes from ``s``; fails when the node closes the connection first."""
    data = b""
    while len(data) < count:
        chunk = s.recv(count - len(data))
        assert chunk, "the node closed the connection"
        data += chunk
    return data


def kafka_call(port: int, api_key: int, version: int, body: dict[str, Any]) -> Any:
    """One request to the KAFKA listener on ``port`` (PLAINTEXT), on a connection of its own,
    built by hand: its answer, decoded (the whole frame, its correlation id checked)."""
    request = build(load_request_schema(api_key, version), body)
    header_cls = type(request).__header_schema__
    header = {
        "request_api_key": api_key,
        "request_api_version": version,
        "correlation_id": CORRELATION_ID,
        "client_id": "test-kafka-raw",
    }
    out = io.BytesIO()
    entity_writer(header_cls)(out, build(header_cls, header))
    entity_writer(type(request))(out, request)
    payload = out.getvalue()
    response_cls = load_response_schema(api_key, version)
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", read_exactly(s, 4))[0]
        frame = read_exactly(s, size)
    header_read, offset = entity_reader(response_cls.__header_schema__)(frame, 0)
    assert header_read.correlation_id == CORRELATION_ID
    response, used = entity_reader(response_cls)(frame, offset)
    assert offset + used == len(frame)
    return response


def request_frame(api_key: int, version: int, values: dict[str, Any]) -> bytes:
    """A request as it goes on the wire (size prefix, header v1 or v2, body) from its fields."""
    request_cls = load_request_schema(api_key, version)
    header_cls = request_cls.__header_schema__
    header = build(
        header_cls,
        {
            "request_api_key": api_key,
            "request_api_version": version,
            "correlation_id": 9,
            "client_id": "raw",
        },
    )
    buffer = io.BytesIO()
    entity_writer(header_cls)(buffer, header)
    entity_writer(request_cls)(buffer, request_cls(**values))
    data = buffer.getvalue()
    return struct.pack(">i", len(data)) + data


def recv_or_none(s: socket.socket, size: int) -> bytes | None:
    """``size`` bytes, or None once the node closed the connection (plain or TLS)."""
    data = b""
    while len(data) < size:
        try:
            part = s.recv(size - len(data))
        except (ConnectionResetError, ssl.SSLEOFError):
            return None
        if not part:
            return None
        data += part
    return data


def read_answer(s: socket.socket, api_key: int, version: int) -> Any:
    """The next answer on ``s``, decoded as ``api_key`` v``version``'s response; None when the
    node closed the connection before it began."""
    prefix = recv_or_none(s, 4)
    if prefix is None:
        return None
    answer = recv_or_none(s, struct.unpack(">i", prefix)[0])
    assert answer is not None
    response_cls = load_response_schema(api_key, version)
    header_bytes = 4 if response_cls.__header_schema__.__version__ == 0 else 5
    value, _ = entity_reader(response_cls)(answer, header_bytes)
    return value


def ask(s: socket.socket, api_key: int, version: int, values: dict[str, Any]) -> Any:
    """One request on ``s``; its decoded answer, or None when the node closed the connection."""
    s.sendall(request_frame(api_key, version, values))
    return read_answer(s, api_key, version)


def error_of(future: Any) -> KafkaError:
    """The KafkaError a confluent-kafka future fails with (fails the test if it succeeds)."""
    with pytest.raises(KafkaException) as raised:
        future.result(timeout=DEADLINE_S)
    error: KafkaError = raised.value.args[0]
    return error


def controller_and_follower(cluster: Cluster) -> tuple[NodeProcess, NodeProcess]:
    """The quorum's leader and another node."""
    leader = wait_until("a controller", lambda: cluster.controller_id())
    controller = cluster.node(leader)
    follower = next(n for n in cluster.nodes if n.node_id != leader)
    return controller, follower


def confluent_config(
    bootstrap: str,
    protocol: str,
    *,
    cafile: Path | None = None,
    mechanism: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    """confluent-kafka's settings to reach a KAFKA listener of ``protocol``: the CA it checks
    the node's certificate against (SSL, SASL_SSL) and the SASL user (SASL_*)."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "security.protocol": protocol}
    if protocol in TLS_PROTOCOLS:
        assert cafile is not None, f"{protocol} needs the CA file"
        config["ssl.ca.location"] = str(cafile)
    if protocol in SASL_PROTOCOLS:
        assert mechanism and username is not None and password is not None, (
            f"{protocol} needs a mechanism, a user name and a password"
        )
        config |= {
            "sasl.mechanism": mechanism,
            "sasl.username": username,
            "sasl.password": password,
        }
    return config


def consume_subscribed(
    config: dict[str, Any], topic: str, count: int, group: str | None = None
) -> list[bytes | None]:
    """The values a consumer in ``group`` (default ``g-{topic}``) subscribed to ``topic`` reads
    from the earliest offset, until ``count`` or DEADLINE_S (fewer then: the caller's check
    says what is missing)."""
    consumer = Consumer(
        {**config, "group.id": group or f"g-{topic}", "auto.offset.reset": "earliest"}
    )
    got: list[bytes | None] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None:
                assert message.error() is None, message.error()
                got.append(message.value())
    finally:
        consumer.close()
    return got


# (offset, key, value) of a record, as every reader below returns it.
Record = tuple[int, bytes | None, bytes | None]


def consume_assigned(bootstrap: str, topic: str, count: int) -> list[Record]:
    """What librdkafka reads of ``topic``'s partition 0 from offset 0 (assigned, no group
    coordination), until ``count`` records or DEADLINE_S."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "enable.auto.commit": False}
    )
    got: list[Record] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            offset = msg.offset()
            assert offset is not None
            got.append((offset, msg.key(), msg.value()))
    finally:
        consumer.close()
    return got


def records_over_http(node: NodeProcess, topic: str) -> list[Record]:
    """``topic``'s partition 0 as the node's HTTP API reads it (JSON, keys and values as text)."""
    status, body = http(
        "GET", f"{node.url}/v1/topics/{topic}/partitions/0/records?offset=0&max_records=10000"
    )
    assert status == 200, body
    return [
        (
            r["offset"],
            None if r["key"] is None else r["key"].encode(),
            None if r["value"] is None else r["value"].encode(),
        )
        for r in body["records"]
    ]


def stored_codecs(node: NodeProcess, topic: str) -> list[int]:
    """The codec of every batch in partition 0's segment files, oldest first."""
    codecs = []
    for path in sorted((node.log_dir / f"{topic}-0").glob("*.log")):
        codecs += [header.compression for _pos, header in iter_batches(path.read_bytes())]
    return codecs
