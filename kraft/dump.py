"""The metadata quorum's dump file: the whole metadata state at one Raft index.

pysyncobj writes a "full dump" at log compaction and then drops the journal entries it covers;
it also sends the dump's bytes to a follower that is too far behind (Raft's install snapshot).
Its own dump is a pickle written by a forked child and renamed without fsync. The quorum hands
pysyncobj a serializer and a deserializer (its ``serializer``/``deserializer`` options) that
write and read this format instead: JSON and a CRC, no pickle, fsynced.

Layout, integers big-endian::

    offset  size  field
    0       8     magic          b"KRDUMP\\r\\n"
    8       4     version        1
    12      4     crc            CRC-32 (zlib) of every byte from offset 16 to the end
    16      4     header_length  bytes of the header JSON
    20      4     state_length   bytes of the state snapshot
    24      ...   header JSON    {"last_entry": [index, term, command_b64],
                                  "prev_entry": [index, term, command_b64],
                                  "voters": ["host:port", ...]}
    ...     ...   state          MetadataState.to_snapshot() at last_entry's index

``last_entry`` is the last applied Raft entry and ``prev_entry`` the one before it: pysyncobj
restarts its journal from these two entries after loading a dump.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kraft.errors import MetadataSnapshotError
from kraft.journal import Entry
from kraft.limits import JOURNAL_ENTRY_BYTES_MAX, SNAPSHOT_BYTES_MAX

MAGIC = b"KRDUMP\r\n"
FORMAT_VERSION = 1
HEADER = struct.Struct(">8sIIII")  # magic, version, crc, header_length, state_length
_CRC_START = struct.calcsize(">8sII")  # the CRC covers the lengths, the header and the state
_HEADER_JSON_BYTES_MAX = 4 * JOURNAL_ENTRY_BYTES_MAX  # two entries in base64, and the voters


@dataclass(frozen=True)
class Dump:
    """A decoded dump: the two Raft entries it ends with, the voters, the state's bytes."""

    last_entry: Entry
    prev_entry: Entry
    voters: tuple[str, ...]
    state: bytes


def encode_dump(dump: Dump) -> bytes:
    """The bytes of a dump file."""
    header = orjson.dumps(
        {
            "last_entry": _entry_to_json(dump.last_entry),
            "prev_entry": _entry_to_json(dump.prev_entry),
            "voters": list(dump.voters),
        }
    )
    tail = struct.pack(">II", len(header), len(dump.state)) + header + dump.state
    return struct.pack(">8sII", MAGIC, FORMAT_VERSION, zlib.crc32(tail)) + tail


def decode_dump(data: bytes) -> Dump:
    """A dump from its bytes; MetadataSnapshotError for anything malformed."""
    if len(data) < HEADER.size:
        raise MetadataSnapshotError(
            f"expected a dump of at least {HEADER.size} bytes, found {len(data)}"
        )
    magic, version, crc, header_length, state_length = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise MetadataSnapshotError(
            f"expected dump magic {MAGIC!r} version {FORMAT_VERSION}, "
            f"found {magic!r} version {version}"
        )
    if header_length > _HEADER_JSON_BYTES_MAX or state_length > SNAPSHOT_BYTES_MAX:
        raise MetadataSnapshotError(
            f"dump section lengths {header_length} and {state_length} exceed the limits"
        )
    if len(data) != HEADER.size + header_length + state_length:
        raise MetadataSnapshotError(
            f"expected a dump of {HEADER.size + header_length + state_length} bytes, "
            f"found {len(data)}"
        )
    if zlib.crc32(memoryview(data)[_CRC_START:]) != crc:
        raise MetadataSnapshotError("the dump fails its CRC")
    start = HEADER.size
    try:
        header = orjson.loads(data[start : start + header_length])
        if type(header) is not dict or set(header) != {"last_entry", "prev_entry", "voters"}:
            raise ValueError("the header holds last_entry, prev_entry and voters")
        last = _entry_from_json(header["last_entry"])
        prev = _entry_from_json(header["prev_entry"])
        voters = header["voters"]
        if type(voters) is not list or not all(type(v) is str for v in voters):
            raise ValueError(f"voters must be a list of strings, got {voters!r:.200}")
    except (orjson.JSONDecodeError, ValueError) as e:
        raise MetadataSnapshotError(f"bad dump header: {e}") from None
    if prev[1] + 1 != last[1]:
        raise MetadataSnapshotError(f"dump entries {prev[1]} and {last[1]} do not follow")
    return Dump(last, prev, tuple(voters), bytes(data[start + header_length :]))


def write_dump_file(path: Path, dump: Dump) -> int:
    """Write `dump` to `path` and fsync it (the caller renames it); returns the inode number."""
    data = encode_dump(dump)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def voters_of(nodes: Sequence[Any]) -> tuple[str, ...]:
    """The addresses of pysyncobj's node objects (or strings), sorted. An observer's own
    node (None: it has no address) is not a voter and is left out."""
    return tuple(sorted(str(getattr(n, "id", n)) for n in nodes if n is not None))


def _entry_to_json(entry: Entry) -> list[Any]:
    command, index, term = entry
    return [index, term, base64.b64encode(bytes(command)).decode("ascii")]


def _entry_from_json(obj: Any) -> Entry:
    if type(obj) is not list or len(obj) != 3:
        raise ValueError(f"an entry is [index, term, command_b64], got {obj!r:.200}")
    index, term, command = obj
    if type(index) is not int or type(term) is not int or type(command) is not str:
        raise ValueError(f"an entry is [index, term, command_b64], got {obj!r:.200}")
    if index < 1 or term < 0:
        raise ValueError(f"entry index {index} or term {term} out of range")
    try:
        return (base64.b64decode(command, validate=True), index, term)
    except (binascii.Error, ValueError):
        raise ValueError("an entry's command is not base64") from None
