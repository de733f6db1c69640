"""The pure parts of issue 11's limits: the byte budget of request bodies, number parsing,
the answers to what aiohttp cannot parse, the connection gate, the loop-lag bookkeeping, and
max.message.bytes against socket.request.max.bytes. No sockets."""

from __future__ import annotations

import asyncio
import logging
import random
import time

import orjson
import pytest
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    InvalidHeader,
    LineTooLong,
)

from client.protocol import (
    INVALID_CONFIG,
    INVALID_REQUEST,
    JAVA_INT_MAX,
    SERVER_BUSY,
    ApiError,
    json_int,
)
from kraft.records import MetadataRecord, RegisterBrokerRecord, UnfenceBrokerRecord
from kraft.state import MetadataState
from server import controller
from server.byte_budget import ByteBudget
from server.http_server import ConnectionGate, refusal
from server.http_util import (
    INT_MAX,
    LONG_MAX,
    LONG_MIN,
    BodyBudget,
    error_response,
    parse_int,
)
from server.loop_monitor import LagTracker, LoopMonitor
from server.topic_configs import normalize_configs

# -- the byte budget ------------------------------------------------------------------------------


def test_a_budget_takes_all_or_nothing_and_gives_back() -> None:
    budget = ByteBudget(100)
    assert budget.try_take(60)
    assert not budget.try_take(41), "41 more would pass the capacity"
    assert budget.held_bytes == 60
    assert budget.try_take(40)
    assert budget.free_bytes == 0
    budget.give_back(60)
    assert budget.held_bytes == 40 and budget.peak_bytes == 100
    assert budget.try_take(60)


def test_an_empty_budget_takes_anything_up_to_its_capacity() -> None:
    budget = ByteBudget(100)
    assert budget.try_take(100)
    budget.give_back(100)
    assert not budget.try_take(101)
    assert budget.try_take(0)


def test_giving_back_more_than_was_taken_is_a_bug() -> None:
    budget = ByteBudget(100)
    budget.try_take(10)
    with pytest.raises(AssertionError):
        budget.give_back(11)


def test_random_takes_and_give_backs_keep_the_invariants() -> None:
    rng = random.Random(11)
    budget = ByteBudget(1000)
    held: list[int] = []
    for _ in range(10_000):
        if held and rng.random() < 0.5:
            budget.give_back(held.pop(rng.randrange(len(held))))
        else:
            size = rng.randrange(0, 400)
            if budget.try_take(size):
                held.append(size)
            else:
                assert sum(held) + size > 1000
        assert budget.held_bytes == sum(held) <= 1000
    for size in held:
        budget.give_back(size)
    assert budget.held_bytes == 0


def test_a_request_waits_for_room_and_gets_it_when_another_gives_back() -> None:
    async def scenario() -> None:
        budget = BodyBudget(100, wait_s=30.0)
        await budget.take(80)
        waiter = asyncio.create_task(budget.take(50))
        await asyncio.sleep(0)
        assert not waiter.done(), "no room: it waits"
        budget.give_back(80)
        await waiter  # woken by the give-back, long before its 30 s
        assert budget.bytes.held_bytes == 50

    asyncio.run(scenario())


def test_a_request_that_finds_no_room_in_time_gets_server_busy_holding_nothing() -> None:
    async def scenario() -> None:
        budget = BodyBudget(100, wait_s=0.01)
        await budget.take(80)
        with pytest.raises(ApiError) as refused:
            await budget.take(50)
        assert refused.value.kind is SERVER_BUSY
        assert refused.value.extra["retry_after_s"] == 1
        assert "queued.max.request.bytes" in refused.value.message
        assert budget.bytes.held_bytes == 80, "the refused request holds nothing"

    asyncio.run(scenario())


def test_a_cancelled_waiter_holds_nothing() -> None:
    async def scenario() -> None:
        budget = BodyBudget(100, wait_s=30.0)
        await budget.take(100)
        waiter = asyncio.create_task(budget.take(10))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        budget.give_back(100)
        assert budget.bytes.held_bytes == 0

    asyncio.run(scenario())


# -- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["²", "٣", "３", " 1", "1 ", "+1", "1_0", "1e3", "1.0", "", "-", "0x10", "1" * 20, "1\n"],
)
def test_only_ascii_digits_are_integers(text: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_int(text, "partition", 0, INT_MAX)
    assert refused.value.kind is INVALID_REQUEST
    assert "partition" in refused.value.message


@pytest.mark.parametrize(
    ("text", "minimum", "maximum", "value"),
    [
        ("0", 0, INT_MAX, 0),
        ("007", 0, INT_MAX, 7),
        ("2147483647", 0, INT_MAX, INT_MAX),
        ("-9223372036854775808", LONG_MIN, LONG_MAX, LONG_MIN),
        ("9223372036854775807", LONG_MIN, LONG_MAX, LONG_MAX),
    ],
)
def test_integers_within_their_range_are_read(
    text: str, minimum: int, maximum: int, value: int
) -> None:
    assert parse_int(text, "n", minimum, maximum) == value


@pytest.mark.parametrize(
    ("text", "minimum", "maximum"),
    [("2147483648", 0, INT_MAX), ("-1", 0, INT_MAX), ("9223372036854775808", LONG_MIN, LONG_MAX)],
)
def test_integers_outside_their_range_are_refused_naming_it(
    text: str, minimum: int, maximum: int
) -> None:
    with pytest.raises(ApiError) as refused:
        parse_int(text, "offset", minimum, maximum)
    assert f"[{minimum}, {maximum}]" in refused.value.message


def test_a_long_value_is_quoted_short() -> None:
    with pytest.raises(ApiError) as refused:
        parse_int("x" * 10_000, "partition", 0, INT_MAX)
    assert len(refused.value.message) < 200


# -- what aiohttp cannot parse --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "name", "status"),
    [
        (LineTooLong("GET /aaaa", 8190), "REQUEST_TOO_LARGE", 413),
        (BadHttpMethod("BREW"), "METHOD_NOT_ALLOWED", 405),
        (BadHttpMethod("\x16\x03\x01\x00"), "INVALID_REQUEST", 400),
        (BadStatusLine("GET"), "INVALID_REQUEST", 400),
        (InvalidHeader(b"this is garbage"), "INVALID_REQUEST", 400),
        (BadHttpMessage("Invalid header value char"), "INVALID_REQUEST", 400),
        (BadHttpMessage("Content-Length is not a number"), "INVALID_REQUEST", 400),
        (BadHttpMessage("Too many headers"), "REQUEST_TOO_LARGE", 413),
        (BadHttpMessage("something new"), "INVALID_REQUEST", 400),
        (None, "INVALID_REQUEST", 400),
    ],
)
def test_each_parse_error_has_a_kafka_named_answer_that_does_not_quote_the_bytes(
    exc: Exception | None, name: str, status: int
) -> None:
    error = refusal(exc)
    assert (error.name, error.status) == (name, status)
    assert "garbage" not in error.message and "aaaa" not in error.message
    assert len(error.message) < 120


def test_tls_bytes_are_named_as_tls() -> None:
    assert "TLS" in refusal(BadHttpMethod("\x16\x03\x01\x00")).message


# -- max.connections ------------------------------------------------------------------------------


def test_the_gate_admits_up_to_its_limit_and_one_more_after_one_leaves() -> None:
    gate = ConnectionGate(2)
    assert gate.admit() and gate.admit()
    assert not gate.admit()
    assert gate.refused_connections == 1 and gate.open_connections == 2
    gate.leave()
    assert gate.admit()


# -- event-loop lag -------------------------------------------------------------------------------


def test_lag_under_the_threshold_is_kept_but_not_reported() -> None:
    tracker = LagTracker(warn_ms=100, warn_every_s=10)
    assert tracker.record(40.0, now_s=0.0) is None
    assert tracker.last_lag_ms == 40.0 and tracker.max_lag_ms == 40.0


def test_lag_over_the_threshold_is_reported_at_most_once_per_interval_with_the_worst() -> None:
    tracker = LagTracker(warn_ms=100, warn_every_s=10)
    first = tracker.record(150.0, now_s=0.0)
    assert first is not None and (first.count, first.worst_ms) == (1, 150.0)
    assert tracker.record(300.0, now_s=1.0) is None
    assert tracker.record(120.0, now_s=2.0) is None
    assert tracker.record(10.0, now_s=5.0) is None
    later = tracker.record(10.0, now_s=10.5)
    assert later is not None and (later.count, later.worst_ms) == (2, 300.0)
    assert tracker.record(10.0, now_s=30.0) is None, "nothing new to report"
    assert tracker.max_lag_ms == 300.0 and tracker.last_lag_ms == 10.0


# -- max.message.bytes against socket.request.max.bytes -------------------------------------------


def test_max_message_bytes_above_socket_request_max_bytes_is_refused_naming_both() -> None:
    with pytest.raises(ApiError) as refused:
        normalize_configs({"max.message.bytes": 2147483647})
    assert refused.value.kind is INVALID_CONFIG
    assert "max.message.bytes" in refused.value.message
    assert "socket.request.max.bytes" in refused.value.message
    with pytest.raises(ApiError):
        normalize_configs({"max.message.bytes": "2048"}, socket_request_max_bytes=1024)
    assert normalize_configs({"max.message.bytes": 1024}, socket_request_max_bytes=1024) == {
        "max.message.bytes": "1024"
    }


@pytest.mark.parametrize("value", ["٣", " 3 x", "1_000", 1.5, 1.2345678901234569e29, True])
def test_topic_config_numbers_are_ascii_integers(value: object) -> None:
    with pytest.raises(ApiError) as refused:
        normalize_configs({"retention.ms": value})
    assert refused.value.kind is INVALID_CONFIG
    assert "e+" not in refused.value.message


def test_the_plans_take_the_nodes_socket_request_max_bytes() -> None:
    state = MetadataState()
    state.apply_entry(
        1,
        [
            RegisterBrokerRecord(1, "inc1", 0, "http://127.0.0.1:9092", "127.0.0.1:9093"),
            UnfenceBrokerRecord(1, 0),
        ],
    )

    def create(configs: dict[str, object]) -> list[MetadataRecord]:
        return controller.plan_create_topic(
            state,
            "t",
            1,
            1,
            configs,
            default_partitions=1,
            default_replication_factor=1,
            rng=random.Random(1),
            socket_request_max_bytes=2048,
        )

    with pytest.raises(ApiError) as refused:
        create({"max.message.bytes": 4096})
    assert refused.value.kind is INVALID_CONFIG and "(2048)" in refused.value.message
    state.apply_entry(2, create({"max.message.bytes": 2048}))
    with pytest.raises(ApiError) as refused:
        controller.plan_alter_configs(
            state, "t", {"max.message.bytes": 4096}, socket_request_max_bytes=2048
        )
    assert refused.value.kind is INVALID_CONFIG and "(2048)" in refused.value.message
    assert controller.plan_alter_configs(
        state, "t", {"max.message.bytes": 1024}, socket_request_max_bytes=2048
    )


@pytest.mark.parametrize("partitions", [True, 3.0, 1.2345678901234569e29, "3"])
def test_partitions_that_are_not_json_integers_are_refused(partitions: object) -> None:
    with pytest.raises(ApiError) as refused:
        controller.plan_create_topic(
            MetadataState(),
            "t",
            partitions,
            None,
            None,
            default_partitions=1,
            default_replication_factor=1,
            rng=random.Random(1),
        )
    assert refused.value.kind is INVALID_REQUEST
    assert "partitions" in refused.value.message and "e+" not in refused.value.message


def test_the_monitor_sees_a_blocked_loop_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> LoopMonitor:
        monitor = LoopMonitor(interval_s=0.01)
        task = asyncio.create_task(monitor.run())
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # a callback that holds the loop
        await asyncio.sleep(0.05)
        task.cancel()
        return monitor

    with caplog.at_level(logging.WARNING, logger="server.loop_monitor"):
        monitor = asyncio.run(scenario())
    assert monitor.max_lag_ms >= 250
    assert any("event loop was blocked" in r.getMessage() for r in caplog.records)


def test_every_error_message_is_cut_short() -> None:
    long = ApiError(INVALID_REQUEST, "refused: /v1/internal/" + "x" * 8000)
    body = orjson.loads(error_response(long).body)  # type: ignore[arg-type]
    assert len(body["message"]) <= 503 and body["message"].startswith("refused: /v1/internal/")
    short = ApiError(INVALID_REQUEST, "fine")
    assert orjson.loads(error_response(short).body)["message"] == "fine"  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, 1.5, 3.0, 1.2345678901234569e29, "3", None, -1, 2**31])
def test_a_json_integer_is_an_int_within_its_range(value: object) -> None:
    with pytest.raises(ApiError) as refused:
        json_int(value, "partition", 0, JAVA_INT_MAX)
    assert refused.value.kind is INVALID_REQUEST
    assert refused.value.message == "partition must be an integer in [0, 2147483647]"


def test_a_json_integer_within_its_range_is_taken() -> None:
    assert json_int(0, "p", 0, JAVA_INT_MAX) == 0
    assert json_int(JAVA_INT_MAX, "p", 0, JAVA_INT_MAX) == JAVA_INT_MAX
