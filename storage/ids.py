"""Kafka's ids (cluster id, topic id, directory id): ``org.apache.kafka.common.Uuid``.

An id is 16 bytes (a random version-4 UUID, most significant half first) written as 22
characters of unpadded base64url (alphabet ``A-Z a-z 0-9 - _``), e.g. ``MkU3OEVBNTcwNTJENDM2Qk``.
16 bytes are 128 bits; 22 characters carry 132, so the last character's low 4 bits are zero.

Kafka's ``Uuid.randomUuid()`` never returns the reserved ids (all zeros, and ``0...01``, the
metadata topic's id) and never one that starts with ``-``, which a command line would take for
a flag; :func:`random_uuid` keeps the same rules.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid

UUID_BYTES = 16
UUID_CHARS = 22  # ceil(16 * 8 / 6)

ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"  # Uuid.ZERO_UUID: "no id"
METADATA_TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"  # Uuid.ONE_UUID, Kafka's __cluster_metadata topic id
RESERVED_UUIDS = frozenset({ZERO_UUID, METADATA_TOPIC_ID})

_UUID_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}")


def uuid_to_string(raw: bytes) -> str:
    """The 22-character form of 16 raw bytes, as Kafka's ``Uuid.toString()``."""
    if len(raw) != UUID_BYTES:
        raise ValueError(f"a Kafka uuid is {UUID_BYTES} bytes, got {len(raw)}")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def uuid_from_string(text: str) -> bytes:
    """The 16 bytes of a 22-character id; ``ValueError`` naming the text if it is not one."""
    if not is_valid_uuid(text):
        raise ValueError(
            f"{text!r} is not a Kafka uuid (22 characters of unpadded base64url, "
            "as `kraft-storage random-uuid` prints)"
        )
    return base64.urlsafe_b64decode(text + "==")


def is_valid_uuid(text: str) -> bool:
    """True if ``text`` is the canonical 22-character form of some 16 bytes.

    Stricter than Java's lenient decoder in one way only: the unused low bits of the last
    character must be zero, so that each id has exactly one spelling and ids compare as strings.
    Reserved ids are valid here (``partition.metadata`` may hold the metadata topic's id);
    :func:`random_uuid` never makes one.
    """
    if not isinstance(text, str) or not _UUID_SHAPE.fullmatch(text):
        return False
    try:
        raw = base64.urlsafe_b64decode(text + "==")
    except (binascii.Error, ValueError):
        return False
    return len(raw) == UUID_BYTES and uuid_to_string(raw) == text


def random_uuid() -> str:
    """A fresh random id, as Kafka's ``Uuid.randomUuid().toString()``."""
    while True:
        text = uuid_to_string(uuid.uuid4().bytes)
        if text not in RESERVED_UUIDS and not text.startswith("-"):
            return text
