"""The KAFKA listener's settings (server/config.py), with Kafka's messages for bad values, and
the classic group protocol's (Kafka's group.*), as the node gives them to its coordinator."""

from __future__ import annotations

import pytest

from server.config import ConfigError, NodeConfig
from server.groups.classic import ClassicSettings
from server.node import classic_settings

BASE = {
    "node.id": "1",
    "controller.quorum.voters": "1@127.0.0.1:9093",
    "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
}


def load(**overrides: str) -> NodeConfig:
    return NodeConfig.from_properties(
        {**BASE, **{k.replace("_", "."): v for k, v in overrides.items()}}
    )


def test_no_kafka_listener_unless_one_is_given() -> None:
    config = load()
    assert not config.has_kafka_listener and config.advertised_kafka_address is None


def test_a_kafka_listener_is_advertised_as_it_listens_unless_told_otherwise() -> None:
    listeners = BASE["listeners"] + ",KAFKA://127.0.0.1:19092"
    config = load(listeners=listeners)
    assert (config.kafka_host, config.kafka_port) == ("127.0.0.1", 19092)
    assert config.advertised_kafka_address == "127.0.0.1:19092"
    config = NodeConfig.from_properties(
        {
            **BASE,
            "listeners": listeners.replace("KAFKA://127.0.0.1", "KAFKA://0.0.0.0"),
            "advertised.listeners": "HTTP://127.0.0.1:9092,KAFKA://kafka-1.lan:19092",
        }
    )
    assert config.kafka_host == "0.0.0.0"
    assert config.advertised_kafka_address == "kafka-1.lan:19092"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"listeners": BASE["listeners"] + ",KAFKA://0.0.0.0:19092"},
            "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0",
        ),
        (
            {"advertised.listeners": "KAFKA://h:19092"},
            "advertised.listeners listener names must be equal to or a subset of the ones "
            "defined in listeners. Found KAFKA",
        ),
        (
            {"listeners": BASE["listeners"] + ",KAFKA://127.0.0.1:9092"},
            "Each listener must have a different port",
        ),
        (
            {"listeners": BASE["listeners"] + ",KAFKA://127.0.0.1:19092",
             "process.roles": "controller"},
            "must only contain KRaft controller listeners",
        ),
        (
            {"listeners": BASE["listeners"] + ",KAFKA://127.0.0.1:19092",
             "listener.security.protocol.map": "KAFKA:SASL_PLAINTEXT"},
            "http.users.file: required with KAFKA:SASL_PLAINTEXT",
        ),
        (
            {"listeners": BASE["listeners"] + ",KAFKA://127.0.0.1:19092",
             "listener.security.protocol.map": "KAFKA:SSL"},
            "ssl.keystore.location: required with KAFKA:SSL",
        ),
        (
            {"listeners": BASE["listeners"] + ",KAFKA://127.0.0.1:19092",
             "listener.security.protocol.map": "KAFKA:SASL_SSL",
             "http.users.file": "/tmp/users"},
            "ssl.keystore.location: required with KAFKA:SASL_SSL",
        ),
        ({"sasl.enabled.mechanisms": "GSSAPI"}, "sasl.enabled.mechanisms: GSSAPI is not built"),
        (
            {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512"},
            "sasl.enabled.mechanisms: SCRAM-SHA-512 is not built",
        ),
        ({"sasl.enabled.mechanisms": "OAUTHBEARER"}, "OAUTHBEARER is not built"),
        ({"sasl.enabled.mechanisms": "plain"}, "unknown mechanism 'plain'"),
        ({"sasl.enabled.mechanisms": " , "}, "name at least one of PLAIN, SCRAM-SHA-256"),
        (
            {"connection.failed.authentication.delay.ms": "-1"},
            "connection.failed.authentication.delay.ms: must be at least 0",
        ),
        (
            {"listeners": BASE["listeners"] + ",KAFKA://127.0.0.1:0"},
            "expected host:port",
        ),
    ],
)  # fmt: skip
def test_bad_kafka_listener_settings_are_refused_with_kafkas_words(
    props: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        NodeConfig.from_properties({**BASE, **props})


def test_kafka_plaintext_is_the_default_and_may_be_named() -> None:
    config = NodeConfig.from_properties(
        {
            **BASE,
            "listeners": BASE["listeners"] + ",KAFKA://127.0.0.1:19092",
            "listener.security.protocol.map": "HTTP:PLAINTEXT,CONTROLLER:PLAINTEXT,KAFKA:PLAINTEXT",
        }
    )
    assert config.has_kafka_listener


def test_kafka_sasl_and_tls_settings_are_read_with_their_defaults() -> None:
    kafka = BASE["listeners"] + ",KAFKA://127.0.0.1:19092"
    config = load(listeners=kafka)
    assert config.kafka_security_protocol == "PLAINTEXT"
    assert config.sasl_enabled_mechanisms == ("PLAIN", "SCRAM-SHA-256")
    assert config.failed_authentication_delay_ms == 100
    assert not config.kafka_tls and not config.kafka_sasl
    config = NodeConfig.from_properties(
        {
            **BASE,
            "listeners": kafka,
            "listener.security.protocol.map": "HTTP:PLAINTEXT,KAFKA:SASL_SSL",
            "ssl.keystore.location": "/tmp/keystore.pem",
            "http.users.file": "/tmp/users",
            "sasl.enabled.mechanisms": "SCRAM-SHA-256",
            "connection.failed.authentication.delay.ms": "0",
        }
    )
    assert config.kafka_security_protocol == "SASL_SSL" and config.security_protocol == "PLAINTEXT"
    assert config.kafka_tls and config.kafka_sasl and not config.tls and not config.sasl
    assert config.sasl_enabled_mechanisms == ("SCRAM-SHA-256",)
    assert config.failed_authentication_delay_ms == 0


# -- the classic group protocol's settings (Kafka's group.*) ------------------------------------


def test_the_classic_group_settings_default_to_kafka_s_but_the_group_size() -> None:
    groups = load().groups
    assert groups.initial_rebalance_delay_ms == 3000
    assert (groups.classic_min_session_timeout_ms, groups.classic_max_session_timeout_ms) == (
        6000,
        1_800_000,
    )
    assert groups.max_size == 1000  # Kafka's is Int.MaxValue: ours is the coordinator's limit
    assert classic_settings(groups) == ClassicSettings()


def test_the_classic_group_settings_reach_the_group_coordinator() -> None:
    config = NodeConfig.from_properties(
        {
            **BASE,
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "2000",
            "group.max.session.timeout.ms": "60000",
            "group.max.size": "10",
        }
    )
    assert classic_settings(config.groups) == ClassicSettings(
        initial_rebalance_delay_ms=0,
        min_session_timeout_ms=2000,
        max_session_timeout_ms=60000,
        max_size=10,
    )
    # The consumer protocol's own range is another setting (group.consumer.*).
    assert config.groups.min_session_timeout_ms == 6000


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"group.initial.rebalance.delay.ms": "-1"}, "must be at least 0"),
        ({"group.min.session.timeout.ms": "0"}, "must be at least 1"),
        (
            {"group.min.session.timeout.ms": "7000", "group.max.session.timeout.ms": "6500"},
            "group.max.session.timeout.ms: must be at least 7000",
        ),
        ({"group.max.size": "0"}, "must be at least 1"),
        ({"group.max.size": "2147483647"}, "group.max.size: must be at most 1000"),
        ({"group.initial.rebalance.delay.ms": "3s"}, "expected an integer"),
    ],
)
def test_a_bad_classic_group_setting_is_refused_by_name(
    props: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        NodeConfig.from_properties({**BASE, **props})


# -- the listeners as a broker's configs describe them ------------------------------------------


def test_the_described_listeners_include_the_kafka_listener_when_there_is_one() -> None:
    plain = load()
    assert plain.listeners == "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert plain.advertised_listeners == "HTTP://127.0.0.1:9092"
    config = NodeConfig.from_properties(
        {
            **BASE,
            "listeners": BASE["listeners"] + ",KAFKA://0.0.0.0:19092",
            "advertised.listeners": "HTTP://node-1.lan:9092,KAFKA://kafka-1.lan:19092",
        }
    )
    assert config.listeners == (
        "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,KAFKA://0.0.0.0:19092"
    )
    assert config.advertised_listeners == "HTTP://node-1.lan:9092,KAFKA://kafka-1.lan:19092"


def test_a_broker_only_node_describes_no_controller_listener() -> None:
    config = NodeConfig.from_properties(
        {
            "node.id": "4",
            "process.roles": "broker",
            "controller.quorum.bootstrap.servers": "127.0.0.1:9093",
            "listeners": "HTTP://127.0.0.1:9100,KAFKA://127.0.0.1:19100",
        }
    )
    assert config.listeners == "HTTP://127.0.0.1:9100,KAFKA://127.0.0.1:19100"
    assert config.advertised_listeners == "HTTP://127.0.0.1:9100,KAFKA://127.0.0.1:19100"
