"""Browsers and the cluster's origins: CORS for the console, and the browser-write rule.

The web console (``server/http_console.py``) is served by every node and calls the API on its
own origin; a 307 to another node (a partition leader, a group coordinator, the broker a
``/v1/brokers/{broker}/...`` call names) takes the browser to that node's origin, which must
then allow the console's origin. So the nodes trust exactly one set of origins: each
registered broker's and controller's advertised ``url`` as ``scheme://host:port`` (lower-case
scheme and host, explicit port), read from the metadata at answer time, plus this node's own
advertised URL (it may answer before its registration is applied).

- A request whose ``Origin`` is a cluster origin gets ``Access-Control-Allow-Origin`` (its
  ``Origin`` echoed), ``Vary: Origin`` and ``Access-Control-Expose-Headers`` (the headers the
  console reads), on every answer, streams too (they are added when the response is
  prepared). No ``Access-Control-Allow-Credentials``: the console never uses cookies or the
  browser's own credential cache; it sends ``Authorization`` itself.
- ``OPTIONS`` with an ``Origin`` on a ``/v1/`` path is a CORS preflight, answered here before
  routing would call it a 405: 204 for a cluster origin, 403 CLUSTER_AUTHORIZATION_FAILED
  naming the origin for any other.
- The browser-write rule: a request other than GET, HEAD and OPTIONS that carries an
  ``Origin`` (browsers send one on every such request, same-origin ones too; curl, the tools
  and the nodes' own calls never do) is refused with 403 CLUSTER_AUTHORIZATION_FAILED unless
  the ``Origin`` is a cluster origin AND the request carries ``X-Kraft-Console: 1``. A
  cross-site HTML form can send neither, and a cross-site script cannot send the header
  without a preflight, which is refused; so a page elsewhere cannot make a logged-in user's
  browser write to the cluster.
- The cross-site rule: a ``/v1/`` request a browser sends on behalf of another site
  (``Sec-Fetch-Site: cross-site`` or ``same-site``, which every current browser sends) is
  refused with 403 CLUSTER_AUTHORIZATION_FAILED unless its ``Origin`` is a cluster origin.
  Without it an ``<img src>`` or a link elsewhere could still make a browser send a GET that
  changes something (``GET /v1/topics/{topic}?auto_create=true`` creates the topic) or that
  carries credentials the browser cached; the console's own calls are same-origin, or carry
  a cluster ``Origin`` when a 307 takes them to another node.

Requests without ``Origin`` and ``Sec-Fetch-Site`` (every client but a browser) pass through
untouched: two header lookups on the produce and fetch paths, nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web

from client.protocol import CLUSTER_AUTHORIZATION_FAILED, ApiError
from server.http_records import node_of
from server.http_util import error_response, quoted
from server.node import Node

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The header the console sends on every API call. A 401 to a request carrying it has no
# WWW-Authenticate (the console asks with its own form, the browser must not show its dialog),
# and a browser's write needs it.
CONSOLE_HEADER = "X-Kraft-Console"

# What a browser may read of our answers besides the CORS-safelisted headers: where a 307 or
# 421 points, how long to wait, and the offsets a fetch reports in headers.
EXPOSED_HEADERS = (
    "X-Leader-Id, X-Leader-Epoch, X-Metadata-Index, Retry-After, "
    "Kafka-High-Watermark, Kafka-Log-Start-Offset, Kafka-Next-Offset"
)
ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE"
ALLOWED_HEADERS = "Authorization, Content-Type, X-Kraft-Console, Accept"
# How long a browser may reuse a preflight's answer (Chromium caps it at 7200 s): short, so
# a node removed from the cluster stops being trusted soon.
PREFLIGHT_MAX_AGE_S = 600

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_HOST = re.compile(r"[a-z0-9._-]+|[0-9a-f:.]+")

# request[_ALLOWED_ORIGIN]: the request's Origin header, set when it is a cluster origin.
_ALLOWED_ORIGIN = "kraft.cors_origin"


def normal_origin(text: str) -> str | None:
    """``text`` (an ``Origin`` header, or a broker's URL) as ``scheme://host:port`` with the
    scheme and host in lower case and the port explicit, or None when it names no HTTP(S)
    origin (``null``, another scheme, no host, a bad port, credentials in it). A URL's path,
    query and fragment are dropped; an IPv6 host keeps its brackets."""
    text = text.strip()
    if not text or text == "null" or any(c.isspace() or ord(c) < 0x21 for c in text):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        return None
    # A host name, an IPv4 or an IPv6 address: nothing else (the origins go into the CSP
    # header, where ";" or "'" would change its meaning).
    if _HOST.fullmatch(host) is None:
        return None
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def origins_of(urls: Iterable[str]) -> frozenset[str]:
    """The normal origins of ``urls`` (broker URLs), those that name one."""
    found = (normal_origin(url) for url in urls)
    return frozenset(origin for origin in found if origin is not None)


def is_cluster_origin(origin_header: str, cluster: frozenset[str]) -> bool:
    """Whether a request's ``Origin`` header names one of the cluster's origins."""
    origin = normal_origin(origin_header)
    return origin is not None and origin in cluster


def write_refusal(
    method: str, origin_header: str | None, console_header: str | None, cluster: frozenset[str]
) -> str | None:
    """Why the browser-write rule refuses the request, or None when it may go on (see the
    module doc): a write with an ``Origin`` must come from a cluster origin with
    ``X-Kraft-Console: 1``."""
    if origin_header is None or method in _SAFE_METHODS:
        return None
    if not is_cluster_origin(origin_header, cluster):
        return (
            f"a browser's {method} from origin {quoted(origin_header)} is refused: only the "
            "console served by the cluster's nodes may write from a browser"
        )
    if console_header != "1":
        return (
            f"a browser's {method} must carry the header {CONSOLE_HEADER}: 1 "
            "(the console sends it; a cross-site form cannot)"
        )
    return None


_OTHER_SITES = frozenset({"cross-site", "same-site"})


def site_refusal(
    path: str, fetch_site: str | None, origin_header: str | None, cluster: frozenset[str]
) -> str | None:
    """Why the cross-site rule refuses the request, or None when it may go on (see the module
    doc): an API request a browser sends for another site needs a cluster ``Origin``."""
    if fetch_site not in _OTHER_SITES or not path.startswith("/v1/"):
        return None
    if origin_header is not None and is_cluster_origin(origin_header, cluster):
        return None
    return (
        f"a browser's request for another site (Sec-Fetch-Site: {fetch_site}) is refused: "
        "browsers may call this API only from the console a node serves"
    )


def from_console(request: web.BaseRequest) -> bool:
    """Whether the request says it comes from the web console (``X-Kraft-Console: 1``)."""
    return request.headers.get(CONSOLE_HEADER) == "1"


class ClusterOrigins:
    """The cluster's origins on the node's current metadata, rebuilt after each new entry."""

    def __init__(self) -> None:
        self._index = -1
        self._origins: frozenset[str] = frozenset()

    def current(self, node: Node) -> frozenset[str]:
        """Each registered broker's and controller's origin and this node's own (see the
        module doc): a console served by a controller-only node is a cluster origin too."""
        state = node.quorum.snapshot_state()
        if state.applied_index != self._index:
            urls = [broker.http_url for broker in state.brokers.values()]
            urls += [controller.http_url for controller in state.controllers.values()]
            urls.append(node.config.advertised_http_url)
            self._origins = origins_of(urls)
            self._index = state.applied_index
        return self._origins


CLUSTER_ORIGINS = web.AppKey("cluster_origins", ClusterOrigins)


def cluster_origins(request: web.Request) -> frozenset[str]:
    """The cluster's origins, for the request's node (see :class:`ClusterOrigins`)."""
    return request.app[CLUSTER_ORIGINS].current(node_of(request))


def _preflight(request: web.Request, origin: str, cluster: frozenset[str]) -> web.StreamResponse:
    if not is_cluster_origin(origin, cluster):
        return error_response(
            ApiError(
                CLUSTER_AUTHORIZATION_FAILED,
                f"origin {quoted(origin)} is not one of the cluster's nodes: browsers may "
                "call this API only from the console a node serves",
            )
        )
    request[_ALLOWED_ORIGIN] = origin
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        },
    )


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Preflights, the browser-write rule and marking requests from a cluster origin (see the
    module doc); a request without ``Origin`` goes straight to ``handler``."""
    origin = request.headers.get("Origin")
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        refused = site_refusal(request.path, fetch_site, origin, cluster_origins(request))
        if refused is not None:
            raise ApiError(CLUSTER_AUTHORIZATION_FAILED, refused)
    if origin is None:
        return await handler(request)
    cluster = cluster_origins(request)
    if request.method == "OPTIONS" and request.path.startswith("/v1/"):
        return _preflight(request, origin, cluster)
    refusal = write_refusal(request.method, origin, request.headers.get(CONSOLE_HEADER), cluster)
    if is_cluster_origin(origin, cluster):
        # Also on the refusal below, so the console can read why.
        request[_ALLOWED_ORIGIN] = origin
    if refusal is not None:
        raise ApiError(CLUSTER_AUTHORIZATION_FAILED, refusal)
    return await handler(request)


async def _add_cors_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    origin = request.get(_ALLOWED_ORIGIN)
    if origin is None:
        if "Origin" in request.headers:
            _vary_origin(response)  # the answer would differ for another origin
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    _vary_origin(response)


def _vary_origin(response: web.StreamResponse) -> None:
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Origin"
    elif "origin" not in (v.strip().lower() for v in vary.split(",")):
        response.headers["Vary"] = f"{vary}, Origin"


def install_cors(app: web.Application) -> None:
    """Gives ``app`` the cluster-origin cache and the response hook that adds the CORS
    headers; :func:`cors_middleware` goes in its middleware list, right after
    ``errors_as_json`` (so a preflight is answered before routing would say 405)."""
    app[CLUSTER_ORIGINS] = ClusterOrigins()
    app.on_response_prepare.append(_add_cors_headers)
