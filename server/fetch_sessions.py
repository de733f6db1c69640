"""Incremental replica fetch sessions (Kafka's KIP-227), both halves, without I/O.

Theory of operation
-------------------
A follower fetches every partition it follows on one leader in one long-polling request,
again and again. Without sessions every request names every partition and every answer
covers every partition, so a thousand idle partitions cost a thousand entries twice a
second each way. With a session, the leader keeps what the follower last said of each
partition (its fetch state: offsets and epochs), and:

- a **full** request (``session_epoch`` 0) names every partition; the leader opens a new
  session holding them (closing the follower's previous one) and answers every partition;
- an **incremental** request (the session's id and its next epoch, 1, 2, ...) names only
  the partitions whose fetch state changed since the last request, plus the ones the
  follower no longer fetches here (``forgotten``); the leader updates its copy, and answers
  the partitions named and those with something to say: data, a new high watermark or log
  start offset, an error, a divergence;
- a **sessionless** request (``session_epoch`` -1, the default) is the old full fetch: no
  session is kept (a ``session_id`` with it closes that session).

The leader's long poll waits for news on any partition of the session: a partition's
change (an append, a HW move, a new leader epoch, a close) marks it *dirty* in the sessions
that hold it (:meth:`SessionTable.changed`), and the answer looks at dirty partitions only.

Errors of the session itself, in the answer's header rather than per partition:
FETCH_SESSION_ID_NOT_FOUND (the leader restarted, or evicted the session) and
INVALID_FETCH_SESSION_EPOCH (a request was lost or repeated). The follower then starts a
full session again (:meth:`FollowerSession.reset`); so it does after any failed request,
whose effect on the leader it cannot know.

Limits: a leader keeps one session per follower (a new one replaces the follower's previous
one) and at most ``sessions_max`` in all, evicting the least recently used; a session holds at
most ``partitions_max`` partitions, and a request that would take it above gets none: it is
answered sessionless (session id 0, Kafka's answer when it cannot cache a session).

Epochs count 1, 2, ... up to 2^31 - 1 and wrap to 1, as Kafka's FetchMetadata.nextEpoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from client.protocol import FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, ErrorKind

Key = tuple[str, int]

INT32_MAX = (1 << 31) - 1
SESSIONLESS_EPOCH = -1  # Kafka's FINAL_EPOCH: no session is kept
FULL_EPOCH = 0  # Kafka's INITIAL_EPOCH: a full request that opens a session


def next_epoch(epoch: int) -> int:
    """The epoch after ``epoch`` in a session (1 after the last int32)."""
    return 1 if epoch >= INT32_MAX else epoch + 1


class Want(Protocol):
    """A follower's fetch state of one partition (``server.replication.FetchPartition``)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def topic_id(self) -> str: ...


W = TypeVar("W", bound=Want)


def key_of(want: Want) -> Key:
    return (want.topic, want.partition)


class SessionError(Exception):
    """A request that does not fit the session it names; the follower starts a new one."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# -- the leader's half ---------------------------------------------------------------------------


@dataclass
class Cached(Generic[W]):
    """What a leader's session holds of one partition: the follower's last fetch state, and
    what the follower was last told (an answer repeats nothing the follower knows)."""

    want: W
    # When the follower named it (wall ms): a state named before the follower (re)joined
    # the partition's replicas may describe a log it has deleted since.
    named_ms: int = 0
    high_watermark_sent: int = -1
    log_start_sent: int = -1


@dataclass(eq=False)
class LeaderSession(Generic[W]):
    session_id: int
    replica_id: int
    epoch: int  # the epoch the next incremental request must carry
    partitions: dict[Key, Cached[W]]
    dirty: set[Key]  # partitions the next answer looks at
    last_fetch_ms: int  # when the follower's last request came
    closed: bool = False
    # The first answer of a session covers every partition (a full answer).
    full_answer_due: bool = True
    # The ISR keeper was told the session went quiet (and is told again when it resumes).
    silence_reported: bool = False
    # The epoch of a request the follower asked to be answered at once (``end_poll``: it
    # follows new partitions here); 0, no epoch of an incremental request, for none.
    end_poll_epoch: int = 0

    def move_to_end(self, key: Key) -> None:
        """Puts a held partition last in the session's order (the order answers read in)."""
        cached = self.partitions.pop(key, None)
        if cached is not None:
            self.partitions[key] = cached

    def take_dirty(self) -> list[Key]:
        """The dirty partitions, now clean: all of them in the request's order for the first
        answer, else sorted (an answer's order does not depend on hashing)."""
        if self.full_answer_due:
            self.full_answer_due = False
            self.dirty.clear()
            return list(self.partitions)
        keys = sorted(k for k in self.dirty if k in self.partitions)
        self.dirty.clear()
        return keys


@dataclass
class SessionTable(Generic[W]):
    """A leader's fetch sessions, by id, by follower, and by the partitions they hold."""

    sessions_max: int
    new_session_id: Callable[[], int]  # random, nonzero: ids do not survive a restart
    # Partitions one session may hold (None: no bound, a follower's sessions hold what it
    # follows here). A request that would take a session above it gets no session (below).
    partitions_max: int | None = None
    _sessions: dict[int, LeaderSession[W]] = field(default_factory=dict)  # oldest use first
    _by_replica: dict[int, int] = field(default_factory=dict)
    _by_key: dict[Key, set[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[LeaderSession[W]]:
        return iter(list(self._sessions.values()))

    def get(self, session_id: int) -> LeaderSession[W] | None:
        return self._sessions.get(session_id)

    def of_replica(self, replica_id: int) -> LeaderSession[W] | None:
        """The follower's current session here, if any."""
        session_id = self._by_replica.get(replica_id)
        return None if session_id is None else self._sessions.get(session_id)

    def holding(self, key: Key) -> list[LeaderSession[W]]:
        return [self._sessions[s] for s in self._by_key.get(key, ())]

    def begin(
        self,
        replica_id: int,
        session_id: int,
        session_epoch: int,
        partitions: Sequence[W],
        forgotten: Iterable[Key],
        now_ms: int,
    ) -> tuple[LeaderSession[W] | None, list[LeaderSession[W]]]:
        """Takes a request's session fields: returns the session to answer from (None for a
        sessionless request, and for one that would hold more than ``partitions_max``
        partitions: its session, if any, is closed) and the sessions closed on the way (their
        partitions lose a follower's fetch state). Raises SessionError for an unknown session
        or wrong epoch."""
        closed: list[LeaderSession[W]] = []
        if session_epoch <= FULL_EPOCH:
            mine = self._sessions.get(session_id)
            if mine is not None and mine.replica_id == replica_id:
                closed.append(self.close(mine))
            if session_epoch == SESSIONLESS_EPOCH:
                return None, closed
            previous = self.of_replica(replica_id)
            if previous is not None:
                closed.append(self.close(previous))
            if self._too_many(len({key_of(w) for w in partitions})):
                # Kafka's answer when its cache cannot take a session: none (session id 0),
                # the request answered sessionless; the client's next request is full again.
                return None, closed
            while len(self._sessions) >= self.sessions_max:
                closed.append(self.close(next(iter(self._sessions.values()))))
            return self._open(replica_id, partitions, now_ms), closed
        session = self._sessions.get(session_id)
        if session is None or session.replica_id != replica_id:
            raise SessionError(
                FETCH_SESSION_ID_NOT_FOUND,
                f"fetch session {session_id} of replica {replica_id} is not here "
                "(the leader restarted or evicted it): start a full session",
            )
        if session_epoch != session.epoch:
            raise SessionError(
                INVALID_FETCH_SESSION_EPOCH,
                f"fetch session {session_id} expects epoch {session.epoch}, "
                f"got {session_epoch}: start a full session",
            )
        for key in forgotten:
            if session.partitions.pop(key, None) is not None:
                self._unindex(session.session_id, key)
            session.dirty.discard(key)
        for want in partitions:
            self._hold(session, want, now_ms)
        if self._too_many(len(session.partitions)):
            # The session ends and the request is answered sessionless (session id 0), as
            # Kafka ends a session an incremental request leaves empty: the client's next
            # request is full, and gets no session while it names too many partitions.
            closed.append(self.close(session))
            return None, closed
        session.epoch = next_epoch(session.epoch)
        session.last_fetch_ms = now_ms
        self._sessions[session.session_id] = self._sessions.pop(session.session_id)  # newest
        return session, closed

    def _too_many(self, partitions: int) -> bool:
        return self.partitions_max is not None and partitions > self.partitions_max

    def changed(self, key: Key) -> list[LeaderSession[W]]:
        """A partition has news (or may have): it is dirty in every session holding it;
        returns those sessions (their long polls wake)."""
        sessions = self.holding(key)
        for session in sessions:
            session.dirty.add(key)
        return sessions

    def close(self, session: LeaderSession[W]) -> LeaderSession[W]:
        """Forgets a session; returns it, closed (its held long poll answers and ends)."""
        if self._sessions.pop(session.session_id, None) is not None:
            for key in session.partitions:
                self._unindex(session.session_id, key)
            if self._by_replica.get(session.replica_id) == session.session_id:
                del self._by_replica[session.replica_id]
        session.closed = True
        return session

    def _open(self, replica_id: int, partitions: Sequence[W], now_ms: int) -> LeaderSession[W]:
        session_id = self.new_session_id()
        while session_id in self._sessions or session_id == 0:
            session_id = self.new_session_id()
        session: LeaderSession[W] = LeaderSession(
            session_id, replica_id, next_epoch(FULL_EPOCH), {}, set(), now_ms
        )
        self._sessions[session_id] = session
        self._by_replica[replica_id] = session_id
        for want in partitions:
            self._hold(session, want, now_ms)
        return session

    def _hold(self, session: LeaderSession[W], want: W, now_ms: int) -> None:
        # What was told is forgotten too: a partition the follower names is answered whole
        # (it may have skipped the last answer, its metadata having moved meanwhile).
        key = key_of(want)
        if key not in session.partitions:
            self._by_key.setdefault(key, set()).add(session.session_id)
        session.partitions[key] = Cached(want, now_ms)
        session.dirty.add(key)

    def _unindex(self, session_id: int, key: Key) -> None:
        holders = self._by_key.get(key)
        if holders is not None:
            holders.discard(session_id)
            if not holders:
                del self._by_key[key]


# -- the follower's half -------------------------------------------------------------------------


@dataclass
class SessionRequest(Generic[W]):
    """The session fields of the follower's next request, and the partitions it names."""

    session_id: int
    session_epoch: int
    partitions: list[W]
    forgotten: list[Key]


@dataclass
class FollowerSession(Generic[W]):
    """A follower's half of its session with one leader: what the leader holds of its
    fetch state, so that a request names only what changed.

    The driver tells it what it knows changed (a partition's append, truncation, flush or
    metadata; a partition it starts or stops following there): a request costs what
    changed, not what is followed. A full request, when no session is open, names all."""

    session_id: int = 0
    epoch: int = FULL_EPOCH  # of the next request: 0 opens a session with a full request
    # What the leader holds once the request in flight is taken (the fetch state in effect).
    sent: dict[Key, W] = field(default_factory=dict)
    # Partitions to name in the next request even if unchanged (an answer's bytes that the
    # log refused, a divergence: the leader must look at them again).
    resend: set[Key] = field(default_factory=set)

    @property
    def full(self) -> bool:
        """Whether the next request must be full (name every partition followed)."""
        return self.epoch == FULL_EPOCH

    def full_request(self, wants: Sequence[W]) -> SessionRequest[W]:
        """A request naming ``wants``, every partition followed on the leader, in order; it
        opens a new session (and closes the one named, if any)."""
        self.sent = {key_of(w): w for w in wants}
        self.resend.clear()
        return SessionRequest(self.session_id, FULL_EPOCH, list(wants), [])

    def incremental_request(self, touched: Mapping[Key, W | None]) -> SessionRequest[W]:
        """The next request of an open session: of the ``touched`` partitions (the fetch
        state now, None for one no longer followed there), those that changed, and those
        to resend; what it names counts as sent."""
        assert not self.full, "no session is open: send a full request"
        changed: list[W] = []
        forgotten: list[Key] = []
        for key, want in touched.items():
            if want is None:
                if self.sent.pop(key, None) is not None:
                    forgotten.append(key)
            elif key in self.resend or self.sent.get(key) != want:
                self.sent[key] = want
                changed.append(want)
        for key in self.resend:
            if key not in touched and key in self.sent:
                changed.append(self.sent[key])
        self.resend.clear()
        return SessionRequest(self.session_id, self.epoch, changed, forgotten)

    def answered(self, session_id: int) -> None:
        """The leader took the request: a full one opened session ``session_id`` (0: none,
        the next request is full again), an incremental one moved the epoch on."""
        if self.epoch == FULL_EPOCH:
            self.session_id = session_id
            self.epoch = FULL_EPOCH if session_id == 0 else next_epoch(FULL_EPOCH)
        else:
            self.epoch = next_epoch(self.epoch)

    def reset(self) -> None:
        """After a session error or a failed request: the next request is full."""
        self.session_id = 0
        self.epoch = FULL_EPOCH
        self.sent = {}
        self.resend.clear()
