"""Our operating errors (``client.protocol.ApiError``) as Kafka's error codes.

Kafka's clients act on the code alone (retry, refresh metadata, reset an offset, give up), so
each of our kinds maps to the code Kafka itself sends for that condition. Most of our kinds
carry Kafka's name already and map by it; the few that do not are mapped below, each with why.
A kind with no Kafka counterpart (they exist only on the HTTP listener: a media type, a path,
a connection limit) is UNKNOWN_SERVER_ERROR, which no Kafka client retries blindly.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from client.protocol import (
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    RECORD_TOO_LARGE,
    REQUEST_TOO_LARGE,
    SERVER_BUSY,
    TOO_MANY_REQUESTS,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
    ErrorKind,
)
from server.kafka.limits import ERROR_MESSAGE_CHARS_MAX

_BY_NAME: dict[str, ErrorCode] = {code.name.upper(): code for code in ErrorCode}

# Our kinds whose name is not Kafka's, mapped deliberately.
_EXPLICIT: dict[ErrorKind, ErrorCode] = {
    # A batch above max.message.bytes: Kafka's RecordTooLargeException is MESSAGE_TOO_LARGE (10).
    RECORD_TOO_LARGE: ErrorCode.message_too_large,
    # Above socket.request.max.bytes: Kafka closes the connection instead; where a handler
    # meets it (a body read through a shared path), the nearest code is MESSAGE_TOO_LARGE.
    REQUEST_TOO_LARGE: ErrorCode.message_too_large,
    # HTTP-only conditions, never raised by the Kafka listener's paths: no Kafka code says them.
    NOT_FOUND: ErrorCode.unknown_server_error,
    METHOD_NOT_ALLOWED: ErrorCode.unknown_server_error,
    UNSUPPORTED_MEDIA_TYPE: ErrorCode.unknown_server_error,
    TOO_MANY_REQUESTS: ErrorCode.unknown_server_error,
    SERVER_BUSY: ErrorCode.unknown_server_error,
}


def error_code_of(kind: ErrorKind) -> ErrorCode:
    """Kafka's code for one of our error kinds (module docstring)."""
    explicit = _EXPLICIT.get(kind)
    if explicit is not None:
        return explicit
    return _BY_NAME.get(kind.name, ErrorCode.unknown_server_error)


def kafka_error_code(e: ApiError) -> ErrorCode:
    """Kafka's code for an operating error."""
    return error_code_of(e.kind)


def error_message(e: ApiError) -> str:
    """The error's message for a response's error_message field, cut to a bounded length (a
    message names what was wrong; it never echoes a request back)."""
    text = e.message
    if len(text) > ERROR_MESSAGE_CHARS_MAX:
        text = text[: ERROR_MESSAGE_CHARS_MAX - 3] + "..."
    return text
