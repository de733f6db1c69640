"""A record's key, value and headers as the producer takes them, turned into the bytes a record
batch carries: what the producer does to every record it is given, kept apart from how it
batches and sends them.

A ``str`` is stored as its UTF-8 bytes; ``bytes`` (``bytearray``, ``memoryview``) as they are;
None as null (a null value is a tombstone). Header values likewise, any bytes: the batch format
carries them as bytes (the JSON produce API could carry only UTF-8 text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Header = tuple[str, bytes | None]


def as_bytes(data: Any, what: str) -> bytes | None:
    """The bytes of a key or value (None stays None); raises TypeError for another type."""
    if data is None or type(data) is bytes:
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, str or None, not {type(data).__name__}")


def parse_headers(raw: Mapping[str, Any] | Sequence[tuple[str, Any]] | None) -> list[Header]:
    """Headers given as a mapping or (name, value) pairs, values as bytes (None kept; a str
    as its UTF-8); raises TypeError for a name that is not a str or a value of another
    type, UnicodeEncodeError (a ValueError) for a name that has no UTF-8 form."""
    if raw is None:
        return []
    pairs = list(raw.items()) if isinstance(raw, Mapping) else list(raw)
    headers: list[Header] = []
    for name, value in pairs:
        if not isinstance(name, str):
            raise TypeError("a header name must be a str")
        name.encode("utf-8")  # a name with lone surrogates raises UnicodeEncodeError here
        headers.append((name, as_bytes(value, f"header {name!r}")))
    return headers
