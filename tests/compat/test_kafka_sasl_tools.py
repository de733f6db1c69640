"""Kafka 4.4.0's own tools (through ``scripts/kafka-tool``) and kcat over ``KAFKA:SASL_SSL``
against three of our nodes secured as ``scripts/cluster start --secure`` secures them (TLS with
the nodes' CA, SASL users in a users file, the StandardAuthorizer, ``User:admin`` a super user):

- with the launcher's own ``admin-scram.properties`` text (SCRAM-SHA-256, the CA as a PEM
  truststore): ``kafka-topics --create``/``--describe``, ``kafka-console-producer``,
  ``kafka-console-consumer --from-beginning --max-messages`` in a group and
  ``kafka-consumer-groups --describe``, each checked against what the HTTP API shows;
- with PLAIN: ``kafka-topics --list``;
- with a wrong password: the tool fails with Kafka's SaslAuthenticationException and its words;
- kcat (Debian's: librdkafka 2.0.2, which needs SaslHandshake v0 offered) with PLAIN: produce,
  then consume to the end; with SCRAM-SHA-256 it is refused with Kafka's words, as Kafka 4
  refuses it: librdkafka before 2.6.1 repeats its nonce in the final message
  (confluentinc/librdkafka#4895), which Kafka 4's strict nonce check (CVE-2024-56128) rejects.

JVM starts cost seconds each, so each tool runs once. Skipped, with the reason, only when Java
and Kafka's jars (``scripts/setup``), or kcat, are missing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.cluster_nodes import ADMIN_USER, admin_scram_properties_text
from scripts.node_process import Cluster, client_properties_text, wait_until
from tests.compat.conftest import KafkaToolRunner

pytestmark = pytest.mark.timeout(600)

DEADLINE_S = 60.0
ADMIN_PASSWORD = "admin-secret-9"
# admin first: the nodes' own credentials for the HTTP API (Cluster.create).
USERS = {ADMIN_USER: ADMIN_PASSWORD, "alice": "alice-secret-3"}
SCRAM_REFUSAL = (
    "Authentication failed during authentication due to invalid credentials with SASL "
    "mechanism SCRAM-SHA-256"
)


@dataclass(frozen=True)
class SecureNodes:
    """Three running nodes whose HTTP and KAFKA listeners are SASL_SSL, and client properties
    files for Kafka's tools."""

    cluster: Cluster
    cafile: Path
    scram: Path  # admin, SCRAM-SHA-256: the launcher's admin-scram.properties
    plain: Path  # admin, PLAIN
    wrong: Path  # admin, SCRAM-SHA-256, a wrong password

    @property
    def bootstrap(self) -> str:
        return self.cluster.kafka_bootstrap()

    def http(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.cluster.nodes[0].http(method, path, body)
        assert status in (200, 201), (status, answer)
        return answer


@pytest.fixture(scope="module")
def secure_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureNodes]:
    directory = tmp_path_factory.mktemp("compat-sasl")
    cluster = Cluster.create(
        directory,
        3,
        security="SASL_SSL",
        users=USERS,
        **{
            "listener.security.protocol.map": "HTTP:SASL_SSL,KAFKA:SASL_SSL",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN_USER}",
            "min.insync.replicas": "2",
            "default.replication.factor": "3",
            "offsets.topic.num.partitions": "5",
        },
    )
    cluster.give_kafka_listeners()
    cafile = cluster.nodes[0].cafile
    assert cafile is not None
    scram = directory / "admin-scram.properties"
    scram.write_text(admin_scram_properties_text(cafile, ADMIN_PASSWORD))
    plain = directory / "admin-plain.properties"
    plain.write_text(client_properties_text("SASL_SSL", cafile, (ADMIN_USER, ADMIN_PASSWORD)))
    wrong = directory / "wrong.properties"
    wrong.write_text(admin_scram_properties_text(cafile, ADMIN_PASSWORD + "-not"))
    try:
        cluster.start()
        yield SecureNodes(cluster, cafile, scram, plain, wrong)
    finally:
        cluster.stop()


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-3000:])
    return done.stdout


def topic_view(nodes: SecureNodes, topic: str) -> dict[str, Any]:
    """GET /v1/topics/{topic} once every node knows the topic (a tool may ask any of them)
    and every partition has a leader and its whole ISR."""
    for node in nodes.cluster.nodes[1:]:
        wait_until(
            f"node {node.node_id} knows {topic}",
            lambda node=node: node.http("GET", f"/v1/topics/{topic}")[0] == 200,
            DEADLINE_S,
        )
    return wait_until(  # type: ignore[no-any-return]
        f"{topic}'s ISR whole",
        lambda: (
            (view := nodes.cluster.nodes[0].http("GET", f"/v1/topics/{topic}"))[0] == 200
            and all(p["leader"] is not None and len(p["isr"]) == 3 for p in view[1]["partitions"])
            and view[1]
        ),
        DEADLINE_S,
    )


def described_partitions(out: str) -> dict[int, tuple[int, list[int]]]:
    """kafka-topics --describe's partition lines: partition -> (leader, replicas)."""
    found: dict[int, tuple[int, list[int]]] = {}
    for line in out.splitlines():
        fields = dict(part.split(": ", 1) for part in line.strip().split("\t") if ": " in part)
        if "Partition" in fields:
            replicas = [int(r) for r in fields["Replicas"].split(",")]
            found[int(fields["Partition"])] = (int(fields["Leader"]), replicas)
    return found


def test_kafka_tools_create_describe_produce_consume_and_describe_the_group_with_scram(
    kafka_tool: KafkaToolRunner, secure_nodes: SecureNodes
) -> None:
    nodes = secure_nodes
    scram = ["--bootstrap-server", nodes.bootstrap, "--command-config", str(nodes.scram)]
    out = ok(
        kafka_tool.run(
            "kafka-topics", *scram, "--create", "--topic", "secure-news", "--partitions", "1"
        )
    )
    assert out == "Created topic secure-news.\n"
    view = topic_view(nodes, "secure-news")

    out = ok(kafka_tool.run("kafka-topics", *scram, "--describe", "--topic", "secure-news"))
    assert out.startswith("Topic: secure-news\tTopicId: "), out
    assert "\tPartitionCount: 1\tReplicationFactor: 3\t" in out, out
    assert described_partitions(out) == {
        p["partition"]: (p["leader"], p["replicas"]) for p in view["partitions"]
    }

    lines = [f"line {i}" for i in range(6)]
    ok(
        kafka_tool.run(
            "kafka-console-producer",
            *scram,
            "--topic",
            "secure-news",
            "--command-property",
            "acks=all",
            input="".join(f"{line}\n" for line in lines),
        )
    )
    # Every line is stored: the partitions' high watermarks add up to six.
    stored = wait_until(
        "six records stored",
        lambda: (
            sum(p["high_watermark"] for p in topic_view(nodes, "secure-news")["partitions"]) == 6
        ),
        DEADLINE_S,
    )
    assert stored

    done = kafka_tool.run(
        "kafka-console-consumer",
        *scram,
        "--topic",
        "secure-news",
        "--group",
        "secure-readers",
        "--from-beginning",
        "--max-messages",
        "6",
    )
    assert ok(done).splitlines() == lines, done.stderr[-2000:]
    assert "Processed a total of 6 messages" in done.stderr

    out = ok(
        kafka_tool.run("kafka-consumer-groups", *scram, "--describe", "--group", "secure-readers")
    )
    # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
    rows = [line.split() for line in out.splitlines() if line.startswith("secure-readers ")]
    ends = {
        p["partition"]: p["high_watermark"] for p in topic_view(nodes, "secure-news")["partitions"]
    }
    assert {(r[1], int(r[2]), int(r[3]), int(r[4]), r[5]) for r in rows} == {
        ("secure-news", partition, end, end, "0") for partition, end in ends.items()
    }, out
    # The same committed offsets over HTTP.
    group = nodes.http("GET", "/v1/groups/secure-readers")
    committed = {(o["topic"], o["partition"]): o["offset"] for o in group["offsets"]}
    assert committed == {("secure-news", p): end for p, end in ends.items()}, group


def test_kafka_topics_lists_with_plain(
    kafka_tool: KafkaToolRunner, secure_nodes: SecureNodes
) -> None:
    nodes = secure_nodes
    nodes.http("POST", "/v1/topics", {"name": "plain-listed", "partitions": 1})
    topic_view(nodes, "plain-listed")
    out = ok(
        kafka_tool.run(
            "kafka-topics",
            "--bootstrap-server",
            nodes.bootstrap,
            "--command-config",
            str(nodes.plain),
            "--list",
        )
    )
    assert "plain-listed" in out.splitlines(), out


def test_a_wrong_password_fails_the_tool_with_kafkas_authentication_error(
    kafka_tool: KafkaToolRunner, secure_nodes: SecureNodes
) -> None:
    nodes = secure_nodes
    done = kafka_tool.run(
        "kafka-topics",
        "--bootstrap-server",
        nodes.bootstrap,
        "--command-config",
        str(nodes.wrong),
        "--list",
    )
    # TopicCommand's one line, exit 1; the admin client logs Kafka's exception class.
    assert (done.returncode, done.stdout) == (
        1,
        f"Error while executing topic command : {SCRAM_REFUSAL}\n",
    ), done.stderr[-3000:]
    assert f"SaslAuthenticationException: {SCRAM_REFUSAL}" in done.stderr, done.stderr[-3000:]


def test_kcat_produces_and_consumes_with_plain_and_is_refused_scram_as_kafka_4_refuses_it(
    kcat: str, secure_nodes: SecureNodes
) -> None:
    nodes = secure_nodes
    nodes.http("POST", "/v1/topics", {"name": "kcat-secure", "partitions": 1})
    topic_view(nodes, "kcat-secure")
    security = [
        "-b", nodes.bootstrap,
        "-X", "security.protocol=SASL_SSL",
        "-X", "sasl.mechanisms=PLAIN",
        "-X", f"sasl.username={ADMIN_USER}",
        "-X", f"sasl.password={ADMIN_PASSWORD}",
        "-X", f"ssl.ca.location={nodes.cafile}",
    ]  # fmt: skip
    produced = subprocess.run(
        [kcat, *security, "-P", "-t", "kcat-secure", "-K", ":", "-X", "acks=all"],
        input="oslo:-3.5\nlima:19.0\n",
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(
        [kcat, *security, "-C", "-t", "kcat-secure", "-o", "beginning", "-e", "-q",
         "-f", "%o %k %s\n"],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )  # fmt: skip
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout == "0 oslo -3.5\n1 lima 19.0\n"
    # The same records over HTTP.
    records = nodes.http("GET", "/v1/topics/kcat-secure/partitions/0/records?offset=0")
    assert [(r["key"], r["value"]) for r in records["records"]] == [
        ("oslo", "-3.5"),
        ("lima", "19.0"),
    ]
    # SCRAM-SHA-256: this librdkafka's final message fails the nonce check (module docstring).
    refused = subprocess.run(
        [kcat, *security, "-X", "sasl.mechanisms=SCRAM-SHA-256", "-L"],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert refused.returncode != 0, refused.stdout
    assert f"SASL authentication error: {SCRAM_REFUSAL}" in refused.stderr, refused.stderr
