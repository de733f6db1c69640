"""``kraft-dump-log --offsets-decoder``: ``__consumer_offsets`` records as Kafka 4.4 prints them.

Kafka's DumpLogSegments decodes each record with its group coordinator's serde and prints the
key and the value as JSON built by the generated ``*JsonConverter`` classes::

    key: {"type":"<record type>","data":{<key fields>}} payload: {"version":"<v>","data":{...}}

``payload: <DELETE>`` for a tombstone. A record it cannot read gets one text in place of the
key and no payload: ``Unknown record type T at offset O, skipping.`` for a type it does not
know, ``Error at offset O, skipping. <why>`` for bytes that do not parse.

This module reads the bytes by Kafka's message schemas (the table below, copied from
``group-coordinator/src/main/resources/common/message/*.json`` of 4.4.0) rather than through
:mod:`storage.group_records`, because the dump must show what is in the bytes as Kafka would:
every field of every value version, fields our coordinator does not keep (``expireTimestamp``
of v1 offset commits, ``classicMemberMetadata``, ``assignmentEpochs``), member states and
partition orders our coordinator would refuse or sort. It follows Kafka's reader where that
shows in the output:

* a key is read whole, then the value; bytes after the last field are ignored, as Kafka's
  generated readers ignore them; a tagged field nobody knows is skipped and not printed;
* a value version outside the type's range is ``Found an unknown record version V for T type``;
* invalid UTF-8 in a string becomes U+FFFD, as Java's ``new String(bytes, UTF_8)`` makes it;
* a tagged field is printed only when present and not its schema's empty value (a number equal
  to its default, the zero uuid, an empty array, a struct of defaults); a null is printed;
* strings are escaped as Jackson escapes them (``\\"``, ``\\\\``, ``\\b\\t\\n\\f\\r``, other
  control characters as ``\\u00XX`` in upper case, nothing else); bytes are standard base64.

Where it differs from Kafka, on purpose: the reason after ``due to:`` for bytes that do not
parse is ours (Kafka often says ``null``, the message of a BufferUnderflowException); record
types Kafka knows but this module does not decode (classic groups, share and streams groups,
regular expressions: our coordinator never writes them) get ``Record type T (NAME) at offset O
is not decoded by kraft-dump-log, skipping.``; and each record our coordinator reads is also
given to :func:`storage.group_records.decode`, so that a record Kafka prints but our loader
would refuse is reported (:attr:`Decoded.problem`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal

from storage.group_records import GroupRecordError, decode
from storage.group_wire import (
    INT8,
    INT16,
    INT32,
    INT64,
    Reader,
)
from storage.ids import UUID_BYTES, ZERO_UUID, uuid_to_string

__all__ = ["Decoded", "decode_record", "missing_key_message"]

Primitive = Literal["int8", "int16", "int32", "int64", "string", "uuid", "bytes"]
_INTS = {"int8": INT8, "int16": INT16, "int32": INT32, "int64": INT64}
ANY_VERSION = range(0, 0x8000)

# A JSON value as the converters build it.
Json = None | int | str | list["Json"] | dict[str, "Json"]


@dataclass(frozen=True)
class Array:
    element: Kind


@dataclass(frozen=True)
class Struct:
    fields: tuple[Field, ...]


Kind = Primitive | Array | Struct


@dataclass(frozen=True)
class Field:
    """One field of a schema: its JSON name (Kafka's camelCase), kind, the versions that have
    it, whether it may be null, and its tag if it is a tagged field."""

    name: str
    kind: Kind
    versions: range = ANY_VERSION
    nullable: bool = False
    tag: int | None = None
    default: int = 0  # a tagged number equal to this is not printed


@dataclass(frozen=True)
class RecordSchema:
    name: str  # Kafka's CoordinatorRecordType name
    key: Struct
    value: Struct
    value_versions: range
    flexible_from: int  # the first flexible value version (keys are never flexible)


_NOT_FLEXIBLE = 0x8000

_OFFSET_COMMIT_KEY = Struct(
    (Field("group", "string"), Field("topic", "string"), Field("partition", "int32"))
)
_GROUP_KEY = Struct((Field("groupId", "string"),))
_MEMBER_KEY = Struct((Field("groupId", "string"), Field("memberId", "string")))
_TOPIC_PARTITIONS = Struct((Field("topicId", "uuid"), Field("partitions", Array("int32"))))
_CURRENT_TOPIC_PARTITIONS = Struct(
    (
        Field("topicId", "uuid"),
        Field("partitions", Array("int32")),
        Field("assignmentEpochs", Array("int32"), nullable=True, tag=0),
    )
)
_CLASSIC_MEMBER_METADATA = Struct(
    (
        Field("sessionTimeoutMs", "int32"),
        Field(
            "supportedProtocols",
            Array(Struct((Field("name", "string"), Field("metadata", "bytes")))),
        ),
    )
)

SCHEMAS: dict[int, RecordSchema] = {
    0: RecordSchema(
        "LEGACY_OFFSET_COMMIT",
        _OFFSET_COMMIT_KEY,
        Struct(
            (
                Field("offset", "int64"),
                Field("metadata", "string"),
                Field("commitTimestamp", "int64"),
            )
        ),
        range(0, 1),
        _NOT_FLEXIBLE,
    ),
    1: RecordSchema(
        "OFFSET_COMMIT",
        _OFFSET_COMMIT_KEY,
        Struct(
            (
                Field("offset", "int64"),
                Field("leaderEpoch", "int32", versions=range(3, 0x8000)),
                Field("metadata", "string"),
                Field("commitTimestamp", "int64"),
                Field("expireTimestamp", "int64", versions=range(1, 2)),
                Field("topicId", "uuid", versions=range(4, 0x8000), tag=0),
            )
        ),
        range(0, 5),
        4,
    ),
    3: RecordSchema(
        "CONSUMER_GROUP_METADATA",
        _GROUP_KEY,
        Struct((Field("epoch", "int32"), Field("metadataHash", "int64", tag=0))),
        range(0, 1),
        0,
    ),
    5: RecordSchema(
        "CONSUMER_GROUP_MEMBER_METADATA",
        _MEMBER_KEY,
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
                Field("classicMemberMetadata", _CLASSIC_MEMBER_METADATA, nullable=True, tag=0),
            )
        ),
        range(0, 1),
        0,
    ),
    6: RecordSchema(
        "CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA",
        _GROUP_KEY,
        Struct((Field("assignmentEpoch", "int32"), Field("assignmentTimestamp", "int64", tag=0))),
        range(0, 1),
        0,
    ),
    7: RecordSchema(
        "CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER",
        _MEMBER_KEY,
        Struct((Field("topicPartitions", Array(_TOPIC_PARTITIONS)),)),
        range(0, 1),
        0,
    ),
    8: RecordSchema(
        "CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT",
        _MEMBER_KEY,
        Struct(
            (
                Field("memberEpoch", "int32"),
                Field("previousMemberEpoch", "int32"),
                Field("state", "int8"),
                Field("assignedPartitions", Array(_CURRENT_TOPIC_PARTITIONS)),
                Field("partitionsPendingRevocation", Array(_CURRENT_TOPIC_PARTITIONS)),
            )
        ),
        range(0, 1),
        0,
    ),
}

# The other record types Kafka 4.4's group coordinator knows (CoordinatorRecordType); a type in
# neither table is one Kafka does not know either.
NOT_DECODED_HERE = {
    2: "GROUP_METADATA",
    4: "CONSUMER_GROUP_PARTITION_METADATA",
    10: "SHARE_GROUP_MEMBER_METADATA",
    11: "SHARE_GROUP_METADATA",
    12: "SHARE_GROUP_TARGET_ASSIGNMENT_METADATA",
    13: "SHARE_GROUP_TARGET_ASSIGNMENT_MEMBER",
    14: "SHARE_GROUP_CURRENT_MEMBER_ASSIGNMENT",
    15: "SHARE_GROUP_STATE_PARTITION_METADATA",
    16: "CONSUMER_GROUP_REGULAR_EXPRESSION",
    17: "STREAMS_GROUP_METADATA",
    19: "STREAMS_GROUP_MEMBER_METADATA",
    20: "STREAMS_GROUP_TARGET_ASSIGNMENT_METADATA",
    21: "STREAMS_GROUP_TARGET_ASSIGNMENT_MEMBER",
    22: "STREAMS_GROUP_CURRENT_MEMBER_ASSIGNMENT",
    23: "STREAMS_GROUP_TOPOLOGY",
}


class _Unreadable(Exception):
    """Bytes that do not parse; the text is Kafka's reason after ``skipping.``."""


# --- reading by schema --------------------------------------------------------------------------


def _detail(error: GroupRecordError) -> str:
    return f"expected {error.expected} at byte {error.position}, found {error.found}"


def _string(r: Reader, field: Field, flexible: bool) -> str | None:
    if flexible:
        size = r.uvarint(f"the length of {field.name}") - 1
    else:
        size = r.fixed(INT16, f"the length of {field.name}")
    if size < 0:  # Kafka reads any negative length as null
        return None
    # Java's String(bytes, UTF_8) replaces what is not UTF-8; so does the dump.
    return r.take(size, field.name).decode("utf-8", "replace")


def _count(r: Reader, field: Field, flexible: bool) -> int:
    """The element count of an array (-1: null), no more than the bytes left, as Kafka checks."""
    if flexible:
        count = r.uvarint(f"the count of {field.name}") - 1
    else:
        count = r.fixed(INT32, f"the count of {field.name}")
    if count > r.left():
        raise _Unreadable(
            f"Tried to allocate a collection of size {count}, but there are only "
            f"{r.left()} bytes remaining."
        )
    return max(count, -1)


def _read_kind(r: Reader, field: Field, kind: Kind, version: int, flexible: bool) -> Json:
    if isinstance(kind, Struct):
        return _read_struct(r, kind, version, flexible)
    if isinstance(kind, Array):
        count = _count(r, field, flexible)
        if count < 0:
            return None
        elements = [_read_kind(r, field, kind.element, version, flexible) for _ in range(count)]
        if None in elements:
            raise _Unreadable(f"non-nullable field {field.name} element was serialized as null")
        return elements
    if kind in _INTS:
        return r.fixed(_INTS[kind], field.name)
    if kind == "string":
        return _string(r, field, flexible)
    if kind == "uuid":
        return uuid_to_string(r.take(UUID_BYTES, field.name))
    assert kind == "bytes", kind
    if flexible:
        size = r.uvarint(f"the length of {field.name}") - 1
    else:
        size = r.fixed(INT32, f"the length of {field.name}")
    if size < 0:
        return None
    return base64.b64encode(r.take(size, field.name)).decode("ascii")


def _read_field(r: Reader, field: Field, version: int, flexible: bool) -> Json:
    if isinstance(field.kind, Struct) and field.nullable:
        # A nullable struct starts with a marker: in flexible versions an unsigned varint,
        # 0 null (Kafka reads any value above 0 as present); before them an int8, -1 null.
        what = f"the null marker of {field.name}"
        if flexible:
            if r.uvarint(what) == 0:
                return None
        elif r.fixed(INT8, what) < 0:
            return None
    value = _read_kind(r, field, field.kind, version, flexible)
    if value is None and not field.nullable:
        # Kafka's own words for this, from its generated readers.
        raise _Unreadable(f"non-nullable field {field.name} was serialized as null")
    return value


def _is_empty(field: Field, value: Json) -> bool:
    """Whether a tagged field holds its schema's empty value, which Kafka does not print."""
    if value is None:
        return False
    if isinstance(field.kind, Struct):
        assert isinstance(value, dict)
        return all(_is_empty(f, value.get(f.name)) for f in field.kind.fields)
    if isinstance(field.kind, Array):
        return value == []
    if field.kind == "uuid":
        return value == ZERO_UUID
    if field.kind in _INTS:
        return value == field.default
    return value == ""


def _tagged(r: Reader) -> dict[int, tuple[int, bytes]]:
    """A tagged-field section: tag -> (position of its data, data). Kafka's readers take the
    tags in any order, a later one of the same tag replacing an earlier one."""
    fields: dict[int, tuple[int, bytes]] = {}
    for _ in range(r.uvarint("the count of tagged fields")):
        tag = r.uvarint("a tag")
        size = r.uvarint(f"the size of tag {tag}")
        at = r.pos
        fields[tag] = (at, r.take(size, f"tag {tag}"))
    return fields


def _read_struct(r: Reader, struct: Struct, version: int, flexible: bool) -> dict[str, Json]:
    values: dict[str, Json] = {}
    for field in struct.fields:
        if field.tag is None and version in field.versions:
            values[field.name] = _read_field(r, field, version, flexible)
    if flexible:
        tags = _tagged(r)
        for field in struct.fields:
            if field.tag is None or version not in field.versions or field.tag not in tags:
                continue
            at, data = tags[field.tag]
            # Read within the tag's own bytes, at their place in the value (for the positions
            # in errors); a field that does not fill them exactly is corrupt.
            sub = Reader(r.data[: at + len(data)], r.part)
            sub.pos = at
            value = _read_field(sub, field, version, flexible)
            if sub.left():
                raise r.fail(
                    f"{len(data) - sub.left()} bytes of tagged field {field.name}",
                    f"{len(data)} bytes",
                    at,
                )
            if not _is_empty(field, value):
                values[field.name] = value
    # Kafka's converters write the fields in schema order, the tagged ones among them.
    return {f.name: values[f.name] for f in struct.fields if f.name in values}


# --- Jackson's compact JSON -----------------------------------------------------------------------

# Jackson escapes '"', '\\' and the control characters, five of them by their short names and
# the rest as \u00XX in upper case; everything else, non-ASCII included, is written as it is.
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_SHORT_ESCAPES["\r"] = "\\r"
_JSON_ESCAPES = str.maketrans({**{chr(c): f"\\u{c:04X}" for c in range(0x20)}, **_SHORT_ESCAPES})


def to_json(value: Json) -> str:
    """``value`` as Jackson's ``JsonNode.toString()`` writes it: no spaces, keys in order."""
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.translate(_JSON_ESCAPES) + '"'
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return "{" + ",".join(f"{to_json(k)}:{to_json(v)}" for k, v in value.items()) + "}"


# --- one record ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """What the dump prints after a record's metadata: ``key: <key>`` then, unless None,
    ``payload: <payload>``; ``problem`` says what is wrong with the record (bytes that do not
    parse, or a record our coordinator would refuse to load), None if nothing is."""

    key: str
    payload: str | None = None
    problem: str | None = None


def missing_key_message(offset: int) -> str:
    """Kafka's words when a record of ``__consumer_offsets`` has no key (its tool stops there
    with this exception; ours says it and carries on)."""
    return (
        f"Failed to decode message at offset {offset} using the specified decoder "
        "(message had a missing key)"
    )


def _error(offset: int, reason: str) -> Decoded:
    return Decoded(f"Error at offset {offset}, skipping. {reason}", None, f"unreadable: {reason}")


def _read_message(
    data: bytes, struct: Struct, version: int, flexible: bool, part: str
) -> dict[str, Json] | str:
    """The message's JSON data, or Kafka's reason it cannot be read."""
    r = Reader(data, part)
    r.pos = INT16.size  # after the record type or version
    try:
        return _read_struct(r, struct, version, flexible)
    except GroupRecordError as e:
        reason = _detail(e)
    except _Unreadable as e:
        reason = str(e)
    return f"Could not read record with version {version} from {part}'s buffer due to: {reason}."


def decode_record(offset: int, key: bytes, value: bytes | None) -> Decoded:
    """The ``key:``/``payload:`` texts Kafka 4.4's ``--offsets-decoder`` prints for the record
    at ``offset`` with these key and value bytes (value None: a tombstone)."""
    if len(key) < INT16.size:
        return _error(offset, "Could not read version from key's buffer.")
    record_type = INT16.unpack_from(key)[0]
    schema = SCHEMAS.get(record_type)
    if schema is None:
        name = NOT_DECODED_HERE.get(record_type)
        if name is None:
            return Decoded(f"Unknown record type {record_type} at offset {offset}, skipping.")
        return Decoded(
            f"Record type {record_type} ({name}) at offset {offset} is not decoded by "
            "kraft-dump-log, skipping."
        )
    # Kafka reads a key "at version" its record type; key schemas have one version.
    key_data = _read_message(key, schema.key, record_type, False, "key")
    if isinstance(key_data, str):
        return _error(offset, key_data)
    key_text = to_json({"type": str(record_type), "data": key_data})
    if value is None:
        payload = "<DELETE>"
    else:
        if len(value) < INT16.size:
            return _error(offset, "Could not read version from value's buffer.")
        version = INT16.unpack_from(value)[0]
        if version not in schema.value_versions:
            return _error(
                offset, f"Found an unknown record version {version} for {record_type} type"
            )
        flexible = version >= schema.flexible_from
        value_data = _read_message(value, schema.value, version, flexible, "value")
        if isinstance(value_data, str):
            return _error(offset, value_data)
        payload = to_json({"version": str(version), "data": value_data})
    problem = None
    try:
        decode(key, value)
    except GroupRecordError as e:
        problem = f"Kafka reads it, our group coordinator would not load it: {e}"
    return Decoded(key_text, payload, problem)
