"""What the two perf tools share: requests sent straight to each partition's leader.

Theory of operation:

- The tools learn the topic's partitions and leaders (``GET /v1/topics/T``) and the brokers'
  URLs (``GET /v1/cluster``) once through the bootstrap nodes, then send every produce or fetch
  to the leader's own URL, so no request pays a redirect hop (the node-side 307 would add a
  round trip to each one).
- A 307 NOT_LEADER_OR_FOLLOWER moves that partition to the leader it names (``Location``) and
  the request is sent again, at most ``REDIRECT_HOPS_MAX`` times in a row.
- A 503 (LEADER_NOT_AVAILABLE, NOT_ENOUGH_REPLICAS) or 429 is waited out (``Retry-After``,
  capped) and sent again after reading the leaders anew; so is a connection that cannot be
  established (a leader that just died). This goes on until ``RETRY_DEADLINE_S``.
- Any other answer that is not 2xx raises :class:`ApiError`; a request that was sent and got no
  answer raises :class:`TransportError` (for a produce, the outcome is then unknown).

The limits of the perf tools live here too, with the reason for each.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote, urlsplit

import aiohttp

from client import limits
from client.client import KraftClient, TransportError, error_from_answer
from client.protocol import LEADER_NOT_AVAILABLE, ApiError
from client.security import ClientSecurity

# One request may take this long beyond its own long-poll wait: an acks=all produce waits for
# every ISR member's fsync, which can take seconds on a loaded two-core machine.
REQUEST_TIMEOUT_S = limits.REQUEST_TIMEOUT_S
# Statuses waited out and retried: the node answered them before storing anything (no leader,
# too many requests) or the ISR is too small for acks=all; the brief of both tools is to keep
# measuring through a leader election rather than stop at its first second.
_RETRIED_STATUSES = frozenset({429, 503})
# A redirect chain longer than this is a loop (API.md promises none); stop rather than spin.
REDIRECT_HOPS_MAX = limits.REDIRECT_HOPS_MAX
# How long a partition's requests keep being retried before the error is reported.
RETRY_DEADLINE_S = limits.RETRY_DEADLINE_S
RETRY_BACKOFF_S = limits.RETRY_BACKOFF_S
RETRY_AFTER_MAX_S = limits.RETRY_AFTER_MAX_S
# Sockets the tools may hold: a few requests in flight per partition, each on its own
# keep-alive connection; bounded so a topic of 1,000 partitions cannot open thousands.
CONNECTIONS_MAX = 256


def base_url(url: str) -> str | None:
    """``scheme://host:port`` of an absolute URL, or None when it is not one."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def partition_path(topic: str, partition: int) -> str:
    return f"/v1/topics/{quote(topic, safe='')}/partitions/{partition}/records"


class LeaderRouter:
    """Sends one topic's partition requests to the partitions' leaders (see the module text).

    Use it with ``async with``; :meth:`refresh` must have run once before :meth:`request`.
    """

    def __init__(
        self, client: KraftClient, topic: str, security: ClientSecurity | None = None
    ) -> None:
        self._client = client
        self._security = security or ClientSecurity()
        authorization = self._security.authorization()
        self._auth_headers = {} if authorization is None else {"Authorization": authorization}
        self.topic = topic
        self.partitions: list[int] = []
        self._leader_url: dict[int, str | None] = {}
        self._session: aiohttp.ClientSession | None = None
        self._refreshing: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LeaderRouter:
        context = self._security.ssl_context()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=CONNECTIONS_MAX, ssl=context if context is not None else True
            )
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def refresh(self) -> None:
        """Reads the topic's partitions and leaders anew (raises ApiError for an unknown topic)."""
        described = await self._client.describe_topic(self.topic)
        cluster = await self._client.cluster()
        urls = {
            b.get("id"): str(b.get("url")).rstrip("/")
            for b in cluster.get("brokers", [])
            if isinstance(b, dict) and b.get("url")
        }
        partitions = [p for p in described.get("partitions", []) if isinstance(p, dict)]
        self.partitions = sorted(int(p["partition"]) for p in partitions)
        self._leader_url = {int(p["partition"]): urls.get(p.get("leader")) for p in partitions}

    async def _refresh_shared(self) -> None:
        # Many partitions' requests fail together when a leader dies; one metadata read
        # serves them all.
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self.refresh())
        try:
            await asyncio.shield(self._refreshing)
        except (ApiError, TransportError):
            pass  # the retry loop goes on with what it knew

    async def request(
        self,
        method: str,
        partition: int,
        params: dict[str, str],
        body: bytes | None = None,
        wait_ms: int = 0,
    ) -> tuple[int, bytes]:
        """(status, body) of a 2xx answer from the partition's leader; raises ApiError for any
        other answer (after the retries above) and TransportError when none came."""
        if self._session is None:
            raise RuntimeError("LeaderRouter is not open: use it with 'async with'")
        deadline = time.monotonic() + RETRY_DEADLINE_S
        path = partition_path(self.topic, partition)
        headers = dict(self._auth_headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S + wait_ms / 1000)
        hops = 0
        while True:
            leader = self._leader_url.get(partition)
            if leader is None:
                if time.monotonic() > deadline:
                    raise ApiError(LEADER_NOT_AVAILABLE, f"{self.topic}-{partition} has no leader")
                await asyncio.sleep(RETRY_BACKOFF_S)
                await self._refresh_shared()
                continue
            try:
                async with self._session.request(
                    method,
                    leader + path,
                    params=params,
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                ) as response:
                    status, answer_headers, raw = (
                        response.status,
                        response.headers,
                        await response.read(),
                    )
            except aiohttp.ClientConnectorError as exc:
                if time.monotonic() > deadline:
                    raise TransportError(
                        f"Could not connect to {leader}: {exc.strerror or exc}"
                    ) from None
                await asyncio.sleep(RETRY_BACKOFF_S)
                await self._refresh_shared()
                continue
            except (TimeoutError, aiohttp.ClientError) as exc:
                what = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
                raise TransportError(f"{method} {leader}{path} failed: {what}") from None
            if 200 <= status < 300:
                return status, raw
            if status == 307 and hops < REDIRECT_HOPS_MAX:
                target = base_url(answer_headers.get("Location", ""))
                if target is not None:
                    hops += 1
                    self._leader_url[partition] = target
                    continue
            error = error_from_answer(status, answer_headers, raw)
            if status not in _RETRIED_STATUSES or time.monotonic() > deadline:
                raise error
            wait_s = float(error.extra.get("retry_after_s", RETRY_BACKOFF_S))
            await asyncio.sleep(min(max(wait_s, 0.0), RETRY_AFTER_MAX_S))
            await self._refresh_shared()
            hops = 0
