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
    listeners are called on the loop with ``call_soon_threadsafe``.

Durability (pysyncobj fsyncs nothing by itself; see DESIGN.md, "Known traps")
    - The journal is our :class:`~kraft.journal.DurableJournal`, installed through pysyncobj's
      ``createJournal`` hook. It is synced before any Raft message leaves the node (our
      transport's ``send``) and at the end of every tick, so an append is acknowledged, and
      counted by a leader for itself, only once it is on disk. Term and vote are written
      durably before the vote is sent.
    - The dump is written by our serializer (`kraft.dump`), fsynced; pysyncobj renames it, and
      our serialize checker fsyncs the directory before pysyncobj may cut the journal. A dump
      received from the leader is fsynced (file and directory) by our deserializer before it
      is loaded and acknowledged.

Fencing
    Every entry carries the term its writer saw when it checked it was the leader. The entry
    applies only if that is the term the entry was appended in (read from the journal, so every
    node decides alike); otherwise it is rejected and the writer gets NotControllerError. A
    deposed controller's decisions never land in a later term.

Transport
    Ours binds only the configured address, dials a peer at its dial override if one is set
    (its identity stays its advertised address), notes when each peer was last heard from, and
    drops a connection whose next message claims more than RAFT_MESSAGE_BYTES_MAX bytes before
    buffering it (pysyncobj would buffer up to 2 GiB before checking the password).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pysyncobj.syncobj as _pysyncobj_syncobj
from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj.config import FAIL_REASON, SERIALIZER_STATE
from pysyncobj.dns_resolver import globalDnsResolver
from pysyncobj.node import TCPNode
from pysyncobj.syncobj import SyncObjException
from pysyncobj.tcp_connection import TcpConnection
from pysyncobj.transport import TCPTransport

from kraft import limits
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
from kraft.files import fsync_dir, fsync_file
from kraft.journal import DurableJournal
from kraft.records import MetadataRecord, decode, encode
from kraft.state import MetadataState

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
# (index, None) after a dump replaced the whole state ("reset": re-read everything).
Listener = Callable[[int, tuple[MetadataRecord, ...] | None], None]
T = TypeVar("T")

_READY_POLL_S = 0.02  # how often wait_ready looks; the tick is 10 ms
_UNREACHABLE_LOG_EVERY_S = 10.0  # how often a node logs the voters it cannot reach
_STATE_NAMES = {0: "Follower", 1: "Candidate", 2: "Leader"}
# Failures after which the entry is certainly not in the log: not written, safe to retry.
_NOT_WRITTEN = {
    FAIL_REASON.MISSING_LEADER,
    FAIL_REASON.NOT_LEADER,
    FAIL_REASON.DISCARDED,
    FAIL_REASON.REQUEST_DENIED,
}

# --- pysyncobj's journal hook: hand it our journal for the paths we registered -------------------

_JOURNALS: dict[str, DurableJournal] = {}
_JOURNALS_LOCK = threading.Lock()
_original_create_journal = _pysyncobj_syncobj.createJournal


def _create_journal(journal_file: str | None = None) -> Any:
    if journal_file is not None:
        with _JOURNALS_LOCK:
            journal = _JOURNALS.pop(journal_file, None)
        if journal is not None:
            return journal
    return _original_create_journal(journal_file)


_pysyncobj_syncobj.createJournal = _create_journal


# --- Transport ---------------------------------------------------------------------------------


class _CappedTcpConnection(TcpConnection):  # type: ignore[misc]
    """A pysyncobj connection that refuses to buffer a message larger than the limit."""

    # pysyncobj's private read step, overridden by its mangled name.
    def _TcpConnection__processRead(self) -> bool:  # noqa: N802
        if len(self._TcpConnection__readBuffer) > limits.RAFT_READ_BUFFER_BYTES_MAX:
            return False  # parse the messages we hold before reading more
        more: bool = TcpConnection._TcpConnection__processRead(self)
        buffer = self._TcpConnection__readBuffer
        if len(buffer) >= 4:
            (length,) = struct.unpack_from("i", buffer, 0)
            if not 0 <= length <= limits.RAFT_MESSAGE_BYTES_MAX:
                logger.warning(
                    "dropping a Raft connection announcing a %d-byte message (limit %d)",
                    length, limits.RAFT_MESSAGE_BYTES_MAX,
                )
                self.disconnect()
                return False
        return more


class _KraftTransport(TCPTransport):  # type: ignore[misc]
    """pysyncobj's TCP transport, plus: sync the journal before sending, cap messages."""

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:  # noqa: N803
        self._kraft: MetadataQuorum = syncObj._kraft_owner
        super().__init__(syncObj, selfNode, otherNodes)
        syncObj.addOnTickCallback(self._kraft._on_tick)

    def send(self, node: Any, message: Any) -> bool:
        # Persist before send: an append acknowledged or a vote granted is on disk.
        self._kraft._journal.sync()
        sent: bool = super().send(node, message)
        return sent

    def _onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        self._kraft._last_heard[node.id] = time.monotonic()
        super()._onMessageReceived(node, message)

    def _onNewIncomingConnection(self, conn: Any) -> None:  # noqa: N802
        conn.__class__ = _CappedTcpConnection
        super()._onNewIncomingConnection(conn)

    def addNode(self, node: Any) -> None:  # noqa: N802
        super().addNode(node)
        conn = self._connections.get(node)
        if conn is not None and type(conn) is TcpConnection:
            conn.__class__ = _CappedTcpConnection


class _DialNode(TCPNode):  # type: ignore[misc]
    """A peer known by its advertised address but dialled at another (fault injection)."""

    def __init__(self, address: str, dial: str) -> None:
        super().__init__(address)
        host, port = dial.rsplit(":", 1)
        self._dial_host = host
        self._dial_port = int(port)

    @property
    def ip(self) -> Any:
        return globalDnsResolver().resolve(self._dial_host)

    @property
    def port(self) -> int:
        return self._dial_port


class _MetadataSyncObj(SyncObj):  # type: ignore[misc]
    """The SyncObj with our one replicated method. No properties here: pysyncobj's
    constructor evaluates every attribute of the object while looking for replicated ones."""

    def __init__(self, owner: MetadataQuorum, self_node: Any, others: list[Any], conf: Any):
        self._kraft_owner = owner
        super().__init__(self_node, others, conf, transportClass=_KraftTransport)

    @replicated  # type: ignore[untyped-decorator]
    def apply_records(self, data: bytes, term: int) -> Any:
        # Entries apply one by one, in order: this one is the next after the last applied.
        return self._kraft_owner._apply(self.raftLastApplied + 1, data, term)


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
        self_address: str,
        peers: Mapping[int, str],
        data_dir: Path,
        secret: str,
        *,
        dial_overrides: Mapping[int, str] | None = None,
    ) -> None:
        dial_overrides = dict(dial_overrides or {})
        _check_address("self_address", self_address)
        for peer_id, address in peers.items():
            _check_address(f"the address of voter {peer_id}", address)
        for peer_id, address in dial_overrides.items():
            _check_address(f"the dial address of voter {peer_id}", address)
        if node_id in peers:
            raise ValueError(f"node {node_id} is listed among its own peers")
        if len({self_address, *peers.values()}) != len(peers) + 1:
            raise ValueError("the voters' Raft addresses must be distinct")
        if not set(dial_overrides) <= set(peers):
            raise ValueError(f"dial overrides for non-voters {set(dial_overrides) - set(peers)}")
        if not secret:
            raise ValueError("the cluster secret must not be empty")
        self.node_id = node_id
        self.self_address = self_address
        self.peers: Mapping[int, str] = dict(peers)
        self.data_dir = Path(data_dir)
        self._secret = secret
        self._dial_overrides = dial_overrides
        self._ids_by_address = {self_address: node_id, **{a: i for i, a in peers.items()}}
        self._lock = threading.Lock()
        self._state = MetadataState()
        self._listeners: tuple[Listener, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sync: _MetadataSyncObj | None = None
        self._journal: DurableJournal = None  # type: ignore[assignment]  # set by start()
        self._pending: set[asyncio.Future[int]] = set()
        self._last_heard: dict[str, float] = {}
        self._dump_written_inode: int | None = None
        self._dump_failed = False
        self._fatal: Exception | None = None
        self._last_unreachable_log = 0.0
        self._digest_cache: tuple[int, str] = (-1, "")

    # --- Life cycle ----------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the files, bind the Raft address and start the tick thread.

        Call it on `loop`'s thread. Raises QuorumError when the address cannot be bound and
        JournalCorruptError when the journal is not ours.
        """
        if self._sync is not None or self._loop is not None:
            raise RuntimeError("a MetadataQuorum starts once")
        self._loop = loop
        # Give the peers a grace period to connect before we complain about them.
        self._last_unreachable_log = time.monotonic()
        if not self.data_dir.is_dir():
            self.data_dir.mkdir(parents=True)
            fsync_dir(self.data_dir.parent)
        journal_path = self.data_dir / JOURNAL_FILE
        self._journal = DurableJournal(journal_path, self.data_dir / META_FILE)
        with _JOURNALS_LOCK:
            _JOURNALS[str(journal_path)] = self._journal
        others = [
            _DialNode(address, self._dial_overrides[peer_id])
            if peer_id in self._dial_overrides
            else TCPNode(address)
            for peer_id, address in sorted(self.peers.items())
        ]
        try:
            self._sync = _MetadataSyncObj(self, TCPNode(self.self_address), others, self._conf())
        except BaseException:
            self._journal.close()
            raise
        finally:
            with _JOURNALS_LOCK:
                _JOURNALS.pop(str(journal_path), None)
        try:
            self._sync.waitBinded()
        except SyncObjException:
            self.stop()
            raise QuorumError(f"cannot bind the Raft address {self.self_address}") from None

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
            dynamicMembershipChange=False,
            journalFile=str(self.data_dir / JOURNAL_FILE),
            fullDumpFile=str(self.data_dir / DUMP_FILE),
            serializer=self._serialize,
            deserializer=self._deserialize,
            serializeChecker=self._check_serialized,
            logCompactionMinEntries=limits.RAFT_COMPACTION_ENTRIES_COUNT,
            logCompactionMinTime=limits.RAFT_COMPACTION_INTERVAL_S,
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
        """A leader is known and this node has applied all it knows to be committed."""
        sync = self._sync
        return (
            sync is not None
            and self._fatal is None
            and sync._getLeader() is not None
            and sync.isReady()
            and sync.raftLastApplied >= sync.raftCommitIndex
        )

    def stop(self) -> None:
        """Stop the tick thread (waits for it, about one tick), close the files, and fail the
        writes still waiting with QuorumStoppedError. Call it on the loop's thread."""
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.destroy_synchronous()  # the tick thread closes the transport and journal
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
        if not sync._isLeader():
            raise NotControllerError(self.leader_id())
        term: int = sync.raftCurrentTerm
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
        entry_term = self._journal.term_of(index)
        if entry_term != expected_term:
            return NotControllerError(
                None, f"entry {index} was appended in term {entry_term}, not {expected_term}"
            )
        try:
            records = tuple(decode(data))
            with self._lock:
                self._state.apply_entry(index, records)
        except (MetadataRecordError, IllegalRecordError) as e:
            return e
        except Exception as e:  # a bug: every node hits it alike, so reject and say so loudly
            logger.exception("the state machine failed on entry %d", index)
            return e
        self._notify(index, records)
        return index

    def _notify(self, index: int, records: tuple[MetadataRecord, ...] | None) -> None:
        loop = self._loop
        if loop is None:
            return
        for listener in self._listeners:
            try:
                loop.call_soon_threadsafe(listener, index, records)
            except RuntimeError:
                return  # the loop is closed

    def _on_tick(self) -> None:
        # The leader counts its own entries toward a commit at the next tick: sync them now.
        self._journal.sync()
        now = time.monotonic()
        sync = self._sync
        if now - self._last_unreachable_log >= _UNREACHABLE_LOG_EVERY_S and sync is not None:
            self._last_unreachable_log = now
            lost = [
                f"{i} ({a})"
                for i, a in sorted(self.peers.items())
                if not sync.isNodeConnected(TCPNode(a))
            ]
            if lost:
                logger.warning("node %d cannot reach voters %s", self.node_id, ", ".join(lost))

    def _serialize(self, file_name: str, data: Any) -> None:
        last, prev, cluster = data
        try:
            with self._lock:
                state = self._state.to_snapshot()
            dump = Dump(tuple(last), tuple(prev), voters_of(list(cluster)), state)
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

    def _deserialize(self, file_name: str) -> tuple[Any, Any, list[str]]:
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
        with self._lock:
            self._state = state
        self._notify(dump.last_entry[1], None)
        return dump.last_entry, dump.prev_entry, list(dump.voters)

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

    def remove_listener(self, listener: Listener) -> None:
        self._listeners = tuple(x for x in self._listeners if x is not listener)

    def leader_id(self) -> int | None:
        """The node id of the leader this node knows of, or None."""
        sync = self._sync
        leader = sync._getLeader() if sync is not None else None
        return None if leader is None else self._ids_by_address.get(leader.id)

    def is_leader(self) -> bool:
        return self._sync is not None and bool(self._sync._isLeader())

    def current_term(self) -> int:
        """This node's Raft term (0 before start)."""
        return int(self._sync.raftCurrentTerm) if self._sync is not None else 0

    def status(self) -> dict[str, Any]:
        """This node's view of the quorum, for /v1/cluster/quorum."""
        sync = self._sync
        snapshot = self.snapshot_state()
        if snapshot.applied_index != self._digest_cache[0]:
            self._digest_cache = (snapshot.applied_index, snapshot.digest())
        base: dict[str, Any] = {
            "node_id": self.node_id,
            "metadata_applied_index": snapshot.applied_index,
            "metadata_digest": self._digest_cache[1],
        }
        if sync is None:
            return {**base, "running": False, "leader_id": None, "voters": []}
        status: dict[str, Any] = {}
        for _attempt in range(3):  # the tick thread may resize a dict while we read it
            try:
                status = sync.getStatus()
                break
            except RuntimeError:
                continue
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
        for peer_id, address in sorted(self.peers.items()):
            heard = self._last_heard.get(address)
            voter: dict[str, Any] = {
                "id": peer_id,
                "address": address,
                "status": "Leader" if peer_id == leader_id else "Follower",
                "connected": status.get(f"partner_node_status_server_{address}") == 2,
                "last_contact_ms": None if heard is None else int((now - heard) * 1000),
            }
            if is_leader:
                voter["match_index"] = status.get(f"match_idx_server_{address}")
                voter["next_index"] = status.get(f"next_node_idx_server_{address}")
            voters.append(voter)
        voters.sort(key=lambda v: int(v["id"]))
        return {
            **base,
            "running": True,
            "leader_id": leader_id,
            "term": status.get("raft_term"),
            "commit_index": status.get("commit_idx"),
            "applied_index": status.get("last_applied"),
            "voters": voters,
        }
