"""Replication, the leader's side: the replica fetch, the high watermark, and the ISR.

Kafka's ISR model carries partition data; Raft carries only who leads and who is in sync.
Followers pull: one long-polling fetch per leader broker covers every partition a follower
follows there (``server/fetcher.py`` sends it). The fetch is the follower's report too: how
far it has appended and how far it has fsynced (a follower fsyncs what it appended before it
fetches again, unless the topic's ``flush.messages`` is above 1). The high watermark is the
smallest fsynced offset over the ISR, or the smallest appended one for such topics
(``Partition.advance_high_watermark``).

The fetch's wire format is in ``server/replica_fetch_wire.py``; its fetch sessions (Kafka's
KIP-227: a request names only the partitions whose fetch state changed, an answer only those
with news) in ``server/fetch_sessions.py``. The leader's long poll of a session waits for news
on any of its partitions through one wakeup (``Partition.change_listener``), never a waiter per
partition, and the ISR lag is judged per event (``ReplicaManager``'s ISR keeper asks
:meth:`ReplicaFetchHandler.caught_up`), so idle partitions cost nothing.

Epochs (KIP-320, KIP-279) come from the metadata log only. A fetch carrying an older leader
epoch than the leader's gets FENCED_LEADER_EPOCH (the follower waits for newer metadata); one
carrying a newer epoch gets UNKNOWN_LEADER_EPOCH (this node has not applied it yet) and changes
nothing: the leader holds such a fetch until its own metadata moves or the wait ends, as a long
poll, so the follower does not spin. A newer epoch in a request is never taken as proof that
this node was deposed: whoever can send a request could then stop any partition for good.

Why a deposed leader whose metadata lags (say after a pause) still cannot acknowledge what
it could not replicate: its high watermark is the smallest offset over the ISR it knows, and
that ISR's members only move it by fetching from it with its own epoch. The controller elects
a new leader from the ISR and a new ISR that is a subset of it; a member that applied the new
epoch fetches elsewhere (or fetches here and is refused), so what it reported last bounds the
old leader's HW; a member that has not applied it yet holds everything it reported, and the
new leader's epoch starts at its own log end. A write to the old leader waits for the HW,
times out or fails once the metadata arrives, and is truncated away by leader epoch.

A follower whose last epoch ends earlier here than its fetch offset gets the ``diverging``
epoch and end offset, truncates there, and fetches again: followers truncate by leader epoch,
never by the high watermark alone.

Only a replica's fetch counts (Kafka's ``Partition.followerReplicaOrThrow``): a broker that
is not one gets UNKNOWN_LEADER_EPOCH (a new replica ahead of this leader's metadata is held
until it comes) and nothing of it is recorded. A replica removed and added back within one
leader epoch starts afresh: its broker deleted its log when it left, so what the leader knew
of it is dropped (``Partition.update_state``), and a fetch state its session named before
the leader saw it join again is never counted for the high watermark or the ISR: the session
ends (FETCH_SESSION_ID_NOT_FOUND) and the follower's full request names what it has now.

Replication throttles (Kafka's ``ReplicaManager.shouldLeaderThrottle``; the quota is
``server/replication_quota.py``): a partition the topic's ``leader.replication.throttled.replicas``
names on this broker is left out of an answer to a follower that is not in the maximal ISR
(the one the HW counts) while the leader quota is exceeded (the answer still carries its high
watermark; the partition is looked at again in the session's next round), and such a read
takes at most one quota window of the bound. Every byte of a throttled partition sent
counts, to in-sync followers too, as in Kafka. While no topic throttles anything here the
cost is one attribute read per partition answered.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any

from client.protocol import (
    FENCED_LEADER_EPOCH,
    FETCH_SESSION_ID_NOT_FOUND,
    KAFKA_STORAGE_ERROR,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_OUT_OF_RANGE,
    UNKNOWN_LEADER_EPOCH,
    UNKNOWN_PARTITION,
)
from server import limits
from server.clock import SYSTEM_CLOCK, Clock
from server.fetch_sessions import (
    INT32_MAX,
    Key,
    LeaderSession,
    SessionError,
    SessionTable,
    next_epoch,
)
from server.partition import FollowerProgress, Partition
from server.replica_fetch_wire import (
    FetchPartition,
    FetchRequest,
    FetchResponse,
    decode_fetch_response,
    decode_response,
    encode_response,
    error_entry,
)
from server.replication_quota import ReplicationQuota
from storage.errors import KafkaStorageError

# The wire's names, for the modules that import them from here.
__all__ = [
    "FetchPartition",
    "FetchRequest",
    "FetchResponse",
    "ReplicaFetchHandler",
    "decode_fetch_response",
    "decode_response",
    "encode_response",
    "isr_check",
    "isr_to_shrink",
]

log = logging.getLogger(__name__)


# What the ISR keeper is told (``watch_isr``): look at this partition's ISR at this time.
WatchIsr = Callable[[Partition, int], None]


def _random_session_id() -> int:
    # Random, so a restarted leader does not take an old session's id for one of its own.
    return secrets.randbelow(INT32_MAX) + 1


class ReplicaFetchHandler:
    """Serves followers' fetches for the partitions this node leads, with their sessions.

    ``watch_isr(p, due_ms)`` (the replica manager's ISR keeper) is told when a follower of
    ``p`` may stop being caught up by ``due_ms``: it reported being behind, or stopped
    fetching ``p`` here (its session closed, forgot ``p``, or went quiet). Followers whose
    session holds all of ``p`` need no look until one of those happens: idle partitions
    cost nothing."""

    def __init__(
        self,
        node_id: int,
        lookup: Callable[[str, int], Partition | None],
        request_isr_change: Callable[[Partition, tuple[int, ...]], None],
        clock: Clock = SYSTEM_CLOCK,
        *,
        watch_isr: WatchIsr | None = None,
        lag_max_ms: int = limits.REPLICA_LAG_TIME_MAX_MS,
        quota: ReplicationQuota | None = None,
    ) -> None:
        self.node_id = node_id
        # The leader side's replication throttle (never active when not given).
        self.quota = ReplicationQuota() if quota is None else quota
        self._lookup = lookup
        self._request_isr_change = request_isr_change
        self._clock = clock
        self._watch_isr = watch_isr
        self._lag_max_ms = lag_max_ms
        self.sessions: SessionTable[FetchPartition] = SessionTable(
            limits.FETCH_SESSIONS_MAX, _random_session_id
        )
        self._wakeups: dict[int, asyncio.Event] = {}

    def _one(
        self,
        replica_id: int,
        want: FetchPartition,
        now_ms: int,
        budget: int,
        sessionless: bool,
        named_ms: int | None,
    ) -> tuple[dict[str, Any], bytes]:
        """One partition's answer to ``replica_id``'s fetch state ``want``, named at
        ``named_ms`` (None: by the request being answered). Raises _NamedBeforeJoining for a
        state named before the follower (re)joined the replicas."""
        entry: dict[str, Any] = {"topic": want.topic, "partition": want.partition, "size": 0}
        p: Partition | None = self._lookup(want.topic, want.partition)
        if p is None or p.topic_id != want.topic_id:
            entry["error"] = error_entry(
                UNKNOWN_PARTITION, f"{want.topic}-{want.partition} is not here"
            )
            return entry, b""
        epoch = p.state.leader_epoch
        if want.leader_epoch < epoch:
            entry["error"] = error_entry(
                FENCED_LEADER_EPOCH, f"leader epoch {want.leader_epoch} is older than {epoch}"
            )
            return entry, b""
        if want.leader_epoch > epoch:
            # This node has not applied that epoch yet (or it does not exist): the metadata
            # decides who leads, never a request, so nothing changes here.
            entry["error"] = error_entry(
                UNKNOWN_LEADER_EPOCH,
                f"leader epoch {want.leader_epoch} is newer than {epoch}, the latest node "
                f"{self.node_id} knows of {want.topic}-{want.partition}",
            )
            return entry, b""
        if not p.is_leader or p.log.offline:
            entry["error"] = error_entry(
                NOT_LEADER_OR_FOLLOWER, f"node {self.node_id} does not lead"
            )
            return entry, b""
        if replica_id not in p.state.replicas:
            # Kafka's answer (Partition.followerReplicaOrThrow): (replica, epoch) is not
            # known yet; a new replica whose fetch is ahead of this leader's metadata is held
            # until the metadata comes, like any epoch this node has not applied.
            entry["error"] = error_entry(
                UNKNOWN_LEADER_EPOCH,
                f"broker {replica_id} is not a replica of {p.name} at leader epoch {epoch} "
                f"on node {self.node_id}",
            )
            return entry, b""
        if named_ms is not None and not p.counts_fetch_state(replica_id, named_ms):
            raise _NamedBeforeJoining(p.name)
        log_ = p.log
        entry.update(
            high_watermark=log_.high_watermark,
            log_start_offset=log_.log_start_offset,
            log_end_offset=log_.log_end_offset,
        )
        if want.last_fetched_epoch >= 0:
            end_epoch, end_offset = log_.epoch_cache.end_offset_for(
                want.last_fetched_epoch, log_.log_end_offset
            )
            if end_epoch != want.last_fetched_epoch or end_offset < want.fetch_offset:
                entry["diverging"] = {"epoch": end_epoch, "end_offset": end_offset}
                return entry, b""
        if not log_.log_start_offset <= want.fetch_offset <= log_.log_end_offset:
            entry["error"] = error_entry(
                OFFSET_OUT_OF_RANGE,
                f"fetch offset {want.fetch_offset} is outside "
                f"[{log_.log_start_offset}, {log_.log_end_offset}]",
            )
            return entry, b""
        self._record_progress(p, replica_id, want, now_ms, sessionless)
        entry["high_watermark"] = log_.high_watermark
        if budget <= 0 or want.fetch_offset == log_.log_end_offset:
            return entry, b""
        quota = self.quota
        throttled = quota.active and quota.is_throttled(p.topic, p.index)
        # The maximal ISR, as the HW counts it: a follower the leader asked to add must not
        # be slowed, or the HW (and every acks=all write) would wait on the throttle.
        if throttled and replica_id not in p.maximal_isr:
            now = self._quota_now_ms()
            if quota.exceeded(now):
                return entry, b""  # looked at again next round, as a partition with no news
            budget = quota.read_cap(budget)
        try:
            data = log_.read(want.fetch_offset, budget)
        except KafkaStorageError:
            p.notify()
            entry["error"] = error_entry(KAFKA_STORAGE_ERROR, str(log_.offline))
            return entry, b""
        if throttled:
            quota.record(len(data), self._quota_now_ms())
        entry["size"] = len(data)
        return entry, data

    def _quota_now_ms(self) -> int:
        return int(self._clock.monotonic_s() * 1000)

    def _record_progress(
        self, p: Partition, replica: int, want: FetchPartition, now_ms: int, sessionless: bool
    ) -> None:
        """Kafka's rules: the fetch offset is what the follower has; it is caught up if it
        reached the log end, or the log end of its last fetch."""
        fetch_offset = want.fetch_offset
        leo = p.log.log_end_offset
        progress = p.followers.get(replica)
        if progress is None:
            progress = p.followers[replica] = FollowerProgress(now_ms, now_ms, leo)
        if fetch_offset >= leo:
            progress.last_caught_up_ms = now_ms
        elif fetch_offset >= progress.last_fetch_leo:
            progress.last_caught_up_ms = progress.last_fetch_ms
        progress.last_fetch_ms = now_ms
        progress.last_fetch_leo = leo
        p.follower_reported(replica, fetch_offset, want.flushed_offset)
        if self._watch_isr is not None and replica in p.state.isr:
            # A follower behind may stay behind; a sessionless one may stop asking unseen.
            if fetch_offset < leo or sessionless:
                self._watch_isr(p, progress.last_caught_up_ms + self._lag_max_ms + 1)
        self._maybe_expand(p, replica, fetch_offset)

    def _maybe_expand(self, p: Partition, replica: int, fetch_offset: int) -> None:
        if (
            replica in p.state.replicas
            and replica not in p.state.isr
            and fetch_offset >= p.log.high_watermark
            and fetch_offset >= p.leader_epoch_start_offset()
        ):
            self._request_isr_change(p, (*p.state.isr, replica))

    def answer(
        self, request: FetchRequest, now_ms: int
    ) -> tuple[list[dict[str, Any]], list[bytes]]:
        """One pass over a sessionless request's partitions: each one's header entry and
        batch bytes (within the request's byte budget), the followers' progress recorded."""
        budget = request.max_bytes
        entries, chunks = [], []
        for want in request.partitions:
            entry, data = self._one(request.replica_id, want, now_ms, budget, True, None)
            budget -= len(data)
            entries.append(entry)
            chunks.append(data)
        return entries, chunks

    async def fetch(self, request: FetchRequest) -> bytes:
        """Answers at once when there is data or an error, else after up to max_wait_ms. An
        epoch this node has not applied yet is no reason to answer at once: it waits for the
        metadata (a partition's change wakes it) like a fetch with nothing new. A request of
        a session is answered from the session (see ``server/fetch_sessions.py``); an
        ``end_poll`` makes the session's request it names answer now, and is answered with
        nothing at once."""
        if request.end_poll:
            self._end_poll(request)
            return encode_response([], [])
        now_ms = self._clock.wall_ms()
        try:
            session, closed = self.sessions.begin(
                request.replica_id,
                request.session_id,
                request.session_epoch,
                request.partitions,
                request.forgotten,
                now_ms,
            )
        except SessionError as e:
            return encode_response([], [], error=error_entry(e.kind, e.message))
        for old in closed:
            self._session_closed(old, now_ms)
        if session is not None and session.silence_reported:
            # A follower back from a pause reports nothing new on idle partitions: the ISR
            # keeper looks at them again (it may add the follower back now).
            session.silence_reported = False
            for topic, index in session.partitions:
                self._look_at_isr(self._lookup(topic, index), now_ms)
        for topic, index in request.forgotten:
            self._look_at_isr(self._lookup(topic, index), now_ms)
        if session is None:
            return await self._fetch_sessionless(request)
        return await self._fetch_session(session, request)

    def _end_poll(self, request: FetchRequest) -> None:
        """The follower asks that its request of ``session_epoch`` be answered now, held or
        still on its way (the mark covers a request that arrives after this one). Nothing
        else of the session changes: its epochs stay one request at a time."""
        session = self.sessions.get(request.session_id)
        if session is None or session.replica_id != request.replica_id:
            return  # the held request, if any, meets the session error itself
        session.end_poll_epoch = request.session_epoch
        wakeup = self._wakeups.get(session.session_id)
        if wakeup is not None and session.epoch == next_epoch(request.session_epoch):
            wakeup.set()  # that request came and no later one: it may be the held poll

    async def _fetch_sessionless(self, request: FetchRequest) -> bytes:
        deadline = self._clock.monotonic_s() + request.max_wait_ms / 1000
        while True:
            entries, chunks = self.answer(request, self._clock.wall_ms())
            remaining = deadline - self._clock.monotonic_s()
            if any(chunks) or any(_answer_now(e) for e in entries) or remaining <= 0:
                return encode_response(entries, chunks)
            waiters = [
                p.changed()
                for want in request.partitions
                if (p := self._lookup(want.topic, want.partition)) is not None
            ]
            if not waiters:
                return encode_response(entries, chunks)
            done, pending = await asyncio.wait(
                [asyncio.ensure_future(w) for w in waiters],
                timeout=remaining,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()

    async def _fetch_session(
        self, session: LeaderSession[FetchPartition], request: FetchRequest
    ) -> bytes:
        """The session's partitions with news: at once for a full request, else when some
        partition has news (its change wakes the poll) or after max_wait_ms."""
        wakeup = self._wakeups.setdefault(session.session_id, asyncio.Event())
        deadline = self._clock.monotonic_s() + request.max_wait_ms / 1000
        full = session.full_answer_due
        budget = request.max_bytes
        # By partition: a held answer (an epoch not applied here yet) is replaced when the
        # partition is looked at again.
        answers: dict[Key, tuple[dict[str, Any], bytes]] = {}
        pending: list[Key] = []  # data left for the next round (the byte budget ran out)
        while True:
            wakeup.clear()
            now_ms = self._clock.wall_ms()
            for key in session.take_dirty():
                cached = session.partitions[key]
                try:
                    entry, data = self._one(
                        session.replica_id, cached.want, now_ms, budget, False, cached.named_ms
                    )
                except _NamedBeforeJoining as e:
                    return self._end_session(session, e.partition, now_ms)
                budget -= len(data)
                if not data and "error" not in entry and "diverging" not in entry:
                    if cached.want.fetch_offset < entry["log_end_offset"]:
                        pending.append(key)
                    # Compared with what earlier answers told the follower, never with an
                    # answer of this poll not sent yet (a look again after this follower's
                    # own report moved the HW would otherwise drop that news).
                    if not full and (
                        entry["high_watermark"] == cached.high_watermark_sent
                        and entry["log_start_offset"] == cached.log_start_sent
                    ):
                        answers.pop(key, None)
                        continue  # nothing the follower does not know
                answers[key] = (entry, data)
            remaining = deadline - self._clock.monotonic_s()
            if (
                full
                or session.closed
                or session.end_poll_epoch == request.session_epoch
                or remaining <= 0
                or any(data or _answer_now(entry) for entry, data in answers.values())
            ):
                break
            try:
                await asyncio.wait_for(wakeup.wait(), remaining)
            except TimeoutError:
                pass
        session.dirty.update(pending)
        for key, (entry, _) in answers.items():
            sent_to = session.partitions.get(key)  # None: forgotten while the poll waited
            if sent_to is not None and "error" not in entry and "diverging" not in entry:
                sent_to.high_watermark_sent = entry["high_watermark"]
                sent_to.log_start_sent = entry["log_start_offset"]
        entries = [entry for entry, _ in answers.values()]
        chunks = [data for _, data in answers.values()]
        return encode_response(entries, chunks, session.session_id)

    def _end_session(
        self, session: LeaderSession[FetchPartition], partition: str, now_ms: int
    ) -> bytes:
        """Closes a session holding a fetch state of ``partition`` named before its follower
        (re)joined the replicas: that state may describe a log the follower's broker has
        deleted since, and an unchanged one would not be named again. The follower starts a
        full session, naming every partition with what it has now."""
        self.sessions.close(session)
        self._session_closed(session, now_ms)
        log.info(
            "fetch session %d of node %d ended: it named %s before it joined the replicas",
            session.session_id,
            session.replica_id,
            partition,
        )
        error = error_entry(
            FETCH_SESSION_ID_NOT_FOUND,
            f"fetch session {session.session_id} of replica {session.replica_id} ended: it "
            f"named its fetch state of {partition} before it joined the replicas (its log may "
            "be new): start a full session",
        )
        return encode_response([], [], error=error)

    def partition_changed(self, p: Partition) -> None:
        """A partition has news (``Partition.notify``): the sessions holding it wake."""
        for session in self.sessions.changed((p.topic, p.index)):
            wakeup = self._wakeups.get(session.session_id)
            if wakeup is not None:
                wakeup.set()

    def _session_closed(self, session: LeaderSession[FetchPartition], now_ms: int) -> None:
        wakeup = self._wakeups.pop(session.session_id, None)
        if wakeup is not None:
            wakeup.set()  # its held poll answers now
        for topic, index in session.partitions:
            self._look_at_isr(self._lookup(topic, index), now_ms)

    def _look_at_isr(self, p: Partition | None, now_ms: int) -> None:
        """The ISR keeper looks at ``p`` now (a follower stopped or resumed fetching it)."""
        if p is not None and self._watch_isr is not None and p.is_leader:
            self._watch_isr(p, now_ms)

    def quiet_sessions(self, now_ms: int, quiet_ms: int) -> list[LeaderSession[FetchPartition]]:
        """Sessions whose follower has not asked for ``quiet_ms`` (each told once): their
        partitions need an ISR look, as the follower may be gone."""
        out = []
        for session in self.sessions:
            if not session.silence_reported and now_ms - session.last_fetch_ms > quiet_ms:
                session.silence_reported = True
                out.append(session)
        return out

    def caught_up(self, p: Partition, replica: int, now_ms: int, quiet_ms: int) -> tuple[int, bool]:
        """When the follower was last caught up on ``p``, and whether it still is for as
        long as its session lives (it holds all of ``p`` and asked within ``quiet_ms``):
        then only an event (an append, its session going quiet) can make it lag."""
        progress = p.followers.get(replica)
        since = p.follower_since_ms(replica) if progress is None else progress.last_caught_up_ms
        session = self.sessions.of_replica(replica)
        cached = None if session is None else session.partitions.get((p.topic, p.index))
        if (
            session is None
            or cached is None
            or cached.want.topic_id != p.topic_id
            or cached.want.leader_epoch != p.state.leader_epoch
            or cached.want.fetch_offset < p.log.log_end_offset
        ):
            return since, False
        return max(since, session.last_fetch_ms), now_ms - session.last_fetch_ms <= quiet_ms

    def expand_isr_if_caught_up(self, p: Partition, now_ms: int, quiet_ms: int) -> None:
        """Asks again to add the followers of ``p`` whose live sessions (a request within
        ``quiet_ms``) show them caught up: an earlier request was refused, or the follower
        came back from a pause, and an idle follower reports nothing new. Only a fetch state
        named, and recorded here, since the follower last joined the replicas counts: one
        named before may describe a log its broker deleted when it was removed."""
        for session in self.sessions.holding((p.topic, p.index)):
            cached = session.partitions[(p.topic, p.index)]
            replica = session.replica_id
            if (
                now_ms - session.last_fetch_ms <= quiet_ms
                and cached.want.topic_id == p.topic_id
                and cached.want.leader_epoch == p.state.leader_epoch
                and replica in p.followers
                and p.counts_fetch_state(replica, cached.named_ms)
            ):
                self._maybe_expand(p, replica, cached.want.fetch_offset)


class _NamedBeforeJoining(Exception):
    """A session's fetch state of ``partition`` was named before its follower (re)joined
    the replicas (``Partition.counts_fetch_state``): the session ends."""

    def __init__(self, partition: str) -> None:
        super().__init__(partition)
        self.partition = partition


def _answer_now(entry: dict[str, Any]) -> bool:
    """Whether a partition's answer is news for the follower (diverging, or an error it
    acts on) rather than something the leader's own metadata will settle."""
    error = entry.get("error")
    if error is not None:
        return bool(error["error_code"] != UNKNOWN_LEADER_EPOCH.code)
    return "diverging" in entry


def isr_check(
    p: Partition,
    now_ms: int,
    lag_max_ms: int,
    caught_up: Callable[[Partition, int], tuple[int, bool]] | None = None,
) -> tuple[tuple[int, ...] | None, int | None]:
    """The ISR without the followers that have not caught up for ``lag_max_ms`` (None if
    all have), and when to look again (None: no follower can fall out without an event).

    ``caught_up(p, replica)`` says when the follower was last caught up and whether it is
    covered (caught up for as long as its fetch session lives); by default, from what it
    last reported, never covered."""
    keep: list[int] = []
    next_ms: int | None = None
    for replica in p.state.isr:
        if replica == p.node_id:
            keep.append(replica)
            continue
        since, covered = (caught_up or _reported_caught_up)(p, replica)
        if now_ms - since > lag_max_ms:
            continue
        keep.append(replica)
        if not covered:
            due = since + lag_max_ms + 1
            next_ms = due if next_ms is None else min(next_ms, due)
    smaller = tuple(keep)
    return (None if smaller == p.state.isr else smaller), next_ms


def _reported_caught_up(p: Partition, replica: int) -> tuple[int, bool]:
    progress = p.followers.get(replica)
    # A follower not heard from since this node became leader (or since it joined the
    # replicas) has had that long.
    return (p.follower_since_ms(replica) if progress is None else progress.last_caught_up_ms), False


def isr_to_shrink(p: Partition, now_ms: int, lag_max_ms: int) -> tuple[int, ...] | None:
    """The ISR without the followers that have not caught up for ``lag_max_ms``, or None."""
    return isr_check(p, now_ms, lag_max_ms)[0]
