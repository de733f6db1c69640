"""Fuzzing the node-to-node endpoints behind their proof: requests signed with the cluster's
secret (read from the node's log directory, as a peer holds it), so their handlers, not the
401 in front of them, answer mutated bodies, paths and headers.

A signed call is the cluster's own, so it may change things a stranger's may not; but no
number it carries may depose a leader (issue 11, defect 1: a replica fetch naming leader
epoch 2,000,000,000 stopped a partition for good) and none may answer a 500 (defect 4: a
22-digit partition in an internal call). One node, so what the calls disturb is its alone;
after the run it still leads every partition and takes writes.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scripts.node_process import Cluster, http
from server.internal_auth import NONCE_BYTES, InternalAuth
from tests.fuzz.checks import check_or_record
from tests.fuzz.live import ANSWER_DEADLINE_S, IDLE_MS, Target, fuzz, logged_tracebacks, ok
from tests.fuzz.mutations import cases
from tests.fuzz.routes import (
    BODIES,
    CONFIG_TOPIC,
    DOOMED_TOPIC,
    MAIN_PARTITIONS,
    MAIN_TOPIC,
    READ_TIMEOUT_MS,
    Case,
    Context,
    app_routes,
)
from tests.fuzz.wire import Answer, Outcome, Request, exchange

ROUTES = app_routes()
INTERNAL_ROUTES = [r for r in ROUTES if r[1].startswith("/v1/internal/")]
# The node signs as a peer that is not in the cluster: the proof says "one of us", nothing
# more.
SIGNER_ID = 7


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, InternalAuth]]:
    """One node with ``fuzz`` (3 partitions, records in each), ``fuzz-configs`` and
    ``fuzz-doomed``; and the signer of its cluster secret."""
    properties = {
        "http.request.read.timeout.ms": str(READ_TIMEOUT_MS),
        "connections.max.idle.ms": str(IDLE_MS),
    }
    cluster = Cluster.create(tmp_path_factory.mktemp("internal-fuzz"), 1, **properties)  # type: ignore[arg-type]
    try:
        cluster.start()
        node = cluster.nodes[0]
        for name in (MAIN_TOPIC, CONFIG_TOPIC, DOOMED_TOPIC):
            partitions = MAIN_PARTITIONS if name == MAIN_TOPIC else 1
            body = {"name": name, "partitions": partitions, "replication_factor": 1}
            ok(*http("POST", f"{node.url}/v1/topics", body), f"create {name}")
        for partition in range(MAIN_PARTITIONS):
            path = f"/v1/topics/{MAIN_TOPIC}/partitions/{partition}/records"
            records = {"records": [{"key": f"k{i}", "value": i} for i in range(5)]}
            ok(*http("POST", node.url + path, records), f"produce to {partition}")
        describe = {
            name: ok(*http("GET", f"{node.url}/v1/topics/{name}"), "describe")
            for name in (MAIN_TOPIC, CONFIG_TOPIC, DOOMED_TOPIC)
        }
        cluster_id = ok(*http("GET", f"{node.url}/v1/cluster"), "cluster")["cluster_id"]
        ctx = Context(
            cluster_id=cluster_id,
            topic_ids={name: d["topic_id"] for name, d in describe.items()},
            node_ids=(node.node_id,),
            urls=(node.url,),
        )
        secret = (node.log_dir / "cluster.secret").read_text(encoding="utf-8").strip()
        target = Target(cluster, ctx, {node.node_id: node.log_file.stat().st_size})
        yield target, InternalAuth(secret)
    finally:
        cluster.stop()


def signed_request(auth: InternalAuth, request: Request, target_id: int) -> Request:
    """The request with a valid proof (for node ``target_id``) in front of its own headers,
    made now."""
    proof = auth.sign(
        SIGNER_ID,
        request.method.decode("latin-1"),
        request.target.decode("latin-1"),
        request.body,
        int(time.time() * 1000),
        secrets.token_hex(NONCE_BYTES),
        target_id=target_id,
    )
    headers = tuple((k.encode(), v.encode()) for k, v in proof.items())
    return Request(request.method, request.target, headers + request.headers, request.body)


def send_signed(target: Target, auth: InternalAuth, case: Case) -> Outcome:
    request = signed_request(auth, case.request, target.ctx.node_ids[0])
    outcome = exchange(target.port(0), request, ANSWER_DEADLINE_S)
    assert not target.dead(), "\n".join(target.dead())
    check_or_record(
        Case(request, 0, case.route, case.odd_numbers, case.odd_path_numbers, signed=True),
        outcome,
    )
    return outcome


@fuzz(800)
@given(data=st.data())
def test_signed_internal_calls_get_clean_answers(
    signed: tuple[Target, InternalAuth], data: st.DataObject
) -> None:
    target, auth = signed
    # Mostly the internal endpoints; now and then a client route (a forwarded admin call).
    routes = data.draw(st.sampled_from((INTERNAL_ROUTES, INTERNAL_ROUTES, ROUTES)), label="set")
    # A quarter valid, a quarter with odd bodies, a quarter with odd headers, a quarter
    # mutated anywhere: most reach the handlers.
    how = data.draw(st.sampled_from(("valid", "body", "headers", "wild")), label="how")
    wild = how == "wild"
    strategy = cases(
        target.ctx,
        routes,
        method_odds=wild,
        path_odds=wild,
        query_odds=wild,
        header_odds=how in ("headers", "wild"),
        body_odds=how in ("body", "wild"),
    )
    send_signed(target, auth, data.draw(strategy, label="case"))


def _replica_fetch(ctx: Context, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = BODIES[("POST", "/v1/internal/replica-fetch")](ctx)
    partition = dict(body["partitions"][0])
    for key in list(changes):
        if key in partition:
            partition[key] = changes.pop(key)
    return {**body, **changes, "partitions": [partition]}


def _post(path: str, body: Any, route: str) -> Case:
    return Case(Request(b"POST", path.encode(), (), json.dumps(body).encode()), 0, route)


SIGNED_KNOWN = {
    "a replica fetch from a stranger naming leader epoch 2000000000": lambda ctx: _post(
        "/v1/internal/replica-fetch",
        _replica_fetch(ctx, replica_id=99, leader_epoch=2_000_000_000),
        "POST /v1/internal/replica-fetch",
    ),
    "a replica fetch from a replica naming leader epoch 2000000000": lambda ctx: _post(
        "/v1/internal/replica-fetch",
        _replica_fetch(ctx, replica_id=ctx.node_ids[0], leader_epoch=2_000_000_000),
        "POST /v1/internal/replica-fetch",
    ),
    "a replica fetch naming partition 10**22": lambda ctx: _post(
        "/v1/internal/replica-fetch",
        _replica_fetch(ctx, partition=10**22),
        "POST /v1/internal/replica-fetch",
    ),
    "a heartbeat of broker 9999999999999999999999": lambda ctx: _post(
        "/v1/internal/brokers/9999999999999999999999/heartbeat",
        {"broker_epoch": 0},
        "POST /v1/internal/brokers/{broker}/heartbeat",
    ),
    "an ISR change naming leader epoch 2000000000": lambda ctx: _post(
        "/v1/internal/alter-isr",
        {
            "leader": ctx.node_ids[0],
            "partitions": [
                {
                    "topic_id": ctx.topic_ids[MAIN_TOPIC],
                    "partition": 1,
                    "leader_epoch": 2_000_000_000,
                    "partition_epoch": 2_000_000_000,
                    "isr": [ctx.node_ids[0]],
                }
            ],
        },
        "POST /v1/internal/alter-isr",
    ),
}


@pytest.mark.parametrize("name", list(SIGNED_KNOWN))
def test_a_signed_call_with_a_number_out_of_range_deposes_nobody(
    signed: tuple[Target, InternalAuth], name: str
) -> None:
    """Answered cleanly (a 2xx or a JSON 4xx, never a 500), and the node still leads and
    takes writes on the partition it named."""
    target, auth = signed
    outcome = send_signed(target, auth, SIGNED_KNOWN[name](target.ctx))
    assert isinstance(outcome, Answer) and outcome.status < 500, outcome.summary()
    node = target.nodes[0]
    for partition in (0, 1):
        path = f"/v1/topics/{MAIN_TOPIC}/partitions/{partition}/records"
        status, body = http("POST", node.url + path, {"records": [{"value": name}]})
        assert status == 200, f"after {name}: produce to {MAIN_TOPIC}-{partition}: {body}"


def test_after_the_signed_fuzz_the_node_leads_every_partition_and_takes_writes(
    signed: tuple[Target, InternalAuth],
) -> None:
    target, _ = signed
    node = target.nodes[0]
    assert not target.dead(), "\n".join(target.dead())
    status, body = http("GET", f"{node.url}/v1/health/ready", timeout=10)
    assert status == 200, body
    described = ok(*http("GET", f"{node.url}/v1/topics/{MAIN_TOPIC}"), "describe")
    leaders = {p["partition"]: p["leader"] for p in described["partitions"]}
    assert leaders == dict.fromkeys(range(MAIN_PARTITIONS), node.node_id), described
    for partition in range(MAIN_PARTITIONS):
        path = f"/v1/topics/{MAIN_TOPIC}/partitions/{partition}/records"
        written = ok(*http("POST", node.url + path, {"records": [{"value": "after"}]}), path)
        offset = written["offsets"][0]["offset"]
        read = ok(*http("GET", f"{node.url}{path}?offset={offset}"), f"read {path}")
        assert [r["value"] for r in read["records"]][:1] == ["after"], read


def test_after_the_signed_fuzz_the_node_log_holds_no_traceback(
    signed: tuple[Target, InternalAuth],
) -> None:
    target, _ = signed
    report = logged_tracebacks(target.log_since_start(target.nodes[0]))
    assert not report, f"{len(report)} tracebacks in the log:\n" + "\n".join(report[:10])
