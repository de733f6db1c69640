"""A simulated cluster that drives the real replication data plane, step by step.

Theory of operation
-------------------
Three nodes (by default) each hold a replica of every partition of one topic: the real
:class:`server.partition.Partition` over a :class:`storage.memory_log.MemoryLog`. What the
drivers do with sockets and an event loop in the real node is done here by one scheduler,
one event at a time, on one :class:`server.clock.ManualClock`:

- a **follower round** is the real fetcher's: :func:`server.fetcher.fetch_request` (after
  fsyncing what the last answer appended), a request carried as JSON bytes, the leader's
  :meth:`server.replication.ReplicaFetchHandler.answer`, a response carried as the wire bytes
  of :func:`~server.replication.encode_response`, and :func:`server.fetcher.apply_response`;
- a **flush** is the log manager's group commit: ``MemoryLog.flush`` (the fsync stand-in) of
  the logs a leader's append marked dirty, then ``advance_high_watermark``;
- the **controller** is the real state machine (:class:`kraft.state.MetadataState`) fed by the
  real plans of :mod:`server.controller` (fence, unfence, elect the leaderless, alter the ISR),
  with every version kept so that each node applies the metadata at its own pace, in order;
- **messages** (fetch requests and responses, ISR change requests) sit in flight until the
  scheduler delivers, drops or reorders them; a cut link drops them;
- **faults**: a paused node does nothing and misses metadata (then acts on what it had); a
  crashed node loses its memory, and with power loss also the records above its recovery
  point (down to a batch boundary of the scheduler's choosing: some unsynced pages may have
  reached the disk); its log restarts at what survived, with the HW of its last checkpoint.

Scripted scenarios call the actions by name; ``tests/simulation/scheduler.py`` picks them
with a ``random.Random(seed)``: the same seed gives the same trace. After every step
:meth:`Simulation.step_done` runs the shared checker (``tests/invariants.py``) over every
partition's replicas, with the ISR of the controller's latest metadata.

Modules: ``controller.py`` (the metadata), ``node.py`` (one node), this one (the network, the
actions, the checks, and the deterministic drivers), ``scheduler.py`` (the random one).

Modelling choices, where the real system could do otherwise:

- a leader answers a fetch when the request arrives (a long poll that returns at once);
- heartbeats are implicit: a node that is up, not paused and linked to the controller is heard
  at every clock tick; the controller fences a node not heard from for ``session_ms`` and
  unfences it once it applied the metadata up to its registration, as
  ``server/controller_driver.py`` does;
- a crashed node restarts only once the controller has fenced it (the controller refuses a new
  incarnation while the old session lives, and a node opens its replicas only once unfenced);
  it re-registers and replays the metadata first;
- an ``acks=all`` produce is resolved as the real waiter resolves it
  (``Partition.acks_all_done`` and ``acks_all_error``), after every step.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from client.protocol import ApiError
from server import limits
from server.clock import ManualClock
from server.fetcher import apply_response, fetch_request
from server.partition import Partition
from server.replica_manager import STALE_ISR_CHANGE
from server.replication import FetchRequest, decode_response, encode_response, isr_to_shrink
from storage.batch import NewRecord, decode_batch
from storage.log_config import LogConfig
from storage.memory_log import MemoryLog
from tests.invariants import (
    CommitTracker,
    InvariantViolation,
    ReplicaView,
    check_identical,
    check_one_leader_per_epoch,
    view_of_log,
)
from tests.simulation.controller import TOPIC, Controller
from tests.simulation.node import SimNode

CONTROLLER = 0  # the controller's address on the simulated network (nodes are 1..n)

# Trace lines quoted in a failure message.
TRACE_TAIL_LINES = 60


@dataclass(frozen=True)
class Settings:
    nodes: int = 3
    partitions: int = 1
    min_insync_replicas: int = 1
    # replica.lag.time.max.ms and the broker session, shorter than the real ones (10 s and
    # 1.5 s) so that a few hundred steps of the random scheduler see them expire.
    lag_max_ms: int = 2_000
    session_ms: int = 1_500
    # The follower's byte budget per fetch (the real one is limits.REPLICA_FETCH_BYTES).
    fetch_bytes: int = limits.REPLICA_FETCH_BYTES
    # An acks=all produce that is neither committed nor failed after this long times out.
    ack_timeout_ms: int = 5_000
    log_config: LogConfig = field(default_factory=LogConfig)


@dataclass
class Message:
    seq: int
    kind: str  # "fetch", "fetch-response" or "alter-isr"
    src: int
    dst: int
    body: bytes
    round: int = 0  # which fetch round a request or response belongs to

    def describe(self) -> str:
        return f"#{self.seq} {self.kind} {self.src}->{self.dst}"


@dataclass
class PendingAck:
    """A produce's outcome; for acks=all, resolved as the real waiter resolves it."""

    node: int
    partition: Partition
    first_offset: int
    last_offset: int
    values: list[bytes]
    deadline_ms: int
    outcome: str | None = None  # "acknowledged", "acks=1", or why not


class Simulation:
    """The nodes, the controller, the network between them, and the checker."""

    def __init__(self, seed: int = 0, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.rng = random.Random(seed)
        self.seed = seed
        self.clock = ManualClock()
        n = self.settings.nodes
        rf = min(3, n)
        self.replicas = {
            i: tuple(((i + k) % n) + 1 for k in range(rf)) for i in range(self.settings.partitions)
        }
        self.controller = Controller(n, self.replicas)
        self.trace: list[str] = []
        self.nodes = {node_id: SimNode(self, node_id) for node_id in range(1, n + 1)}
        self.in_flight: list[Message] = []
        self.cut: set[frozenset[int]] = set()
        self._seq = 0
        self._round = 0
        self._values = 0
        self.last_heard = {node_id: 0 for node_id in self.nodes}
        self.pending: list[PendingAck] = []
        self.acknowledged: list[PendingAck] = []
        self.tracker = CommitTracker()
        # Per fetch answer: (follower, leader, data bytes, diverging?); for scenario checks.
        self.answers: list[tuple[int, int, int, bool]] = []
        # Whether step_done checks the invariants (a scenario that shows what a broken rule
        # leads to turns it off and asserts the outcome itself).
        self.checking = True
        self.check()

    # -- tracing and checking ------------------------------------------------------------------

    def note(self, line: str) -> None:
        self.trace.append(f"t={self.clock.wall_ms() % 1_000_000:06d} {line}")

    def failure(self, what: str) -> str:
        tail = "\n  ".join(self.trace[-TRACE_TAIL_LINES:])
        return f"seed {self.seed}: {what}\nlast steps of the trace:\n  {tail}"

    def views(self, index: int) -> list[ReplicaView]:
        isr = self.controller.current(index).isr
        return [
            view_of_log(node_id, node.logs[index], in_isr=node_id in isr)
            for node_id, node in sorted(self.nodes.items())
            if node_id in self.replicas[index]
        ]

    def check(self) -> None:
        """The invariants, over every partition, now (raises InvariantViolation)."""
        try:
            for index in self.replicas:
                name = f"{TOPIC}-{index}"
                self.tracker.observe(name, self.views(index))
                check_one_leader_per_epoch(
                    name,
                    {
                        n: node.partitions[index].state.leader_epoch
                        for n, node in self.nodes.items()
                        if node.up and node.partitions[index].is_leader
                    },
                )
        except InvariantViolation as e:
            raise InvariantViolation(self.failure(str(e))) from None

    def step_done(self) -> None:
        """After each step: resolve acks=all waiters, then check."""
        now = self.clock.wall_ms()
        fresh = []
        for ack in list(self.pending):
            p = ack.partition
            if p.acks_all_done(ack.last_offset):
                error = p.acks_all_error(ack.last_offset)
                ack.outcome = "acknowledged" if error is None else "not committed: " + error.message
            elif now >= ack.deadline_ms:
                ack.outcome = "not committed: timed out"
            else:
                continue
            self.pending.remove(ack)
            self.note(
                f"acks=all {ack.first_offset}-{ack.last_offset} on node {ack.node}: {ack.outcome}"
            )
            if ack.outcome == "acknowledged":
                self.acknowledged.append(ack)
                fresh.append(ack)
        if self.checking:
            self.check()
            for ack in fresh:
                self._check_acknowledged(ack)

    def _check_acknowledged(self, ack: PendingAck) -> None:
        name = f"{TOPIC}-{ack.partition.index}"
        if self.tracker.committed_offset(name) <= ack.last_offset:
            raise InvariantViolation(
                self.failure(
                    f"{name}: offset {ack.last_offset} was acknowledged, but the committed offset "
                    f"is {self.tracker.committed_offset(name)}"
                )
            )
        values = [
            r.value
            for base, batch in self.tracker.committed_batches(name)
            if base <= ack.last_offset
            for r in decode_batch(batch)[1]
            if ack.first_offset <= r.offset <= ack.last_offset
        ]
        if values != ack.values:
            raise InvariantViolation(
                self.failure(
                    f"{name}: offsets {ack.first_offset}-{ack.last_offset} were acknowledged with "
                    f"{ack.values}, the committed log holds {values} there"
                )
            )

    # -- the network ---------------------------------------------------------------------------

    def linked(self, a: int, b: int) -> bool:
        return frozenset((a, b)) not in self.cut

    def send(self, kind: str, src: int, dst: int, body: bytes, round_: int = 0) -> None:
        self._seq += 1
        message = Message(self._seq, kind, src, dst, body, round_)
        if not self.linked(src, dst):
            self.note(f"{message.describe()} lost: the link is cut")
            self._lost(message)
            return
        self.in_flight.append(message)

    def _lost(self, message: Message) -> None:
        """A lost message fails its call at once (a reset connection, or a timeout that the
        scheduler lets fire now): the sender tries again on a later step."""
        if message.kind == "alter-isr":
            node = self.nodes[message.src]
            if node.up:
                # As ReplicaManager._isr_sender: an unanswered request is sent again (it may
                # have been made), unless a newer one replaced it meanwhile.
                node.isr_pending = {**node.isr_in_flight, **node.isr_pending}
            node.isr_in_flight = {}
        elif message.kind == "fetch":
            self._end_round(message.src, message.dst, message.round)
        else:
            self._end_round(message.dst, message.src, message.round)

    def deliverable(self, message: Message) -> bool:
        """A paused node reads nothing; a crashed one refuses."""
        return message.dst == CONTROLLER or not self.nodes[message.dst].paused

    def deliver_all(self) -> None:
        """Delivers, oldest first, every message that can be delivered (a perfect network)."""
        while True:
            ready = [m for m in self.in_flight if self.deliverable(m)]
            if not ready:
                return
            self.deliver(ready[0])

    def deliver(self, message: Message) -> None:
        self.in_flight.remove(message)
        if not self.linked(message.src, message.dst):
            self.note(f"{message.describe()} dropped: the link is cut")
            self._lost(message)
            return
        if message.dst != CONTROLLER and not self.nodes[message.dst].up:
            self.note(f"{message.describe()} refused: node {message.dst} is down")
            self._lost(message)
            return
        if message.kind == "fetch":
            self._serve_fetch(message)
        elif message.kind == "fetch-response":
            self._take_response(message)
        else:
            self._alter_isr(message)

    def drop(self, message: Message) -> None:
        self.in_flight.remove(message)
        self.note(f"{message.describe()} dropped")
        self._lost(message)

    # -- replication ---------------------------------------------------------------------------

    def follower_round(self, node_id: int, leader: int) -> bool:
        """Step 3 of the previous round (fsync what it appended), then step 1: send a fetch.
        Returns False if there is nothing to do (a round in flight, or nothing followed)."""
        node = self.nodes[node_id]
        session = node.sessions.get(leader)
        if not node.active or session is None or session.round:
            return False
        for p in session.unflushed.values():
            if not p.closed and not p.log.offline:
                p.log.flush()
        session.unflushed = {}
        partitions = node.following(leader)
        if not partitions:
            return False
        request = dataclasses.replace(
            fetch_request(node_id, partitions), max_bytes=self.settings.fetch_bytes
        )
        self._round += 1
        session.round, session.request, session.partitions = self._round, request, partitions
        self.send("fetch", node_id, leader, orjson.dumps(request.to_json()), self._round)
        return True

    def _serve_fetch(self, message: Message) -> None:
        leader = self.nodes[message.dst]
        request = FetchRequest.from_json(orjson.loads(message.body))
        entries, chunks = leader.handler.answer(request, self.clock.wall_ms())
        for entry, data in zip(entries, chunks, strict=True):
            self.answers.append((message.src, message.dst, len(data), "diverging" in entry))
            what = (
                f"diverging {entry['diverging']}"
                if "diverging" in entry
                else entry["error"]["error"]
                if "error" in entry
                else f"{len(data)} bytes, HW {entry.get('high_watermark')}"
            )
            self.note(
                f"node {message.dst} answers node {message.src} p{entry['partition']} "
                f"(offset {request.partitions[entries.index(entry)].fetch_offset}): {what}"
            )
        self.send(
            "fetch-response",
            message.dst,
            message.src,
            encode_response(entries, chunks),
            message.round,
        )

    def _take_response(self, message: Message) -> None:
        node = self.nodes[message.dst]
        session = node.sessions.get(message.src)
        if session is None or session.round != message.round or session.request is None:
            self.note(f"{message.describe()} ignored: its round was abandoned")
            return
        appended = apply_response(
            message.src, session.partitions, session.request, decode_response(message.body)
        )
        session.unflushed = {p.index: p for p in appended if p.flushes_every_record}
        session.end_round()

    def _end_round(self, node_id: int, leader: int, round_: int) -> None:
        session = self.nodes[node_id].sessions.get(leader)
        if session is not None and session.round == round_:
            session.end_round()

    def time_out_round(self, node_id: int, leader: int) -> None:
        session = self.nodes[node_id].sessions[leader]
        self.note(f"node {node_id}'s fetch from node {leader} times out")
        session.end_round()

    def flush(self, node_id: int) -> None:
        """The log manager's group commit on one node."""
        node = self.nodes[node_id]
        dirty, node.dirty = node.dirty, {}
        for _, p in sorted(dirty.items()):
            if p.closed or p.log.offline:
                continue
            p.log.flush()
            p.advance_high_watermark()

    def checkpoint(self, node_id: int) -> None:
        node = self.nodes[node_id]
        node.hw_checkpoint = {i: p.high_watermark for i, p in node.partitions.items()}

    # -- produce -------------------------------------------------------------------------------

    def produce(
        self, node_id: int, index: int = 0, count: int = 1, acks: str = "all"
    ) -> PendingAck | ApiError:
        """A produce request on ``node_id``: the records' values name node, epoch and a
        counter. Returns the waiter (acks=all), a resolved one (acks=1), or the refusal."""
        node = self.nodes[node_id]
        assert node.active, f"node {node_id} cannot take a produce now"
        p = node.partitions[index]
        values = []
        for _ in range(count):
            self._values += 1
            values.append(f"n{node_id}e{p.state.leader_epoch}v{self._values}".encode())
        records = [NewRecord(None, v, self.clock.wall_ms()) for v in values]
        try:
            p.check_leader(f"http://n{p.state.leader}")
            result = p.append_now([records], acks)
        except ApiError as e:
            self.note(f"produce {count} to p{index} on node {node_id}: {e.kind.name}")
            return e
        info = result.infos[0]
        ack = PendingAck(
            node_id,
            p,
            info.first_offset,
            info.last_offset,
            values,
            self.clock.wall_ms() + self.settings.ack_timeout_ms,
        )
        self.note(
            f"produce {count} to p{index} on node {node_id} (epoch "
            f"{p.state.leader_epoch}, acks={acks}): offsets {info.first_offset}-"
            f"{info.last_offset}"
        )
        if acks == "all":
            self.pending.append(ack)
        else:
            ack.outcome = f"acks={acks}"
        return ack

    # -- metadata and the controller -------------------------------------------------------------

    def deliver_metadata(self, node_id: int, version: int | None = None) -> bool:
        """The node applies the metadata up to ``version`` (default: the latest)."""
        node = self.nodes[node_id]
        target = self.controller.latest if version is None else version
        if not node.active or not self.linked(node_id, CONTROLLER) or target <= node.version:
            return False
        node.version = target
        states = self.controller.versions[target]
        changed = []
        for i, p in sorted(node.partitions.items()):
            if p.state != states[i]:
                p.update_state(states[i], self.clock.wall_ms())
                changed.append(
                    f"p{i} leader {states[i].leader} epoch {states[i].leader_epoch} "
                    f"ISR {list(states[i].isr)}"
                )
        node.update_sessions()
        self.note(f"node {node_id} applies metadata v{target}: {'; '.join(changed) or '-'}")
        return True

    def send_isr_changes(self, node_id: int) -> bool:
        node = self.nodes[node_id]
        if not node.active or not node.isr_pending:
            return False
        batch, node.isr_pending = node.isr_pending, {}
        node.isr_in_flight = dict(batch)
        body = orjson.dumps(
            [[i, r.leader_epoch, r.partition_epoch, list(r.isr)] for i, r in sorted(batch.items())]
        )
        self.send("alter-isr", node_id, CONTROLLER, body)
        return True

    def _alter_isr(self, message: Message) -> None:
        node = self.nodes[message.src]
        for index, epoch, partition_epoch, isr in orjson.loads(message.body):
            outcome, refusal = self.controller.alter_isr(
                message.src, index, epoch, partition_epoch, tuple(isr)
            )
            self.note(
                f"controller: node {message.src} asks ISR {isr} for p{index} at epoch "
                f"{epoch}: {outcome}"
            )
            # As ReplicaManager._isr_change_refused (the answer is delivered with the call: a
            # lost one is a lost message, above).
            p = node.partitions.get(index)
            if refusal is not None and refusal.name not in STALE_ISR_CHANGE and p is not None:
                p.isr_change_refused()
        node.isr_in_flight = {}

    def check_isr(self, node_id: int) -> None:
        """The leader's periodic ISR check (``ReplicaManager._isr_loop``)."""
        node = self.nodes[node_id]
        for _, p in sorted(node.partitions.items()):
            if p.is_leader and not p.closed:
                smaller = isr_to_shrink(p, self.clock.wall_ms(), self.settings.lag_max_ms)
                if smaller is not None:
                    self.note(f"node {node_id}: p{p.index} followers lag, ISR to {list(smaller)}")
                    node.request_isr_change(p, smaller)

    def tick(self, ms: int) -> None:
        """Time passes; the controller hears the reachable nodes, fences the silent ones,
        unfences the caught-up ones and elects leaders where none is."""
        self.clock.advance_ms(ms)
        now = self.clock.wall_ms()
        for node_id, node in sorted(self.nodes.items()):
            if node.active and self.linked(node_id, CONTROLLER):
                self.last_heard[node_id] = now
        for node_id in sorted(self.nodes):
            if (
                self.controller.live(node_id)
                and now - self.last_heard[node_id] > self.settings.session_ms
            ):
                self.fence(node_id)
        for node_id, node in sorted(self.nodes.items()):
            if (
                node.active
                and self.linked(node_id, CONTROLLER)
                and not self.controller.live(node_id)
            ):
                if self.controller.unfence_caught_up(node_id, node.version):
                    self.note(f"controller unfences node {node_id} (v{self.controller.latest})")
        if self.controller.elect_leaderless():
            self.note(f"controller elects leaders (v{self.controller.latest})")

    def fence(self, node_id: int) -> None:
        if self.controller.fence(node_id):
            states = self.controller.versions[-1]
            self.note(
                f"controller fences node {node_id} (v{self.controller.latest}): "
                + "; ".join(
                    f"p{i} leader {s.leader} epoch {s.leader_epoch} ISR {list(s.isr)}"
                    for i, s in sorted(states.items())
                )
            )

    # -- faults --------------------------------------------------------------------------------

    def pause(self, node_id: int) -> None:
        self.nodes[node_id].paused = True
        self.note(f"node {node_id} paused")

    def resume(self, node_id: int) -> None:
        self.nodes[node_id].paused = False
        self.note(f"node {node_id} resumed")

    def crash(self, node_id: int, power_loss: bool) -> None:
        """kill -9 (the page cache keeps every write) or a power loss (writes above the
        recovery point may go, down to a batch boundary the scheduler picks)."""
        node = self.nodes[node_id]
        node.crash()
        for ack in self.pending:
            if ack.node == node_id:
                ack.outcome = "not committed: the node crashed"
        self.pending = [a for a in self.pending if a.node != node_id]
        for message in [m for m in self.in_flight if node_id in (m.src, m.dst)]:
            self.in_flight.remove(message)  # its connections reset: the peer's call fails
            self._lost(message)
        lost = []
        for i, log in sorted(node.logs.items()):
            if power_loss:
                cut = self.rng.choice(_boundaries(log, log.recovery_point))
                if cut < log.log_end_offset:
                    lost.append(f"p{i} {cut}-{log.log_end_offset - 1}")
                    log.truncate_to(cut)
            # What the node will find: the HW of its last checkpoint.
            log.update_high_watermark(node.hw_checkpoint.get(i, 0))
        self.note(
            f"node {node_id} crashes"
            + (f" with power loss (lost {', '.join(lost) or 'nothing'})" if power_loss else "")
        )

    def can_restart(self, node_id: int) -> bool:
        return not self.nodes[node_id].up and not self.controller.live(node_id)

    def restart(self, node_id: int) -> None:
        """The node registers again, replays the metadata and opens its replicas."""
        assert self.can_restart(node_id), "a node restarts once the controller fenced it"
        node = self.nodes[node_id]
        self.controller.register(node_id)
        node.up = True
        node.version = self.controller.latest
        node.open_partitions()
        self.last_heard[node_id] = self.clock.wall_ms()
        self.note(f"node {node_id} restarts at metadata v{node.version}")

    def isolate(self, node_id: int) -> None:
        for other in [CONTROLLER, *self.nodes]:
            if other != node_id:
                self.cut.add(frozenset((node_id, other)))
        self.note(f"node {node_id} is cut off from everyone")

    def cut_link(self, a: int, b: int) -> None:
        self.cut.add(frozenset((a, b)))
        self.note(f"the link {a}-{b} is cut" + (" (0 is the controller)" if 0 in (a, b) else ""))

    def heal(self) -> None:
        self.cut.clear()
        self.note("the network heals")

    # -- deterministic drivers for scripted tests ------------------------------------------------

    def settle_metadata(self) -> None:
        """Every reachable node applies the latest metadata; the controller acts."""
        self.tick(0)
        for node_id in sorted(self.nodes):
            self.deliver_metadata(node_id)
        self.step_done()

    def replication_pass(self) -> bool:
        """One round of everything on a perfect network, in node order: each follower
        session fetches and applies the answer, leaders flush, ISR changes reach the
        controller, metadata reaches everyone. Returns whether anything happened."""
        before = self.fingerprint()
        answers = len(self.answers)
        self.deliver_all()  # what was in flight arrives first
        self.step_done()
        for node_id, node in sorted(self.nodes.items()):
            for leader in sorted(node.sessions):
                if self.follower_round(node_id, leader):
                    self.deliver_all()
                    self.step_done()
            if node.active:
                self.flush(node_id)
                self.step_done()
        for node_id in sorted(self.nodes):
            if self.send_isr_changes(node_id):
                self.deliver_all()
                self.step_done()
        self.settle_metadata()
        self.step_done()
        busy = any(size or diverging for _, _, size, diverging in self.answers[answers:])
        return busy or self.fingerprint() != before

    def replicate_until_quiet(self, rounds_max: int = 20) -> int:
        """Passes until one changes nothing; returns how many it took (the quiet one not
        counted). Fails if replication does not settle within ``rounds_max``: a fetch and
        truncation that repeat forever (issue 10) show up here."""
        for n in range(rounds_max + 1):
            if not self.replication_pass():
                return n
        raise AssertionError(self.failure(f"replication is not quiet after {rounds_max} rounds"))

    def fingerprint(self) -> Any:
        return (
            self.controller.latest,
            tuple(
                (
                    n,
                    node.up,
                    node.version,
                    i,
                    p.log.log_end_offset,
                    p.high_watermark,
                    tuple(p.log.epoch_cache.entries),
                    p.log.recovery_point,
                    p.is_leader,
                )
                for n, node in sorted(self.nodes.items())
                for i, p in sorted(node.partitions.items())
            ),
            len(self.pending),
        )

    def missing_acknowledged(self) -> list[str]:
        """The acknowledged records that the current leader's log does not hold."""
        missing = []
        for ack in self.acknowledged:
            index = ack.partition.index
            leader = self.controller.current(index).leader
            held = dict(records_of(self.nodes[leader].logs[index])) if leader > 0 else {}
            for offset, value in zip(
                range(ack.first_offset, ack.last_offset + 1), ack.values, strict=True
            ):
                if held.get(offset) != value:
                    missing.append(
                        f"p{index} offset {offset}: acknowledged {value!r}, the leader (node "
                        f"{leader}) holds {held.get(offset)!r}"
                    )
        return missing

    def check_converged(self) -> None:
        """Every replica byte-identical with the same HW, the ISR full, one leader each."""
        for index, replicas in self.replicas.items():
            name = f"{TOPIC}-{index}"
            views = self.views(index)
            try:
                check_identical(name, views)
            except InvariantViolation as e:
                raise InvariantViolation(self.failure(f"not converged: {e}")) from None
            state = self.controller.current(index)
            problems = []
            if sorted(state.isr) != sorted(replicas):
                problems.append(f"the ISR is {list(state.isr)}, not {list(replicas)}")
            hws = {v.node: v.high_watermark for v in views}
            if len(set(hws.values())) != 1 or views[0].high_watermark != views[0].log_end_offset:
                problems.append(f"HWs {hws}, log end {views[0].log_end_offset}")
            if state.leader < 0 or not self.nodes[state.leader].partitions[index].is_leader:
                problems.append(f"no leader serves it (metadata says {state.leader})")
            if problems:
                raise InvariantViolation(
                    self.failure(f"{name} not converged: " + "; ".join(problems))
                )

    def heal_everything(self) -> None:
        """Faults stop: the network heals, paused nodes resume, crashed nodes restart (once
        the controller has fenced them)."""
        self.heal()
        for node_id, node in sorted(self.nodes.items()):
            if node.paused:
                self.resume(node_id)
        if any(not node.up for node in self.nodes.values()):
            self.tick(self.settings.session_ms + 1)
            for node_id, node in sorted(self.nodes.items()):
                if not node.up:
                    self.restart(node_id)
        self.step_done()

    def converge(self, rounds_max: int = 60) -> int:
        """After :meth:`heal_everything`: passes (with time moving, so ISR checks, sessions
        and acks=all timeouts play out) until the cluster is converged; returns how many."""
        for n in range(rounds_max):
            self.tick(100)
            for node_id in sorted(self.nodes):
                self.check_isr(node_id)
            self.replication_pass()
            try:
                self.check_converged()
            except InvariantViolation:
                continue
            return n
        self.check_converged()
        raise AssertionError("unreachable")


def _boundaries(log: MemoryLog, low: int) -> list[int]:
    """The batch boundaries of ``log`` at or above ``low`` (where a power cut may leave it)."""
    ends = [h.next_offset for s in log.segments for h in s.headers if h.next_offset > low]
    return [low, *ends]


def records_of(log: MemoryLog) -> Iterator[tuple[int, bytes | None]]:
    """(offset, value) of every record in the log."""
    for segment in log.segments:
        for batch in segment.batches:
            for r in decode_batch(batch)[1]:
                yield r.offset, r.value
