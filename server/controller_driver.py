"""The controller role, on the node that leads the Raft quorum: broker sessions and fencing.

Kafka's KRaft controller in miniature:

- A broker registers (``POST /v1/internal/brokers``) and gets a broker epoch; it starts
  fenced. It then heartbeats every ~300 ms; once its heartbeat reports that it applied the
  metadata up to its own registration, the controller unfences it.
- A broker whose heartbeats stop for ``BROKER_SESSION_TIMEOUT_S`` is fenced: in one entry it
  leaves every ISR and its partitions get new leaders (``controller.plan_fence_broker``).
- A node that becomes the Raft leader does not know the sessions the previous leader saw. It
  counts each broker's session from the last Raft message it had from that node (a voter's
  process was alive then), else from now. Until a broker's first heartbeat reaches it, and
  for at most ``NEW_CONTROLLER_GRACE_S`` after it took over, each later Raft message from
  the broker counts as a heartbeat: a live broker whose heartbeat was stuck on the silent
  previous controller has that long to find the new one, as before, while a broker silent
  on Raft too, the dead previous controller above all, is fenced one session after its last
  message, as a dead broker is one session after its last heartbeat. (A grace counted from
  the election fenced a killed controller 1.2 s after the election that followed its death:
  1.6-2.2 s after the kill where the session says 1.5.)
- The driver wakes when the soonest session ends, not at its next tick after it: a session
  of 1.5 s does not become 1.6.
- Every decision is written with the Raft term in which this node became leader: if it lost
  the leadership meanwhile, even for a moment, the quorum refuses the entry.
- A new controller's first record in its term is a LeaderChangeRecord naming itself
  (Kafka's LeaderChangeMessage), written before its first decision (a tick, a registration,
  a heartbeat's unfence) and before any admin write (``Node.write_metadata`` asks
  :meth:`ControllerDriver.lead` first): the election is then in the metadata log, in order
  with the fences and elections around it (``GET /v1/cluster/events`` reads it there). A
  LeaderChangeRecord whose write timed out may still commit after the one written again, so
  a term can hold two; ``server/metadata_events.py`` tells of one. In the same entry comes
  the controller's RegisterControllerRecord (where it serves HTTP) unless the metadata holds
  it already: a node that forwards to the new controller finds its URL there, a broker-only
  node and a controller that holds no partitions too. Other controllers register through
  the leader (``register_controller``, ``POST /v1/internal/controllers``).

Sessions live in memory on the leader only, as in Kafka.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from client.protocol import (
    INCONSISTENT_CLUSTER_ID,
    INVALID_REQUEST,
    JAVA_INT_MAX,
    JAVA_LONG_MAX,
    LEADER_NOT_AVAILABLE,
    STALE_BROKER_EPOCH,
    ApiError,
    json_int,
)
from kraft.errors import MetadataRecordError
from kraft.quorum import MetadataQuorum
from kraft.records import (
    LeaderChangeRecord,
    MetadataRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RegisterControllerRecord,
)
from kraft.state import MetadataState
from server import controller, limits
from server.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

Plan = Callable[[MetadataState], list[MetadataRecord]]
Write = Callable[[Plan, int | None], Awaitable[int | None]]


@dataclass(frozen=True)
class LeaderBalance:
    """Kafka's preferred-leader balancing: ``auto.leader.rebalance.enable``,
    ``leader.imbalance.check.interval.seconds``, ``leader.imbalance.per.broker.percentage``."""

    enabled: bool = True
    check_interval_s: float = limits.LEADER_IMBALANCE_CHECK_INTERVAL_S
    per_broker_percentage: int = limits.LEADER_IMBALANCE_PER_BROKER_PERCENTAGE

    def __post_init__(self) -> None:
        assert self.check_interval_s > 0 and 0 <= self.per_broker_percentage <= 100, self


def _stale(broker_id: int, epoch: int) -> ApiError:
    """Kafka's answer to a heartbeat of a registration that is not the current one."""
    return ApiError(
        STALE_BROKER_EPOCH, f"broker {broker_id} at epoch {epoch} is not registered; register again"
    )


class ControllerDriver:
    def __init__(
        self,
        quorum: MetadataQuorum,
        cluster_id: str,
        write: Write,
        clock: Clock = SYSTEM_CLOCK,
        balance: LeaderBalance | None = None,
        registration: RegisterControllerRecord | None = None,
    ) -> None:
        self.quorum = quorum
        self.registration = registration  # this controller's, written when it takes over
        self.balance = balance or LeaderBalance()
        # The term the balancing schedule belongs to, and when it next checks (monotonic).
        self._balance_term: int | None = None
        self._next_balance_s = 0.0
        # Monotonic, as the quorum's last_heard readings it compares with.
        self._clock = clock
        self.cluster_id = cluster_id
        self._write = write
        self._deadlines: dict[int, float] = {}  # broker id -> monotonic end of its session
        self._registered_at: dict[int, int] = {}  # broker id -> index of its registration
        # Brokers heard from in this term: a session granted at a leader change is a grace
        # period, not proof that a process with that id is alive.
        self._heard: set[int] = set()
        self._term: int | None = None  # the term this node leads in, or None
        # Until then, a broker not heard over HTTP in this term is kept alive by its Raft
        # messages (monotonic; see the module text).
        self._raft_counts_until = 0.0
        # How long run() sleeps before its next tick: shorter when a session ends sooner.
        self._pause_s = limits.CONTROLLER_TICK_S
        self._next_transfer_s = 0.0  # when it may ask the quorum to hand the leadership over
        self._announced_term: int | None = None  # the last term its LeaderChangeRecord committed
        self._announcing = asyncio.Lock()  # one LeaderChangeRecord per term, not one per caller

    def _leading_term(self) -> int:
        """The term of this node's leadership; starts every session afresh in a new term."""
        if not self.quorum.is_leader():
            self._term = None
            raise ApiError(
                LEADER_NOT_AVAILABLE,
                "this node is not the controller; ask the metadata leader",
                {"retry_after_s": 1},
            )
        term = self.quorum.current_term()
        if term != self._term:
            self._term = term
            now = self._clock.monotonic_s()
            self._deadlines = self._inherited_sessions(now)
            self._raft_counts_until = now + limits.NEW_CONTROLLER_GRACE_S
            self._registered_at.clear()
            self._heard.clear()
            log.info(
                "node %d is the controller (term %d); voters last heard: %s",
                self.quorum.node_id,
                term,
                self._last_heard_text(now),
            )
        return term

    def _last_heard_text(self, now: float) -> str:
        """When each other voter was last heard on Raft ("node 2 1447 ms ago, node 3 4 ms
        ago"), for the log line of a new controller (a failover's timeline reads it)."""
        parts = []
        for broker in sorted(self.quorum.snapshot_state().brokers):
            heard = self.quorum.last_heard(broker)
            if heard is not None:
                parts.append(f"node {broker} {1000 * (now - heard):.0f} ms ago")
        return ", ".join(parts) or "none"

    def _inherited_sessions(self, now: float) -> dict[int, float]:
        """The session deadlines this node starts its leadership with: one session from each
        voter's last Raft message, else from now, and never sooner than
        ``NEW_CONTROLLER_RAFT_GRACE_S`` from now (a voter's first answer to this leader)."""
        deadlines: dict[int, float] = {}
        floor = now + limits.NEW_CONTROLLER_RAFT_GRACE_S
        for broker in self.quorum.snapshot_state().brokers:
            heard = self.quorum.last_heard(broker)
            start = now if heard is None else min(heard, now)
            deadlines[broker] = max(start + limits.BROKER_SESSION_TIMEOUT_S, floor)
        return deadlines

    def _count_raft_messages(self, now: float) -> None:
        """Extends the session of each broker not heard over HTTP in this term to one session
        after its latest Raft message, but not past ``_raft_counts_until``."""
        if now > self._raft_counts_until:
            return
        for broker, end in self._deadlines.items():
            heard = None if broker in self._heard else self.quorum.last_heard(broker)
            if heard is not None:
                extended = min(heard + limits.BROKER_SESSION_TIMEOUT_S, self._raft_counts_until)
                self._deadlines[broker] = max(end, extended)

    async def register(self, body: dict[str, Any]) -> dict[str, Any]:
        term = await self._lead()
        try:
            broker_id = json_int(body["broker_id"], "broker_id", 0, JAVA_INT_MAX)
            incarnation_id = str(body["incarnation_id"])
            http_url = str(body["http_url"])
            raft_address = str(body["raft_address"])
            cluster_id = str(body["cluster_id"])
            rack = body.get("rack")  # broker.rack, absent or null for none
            if rack is not None and not isinstance(rack, str):
                raise TypeError("rack")
            # host:port of the advertised KAFKA listener, absent or null for none
            kafka_address = body.get("kafka_address")
            if kafka_address is not None and not isinstance(kafka_address, str):
                raise TypeError("kafka_address")
        except (KeyError, TypeError, ValueError):
            raise ApiError(
                INVALID_REQUEST,
                "a registration needs broker_id, incarnation_id, "
                "http_url, raft_address and cluster_id (and a rack and a kafka_address: "
                "strings or null)",
            ) from None
        if cluster_id != self.cluster_id:
            raise ApiError(
                INCONSISTENT_CLUSTER_ID,
                f"cluster.id: node {broker_id} was formatted for cluster {cluster_id}, but this "
                f"cluster is {self.cluster_id}",
            )
        alive = (
            broker_id in self._heard
            and self._deadlines.get(broker_id, 0.0) > self._clock.monotonic_s()
        )

        written: list[MetadataRecord] = []

        def plan(state: MetadataState) -> list[MetadataRecord]:
            written[:] = controller.plan_register_broker(
                state,
                broker_id,
                incarnation_id,
                http_url,
                raft_address,
                session_alive=alive,
                rack=rack,
                kafka_address=kafka_address,
            )
            return written

        index = await self._write(plan, term)
        assert index is not None, "a registration always writes a record"
        self._registered_at[broker_id] = index
        self._deadlines[broker_id] = self._clock.monotonic_s() + limits.BROKER_SESSION_TIMEOUT_S
        self._heard.add(broker_id)
        # The epoch of the record written, not read back from the state: an unregistration
        # (or another registration) may have applied since, and the broker's next heartbeat
        # finds that out (STALE_BROKER_EPOCH).
        (record,) = written
        assert isinstance(record, RegisterBrokerRecord)
        return {
            "broker_id": broker_id,
            "broker_epoch": record.broker_epoch,
            "registered_index": index,
        }

    async def heartbeat(self, broker_id: int, body: dict[str, Any]) -> dict[str, Any]:
        # Not _lead(): a heartbeat that writes nothing never waits for a write (its session
        # is counted at once, even while a slow LeaderChangeRecord commits).
        term = self._leading_term()
        epoch = json_int(body.get("broker_epoch"), "broker_epoch", 0, JAVA_LONG_MAX)
        broker = self.quorum.snapshot_state().brokers.get(broker_id)
        if (
            broker is None
            or broker.epoch != epoch
            or broker.incarnation_id != body.get("incarnation_id")
        ):
            raise _stale(broker_id, epoch)
        self._deadlines[broker_id] = self._clock.monotonic_s() + limits.BROKER_SESSION_TIMEOUT_S
        self._heard.add(broker_id)
        applied = body.get("applied_index")
        caught_up = isinstance(applied, int) and applied >= self._registered_at.get(broker_id, 0)
        if broker.fenced and caught_up:
            await self._announce(term)
            await self._write(lambda s: controller.plan_unfence_broker(s, broker_id), term)
            log.info("unfenced broker %d (epoch %d)", broker_id, broker.epoch)
            # Read again after the writes: the broker may have been unregistered (or
            # registered anew) meanwhile, and then this registration is over.
            now = self.quorum.snapshot_state().brokers.get(broker_id)
            if now is None or now.epoch != epoch:
                raise _stale(broker_id, epoch)
            broker = now
        return {"broker_id": broker_id, "broker_epoch": broker.epoch, "fenced": broker.fenced}

    async def allocate_producer_ids(self, body: dict[str, Any]) -> dict[str, Any]:
        """The next block of producer ids for a broker, committed before it is handed out."""
        term = await self._lead()
        try:
            broker_id = json_int(body["broker_id"], "broker_id", 0, JAVA_INT_MAX)
            broker_epoch = json_int(body["broker_epoch"], "broker_epoch", 0, JAVA_LONG_MAX)
        except (KeyError, TypeError, ValueError):
            raise ApiError(INVALID_REQUEST, "give broker_id and broker_epoch") from None
        block = limits.PRODUCER_ID_BLOCK_SIZE
        written: list[MetadataRecord] = []

        def plan(state: MetadataState) -> list[MetadataRecord]:
            written[:] = controller.plan_producer_id_block(state, broker_id, broker_epoch, block)
            return written

        await self._write(plan, term)
        # Every block is a multiple of the block size from 0 and the next id only grows, so
        # the block below the record that applied is this broker's alone.
        (record,) = written
        assert isinstance(record, ProducerIdsRecord)
        return {"first_producer_id": record.next_producer_id - block, "count": block}

    async def alter_isr(self, body: dict[str, Any]) -> dict[str, Any]:
        """A partition leader asks to shrink or grow the ISRs of some of its partitions, in
        one request and one metadata entry (as Kafka batches AlterPartition)."""
        term = await self._lead()
        try:
            # Checked JSON integers: int() would take 1.5, true and "٣", and an integer past
            # 64 bits would reach the answer, which orjson cannot write (a 500).
            leader = json_int(body["leader"], "leader", 0, JAVA_INT_MAX)
            items = [
                (
                    str(i["topic_id"]),
                    json_int(i["partition"], "partition", 0, JAVA_INT_MAX),
                    json_int(i["leader_epoch"], "leader_epoch", 0, JAVA_INT_MAX),
                    tuple(json_int(r, "an isr member", 0, JAVA_INT_MAX) for r in i["isr"]),
                    None
                    if i.get("partition_epoch") is None
                    else json_int(i["partition_epoch"], "partition_epoch", 0, JAVA_INT_MAX),
                )
                for i in body["partitions"]
            ]
        except (KeyError, TypeError, ValueError):
            raise ApiError(
                INVALID_REQUEST,
                "give leader and partitions: "
                "[{topic_id, partition, leader_epoch, partition_epoch, isr}]",
            ) from None
        errors: dict[int, ApiError] = {}

        def plan(state: MetadataState) -> list[MetadataRecord]:
            records, refused = controller.plan_alter_isrs(state, leader, items)
            errors.clear()
            errors.update(refused)
            return records

        await self._write(plan, term)
        results = []
        for n, (topic_id, partition, _epoch, isr, _partition_epoch) in enumerate(items):
            error = errors.get(n)
            if error is None:
                log.info("partition %s-%d: ISR now %s", topic_id, partition, list(isr))
            results.append(
                {"topic_id": topic_id, "partition": partition, "isr": list(isr)}
                | ({} if error is None else {"error": error.name, "message": error.message})
            )
        return {"partitions": results}

    async def run(self) -> None:
        """While leading: fence brokers whose session ended, and elect leaders where none is."""
        while True:
            await asyncio.sleep(self._pause_s)
            self._pause_s = limits.CONTROLLER_TICK_S
            try:
                term = self._leading_term()
            except ApiError:
                continue
            try:
                await self._announce(term)
                await self._tick(term)
            except ApiError as e:
                log.warning("controller decision not written: %s", e.message)
            except Exception:
                log.exception("controller tick failed")

    async def _lead(self) -> int:
        """The term this node leads in, its LeaderChangeRecord written (ApiError if not)."""
        term = self._leading_term()
        await self._announce(term)
        return term

    async def lead(self) -> int:
        """The Raft term this node leads the quorum in, once this term's LeaderChangeRecord
        is written: a write made with that term as its expected term comes after the record
        in the log. ApiError LEADER_NOT_AVAILABLE when this node does not lead, or the error
        of the record's write."""
        return await self._lead()

    async def _announce(self, term: int) -> None:
        """Writes, once per term, the record that names this node the new controller, before
        any decision of that term; a failed write raises and the next caller tries again."""
        if self._announced_term == term:  # the usual case, without the lock
            return
        async with self._announcing:
            if self._announced_term == term:  # another caller wrote it meanwhile
                return
            leader = self.quorum.node_id
            await self._write(lambda state: self._takeover_records(state, leader), term)
            self._announced_term = term

    def _takeover_records(self, state: MetadataState, leader: int) -> list[MetadataRecord]:
        """A new controller's first entry: its LeaderChangeRecord, and its registration
        unless the metadata holds that one already."""
        records: list[MetadataRecord] = [LeaderChangeRecord(leader)]
        mine = self.registration
        if mine is not None:
            current = state.controllers.get(mine.controller_id)
            if current is None or current.incarnation_id != mine.incarnation_id:
                records.append(mine)
        return records

    async def register_controller(self, body: dict[str, Any]) -> dict[str, Any]:
        """Writes another controller's RegisterControllerRecord (``POST
        /v1/internal/controllers``): only a voter of this quorum, of this cluster."""
        term = await self._lead()
        try:
            record = RegisterControllerRecord(
                json_int(body["controller_id"], "controller_id", 0, JAVA_INT_MAX),
                str(body["incarnation_id"]),
                str(body["http_url"]),
                str(body["raft_address"]),
                None if body.get("directory_id") is None else str(body["directory_id"]),
            )
            cluster_id = str(body["cluster_id"])
        except (KeyError, TypeError, ValueError, MetadataRecordError) as e:
            raise ApiError(
                INVALID_REQUEST,
                "a controller registration needs cluster_id, controller_id, incarnation_id, "
                f"http_url and raft_address ({e})",
            ) from None
        if cluster_id != self.cluster_id:
            raise ApiError(
                INCONSISTENT_CLUSTER_ID,
                f"cluster.id: controller {record.controller_id} was formatted for cluster "
                f"{cluster_id}, but this cluster is {self.cluster_id}",
            )
        # The voter set is the log's (kraft/voters.py): a voter added at run time is known
        # here by its Raft address until this registration names its id.
        peers = self.quorum.peers
        known = peers.get(record.controller_id)
        owner = next((i for i, a in peers.items() if a == record.raft_address), None)
        if (
            not self.quorum.is_voter_address(record.raft_address)
            or known not in (None, record.raft_address)
            or owner not in (None, record.controller_id)
        ):
            raise ApiError(
                INVALID_REQUEST,
                f"controller {record.controller_id} at {record.raft_address} is not a voter of "
                "this quorum (check controller.quorum.voters, or add it with "
                "kraft-metadata-quorum add-controller)",
            )
        index = await self._write(lambda _state: [record], term)
        assert index is not None, "a registration always writes a record"
        return {"controller_id": record.controller_id, "registered_index": index}

    def _cut_off_from_brokers(self, state: MetadataState, now: float) -> list[int]:
        """The brokers that are silent on HTTP but alive on Raft, if they are most of the
        other unfenced brokers (else an empty list).

        Heartbeats travel over HTTP and the quorum over Raft: a controller whose HTTP links
        are cut (its Raft links intact) keeps the leadership and hears no broker. Fencing
        them all would stop every write in the cluster for as long as the cut lasts. When
        most of the others still answer on Raft, the likelier fault is this node's: it steps
        down, and a controller that can hear them takes over (and fences this node if its
        HTTP stays cut). One broker silent on HTTP alone (its server hung) is still fenced.
        """
        others = [
            b.id for b in state.brokers.values() if b.id != self.quorum.node_id and not b.fenced
        ]
        silent_alive = []
        for broker_id in others:
            heard = self.quorum.last_heard(broker_id)
            if (
                broker_id in self._heard  # a broker not heard yet this term may be starting
                and self._deadlines.get(broker_id, math.inf) < now
                and heard is not None
                and now - heard < limits.BROKER_SESSION_TIMEOUT_S
            ):
                silent_alive.append(broker_id)
        return silent_alive if 2 * len(silent_alive) > len(others) else []

    async def _tick(self, term: int) -> None:
        now = self._clock.monotonic_s()
        state = self.quorum.snapshot_state()
        silent = self._cut_off_from_brokers(state, now)
        if silent:
            if now >= self._next_transfer_s:  # a denied transfer is asked again, not spammed
                self._next_transfer_s = now + limits.CONTROLLER_TRANSFER_RETRY_S
                log.warning(
                    "brokers %s send no heartbeats but answer on Raft: this controller is "
                    "likely cut off from them; handing the metadata leadership over instead "
                    "of fencing them",
                    silent,
                )
                self.quorum.transfer_leadership()
            return
        self._count_raft_messages(now)
        for broker in state.brokers.values():
            deadline = self._deadlines.setdefault(broker.id, now + limits.BROKER_SESSION_TIMEOUT_S)
            if not broker.fenced and deadline < now:
                log.warning(
                    "broker %d missed its heartbeats for %.1f s: fencing it",
                    broker.id,
                    limits.BROKER_SESSION_TIMEOUT_S,
                )
                await self._write(
                    functools.partial(controller.plan_fence_broker, broker_id=broker.id), term
                )
        await self._write(controller.plan_elect_leaderless, term)
        await self._balance_leaders(term, now)
        self._pause_s = self.next_pause_s(self.quorum.snapshot_state(), self._clock.monotonic_s())

    def next_pause_s(self, state: MetadataState, now: float) -> float:
        """How long to sleep before the next tick: ``CONTROLLER_TICK_S``, or less when an
        unfenced broker's session ends sooner (then just past its end)."""
        ends = [
            end
            for broker_id, end in self._deadlines.items()
            if (broker := state.brokers.get(broker_id)) is not None and not broker.fenced
        ]
        soonest = min(ends, default=math.inf) - now + limits.CONTROLLER_DEADLINE_SLACK_S
        return min(limits.CONTROLLER_TICK_S, max(soonest, limits.CONTROLLER_DEADLINE_SLACK_S))

    async def _balance_leaders(self, term: int, now: float) -> None:
        """Every ``check_interval_s`` of a leadership (the first one interval after it
        began, as in Kafka), moves leadership back to preferred replicas for the brokers
        above the imbalance percentage (``controller.plan_leader_rebalance``)."""
        if not self.balance.enabled:
            return
        if self._balance_term != term:
            self._balance_term = term
            self._next_balance_s = now + self.balance.check_interval_s
        if now < self._next_balance_s:
            return
        self._next_balance_s = now + self.balance.check_interval_s
        outcomes: list[controller.ElectionOutcome] = []

        def plan(state: MetadataState) -> list[MetadataRecord]:
            records, tried = controller.plan_leader_rebalance(
                state, self.balance.per_broker_percentage
            )
            outcomes[:] = tried
            return records

        await self._write(plan, term)
        moved = [f"{o.topic}-{o.partition}" for o in outcomes if o.outcome == controller.ELECTED]
        if moved:
            log.info("preferred leader election (auto rebalance): %s", ", ".join(moved))
