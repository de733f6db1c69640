"""Kafka consumer properties read into ConsumerConfig (client/consumer_config.py)."""

from __future__ import annotations

import pytest

from client.consumer_config import ConsumerConfig, ConsumerConfigError

BS = {"bootstrap.servers": "127.0.0.1:9092"}


def test_defaults_are_kafkas() -> None:
    cfg = ConsumerConfig.from_properties({**BS, "group.id": "g"})
    assert (cfg.auto_offset_reset, cfg.enable_auto_commit, cfg.auto_commit_interval_ms) == (
        "latest",
        True,
        5000,
    )
    assert (cfg.max_poll_records, cfg.fetch_max_wait_ms, cfg.max_partition_fetch_bytes) == (
        500,
        500,
        1024 * 1024,
    )
    assert cfg.session_timeout_ms is None and cfg.group_remote_assignor is None
    assert cfg.isolation_level == "read_uncommitted" and cfg.security.protocol == "PLAINTEXT"


def test_without_a_group_nothing_is_committed_automatically() -> None:
    assert not ConsumerConfig.from_properties(BS).enable_auto_commit
    with pytest.raises(ConsumerConfigError, match="enable.auto.commit cannot be true"):
        ConsumerConfig.from_properties({**BS, "enable.auto.commit": "true"})


def test_python_values_and_strings_are_both_accepted() -> None:
    cfg = ConsumerConfig.from_properties(
        {**BS, "group.id": "g", "enable.auto.commit": False, "max.poll.records": 7}
    )
    assert (cfg.enable_auto_commit, cfg.max_poll_records) == (False, 7)
    cfg = ConsumerConfig.from_properties(
        {**BS, "group.id": "g", "group.remote.assignor": "RANGE", "session.timeout.ms": "6000"}
    )
    assert (cfg.group_remote_assignor, cfg.session_timeout_ms) == ("range", 6000)


def test_both_isolation_levels_are_accepted_and_read_the_same_records() -> None:
    for level in ("read_committed", "read_uncommitted"):
        assert ConsumerConfig.from_properties({**BS, "isolation.level": level}).isolation_level


@pytest.mark.parametrize(
    "props, message",
    [
        ({"fetch.max.bytez": "1"}, "fetch.max.bytez is not a known consumer config"),
        ({"group.instance.id": "i"}, "group.instance.id is not supported: static membership"),
        ({"value.deserializer": "x"}, "value.deserializer is not supported"),
        ({"partition.assignment.strategy": "x"}, "use group.remote.assignor"),
        (
            {"auto.offset.reset": "smallest"},
            "Invalid value smallest for configuration auto.offset.reset: String must be one of: "
            "earliest, latest, none",
        ),
        ({"max.poll.records": "0"}, "Invalid value 0 for configuration max.poll.records"),
        ({"max.poll.records": "many"}, "max.poll.records: Not a number"),
        ({"enable.auto.commit": "yes"}, "Expected value to be either true or false"),
        ({"fetch.min.bytes": "1024"}, "fetch.min.bytes other than 1 is not supported"),
        ({"group.protocol": "classic"}, "group.protocol=classic is not supported"),
        ({"group.remote.assignor": "sticky"}, "String must be one of: uniform, range"),
        ({"isolation.level": "serializable"}, "configuration isolation.level"),
        ({"group.id": "g" * 256}, "group.id must be at most 255 characters"),
        ({"ssl.keystore.location": "/k"}, "ssl.keystore.location is not supported"),
    ],
)
def test_a_bad_or_unknown_setting_is_refused_by_name(props: dict[str, str], message: str) -> None:
    with pytest.raises(ConsumerConfigError, match=message.replace(".", r"\.")):
        ConsumerConfig.from_properties({**BS, **props})


def test_bootstrap_servers_is_required() -> None:
    with pytest.raises(ConsumerConfigError, match="bootstrap.servers"):
        ConsumerConfig.from_properties({"group.id": "g"})


def test_security_properties_reach_the_client_security() -> None:
    cfg = ConsumerConfig.from_properties(
        {**BS, "security.protocol": "SASL_PLAINTEXT", "sasl.username": "u", "sasl.password": "p"}
    )
    assert (cfg.security.protocol, cfg.security.username) == ("SASL_PLAINTEXT", "u")
