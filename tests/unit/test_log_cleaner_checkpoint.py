"""The cleaner driver's checkpoint entry of a partition deleted while it was being cleaned:
the log manager closes the partition, then forgets its entry; a clean whose last swap came just
before must not write the entry back (a topic of the same name created later would count as
cleaned up to a deleted log's offset, and its records there would never be compacted). Real
logs in tmp_path; no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.clock import ManualClock
from server.log_manager import PARTITION_METADATA_FILE, LogManager
from server.partition import LeaderState
from storage.checkpoints import OffsetCheckpointFile, PartitionMetadataFile
from storage.clean_map import OffsetMap
from storage.cleaner import CLEANER_CHECKPOINT_FILE, CleanedSegment
from storage.log import Log
from storage.segment import segment_name
from tests.unit.cleaner_logs import CONFIG, NOW, FakePartition, driver, write
from tests.unit.test_log_manager_open import OTHER_ID, TOPIC_ID


@pytest.fixture
def dirty(tmp_path: Path) -> Iterator[Log]:
    """A compacted log of 200 records over a few keys, in many small segments."""
    log = Log.open(tmp_path / "t-0", CONFIG)
    write(log, 200)
    yield log
    log.close()


def test_a_clean_that_ends_after_its_partition_was_deleted_writes_no_checkpoint(
    tmp_path: Path, dirty: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    partition = FakePartition(dirty)
    cleaner = driver(tmp_path, [partition], ManualClock(NOW))
    picked = cleaner.pick()
    assert picked is not None
    last_base = max(
        s.base_offset
        for s in dirty.cleaning_view()[0]
        if s.base_offset < picked.target.first_uncleanable
    )
    swap = dirty.replace_segments

    def swap_then_deleted(cleaned: CleanedSegment) -> None:
        swap(cleaned)
        if cleaned.replaces[-1].base_offset == last_base:
            # The topic is deleted on the event loop between the last swap and the checkpoint
            # write: LogManager.delete_partition closes the partition, then forgets its entry.
            partition.closed = True
            cleaner.forget(("t", 0))

    monkeypatch.setattr(dirty, "replace_segments", swap_then_deleted)
    assert cleaner.clean(picked, OffsetMap()) is not None
    assert cleaner.checkpoint(("t", 0)) is None
    path = tmp_path / CLEANER_CHECKPOINT_FILE
    assert not path.exists() or ("t", 0) not in OffsetCheckpointFile(path).read()


def test_a_clean_of_an_open_partition_writes_its_checkpoint(tmp_path: Path, dirty: Log) -> None:
    cleaner = driver(tmp_path, [FakePartition(dirty)], ManualClock(NOW))
    picked = cleaner.pick()
    assert picked is not None
    result = cleaner.clean(picked, OffsetMap())
    assert result is not None and cleaner.checkpoint(("t", 0)) == result.checkpoint > 0
    read = OffsetCheckpointFile(tmp_path / CLEANER_CHECKPOINT_FILE).read()
    assert read[("t", 0)] == result.checkpoint


def test_a_namesake_replaced_at_open_does_not_inherit_the_cleaners_checkpoint(
    tmp_path: Path,
) -> None:
    """A topic deleted while this node was down and created again under its name: the node
    finds the old directory (another topic id) and removes it; the cleaner's entry for the
    partition was the old log's and goes with it."""
    directory = tmp_path / "t-0"
    directory.mkdir()
    (directory / f"{segment_name(0)}.log").write_bytes(b"")
    PartitionMetadataFile(directory / PARTITION_METADATA_FILE).write(OTHER_ID)
    OffsetCheckpointFile(tmp_path / CLEANER_CHECKPOINT_FILE).write({("t", 0): 5000, ("u", 0): 7})
    state = LeaderState(leader=1, leader_epoch=0, replicas=(1,), isr=(1,))

    async def run() -> None:
        logs = LogManager(tmp_path, node_id=1)
        try:
            assert logs.cleaner.checkpoint(("t", 0)) == 5000
            logs.open_partition("t", TOPIC_ID, 0, state, CONFIG, 1)
            assert logs.cleaner.checkpoint(("t", 0)) is None
            assert logs.cleaner.checkpoint(("u", 0)) == 7
        finally:
            await logs.close()

    asyncio.run(run())
