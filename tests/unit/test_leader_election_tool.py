"""kraft-leader-election without a cluster: Kafka's flags, refusals, messages and lines."""

from __future__ import annotations

from typing import Any

import pytest

from client.tools import common
from client.tools.leader_election import (
    UNCLEAN_REFUSED,
    ElectionCommand,
    main,
    parse_command,
    parse_election_json,
    result_lines,
)

BS = ["--bootstrap-server", "127.0.0.1:9092"]
PREFERRED = [*BS, "--election-type", "PREFERRED"]


def usage_error(argv: list[str]) -> str:
    with pytest.raises(common.UsageError) as info:
        parse_command(argv)
    return str(info.value)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (
            [*PREFERRED, "--all-topic-partitions"],
            ElectionCommand("127.0.0.1:9092", "PREFERRED"),
        ),
        (
            [*BS, "--election-type", "preferred", "--topic", "news", "--partition", "2"],
            ElectionCommand("127.0.0.1:9092", "PREFERRED", (("news", 2),)),
        ),
        (
            [*PREFERRED, "--path-to-json-file", "f.json"],
            ElectionCommand("127.0.0.1:9092", "PREFERRED", json_file="f.json"),
        ),
    ],
)
def test_kafkas_three_ways_of_naming_partitions_are_read(
    argv: list[str], command: ElectionCommand
) -> None:
    assert parse_command(argv) == command
    assert command.all_partitions == ("--all-topic-partitions" in argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--all-topic-partitions"], "Missing required option(s): bootstrap-server, election-type"),
        ([*BS, "--all-topic-partitions"], "Missing required option(s): election-type"),
        (
            [*BS, "--election-type", "fair", "--all-topic-partitions"],
            "Value fair is not one of [preferred, unclean]",
        ),
        ([*BS, "--election-type", "UNCLEAN", "--all-topic-partitions"], UNCLEAN_REFUSED),
        ([*BS, "--election-type", "unclean", "--topic", "t", "--partition", "0"], UNCLEAN_REFUSED),
        (
            PREFERRED,
            "One and only one of the following options is required: "
            "topic, all-topic-partitions, path-to-json-file",
        ),
        (
            [*PREFERRED, "--all-topic-partitions", "--topic", "t", "--partition", "0"],
            "One and only one of the following options is required: "
            "topic, all-topic-partitions, path-to-json-file",
        ),
        ([*PREFERRED, "--topic", "t"], "Missing required option(s): partition"),
        (
            [*PREFERRED, "--all-topic-partitions", "--partition", "0"],
            "Option partition is only allowed if topic is used",
        ),
    ],
)
def test_a_wrong_command_line_gets_kafkas_message(argv: list[str], message: str) -> None:
    assert usage_error(argv) == message


def test_an_unknown_flag_exits_2_and_no_arguments_print_the_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*PREFERRED, "--all-topic-partitions", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert main([]) == common.EXIT_ERROR
    assert "This tool attempts to elect a new leader" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "result"),
    [
        (
            '{"partitions": [{"topic": "news", "partition": 0}, {"topic": "x", "partition": 2}]}',
            (("news", 0), ("x", 2)),
        ),
        ("", "Replica election data is empty"),
        ('{"topics": []}', 'Replica election data is missing "partitions" field'),
        (
            '{"partitions": [{"topic": "a", "partition": 1}, {"topic": "a", "partition": 1}]}',
            "Replica election data contains duplicate partitions: [a-1]",
        ),
        ('{"partitions": [{"topic": "a"}]}', "Replica election data: each partition needs"),
        ("{", "Replica election data is not valid JSON"),
    ],
)
def test_the_json_file_is_read_with_kafkas_checks(text: str, result: object) -> None:
    if isinstance(result, tuple):
        assert parse_election_json(text) == result
        return
    with pytest.raises(common.UsageError) as info:
        parse_election_json(text)
    assert str(info.value).startswith(str(result))


def _r(partition: int, error: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"topic": "news", "partition": partition}
    if error:
        out |= {"error": error, "message": "the preferred replica 1 is fenced or not in the ISR"}
    return out


def test_results_are_printed_in_kafkas_lines() -> None:
    results = [_r(0), _r(1), _r(2, "ELECTION_NOT_NEEDED")]
    assert result_lines(results, all_partitions=False) == (
        [
            "Successfully completed leader election (PREFERRED) for partitions news-0, news-1",
            "Valid replica already elected for partitions news-2",
        ],
        0,
    )


def test_all_partitions_leave_out_those_already_preferred_and_a_failure_counts() -> None:
    results = [_r(0, "ELECTION_NOT_NEEDED"), _r(1, "PREFERRED_LEADER_NOT_AVAILABLE")]
    lines, failed = result_lines(results, all_partitions=True)
    assert lines == [
        "Error completing leader election (PREFERRED) for partition: news-1: "
        "PREFERRED_LEADER_NOT_AVAILABLE: the preferred replica 1 is fenced or not in the ISR"
    ]
    assert failed == 1
    assert result_lines([_r(0, "ELECTION_NOT_NEEDED")], all_partitions=True) == ([], 0)
