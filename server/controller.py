"""The controller's decisions, as pure functions from the metadata state to records.

Only the Raft leader runs them, and the quorum applies the records they return; nothing here
does I/O. Each plan validates its request against the state it was given and raises an
:class:`ApiError` naming what is wrong before any record exists, so a refused request writes
nothing. (The state machine checks the records again when it applies them: a plan made on a
state that changed meanwhile cannot break an invariant.)
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from client.protocol import (
    DUPLICATE_BROKER_REGISTRATION,
    FENCED_LEADER_EPOCH,
    INVALID_PARTITIONS,
    INVALID_REPLICA_ASSIGNMENT,
    INVALID_REPLICATION_FACTOR,
    INVALID_REQUEST,
    INVALID_UPDATE_VERSION,
    NO_REASSIGNMENT_IN_PROGRESS,
    STALE_BROKER_EPOCH,
    TOPIC_ALREADY_EXISTS,
    TOPIC_NAME_LENGTH_MAX,
    UNKNOWN_PARTITION,
    UNKNOWN_TOPIC,
    ApiError,
    ErrorKind,
    topic_name_problem,
)
from client.replica_assignment import PlacementError, balanced_assignment
from kraft.errors import MetadataRecordError
from kraft.records import (
    NO_LEADER,
    ConfigRecord,
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from kraft.state import MetadataState, PartitionState, TopicState
from server import limits, reassignment
from server.topic_configs import normalize_configs
from storage.ids import random_uuid

# Kafka's metadata log (ours too: __cluster_metadata-0 in every node's log directory).
CLUSTER_METADATA_TOPIC = "__cluster_metadata"


def place_replicas(
    state: MetadataState,
    partitions: int,
    replication_factor: int,
    *,
    first_partition: int = 0,
    rng: random.Random,
) -> dict[int, tuple[int, ...]]:
    """Where new partitions go: Kafka's placement over the live brokers, rack-aware when
    brokers have a ``broker.rack``, preferring the brokers that hold the fewest replicas
    (:func:`client.replica_assignment.balanced_assignment`; docs/design.md, "Replica
    placement"). The caller has checked the factor against the live brokers."""
    brokers = live_brokers(state)
    racks = {b: state.brokers[b].rack for b in brokers}
    try:
        return balanced_assignment(
            brokers,
            racks,
            state.replica_counts(),
            partitions,
            replication_factor,
            leader_counts=state.preferred_counts(),
            first_partition=first_partition,
            rng=rng,
        )
    except PlacementError as e:  # only for counts the callers already refuse
        raise ApiError(INVALID_REPLICATION_FACTOR, e.message) from None


def live_brokers(state: MetadataState) -> list[int]:
    return sorted(b.id for b in state.brokers.values() if not b.fenced)


def _partition_records(
    topic_id: str, assignment: Mapping[int, tuple[int, ...]], live: Iterable[int]
) -> list[MetadataRecord]:
    """New partitions: as Kafka's buildPartitionRegistration, the ISR is the live replicas (all
    of them when placed by us; a manual assignment may name a fenced broker), led by the first."""
    records: list[MetadataRecord] = []
    live = set(live)
    for p, replicas in sorted(assignment.items()):
        isr = tuple(r for r in replicas if r in live)
        assert isr, f"partition {p}: the plan checked that a replica of {replicas} is live"
        records.append(
            PartitionRecord(
                topic_id=topic_id,
                partition=p,
                replicas=replicas,
                isr=isr,
                leader=isr[0],
                leader_epoch=0,
                partition_epoch=0,
            )
        )
    return records


def manual_assignment(
    state: MetadataState, name: str, raw: object, first_partition: int, factor: int | None
) -> dict[int, tuple[int, ...]]:
    """A replica assignment given by the requester (Kafka's manual partition assignment): a
    list of broker-id lists, the first for partition ``first_partition``, the next for the one
    after. Kafka's checks (validateManualPartitionAssignment), INVALID_REPLICA_ASSIGNMENT: each
    list not empty, no broker twice, only registered brokers, every list as long as ``factor``
    (None: as the first), and some broker of each list live (a fenced one may be named)."""
    problem = "assignments must be a list of replica lists (broker ids), one per new partition"
    if not isinstance(raw, list) or not raw:
        raise ApiError(INVALID_REQUEST, problem)
    if len(raw) > limits.PARTITIONS_PER_TOPIC_MAX:
        raise ApiError(
            INVALID_PARTITIONS,
            f"partitions must be at most {limits.PARTITIONS_PER_TOPIC_MAX}, got {len(raw)}",
        )
    live = set(live_brokers(state))
    out: dict[int, tuple[int, ...]] = {}
    for offset, replicas in enumerate(raw):
        if not isinstance(replicas, list) or not all(
            isinstance(r, int) and not isinstance(r, bool) for r in replicas
        ):
            raise ApiError(INVALID_REQUEST, problem)
        partition = first_partition + offset
        reassignment.check_target(state, name, partition, replicas)
        if factor is None:
            factor = len(replicas)
        elif len(replicas) != factor:
            raise ApiError(
                INVALID_REPLICA_ASSIGNMENT,
                f"The manual partition assignment includes a partition with {len(replicas)} "
                f"replica(s), but this is not consistent with previous partitions, which have "
                f"{factor} replica(s).",
            )
        if not any(r in live for r in replicas):
            raise ApiError(
                INVALID_REPLICA_ASSIGNMENT,
                "All brokers specified in the manual partition assignment for partition "
                f"{partition} are fenced or in controlled shutdown.",
            )
        out[partition] = tuple(replicas)
    return out


def _count(raw: object, what: str, default: int, kind_if_bad: ErrorKind) -> int:
    if raw is None:
        return default
    # A bool is an int to Python, and orjson reads an integer beyond 64 bits as a float whose
    # digits are not the client's: both are refused without quoting them.
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ApiError(INVALID_REQUEST, f"{what} must be an integer (or -1 for the default)")
    if raw == -1:  # Kafka's "use the broker default"
        return default
    if raw < 1:
        raise ApiError(kind_if_bad, f"{what} must be at least 1, got {raw}")
    return raw


def plan_create_topic(
    state: MetadataState,
    name: object,
    partitions: object,
    replication_factor: object,
    configs: object,
    *,
    default_partitions: int,
    default_replication_factor: int,
    rng: random.Random,
    socket_request_max_bytes: int = limits.SOCKET_REQUEST_MAX_BYTES,
    assignments: object = None,
) -> list[MetadataRecord]:
    """The records that create a topic, or an ApiError saying why it cannot be created.
    ``socket_request_max_bytes`` is the node's: ``max.message.bytes`` may not pass it.
    ``assignments`` (None: placed by us) is a manual replica assignment, partition 0 first
    (:func:`manual_assignment`); the count and factor are then left unset (or -1), as Kafka
    requires."""
    if not isinstance(name, str):
        raise ApiError(INVALID_REQUEST, "the topic name must be a string")
    problem = topic_name_problem(name)
    if problem:
        raise ApiError(INVALID_REQUEST, problem)
    if name == CLUSTER_METADATA_TOPIC:
        # Its partition 0 would be the metadata log's own directory (which the replica
        # manager removes as a stray replica of another topic): Kafka refuses it by name.
        raise ApiError(
            INVALID_REQUEST, f"Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited."
        )
    if name in state.topics:
        raise ApiError(TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
    if assignments is not None:
        # Kafka's words; its checks come in this order (ReplicationControlManager.createTopic).
        if replication_factor not in (None, -1):
            raise ApiError(
                INVALID_REQUEST,
                "A manual partition assignment was specified, but replication factor was not "
                "set to -1.",
            )
        if partitions not in (None, -1):
            raise ApiError(
                INVALID_REQUEST,
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            )
        manual = manual_assignment(state, name, assignments, 0, None)
        topic_configs = normalize_configs(
            configs, socket_request_max_bytes=socket_request_max_bytes
        )
        return _topic_records(state, name, manual, topic_configs)
    count = _count(partitions, "partitions", default_partitions, INVALID_PARTITIONS)
    if count > limits.PARTITIONS_PER_TOPIC_MAX:
        raise ApiError(
            INVALID_PARTITIONS,
            f"partitions must be at most {limits.PARTITIONS_PER_TOPIC_MAX}, got {count}",
        )
    factor = _count(
        replication_factor,
        "replication_factor",
        default_replication_factor,
        INVALID_REPLICATION_FACTOR,
    )
    topic_configs = normalize_configs(configs, socket_request_max_bytes=socket_request_max_bytes)
    brokers = live_brokers(state)
    if factor > len(brokers):
        raise ApiError(
            INVALID_REPLICATION_FACTOR,
            f"Replication factor: {factor} larger than available brokers: {len(brokers)}.",
        )
    return _topic_records(state, name, place_replicas(state, count, factor, rng=rng), topic_configs)


def _topic_records(
    state: MetadataState,
    name: str,
    assignment: Mapping[int, tuple[int, ...]],
    topic_configs: Mapping[str, str],
) -> list[MetadataRecord]:
    topic_id = random_uuid()
    records: list[MetadataRecord] = [TopicRecord(name=name, topic_id=topic_id)]
    records += _partition_records(topic_id, assignment, live_brokers(state))
    records += [ConfigRecord("topic", name, k, v) for k, v in sorted(topic_configs.items())]
    return records


def existing_topic(state: MetadataState, name: str) -> TopicState:
    """The topic, or UNKNOWN_TOPIC_OR_PARTITION in Kafka's words."""
    topic = state.topics.get(name)
    if topic is None:
        # Kafka's words; a name longer than any topic's is cut (an 8,000-character path must
        # not come back whole).
        shown = name if len(name) <= TOPIC_NAME_LENGTH_MAX else name[:TOPIC_NAME_LENGTH_MAX] + "..."
        raise ApiError(UNKNOWN_TOPIC, f"Topic '{shown}' does not exist.")
    return topic


def plan_delete_topic(state: MetadataState, name: str) -> list[MetadataRecord]:
    return [RemoveTopicRecord(topic_id=existing_topic(state, name).topic_id)]


def plan_add_partitions(
    state: MetadataState,
    name: str,
    count: object,
    *,
    rng: random.Random,
    assignments: object = None,
) -> list[MetadataRecord]:
    """Grows a topic to ``count`` partitions (Kafka's ``--alter --partitions``), placed by us
    or, with ``assignments``, by the requester: one replica list per new partition
    (:func:`manual_assignment`, at the topic's replication factor)."""
    topic = existing_topic(state, name)
    current = len(topic.partitions)
    if isinstance(count, bool) or not isinstance(count, int):
        raise ApiError(INVALID_REQUEST, "count must be an integer (the new partition count)")
    if count <= current:
        raise ApiError(
            INVALID_PARTITIONS,
            f"Topic currently has {current} partitions, which is higher than or equal to "
            f"the requested {count}.",
        )
    if count > limits.PARTITIONS_PER_TOPIC_MAX:
        raise ApiError(
            INVALID_PARTITIONS,
            f"partitions must be at most {limits.PARTITIONS_PER_TOPIC_MAX}, got {count}",
        )
    factor = len(topic.partitions[0].replicas)
    brokers = live_brokers(state)
    if assignments is not None:
        if isinstance(assignments, list) and len(assignments) != count - current:
            raise ApiError(
                INVALID_REPLICA_ASSIGNMENT,
                f"Attempted to add {count - current} additional partition(s), but only "
                f"{len(assignments)} assignment(s) were specified.",
            )
        manual = manual_assignment(state, name, assignments, current, factor)
        return _partition_records(topic.topic_id, manual, brokers)
    if factor > len(brokers):
        raise ApiError(
            INVALID_REPLICATION_FACTOR,
            f"Replication factor: {factor} larger than available brokers: {len(brokers)}.",
        )
    assignment = place_replicas(state, count - current, factor, first_partition=current, rng=rng)
    return _partition_records(topic.topic_id, assignment, brokers)


def plan_alter_configs(
    state: MetadataState,
    name: str,
    configs: object,
    *,
    socket_request_max_bytes: int = limits.SOCKET_REQUEST_MAX_BYTES,
) -> list[MetadataRecord]:
    """Sets topic configs; a null value removes an override (Kafka's ``--delete-config``).
    ``socket_request_max_bytes`` is the node's: ``max.message.bytes`` may not pass it."""
    topic = existing_topic(state, name)
    if not isinstance(configs, dict) or not configs:
        raise ApiError(INVALID_REQUEST, 'give "configs": {name: value, ...} with at least one')
    removals = sorted(k for k, v in configs.items() if v is None)
    sets = normalize_configs(
        {k: v for k, v in configs.items() if v is not None},
        socket_request_max_bytes=socket_request_max_bytes,
        # Kafka checks the config the topic would have: the overrides that stay count too.
        existing={k: v for k, v in topic.configs.items() if k not in removals},
    )
    for key in removals:
        if key not in topic.configs:
            raise ApiError(INVALID_REQUEST, f"config {key} is not set on topic {name}")
    records: list[MetadataRecord] = [ConfigRecord("topic", name, k, v) for k, v in sets.items()]
    records += [ConfigRecord("topic", name, k, None) for k in removals]
    return records


# -- the broker lifecycle ------------------------------------------------------------------------


def plan_register_broker(
    state: MetadataState,
    broker_id: int,
    incarnation_id: str,
    http_url: str,
    raft_address: str,
    *,
    session_alive: bool,
    rack: str | None = None,
    kafka_address: str | None = None,
) -> list[MetadataRecord]:
    """A (re)registration, fenced until the broker has caught up on metadata; ``rack`` is
    the broker's broker.rack (None: none) and ``kafka_address`` the host:port of its
    advertised KAFKA listener (None: none), which a re-registration may change.

    A live broker of the same id but another incarnation (another process started with the
    same ``node.id``) is refused, as Kafka refuses a duplicate registration.

    Broker epochs only grow, per id (Kafka's are the registration record's offset): the
    first registration of an id takes 0, each later one the previous epoch plus one, also
    after the id was unregistered (the state remembers its last epoch), so a request made
    under an earlier registration never matches a later one.
    """
    previous = state.brokers.get(broker_id)
    if (
        previous is not None
        and previous.incarnation_id != incarnation_id
        and not previous.fenced
        and session_alive
    ):
        raise ApiError(
            DUPLICATE_BROKER_REGISTRATION,
            f"node.id: another node with id {broker_id} is registered and alive "
            f"(at {previous.http_url}); every node needs its own node.id",
        )
    last = state.unregistered_epochs.get(broker_id) if previous is None else previous.epoch
    epoch = 0 if last is None else last + 1
    try:
        record = RegisterBrokerRecord(
            broker_id=broker_id,
            incarnation_id=incarnation_id,
            broker_epoch=epoch,
            http_url=http_url,
            raft_address=raft_address,
            fenced=True,
            rack=rack,
            kafka_address=kafka_address,
        )
    except MetadataRecordError as e:  # an empty or overlong rack, a URL that is no URL
        raise ApiError(INVALID_REQUEST, f"registration of broker {broker_id}: {e}") from None
    return [record]


def _live(state: MetadataState) -> set[int]:
    return {b.id for b in state.brokers.values() if not b.fenced}


def plan_fence_broker(state: MetadataState, broker_id: int) -> list[MetadataRecord]:
    """Fences a broker whose session ended, and in the same entry takes it out of every ISR
    and moves the leadership of its partitions to another in-sync replica.

    As in Kafka (KIP-841), the last member of an ISR stays in it: the partition then has no
    leader until that replica comes back, since electing a replica outside the ISR could
    lose acknowledged records (unclean election is off).
    """
    broker = state.brokers.get(broker_id)
    if broker is None or broker.fenced:
        return []
    live = _live(state) - {broker_id}
    records: list[MetadataRecord] = [FenceBrokerRecord(broker_id, broker.epoch)]
    for topic in state.topics.values():
        for p in topic.partitions.values():
            if broker_id not in p.isr and p.leader != broker_id:
                continue
            isr = tuple(r for r in p.isr if r != broker_id) or p.isr
            # The fenced leader is not live: the builder elects another, or none.
            record = reassignment.build_change(p, live, isr=isr)
            if record is not None:
                records.append(record)
    return records


def _leaderless(state: MetadataState) -> list[PartitionState]:
    """The partitions without a leader, from the state's index (not a scan of every
    partition), in (topic id, partition) order so that every plan is deterministic."""
    found = (state.partition(key) for key in sorted(state.leaderless()))
    return [p for p in found if p is not None]


def plan_unfence_broker(state: MetadataState, broker_id: int) -> list[MetadataRecord]:
    """Unfences a broker that caught up on metadata, and makes it the leader of the
    partitions that have none and whose ISR it is in."""
    broker = state.brokers.get(broker_id)
    if broker is None or not broker.fenced:
        return []
    records: list[MetadataRecord] = [UnfenceBrokerRecord(broker_id, broker.epoch)]
    for p in _leaderless(state):
        if broker_id in p.isr:
            records.append(PartitionChangeRecord(p.topic_id, p.partition, leader=broker_id))
    return records


def plan_elect_leaderless(state: MetadataState) -> list[MetadataRecord]:
    """Leaders for partitions that have none but have a live replica in their ISR. Costs
    what the leaderless partitions are, not what the cluster holds: the controller runs it
    every tick."""
    leaderless = _leaderless(state)
    if not leaderless:
        return []
    live = _live(state)
    records: list[MetadataRecord] = []
    for p in leaderless:
        leader = reassignment.elect_leader(p.replicas, p.isr, live)
        if leader != NO_LEADER:
            records.append(PartitionChangeRecord(p.topic_id, p.partition, leader=leader))
    return records


# -- preferred-leader election ------------------------------------------------------------------

# What a preferred election did to one partition. Kafka reports the last two as the errors
# ELECTION_NOT_NEEDED and PREFERRED_LEADER_NOT_AVAILABLE.
ELECTED = "elected"
ALREADY_PREFERRED = "already_preferred"
PREFERRED_NOT_AVAILABLE = "preferred_not_available"


@dataclass(frozen=True)
class ElectionOutcome:
    """One partition's outcome: ``leader`` is its leader once the plan's records apply."""

    topic: str
    partition: int
    outcome: str
    leader: int
    preferred: int

    def __post_init__(self) -> None:
        assert self.outcome in (ELECTED, ALREADY_PREFERRED, PREFERRED_NOT_AVAILABLE), self
        assert (self.outcome == PREFERRED_NOT_AVAILABLE) == (self.leader != self.preferred), self


def _elect_preferred(
    topic: str, p: PartitionState, live: set[int]
) -> tuple[PartitionChangeRecord | None, ElectionOutcome]:
    preferred = p.replicas[0]
    if p.leader == preferred:
        return None, ElectionOutcome(topic, p.partition, ALREADY_PREFERRED, p.leader, preferred)
    # Only a live replica in the ISR holds every committed record: anything else would be
    # an unclean election, which is off.
    if preferred not in live or preferred not in p.isr:
        return None, ElectionOutcome(
            topic, p.partition, PREFERRED_NOT_AVAILABLE, p.leader, preferred
        )
    record = PartitionChangeRecord(p.topic_id, p.partition, leader=preferred)
    return record, ElectionOutcome(topic, p.partition, ELECTED, preferred, preferred)


def plan_preferred_elections(
    state: MetadataState, partitions: Iterable[tuple[str, int]] | None
) -> tuple[list[MetadataRecord], list[ElectionOutcome]]:
    """Kafka's PREFERRED election: moves each partition's leadership to its preferred
    replica (the first of its replicas) where that replica is live and in the ISR.

    ``partitions`` names (topic, partition) pairs, or None for every partition of every
    topic. An unknown topic or partition, or one named twice, refuses the whole request
    before any record exists. Returns the records (one PartitionChangeRecord per elected
    partition: the leader epoch goes up as at any leader change) and every partition's
    outcome, in the order asked (by topic name and partition for all of them).
    """
    if partitions is None:
        wanted = [
            (name, index)
            for name in sorted(state.topics)
            for index in sorted(state.topics[name].partitions)
        ]
    else:
        wanted = list(partitions)
        seen: set[tuple[str, int]] = set()
        for name, index in wanted:
            if (name, index) in seen:
                raise ApiError(INVALID_REQUEST, f"partition {name}-{index} is named twice")
            seen.add((name, index))
            if index not in existing_topic(state, name).partitions:
                raise ApiError(
                    UNKNOWN_PARTITION, f"Partition {index} of topic '{name}' does not exist."
                )
    live = _live(state)
    records: list[MetadataRecord] = []
    outcomes: list[ElectionOutcome] = []
    for name, index in wanted:
        record, outcome = _elect_preferred(name, state.topics[name].partitions[index], live)
        if record is not None:
            records.append(record)
        outcomes.append(outcome)
    return records, outcomes


def imbalanced_partitions(state: MetadataState) -> dict[int, tuple[int, list[tuple[str, int]]]]:
    """Per broker: how many partitions prefer it (it is their first replica), and those of
    them that another broker leads, by topic name and partition. A partition with no leader
    is left out: it is not led by another broker, and ``plan_elect_leaderless`` gives it one.
    Read from the state's index: costs what is led elsewhere, not what the cluster holds."""
    elsewhere: dict[int, list[tuple[str, int]]] = {}
    for key in state.led_elsewhere():
        topic = state.topic_by_id(key[0])
        assert topic is not None, f"the index names a partition of a topic that is gone: {key}"
        elsewhere.setdefault(topic.partitions[key[1]].replicas[0], []).append((topic.name, key[1]))
    return {
        broker: (count, sorted(elsewhere.get(broker, [])))
        for broker, count in sorted(state.preferred_counts().items())
    }


def plan_leader_rebalance(
    state: MetadataState, imbalance_per_broker_percentage: int
) -> tuple[list[MetadataRecord], list[ElectionOutcome]]:
    """Kafka's ``auto.leader.rebalance.enable`` check: for each broker whose share of
    preferred partitions led elsewhere is above ``imbalance_per_broker_percentage``, a
    preferred election of those partitions (each only where the broker is live and in the
    ISR). Returns the records and the outcomes of the partitions it tried."""
    wanted: list[tuple[str, int]] = []
    for _broker, (count, elsewhere) in sorted(imbalanced_partitions(state).items()):
        if elsewhere and 100 * len(elsewhere) > imbalance_per_broker_percentage * count:
            wanted += elsewhere
    if not wanted:
        return [], []
    return plan_preferred_elections(state, wanted)


def plan_producer_id_block(
    state: MetadataState, broker_id: int, broker_epoch: int, block_size: int
) -> list[MetadataRecord]:
    """Hands the next block of producer ids to a broker (Kafka's AllocateProducerIds)."""
    broker = state.brokers.get(broker_id)
    if broker is None or broker.epoch != broker_epoch:
        raise ApiError(
            STALE_BROKER_EPOCH, f"broker {broker_id} at epoch {broker_epoch} is not registered"
        )
    return [ProducerIdsRecord(broker_id, broker_epoch, state.next_producer_id + block_size)]


def plan_alter_isr(
    state: MetadataState,
    topic_id: str,
    partition: int,
    leader: int,
    leader_epoch: int,
    isr: tuple[int, ...],
    partition_epoch: int | None = None,
) -> list[MetadataRecord]:
    """A leader's request to change its ISR (Kafka's AlterPartition), checked against the
    metadata: only the current leader at its current epoch may ask, based on the partition's
    current state (its partition epoch: a request made before another change, say one that
    was applied but whose answer was lost, is refused), the ISR keeps the leader and stays
    within the replicas, and only live brokers join it."""
    topic = state.topic_by_id(topic_id)
    p = None if topic is None else topic.partitions.get(partition)
    if p is None:
        raise ApiError(UNKNOWN_PARTITION, f"partition {partition} of topic id {topic_id} is gone")
    if p.leader != leader or p.leader_epoch != leader_epoch:
        raise ApiError(
            FENCED_LEADER_EPOCH,
            f"node {leader} at leader epoch {leader_epoch} does not lead partition {partition} "
            f"(leader {p.leader}, epoch {p.leader_epoch})",
        )
    if partition_epoch is not None and partition_epoch != p.partition_epoch:
        raise ApiError(
            INVALID_UPDATE_VERSION,
            f"partition {partition} is at partition epoch {p.partition_epoch}, "
            f"not {partition_epoch}: the change was made on an older state",
        )
    if leader not in isr or not set(isr) <= set(p.replicas) or len(set(isr)) != len(isr):
        raise ApiError(
            INVALID_REQUEST, f"ISR {list(isr)} must hold the leader, within the replicas"
        )
    live = _live(state)
    joining = set(isr) - set(p.isr)
    if not joining <= live:
        raise ApiError(INVALID_REQUEST, f"brokers {sorted(joining - live)} are fenced")
    # The ISR change that brings the last adding replica in completes a move in the same
    # record (server/reassignment.py), as Kafka's PartitionChangeBuilder does.
    record = reassignment.build_change(p, live, isr=tuple(isr))
    return [] if record is None else [record]


def plan_alter_isrs(
    state: MetadataState,
    leader: int,
    items: Sequence[tuple[str, int, int, tuple[int, ...], int | None]],
) -> tuple[list[MetadataRecord], dict[int, ApiError]]:
    """:func:`plan_alter_isr` for many partitions at once: the records of the valid changes,
    and the error of each refused one by its position."""
    records: list[MetadataRecord] = []
    refused: dict[int, ApiError] = {}
    for n, (topic_id, partition, leader_epoch, isr, partition_epoch) in enumerate(items):
        try:
            records += plan_alter_isr(
                state, topic_id, partition, leader, leader_epoch, isr, partition_epoch
            )
        except ApiError as e:
            refused[n] = e
    return records, refused


# -- partition reassignment (Kafka's KIP-455; the rules are in server/reassignment.py) ----------


@dataclass(frozen=True)
class ReassignmentOutcome:
    """One partition's answer to ``POST /v1/reassignments``: ``error`` is None on success."""

    topic: str
    partition: int
    error: ApiError | None = None


def plan_alter_reassignments(
    state: MetadataState, requests: Sequence[reassignment.ReassignmentRequest]
) -> tuple[list[MetadataRecord], list[ReassignmentOutcome]]:
    """Kafka's alterPartitionReassignments: starts, replaces or cancels (replicas None) the
    move of each partition. Every entry is checked first (an unknown topic or partition, an
    empty replica list, a repeated or unregistered broker, a cancel or replace that needs an
    unclean election) and any failure raises before a record exists. A cancel of a partition
    that is not moving is the one per-partition failure (NO_REASSIGNMENT_IN_PROGRESS). A
    target equal to the replicas of a partition that is not moving writes nothing."""
    live = _live(state)
    for r in requests:
        if r.partition not in existing_topic(state, r.topic).partitions:
            raise ApiError(
                UNKNOWN_PARTITION, f"Partition {r.partition} of topic '{r.topic}' does not exist."
            )
        if r.replicas is not None:
            reassignment.check_target(state, r.topic, r.partition, r.replicas)
    records: list[MetadataRecord] = []
    outcomes: list[ReassignmentOutcome] = []
    for r in requests:
        p = state.topics[r.topic].partitions[r.partition]
        if r.replicas is None:
            if not p.moving:
                error = ApiError(
                    NO_REASSIGNMENT_IN_PROGRESS,
                    f"no reassignment of {r.topic}-{r.partition} is in progress",
                )
                outcomes.append(ReassignmentOutcome(r.topic, r.partition, error))
                continue
            record = reassignment.plan_cancel(r.topic, p, live)
        else:
            record = reassignment.plan_move(r.topic, p, r.replicas, live)
        if record is not None:
            records.append(record)
        outcomes.append(ReassignmentOutcome(r.topic, r.partition))
    return records, outcomes


def list_reassignments(state: MetadataState, topic: str | None = None) -> list[dict[str, object]]:
    """Kafka's listPartitionReassignments: the moving partitions (of ``topic`` only, if
    given; an unknown topic has none), by topic name and partition."""
    names = sorted(state.topics) if topic is None else [topic] if topic in state.topics else []
    return [
        reassignment.describe(name, p)
        for name in names
        for _, p in sorted(state.topics[name].partitions.items())
        if p.moving
    ]
