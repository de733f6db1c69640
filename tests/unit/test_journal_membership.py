"""The journal saves its commit index at once when the commit passes a voter change.

A start decides voter or observer by whether the journal's "add self" is known committed
(server/main.py); the commit index is otherwise saved about once a second, so a power cut
just after an add committed restarted the new voter as an observer, and with another voter
gone the rest could not elect (they need its vote)."""

from __future__ import annotations

import pickle
from pathlib import Path

from kraft.journal import DurableJournal
from kraft.quorum import JOURNAL_FILE, META_FILE
from kraft.voters import MEMBERSHIP, saved_commit_index


def test_a_committed_voter_change_is_saved_at_once(tmp_path: Path) -> None:
    journal = DurableJournal(tmp_path / JOURNAL_FILE, tmp_path / META_FILE)
    try:
        journal.add(b"\x01", 1, 1)
        journal.add(b"\x01payload", 2, 1)
        journal.add(bytes([MEMBERSHIP]) + pickle.dumps(["add", "127.0.0.1:9103"]), 3, 1)
        journal.setRaftCommitIndex(2)
        # No voter change committed: saved lazily, by the one-second timer (or at close).
        assert saved_commit_index(tmp_path, META_FILE) in (0, 1)
        journal.setRaftCommitIndex(3)
        # No timer ran and the journal is still open (a power cut now keeps this).
        assert saved_commit_index(tmp_path, META_FILE) == 3
    finally:
        journal.close()
