"""The Raft link reporter's rate limit and its reading of handshake closes (pure: fake clock)."""

from __future__ import annotations

import logging

import pytest

from kraft.transport import AUTH, HANDSHAKE_CLOSED, OVERSIZED, LinkReporter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reporter(clock: Clock) -> LinkReporter:
    return LinkReporter(7, interval_s=10.0, handshake_closes_reported=2, clock=clock)


def test_a_recurring_problem_is_logged_once_per_interval_with_the_count_of_repeats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    clock = Clock()
    links = reporter(clock)
    for _ in range(5):
        links.report(OVERSIZED, "10.0.0.1", "dropped it")
        clock.now += 1
    links.report(OVERSIZED, "10.0.0.2", "dropped another")  # another peer: its own limit
    assert [r.getMessage() for r in caplog.records] == [
        "node 7: dropped it",
        "node 7: dropped another",
    ]
    clock.now += 6  # 11 s after the first line
    links.report(OVERSIZED, "10.0.0.1", "dropped it")
    assert caplog.records[-1].getMessage() == "node 7: dropped it (4 more since the last report)"
    assert links.counts[(OVERSIZED, "10.0.0.1")] == 6 and links.logged[(OVERSIZED, "10.0.0.1")] == 2


def test_repeated_closes_during_the_handshake_are_a_warning_that_names_every_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A dialer cannot tell a peer with another secret from a peer it cannot reach through a
    proxy (issue 10: resets on a Raft link were logged as ERROR "failed authentication")."""
    caplog.set_level(logging.WARNING)
    clock = Clock()
    links = reporter(clock)
    links.handshake_closed("127.0.0.1:9095")  # once may be a restart: not reported
    assert not caplog.records
    links.handshake_closed("127.0.0.1:9095")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        "node 7: the Raft link with 127.0.0.1:9095 was closed during the handshake, 2 times in "
        "a row: the peer is unreachable or restarting, or its cluster.secret differs"
    )
    assert "failed authentication" not in record.getMessage().split("(")[0]
    assert links.counts[(HANDSHAKE_CLOSED, "127.0.0.1:9095")] == 1
    assert not links.counts[(AUTH, "127.0.0.1:9095")]


def test_a_successful_handshake_resets_the_count_of_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    links = reporter(clock)
    links.handshake_closed("127.0.0.1:9095")
    links.handshake_done("127.0.0.1:9095")
    links.handshake_closed("127.0.0.1:9095")
    assert not links.counts and not caplog.records
