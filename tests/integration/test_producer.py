"""The Python Producer and the console producer on it, against real nodes: Kafka's partitions
for keys, every record exactly once through kill -9 of leaders and of the bootstrap node, and
topics created by the first produce."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.producer import Producer, ProducerTimeout
from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.conftest import running_cluster
from tests.integration.test_cluster import create_topic

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "data" / "murmur2.json").read_text())["vectors"]
# How long a test waits for the cluster to do something in the background (a new leader, a
# tool to finish): a deadline to fail on, not a speed being measured.
DEADLINE_S = 120.0


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One three-node cluster for the tests that kill nothing; topics default to three
    replicas, as scripts/cluster makes them (one replica could never take acks=all with
    min.insync.replicas=2)."""
    directory = tmp_path_factory.mktemp("producer")
    with running_cluster(directory, **{"default.replication.factor": "3"}) as handle:
        yield handle


def leader_id(node: NodeProcess, topic: str, partition: int = 0) -> int | None:
    try:
        status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=5)
    except OSError:
        return None
    if status != 200:
        return None
    leader = body["partitions"][partition]["leader"]
    return None if leader is None or leader < 0 else int(leader)


def stored_count(node: NodeProcess, topic: str) -> int:
    """The records of the topic the node's metadata counts (high watermarks)."""
    status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=5)
    return sum(p["high_watermark"] for p in body["partitions"]) if status == 200 else 0


def read_partition(cluster: Cluster, topic: str, partition: int) -> list[dict[str, Any]]:
    """Every committed record of the partition, read from its leader."""
    records: list[dict[str, Any]] = []
    offset = 0
    while True:

        def fetch(offset: int = offset) -> dict[str, Any] | None:
            for node in cluster.running():
                leader = leader_id(node, topic, partition)
                if leader is None or cluster.node(leader) not in cluster.running():
                    continue
                status, body = http(
                    "GET",
                    f"{cluster.node(leader).url}/v1/topics/{topic}/partitions/{partition}"
                    f"/records?offset={offset}&max_records=10000",
                    timeout=10,
                )
                if status == 200:
                    return dict(body)
            return None

        body = wait_until(f"{topic}-{partition} readable", fetch, DEADLINE_S)
        records.extend(body["records"])
        if body["next_offset"] >= body["high_watermark"]:
            return records
        offset = body["next_offset"]


def test_keyed_records_land_on_kafkas_murmur2_partitions(shared: Cluster) -> None:
    node = shared.nodes[0]
    create_topic(node, "keys3", partitions=3, replication_factor=3)
    create_topic(node, "keys12", partitions=12, replication_factor=2)
    with Producer({"bootstrap.servers": node.bootstrap, "linger.ms": "1"}) as producer:
        futures = [
            (vector, topic, producer.send(topic, f"v-{vector['key']}", key=vector["key"]))
            for vector in VECTORS
            for topic in ("keys3", "keys12")
        ]
        producer.flush()
    for vector, topic, future in futures:
        expected = vector["partition_of_3" if topic == "keys3" else "partition_of_12"]
        assert future.result().partition == expected, (topic, vector)
    # Stored where the metadata says, once.
    for topic, count in (("keys3", 3), ("keys12", 12)):
        stored = {
            (record["key"], partition)
            for partition in range(count)
            for record in read_partition(shared, topic, partition)
        }
        key_field = "partition_of_3" if count == 3 else "partition_of_12"
        assert stored == {(v["key"], v[key_field]) for v in VECTORS}


def test_produce_creates_a_missing_topic_with_the_nodes_defaults(shared: Cluster) -> None:
    node = shared.nodes[1]
    with Producer(bootstrap_servers=node.bootstrap) as producer:
        metadata = producer.send("born-on-produce", "first").result(timeout=60)
    assert (metadata.partition, metadata.offset) == (0, 0)
    status, body = http("GET", f"{node.url}/v1/topics/born-on-produce")
    assert status == 200 and len(body["partitions"]) == 1, body
    assert len(body["partitions"][0]["replicas"]) == 3, body
    # The HTTP produce endpoints create it too (curl users).
    status, body = http("POST", f"{node.url}/v1/topics/born-on-post/records", {"value": "x"})
    assert status == 200, body
    assert http("GET", f"{node.url}/v1/topics/born-on-post")[0] == 200


def test_without_auto_creation_a_missing_topic_stays_missing(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node", extra_properties={"auto.create.topics.enable": "false"})
    node.format()
    try:
        node.start()
        status, body = http("POST", f"{node.url}/v1/topics/nowhere/records", {"value": "x"})
        assert status == 404 and body["error"] == "UNKNOWN_TOPIC_OR_PARTITION", body
        with Producer(bootstrap_servers=node.bootstrap, max_block_ms=1500) as producer:
            with pytest.raises(ProducerTimeout, match="Topic nowhere not present in metadata"):
                producer.send("nowhere", "x")
        assert http("GET", f"{node.url}/v1/topics/nowhere")[0] == 404
    finally:
        node.stop()


def test_a_producer_stores_every_record_once_through_kill_9_of_leaders_and_its_bootstrap(
    tmp_path: Path,
) -> None:
    total = 3000
    with running_cluster(tmp_path) as cluster:
        create_topic(cluster.nodes[0], "exact", partitions=1, replication_factor=3)
        first = cluster.node(wait_until("a leader", lambda: leader_id(cluster.nodes[0], "exact")))
        futures = []
        # The leader is the only node the producer is told about: its death takes both.
        with Producer(bootstrap_servers=first.bootstrap, linger_ms=2) as producer:
            second: NodeProcess | None = None
            for i in range(total):
                futures.append(producer.send("exact", f"v-{i:05d}"))
                if i == total // 3:
                    futures[-1].result(timeout=DEADLINE_S)  # acknowledged before the kill
                    first.kill()
                if i == total // 2:
                    futures[-1].result(timeout=DEADLINE_S)
                    first.start()  # back, so a second kill leaves two of three
                    survivor = next(n for n in cluster.running() if n is not first)
                    second = cluster.node(
                        wait_until("a new leader", lambda s=survivor: leader_id(s, "exact"))
                    )
                if i == 2 * total // 3:
                    assert second is not None
                    futures[-1].result(timeout=DEADLINE_S)
                    second.kill()
                time.sleep(0.001)  # a steady stream, so records are in flight at each kill
            producer.flush()
        offsets = [f.result(timeout=DEADLINE_S).offset for f in futures]
        assert offsets == sorted(offsets) and len(set(offsets)) == total
        values = [r["value"] for r in read_partition(cluster, "exact", 0)]
    assert values == [f"v-{i:05d}" for i in range(total)]


def test_a_console_producer_keeps_every_line_through_kill_9_of_the_node_it_was_given(
    tmp_path: Path,
) -> None:
    lines = [f"line-{i:05d}" for i in range(2000)]
    with running_cluster(tmp_path) as cluster:
        given = cluster.nodes[0]
        create_topic(given, "console", partitions=3, replication_factor=3)
        tool = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "client.tools.console_producer",
                "--bootstrap-server",
                given.bootstrap,
                "--topic",
                "console",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        try:
            assert tool.stdin is not None
            for i, line in enumerate(lines):
                tool.stdin.write(line.encode() + b"\n")
                if i % 50 == 0:
                    tool.stdin.flush()
                    time.sleep(0.02)
                if i == len(lines) // 2:
                    tool.stdin.flush()
                    # Killed once the tool has met the cluster (records of it are stored):
                    # a client whose only bootstrap node dies before it connects knows no
                    # other node, in Kafka too.
                    other = cluster.nodes[1]
                    wait_until("the first records", lambda o=other: stored_count(o, "console"))
                    given.kill()
            tool.stdin.close()
            code = tool.wait(timeout=DEADLINE_S)
            assert tool.stderr is not None
            err = tool.stderr.read().decode()
        finally:
            if tool.poll() is None:
                tool.kill()
                tool.wait()
        assert code == 0, err
        assert err == ""
        stored = Counter(
            record["value"]
            for partition in range(3)
            for record in read_partition(cluster, "console", partition)
        )
    assert stored == Counter(lines)


def test_batches_over_a_topics_max_message_bytes_are_split_and_all_stored(
    shared: Cluster,
) -> None:
    """A request may carry up to max.request.size (1 MiB) in one batch; a topic that takes
    less refuses it (RECORD_TOO_LARGE) and the producer sends it again in smaller batches."""
    node = shared.nodes[0]
    create_topic(
        node,
        "small-batches",
        partitions=1,
        replication_factor=3,
        configs={"max.message.bytes": "4096"},
    )
    values = [f"{i:05d}".encode() + b"x" * 95 for i in range(2000)]
    with Producer({"bootstrap.servers": node.bootstrap, "linger.ms": "200"}) as producer:
        futures = [producer.send("small-batches", v, partition=0) for v in values]
        producer.flush()
    assert [f.result().offset for f in futures] == list(range(2000))
    stored = read_partition(shared, "small-batches", 0)
    assert [r["value"].encode() for r in stored] == values
