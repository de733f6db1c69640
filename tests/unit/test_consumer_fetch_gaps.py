"""The consumer's fetch loop over a compacted log (Kafka's rules): records cleaned away inside
batches, batches gone, batches with no record left. The loop asks past every batch it was
given and the position follows, so it never asks for the same offsets again and ends at the
log end, not at the last record + 1. The node is a twin answering from a MemoryLog holding
batches as Kafka's cleaner writes them (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

from client.consumer_client import FetchedBatches
from client.consumer_config import ConsumerConfig
from client.consumer_fetch import ConsumerRecord, PartitionFetch, _Batch, drain, fetch_loop
from client.group_member import TopicPartition
from storage.batch import batches_within, build_batch
from storage.memory_log import MemoryLog
from tests.gapped_batches import empty_batch, gapped_batch, rec, sparse_batch

TP = TopicPartition("t", 0)
DEADLINE_S = 10.0


class CompactedNode:
    """Answers binary fetches from ``log`` as the node does: whole stored batches from the
    first one ending at or after the offset, ``Kafka-Next-Offset`` after the last one."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log
        self.asked: list[int | str] = []

    async def fetch_batches(
        self, topic: str, partition: int, offset: int | str, *, max_bytes: int, **_: Any
    ) -> FetchedBatches:
        self.asked.append(offset)
        log = self.log
        hw = log.high_watermark
        start = offset if isinstance(offset, int) else log.log_start_offset
        data = log.read(start, max_bytes, hw)
        if not data:
            await asyncio.sleep(0.005)  # an idle long poll
        end, after = batches_within(data, len(data))
        return FetchedBatches(data[:end], after if end else start, hw, log.log_start_offset)


def compacted_log() -> MemoryLog:
    """Records 0 and 2 in a batch covering 0..4; an empty batch 5..7; nothing at 8..9;
    record 12 in a batch covering 10..12; an empty batch 13..14 at the end (log end 15)."""
    log = MemoryLog()
    log.append_batches(
        sparse_batch([0, 2], base_offset=0, last_offset=4)
        + empty_batch(5, 7, producer_id=1, base_sequence=0)
        + sparse_batch([12], base_offset=10, last_offset=12)
        + empty_batch(13, 14, producer_id=1, base_sequence=9)
    )
    log.update_high_watermark(15)
    return log


async def consume_until(
    state: PartitionFetch, node: CompactedNode, done: Any, max_bytes: int = 1
) -> list[ConsumerRecord]:
    """Runs the fetch loop (one stored batch an answer with ``max_bytes`` 1) and drains it
    until ``done(state)``; returns what was drained."""
    config = ConsumerConfig("unused:0", max_partition_fetch_bytes=max_bytes, fetch_max_wait_ms=5)
    wake = asyncio.Event()
    task = asyncio.create_task(fetch_loop(state, node, config, wake))
    got: list[ConsumerRecord] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    try:
        while not done(state):
            assert loop.time() < deadline, f"stuck: asked {node.asked[-5:]}"
            got += drain([state], 100)
            await asyncio.sleep(0.001)
        got += drain([state], 100)
    finally:
        task.cancel()
    return got


def test_the_consumer_reads_across_gaps_and_empty_batches_to_the_log_end() -> None:
    async def run() -> None:
        node = CompactedNode(compacted_log())
        state = PartitionFetch(TP, 0, 0)
        got = await consume_until(
            state, node, lambda s: s.fetch_from == 15 and not s.buffer and s.position == 15
        )
        assert [r.offset for r in got] == [0, 2, 12]
        assert [r.value for r in got] == [b"v0", b"v2", b"v12"]
        # One fetch per stored batch, each from the offset after the one before, then the
        # log end: no offset asked twice.
        assert node.asked[:5] == [0, 5, 8, 13, 15]

    asyncio.run(run())


def test_an_answer_of_empty_batches_only_moves_the_position_past_them() -> None:
    async def run() -> None:
        log = MemoryLog()
        log.append_batches(gapped_batch([], base_offset=0, last_offset=6))
        log.update_high_watermark(7)
        node = CompactedNode(log)
        state = PartitionFetch(TP, 0, 0)
        got = await consume_until(state, node, lambda s: s.position == 7)
        assert got == []
        assert state.fetch_from == 7
        # Then a record comes: it is read from there.
        log.append_batches(build_batch([rec(7)], base_offset=7))
        log.update_high_watermark(8)
        got = await consume_until(state, node, lambda s: s.position == 8)
        assert [r.offset for r in got] == [7]

    asyncio.run(run())


def test_a_drained_answer_moves_the_position_to_its_last_batchs_end() -> None:
    async def run() -> None:
        node = CompactedNode(compacted_log())
        state = PartitionFetch(TP, 0, 0)
        # The whole log in one answer: the position ends past the trailing empty batch, so
        # a commit of it shows no lag on a log whose last batches hold no record.
        got = await consume_until(state, node, lambda s: s.position == 15, max_bytes=1 << 20)
        assert [r.offset for r in got] == [0, 2, 12]
        assert node.asked[0] == 0 and node.asked[1] == 15

    asyncio.run(run())


def test_drain_stopping_inside_an_answer_leaves_the_position_after_the_last_record() -> None:
    state = PartitionFetch(TP, 0, 15)
    records = [ConsumerRecord("t", 0, o, 0, None, b"", ()) for o in (0, 2, 12)]
    state.buffer.append(_Batch(records, 15))
    assert [r.offset for r in drain([state], 2)] == [0, 2]
    assert state.position == 3
    assert [r.offset for r in drain([state], 2)] == [12]
    assert state.position == 15
