"""The metadata state machine: the cluster's truth, built by applying records in log order.

Theory of operation
-------------------
The state is a pure value: no sockets, threads, clocks or logging. Every node applies the same
entries in the same order, so every node holds the same state (its `digest()` says so). An
entry (a list of records) applies whole or not at all: :meth:`MetadataState.apply_entry`
applies the records to a draft and adopts the draft only when every record was legal. An
illegal record raises :class:`IllegalRecordError`, naming the record, the state it met and the
rule it broke, and the state is unchanged.

The collections a reader gets (`topics`, `brokers`, a topic's `partitions` and `configs`) are
read-only views of maps that are never changed once adopted: a change builds new ones. So
:meth:`MetadataState.copy` is cheap, and a copy is a consistent snapshot that later entries do
not touch. The maps that grow with the cluster (topics by name and by id, ACLs, the index's
sets) are copy-on-write (:mod:`kraft.cow`): a draft forks them and copies only the shards it
writes, so an entry costs what it changes, not what the cluster holds. Their iteration order
is the same on every node (shard by shard), not insertion order. (Within one entry's draft, a
topic's partitions dictionary made by that draft is filled in place: creating a topic of N
partitions costs N, not N squared.)

The controller's index
    The state keeps, as it applies records, what the controller's periodic work needs, so that
    work costs what needs doing and not what the cluster holds: the partitions without a
    leader (:meth:`MetadataState.leaderless`, which the controller elects leaders for), the
    partitions led by another replica than their preferred one
    (:meth:`MetadataState.led_elsewhere`) and how many partitions prefer each broker
    (:meth:`MetadataState.preferred_counts`), which the leader balance reads, and how many
    replicas each broker holds (:meth:`MetadataState.replica_counts`), which the placement of
    new partitions reads to prefer the emptiest brokers. The index is
    derived data: it is not in the snapshot, and a state loaded from one rebuilds it.

Rules (the `rule` of an IllegalRecordError says which one broke)
--------------------------------------------------------------
Brokers
  register_broker   a new broker id, or a re-registration with a larger broker epoch
  fence_broker      the broker is registered at that epoch and not fenced
  unfence_broker    the broker is registered at that epoch and fenced
  unregister_broker the broker is registered at that epoch and no partition lists it among
                    its replicas (its dynamic configs stay, as Kafka's do; its last broker
                    epoch is remembered, so the controller registers the id again above it)
Topics and partitions
  topic             the name and the topic id are both unused
  partition         the topic exists; its number is the topic's partition count (partition
                    numbers are dense from 0); the replicas are registered brokers; a leader
                    is an unfenced broker
  partition_change  the partition exists; afterwards the ISR is within the replicas and the
                    leader is in the ISR or -1; new replicas are registered brokers; a new
                    leader is an unfenced broker; the adding and removing replicas (a move)
                    are within the replicas, disjoint, and leave a target replica. A leader
                    change, or new replicas that drop one while the leader stays (a move's
                    end or cancel), bump the leader epoch by one; every change bumps the
                    partition epoch by one
  remove_topic      the topic exists; its partitions and configs go with it
Configs
  config            a topic config needs the topic; deleting an absent config is a no-op
Producer ids
  producer_ids      the broker is registered at that epoch; the next producer id only grows
ACLs
  acl               the acl id is unused and no ACL says the same (Kafka skips duplicates);
                    ACLs outlive their topic, as Kafka's do
  remove_acl        the ACL exists
register_controller always legal; it replaces the controller's previous registration (Kafka
                    keeps the latest one of each controller id too)
leader_change       always legal; changes nothing (it records who took over the quorum, for
                    the readers of the log: not part of the state, the snapshot or the digest)
no_op               always legal
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Literal

import orjson

from kraft.cow import CowMap, CowSet
from kraft.errors import IllegalRecordError, MetadataRecordError, MetadataSnapshotError
from kraft.limits import SNAPSHOT_BYTES_MAX
from kraft.records import (
    NO_LEADER,
    AclRecord,
    ConfigRecord,
    FenceBrokerRecord,
    LeaderChangeRecord,
    MetadataRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RegisterControllerRecord,
    RemoveAclRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
)

__all__ = [
    "BrokerState",
    "ControllerState",
    "IllegalRecordError",
    "MetadataState",
    "PartitionKey",
    "PartitionState",
    "SNAPSHOT_VERSION",
    "TopicState",
]

SNAPSHOT_VERSION = 1
_EMPTY: Mapping[Any, Any] = MappingProxyType({})

# A partition's identity in the controller's index: (topic id, partition number).
PartitionKey = tuple[str, int]


@dataclass(frozen=True)
class PartitionState:
    """One partition's replicas, ISR, leader (-1: none) and epochs."""

    topic_id: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    # A move in progress (Kafka's KIP-455; docs/design.md, "Reassignment"): `replicas` is then
    # the target followed by the removing replicas; both empty when nothing moves.
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    @property
    def moving(self) -> bool:
        """True while a reassignment of this partition is in progress."""
        return bool(self.adding_replicas or self.removing_replicas)

    def describe(self, topic_name: str) -> str:
        move = ""
        if self.moving:
            move = f", adding {list(self.adding_replicas)}, removing {list(self.removing_replicas)}"
        return (
            f"partition {topic_name}-{self.partition} (replicas {list(self.replicas)}, "
            f"isr {list(self.isr)}, leader {self.leader}, leader epoch {self.leader_epoch}, "
            f"partition epoch {self.partition_epoch}{move})"
        )


@dataclass(frozen=True)
class TopicState:
    """A topic: name, id, partitions by number, configs that differ from the defaults."""

    name: str
    topic_id: str
    partitions: Mapping[int, PartitionState]
    configs: Mapping[str, str]


@dataclass(frozen=True)
class BrokerState:
    """A registered broker; `epoch` is the broker epoch of its latest registration."""

    id: int
    incarnation_id: str
    epoch: int
    http_url: str
    raft_address: str
    fenced: bool
    rack: str | None = None  # Kafka's broker.rack, from the latest registration
    # host:port of its advertised KAFKA listener, from the latest registration (None: none).
    kafka_address: str | None = None

    @classmethod
    def registered(cls, r: RegisterBrokerRecord) -> BrokerState:
        """The broker as its registration record describes it."""
        return cls(
            r.broker_id,
            r.incarnation_id,
            r.broker_epoch,
            r.http_url,
            r.raft_address,
            r.fenced,
            r.rack,
            r.kafka_address,
        )

    def describe(self) -> str:
        fenced = "fenced" if self.fenced else "unfenced"
        return f"broker {self.id} (epoch {self.epoch}, {fenced})"


@dataclass(frozen=True)
class ControllerState:
    """A controller's latest registration: where it serves HTTP and its Raft address."""

    id: int
    incarnation_id: str
    http_url: str
    raft_address: str
    directory_id: str | None = None  # its metadata log directory's id, when it said


class MetadataState:
    """The applied metadata; see the module's docstring for the rules."""

    def __init__(self) -> None:
        self._topics: CowMap[str, TopicState] = CowMap()
        self._topic_names: CowMap[str, str] = CowMap()  # topic id -> name
        self._brokers: dict[int, BrokerState] = {}
        self._controllers: dict[int, ControllerState] = {}
        # The broker epoch of each unregistered broker id's last registration: its next
        # registration takes a larger one (Kafka's broker epochs only grow).
        self._unregistered_epochs: dict[int, int] = {}
        self._broker_configs: dict[str, Mapping[str, str]] = {}
        self._next_producer_id = 0
        self._acls: CowMap[str, AclRecord] = CowMap()  # acl id -> the ACL
        self._applied_index = 0
        self._digest: str | None = None
        # The controller's index (see the module's docstring), by (topic id, partition).
        self._leaderless: CowSet[PartitionKey] = CowSet()
        self._led_elsewhere: CowSet[PartitionKey] = CowSet()
        self._preferred_counts: dict[int, int] = {}  # broker id -> partitions preferring it
        self._replica_counts: dict[int, int] = {}  # broker id -> replicas it holds
        # A draft's own partitions dictionaries (topic name -> dict), filled in place; empty
        # in an adopted state, whose dictionaries are never changed again.
        self._owned_partitions: dict[str, dict[int, PartitionState]] = {}

    # --- Read side -----------------------------------------------------------------------------

    @property
    def topics(self) -> Mapping[str, TopicState]:
        """Topics by name."""
        return MappingProxyType(self._topics)

    def topic_by_id(self, topic_id: str) -> TopicState | None:
        name = self._topic_names.get(topic_id)
        return None if name is None else self._topics[name]

    @property
    def brokers(self) -> Mapping[int, BrokerState]:
        """Registered brokers by id."""
        return MappingProxyType(self._brokers)

    @property
    def controllers(self) -> Mapping[int, ControllerState]:
        """Registered controllers (RegisterControllerRecord) by id."""
        return MappingProxyType(self._controllers)

    @property
    def unregistered_epochs(self) -> Mapping[int, int]:
        """By broker id, of the ids unregistered and not registered again: the broker epoch
        of the id's last registration."""
        return MappingProxyType(self._unregistered_epochs)

    def partitions_listing(self, broker_id: int) -> list[tuple[str, int]]:
        """Every (topic name, partition) whose replicas list ``broker_id`` (a moving
        partition's adding and removing replicas included), sorted. Costs nothing for a
        broker that holds no replica (the replica-count index says so), a scan otherwise."""
        if not self._replica_counts.get(broker_id):
            return []
        return sorted(
            (topic.name, p.partition)
            for topic in self._topics.values()
            for p in topic.partitions.values()
            if broker_id in p.replicas
        )

    @property
    def broker_configs(self) -> Mapping[str, Mapping[str, str]]:
        """Broker configs by resource name: a broker id, or "" for the cluster default."""
        return MappingProxyType(self._broker_configs)

    @property
    def next_producer_id(self) -> int:
        """The first producer id not yet handed out."""
        return self._next_producer_id

    @property
    def acls(self) -> Mapping[str, AclRecord]:
        """ACLs by acl id (the record that created each)."""
        return MappingProxyType(self._acls)

    def leaderless(self) -> frozenset[PartitionKey]:
        """The (topic id, partition) of every partition without a leader."""
        return frozenset(self._leaderless)

    def led_elsewhere(self) -> frozenset[PartitionKey]:
        """The (topic id, partition) of every partition that has a leader other than its
        preferred replica (the first of its replicas)."""
        return frozenset(self._led_elsewhere)

    def preferred_counts(self) -> Mapping[int, int]:
        """By broker id: how many partitions prefer it (list it first among their replicas);
        brokers no partition prefers are absent."""
        return MappingProxyType(self._preferred_counts)

    def replica_counts(self) -> Mapping[int, int]:
        """By broker id: how many partitions list it among their replicas (a moving
        partition's merged list counts); brokers that hold no replica are absent."""
        return MappingProxyType(self._replica_counts)

    def partition(self, key: PartitionKey) -> PartitionState | None:
        """The partition at (topic id, partition), if it exists."""
        topic = self.topic_by_id(key[0])
        return None if topic is None else topic.partitions.get(key[1])

    @property
    def applied_index(self) -> int:
        """The Raft index of the last entry applied (0: none)."""
        return self._applied_index

    def copy(self) -> MetadataState:
        """A snapshot of this state that later changes to it do not touch (cheap)."""
        other = MetadataState.__new__(MetadataState)  # _adopt sets every field
        other._adopt(self)
        return other

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetadataState) and self.to_snapshot() == other.to_snapshot()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"MetadataState(applied_index={self._applied_index}, topics={len(self._topics)}, "
            f"brokers={len(self._brokers)})"
        )

    # --- Write side ----------------------------------------------------------------------------

    def apply(self, record: MetadataRecord) -> None:
        """Apply one record, or raise IllegalRecordError and change nothing."""
        draft = self._draft()
        draft._apply_one(record)
        self._adopt(draft)

    def apply_entry(self, index: int, records: Sequence[MetadataRecord]) -> None:
        """Apply the records of the Raft entry at `index`, all or none.

        Raises IllegalRecordError (state unchanged) for an illegal record. `index` must be
        larger than `applied_index` (a driver bug otherwise: ValueError).
        """
        if index <= self._applied_index:
            raise ValueError(f"entry {index} is not after the applied index {self._applied_index}")
        draft = self._draft()
        for record in records:
            draft._apply_one(record)
        draft._applied_index = index
        self._adopt(draft)

    def _draft(self) -> MetadataState:
        draft = MetadataState.__new__(MetadataState)
        # Forks of what grows with the cluster (a draft copies only the shards it writes) ...
        draft._topics = self._topics.fork()
        draft._topic_names = self._topic_names.fork()
        draft._acls = self._acls.fork()
        draft._leaderless = self._leaderless.fork()
        draft._led_elsewhere = self._led_elsewhere.fork()
        # ... and copies of what grows with the brokers only.
        draft._brokers = dict(self._brokers)
        draft._controllers = dict(self._controllers)
        draft._unregistered_epochs = dict(self._unregistered_epochs)
        draft._broker_configs = dict(self._broker_configs)
        draft._preferred_counts = dict(self._preferred_counts)
        draft._replica_counts = dict(self._replica_counts)
        draft._next_producer_id = self._next_producer_id
        draft._applied_index = self._applied_index
        draft._digest = None
        draft._owned_partitions = {}
        return draft

    def _adopt(self, other: MetadataState) -> None:
        self._topics = other._topics
        self._topic_names = other._topic_names
        self._brokers = other._brokers
        self._controllers = other._controllers
        self._unregistered_epochs = other._unregistered_epochs
        self._broker_configs = other._broker_configs
        self._next_producer_id = other._next_producer_id
        self._acls = other._acls
        self._applied_index = other._applied_index
        self._leaderless = other._leaderless
        self._led_elsewhere = other._led_elsewhere
        self._preferred_counts = other._preferred_counts
        self._replica_counts = other._replica_counts
        self._owned_partitions = {}  # the draft's dictionaries are frozen from now on
        # A draft has no digest yet; a copy shares its source's.
        self._digest = other._digest

    def _apply_one(self, record: MetadataRecord) -> None:
        handler = _HANDLERS.get(type(record))
        if handler is None:
            raise IllegalRecordError(record, "the metadata state", "not a known record type")
        handler(self, record)

    # --- Brokers -------------------------------------------------------------------------------

    def _register_broker(self, r: RegisterBrokerRecord) -> None:
        old = self._brokers.get(r.broker_id)
        if old is not None and r.broker_epoch <= old.epoch:
            raise IllegalRecordError(
                r, old.describe(), "a re-registration needs a larger broker epoch"
            )
        self._brokers[r.broker_id] = BrokerState.registered(r)
        # Not a rule on the epoch (journals written before this memory existed reuse epochs
        # after an unregistration, and must load): the controller's plan picks a larger one.
        self._unregistered_epochs.pop(r.broker_id, None)

    def _broker_at_epoch(self, r: Any, broker_id: int, epoch: int) -> BrokerState:
        broker = self._brokers.get(broker_id)
        if broker is None:
            raise IllegalRecordError(r, "the metadata state", f"broker {broker_id} is unknown")
        if broker.epoch != epoch:
            raise IllegalRecordError(
                r, broker.describe(), f"broker epoch {epoch} is not the current one"
            )
        return broker

    def _set_fenced(self, r: FenceBrokerRecord | UnfenceBrokerRecord, fenced: bool) -> None:
        broker = self._broker_at_epoch(r, r.broker_id, r.broker_epoch)
        if broker.fenced == fenced:
            state = "fenced" if fenced else "unfenced"
            raise IllegalRecordError(r, broker.describe(), f"the broker is already {state}")
        self._brokers[r.broker_id] = replace(broker, fenced=fenced)

    def _fence_broker(self, r: FenceBrokerRecord) -> None:
        self._set_fenced(r, True)

    def _unfence_broker(self, r: UnfenceBrokerRecord) -> None:
        self._set_fenced(r, False)

    def _unregister_broker(self, r: UnregisterBrokerRecord) -> None:
        broker = self._broker_at_epoch(r, r.broker_id, r.broker_epoch)
        # A partition naming an unregistered replica would break the replicas-are-registered
        # rule.
        held = self.partitions_listing(r.broker_id)
        if held:
            name, index = held[0]
            p = self._topics[name].partitions[index]
            raise IllegalRecordError(r, broker.describe(), f"{p.describe(name)} lists the broker")
        del self._brokers[r.broker_id]
        self._unregistered_epochs[r.broker_id] = broker.epoch

    # --- Topics and partitions -----------------------------------------------------------------

    def _topic(self, r: Any, topic_id: str) -> TopicState:
        topic = self.topic_by_id(topic_id)
        if topic is None:
            raise IllegalRecordError(r, "the metadata state", f"no topic has the id {topic_id}")
        return topic

    def _check_registered(self, r: Any, state: str, name: str, ids: Sequence[int]) -> None:
        unknown = [b for b in ids if b not in self._brokers]
        if unknown:
            raise IllegalRecordError(r, state, f"{name} {unknown} are not registered brokers")

    def _check_leader_eligible(self, r: Any, state: str, leader: int) -> None:
        broker = self._brokers.get(leader)
        if broker is None or broker.fenced:
            why = "not registered" if broker is None else "fenced"
            raise IllegalRecordError(r, state, f"the new leader {leader} is {why}")

    def _topic_record(self, r: TopicRecord) -> None:
        if r.name in self._topics:
            raise IllegalRecordError(r, f"topic {r.name}", "a topic with this name exists")
        if r.topic_id in self._topic_names:
            other = self._topic_names[r.topic_id]
            raise IllegalRecordError(r, f"topic {other}", "a topic with this id exists")
        self._topics[r.name] = TopicState(r.name, r.topic_id, _EMPTY, _EMPTY)
        self._topic_names[r.topic_id] = r.name

    def _partition_record(self, r: PartitionRecord) -> None:
        topic = self._topic(r, r.topic_id)
        state = f"topic {topic.name} with {len(topic.partitions)} partitions"
        if r.partition != len(topic.partitions):
            raise IllegalRecordError(
                r, state, f"the next partition number is {len(topic.partitions)} (dense from 0)"
            )
        self._check_registered(r, state, "replicas", r.replicas)
        if r.leader != NO_LEADER:
            self._check_leader_eligible(r, state, r.leader)
        partition = PartitionState(
            r.topic_id,
            r.partition,
            r.replicas,
            r.isr,
            r.leader,
            r.leader_epoch,
            r.partition_epoch,
            r.adding_replicas,
            r.removing_replicas,
        )
        self._replace_partition(topic, partition)

    def _partition_change(self, r: PartitionChangeRecord) -> None:
        topic = self._topic(r, r.topic_id)
        old = topic.partitions.get(r.partition)
        if old is None:
            raise IllegalRecordError(
                r,
                f"topic {topic.name} with {len(topic.partitions)} partitions",
                f"partition {r.partition} does not exist",
            )
        state = old.describe(topic.name)
        replicas = old.replicas if r.replicas is None else r.replicas
        isr = old.isr if r.isr is None else r.isr
        leader = old.leader if r.leader is None else r.leader
        if r.replicas is not None:
            self._check_registered(r, state, "replicas", r.replicas)
        if not set(isr) <= set(replicas):
            raise IllegalRecordError(
                r, state, f"the isr {list(isr)} would not be within the replicas {list(replicas)}"
            )
        if leader != NO_LEADER and leader not in isr:
            raise IllegalRecordError(
                r, state, f"the leader {leader} would be neither -1 nor in the isr {list(isr)}"
            )
        adding = old.adding_replicas if r.adding_replicas is None else r.adding_replicas
        removing = old.removing_replicas if r.removing_replicas is None else r.removing_replicas
        if not set(adding) <= set(replicas) or not set(removing) <= set(replicas):
            raise IllegalRecordError(
                r,
                state,
                f"the adding {list(adding)} and removing {list(removing)} replicas would not "
                f"be within the replicas {list(replicas)}",
            )
        if set(adding) & set(removing) or (removing and len(removing) == len(replicas)):
            raise IllegalRecordError(
                r,
                state,
                f"the adding {list(adding)} and removing {list(removing)} replicas would "
                "overlap or leave no target replica",
            )
        leader_epoch = old.leader_epoch
        if leader != old.leader:
            if leader != NO_LEADER:
                self._check_leader_eligible(r, state, leader)
            leader_epoch += 1
        elif leader != NO_LEADER and replicas_removed(old.replicas, r.replicas):
            # Kafka's bump when a reassignment removes replicas: a removed replica's fetches,
            # sent on the old epoch by a broker that has not applied its removal yet, are then
            # refused, so a log it is about to delete can never count toward the ISR or the HW.
            leader_epoch += 1
        partition = PartitionState(
            old.topic_id,
            old.partition,
            replicas,
            isr,
            leader,
            leader_epoch,
            old.partition_epoch + 1,
            adding,
            removing,
        )
        self._replace_partition(topic, partition)

    def _replace_partition(self, topic: TopicState, partition: PartitionState) -> None:
        partitions = self._owned_partitions.get(topic.name)
        if partitions is None:
            partitions = dict(topic.partitions)
            self._owned_partitions[topic.name] = partitions
            self._topics[topic.name] = TopicState(
                topic.name, topic.topic_id, MappingProxyType(partitions), topic.configs
            )
        old = partitions.get(partition.partition)
        if old is not None:
            self._unindex(old)
        partitions[partition.partition] = partition
        self._index(partition)

    def _index(self, p: PartitionState) -> None:
        key = (p.topic_id, p.partition)
        preferred = p.replicas[0]
        self._preferred_counts[preferred] = self._preferred_counts.get(preferred, 0) + 1
        for broker in p.replicas:
            self._replica_counts[broker] = self._replica_counts.get(broker, 0) + 1
        if p.leader == NO_LEADER:
            self._leaderless.add(key)
        elif p.leader != preferred:
            self._led_elsewhere.add(key)

    def _unindex(self, p: PartitionState) -> None:
        key = (p.topic_id, p.partition)
        preferred = p.replicas[0]
        count = self._preferred_counts[preferred] - 1
        if count:
            self._preferred_counts[preferred] = count
        else:
            del self._preferred_counts[preferred]
        for broker in p.replicas:
            held = self._replica_counts[broker] - 1
            if held:
                self._replica_counts[broker] = held
            else:
                del self._replica_counts[broker]
        self._leaderless.discard(key)
        self._led_elsewhere.discard(key)

    def _remove_topic(self, r: RemoveTopicRecord) -> None:
        topic = self._topic(r, r.topic_id)
        for p in topic.partitions.values():
            self._unindex(p)
        del self._topics[topic.name]
        del self._topic_names[topic.topic_id]
        self._owned_partitions.pop(topic.name, None)

    # --- Configs and producer ids --------------------------------------------------------------

    def _config(self, r: ConfigRecord) -> None:
        if r.resource_type == "topic":
            topic = self._topics.get(r.resource_name)
            if topic is None:
                raise IllegalRecordError(
                    r, "the metadata state", f"no topic is named {r.resource_name}"
                )
            configs = _with_config(topic.configs, r.name, r.value)
            self._topics[topic.name] = TopicState(
                topic.name, topic.topic_id, topic.partitions, configs
            )
        else:
            configs = _with_config(
                self._broker_configs.get(r.resource_name, _EMPTY), r.name, r.value
            )
            if configs:
                self._broker_configs[r.resource_name] = configs
            else:
                self._broker_configs.pop(r.resource_name, None)

    def _producer_ids(self, r: ProducerIdsRecord) -> None:
        self._broker_at_epoch(r, r.broker_id, r.broker_epoch)
        if r.next_producer_id <= self._next_producer_id:
            raise IllegalRecordError(
                r, f"next producer id {self._next_producer_id}", "the next producer id only grows"
            )
        self._next_producer_id = r.next_producer_id

    # --- ACLs ----------------------------------------------------------------------------------

    def _acl(self, r: AclRecord) -> None:
        if r.acl_id in self._acls:
            raise IllegalRecordError(r, f"acl {r.acl_id}", "an ACL with this id exists")
        binding = r.binding()
        for other in self._acls.values():
            if other.binding() == binding:
                raise IllegalRecordError(r, f"acl {other.acl_id}", "an ACL says the same")
        self._acls[r.acl_id] = r

    def _remove_acl(self, r: RemoveAclRecord) -> None:
        if self._acls.pop(r.acl_id, None) is None:
            raise IllegalRecordError(r, "the metadata state", f"no ACL has the id {r.acl_id}")

    def _register_controller(self, r: RegisterControllerRecord) -> None:
        self._controllers[r.controller_id] = ControllerState(
            r.controller_id, r.incarnation_id, r.http_url, r.raft_address, r.directory_id
        )

    def _no_op(self, r: NoOpRecord | LeaderChangeRecord) -> None:
        pass

    # --- Snapshots -----------------------------------------------------------------------------

    def to_snapshot(self) -> bytes:
        """A canonical encoding of the whole state (orjson, sorted keys and lists)."""
        brokers = [_broker_json(b) for b in sorted(self._brokers.values(), key=lambda b: b.id)]
        topics = [
            {
                "name": t.name,
                "topic_id": t.topic_id,
                "configs": dict(t.configs),
                "partitions": [_partition_json(p) for _, p in sorted(t.partitions.items())],
            }
            for _, t in sorted(self._topics.items())
        ]
        broker_configs = [
            {"resource_name": name, "configs": dict(configs)}
            for name, configs in sorted(self._broker_configs.items())
        ]
        top: dict[str, Any] = {
            "v": SNAPSHOT_VERSION,
            "applied_index": self._applied_index,
            "next_producer_id": self._next_producer_id,
            "brokers": brokers,
            "topics": topics,
            "broker_configs": broker_configs,
        }
        if self._acls:
            # Only when there are ACLs, so a cluster without any keeps the snapshot (and the
            # digest) it had before ACLs existed.
            top["acls"] = [
                {k: v for k, v in a.to_json_dict().items() if k not in ("type", "v")}
                for _, a in sorted(self._acls.items())
            ]
        if self._controllers:
            # Only once a controller registered, as the ACLs above.
            top["controllers"] = [
                {
                    "id": c.id,
                    "incarnation_id": c.incarnation_id,
                    "http_url": c.http_url,
                    "raft_address": c.raft_address,
                    # Only when known, so snapshots without directory ids keep their bytes.
                    **({} if c.directory_id is None else {"directory_id": c.directory_id}),
                }
                for c in sorted(self._controllers.values(), key=lambda c: c.id)
            ]
        if self._unregistered_epochs:
            # Only once a broker was unregistered, as the ACLs above.
            top["unregistered_broker_epochs"] = [
                {"id": b, "epoch": e} for b, e in sorted(self._unregistered_epochs.items())
            ]
        return orjson.dumps(top, option=orjson.OPT_SORT_KEYS)

    def digest(self) -> str:
        """sha256 (hex) of `to_snapshot()`: equal on nodes that applied the same entries."""
        if self._digest is None:
            self._digest = hashlib.sha256(self.to_snapshot()).hexdigest()
        return self._digest

    @classmethod
    def from_snapshot(cls, data: bytes) -> MetadataState:
        """The state `to_snapshot()` encoded; MetadataSnapshotError for anything malformed."""
        if len(data) > SNAPSHOT_BYTES_MAX:
            raise MetadataSnapshotError(f"a snapshot of {len(data)} bytes is too large")
        try:
            obj = orjson.loads(data)
            return _state_from_json(obj)
        except orjson.JSONDecodeError as e:
            raise MetadataSnapshotError(f"the snapshot is not JSON: {e}") from None
        except (MetadataRecordError, IllegalRecordError) as e:
            raise MetadataSnapshotError(f"the snapshot breaks a rule: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise MetadataSnapshotError(f"the snapshot is malformed: {e!r}") from None


def _broker_json(b: BrokerState) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": b.id,
        "incarnation_id": b.incarnation_id,
        "epoch": b.epoch,
        "http_url": b.http_url,
        "raft_address": b.raft_address,
        "fenced": b.fenced,
    }
    if b.rack is not None:
        # Only for a broker with a rack, so a cluster without racks keeps its snapshot bytes.
        out["rack"] = b.rack
    if b.kafka_address is not None:
        # Likewise: a cluster without Kafka listeners keeps its snapshot bytes and digest.
        out["kafka_address"] = b.kafka_address
    return out


def _partition_json(p: PartitionState) -> dict[str, Any]:
    out: dict[str, Any] = {
        "partition": p.partition,
        "replicas": p.replicas,
        "isr": p.isr,
        "leader": p.leader,
        "leader_epoch": p.leader_epoch,
        "partition_epoch": p.partition_epoch,
    }
    if p.moving:
        # Only while a move is on, so a cluster that never moves keeps its snapshot and digest.
        out["adding_replicas"] = p.adding_replicas
        out["removing_replicas"] = p.removing_replicas
    return out


def replicas_removed(old: Sequence[int], new: Sequence[int] | None) -> bool:
    """Whether a partition change that sets ``new`` replicas drops any of ``old`` (the
    leader epoch then moves on, as on a leader change)."""
    return new is not None and not set(old) <= set(new)


def _with_config(configs: Mapping[str, str], name: str, value: str | None) -> Mapping[str, str]:
    updated = dict(configs)
    if value is None:
        updated.pop(name, None)
    else:
        updated[name] = value
    return MappingProxyType(updated) if updated else _EMPTY


_HANDLERS: dict[type, Callable[[MetadataState, Any], None]] = {
    RegisterBrokerRecord: MetadataState._register_broker,
    FenceBrokerRecord: MetadataState._fence_broker,
    UnfenceBrokerRecord: MetadataState._unfence_broker,
    UnregisterBrokerRecord: MetadataState._unregister_broker,
    TopicRecord: MetadataState._topic_record,
    PartitionRecord: MetadataState._partition_record,
    PartitionChangeRecord: MetadataState._partition_change,
    RemoveTopicRecord: MetadataState._remove_topic,
    ConfigRecord: MetadataState._config,
    ProducerIdsRecord: MetadataState._producer_ids,
    AclRecord: MetadataState._acl,
    RemoveAclRecord: MetadataState._remove_acl,
    LeaderChangeRecord: MetadataState._no_op,
    RegisterControllerRecord: MetadataState._register_controller,
    NoOpRecord: MetadataState._no_op,
}


def _keys(obj: Any, *names: str) -> dict[str, Any]:
    if type(obj) is not dict or set(obj) != set(names):
        raise ValueError(f"expected an object with the keys {sorted(names)}, got {obj!r:.200}")
    return obj


def _int(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _configs(
    obj: Any, resource_type: Literal["topic", "broker"], resource_name: str
) -> Mapping[str, str]:
    if type(obj) is not dict:
        raise ValueError(f"configs must be an object, got {obj!r:.200}")
    for name, value in obj.items():
        if type(value) is not str:
            raise ValueError(f"config {name} must be a string, got {value!r:.200}")
        ConfigRecord(resource_type, resource_name, name, value)  # checks name and value
    return MappingProxyType(dict(obj)) if obj else _EMPTY


def _state_from_json(obj: Any) -> MetadataState:
    acls = obj.pop("acls", None) if type(obj) is dict else None
    controllers = obj.pop("controllers", None) if type(obj) is dict else None
    unregistered = obj.pop("unregistered_broker_epochs", None) if type(obj) is dict else None
    top = _keys(
        obj, "v", "applied_index", "next_producer_id", "brokers", "topics", "broker_configs"
    )
    if top["v"] != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {top['v']!r} is not {SNAPSHOT_VERSION}")
    state = MetadataState()
    state._applied_index = _int(top["applied_index"], "applied_index")
    state._next_producer_id = _int(top["next_producer_id"], "next_producer_id")
    for b in top["brokers"]:
        rack = kafka_address = None
        if type(b) is dict and ("rack" in b or "kafka_address" in b):
            b = dict(b)
            rack = b.pop("rack", None)
            kafka_address = b.pop("kafka_address", None)
        b = _keys(b, "id", "incarnation_id", "epoch", "http_url", "raft_address", "fenced")
        r = RegisterBrokerRecord(
            b["id"],
            b["incarnation_id"],
            b["epoch"],
            b["http_url"],
            b["raft_address"],
            b["fenced"],
            rack,
            kafka_address,
        )
        if r.broker_id in state._brokers:
            raise ValueError(f"broker {r.broker_id} appears twice")
        state._brokers[r.broker_id] = BrokerState.registered(r)
    for t in top["topics"]:
        t = _keys(t, "name", "topic_id", "configs", "partitions")
        topic = TopicRecord(t["name"], t["topic_id"])
        if topic.name in state._topics or topic.topic_id in state._topic_names:
            raise ValueError(f"topic {topic.name} ({topic.topic_id}) appears twice")
        partitions: dict[int, PartitionState] = {}
        for number, p in enumerate(t["partitions"]):
            move: dict[str, tuple[int, ...]] = {}
            if type(p) is dict and ("adding_replicas" in p or "removing_replicas" in p):
                p = dict(p)
                move = {
                    "adding_replicas": tuple(p.pop("adding_replicas")),
                    "removing_replicas": tuple(p.pop("removing_replicas")),
                }
            p = _keys(
                p, "partition", "replicas", "isr", "leader", "leader_epoch", "partition_epoch"
            )
            pr = PartitionRecord(
                topic.topic_id,
                p["partition"],
                tuple(p["replicas"]),
                tuple(p["isr"]),
                p["leader"],
                p["leader_epoch"],
                p["partition_epoch"],
                **move,
            )
            if pr.partition != number:
                raise ValueError(f"topic {topic.name}: partition {pr.partition} is not {number}")
            state._check_registered(pr, f"topic {topic.name}", "replicas", pr.replicas)
            partitions[number] = PartitionState(
                pr.topic_id,
                pr.partition,
                pr.replicas,
                pr.isr,
                pr.leader,
                pr.leader_epoch,
                pr.partition_epoch,
                pr.adding_replicas,
                pr.removing_replicas,
            )
        state._topics[topic.name] = TopicState(
            topic.name,
            topic.topic_id,
            MappingProxyType(partitions) if partitions else _EMPTY,
            _configs(t["configs"], "topic", topic.name),
        )
        state._topic_names[topic.topic_id] = topic.name
        for partition in partitions.values():
            state._index(partition)
    for c in top["broker_configs"]:
        c = _keys(c, "resource_name", "configs")
        if type(c["resource_name"]) is not str or c["resource_name"] in state._broker_configs:
            raise ValueError(f"broker config resource {c['resource_name']!r} is bad or twice")
        configs = _configs(c["configs"], "broker", c["resource_name"])
        if configs:
            state._broker_configs[c["resource_name"]] = configs
    if acls is not None:
        if type(acls) is not list or not acls:
            raise ValueError(f"acls must be a non-empty list, got {acls!r:.200}")
        for a in acls:
            if type(a) is not dict:
                raise ValueError(f"an acl must be an object, got {a!r:.200}")
            state._acl(AclRecord(**a))
    if controllers is not None:
        if type(controllers) is not list or not controllers:
            raise ValueError(f"controllers must be a non-empty list, got {controllers!r:.200}")
        for c in controllers:
            directory_id = c.pop("directory_id", None) if type(c) is dict else None
            c = _keys(c, "id", "incarnation_id", "http_url", "raft_address")
            rc = RegisterControllerRecord(
                c["id"], c["incarnation_id"], c["http_url"], c["raft_address"], directory_id
            )
            if rc.controller_id in state._controllers:
                raise ValueError(f"controller {rc.controller_id} appears twice")
            state._register_controller(rc)
    if unregistered is not None:
        if type(unregistered) is not list or not unregistered:
            raise ValueError(
                f"unregistered_broker_epochs must be a non-empty list, got {unregistered!r:.200}"
            )
        for u in unregistered:
            u = _keys(u, "id", "epoch")
            broker_id, epoch = _int(u["id"], "a broker id"), _int(u["epoch"], "a broker epoch")
            if broker_id in state._brokers or broker_id in state._unregistered_epochs:
                raise ValueError(f"broker {broker_id} is registered or appears twice")
            state._unregistered_epochs[broker_id] = epoch
    return state
