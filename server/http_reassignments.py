"""Kafka's AlterPartitionReassignments and ListPartitionReassignments over HTTP (KIP-455).

::

    POST /v1/reassignments  {"partitions": [{"topic", "partition", "replicas": [ids] | null}]}
      -> 200 {"partitions": [{"topic", "partition"[, "error", "message"]}]}
    GET  /v1/reassignments[?topic=T]
      -> 200 {"reassignments": [{"topic", "partition", "replicas", "adding_replicas",
                                 "removing_replicas"}]}

The POST is an admin write: the controller plans it (``controller.plan_alter_reassignments``,
rules in ``server/reassignment.py``), another node forwards it there. The whole request is
checked before anything is written, so a bad entry refuses all of it; a cancel (null replicas)
of a partition that is not moving is the one per-partition failure. The GET is answered by any
node from its applied metadata, as a topic's description is.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kraft.records import MetadataRecord
from kraft.state import MetadataState
from server import controller, reassignment
from server.http_api import _admin
from server.http_records import node_of
from server.http_util import json_response, query_value, read_json


async def alter_reassignments(request: web.Request) -> web.Response:
    """``POST /v1/reassignments``: starts, replaces or cancels partition moves."""
    node = node_of(request)
    body = await read_json(request, node.config.max_request_bytes)
    requests = reassignment.parse_request(body)
    outcomes: list[controller.ReassignmentOutcome] = []

    def plan(state: MetadataState) -> list[MetadataRecord]:
        records, planned = controller.plan_alter_reassignments(state, requests)
        outcomes[:] = planned
        return records

    forwarded = await _admin(request, body, plan)
    if forwarded is not None:
        return forwarded
    results: list[dict[str, Any]] = []
    for o in outcomes:
        result: dict[str, Any] = {"topic": o.topic, "partition": o.partition}
        if o.error is not None:
            result |= {"error": o.error.name, "message": o.error.message}
        results.append(result)
    return json_response({"partitions": results})


async def list_reassignments(request: web.Request) -> web.Response:
    """``GET /v1/reassignments[?topic=T]``: the partitions that are moving."""
    node = node_of(request)
    node.require_ready()
    state = node.quorum.snapshot_state()
    found = controller.list_reassignments(state, query_value(request, "topic"))
    return json_response({"reassignments": found})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/v1/reassignments", alter_reassignments)
    router.add_get("/v1/reassignments", list_reassignments)
