"""The node: one process that is a controller (a Raft voter) and a broker (it stores replicas).

Wiring, in start order:

1. the metadata quorum (``kraft/quorum.py``) over ``__cluster_metadata-0/``;
2. the log manager over the partition directories (group commit, checkpoints, retention);
3. the controller driver (active while this node leads the quorum) and the broker lifecycle
   (registration and heartbeats to whichever node is the controller);
4. once the controller has unfenced this broker, the node reconciles its directories with the
   metadata (creates what it hosts, deletes what was deleted while it was away), and only
   then does ``/v1/health/ready`` answer 200.

Metadata flows one way: the quorum applies records on its own thread and notifies the event
loop, which reconciles the partitions this node hosts. Admin requests become records through
the pure plans of ``server/controller.py``, on the controller; other nodes forward them there.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from client.protocol import (
    KAFKA_STORAGE_ERROR,
    LEADER_NOT_AVAILABLE,
    NOT_LEADER_OR_FOLLOWER,
    REQUEST_TIMED_OUT,
    TOO_MANY_REQUESTS,
    UNKNOWN_PARTITION,
    ApiError,
)
from kraft.quorum import (
    MetadataQuorum,
    NotControllerError,
    OutcomeUnknownError,
    QuorumError,
    QuorumStoppedError,
)
from kraft.records import (
    ConfigRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from kraft.state import IllegalRecordError, MetadataState, TopicState
from server import limits
from server.broker_lifecycle import BrokerLifecycle
from server.config import NodeConfig
from server.controller import existing_topic
from server.controller_driver import ControllerDriver
from server.failpoints import Failpoints
from server.fetcher import ReplicaFetcher
from server.log_manager import LogManager, now_ms
from server.partition import LeaderState, Partition
from server.replication import ReplicaFetchHandler, isr_to_shrink
from server.topic_configs import effective_configs
from storage.log_config import LogConfig
from storage.properties import MetaProperties

log = logging.getLogger(__name__)

Plan = Callable[[MetadataState], list[MetadataRecord]]

# The controller's answer to an admin request names the metadata index that carries it, so a
# node that forwarded the request applies it before answering: its client then reads its
# own write on that node (describe right after create).
METADATA_INDEX_HEADER = "X-Metadata-Index"


class Node:
    def __init__(self, config: NodeConfig, meta: MetaProperties, secret: str) -> None:
        self.config = config
        self.meta = meta
        self.node_id = config.node_id
        self.incarnation_id = uuid.uuid4().hex
        peers = {
            vid: f"{host}:{port}"
            for vid, (host, port) in config.voters.items()
            if vid != config.node_id
        }
        self.quorum = MetadataQuorum(
            config.node_id,
            config.raft_address,
            peers,
            config.log_dir / "__cluster_metadata-0",
            secret,
            dial_overrides={vid: f"{h}:{p}" for vid, (h, p) in config.raft_dial.items()},
        )
        self.logs = LogManager(config.log_dir, config.node_id)
        self.controller = ControllerDriver(self.quorum, meta.cluster_id, self.write_metadata)
        self.lifecycle = BrokerLifecycle(
            self.call_controller,
            {
                "cluster_id": meta.cluster_id,
                "broker_id": self.node_id,
                "incarnation_id": self.incarnation_id,
                "http_url": config.advertised_http_url,
                "raft_address": config.raft_address,
            },
            lambda: self.quorum.snapshot_state().applied_index,
            self._on_unfenced,
            self.fail,
        )
        self.replicas = ReplicaFetchHandler(
            self.node_id, lambda t, i: self.logs.partitions.get((t, i)), self.request_isr_change
        )
        self.fetcher = ReplicaFetcher(
            self.node_id, self.logs, lambda leader: self.broker_url(leader, dial=True), self.http
        )
        # ISR changes waiting to be sent, and those sent and not answered yet.
        self._isr_pending: dict[tuple[str, int], dict[str, Any]] = {}
        self._isr_in_flight: dict[tuple[str, int], dict[str, Any]] = {}
        self._isr_wakeup = asyncio.Event()
        self._producer_ids: tuple[int, int] = (0, 0)  # [next, end) of this broker's block
        self._producer_ids_lock = asyncio.Lock()
        self.failpoints = Failpoints()
        self.registered = asyncio.Event()
        # Set when the node cannot go on (its metadata cannot be loaded, its node.id is taken):
        # the process exits with the reason.
        self.fatal: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.rng = random.Random()
        self._round_robin: dict[str, int] = {}
        self._http: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self.quorum.add_listener(self._on_metadata)
        try:
            self.quorum.start(asyncio.get_running_loop())
        except QuorumError as e:
            raise ValueError(f"listeners: the CONTROLLER listener cannot start: {e}") from None
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=limits.FORWARD_TIMEOUT_S)
        )
        self.logs.start(self.config.retention_check_interval_ms, self.fail)
        for name, body in (
            ("quorum-watch", self._watch_quorum()),
            ("controller", self.controller.run()),
            ("broker-lifecycle", self.lifecycle.run()),
            ("isr-maintenance", self._isr_loop()),
            ("isr-sender", self._isr_sender()),
        ):
            task = asyncio.create_task(body, name=name)
            task.add_done_callback(self._task_done)
            self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.fail(f"the {task.get_name()} task failed: {task.exception()!r}")

    def fail(self, reason: str) -> None:
        log.critical("node %d cannot go on: %s", self.node_id, reason)
        if not self.fatal.done():
            self.fatal.set_result(reason)

    async def stop(self) -> None:
        self.quorum.remove_listener(self._on_metadata)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.fetcher.close()
        await self.logs.close()
        self.quorum.stop()
        if self._http is not None:
            await self._http.close()

    async def _watch_quorum(self) -> None:
        """Waits for the quorum, logging why not; stops the node if the quorum failed."""
        while True:
            try:
                await self.quorum.wait_ready(timeout_s=10.0)
                return
            except QuorumStoppedError as e:
                self.fail(f"the metadata quorum stopped: {e}")
                return
            except QuorumError as e:
                log.warning("metadata quorum not ready yet: %s", e)
                await asyncio.sleep(1.0)

    def _on_unfenced(self) -> None:
        if not self.registered.is_set():
            self.reconcile_all()
            self.registered.set()
            log.info("node %d registered and serving", self.node_id)

    @property
    def ready(self) -> bool:
        """Registered, unfenced, and caught up on metadata."""
        if not (self.registered.is_set() and self.quorum.is_ready()):
            return False
        broker = self.quorum.snapshot_state().brokers.get(self.node_id)
        return broker is not None and not broker.fenced

    def require_ready(self) -> None:
        if not self.ready:
            raise ApiError(
                LEADER_NOT_AVAILABLE,
                f"node {self.node_id} is starting or has lost the metadata quorum; retry shortly",
                {"retry_after_s": 1},
            )

    # -- the controller ------------------------------------------------------------------------

    async def write_metadata(self, plan: Plan, expected_term: int | None = None) -> int | None:
        """Plans on the current state and writes the records; returns the applied index, or
        None when the plan had nothing to write.

        A plan made on a state that changed before its records were applied (a concurrent
        request) is rejected by the state machine; it is then planned once more, on the new
        state, where it either raises its proper error (say TOPIC_ALREADY_EXISTS) or succeeds.
        """
        for attempt in range(2):
            term = self.quorum.current_term() if expected_term is None else expected_term
            records = plan(self.quorum.snapshot_state())
            if not records:
                return None
            try:
                return await self.quorum.write(
                    records, timeout_s=limits.METADATA_WRITE_TIMEOUT_S, expected_term=term
                )
            except IllegalRecordError:
                if attempt:
                    raise
            except NotControllerError as e:
                raise ApiError(
                    LEADER_NOT_AVAILABLE,
                    f"the metadata leader changed (now: {e.leader_id}); retry",
                    {"retry_after_s": 1},
                ) from None
            except OutcomeUnknownError as e:
                raise ApiError(
                    REQUEST_TIMED_OUT,
                    f"the metadata write did not commit in time: {e}; it may still happen",
                ) from None
            except QuorumError as e:  # nothing was written (queue full, quorum stopping)
                raise ApiError(TOO_MANY_REQUESTS, str(e), {"retry_after_s": 1}) from None
        raise AssertionError("unreachable")

    def controller_url(self) -> str:
        """The HTTP address of the controller (the quorum leader), dial override applied."""
        leader = self.quorum.leader_id()
        url = None if leader is None else self.broker_url(leader, dial=True)
        if url is None:
            raise ApiError(
                LEADER_NOT_AVAILABLE,
                "no metadata leader is known yet; retry shortly",
                {"retry_after_s": 1},
            )
        return url

    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None, "started"
        return self._http

    async def call_controller(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A broker-to-controller call: in the process when this node leads, else over HTTP."""
        if self.quorum.is_leader():
            if path == "/v1/internal/brokers":
                return await self.controller.register(body)
            if path == "/v1/internal/alter-isr":
                return await self.controller.alter_isr(body)
            if path == "/v1/internal/producer-ids":
                return await self.controller.allocate_producer_ids(body)
            broker_id = int(path.split("/")[4])  # /v1/internal/brokers/<id>/heartbeat
            return await self.controller.heartbeat(broker_id, body)
        status, answer, _ = await self.http_call(
            "POST", self.controller_url() + path, body, limits.INTERNAL_HTTP_TIMEOUT_S
        )
        if status >= 300 or not isinstance(answer, dict):
            raise ApiError.from_json(answer if isinstance(answer, dict) else {}, status)
        return answer

    async def forward(self, request: web.Request, body: Any) -> web.Response:
        """Relays an admin request to the controller and its answer back (Kafka forwards too)."""
        status, answer, headers = await self.http_call(
            request.method, self.controller_url() + request.path_qs, body, limits.FORWARD_TIMEOUT_S
        )
        index = headers.get(METADATA_INDEX_HEADER, "")
        if index.isdigit():
            await self.quorum_caught_up_to(int(index), limits.FORWARD_APPLY_WAIT_S)
        if status == 204:
            return web.Response(status=204)
        return web.Response(
            body=orjson.dumps(answer) + b"\n", status=status, content_type="application/json"
        )

    async def http_call(
        self, method: str, url: str, body: Any, timeout_s: float
    ) -> tuple[int, Any, dict[str, str]]:
        assert self._http is not None, "started"
        try:
            async with self._http.request(
                method,
                url,
                data=None if body is None else orjson.dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                raw = await response.read()
                headers = dict(response.headers)
                try:
                    return response.status, orjson.loads(raw) if raw else None, headers
                except orjson.JSONDecodeError:
                    text = raw[:200].decode(errors="replace")
                    return 502, {"error": "UNKNOWN_SERVER_ERROR", "message": text}, headers
        except (aiohttp.ClientError, TimeoutError) as e:
            raise ApiError(
                LEADER_NOT_AVAILABLE,
                f"the controller at {url} did not answer: {e!r}",
                {"retry_after_s": 1},
            ) from None

    async def new_producer_id(self) -> int:
        """The next id of this broker's block, asking the controller for a block when empty."""
        async with self._producer_ids_lock:
            next_id, end = self._producer_ids
            if next_id >= end:
                block = await self.call_controller(
                    "/v1/internal/producer-ids",
                    {"broker_id": self.node_id, "broker_epoch": self.lifecycle.broker_epoch},
                )
                next_id = int(block["first_producer_id"])
                end = next_id + int(block["count"])
            self._producer_ids = (next_id + 1, end)
            return next_id

    async def quorum_caught_up_to(self, index: int, timeout_s: float) -> bool:
        """Waits (briefly) until this node has applied the metadata entry ``index``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.quorum.snapshot_state().applied_index < index:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

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
            "isr": list(isr),
        }
        if self._isr_in_flight.get(key) == item:
            return
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
                answer = await self.call_controller(
                    "/v1/internal/alter-isr",
                    {"leader": self.node_id, "partitions": list(batch.values())},
                )
                for result in answer["partitions"]:
                    if "error" in result:
                        log.info(
                            "ISR change of %s-%d to %s not made: %s",
                            result["topic_id"],
                            result["partition"],
                            result["isr"],
                            result["message"],
                        )
            except ApiError as e:  # the leader asks again at its next check or fetch
                log.info("%d ISR change(s) not made: %s", len(batch), e.message)
            finally:
                self._isr_in_flight = {}

    async def _isr_loop(self) -> None:
        """Drops from the ISR the followers that have not caught up for too long."""
        while True:
            await asyncio.sleep(limits.ISR_CHECK_INTERVAL_S)
            now = now_ms()
            for p in list(self.logs.partitions.values()):
                if p.is_leader and not p.closed:
                    smaller = isr_to_shrink(p, now, self.config.replica_lag_time_max_ms)
                    if smaller is not None:
                        log.warning(
                            "%s: followers lag, shrinking the ISR to %s", p.name, list(smaller)
                        )
                        self.request_isr_change(p, smaller)

    # -- metadata reads ------------------------------------------------------------------------

    def topic(self, name: str) -> TopicState:
        return existing_topic(self.quorum.snapshot_state(), name)

    def topic_configs(self, topic: TopicState) -> dict[str, str]:
        return effective_configs(self.config.topic_defaults, topic.configs)

    def broker_url(self, broker_id: int, dial: bool = False) -> str | None:
        """A broker's advertised URL; with ``dial``, the address this node dials it at."""
        if dial and broker_id in self.config.http_dial:
            host, port = self.config.http_dial[broker_id]
            return f"http://{host}:{port}"
        broker = self.quorum.snapshot_state().brokers.get(broker_id)
        return None if broker is None else broker.http_url

    def partition(self, topic_name: str, index: int) -> Partition:
        """The local replica of a partition, or the error a client should see: a redirect to
        the leader when this node holds no replica, a storage error when it failed to open."""
        topic = self.topic(topic_name)
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
        url = self.broker_url(meta.leader) if meta.leader >= 0 else None
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

    def leader_partition(self, topic_name: str, index: int) -> Partition:
        """The partition, if this node leads it; else the redirect or error for the client."""
        partition = self.partition(topic_name, index)
        partition.check_leader(self.broker_url(partition.state.leader))
        return partition

    def next_round_robin(self, topic: str) -> int:
        value = self._round_robin.get(topic, self.rng.randrange(1 << 16))
        self._round_robin[topic] = value + 1
        return value

    # -- reconciliation ------------------------------------------------------------------------

    def _on_metadata(self, index: int, records: Sequence[MetadataRecord] | None) -> None:
        """Called on the event loop after the quorum applied an entry (None: state replaced).

        Only the topics the entry names are looked at, so the work per entry does not grow
        with the number of partitions this node hosts.
        """
        if not self.registered.is_set():
            return  # reconcile_all runs once this broker is unfenced
        if records is None:
            self.reconcile_all()
            return
        state = self.quorum.snapshot_state()
        names: set[str] = set()
        for record in records:
            if isinstance(record, TopicRecord):
                names.add(record.name)
            elif isinstance(record, ConfigRecord) and record.resource_type == "topic":
                names.add(record.resource_name)
            elif isinstance(record, PartitionRecord | PartitionChangeRecord | RemoveTopicRecord):
                # A removed topic is gone from the state: its name is the one it is hosted by.
                topic = state.topic_by_id(record.topic_id)
                name = topic.name if topic is not None else self.logs.topic_name(record.topic_id)
                if name is not None:
                    names.add(name)
        if names:
            changed = self.reconcile(names, state)
            if changed:
                self.fetcher.update(changed)

    def reconcile_all(self) -> None:
        """Makes every local replica match the metadata (at start, and after a snapshot)."""
        state = self.quorum.snapshot_state()
        on_disk = set(self.logs.on_disk())
        names = set(state.topics) | self.logs.topic_names() | {name for name, _ in on_disk}
        self.reconcile(names, state, on_disk)
        self.fetcher.update()

    def reconcile(
        self, names: set[str], state: MetadataState, on_disk: set[tuple[str, int]] | None = None
    ) -> set[tuple[str, int]]:
        """Makes the local replicas of the named topics match the metadata: open them, update
        what the metadata says of them, or delete them (the topic, or this replica, is gone).
        Returns the replicas that came, went, or changed leader."""
        changed: set[tuple[str, int]] = set()
        for name in names:
            topic = state.topics.get(name)
            wanted: set[tuple[str, int]] = set()
            if topic is not None:
                wanted, topic_changed = self._reconcile_topic(topic)
                changed |= topic_changed
            local = self.logs.local_keys(name)
            local |= {k for k in on_disk or () if k[0] == name}
            for key in local - wanted:
                changed.add(key)
                try:
                    self.logs.delete_partition(*key)
                except OSError as e:
                    log.error("could not delete %s-%d: %s", key[0], key[1], e)
        return changed

    def _reconcile_topic(
        self, topic: TopicState
    ) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
        configs = self.topic_configs(topic)
        log_config = LogConfig.from_topic_configs(configs)
        min_isr = int(configs["min.insync.replicas"])
        hosted: set[tuple[str, int]] = set()
        changed: set[tuple[str, int]] = set()
        for index, p in topic.partitions.items():
            if self.node_id not in p.replicas:
                continue
            key = (topic.name, index)
            hosted.add(key)
            state = LeaderState(p.leader, p.leader_epoch, tuple(p.replicas), tuple(p.isr))
            partition = self.logs.partitions.get(key)
            if partition is not None and partition.topic_id != topic.topic_id:
                self.logs.delete_partition(*key)  # a deleted namesake's replica
                partition = None
            if partition is None:
                changed.add(key)
                try:
                    self.logs.open_partition(
                        topic.name, topic.topic_id, index, state, log_config, min_isr
                    )
                except (OSError, ValueError) as e:
                    log.exception("cannot open %s-%d", topic.name, index)
                    self.logs.mark_failed(key, f"partition {topic.name}-{index} cannot open: {e}")
                continue
            partition.min_insync_replicas = min_isr
            if partition.log.config != log_config:
                partition.log.update_config(log_config)
                self.logs.config_changed(partition)
            if partition.update_state(state, now_ms()):
                changed.add(key)
        return hosted, changed

    # -- status --------------------------------------------------------------------------------

    def cluster_view(self) -> dict[str, Any]:
        brokers = sorted(self.quorum.snapshot_state().brokers.values(), key=lambda b: b.id)
        return {
            "cluster_id": self.meta.cluster_id,
            "controller_id": self.quorum.leader_id(),
            "brokers": [
                {"id": b.id, "url": b.http_url, "fenced": b.fenced, "alive": not b.fenced}
                for b in brokers
            ],
        }
