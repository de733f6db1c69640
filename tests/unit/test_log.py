"""The file log: Kafka's files, recovery at open, corruption handling, and the group-commit
flush (made deterministic with a fake fsync hook instead of timing)."""

from __future__ import annotations

import logging
import os
import threading
from itertools import pairwise
from pathlib import Path

import pytest

from storage.batch import NewRecord, build_batch, iter_batches
from storage.errors import KafkaStorageError, OffsetOutOfRangeError
from storage.index import OFFSET_ENTRY_SIZE, TIME_ENTRY_SIZE, OffsetIndex, read_used_entries
from storage.limits import INDEX_PREALLOCATE_BYTES, SCAN_WINDOW_BYTES
from storage.log import Log
from storage.log_config import LogConfig
from storage.segment import Segment

T0 = 1_700_000_000_000
SMALL = LogConfig(segment_bytes=4000, index_interval_bytes=300)


def recs(count: int, ts: int = T0, value_bytes: int = 40) -> list[NewRecord]:
    return [NewRecord(b"key", bytes([65 + i % 26]) * value_bytes, ts + i) for i in range(count)]


def fill(log: Log, batches: int, per_batch: int = 3) -> None:
    for i in range(batches):
        log.append_as_leader(recs(per_batch, ts=T0 + 10 * i), 1)


def all_offsets(log: Log, start: int | None = None) -> list[int]:
    offset = log.log_start_offset if start is None else start
    found: list[int] = []
    while offset < log.log_end_offset:
        records = log.read_records(offset, 700)
        assert records, f"no progress at {offset}"
        found += [r.offset for r in records]
        offset = records[-1].offset + 1
    return found


def batch_positions(path: Path) -> list[tuple[int, int, int]]:
    """(position, base offset, next offset) of each batch of a .log file."""
    return [(p, h.base_offset, h.next_offset) for p, h in iter_batches(path.read_bytes())]


def flip(path: Path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ 0x5A]))


def used(path: Path) -> bytes:
    """An index file's entries: its bytes before the first unused (all-zero) entry."""
    size = OFFSET_ENTRY_SIZE if path.suffix == ".index" else TIME_ENTRY_SIZE
    with open(path, "rb") as f:
        return read_used_entries(f.fileno(), size, os.fstat(f.fileno()).st_size)


def file_sizes(directory: Path) -> dict[str, int]:
    """Each file's size; an index file's counts its entries only (an open log's active
    segment has them preallocated)."""
    return {
        p.name: len(used(p)) if p.suffix in (".index", ".timeindex") else p.stat().st_size
        for p in sorted(directory.iterdir())
    }


# -- files ---------------------------------------------------------------------------------


def test_segment_files_are_named_by_their_20_digit_base_offset(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "news-0", SMALL)
    fill(log, 40)
    log.close()
    names = sorted(p.name for p in (tmp_path / "news-0").iterdir())
    bases = [
        s.base_offset for s in Log.open(tmp_path / "news-0", SMALL, recovery_point=120).segments
    ]
    assert len(bases) > 1
    expected = {f"{b:020d}{suffix}" for b in bases for suffix in (".log", ".index", ".timeindex")}
    assert set(names) == expected | {"leader-epoch-checkpoint"}
    assert (tmp_path / "news-0" / "leader-epoch-checkpoint").read_text() == "0\n1\n1 0\n"


def test_the_offset_index_follows_kafkas_rule_and_layout(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "t-0", LogConfig(index_interval_bytes=300))
    for i in range(30):
        log.append_as_leader(recs(1 + i % 3), 0)
    log.flush()
    segment = log.segments[0]
    # Kafka's rule: a batch gets an entry (its last offset, its position) when more than
    # index.interval.bytes were appended since the last entry.
    expected = OffsetIndex(0)
    since = 0
    for position, header in iter_batches(segment.log_path.read_bytes()):
        if since > 300:
            expected.append(header.last_offset, position)
            since = 0
        since += header.size
    assert len(expected) > 3
    assert used(segment.index_path) == expected.to_bytes()
    # The active segment's index is preallocated (Kafka's segment.index.bytes), zeros after.
    assert segment.index_path.stat().st_size == INDEX_PREALLOCATE_BYTES
    time_entries = segment.time_index.entries()
    assert time_entries and all(a < b for (a, _), (b, _) in pairwise(time_entries))


def test_reopening_a_cleanly_closed_log_keeps_everything(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 60)
    log.close()
    before = file_sizes(tmp_path / "t-0")
    reopened = Log.open(tmp_path / "t-0", SMALL, recovery_point=180)
    assert reopened.offline is None
    assert (reopened.log_end_offset, reopened.recovery_point) == (180, 180)
    assert all_offsets(reopened) == list(range(180))
    assert file_sizes(tmp_path / "t-0") == before
    assert reopened.offset_for_timestamp(T0 + 300) == 90


def test_a_log_opened_in_a_missing_directory_creates_it_with_one_empty_segment(
    tmp_path: Path,
) -> None:
    log = Log.open(tmp_path / "a" / "t-3", SMALL, log_start_offset=42)
    assert (log.log_start_offset, log.log_end_offset) == (42, 42)
    assert (tmp_path / "a" / "t-3" / f"{42:020d}.log").exists()
    log.append_as_leader(recs(1), 0)
    assert all_offsets(log) == [42]


# -- recovery ------------------------------------------------------------------------------


def test_a_torn_tail_is_cut_to_the_whole_batches_before_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = Log.open(tmp_path / "t-0", LogConfig())
    fill(log, 10)
    log.close()
    path = tmp_path / "t-0" / f"{0:020d}.log"
    batches = batch_positions(path)
    cut_at = batches[7][0] + 20
    os.truncate(path, cut_at)
    with caplog.at_level(logging.WARNING):
        reopened = Log.open(tmp_path / "t-0", LogConfig(), recovery_point=0)
    assert reopened.log_end_offset == batches[7][1]
    assert path.stat().st_size == batches[7][0]
    assert all_offsets(reopened) == list(range(batches[7][1]))
    assert "dropping 20 bytes" in caplog.text and f"position {batches[7][0]}" in caplog.text
    reopened.append_as_leader(recs(2), 2)
    assert all_offsets(reopened)[-3:] == [batches[7][1] - 1, batches[7][1], batches[7][1] + 1]


def test_a_flipped_byte_above_the_recovery_point_cuts_the_log_from_that_batch_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 60)
    log.close()
    directory = tmp_path / "t-0"
    segments = sorted(directory.glob("*.log"))
    assert len(segments) >= 4
    victim = segments[1]
    batches = batch_positions(victim)
    bad = batches[4]
    flip(victim, bad[0] + 40)  # inside the records: only the CRC can tell
    with caplog.at_level(logging.WARNING):
        reopened = Log.open(directory, SMALL, recovery_point=batches[1][1])
    assert reopened.offline is None
    assert reopened.log_end_offset == bad[1]
    assert all_offsets(reopened) == list(range(bad[1]))
    assert victim.stat().st_size == bad[0]
    assert sorted(directory.glob("*.log")) == segments[:2]
    assert not any(directory.glob(f"{segments[2].stem}.*"))
    assert "CRC" in caplog.text


def test_a_flipped_byte_below_the_recovery_point_takes_the_log_offline_when_read(
    tmp_path: Path,
) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 60)
    log.close()
    directory = tmp_path / "t-0"
    victim = sorted(directory.glob("*.log"))[1]
    bad_position, bad_offset, _ = batch_positions(victim)[3]
    flip(victim, bad_position + 70)
    sizes = file_sizes(directory)
    reopened = Log.open(directory, SMALL, recovery_point=180)
    assert reopened.offline is None  # Kafka does not re-read below the recovery point
    assert reopened.log_end_offset == 180
    assert file_sizes(directory) == sizes  # nothing dropped
    assert all_offsets(reopened, bad_offset + 3)[-1] == 179  # above the bad batch: fine
    with pytest.raises(KafkaStorageError) as raised:
        all_offsets(reopened, 0)
    assert raised.value.path == str(victim)
    assert raised.value.position == bad_position
    assert str(victim) in str(raised.value) and str(bad_position) in str(raised.value)
    assert reopened.offline is raised.value
    with pytest.raises(KafkaStorageError):
        reopened.read(179, 100)
    with pytest.raises(KafkaStorageError):
        reopened.append_as_leader(recs(1), 1)
    with pytest.raises(KafkaStorageError):
        reopened.flush()
    assert file_sizes(directory) == sizes


def test_a_broken_header_below_the_recovery_point_in_the_recovered_segment_is_not_cut(
    tmp_path: Path,
) -> None:
    log = Log.open(tmp_path / "t-0", LogConfig())
    fill(log, 30)
    log.close()
    path = tmp_path / "t-0" / f"{0:020d}.log"
    position = batch_positions(path)[25][0]
    flip(path, position + 16)  # the magic byte
    sizes = file_sizes(tmp_path / "t-0")
    reopened = Log.open(tmp_path / "t-0", LogConfig(), recovery_point=90)
    assert reopened.offline is not None
    assert reopened.offline.path == str(path) and reopened.offline.position == position
    assert file_sizes(tmp_path / "t-0") == sizes
    with pytest.raises(KafkaStorageError):
        reopened.read(0, 100)


def test_a_zero_filled_tail_is_cut(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = Log.open(tmp_path / "t-0", LogConfig())
    fill(log, 10)
    log.close()
    path = tmp_path / "t-0" / f"{0:020d}.log"
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x00" * 4096)
    with caplog.at_level(logging.WARNING):
        reopened = Log.open(tmp_path / "t-0", LogConfig(), recovery_point=12)
    assert path.stat().st_size == size
    assert reopened.log_end_offset == 30
    assert "dropping 4096 bytes" in caplog.text


COMPACTED = LogConfig(segment_bytes=4000, index_interval_bytes=300, cleanup_policy="compact")


@pytest.mark.parametrize("config", [SMALL, COMPACTED], ids=["delete", "compact"])
def test_a_segment_overlapping_the_one_before_is_dropped_with_the_later_ones(
    tmp_path: Path, config: LogConfig
) -> None:
    log = Log.open(tmp_path / "t-0", config)
    fill(log, 60)
    log.close()
    segments = sorted((tmp_path / "t-0").glob("*.log"))
    base = int(segments[2].stem)
    # Named one offset lower, the third segment claims an offset the second one holds.
    segments[2].rename(segments[2].with_name(f"{base - 1:020d}.log"))
    reopened = Log.open(tmp_path / "t-0", config, recovery_point=0)
    assert reopened.log_end_offset == base
    assert sorted((tmp_path / "t-0").glob("*.log")) == segments[:2]
    assert all_offsets(reopened) == list(range(base))


def test_a_missing_middle_segment_drops_the_segments_after_the_gap(tmp_path: Path) -> None:
    # A log that is not compacted has no gaps: above the recovery point one is damage (a
    # crash kept a later segment and lost one before it), and the log ends there.
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 60)
    log.close()
    segments = sorted((tmp_path / "t-0").glob("*.log"))
    segments[2].unlink()
    reopened = Log.open(tmp_path / "t-0", SMALL, recovery_point=0)
    assert reopened.log_end_offset == int(segments[2].stem)
    assert sorted((tmp_path / "t-0").glob("*.log")) == segments[:2]
    assert not list((tmp_path / "t-0").glob(f"{segments[2].stem}.*"))


def test_a_missing_middle_segment_of_a_compacted_log_reads_as_a_gap(tmp_path: Path) -> None:
    # In a compacted log it cannot be told from a gap the cleaner made (Kafka's loader does
    # not try): the later segments stay and reads go across.
    log = Log.open(tmp_path / "t-0", COMPACTED)
    fill(log, 60)
    log.close()
    segments = sorted((tmp_path / "t-0").glob("*.log"))
    segments[2].unlink()
    reopened = Log.open(tmp_path / "t-0", COMPACTED, recovery_point=0)
    assert reopened.log_end_offset == 180
    missing = range(int(segments[2].stem), int(segments[3].stem))
    assert all_offsets(reopened) == [o for o in range(180) if o not in missing]


def test_index_files_without_a_log_are_removed(tmp_path: Path) -> None:
    Log.open(tmp_path / "t-0", SMALL).close()
    stray = tmp_path / "t-0" / f"{500:020d}.index"
    stray.write_bytes(b"\x00" * 8)
    Log.open(tmp_path / "t-0", SMALL).close()
    assert not stray.exists()


def test_a_recovery_point_past_the_log_end_is_brought_back_to_it(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 3)
    log.close()
    assert Log.open(tmp_path / "t-0", SMALL, recovery_point=1000).recovery_point == 9


DAMAGES = {
    "odd length": lambda data: data[:-3],
    "zero filled": lambda data: data + b"\x00" * 24,
    "garbage": lambda data: bytes(b ^ 0xA5 for b in data),
    "emptied": lambda data: b"",
    "deleted": None,
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("which", ["index", "timeindex"])
@pytest.mark.parametrize("recovery_point", [0, 90, 180])
def test_damaged_index_files_are_rebuilt_and_reads_still_find_every_offset(
    tmp_path: Path, damage: str, which: str, recovery_point: int
) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 60)
    log.close()
    directory = tmp_path / "t-0"
    originals = {p.name: p.read_bytes() for p in directory.glob("*index")}
    for path in directory.glob(f"*.{which}"):
        change = DAMAGES[damage]
        if change is None:
            path.unlink()
        else:
            path.write_bytes(change(path.read_bytes()))
    reopened = Log.open(directory, SMALL, recovery_point=recovery_point)
    assert reopened.offline is None
    assert reopened.log_end_offset == 180
    for offset in range(0, 180, 7):
        assert reopened.read_records(offset, 1)[0].offset == offset
    assert reopened.offset_for_timestamp(T0 + 301) == 91
    reopened.close()
    # Kafka's rule is deterministic: a rebuilt index is the index that was written (the
    # active segment's with the final entry a clean close appends).
    assert {p.name: p.read_bytes() for p in directory.glob("*index")} == originals


def test_a_read_reaches_its_batch_through_the_index_not_a_whole_segment_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Log.open(tmp_path / "t-0", LogConfig())
    for _ in range(2000):
        log.append_as_leader(recs(4, value_bytes=200), 0)
    assert log.segments[0].size_bytes > 1_500_000
    read_bytes = 0
    real_pread = os.pread

    def counting_pread(fd: int, length: int, position: int) -> bytes:
        nonlocal read_bytes
        data = real_pread(fd, length, position)
        read_bytes += len(data)
        return data

    monkeypatch.setattr(os, "pread", counting_pread)
    for offset in (4000, 7000, 7999):
        read_bytes = 0
        assert log.read_records(offset, 2000)[0].offset == offset
        assert read_bytes <= 2 * SCAN_WINDOW_BYTES + 2000


def test_a_batch_corrupted_after_open_fails_the_read_and_takes_the_log_offline(
    tmp_path: Path,
) -> None:
    log = Log.open(tmp_path / "t-0", LogConfig())
    fill(log, 10)
    path = log.segments[0].log_path
    position = batch_positions(path)[4][0]
    flip(path, position + 80)
    assert [r.offset for r in log.read_records(0, 100)] == [0, 1, 2]
    with pytest.raises(KafkaStorageError, match="CRC") as raised:
        log.read(0, 10_000)
    assert raised.value.position == position
    assert log.offline is raised.value


def test_log_start_offset_from_the_checkpoint_hides_older_records(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 10)
    log.close()
    reopened = Log.open(tmp_path / "t-0", SMALL, recovery_point=30, log_start_offset=7)
    assert reopened.log_start_offset == 7
    with pytest.raises(OffsetOutOfRangeError):
        reopened.read(6, 100)
    assert all_offsets(reopened)[0] == 7


def test_delete_removes_the_directory(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    fill(log, 5)
    log.delete()
    assert not (tmp_path / "t-0").exists()


# -- group commit --------------------------------------------------------------------------


class FsyncRecorder:
    """A fake fsync: records (path, size at the time) of each call and can run a hook."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.during: list[object] = []
        self.hook: object = None

    def __call__(self, fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        self.calls.append((path, os.fstat(fd).st_size))
        os.fsync(fd)
        hook, self.hook = self.hook, None
        if callable(hook):
            hook()

    def synced_size(self, path: Path) -> int:
        sizes = [size for p, size in self.calls if p == str(path)]
        return max(sizes, default=-1)


def assert_recovery_point_is_durable(log: Log, recorder: FsyncRecorder) -> None:
    """Every batch below the recovery point lies in bytes of its file that an fsync covered."""
    for segment in log.segments:
        for position, header in iter_batches(segment.log_path.read_bytes()):
            if header.last_offset < log.recovery_point:
                assert recorder.synced_size(segment.log_path) >= position + header.size, (
                    f"offset {header.last_offset} is below the recovery point "
                    f"{log.recovery_point} but was not fsynced"
                )


@pytest.fixture
def recorder() -> FsyncRecorder:
    return FsyncRecorder()


def test_flush_claims_only_what_was_appended_before_its_fsync(
    tmp_path: Path, recorder: FsyncRecorder
) -> None:
    log = Log.open(tmp_path / "t-0", SMALL, fsync=recorder)
    fill(log, 5)
    recorder.hook = lambda: fill(log, 3)  # appends while the fsync runs
    assert log.flush() == 15
    assert log.log_end_offset == 24
    assert_recovery_point_is_durable(log, recorder)
    assert log.flush() == 24
    assert_recovery_point_is_durable(log, recorder)


def test_a_roll_during_a_flush_does_not_lose_the_old_segments_fsync(
    tmp_path: Path, recorder: FsyncRecorder
) -> None:
    log = Log.open(tmp_path / "t-0", SMALL, fsync=recorder)
    fill(log, 5)
    first = log.segments[0]
    recorder.hook = lambda: fill(log, 40)  # fills the old segment, rolls several new ones
    log.flush()
    assert len(log.segments) > 2
    assert recorder.synced_size(first.log_path) < first.size_bytes
    recorder.calls.clear()
    assert log.flush() == log.log_end_offset
    assert_recovery_point_is_durable(log, recorder)
    synced = {path for path, _ in recorder.calls}
    assert str(tmp_path / "t-0") in synced  # the new segments' directory entries
    assert str(first.index_path) in synced  # sealed: its final indexes are made durable
    assert str(log.segments[-1].index_path) not in synced  # active: rebuilt if need be


def test_a_truncation_during_a_flush_keeps_the_recovery_point_at_or_below_it(
    tmp_path: Path, recorder: FsyncRecorder
) -> None:
    log = Log.open(tmp_path / "t-0", SMALL, fsync=recorder)
    fill(log, 10)

    def truncate_and_append() -> None:
        log.truncate_to(12)
        fill(log, 10)

    recorder.hook = truncate_and_append
    assert log.flush() == 12
    assert log.log_end_offset == 42
    assert log.flush() == 42
    assert_recovery_point_is_durable(log, recorder)


def test_retention_during_a_flush_does_not_close_a_file_being_fsynced(
    tmp_path: Path, recorder: FsyncRecorder
) -> None:
    config = LogConfig(segment_bytes=4000, segment_ms=60_000, retention_ms=60_000)
    log = Log.open(tmp_path / "t-0", config, fsync=recorder)
    for i in range(60):
        log.append_as_leader(recs(3, ts=T0 + i * 10_000), 0)
    log.update_high_watermark(log.log_end_offset)
    victims = log.segments[:-1]
    recorder.hook = lambda: log.delete_retained_segments(T0 + 10**7)
    log.flush()  # fsyncs every dirty segment while retention deletes them
    assert all(s.fd == -1 for s in victims)  # closed once the flush was over
    assert log.flush() == log.log_end_offset


def test_flush_in_a_worker_thread_while_the_main_thread_appends(
    tmp_path: Path, recorder: FsyncRecorder
) -> None:
    log = Log.open(tmp_path / "t-0", SMALL, fsync=recorder)
    fill(log, 5)
    in_fsync = threading.Event()
    release = threading.Event()

    def block() -> None:
        in_fsync.set()
        assert release.wait(10)

    recorder.hook = block
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(log.flush()))
    worker.start()
    assert in_fsync.wait(10)
    fill(log, 30)  # appends (and rolls) while the worker is inside fsync
    assert log.read_records(15, 100)[0].offset == 15
    release.set()
    worker.join(10)
    assert result == [15]
    assert log.recovery_point == 15
    assert_recovery_point_is_durable(log, recorder)
    assert log.flush() == 105
    assert_recovery_point_is_durable(log, recorder)


def test_a_failed_fsync_takes_the_log_offline(tmp_path: Path) -> None:
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    log = Log.open(tmp_path / "t-0", SMALL, fsync=failing)
    fill(log, 2)
    with pytest.raises(KafkaStorageError, match="fsync failed"):
        log.flush()
    assert log.offline is not None
    assert log.recovery_point == 0
    with pytest.raises(KafkaStorageError):
        log.append_as_leader(recs(1), 0)


def test_replica_appends_index_each_batch_like_leader_appends(tmp_path: Path) -> None:
    leader = Log.open(tmp_path / "l-0", SMALL)
    fill(leader, 60)
    follower = Log.open(tmp_path / "f-0", SMALL)
    data = b"".join(s.log_path.read_bytes() for s in leader.segments)  # one append of everything
    follower.append_batches(data)
    leader.flush()
    follower.flush()
    for mine, theirs in zip(leader.segments, follower.segments, strict=True):
        assert mine.log_path.read_bytes() == theirs.log_path.read_bytes()
        assert mine.index_path.read_bytes() == theirs.index_path.read_bytes()
        assert mine.time_index_path.read_bytes() == theirs.time_index_path.read_bytes()


def test_a_segment_object_reports_its_offsets_and_size(tmp_path: Path) -> None:
    log = Log.open(tmp_path / "t-0", SMALL)
    batch = build_batch(recs(3), base_offset=0)
    log.append_batches(batch)
    segment = log.segments[0]
    assert isinstance(segment, Segment)
    assert (segment.base_offset, segment.next_offset, segment.size_bytes) == (0, 3, len(batch))
    assert segment.max_timestamp == T0 + 2
