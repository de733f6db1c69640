"""The wire contract that the server and every client share.

Four things live here, and nothing else:

1. **Errors.** Every HTTP error body is JSON::

       {"error_code": 40401, "error": "UNKNOWN_TOPIC_OR_PARTITION", "message": "...", ...}

   `error_code` is Confluent-style: its first three digits are the HTTP status. `error` is
   Kafka's error name. Extra fields (``leader_id``, ``log_start_offset``, ...) ride along.
   :class:`ApiError` is the one error root: the server raises it, the client rebuilds it from
   JSON with :meth:`ApiError.from_json`.
2. **Kafka's partitioner.** :func:`murmur2` is Kafka's ``Utils.murmur2`` (seed 0x9747b28c) and
   :func:`partition_for_key` is ``toPositive(murmur2(key)) % partitions``, so a key lands in the
   same partition as it would in Kafka.
3. **Records in JSON** (docs/api.md, "Records in JSON"): :func:`parse_produce_record` turns one JSON
   record of a produce request into bytes, and :func:`format_record` turns a stored record into
   the JSON a fetch returns, in the ``text``, ``json`` or ``binary`` format.
4. **Topic names.** :func:`topic_name_problem` is Kafka's ``Topic.validate``, so a tool refuses
   an illegal name with the message the metadata log would refuse it with.

This module imports nothing of ours, so `server/` and `client/` can both depend on it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorKind:
    code: int
    name: str
    retriable: bool = False

    @property
    def status(self) -> int:
        return self.code // 100


# The codes of docs/api.md, "Errors". The first three digits of a code are its HTTP status.
NOT_LEADER_OR_FOLLOWER = ErrorKind(30701, "NOT_LEADER_OR_FOLLOWER", retriable=True)
# A group request sent to a node that is not the group's coordinator: 307 to the coordinator.
NOT_COORDINATOR = ErrorKind(30702, "NOT_COORDINATOR", retriable=True)
NOT_FOUND = ErrorKind(40400, "NOT_FOUND")
INVALID_REQUEST = ErrorKind(40002, "INVALID_REQUEST")
INVALID_REPLICATION_FACTOR = ErrorKind(40003, "INVALID_REPLICATION_FACTOR")
INVALID_PARTITIONS = ErrorKind(40004, "INVALID_PARTITIONS")
INVALID_CONFIG = ErrorKind(40005, "INVALID_CONFIG")
INCONSISTENT_CLUSTER_ID = ErrorKind(40006, "INCONSISTENT_CLUSTER_ID")
# A group id that is empty or too long.
INVALID_GROUP_ID = ErrorKind(40008, "INVALID_GROUP_ID")
# A heartbeat naming an assignor the coordinator does not have.
UNSUPPORTED_ASSIGNOR = ErrorKind(40009, "UNSUPPORTED_ASSIGNOR")
# A produce to an internal topic (__consumer_offsets), which only the cluster writes.
INVALID_TOPIC_EXCEPTION = ErrorKind(40010, "INVALID_TOPIC_EXCEPTION")
# An ACL call on a cluster without an authorizer (Kafka's SECURITY_DISABLED).
SECURITY_DISABLED = ErrorKind(40007, "SECURITY_DISABLED")
# No credentials, wrong credentials, or a node-to-node call without valid proof of the
# cluster secret (Kafka's SASL_AUTHENTICATION_FAILED).
SASL_AUTHENTICATION_FAILED = ErrorKind(40101, "SASL_AUTHENTICATION_FAILED")
INVALID_PRODUCER_EPOCH = ErrorKind(40301, "INVALID_PRODUCER_EPOCH")
# Authenticated, but an ACL does not allow the operation (Kafka's names, by resource type).
TOPIC_AUTHORIZATION_FAILED = ErrorKind(40302, "TOPIC_AUTHORIZATION_FAILED")
GROUP_AUTHORIZATION_FAILED = ErrorKind(40303, "GROUP_AUTHORIZATION_FAILED")
CLUSTER_AUTHORIZATION_FAILED = ErrorKind(40304, "CLUSTER_AUTHORIZATION_FAILED")
UNKNOWN_TOPIC = ErrorKind(40401, "UNKNOWN_TOPIC_OR_PARTITION")
UNKNOWN_PARTITION = ErrorKind(40402, "UNKNOWN_TOPIC_OR_PARTITION")
UNKNOWN_MEMBER_ID = ErrorKind(40403, "UNKNOWN_MEMBER_ID")
STALE_BROKER_EPOCH = ErrorKind(40404, "STALE_BROKER_EPOCH")
GROUP_ID_NOT_FOUND = ErrorKind(40405, "GROUP_ID_NOT_FOUND")
# Unregistering a broker id that no broker holds (Kafka's BROKER_ID_NOT_REGISTERED, 102).
BROKER_ID_NOT_REGISTERED = ErrorKind(40406, "BROKER_ID_NOT_REGISTERED")
METHOD_NOT_ALLOWED = ErrorKind(40500, "METHOD_NOT_ALLOWED")
# The request's headers or body did not arrive within http.request.read.timeout.ms.
REQUEST_READ_TIMEOUT = ErrorKind(40801, "REQUEST_TIMED_OUT")
TOPIC_ALREADY_EXISTS = ErrorKind(40901, "TOPIC_ALREADY_EXISTS")
REBALANCE_IN_PROGRESS = ErrorKind(40902, "REBALANCE_IN_PROGRESS", retriable=True)
OUT_OF_ORDER_SEQUENCE_NUMBER = ErrorKind(40903, "OUT_OF_ORDER_SEQUENCE_NUMBER")
DUPLICATE_BROKER_REGISTRATION = ErrorKind(40904, "DUPLICATE_BROKER_REGISTRATION")
FENCED_LEADER_EPOCH = ErrorKind(40906, "FENCED_LEADER_EPOCH", retriable=True)
UNKNOWN_LEADER_EPOCH = ErrorKind(40907, "UNKNOWN_LEADER_EPOCH", retriable=True)
# An ISR change based on a partition epoch the metadata has moved past (Kafka's AlterPartition).
INVALID_UPDATE_VERSION = ErrorKind(40908, "INVALID_UPDATE_VERSION")
# A group member's epoch is not the coordinator's: it must join again with epoch 0 (KIP-848).
FENCED_MEMBER_EPOCH = ErrorKind(40909, "FENCED_MEMBER_EPOCH")
# An offset commit carrying a member epoch older than the member's (KIP-848): the member
# lost the partition meanwhile; retrying with the current epoch may succeed.
STALE_MEMBER_EPOCH = ErrorKind(40910, "STALE_MEMBER_EPOCH")
# Deleting a group, or resetting its offsets, while it has active members.
NON_EMPTY_GROUP = ErrorKind(40911, "NON_EMPTY_GROUP")
# A reassignment's replica list that is empty, repeats a broker, or names one that is not
# registered (Kafka's INVALID_REPLICA_ASSIGNMENT, 39).
INVALID_REPLICA_ASSIGNMENT = ErrorKind(40013, "INVALID_REPLICA_ASSIGNMENT")
# A binary record batch whose CRC, lengths or record framing do not add up (Kafka's
# CORRUPT_MESSAGE): nothing of it is stored.
CORRUPT_MESSAGE = ErrorKind(40011, "CORRUPT_MESSAGE")
# A binary record batch whose attributes name a codec id Kafka has none for (5, 6, 7).
UNSUPPORTED_COMPRESSION_TYPE = ErrorKind(40012, "UNSUPPORTED_COMPRESSION_TYPE")
# Kafka's FETCH_SESSION_ID_NOT_FOUND (70) and INVALID_FETCH_SESSION_EPOCH (71), of the
# node-to-node replica fetch sessions: they travel only in the header of a replica fetch's
# answer (a 200), never as an HTTP status.
FETCH_SESSION_ID_NOT_FOUND = ErrorKind(40912, "FETCH_SESSION_ID_NOT_FOUND", retriable=True)
INVALID_FETCH_SESSION_EPOCH = ErrorKind(40913, "INVALID_FETCH_SESSION_EPOCH", retriable=True)
# A reassignment cancelled for a partition that is not moving (Kafka's
# NO_REASSIGNMENT_IN_PROGRESS, 85): only ever a per-partition outcome of a 200 answer.
NO_REASSIGNMENT_IN_PROGRESS = ErrorKind(40914, "NO_REASSIGNMENT_IN_PROGRESS")
# The dynamic controller quorum (Kafka's AddRaftVoter / RemoveRaftVoter): a node that is a voter
# already, and a voter id (or id and directory id) that is not one.
DUPLICATE_VOTER = ErrorKind(40915, "DUPLICATE_VOTER")
VOTER_NOT_FOUND = ErrorKind(40407, "VOTER_NOT_FOUND")
# A voter change that cannot happen yet (the new controller is not caught up, another change
# is in progress): Kafka answers REQUEST_TIMED_OUT; a conflict with the quorum's state here.
VOTER_CHANGE_NOT_READY = ErrorKind(40916, "REQUEST_TIMED_OUT", retriable=True)
# The classic group protocol's (Kafka's JoinGroup, SyncGroup, OffsetCommit): an offset commit or
# heartbeat with a generation that is not the group's (the member must join again), and a
# static member (group.instance.id) whose member id is not the one the group holds for it.
ILLEGAL_GENERATION = ErrorKind(40920, "ILLEGAL_GENERATION")
FENCED_INSTANCE_ID = ErrorKind(40921, "FENCED_INSTANCE_ID")
# A member joining a group that has its maximum number of members (group.max.size for a
# classic group; the coordinator's limit for a KIP-848 one).
GROUP_MAX_SIZE_REACHED = ErrorKind(40922, "GROUP_MAX_SIZE_REACHED")
RECORD_TOO_LARGE = ErrorKind(41301, "RECORD_TOO_LARGE")
# Above socket.request.max.bytes, or a URL or header line too long to read.
REQUEST_TOO_LARGE = ErrorKind(41302, "REQUEST_TOO_LARGE")
UNSUPPORTED_MEDIA_TYPE = ErrorKind(41501, "UNSUPPORTED_MEDIA_TYPE")
OFFSET_OUT_OF_RANGE = ErrorKind(41601, "OFFSET_OUT_OF_RANGE")
INVALID_RECORD = ErrorKind(42206, "INVALID_RECORD")
TOO_MANY_REQUESTS = ErrorKind(42901, "TOO_MANY_REQUESTS", retriable=True)
UNKNOWN_SERVER_ERROR = ErrorKind(50000, "UNKNOWN_SERVER_ERROR")
KAFKA_STORAGE_ERROR = ErrorKind(50001, "KAFKA_STORAGE_ERROR", retriable=True)
REQUEST_TIMED_OUT = ErrorKind(50003, "REQUEST_TIMED_OUT", retriable=True)
NOT_ENOUGH_REPLICAS = ErrorKind(50301, "NOT_ENOUGH_REPLICAS", retriable=True)
LEADER_NOT_AVAILABLE = ErrorKind(50302, "LEADER_NOT_AVAILABLE", retriable=True)
# max.connections reached, or queued.max.request.bytes held by other requests for too long.
SERVER_BUSY = ErrorKind(50303, "SERVER_BUSY", retriable=True)
# The group's coordinator (the leader of its __consumer_offsets partition) is still reading
# the group's records after taking over.
COORDINATOR_LOAD_IN_PROGRESS = ErrorKind(50304, "COORDINATOR_LOAD_IN_PROGRESS", retriable=True)
# The group's __consumer_offsets partition has no leader (or the topic cannot be created yet).
COORDINATOR_NOT_AVAILABLE = ErrorKind(50305, "COORDINATOR_NOT_AVAILABLE", retriable=True)

ERROR_KINDS: dict[int, ErrorKind] = {
    kind.code: kind for kind in list(globals().values()) if isinstance(kind, ErrorKind)
}


@dataclass
class ApiError(Exception):
    """An operating error: something about the request or the cluster's state, not a bug.

    `extra` holds the fields an error carries beside code, name and message (for example
    ``leader_id`` for NOT_LEADER_OR_FOLLOWER, ``log_start_offset`` for OFFSET_OUT_OF_RANGE).
    """

    kind: ErrorKind
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.kind.name} ({self.kind.code}): {self.message}")

    @property
    def code(self) -> int:
        return self.kind.code

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def status(self) -> int:
        return self.kind.status

    @property
    def retriable(self) -> bool:
        return self.kind.retriable

    def to_json(self) -> dict[str, Any]:
        return {"error_code": self.code, "error": self.name, "message": self.message, **self.extra}

    @classmethod
    def from_json(cls, body: dict[str, Any], status: int | None = None) -> ApiError:
        """Rebuilds the error a server sent; an unknown code keeps its number and name."""
        code = body.get("error_code")
        name = body.get("error")
        if not isinstance(code, int):
            code = (status or 500) * 100
        kind = ERROR_KINDS.get(code)
        if kind is None or (isinstance(name, str) and name != kind.name):
            kind = ErrorKind(code, name if isinstance(name, str) else "UNKNOWN_SERVER_ERROR")
        extra = {k: v for k, v in body.items() if k not in ("error_code", "error", "message")}
        return cls(kind, str(body.get("message", "")), extra)


# ---------------------------------------------------------------------------------------------
# Kafka's partitioner
# ---------------------------------------------------------------------------------------------

_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: MurmurHash2 with seed 0x9747b28c, as a signed 32-bit int."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK32
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & _MASK32
        k ^= k >> 24
        k = (k * m) & _MASK32
        h = ((h * m) & _MASK32) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & _MASK32
    h ^= h >> 13
    h = (h * m) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# ---------------------------------------------------------------------------------------------
# Topic names
# ---------------------------------------------------------------------------------------------

# Kafka's own limit (Topic.MAX_NAME_LENGTH): a topic name becomes a directory name
# "<topic>-<partition>", which must fit in 255 bytes.
TOPIC_NAME_LENGTH_MAX = 249
_TOPIC_NAME_RE = re.compile(r"[a-zA-Z0-9._-]+")


def topic_name_problem(name: object) -> str | None:
    """Kafka's message for an illegal topic name (``Topic.validate``), or None if legal."""
    if not isinstance(name, str) or name == "":
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > TOPIC_NAME_LENGTH_MAX:
        return (
            f"Topic name is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} "
            f"characters, topic name: {name[:TOPIC_NAME_LENGTH_MAX]}..."
        )
    if not _TOPIC_NAME_RE.fullmatch(name):
        return (
            f'Topic name "{name}" is illegal, it contains a character other than ASCII '
            "alphanumerics, '.', '_' and '-'"
        )
    return None


# ---------------------------------------------------------------------------------------------
# Records in JSON
# ---------------------------------------------------------------------------------------------

Header = tuple[str, bytes | None]


@dataclass(frozen=True)
class ProduceRecord:
    """One record of a produce request, decoded from JSON into the bytes that will be stored."""

    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    partition: int | None = None
    timestamp: int | None = None


_RECORD_FIELDS = frozenset(
    {"key", "value", "key_b64", "value_b64", "headers", "partition", "timestamp"}
)
FORMATS = ("text", "json", "binary")
# Kafka v2 record batches as the HTTP body, both ways (docs/binary-records.md): the produce
# request's Content-Type, the fetch request's Accept and its answer's Content-Type.
BATCH_MEDIA_TYPE = "application/vnd.kafka.batch"
# The binary fetch answer's headers (its body holds only the batches).
HIGH_WATERMARK_HEADER = "Kafka-High-Watermark"
LOG_START_OFFSET_HEADER = "Kafka-Log-Start-Offset"
NEXT_OFFSET_HEADER = "Kafka-Next-Offset"


def _invalid(message: str) -> ApiError:
    return ApiError(INVALID_RECORD, message)


_TIMESTAMP_MAX = (1 << 63) - 1  # a Java long, as the batch stores it
_PARTITION_MAX = (1 << 31) - 1  # a Java int


JAVA_INT_MAX = (1 << 31) - 1
JAVA_LONG_MAX = (1 << 63) - 1


def json_int(value: object, what: str, minimum: int, maximum: int) -> int:
    """``value`` from a JSON body as an integer within ``[minimum, maximum]``, else
    INVALID_REQUEST naming ``what``. A bool is not one (Python's bool is an int), nor a float:
    orjson reads an integer beyond 64 bits as a float whose digits are not the sender's, so
    the message never shows it."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ApiError(INVALID_REQUEST, f"{what} must be an integer in [{minimum}, {maximum}]")
    return value


def _json_to_bytes(obj: Any) -> bytes | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj.encode("utf-8")
    return orjson.dumps(obj)


def _b64_to_bytes(obj: Any, name: str, index: int) -> bytes | None:
    if obj is None:
        return None
    if not isinstance(obj, str):
        raise _invalid(f"record {index}: {name} must be a base64 string or null")
    try:
        return base64.b64decode(obj, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"record {index}: {name} is not valid base64") from None


def _field_bytes(obj: dict[str, Any], name: str, index: int) -> bytes | None:
    if name in obj and f"{name}_b64" in obj:
        raise _invalid(f"record {index}: give {name} or {name}_b64, not both")
    if f"{name}_b64" in obj:
        return _b64_to_bytes(obj[f"{name}_b64"], f"{name}_b64", index)
    return _json_to_bytes(obj.get(name))


def _parse_headers(raw: Any, index: int) -> tuple[Header, ...]:
    if raw is None:
        return ()
    pairs: list[Any]
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, list):
        pairs = raw
    else:
        raise _invalid(f"record {index}: headers must be an object or a list of [name, value]")
    headers: list[Header] = []
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)):
            raise _invalid(f"record {index}: each header must be [name, value] with a string name")
        name, value = pair
        if value is not None and not isinstance(value, str):
            raise _invalid(f"record {index}: header {name!r} must have a string or null value")
        headers.append((name, None if value is None else value.encode("utf-8")))
    return tuple(headers)


def _optional_int(obj: dict[str, Any], name: str, index: int, maximum: int) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise _invalid(f"record {index}: {name} must be a non-negative integer (at most {maximum})")
    return value


def parse_produce_record(obj: Any, index: int = 0) -> ProduceRecord:
    """Decodes one record of a produce request, or raises INVALID_RECORD naming what is wrong.

    ``key``/``value``: a JSON string is stored as its UTF-8 bytes, any other JSON value as its
    compact JSON text, null as null (a null value is a tombstone). ``key_b64``/``value_b64``
    carry raw bytes. Unknown fields are refused, so a typo such as ``vaule`` is not silently
    stored as an empty record.
    """
    if not isinstance(obj, dict):
        raise _invalid(f"record {index} must be a JSON object")
    unknown = sorted(set(obj) - _RECORD_FIELDS)
    if unknown:
        raise _invalid(f"record {index}: unknown field(s) {', '.join(unknown)}")
    return ProduceRecord(
        key=_field_bytes(obj, "key", index),
        value=_field_bytes(obj, "value", index),
        headers=_parse_headers(obj.get("headers"), index),
        partition=_optional_int(obj, "partition", index, _PARTITION_MAX),
        timestamp=_optional_int(obj, "timestamp", index, _TIMESTAMP_MAX),
    )


def produce_records_from_body(body: Any) -> list[Any]:
    """The list of JSON records in a produce body: ``{"records": [...]}`` or one record object."""
    if isinstance(body, dict) and "records" in body:
        records = body["records"]
        if not isinstance(records, list):
            raise _invalid('"records" must be a list')
    elif isinstance(body, dict):
        records = [body]
    elif isinstance(body, list):
        records = body
    else:
        raise ApiError(INVALID_REQUEST, "the body must be a JSON object with a records list")
    if not records:
        raise _invalid("the records list is empty")
    return records


def _encode_bytes(data: bytes, fmt: str) -> tuple[bool, Any]:
    """(is_base64, encoded) for one key, value or header value in a fetch format."""
    if fmt == "binary":
        return True, base64.b64encode(data).decode("ascii")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return True, base64.b64encode(data).decode("ascii")
    if fmt == "json":
        try:
            return False, orjson.loads(data)
        except orjson.JSONDecodeError:
            return False, text
    return False, text


def _put(out: dict[str, Any], name: str, data: bytes | None, fmt: str) -> None:
    if data is None:
        out[name] = None
        return
    is_b64, encoded = _encode_bytes(data, fmt)
    out[f"{name}_b64" if is_b64 else name] = encoded


def format_record(
    *,
    offset: int,
    timestamp: int,
    key: bytes | None,
    value: bytes | None,
    headers: tuple[Header, ...] | list[Header],
    partition: int,
    fmt: str = "text",
) -> dict[str, Any]:
    """The JSON of one fetched record (docs/api.md): key/value switch to ``*_b64`` for non-UTF-8."""
    out: dict[str, Any] = {"offset": offset, "timestamp": timestamp, "partition": partition}
    _put(out, "key", key, fmt)
    _put(out, "value", value, fmt)
    out["headers"] = [
        [name, None if hv is None else _encode_bytes(hv, fmt)[1]] for name, hv in headers
    ]
    return out


def record_bytes(record: dict[str, Any], name: str) -> bytes | None:
    """The bytes of ``key`` or ``value`` in a fetched JSON record, whatever format it came in."""
    if f"{name}_b64" in record:
        encoded = record[f"{name}_b64"]
        return None if encoded is None else base64.b64decode(encoded)
    raw = record.get(name)
    if raw is None:
        return None
    return raw.encode("utf-8") if isinstance(raw, str) else orjson.dumps(raw)
