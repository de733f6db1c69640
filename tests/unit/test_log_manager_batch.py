"""Many new replicas at once (a metadata entry that creates many partitions): they load in one
call, each created without reading anything back, a failure stays with its replica, and their
first flush makes the log directory's new names durable with one fsync for the whole batch, as
durable as before: no replica's recovery point moves before its name is fsynced (real files in
a temporary directory)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.log_manager import LoadedReplica, LogManager
from server.partition import LeaderState
from storage import durable
from storage.batch import NewRecord
from storage.log import Log
from storage.log_config import LogConfig
from storage.segment import segment_name
from tests.waiting import until

DEADLINE_S = 60.0
TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"
STATE = LeaderState(leader=1, leader_epoch=0, replicas=(1,), isr=(1,))
LOG = f"{segment_name(0)}.log"


def test_a_created_log_is_the_log_opening_a_missing_directory_gives(tmp_path: Path) -> None:
    """The same offsets, reads and appends; only the .log waits for the first append."""
    created = Log.create(tmp_path / "a-0", LogConfig())
    opened = Log.open(tmp_path / "b-0", LogConfig())
    try:
        assert list(created.directory.iterdir()) == []
        assert [p.name for p in opened.directory.iterdir()] == [LOG]
        for log in (created, opened):
            assert (log.log_start_offset, log.log_end_offset, log.recovery_point) == (0, 0, 0)
            assert log.offline is None and log.parent_unsynced
            assert log.epoch_cache.entries == []
            assert log.read(0, 1 << 20) == b"" and list(log.batch_headers(0)) == []
            assert log.offset_for_timestamp(0) is None
            log.truncate_to(0)
        for log in (created, opened):
            log.append_as_leader([NewRecord(b"k", b"v", 1000)], leader_epoch=3)
            assert log.flush() == 1
            assert [r.value for r in log.read_records(0, 1 << 20)] == [b"v"]
        assert created.read(0, 1 << 20) == opened.read(0, 1 << 20)
        assert sorted(p.name for p in created.directory.iterdir()) == sorted(
            p.name for p in opened.directory.iterdir()
        )
        with pytest.raises(FileExistsError):
            Log.create(tmp_path / "a-0", LogConfig())
    finally:
        created.close()
        opened.close()
    reopened = Log.open(tmp_path / "a-0", LogConfig(), recovery_point=1)
    assert [r.value for r in reopened.read_records(0, 1 << 20)] == [b"v"]
    reopened.close()


def test_a_log_closed_before_its_first_append_leaves_only_its_directory(tmp_path: Path) -> None:
    created = Log.create(tmp_path / "a-0", LogConfig())
    created.close()
    assert not created.parent_unsynced, "close flushes, and the flush fsyncs the parent"
    assert list((tmp_path / "a-0").iterdir()) == []
    reopened = Log.open(tmp_path / "a-0", LogConfig())  # recovery sees an empty log
    assert reopened.log_end_offset == 0 and reopened.offline is None
    reopened.close()


def test_replicas_load_in_one_call_and_a_failure_stays_with_its_replica(tmp_path: Path) -> None:
    async def run() -> None:
        logs = LogManager(tmp_path, node_id=1)
        (tmp_path / "t-3").write_text("a file where the directory should be")
        requests = [("t", TOPIC_ID, i, LogConfig()) for i in range(6)]
        results = logs.load_replicas(requests)
        assert isinstance(results[3], OSError)
        loaded = [r for r in results if isinstance(r, LoadedReplica)]
        assert [r.index for r in loaded] == [0, 1, 2, 4, 5]
        for r in loaded:
            assert r.log.directory.is_dir() and list(r.log.directory.iterdir()) == []
            assert r.high_watermark is None and not r.replaced_namesake
            logs.add_replica(r, STATE, 1)
        await logs.close()

    asyncio.run(run())


def test_a_replica_with_checkpointed_offsets_is_opened_not_created(tmp_path: Path) -> None:
    """A replica the checkpoints know (its directory lost) keeps its log start offset: the
    fast path is for replicas nothing on this node has heard of."""

    async def run() -> None:
        logs = LogManager(tmp_path, node_id=1)
        logs._saved[1][("t", 0)] = 42  # the log start offset checkpoint names t-0
        (loaded,) = logs.load_replicas([("t", TOPIC_ID, 0, LogConfig())])
        assert isinstance(loaded, LoadedReplica)
        assert loaded.log.log_start_offset == 42 and loaded.log.log_end_offset == 42
        logs.add_replica(loaded, STATE, 1)
        await logs.close()

    asyncio.run(run())


def test_the_first_flush_of_many_new_replicas_fsyncs_their_parent_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsynced: list[Path] = []
    real_fsync_dir = durable.fsync_dir
    real_fsync_path = durable.fsync_path

    def record_dir(path: Path) -> None:
        real_fsync_dir(path)
        fsynced.append(Path(path))

    def record_path(path: Path, fsync: object = None) -> None:
        real_fsync_path(path, fsync)  # type: ignore[arg-type]
        fsynced.append(Path(path))

    monkeypatch.setattr("server.log_manager.fsync_dir", record_dir)
    monkeypatch.setattr("storage.log.fsync_path", record_path)

    async def run() -> None:
        logs = LogManager(tmp_path, node_id=1)
        logs.start(retention_check_interval_ms=300_000, on_fatal=lambda why: None)
        try:
            partitions = [
                logs.open_partition("t", TOPIC_ID, i, STATE, LogConfig(), 1) for i in range(40)
            ]
            for p in partitions:  # no await in between: one group commit takes them all
                p.append_now([[NewRecord(None, b"v", 1000)]], "all")
            await until(
                lambda: all(p.high_watermark == 1 for p in partitions), "the flush", DEADLINE_S
            )
            assert fsynced.count(tmp_path) == 1, "one fsync of the log directory for 40 logs"
            for p in partitions:
                assert not p.log.parent_unsynced  # type: ignore[attr-defined]
                assert p.log.directory in fsynced  # each log's own directory, as before
        finally:
            await logs.close()

    asyncio.run(run())
