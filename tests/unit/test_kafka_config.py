"""The KAFKA listener's settings (server/config.py), with Kafka's messages for bad values."""

from __future__ import annotations

import pytest

from server.config import ConfigError, NodeConfig

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
            "KAFKA:SASL_PLAINTEXT is not built yet",
        ),
        (
            {"listeners": BASE["listeners"] + ",KAFKA://127.0.0.1:19092",
             "listener.security.protocol.map": "KAFKA:SSL"},
            "KAFKA:SSL is not built yet",
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
