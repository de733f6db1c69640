"""HTTP/1.1 on a raw socket, for the fuzz tier: requests are sent byte for byte as built (no
client library to normalise a method, a path or a header away), and the answer is parsed
strictly, so a malformed response is told apart from a closed or a hanging connection.

One request per connection. The outcome is one of:

- :class:`Answer`: a complete, well-formed response (interim ``1xx`` answers skipped; a
  stream, NDJSON or Server-Sent Events, is complete once its head has arrived);
- :class:`Closed`: the server closed or reset the connection before a byte of an answer;
- :class:`Malformed`: bytes that are not an HTTP/1.1 response, or a response cut short;
- :class:`Hung`: neither an answer nor a close before the deadline.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import time
from dataclasses import dataclass, field

CRLF = b"\r\n"
# A response head bigger than this is not one our server writes.
HEAD_BYTES_MAX = 64 * 1024
# A response body bigger than this is read no further (a fuzz answer is an error or a page of
# records; the fetch size limits keep it far below).
BODY_BYTES_MAX = 16 * 1024 * 1024
# Content types of the never-ending fetch streams (follow=true).
STREAM_TYPES = ("application/x-ndjson", "text/event-stream")

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: ([\t -~\x80-\xff]*))?")
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t -~\x80-\xff]*?)[ \t]*")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?")


@dataclass(frozen=True)
class Request:
    """One request exactly as it goes on the wire.

    ``headers`` are sent in order and as given; ``Host`` and ``Connection: close`` come first
    unless ``bare``, and ``Content-Length`` is added for a body unless a header of that name
    (or ``Transfer-Encoding``) is given.
    """

    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    version: bytes = b"HTTP/1.1"
    bare: bool = False
    # The whole request as bytes (the other fields unused): heads that are not HTTP at all.
    raw: bytes = b""

    def to_bytes(self, host: bytes) -> bytes:
        if self.raw:
            return self.raw
        names = {name.strip().lower() for name, _ in self.headers}
        lines = [self.method + b" " + self.target + b" " + self.version]
        if not self.bare:
            lines.append(b"Host: " + host)
            if b"connection" not in names:
                lines.append(b"Connection: close")
            if self.body and not names & {b"content-length", b"transfer-encoding"}:
                lines.append(b"Content-Length: " + str(len(self.body)).encode())
        lines.extend(name + b": " + value for name, value in self.headers)
        return CRLF.join(lines) + CRLF + CRLF + self.body

    def summary(self, limit: int = 1500) -> str:
        """The request as a short readable line, for reports: a run of one byte is written
        ``<N x b'a'>``."""
        whole = self.to_bytes(b"127.0.0.1:PORT")
        data = whole[: 16 * limit]  # a 9 MiB body is not read to the end for a summary
        parts = re.split(rb"((.)\2{31,})", data, flags=re.S)
        text = ""
        for i in range(0, len(parts), 3):
            text += repr(parts[i])[2:-1]
            if i + 1 < len(parts):
                text += f"<{len(parts[i + 1])} x {parts[i + 2]!r}>"
        text = "b'" + text + "'"
        return text if len(text) <= limit else text[:limit] + f"... ({len(whole)} bytes)"


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    streamed: bool = False  # a follow stream: only its head was read

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name.lower()]
        return values[0] if values else None

    def header_count(self, name: str) -> int:
        return sum(1 for k, _ in self.headers if k == name.lower())

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def summary(self, limit: int = 500) -> str:
        body = self.body[:limit].decode(errors="replace")
        more = f"... ({len(self.body)} bytes)" if len(self.body) > limit else ""
        return f"{self.status} {self.media_type or '(no type)'} {body!r}{more}"


@dataclass(frozen=True)
class Closed:
    how: str  # "eof" or "reset"

    def summary(self) -> str:
        return f"connection closed without an answer ({self.how})"


@dataclass(frozen=True)
class Malformed:
    problem: str
    raw: bytes = field(repr=False)

    def summary(self) -> str:
        return f"malformed answer: {self.problem}; got {self.raw[:300]!r}"


@dataclass(frozen=True)
class Hung:
    waited_s: float
    raw: bytes = field(repr=False)

    def summary(self) -> str:
        return f"no answer and no close after {self.waited_s:.1f} s (got {self.raw[:200]!r})"


Outcome = Answer | Closed | Malformed | Hung


class _NeedMore(Exception):
    """The bytes so far are the start of a response, not all of it."""


def exchange(
    port: int,
    request: Request | bytes,
    deadline_s: float,
    *,
    trickle_s: float = 0.0,
    tls: ssl.SSLContext | None = None,
) -> Outcome:
    """Sends one request (built, or raw bytes sent as they are) on a new connection and reads
    the answer until it is complete, the server closes, or ``deadline_s`` passes.

    ``trickle_s``: send the bytes one at a time, this long apart (a slow client), and stop
    sending as soon as the server answers or closes. ``tls``: the connection is TLS (to
    127.0.0.1, checked with this context); a failed handshake raises ``ssl.SSLError``."""
    raw = request if isinstance(request, bytes) else request.to_bytes(b"127.0.0.1:%d" % port)
    head_only = raw.startswith(b"HEAD ")
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=deadline_s) as plain:
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = plain if tls is None else tls.wrap_socket(plain, server_hostname="127.0.0.1")
        try:
            if trickle_s:
                for i in range(len(raw)):
                    sock.sendall(raw[i : i + 1])
                    readable, _, _ = select.select([sock], [], [], trickle_s)
                    if readable or time.monotonic() - start > deadline_s:
                        break
            else:
                sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the server answered early (a refused body) and closed: read what it sent
        return _read_answer(sock, head_only, start, deadline_s)


def exchange_pipelined(port: int, requests: list[Request], deadline_s: float) -> list[Outcome]:
    """Sends several requests at once on one keep-alive connection (as a pipelining client
    does) and reads their answers in order: one outcome per request answered, the last one
    a close, hang or malformed answer if the server stopped before the end."""
    host = b"127.0.0.1:%d" % port
    raw = b"".join(r.to_bytes(host) for r in requests)
    start = time.monotonic()
    outcomes: list[Outcome] = []
    buffer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=deadline_s) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        for request in requests:
            head_only = request.method == b"HEAD"
            outcome, buffer = _read_one(sock, buffer, head_only, start, deadline_s)
            outcomes.append(outcome)
            if not isinstance(outcome, Answer) or outcome.streamed:
                break
    return outcomes


def _read_one(
    sock: socket.socket, buffer: bytes, head_only: bool, start: float, deadline_s: float
) -> tuple[Outcome, bytes]:
    """The next answer on a connection that may carry more, and the bytes after it."""
    data = bytearray(buffer)
    while True:
        try:
            parsed = _parse(bytes(data), head_only, eof=False)
        except _NeedMore:
            pass
        else:
            if isinstance(parsed, Malformed):
                return parsed, b""
            return parsed[0], bytes(data[parsed[1] :])
        remaining = deadline_s - (time.monotonic() - start)
        if remaining <= 0:
            return Hung(time.monotonic() - start, bytes(data)), b""
        sock.settimeout(remaining)
        how = "eof"
        try:
            chunk = sock.recv(256 * 1024)
        except TimeoutError:
            return Hung(time.monotonic() - start, bytes(data)), b""
        except ConnectionResetError:
            chunk, how = b"", "reset"
        if chunk:
            data += chunk
            continue
        if not data:
            return Closed(how), b""
        try:
            parsed = _parse(bytes(data), head_only, eof=True)
        except _NeedMore:
            return Malformed("the connection closed in the middle of an answer", bytes(data)), b""
        if isinstance(parsed, Malformed):
            return parsed, b""
        return parsed[0], bytes(data[parsed[1] :])


def _read_answer(sock: socket.socket, head_only: bool, start: float, deadline_s: float) -> Outcome:
    buffer = bytearray()
    while True:
        try:
            return parse_one(bytes(buffer), head_only, eof=False)
        except _NeedMore:
            pass
        remaining = deadline_s - (time.monotonic() - start)
        if remaining <= 0:
            return Hung(time.monotonic() - start, bytes(buffer))
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(256 * 1024)
        except TimeoutError:
            return Hung(time.monotonic() - start, bytes(buffer))
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            chunk = b""  # the TLS connection closed (with or without its close_notify)
        except ConnectionResetError:
            if not buffer:
                return Closed("reset")
            return Malformed("the connection was reset in the middle of the answer", bytes(buffer))
        if not chunk:
            if not buffer:
                return Closed("eof")
            try:
                return parse_one(bytes(buffer), head_only, eof=True)
            except _NeedMore:
                return Malformed("the connection closed in the middle of the answer", bytes(buffer))
        buffer += chunk


def parse_one(data: bytes, head_only: bool, eof: bool) -> Answer | Malformed:
    """The one response ``data`` must hold (bytes after it are malformed: the request asked
    for one answer and a close); raises ``_NeedMore`` if it is not all there yet."""
    parsed = _parse(data, head_only, eof)
    if isinstance(parsed, Malformed):
        return parsed
    answer, used = parsed
    if used < len(data) and not answer.streamed:
        return Malformed(f"{len(data) - used} bytes after the answer", data)
    return answer


def _parse(data: bytes, head_only: bool, eof: bool) -> tuple[Answer, int] | Malformed:
    """The first response of ``data`` (after any interim 1xx ones) and the bytes it took."""
    offset = 0
    while True:
        end = data.find(CRLF + CRLF, offset)
        if end < 0:
            if len(data) - offset > HEAD_BYTES_MAX:
                return Malformed(f"a response head over {HEAD_BYTES_MAX} bytes", data)
            if not b"HTTP/1.".startswith(data[offset : offset + 7]):
                return Malformed("not an HTTP/1.x status line", data)
            raise _NeedMore
        lines = data[offset:end].split(CRLF)
        status_line = _STATUS_LINE.fullmatch(lines[0])
        if status_line is None:
            return Malformed(f"bad status line {lines[0][:200]!r}", data)
        status = int(status_line.group(1))
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            header = _HEADER_LINE.fullmatch(line)
            if header is None:
                return Malformed(f"bad header line {line[:200]!r}", data)
            headers.append((header.group(1).decode().lower(), header.group(2).decode("latin-1")))
        if 100 <= status < 200:
            if status == 101:
                return Malformed("101 Switching Protocols: the server upgraded", data)
            offset = end + 4  # interim (100 Continue): the real answer follows
            continue
        reason = (status_line.group(2) or b"").decode("latin-1")
        return _with_body(status, reason, tuple(headers), data, end + 4, head_only, eof)


def _with_body(
    status: int,
    reason: str,
    headers: tuple[tuple[str, str], ...],
    data: bytes,
    start: int,
    head_only: bool,
    eof: bool,
) -> tuple[Answer, int] | Malformed:
    """The answer whose body starts at ``data[start]``, and where it ends."""

    def answer(body: bytes, streamed: bool = False) -> Answer:
        return Answer(status, reason, headers, body, streamed)

    probe = answer(b"")
    rest = data[start:]
    lengths = [v for k, v in headers if k == "content-length"]
    encodings = [v.lower() for k, v in headers if k == "transfer-encoding"]
    if lengths and encodings:
        return Malformed("both Content-Length and Transfer-Encoding", data)
    if len(set(lengths)) > 1 or any(not v.isascii() or not v.isdigit() for v in lengths):
        return Malformed(f"bad Content-Length {lengths}", data)
    if head_only or status in (204, 304):
        return probe, start
    if probe.media_type in STREAM_TYPES and not lengths:
        return answer(b"", streamed=True), len(data)
    if encodings:
        if encodings != ["chunked"]:
            return Malformed(f"unknown Transfer-Encoding {encodings}", data)
        chunked = _chunked(probe, rest, data)
        if isinstance(chunked, Malformed):
            return chunked
        return chunked[0], start + chunked[1]
    if lengths:
        length = int(lengths[0])
        if length > BODY_BYTES_MAX:
            return Malformed(f"Content-Length {length} over {BODY_BYTES_MAX}", data)
        if len(rest) < length:
            raise _NeedMore
        return answer(rest[:length]), start + length
    if not eof:
        raise _NeedMore  # no framing: the body ends when the server closes
    return answer(rest), len(data)


def _chunked(probe: Answer, rest: bytes, data: bytes) -> tuple[Answer, int] | Malformed:
    body = bytearray()
    position = 0
    while True:
        end = rest.find(CRLF, position)
        if end < 0:
            raise _NeedMore
        size_line = _CHUNK_SIZE.fullmatch(rest[position:end])
        if size_line is None:
            return Malformed(f"bad chunk size line {rest[position:end][:100]!r}", data)
        size = int(size_line.group(1), 16)
        position = end + 2
        if size == 0:
            trailer_end = rest.find(CRLF + CRLF, position - 2)
            if trailer_end < 0:
                raise _NeedMore
            return Answer(probe.status, probe.reason, probe.headers, bytes(body)), trailer_end + 4
        if len(body) + size > BODY_BYTES_MAX:
            return Malformed(f"a chunked body over {BODY_BYTES_MAX} bytes", data)
        if len(rest) < position + size + 2:
            raise _NeedMore
        if rest[position + size : position + size + 2] != CRLF:
            return Malformed("a chunk not followed by CRLF", data)
        body += rest[position : position + size]
        position += size + 2
