"""One HTTP exchange with one named node: the transport under the metadata cache and the
producer (and any client that picks its node itself rather than letting KraftClient do it).

Unlike :class:`client.client.KraftClient`, nothing here chooses a node, follows a 307 or reads
JSON: the caller names the URL and gets the status, headers and body back, because the
producer must see a 307 (it names the partition's new leader, which the metadata cache
learns) and must know whether a failed request can have reached the node at all:

- :class:`NodeUnreachable` (a :class:`TransportError`): no connection could be made, so the
  request was not delivered; sending it to another node cannot duplicate anything.
- :class:`TransportError`: the request may have been delivered (reset, timeout); a produce
  may have been stored.

TLS and credentials come from :class:`client.security.ClientSecurity`, as for KraftClient;
over TLS a URL that is not ``https`` is refused, so credentials never leave TLS because a
node's answer (a 307, a broker list) named a plain address.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, NamedTuple

import aiohttp

from client import limits
from client.client import TransportError
from client.security import ClientSecurity


class NodeUnreachable(TransportError):
    """No connection to the node could be made: the request never reached it."""


class Answer(NamedTuple):
    status: int
    headers: Any  # aiohttp's CIMultiDictProxy: case-insensitive names
    body: bytes


class Transport:
    """An aiohttp session (one connection pool) with the client's TLS and credentials.

    Use it with ``async with``; ``connections_max`` bounds the sockets it holds.
    """

    def __init__(
        self,
        security: ClientSecurity | None = None,
        *,
        connections_max: int = limits.CONNECTIONS_MAX,
    ) -> None:
        self.security = security or ClientSecurity()
        authorization = self.security.authorization()
        self._auth_headers = {} if authorization is None else {"Authorization": authorization}
        self._connections_max = connections_max
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Transport:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def open(self) -> None:
        """Opens the session (must run on the event loop that will use it); idempotent."""
        if self._session is None:
            context = self.security.ssl_context()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._connections_max, ssl=context if context is not None else True
                )
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = limits.REQUEST_TIMEOUT_S,
    ) -> Answer:
        """Sends one request to ``url`` (absolute, query included) and returns the answer,
        whatever its status; raises NodeUnreachable when no connection could be made and
        TransportError when the request got no answer (lost, timed out)."""
        if self._session is None:
            raise RuntimeError("Transport is not open: use it with 'async with'")
        if self.security.tls and not url.startswith("https://"):
            raise NodeUnreachable(f"refused to send to {url.split('?')[0]} outside TLS")
        sent = dict(self._auth_headers)
        if headers:
            sent.update(headers)
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                headers=sent,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as response:
                return Answer(response.status, response.headers, await response.read())
        except aiohttp.ClientConnectorError as exc:
            raise NodeUnreachable(
                f"Could not connect to {url.split('?')[0]}: {exc.strerror or exc}"
            ) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            what = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            raise TransportError(f"{method} {url.split('?')[0]} failed: {what}") from None
