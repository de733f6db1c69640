"""Kafka's records of the internal topic ``__consumer_offsets``, byte for byte (Kafka 4.4).

The group coordinator stores committed offsets, consumer-group state (KIP-848) and classic
groups (JoinGroup/SyncGroup) as records of ``__consumer_offsets``; a record's key says what
it is about and its value the latest state (a null value, a tombstone, deletes it). The bytes
are Kafka's own, so Kafka's ``kafka-dump-log --offsets-decoder`` decodes our segments (as
does ours, ``kraft-dump-log --offsets-decoder``: :mod:`storage.offsets_decoder`). Source of
truth: Kafka's message schemas (``group-coordinator/src/main/resources/common/message/*.json``)
and its serde (``CoordinatorRecordSerde``), checked against the 4.4.0 jars.

Every record, all integers big-endian::

    key    int16 record type, then the key's fields (key schemas are not flexible)
    value  int16 value version, then the value's fields; absent (null) for a tombstone

The kinds of field (string, compact string, compact array, uuid, tagged fields) are described
in :mod:`storage.group_wire`, which writes and reads them.

The records this module knows (record type: key fields -> value version: value fields)::

    1 OffsetCommit       group string, topic string, partition int32
        value v4 (written; v0-v3 read):
            offset int64, leader_epoch int32, metadata compact string,
            commit_timestamp int64, tags {0: topic_id uuid, omitted when zero}
        v3: offset int64, leader_epoch int32, metadata string, commit_timestamp int64
        v1: offset int64, metadata string, commit_timestamp int64, expire_timestamp int64
        v0, v2: offset int64, metadata string, commit_timestamp int64
    2 GroupMetadata (a classic group)     group string
        value v3 (written, as Kafka 4.4 writes it; v0-v2 and v4 read):
            protocol_type string, generation int32, protocol string|null,
            leader string|null, current_state_timestamp int64 (v2+; -1 = none),
            members array of {member_id string, group_instance_id string|null (v3+),
                client_id string, client_host string, rebalance_timeout int32 (v1+),
                session_timeout int32, subscription bytes, assignment bytes}
        v4 is v3 in the flexible encoding: compact strings, bytes and arrays, and a tagged-field
        section after each member and after the value.
    3 ConsumerGroupMetadata     group string
        value v0: epoch int32, tags {0: metadata_hash int64, omitted when 0}
    5 ConsumerGroupMemberMetadata     group string, member_id string
        value v0: instance_id compact string|null, rack_id compact string|null,
            client_id compact string, client_host compact string,
            subscribed_topic_names compact array of compact string,
            subscribed_topic_regex compact string|null, rebalance_timeout_ms int32,
            server_assignor compact string|null,
            tags {0: classic_member_metadata, a nullable struct: Kafka 4.4 always writes it,
                  as the single byte 0x00 (null) for a member of the consumer protocol;
                  10000: session_timeout_ms int32 (ours, see SESSION_TIMEOUT_TAG)}
    6 ConsumerGroupTargetAssignmentMetadata     group string
        value v0: assignment_epoch int32, tags {0: assignment_timestamp int64, omitted when 0}
    7 ConsumerGroupTargetAssignmentMember     group string, member_id string
        value v0: topic_partitions compact array of {topic_id uuid,
            partitions compact array of int32, tags {}}
    8 ConsumerGroupCurrentMemberAssignment     group string, member_id string
        value v0: member_epoch int32, previous_member_epoch int32, state int8 (MemberState),
            assigned_partitions, partitions_pending_revocation: each a compact array of
            {topic_id uuid, partitions compact array of int32,
             tags {0: assignment_epochs compact array of int32 (KIP-1251; skipped here)}}

Every flexible value ends with its own tagged-field section (empty: one byte 0x00).

The other record types (0 legacy offset commit, 4 the deprecated partition metadata, share
and streams groups, regular expressions) are not this module's: :func:`decode` returns None
for them and the coordinator skips them, as Kafka's loader skips the types it does not know.

The writer (:func:`encode_key`, :func:`encode_value`) and the reader (:func:`decode`) are
separate; the reader raises one error, :class:`GroupRecordError`, for any bytes it cannot
parse, saying what it expected, what it found and at which byte. It never allocates more than
the bytes in hand could hold: a count larger than the bytes left is corruption.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from storage.group_wire import (
    INT8,
    INT16,
    INT32,
    INT64,
    STRING_BYTES_MAX,
    GroupRecordError,
    Reader,
    byte_string,
    compact_string,
    guarded,
    nullable_string,
    string,
    tagged_fields,
    uvarint,
)
from storage.ids import UUID_BYTES, ZERO_UUID, is_valid_uuid, uuid_from_string, uuid_to_string

# GroupRecordError is the reader's error (storage.group_wire); it is part of this interface.
__all__ = [
    "Assignment",
    "ClassicGroupKey",
    "ClassicGroupValue",
    "ClassicMemberMetadata",
    "CurrentAssignmentKey",
    "CurrentAssignmentValue",
    "GroupKey",
    "GroupMetadataKey",
    "GroupMetadataValue",
    "GroupRecordError",
    "GroupValue",
    "MemberMetadataKey",
    "MemberMetadataValue",
    "MemberState",
    "OffsetCommitKey",
    "OffsetCommitValue",
    "TargetAssignmentMemberKey",
    "TargetAssignmentMemberValue",
    "TargetAssignmentMetadataKey",
    "TargetAssignmentMetadataValue",
    "decode",
    "encode_key",
    "encode_value",
]

# Record types: the int16 that starts a key (Kafka's CoordinatorRecordType).
OFFSET_COMMIT = 1
CLASSIC_GROUP_METADATA = 2
CONSUMER_GROUP_METADATA = 3
CONSUMER_GROUP_MEMBER_METADATA = 5
CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA = 6
CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER = 7
CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT = 8
KNOWN_RECORD_TYPES = frozenset(
    {
        OFFSET_COMMIT,
        CLASSIC_GROUP_METADATA,
        CONSUMER_GROUP_METADATA,
        CONSUMER_GROUP_MEMBER_METADATA,
        CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
        CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
        CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
    }
)

# The value versions Kafka 4.4 writes (GroupCoordinatorRecordHelpers): offset commits as v4,
# the first flexible version (v1 only when an expire timestamp is given, which the consumer
# protocol never does); every consumer-group value as v0.
OFFSET_COMMIT_VALUE_VERSION = 4
CONSUMER_GROUP_VALUE_VERSION = 0
# Offset commit value versions Kafka's loader still reads, from older brokers' logs.
OFFSET_COMMIT_VALUE_VERSIONS = range(0, 5)
# A classic group's value: Kafka 4.4 writes v3 (MetadataVersion.groupMetadataValueVersion, "the
# highest non-flexible version until a tagged field is introduced") and reads v0-v4.
CLASSIC_GROUP_VALUE_VERSION = 3
CLASSIC_GROUP_VALUE_VERSIONS = range(0, 5)
CLASSIC_GROUP_FLEXIBLE_FROM = 4
# Kafka's default for fields a version lacks: no rebalance timeout (v0), no state timestamp (v0-1).
NO_TIMEOUT = -1
NO_TIMESTAMP = -1
# A classic member at its smallest (flexible v4: four empty compact strings or nulls, two
# int32s, two empty compact byte strings, an empty tag section); the older versions are longer.
_CLASSIC_MEMBER_BYTES_MIN = 4 + 4 + 4 + 2 + 1

# Kafka's tags.
OFFSET_COMMIT_TOPIC_ID_TAG = 0
METADATA_HASH_TAG = 0
CLASSIC_MEMBER_METADATA_TAG = 0
ASSIGNMENT_TIMESTAMP_TAG = 0
# Our own tag in ConsumerGroupMemberMetadataValue: the member's session timeout. Kafka's
# consumer protocol takes it from the group's config, so Kafka's schema has no field for it;
# our members choose theirs at join (groups_contract.md) and it must survive a coordinator
# move. Kafka numbers a struct's tags from 0 up (this one uses only 0), so 10000 stays clear of
# any tag a later Kafka adds; Kafka's readers keep a tag they do not know aside, unread.
SESSION_TIMEOUT_TAG = 10000
NO_SESSION_TIMEOUT = -1

NO_LEADER_EPOCH = -1

# A topic partitions entry at its smallest: uuid, an empty compact array, no tagged fields.
_TOPIC_PARTITIONS_BYTES_MIN = UUID_BYTES + 1 + 1


class MemberState(enum.IntEnum):
    """A member's reconciliation state (Kafka's ``modern.MemberState``, its int8 codes)."""

    STABLE = 0  # owns its whole target assignment
    UNREVOKED_PARTITIONS = 1  # must give up partitions before it gets more
    UNRELEASED_PARTITIONS = 2  # waits for partitions other members still own
    UNKNOWN = 127  # Kafka's code for a state it cannot name


# ((topic id, partitions ascending), ...), ascending by topic id. A topic id is the
# 22-character form of Kafka's Uuid.
Assignment = tuple[tuple[str, tuple[int, ...]], ...]


def _check_int(name: str, value: int, bits: int) -> None:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int{bits} ({low}..{high}), got {value!r}")


def _check_string(name: str, value: str | None, *, nullable: bool = False) -> None:
    if value is None:
        if nullable:
            return
        raise ValueError(f"{name} must be a string, got None")
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} is not encodable as UTF-8: {exc}") from None
    if size > STRING_BYTES_MAX:
        raise ValueError(f"{name} is {size} bytes of UTF-8, more than {STRING_BYTES_MAX}")


def _check_topic_id(name: str, value: str) -> None:
    if not is_valid_uuid(value):
        raise ValueError(f"{name} must be a 22-character topic id, got {value!r}")


def _check_assignment(name: str, value: Assignment) -> None:
    if not isinstance(value, tuple):
        raise ValueError(f"{name} must be a tuple of (topic id, partitions), got {value!r}")
    previous: str | None = None
    for entry in value:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], tuple)):
            raise ValueError(
                f"{name}: each entry is (topic id, tuple of partitions), got {entry!r}"
            )
        topic_id, partitions = entry
        _check_topic_id(f"{name} topic id", topic_id)
        if previous is not None and topic_id <= previous:
            raise ValueError(f"{name}: topic ids must be unique and ascending, got {value!r}")
        previous = topic_id
        for p in partitions:
            _check_int(f"{name} partition", p, 32)
            if p < 0:
                raise ValueError(f"{name}: partition {p} of {topic_id} is negative")
        if any(a >= b for a, b in zip(partitions, partitions[1:], strict=False)):
            raise ValueError(f"{name}: partitions of {topic_id} must be unique and ascending")


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OffsetCommitKey:
    """The committed offset of ``group`` for one partition (record type 1)."""

    group: str
    topic: str
    partition: int

    def __post_init__(self) -> None:
        _check_string("group", self.group)
        _check_string("topic", self.topic)
        _check_int("partition", self.partition, 32)


@dataclass(frozen=True)
class ClassicGroupKey:
    """A classic group: its generation, members and assignment (Kafka's GroupMetadataKey,
    record type 2)."""

    group: str

    def __post_init__(self) -> None:
        _check_string("group", self.group)


@dataclass(frozen=True)
class GroupMetadataKey:
    """A consumer group's epoch (Kafka's ConsumerGroupMetadataKey, record type 3)."""

    group: str

    def __post_init__(self) -> None:
        _check_string("group", self.group)


@dataclass(frozen=True)
class MemberMetadataKey:
    """A member's subscription and settings (ConsumerGroupMemberMetadataKey, type 5)."""

    group: str
    member_id: str

    def __post_init__(self) -> None:
        _check_string("group", self.group)
        _check_string("member_id", self.member_id)


@dataclass(frozen=True)
class TargetAssignmentMetadataKey:
    """The epoch of a group's target assignment (type 6)."""

    group: str

    def __post_init__(self) -> None:
        _check_string("group", self.group)


@dataclass(frozen=True)
class TargetAssignmentMemberKey:
    """One member's part of the target assignment (type 7)."""

    group: str
    member_id: str

    def __post_init__(self) -> None:
        _check_string("group", self.group)
        _check_string("member_id", self.member_id)


@dataclass(frozen=True)
class CurrentAssignmentKey:
    """What one member owns now (ConsumerGroupCurrentMemberAssignmentKey, type 8)."""

    group: str
    member_id: str

    def __post_init__(self) -> None:
        _check_string("group", self.group)
        _check_string("member_id", self.member_id)


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OffsetCommitValue:
    """A committed offset: the next offset the group reads. ``topic_id`` None = not recorded
    (Kafka's zero uuid)."""

    offset: int
    leader_epoch: int  # NO_LEADER_EPOCH = none
    metadata: str
    commit_timestamp_ms: int
    topic_id: str | None = None

    def __post_init__(self) -> None:
        _check_int("offset", self.offset, 64)
        _check_int("leader_epoch", self.leader_epoch, 32)
        _check_string("metadata", self.metadata)
        _check_int("commit_timestamp_ms", self.commit_timestamp_ms, 64)
        if self.topic_id is not None:
            _check_topic_id("topic_id", self.topic_id)
            if self.topic_id == ZERO_UUID:
                raise ValueError("topic_id: the zero uuid means none; pass None")


@dataclass(frozen=True)
class ClassicMemberMetadata:
    """One member of a classic group as stored (GroupMetadataValue.MemberMetadata):
    ``subscription`` is its metadata for the group's protocol, ``assignment`` what the leader
    gave it, both opaque bytes (the embedded consumer protocol when the protocol type is
    "consumer"). ``rebalance_timeout_ms`` NO_TIMEOUT: not recorded (v0)."""

    member_id: str
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes
    group_instance_id: str | None = None

    def __post_init__(self) -> None:
        _check_string("member_id", self.member_id)
        _check_string("client_id", self.client_id)
        _check_string("client_host", self.client_host)
        _check_int("rebalance_timeout_ms", self.rebalance_timeout_ms, 32)
        _check_int("session_timeout_ms", self.session_timeout_ms, 32)
        for name, raw in (("subscription", self.subscription), ("assignment", self.assignment)):
            if not isinstance(raw, bytes):
                raise ValueError(f"{name} must be bytes, got {type(raw).__name__}")
        _check_string("group_instance_id", self.group_instance_id, nullable=True)


@dataclass(frozen=True)
class ClassicGroupValue:
    """A classic group as Kafka persists it: once a generation's assignment is stored, and
    when the group becomes empty. ``protocol`` and ``leader`` are None in an empty group;
    ``current_state_timestamp_ms`` is wall-clock ms of the last state change (NO_TIMESTAMP:
    not recorded)."""

    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp_ms: int
    members: tuple[ClassicMemberMetadata, ...]

    def __post_init__(self) -> None:
        _check_string("protocol_type", self.protocol_type)
        _check_int("generation", self.generation, 32)
        _check_string("protocol", self.protocol, nullable=True)
        _check_string("leader", self.leader, nullable=True)
        _check_int("current_state_timestamp_ms", self.current_state_timestamp_ms, 64)
        # A member id twice is not refused: Kafka's loader keeps the last, and so does ours.
        if not isinstance(self.members, tuple):
            raise ValueError(f"members must be a tuple, got {self.members!r}")


@dataclass(frozen=True)
class GroupMetadataValue:
    """A group's epoch; ``metadata_hash`` is Kafka's hash of the subscribed topics (KIP-1101),
    0 = not computed."""

    epoch: int
    metadata_hash: int = 0

    def __post_init__(self) -> None:
        _check_int("epoch", self.epoch, 32)
        _check_int("metadata_hash", self.metadata_hash, 64)


@dataclass(frozen=True)
class MemberMetadataValue:
    """A member's subscription and settings. ``session_timeout_ms`` is ours (a tagged field
    Kafka skips); NO_SESSION_TIMEOUT (-1) when the record does not carry it."""

    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    server_assignor: str | None
    rebalance_timeout_ms: int
    session_timeout_ms: int
    instance_id: str | None = None
    rack_id: str | None = None
    subscribed_topic_regex: str | None = None

    def __post_init__(self) -> None:
        _check_string("client_id", self.client_id)
        _check_string("client_host", self.client_host)
        if not isinstance(self.subscribed_topic_names, tuple):
            raise ValueError(
                f"subscribed_topic_names must be a tuple, got {self.subscribed_topic_names!r}"
            )
        for name in self.subscribed_topic_names:
            _check_string("subscribed topic name", name)
        _check_string("server_assignor", self.server_assignor, nullable=True)
        _check_int("rebalance_timeout_ms", self.rebalance_timeout_ms, 32)
        _check_int("session_timeout_ms", self.session_timeout_ms, 32)
        if self.session_timeout_ms < NO_SESSION_TIMEOUT:
            raise ValueError(f"session_timeout_ms must be >= -1, got {self.session_timeout_ms}")
        _check_string("instance_id", self.instance_id, nullable=True)
        _check_string("rack_id", self.rack_id, nullable=True)
        _check_string("subscribed_topic_regex", self.subscribed_topic_regex, nullable=True)


@dataclass(frozen=True)
class TargetAssignmentMetadataValue:
    """The epoch of the target assignment; ``assignment_timestamp_ms`` 0 = not recorded."""

    assignment_epoch: int
    assignment_timestamp_ms: int = 0

    def __post_init__(self) -> None:
        _check_int("assignment_epoch", self.assignment_epoch, 32)
        _check_int("assignment_timestamp_ms", self.assignment_timestamp_ms, 64)


@dataclass(frozen=True)
class TargetAssignmentMemberValue:
    """The partitions the target assignment gives one member."""

    partitions: Assignment

    def __post_init__(self) -> None:
        _check_assignment("partitions", self.partitions)


@dataclass(frozen=True)
class CurrentAssignmentValue:
    """What a member owns now and what it must give up."""

    member_epoch: int
    previous_member_epoch: int
    state: MemberState
    assigned: Assignment
    pending_revocation: Assignment

    def __post_init__(self) -> None:
        _check_int("member_epoch", self.member_epoch, 32)
        _check_int("previous_member_epoch", self.previous_member_epoch, 32)
        if not isinstance(self.state, MemberState):
            raise ValueError(f"state must be a MemberState, got {self.state!r}")
        _check_assignment("assigned", self.assigned)
        _check_assignment("pending_revocation", self.pending_revocation)


GroupKey = (
    OffsetCommitKey
    | ClassicGroupKey
    | GroupMetadataKey
    | MemberMetadataKey
    | TargetAssignmentMetadataKey
    | TargetAssignmentMemberKey
    | CurrentAssignmentKey
)
GroupValue = (
    OffsetCommitValue
    | ClassicGroupValue
    | GroupMetadataValue
    | MemberMetadataValue
    | TargetAssignmentMetadataValue
    | TargetAssignmentMemberValue
    | CurrentAssignmentValue
)

# --- writer -----------------------------------------------------------------------------------


def _topic_partitions(assignment: Assignment) -> bytes:
    out = bytearray(uvarint(len(assignment) + 1))
    for topic_id, partitions in assignment:
        out += uuid_from_string(topic_id)
        out += uvarint(len(partitions) + 1)
        out += b"".join(INT32.pack(p) for p in partitions)
        out += b"\x00"  # no tagged fields (Kafka's assignment_epochs are not ours to write)
    return bytes(out)


def _classic_group_v3(value: ClassicGroupValue) -> bytes:
    out = bytearray()
    out += string(value.protocol_type)
    out += INT32.pack(value.generation)
    out += nullable_string(value.protocol)
    out += nullable_string(value.leader)
    out += INT64.pack(value.current_state_timestamp_ms)
    out += INT32.pack(len(value.members))
    for m in value.members:
        out += string(m.member_id)
        out += nullable_string(m.group_instance_id)
        out += string(m.client_id)
        out += string(m.client_host)
        out += INT32.pack(m.rebalance_timeout_ms)
        out += INT32.pack(m.session_timeout_ms)
        out += byte_string(m.subscription)
        out += byte_string(m.assignment)
    return bytes(out)


def encode_key(key: GroupKey) -> bytes:
    """The key bytes of ``key``: its int16 record type, then its fields."""
    match key:
        case OffsetCommitKey():
            return (
                INT16.pack(OFFSET_COMMIT)
                + string(key.group)
                + string(key.topic)
                + INT32.pack(key.partition)
            )
        case ClassicGroupKey():
            return INT16.pack(CLASSIC_GROUP_METADATA) + string(key.group)
        case GroupMetadataKey():
            return INT16.pack(CONSUMER_GROUP_METADATA) + string(key.group)
        case MemberMetadataKey():
            return (
                INT16.pack(CONSUMER_GROUP_MEMBER_METADATA)
                + string(key.group)
                + string(key.member_id)
            )
        case TargetAssignmentMetadataKey():
            return INT16.pack(CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA) + string(key.group)
        case TargetAssignmentMemberKey():
            return (
                INT16.pack(CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER)
                + string(key.group)
                + string(key.member_id)
            )
        case CurrentAssignmentKey():
            return (
                INT16.pack(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT)
                + string(key.group)
                + string(key.member_id)
            )
    raise TypeError(f"not a __consumer_offsets key: {key!r}")


def encode_value(value: GroupValue | None) -> bytes | None:
    """The value bytes of ``value`` in the version Kafka 4.4 writes; None (a tombstone) for
    None."""
    match value:
        case None:
            return None
        case OffsetCommitValue():
            tags = []
            if value.topic_id is not None:
                tags.append((OFFSET_COMMIT_TOPIC_ID_TAG, uuid_from_string(value.topic_id)))
            return (
                INT16.pack(OFFSET_COMMIT_VALUE_VERSION)
                + INT64.pack(value.offset)
                + INT32.pack(value.leader_epoch)
                + compact_string(value.metadata)
                + INT64.pack(value.commit_timestamp_ms)
                + tagged_fields(tags)
            )
        case ClassicGroupValue():
            return INT16.pack(CLASSIC_GROUP_VALUE_VERSION) + _classic_group_v3(value)
        case GroupMetadataValue():
            tags = []
            if value.metadata_hash != 0:
                tags.append((METADATA_HASH_TAG, INT64.pack(value.metadata_hash)))
            return (
                INT16.pack(CONSUMER_GROUP_VALUE_VERSION)
                + INT32.pack(value.epoch)
                + tagged_fields(tags)
            )
        case MemberMetadataValue():
            # Kafka reads an absent classic_member_metadata as a non-null empty struct (a
            # member of the classic protocol), so it is written as null, as Kafka writes it.
            tags = [(CLASSIC_MEMBER_METADATA_TAG, b"\x00")]
            if value.session_timeout_ms != NO_SESSION_TIMEOUT:
                tags.append((SESSION_TIMEOUT_TAG, INT32.pack(value.session_timeout_ms)))
            names = b"".join(compact_string(n) for n in value.subscribed_topic_names)
            return (
                INT16.pack(CONSUMER_GROUP_VALUE_VERSION)
                + compact_string(value.instance_id)
                + compact_string(value.rack_id)
                + compact_string(value.client_id)
                + compact_string(value.client_host)
                + uvarint(len(value.subscribed_topic_names) + 1)
                + names
                + compact_string(value.subscribed_topic_regex)
                + INT32.pack(value.rebalance_timeout_ms)
                + compact_string(value.server_assignor)
                + tagged_fields(tags)
            )
        case TargetAssignmentMetadataValue():
            tags = []
            if value.assignment_timestamp_ms != 0:
                tags.append((ASSIGNMENT_TIMESTAMP_TAG, INT64.pack(value.assignment_timestamp_ms)))
            return (
                INT16.pack(CONSUMER_GROUP_VALUE_VERSION)
                + INT32.pack(value.assignment_epoch)
                + tagged_fields(tags)
            )
        case TargetAssignmentMemberValue():
            return (
                INT16.pack(CONSUMER_GROUP_VALUE_VERSION)
                + _topic_partitions(value.partitions)
                + tagged_fields([])
            )
        case CurrentAssignmentValue():
            return (
                INT16.pack(CONSUMER_GROUP_VALUE_VERSION)
                + INT32.pack(value.member_epoch)
                + INT32.pack(value.previous_member_epoch)
                + INT8.pack(value.state)
                + _topic_partitions(value.assigned)
                + _topic_partitions(value.pending_revocation)
                + tagged_fields([])
            )
    raise TypeError(f"not a __consumer_offsets value: {value!r}")


# --- reader -----------------------------------------------------------------------------------


def _read_topic_partitions(r: Reader, what: str) -> Assignment:
    count = r.compact_count(what, _TOPIC_PARTITIONS_BYTES_MIN)
    by_topic: dict[str, tuple[int, ...]] = {}
    for _ in range(count):
        at = r.pos
        topic_id = r.uuid(f"a topic id of {what}")
        n = r.compact_count(f"the partitions of {topic_id} in {what}", INT32.size)
        partitions = tuple(r.fixed(INT32, f"a partition of {topic_id} in {what}") for _ in range(n))
        # Kafka's assignment_epochs (tag 0) and any later tag: not kept here.
        r.tagged(f"a topic of {what}")
        if topic_id in by_topic:
            raise r.fail(f"each topic once in {what}", f"{topic_id} twice", at)
        ordered = tuple(sorted(partitions))  # Kafka writes them in a Set's order
        if len(set(ordered)) != len(ordered) or (ordered and ordered[0] < 0):
            raise r.fail(
                f"distinct partition ids >= 0 of {topic_id} in {what}",
                str(list(partitions)),
                at,
            )
        by_topic[topic_id] = ordered
    return tuple(sorted(by_topic.items()))


def _read_key(r: Reader, record_type: int) -> GroupKey:
    if record_type == OFFSET_COMMIT:
        group = r.string("group")
        topic = r.string("topic")
        return OffsetCommitKey(group, topic, r.fixed(INT32, "partition"))
    if record_type == CLASSIC_GROUP_METADATA:
        return ClassicGroupKey(r.string("group"))
    if record_type == CONSUMER_GROUP_METADATA:
        return GroupMetadataKey(r.string("group"))
    if record_type == CONSUMER_GROUP_MEMBER_METADATA:
        return MemberMetadataKey(r.string("group"), r.string("member id"))
    if record_type == CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA:
        return TargetAssignmentMetadataKey(r.string("group"))
    if record_type == CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER:
        return TargetAssignmentMemberKey(r.string("group"), r.string("member id"))
    assert record_type == CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT, record_type
    return CurrentAssignmentKey(r.string("group"), r.string("member id"))


def _read_offset_commit(r: Reader, version: int) -> OffsetCommitValue:
    offset = r.fixed(INT64, "offset")
    leader_epoch = r.fixed(INT32, "leader epoch") if version >= 3 else NO_LEADER_EPOCH
    if version >= 4:
        metadata = r.compact_string("metadata")
    else:
        metadata = r.string("metadata")
    commit_timestamp = r.fixed(INT64, "commit timestamp")
    topic_id: str | None = None
    if version == 1:
        r.fixed(INT64, "expire timestamp")  # Kafka's pre-2.1 retention; not ours to keep
    if version >= 4:
        tags = r.tagged("the offset commit")
        if OFFSET_COMMIT_TOPIC_ID_TAG in tags:
            at, data = tags[OFFSET_COMMIT_TOPIC_ID_TAG]
            if len(data) != UUID_BYTES:
                raise r.fail(f"{UUID_BYTES} bytes of topic id (tag 0)", f"{len(data)} bytes", at)
            topic_id = uuid_to_string(data)
            if topic_id == ZERO_UUID:
                topic_id = None
    return OffsetCommitValue(offset, leader_epoch, metadata, commit_timestamp, topic_id)


def _read_member_metadata(r: Reader) -> MemberMetadataValue:
    instance_id = r.compact_nullable_string("instance id")
    rack_id = r.compact_nullable_string("rack id")
    client_id = r.compact_string("client id")
    client_host = r.compact_string("client host")
    count = r.compact_count("subscribed topic names", 1)
    names = tuple(r.compact_string("a subscribed topic name") for _ in range(count))
    regex = r.compact_nullable_string("subscribed topic regex")
    rebalance_timeout_ms = r.fixed(INT32, "rebalance timeout")
    server_assignor = r.compact_nullable_string("server assignor")
    # Kafka's classic_member_metadata (tag 0) describes classic-protocol members of a consumer
    # group (Kafka's mixed groups), which this coordinator does not have: skipped like any tag
    # not ours.
    tags = r.tagged("the member metadata")
    session_timeout_ms = r.tag_int(
        tags, SESSION_TIMEOUT_TAG, INT32, "session timeout", NO_SESSION_TIMEOUT
    )
    if session_timeout_ms < NO_SESSION_TIMEOUT:
        raise r.fail(
            "a session timeout >= -1", str(session_timeout_ms), tags[SESSION_TIMEOUT_TAG][0]
        )
    return MemberMetadataValue(
        client_id=client_id,
        client_host=client_host,
        subscribed_topic_names=names,
        server_assignor=server_assignor,
        rebalance_timeout_ms=rebalance_timeout_ms,
        session_timeout_ms=session_timeout_ms,
        instance_id=instance_id,
        rack_id=rack_id,
        subscribed_topic_regex=regex,
    )


def _read_current_assignment(r: Reader) -> CurrentAssignmentValue:
    member_epoch = r.fixed(INT32, "member epoch")
    previous = r.fixed(INT32, "previous member epoch")
    at = r.pos
    code = r.fixed(INT8, "member state")
    try:
        state = MemberState(code)
    except ValueError:
        codes = ", ".join(f"{s.value} ({s.name})" for s in MemberState)
        raise r.fail(f"a member state code: {codes}", str(code), at) from None
    assigned = _read_topic_partitions(r, "assigned partitions")
    pending = _read_topic_partitions(r, "partitions pending revocation")
    r.tagged("the current assignment")
    return CurrentAssignmentValue(member_epoch, previous, state, assigned, pending)


def _read_classic_group(r: Reader, version: int) -> ClassicGroupValue:
    flexible = version >= CLASSIC_GROUP_FLEXIBLE_FROM

    def text(what: str) -> str:
        return r.compact_string(what) if flexible else r.string(what)

    def nullable(what: str) -> str | None:
        return r.compact_nullable_string(what) if flexible else r.nullable_string(what)

    def raw(what: str) -> bytes:
        return r.compact_bytes(what) if flexible else r.byte_string(what)

    protocol_type = text("protocol type")
    generation = r.fixed(INT32, "generation")
    protocol = nullable("protocol")
    leader = nullable("leader")
    stamp = r.fixed(INT64, "current state timestamp") if version >= 2 else NO_TIMESTAMP
    if flexible:
        count = r.compact_count("members", _CLASSIC_MEMBER_BYTES_MIN)
    else:
        count = r.array_count("members", _CLASSIC_MEMBER_BYTES_MIN)
    members = []
    for _ in range(count):
        member_id = text("member id")
        instance_id = nullable("group instance id") if version >= 3 else None
        client_id = text("client id")
        client_host = text("client host")
        rebalance = r.fixed(INT32, "rebalance timeout") if version >= 1 else NO_TIMEOUT
        session = r.fixed(INT32, "session timeout")
        subscription = raw("subscription")
        assignment = raw("assignment")
        if flexible:
            r.tagged("a member")
        members.append(
            ClassicMemberMetadata(
                member_id=member_id,
                client_id=client_id,
                client_host=client_host,
                rebalance_timeout_ms=rebalance,
                session_timeout_ms=session,
                subscription=subscription,
                assignment=assignment,
                group_instance_id=instance_id,
            )
        )
    if flexible:
        r.tagged("the group metadata")
    return ClassicGroupValue(protocol_type, generation, protocol, leader, stamp, tuple(members))


def _read_value(r: Reader, record_type: int) -> GroupValue:
    at = r.pos
    version = r.fixed(INT16, "the value version")
    if record_type == OFFSET_COMMIT:
        if version not in OFFSET_COMMIT_VALUE_VERSIONS:
            raise r.fail("an offset commit value version 0..4", str(version), at)
        return _read_offset_commit(r, version)
    if record_type == CLASSIC_GROUP_METADATA:
        if version not in CLASSIC_GROUP_VALUE_VERSIONS:
            raise r.fail("a group metadata value version 0..4", str(version), at)
        return _read_classic_group(r, version)
    if version != CONSUMER_GROUP_VALUE_VERSION:
        raise r.fail(
            f"value version {CONSUMER_GROUP_VALUE_VERSION} of record type {record_type}",
            str(version),
            at,
        )
    if record_type == CONSUMER_GROUP_METADATA:
        epoch = r.fixed(INT32, "group epoch")
        tags = r.tagged("the group metadata")
        metadata_hash = r.tag_int(tags, METADATA_HASH_TAG, INT64, "metadata hash", 0)
        return GroupMetadataValue(epoch, metadata_hash)
    if record_type == CONSUMER_GROUP_MEMBER_METADATA:
        return _read_member_metadata(r)
    if record_type == CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA:
        epoch = r.fixed(INT32, "assignment epoch")
        tags = r.tagged("the target assignment metadata")
        stamp = r.tag_int(tags, ASSIGNMENT_TIMESTAMP_TAG, INT64, "assignment timestamp", 0)
        return TargetAssignmentMetadataValue(epoch, stamp)
    if record_type == CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER:
        partitions = _read_topic_partitions(r, "target partitions")
        r.tagged("the target assignment")
        return TargetAssignmentMemberValue(partitions)
    assert record_type == CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT, record_type
    return _read_current_assignment(r)


def decode(key: bytes, value: bytes | None) -> tuple[GroupKey, GroupValue | None] | None:
    """The record ``key``/``value`` (value None: a tombstone), or None for a record type this
    module does not know (Kafka's legacy offset commits, share and streams groups...), which the
    coordinator skips as Kafka's loader does. Raises GroupRecordError, and nothing else, for
    bytes that do not parse."""
    key_reader = Reader(key, "key")
    record_type = key_reader.fixed(INT16, "the record type")
    if record_type not in KNOWN_RECORD_TYPES:
        return None
    decoded_key = guarded(key_reader, lambda: _read_key(key_reader, record_type))
    if value is None:
        return decoded_key, None
    value_reader = Reader(value, "value")
    return decoded_key, guarded(value_reader, lambda: _read_value(value_reader, record_type))
