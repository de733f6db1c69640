"""kraft-log-dirs prints Kafka 4.4's LogDirsCommand lines: its flags, its errors, and its JSON
byte for byte (checked against Kafka's own formatAsJson, tests/data/kafka_4.4_log_dirs.json)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from client.tools import common
from client.tools.log_dirs import (
    QUERYING,
    LogDirsClient,
    brokers_to_ask,
    describe_json,
    execute,
    java_set_order,
    live_brokers,
    main,
    parse_command,
    received_line,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "kafka_4.4_log_dirs.json").read_text()
)
BOOTSTRAP = ("--bootstrap-server", "localhost:9092")


def answers() -> dict[int, dict[str, Any]]:
    """The brokers' answers behind the Kafka vectors, as GET /v1/brokers/{id}/log-dirs
    gives them (partitions sorted by topic and partition)."""
    topics = [("__consumer_offsets", 4), ("news", 3), ("weather", 2)]
    result: dict[int, dict[str, Any]] = {}
    for broker in (1, 2, 3):
        partitions = [
            {
                "topic": topic,
                "partition": p,
                "size": 100 * broker + p,
                "offset_lag": 0,
                "is_future": False,
            }
            for topic, count in topics
            for p in range(count)
        ]
        dirs: list[dict[str, Any]] = [
            {
                "log_dir": f"/tmp/taskD/cluster/node-{broker}/kraft-combined-logs",
                "error": None,
                "total_bytes": 1000,
                "usable_bytes": 500,
                "partitions": partitions,
            }
        ]
        if broker == 2:
            error = {"error_code": 50001, "error": "KAFKA_STORAGE_ERROR", "message": "offline"}
            dirs.append(
                {"log_dir": "/tmp/taskD/cluster/node-2/other-dir", "error": error, "partitions": []}
            )
        result[broker] = {"broker_id": broker, "log_dirs": dirs}
    return result


def test_the_json_line_is_kafkas_byte_for_byte() -> None:
    assert describe_json(answers(), frozenset()) == VECTORS["every_topic"]


def test_a_topic_list_keeps_only_its_topics_in_kafkas_order() -> None:
    topics = frozenset({"news", "weather"})
    assert describe_json(answers(), topics) == VECTORS["news_and_weather"]


def test_an_error_kafka_has_no_class_for_is_an_unknown_server_exception() -> None:
    error = {"error_code": 50000, "error": "UNKNOWN_SERVER_ERROR", "message": "bug"}
    line = describe_json(
        {1: {"log_dirs": [{"log_dir": "/d", "error": error, "partitions": []}]}}, frozenset()
    )
    assert line == (
        '{"brokers":[{"broker":1,"logDirs":[{"partitions":[],'
        '"error":"org.apache.kafka.common.errors.UnknownServerException","logDir":"/d"}]}],'
        '"version":1}'
    )


# -- which brokers (orders checked in jshell against LogDirsCommand's own set operations) ------


def test_every_live_broker_is_asked_in_kafkas_set_order() -> None:
    # jshell, a cluster listing 33, 1, 17, 2 (1, 17 and 33 share a bucket: listed order counts)
    assert brokers_to_ask((), [33, 1, 17, 2]) == [33, 1, 17, 2]
    assert received_line([1, 2, 3]) == "Received log directory information from brokers 1,2,3"


def test_a_broker_list_is_asked_in_kafkas_set_order() -> None:
    wanted = tuple(java_set_order([17, 33, 1]))
    assert brokers_to_ask(wanted, [1, 2, 17, 33]) == [17, 33, 1]


def test_unknown_brokers_are_named_with_kafkas_message() -> None:
    wanted = tuple(java_set_order([1, 9, 7, 40, 24]))
    with pytest.raises(common.UsageError) as caught:
        brokers_to_ask(wanted, [3, 1, 2])
    assert str(caught.value) == (
        "ERROR: The given brokers do not exist from --broker-list: 7,40,24,9. "
        "Current existent brokers: 1,2,3"
    )


def test_fenced_brokers_are_not_live() -> None:
    cluster = {
        "brokers": [
            {"id": 1, "url": "http://a:1", "fenced": False},
            {"id": 2, "url": "http://b:2", "fenced": True},
        ]
    }
    assert live_brokers(cluster) == {1: "http://a:1"}


# -- the command line ----------------------------------------------------------------------


def test_flags_are_parsed_as_kafkas() -> None:
    cmd = parse_command([*BOOTSTRAP, "--describe", "--broker-list", "3,,1", "--topic-list", "a,"])
    assert cmd.brokers == (1, 3) and cmd.topics == frozenset({"a"})
    assert parse_command([*BOOTSTRAP, "--describe"]).brokers == ()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--describe"], 'Missing required argument "[bootstrap-server]"'),
        ([*BOOTSTRAP], 'Missing required argument "[describe]"'),
        ([*BOOTSTRAP, "--describe", "--broker-list", "1,x"], 'For input string: "x"'),
        ([*BOOTSTRAP, "--describe", "--broker-list", " 1"], 'For input string: " 1"'),
        (
            [*BOOTSTRAP, "--describe", "--broker-list", "2147483648"],
            'For input string: "2147483648"',
        ),
    ],
)
def test_bad_command_lines_get_kafkas_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    assert capsys.readouterr().err == message + "\n"


def test_no_arguments_print_the_usage_and_what_the_tool_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("usage: kraft-log-dirs")
    assert err.rstrip().endswith(
        "This tool helps to query log directory usage on the specified brokers."
    )


def test_an_unknown_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BOOTSTRAP, "--describe", "--brokers", "1"]) == 2
    assert "unrecognized arguments: --brokers" in capsys.readouterr().err


# -- execute, with stand-in clients (no sockets) --------------------------------------------


class StandIn(LogDirsClient):
    """Answers from ``answers()`` without a network; remembers whom it was asked about."""

    asked: list[tuple[str, int, frozenset[str]]] = []

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url

    async def cluster(self) -> dict[str, Any]:
        return {
            "brokers": [
                {"id": b, "url": f"http://127.0.0.1:{9090 + 2 * b}", "fenced": False}
                for b in (1, 2, 3)
            ]
        }

    async def log_dirs(self, broker_id: int, topics: frozenset[str]) -> dict[str, Any]:
        StandIn.asked.append((self.url, broker_id, topics))
        return answers()[broker_id]


def test_each_broker_is_asked_at_its_own_address() -> None:
    StandIn.asked = []
    lines: list[str] = []
    cmd = parse_command([*BOOTSTRAP, "--describe", "--topic-list", "news,weather"])

    async def run() -> None:
        client = StandIn("http://localhost:9092")
        async with client:
            await execute(cmd, client, StandIn, lines.append)

    asyncio.run(run())
    assert lines == [QUERYING, received_line([1, 2, 3]), VECTORS["news_and_weather"]]
    assert sorted(StandIn.asked) == [
        (f"http://127.0.0.1:{9090 + 2 * b}", b, frozenset({"news", "weather"})) for b in (1, 2, 3)
    ]
