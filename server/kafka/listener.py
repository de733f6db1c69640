"""The KAFKA listener: Kafka's binary protocol over TCP, in the node's event loop.

One task per connection reads a frame, answers it, and only then reads the next: requests
on a connection are answered one at a time, in order (Kafka's broker mutes a connection while
a request of it is in flight). A Produce with acks=0 gets no answer, as in Kafka.

Limits, Kafka's (the settings are the node's, shared with the HTTP listener's):

- ``socket.request.max.bytes``: a frame whose size prefix says more is refused before a byte
  of its body is read, and the connection closes (Kafka's InvalidReceiveException);
- ``queued.max.request.bytes``: request bytes held at once over all connections; a frame that
  does not fit waits for room before its body is read (Kafka's memory pool: the socket is not
  read meanwhile);
- ``max.connections``: a connection beyond it is closed at once;
- ``connections.max.idle.ms``: a connection with no request for this long is closed;
- ``http.request.read.timeout.ms``: each part of a frame's body must arrive within it (a
  frame cut off mid-way does not hold its buffer for ever);
- anything that is not a request (a frame that does not parse, an API or version not served,
  a follower's fetch) closes the connection: the node goes on serving the others.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

from server.byte_budget import ByteBudget
from server.config import NodeConfig
from server.kafka import frames
from server.kafka.apis import ApiTable, api_name, api_table, dispatch, error_counts
from server.kafka.fetch import FETCH_KEY, sessions_of
from server.kafka.frames import FrameError, NotServedError
from server.kafka.limits import FRAME_READ_CHUNK_BYTES
from server.metrics import KafkaRequestMetrics
from server.node import Node

log = logging.getLogger(__name__)


class FrameTimeout(Exception):
    """A frame's body did not arrive in time."""


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
        self._ids = itertools.count(1)

    @property
    def port(self) -> int:
        """The port bound (the configured one)."""
        assert self._server is not None and self._server.sockets
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Binds the listener; OSError when it cannot."""
        self._server = await asyncio.start_server(
            self._accept,
            self._config.kafka_host,
            self._config.kafka_port,
            reuse_address=True,
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
        if len(self._connections) >= self._config.max_connections:
            log.warning(
                "Kafka listener: max.connections (%d) reached, closing a new connection",
                self._config.max_connections,
            )
            writer.close()
            return
        connection_id = next(self._ids)
        self._connections[connection_id] = task
        self._metrics.connection_opened()
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else "unknown"
        try:
            await self._serve(connection_id, host, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        except FrameError as e:
            log.info("Kafka listener: closing the connection from %s: %s", host, e)
        except FrameTimeout as e:
            self._metrics.closed("timeout")
            log.info("Kafka listener: closing the connection from %s: %s", host, e)
        except TimeoutError:
            pass  # idle for connections.max.idle.ms
        except asyncio.CancelledError:
            # The listener is closing (close() cancels each connection's task): the task ends
            # here, so asyncio's stream callback does not report the cancellation as an error.
            pass
        finally:
            del self._connections[connection_id]
            self._metrics.connection_ended()
            sessions_of(self._node).connection_closed(connection_id)
            writer.close()

    async def _serve(
        self,
        connection_id: int,
        host: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        idle_s = self._config.connections_max_idle_ms / 1000
        max_bytes = self._config.socket_request_max_bytes
        while True:
            prefix = await asyncio.wait_for(reader.readexactly(frames.SIZE.size), idle_s)
            try:
                size = frames.frame_size(prefix, max_bytes)
            except FrameError:
                self._metrics.closed(
                    "too_large" if frames.SIZE.unpack(prefix)[0] > max_bytes else "garbage"
                )
                raise
            await self._take(size)
            try:
                frame = await self._read_body(reader, size)
                started = time.monotonic()
                try:
                    answered = await dispatch(self._table, self._node, frame, host, connection_id)
                except NotServedError:
                    self._metrics.closed("unsupported")
                    raise
                except FrameError:
                    self._metrics.closed("garbage")
                    raise
                except Exception:
                    api_key, version, _ = frames.peek(frame)
                    log.exception(
                        "Kafka listener: %s v%d from %s failed; closing the connection",
                        api_name(api_key),
                        version,
                        host,
                    )
                    return
            finally:
                self._give_back(size)
            if answered.frame is not None:
                writer.write(answered.frame)
                await writer.drain()
            request = answered.request
            long_poll = answered.api_key == FETCH_KEY and request.max_wait.total_seconds() > 0
            self._metrics.observe(
                api_name(answered.api_key),
                answered.api_version,
                time.monotonic() - started,
                long_poll,
                error_counts(answered.response) if answered.response is not None else {},
            )

    async def _read_body(self, reader: asyncio.StreamReader, size: int) -> bytes:
        timeout_s = self._config.request_read_timeout_ms / 1000
        if size <= FRAME_READ_CHUNK_BYTES:
            try:
                return await asyncio.wait_for(reader.readexactly(size), timeout_s)
            except TimeoutError:
                raise FrameTimeout(f"a frame of {size} bytes did not arrive in time") from None
        body = bytearray()
        while len(body) < size:
            part = min(FRAME_READ_CHUNK_BYTES, size - len(body))
            try:
                body += await asyncio.wait_for(reader.readexactly(part), timeout_s)
            except TimeoutError:
                raise FrameTimeout(
                    f"{len(body)} of a frame's {size} bytes arrived, then nothing for "
                    f"{timeout_s:g} s"
                ) from None
        return bytes(body)

    async def _take(self, size: int) -> None:
        """Takes ``size`` bytes of queued.max.request.bytes, waiting for room (the config
        keeps it at least socket.request.max.bytes: an empty budget fits any frame)."""
        while not self._budget.try_take(size):
            self._room.clear()
            await self._room.wait()

    def _give_back(self, size: int) -> None:
        self._budget.give_back(size)
        self._room.set()
