"""``kraft-dump-log --offsets-decoder``: ``__consumer_offsets`` records as Kafka 4.4 prints them.

Kafka's DumpLogSegments decodes each record with its group coordinator's serde and prints the
key and the value as JSON built by the generated ``*JsonConverter`` classes::

    key: {"type":"<record type>","data":{<key fields>}} payload: {"version":"<v>","data":{...}}

``payload: <DELETE>`` for a tombstone. A record it cannot read gets one text in place of the
key and no payload: ``Unknown record type T at offset O, skipping.`` for a type it does not
know, ``Error at offset O, skipping. <why>`` for bytes that do not parse.

This module reads the bytes by Kafka's message schemas (:mod:`storage.offsets_schemas`, every
record type Kafka 4.4's group coordinator knows) rather than through
:mod:`storage.group_records`, because the dump must show what is in the bytes as Kafka would:
every field of every value version, record types and fields our coordinator does not keep
(classic, share and streams groups; ``expireTimestamp`` of v1 offset commits,
``classicMemberMetadata``, ``assignmentEpochs``), member states and partition orders our
coordinator would refuse or sort. It follows Kafka's reader where that shows in the output:

* a key is read whole, then the value; bytes after the last field are ignored, as Kafka's
  generated readers ignore them; a tagged field nobody knows is skipped and not printed;
* a value version outside the type's range is ``Found an unknown record version V for T type``;
* invalid UTF-8 in a string becomes U+FFFD, as Java's ``new String(bytes, UTF_8)`` makes it;
* a tagged field is printed only when present and not its schema's empty value (a number equal
  to its default, the zero uuid, an empty array, a struct of defaults); a null is printed;
* a classic group of the consumer protocol has its members' subscriptions and assignments
  printed decoded, in place of their bytes, unless they do not parse;
* strings are escaped as Jackson escapes them (``\\"``, ``\\\\``, ``\\b\\t\\n\\f\\r``, other
  control characters as ``\\u00XX`` in upper case, nothing else); bytes are standard base64.

Where it differs from Kafka, on purpose: the reason after ``due to:`` for bytes that do not
parse is ours (Kafka often says ``null``, the message of a BufferUnderflowException); and each
record is also given to :func:`storage.group_records.decode`, so that a record Kafka prints but
our coordinator would not load is reported (:attr:`Decoded.problem`).
"""

from __future__ import annotations

import base64
import json
import re
import struct
from dataclasses import dataclass

from storage.group_records import GroupRecordError, decode
from storage.group_wire import INT8, INT16, INT32, INT64, Reader
from storage.ids import UUID_BYTES, ZERO_UUID, uuid_to_string
from storage.offsets_schemas import (
    CONSUMER_PROTOCOL_ASSIGNMENT,
    CONSUMER_PROTOCOL_SUBSCRIPTION,
    SCHEMAS,
    Array,
    Field,
    Kind,
    Struct,
)

UINT16 = struct.Struct(">H")

__all__ = ["Decoded", "decode_record", "missing_key_message", "to_json"]

_INTS = {"int8": INT8, "int16": INT16, "uint16": UINT16, "int32": INT32, "int64": INT64}
# A classic group whose members use Kafka's consumer protocol: their subscriptions and
# assignments are printed decoded (Kafka's ConsumerProtocol.PROTOCOL_TYPE).
CONSUMER_PROTOCOL_TYPE = "consumer"
CONSUMER_PROTOCOL_VERSIONS = range(0, 4)

# A JSON value as Kafka's converters build it.
Json = None | int | str | list["Json"] | dict[str, "Json"]


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
        # A nullable struct starts with a marker: in a tagged field an unsigned varint, 0
        # null (Kafka reads any value above 0 as present); elsewhere an int8, -1 null.
        what = f"the null marker of {field.name}"
        if field.tag is not None:
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


def _read_struct(r: Reader, schema: Struct, version: int, flexible: bool) -> dict[str, Json]:
    values: dict[str, Json] = {}
    for field in schema.fields:
        if field.tag is None and version in field.versions:
            values[field.name] = _read_field(r, field, version, flexible)
    if flexible:
        tags = _tagged(r)
        for field in schema.fields:
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
    return {f.name: values[f.name] for f in schema.fields if f.name in values}


# --- Jackson's compact JSON -----------------------------------------------------------------------

# Jackson escapes '"', '\\' and the control characters, five of them by their short names and
# the rest as \u00XX in upper case; everything else, non-ASCII included, is written as it is.
# Python's json module (its C encoder) writes the same but for the case of those hex digits.
_LOWER_HEX_ESCAPE = re.compile(r"(\\+)u00([0-9a-f]{2})")


def _upper_hex(match: re.Match[str]) -> str:
    backslashes, code = match.group(1), match.group(2)
    if len(backslashes) % 2 == 0:  # an escaped backslash followed by "u00..": text, not escape
        return match.group(0)
    return f"{backslashes}u00{code.upper()}"


def to_json(value: Json) -> str:
    """``value`` as Jackson's ``JsonNode.toString()`` writes it: no spaces, keys in order."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if "\\u00" in text:
        text = _LOWER_HEX_ESCAPE.sub(_upper_hex, text)
    return text


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
    data: bytes, schema: Struct, version: int, flexible: bool, part: str
) -> dict[str, Json] | str:
    """The message's JSON data, or Kafka's reason it cannot be read."""
    r = Reader(data, part)
    r.pos = INT16.size  # after the record type or version
    try:
        return _read_struct(r, schema, version, flexible)
    except GroupRecordError as e:
        reason = _detail(e)
    except _Unreadable as e:
        reason = str(e)
    return f"Could not read record with version {version} from {part}'s buffer due to: {reason}."


def _embedded(raw: bytes, schema: Struct) -> dict[str, Json] | None:
    """A consumer protocol message (int16 version, then its fields), or None if it does not
    parse."""
    if len(raw) < INT16.size:
        return None
    version = INT16.unpack_from(raw)[0]
    if version not in CONSUMER_PROTOCOL_VERSIONS:
        return None
    r = Reader(raw, "embedded")
    r.pos = INT16.size
    try:
        return _read_struct(r, schema, version, False)
    except (GroupRecordError, _Unreadable):
        return None


def _decode_consumer_protocol(data: dict[str, Json]) -> None:
    """As Kafka's tool does for a classic group of the consumer protocol: each member's
    subscription and assignment printed decoded in place of their bytes, the bytes kept
    where they do not parse."""
    members = data.get("members")
    if data.get("protocolType") != CONSUMER_PROTOCOL_TYPE or not isinstance(members, list):
        return
    for member in members:
        assert isinstance(member, dict)
        for name, schema in (
            ("subscription", CONSUMER_PROTOCOL_SUBSCRIPTION),
            ("assignment", CONSUMER_PROTOCOL_ASSIGNMENT),
        ):
            text = member.get(name)
            if isinstance(text, str):
                decoded = _embedded(base64.b64decode(text), schema)
                if decoded is not None:
                    member[name] = decoded


def decode_record(offset: int, key: bytes, value: bytes | None) -> Decoded:
    """The ``key:``/``payload:`` texts Kafka 4.4's ``--offsets-decoder`` prints for the record
    at ``offset`` with these key and value bytes (value None: a tombstone)."""
    if len(key) < INT16.size:
        return _error(offset, "Could not read version from key's buffer.")
    record_type = INT16.unpack_from(key)[0]
    schema = SCHEMAS.get(record_type)
    if schema is None:
        return Decoded(f"Unknown record type {record_type} at offset {offset}, skipping.")
    # Kafka reads a key "at version" its record type (its fields are read all the same).
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
        if schema.name == "GROUP_METADATA":
            _decode_consumer_protocol(value_data)
        payload = to_json({"version": str(version), "data": value_data})
    problem = None
    try:
        decode(key, value)
    except GroupRecordError as e:
        problem = f"Kafka reads it, our group coordinator would not load it: {e}"
    return Decoded(key_text, payload, problem)
