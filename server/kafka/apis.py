"""The table of Kafka APIs this node answers on its Kafka listener, and the dispatch.

Each API is one ``ApiSpec``: its key, the versions we answer (never above the highest version
kio has and never a version we would answer wrongly), and a handler that takes the decoded kio
request of the request's version and returns the response dataclass of that same version
(``kio.index.load_response_schema(ctx.api_key, ctx.api_version)``), with throttle time 0.

An API absent from the table is absent from ApiVersions; a request for it closes the
connection, as a Kafka broker does for an unknown key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.node import Node


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
