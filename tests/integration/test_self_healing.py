"""The cluster heals itself after faults with no writes in between (issue 10, item 1).

Leadership that moves twice over an idle partition (a leader paused past its session, then
the next one) used to leave each follower looping for ever on `diverges from the leader at
epoch 0: truncating from 2 to 2`, the ISR shrunk to the leader, and acks=all refused. Here the
same faults, then every partition must have its whole ISR again and take acks=all writes.
"""

from __future__ import annotations

import os
import signal
import time

from scripts.node_process import Cluster, http, wait_until
from server import limits as server_limits
from tests.integration.test_cluster import create_topic
from tests.integration.test_replication import leader_of, produce

PARTITIONS = 3
# Longer than the broker session: the controller fences the paused leader and moves its
# partitions, with no write in between.
PAUSE_S = server_limits.BROKER_SESSION_TIMEOUT_S + 1.5
LOOP_LINE = "diverges from the leader"


def isr_sizes(cluster: Cluster, topic: str) -> list[int] | None:
    status, body = http("GET", f"{cluster.running()[0].url}/v1/topics/{topic}", timeout=5)
    return [len(p["isr"]) for p in body["partitions"]] if status == 200 else None


def test_leadership_moving_over_idle_partitions_leaves_every_isr_whole(cluster: Cluster) -> None:
    create_topic(cluster.nodes[0], "idle", partitions=PARTITIONS, replication_factor=3)
    for partition in range(PARTITIONS):
        produce(leader_of(cluster, "idle", partition), "idle", ["a", "b"], partition)

    # Two leaders in turn paused past their session, each resumed: the second one had
    # started its own epoch at the log end, which the next leader never heard of.
    for _ in range(2):
        paused = leader_of(cluster, "idle", 0)
        assert paused.pid is not None
        os.kill(paused.pid, signal.SIGSTOP)
        time.sleep(PAUSE_S)
        os.kill(paused.pid, signal.SIGCONT)
        wait_until(
            "the paused leader is back in every ISR",
            lambda: isr_sizes(cluster, "idle") == [3] * PARTITIONS,
        )
    # And a follower killed and restarted.
    leader = leader_of(cluster, "idle", 0)
    follower = next(n for n in cluster.nodes if n is not leader)
    follower.kill()
    follower.start()
    wait_until(
        "every ISR is whole again after the heal",
        lambda: isr_sizes(cluster, "idle") == [3] * PARTITIONS,
    )
    for partition in range(PARTITIONS):
        produce(leader_of(cluster, "idle", partition), "idle", ["after"], partition)

    time.sleep(2.0)  # a loop would go on logging meanwhile
    for node in cluster.nodes:
        lines = node.log_file.read_text(errors="replace").count(LOOP_LINE)
        # One truncation per partition and leader change at most, never a loop.
        assert lines <= 4 * PARTITIONS, f"node {node.node_id} logged {LOOP_LINE!r} {lines} times"
