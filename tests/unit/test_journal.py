"""The durable Raft journal and the dump file codec (files in a tmp dir, no sockets)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from kraft.dump import Dump, decode_dump, encode_dump, write_dump_file
from kraft.errors import JournalCorruptError, MetadataSnapshotError
from kraft.journal import FILE_HEADER, DurableJournal


def open_journal(tmp_path: Path) -> DurableJournal:
    return DurableJournal(tmp_path / "raft-journal.log", tmp_path / "quorum-state")


def filled(tmp_path: Path, count: int) -> DurableJournal:
    journal = open_journal(tmp_path)
    for index in range(1, count + 1):
        journal.add(b"cmd-%d" % index, index, 1 + index // 3)
    journal.sync()
    return journal


def test_entries_survive_a_reopen(tmp_path: Path) -> None:
    journal = filled(tmp_path, 5)
    expected = journal[:]
    journal.close()
    reopened = open_journal(tmp_path)
    assert reopened[:] == expected
    assert reopened[-1] == (b"cmd-5", 5, 2)
    assert len(reopened) == 5 and reopened.last_index == 5


def test_a_torn_tail_is_cut_on_load(tmp_path: Path) -> None:
    filled(tmp_path, 3).close()
    path = tmp_path / "raft-journal.log"
    size_of_three = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\x00\x00\x00\x20\x12\x34")  # half an entry header: a crash mid-append
    reopened = open_journal(tmp_path)
    assert [e[1] for e in reopened[:]] == [1, 2, 3]
    assert path.stat().st_size == size_of_three
    reopened.add(b"next", 4, 2)  # appends right after the good entries
    reopened.close()
    assert [e[1] for e in open_journal(tmp_path)[:]] == [1, 2, 3, 4]


def test_an_entry_failing_its_crc_ends_the_journal(tmp_path: Path) -> None:
    filled(tmp_path, 4).close()
    path = tmp_path / "raft-journal.log"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # damage the last entry's command
    path.write_bytes(bytes(data))
    assert [e[1] for e in open_journal(tmp_path)[:]] == [1, 2, 3]


def test_delete_entries_from_truncates_the_file(tmp_path: Path) -> None:
    journal = filled(tmp_path, 5)
    journal.deleteEntriesFrom(2)
    journal.add(b"other", 3, 9)
    journal.close()
    assert open_journal(tmp_path)[:] == [(b"cmd-1", 1, 1), (b"cmd-2", 2, 1), (b"other", 3, 9)]


def test_delete_entries_to_keeps_the_tail_and_indexes(tmp_path: Path) -> None:
    journal = filled(tmp_path, 6)
    journal.deleteEntriesTo(4)
    assert [e[1] for e in journal[:]] == [5, 6]
    assert journal.term_of(5) == 2 and journal.term_of(4) is None and journal.term_of(7) is None
    journal.add(b"seven", 7, 3)
    journal.close()
    assert [e[1] for e in open_journal(tmp_path)[:]] == [5, 6, 7]


def test_clear_then_add_starts_at_any_index(tmp_path: Path) -> None:
    journal = filled(tmp_path, 3)
    journal.clear()
    journal.add(b"prev", 41, 5)
    journal.add(b"last", 42, 5)
    journal.close()
    assert [e[1] for e in open_journal(tmp_path)[:]] == [41, 42]


def test_term_and_vote_are_stored_at_once(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    journal.setCurrentTerm(7, "127.0.0.1:9093")
    # Not closed: the meta file must already hold them (Raft sends the vote right after).
    reopened = open_journal(tmp_path)
    assert (reopened.getCurrentTerm(), reopened.getVotedForNodeId()) == (7, "127.0.0.1:9093")
    journal.close()


def test_commit_index_is_stored_on_the_timer_and_at_close(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    assert journal.getRaftCommitIndex() == 1
    journal.setRaftCommitIndex(9)
    journal.onOneSecondTimer()
    assert open_journal(tmp_path).getRaftCommitIndex() == 9
    journal.setRaftCommitIndex(12)
    journal.close()
    assert open_journal(tmp_path).getRaftCommitIndex() == 12


def test_a_file_that_is_not_our_journal_is_refused(tmp_path: Path) -> None:
    (tmp_path / "raft-journal.log").write_bytes(b"PYSYNCOBJ" + bytes(FILE_HEADER.size))
    with pytest.raises(JournalCorruptError, match="magic"):
        open_journal(tmp_path)


def test_a_broken_meta_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "quorum-state").write_bytes(b'{"version": 1}')
    with pytest.raises(JournalCorruptError, match="quorum state"):
        open_journal(tmp_path)


DUMP = Dump((b"\x00last", 42, 3), (b"\x01prev", 41, 3), ("127.0.0.1:1", "127.0.0.1:2"), b"{}")


def test_dump_round_trips(tmp_path: Path) -> None:
    assert decode_dump(encode_dump(DUMP)) == DUMP
    path = tmp_path / "metadata.dump"
    assert write_dump_file(path, DUMP) == path.stat().st_ino
    assert decode_dump(path.read_bytes()) == DUMP


@pytest.mark.parametrize("position", [0, 9, 13, 17, 21, 30, -1])
def test_a_damaged_dump_is_refused(position: int) -> None:
    data = bytearray(encode_dump(DUMP))
    data[position] ^= 0x01
    with pytest.raises(MetadataSnapshotError):
        decode_dump(bytes(data))


def test_a_truncated_dump_is_refused() -> None:
    data = encode_dump(DUMP)
    for size in (0, 10, 24, len(data) - 1):
        with pytest.raises(MetadataSnapshotError):
            decode_dump(data[:size])


def test_a_failed_fsync_fails_the_journal_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = filled(tmp_path, 2)
    real_fdatasync = os.fdatasync
    failures = [OSError(errno.EIO, "injected")]

    def fdatasync(fd: int) -> None:
        if failures:
            raise failures.pop()
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    journal.add(b"three", 3, 2)
    with pytest.raises(OSError, match="injected"):
        journal.sync()
    # The disk would answer now, but a page dropped by the failed fsync is not coming back.
    with pytest.raises(OSError, match="injected"):
        journal.sync()
    with pytest.raises(OSError, match="injected"):
        journal.add(b"four", 4, 2)
    with pytest.raises(OSError, match="injected"):
        journal.setCurrentTerm(5, None)
    assert journal.failed is not None and journal.failed.errno == errno.EIO
    journal.setRaftCommitIndex(3)  # recorded in memory; raising would wedge pysyncobj's tick
    journal.onOneSecondTimer()
    journal.close()  # and closing does not raise either


def test_a_higher_commit_index_syncs_the_entries_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = filled(tmp_path, 2)
    synced: list[int] = []
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(journal.last_index)
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    journal.add(b"three", 3, 2)
    journal.setRaftCommitIndex(1)  # not higher (1 is the initial commit index): no sync
    assert synced == []
    journal.setRaftCommitIndex(2)  # higher: entry 3, added meanwhile, is synced first
    assert synced == [3]
    journal.setRaftCommitIndex(3)
    assert synced == [3]  # nothing new to sync
    journal.close()


def test_a_failed_meta_write_keeps_the_old_meta_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = filled(tmp_path, 2)
    journal.setCurrentTerm(3, "127.0.0.1:9093")
    before = sorted(p.name for p in tmp_path.iterdir())
    meta = (tmp_path / "quorum-state").read_bytes()

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="injected"):
        journal.setCurrentTerm(4, None)
    assert (tmp_path / "quorum-state").read_bytes() == meta
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert journal.failed is not None


def test_a_failed_rewrite_keeps_the_old_journal_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = filled(tmp_path, 4)
    entries = journal[:]
    before = sorted(p.name for p in tmp_path.iterdir())
    data = (tmp_path / "raft-journal.log").read_bytes()

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="injected"):
        journal.deleteEntriesTo(2)  # compaction rewrites the whole file
    assert (tmp_path / "raft-journal.log").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    journal.close()
    monkeypatch.undo()
    assert open_journal(tmp_path)[:] == entries
