"""Kafka's message field types, as the coordinator's records use them: the writer's helpers and
a bounded reader. Pure; no I/O.

Kinds of field, all integers big-endian (Kafka's ``protocol.types``)::

    int8/16/32/64     fixed size, signed
    string            int16 length, then UTF-8 bytes (at most 32767; -1 = null)
    compact string    unsigned varint length + 1, then UTF-8 bytes; 0 = null
    bytes             int32 length, then the bytes (-1 = null)
    compact bytes     unsigned varint length + 1, then the bytes; 0 = null
    array             int32 count, then the elements (-1 = null)
    compact array     unsigned varint count + 1, then the elements; 0 = null
    uuid              16 bytes (Kafka's Uuid; our 22-character base64url id, storage/ids.py)
    tagged fields     unsigned varint count, then per field: unsigned varint tag, unsigned
                      varint size, ``size`` bytes; tags ascending. Readers skip tags they do
                      not know, which is how a schema grows without a new version.

Unsigned varints are LEB128 (7 bits a byte, low group first), at most 5 bytes.

:class:`Reader` checks that the bytes are there before each read, and that a count fits in the
bytes left before anything is built from it, so no input makes it allocate more than the
input's size. It raises one error, :class:`GroupRecordError`, saying what it expected, what it
found and at which byte.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

from storage.ids import UUID_BYTES, uuid_to_string

STRING_BYTES_MAX = 0x7FFF  # Kafka refuses longer strings, compact ones included
VARINT_BYTES_MAX = 5  # an unsigned varint carries at most 32 bits

# Fixed-size fields, one struct each.
INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
# A tagged field at its smallest: one byte of tag, one of size.
TAGGED_FIELD_BYTES_MIN = 2


class GroupRecordError(ValueError):
    """Bytes that are not a ``__consumer_offsets`` record this module knows how to read."""

    def __init__(self, expected: str, found: str, position: int, part: str) -> None:
        self.expected = expected
        self.found = found
        self.position = position
        self.part = part
        super().__init__(
            f"corrupt __consumer_offsets record {part} at byte {position}: "
            f"expected {expected}, found {found}"
        )


# --- writer ------------------------------------------------------------------------------------


def uvarint(value: int) -> bytes:
    """``value`` (0 <= value < 2^31) as an unsigned varint."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def string(value: str) -> bytes:
    """A non-flexible string: int16 length, UTF-8 bytes (the caller checked the length)."""
    raw = value.encode("utf-8")
    return INT16.pack(len(raw)) + raw


def nullable_string(value: str | None) -> bytes:
    """A non-flexible string; None as null (length -1)."""
    return INT16.pack(-1) if value is None else string(value)


def byte_string(value: bytes) -> bytes:
    """Non-flexible bytes: int32 length, the bytes."""
    return INT32.pack(len(value)) + value


def compact_bytes(value: bytes) -> bytes:
    """Compact bytes (never null here)."""
    return uvarint(len(value) + 1) + value


def compact_string(value: str | None) -> bytes:
    """A compact string; None as null."""
    if value is None:
        return b"\x00"
    raw = value.encode("utf-8")
    return uvarint(len(raw) + 1) + raw


def tagged_fields(fields: list[tuple[int, bytes]]) -> bytes:
    """A tagged-field section; ``fields`` ascending by tag."""
    out = bytearray(uvarint(len(fields)))
    for tag, data in fields:
        out += uvarint(tag) + uvarint(len(data)) + data
    return bytes(out)


# --- reader ------------------------------------------------------------------------------------


class Reader:
    """A cursor over one key or value; every read checks the bytes are there first."""

    def __init__(self, data: bytes, part: str) -> None:
        self.data = data
        self.pos = 0
        self.part = part

    def fail(self, expected: str, found: str, position: int | None = None) -> GroupRecordError:
        """The error to raise, at ``position`` (default: where the cursor is)."""
        return GroupRecordError(
            expected, found, self.pos if position is None else position, self.part
        )

    def left(self) -> int:
        """Bytes not read yet."""
        return len(self.data) - self.pos

    def take(self, size: int, what: str) -> bytes:
        """The next ``size`` bytes, checked to be there."""
        if size > self.left():
            raise self.fail(f"{size} bytes of {what}", f"{self.left()} bytes left")
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw

    def fixed(self, fmt: struct.Struct, what: str) -> int:
        """One fixed-size integer field."""
        value: int = fmt.unpack(self.take(fmt.size, what))[0]
        return value

    def uvarint(self, what: str) -> int:
        """An unsigned varint below 2^31 of at most 5 bytes."""
        start = self.pos
        value = 0
        for i in range(VARINT_BYTES_MAX):
            if self.pos >= len(self.data):
                raise self.fail(f"an unsigned varint ({what})", "the end of the bytes", start)
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if value > 0x7FFFFFFF:
                    raise self.fail(f"an unsigned varint ({what}) below 2^31", str(value), start)
                return value
        raise self.fail(
            f"an unsigned varint ({what}) of at most {VARINT_BYTES_MAX} bytes",
            "a longer one",
            start,
        )

    def utf8(self, size: int, what: str) -> str:
        start = self.pos
        raw = self.take(size, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(
                f"UTF-8 ({what})", f"{exc.reason} at byte {start + exc.start}", start
            ) from None

    def string(self, what: str) -> str:
        """A non-flexible string, never null."""
        start = self.pos
        size = self.fixed(INT16, f"the length of {what}")
        if size < 0:
            raise self.fail(f"the length of {what} (never null)", str(size), start)
        return self.utf8(size, what)

    def nullable_string(self, what: str) -> str | None:
        """A non-flexible string or None (length -1)."""
        start = self.pos
        size = self.fixed(INT16, f"the length of {what}")
        if size == -1:
            return None
        if size < 0:
            raise self.fail(f"the length of {what} (-1 for null, else >= 0)", str(size), start)
        return self.utf8(size, what)

    def byte_string(self, what: str) -> bytes:
        """Non-flexible bytes, never null: int32 length, the bytes."""
        start = self.pos
        size = self.fixed(INT32, f"the length of {what}")
        if size < 0:
            raise self.fail(f"the length of {what} (never null)", str(size), start)
        return self.take(size, what)

    def compact_bytes(self, what: str) -> bytes:
        """Compact bytes, never null."""
        start = self.pos
        size = self.uvarint(f"the length of {what}") - 1
        if size < 0:
            raise self.fail(f"{what} (never null)", "null", start)
        return self.take(size, what)

    def array_count(self, what: str, element_bytes_min: int) -> int:
        """The count of a non-null non-flexible array (int32); its elements must fit in the
        bytes left."""
        start = self.pos
        count = self.fixed(INT32, f"the count of {what}")
        if count < 0:
            raise self.fail(f"{what} (never null)", str(count), start)
        if count * element_bytes_min > self.left():
            raise self.fail(
                f"{count} elements of {what} (at least {element_bytes_min} bytes each)",
                f"{self.left()} bytes left",
                start,
            )
        return count

    def compact_string(self, what: str) -> str:
        """A compact string, never null."""
        start = self.pos
        value = self.compact_nullable_string(what)
        if value is None:
            raise self.fail(f"{what} (never null)", "null", start)
        return value

    def compact_nullable_string(self, what: str) -> str | None:
        """A compact string or None."""
        start = self.pos
        size = self.uvarint(f"the length of {what}") - 1
        if size < 0:
            return None
        if size > STRING_BYTES_MAX:
            raise self.fail(f"{what} of at most {STRING_BYTES_MAX} bytes", f"{size} bytes", start)
        return self.utf8(size, what)

    def compact_count(self, what: str, element_bytes_min: int) -> int:
        """The count of a non-null compact array; its elements must fit in the bytes left."""
        start = self.pos
        count = self.uvarint(f"the count of {what}") - 1
        if count < 0:
            raise self.fail(f"{what} (never null)", "null", start)
        if count * element_bytes_min > self.left():
            raise self.fail(
                f"{count} elements of {what} (at least {element_bytes_min} bytes each)",
                f"{self.left()} bytes left",
                start,
            )
        return count

    def uuid(self, what: str) -> str:
        """16 bytes as a 22-character id."""
        return uuid_to_string(self.take(UUID_BYTES, what))

    def tagged(self, what: str) -> dict[int, tuple[int, bytes]]:
        """A tagged-field section: tag -> (position of its data, data). Tags must ascend."""
        start = self.pos
        count = self.uvarint(f"the count of tagged fields of {what}")
        if count * TAGGED_FIELD_BYTES_MIN > self.left():
            raise self.fail(f"{count} tagged fields of {what}", f"{self.left()} bytes left", start)
        fields: dict[int, tuple[int, bytes]] = {}
        previous = -1
        for _ in range(count):
            tag_at = self.pos
            tag = self.uvarint(f"a tag of {what}")
            if tag <= previous:
                raise self.fail(f"a tag of {what} above {previous}", str(tag), tag_at)
            previous = tag
            size = self.uvarint(f"the size of tag {tag} of {what}")
            at = self.pos
            fields[tag] = (at, self.take(size, f"tag {tag} of {what}"))
        return fields

    def tag_int(
        self,
        fields: dict[int, tuple[int, bytes]],
        tag: int,
        fmt: struct.Struct,
        what: str,
        default: int,
    ) -> int:
        """The integer in tagged field ``tag`` (exactly ``fmt.size`` bytes), or ``default``."""
        if tag not in fields:
            return default
        at, data = fields[tag]
        if len(data) != fmt.size:
            raise self.fail(f"{fmt.size} bytes of {what} (tag {tag})", f"{len(data)} bytes", at)
        value: int = fmt.unpack(data)[0]
        return value

    def done(self) -> None:
        """Checks nothing is left after the last field."""
        if self.left():
            raise self.fail("the end of the bytes", f"{self.left()} more bytes")


_T = TypeVar("_T")


def guarded(r: Reader, read: Callable[[], _T]) -> _T:
    """``read()``, with any other ValueError of a record's own checks reported as corruption:
    bytes that hold a field a record may not have are corrupt bytes, not a caller's bug."""
    try:
        result = read()
    except GroupRecordError:
        raise
    except ValueError as exc:
        raise r.fail("a valid record", str(exc)) from None
    r.done()
    return result
