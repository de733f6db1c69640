"""The cluster as Kafka's Metadata answer describes it, built from the metadata state: pure.

Kafka's rules (KRaftMetadataCache), for the KAFKA listener:

- brokers: the registered, unfenced brokers that advertise a KAFKA listener (a broker without
  one is left out: a Kafka client could not dial it), by id, with their rack;
- a partition's leader: its id when the leader advertises a KAFKA listener, else -1 with
  LEADER_NOT_AVAILABLE (no leader) or LISTENER_NOT_FOUND (a leader without the listener);
- offline replicas: those on brokers that are unregistered, fenced or without the listener;
- the replicas and ISR as the metadata says (Metadata v0 alone filters them to the brokers
  listed, and answers REPLICA_NOT_AVAILABLE when that drops one, as Kafka does for v0);
- topic ids as Kafka's Uuid (our base64 text), ``is_internal`` for ``__consumer_offsets``.

Values are plain (dicts and lists); :func:`server.kafka.entities.build` makes the response of
the request's version from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kio.schema.errors import ErrorCode

from kraft.records import ACL_RESOURCE_OPERATIONS
from kraft.state import BrokerState, MetadataState, PartitionState, TopicState
from server.auto_topics import INTERNAL_TOPICS

# Kafka's "authorized operations not asked for" (MetadataResponse: Integer.MIN_VALUE).
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)
# Kafka's AclOperation codes: an authorized-operations field has bit ``code`` set for each
# operation the requester may do.
ACL_OPERATION_CODES: dict[str, int] = {
    "READ": 3,
    "WRITE": 4,
    "CREATE": 5,
    "DELETE": 6,
    "ALTER": 7,
    "DESCRIBE": 8,
    "CLUSTER_ACTION": 9,
    "DESCRIBE_CONFIGS": 10,
    "ALTER_CONFIGS": 11,
    "IDEMPOTENT_WRITE": 12,
}
# The operations each resource type supports (Kafka's AclEntry.supportedOperations): the
# bits its authorized operations can have. They are the ACL model's, plus CLUSTER_ACTION on the
# cluster, which no ACL of ours grants (only super users, as brokers are in Kafka, have it).
TOPIC_OPERATIONS = ACL_RESOURCE_OPERATIONS["TOPIC"]
CLUSTER_OPERATIONS = ACL_RESOURCE_OPERATIONS["CLUSTER"] | {"CLUSTER_ACTION"}
GROUP_OPERATIONS = ACL_RESOURCE_OPERATIONS["GROUP"]


def host_port(address: str) -> tuple[str, int]:
    """(host, port) of a registration's ``host:port`` (checked when it was registered)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def kafka_brokers(state: MetadataState) -> dict[int, BrokerState]:
    """The brokers Kafka's clients are told of: unfenced, with a KAFKA listener, by id."""
    return {
        b.id: b
        for b in sorted(state.brokers.values(), key=lambda b: b.id)
        if not b.fenced and b.kafka_address is not None
    }


def broker_entries(brokers: dict[int, BrokerState]) -> list[dict[str, Any]]:
    """Metadata's (and Produce's and Fetch's node_endpoints) broker entries."""
    out = []
    for b in brokers.values():
        assert b.kafka_address is not None
        host, port = host_port(b.kafka_address)
        out.append({"node_id": b.id, "host": host, "port": port, "rack": b.rack})
    return out


def endpoint_of(state: MetadataState, broker_id: int) -> dict[str, Any] | None:
    """One broker's Kafka endpoint (a node_endpoints entry), registered or not fenced alike;
    None when it has no KAFKA listener or is not registered."""
    broker = state.brokers.get(broker_id)
    if broker is None or broker.kafka_address is None:
        return None
    host, port = host_port(broker.kafka_address)
    return {"node_id": broker.id, "host": host, "port": port, "rack": broker.rack}


def partition_entry(
    state: MetadataState,
    partition: PartitionState,
    brokers: dict[int, BrokerState],
    *,
    filter_replicas: bool = False,
) -> dict[str, Any]:
    """One partition of a Metadata answer (module docstring); ``filter_replicas`` for v0."""
    replicas = list(partition.replicas)
    isr = list(partition.isr)
    offline = [
        r
        for r in replicas
        if (b := state.brokers.get(r)) is None or b.fenced or b.kafka_address is None
    ]
    error = ErrorCode.none
    leader = partition.leader
    leader_broker = state.brokers.get(leader) if leader >= 0 else None
    if leader_broker is None:
        error, leader = ErrorCode.leader_not_available, -1
    elif leader_broker.kafka_address is None:
        error, leader = ErrorCode.listener_not_found, -1
    if filter_replicas:
        shown = [r for r in replicas if r in brokers]
        shown_isr = [r for r in isr if r in brokers]
        if error is ErrorCode.none and (len(shown) < len(replicas) or len(shown_isr) < len(isr)):
            error = ErrorCode.replica_not_available
        replicas, isr = shown, shown_isr
    return {
        "error_code": error,
        "partition_index": partition.partition,
        "leader_id": leader,
        "leader_epoch": partition.leader_epoch,
        "replica_nodes": replicas,
        "isr_nodes": isr,
        "offline_replicas": offline,
    }


def topic_entry(
    state: MetadataState,
    topic: TopicState,
    brokers: dict[int, BrokerState],
    *,
    authorized_operations: int = AUTHORIZED_OPERATIONS_OMITTED,
    filter_replicas: bool = False,
) -> dict[str, Any]:
    """One topic of a Metadata answer, its partitions in order."""
    return {
        "error_code": ErrorCode.none,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": topic.name in INTERNAL_TOPICS,
        "partitions": [
            partition_entry(state, p, brokers, filter_replicas=filter_replicas)
            for _, p in sorted(topic.partitions.items())
        ],
        "topic_authorized_operations": authorized_operations,
    }


def topic_error(error: ErrorCode, name: str | None, topic_id: str | None = None) -> dict[str, Any]:
    """A topic of a Metadata answer that could not be described."""
    return {
        "error_code": error,
        "name": name,
        "topic_id": topic_id,
        "is_internal": name in INTERNAL_TOPICS,
        "partitions": [],
        "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


def operations_bitfield(operations: Iterable[str], allowed: Callable[[str], bool]) -> int:
    """Kafka's authorized-operations bit field: bit ``code`` set for each of ``operations``
    (a resource type's supported ones) that is ``allowed``."""
    value = 0
    for name in operations:
        if allowed(name):
            value |= 1 << ACL_OPERATION_CODES[name]
    return value


def controller_id(state: MetadataState, leader: int | None, node_id: int) -> int:
    """The controller id Kafka's clients are given (Metadata, DescribeCluster). Kafka's KRaft
    brokers name a live broker (clients cannot reach the quorum; a broker forwards admin
    requests to the controller, so any serves): the quorum ``leader`` when it is a broker they
    can reach on its KAFKA listener, else this node, else the first such broker; -1 when there
    is none."""
    brokers = kafka_brokers(state)
    if leader is not None and leader in brokers:
        return leader
    if node_id in brokers:
        return node_id
    return next(iter(brokers), -1)
