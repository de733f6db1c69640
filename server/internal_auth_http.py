"""The aiohttp side of internal authentication (``server/internal_auth.py`` is the core).

The server side is one middleware, right after ``errors_as_json``: a request that carries any
proof header, and every request for ``/v1/internal/*``, must carry a valid proof, or it gets
401 SASL_AUTHENTICATION_FAILED before any handler runs. A valid one marks the request as the
cluster's own (``request[INTERNAL_PEER]`` is the signing node's id), for the handlers and the
later middlewares (client authentication and ACLs let the cluster's own calls through).

The signature covers the body's digest, so the middleware reads the body first (at most
``socket.request.max.bytes``), then hands the handler a fresh stream over the same bytes: the
handler reads it as if nothing had (``read_json`` streams ``request.content``).

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
from server.http_util import quoted, read_body, replay_body
from server.internal_auth import NONCE_BYTES, InternalAuth, has_proof, refused

log = logging.getLogger(__name__)

INTERNAL_PREFIX = "/v1/internal/"
# request[INTERNAL_PEER]: the id of the node whose valid proof the request carried.
INTERNAL_PEER = "kraft.internal_peer"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Signer = Callable[[str, URL, bytes], dict[str, str]]


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
    auth: InternalAuth, body_max_bytes: int, now_ms: Callable[[], int]
) -> Middleware:
    """The server side (see the module doc); ``now_ms`` is the wall clock."""

    @web.middleware
    async def internal_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        internal = is_internal(request)
        if not internal and not has_proof(request.headers):
            return await handler(request)
        if internal and not has_proof(request.headers):
            raise refused(
                f"{quoted(request.path)} is a node-to-node endpoint: it needs proof of the cluster "
                "secret (X-Kraft-* headers)"
            )
        body = await read_body(request, body_max_bytes)
        try:
            peer = auth.verify(request.method, request.raw_path, body, request.headers, now_ms())
        except ApiError as e:
            log.info(
                "%s %s from %s: %s", request.method, quoted(request.path), request.remote, e.message
            )
            raise
        replay_body(request, body)
        request[INTERNAL_PEER] = peer
        return await handler(request)

    return internal_auth


def signer(auth: InternalAuth, node_id: int, now_ms: Callable[[], int]) -> Signer:
    """The proof headers of this node's calls: ``sign(method, url, body)``. The URL is signed
    as it goes on the wire (``url.raw_path_qs``), so pass the same URL object to aiohttp."""

    def sign(method: str, url: URL, body: bytes) -> dict[str, str]:
        return auth.sign(
            node_id, method, url.raw_path_qs, body, now_ms(), secrets.token_hex(NONCE_BYTES)
        )

    return sign
