"""The node: one process that is a controller (a Raft voter) and a broker (it stores replicas).

Wiring, in start order:

1. the metadata quorum (``kraft/quorum.py``) over ``__cluster_metadata-0/``;
2. the log manager over the partition directories (group commit, checkpoints, retention);
3. the HTTP API (``server/http_api.py``);
4. registration: once the quorum has a leader, the controller records this broker, and the
   node reconciles its directories with the metadata (creates what it hosts, deletes what was
   deleted while it was away). Only then does ``/v1/health/ready`` answer 200.

Metadata flows one way: the quorum applies records on its own thread and notifies the event
loop, which reconciles the partitions this node hosts. Admin requests become records through
the pure plans of ``server/controller.py`` and are written through the quorum.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from client.protocol import (
    LEADER_NOT_AVAILABLE,
    REQUEST_TIMED_OUT,
    UNKNOWN_PARTITION,
    UNKNOWN_TOPIC,
    ApiError,
)
from kraft.quorum import MetadataQuorum, NotControllerError, QuorumError
from kraft.records import (
    ConfigRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from kraft.state import IllegalRecordError, MetadataState, TopicState
from server import limits
from server.config import NodeConfig
from server.log_manager import LogManager
from server.partition import LeaderState, Partition
from server.topic_configs import effective_configs
from storage.log_config import LogConfig
from storage.properties import MetaProperties

log = logging.getLogger(__name__)

Plan = Callable[[MetadataState], list[MetadataRecord]]


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
        self.registered = asyncio.Event()
        self.rng = random.Random()
        self._round_robin: dict[str, int] = {}
        self._topic_names: dict[str, str] = {}  # topic id -> name, of the topics hosted here
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.quorum.add_listener(self._on_metadata)
        self.quorum.start(loop)
        self.logs.start(self.config.retention_check_interval_ms)
        self._tasks.append(asyncio.create_task(self._register(), name="register"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for partition in self.logs.partitions.values():
            partition.notify()
        await self.logs.close()
        self.quorum.stop()

    async def _register(self) -> None:
        """Registers this broker with the controller, then reconciles local directories."""
        while True:
            try:
                await self.quorum.wait_ready(timeout_s=5.0)
                break
            except QuorumError as e:
                log.warning("metadata quorum not ready yet: %s", e)
        while not self.registered.is_set():
            try:
                await self.write_metadata(self._registration_plan)
            except ApiError as e:
                log.warning("broker registration failed, retrying: %s", e.message)
                await asyncio.sleep(1.0)
                continue
            broker = self.quorum.snapshot_state().brokers.get(self.node_id)
            if broker is not None and broker.incarnation_id == self.incarnation_id:
                self.reconcile_all()
                self.registered.set()
                log.info("node %d registered and serving", self.node_id)

    def _registration_plan(self, state: MetadataState) -> list[MetadataRecord]:
        previous = state.brokers.get(self.node_id)
        epoch = 0 if previous is None else previous.epoch + 1
        return [
            RegisterBrokerRecord(
                broker_id=self.node_id,
                incarnation_id=self.incarnation_id,
                broker_epoch=epoch,
                http_url=self.config.advertised_http_url,
                raft_address=self.config.raft_address,
                fenced=True,
            ),
            UnfenceBrokerRecord(broker_id=self.node_id, broker_epoch=epoch),
        ]

    @property
    def ready(self) -> bool:
        return self.registered.is_set() and self.quorum.is_ready()

    # -- metadata writes -----------------------------------------------------------------------

    async def write_metadata(self, plan: Plan) -> list[MetadataRecord]:
        """Plans on the current state and writes the records; returns them once applied here.

        A plan made on a state that changed before its records were applied (a concurrent
        request) is rejected by the state machine; it is then planned once more, on the new
        state, where it either raises its proper error (say TOPIC_ALREADY_EXISTS) or succeeds.
        """
        for attempt in range(2):
            term = self.quorum.current_term()
            records = plan(self.quorum.snapshot_state())
            if not records:
                return []
            try:
                await self.quorum.write(
                    records, timeout_s=limits.METADATA_WRITE_TIMEOUT_S, expected_term=term
                )
                return records
            except IllegalRecordError:
                if attempt:
                    raise
            except NotControllerError as e:
                raise ApiError(
                    LEADER_NOT_AVAILABLE,
                    f"this node is not the metadata leader (leader: {e.leader_id}); "
                    "send admin requests to the leader",
                    {"retry_after_s": 1},
                ) from None
            except QuorumError as e:
                raise ApiError(
                    REQUEST_TIMED_OUT,
                    f"the metadata write did not commit: {e}; it may or may not have happened",
                ) from None
        raise AssertionError("unreachable")

    # -- metadata reads ------------------------------------------------------------------------

    def topic(self, name: str) -> TopicState:
        topic = self.quorum.snapshot_state().topics.get(name)
        if topic is None:
            raise ApiError(UNKNOWN_TOPIC, f"Topic '{name}' does not exist.")
        return topic

    def topic_configs(self, topic: TopicState) -> dict[str, str]:
        return effective_configs(self.config.topic_defaults, topic.configs)

    def broker_url(self, broker_id: int) -> str | None:
        broker = self.quorum.snapshot_state().brokers.get(broker_id)
        return None if broker is None else broker.http_url

    def partition(self, topic_name: str, index: int) -> Partition:
        """The local replica of a partition, or the error a client should see."""
        topic = self.topic(topic_name)
        if index not in topic.partitions:
            raise ApiError(
                UNKNOWN_PARTITION,
                f"partition {index} of topic '{topic_name}' does not exist "
                f"(it has {len(topic.partitions)})",
            )
        partition = self.logs.partitions.get((topic_name, index))
        if partition is None:
            leader = topic.partitions[index].leader
            url = self.broker_url(leader) if leader >= 0 else None
            raise ApiError(
                LEADER_NOT_AVAILABLE if url is None else UNKNOWN_PARTITION,
                f"partition {topic_name}-{index} is not hosted on node {self.node_id}"
                + (f"; its leader is node {leader} at {url}" if url else ""),
                {"retry_after_s": 1} if url is None else {},
            )
        return partition

    def next_round_robin(self, topic: str) -> int:
        value = self._round_robin.get(topic, self.rng.randrange(1 << 16))
        self._round_robin[topic] = value + 1
        return value

    # -- reconciliation ------------------------------------------------------------------------

    def _on_metadata(self, index: int, records: Sequence[MetadataRecord] | None) -> None:
        """Called on the event loop after the quorum applied an entry (None: state replaced)."""
        if not self.registered.is_set():
            return  # reconcile_all runs once registration is done
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
                name = self._topic_names.get(record.topic_id) or (topic and topic.name)
                if name:
                    names.add(name)
        if names:
            self.reconcile(names, state)

    def reconcile_all(self) -> None:
        """Makes every local replica match the metadata (at start, and after a snapshot)."""
        state = self.quorum.snapshot_state()
        names = set(state.topics) | {name for name, _ in self.logs.partitions}
        names |= {name for name, _ in self.logs.on_disk()}
        self.reconcile(names, state)

    def reconcile(self, names: set[str], state: MetadataState | None = None) -> None:
        """Makes the local replicas of the named topics match the metadata: open them, update
        what the metadata says of them, or delete them (the topic, or this replica, is gone)."""
        state = state or self.quorum.snapshot_state()
        on_disk = self.logs.on_disk()
        for name in names:
            topic = state.topics.get(name)
            wanted = set() if topic is None else self._reconcile_topic(topic)
            local = {key for key in (*self.logs.partitions, *on_disk) if key[0] == name}
            for key in local - wanted:
                self.logs.delete_partition(*key)

    def _reconcile_topic(self, topic: TopicState) -> set[tuple[str, int]]:
        configs = self.topic_configs(topic)
        log_config = LogConfig.from_topic_configs(configs)
        min_isr = int(configs["min.insync.replicas"])
        hosted: set[tuple[str, int]] = set()
        for index, p in topic.partitions.items():
            if self.node_id not in p.replicas:
                continue
            hosted.add((topic.name, index))
            state = LeaderState(p.leader, p.leader_epoch, tuple(p.replicas), tuple(p.isr))
            partition = self.logs.partitions.get((topic.name, index))
            if partition is not None and partition.topic_id != topic.topic_id:
                self.logs.delete_partition(topic.name, index)  # a deleted namesake's replica
                partition = None
            if partition is None:
                self.logs.open_partition(
                    topic.name, topic.topic_id, index, state, log_config, min_isr
                )
                self._topic_names[topic.topic_id] = topic.name
                continue
            partition.min_insync_replicas = min_isr
            if partition.log.config != log_config:
                partition.log.update_config(log_config)
            if partition.state != state:
                partition.state = state
                partition.on_flushed()  # the ISR may have changed, and the HW with it
                partition.notify()
        return hosted

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


def now_ms() -> int:
    return int(time.time() * 1000)
