"""The replica views with real nodes: a topic's replicas seen from any node, a follower killed
(-9) and brought back, the topic list's detail and the groups' lag against describe.

One three-node cluster (``min.insync.replicas=2``) for the module; the kill test restarts the
node it killed. Waits have generous deadlines; nothing asserts how long something took beyond
the request's own timeout (a dead broker must not make the answer wait for long).
"""

from __future__ import annotations

from collections.abc import Iterator
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.conftest import running_cluster
from tests.integration.test_cluster import create_topic

TOPIC = "news"
PARTITIONS = 2
RECORDS = 7  # per partition
GROUP = "readers"
DEADLINE_S = 60.0
# A request's own timeout: far beyond what an answer needs (each broker is asked with a 1 s
# timeout), short enough that an answer waiting on a dead broker for long fails the test.
REQUEST_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("replica-views")) as handle:
        create_topic(handle.nodes[0], TOPIC, partitions=PARTITIONS, replication_factor=3)
        for partition in range(PARTITIONS):
            produce(handle.nodes[0], partition, [f"v{i}" for i in range(RECORDS)])
        yield handle


def follow(node: NodeProcess, method: str, path: str, body: Any = None) -> Any:
    """A request following 307s to the leader or coordinator (as ``curl -L`` does), retried
    while there is none (503) or a node moves; the 200 answer."""
    url = node.url + path

    def attempt() -> Any:
        nonlocal url
        try:
            status, answer = http(method, url, body, timeout=REQUEST_TIMEOUT_S)
        except OSError:
            return None
        if status == 307:
            url = answer["leader_url"].rstrip("/") + path
            return None
        if status == 503:
            return None
        assert status == 200, answer
        return answer

    return wait_until(f"{method} {path}", attempt, DEADLINE_S)


def produce(node: NodeProcess, partition: int, values: list[str]) -> None:
    path = f"/v1/topics/{TOPIC}/partitions/{partition}/records?timeout_ms=10000"
    follow(node, "POST", path, {"records": [{"value": v} for v in values]})


def get(node: NodeProcess, path: str) -> dict[str, Any]:
    status, body = http("GET", node.url + path, timeout=REQUEST_TIMEOUT_S)
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def replicas(node: NodeProcess) -> list[dict[str, Any]]:
    return list(get(node, f"/v1/topics/{TOPIC}/replicas")["partitions"])


def caught_up(partitions: list[dict[str, Any]]) -> bool:
    """Every replica answered, is in the ISR and has the leader's high watermark as log end."""
    return all(
        p["high_watermark"] == RECORDS
        and len(p["isr"]) == 3
        and all(
            s["error"] is None and s["in_isr"] and s["log_end_offset"] == p["high_watermark"]
            for s in p["replica_states"]
        )
        for p in partitions
    )


def unredirected_get(node: NodeProcess, path: str) -> tuple[int, dict[str, str]]:
    """A GET that does not follow a 307: its status and headers."""
    parts = urlsplit(node.url)
    assert parts.hostname is not None
    connection = HTTPConnection(parts.hostname, parts.port, timeout=REQUEST_TIMEOUT_S)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        connection.close()


def test_every_replica_shows_the_leaders_high_watermark_as_its_log_end(cluster: Cluster) -> None:
    for node in cluster.nodes:  # any node answers the same figures
        partitions = wait_until(
            f"node {node.node_id} sees every replica caught up",
            lambda node=node: p if caught_up(p := replicas(node)) else None,
            DEADLINE_S,
        )
        for p in partitions:
            assert [s["broker"] for s in p["replica_states"]] == p["replicas"]
            assert p["log_start_offset"] == 0
            assert all(s["size"] > 0 and s["offline"] is False for s in p["replica_states"])


def test_a_broker_answers_for_its_own_replicas_and_redirects_for_another(
    cluster: Cluster,
) -> None:
    first, second = cluster.nodes[0], cluster.nodes[1]
    own = get(first, f"/v1/brokers/{first.node_id}/replicas?topics={TOPIC}")
    assert own["broker_id"] == first.node_id
    assert [(r["topic"], r["partition"]) for r in own["replicas"]] == [
        (TOPIC, p) for p in range(PARTITIONS)
    ]
    status, headers = unredirected_get(first, f"/v1/brokers/{second.node_id}/replicas")
    assert status == 307
    assert headers["Location"] == second.url.rstrip("/") + f"/v1/brokers/{second.node_id}/replicas"
    # Followed (urllib follows a GET's 307 as curl -L does), the other broker answers itself.
    other = get(first, f"/v1/brokers/{second.node_id}/replicas?topics={TOPIC}")
    assert other["broker_id"] == second.node_id
    leaders = {p["partition"]: p["leader"] for p in replicas(first)}
    for broker in (own, other):
        for r in broker["replicas"]:
            assert r["is_leader"] == (leaders[r["partition"]] == broker["broker_id"])


def test_bad_input_is_refused_with_its_error(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    status, body = http("GET", node.url + "/v1/topics/missing/replicas")
    assert (status, body["error"]) == (404, "UNKNOWN_TOPIC_OR_PARTITION")
    status, body = http("GET", node.url + "/v1/brokers/99/replicas")
    assert (status, body["error"]) == (404, "NOT_FOUND")
    assert "broker 99 is not registered" in body["message"]
    status, body = http("GET", node.url + "/v1/brokers/x1/replicas")
    assert (status, body["error"]) == (400, "INVALID_REQUEST")
    status, body = http("GET", node.url + "/v1/topics?detail=maybe")
    assert (status, body["error"]) == (400, "INVALID_REQUEST")
    assert "detail" in body["message"]
    status, body = http("HEAD", node.url + f"/v1/topics/{TOPIC}/replicas")
    assert (status, body) == (200, None)
    # Without detail the topic list is what it always was.
    plain = get(node, "/v1/topics")["topics"]
    assert {t["name"]: set(t) for t in plain}[TOPIC] == {
        "name",
        "partition_count",
        "replication_factor",
    }


def test_a_groups_lag_shows_in_the_groups_list_and_the_topic_list(cluster: Cluster) -> None:
    node = cluster.nodes[1]
    committed = {0: 2, 1: RECORDS}  # lag 5 on partition 0, none on 1
    offsets = [{"topic": TOPIC, "partition": p, "offset": o} for p, o in committed.items()]
    follow(node, "POST", f"/v1/groups/{GROUP}/offsets", {"offsets": offsets})
    described = follow(node, "GET", f"/v1/groups/{GROUP}")
    lag = sum(o["lag"] for o in described["offsets"])
    assert lag == RECORDS - 2

    def listed() -> dict[str, Any] | None:
        groups = {g["group"]: g for g in get(node, "/v1/groups")["groups"]}
        return groups.get(GROUP)

    group = wait_until(f"{GROUP} listed", listed, DEADLINE_S)
    assert group["lag"] == lag
    assert group["topics"] == [{"topic": TOPIC, "lag": lag}]
    for asked in cluster.nodes:
        topics = {t["name"]: t for t in get(asked, "/v1/topics?detail=true")["topics"]}
        news = topics[TOPIC]
        assert news["groups"] == [{"group": GROUP, "lag": lag}]
        assert news["records"] == PARTITIONS * RECORDS
        assert (news["under_replicated"], news["offline"]) == (0, 0)
        sizes = [s["size"] for p in replicas(asked) for s in p["replica_states"]]
        assert news["size_bytes"] == sum(sizes) > 0
        # The offsets topic holds the commit: its records are counted too.
        assert topics["__consumer_offsets"]["records"] >= 1


def test_a_killed_follower_shows_its_error_then_leaves_the_isr_and_returns(
    cluster: Cluster,
) -> None:
    wait_until("every replica caught up", lambda: caught_up(replicas(cluster.nodes[0])), DEADLINE_S)
    leaders = {p["leader"] for p in replicas(cluster.nodes[0])}
    controller = cluster.controller_id()
    # A broker leading nothing and not the controller, so the topic keeps its leaders.
    victim = next(
        (n for n in cluster.nodes if n.node_id not in leaders and n.node_id != controller),
        next(n for n in cluster.nodes if n.node_id not in leaders),
    )
    asked = next(n for n in cluster.nodes if n is not victim)
    victim.kill()

    def victim_out() -> list[dict[str, Any]] | None:
        # REQUEST_TIMEOUT_S bounds how long this may take. When the victim had to be the
        # controller, the others elect a new one first and answer 503 meanwhile.
        status, body = http(
            "GET", asked.url + f"/v1/topics/{TOPIC}/replicas", timeout=REQUEST_TIMEOUT_S
        )
        if status == 503:
            return None
        assert status == 200, body
        partitions = list(body["partitions"])
        states = [s for p in partitions for s in p["replica_states"]]
        mine = [s for s in states if s["broker"] == victim.node_id]
        if all(s["error"] and not s["in_isr"] for s in mine):
            return partitions
        return None

    partitions = wait_until(f"broker {victim.node_id} out of the ISR", victim_out, DEADLINE_S)
    for p in partitions:
        assert victim.node_id not in p["isr"]
        (state,) = [s for s in p["replica_states"] if s["broker"] == victim.node_id]
        assert state["log_end_offset"] is None and state["size"] is None
        assert str(victim.node_id) in state["error"]
        # The others still answer, and the leader's figures are there.
        others = [s for s in p["replica_states"] if s["broker"] != victim.node_id]
        assert all(s["error"] is None and s["log_end_offset"] == RECORDS for s in others)
        assert p["high_watermark"] == RECORDS
    news = {t["name"]: t for t in get(asked, "/v1/topics?detail=true")["topics"]}[TOPIC]
    assert news["under_replicated"] == PARTITIONS
    assert news["size_bytes"] is None  # a replica's broker could not be asked
    assert news["records"] == PARTITIONS * RECORDS  # the leaders could

    victim.start()
    wait_until(
        f"broker {victim.node_id}'s replicas back in the ISR with their figures",
        lambda: caught_up(replicas(asked)),
        DEADLINE_S,
    )
