"""The disk view's ACLs on a real node with users and Kafka's StandardAuthorizer: listing a
replica's files needs DESCRIBE on the topic, a file's text (it shows the records) READ."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scripts.node_process import Cluster, http, wait_until

ADMIN = ("admin", "admin-secret")
ALICE = ("alice", "alice-secret")
SECURE = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:admin",
}
TOPIC = "vault"
# A topic alice is never granted anything on: the log directory's checkpoints name it too.
HIDDEN = "hidden-ledger"
FILES = f"/v1/brokers/1/partitions/{TOPIC}/0/files"
SEGMENT = f"{FILES}/00000000000000000000.log"
# A new ACL is in force once the node applied its metadata entry: a moment after the answer.
ACL_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def secure_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    handle = Cluster.create(
        tmp_path_factory.mktemp("disk-acls"),
        1,
        security="SASL_PLAINTEXT",
        users=dict([ADMIN, ALICE]),
        **SECURE,
    )
    try:
        handle.start()
        node = handle.nodes[0]
        status, answer = node.http(
            "POST", "/v1/topics", {"name": TOPIC, "partitions": 1, "replication_factor": 1}
        )
        assert status == 201, answer
        status, answer = node.http(
            "POST", f"/v1/topics/{TOPIC}/partitions/0/records", {"records": [{"value": "gold"}]}
        )
        assert status == 200, answer
        status, answer = node.http(
            "POST", "/v1/topics", {"name": HIDDEN, "partitions": 2, "replication_factor": 1}
        )
        assert status == 201, answer
        yield handle
    finally:
        handle.stop()


def grant(cluster: Cluster, operation: str) -> None:
    acl = {
        "resource_type": "TOPIC",
        "resource_name": TOPIC,
        "principal": "User:alice",
        "operation": operation,
        "permission": "ALLOW",
    }
    status, answer = cluster.nodes[0].http("POST", "/v1/acls", {"acls": [acl]})
    assert status == 201, answer


def as_alice(cluster: Cluster, path: str) -> tuple[int, Any]:
    return http("GET", cluster.nodes[0].url + path, auth=ALICE)


def error_of(answer: Any) -> str | None:
    return answer.get("error") if isinstance(answer, dict) else None


def test_listing_needs_describe_and_a_files_text_needs_read_on_the_topic(
    secure_node: Cluster,
) -> None:
    for path in (FILES, SEGMENT):
        status, answer = as_alice(secure_node, path)
        assert (status, error_of(answer)) == (403, "TOPIC_AUTHORIZATION_FAILED"), answer
    grant(secure_node, "DESCRIBE")
    status, listing = wait_until(
        "alice may list the files",
        lambda: (r := as_alice(secure_node, FILES))[0] == 200 and r,
        ACL_DEADLINE_S,
    )
    assert listing["directory"] == f"{TOPIC}-0"
    status, answer = as_alice(secure_node, SEGMENT)
    assert (status, error_of(answer)) == (403, "TOPIC_AUTHORIZATION_FAILED"), answer
    assert "User:alice is not authorized to READ topic vault" in answer["message"]
    grant(secure_node, "READ")
    status, text = wait_until(
        "alice may read the segment",
        lambda: (r := as_alice(secure_node, SEGMENT + "?print_data=true"))[0] == 200 and r,
        ACL_DEADLINE_S,
    )
    assert "payload: gold" in text


def test_a_log_dir_checkpoint_shows_only_the_topics_the_reader_may_describe(
    secure_node: Cluster,
) -> None:
    grant(secure_node, "READ")
    checkpoint = f"{FILES}/replication-offset-checkpoint"
    admin_url = secure_node.nodes[0].url + checkpoint
    # The broker writes its checkpoints every few seconds: the admin sees every entry.
    _, full = wait_until(
        "the checkpoint names both topics",
        lambda: (
            (r := http("GET", admin_url, auth=ADMIN))[0] == 200
            and f"{HIDDEN} 1 " in r[1]
            and f"{TOPIC} 0 " in r[1]
            and r
        ),
        ACL_DEADLINE_S,
    )
    assert "left out" not in full
    status, text = wait_until(
        "alice may read the checkpoint",
        lambda: (r := as_alice(secure_node, checkpoint))[0] == 200 and r,
        ACL_DEADLINE_S,
    )
    lines = text.splitlines()
    assert lines[:2] == full.splitlines()[:2]  # the version and the file's own count
    assert lines[2:-1] == [f"{TOPIC} 0 1"]
    assert HIDDEN not in text
    left_out = len(full.splitlines()) - 3  # every entry but vault's
    assert left_out >= 2  # hidden-ledger's two partitions at least
    assert lines[-1] == f"({left_out} lines left out: they are not about topics you may describe)"
