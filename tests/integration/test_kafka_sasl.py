"""SASL (PLAIN, SCRAM-SHA-256) over TLS on the KAFKA listener (``KAFKA:SASL_SSL``), with real
nodes and Kafka's clients: confluent-kafka, kafka-python and aiokafka authenticate and
produce and consume; a wrong password, an unknown mechanism and a request before
authentication are refused as Kafka refuses them; the ACLs judge the authenticated user; a
record produced over HTTP (basic authentication) reads the same over Kafka and back."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context
from confluent_kafka import KafkaError, Producer
from kafka import KafkaConsumer, KafkaProducer
from kio.schema.errors import ErrorCode

from scripts.node_process import Cluster, http, wait_until
from tests.integration.kafka_helpers import (
    ask,
    confluent_config,
    consume_subscribed,
    recv_or_none,
    request_frame,
)

pytestmark = pytest.mark.timeout(300)

DEADLINE_S = 60.0
USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}

METADATA_ALL = {
    "topics": None,
    "allow_auto_topic_creation": False,
    "include_topic_authorized_operations": False,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One combined node, HTTP and KAFKA both SASL_SSL, ACLs on, admin a super user."""
    handle = Cluster.create(
        tmp_path_factory.mktemp("sasl"),
        1,
        security="SASL_SSL",
        users=USERS,
        **{
            "listener.security.protocol.map": "HTTP:SASL_SSL,KAFKA:SASL_SSL",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
            "connection.failed.authentication.delay.ms": "50",
        },
    )
    handle.give_kafka_listeners()
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def cafile(cluster: Cluster) -> str:
    assert cluster.nodes[0].cafile is not None
    return str(cluster.nodes[0].cafile)


def confluent(cluster: Cluster, user: str, password: str, mechanism: str) -> dict[str, Any]:
    return confluent_config(
        cluster.kafka_bootstrap(),
        "SASL_SSL",
        cafile=cluster.nodes[0].cafile,
        mechanism=mechanism,
        username=user,
        password=password,
    )


def create_topic(cluster: Cluster, name: str) -> None:
    status, body = cluster.nodes[0].http("POST", "/v1/topics", {"name": name, "partitions": 1})
    assert status in (200, 201), body


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_confluent_kafka_authenticates_produces_and_consumes(
    cluster: Cluster, mechanism: str
) -> None:
    topic = f"confluent-{mechanism.lower()}"
    create_topic(cluster, topic)
    config = confluent(cluster, "admin", USERS["admin"], mechanism)
    producer = Producer({**config, "acks": "all"})
    for i in range(5):
        producer.produce(topic, value=f"v{i}".encode())
    assert producer.flush(DEADLINE_S) == 0
    assert consume_subscribed(config, topic, 5) == [f"v{i}".encode() for i in range(5)]


def test_kafka_python_authenticates_with_scram_sha_256(cluster: Cluster) -> None:
    create_topic(cluster, "kafka-python")
    common: dict[str, Any] = {
        "bootstrap_servers": cluster.kafka_bootstrap(),
        "security_protocol": "SASL_SSL",
        "ssl_cafile": cafile(cluster),
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "admin",
        "sasl_plain_password": USERS["admin"],
    }
    producer = KafkaProducer(**common, acks="all")
    try:
        producer.send("kafka-python", b"hello").get(timeout=DEADLINE_S)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        "kafka-python", **common, auto_offset_reset="earliest", consumer_timeout_ms=30_000
    )
    try:
        assert next(iter(consumer)).value == b"hello"
    finally:
        consumer.close()


def test_aiokafka_authenticates_with_plain(cluster: Cluster) -> None:
    create_topic(cluster, "aiokafka")

    async def run() -> bytes:
        common: dict[str, Any] = {
            "bootstrap_servers": cluster.kafka_bootstrap(),
            "security_protocol": "SASL_SSL",
            "ssl_context": create_ssl_context(cafile=cafile(cluster)),
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "admin",
            "sasl_plain_password": USERS["admin"],
        }
        producer = AIOKafkaProducer(**common, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait("aiokafka", b"over-aio")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("aiokafka", **common, auto_offset_reset="earliest")
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), DEADLINE_S)
        finally:
            await consumer.stop()
        assert message.value is not None
        return message.value

    assert asyncio.run(run()) == b"over-aio"


def test_a_wrong_password_is_refused_with_sasl_authentication_failed(cluster: Cluster) -> None:
    config = confluent(cluster, "admin", "wrong", "SCRAM-SHA-256")
    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append})

    def refused() -> list[KafkaError]:
        producer.poll(0.5)  # serves the error callback
        return errors

    wait_until("the client reports the refusal", refused)
    assert errors[0].code() == KafkaError._AUTHENTICATION, errors[0]
    assert "Authentication failed" in errors[0].str(), errors[0].str()


def test_a_user_without_acls_is_refused_and_a_permitted_one_produces(cluster: Cluster) -> None:
    create_topic(cluster, "guarded")
    status, body = cluster.nodes[0].http(
        "POST",
        "/v1/acls",
        {
            "acls": [
                {
                    "resource_type": "TOPIC",
                    "resource_name": "guarded",
                    "principal": "User:alice",
                    "operation": op,
                    "permission": "ALLOW",
                }
                for op in ("WRITE", "DESCRIBE")
            ]
        },
    )
    assert status in (200, 201), body
    alice = Producer({**confluent(cluster, "alice", USERS["alice"], "PLAIN"), "acks": "all"})
    delivered: list[Any] = []

    def report(err: Any, _: Any) -> None:
        delivered.append(err)

    # The ACL reaches the node's metadata shortly after the answer: retried until it has.
    def alice_writes() -> bool:
        delivered.clear()
        alice.produce("guarded", value=b"allowed", on_delivery=report)
        alice.flush(DEADLINE_S)
        return delivered == [None]

    wait_until("alice may write to guarded", alice_writes)
    bob = Producer({**confluent(cluster, "bob", USERS["bob"], "SCRAM-SHA-256"), "acks": "all"})
    delivered.clear()
    bob.produce("guarded", value=b"refused", on_delivery=report)
    bob.flush(DEADLINE_S)
    assert len(delivered) == 1 and delivered[0] is not None
    assert delivered[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, delivered[0]


def test_http_and_kafka_sasl_read_each_others_records(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    create_topic(cluster, "both")
    status, body = node.http(
        "POST", "/v1/topics/both/partitions/0/records", {"records": [{"value": "from-http"}]}
    )
    assert status == 200, body
    config = confluent(cluster, "admin", USERS["admin"], "SCRAM-SHA-256")
    producer = Producer({**config, "acks": "all"})
    producer.produce("both", value=b"from-kafka")
    assert producer.flush(DEADLINE_S) == 0
    assert consume_subscribed(config, "both", 2) == [b"from-http", b"from-kafka"]
    status, body = node.http("GET", "/v1/topics/both/partitions/0/records?offset=0")
    assert status == 200, body
    assert [r["value"] for r in body["records"]] == ["from-http", "from-kafka"]


def test_an_unauthenticated_connection_gets_http_401_not_records(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    status, _ = http("GET", node.url + "/v1/topics", cafile=node.cafile)
    assert status == 401


# -- raw requests: Kafka's refusals ---------------------------------------------------------------


def _tls(cluster: Cluster) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=cafile(cluster))
    raw = socket.create_connection(("127.0.0.1", cluster.nodes[0].kafka_port), timeout=DEADLINE_S)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_a_wrong_plain_password_is_answered_then_the_connection_closes(cluster: Cluster) -> None:
    with _tls(cluster) as s:
        handshake = ask(s, 17, 1, {"mechanism": "PLAIN"})
        assert handshake.error_code == ErrorCode.none
        assert list(handshake.mechanisms) == ["PLAIN", "SCRAM-SHA-256"]
        refused = ask(s, 36, 2, {"auth_bytes": b"\0admin\0wrong"})
        assert refused.error_code == ErrorCode.sasl_authentication_failed
        assert refused.error_message == "Authentication failed: Invalid username or password"
        assert recv_or_none(s, 1) is None, "the connection closes after the refusal"
    status, text = cluster.nodes[0].http("GET", "/metrics")
    assert status == 200
    assert 'kraft_kafka_authentications_total{mechanism="PLAIN",result="failure"}' in str(text)


def test_an_unknown_mechanism_is_refused_with_the_enabled_ones(cluster: Cluster) -> None:
    with _tls(cluster) as s:
        refused = ask(s, 17, 1, {"mechanism": "GSSAPI"})
        assert refused.error_code == ErrorCode.unsupported_sasl_mechanism
        assert list(refused.mechanisms) == ["PLAIN", "SCRAM-SHA-256"]
        assert recv_or_none(s, 1) is None


def test_a_metadata_request_before_authentication_closes_the_connection(cluster: Cluster) -> None:
    with _tls(cluster) as s:
        versions = ask(s, 18, 3, {"client_software_name": "raw", "client_software_version": "1"})
        served = {k.api_key: (k.min_version, k.max_version) for k in versions.api_keys}
        assert served[17] == (0, 1) and served[36] == (0, 2)
        assert ask(s, 3, 12, METADATA_ALL) is None
    # After authentication, the same request is answered, and a second handshake is
    # ILLEGAL_SASL_STATE (the connection stays open).
    with _tls(cluster) as s:
        assert ask(s, 17, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.none
        done = ask(s, 36, 1, {"auth_bytes": b"\0admin\0" + USERS["admin"].encode()})
        assert done.error_code == ErrorCode.none and done.session_lifetime.total_seconds() == 0
        metadata = ask(s, 3, 12, METADATA_ALL)
        assert metadata is not None and metadata.brokers
        again = ask(s, 17, 1, {"mechanism": "PLAIN"})
        assert again.error_code == ErrorCode.illegal_sasl_state


def test_sasl_handshake_v0_takes_bare_tokens_and_a_refused_one_closes_unanswered(
    cluster: Cluster,
) -> None:
    # Kafka before 1.0's framing: after SaslHandshake v0 the tokens are bare size-prefixed
    # frames; PLAIN's answer is an empty token, then requests are served.
    with _tls(cluster) as s:
        assert ask(s, 17, 0, {"mechanism": "PLAIN"}).error_code == ErrorCode.none
        token = b"\0admin\0" + USERS["admin"].encode()
        s.sendall(struct.pack(">i", len(token)) + token)
        assert recv_or_none(s, 4) == struct.pack(">i", 0)
        metadata = ask(s, 3, 12, METADATA_ALL)
        assert metadata is not None and metadata.brokers
    # A wrong password: v0 has no error field, so no answer; the connection closes.
    with _tls(cluster) as s:
        assert ask(s, 17, 0, {"mechanism": "PLAIN"}).error_code == ErrorCode.none
        token = b"\0admin\0wrong"
        s.sendall(struct.pack(">i", len(token)) + token)
        assert recv_or_none(s, 1) is None
    # A request other than SaslAuthenticate after a v1 handshake closes the connection.
    with _tls(cluster) as s:
        assert ask(s, 17, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.none
        assert ask(s, 3, 12, METADATA_ALL) is None


def test_a_plaintext_client_on_the_tls_port_is_closed_not_answered(cluster: Cluster) -> None:
    frame = request_frame(18, 3, {"client_software_name": "raw", "client_software_version": "1"})
    with socket.create_connection(
        ("127.0.0.1", cluster.nodes[0].kafka_port), timeout=DEADLINE_S
    ) as s:
        s.sendall(frame)
        received = b""
        try:
            while chunk := s.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    # Nothing, or one TLS alert record (content type 21, TLS 1.2 record version): never a Kafka
    # answer, whose first bytes would be its size and the correlation id 9.
    assert received == b"" or (received[0] == 21 and received[1:3] == b"\x03\x03"), received
