"""Where the quorum plugs into pysyncobj's module-level functions (installed on import).

- ``createJournal(path)``: pysyncobj builds its Raft journal with it. A quorum registers its
  :class:`~kraft.journal.DurableJournal` in :data:`JOURNALS` under the journal path just
  before it builds the SyncObj; the hook hands it over (once). Other paths get pysyncobj's.
- ``atomicReplace(source, target)``: pysyncobj renames a new dump into place with it, its own
  (after log compaction) and one received from the leader (a follower's snapshot install). It
  renames without any fsync, and renames a received dump over the good one before anything
  reads it. :func:`durable_replace` checks a dump whose target is in :data:`DUMP_PATHS` (its
  CRC: raising makes pysyncobj keep the old dump and not acknowledge the new one), fsyncs it,
  renames it and fsyncs the directory, so the follower acknowledges a durable dump.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pysyncobj.serializer as _pysyncobj_serializer
import pysyncobj.syncobj as _pysyncobj_syncobj

from kraft.dump import decode_dump
from kraft.journal import DurableJournal
from storage.durable import fsync_dir, fsync_file

JOURNALS: dict[str, DurableJournal] = {}  # journal path -> the journal to hand over
JOURNALS_LOCK = threading.Lock()
DUMP_PATHS: set[str] = set()  # the dump files of running quorums

_original_create_journal = _pysyncobj_syncobj.createJournal


def create_journal(journal_file: str | None = None) -> Any:
    """pysyncobj's journal for `journal_file`: ours if one was registered for that path."""
    if journal_file is not None:
        with JOURNALS_LOCK:
            journal = JOURNALS.pop(journal_file, None)
        if journal is not None:
            return journal
    return _original_create_journal(journal_file)


def durable_replace(source: str, target: str) -> None:
    """Rename `source` over `target` durably; a dump of ours is checked first.

    Raises MetadataSnapshotError (the dump is bad) or OSError, leaving `target` alone.
    """
    if target in DUMP_PATHS:
        decode_dump(Path(source).read_bytes())
    fsync_file(Path(source))
    os.replace(source, target)
    fsync_dir(Path(target).parent)


_pysyncobj_syncobj.createJournal = create_journal
_pysyncobj_serializer.atomicReplace = durable_replace
