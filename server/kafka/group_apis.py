"""Kafka's group APIs on the Kafka listener, over the group coordinator (``server/groups/``):
FindCoordinator; the classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) that
librdkafka, kafka-python and aiokafka speak; Kafka 4's consumer protocol (KIP-848:
ConsumerGroupHeartbeat, ConsumerGroupDescribe); offsets (OffsetCommit, OffsetFetch,
OffsetDelete); and the admin calls (DescribeGroups, ListGroups, DeleteGroups).

Each handler is thin, as in ``data_apis.py``: it turns the kio request into a coordinator call
(``node.groups``, the calls the HTTP API makes too, so a group is one group whichever listener
its members use), and the answer into the response of the request's version. What is Kafka's
and not the coordinator's is done here, as Kafka's ``KafkaApis`` does it before its
coordinator sees a request:

- authorization (Kafka's ACL checks, through ``apis.authorize``: always allowed without an
  authorizer): DESCRIBE on the group for FindCoordinator, DescribeGroups, OffsetFetch,
  ConsumerGroupDescribe; READ for the membership APIs and OffsetCommit; DELETE for
  DeleteGroups and OffsetDelete; per topic READ (commit, delete) or DESCRIBE (fetch, a
  subscription); ListGroups lists every group with DESCRIBE on the cluster, else those the
  principal may DESCRIBE;
- topics checked per partition before the coordinator: a topic or partition the metadata does
  not have is UNKNOWN_TOPIC_OR_PARTITION (by id, OffsetCommit/OffsetFetch v10: UNKNOWN_TOPIC_ID)
  and never reaches it; an OffsetCommit's group-level error (ILLEGAL_GENERATION,
  REBALANCE_IN_PROGRESS, NOT_COORDINATOR...) goes on every partition that did;
- the coordinator's failures as Kafka's ``GroupCoordinatorService`` answers them
  (:func:`group_error`): records not committed or a leader gone become COORDINATOR_NOT_AVAILABLE
  or NOT_COORDINATOR, on which every client finds the coordinator again and retries;
- a request to a node that does not coordinate the group is NOT_COORDINATOR (the coordinator
  says so), and FindCoordinator names the leader of the group's ``__consumer_offsets``
  partition, creating the topic on first use as Kafka does.

Not served, refused with Kafka's codes and a message saying why: TRANSACTION and SHARE keys of
FindCoordinator (INVALID_REQUEST: no transaction or share coordinator, as a Kafka broker
answers for a coordinator type it does not run), static membership (``group.instance.id``) and
regular-expression subscriptions in ConsumerGroupHeartbeat (INVALID_REQUEST). ``require_stable``
of OffsetFetch has nothing to wait for: without transactions no offset is pending.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterable
from typing import Any

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from client.protocol import GROUP_ID_NOT_FOUND, ApiError
from kraft.records import CLUSTER_RESOURCE_NAME
from kraft.state import MetadataState
from server.auto_topics import OFFSETS_TOPIC, ensure_offsets_topic
from server.groups.classic_driver import coordinator_failure
from server.groups.classic_messages import (
    HeartbeatRequest,
    JoinRequest,
    JoinResponse,
    KafkaError,
    LeaveRequest,
    LeavingMember,
    SyncRequest,
    SyncResponse,
)
from server.groups.runtime import partition_for_group
from server.groups.shard import CommitOffset, Heartbeat, Topics
from server.kafka.apis import ApiSpec, RequestContext, authorize, authorized_operations
from server.kafka.entities import build, topic_id_text
from server.kafka.errors import error_message, kafka_error_code
from server.kafka.metadata import (
    AUTHORIZED_OPERATIONS_OMITTED,
    GROUP_OPERATIONS,
    host_port,
    kafka_brokers,
)

OFFSET_COMMIT_KEY = 8
OFFSET_FETCH_KEY = 9
FIND_COORDINATOR_KEY = 10
JOIN_GROUP_KEY = 11
HEARTBEAT_KEY = 12
LEAVE_GROUP_KEY = 13
SYNC_GROUP_KEY = 14
DESCRIBE_GROUPS_KEY = 15
LIST_GROUPS_KEY = 16
DELETE_GROUPS_KEY = 42
OFFSET_DELETE_KEY = 47
CONSUMER_GROUP_HEARTBEAT_KEY = 68
CONSUMER_GROUP_DESCRIBE_KEY = 69

# FindCoordinator's key types (Kafka's CoordinatorType).
GROUP_KEY_TYPE, TRANSACTION_KEY_TYPE, SHARE_KEY_TYPE = 0, 1, 2
# Kafka's Node.noNode(), the coordinator of a FindCoordinator error.
NO_NODE: dict[str, Any] = {"node_id": -1, "host": "", "port": -1, "error_message": None}
# ConsumerGroupDescribe v1's member type (KIP-1099): every member here uses the consumer
# protocol (a classic member of a consumer group would be 0).
CONSUMER_MEMBER_TYPE = 1

NO_LIMIT = -1  # a request's "not given" for a timeout (ConsumerGroupHeartbeat's rebalance)


def _response(ctx: RequestContext, values: dict[str, Any]) -> Any:
    return build(load_response_schema(ctx.api_key, ctx.api_version), {"throttle_time": 0, **values})


def _ms(value: datetime.timedelta) -> int:
    return value // datetime.timedelta(milliseconds=1)


def code_of(error: KafkaError | None) -> ErrorCode:
    """The code of one of the classic protocol's answers."""
    return ErrorCode.none if error is None else ErrorCode[error.value.lower()]


def group_error(e: ApiError) -> ErrorCode:
    """Kafka's code for an error of a group operation: the coordinator's failures as Kafka's
    ``GroupCoordinatorService.handleOperationException`` answers them, the group's own answers
    (UNKNOWN_MEMBER_ID, GROUP_ID_NOT_FOUND...) by their name."""
    failure = coordinator_failure(e)
    return code_of(failure) if failure is not None else kafka_error_code(e)


def _group_operations(ctx: RequestContext, group_id: str, want: bool) -> int:
    """A described group's authorized operations: the principal's, when the request asks."""
    if not want:
        return AUTHORIZED_OPERATIONS_OMITTED
    return authorized_operations(ctx, "GROUP", group_id, GROUP_OPERATIONS)


def _topic_name(state: MetadataState, topic: Any) -> str | None:
    """The topic a request names, by name or (v10 of the offset APIs) by id; None for an id
    the metadata does not have."""
    topic_id = topic_id_text(getattr(topic, "topic_id", None))
    if topic_id is None:
        name: str | None = getattr(topic, "name", None)
        return name
    found = state.topic_by_id(topic_id)
    return None if found is None else found.name


def _has_partition(state: MetadataState, topic: str, partition: int) -> bool:
    found = state.topics.get(topic)
    return found is not None and partition in found.partitions


# -- FindCoordinator -----------------------------------------------------------------------------


async def find_coordinator(ctx: RequestContext, request: Any) -> Any:
    """FindCoordinator: a group's coordinator is the leader of its ``__consumer_offsets``
    partition (Kafka's rule), answered with that broker's KAFKA listener; v4+ answers a batch
    of keys."""
    key_type = int(getattr(request, "key_type", GROUP_KEY_TYPE))
    if ctx.api_version >= 4:
        keys = list(request.coordinator_keys)
        answers = await asyncio.gather(*(_coordinator(ctx, key_type, k) for k in keys))
        return _response(
            ctx,
            {"coordinators": [{"key": k, **a} for k, a in zip(keys, answers, strict=True)]},
        )
    return _response(ctx, await _coordinator(ctx, key_type, request.key))


async def _coordinator(ctx: RequestContext, key_type: int, key: str) -> dict[str, Any]:
    if key_type != GROUP_KEY_TYPE:
        if key_type == TRANSACTION_KEY_TYPE:
            why = "transactions are not supported here: leave transactional.id unset"
        elif key_type == SHARE_KEY_TYPE:
            why = "share groups are not supported here"
        else:
            why = f"coordinator key type {key_type} is not one of Kafka's"
        return {**NO_NODE, "error_code": ErrorCode.invalid_request, "error_message": why}
    if not authorize(ctx, "DESCRIBE", "GROUP", key):
        return {**NO_NODE, "error_code": ErrorCode.group_authorization_failed}
    node = ctx.node
    try:
        node.require_ready()
        topic = await ensure_offsets_topic(node)
    except ApiError as e:
        return {
            **NO_NODE,
            "error_code": ErrorCode.coordinator_not_available,
            "error_message": error_message(e),
        }
    index = partition_for_group(key, len(topic.partitions))
    state = node.quorum.snapshot_state()
    found = state.topics.get(OFFSETS_TOPIC)
    partition = found.partitions.get(index) if found is not None else None
    broker = kafka_brokers(state).get(partition.leader) if partition is not None else None
    if broker is None or broker.kafka_address is None:
        return {
            **NO_NODE,
            "error_code": ErrorCode.coordinator_not_available,
            "error_message": f"{OFFSETS_TOPIC}-{index} has no leader with a KAFKA listener now",
        }
    host, port = host_port(broker.kafka_address)
    return {
        "error_code": ErrorCode.none,
        "error_message": None,
        "node_id": broker.id,
        "host": host,
        "port": port,
    }


# -- the classic protocol ------------------------------------------------------------------------


def _join_answer(ctx: RequestContext, code: ErrorCode, r: JoinResponse) -> Any:
    return _response(
        ctx,
        {
            "error_code": code,
            "generation_id": r.generation_id,
            "protocol_type": r.protocol_type,
            # Nullable from v7; before, Kafka's UNKNOWN_PROTOCOL_NAME ("").
            "protocol_name": r.protocol_name if ctx.api_version >= 7 else (r.protocol_name or ""),
            "leader": r.leader,
            "skip_assignment": r.skip_assignment,
            "member_id": r.member_id,
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "metadata": m.metadata,
                }
                for m in r.members
            ],
        },
    )


async def join_group(ctx: RequestContext, request: Any) -> Any:
    if not authorize(ctx, "READ", "GROUP", request.group_id):
        return _join_answer(ctx, ErrorCode.group_authorization_failed, JoinResponse(None, ""))
    session_ms = _ms(request.session_timeout)
    rebalance = getattr(request, "rebalance_timeout", None)
    answer = await ctx.node.groups.join_group(
        request.group_id,
        JoinRequest(
            member_id=request.member_id,
            protocol_type=request.protocol_type,
            protocols=tuple((p.name, p.metadata) for p in request.protocols),
            session_timeout_ms=session_ms,
            # JoinGroup v0 has no rebalance timeout: Kafka takes the session timeout.
            rebalance_timeout_ms=session_ms if rebalance is None else _ms(rebalance),
            client_id=ctx.client_id or "",
            client_host="/" + ctx.client_host,  # Kafka's InetAddress.toString
            group_instance_id=getattr(request, "group_instance_id", None),
            requires_known_member_id=ctx.api_version >= 4,  # KIP-394
            reason=getattr(request, "reason", None),
        ),
    )
    return _join_answer(ctx, code_of(answer.error), answer)


def _sync_answer(ctx: RequestContext, code: ErrorCode, r: SyncResponse) -> Any:
    return _response(
        ctx,
        {
            "error_code": code,
            "protocol_type": r.protocol_type,
            "protocol_name": r.protocol_name,
            "assignment": r.assignment,
        },
    )


async def sync_group(ctx: RequestContext, request: Any) -> Any:
    if not authorize(ctx, "READ", "GROUP", request.group_id):
        return _sync_answer(ctx, ErrorCode.group_authorization_failed, SyncResponse(None))
    answer = await ctx.node.groups.sync_group(
        request.group_id,
        SyncRequest(
            member_id=request.member_id,
            generation_id=int(request.generation_id),
            assignments=tuple((a.member_id, a.assignment) for a in request.assignments),
            group_instance_id=getattr(request, "group_instance_id", None),
            protocol_type=getattr(request, "protocol_type", None),
            protocol_name=getattr(request, "protocol_name", None),
        ),
    )
    return _sync_answer(ctx, code_of(answer.error), answer)


async def heartbeat(ctx: RequestContext, request: Any) -> Any:
    if not authorize(ctx, "READ", "GROUP", request.group_id):
        return _response(ctx, {"error_code": ErrorCode.group_authorization_failed})
    error = await ctx.node.groups.heartbeat(
        request.group_id,
        HeartbeatRequest(
            request.member_id,
            int(request.generation_id),
            getattr(request, "group_instance_id", None),
        ),
    )
    return _response(ctx, {"error_code": code_of(error)})


async def leave_group(ctx: RequestContext, request: Any) -> Any:
    """LeaveGroup: v3+ names several members, each answered; before, one member, whose error
    is the answer's when the request as a whole has none."""
    batched = ctx.api_version >= 3
    if not authorize(ctx, "READ", "GROUP", request.group_id):
        return _response(ctx, {"error_code": ErrorCode.group_authorization_failed, "members": []})
    if batched:
        leaving = tuple(
            LeavingMember(m.member_id, m.group_instance_id, getattr(m, "reason", None))
            for m in request.members
        )
    else:
        leaving = (LeavingMember(request.member_id),)
    answer = await ctx.node.groups.leave_group(request.group_id, LeaveRequest(leaving))
    if batched:
        members = [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "error_code": code_of(m.error),
            }
            for m in answer.members
        ]
        return _response(ctx, {"error_code": code_of(answer.error), "members": members})
    error = answer.error or (answer.members[0].error if answer.members else None)
    return _response(ctx, {"error_code": code_of(error)})


# -- OffsetCommit --------------------------------------------------------------------------------


async def offset_commit(ctx: RequestContext, request: Any) -> Any:
    """OffsetCommit: per partition, the checks Kafka makes before its coordinator (the group
    and topics authorized, topic and partition known); the rest committed at once, Kafka's
    OFFSET_METADATA_TOO_LARGE left out of the commit, and a group-level error (the member's
    generation or epoch, the coordinator's) given to every partition that reached it."""
    node = ctx.node
    group_id = request.group_id
    state = node.quorum.snapshot_state()
    group_allowed = authorize(ctx, "READ", "GROUP", group_id)
    metadata_max = node.config.groups.offset_metadata_max_bytes
    topics: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], CommitOffset | None]] = []  # None: metadata too long
    for t in request.topics:
        name = _topic_name(state, t)
        answers: list[dict[str, Any]] = []
        topics.append(
            {"name": name, "topic_id": getattr(t, "topic_id", None), "partitions": answers}
        )
        for p in t.partitions:
            answer: dict[str, Any] = {"partition_index": p.partition_index}
            answers.append(answer)
            if not group_allowed:
                answer["error_code"] = ErrorCode.group_authorization_failed
            elif name is None:
                answer["error_code"] = ErrorCode.unknown_topic_id
            elif not authorize(ctx, "READ", "TOPIC", name):
                answer["error_code"] = ErrorCode.topic_authorization_failed
            elif not _has_partition(state, name, p.partition_index):
                answer["error_code"] = ErrorCode.unknown_topic_or_partition
            else:
                metadata = p.committed_metadata or ""
                offset = CommitOffset(
                    name,
                    p.partition_index,
                    p.committed_offset,
                    metadata,
                    int(getattr(p, "committed_leader_epoch", -1)),
                )
                too_long = len(metadata.encode()) > metadata_max
                pending.append((answer, None if too_long else offset))
    if pending:
        code = await _commit(ctx, request, [o for _, o in pending if o is not None])
        for answer, committed in pending:
            too_long = code is ErrorCode.none and committed is None
            answer["error_code"] = ErrorCode.offset_metadata_too_large if too_long else code
    return _response(ctx, {"topics": topics})


async def _commit(ctx: RequestContext, request: Any, offsets: list[CommitOffset]) -> ErrorCode:
    """Commits ``offsets`` (the coordinator checks the committer even when there are none);
    Kafka's code for the whole commit."""
    if not request.group_id:
        return ErrorCode.invalid_group_id
    try:
        ctx.node.require_ready()
        await ctx.node.groups.commit_offsets(
            request.group_id,
            request.member_id or None,
            int(request.generation_id_or_member_epoch),
            offsets,
            group_instance_id=getattr(request, "group_instance_id", None),
            api_version=ctx.api_version,
        )
    except ApiError as e:
        return group_error(e)
    return ErrorCode.none


# -- OffsetFetch ---------------------------------------------------------------------------------


async def offset_fetch(ctx: RequestContext, request: Any) -> Any:
    """OffsetFetch: v8+ fetches for several groups, each with its own error; before, one group
    whose error is the response's (before v2, each partition's)."""
    version = ctx.api_version
    if version >= 8:
        answers = await asyncio.gather(
            *(
                _fetch_group(
                    ctx,
                    g.group_id,
                    getattr(g, "member_id", None),
                    int(getattr(g, "member_epoch", -1)),
                    g.topics,
                )
                for g in request.groups
            )
        )
        return _response(ctx, {"groups": answers})
    answer = await _fetch_group(ctx, request.group_id, None, -1, request.topics)
    return _response(ctx, {"topics": answer["topics"], "error_code": answer["error_code"]})


def _fetched(partition: int, value: Any = None, code: ErrorCode = ErrorCode.none) -> dict[str, Any]:
    """One partition of an OffsetFetch answer: its committed offset, or -1 with none."""
    return {
        "partition_index": partition,
        "committed_offset": -1 if value is None else value.offset,
        "committed_leader_epoch": -1 if value is None else value.leader_epoch,
        "metadata": "" if value is None else value.metadata,
        "error_code": code,
    }


async def _fetch_group(
    ctx: RequestContext,
    group_id: str,
    member_id: str | None,
    member_epoch: int,
    topics: Iterable[Any] | None,
) -> dict[str, Any]:
    """One group's answer (``group_id``, ``error_code``, ``topics``)."""
    state = ctx.node.quorum.snapshot_state()
    by_id = ctx.api_version >= 10
    error: ErrorCode | None = None
    committed: dict[tuple[str, int], Any] = {}
    if not authorize(ctx, "DESCRIBE", "GROUP", group_id):
        error = ErrorCode.group_authorization_failed
    else:
        try:
            ctx.node.require_ready()
            committed = await ctx.node.groups.fetch_offsets(group_id, member_id, member_epoch)
        except ApiError as e:
            error = group_error(e)
    answers: list[dict[str, Any]] = []
    if error is not None:
        if ctx.api_version < 2 and topics is not None:
            # No group-level error before v2: Kafka puts it on every partition asked for.
            for t in topics:
                parts = [_fetched(p, code=error) for p in t.partition_indexes]
                answers.append({"name": t.name, "partitions": parts})
        return {"group_id": group_id, "error_code": error, "topics": answers}
    if topics is None:
        # Every committed offset, of the topics the principal may describe (a topic the
        # metadata no longer has cannot be named by id).
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for (topic, partition), value in sorted(committed.items()):
            if authorize(ctx, "DESCRIBE", "TOPIC", topic):
                by_topic.setdefault(topic, []).append(_fetched(partition, value))
        for topic, parts in by_topic.items():
            found = state.topics.get(topic)
            if by_id and found is None:
                continue
            topic_id = found.topic_id if found is not None else None
            answers.append({"name": topic, "topic_id": topic_id, "partitions": parts})
    else:
        for t in topics:
            name = _topic_name(state, t)
            if name is None:
                parts = [_fetched(p, code=ErrorCode.unknown_topic_id) for p in t.partition_indexes]
            elif not authorize(ctx, "DESCRIBE", "TOPIC", name):
                parts = [
                    _fetched(p, code=ErrorCode.topic_authorization_failed)
                    for p in t.partition_indexes
                ]
            else:
                parts = [_fetched(p, committed.get((name, p))) for p in t.partition_indexes]
            answers.append(
                {"name": name, "topic_id": getattr(t, "topic_id", None), "partitions": parts}
            )
    return {"group_id": group_id, "error_code": ErrorCode.none, "topics": answers}


# -- OffsetDelete --------------------------------------------------------------------------------


async def offset_delete(ctx: RequestContext, request: Any) -> Any:
    """OffsetDelete: a group's committed offsets of some partitions removed, except on topics
    the group subscribes to (GROUP_SUBSCRIBED_TO_TOPIC); refused for a classic group with
    members (NON_EMPTY_GROUP) and a group that does not exist (GROUP_ID_NOT_FOUND)."""
    group_id = request.group_id
    if not authorize(ctx, "DELETE", "GROUP", group_id):
        return _response(ctx, {"error_code": ErrorCode.group_authorization_failed, "topics": []})
    if not group_id:
        return _response(ctx, {"error_code": ErrorCode.invalid_group_id, "topics": []})
    state = ctx.node.quorum.snapshot_state()
    topics: list[dict[str, Any]] = []
    pending: list[tuple[str, dict[str, Any]]] = []
    for t in request.topics:
        answers: list[dict[str, Any]] = []
        topics.append({"name": t.name, "partitions": answers})
        allowed = authorize(ctx, "READ", "TOPIC", t.name)
        for p in t.partitions:
            answer: dict[str, Any] = {"partition_index": p.partition_index}
            answers.append(answer)
            if not allowed:
                answer["error_code"] = ErrorCode.topic_authorization_failed
            elif not _has_partition(state, t.name, p.partition_index):
                answer["error_code"] = ErrorCode.unknown_topic_or_partition
            else:
                pending.append((t.name, answer))
    try:
        ctx.node.require_ready()
        subscribed = await ctx.node.groups.delete_offsets(
            group_id, [(name, answer["partition_index"]) for name, answer in pending]
        )
    except ApiError as e:
        return _response(ctx, {"error_code": group_error(e), "topics": []})
    for name, answer in pending:
        answer["error_code"] = (
            ErrorCode.group_subscribed_to_topic if name in subscribed else ErrorCode.none
        )
    return _response(ctx, {"error_code": ErrorCode.none, "topics": topics})


# -- ConsumerGroupHeartbeat (KIP-848) ------------------------------------------------------------


def heartbeat_problem(
    version: int, request: Any, assignors: Iterable[str]
) -> tuple[ErrorCode, str] | None:
    """Why Kafka (``throwIfConsumerGroupHeartbeatRequestIsInvalid``) or this cluster refuses a
    ConsumerGroupHeartbeat before its group sees it; None when neither does."""
    epoch = int(request.member_epoch)
    invalid = ErrorCode.invalid_request
    if (version >= 1 or epoch > 0 or epoch == -1) and not request.member_id:
        return invalid, "MemberId can't be empty."
    if not request.group_id:
        return ErrorCode.invalid_group_id, "GroupId can't be empty."
    if request.instance_id == "":
        return invalid, "InstanceId can't be empty."
    if request.rack_id == "":
        return invalid, "RackId can't be empty."
    regex = getattr(request, "subscribed_topic_regex", None)
    if epoch == 0:
        if _ms(request.rebalance_timeout) == NO_LIMIT:
            return invalid, "RebalanceTimeoutMs must be provided in first request."
        if request.topic_partitions:
            return invalid, "TopicPartitions must be empty when (re-)joining."
        if request.subscribed_topic_names is None and regex is None:
            return (
                invalid,
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when "
                "(re-)joining.",
            )
    elif epoch == -2:
        if request.instance_id is None:
            return invalid, "InstanceId can't be null."
    elif epoch < -2:
        return invalid, "MemberEpoch is invalid."
    known = tuple(assignors)
    if request.server_assignor is not None and request.server_assignor not in known:
        return (
            ErrorCode.unsupported_assignor,
            f"ServerAssignor {request.server_assignor} is not supported. Supported assignors: "
            f"{', '.join(known)}.",
        )
    if request.instance_id is not None:
        return (
            invalid,
            "static membership (group.instance.id) is not supported by this cluster: leave "
            "group.instance.id unset",
        )
    if regex:  # "" is no regular expression (librdkafka sends it with names)
        return (
            invalid,
            "subscriptions by regular expression are not supported by this cluster: subscribe "
            "to topic names",
        )
    return None


def _heartbeat_refusal(ctx: RequestContext, code: ErrorCode, message: str | None) -> Any:
    return _response(
        ctx,
        {
            "error_code": code,
            "error_message": message,
            "member_id": None,
            "member_epoch": 0,
            "heartbeat_interval": 0,
            "assignment": None,
        },
    )


def _by_topic_id(topics: Topics, partitions: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    """Partitions by topic name as KIP-848's TopicPartitions: by topic id (a topic gone from the
    metadata is left out)."""
    grouped: dict[str, list[int]] = {}
    for name, p in partitions:
        if name in topics.by_name:
            grouped.setdefault(topics.by_name[name][0], []).append(p)
    return [{"topic_id": t, "partitions": sorted(ps)} for t, ps in grouped.items()]


async def consumer_group_heartbeat(ctx: RequestContext, request: Any) -> Any:
    """ConsumerGroupHeartbeat: a member joins (epoch 0), heartbeats, or leaves (-1); the
    assignment goes back, by topic id, to a full request (a join, or one carrying every
    field) or when the member's partitions changed, as Kafka sends it."""
    group_id = request.group_id
    if not authorize(ctx, "READ", "GROUP", group_id):
        return _heartbeat_refusal(ctx, ErrorCode.group_authorization_failed, None)
    coordinator = ctx.node.groups
    problem = heartbeat_problem(ctx.api_version, request, ctx.node.config.groups.assignors)
    if problem is not None:
        return _heartbeat_refusal(ctx, *problem)
    names = request.subscribed_topic_names
    if names and not all(authorize(ctx, "DESCRIBE", "TOPIC", n) for n in names):
        return _heartbeat_refusal(ctx, ErrorCode.topic_authorization_failed, None)
    topics = coordinator.topics()
    ids = topics.names
    owned = request.topic_partitions
    rebalance_ms = _ms(request.rebalance_timeout)
    hb = Heartbeat(
        member_id=request.member_id or None,
        member_epoch=int(request.member_epoch),
        topics=None if names is None else tuple(names),
        owned=None
        if owned is None
        else tuple(
            (ids[tid], int(p))
            for tp in owned
            if (tid := topic_id_text(tp.topic_id)) in ids
            for p in tp.partitions
        ),
        rebalance_timeout_ms=rebalance_ms if rebalance_ms > 0 else None,
        assignor=request.server_assignor,
        client_id=ctx.client_id or "",
        client_host="/" + ctx.client_host,
    )
    try:
        ctx.node.require_ready()
        answer, changed = await coordinator.consumer_heartbeat(group_id, hb)
    except ApiError as e:
        return _heartbeat_refusal(ctx, group_error(e), error_message(e))
    full = hb.member_epoch == 0 or (
        rebalance_ms != NO_LIMIT and names is not None and owned is not None
    )
    assignment = None
    if answer["member_epoch"] >= 0 and (full or changed):
        assigned = [(a["topic"], a["partition"]) for a in answer["assignment"]]
        assignment = {"topic_partitions": _by_topic_id(coordinator.topics(), assigned)}
    return _response(
        ctx,
        {
            "error_code": ErrorCode.none,
            "error_message": None,
            "member_id": answer["member_id"],
            "member_epoch": answer["member_epoch"],
            "heartbeat_interval": answer["heartbeat_interval_ms"],
            "assignment": assignment,
        },
    )


# -- ConsumerGroupDescribe, DescribeGroups -------------------------------------------------------


async def consumer_group_describe(ctx: RequestContext, request: Any) -> Any:
    want = bool(request.include_authorized_operations)
    groups = await asyncio.gather(*(_describe_consumer(ctx, g, want) for g in request.group_ids))
    return _response(ctx, {"groups": groups})


def _described_partitions(topics: Topics, partitions: list[dict[str, Any]]) -> dict[str, Any]:
    grouped: dict[str, list[int]] = {}
    for a in partitions:
        grouped.setdefault(a["topic"], []).append(a["partition"])
    return {
        "topic_partitions": [
            {"topic_id": topics.by_name[name][0], "topic_name": name, "partitions": sorted(ps)}
            for name, ps in grouped.items()
            if name in topics.by_name
        ]
    }


async def _describe_consumer(ctx: RequestContext, group_id: str, want: bool) -> dict[str, Any]:
    refused: dict[str, Any] = {
        "group_id": group_id,
        "group_state": "",
        "group_epoch": 0,
        "assignment_epoch": 0,
        "assignor_name": "",
        "members": [],
        "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }
    if not authorize(ctx, "DESCRIBE", "GROUP", group_id):
        return {**refused, "error_code": ErrorCode.group_authorization_failed}
    coordinator = ctx.node.groups
    try:
        ctx.node.require_ready()
        body = await coordinator.describe_consumer(group_id)
    except ApiError as e:
        return {**refused, "error_code": group_error(e), "error_message": error_message(e)}
    members = body["members"]
    seen = {t for m in members for t in m["subscribed_topics"]} | {
        a["topic"] for m in members for a in m["assignment"] + m["target_assignment"]
    }
    if not all(authorize(ctx, "DESCRIBE", "TOPIC", t) for t in seen):
        return {
            **refused,
            "error_code": ErrorCode.topic_authorization_failed,
            "error_message": "The group has described topic(s) that the client is not "
            "authorized to describe.",
        }
    topics = coordinator.topics()
    return {
        "error_code": ErrorCode.none,
        "error_message": None,
        "group_id": group_id,
        "group_state": body["state"],
        "group_epoch": body["group_epoch"],
        "assignment_epoch": body["assignment_epoch"],
        "assignor_name": body["assignor"],
        "members": [
            {
                "member_id": m["member_id"],
                "instance_id": None,
                "rack_id": None,
                "member_epoch": m["member_epoch"],
                "client_id": m["client_id"],
                "client_host": m["client_host"],
                "subscribed_topic_names": m["subscribed_topics"],
                "subscribed_topic_regex": None,
                "assignment": _described_partitions(topics, m["assignment"]),
                "target_assignment": _described_partitions(topics, m["target_assignment"]),
                "member_type": CONSUMER_MEMBER_TYPE,
            }
            for m in members
        ],
        "authorized_operations": _group_operations(ctx, group_id, want),
    }


async def describe_groups(ctx: RequestContext, request: Any) -> Any:
    want = bool(getattr(request, "include_authorized_operations", False))
    groups = await asyncio.gather(*(_describe_classic(ctx, g, want) for g in request.groups))
    return _response(ctx, {"groups": groups})


async def _describe_classic(ctx: RequestContext, group_id: str, want: bool) -> dict[str, Any]:
    """One group of a DescribeGroups answer; Kafka's ``groupError`` shape for an error."""
    refused: dict[str, Any] = {
        "group_id": group_id,
        "group_state": "",
        "protocol_type": "",
        "protocol_data": "",
        "members": [],
        "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }
    if not authorize(ctx, "DESCRIBE", "GROUP", group_id):
        return {**refused, "error_code": ErrorCode.group_authorization_failed}
    try:
        ctx.node.require_ready()
        described = await ctx.node.groups.describe_classic(group_id)
    except ApiError as e:
        if e.kind == GROUP_ID_NOT_FOUND:
            # Not a group, or not a classic one: Dead, and from v6 (KIP-1043) the error too.
            dead = {**refused, "group_state": "Dead", "error_code": ErrorCode.none}
            if ctx.api_version >= 6:
                dead.update(error_code=ErrorCode.group_id_not_found, error_message=e.message)
            return dead
        return {**refused, "error_code": group_error(e), "error_message": error_message(e)}
    return {
        "error_code": ErrorCode.none,
        "error_message": None,
        "group_id": group_id,
        "group_state": described.state,
        "protocol_type": described.protocol_type,
        "protocol_data": described.protocol_data,
        "members": [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "member_metadata": m.metadata,
                "member_assignment": m.assignment,
            }
            for m in described.members
        ],
        "authorized_operations": _group_operations(ctx, group_id, want),
    }


# -- ListGroups, DeleteGroups --------------------------------------------------------------------


async def list_groups(ctx: RequestContext, request: Any) -> Any:
    """ListGroups: the groups this node coordinates (a client asks every broker), filtered by
    state (v4+) and type (v5+), both without regard to case, as Kafka filters them."""
    states = {s.lower() for s in getattr(request, "states_filter", ())}
    types = {t.lower() for t in getattr(request, "types_filter", ())}
    try:
        ctx.node.require_ready()
        listed = ctx.node.groups.kafka_groups()
    except ApiError as e:
        return _response(ctx, {"error_code": group_error(e), "groups": []})
    everything = authorize(ctx, "DESCRIBE", "CLUSTER", CLUSTER_RESOURCE_NAME)
    groups = [
        {"group_id": g, "protocol_type": protocol, "group_state": state, "group_type": kind}
        for g, kind, protocol, state in listed
        if (not states or state.lower() in states)
        and (not types or kind in types)
        and (everything or authorize(ctx, "DESCRIBE", "GROUP", g))
    ]
    return _response(ctx, {"error_code": ErrorCode.none, "groups": groups})


async def delete_groups(ctx: RequestContext, request: Any) -> Any:
    names = list(request.groups_names)
    codes = await asyncio.gather(*(_delete_group(ctx, g) for g in names))
    return _response(
        ctx,
        {"results": [{"group_id": g, "error_code": c} for g, c in zip(names, codes, strict=True)]},
    )


async def _delete_group(ctx: RequestContext, group_id: str) -> ErrorCode:
    if not authorize(ctx, "DELETE", "GROUP", group_id):
        return ErrorCode.group_authorization_failed
    if not group_id:
        return ErrorCode.invalid_group_id
    try:
        ctx.node.require_ready()
        await ctx.node.groups.delete_group(group_id)
    except ApiError as e:
        return group_error(e)
    return ErrorCode.none


GROUP_APIS: tuple[ApiSpec, ...] = (
    ApiSpec(OFFSET_COMMIT_KEY, 2, 10, offset_commit),
    ApiSpec(OFFSET_FETCH_KEY, 1, 10, offset_fetch),
    ApiSpec(FIND_COORDINATOR_KEY, 0, 6, find_coordinator),
    ApiSpec(JOIN_GROUP_KEY, 0, 9, join_group),
    ApiSpec(HEARTBEAT_KEY, 0, 4, heartbeat),
    ApiSpec(LEAVE_GROUP_KEY, 0, 5, leave_group),
    ApiSpec(SYNC_GROUP_KEY, 0, 5, sync_group),
    ApiSpec(DESCRIBE_GROUPS_KEY, 0, 6, describe_groups),
    ApiSpec(LIST_GROUPS_KEY, 0, 5, list_groups),
    ApiSpec(DELETE_GROUPS_KEY, 0, 2, delete_groups),
    ApiSpec(OFFSET_DELETE_KEY, 0, 0, offset_delete),
    ApiSpec(CONSUMER_GROUP_HEARTBEAT_KEY, 0, 1, consumer_group_heartbeat),
    ApiSpec(CONSUMER_GROUP_DESCRIBE_KEY, 0, 1, consumer_group_describe),
)
