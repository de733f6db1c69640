"""Hypothesis strategies for the fuzz tier: HTTP requests mutated from valid ones.

Every request starts from a real route (``tests/fuzz/routes.py``: its method, its path with
real topic and partition names, its query parameters, a valid JSON body) and has some of its
parts replaced by odd ones (``tests/fuzz/odd.py``): methods that are not ours or not tokens;
path segments that are empty, ``..``, percent-encoded, unicode digits ("²", "٣"), huge
numbers or very long; query values of the wrong kind; headers with odd framing, producer
headers with odd numbers, junk credentials and junk internal-auth proofs; bodies with fields
deleted or retyped, truncated, nested deep, or random bytes. Shrinking goes back towards the
valid request, so a failing example shrinks to the one odd part that matters.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from tests.fuzz.odd import (
    AUTHORIZATIONS,
    BAD_NUMBERS,
    CONTENT_TYPES,
    INTERNAL_JUNK,
    METHODS,
    MISC_HEADERS,
    ODD_NUMBERS,
    ODD_STRINGS,
    ODD_VALUES,
    PRODUCER_VALUES,
    RAW_HEADS,
    internal_proof,
    is_odd_number,
)
from tests.fuzz.routes import (
    BODIES,
    CONFIG_TOPIC,
    DOOMED_TOPIC,
    FETCH_QUERY,
    INT_PARAMETERS,
    MAIN_PARTITIONS,
    MAIN_TOPIC,
    NAMED_SEGMENTS,
    QUERY,
    Case,
    Context,
)
from tests.fuzz.wire import Request


def _segment(text: str, encoding: str) -> str:
    if encoding == "quote":
        return quote(text, safe="")
    return text  # as it is: raw unicode, spaces, percent signs


@st.composite
def _segment_value(draw: st.DrawFn, valid: tuple[str, ...], numeric: bool) -> tuple[str, str]:
    """(the segment as sent, the segment's text) for one path parameter."""
    odd: tuple[str, ...] = ODD_NUMBERS + BAD_NUMBERS if numeric else ODD_STRINGS + ODD_NUMBERS[:3]
    # A valid name with a space after it: sent as it is, "DELETE /v1/topics/fuzz  HTTP/1.1"
    # may be read as the topic itself (RFC 9112 lets a server split the request line on any
    # run of whitespace), so it is made only of the names this request may name.
    odd += tuple(f"{name} " for name in valid)
    text = draw(st.sampled_from(valid) | st.sampled_from(odd))
    encoding = draw(st.sampled_from(("as-is", "quote")))
    return _segment(text, encoding), text


def _topics_for(method: str, template: str) -> tuple[str, ...]:
    """The real topics a request may name: never a write that would spoil MAIN_TOPIC."""
    if method == "DELETE":
        return (DOOMED_TOPIC, "nope")
    if template.endswith("/configs") or template.endswith("/partitions"):
        if method != "GET":
            return (CONFIG_TOPIC, "nope")
    return (MAIN_TOPIC, CONFIG_TOPIC, "nope")


@st.composite
def _path(draw: st.DrawFn, ctx: Context, method: str, template: str) -> tuple[str, tuple[str, ...]]:
    """The request target's path, and the odd numbers in segments the handler parses."""
    odd: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "topic":
            sent, _ = draw(_segment_value(_topics_for(method, template), numeric=False))
            return sent
        if name in NAMED_SEGMENTS:
            sent, _ = draw(_segment_value(NAMED_SEGMENTS[name], numeric=False))
            return sent
        valid = tuple(str(i) for i in range(MAIN_PARTITIONS + 1))
        if name == "broker":
            valid = tuple(str(i) for i in ctx.node_ids) + ("99",)
        sent, text = draw(_segment_value(valid, numeric=True))
        if is_odd_number(text):
            odd.append(f"{name} {text!r}")
        return sent

    path = re.sub(r"\{(\w+)\}", fill, template)
    shape = draw(
        st.sampled_from(
            (
                "as-is",
                "trailing-slash",
                "double-slash",
                "dot-segments",
                "upper-case",
                "extra-segment",
                "drop-segment",
                "absolute-form",
                "no-leading-slash",
                "asterisk",
                "fragment",
                "long",
            )
        )
    )
    if shape == "trailing-slash":
        path += "/"
    elif shape == "double-slash":
        path = path.replace("/", "//", 2)
    elif shape == "dot-segments":
        path = "/v1/../v1/./" + path.removeprefix("/v1/")
    elif shape == "upper-case":
        path = path.upper()
    elif shape == "extra-segment":
        path += "/" + draw(st.sampled_from(("x", "..", "%00", "records", "0")))
    elif shape == "drop-segment":
        path = path.rsplit("/", 1)[0]
    elif shape == "absolute-form":
        path = ctx.urls[0] + path
    elif shape == "no-leading-slash":
        path = path.lstrip("/")
    elif shape == "asterisk":
        path = "*"
    elif shape == "fragment":
        path += "#frag"
    elif shape == "long":
        path += "/" + "x" * draw(st.sampled_from((8_000, 10_000, 70_000)))
    if shape in ("as-is", "trailing-slash", "fragment"):
        return path, tuple(odd)
    return path, ()  # another path: its numbers may never reach the handler


_QUERY_VALUES: dict[str, tuple[str, ...]] = {
    "offset": ("earliest", "latest", "0", "1", "2", "1000000"),
    "max_records": ("1", "10", "10000", "10001", "0"),
    "max_bytes": ("1", "1024", "0"),
    # Long polls: a valid wait stays short so the run stays short.
    "timeout_ms": ("0", "100", "500"),
    "format": ("text", "json", "binary", "TEXT", "xml", ""),
    "follow": ("false", "true", "1", "no", "TRUE"),
    "acks": ("all", "-1", "1", "0", "2", "ALL", ""),
    "timestamp": ("-2", "-1", "0", "1700000000000", "-3"),
    "resource_type": ("TOPIC", "GROUP", "CLUSTER", "ANY", "topic", "any", "UNKNOWN"),
    "resource_name": (MAIN_TOPIC, "*", "kafka-cluster"),
    "pattern_type": ("LITERAL", "PREFIXED", "MATCH", "ANY", "prefixed"),
    "principal": ("User:alice", "User:*", "alice", "User:"),
    "host": ("*", "127.0.0.1"),
    "operation": ("READ", "WRITE", "ALL", "ANY", "IDEMPOTENT_WRITE", "describe-configs"),
    "permission": ("ALLOW", "DENY", "ANY"),
}


@st.composite
def _query(
    draw: st.DrawFn, names: tuple[str, ...], method: str, template: str
) -> tuple[str, tuple[str, ...]]:
    """The query string (without '?') and the odd numbers it gives the handler."""
    odd: list[str] = []
    parts: list[str] = []
    candidates = names + ("unknown", "offset", "x%00", "²")
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(candidates))
        valid = _QUERY_VALUES.get(name, ("1", "x"))
        value = draw(
            st.sampled_from(valid)
            | st.sampled_from(ODD_NUMBERS + BAD_NUMBERS)
            | st.sampled_from(ODD_STRINGS[:14])
        )
        encoding = draw(st.sampled_from(("quote", "as-is")))
        form = draw(st.sampled_from(("pair", "pair", "pair", "bare", "empty", "repeat")))
        sent = _segment(value, encoding)
        if form == "pair":
            parts.append(f"{name}={sent}")
            if name in names and name in INT_PARAMETERS and is_odd_number(value):
                odd.append(f"{name}={value!r}")
        elif form == "bare":
            parts.append(name)
        elif form == "empty":
            parts.append("")
        else:
            # Which of the two the handler reads is its choice: no odd number is counted.
            parts.extend((f"{name}={sent}", f"{name}=1"))
    if draw(st.integers(0, 20)) == 0:
        parts.extend(f"p{i}={i}" for i in range(2000))
    return "&".join(parts), tuple(odd)


@st.composite
def _headers(
    draw: st.DrawFn, body: bytes, route: str, method: str
) -> tuple[list[tuple[bytes, bytes]], bytes, tuple[str, ...]]:
    """Header mutations: (headers, the body as framed, odd numbers the handler parses)."""
    headers: list[tuple[bytes, bytes]] = []
    odd: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(
            st.sampled_from(
                (
                    "content-type",
                    "content-length",
                    "transfer-encoding",
                    "producer",
                    "authorization",
                    "internal",
                    "internal-proof",
                    "misc",
                    "many",
                )
            )
        )
        if kind == "content-type":
            headers.append((b"Content-Type", draw(st.sampled_from(CONTENT_TYPES))))
        elif kind == "content-length":
            n = str(len(body)).encode()
            value = draw(
                st.sampled_from(
                    (
                        b"-5",
                        b"abc",
                        b"1e3",
                        b"",
                        b"+" + n,
                        b" " + n,
                        b"0" + n,
                        b"0x10",
                        b"99999999999999999999999",
                        str(10**12).encode(),
                        n + b", " + n,
                        n + b", 1",
                    )
                )
            )
            headers.append((b"Content-Length", value))
            if draw(st.booleans()):
                headers.append((b"Content-Length", n if value != n else b"0"))
        elif kind == "transfer-encoding":
            te = draw(
                st.sampled_from(
                    (
                        b"chunked",
                        b"Chunked",
                        b"gzip",
                        b"chunked, chunked",
                        b"gzip, chunked",
                        b"identity",
                        b"chunked;x=1",
                    )
                )
            )
            headers.append((b"Transfer-Encoding", te))
            chunking = draw(st.sampled_from(("chunks", "bad-size", "with-length")))
            if chunking == "with-length":
                headers.append((b"Content-Length", str(len(body)).encode()))
            elif chunking == "bad-size":
                body = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
            if chunking in ("chunks", "with-length"):
                body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
        elif kind == "producer":
            names = draw(
                st.sampled_from(
                    (
                        (b"Producer-Id", b"Producer-Epoch", b"Producer-Seq"),
                        (b"Producer-Id",),
                        (b"Producer-Epoch", b"Producer-Seq"),
                    )
                )
            )
            values = [draw(st.sampled_from(PRODUCER_VALUES)) for _ in names]
            headers.extend(zip(names, values, strict=True))
            if (
                len(names) == 3
                and route == "/v1/topics/{topic}/partitions/{partition}/records"
                and method == "POST"
            ):
                odd.extend(
                    f"{n.decode()}: {v.decode(errors='replace')!r}"
                    for n, v in zip(names, values, strict=True)
                    if is_odd_number(v.decode(errors="replace"))
                )
        elif kind == "authorization":
            headers.append((b"Authorization", draw(st.sampled_from(AUTHORIZATIONS))))
        elif kind == "internal":
            headers.append(draw(st.sampled_from(INTERNAL_JUNK)))
        elif kind == "internal-proof":
            headers.extend(internal_proof())
        elif kind == "misc":
            headers.append(draw(st.sampled_from(MISC_HEADERS)))
        else:
            headers.extend(
                (b"X-Many-%d" % i, b"v") for i in range(draw(st.sampled_from((50, 150))))
            )
    return headers, body, tuple(odd)


# -- bodies --------------------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON tree (keys of objects, indexes of lists), the root excluded."""
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            out.append(prefix + (key,))
            out.extend(_paths(child, prefix + (key,)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.append(prefix + (index,))
            out.extend(_paths(child, prefix + (index,)))
    return out


def _copy(value: Any) -> Any:
    """A fresh copy: a mutation must never change a template or a shared odd value (the next
    example would be built from the changed one, and Hypothesis could not replay it)."""
    return copy.deepcopy(value)


def _parent(tree: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        tree = tree[step]
    return tree


@st.composite
def _mutated_tree(draw: st.DrawFn, valid: Any) -> Any:
    tree = _copy(valid)
    for _ in range(draw(st.integers(1, 3))):
        places = _paths(tree)
        op = draw(st.sampled_from(("retype", "delete", "add", "retype-root")))
        if op == "retype-root" or not places:
            return _copy(draw(st.sampled_from(ODD_VALUES + ([tree],))))
        place = draw(st.sampled_from(places))
        parent = _parent(tree, place)
        if op == "retype":
            parent[place[-1]] = _copy(draw(st.sampled_from(ODD_VALUES)))
        elif op == "delete":
            del parent[place[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(("unknown", "", "\x00", "x" * 300)))] = 1
        else:
            parent.append(_copy(draw(st.sampled_from(ODD_VALUES))))
    return tree


def _dumps(value: Any) -> bytes:
    """JSON text as a careless client writes it: big integers kept, NaN and Infinity as
    JavaScript writes them (not JSON)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def _body(draw: st.DrawFn, valid: Any | None) -> bytes:
    """A body for a route (``valid`` None: the route takes none, but a client may send one)."""
    if valid is None:
        kind = draw(st.sampled_from(("none", "none", "none", "json", "bytes")))
        if kind == "none":
            return b""
        if kind == "json":
            return _dumps(draw(st.sampled_from(ODD_VALUES)))
        return draw(st.binary(max_size=64))
    kind = draw(
        st.sampled_from(
            (
                "valid",
                "mutated",
                "mutated",
                "mutated",
                "truncated",
                "bytes",
                "empty",
                "deep",
                "duplicate-keys",
                "bad-utf8",
                "bom",
                "lone-surrogate",
                "many-records",
                "huge",
                "whitespace",
                "two-documents",
            )
        )
    )
    text = _dumps(valid)
    if kind == "valid":
        return text
    if kind == "mutated":
        return _dumps(draw(_mutated_tree(valid)))
    if kind == "truncated":
        return text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "empty":
        return b""
    if kind == "deep":
        depth = draw(st.sampled_from((100, 600, 5_000, 100_000)))
        closed = draw(st.booleans())
        return b"[" * depth + (b"]" * depth if closed else b"")
    if kind == "duplicate-keys":
        return b'{"a":1,"a":2,' + text[1:] if text.startswith(b"{") else text + text
    if kind == "bad-utf8":
        return text.replace(b'"', b'"\xff\xfe', 1)
    if kind == "bom":
        return b"\xef\xbb\xbf" + text
    if kind == "lone-surrogate":
        return text.replace(b'"', b'"\\ud800', 1)
    if kind == "many-records":
        return _dumps({"records": [{"value": "v"}] * 10_001})
    if kind == "huge":
        # Over the 8 MiB body limit of docs/api.md: a JSON 413 (or a closed connection).
        return b'{"records":[{"value":"' + b"v" * (9 << 20) + b'"}]}'
    if kind == "whitespace":
        return b" \t\r\n "
    return text + b"\n" + text


# -- requests ------------------------------------------------------------------------------------


@st.composite
def cases(
    draw: st.DrawFn,
    ctx: Context,
    routes: list[tuple[str, str]],
    *,
    method_odds: bool = True,
    path_odds: bool = True,
    query_odds: bool = True,
    header_odds: bool = True,
    body_odds: bool = True,
) -> Case:
    """A request built from one real route, with each part left valid or mutated (the flags
    turn a kind of mutation off, to aim a test at the rest)."""
    node = draw(st.integers(0, len(ctx.node_ids) - 1))
    route_method, template = draw(st.sampled_from(routes))
    method = route_method
    if method_odds:
        method = draw(st.just(route_method) | st.sampled_from(METHODS))
    if path_odds:
        path, odd_path = draw(_path(ctx, method, template))
    else:
        path = re.sub(r"\{topic\}", _topics_for(method, template)[0], template)
        path = re.sub(r"\{partition\}", "0", path)
        path = re.sub(r"\{broker\}", str(ctx.node_ids[0]), path)
        for name, values in NAMED_SEGMENTS.items():
            path = path.replace("{" + name + "}", values[0])
        odd_path = ()
    names = FETCH_QUERY.get((method, template), QUERY.get(template, ()))
    query, odd_query = "", tuple[str, ...]()
    if query_odds:
        query, odd_query = draw(_query(names, method, template))
    valid_body = BODIES.get((route_method, template))
    body_valid = valid_body(ctx) if valid_body is not None else None
    body = _dumps(body_valid) if body_valid is not None else b""
    if body_odds:
        body = draw(_body(body_valid))
    headers: list[tuple[bytes, bytes]] = []
    odd_headers: tuple[str, ...] = ()
    if header_odds:
        headers, body, odd_headers = draw(_headers(body, template, method))
    target = path + (f"?{query}" if query else "")
    request = Request(
        method.encode("utf-8", "surrogatepass"),
        target.encode("utf-8", "surrogatepass"),
        tuple(headers),
        body,
    )
    # A non-ASCII method or target (sent as UTF-8) never matches a route.
    return Case(
        request,
        node,
        f"{route_method} {template}",
        odd_numbers=odd_query + odd_headers if method == route_method else (),
        odd_path_numbers=odd_path if method == route_method else (),
    )


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    """Whole requests as bytes: odd heads, random bytes ending a head, and valid requests
    with a byte flipped."""
    kind = draw(st.sampled_from(("head", "bytes", "flipped")))
    if kind == "head":
        return draw(st.sampled_from(RAW_HEADS))
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=300)) + b"\r\n\r\n"
    valid = b"POST /v1/topics/fuzz/records HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    body = b'{"records":[{"value":"v"}]}'
    raw = bytearray(valid + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    position = draw(st.integers(0, len(valid) - 1))
    raw[position] = draw(st.integers(0, 255))
    return bytes(raw)
