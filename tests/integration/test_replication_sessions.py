"""Replication over incremental fetch sessions (KIP-227) across three real nodes: a follower
restarted, and a leader restarted (its sessions lost) that leads again, on many partitions.

Followers' requests name only partitions whose fetch state changed; whatever restarts, every
partition must end with its whole ISR and byte-identical replicas, and take acks=all writes.
(Truncation by leader epoch over sessions is test_failover's acks=1 tail test; pauses of
leaders and followers over idle partitions are test_self_healing's.)
"""

from __future__ import annotations

from typing import Any

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.test_cluster import create_topic
from tests.integration.test_replication import produce, wait_identical_replicas

PARTITIONS = 8
# Restarting a node and catching up on a loaded two-core machine.
HEAL_DEADLINE_S = 90.0


def partitions_of(node: NodeProcess, topic: str) -> list[dict[str, Any]] | None:
    status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=5)
    return body["partitions"] if status == 200 else None


def every_isr_whole(cluster: Cluster, topic: str) -> bool:
    for node in cluster.running():
        partitions = partitions_of(node, topic)
        if partitions is None or any(len(p["isr"]) != 3 for p in partitions):
            return False
    return True


def live_leader(cluster: Cluster, topic: str, partition: int) -> NodeProcess:
    """The partition's leader once a running node leads it (after a kill, the metadata names
    the dead node until the controller fences it)."""
    running = {n.node_id: n for n in cluster.running()}

    def known() -> NodeProcess | None:
        partitions = partitions_of(next(iter(running.values())), topic)
        leader = None if partitions is None else running.get(partitions[partition]["leader"])
        if leader is None or partitions_of(leader, topic) is None:
            return None
        return leader

    found: NodeProcess = wait_until(f"{topic}-{partition} led by a running node", known)
    return found


def produce_everywhere(cluster: Cluster, topic: str, tag: str) -> None:
    for partition in range(PARTITIONS):
        leader = live_leader(cluster, topic, partition)
        produce(leader, topic, [f"{tag} {partition} {i}" for i in range(3)], partition)


def test_a_restarted_follower_catches_up_on_every_partition_and_rejoins_every_isr(
    cluster: Cluster,
) -> None:
    create_topic(cluster.nodes[0], "wide", partitions=PARTITIONS, replication_factor=3)
    wait_until("every ISR whole", lambda: every_isr_whole(cluster, "wide"), HEAL_DEADLINE_S)
    produce_everywhere(cluster, "wide", "before")
    follower = cluster.nodes[2]
    follower.kill()
    produce_everywhere(cluster, "wide", "while down")  # acks=all: min.insync.replicas is 2
    follower.start()
    wait_until(
        f"node {follower.node_id} back in every ISR",
        lambda: every_isr_whole(cluster, "wide"),
        HEAL_DEADLINE_S,
    )
    produce_everywhere(cluster, "wide", "after")
    for partition in range(PARTITIONS):
        views = wait_identical_replicas(cluster.nodes, "wide", partition)
        assert views[0].log_end_offset >= 9  # a retried produce may store a record twice


def test_followers_open_new_sessions_with_a_restarted_leader_that_leads_again(
    cluster: Cluster,
) -> None:
    create_topic(cluster.nodes[0], "back", partitions=PARTITIONS, replication_factor=3)
    wait_until("every ISR whole", lambda: every_isr_whole(cluster, "back"), HEAL_DEADLINE_S)
    produce_everywhere(cluster, "back", "before")
    restarted = live_leader(cluster, "back", 0)
    restarted.stop()  # SIGTERM: its fetch sessions go with it
    produce_everywhere(cluster, "back", "while down")
    restarted.start()
    wait_until(
        f"node {restarted.node_id} back in every ISR",
        lambda: every_isr_whole(cluster, "back"),
        HEAL_DEADLINE_S,
    )
    status, body = http(
        "POST", f"{restarted.url}/v1/elections", {"election_type": "PREFERRED"}, timeout=30
    )
    assert status == 200, body

    def preferred_lead() -> bool:
        partitions = partitions_of(restarted, "back")
        return partitions is not None and all(
            p["leader"] == p["replicas"][0] and len(p["isr"]) == 3 for p in partitions
        )

    wait_until("every partition led by its preferred replica", preferred_lead, HEAL_DEADLINE_S)
    produce_everywhere(cluster, "back", "after")
    for partition in range(PARTITIONS):
        views = wait_identical_replicas(cluster.nodes, "back", partition)
        assert views[0].log_end_offset >= 9  # a retried produce may store a record twice
    assert every_isr_whole(cluster, "back")
