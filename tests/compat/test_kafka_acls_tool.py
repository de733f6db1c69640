"""Kafka 4.4.0's ``kafka-acls`` (org.apache.kafka.tools.AclCommand), through
``scripts/kafka-tool``, against the KAFKA listeners of three of our nodes with the
StandardAuthorizer (DescribeAcls, CreateAcls, DeleteAcls; issue 18): what it adds, lists and
removes is what GET /v1/acls shows, and what our ACLs cannot hold is refused with the reason.

The nodes' PLAINTEXT listeners make every request User:ANONYMOUS, the super user here.
Skipped, with the reason, only when Java or Kafka's jars (``scripts/setup``) are missing.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from scripts.node_process import Cluster, NodeProcess, wait_until
from tests.compat.conftest import KafkaNodes, KafkaToolRunner

# AclCommand's lines: a resource's heading, then one line per ACL of it.
RESOURCE = re.compile(
    r"^Current ACLs for resource `ResourcePattern\(resourceType=(\w+), name=(.*), "
    r"patternType=(\w+)\)`:$"
)
ENTRY = re.compile(r"^\s*\(principal=(.*), host=(.*), operation=(\w+), permissionType=(\w+)\)$")

Binding = tuple[str, str, str, str, str, str, str]


@pytest.fixture(scope="module")
def acl_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaNodes]:
    """Three combined nodes with the StandardAuthorizer and User:ANONYMOUS as super user, each
    with a KAFKA listener."""
    cluster = Cluster.create(
        tmp_path_factory.mktemp("compat-acls"),
        **{
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:ANONYMOUS",
        },
    )
    cluster.give_kafka_listeners()
    try:
        cluster.start()
        yield KafkaNodes(cluster)
    finally:
        cluster.stop()


def listed(out: str) -> set[Binding]:
    """The ACLs AclCommand's --list printed."""
    found: set[Binding] = set()
    resource: tuple[str, str, str] | None = None
    for line in out.splitlines():
        heading = RESOURCE.match(line)
        if heading:
            resource = (heading[1], heading[2], heading[3])
            continue
        entry = ENTRY.match(line)
        if entry:
            assert resource is not None, out
            found.add((*resource, entry[1], entry[2], entry[3], entry[4]))
    return found


def adding(out: str) -> set[tuple[str, str]]:
    """What --add says it adds: (resource pattern, ACL) lines as printed."""
    pairs: set[tuple[str, str]] = set()
    resource = ""
    for line in out.splitlines():
        if line.startswith("Adding ACLs for resource"):
            resource = line
        elif ENTRY.match(line):
            pairs.add((resource, line.strip()))
    return pairs


def over_http(node: NodeProcess, **query: str) -> set[Binding]:
    path = "/v1/acls" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    status, body = node.http("GET", path)
    assert status == 200, body
    found: list[dict[str, Any]] = body["acls"]
    return {
        (
            a["resource_type"],
            a["resource_name"],
            a["pattern_type"],
            a["principal"],
            a["host"],
            a["operation"],
            a["permission"],
        )
        for a in found
    }


def acls_tool(
    kafka_tool: KafkaToolRunner, nodes: KafkaNodes, *args: str
) -> subprocess.CompletedProcess[str]:
    return kafka_tool.run("kafka-acls", "--bootstrap-server", nodes.bootstrap, *args)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def seen_everywhere(nodes: KafkaNodes, expected: set[Binding], **query: str) -> None:
    for node in nodes.cluster.nodes:
        wait_until(
            f"node {node.node_id} shows {len(expected)} ACLs for {query}",
            lambda node=node: over_http(node, **query) == expected,
        )


def test_kafka_acls_adds_lists_and_removes_what_http_shows(
    kafka_tool: KafkaToolRunner, acl_nodes: KafkaNodes
) -> None:
    alice = "User:alice"
    added = ok(
        acls_tool(
            kafka_tool,
            acl_nodes,
            "--add",
            "--allow-principal",
            alice,
            "--operation",
            "Read",
            "--operation",
            "Write",
            "--topic",
            "news",
        )
    )
    news = {
        ("TOPIC", "news", "LITERAL", alice, "*", "READ", "ALLOW"),
        ("TOPIC", "news", "LITERAL", alice, "*", "WRITE", "ALLOW"),
    }
    pattern = (
        "Adding ACLs for resource "
        "`ResourcePattern(resourceType=TOPIC, name=news, patternType=LITERAL)`: "
    )
    assert adding(added) == {
        (pattern, f"(principal={alice}, host=*, operation={operation}, permissionType=ALLOW)")
        for operation in ("READ", "WRITE")
    }
    ok(
        acls_tool(
            kafka_tool,
            acl_nodes,
            "--add",
            "--deny-principal",
            alice,
            "--operation",
            "All",
            "--topic",
            "sec-",
            "--resource-pattern-type",
            "prefixed",
        )
    )
    ok(
        acls_tool(
            kafka_tool,
            acl_nodes,
            "--add",
            "--producer",
            "--idempotent",
            "--allow-principal",
            alice,
            "--topic",
            "orders",
        )
    )
    everything = news | {
        ("TOPIC", "sec-", "PREFIXED", alice, "*", "ALL", "DENY"),
        ("TOPIC", "orders", "LITERAL", alice, "*", "WRITE", "ALLOW"),
        ("TOPIC", "orders", "LITERAL", alice, "*", "CREATE", "ALLOW"),
        ("TOPIC", "orders", "LITERAL", alice, "*", "DESCRIBE", "ALLOW"),
        ("CLUSTER", "kafka-cluster", "LITERAL", alice, "*", "IDEMPOTENT_WRITE", "ALLOW"),
    }
    seen_everywhere(acl_nodes, everything, principal=alice)
    assert listed(ok(acls_tool(kafka_tool, acl_nodes, "--list", "--principal", alice))) == (
        everything
    )
    assert listed(ok(acls_tool(kafka_tool, acl_nodes, "--list", "--topic", "news"))) == news
    ok(
        acls_tool(
            kafka_tool,
            acl_nodes,
            "--remove",
            "--force",
            "--allow-principal",
            alice,
            "--operation",
            "Read",
            "--topic",
            "news",
        )
    )
    ok(acls_tool(kafka_tool, acl_nodes, "--remove", "--force", "--topic", "orders"))
    left = everything - {("TOPIC", "news", "LITERAL", alice, "*", "READ", "ALLOW")}
    left = {b for b in left if b[1] != "orders"}
    seen_everywhere(acl_nodes, left, principal=alice)
    assert listed(ok(acls_tool(kafka_tool, acl_nodes, "--list", "--principal", alice))) == left


def test_kafka_acls_is_told_what_our_acls_cannot_hold(
    kafka_tool: KafkaToolRunner, acl_nodes: KafkaNodes
) -> None:
    refused = acls_tool(
        kafka_tool,
        acl_nodes,
        "--add",
        "--allow-principal",
        "User:bob",
        "--operation",
        "Write",
        "--transactional-id",
        "tx-1",
    )
    assert refused.returncode == 1
    assert (
        "InvalidRequestException: resource type TRANSACTIONAL_ID is not supported here"
        in refused.stdout + refused.stderr
    )
    assert over_http(acl_nodes.cluster.nodes[0], principal="User:bob") == set()
