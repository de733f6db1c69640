"""HTTP plumbing shared by the handlers: JSON bodies, checked numbers, errors as JSON.

Every error leaves the node as API.md's JSON (``error_code``, ``error``, ``message``), including
the ones aiohttp would answer in plain text (unknown path, wrong method, body too large); the
ones aiohttp answers before any handler runs (a malformed request line or header) are
``server/http_server.py``'s.

Request bodies are read by :func:`read_json` only, within three limits: the endpoint's own
(``http.max.request.bytes``, or what a produce of ``max.message.bytes`` needs), the node-wide
``socket.request.max.bytes``, and ``queued.max.request.bytes`` over all requests at once (the
:class:`BodyBudget`); a body that stalls for ``http.request.read.timeout.ms`` between two parts
gets a 408 and its connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from client.protocol import (
    CLUSTER_AUTHORIZATION_FAILED,
    INVALID_REQUEST,
    METHOD_NOT_ALLOWED,
    NOT_COORDINATOR,
    NOT_FOUND,
    NOT_LEADER_OR_FOLLOWER,
    REQUEST_READ_TIMEOUT,
    REQUEST_TOO_LARGE,
    SASL_AUTHENTICATION_FAILED,
    SERVER_BUSY,
    TOO_MANY_REQUESTS,
    UNKNOWN_SERVER_ERROR,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
    ErrorKind,
)
from server import limits
from server.byte_budget import ByteBudget

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# curl -d sends form-urlencoded; REST Proxy clients send the vnd.kafka types.
_JSON_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/json")


# Java's int and long: partitions, counts and ids are ints, offsets and timestamps longs.
INT_MAX = (1 << 31) - 1
LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1
# ASCII digits only: str.isdigit() is true for "²" and int() takes "٣" (Arabic-Indic three),
# " 7" and "1_0". Nineteen digits hold any long; more are refused before int() runs.
_INTEGER = re.compile(r"-?[0-9]{1,19}")
# A value quoted back in an error message is cut to this many characters.
_QUOTED_CHARS_MAX = 24


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body) + b"\n",
        status=status,
        content_type="application/json",
        headers=headers,
    )


# The values of a fetch's ``follow`` parameter (any case) that ask for a stream; anything else
# is a plain fetch. The fetch handler and /metrics' long-poll label read it alike.
FOLLOW_VALUES = frozenset({"true", "1", "yes"})


# The error an answer carries, for the listener's one log line per client error
# (server/http_server.py) without reading the JSON back.
API_ERROR = web.ResponseKey("api_error", ApiError)


def error_response(error: ApiError, request: web.BaseRequest | None = None) -> web.Response:
    headers: dict[str, str] = {}
    retry_after = error.extra.get("retry_after_s")
    body = error.to_json()
    body.pop("retry_after_s", None)
    if len(error.message) > limits.ERROR_MESSAGE_CHARS_MAX:
        body["message"] = error.message[: limits.ERROR_MESSAGE_CHARS_MAX] + "..."
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if error.kind is NOT_LEADER_OR_FOLLOWER and request is not None:
        headers["Location"] = str(error.extra["leader_url"]).rstrip("/") + request.path_qs
        headers["X-Leader-Id"] = str(error.extra["leader_id"])
        headers["X-Leader-Epoch"] = str(error.extra["leader_epoch"])
    elif error.kind is NOT_COORDINATOR and request is not None:
        headers["Location"] = str(error.extra["leader_url"]).rstrip("/") + request.path_qs
        headers["X-Leader-Id"] = str(error.extra["leader_id"])
    response = json_response(body, error.status, headers)
    response[API_ERROR] = error
    return response


def quoted(text: str) -> str:
    """``text`` as an error message quotes it: repr, cut short (a message never echoes a
    10,000-character value back)."""
    if len(text) <= _QUOTED_CHARS_MAX:
        return repr(text)
    return repr(text[:_QUOTED_CHARS_MAX]) + f"... ({len(text)} characters)"


class ClosingApiError(ApiError):
    """An ApiError after which the connection is closed: the request's body was not read to
    its end (it stalled, or its framing is broken), so no next request can be found in it."""


class ClientGone(Exception):
    """The client closed its connection before its request was read: nobody to answer."""


# -- the byte budget of request bodies -----------------------------------------------------------


class BodyBudget:
    """The node's ``queued.max.request.bytes``: a :class:`ByteBudget` and a short wait for
    room. A request waits at most ``wait_s``, then gets SERVER_BUSY; it never holds bytes while
    it waits, so waiters cannot deadlock each other."""

    def __init__(
        self, capacity_bytes: int, wait_s: float = limits.BODY_BUDGET_WAIT_MS / 1000
    ) -> None:
        self.bytes = ByteBudget(capacity_bytes)
        self._wait_s = wait_s
        self._freed = asyncio.Event()

    async def take(self, size_bytes: int) -> None:
        """Takes ``size_bytes``, waiting briefly for room; raises SERVER_BUSY if none came."""
        if self.bytes.try_take(size_bytes):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ApiError(
                    SERVER_BUSY,
                    f"the node holds {self.bytes.held_bytes} bytes of request bodies, and "
                    f"{size_bytes} more would pass queued.max.request.bytes "
                    f"({self.bytes.capacity_bytes}); retry shortly",
                    {"retry_after_s": limits.BUSY_RETRY_AFTER_S},
                )
            try:
                await asyncio.wait_for(self._freed.wait(), remaining)
            except TimeoutError:
                pass
            if self.bytes.try_take(size_bytes):
                return

    def give_back(self, size_bytes: int) -> None:
        if size_bytes == 0:
            return
        self.bytes.give_back(size_bytes)
        # Wake every waiter once; each tries again and the ones that do not fit wait anew.
        self._freed.set()
        self._freed = asyncio.Event()


@dataclass
class BodyAllowance:
    """What one request may read: set on the request by ``server/http_server.py`` before the
    app sees it, and given back (all its bytes) when the request's handler is done."""

    budget: BodyBudget
    socket_request_max_bytes: int
    read_timeout_s: float
    held_bytes: int = 0

    async def take(self, size_bytes: int) -> None:
        await self.budget.take(size_bytes)
        self.held_bytes += size_bytes

    def release(self) -> None:
        self.budget.give_back(self.held_bytes)
        self.held_bytes = 0


BODY_ALLOWANCE = web.RequestKey("body_allowance", BodyAllowance)
# A body a middleware read already (see replay_body).
REPLAYED_BODY = web.RequestKey("replayed_body", bytes)


# -- errors as JSON ------------------------------------------------------------------------------

# aiohttp's own HTTP exceptions (a handler or aiohttp itself may raise them) by status, as
# the API's kinds; any other status keeps its number under its HTTP name.
_KINDS_BY_STATUS: dict[int, ErrorKind] = {
    400: INVALID_REQUEST,
    401: SASL_AUTHENTICATION_FAILED,
    403: CLUSTER_AUTHORIZATION_FAILED,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    408: REQUEST_READ_TIMEOUT,
    413: REQUEST_TOO_LARGE,
    414: REQUEST_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    429: TOO_MANY_REQUESTS,
    500: UNKNOWN_SERVER_ERROR,
    503: SERVER_BUSY,
}


def kind_for_status(status: int) -> ErrorKind:
    """The API's error kind for an HTTP error status."""
    kind = _KINDS_BY_STATUS.get(status)
    if kind is not None:
        return kind
    try:
        name = HTTPStatus(status).name
    except ValueError:
        name = "UNKNOWN_SERVER_ERROR" if status >= 500 else "INVALID_REQUEST"
    return ErrorKind(status * 100, name)


async def send_and_close(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Sends ``response`` now and closes the connection after it, without reading (lingering
    on) the rest of a body that may never come."""
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        pass
    request.protocol.force_close()


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ClosingApiError as e:
        # Logged by the listener, as every client error is (server/http_server.py).
        response = error_response(e, request)
        await send_and_close(request, response)
        return response
    except ApiError as e:
        return error_response(e, request)
    except (RequestPayloadError, HttpProcessingError):
        # A body read outside read_body (a middleware's) whose framing broke: as read_body's.
        error = ClosingApiError(
            INVALID_REQUEST, "malformed request body: its chunked framing is broken"
        )
        response = error_response(error, request)
        await send_and_close(request, response)
        return response
    except web.HTTPNotFound:
        return error_response(ApiError(NOT_FOUND, f"no such endpoint: {quoted(request.path)}"))
    except web.HTTPMethodNotAllowed as e:
        allowed = ", ".join(sorted(e.allowed_methods))
        return error_response(
            ApiError(
                METHOD_NOT_ALLOWED,
                f"{quoted(request.method)} is not allowed here (allowed: {allowed})",
            )
        )
    except web.HTTPException as e:
        if e.status < 400:
            raise  # a redirect or a success: not an error
        return error_response(ApiError(kind_for_status(e.status), e.reason))
    except ClientGone:
        return error_response(ApiError(INVALID_REQUEST, "the client went away mid-request"))
    except ConnectionError:
        if not _client_gone(request):
            raise  # an outgoing connection of ours failed: a server error, logged below
        return error_response(ApiError(INVALID_REQUEST, "the client went away"))
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(
            ApiError(UNKNOWN_SERVER_ERROR, "unexpected server error; see the node's log")
        )


# -- bodies --------------------------------------------------------------------------------------


async def read_json(
    request: web.Request, limit_bytes: int, too_large: ErrorKind = REQUEST_TOO_LARGE
) -> Any:
    """The request's JSON body, read by :func:`read_body` (its limits and errors), or
    UNSUPPORTED_MEDIA_TYPE (415) for a body that does not say it is JSON, INVALID_REQUEST for
    an empty or malformed one."""
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if (
        ctype
        and ctype not in _JSON_TYPES
        and not (ctype.startswith("application/vnd.kafka") and ctype.endswith("json"))
    ):
        raise ApiError(
            UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {quoted(ctype)} is not supported; send application/json",
        )
    data = await read_body(request, limit_bytes, too_large)
    if not data.strip():
        raise ApiError(INVALID_REQUEST, "the request body is empty; send a JSON object")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ApiError(INVALID_REQUEST, f"malformed JSON: {e}") from None


async def read_body(
    request: web.Request, limit_bytes: int, too_large: ErrorKind = REQUEST_TOO_LARGE
) -> bytes:
    """The request's body, read without ever holding more than ``limit_bytes`` (nor
    ``socket.request.max.bytes``), within the node's byte budget and read timeout (the
    request's :class:`BodyAllowance`, when the node's server set one).

    Errors: ``too_large`` (413) above ``limit_bytes``; REQUEST_TOO_LARGE above the node-wide
    limit; SERVER_BUSY (503) when the budget has no room; REQUEST_TIMED_OUT (408, and the
    connection closes) when the body stalls; INVALID_REQUEST (and the connection closes) for
    broken chunked framing; :class:`ClientGone` when the client left."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        # Not decompressed (the listener's auto_decompress is off): a few KB of gzip can
        # inflate to gigabytes before any limit sees them.
        raise ApiError(
            UNSUPPORTED_MEDIA_TYPE,
            f"Content-Encoding {quoted(encoding)} is not supported; send the body uncompressed",
        )
    allowance = request.get(BODY_ALLOWANCE)
    limit = limit_bytes
    if allowance is not None and allowance.socket_request_max_bytes <= limit:
        limit, too_large = allowance.socket_request_max_bytes, REQUEST_TOO_LARGE
        refusal = f"above socket.request.max.bytes ({limit}), the largest request this node reads"
    else:
        refusal = f"larger than this endpoint's limit of {limit} bytes"
    declared = request.content_length
    if declared is not None and declared > limit:
        raise ApiError(too_large, f"the request body ({declared} bytes) is {refusal}")
    replayed: bytes | None = request.get(REPLAYED_BODY)
    if replayed is not None:
        return replayed  # read (and counted in the budget) by a middleware already
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await _read_chunk(request, allowance, size, declared)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ApiError(too_large, f"the request body is {refusal}")
        if allowance is not None:
            # Counted as the bytes arrive, not as declared: a client that declares 100 MiB
            # and trickles holds only what it sent.
            try:
                await allowance.take(len(chunk))
            except ApiError as e:
                # The rest of the body is unread: no next request can be found after it.
                raise ClosingApiError(e.kind, e.message, e.extra) from None
        chunks.append(chunk)
    return b"".join(chunks)


def replay_body(request: web.Request, body: bytes) -> None:
    """Lets the handler read a body that a middleware read already (to check a signature, or
    the topic a create names): a fresh stream over the same bytes, as if nothing had. Its limit
    is above the body's size, so feeding it never pauses the connection's reading."""
    request[REPLAYED_BODY] = body  # read_body returns it, without counting it twice
    stream = StreamReader(
        request.protocol, limit=max(len(body), 1 << 16), loop=asyncio.get_running_loop()
    )
    if body:
        stream.feed_data(body)
    stream.feed_eof()
    request._payload = stream
    # Request.content is cached (reify) on first use: drop a copy made before the swap.
    request._cache.pop("content", None)


async def _read_chunk(
    request: web.Request, allowance: BodyAllowance | None, size: int, declared: int | None
) -> bytes:
    try:
        if allowance is None:
            return await request.content.read(limits.BODY_READ_CHUNK_BYTES)
        async with asyncio.timeout(allowance.read_timeout_s):
            return await request.content.read(limits.BODY_READ_CHUNK_BYTES)
    except TimeoutError:
        assert allowance is not None
        expected = "" if declared is None else f" of {declared}"
        raise ClosingApiError(
            REQUEST_READ_TIMEOUT,
            f"the request body stalled: {size}{expected} bytes arrived, then nothing for "
            f"{round(allowance.read_timeout_s * 1000)} ms (http.request.read.timeout.ms)",
        ) from None
    except (RequestPayloadError, HttpProcessingError):
        raise ClosingApiError(
            INVALID_REQUEST, "malformed request body: its chunked framing is broken"
        ) from None
    except ConnectionError:
        raise ClientGone from None


# -- numbers -------------------------------------------------------------------------------------


def parse_int(text: str, what: str, minimum: int, maximum: int) -> int:
    """``text`` as an integer of ASCII digits (an optional leading ``-``) within ``[minimum,
    maximum]``; else INVALID_REQUEST naming ``what``."""
    if _INTEGER.fullmatch(text):
        value = int(text)
        if minimum <= value <= maximum:
            return value
    raise ApiError(
        INVALID_REQUEST,
        f"{what} must be an integer in [{minimum}, {maximum}], got {quoted(text)}",
    )


def query_value(request: web.Request, name: str) -> str | None:
    """The query parameter's one value (None when absent); INVALID_REQUEST when it is given
    twice, since which of two values counts would be a guess."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ApiError(INVALID_REQUEST, f"query parameter {name} is given {len(values)} times")
    return values[0] if values else None


def query_int(
    request: web.Request, name: str, default: int | None, minimum: int, maximum: int
) -> int | None:
    raw = query_value(request, name)
    if raw is None or raw == "":
        return default
    return parse_int(raw, f"query parameter {name}", minimum, maximum)


def query_choice(request: web.Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = query_value(request, name)
    if value is None:
        value = default
    if value not in choices:
        raise ApiError(
            INVALID_REQUEST,
            f"query parameter {name} must be one of {', '.join(choices)}, got {quoted(value)}",
        )
    return value


def path_int(request: web.Request, name: str, maximum: int = INT_MAX) -> int:
    """A number in the path (a partition, a broker id): a Java int, not negative."""
    return parse_int(request.match_info[name], name, 0, maximum)
