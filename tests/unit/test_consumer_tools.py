"""The console consumer's and the consumer perf test's group flags, parsed as Kafka's tools
parse them (pure: nothing is sent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.tools import common, console_consumer, consumer_perf_test

BS = ["--bootstrap-server", "127.0.0.1:9092", "--topic", "t"]


def usage_error(parse: object, argv: list[str]) -> str:
    with pytest.raises(common.UsageError) as info:
        parse(argv)  # type: ignore[operator]
    return str(info.value)


def test_group_comes_from_the_flag_a_property_or_the_config_file(tmp_path: Path) -> None:
    assert console_consumer.parse_command([*BS, "--group", "g"]).group == "g"
    cmd = console_consumer.parse_command([*BS, "--consumer-property", "group.id=g2"])
    assert cmd.group == "g2" and cmd.consumer_props["group.id"] == "g2"
    config = tmp_path / "consumer.properties"
    config.write_text("group.id=g3\nsession.timeout.ms=6000\nsecurity.protocol=PLAINTEXT\n")
    cmd = console_consumer.parse_command([*BS, "--consumer.config", str(config)])
    assert cmd.group == "g3"
    assert cmd.consumer_props == {
        "group.id": "g3",
        "session.timeout.ms": "6000",
        "auto.offset.reset": "latest",
    }
    cmd = console_consumer.parse_command([*BS, "--command-property", "max.poll.records=5"])
    assert cmd.group is None and cmd.consumer_props["max.poll.records"] == "5"


def test_different_group_ids_are_refused_naming_them() -> None:
    assert usage_error(
        console_consumer.parse_command, [*BS, "--group", "a", "--consumer-property", "group.id=b"]
    ) == (
        "The group ids provided in different places (directly using '--group', via "
        "'--consumer-property', or via '--consumer.config') do not match. Detected group ids: "
        "'a', 'b'"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--group", "g", "--partition", "0"], "Options group and partition cannot be specified"),
        (
            ["--from-beginning", "--consumer-property", "auto.offset.reset=latest"],
            "Can't simultaneously specify --from-beginning and 'auto.offset.reset=latest', "
            "please remove one option",
        ),
        (["--consumer-property", "no.such.thing=1"], "no.such.thing is not a known consumer"),
        (["--consumer-property", "max.poll.records=0"], "configuration max.poll.records"),
    ],
)
def test_console_consumer_group_options_are_checked(argv: list[str], message: str) -> None:
    assert message in usage_error(console_consumer.parse_command, [*BS, *argv])


@pytest.mark.parametrize(
    "argv, reset",
    [
        (["--group", "g"], "latest"),  # a new group starts at the end, as in Kafka
        (["--group", "g", "--from-beginning"], "earliest"),
        (["--group", "g", "--consumer-property", "auto.offset.reset=earliest"], "earliest"),
    ],
)
def test_a_new_group_starts_where_kafkas_console_consumer_starts(
    argv: list[str], reset: str
) -> None:
    cmd = console_consumer.parse_command([*BS, *argv])
    assert cmd.consumer_props["auto.offset.reset"] == reset == cmd.reset


PERF = ["--bootstrap-server", "127.0.0.1:9092", "--topic", "t", "--messages", "10"]


def test_perf_test_properties_follow_kafkas_consumer_performance() -> None:
    cmd = consumer_perf_test.parse_command(
        [*PERF, "--group", "g", "--fetch-size", "4096", "--command-property", "max.poll.records=7"]
    )
    assert consumer_perf_test.consumer_properties(cmd) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "group.id": "g",
        "max.partition.fetch.bytes": "4096",
        "auto.offset.reset": "earliest",
        "max.poll.records": "7",
    }
    cmd = consumer_perf_test.parse_command([*PERF, "--from-latest"])
    props = consumer_perf_test.consumer_properties(cmd)
    assert props["auto.offset.reset"] == "latest" and "group.id" not in props


def test_perf_test_refuses_an_unknown_consumer_property_by_name() -> None:
    assert "fetch.size.bytes is not a known consumer config" in usage_error(
        consumer_perf_test.parse_command, [*PERF, "--command-property", "fetch.size.bytes=1"]
    )
