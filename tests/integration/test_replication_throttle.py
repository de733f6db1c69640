"""Replication throttles on three real nodes: a follower catching up under a leader and
follower throttle moves at about the throttle's rate, and finishes once the throttle is
removed; kraft-configs sets and removes the broker rates, and refuses bad ones in Kafka's
words."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from scripts.node_process import Cluster, NodeProcess, http, run_tool, wait_until
from tests.integration.conftest import running_cluster

TOPIC = "slow"
RATE = 200_000  # bytes per second, on the leader and on the follower
RECORD = "x" * 10_000
BATCHES = 10  # of 20 records of 10 KB: about 2 MB for the follower to catch up on
LEADER_RATE = "leader.replication.throttled.rate"
FOLLOWER_RATE = "follower.replication.throttled.rate"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # A stopped follower leaves the ISR two seconds after its last fetch, not ten.
    with running_cluster(
        tmp_path_factory.mktemp("throttle"), **{"replica.lag.time.max.ms": "2000"}
    ) as c:
        yield c


def configs(node: NodeProcess, *args: str) -> tuple[int, str, str]:
    out = run_tool("client.tools.configs", "--bootstrap-server", node.bootstrap, *args)
    return out.returncode, out.stdout, out.stderr


def broker_alter(node: NodeProcess, broker: int, *args: str) -> tuple[int, str, str]:
    return configs(node, "--entity-type", "brokers", "--entity-name", str(broker), "--alter", *args)


def partition(node: NodeProcess) -> dict[str, Any] | None:
    status, body = http("GET", f"{node.url}/v1/topics/{TOPIC}")
    return body["partitions"][0] if status == 200 else None


def metric(node: NodeProcess, name: str, side: str) -> float:
    status, text = http("GET", f"{node.url}/metrics")
    assert status == 200, text
    found = re.search(rf'^{name}{{side="{side}"}} (\S+)$', text, re.MULTILINE)
    assert found is not None, f"{name} of {side} not in /metrics"
    return float(found.group(1))


def produce(node: NodeProcess) -> None:
    records = {"records": [{"value": RECORD} for _ in range(20)]}
    for _ in range(BATCHES):
        status, body = http(
            "POST", f"{node.url}/v1/topics/{TOPIC}/partitions/0/records?timeout_ms=20000", records
        )
        assert status == 200, body


def test_a_follower_catches_up_at_the_throttles_rate_and_finishes_once_it_is_removed(
    cluster: Cluster,
) -> None:
    first = cluster.nodes[0]
    status, body = http(
        "POST",
        f"{first.url}/v1/topics",
        {"name": TOPIC, "partitions": 1, "replication_factor": 3},
    )
    assert status == 201, body
    leader_id = int(
        wait_until("a leader", lambda: (p := partition(first)) and p["leader"] > 0 and p["leader"])
    )
    controller = cluster.controller_id()
    # The follower to stop: neither the partition's leader nor the controller.
    follower = next(n for n in cluster.nodes if n.node_id not in (leader_id, controller))
    leader = cluster.node(leader_id)
    wait_until("the leader knows it leads", lambda: partition(leader) is not None)
    follower.stop()
    wait_until(
        f"node {follower.node_id} leaves the ISR",
        lambda: (p := partition(leader)) and follower.node_id not in p["isr"],
    )
    produce(leader)

    # Kafka's tool syntax: the lists in brackets; the rates per broker.
    code, out, err = configs(
        leader,
        "--entity-type",
        "topics",
        "--entity-name",
        TOPIC,
        "--alter",
        "--add-config",
        f"leader.replication.throttled.replicas=[0:{leader_id}],"
        f"follower.replication.throttled.replicas=[0:{follower.node_id}]",
    )
    assert (code, out) == (0, f"Completed updating config for topic {TOPIC}.\n"), err
    for broker in (leader_id, follower.node_id):
        code, out, err = broker_alter(
            leader, broker, "--add-config", f"{LEADER_RATE}={RATE},{FOLLOWER_RATE}={RATE}"
        )
        assert (code, out) == (0, f"Completed updating config for broker {broker}.\n"), err
    assert metric(leader, "kraft_replication_throttle_rate_bytes_per_second", "leader") == RATE

    # Not waiting for it to be ready: its HTTP listener answers /metrics from the start.
    follower.start(wait=False)
    # The follower's own count of what it received of the throttled partition, over time.
    first_seen = wait_until(
        "the follower receives throttled bytes",
        lambda: (
            (b := metric(follower, "kraft_replication_throttled_bytes_total", "follower"))
            and (time.monotonic(), b)
        ),
    )
    target = BATCHES * 20 * len(RECORD) * 3 // 4  # most of it, still under the throttle
    assert first_seen[1] < target // 2, f"{first_seen[1]} bytes at the first look: no throttle"
    last_seen = wait_until(
        "the follower receives most of the partition",
        lambda: (
            (b := metric(follower, "kraft_replication_throttled_bytes_total", "follower")) >= target
            and (time.monotonic(), b)
        ),
        deadline_s=60,
    )
    elapsed_s = last_seen[0] - first_seen[0]
    assert elapsed_s > 0, f"{last_seen[1] - first_seen[1]} bytes came at once: no throttle"
    rate = (last_seen[1] - first_seen[1]) / elapsed_s
    assert rate < 3 * RATE, f"the follower caught up at {rate:.0f} B/s under a {RATE} B/s throttle"
    assert metric(leader, "kraft_replication_throttled_bytes_total", "leader") > 0
    follower.wait_ready()

    for broker in (leader_id, follower.node_id):
        code, out, err = broker_alter(
            leader, broker, "--delete-config", f"{LEADER_RATE},{FOLLOWER_RATE}"
        )
        assert code == 0, err
    wait_until(
        f"node {follower.node_id} is back in the ISR",
        lambda: (p := partition(leader)) and follower.node_id in p["isr"],
        deadline_s=60,
    )
    unbounded = float(2**63 - 1)
    assert metric(leader, "kraft_replication_throttle_rate_bytes_per_second", "leader") == unbounded


def test_kraft_configs_refuses_bad_broker_configs_in_kafkas_words(cluster: Cluster) -> None:
    node = cluster.nodes[1]
    code, _, err = broker_alter(node, 1, "--add-config", f"{LEADER_RATE}=fast")
    assert code == 1
    assert err.splitlines()[0].startswith("Error while executing config command with args")
    assert err.splitlines()[1] == (
        f"Invalid value fast for configuration {LEADER_RATE}: Not a number of type LONG"
    )
    code, _, err = broker_alter(node, 1, "--add-config", f"{FOLLOWER_RATE}=-1")
    assert (code, err.splitlines()[1]) == (
        1,
        f"Invalid value -1 for configuration {FOLLOWER_RATE}: Value must be at least 0",
    )
    code, _, err = broker_alter(node, 1, "--add-config", "no.such.setting=1")
    assert (code, err.splitlines()[1]) == (1, "Unknown config name: no.such.setting")
    code, _, err = broker_alter(node, 1, "--add-config", "log.retention.check.interval.ms=5")
    assert code == 1
    assert err.splitlines()[1].startswith(
        "Cannot update these configs dynamically: Set(log.retention.check.interval.ms)"
    )
    code, _, err = broker_alter(node, 2, "--delete-config", LEADER_RATE)
    assert (code, err) == (1, f"Invalid config(s): {LEADER_RATE}\n")
    status, body = http("PUT", f"{node.url}/v1/brokers/9/configs", {"configs": {LEADER_RATE: "5"}})
    assert (status, body["error"]) == (404, "NOT_FOUND"), body

    # Nothing of the refused requests was stored; a good one is, and shows as dynamic.
    code, out, err = broker_alter(node, 3, "--add-config", f"{FOLLOWER_RATE}=123456")
    assert code == 0, err
    code, out, err = configs(node, "--entity-type", "brokers", "--entity-name", "3", "--describe")
    assert code == 0, err
    assert out.splitlines() == [
        "Dynamic configs for broker 3 are:",
        f"  {FOLLOWER_RATE}=123456 sensitive=false synonyms="
        f"{{DYNAMIC_BROKER_CONFIG:{FOLLOWER_RATE}=123456, "
        f"DEFAULT_CONFIG:{FOLLOWER_RATE}=9223372036854775807}}",
    ]
    code, out, err = broker_alter(node, 3, "--delete-config", FOLLOWER_RATE)
    assert code == 0, err
    code, out, err = configs(node, "--entity-type", "brokers", "--entity-name", "3", "--describe")
    assert out.splitlines() == ["Dynamic configs for broker 3 are:"], err
