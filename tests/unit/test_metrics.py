"""The pure parts of /metrics: labels a stranger cannot multiply, the printable log text, the
scrape-time families over made-up facts, the per-topic traffic, the fsync observer."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from server.http_server import CLIENT_ERROR_LINE, log_client_error
from server.logs import RepeatLimit
from server.metrics import (
    UNMATCHED,
    GroupOffset,
    NodeFacts,
    ReplicaFacts,
    RequestMetrics,
    endpoint_label,
    error_of,
    families,
    is_long_poll,
    method_label,
    printable,
)
from server.topic_metrics import TopicTraffic, TrafficTable
from storage import durable

RECORDS = "/v1/topics/{topic}/partitions/{partition}/records"


async def _ok(request: web.Request) -> web.Response:
    return web.Response()


def routed(method: str, path: str) -> web.Request:
    """A request as the app's router leaves it (its match info set), without a socket."""
    app = web.Application()
    app.router.add_get("/v1/topics/{topic}", _ok)
    app.router.add_get(RECORDS, _ok)
    request = make_mocked_request(method, path, app=app)

    async def resolve() -> None:
        request._match_info = await app.router.resolve(request)

    asyncio.run(resolve())
    return request


# -- labels ------------------------------------------------------------------------------------


def test_the_endpoint_label_is_the_route_template_not_the_path() -> None:
    assert endpoint_label(routed("GET", "/v1/topics/news")) == "/v1/topics/{topic}"
    assert endpoint_label(routed("GET", "/v1/topics/news/partitions/2/records")) == RECORDS


def test_paths_no_route_serves_share_one_label() -> None:
    assert endpoint_label(routed("GET", "/no/such/thing")) == UNMATCHED
    assert endpoint_label(routed("GET", "/v1/topics/a/b/c/d")) == UNMATCHED
    assert endpoint_label(routed("DELETE", "/v1/topics/news")) == UNMATCHED  # 405
    # Refused before routing (too large, busy): no match info at all.
    refused = routed("GET", "/v1/topics/news")
    refused._match_info = None
    assert endpoint_label(refused) == UNMATCHED


def test_a_strangers_random_paths_and_methods_make_no_new_series() -> None:
    registry = CollectorRegistry(auto_describe=False)
    metrics = RequestMetrics(registry)
    for i in range(200):
        request = routed("GET", f"/random/{i}/x{i}")
        metrics.observe(method_label(f"M{i}"), endpoint_label(request), 404, False, 0.001)
    samples = [
        s
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
        if s.name == "kraft_http_requests_total"
    ]
    assert [(s.labels, s.value) for s in samples] == [
        ({"method": "other", "endpoint": UNMATCHED, "code": "404"}, 200.0)
    ]


def test_method_label_names_the_apis_methods_and_other() -> None:
    assert [method_label(m) for m in ("GET", "POST", "PUT", "DELETE", "HEAD")] == [
        "GET",
        "POST",
        "PUT",
        "DELETE",
        "HEAD",
    ]
    assert method_label("BREW") == "other"
    assert method_label("get") == "other"


def test_only_fetches_that_may_wait_are_long_polls() -> None:
    assert is_long_poll(routed("GET", "/v1/topics/t/partitions/0/records?timeout_ms=500"), RECORDS)
    assert is_long_poll(routed("GET", "/v1/topics/t/partitions/0/records?follow=true"), RECORDS)
    assert not is_long_poll(
        routed("GET", "/v1/topics/t/partitions/0/records?timeout_ms=0"), RECORDS
    )
    assert not is_long_poll(routed("GET", "/v1/topics/t/partitions/0/records"), RECORDS)
    assert not is_long_poll(routed("GET", "/v1/topics/t?timeout_ms=5"), "/v1/topics/{topic}")


def test_latency_is_observed_once_per_answer_and_not_for_a_refusal_before_reading() -> None:
    registry = CollectorRegistry(auto_describe=False)
    metrics = RequestMetrics(registry)
    metrics.observe("GET", RECORDS, 200, True, 0.3)
    metrics.observe("GET", RECORDS, 200, False, 0.0007)
    metrics.observe("GET", UNMATCHED, 400, False, None)
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }
    count = "kraft_http_request_duration_seconds_count"
    assert values[(count, (("endpoint", RECORDS), ("long_poll", "true"), ("method", "GET")))] == 1
    assert values[(count, (("endpoint", RECORDS), ("long_poll", "false"), ("method", "GET")))] == 1
    assert (
        values[(count, (("endpoint", UNMATCHED), ("long_poll", "false"), ("method", "GET")))] == 0
    )
    requests = "kraft_http_requests_total"
    assert values[(requests, (("code", "400"), ("endpoint", UNMATCHED), ("method", "GET")))] == 1


# -- the client-error line -----------------------------------------------------------------------


def test_printable_escapes_what_could_forge_a_line_or_drive_a_terminal() -> None:
    assert printable("/v1/topics/news", 200) == "/v1/topics/news"
    assert printable("/a\nINFO [node 1] forged", 200) == "/a\\x0aINFO [node 1] forged"
    assert printable("\x1b[31mred\r", 200) == "\\x1b[31mred\\x0d"
    assert printable("a\u2028b\x85c", 200) == "a\\u2028b\\x85c"
    assert printable("é ü 東京", 200) == "é ü 東京"  # printable text stays as sent


def test_printable_cuts_long_text_and_says_how_long_it_was() -> None:
    text = printable("x" * 10_000, 200)
    assert text == "x" * 200 + "...(10000 chars)"


def test_a_client_error_is_one_line_with_method_path_status_error_client_and_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="server.http_server")
    log_client_error(
        "GET", "/v1/topics/no\nsuch", "127.0.0.1", 404, "UNKNOWN_TOPIC_OR_PARTITION", "gone"
    )
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "client error: GET /v1/topics/no\\x0asuch from 127.0.0.1: 404 "
        "UNKNOWN_TOPIC_OR_PARTITION: gone"
    )
    assert "\n" not in record.getMessage()


def test_a_flood_of_client_errors_is_bounded_by_the_node_logs_repeat_limit() -> None:
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    handler = Keep()
    handler.addFilter(RepeatLimit(burst=5, interval_s=60.0, clock=lambda: 0.0))
    logger = logging.getLogger("server.http_server")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        for i in range(1000):
            log_client_error("GET", f"/random/{i}", "10.0.0.1", 404, "NOT_FOUND", f"no {i}")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert len(kept) == 5  # every line shares the one template, whatever the client sent
    assert all(r.msg == CLIENT_ERROR_LINE for r in kept)


def test_an_error_answer_relayed_from_the_controller_is_read_from_its_json() -> None:
    relayed = web.Response(
        body=b'{"error_code":40900,"error":"TOPIC_ALREADY_EXISTS","message":"exists"}\n',
        status=409,
    )
    assert error_of(relayed) == ("TOPIC_ALREADY_EXISTS", "exists")
    assert error_of(web.Response(body=b"not json", status=400)) == ("", "")
    assert error_of(web.Response(status=404)) == ("", "")


# -- scrape-time families ------------------------------------------------------------------------


def replica(
    topic: str,
    partition: int,
    *,
    leader: bool,
    isr: int = 3,
    min_isr: int = 2,
    end: int = 10,
    leader_end: int = -1,
) -> ReplicaFacts:
    return ReplicaFacts(topic, partition, leader, 3, isr, min_isr, end, leader_end)


class Fixed(Collector):
    def __init__(self, facts: NodeFacts) -> None:
        self.facts = facts

    def collect(self) -> Iterable[Metric]:
        return families(self.facts)


def exposed(facts: NodeFacts) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The facts' families as Prometheus would scrape them, parsed back."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed(facts))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_under_replicated_and_under_min_isr_count_only_the_partitions_led_here() -> None:
    facts = NodeFacts(
        replicas=[
            replica("a", 0, leader=True, isr=3),
            replica("a", 1, leader=True, isr=2),  # under-replicated, not under min ISR
            replica("a", 2, leader=True, isr=1),  # both
            replica("b", 0, leader=False, isr=1),  # followed: its leader reports it
        ]
    )
    values = exposed(facts)
    assert values[("kraft_partitions_under_replicated", ())] == 2
    assert values[("kraft_partitions_under_min_isr", ())] == 1
    assert values[("kraft_partition_replicas", ())] == 4
    assert values[("kraft_partition_leaders", ())] == 3


def test_offline_partitions_are_reported_by_the_active_controller_only() -> None:
    assert (
        exposed(NodeFacts(offline_partitions=4, quorum_leader=True))[
            ("kraft_partitions_offline", ())
        ]
        == 4
    )
    assert (
        exposed(NodeFacts(offline_partitions=4, quorum_leader=False))[
            ("kraft_partitions_offline", ())
        ]
        == 0
    )


def test_follower_lag_is_the_leaders_last_heard_end_minus_the_local_end() -> None:
    facts = NodeFacts(
        replicas=[
            replica("a", 0, leader=False, end=90, leader_end=100),
            replica("a", 1, leader=False, end=50, leader_end=50),
            replica("a", 2, leader=False, end=7, leader_end=-1),  # no answer yet: no series
            replica("a", 3, leader=True, end=3),
            replica("b", 0, leader=False, end=12, leader_end=10),  # ahead (to truncate): 0
        ]
    )
    values = exposed(facts)
    lag = "kraft_follower_lag_records"
    assert values[(lag, (("partition", "0"), ("topic", "a")))] == 10
    assert values[(lag, (("partition", "1"), ("topic", "a")))] == 0
    assert (lag, (("partition", "2"), ("topic", "a"))) not in values
    assert (lag, (("partition", "3"), ("topic", "a"))) not in values
    assert values[(lag, (("partition", "0"), ("topic", "b")))] == 0
    assert values[("kraft_follower_lag_max_records", ())] == 10


def test_consumer_group_lag_is_the_high_watermark_minus_the_committed_offset() -> None:
    facts = NodeFacts(
        group_offsets=[GroupOffset("g", "t", 0, 40, 100), GroupOffset("g", "t", 1, 9, 9)]
    )
    values = exposed(facts)
    lag = "kraft_consumer_group_lag_records"
    assert values[(lag, (("group", "g"), ("partition", "0"), ("topic", "t")))] == 60
    assert values[(lag, (("group", "g"), ("partition", "1"), ("topic", "t")))] == 0


def test_counters_and_quorum_gauges_are_exposed_as_kept() -> None:
    traffic = TopicTraffic()
    traffic.sent(3, 300)
    facts = NodeFacts(
        quorum_leader=True,
        quorum_term=7,
        applied_index=123,
        quorum_leader_changes=2,
        isr_shrinks=4,
        isr_expands=3,
        leader_elections=5,
        traffic={"news": traffic},
        loop_lag_max_s=0.25,
    )
    values = exposed(facts)
    assert values[("kraft_quorum_leader", ())] == 1
    assert values[("kraft_quorum_term", ())] == 7
    assert values[("kraft_quorum_applied_index", ())] == 123
    assert values[("kraft_quorum_leader_changes_total", ())] == 2
    assert values[("kraft_isr_shrinks_total", ())] == 4
    assert values[("kraft_isr_expands_total", ())] == 3
    assert values[("kraft_leader_elections_total", ())] == 5
    assert values[("kraft_event_loop_lag_max_seconds", ())] == 0.25
    assert values[("kraft_topic_records_out_total", (("topic", "news"),))] == 3
    assert values[("kraft_topic_bytes_out_total", (("topic", "news"),))] == 300
    assert values[("kraft_topic_bytes_in_total", (("topic", "news"),))] == 0


# -- traffic and fsync ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Info:
    first_offset: int
    last_offset: int
    size_bytes: int


def test_traffic_counts_appended_batches_and_not_a_retried_duplicate() -> None:
    table = TrafficTable()
    news = table.topic("news")
    assert table.topic("news") is news  # one object per topic, kept
    news.appended([Info(0, 9, 500), Info(10, 10, 80)])
    news.appended([Info(0, 9, 0)])  # a duplicate: the first copy's offsets, nothing stored
    assert (news.records_in, news.bytes_in) == (11, 580)
    news.sent(4, 100)
    news.sent(1, 20)
    assert (news.records_out, news.bytes_out) == (5, 120)


def test_timed_fsync_tells_the_observer_each_duration() -> None:
    seen: list[float] = []
    durable.fsync_observer = seen.append
    try:
        with tempfile.TemporaryFile() as f:
            f.write(b"x")
            f.flush()
            durable.timed_fsync(f.fileno())
            durable.timed_fsync(f.fileno())
    finally:
        durable.fsync_observer = None
    assert len(seen) == 2 and all(s >= 0 for s in seen)


def test_timed_fsync_without_an_observer_still_fsyncs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", calls.append)
    durable.timed_fsync(5)
    assert calls == [5]
