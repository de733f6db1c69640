"""The schemas of Kafka 4.4's ``__consumer_offsets`` records, for ``--offsets-decoder``.

Transcribed from Kafka 4.4.0's message schemas (``group-coordinator/src/main/resources/common/
message/*Key.json`` and ``*Value.json``, and ``clients/.../ConsumerProtocolSubscription.json``
and ``ConsumerProtocolAssignment.json`` for the classic groups' embedded consumer protocol):
per record type (Kafka's ``CoordinatorRecordType``) its key and value fields in order, with
the JSON names Kafka's converters print (the schema name with its first letter in lower case),
the versions that have each field, which may be null, and the tags of tagged fields. A key's
fields carry no versions: Kafka reads a key "at version" its record type and every key field
all the same. :mod:`storage.offsets_decoder` reads bytes by these tables; it holds no schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Primitive = Literal["int8", "int16", "uint16", "int32", "int64", "string", "uuid", "bytes"]
_ANY = 0x8000  # above every version
ANY_VERSION = range(0, _ANY)
NOT_FLEXIBLE = _ANY


@dataclass(frozen=True)
class Array:
    """An array of ``element`` (compact in flexible versions)."""

    element: Kind


@dataclass(frozen=True)
class Struct:
    """A message or a nested struct: its fields in order."""

    fields: tuple[Field, ...]


Kind = Primitive | Array | Struct


@dataclass(frozen=True)
class Field:
    """One field: its JSON name, kind, the versions that have it, whether it may be null, and
    its tag if it is a tagged field (``default``: the number a tagged field is not printed
    at)."""

    name: str
    kind: Kind
    versions: range = ANY_VERSION
    nullable: bool = False
    tag: int | None = None
    default: int = 0


@dataclass(frozen=True)
class RecordSchema:
    """One record type: Kafka's name for it, its key and value, the value versions Kafka
    reads, and the first flexible value version (NOT_FLEXIBLE: none)."""

    name: str
    key: Struct
    value: Struct
    value_versions: range
    flexible_from: int


SCHEMAS: dict[int, RecordSchema] = {
    0: RecordSchema(
        "LEGACY_OFFSET_COMMIT",
        Struct(
            (
                Field("group", "string"),
                Field("topic", "string"),
                Field("partition", "int32"),
            )
        ),
        Struct(
            (
                Field("offset", "int64", versions=range(0, 1)),
                Field("metadata", "string", versions=range(0, 1)),
                Field("commitTimestamp", "int64", versions=range(0, 1)),
            )
        ),
        range(0, 1),
        NOT_FLEXIBLE,
    ),
    1: RecordSchema(
        "OFFSET_COMMIT",
        Struct(
            (
                Field("group", "string"),
                Field("topic", "string"),
                Field("partition", "int32"),
            )
        ),
        Struct(
            (
                Field("offset", "int64"),
                Field("leaderEpoch", "int32", versions=range(3, _ANY)),
                Field("metadata", "string"),
                Field("commitTimestamp", "int64"),
                Field("expireTimestamp", "int64", versions=range(1, 2)),
                Field("topicId", "uuid", versions=range(4, _ANY), tag=0),
            )
        ),
        range(0, 5),
        4,
    ),
    2: RecordSchema(
        "GROUP_METADATA",
        Struct((Field("group", "string"),)),
        Struct(
            (
                Field("protocolType", "string"),
                Field("generation", "int32"),
                Field("protocol", "string", nullable=True),
                Field("leader", "string", nullable=True),
                Field("currentStateTimestamp", "int64", versions=range(2, _ANY)),
                Field(
                    "members",
                    Array(
                        Struct(
                            (
                                Field("memberId", "string"),
                                Field(
                                    "groupInstanceId",
                                    "string",
                                    versions=range(3, _ANY),
                                    nullable=True,
                                ),
                                Field("clientId", "string"),
                                Field("clientHost", "string"),
                                Field("rebalanceTimeout", "int32", versions=range(1, _ANY)),
                                Field("sessionTimeout", "int32"),
                                Field("subscription", "bytes"),
                                Field("assignment", "bytes"),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 5),
        4,
    ),
    3: RecordSchema(
        "CONSUMER_GROUP_METADATA",
        Struct((Field("groupId", "string"),)),
        Struct(
            (
                Field("epoch", "int32"),
                Field("metadataHash", "int64", tag=0),
            )
        ),
        range(0, 1),
        0,
    ),
    4: RecordSchema(
        "CONSUMER_GROUP_PARTITION_METADATA",
        Struct((Field("groupId", "string"),)),
        Struct(
            (
                Field(
                    "topics",
                    Array(
                        Struct(
                            (
                                Field("topicId", "uuid"),
                                Field("topicName", "string"),
                                Field("numPartitions", "int32"),
                                Field(
                                    "partitionMetadata",
                                    Array(
                                        Struct(
                                            (
                                                Field("partition", "int32"),
                                                Field("racks", Array("string")),
                                            )
                                        )
                                    ),
                                ),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 1),
        0,
    ),
    5: RecordSchema(
        "CONSUMER_GROUP_MEMBER_METADATA",
        Struct(
            (
                Field("groupId", "string"),
                Field("memberId", "string"),
            )
        ),
        Struct(
            (
                Field("instanceId", "string", nullable=True),
                Field("rackId", "string", nullable=True),
                Field("clientId", "string"),
                Field("clientHost", "string"),
                Field("subscribedTopicNames", Array("string")),
                Field("subscribedTopicRegex", "string", nullable=True),
                Field("rebalanceTimeoutMs", "int32"),
                Field("serverAssignor", "string", nullable=True),
                Field(
                    "classicMemberMetadata",
                    Struct(
                        (
                            Field("sessionTimeoutMs", "int32"),
                            Field(
                                "supportedProtocols",
                                Array(
                                    Struct(
                                        (
                                            Field("name", "string"),
                                            Field("metadata", "bytes"),
                                        )
                                    )
                                ),
                            ),
                        )
                    ),
                    nullable=True,
                    tag=0,
                ),
            )
        ),
        range(0, 1),
        0,
    ),
    6: RecordSchema(
        "CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA",
        Struct((Field("groupId", "string"),)),
        Struct(
            (
                Field("assignmentEpoch", "int32"),
                Field("assignmentTimestamp", "int64", tag=0),
            )
        ),
        range(0, 1),
        0,
    ),
    7: RecordSchema(
        "CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER",
        Struct(
            (
                Field("groupId", "string"),
                Field("memberId", "string"),
            )
        ),
        Struct(
            (
                Field(
                    "topicPartitions",
                    Array(
                        Struct(
                            (
                                Field("topicId", "uuid"),
                                Field("partitions", Array("int32")),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 1),
        0,
    ),
    8: RecordSchema(
        "CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT",
        Struct(
            (
                Field("groupId", "string"),
                Field("memberId", "string"),
            )
        ),
        Struct(
            (
                Field("memberEpoch", "int32"),
                Field("previousMemberEpoch", "int32"),
                Field("state", "int8"),
                Field(
                    "assignedPartitions",
                    Array(
                        Struct(
                            (
                                Field("topicId", "uuid"),
                                Field("partitions", Array("int32")),
                                Field("assignmentEpochs", Array("int32"), nullable=True, tag=0),
                            )
                        )
                    ),
                ),
                Field(
                    "partitionsPendingRevocation",
                    Array(
                        Struct(
                            (
                                Field("topicId", "uuid"),
                                Field("partitions", Array("int32")),
                                Field("assignmentEpochs", Array("int32"), nullable=True, tag=0),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 1),
        0,
    ),
    10: RecordSchema(
        "SHARE_GROUP_MEMBER_METADATA",
        Struct(
            (
                Field("groupId", "string"),
                Field("memberId", "string"),
            )
        ),
        Struct(
            (
                Field("rackId", "string", nullable=True),
                Field("clientId", "string"),
                Field("clientHost", "string"),
                Field("subscribedTopicNames", Array("string")),
            )
        ),
        range(0, 1),
        0,
    ),
    11: RecordSchema(
        "SHARE_GROUP_METADATA",
        Struct((Field("groupId", "string"),)),
        Struct(
            (
                Field("epoch", "int32"),
                Field("metadataHash", "int64"),
            )
        ),
        range(0, 1),
        0,
    ),
    12: RecordSchema(
        "SHARE_GROUP_TARGET_ASSIGNMENT_METADATA",
        Struct((Field("groupId", "string"),)),
        Struct(
            (
                Field("assignmentEpoch", "int32"),
                Field("assignmentTimestamp", "int64", tag=0),
            )
        ),
        range(0, 1),
        0,
    ),
    13: RecordSchema(
        "SHARE_GROUP_TARGET_ASSIGNMENT_MEMBER",
        Struct(
            (
                Field("groupId", "string"),
                Field("memberId", "string"),
            )
        ),
        Struct(
            (
                Field(
                    "topicPartitions",
                    Array(
                        Struct(
                            (
                                Field("topicId", "uuid"),
                                Field("partitions", Array("int32")),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 1),
        0,
    ),
    14: RecordSchema(
        "SHARE_GROUP_CURRENT_MEMBER_ASSIGNMENT",
        Struct(
            (
                Field("groupId", "string"),
                Field("memberId", "string"),
            )
        ),
        Struct(
            (
                Field("memberEpoch", "int32"),
                Field("previousMemberEpoch", "int32"),
                Field("state", "int8"),
                Field(
                    "assignedPartitions",
                    Array(
                        Struct(
                            (
                                Field("topicId", "uuid"),
                                Field("partitions", Array("int32")),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 1),
        0,
    ),
    15: RecordSchema(
        "SHARE_GROUP_STATE_PARTITION_METADATA",
        Struct((Field("groupId", "string"),)),
        Struct(
            (
                Field(
                    "initializingTopics",
                    Array(
                        Struct(
                            (
                                Field("topicId", "uuid"),
                                Field("topicName", "string"),
                                Field("partitions", Array("int32")),
                            )
                        )
                    ),
                ),
                Field(
                    "initializedTopics",
                    Array(
                        Struct(
                            (
                                Field("topicId", "uuid"),
                                Field("topicName", "string"),
                                Field("partitions", Array("int32")),
                            )
                        )
                    ),
                ),
                Field(
                    "deletingTopics",
                    Array(
                        Struct(
                            (
                                Field("topicId", "uuid"),
                                Field("topicName", "string"),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 1),
        0,
    ),
    16: RecordSchema(
        "CONSUMER_GROUP_REGULAR_EXPRESSION",
        Struct(
            (
                Field("groupId", "string"),
                Field("regularExpression", "string"),
            )
        ),
        Struct(
            (
                Field("topics", Array("string")),
                Field("version", "int64"),
                Field("timestamp", "int64"),
            )
        ),
        range(0, 1),
        0,
    ),
    17: RecordSchema(
        "STREAMS_GROUP_METADATA",
        Struct((Field("groupId", "string"),)),
        Struct(
            (
                Field("epoch", "int32"),
                Field("metadataHash", "int64"),
                Field("validatedTopologyEpoch", "int32", tag=0, default=-1),
                Field(
                    "lastAssignmentConfigs",
                    Array(
                        Struct(
                            (
                                Field("key", "string"),
                                Field("value", "string"),
                            )
                        )
                    ),
                    nullable=True,
                    tag=1,
                ),
                Field("storedDescriptionTopologyEpoch", "int32", tag=2, default=-1),
                Field("failedDescriptionTopologyEpoch", "int32", tag=3, default=-1),
            )
        ),
        range(0, 1),
        0,
    ),
    19: RecordSchema(
        "STREAMS_GROUP_MEMBER_METADATA",
        Struct(
            (
                Field("groupId", "string"),
                Field("memberId", "string"),
            )
        ),
        Struct(
            (
                Field("instanceId", "string", nullable=True),
                Field("rackId", "string", nullable=True),
                Field("clientId", "string"),
                Field("clientHost", "string"),
                Field("rebalanceTimeoutMs", "int32"),
                Field("topologyEpoch", "int32"),
                Field("processId", "string"),
                Field(
                    "userEndpoint",
                    Struct(
                        (
                            Field("host", "string"),
                            Field("port", "uint16"),
                        )
                    ),
                    nullable=True,
                ),
                Field(
                    "clientTags",
                    Array(
                        Struct(
                            (
                                Field("key", "string"),
                                Field("value", "string"),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 1),
        0,
    ),
    20: RecordSchema(
        "STREAMS_GROUP_TARGET_ASSIGNMENT_METADATA",
        Struct((Field("groupId", "string"),)),
        Struct(
            (
                Field("assignmentEpoch", "int32"),
                Field("assignmentTimestamp", "int64", tag=0),
            )
        ),
        range(0, 1),
        0,
    ),
    21: RecordSchema(
        "STREAMS_GROUP_TARGET_ASSIGNMENT_MEMBER",
        Struct(
            (
                Field("groupId", "string"),
                Field("memberId", "string"),
            )
        ),
        Struct(
            (
                Field(
                    "activeTasks",
                    Array(
                        Struct(
                            (
                                Field("subtopologyId", "string"),
                                Field("partitions", Array("int32")),
                            )
                        )
                    ),
                ),
                Field(
                    "standbyTasks",
                    Array(
                        Struct(
                            (
                                Field("subtopologyId", "string"),
                                Field("partitions", Array("int32")),
                            )
                        )
                    ),
                ),
                Field(
                    "warmupTasks",
                    Array(
                        Struct(
                            (
                                Field("subtopologyId", "string"),
                                Field("partitions", Array("int32")),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 1),
        0,
    ),
    22: RecordSchema(
        "STREAMS_GROUP_CURRENT_MEMBER_ASSIGNMENT",
        Struct(
            (
                Field("groupId", "string"),
                Field("memberId", "string"),
            )
        ),
        Struct(
            (
                Field("memberEpoch", "int32"),
                Field("previousMemberEpoch", "int32"),
                Field("state", "int8"),
                Field(
                    "activeTasks",
                    Array(
                        Struct(
                            (
                                Field("subtopologyId", "string"),
                                Field("partitions", Array("int32")),
                                Field("assignmentEpochs", Array("int32"), nullable=True, tag=0),
                            )
                        )
                    ),
                ),
                Field(
                    "standbyTasks",
                    Array(
                        Struct(
                            (
                                Field("subtopologyId", "string"),
                                Field("partitions", Array("int32")),
                                Field("assignmentEpochs", Array("int32"), nullable=True, tag=0),
                            )
                        )
                    ),
                ),
                Field(
                    "warmupTasks",
                    Array(
                        Struct(
                            (
                                Field("subtopologyId", "string"),
                                Field("partitions", Array("int32")),
                                Field("assignmentEpochs", Array("int32"), nullable=True, tag=0),
                            )
                        )
                    ),
                ),
                Field(
                    "activeTasksPendingRevocation",
                    Array(
                        Struct(
                            (
                                Field("subtopologyId", "string"),
                                Field("partitions", Array("int32")),
                                Field("assignmentEpochs", Array("int32"), nullable=True, tag=0),
                            )
                        )
                    ),
                ),
                Field(
                    "standbyTasksPendingRevocation",
                    Array(
                        Struct(
                            (
                                Field("subtopologyId", "string"),
                                Field("partitions", Array("int32")),
                                Field("assignmentEpochs", Array("int32"), nullable=True, tag=0),
                            )
                        )
                    ),
                ),
                Field(
                    "warmupTasksPendingRevocation",
                    Array(
                        Struct(
                            (
                                Field("subtopologyId", "string"),
                                Field("partitions", Array("int32")),
                                Field("assignmentEpochs", Array("int32"), nullable=True, tag=0),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 1),
        0,
    ),
    23: RecordSchema(
        "STREAMS_GROUP_TOPOLOGY",
        Struct((Field("groupId", "string"),)),
        Struct(
            (
                Field("epoch", "int32"),
                Field(
                    "subtopologies",
                    Array(
                        Struct(
                            (
                                Field("subtopologyId", "string"),
                                Field("sourceTopics", Array("string")),
                                Field("sourceTopicRegex", Array("string")),
                                Field(
                                    "stateChangelogTopics",
                                    Array(
                                        Struct(
                                            (
                                                Field("name", "string"),
                                                Field("partitions", "int32"),
                                                Field("replicationFactor", "int16"),
                                                Field(
                                                    "topicConfigs",
                                                    Array(
                                                        Struct(
                                                            (
                                                                Field("key", "string"),
                                                                Field("value", "string"),
                                                            )
                                                        )
                                                    ),
                                                ),
                                            )
                                        )
                                    ),
                                ),
                                Field("repartitionSinkTopics", Array("string")),
                                Field(
                                    "repartitionSourceTopics",
                                    Array(
                                        Struct(
                                            (
                                                Field("name", "string"),
                                                Field("partitions", "int32"),
                                                Field("replicationFactor", "int16"),
                                                Field(
                                                    "topicConfigs",
                                                    Array(
                                                        Struct(
                                                            (
                                                                Field("key", "string"),
                                                                Field("value", "string"),
                                                            )
                                                        )
                                                    ),
                                                ),
                                            )
                                        )
                                    ),
                                ),
                                Field(
                                    "copartitionGroups",
                                    Array(
                                        Struct(
                                            (
                                                Field("sourceTopics", Array("int16")),
                                                Field("sourceTopicRegex", Array("int16")),
                                                Field("repartitionSourceTopics", Array("int16")),
                                            )
                                        )
                                    ),
                                ),
                            )
                        )
                    ),
                ),
            )
        ),
        range(0, 1),
        0,
    ),
}

# A classic group member's subscription and assignment (GroupMetadataValue.members[]), each
# after its int16 version; never flexible.
CONSUMER_PROTOCOL_SUBSCRIPTION = Struct(
    (
        Field("topics", Array("string")),
        Field("userData", "bytes", nullable=True),
        Field(
            "ownedPartitions",
            Array(
                Struct(
                    (
                        Field("topic", "string", versions=range(1, _ANY)),
                        Field("partitions", Array("int32"), versions=range(1, _ANY)),
                    )
                )
            ),
            versions=range(1, _ANY),
        ),
        Field("generationId", "int32", versions=range(2, _ANY)),
        Field("rackId", "string", versions=range(3, _ANY), nullable=True),
    )
)
CONSUMER_PROTOCOL_ASSIGNMENT = Struct(
    (
        Field(
            "assignedPartitions",
            Array(
                Struct(
                    (
                        Field("topic", "string"),
                        Field("partitions", Array("int32")),
                    )
                )
            ),
        ),
        Field("userData", "bytes", nullable=True),
    )
)
