"""Users and ACLs on real nodes: HTTP basic against the users file, Kafka's StandardAuthorizer
on the metadata log, driven by kraft-acls, kraft-users and the console tools with their
client config files.

Three nodes with ``listener.security.protocol.map=HTTP:SASL_PLAINTEXT``, ``http.users.file``,
the StandardAuthorizer and ``super.users=User:admin``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.node_process import Cluster, NodeProcess, add_user, http, run_tool, wait_until

pytestmark = pytest.mark.timeout(300)

ACLS = "client.tools.acls"
TOPICS = "client.tools.topics"
PRODUCER = "client.tools.console_producer"
CONSUMER = "client.tools.console_consumer"
ADMIN = ("admin", "admin-secret")
ALICE = ("alice", "alice-secret")
SECURE = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:admin",
    "default.replication.factor": "3",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    handle = Cluster.create(
        tmp_path_factory.mktemp("acls"),
        security="SASL_PLAINTEXT",
        users=dict([ADMIN, ALICE]),
        **SECURE,
    )
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def configs(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each user's client properties (Kafka's --command-config file)."""
    directory = tmp_path_factory.mktemp("client-config")
    node = cluster.nodes[0]
    return {
        "admin": node.client_properties(directory / "admin.properties", ADMIN),
        "alice": node.client_properties(directory / "alice.properties", ALICE),
    }


def tool(module: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_tool(module, *args, input=input, timeout=60)


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return out.stdout


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def acls(node: NodeProcess, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return tool(ACLS, "--bootstrap-server", node.bootstrap, "--command-config", str(config), *args)


def produce(
    node: NodeProcess, config: Path, topic: str, *lines: str
) -> subprocess.CompletedProcess[str]:
    return tool(
        PRODUCER,
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        topic,
        "--producer.config",
        str(config),
        input="".join(line + "\n" for line in lines),
    )


def consume(
    node: NodeProcess, config: Path, topic: str, count: int
) -> subprocess.CompletedProcess[str]:
    return tool(
        CONSUMER,
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        str(count),
        "--timeout-ms",
        "20000",
        "--consumer.config",
        str(config),
    )


def create_topic(node: NodeProcess, config: Path, name: str) -> None:
    ok(
        tool(
            TOPICS,
            "--bootstrap-server",
            node.bootstrap,
            "--command-config",
            str(config),
            "--create",
            "--topic",
            name,
        )
    )


ENTRY = "(principal=User:alice, host=*, operation={op}, permissionType={perm})"


def resource(name: str, pattern: str = "LITERAL", kind: str = "TOPIC") -> str:
    return f"ResourcePattern(resourceType={kind}, name={name}, patternType={pattern})"


def test_without_credentials_or_with_a_wrong_password_a_request_gets_401(
    cluster: Cluster,
) -> None:
    node = cluster.nodes[0]
    status, body = node.http("GET", "/v1/topics", auth=None)
    assert status == 401 and body["error"] == "SASL_AUTHENTICATION_FAILED", body
    status, body = node.http("GET", "/v1/topics", auth=("alice", "wrong"))
    assert status == 401 and body["error"] == "SASL_AUTHENTICATION_FAILED", body
    status, body = node.http("GET", "/v1/topics", auth=("nobody", "alice-secret"))
    assert status == 401, body
    # the readiness probe stays open for load balancers
    status, body = node.http("GET", "/v1/health/ready", auth=None)
    assert status == 200 and body["ready"], body
    # a tool without a config file gets one line, exit 1
    out = tool(TOPICS, "--bootstrap-server", node.bootstrap, "--list")
    assert one_line_error(out) == (
        "Error while executing topic command : authentication required: send Authorization: "
        "Basic base64(user:password) (the tools: sasl.jaas.config in --command-config)"
    )


def test_the_401_asks_for_basic_credentials(cluster: Cluster) -> None:
    import urllib.error
    import urllib.request

    node = cluster.nodes[0]
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(node.url + "/v1/cluster", timeout=10)
    assert info.value.code == 401
    assert info.value.headers["WWW-Authenticate"] == 'Basic realm="kraft"'


def test_alice_needs_acls_to_write_and_read_and_kraft_acls_grants_them(
    cluster: Cluster, configs: dict[str, Path]
) -> None:
    node = cluster.nodes[0]
    create_topic(node, configs["admin"], "news")

    # No ACL: alice may neither produce nor fetch, and does not see the topic.
    status, body = node.http(
        "POST", "/v1/topics/news/records", {"records": [{"value": "x"}]}, auth=ALICE
    )
    assert status == 403 and body["error"] == "TOPIC_AUTHORIZATION_FAILED", body
    assert "User:alice" in body["message"] and "WRITE" in body["message"]
    status, body = node.http("GET", "/v1/topics/news/partitions/0/records", auth=ALICE)
    assert status == 403 and body["error"] == "TOPIC_AUTHORIZATION_FAILED", body
    status, body = node.http("GET", "/v1/topics", auth=ALICE)
    assert status == 200 and body["topics"] == [], body
    # a topic that does not exist answers 403 too: names do not leak
    status, body = node.http("GET", "/v1/topics/no-such-topic", auth=ALICE)
    assert status == 403, body
    # cluster operations need cluster ACLs
    status, body = node.http("GET", "/v1/acls", auth=ALICE)
    assert status == 403 and body["error"] == "CLUSTER_AUTHORIZATION_FAILED", body
    # The producer's first request reads the topic's metadata (DESCRIBE, which WRITE implies),
    # as Kafka's does: that is what is refused.
    out = produce(node, configs["alice"], "news", "denied")
    assert out.returncode == 1 and "User:alice is not authorized to DESCRIBE topic news" in (
        out.stderr
    ), out.stderr
    out = acls(
        node,
        configs["admin"],
        "--add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--topic",
        "news",
    )
    assert ok(out) == (
        f"Adding ACLs for resource `{resource('news')}`: \n"
        f" \t{ENTRY.format(op='WRITE', perm='ALLOW')}\n\n"
    )
    # adding it again says so and changes nothing
    out = acls(
        node,
        configs["admin"],
        "--add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--topic",
        "news",
    )
    assert ok(out) == (
        f"Acl (pattern={resource('news')}, entry={ENTRY.format(op='WRITE', perm='ALLOW')}) "
        "already exists.\n"
    )

    ok(produce(node, configs["alice"], "news", "first", "second"))
    status, body = node.http("GET", "/v1/topics/news/partitions/0/records", auth=ALICE)
    assert status == 403, body  # WRITE does not give READ
    status, body = node.http("GET", "/v1/topics", auth=ALICE)
    assert [t["name"] for t in body["topics"]] == ["news"]  # WRITE implies DESCRIBE

    ok(
        acls(
            node,
            configs["admin"],
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "news",
        )
    )
    out = consume(node, configs["alice"], "news", 2)
    assert ok(out) == "first\nsecond\n"

    out = acls(node, configs["admin"], "--list", "--topic", "news")
    assert ok(out) == (
        f"Current ACLs for resource `{resource('news')}`:\n"
        f"\t{ENTRY.format(op='READ', perm='ALLOW')}\n"
        f"\t{ENTRY.format(op='WRITE', perm='ALLOW')}\n\n"
    )


def test_a_prefixed_acl_covers_every_topic_with_the_prefix_and_deny_wins(
    cluster: Cluster, configs: dict[str, Path]
) -> None:
    node = cluster.nodes[1]
    for name in ("logs.app", "logs.db", "other"):
        create_topic(node, configs["admin"], name)
    out = acls(
        node,
        configs["admin"],
        "--add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--topic",
        "logs.",
        "--resource-pattern-type",
        "prefixed",
    )
    assert resource("logs.", "PREFIXED") in ok(out)
    ok(produce(node, configs["alice"], "logs.app", "a"))
    ok(produce(node, configs["alice"], "logs.db", "b"))
    status, body = node.http(
        "POST", "/v1/topics/other/records", {"records": [{"value": "x"}]}, auth=ALICE
    )
    assert status == 403, body

    ok(
        acls(
            node,
            configs["admin"],
            "--add",
            "--deny-principal",
            "User:alice",
            "--operation",
            "Write",
            "--topic",
            "logs.db",
        )
    )
    status, body = node.http(
        "POST", "/v1/topics/logs.db/records", {"records": [{"value": "x"}]}, auth=ALICE
    )
    assert status == 403, body
    status, body = node.http(
        "POST", "/v1/topics/logs.app/records", {"records": [{"value": "x"}]}, auth=ALICE
    )
    assert status == 200, body

    out = acls(node, configs["admin"], "--list", "--principal", "User:alice")
    listing = ok(out)
    assert listing.startswith("ACLs for principal `User:alice`\n")
    assert f"Current ACLs for resource `{resource('logs.', 'PREFIXED')}`:\n" in listing
    assert f"\t{ENTRY.format(op='WRITE', perm='DENY')}\n" in listing

    # --remove of the deny ACL: writes to logs.db work again
    out = acls(
        node,
        configs["admin"],
        "--remove",
        "--deny-principal",
        "User:alice",
        "--operation",
        "Write",
        "--topic",
        "logs.db",
        "--force",
    )
    ok(out)
    status, body = node.http(
        "POST", "/v1/topics/logs.db/records", {"records": [{"value": "y"}]}, auth=ALICE
    )
    assert status == 200, body
    # without --force it asks, and "n" keeps the ACLs
    out = tool(
        ACLS,
        "--bootstrap-server",
        node.bootstrap,
        "--command-config",
        str(configs["admin"]),
        "--remove",
        "--topic",
        "logs.",
        "--resource-pattern-type",
        "prefixed",
        input="n\n",
    )
    assert ok(out) == (
        "Are you sure you want to delete all ACLs for resource filter "
        f"`{resource('logs.', 'PREFIXED')}`? (y/n)\n"
    )
    status, body = node.http("GET", "/v1/acls?resource_name=logs.&pattern_type=PREFIXED")
    assert status == 200 and len(body["acls"]) == 1, body


def test_alice_cannot_change_acls_and_a_denied_request_changes_nothing(
    cluster: Cluster, configs: dict[str, Path]
) -> None:
    node = cluster.nodes[0]
    out = acls(
        node,
        configs["alice"],
        "--add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "All",
        "--topic",
        "*",
    )
    assert one_line_error(out) == (
        "Error while executing ACL command: User:alice is not authorized to DESCRIBE the cluster"
    )
    status, body = node.http("GET", "/v1/acls?resource_name=*&resource_type=TOPIC")
    assert status == 200 and body["acls"] == [], body
    status, body = node.http("POST", "/v1/topics", {"name": "alices"}, auth=ALICE)
    assert status == 403 and body["error"] == "TOPIC_AUTHORIZATION_FAILED", body
    status, body = node.http("GET", "/v1/topics/alices")
    assert status == 404, body  # nothing was created
    create_topic(node, configs["admin"], "kept")
    status, body = node.http("DELETE", "/v1/topics/kept", auth=ALICE)
    assert status == 403, body
    assert node.http("GET", "/v1/topics/kept")[0] == 200
    status, body = node.http("POST", "/v1/topics", {"nam": "x"}, auth=ALICE)
    assert status == 403 and body["error"] == "CLUSTER_AUTHORIZATION_FAILED", body

    # CREATE on a topic prefix lets alice create those topics, and only those
    ok(
        acls(
            node,
            configs["admin"],
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Create",
            "--topic",
            "alice.",
            "--resource-pattern-type",
            "prefixed",
        )
    )
    status, body = node.http("POST", "/v1/topics", {"name": "alice.t"}, auth=ALICE)
    assert status == 201 and body["name"] == "alice.t", body
    status, body = node.http("POST", "/v1/topics", {"name": "bob.t"}, auth=ALICE)
    assert status == 403 and body["error"] == "TOPIC_AUTHORIZATION_FAILED", body


def test_the_other_tools_take_their_client_config_files(
    cluster: Cluster, configs: dict[str, Path]
) -> None:
    node = cluster.nodes[2]
    create_topic(node, configs["admin"], "perf")
    out = tool(
        "client.tools.producer_perf_test",
        "--topic",
        "perf",
        "--num-records",
        "20",
        "--record-size",
        "10",
        "--throughput",
        "-1",
        "--bootstrap-server",
        node.bootstrap,
        "--producer.config",
        str(configs["admin"]),
    )
    assert "20 records sent" in ok(out)
    out = tool(
        "client.tools.consumer_perf_test",
        "--topic",
        "perf",
        "--messages",
        "20",
        "--bootstrap-server",
        node.bootstrap,
        "--consumer.config",
        str(configs["admin"]),
        "--hide-header",
    )
    ok(out)
    out = tool(
        "client.tools.metadata_quorum",
        "--bootstrap-server",
        node.bootstrap,
        "--command-config",
        str(configs["admin"]),
        "describe",
        "--status",
    )
    assert "LeaderId:" in ok(out)
    out = tool(
        "client.tools.leader_election",
        "--bootstrap-server",
        node.bootstrap,
        "--admin.config",
        str(configs["alice"]),
        "--election-type",
        "preferred",
        "--all-topic-partitions",
    )
    assert "User:alice is not authorized to ALTER the cluster" in one_line_error(out)


def test_a_new_user_works_without_a_restart(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    users_file = Path(node.extra_properties["http.users.file"])
    add_user(users_file, "carol", "carol-secret")
    status, body = wait_until(
        "the nodes read the new users file",
        lambda: (
            (r := node.http("GET", "/v1/topics", auth=("carol", "carol-secret")))[0] == 200 and r
        ),
    )
    assert body["topics"] == []  # authenticated, and sees nothing without ACLs


def test_a_follower_forwards_acl_writes_and_acls_survive_a_restart(
    cluster: Cluster, configs: dict[str, Path]
) -> None:
    controller = cluster.controller_id()
    assert controller is not None
    follower = next(n for n in cluster.nodes if n.node_id != controller)
    create_topic(follower, configs["admin"], "forwarded")
    status, body = follower.http(
        "POST",
        "/v1/acls",
        {
            "acls": [
                {
                    "resource_type": "TOPIC",
                    "resource_name": "forwarded",
                    "principal": "User:alice",
                    "operation": "READ",
                    "permission": "ALLOW",
                }
            ]
        },
    )
    assert status == 201 and body["acls"][0]["operation"] == "READ", body
    for node in cluster.nodes:
        status, body = node.http("GET", "/v1/acls?resource_name=forwarded")
        assert status == 200 and len(body["acls"]) == 1, (node.node_id, body)

    before = {
        n.node_id: n.http("GET", "/v1/acls?resource_type=ANY")[1]["acls"] for n in cluster.nodes
    }
    assert all(before[1] == acl_list for acl_list in before.values())
    for node in cluster.nodes:
        node.stop()
    cluster.start()
    for node in cluster.nodes:
        status, body = node.http("GET", "/v1/acls?resource_type=ANY")
        assert status == 200 and body["acls"] == before[1], (node.node_id, body)
    # alice's READ works on every node once the partition has its leader again
    wait_until(
        "alice reads the topic after the restart",
        lambda: (
            follower.http("GET", "/v1/topics/forwarded/partitions/0/records", auth=ALICE)[0] == 200
        ),
    )
    # ACL deletes are forwarded too, and answer what they removed
    status, body = follower.http("DELETE", "/v1/acls?resource_name=forwarded")
    assert status == 200 and [a["operation"] for a in body["acls"]] == ["READ"], body
    status, body = http(
        "GET", follower.url + "/v1/topics/forwarded/partitions/0/records", auth=ALICE
    )
    assert status == 403, body


def test_a_node_whose_users_file_is_missing_stops_at_start_naming_the_setting(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-users"
    node = NodeProcess(
        tmp_path / "node",
        extra_properties={
            "listener.security.protocol.map": "HTTP:SASL_PLAINTEXT",
            "http.users.file": str(missing),
        },
    )
    node.format()
    try:
        node.start(wait=False)
        assert node.process is not None
        assert node.process.wait(timeout=60) == 1
    finally:
        node.stop()
    assert f"http.users.file: cannot read {missing}: No such file or directory" in node.log_tail()


def test_acl_calls_without_an_authorizer_are_refused_as_kafka_does(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "plain")
    node.format()
    try:
        node.start()
        status, body = node.http("GET", "/v1/acls")
        assert status == 400 and body["error"] == "SECURITY_DISABLED", body
        assert body["message"].startswith("No Authorizer is configured"), body
        status, body = node.http(
            "POST",
            "/v1/acls",
            {
                "acls": [
                    {
                        "resource_type": "CLUSTER",
                        "principal": "User:a",
                        "operation": "ALTER",
                        "permission": "ALLOW",
                    }
                ]
            },
        )
        assert status == 400, body
        out = tool(ACLS, "--bootstrap-server", node.bootstrap, "--list")
        assert one_line_error(out).startswith(
            "Error while executing ACL command: No Authorizer is configured"
        )
    finally:
        node.stop()


def test_group_calls_need_group_acls_and_a_commit_needs_read_on_its_topics(
    cluster: Cluster, configs: dict[str, Path]
) -> None:
    node = cluster.nodes[0]
    create_topic(node, configs["admin"], "ledger")
    commit = [{"topic": "ledger", "partition": 0, "offset": 1}]

    def as_alice(method: str, path: str, body: object = None) -> tuple[int, dict[str, object]]:
        url = node.url + path
        for _ in range(3):  # follow the 307 to the group's coordinator
            status, answer = http(method, url, body, auth=ALICE)
            if status != 307:
                return status, answer
            url = answer["leader_url"] + path
        raise AssertionError("redirected three times")

    status, body = as_alice("POST", "/v1/groups/books/offsets", commit)
    assert status == 403 and body["error"] == "GROUP_AUTHORIZATION_FAILED", body
    status, body = as_alice("POST", "/v1/groups/books/heartbeat", {"member_epoch": 0, "topics": []})
    assert status == 403 and body["error"] == "GROUP_AUTHORIZATION_FAILED", body
    grant = ["--add", "--allow-principal", "User:alice", "--operation", "Read", "--group", "books"]
    ok(acls(node, configs["admin"], *grant))
    # READ on the group is not enough to commit offsets of a topic alice may not read (waited
    # for: the coordinator applies the new ACL a moment later).
    wait_until(
        "the commit is refused for the topic, no longer for the group",
        lambda: (
            as_alice("POST", "/v1/groups/books/offsets", commit)[1]["error"]
            == "TOPIC_AUTHORIZATION_FAILED"
        ),
        60,
    )
    ok(
        acls(
            node,
            configs["admin"],
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "ledger",
        )
    )
    status, body = wait_until(
        "the commit is accepted",
        lambda: (lambda r: r if r[0] == 200 else None)(
            as_alice("POST", "/v1/groups/books/offsets", commit)
        ),
        60,
    )
    # Listing shows only the groups alice may describe (READ implies DESCRIBE).
    status, body = as_alice("GET", "/v1/groups")
    assert status == 200 and [g["group"] for g in body["groups"]] == ["books"], body
