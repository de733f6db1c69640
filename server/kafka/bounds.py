"""A walk over a request's bytes, before kio decodes them, that refuses any length reaching
past the frame.

Why: kio's native decoder reserves room for a compact array from its length prefix before it
reads an element, so a frame of a few bytes announcing 2^32 elements makes it ask for tens of
gigabytes and abort the whole process (found by feeding it random bytes). A Kafka broker
checks each length against the bytes that remain; this walk does that first, then kio
decodes what is known to fit.

The walk follows kio's own classes of the message (their fields, kafka types and tags, the
same schema kio decodes with): it reads lengths and skips what they cover, and builds
nothing. Rules checked, as Kafka's readers check them:

- every string, bytes or records length fits in the bytes left;
- every array's element count is at most the bytes left (an element takes at least one
  byte: a flexible entity its tag buffer, a primitive its width);
- tagged fields: each one's size fits; a tag the message does not define is refused (kio
  cannot skip one; Kafka's readers would);
- the walk ends inside the frame;
- null (length -1) only where the field is nullable at this version: kio would decode a null
  array the schema says is always there as None, and a handler iterating it would fail (a
  Produce of zeros had ``topic_data=None``). Kafka's generated readers refuse it ("non-nullable
  field ... was serialized as null") and the broker closes the connection; so does this walk;
- at most REQUEST_ARRAY_ELEMENTS_MAX array elements over the whole request (ours: each
  element costs Python time to walk, decode and answer, in the event loop).

Only flexible versions hold compact (varint-counted) arrays, the ones kio over-reserves; a
non-flexible message is walked too (its legacy lengths), which costs little and keeps one rule.
"""

from __future__ import annotations

import dataclasses
import struct
import typing
from typing import Any

from kio.serial.errors import SerialError
from kio.serial.readers import read_unsigned_varint

from server.kafka.frames import FrameError
from server.kafka.limits import REQUEST_ARRAY_ELEMENTS_MAX

_WIDTH: dict[str, int] = {
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "error_code": 2,
    "int32": 4,
    "uint32": 4,
    "timedelta_i32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "timedelta_i64": 8,
    "datetime_i64": 8,
    "uuid": 16,
}
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


class _Walk:
    def __init__(self, buf: bytes, end: int, elements: list[int] | None = None) -> None:
        self.buf = buf
        self.end = end
        # Array elements walked so far, shared with the walks of tagged fields.
        self.elements = elements if elements is not None else [0]

    def need(self, pos: int, size: int, what: str) -> int:
        if size < 0 or pos + size > self.end:
            raise FrameError(f"{what} of {size} bytes reaches past the request's end")
        return pos + size

    def uvarint(self, pos: int) -> tuple[int, int]:
        try:
            value, size = read_unsigned_varint(self.buf, pos)
        except (SerialError, ValueError) as e:  # ValueError: more than 5 bytes
            raise FrameError(f"a varint that does not parse: {e}") from None
        self.need(pos, size, "a varint")
        return int(value), pos + size

    def fixed(self, fmt: struct.Struct, pos: int) -> tuple[int, int]:
        self.need(pos, fmt.size, "a length")
        return int(fmt.unpack_from(self.buf, pos)[0]), pos + fmt.size

    def count(self, pos: int, flexible: bool) -> tuple[int, int]:
        """An array's element count (-1 for null)."""
        if flexible:
            n, pos = self.uvarint(pos)
            return n - 1, pos
        return self.fixed(_INT32, pos)

    def primitive(
        self, kafka_type: str, pos: int, flexible: bool, name: str, nullable: bool = False
    ) -> int:
        width = _WIDTH.get(kafka_type)
        if width is not None:
            return self.need(pos, width, kafka_type)
        if kafka_type in ("string", "bytes", "records"):
            if flexible:
                n, pos = self.uvarint(pos)
                length = n - 1
            else:
                length, pos = self.fixed(_INT16 if kafka_type == "string" else _INT32, pos)
            if length < -1:
                raise FrameError(f"a {kafka_type} of {length} bytes")
            if length == -1 and not nullable:
                raise FrameError(f"non-nullable field {name} was serialized as null")
            return pos if length == -1 else self.need(pos, length, kafka_type)
        raise AssertionError(f"a kafka type this walk does not know: {kafka_type}")

    def entity(self, cls: Any, pos: int) -> int:
        flexible = bool(cls.__flexible__)
        tagged: dict[int, dataclasses.Field[Any]] = {}
        for f in dataclasses.fields(cls):
            tag = f.metadata.get("tag")
            if tag is not None:
                tagged[int(tag)] = f
                continue
            pos = self.field(f, pos, flexible)
        if flexible:
            pos = self.tags(tagged, pos)
        return pos

    def field(self, f: dataclasses.Field[Any], pos: int, flexible: bool) -> int:
        hint: Any = f.type
        nullable = False
        if typing.get_origin(hint) in (typing.Union, typing.get_origin(int | None)):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
            nullable = True
        if typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            count, pos = self.count(pos, flexible)
            if count < -1:
                raise FrameError(f"{f.name}: an array of {count} elements")
            if count == -1 and not nullable:
                raise FrameError(f"non-nullable field {f.name} was serialized as null")
            if count > self.end - pos:
                raise FrameError(
                    f"{f.name}: an array of {count} elements in {self.end - pos} bytes"
                )
            self.elements[0] += max(count, 0)
            if self.elements[0] > REQUEST_ARRAY_ELEMENTS_MAX:
                raise FrameError(
                    f"more than {REQUEST_ARRAY_ELEMENTS_MAX} array elements in one request"
                )
            for _ in range(max(count, 0)):
                if dataclasses.is_dataclass(item):
                    pos = self.entity(item, pos)
                else:
                    pos = self.primitive(f.metadata["kafka_type"], pos, flexible, f.name)
            return pos
        if dataclasses.is_dataclass(hint):
            if nullable:
                # A nullable struct (DescribeTopicPartitions' cursor) opens with an int8:
                # negative for null, as Kafka's generated readers read it.
                marker = self.need(pos, 1, "a nullable struct's marker")
                if self.buf[pos] >= 0x80:
                    return marker
                pos = marker
            return self.entity(hint, pos)
        return self.primitive(f.metadata["kafka_type"], pos, flexible, f.name, nullable)

    def tags(self, tagged: dict[int, dataclasses.Field[Any]], pos: int) -> int:
        count, pos = self.uvarint(pos)
        if count > self.end - pos:
            raise FrameError(f"{count} tagged fields in {self.end - pos} bytes")
        for _ in range(count):
            tag, pos = self.uvarint(pos)
            size, pos = self.uvarint(pos)
            end = self.need(pos, size, f"tagged field {tag}")
            f = tagged.get(tag)
            if f is None:
                raise FrameError(f"tagged field {tag} is not one this version defines")
            inner = _Walk(self.buf, end, self.elements)
            if inner.field(f, pos, True) != end:
                raise FrameError(f"tagged field {tag} does not fill its {size} bytes")
            pos = end
        return pos


def check(cls: Any, buf: bytes, offset: int) -> None:
    """Raises FrameError unless every length in the ``cls`` message at ``offset`` fits in
    ``buf`` (module docstring); then kio may decode it."""
    _Walk(buf, len(buf)).entity(cls, offset)
