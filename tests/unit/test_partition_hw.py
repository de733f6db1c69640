"""A replica's state and its one owner, Partition: the high watermark rule (the smallest
flushed offset over the ISR, the smallest log end offset for topics with flush.messages above
1), the leader's append and its acks, the follower's append and truncation."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from client.protocol import ApiError
from server.partition import LeaderState, Partition, ProducerBatch
from storage.batch import NewRecord
from storage.log import AppendInfo
from storage.log_config import FLUSH_NEVER, LogConfig
from storage.memory_log import MemoryLog


def partition(
    isr: tuple[int, ...] = (1,), min_isr: int = 1, config: LogConfig | None = None
) -> Partition:
    return Partition(
        topic="t",
        topic_id="AAAAAAAAAAAAAAAAAAAAAQ",
        index=0,
        node_id=1,
        log=MemoryLog(config or LogConfig()),
        state=LeaderState(1, 0, (1, 2, 3), isr),
        min_insync_replicas=min_isr,
    )


def records(n: int) -> list[NewRecord]:
    return [NewRecord(None, b"v", 1000 + i) for i in range(n)]


def append(p: Partition, n: int, acks: str = "all") -> AppendInfo:
    """One batch of ``n`` records, appended without waiting for the commit."""
    (info,) = p.append_now([records(n)], acks).infos
    return info


def on_a_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


@on_a_loop
async def test_the_leader_alone_moves_the_hw_to_what_its_flush_covered() -> None:
    p = partition()
    append(p, 3)
    p.advance_high_watermark()
    assert p.high_watermark == 0, "nothing is committed before the fsync"
    p.log.flush()
    p.advance_high_watermark()
    assert p.high_watermark == 3


@on_a_loop
async def test_the_hw_is_the_smallest_flushed_offset_over_the_isr() -> None:
    p = partition(isr=(1, 2))
    append(p, 5)
    p.log.flush()
    p.advance_high_watermark()
    assert p.high_watermark == 0, "follower 2 has flushed nothing"
    p.follower_reported(2, 4, 4)
    assert p.high_watermark == 4


@on_a_loop
async def test_what_a_follower_appended_but_did_not_fsync_does_not_count() -> None:
    p = partition(isr=(1, 2))  # flush.messages=1, even if the follower still thinks otherwise
    append(p, 5)
    p.log.flush()
    p.follower_reported(2, 5, 2)
    assert p.high_watermark == 2
    p.follower_reported(2, 5, 5)
    assert p.high_watermark == 5


@on_a_loop
async def test_a_relaxed_topic_commits_what_the_isr_appended_without_an_fsync() -> None:
    p = partition(isr=(1, 2), config=LogConfig(flush_messages=FLUSH_NEVER))
    append(p, 5)
    p.advance_high_watermark()
    assert p.log.recovery_point == 0 and p.high_watermark == 0, "follower 2 has nothing yet"
    p.follower_reported(2, 5, 0)  # appended on the follower, not flushed
    assert p.high_watermark == 5 and p.log.recovery_point == 0


@on_a_loop
async def test_acks_all_below_min_insync_replicas_is_refused_before_the_append() -> None:
    p = partition(isr=(1,), min_isr=2)
    with pytest.raises(ApiError) as caught:
        append(p, 1)
    assert caught.value.name == "NOT_ENOUGH_REPLICAS"
    assert p.log.log_end_offset == 0
    assert append(p, 1, "1").first_offset == 0, "acks=1 does not need the ISR"


@on_a_loop
async def test_a_waiter_wakes_when_the_hw_passes_its_offset() -> None:
    p = partition()
    info = append(p, 2)
    waiter = asyncio.create_task(p.wait_for_high_watermark_above(info.last_offset, 30))
    await asyncio.sleep(0)
    assert not waiter.done()
    p.log.flush()
    p.advance_high_watermark()
    assert await waiter is True


@on_a_loop
async def test_a_closed_partition_releases_its_waiters_at_once() -> None:
    p = partition()
    waiter = asyncio.create_task(p.wait_for_high_watermark_above(0, 30))
    await asyncio.sleep(0)
    p.close()
    assert await waiter is False


class CountingFlusher:
    """Stands in for the log manager's group commit: counts, and flushes when told."""

    def __init__(self) -> None:
        self.scheduled: list[Partition] = []

    def schedule_flush(self, partition: Partition) -> None:
        self.scheduled.append(partition)

    def run(self) -> None:
        for p in self.scheduled:
            p.log.flush()
            p.advance_high_watermark()
        self.scheduled.clear()


@on_a_loop
async def test_append_as_leader_schedules_its_flush_and_answers_acks_all_once_committed() -> None:
    p = partition()
    flusher = CountingFlusher()
    p.flusher = flusher
    task = asyncio.create_task(p.append_as_leader([records(2), records(1)], "all", None, 30))
    await asyncio.sleep(0)
    assert flusher.scheduled == [p], "one flush for the request's batches"
    assert not task.done(), "acks=all waits for the commit"
    flusher.run()
    result = await task
    assert [(i.first_offset, i.last_offset) for i in result.infos] == [(0, 1), (2, 2)]
    assert result.offsets == [0, 1, 2] and result.commit_error is None
    assert p.high_watermark == 3


@on_a_loop
async def test_acks_1_answers_after_the_append_and_acks_all_reports_a_missed_commit() -> None:
    p = partition(isr=(1, 2))
    result = await p.append_as_leader([records(1)], "1", None, 30)
    assert result.offsets == [0] and p.high_watermark == 0
    p.log.flush()
    result = await p.append_as_leader([records(1)], "all", None, 0.01)
    assert result.offsets == [1]
    assert result.commit_error is not None and result.commit_error.name == "REQUEST_TIMED_OUT"


@on_a_loop
async def test_a_later_batch_that_fails_keeps_the_earlier_ones_and_says_why() -> None:
    p = partition(config=LogConfig(max_message_bytes=200))
    big = [NewRecord(None, b"x" * 500, 1000)]
    result = p.append_now([records(1), big], "1")
    assert result.offsets == [0]
    assert result.error is not None and result.error.name == "RECORD_TOO_LARGE"
    with pytest.raises(ApiError) as caught:
        p.append_now([big, records(1)], "1")
    assert caught.value.name == "RECORD_TOO_LARGE" and p.log.log_end_offset == 1


@on_a_loop
async def test_a_retried_idempotent_request_answers_its_first_offsets_and_appends_nothing() -> None:
    p = partition()
    producer = ProducerBatch(producer_id=7, producer_epoch=0, base_sequence=0)
    first = p.append_now([records(2), records(3)], "1", producer)
    assert first.offsets == [0, 1, 2, 3, 4] and not first.duplicate
    again = p.append_now([records(2), records(3)], "1", producer)
    assert again.duplicate and again.offsets == first.offsets
    assert p.log.log_end_offset == 5
    gap = ProducerBatch(producer_id=7, producer_epoch=0, base_sequence=9)
    with pytest.raises(ApiError) as caught:
        p.append_now([records(1)], "1", gap)
    assert caught.value.name == "OUT_OF_ORDER_SEQUENCE_NUMBER"


def follower() -> Partition:
    return Partition(
        topic="t",
        topic_id="AAAAAAAAAAAAAAAAAAAAAQ",
        index=0,
        node_id=2,
        log=MemoryLog(),
        state=LeaderState(1, 0, (1, 2, 3), (1, 2, 3)),
    )


@on_a_loop
async def test_a_follower_appends_the_leaders_bytes_and_takes_its_hw_capped_at_its_end() -> None:
    leader = partition()
    append(leader, 3)
    append(leader, 2)
    f = follower()
    first = leader.log.read(0, 1 << 20, max_offset=3)
    assert f.append_as_follower(first, leader_high_watermark=5) is True
    assert f.log.log_end_offset == 3 and f.high_watermark == 3, "never above its own end"
    assert f.append_as_follower(b"", leader_high_watermark=2) is False
    assert f.high_watermark == 2, "as in Kafka, a follower takes its leader's (a new one's lags)"
    assert f.append_as_follower(b"garbage", leader_high_watermark=5) is False
    assert f.log.log_end_offset == 3, "refused bytes change nothing"


@on_a_loop
async def test_a_follower_truncation_drops_records_epochs_and_their_producers() -> None:
    f = follower()
    leader = partition()
    producer = ProducerBatch(producer_id=7, producer_epoch=0, base_sequence=0)
    leader.append_now([records(2)], "1", producer)
    leader.append_now([records(2)], "1", dataclasses.replace(producer, base_sequence=2))
    f.append_as_follower(leader.log.read(0, 1 << 20), leader_high_watermark=0)
    view = f.producers.producer(7)
    assert view is not None and view.last_sequence == 3
    f.truncate_to(2)
    assert f.log.log_end_offset == 2
    view = f.producers.producer(7)
    assert view is not None and view.last_sequence == 1


@on_a_loop
async def test_a_follower_asked_into_the_isr_counts_in_the_hw_until_the_metadata_answers() -> None:
    """Kafka's maximal ISR: the controller may already have added the follower; a record
    committed without it could be missing from the ISR member the next election picks."""
    p = partition(isr=(1, 3))
    append(p, 4)
    p.log.flush()
    p.follower_reported(2, 2, 2)
    p.isr_change_requested((1, 3, 2))
    p.follower_reported(3, 4, 4)
    assert p.high_watermark == 2, "follower 2 has only 2 records and may be in the ISR now"
    p.update_state(LeaderState(1, 0, (1, 2, 3), (1, 3, 2), partition_epoch=1), now_ms=0)
    assert p.isr_requested == frozenset() and p.high_watermark == 2
    p.follower_reported(2, 4, 4)
    assert p.high_watermark == 4


@on_a_loop
async def test_a_refused_isr_change_stops_counting_its_members() -> None:
    p = partition(isr=(1, 3))
    append(p, 4)
    p.log.flush()
    p.isr_change_requested((1, 3, 2))
    p.follower_reported(3, 4, 4)
    assert p.high_watermark == 0
    p.isr_change_refused()
    assert p.high_watermark == 4


@on_a_loop
async def test_acks_all_fails_when_the_isr_shrinks_below_min_insync_to_commit_it() -> None:
    """min.insync.replicas=2 promises two copies: a write that commits only because the
    lagging follower left the ISR answers NOT_ENOUGH_REPLICAS (Kafka's ..._AFTER_APPEND)."""
    p = partition(isr=(1, 2), min_isr=2)
    task = asyncio.create_task(p.append_as_leader([records(1)], "all", None, 30))
    await asyncio.sleep(0)
    p.log.flush()
    p.update_state(LeaderState(1, 0, (1, 2, 3), (1,), partition_epoch=1), now_ms=0)
    result = await task
    assert p.high_watermark == 1
    assert result.commit_error is not None and result.commit_error.name == "NOT_ENOUGH_REPLICAS"
