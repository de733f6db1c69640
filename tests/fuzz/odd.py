"""The odd values the fuzz tier puts in requests: numbers that are not ASCII digits or out of
every range, strings that are not names, JSON values of every type, methods, header values and
whole request heads that a careless or hostile client sends."""

from __future__ import annotations

import base64
import re
import time
from typing import Any
from urllib.parse import unquote

# -- odd values ----------------------------------------------------------------------------------

_ASCII_INT = re.compile(r"-?[0-9]+")

# Numbers a lenient parser takes (Python's int() and str.isdigit() accept all of these) but
# that are not ASCII digits, so the API must refuse them.
ODD_NUMBERS = (
    "²",
    "٣",
    "١",
    "１",
    "৩",
    "+1",
    " 1",
    "1 ",
    "1_0",
    "\t2",
    "%C2%B2",
    "%D9%A1",
    "%D9%A3",
)
# Numbers out of every range, or not numbers at all.
BAD_NUMBERS = (
    "-1",
    "-0",
    "00",
    "1.0",
    "1e3",
    "0x1",
    "NaN",
    "inf",
    "9" * 22,
    str(2**31),
    str(2**31 - 1),
    str(2**63),
    str(2**64),
    "-" + "9" * 30,
    "",
    "null",
)
ODD_STRINGS = (
    "",
    ".",
    "..",
    "%2e%2e",
    "%2E",
    "%00",
    "%",
    "%zz",
    "%2F",
    "a%2Fb",
    "%0d%0aX-Injected:%201",
    "é",
    "\u202e",
    "😀",
    "[]",
    "{}",
    "FUZZ",
    "a" * 250,
    "nope",
)


def is_odd_number(text: str) -> bool:
    """Whether a lenient parser would take ``text`` (percent-decoded) as a number although it
    is not ASCII digits."""
    text = unquote(text)
    if _ASCII_INT.fullmatch(text):
        return False
    try:
        int(text)
    except ValueError:
        return text.isdigit()
    return True


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# JSON values a field is retyped to: every JSON type, numbers out of any range, deep nesting.
ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -0.0,
    1e308,
    float("nan"),
    float("inf"),
    2**31,
    2**63,
    2**64,
    10**30,
    -(10**30),
    "",
    "1",
    "²",
    "٣",
    "x" * 10_000,
    [],
    {},
    [1],
    {"a": None},
    _nested(60),
)

# -- methods --------------------------------------------------------------------------------------

METHODS = (
    "GET",
    "POST",
    "PUT",
    "DELETE",
    "PATCH",
    "HEAD",
    "OPTIONS",
    "TRACE",
    "CONNECT",
    "PRI",
    "get",
    "FOO",
    "M-SEARCH",
    "",
    "G\x00T",
    "GÉT",
    "GE(T",
    "X" * 2000,
)


# -- headers -------------------------------------------------------------------------------------

CONTENT_TYPES = (
    b"application/json",
    b"application/json; charset=utf-8",
    b"application/vnd.kafka.json.v2+json",
    b"application/x-www-form-urlencoded",
    b"text/plain",
    b"multipart/form-data; boundary=x",
    b"application/octet-stream",
    b"",
    b";;;",
    b"application/json; charset=latin-1",
    b"\xff\xfe",
    b"application/" + b"j" * 9000,
)

PRODUCER_VALUES = (
    b"0",
    b"1",
    b"4000",
    b"",
    b"-1",
    b"\xc2\xb2",  # "²"
    "١".encode(),
    b"+1",
    b" 1",
    b"1.0",
    b"0x10",
    b"9" * 30,
    str(2**63).encode(),
    str(2**15).encode(),
    str(2**31).encode(),
)

AUTHORIZATIONS = (
    b"Basic !!!",
    b"Basic " + base64.b64encode(b"alice:wrong"),
    b"Basic " + base64.b64encode(b"no-colon"),
    b"Basic " + base64.b64encode(b"\xff\xfe:\x00"),
    b"Basic",
    b"Bearer x",
    b"Bearer " + b"a" * 5000,
    b"Negotiate YII=",
    b"",
    b"basic YWxpY2U6eA==",
)


def internal_proof() -> list[tuple[bytes, bytes]]:
    """Headers shaped like a valid internal proof, with a wrong signature."""
    now = str(int(time.time() * 1000)).encode()
    return [
        (b"X-Kraft-Node", b"1"),
        (b"X-Kraft-Target", b"1"),
        (b"X-Kraft-Timestamp", now),
        (b"X-Kraft-Nonce", b"0" * 32),
        (b"X-Kraft-Body-SHA256", b"e" * 64),
        (b"X-Kraft-Signature", b"f" * 64),
    ]


INTERNAL_JUNK = (
    (b"X-Kraft-Node", b"1"),
    (b"X-Kraft-Node", "١".encode()),
    (b"X-Kraft-Node", b"9" * 22),
    (b"X-Kraft-Target", b"2"),
    (b"X-Kraft-Target", "٣".encode()),
    (b"X-Kraft-Timestamp", b"0"),
    (b"X-Kraft-Timestamp", b"-1"),
    (b"X-Kraft-Timestamp", b"\xc2\xb2"),
    (b"X-Kraft-Nonce", b"zz"),
    (b"X-Kraft-Nonce", b"A" * 32),
    (b"X-Kraft-Body-SHA256", b""),
    (b"X-Kraft-Body-SHA256", b"E" * 64),
    (b"X-Kraft-Signature", b""),
    (b"X-Kraft-Signature", b"0" * 64),
    (b"X-Kraft-Signature", b"0" * 200),
)

MISC_HEADERS = (
    (b"Expect", b"100-continue"),
    (b"Expect", b"200-ok"),
    (b"Accept", b"text/event-stream"),
    (b"Accept", b"\x00"),
    (b"Accept-Encoding", b"gzip, br"),
    (b"Content-Encoding", b"gzip"),
    (b"Connection", b"keep-alive"),
    (b"Connection", b"Upgrade"),
    (b"Upgrade", b"h2c"),
    (b"Upgrade", b"websocket"),
    (b"Host", b"evil.example"),
    (b"Host", b""),
    (b"X-Leader-Epoch", b"2000000000"),
    (b"X-Metadata-Index", b"99999999999999999999"),
    (b"Retry-After", b"-1"),
    (b"Cookie", b"a=" + b"b" * 4000),
    (b"X-Long", b"v" * 10_000),
    (b"X-Very-Long", b"v" * 100_000),
    (b"X-Nul", b"a\x00b"),
    (b"X-Latin", b"\xe9\xff"),
    (b"Bad Name", b"x"),
    (b"X(y)", b"1"),
    (b"", b"no-name"),
    (b"X-Folded", b"a\r\n folded"),
    (b"X-Bare-CR", b"a\rb"),
)


# -- whole requests as bytes ---------------------------------------------------------------------

# Request heads that are not HTTP/1.1 or not HTTP at all, each complete (ends in CRLF CRLF or
# is answered at once), so the server has everything it will get.
RAW_HEADS = (
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32 + b"\r\n\r\n",  # TLS hello
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # HTTP/2 preface
    b"GET /v1/cluster\r\n\r\n",  # HTTP/0.9
    b"GET /v1/cluster HTTP/1.0\r\n\r\n",
    b"GET /v1/cluster HTTP/2\r\n\r\n",
    b"GET /v1/cluster HTTP/9.9\r\n\r\n",
    b"GET /v1/cluster FTP/1.1\r\n\r\n",
    b"GET  /v1/cluster  HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/cluster HTTP/1.1\nHost: x\n\n",
    b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GET /v1/cluster HTTP/1.1\r\n: empty\r\n\r\n",
    b"\r\n\r\n",
    b"\x00\x00\x00\x00\r\n\r\n",
    b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\n\x00\r\n\r\n",
    b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
)
