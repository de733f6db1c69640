"""Replication, the follower's side: one long-polling fetch session per leader broker.

Each session covers every partition this node follows on that leader (as Kafka's fetcher
threads do; never one poll per partition). A round:

1. send each partition's log end offset, how far it is fsynced (all of it, by step 3 of the
   previous round), the leader epoch this node believes in, and the epoch of its last batch
   (``server/replication.py`` has the wire format);
2. for each partition in the answer: truncate where the leader says the logs diverge, or
   append the leader's batch bytes unchanged (so replicas hold the same byte stream), and
   take the leader's high watermark;
3. fsync what was appended, in one group commit, before the next fetch reports it (topics
   with ``flush.messages`` above 1 report what they appended, and fsync by their settings).

Errors of one partition (an epoch this node has not heard of yet, a leader that moved) skip
that partition for the round; the metadata brings the fix. A round whose every partition was
refused waits for a metadata change here, or a short pause, before the next. A leader that
does not answer is retried after a short pause. Every fetch carries proof of the cluster
secret (``server/internal_auth.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from yarl import URL

from server import limits
from server.internal_auth_http import Signer
from server.log_manager import LogManager
from server.partition import Partition
from server.replication import FetchPartition, FetchRequest, decode_response

log = logging.getLogger(__name__)

Key = tuple[str, int]


class ReplicaFetcher:
    def __init__(
        self,
        node_id: int,
        logs: LogManager,
        leader_url: Callable[[int], str | None],
        http: Callable[[], aiohttp.ClientSession],
        sign: Signer,
    ) -> None:
        self.node_id = node_id
        self._logs = logs
        self._leader_url = leader_url
        self._http = http
        self._sign = sign
        self._sessions: dict[int, asyncio.Task[None]] = {}
        self._assigned: dict[int, set[Key]] = {}

    def update(self, keys: set[Key] | None = None) -> None:
        """Matches the sessions to who leads what now, for the given partitions (after a
        reconcile touched them) or, with None, for every partition of this node."""
        if keys is None:
            self._assigned = {}
            keys = set(self._logs.partitions)
        for leader_keys in self._assigned.values():
            leader_keys -= keys
        for key in keys:
            p = self._logs.partitions.get(key)
            if p is None:
                continue
            leader = p.state.leader
            if leader not in (self.node_id, -1) and self.node_id in p.state.replicas:
                self._assigned.setdefault(leader, set()).add(key)
        for leader, task in list(self._sessions.items()):
            if not self._assigned.get(leader) or task.done():
                task.cancel()
                del self._sessions[leader]
        for leader, leader_keys in self._assigned.items():
            if leader_keys and leader not in self._sessions:
                self._sessions[leader] = asyncio.create_task(
                    self._session(leader), name=f"fetch-from-{leader}"
                )

    async def close(self) -> None:
        for task in self._sessions.values():
            task.cancel()
        await asyncio.gather(*self._sessions.values(), return_exceptions=True)
        self._sessions.clear()

    def _following(self, leader: int) -> list[Partition]:
        out = []
        for key in sorted(self._assigned.get(leader, ())):
            p = self._logs.partitions.get(key)
            if p is not None and p.state.leader == leader and not p.log.offline and not p.closed:
                out.append(p)
        return out

    async def _session(self, leader: int) -> None:
        last_problem = ""
        while True:
            partitions = self._following(leader)
            if not partitions:
                return
            try:
                await self._round(leader, partitions)
                last_problem = ""
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the leader is away or answered nonsense: pause, retry
                problem = f"{type(e).__name__}: {e}"
                if problem != last_problem:
                    log.warning("fetching from node %d failed: %s", leader, problem)
                    last_problem = problem
                await asyncio.sleep(limits.REPLICA_FETCH_BACKOFF_S)

    async def _round(self, leader: int, partitions: list[Partition]) -> None:
        url = self._leader_url(leader)
        if url is None:
            raise ConnectionError(f"node {leader} has no known address yet")
        request = fetch_request(self.node_id, partitions)
        timeout = aiohttp.ClientTimeout(
            total=limits.REPLICA_FETCH_WAIT_MS / 1000 + limits.INTERNAL_HTTP_TIMEOUT_S
        )
        target = URL(url + "/v1/internal/replica-fetch")
        data = orjson.dumps(request.to_json())
        headers = {"Content-Type": "application/json", **self._sign("POST", target, data, leader)}
        async with self._http().post(
            target, data=data, headers=headers, timeout=timeout
        ) as response:
            body = await response.read()
            if response.status != 200:
                raise ConnectionError(f"HTTP {response.status}: {body[:200]!r}")
        answers = decode_response(body)
        appended = apply_response(leader, partitions, request, answers)
        durable = [p for p in appended if p.flushes_every_record]
        if durable:
            # The next fetch reports these offsets as flushed: make them so first. Shielded: a
            # session cancelled meanwhile (its leader moved) must not drop the queued fsync,
            # or what it appended would stay unflushed until the next append, and the new
            # leader's HW, which counts this replica's flushed offset, would wait for it.
            await asyncio.shield(self._logs.flush(durable))
        if answers and all(entry.get("error") for entry, _ in answers):
            # Every partition was refused (an epoch one side has not applied yet, a replica
            # not open there yet): the metadata brings the fix, so wait for a change of this
            # node's partitions, or a short pause, rather than ask again at once.
            await _any_change(partitions, limits.REPLICA_FETCH_ERROR_BACKOFF_S)


async def _any_change(partitions: list[Partition], timeout_s: float) -> None:
    waiters = [asyncio.ensure_future(p.changed()) for p in partitions]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def fetch_request(node_id: int, partitions: list[Partition]) -> FetchRequest:
    """Step 1 of a round: what this follower has of each partition it follows there."""
    return FetchRequest(
        replica_id=node_id,
        max_wait_ms=limits.REPLICA_FETCH_WAIT_MS,
        max_bytes=limits.REPLICA_FETCH_BYTES,
        partitions=tuple(
            FetchPartition(
                p.topic,
                p.index,
                p.topic_id,
                p.state.leader_epoch,
                p.log.log_end_offset,
                p.log.recovery_point,
                _last_epoch(p),
            )
            for p in partitions
        ),
    )


def apply_response(
    leader: int,
    partitions: list[Partition],
    request: FetchRequest,
    answers: list[tuple[dict[str, Any], bytes]],
) -> list[Partition]:
    """Step 2: truncates or appends each partition's answer; returns the partitions that
    appended bytes (step 3 fsyncs those of durable topics before the next fetch)."""
    if len(answers) != len(partitions):
        raise ValueError("the leader answered for another set of partitions")
    appended: list[Partition] = []
    for p, want, (entry, data) in zip(partitions, request.partitions, answers, strict=True):
        if p.closed or p.state.leader != leader or p.state.leader_epoch != want.leader_epoch:
            continue  # the metadata changed during the fetch: this answer is stale
        if _apply(p, entry, data):
            appended.append(p)
    return appended


def _apply(p: Partition, entry: dict[str, Any], data: bytes) -> bool:
    """Applies one partition's answer; returns whether bytes were appended."""
    error = entry.get("error")
    if error is not None:
        log.debug("%s: fetch error %s: %s", p.name, error.get("error"), error.get("message"))
        return False
    diverging = entry.get("diverging")
    if diverging is not None:
        target = _truncation_offset(p, diverging, int(entry["log_end_offset"]))
        log.info(
            "%s: diverges from the leader at epoch %s: truncating from %d to %d",
            p.name,
            diverging["epoch"],
            p.log.log_end_offset,
            target,
        )
        p.truncate_to(target)
        return False
    return p.append_as_follower(data, int(entry["high_watermark"]))


def _last_epoch(p: Partition) -> int:
    latest = p.log.epoch_cache.latest_epoch
    return -1 if latest is None else latest


def _truncation_offset(p: Partition, diverging: dict[str, Any], leader_end: int) -> int:
    """KIP-279: the smaller of the leader's and our end offsets of the epoch both have."""
    epoch, end = int(diverging["epoch"]), int(diverging["end_offset"])
    if epoch < 0:  # the leader knows no epoch as old as ours: keep what it has, no more
        return min(p.log.log_end_offset, leader_end)
    own_epoch, own_end = p.log.epoch_cache.end_offset_for(epoch, p.log.log_end_offset)
    if own_epoch < 0:
        return min(p.log.log_end_offset, end)
    return min(end, own_end)
