"""The routes the fuzz tier builds its requests from, and what it knows of the live cluster.

The routes are the real ones (``server.http_api.make_app``); each one that takes a body has a
valid body here, and each that reads query parameters names them. The topics: the fuzz reads
and writes ``MAIN_TOPIC``, which the checks after the run write to again, so requests that a
valid server must carry out and that would spoil it (deleting it, reconfiguring it) are
pointed elsewhere: DELETE at ``DOOMED_TOPIC``, configuration and partition changes at
``CONFIG_TOPIC``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

from server.acls import BINDING_FIELDS
from tests.fuzz.wire import Request

# The topic the fuzz reads and writes (records in every partition) and the after-run checks
# write to; it is never deleted or reconfigured.
MAIN_TOPIC = "fuzz"
MAIN_PARTITIONS = 3
# The group the fuzz joins and commits to, and a member id (none exists by that id).
GROUP = "fuzz-group"
# Path parameters that are names (besides the topic), with the values a request may name.
NAMED_SEGMENTS = {
    "group": (GROUP, "nope"),
    "member": ("fuzz-member", "nope"),
    # A replica's file (the disk view) and a console page or asset: names, never numbers.
    "name": ("00000000000000000000.log", "partition.metadata", "nope.log"),
    "path": ("topics", "assets/console.css", "assets/js/app.js", "nope.js"),
}
# Configuration changes and added partitions go here; deletes here.
CONFIG_TOPIC = "fuzz-configs"
DOOMED_TOPIC = "fuzz-doomed"
# A valid name the fuzz may create (once; then 409).
NEW_TOPIC = "fuzz-created"

# The node's read timeout for the fuzz cluster (http.request.read.timeout.ms): short, so a
# request the server waits on ends quickly.
READ_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class Context:
    """What the strategies need to know of the live cluster to build valid requests."""

    cluster_id: str
    topic_ids: dict[str, str]
    node_ids: tuple[int, ...]
    urls: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    """A request, the node it goes to, and what its answer must respect beyond the rules
    every answer keeps (see ``test_http_fuzz.check``)."""

    request: Request
    node: int  # index into the cluster's nodes
    route: str  # the route template it was built from ("raw" for raw bytes)
    # Numbers in the request that are not plain ASCII digits ("١", "+1", " 1", "1_0") in a
    # place the handler parses: a 2xx (or, for path segments, a 3xx) answer means it took
    # them as numbers.
    odd_numbers: tuple[str, ...] = ()
    odd_path_numbers: tuple[str, ...] = ()
    # The request carries a valid proof of the cluster secret (the internal fuzz signs its
    # requests): an internal endpoint may do what it asks.
    signed: bool = False

    def __repr__(self) -> str:
        extra = ""
        if self.odd_numbers or self.odd_path_numbers:
            extra = f", odd numbers {self.odd_numbers + self.odd_path_numbers}"
        return f"Case(node {self.node}, {self.route}{extra}: {self.request.summary()})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis prints a falsifying example: the request's bytes, short."""
        printer.text(repr(self))


# -- routes --------------------------------------------------------------------------------------


def app_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the node serves, from the real ``make_app`` (a
    stand-in node: only the routing table is read)."""
    from server.http_api import make_app

    app = make_app(mock.MagicMock())
    return [
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    ]


_FETCH_QUERY = ("offset", "max_records", "max_bytes", "timeout_ms", "format", "follow")
# The query parameters each route reads.
QUERY: dict[str, tuple[str, ...]] = {
    "/v1/topics/{topic}/records": ("acks", "timeout_ms"),
    "/v1/topics/{topic}/partitions/{partition}/records": ("acks", "timeout_ms"),
    "/v1/topics/{topic}/partitions/{partition}/offsets": ("timestamp",),
    "/v1/acls": BINDING_FIELDS,
    "/v1/groups/{group}/offsets": ("topic",),
    "/v1/reassignments": ("topic",),
    "/v1/topics": ("detail",),
    "/v1/brokers/{broker}/replicas": ("topics",),
    "/v1/brokers/{broker}/log-dirs": ("topics",),
    "/v1/cluster/events": ("after", "limit"),
    "/v1/cluster/quorum/voters/{voter}": ("directory_id",),
    "/v1/brokers/{broker}/partitions/{topic}/{partition}/files/{name}": (
        "max_bytes",
        "print_data",
        "deep_iteration",
        "offsets_decoder",
    ),
}
FETCH_QUERY = {("GET", "/v1/topics/{topic}/partitions/{partition}/records"): _FETCH_QUERY}
# Parameters read as integers (their odd numbers must be refused).
INT_PARAMETERS = frozenset(
    {"max_records", "max_bytes", "timeout_ms", "timestamp", "offset", "after", "limit"}
)


def _record_list(ctx: Context, with_partition: bool) -> dict[str, Any]:
    first: dict[str, Any] = {
        "key": "fuzz-key",
        "value": {"n": 1, "text": "fuzz"},
        "headers": {"h": "v"},
    }
    second: dict[str, Any] = {
        "value_b64": base64.b64encode(b"\x00\x01\x02").decode(),
        "timestamp": 1_700_000_000_000,
        "headers": [["a", "1"], ["a", None]],
    }
    if with_partition:
        second["partition"] = 1
    return {"records": [first, second, {"key": None, "value": "plain"}]}


def _replica_fetch(ctx: Context) -> dict[str, Any]:
    return {
        "replica_id": ctx.node_ids[-1],
        "max_wait_ms": 0,
        "max_bytes": 1 << 20,
        "partitions": [
            {
                "topic": MAIN_TOPIC,
                "partition": 0,
                "topic_id": ctx.topic_ids[MAIN_TOPIC],
                "leader_epoch": 0,
                "fetch_offset": 0,
                "flushed_offset": 0,
                "last_fetched_epoch": -1,
            }
        ],
    }


# A valid body for each (method, route) that takes one.
BODIES: dict[tuple[str, str], Callable[[Context], Any]] = {
    ("POST", "/v1/topics"): lambda ctx: {
        "name": NEW_TOPIC,
        "partitions": 1,
        "replication_factor": 1,
        "configs": {"retention.ms": "600000"},
    },
    ("POST", "/v1/topics/{topic}/partitions"): lambda ctx: {"count": 1},
    ("PUT", "/v1/topics/{topic}/configs"): lambda ctx: {
        "configs": {"retention.ms": "604800000", "max.message.bytes": "1048588"}
    },
    # The rate that means no throttle: a mutation that keeps it valid changes nothing here,
    # as no topic of the fuzz names throttled replicas.
    ("PUT", "/v1/brokers/{broker}/configs"): lambda ctx: {
        "configs": {"leader.replication.throttled.rate": "9223372036854775807"}
    },
    ("POST", "/v1/topics/{topic}/records"): lambda ctx: _record_list(ctx, True),
    ("POST", "/v1/topics/{topic}/partitions/{partition}/records"): lambda ctx: _record_list(
        ctx, False
    ),
    ("POST", "/v1/producers"): lambda ctx: {},
    ("POST", "/v1/elections"): lambda ctx: {
        "election_type": "PREFERRED",
        "partitions": [{"topic": MAIN_TOPIC, "partition": 0}],
    },
    # A cancel (writes nothing: the partition is not moving); a mutated list moves only the
    # topic meant for changes.
    ("POST", "/v1/reassignments"): lambda ctx: {
        "partitions": [{"topic": CONFIG_TOPIC, "partition": 0, "replicas": None}]
    },
    # A controller that does not follow the log: refused (409), the voters unchanged; a
    # removal needs the voter's directory id, which no mutation guesses.
    ("POST", "/v1/cluster/quorum/voters"): lambda ctx: {
        "voter_id": 99,
        "directory_id": "AAAAAAAAAAAAAAAAAAAAAA",
        "raft_address": "127.0.0.1:1",
    },
    ("POST", "/v1/acls"): lambda ctx: {
        "acls": [
            {
                "resource_type": "TOPIC",
                "resource_name": MAIN_TOPIC,
                "pattern_type": "LITERAL",
                # Not a user the secure fuzz signs in as: an ACL the fuzz creates, however
                # mutated, never widens what those users may do.
                "principal": "User:bob",
                "host": "*",
                "operation": "READ",
                "permission": "ALLOW",
            }
        ]
    },
    ("POST", "/v1/groups/{group}/heartbeat"): lambda ctx: {
        "member_epoch": 0,
        "topics": [MAIN_TOPIC],
        "session_timeout_ms": 6000,
        "client_id": "fuzz",
    },
    ("POST", "/v1/groups/{group}/offsets"): lambda ctx: {
        "offsets": [{"topic": MAIN_TOPIC, "partition": 0, "offset": 1, "metadata": "fuzz"}]
    },
    ("POST", "/v1/internal/brokers"): lambda ctx: {
        "cluster_id": ctx.cluster_id,
        "broker_id": ctx.node_ids[0],
        "incarnation_id": "fuzz-incarnation",
        "http_url": ctx.urls[0],
        "raft_address": "127.0.0.1:1",
    },
    ("POST", "/v1/internal/brokers/{broker}/heartbeat"): lambda ctx: {
        "broker_epoch": 0,
        "incarnation_id": "fuzz-incarnation",
        "applied_index": 0,
    },
    ("POST", "/v1/internal/controllers"): lambda ctx: {
        "cluster_id": ctx.cluster_id,
        "controller_id": ctx.node_ids[0],
        "incarnation_id": "fuzz-incarnation",
        "http_url": ctx.urls[0],
        "raft_address": "127.0.0.1:1",
    },
    ("POST", "/v1/internal/producer-ids"): lambda ctx: {
        "broker_id": ctx.node_ids[0],
        "broker_epoch": 0,
    },
    ("POST", "/v1/internal/alter-isr"): lambda ctx: {
        "leader": ctx.node_ids[0],
        "partitions": [
            {
                "topic_id": ctx.topic_ids[MAIN_TOPIC],
                "partition": 0,
                "leader_epoch": 0,
                "partition_epoch": 0,
                "isr": list(ctx.node_ids),
            }
        ],
    },
    ("POST", "/v1/internal/replica-fetch"): _replica_fetch,
}
