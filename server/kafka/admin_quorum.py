"""DescribeQuorum (key 55) on the Kafka listener: the metadata quorum as Kafka's
``kafka-metadata-quorum describe --status|--replication`` (the Admin client's
describeMetadataQuorum) reads it.

A Kafka broker forwards DescribeQuorum to the active controller, whose Raft client answers
from its leader state. Here the quorum's figures are those of ``GET /v1/cluster/quorum``
(``server.http_quorum.quorum_view``): this node's own view when it leads the quorum, else the
leader's, asked over the internal HTTP path (``http_cluster_views.controller_quorum``, as
``GET /v1/cluster/overview`` asks it). How they map onto Kafka's fields, as
``kraft-metadata-quorum`` prints them:

- LeaderId: the quorum leader; LeaderEpoch: the Raft term; HighWatermark: the commit index
  (the metadata log is pysyncobj's Raft log; its indexes are its offsets);
- a voter's or observer's LogEndOffset: the leader's own last index, a follower's match index;
- LastFetchTimestamp: the leader's wall time of its last contact with the replica (the
  leader's own: now, as Kafka's); LastCaughtUpTimestamp: that time when the replica is caught
  up now; otherwise, and for anything the leader does not know, Kafka's -1;
- ReplicaDirectoryId (v2): the controller's metadata directory id from its
  RegisterControllerRecord, Kafka's zero id when none is registered (a broker-only observer);
- Nodes (v2): each voter's controller endpoint (``CONTROLLER``, its Raft address), from its
  registration, else from this node's quorum configuration.

Kafka's checks come first: the request names ``__cluster_metadata`` partition 0 and nothing
else (UNKNOWN_TOPIC_OR_PARTITION per partition otherwise), DESCRIBE on the cluster
(CLUSTER_AUTHORIZATION_FAILED). A node that is not ready answers its retriable readiness error,
a leader that cannot be asked REQUEST_TIMED_OUT (what a Kafka broker's forwarding answers when
the controller does not answer), an answer from a node that no longer leads
NOT_LEADER_OR_FOLLOWER (the Raft client's answer on a follower): the Admin client retries all
three.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from kraft.records import CLUSTER_RESOURCE_NAME
from server.clock import SYSTEM_CLOCK
from server.controller import CLUSTER_METADATA_TOPIC
from server.http_cluster_views import controller_quorum
from server.http_quorum import quorum_view
from server.kafka.admin_writes import CLUSTER_DENIED, OK, Outcome, readiness, response_of
from server.kafka.apis import RequestContext, authorize
from server.kafka.entities import ZERO_UUID, topic_uuid
from server.kafka.metadata import host_port
from storage.ids import is_valid_uuid

METADATA_PARTITION = 0
CONTROLLER_LISTENER = "CONTROLLER"
UNKNOWN = -1  # Kafka's value for an offset, epoch, id or timestamp the leader does not know


def is_metadata_partition(topics: Iterable[Any]) -> bool:
    """Whether a request names exactly ``__cluster_metadata`` partition 0 (Kafka's
    RaftUtil.hasValidTopicPartition)."""
    named = list(topics)
    return (
        len(named) == 1
        and named[0].topic_name == CLUSTER_METADATA_TOPIC
        and len(named[0].partitions) == 1
        and named[0].partitions[0].partition_index == METADATA_PARTITION
    )


def _known(value: Any) -> int:
    return UNKNOWN if value is None else int(value)


def _directory_uuid(directory_id: str | None) -> uuid.UUID:
    """A registered metadata directory id as Kafka's Uuid; the zero id (Kafka's
    NO_DIRECTORY_ID) when none is known."""
    if directory_id is None or not is_valid_uuid(directory_id):
        return ZERO_UUID
    return topic_uuid(directory_id)


def replica_state(member: Mapping[str, Any], directories: Mapping[int, str | None]) -> Any:
    """One voter or observer of ``quorum_view`` as Kafka's ReplicaState values."""
    return {
        "replica_id": member["id"],
        "replica_directory_id": _directory_uuid(directories.get(member["id"])),
        "log_end_offset": _known(member["log_end_offset"]),
        "last_fetch_timestamp": _known(member["last_fetch_ms"]),
        "last_caught_up_timestamp": _known(member["last_caught_up_ms"]),
    }


def quorum_fields(
    view: Mapping[str, Any],
    directories: Mapping[int, str | None],
    endpoints: Mapping[int, str],
) -> dict[str, Any]:
    """DescribeQuorum's answer (every version's fields; ``build`` keeps the version's) from the
    leader's ``quorum_view``, the controllers' registered directory ids and the voters' Raft
    addresses (``host:port``), by node id. A member whose id is not known yet (a voter that has
    not registered) is left out: Kafka's ReplicaState has no way to say "unknown id"."""
    voters = [replica_state(v, directories) for v in view["voters"] if v["id"] is not None]
    observers = [replica_state(o, directories) for o in view["observers"] if o["id"] is not None]
    nodes = []
    for voter in voters:
        address = endpoints.get(voter["replica_id"])
        if address is None:
            continue
        host, port = host_port(address)
        nodes.append(
            {
                "node_id": voter["replica_id"],
                "listeners": [{"name": CONTROLLER_LISTENER, "host": host, "port": port}],
            }
        )
    partition = {
        "partition_index": METADATA_PARTITION,
        **OK.fields,
        "leader_id": _known(view["leader_id"]),
        "leader_epoch": _known(view["term"]),
        "high_watermark": _known(view["commit_index"]),
        "current_voters": voters,
        "observers": observers,
    }
    return {
        **OK.fields,
        "topics": [{"topic_name": CLUSTER_METADATA_TOPIC, "partitions": [partition]}],
        "nodes": nodes,
    }


def partition_error_fields(topics: Iterable[Any], outcome: Outcome) -> dict[str, Any]:
    """Kafka's DescribeQuorumRequest.getPartitionLevelErrorResponse: each partition asked,
    with ``outcome``."""
    return {
        **OK.fields,
        "topics": [
            {
                "topic_name": t.topic_name,
                "partitions": [
                    {
                        "partition_index": p.partition_index,
                        **outcome.fields,
                        "leader_id": UNKNOWN,
                        "leader_epoch": UNKNOWN,
                        "high_watermark": UNKNOWN,
                        "current_voters": [],
                        "observers": [],
                    }
                    for p in t.partitions
                ],
            }
            for t in topics
        ],
        "nodes": [],
    }


def top_error_fields(outcome: Outcome) -> dict[str, Any]:
    """Kafka's DescribeQuorumRequest.getTopLevelErrorResponse."""
    return {**outcome.fields, "topics": [], "nodes": []}


async def describe_quorum(ctx: RequestContext, request: Any) -> Any:
    """DescribeQuorum (key 55): the metadata quorum's leader, epoch, high watermark, voters and
    observers as the leader sees them (module docstring)."""
    node = ctx.node
    if not is_metadata_partition(request.topics):
        unknown = Outcome(
            ErrorCode.unknown_topic_or_partition,
            "This server does not host this topic-partition.",
        )
        return response_of(ctx, partition_error_fields(request.topics, unknown))
    # Readiness before authorization: until the metadata is loaded, the ACLs are not.
    if (unready := readiness(node)) is not OK:
        return response_of(ctx, top_error_fields(unready))
    if not authorize(ctx, "DESCRIBE", "CLUSTER", CLUSTER_RESOURCE_NAME):
        return response_of(ctx, top_error_fields(CLUSTER_DENIED))

    async def own_view() -> dict[str, Any]:
        return quorum_view(
            node.quorum.status(), node.node_id, node.meta.cluster_id, SYSTEM_CLOCK.wall_ms()
        )

    view = await controller_quorum(node, own_view)
    if view["source_error"] is not None:
        timed_out = Outcome(
            ErrorCode.request_timed_out,
            f"the quorum leader could not be asked: {view['source_error']}",
        )
        return response_of(ctx, top_error_fields(timed_out))
    if view["leader_id"] is None or view["leader_id"] != view["node"]["id"]:
        # The node asked no longer leads (or never did, between two elections).
        moved = Outcome(
            ErrorCode.not_leader_or_follower,
            f"node {view['node']['id']} does not lead the metadata quorum; retry",
        )
        return response_of(ctx, partition_error_fields(request.topics, moved))
    state = node.quorum.snapshot_state()
    directories = {i: c.directory_id for i, c in state.controllers.items()}
    endpoints = {
        i: address
        for address in node.quorum.voter_addresses()
        if (i := node.quorum.voter_id(address)) is not None
    }
    endpoints |= {i: c.raft_address for i, c in state.controllers.items()}
    return response_of(ctx, quorum_fields(view, directories, endpoints))
