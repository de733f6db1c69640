"""The node's HTTP listener: aiohttp's server with the node's connection limits, and a JSON
answer to every request aiohttp refuses by itself.

aiohttp answers a request it cannot parse (a 10,000-character URL, an unknown method, a
garbage header line, ``Content-Length: -5``, TLS bytes on the plaintext port) before any
middleware runs, in ``RequestHandler.handle_error``: in text/plain, with a traceback in the log
for each. :class:`JsonRequestHandler` answers them in the API's JSON with Kafka's error names,
logs one INFO line (the client's fault, not the node's) and closes the connection; a server
error still logs its traceback, once. Two flaws of aiohttp's parsing are worked around here: a
good request and a malformed one in the same read lost the good one (the parser is fed one
head at a time), and a body whose chunked framing breaks after its head was read left its
handler waiting (the handler's read fails instead).

The limits (``NodeConfig``; README's settings table):

- ``max.connections``: a connection opened while that many are open is answered SERVER_BUSY
  (503, ``Retry-After``) at its first request, or after ``http.request.read.timeout.ms`` if it
  sends none, and closed. The cluster's own calls are exempt, as Kafka exempts its
  inter-broker listener: clients filling the node must not get its brokers fenced. A
  connection over the limit is let in only if its first request's proof headers verify
  (:meth:`~server.internal_auth.InternalAuth.check_headers`: signature, timestamp, nonce not
  seen; the nonce is recorded later, by the middleware, once the body matches); carrying
  X-Kraft-* headers that do not verify earns the same 503 as any client. If the proof is then
  refused (its body is not the signed one, or a copy of the call came first), the connection
  closes after the 401.
- ``connections.max.idle.ms``: aiohttp's keep-alive timeout. Its timer runs from the moment a
  connection opens and again after each answer, and closes a connection waiting for its next
  request: one that never sent a byte, and one stuck inside its headers, alike (without an
  answer: nothing was asked).
- ``http.request.read.timeout.ms``: from a request's first byte to the end of its headers; past
  it, REQUEST_TIMED_OUT (408) and the connection closes. Each part of a body gets the same
  time in ``server/http_util.read_body``, and a TLS handshake gets it too.
- ``socket.request.max.bytes``: a ``Content-Length`` above it is refused (413
  REQUEST_TOO_LARGE) before the app runs or a byte of the body is read; a chunked body is
  counted as it is read.
- ``queued.max.request.bytes``: the :class:`~server.http_util.BodyBudget` every request's
  :class:`~server.http_util.BodyAllowance` takes from, given back when its handler is done.

Every answer passes :meth:`LimitedServer.guard` or :meth:`JsonRequestHandler.handle_error`:
both count it in /metrics (``server/metrics.py``: by method, route template, status and
caller, with its latency) and log one INFO line for each client error (a 4xx), with the method,
the path and the message made printable (a stranger's bytes forge no log line). A 4xx answered
to another node of the cluster (a forwarded request, signed by the node a client called) is
logged at DEBUG only: the node the client called logs the client's error, once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    ContentLengthError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    TransferEncodingError,
)
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo

from client.protocol import (
    INVALID_REQUEST,
    METHOD_NOT_ALLOWED,
    REQUEST_READ_TIMEOUT,
    REQUEST_TIMED_OUT,
    REQUEST_TOO_LARGE,
    SERVER_BUSY,
    UNKNOWN_SERVER_ERROR,
    ApiError,
)
from server import limits
from server.config import NodeConfig
from server.http_util import (
    API_ERROR,
    BODY_ALLOWANCE,
    BodyAllowance,
    BodyBudget,
    error_response,
    kind_for_status,
)
from server.internal_auth import InternalAuth
from server.internal_auth_http import internal_peer
from server.log_text import LOGGED_MESSAGE_CHARS_MAX, LOGGED_PATH_CHARS_MAX, error_of, printable
from server.metrics import (
    REQUEST_METRICS,
    UNMATCHED,
    RequestMetrics,
    endpoint_label,
    is_long_poll,
    method_label,
)

log = logging.getLogger(__name__)

_Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# The one line of a client error (a 4xx answer). The node log's repeat limit (server/logs.py)
# is keyed by the template, so the status, which the node chose, is part of it: a flood of one
# error (404s of a scanner) leaves the others (a 403, a 400) their own allowance, and what a
# client chose stays in the arguments, so it cannot make new templates.
CLIENT_ERROR_LINE = "client error: %s %s from %s: {status} %s: %s"


def client_error_template(status: int) -> str:
    """The client-error line's format string for an answer of ``status``."""
    return CLIENT_ERROR_LINE.format(status=int(status))


def log_client_error(
    method: str,
    path: str,
    remote: str | None,
    status: int,
    error: str,
    message: str,
    level: int = logging.INFO,
) -> None:
    """The line of one client error (module doc), at INFO unless told; every text a client
    chose is made :func:`printable`."""
    if not log.isEnabledFor(level):
        return
    log.log(
        level,
        client_error_template(status),
        printable(method, 16),
        printable(path, LOGGED_PATH_CHARS_MAX),
        remote or "-",
        printable(error, 64),
        printable(message, LOGGED_MESSAGE_CHARS_MAX),
    )


# The methods the API serves, named in the answer to any other.
_METHODS = "GET, POST, PUT, DELETE"


class ConnectionGate:
    """``max.connections``: counts the connections let in; one more is refused."""

    def __init__(self, max_connections: int) -> None:
        assert max_connections > 0, max_connections
        self.max_connections = max_connections
        self.open_connections = 0
        self.refused_connections = 0  # since start (for a later /metrics)

    def admit(self) -> bool:
        if self.open_connections >= self.max_connections:
            self.refused_connections += 1
            return False
        self.open_connections += 1
        return True

    def leave(self) -> None:
        assert self.open_connections > 0
        self.open_connections -= 1


def refusal(exc: BaseException | None) -> ApiError:
    """The API's error for a request aiohttp could not parse: short, and naming what is wrong
    without quoting the client's bytes back."""
    if isinstance(exc, LineTooLong):
        return ApiError(
            REQUEST_TOO_LARGE,
            f"the request line or a header line is longer than {limits.HTTP_LINE_BYTES_MAX} bytes",
        )
    if isinstance(exc, BadHttpMethod):
        if "HTTPS" in exc.message or exc.line.startswith("\x16\x03"):
            return ApiError(
                INVALID_REQUEST,
                "TLS on a plaintext HTTP listener: this listener speaks http://, not https://",
            )
        return ApiError(
            METHOD_NOT_ALLOWED, f"not an HTTP method this node serves (it serves {_METHODS})"
        )
    if isinstance(exc, InvalidURLError):
        return ApiError(INVALID_REQUEST, "the request's URL is malformed")
    if isinstance(exc, BadStatusLine):
        return ApiError(
            INVALID_REQUEST, "the request line is malformed; expected METHOD /path HTTP/1.1"
        )
    if isinstance(exc, InvalidHeader):
        return ApiError(INVALID_REQUEST, "a header line is malformed")
    if isinstance(exc, ContentLengthError):
        return ApiError(INVALID_REQUEST, "the body is shorter than its Content-Length")
    if isinstance(exc, TransferEncodingError):
        return ApiError(INVALID_REQUEST, "the body's Transfer-Encoding is malformed")
    if isinstance(exc, BadHttpMessage):
        text = exc.message.lower()
        if "content-length" in text:
            return ApiError(INVALID_REQUEST, "Content-Length must be one non-negative integer")
        if "too many headers" in text:
            return ApiError(REQUEST_TOO_LARGE, f"more than {limits.HTTP_HEADERS_MAX} header lines")
        if "header" in text:
            return ApiError(INVALID_REQUEST, "a header line is malformed")
        if "transfer-encoding" in text or "chunk" in text:
            return ApiError(INVALID_REQUEST, "the body's Transfer-Encoding is malformed")
    return ApiError(INVALID_REQUEST, "malformed HTTP request")


def _raw_response(error: ApiError, reason: str, headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 answer with the error's JSON, for a connection that has no request
    object to answer (its headers never arrived)."""
    fields = error.to_json()
    fields.pop("retry_after_s", None)  # a header, as error_response sends it
    body = orjson.dumps(fields) + b"\n"
    lines = [
        f"HTTP/1.1 {error.status} {reason}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def _busy_error(gate: ConnectionGate) -> ApiError:
    return ApiError(
        SERVER_BUSY,
        f"the node has {gate.max_connections} open connections (max.connections); retry shortly",
        {"retry_after_s": limits.BUSY_RETRY_AFTER_S},
    )


def _before_the_app(e: web.HTTPException) -> ApiError:
    if e.status == 417:
        return ApiError(kind_for_status(417), "Expect: only 100-continue is supported")
    return ApiError(kind_for_status(e.status), e.reason)


class JsonRequestHandler(RequestHandler):
    """aiohttp's connection protocol with the node's limits and JSON errors (module doc)."""

    def __init__(self, manager: LimitedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._gate = manager.gate
        self._read_timeout_s = manager.read_timeout_s
        self._metrics = manager.metrics
        self.admitted = False
        # Over max.connections, but a node of the cluster's (see the module doc).
        self.exempt = False
        self._headers_timer: asyncio.TimerHandle | None = None
        self._last_payload: StreamReader | None = None
        # Whether the request whose head is arriving is a HEAD: an answer to a head aiohttp
        # cannot parse must then carry no body either (it does not know the method).
        self._head_request = False
        self._in_head = False
        # The parser failed: the connection ends with that error's answer, and the bytes after
        # it are no request (fed on, they reset the head's state: a HEAD's answer got a body).
        self._parse_failed = False

    # -- max.connections -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.admitted = self._gate.admit()
        super().connection_made(transport)
        if not self.admitted:
            # Refused at its first request; one that sends none is refused at this timer.
            self._arm_headers_timer()

    def exempt_from_limit(self) -> None:
        """Lets this connection in past max.connections: its request's proof headers verify
        (the internal-auth middleware still checks its body before recording the nonce)."""
        self.exempt = True
        self._cancel_headers_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_headers_timer()
        if self.admitted:
            self.admitted = False
            self._gate.leave()
        super().connection_lost(exc)

    # -- http.request.read.timeout.ms for headers ------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # The parser is fed up to one blank line at a time. Fed all at once, a good request
        # followed by a malformed one in the same read lost the good one: aiohttp's parser
        # drops the requests it parsed in a call that then fails, and the error's answer went
        # out as the first request's. (The parser is incremental: any split parses the same.)
        # Only heads are split: the bytes of a body go to the parser in one piece, so a body of
        # blank lines (a stranger's 4 MB of CRLFs) costs one parser call per read, not one per
        # blank line; and at most HTTP_PIPELINED_HEADS_MAX pieces a read, then the rest whole.
        if self._parse_failed:
            return
        if not data:
            self._receive(data)
            return
        start, pieces = 0, 0
        while start < len(data):
            in_body = self._last_payload is not None and not self._last_payload.is_eof()
            end = -1
            if not in_body and pieces < limits.HTTP_PIPELINED_HEADS_MAX:
                end = data.find(b"\r\n\r\n", start)
            end = len(data) if end < 0 else end + 4
            pieces += 1
            self._receive(data[start:end])
            start = end
            last = self._messages[-1][0] if self._messages else None
            if self._force_close or self._close or self.transport is None:
                return
            if last is not None and not isinstance(last, RawRequestMessage):
                return  # a parse error: the connection ends with its answer

    def _receive(self, data: bytes) -> None:
        in_body = self._last_payload is not None and not self._last_payload.is_eof()
        if data and not in_body and not self._in_head:
            # The first bytes of a request's head.
            self._in_head = True
            self._head_request = data.startswith(b"HEAD ")
            if self._headers_timer is None:
                self._arm_headers_timer()
        queued = len(self._messages)
        super().data_received(data)
        body = self._last_payload
        if (
            in_body
            and body is not None
            and not body.is_eof()
            and len(self._messages) > queued
            and not isinstance(self._messages[-1][0], RawRequestMessage)
        ):
            # The parser failed inside the body of the request being handled (a broken chunk
            # size, say). aiohttp would queue an answer for after that request and leave its
            # handler waiting for a body that never ends: tell the handler instead (read_body
            # answers 400), and end the connection after its answer.
            self._messages.pop()
            body.set_exception(RequestPayloadError("the body's chunked framing is broken"))
            self.close()
            return
        if len(self._messages) > queued:
            message = self._messages[-1][0]
            if isinstance(message, RawRequestMessage) and message.version.major != 1:
                # aiohttp takes a request line without a version as HTTP/0.9, and any major
                # version as given, and would answer in it ("HTTP/2.0 200 OK" over HTTP/1.1
                # framing): only HTTP/1.x is spoken here, so the request line is malformed.
                error = BadStatusLine(f"{message.method} {message.path} HTTP/{message.version}")
                self._messages[-1] = (
                    _ErrInfo(status=400, exc=error, message=error.message),
                    EMPTY_PAYLOAD,
                )
            # Headers complete: the body, if any, is timed by read_body part by part.
            self._in_head = False
            self._last_payload = self._messages[-1][1]
            self._parse_failed = not isinstance(self._messages[-1][0], RawRequestMessage)
            if self.admitted or self.exempt:
                self._cancel_headers_timer()

    def _arm_headers_timer(self) -> None:
        self._headers_timer = self._loop.call_later(self._read_timeout_s, self._headers_late)

    def _cancel_headers_timer(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _headers_late(self) -> None:
        self._headers_timer = None
        if self.transport is None or self._force_close or self._close:
            return
        waiting = self._waiter is not None and not self._waiter.done()
        if not waiting:
            # A request is being answered and these bytes are the next one's, pipelined
            # behind it: its turn comes after the answer, so look again later.
            self._arm_headers_timer()
            return
        if self.admitted or self.exempt:
            ms = round(self._read_timeout_s * 1000)
            error = ApiError(
                REQUEST_READ_TIMEOUT,
                f"the request's headers did not arrive within {ms} ms "
                "(http.request.read.timeout.ms)",
            )
            # Answered here, before any request existed: no method, no path.
            log_client_error("-", "-", self._host(), error.status, error.kind.name, error.message)
            if self._metrics is not None:
                self._metrics.observe("other", UNMATCHED, error.status, False, None)
            self.transport.write(_raw_response(error, "Request Timeout"))
        else:
            error = _busy_error(self._gate)
            self.transport.write(_raw_response(error, "Service Unavailable", {"Retry-After": "1"}))
        self.force_close()

    # -- errors aiohttp answers itself -----------------------------------------------------------

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """aiohttp's own logging of an error; a broken body is the client's fault: one line."""
        exc = kwargs.get("exc_info")
        if isinstance(exc, RequestPayloadError):
            log.info("closed a connection from %s: %s", self._host(), exc)
            return
        log.error(*args, **kwargs)

    def _host(self) -> str:
        peer = self.peername
        return str(peer[0] if isinstance(peer, tuple) else peer)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Called by aiohttp for a request it could not parse (status 400), a handler that
        timed out (504) or raised past the app's middleware (500). Always closes the
        connection after its answer, as aiohttp's own does."""
        if status >= 500:
            # A bug, or something the middleware could not turn into an answer: the trace is
            # needed, once.
            log.error(
                "unexpected error handling %s %s from %s",
                request.method,
                request.path,
                request.remote,
                exc_info=exc,
            )
            kind = REQUEST_TIMED_OUT if status == 504 else UNKNOWN_SERVER_ERROR
            error = ApiError(kind, "unexpected server error; see the node's log")
        else:
            error = refusal(exc)
            # No method nor path: the request line was never understood.
            log_client_error(
                "-",
                "-",
                request.remote,
                error.status,
                error.kind.name,
                f"refused a malformed request: {error.message} ({type(exc).__name__})",
            )
        if self._metrics is not None:
            self._metrics.observe(
                method_label(request.method), endpoint_label(request), error.status, False, None
            )
        if request.writer.output_size > 0:
            # Part of an answer went out already: the connection cannot carry another.
            raise ConnectionError("an answer was already being sent; closing the connection")
        response = error_response(error)
        if self._head_request and status < 500:
            # The same status and headers as for any other method, and no body (RFC 9110).
            response = web.Response(
                status=response.status, headers=response.headers, content_type=None
            )
        response.force_close()
        return response


class LimitedServer(web.Server):
    """aiohttp's low-level server making :class:`JsonRequestHandler` connections, and putting
    every request through :meth:`guard` before the app sees it."""

    def __init__(
        self,
        app_handler: _Handler,
        *,
        config: NodeConfig,
        budget: BodyBudget,
        internal_auth: InternalAuth,
        now_ms: Callable[[], int],
        metrics: RequestMetrics | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(self.guard, **kwargs)
        self.metrics = metrics
        self._app_handler = app_handler
        self._internal_auth = internal_auth
        self._node_id = config.node_id
        self._now_ms = now_ms
        self.gate = ConnectionGate(config.max_connections)
        self.budget = budget
        self.read_timeout_s = config.request_read_timeout_ms / 1000
        self.socket_request_max_bytes = config.socket_request_max_bytes

    def __call__(self) -> RequestHandler:
        return JsonRequestHandler(self, loop=self._loop, **self._kwargs)

    async def guard(self, request: web.BaseRequest) -> web.StreamResponse:
        """:meth:`answer`, counted in /metrics, and logged when the client erred."""
        start = time.perf_counter()
        response = await self.answer(request)
        self._account(request, response, time.perf_counter() - start)
        return response

    def _account(
        self, request: web.BaseRequest, response: web.StreamResponse, seconds: float
    ) -> None:
        status = response.status
        # Signed by a node of the cluster (set by the internal-auth middleware, once verified).
        peer = isinstance(request, web.Request) and internal_peer(request) is not None
        if self.metrics is not None:
            endpoint = endpoint_label(request)
            self.metrics.observe(
                method_label(request.method),
                endpoint,
                status,
                is_long_poll(request, endpoint),
                seconds,
                peer,
            )
        if 400 <= status < 500:
            error = response.get(API_ERROR)
            name, message = (error.kind.name, error.message) if error else error_of(response)
            log_client_error(
                request.method,
                request.path,
                request.remote,
                status,
                name or kind_for_status(status).name,
                message,
                # The node that forwarded it logs the client's error (module doc).
                logging.DEBUG if peer else logging.INFO,
            )

    async def answer(self, request: web.BaseRequest) -> web.StreamResponse:
        """The connection and size limits, then the app; the request's body bytes go back
        to the budget however the app ends."""
        conn = request.protocol if isinstance(request.protocol, JsonRequestHandler) else None
        if conn is not None and not conn.admitted and not conn.exempt:
            if self._from_the_cluster(request):
                conn.exempt_from_limit()
            else:
                log.info("refused a connection from %s: max.connections reached", request.remote)
                busy = error_response(_busy_error(self.gate))
                busy.force_close()
                return busy
        declared = request.content_length
        if declared is not None and declared > self.socket_request_max_bytes:
            too_large = error_response(
                ApiError(
                    REQUEST_TOO_LARGE,
                    f"the request body ({declared} bytes) is above socket.request.max.bytes "
                    f"({self.socket_request_max_bytes}), the largest request this node reads",
                )
            )
            too_large.force_close()
            return too_large
        allowance = BodyAllowance(self.budget, self.socket_request_max_bytes, self.read_timeout_s)
        request[BODY_ALLOWANCE] = allowance
        try:
            response = await self._app_handler(request)
        except web.HTTPException as e:
            # Raised before the app's middleware runs: aiohttp's answer to an Expect header
            # other than 100-continue (417), in text/plain, unless it is turned here.
            if e.status < 400:
                raise
            response = error_response(_before_the_app(e))
        finally:
            allowance.release()
        if (
            conn is not None
            and conn.exempt
            and isinstance(request, web.Request)
            and internal_peer(request) is None
        ):
            response.force_close()  # it claimed to be a node of the cluster and was not
        return response

    def _from_the_cluster(self, request: web.BaseRequest) -> bool:
        """Whether the request's proof headers verify (its body is checked later, by the
        internal-auth middleware); records no nonce."""
        try:
            self._internal_auth.check_headers(
                request.method,
                request.raw_path,
                request.headers,
                self._now_ms(),
                receiver_id=self._node_id,
            )
        except ApiError:
            return False
        return True


class HttpRunner(web.AppRunner):
    """``web.AppRunner`` serving the app through a :class:`LimitedServer`."""

    def __init__(
        self,
        app: web.Application,
        config: NodeConfig,
        *,
        internal_auth: InternalAuth,
        now_ms: Callable[[], int],
        **kwargs: Any,
    ) -> None:
        super().__init__(
            app,
            keepalive_timeout=config.connections_max_idle_ms / 1000,
            max_line_size=limits.HTTP_LINE_BYTES_MAX,
            max_field_size=limits.HTTP_LINE_BYTES_MAX,
            max_headers=limits.HTTP_HEADERS_MAX,
            lingering_time=min(limits.REFUSED_BODY_LINGER_S, config.request_read_timeout_ms / 1000),
            # Bodies are read as sent: read_body refuses a Content-Encoding (a zip bomb).
            auto_decompress=False,
            **kwargs,
        )
        self._config = config
        self._internal_auth = internal_auth
        self._now_ms = now_ms
        self.budget = BodyBudget(config.queued_max_request_bytes)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # the app's startup, and its handler
        return LimitedServer(
            plain.request_handler,
            config=self._config,
            budget=self.budget,
            internal_auth=self._internal_auth,
            now_ms=self._now_ms,
            metrics=self.app.get(REQUEST_METRICS),
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **plain._kwargs,
        )

    @property
    def gate(self) -> ConnectionGate | None:
        server = self.server
        return server.gate if isinstance(server, LimitedServer) else None


class HttpListener:
    """The node's listening socket and the runner behind it."""

    def __init__(self, runner: HttpRunner, server: asyncio.Server) -> None:
        self.runner = runner
        self._server = server

    async def close(self) -> None:
        """Stops listening, then ends the open connections (shutdown timeout of the runner)."""
        self._server.close()
        await self.runner.cleanup()


async def start_http(
    app: web.Application,
    config: NodeConfig,
    ssl_context: ssl.SSLContext | None,
    *,
    internal_auth: InternalAuth,
    now_ms: Callable[[], int],
    shutdown_timeout_s: float,
) -> HttpListener:
    """Serves ``app`` on the node's HTTP listener (https with ``ssl_context``); stop it with
    ``await listener.close()``. Raises OSError if the address cannot be bound (the runner is
    cleaned up first). ``internal_auth`` (the node's) and ``now_ms`` (the wall clock) tell the
    cluster's own connections, exempt from max.connections, from a stranger's.

    A TLS handshake must end within ``http.request.read.timeout.ms`` too: until it does, the
    connection is not counted by max.connections nor timed by its idle timeout."""
    runner = HttpRunner(
        app,
        config,
        internal_auth=internal_auth,
        now_ms=now_ms,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=shutdown_timeout_s,
    )
    await runner.setup()
    factory = runner.server
    assert factory is not None
    try:
        server = await asyncio.get_running_loop().create_server(
            factory,
            config.http_host,
            config.http_port,
            ssl=ssl_context,
            ssl_handshake_timeout=(
                config.request_read_timeout_ms / 1000 if ssl_context is not None else None
            ),
            reuse_address=True,
        )
    except BaseException:
        await runner.cleanup()
        raise
    return HttpListener(runner, server)
