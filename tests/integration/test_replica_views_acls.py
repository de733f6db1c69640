"""The replica views' ACLs on a real three-node cluster with users and Kafka's
StandardAuthorizer: a topic's replicas need DESCRIBE on the topic (the node then asks the
other brokers with its own signed calls, which need no user), a broker's replicas DESCRIBE on
the cluster, and the topic list's detail names only the groups the caller may describe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scripts.node_process import Cluster, NodeProcess, http, wait_until

ADMIN = ("admin", "admin-secret")
ALICE = ("alice", "alice-secret")
SECURE = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:admin",
}
TOPIC = "vault"
# A topic alice is never granted anything on.
SECRET = "secret-ledger"
# A new ACL is in force once the node applied its metadata entry: a moment after the answer.
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    handle = Cluster.create(
        tmp_path_factory.mktemp("replica-acls"),
        3,
        security="SASL_PLAINTEXT",
        users=dict([ADMIN, ALICE]),
        **SECURE,
    )
    try:
        handle.start()
        node = handle.nodes[0]
        status, answer = node.http(
            "POST", "/v1/topics", {"name": TOPIC, "partitions": 1, "replication_factor": 3}
        )
        assert status == 201, answer
        status, answer = node.http(
            "POST", "/v1/topics", {"name": SECRET, "partitions": 1, "replication_factor": 3}
        )
        assert status == 201, answer
        yield handle
    finally:
        handle.stop()


def as_admin(node: NodeProcess, method: str, path: str, body: Any = None) -> Any:
    """Follows 307s to the leader or coordinator, retrying while there is none; the answer."""
    url = node.url + path

    def attempt() -> Any:
        nonlocal url
        status, answer = http(method, url, body, auth=ADMIN, timeout=10)
        if status == 307:
            url = answer["leader_url"].rstrip("/") + path
            return None
        if status == 503:
            return None
        assert status in (200, 201), answer
        return answer

    return wait_until(f"{method} {path}", attempt, DEADLINE_S)


def grant(node: NodeProcess, resource_type: str, name: str) -> None:
    acl = {
        "resource_type": resource_type,
        "resource_name": name,
        "principal": "User:alice",
        "operation": "DESCRIBE",
        "permission": "ALLOW",
    }
    as_admin(node, "POST", "/v1/acls", {"acls": [acl]})


def as_alice(node: NodeProcess, path: str) -> tuple[int, Any]:
    return http("GET", node.url + path, auth=ALICE, timeout=10)


def test_a_topics_replicas_need_describe_and_are_then_read_from_every_broker(
    secure_cluster: Cluster,
) -> None:
    node = secure_cluster.nodes[0]
    status, answer = as_alice(node, f"/v1/topics/{TOPIC}/replicas")
    assert (status, answer["error"]) == (403, "TOPIC_AUTHORIZATION_FAILED"), answer
    status, answer = as_alice(node, f"/v1/brokers/{node.node_id}/replicas")
    assert (status, answer["error"]) == (403, "CLUSTER_AUTHORIZATION_FAILED"), answer
    grant(node, "TOPIC", TOPIC)

    def every_broker_answered() -> list[dict[str, Any]] | None:
        status, answer = as_alice(node, f"/v1/topics/{TOPIC}/replicas")
        if status != 200:
            return None
        (partition,) = answer["partitions"]
        states = partition["replica_states"]
        return states if all(s["error"] is None for s in states) else None

    states = wait_until("alice reads every replica", every_broker_answered, DEADLINE_S)
    assert sorted(s["broker"] for s in states) == [1, 2, 3]
    grant(node, "CLUSTER", "kafka-cluster")
    answer = wait_until(
        "alice reads a broker's replicas",
        lambda: (r := as_alice(node, f"/v1/brokers/{node.node_id}/replicas"))[0] == 200 and r[1],
        DEADLINE_S,
    )
    assert [r["topic"] for r in answer["replicas"] if r["topic"] == TOPIC] == [TOPIC]


def test_the_detail_and_the_groups_list_name_only_the_groups_the_caller_may_describe(
    secure_cluster: Cluster,
) -> None:
    node = secure_cluster.nodes[1]
    grant(node, "TOPIC", TOPIC)
    offsets = {"offsets": [{"topic": TOPIC, "partition": 0, "offset": 0}]}
    for group in ("seen", "hidden"):
        as_admin(node, "POST", f"/v1/groups/{group}/offsets", offsets)
    grant(node, "GROUP", "seen")

    def seen_only() -> dict[str, Any] | None:
        status, answer = as_alice(node, "/v1/topics?detail=true")
        if status != 200:
            return None
        topics = {t["name"]: t for t in answer["topics"]}
        vault = topics.get(TOPIC)
        return vault if vault is not None and vault["groups"] else None

    vault = wait_until("alice's detail names the group she may see", seen_only, DEADLINE_S)
    assert vault["groups"] == [{"group": "seen", "lag": 0}]
    admin_view = {t["name"]: t for t in as_admin(node, "GET", "/v1/topics?detail=true")["topics"]}
    assert [g["group"] for g in admin_view[TOPIC]["groups"]] == ["hidden", "seen"]
    status, answer = as_alice(node, "/v1/groups")
    assert status == 200, answer
    assert [(g["group"], g["lag"]) for g in answer["groups"]] == [("seen", 0)]


def test_events_replicas_and_group_topics_leave_out_topics_the_caller_may_not_describe(
    secure_cluster: Cluster,
) -> None:
    node = secure_cluster.nodes[2]
    grant(node, "TOPIC", TOPIC)
    grant(node, "CLUSTER", "kafka-cluster")
    grant(node, "GROUP", "mixed")
    offsets = {
        "offsets": [
            {"topic": TOPIC, "partition": 0, "offset": 0},
            {"topic": SECRET, "partition": 0, "offset": 0},
        ]
    }
    as_admin(node, "POST", "/v1/groups/mixed/offsets", offsets)

    # The admin sees both topics everywhere.
    admin_events = as_admin(node, "GET", "/v1/cluster/events?limit=1000")["events"]
    assert {TOPIC, SECRET} <= {e.get("topic") for e in admin_events}
    admin_replicas = as_admin(node, "GET", f"/v1/brokers/{node.node_id}/replicas")
    assert {r["topic"] for r in admin_replicas["replicas"]} >= {TOPIC, SECRET}

    events = wait_until(
        "alice reads the events",
        lambda: (r := as_alice(node, "/v1/cluster/events?limit=1000"))[0] == 200 and r[1],
        DEADLINE_S,
    )["events"]
    shown = {e.get("topic") for e in events}
    assert TOPIC in shown
    assert SECRET not in shown
    assert any("broker" in e and "topic" not in e for e in events)  # cluster events stay

    replicas = wait_until(
        "alice reads a broker's replicas",
        lambda: (r := as_alice(node, f"/v1/brokers/{node.node_id}/replicas"))[0] == 200 and r[1],
        DEADLINE_S,
    )["replicas"]
    assert {r["topic"] for r in replicas} == {TOPIC}

    def mixed_of(answer: Any) -> dict[str, Any] | None:
        found = [g for g in answer["groups"] if g["group"] == "mixed"]
        return found[0] if found and found[0]["topics"] else None

    admin_mixed = wait_until(
        "the admin sees the group's topics",
        lambda: mixed_of(as_admin(node, "GET", "/v1/groups")),
        DEADLINE_S,
    )
    assert [t["topic"] for t in admin_mixed["topics"]] == sorted([SECRET, TOPIC])
    status, answer = as_alice(node, "/v1/groups")
    assert status == 200, answer
    mixed = mixed_of(answer)
    assert mixed is not None, answer
    assert mixed["topics"] == [{"topic": TOPIC, "lag": 0}]
    assert mixed["lag"] == 0
