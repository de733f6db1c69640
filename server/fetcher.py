"""Replication, the follower's side: one long-polling fetch session per leader broker.

Each session covers every partition this node follows on that leader (as Kafka's fetcher
threads do; never one poll per partition). A round:

1. send what changed since the last request of each partition it follows there: its log
   end offset, how far it is fsynced (all of it, by step 3 of the previous round), the
   leader epoch this node believes in, and the epoch of its last batch; and the partitions
   it no longer follows there (an incremental fetch session, Kafka's KIP-227: the leader
   keeps the rest; the first request of a session names every partition; the wire format
   is in ``server/replication.py``, the session rules in ``server/fetch_sessions.py``);
2. for each partition in the answer (only those with news: bytes, a new high watermark, an
   error): truncate where the leader says the logs diverge, or append the leader's batch
   bytes unchanged (so replicas hold the same byte stream), and take the leader's high
   watermark;
3. fsync what was appended, in one group commit, before the next fetch reports it (topics
   with ``flush.messages`` above 1 report what they appended, and fsync by their settings).

A partition this node starts following on a leader (a leader moved there, with a new leader
epoch; not a new topic's first leader) is named by the next request; if a request to that
leader is held in its long poll then, the follower asks the leader to answer it now
(``end_poll``, a small request of its own), so the partition joins at once rather than up to
``REPLICA_FETCH_WAIT_MS`` later: after a failover the new leader's acks=all writes wait for
the surviving followers to fetch there. (Kafka's fetcher thread waits for its fetch in
flight to end; the end_poll keeps the session one request at a time, where a second fetch
would race the first for the session's epoch.)

Errors of one partition (an epoch this node has not heard of yet, a leader that moved) skip
that partition; the metadata brings the fix, and a changed epoch is sent in the next request.
A round whose every answered partition was refused waits for a metadata change here, or a
short pause, before the next. A session error (the leader restarted or evicted the session,
or a request was lost) starts a full session at once; a leader that does not answer is
retried after a short pause, with a full session too, as what it took of the failed request
is unknown. Every fetch carries proof of the cluster secret (``server/internal_auth.py``).

Replication throttles (Kafka's ``shouldFollowerThrottle``; the quota is
``server/replication_quota.py``): while the follower quota is exceeded, a partition the topic's
``follower.replication.throttled.replicas`` names on this broker, and of which this broker is
not in the ISR, is left out of the request; in a session that means forgotten, and named again
once the rate is under the bound, or the partition is no longer throttled (Kafka's fetch
session does the same). Every byte received of
a throttled partition counts. While no topic throttles anything here a round pays one
attribute read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from yarl import URL

from client.protocol import OFFSET_OUT_OF_RANGE
from server import limits
from server.fetch_sessions import FollowerSession
from server.internal_auth_http import Signer
from server.log_manager import LogManager
from server.partition import Partition
from server.replication import FetchPartition, FetchRequest, decode_fetch_response
from server.replication_quota import ReplicationQuota

log = logging.getLogger(__name__)

Key = tuple[str, int]


@dataclass(eq=False)
class _LeaderFetch:
    """One session task's state: the session, and what changed since its last request."""

    session: FollowerSession[FetchPartition] = field(default_factory=FollowerSession)
    dirty: set[Key] = field(default_factory=set)  # partitions whose fetch state may differ
    all_dirty: bool = False  # every partition may differ (a full reconcile)
    recheck_due_s: float = 0.0  # monotonic time of the next look at every partition
    # The incremental request in flight (session id, epoch), while its answer is awaited.
    held: tuple[int, int] | None = None
    end_poll_sent: tuple[int, int] | None = None  # the held request asked to answer now
    # Partitions left out of the session by the follower throttle: named again once their
    # throttle goes, however it goes (the rate raised, or the topic's list emptied, after
    # which nothing announces them as throttled any more).
    held_back: set[Key] = field(default_factory=set)


class ReplicaFetcher:
    """This node's follower side: a session task per leader it follows partitions on.

    What a request names is kept up to date by events, not by a look at every partition
    each round: :meth:`partition_changed` (a partition's append, flush, metadata, close;
    ``Partition.notify``) and :meth:`update` (the partitions a reconcile touched) mark
    partitions dirty, and a round computes the fetch state of those alone; every
    ``REPLICA_FETCH_RECHECK_S`` a round also looks at every partition, and logs what changed
    with no event (a bug to fix: such a change would have waited for the look)."""

    def __init__(
        self,
        node_id: int,
        logs: LogManager,
        leader_url: Callable[[int], str | None],
        http: Callable[[], aiohttp.ClientSession],
        sign: Signer,
        quota: ReplicationQuota | None = None,
    ) -> None:
        self.node_id = node_id
        # The follower side's replication throttle (never active when not given).
        self.quota = ReplicationQuota() if quota is None else quota
        self._logs = logs
        self._leader_url = leader_url
        self._http = http
        self._sign = sign
        self._sessions: dict[int, asyncio.Task[None]] = {}
        self._assigned: dict[int, set[Key]] = {}
        self._fetches: dict[int, _LeaderFetch] = {}  # by leader, while its task runs
        self._end_polls: set[asyncio.Task[None]] = set()

    def update(self, keys: set[Key] | None = None) -> None:
        """Matches the sessions to who leads what now, for the given partitions (after a
        reconcile touched them) or, with None, for every partition of this node."""
        before = self._assigned
        if keys is None:
            self._assigned = {}
            keys = set(self._logs.partitions)
            for fetch in self._fetches.values():
                fetch.all_dirty = True
        else:
            before = {leader: ks & keys for leader, ks in self._assigned.items()}
            for fetch in self._fetches.values():
                fetch.dirty |= keys
        for leader_keys in self._assigned.values():
            leader_keys -= keys
        joined: set[int] = set()  # leaders with a partition that moved there
        for key in keys:
            p = self._logs.partitions.get(key)
            if p is None:
                continue
            leader = p.state.leader
            if leader not in (self.node_id, -1) and self.node_id in p.state.replicas:
                self._assigned.setdefault(leader, set()).add(key)
                if p.state.leader_epoch > 0 and key not in before.get(leader, ()):
                    joined.add(leader)
        for leader, task in list(self._sessions.items()):
            if not self._assigned.get(leader) or task.done():
                task.cancel()
                del self._sessions[leader]
        for leader, leader_keys in self._assigned.items():
            if leader_keys and leader not in self._sessions:
                self._sessions[leader] = asyncio.create_task(
                    self._session(leader), name=f"fetch-from-{leader}"
                )
        for leader in joined:
            self._end_held_poll(leader)

    def _end_held_poll(self, leader: int) -> None:
        """If a request to ``leader`` is held in its long poll, asks the leader to answer it
        now: the next request names the partitions that joined."""
        fetch = self._fetches.get(leader)
        if fetch is None or fetch.held is None or fetch.end_poll_sent == fetch.held:
            return  # no request held there: the next one names them
        fetch.end_poll_sent = fetch.held
        session_id, epoch = fetch.held
        task = asyncio.create_task(
            self._send_end_poll(leader, session_id, epoch), name=f"end-poll-{leader}"
        )
        self._end_polls.add(task)
        task.add_done_callback(self._end_polls.discard)

    async def _send_end_poll(self, leader: int, session_id: int, epoch: int) -> None:
        url = self._leader_url(leader)
        if url is None:
            return
        log.info(
            "fetch session %d with node %d: partitions joined, asking it to answer epoch %d now",
            session_id,
            leader,
            epoch,
        )
        request = FetchRequest(
            replica_id=self.node_id,
            max_wait_ms=0,
            max_bytes=1,
            partitions=(),
            session_id=session_id,
            session_epoch=epoch,
            end_poll=True,
        )
        timeout = aiohttp.ClientTimeout(total=limits.INTERNAL_HTTP_TIMEOUT_S)
        try:
            await self._post(leader, url, request, timeout)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            # The held request ends by itself within its wait: only the early answer is lost.
            log.info("asking node %d to answer fetch epoch %d now failed: %s", leader, epoch, e)

    def partition_changed(self, p: Partition) -> None:
        """A partition's fetch state may have changed (``Partition.notify``)."""
        fetch = self._fetches.get(p.state.leader)
        if fetch is not None:
            fetch.dirty.add((p.topic, p.index))

    async def close(self) -> None:
        tasks = [*self._sessions.values(), *self._end_polls]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sessions.clear()
        self._end_polls.clear()

    def _followed(self, leader: int, key: Key) -> Partition | None:
        """The partition, if this node fetches it from ``leader`` now."""
        p = self._logs.partitions.get(key)
        if (
            p is None
            or key not in self._assigned.get(leader, ())
            or p.state.leader != leader
            or p.log.offline
            or p.closed
        ):
            return None
        return p

    def _following(self, leader: int) -> list[Partition]:
        out = []
        for key in sorted(self._assigned.get(leader, ())):
            p = self._followed(leader, key)
            if p is not None:
                out.append(p)
        return out

    async def _session(self, leader: int) -> None:
        last_problem = ""
        fetch = self._fetches[leader] = _LeaderFetch()
        try:
            while self._assigned.get(leader):
                try:
                    if not await self._round(leader, fetch):
                        return
                    last_problem = ""
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # the leader is away or answered nonsense: pause, retry
                    fetch.session.reset()  # what the leader took of the request is unknown
                    problem = f"{type(e).__name__}: {e}"
                    if problem != last_problem:
                        log.warning("fetching from node %d failed: %s", leader, problem)
                        last_problem = problem
                    await asyncio.sleep(limits.REPLICA_FETCH_BACKOFF_S)
        finally:
            if self._fetches.get(leader) is fetch:
                del self._fetches[leader]

    def _next_request(self, leader: int, fetch: _LeaderFetch) -> FetchRequest | None:
        """Step 1: the full request of a new session, or what changed; None if this node
        follows nothing there any more."""
        session = fetch.session
        quota = self.quota
        exceeded = quota.active and quota.exceeded(_now_ms())
        if session.full:
            fetch.dirty, fetch.all_dirty = set(), False
            partitions = self._following(leader)
            if not partitions:
                return None
            held = {(p.topic, p.index) for p in partitions if exceeded and self._held_back(p)}
            fetch.held_back = held
            asking = session.full_request(
                [fetch_state(p) for p in partitions if (p.topic, p.index) not in held]
            )
            fetch.recheck_due_s = time.monotonic() + limits.REPLICA_FETCH_RECHECK_S
        else:
            announced = fetch.dirty | session.resend | fetch.held_back
            if quota.active:
                # Throttled partitions come and go with the quota: looked at every round.
                announced |= {k for k in self._assigned.get(leader, ()) if quota.is_throttled(*k)}
            keys = set(announced)
            # Now and then every partition is looked at, as Kafka's fetcher does each round:
            # a change no event announced would otherwise never reach the leader, and its
            # high watermark, which counts this replica's flushed offset, would stall.
            recheck = time.monotonic() >= fetch.recheck_due_s
            if fetch.all_dirty or recheck:
                keys |= self._assigned.get(leader, set()) | session.sent.keys()
            if recheck:
                fetch.recheck_due_s = time.monotonic() + limits.REPLICA_FETCH_RECHECK_S
            all_dirty = fetch.all_dirty
            fetch.dirty, fetch.all_dirty = set(), False
            touched: dict[Key, FetchPartition | None] = {}
            for key in keys:
                p = self._followed(leader, key)
                held_back = p is not None and exceeded and self._held_back(p)
                touched[key] = None if p is None or held_back else fetch_state(p)
                if held_back:
                    fetch.held_back.add(key)
                else:
                    fetch.held_back.discard(key)
            asking = session.incremental_request(touched)
            unannounced = [
                f"{w.topic}-{w.partition}"
                for w in asking.partitions
                if (w.topic, w.partition) not in announced
            ]
            if unannounced and not all_dirty:
                log.info(
                    "fetch session with node %d: %d partition(s) changed with no event: %s",
                    leader,
                    len(unannounced),
                    ", ".join(unannounced[:5]),
                )
        return FetchRequest(
            replica_id=self.node_id,
            max_wait_ms=limits.REPLICA_FETCH_WAIT_MS,
            max_bytes=limits.REPLICA_FETCH_BYTES,
            partitions=tuple(asking.partitions),
            session_id=asking.session_id,
            session_epoch=asking.session_epoch,
            forgotten=tuple(asking.forgotten),
        )

    def _held_back(self, p: Partition) -> bool:
        """Whether ``p`` waits while the follower quota is exceeded: it is throttled here and
        this broker is not in its ISR (an in-sync follower is never held back)."""
        return self.node_id not in p.state.isr and self.quota.is_throttled(p.topic, p.index)

    def _count_throttled(self, answers: list[tuple[dict[str, Any], bytes]]) -> None:
        """Counts the bytes received of throttled partitions against the follower quota."""
        quota = self.quota
        now = _now_ms()
        for entry, data in answers:
            if data and quota.is_throttled(str(entry.get("topic")), int(entry["partition"])):
                quota.record(len(data), now)

    async def _post(
        self, leader: int, url: str, request: FetchRequest, timeout: aiohttp.ClientTimeout
    ) -> bytes:
        """Sends a signed replica fetch request to ``leader``; its answer's body (200 only)."""
        target = URL(url + "/v1/internal/replica-fetch")
        data = orjson.dumps(request.to_json())
        headers = {"Content-Type": "application/json", **self._sign("POST", target, data, leader)}
        async with self._http().post(target, data=data, headers=headers, timeout=timeout) as answer:
            body = await answer.read()
            if answer.status != 200:
                raise ConnectionError(f"HTTP {answer.status}: {body[:200]!r}")
        return body

    async def _round(self, leader: int, fetch: _LeaderFetch) -> bool:
        """One round; False if this node follows nothing on ``leader`` any more."""
        url = self._leader_url(leader)
        if url is None:
            raise ConnectionError(f"node {leader} has no known address yet")
        request = self._next_request(leader, fetch)
        if request is None:
            return False
        session = fetch.session
        timeout = aiohttp.ClientTimeout(
            total=limits.REPLICA_FETCH_WAIT_MS / 1000 + limits.INTERNAL_HTTP_TIMEOUT_S
        )
        # Set before the request leaves: a partition joining from now on ends its poll.
        fetch.held = None if session.full else (request.session_id, request.session_epoch)
        try:
            body = await self._post(leader, url, request, timeout)
        finally:
            fetch.held = None
        answer = decode_fetch_response(body)
        if answer.error is not None:
            log.info(
                "fetch session %d with node %d ended (%s): starting a full one",
                request.session_id,
                leader,
                answer.error.get("message"),
            )
            session.reset()
            return True
        session.answered(answer.session_id)
        answers = answer.partitions
        if self.quota.active:
            self._count_throttled(answers)
        appended = apply_session_response(leader, self._logs.partitions.get, session, answers)
        durable = [p for p in appended if p.flushes_every_record]
        if durable:
            # The next fetch reports these offsets as flushed: make them so first. Shielded: a
            # session cancelled meanwhile (its leader moved) must not drop the queued fsync,
            # or what it appended would stay unflushed until the next append, and the new
            # leader's HW, which counts this replica's flushed offset, would wait for it.
            await asyncio.shield(self._logs.flush(durable))
            fetch.dirty.update((d.topic, d.index) for d in durable)  # recovery points moved
        if answers and all(entry.get("error") for entry, _ in answers):
            # Every partition answered was refused (an epoch one side has not applied yet, a
            # replica not open there yet): the metadata brings the fix, so wait for a change
            # of those partitions, or a short pause, rather than ask again at once.
            refused = [
                r
                for entry, _ in answers
                if (r := self._logs.partitions.get((entry["topic"], entry["partition"])))
            ]
            await _any_change(refused, limits.REPLICA_FETCH_ERROR_BACKOFF_S)
        return True


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


async def _any_change(partitions: list[Partition], timeout_s: float) -> None:
    if not partitions:
        await asyncio.sleep(timeout_s)
        return
    waiters = [asyncio.ensure_future(p.changed()) for p in partitions]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def fetch_state(p: Partition) -> FetchPartition:
    """What this follower has of a partition: its fetch state, as a request carries it."""
    return FetchPartition(
        p.topic,
        p.index,
        p.topic_id,
        p.state.leader_epoch,
        p.log.log_end_offset,
        p.log.recovery_point,
        _last_epoch(p),
    )


def fetch_request(node_id: int, partitions: list[Partition]) -> FetchRequest:
    """Step 1 of a round without a session: every partition's fetch state."""
    return FetchRequest(
        replica_id=node_id,
        max_wait_ms=limits.REPLICA_FETCH_WAIT_MS,
        max_bytes=limits.REPLICA_FETCH_BYTES,
        partitions=tuple(fetch_state(p) for p in partitions),
    )


def apply_session_response(
    leader: int,
    lookup: Callable[[Key], Partition | None],
    session: FollowerSession[FetchPartition],
    answers: list[tuple[dict[str, Any], bytes]],
) -> list[Partition]:
    """Step 2 in a session: the answer covers some of the partitions, each checked against
    the fetch state the leader holds of it; returns the partitions that appended bytes. A
    partition whose bytes the log refused, or that was told to truncate or restarted its
    log, is named in the next request even if its state did not change (or changed with no
    event), so the leader looks at it again. An
    answer for a partition this node no longer holds (deleted while the fetch was out: a
    move took it away) is skipped."""
    appended: list[Partition] = []
    for entry, data in answers:
        key = (str(entry.get("topic")), int(entry.get("partition", -1)))
        want = session.sent.get(key)
        if want is None:
            raise ValueError(f"the leader answered for {key}, which this session does not hold")
        p = lookup(key)
        if p is None:
            continue  # gone here meanwhile: the next request forgets it
        if p.closed or p.state.leader != leader or p.state.leader_epoch != want.leader_epoch:
            continue  # the metadata changed during the fetch: the next request says so
        end = p.log.log_end_offset
        if _apply(p, entry, data):
            appended.append(p)
        elif data or "diverging" in entry or p.log.log_end_offset != end:
            session.resend.add(key)
    return appended


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
        leader_start = entry.get("log_start_offset")
        if (
            error.get("error") == OFFSET_OUT_OF_RANGE.name
            and isinstance(leader_start, int)
            and p.log.log_end_offset < leader_start
        ):
            # Kafka's handleOutOfRangeError: the records this replica lacks are gone from the
            # leader too (retention, deleted records): start over at the leader's log start.
            # (A new replica of a moved partition meets this whenever the leader's log no
            # longer starts at 0.)
            log.info(
                "%s: log end %d is below the leader's log start %d: restarting the log there",
                p.name,
                p.log.log_end_offset,
                leader_start,
            )
            p.truncate_fully_and_start_at(leader_start)
            return False
        log.debug("%s: fetch error %s: %s", p.name, error.get("error"), error.get("message"))
        return False
    # The leader's log end as of this answer: the follower's lag in /metrics, until the next.
    p.leader_log_end_offset = int(entry.get("log_end_offset", p.leader_log_end_offset))
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
