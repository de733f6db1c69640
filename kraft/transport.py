"""The metadata quorum's Raft links: pysyncobj's TCP transport, hardened.

pysyncobj frames every message as a 4-byte native-order length and then the message, which
with a ``password`` is a Fernet token (AES + HMAC, keyed by the cluster secret) of a zlib'd
pickle. Its own connection buffers whatever a length prefix announces (up to 2 GiB) before it
checks anything, re-copies the whole buffer on every read (quadratic in the message size),
never times out a connection that sends nothing, and drops a link that fails authentication
without a word. :class:`KraftTransport` and its connections keep pysyncobj's protocol and add:

- **Nothing is unpickled unless it passed Fernet's HMAC.** A connection with no encryptor
  is dropped, never read (the quorum always sets the cluster secret).
- **Bounded buffers.** Until a connection has sent one message that passed authentication,
  a message may announce at most RAFT_HANDSHAKE_MESSAGE_BYTES_MAX bytes (the peer's first
  message is a 32-byte key); after that, RAFT_MESSAGE_BYTES_MAX. A larger announcement drops
  the connection before anything is buffered; reading stops once a whole message is buffered,
  so a connection holds at most one message and one read. Decompression is capped too.
- **Handshake deadline.** A connection, incoming or outgoing, that has not finished
  pysyncobj's handshake (key exchange, then the dialer names itself) within
  RAFT_HANDSHAKE_TIMEOUT_S is dropped, and at most RAFT_HANDSHAKING_CONNECTIONS_COUNT_MAX
  incoming connections may be in the handshake at once (a new one evicts the oldest).
- **Peers are voters or observers.** An incoming connection must name one of the voters, or
  say ``observer <node id>`` (a controller waiting to be added adds its Raft address and
  directory id): a broker-only node, which follows the log as one of pysyncobj's
  read-only nodes (it has no address of its own, dials every voter, and is sent the leader's
  appends but never votes or counts for a majority). pysyncobj's anonymous ``readonly`` and
  its admin ("utility") commands are refused. An observer dials with the same handshake and
  cluster secret as a voter.
- **Clear, rate-limited reports** (:class:`LinkReporter`): a link that fails authentication
  is logged as an error naming ``cluster.secret``; garbage, oversized or silent connections
  as warnings; each kind at most once per RAFT_LINK_LOG_INTERVAL_S per peer, with a count.
- **Persist before send.** Every message waits for the hook ``before_send`` (the quorum syncs
  its journal there), so an acknowledgement or a vote leaves only once it is on disk; a node
  whose disk failed sends nothing.

A peer is dialled at its dial address when one is set (:class:`DialNode`); its identity stays
its advertised address. Everything here runs on pysyncobj's tick thread.
"""

from __future__ import annotations

import errno
import logging
import math
import socket
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pysyncobj.pickle as _pysyncobj_pickle
from cryptography.fernet import InvalidToken
from pysyncobj.dns_resolver import globalDnsResolver
from pysyncobj.node import TCPNode
from pysyncobj.tcp_connection import CONNECTION_STATE, TcpConnection
from pysyncobj.transport import TCPTransport

from kraft import limits

logger = logging.getLogger(__name__)

# pysyncobj's frame: a native-order signed 32-bit length, then the message.
_LENGTH = struct.Struct("i")

# Kinds of link problems; each is rate-limited on its own, per peer.
AUTH = "auth"
OVERSIZED = "oversized"
UNDECODABLE = "undecodable"
REPLAYED = "replayed"
HANDSHAKE_TIMEOUT = "handshake-timeout"
HANDSHAKE_CLOSED = "handshake-closed"
NOT_A_VOTER = "not-a-voter"
# A controller observer's Raft address, directory id, and base voters: the addresses it
# counts its voters from, changed by the log's membership entries, until it has a dump.
ObserverController = tuple[str, str, tuple[str, ...]]

# What an observer (a pysyncobj read-only node) names itself as, followed by its node id.
OBSERVER_PREFIX = "observer "
EVICTED = "evicted"
_LEVELS = {AUTH: logging.ERROR, NOT_A_VOTER: logging.ERROR}
_REPORT_KEYS_MAX = 1024  # forget old rate-limit entries beyond this many peers


class LinkReporter:
    """Logs one node's Raft link problems: each (kind, peer) at most once per `interval_s`.

    ``counts`` holds every problem seen and ``logged`` the lines written, by (kind, peer).
    A dialer cannot see why a peer closes the connection during the handshake: a peer whose
    cluster secret differs does that, but so does a proxy whose upstream is down or cut (a
    network fault, Toxiproxy) and a peer restarting. After `handshake_closes_reported` closes
    in a row it is reported as a warning naming those causes; the peer itself logs an
    authentication failure (an ERROR) only when a message it received does not authenticate.
    """

    def __init__(
        self,
        node_id: int,
        *,
        interval_s: float = limits.RAFT_LINK_LOG_INTERVAL_S,
        handshake_closes_reported: int = limits.RAFT_HANDSHAKE_CLOSES_REPORTED_COUNT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self.counts: Counter[tuple[str, str]] = Counter()
        self.logged: Counter[tuple[str, str]] = Counter()
        self.closed = False  # set when the transport is destroyed: its own closes are not news
        self._interval_s = interval_s
        self._handshake_closes_reported = handshake_closes_reported
        self._clock = clock
        self._next_log: dict[tuple[str, str], float] = {}
        self._suppressed: Counter[tuple[str, str]] = Counter()
        self._handshake_closes: Counter[str] = Counter()

    def report(self, kind: str, peer: str, text: str) -> bool:
        """Count a problem and log `text` unless this (kind, peer) was logged recently."""
        key = (kind, peer)
        self.counts[key] += 1
        now = self._clock()
        if now < self._next_log.get(key, -math.inf):
            self._suppressed[key] += 1
            return False
        if len(self._next_log) >= _REPORT_KEYS_MAX:
            self._next_log = {k: t for k, t in self._next_log.items() if t > now}
        self._next_log[key] = now + self._interval_s
        suppressed = self._suppressed.pop(key, 0)
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        # A node's own log names it on every line; the prefix tells apart nodes that share a
        # process (the quorum tests run three).
        logger.log(_LEVELS.get(kind, logging.WARNING), "node %d: %s%s", self.node_id, text, more)
        self.logged[key] += 1
        return True

    def handshake_closed(self, peer: str) -> None:
        """The voter at `peer`, which we dialled, closed the connection during the handshake."""
        self._handshake_closes[peer] += 1
        closes = self._handshake_closes[peer]
        if closes >= self._handshake_closes_reported:
            self.report(
                HANDSHAKE_CLOSED,
                peer,
                f"the Raft link with {peer} was closed during the handshake, {closes} times in "
                "a row: the peer is unreachable or restarting, or its cluster.secret differs "
                "(then the peer's own log says it failed authentication)",
            )

    def handshake_done(self, peer: str) -> None:
        """A message from `peer` passed authentication: its link is healthy."""
        self._handshake_closes.pop(peer, None)


@dataclass(frozen=True)
class TransportHooks:
    """What the transport needs from its quorum (handed over as ``syncObj._kraft_hooks``).

    `before_send` runs before every message and returns False to hold it back (the quorum
    syncs its journal there); `on_tick` runs at the end of every tick; `last_heard` maps a
    voter's address, or an observer's :func:`observer_key`, to the monotonic time of its last
    message. `observer_id` is this node's id when it is an observer (no address of its own).
    """

    links: LinkReporter
    before_send: Callable[[], bool]
    on_tick: Callable[[], None]
    last_heard: dict[str, float] = field(default_factory=dict)
    observer_id: int | None = None
    # An observer that is a controller waiting to be added: the Raft address it takes as a
    # voter, its directory id and its base voters, said in its handshake (observer_hello).
    observer_controller: ObserverController | None = None


def observer_key(node_id: int) -> str:
    """The key of observer ``node_id`` in ``TransportHooks.last_heard``."""
    return f"{OBSERVER_PREFIX}{node_id}"


def observer_hello(node_id: int, controller: ObserverController | None) -> str:
    """What an observer names itself as: ``observer <id>``, and for a controller waiting to
    be added ``observer <id> <raft address> <directory id> <base voters, comma-separated>``
    (the leader adds it only at that address and directory id, and only when its base
    voters changed by the log give the leader's voters: see kraft/voters.check_add and
    check_base)."""
    if controller is None:
        return observer_key(node_id)
    address, directory_id, base = controller
    return f"{observer_key(node_id)} {address} {directory_id} {','.join(base)}"


def parse_observer_hello(message: Any) -> tuple[int, ObserverController | None] | None:
    """(node id, (raft address, directory id, base voters) or None) of an observer's
    handshake, else None (not an observer's, or malformed). A controller's hello without
    base voters (an older node) gives an empty base, which the leader refuses to add."""
    if type(message) is not str or not message.startswith(OBSERVER_PREFIX):
        return None
    if len(message) > 4000 or not message.isascii():
        return None
    parts = message[len(OBSERVER_PREFIX) :].split(" ")
    digits = parts[0]
    if not digits.isdigit() or len(digits) > 10:
        return None
    if len(parts) == 1:
        return int(digits), None
    if len(parts) not in (3, 4):
        return None
    address, directory_id = parts[1], parts[2]
    if not _is_host_port(address) or not directory_id:
        return None
    base = tuple(parts[3].split(",")) if len(parts) == 4 else ()
    if not all(_is_host_port(a) for a in base):
        return None
    return int(digits), (address, directory_id, base)


def _is_host_port(address: str) -> bool:
    host, sep, port = address.rpartition(":")
    return bool(sep and host and port.isdigit())


def observer_id_of(message: Any) -> int | None:
    """The node id an observer's handshake names, else None."""
    hello = parse_observer_hello(message)
    return None if hello is None else hello[0]


class KraftConnection(TcpConnection):  # type: ignore[misc]
    """A pysyncobj connection with our own read buffer and parser (see the module docstring).

    pysyncobj creates plain ``TcpConnection`` objects; the transport turns them into this
    class (``__class__`` assignment) and calls :meth:`kraft_setup` before any byte is read.
    """

    recvLastTimestamp: int  # noqa: N815 (pysyncobj's): the last Fernet timestamp received

    def kraft_setup(self, links: LinkReporter, peer: str | None, incoming: bool) -> None:
        self._kraft_links = links
        self._kraft_peer = peer  # the voter's Raft address, once known
        self._kraft_incoming = incoming
        self._kraft_remote = "?"
        if incoming:
            try:
                host, port = self._TcpConnection__socket.getpeername()[:2]
                self._kraft_remote = f"{host}:{port}"
            except OSError:
                pass
        self._kraft_reset()

    def _kraft_reset(self) -> None:
        self._kraft_buffer = bytearray()
        self._kraft_authenticated = False  # a message passed Fernet's HMAC
        self.kraft_handshake_done = False  # the transport finished pysyncobj's handshake
        self._kraft_closing = False  # we are the ones closing it (already reported)
        self.kraft_since = time.monotonic()

    def kraft_name(self) -> str:
        """The peer for messages: "with <voter address>" or "from <remote host:port>"."""
        return f"with {self._kraft_peer}" if self._kraft_peer else f"from {self._kraft_remote}"

    def kraft_report_key(self) -> str:
        # Incoming connections come from ever-new ports: rate-limit by host.
        return self._kraft_peer or self._kraft_remote.rsplit(":", 1)[0]

    def kraft_identified(self, peer: str) -> None:
        self._kraft_peer = peer
        self.kraft_handshake_done = True

    def kraft_drop(self, kind: str, text: str) -> None:
        """Report a problem with this link and close it."""
        self._kraft_links.report(kind, self.kraft_report_key(), text)
        self._kraft_closing = True
        self.disconnect()

    # --- pysyncobj's TcpConnection, overridden (private names, hence the mangling) ------------

    def connect(self, host: str, port: int) -> bool:
        self._kraft_reset()
        connected: bool = super().connect(host, port)
        return connected

    def disconnect(self) -> None:
        if (
            not self._kraft_incoming
            and self._kraft_peer
            and self.state == CONNECTION_STATE.CONNECTED
            and not self._kraft_authenticated
            and not self._kraft_closing
            and not self._kraft_links.closed
        ):
            self._kraft_links.handshake_closed(self._kraft_peer)
        self._kraft_buffer = bytearray()
        super().disconnect()

    def _message_cap(self) -> int:
        if self._kraft_authenticated:
            return limits.RAFT_MESSAGE_BYTES_MAX
        return limits.RAFT_HANDSHAKE_MESSAGE_BYTES_MAX

    def _head_ok(self) -> bool:
        """False (and the link dropped) if the next message announces a size out of range."""
        if len(self._kraft_buffer) < _LENGTH.size:
            return True
        (length,) = _LENGTH.unpack_from(self._kraft_buffer, 0)
        cap = self._message_cap()
        if 0 < length <= cap:
            return True
        stage = "" if self._kraft_authenticated else " before authenticating"
        self.kraft_drop(
            OVERSIZED,
            f"dropped the Raft link {self.kraft_name()}: it announced a {length}-byte message"
            f"{stage} (limit {cap} bytes)",
        )
        return False

    def _whole_message_buffered(self) -> bool:
        buffer = self._kraft_buffer
        if len(buffer) < _LENGTH.size:
            return False
        length: int = _LENGTH.unpack_from(buffer, 0)[0]
        return len(buffer) - _LENGTH.size >= length

    def _TcpConnection__processRead(self) -> bool:  # noqa: N802
        if self._whole_message_buffered():
            return False  # parse it before reading more: one message and one read at most
        sock = self._TcpConnection__socket
        try:
            incoming = sock.recv(self._TcpConnection__recvBufferSize)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                self.disconnect()
            return False
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or not incoming:
            self.disconnect()
            return False
        self._kraft_buffer += incoming
        return self._head_ok()

    def _TcpConnection__processParseMessage(self) -> Any:  # noqa: N802
        if not self._head_ok() or not self._whole_message_buffered():
            return None
        buffer = self._kraft_buffer
        (length,) = _LENGTH.unpack_from(buffer, 0)
        data = bytes(buffer[_LENGTH.size : _LENGTH.size + length])
        del buffer[: _LENGTH.size + length]
        encryptor = self.encryptor
        if encryptor is None:  # never unpickle bytes that did not pass authentication
            self.kraft_drop(AUTH, f"dropped the Raft link {self.kraft_name()}: no cluster secret")
            return None
        try:
            timestamp = encryptor.extract_timestamp(data)  # checks the HMAC
            plain = encryptor.decrypt(data)
        except (InvalidToken, TypeError, ValueError):
            self.kraft_drop(
                AUTH,
                f"the Raft link {self.kraft_name()} failed authentication: cluster.secret "
                "differs" + ("" if self._kraft_peer else " (or it is not a node of this cluster)"),
            )
            return None
        first = not self._kraft_authenticated
        self._kraft_authenticated = True
        if timestamp < self.recvLastTimestamp:
            self.kraft_drop(REPLAYED, f"dropped the Raft link {self.kraft_name()}: a stale message")
            return None
        self.recvLastTimestamp = timestamp
        try:
            inflater = zlib.decompressobj()
            raw = inflater.decompress(plain, limits.RAFT_MESSAGE_BYTES_MAX)
            if inflater.unconsumed_tail or not inflater.eof:
                raise ValueError(f"more than {limits.RAFT_MESSAGE_BYTES_MAX} bytes, or truncated")
            message = _pysyncobj_pickle.loads(raw)
        except Exception as e:  # the peer has the secret: this is a bug, not an attack
            self.kraft_drop(
                UNDECODABLE,
                f"dropped the Raft link {self.kraft_name()}: an authenticated message does not "
                f"decode ({type(e).__name__}: {e})",
            )
            return None
        if self.recvRandKey:
            if not (
                type(message) is tuple and len(message) == 2 and message[0] == self.recvRandKey
            ):
                self.kraft_drop(
                    REPLAYED,
                    f"dropped the Raft link {self.kraft_name()}: a message not from this session",
                )
                return None
            message = message[1]
        if first and self._kraft_peer:
            self._kraft_links.handshake_done(self._kraft_peer)
        return message


class KraftTransport(TCPTransport):  # type: ignore[misc]
    """pysyncobj's TCP transport with our connections, hooks and handshake rules."""

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:  # noqa: N803
        self._hooks: TransportHooks = syncObj._kraft_hooks
        if syncObj.encryptor is None:
            raise ValueError("the Raft transport needs the cluster secret (pysyncobj password)")
        # Per peer: append_entries messages sent on the current connection that its answer
        # (next_node_idx) has not come back for. A follower answers each one that carries
        # prevLogIdx, and the last chunk of a dump, exactly once (pysyncobj's
        # __onMessageReceived); the quorum sends new entries early only to followers with
        # nothing unanswered (kraft.quorum). Any doubt (a stale term's message, never
        # answered) only leaves a follower at the heartbeat's pace.
        self.kraft_unanswered: dict[Any, int] = {}
        # Per peer: the commit index the last append sent on the current connection carried.
        self.kraft_told_commit: dict[Any, int] = {}
        # Per peer we dial: failed dials in a row, and when the next dial is due. pysyncobj
        # redials every connectionRetryTime (1 s); we back off as Kafka's clients do
        # (reconnect.backoff.ms 50 doubling to reconnect.backoff.max.ms), so a peer that
        # starts a moment after us (a cold start of the cluster) or restarts is reached in
        # tens of milliseconds, and a peer that stays down costs one dial a second.
        self._kraft_dial_failures: dict[Any, int] = {}
        self._kraft_next_dial: dict[Any, float] = {}
        # The observers connected to this voter: pysyncobj's read-only node -> its node id.
        self.kraft_observers: dict[Any, int] = {}
        # Those that are controllers waiting to be added: node -> (raft address, directory id,
        # base voters).
        self.kraft_observer_controllers: dict[Any, ObserverController] = {}
        super().__init__(syncObj, selfNode, otherNodes)
        syncObj.addOnTickCallback(self._kraft_tick)

    def send(self, node: Any, message: Any) -> bool:
        if not self._hooks.before_send():
            return False
        sent: bool = super().send(node, message)
        if sent and type(message) is dict and message.get("type") == "append_entries":
            self.kraft_told_commit[node] = message.get("commit_index", 0)
            serialized = message.get("serialized")
            answered = "prevLogIdx" in message or (serialized is not None and serialized[2])
            if answered:
                self.kraft_unanswered[node] = self.kraft_unanswered.get(node, 0) + 1
        return sent

    def _onDisconnected(self, conn: Any) -> None:  # noqa: N802
        node = self._connToNode(conn)
        if node is not None:
            self.kraft_unanswered.pop(node, None)  # what was in flight is lost with the link
            self.kraft_told_commit.pop(node, None)
            self.kraft_observers.pop(node, None)
            self.kraft_observer_controllers.pop(node, None)
        super()._onDisconnected(conn)

    def destroy(self) -> None:
        self._hooks.links.closed = True
        super().destroy()

    def _onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        observer = self.kraft_observers.get(node)
        key = node.id if observer is None else observer_key(observer)
        self._hooks.last_heard[key] = time.monotonic()
        next_index: dict[Any, int] = self._syncObj._SyncObj__raftNextIndex
        sent_from: int | None = None
        if type(message) is dict and message.get("type") == "next_node_idx":
            count = self.kraft_unanswered.get(node, 0)
            if count:
                self.kraft_unanswered[node] = count - 1
            if message.get("success") and not message.get("reset"):
                sent_from = next_index.get(node)
        super()._onMessageReceived(node, message)
        if sent_from is not None and next_index.get(node, sent_from) < sent_from:
            # pysyncobj sets a follower's next index to what a successful answer names, even
            # when later appends are in flight: it then sends their entries again, and the
            # follower drops every entry after the resent batch's start, applied ones included
            # (the CRITICAL "truncating already-applied log entries"; docs/design.md, "Known
            # traps"). Seen when an answer to a dump and a heartbeat carrying the entries after
            # the dump were in flight together. In Raft a success only moves the next index
            # forward; a failed append (reset) still moves it back.
            next_index[node] = sent_from

    def addNode(self, node: Any) -> None:  # noqa: N802
        super().addNode(node)
        conn = self._connections.get(node)
        if conn is not None and type(conn) is TcpConnection:
            conn.__class__ = KraftConnection
            conn.kraft_setup(self._hooks.links, node.address, incoming=False)

    def _onNewIncomingConnection(self, conn: Any) -> None:  # noqa: N802
        conn.__class__ = KraftConnection
        conn.kraft_setup(self._hooks.links, None, incoming=True)
        if len(self._unknownConnections) >= limits.RAFT_HANDSHAKING_CONNECTIONS_COUNT_MAX:
            oldest = min(self._unknownConnections, key=lambda c: c.kraft_since)
            oldest.kraft_drop(
                EVICTED,
                f"dropped the Raft link {oldest.kraft_name()}: more than "
                f"{limits.RAFT_HANDSHAKING_CONNECTIONS_COUNT_MAX} connections in the handshake",
            )
        super()._onNewIncomingConnection(conn)

    def _onIncomingMessageReceived(self, conn: Any, message: Any) -> None:  # noqa: N802
        hello = parse_observer_hello(message) if conn.sendRandKey else None
        if hello is not None:
            self._kraft_observer_connected(conn, message, hello[0], hello[1])
            return
        if conn.sendRandKey and not (type(message) is str and message in self._nodeAddrToNode):
            # Past the key exchange the dialer names itself; pysyncobj would also take
            # "readonly" and admin commands (lists), which we never use.
            conn.kraft_drop(
                NOT_A_VOTER,
                f"refused the Raft link {conn.kraft_name()}: it names itself {message!r:.80}, "
                "which is not a voter here (do the nodes' controller.quorum.voters agree?)",
            )
            return
        super()._onIncomingMessageReceived(conn, message)
        if conn.sendRandKey and conn not in self._unknownConnections:
            conn.kraft_identified(message)
            self._hooks.links.handshake_done(message)

    def _kraft_observer_connected(
        self, conn: Any, name: str, observer: int, controller: ObserverController | None
    ) -> None:
        """An observer finished the handshake: pysyncobj takes it as a read-only node (a new
        Node per connection), which the leader sends its appends to; we remember its id."""
        if self._selfIsReadonlyNode:
            conn.kraft_drop(NOT_A_VOTER, f"refused the Raft link {conn.kraft_name()}: observer")
            return
        super()._onIncomingMessageReceived(conn, "readonly")
        node = self._connToNode(conn)
        if node is None:  # pysyncobj dropped it
            return
        self.kraft_observers[node] = observer
        if controller is not None:
            self.kraft_observer_controllers[node] = controller
        conn.kraft_identified(name)
        self._hooks.links.handshake_done(name)
        self._hooks.last_heard[observer_key(observer)] = time.monotonic()

    def _sendSelfAddress(self, conn: Any) -> None:  # noqa: N802
        if self._selfIsReadonlyNode:
            # pysyncobj's read-only nodes say "readonly"; ours names itself for the voters'
            # view of the quorum (GET /v1/cluster/quorum's observers) and broker sessions.
            assert self._hooks.observer_id is not None, "an observer has an id"
            conn.send(observer_hello(self._hooks.observer_id, self._hooks.observer_controller))
        else:
            super()._sendSelfAddress(conn)

    def _onOutgoingMessageReceived(self, conn: Any, message: Any) -> None:  # noqa: N802
        super()._onOutgoingMessageReceived(conn, message)
        conn.kraft_handshake_done = True
        node = self._connToNode(conn)
        if node is not None:  # the peer authenticated: a later loss redials from scratch
            self._kraft_dial_failures.pop(node, None)

    def _connectIfNecessarySingle(self, node: Any) -> bool:  # noqa: N802
        # pysyncobj's, with a backoff in place of its fixed connectionRetryTime.
        conn = self._connections.get(node)
        if conn is not None and conn.state != CONNECTION_STATE.DISCONNECTED:
            return True
        if conn is None or not self._shouldConnect(node):
            return False
        now = time.monotonic()
        if now < self._kraft_next_dial.get(node, 0.0):
            return False
        failures = self._kraft_dial_failures.get(node, 0)
        self._kraft_dial_failures[node] = failures + 1
        self._kraft_next_dial[node] = now + redial_delay_s(failures)
        connected: bool = conn.connect(node.ip, node.port)
        return connected

    def kraft_next_dial_s(self) -> float:
        """Seconds until the next redial of a lost peer is due (<= 0: now); inf if none is."""
        due = math.inf
        for node, conn in self._connections.items():
            if conn.state == CONNECTION_STATE.DISCONNECTED and self._shouldConnect(node):
                due = min(due, self._kraft_next_dial.get(node, 0.0))
        return due - time.monotonic()

    def dropNode(self, node: Any) -> None:  # noqa: N802
        super().dropNode(node)
        self._kraft_dial_failures.pop(node, None)
        self._kraft_next_dial.pop(node, None)

    def _kraft_tick(self) -> None:
        deadline = time.monotonic() - limits.RAFT_HANDSHAKE_TIMEOUT_S
        handshaking = list(self._unknownConnections) + [
            c
            for c in self._connections.values()
            if isinstance(c, KraftConnection)
            and c.state != CONNECTION_STATE.DISCONNECTED
            and not c.kraft_handshake_done
        ]
        for conn in handshaking:
            if conn.kraft_since < deadline:
                conn.kraft_drop(
                    HANDSHAKE_TIMEOUT,
                    f"dropped the Raft link {conn.kraft_name()}: no handshake within "
                    f"{limits.RAFT_HANDSHAKE_TIMEOUT_S} s",
                )
        self._hooks.on_tick()


def redial_delay_s(failures: int) -> float:
    """The pause before the next dial of a peer after `failures` dials in a row that did not
    reach an authenticated link: RAFT_RECONNECT_BACKOFF_S doubling up to
    RAFT_CONNECTION_RETRY_S (Kafka's reconnect.backoff.ms and reconnect.backoff.max.ms)."""
    return float(
        min(
            limits.RAFT_RECONNECT_BACKOFF_S * 2 ** min(failures, 30), limits.RAFT_CONNECTION_RETRY_S
        )
    )


class DialNode(TCPNode):  # type: ignore[misc]
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
