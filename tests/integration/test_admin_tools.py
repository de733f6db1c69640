"""kraft-configs, kraft-get-offsets, kraft-topics' partition reports and the Admin client on
real nodes, with Kafka's lines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.admin import Admin, TopicPartition
from scripts.node_process import Cluster, NodeProcess, free_ports, http, run_tool
from tests.integration.conftest import running_cluster

TOPIC = "ledger"


@pytest.fixture(scope="module")
def admin_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("admin-tools"), **{"num.partitions": "2"}) as c:
        with Admin(c.nodes[0].bootstrap) as admin:
            admin.create_topic(TOPIC, 3, 3)
        for partition, count in enumerate((4, 0, 2)):
            if count:
                _produce(c.nodes[0], partition, count)
        yield c


def _produce(node: NodeProcess, partition: int, count: int) -> None:
    """``count`` records whose timestamps are 1000, 2000, ... ms, through the leader."""
    records = [{"value": f"{partition}-{i}", "timestamp": 1000 * (i + 1)} for i in range(count)]
    path = f"/v1/topics/{TOPIC}/partitions/{partition}/records"
    url = node.url + path
    for _hop in range(3):
        status, answer = http("POST", url, {"records": records})
        if status != 307:
            break
        url = answer["leader_url"].rstrip("/") + path
    assert status == 200, answer


def tool(module: str, node: NodeProcess, *args: str) -> tuple[int, str, str]:
    out = run_tool(f"client.tools.{module}", "--bootstrap-server", node.bootstrap, *args)
    return out.returncode, out.stdout, out.stderr


def test_get_offsets_prints_kafkas_lines(admin_cluster: Cluster) -> None:
    node = admin_cluster.nodes[1]
    assert tool("get_offsets", node, "--topic", TOPIC)[:2] == (
        0,
        f"{TOPIC}:0:4\n{TOPIC}:1:0\n{TOPIC}:2:2\n",
    )
    assert tool("get_offsets", node, "--topic", TOPIC, "--time", "-2")[1] == (
        f"{TOPIC}:0:0\n{TOPIC}:1:0\n{TOPIC}:2:0\n"
    )
    # The first record at or after 2000 ms is the second one; an empty partition has none.
    assert tool("get_offsets", node, "--topic-partitions", f"{TOPIC}:0-", "--time", "2000")[1] == (
        f"{TOPIC}:0:1\n{TOPIC}:2:1\n"
    )
    code, out, err = tool("get_offsets", node, "--topic", "nothing-here")
    assert (code, out) == (1, "")
    assert err.strip() == (
        "Error occurred: Could not match any topic-partitions with the specified filters"
    )


def test_topic_configs_alter_and_describe(admin_cluster: Cluster) -> None:
    node = admin_cluster.nodes[2]
    code, out, err = tool(
        "configs",
        node,
        "--entity-type",
        "topics",
        "--entity-name",
        TOPIC,
        "--alter",
        "--add-config",
        "retention.ms=86400000,cleanup.policy=[delete]",
    )
    assert (code, out, err) == (0, f"Completed updating config for topic {TOPIC}.\n", "")
    code, out, err = tool("configs", node, "--topic", TOPIC, "--describe")
    assert code == 0, err
    assert out.splitlines() == [
        f"Dynamic configs for topic {TOPIC} are:",
        "  cleanup.policy=delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy="
        "delete, DEFAULT_CONFIG:log.cleanup.policy=delete}",
        "  retention.ms=86400000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms="
        "86400000, DEFAULT_CONFIG:log.retention.ms=604800000}",
    ]
    # min.insync.replicas=2 is the launcher's node setting: a static broker config.
    code, out, err = tool("configs", node, "--topic", TOPIC, "--describe", "--all")
    assert (
        "  min.insync.replicas=2 sensitive=false synonyms={STATIC_BROKER_CONFIG:"
        "min.insync.replicas=2, DEFAULT_CONFIG:min.insync.replicas=1}"
    ) in out.splitlines()

    code, out, err = tool(
        "configs", node, "--topic", TOPIC, "--alter", "--delete-config", "cleanup.policy,flush.ms"
    )
    assert (code, err.strip()) == (1, "Invalid config(s): flush.ms")
    code, out, err = tool(
        "configs", node, "--topic", TOPIC, "--alter", "--delete-config", "cleanup.policy"
    )
    assert code == 0, err
    with Admin(node.bootstrap) as admin:
        assert admin.describe_topic_configs(TOPIC)["overrides"] == {"retention.ms": "86400000"}

    code, out, err = tool(
        "configs", node, "--topic", TOPIC, "--alter", "--add-config", "segment.ms=x"
    )
    assert code == 1
    assert err.splitlines()[0].startswith("Error while executing config command with args")
    assert "segment.ms" in err.splitlines()[1]


def test_broker_configs_are_described_by_the_broker_itself(admin_cluster: Cluster) -> None:
    asked, described = admin_cluster.nodes[0], admin_cluster.nodes[2]
    code, out, err = tool(
        "configs",
        asked,
        "--entity-type",
        "brokers",
        "--entity-name",
        str(described.node_id),
        "--describe",
        "--all",
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"All configs for broker {described.node_id} are:"
    # The answer is the described broker's own (a 307 took the request there).
    n = described.node_id
    assert f"  node.id={n} sensitive=false synonyms={{STATIC_BROKER_CONFIG:node.id={n}}}" in lines
    assert (
        "  min.insync.replicas=2 sensitive=false synonyms={STATIC_BROKER_CONFIG:"
        "min.insync.replicas=2, DEFAULT_CONFIG:min.insync.replicas=1}"
    ) in lines
    code, out, err = tool("configs", asked, "--entity-type", "brokers", "--describe")
    assert code == 0, err
    assert out.splitlines() == [
        *(f"Dynamic configs for broker {n.node_id} are:" for n in admin_cluster.nodes),
        "Default configs for brokers in the cluster are:",
    ]
    code, out, err = tool("configs", asked, "--broker", "1", "--alter", "--add-config", "a=b")
    assert code == 1
    assert err.splitlines()[1] == "Unknown config name: a"


def test_min_isr_reports(admin_cluster: Cluster) -> None:
    node = admin_cluster.nodes[0]
    with Admin(node.bootstrap) as admin:
        admin.create_topic("strict", 2, 3, {"min.insync.replicas": "3"})
        admin.create_topic("impossible", 1, 3, {"min.insync.replicas": "4"})
    deadline = time.monotonic() + 60
    while True:  # each partition's ISR starts as all three replicas once they have caught up
        code, out, err = tool("topics", node, "--describe", "--at-min-isr-partitions")
        if out.count("Topic: strict") == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 0, err
    assert [line.split("\t")[1:3] for line in out.splitlines()] == [
        ["Topic: strict", "Partition: 0"],
        ["Topic: strict", "Partition: 1"],
    ]
    code, out, err = tool("topics", node, "--describe", "--under-min-isr-partitions")
    assert code == 0, err
    assert [line.split("\t")[1:3] for line in out.splitlines()] == [
        ["Topic: impossible", "Partition: 0"]
    ]


def test_admin_passes_over_a_dead_bootstrap_address(admin_cluster: Cluster) -> None:
    (dead_port,) = free_ports(1)
    bootstrap = f"127.0.0.1:{dead_port},{admin_cluster.nodes[1].bootstrap}"
    with Admin(bootstrap) as admin:
        assert TOPIC in admin.list_topics()
        assert admin.list_offsets(TOPIC, 0, "latest") == 4
        assert admin.list_offsets_many([TopicPartition(TOPIC, 2)], "earliest") == {
            TopicPartition(TOPIC, 2): 0
        }


def test_the_admin_tools_speak_sasl_ssl_with_a_command_config(tmp_path: Path) -> None:
    secure = Cluster.create(
        tmp_path / "secure", count=1, security="SASL_SSL", users={"admin": "admin-secret"}
    )
    secure.start()
    try:
        node = secure.nodes[0]
        with_config = ("--command-config", str(node.client_properties(tmp_path / "c.properties")))
        code, out, err = tool("configs", node, "--topic", "s", "--describe", *with_config)
        assert code == 1  # no such topic yet: the call got through TLS and SASL to the node
        assert "does not exist" in err or "UNKNOWN_TOPIC" in err, err
        status, answer = node.http("POST", "/v1/topics", {"name": "s", "partitions": 1})
        assert status == 201, answer
        assert tool("get_offsets", node, "--topic", "s", *with_config)[:2] == (0, "s:0:0\n")
        assert tool("consumer_groups", node, "--list", *with_config)[:2] == (0, "")
        # Without security settings the TLS listener drops the plain HTTP request: the admin
        # client retries that (a node may be restarting) until default.api.timeout.ms, then
        # the tool says why in one line.
        plain = tmp_path / "plain.properties"
        plain.write_text("default.api.timeout.ms=2000\n")
        code, out, err = tool("get_offsets", node, "--topic", "s", "--command-config", str(plain))
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert err.startswith("Error occurred: "), err
    finally:
        secure.stop()
