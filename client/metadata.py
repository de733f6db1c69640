"""The client's view of the cluster: brokers, topics, partition leaders. Shared by the
producer, the consumer and the admin client, as Kafka's clients share ``Metadata``.

Theory of operation:

- **What is cached.** Brokers (id -> URL, fenced, alive; ``GET /v1/cluster``) and, per topic,
  its partitions with leader, leader epoch, replicas and ISR (``GET /v1/topics/{t}``). Entries
  are read on demand (the first use of a topic), and again when they are *stale*: marked so by
  :meth:`Metadata.invalidate` (the caller saw NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
  UNKNOWN_TOPIC_OR_PARTITION), by :meth:`Metadata.node_failed` (a transport error to a node:
  every topic led from there, and the broker list), or older than ``metadata.max.age.ms``.
  Concurrent readers of one stale entry share one request.
- **A 307 names the leader.** :meth:`Metadata.leader_moved` takes the leader a 307 answer
  named (:func:`redirect_leader`): that partition's requests go there at once, before the
  next read of the topic confirms it (a read showing an older leader epoch than the 307's does
  not undo it).
- **Any known node answers metadata.** Reads go to the node that answered last, then every
  broker the cluster listed, then the bootstrap addresses, with nodes that failed recently
  last; a node that cannot be reached, or answers 503 (not ready yet), passes the question to
  the next. So a client that has met the cluster keeps working when its bootstrap node dies.
- **Without the right to describe the cluster** (``GET /v1/cluster`` answers 403, where
  Kafka's Metadata answer would still list the brokers) the cache has no broker URLs: a
  partition's requests go to any node, whose 307 names the leader's URL, which is kept.
- **Auto-creation.** ``topic(name, auto_create=True)`` reads ``GET /v1/topics/{t}?
  auto_create=true``: the node creates a missing topic with ``num.partitions`` and
  ``default.replication.factor`` when ``auto.create.topics.enable`` is true, as Kafka's
  Metadata request with ``allow_auto_topic_creation`` (the producer's) does. Otherwise a
  missing topic raises UNKNOWN_TOPIC_OR_PARTITION (404).

Use::

    async with Transport(security) as transport:
        metadata = Metadata(transport, "127.0.0.1:9092,127.0.0.1:9094")
        topic = await metadata.topic("news")
        url = metadata.leader_url("news", 0)          # None while it has no leader
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from client import limits
from client.client import TransportError, error_from_answer, parse_bootstrap
from client.protocol import CLUSTER_AUTHORIZATION_FAILED, UNKNOWN_SERVER_ERROR, ApiError
from client.transport import Answer, Transport

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Pure: the records of the cache and how answers become them
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Broker:
    id: int
    url: str  # scheme://host:port, no trailing slash
    fenced: bool = False
    alive: bool = True


@dataclass(frozen=True)
class PartitionMetadata:
    topic: str
    partition: int
    leader: int | None  # None while the partition has no leader
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class TopicMetadata:
    name: str
    topic_id: str | None
    partitions: tuple[PartitionMetadata, ...]  # partitions[p].partition == p
    fetched_at_s: float

    @property
    def partition_count(self) -> int:
        return len(self.partitions)

    def available(self) -> list[int]:
        """The partitions that have a leader (Kafka's availablePartitionsForTopic)."""
        return [p.partition for p in self.partitions if p.leader is not None]


def _int(value: Any, topic: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(
            UNKNOWN_SERVER_ERROR, f"metadata answer for {topic}: {what} is not an integer"
        )
    return value


def _ids(value: Any, topic: str, what: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ApiError(UNKNOWN_SERVER_ERROR, f"metadata answer for {topic}: {what} is not a list")
    return tuple(_int(v, topic, what) for v in value)


def parse_topic(body: Any, name: str, now_s: float) -> TopicMetadata:
    """The TopicMetadata of a ``GET /v1/topics/{t}`` answer (docs/api.md); raises
    UNKNOWN_SERVER_ERROR naming the field when the answer is not of that shape, or when its
    partitions are not numbered 0..n-1."""
    if not isinstance(body, dict) or not isinstance(body.get("partitions"), list):
        raise ApiError(UNKNOWN_SERVER_ERROR, f"metadata answer for {name} has no partitions")
    parts: list[PartitionMetadata] = []
    for raw in body["partitions"]:
        if not isinstance(raw, dict):
            raise ApiError(UNKNOWN_SERVER_ERROR, f"metadata answer for {name}: bad partition")
        leader = raw.get("leader")
        parts.append(
            PartitionMetadata(
                topic=name,
                partition=_int(raw.get("partition"), name, "partition"),
                leader=None if leader is None or leader == -1 else _int(leader, name, "leader"),
                leader_epoch=_int(raw.get("leader_epoch", -1), name, "leader_epoch"),
                replicas=_ids(raw.get("replicas", []), name, "replicas"),
                isr=_ids(raw.get("isr", []), name, "isr"),
            )
        )
    parts.sort(key=lambda p: p.partition)
    if [p.partition for p in parts] != list(range(len(parts))):
        raise ApiError(UNKNOWN_SERVER_ERROR, f"metadata answer for {name}: partitions have gaps")
    topic_id = body.get("topic_id")
    return TopicMetadata(name, topic_id if isinstance(topic_id, str) else None, tuple(parts), now_s)


def parse_brokers(body: Any) -> dict[int, Broker]:
    """The brokers of a ``GET /v1/cluster`` answer, by id; entries without an id or a URL are
    left out (a broker registering has no URL yet)."""
    brokers: dict[int, Broker] = {}
    raw = body.get("brokers") if isinstance(body, dict) else None
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        broker_id, url = item.get("id"), item.get("url")
        if isinstance(broker_id, bool) or not isinstance(broker_id, int):
            continue
        base = base_url(url) if isinstance(url, str) else None
        if base is None:
            continue
        brokers[broker_id] = Broker(
            broker_id, base, bool(item.get("fenced", False)), bool(item.get("alive", True))
        )
    return brokers


def base_url(url: str) -> str | None:
    """``scheme://host:port`` of an absolute http(s) URL, or None when it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Redirect:
    """The leader a 307 NOT_LEADER_OR_FOLLOWER answer names."""

    url: str  # the leader's base URL
    leader_id: int | None
    leader_epoch: int | None


def redirect_leader(answer: Answer) -> Redirect | None:
    """The leader a 307 answer names (``Location``, else the body's ``leader_url``; id and
    epoch from ``X-Leader-Id``/``X-Leader-Epoch`` or the body), or None when it names none."""
    body: Any = None
    try:
        body = orjson.loads(answer.body) if answer.body else None
    except orjson.JSONDecodeError:
        body = None
    body = body if isinstance(body, dict) else {}
    location = answer.headers.get("Location") if answer.headers is not None else None
    url = base_url(location) if isinstance(location, str) else None
    if url is None and isinstance(body.get("leader_url"), str):
        url = base_url(body["leader_url"])
    if url is None:
        return None

    def number(header: str, field: str) -> int | None:
        raw = answer.headers.get(header) if answer.headers is not None else None
        if isinstance(raw, str) and raw.lstrip("-").isdigit():
            return int(raw)
        value = body.get(field)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return Redirect(
        url, number("X-Leader-Id", "leader_id"), number("X-Leader-Epoch", "leader_epoch")
    )


def topic_path(topic: str) -> str:
    # Quoting keeps a name with '/' or '?' from addressing another resource.
    return "/v1/topics/" + quote(topic, safe="")


# ---------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------


@dataclass
class _TopicEntry:
    metadata: TopicMetadata
    stale: bool = False


class Metadata:
    """The cluster as this client last saw it (see the module text). Runs on one event loop;
    every method that reads from the cluster is a coroutine, every other one is instant."""

    def __init__(
        self,
        transport: Transport,
        bootstrap: str | list[str],
        *,
        max_age_ms: int = limits.METADATA_MAX_AGE_MS,
        request_timeout_s: float = limits.REQUEST_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._bootstrap = parse_bootstrap(bootstrap, transport.security.scheme)
        self._max_age_s = max_age_ms / 1000
        self._timeout_s = request_timeout_s
        self._clock = clock
        self._brokers: dict[int, Broker] = {}
        self._brokers_at_s: float | None = None
        self._brokers_stale = True
        self.brokers_denied = False  # GET /v1/cluster refused: leaders' URLs come from 307s
        self.cluster_id: str | None = None
        self.controller_id: int | None = None
        self._topics: dict[str, _TopicEntry] = {}
        self._moved: dict[tuple[str, int], Redirect] = {}
        self._failed_at_s: dict[str, float] = {}
        self._last_good: str | None = None
        self._reads: dict[str, asyncio.Future[Any]] = {}

    # -- what is known, instantly ---------------------------------------------------------------

    @property
    def brokers(self) -> dict[int, Broker]:
        return dict(self._brokers)

    @property
    def bootstrap_urls(self) -> list[str]:
        return list(self._bootstrap)

    def cached(self, topic: str) -> TopicMetadata | None:
        """The topic as last read (stale or not), or None when it was never read."""
        entry = self._topics.get(topic)
        return None if entry is None else entry.metadata

    def needs_refresh(self, topic: str) -> bool:
        """Whether the topic should be read again before it is relied on: never read, marked
        stale, or older than ``metadata.max.age.ms``."""
        entry = self._topics.get(topic)
        return entry is None or entry.stale or self._too_old(entry.metadata)

    def broker_url(self, broker_id: int) -> str | None:
        broker = self._brokers.get(broker_id)
        return None if broker is None else broker.url

    def leader_url(self, topic: str, partition: int) -> str | None:
        """The URL of the partition's leader as last learnt (a 307 counts), or None when the
        partition has no known leader (or the leader's URL is not known yet)."""
        moved = self._moved.get((topic, partition))
        if moved is not None:
            return moved.url
        cached = self._cached_partition(topic, partition)
        leader = None if cached is None else cached.leader
        if leader is None:
            return None
        url = self.broker_url(leader)
        if url is None and self.brokers_denied:
            # Without the broker list, any node: it answers 307 naming the leader, which
            # leader_moved() then keeps.
            nodes = self.nodes()
            return nodes[0] if nodes else None
        return url

    def leader_epoch(self, topic: str, partition: int) -> int | None:
        """The leader epoch of the partition's leader as last learnt (a 307's when it named
        one), or None when not known."""
        moved = self._moved.get((topic, partition))
        if moved is not None:
            return moved.leader_epoch
        cached = self._cached_partition(topic, partition)
        return None if cached is None else cached.leader_epoch

    def _cached_partition(self, topic: str, partition: int) -> PartitionMetadata | None:
        metadata = self.cached(topic)
        if metadata is None or not 0 <= partition < metadata.partition_count:
            return None
        return metadata.partitions[partition]

    def nodes(self) -> list[str]:
        """Every node this client knows, in the order metadata reads try them: the last one
        that answered, the cluster's unfenced brokers, the bootstrap addresses, the rest;
        nodes that failed within ``NODE_FAILURE_BACKOFF_S`` go last."""
        ordered: list[str] = []
        if self._last_good is not None:
            ordered.append(self._last_good)
        brokers = sorted(self._brokers.values(), key=lambda b: (b.fenced or not b.alive, b.id))
        ordered.extend(b.url for b in brokers)
        ordered.extend(self._bootstrap)
        unique = list(dict.fromkeys(ordered))
        now = self._clock()

        def failed_recently(url: str) -> bool:
            at = self._failed_at_s.get(url)
            return at is not None and now - at < limits.NODE_FAILURE_BACKOFF_S

        return [u for u in unique if not failed_recently(u)] + [
            u for u in unique if failed_recently(u)
        ]

    # -- what callers learnt --------------------------------------------------------------------

    def invalidate(self, topic: str) -> None:
        """Marks the topic stale: the next :meth:`topic` reads it again (after a
        NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION)."""
        entry = self._topics.get(topic)
        if entry is not None:
            entry.stale = True

    def leader_moved(self, topic: str, partition: int, redirect: Redirect) -> None:
        """Takes the leader a 307 named; requests for the partition go there from now on."""
        known = self._moved.get((topic, partition))
        if (
            known is not None
            and known.leader_epoch is not None
            and redirect.leader_epoch is not None
            and redirect.leader_epoch < known.leader_epoch
        ):
            return  # an older redirect arriving late
        self._moved[(topic, partition)] = redirect
        self.invalidate(topic)

    def node_failed(self, url: str) -> None:
        """A request to ``url`` got no answer: the node goes last in the order of
        :meth:`nodes` for a while, and every topic with a partition led from it, and the
        broker list, are read again at their next use."""
        base = base_url(url) or url
        self._failed_at_s[base] = self._clock()
        if self._last_good == base:
            self._last_good = None
        self._brokers_stale = True
        led_from = {b.id for b in self._brokers.values() if b.url == base}
        for entry in self._topics.values():
            if any(p.leader in led_from for p in entry.metadata.partitions):
                entry.stale = True
        for key, moved in list(self._moved.items()):
            if moved.url == base:
                del self._moved[key]
                self.invalidate(key[0])

    # -- reading from the cluster ---------------------------------------------------------------

    async def topic(self, name: str, *, auto_create: bool = False) -> TopicMetadata:
        """The topic's metadata: the cached one when fresh, else read again (see the module
        text); raises ApiError (UNKNOWN_TOPIC_OR_PARTITION for a missing topic that was not
        created) or TransportError when no node answered."""
        entry = self._topics.get(name)
        if entry is not None and not entry.stale and not self._too_old(entry.metadata):
            if self._brokers_stale and not self.brokers_denied:
                await self.refresh_brokers()
            return entry.metadata
        return await self.refresh_topic(name, auto_create=auto_create)

    async def refresh_topic(self, name: str, *, auto_create: bool = False) -> TopicMetadata:
        """Reads the topic (and the brokers, when stale or a leader is unknown to them) now;
        concurrent callers share one read."""
        path = topic_path(name) + ("?auto_create=true" if auto_create else "")
        body = await self._shared(path)
        metadata = parse_topic(body, name, self._clock())
        self._topics[name] = _TopicEntry(metadata)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s read from %s: leaders (epochs) %s",
                name,
                self._last_good,
                ", ".join(f"{p.leader} ({p.leader_epoch})" for p in metadata.partitions),
            )
        for part in metadata.partitions:
            moved = self._moved.get((name, part.partition))
            if moved is None:
                continue
            # The read confirms or supersedes the 307's leader unless it is older than it;
            # without the leader's URL from the broker list, the 307's URL stays until a
            # newer leader epoch.
            known = part.leader is not None and part.leader in self._brokers
            if (
                moved.leader_epoch is None
                or part.leader_epoch > moved.leader_epoch
                or (part.leader_epoch == moved.leader_epoch and known)
            ):
                del self._moved[(name, part.partition)]
        leaders = {p.leader for p in metadata.partitions if p.leader is not None}
        if not self.brokers_denied and (self._brokers_stale or not leaders <= set(self._brokers)):
            await self.refresh_brokers()
        return metadata

    async def refresh_brokers(self) -> dict[int, Broker]:
        """Reads the broker list (``GET /v1/cluster``) now; concurrent callers share one read.
        A client not allowed to describe the cluster (CLUSTER_AUTHORIZATION_FAILED) goes on
        without it (:attr:`brokers_denied`): Kafka's Metadata answer needs no such right,
        ours does, so such a client learns leaders' URLs from 307 answers instead."""
        try:
            body = await self._shared("/v1/cluster")
        except ApiError as exc:
            if exc.kind is not CLUSTER_AUTHORIZATION_FAILED:
                raise
            self.brokers_denied = True
            self._brokers_stale = False
            return {}
        brokers = parse_brokers(body)
        if brokers:
            self._brokers = brokers
        self._brokers_at_s = self._clock()
        self._brokers_stale = False
        if isinstance(body, dict):
            cluster_id, controller_id = body.get("cluster_id"), body.get("controller_id")
            self.cluster_id = cluster_id if isinstance(cluster_id, str) else self.cluster_id
            self.controller_id = controller_id if isinstance(controller_id, int) else None
        return dict(self._brokers)

    def _too_old(self, metadata: TopicMetadata) -> bool:
        return self._clock() - metadata.fetched_at_s >= self._max_age_s

    async def _shared(self, path: str) -> Any:
        read = self._reads.get(path)
        if read is None or read.done():
            read = asyncio.ensure_future(self.get_json(path))
            self._reads[path] = read
            read.add_done_callback(lambda done: self._reads.pop(path, None))
        # Shielded: one caller cancelled (its record timed out) does not end the others' read.
        return await asyncio.shield(read)

    async def get_json(self, path: str) -> Any:
        """``GET path`` (query included) on the known nodes in the order of :meth:`nodes`
        until one answers; the parsed JSON of a 2xx answer. A 503 (a node not ready) or a
        node that cannot be reached passes on to the next node; any other error answer raises
        its ApiError at once; TransportError when no node answered at all."""
        failures: list[str] = []
        busy: ApiError | None = None
        for url in self.nodes():
            try:
                answer = await self._transport.exchange(
                    "GET", url + path, timeout_s=self._timeout_s
                )
            except TransportError as exc:
                self.node_failed(url)
                failures.append(str(exc))
                continue
            if answer.status == 503:
                busy = error_from_answer(answer.status, answer.headers, answer.body)
                continue
            self._last_good = url
            self._failed_at_s.pop(url, None)
            if not 200 <= answer.status < 300:
                raise error_from_answer(answer.status, answer.headers, answer.body)
            try:
                return orjson.loads(answer.body) if answer.body else None
            except orjson.JSONDecodeError:
                raise ApiError(
                    UNKNOWN_SERVER_ERROR, f"GET {path}: an answer that is not JSON"
                ) from None
        if busy is not None:
            raise busy
        raise TransportError("Could not reach any node: " + "; ".join(failures))
