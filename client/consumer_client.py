"""The consumer's HTTP: each request goes straight to the node that can answer it.

Theory of operation:

- A partition's fetches and offset look-ups go to its leader; a group's heartbeats and commits
  go to its coordinator. Neither is looked up in advance: the first request goes to a
  bootstrap node, whose 307 (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR) names the right node in
  ``Location``; that node's URL is remembered for the partition or group (its *route*), so
  later requests pay no redirect hop.
- A route is forgotten when its node cannot be reached or a request to it is lost (the node
  died, say): the next request starts at the known nodes again, which point to the new
  leader or coordinator once the cluster has elected one (until then they answer 503, which
  the caller waits out). The known nodes are the bootstrap ones and every broker the cluster
  listed (``GET /v1/cluster``, read once after the first answer), tried in turn until one
  accepts a connection: a consumer given one bootstrap node survives that node's death.
- Every non-2xx answer raises :class:`ApiError` (with ``Retry-After`` in
  ``extra["retry_after_s"]``); no answer at all raises :class:`TransportError`. Retrying is the
  caller's choice: every request sent here is safe to repeat (reads, offset commits, and
  heartbeats, which carry the member's epoch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import orjson

from client import limits
from client.client import TransportError, error_from_answer, parse_bootstrap
from client.protocol import (
    BATCH_MEDIA_TYPE,
    HIGH_WATERMARK_HEADER,
    LOG_START_OFFSET_HEADER,
    NEXT_OFFSET_HEADER,
    UNKNOWN_SERVER_ERROR,
    ApiError,
)
from client.security import ClientSecurity


class ConsumerTransport(Protocol):
    """What the consumer asks of the cluster (a test may give an in-memory twin). A twin of
    an assign-mode consumer needs only :meth:`describe_topic` and :meth:`fetch_batches`."""

    async def describe_topic(self, name: str) -> dict[str, Any]: ...

    async def fetch_batches(
        self,
        topic: str,
        partition: int,
        offset: int | str,
        *,
        max_bytes: int | None = None,
        timeout_ms: int | None = None,
    ) -> FetchedBatches: ...


class FetchedBatches(NamedTuple):
    """A binary fetch answer: whole stored batches (client/batches.py reads them) and the
    offsets the node sent in its headers."""

    body: bytes
    next_offset: int  # the offset after the last record sent (the one asked for when empty)
    high_watermark: int
    log_start_offset: int


def _base(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def topic_path(topic: str, *rest: str) -> str:
    # Quoting keeps a name with '/' or '?' from addressing another resource.
    return "/".join(["/v1/topics", quote(topic, safe=""), *rest])


def group_path(group: str, *rest: str) -> str:
    return "/".join(["/v1/groups", quote(group, safe=""), *rest])


class ConsumerClient:
    """One aiohttp session and the routes it has learnt (see the module text). Use it with
    ``async with`` or call :meth:`open` and :meth:`close`."""

    def __init__(
        self,
        bootstrap: str | list[str],
        security: ClientSecurity | None = None,
        *,
        timeout_s: float = limits.REQUEST_TIMEOUT_S,
    ) -> None:
        self._security = security or ClientSecurity()
        self._urls = parse_bootstrap(bootstrap, self._security.scheme)
        authorization = self._security.authorization()
        self._headers = {} if authorization is None else {"Authorization": authorization}
        self._timeout_s = timeout_s
        self._current = 0
        self._brokers_learnt = False
        self._routes: dict[Hashable, str] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ConsumerClient:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def open(self) -> None:
        """Creates the session (on the running event loop)."""
        if self._session is None:
            context = self._security.ssl_context()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=limits.CONNECTIONS_MAX, ssl=context if context is not None else True
                )
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- transport ------------------------------------------------------------------------------

    async def _send(
        self, method: str, url: str, body: bytes | None, wait_ms: int, accept: str | None = None
    ) -> tuple[int, Any, bytes]:
        if self._session is None:
            raise RuntimeError("ConsumerClient is not open")
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        if accept is not None:
            headers["Accept"] = accept
        timeout = aiohttp.ClientTimeout(total=self._timeout_s + wait_ms / 1000)
        async with self._session.request(
            method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            return response.status, response.headers, await response.read()

    async def _exchange(
        self,
        method: str,
        path_qs: str,
        body: bytes | None,
        wait_ms: int,
        route: Hashable,
        accept: str | None,
    ) -> tuple[int, Any, bytes, str]:
        """One answer and the base URL that gave it: the route's node if known, else the
        bootstrap nodes in turn until one accepts the connection."""
        cached = self._routes.get(route) if route is not None else None
        if cached is not None:
            try:
                status, headers, raw = await self._send(
                    method, cached + path_qs, body, wait_ms, accept
                )
                return status, headers, raw, cached
            except aiohttp.ClientConnectorError:
                self._routes.pop(route, None)  # its node is gone: ask the bootstrap nodes
            except (TimeoutError, aiohttp.ClientError) as exc:
                self._routes.pop(route, None)
                raise _lost(method, path_qs, exc) from None
        failures: list[str] = []
        for step in range(len(self._urls)):
            index = (self._current + step) % len(self._urls)
            base = self._urls[index]
            try:
                status, headers, raw = await self._send(
                    method, base + path_qs, body, wait_ms, accept
                )
            except aiohttp.ClientConnectorError as exc:
                failures.append(f"{base} ({exc.strerror or exc})")
                continue
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise _lost(method, path_qs, exc) from None
            self._current = index
            if not self._brokers_learnt:
                await self._learn_brokers(base)
            return status, headers, raw, base
        raise TransportError("Could not connect to any bootstrap server: " + ", ".join(failures))

    async def _learn_brokers(self, base: str) -> None:
        """Adds the cluster's brokers to the nodes tried when no route is known (once)."""
        self._brokers_learnt = True
        try:
            status, _headers, raw = await self._send("GET", base + "/v1/cluster", None, 0)
            brokers = orjson.loads(raw).get("brokers", []) if status == 200 else []
        except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError, AttributeError):
            self._brokers_learnt = False  # asked again after the next answer
            return
        for broker in brokers:
            url = _base(str(broker.get("url") or "")) if isinstance(broker, dict) else None
            if url is not None and url not in self._urls:
                if self._security.tls and not url.startswith("https://"):
                    continue  # credentials never leave TLS because an answer said so
                self._urls.append(url)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        wait_ms: int = 0,
        route: Hashable = None,
    ) -> Any:
        """The parsed JSON of a 2xx answer (None for an empty body), following 307s to the
        node they name and remembering it under ``route``; raises ApiError or TransportError."""
        status, _headers, raw = await self._answer(
            method, path, params=params, json=json, wait_ms=wait_ms, route=route
        )
        if not raw:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(
                UNKNOWN_SERVER_ERROR, f"HTTP {status} with a body that is not JSON"
            ) from None

    async def _answer(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        wait_ms: int = 0,
        route: Hashable = None,
        accept: str | None = None,
    ) -> tuple[int, Any, bytes]:
        """(status, headers, body) of a 2xx answer, following 307s as :meth:`request` does;
        raises ApiError for any other status, TransportError for no answer."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        path_qs = path + ("?" + urlencode(query) if query else "")
        body = None if json is None else orjson.dumps(json)
        status, headers, raw, _base_url = await self._exchange(
            method, path_qs, body, wait_ms, route, accept
        )
        for _hop in range(limits.REDIRECT_HOPS_MAX):
            if status != 307:
                break
            target = _base(headers.get("Location") or "")
            if target is None:
                break
            if self._security.tls and not target.startswith("https://"):
                # Credentials never leave TLS because an answer said so.
                raise TransportError(f"refused a redirect from TLS to {target}")
            if route is not None:
                self._routes[route] = target
            try:
                status, headers, raw = await self._send(
                    method, target + path_qs, body, wait_ms, accept
                )
            except (TimeoutError, aiohttp.ClientError) as exc:
                if route is not None:
                    self._routes.pop(route, None)
                raise _lost(method, path_qs, exc) from None
        if not 200 <= status < 300:
            if status >= 500 and route is not None:
                # No leader or coordinator there any more (503), or a failing node: the next
                # attempt asks the bootstrap nodes who leads now.
                self._routes.pop(route, None)
            raise error_from_answer(status, headers, raw)
        return status, headers, raw

    async def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = await self.request(method, path, **kwargs)
        return answer if isinstance(answer, dict) else {}

    # -- the calls ------------------------------------------------------------------------------

    async def describe_topic(self, name: str) -> dict[str, Any]:
        return await self._dict("GET", topic_path(name))

    async def fetch_batches(
        self,
        topic: str,
        partition: int,
        offset: int | str,
        *,
        max_bytes: int | None = None,
        timeout_ms: int | None = None,
    ) -> FetchedBatches:
        """The partition's stored batches from the one holding ``offset`` (a number,
        ``earliest`` or ``latest``), from its leader, long-polling up to ``timeout_ms``
        (``Accept: application/vnd.kafka.batch``; the records are read by the caller)."""
        _status, headers, raw = await self._answer(
            "GET",
            topic_path(topic, "partitions", str(partition), "records"),
            params={"offset": offset, "max_bytes": max_bytes, "timeout_ms": timeout_ms},
            wait_ms=timeout_ms or 0,
            route=(topic, partition),
            accept=BATCH_MEDIA_TYPE,
        )
        content_type = headers.get("Content-Type", "")
        if not content_type.startswith(BATCH_MEDIA_TYPE):
            raise ApiError(
                UNKNOWN_SERVER_ERROR,
                f"a fetch answer of {content_type or 'no type'} where {BATCH_MEDIA_TYPE} was "
                "asked for (a node without binary fetch?)",
            )
        return FetchedBatches(
            raw,
            _offset_header(headers, NEXT_OFFSET_HEADER),
            _offset_header(headers, HIGH_WATERMARK_HEADER),
            _offset_header(headers, LOG_START_OFFSET_HEADER),
        )

    async def offsets(
        self, topic: str, partition: int, timestamp: int | None = None
    ) -> dict[str, Any]:
        """``{"earliest", "latest"}`` of the partition, and ``offset`` for ``timestamp``."""
        return await self._dict(
            "GET",
            topic_path(topic, "partitions", str(partition), "offsets"),
            params={"timestamp": timestamp},
            route=(topic, partition),
        )

    async def heartbeat(self, group: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._dict(
            "POST", group_path(group, "heartbeat"), json=body, route=("group", group)
        )

    async def commit_offsets(self, group: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._dict(
            "POST", group_path(group, "offsets"), json=body, route=("group", group)
        )

    async def committed_offsets(self, group: str, topic: str | None = None) -> dict[str, Any]:
        return await self._dict(
            "GET", group_path(group, "offsets"), params={"topic": topic}, route=("group", group)
        )


def _offset_header(headers: Any, name: str) -> int:
    """An offset the node sent in a header of a binary fetch answer (decimal, required)."""
    text = headers.get(name)
    if text is None or not text.isascii() or not text.lstrip("-").isdigit():
        raise ApiError(UNKNOWN_SERVER_ERROR, f"a fetch answer without a valid {name} header")
    return int(text)


def _lost(method: str, path_qs: str, exc: BaseException) -> TransportError:
    what = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc) or type(exc).__name__
    return TransportError(f"{method} {path_qs.split('?')[0]} failed: {what}")
