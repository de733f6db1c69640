"""The replica manager, as Kafka's ReplicaManager: it owns this node's partition replicas.

It holds the log manager (opening, group commit, checkpoints, retention), the replica fetcher
(this node's follower side), the fetch handler (its leader side), ISR changes (batched requests
to the controller, and the shrink of lagging followers), and reconciliation with the metadata.

The ISR keeper costs per event, not per partition per tick: a led partition's ISR is looked
at when something may have made a follower lag (this node became its leader or its state
changed, a follower reported being behind, stopped fetching it, or its fetch session went
quiet, an ISR change was refused), at the time the follower would exceed
``replica.lag.time.max.ms`` (a :class:`~server.deadlines.Deadlines` timer). A follower whose
fetch session holds all of a partition needs no look until one of those happens, so idle
partitions cost nothing.
``Node`` wires it to the quorum and the HTTP layer; handlers reach partitions only through it.

A produced record's way down is one chain: the HTTP handler parses and plans, then calls
:meth:`ReplicaManager.append_records`, which finds the partition this node leads and calls
:meth:`Partition.append_as_leader`, which appends to the log, schedules the group commit
(``LogManager.schedule_flush``) and waits for the high watermark that the flush, or the
followers' fetches, move (``Partition.advance_high_watermark``).

Reconciliation runs as one task: metadata entries name the topics they touch, the task plans
with :func:`server.reconcile.plan_reconcile` on the newest metadata state and carries the
actions out, opening logs in a worker thread so that a node opening thousands of partitions
(or one with a big log) keeps heartbeating. ``wait_reconciled(index)`` lets a request that
wrote metadata answer once this node's replicas match it (read your own writes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp

from client.protocol import (
    FENCED_LEADER_EPOCH,
    INVALID_TOPIC_EXCEPTION,
    INVALID_UPDATE_VERSION,
    KAFKA_STORAGE_ERROR,
    LEADER_NOT_AVAILABLE,
    NOT_LEADER_OR_FOLLOWER,
    UNKNOWN_PARTITION,
    ApiError,
)
from kraft.records import (
    ConfigRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from kraft.state import MetadataState
from server import limits
from server.auto_topics import INTERNAL_TOPICS
from server.clock import SYSTEM_CLOCK, Clock
from server.config import CleanerSettings
from server.controller import existing_topic
from server.deadlines import Deadlines
from server.fetcher import ReplicaFetcher
from server.internal_auth_http import Signer
from server.log_manager import LoadedReplica, LogManager
from server.partition import LeaderAppend, Partition, ProducerBatch
from server.reconcile import (
    Action,
    DeleteReplica,
    Key,
    LocalReplica,
    OpenReplica,
    UpdateReplica,
    plan_reconcile,
)
from server.replication import ReplicaFetchHandler, isr_check
from server.replication_quota import RATES, REPLICA_LISTS, ReplicationQuotas
from server.tasks import supervised
from server.topic_metrics import TrafficTable
from storage.batch import NewRecord

log = logging.getLogger(__name__)

# Refusals of an ISR change asked on a state the metadata has moved past: the change was not
# made now, but an earlier copy of it may have been, and the new state will say.
STALE_ISR_CHANGE = {
    INVALID_UPDATE_VERSION.name,
    FENCED_LEADER_EPOCH.name,
    UNKNOWN_PARTITION.name,
}

CallController = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
BrokerUrl = Callable[[int, bool], str | None]


class ReplicaManager:
    def __init__(
        self,
        node_id: int,
        log_dir: Path,
        *,
        metadata: Callable[[], MetadataState],
        topic_defaults: dict[str, str],
        replica_lag_time_max_ms: int,
        broker_url: BrokerUrl,
        http: Callable[[], aiohttp.ClientSession],
        sign: Signer,
        call_controller: CallController,
        clock: Clock = SYSTEM_CLOCK,
        cleaner: CleanerSettings | None = None,
    ) -> None:
        self.node_id = node_id
        self._metadata = metadata
        self._topic_defaults = topic_defaults
        self._lag_max_ms = replica_lag_time_max_ms
        self._broker_url = broker_url
        self._call_controller = call_controller
        self._clock = clock
        self.logs = LogManager(log_dir, node_id, clock, cleaner)
        # Replication throttles (server/replication_quota.py), kept in step by on_metadata.
        self.quotas = ReplicationQuotas(node_id)
        self.fetcher = ReplicaFetcher(
            node_id,
            self.logs,
            lambda leader: broker_url(leader, True),
            http,
            sign,
            quota=self.quotas.follower,
        )
        self.fetch_handler = ReplicaFetchHandler(
            node_id,
            lambda t, i: self.logs.partitions.get((t, i)),
            self.request_isr_change,
            clock,
            watch_isr=self.watch_isr,
            lag_max_ms=replica_lag_time_max_ms,
            quota=self.quotas.leader,
        )
        # Led partitions whose ISR to look at, by when (see the module's docstring).
        self._isr_due: Deadlines[Key] = Deadlines()
        # ISR changes waiting to be sent, and those sent and not answered yet.
        self._isr_pending: dict[tuple[str, int], dict[str, Any]] = {}
        self._isr_in_flight: dict[tuple[str, int], dict[str, Any]] = {}
        self._isr_wakeup = asyncio.Event()
        # Reconciliation: the topics entries named since the last pass (or all of them).
        self._pending_names: set[str] = set()
        self._pending_all = False
        self._topic_names: dict[str, str] = {}  # topic id -> name, of topics created lately
        self._reconcile_wakeup = asyncio.Event()
        self._reconciled_index = -1
        self._reconciled = asyncio.Event()  # set (and replaced) after every pass
        self.serving = asyncio.Event()  # the first full pass is done
        # Opening logs (recovery, producer state) runs here, off the event loop.
        self._open_executor = ThreadPoolExecutor(1, thread_name_prefix="open")
        self._tasks: list[asyncio.Task[None]] = []
        # For /metrics (read when scraped): bytes and records by topic, and the ISR changes
        # and leaderships of partitions this node leads, as the metadata applied them here.
        self.traffic = TrafficTable()
        self.isr_shrinks = 0
        self.isr_expands = 0
        self.leader_elections = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, retention_check_interval_ms: int, on_fatal: Callable[[str], None]) -> None:
        self.logs.start(retention_check_interval_ms, on_fatal)
        self._tasks += [
            supervised("isr-maintenance", self._isr_loop(), on_fatal),
            supervised("isr-sender", self._isr_sender(), on_fatal),
        ]

    def start_serving(self, on_fatal: Callable[[str], None]) -> None:
        """This broker is registered and unfenced: make every local replica match the
        metadata, and keep them so (``serving`` is set after the first pass)."""
        self._pending_all = True
        self._reconcile_wakeup.set()
        self._tasks.append(supervised("reconcile", self._reconcile_loop(), on_fatal))

    async def stop(self, broker_epoch: int = -1) -> None:
        """Stops the replicas' tasks and closes the logs; ``broker_epoch`` (-1: none) goes into
        the clean shutdown file, as Kafka's LogManager.shutdown writes it."""
        self.logs.stopping()  # an open batch in the thread stops at its next replica
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # An open still running in the thread ends before the logs close; the log it opened
        # is never added, and the logs' close seals it and writes no clean shutdown file.
        self._open_executor.shutdown(wait=True)
        await self.fetcher.close()
        await self.logs.close(broker_epoch)

    # -- lookups -------------------------------------------------------------------------------

    def local(self, topic: str, index: int) -> Partition | None:
        """This node's replica of the partition, if it has one open."""
        return self.logs.partitions.get((topic, index))

    def partition(self, topic_name: str, index: int) -> Partition:
        """The local replica of a partition, or the error a client should see: a redirect to
        the leader when this node holds no replica, a storage error when it failed to open."""
        topic = existing_topic(self._metadata(), topic_name)
        if index not in topic.partitions:
            raise ApiError(
                UNKNOWN_PARTITION,
                f"partition {index} of topic '{topic_name}' does not exist "
                f"(it has {len(topic.partitions)})",
            )
        partition = self.logs.partitions.get((topic_name, index))
        if partition is not None:
            return partition
        failure = self.logs.failed.get((topic_name, index))
        if failure is not None:
            raise ApiError(KAFKA_STORAGE_ERROR, failure)
        meta = topic.partitions[index]
        url = self._broker_url(meta.leader, False) if meta.leader >= 0 else None
        if self.node_id in meta.replicas or url is None:
            raise ApiError(
                LEADER_NOT_AVAILABLE,
                f"partition {topic_name}-{index} is not available on node {self.node_id} yet",
                {"retry_after_s": 1},
            )
        raise ApiError(
            NOT_LEADER_OR_FOLLOWER,
            f"node {self.node_id} holds no replica of {topic_name}-{index}; "
            f"node {meta.leader} leads it",
            {"leader_id": meta.leader, "leader_epoch": meta.leader_epoch, "leader_url": url},
        )

    async def await_opening(self, topic_name: str, index: int) -> None:
        """Waits (briefly) while a partition the metadata gives this node is still opening.

        A topic's creation is answered once its records are committed, as Kafka's CreateTopics
        is, and the replicas open a moment later: a produce or fetch sent right after the
        answer waits for that moment instead of getting LEADER_NOT_AVAILABLE, so ``curl`` works
        on the first try. Anything else (an unknown topic, a replica elsewhere, one that failed
        to open) returns at once and gets its usual answer from :meth:`partition`.
        """
        if (topic_name, index) in self.logs.partitions:
            return
        state = self._metadata()
        topic = state.topics.get(topic_name)
        meta = None if topic is None else topic.partitions.get(index)
        if meta is None or self.node_id not in meta.replicas:
            return
        if (topic_name, index) in self.logs.failed:
            return
        await self.wait_reconciled(state.applied_index, limits.FORWARD_APPLY_WAIT_S)

    async def serving_leader(self, topic_name: str, index: int) -> Partition:
        """:meth:`leader_partition`, once a replica still opening has opened."""
        await self.await_opening(topic_name, index)
        return self.leader_partition(topic_name, index)

    def leader_partition(self, topic_name: str, index: int) -> Partition:
        """The partition, if this node leads it; else the redirect or error for the client."""
        partition = self.partition(topic_name, index)
        partition.check_leader(self._broker_url(partition.state.leader, False))
        return partition

    # -- produce -------------------------------------------------------------------------------

    async def append_records(
        self,
        topic: str,
        index: int,
        batches: Sequence[Sequence[NewRecord]],
        acks: str,
        producer: ProducerBatch | None,
        timeout_s: float,
    ) -> LeaderAppend:
        """Appends a request's batches to a partition this node leads and waits for the acks
        (see :meth:`Partition.append_as_leader`); raises the redirect or error otherwise."""
        if topic in INTERNAL_TOPICS:
            raise ApiError(
                INVALID_TOPIC_EXCEPTION,
                f"Cannot append to internal topic {topic}: only the cluster writes it",
            )
        partition = await self.serving_leader(topic, index)
        return await partition.append_as_leader(batches, acks, producer, timeout_s)

    # -- the ISR ---------------------------------------------------------------------------------

    def request_isr_change(self, p: Partition, isr: tuple[int, ...]) -> None:
        """Asks the controller to set a led partition's ISR (never edited here on our own).

        Requests wait a moment to be sent together: after a restart, a follower catching up
        on a thousand partitions makes one request, and one metadata entry, not a thousand.
        """
        key = (p.topic_id, p.index)
        item = {
            "topic_id": p.topic_id,
            "partition": p.index,
            "leader_epoch": p.state.leader_epoch,
            "partition_epoch": p.state.partition_epoch,
            "isr": list(isr),
        }
        if self._isr_in_flight.get(key) == item:
            return
        p.isr_change_requested(isr)
        self._isr_pending[key] = item
        self._isr_wakeup.set()

    async def _isr_sender(self) -> None:
        while True:
            await self._isr_wakeup.wait()
            await asyncio.sleep(limits.ISR_CHANGE_BATCH_S)
            self._isr_wakeup.clear()
            batch, self._isr_pending = self._isr_pending, {}
            self._isr_in_flight = dict(batch)
            try:
                answer = await self._call_controller(
                    "/v1/internal/alter-isr",
                    {"leader": self.node_id, "partitions": list(batch.values())},
                )
            except ApiError as e:
                # The outcome is unknown (the change may have been made): send it again, as
                # Kafka's AlterPartitionManager does, unless a newer request replaced it. One
                # made meanwhile is refused by its partition epoch.
                log.info("%d ISR change(s) not answered, retrying: %s", len(batch), e.message)
                self._isr_pending = batch | self._isr_pending
                self._isr_in_flight = {}
                await asyncio.sleep(limits.ISR_CHANGE_RETRY_S)
                self._isr_wakeup.set()
                continue
            self._isr_in_flight = {}
            for result in answer["partitions"]:
                if "error" in result:
                    self._isr_change_refused(result)

    def _isr_change_refused(self, result: dict[str, Any]) -> None:
        log.info(
            "ISR change of %s-%d to %s not made: %s",
            result["topic_id"],
            result["partition"],
            result["isr"],
            result["message"],
        )
        if result["error"] in STALE_ISR_CHANGE:
            return  # the metadata has moved on, and clears what the leader counts when it comes
        name = self.logs.topic_name(result["topic_id"])
        p = None if name is None else self.logs.partitions.get((name, result["partition"]))
        if p is not None:
            p.isr_change_refused()
            # An idle follower reports nothing new: ask again later, as a fetch would have.
            self.watch_isr(p, self._clock.wall_ms() + int(limits.ISR_CHANGE_RETRY_S * 1000))

    def watch_isr(self, p: Partition, due_ms: int) -> None:
        """Looks at the ISR of ``p`` (if this node leads it) at ``due_ms`` or earlier."""
        if p.is_leader and not p.closed:
            self._isr_due.schedule((p.topic, p.index), due_ms)

    async def _isr_loop(self) -> None:
        """Drops from the ISR the followers that have not caught up for too long, looking
        only at the partitions due (and the fetch sessions that went quiet)."""
        quiet_ms = self._lag_max_ms // 2
        while True:
            now = self._clock.wall_ms()
            for session in self.fetch_handler.quiet_sessions(now, quiet_ms):
                for topic, index in session.partitions:
                    p = self.logs.partitions.get((topic, index))
                    if p is not None:
                        self.watch_isr(p, now)
            for key in self._isr_due.pop_due(now):
                p = self.logs.partitions.get(key)
                if p is not None and p.is_leader and not p.closed:
                    self._check_isr(p, now, quiet_ms)
            next_ms = self._isr_due.next_ms()
            wait_s = limits.ISR_CHECK_INTERVAL_S
            if next_ms is not None:
                wait_s = min(wait_s, max(0.0, (next_ms - self._clock.wall_ms()) / 1000))
            await asyncio.sleep(wait_s)

    def _check_isr(self, p: Partition, now: int, quiet_ms: int) -> None:
        smaller, next_ms = isr_check(
            p,
            now,
            self._lag_max_ms,
            lambda part, replica: self.fetch_handler.caught_up(part, replica, now, quiet_ms),
        )
        if smaller is not None:
            log.warning("%s: followers lag, shrinking the ISR to %s", p.name, list(smaller))
            self.request_isr_change(p, smaller)
        self.fetch_handler.expand_isr_if_caught_up(p, now, quiet_ms)
        if next_ms is not None:
            self.watch_isr(p, next_ms)

    # -- reconciliation ------------------------------------------------------------------------

    def on_metadata(self, records: Sequence[MetadataRecord] | None) -> None:
        """The quorum applied an entry (None: the whole state was replaced): note the topics
        it names for the reconcile task. Costs what the entry has, not what the node hosts."""
        if records is None:
            self._pending_all = True
            state = self._metadata()
            self.quotas.reload(
                {name: topic.configs for name, topic in state.topics.items()},
                state.broker_configs,
            )
        else:
            for record in records:
                if isinstance(record, ConfigRecord):
                    self._config_applied(record)
                if isinstance(record, TopicRecord):
                    self._topic_names[record.topic_id] = record.name
                    self._pending_names.add(record.name)
                elif isinstance(record, ConfigRecord) and record.resource_type == "topic":
                    self._pending_names.add(record.resource_name)
                elif isinstance(
                    record, PartitionRecord | PartitionChangeRecord | RemoveTopicRecord
                ):
                    name = self._topic_name(record.topic_id)
                    if name is not None:
                        self._pending_names.add(name)
                    if isinstance(record, RemoveTopicRecord):
                        self._topic_names.pop(record.topic_id, None)
                        if name is not None:
                            self._topic_throttles(name)
        self._reconcile_wakeup.set()

    def _config_applied(self, record: ConfigRecord) -> None:
        """A throttle setting changed: the quotas read it from the newest state."""
        if record.resource_type == "topic":
            if record.name in REPLICA_LISTS:
                self._topic_throttles(record.resource_name)
        elif record.name in RATES:
            self.quotas.update_rates(self._metadata().broker_configs)

    def _topic_throttles(self, name: str) -> None:
        topic = self._metadata().topics.get(name)
        self.quotas.update_topic(name, None if topic is None else topic.configs)

    def _topic_name(self, topic_id: str) -> str | None:
        # A removed topic is gone from the state: its name is the one it was created with,
        # or the one its local replicas are hosted by (a topic created before this node
        # started, whose replicas may still be opening).
        topic = self._metadata().topic_by_id(topic_id)
        if topic is not None:
            return topic.name
        return self._topic_names.get(topic_id) or self.logs.topic_name(topic_id)

    async def wait_reconciled(self, index: int, timeout_s: float) -> bool:
        """Waits (briefly) until this node's replicas match metadata entry ``index``."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._reconciled_index < index:
                    await self._reconciled.wait()
        except TimeoutError:
            return False
        return True

    async def _reconcile_loop(self) -> None:
        while True:
            await self._reconcile_wakeup.wait()
            self._reconcile_wakeup.clear()
            state = self._metadata()
            full = self._pending_all
            if full:
                on_disk = set(self.logs.on_disk())
                names = set(state.topics) | self.logs.topic_names() | {n for n, _ in on_disk}
            else:
                on_disk = set()
                names = self._pending_names
            self._pending_all = False
            self._pending_names = set()
            changed = await self.reconcile(state, names, on_disk)
            self.fetcher.update(None if full else changed)
            self._reconciled_index = state.applied_index
            self._reconciled.set()
            self._reconciled = asyncio.Event()
            if full:
                self.serving.set()

    async def reconcile(
        self,
        state: MetadataState,
        names: set[str],
        on_disk: set[Key] = frozenset(),  # type: ignore[assignment]
    ) -> set[Key]:
        """Plans and carries out what makes the named topics' local replicas match ``state``;
        returns the replicas that came, went, or changed leader."""
        local: dict[Key, LocalReplica | None] = {}
        for name in names:
            for key in self.logs.local_keys(name):
                p = self.logs.partitions.get(key)
                local[key] = (
                    None
                    if p is None
                    else LocalReplica(p.topic_id, p.state, p.log.config, p.min_insync_replicas)
                )
        for key in on_disk or ():
            local.setdefault(key, None)
        actions = plan_reconcile(state, self.node_id, self._topic_defaults, names, local)
        return await self._carry_out(actions)

    async def _carry_out(self, actions: list[Action]) -> set[Key]:
        changed: set[Key] = set()
        opens: list[OpenReplica] = []
        for action in actions:
            if isinstance(action, DeleteReplica):
                changed.add(action.key)
                log.info("removing %s-%d: %s", *action.key, action.reason)
                try:
                    self.logs.delete_partition(*action.key)
                except OSError as e:
                    log.error("could not delete %s-%d: %s", *action.key, e)
            elif isinstance(action, OpenReplica):
                opens.append(action)
            elif isinstance(action, UpdateReplica):
                p = self.logs.partitions[action.key]
                settings = action.settings
                p.min_insync_replicas = settings.min_insync_replicas
                if p.log.config != settings.config:
                    p.log.update_config(settings.config)
                    self.logs.config_changed(p)
                now = self._clock.wall_ms()
                old_isr = p.state.isr
                if p.update_state(settings.state, now):
                    self.leader_elections += p.is_leader
                elif p.is_leader and old_isr != p.state.isr:
                    # Kafka's IsrShrinksPerSec / IsrExpandsPerSec, counted by the leader.
                    self.isr_shrinks += not set(old_isr) <= set(p.state.isr)
                    self.isr_expands += not set(p.state.isr) <= set(old_isr)
                self.watch_isr(p, now)  # new followers, or a new ISR, to keep an eye on
                if action.leader_changed:
                    changed.add(action.key)
        if opens:
            # One hand-off to the open thread for the whole entry's replicas, not one each.
            results = await asyncio.get_running_loop().run_in_executor(
                self._open_executor,
                self.logs.load_replicas,
                [(a.key[0], a.settings.topic_id, a.key[1], a.settings.config) for a in opens],
            )
            opened: set[str] = set()
            for action, result in zip(opens, results, strict=True):
                changed.add(action.key)
                if self._add_opened(action, result):
                    opened.add(action.key[0])
            # The metadata may have moved on while the logs opened (a leader change, the
            # topic deleted): one more pass over these topics brings them up to date. (A
            # replica that failed to open is retried at the next entry naming its topic.)
            if opened:
                self._pending_names.update(opened)
                self._reconcile_wakeup.set()
        return changed

    def _partition_changed(self, p: Partition) -> None:
        """``Partition.notify``: an append, a HW move, new metadata, a close."""
        self.fetch_handler.partition_changed(p)
        self.fetcher.partition_changed(p)

    def _add_opened(self, action: OpenReplica, result: LoadedReplica | BaseException) -> bool:
        """Adds an opened replica; returns False (and marks it failed) if it did not open."""
        name, index = action.key
        if isinstance(result, BaseException):
            if not isinstance(result, OSError | ValueError):
                raise result
            log.error("cannot open %s-%d: %s", name, index, result)
            self.logs.mark_failed(action.key, f"partition {name}-{index} cannot open: {result}")
            return False
        p = self.logs.add_replica(
            result, action.settings.state, action.settings.min_insync_replicas
        )
        # Fetch sessions learn of their partitions' news through this, both sides; a leader's
        # session holding this one (refused while it was not open) looks at it again now.
        p.change_listener = self._partition_changed
        p.traffic = self.traffic.topic(p.topic)
        self._partition_changed(p)
        self.watch_isr(p, self._clock.wall_ms())
        return True
