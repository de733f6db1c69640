"""The table of Kafka APIs this node answers on its Kafka listener, and the dispatch.

Each API is one ``ApiSpec``: its key, the versions we answer (never above the highest version
kio has and never a version we would answer wrongly), and a handler that takes the decoded kio
request of the request's version and returns the response dataclass of that same version
(``kio.index.load_response_schema(ctx.api_key, ctx.api_version)``), with throttle time 0. Only a
Produce with acks=0 returns None: Kafka sends no response to it.

Dispatch, Kafka's rules (``RequestContext.parseRequest`` and ``KafkaApis`` in Kafka):

- an API key absent from the table is absent from ApiVersions; a request for it closes the
  connection, as a Kafka broker does for an unknown key;
- a version outside the API's range closes the connection, except for ApiVersions: a client
  newer than us sends its newest ApiVersions first, and gets a v0 answer with
  UNSUPPORTED_VERSION and our ranges, from which it picks a version both know (KIP-511);
- a body that does not parse, or leaves bytes after it, closes the connection.

A handler's "ordered part" is what must run before the connection's next request starts
(server/kafka/listener.py pipelines a connection's requests): all of it, unless the handler
calls ``ctx.release_order()`` earlier. Only Produce does, once its batches are appended and
only its acks=all wait for the high watermark is left.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsResponseV0
from kio.schema.errors import ErrorCode
from kio.schema.index import api_key_map

from kraft.records import CLUSTER_RESOURCE_NAME
from server.authorizer import ANONYMOUS, Authorizer
from server.kafka import frames
from server.kafka.entities import build
from server.kafka.frames import NotServedError
from server.kafka.metadata import CLUSTER_OPERATIONS, operations_bitfield

if TYPE_CHECKING:
    from server.node import Node

API_VERSIONS_KEY = 18


def _nothing() -> None:
    """A request's ordered part ended outside a listener: nothing waits for it."""


@dataclass(frozen=True)
class RequestContext:
    """What a handler knows of the request besides its body."""

    node: Node  # server.node.Node of this process
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    principal: str  # "User:ANONYMOUS" on a PLAINTEXT listener
    client_host: str
    # The listener's number for the connection the request came on (its fetch sessions
    # live as long as it does); 0 for a request made outside a listener (tests).
    connection_id: int = 0
    # Ends the request's ordered part early: the connection's next request may start while
    # this one finishes (module docstring). Without a listener, nothing waits on it.
    release_order: Callable[[], None] = field(default=_nothing)


# A kio request dataclass in, the kio response dataclass of the same version out.
Handler = Callable[[RequestContext, Any], Awaitable[Any]]


@dataclass(frozen=True)
class ApiSpec:
    api_key: int
    min_version: int
    max_version: int  # the highest version kio has AND we answer correctly
    handler: Handler

    def __post_init__(self) -> None:
        assert 0 <= self.min_version <= self.max_version, self


def admin_specs() -> tuple[ApiSpec, ...]:
    """The admin APIs (server/kafka/admin_apis.py). Imported here, at first use, because that
    module imports ApiSpec and RequestContext from this one."""
    from server.kafka.admin_apis import ADMIN_APIS

    return ADMIN_APIS


def group_specs() -> tuple[ApiSpec, ...]:
    """The group APIs (server/kafka/group_apis.py), imported at first use for the same reason."""
    from server.kafka.group_apis import GROUP_APIS

    return GROUP_APIS


def acl_specs() -> tuple[ApiSpec, ...]:
    """The ACL APIs (server/kafka/acl_apis.py), imported at first use for the same reason."""
    from server.kafka.acl_apis import ACL_APIS

    return ACL_APIS


def sasl_specs() -> tuple[ApiSpec, ...]:
    """SaslHandshake and SaslAuthenticate (server/kafka/sasl_apis.py), imported at first use
    for the same reason."""
    from server.kafka.sasl_apis import SASL_APIS

    return SASL_APIS


def api_name(api_key: int) -> str:
    """Kafka's name of an API in snake case (``fetch``, ``api_versions``); ``unknown`` for a
    key Kafka does not have (a metrics label: bounded)."""
    return api_key_map.get(api_key, "unknown")


class ApiTable:
    """The APIs this node answers, by key."""

    def __init__(self, specs: tuple[ApiSpec, ...]) -> None:
        self.specs: dict[int, ApiSpec] = {}
        for spec in specs:
            assert spec.api_key not in self.specs, f"API {spec.api_key} is in the table twice"
            # Never a version kio has no classes for: the table promises what it can parse.
            load_request_schema(spec.api_key, spec.min_version)
            load_request_schema(spec.api_key, spec.max_version)
            self.specs[spec.api_key] = spec

    def versions(self) -> list[dict[str, int]]:
        """ApiVersions' api_keys: every API we answer with its range, by key."""
        return [
            {"api_key": s.api_key, "min_version": s.min_version, "max_version": s.max_version}
            for s in sorted(self.specs.values(), key=lambda s: s.api_key)
        ]


_TABLE: ApiTable | None = None


def api_table() -> ApiTable:
    """The node's API table: ApiVersions, the data, admin, group, ACL and SASL APIs (built
    once). Every listener answers the same ApiVersions, SASL or not, as Kafka's broker does."""
    global _TABLE
    if _TABLE is None:
        from server.kafka.data_apis import DATA_APIS

        _TABLE = ApiTable(
            (
                API_VERSIONS,
                *DATA_APIS,
                *admin_specs(),
                *group_specs(),
                *acl_specs(),
                *sasl_specs(),
            )
        )
    return _TABLE


@dataclass(frozen=True)
class Dispatched:
    """A request answered: its API and version, the response frame (None: no response,
    acks=0), the request and response entities (for /metrics: a fetch's wait, the error
    counts); None for an ApiVersions request too new to parse."""

    api_key: int
    api_version: int
    frame: bytes | None
    request: Any
    response: Any


async def dispatch(
    table: ApiTable,
    node: Node,
    frame: bytes,
    client_host: str,
    connection_id: int = 0,
    principal: str = ANONYMOUS,
    release_order: Callable[[], None] | None = None,
) -> Dispatched:
    """Answers one request frame (the bytes after its size prefix). Raises FrameError when the
    connection must close (module docstring). ``release_order`` is called when the request's
    ordered part is over, if the handler ends it before its answer (``ctx.release_order``)."""
    api_key, api_version, correlation_id = frames.peek(frame)
    spec = table.specs.get(api_key)
    if spec is None:
        raise NotServedError(f"API key {api_key} ({api_name(api_key)}) is not served here")
    if not spec.min_version <= api_version <= spec.max_version:
        if api_key != API_VERSIONS_KEY or api_version < spec.min_version:
            raise NotServedError(
                f"{api_name(api_key)} v{api_version} is not served here "
                f"(v{spec.min_version} to v{spec.max_version})"
            )
        # Read as the newest ApiVersions we know: its header's fixed part is what we need.
        known = load_request_schema(api_key, spec.max_version)
        frames.parse_header(frame, known.__header_schema__.__version__)
        response = build(
            ApiVersionsResponseV0,
            {"error_code": ErrorCode.unsupported_version, "api_keys": table.versions()},
        )
        body = frames.encode(response)
        return Dispatched(
            api_key, api_version, frames.response_frame(correlation_id, 0, body), None, response
        )
    request_cls = load_request_schema(api_key, api_version)
    head = frames.parse_header(frame, request_cls.__header_schema__.__version__)
    request = frames.decode(request_cls, frame, head.body_offset)
    ctx = RequestContext(
        node,
        api_key,
        api_version,
        correlation_id,
        head.client_id,
        principal,
        client_host,
        connection_id,
        release_order or _nothing,
    )
    response = await spec.handler(ctx, request)
    if response is None:
        return Dispatched(api_key, api_version, None, request, None)
    assert type(response) is load_response_schema(api_key, api_version), (
        f"{api_name(api_key)} v{api_version} answered with {type(response)}"
    )
    header_version = type(response).__header_schema__.__version__
    body = frames.encode(response)
    frame_out = frames.response_frame(correlation_id, header_version, body)
    return Dispatched(api_key, api_version, frame_out, request, response)


def error_counts(response: Any) -> dict[str, int]:
    """Kafka's error counts of a response (its RequestMetrics' ErrorsPerSec): every
    ``error_code`` field in it, NONE included, by Kafka's name."""
    counts: dict[str, int] = {}

    def walk(value: Any) -> None:
        if isinstance(value, tuple):
            for item in value:
                walk(item)
            return
        slots = getattr(type(value), "__dataclass_fields__", None)
        if slots is None:
            return
        for name in slots:
            item = getattr(value, name)
            if name == "error_code" and isinstance(item, ErrorCode):
                counts[item.name] = counts.get(item.name, 0) + 1
            elif isinstance(item, tuple) or hasattr(type(item), "__dataclass_fields__"):
                walk(item)

    walk(response)
    return counts


# -- authorization ---------------------------------------------------------------------------

_authorizers: weakref.WeakKeyDictionary[Node, tuple[int, Authorizer]] = weakref.WeakKeyDictionary()


def authorize(ctx: RequestContext, operation: str, resource_type: str, name: str) -> bool:
    """Whether the request's principal may do ``operation`` on the resource (Kafka's
    StandardAuthorizer over the cluster's ACLs); always, without an authorizer."""
    config = ctx.node.config
    if not config.authorizer_enabled:
        return True
    state = ctx.node.quorum.snapshot_state()
    cached = _authorizers.get(ctx.node)
    if cached is None or cached[0] != state.applied_index:
        authorizer = Authorizer(
            state.acls.values(), config.super_users, config.allow_everyone_if_no_acl_found
        )
        _authorizers[ctx.node] = cached = (state.applied_index, authorizer)
    return bool(cached[1].authorize(ctx.principal, operation, resource_type, name))


def authorized_operations(
    ctx: RequestContext, resource_type: str, name: str, operations: Iterable[str]
) -> int:
    """The resource's authorized-operations bit field for the request's principal: a bit per
    operation of ``operations`` (the type's supported ones) it may do."""
    return operations_bitfield(
        operations, lambda operation: authorize(ctx, operation, resource_type, name)
    )


def cluster_authorized_operations(ctx: RequestContext) -> int:
    """The cluster's authorized operations when a request asks for them (Metadata v8-v10,
    DescribeCluster), as Kafka answers: none (0) without DESCRIBE on the cluster."""
    if not authorize(ctx, "DESCRIBE", "CLUSTER", CLUSTER_RESOURCE_NAME):
        return 0
    return authorized_operations(ctx, "CLUSTER", CLUSTER_RESOURCE_NAME, CLUSTER_OPERATIONS)


# -- ApiVersions -----------------------------------------------------------------------------

# KIP-511: a client names its software; Kafka refuses names outside this pattern.
_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


async def api_versions(ctx: RequestContext, request: Any) -> Any:
    """ApiVersions: the APIs and versions this node answers (the table's), no features."""
    response_cls = load_response_schema(ctx.api_key, ctx.api_version)
    name = getattr(request, "client_software_name", None)
    version = getattr(request, "client_software_version", None)
    valid = name is None or (
        _SOFTWARE.fullmatch(name) is not None and _SOFTWARE.fullmatch(version or "") is not None
    )
    return build(
        response_cls,
        {
            "error_code": ErrorCode.none if valid else ErrorCode.invalid_request,
            # Kafka's answer to a malformed one names no API.
            "api_keys": api_table().versions() if valid else [],
            "throttle_time": 0,
        },
    )


API_VERSIONS = ApiSpec(API_VERSIONS_KEY, 0, 4, api_versions)
