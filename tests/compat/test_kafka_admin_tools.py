"""Kafka 4.4.0's admin tools, through ``scripts/kafka-tool``, against the KAFKA listeners of
three of our nodes (issue 18): kafka-configs, kafka-get-offsets, kafka-reassign-partitions,
kafka-leader-election, kafka-log-dirs, kafka-broker-api-versions and kafka-groups, each run as
a Kafka user runs it. What a tool prints, and what it changes, is checked against our HTTP
API (configs and their sources, offsets, replicas, throttles, log directories, groups) or
against the node's own API table, never against numbers written here.

Each run starts a JVM (seconds): the tools run once or twice each, about fifteen runs in all.
Skipped, with the reason, only when Java or Kafka's jars (``scripts/setup``) are missing.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.node_process import NodeProcess, http, wait_until
from server.kafka.apis import api_table
from tests.compat.conftest import KafkaNodes, KafkaToolRunner
from tests.integration.kafka_helpers import consume_subscribed

# The controller's preferred-leader balancing would move a leader back on its own (every
# leader.imbalance.check.interval.seconds): the leader election below must find the leader
# where the reassignment left it, so the modules' nodes do not balance (read by conftest).
KAFKA_NODES_PROPERTIES = {"auto.leader.rebalance.enable": "false"}

DEADLINE_S = 60.0


def ok(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a tool printed on stdout; it must have exited 0 without an exception."""
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Exception" not in done.stderr, done.stderr
    return done.stdout.splitlines()


def get(node: NodeProcess, path: str) -> Any:
    """GET of our HTTP API on ``node`` (a 307 to the broker that knows is followed)."""
    status, body = http("GET", f"{node.url}{path}")
    assert status == 200, (path, body)
    return body


def create_topic(nodes: KafkaNodes, topic: str, partitions: int, replication: int) -> None:
    """Creates the topic at node 1 and returns once every node has applied it (the 201 says
    the controller committed it; the other nodes learn it a moment later)."""
    status, body = http(
        "POST",
        f"{nodes.cluster.nodes[0].url}/v1/topics",
        {"name": topic, "partitions": partitions, "replication_factor": replication},
    )
    assert status == 201, body
    for node in nodes.cluster.nodes:
        wait_until(
            f"node {node.node_id} knows topic {topic}",
            lambda node=node: http("GET", f"{node.url}/v1/topics/{topic}")[0] == 200,
            DEADLINE_S,
        )


def produce(node: NodeProcess, topic: str, counts: dict[int, int]) -> None:
    """``counts[p]`` records to partition p over HTTP, acks=all (any node sends each record
    to its partition's leader)."""
    records = [
        {"partition": partition, "value": f"{topic}-{partition}-{i}"}
        for partition, count in counts.items()
        for i in range(count)
    ]
    status, body = http("POST", f"{node.url}/v1/topics/{topic}/records", {"records": records})
    assert status == 200, body
    assert len(body["offsets"]) == len(records), body


def eventually(what: str, read: Callable[..., Any], expected: Any) -> None:
    """Polls ``read()`` until it equals ``expected``: a metadata change a tool made reaches
    each node a moment after the controller commits it (the tool's answer)."""
    deadline = time.monotonic() + DEADLINE_S
    while (value := read()) != expected:
        assert time.monotonic() < deadline, f"{what}: {value!r}, not {expected!r}"
        time.sleep(0.1)


def partitions(node: NodeProcess, topic: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = get(node, f"/v1/topics/{topic}")["partitions"]
    return out


def settled(nodes: KafkaNodes, topic: str) -> bool:
    """Every partition of ``topic`` led, every replica in its ISR, and each replica's high
    watermark the leader's (each node's GET /v1/topics/T has its own replicas' figures)."""
    views = {
        n.node_id: {p["partition"]: p for p in partitions(n, topic)} for n in nodes.cluster.nodes
    }
    for number, p in views[nodes.cluster.nodes[0].node_id].items():
        if p["leader"] is None or sorted(p["isr"]) != sorted(p["replicas"]):
            return False
        if len({views[b][number]["high_watermark"] for b in p["replicas"]}) != 1:
            return False
    return True


def java(value: Any) -> str:
    """A value as Java's string formatting prints it (a sensitive config's value is null)."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else value


def config_lines(entries: list[dict[str, Any]]) -> list[str]:
    """ConfigCommand's line for each entry of our DescribeConfigs over HTTP, by name."""
    return [
        f"  {e['name']}={java(e['value'])} sensitive={java(e['sensitive'])} synonyms={{"
        + ", ".join(f"{s['source']}:{s['name']}={java(s['value'])}" for s in e["synonyms"])
        + "}"
        for e in sorted(entries, key=lambda e: e["name"])
    ]


# -- kafka-configs ----------------------------------------------------------------------------


def test_configs_alter_and_describe_a_topic_and_describe_a_broker(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[1]
    bootstrap = ["--bootstrap-server", kafka_nodes.bootstrap]
    create_topic(kafka_nodes, "configured", 1, 3)
    before = get(node, "/v1/topics/configured/configs")["configs"]["retention.ms"]
    retention = str(int(before) // 2 + 1)  # not the default, whatever the default is

    altered = kafka_tool.run(
        "kafka-configs", *bootstrap, "--entity-type", "topics", "--entity-name", "configured",
        "--alter", "--add-config", f"retention.ms={retention}",
    )  # fmt: skip
    assert ok(altered) == ["Completed updating config for topic configured."]
    for each in kafka_nodes.cluster.nodes:  # the describes below may ask any of them
        eventually(
            f"node {each.node_id} has the override",
            lambda n=each: get(n, "/v1/topics/configured/configs")["overrides"],
            {"retention.ms": retention},
        )
    assert get(node, "/v1/topics/configured/configs")["configs"]["retention.ms"] == retention

    # --describe: the topic's dynamic configs, each with its synonyms, as our DescribeConfigs
    # over HTTP has them.
    entries = get(node, "/v1/topics/configured/configs/entries")["configs"]
    described = kafka_tool.run(
        "kafka-configs", *bootstrap, "--entity-type", "topics", "--entity-name", "configured",
        "--describe",
    )  # fmt: skip
    assert ok(described) == [
        "Dynamic configs for topic configured are:",
        *config_lines([e for e in entries if e["source"] == "DYNAMIC_TOPIC_CONFIG"]),
    ]
    [line] = ok(described)[1:]
    assert line.startswith(f"  retention.ms={retention} sensitive=false ")

    # --describe --all: every config of the topic.
    everything = kafka_tool.run(
        "kafka-configs", *bootstrap, "--entity-type", "topics", "--entity-name", "configured",
        "--describe", "--all",
    )  # fmt: skip
    assert ok(everything) == ["All configs for topic configured are:", *config_lines(entries)]

    # A broker's configs (only that broker knows them: the HTTP GET follows the 307 to it).
    broker = kafka_nodes.cluster.nodes[2]
    broker_entries = get(node, f"/v1/brokers/{broker.node_id}/configs")["configs"]
    assert {e["name"]: e["value"] for e in broker_entries}["advertised.listeners"].endswith(
        broker.kafka_address
    )
    described_broker = kafka_tool.run(
        "kafka-configs", *bootstrap, "--entity-type", "brokers",
        "--entity-name", str(broker.node_id), "--describe", "--all",
    )  # fmt: skip
    assert ok(described_broker) == [
        f"All configs for broker {broker.node_id} are:",
        *config_lines(broker_entries),
    ]


# -- kafka-get-offsets ------------------------------------------------------------------------


def test_get_offsets_latest_and_earliest(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[0]
    create_topic(kafka_nodes, "counted", 3, 3)
    produce(node, "counted", {0: 4, 1: 1, 2: 0})

    def offsets(partition: int) -> dict[str, Any]:
        body: dict[str, Any] = get(node, f"/v1/topics/counted/partitions/{partition}/offsets")
        return body

    ours = [offsets(p) for p in range(3)]
    assert sum(o["latest"] for o in ours) == 5

    def printed(done: subprocess.CompletedProcess[str]) -> dict[int, int]:
        out: dict[int, int] = {}
        for line in ok(done):
            topic, partition, offset = line.split(":")
            assert topic == "counted", line
            out[int(partition)] = int(offset)
        return out

    latest = kafka_tool.run(
        "kafka-get-offsets", "--bootstrap-server", kafka_nodes.bootstrap, "--topic", "counted"
    )
    assert printed(latest) == {o["partition"]: o["latest"] for o in ours}
    earliest = kafka_tool.run(
        "kafka-get-offsets", "--bootstrap-server", kafka_nodes.bootstrap, "--topic", "counted",
        "--time", "-2",
    )  # fmt: skip
    assert printed(earliest) == {o["partition"]: o["earliest"] for o in ours}


# -- kafka-reassign-partitions, then kafka-leader-election --------------------------------------


def log_dir_of(node: NodeProcess) -> str:
    [log_dir] = get(node, f"/v1/brokers/{node.node_id}/log-dirs?topics=")["log_dirs"]
    path: str = log_dir["log_dir"]
    return path


def broker_throttles(node: NodeProcess) -> dict[str, tuple[str, str]]:
    """The broker's two replication throttle rates: (value, source)."""
    entries = get(node, f"/v1/brokers/{node.node_id}/configs")["configs"]
    return {
        e["name"]: (e["value"], e["source"])
        for e in entries
        if e["name"] in ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
    }


def test_reassign_generate_execute_with_a_throttle_verify_then_elect_the_preferred_leader(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes, tmp_path: Path
) -> None:
    cluster = kafka_nodes.cluster
    node = cluster.nodes[0]
    bootstrap = ["--bootstrap-server", kafka_nodes.bootstrap]
    brokers = sorted(n.node_id for n in cluster.nodes)
    log_dirs = {n.node_id: log_dir_of(n) for n in cluster.nodes}
    create_topic(kafka_nodes, "moving", 1, 2)
    produce(node, "moving", {0: 30})
    wait_until("moving's replicas in sync", lambda: settled(kafka_nodes, "moving"), DEADLINE_S)
    [before] = partitions(node, "moving")

    # --generate: the current assignment (with each replica's log directory, from
    # DescribeLogDirs) and a proposal over the brokers listed.
    to_move = tmp_path / "topics.json"
    to_move.write_text(json.dumps({"version": 1, "topics": [{"topic": "moving"}]}))
    generated = ok(
        kafka_tool.run(
            "kafka-reassign-partitions", *bootstrap, "--generate",
            "--topics-to-move-json-file", str(to_move),
            "--broker-list", ",".join(map(str, brokers)),
        )
    )  # fmt: skip
    assert generated[0] == "Current partition replica assignment"
    assert generated[3] == "Proposed partition reassignment configuration"
    assert json.loads(generated[1]) == {
        "version": 1,
        "partitions": [
            {
                "topic": "moving",
                "partition": 0,
                "replicas": before["replicas"],
                "log_dirs": [log_dirs[b] for b in before["replicas"]],
            }
        ],
    }
    [proposed] = json.loads(generated[4])["partitions"]
    assert (proposed["topic"], proposed["partition"]) == ("moving", 0)
    assert len(set(proposed["replicas"])) == 2 and set(proposed["replicas"]) <= set(brokers)

    # --execute: the broker that holds no replica comes in first (the new preferred leader),
    # the leader stays, the other replica leaves; with a throttle, as an operator moves data.
    leader = before["leader"]
    outsider = next(b for b in brokers if b not in before["replicas"])
    [leaving] = [b for b in before["replicas"] if b != leader]
    target = [outsider, leader]
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {"version": 1, "partitions": [{"topic": "moving", "partition": 0, "replicas": target}]}
        )
    )
    throttle = 50_000_000
    executed = ok(
        kafka_tool.run(
            "kafka-reassign-partitions", *bootstrap, "--execute",
            "--reassignment-json-file", str(plan), "--throttle", str(throttle),
        )
    )  # fmt: skip
    assert json.loads(executed[2])["partitions"][0]["replicas"] == before["replicas"]
    assert f"The inter-broker throttle limit was set to {throttle} B/s" in executed
    assert executed[-1] == "Successfully started partition reassignment for moving-0"

    # The throttles it set, until --verify clears them: the rate on every broker of the move,
    # the current replicas throttled as leaders, the incoming one as a follower.
    def throttled_replicas() -> dict[str, set[str]]:
        overrides = get(node, "/v1/topics/moving/configs")["overrides"]
        return {k: set(v.split(",")) for k, v in overrides.items()}

    eventually(
        "moving's throttled replicas",
        throttled_replicas,
        {
            "leader.replication.throttled.replicas": {f"0:{b}" for b in before["replicas"]},
            "follower.replication.throttled.replicas": {f"0:{outsider}"},
        },
    )
    for broker in cluster.nodes:
        eventually(
            f"broker {broker.node_id}'s throttle rates",
            lambda b=broker: broker_throttles(b),
            {
                "leader.replication.throttled.rate": (str(throttle), "DYNAMIC_BROKER_CONFIG"),
                "follower.replication.throttled.rate": (str(throttle), "DYNAMIC_BROKER_CONFIG"),
            },
        )

    # --verify until the move is done (between runs, our GET /v1/reassignments says when).
    def verify() -> list[str]:
        return ok(
            kafka_tool.run(
                "kafka-reassign-partitions", *bootstrap, "--verify",
                "--reassignment-json-file", str(plan),
            )
        )  # fmt: skip

    verified = verify()
    deadline = time.monotonic() + DEADLINE_S
    while "Reassignment of partition moving-0 is completed." not in verified:
        assert "Reassignment of partition moving-0 is still in progress." in verified, verified
        assert time.monotonic() < deadline, verified
        for each in cluster.nodes:  # the tool may ask any of them
            eventually(
                f"node {each.node_id} sees the move done",
                lambda n=each: get(n, "/v1/reassignments?topic=moving")["reassignments"],
                [],
            )
        verified = verify()
    assert verified == [
        "Status of partition reassignment:",
        "Reassignment of partition moving-0 is completed.",
        "",
        f"Clearing broker-level throttles on brokers {','.join(map(str, brokers))}",
        "Clearing topic-level throttles on topic moving",
    ]
    eventually("the move done", lambda: partitions(node, "moving")[0]["adding_replicas"], [])
    [after] = partitions(node, "moving")
    assert after["replicas"] == target
    assert sorted(after["isr"]) == sorted(target)
    assert after["removing_replicas"] == []
    assert after["leader"] == leader  # still led by a replica that stayed
    # --verify cleared the throttles it had set.
    eventually("moving's throttled replicas cleared", throttled_replicas, {})
    for broker in cluster.nodes:
        eventually(
            f"broker {broker.node_id}'s throttle rates cleared",
            lambda b=broker: {v[1] for v in broker_throttles(b).values()},
            {"DEFAULT_CONFIG"},
        )
    # The broker that left deletes its replica.
    wait_until(
        f"broker {leaving} drops moving-0",
        lambda: not (cluster.node(leaving).log_dir / "moving-0").exists(),
        DEADLINE_S,
    )

    # kafka-leader-election over every partition: it elects exactly the partitions whose
    # preferred replica (the first) does not lead, moving-0 among them; the others need none
    # (Kafka leaves those out of the answer).
    topics = [t["name"] if isinstance(t, dict) else t for t in get(node, "/v1/topics")["topics"]]
    unpreferred = {
        f"{topic}-{p['partition']}"
        for topic in topics
        for p in partitions(node, topic)
        if p["leader"] != p["replicas"][0]
    }
    assert "moving-0" in unpreferred

    def leader_of(node: NodeProcess) -> int:
        leader: int = partitions(node, "moving")[0]["leader"]
        return leader

    elected = ok(
        kafka_tool.run(
            "kafka-leader-election", *bootstrap, "--election-type", "preferred",
            "--all-topic-partitions",
        )
    )  # fmt: skip
    prefix = "Successfully completed leader election (PREFERRED) for partitions "
    [line] = elected
    assert line.startswith(prefix) and set(line.removeprefix(prefix).split(", ")) == unpreferred
    eventually("moving-0 led by its preferred replica", lambda: leader_of(node), outsider)
    assert partitions(node, "moving")[0]["leader_epoch"] > after["leader_epoch"]


# -- kafka-log-dirs -----------------------------------------------------------------------------


def test_log_dirs_describe_every_broker(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    cluster = kafka_nodes.cluster
    node = cluster.nodes[2]
    create_topic(kafka_nodes, "sized", 2, 2)
    produce(node, "sized", {0: 7, 1: 3})
    wait_until("sized's replicas in sync", lambda: settled(kafka_nodes, "sized"), DEADLINE_S)

    def ours() -> dict[int, list[dict[str, Any]]]:
        """Each broker's log directories as GET /v1/brokers/{b}/log-dirs has them, in the
        shape the tool prints (partitions as a set: their order is the broker's)."""
        out = {}
        for broker in cluster.nodes:
            body = get(node, f"/v1/brokers/{broker.node_id}/log-dirs?topics=sized")
            out[broker.node_id] = [
                {
                    "logDir": d["log_dir"],
                    "error": d["error"],
                    "partitions": sorted(
                        (f"{p['topic']}-{p['partition']}", p["size"], p["offset_lag"],
                         p["is_future"])
                        for p in d["partitions"]
                    ),
                }
                for d in body["log_dirs"]
            ]  # fmt: skip
        return out

    expected = ours()
    # Both partitions are on two of the three brokers: each is somewhere, with its bytes.
    held = [p for dirs in expected.values() for d in dirs for p in d["partitions"]]
    assert sorted(p[0] for p in held) == ["sized-0", "sized-0", "sized-1", "sized-1"]
    assert all(p[1] > 0 for p in held)

    broker_list = ",".join(str(n.node_id) for n in cluster.nodes)
    lines = ok(
        kafka_tool.run(
            "kafka-log-dirs", "--bootstrap-server", kafka_nodes.bootstrap, "--describe",
            "--broker-list", broker_list, "--topic-list", "sized",
        )
    )  # fmt: skip
    assert lines[:2] == [
        "Querying brokers for log directories information",
        f"Received log directory information from brokers {broker_list}",
    ]
    printed = json.loads(lines[2])
    assert printed["version"] == 1
    assert {
        b["broker"]: [
            {
                "logDir": d["logDir"],
                "error": d["error"],
                "partitions": sorted(
                    (p["partition"], p["size"], p["offsetLag"], p["isFuture"])
                    for p in d["partitions"]
                ),
            }
            for d in b["logDirs"]
        ]
        for b in printed["brokers"]
    } == expected
    assert ours() == expected  # nothing moved while the tool ran


# -- kafka-broker-api-versions ----------------------------------------------------------------

NODE_LINE = re.compile(r"^(\S+) \(id: (\d+) rack: (\S+) isFenced: (\w+)\) -> \($")
API_LINE = re.compile(r"^\t(\w+)\((\d+)\): (.+?),?$")
RANGE = re.compile(r"^(\d+)(?: to (\d+))? \[usable: \d+\]$")


def test_broker_api_versions_lists_every_node_with_our_api_table(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    lines = ok(
        kafka_tool.run("kafka-broker-api-versions", "--bootstrap-server", kafka_nodes.bootstrap)
    )
    # Each node's block: its address and id, then one line per API Kafka's client knows.
    blocks: dict[tuple[str, int], dict[int, str]] = {}
    current: dict[int, str] | None = None
    for line in lines:
        head = NODE_LINE.match(line)
        if head:
            assert (head[3], head[4]) == ("null", "false"), line
            current = blocks.setdefault((head[1], int(head[2])), {})
        elif line == ")":
            current = None
        else:
            api = API_LINE.match(line)
            assert api is not None and current is not None, line
            current[int(api[2])] = api[3]
    assert set(blocks) == {(n.kafka_address, n.node_id) for n in kafka_nodes.cluster.nodes}

    table = {v["api_key"]: (v["min_version"], v["max_version"]) for v in api_table().versions()}
    for apis in blocks.values():
        served = {}
        for key, text in apis.items():
            if text == "UNSUPPORTED":
                continue
            match = RANGE.match(text)
            assert match is not None, text
            low = int(match[1])
            served[key] = (low, int(match[2]) if match[2] else low)
        assert served == table
        # Every API the client knows and we leave out is said to be unsupported.
        assert {k for k, t in apis.items() if t == "UNSUPPORTED"} == set(apis) - set(table)


# -- kafka-groups -----------------------------------------------------------------------------


def test_groups_list_shows_our_groups_with_their_types(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[1]
    create_topic(kafka_nodes, "grouped", 1, 3)
    produce(node, "grouped", {0: 2})
    config = {"bootstrap.servers": kafka_nodes.bootstrap}
    # A classic group (JoinGroup/SyncGroup, librdkafka's default) and a KIP-848 one.
    assert len(consume_subscribed(config, "grouped", 2, "readers-classic")) == 2
    consumer_protocol = {**config, "group.protocol": "consumer"}
    assert len(consume_subscribed(consumer_protocol, "grouped", 2, "readers-848")) == 2

    groups = get(node, "/v1/groups")["groups"]
    types = {g["group"]: g["type"] for g in groups}
    assert (types["readers-classic"], types["readers-848"]) == ("classic", "consumer"), types
    lines = ok(
        kafka_tool.run("kafka-groups", "--bootstrap-server", kafka_nodes.bootstrap, "--list")
    )
    assert lines[0].split() == ["GROUP", "TYPE", "PROTOCOL"]
    # Kafka's GroupType names, capitalized; a consumer group's protocol type is "consumer"
    # (Kafka's ConsumerProtocol.PROTOCOL_TYPE), a classic group's its own.
    assert sorted(tuple(line.split()) for line in lines[1:]) == sorted(
        (g["group"], g["type"].capitalize(), g.get("protocol_type", "consumer")) for g in groups
    )
