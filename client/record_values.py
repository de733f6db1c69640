"""A record's key, value and headers as the produce API carries them (API.md, "Records in
JSON"), and their lengths as the batch format counts them: what the producer does to every
record it is given, kept apart from how it batches and sends them.

A ``str`` is sent as it is (stored as its UTF-8 bytes); ``bytes`` that are UTF-8 text are sent
as that text, other bytes as base64 (``key_b64``/``value_b64``, marked by :class:`Binary`).
Header values must be UTF-8 text: the API carries them as JSON strings.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

Header = tuple[str, bytes | None]


def utf8_len(text: str) -> int:
    """Bytes of ``text`` in UTF-8."""
    return len(text.encode("utf-8"))


def encoded(data: Any, what: str) -> tuple[Any, int | None]:
    """(the JSON form, its length in bytes) of a key or value: a str stays a str (stored as
    its UTF-8 bytes), bytes that are UTF-8 text become that text, other bytes base64."""
    if data is None:
        return None, None
    if isinstance(data, str):
        return data, len(data) if data.isascii() else len(data.encode("utf-8"))
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"{what} must be bytes, str or None, not {type(data).__name__}")
    try:
        return data.decode("utf-8"), len(data)
    except UnicodeDecodeError:
        return Binary(base64.b64encode(data).decode("ascii")), len(data)


class Binary(str):
    """Base64 of bytes that are not UTF-8 text (sent as ``key_b64``/``value_b64``)."""


def parse_headers(raw: Mapping[str, Any] | Sequence[tuple[str, Any]] | None) -> tuple[Header, ...]:
    """Headers given as a mapping or (name, value) pairs, values as bytes (None kept); raises
    TypeError for a name that is not a str or a value of another type, ValueError for a
    value that is not UTF-8 text."""
    if raw is None:
        return ()
    pairs = list(raw.items()) if isinstance(raw, Mapping) else list(raw)
    headers: list[Header] = []
    for name, value in pairs:
        if not isinstance(name, str):
            raise TypeError("a header name must be a str")
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, (bytearray, memoryview)):
            value = bytes(value)
        elif value is not None and not isinstance(value, bytes):
            raise TypeError(f"header {name!r} must be bytes, str or None")
        if value is not None:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                # The produce API carries header values as JSON strings (API.md).
                raise ValueError(f"header {name!r}: the value must be UTF-8 text") from None
        headers.append((name, value))
    return tuple(headers)
