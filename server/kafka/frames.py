"""Kafka's request and response frames, without I/O: the size prefix, the request header
(v1 and v2) and the response header (v0 and v1). Payloads are kio's: decoded and encoded by
the codecs kio generates from Kafka's message schemas (never by hand).

The bytes on the wire (big-endian)::

    request   int32   size          bytes after this field (limited by socket.request.max.bytes)
              int16   api_key
              int16   api_version
              int32   correlation_id
              string  client_id     int16 length, -1 for null (header v1 and v2 alike)
              tagged fields         header v2 only (the API version is flexible)
              ...     body          the API's request at api_version

    response  int32   size
              int32   correlation_id
              tagged fields         header v1 only (flexible versions; never ApiVersions)
              ...     body

A request's header version follows from its API's request schema at that version
(``__header_schema__`` of kio's class). For a version above the highest we know, the header
is read as at the highest known version, as Kafka reads an ApiVersions request from a newer
client: its fixed part is enough to answer it.

Anything that does not parse raises :class:`FrameError` (the peer broke it): the listener
closes the connection, as Kafka's broker does.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.schema.response_header.v0.header import ResponseHeader as ResponseHeaderV0
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import SerialError

from server.kafka.limits import REQUEST_HEADER_PREFIX_BYTES

SIZE = struct.Struct(">i")  # the frame's size prefix
# api_key, api_version, correlation_id: the part every request header version shares.
HEADER_PREFIX = struct.Struct(">hhi")
assert HEADER_PREFIX.size == REQUEST_HEADER_PREFIX_BYTES
CORRELATION_ID = struct.Struct(">i")

_REQUEST_HEADERS: dict[int, Any] = {1: RequestHeaderV1, 2: RequestHeaderV2}
_RESPONSE_HEADERS: dict[int, Any] = {0: ResponseHeaderV0, 1: ResponseHeaderV1}


class FrameError(Exception):
    """Bytes that are not a Kafka request: the connection closes."""


class NotServedError(FrameError):
    """A request for an API, version or kind this node does not serve: the connection
    closes, as Kafka's broker closes it for an API key it does not have."""


class CloseConnection(Exception):  # noqa: N818 (an instruction to the listener, not an error)
    """A request answered by closing its connection: an acks=0 Produce with a partition
    error (Kafka's KafkaApis closes it, so the client learns of the error and refreshes its
    metadata; it gets no answer to read one from)."""


def frame_size(prefix: bytes, max_bytes: int, bare_token: bool = False) -> int:
    """The size a frame's 4-byte prefix announces, checked before its body is read: at least
    a header's fixed part, at most ``max_bytes`` (socket.request.max.bytes; Kafka's
    InvalidReceiveException). A ``bare_token`` (a SASL token after SaslHandshake v0) has no
    header: any size from 0 to ``max_bytes``."""
    size: int = SIZE.unpack(prefix)[0]
    if bare_token:
        if size < 0:
            raise FrameError(f"a SASL token frame of {size} bytes")
    elif size < HEADER_PREFIX.size:
        raise FrameError(f"a frame of {size} bytes cannot hold a request header")
    if size > max_bytes:
        raise FrameError(
            f"a request of {size} bytes is larger than socket.request.max.bytes ({max_bytes})"
        )
    return size


@dataclass(frozen=True)
class RequestHead:
    """A request's header as read: what the dispatch needs besides the body."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body_offset: int  # where the body starts in the frame


def peek(frame: bytes) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id): the fixed part of every header version."""
    if len(frame) < HEADER_PREFIX.size:
        raise FrameError(f"a frame of {len(frame)} bytes cannot hold a request header")
    api_key, api_version, correlation_id = HEADER_PREFIX.unpack_from(frame)
    return api_key, api_version, correlation_id


def parse_header(frame: bytes, header_version: int) -> RequestHead:
    """The request header of ``frame`` (the bytes after the size prefix) in ``header_version``
    (1 or 2); FrameError if it does not parse."""
    cls = _REQUEST_HEADERS.get(header_version)
    assert cls is not None, f"request header version {header_version}"
    try:
        header, size = _reader(cls)(frame, 0)
    except (SerialError, KeyError) as e:  # KeyError: kio meets a tag it does not know
        raise FrameError(f"the request header does not parse: {e}") from None
    return RequestHead(
        int(header.request_api_key),
        int(header.request_api_version),
        int(header.correlation_id),
        header.client_id,
        size,
    )


def decode(cls: type[Any], frame: bytes, offset: int) -> Any:
    """The kio entity ``cls`` read from ``frame`` at ``offset``; FrameError when it does not
    parse. Its lengths are checked against the frame first (``server/kafka/bounds.py``: kio
    would reserve memory for whatever an array's length says). Bytes after the body are
    ignored, as Kafka's RequestContext.parseRequest ignores them: librdkafka 2.12-2.16 sends
    three after a Metadata v13 body for all topics (``AdminClient.list_topics``), and Kafka
    answers it."""
    from server.kafka import bounds  # it imports FrameError from here

    bounds.check(cls, frame, offset)
    try:
        value, size = _reader(cls)(frame, offset)
    except (SerialError, KeyError, ValueError) as e:  # ValueError: a negative array length
        raise FrameError(f"the request body does not parse: {e}") from None
    return value


def encode(value: Any) -> bytes:
    """A kio entity's bytes."""
    buffer = io.BytesIO()
    _writer(type(value))(buffer, value)
    return buffer.getvalue()


def response_frame(correlation_id: int, header_version: int, body: bytes) -> bytes:
    """A whole response: size prefix, response header (v0 or v1) and ``body``."""
    cls = _RESPONSE_HEADERS.get(header_version)
    assert cls is not None, f"response header version {header_version}"
    header = encode(cls(correlation_id=correlation_id))
    return SIZE.pack(len(header) + len(body)) + header + body


_readers: dict[type[Any], Any] = {}
_writers: dict[type[Any], Any] = {}


def _reader(cls: type[Any]) -> Any:
    reader = _readers.get(cls)
    if reader is None:
        reader = _readers[cls] = entity_reader(cls)
    return reader


def _writer(cls: type[Any]) -> Any:
    writer = _writers.get(cls)
    if writer is None:
        writer = _writers[cls] = entity_writer(cls)
    return writer
