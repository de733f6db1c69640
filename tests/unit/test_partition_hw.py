"""The high watermark rule: the smallest flushed offset over the ISR (the smallest log end
offset for topics with flush.messages above 1), and waiters woken by it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from client.protocol import ApiError
from server.partition import LeaderState, Partition
from storage.batch import NewRecord
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


def on_a_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


@on_a_loop
async def test_the_leader_alone_moves_the_hw_to_what_its_flush_covered() -> None:
    p = partition()
    p.append(records(3), "all")
    p.advance_high_watermark()
    assert p.high_watermark == 0, "nothing is committed before the fsync"
    p.log.flush()
    p.advance_high_watermark()
    assert p.high_watermark == 3


@on_a_loop
async def test_the_hw_is_the_smallest_flushed_offset_over_the_isr() -> None:
    p = partition(isr=(1, 2))
    p.append(records(5), "all")
    p.log.flush()
    p.advance_high_watermark()
    assert p.high_watermark == 0, "follower 2 has flushed nothing"
    p.follower_reported(2, 4, 4)
    assert p.high_watermark == 4


@on_a_loop
async def test_what_a_follower_appended_but_did_not_fsync_does_not_count() -> None:
    p = partition(isr=(1, 2))  # flush.messages=1, even if the follower still thinks otherwise
    p.append(records(5), "all")
    p.log.flush()
    p.follower_reported(2, 5, 2)
    assert p.high_watermark == 2
    p.follower_reported(2, 5, 5)
    assert p.high_watermark == 5


@on_a_loop
async def test_a_relaxed_topic_commits_what_the_isr_appended_without_an_fsync() -> None:
    p = partition(isr=(1, 2), config=LogConfig(flush_messages=FLUSH_NEVER))
    p.append(records(5), "all")
    p.advance_high_watermark()
    assert p.log.recovery_point == 0 and p.high_watermark == 0, "follower 2 has nothing yet"
    p.follower_reported(2, 5, 0)  # appended on the follower, not flushed
    assert p.high_watermark == 5 and p.log.recovery_point == 0


@on_a_loop
async def test_acks_all_below_min_insync_replicas_is_refused_before_the_append() -> None:
    p = partition(isr=(1,), min_isr=2)
    with pytest.raises(ApiError) as caught:
        p.append(records(1), "all")
    assert caught.value.name == "NOT_ENOUGH_REPLICAS"
    assert p.log.log_end_offset == 0
    assert p.append(records(1), "1").first_offset == 0, "acks=1 does not need the ISR"


@on_a_loop
async def test_a_waiter_wakes_when_the_hw_passes_its_offset() -> None:
    p = partition()
    info = p.append(records(2), "all")
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
