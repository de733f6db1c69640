"""Metadata records: the entries of the cluster's metadata log, modelled on Kafka's.

Every change to the cluster's truth (a broker registers or is fenced, a topic is created, a
partition's leader or ISR changes, a config is set, a block of producer ids is handed out) is
one of these records. Records are frozen dataclasses that check their own fields when built, so
a record that exists is well formed; whether it is *legal* in the current state is the state
machine's call (`kraft.state`).

One Raft entry carries a list of records, applied whole or not at all. Its bytes are JSON
(orjson), one object::

    {"v": 1, "records": [<record>, ...]}

    v        the entry format version, 1
    records  1..ENTRY_RECORDS_COUNT_MAX records, in order

and each record is an object with its type name, its version and its fields by name::

    {"type": "topic", "v": 1, "name": "news", "topic_id": "x5Ujx2PtQ1C2rkC8-XNMZA"}

Tuples are JSON arrays; None is null. Type names and their fields (all versions are 1):

    register_broker   broker_id, incarnation_id, broker_epoch, http_url, raft_address ("" for
                      a broker-only node), fenced
                      [rack: the broker's broker.rack, left out when it has none]
                      [kafka_address: host:port of its advertised KAFKA listener (Kafka's
                      protocol), left out when it has none]
    fence_broker      broker_id, broker_epoch
    unfence_broker    broker_id, broker_epoch
    unregister_broker broker_id, broker_epoch
    topic             name, topic_id
    partition         topic_id, partition, replicas, isr, leader, leader_epoch,
                      partition_epoch
                      [adding_replicas, removing_replicas: a move in progress, left out
                      when empty]
    partition_change  topic_id, partition, leader (null = unchanged, -1 = no leader),
                      isr (null = unchanged), replicas (null = unchanged),
                      [adding_replicas, removing_replicas: null or left out = unchanged]
    remove_topic      topic_id
    config            resource_type ("topic" | "broker"), resource_name, name,
                      value (null = delete)
    producer_ids      broker_id, broker_epoch, next_producer_id
    acl               acl_id, resource_type ("TOPIC" | "GROUP" | "CLUSTER"), resource_name,
                      pattern_type ("LITERAL" | "PREFIXED"), principal ("User:name" |
                      "User:*"), host ("*"), operation (Kafka's AclOperation name),
                      permission ("ALLOW" | "DENY")   (Kafka's AccessControlEntryRecord)
    remove_acl        acl_id                          (Kafka's RemoveAccessControlEntryRecord)
    leader_change     leader_id                       (Kafka's LeaderChangeMessage)
    register_controller  controller_id, incarnation_id, http_url, raft_address
                                                      (Kafka's RegisterControllerRecord)
    no_op             (no fields)

:func:`decode` raises one error, :class:`MetadataRecordError`, for every byte string it
cannot turn into records: bad JSON, an unknown type, a version newer than ours, a missing,
extra or mistyped field, or a field out of range. A field with a default may be left out.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

import orjson

from client.protocol import topic_name_problem
from kraft.errors import MetadataRecordError
from kraft.limits import (
    CONFIG_NAME_LENGTH_MAX,
    CONFIG_VALUE_LENGTH_MAX,
    ENTRY_BYTES_MAX,
    ENTRY_RECORDS_COUNT_MAX,
    INCARNATION_ID_LENGTH_MAX,
    INT32_MAX,
    INT64_MAX,
    REPLICAS_COUNT_MAX,
    URL_LENGTH_MAX,
)

__all__ = [
    "ACL_OPERATIONS",
    "ACL_RESOURCE_OPERATIONS",
    "CLUSTER_RESOURCE_NAME",
    "ENTRY_VERSION",
    "AclRecord",
    "RemoveAclRecord",
    "ConfigRecord",
    "FenceBrokerRecord",
    "LeaderChangeRecord",
    "MetadataRecord",
    "MetadataRecordError",
    "NoOpRecord",
    "PartitionChangeRecord",
    "PartitionRecord",
    "ProducerIdsRecord",
    "RECORD_TYPES",
    "RegisterBrokerRecord",
    "RegisterControllerRecord",
    "RemoveTopicRecord",
    "TopicRecord",
    "UnfenceBrokerRecord",
    "UnregisterBrokerRecord",
    "NO_LEADER",
    "decode",
    "encode",
    "validate_topic_id",
]

ENTRY_VERSION = 1
# A partition with no leader (Kafka's LeaderConstants.NO_LEADER).
NO_LEADER = -1

_CONFIG_NAME_RE = re.compile(r"[a-zA-Z0-9._-]+")
_TOPIC_ID_LENGTH = 22  # 16 bytes in unpadded base64url
_ZERO_TOPIC_ID = "A" * _TOPIC_ID_LENGTH  # Kafka's Uuid.ZERO_UUID, reserved


def validate_topic_id(topic_id: str) -> str | None:
    """A Kafka Uuid as 22 characters of canonical unpadded base64url, not all zero.

    Returns None when valid, else what is wrong.
    """
    if not isinstance(topic_id, str) or len(topic_id) != _TOPIC_ID_LENGTH:
        return f"topic id must be {_TOPIC_ID_LENGTH} characters of base64url, got {topic_id!r}"
    try:
        raw = base64.urlsafe_b64decode(topic_id + "==")
    except (binascii.Error, ValueError):
        return f"topic id is not base64url: {topic_id!r}"
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != topic_id:
        return f"topic id is not canonical base64url: {topic_id!r}"
    if topic_id == _ZERO_TOPIC_ID:
        return "topic id is the reserved zero uuid"
    return None


# ---------------------------------------------------------------------------------------------
# Field type checks, driven by the dataclasses' annotations
# ---------------------------------------------------------------------------------------------

_HINTS: dict[type, list[tuple[str, Any]]] = {}


def _fields_of(cls: type) -> list[tuple[str, Any]]:
    hints = _HINTS.get(cls)
    if hints is None:
        resolved = get_type_hints(cls)
        hints = [(f.name, resolved[f.name]) for f in dataclasses.fields(cls)]
        _HINTS[cls] = hints
    return hints


def _type_ok(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if hint is int or hint is str or hint is bool:
        # `type(...) is` and not isinstance: a JSON true is not the integer 1 here.
        return type(value) is hint
    if origin is tuple:
        (element, _ellipsis) = get_args(hint)
        return type(value) is tuple and all(type(v) is element for v in value)
    if origin is Union or origin is types.UnionType:
        args = get_args(hint)
        if value is None:
            return type(None) in args
        return any(_type_ok(value, a) for a in args if a is not type(None))
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in get_args(hint))
    raise AssertionError(f"unsupported field type {hint!r}")  # a programmer's mistake


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "")


class MetadataRecord:
    """Base of every record: a type name, a version, and fields checked on construction."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        for name, hint in _fields_of(type(self)):
            value = getattr(self, name)
            if not _type_ok(value, hint):
                self._fail(f"field {name} must be {_type_name(hint)}, got {value!r}")
        self._validate()

    def _validate(self) -> None:
        """Range and consistency checks of one record's own fields."""

    def _fail(self, message: str) -> None:
        raise MetadataRecordError(f"{type(self).__name__}: {message}")

    def _check_range(self, name: str, low: int, high: int) -> None:
        value = getattr(self, name)
        if not low <= value <= high:
            self._fail(f"{name} must be in [{low}, {high}], got {value}")

    def _check_ids(self, name: str, ids: tuple[int, ...], allow_empty: bool) -> None:
        if not ids and not allow_empty:
            self._fail(f"{name} must not be empty")
        if len(ids) > REPLICAS_COUNT_MAX:
            self._fail(f"{name} has {len(ids)} brokers, more than {REPLICAS_COUNT_MAX}")
        if len(set(ids)) != len(ids):
            self._fail(f"{name} must be distinct broker ids, got {list(ids)}")
        for broker_id in ids:
            if not 0 <= broker_id <= INT32_MAX:
                self._fail(f"{name} holds an invalid broker id {broker_id}")

    def _check_string(self, name: str, length_max: int, allow_empty: bool = False) -> None:
        value = getattr(self, name)
        if not value and not allow_empty:
            self._fail(f"{name} must not be empty")
        if len(value) > length_max:
            self._fail(f"{name} is longer than {length_max} characters")
        if not value.isprintable():
            self._fail(f"{name} must be printable, got {value!r}")

    def _check_topic_id(self) -> None:
        problem = validate_topic_id(self.topic_id)  # type: ignore[attr-defined]
        if problem is not None:
            self._fail(problem)

    def to_json_dict(self) -> dict[str, Any]:
        """The record as a JSON object: type, version, then its fields."""
        out: dict[str, Any] = {"type": self.TYPE, "v": self.VERSION}
        for name, _hint in _fields_of(type(self)):
            out[name] = getattr(self, name)
        return out


def _check_host_port(record: MetadataRecord, name: str) -> None:
    value = getattr(record, name)
    record._check_string(name, URL_LENGTH_MAX)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        record._fail(f"{name} must be host:port, got {value!r}")


@dataclass(frozen=True)
class RegisterBrokerRecord(MetadataRecord):
    """A broker (re)registers; a new registration starts fenced until the controller unfences."""

    TYPE: ClassVar[str] = "register_broker"
    broker_id: int
    incarnation_id: str
    broker_epoch: int
    http_url: str
    raft_address: str
    fenced: bool = True
    # Kafka's broker.rack (None: the broker has none); rack-aware placement reads it.
    rack: str | None = None
    # The advertised KAFKA listener (host:port) that Kafka's clients reach this broker at
    # (Metadata, DescribeCluster); None: the broker serves no Kafka listener.
    kafka_address: str | None = None

    def _validate(self) -> None:
        self._check_range("broker_id", 0, INT32_MAX)
        self._check_string("incarnation_id", INCARNATION_ID_LENGTH_MAX)
        self._check_range("broker_epoch", 0, INT64_MAX)
        self._check_string("http_url", URL_LENGTH_MAX)
        if not self.http_url.startswith(("http://", "https://")):
            self._fail(f"http_url must start with http:// or https://, got {self.http_url!r}")
        if self.raft_address:  # "": a broker-only node, which has no Raft port
            _check_host_port(self, "raft_address")
        if self.rack is not None:
            self._check_string("rack", CONFIG_VALUE_LENGTH_MAX)
        if self.kafka_address is not None:
            _check_host_port(self, "kafka_address")

    def to_json_dict(self) -> dict[str, Any]:
        # The rack and the Kafka address only when there is one, so a registration without
        # them keeps the bytes it had before they existed.
        out = super().to_json_dict()
        for name in ("rack", "kafka_address"):
            if out[name] is None:
                del out[name]
        return out


@dataclass(frozen=True)
class FenceBrokerRecord(MetadataRecord):
    """The broker's session ended: it may no longer lead partitions or join ISRs."""

    TYPE: ClassVar[str] = "fence_broker"
    broker_id: int
    broker_epoch: int

    def _validate(self) -> None:
        self._check_range("broker_id", 0, INT32_MAX)
        self._check_range("broker_epoch", 0, INT64_MAX)


@dataclass(frozen=True)
class UnfenceBrokerRecord(MetadataRecord):
    """The broker caught up and heartbeats: it may lead partitions again."""

    TYPE: ClassVar[str] = "unfence_broker"
    broker_id: int
    broker_epoch: int

    def _validate(self) -> None:
        self._check_range("broker_id", 0, INT32_MAX)
        self._check_range("broker_epoch", 0, INT64_MAX)


@dataclass(frozen=True)
class UnregisterBrokerRecord(MetadataRecord):
    """The broker's registration is removed (Kafka's UnregisterBrokerRecord): it leaves the
    cluster's brokers. Legal only while no partition lists it among its replicas. A broker
    process still running registers again on its next heartbeat, as Kafka's does."""

    TYPE: ClassVar[str] = "unregister_broker"
    broker_id: int
    broker_epoch: int

    def _validate(self) -> None:
        self._check_range("broker_id", 0, INT32_MAX)
        self._check_range("broker_epoch", 0, INT64_MAX)


@dataclass(frozen=True)
class TopicRecord(MetadataRecord):
    """A topic is created; its partitions follow as PartitionRecords, numbered from 0."""

    TYPE: ClassVar[str] = "topic"
    name: str
    topic_id: str

    def _validate(self) -> None:
        problem = topic_name_problem(self.name)
        if problem is not None:
            self._fail(problem)
        self._check_topic_id()


@dataclass(frozen=True)
class PartitionRecord(MetadataRecord):
    """A partition is created with its replicas, ISR, leader and epochs."""

    TYPE: ClassVar[str] = "partition"
    topic_id: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    # A move in progress (Kafka's KIP-455): the replicas being added and removed, both within
    # `replicas`, which is then the target followed by the removed ones.
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    def _validate(self) -> None:
        self._check_topic_id()
        self._check_range("partition", 0, INT32_MAX)
        self._check_ids("replicas", self.replicas, allow_empty=False)
        self._check_ids("isr", self.isr, allow_empty=True)
        if not set(self.isr) <= set(self.replicas):
            self._fail(f"isr {list(self.isr)} is not within replicas {list(self.replicas)}")
        if self.leader != NO_LEADER and self.leader not in self.isr:
            self._fail(f"leader {self.leader} is neither -1 nor in the isr {list(self.isr)}")
        self._check_range("leader_epoch", 0, INT32_MAX)
        self._check_range("partition_epoch", 0, INT32_MAX)
        _check_move(self, self.replicas, self.adding_replicas, self.removing_replicas)

    def to_json_dict(self) -> dict[str, Any]:
        # The move fields only while a move is on, so a partition that never moves keeps the
        # bytes it had before moves existed.
        return _without_empty_move(super().to_json_dict())


@dataclass(frozen=True)
class PartitionChangeRecord(MetadataRecord):
    """A change of a partition's leader (None = unchanged, -1 = none), ISR or replicas."""

    TYPE: ClassVar[str] = "partition_change"
    topic_id: str
    partition: int
    leader: int | None = None
    isr: tuple[int, ...] | None = None
    replicas: tuple[int, ...] | None = None
    # A move's replicas being added / removed (None = unchanged, () = no longer any).
    adding_replicas: tuple[int, ...] | None = None
    removing_replicas: tuple[int, ...] | None = None

    def _validate(self) -> None:
        self._check_topic_id()
        self._check_range("partition", 0, INT32_MAX)
        if (
            self.leader is None
            and self.isr is None
            and self.replicas is None
            and self.adding_replicas is None
            and self.removing_replicas is None
        ):
            self._fail("changes nothing (leader, isr, replicas and the move are all null)")
        if self.leader is not None:
            self._check_range("leader", NO_LEADER, INT32_MAX)
        if self.isr is not None:
            self._check_ids("isr", self.isr, allow_empty=True)
        if self.replicas is not None:
            self._check_ids("replicas", self.replicas, allow_empty=False)
        if self.replicas is not None and (
            self.adding_replicas is not None or self.removing_replicas is not None
        ):
            # Checkable here only when the record carries the replicas; the state checks the
            # rest against the partition's replicas.
            _check_move(
                self, self.replicas, self.adding_replicas or (), self.removing_replicas or ()
            )
        else:
            for name in ("adding_replicas", "removing_replicas"):
                ids = getattr(self, name)
                if ids is not None:
                    self._check_ids(name, ids, allow_empty=True)

    def to_json_dict(self) -> dict[str, Any]:
        # Unchanged move fields are left out: a node from before moves reads every other change.
        out = super().to_json_dict()
        for name in ("adding_replicas", "removing_replicas"):
            if out[name] is None:
                del out[name]
        return out


def _check_move(
    record: MetadataRecord,
    replicas: tuple[int, ...],
    adding: tuple[int, ...],
    removing: tuple[int, ...],
) -> None:
    """Kafka's PartitionRecord rule for a move: adding and removing replicas are distinct
    broker ids within the replicas, and no broker is both added and removed."""
    record._check_ids("adding_replicas", adding, allow_empty=True)
    record._check_ids("removing_replicas", removing, allow_empty=True)
    for name, ids in (("adding_replicas", adding), ("removing_replicas", removing)):
        if not set(ids) <= set(replicas):
            record._fail(f"{name} {list(ids)} is not within replicas {list(replicas)}")
    both = sorted(set(adding) & set(removing))
    if both:
        record._fail(f"brokers {both} are both adding and removing replicas")
    if removing and len(removing) == len(replicas):
        record._fail(f"removing_replicas {list(removing)} would leave no replica")


def _without_empty_move(out: dict[str, Any]) -> dict[str, Any]:
    for name in ("adding_replicas", "removing_replicas"):
        if not out[name]:
            del out[name]
    return out


@dataclass(frozen=True)
class RemoveTopicRecord(MetadataRecord):
    """A topic and all its partitions and configs are deleted."""

    TYPE: ClassVar[str] = "remove_topic"
    topic_id: str

    def _validate(self) -> None:
        self._check_topic_id()


@dataclass(frozen=True)
class ConfigRecord(MetadataRecord):
    """A config of a topic (by name) or a broker ("" = cluster default) is set or deleted."""

    TYPE: ClassVar[str] = "config"
    resource_type: Literal["topic", "broker"]
    resource_name: str
    name: str
    value: str | None

    def _validate(self) -> None:
        if self.resource_type == "topic":
            problem = topic_name_problem(self.resource_name)
            if problem is not None:
                self._fail(problem)
        elif self.resource_name != "" and not (
            self.resource_name.isascii()
            and self.resource_name.isdigit()
            and int(self.resource_name) <= INT32_MAX
        ):
            self._fail(f"a broker resource_name is '' or a broker id, got {self.resource_name!r}")
        self._check_string("name", CONFIG_NAME_LENGTH_MAX)
        if not _CONFIG_NAME_RE.fullmatch(self.name):
            self._fail(f"config name {self.name!r} may hold only [a-zA-Z0-9._-]")
        if self.value is not None:
            self._check_string("value", CONFIG_VALUE_LENGTH_MAX, allow_empty=True)


@dataclass(frozen=True)
class ProducerIdsRecord(MetadataRecord):
    """A block of producer ids is handed to a broker; the next block starts at next_producer_id."""

    TYPE: ClassVar[str] = "producer_ids"
    broker_id: int
    broker_epoch: int
    next_producer_id: int

    def _validate(self) -> None:
        self._check_range("broker_id", 0, INT32_MAX)
        self._check_range("broker_epoch", 0, INT64_MAX)
        self._check_range("next_producer_id", 0, INT64_MAX)


# -- ACLs (Kafka's StandardAuthorizer keeps them in the metadata log) ----------------------------

AclResourceType = Literal["TOPIC", "GROUP", "CLUSTER"]
AclPatternType = Literal["LITERAL", "PREFIXED"]
AclOperation = Literal[
    "ALL",
    "READ",
    "WRITE",
    "CREATE",
    "DELETE",
    "ALTER",
    "DESCRIBE",
    "DESCRIBE_CONFIGS",
    "ALTER_CONFIGS",
    "IDEMPOTENT_WRITE",
]
AclPermission = Literal["ALLOW", "DENY"]
ACL_OPERATIONS: tuple[str, ...] = get_args(AclOperation)
# The operations each resource type supports, as Kafka's AclEntry.supportedOperations (ALL is
# allowed on every type).
ACL_RESOURCE_OPERATIONS: dict[str, frozenset[str]] = {
    "TOPIC": frozenset(
        {"READ", "WRITE", "CREATE", "DESCRIBE", "DELETE", "ALTER", "DESCRIBE_CONFIGS"}
        | {"ALTER_CONFIGS"}
    ),
    "GROUP": frozenset({"READ", "DESCRIBE", "DELETE"}),
    "CLUSTER": frozenset(
        {"CREATE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "ALTER", "DESCRIBE"}
    ),
}
# Kafka's one cluster resource is named so (Resource.CLUSTER_NAME).
CLUSTER_RESOURCE_NAME = "kafka-cluster"
WILDCARD = "*"
_PRINCIPAL_LENGTH_MAX = 260  # "User:" and a user name of up to 255 characters
_GROUP_NAME_LENGTH_MAX = 255
_TOPIC_PREFIX_RE = re.compile(r"[a-zA-Z0-9._-]{1,249}")


@dataclass(frozen=True)
class AclRecord(MetadataRecord):
    """An ACL is created (Kafka's AccessControlEntryRecord): ``principal`` may do (ALLOW) or
    may not do (DENY) ``operation`` on the resources ``resource_type`` / ``resource_name`` /
    ``pattern_type`` match. LITERAL "*" matches every resource of the type; PREFIXED matches
    the names that start with ``resource_name``."""

    TYPE: ClassVar[str] = "acl"
    acl_id: str
    resource_type: AclResourceType
    resource_name: str
    pattern_type: AclPatternType
    principal: str
    host: Literal["*"]
    operation: AclOperation
    permission: AclPermission

    def _validate(self) -> None:
        problem = validate_topic_id(self.acl_id)
        if problem is not None:
            self._fail(problem.replace("topic id", "acl id"))
        kind, sep, name = self.principal.partition(":")
        if kind != "User" or not sep or not name:
            self._fail(f"principal must be User:name or User:*, got {self.principal!r}")
        self._check_string("principal", _PRINCIPAL_LENGTH_MAX)
        self._check_string("resource_name", _GROUP_NAME_LENGTH_MAX)
        problem = acl_resource_problem(self.resource_type, self.resource_name, self.pattern_type)
        if problem is not None:
            self._fail(problem)
        if self.operation != "ALL" and (
            self.operation not in ACL_RESOURCE_OPERATIONS[self.resource_type]
        ):
            self._fail(f"operation {self.operation} does not apply to a {self.resource_type}")

    def binding(self) -> tuple[str, str, str, str, str, str, str]:
        """What the ACL says, without its id: two ACLs that say the same are duplicates."""
        return (
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.principal,
            self.host,
            self.operation,
            self.permission,
        )


def acl_resource_problem(resource_type: str, name: str, pattern_type: str) -> str | None:
    """None when an ACL may name this resource, else what is wrong (Kafka's rules)."""
    if resource_type == "CLUSTER":
        if name != CLUSTER_RESOURCE_NAME or pattern_type != "LITERAL":
            return f"the cluster resource is the LITERAL {CLUSTER_RESOURCE_NAME!r}"
        return None
    if not name:
        return "the resource name must not be empty"
    if resource_type == "TOPIC":
        if pattern_type == "LITERAL" and name != WILDCARD:
            problem = topic_name_problem(name)
            if problem is not None:
                return problem
        elif pattern_type == "PREFIXED" and not _TOPIC_PREFIX_RE.fullmatch(name):
            return f"a topic prefix holds 1 to 249 of [a-zA-Z0-9._-], got {name!r}"
    return None


@dataclass(frozen=True)
class RemoveAclRecord(MetadataRecord):
    """An ACL is deleted (Kafka's RemoveAccessControlEntryRecord)."""

    TYPE: ClassVar[str] = "remove_acl"
    acl_id: str

    def _validate(self) -> None:
        problem = validate_topic_id(self.acl_id)
        if problem is not None:
            self._fail(problem.replace("topic id", "acl id"))


@dataclass(frozen=True)
class LeaderChangeRecord(MetadataRecord):
    """A node took over as the metadata quorum's leader (the controller): the first record
    it writes in its term (Kafka's LeaderChangeMessage). It changes no state; it puts the
    election in the log, where every node reads it in order with the changes around it."""

    TYPE: ClassVar[str] = "leader_change"
    leader_id: int

    def _validate(self) -> None:
        self._check_range("leader_id", 0, INT32_MAX)


@dataclass(frozen=True)
class RegisterControllerRecord(MetadataRecord):
    """A controller (a voter of the metadata quorum) says where it serves HTTP (Kafka's
    RegisterControllerRecord): any node, a broker-only one too, finds the active controller's
    URL here, even when that controller holds no partitions and so has no broker
    registration. The latest record of a controller id replaces the one before."""

    TYPE: ClassVar[str] = "register_controller"
    controller_id: int
    incarnation_id: str
    http_url: str
    raft_address: str
    # The controller's metadata log directory id (meta.properties directory.id, Kafka's voter
    # directory id): kraft-metadata-quorum remove-controller names a voter by id and this.
    directory_id: str | None = None

    def _validate(self) -> None:
        self._check_range("controller_id", 0, INT32_MAX)
        self._check_string("incarnation_id", INCARNATION_ID_LENGTH_MAX)
        self._check_string("http_url", URL_LENGTH_MAX)
        if not self.http_url.startswith(("http://", "https://")):
            self._fail(f"http_url must start with http:// or https://, got {self.http_url!r}")
        _check_host_port(self, "raft_address")
        if self.directory_id is not None:
            self._check_string("directory_id", INCARNATION_ID_LENGTH_MAX)

    def to_json_dict(self) -> dict[str, Any]:
        # The directory id only when known, so registrations without one keep their bytes.
        out = super().to_json_dict()
        if out["directory_id"] is None:
            del out["directory_id"]
        return out


@dataclass(frozen=True)
class NoOpRecord(MetadataRecord):
    """Changes nothing; a controller writes it to learn that its term still commits."""

    TYPE: ClassVar[str] = "no_op"


RECORD_TYPES: dict[str, type[MetadataRecord]] = {
    cls.TYPE: cls
    for cls in (
        RegisterBrokerRecord,
        FenceBrokerRecord,
        UnfenceBrokerRecord,
        UnregisterBrokerRecord,
        TopicRecord,
        PartitionRecord,
        PartitionChangeRecord,
        RemoveTopicRecord,
        ConfigRecord,
        ProducerIdsRecord,
        AclRecord,
        RemoveAclRecord,
        LeaderChangeRecord,
        RegisterControllerRecord,
        NoOpRecord,
    )
}


# ---------------------------------------------------------------------------------------------
# Encoding and decoding of one entry
# ---------------------------------------------------------------------------------------------


def encode(records: Sequence[MetadataRecord]) -> bytes:
    """The bytes of one entry holding `records`, in order.

    Raises MetadataRecordError for an empty or oversized entry or a non-record.
    """
    if not 1 <= len(records) <= ENTRY_RECORDS_COUNT_MAX:
        raise MetadataRecordError(
            f"an entry holds 1 to {ENTRY_RECORDS_COUNT_MAX} records, got {len(records)}"
        )
    objects = []
    for record in records:
        if not isinstance(record, MetadataRecord) or type(record).TYPE not in RECORD_TYPES:
            raise MetadataRecordError(f"not a metadata record: {record!r}")
        objects.append(record.to_json_dict())
    data = orjson.dumps({"v": ENTRY_VERSION, "records": objects})
    if len(data) > ENTRY_BYTES_MAX:
        raise MetadataRecordError(
            f"the entry is {len(data)} bytes, more than the {ENTRY_BYTES_MAX} allowed"
        )
    return data


def decode(data: bytes) -> list[MetadataRecord]:
    """The records of one entry, in order; MetadataRecordError for anything malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MetadataRecordError(f"an entry is bytes, got {type(data).__name__}")
    if len(data) > ENTRY_BYTES_MAX:
        raise MetadataRecordError(f"the entry is {len(data)} bytes, more than {ENTRY_BYTES_MAX}")
    try:
        top = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise MetadataRecordError(f"an entry is a JSON object, got invalid JSON: {e}") from None
    if type(top) is not dict or set(top) != {"v", "records"}:
        raise MetadataRecordError('an entry is an object {"v": 1, "records": [...]}')
    version = top["v"]
    if type(version) is not int or version < 1:
        raise MetadataRecordError(f"entry version must be a positive integer, got {version!r}")
    if version > ENTRY_VERSION:
        raise MetadataRecordError(
            f"entry version {version} is newer than this node's ({ENTRY_VERSION})"
        )
    items = top["records"]
    if type(items) is not list or not 1 <= len(items) <= ENTRY_RECORDS_COUNT_MAX:
        raise MetadataRecordError(
            f"records must be a list of 1 to {ENTRY_RECORDS_COUNT_MAX} records"
        )
    return [_decode_record(position, item) for position, item in enumerate(items)]


def _decode_record(position: int, item: Any) -> MetadataRecord:
    where = f"record {position}"
    if type(item) is not dict:
        raise MetadataRecordError(f"{where} must be an object, got {item!r}")
    type_name = item.get("type")
    cls = RECORD_TYPES.get(type_name) if type(type_name) is str else None
    if cls is None:
        raise MetadataRecordError(f"{where} has an unknown type {type_name!r}")
    where = f"{where} ({type_name})"
    version = item.get("v")
    if type(version) is not int or version < 1:
        raise MetadataRecordError(f"{where} version must be a positive integer, got {version!r}")
    if version > cls.VERSION:
        raise MetadataRecordError(
            f"{where} version {version} is newer than this node's ({cls.VERSION})"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in item.items():
        if key in ("type", "v"):
            continue
        if key not in fields:
            raise MetadataRecordError(f"{where} has an unknown field {key!r}")
        kwargs[key] = tuple(value) if type(value) is list else value
    for name, field in fields.items():
        missing_default = (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )
        if name not in kwargs and missing_default:
            raise MetadataRecordError(f"{where} lacks the field {name!r}")
    try:
        return cls(**kwargs)
    except MetadataRecordError as e:
        raise MetadataRecordError(f"{where}: {e}") from None
