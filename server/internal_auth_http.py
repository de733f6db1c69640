"""The aiohttp side of internal authentication (``server/internal_auth.py`` is the core).

The server side is one middleware, right after ``errors_as_json``: a request that carries any
proof header, and every request for ``/v1/internal/*``, must carry a valid proof, or it gets
401 SASL_AUTHENTICATION_FAILED before any handler runs. A valid one marks the request as the
cluster's own (``request[INTERNAL_PEER]`` is the signing node's id), for the handlers and the
later middlewares (client authentication and ACLs let the cluster's own calls through).

The check is in two steps (``server/internal_auth.py``). The headers first, before a byte of
the body is read: a request whose headers do not verify gets its 401 at once, its body is
neither read nor counted against ``queued.max.request.bytes``, and if that body has not fully
arrived the connection closes after the answer (nothing else can be read from it). Only a
request whose headers verify has its body read (at most ``socket.request.max.bytes``, through
``read_body``'s budget and read timeout); its SHA-256 must be the signed one, and then the
nonce is recorded. The handler gets a fresh stream over the same bytes and reads it as if
nothing had (``read_json`` streams ``request.content``).

The client side, :func:`signer`, makes the proof headers of the node's own calls.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from yarl import URL

from client.protocol import ApiError
from server.http_util import ClosingApiError, quoted, read_body, replay_body
from server.internal_auth import NONCE_BYTES, InternalAuth, has_proof, refused

log = logging.getLogger(__name__)

INTERNAL_PREFIX = "/v1/internal/"
# request[INTERNAL_PEER]: the id of the node whose valid proof the request carried.
INTERNAL_PEER = "kraft.internal_peer"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Signer = Callable[[str, URL, bytes, int], dict[str, str]]


def is_internal(request: web.Request) -> bool:
    """Whether the request is for an internal endpoint: by the route it matched (whatever
    encoding its path used) or by its path (so an unknown ``/v1/internal/x`` is one too)."""
    resource = request.match_info.route.resource
    canonical = "" if resource is None else resource.canonical
    return canonical.startswith(INTERNAL_PREFIX) or request.path.startswith(INTERNAL_PREFIX)


def internal_peer(request: web.Request) -> int | None:
    """The node that signed the request, or None for a client's request."""
    peer = request.get(INTERNAL_PEER)
    return peer if isinstance(peer, int) else None


def require_internal_peer(request: web.Request) -> int:
    """The signing node of an internal endpoint's request (the middleware guarantees one; a
    second check where the handler acts, in case a route escapes the middleware's test)."""
    peer = internal_peer(request)
    if peer is None:
        raise refused("internal endpoints answer only the cluster's own nodes")
    return peer


def internal_auth_middleware(
    auth: InternalAuth, node_id: int, body_max_bytes: int, now_ms: Callable[[], int]
) -> Middleware:
    """The server side (see the module doc) of node ``node_id``; ``now_ms`` is the wall
    clock."""

    @web.middleware
    async def internal_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not has_proof(request.headers):
            if is_internal(request):
                raise _unread(
                    request,
                    refused(
                        f"{quoted(request.path)} is a node-to-node endpoint: it needs proof of "
                        "the cluster secret (X-Kraft-* headers)"
                    ),
                )
            return await handler(request)
        try:
            proof = auth.check_headers(
                request.method, request.raw_path, request.headers, now_ms(), receiver_id=node_id
            )
        except ApiError as e:
            error = _unread(request, e)
            if error is e:  # a closing error is logged where it is answered
                _log(request, e)
            raise error from None
        body = await read_body(request, body_max_bytes)
        try:
            proof.check_body(body)
            peer = auth.accept(proof, now_ms())
        except ApiError as e:
            _log(request, e)
            raise
        replay_body(request, body)
        request[INTERNAL_PEER] = peer
        return await handler(request)

    return internal_auth


def _unread(request: web.Request, error: ApiError) -> ApiError:
    """The error to refuse a request with without reading its body: one that closes the
    connection after the answer if the body has not all arrived (the next request's head
    would be somewhere behind it, and it is not worth reading to find)."""
    if request.body_exists and not request.content.is_eof():
        return ClosingApiError(error.kind, error.message, error.extra)
    return error


def _log(request: web.Request, error: ApiError) -> None:
    log.info(
        "%s %s from %s: %s", request.method, quoted(request.path), request.remote, error.message
    )


def signer(auth: InternalAuth, node_id: int, now_ms: Callable[[], int]) -> Signer:
    """The proof headers of this node's calls: ``sign(method, url, body, target_id)``. The URL
    is signed as it goes on the wire (``url.raw_path_qs``), so pass the same URL object to
    aiohttp; ``target_id`` is the node called."""

    def sign(method: str, url: URL, body: bytes, target_id: int) -> dict[str, str]:
        nonce = secrets.token_hex(NONCE_BYTES)
        return auth.sign(
            node_id, method, url.raw_path_qs, body, now_ms(), nonce, target_id=target_id
        )

    return sign
