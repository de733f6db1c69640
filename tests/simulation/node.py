"""One simulated node: its replicas (the real Partition over MemoryLog), what survives a crash,
the leader's fetch handler, the follower's fetch sessions and the ISR requests it sends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from server.partition import Partition
from server.replication import FetchRequest, ReplicaFetchHandler
from storage.memory_log import MemoryLog
from tests.simulation.controller import TOPIC, TOPIC_ID

if TYPE_CHECKING:
    from tests.simulation.cluster import Simulation


@dataclass(eq=False)
class SimPartition(Partition):
    """The real Partition, telling the trace of its truncations."""

    notes: Callable[[str], None] | None = None

    def truncate_to(self, offset: int) -> None:
        before = self.log.log_end_offset
        super().truncate_to(offset)
        if self.notes is not None:
            self.notes(f"node {self.node_id} truncates p{self.index} from {before} to {offset}")


@dataclass
class FetchSession:
    """One follower's fetch session with one leader (a task of ``server/fetcher.py``)."""

    leader: int
    round: int = 0  # the round in flight, 0 if none
    request: FetchRequest | None = None
    partitions: list[Partition] = field(default_factory=list)
    # Appended by the last answer, fsynced before the next fetch reports it.
    unflushed: dict[int, Partition] = field(default_factory=dict)

    def end_round(self) -> None:
        self.round, self.request, self.partitions = 0, None, []


@dataclass(frozen=True)
class IsrRequest:
    """One partition's ISR change as a leader asks it."""

    leader_epoch: int
    partition_epoch: int
    isr: tuple[int, ...]


class SimNode:
    def __init__(self, sim: Simulation, node_id: int) -> None:
        self.sim = sim
        self.node_id = node_id
        self.up = True
        self.paused = False
        self.version = 0  # the metadata version this node applied
        # What a crash keeps: the logs (cut at power loss) and the HW checkpoint.
        self.logs = {i: MemoryLog(sim.settings.log_config) for i in sim.replicas}
        self.hw_checkpoint: dict[int, int] = {}
        # What a crash loses.
        self.partitions: dict[int, Partition] = {}
        self.dirty: dict[int, Partition] = {}  # leaders' appends waiting for the group commit
        self.sessions: dict[int, FetchSession] = {}  # by leader
        self.isr_pending: dict[int, IsrRequest] = {}
        self.isr_in_flight: dict[int, IsrRequest] = {}
        self.handler = ReplicaFetchHandler(
            node_id, self._lookup, self.request_isr_change, sim.clock
        )
        self.open_partitions()

    @property
    def active(self) -> bool:
        return self.up and not self.paused

    # Flusher: a leader's append asks for its fsync.
    def schedule_flush(self, partition: Partition) -> None:
        self.dirty[partition.index] = partition

    def _lookup(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get(index) if topic == TOPIC else None

    def request_isr_change(self, p: Partition, isr: tuple[int, ...]) -> None:
        """As ``ReplicaManager.request_isr_change``: the latest wish per partition waits to
        be sent with the others, never the one already in flight again."""
        item = IsrRequest(p.state.leader_epoch, p.state.partition_epoch, isr)
        if self.isr_in_flight.get(p.index) != item:
            p.isr_change_requested(isr)
            self.isr_pending[p.index] = item

    def open_partitions(self) -> None:
        """Opens every replica over the logs that survived (at start and at a restart)."""
        states = self.sim.controller.versions[self.version]
        self.partitions = {}
        self.dirty = {}
        for i, log in sorted(self.logs.items()):
            p = SimPartition(
                topic=TOPIC,
                topic_id=TOPIC_ID,
                index=i,
                node_id=self.node_id,
                log=log,
                state=states[i],
                min_insync_replicas=self.sim.settings.min_insync_replicas,
                flusher=self,
                leader_since_ms=self.sim.clock.wall_ms(),
                notes=self.sim.note,
            )
            if i in self.hw_checkpoint:
                p.restore_high_watermark(self.hw_checkpoint[i])
            p.rebuild_producers()
            self.partitions[i] = p
            if log.recovery_point < log.log_end_offset:  # as LogManager.add_replica does
                self.dirty[i] = p
        self.update_sessions()

    def update_sessions(self) -> None:
        """As ``ReplicaFetcher.update``: one session per leader this node follows."""
        leaders = {
            p.state.leader
            for p in self.partitions.values()
            if p.state.leader not in (self.node_id, -1) and self.node_id in p.state.replicas
        }
        for leader in sorted(self.sessions):
            if leader not in leaders:
                session = self.sessions.pop(leader)
                # The real session's fsync runs in the flush thread, and a cancel does not stop
                # it once started (one still queued there would be dropped: not modelled).
                self.dirty.update(session.unflushed)
        for leader in sorted(leaders):
            self.sessions.setdefault(leader, FetchSession(leader))

    def following(self, leader: int) -> list[Partition]:
        return [
            p
            for _, p in sorted(self.partitions.items())
            if p.state.leader == leader and not p.closed and not p.log.offline
        ]

    def crash(self) -> None:
        """Memory is gone: replicas closed (their waiters fail), sessions and requests lost."""
        self.up = False
        self.paused = False
        for p in self.partitions.values():
            p.close()
        self.sessions, self.dirty = {}, {}
        self.isr_pending, self.isr_in_flight = {}, {}
