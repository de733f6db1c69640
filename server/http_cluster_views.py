"""Views of the whole cluster for the console: the overview and the metadata log's events.

    GET /v1/cluster/overview  -> cluster id, controller, brokers with their replica and leader
                                 counts, the quorum as the controller sees it, partition
                                 health counts, the topic count
    GET /v1/cluster/events?after=INDEX&limit=N
                              -> this node's recent metadata events (server/metadata_events.py)

Both answer from this node's metadata; the overview's quorum comes from the controller (only
the leader knows how far each voter has replicated), asked with a signed internal call and a
short timeout. When that call fails the answer carries this node's own view of the quorum and
says so (``source_node``, ``source_error``): a console keeps showing the rest.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import orjson
from aiohttp import web

from client.protocol import ApiError
from kraft.records import NO_LEADER
from kraft.state import MetadataState
from server import limits
from server.http_api import get_quorum
from server.http_records import node_of
from server.http_security import may_describe_topic
from server.http_util import LONG_MAX, json_response, query_int
from server.metadata_events import EVENTS_COUNT_MAX
from server.node import Node
from server.topic_configs import effective_configs

MIN_ISR = "min.insync.replicas"
# Events in one answer when the request does not say: a timeline's first screen.
EVENTS_LIMIT_DEFAULT = 100
# How long the overview waits for the controller's quorum view before it answers with this
# node's own: a node-to-node call's usual bound, well under a console's one-second poll.
QUORUM_ASK_TIMEOUT_S = limits.INTERNAL_HTTP_TIMEOUT_S


def cluster_counts(state: MetadataState, topic_defaults: Mapping[str, str]) -> dict[str, Any]:
    """The overview's figures from the metadata alone: each broker's replica and leader
    counts, and how many partitions are under-replicated (ISR smaller than the replicas),
    under their topic's effective ``min.insync.replicas`` (the topic's config, else the
    node's default, as the partitions themselves enforce it) and offline (no leader)."""
    default_min_isr = int(effective_configs(topic_defaults, {})[MIN_ISR])
    replicas = dict.fromkeys(state.brokers, 0)
    leaders = dict.fromkeys(state.brokers, 0)
    total = under_replicated = under_min_isr = offline = 0
    for topic in state.topics.values():
        raw_min_isr = topic.configs.get(MIN_ISR)
        min_isr = default_min_isr if raw_min_isr is None else int(raw_min_isr)
        for p in topic.partitions.values():
            total += 1
            for broker in p.replicas:
                replicas[broker] = replicas.get(broker, 0) + 1
            if p.leader == NO_LEADER:
                offline += 1
            else:
                leaders[p.leader] = leaders.get(p.leader, 0) + 1
            if len(p.isr) < len(p.replicas):
                under_replicated += 1
            if len(p.isr) < min_isr:
                under_min_isr += 1
    brokers = [
        {
            "id": b.id,
            "url": b.http_url,
            "fenced": b.fenced,
            "alive": not b.fenced,
            "replicas": replicas.get(b.id, 0),
            "leaders": leaders.get(b.id, 0),
        }
        for b in sorted(state.brokers.values(), key=lambda b: b.id)
    ]
    return {
        "brokers": brokers,
        "partitions": {
            "total": total,
            "under_replicated": under_replicated,
            "under_min_isr": under_min_isr,
            "offline": offline,
        },
        "topics": len(state.topics),
    }


async def _own_quorum(request: web.Request) -> dict[str, Any]:
    """This node's ``GET /v1/cluster/quorum`` answer, built by that handler."""
    response = await get_quorum(request)
    answer: dict[str, Any] = orjson.loads(cast(bytes, response.body))
    return answer


async def controller_quorum(
    node: Node, own_view: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """The quorum as the controller sees it (its voters' lags), with ``source_node`` (who
    answered) and ``source_error`` (why it is this node's own view, ``own_view()``, instead,
    or None). Asks at most one node, for at most ``QUORUM_ASK_TIMEOUT_S``."""
    controller = node.quorum.leader_id()
    error: str | None = None
    if controller is None:
        error = "no controller is known to this node"
    elif controller != node.node_id:
        url = node.broker_url(controller, dial=True)
        if url is None:
            error = (
                f"the controller, node {controller}, has no registered HTTP address (neither "
                "a controller nor a broker registration names one yet)"
            )
        else:
            try:
                status, answer, _ = await node.http_call(
                    "GET",
                    url + "/v1/cluster/quorum",
                    None,
                    QUORUM_ASK_TIMEOUT_S,
                    target_id=controller,
                    role=f"controller (node {controller})",
                )
            except ApiError as e:
                error = e.message
            else:
                if status == 200 and isinstance(answer, dict):
                    return {**answer, "source_node": controller, "source_error": None}
                message = answer.get("message") if isinstance(answer, dict) else None
                error = f"the controller, node {controller}, answered {status}: {message}"
    own = await own_view()
    return {**own, "source_node": node.node_id, "source_error": error}


async def get_overview(request: web.Request) -> web.Response:
    """``GET /v1/cluster/overview``: docs/api.md has the shape."""
    node = node_of(request)
    # This node's figures are read together, before the call to the controller.
    controller_id = node.quorum.leader_id()
    counts = cluster_counts(node.quorum.snapshot_state(), node.config.topic_defaults)
    quorum = await controller_quorum(node, lambda: _own_quorum(request))
    return json_response(
        {
            "cluster_id": node.meta.cluster_id,
            "controller_id": controller_id,
            "node_id": node.node_id,
            "brokers": counts["brokers"],
            "quorum": quorum,
            "partitions": counts["partitions"],
            "topics": counts["topics"],
        }
    )


def visible_events(
    events: Sequence[Mapping[str, Any]],
    keep: Callable[[Mapping[str, Any]], bool],
    *,
    newest: bool,
    limit: int,
) -> list[Mapping[str, Any]]:
    """The events of ``events`` (oldest first) that ``keep`` accepts, cut as
    ``MetadataEvents.events`` cuts: whole entries (same ``index``) until there are ``limit``
    events, the newest entries when ``newest``, else the oldest. Still oldest first."""
    entries = [
        kept
        for _, group in itertools.groupby(events, key=lambda e: e["index"])
        if (kept := [e for e in group if keep(e)])
    ]
    if newest:
        entries.reverse()
    chosen: list[list[Mapping[str, Any]]] = []
    count = 0
    for entry in entries:
        if count >= limit:
            break
        chosen.append(entry)
        count += len(entry)
    if newest:
        chosen.reverse()
    return [event for entry in chosen for event in entry]


async def get_events(request: web.Request) -> web.Response:
    """``GET /v1/cluster/events``: this node's recent metadata events, oldest first."""
    node = node_of(request)
    after = query_int(request, "after", None, 0, LONG_MAX)
    limit = query_int(request, "limit", EVENTS_LIMIT_DEFAULT, 1, EVENTS_COUNT_MAX)
    assert limit is not None  # it has a default
    events = node.metadata_events
    # Every kept event (the list holds at most EVENTS_COUNT_MAX), so that the limit counts
    # the events the requester may see: a page of hidden ones would look like the end.
    everything = events.events(after, EVENTS_COUNT_MAX)
    seen: dict[str, bool] = {}

    def may_see(event: Mapping[str, Any]) -> bool:
        topic = event.get("topic")
        if not isinstance(topic, str):
            return True  # a cluster event: brokers, the quorum
        if topic not in seen:
            seen[topic] = may_describe_topic(request, topic)
        return seen[topic]

    return json_response(
        {
            "events": visible_events(everything, may_see, newest=after is None, limit=limit),
            "applied_index": events.applied_index,
            "first_index": events.first_index,
        }
    )


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/v1/cluster/overview", get_overview)
    r.add_get("/v1/cluster/events", get_events)
