"""Scaling out under load, end to end (issue 16's first test): three controllers and three
brokers; a fourth broker joins while an idempotent acks=all writer goes on; the partition is
moved onto it with kraft-reassign-partitions and a throttle, leadership included; every record
acknowledged before, during and after the move is stored exactly once, the new replica's
segment files are the leader's byte for byte, the throttles are gone after --verify, and the
replica the move dropped is deleted from its broker's disk.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.node_process import Cluster, run_tool, wait_until
from tests.integration.test_cluster import create_topic
from tests.integration.test_failover import partition_view, read_records
from tests.integration.test_reassignment import log_bytes
from tests.integration.test_replication import produce, wait_identical_replicas
from tests.integration.writer import IdempotentWriter

TOPIC = "ledger"
# About 2 MB at rest before the move, moved under a 1 MB/s throttle: the move takes seconds,
# long enough for the writer to be acknowledged by the old and then the new leader.
PRELOAD_RECORDS = 2000
THROTTLE = "1000000"
DEADLINE_S = 60.0
TOOL = "client.tools.reassign_partitions"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("scale-out-load")
    properties = {"min.insync.replicas": "2"}
    handle = Cluster.create(directory, controllers=3, brokers=3, **properties)  # type: ignore[arg-type]
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def reassign_tool(cluster: Cluster, *args: str) -> str:
    out = run_tool(TOOL, "--bootstrap-server", cluster.nodes[0].bootstrap, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_broker_added_under_load_takes_over_a_partition_and_loses_no_record(
    cluster: Cluster, tmp_path: Path
) -> None:
    create_topic(cluster.nodes[0], TOPIC, replication_factor=3)
    view = wait_until(
        f"{TOPIC} has a leader", lambda: (v := partition_view(cluster.nodes[0], TOPIC)) and v
    )
    original, leader = view["replicas"], view["leader"]
    assert sorted(original) == sorted(b.node_id for b in cluster.brokers)  # never a controller
    produce(cluster.node(leader), TOPIC, [f"pre-{i}-" + "x" * 1000 for i in range(PRELOAD_RECORDS)])

    writer = IdempotentWriter(cluster, TOPIC, total=1_000_000, batch_size=20)
    writer.start()
    try:
        wait_until("the writer is under way", lambda: writer.acknowledged_records() >= 200)
        newcomer = cluster.add_node()  # starts it and waits until it is ready
        target = [newcomer.node_id] + [r for r in original if r != leader]
        plan = tmp_path / "plan.json"
        plan.write_text(
            json.dumps(
                {"version": 1, "partitions": [{"topic": TOPIC, "partition": 0, "replicas": target}]}
            )
        )
        started = time.monotonic()
        executed = reassign_tool(
            cluster, "--execute", "--reassignment-json-file", str(plan), "--throttle", THROTTLE
        )
        # Kafka's line, singular for one partition.
        assert f"Successfully started partition reassignment for {TOPIC}-0" in executed
        configs = cluster.nodes[0].http("GET", f"/v1/topics/{TOPIC}/configs")[1]["overrides"]
        assert configs["follower.replication.throttled.replicas"] == f"0:{newcomer.node_id}"

        def verified() -> str | None:
            out = reassign_tool(cluster, "--verify", "--reassignment-json-file", str(plan))
            return out if f"Reassignment of partition {TOPIC}-0 is completed." in out else None

        out = wait_until("the move is completed", verified, DEADLINE_S)
        assert "Clearing broker-level throttles on brokers" in out
        wait_until(
            f"node {newcomer.node_id} acknowledges writes as the new leader: {writer.status()}",
            lambda: writer.error is not None or writer.acks_since(started, newcomer.node_id),
            DEADLINE_S,
        )
    finally:
        writer.stop()
    assert writer.error is None, writer.error
    assert writer.acks_since(0.0, leader) and writer.acks_since(started, newcomer.node_id)

    status, configs = cluster.nodes[0].http("GET", f"/v1/topics/{TOPIC}/configs")
    assert status == 200 and "follower.replication.throttled.replicas" not in configs["overrides"]
    final = partition_view(newcomer, TOPIC)
    assert final is not None and final["replicas"] == target and final["leader"] in target
    acknowledged = [v for a in writer.acks for v in a.values]
    stored = Counter(v for _, v in read_records(newcomer, TOPIC) if not v.startswith("pre-"))
    assert [v for v in acknowledged if stored[v] != 1] == []
    assert all(count == 1 for count in stored.values())
    replicas = [cluster.node(r) for r in target]
    wait_identical_replicas(replicas, TOPIC)
    files = [log_bytes(n, TOPIC) for n in replicas]
    assert files[0] and all(f == files[0] for f in files[1:])
    dropped = cluster.node(leader)
    wait_until(
        f"node {leader} deleted the replica it no longer holds",
        lambda: not (dropped.log_dir / f"{TOPIC}-0").exists(),
        DEADLINE_S,
    )
