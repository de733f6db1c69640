"""The KAFKA listener: Kafka's binary protocol over TCP, in the node's event loop.

A connection's requests are pipelined, keeping Kafka's order. Its reader reads the next frame
while earlier requests are in flight, and starts each request once the one before it has done
its "ordered part" (server/kafka/apis.py): all of its handler, but for an acks=all Produce,
whose ordered part ends when its batches are appended, so its wait for the high watermark
(the followers' fetch and fsync) overlaps the next requests. Appends of one connection thus
happen in its order (an idempotent producer's sequences arrive in order), and a Fetch or a
group join runs alone as in Kafka (whose broker mutes a connection while a request of it is in
flight). Its writer writes the answers in request order, whatever order they finish in. At
most REQUESTS_IN_FLIGHT_MAX requests are in flight. A request that fails (the connection must
close), or bad input, stops the reader, and the connection closes once the answers before it
are written; a client that goes away cancels its requests in flight (an append done stays: the
producer's retry of it is a duplicate). A Produce with acks=0 gets no answer, as in Kafka.

Limits, Kafka's (the settings are the node's, shared with the HTTP listener's):

- ``socket.request.max.bytes``: a frame whose size prefix says more is refused before a byte
  of its body is read, and the connection closes (Kafka's InvalidReceiveException); a
  request of any API but Produce is refused above NON_PRODUCE_REQUEST_BYTES_MAX from its
  header (ours: Python parses slowly, limits.py), and above REQUEST_ARRAY_ELEMENTS_MAX array
  elements before it is decoded (bounds.py);
- ``queued.max.request.bytes``: request bytes held at once over all connections, taken part
  by part as a frame's bytes arrive (a big announcement with nothing behind it holds nothing);
  a part that does not fit waits for room up to http.request.read.timeout.ms, then the
  connection closes (Kafka's memory pool waits for ever: a slow sender could lock others out);
- ``max.connections.per.ip`` then ``max.connections``: a connection beyond either is closed
  at once. A connection counts until its socket is closed: a close gets
  CONNECTION_CLOSE_TIMEOUT_S to flush and, on TLS, to exchange close_notify, then the socket
  is dropped (a peer that never reads does not keep it open);
- ``connections.max.idle.ms``: a connection with no request for this long, and none in
  flight, is closed;
- ``http.request.read.timeout.ms``: each part of a frame's body must arrive within it, and
  the whole frame within it plus FRAME_TRANSFER_MIN_BYTES_PER_S (a frame cut off or trickled
  does not hold its buffer for ever); an answer must be read by the client in the same time,
  or the connection closes (a client that stops reading does not pin its answer);
- anything that is not a request (a frame that does not parse, an API or version not served,
  a follower's fetch) closes the connection: the node goes on serving the others.

Security (``listener.security.protocol.map``'s KAFKA entry, Kafka's):

- ``SSL`` and ``SASL_SSL``: TLS with the node's keystore (server/tls.py). The connection
  limits apply before the handshake, which must end within TLS_HANDSHAKE_TIMEOUT_S; a
  handshake that fails closes the connection. No client certificate is asked for.
- ``SASL_PLAINTEXT`` and ``SASL_SSL``: a connection starts unauthenticated (Kafka's
  SaslServerAuthenticator): its frames are at most SASL_UNAUTHENTICATED_FRAME_BYTES_MAX and
  are not taken from queued.max.request.bytes (a stranger's bytes do not hold back the
  authenticated clients' requests); it must be authenticated within
  SASL_AUTHENTICATION_TIMEOUT_S of its accept, or it closes;
  ApiVersions (once, before the handshake), SaslHandshake and SaslAuthenticate are served
  (server/kafka/sasl_apis.py); any other request closes the connection without an answer,
  after connection.failed.authentication.delay.ms (Kafka closes it after the delay too; after
  the handshake, it first answers the request with that API's own error response carrying
  ILLEGAL_SASL_STATE: not done here, no client sends one). After SaslHandshake v0 the tokens
  come as bare frames (sasl_apis.sasl_token). A refused authentication is answered after
  connection.failed.authentication.delay.ms, then the connection closes. Once authenticated,
  its requests run as ``User:<name>``, the principal the authorizer judges; without SASL every
  client is ``User:ANONYMOUS``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any

from server.authorizer import ANONYMOUS
from server.byte_budget import ByteBudget
from server.config import NodeConfig
from server.kafka import frames
from server.kafka.apis import (
    API_VERSIONS_KEY,
    ApiTable,
    Dispatched,
    api_name,
    api_table,
    dispatch,
    error_counts,
)
from server.kafka.data_apis import PRODUCE_KEY
from server.kafka.fetch import FETCH_KEY, sessions_of
from server.kafka.frames import CloseConnection, FrameError, NotServedError
from server.kafka.limits import (
    CONNECTION_CLOSE_TIMEOUT_S,
    FRAME_READ_CHUNK_BYTES,
    FRAME_TRANSFER_MIN_BYTES_PER_S,
    NON_PRODUCE_REQUEST_BYTES_MAX,
    REQUEST_HEADER_PREFIX_BYTES,
    REQUESTS_IN_FLIGHT_MAX,
    SASL_AUTHENTICATION_TIMEOUT_S,
    SASL_UNAUTHENTICATED_FRAME_BYTES_MAX,
    TLS_HANDSHAKE_TIMEOUT_S,
)
from server.kafka.sasl import Authenticator, IllegalSaslState, State
from server.kafka.sasl_apis import (
    SASL_AUTHENTICATE_KEY,
    SASL_HANDSHAKE_KEY,
    SaslNode,
    register,
    sasl_token,
)
from server.metrics import KafkaRequestMetrics
from server.node import Node
from server.tls import kafka_ssl_context

log = logging.getLogger(__name__)

_API_KEY = struct.Struct(">h")
# Dispatched.api_key of a bare SASL token's answer (after SaslHandshake v0): no API's.
BARE_SASL_TOKEN = -1


class _AcceptProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that, for TLS, pauses reading until the handshake starts."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        accept: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
        tls: bool,
    ) -> None:
        super().__init__(reader, accept)
        self._tls = tls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._tls:
            assert isinstance(transport, asyncio.ReadTransport)
            transport.pause_reading()  # start_tls resumes it
        super().connection_made(transport)


class _TlsFailed(Exception):
    """The TLS handshake failed (logged): the connection closes."""


class FrameTimeout(Exception):
    """A frame's body did not arrive in time."""


class _NotAuthenticated(Exception):  # noqa: N818 (a reason to close, not an error of ours)
    """A SASL connection not authenticated within SASL_AUTHENTICATION_TIMEOUT_S."""


class _HandlerFailed(Exception):
    """A handler raised (logged where it did): the connection closes."""


class _AnswerThenClose(Exception):  # noqa: N818 (an instruction to the writer)
    """A refused authentication's answer: written, then the connection closes."""

    def __init__(self, answered: Dispatched) -> None:
        super().__init__("authentication failed")
        self.answered = answered


class KafkaListener:
    def __init__(self, node: Node, config: NodeConfig, table: ApiTable | None = None) -> None:
        self._node = node
        self._config = config
        self._table = table or api_table()
        self._metrics: KafkaRequestMetrics = node.metrics.kafka
        self._budget = ByteBudget(config.queued_max_request_bytes)
        self._room = asyncio.Event()  # set whenever bytes are given back
        self._server: asyncio.Server | None = None
        self._connections: dict[int, asyncio.Task[Any]] = {}
        self._per_host: dict[str, int] = {}  # open connections by peer address
        self._ids = itertools.count(1)
        # ConfigError (a bad keystore or users file) before the listener binds.
        self._ssl = kafka_ssl_context(config)
        self._sasl: SaslNode | None = None
        if config.kafka_sasl:
            self._sasl = SaslNode(config)
            register(node, self._sasl)

    @property
    def port(self) -> int:
        """The port bound (the configured one)."""
        assert self._server is not None and self._server.sockets
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Binds the listener; OSError when it cannot."""
        loop = asyncio.get_running_loop()
        tls = self._ssl is not None

        def protocol() -> asyncio.StreamReaderProtocol:
            # asyncio.start_server's protocol, but on a TLS listener nothing is read before
            # _accept starts the handshake: a ClientHello read into the plain stream would
            # be lost to TLS, and the handshake would hang.
            return _AcceptProtocol(asyncio.StreamReader(loop=loop), self._accept, tls)

        self._server = await loop.create_server(
            protocol, self._config.kafka_host, self._config.kafka_port, reuse_address=True
        )

    async def close(self) -> None:
        """Stops accepting and closes every connection (a request in flight is dropped)."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else "unknown"
        if self._per_host.get(host, 0) >= self._config.max_connections_per_ip:
            log.warning(
                "Kafka listener: max.connections.per.ip (%d) reached for %s, closing a new "
                "connection",
                self._config.max_connections_per_ip,
                host,
            )
            writer.close()
            return
        if len(self._connections) >= self._config.max_connections:
            log.warning(
                "Kafka listener: max.connections (%d) reached, closing a new connection",
                self._config.max_connections,
            )
            writer.close()
            return
        connection_id = next(self._ids)
        self._connections[connection_id] = task
        self._per_host[host] = self._per_host.get(host, 0) + 1
        self._metrics.connection_opened()
        authenticator = self._sasl.open(connection_id) if self._sasl is not None else None
        authenticate_by = time.monotonic() + SASL_AUTHENTICATION_TIMEOUT_S
        try:
            if self._ssl is not None:
                await self._tls_handshake(writer, host)
            await self._serve(connection_id, host, reader, writer, authenticator, authenticate_by)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        except _TlsFailed:
            pass
        except FrameError as e:
            log.info("Kafka listener: closing the connection from %s: %s", host, e)
        except CloseConnection as e:
            log.info("Kafka listener: closing the connection from %s: %s", host, e)
        except FrameTimeout as e:
            self._metrics.closed("timeout")
            log.info("Kafka listener: closing the connection from %s: %s", host, e)
            # Dropped, not flushed: close() would keep an unread answer in the transport's
            # buffer until the client reads it, which a client that stopped reading never does.
            writer.transport.abort()
        except TimeoutError:
            pass  # idle for connections.max.idle.ms
        except _NotAuthenticated:
            self._metrics.closed("timeout")
            log.info(
                "Kafka listener: closing the connection from %s: not authenticated within %g s",
                host,
                SASL_AUTHENTICATION_TIMEOUT_S,
            )
        except _HandlerFailed:
            pass
        except asyncio.CancelledError:
            # The listener is closing (close() cancels each connection's task): the task ends
            # here, so asyncio's stream callback does not report the cancellation as an error.
            pass
        finally:
            try:
                await self._close(writer)
            finally:
                # Only now: a socket still open counts in the connection limits.
                del self._connections[connection_id]
                self._per_host[host] -= 1
                if not self._per_host[host]:
                    del self._per_host[host]
                self._metrics.connection_ended()
                sessions_of(self._node).connection_closed(connection_id)
                if self._sasl is not None:
                    self._sasl.closed(connection_id)

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        """Closes the connection: its buffered answer flushed and, on TLS, close_notify sent
        and the peer's awaited, for CONNECTION_CLOSE_TIMEOUT_S at most; then the socket is
        dropped (asyncio would wait 30 s for a TLS peer's close_notify, and for ever for a
        peer that does not read the unsent bytes). Returns once the socket is closed."""
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), CONNECTION_CLOSE_TIMEOUT_S)
            return
        except (TimeoutError, OSError):  # OSError: the peer reset the connection meanwhile
            pass
        except asyncio.CancelledError:
            pass  # the listener is closing: the socket is dropped at once
        writer.transport.abort()
        try:
            # abort() closes the socket at the loop's next turn.
            await asyncio.wait_for(writer.wait_closed(), CONNECTION_CLOSE_TIMEOUT_S)
        except (TimeoutError, OSError, asyncio.CancelledError):
            pass

    async def _tls_handshake(self, writer: asyncio.StreamWriter, host: str) -> None:
        """The server side of the TLS handshake, within TLS_HANDSHAKE_TIMEOUT_S; _TlsFailed
        (logged) when it fails."""
        assert self._ssl is not None
        try:
            await asyncio.wait_for(
                writer.start_tls(self._ssl, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S),
                TLS_HANDSHAKE_TIMEOUT_S,
            )
        except (ssl.SSLError, OSError, TimeoutError) as e:
            # A plaintext client, a client that does not trust our CA, or one that said
            # nothing: the connection closes, the node goes on.
            reason = (
                f"timed out after {TLS_HANDSHAKE_TIMEOUT_S:g} s"
                if isinstance(e, TimeoutError)
                else str(e) or type(e).__name__
            )
            log.info("Kafka listener: TLS handshake with %s failed: %s", host, reason)
            writer.transport.abort()
            raise _TlsFailed from None

    async def _serve(
        self,
        connection_id: int,
        host: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        authenticator: Authenticator | None = None,
        authenticate_by: float = 0.0,
    ) -> None:
        """Serves the connection until it closes: its reader and writer (module docstring) as
        two tasks. Once the client is gone, or the writer fails, every request in flight is
        cancelled; after bad input, the answers before it are written first. A SASL
        connection not authenticated by ``authenticate_by`` (monotonic) closes."""
        pipeline = _Pipeline()
        reading = asyncio.create_task(
            self._read_requests(
                connection_id, host, reader, pipeline, authenticator, authenticate_by
            )
        )
        writing = asyncio.create_task(self._write_answers(writer, pipeline))
        try:
            await asyncio.wait((reading, writing), return_when=asyncio.FIRST_COMPLETED)
            if not writing.done():
                error = reading.exception()
                if isinstance(error, ConnectionError | asyncio.IncompleteReadError):
                    reading.result()  # the client went away: what is in flight is dropped
                # Bad input, a timeout, or a request that failed: the answers before it are
                # written first, as Kafka's broker (which reads a connection's next request
                # only once it has answered) writes them. The writer raises a request's error.
                pipeline.queue.put_nowait(None)
                await writing
                reading.result()
            writing.result()
        finally:
            tasks = [reading, writing, *pipeline.tasks]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read_requests(
        self,
        connection_id: int,
        host: str,
        reader: asyncio.StreamReader,
        pipeline: _Pipeline,
        authenticator: Authenticator | None,
        authenticate_by: float,
    ) -> None:
        """Reads the connection's frames and starts their requests in order, each once the
        one before it has done its ordered part; returns when that one failed instead (the
        connection will close)."""
        previous: _InFlight | None = None
        while True:
            # A slot before reading: at REQUESTS_IN_FLIGHT_MAX, the next frames wait in TCP.
            await pipeline.slots.acquire()
            prefix = await self._next_prefix(reader, pipeline, authenticator, authenticate_by)
            max_bytes = self._config.socket_request_max_bytes
            # Before authentication: small frames, outside queued.max.request.bytes.
            stranger = authenticator is not None and not authenticator.complete
            bare_token = False
            if stranger:
                assert self._sasl is not None
                max_bytes = min(max_bytes, SASL_UNAUTHENTICATED_FRAME_BYTES_MAX)
                bare_token = self._sasl.bare_tokens(connection_id)
            try:
                size = frames.frame_size(prefix, max_bytes, bare_token)
            except FrameError:
                self._metrics.closed(
                    "too_large" if frames.SIZE.unpack(prefix)[0] > max_bytes else "garbage"
                )
                raise
            taken = _Taken()
            try:
                frame = await self._read_body(reader, size, taken, budgeted=not stranger)
                read = time.monotonic()
                if previous is not None:
                    await previous.ordered.wait()
                    if previous.failed():
                        self._give_back(taken.bytes)
                        return
            except BaseException:
                self._give_back(taken.bytes)
                raise
            ordered = asyncio.Event()
            task = asyncio.create_task(
                self._answer(frame, host, connection_id, ordered.set, authenticator),
                name=f"kafka-request-{connection_id}",
            )
            task.add_done_callback(functools.partial(self._request_done, ordered, taken))
            previous = _InFlight(task, ordered, read)
            pipeline.started(previous)

    def _request_done(self, ordered: asyncio.Event, taken: _Taken, _: object) -> None:
        ordered.set()  # a request that ended has ended its ordered part
        self._give_back(taken.bytes)

    async def _next_prefix(
        self,
        reader: asyncio.StreamReader,
        pipeline: _Pipeline,
        authenticator: Authenticator | None = None,
        authenticate_by: float = 0.0,
    ) -> bytes:
        """The next frame's size prefix; TimeoutError once the connection has had no request
        in flight and sent nothing for connections.max.idle.ms; _NotAuthenticated once a SASL
        connection is still not authenticated at ``authenticate_by`` (its requests do not
        put that off)."""
        idle_s = self._config.connections_max_idle_ms / 1000
        while True:
            wait_s = idle_s
            if not pipeline.in_flight:
                wait_s = pipeline.idle_since + idle_s - time.monotonic()
            if wait_s <= 0:
                raise TimeoutError
            if authenticator is not None and not authenticator.complete:
                left_s = authenticate_by - time.monotonic()
                if left_s <= 0:
                    raise _NotAuthenticated
                wait_s = min(wait_s, left_s)
            try:
                # A cancelled readexactly takes nothing from the stream: the wait can go on.
                return await asyncio.wait_for(reader.readexactly(frames.SIZE.size), wait_s)
            except TimeoutError:
                continue

    async def _answer(
        self,
        frame: bytes,
        host: str,
        connection_id: int,
        release_order: Callable[[], None],
        authenticator: Authenticator | None,
    ) -> Dispatched:
        """One request's answer; _HandlerFailed (logged) when its handler raised what is not
        one of the frame errors that close a connection; _AnswerThenClose after a refused
        authentication."""
        principal = ANONYMOUS
        bare_token = False
        if authenticator is not None:
            assert self._sasl is not None
            if not authenticator.complete:
                bare_token = self._sasl.bare_tokens(connection_id)
                if not bare_token:
                    await self._gate(frame, authenticator, host)
            principal = authenticator.principal or ANONYMOUS
        try:
            if bare_token:
                token_answer = await sasl_token(self._node, connection_id, host, frame)
                return Dispatched(BARE_SASL_TOKEN, 0, token_answer, None, None)
            answered = await dispatch(
                self._table,
                self._node,
                frame,
                host,
                connection_id,
                principal=principal,
                release_order=release_order,
            )
        except (FrameError, CloseConnection):  # NotServedError is a FrameError
            raise
        except Exception:
            if bare_token:
                log.exception("Kafka listener: a SASL token from %s failed; closing", host)
                raise _HandlerFailed from None
            api_key, version, _ = frames.peek(frame)
            log.exception(
                "Kafka listener: %s v%d from %s failed; closing the connection",
                api_name(api_key),
                version,
                host,
            )
            raise _HandlerFailed from None
        if authenticator is not None and authenticator.state is State.FAILED:
            raise _AnswerThenClose(answered)
        return answered

    async def _gate(self, frame: bytes, authenticator: Authenticator, host: str) -> None:
        """Before authentication: only ApiVersions (once, before the handshake), SaslHandshake
        and SaslAuthenticate; CloseConnection for anything else, with Kafka's words, after
        connection.failed.authentication.delay.ms (counted as a failed authentication, as
        Kafka's selector counts it)."""
        api_key, version, _ = frames.peek(frame)
        try:
            if api_key == API_VERSIONS_KEY:
                # A version too new gets the v0 error answer and may be retried (KIP-511).
                if version <= self._table.specs[API_VERSIONS_KEY].max_version:
                    authenticator.api_versions()
            elif api_key not in (SASL_HANDSHAKE_KEY, SASL_AUTHENTICATE_KEY):
                authenticator.state = State.FAILED
                raise IllegalSaslState(
                    f"Unexpected Kafka request of type {api_name(api_key)} during SASL handshake"
                )
        except IllegalSaslState as e:
            self._metrics.authenticated(authenticator.mechanism or "none", ok=False)
            log.info("Kafka listener: authentication failed for %s: %s", host, e)
            await asyncio.sleep(self._config.failed_authentication_delay_ms / 1000)
            raise CloseConnection(str(e)) from None

    async def _write_answers(self, writer: asyncio.StreamWriter, pipeline: _Pipeline) -> None:
        """Writes the answers of the requests in flight in the order they came; raises what
        a request raised when it reaches it (the connection closes)."""
        while True:
            request = await pipeline.queue.get()
            if request is None:  # the reader stopped: every answer is written
                return
            try:
                answered = await request.task
            except _AnswerThenClose as e:
                # The refusal's answer is written (the delay was spent before it), then the
                # connection closes.
                if e.answered.frame is not None:
                    writer.write(e.answered.frame)
                    await asyncio.wait_for(writer.drain(), self._transfer_s(len(e.answered.frame)))
                raise CloseConnection("authentication failed") from None
            except NotServedError:
                self._metrics.closed("unsupported")
                raise
            except CloseConnection:
                raise
            except FrameError:
                self._metrics.closed("garbage")
                raise
            if answered.frame is not None:
                writer.write(answered.frame)
                try:
                    await asyncio.wait_for(writer.drain(), self._transfer_s(len(answered.frame)))
                except TimeoutError:
                    raise FrameTimeout(
                        f"an answer of {len(answered.frame)} bytes was not read in time"
                    ) from None
            pipeline.answered(request)
            if answered.api_key == BARE_SASL_TOKEN:
                continue  # not a request: Kafka's request metrics do not count it either
            long_poll = (
                answered.api_key == FETCH_KEY and answered.request.max_wait.total_seconds() > 0
            )
            self._metrics.observe(
                api_name(answered.api_key),
                answered.api_version,
                time.monotonic() - request.read,
                long_poll,
                error_counts(answered.response) if answered.response is not None else {},
            )

    def _transfer_s(self, size: int) -> float:
        """How long a frame of ``size`` bytes may take to arrive or to be read by the client:
        one http.request.read.timeout.ms plus FRAME_TRANSFER_MIN_BYTES_PER_S."""
        return self._config.request_read_timeout_ms / 1000 + size / FRAME_TRANSFER_MIN_BYTES_PER_S

    async def _read_body(
        self, reader: asyncio.StreamReader, size: int, taken: _Taken, budgeted: bool = True
    ) -> bytes:
        """The frame's ``size`` bytes. Budget is taken part by part, as the bytes come (a
        client announcing 100 MiB and sending nothing holds nothing), unless not ``budgeted``
        (a frame before SASL authentication: small, and not the budget's to hold); each part
        must arrive within http.request.read.timeout.ms and the whole within ``_transfer_s``.
        A request of any API but Produce larger than NON_PRODUCE_REQUEST_BYTES_MAX is refused
        from its api key (FrameError)."""
        timeout_s = self._config.request_read_timeout_ms / 1000
        deadline = time.monotonic() + self._transfer_s(size)
        body = bytearray()
        while len(body) < size:
            part = min(FRAME_READ_CHUNK_BYTES, size - len(body))
            if not body:
                part = min(part, REQUEST_HEADER_PREFIX_BYTES)
            if budgeted:
                await self._take(part, taken)
            wait_s = min(timeout_s, deadline - time.monotonic())
            try:
                body += await asyncio.wait_for(reader.readexactly(part), max(wait_s, 0.0))
            except TimeoutError:
                raise FrameTimeout(
                    f"{len(body)} of a frame's {size} bytes arrived, then nothing in time"
                ) from None
            if len(body) == REQUEST_HEADER_PREFIX_BYTES:  # the api key is known
                (api_key,) = _API_KEY.unpack_from(body)
                if api_key != PRODUCE_KEY and size > NON_PRODUCE_REQUEST_BYTES_MAX:
                    self._metrics.closed("too_large")
                    raise FrameError(
                        f"a {api_name(api_key)} request of {size} bytes is larger than "
                        f"{NON_PRODUCE_REQUEST_BYTES_MAX} (only Produce may be larger)"
                    )
        return bytes(body)

    async def _take(self, size: int, taken: _Taken) -> None:
        """Takes ``size`` more bytes of queued.max.request.bytes for the frame being read,
        waiting for room up to http.request.read.timeout.ms (FrameTimeout: the connection
        closes and gives back what it held, so frames read part by part never wait on each
        other for ever)."""
        timeout_s = self._config.request_read_timeout_ms / 1000
        deadline = time.monotonic() + timeout_s
        while not self._budget.try_take(size):
            self._room.clear()
            left_s = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._room.wait(), max(left_s, 0.0))
            except TimeoutError:
                raise FrameTimeout(
                    f"no room in queued.max.request.bytes for {size} more bytes in {timeout_s:g} s"
                ) from None
        taken.bytes += size

    def _give_back(self, size: int) -> None:
        if size:
            self._budget.give_back(size)
            self._room.set()


class _Taken:
    """The budget bytes one frame holds (given back once, when its request is done)."""

    def __init__(self) -> None:
        self.bytes = 0


class _InFlight:
    """A request of a connection, started: its task, the end of its ordered part (set when
    the task ends, if not before), and when its frame was read."""

    def __init__(self, task: asyncio.Task[Dispatched], ordered: asyncio.Event, read: float):
        self.task = task
        self.ordered = ordered
        self.read = read

    def failed(self) -> bool:
        """Whether it ended without an answer (its error closes the connection)."""
        return self.task.done() and (self.task.cancelled() or self.task.exception() is not None)


class _Pipeline:
    """A connection's requests in flight, oldest first, at most REQUESTS_IN_FLIGHT_MAX: the
    reader takes a slot before reading a frame, the writer gives it back once the answer is
    written."""

    def __init__(self) -> None:
        self.slots = asyncio.Semaphore(REQUESTS_IN_FLIGHT_MAX)
        # Bounded by the slots; None after the last request, once the reader stopped.
        self.queue: asyncio.Queue[_InFlight | None] = asyncio.Queue()
        self.tasks: set[asyncio.Task[Dispatched]] = set()  # started, not yet answered
        self.idle_since = time.monotonic()  # when the last request in flight was answered

    @property
    def in_flight(self) -> int:
        return len(self.tasks)

    def started(self, request: _InFlight) -> None:
        self.tasks.add(request.task)
        self.queue.put_nowait(request)

    def answered(self, request: _InFlight) -> None:
        self.tasks.discard(request.task)
        self.slots.release()
        if not self.tasks:
            self.idle_since = time.monotonic()
