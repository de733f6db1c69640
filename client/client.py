"""An asyncio client for a node's HTTP/JSON API (docs/api.md), over one aiohttp session.

Theory of operation:

- ``bootstrap`` names one or more nodes (``"host:port[,host:port]"``; ``http://`` assumed).
  Requests go to the node that answered last; when a connection to it cannot be *established*,
  the next address is tried. Only a failed connect moves on: a request that was sent and then
  lost (reset, timeout) is not re-sent elsewhere, because a produce might have been stored.
- A 307 NOT_LEADER_OR_FOLLOWER is followed to the leader it names (``Location``, else
  ``leader_url`` + the same path and query), at most ``REDIRECT_HOPS_MAX`` times. The body is
  re-sent as is, as ``curl -L`` does.
- Every non-2xx answer raises :class:`client.protocol.ApiError`: rebuilt from the JSON error
  body, or UNKNOWN_SERVER_ERROR carrying the text when the body is not a JSON error. A
  ``Retry-After`` header rides along in ``extra["retry_after_s"]``. Retriable errors (no
  leader, not enough replicas) are raised too: the caller decides whether to wait and retry.
- No HTTP answer at all (no node reachable, connection lost, timed out) raises
  :class:`TransportError`; for a produce, the outcome is then unknown.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from client import limits
from client.protocol import UNKNOWN_SERVER_ERROR, ApiError
from client.security import ClientSecurity

ACKS = ("all", "1", "0")


class TransportError(Exception):
    """A request got no HTTP answer: no node reachable, the connection was lost, or it timed out."""


def parse_bootstrap(bootstrap: str | list[str], scheme: str = "http") -> list[str]:
    """Base URLs (``http://host:port``, no trailing slash; ``scheme`` where the address has
    none) of a bootstrap list; raises ValueError when it names no address or an address
    without a port."""
    items = bootstrap.split(",") if isinstance(bootstrap, str) else list(bootstrap)
    urls: list[str] = []
    for item in items:
        address = item.strip().rstrip("/")
        if not address:
            continue
        if "://" not in address:
            address = f"{scheme}://{address}"
        scheme, rest = address.split("://", 1)
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported scheme in bootstrap address {item.strip()!r}")
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"bootstrap address {item.strip()!r} must be host:port")
        urls.append(address)
    if not urls:
        raise ValueError("no bootstrap address given")
    return urls


def _topic_path(topic: str, *rest: str) -> str:
    # Quoting keeps a name with '/' or '?' from addressing another resource.
    return "/".join(["/v1/topics", quote(topic, safe=""), *rest])


def error_from_answer(status: int, headers: Any, body: bytes) -> ApiError:
    """The ApiError of a non-2xx answer, with ``Retry-After`` in ``extra["retry_after_s"]``."""
    parsed: Any = None
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and ("error_code" in parsed or "error" in parsed):
        error = ApiError.from_json(parsed, status)
    else:
        text = body.decode("utf-8", "replace").strip()
        error = ApiError(UNKNOWN_SERVER_ERROR, f"HTTP {status}: {text}", {"status": status})
    retry_after = headers.get("Retry-After") if headers is not None else None
    if retry_after is not None:
        try:
            error.extra["retry_after_s"] = float(retry_after)
        except ValueError:
            pass
    return error


def _redirect_target(headers: Any, body: bytes, path_qs: str) -> str | None:
    location = headers.get("Location")
    if location and "://" in location:
        return str(location)
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    leader_url = parsed.get("leader_url") if isinstance(parsed, dict) else None
    if not isinstance(leader_url, str) or "://" not in leader_url:
        return None
    return leader_url.rstrip("/") + path_qs


class KraftClient:
    """An async context manager wrapping one aiohttp session to the cluster.

    ``timeout_s`` bounds each request, on top of any long-poll wait the request asks for.
    ``security`` (from ``--command-config``) gives TLS and credentials.
    """

    def __init__(
        self,
        bootstrap: str | list[str],
        *,
        timeout_s: float = limits.REQUEST_TIMEOUT_S,
        security: ClientSecurity | None = None,
    ) -> None:
        self._security = security or ClientSecurity()
        self._urls = parse_bootstrap(bootstrap, self._security.scheme)
        self._ssl = self._security.ssl_context()
        authorization = self._security.authorization()
        self._auth_headers = {} if authorization is None else {"Authorization": authorization}
        self._current = 0
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    @property
    def bootstrap_urls(self) -> list[str]:
        return list(self._urls)

    async def __aenter__(self) -> KraftClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=limits.CONNECTIONS_MAX, ssl=self._ssl if self._ssl is not None else True
            ),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- transport ------------------------------------------------------------------------------

    async def _send_once(
        self, method: str, url: str, body: bytes | None, wait_ms: int
    ) -> tuple[int, Any, bytes]:
        if self._session is None:
            raise RuntimeError("KraftClient is not open: use it with 'async with'")
        timeout = aiohttp.ClientTimeout(total=self._timeout_s + wait_ms / 1000)
        headers = dict(self._auth_headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        async with self._session.request(
            method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            return response.status, response.headers, await response.read()

    async def _send(
        self, method: str, path_qs: str, body: bytes | None, wait_ms: int, target: str | None
    ) -> tuple[int, Any, bytes]:
        """One exchange: to ``target`` if given, else to the bootstrap nodes in turn."""
        try:
            if target is not None:
                return await self._send_once(method, target, body, wait_ms)
            failures: list[str] = []
            for step in range(len(self._urls)):
                index = (self._current + step) % len(self._urls)
                try:
                    answer = await self._send_once(
                        method, self._urls[index] + path_qs, body, wait_ms
                    )
                except aiohttp.ClientConnectorError as exc:
                    failures.append(f"{self._urls[index]} ({exc.strerror or exc})")
                    continue
                self._current = index
                return answer
            raise TransportError(
                "Could not connect to any bootstrap server: " + ", ".join(failures)
            )
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(f"Could not connect to {target}: {exc.strerror or exc}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            what = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            raise TransportError(f"{method} {path_qs.split('?')[0]} failed: {what}") from None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        wait_ms: int = 0,
    ) -> tuple[int, Any]:
        """(status, parsed JSON body or None) of a 2xx answer; raises ApiError otherwise."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        path_qs = path + ("?" + urlencode(query) if query else "")
        body = None if json is None else orjson.dumps(json)
        target: str | None = None
        for _hop in range(limits.REDIRECT_HOPS_MAX + 1):
            status, headers, raw = await self._send(method, path_qs, body, wait_ms, target)
            if status == 307:
                target = _redirect_target(headers, raw, path_qs)
                if target is None:
                    raise error_from_answer(status, headers, raw)
                if self._security.tls and not target.startswith("https://"):
                    # Credentials never leave TLS because an answer said so.
                    raise TransportError(f"refused a redirect from TLS to {target.split('?')[0]}")
                continue
            if not 200 <= status < 300:
                raise error_from_answer(status, headers, raw)
            if not raw:
                return status, None
            try:
                return status, orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ApiError(
                    UNKNOWN_SERVER_ERROR, f"HTTP {status} with a body that is not JSON"
                ) from None
        raise error_from_answer(status, headers, raw)

    async def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        _status, body = await self._request(method, path, **kwargs)
        return body if isinstance(body, dict) else {}

    # -- admin ----------------------------------------------------------------------------------

    async def create_topic(
        self,
        name: str,
        partitions: int | None = None,
        replication_factor: int | None = None,
        configs: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Creates a topic; a None argument is left out so the server's default applies."""
        body: dict[str, Any] = {"name": name}
        if partitions is not None:
            body["partitions"] = partitions
        if replication_factor is not None:
            body["replication_factor"] = replication_factor
        if configs:
            body["configs"] = dict(configs)
        return await self._dict("POST", "/v1/topics", json=body)

    async def list_topics(self) -> list[dict[str, Any]]:
        """``[{"name", "partition_count", "replication_factor"}, ...]``."""
        body = await self._dict("GET", "/v1/topics")
        topics = body.get("topics", [])
        return [t for t in topics if isinstance(t, dict)] if isinstance(topics, list) else []

    async def describe_topic(self, name: str) -> dict[str, Any]:
        """The topic's id, configs and partitions (leader, replicas, isr, offsets)."""
        return await self._dict("GET", _topic_path(name))

    async def delete_topic(self, name: str) -> None:
        await self._request("DELETE", _topic_path(name))

    async def add_partitions(self, name: str, count: int) -> dict[str, Any]:
        """Grows the topic to ``count`` partitions in total (Kafka's ``--alter --partitions``)."""
        return await self._dict("POST", _topic_path(name, "partitions"), json={"count": count})

    async def alter_configs(self, name: str, configs: dict[str, str]) -> dict[str, Any]:
        return await self._dict(
            "PUT", _topic_path(name, "configs"), json={"configs": dict(configs)}
        )

    async def elect_leaders(
        self, election_type: str, partitions: list[tuple[str, int]] | None = None
    ) -> list[dict[str, Any]]:
        """Kafka's ElectLeaders: each partition's outcome (``topic``, ``partition``,
        ``outcome``, ``leader``, and ``error``/``message`` where nothing was elected); None
        asks for every partition."""
        body: dict[str, Any] = {"election_type": election_type}
        if partitions is not None:
            body["partitions"] = [{"topic": t, "partition": p} for t, p in partitions]
        answer = await self._dict("POST", "/v1/elections", json=body)
        results = answer.get("partitions", [])
        return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []

    async def describe_acls(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        """The ACLs matching Kafka-style filters (``resource_type``, ``resource_name``,
        ``pattern_type``, ``principal``, ``host``, ``operation``, ``permission``)."""
        body = await self._dict("GET", "/v1/acls", params=filters)
        acls = body.get("acls", [])
        return [a for a in acls if isinstance(a, dict)] if isinstance(acls, list) else []

    async def create_acls(self, acls: list[dict[str, Any]]) -> dict[str, Any]:
        """Adds ACL bindings (all or none); ones that exist already are skipped."""
        return await self._dict("POST", "/v1/acls", json={"acls": acls})

    async def delete_acls(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Removes the ACLs matching the filters (at least one) and returns them."""
        body = await self._dict("DELETE", "/v1/acls", params=filters)
        acls = body.get("acls", [])
        return [a for a in acls if isinstance(a, dict)] if isinstance(acls, list) else []

    async def cluster(self) -> dict[str, Any]:
        return await self._dict("GET", "/v1/cluster")

    async def ready(self) -> bool:
        """True when the node answers 200 on /v1/health/ready; False on any other answer or
        when no node can be reached."""
        try:
            status, _body = await self._request("GET", "/v1/health/ready")
        except (ApiError, TransportError):
            return False
        return status == 200

    # -- data -----------------------------------------------------------------------------------

    async def produce(
        self,
        topic: str,
        records: list[dict[str, Any]],
        *,
        partition: int | None = None,
        acks: str = "all",
        timeout_ms: int | None = None,
    ) -> dict[str, Any]:
        """Sends records (docs/api.md's JSON form) and returns ``{"topic", "offsets": [...]}``.

        With ``partition``, the partition endpoint is used and a redirect to its leader is
        followed; without, the node routes each record (a key goes where Kafka's murmur2 puts
        it). ``acks`` is ``all`` (or ``-1``), ``1`` or ``0``; with ``0`` the answer is empty.
        """
        acks = "all" if acks == "-1" else str(acks)
        if acks not in ACKS:
            raise ValueError(f"acks must be one of all, -1, 1, 0, not {acks!r}")
        path = (
            _topic_path(topic, "records")
            if partition is None
            else _topic_path(topic, "partitions", str(partition), "records")
        )
        return await self._dict(
            "POST",
            path,
            params={"acks": acks, "timeout_ms": timeout_ms},
            json={"records": records},
            wait_ms=timeout_ms or 0,
        )

    async def fetch(
        self,
        topic: str,
        partition: int,
        offset: int | str,
        *,
        max_records: int | None = None,
        max_bytes: int | None = None,
        timeout_ms: int | None = None,
        fmt: str = "text",
    ) -> dict[str, Any]:
        """Reads from ``offset`` (a number, ``earliest`` or ``latest``); with ``timeout_ms``
        the server long-polls. Returns ``{"records", "next_offset", "high_watermark",
        "log_start_offset"}``."""
        return await self._dict(
            "GET",
            _topic_path(topic, "partitions", str(partition), "records"),
            params={
                "offset": offset,
                "max_records": max_records,
                "max_bytes": max_bytes,
                "timeout_ms": timeout_ms,
                "format": fmt,
            },
            wait_ms=timeout_ms or 0,
        )

    async def offsets(
        self, topic: str, partition: int, timestamp: int | None = None
    ) -> dict[str, Any]:
        """The partition's earliest and latest (high watermark) offsets; with ``timestamp``,
        also the first offset at or after it."""
        return await self._dict(
            "GET",
            _topic_path(topic, "partitions", str(partition), "offsets"),
            params={"timestamp": timestamp},
        )
