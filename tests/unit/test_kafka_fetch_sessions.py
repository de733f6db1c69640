"""Consumer fetch sessions of the Kafka listener (KIP-227, server/kafka/fetch.py) over the
replica fetch's SessionTable: each belongs to its connection, and an incremental answer names
only the partitions with news."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from client.protocol import FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH
from server.fetch_sessions import Cached, SessionError
from server.kafka.fetch import ConsumerSessions, FetchWant, Slot, _has_news


def want(partition: int, offset: int = 0) -> FetchWant:
    return FetchWant("t", partition, "x5Ujx2PtQ1C2rkC8-XNMZA", offset, -1, 1024)


def test_a_full_request_opens_a_session_and_incremental_ones_follow_its_epochs() -> None:
    sessions = ConsumerSessions(sessions_max=10)
    session, _ = sessions.table.begin(1, 0, 0, [want(0), want(1)], [], 0)
    assert session is not None and session.session_id != 0
    assert list(session.partitions) == [("t", 0), ("t", 1)]
    again, _ = sessions.table.begin(1, session.session_id, 1, [want(0, 5)], [("t", 1)], 1)
    assert again is session
    assert list(session.partitions) == [("t", 0)], "partition 1 was forgotten"
    assert session.partitions[("t", 0)].want.fetch_offset == 5
    with pytest.raises(SessionError) as wrong_epoch:
        sessions.table.begin(1, session.session_id, 1, [], [], 2)  # epoch 1 again: a replay
    assert wrong_epoch.value.kind is INVALID_FETCH_SESSION_EPOCH


def test_sessions_of_two_connections_coexist_and_one_cannot_use_the_others() -> None:
    sessions = ConsumerSessions(sessions_max=10)
    first, _ = sessions.table.begin(1, 0, 0, [want(0)], [], 0)
    second, _ = sessions.table.begin(2, 0, 0, [want(0)], [], 0)
    assert first is not None and second is not None and not first.closed
    with pytest.raises(SessionError) as stolen:
        sessions.table.begin(2, first.session_id, 1, [], [], 1)
    assert stolen.value.kind is FETCH_SESSION_ID_NOT_FOUND


def test_a_connections_new_full_request_replaces_its_session_and_its_close_ends_it() -> None:
    sessions = ConsumerSessions(sessions_max=10)
    old, _ = sessions.table.begin(1, 0, 0, [want(0)], [], 0)
    new, closed = sessions.table.begin(1, 0, 0, [want(1)], [], 1)
    assert old is not None and new is not None
    assert closed == [old] and old.closed and len(sessions.table) == 1
    sessions.connection_closed(1)
    assert new.closed and len(sessions.table) == 0
    with pytest.raises(SessionError) as gone:  # a reconnected client starts a full session
        sessions.table.begin(1, new.session_id, 1, [], [], 2)
    assert gone.value.kind is FETCH_SESSION_ID_NOT_FOUND


def test_a_sessionless_request_keeps_nothing() -> None:
    sessions = ConsumerSessions(sessions_max=10)
    session, _ = sessions.table.begin(1, 0, -1, [want(0)], [], 0)
    assert session is None and len(sessions.table) == 0


def test_sessions_are_bounded_the_least_recently_used_going_first() -> None:
    sessions = ConsumerSessions(sessions_max=2)
    a, _ = sessions.table.begin(1, 0, 0, [want(0)], [], 0)
    sessions.table.begin(2, 0, 0, [want(0)], [], 1)
    sessions.table.begin(3, 0, 0, [want(0)], [], 2)
    assert a is not None and a.closed and len(sessions.table) == 2


def _slot(answer: dict[str, object]) -> Slot:
    return Slot(want(0), "t", "x5Ujx2PtQ1C2rkC8-XNMZA", 0, dict(answer))


def test_an_incremental_answer_names_a_partition_only_with_news() -> None:
    held = Cached(want(0), high_watermark_sent=10, log_start_sent=0)
    cached = {("t", 0): held}
    quiet = {"error_code": ErrorCode.none, "high_watermark": 10, "log_start_offset": 0,
             "records": b""}  # fmt: skip
    assert not _has_news(_slot(quiet), cached)
    assert _has_news(_slot({**quiet, "records": b"batch"}), cached)
    assert _has_news(_slot({**quiet, "high_watermark": 11}), cached)
    assert _has_news(_slot({**quiet, "log_start_offset": 3}), cached)
    assert _has_news(_slot({"error_code": ErrorCode.not_leader_or_follower}), cached)
    assert _has_news(_slot(quiet), {}), "a partition the session does not hold yet"
