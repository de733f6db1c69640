"""Kafka's DescribeLogDirs over HTTP: the log directories of one broker and the size of each
partition replica in them (what ``kraft-log-dirs --describe`` prints)::

    GET /v1/brokers/{broker}/log-dirs[?topics=a,b]
    -> {"broker_id", "log_dirs": [{"log_dir", "error", "total_bytes", "usable_bytes",
        "partitions": [{"topic", "partition", "size", "offset_lag", "is_future"}]}]}

As in Kafka, each broker answers about its own directories, so a node asked about another
broker answers 307 to it (the way ``/v1/brokers/{broker}/configs`` does). The answer follows
Kafka's ReplicaManager.describeLogDirs:

- ``size`` is the bytes of the replica's segment files (its log's ``size_bytes``);
- ``offset_lag`` of a current replica is ``max(high watermark - log end offset, 0)`` (Kafka's
  getLogEndOffsetLag; 0 unless a future replica is being moved, which this broker never does,
  so ``is_future`` is always false);
- a directory Kafka would have taken offline answers with ``error`` (KAFKA_STORAGE_ERROR)
  and no partitions. Kafka takes a whole directory offline at the first I/O error in it; here
  one partition log goes offline and the others keep serving, but the answer keeps Kafka's
  shape: a directory holding an offline (or unopenable) replica reports the error, naming
  those replicas, in place of its partitions.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from client.protocol import KAFKA_STORAGE_ERROR, ApiError
from server.http_configs import redirect_to_broker, requested_broker
from server.http_records import node_of
from server.http_util import json_response, query_value
from server.node import Node

# Names of offline replicas quoted in a directory's error; the rest are counted.
_OFFLINE_NAMED_MAX = 10


@dataclass(frozen=True)
class ReplicaSize:
    """What the answer says of one replica this broker holds."""

    topic: str
    partition: int
    size_bytes: int
    log_end_offset: int
    high_watermark: int
    offline: str | None = None  # why the replica's log is offline, if it is


def parse_topics(raw: str | None) -> frozenset[str] | None:
    """The ``topics`` query parameter: comma-separated names, empty ones skipped as Kafka's
    ``--topic-list`` skips them; None (every topic) when absent or naming none."""
    if raw is None:
        return None
    names = frozenset(name for name in raw.split(",") if name)
    return names or None


def offset_lag(replica: ReplicaSize) -> int:
    """Kafka's getLogEndOffsetLag for a current (not future) replica."""
    return max(replica.high_watermark - replica.log_end_offset, 0)


def _offline_message(log_dir: str, offline: list[str]) -> str:
    named = ", ".join(offline[:_OFFLINE_NAMED_MAX])
    more = len(offline) - _OFFLINE_NAMED_MAX
    if more > 0:
        named += f" and {more} more"
    return f"Log directory {log_dir} is offline: replicas {named} cannot be read or written"


def log_dir_answer(
    log_dir: str,
    replicas: Iterable[ReplicaSize],
    failed: Mapping[tuple[str, int], str],
    topics: frozenset[str] | None,
    disk: tuple[int, int] | None,
) -> dict[str, Any]:
    """One entry of ``log_dirs``: the replicas of ``topics`` (all when None) sorted by topic
    and partition, or the directory's error when a replica in it is offline or could not be
    opened (``failed``: replica -> why) or its file system cannot be read (``disk`` None;
    else (total bytes, usable bytes))."""
    replicas = list(replicas)
    offline = sorted(
        [(r.topic, r.partition) for r in replicas if r.offline is not None] + list(failed)
    )
    if offline or disk is None:
        if offline:
            message = _offline_message(log_dir, [f"{t}-{p}" for t, p in offline])
        else:
            message = f"Log directory {log_dir} is offline: its file system cannot be read"
        return {
            "log_dir": log_dir,
            "error": ApiError(KAFKA_STORAGE_ERROR, message).to_json(),
            "partitions": [],
        }
    chosen = sorted(
        (r for r in replicas if topics is None or r.topic in topics),
        key=lambda r: (r.topic, r.partition),
    )
    total_bytes, usable_bytes = disk
    return {
        "log_dir": log_dir,
        "error": None,
        "total_bytes": total_bytes,
        "usable_bytes": usable_bytes,
        "partitions": [
            {
                "topic": r.topic,
                "partition": r.partition,
                "size": r.size_bytes,
                "offset_lag": offset_lag(r),
                "is_future": False,
            }
            for r in chosen
        ],
    }


# -- the route ----------------------------------------------------------------------------------


def _replica_sizes(node: Node) -> tuple[list[ReplicaSize], dict[tuple[str, int], str]]:
    logs = node.replica_manager.logs
    sizes = []
    for (topic, index), partition in logs.partitions.items():
        log = partition.log
        offline = log.offline
        sizes.append(
            ReplicaSize(
                topic,
                index,
                0 if offline is not None else log.size_bytes,
                log.log_end_offset,
                log.high_watermark,
                None if offline is None else str(offline),
            )
        )
    return sizes, dict(logs.failed)


def _disk(log_dir: Path) -> tuple[int, int] | None:
    # One statvfs: what Kafka reads from the directory's FileStore.
    try:
        usage = shutil.disk_usage(log_dir)
    except OSError:
        return None
    return usage.total, usage.free


async def describe_log_dirs(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    broker_id = requested_broker(request)
    if broker_id != node.node_id:
        return redirect_to_broker(node, broker_id, request)
    topics = parse_topics(query_value(request, "topics"))
    return json_response({"broker_id": broker_id, "log_dirs": own_log_dirs(node, topics)})


def own_log_dirs(node: Node, topics: frozenset[str] | None) -> list[dict[str, Any]]:
    """This broker's log directories (one: its log.dirs), each as :func:`log_dir_answer`
    describes it, over HTTP and over Kafka's DescribeLogDirs (server/kafka/admin_cluster.py)."""
    log_dir = node.replica_manager.logs.log_dir.absolute()
    replicas, failed = _replica_sizes(node)
    return [log_dir_answer(str(log_dir), replicas, failed, topics, _disk(log_dir))]


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/brokers/{broker}/log-dirs", describe_log_dirs)
