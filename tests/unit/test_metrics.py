"""The pure parts of /metrics: labels a stranger cannot multiply, the printable log text, the
scrape-time families over made-up facts, the per-topic traffic, the fsync observer, the
encoder chosen by the Accept header, and the scrape made off the event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from server import metrics as metrics_module
from server.http_batches import records_in
from server.http_server import client_error_template, log_client_error
from server.log_text import error_of, printable
from server.logs import RepeatLimit
from server.metrics import (
    REPLICA_FETCH_ROUTE,
    UNMATCHED,
    NodeFacts,
    NodeMetrics,
    ReplicaFacts,
    RequestMetrics,
    encoder_for,
    endpoint_label,
    families,
    is_long_poll,
    method_label,
)
from server.topic_metrics import TopicTraffic, TrafficTable
from storage import durable
from storage.batch import NewRecord, build_batch
from storage.log import AppendInfo

RECORDS = "/v1/topics/{topic}/partitions/{partition}/records"


async def _ok(request: web.Request) -> web.Response:
    return web.Response()


def routed(method: str, path: str) -> web.Request:
    """A request as the app's router leaves it (its match info set), without a socket."""
    app = web.Application()
    app.router.add_get("/v1/topics/{topic}", _ok)
    app.router.add_get(RECORDS, _ok)
    app.router.add_post(RECORDS, _ok)
    app.router.add_post(REPLICA_FETCH_ROUTE, _ok)
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
        ({"method": "other", "endpoint": UNMATCHED, "code": "404", "peer": "false"}, 200.0)
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


def test_a_produce_is_not_a_long_poll_whatever_its_timeout() -> None:
    # The producer always sends timeout_ms (how long to wait for acks), on the fetch's route.
    produce = routed("POST", "/v1/topics/t/partitions/0/records?acks=all&timeout_ms=30000")
    assert endpoint_label(produce) == RECORDS
    assert not is_long_poll(produce, RECORDS)


def test_follow_is_a_long_poll_only_when_the_fetch_handler_would_follow() -> None:
    for on in ("true", "TRUE", "1", "yes"):
        assert is_long_poll(
            routed("GET", f"/v1/topics/t/partitions/0/records?follow={on}"), RECORDS
        )
    for off in ("false", "0", "no", ""):
        request = routed("GET", f"/v1/topics/t/partitions/0/records?follow={off}")
        assert not is_long_poll(request, RECORDS), off
    # A timeout the handler reads as 0, or refuses, is no wait either.
    for timeout in ("00", "-5", "x", "５"):
        request = routed("GET", f"/v1/topics/t/partitions/0/records?timeout_ms={timeout}")
        assert not is_long_poll(request, RECORDS), timeout


def test_a_replica_fetch_is_a_long_poll() -> None:
    # It waits up to the replica fetch wait whenever the leader has nothing new.
    request = routed("POST", REPLICA_FETCH_ROUTE)
    assert endpoint_label(request) == REPLICA_FETCH_ROUTE
    assert is_long_poll(request, REPLICA_FETCH_ROUTE)


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

    def latency(endpoint: str, long_poll: str) -> float:
        labels = (("endpoint", endpoint), ("long_poll", long_poll), ("method", "GET"))
        return values[(count, (*labels, ("peer", "false")))]

    assert latency(RECORDS, "true") == 1
    assert latency(RECORDS, "false") == 1
    assert latency(UNMATCHED, "false") == 0
    requests = "kraft_http_requests_total"
    key = (("code", "400"), ("endpoint", UNMATCHED), ("method", "GET"), ("peer", "false"))
    assert values[(requests, key)] == 1


def test_requests_of_the_clusters_own_nodes_are_counted_apart() -> None:
    # A forwarded request is answered twice (the node called, the node that did the work):
    # peer="false" counts each client request once.
    registry = CollectorRegistry(auto_describe=False)
    metrics = RequestMetrics(registry)
    metrics.observe("POST", "/v1/topics", 400, False, 0.01)
    metrics.observe("POST", "/v1/topics", 400, False, 0.005, peer=True)
    values = {
        (s.name, s.labels["peer"]): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
        if s.name in ("kraft_http_requests_total", "kraft_http_request_duration_seconds_count")
    }
    assert values == {
        ("kraft_http_requests_total", "false"): 1,
        ("kraft_http_requests_total", "true"): 1,
        ("kraft_http_request_duration_seconds_count", "false"): 1,
        ("kraft_http_request_duration_seconds_count", "true"): 1,
    }


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


@contextmanager
def lines_through_the_repeat_limit() -> Iterator[list[logging.LogRecord]]:
    """The client-error lines the node log's repeat limit (5 a template here) lets through."""
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
        yield kept
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_a_flood_of_client_errors_is_bounded_by_the_node_logs_repeat_limit() -> None:
    with lines_through_the_repeat_limit() as kept:
        for i in range(1000):
            log_client_error("GET", f"/random/{i}", "10.0.0.1", 404, "NOT_FOUND", f"no {i}")
    assert len(kept) == 5  # every line shares the one template, whatever the client sent
    assert all(r.msg == client_error_template(404) for r in kept)


def test_a_flood_of_one_client_error_leaves_the_others_their_own_lines() -> None:
    with lines_through_the_repeat_limit() as kept:
        for i in range(1000):  # a scanner's 404s
            log_client_error("GET", f"/random/{i}", "10.0.0.1", 404, "NOT_FOUND", f"no {i}")
        log_client_error("GET", "/v1/topics/t", "10.0.0.2", 403, "TOPIC_AUTHORIZATION_FAILED", "no")
        log_client_error("POST", "/v1/topics", "10.0.0.3", 400, "INVALID_REQUEST", "bad")
    assert [r.getMessage().split(": ")[2][:3] for r in kept] == ["404"] * 5 + ["403", "400"]


def test_a_client_error_answered_to_a_peer_node_is_logged_at_the_level_asked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="server.http_server")
    log_client_error("POST", "/v1/topics", "10.0.0.9", 400, "INVALID_REQUEST", "x", logging.DEBUG)
    assert caplog.records == []  # below the node's level: not even formatted
    caplog.set_level(logging.DEBUG, logger="server.http_server")
    log_client_error("POST", "/v1/topics", "10.0.0.9", 400, "INVALID_REQUEST", "x", logging.DEBUG)
    [record] = caplog.records
    assert record.levelno == logging.DEBUG


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
        committed_offsets=[("g", "t", 0, 40), ("g", "t", 1, 9), ("g", "t", 2, 5)],
        # No replica of t-2 on this node: no high watermark, so no series (said in its HELP).
        high_watermarks={("t", 0): 100, ("t", 1): 9},
    )
    values = exposed(facts)
    lag = "kraft_consumer_group_lag_records"
    assert values[(lag, (("group", "g"), ("partition", "0"), ("topic", "t")))] == 60
    assert values[(lag, (("group", "g"), ("partition", "1"), ("topic", "t")))] == 0
    assert (lag, (("group", "g"), ("partition", "2"), ("topic", "t"))) not in values


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


def info(first_offset: int, last_offset: int, size_bytes: int) -> AppendInfo:
    return AppendInfo(first_offset, last_offset, -1, size_bytes)


def test_traffic_counts_appended_batches_and_not_a_retried_duplicate() -> None:
    table = TrafficTable()
    news = table.topic("news")
    assert table.topic("news") is news  # one object per topic, kept
    news.appended([info(0, 9, 500), info(10, 10, 80)])
    news.appended([info(0, 9, 0)])  # a duplicate: the first copy's offsets, nothing stored
    assert (news.records_in, news.bytes_in) == (11, 580)
    news.sent(4, 100)
    news.sent(1, 20)
    assert (news.records_out, news.bytes_out) == (5, 120)


def test_a_deleted_topics_counters_are_dropped() -> None:
    table = TrafficTable()
    table.topic("kept").sent(1, 10)
    table.topic("deleted").sent(2, 20)
    table.keep_only({"kept": object(), "new": object()})
    assert list(table.topics) == ["kept"]
    assert table.topic("kept").records_out == 1
    assert table.topic("deleted").records_out == 0  # made again: from 0


def test_a_traffic_copy_does_not_move_with_the_counters() -> None:
    traffic = TopicTraffic()
    traffic.appended([info(0, 4, 100)])
    copy = traffic.copy()
    traffic.sent(5, 50)
    assert (copy.records_in, copy.bytes_in, copy.records_out, copy.bytes_out) == (5, 100, 0, 0)


def test_records_out_of_a_binary_fetch_are_the_batches_record_counts() -> None:
    def batch(base: int, count: int) -> bytes:
        records = [NewRecord(None, b"v", 1000) for _ in range(count)]
        return build_batch(records, base_offset=base)

    # A compacted batch: 3 records left over offsets 10..19 (last_offset_delta 9, outside
    # what records_in reads, set by hand).
    compacted = bytearray(batch(10, 3))
    struct.pack_into(">i", compacted, 23, 9)
    assert records_in([batch(0, 7) + batch(7, 3), bytes(compacted)]) == 13
    assert records_in([]) == 0


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


def test_a_failing_observer_does_not_fail_a_successful_fsync(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", calls.append)

    def broken(seconds: float) -> None:
        raise RuntimeError("observer bug")

    monkeypatch.setattr(durable, "fsync_observer", broken)
    caplog.set_level(logging.WARNING, logger="storage.durable")
    durable.timed_fsync(7)  # does not raise
    assert calls == [7]
    assert any("observer failed" in r.getMessage() for r in caplog.records)


def test_an_fsync_failure_still_raises_with_an_observer(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    seen: list[float] = []
    monkeypatch.setattr(os, "fsync", failing)
    monkeypatch.setattr(durable, "fsync_observer", seen.append)
    with pytest.raises(OSError):
        durable.timed_fsync(7)
    assert seen == []


# -- the scrape ----------------------------------------------------------------------------------


def test_an_accept_header_prometheus_client_cannot_read_gets_the_text_format() -> None:
    registry = CollectorRegistry(auto_describe=False)
    RequestMetrics(registry).observe("GET", "/metrics", 200, False, 0.001)
    for accept in (
        "text/plain; version=x",
        "application/openmetrics-text; version=x",
        "text/plain; version=1..0",
    ):
        encoder, content_type = encoder_for(accept)
        assert content_type.startswith("text/plain; version=0.0.4"), accept
        assert b"kraft_http_requests_total{" in encoder(registry)
    assert encoder_for("application/openmetrics-text; version=1.0.0")[1].startswith(
        "application/openmetrics-text"
    )
    assert encoder_for(None)[1].startswith("text/plain; version=0.0.4")


def test_the_scrapes_families_and_text_are_made_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made_in: list[int] = []

    def recording_families(facts: NodeFacts) -> list[Metric]:
        made_in.append(threading.get_ident())
        return families(facts)

    facts = NodeFacts(committed_offsets=[("g", "t", 0, 1)], high_watermarks={("t", 0): 3})
    monkeypatch.setattr(metrics_module, "gather", lambda node: facts)
    monkeypatch.setattr(metrics_module, "families", recording_families)
    node_metrics = NodeMetrics(node=None)  # type: ignore[arg-type]  # gather is replaced

    async def scrape() -> tuple[bytes, str, int]:
        body, content_type = await node_metrics.exposition("text/plain; version=x")
        return body, content_type, threading.get_ident()

    body, content_type, loop_thread = asyncio.run(scrape())
    assert made_in and all(ident != loop_thread for ident in made_in)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert b'kraft_consumer_group_lag_records{group="g",partition="0",topic="t"} 2.0' in body
