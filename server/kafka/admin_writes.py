"""What the admin APIs of the Kafka listener share: a topic's or resource's outcome (Kafka's
code and message, one per result), the response of the request's version, and the write of an
admin plan, on the controller here or forwarded to it as the HTTP request the plan is made of
(``server.http_api.write_or_forward``), so a rule never exists twice.

``validate_only`` is planned on this node's applied metadata and nothing is written (Kafka asks
its controller; a topic created a moment ago elsewhere may not be known here yet).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from client.protocol import ApiError
from kraft.records import MetadataRecord
from kraft.state import MetadataState
from server.http_api import write_or_forward
from server.kafka.apis import RequestContext
from server.kafka.entities import build
from server.kafka.errors import error_message, kafka_error_code
from server.node import Node


@dataclass(frozen=True)
class Outcome:
    """One topic's or resource's answer: Kafka's code and message (None: none)."""

    code: ErrorCode = ErrorCode.none
    message: str | None = None

    @classmethod
    def of(cls, e: ApiError) -> Outcome:
        return cls(kafka_error_code(e), error_message(e))

    @property
    def fields(self) -> dict[str, Any]:
        return {"error_code": self.code, "error_message": self.message}


OK = Outcome()
DUPLICATE_TOPIC = Outcome(ErrorCode.invalid_request, "Duplicate topic name.")
TOPIC_DENIED = Outcome(ErrorCode.topic_authorization_failed, "Authorization failed.")
CLUSTER_DENIED = Outcome(ErrorCode.cluster_authorization_failed, "Authorization failed.")


def readiness(node: Node) -> Outcome:
    """OK when ``node`` is ready (registered, its metadata caught up); else what each entry of
    an admin request is answered meanwhile: ``Node.require_ready``'s retriable error, the one
    the writes answer when their plan meets it. Never a raise: a handler that raises closes the
    client's connection, and a client retrying a node that is starting would see only that."""
    try:
        node.require_ready()
    except ApiError as e:
        return Outcome.of(e)
    return OK


def response_of(ctx: RequestContext, values: Mapping[str, Any]) -> Any:
    """The response of the request's version from ``values`` (throttle time 0)."""
    return build(load_response_schema(ctx.api_key, ctx.api_version), {"throttle_time": 0, **values})


def duplicates(names: Iterable[str | None]) -> set[str]:
    """The names given more than once (Kafka answers each of them INVALID_REQUEST once)."""
    return {n for n, count in Counter(names).items() if count > 1 and n is not None}


def named_once(items: Sequence[Any]) -> Iterator[tuple[str, Any]]:
    """A request's items (each with a ``name``) in order, as Kafka reads a topic list
    (CreateTopics, CreatePartitions): an item whose name no other has, with itself; a name
    given more than once, once, at its first place, with None (answered INVALID_REQUEST, none
    of its items carried out)."""
    twice = duplicates(item.name for item in items)
    answered: set[str] = set()
    for item in items:
        name: str = item.name
        if name not in twice:
            yield name, item
        elif name not in answered:
            answered.add(name)
            yield name, None


# -- the write, here or on the controller -----------------------------------------------------


async def forward_json(node: Node, method: str, path: str, body: Any) -> Any:
    """Sends an HTTP admin request to the controller as ``Node.forward`` relays an HTTP
    client's (``Node.forward_to_controller``). Returns the controller's JSON answer; raises its
    error as an ApiError."""
    status, answer = await node.forward_to_controller(method, path, body)
    if status >= 300:
        raise ApiError.from_json(answer if isinstance(answer, dict) else {}, status)
    return answer


Plan = Callable[[MetadataState], list[MetadataRecord]]


async def admin_write(
    node: Node,
    plan: Plan,
    validate_only: bool,
    forward: Callable[[], Awaitable[Any]],
) -> tuple[list[MetadataRecord] | None, Any]:
    """Carries out an admin plan: checked on this node's metadata only (``validate_only``),
    written on the controller, or forwarded to it (``forward``, the HTTP request of the same
    plan). Returns (the records planned here, None) or (None, the controller's answer)."""
    planned: list[list[MetadataRecord]] = []

    def keep(state: MetadataState) -> list[MetadataRecord]:
        records = plan(state)
        planned[:] = [records]
        return records

    if validate_only:
        node.require_ready()
        return keep(node.quorum.snapshot_state()), None
    _, answer = await write_or_forward(node, keep, forward)
    if answer is not None:
        return None, answer
    return planned[0] if planned else [], None


def topic_path(name: str, *rest: str) -> str:
    """The HTTP path of a topic (``rest``: below it) that a forwarded write names."""
    return "/".join(["/v1/topics", quote(name, safe=""), *rest])
