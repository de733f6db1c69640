"""When the log manager fsyncs a partition: after every append by default, by flush.messages
and flush.ms for a topic that relaxes that (real files in a temporary directory)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from server.log_manager import LogManager
from server.partition import LeaderState, Partition
from storage.batch import NewRecord
from storage.log_config import FLUSH_NEVER, LogConfig
from tests.waiting import until

DEADLINE_S = 60.0


@asynccontextmanager
async def manager(tmp_path: Path) -> AsyncIterator[LogManager]:
    logs = LogManager(tmp_path, node_id=1)
    logs.start(retention_check_interval_ms=300_000, on_fatal=lambda why: None)
    try:
        yield logs
    finally:
        await logs.close()


def open_leader(logs: LogManager, config: LogConfig, isr: tuple[int, ...] = (1,)) -> Partition:
    state = LeaderState(leader=1, leader_epoch=0, replicas=(1, 2, 3), isr=isr)
    return logs.open_partition("t", "AAAAAAAAAAAAAAAAAAAAAQ", 0, state, config, 1)


def produce(logs: LogManager, p: Partition, n: int) -> None:
    p.append_now([[NewRecord(None, b"v", 1000 + i) for i in range(n)]], "all")


async def settle() -> None:
    """Lets the group commit run whatever is due now (its fsync runs in a thread)."""
    for _ in range(5):
        await asyncio.sleep(0.05)


def test_by_default_every_append_is_fsynced_before_it_counts(tmp_path: Path) -> None:
    async def run() -> None:
        async with manager(tmp_path) as logs:
            p = open_leader(logs, LogConfig())
            produce(logs, p, 3)
            assert p.high_watermark == 0, "not committed before the fsync"
            await until(
                lambda: p.log.recovery_point == 3,
                "until the group commit fsyncs the batch",
                DEADLINE_S,
            )
            assert p.high_watermark == 3

    asyncio.run(run())


def test_flush_messages_forces_an_fsync_once_that_many_records_are_unflushed(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        async with manager(tmp_path) as logs:
            p = open_leader(logs, LogConfig(flush_messages=5))
            produce(logs, p, 4)
            assert p.high_watermark == 4, "the ISR (the leader alone) has them: committed"
            await settle()
            assert p.log.recovery_point == 0, "4 unflushed records are below flush.messages"
            produce(logs, p, 1)
            await until(
                lambda: p.log.recovery_point == 5,
                "until the fifth record forces the fsync",
                DEADLINE_S,
            )

    asyncio.run(run())


def test_flush_ms_fsyncs_records_left_unflushed_that_long(tmp_path: Path) -> None:
    async def run() -> None:
        async with manager(tmp_path) as logs:
            p = open_leader(logs, LogConfig(flush_messages=FLUSH_NEVER, flush_ms=200))
            loop = asyncio.get_running_loop()
            produce(logs, p, 2)
            appended_at = loop.time()
            await until(
                lambda: p.log.recovery_point == 2, "until flush.ms forces the fsync", DEADLINE_S
            )
            assert loop.time() - appended_at >= 0.2, "not before flush.ms"

    asyncio.run(run())


def test_with_kafkas_defaults_nothing_is_fsynced_until_the_log_closes(tmp_path: Path) -> None:
    async def run() -> None:
        async with manager(tmp_path) as logs:
            p = open_leader(logs, LogConfig(flush_messages=FLUSH_NEVER), isr=(1, 2))
            produce(logs, p, 10)
            p.follower_reported(2, 10, 0)
            assert p.high_watermark == 10, "acks=all commits what both replicas appended"
            await settle()
            assert p.log.recovery_point == 0
        assert p.log.recovery_point == 10, "the shutdown flushes everything"

    asyncio.run(run())


def test_a_new_flush_ms_applies_to_records_already_unflushed(tmp_path: Path) -> None:
    async def run() -> None:
        async with manager(tmp_path) as logs:
            p = open_leader(logs, LogConfig(flush_messages=FLUSH_NEVER))
            produce(logs, p, 6)
            await settle()
            p.log.update_config(LogConfig(flush_messages=FLUSH_NEVER, flush_ms=200))
            logs.config_changed(p)
            await until(
                lambda: p.log.recovery_point == 6, "until the new flush.ms fsyncs them", DEADLINE_S
            )

    asyncio.run(run())


def test_going_back_to_flush_messages_1_fsyncs_what_waits_to_be_committed(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        async with manager(tmp_path) as logs:
            p = open_leader(logs, LogConfig(flush_messages=FLUSH_NEVER), isr=(1, 2))
            produce(logs, p, 3)
            waiter = asyncio.create_task(p.wait_for_high_watermark_above(2, DEADLINE_S))
            await settle()
            p.log.update_config(LogConfig())
            logs.config_changed(p)
            p.follower_reported(2, 3, 3)  # the follower applied the change too, and fsynced
            assert await waiter, "the leader's own fsync is scheduled at the change"
            assert p.log.recovery_point == 3

    asyncio.run(run())
