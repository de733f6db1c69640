"""The KAFKA listener's limits around TLS and SASL, with real nodes: ``KAFKA:SSL`` without SASL
and ``KAFKA:SASL_PLAINTEXT`` end to end with confluent-kafka; a closed TLS connection gives
its file descriptor back although the peer never answers close_notify; a silent client is
closed at the TLS handshake deadline; before authentication, frames are small, are not taken
from queued.max.request.bytes, and the connection must authenticate within a deadline;
SASL requests out of turn are failed authentications (counted, delayed); a short PLAIN token
after SaslHandshake v0 is read; a Produce whose non-nullable topic_data is null closes the
connection as bad input (no traceback)."""

from __future__ import annotations

import io
import os
import re
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequestTopic
from kio.schema.types import TopicName
from kio.serial import entity_writer

from scripts.node_process import Cluster, NodeProcess, wait_until
from server.kafka.limits import (
    CONNECTION_CLOSE_TIMEOUT_S,
    SASL_AUTHENTICATION_TIMEOUT_S,
    SASL_UNAUTHENTICATED_FRAME_BYTES_MAX,
    TLS_HANDSHAKE_TIMEOUT_S,
)
from tests.integration.kafka_helpers import (
    ask,
    confluent_config,
    consume_subscribed,
    read_answer,
    recv_or_none,
    request_frame,
)

pytestmark = pytest.mark.timeout(300)

DEADLINE_S = 60.0
USERS = {"admin": "admin-secret", "ab": "cd"}
# connection.failed.authentication.delay.ms of the SASL node: long enough that a refusal
# without it is told apart (lower bounds only).
DELAY_MS = 3000
# The SASL node's queued.max.request.bytes (and socket.request.max.bytes, its floor).
BUDGET_BYTES = 64 * 1024
# Its http.request.read.timeout.ms: how long a frame waits for room in the budget.
READ_TIMEOUT_MS = 1000


def _kafka_node(directory: Any, protocol: str, **properties: str) -> Cluster:
    handle = Cluster.create(
        directory,
        1,
        security=protocol,
        users=USERS if "SASL" in protocol else None,
        **{"listener.security.protocol.map": f"HTTP:{protocol},KAFKA:{protocol}", **properties},
    )
    handle.give_kafka_listeners()
    return handle


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    handle = _kafka_node(tmp_path_factory.mktemp("kafka-ssl"), "SSL")
    try:
        handle.start()
        yield handle.nodes[0]
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def sasl_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    handle = _kafka_node(
        tmp_path_factory.mktemp("kafka-sasl-plaintext"),
        "SASL_PLAINTEXT",
        **{
            "connection.failed.authentication.delay.ms": str(DELAY_MS),
            "socket.request.max.bytes": str(BUDGET_BYTES),
            "http.max.request.bytes": str(BUDGET_BYTES),
            "queued.max.request.bytes": str(BUDGET_BYTES),
            "http.request.read.timeout.ms": str(READ_TIMEOUT_MS),
        },
    )
    try:
        handle.start()
        yield handle.nodes[0]
    finally:
        handle.stop()


# -- raw requests ---------------------------------------------------------------------------------


def _plain(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)


def _tls(node: NodeProcess, port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(node.cafile))
    return context.wrap_socket(_plain(port), server_hostname="127.0.0.1")


def _authenticated(port: int) -> socket.socket:
    s = _plain(port)
    assert ask(s, 17, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.none
    done = ask(s, 36, 2, {"auth_bytes": b"\0admin\0" + USERS["admin"].encode()})
    assert done.error_code == ErrorCode.none
    return s


def _metric(node: NodeProcess, name: str, **labels: str) -> float:
    status, text = node.http("GET", "/metrics")
    assert status == 200
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in str(text).splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.startswith(name + "{") or sample == name:
            found = ",".join(sorted(re.findall(r'\w+="[^"]*"', sample)))
            if found == wanted:
                return float(value)
    return 0.0


def _log(node: NodeProcess) -> str:
    return node.log_file.read_text(errors="replace")


def _fds(node: NodeProcess) -> int:
    assert node.pid is not None
    return len(os.listdir(f"/proc/{node.pid}/fd"))


def _produce_and_consume(config: dict[str, Any], node: NodeProcess, topic: str) -> None:
    status, body = node.http("POST", "/v1/topics", {"name": topic, "partitions": 1})
    assert status in (200, 201), body
    producer = Producer({**config, "acks": "all"})
    for i in range(3):
        producer.produce(topic, value=f"v{i}".encode())
    assert producer.flush(DEADLINE_S) == 0
    assert consume_subscribed(config, topic, 3) == [b"v0", b"v1", b"v2"]


# -- KAFKA:SSL ------------------------------------------------------------------------------------


def test_kafka_ssl_without_sasl_serves_confluent_kafka(tls_node: NodeProcess) -> None:
    node = tls_node
    config = confluent_config(node.kafka_address, "SSL", cafile=node.cafile)
    _produce_and_consume(config, node, "over-ssl")


def test_a_silent_client_is_closed_at_the_tls_handshake_deadline(
    tls_node: NodeProcess,
) -> None:
    node = tls_node
    port = node.kafka_port
    with _plain(port) as s:
        started = time.monotonic()
        assert recv_or_none(s, 1) is None  # the node closes it; nothing was said
        assert time.monotonic() - started >= TLS_HANDSHAKE_TIMEOUT_S - 0.5
    wait_until(
        "the node logs why",
        lambda: (
            f"TLS handshake with 127.0.0.1 failed: timed out after {TLS_HANDSHAKE_TIMEOUT_S:g} s"
            in _log(node)
        ),
    )


def test_a_produce_with_a_null_topic_data_closes_the_connection_as_bad_input(
    tls_node: NodeProcess,
) -> None:
    # A Produce v9 whose body is all zeros: topic_data's compact length 0 means null, which
    # the schema does not allow. Kafka's reader refuses it and closes; so does the node,
    # without a handler failing on it.
    node = tls_node
    port = node.kafka_port
    header = io.BytesIO()
    header_cls = load_request_schema(0, 9).__header_schema__
    entity_writer(header_cls)(
        header,
        header_cls(request_api_key=0, request_api_version=9, correlation_id=9, client_id="raw"),
    )
    data = header.getvalue() + b"\x00" * 16
    garbage = _metric(node, "kraft_kafka_connections_closed_total", reason="garbage")
    with _tls(node, port) as s:
        s.sendall(struct.pack(">i", len(data)) + data)
        assert recv_or_none(s, 1) is None
    # Counted as garbage (a frame that does not parse), not a handler's failure. (The log line
    # saying why may be dropped by the log's repeat limit after the other tests' closes.)
    wait_until(
        "the close is counted as garbage",
        lambda: (
            _metric(node, "kraft_kafka_connections_closed_total", reason="garbage") == garbage + 1
        ),
    )
    text = _log(node)
    assert "Traceback" not in text and "TypeError" not in text, text[-3000:]
    # The node goes on serving.
    with _tls(node, port) as s:
        versions = ask(s, 18, 3, {"client_software_name": "raw", "client_software_version": "1"})
        assert versions is not None and versions.error_code == ErrorCode.none


def test_closed_tls_connections_give_their_descriptors_back_though_the_peer_never_answers(
    tls_node: NodeProcess,
) -> None:
    # Each client finishes the handshake, sends a frame too short for a header (the node
    # closes the connection) and never reads again: the node's close_notify is not answered.
    node = tls_node
    port = node.kafka_port
    before = _fds(node)
    held: list[socket.socket] = []
    try:
        for _ in range(300):
            try:
                s = _tls(node, port)
            except (OSError, ssl.SSLError):
                continue  # beyond max.connections.per.ip while earlier ones close: refused
            held.append(s)
            s.sendall(struct.pack(">i", 1) + b"x")
        assert len(held) >= 100
        # asyncio alone waits 30 s for the peer's close_notify; the node waits
        # CONNECTION_CLOSE_TIMEOUT_S, then drops the socket.
        assert CONNECTION_CLOSE_TIMEOUT_S < 5
        wait_until(
            f"the node's descriptors back near {before}",
            lambda: _fds(node) <= before + 20,
            deadline_s=10.0,
        )
    finally:
        for s in held:
            s.close()


# -- KAFKA:SASL_PLAINTEXT -------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_kafka_sasl_plaintext_serves_confluent_kafka(
    sasl_node: NodeProcess, mechanism: str
) -> None:
    node = sasl_node
    config = confluent_config(
        node.kafka_address,
        "SASL_PLAINTEXT",
        mechanism=mechanism,
        username="admin",
        password=USERS["admin"],
    )
    _produce_and_consume(config, node, f"sasl-plaintext-{mechanism.lower()}")


def test_a_refused_password_is_answered_after_the_failed_authentication_delay(
    sasl_node: NodeProcess,
) -> None:
    port = sasl_node.kafka_port
    with _plain(port) as s:
        assert ask(s, 17, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.none
        started = time.monotonic()
        refused = ask(s, 36, 2, {"auth_bytes": b"\0admin\0wrong"})
        assert time.monotonic() - started >= DELAY_MS / 1000 - 0.1
        assert refused.error_code == ErrorCode.sasl_authentication_failed
        assert recv_or_none(s, 1) is None


def test_a_frame_above_the_unauthenticated_limit_closes_the_connection_unanswered(
    sasl_node: NodeProcess,
) -> None:
    node = sasl_node
    port = node.kafka_port
    too_large = _metric(node, "kraft_kafka_connections_closed_total", reason="too_large")
    with _plain(port) as s:
        assert ask(s, 17, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.none
        token = b"\0admin\0" + b"x" * SASL_UNAUTHENTICATED_FRAME_BYTES_MAX
        assert ask(s, 36, 2, {"auth_bytes": token}) is None
    assert _metric(node, "kraft_kafka_connections_closed_total", reason="too_large") == (
        too_large + 1
    )
    # Once authenticated, the same connection's frames may be as large as
    # socket.request.max.bytes: a Metadata request naming topics of that size is answered.
    with _authenticated(port) as s:
        names = [f"missing-{i:05d}-" + "n" * 40 for i in range(400)]
        assert len(request_frame(3, 12, _metadata(names))) > SASL_UNAUTHENTICATED_FRAME_BYTES_MAX
        answer = ask(s, 3, 12, _metadata(names))
        assert answer is not None and len(answer.topics) == len(names)


def _metadata(names: list[str]) -> dict[str, Any]:
    """Metadata v12 for topics ``names`` (none exist: each is answered with an error)."""
    return {
        "topics": tuple(MetadataRequestTopic(topic_id=None, name=TopicName(n)) for n in names),
        "allow_auto_topic_creation": False,
        "include_topic_authorized_operations": False,
    }


def test_strangers_frames_do_not_take_the_authenticated_clients_budget(
    sasl_node: NodeProcess,
) -> None:
    # Six strangers each send a refused SaslAuthenticate of 12 KiB: it is held while its
    # refusal waits DELAY_MS. Together more than BUDGET_BYTES; an authenticated client's
    # request of 23 KiB, which waits at most READ_TIMEOUT_MS for room, is still answered.
    port = sasl_node.kafka_port
    with _authenticated(port) as client:
        strangers = [_plain(port) for _ in range(6)]
        try:
            for s in strangers:
                assert ask(s, 17, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.none
            token = b"\0admin\0" + b"x" * (12 * 1024)
            for s in strangers:
                s.sendall(request_frame(36, 2, {"auth_bytes": token}))
            assert 6 * len(token) > BUDGET_BYTES
            time.sleep(0.5)  # the node reads them (the check below holds either way)
            names = [f"missing-{i:05d}-" + "n" * 40 for i in range(400)]
            answer = ask(client, 3, 12, _metadata(names))
            assert answer is not None and len(answer.topics) == len(names)
            for s in strangers:
                refused = read_answer(s, 36, 2)
                assert refused.error_code == ErrorCode.sasl_authentication_failed
        finally:
            for s in strangers:
                s.close()


def test_an_unauthenticated_connection_closes_at_the_deadline_whatever_it_sends(
    sasl_node: NodeProcess,
) -> None:
    # ApiVersions of a version newer than served is answered (KIP-511) without a state
    # change, and each would reset connections.max.idle.ms: the deadline holds regardless.
    node = sasl_node
    port = node.kafka_port
    timeouts = _metric(node, "kraft_kafka_connections_closed_total", reason="timeout")
    versions = request_frame(18, 3, {"client_software_name": "raw", "client_software_version": "1"})
    too_new = versions[:6] + struct.pack(">h", 99) + versions[8:]  # api_version after size, key
    with _plain(port) as s:
        started = time.monotonic()
        closed_after: float | None = None
        while time.monotonic() - started < SASL_AUTHENTICATION_TIMEOUT_S + DEADLINE_S:
            s.sendall(too_new)
            if read_answer(s, 18, 0) is None:
                closed_after = time.monotonic() - started
                break
            time.sleep(1.0)
        assert closed_after is not None, "the connection stayed open"
        assert closed_after >= SASL_AUTHENTICATION_TIMEOUT_S - 1.0
    assert _metric(node, "kraft_kafka_connections_closed_total", reason="timeout") > timeouts
    assert f"not authenticated within {SASL_AUTHENTICATION_TIMEOUT_S:g} s" in _log(node)


def test_sasl_requests_out_of_turn_are_failed_authentications(
    sasl_node: NodeProcess,
) -> None:
    node = sasl_node
    port = node.kafka_port
    failures = _metric(
        node, "kraft_kafka_authentications_total", mechanism="none", result="failure"
    )
    # SaslAuthenticate before SaslHandshake.
    with _plain(port) as s:
        started = time.monotonic()
        assert ask(s, 36, 2, {"auth_bytes": b"\0admin\0admin-secret"}) is None
        assert time.monotonic() - started >= DELAY_MS / 1000 - 0.1
    assert (
        _metric(node, "kraft_kafka_authentications_total", mechanism="none", result="failure")
        == failures + 1
    )
    # A second SaslHandshake.
    plain_failures = _metric(
        node, "kraft_kafka_authentications_total", mechanism="PLAIN", result="failure"
    )
    with _plain(port) as s:
        assert ask(s, 17, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.none
        started = time.monotonic()
        assert ask(s, 17, 1, {"mechanism": "PLAIN"}) is None
        assert time.monotonic() - started >= DELAY_MS / 1000 - 0.1
    assert (
        _metric(node, "kraft_kafka_authentications_total", mechanism="PLAIN", result="failure")
        == plain_failures + 1
    )


def test_a_plain_token_shorter_than_a_request_header_is_read_after_handshake_v0(
    sasl_node: NodeProcess,
) -> None:
    # User "ab", password "cd": the bare token \0ab\0cd is 6 bytes, under a header's 8.
    port = sasl_node.kafka_port
    with _plain(port) as s:
        assert ask(s, 17, 0, {"mechanism": "PLAIN"}).error_code == ErrorCode.none
        s.sendall(struct.pack(">i", 6) + b"\0ab\0cd")
        assert recv_or_none(s, 4) == struct.pack(">i", 0)  # PLAIN's empty answer: authenticated
        versions = ask(s, 18, 3, {"client_software_name": "raw", "client_software_version": "1"})
        assert versions is not None and versions.error_code == ErrorCode.none
