"""Replica figures over HTTP, for the console's topic page, replication view and topic list::

    GET /v1/brokers/{broker}/replicas[?topics=a,b]   one broker's replicas (307 to it)
    GET /v1/topics/{topic}/replicas                   every replica of a topic, from any node
    GET /v1/topics?detail=true                        (server/http_api.list_topics calls
                                                      :func:`topic_details`)

Only a broker knows its replicas' log end, size and high watermark, so the aggregate views ask
every broker concurrently (``server/replica_figures.py``) and shape the answers with the pure
functions of ``server/replica_views.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from client.protocol import NOT_FOUND, ApiError
from kraft.state import MetadataState, TopicState
from server.controller import existing_topic
from server.http_configs import redirect_to_broker, requested_broker
from server.http_groups import cluster_committed
from server.http_log_dirs import parse_topics
from server.http_records import node_of
from server.http_security import may_describe_group, may_describe_topic
from server.http_util import json_response, query_value
from server.node import Node
from server.replica_figures import gather_figures, local_figures
from server.replica_views import (
    asking_plan,
    broker_answer,
    brokers_to_ask,
    group_lags,
    leader_ends,
    topic_answer,
    topic_detail,
)


def fenced_broker_error(state: MetadataState, broker_id: int) -> ApiError | None:
    """The 404 for a registered broker that is fenced (this node too, as
    ``redirect_to_broker`` answers for the others), or None. A node not registered yet is
    starting: ``require_ready``'s 503 tells the caller to retry."""
    broker = state.brokers.get(broker_id)
    if broker is not None and broker.fenced:
        return ApiError(NOT_FOUND, f"broker {broker_id} is fenced: it cannot describe itself")
    return None


async def describe_broker_replicas(request: web.Request) -> web.Response:
    node = node_of(request)
    broker_id = requested_broker(request)
    if broker_id == node.node_id:
        # Checked before readiness: a fenced broker is a 404 whichever node is asked.
        error = fenced_broker_error(node.quorum.snapshot_state(), broker_id)
        if error is not None:
            raise error
    node.require_ready()
    if broker_id != node.node_id:
        return redirect_to_broker(node, broker_id, request)
    topics = parse_topics(query_value(request, "topics"))
    figures = local_figures(node)
    # Only the topics the caller may describe (another broker's own signed call sees all).
    names = {f.topic for f in figures if topics is None or f.topic in topics}
    visible = frozenset(name for name in names if may_describe_topic(request, name))
    return json_response(broker_answer(broker_id, figures, visible))


async def describe_topic_replicas(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    state = node.quorum.snapshot_state()
    topic = existing_topic(state, request.match_info["topic"])
    ask, skipped = brokers_to_ask(state, [topic])
    answers: dict[int, Any] = dict(skipped)
    answers.update(await gather_figures(node, ask, frozenset([topic.name])))
    return json_response(topic_answer(topic, answers))


async def topic_details(
    request: web.Request, node: Node, topics: Sequence[TopicState]
) -> list[dict[str, Any]]:
    """The ``detail=true`` fields of each of ``topics`` (in their order), from one concurrent
    round: every registered, unfenced broker's figures and every coordinator's committed
    offsets (groups the requester may not describe are left out)."""
    state = node.quorum.snapshot_state()
    ask, skipped = asking_plan(state.brokers, state.brokers)
    names = frozenset(t.name for t in topics)
    figures, (_, committed, _) = await asyncio.gather(
        gather_figures(node, ask, names), cluster_committed(node, ask)
    )
    answers: dict[int, Any] = dict(skipped)
    answers.update(figures)
    visible = [c for c in committed if c[1] in names and may_describe_group(request, c[0])]
    lags = group_lags(visible, leader_ends(state, answers), state.topics)
    return [topic_detail(t, answers, lags) for t in topics]


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/brokers/{broker}/replicas", describe_broker_replicas)
    router.add_get("/v1/topics/{topic}/replicas", describe_topic_replicas)
