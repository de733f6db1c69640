"""kraft-get-offsets and kraft-configs: Kafka's checks of the command line and Kafka's lines
(pure: no sockets)."""

from __future__ import annotations

import pytest

from client.admin import TopicPartition
from client.tools import common
from client.tools import configs as cfg
from client.tools import get_offsets as go

B = ["--bootstrap-server", "localhost:9092"]


# -- kraft-get-offsets ----------------------------------------------------------------------------


def test_time_specs_are_kafkas() -> None:
    assert go.parse_time("-1") == "latest"
    assert go.parse_time("latest") == "latest"
    assert go.parse_time("-2") == "earliest"
    assert go.parse_time("1700000000000") == 1700000000000
    with pytest.raises(go.TerseError, match="Malformed time argument yesterday"):
        go.parse_time("yesterday")
    with pytest.raises(go.TerseError, match="max-timestamp"):
        go.parse_time("-3")


def test_topic_partitions_rules_select_as_kafka() -> None:
    cmd = go.parse_command([*B, "--topic-partitions", "t.*:1-3,u:0,:5-"])
    counts = {"t1": 4, "u": 2, "v": 7}
    assert [str(tp) for tp in go.select(cmd, counts)] == [
        "t1-1",
        "t1-2",
        "u-0",
        "v-5",
        "v-6",
    ]


def test_topic_and_partitions_select_as_kafka() -> None:
    cmd = go.parse_command([*B, "--topic", "a,b", "--partitions", "0,2"])
    assert [str(tp) for tp in go.select(cmd, {"a": 3, "b": 1, "ab": 3})] == ["a-0", "a-2", "b-0"]


def test_topic_partitions_cannot_go_with_topic() -> None:
    with pytest.raises(go.TerseError, match="--topic-partitions cannot be used with --topic"):
        go.parse_command([*B, "--topic-partitions", "t", "--topic", "t"])


def test_bad_partitions_and_rules_are_kafkas_errors() -> None:
    with pytest.raises(go.TerseError, match="--partitions expects a comma separated list"):
        go.parse_command([*B, "--partitions", "0,x"])
    with pytest.raises(go.TerseError, match="Invalid rule specification: t:a"):
        go.parse_command([*B, "--topic-partitions", "t:a"])


def test_lines_are_sorted_as_kafkas_treemap_and_skip_unknown_offsets() -> None:
    offsets: dict[TopicPartition, int | None] = {
        TopicPartition("t", 2): 20,
        TopicPartition("t", 10): 100,
        TopicPartition("t", 1): None,
    }
    # Kafka sorts by TopicPartition.toString: "t-10" before "t-2".
    assert go.offset_lines(offsets) == ["t:10:100", "t:2:20"]


def test_bootstrap_is_required() -> None:
    with pytest.raises(common.UsageError, match="bootstrap-server"):
        go.parse_command(["--topic", "t"])


# -- kraft-configs --------------------------------------------------------------------------------


def usage_error(argv: list[str]) -> str:
    with pytest.raises(common.UsageError) as info:
        cfg.parse_command(argv)
    return str(info.value)


def test_add_config_splits_outside_brackets_and_drops_them() -> None:
    assert cfg.parse_add_config("retention.ms=1000, cleanup.policy=[delete,compact] ,k = v") == {
        "retention.ms": "1000",
        "cleanup.policy": "delete,compact",
        "k": "v",
    }
    with pytest.raises(common.UsageError, match='in the format "key=val"'):
        cfg.parse_add_config("retention.ms")
    with pytest.raises(common.UsageError, match="Invalid character found for config key: a b"):
        cfg.parse_add_config("a b=1")


def test_entity_shortcuts_and_generic_flags_give_the_same_command() -> None:
    generic = cfg.parse_command(
        [*B, "--entity-type", "topics", "--entity-name", "t", "--alter", "--add-config", "a=1"]
    )
    short = cfg.parse_command([*B, "--topic", "t", "--alter", "--add-config", "a=1"])
    assert generic == short
    assert generic.add == (("a", "1"),)


def test_delete_config_takes_commas_and_repeats() -> None:
    cmd = cfg.parse_command(
        [*B, "--topic", "t", "--alter", "--delete-config", "a,b", "--delete-config", "c"]
    )
    assert cmd.delete == ("a", "b", "c")


def test_kafkas_checks_of_the_command_line() -> None:
    assert usage_error([*B, "--topic", "t"]) == (
        "Command must include exactly one action: --describe, --alter"
    )
    assert usage_error([*B, "--describe"]) == "At least one entity type must be specified"
    assert usage_error([*B, "--topic", "t", "--alter"]) == (
        "At least one of --add-config, --add-config-file, or --delete-config must be specified "
        "with --alter"
    )
    assert usage_error([*B, "--entity-type", "topics", "--alter", "--add-config", "a=1"]) == (
        "An entity name must be specified with --alter of topics"
    )
    assert usage_error([*B, "--entity-type", "topics", "--topic", "t", "--describe"]) == (
        "--entity-{type,name,default} should not be used in conjunction with specific entity flags"
    )
    assert usage_error([*B, "--entity-type", "brokers", "--entity-name", "x", "--describe"]) == (
        "The entity name for brokers must be a valid integer broker id, but it is: x"
    )
    assert usage_error([*B, "--entity-type", "topics", "--entity-default", "--describe"]) == (
        "--entity-default must not be specified with --describe of topics"
    )


def test_other_entity_types_and_the_broker_default_alter_are_refused_by_name() -> None:
    assert "users is not supported" in usage_error([*B, "--entity-type", "users", "--describe"])
    assert "Invalid entity type widgets" in usage_error(
        [*B, "--entity-type", "widgets", "--describe"]
    )
    assert "--user is not supported" in usage_error([*B, "--user", "u", "--describe"])
    assert usage_error([*B, "--broker-defaults", "--alter", "--add-config", "a=1"]).startswith(
        "--alter of the brokers' default entity is not supported"
    )


def test_a_brokers_throttle_rates_are_altered_by_name() -> None:
    """The server decides which broker configs are dynamic; the tool sends what it is given."""
    cmd = cfg.parse_command(
        [
            *B,
            "--entity-type",
            "brokers",
            "--entity-name",
            "2",
            "--alter",
            "--add-config",
            "leader.replication.throttled.rate=1000,follower.replication.throttled.rate=2000",
            "--delete-config",
            "a",
        ]
    )
    assert (cmd.entity_type, cmd.entity_name, cmd.action) == ("brokers", "2", "alter")
    assert dict(cmd.add) == {
        "leader.replication.throttled.rate": "1000",
        "follower.replication.throttled.rate": "2000",
    }
    assert cmd.delete == ("a",)


def test_entry_line_is_kafkas() -> None:
    entry = {
        "name": "retention.ms",
        "value": "1000",
        "sensitive": False,
        "source": "DYNAMIC_TOPIC_CONFIG",
        "synonyms": [
            {"name": "retention.ms", "value": "1000", "source": "DYNAMIC_TOPIC_CONFIG"},
            {"name": "log.retention.ms", "value": "604800000", "source": "DEFAULT_CONFIG"},
        ],
    }
    assert cfg.entry_line(entry) == (
        "  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000, "
        "DEFAULT_CONFIG:log.retention.ms=604800000}"
    )
    secret: dict[str, object] = {
        "name": "ssl.key.password",
        "value": None,
        "sensitive": True,
        "synonyms": [],
    }
    assert cfg.entry_line(secret) == "  ssl.key.password=null sensitive=true synonyms={}"


def test_describe_shows_dynamic_configs_unless_all() -> None:
    entries = [
        {"name": "b", "value": "2", "source": "DEFAULT_CONFIG", "synonyms": []},
        {"name": "a", "value": "1", "source": "DYNAMIC_TOPIC_CONFIG", "synonyms": []},
    ]
    assert cfg.describe_lines("topics", "t", entries, describe_all=False) == [
        "Dynamic configs for topic t are:",
        "  a=1 sensitive=false synonyms={}",
    ]
    assert cfg.describe_lines("topics", "t", entries, describe_all=True)[0] == (
        "All configs for topic t are:"
    )
    assert cfg.describe_lines("brokers", "", entries, describe_all=False) == [
        "Default configs for brokers in the cluster are:"
    ]


def test_cleanup_policy_switches_with_kafkas_bracket_syntax_and_back_with_delete_config() -> None:
    both = cfg.parse_command(
        [
            *B,
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "tables",
            "--add-config",
            "cleanup.policy=[compact,delete],min.cleanable.dirty.ratio=0.1",
        ]
    )
    assert (both.entity_type, both.entity_name) == ("topics", "tables")
    assert dict(both.add) == {
        "cleanup.policy": "compact,delete",
        "min.cleanable.dirty.ratio": "0.1",
    }
    back = cfg.parse_command(
        [
            *B,
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "tables",
            "--delete-config",
            "cleanup.policy",
        ]
    )
    assert (back.add, back.delete) == ((), ("cleanup.policy",))
