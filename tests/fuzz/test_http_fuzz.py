"""Fuzzing a live three-node cluster over HTTP (issue 11, item 7).

Hypothesis builds requests from the node's real routes and mutates their methods, paths,
queries, headers and bodies (``tests/fuzz/mutations.py``); each goes over a raw socket
(``tests/fuzz/wire.py``) to one of the nodes, and its answer must keep the rules of
``tests/fuzz/checks.py``: a well-formed answer or a closed connection, never a hang; a
documented status, never a 500; JSON errors with Kafka's names. Then the cases the issue
found by hand, requests that stall halfway, and after all of it the cluster must be as it
was: every node running and ready, no broker fenced, the main topic taking writes.

The tests of this module run in order and share one cluster: the checks after the fuzz come
last. Hypothesis runs derandomized (a fixed seed per test, no example database), so a run
sends the same requests every time.
"""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scripts.node_process import http, wait_until
from tests.fuzz.checks import check, check_or_record, error_body
from tests.fuzz.known import KNOWN
from tests.fuzz.live import (
    ANSWER_DEADLINE_S,
    IDLE_MS,
    Target,
    fuzz,
    logged_tracebacks,
    ok,
    produce,
)
from tests.fuzz.mutations import cases, raw_requests
from tests.fuzz.routes import (
    BODIES,
    FETCH_QUERY,
    MAIN_PARTITIONS,
    MAIN_TOPIC,
    QUERY,
    READ_TIMEOUT_MS,
    Case,
    app_routes,
)
from tests.fuzz.wire import Answer, Closed, Outcome, Request, exchange, exchange_pipelined

ROUTES = app_routes()
# A stalled request must be answered (408) or its connection closed within the node's read
# timeout, or its idle timeout for a connection that sends nothing; this margin is for a
# loaded machine.
STALL_MARGIN_S = 5.0


def send(target: Target, case: Case, deadline_s: float = ANSWER_DEADLINE_S) -> Outcome:
    """Sends the case's request, checks every node still runs, and checks the answer."""
    outcome = exchange(target.port(case.node), case.request, deadline_s)
    dead = target.dead()
    assert not dead, f"{case!r}\n  -> a node died:\n" + "\n".join(dead)
    check_or_record(case, outcome)
    return outcome


def test_the_fuzz_knows_every_route() -> None:
    """Every route of make_app that takes a body has a valid one here, and every body here is
    a route's: a new endpoint is fuzzed from the start."""
    routes = set(ROUTES)
    assert set(BODIES) <= routes, sorted(set(BODIES) - routes)
    takes_body = {(m, t) for m, t in routes if m in ("POST", "PUT", "PATCH")}
    assert takes_body <= set(BODIES), sorted(takes_body - set(BODIES))
    templates = {t for _, t in routes}
    assert set(QUERY) <= templates and {t for _, t in FETCH_QUERY} <= templates


# -- the cases issue 11 found by hand ------------------------------------------------------------


@pytest.mark.parametrize("name", list(KNOWN))
def test_known_bad_request_gets_its_clean_answer(target: Target, name: str) -> None:
    known = KNOWN[name]
    case = known.build(target.ctx)
    outcome = send(target, case)
    got = "closed" if isinstance(outcome, Closed) else getattr(outcome, "status", None)
    if isinstance(got, int) and 400 <= got < 500 and "4xx" in known.want:
        got = "4xx"
    assert got in known.want, f"{case!r}\n  -> {outcome.summary()}; want {known.want}"
    if known.message_must_not and isinstance(outcome, Answer):
        body = error_body(outcome)
        assert body is not None and known.message_must_not not in body["message"], (
            f"{case!r}\n  -> {outcome.summary()}"
        )


# -- the fuzz ------------------------------------------------------------------------------------


@fuzz(1500)
@given(data=st.data())
def test_requests_mutated_anywhere_get_clean_answers(target: Target, data: st.DataObject) -> None:
    send(target, data.draw(cases(target.ctx, ROUTES), label="case"))


@fuzz(800)
@given(data=st.data())
def test_mutated_bodies_get_clean_answers(target: Target, data: st.DataObject) -> None:
    routes = [r for r in ROUTES if r in BODIES]
    strategy = cases(
        target.ctx,
        routes,
        method_odds=False,
        path_odds=False,
        query_odds=False,
        header_odds=False,
    )
    send(target, data.draw(strategy, label="case"))


@fuzz(500)
@given(data=st.data())
def test_mutated_queries_get_clean_answers(target: Target, data: st.DataObject) -> None:
    routes = [r for r in ROUTES if r in FETCH_QUERY or r[1] in QUERY]
    strategy = cases(
        target.ctx, routes, method_odds=False, path_odds=False, header_odds=False, body_odds=False
    )
    send(target, data.draw(strategy, label="case"))


@fuzz(800)
@given(data=st.data())
def test_mutated_headers_get_clean_answers(target: Target, data: st.DataObject) -> None:
    strategy = cases(
        target.ctx, ROUTES, method_odds=False, path_odds=False, query_odds=False, body_odds=False
    )
    send(target, data.draw(strategy, label="case"))


@fuzz(800)
@given(data=st.data())
def test_mutated_methods_and_paths_get_clean_answers(target: Target, data: st.DataObject) -> None:
    strategy = cases(target.ctx, ROUTES, query_odds=False, header_odds=False, body_odds=False)
    send(target, data.draw(strategy, label="case"))


@fuzz(200)
@given(raw=raw_requests(), node=st.integers(0, 2))
def test_requests_that_are_not_http_get_clean_answers(
    target: Target, raw: bytes, node: int
) -> None:
    send(target, Case(Request(b"", b"", raw=raw), node, "raw"))


# Requests every node answers 200 whatever the fuzz did before.
_ALWAYS_200 = (b"/v1/cluster", b"/v1/topics", b"/v1/health/ready", b"/v1/cluster/quorum")


class AnswerOutOfOrder(AssertionError):
    """A pipelined request got an answer that is not its own (HTTP/1.1 answers in order)."""


@fuzz(300)
@given(data=st.data())
def test_pipelined_requests_get_their_answers_in_order(target: Target, data: st.DataObject) -> None:
    """A valid request and a mutated one sent at once on one keep-alive connection: the
    first gets its own answer (200), then the second gets one (or the connection closes)."""
    path = data.draw(st.sampled_from(_ALWAYS_200), label="first")
    first = Request(b"GET", path, ((b"Connection", b"keep-alive"),))
    second = data.draw(cases(target.ctx, ROUTES, method_odds=False), label="second")
    port = target.port(second.node)
    outcomes = exchange_pipelined(port, [first, second.request], ANSWER_DEADLINE_S)
    assert not target.dead(), "\n".join(target.dead())
    if not (isinstance(outcomes[0], Answer) and outcomes[0].status == 200):
        got = "; ".join(o.summary() for o in outcomes)
        raise AnswerOutOfOrder(f"GET {path.decode()}, then {second!r}\n  -> {got}")
    if len(outcomes) > 1:
        check_or_record(second, outcomes[1])


def test_the_rest_of_a_body_past_its_content_length_is_a_request_answered_or_closed(
    target: Target,
) -> None:
    """Bytes after a short Content-Length are the next request's head, which never ends: the
    first request is answered, then the rest gets a JSON 4xx or a close within the read
    timeout."""
    body = b'{"records": [{"value": "v"}]}'
    request = Request(
        b"POST",
        f"/v1/topics/{MAIN_TOPIC}/records".encode(),
        ((b"Connection", b"keep-alive"), (b"Content-Length", b"5")),
        body,
    )
    deadline_s = READ_TIMEOUT_MS / 1000 + STALL_MARGIN_S
    first, *rest = exchange_pipelined(target.port(0), [request, request], deadline_s)
    said = f"{request.summary()}\n  -> " + "; ".join(o.summary() for o in [first, *rest])
    check_or_record(Case(request, 0, "POST /v1/topics/{topic}/records"), first)
    # Its 5 bytes of body, '{"rec', are not JSON: INVALID_REQUEST.
    if not (isinstance(first, Answer) and first.status == 400):
        raise AnswerOutOfOrder(said)
    assert rest, f"the first answer ended the exchange: {said}"
    check_or_record(Case(Request(b"", b"", raw=body[5:]), 0, "raw"), rest[0])
    if isinstance(rest[0], Answer):
        assert 400 <= rest[0].status < 500, said


# -- requests that stop halfway ------------------------------------------------------------------

_BODY_8_OF_100 = (
    b"POST /v1/topics/fuzz/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Content-Length: 100\r\n\r\n{"record'
)
STALLS: dict[str, tuple[bytes, float]] = {
    # (what is sent, how long apart each byte goes; 0: all at once)
    "a connection that sends nothing": (b"", 0.0),
    "half a request line": (b"GET /v1/clus", 0.0),
    "headers that never end": (b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\n", 0.0),
    "8 of 100 body bytes": (_BODY_8_OF_100, 0.0),
    "8 of 100 body bytes to an internal endpoint": (
        _BODY_8_OF_100.replace(b"/v1/topics/fuzz/records", b"/v1/internal/replica-fetch"),
        0.0,
    ),
    "a chunked body without its last chunk": (
        b"POST /v1/topics/fuzz/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b'\r\n5\r\n{"rec\r\n',
        0.0,
    ),
    "headers sent one byte every 300 ms": (
        b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200 + b"\r\n\r\n",
        0.3,
    ),
}


@pytest.mark.parametrize("name", list(STALLS))
def test_a_stalled_request_is_answered_or_closed_in_time(target: Target, name: str) -> None:
    """Kafka closes what stalls (connections.max.idle.ms); our read timeout cuts a request
    whose head or body stops coming: a JSON 408, or the connection closed, within it."""
    data, trickle_s = STALLS[name]
    limit_ms = IDLE_MS if not data else READ_TIMEOUT_MS
    deadline_s = limit_ms / 1000 + STALL_MARGIN_S
    case = Case(Request(b"", b"", raw=data or b" "), 0, "raw")
    if data:
        outcome = exchange(target.port(0), data, deadline_s, trickle_s=trickle_s)
    else:
        outcome = exchange(target.port(0), b"", deadline_s)
    check(case, outcome)
    if isinstance(outcome, Answer):
        assert 400 <= outcome.status < 500, f"{name}: {outcome.summary()}"


# -- after the fuzz: the cluster is as it was ----------------------------------------------------


def test_after_the_fuzz_every_node_runs_and_is_ready(target: Target) -> None:
    assert not target.dead(), "\n".join(target.dead())
    for node in target.nodes:
        status, body = http("GET", f"{node.url}/v1/health/ready", timeout=10)
        assert status == 200, f"node {node.node_id}: {status} {body}"


def test_after_the_fuzz_no_broker_was_fenced(target: Target) -> None:
    """The fuzz took no node's heartbeats away: no broker is fenced now, none was seen fenced
    and every node answered while the fuzz ran, and the controller never fenced one (its log
    says so when it does)."""
    assert target.watch is not None and target.watch.polls > 0
    assert not target.watch.seen, "while the fuzz ran:\n" + "\n".join(target.watch.seen[:20])
    ids = set(target.ctx.node_ids)
    for node in target.nodes:
        status, body = http("GET", f"{node.url}/v1/cluster", timeout=10)
        assert status == 200, body
        fenced = [b["id"] for b in body["brokers"] if b["id"] in ids and b["fenced"]]
        missing = ids - {b["id"] for b in body["brokers"]}
        assert not fenced and not missing, f"node {node.node_id} sees {body['brokers']}"
    for node in target.nodes:
        fencings = [
            line
            for line in target.log_since_start(node).splitlines()
            if (m := re.search(r"broker (\d+) missed its heartbeats", line)) and int(m[1]) in ids
        ]
        assert not fencings, f"node {node.node_id} fenced brokers during the fuzz:\n" + "\n".join(
            fencings
        )


def test_after_the_fuzz_the_main_topic_takes_writes_and_reads(target: Target) -> None:
    """Every partition of the main topic takes an acks=all write and serves it back (a
    leader deposed by a request's number would refuse it for good), and so does a new
    topic."""
    first = target.nodes[0]
    marker = base64.b64encode(b"after the fuzz").decode()
    for partition in range(MAIN_PARTITIONS):
        body = ok(
            *produce(first, MAIN_TOPIC, partition, [{"value": marker}]),
            f"produce to {MAIN_TOPIC}-{partition}",
        )
        offset = body["offsets"][0]["offset"]
        path = f"/v1/topics/{MAIN_TOPIC}/partitions/{partition}/records?offset={offset}"
        fetched = ok(*http("GET", first.url + path, timeout=30), f"fetch {path}")
        assert [r["value"] for r in fetched["records"]][:1] == [marker], fetched
    ok(
        *http(
            "POST",
            f"{first.url}/v1/topics",
            {"name": "after-fuzz", "partitions": 1, "replication_factor": 3},
            timeout=30,
        ),
        "create after-fuzz",
    )
    wait_until(
        "after-fuzz has a leader",
        lambda: (
            http("GET", f"{first.url}/v1/topics/after-fuzz")[1]["partitions"][0]["leader"]
            is not None
        ),
    )
    body = ok(*produce(first, "after-fuzz", 0, [{"value": marker}]), "produce to after-fuzz")
    assert body["offsets"][0]["offset"] == 0, body


def test_after_the_fuzz_node_logs_hold_no_traceback(target: Target) -> None:
    """A client's bad request is logged as one line without a traceback (issue 11, item 5)."""
    report = [
        f"node {node.node_id}: {record}"
        for node in target.nodes
        for record in logged_tracebacks(target.log_since_start(node))
    ]
    assert not report, f"{len(report)} tracebacks in the logs:\n" + "\n".join(report[:10])
