"""The cluster admin APIs of the Kafka listener: DescribeCluster (the cluster id, a controller
id clients can reach, the brokers at their KAFKA addresses, the requester's authorized
operations) and DescribeLogDirs (this broker's log directory and its replicas' sizes, as
``GET /v1/brokers/{broker}/log-dirs`` answers). Both need DESCRIBE on the cluster where Kafka
asks for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from client.protocol import ApiError
from kraft.records import CLUSTER_RESOURCE_NAME
from kraft.state import MetadataState
from server.http_log_dirs import own_log_dirs
from server.kafka.admin_writes import CLUSTER_DENIED, OK, readiness, response_of
from server.kafka.apis import RequestContext, authorize, cluster_authorized_operations
from server.kafka.errors import kafka_error_code
from server.kafka.metadata import AUTHORIZED_OPERATIONS_OMITTED, controller_id, host_port

# DescribeCluster's endpoint types (KIP-919): a broker answers for brokers only.
BROKER_ENDPOINT = 1


# -- DescribeCluster ------------------------------------------------------------------------


def cluster_brokers(state: MetadataState, include_fenced: bool) -> list[dict[str, Any]]:
    """DescribeCluster's brokers: the registered brokers with a Kafka listener, by id; fenced
    ones only when asked (v2+), as Kafka lists its alive brokers."""
    out = []
    for broker in sorted(state.brokers.values(), key=lambda b: b.id):
        if broker.kafka_address is None or (broker.fenced and not include_fenced):
            continue
        host, port = host_port(broker.kafka_address)
        out.append(
            {
                "broker_id": broker.id,
                "host": host,
                "port": port,
                "rack": broker.rack,
                "is_fenced": broker.fenced,
            }
        )
    return out


async def describe_cluster(ctx: RequestContext, request: Any) -> Any:
    """DescribeCluster (key 60): the cluster id, a controller id clients can reach, the
    brokers at their Kafka addresses."""
    node = ctx.node
    endpoint_type = getattr(request, "endpoint_type", BROKER_ENDPOINT)
    if endpoint_type != BROKER_ENDPOINT:
        # Kafka's brokers answer for brokers only (KIP-919's controller endpoint is the
        # controller's own listener, which clients do not reach here).
        return response_of(
            ctx,
            {
                "error_code": ErrorCode.mismatched_endpoint_type,
                "error_message": "The request was sent to an endpoint of type BROKER, but we "
                "wanted an endpoint of type CONTROLLER",
                "endpoint_type": BROKER_ENDPOINT,
                "cluster_id": node.meta.cluster_id,
                "controller_id": -1,
                "brokers": [],
                "cluster_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
            },
        )
    state = node.quorum.snapshot_state()
    operations = AUTHORIZED_OPERATIONS_OMITTED
    if request.include_cluster_authorized_operations:
        operations = cluster_authorized_operations(ctx)
    return response_of(
        ctx,
        {
            "error_code": ErrorCode.none,
            "error_message": None,
            "endpoint_type": BROKER_ENDPOINT,
            "cluster_id": node.meta.cluster_id,
            "controller_id": controller_id(state, node.quorum.leader_id(), node.node_id),
            "brokers": cluster_brokers(
                state, bool(getattr(request, "include_fenced_brokers", False))
            ),
            "cluster_authorized_operations": operations,
        },
    )


# -- DescribeLogDirs ----------------------------------------------------------------------


def described_log_dirs(
    log_dirs: Iterable[Mapping[str, Any]], wanted: Mapping[str, set[int]] | None
) -> list[dict[str, Any]]:
    """http_log_dirs' directories (own_log_dirs) as DescribeLogDirs' results: the partitions
    asked (``wanted``: topic -> partitions; None: all), grouped by topic; a directory in error
    with Kafka's code and none."""
    results = []
    for d in log_dirs:
        if d["error"] is not None:
            error = ApiError.from_json(d["error"])
            results.append(
                {"error_code": kafka_error_code(error), "log_dir": d["log_dir"], "topics": []}
            )
            continue
        topics: dict[str, list[dict[str, Any]]] = {}
        for r in d["partitions"]:
            if wanted is not None and r["partition"] not in wanted.get(r["topic"], ()):
                continue
            topics.setdefault(r["topic"], []).append(
                {
                    "partition_index": r["partition"],
                    "partition_size": r["size"],
                    "offset_lag": r["offset_lag"],
                    "is_future_key": r["is_future"],
                }
            )
        results.append(
            {
                "error_code": ErrorCode.none,
                "log_dir": d["log_dir"],
                "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()],
                "total_bytes": d["total_bytes"],
                "usable_bytes": d["usable_bytes"],
                "is_cordoned": False,
            }
        )
    return results


async def describe_log_dirs(ctx: RequestContext, request: Any) -> Any:
    """DescribeLogDirs (key 35): this broker's log directory and its replicas' sizes, as
    GET /v1/brokers/{broker}/log-dirs answers (clients send it to each broker)."""
    # Readiness first: before the metadata is loaded, the ACLs are not. v1-v2 have no
    # top-level error: their answer is then no directory at all.
    if (unready := readiness(ctx.node)) is not OK:
        return response_of(ctx, {**unready.fields, "results": []})
    if not authorize(ctx, "DESCRIBE", "CLUSTER", CLUSTER_RESOURCE_NAME):
        return response_of(ctx, {**CLUSTER_DENIED.fields, "results": []})
    wanted: dict[str, set[int]] | None = None
    if request.topics is not None:
        wanted = {}
        for t in request.topics:
            wanted.setdefault(t.topic, set()).update(int(p) for p in t.partitions)
    names = None if wanted is None else frozenset(wanted)
    log_dirs = own_log_dirs(ctx.node, names) if names != frozenset() else []
    return response_of(ctx, {**OK.fields, "results": described_log_dirs(log_dirs, wanted)})
