"""The fuzz tier's own judges, without a node: the response parser tells a well-formed answer
from a malformed or unfinished one, a silent server is a hang and a closing one a close, the
odd-number and path rules say what they mean."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.fuzz.checks import effective_path, may_get
from tests.fuzz.odd import is_odd_number
from tests.fuzz.wire import Answer, Closed, Hung, Malformed, Request, _NeedMore, exchange, parse_one

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def parse(data: bytes, head_only: bool = False, eof: bool = False) -> Answer | Malformed:
    return parse_one(data, head_only, eof)


def test_a_response_with_a_content_length_is_complete_at_its_length() -> None:
    answer = parse(OK_HEAD + b"Content-Length: 2\r\n\r\n{}")
    assert isinstance(answer, Answer) and answer.status == 200 and answer.body == b"{}"
    assert answer.media_type == "application/json"
    with pytest.raises(_NeedMore):
        parse(OK_HEAD + b"Content-Length: 5\r\n\r\n{}")


def test_bytes_after_the_body_or_a_body_cut_by_the_close_are_malformed() -> None:
    assert isinstance(parse(OK_HEAD + b"Content-Length: 1\r\n\r\n{}"), Malformed)
    assert isinstance(parse(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nx"), Malformed)
    with pytest.raises(_NeedMore):
        parse(OK_HEAD + b"\r\n{")  # no framing: the body runs to the close
    assert parse(OK_HEAD + b"\r\n{}", eof=True) == Answer(
        200, "OK", (("content-type", "application/json"),), b"{}"
    )


def test_a_chunked_body_is_joined_and_checked() -> None:
    data = OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    answer = parse(data)
    assert isinstance(answer, Answer) and answer.body == b"{}"
    assert isinstance(parse(data.replace(b"2\r\n{}", b"z\r\n{}")), Malformed)
    with pytest.raises(_NeedMore):
        parse(data[:-4])


def test_an_interim_100_continue_is_skipped_and_a_101_is_malformed() -> None:
    answer = parse(b"HTTP/1.1 100 Continue\r\n\r\n" + OK_HEAD + b"Content-Length: 0\r\n\r\n")
    assert isinstance(answer, Answer) and answer.status == 200
    assert isinstance(parse(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"), Malformed)


def test_a_stream_is_complete_once_its_head_arrived() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
    answer = parse(head + b"Transfer-Encoding: chunked\r\n\r\n")
    assert isinstance(answer, Answer) and answer.streamed


def test_a_head_answer_has_no_body_whatever_its_length() -> None:
    answer = parse(OK_HEAD + b"Content-Length: 40\r\n\r\n", head_only=True)
    assert isinstance(answer, Answer) and answer.body == b""


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"garbage",
    ],
)
def test_what_is_not_an_http_response_is_malformed(data: bytes) -> None:
    assert isinstance(parse(data), Malformed)


def test_a_request_gets_host_close_and_length_unless_it_sets_them() -> None:
    assert Request(b"POST", b"/x", (), b"{}").to_bytes(b"h") == (
        b"POST /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    )
    framed = Request(b"POST", b"/x", ((b"Content-Length", b"-5"),), b"{}").to_bytes(b"h")
    assert framed.count(b"Content-Length") == 1 and b"Content-Length: -5" in framed
    assert Request(b"", b"", raw=b"\x16\x03").to_bytes(b"h") == b"\x16\x03"


def test_odd_numbers_are_those_a_lenient_parser_takes() -> None:
    for odd in ("²", "٣", "%D9%A1", "+1", " 1", "1_0", "１"):
        assert is_odd_number(odd), odd
    for plain in ("0", "42", "-1", "abc", "", "1.0", "0x1"):
        assert not is_odd_number(plain), plain


def test_the_secure_fuzz_reads_paths_as_a_lenient_router_would() -> None:
    assert effective_path(b"/v1/../v1/./topics/%66uzz?x=1#f") == "/v1/topics/fuzz"
    assert effective_path(b"http://h:1//v1//topics/") == "/v1/topics"
    assert may_get("alice", Request(b"GET", b"/v1/topics/fuzz/partitions/0/records"))
    assert not may_get("alice", Request(b"GET", b"/v1/topics/fuzz-configs"))
    assert not may_get("alice", Request(b"POST", b"/v1/topics/fuzz/records"))
    assert may_get("nobody", Request(b"HEAD", b"/v1/health/ready"))
    assert not may_get("nobody", Request(b"GET", b"/v1/topics"))
    assert may_get("admin", Request(b"DELETE", b"/v1/topics/fuzz"))


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local socket that accepts connections and never answers (the backlog accepts)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def test_a_server_that_never_answers_is_a_hang(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    outcome = exchange(port, Request(b"GET", b"/v1/cluster"), 0.3)
    assert isinstance(outcome, Hung) and outcome.waited_s >= 0.3


def test_a_server_that_closes_at_once_is_a_close(listener: socket.socket) -> None:
    port = listener.getsockname()[1]

    def close_first() -> None:
        connection, _ = listener.accept()
        connection.close()

    closer = threading.Thread(target=close_first)
    closer.start()
    outcome = exchange(port, Request(b"GET", b"/v1/cluster"), 5.0)
    closer.join()
    assert isinstance(outcome, Closed), outcome
