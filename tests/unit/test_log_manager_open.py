"""Opening a new replica creates only its directory: its first ``.log`` comes with its first
append, and its ``partition.metadata`` and index files with its first flush, before any of its
data is fsynced, as Kafka writes partition.metadata from its flush (real files in a temporary
directory)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.log_manager import PARTITION_METADATA_FILE, LogManager
from server.partition import LeaderState
from storage.batch import NewRecord
from storage.checkpoints import PartitionMetadataFile
from storage.log_config import LogConfig
from storage.segment import segment_name
from tests.waiting import until

DEADLINE_S = 60.0
TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"
OTHER_ID = "AAAAAAAAAAAAAAAAAAAAAg"
STATE = LeaderState(leader=1, leader_epoch=0, replicas=(1,), isr=(1,))
LOG = f"{segment_name(0)}.log"


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_new_replica_has_only_its_directory_until_its_first_append(tmp_path: Path) -> None:
    async def run() -> None:
        logs = LogManager(tmp_path, node_id=1)
        logs.start(retention_check_interval_ms=300_000, on_fatal=lambda why: None)
        try:
            p = logs.open_partition("t", TOPIC_ID, 0, STATE, LogConfig(), 1)
            directory = tmp_path / "t-0"
            assert names(directory) == []
            assert p.log.read(0, 1 << 20) == b"" and list(p.log.batch_headers(0)) == []
            p.append_now([[NewRecord(None, b"v", 1000)]], "all")
            assert LOG in names(directory)
            await until(lambda: p.high_watermark == 1, "the first flush", DEADLINE_S)
            assert PartitionMetadataFile(directory / PARTITION_METADATA_FILE).read() == TOPIC_ID
            assert {f"{segment_name(0)}.index", f"{segment_name(0)}.timeindex"} <= set(
                names(directory)
            )
        finally:
            await logs.close()

    asyncio.run(run())


def test_close_writes_the_metadata_of_a_replica_that_never_flushed(tmp_path: Path) -> None:
    async def run() -> None:
        logs = LogManager(tmp_path, node_id=1)
        logs.open_partition("t", TOPIC_ID, 0, STATE, LogConfig(), 1)
        await logs.close()

    asyncio.run(run())
    metadata = PartitionMetadataFile(tmp_path / "t-0" / PARTITION_METADATA_FILE)
    assert metadata.read() == TOPIC_ID


def test_an_empty_directory_without_metadata_is_adopted(tmp_path: Path) -> None:
    """A node stopped before a new replica's first flush left a directory with an empty
    log and no partition.metadata: it is this replica's, opened as it is."""
    directory = tmp_path / "t-0"
    directory.mkdir()
    (directory / LOG).write_bytes(b"")
    loaded = LogManager(tmp_path, node_id=1).load_replica("t", TOPIC_ID, 0, LogConfig())
    try:
        assert not loaded.replaced_namesake
        assert names(directory) == [LOG]
    finally:
        loaded.log.close()


def test_a_directory_with_data_but_no_metadata_is_a_namesakes_and_goes(tmp_path: Path) -> None:
    """Data without partition.metadata was never fsynced (the file is made durable before any
    data is), and may be a deleted namesake's: it is removed, never adopted."""
    directory = tmp_path / "t-0"
    directory.mkdir()
    (directory / LOG).write_bytes(b"not ours")
    loaded = LogManager(tmp_path, node_id=1).load_replica("t", TOPIC_ID, 0, LogConfig())
    try:
        assert loaded.replaced_namesake
        assert (directory / LOG).read_bytes() == b""
    finally:
        loaded.log.close()


def test_a_directory_of_another_topic_id_goes_even_when_empty(tmp_path: Path) -> None:
    directory = tmp_path / "t-0"
    directory.mkdir()
    (directory / LOG).write_bytes(b"")
    PartitionMetadataFile(directory / PARTITION_METADATA_FILE).write(OTHER_ID)
    loaded = LogManager(tmp_path, node_id=1).load_replica("t", TOPIC_ID, 0, LogConfig())
    try:
        assert loaded.replaced_namesake
        assert names(directory) == [LOG]
    finally:
        loaded.log.close()


def test_the_checkpoint_check_reads_only_partitions_whose_offsets_moved(tmp_path: Path) -> None:
    """The periodic checkpoint finds nothing to write when no offset moved, and a moved
    offset of one partition among many reaches the files' next content."""

    async def run() -> None:
        logs = LogManager(tmp_path, node_id=1)
        logs.start(retention_check_interval_ms=300_000, on_fatal=lambda why: None)
        try:
            quiet = [logs.open_partition("q", TOPIC_ID, i, STATE, LogConfig(), 1) for i in range(5)]
            busy = logs.open_partition("b", OTHER_ID, 0, STATE, LogConfig(), 1)
            first = logs._checkpoint_offsets()
            assert first is not None and set(first[0]) == {("q", i) for i in range(5)} | {("b", 0)}
            assert logs._checkpoint_offsets() is None, "nothing moved"
            busy.append_now([[NewRecord(None, b"v", 1000)]], "all")
            await until(lambda: busy.high_watermark == 1, "the flush", DEADLINE_S)
            moved = logs._checkpoint_offsets()
            assert moved is not None
            recovery, starts, hws = moved
            assert (recovery[("b", 0)], hws[("b", 0)]) == (1, 1)
            assert ("b", 0) not in starts  # at its first segment's base: Kafka writes none
            assert all(hws[("q", i)] == 0 for i in range(5)) and len(quiet) == 5
            assert logs._checkpoint_offsets() is None
            logs.delete_partition("q", 3)
            after_delete = logs._checkpoint_offsets()
            assert after_delete is not None and ("q", 3) not in after_delete[0]
        finally:
            await logs.close()

    asyncio.run(run())


def test_batches_recovery_kept_past_a_stale_recovery_point_count_at_once(tmp_path: Path) -> None:
    """After a crash the checkpoints lag the log: the batches recovery keeps past the recovery
    point are fsynced while the replica opens, so a leader alone in its ISR has them below
    its high watermark from the start, not after a first flush a fetch could beat."""

    async def run() -> None:
        logs = LogManager(tmp_path, node_id=1)
        logs.start(retention_check_interval_ms=300_000, on_fatal=lambda why: None)
        p = logs.open_partition("t", TOPIC_ID, 0, STATE, LogConfig(), 1)
        p.append_now([[NewRecord(None, b"one", 1000)], [NewRecord(None, b"two", 1000)]], "all")
        await until(lambda: p.high_watermark == 2, "the first flush", DEADLINE_S)
        await logs.close()

    asyncio.run(run())
    stale = "0\n1\nt 0 0\n"  # what the checkpoints said before the appends (Kafka's format)
    for name in ("recovery-point-offset-checkpoint", "replication-offset-checkpoint"):
        (tmp_path / name).write_text(stale)
    (tmp_path / ".kafka_cleanshutdown").unlink()  # a crash leaves none

    async def reopen() -> None:
        logs = LogManager(tmp_path, node_id=1)
        try:
            p = logs.open_partition("t", TOPIC_ID, 0, STATE, LogConfig(), 1)
            assert (p.log.recovery_point, p.high_watermark) == (2, 2)
            assert not p.metadata_unsynced  # synced while opening, not again at the next flush
        finally:
            await logs.close()

    asyncio.run(reopen())
