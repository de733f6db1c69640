"""A node-to-node call that got no answer is reported in one short line (issue 11: the message
was 5 KB of aiohttp's internals, and said "controller" for a partition leader)."""

from __future__ import annotations

import aiohttp

from server import limits
from server.node import why_unanswered


def test_a_timeout_says_how_long_it_waited() -> None:
    assert why_unanswered(TimeoutError(), 1.0) == "no answer within 1 s"
    assert why_unanswered(aiohttp.ServerTimeoutError("read"), 15.0) == "no answer within 15 s"


def test_an_error_is_its_type_and_first_line_without_a_repr_of_internals() -> None:
    error = aiohttp.ClientConnectionError(
        "Cannot connect to host 127.0.0.1:9094 ssl:default [Connect call failed]\n"
        + "ConnectionKey(host='127.0.0.1', port=9094, is_ssl=False, ssl=True, ...)\n" * 50
    )
    line = why_unanswered(error, 1.0)
    assert line == (
        "ClientConnectionError: Cannot connect to host 127.0.0.1:9094 ssl:default "
        "[Connect call failed]"
    )


def test_a_long_reason_is_cut_and_an_empty_one_is_the_type_alone() -> None:
    line = why_unanswered(aiohttp.ServerDisconnectedError("x" * 5000), 1.0)
    assert len(line) <= len("ServerDisconnectedError: ") + limits.PEER_ERROR_CHARS_MAX + 3
    assert line.endswith("...")
    assert why_unanswered(aiohttp.ClientPayloadError(), 1.0) == "ClientPayloadError"
