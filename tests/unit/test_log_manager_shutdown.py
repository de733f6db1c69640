"""A log directory's own files as a Kafka 4.4.0 broker leaves them: the checkpoint files
created (the cleaner's empty until a log is cleaned), ``log-start-offset-checkpoint`` naming
only logs whose start is above their first segment, and ``.kafka_cleanshutdown`` written last
at a clean stop, removed at start, and trusted then (real files in a temporary directory)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from server.log_manager import LogManager
from server.partition import LeaderState
from storage.batch import NewRecord
from storage.checkpoints import CleanShutdownFile, OffsetCheckpointFile
from storage.errors import KafkaStorageError
from storage.log import Log
from storage.log_config import LogConfig
from tests.waiting import until

DEADLINE_S = 60.0
TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ"
STATE = LeaderState(leader=1, leader_epoch=0, replicas=(1,), isr=(1,))
MARKER = ".kafka_cleanshutdown"


def produce(log_dir: Path, topic: str, count: int, broker_epoch: int = -1) -> None:
    """Starts a log manager over ``log_dir``, appends ``count`` one-record batches to
    ``topic``-0, waits for their flush and closes it cleanly."""

    async def run() -> None:
        logs = LogManager(log_dir, node_id=1)
        logs.start(retention_check_interval_ms=300_000, on_fatal=lambda why: None)
        try:
            p = logs.open_partition(topic, TOPIC_ID, 0, STATE, LogConfig(), 1)
            for i in range(count):
                p.append_now([[NewRecord(None, b"v%d" % i, 1000 + i)]], "all")
            await until(lambda: p.high_watermark == p.log.log_end_offset, "the flush", DEADLINE_S)
        finally:
            await logs.close(broker_epoch)

    asyncio.run(run())


def test_a_start_creates_the_cleaner_checkpoint_empty_as_kafkas_checkpoint_file_does(
    tmp_path: Path,
) -> None:
    LogManager(tmp_path, node_id=1)
    assert (tmp_path / "cleaner-offset-checkpoint").read_bytes() == b""
    assert not (tmp_path / MARKER).exists()


def test_a_clean_stop_leaves_kafkas_files(tmp_path: Path) -> None:
    produce(tmp_path, "t", 3, broker_epoch=11)
    assert (tmp_path / MARKER).read_bytes() == b'{"version":0,"brokerEpoch":11}'
    # What a Kafka 4.4.0 broker with one unclean topic writes: no log start entry (the log
    # starts at its first segment), no cleaner entry (nothing cleaned: the file stays empty).
    assert (tmp_path / "log-start-offset-checkpoint").read_bytes() == b"0\n0\n"
    assert (tmp_path / "cleaner-offset-checkpoint").read_bytes() == b""
    assert (tmp_path / "recovery-point-offset-checkpoint").read_text() == "0\n1\nt 0 3\n"
    assert (tmp_path / "t-0" / "partition.metadata").stat().st_size == 43


def test_the_log_start_checkpoint_names_a_log_whose_start_is_above_its_first_segment(
    tmp_path: Path,
) -> None:
    produce(tmp_path, "t", 5)
    # Kafka's DeleteRecords would leave this: the log starts inside its first segment.
    OffsetCheckpointFile(tmp_path / "log-start-offset-checkpoint").write({("t", 0): 2})
    produce(tmp_path, "t", 0)
    assert (tmp_path / "log-start-offset-checkpoint").read_text() == "0\n1\nt 0 2\n"


def test_a_start_after_a_clean_stop_removes_the_file_and_trusts_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    produce(tmp_path, "t", 4)
    # A recovery point checkpoint that lags: after a crash the log would be re-read from 0.
    OffsetCheckpointFile(tmp_path / "recovery-point-offset-checkpoint").write({("t", 0): 0})

    async def reopen() -> None:
        with caplog.at_level(logging.INFO):
            logs = LogManager(tmp_path, node_id=1)
        assert logs.had_clean_shutdown
        assert not (tmp_path / MARKER).exists()  # gone before any log is touched
        try:
            p = logs.open_partition("t", TOPIC_ID, 0, STATE, LogConfig(), 1)
            assert (p.log.recovery_point, p.log.log_end_offset) == (4, 4)
        finally:
            await logs.close()

    asyncio.run(reopen())
    assert "clean shutdown file found" in caplog.text
    assert (tmp_path / MARKER).exists()


def test_a_start_without_the_file_recovers_and_a_crash_leaves_none(tmp_path: Path) -> None:
    produce(tmp_path, "t", 4)
    CleanShutdownFile(tmp_path).delete()  # as a crash of the run leaves it

    async def reopen() -> None:
        logs = LogManager(tmp_path, node_id=1)
        assert not logs.had_clean_shutdown
        p = logs.open_partition("t", TOPIC_ID, 0, STATE, LogConfig(), 1)
        assert p.log.log_end_offset == 4
        # Killed here: the file is never written.
        assert isinstance(p.log, Log)
        for segment in p.log.segments:
            segment.close()

    asyncio.run(reopen())
    assert not (tmp_path / MARKER).exists()


def test_no_clean_shutdown_file_vouches_for_a_directory_this_run_never_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    produce(tmp_path, "a", 2)
    produce(tmp_path, "b", 2)
    CleanShutdownFile(tmp_path).delete()  # the last run crashed

    async def reopen_one() -> None:
        logs = LogManager(tmp_path, node_id=1)
        logs.open_partition("a", TOPIC_ID, 0, STATE, LogConfig(), 1)
        await logs.close()  # b-0 was never recovered: the next start must recover it

    with caplog.at_level(logging.INFO):
        asyncio.run(reopen_one())
    assert not (tmp_path / MARKER).exists()
    assert "b-0" in caplog.text

    async def reopen_both() -> None:
        logs = LogManager(tmp_path, node_id=1)
        logs.open_partition("a", TOPIC_ID, 0, STATE, LogConfig(), 1)
        logs.open_partition("b", TOPIC_ID, 0, STATE, LogConfig(), 1)
        await logs.close()

    asyncio.run(reopen_both())
    assert (tmp_path / MARKER).exists()


def test_no_clean_shutdown_file_when_a_log_went_offline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    produce(tmp_path, "t", 3)
    segment = tmp_path / "t-0" / "00000000000000000000.log"
    with open(segment, "r+b") as f:  # a byte of the first record, below the recovery point
        f.seek(70)
        byte = f.read(1)
        f.seek(70)
        f.write(bytes([byte[0] ^ 0xFF]))

    async def reopen() -> None:
        logs = LogManager(tmp_path, node_id=1)
        p = logs.open_partition("t", TOPIC_ID, 0, STATE, LogConfig(), 1)
        with pytest.raises(KafkaStorageError):
            p.log.read(0, 1 << 20)  # the CRC check takes the log offline
        await logs.close()

    with caplog.at_level(logging.INFO):
        asyncio.run(reopen())
    assert "1 partition(s) are offline (t-0)" in caplog.text
    assert not (tmp_path / MARKER).exists()


def test_a_clean_stop_snapshots_producers_only_of_a_log_with_batches(tmp_path: Path) -> None:
    produce(tmp_path, "t", 2)

    async def with_an_empty_one() -> None:
        logs = LogManager(tmp_path, node_id=1)
        logs.open_partition("t", TOPIC_ID, 0, STATE, LogConfig(), 1)
        logs.open_partition("empty", TOPIC_ID, 0, STATE, LogConfig(), 1)
        await logs.close()

    asyncio.run(with_an_empty_one())
    # As Kafka's ProducerStateManager.takeSnapshot: only past the latest (none for no batch).
    assert (tmp_path / "t-0" / "00000000000000000002.snapshot").exists()
    assert not list((tmp_path / "empty-0").glob("*.snapshot"))


def test_a_stop_during_an_open_leaves_no_file_vouching_for_the_log_it_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    produce(tmp_path, "t", 50)
    CleanShutdownFile(tmp_path).delete()  # the last run crashed ...
    segment = tmp_path / "t-0" / "00000000000000000000.log"
    good = segment.stat().st_size
    with open(segment, "ab") as f:  # ... tearing a batch it never flushed
        f.write(segment.read_bytes()[-70:-10])
    torn = segment.read_bytes()

    async def stopped_while_opening() -> None:
        logs = LogManager(tmp_path, node_id=1)
        # What the replica manager's open thread does for a batch whose reconcile task a
        # stop cancels: the log opens (its recovery cuts the torn batch), add_replica never
        # comes.
        logs.load_replica("t", TOPIC_ID, 0, LogConfig())
        assert segment.stat().st_size == good
        await logs.close(5)

    with caplog.at_level(logging.INFO):
        asyncio.run(stopped_while_opening())
    assert "opened but never added (t-0)" in caplog.text
    assert not (tmp_path / MARKER).exists()
    # A power cut undoes the cut the close did not vouch for: the next start recovers again.
    segment.write_bytes(torn)

    async def reopen() -> None:
        logs = LogManager(tmp_path, node_id=1)
        assert not logs.had_clean_shutdown
        p = logs.open_partition("t", TOPIC_ID, 0, STATE, LogConfig(), 1)
        assert p.log.log_end_offset == 50
        await logs.close()

    asyncio.run(reopen())
    assert (tmp_path / MARKER).exists()


def test_a_trusted_log_opened_but_never_added_keeps_the_next_start_from_trusting(
    tmp_path: Path,
) -> None:
    produce(tmp_path, "t", 3)

    async def stopped_while_opening() -> None:
        logs = LogManager(tmp_path, node_id=1)
        assert logs.had_clean_shutdown
        loaded = logs.load_replica("t", TOPIC_ID, 0, LogConfig())
        await logs.close()
        with pytest.raises(KafkaStorageError):  # the close closed it
            loaded.log.read(0, 1 << 20)

    asyncio.run(stopped_while_opening())
    assert not (tmp_path / MARKER).exists()


def test_a_stopping_log_manager_opens_no_further_replica_of_a_batch(tmp_path: Path) -> None:
    logs = LogManager(tmp_path, node_id=1)
    logs.stopping()
    results = logs.load_replicas([("t", TOPIC_ID, 0, LogConfig()), ("t", TOPIC_ID, 1, LogConfig())])
    assert [type(r) for r in results] == [OSError, OSError]
    assert not (tmp_path / "t-0").exists() and not (tmp_path / "t-1").exists()


def test_retention_keeps_the_log_start_entry_until_its_deletions_are_fsynced(
    tmp_path: Path,
) -> None:
    starts = OffsetCheckpointFile(tmp_path / "log-start-offset-checkpoint")

    async def run() -> None:
        logs = LogManager(tmp_path, node_id=1)
        logs.start(retention_check_interval_ms=300_000, on_fatal=lambda why: None)
        try:
            config = LogConfig(segment_bytes=300, retention_ms=1)
            p = logs.open_partition("t", TOPIC_ID, 0, STATE, config, 1)
            for i in range(12):  # timestamps from 1970: every segment is past retention.ms
                p.append_now([[NewRecord(None, b"v" * 40, 1000 + i)]], "all")
            await until(lambda: p.high_watermark == p.log.log_end_offset, "the flush", DEADLINE_S)
            assert logs.delete_old_segments(at_ms=10_000_000) > 0
            start = p.log.log_start_offset
            assert start == p.log.segments[0].base_offset > 0
            # The unlinks are not durable yet: a power cut would bring the segments back, and
            # without the entry the log would start at the first of them again.
            logs.write_checkpoints()
            assert starts.read() == {("t", 0): start}

            def entry_dropped() -> bool:
                logs.write_checkpoints()
                return starts.read() == {}

            # Retention had the group commit fsync the directory; then Kafka's rule applies.
            await until(entry_dropped, "the directory's fsync", DEADLINE_S)
        finally:
            await logs.close()

    asyncio.run(run())
    assert starts.read() == {}
