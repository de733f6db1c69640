"""The HTTP/JSON API of API.md: the cluster, topics and the node-to-node calls; the records
half (produce, fetch, offsets) is ``server/http_records.py``. ``make_app`` routes both.

Handlers are thin: parse and check the request, call the node or a pure plan, shape the JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from client.protocol import (
    INVALID_REQUEST,
    ApiError,
)
from kraft.records import MetadataRecord
from kraft.state import MetadataState, TopicState
from server import controller
from server.clock import SYSTEM_CLOCK
from server.http_cors import cors_middleware, install_cors
from server.http_records import (
    NODE,
    fetch,
    get_offsets,
    new_producer,
    node_of,
    produce_partition,
    produce_topic,
)
from server.http_replicas import topic_details
from server.http_security import may_create_topic, may_describe_topic, security_middleware
from server.http_util import (
    errors_as_json,
    json_response,
    path_int,
    query_choice,
    read_json,
)
from server.internal_auth_http import internal_auth_middleware, require_internal_peer
from server.loop_monitor import LOOP_MONITOR
from server.metrics import REQUEST_METRICS
from server.node import METADATA_INDEX_HEADER, Node
from server.replication import FetchRequest

METADATA_INDEX = "metadata_index"

log = logging.getLogger(__name__)

T = TypeVar("T")


# -- cluster -------------------------------------------------------------------------------------


async def get_cluster(request: web.Request) -> web.Response:
    return json_response(node_of(request).cluster_view())


async def get_quorum(request: web.Request) -> web.Response:
    """API.md's quorum shape, from this node's view of pysyncobj's status."""
    # Imported here as add_routes imports http_quorum's routes: that module imports this one.
    from server.http_quorum import quorum_view

    node = node_of(request)
    view = quorum_view(
        node.quorum.status(), node.node_id, node.meta.cluster_id, SYSTEM_CLOCK.wall_ms()
    )
    return json_response(view)


async def get_ready(request: web.Request) -> web.Response:
    node = node_of(request)
    reason = node.not_ready_reason()
    if reason is None:
        return json_response({"ready": True, "node_id": node.node_id})
    return json_response(
        {"ready": False, "node_id": node.node_id, "reason": reason}, 503, {"Retry-After": "1"}
    )


# -- topics --------------------------------------------------------------------------------------


def _describe(node: Node, name: str) -> dict[str, Any]:
    topic = node.topic(name)
    partitions = []
    for index, p in sorted(topic.partitions.items()):
        local = node.replica_manager.local(name, index)
        partitions.append(
            {
                "partition": index,
                "leader": p.leader if p.leader >= 0 else None,
                "leader_epoch": p.leader_epoch,
                "replicas": list(p.replicas),
                "isr": list(p.isr),
                "adding_replicas": list(p.adding_replicas),
                "removing_replicas": list(p.removing_replicas),
                "log_start_offset": None if local is None else local.log.log_start_offset,
                "high_watermark": None if local is None else local.high_watermark,
                "offline": None if local is None else local.log.offline is not None,
            }
        )
    return {
        "name": topic.name,
        "topic_id": topic.topic_id,
        "partition_count": len(topic.partitions),
        "replication_factor": _replication_factor(topic),
        "configs": dict(sorted(topic.configs.items())),
        "partitions": partitions,
    }


async def list_topics(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    topics = sorted(node.quorum.snapshot_state().topics.values(), key=lambda t: t.name)
    topics = [t for t in topics if may_describe_topic(request, t.name)]  # Kafka hides the rest
    detail = query_choice(request, "detail", ("true", "false"), "false") == "true"
    body = [
        {
            "name": t.name,
            "partition_count": len(t.partitions),
            "replication_factor": _replication_factor(t),
        }
        for t in topics
    ]
    if detail:  # the console's topic list: every broker's figures, asked in one round
        for entry, extra in zip(body, await topic_details(request, node, topics), strict=True):
            entry.update(extra)
    return json_response({"topics": body})


def _replication_factor(topic: TopicState) -> int:
    # Kafka's TopicCommand: while partition 0 moves, its replicas less the adding ones.
    if not topic.partitions:
        return 0
    first = topic.partitions[0]
    return len(first.replicas) - len(first.adding_replicas)


Plan = Callable[[MetadataState], list[MetadataRecord]]


async def write_or_forward(
    node: Node, plan: Plan, forward: Callable[[], Awaitable[T]]
) -> tuple[int | None, T | None]:
    """The one way an admin request is carried out, over HTTP and over Kafka's protocol
    (server/kafka/admin_writes.py): on the controller the plan is written, elsewhere
    ``forward()`` sends the request to the controller, which plans it there.

    Returns (the applied metadata index or None when the plan wrote nothing, None) when written
    here, (None, the forwarded answer) when forwarded. As Kafka's controller does, the answer
    comes once the records are committed and applied here: the replicas they name open
    afterwards, on every node, from the applied metadata (a produce at once may meet
    LEADER_NOT_AVAILABLE and retry, as Kafka's producer does)."""
    node.require_ready()
    if not node.quorum.is_leader():
        return None, await forward()
    # The write returns once the entry is applied on this node: its metadata holds the change.
    return await node.write_metadata(plan), None


async def _admin(request: web.Request, body: Any, plan: Plan) -> web.Response | None:
    """Writes an admin plan on the controller; on another node, forwards the request there
    (:func:`write_or_forward`). Returns the controller's answer when it was forwarded, None
    when written here."""
    node = node_of(request)
    index, forwarded = await write_or_forward(node, plan, lambda: node.forward(request, body))
    if forwarded is not None:
        return forwarded
    request[METADATA_INDEX] = index
    return None


async def _add_metadata_index(request: web.Request, response: web.StreamResponse) -> None:
    """Tells a forwarding node which metadata index to apply before it answers its client."""
    index = request.get(METADATA_INDEX)
    if index is not None:
        response.headers[METADATA_INDEX_HEADER] = str(index)


async def _json_object(request: web.Request, fields: set[str], required: set[str]) -> Any:
    node = node_of(request)
    body = await read_json(request, node.config.max_request_bytes)
    if not isinstance(body, dict):
        raise ApiError(INVALID_REQUEST, "the body must be a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise ApiError(INVALID_REQUEST, f"unknown field(s) {', '.join(unknown)}")
    missing = sorted(required - set(body))
    if missing:
        raise ApiError(INVALID_REQUEST, f"the body needs {', '.join(missing)}")
    return body


async def create_topic(request: web.Request) -> web.Response:
    node = node_of(request)
    body = await _json_object(
        request, {"name", "partitions", "replication_factor", "configs", "assignments"}, {"name"}
    )

    def plan(state: MetadataState) -> list[MetadataRecord]:
        return controller.plan_create_topic(
            state,
            body["name"],
            body.get("partitions"),
            body.get("replication_factor"),
            body.get("configs"),
            default_partitions=node.config.num_partitions,
            default_replication_factor=node.config.default_replication_factor,
            rng=node.rng,
            socket_request_max_bytes=node.config.socket_request_max_bytes,
            assignments=body.get("assignments"),
        )

    forwarded = await _admin(request, body, plan)
    return forwarded or json_response(_describe(node, body["name"]), 201)


async def describe_topic(request: web.Request) -> web.Response:
    """A topic's partitions and configs. ``?auto_create=true`` first creates a topic that
    does not exist, when auto.create.topics.enable allows and the requester may (Kafka's
    Metadata request with allow_auto_topic_creation, which producers send)."""
    node = node_of(request)
    node.require_ready()
    name = request.match_info["topic"]
    if query_choice(request, "auto_create", ("true", "false"), "false") == "true":
        from server.auto_topics import INTERNAL_TOPICS, ensure_topic

        allowed = name not in INTERNAL_TOPICS and may_create_topic(request, name)
        await ensure_topic(node, name, allowed=allowed and node.config.auto_create_topics_enable)
    return json_response(_describe(node, name))


async def delete_topic(request: web.Request) -> web.Response:
    name = request.match_info["topic"]
    forwarded = await _admin(request, None, lambda s: controller.plan_delete_topic(s, name))
    return forwarded or web.Response(status=204)


async def add_partitions(request: web.Request) -> web.Response:
    node = node_of(request)
    name = request.match_info["topic"]
    body = await _json_object(request, {"count", "assignments"}, {"count"})
    forwarded = await _admin(
        request,
        body,
        lambda s: controller.plan_add_partitions(
            s, name, body["count"], rng=node.rng, assignments=body.get("assignments")
        ),
    )
    return forwarded or json_response(_describe(node, name))


async def get_configs(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    topic = node.topic(request.match_info["topic"])
    return json_response(
        {"configs": node.topic_configs(topic), "overrides": dict(sorted(topic.configs.items()))}
    )


async def put_configs(request: web.Request) -> web.Response:
    node = node_of(request)
    name = request.match_info["topic"]
    body = await _json_object(request, {"configs"}, {"configs"})
    forwarded = await _admin(
        request,
        body,
        lambda s: controller.plan_alter_configs(
            s, name, body["configs"], socket_request_max_bytes=node.config.socket_request_max_bytes
        ),
    )
    return forwarded or json_response({"configs": dict(sorted(node.topic(name).configs.items()))})


# -- preferred-leader election (Kafka's ElectLeaders) ---------------------------------------------

# Kafka's per-partition errors for the two outcomes that elect nothing.
_ELECTION_ERRORS = {
    controller.ALREADY_PREFERRED: (
        "ELECTION_NOT_NEEDED",
        "Leader election not needed for topic partition.",
    ),
    controller.PREFERRED_NOT_AVAILABLE: (
        "PREFERRED_LEADER_NOT_AVAILABLE",
        "the preferred replica {preferred} is fenced or not in the ISR",
    ),
}


# Why an UNCLEAN election is refused (over HTTP and Kafka's ElectLeaders).
UNCLEAN_ELECTION_REFUSAL = (
    "election type UNCLEAN is not supported: unclean leader election is off in this "
    "cluster (a replica outside the ISR may lack acknowledged records)"
)


def _election_partitions(raw: object) -> list[tuple[str, int]] | None:
    if raw is None:
        return None
    problem = 'give "partitions": [{"topic": name, "partition": number}, ...], or leave it out'
    if not isinstance(raw, list):
        raise ApiError(INVALID_REQUEST, problem)
    out: list[tuple[str, int]] = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or set(item) != {"topic", "partition"}
            or not isinstance(item["topic"], str)
            or isinstance(item["partition"], bool)
            or not isinstance(item["partition"], int)
        ):
            raise ApiError(INVALID_REQUEST, problem)
        out.append((item["topic"], item["partition"]))
    return out


async def elect_leaders(request: web.Request) -> web.Response:
    """``POST /v1/elections``: a PREFERRED election of the named partitions (all without
    ``partitions``), answering each partition's outcome. UNCLEAN is refused by name."""
    body = await _json_object(request, {"election_type", "partitions"}, {"election_type"})
    election_type = body["election_type"]
    if not isinstance(election_type, str) or election_type.upper() not in (
        "PREFERRED",
        "UNCLEAN",
    ):
        raise ApiError(INVALID_REQUEST, 'election_type must be "PREFERRED"')
    if election_type.upper() == "UNCLEAN":
        raise ApiError(INVALID_REQUEST, UNCLEAN_ELECTION_REFUSAL)
    partitions = _election_partitions(body.get("partitions"))
    outcomes: list[controller.ElectionOutcome] = []

    def plan(state: MetadataState) -> list[MetadataRecord]:
        records, planned = controller.plan_preferred_elections(state, partitions)
        outcomes[:] = planned
        return records

    forwarded = await _admin(request, body, plan)
    if forwarded is not None:
        return forwarded
    elected = [f"{o.topic}-{o.partition}" for o in outcomes if o.outcome == controller.ELECTED]
    if elected:
        log.info("preferred leader election (requested): %s", ", ".join(elected))
    results = []
    for o in outcomes:
        result: dict[str, Any] = {
            "topic": o.topic,
            "partition": o.partition,
            "outcome": o.outcome,
            "leader": None if o.leader < 0 else o.leader,
            "preferred_leader": o.preferred,
        }
        if o.outcome in _ELECTION_ERRORS:
            name, message = _ELECTION_ERRORS[o.outcome]
            result |= {"error": name, "message": message.format(preferred=o.preferred)}
        results.append(result)
    return json_response({"election_type": "PREFERRED", "partitions": results})


# -- metrics -------------------------------------------------------------------------------------


async def get_metrics(request: web.Request) -> web.Response:
    """The node's metrics in Prometheus's text format (OpenMetrics when the Accept header
    asks for it); ``server/metrics.py`` says what each means."""
    body, content_type = await node_of(request).metrics.exposition(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _start_metrics(app: web.Application) -> None:
    """At the app's start: the listener counts requests in the node's registry, and the
    event-loop lag the node's monitor measures goes there too (server/main.py sets the
    monitor after make_app)."""
    node = app[NODE]
    app[REQUEST_METRICS] = node.metrics.requests  # read by server/http_server.py
    monitor = app.get(LOOP_MONITOR)
    if monitor is not None:
        node.loop_monitor = monitor
        monitor.observe = node.metrics.loop_lag.observe


# -- internal: the controller's broker sessions --------------------------------------------------


# Each handler checks the caller's proof once more: the middleware refuses every internal path
# without one, and this guards a route added (or spelled) in a way its test would miss.


async def register_broker(request: web.Request) -> web.Response:
    require_internal_peer(request)
    body = await _json_object(
        request,
        {
            "cluster_id",
            "broker_id",
            "incarnation_id",
            "http_url",
            "raft_address",
            "rack",
            "kafka_address",
        },
        {"cluster_id", "broker_id", "incarnation_id", "http_url", "raft_address"},
    )
    return json_response(await node_of(request).controller.register(body))


async def broker_heartbeat(request: web.Request) -> web.Response:
    require_internal_peer(request)
    body = await _json_object(
        request, {"broker_epoch", "incarnation_id", "applied_index"}, {"broker_epoch"}
    )
    broker_id = path_int(request, "broker")
    return json_response(await node_of(request).controller.heartbeat(broker_id, body))


async def register_controller(request: web.Request) -> web.Response:
    require_internal_peer(request)
    fields = {"cluster_id", "controller_id", "incarnation_id", "http_url", "raft_address"}
    body = await _json_object(request, fields | {"directory_id"}, fields)
    return json_response(await node_of(request).controller.register_controller(body))


async def allocate_producer_ids(request: web.Request) -> web.Response:
    require_internal_peer(request)
    body = await _json_object(request, {"broker_id", "broker_epoch"}, {"broker_id", "broker_epoch"})
    return json_response(await node_of(request).controller.allocate_producer_ids(body))


async def alter_isr(request: web.Request) -> web.Response:
    require_internal_peer(request)
    body = await _json_object(request, {"leader", "partitions"}, {"leader", "partitions"})
    return json_response(await node_of(request).controller.alter_isr(body))


async def replica_fetch(request: web.Request) -> web.Response:
    peer = require_internal_peer(request)
    node = node_of(request)
    fetch_request = FetchRequest.from_json(await read_json(request, node.config.max_request_bytes))
    if fetch_request.replica_id != peer:
        raise ApiError(
            INVALID_REQUEST,
            f"replica_id {fetch_request.replica_id} is not the node that signed the call ({peer})",
        )
    body = await node.replica_manager.fetch_handler.fetch(fetch_request)
    return web.Response(body=body, content_type="application/octet-stream")


# -- the app -------------------------------------------------------------------------------------


def make_app(node: Node) -> web.Application:
    internal_auth = internal_auth_middleware(
        node.internal_auth,
        node.node_id,
        node.config.socket_request_max_bytes,
        SYSTEM_CLOCK.wall_ms,
    )
    # Client authentication and ACLs run after the internal-auth check, which marks the
    # cluster's own calls. (http_acls imports this module, hence the import here.)
    from server.http_acls import add_routes as add_acl_routes
    from server.http_brokers import add_routes as add_broker_routes
    from server.http_cluster_views import add_routes as add_cluster_view_routes
    from server.http_configs import add_routes as add_config_routes
    from server.http_console import add_routes as add_console_routes
    from server.http_disk import add_routes as add_disk_routes
    from server.http_groups import add_routes as add_group_routes
    from server.http_log_dirs import add_routes as add_log_dir_routes
    from server.http_quorum import add_routes as add_quorum_routes
    from server.http_reassignments import add_routes as add_reassignment_routes
    from server.http_replicas import add_routes as add_replica_routes

    client_security = security_middleware(node.config, SYSTEM_CLOCK.monotonic_s)
    app = web.Application(
        middlewares=[errors_as_json, cors_middleware, internal_auth, client_security],
        client_max_size=1 << 40,
    )
    app[NODE] = node
    install_cors(app)
    app.on_response_prepare.append(_add_metadata_index)
    app.on_startup.append(_start_metrics)
    r = app.router
    r.add_get("/v1/cluster", get_cluster)
    r.add_get("/v1/cluster/quorum", get_quorum)
    add_quorum_routes(r)
    add_cluster_view_routes(r)
    r.add_get("/v1/health/ready", get_ready)
    r.add_get("/v1/topics", list_topics)
    r.add_post("/v1/topics", create_topic)
    r.add_get("/v1/topics/{topic}", describe_topic)
    r.add_delete("/v1/topics/{topic}", delete_topic)
    r.add_post("/v1/topics/{topic}/partitions", add_partitions)
    r.add_get("/v1/topics/{topic}/configs", get_configs)
    r.add_put("/v1/topics/{topic}/configs", put_configs)
    r.add_post("/v1/topics/{topic}/records", produce_topic)
    r.add_post("/v1/topics/{topic}/partitions/{partition}/records", produce_partition)
    r.add_get("/v1/topics/{topic}/partitions/{partition}/records", fetch)
    r.add_get("/v1/topics/{topic}/partitions/{partition}/offsets", get_offsets)
    r.add_post("/v1/producers", new_producer)
    r.add_post("/v1/elections", elect_leaders)
    r.add_get("/metrics", get_metrics)
    add_acl_routes(r)
    add_broker_routes(r)
    add_group_routes(r)
    add_config_routes(r)
    add_log_dir_routes(r)
    add_replica_routes(r)
    add_reassignment_routes(r)
    add_disk_routes(r)
    add_console_routes(r)
    r.add_post("/v1/internal/brokers", register_broker)
    r.add_post("/v1/internal/brokers/{broker}/heartbeat", broker_heartbeat)
    r.add_post("/v1/internal/controllers", register_controller)
    r.add_post("/v1/internal/producer-ids", allocate_producer_ids)
    r.add_post("/v1/internal/alter-isr", alter_isr)
    r.add_post("/v1/internal/replica-fetch", replica_fetch)
    return app
