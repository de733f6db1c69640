"""Proof of the cluster secret on node-to-node HTTP calls: the pure core, no I/O, no clock.

The internal endpoints (registration, heartbeats, producer ids, ISR changes, replica fetch) and
the admin calls a node forwards to the controller travel on the client port, so each one
proves that its sender holds the cluster secret (``<log dir>/cluster.secret``, the one the Raft
links use). A call without valid proof is refused before its handler runs, so it changes
nothing. ``server/internal_auth_http.py`` is the aiohttp side (the middleware, the body).

Wire format: six headers on the request::

    X-Kraft-Node         the signing node's id, decimal (it says who, the signature proves it)
    X-Kraft-Target       the id of the node the call is for, decimal
    X-Kraft-Timestamp    the sender's wall clock, ms since the Unix epoch, decimal
    X-Kraft-Nonce        16 random bytes, 32 lowercase hex digits, new for every call
    X-Kraft-Body-SHA256  SHA-256 of the body, 64 lowercase hex digits (of b"" when none)
    X-Kraft-Signature    HMAC-SHA256(key, canonical), 64 lowercase hex digits

    key        = HMAC-SHA256(cluster secret (UTF-8), "kraft internal http v1")
    canonical  = "kraft internal http v1" LF node LF target LF METHOD LF path-and-query LF
                 timestamp LF nonce LF body digest (the X-Kraft-Body-SHA256 value)

The key is derived, not the raw secret, so a signature made here is useless as a Raft
password and the other way round. The path and query are signed as they travel on the wire
(the request target, still percent-encoded), and the body by its digest, so a proof cannot be
moved to another call; and the receiving node's id, so a call cannot be replayed to another
node (each node remembers only the nonces it was sent).

The digest travels in a header, so the headers alone are checked before a byte of the body
is read: a stranger's call is refused at its head, and its body (up to
``socket.request.max.bytes``) is never read nor counted against the node's byte budget. The
check is in two steps:

1. :meth:`InternalAuth.check_headers`, at the head: the headers' shapes; the timestamp within
   ``INTERNAL_AUTH_WINDOW_MS`` of the receiver's clock (so a recorded call cannot be replayed
   later); the signature, in constant time (``hmac.compare_digest``); the nonce not older than
   the cache's floor and not seen within the window (so a recorded call cannot be replayed at
   once either). It records nothing, so the listener may also use it to tell the cluster's
   own connections from a stranger's (``max.connections``).
2. After the body is read: :meth:`Proof.check_body` compares its SHA-256 with the signed one
   (constant time), and only then :meth:`InternalAuth.accept` records the nonce. It checks the
   window, the floor and the nonce again, at its own time: two copies of one call may both
   pass step 1 while their bodies arrive, and only the first to be accepted is served. Only
   calls with a valid signature and body reach the nonce cache, so a stranger cannot fill it.

The nonce cache holds at most ``INTERNAL_AUTH_NONCES_MAX`` entries. When it is full of nonces
still inside the window, the oldest one is dropped and the cache's *floor* rises to its
timestamp: from then on a call stamped at or below the floor is refused as too old, because
its nonce might have been the one dropped. The window shrinks under a flood; it never lets a
replay through.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from client.protocol import SASL_AUTHENTICATION_FAILED, ApiError
from server import limits

NODE_HEADER = "X-Kraft-Node"
TARGET_HEADER = "X-Kraft-Target"
TIMESTAMP_HEADER = "X-Kraft-Timestamp"
NONCE_HEADER = "X-Kraft-Nonce"
BODY_HEADER = "X-Kraft-Body-SHA256"
SIGNATURE_HEADER = "X-Kraft-Signature"
HEADERS = (
    NODE_HEADER,
    TARGET_HEADER,
    TIMESTAMP_HEADER,
    NONCE_HEADER,
    BODY_HEADER,
    SIGNATURE_HEADER,
)

CONTEXT = "kraft internal http v1"
NONCE_BYTES = 16
INT32_MAX = (1 << 31) - 1

_NONCE = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")  # a body digest, and a signature
# ASCII digits only (str.isdigit() takes "²" and Arabic-Indic digits); a node id fits in an
# int32 and a ms timestamp in 15 digits for the next 30,000 years.
_NODE = re.compile(r"[0-9]{1,10}")
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


def derive_key(secret: str) -> bytes:
    """The signing key of a cluster secret (never the secret itself, see the module doc)."""
    return hmac.new(secret.encode("utf-8"), CONTEXT.encode("ascii"), hashlib.sha256).digest()


def body_digest(body: bytes) -> str:
    """The ``X-Kraft-Body-SHA256`` value of a body."""
    return hashlib.sha256(body).hexdigest()


def has_proof(headers: Mapping[str, str]) -> bool:
    """Whether a request carries any of the proof headers (then it must carry a valid proof)."""
    return any(name in headers for name in HEADERS)


def canonical(
    node_id: int,
    target_id: int,
    method: str,
    path_qs: str,
    timestamp_ms: int,
    nonce: str,
    body_sha256: str,
) -> bytes:
    """What the signature covers (see the module doc)."""
    parts = (
        CONTEXT,
        str(node_id),
        str(target_id),
        method.upper(),
        path_qs,
        str(timestamp_ms),
        nonce,
        body_sha256,
    )
    return "\n".join(parts).encode("utf-8")


def refused(reason: str) -> ApiError:
    """The error of a call without valid proof (Kafka's SASL_AUTHENTICATION_FAILED, 401)."""
    return ApiError(SASL_AUTHENTICATION_FAILED, f"internal call refused: {reason}")


@dataclass(frozen=True)
class Proof:
    """A call's proof whose headers passed :meth:`InternalAuth.check_headers`: its signature
    is valid, but its body is not checked yet and its nonce not recorded."""

    node_id: int
    timestamp_ms: int
    nonce: str
    body_sha256: str

    def check_body(self, body: bytes) -> None:
        """Raises SASL_AUTHENTICATION_FAILED unless ``body`` is the one that was signed."""
        if not hmac.compare_digest(body_digest(body), self.body_sha256):
            raise refused(
                f"the body is not the one signed ({BODY_HEADER}): it was changed on the way"
            )


@dataclass
class NonceCache:
    """The nonces of calls accepted within the replay window, at most ``size_max`` of them."""

    window_ms: int = limits.INTERNAL_AUTH_WINDOW_MS
    size_max: int = limits.INTERNAL_AUTH_NONCES_MAX
    # Calls stamped at or below this are refused: a nonce this old may have been dropped.
    floor_ms: int = -1
    _seen: dict[str, int] = field(default_factory=dict)
    _by_age: list[tuple[int, str]] = field(default_factory=list)  # a heap of (timestamp, nonce)

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, nonce: str) -> bool:
        return nonce in self._seen

    def add(self, nonce: str, timestamp_ms: int, now_ms: int) -> None:
        """Remembers an accepted call's nonce; forgets those that left the window."""
        assert nonce not in self._seen, "checked before"
        horizon = now_ms - self.window_ms
        while self._by_age and self._by_age[0][0] < horizon:
            _, old = heapq.heappop(self._by_age)
            del self._seen[old]
        while len(self._seen) >= self.size_max:
            stamp, old = heapq.heappop(self._by_age)
            del self._seen[old]
            self.floor_ms = max(self.floor_ms, stamp)
        self._seen[nonce] = timestamp_ms
        heapq.heappush(self._by_age, (timestamp_ms, nonce))


class InternalAuth:
    """Signs this node's calls and checks its peers' calls with one cluster secret."""

    def __init__(
        self,
        secret: str,
        window_ms: int = limits.INTERNAL_AUTH_WINDOW_MS,
        nonces_max: int = limits.INTERNAL_AUTH_NONCES_MAX,
    ) -> None:
        if not secret:
            raise ValueError("the cluster secret is empty")
        self._key = derive_key(secret)
        self.window_ms = window_ms
        self.nonces = NonceCache(window_ms, nonces_max)

    def signature(
        self,
        node_id: int,
        target_id: int,
        method: str,
        path_qs: str,
        timestamp_ms: int,
        nonce: str,
        body_sha256: str,
    ) -> str:
        message = canonical(node_id, target_id, method, path_qs, timestamp_ms, nonce, body_sha256)
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(
        self,
        node_id: int,
        method: str,
        path_qs: str,
        body: bytes,
        now_ms: int,
        nonce: str,
        *,
        target_id: int,
    ) -> dict[str, str]:
        """The proof headers of one call from ``node_id`` to ``target_id``. ``path_qs`` is the
        request target as it goes on the wire (percent-encoded path, ``?`` and query); ``body``
        the bytes sent (b"" for none);
        ``nonce`` is :data:`NONCE_BYTES` random bytes in lowercase hex
        (``secrets.token_hex(NONCE_BYTES)``), new for every call."""
        assert 0 <= node_id <= INT32_MAX and _NONCE.fullmatch(nonce), (node_id, nonce)
        assert 0 <= target_id <= INT32_MAX, target_id
        digest = body_digest(body)
        return {
            NODE_HEADER: str(node_id),
            TARGET_HEADER: str(target_id),
            TIMESTAMP_HEADER: str(now_ms),
            NONCE_HEADER: nonce,
            BODY_HEADER: digest,
            SIGNATURE_HEADER: self.signature(
                node_id, target_id, method, path_qs, now_ms, nonce, digest
            ),
        }

    def check_headers(
        self,
        method: str,
        path_qs: str,
        headers: Mapping[str, str],
        now_ms: int,
        *,
        receiver_id: int,
    ) -> Proof:
        """Step 1, at the request's head (module doc): the proof, if its headers are valid,
        fresh, meant for ``receiver_id`` (this node), and its nonce not seen; raises
        SASL_AUTHENTICATION_FAILED otherwise. Records nothing either way."""
        values = [headers.get(name) for name in HEADERS]
        missing = [name for name, value in zip(HEADERS, values, strict=True) if value is None]
        if missing:
            raise refused(f"no proof of the cluster secret (missing {', '.join(missing)})")
        node, target, stamp, nonce, digest, signature = (v or "" for v in values)
        for name, value in ((NODE_HEADER, node), (TARGET_HEADER, target)):
            if not _NODE.fullmatch(value) or int(value) > INT32_MAX:
                raise refused(f"{name} must be a node id (ASCII digits, an int32)")
        if not _TIMESTAMP.fullmatch(stamp):
            raise refused(f"{TIMESTAMP_HEADER} must be ms since the Unix epoch (ASCII digits)")
        if not _NONCE.fullmatch(nonce):
            raise refused(f"{NONCE_HEADER} must be 32 lowercase hex digits")
        if not _SHA256.fullmatch(digest):
            raise refused(f"{BODY_HEADER} must be 64 lowercase hex digits")
        if not _SHA256.fullmatch(signature):
            raise refused(f"{SIGNATURE_HEADER} must be 64 lowercase hex digits")
        proof = Proof(int(node), int(stamp), nonce, digest)
        self._check_fresh(proof, now_ms)
        expected = self.signature(
            proof.node_id, int(target), method, path_qs, proof.timestamp_ms, nonce, digest
        )
        if not hmac.compare_digest(expected, signature):
            raise refused(
                "the signature does not match (another cluster's secret, or the call was "
                "changed on the way)"
            )
        if int(target) != receiver_id:
            # Each node keeps its own nonces: a call meant for another node, replayed here,
            # would not be seen as a replay.
            raise refused(f"the call was meant for node {int(target)}, not this one")
        self._check_unseen(proof)
        return proof

    def accept(self, proof: Proof, now_ms: int) -> int:
        """Step 2, once the body matched (:meth:`Proof.check_body`): records the nonce and
        returns the signing node's id; raises SASL_AUTHENTICATION_FAILED (recording nothing)
        if the call left the window, or its nonce was accepted meanwhile (a copy of the call
        that passed step 1 at the same time)."""
        self._check_fresh(proof, now_ms)
        self._check_unseen(proof)
        self.nonces.add(proof.nonce, proof.timestamp_ms, now_ms)
        return proof.node_id

    def _check_fresh(self, proof: Proof, now_ms: int) -> None:
        skew_ms = proof.timestamp_ms - now_ms
        if abs(skew_ms) > self.window_ms:
            raise refused(
                f"the call's timestamp is {skew_ms} ms from this node's clock (allowed: "
                f"+-{self.window_ms} ms): a replay, or the nodes' clocks disagree"
            )

    def _check_unseen(self, proof: Proof) -> None:
        if proof.timestamp_ms <= self.nonces.floor_ms:
            raise refused("the call is older than this node's replay cache remembers")
        if proof.nonce in self.nonces:
            raise refused("a replay of a call already served (its nonce was seen)")
