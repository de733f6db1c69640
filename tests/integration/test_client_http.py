"""KraftClient over real HTTP against small scripted aiohttp nodes on 127.0.0.1.

These check the client's transport rules without a real node: bootstrap failover, following a
307 to the leader, turning error bodies into ApiError, timeouts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from client import limits
from client.client import KraftClient, TransportError, parse_bootstrap
from client.protocol import (
    LEADER_NOT_AVAILABLE,
    NOT_LEADER_OR_FOLLOWER,
    UNKNOWN_SERVER_ERROR,
    UNKNOWN_TOPIC,
    ApiError,
)
from client.tools import console_consumer, topics
from scripts.node_process import free_ports

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ScriptedNode:
    """An aiohttp app on a free port that records requests and answers with one handler."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, bytes]] = []
        self.port = free_ports(1)[0]
        self.runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _any(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, await request.read()))
        return await self.handler(request)

    async def __aenter__(self) -> ScriptedNode:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def json_answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status, headers=headers)

    return handler


def closed_address() -> str:
    return f"127.0.0.1:{free_ports(1)[0]}"


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_bootstrap_accepts_host_port_lists_with_or_without_scheme() -> None:
    assert parse_bootstrap("a:1, http://b:2/,https://c:3") == [
        "http://a:1",
        "http://b:2",
        "https://c:3",
    ]
    assert parse_bootstrap(["a:1"]) == ["http://a:1"]
    for bad in ("", "a", "a:x", "ftp://a:1", ","):
        with pytest.raises(ValueError):
            parse_bootstrap(bad)


def test_unreachable_first_bootstrap_address_falls_over_to_the_next() -> None:
    async def scenario() -> None:
        async with ScriptedNode(json_answer(200, {"topics": [{"name": "news"}]})) as node:
            async with KraftClient(f"{closed_address()},{node.address}") as client:
                assert await client.list_topics() == [{"name": "news"}]
                assert await client.list_topics() == [{"name": "news"}]
            assert [r[1] for r in node.requests] == ["/v1/topics", "/v1/topics"]

    run(scenario())


def test_no_reachable_bootstrap_address_is_a_transport_error_naming_them() -> None:
    async def scenario() -> None:
        first, second = closed_address(), closed_address()
        async with KraftClient(f"{first},{second}") as client:
            with pytest.raises(TransportError) as info:
                await client.cluster()
            assert first in str(info.value) and second in str(info.value)
            assert await client.ready() is False

    run(scenario())


def test_307_is_followed_to_the_leader_location_with_the_same_body_and_query() -> None:
    async def scenario() -> None:
        async with ScriptedNode(
            json_answer(200, {"topic": "t", "offsets": [{"partition": 1, "offset": 41}]})
        ) as leader:
            location = f"http://{leader.address}/v1/topics/t/partitions/1/records?acks=1"
            redirect = json_answer(
                307,
                {
                    "error_code": 30701,
                    "error": "NOT_LEADER_OR_FOLLOWER",
                    "leader_id": 2,
                    "leader_url": f"http://{leader.address}",
                },
                {"Location": location},
            )
            async with ScriptedNode(redirect) as follower:
                async with KraftClient(follower.address) as client:
                    answer = await client.produce("t", [{"value": "v"}], partition=1, acks="1")
            assert answer["offsets"] == [{"partition": 1, "offset": 41}]
            assert len(follower.requests) == 1
            method, path_qs, body = leader.requests[0]
            assert (method, path_qs) == ("POST", "/v1/topics/t/partitions/1/records?acks=1")
            assert json.loads(body) == {"records": [{"value": "v"}]}

    run(scenario())


def test_307_without_location_uses_leader_url_plus_the_same_path() -> None:
    async def scenario() -> None:
        async with ScriptedNode(json_answer(200, {"records": [], "next_offset": 0})) as leader:
            redirect = json_answer(
                307,
                {
                    "error_code": 30701,
                    "error": "NOT_LEADER_OR_FOLLOWER",
                    "leader_url": f"http://{leader.address}/",
                },
            )
            async with ScriptedNode(redirect) as follower:
                async with KraftClient(follower.address) as client:
                    await client.fetch("t", 0, "earliest", timeout_ms=10)
            assert leader.requests[0][1] == (
                "/v1/topics/t/partitions/0/records?offset=earliest&timeout_ms=10&format=text"
            )

    run(scenario())


def test_a_redirect_loop_stops_after_a_few_hops_with_not_leader() -> None:
    async def scenario() -> None:
        holder: dict[str, str] = {}

        async def loop_to_self(request: web.Request) -> web.StreamResponse:
            return web.json_response(
                {"error_code": 30701, "error": "NOT_LEADER_OR_FOLLOWER"},
                status=307,
                headers={"Location": holder["url"] + request.path_qs},
            )

        async with ScriptedNode(loop_to_self) as node:
            holder["url"] = f"http://{node.address}"
            async with KraftClient(node.address) as client:
                with pytest.raises(ApiError) as info:
                    await client.produce("t", [{"value": "v"}], partition=0)
            assert info.value.kind == NOT_LEADER_OR_FOLLOWER
            assert len(node.requests) == limits.REDIRECT_HOPS_MAX + 1

    run(scenario())


def test_json_error_becomes_api_error_with_its_extra_fields_and_retry_after() -> None:
    async def scenario() -> None:
        body = {
            "error_code": 50302,
            "error": "LEADER_NOT_AVAILABLE",
            "message": "electing",
            "leader_epoch": 4,
        }
        async with ScriptedNode(json_answer(503, body, {"Retry-After": "1"})) as node:
            async with KraftClient(node.address) as client:
                with pytest.raises(ApiError) as info:
                    await client.produce("t", [{"value": "v"}])
        error = info.value
        assert (error.kind, error.message) == (LEADER_NOT_AVAILABLE, "electing")
        assert error.retriable
        assert error.extra == {"leader_epoch": 4, "retry_after_s": 1.0}

    run(scenario())


def test_non_json_error_body_becomes_unknown_server_error_with_the_text() -> None:
    async def text_error(request: web.Request) -> web.StreamResponse:
        return web.Response(status=502, text="Bad Gateway from a proxy")

    async def scenario() -> None:
        async with ScriptedNode(text_error) as node:
            async with KraftClient(node.address) as client:
                with pytest.raises(ApiError) as info:
                    await client.describe_topic("news")
        assert info.value.kind == UNKNOWN_SERVER_ERROR
        assert "502" in info.value.message and "Bad Gateway from a proxy" in info.value.message

    run(scenario())


def test_create_topic_leaves_out_what_the_server_should_default() -> None:
    async def scenario() -> None:
        async with ScriptedNode(json_answer(201, {"name": "news"})) as node:
            async with KraftClient(node.address) as client:
                await client.create_topic("news")
                await client.create_topic("news", 3, 2, {"retention.ms": "5"})
        bodies = [json.loads(r[2]) for r in node.requests]
        assert bodies == [
            {"name": "news"},
            {
                "name": "news",
                "partitions": 3,
                "replication_factor": 2,
                "configs": {"retention.ms": "5"},
            },
        ]

    run(scenario())


def test_admin_calls_use_api_md_paths_and_bodies() -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        if request.method == "DELETE":
            return web.Response(status=204)
        return web.json_response({})

    async def scenario() -> None:
        async with ScriptedNode(answer) as node:
            async with KraftClient(node.address) as client:
                assert await client.delete_topic("news") is None
                await client.add_partitions("news", 6)
                await client.alter_configs("news", {"retention.ms": "1"})
                await client.offsets("news", 2, timestamp=1700000000000)
                await client.produce(
                    "news", [{"key": "k", "value": "v"}], acks="-1", timeout_ms=500
                )
                assert await client.ready() is True
        assert [(m, p, json.loads(b) if b else None) for m, p, b in node.requests] == [
            ("DELETE", "/v1/topics/news", None),
            ("POST", "/v1/topics/news/partitions", {"count": 6}),
            ("PUT", "/v1/topics/news/configs", {"configs": {"retention.ms": "1"}}),
            ("GET", "/v1/topics/news/partitions/2/offsets?timestamp=1700000000000", None),
            (
                "POST",
                "/v1/topics/news/records?acks=all&timeout_ms=500",
                {"records": [{"key": "k", "value": "v"}]},
            ),
            ("GET", "/v1/health/ready", None),
        ]

    run(scenario())


def test_topic_names_are_quoted_into_paths() -> None:
    async def scenario() -> None:
        async with ScriptedNode(
            json_answer(404, {"error_code": 40401, "error": "UNKNOWN_TOPIC_OR_PARTITION"})
        ) as node:
            async with KraftClient(node.address) as client:
                with pytest.raises(ApiError) as info:
                    await client.describe_topic("a/b?c")
        assert info.value.kind == UNKNOWN_TOPIC
        assert node.requests[0][1] == "/v1/topics/a%2Fb%3Fc"

    run(scenario())


def test_unready_node_is_not_ready() -> None:
    async def scenario() -> None:
        async with ScriptedNode(json_answer(503, {"error_code": 50300, "error": "NOT_READY"})) as n:
            async with KraftClient(n.address) as client:
                assert await client.ready() is False

    run(scenario())


def test_invalid_acks_are_refused_before_sending() -> None:
    async def scenario() -> None:
        async with KraftClient("127.0.0.1:1") as client:
            with pytest.raises(ValueError, match="acks"):
                await client.produce("t", [{"value": "v"}], acks="2")

    run(scenario())


def test_a_node_that_does_not_answer_in_time_is_a_transport_error() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1)
        return web.json_response({})

    async def scenario() -> None:
        async with ScriptedNode(slow) as node:
            async with KraftClient(node.address, timeout_s=0.2) as client:
                with pytest.raises(TransportError, match="timed out"):
                    await client.cluster()

    run(scenario())


def test_tools_print_one_line_when_no_node_answers(capsys: pytest.CaptureFixture[str]) -> None:
    address = closed_address()
    assert topics.main(["--bootstrap-server", address, "--list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error while executing topic command : Could not connect")
    assert err.count("\n") == 1
    assert console_consumer.main(["--bootstrap-server", address, "--topic", "news"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error processing message, terminating consumer process: ")
    assert err.endswith("Processed a total of 0 messages\n")


def test_a_binary_fetch_asks_for_batches_follows_the_leader_and_reads_the_headers() -> None:
    from client.consumer_client import ConsumerClient
    from client.protocol import BATCH_MEDIA_TYPE

    accepts: list[str | None] = []

    async def batches(request: web.Request) -> web.StreamResponse:
        accepts.append(request.headers.get("Accept"))
        return web.Response(
            body=b"\x00batches",
            content_type=BATCH_MEDIA_TYPE,
            headers={
                "Kafka-Next-Offset": "12",
                "Kafka-High-Watermark": "20",
                "Kafka-Log-Start-Offset": "3",
            },
        )

    async def scenario() -> None:
        async with ScriptedNode(batches) as leader:

            async def moved(request: web.Request) -> web.StreamResponse:
                accepts.append(request.headers.get("Accept"))
                return web.json_response(
                    {"error_code": 30701, "error": "NOT_LEADER_OR_FOLLOWER"},
                    status=307,
                    headers={"Location": f"http://{leader.address}{request.path_qs}"},
                )

            async with ScriptedNode(moved) as follower:
                async with ConsumerClient(follower.address) as client:
                    answer = await client.fetch_batches("t", 0, 10, max_bytes=1024, timeout_ms=5)
            assert answer == (b"\x00batches", 12, 20, 3)
            assert leader.requests[-1][1] == (
                "/v1/topics/t/partitions/0/records?offset=10&max_bytes=1024&timeout_ms=5"
            )
        assert accepts[0] == accepts[-1] == BATCH_MEDIA_TYPE  # kept across the redirect

    run(scenario())


def test_a_binary_fetch_answered_in_json_is_an_error_not_records() -> None:
    from client.consumer_client import ConsumerClient

    async def scenario() -> None:
        old = json_answer(200, {"records": [], "next_offset": 0})
        async with ScriptedNode(old) as node:
            async with ConsumerClient(node.address) as client:
                with pytest.raises(ApiError) as caught:
                    await client.fetch_batches("t", 0, 0)
        assert caught.value.kind is UNKNOWN_SERVER_ERROR
        assert "of application/json; charset=utf-8 where application/vnd.kafka.batch" in (
            caught.value.message
        )

    run(scenario())
