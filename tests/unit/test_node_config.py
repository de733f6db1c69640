"""Node configuration: every mistake names its setting."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from server.config import ConfigError, NodeConfig
from storage.clean_map import ENTRY_OVERHEAD_BYTES

GOOD = {
    "node.id": "1",
    "process.roles": "broker,controller",
    "controller.quorum.voters": "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097",
    "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
    "log.dirs": "/tmp/x/kraft-combined-logs",
}


def with_(**changes: str | None) -> dict[str, str]:
    props = dict(GOOD)
    for key, value in changes.items():
        key = key.replace("_", ".")
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    return props


def test_good_config_is_read_with_kafka_defaults() -> None:
    config = NodeConfig.from_properties(dict(GOOD))
    assert config.node_id == 1
    assert config.http_port == 9092 and config.raft_port == 9093
    assert config.advertised_http_url == "http://127.0.0.1:9092"
    assert config.log_dir == Path("/tmp/x/kraft-combined-logs")
    assert set(config.voters) == {1, 2, 3}
    assert config.num_partitions == 1 and config.default_replication_factor == 1


def test_log_dir_defaults_to_the_labs_directory() -> None:
    assert NodeConfig.from_properties(with_(log_dirs=None)).log_dir == Path(
        "/tmp/kraft-combined-logs"
    )


def test_broker_topic_defaults_become_topic_configs() -> None:
    config = NodeConfig.from_properties(
        {
            **GOOD,
            "log.retention.hours": "1",
            "min.insync.replicas": "2",
            "log.segment.bytes": "1024",
            "log.flush.interval.messages": "10000",
            "log.flush.interval.ms": "1000",
        }
    )
    assert config.topic_defaults == {
        "retention.ms": "3600000",
        "min.insync.replicas": "2",
        "segment.bytes": "1024",
        "flush.messages": "10000",
        "flush.ms": "1000",
    }


@pytest.mark.parametrize(
    ("props", "setting"),
    [
        (with_(node_id=None), "node.id"),
        (with_(node_id="one"), "node.id"),
        (with_(process_roles="broker,zookeeper"), "process.roles"),
        ({**GOOD, "controller.quorum.voters": "2@127.0.0.1:9095"}, "controller.quorum.voters"),
        ({**GOOD, "controller.quorum.voters": "1@127.0.0.1:9999"}, "controller.quorum.voters"),
        (
            {**GOOD, "controller.quorum.voters": "1@127.0.0.1:9093,1@127.0.0.1:9095"},
            "controller.quorum.voters",
        ),
        ({**GOOD, "controller.quorum.voters": "x@127.0.0.1:9093"}, "controller.quorum.voters"),
        (with_(listeners="HTTP://127.0.0.1:9092"), "listeners"),
        (with_(listeners="HTTP://127.0.0.1:notaport,CONTROLLER://127.0.0.1:9093"), "listeners"),
        (
            {
                **GOOD,
                "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://0.0.0.0:9093",
                "controller.quorum.voters": "1@0.0.0.0:9093",
            },
            "listeners",
        ),
        (with_(log_dirs="/a,/b"), "log.dirs"),
        ({**GOOD, "num.partitions": "0"}, "num.partitions"),
        ({**GOOD, "log.retention.ms": "soon"}, "log.retention.ms"),
        ({**GOOD, "log.retension.ms": "1"}, "log.retension.ms"),
        ({**GOOD, "log.flush.interval.messages": "0"}, "log.flush.interval.messages"),
        ({**GOOD, "log.flush.interval.messages": "-1"}, "log.flush.interval.messages"),
        ({**GOOD, "log.flush.interval.ms": str(2**63)}, "log.flush.interval.ms"),
        ({**GOOD, "log.segment.bytes": "13"}, "log.segment.bytes"),
        ({**GOOD, "log.segment.bytes": "3000000000"}, "log.segment.bytes"),
        ({**GOOD, "peer.2.http.dial": "nowhere"}, "peer.2.http.dial"),
        ({**GOOD, "auto.leader.rebalance.enable": "yes"}, "auto.leader.rebalance.enable"),
        (
            {**GOOD, "leader.imbalance.check.interval.seconds": "0"},
            "leader.imbalance.check.interval.seconds",
        ),
        (
            {**GOOD, "leader.imbalance.per.broker.percentage": "101"},
            "leader.imbalance.per.broker.percentage",
        ),
        (
            {**GOOD, "leader.imbalance.per.broker.percentage": "-1"},
            "leader.imbalance.per.broker.percentage",
        ),
        ({**GOOD, "log.cleanup.policy": "compress"}, "log.cleanup.policy"),
        ({**GOOD, "log.cleanup.policy": ""}, "log.cleanup.policy"),
        ({**GOOD, "log.cleaner.min.cleanable.ratio": "1.01"}, "log.cleaner.min.cleanable.ratio"),
        ({**GOOD, "log.cleaner.min.cleanable.ratio": "half"}, "log.cleaner.min.cleanable.ratio"),
        ({**GOOD, "log.cleaner.delete.retention.ms": "-1"}, "log.cleaner.delete.retention.ms"),
        ({**GOOD, "log.cleaner.min.compaction.lag.ms": "-1"}, "log.cleaner.min.compaction.lag.ms"),
        ({**GOOD, "log.cleaner.max.compaction.lag.ms": "0"}, "log.cleaner.max.compaction.lag.ms"),
        (
            {
                **GOOD,
                "log.cleaner.min.compaction.lag.ms": "10",
                "log.cleaner.max.compaction.lag.ms": "9",
            },
            "log.cleaner.min.compaction.lag.ms",
        ),
        ({**GOOD, "log.cleaner.enable": "yes"}, "log.cleaner.enable"),
        ({**GOOD, "log.cleaner.threads": "-1"}, "log.cleaner.threads"),
        ({**GOOD, "log.cleaner.threads": "two"}, "log.cleaner.threads"),
        (
            {**GOOD, "log.cleaner.io.max.bytes.per.second": "0"},
            "log.cleaner.io.max.bytes.per.second",
        ),
        (
            {**GOOD, "log.cleaner.io.max.bytes.per.second": "nan"},
            "log.cleaner.io.max.bytes.per.second",
        ),
        (
            {**GOOD, "log.cleaner.io.max.bytes.per.second": "1e999"},
            "log.cleaner.io.max.bytes.per.second",
        ),
        ({**GOOD, "log.cleaner.dedupe.buffer.size": "-1"}, "log.cleaner.dedupe.buffer.size"),
        ({**GOOD, "log.cleaner.io.buffer.size": str(2**31)}, "log.cleaner.io.buffer.size"),
        ({**GOOD, "log.cleaner.backoff.ms": "-1"}, "log.cleaner.backoff.ms"),
        ({**GOOD, "offsets.topic.segment.bytes": "13"}, "offsets.topic.segment.bytes"),
        ({**GOOD, "offsets.topic.segment.bytes": str(2**31)}, "offsets.topic.segment.bytes"),
    ],
)
def test_a_bad_setting_is_refused_with_its_name(props: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        NodeConfig.from_properties(props)
    assert str(caught.value).startswith(setting + ":"), str(caught.value)


def test_peer_dial_overrides_are_read() -> None:
    config = NodeConfig.from_properties(
        {**GOOD, "peer.2.controller.dial": "127.0.0.1:20000", "peer.2.http.dial": "127.0.0.1:20001"}
    )
    assert config.raft_dial == {2: ("127.0.0.1", 20000)}
    assert config.http_dial == {2: ("127.0.0.1", 20001)}


def test_preferred_leader_balancing_has_kafkas_defaults_and_settings() -> None:
    default = NodeConfig.from_properties(dict(GOOD))
    assert default.auto_leader_rebalance_enable is True
    assert default.leader_imbalance_check_interval_s == 300
    assert default.leader_imbalance_per_broker_percentage == 10
    config = NodeConfig.from_properties(
        {
            **GOOD,
            "auto.leader.rebalance.enable": "FALSE",
            "leader.imbalance.check.interval.seconds": "2",
            "leader.imbalance.per.broker.percentage": "0",
        }
    )
    assert config.auto_leader_rebalance_enable is False
    assert config.leader_imbalance_check_interval_s == 2
    assert config.leader_imbalance_per_broker_percentage == 0


# -- security and limits ------------------------------------------------------------------------


def test_security_and_limits_default_to_an_open_plaintext_node_with_kafkas_limits() -> None:
    config = NodeConfig.from_properties(dict(GOOD))
    assert config.security_protocol == "PLAINTEXT" and not config.tls and not config.sasl
    assert not config.authorizer_enabled and config.super_users == frozenset()
    assert config.socket_request_max_bytes == 100 * 1024 * 1024
    assert config.queued_max_request_bytes >= config.socket_request_max_bytes
    assert config.connections_max_idle_ms == 600_000


def test_sasl_ssl_with_its_files_and_the_standard_authorizer() -> None:
    config = NodeConfig.from_properties(
        {
            **GOOD,
            "listener.security.protocol.map": "HTTP:SASL_SSL,CONTROLLER:PLAINTEXT",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": "/etc/kraft/node1.pem",
            "ssl.truststore.location": "/etc/kraft/ca.pem",
            "http.users.file": "/etc/kraft/users",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin;User:ops",
        }
    )
    assert config.tls and config.sasl
    assert config.advertised_http_url == "https://127.0.0.1:9092"
    assert config.ssl_keystore_location == Path("/etc/kraft/node1.pem")
    assert config.users_file == Path("/etc/kraft/users")
    assert config.authorizer_enabled
    assert config.super_users == {"User:admin", "User:ops"}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"listener.security.protocol.map": "HTTP:TLS"}, "listener.security.protocol.map"),
        ({"listener.security.protocol.map": "CONTROLLER:SSL"}, "listener.security.protocol.map"),
        ({"listener.security.protocol.map": "HTTP:SSL"}, "ssl.keystore.location"),
        ({"listener.security.protocol.map": "HTTP:SASL_PLAINTEXT"}, "http.users.file"),
        ({"ssl.keystore.type": "JKS"}, "ssl.keystore.type"),
        ({"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"}, "authorizer"),
        ({"super.users": "admin"}, "super.users"),
        (
            {
                "socket.request.max.bytes": "1048576",
                "http.max.request.bytes": "1048576",
                "message.max.bytes": "2097152",
            },
            "message.max.bytes",
        ),
        ({"socket.request.max.bytes": "1048576"}, "http.max.request.bytes"),
        ({"max.connections": "0"}, "max.connections"),
        ({"queued.max.request.bytes": "1024"}, "queued.max.request.bytes"),
    ],
)
def test_a_wrong_security_or_limit_setting_is_named(changes: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        NodeConfig.from_properties({**GOOD, **changes})


# -- compaction and the log cleaner -----------------------------------------------------------


def test_the_cleaner_has_kafkas_defaults() -> None:
    config = NodeConfig.from_properties(dict(GOOD))
    cleaner = config.cleaner
    assert (cleaner.enable, cleaner.threads, cleaner.backoff_ms) == (True, 1, 15000)
    assert cleaner.io_max_bytes_per_second == sys.float_info.max  # Java's Double.MAX_VALUE
    assert not cleaner.throttled and cleaner.runs
    assert (cleaner.dedupe_buffer_size, cleaner.io_buffer_size) == (134217728, 524288)
    assert config.groups.offsets_topic_segment_bytes == 104857600
    assert config.topic_defaults == {}


def test_the_cleaners_settings_are_read() -> None:
    cleaner = NodeConfig.from_properties(
        {
            **GOOD,
            "log.cleaner.enable": "false",
            "log.cleaner.threads": "2",
            "log.cleaner.io.max.bytes.per.second": "1048576.5",
            "log.cleaner.dedupe.buffer.size": "1048576",
            "log.cleaner.io.buffer.size": "65536",
            "log.cleaner.backoff.ms": "100",
        }
    ).cleaner
    assert (cleaner.enable, cleaner.runs, cleaner.threads) == (False, False, 2)
    assert cleaner.io_max_bytes_per_second == 1048576.5 and cleaner.throttled
    assert (cleaner.dedupe_buffer_size, cleaner.io_buffer_size, cleaner.backoff_ms) == (
        1048576,
        65536,
        100,
    )
    assert not NodeConfig.from_properties({**GOOD, "log.cleaner.threads": "0"}).cleaner.runs


def test_a_dedupe_buffer_too_small_for_one_record_per_thread_is_refused_in_kafkas_words() -> None:
    """Kafka's cleaner thread refuses a map that cannot hold one record; each thread's share
    must pass the offset map's cost of an entry beyond its key (storage/clean_map.py)."""
    share = ENTRY_OVERHEAD_BYTES
    small = {
        **GOOD,
        "log.cleaner.dedupe.buffer.size": str(2 * share + 1),
        "log.cleaner.threads": "2",
    }
    with pytest.raises(ConfigError) as caught:
        NodeConfig.from_properties(small)
    assert "offset map is too small to fit in even a single message" in str(caught.value)
    assert NodeConfig.from_properties(
        {**small, "log.cleaner.dedupe.buffer.size": str(2 * share + 2)}
    )
    # A cleaner that does not run needs no map.
    assert NodeConfig.from_properties({**small, "log.cleaner.enable": "false"})


def test_the_compaction_topic_defaults_become_topic_configs() -> None:
    config = NodeConfig.from_properties(
        {
            **GOOD,
            "log.cleanup.policy": "delete, compact",
            "log.cleaner.min.cleanable.ratio": "0.1",
            "log.cleaner.delete.retention.ms": "1000",
            "log.cleaner.min.compaction.lag.ms": "5",
            "log.cleaner.max.compaction.lag.ms": "5",
        }
    )
    assert config.topic_defaults == {
        "cleanup.policy": "compact,delete",
        "min.cleanable.dirty.ratio": "0.1",
        "delete.retention.ms": "1000",
        "min.compaction.lag.ms": "5",
        "max.compaction.lag.ms": "5",
    }
