"""Incremental replica fetch sessions (KIP-227) without sockets: the session table's rules,
the follower's half, and the leader's handler answering from a session over MemoryLogs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import pytest

from client.protocol import (
    FETCH_SESSION_ID_NOT_FOUND,
    INVALID_FETCH_SESSION_EPOCH,
    INVALID_REQUEST,
    ApiError,
)
from server.fetch_sessions import (
    FULL_EPOCH,
    INT32_MAX,
    FollowerSession,
    SessionError,
    SessionTable,
    next_epoch,
)
from server.fetcher import apply_session_response, fetch_state
from server.partition import LeaderState, Partition
from server.replication import (
    FetchPartition,
    FetchRequest,
    FetchResponse,
    ReplicaFetchHandler,
    decode_fetch_response,
)
from storage.batch import NewRecord
from storage.memory_log import MemoryLog

TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"


def want(index: int, fetch_offset: int = 0, epoch: int = 0) -> FetchPartition:
    return FetchPartition("t", index, TOPIC_ID, epoch, fetch_offset, fetch_offset, -1)


def counter() -> Callable[[], int]:
    ids = iter(range(1, 1_000_000))
    return lambda: next(ids)


# -- the session table ---------------------------------------------------------------------------


def test_a_full_request_opens_a_session_holding_every_partition_all_dirty() -> None:
    table: SessionTable[FetchPartition] = SessionTable(8, counter())
    session, closed = table.begin(2, 0, FULL_EPOCH, [want(0), want(1)], [], now_ms=5)
    assert session is not None and closed == []
    assert (session.session_id, session.epoch, session.last_fetch_ms) == (1, 1, 5)
    assert list(session.partitions) == [("t", 0), ("t", 1)]
    assert session.take_dirty() == [("t", 0), ("t", 1)], "the first answer is full"
    assert session.take_dirty() == [], "then only what changes"


def test_an_incremental_request_updates_what_it_names_forgets_and_moves_the_epoch() -> None:
    table: SessionTable[FetchPartition] = SessionTable(8, counter())
    session, _ = table.begin(2, 0, FULL_EPOCH, [want(0), want(1), want(2)], [], now_ms=0)
    assert session is not None
    session.take_dirty()
    again, _ = table.begin(2, session.session_id, 1, [want(1, 7)], [("t", 2)], now_ms=9)
    assert again is session and session.epoch == 2 and session.last_fetch_ms == 9
    assert session.partitions[("t", 1)].want.fetch_offset == 7
    assert ("t", 2) not in session.partitions and table.holding(("t", 2)) == []
    assert session.take_dirty() == [("t", 1)]


def test_a_session_error_names_the_unknown_session_or_the_expected_epoch() -> None:
    table: SessionTable[FetchPartition] = SessionTable(8, counter())
    session, _ = table.begin(2, 0, FULL_EPOCH, [want(0)], [], now_ms=0)
    assert session is not None
    with pytest.raises(SessionError) as caught:
        table.begin(2, session.session_id, 5, [], [], now_ms=0)
    assert caught.value.kind is INVALID_FETCH_SESSION_EPOCH
    assert "expects epoch 1, got 5" in caught.value.message
    for replica, session_id in ((2, 999), (3, session.session_id)):  # another's is not yours
        with pytest.raises(SessionError) as caught:
            table.begin(replica, session_id, 1, [], [], now_ms=0)
        assert caught.value.kind is FETCH_SESSION_ID_NOT_FOUND


def test_a_followers_new_session_replaces_its_previous_one_and_the_table_is_bounded() -> None:
    table: SessionTable[FetchPartition] = SessionTable(2, counter())
    first, _ = table.begin(2, 0, FULL_EPOCH, [want(0)], [], now_ms=0)
    second, closed = table.begin(2, 0, FULL_EPOCH, [want(0)], [], now_ms=1)
    assert first is not None and second is not None
    assert closed == [first] and first.closed and len(table) == 1
    assert table.of_replica(2) is second and table.holding(("t", 0)) == [second]
    third, _ = table.begin(3, 0, FULL_EPOCH, [want(0)], [], now_ms=2)
    table.begin(2, second.session_id, 1, [], [], now_ms=3)  # second is used again: newest
    fourth, closed = table.begin(4, 0, FULL_EPOCH, [want(0)], [], now_ms=4)
    assert closed == [third], "the least recently used session goes first"
    assert len(table) == 2 and table.of_replica(3) is None


def test_a_sessionless_request_keeps_no_session_and_closes_the_one_it_names() -> None:
    table: SessionTable[FetchPartition] = SessionTable(8, counter())
    session, _ = table.begin(2, 0, FULL_EPOCH, [want(0)], [], now_ms=0)
    assert session is not None
    none, closed = table.begin(2, session.session_id, -1, [want(0)], [], now_ms=0)
    assert none is None and closed == [session] and len(table) == 0


def test_a_change_marks_the_partition_dirty_only_in_the_sessions_holding_it() -> None:
    table: SessionTable[FetchPartition] = SessionTable(8, counter())
    a, _ = table.begin(2, 0, FULL_EPOCH, [want(0), want(1)], [], now_ms=0)
    b, _ = table.begin(3, 0, FULL_EPOCH, [want(1)], [], now_ms=0)
    assert a is not None and b is not None
    a.take_dirty(), b.take_dirty()
    assert table.changed(("t", 0)) == [a]
    assert set(table.changed(("t", 1))) == {a, b}
    assert table.changed(("t", 9)) == []
    assert a.take_dirty() == [("t", 0), ("t", 1)] and b.take_dirty() == [("t", 1)]


def test_epochs_wrap_to_one_after_the_last_int32() -> None:
    assert next_epoch(0) == 1 and next_epoch(41) == 42 and next_epoch(INT32_MAX) == 1


# -- the follower's half -------------------------------------------------------------------------


def test_the_follower_names_everything_once_then_only_changes_and_forgotten_partitions() -> None:
    session: FollowerSession[FetchPartition] = FollowerSession()
    full = session.full_request([want(0), want(1)])
    assert (full.session_id, full.session_epoch, len(full.partitions)) == (0, 0, 2)
    session.answered(77)
    assert (session.session_id, session.epoch, session.full) == (77, 1, False)
    nothing = session.incremental_request({("t", 0): want(0), ("t", 1): want(1)})
    assert (nothing.session_epoch, nothing.partitions, nothing.forgotten) == (1, [], [])
    session.answered(77)
    changed = session.incremental_request({("t", 0): want(0, 5), ("t", 1): None})
    assert changed.session_epoch == 2
    assert changed.partitions == [want(0, 5)] and changed.forgotten == [("t", 1)]
    session.resend.add(("t", 0))
    again = session.incremental_request({})
    assert again.partitions == [want(0, 5)], "a partition to look at again goes unchanged"


def test_a_reset_makes_the_next_request_full_and_a_leader_without_a_session_too() -> None:
    session: FollowerSession[FetchPartition] = FollowerSession()
    session.full_request([want(0)])
    session.answered(0)  # the leader kept no session: ask in full again
    assert session.full
    session.full_request([want(0)])
    session.answered(5)
    session.reset()
    assert session.full and session.session_id == 0 and session.sent == {}


# -- the leader's handler over a session ---------------------------------------------------------


def leader(index: int, isr: tuple[int, ...] = (1, 2, 3)) -> Partition:
    return Partition(
        topic="t",
        topic_id=TOPIC_ID,
        index=index,
        node_id=1,
        log=MemoryLog(),
        state=LeaderState(1, 0, (1, 2, 3), isr),
        leader_since_ms=0,
    )


def append(p: Partition, count: int) -> None:
    p.append_now([[NewRecord(None, b"v", 1000 + i) for i in range(count)]], "1")


class Leader:
    """A leader's handler over MemoryLog partitions, woken as the node wakes it."""

    def __init__(self, count: int, isr: tuple[int, ...] = (1, 2, 3)) -> None:
        self.partitions = {("t", i): leader(i, isr) for i in range(count)}
        self.isr_changes: list[tuple[int, tuple[int, ...]]] = []
        self.watched: list[tuple[int, int]] = []
        self.handler = ReplicaFetchHandler(
            1,
            lambda t, i: self.partitions.get((t, i)),
            lambda p, isr: self.isr_changes.append((p.index, isr)),
            watch_isr=lambda p, due: self.watched.append((p.index, due)),
        )
        for p in self.partitions.values():
            p.change_listener = self.handler.partition_changed

    def fetch(self, request: FetchRequest) -> FetchResponse:
        return decode_fetch_response(asyncio.run(self.handler.fetch(request)))


def session_request(
    wants: list[FetchPartition],
    session_id: int = 0,
    epoch: int = FULL_EPOCH,
    wait_ms: int = 0,
    forgotten: tuple[tuple[str, int], ...] = (),
) -> FetchRequest:
    return FetchRequest(2, wait_ms, 1 << 20, tuple(wants), session_id, epoch, forgotten)


def answered(response: FetchResponse) -> dict[int, tuple[dict[str, Any], bytes]]:
    return {entry["partition"]: (entry, data) for entry, data in response.partitions}


def test_a_full_session_request_is_answered_for_every_partition_with_the_session_id() -> None:
    node = Leader(3)
    append(node.partitions[("t", 1)], 2)
    response = node.fetch(session_request([want(0), want(1), want(2)]))
    assert response.error is None and response.session_id != 0
    by_partition = answered(response)
    assert sorted(by_partition) == [0, 1, 2]
    assert by_partition[1][1] == node.partitions[("t", 1)].log.read(0, 1 << 20)


def test_an_idle_incremental_fetch_names_nothing_and_is_answered_with_nothing() -> None:
    node = Leader(3)
    opened = node.fetch(session_request([want(0), want(1), want(2)]))
    idle = node.fetch(session_request([], opened.session_id, 1))
    assert idle.error is None and idle.partitions == []


def test_a_held_session_poll_wakes_for_an_append_and_answers_only_that_partition() -> None:
    node = Leader(50)
    wants = [want(i) for i in range(50)]
    opened = node.fetch(session_request(wants))

    async def scenario() -> bytes:
        waiting = asyncio.create_task(
            node.handler.fetch(session_request([], opened.session_id, 1, wait_ms=60_000))
        )
        await asyncio.sleep(0)
        assert not waiting.done(), "held: nothing new"
        append(node.partitions[("t", 17)], 3)  # Partition.notify wakes the session
        return await asyncio.wait_for(waiting, 10)

    by_partition = answered(decode_fetch_response(asyncio.run(scenario())))
    assert list(by_partition) == [17]
    assert by_partition[17][1] == node.partitions[("t", 17)].log.read(0, 1 << 20)


def test_a_moved_high_watermark_is_news_and_an_unchanged_one_is_not() -> None:
    node = Leader(2)
    p = node.partitions[("t", 0)]
    p.state = LeaderState(1, 0, (1, 2, 3), (1, 2))
    append(p, 2)
    p.log.flush()
    opened = node.fetch(session_request([want(0), want(1)]))
    assert answered(opened)[0][0]["high_watermark"] == 0
    # The follower appended and fsynced both records: it says so, the HW moves to 2.
    told = node.fetch(session_request([want(0, 2)], opened.session_id, 1))
    assert [(e["partition"], e["high_watermark"]) for e, _ in told.partitions] == [(0, 2)]
    assert node.fetch(session_request([], opened.session_id, 2)).partitions == []


def test_a_high_watermark_moved_by_the_followers_own_report_is_told_in_a_held_poll() -> None:
    node = Leader(1)
    p = node.partitions[("t", 0)]
    p.state = LeaderState(1, 0, (1, 2, 3), (1, 2))
    append(p, 2)
    p.log.flush()
    opened = node.fetch(session_request([want(0)]))
    # The report moves the HW, whose change marks the partition dirty again in this very
    # session while its poll is held (nothing to send but the HW): the second look must not
    # drop the news the first look found.
    told = node.fetch(session_request([want(0, 2)], opened.session_id, 1, wait_ms=200))
    assert [(e["partition"], e["high_watermark"]) for e, _ in told.partitions] == [(0, 2)]


def test_an_unknown_session_or_a_wrong_epoch_is_a_session_error_with_no_partitions() -> None:
    node = Leader(1)
    lost = node.fetch(session_request([], 12345, 3))  # the leader restarted meanwhile
    assert lost.partitions == [] and lost.error is not None
    assert lost.error["error"] == "FETCH_SESSION_ID_NOT_FOUND"
    opened = node.fetch(session_request([want(0)]))
    repeated = node.fetch(session_request([], opened.session_id, 7))
    assert repeated.error is not None and repeated.error["error"] == "INVALID_FETCH_SESSION_EPOCH"


def test_a_diverging_follower_is_told_in_a_session_too() -> None:
    node = Leader(1)
    p = node.partitions[("t", 0)]
    append(p, 2)  # epoch 0: offsets 0-1
    p.update_state(LeaderState(1, 2, (1, 2, 3), (1, 2, 3)), now_ms=0)
    append(p, 1)  # epoch 2 starts at offset 2
    ahead = FetchPartition("t", 0, TOPIC_ID, 2, 4, 4, 1)
    ((entry, data),) = node.fetch(session_request([ahead])).partitions
    assert entry["diverging"] == {"epoch": 0, "end_offset": 2} and data == b""


def test_a_forgotten_partition_and_a_closed_session_are_given_to_the_isr_keeper() -> None:
    node = Leader(2)
    opened = node.fetch(session_request([want(0), want(1)]))
    node.watched.clear()
    node.fetch(session_request([], opened.session_id, 1, forgotten=(("t", 1),)))
    assert [index for index, _ in node.watched] == [1]
    node.watched.clear()
    node.fetch(session_request([want(0)]))  # a new full session closes the old one
    assert [index for index, _ in node.watched] == [0]


def test_the_session_fields_round_trip_and_bad_ones_are_a_400() -> None:
    request = session_request([want(0)], 9, 4, forgotten=(("t", 3),))
    assert FetchRequest.from_json(orjson.loads(orjson.dumps(request.to_json()))) == request
    base = session_request([want(0)]).to_json()
    for changes, problem in (
        ({"session_epoch": -2}, "session_epoch must be in [-1, "),
        ({"session_id": -1}, "session_id must be in [0, "),
        ({"session_epoch": 3}, "needs its session_id"),
        ({"forgotten": [{"topic": "t", "partition": 1}]}, "forgotten is for incremental"),
        ({"session_id": 1, "session_epoch": 2, "forgotten": [7]}, "forgotten[0] must be"),
        ({"session_id": 1, "session_epoch": 2, "forgotten": {}}, "forgotten must be a list"),
    ):
        with pytest.raises(ApiError) as caught:
            FetchRequest.from_json(base | changes)
        assert caught.value.kind is INVALID_REQUEST and problem in caught.value.message


# -- both halves, round after round --------------------------------------------------------------


def follower(index: int) -> Partition:
    return Partition(
        topic="t",
        topic_id=TOPIC_ID,
        index=index,
        node_id=2,
        log=MemoryLog(),
        state=LeaderState(1, 0, (1, 2, 3), (1, 2, 3)),
    )


def run(coroutine: Coroutine[Any, Any, bytes]) -> bytes:
    return asyncio.run(coroutine)


def test_rounds_of_a_session_replicate_every_partition_and_idle_rounds_name_nothing() -> None:
    count = 20
    node = Leader(count, isr=(1, 2))
    replicas = {("t", i): follower(i) for i in range(count)}
    session: FollowerSession[FetchPartition] = FollowerSession()
    named: list[int] = []

    def round_trip() -> None:
        if session.full:
            asking = session.full_request([fetch_state(p) for p in replicas.values()])
        else:
            asking = session.incremental_request(
                {key: fetch_state(p) for key, p in replicas.items()}
            )
        named.append(len(asking.partitions))
        request = session_request(
            asking.partitions, asking.session_id, asking.session_epoch, forgotten=()
        )
        response = decode_fetch_response(run(node.handler.fetch(request)))
        assert response.error is None
        session.answered(response.session_id)
        for p in apply_session_response(1, replicas.get, session, response.partitions):
            p.log.flush()  # the follower fsyncs before it reports

    for i in (3, 11, 19):
        append(node.partitions[("t", i)], i)
        node.partitions[("t", i)].log.flush()
    for _ in range(4):
        round_trip()
    for key, p in replicas.items():
        leader_log = node.partitions[key].log
        assert p.log.read(0, 1 << 20) == leader_log.read(0, 1 << 20)
        assert p.log.high_watermark == leader_log.high_watermark == leader_log.log_end_offset
    assert named[0] == count and named[1] == 3, "after the full request, only what changed"
    named.clear()
    round_trip()
    assert named == [0], "an idle round names nothing"


def test_a_partition_the_follower_names_is_answered_whole_even_if_nothing_moved() -> None:
    """The follower may have skipped the last answer (its metadata moved meanwhile): naming
    the partition again gets its high watermark again."""
    node = Leader(2)
    opened = node.fetch(session_request([want(0), want(1)]))
    ((entry, _),) = node.fetch(session_request([want(1)], opened.session_id, 1)).partitions
    assert (entry["partition"], entry["high_watermark"]) == (1, 0)
