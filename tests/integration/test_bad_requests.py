"""Issue 11's probes, sent with raw sockets to real nodes: every bad request gets a JSON error
with the right status (or a closed connection), nothing in the node's log has a traceback,
and the node still takes writes afterwards.

One node with small limits serves most tests (a 1 s read timeout, 2 s idle timeout, 1 MiB
requests); max.connections and the 100 MB produce each get a node of their own.
"""

from __future__ import annotations

import gzip
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from server.internal_auth import BODY_HEADER, NODE_HEADER, SIGNATURE_HEADER
from tests.integration.internal_calls import proof, signed_call

READ_TIMEOUT_MS = 1000
IDLE_MS = 2000
SOCKET_MAX_BYTES = 1024 * 1024
HTTP_MAX_BYTES = 512 * 1024
# Generous: a socket read waits this long for an answer or a close that comes within seconds.
ANSWER_DEADLINE_S = 60.0
TOPIC = "probes"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    handle = NodeProcess(
        tmp_path_factory.mktemp("bad-requests"),
        extra_properties={
            "http.request.read.timeout.ms": str(READ_TIMEOUT_MS),
            "connections.max.idle.ms": str(IDLE_MS),
            "socket.request.max.bytes": str(SOCKET_MAX_BYTES),
            "queued.max.request.bytes": str(SOCKET_MAX_BYTES),
            "http.max.request.bytes": str(HTTP_MAX_BYTES),
        },
    )
    handle.format()
    try:
        handle.start()
        status, body = http("POST", f"{handle.url}/v1/topics", {"name": TOPIC})
        assert status == 201, body
        yield handle
    finally:
        handle.stop()


@pytest.fixture(autouse=True)
def still_healthy(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the shared node: no traceback in its log, and it takes writes."""
    yield
    if "node" not in request.fixturenames:
        return
    node: NodeProcess = request.getfixturevalue("node")
    assert_takes_writes(node)
    assert_no_traceback(node)


def assert_takes_writes(node: NodeProcess) -> None:
    status, body = http("POST", f"{node.url}/v1/topics/{TOPIC}/records", {"value": "still here"})
    assert status == 200, body


def assert_no_traceback(node: NodeProcess) -> None:
    log = node.log_file.read_text(errors="replace")
    assert "Traceback" not in log, log[-5000:]
    assert "unexpected error" not in log, log[-5000:]


# -- raw HTTP ------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    closed: bool  # the node closed the connection after the answer


# Bytes read past one answer (the next one's, pipelined), by socket.
_READ_AHEAD: dict[int, bytes] = {}


def connect(node: NodeProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", node.http_port), timeout=ANSWER_DEADLINE_S)
    _READ_AHEAD.pop(id(sock), None)
    return sock


def read_answer(sock: socket.socket) -> Answer:
    """One HTTP answer from ``sock``, and whether the node then closed the connection."""
    data = _READ_AHEAD.pop(id(sock), b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer (got {data!r})"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed inside the answer's body"
        rest += chunk
    body = json.loads(rest[:length]) if length else None
    if len(rest) > length:
        _READ_AHEAD[id(sock)] = rest[length:]
    # An HTTP/1.0 answer (aiohttp's to a request it could not parse) closes without saying so.
    ends = headers.get("connection", "").lower() == "close" or lines[0].startswith("HTTP/1.0")
    return Answer(status, headers, body, ends and closes(sock))


def closes(sock: socket.socket) -> bool:
    """Whether the node closes the connection (reads, dropping nothing it should not)."""
    if _READ_AHEAD.get(id(sock)):
        return False  # another answer came first
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def send(node: NodeProcess, data: bytes) -> Answer:
    with connect(node) as sock:
        sock.sendall(data)
        return read_answer(sock)


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n".encode()


def post(path: str, body: bytes, *extra: str) -> bytes:
    head = [
        f"POST {path} HTTP/1.1",
        "Host: probe",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def assert_error(answer: Answer, status: int, name: str, *words: str) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"].startswith("application/json"), answer
    assert answer.body["error"] == name and answer.body["error_code"] // 100 == status, answer
    message = answer.body["message"]
    assert len(message) < 300, "messages stay short"
    for word in words:
        assert word in message, answer


# -- defect 4: numbers ---------------------------------------------------------------------------

BAD_INTEGERS = [
    "%C2%B2",  # "²": str.isdigit() is true for it
    "%D9%A3",  # Arabic-Indic three: int() reads it as 3
    "1234567890123456789012",  # 22 digits
    "2147483648",  # a Java int + 1
    "-1",
    "%2B1",  # "+1"
    "1_0",
    "%201",  # " 1"
    "1e3",
]


@pytest.mark.parametrize("partition", BAD_INTEGERS)
@pytest.mark.parametrize("endpoint", ["records", "offsets"])
def test_a_partition_in_the_path_is_ascii_digits_within_a_java_int(
    node: NodeProcess, partition: str, endpoint: str
) -> None:
    answer = send(node, get(f"/v1/topics/{TOPIC}/partitions/{partition}/{endpoint}"))
    assert_error(answer, 400, "INVALID_REQUEST", "partition", "2147483647")


def test_a_partition_in_a_produce_path_is_checked_too(node: NodeProcess) -> None:
    answer = send(node, post(f"/v1/topics/{TOPIC}/partitions/%D9%A3/records", b'{"value":"x"}'))
    assert_error(answer, 400, "INVALID_REQUEST", "partition")


def test_a_22_digit_broker_id_in_an_internal_path_is_a_json_4xx(node: NodeProcess) -> None:
    answer = send(
        node, post("/v1/internal/brokers/1234567890123456789012/heartbeat", b'{"broker_epoch":0}')
    )
    # Without the cluster's proof it is refused before the path is read; never a 500.
    assert 400 <= answer.status < 500 and answer.body["error"], answer


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("offset=%D9%A3", "offset"),
        ("offset=%C2%B2", "offset"),
        ("offset=99999999999999999999999", "offset"),
        ("timeout_ms=%C2%B2", "timeout_ms"),
        ("max_bytes=1234567890123456789012", "max_bytes"),
        ("max_records=1.5", "max_records"),
    ],
)
def test_query_integers_are_ascii_digits_within_their_range(
    node: NodeProcess, query: str, name: str
) -> None:
    answer = send(node, get(f"/v1/topics/{TOPIC}/partitions/0/records?{query}"))
    assert_error(answer, 400, "INVALID_REQUEST", name)


@pytest.mark.parametrize("query", ["timestamp=%D9%A3", "timestamp=9223372036854775808"])
def test_an_offsets_timestamp_is_a_java_long(node: NodeProcess, query: str) -> None:
    answer = send(node, get(f"/v1/topics/{TOPIC}/partitions/0/offsets?{query}"))
    assert_error(answer, 400, "INVALID_REQUEST", "timestamp")


def test_producer_headers_are_ascii_digits(node: NodeProcess) -> None:
    answer = send(
        node,
        post(
            f"/v1/topics/{TOPIC}/partitions/0/records",
            b'{"value":"x"}',
            "Producer-Id: \u0663",  # Arabic-Indic three, in UTF-8
            "Producer-Epoch: 0",
            "Producer-Seq: 0",
        ),
    )
    assert_error(answer, 400, "INVALID_REQUEST", "Producer-Id")


HUGE = "123456789012345678901234567890"  # orjson reads it as a float


@pytest.mark.parametrize(
    ("path", "body", "status", "name", "field"),
    [
        (
            "/v1/topics",
            f'{{"name":"h1","partitions":{HUGE}}}',
            400,
            "INVALID_REQUEST",
            "partitions",
        ),
        ("/v1/topics", '{"name":"h2","partitions":true}', 400, "INVALID_REQUEST", "partitions"),
        ("/v1/topics", '{"name":"h3","partitions":3.0}', 400, "INVALID_REQUEST", "partitions"),
        (
            "/v1/topics",
            f'{{"name":"h4","replication_factor":{HUGE}}}',
            400,
            "INVALID_REQUEST",
            "replication_factor",
        ),
        (
            "/v1/topics",
            f'{{"name":"h5","configs":{{"retention.ms":{HUGE}}}}}',
            400,
            "INVALID_CONFIG",
            "retention.ms",
        ),
        (
            "/v1/topics",
            '{"name":"h6","configs":{"retention.ms":"\u0663"}}',
            400,
            "INVALID_CONFIG",
            "retention.ms",
        ),
        (f"/v1/topics/{TOPIC}/partitions", f'{{"count":{HUGE}}}', 400, "INVALID_REQUEST", "count"),
        (f"/v1/topics/{TOPIC}/partitions", '{"count":false}', 400, "INVALID_REQUEST", "count"),
        (
            f"/v1/topics/{TOPIC}/records",
            f'{{"value":"x","partition":{HUGE}}}',
            422,
            "INVALID_RECORD",
            "partition",
        ),
        (
            f"/v1/topics/{TOPIC}/records",
            f'{{"value":"x","timestamp":{HUGE}}}',
            422,
            "INVALID_RECORD",
            "timestamp",
        ),
        (
            f"/v1/topics/{TOPIC}/records",
            '{"value":"x","timestamp":1.5}',
            422,
            "INVALID_RECORD",
            "timestamp",
        ),
    ],
)
def test_json_integers_that_are_floats_bools_or_huge_are_refused_naming_the_field(
    node: NodeProcess, path: str, body: str, status: int, name: str, field: str
) -> None:
    answer = send(node, post(path, body.encode()))
    assert_error(answer, status, name, field)
    message = answer.body["message"]
    assert "e+" not in message and "1.2345" not in message, "no float shown as the number"


# -- defect 6: what aiohttp answers itself -------------------------------------------------------

TLS_CLIENT_HELLO = bytes.fromhex(
    "160301006a010000660303" + "ab" * 32 + "00" + "0004130113020100" + "0039"
) + bytes(57)


@pytest.mark.parametrize(
    ("data", "status", "name"),
    [
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: probe\r\n\r\n", 413, "REQUEST_TOO_LARGE"),
        (b"BREW /v1/topics HTTP/1.1\r\nHost: probe\r\n\r\n", 405, "METHOD_NOT_ALLOWED"),
        (
            b"GET /v1/topics HTTP/1.1\r\nHost: probe\r\nthis is garbage\r\n\r\n",
            400,
            "INVALID_REQUEST",
        ),
        (
            b"POST /v1/topics HTTP/1.1\r\nHost: probe\r\nContent-Length: -5\r\n\r\n",
            400,
            "INVALID_REQUEST",
        ),
        (TLS_CLIENT_HELLO, 400, "INVALID_REQUEST"),
        (
            b"GET /v1/topics HTTP/1.1\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
            + b"\r\n",
            413,
            "REQUEST_TOO_LARGE",
        ),
        (
            b"POST /v1/topics HTTP/1.1\r\nHost: probe\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "INVALID_REQUEST",
        ),
        # aiohttp would answer these in the version they name ("HTTP/0.9 200 OK").
        (b"GET /v1/topics\r\n\r\n", 400, "INVALID_REQUEST"),
        (b"GET /v1/topics HTTP/2.0\r\nHost: probe\r\n\r\n", 400, "INVALID_REQUEST"),
    ],
    ids=[
        "long-url",
        "unknown-method",
        "garbage-header",
        "negative-length",
        "tls",
        "headers",
        "bad-chunk",
        "http-0.9",
        "http-2.0",
    ],
)
def test_requests_aiohttp_refuses_itself_get_json_and_a_closed_connection(
    node: NodeProcess, data: bytes, status: int, name: str
) -> None:
    answer = send(node, data)
    assert_error(answer, status, name)
    assert answer.closed
    log = node.log_file.read_text(errors="replace")
    # One INFO line, no traceback: from the listener, or (a body whose framing breaks after
    # its head) from the handler's body read.
    assert "Traceback" not in log
    assert "refused a malformed request" in log or "chunked framing is broken" in log


def test_a_client_that_disconnects_mid_body_is_one_info_line(node: NodeProcess) -> None:
    with connect(node) as sock:
        sock.sendall(post(f"/v1/topics/{TOPIC}/records", b'{"value":"x"}' + b" " * 100)[:-60])
    wait_until(
        "the node logs the client that went away",
        lambda: "went away" in node.log_file.read_text(errors="replace"),
    )
    lines = [x for x in node.log_file.read_text().splitlines() if "went away" in x]
    assert lines and all(" INFO " in x for x in lines), lines


# -- defect 5: connection limits ------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed_after_connections_max_idle_ms(
    node: NodeProcess,
) -> None:
    with connect(node) as sock:
        assert closes(sock), "closed, without an answer: nothing was asked"


def test_a_connection_idle_after_a_request_is_closed_too(node: NodeProcess) -> None:
    with connect(node) as sock:
        sock.sendall(f"GET /v1/topics/{TOPIC} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
        answer = read_answer(sock)  # keep-alive: the connection stays open after it
        assert answer.status == 200 and not answer.closed
        assert closes(sock)


def test_headers_that_stop_midway_get_408_and_a_closed_connection(node: NodeProcess) -> None:
    with connect(node) as sock:
        sock.sendall(b"GET /v1/topics HTTP/1.1\r\nHost: pro")
        answer = read_answer(sock)
    assert_error(answer, 408, "REQUEST_TIMED_OUT", "headers", "http.request.read.timeout.ms")
    assert answer.closed


def test_a_body_that_stops_at_8_of_100_bytes_gets_408_and_a_closed_connection(
    node: NodeProcess,
) -> None:
    head = (
        f"POST /v1/topics/{TOPIC}/records HTTP/1.1\r\nHost: probe\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with connect(node) as sock:
        sock.sendall(head.encode() + b'{"value"')
        answer = read_answer(sock)
    assert_error(answer, 408, "REQUEST_TIMED_OUT", "8 of 100", "http.request.read.timeout.ms")
    assert answer.closed


def test_more_connections_than_max_connections_get_503_and_are_closed(
    make_node: Any, tmp_path: Path
) -> None:
    limit = 4
    limited: NodeProcess = make_node(
        extra_properties={
            "max.connections": str(limit),
            "http.request.read.timeout.ms": str(READ_TIMEOUT_MS),
            "connections.max.idle.ms": "30000",  # our held connections stay open meanwhile
        }
    )
    limited.format()
    limited.start()
    held: list[socket.socket] = []
    try:
        refused = None
        # The node's own calls to itself may hold a connection or two: the refusal comes at
        # the latest with the (limit + 1)th of ours.
        for _ in range(limit + 1):
            sock = connect(limited)
            sock.sendall(f"GET /v1/topics/{TOPIC} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
            answer = read_answer(sock)
            if answer.status == 503:
                refused = answer
                sock.close()
                break
            held.append(sock)
        assert refused is not None, "no connection was refused"
        assert_error(refused, 503, "SERVER_BUSY", "max.connections")
        assert refused.headers["retry-after"] == "1" and refused.closed
        assert held, "connections below the limit were let in"
        silent = connect(limited)
        with silent:
            assert_error(read_answer(silent), 503, "SERVER_BUSY")  # after the read timeout

        # The node's own heartbeats are exempt (Kafka's inter-broker listener): after a few
        # broker sessions with every client slot taken, it is not fenced.
        time.sleep(2.0)
        held[0].sendall(b"GET /v1/cluster HTTP/1.1\r\nHost: probe\r\n\r\n")
        cluster = read_answer(held[0])
        assert cluster.status == 200 and not cluster.body["brokers"][0]["fenced"], cluster
    finally:
        for sock in held:
            sock.close()
    wait_until(
        "a connection is let in once others closed",
        lambda: http("GET", f"{limited.url}/v1/cluster", timeout=5)[0] == 200,
    )
    assert_no_traceback(limited)


def raw_request(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A keep-alive request with exactly these extra headers (and the body's length)."""
    head = [
        f"{method} {path} HTTP/1.1",
        "Host: probe",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_over_max_connections_only_a_call_whose_proof_verifies_is_let_in(make_node: Any) -> None:
    """X-Kraft-* headers alone earn no exemption from max.connections: the proof's headers
    must verify. One that verifies gets in; if its body then is not the signed one, the 401
    closes the connection."""
    limit = 2
    limited: NodeProcess = make_node(
        extra_properties={
            "max.connections": str(limit),
            "http.request.read.timeout.ms": str(READ_TIMEOUT_MS),
            "connections.max.idle.ms": "30000",  # our held connections stay open meanwhile
        }
    )
    limited.format()
    limited.start()
    held: list[socket.socket] = []
    try:
        for _ in range(limit + 1):  # as in the test above: every client slot taken
            sock = connect(limited)
            sock.sendall(get("/v1/cluster").replace(b"Connection: close", b"X-Probe: 1"))
            answer = read_answer(sock)
            if answer.status == 503:
                sock.close()
                break
            held.append(sock)
        else:
            raise AssertionError("no connection was refused")
        path = "/v1/internal/producer-ids"
        body = b'{"broker_id":1,"broker_epoch":0}'
        good = proof(limited, "POST", path, body)
        junk: list[dict[str, str]] = [
            {NODE_HEADER: "1"},
            good | {SIGNATURE_HEADER: "f" * 64},  # every header well-formed, a wrong signature
            good | {BODY_HEADER: "0" * 64},
        ]
        for headers in junk:
            answer = send(limited, raw_request("POST", path, body, headers))
            assert_error(answer, 503, "SERVER_BUSY", "max.connections")
            assert answer.closed
        # Headers that verify, over another body: let in, refused by the middleware, closed.
        answer = send(limited, raw_request("POST", path, b'{"broker_id":1,"broker_epoch":1}', good))
        assert_error(answer, 401, "SASL_AUTHENTICATION_FAILED", "not the one signed")
        assert answer.closed
        # The same proof with its own body: its nonce was not recorded by the refusals above.
        with connect(limited) as sock:
            sock.sendall(raw_request("POST", path, body, good))
            answer = read_answer(sock)
            assert answer.status == 200 and answer.body["count"] > 0, answer
            # The connection stays the cluster's: its next call is served too.
            again = raw_request("POST", path, body, proof(limited, "POST", path, body))
            sock.sendall(again)
            assert read_answer(sock).status == 200
    finally:
        for sock in held:
            sock.close()
    assert_no_traceback(limited)


def trickle_until_answered(sock: socket.socket, data: bytes) -> None:
    """Sends ``data`` a byte at a time, 50 ms apart, as a slow client does, until the node
    answers or closes (or ANSWER_DEADLINE_S passes)."""
    deadline = time.monotonic() + ANSWER_DEADLINE_S
    for i in range(len(data)):
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable or time.monotonic() > deadline:
            return
        try:
            sock.sendall(data[i : i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return


def test_a_stranger_with_a_proof_header_is_refused_before_its_body_and_holds_no_budget(
    make_node: Any,
) -> None:
    """The reviewer's attack: X-Kraft-Node and a large Content-Length, then the body a byte at
    a time. The signature covered a digest of the body, so the node read the whole body
    (through queued.max.request.bytes) before it could refuse it: two such strangers held the
    budget and the nodes' own calls got 503. Now the headers are checked first: the stranger's
    401 comes at its head, and the cluster's own call made meanwhile is served."""
    budgeted: NodeProcess = make_node(
        extra_properties={
            "http.request.read.timeout.ms": "5000",
            "socket.request.max.bytes": str(SOCKET_MAX_BYTES),
            "queued.max.request.bytes": str(SOCKET_MAX_BYTES),  # one stranger's body fills it
            "http.max.request.bytes": str(HTTP_MAX_BYTES),
        }
    )
    budgeted.format()
    budgeted.start()
    path = "/v1/internal/producer-ids"
    stranger_body = b'{"broker_id":1,"broker_epoch":0' + b" " * (SOCKET_MAX_BYTES - 32) + b"}"
    assert len(stranger_body) == SOCKET_MAX_BYTES
    head = raw_request("POST", path, stranger_body, {NODE_HEADER: "1"})
    head = head[: -len(stranger_body)]
    strangers = [connect(budgeted) for _ in range(2)]
    try:
        for sock in strangers:
            sock.sendall(head)
        # Meanwhile, the cluster's own call (with a body, so it needs room in the budget).
        status, raw, _ = signed_call(budgeted, "POST", path, {"broker_id": 1, "broker_epoch": 0})
        assert status == 200, raw[:300]
        for sock in strangers:
            # Refused at its head: the node does not wait for its body (it would have got
            # REQUEST_TIMED_OUT, or nothing while the bytes keep coming).
            trickle_until_answered(sock, stranger_body)
            answer = read_answer(sock)
            assert_error(
                answer,
                401,
                "SASL_AUTHENTICATION_FAILED",
                "missing X-Kraft-Target, X-Kraft-Timestamp",
            )
            assert answer.closed, "a body declared and not read: nothing more can be read"
    finally:
        for sock in strangers:
            sock.close()
    assert_no_traceback(budgeted)


# -- defect 3: request sizes ----------------------------------------------------------------------


def test_a_content_length_above_socket_request_max_bytes_is_refused_before_the_body(
    node: NodeProcess,
) -> None:
    head = post(f"/v1/topics/{TOPIC}/records", b"")
    head = head.replace(b"Content-Length: 0", f"Content-Length: {SOCKET_MAX_BYTES + 1}".encode())
    answer = send(node, head)  # no body sent: it is refused without waiting for one
    assert_error(answer, 413, "REQUEST_TOO_LARGE", "socket.request.max.bytes")


def test_a_chunked_body_above_socket_request_max_bytes_is_counted_and_refused(
    node: NodeProcess,
) -> None:
    head = (
        f"POST /v1/topics/{TOPIC}/records HTTP/1.1\r\nHost: probe\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
    with connect(node) as sock:
        sock.sendall(head.encode())
        try:
            for _ in range(SOCKET_MAX_BYTES // (64 * 1024) + 2):
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the node answered and closed while we were still sending
        answer = read_answer(sock)
    assert_error(answer, 413, "REQUEST_TOO_LARGE", "socket.request.max.bytes")


def test_max_message_bytes_above_socket_request_max_bytes_is_refused_naming_both(
    node: NodeProcess,
) -> None:
    status, body = http(
        "POST",
        f"{node.url}/v1/topics",
        {"name": "huge-messages", "configs": {"max.message.bytes": 2147483647}},
    )
    assert (status, body["error"]) == (400, "INVALID_CONFIG"), body
    assert "max.message.bytes" in body["message"]
    assert "socket.request.max.bytes" in body["message"]
    status, body = http(
        "PUT",
        f"{node.url}/v1/topics/{TOPIC}/configs",
        {"configs": {"max.message.bytes": SOCKET_MAX_BYTES + 1}},
    )
    assert (status, body["error"]) == (400, "INVALID_CONFIG"), body
    status, body = http(
        "PUT",
        f"{node.url}/v1/topics/{TOPIC}/configs",
        {"configs": {"max.message.bytes": SOCKET_MAX_BYTES}},
    )
    assert status == 200, body
    status, body = http(
        "PUT", f"{node.url}/v1/topics/{TOPIC}/configs", {"configs": {"max.message.bytes": None}}
    )
    assert status == 200, body


def test_bodies_beyond_queued_max_request_bytes_wait_then_get_503_and_the_bytes_come_back(
    make_node: Any,
) -> None:
    # The stalled request must outlive the budget's 1 s wait: a read timeout of 5 s.
    budgeted: NodeProcess = make_node(
        extra_properties={
            "http.request.read.timeout.ms": "5000",
            "socket.request.max.bytes": str(SOCKET_MAX_BYTES),
            "queued.max.request.bytes": str(SOCKET_MAX_BYTES),
            "http.max.request.bytes": str(HTTP_MAX_BYTES),
        }
    )
    budgeted.format()
    budgeted.start()
    assert http("POST", f"{budgeted.url}/v1/topics", {"name": TOPIC})[0] == 201
    first_bytes = 800 * 1024  # under the produce limit (1 MiB)
    second = post(f"/v1/topics/{TOPIC}/records", b'{"value":"' + b"x" * (400 * 1024) + b'"}')
    with connect(budgeted) as holder:
        head = post(f"/v1/topics/{TOPIC}/records", b"").replace(
            b"Content-Length: 0", f"Content-Length: {first_bytes}".encode()
        )
        # Bytes are counted as they arrive: it sends 700 KiB, then stalls, holding them.
        holder.sendall(head + b'{"value":"' + b"x" * (700 * 1024))
        # Until the node has read the holder's bytes, the second one may go first (and
        # pass); from then on it waits for room, then gets 503.
        busy = wait_until(
            "a body beyond the budget gets 503",
            lambda: (a := send(budgeted, second)).status == 503 and a,
            deadline_s=4.0,
        )
        assert_error(busy, 503, "SERVER_BUSY", "queued.max.request.bytes")
        assert busy.headers["retry-after"] == "1"
        stalled = read_answer(holder)
    assert_error(stalled, 408, "REQUEST_TIMED_OUT")
    # The stalled request gave its bytes back, and so did the refused ones.
    assert send(budgeted, second).status == 200
    assert send(budgeted, second).status == 200
    assert_no_traceback(budgeted)


def test_a_body_declared_large_but_trickled_holds_only_the_bytes_it_sent(make_node: Any) -> None:
    budgeted: NodeProcess = make_node(
        extra_properties={
            "socket.request.max.bytes": str(SOCKET_MAX_BYTES),
            "queued.max.request.bytes": str(SOCKET_MAX_BYTES),
            "http.max.request.bytes": str(HTTP_MAX_BYTES),
        }
    )
    budgeted.format()
    budgeted.start()
    assert http("POST", f"{budgeted.url}/v1/topics", {"name": TOPIC})[0] == 201
    second = post(f"/v1/topics/{TOPIC}/records", b'{"value":"' + b"x" * (400 * 1024) + b'"}')
    with connect(budgeted) as first, connect(budgeted) as other:
        for holder in (first, other):  # each declares most of the budget, sends 10 bytes
            head = post(f"/v1/topics/{TOPIC}/records", b"").replace(
                b"Content-Length: 0", f"Content-Length: {800 * 1024}".encode()
            )
            holder.sendall(head + b'{"value":"')
        assert send(budgeted, second).status == 200
    assert_no_traceback(budgeted)


# -- defect 2: no busy loop below min.insync.replicas ---------------------------------------------


def under_min_isr_topic(node: NodeProcess, name: str) -> None:
    status, body = http(
        "POST", f"{node.url}/v1/topics", {"name": name, "configs": {"min.insync.replicas": 2}}
    )
    assert status == 201, body  # one replica, two needed: below min.insync.replicas for good


def test_a_follow_stream_below_min_isr_sends_one_heartbeat_per_interval_and_still_streams(
    node: NodeProcess,
) -> None:
    under_min_isr_topic(node, "lonely")
    lines: list[bytes] = []
    with connect(node) as sock:
        sock.sendall(get("/v1/topics/lonely/partitions/0/records?follow=true"))
        sock.settimeout(0.2)
        buffer = b""
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            assert data, "the stream ended"
            buffer += data
        head, _, stream = buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        lines = [x for x in stream.split(b"\n") if b"heartbeat" in x]
        # One heartbeat every 5 s: none or one in 3 s. The defect sent about 33,000.
        assert len(lines) <= 1, f"{len(lines)} heartbeat lines in 3 s"

        status, body = http(
            "POST", f"{node.url}/v1/topics/lonely/records?acks=1", {"value": "to the stream"}
        )
        assert status == 200, body
        sock.settimeout(ANSWER_DEADLINE_S)
        while b"to the stream" not in buffer:
            data = sock.recv(65536)
            assert data, "the stream ended"
            buffer += data


def test_a_long_poll_below_min_isr_waits_for_its_timeout(node: NodeProcess) -> None:
    under_min_isr_topic(node, "lonely-poll")
    started = time.monotonic()
    status, body = http(
        "GET", f"{node.url}/v1/topics/lonely-poll/partitions/0/records?offset=0&timeout_ms=1000"
    )
    elapsed = time.monotonic() - started
    assert status == 200 and body["records"] == [], body
    assert elapsed >= 0.9, f"answered after {elapsed:.3f} s: it did not wait"


def test_a_long_poll_below_min_isr_answers_when_a_record_arrives(node: NodeProcess) -> None:
    under_min_isr_topic(node, "lonely-poll-2")
    result: dict[str, Any] = {}

    def poll() -> None:
        result["answer"] = http(
            "GET",
            f"{node.url}/v1/topics/lonely-poll-2/partitions/0/records?offset=0&timeout_ms=60000",
        )

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    status, body = http(
        "POST", f"{node.url}/v1/topics/lonely-poll-2/records?acks=1", {"value": "v"}
    )
    assert status == 200, body
    poller.join(ANSWER_DEADLINE_S)
    status, body = result["answer"]
    assert status == 200 and [r["value"] for r in body["records"]] == ["v"], body


# -- a 100 MB produce against the defaults --------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_100_mb_produce_is_refused_cheaply_and_memory_stays_flat(make_node: Any) -> None:
    plain: NodeProcess = make_node()
    plain.format()
    plain.start()
    status, body = http("POST", f"{plain.url}/v1/topics", {"name": "big"})
    assert status == 201, body
    assert plain.pid is not None
    before = rss_bytes(plain.pid)
    payload = b'{"value":"' + b"x" * 100_000_000 + b'"}'
    for framing in ("length", "chunked"):
        head = (
            "POST /v1/topics/big/records HTTP/1.1\r\nHost: probe\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n"
            + (
                f"Content-Length: {len(payload)}\r\n\r\n"
                if framing == "length"
                else "Transfer-Encoding: chunked\r\n\r\n"
            )
        )
        with connect(plain) as sock:
            sock.sendall(head.encode())
            try:
                if framing == "length":
                    sock.sendall(payload)
                else:
                    step = 1024 * 1024
                    for i in range(0, len(payload), step):
                        part = payload[i : i + step]
                        sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered and closed before the whole body went out
            answer = read_answer(sock)
        assert answer.status == 413, answer
        assert answer.body["error"] in ("RECORD_TOO_LARGE", "REQUEST_TOO_LARGE"), answer
    grown = rss_bytes(plain.pid) - before
    # The defect: 768 MB resident. At most one endpoint limit (8 MiB) is ever held.
    assert grown < 64 * 1024 * 1024, f"the node grew by {grown / 2**20:.0f} MiB"
    assert_no_traceback(plain)
    status, body = http("POST", f"{plain.url}/v1/topics/big/records", {"value": "small"})
    assert status == 200, body


def test_a_compressed_body_is_refused_not_inflated(node: NodeProcess) -> None:
    bomb = gzip.compress(b"0" * 10_000_000)  # 10 KB that would inflate to 10 MB
    answer = send(node, post(f"/v1/topics/{TOPIC}/records", bomb, "Content-Encoding: gzip"))
    assert_error(answer, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Encoding")


def test_the_idle_timeout_alone_closes_a_connection_stuck_inside_its_headers(
    make_node: Any,
) -> None:
    # aiohttp's keep-alive timer runs while a connection waits for a whole request head, so
    # connections.max.idle.ms closes this one even with a read timeout far longer.
    idle: NodeProcess = make_node(
        extra_properties={
            "connections.max.idle.ms": "1000",
            "http.request.read.timeout.ms": "600000",
        }
    )
    idle.format()
    idle.start()
    with connect(idle) as sock:
        sock.sendall(b"GET /v1/topics HTTP/1.1\r\nHost: pro")
        assert closes(sock)
    with connect(idle) as sock:
        assert closes(sock), "and one that never sent a byte"
    assert_no_traceback(idle)


def test_an_unknown_expect_header_gets_a_json_417(node: NodeProcess) -> None:
    data = get("/v1/cluster").replace(b"\r\n\r\n", b"\r\nExpect: 200-ok\r\n\r\n")
    assert_error(send(node, data), 417, "EXPECTATION_FAILED", "100-continue")


def test_a_head_request_aiohttp_cannot_parse_gets_its_status_without_a_body(
    node: NodeProcess,
) -> None:
    answer = send(node, b"HEAD /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: probe\r\n\r\n")
    assert answer.status == 413 and answer.body is None and answer.closed, answer


def test_a_head_request_whose_line_spans_many_reads_gets_no_body_either(
    node: NodeProcess,
) -> None:
    # The bytes after the parse error (the rest of a 200 KB line, in later reads) were taken
    # for a new request's head and reset the HEAD's state: its answer carried a JSON body.
    answer = send(node, b"HEAD /?" + b"p=1&" * 50_000 + b" HTTP/1.1\r\nHost: probe\r\n\r\n")
    assert answer.status == 413 and answer.body is None and answer.closed, answer


def test_a_good_request_pipelined_before_a_malformed_one_gets_its_answer_first(
    node: NodeProcess,
) -> None:
    good = f"GET /v1/topics/{TOPIC} HTTP/1.1\r\nHost: probe\r\n\r\n".encode()
    bad = b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: probe\r\n\r\n"
    with connect(node) as sock:
        sock.sendall(good + bad)  # one write: aiohttp's parser sees both in one read
        first = read_answer(sock)
        second = read_answer(sock)
    assert first.status == 200 and first.body["name"] == TOPIC, first
    assert_error(second, 413, "REQUEST_TOO_LARGE")
    assert second.closed


def test_bytes_past_a_content_length_are_the_next_request(node: NodeProcess) -> None:
    with connect(node) as sock:
        sock.sendall(
            f"POST /v1/topics/{TOPIC}/records HTTP/1.1\r\nHost: probe\r\n".encode()
            + b'Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{"records": []}'
        )
        first = read_answer(sock)
        second = read_answer(sock)
    assert_error(first, 400, "INVALID_REQUEST", "JSON")  # the first 5 bytes: '{"rec'
    assert_error(second, 405, "METHOD_NOT_ALLOWED")  # 'ords": []}' is no request line
    assert second.closed


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_chunk_size_that_breaks_in_a_later_read_ends_the_request_cleanly(
    node: NodeProcess, method: str
) -> None:
    # The head in one read, the broken chunk in the next: the parser fails inside a body
    # its handler is reading (POST) or not reading (GET, answered before it).
    path = f"/v1/topics/{TOPIC}" + ("/records" if method == "POST" else "")
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: probe\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    with connect(node) as sock:
        sock.sendall(head.encode())
        time.sleep(0.2)
        sock.sendall(b"zz\r\n")
        answer = read_answer(sock)
        if method == "POST":
            assert_error(answer, 400, "INVALID_REQUEST", "chunked")
            assert answer.closed
        else:
            assert answer.status == 200, answer
            assert closes(sock)


def test_a_broken_chunked_body_read_by_a_middleware_is_a_400_too(node: NodeProcess) -> None:
    # Proof headers that verify make the internal-auth middleware read the body before any
    # handler (to compare its digest with the signed one).
    signed = "".join(f"{k}: {v}\r\n" for k, v in proof(node, "GET", "/v1/cluster", b"").items())
    data = (
        b"GET /v1/cluster HTTP/1.1\r\nHost: probe\r\nTransfer-Encoding: chunked\r\n"
        + signed.encode()
        + b"\r\nzz\r\n\r\n0\r\n\r\n"
    )
    answer = send(node, data)
    assert_error(answer, 400, "INVALID_REQUEST", "chunked")
    assert answer.closed


def test_a_body_behind_proof_headers_that_do_not_verify_is_never_read(node: NodeProcess) -> None:
    # The same broken body behind a lone proof header: refused at the head, the body unread.
    data = (
        b"GET /v1/cluster HTTP/1.1\r\nHost: probe\r\nTransfer-Encoding: chunked\r\n"
        b"X-Kraft-Node: 1\r\n\r\nzz\r\n\r\n0\r\n\r\n"
    )
    answer = send(node, data)
    assert_error(
        answer, 401, "SASL_AUTHENTICATION_FAILED", "missing X-Kraft-Target, X-Kraft-Timestamp"
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v1/internal/alter-isr",
            b'{"leader":1,"partitions":[{"topic_id":"x","partition":18446744073709551616,'
            b'"leader_epoch":0,"partition_epoch":0,"isr":[1]}]}',
            "partition",
        ),
        (
            "/v1/internal/alter-isr",
            b'{"leader":1,"partitions":[{"topic_id":"x","partition":0,'
            b'"leader_epoch":1.5,"isr":[1]}]}',
            "leader_epoch",
        ),
        (
            "/v1/internal/alter-isr",
            b'{"leader":true,"partitions":[]}',
            "leader",
        ),
        ("/v1/internal/producer-ids", b'{"broker_id":1,"broker_epoch":1e30}', "broker_epoch"),
        (
            "/v1/internal/brokers/1/heartbeat",
            b'{"broker_epoch":123456789012345678901234567890}',
            "broker_epoch",
        ),
    ],
)
def test_signed_internal_calls_with_odd_numbers_get_400_naming_the_field(
    node: NodeProcess, path: str, body: bytes, field: str
) -> None:
    status, raw, content_type = signed_call(node, "POST", path, body)
    answer = json.loads(raw)
    assert (status, answer["error"]) == (400, "INVALID_REQUEST"), answer
    assert content_type.startswith("application/json")
    assert field in answer["message"] and "e+" not in answer["message"], answer


def test_a_large_fetch_is_read_in_steps_and_stays_contiguous(node: NodeProcess) -> None:
    status, body = http("POST", f"{node.url}/v1/topics", {"name": "steps"})
    assert status == 201, body
    value = "v" * 200
    for start in range(0, 3000, 1000):  # 600 KB of records: three 256 KiB read steps
        records = [{"key": str(start + i), "value": value} for i in range(1000)]
        status, body = http("POST", f"{node.url}/v1/topics/steps/records", {"records": records})
        assert status == 200, body
    url = f"{node.url}/v1/topics/steps/partitions/0/records?offset=0&max_bytes=67108864"
    status, body = http("GET", url + "&max_records=10000")
    assert status == 200, body
    assert [r["offset"] for r in body["records"]] == list(range(3000))
    assert [r["key"] for r in body["records"]] == [str(i) for i in range(3000)]
    assert body["next_offset"] == 3000
    status, body = http("GET", url + "&max_records=2500")
    assert [r["offset"] for r in body["records"]] == list(range(2500))
    assert body["next_offset"] == 2500


def test_a_tls_handshake_that_never_comes_is_closed_after_the_read_timeout(
    tmp_path: Path,
) -> None:
    cluster = Cluster.create(
        tmp_path / "tls", 1, security="SSL", **{"http.request.read.timeout.ms": "1000"}
    )
    try:
        cluster.start()
        (tls_node,) = cluster.nodes
        # asyncio's own handshake timeout is 60 s; the node's read timeout (1 s) applies.
        with socket.create_connection(("127.0.0.1", tls_node.http_port), timeout=30) as sock:
            assert closes(sock)
        status, body = tls_node.http("GET", "/v1/health/ready")
        assert status == 200, body
        assert_no_traceback(tls_node)
    finally:
        cluster.stop()
