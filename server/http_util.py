"""HTTP plumbing shared by the handlers: JSON bodies, query parameters, errors as JSON.

Every error leaves the node as API.md's JSON (``error_code``, ``error``, ``message``), including
the ones aiohttp would answer in plain text (unknown path, wrong method, body too large).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from client.protocol import (
    INVALID_REQUEST,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    NOT_LEADER_OR_FOLLOWER,
    RECORD_TOO_LARGE,
    UNKNOWN_SERVER_ERROR,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# curl -d sends form-urlencoded; REST Proxy clients send the vnd.kafka types.
_JSON_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/json")


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body) + b"\n",
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(error: ApiError, request: web.Request | None = None) -> web.Response:
    headers: dict[str, str] = {}
    retry_after = error.extra.get("retry_after_s")
    body = error.to_json()
    body.pop("retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if error.kind is NOT_LEADER_OR_FOLLOWER and request is not None:
        headers["Location"] = str(error.extra["leader_url"]).rstrip("/") + request.path_qs
        headers["X-Leader-Id"] = str(error.extra["leader_id"])
        headers["X-Leader-Epoch"] = str(error.extra["leader_epoch"])
    return json_response(body, error.status, headers)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e, request)
    except web.HTTPNotFound:
        return error_response(ApiError(NOT_FOUND, f"no such endpoint: {request.path}"))
    except web.HTTPMethodNotAllowed as e:
        allowed = ", ".join(sorted(e.allowed_methods))
        return error_response(
            ApiError(
                METHOD_NOT_ALLOWED, f"{request.method} is not allowed here (allowed: {allowed})"
            )
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(
            ApiError(UNKNOWN_SERVER_ERROR, "unexpected server error; see the node's log")
        )


async def read_json(request: web.Request, limit_bytes: int) -> Any:
    """The request's JSON body, read without ever holding more than ``limit_bytes``."""
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if (
        ctype
        and ctype not in _JSON_TYPES
        and not (ctype.startswith("application/vnd.kafka") and ctype.endswith("json"))
    ):
        raise ApiError(
            UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {ctype} is not supported; send application/json",
        )
    too_large = ApiError(
        RECORD_TOO_LARGE, f"the request body is larger than the limit of {limit_bytes} bytes"
    )
    if request.content_length is not None and request.content_length > limit_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > limit_bytes:
            raise too_large
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data.strip():
        raise ApiError(INVALID_REQUEST, "the request body is empty; send a JSON object")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ApiError(INVALID_REQUEST, f"malformed JSON: {e}") from None


def query_int(
    request: web.Request, name: str, default: int | None, minimum: int, maximum: int
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            INVALID_REQUEST, f"query parameter {name} must be an integer, got {raw!r}"
        ) from None
    if not minimum <= value <= maximum:
        raise ApiError(
            INVALID_REQUEST,
            f"query parameter {name} must be in [{minimum}, {maximum}], got {value}",
        )
    return value


def query_choice(request: web.Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.query.get(name, default)
    if value not in choices:
        raise ApiError(
            INVALID_REQUEST,
            f"query parameter {name} must be one of {', '.join(choices)}, got {value!r}",
        )
    return value


def path_int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 10:
        raise ApiError(INVALID_REQUEST, f"{name} must be a non-negative integer, got {raw!r}")
    return int(raw)
