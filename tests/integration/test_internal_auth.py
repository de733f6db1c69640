"""Node-to-node calls carry proof of the cluster secret, and no request deposes a leader
(issue 11, defect 1), on three real nodes.

The issue's probe: one unauthenticated ``POST /v1/internal/replica-fetch`` with leader epoch
2,000,000,000 made the leader stop leading for good. Now the call is refused (401) without
proof, and even with a valid proof the epoch changes nothing: epochs come from the metadata.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from server.internal_auth import BODY_HEADER, NODE_HEADER, SIGNATURE_HEADER
from server.replication import decode_response
from tests.integration.conftest import running_cluster
from tests.integration.internal_calls import call, proof, signed_call
from tests.integration.test_cluster import create_topic
from tests.integration.test_failover import create_everywhere, partition_view, wait_full_isr
from tests.integration.test_replication import leader_of, produce

INTERNAL_PATHS = [
    "/v1/internal/brokers",
    "/v1/internal/brokers/1/heartbeat",
    "/v1/internal/producer-ids",
    "/v1/internal/alter-isr",
    "/v1/internal/replica-fetch",
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("internal-auth")) as handle:
        yield handle


def victim_request(topic_id: str, epoch: int = 2_000_000_000) -> dict[str, Any]:
    """The issue's exact request."""
    return {
        "replica_id": 99,
        "partitions": [
            {
                "topic": "victim",
                "partition": 0,
                "topic_id": topic_id,
                "leader_epoch": epoch,
                "fetch_offset": 0,
                "flushed_offset": 0,
                "last_fetched_epoch": -1,
            }
        ],
    }


def error_of(status: int, raw: bytes, content_type: str) -> str:
    assert content_type.startswith("application/json"), (status, content_type, raw[:200])
    return str(json.loads(raw)["error"])


def produce_once(node: NodeProcess, topic: str, value: str) -> tuple[int, Any]:
    """One acks=all produce to the partition's leader, no retry: it must succeed now."""
    return http(
        "POST",
        f"{node.url}/v1/topics/{topic}/partitions/0/records?timeout_ms=10000",
        {"records": [{"value": value}]},
    )


@pytest.fixture(scope="module")
def victim(cluster: Cluster) -> tuple[NodeProcess, str]:
    """The issue's topic, replication factor 3, all in sync, with one record; its leader and
    topic id."""
    leader = create_everywhere(cluster, "victim")
    assert produce(leader, "victim", ["before"]) == [0]
    wait_full_isr(leader, "victim")
    status, body = http("GET", f"{leader.url}/v1/topics/victim")
    assert status == 200, body
    return leader, str(body["topic_id"])


def assert_still_leads(cluster: Cluster, leader: NodeProcess, epoch: int) -> None:
    for node in cluster.nodes:
        view = partition_view(node, "victim")
        assert view is not None and (view["leader"], view["leader_epoch"]) == (
            leader.node_id,
            epoch,
        ), (node.node_id, view)


def test_the_issues_replica_fetch_without_proof_is_refused_and_the_partition_takes_produces(
    cluster: Cluster, victim: tuple[NodeProcess, str]
) -> None:
    leader, topic_id = victim
    epoch = partition_view(leader, "victim")["leader_epoch"]  # type: ignore[index]
    status, raw, ctype = call(
        leader, "POST", "/v1/internal/replica-fetch", victim_request(topic_id)
    )
    assert status == 401 and error_of(status, raw, ctype) == "SASL_AUTHENTICATION_FAILED"
    assert "proof of the cluster secret" in json.loads(raw)["message"]
    status, body = produce_once(leader, "victim", "after an unauthenticated fetch")
    assert status == 200, body
    assert_still_leads(cluster, leader, epoch)


@pytest.mark.parametrize("path", [*INTERNAL_PATHS, "/v1/internal/no-such-endpoint"])
def test_every_internal_path_without_proof_is_refused_with_401_json(
    cluster: Cluster, path: str
) -> None:
    controller = cluster.node(wait_until("a controller", cluster.controller_id))
    body = {"broker_id": 1, "broker_epoch": 0}
    for node in (controller, *[n for n in cluster.nodes if n is not controller]):
        for method, payload in (("POST", body), ("GET", None), ("POST", b"not json")):
            status, raw, ctype = call(node, method, path, payload)
            assert status == 401, (node.node_id, method, path, status, raw[:200])
            assert error_of(status, raw, ctype) == "SASL_AUTHENTICATION_FAILED"


def test_a_forged_stale_or_replayed_proof_is_refused(cluster: Cluster) -> None:
    controller = cluster.node(wait_until("a controller", cluster.controller_id))
    path, body = "/v1/internal/producer-ids", {"broker_id": 1, "broker_epoch": 0}

    def refused(headers: dict[str, str], why: str, target: str = path) -> None:
        status, raw, ctype = call(controller, "POST", target, body, headers)
        assert status == 401, (status, raw[:300])
        assert error_of(status, raw, ctype) == "SASL_AUTHENTICATION_FAILED"
        assert why in json.loads(raw)["message"], raw

    good = proof(controller, "POST", path, body)
    refused(good | {SIGNATURE_HEADER: "ab" * 32}, "the signature does not match")
    refused(proof(controller, "POST", path, body, secret="guessed"), "the signature does not")
    refused(good | {NODE_HEADER: "2"}, "the signature does not match")
    # The body's digest is signed: a digest header swapped with the body breaks the signature;
    # the good headers over another body verify at the head, and are refused once the body is
    # read, without recording the nonce (the call itself still goes through below).
    other = {"broker_id": 2, "broker_epoch": 0}
    swapped = good | {BODY_HEADER: proof(controller, "POST", path, other)[BODY_HEADER]}
    refused(swapped, "the signature does not match")
    status, raw, ctype = call(controller, "POST", path, other, good)
    assert status == 401 and error_of(status, raw, ctype) == "SASL_AUTHENTICATION_FAILED"
    assert "the body is not the one signed" in json.loads(raw)["message"], raw
    stale_ms = int(time.time() * 1000) - 120_000
    refused(proof(controller, "POST", path, body, now_ms=stale_ms), "ms from this node's clock")
    refused({NODE_HEADER: "1"}, "missing X-Kraft-Target, X-Kraft-Timestamp")
    # Proof headers on a client endpoint are checked too: a wrong one is no way in.
    status, raw, ctype = call(controller, "GET", "/v1/topics", None, {NODE_HEADER: "1"})
    assert status == 401 and error_of(status, raw, ctype) == "SASL_AUTHENTICATION_FAILED"

    status, raw, _ = call(controller, "POST", path, body, good)
    assert status == 200, raw[:300]
    assert {"first_producer_id", "count"} <= set(json.loads(raw))
    refused(good, "a replay of a call already served")
    # A call made for one node, replayed to another (which has its own nonces), is refused.
    other_node = next(n for n in cluster.nodes if n.node_id != controller.node_id)
    status, raw, ctype = call(other_node, "POST", path, body, good)
    assert status == 401 and error_of(status, raw, ctype) == "SASL_AUTHENTICATION_FAILED"
    assert f"meant for node {controller.node_id}" in json.loads(raw)["message"], raw


def test_a_valid_proof_with_a_huge_leader_epoch_deposes_no_leader(
    cluster: Cluster, victim: tuple[NodeProcess, str]
) -> None:
    """Even the cluster's own caller cannot depose a leader by a number: the fetch is answered
    UNKNOWN_LEADER_EPOCH for that partition and nothing changes."""
    leader, topic_id = victim
    epoch = partition_view(leader, "victim")["leader_epoch"]  # type: ignore[index]
    path = "/v1/internal/replica-fetch"
    for _ in range(3):
        status, raw, ctype = signed_call(leader, "POST", path, victim_request(topic_id), 99)
        assert status == 200 and ctype == "application/octet-stream", (status, raw[:300])
        ((entry, data),) = decode_response(raw)
        assert entry["error"]["error"] == "UNKNOWN_LEADER_EPOCH" and data == b""
    status, body = produce_once(leader, "victim", "after a valid fetch with a huge epoch")
    assert status == 200, body
    assert_still_leads(cluster, leader, epoch)
    assert "not leading" not in leader.log_file.read_text(errors="replace")
    # A replica may fetch only as itself.
    status, raw, ctype = signed_call(leader, "POST", path, victim_request(topic_id), 2)
    assert status == 400 and error_of(status, raw, ctype) == "INVALID_REQUEST"
    assert "not the node that signed the call" in json.loads(raw)["message"]


def test_a_22_digit_partition_in_an_internal_call_is_a_400_naming_the_field(
    cluster: Cluster, victim: tuple[NodeProcess, str]
) -> None:
    leader, topic_id = victim
    raw_body = orjson.dumps(victim_request(topic_id)).replace(
        b'"partition":0', b'"partition":' + b"1" * 22
    )
    status, raw, ctype = signed_call(leader, "POST", "/v1/internal/replica-fetch", raw_body, 99)
    assert status == 400 and error_of(status, raw, ctype) == "INVALID_REQUEST", raw[:300]
    assert "partitions[0].partition must be an integer" in json.loads(raw)["message"]


def test_the_cluster_works_on_signed_calls_and_refuses_none_of_its_own(cluster: Cluster) -> None:
    """Registration and heartbeats (every node is unfenced and ready), an admin call forwarded
    by a node that is not the controller, replication with acks=all and ISR expansion."""
    controller_id = wait_until("a controller", cluster.controller_id)
    follower = next(n for n in cluster.nodes if n.node_id != controller_id)
    status, body = http("GET", f"{follower.url}/v1/cluster")
    assert status == 200 and all(not b["fenced"] for b in body["brokers"]), body
    created = create_topic(follower, "signed", partitions=2, replication_factor=3)
    assert created["partition_count"] == 2
    for partition in (0, 1):
        leader = leader_of(cluster, "signed", partition)
        assert produce(leader, "signed", [f"p{partition}"], partition=partition) == [0]
    wait_full_isr(follower, "signed")
    for node in cluster.nodes:
        log = node.log_file.read_text(errors="replace")
        assert "HTTP 401" not in log, "a replica fetch of the cluster's own was refused"
