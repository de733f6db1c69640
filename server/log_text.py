"""Text a client chose, made safe for the node's log, and the error a relayed answer carries.

The node logs one line per client error (``server/http_server.py``) and a few DEBUG lines
naming what a client sent (``server/http_security.py``). Each quotes the client's text through
:func:`printable`: cut to a limit (a megabyte topic name must not make a megabyte line) and
with every non-printable character escaped (a ``%0a`` in a path must not forge a line).
"""

from __future__ import annotations

import orjson
from aiohttp import web

# How much of a client's path and of an error message the client-error line quotes.
LOGGED_PATH_CHARS_MAX = 200
LOGGED_MESSAGE_CHARS_MAX = 300
# ... and of a name a client sent (a user, a topic, a group) in a line of its own.
LOGGED_NAME_CHARS_MAX = 100


def printable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with every non-printable character escaped
    (``\\n`` as ``\\x0a``): a stranger's bytes must not forge a log line, nor ring a terminal."""
    cut = text if len(text) <= limit else text[:limit]
    if not cut.isprintable():
        cut = "".join(c if c.isprintable() else _escape(c) for c in cut)
    return cut if len(text) <= limit else cut + f"...({len(text)} chars)"


def _escape(c: str) -> str:
    code = ord(c)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def error_of(response: web.StreamResponse) -> tuple[str, str]:
    """(Kafka error name, message) of an error answer built by another node (a forwarded
    admin request), read from its JSON; ("", "") when it has none."""
    body = getattr(response, "body", None)
    if isinstance(body, bytes) and len(body) <= 1 << 16:
        try:
            fields = orjson.loads(body)
        except orjson.JSONDecodeError:
            return "", ""
        if isinstance(fields, dict):
            return str(fields.get("error", "")), str(fields.get("message", ""))
    return "", ""
