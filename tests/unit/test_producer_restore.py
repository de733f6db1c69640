"""Bounded startup: a replica's producer state comes back from its latest snapshot and the
batch headers after it, snapshots are taken at a segment roll and at clean shutdown, and a
truncation or a power cut never leaves a snapshot that describes records that are gone (real
files in a temporary directory)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.log_manager import LogManager
from server.partition import LeaderState, Partition, ProducerBatch, restore_producers
from storage.batch import NewRecord
from storage.log import Log
from storage.log_config import LogConfig
from storage.producer_snapshot import ProducerSnapshots

TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"
LEADER = LeaderState(leader=1, leader_epoch=0, replicas=(1,), isr=(1,))


def records(n: int) -> list[NewRecord]:
    return [NewRecord(None, b"v" * 100, 1000 + i) for i in range(n)]


def produce(p: Partition, producer_id: int, sequence: int, n: int) -> list[int]:
    batch = ProducerBatch(producer_id, 0, sequence)
    return p.append_now([records(n)], "1", batch).offsets


def open_replica(tmp_path: Path, config: LogConfig | None = None) -> tuple[LogManager, Partition]:
    logs = LogManager(tmp_path, node_id=1)
    return logs, logs.open_partition("t", TOPIC_ID, 0, LEADER, config or LogConfig(), 1)


def test_a_clean_shutdown_leaves_a_snapshot_at_the_log_end_and_the_next_open_loads_it(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        logs, p = open_replica(tmp_path)
        produce(p, 7, 0, 3)
        first = produce(p, 8, 0, 2)
        await logs.close()
        assert ProducerSnapshots(tmp_path / "t-0").offsets() == [5]

        logs, p = open_replica(tmp_path)
        retry = p.append_now([records(2)], "1", ProducerBatch(8, 0, 0))
        assert retry.duplicate and retry.offsets == first, "the snapshot knows producer 8"
        assert produce(p, 7, 3, 1) == [5], "and producer 7's next sequence"
        await logs.close()

    asyncio.run(run())


def test_a_segment_roll_takes_a_snapshot_that_bounds_the_replay(tmp_path: Path) -> None:
    async def run() -> None:
        logs, p = open_replica(tmp_path, LogConfig(segment_bytes=1024))
        for sequence in range(0, 40, 4):
            produce(p, 7, sequence, 4)
        taken = ProducerSnapshots(tmp_path / "t-0").offsets()
        assert len(p.log.segments) > 1 and taken, "every roll takes one"
        assert taken[-1] <= p.log.log_end_offset
        # What a crash leaves: no clean-shutdown snapshot; the roll's one and the headers
        # after it give the same state as the whole log, for the producer's last batch (a
        # snapshot keeps only that one, as Kafka's does).
        whole = restore_producers(p.log, ProducerSnapshots(tmp_path / "nowhere")).producer(7)
        bounded = restore_producers(p.log, ProducerSnapshots(tmp_path / "t-0")).producer(7)
        assert whole is not None and bounded is not None
        assert bounded.producer_epoch == whole.producer_epoch
        assert bounded.batches[-1] == whole.batches[-1]
        await logs.close()

    asyncio.run(run())


def test_a_snapshot_above_the_log_end_is_deleted_before_the_state_is_read(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        logs, p = open_replica(tmp_path)
        produce(p, 7, 0, 3)
        await logs.close()
        snapshots = ProducerSnapshots(tmp_path / "t-0")
        # As if a power cut took the log's tail but not the snapshot written after it.
        entries = snapshots.read(3)
        snapshots.write(10, entries)
        log = Log.open(tmp_path / "t-0", LogConfig(), recovery_point=3)
        table = restore_producers(log, snapshots)
        assert snapshots.offsets() == [3]
        view = table.producer(7)
        assert view is not None and view.last_sequence == 2
        log.close()

    asyncio.run(run())


def test_a_follower_truncation_deletes_the_snapshots_above_its_new_end(tmp_path: Path) -> None:
    async def run() -> None:
        logs, p = open_replica(tmp_path)
        produce(p, 7, 0, 3)
        produce(p, 7, 3, 3)
        p.snapshot_producers()
        p.truncate_to(3)
        assert ProducerSnapshots(tmp_path / "t-0").offsets() == []
        view = p.producers.producer(7)
        assert view is not None and view.last_sequence == 2
        await logs.close()

    asyncio.run(run())
