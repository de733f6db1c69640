"""The follower's fetcher over a session without sockets: what each request names is kept up
to date by events (a partition's notify, a reconcile's update); a look at every partition
followed comes only every few seconds, as a safety net."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from server.fetcher import ReplicaFetcher, _LeaderFetch, apply_session_response
from server.log_manager import LogManager
from server.partition import LeaderState, Partition
from storage.batch import NewRecord, build_batch
from storage.memory_log import MemoryLog

TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"
LEADER = 1
ME = 2


class Logs:
    """What the fetcher reads of the log manager: the partitions by (topic, index)."""

    def __init__(self, count: int) -> None:
        self.partitions = {
            ("t", i): Partition(
                topic="t",
                topic_id=TOPIC_ID,
                index=i,
                node_id=ME,
                log=MemoryLog(),
                state=LeaderState(LEADER, 0, (1, 2, 3), (1, 2, 3)),
            )
            for i in range(count)
        }


def fetcher_of(logs: Logs) -> tuple[ReplicaFetcher, _LeaderFetch]:
    fetcher = ReplicaFetcher(
        ME,
        cast(LogManager, logs),
        lambda leader: None,
        lambda: cast(Any, None),
        lambda method, url, body, peer: {},
    )

    async def assign() -> None:
        fetcher.update()  # starts a session task per leader: not run here
        await fetcher.close()

    asyncio.run(assign())
    fetch = fetcher._fetches[LEADER] = _LeaderFetch()
    for p in logs.partitions.values():
        p.change_listener = fetcher.partition_changed
    return fetcher, fetch


def named(fetcher: ReplicaFetcher, fetch: _LeaderFetch) -> tuple[list[int], list[int]]:
    """The partitions the next request names, and those it forgets; the leader takes it."""
    request = fetcher._next_request(LEADER, fetch)
    assert request is not None
    fetch.session.answered(7)
    return [p.partition for p in request.partitions], [i for _, i in request.forgotten]


def test_a_session_names_every_partition_once_then_only_what_an_event_changed() -> None:
    logs = Logs(5)
    fetcher, fetch = fetcher_of(logs)
    assert named(fetcher, fetch) == ([0, 1, 2, 3, 4], [])
    assert named(fetcher, fetch) == ([], []), "idle: nothing"
    p = logs.partitions[("t", 3)]
    p.append_as_follower(build_batch([NewRecord(None, b"v", 1)], base_offset=0), 0)
    assert named(fetcher, fetch) == ([3], [])
    p.log.flush()  # a fsync moves what it reports as flushed; the fetcher marks its own
    fetch.dirty.add(("t", 3))
    request = fetcher._next_request(LEADER, fetch)
    assert request is not None and request.partitions[0].flushed_offset == 1


def test_a_partition_that_moved_to_another_leader_is_forgotten_after_the_update() -> None:
    logs = Logs(3)
    fetcher, fetch = fetcher_of(logs)
    named(fetcher, fetch)
    p = logs.partitions[("t", 1)]
    p.update_state(LeaderState(3, 1, (1, 2, 3), (2, 3)), now_ms=0)

    async def reconciled() -> None:
        fetcher.update({("t", 1)})
        await fetcher.close()

    asyncio.run(reconciled())
    assert named(fetcher, fetch) == ([], [1])


def test_a_full_reconcile_looks_at_every_partition_and_names_only_the_changed() -> None:
    logs = Logs(3)
    fetcher, fetch = fetcher_of(logs)
    named(fetcher, fetch)
    p = logs.partitions[("t", 2)]
    p.change_listener = None  # a change nobody was told of
    p.state = LeaderState(LEADER, 4, (1, 2, 3), (1, 2, 3))
    assert named(fetcher, fetch) == ([], [])

    async def reconciled() -> None:
        fetcher.update(None)
        await fetcher.close()

    asyncio.run(reconciled())
    assert named(fetcher, fetch) == ([2], [])


def test_a_change_no_event_announced_is_named_once_the_recheck_is_due() -> None:
    logs = Logs(3)
    fetcher, fetch = fetcher_of(logs)
    assert named(fetcher, fetch) == ([0, 1, 2], [])
    p = logs.partitions[("t", 1)]
    p.append_as_follower(build_batch([NewRecord(None, b"v", 1)], base_offset=0), 0)
    assert named(fetcher, fetch) == ([1], [])
    p.log.flush()  # no notify: the recovery point moved unannounced
    assert named(fetcher, fetch) == ([], []), "before the recheck, only events count"
    fetch.recheck_due_s = 0.0  # the recheck is due
    assert named(fetcher, fetch) == ([1], [])
    assert named(fetcher, fetch) == ([], []), "and the next recheck is a while away"


def answer_entry(index: int, **fields: Any) -> dict[str, Any]:
    return {"topic": "t", "partition": index, "size": 0, **fields}


def test_a_log_restarted_at_the_leaders_log_start_is_named_at_once() -> None:
    logs = Logs(2)
    fetcher, fetch = fetcher_of(logs)
    assert named(fetcher, fetch) == ([0, 1], [])
    out_of_range = answer_entry(
        0,
        error={"error_code": 1, "error": "OFFSET_OUT_OF_RANGE", "message": "below the start"},
        log_start_offset=40,
        high_watermark=50,
        log_end_offset=50,
    )
    appended = apply_session_response(
        LEADER, logs.partitions.get, fetch.session, [(out_of_range, b"")]
    )
    assert appended == [] and logs.partitions[("t", 0)].log.log_end_offset == 40
    request = fetcher._next_request(LEADER, fetch)
    assert request is not None
    assert [(w.partition, w.fetch_offset) for w in request.partitions] == [(0, 40)], (
        "the new fetch offset goes out with the next request, not at the next recheck"
    )


def test_an_answer_for_a_partition_deleted_meanwhile_is_skipped() -> None:
    logs = Logs(2)
    fetcher, fetch = fetcher_of(logs)
    named(fetcher, fetch)
    del logs.partitions[("t", 0)]  # a move's completion removed it here during the fetch
    entry = answer_entry(1, high_watermark=1, log_start_offset=0, log_end_offset=1)
    data = build_batch([NewRecord(None, b"v", 1)], base_offset=0)
    gone = answer_entry(0, high_watermark=0, log_start_offset=0, log_end_offset=0)
    appended = apply_session_response(
        LEADER, logs.partitions.get, fetch.session, [(gone, b""), (entry, data)]
    )
    assert appended == [logs.partitions[("t", 1)]], "the other partitions are applied as usual"
