"""The metadata quorum: a pysyncobj Raft group that replicates metadata records.

This is the only module that imports pysyncobj. It owns one ``SyncObj`` with one replicated
method, which takes an encoded entry (`kraft.records.encode`) and the Raft term the writer
expected, and applies the entry to the :class:`~kraft.state.MetadataState` whole or not at all.

Threads
    pysyncobj runs a tick thread. Replicated methods, their callbacks, the journal, the dump
    serializer and our tick hook run there; they do no blocking I/O other than the journal's
    and the dump's fsyncs. The asyncio side never blocks on it: :meth:`MetadataQuorum.write`
    queues a command whose callback resolves a future with ``call_soon_threadsafe``;
    :meth:`MetadataQuorum.read` and :meth:`MetadataQuorum.snapshot_state` take the state lock;
    listeners are called on the loop with ``call_soon_threadsafe``, one hop per entry for all
    of them. Entry listeners (``kraft/applied_entries.py``: each entry with its term and apply
    time) are chosen under the state lock with the apply, and what was applied before the
    first one came (a restart's replay, ahead of the node) is kept for it.

Durability (pysyncobj fsyncs nothing by itself; see DESIGN.md, "Known traps")
    - The journal is our :class:`~kraft.journal.DurableJournal`, installed through pysyncobj's
      ``createJournal`` hook. It is synced before any Raft message leaves the node (the
      transport's ``before_send`` hook), before a higher commit index is recorded, and at the
      end of every tick, so an append is acknowledged, and counted by a leader for itself,
      only once it is on disk. Term and vote are written durably before the vote is sent.
    - The dump is written by our serializer (`kraft.dump`), fsynced; pysyncobj renames it, and
      our serialize checker fsyncs the directory before pysyncobj may cut the journal. A dump
      received from the leader goes through the same rename, which `kraft.pysyncobj_hooks`
      makes durable and checked (a bad dump never replaces a good one), all before the
      follower loads and acknowledges it.
    - A node whose journal fails a write or an fsync stops taking part: it closes its Raft
      links, applies nothing more, is never ready again, and must be restarted.

Fencing
    Every entry carries the term its writer saw when it checked it was the leader. The entry
    applies only if that is the term the entry was appended in (read from the journal, so every
    node decides alike); otherwise it is rejected and the writer gets NotControllerError. A
    deposed controller's decisions never land in a later term.

Transport
    `kraft.transport`: bound to the configured address only, encrypted and authenticated with
    the cluster secret, with capped buffers, handshake deadlines and rate-limited reports.

Voters
    The voter set changes one voter at a time through pysyncobj's membership entries
    (:meth:`MetadataQuorum.add_voter`, :meth:`MetadataQuorum.remove_voter`; the rules are
    `kraft.voters`'); a node starts from the set its own files hold, and an observer that the
    log makes a voter turns voter in place (:meth:`MetadataQuorum._promote`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj.config import FAIL_REASON, SERIALIZER_STATE
from pysyncobj.monotonic import monotonic as pysyncobj_clock
from pysyncobj.node import TCPNode
from pysyncobj.poller import POLL_EVENT_TYPE
from pysyncobj.syncobj import SyncObjException

from kraft import limits
from kraft.applied_entries import AppliedEntry, EarlyEntries, EntryListener
from kraft.dump import Dump, decode_dump, voters_of, write_dump_file
from kraft.errors import (
    IllegalRecordError,
    MetadataRecordError,
    MetadataSnapshotError,
    NotControllerError,
    OutcomeUnknownError,
    QuorumError,
    QuorumStoppedError,
    QuorumTimeoutError,
)
from kraft.journal import DurableJournal
from kraft.pysyncobj_hooks import DUMP_PATHS, JOURNALS, JOURNALS_LOCK
from kraft.records import MetadataRecord, decode, encode
from kraft.state import MetadataState
from kraft.transport import (
    DialNode,
    KraftTransport,
    LinkReporter,
    ObserverController,
    TransportHooks,
    observer_key,
)
from kraft.voters import (
    CATCH_UP_LAG_ENTRIES,
    MEMBERSHIP,
    Observed,
    VoterChangeError,
    apply_changes,
    check_add,
    check_base,
    check_live_majority,
    check_remove,
    continues_dump,
    counted_live,
    log_voters,
    pending_change,
    uncommitted_add,
    undo_changes,
)
from storage.durable import fsync_dir, fsync_file

__all__ = [
    "DUMP_FILE",
    "JOURNAL_FILE",
    "META_FILE",
    "IllegalRecordError",
    "Listener",
    "MetadataQuorum",
    "NotControllerError",
    "OutcomeUnknownError",
    "QuorumError",
    "QuorumStoppedError",
    "QuorumTimeoutError",
]

logger = logging.getLogger(__name__)

JOURNAL_FILE = "raft-journal.log"
META_FILE = "quorum-state"
DUMP_FILE = "metadata.dump"

# Called on the event loop with (index, records) after each applied entry, and with
# (index, None) after a dump replaced the whole state ("reset": re-read everything). Readers of
# the log itself (terms, times, the replay at start) use an EntryListener instead.
Listener = Callable[[int, tuple[MetadataRecord, ...] | None], None]
T = TypeVar("T")

_READY_POLL_S = 0.02  # how often wait_ready looks; the tick is 10 ms
_STATE_NAMES = {0: "Follower", 1: "Candidate", 2: "Leader"}
# Failures after which the entry is certainly not in the log: not written, safe to retry.
_NOT_WRITTEN = {
    FAIL_REASON.MISSING_LEADER,
    FAIL_REASON.NOT_LEADER,
    FAIL_REASON.DISCARDED,
    FAIL_REASON.REQUEST_DENIED,
}


_MEMBERSHIP_BYTE = bytes([MEMBERSHIP])


class _MetadataSyncObj(SyncObj):  # type: ignore[misc]
    """The SyncObj with our one replicated method. No properties here: pysyncobj's
    constructor evaluates every attribute of the object while looking for replicated ones."""

    def __init__(
        self,
        owner: MetadataQuorum,
        hooks: TransportHooks,
        self_node: Any,
        others: list[Any],
        conf: Any,
    ) -> None:
        self._kraft_owner = owner
        self._kraft_hooks = hooks  # read by KraftTransport's constructor
        # A pipe that wakes the tick thread from its poll: other threads write to it after
        # queueing a command or setting a flag the tick reads (see _kraft_wait_s).
        self._kraft_wake_r, self._kraft_wake_w = os.pipe()
        os.set_blocking(self._kraft_wake_r, False)
        os.set_blocking(self._kraft_wake_w, False)
        self._kraft_wake_lock = threading.Lock()
        self._kraft_wake_subscribed = False
        self._kraft_first_election = True  # see _kraft_arm_first_election
        try:
            super().__init__(self_node, others, conf, transportClass=KraftTransport)
        except BaseException:
            os.close(self._kraft_wake_r)
            os.close(self._kraft_wake_w)
            raise

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803
        if self._kraft_owner._journal.failed is not None:
            # The disk failed: no more Raft work (sends, votes, applies) on this node.
            self._kraft_owner._halt(self._SyncObj__transport)
            time.sleep(timeToWait)
            return
        if self._kraft_first_election:
            self._kraft_arm_first_election()
        if not self._kraft_wake_subscribed:  # the poller is the tick thread's: subscribe here
            self._kraft_wake_subscribed = True
            self._poller.subscribe(self._kraft_wake_r, self._kraft_woken, POLL_EVENT_TYPE.READ)
        # pysyncobj's tick ends with a poll that sleeps until a socket event (the next tick
        # then follows at once), a writer's wake-up, or what was the next timer before the
        # tick: a timer the tick moved later costs one extra tick, never a late one. A fixed
        # sleep (pysyncobj's autoTickPeriod) would wake the thread every 10 ms for nothing.
        super()._onTick(self._kraft_wait_s())

    def _kraft_arm_first_election(self) -> None:
        """A node that has never been in a term (term 0: a new cluster's first start) times its
        first election from when it first reaches a peer, within RAFT_FIRST_ELECTION_MIN_S to
        RAFT_FIRST_ELECTION_MAX_S, not within the usual 0.4-1.0 s from its start.

        The usual timeout must outlast a heartbeat's delay, so that a live leader is never
        challenged; at term 0 there is no leader to wait for, and no challenge can disturb a
        cluster that has one: this node's first candidacy is for term 1, which no node at a
        term of 1 or more steps down for (Raft steps down only for a higher term). The random
        spread still separates the candidates; a split vote falls back to the usual timeouts.
        """
        if self.raftCurrentTerm != 0 or self._getLeader() is not None:
            self._kraft_first_election = False
        elif self._SyncObj__connectedToAnyone():
            self._kraft_first_election = False
            self._SyncObj__raftElectionDeadline = pysyncobj_clock() + random.uniform(
                limits.RAFT_FIRST_ELECTION_MIN_S, limits.RAFT_FIRST_ELECTION_MAX_S
            )

    def kraft_wake(self) -> None:
        """Wake the tick thread now (any thread): a command was queued or a flag set."""
        with self._kraft_wake_lock:
            if self._kraft_wake_w < 0:
                return
            try:
                os.write(self._kraft_wake_w, b"w")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups the thread has not read yet: it will wake

    def _kraft_woken(self, descr: int, event_mask: int) -> None:
        try:
            while os.read(descr, 4096):
                pass
        except BlockingIOError:
            pass

    def destroy(self) -> None:
        super().destroy()
        self.kraft_wake()  # the tick thread looks at the destroy flag once it wakes

    def _doDestroy(self) -> None:  # noqa: N802
        super()._doDestroy()
        with self._kraft_wake_lock:  # no writer may write to a closed (or reused) fd
            if self._kraft_wake_subscribed:
                self._poller.unsubscribe(self._kraft_wake_r)
            os.close(self._kraft_wake_r)
            os.close(self._kraft_wake_w)
            self._kraft_wake_r = self._kraft_wake_w = -1

    def _kraft_wait_s(self) -> float:
        """How long the tick thread may sleep before its next tick, at most RAFT_IDLE_WAIT_S.

        RAFT_TICK_S while work waits for a tick: queued commands, committed entries not
        applied, a requested compaction or leadership transfer. Otherwise until the first
        timer: the leader's next heartbeat, a follower's or candidate's election deadline,
        the next redial of a lost peer. Timers pysyncobj checks at every tick without
        exposing them (the leader's fallback, handshake deadlines, journal timers) are
        coarse (a second or more): RAFT_IDLE_WAIT_S bounds how late they are seen.
        """
        if (
            self._SyncObj__commandsQueue._FastQueue__queue
            or self.raftCommitIndex > self.raftLastApplied
            or self._SyncObj__forceLogCompaction
            or self._kraft_owner._transfer_requested
            or self._kraft_commits_alone()
        ):
            return limits.RAFT_TICK_S  # as a fixed tick would: never a busy loop
        # pysyncobj's timers are on its own clock (CLOCK_MONOTONIC_RAW), not time.monotonic.
        now = pysyncobj_clock()
        wait: float = limits.RAFT_IDLE_WAIT_S
        if self._isLeader():
            wait = min(wait, self._SyncObj__newAppendEntriesTime - now)
        elif self._SyncObj__connectedToAnyone():  # pysyncobj elects only when connected
            wait = min(wait, self._SyncObj__raftElectionDeadline - now)
        wait = min(wait, self._SyncObj__transport.kraft_next_dial_s())
        # A timer due now fires at this tick (pysyncobj resets it); the floor is in case not.
        return max(limits.RAFT_TIMER_SLACK_S, wait)

    def _kraft_commits_alone(self) -> bool:
        """A leader of a quorum of one with entries not committed yet: it commits them at its
        next tick with no message to wake it."""
        return (
            not self._SyncObj__otherNodes
            and self._isLeader()
            and self._SyncObj__getCurrentLogIndex() > self.raftCommitIndex
        )

    def kraft_send_early(self) -> None:
        """Send appends now (at the end of a tick) if a connected follower lacks entries or
        the commit index (see :meth:`_kraft_should_send_early`). Tick thread."""
        if self._kraft_should_send_early():
            self._SyncObj__sendAppendEntries()

    def _kraft_should_send_early(self) -> bool:
        """A leader holding entries, or a commit index, not sent yet to a connected follower,
        while every connected follower has answered every append it was sent.

        pysyncobj (batching on) sends appends only every append period, which is our
        heartbeat: entries queued by a writer would wait for it, and so would the news that
        they committed (a follower applies, and answers reads, only what it knows committed;
        Kafka's leader answers a follower's pending fetch as soon as its high watermark
        moves). So both go out at the end of the tick that appended them or committed them.

        The second condition keeps clear of a pysyncobj trap (DESIGN.md, "Known traps"): an
        answer to one batch that arrives while a later batch is in flight moves the
        follower's next index back, the later entries are sent again, and the follower drops
        every entry after the resent batch's start, applied ones included. So a batch goes
        early only when nothing is in flight; otherwise the answer's tick or the append
        period sends it.
        """
        if not self._isLeader():
            return False
        last: int = self._SyncObj__getCurrentLogIndex()
        first: int = self._SyncObj__raftLog[0][1]  # entries before it are only in the dump
        commit: int = self.raftCommitIndex
        connected = self._SyncObj__connectedNodes
        next_index: dict[Any, int] = self._SyncObj__raftNextIndex
        transport = self._SyncObj__transport
        unanswered: dict[Any, int] = transport.kraft_unanswered
        told: dict[Any, int] = transport.kraft_told_commit
        unsent = False
        for node, index in next_index.items():
            if node not in connected:
                continue
            if unanswered.get(node, 0) or index <= first:
                return False  # a message in flight to it, or it needs the dump
            unsent = unsent or index <= last or told.get(node, 0) < commit
        return unsent

    def _applyCommand(  # noqa: N802 (pysyncobj's)
        self,
        command: bytes,
        callback: Any,
        commandType: int | None = None,  # noqa: N803
    ) -> None:
        # A membership command forwarded by another node (pysyncobj forwards a command queued
        # on a node that lost the leadership before its tick) would skip the leader's checks
        # (kraft/voters.py) and its one-change-at-a-time: refused. Ours come from
        # add/removeNodeFromCluster on this node, with their type apart.
        if commandType is None and command[:1] == _MEMBERSHIP_BYTE:
            if isinstance(callback, tuple):
                node, request_id = callback
                self._SyncObj__transport.send(
                    node,
                    {
                        "type": "apply_command_response",
                        "request_id": request_id,
                        "error": FAIL_REASON.REQUEST_DENIED,
                    },
                )
            return
        super()._applyCommand(command, callback, commandType)

    def _SyncObj__doApplyCommand(self, command: bytes) -> Any:  # noqa: N802 (pysyncobj's)
        # pysyncobj changes the voter set when a membership entry is appended (undone if it
        # is truncated), and again when it is applied: at a start it replays the committed
        # ones over the set it was given, which already holds every change of the files (the
        # log's latest set, kraft/voters.py), so "add X" replayed after a later "rem X" would
        # bring X back until the commit index reached the removal. Applying changes nothing.
        if command[:1] == _MEMBERSHIP_BYTE:
            return None
        return super()._SyncObj__doApplyCommand(command)

    @replicated  # type: ignore[untyped-decorator]
    def apply_records(self, data: bytes, term: int) -> Any:
        # Entries apply one by one, in order: this one is the next after the last applied.
        return self._kraft_owner._apply(self.raftLastApplied + 1, data, term)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _tell(
    listeners: tuple[Listener, ...],
    index: int,
    records: tuple[MetadataRecord, ...] | None,
    entry_listeners: tuple[EntryListener, ...],
    told: AppliedEntry | MetadataState,
) -> None:
    """On the loop: what ``MetadataQuorum._notify`` sent. A listener that raises (a bug) is
    logged and the others are still told."""
    for listener in listeners:
        try:
            listener(index, records)
        except Exception:
            logger.exception("a metadata listener failed on entry %d", index)
    for entry_listener in entry_listeners:
        try:
            if isinstance(told, AppliedEntry):
                entry_listener.entry_applied(told)
            else:
                entry_listener.state_replaced(index, told)
        except Exception:
            logger.exception("a metadata entry listener failed on entry %d", index)


def _check_address(what: str, address: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what} must be host:port, got {address!r}")


class MetadataQuorum:
    """One node's member of the metadata quorum: Raft (pysyncobj) plus the state machine.

    `peers` are the other voters' Raft addresses by node id (empty for a quorum of one);
    `dial_overrides` the address to dial for some of them. `data_dir` is the
    ``__cluster_metadata-0`` directory; `secret` the cluster secret (encrypts the Raft links).
    """

    def __init__(
        self,
        node_id: int,
        self_address: str | None,
        peers: Mapping[int, str],
        data_dir: Path,
        secret: str,
        *,
        dial_overrides: Mapping[int, str] | None = None,
        formatted_voters: Sequence[str] | None = None,
    ) -> None:
        # self_address None: an observer (kraft/observer.py), which has no Raft address.
        # formatted_voters: the Raft addresses of the voters the log started with, when they
        # are not this node and `peers` (a controller that joined the quorum later: its
        # controller.quorum.bootstrap.servers). Its files' membership entries say the rest.
        dial_overrides = dict(dial_overrides or {})
        if self_address is not None:
            _check_address("self_address", self_address)
        for peer_id, address in peers.items():
            _check_address(f"the address of voter {peer_id}", address)
        for peer_id, address in dial_overrides.items():
            _check_address(f"the dial address of voter {peer_id}", address)
        if node_id in peers:
            raise ValueError(f"node {node_id} is listed among its own peers")
        own = {self_address} if self_address is not None else set()
        if len({*own, *peers.values()}) != len(peers) + len(own):
            raise ValueError("the voters' Raft addresses must be distinct")
        if not set(dial_overrides) <= set(peers):
            raise ValueError(f"dial overrides for non-voters {set(dial_overrides) - set(peers)}")
        if not secret:
            raise ValueError("the cluster secret must not be empty")
        self.node_id = node_id
        self.self_address = self_address
        # The voters as configured (controller.quorum.voters); `peers` is the live set.
        self.configured_peers: Mapping[int, str] = dict(peers)
        self.data_dir = Path(data_dir)
        self._secret = secret
        self._dial_overrides = dial_overrides
        self._formatted = None if formatted_voters is None else tuple(formatted_voters)
        # controller.quorum.voters' ids by address; a registration outranks it (voter_id).
        self._ids_by_address = {a: i for i, a in peers.items()}
        self._added_ids: dict[str, int] = {}  # ids of voters this leader added (voter_id)
        self._lock = threading.Lock()
        self._state = MetadataState()
        self._listeners: tuple[Listener, ...] = ()
        # Entry listeners (kraft/applied_entries.py), read under the state lock with each
        # apply, so that one added while the tick thread applies misses no entry and sees none
        # twice; until the first one comes, what was applied is kept for it (None afterwards).
        self._entry_listeners: tuple[EntryListener, ...] = ()
        self._early: EarlyEntries | None = EarlyEntries(limits.APPLIED_ENTRIES_EARLY_COUNT_MAX)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sync: _MetadataSyncObj | None = None
        self._journal: DurableJournal = None  # type: ignore[assignment]  # set by start()
        self._pending: set[asyncio.Future[int]] = set()
        self._last_heard: dict[str, float] = {}
        self._dump_written_inode: int | None = None
        self._dump_failed = False
        self._fatal: Exception | None = None
        self._halted = False
        self._caught_up_with: str | None = None  # the leader under which it caught up
        self._links = LinkReporter(node_id)
        self._next_unreachable_log = 0.0
        # Set by transfer_leadership (any thread), acted on by the tick thread.
        self._transfer_requested = False
        self._unreachable_logged = False
        self._digest_cache: tuple[int, str] = (-1, "")
        self._logged_leader: Any = None  # the leader the last leader line named
        # Terms in which this node learned of a leader (the first, at start, counts): read by
        # /metrics as kraft_quorum_leader_changes_total. Written by the tick thread only.
        self.leader_changes = 0
        self._leader_term = -1  # the term of the last leader counted
        self._started_at = 0.0
        # The voters' Raft addresses as this node's log had them at start (kraft/voters.py),
        # None when the log says nothing (the configured voters are the set).
        self.start_voters: tuple[str, ...] | None = None
        # The voter change this leader has in flight (a description), None when none is.
        self._voter_change: str | None = None
        # A node that follows the log before it is a voter (a controller being added): the
        # Raft address it takes once the log makes it a voter (kraft/observer.py).
        self.promote_address: str | None = None
        self._promoting = False
        # This node's directory id (meta.properties), said in its handshake while it waits to
        # be added as a voter.
        self.directory_id: str | None = None
        self._loading_own_dump = False  # set while the SyncObj has not loaded its dump yet

    # --- Life cycle ----------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the files, bind the Raft address and start the tick thread.

        Call it on `loop`'s thread. Raises QuorumError when the address cannot be bound and
        JournalCorruptError when the journal is not ours.
        """
        if self._sync is not None or self._loop is not None:
            raise RuntimeError("a MetadataQuorum starts once")
        self.start_voters = log_voters(
            self.data_dir, DUMP_FILE, JOURNAL_FILE, self._formatted_voters()
        )
        if self.self_address is not None:
            voters = self.start_voters or self._formatted_voters()
            if self.self_address not in voters:
                # Started as a voter, its own files and configuration name it none: as one it
                # would elect itself alone (a second leader). main.py makes such a node an
                # observer; this is the last guard.
                raise ValueError(
                    f"node {self.node_id} is not a voter of the metadata log in "
                    f"{self.data_dir} (voters {', '.join(voters) or 'none'}); it cannot start "
                    "as one"
                )
        self._loop = loop
        self._started_at = time.monotonic()
        # Give the peers a grace period to connect before we complain about them.
        self._next_unreachable_log = time.monotonic() + limits.RAFT_UNREACHABLE_FIRST_LOG_S
        if not self.data_dir.is_dir():
            self.data_dir.mkdir(parents=True)
            fsync_dir(self.data_dir.parent)
        self._start_sync()

    def _formatted_voters(self) -> tuple[str, ...]:
        """The voters the log started with, as this node knows them (kraft/voters.py).

        Never just this node unless it was formatted so: a controller that joined a quorum
        starts from the voters it joined (its bootstrap servers), or it would count itself
        as the whole quorum and elect itself (a second leader beside the real quorum's)."""
        if self._formatted is not None:
            return self._formatted
        own = () if self.self_address is None else (self.self_address,)
        return (*own, *self.configured_peers.values())

    def _start_sync(self) -> None:
        """Build the SyncObj over this node's files (a voter's when ``self_address`` is set,
        else a read-only one) and, for a voter, wait until its Raft address is bound."""
        self._links = LinkReporter(self.node_id)
        journal_path = self.data_dir / JOURNAL_FILE
        self._journal = DurableJournal(journal_path, self.data_dir / META_FILE)
        with JOURNALS_LOCK:
            JOURNALS[str(journal_path)] = self._journal
        others = self._remote_nodes()
        observer = self.self_address is None
        hooks = TransportHooks(
            links=self._links,
            before_send=self._before_send,
            on_tick=self._on_tick,
            last_heard=self._last_heard,
            observer_id=self.node_id if observer else None,
            observer_controller=(
                (self.promote_address, self.directory_id, self._formatted_voters())
                if observer and self.promote_address is not None and self.directory_id
                else None
            ),
        )
        dump_path = str(self.data_dir / DUMP_FILE)
        DUMP_PATHS.add(dump_path)
        # pysyncobj loads this node's own dump, if it has one, at its first tick, before any
        # message from the leader: that load is the own one (_deserialize). Without one, the
        # first dump loaded is the leader's.
        self._loading_own_dump = (self.data_dir / DUMP_FILE).is_file()
        try:
            self._sync = _MetadataSyncObj(
                self,
                hooks,
                None if observer else TCPNode(self.self_address),  # None: a read-only node
                others,
                self._conf(),
            )
        except BaseException:
            DUMP_PATHS.discard(dump_path)
            self._journal.close()
            raise
        finally:
            with JOURNALS_LOCK:
                JOURNALS.pop(str(journal_path), None)
        if observer:
            return  # nothing to bind (pysyncobj never signals a read-only node's bind)
        try:
            self._sync.waitBinded()
        except SyncObjException:
            self.stop()
            raise QuorumError(f"cannot bind the Raft address {self.self_address}") from None

    def _remote_nodes(self) -> list[Any]:
        """The nodes this one links with: the other voters (the log's set when it names one,
        else the configured), dialled at their override."""
        if self.start_voters is not None:
            addresses = [a for a in self.start_voters if a != self.self_address]
        elif self._formatted is not None:
            addresses = [a for a in self._formatted if a != self.self_address]
        else:
            addresses = [a for _i, a in sorted(self.configured_peers.items())]
        return [self._node_of(address) for address in addresses]

    def _node_of(self, address: str) -> Any:
        """The pysyncobj node of the voter at Raft ``address`` (dialled at its override)."""
        for peer_id, peer_address in self.configured_peers.items():
            if peer_address == address and peer_id in self._dial_overrides:
                return DialNode(address, self._dial_overrides[peer_id])
        return TCPNode(address)

    def _conf(self) -> Any:
        return SyncObjConf(
            password=self._secret,
            autoTick=True,
            autoTickPeriod=limits.RAFT_TICK_S,
            commandsQueueSize=limits.RAFT_COMMANDS_QUEUE_COUNT_MAX,
            commandsWaitLeader=False,  # fail fast: write() already refused without a leader
            raftMinTimeout=limits.RAFT_MIN_TIMEOUT_S,
            raftMaxTimeout=limits.RAFT_MAX_TIMEOUT_S,
            appendEntriesUseBatch=True,
            appendEntriesPeriod=limits.RAFT_APPEND_ENTRIES_PERIOD_S,
            leaderFallbackTimeout=limits.RAFT_LEADER_FALLBACK_TIMEOUT_S,
            connectionRetryTime=limits.RAFT_CONNECTION_RETRY_S,
            connectionTimeout=limits.RAFT_CONNECTION_TIMEOUT_S,
            bindAddress=self.self_address,  # never pysyncobj's default of 0.0.0.0
            maxBindRetries=limits.RAFT_BIND_RETRIES_COUNT,
            bindRetryTime=limits.RAFT_BIND_RETRY_S,
            # The voter set changes by pysyncobj's membership entries (kraft/voters.py).
            dynamicMembershipChange=True,
            journalFile=str(self.data_dir / JOURNAL_FILE),
            fullDumpFile=str(self.data_dir / DUMP_FILE),
            serializer=self._serialize,
            deserializer=self._deserialize,
            serializeChecker=self._check_serialized,
            logCompactionMinEntries=limits.RAFT_COMPACTION_ENTRIES_COUNT,
            logCompactionMinTime=limits.RAFT_COMPACTION_INTERVAL_S,
            dnsCacheTime=limits.RAFT_DNS_CACHE_S,
            dnsFailCacheTime=limits.RAFT_DNS_FAIL_CACHE_S,
        )

    async def wait_ready(self, timeout_s: float) -> None:
        """Return once a leader is known and this node applied everything it knows committed.

        Raises QuorumTimeoutError after `timeout_s`, or the error that stopped the node (a
        dump that cannot be loaded).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self.is_ready():
                return
            if loop.time() >= deadline:
                raise QuorumTimeoutError(f"the metadata quorum was not ready in {timeout_s} s")
            await asyncio.sleep(_READY_POLL_S)

    def is_ready(self) -> bool:
        """A leader is known and alive, and this node has caught up: it applied all it knew
        committed, once, since it last saw this leader alive (entries committed after that
        are applied within a tick: a busy node is not "not ready" in between).

        A follower's leader is alive if it was heard from within RAFT_CONNECTION_TIMEOUT_S
        (a leader steps down on its own after RAFT_LEADER_FALLBACK_TIMEOUT_S without a
        majority); so a node without a quorum is not ready.
        """
        sync = self._sync
        leader = self._live_leader(sync)
        if sync is None or leader is None:
            self._caught_up_with = None
            return False
        if self._caught_up_with != leader and sync.raftLastApplied >= sync.raftCommitIndex:
            self._caught_up_with = leader
        return self._caught_up_with == leader

    def _live_leader(self, sync: _MetadataSyncObj | None) -> str | None:
        if sync is None or self._fatal is not None or not sync.isReady():
            return None
        leader = sync._getLeader()
        if leader is None:
            return None
        address: str = leader.id
        if address != self.self_address:
            heard = self._last_heard.get(address)
            if heard is None or time.monotonic() - heard > limits.RAFT_CONNECTION_TIMEOUT_S:
                return None
        return address

    def stop(self) -> None:
        """Stop the tick thread (waits for it, about one tick), close the files, and fail the
        writes still waiting with QuorumStoppedError. Call it on the loop's thread."""
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.destroy_synchronous()  # the tick thread closes the transport and journal
            DUMP_PATHS.discard(str(self.data_dir / DUMP_FILE))
        if self._journal is not None:
            self._journal.close()
        for future in list(self._pending):
            if not future.done():
                future.set_exception(QuorumStoppedError("the metadata quorum stopped"))
        self._pending.clear()

    def compact(self) -> None:
        """Ask for a log compaction (a dump, then the journal is cut) at the next tick."""
        if self._sync is not None:
            self._sync.forceLogCompaction()
            self._sync.kraft_wake()

    # --- Writes --------------------------------------------------------------------------------

    async def write(
        self,
        records: Sequence[MetadataRecord],
        timeout_s: float = 5.0,
        *,
        expected_term: int | None = None,
    ) -> int:
        """Commit one entry holding `records` and return its Raft index once applied here.

        Raises NotControllerError (nothing written) when this node is not the leader or its
        term is not `expected_term`; IllegalRecordError (nothing applied, on any node) when the
        state machine refuses a record; QuorumTimeoutError or OutcomeUnknownError when the
        entry may or may not commit; MetadataRecordError for records that cannot be encoded.
        """
        sync = self._sync
        loop = self._loop
        if sync is None or loop is None:
            raise QuorumStoppedError("the metadata quorum is not running")
        data = encode(records)
        # The tick thread may change term and role meanwhile: read the term on both sides of
        # the role check, so `term` is one in which this node was the leader (terms only grow).
        term: int = sync.raftCurrentTerm
        if not sync._isLeader() or sync.raftCurrentTerm != term:
            raise NotControllerError(self.leader_id())
        if expected_term is not None and expected_term != term:
            raise NotControllerError(
                self.leader_id(), f"the Raft term is {term}, not the expected {expected_term}"
            )
        future: asyncio.Future[int] = loop.create_future()
        self._pending.add(future)

        def on_result(result: Any, error: int) -> None:  # on the tick thread
            try:
                loop.call_soon_threadsafe(self._resolve, future, result, error)
            except RuntimeError:
                pass  # the loop is closed: nobody waits any more

        sync.apply_records(data, term, callback=on_result)
        sync.kraft_wake()
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise QuorumTimeoutError(
                f"no commit within {timeout_s} s; the entry may still commit"
            ) from None
        finally:
            self._pending.discard(future)

    def _resolve(self, future: asyncio.Future[int], result: Any, error: int) -> None:
        if future.done():
            return
        if error == FAIL_REASON.SUCCESS:
            if isinstance(result, NotControllerError) and result.leader_id is None:
                # Fenced by term at apply time; name the leader as this node sees it now.
                future.set_exception(NotControllerError(self.leader_id(), str(result)))
            elif isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        elif error in _NOT_WRITTEN:
            future.set_exception(NotControllerError(self.leader_id()))
        elif error == FAIL_REASON.QUEUE_FULL:
            future.set_exception(QuorumError("too many metadata writes are queued"))
        else:  # LEADER_CHANGED, UNKNOWN_OUTCOME
            future.set_exception(OutcomeUnknownError(f"write outcome unknown (reason {error})"))

    # --- The tick thread's side ----------------------------------------------------------------

    def _apply(self, index: int, data: bytes, expected_term: int) -> Any:
        """The replicated method's body: the index on success, else the error to raise.
        Never raises (an exception would wedge pysyncobj's apply loop)."""
        if self._journal.failed is not None:
            return QuorumStoppedError("this node's metadata journal failed; it applies nothing")
        if index <= self._state.applied_index:
            # Applied before this SyncObj replaced the one that applied it (an observer that
            # became a voter, _promote): the state has it already. At a start the state is
            # empty, so a replay applies everything.
            return index
        entry_term = self._journal.term_of(index)
        if entry_term != expected_term:
            return NotControllerError(
                None, f"entry {index} was appended in term {entry_term}, not {expected_term}"
            )
        try:
            records = tuple(decode(data))  # outside the lock: readers on the loop wait on it
        except MetadataRecordError as e:
            return e
        except Exception as e:  # a bug: every node hits it alike, so reject and say so loudly
            logger.exception("decoding entry %d failed", index)
            return e
        with self._lock:
            try:
                self._state.apply_entry(index, records)
            except IllegalRecordError as e:
                return e
            except Exception as e:  # a bug, as above
                logger.exception("the state machine failed on entry %d", index)
                return e
            # Who is told is decided under the lock, with the apply: an entry listener added
            # meanwhile gets this entry in its replay or here, never both.
            entry = AppliedEntry(index, expected_term, _now_ms(), records)
            entry_listeners = self._entry_listeners
            if self._early is not None:
                self._early.applied(entry, self._state)
        self._notify(index, records, entry_listeners, entry)
        return index

    def _notify(
        self,
        index: int,
        records: tuple[MetadataRecord, ...] | None,
        entry_listeners: tuple[EntryListener, ...],
        told: AppliedEntry | MetadataState,
    ) -> None:
        """Tells the listeners on the loop, in one hop (a wake-up of the loop is a system
        call): an applied entry, or (``records`` None, ``told`` the new state) a reset."""
        loop = self._loop
        listeners = self._listeners
        if loop is None or not (listeners or entry_listeners):
            return
        try:
            loop.call_soon_threadsafe(_tell, listeners, index, records, entry_listeners, told)
        except RuntimeError:
            pass  # the loop is closed

    def _before_send(self) -> bool:
        """Persist before send: an acknowledgement or a vote leaves only once it is on disk."""
        try:
            self._journal.sync()
        except OSError:
            return False  # the journal failed (logged there): this node sends nothing more
        return True

    def transfer_leadership(self) -> None:
        """Asks this node, if it leads, to hand the leadership to its most caught-up connected
        voter (Raft's TimeoutNow, pysyncobj's transferLeadership), at its next tick. Best
        effort: without a caught-up voter nothing happens; ``leader_id()`` tells the result."""
        self._transfer_requested = True
        sync = self._sync
        if sync is not None:
            sync.kraft_wake()

    def _on_tick(self) -> None:
        # The leader counts its own entries toward a commit at the next tick: sync them now.
        try:
            self._journal.sync()
        except OSError:
            return  # the next tick halts the node
        now = time.monotonic()
        sync = self._sync
        if sync is not None:
            sync.kraft_send_early()
            leader = sync._getLeader()
            if leader is not None and sync.raftCurrentTerm != self._leader_term:
                self._leader_term = sync.raftCurrentTerm
                self.leader_changes += 1
            if leader != self._logged_leader:
                self._logged_leader = leader
                if leader is not None:
                    logger.info(
                        "node %s leads the metadata quorum in term %d (%.2f s after "
                        "this node's quorum started)",
                        self._ids_by_address.get(leader.id, leader.id)
                        if leader.id != self.self_address
                        else self.node_id,
                        sync.raftCurrentTerm,
                        now - self._started_at,
                    )
        if (
            sync is not None
            and self.promote_address is not None
            and self.self_address is None
            and not self._promoting
            and TCPNode(self.promote_address) in sync.otherNodes
            and self._add_settled(sync)
        ):
            self._promoting = True  # the log made this node a voter: take its place
            loop = self._loop
            if loop is not None:
                loop.call_soon_threadsafe(self._promote)
        if self._transfer_requested and sync is not None:
            self._transfer_requested = False
            if sync._isLeader():
                sync.transferLeadership(callback=self._transfer_result)
        if sync is None or now < self._next_unreachable_log:
            return
        self._next_unreachable_log = now + limits.RAFT_UNREACHABLE_LOG_INTERVAL_S
        self._log_unreachable(sync)

    def _add_settled(self, sync: _MetadataSyncObj) -> bool:
        """Whether this observer, which the log names a voter, may turn voter: once its add is
        committed (a new leader may overwrite an uncommitted one, and a voter is told nothing
        by the others while they do not count it one). Except when the log's voters would be
        two with it: then the add commits only with its vote, so it turns voter at once."""
        address = self.promote_address
        assert address is not None
        if len(sync.otherNodes) <= 2:  # an observer's otherNodes are all the voters
            return True
        return uncommitted_add(self._journal[:], address, sync.raftCommitIndex) is None

    def _log_unreachable(self, sync: Any) -> None:
        """Says which voters this node cannot reach (every RAFT_UNREACHABLE_LOG_INTERVAL_S),
        and when they are all reachable again."""
        peers = sorted(self.peers.items())
        lost = [(i, a) for i, a in peers if not sync.isNodeConnected(TCPNode(a))]
        if lost:
            self._unreachable_logged = True
            majority = (len(self.peers) + 1) // 2 + 1
            logger.warning(
                "node %d cannot reach voters %s; it keeps retrying every %s s%s",
                self.node_id,
                ", ".join(f"{i} ({a})" for i, a in lost),
                limits.RAFT_CONNECTION_RETRY_S,
                ""
                if len(self.peers) + 1 - len(lost) >= majority
                else f", and is not ready until {majority} of {len(self.peers) + 1} voters are "
                "connected",
            )
        elif self._unreachable_logged:
            self._unreachable_logged = False
            logger.info("node %d reaches every voter again", self.node_id)

    def _transfer_result(self, result: Any, error: int) -> None:  # on the tick thread
        if error == FAIL_REASON.SUCCESS:
            logger.warning("node %d hands the metadata leadership over", self.node_id)
        else:
            logger.warning(
                "node %d could not hand the metadata leadership over (no caught-up voter "
                "connected, reason %s)",
                self.node_id,
                error,
            )

    def _halt(self, transport: Any) -> None:
        """Called by every tick after the journal failed: stop taking part, once."""
        if self._halted:
            return
        self._halted = True
        self._fatal = QuorumStoppedError(
            f"node {self.node_id}: the metadata journal in {self.data_dir} failed a write or an "
            f"fsync ({self._journal.failed}); this node left the quorum: restart it"
        )
        logger.critical("%s", self._fatal)
        transport.destroy()  # peers see a closed port, not a silent one

    def _serialize(self, file_name: str, data: Any) -> None:
        last, prev, cluster = data
        try:
            with self._lock:
                state = self._state.to_snapshot()
            # pysyncobj hands over its voters now, changed by membership entries appended
            # after the dump's last one (not committed, perhaps: a new leader may overwrite
            # them, and a restart from this dump would bring such a change back): the dump
            # holds the set at its own index.
            voters = undo_changes(voters_of(list(cluster)), self._journal[:], int(last[1]))
            dump = Dump(tuple(last), tuple(prev), voters, state)
            self._dump_written_inode = write_dump_file(Path(file_name), dump)
        except Exception:
            logger.exception("writing the metadata dump %s failed", file_name)
            self._dump_failed = True
            raise  # pysyncobj then leaves the old dump in place

    def _check_serialized(self) -> int:
        if self._dump_failed:
            self._dump_failed = False
            return int(SERIALIZER_STATE.FAILED)
        inode, self._dump_written_inode = self._dump_written_inode, None
        if inode is None:
            return int(SERIALIZER_STATE.NOT_SERIALIZING)
        path = self.data_dir / DUMP_FILE
        try:
            if os.stat(path).st_ino != inode:
                raise OSError(f"{path} is not the dump just written")
            fsync_dir(self.data_dir)  # the rename is durable before the journal is cut
        except OSError:
            logger.exception("the metadata dump was not renamed into place")
            return int(SERIALIZER_STATE.FAILED)
        return int(SERIALIZER_STATE.SUCCESS)

    def _deserialize(self, file_name: str) -> tuple[Any, Any, list[Any]]:
        path = Path(file_name)
        try:
            dump = decode_dump(path.read_bytes())
            state = MetadataState.from_snapshot(dump.state)
            # A dump from the leader was renamed here without fsync: make it durable before
            # pysyncobj clears the journal and acknowledges it.
            fsync_file(path)
            fsync_dir(path.parent)
        except (OSError, MetadataSnapshotError) as e:
            self._fatal = QuorumStoppedError(f"cannot load the metadata dump {path}: {e}")
            logger.critical("%s", self._fatal)
            raise
        index = dump.last_entry[1]
        addresses = [a for a in dump.voters if a != "None"]
        if self._loading_own_dump:
            # This node's own dump, loaded at start. pysyncobj replaces the voters it was
            # built with by the ones this returns, and does not apply the journal's membership
            # entries after the dump again (they apply when appended; _MetadataSyncObj skips
            # them at apply): so the set is the dump's changed by those entries, as this
            # node's log holds it. A journal that does not continue the dump is cleared by
            # pysyncobj, and then the dump's set is the log's.
            self._loading_own_dump = False
            entries = self._journal[:]
            if continues_dump(entries, dump.prev_entry, dump.last_entry):
                addresses = list(apply_changes(addresses, [e for e in entries if e[1] > index]))
        voters = [self._node_of(a) for a in addresses]
        if index <= self._state.applied_index:
            # A promotion's new SyncObj loading the dump the observer had: the state is ahead.
            return dump.last_entry, dump.prev_entry, voters
        with self._lock:
            self._state = state
            copy = state.copy()  # the listeners' own: the live state changes with each entry
            entry_listeners = self._entry_listeners
            if self._early is not None:
                self._early.replaced(index, copy)
        self._notify(index, None, entry_listeners, copy)
        return dump.last_entry, dump.prev_entry, voters

    # --- Reads ---------------------------------------------------------------------------------

    def read(self, fn: Callable[[MetadataState], T]) -> T:
        """`fn(state)` computed under the state lock (keep it short: it holds the tick)."""
        with self._lock:
            return fn(self._state)

    def snapshot_state(self) -> MetadataState:
        """A consistent copy of the applied state that later entries do not change (cheap)."""
        with self._lock:
            return self._state.copy()

    def add_listener(self, listener: Listener) -> None:
        """Call `listener` on the loop after every applied entry and after a state reset.

        Add listeners before start() to see every entry; one added later should read the
        state first.
        """
        self._listeners = (*self._listeners, listener)

    def add_entry_listener(self, listener: EntryListener) -> None:
        """Tell ``listener`` (on the loop) each entry this node applies from now on, with its
        term and time (kraft/applied_entries.py). Call it on the event loop (the order of
        what it is told relies on that); the listener may read the quorum while it is told.

        It is first told, before this returns, a state to start from: for the first entry
        listener, the state the quorum started with (empty, or its dump) followed by every
        entry applied since, the replay of the journal at start included; for a later one, the
        current state.
        """
        # Only the swap, the copy and the registration are done under the lock: the replay
        # (up to APPLIED_ENTRIES_EARLY_COUNT_MAX entries) would otherwise stall the tick
        # thread's applies and dumps, and a listener reading the quorum from state_replaced
        # would deadlock on this non-reentrant lock.
        with self._lock:
            early, self._early = self._early, None
            current = None if early is not None else self._state.copy()
            self._entry_listeners = (*self._entry_listeners, listener)
        # Replaying after the release keeps the log order: an entry applied from now on is
        # sent to this listener by _notify through loop.call_soon_threadsafe, and this runs
        # synchronously on that loop, so such a callback runs only after this call returns,
        # after the replay. (Before start() there is no loop and no tick thread applying.)
        if early is not None:
            early.replay(listener)
        else:
            assert current is not None
            listener.state_replaced(current.applied_index, current)

    def remove_entry_listener(self, listener: EntryListener) -> None:
        with self._lock:
            self._entry_listeners = tuple(x for x in self._entry_listeners if x is not listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners = tuple(x for x in self._listeners if x is not listener)

    def leader_id(self) -> int | None:
        """The node id of the leader this node knows of, or None."""
        sync = self._sync
        leader = sync._getLeader() if sync is not None else None
        return None if leader is None else self.voter_id(leader.id)

    # --- The voter set (kraft/voters.py) -------------------------------------------------------

    def voter_addresses(self) -> tuple[str, ...]:
        """The voters' Raft addresses as this node's log has them now, sorted (this node's
        own among them when it is a voter)."""
        sync = self._sync
        nodes = getattr(sync, "otherNodes", None)  # None: not running, or a test's stand-in
        if nodes is None:
            if self.start_voters is not None:
                return self.start_voters
            own = () if self.self_address is None else (self.self_address,)
            return tuple(sorted((*own, *self.configured_peers.values())))
        others = {str(n.id) for n in nodes}  # pysyncobj's property copies the set atomically
        if self.self_address is not None:
            others.add(self.self_address)
        return tuple(sorted(others))

    def voter_id(self, address: str) -> int | None:
        """The node id of the voter at Raft ``address`` (None: not known yet).

        This node's own; else the controllers' registrations in the metadata, which outrank
        controller.quorum.voters (a voter removed and replaced at the same address by another
        node id registers under the new id; of two registrations at one address, the one not
        configured there is the newer); else the configured id; else the id a committed add
        on this leader named (before the new voter registers)."""
        if address == self.self_address:
            return self.node_id
        configured = self._ids_by_address.get(address)
        registered = self.read(
            lambda state: sorted(
                c.id for c in state.controllers.values() if c.raft_address == address
            )
        )
        if registered:
            newer = [i for i in registered if i != configured]
            return newer[-1] if newer else registered[0]
        if configured is not None:
            return configured
        return self._added_ids.get(address)

    @property
    def peers(self) -> Mapping[int, str]:
        """The other voters now, by node id (a voter whose id is not known yet is left out)."""
        out: dict[int, str] = {}
        for address in self.voter_addresses():
            if address == self.self_address:
                continue
            voter = self.voter_id(address)
            if voter is not None and voter != self.node_id:
                out[voter] = address
        return out

    def is_voter_address(self, address: str) -> bool:
        """Whether ``address`` is a voter's Raft address in this node's log now."""
        return address in self.voter_addresses()

    def voter_change_in_progress(self) -> str | None:
        """The voter change this leader has in flight (a description), else None."""
        sync = self._sync
        return self._voter_change if sync is None else self._pending_voter_change(sync)

    def _pending_voter_change(self, sync: _MetadataSyncObj) -> str | None:
        """The change this leader is writing, else one its log holds above the commit index
        (a request that timed out, or a change an earlier leader wrote)."""
        if self._voter_change is not None:
            return self._voter_change
        commit = int(sync.raftCommitIndex)
        return pending_change(self._journal[:], commit)  # a list copy: the tick thread appends

    async def add_voter(
        self, voter_id: int, address: str, directory_id: str, timeout_s: float = 10.0
    ) -> int:
        """Make observer ``voter_id``, whose Raft address will be ``address`` and whose
        directory id is ``directory_id`` (as its handshake says), a voter (Kafka's
        AddRaftVoter) and return once the change is committed: its commit index.

        Leader only (NotControllerError otherwise). Raises VoterChangeError when the rules of
        kraft/voters.py refuse it (nothing written)."""
        await self._await_live_majority(lambda: (*self.voter_addresses(), address), adding=address)
        sync = self._require_leader()
        voters = {a: self.voter_id(a) for a in self.voter_addresses()}
        status = self._status_dict(sync)
        observed = self._observed(sync)
        check_add(
            voter_id,
            address,
            voters,
            observed,
            int(status.get("commit_idx", 0)),
            self._pending_voter_change(sync),
            directory_id,
        )
        base = next(
            (o.base for o in observed if o.node_id == voter_id and o.raft_address == address), ()
        )
        check_base(voter_id, base, self._journal[:], voters)  # a list copy: the tick appends
        check_live_majority(
            (*voters, address),
            self._live_voters(sync),
            {**voters, address: voter_id},
            f"adding node {voter_id}",
            adding=address,  # caught up as an observer (checked above); counted in a set of 2
        )
        index = await self._change_voters(
            sync, "add", address, f"adding node {voter_id} at {address}", timeout_s
        )
        self._added_ids[address] = voter_id  # committed: its name until it registers
        return index

    async def remove_voter(
        self, voter_id: int, directory_id: str | None, timeout_s: float = 10.0
    ) -> int:
        """Remove voter ``voter_id`` (Kafka's RemoveRaftVoter); return once committed.

        Leader only; the leader itself cannot be removed by itself (pysyncobj cannot): the
        caller hands the leadership over first (:meth:`transfer_leadership`). Raises
        VoterChangeError when refused (nothing written)."""
        await self._await_live_majority(
            lambda: tuple(a for a in self.voter_addresses() if self.voter_id(a) != voter_id)
        )
        sync = self._require_leader()
        voters = {a: self.voter_id(a) for a in self.voter_addresses()}
        directories = self.read(
            lambda state: {i: c.directory_id for i, c in state.controllers.items()}
        )
        address = check_remove(
            voter_id, directory_id, voters, directories, self._pending_voter_change(sync)
        )
        if address == self.self_address:
            raise NotControllerError(
                self.leader_id(), f"node {voter_id} leads the quorum: it hands over first"
            )
        check_live_majority(
            [a for a in voters if a != address],
            self._live_voters(sync),
            voters,
            f"removing node {voter_id}",
        )
        return await self._change_voters(
            sync, "rem", address, f"removing node {voter_id} at {address}", timeout_s
        )

    async def _await_live_majority(
        self, new_voters: Callable[[], Sequence[str]], adding: str | None = None
    ) -> None:
        """Wait, up to the leader's fallback timeout, until a majority of ``new_voters()`` is
        live (see _live_voters): a leader elected a moment ago has not heard every voter yet.
        The checks that decide come after, with no wait between them and the write."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.RAFT_LEADER_FALLBACK_TIMEOUT_S
        while loop.time() < deadline:
            sync = self._require_leader()
            voters = set(new_voters())
            live = counted_live(voters, self._live_voters(sync), adding)
            if len(voters & live) >= len(voters) // 2 + 1:
                return
            await asyncio.sleep(_READY_POLL_S)

    def _require_leader(self) -> _MetadataSyncObj:
        sync = self._sync
        if sync is None or self._loop is None:
            raise QuorumStoppedError("the metadata quorum is not running")
        if not sync._isLeader():
            raise NotControllerError(self.leader_id())
        return sync

    async def _change_voters(
        self, sync: _MetadataSyncObj, kind: str, address: str, what: str, timeout_s: float
    ) -> int:
        loop = self._loop
        assert loop is not None
        future: asyncio.Future[int] = loop.create_future()
        self._pending.add(future)

        def on_result(result: Any, error: int) -> None:  # on the tick thread
            index = int(sync.raftCommitIndex)
            try:
                loop.call_soon_threadsafe(self._voter_change_done, future, index, error)
            except RuntimeError:
                pass

        self._voter_change = what
        node = TCPNode(address)  # plain: a dial override is this node's business only
        if kind == "add":
            sync.addNodeToCluster(node, callback=on_result)
        else:
            sync.removeNodeFromCluster(node, callback=on_result)
        sync.kraft_wake()
        logger.warning("node %d: %s (a voter change)", self.node_id, what)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise QuorumTimeoutError(
                f"{what}: no commit within {timeout_s} s; the change may still commit"
            ) from None
        finally:
            self._pending.discard(future)
            if self._voter_change == what:
                self._voter_change = None

    def _voter_change_done(self, future: asyncio.Future[int], index: int, error: int) -> None:
        if future.done():
            return
        if error == FAIL_REASON.SUCCESS:
            future.set_result(index)
        elif error == FAIL_REASON.REQUEST_DENIED:
            # pysyncobj's own refusals (the leader's first entry of its term not applied
            # yet), or a new leader refusing it forwarded (this node lost the leadership).
            future.set_exception(
                VoterChangeError(
                    "REQUEST_TIMED_OUT",
                    "the voter change was not written: the leader has not committed an entry "
                    "of its term yet, or the leadership moved; retry shortly",
                )
            )
        elif error in _NOT_WRITTEN:
            future.set_exception(NotControllerError(self.leader_id()))
        else:
            future.set_exception(OutcomeUnknownError(f"voter change outcome unknown ({error})"))

    def _live_voters(self, sync: Any) -> list[str]:
        """This leader and the voters that answered it within the leader's fallback timeout
        with a log near its commit index (pysyncobj's own view, on its clock)."""
        now = pysyncobj_clock()
        answered: dict[Any, float] = dict(sync._SyncObj__lastResponseTime)
        match: dict[Any, int] = dict(sync._SyncObj__raftMatchIndex)
        commit = int(sync.raftCommitIndex)
        live = [] if self.self_address is None else [self.self_address]
        for node in list(sync.otherNodes):
            heard = answered.get(node)
            if (
                heard is not None
                and now - heard <= limits.RAFT_LEADER_FALLBACK_TIMEOUT_S
                and match.get(node, 0) >= commit - CATCH_UP_LAG_ENTRIES
            ):
                live.append(str(node.id))
        return live

    def _observed(self, sync: Any) -> list[Observed]:
        transport = getattr(sync, "_SyncObj__transport", None)
        if transport is None:
            return []
        match: dict[Any, int] = sync._SyncObj__raftMatchIndex
        controllers: dict[Any, ObserverController] = dict(transport.kraft_observer_controllers)
        out: list[Observed] = []
        for node, observer_id in list(transport.kraft_observers.items()):
            controller = controllers.get(node)
            if controller is None:
                out.append(Observed(observer_id, match.get(node)))
            else:
                address, directory_id, base = controller
                out.append(Observed(observer_id, match.get(node), address, directory_id, base))
        return out

    def _status_dict(self, sync: Any) -> dict[str, Any]:
        for _attempt in range(3):  # the tick thread may resize a dict while we read it
            try:
                status: dict[str, Any] = sync.getStatus()
                return status
            except RuntimeError:
                continue
        return {}

    def _promote(self) -> None:
        """On the loop: the log made this observer a voter. Its read-only SyncObj gives way
        to a voter's over the same files, bound at its Raft address; what was applied stays
        (the new SyncObj's replay skips it, see _apply)."""
        address = self.promote_address
        old = self._sync
        if old is None or address is None or self.self_address is not None:
            return
        self._sync = None
        old.destroy_synchronous()
        DUMP_PATHS.discard(str(self.data_dir / DUMP_FILE))
        self._journal.close()
        try:
            self.start_voters = log_voters(
                self.data_dir, DUMP_FILE, JOURNAL_FILE, self._formatted_voters()
            )
            self.self_address = address
            self._caught_up_with = None
            self._start_sync()
        except Exception as e:
            self._fatal = QuorumStoppedError(
                f"node {self.node_id} was made a voter but cannot take part: {e}"
            )
            logger.critical("%s", self._fatal)
            return
        logger.warning(
            "node %d is a voter of the metadata quorum now (Raft address %s)",
            self.node_id,
            address,
        )

    def is_leader(self) -> bool:
        return self._sync is not None and bool(self._sync._isLeader())

    def last_heard(self, node_id: int) -> float | None:
        """When (``time.monotonic()``) a Raft message last came from voter or observer
        ``node_id``; None for this node, another node, or one not heard from since this node
        started."""
        address = self.peers.get(node_id)
        return self._last_heard.get(observer_key(node_id) if address is None else address)

    def current_term(self) -> int:
        """This node's Raft term (0 before start)."""
        return int(self._sync.raftCurrentTerm) if self._sync is not None else 0

    def _status_head(self) -> dict[str, Any]:
        """What every quorum view starts with: this node and its applied metadata (the digest
        computed once per applied index)."""
        snapshot = self.snapshot_state()
        if snapshot.applied_index != self._digest_cache[0]:
            self._digest_cache = (snapshot.applied_index, snapshot.digest())
        return {
            "node_id": self.node_id,
            "metadata_applied_index": snapshot.applied_index,
            "metadata_digest": self._digest_cache[1],
        }

    @staticmethod
    def _sync_status(sync: Any) -> dict[str, Any]:
        """pysyncobj's status, read from the event loop: the tick thread may resize a dict
        while it is read, so a failed read is tried again (at most three times)."""
        for _attempt in range(3):
            try:
                return dict(sync.getStatus())
            except RuntimeError:
                continue
        return {}

    def status(self) -> dict[str, Any]:
        """This node's view of the quorum, for /v1/cluster/quorum."""
        sync = self._sync
        base = self._status_head()
        if sync is None:
            return {**base, "running": False, "leader_id": None, "voters": []}
        status = self._sync_status(sync)
        is_leader = status.get("state") == 2
        leader_id = self.leader_id()
        now = time.monotonic()
        voters: list[dict[str, Any]] = [
            {
                "id": self.node_id,
                "address": self.self_address,
                "status": _STATE_NAMES.get(status.get("state", 0), "Follower"),
                "connected": True,
                "log_end_index": self._journal.last_index,
                "last_contact_ms": 0,
            }
        ]
        leader = sync._getLeader()
        for address in self.voter_addresses():
            if address == self.self_address:
                continue
            heard = self._last_heard.get(address)
            voter: dict[str, Any] = {
                "id": self.voter_id(address),  # None: a voter that has not registered yet
                "address": address,
                "status": "Leader" if leader is not None and leader.id == address else "Follower",
                "connected": status.get(f"partner_node_status_server_{address}") == 2,
                "last_contact_ms": None if heard is None else int((now - heard) * 1000),
            }
            if is_leader:
                voter["match_index"] = status.get(f"match_idx_server_{address}")
                voter["next_index"] = status.get(f"next_node_idx_server_{address}")
            voters.append(voter)
        voters.sort(key=lambda v: (v["id"] is None, v["id"] or 0, v["address"]))
        return {
            **base,
            "running": True,
            "leader_id": leader_id,
            "term": status.get("raft_term"),
            "commit_index": status.get("commit_idx"),
            # pysyncobj counts an entry applied only after its write's callback ran, so a
            # writer woken by that callback could read one less than its own index; our state
            # counts it first (under the lock). pysyncobj's also counts its own no-op entries.
            "applied_index": max(status.get("last_applied", 0), base["metadata_applied_index"]),
            "voters": voters,
            "observers": self._observers(sync, is_leader, now),
        }

    def _observers(self, sync: Any, is_leader: bool, now: float) -> list[dict[str, Any]]:
        """The observers (broker-only nodes) the leader sends the log to, with how far each
        has it; empty on another voter (as Kafka's, only the leader knows its observers)."""
        transport = getattr(sync, "_SyncObj__transport", None)  # None: a test's stand-in
        if not is_leader or transport is None:
            return []
        match: dict[Any, int] = sync._SyncObj__raftMatchIndex
        out: list[dict[str, Any]] = []
        for node, observer_id in list(transport.kraft_observers.items()):
            heard = self._last_heard.get(observer_key(observer_id))
            entry: dict[str, Any] = {
                "id": observer_id,
                "status": "Observer",
                "connected": True,
                "last_contact_ms": None if heard is None else int((now - heard) * 1000),
                "match_index": match.get(node),
            }
            out.append(entry)
        out.sort(key=lambda o: (o["id"], -(o.get("match_index") or 0)))
        # One line per observer: a reconnect may leave the old link for a moment.
        return [o for n, o in enumerate(out) if n == 0 or out[n - 1]["id"] != o["id"]]
