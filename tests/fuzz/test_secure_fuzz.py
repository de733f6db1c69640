"""Fuzzing a node with TLS, authentication and ACLs on (HTTP:SASL_SSL, Kafka's
StandardAuthorizer, ``super.users=User:admin``): the same mutated requests, over TLS, each
sent as the super user, as ``alice`` (one ACL: READ on topic ``fuzz``), with a wrong password, with
junk credentials or with none.

Beyond the rules every answer keeps (``tests/fuzz/checks.py``), no request gets more than
its sender may have: without valid credentials only the health check answers 2xx or 3xx, and
alice gets a 2xx only for reading topic ``fuzz`` (its description, records and offsets) and
the topic list, whatever the method, path encoding, dot segments or headers. After the run
the node is ready, the super user's writes work and alice's ACL still holds; plain HTTP on
its TLS port gets no answer in clear.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scripts.node_process import Cluster
from server.config import STANDARD_AUTHORIZER
from tests.fuzz.checks import (
    FOUND,
    SURVEY,
    AuthorizationBypass,
    check_or_record,
    error_body,
    label,
    may_get,
)
from tests.fuzz.live import ANSWER_DEADLINE_S, IDLE_MS, Target, fuzz, logged_tracebacks, ok
from tests.fuzz.mutations import cases
from tests.fuzz.routes import (
    CONFIG_TOPIC,
    DOOMED_TOPIC,
    MAIN_PARTITIONS,
    MAIN_TOPIC,
    READ_TIMEOUT_MS,
    Case,
    Context,
    app_routes,
)
from tests.fuzz.wire import Answer, Closed, Request, exchange

ROUTES = app_routes()
ADMIN = ("admin", "admin-secret-1")
ALICE = ("alice", "alice-secret-1")


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


# (what the credential is, the Authorization header value); None: no header.
CREDENTIALS: tuple[tuple[str, bytes | None], ...] = (
    ("admin", _basic(*ADMIN)),
    ("alice", _basic(*ALICE)),
    ("none", None),
    ("wrong password", _basic(ALICE[0], "not-her-password")),
    ("unknown user", _basic("mallory", "x")),
    ("empty password", _basic(ALICE[0], "")),
    ("no colon", b"Basic " + base64.b64encode(ALICE[0].encode())),
    ("bad base64", b"Basic !!!!"),
    ("not UTF-8", b"Basic " + base64.b64encode(b"alice:\xff\xfe")),
    ("lower-case scheme", b"basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode())),
    ("bearer", b"Bearer " + ADMIN[1].encode()),
    ("password with a colon", _basic(ALICE[0], ALICE[1] + ":x")),
    ("huge", b"Basic " + b"A" * 20_000),
)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One node with SASL and ACLs; topics as the plain fuzz has them (as admin), and alice
    allowed to READ topic fuzz."""
    properties = {
        "http.request.read.timeout.ms": str(READ_TIMEOUT_MS),
        "connections.max.idle.ms": str(IDLE_MS),
        "authorizer.class.name": STANDARD_AUTHORIZER,
        "super.users": "User:admin",
    }
    cluster = Cluster.create(
        tmp_path_factory.mktemp("secure-fuzz"),
        1,
        security="SASL_SSL",
        users=dict((ADMIN, ALICE)),
        **properties,  # type: ignore[arg-type]  # str values; mypy weighs them against the ints too
    )
    try:
        cluster.start()
        node = cluster.nodes[0]
        for name, partitions in (
            (MAIN_TOPIC, MAIN_PARTITIONS),
            (CONFIG_TOPIC, 1),
            (DOOMED_TOPIC, 1),
        ):
            body = {"name": name, "partitions": partitions, "replication_factor": 1}
            ok(*node.http("POST", "/v1/topics", body), f"create {name}")
        acl = {
            "resource_type": "TOPIC",
            "resource_name": MAIN_TOPIC,
            "pattern_type": "LITERAL",
            "principal": "User:alice",
            "host": "*",
            "operation": "READ",
            "permission": "ALLOW",
        }
        ok(*node.http("POST", "/v1/acls", {"acls": [acl]}), "alice's ACL")
        for partition in range(MAIN_PARTITIONS):
            path = f"/v1/topics/{MAIN_TOPIC}/partitions/{partition}/records"
            records = {"records": [{"key": f"k{i}", "value": i} for i in range(5)]}
            ok(*node.http("POST", path, records), f"produce to {partition}")
        describe = {
            name: ok(*node.http("GET", f"/v1/topics/{name}"), "describe")
            for name in (MAIN_TOPIC, CONFIG_TOPIC, DOOMED_TOPIC)
        }
        cluster_view = ok(*node.http("GET", "/v1/cluster"), "cluster")
        ctx = Context(
            cluster_id=cluster_view["cluster_id"],
            topic_ids={name: d["topic_id"] for name, d in describe.items()},
            node_ids=(node.node_id,),
            urls=(node.url,),
        )
        assert node.cafile is not None
        tls = ssl.create_default_context(cafile=str(node.cafile))
        yield Target(cluster, ctx, {node.node_id: node.log_file.stat().st_size}, tls)
    finally:
        cluster.stop()


@st.composite
def _signed_cases(draw: st.DrawFn, ctx: Context) -> tuple[str, Case]:
    """A mutated case with credentials in front; the principal it may act as."""
    # A third valid requests, a third with odd headers, a third mutated anywhere: many
    # reach the ACL checks, and the rest try to slip past them.
    how = draw(st.sampled_from(("valid", "headers", "wild")))
    wild = how == "wild"
    strategy = cases(
        ctx,
        ROUTES,
        method_odds=wild,
        path_odds=wild,
        query_odds=wild,
        header_odds=how != "valid",
        body_odds=wild,
    )
    case = draw(strategy)
    # Mostly the two real users, so that most requests are decided by the ACLs.
    _, value = draw(st.sampled_from(CREDENTIALS[:2]) | st.sampled_from(CREDENTIALS))
    headers = case.request.headers
    if value is not None:
        headers = ((b"Authorization", value),) + headers
    request = Request(case.request.method, case.request.target, headers, case.request.body)
    # The most a request may be taken for: any valid credential among its headers (the
    # scheme's name is case-insensitive, RFC 7235).
    given_values = {
        v.split(b" ", 1)[-1]
        for n, v in headers
        if n.lower() == b"authorization"
        if v[:6].lower() == b"basic "
    }
    principal = (
        "admin"
        if _basic(*ADMIN)[6:] in given_values
        else "alice"
        if _basic(*ALICE)[6:] in given_values
        else "nobody"
    )
    return principal, Case(request, case.node, case.route, case.odd_numbers, case.odd_path_numbers)


@fuzz(1200)
@given(data=st.data())
def test_requests_with_any_credentials_get_no_more_than_their_sender_may(
    secure: Target, data: st.DataObject
) -> None:
    principal, case = data.draw(_signed_cases(secure.ctx), label="case")
    outcome = exchange(secure.port(0), case.request, ANSWER_DEADLINE_S, tls=secure.tls)
    assert not secure.dead(), "\n".join(secure.dead())
    check_or_record(case, outcome)
    if not isinstance(outcome, Answer):
        return

    def said() -> str:
        return f"as {principal}: {case!r}\n  -> {outcome.summary()}"

    if outcome.status < 400 and not may_get(principal, case.request):
        _broken(AuthorizationBypass(said()), case.route, outcome, principal)
    body = error_body(outcome)
    if (
        outcome.status == 401
        and body is not None
        and not body["message"].startswith("internal call refused")
        and outcome.header("www-authenticate") is None
    ):
        _broken(NoChallenge(said()), case.route, outcome, principal)


class NoChallenge(AssertionError):
    """A 401 for missing or wrong credentials without ``WWW-Authenticate`` (RFC 9110: a 401
    names the scheme to use, so curl and browsers know to send Basic)."""


def _broken(error: AssertionError, route: str, outcome: Answer, principal: str) -> None:
    if not SURVEY:
        raise error
    FOUND[(type(error).__name__, route, label(outcome), principal)] = (0, str(error))


def test_plain_http_on_the_tls_port_gets_no_answer_in_clear(secure: Target) -> None:
    case = Case(Request(b"GET", b"/v1/cluster"), 0, "GET /v1/cluster")
    outcome = exchange(secure.port(0), case.request, ANSWER_DEADLINE_S)
    assert isinstance(outcome, Closed), f"{case!r}\n  -> {outcome.summary()}"


def test_after_the_secure_fuzz_the_node_is_ready_and_its_acls_hold(secure: Target) -> None:
    node = secure.nodes[0]
    assert not secure.dead(), "\n".join(secure.dead())
    status, body = node.http("GET", "/v1/health/ready", auth=None)
    assert status == 200, body
    path = f"/v1/topics/{MAIN_TOPIC}/partitions/0/records"
    written = ok(*node.http("POST", path, {"records": [{"value": "after"}]}), "admin writes")
    offset = written["offsets"][0]["offset"]
    read = ok(*node.http("GET", f"{path}?offset={offset}"), "admin reads")
    assert [r["value"] for r in read["records"]][:1] == ["after"], read
    status, body = node.http("POST", path, {"records": [{"value": "x"}]}, auth=ALICE)
    assert status == 403 and body["error"] == "TOPIC_AUTHORIZATION_FAILED", (status, body)
    status, body = node.http("GET", "/v1/topics", auth=None)
    assert status == 401 and body["error"] == "SASL_AUTHENTICATION_FAILED", (status, body)


def test_after_the_secure_fuzz_the_node_log_holds_no_traceback(secure: Target) -> None:
    node = secure.nodes[0]
    report = logged_tracebacks(secure.log_since_start(node))
    assert not report, f"{len(report)} tracebacks in the log:\n" + "\n".join(report[:10])
