"""Our three nodes measured with Kafka's own tools, for scripts/bench/vs-kafka's
``ours-kafka-tools`` columns (issue 18: one column that compares like with like).

The nodes are scripts/bench/ours_side.py's (the same properties: replication factor 3,
``min.insync.replicas=2``), each with a KAFKA listener (Kafka's binary protocol) on
K + 2(i-1) as the launcher gives them. Everything the harness runs against them is Kafka
4.4.0's, pointed at those listeners, exactly as scripts/bench/kafka_side.py points it at
Kafka's nodes (:class:`scripts.bench.kafka_side.KafkaTools`): TopicCommand creates and
describes the topics, ProducerPerformance and ConsumerPerformance measure, KafkaProbe (on
Kafka's Java client) times the cold start, end-to-end latency and failover. Only the nodes'
formatting, start, memory and kill are ours (they are processes, not a protocol).

ConsumerPerformance always subscribes with a group (its 4.4.0 options have no way to assign
partitions: ``--group`` only names the group), so its figures need the group APIs
(FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetCommit/Fetch) on the KAFKA listener.
"""

from __future__ import annotations

from pathlib import Path

from scripts.bench.kafka_dist import KafkaDist
from scripts.bench.kafka_side import KafkaTools
from scripts.bench.ours_side import OursSide


class OursKafkaToolsSide(KafkaTools):
    """Three of our nodes with KAFKA listeners (formatted by :meth:`prepare`, started by
    :meth:`launch`) and Kafka's tools against those listeners."""

    name = "ours, Kafka's tools"

    def __init__(self, dist: KafkaDist, directory: Path, count: int = 3) -> None:
        super().__init__(dist, directory)
        self.ours = OursSide(directory / "nodes", count, kafka_listeners=True)

    @property
    def bootstrap(self) -> str:
        return self.ours.kafka_bootstrap

    def prepare(self) -> None:
        self.write_tools_config()
        self.ours.prepare()

    def launch(self) -> None:
        self.ours.launch()

    def node_pids(self) -> list[int]:
        return self.ours.node_pids()

    def kill(self, node_id: int) -> None:
        self.ours.kill(node_id)

    def stop(self) -> None:
        self.ours.stop()

    def log_tail(self) -> str:
        return self.ours.log_tail()
