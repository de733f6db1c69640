"""The simulation's controller: the real metadata state machine fed by the real plans.

It keeps every version of each partition's :class:`LeaderState`, so that
each simulated node applies the metadata at its own pace and in order, as nodes apply the
metadata log a moment apart. The rules are ``server/controller.py``'s, unchanged: fencing a
broker takes it out of every ISR but keeps the last member (KIP-841) and elects the first live
ISR member in replica order with the leader epoch + 1; unfencing makes a broker leader of the
leaderless partitions whose ISR holds it; an ISR change must come from the leader at its
current epoch and add only live brokers.
"""

from __future__ import annotations

from client.protocol import ApiError
from kraft.records import (
    MetadataRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from kraft.state import MetadataState
from server import controller as plans
from server.partition import LeaderState

TOPIC = "sim"
TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"


class Controller:
    """``versions[v][p]`` is partition ``p``'s state after the v-th metadata entry."""

    def __init__(self, nodes: int, replicas: dict[int, tuple[int, ...]]) -> None:
        self.state = MetadataState()
        self._index = 0
        self.registered_at: dict[int, int] = {}  # node -> version of its registration
        records: list[MetadataRecord] = []
        for n in range(1, nodes + 1):
            records.append(
                RegisterBrokerRecord(n, f"incarnation-{n}-0", 0, f"http://n{n}", f"n{n}:9093")
            )
            records.append(UnfenceBrokerRecord(n, 0))
            self.registered_at[n] = 0
        records.append(TopicRecord(TOPIC, TOPIC_ID))
        for index, r in sorted(replicas.items()):
            records.append(PartitionRecord(TOPIC_ID, index, r, r, r[0], 0, 0))
        self._apply(records)
        self.versions: list[dict[int, LeaderState]] = [self._states()]

    @property
    def latest(self) -> int:
        return len(self.versions) - 1

    def current(self, index: int) -> LeaderState:
        return self.versions[-1][index]

    def live(self, node: int) -> bool:
        broker = self.state.brokers.get(node)
        return broker is not None and not broker.fenced

    def _apply(self, records: list[MetadataRecord]) -> bool:
        if not records:
            return False
        self._index += 1
        self.state.apply_entry(self._index, records)
        return True

    def _states(self) -> dict[int, LeaderState]:
        return {
            i: LeaderState(
                p.leader, p.leader_epoch, tuple(p.replicas), tuple(p.isr), p.partition_epoch
            )
            for i, p in self.state.topics[TOPIC].partitions.items()
        }

    def _publish(self, records: list[MetadataRecord]) -> bool:
        if not self._apply(records):
            return False
        self.versions.append(self._states())
        return True

    def fence(self, node: int) -> bool:
        return self._publish(plans.plan_fence_broker(self.state, node))

    def unfence(self, node: int) -> bool:
        return self._publish(plans.plan_unfence_broker(self.state, node))

    def elect_leaderless(self) -> bool:
        return self._publish(plans.plan_elect_leaderless(self.state))

    def register(self, node: int) -> None:
        """A restarted node registers again, fenced until it has caught up."""
        broker = self.state.brokers[node]
        self._publish(
            plans.plan_register_broker(
                self.state,
                node,
                f"incarnation-{node}-{broker.epoch + 1}",
                broker.http_url,
                broker.raft_address,
                session_alive=False,
            )
        )
        self.registered_at[node] = self.latest

    def unfence_caught_up(self, node: int, applied: int) -> bool:
        """The heartbeat rule of ``server/controller_driver.py``: unfence a fenced node once it
        has applied the metadata up to its own registration."""
        if self.live(node) or applied < self.registered_at[node]:
            return False
        return self.unfence(node)

    def alter_isr(
        self,
        node: int,
        index: int,
        leader_epoch: int,
        partition_epoch: int,
        isr: tuple[int, ...],
    ) -> tuple[str, ApiError | None]:
        """A leader's ISR change (AlterPartition): what became of it, and the refusal."""
        try:
            records = plans.plan_alter_isr(
                self.state, TOPIC_ID, index, node, leader_epoch, isr, partition_epoch
            )
        except ApiError as e:
            return f"refused: {e.message}", e
        self._publish(records)
        return (f"ISR now {list(isr)}" if records else "no change"), None
