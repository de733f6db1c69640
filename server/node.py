"""The node: one process with Kafka's roles (``process.roles``): a controller (a Raft voter
that can lead the quorum), a broker (it stores replicas), or both (the default).

Wiring, in start order:

1. the metadata quorum over ``__cluster_metadata-0/``, started by ``server/main.py`` before
   this module is even imported (the election overlaps the imports): a voter
   (``kraft/quorum.py``) on a controller, an observer (``kraft/observer.py``) that follows the
   log without voting on a broker-only node;
2. the replica manager (``server/replica_manager.py``): the partition logs with their group
   commit, checkpoints and retention, the replica fetcher, the ISR, reconciliation;
3. on a controller, the controller driver (active while this node leads the quorum) and its
   RegisterControllerRecord (where its HTTP is, for the nodes that forward to it); on a
   broker, the broker lifecycle (registration and heartbeats to whichever node is the
   controller);
4. once the controller has unfenced this broker, the replica manager reconciles the
   directories with the metadata (opens what this node hosts, deletes what was deleted while
   it was away), and only then does ``/v1/health/ready`` answer 200. A controller-only node
   holds no partitions and is ready once it has the quorum and has applied the log.

Metadata flows one way: the quorum applies records on its own thread and notifies the event
loop, which hands them to the replica manager. Admin requests become records through the pure
plans of ``server/controller.py``, on the controller; other nodes forward them there. The node
itself keeps the lifecycle, the calls to and from the controller, and the producer-id blocks.
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
from yarl import URL

from client.protocol import (
    LEADER_NOT_AVAILABLE,
    REQUEST_TIMED_OUT,
    TOO_MANY_REQUESTS,
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
    MetadataRecord,
    RegisterControllerRecord,
)
from kraft.state import IllegalRecordError, MetadataState, TopicState
from server import limits
from server.broker_lifecycle import BrokerLifecycle
from server.clock import SYSTEM_CLOCK
from server.config import GroupSettings, NodeConfig
from server.controller import existing_topic
from server.controller_driver import ControllerDriver, LeaderBalance
from server.failpoints import Failpoints
from server.groups.classic import ClassicSettings
from server.groups.runtime import GroupCoordinator
from server.internal_auth import InternalAuth
from server.internal_auth_http import signer
from server.loop_monitor import LoopMonitor
from server.metadata_applied import MetadataApplied
from server.metadata_events import MetadataEvents
from server.metrics import NodeMetrics
from server.replica_manager import ReplicaManager
from server.tasks import supervised
from server.tls import client_ssl_context
from server.topic_configs import effective_configs
from storage.properties import MetaProperties

log = logging.getLogger(__name__)

Plan = Callable[[MetadataState], list[MetadataRecord]]

# The controller's answer to an admin request names the metadata index that carries it, so a
# node that forwarded the request applies it before answering: its client then reads its
# own write on that node (describe right after create).
METADATA_INDEX_HEADER = "X-Metadata-Index"


class Node:
    def __init__(
        self, config: NodeConfig, meta: MetaProperties, secret: str, quorum: MetadataQuorum
    ) -> None:
        """The node around ``quorum``, its metadata quorum, started already (server.main
        starts it first, so the election runs while the rest loads)."""
        self.config = config
        self.meta = meta
        self.node_id = config.node_id
        self.incarnation_id = uuid.uuid4().hex
        # Proof of the cluster secret on node-to-node HTTP calls, both ways.
        self.internal_auth = InternalAuth(secret)
        self.sign = signer(self.internal_auth, config.node_id, SYSTEM_CLOCK.wall_ms)
        self.quorum = quorum
        self.metadata_applied = MetadataApplied(self.quorum)
        # The metadata log's recent events (GET /v1/cluster/events), the start's replay too.
        self.metadata_events = MetadataEvents()
        self.quorum.add_entry_listener(self.metadata_events)
        # A controller's registration: the URL nodes forward to when it leads.
        self.controller_registration = (
            RegisterControllerRecord(
                config.node_id,
                self.incarnation_id,
                config.advertised_http_url,
                config.raft_address,
                meta.directory_id,
            )
            if config.is_controller
            else None
        )
        self.controller = ControllerDriver(
            self.quorum,
            meta.cluster_id,
            self.write_metadata,
            balance=LeaderBalance(
                config.auto_leader_rebalance_enable,
                config.leader_imbalance_check_interval_s,
                config.leader_imbalance_per_broker_percentage,
            ),
            registration=self.controller_registration,
        )
        self.lifecycle = BrokerLifecycle(
            self.call_controller,
            {
                "cluster_id": meta.cluster_id,
                "broker_id": self.node_id,
                "incarnation_id": self.incarnation_id,
                "http_url": config.advertised_http_url,
                "raft_address": config.raft_address,
                # Only when set: a controller from before racks refuses a field it does not know.
                **({} if config.rack is None else {"rack": config.rack}),
                # Likewise the advertised KAFKA listener (Kafka's clients learn it in Metadata).
                **(
                    {}
                    if config.advertised_kafka_address is None
                    else {"kafka_address": config.advertised_kafka_address}
                ),
            },
            lambda: self.quorum.snapshot_state().applied_index,
            self._on_unfenced,
            self.fail,
        )
        self.replica_manager = ReplicaManager(
            config.node_id,
            config.log_dir,
            metadata=self.quorum.snapshot_state,
            topic_defaults=config.topic_defaults,
            replica_lag_time_max_ms=config.replica_lag_time_max_ms,
            broker_url=lambda broker, dial: self.broker_url(broker, dial=dial),
            http=self.http,
            sign=self.sign,
            call_controller=self.call_controller,
            cleaner=config.cleaner,
        )
        self.groups = GroupCoordinator(self, classic_settings(config.groups))
        # Set once this broker is unfenced and its replicas match the metadata.
        self.registered = self.replica_manager.serving
        self._serving_started = False
        self._producer_ids: tuple[int, int] = (0, 0)  # [next, end) of this broker's block
        self._producer_ids_lock = asyncio.Lock()
        self.failpoints = Failpoints()
        # Set when the node cannot go on (its metadata cannot be loaded, its node.id is taken):
        # the process exits with the reason.
        self.fatal: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.rng = random.Random()
        self._round_robin: dict[str, int] = {}
        self._http: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # GET /metrics; the loop monitor is the app's (server/main.py), set when it starts.
        self.metrics = NodeMetrics(self)
        self.loop_monitor: LoopMonitor | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        # The quorum has been running (and may have applied entries) since before this node
        # existed: a listener added now reads the state whole first, as the quorum asks.
        self.quorum.add_listener(self._on_metadata)
        self._on_metadata(self.quorum.snapshot_state().applied_index, None)
        self._http = aiohttp.ClientSession(
            # Peers serve https when this node does: checked against ssl.truststore.location.
            connector=aiohttp.TCPConnector(ssl=client_ssl_context(self.config) or True),
            timeout=aiohttp.ClientTimeout(total=limits.FORWARD_TIMEOUT_S),
        )
        self.replica_manager.start(self.config.retention_check_interval_ms, self.fail)
        self.metrics.install()
        self._tasks = [
            supervised("quorum-watch", self._watch_quorum(), self.fail),
            supervised("group-coordinator", self.groups.run(), self.fail),
        ]
        if self.config.is_controller:
            self._tasks.append(supervised("controller", self.controller.run(), self.fail))
            self._tasks.append(
                supervised("controller-registration", self._register_controller(), self.fail)
            )
        if self.config.is_broker:
            self._tasks.append(supervised("broker-lifecycle", self.lifecycle.run(), self.fail))

    def fail(self, reason: str) -> None:
        log.critical("node %d cannot go on: %s", self.node_id, reason)
        if not self.fatal.done():
            self.fatal.set_result(reason)

    async def stop(self) -> None:
        self.quorum.remove_listener(self._on_metadata)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        epoch = self.lifecycle.broker_epoch
        await self.replica_manager.stop(-1 if epoch is None else epoch)
        self.metrics.uninstall()
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

    async def _register_controller(self) -> None:
        """Makes this controller's registration (RegisterControllerRecord) the metadata's:
        the leader writes its own with the first record of its term (controller_driver.py);
        another controller asks the leader, at start and after every change of leader until
        the log holds it."""
        registration = self.controller_registration
        assert registration is not None, "a controller"
        pause_s = limits.BROKER_STARTING_POLL_S
        while True:
            await asyncio.sleep(pause_s)
            current = self.quorum.snapshot_state().controllers.get(self.node_id)
            if current is not None and current.incarnation_id == registration.incarnation_id:
                return
            if not self.quorum.is_ready() or self.quorum.is_leader():
                pause_s = limits.BROKER_STARTING_POLL_S  # the leader writes its own
                continue
            if not self.quorum.is_voter_address(registration.raft_address):
                # A controller that follows the log until it is added as a voter
                # (kraft-metadata-quorum add-controller): the leader registers voters only.
                pause_s = limits.BROKER_STARTING_POLL_S
                continue
            try:
                answer = await self.call_controller(
                    "/v1/internal/controllers",
                    {
                        "cluster_id": self.meta.cluster_id,
                        "controller_id": registration.controller_id,
                        "incarnation_id": registration.incarnation_id,
                        "http_url": registration.http_url,
                        "raft_address": registration.raft_address,
                        "directory_id": registration.directory_id,
                    },
                )
                await self.wait_applied(int(answer["registered_index"]))
                pause_s = limits.BROKER_STARTING_POLL_S
            except ApiError as e:
                log.info("controller registration not written yet: %s", e.message)
                pause_s = min(2 * pause_s, limits.BROKER_HEARTBEAT_INTERVAL_S)

    def _on_unfenced(self) -> None:
        if not self._serving_started:
            self._serving_started = True
            self.replica_manager.start_serving(self.fail)
            log.info("node %d registered; opening its replicas", self.node_id)

    @property
    def ready(self) -> bool:
        """Caught up on metadata; a broker also registered and unfenced."""
        return self.not_ready_reason() is None

    def not_ready_reason(self) -> str | None:
        """Why this node is not ready (GET /v1/health/ready), or None when it is."""
        if not self.config.is_broker:  # a controller-only node holds no partitions
            return None if self.quorum.is_ready() else "catching up on metadata"
        if not self.registered.is_set():
            return "not registered with the controller yet"
        if not self.quorum.is_ready():
            return "catching up on metadata"
        broker = self.quorum.snapshot_state().brokers.get(self.node_id)
        if broker is None or broker.fenced:
            return "catching up on metadata"
        return None

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
        Without ``expected_term`` (an admin write) it is written in the term this node leads
        in, after the term's LeaderChangeRecord (LEADER_NOT_AVAILABLE on a node that does not
        lead).
        """
        if expected_term is None:
            # An admin write: the controller's LeaderChangeRecord comes first in its term, and
            # the write is fenced to that term (controller_driver.py).
            expected_term = await self.controller.lead()
        for attempt in range(2):
            records = plan(self.quorum.snapshot_state())
            if not records:
                return None
            try:
                return await self.quorum.write(
                    records, timeout_s=limits.METADATA_WRITE_TIMEOUT_S, expected_term=expected_term
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

    def controller_address(self) -> tuple[int, str]:
        """The controller (the quorum leader): its id and HTTP address (its controller
        registration's, else its broker registration's), dial override applied."""
        leader = self.quorum.leader_id()
        url = None if leader is None else self.broker_url(leader, dial=True)
        if leader is None or url is None:
            raise ApiError(
                LEADER_NOT_AVAILABLE,
                "no metadata leader is known yet; retry shortly",
                {"retry_after_s": 1},
            )
        return leader, url

    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None, "started"
        return self._http

    async def call_controller(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A broker-to-controller call: in the process when this node leads, else over HTTP."""
        if self.quorum.is_leader():
            if path == "/v1/internal/brokers":
                return await self.controller.register(body)
            if path == "/v1/internal/controllers":
                return await self.controller.register_controller(body)
            if path == "/v1/internal/alter-isr":
                return await self.controller.alter_isr(body)
            if path == "/v1/internal/producer-ids":
                return await self.controller.allocate_producer_ids(body)
            broker_id = int(path.split("/")[4])  # /v1/internal/brokers/<id>/heartbeat
            return await self.controller.heartbeat(broker_id, body)
        controller, url = self.controller_address()
        status, answer, _ = await self.http_call(
            "POST",
            url + path,
            body,
            limits.INTERNAL_HTTP_TIMEOUT_S,
            target_id=controller,
            role="controller",
        )
        if status >= 300 or not isinstance(answer, dict):
            raise ApiError.from_json(answer if isinstance(answer, dict) else {}, status)
        return answer

    async def forward(self, request: web.Request, body: Any) -> web.Response:
        """Relays an admin request to the controller and its answer back (Kafka forwards too)."""
        status, answer = await self.forward_to_controller(request.method, request.path_qs, body)
        if status == 204:
            return web.Response(status=204)
        return web.Response(
            body=orjson.dumps(answer) + b"\n", status=status, content_type="application/json"
        )

    async def forward_to_controller(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """Sends an admin request (``path`` with its query) to the controller, signed as the
        cluster's own, and waits until this node applied the metadata entry its answer names,
        so that what the request wrote is seen here next; (status, JSON answer). The HTTP
        API's forward and the Kafka listener's admin writes both go this way."""
        controller, url = self.controller_address()
        status, answer, headers = await self.http_call(
            method,
            url + path,
            body,
            limits.FORWARD_TIMEOUT_S,
            target_id=controller,
            role="controller",
        )
        index = headers.get(METADATA_INDEX_HEADER, "")
        if index.isascii() and index.isdigit():
            await self.wait_applied(int(index))
        return status, answer

    async def http_call(
        self, method: str, url: str, body: Any, timeout_s: float, *, target_id: int, role: str
    ) -> tuple[int, Any, dict[str, str]]:
        """A node-to-node call to node ``target_id``, signed with the cluster secret: (status,
        JSON answer, headers).
        ``role`` names the peer in the error when it does not answer ("controller", "leader of
        news-0"): LEADER_NOT_AVAILABLE, retriable."""
        assert self._http is not None, "started"
        target = URL(url)
        data = b"" if body is None else orjson.dumps(body)
        headers = {"Content-Type": "application/json", **self.sign(method, target, data, target_id)}
        try:
            async with self._http.request(
                method,
                target,
                data=data if body is not None else None,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                # A 307 (this node's metadata is behind: the target no longer leads) comes back
                # to the caller as the error it is. Followed, it would re-send a call signed
                # for the target to another node (refused), at an address advertised for
                # clients, which a node may not reach (compose: the host's ports).
                allow_redirects=False,
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
                f"the {role} at {target.origin()} did not answer: {why_unanswered(e, timeout_s)}",
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

    async def wait_applied(self, index: int) -> bool:
        """Waits (briefly) until this node has applied metadata entry ``index``, so a client
        reads its own admin write here (describe right after create). Its replicas open
        afterwards, as Kafka's brokers create logs from applied metadata; a produce or fetch
        in that moment waits for them (``ReplicaManager.await_opening``)."""
        return await self.metadata_applied.wait(index, limits.FORWARD_APPLY_WAIT_S)

    # -- metadata reads ------------------------------------------------------------------------

    def topic(self, name: str) -> TopicState:
        return existing_topic(self.quorum.snapshot_state(), name)

    def topic_configs(self, topic: TopicState) -> dict[str, str]:
        return effective_configs(self.config.topic_defaults, topic.configs)

    def broker_url(self, broker_id: int, dial: bool = False) -> str | None:
        """A node's advertised URL: its broker registration's, else (a controller-only node)
        its controller registration's; with ``dial``, the address this node dials it at."""
        if dial and broker_id in self.config.http_dial:
            host, port = self.config.http_dial[broker_id]
            return f"{'https' if self.config.tls else 'http'}://{host}:{port}"
        state = self.quorum.snapshot_state()
        broker = state.brokers.get(broker_id)
        if broker is not None:
            return broker.http_url
        controller = state.controllers.get(broker_id)
        return None if controller is None else controller.http_url

    def next_round_robin(self, topic: str) -> int:
        value = self._round_robin.get(topic, self.rng.randrange(1 << 16))
        self._round_robin[topic] = value + 1
        return value

    def _on_metadata(self, index: int, records: Sequence[MetadataRecord] | None) -> None:
        """Called on the event loop after the quorum applied an entry (None: state replaced).

        An entry applied between :meth:`start`'s ``add_listener`` and its whole read of the
        state comes again after that read: what is done here must be idempotent (both callees
        read the newest state, not the records, and an index only moves forward)."""
        self.metadata_applied.applied(index)
        self.replica_manager.on_metadata(records)

    # -- status --------------------------------------------------------------------------------

    def cluster_view(self) -> dict[str, Any]:
        state = self.quorum.snapshot_state()
        brokers = sorted(state.brokers.values(), key=lambda b: b.id)
        # The voters as the log has them now (kraft/voters.py: a voter added at run time is
        # named once it registered), and the registered controllers (RegisterControllerRecord)
        # that are voters no more (removed with kraft-metadata-quorum remove-controller).
        voter_ids = {
            voter
            for address in self.quorum.voter_addresses()
            if (voter := self.quorum.voter_id(address)) is not None
        }
        controllers = []
        for controller in sorted(voter_ids | set(state.controllers)):
            registered = state.controllers.get(controller)
            url = None if registered is None else registered.http_url
            controllers.append({"id": controller, "url": url, "voter": controller in voter_ids})
        return {
            "cluster_id": self.meta.cluster_id,
            "controller_id": self.quorum.leader_id(),
            "controllers": controllers,
            "brokers": [
                {
                    "id": b.id,
                    "url": b.http_url,
                    "fenced": b.fenced,
                    "alive": not b.fenced,
                    "rack": b.rack,
                }
                for b in brokers
            ],
        }


def classic_settings(groups: GroupSettings) -> ClassicSettings:
    """The classic group protocol's settings of the node's configuration (Kafka's group.*)."""
    return ClassicSettings(
        initial_rebalance_delay_ms=groups.initial_rebalance_delay_ms,
        min_session_timeout_ms=groups.classic_min_session_timeout_ms,
        max_session_timeout_ms=groups.classic_max_session_timeout_ms,
        max_size=groups.max_size,
    )


def why_unanswered(error: BaseException, timeout_s: float) -> str:
    """One short line on why a peer did not answer: the error's type and its first line, not
    the repr of aiohttp's internals (connection keys, SSL contexts: kilobytes)."""
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return f"no answer within {timeout_s:g} s"
    first = str(error).splitlines()[0].strip() if str(error).strip() else ""
    if len(first) > limits.PEER_ERROR_CHARS_MAX:
        first = first[: limits.PEER_ERROR_CHARS_MAX] + "..."
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
