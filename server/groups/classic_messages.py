"""What the classic group protocol's requests carry and what they answer (JoinGroup, SyncGroup,
Heartbeat, LeaveGroup), as plain frozen dataclasses: the Kafka listener builds them from its
decoded requests and builds its responses from them, the group core (``classic.py``) never sees
a codec. Errors are Kafka's error names (:class:`KafkaError`); an answer without error has
``error`` None.

Also here: the embedded consumer protocol (``ConsumerProtocolSubscription`` and
``ConsumerProtocolAssignment``, the bytes a classic consumer puts in its JoinGroup metadata and
its leader in SyncGroup), read with kio's codecs for describe: which topics a member subscribes
to and which partitions it was assigned. The coordinator itself never needs them (the leader
assigns); Kafka's reads them the same way, for its tools.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Protocol, cast

from kio.schema.consumer_protocol_assignment.v0.data import (
    ConsumerProtocolAssignment as AssignmentV0,
)
from kio.schema.consumer_protocol_assignment.v1.data import (
    ConsumerProtocolAssignment as AssignmentV1,
)
from kio.schema.consumer_protocol_assignment.v2.data import (
    ConsumerProtocolAssignment as AssignmentV2,
)
from kio.schema.consumer_protocol_assignment.v3.data import (
    ConsumerProtocolAssignment as AssignmentV3,
)
from kio.schema.consumer_protocol_subscription.v0.data import (
    ConsumerProtocolSubscription as SubscriptionV0,
)
from kio.schema.consumer_protocol_subscription.v1.data import (
    ConsumerProtocolSubscription as SubscriptionV1,
)
from kio.schema.consumer_protocol_subscription.v2.data import (
    ConsumerProtocolSubscription as SubscriptionV2,
)
from kio.schema.consumer_protocol_subscription.v3.data import (
    ConsumerProtocolSubscription as SubscriptionV3,
)
from kio.serial import entity_reader
from kio.serial.errors import DecodeError

from client.protocol import (
    COORDINATOR_NOT_AVAILABLE,
    REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
    ApiError,
)

# The offset commit's errors of the classic protocol are the wire contract's (client/protocol.py);
# named here too, where the coordinator's tests import them from.
from client.protocol import FENCED_INSTANCE_ID as FENCED_INSTANCE_ID
from client.protocol import ILLEGAL_GENERATION as ILLEGAL_GENERATION
from storage.group_records import GroupKey, GroupValue

# Kafka's JoinGroupRequest.UNKNOWN_MEMBER_ID: the member id of a member that has none yet.
UNKNOWN_MEMBER = ""
# Kafka's ConsumerProtocol.PROTOCOL_TYPE: the protocol type of Kafka's consumers.
CONSUMER_PROTOCOL_TYPE = "consumer"


class KafkaError(enum.StrEnum):
    """The errors the classic protocol answers with, by Kafka's names (``Errors``); the
    listener turns a name into its code (kio's ``ErrorCode[name.lower()]``)."""

    UNKNOWN_MEMBER_ID = "UNKNOWN_MEMBER_ID"
    ILLEGAL_GENERATION = "ILLEGAL_GENERATION"
    REBALANCE_IN_PROGRESS = "REBALANCE_IN_PROGRESS"
    MEMBER_ID_REQUIRED = "MEMBER_ID_REQUIRED"
    INCONSISTENT_GROUP_PROTOCOL = "INCONSISTENT_GROUP_PROTOCOL"
    GROUP_MAX_SIZE_REACHED = "GROUP_MAX_SIZE_REACHED"
    INVALID_SESSION_TIMEOUT = "INVALID_SESSION_TIMEOUT"
    INVALID_GROUP_ID = "INVALID_GROUP_ID"
    FENCED_INSTANCE_ID = "FENCED_INSTANCE_ID"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    COORDINATOR_NOT_AVAILABLE = "COORDINATOR_NOT_AVAILABLE"
    COORDINATOR_LOAD_IN_PROGRESS = "COORDINATOR_LOAD_IN_PROGRESS"
    NOT_COORDINATOR = "NOT_COORDINATOR"
    UNKNOWN_SERVER_ERROR = "UNKNOWN_SERVER_ERROR"


_KINDS = {
    KafkaError.UNKNOWN_MEMBER_ID: UNKNOWN_MEMBER_ID,
    KafkaError.ILLEGAL_GENERATION: ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS: REBALANCE_IN_PROGRESS,
    KafkaError.FENCED_INSTANCE_ID: FENCED_INSTANCE_ID,
    KafkaError.COORDINATOR_NOT_AVAILABLE: COORDINATOR_NOT_AVAILABLE,
}


def api_error(error: KafkaError, message: str) -> ApiError:
    """``error`` (one an offset commit's checks give) as the ApiError the commit raises."""
    return ApiError(_KINDS[error], message)


# A member's protocols, in its order of preference: (name, metadata).
Protocols = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class JoinRequest:
    """A JoinGroup request. ``member_id`` UNKNOWN_MEMBER on a first join.
    ``requires_known_member_id``: JoinGroup v4+ (KIP-394), where a first join only gets a member
    id (MEMBER_ID_REQUIRED) and must join again with it. ``rebalance_timeout_ms``: the session
    timeout for JoinGroup v0, which has none."""

    member_id: str
    protocol_type: str
    protocols: Protocols
    session_timeout_ms: int
    rebalance_timeout_ms: int
    client_id: str = ""
    client_host: str = ""
    group_instance_id: str | None = None
    requires_known_member_id: bool = True
    reason: str | None = None


@dataclass(frozen=True)
class JoinMember:
    """One member as the leader sees it in its JoinGroup answer: its metadata for the chosen
    protocol."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True)
class JoinResponse:
    """A JoinGroup answer; ``members`` is the whole group for the leader, empty for the rest."""

    error: KafkaError | None
    member_id: str
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    skip_assignment: bool = False
    members: tuple[JoinMember, ...] = ()


@dataclass(frozen=True)
class SyncRequest:
    """A SyncGroup request; ``assignments`` (member id, assignment) come from the leader only.
    ``protocol_type``/``protocol_name`` (v5+) are checked against the group's when given."""

    member_id: str
    generation_id: int
    assignments: tuple[tuple[str, bytes], ...] = ()
    group_instance_id: str | None = None
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True)
class SyncResponse:
    error: KafkaError | None
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True)
class HeartbeatRequest:
    member_id: str
    generation_id: int
    group_instance_id: str | None = None


@dataclass(frozen=True)
class LeavingMember:
    """One member of a LeaveGroup request (v3+ name many; v0-v2 one, by member id)."""

    member_id: str
    group_instance_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class LeaveRequest:
    members: tuple[LeavingMember, ...]


@dataclass(frozen=True)
class LeftMember:
    member_id: str
    group_instance_id: str | None
    error: KafkaError | None


@dataclass(frozen=True)
class LeaveResponse:
    """``error`` is the request's (the group is gone); each member has its own too."""

    error: KafkaError | None
    members: tuple[LeftMember, ...] = ()


@dataclass(frozen=True)
class DescribedMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes  # for the group's protocol; b"" unless the group is Stable
    assignment: bytes  # b"" unless the group is Stable


@dataclass(frozen=True)
class DescribedGroup:
    """A classic group as Kafka's DescribeGroups answers (``protocol_data`` is the chosen
    protocol, only once Stable); state Dead for a group that is not a classic one."""

    group_id: str
    state: str
    protocol_type: str = ""
    protocol_data: str = ""
    members: tuple[DescribedMember, ...] = ()


# -- what an operation of the core gives its driver ------------------------------------------


@dataclass(frozen=True)
class Now:
    """The time of an operation: ``ms`` on a monotonic clock (deadlines), ``wall_ms`` the wall
    clock (the state timestamp stored in records)."""

    ms: int
    wall_ms: int


@dataclass(frozen=True)
class Reply:
    """The answer to a parked JoinGroup (a JoinResponse) or SyncGroup (a SyncResponse) of
    ``member_id``."""

    member_id: str
    response: JoinResponse | SyncResponse


@dataclass(frozen=True)
class StoreAssignment:
    """A leader's assignment whose record was appended: once it is stored (or failed), the
    driver calls ``ClassicGroup.assignment_stored`` with it."""

    generation: int
    assignment: tuple[tuple[str, bytes], ...]


@dataclass
class Step:
    """What one operation or timer of a classic group produced: the records to append, the
    caller's answer (a Heartbeat's is its error, None for none) or None when it is parked
    (``parked`` names the member whose JoinGroup or SyncGroup waits), the answers to parked
    requests, and an assignment to report back once its record is stored."""

    records: list[tuple[GroupKey, GroupValue | None]] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    answer: JoinResponse | SyncResponse | LeaveResponse | KafkaError | None = None
    parked: str | None = None
    stored: StoreAssignment | None = None


# -- the embedded consumer protocol -----------------------------------------------------------

_VERSION = struct.Struct(">h")
_SUBSCRIPTIONS = (SubscriptionV0, SubscriptionV1, SubscriptionV2, SubscriptionV3)
_ASSIGNMENTS = (AssignmentV0, AssignmentV1, AssignmentV2, AssignmentV3)


class _Subscription(Protocol):
    """What every version of ConsumerProtocolSubscription has."""

    @property
    def topics(self) -> tuple[str, ...]: ...


class _TopicPartitions(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def partitions(self) -> tuple[int, ...]: ...


class _Assignment(Protocol):
    """What every version of ConsumerProtocolAssignment has."""

    @property
    def assigned_partitions(self) -> tuple[_TopicPartitions, ...]: ...


def _version(data: bytes) -> int | None:
    """The leading int16 version, as Kafka's ConsumerProtocol reads it: a version above the
    highest it knows is read as the highest (later versions only add fields at the end)."""
    if len(data) < _VERSION.size:
        return None
    version: int = _VERSION.unpack_from(data)[0]
    return None if version < 0 else min(version, 3)


def subscribed_topics(metadata: bytes) -> list[str] | None:
    """The topics of a consumer's subscription (its JoinGroup metadata), or None when the
    bytes are not one."""
    version = _version(metadata)
    if version is None:
        return None
    try:
        read, _ = entity_reader(_SUBSCRIPTIONS[version])(metadata[_VERSION.size :], 0)
    except (DecodeError, ValueError):
        return None
    return sorted(set(cast(_Subscription, read).topics))


def assigned_partitions(assignment: bytes) -> list[tuple[str, int]] | None:
    """The (topic, partition)s of a consumer's assignment (what its leader gave it), sorted;
    [] for no bytes at all (a member the leader gave nothing), None when the bytes are not an
    assignment."""
    if not assignment:
        return []
    version = _version(assignment)
    if version is None:
        return None
    try:
        read, _ = entity_reader(_ASSIGNMENTS[version])(assignment[_VERSION.size :], 0)
    except (DecodeError, ValueError):
        return None
    value = cast(_Assignment, read)
    return sorted({(tp.topic, int(p)) for tp in value.assigned_partitions for p in tp.partitions})
