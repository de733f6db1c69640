"""Test-only fsync journal, loaded into node processes from outside our code.

Python imports ``sitecustomize`` at start-up from the first directory of ``sys.path`` that has
one, so putting this directory first on ``PYTHONPATH`` loads it before ``server.main``. It does
nothing unless ``KRAFT_POWERLOSS_JOURNAL`` names a journal file; then it wraps ``os.fsync``,
``os.fdatasync`` and ``mmap.mmap.flush`` and appends one JSON line per successful call:

    {"t": <CLOCK_MONOTONIC ns, taken BEFORE the call>, "pid": <pid>, "op": "fsync" |
     "fdatasync" | "msync", "path": <what /proc/self/fd/<fd> names>, "dev": <st_dev>,
     "ino": <st_ino>, "kind": "file", "size": <st_size before the call>}
    {..., "kind": "dir", "entries": {<name>: <inode>, ...}}      (a directory's fsync)

Why the state is taken before the call: whatever was written before the fsync started is
covered by it; what a concurrent thread writes meanwhile may not be. ``t`` is system-wide
(CLOCK_MONOTONIC), so journals of consecutive processes (format, start, restart) merge by it.
A line is written only after the call returned: a failed fsync made nothing durable.

The journal is opened with O_APPEND and written with one ``os.write`` per line and never
fsynced: it must survive kill -9 of the node (the page cache keeps it), not a real power cut.
Everything is keyed by inode as well as path, so a file written as ``x.tmp``, fsynced and
renamed to ``x`` is still recognised.
"""

from __future__ import annotations

import json
import mmap as _mmap
import os
import stat
import threading
import time
from typing import Any

JOURNAL_ENV = "KRAFT_POWERLOSS_JOURNAL"


class _Journal:
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        # One line must never interleave with another thread's line.
        self._lock = threading.Lock()

    def observe(self, fd: int, op: str) -> dict[str, Any] | None:
        """The state that a sync of ``fd`` starting now makes durable; None if unobservable."""
        try:
            t = time.monotonic_ns()
            st = os.fstat(fd)
            record: dict[str, Any] = {
                "t": t,
                "pid": os.getpid(),
                "op": op,
                "path": os.readlink(f"/proc/self/fd/{fd}"),
                "dev": st.st_dev,
                "ino": st.st_ino,
            }
            if stat.S_ISDIR(st.st_mode):
                with os.scandir(f"/proc/self/fd/{fd}") as it:
                    record["kind"] = "dir"
                    record["entries"] = {e.name: e.inode() for e in it}
            else:
                record["kind"] = "file"
                record["size"] = st.st_size
            return record
        except OSError:
            return None  # a bad fd: the real call raises and nothing is recorded

    def write(self, record: dict[str, Any] | None) -> None:
        if record is None:
            return
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]


def _fileno(fd: Any) -> int:
    return fd if isinstance(fd, int) else int(fd.fileno())


def _install(journal: _Journal) -> None:
    real_fsync = os.fsync
    real_fdatasync = os.fdatasync

    def fsync(fd: Any) -> None:
        record = journal.observe(_fileno(fd), "fsync")
        real_fsync(fd)
        journal.write(record)

    def fdatasync(fd: Any) -> None:
        record = journal.observe(_fileno(fd), "fdatasync")
        real_fdatasync(fd)
        journal.write(record)

    class mmap(_mmap.mmap):  # noqa: N801 - it replaces mmap.mmap under the same name
        """mmap.mmap whose flush (msync) is journaled like an fsync of the mapped file."""

        def __new__(cls, fileno: int, *args: Any, **kwargs: Any) -> mmap:
            self = super().__new__(cls, fileno, *args, **kwargs)
            # Our own descriptor: the caller may close theirs while the mapping lives on.
            self._powerloss_fd = os.dup(fileno) if fileno != -1 else -1
            return self

        def flush(self, *args: Any) -> None:
            fd = self._powerloss_fd
            record = journal.observe(fd, "msync") if fd != -1 else None
            super().flush(*args)
            journal.write(record)

        def close(self) -> None:
            super().close()
            self._release()

        def _release(self) -> None:
            if getattr(self, "_powerloss_fd", -1) != -1:
                os.close(self._powerloss_fd)
                self._powerloss_fd = -1

        def __del__(self) -> None:
            self._release()

    os.fsync = fsync
    os.fdatasync = fdatasync
    _mmap.mmap = mmap  # type: ignore[misc]


if os.environ.get(JOURNAL_ENV):
    _install(_Journal(os.environ[JOURNAL_ENV]))
