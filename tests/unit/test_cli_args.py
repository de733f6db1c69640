"""The kraft-* tools without a cluster: flags, refusals, Kafka's messages and output lines.

The async parts run against in-memory fakes of the client and of stdin (no sockets).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from client.consumer_client import FetchedBatches
from client.protocol import (
    OFFSET_OUT_OF_RANGE,
    TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC,
    ApiError,
    topic_name_problem,
)
from client.tools import common, console_consumer, console_producer, topics
from client.tools.console_consumer import ConsumedRecord, FormatterConfig, format_record
from client.tools.line_reader import LineError, LineSplitter, ReaderConfig, decode_line, parse_line
from tests.batch_bodies import log_answer

BS = ["--bootstrap-server", "127.0.0.1:9092"]
TOOLS = {
    "kraft-topics": topics,
    "kraft-console-producer": console_producer,
    "kraft-console-consumer": console_consumer,
}
# The smallest command line each tool accepts, to which a refused flag is added.
MINIMAL = {
    "kraft-topics": [*BS, "--list"],
    "kraft-console-producer": [*BS, "--topic", "t"],
    "kraft-console-consumer": [*BS, "--topic", "t"],
}


def usage_error(parse: Any, argv: list[str]) -> str:
    with pytest.raises(common.UsageError) as info:
        parse(argv)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Common rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tool, flag",
    [(tool, flag) for tool, flags in common.REFUSED_FLAGS.items() for flag in flags],
)
def test_kafka_flag_we_lack_is_refused_by_name_with_exit_1(
    tool: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = TOOLS[tool].main([*MINIMAL[tool], flag, "value"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(flag + " is not supported")
    assert err.count("\n") == 1


def test_zookeeper_refusal_points_to_bootstrap_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert topics.main(["--zookeeper", "localhost:2181", "--list"]) == 1
    assert capsys.readouterr().err == (
        "--zookeeper is not supported: this cluster has no ZooKeeper; use --bootstrap-server\n"
    )


@pytest.mark.parametrize("tool", list(TOOLS))
def test_unknown_flag_is_an_argparse_error_naming_it_with_exit_2(
    tool: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert TOOLS[tool].main([*MINIMAL[tool], "--no-such-flag"]) == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


@pytest.mark.parametrize("tool", list(TOOLS))
def test_abbreviated_flag_is_not_taken_for_a_longer_one(
    tool: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert TOOLS[tool].main([*MINIMAL[tool], "--bootstrap", "x:1"]) == 2
    assert "--bootstrap" in capsys.readouterr().err


@pytest.mark.parametrize("tool", list(TOOLS))
def test_bootstrap_without_a_port_is_refused(tool: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a if a != "127.0.0.1:9092" else "localhost" for a in MINIMAL[tool]]
    assert TOOLS[tool].main(argv) == 1
    assert "host:port" in capsys.readouterr().err


def test_key_values_split_at_the_first_equals_sign() -> None:
    assert common.parse_key_values(["a=b=c", "k= v", "e="]) == {"a": "b=c", "k": " v", "e": ""}


def test_key_value_without_equals_sign_is_refused() -> None:
    with pytest.raises(common.UsageError, match="Invalid command line properties: nokey"):
        common.parse_key_values(["ok=1", "nokey"])


# ---------------------------------------------------------------------------------------------
# kraft-topics: flags
# ---------------------------------------------------------------------------------------------


def test_topics_create_command_keeps_every_setting() -> None:
    cmd = topics.parse_command(
        [
            *BS,
            "--create",
            "--topic",
            "news",
            "--partitions",
            "3",
            "--replication-factor",
            "2",
            "--config",
            "retention.ms=1000",
            "--config",
            "cleanup.policy = delete",
            "--if-not-exists",
        ]
    )
    assert cmd == topics.TopicsCommand(
        action="create",
        bootstrap="127.0.0.1:9092",
        topic="news",
        partitions=3,
        replication_factor=2,
        configs={"retention.ms": "1000", "cleanup.policy": "delete"},
        if_not_exists=True,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            [*BS],
            "Command must include exactly one action: --list, --describe, --create, "
            "--alter or --delete",
        ),
        ([*BS, "--list", "--describe"], "Command must include exactly one action"),
        (["--list"], "--bootstrap-server must be specified"),
        ([*BS, "--create"], 'Missing required argument "[topic]"'),
        ([*BS, "--delete"], 'Missing required argument "[topic]"'),
        ([*BS, "--alter", "--topic", "t"], 'Missing required argument "[partitions]"'),
        (
            [*BS, "--describe", "--if-exists"],
            "--topic or --topic-id is required to describe a topic",
        ),
        (
            [*BS, "--list", "--partitions", "2"],
            'Option "[partitions]" can\'t be used with option "[list]"',
        ),
        (
            [*BS, "--alter", "--topic", "t", "--partitions", "2", "--replication-factor", "2"],
            'Option "[replication-factor]" can\'t be used with option "[alter]"',
        ),
        (
            [*BS, "--delete", "--topic", "t", "--config", "a=b"],
            'Option "[config]" can\'t be used with option "[delete]"',
        ),
        (
            [*BS, "--create", "--topic", "t", "--if-exists"],
            'Option "[if-exists]" can\'t be used with option "[create]"',
        ),
        (
            [*BS, "--delete", "--topic", "t", "--if-not-exists"],
            'Option "[if-not-exists]" can\'t be used with option "[delete]"',
        ),
        (
            [*BS, "--list", "--under-replicated-partitions"],
            'Option "[under-replicated-partitions]" can\'t be used with option "[list]"',
        ),
        (
            [*BS, "--create", "--topic", "t", "--exclude-internal"],
            'Option "[exclude-internal]" can\'t be used with option "[create]"',
        ),
        (
            [*BS, "--describe", "--topics-with-overrides", "--unavailable-partitions"],
            'Option "[unavailable-partitions]" can\'t be used with option '
            '"[topics-with-overrides]"',
        ),
        (
            [*BS, "--create", "--topic", "t", "--config", "novalue"],
            'Invalid topic config: all configs to be added must be in the format "key=val".',
        ),
        (
            [*BS, "--create", "--topic", "t", "--config", "a=b=c"],
            'Invalid topic config: all configs to be added must be in the format "key=val".',
        ),
        (
            [*BS, "--create", "--topic", "t", "--config", "a="],
            'Invalid topic config: all configs to be added must be in the format "key=val".',
        ),
    ],
)
def test_topics_command_line_is_checked_as_kafka_checks_it(argv: list[str], message: str) -> None:
    assert message in usage_error(topics.parse_command, argv)


def test_topics_without_arguments_prints_usage_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert topics.main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("usage: kraft-topics")
    assert "Create, delete, describe, or change a topic." in err


def test_topics_partitions_must_be_a_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert topics.main([*BS, "--create", "--topic", "t", "--partitions", "three"]) == 2
    assert "--partitions: invalid int value: 'three'" in capsys.readouterr().err


@pytest.mark.parametrize("partitions", [[], ["--partitions", "6"]])
def test_topics_alter_refuses_config_and_names_kraft_configs_as_kafka_does(
    partitions: list[str],
) -> None:
    """Kafka's TopicCommand refuses --alter --config (kafka-configs alters topic configs)."""
    with pytest.raises(common.UsageError) as caught:
        topics.parse_command(
            [*BS, "--alter", "--topic", "t", *partitions, "--config", "cleanup.policy=compact"]
        )
    assert str(caught.value) == (
        'Option combination "[[bootstrap-server], [config]]" can\'t be used with option '
        '"[alter]" (To alter topic configurations, the kraft-configs tool can be used.)'
    )


def test_topics_alter_needs_partitions() -> None:
    with pytest.raises(common.UsageError, match=r"Missing required argument \"\[partitions\]\""):
        topics.parse_command([*BS, "--alter", "--topic", "t"])


def test_topics_create_takes_a_compacted_policy() -> None:
    cmd = topics.parse_command(
        [*BS, "--create", "--topic", "t", "--config", "cleanup.policy=compact,delete"]
    )
    assert cmd.configs == {"cleanup.policy": "compact,delete"}


# ---------------------------------------------------------------------------------------------
# kraft-topics: rules and output
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "Topic name is illegal, it can't be empty"),
        (".", 'Topic name cannot be "." or ".."'),
        ("..", 'Topic name cannot be "." or ".."'),
        ("a" * 250, "Topic name is illegal, it can't be longer than 249 characters, topic name: "),
        (
            "my topic",
            'Topic name "my topic" is illegal, it contains a character other than ASCII '
            "alphanumerics, '.', '_' and '-'",
        ),
        ("news/0", 'Topic name "news/0" is illegal'),
    ],
)
def test_illegal_topic_names_get_kafkas_message(name: str, message: str) -> None:
    problem = topic_name_problem(name)
    assert problem is not None and problem.startswith(message)


@pytest.mark.parametrize("name", ["news", "a" * 249, "log_topic", "user-topic.v2", "A9"])
def test_legal_topic_names_pass(name: str) -> None:
    assert topic_name_problem(name) is None


def test_period_or_underscore_in_a_name_draws_kafkas_collision_warning() -> None:
    assert topics.has_collision_chars("log_topic")
    assert topics.has_collision_chars("a.b")
    assert not topics.has_collision_chars("news")


def test_topic_selection_is_a_sorted_full_match_regex_with_commas_as_alternatives() -> None:
    names = ["news", "news2", "log_topic", "__consumer_offsets", "anews"]
    assert topics.select_topics(names, None, False) == sorted(names)
    assert topics.select_topics(names, "news", False) == ["news"]
    assert topics.select_topics(names, "news.*", False) == ["news", "news2"]
    assert topics.select_topics(names, "news,log_topic", False) == ["log_topic", "news"]
    assert topics.select_topics(names, None, True) == ["anews", "log_topic", "news", "news2"]


def test_invalid_topic_regex_is_a_command_error() -> None:
    with pytest.raises(topics.CommandError, match="invalid regex"):
        topics.select_topics(["a"], "(", False)


DESC: dict[str, Any] = {
    "name": "news",
    "topic_id": "AbCdEfGhIjKlMnOpQrStUv",
    "replication_factor": 3,
    "configs": {"retention.ms": "1000", "cleanup.policy": "delete"},
    "partitions": [
        {"partition": 1, "leader": None, "leader_epoch": 2, "replicas": [2, 3, 1], "isr": [3]},
        {"partition": 0, "leader": 1, "leader_epoch": 0, "replicas": [1, 2, 3], "isr": [1, 2, 3]},
    ],
}


def test_describe_prints_kafkas_topic_line_then_partition_lines_in_order() -> None:
    assert topics.describe_lines([DESC]) == [
        "Topic: news\tTopicId: AbCdEfGhIjKlMnOpQrStUv\tPartitionCount: 2\tReplicationFactor: 3"
        "\tConfigs: cleanup.policy=delete,retention.ms=1000",
        "\tTopic: news\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2,3",
        "\tTopic: news\tPartition: 1\tLeader: none\tReplicas: 2,3,1\tIsr: 3",
    ]


def test_describe_of_a_topic_without_configs_ends_with_an_empty_configs_field() -> None:
    desc = {**DESC, "configs": {}, "partitions": DESC["partitions"][1:]}
    assert topics.describe_lines([desc])[0].endswith("\tReplicationFactor: 3\tConfigs: ")


def test_under_replicated_filter_prints_only_those_partition_lines() -> None:
    assert topics.describe_lines([DESC], under_replicated=True) == [
        "\tTopic: news\tPartition: 1\tLeader: none\tReplicas: 2,3,1\tIsr: 3",
    ]


def test_unavailable_filter_counts_a_dead_leader_as_unavailable() -> None:
    assert topics.describe_lines([DESC], unavailable=True, live_brokers={1, 2, 3}) == [
        "\tTopic: news\tPartition: 1\tLeader: none\tReplicas: 2,3,1\tIsr: 3",
    ]
    assert len(topics.describe_lines([DESC], unavailable=True, live_brokers={2, 3})) == 2


def test_topics_with_overrides_prints_only_topic_lines_of_topics_with_configs() -> None:
    plain = {**DESC, "name": "plain", "configs": {}}
    lines = topics.describe_lines([DESC, plain], with_overrides=True)
    assert len(lines) == 1 and lines[0].startswith("Topic: news\t")


def test_live_brokers_are_the_alive_unfenced_ones() -> None:
    cluster = {
        "brokers": [
            {"id": 1, "alive": True, "fenced": False},
            {"id": 2, "alive": False, "fenced": False},
            {"id": 3, "alive": True, "fenced": True},
        ]
    }
    assert topics.live_broker_ids(cluster) == {1}


def test_topic_already_exists_is_reported_in_kafkas_words() -> None:
    error = ApiError(TOPIC_ALREADY_EXISTS, "whatever the server says")
    assert topics.error_line(error, "news") == (
        "Error while executing topic command : Topic 'news' already exists."
    )


def test_other_server_errors_print_the_servers_message_after_kafkas_prefix() -> None:
    error = ApiError(UNKNOWN_TOPIC, "Topic 'x' does not exist")
    assert topics.error_line(error, "x") == (
        "Error while executing topic command : Topic 'x' does not exist"
    )


class FakeAdmin:
    """The admin calls kraft-topics makes, in memory."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.calls: list[tuple[Any, ...]] = []

    async def list_topics(self) -> list[dict[str, Any]]:
        return [{"name": n} for n in self.names]

    async def create_topic(
        self, name: str, partitions: Any, factor: Any, configs: Any
    ) -> dict[str, Any]:
        self.calls.append(("create", name, partitions, factor, configs))
        if name in self.names:
            raise ApiError(TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        self.names.append(name)
        return {}

    async def delete_topic(self, name: str) -> None:
        self.calls.append(("delete", name))
        self.names.remove(name)

    async def add_partitions(self, name: str, count: int) -> dict[str, Any]:
        self.calls.append(("add_partitions", name, count))
        return {}

    async def alter_configs(self, name: str, configs: dict[str, str]) -> dict[str, Any]:
        self.calls.append(("alter_configs", name, configs))
        return {}


def run_topics(argv: list[str], admin: FakeAdmin) -> None:
    asyncio.run(topics.execute(topics.parse_command([*BS, *argv]), admin))  # type: ignore[arg-type]


def test_create_prints_created_topic(capsys: pytest.CaptureFixture[str]) -> None:
    admin = FakeAdmin([])
    run_topics(["--create", "--topic", "news", "--partitions", "2"], admin)
    assert capsys.readouterr().out == "Created topic news.\n"
    assert admin.calls == [("create", "news", 2, None, {})]


def test_create_if_not_exists_is_silent_when_the_topic_exists(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_topics(["--create", "--topic", "news", "--if-not-exists"], FakeAdmin(["news"]))
    assert capsys.readouterr().out == ""


def test_create_of_an_existing_topic_raises_topic_already_exists() -> None:
    with pytest.raises(ApiError) as info:
        run_topics(["--create", "--topic", "news"], FakeAdmin(["news"]))
    assert info.value.code == TOPIC_ALREADY_EXISTS.code


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--partitions", "0"], "The partitions must be greater than 0"),
        (
            ["--replication-factor", "0"],
            "The replication factor must be between 1 and 32767 inclusive",
        ),
    ],
)
def test_create_refuses_counts_below_one_before_asking_the_cluster(
    argv: list[str], message: str
) -> None:
    admin = FakeAdmin([])
    with pytest.raises(common.UsageError, match=message):
        run_topics(["--create", "--topic", "news", *argv], admin)
    assert admin.calls == []


def test_create_refuses_an_illegal_name_before_asking_the_cluster() -> None:
    admin = FakeAdmin([])
    with pytest.raises(topics.CommandError, match="is illegal"):
        run_topics(["--create", "--topic", "bad name"], admin)
    assert admin.calls == []


def test_list_prints_sorted_names_one_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    run_topics(["--list"], FakeAdmin(["b", "a", "c"]))
    assert capsys.readouterr().out == "a\nb\nc\n"


def test_delete_is_silent_and_deletes_every_matching_topic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = FakeAdmin(["news", "news2", "other"])
    run_topics(["--delete", "--topic", "news.*"], admin)
    assert capsys.readouterr().out == ""
    assert admin.names == ["other"]


def test_delete_of_a_missing_topic_fails_unless_if_exists() -> None:
    with pytest.raises(common.UsageError, match="Topic 'gone' does not exist as expected"):
        run_topics(["--delete", "--topic", "gone"], FakeAdmin([]))
    run_topics(["--delete", "--topic", "gone", "--if-exists"], FakeAdmin([]))


def test_alter_grows_partitions_to_the_new_total() -> None:
    admin = FakeAdmin(["news", "news2"])
    run_topics(["--alter", "--topic", "news.*", "--partitions", "6"], admin)
    assert admin.calls == [("add_partitions", "news", 6), ("add_partitions", "news2", 6)]


# ---------------------------------------------------------------------------------------------
# kraft-console-producer: flags
# ---------------------------------------------------------------------------------------------


def test_producer_takes_broker_list_as_kafka_does() -> None:
    cmd = console_producer.parse_command(["--broker-list", "127.0.0.1:9092", "--topic", "t"])
    assert cmd.bootstrap == "127.0.0.1:9092"


def test_producer_prefers_bootstrap_server_over_broker_list() -> None:
    cmd = console_producer.parse_command(["--broker-list", "127.0.0.1:1", *BS, "--topic", "t"])
    assert cmd.bootstrap == "127.0.0.1:9092"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--topic", "t"], "Missing required option(s) [bootstrap-server]"),
        ([*BS], 'Missing required argument "[topic]"'),
        (
            [*BS, "--topic", "t", "--request-required-acks", "2"],
            "Invalid value 2 for configuration acks: String must be one of: all, -1, 0, 1",
        ),
        (
            [*BS, "--topic", "t", "--producer-property", "lingr.ms=5"],
            "Unknown producer config: lingr.ms",
        ),
        (
            [*BS, "--topic", "t", "--property", "print.key=true"],
            "--property print.key is not supported",
        ),
        (
            [*BS, "--topic", "t", "--property", "null.marker=\t"],
            "null.marker and key.separator may not be equal",
        ),
        (
            [*BS, "--topic", "t", "--property", "headers.separator=:"],
            "headers.separator and headers.key.separator may not be equal",
        ),
        ([*BS, "--topic", "t", "--property", "key.separator="], "key.separator may not be empty"),
    ],
)
def test_producer_command_line_refusals(argv: list[str], message: str) -> None:
    assert message in usage_error(console_producer.parse_command, argv)


@pytest.mark.parametrize(
    "argv, acks",
    [
        ([], "all"),
        (["--request-required-acks", "-1"], "all"),
        (["--request-required-acks", "1"], "1"),
        (["--producer-property", "acks=0"], "0"),
        (["--producer-property", "acks=0", "--request-required-acks", "1"], "1"),
    ],
)
def test_producer_acks_default_all_and_the_explicit_flag_wins(argv: list[str], acks: str) -> None:
    assert console_producer.parse_command([*BS, "--topic", "t", *argv]).acks == acks


def test_producer_reader_properties_are_kafkas() -> None:
    cmd = console_producer.parse_command(
        [*BS, "--topic", "t", "--property", "parse.key=true", "--property", "key.separator=,"]
    )
    assert cmd.reader == ReaderConfig(parse_key=True, key_separator=",")


# ---------------------------------------------------------------------------------------------
# The line reader (Kafka's LineMessageReader)
# ---------------------------------------------------------------------------------------------

KEYED = ReaderConfig(parse_key=True, key_separator=",")


def test_plain_line_is_a_value_without_key() -> None:
    assert parse_line("Good morning", 1, ReaderConfig()) == {"value": "Good morning"}


def test_keyed_line_splits_at_the_first_separator() -> None:
    assert parse_line("user1,login website", 1, KEYED) == {"key": "user1", "value": "login website"}
    assert parse_line("k,a,b", 1, KEYED) == {"key": "k", "value": "a,b"}
    assert parse_line(",v", 1, KEYED) == {"key": "", "value": "v"}


def test_default_key_separator_is_a_tab() -> None:
    assert parse_line("k\tv", 1, ReaderConfig(parse_key=True)) == {"key": "k", "value": "v"}


def test_line_without_key_separator_is_kafkas_error_naming_line_number() -> None:
    with pytest.raises(LineError) as info:
        parse_line("user2 no separator", 4, KEYED)
    assert str(info.value) == "No key separator found on line number 4: 'user2 no separator'"


def test_ignore_error_stores_a_line_without_separator_as_value_only() -> None:
    cfg = ReaderConfig(parse_key=True, key_separator=",", ignore_error=True)
    assert parse_line("no separator", 1, cfg) == {"value": "no separator"}


def test_null_marker_turns_key_or_value_into_null() -> None:
    cfg = ReaderConfig(parse_key=True, key_separator=",", null_marker="<null>")
    assert parse_line("<null>,v", 1, cfg) == {"value": "v"}
    assert parse_line("k,<null>", 1, cfg) == {"key": "k", "value": None}


def test_headers_come_first_then_key_then_value() -> None:
    cfg = ReaderConfig(parse_key=True, parse_headers=True)
    assert parse_line("h1:v1,h2:v2\tkey\tvalue", 1, cfg) == {
        "key": "key",
        "value": "value",
        "headers": [["h1", "v1"], ["h2", "v2"]],
    }


def test_header_without_key_separator_is_an_error_unless_ignored() -> None:
    cfg = ReaderConfig(parse_headers=True)
    with pytest.raises(
        LineError, match="No header key separator found in pair 'h1' on line number 2"
    ):
        parse_line("h1\tvalue", 2, cfg)
    ignoring = ReaderConfig(parse_headers=True, ignore_error=True)
    assert parse_line("h1\tvalue", 2, ignoring)["headers"] == [["h1", None]]


def test_header_value_equal_to_null_marker_is_null_and_a_null_header_key_is_refused() -> None:
    cfg = ReaderConfig(parse_headers=True, null_marker="NULL")
    assert parse_line("h:NULL\tv", 1, cfg)["headers"] == [["h", None]]
    with pytest.raises(LineError, match="Header keys should not be equal to the null marker"):
        parse_line("NULL:x\tv", 1, cfg)


def test_bytes_that_are_not_utf8_travel_as_base64_unchanged() -> None:
    record = parse_line(decode_line(b"k,\xff\xfe\n"), 1, KEYED)
    assert record["key"] == "k"
    assert base64.b64decode(record["value_b64"]) == b"\xff\xfe"


def test_line_break_is_lf_or_crlf_as_javas_readline() -> None:
    assert decode_line(b"abc\n") == "abc"
    assert decode_line(b"abc\r\n") == "abc"
    assert decode_line(b"abc") == "abc"


def test_line_splitter_assembles_lines_across_chunks_and_keeps_the_unterminated_tail() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"Good mor") == []
    assert splitter.feed(b"ning\nGood day\nEnj") == [b"Good morning\n", b"Good day\n"]
    assert splitter.feed(b"oy\r\n") == [b"Enjoy\r\n"]
    assert splitter.feed(b"last") == []
    assert splitter.finish() == [b"last"]
    assert splitter.finish() == []


def test_send_error_line_is_kafkas_error_logging_callback_line() -> None:
    line = console_producer.send_error_line("news", {"value": "hello"}, "too large")
    assert line == (
        "Error when sending message to topic news with key: null, value: 5 bytes with error: "
        "too large"
    )


# ---------------------------------------------------------------------------------------------
# kraft-console-producer: the loop runs on client.producer.AsyncProducer and is tested against
# a fake producer in tests/unit/test_producer_console.py
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# kraft-console-consumer: flags
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        ([*BS], "Exactly one of the following arguments is required: [topic]"),
        (["--topic", "t"], 'Missing required argument "[bootstrap-server]"'),
        (
            [*BS, "--topic", "t", "--offset", "5"],
            "The partition is required when offset is specified.",
        ),
        (
            [*BS, "--topic", "t", "--partition", "0", "--offset", "5", "--from-beginning"],
            "Options from-beginning and offset cannot be specified together.",
        ),
        (
            [*BS, "--topic", "t", "--partition", "0", "--offset", "-3"],
            "The provided offset value '-3' is incorrect. Valid values are 'earliest', 'latest', "
            "or a non-negative long.",
        ),
        (
            [*BS, "--topic", "t", "--partition", "0", "--offset", "soon"],
            "The provided offset value 'soon' is incorrect.",
        ),
        (
            [*BS, "--topic", "t", "--property", "print.key=true", "--formatter-property", "x=y"],
            "Options --property and --formatter-property cannot be specified together.",
        ),
        (
            [*BS, "--topic", "t", "--property", "print.epoch=true"],
            "--property print.epoch is not supported",
        ),
        (
            [*BS, "--topic", "t", "--property", "print.kye=true"],
            "--property print.kye is not supported",
        ),
    ],
)
def test_consumer_command_line_is_checked_as_kafka_checks_it(argv: list[str], message: str) -> None:
    assert message in usage_error(console_consumer.parse_command, argv)


@pytest.mark.parametrize(
    "argv, start, reset",
    [
        ([], "latest", "latest"),
        (["--from-beginning"], "earliest", "earliest"),
        (["--partition", "1"], "latest", "latest"),
        (["--partition", "1", "--from-beginning"], "earliest", "earliest"),
        (["--partition", "1", "--offset", "EARLIEST"], "earliest", "latest"),
        (["--partition", "1", "--offset", "42"], 42, "latest"),
    ],
)
def test_consumer_start_position_follows_kafka(
    argv: list[str], start: int | str, reset: str
) -> None:
    cmd = console_consumer.parse_command([*BS, "--topic", "t", *argv])
    assert (cmd.start, cmd.reset) == (start, reset)


def test_consumer_formatter_properties_are_read_like_kafkas() -> None:
    cmd = console_consumer.parse_command(
        [
            *BS,
            "--topic",
            "t",
            "--property",
            "print.key=TRUE",
            "--property",
            "key.separator=,",
            "--property",
            "print.value=false",
            "--property",
            "null.literal=<nil>",
        ]
    )
    assert cmd.formatter == FormatterConfig(
        print_key=True, key_separator=b",", print_value=False, null_literal=b"<nil>"
    )


# ---------------------------------------------------------------------------------------------
# kraft-console-consumer: Kafka's DefaultMessageFormatter
# ---------------------------------------------------------------------------------------------

REC = ConsumedRecord(
    partition=0,
    offset=3,
    timestamp=1700000000000,
    key=b"user1",
    value=b"login website",
    headers=(("h1", b"v1"), ("h2", None)),
)


def test_default_output_is_the_value_and_a_newline() -> None:
    assert format_record(REC, FormatterConfig()) == b"login website\n"


def test_every_field_in_kafkas_order_with_tabs() -> None:
    cfg = FormatterConfig(
        print_timestamp=True, print_partition=True, print_offset=True, print_key=True
    )
    assert format_record(REC, cfg) == (
        b"CreateTime:1700000000000\tPartition:0\tOffset:3\tuser1\tlogin website\n"
    )


def test_headers_come_between_offset_and_key() -> None:
    cfg = FormatterConfig(print_offset=True, print_headers=True, print_key=True)
    assert format_record(REC, cfg) == b"Offset:3\th1:v1,h2:null\tuser1\tlogin website\n"
    bare = ConsumedRecord(partition=0, offset=3, timestamp=1, key=None, value=b"v")
    assert format_record(bare, FormatterConfig(print_headers=True)) == b"NO_HEADERS\tv\n"


def test_null_key_and_value_print_the_null_literal() -> None:
    rec = ConsumedRecord(partition=0, offset=0, timestamp=1, key=None, value=None)
    assert format_record(rec, FormatterConfig(print_key=True)) == b"null\tnull\n"
    cfg = FormatterConfig(print_key=True, null_literal=b"-")
    assert format_record(rec, cfg) == b"-\t-\n"


def test_without_value_the_last_field_ends_the_line() -> None:
    cfg = FormatterConfig(print_key=True, print_value=False)
    assert format_record(REC, cfg) == b"user1\n"
    assert format_record(REC, FormatterConfig(print_value=False)) == b""


def test_custom_separators_are_used() -> None:
    cfg = FormatterConfig(print_key=True, key_separator=b" => ", line_separator=b"\r\n")
    assert format_record(REC, cfg) == b"user1 => login website\r\n"


def test_record_without_timestamp_prints_no_timestamp() -> None:
    rec = ConsumedRecord(partition=0, offset=0, timestamp=-1, key=None, value=b"v")
    assert format_record(rec, FormatterConfig(print_timestamp=True)) == b"NO_TIMESTAMP\tv\n"


def test_binary_fetch_record_decodes_to_exact_bytes() -> None:
    obj = {
        "offset": 9,
        "timestamp": 5,
        "partition": 2,
        "key_b64": None,
        "value_b64": base64.b64encode(b"\xff").decode(),
        "headers": [["h", base64.b64encode(b"x").decode()], ["n", None]],
    }
    assert console_consumer.record_from_json(obj, 2) == ConsumedRecord(
        partition=2,
        offset=9,
        timestamp=5,
        key=None,
        value=b"\xff",
        headers=(("h", b"x"), ("n", None)),
    )


# ---------------------------------------------------------------------------------------------
# kraft-console-consumer: the loop, against a fake client
# ---------------------------------------------------------------------------------------------


class FakeLog:
    """A topic's partitions in memory, answering fetches like the node (no long poll)."""

    def __init__(self, partitions: dict[int, list[bytes]], exists: bool = True) -> None:
        self.partitions = partitions
        self.exists = exists
        self.fetches: list[tuple[int, int | str]] = []

    async def describe_topic(self, name: str) -> dict[str, Any]:
        if not self.exists:
            raise ApiError(UNKNOWN_TOPIC, f"Topic '{name}' does not exist")
        return {"name": name, "partitions": [{"partition": p} for p in self.partitions]}

    async def fetch_batches(
        self, topic: str, partition: int, offset: int | str, **kw: Any
    ) -> FetchedBatches:
        self.fetches.append((partition, offset))
        log = self.partitions[partition]
        start = {"earliest": 0, "latest": len(log)}.get(offset, offset)  # type: ignore[arg-type]
        assert isinstance(start, int)
        if start > len(log):
            raise ApiError(OFFSET_OUT_OF_RANGE, "out of range")
        if start == len(log):
            await asyncio.sleep(0.01)  # an empty long poll
        return log_answer(log, start, timestamp_base=1700000000000)


def run_consumer(argv: list[str], client: Any) -> tuple[int, console_consumer.Progress]:
    cmd = console_consumer.parse_command([*BS, "--topic", "news", *argv])
    progress = console_consumer.Progress()
    code = asyncio.run(console_consumer.consume(cmd, client, progress))
    return code, progress


def test_consumer_from_beginning_prints_in_order_and_stops_at_max_messages(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    log = FakeLog({0: [b"Good morning", b"Good day", b"Enjoy the Kafka lab", b"more"]})
    code, progress = run_consumer(["--from-beginning", "--max-messages", "3"], log)
    assert (code, progress.count) == (0, 3)
    assert capfdbinary.readouterr().out == b"Good morning\nGood day\nEnjoy the Kafka lab\n"


def test_consumer_without_from_beginning_starts_at_the_end(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    log = FakeLog({0: [b"old"], 1: [b"older"]})
    code, progress = run_consumer(["--timeout-ms", "100"], log)
    assert (code, progress.count) == (0, 0)
    assert capfdbinary.readouterr().out == b""
    assert {(0, "latest"), (1, "latest")} <= set(log.fetches)


def test_consumer_reads_every_partition(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    log = FakeLog({0: [b"a0", b"a1"], 1: [b"b0"], 2: []})
    code, progress = run_consumer(
        ["--from-beginning", "--max-messages", "3", "--property", "print.partition=true"], log
    )
    assert (code, progress.count) == (0, 3)
    lines = capfdbinary.readouterr().out.splitlines()
    assert sorted(lines) == [b"Partition:0\ta0", b"Partition:0\ta1", b"Partition:1\tb0"]
    assert lines.index(b"Partition:0\ta0") < lines.index(b"Partition:0\ta1")


def test_consumer_with_partition_and_offset_reads_only_from_there(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    log = FakeLog({0: [b"x"], 1: [b"b0", b"b1", b"b2"]})
    code, _ = run_consumer(
        [
            "--partition",
            "1",
            "--offset",
            "1",
            "--max-messages",
            "2",
            "--property",
            "print.offset=true",
        ],
        log,
    )
    assert code == 0
    assert capfdbinary.readouterr().out == b"Offset:1\tb1\nOffset:2\tb2\n"
    assert all(p == 1 for p, _ in log.fetches)


def test_offset_past_the_end_resets_to_latest_as_kafkas_auto_offset_reset() -> None:
    log = FakeLog({0: [b"a"]})
    code, progress = run_consumer(
        ["--partition", "0", "--offset", "99", "--timeout-ms", "100"], log
    )
    assert (code, progress.count) == (0, 0)
    assert log.fetches[:2] == [(0, 99), (0, "latest")]


def test_consumer_of_an_unknown_topic_prints_one_error_line_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, progress = run_consumer([], FakeLog({}, exists=False))
    assert code == 1 and progress.started
    assert capsys.readouterr().err == (
        "Error processing message, terminating consumer process: Topic 'news' does not exist\n"
    )


def test_consumer_of_a_missing_partition_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_consumer(["--partition", "5"], FakeLog({0: []}))
    assert code == 1
    assert "Partition 5 of topic 'news' does not exist" in capsys.readouterr().err


def test_a_fetch_error_that_is_not_retriable_ends_the_consumer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Broken(FakeLog):
        async def fetch_batches(
            self, topic: str, partition: int, offset: int | str, **kw: Any
        ) -> FetchedBatches:
            raise ApiError(UNKNOWN_TOPIC, "Topic 'news' was deleted")

    code, _ = run_consumer([], Broken({0: []}))
    assert code == 1
    assert "Topic 'news' was deleted" in capsys.readouterr().err
