"""Consumer groups over raw HTTP, on real nodes: the KIP-848 heartbeat, commits, the admin
calls, the 307 to the coordinator, and offsets surviving the coordinator's kill -9."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.node_process import Cluster, NodeProcess, http
from tests.integration.conftest import running_cluster

PARTITIONS = "4"


@pytest.fixture(scope="module")
def groups_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Fewer offsets partitions than Kafka's 50 keep the module quick; the rule is the same.
    with running_cluster(
        tmp_path_factory.mktemp("groups"),
        **{"offsets.topic.num.partitions": "5", "group.consumer.heartbeat.interval.ms": "500"},
    ) as handle:
        status, _ = http(
            "POST",
            handle.nodes[0].url + "/v1/topics",
            {"name": "orders", "partitions": int(PARTITIONS), "replication_factor": 3},
        )
        assert status == 201
        yield handle


def call(node: NodeProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A request that follows a 307 to the coordinator, as ``curl -L`` does."""
    url = node.url + path
    for _ in range(3):
        status, answer = http(method, url, body)
        if status != 307:
            return status, answer
        assert answer["error"] == "NOT_COORDINATOR"
        url = answer["leader_url"] + path
    raise AssertionError("redirected three times")


def until_ok(node: NodeProcess, method: str, path: str, body: Any = None) -> Any:
    """Retries 503s and refused connections (the coordinator moving) for up to a minute."""
    deadline = time.monotonic() + 60
    while True:
        try:
            status, answer = call(node, method, path, body)
        except OSError:  # URLError too: a 307 to the node just killed, before the election
            assert time.monotonic() < deadline
            time.sleep(0.2)
            continue
        if status < 300:
            return answer
        assert status == 503 or isinstance(answer, str), (status, answer)
        assert time.monotonic() < deadline, (status, answer)
        time.sleep(0.2)


def parts(answer: dict[str, Any]) -> set[int]:
    return {o["partition"] for o in answer["assignment"]}


def beat(node: NodeProcess, group: str, answer: dict[str, Any]) -> dict[str, Any]:
    status, new = call(
        node,
        "POST",
        f"/v1/groups/{group}/heartbeat",
        {
            "member_id": answer["member_id"],
            "member_epoch": answer["member_epoch"],
            "owned": answer["assignment"],
        },
    )
    assert status == 200, new
    result: dict[str, Any] = new
    return result


def test_two_members_split_a_topic_and_describe_shows_them(groups_cluster: Cluster) -> None:
    n1 = groups_cluster.nodes[0]
    join = {"member_epoch": 0, "topics": ["orders"], "client_id": "c1"}
    a = until_ok(n1, "POST", "/v1/groups/split/heartbeat", join)
    assert a["member_epoch"] >= 1 and parts(a) == {0, 1, 2, 3}
    b = until_ok(n1, "POST", "/v1/groups/split/heartbeat", {**join, "client_id": "c2"})
    a = beat(n1, "split", beat(n1, "split", a))
    b = beat(n1, "split", b)
    assert parts(a) | parts(b) == {0, 1, 2, 3} and not parts(a) & parts(b)
    assert len(parts(a)) == len(parts(b)) == 2

    status, body = call(n1, "GET", "/v1/groups/split")
    assert status == 200
    assert body["state"] == "Stable"
    assert sorted(m["client_id"] for m in body["members"]) == ["c1", "c2"]
    status, listed = call(n1, "GET", "/v1/groups")
    # Nothing committed yet: no lag to speak of.
    assert {
        "group": "split",
        "state": "Stable",
        "type": "consumer",
        "members": 2,
        "lag": None,
        "topics": [],
    } in listed["groups"]


def test_non_coordinator_redirects_with_location(groups_cluster: Cluster) -> None:
    n1 = groups_cluster.nodes[0]
    until_ok(
        n1, "POST", "/v1/groups/where/offsets", [{"topic": "orders", "partition": 0, "offset": 1}]
    )
    _, body = call(n1, "GET", "/v1/groups/where")
    coordinator = body["coordinator_id"]
    other = next(n for n in groups_cluster.nodes if n.node_id != coordinator)
    # A POST: urllib follows a 307 of a GET by itself, as curl -L would.
    commit = [{"topic": "orders", "partition": 0, "offset": 2}]
    status, answer = http("POST", other.url + "/v1/groups/where/offsets", commit)
    assert status == 307
    assert answer["error"] == "NOT_COORDINATOR" and answer["coordinator_id"] == coordinator
    assert answer["leader_url"] == groups_cluster.node(coordinator).url


def test_bad_group_requests_get_clear_errors(groups_cluster: Cluster) -> None:
    n1 = groups_cluster.nodes[0]
    commit = "/v1/groups/bad/offsets"
    until_ok(n1, "GET", commit)
    cases = [
        (
            "POST",
            commit,
            [{"topic": "nope", "partition": 0, "offset": 1}],
            404,
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
        (
            "POST",
            commit,
            [{"topic": "orders", "partition": 9, "offset": 1}],
            404,
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
        (
            "POST",
            commit,
            [{"topic": "orders", "partition": 0, "offset": -1}],
            400,
            "INVALID_REQUEST",
        ),
        ("POST", commit, {"offsets": []}, 400, "INVALID_REQUEST"),
        ("GET", "/v1/groups/nobody-here", None, 404, "GROUP_ID_NOT_FOUND"),
        ("DELETE", "/v1/groups/nobody-here", None, 404, "GROUP_ID_NOT_FOUND"),
        ("POST", "/v1/groups/bad/heartbeat", {"member_epoch": 3}, 400, "INVALID_REQUEST"),
        (
            "POST",
            "/v1/groups/bad/heartbeat",
            {"member_id": "x", "member_epoch": 3},
            404,
            "UNKNOWN_MEMBER_ID",
        ),
        ("POST", "/v1/groups/bad/heartbeat", {"member_epoch": 0}, 400, "INVALID_REQUEST"),
        (
            "POST",
            "/v1/groups/" + "g" * 256 + "/heartbeat",
            {"member_epoch": 0},
            400,
            "INVALID_GROUP_ID",
        ),
        (
            "POST",
            "/v1/topics/__consumer_offsets/records",
            {"value": "x"},
            400,
            "INVALID_TOPIC_EXCEPTION",
        ),
    ]
    for method, path, body, status, error in cases:
        got, answer = call(n1, method, path, body)
        assert (got, answer["error"]) == (status, error), (path, body, answer)
        assert answer["message"]
    # Nothing was stored by the refused commits.
    assert until_ok(n1, "GET", commit)["offsets"] == []


def test_member_commits_and_a_stale_or_foreign_commit_is_refused(groups_cluster: Cluster) -> None:
    n1 = groups_cluster.nodes[0]
    path = "/v1/groups/committers"
    a = until_ok(n1, "POST", path + "/heartbeat", {"member_epoch": 0, "topics": ["orders"]})
    offsets = [{"topic": "orders", "partition": 2, "offset": 7, "metadata": "m"}]
    ok = {"member_id": a["member_id"], "member_epoch": a["member_epoch"], "offsets": offsets}
    assert call(n1, "POST", path + "/offsets", ok)[0] == 200
    status, answer = call(n1, "POST", path + "/offsets", {**ok, "member_epoch": 0})
    assert (status, answer["error"]) == (409, "STALE_MEMBER_EPOCH")
    status, answer = call(n1, "POST", path + "/offsets", offsets)  # no member: group not empty
    assert (status, answer["error"]) == (404, "UNKNOWN_MEMBER_ID")
    status, answer = call(n1, "DELETE", path)
    assert (status, answer["error"]) == (409, "NON_EMPTY_GROUP")
    assert call(n1, "DELETE", f"{path}/members/{a['member_id']}")[0] == 204
    _, body = call(n1, "GET", path + "/offsets")
    assert [(o["partition"], o["offset"], o["metadata"]) for o in body["offsets"]] == [(2, 7, "m")]
    assert call(n1, "DELETE", path)[0] == 204
    assert call(n1, "GET", path)[0] == 404


def test_subscribing_to_a_missing_topic_creates_it(groups_cluster: Cluster) -> None:
    n1 = groups_cluster.nodes[0]
    a = until_ok(n1, "POST", "/v1/groups/auto/heartbeat", {"member_epoch": 0, "topics": ["fresh"]})
    status, topic = http("GET", n1.url + "/v1/topics/fresh")
    assert status == 200 and len(topic["partitions"]) == 1  # num.partitions
    assert parts(a) == {0}


def test_offsets_and_members_survive_kill_of_the_coordinator(tmp_path: Path) -> None:
    with running_cluster(tmp_path, **{"offsets.topic.num.partitions": "3"}) as cluster:
        n1 = cluster.nodes[0]
        assert (
            http(
                "POST",
                n1.url + "/v1/topics",
                {"name": "t", "partitions": 2, "replication_factor": 3},
            )[0]
            == 201
        )
        a = until_ok(
            n1,
            "POST",
            "/v1/groups/durable/heartbeat",
            {"member_epoch": 0, "topics": ["t"], "session_timeout_ms": 60000},
        )
        commit = {
            "member_id": a["member_id"],
            "member_epoch": a["member_epoch"],
            "offsets": [
                {"topic": "t", "partition": 0, "offset": 41},
                {"topic": "t", "partition": 1, "offset": 42},
            ],
        }
        assert until_ok(n1, "POST", "/v1/groups/durable/offsets", commit)
        coordinator = until_ok(n1, "GET", "/v1/groups/durable")["coordinator_id"]
        cluster.node(coordinator).kill()
        survivor = next(n for n in cluster.nodes if n.node_id != coordinator)
        body = until_ok(survivor, "GET", "/v1/groups/durable/offsets")
        assert [(o["partition"], o["offset"]) for o in body["offsets"]] == [(0, 41), (1, 42)]
        # The member is still a member at its epoch: the new coordinator replayed it.
        again = until_ok(
            survivor,
            "POST",
            "/v1/groups/durable/heartbeat",
            {
                "member_id": a["member_id"],
                "member_epoch": a["member_epoch"],
                "owned": a["assignment"],
            },
        )
        assert again["member_epoch"] == a["member_epoch"] and parts(again) == parts(a)
        assert until_ok(survivor, "GET", "/v1/groups/durable")["coordinator_id"] != coordinator
