"""The consumer-group half of the HTTP API (docs/api.md, ``/v1/groups``; docs/groups.md has the
whole contract): membership by Kafka 4's consumer protocol (KIP-848), committed offsets, and
the admin calls (list, describe, delete), which show and delete classic groups too (the groups
of Kafka's JoinGroup/SyncGroup protocol, which only the Kafka listener speaks).

Handlers are thin: parse and check the request, find the group's coordinator
(``server/groups/runtime.py``: a 307 to it from any other node), plan the operation on its
shard and write it, shape the JSON.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from client.protocol import (
    COORDINATOR_NOT_AVAILABLE,
    INVALID_GROUP_ID,
    INVALID_REQUEST,
    UNKNOWN_MEMBER_ID,
    UNKNOWN_SERVER_ERROR,
    ApiError,
    topic_name_problem,
)
from server import limits
from server.auto_topics import INTERNAL_TOPICS, OFFSETS_TOPIC, ensure_topic
from server.groups.classic_messages import KafkaError, LeaveRequest, LeavingMember
from server.groups.runtime import GroupCoordinator
from server.groups.shard import CommitOffset, Heartbeat
from server.http_records import node_of
from server.http_security import (
    may_create_topic,
    may_describe_group,
    may_describe_topic,
    require_topics,
)
from server.http_util import INT_MAX, LONG_MAX, json_response, query_value, read_json
from server.internal_auth_http import INTERNAL_PEER
from server.node import Node
from server.replica_figures import gather_figures
from server.replica_views import (
    BrokerAnswer,
    Committed,
    asking_plan,
    group_lags,
    leader_ends,
    parse_committed,
)

log = logging.getLogger(__name__)

# Names in a subscription, partitions in "owned", offsets in a commit: bounded like any list.
_TOPICS_MAX = 1000
_STRING_CHARS_MAX = 255


def _coordinator(request: web.Request) -> GroupCoordinator:
    return node_of(request).groups


def _group_id(request: web.Request) -> str:
    group_id = request.match_info["group"]
    if not group_id or len(group_id) > limits.GROUP_ID_CHARS_MAX:
        raise ApiError(
            INVALID_GROUP_ID,
            f"a group id has 1 to {limits.GROUP_ID_CHARS_MAX} characters, got {len(group_id)}",
        )
    return group_id


# -- checking bodies -----------------------------------------------------------------------------


def _object(body: Any, fields: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(INVALID_REQUEST, "the body must be a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise ApiError(INVALID_REQUEST, f"unknown field(s) {', '.join(unknown)}")
    missing = sorted(required - set(body))
    if missing:
        raise ApiError(INVALID_REQUEST, f"the body needs {', '.join(missing)}")
    return body


def _int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(INVALID_REQUEST, f'"{name}" must be an integer in [{low}, {high}]')
    return value


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _STRING_CHARS_MAX:
        raise ApiError(INVALID_REQUEST, f'"{name}" must be a string of at most 255 characters')
    return value


def _topic_name(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ApiError(INVALID_REQUEST, f"{where}: a topic name must be a string")
    problem = topic_name_problem(value)
    if problem:
        raise ApiError(INVALID_REQUEST, f"{where}: {problem}")
    return value


def _partitions(raw: Any, name: str) -> tuple[tuple[str, int], ...] | None:
    if raw is None:
        return None
    problem = f'"{name}" must be a list of {{"topic": name, "partition": number}}'
    if not isinstance(raw, list) or len(raw) > limits.COMMIT_OFFSETS_MAX:
        raise ApiError(INVALID_REQUEST, problem)
    out = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"topic", "partition"}:
            raise ApiError(INVALID_REQUEST, problem)
        partition = _int(item, "partition", 0, INT_MAX)
        if partition is None:
            raise ApiError(INVALID_REQUEST, problem)
        out.append((_topic_name(item["topic"], name), partition))
    return tuple(out)


def parse_heartbeat(body: Any, client_host: str) -> Heartbeat:
    body = _object(
        body,
        {
            "member_id",
            "member_epoch",
            "topics",
            "owned",
            "session_timeout_ms",
            "rebalance_timeout_ms",
            "assignor",
            "client_id",
        },
        {"member_epoch"},
    )
    epoch = _int(body, "member_epoch", -1, INT_MAX)
    if epoch is None:  # present (checked above) but null
        raise ApiError(INVALID_REQUEST, f'"member_epoch" must be an integer in [-1, {INT_MAX}]')
    topics = body.get("topics")
    if topics is not None:
        if not isinstance(topics, list) or len(topics) > _TOPICS_MAX:
            raise ApiError(
                INVALID_REQUEST, f'"topics" must be a list of at most {_TOPICS_MAX} topic names'
            )
        topics = tuple(_topic_name(t, "topics") for t in topics)
    member_id = _string(body, "member_id")
    if member_id == "":
        member_id = None
    if epoch != 0 and member_id is None:
        raise ApiError(INVALID_REQUEST, 'give "member_id" (only a join, epoch 0, may omit it)')
    return Heartbeat(
        member_id=member_id,
        member_epoch=epoch,
        topics=topics,
        owned=_partitions(body.get("owned"), "owned"),
        session_timeout_ms=_int(body, "session_timeout_ms", 1, INT_MAX),
        rebalance_timeout_ms=_int(body, "rebalance_timeout_ms", 1, INT_MAX),
        assignor=_string(body, "assignor"),
        client_id=_string(body, "client_id") or "",
        client_host=client_host,
    )


def parse_commit(body: Any) -> tuple[str | None, int | None, list[CommitOffset]]:
    if isinstance(body, list):
        body = {"offsets": body}
    body = _object(body, {"member_id", "member_epoch", "offsets"}, {"offsets"})
    raw = body["offsets"]
    problem = '"offsets" must be a non-empty list of {"topic", "partition", "offset", "metadata"?}'
    if not isinstance(raw, list) or not raw or len(raw) > limits.COMMIT_OFFSETS_MAX:
        raise ApiError(INVALID_REQUEST, f"{problem} (at most {limits.COMMIT_OFFSETS_MAX})")
    offsets = []
    seen = set()
    for item in raw:
        item = _object(
            item,
            {"topic", "partition", "offset", "metadata", "leader_epoch"},
            {"topic", "partition", "offset"},
        )
        partition = _int(item, "partition", 0, INT_MAX)
        offset = _int(item, "offset", 0, LONG_MAX)
        leader_epoch = _int(item, "leader_epoch", -1, INT_MAX)
        metadata = item.get("metadata")
        if metadata is not None and not isinstance(metadata, str):
            raise ApiError(INVALID_REQUEST, '"metadata" must be a string')
        assert partition is not None and offset is not None
        topic = _topic_name(item["topic"], "offsets")
        if (topic, partition) in seen:
            raise ApiError(INVALID_REQUEST, f"{topic}-{partition} is named twice")
        seen.add((topic, partition))
        offsets.append(
            CommitOffset(
                topic,
                partition,
                offset,
                metadata or "",
                -1 if leader_epoch is None else leader_epoch,
            )
        )
    member_id = _string(body, "member_id") or None
    epoch = _int(body, "member_epoch", -1, INT_MAX)
    if member_id is None and epoch not in (None, -1):
        raise ApiError(INVALID_REQUEST, '"member_epoch" needs "member_id"')
    return member_id, epoch, offsets


# -- membership ----------------------------------------------------------------------------------


async def heartbeat(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    group_id = _group_id(request)
    body = await read_json(request, node.config.max_request_bytes)
    hb = parse_heartbeat(body, request.remote or "")
    if hb.topics:
        await _create_subscribed(request, node, hb.topics)
    coordinator = _coordinator(request)
    loaded = await coordinator.shard_for(group_id)
    planned = loaded.shard.plan_heartbeat(
        group_id, hb, coordinator.topics(), int(time.monotonic() * 1000)
    )
    return json_response(await coordinator.write(loaded, planned))


async def _create_subscribed(request: web.Request, node: Node, topics: tuple[str, ...]) -> None:
    """Subscribing to a topic that does not exist creates it, as Kafka's consumer does when
    auto.create.topics.enable is on (an internal topic is never created this way)."""
    existing = node.quorum.snapshot_state().topics
    for name in topics:
        if name in existing or name in INTERNAL_TOPICS:
            continue
        if not may_create_topic(request, name):
            continue
        try:
            await ensure_topic(node, name)
        except ApiError as e:
            if e.kind.code // 100 != 404:
                log.info("subscription to %s: the topic was not created: %s", name, e)


async def leave(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    group_id = _group_id(request)
    member_id = request.match_info["member"]
    coordinator = _coordinator(request)
    loaded = await coordinator.shard_for(group_id)
    if group_id in loaded.shard.classic:
        # A classic group's member is removed as Kafka's LeaveGroup removes it (an admin's
        # kafka-consumer-groups --delete-members does the same).
        answer = await coordinator.leave_group(group_id, LeaveRequest((LeavingMember(member_id),)))
        error = answer.error or answer.members[0].error
        if error == KafkaError.UNKNOWN_MEMBER_ID:
            raise ApiError(
                UNKNOWN_MEMBER_ID, f"member {member_id} is not a member of group {group_id}"
            )
        if error is not None:
            raise ApiError(
                COORDINATOR_NOT_AVAILABLE,
                f"member {member_id} of group {group_id} was not removed ({error}); retry",
                {"retry_after_s": 1},
            )
        return web.Response(status=204)
    await coordinator.write(loaded, loaded.shard.plan_leave(group_id, member_id))
    return web.Response(status=204)


# -- offsets -------------------------------------------------------------------------------------


async def commit_offsets(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    group_id = _group_id(request)
    member_id, epoch, offsets = parse_commit(
        await read_json(request, node.config.max_request_bytes)
    )
    require_topics(request, "READ", (o.topic for o in offsets))
    # To a classic group, member_epoch is the member's generation (Kafka's OffsetCommit v9+
    # has one field for both).
    answer = await _coordinator(request).commit_offsets(group_id, member_id, epoch, offsets)
    return json_response(answer)


async def fetch_offsets(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    group_id = _group_id(request)
    topic = query_value(request, "topic")
    if topic is not None:
        _topic_name(topic, "topic")
    coordinator = _coordinator(request)
    loaded = await coordinator.shard_for(group_id)
    offsets = loaded.shard.committed(group_id, topic)
    await coordinator.settled(loaded)
    return json_response({"group": group_id, "offsets": offsets})


# -- admin ---------------------------------------------------------------------------------------


async def list_groups(request: web.Request) -> web.Response:
    """Every group of the cluster (each node lists those it coordinates), with its lag: each
    committed offset against the high watermark its partition's leader reports."""
    node = node_of(request)
    node.require_ready()
    coordinator = _coordinator(request)
    if request.query.get("local") == "true" and request.get(INTERNAL_PEER) is not None:
        # The committed offsets ride along for the asker's lag (a list of [group, topic,
        # partition, offset]): one call per coordinator, not one per group.
        return json_response(
            {
                "groups": coordinator.local_groups(),
                "offsets": [list(c) for c in coordinator.committed_offsets()],
            }
        )
    state = node.quorum.snapshot_state()
    if OFFSETS_TOPIC not in state.topics:
        return json_response({"groups": []})
    brokers = [b.id for b in state.brokers.values() if not b.fenced]
    groups, committed, errors = await cluster_committed(node, brokers)
    if errors:
        raise errors[min(errors)]
    listed = [g for name, g in sorted(groups.items()) if may_describe_group(request, name)]
    names = {g["group"] for g in listed}
    # A group's topics and lag count only the topics the caller may describe.
    committed = [c for c in committed if c[0] in names]
    topics = {topic for _, topic, _, _ in committed}
    describable = {topic for topic in topics if may_describe_topic(request, topic)}
    committed = [c for c in committed if c[1] in describable]
    # The lag needs the high watermarks of the partitions with offsets: asked of their
    # leaders only, one call per leader, concurrently.
    keys = {(topic, partition) for _, topic, partition, _ in committed}
    leaders = {
        p.leader
        for name, index in keys
        if (t := state.topics.get(name)) is not None and (p := t.partitions.get(index)) is not None
    }
    ask, skipped = asking_plan(state.brokers, (b for b in leaders if b >= 0))
    answers: dict[int, BrokerAnswer] = dict(skipped)
    answers.update(await gather_figures(node, ask, frozenset(t for t, _ in keys)))
    lags = group_lags(committed, leader_ends(state, answers), state.topics)
    for g in listed:
        lag = lags.get(g["group"])
        g["lag"] = None if lag is None else lag.lag
        g["topics"] = [] if lag is None else lag.topics_json()
    return json_response({"groups": listed})


async def cluster_committed(
    node: Node, brokers: list[int]
) -> tuple[dict[str, dict[str, Any]], list[Committed], dict[int, ApiError]]:
    """What the coordinators among ``brokers`` say, asked concurrently: the summaries of their
    groups by name, their committed offsets, and the error of each broker that did not
    answer. A group two nodes report (its coordinator moving) is taken from one of them,
    offsets included, so that no offset counts twice."""
    coordinator = node.groups
    groups = {g["group"]: g for g in coordinator.local_groups()}
    committed = list(coordinator.committed_offsets())

    async def ask(broker: int) -> tuple[list[dict[str, Any]], list[Committed]]:
        url = node.broker_url(broker, dial=True)
        if url is None:
            return [], []
        status, answer, _ = await node.http_call(
            "GET",
            url + "/v1/groups?local=true",
            None,
            limits.INTERNAL_HTTP_TIMEOUT_S,
            target_id=broker,
            role=f"node {broker}",
        )
        if status != 200 or not isinstance(answer, dict):
            raise ApiError.from_json(answer if isinstance(answer, dict) else {}, status)
        try:
            offsets = parse_committed(answer.get("offsets", []))
        except ValueError as e:
            raise ApiError(UNKNOWN_SERVER_ERROR, f"node {broker} answered: {e}") from None
        return list(answer.get("groups", [])), offsets

    others = [b for b in brokers if b != node.node_id]
    errors: dict[int, ApiError] = {}
    results = await asyncio.gather(*(ask(b) for b in others), return_exceptions=True)
    for broker, result in zip(others, results, strict=True):
        if isinstance(result, ApiError):
            errors[broker] = result
            continue
        if isinstance(result, BaseException):
            raise result
        summaries, offsets = result
        taken = set()
        for g in summaries:
            if g["group"] not in groups:
                groups[g["group"]] = g
                taken.add(g["group"])
        committed += [c for c in offsets if c[0] in taken]
    return groups, committed, errors


async def describe_group(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    group_id = _group_id(request)
    coordinator = _coordinator(request)
    loaded = await coordinator.shard_for(group_id)
    body = loaded.shard.describe(group_id, coordinator.topics())
    await coordinator.settled(loaded)
    body["coordinator_id"] = node.node_id
    ends = await _log_end_offsets(node, [(o["topic"], o["partition"]) for o in body["offsets"]])
    for o in body["offsets"]:
        end = ends.get((o["topic"], o["partition"]))
        o["log_end_offset"] = end
        o["lag"] = None if end is None or o["offset"] is None else max(end - o["offset"], 0)
    return json_response(body)


async def delete_group(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    group_id = _group_id(request)
    coordinator = _coordinator(request)
    loaded = await coordinator.shard_for(group_id)
    await coordinator.write(loaded, loaded.shard.plan_delete(group_id))
    return web.Response(status=204)


async def _log_end_offsets(
    node: Node, partitions: list[tuple[str, int]]
) -> dict[tuple[str, int], int | None]:
    """The high watermark of each partition, from its leader (None when none answers)."""

    async def one(topic: str, index: int) -> int | None:
        local = node.replica_manager.local(topic, index)
        if local is not None and local.is_leader:
            return local.high_watermark
        state = node.quorum.snapshot_state().topics.get(topic)
        meta = state.partitions.get(index) if state is not None else None
        url = node.broker_url(meta.leader, dial=True) if meta and meta.leader >= 0 else None
        if meta is None or url is None:
            return None
        path = f"/v1/topics/{quote(topic, safe='')}/partitions/{index}/offsets"
        try:
            status, answer, _ = await node.http_call(
                "GET",
                url + path,
                None,
                limits.INTERNAL_HTTP_TIMEOUT_S,
                target_id=meta.leader,
                role=f"leader of {topic}-{index}",
            )
        except ApiError:
            return None
        if status != 200 or not isinstance(answer, dict):
            return None
        latest = answer.get("latest")
        return latest if isinstance(latest, int) else None

    results = await asyncio.gather(*(one(t, p) for t, p in partitions))
    return dict(zip(partitions, results, strict=True))


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/v1/groups", list_groups)
    r.add_get("/v1/groups/{group}", describe_group)
    r.add_delete("/v1/groups/{group}", delete_group)
    r.add_post("/v1/groups/{group}/heartbeat", heartbeat)
    r.add_delete("/v1/groups/{group}/members/{member}", leave)
    r.add_post("/v1/groups/{group}/offsets", commit_offsets)
    r.add_get("/v1/groups/{group}/offsets", fetch_offsets)
