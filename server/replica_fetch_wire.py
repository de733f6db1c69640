"""The replica fetch on the wire: its JSON request and its binary answer, parsed and checked.

Wire format of ``POST /v1/internal/replica-fetch``
--------------------------------------------------
Request, JSON::

    {"replica_id": 2, "max_wait_ms": 500, "max_bytes": 8388608,
     "session_id": 0,          # the fetch session (KIP-227), 0 for none or a new one
     "session_epoch": 0,       # -1 sessionless, 0 full (opens a session), else incremental
     "partitions": [{"topic": "news", "partition": 0, "topic_id": "...",
                     "leader_epoch": 3,          # the epoch the follower believes in
                     "fetch_offset": 120,        # its log end offset
                     "flushed_offset": 120,      # how far it has fsynced (its recovery point)
                     "last_fetched_epoch": 2}],  # the epoch of its last batch, -1 if none
     "forgotten": [{"topic": "news", "partition": 1}]}  # incremental only

``session_id``, ``session_epoch`` and ``forgotten`` are optional (0, -1 and none: the
sessionless fetch of old). A full request names every partition the follower fetches here;
an incremental one (the session's id and next epoch) names only those whose fetch state
changed since the last request, and those it no longer fetches here in ``forgotten``
(``server/fetch_sessions.py`` has the rules).

``"end_poll": true`` (optional, with a session's id and the epoch of its request in flight,
no partitions, no ``forgotten``) is no fetch: it asks the leader to answer that request now,
held in its long poll or still on its way, and is answered at once with no partitions. The
follower sends it when it starts following partitions on a leader while its request there
is held (a leader moved after a failover): the next request names them, without waiting up
to ``max_wait_ms`` for the held one, and the session's epochs stay one request at a time.

Response, ``application/octet-stream``, raw batch bytes rather than JSON::

    header_length   uint32, big-endian
    header          JSON: {"session_id": 0,
                           "error": null | {"error_code", "error", "message"},
                           "partitions": [{"topic", "partition", "size",
                            "high_watermark", "log_start_offset", "log_end_offset",
                            "diverging": null | {"epoch", "end_offset"},
                            "error": null | {"error_code", "error", "message"}}]}
    data            each partition's batches, ``size`` bytes each, in header order

``session_id`` is the session a full request opened (0 for a sessionless one). A sessionless
or full request is answered for every partition it names, in its order; an incremental one
for the partitions it names and the session's partitions with news: bytes, a high
watermark or log start offset other than the follower was last told, an error, a divergence.
The header's ``error`` is a session error (FETCH_SESSION_ID_NOT_FOUND,
INVALID_FETCH_SESSION_EPOCH), with no partitions: the follower starts a full session again.

Every number is checked: integers only (no bool, no float, which is what orjson makes of an
integer beyond 64 bits), within Java's int or long as Kafka's FetchRequest has them; anything
else is a 400 INVALID_REQUEST naming the field. The call carries proof of the cluster secret
(``server/internal_auth.py``) and ``replica_id`` must be the node that signed it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import orjson

from client.protocol import INVALID_REQUEST, ApiError, ErrorKind
from server import limits
from server.fetch_sessions import FULL_EPOCH, SESSIONLESS_EPOCH, Key

HEADER_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class FetchPartition:
    topic: str
    partition: int
    topic_id: str
    leader_epoch: int
    fetch_offset: int
    flushed_offset: int
    last_fetched_epoch: int


@dataclass(frozen=True)
class FetchRequest:
    replica_id: int
    max_wait_ms: int
    max_bytes: int
    partitions: tuple[FetchPartition, ...]
    session_id: int = 0
    session_epoch: int = SESSIONLESS_EPOCH
    forgotten: tuple[Key, ...] = ()
    end_poll: bool = False  # not a fetch: answer the session's request of this epoch now

    @classmethod
    def from_json(cls, body: Any) -> FetchRequest:
        """The request of a follower's JSON; 400 INVALID_REQUEST naming the first bad field."""
        obj = _object(body, "the body")
        raw_partitions = obj.get("partitions")
        if not isinstance(raw_partitions, list):
            raise _malformed("partitions must be a list")
        partitions = []
        for i, raw in enumerate(raw_partitions):
            where = f"partitions[{i}]"
            p = _object(raw, where)
            partitions.append(
                FetchPartition(
                    _string(p, "topic", where),
                    _integer(p, "partition", where, 0, INT32_MAX),
                    _string(p, "topic_id", where),
                    _integer(p, "leader_epoch", where, 0, INT32_MAX),
                    _integer(p, "fetch_offset", where, 0, INT64_MAX),
                    _integer(p, "flushed_offset", where, 0, INT64_MAX),
                    _integer(p, "last_fetched_epoch", where, -1, INT32_MAX),
                )
            )
        max_wait_ms = _integer(obj, "max_wait_ms", None, 0, INT32_MAX, default=0)
        max_bytes = _integer(obj, "max_bytes", None, 0, INT32_MAX, default=1)
        session_id = _integer(obj, "session_id", None, 0, INT32_MAX, default=0)
        session_epoch = _integer(
            obj, "session_epoch", None, SESSIONLESS_EPOCH, INT32_MAX, default=SESSIONLESS_EPOCH
        )
        forgotten = _forgotten(obj.get("forgotten", []))
        if forgotten and session_epoch <= FULL_EPOCH:
            raise _malformed("forgotten is for incremental fetches only (session_epoch > 0)")
        if session_epoch > FULL_EPOCH and session_id == 0:
            raise _malformed("an incremental fetch (session_epoch > 0) needs its session_id")
        end_poll = obj.get("end_poll", False)
        if not isinstance(end_poll, bool):
            raise _malformed(f"end_poll must be a boolean, got {_shape(end_poll)}")
        if end_poll and (session_epoch <= FULL_EPOCH or partitions or forgotten):
            raise _malformed(
                "end_poll names a session's incremental request (session_epoch > 0) "
                "and no partitions"
            )
        return cls(
            _integer(obj, "replica_id", None, 0, INT32_MAX),
            min(max_wait_ms, limits.REPLICA_FETCH_WAIT_MS_MAX),
            min(max(max_bytes, 1), limits.REPLICA_FETCH_BYTES_MAX),
            tuple(partitions),
            session_id,
            session_epoch,
            forgotten,
            end_poll,
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "replica_id": self.replica_id,
            "max_wait_ms": self.max_wait_ms,
            "max_bytes": self.max_bytes,
            "partitions": [p.__dict__ for p in self.partitions],
        }
        if self.session_epoch != SESSIONLESS_EPOCH or self.session_id:
            body["session_id"] = self.session_id
            body["session_epoch"] = self.session_epoch
        if self.forgotten:
            body["forgotten"] = [{"topic": t, "partition": i} for t, i in self.forgotten]
        if self.end_poll:
            body["end_poll"] = True
        return body


def _forgotten(raw: Any) -> tuple[Key, ...]:
    if not isinstance(raw, list):
        raise _malformed("forgotten must be a list")
    out = []
    for i, item in enumerate(raw):
        where = f"forgotten[{i}]"
        obj = _object(item, where)
        out.append((_string(obj, "topic", where), _integer(obj, "partition", where, 0, INT32_MAX)))
    return tuple(out)


# Kafka's FetchRequest types: epochs, partitions and ids are int32, offsets int64.
INT32_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1


def _malformed(problem: str) -> ApiError:
    return ApiError(INVALID_REQUEST, f"malformed replica fetch: {problem}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(f"{where} must be a JSON object")
    return value


def _string(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise _malformed(f"{where}.{name} must be a string")
    return value


def _integer(
    obj: dict[str, Any],
    name: str,
    where: str | None,
    minimum: int,
    maximum: int,
    default: int | None = None,
) -> int:
    field = name if where is None else f"{where}.{name}"
    if name not in obj:
        if default is None:
            raise _malformed(f"{field} is missing")
        return default
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(f"{field} must be an integer, got {_shape(value)}")
    if not minimum <= value <= maximum:
        raise _malformed(f"{field} must be in [{minimum}, {maximum}], got {value}")
    return value


def _shape(value: Any) -> str:
    """What a wrong value is, briefly (a float is shown: orjson makes one of a huge integer)."""
    if isinstance(value, float):
        return f"{value!r} (a float; integers beyond 64 bits become floats)"
    return "a boolean" if isinstance(value, bool) else type(value).__name__


def encode_response(
    entries: list[dict[str, Any]],
    chunks: list[bytes],
    session_id: int = 0,
    error: dict[str, Any] | None = None,
) -> bytes:
    header: dict[str, Any] = {"partitions": entries}
    if session_id:
        header["session_id"] = session_id
    if error is not None:
        header["error"] = error
    encoded = orjson.dumps(header)
    # One join: an answer of several partitions' batches is copied once, not twice.
    return b"".join([HEADER_LENGTH.pack(len(encoded)), encoded, *chunks])


@dataclass(frozen=True)
class FetchResponse:
    """A decoded answer: its session fields and each partition's (header entry, bytes)."""

    session_id: int
    error: dict[str, Any] | None
    partitions: list[tuple[dict[str, Any], bytes]]


def decode_response(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """The (header entry, batch bytes) of each partition; ValueError if malformed."""
    return decode_fetch_response(data).partitions


def decode_fetch_response(data: bytes) -> FetchResponse:
    """The whole answer, session fields included; ValueError if malformed."""
    if len(data) < HEADER_LENGTH.size:
        raise ValueError("the replica fetch response is shorter than its header length")
    (length,) = HEADER_LENGTH.unpack_from(data)
    end = HEADER_LENGTH.size + length
    if end > len(data):
        raise ValueError("the replica fetch header runs past the response")
    header = orjson.loads(data[HEADER_LENGTH.size : end])
    if not isinstance(header, dict) or not isinstance(header.get("partitions"), list):
        raise ValueError("the replica fetch header has no partitions list")
    entries = header["partitions"]
    session_id = header.get("session_id", 0)
    error = header.get("error")
    if isinstance(session_id, bool) or not isinstance(session_id, int):
        raise ValueError("the replica fetch header's session_id is not an integer")
    if error is not None and not isinstance(error, dict):
        raise ValueError("the replica fetch header's error is not an object")
    out = []
    for entry in entries:
        size = int(entry["size"])
        if size < 0 or end + size > len(data):
            raise ValueError("a partition's data runs past the response")
        out.append((entry, data[end : end + size]))
        end += size
    if end != len(data):
        raise ValueError("the replica fetch response has bytes after its last partition")
    return FetchResponse(session_id, error, out)


def error_entry(kind: ErrorKind, message: str) -> dict[str, Any]:
    return {"error_code": kind.code, "error": kind.name, "message": message}
