"""The partition a Kafka client's request names, as its leader here serves it, and the
per-partition error answers (shared by Produce, Fetch and ListOffsets).

Kafka's order of checks for a client's request on a partition (ReplicaManager's
getPartitionOrException and Partition.localLogWithEpochOrThrow): the topic and partition
exist (UNKNOWN_TOPIC_OR_PARTITION), this node has a replica, the request's current leader
epoch, when it gives one, is this replica's (FENCED_LEADER_EPOCH when older,
UNKNOWN_LEADER_EPOCH when newer), and this node leads it (NOT_LEADER_OR_FOLLOWER).

A NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH answer names the current leader and its
epoch, and the leader's Kafka endpoint (KIP-951), where the version has those fields, so the
client goes there without a Metadata round trip.

Codes: a partition answer carries only codes Kafka's broker sends for that API, because
Kafka's clients act on the code and some treat any other as fatal (the Java consumer's
FetchCollector throws "Unexpected error code 5 while fetching" and the console consumer dies).
Our LEADER_NOT_AVAILABLE ("no leader here now": the node is not ready while the metadata
quorum changes leader, the replica is still opening, the partition has no leader) is
Metadata's code in Kafka; wherever Kafka's broker cannot serve a partition as its leader
(ReplicaManager.getPartitionOrError, Partition.leaderLogIfLocal) it answers
NOT_LEADER_OR_FOLLOWER, on which every client refreshes its metadata and retries.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from client.protocol import FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, ApiError
from kraft.state import MetadataState
from server.kafka.errors import error_message, kafka_error_code
from server.kafka.metadata import endpoint_of
from server.node import Node
from server.partition import Partition

NO_EPOCH = -1  # a request that names no current leader epoch


def check_leader_epoch(partition: Partition, requested: int) -> None:
    """Kafka's current-leader-epoch check of a client request (no check for -1)."""
    if requested == NO_EPOCH:
        return
    epoch = partition.state.leader_epoch
    if requested < epoch:
        raise ApiError(
            FENCED_LEADER_EPOCH,
            f"leader epoch {requested} of {partition.name} is older than this replica's ({epoch})",
        )
    if requested > epoch:
        raise ApiError(
            UNKNOWN_LEADER_EPOCH,
            f"leader epoch {requested} of {partition.name} is newer than this replica's "
            f"({epoch}): this node has not applied the metadata that made it yet",
        )


async def serving_leader(node: Node, topic: str, index: int, leader_epoch: int) -> Partition:
    """The partition this node leads, checked as the module docstring says; ApiError
    otherwise."""
    node.require_ready()
    manager = node.replica_manager
    await manager.await_opening(topic, index)
    partition = manager.partition(topic, index)
    check_leader_epoch(partition, leader_epoch)
    return manager.leader_partition(topic, index)


def leader_fields(state: MetadataState, topic: str, index: int, code: ErrorCode) -> dict[str, Any]:
    """current_leader of a NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH answer (empty for
    any other code, and when the partition is unknown)."""
    if code not in (ErrorCode.not_leader_or_follower, ErrorCode.fenced_leader_epoch):
        return {}
    meta = state.topics.get(topic)
    partition = None if meta is None else meta.partitions.get(index)
    if partition is None:
        return {}
    return {
        "current_leader": {"leader_id": partition.leader, "leader_epoch": partition.leader_epoch}
    }


def node_endpoints(state: MetadataState, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The endpoints of the leaders the per-partition ``answers`` name in ``current_leader``."""
    ids = sorted(
        {
            a["current_leader"]["leader_id"]
            for a in answers
            if "current_leader" in a and a["current_leader"]["leader_id"] >= 0
        }
    )
    return [e for i in ids if (e := endpoint_of(state, i)) is not None]


# The codes the Java consumer accepts in a Fetch partition answer (FetchCollector.
# handleInitializeErrors; any other is an IllegalStateException that ends the poll).
FETCH_PARTITION_CODES = frozenset(
    {
        ErrorCode.none,
        ErrorCode.not_leader_or_follower,
        ErrorCode.replica_not_available,
        ErrorCode.kafka_storage_error,
        ErrorCode.fenced_leader_epoch,
        ErrorCode.offset_not_available,
        ErrorCode.unknown_topic_or_partition,
        ErrorCode.unknown_topic_id,
        ErrorCode.inconsistent_topic_id,
        ErrorCode.offset_out_of_range,
        ErrorCode.topic_authorization_failed,
        ErrorCode.unknown_leader_epoch,
        ErrorCode.unknown_server_error,
        ErrorCode.corrupt_message,
    }
)


def partition_code(error: ApiError, accepted: frozenset[ErrorCode] | None = None) -> ErrorCode:
    """Kafka's code for a partition of a Produce, Fetch or ListOffsets that could not be
    served (module docstring): LEADER_NOT_AVAILABLE is NOT_LEADER_OR_FOLLOWER; a code outside
    ``accepted`` (the API's clients' list, when it has one) is NOT_LEADER_OR_FOLLOWER when
    retriable (the client refreshes its metadata and retries) and UNKNOWN_SERVER_ERROR
    otherwise."""
    code = kafka_error_code(error)
    if code is ErrorCode.leader_not_available:
        return ErrorCode.not_leader_or_follower
    if accepted is None or code in accepted:
        return code
    return ErrorCode.not_leader_or_follower if error.retriable else ErrorCode.unknown_server_error


def error_fields(
    state: MetadataState,
    topic: str,
    index: int,
    error: ApiError,
    accepted: frozenset[ErrorCode] | None = None,
) -> dict[str, Any]:
    """A partition's error answer: error_code (:func:`partition_code`), error_message, and the
    current leader."""
    code = partition_code(error, accepted)
    return {
        "error_code": code,
        "error_message": error_message(error),
        **leader_fields(state, topic, index, code),
    }
