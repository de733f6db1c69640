"""Preferred-leader election with real nodes (issue 10, item 5): leadership that failover moved
goes back to each partition's first replica once it is live and in the ISR again, by the tool
(kraft-leader-election) or by the controller's own balancer, while an acks=all writer goes on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.node_process import Cluster, NodeProcess, run_tool, wait_until
from tests.integration.conftest import running_cluster
from tests.integration.test_failover import (
    create_everywhere,
    partition_view,
    read_records,
    wait_new_leader,
)
from tests.integration.writer import IdempotentWriter

TOPIC = "news"
# More than the test needs: the writer is stopped once the preferred leader has acknowledged
# writes again.
RECORDS_TOTAL = 1_000_000
WRITER_DEADLINE_S = 120.0
TOOL = "client.tools.leader_election"


@pytest.fixture
def manual(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster whose controller never balances by itself: only the tool moves leaders."""
    with running_cluster(tmp_path, **{"auto.leader.rebalance.enable": "false"}) as handle:
        yield handle


@pytest.fixture
def automatic(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster whose controller checks the balance every second (Kafka's default: 300 s)."""
    with running_cluster(tmp_path, **{"leader.imbalance.check.interval.seconds": "1"}) as handle:
        yield handle


def fail_over_and_rejoin(cluster: Cluster, writer: IdempotentWriter) -> tuple[NodeProcess, int]:
    """kill -9 of partition 0's preferred leader under the writer, a new leader taking writes,
    then the node restarted and back in the ISR; returns it and the new leader's epoch, which
    the rejoin leaves as it is (only a leader change moves it on).

    The epoch is read while the preferred node is down: once it is back in the ISR, a balancer
    checking every second may hand leadership back before the rejoin is seen, and the epoch
    read then would already be the one after the move back."""
    preferred = create_everywhere(cluster, TOPIC)
    view = partition_view(preferred, TOPIC)
    assert view is not None and view["replicas"][0] == preferred.node_id
    writer.start()
    wait_until(
        "the writer is under way",
        lambda: writer.error is not None or writer.acknowledged_records() >= 500,
        WRITER_DEADLINE_S,
    )
    preferred.kill()
    survivor = next(n for n in cluster.nodes if n is not preferred)
    new = wait_new_leader(survivor, TOPIC, preferred, cluster)
    moved_at = time.monotonic()
    failover = wait_until(
        f"node {survivor.node_id} sees node {new.node_id} lead",
        lambda: (
            v
            if (v := partition_view(survivor, TOPIC)) is not None and v["leader"] == new.node_id
            else None
        ),
    )
    wait_until(
        f"node {new.node_id} acknowledges writes: {writer.status()}",
        lambda: writer.error is not None or writer.acks_since(moved_at, new.node_id),
        WRITER_DEADLINE_S,
    )
    preferred.start()
    wait_until(
        f"node {preferred.node_id} back in the ISR",
        lambda: (
            (v := partition_view(survivor, TOPIC)) is not None and preferred.node_id in v["isr"]
        ),
        WRITER_DEADLINE_S,
    )
    return preferred, int(failover["leader_epoch"])


def wait_led_by(cluster: Cluster, node: NodeProcess, deadline_s: float = 30.0) -> None:
    """Every running node sees ``node`` leading partition 0."""
    wait_until(
        f"every node sees node {node.node_id} lead {TOPIC}-0",
        lambda: all(
            (v := partition_view(n, TOPIC)) is not None and v["leader"] == node.node_id
            for n in cluster.running()
        ),
        deadline_s,
    )


def check_writer_goes_on_at(
    writer: IdempotentWriter, leader: NodeProcess, since: float, cluster: Cluster
) -> None:
    """The writer's acks=all batches are acknowledged by ``leader`` after ``since``; then it
    stops, and every acknowledged record is on the partition, once, at its offset."""
    try:
        wait_until(
            f"node {leader.node_id} acknowledges writes again: {writer.status()}",
            lambda: writer.error is not None or len(writer.acks_since(since, leader.node_id)) >= 3,
            WRITER_DEADLINE_S,
        )
        assert writer.error is None, writer.error
    finally:
        writer.stop()
    assert writer.error is None, writer.error
    acknowledged = {
        o: v for ack in writer.acks for o, v in zip(ack.offsets, ack.values, strict=True)
    }
    stored = dict(read_records(leader, TOPIC))
    assert {o: stored.get(o) for o in acknowledged} == acknowledged, "no acknowledged loss"
    assert len(set(stored.values())) == len(stored), "nothing stored twice"


def test_the_tool_moves_leadership_back_to_the_preferred_replica_under_acks_all_writes(
    manual: Cluster,
) -> None:
    writer = IdempotentWriter(manual, TOPIC, RECORDS_TOTAL, batch_size=20)
    try:
        preferred, epoch = fail_over_and_rejoin(manual, writer)
        time.sleep(3)  # the balancer is off: nothing moves by itself
        view = partition_view(preferred, TOPIC)
        assert view is not None and view["leader"] != preferred.node_id

        elected_at = time.monotonic()
        out = run_tool(
            TOOL,
            "--bootstrap-server",
            preferred.bootstrap,
            "--election-type",
            "PREFERRED",
            "--topic",
            TOPIC,
            "--partition",
            "0",
        )
        assert (out.returncode, out.stdout, out.stderr) == (
            0,
            f"Successfully completed leader election (PREFERRED) for partitions {TOPIC}-0\n",
            "",
        )
        wait_led_by(manual, preferred)
        view = partition_view(preferred, TOPIC)
        assert view is not None and view["leader_epoch"] == epoch + 1, "one leader change"

        again = run_tool(
            TOOL,
            "--bootstrap-server",
            preferred.bootstrap,
            "--election-type",
            "preferred",
            "--all-topic-partitions",
        )
        assert (again.returncode, again.stdout, again.stderr) == (0, "", ""), (
            "all balanced: an election of every partition has nothing to report, as in Kafka"
        )
        single = run_tool(
            TOOL,
            "--bootstrap-server",
            preferred.bootstrap,
            "--election-type",
            "PREFERRED",
            "--topic",
            TOPIC,
            "--partition",
            "0",
        )
        assert single.stdout == f"Valid replica already elected for partitions {TOPIC}-0\n"
        unknown = run_tool(
            TOOL,
            "--bootstrap-server",
            preferred.bootstrap,
            "--election-type",
            "PREFERRED",
            "--topic",
            "nope",
            "--partition",
            "0",
        )
        assert (unknown.returncode, unknown.stderr) == (1, "Topic 'nope' does not exist.\n")
        check_writer_goes_on_at(writer, preferred, elected_at, manual)
    finally:
        writer.stop()


def test_the_controller_moves_leadership_back_by_itself_once_the_preferred_replica_is_in_sync(
    automatic: Cluster,
) -> None:
    writer = IdempotentWriter(automatic, TOPIC, RECORDS_TOTAL, batch_size=20)
    try:
        preferred, epoch = fail_over_and_rejoin(automatic, writer)
        rejoined_at = time.monotonic()
        wait_led_by(automatic, preferred)
        view = partition_view(preferred, TOPIC)
        assert view is not None and view["leader_epoch"] >= epoch + 1
        check_writer_goes_on_at(writer, preferred, rejoined_at, automatic)
    finally:
        writer.stop()
