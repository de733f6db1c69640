"""Durable file writes: the one place that knows how a rewritten file survives a power cut.

A rewritten file (checkpoints, properties, the quorum's journal header and meta, producer
snapshots, the launcher's files) is written to a temporary file in the same directory, fsynced,
renamed over the old one, and the directory is fsynced. After a power cut the file is either
the old one or the whole new one, and a new name survives: a new file or a rename is only
durable once the directory that names it has been fsynced.

:func:`timed_fsync` is the fsync of partition logs (``storage.log.Log``'s default): it tells
``fsync_observer`` how long each took, for /metrics' fsync latency. The observer is a plain
module-level callable that ``server/metrics.py`` sets (storage knows nothing of the exporter);
unset, the fsync is not timed. An observer that raises is logged and ignored: only the fsync's
own failure is a failure.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

# The fsync to call with an open file descriptor; tests of the storage engine inject their own.
Fsync = Callable[[int], None]

# Told each timed fsync's duration in seconds; None: nobody listens (tools, unit tests).
fsync_observer: Callable[[float], None] | None = None


def timed_fsync(fd: int) -> None:
    """``os.fsync(fd)`` (looked up at each call, as :func:`fsync_path` does), timed for
    :data:`fsync_observer` when one is set."""
    observer = fsync_observer
    if observer is None:
        os.fsync(fd)
        return
    start = time.perf_counter()
    os.fsync(fd)
    seconds = time.perf_counter() - start
    try:
        observer(seconds)
    except Exception:
        # The fsync succeeded: a failing observer must not make the write look failed (the
        # caller would take the log offline). Logged, bounded by the node log's repeat limit.
        log.warning("the fsync observer failed; the fsync itself succeeded", exc_info=True)


def fsync_path(path: PathLike, fsync: Fsync | None = None) -> None:
    """fsync of a file, or of a directory's entries (new, renamed or deleted names), by name.

    ``os.fsync`` is looked up at each call, so a shim that wraps it (the power-cut tests) sees
    every call."""
    fd = os.open(path, os.O_RDONLY)
    try:
        (fsync or os.fsync)(fd)
    finally:
        os.close(fd)


def fsync_dir(path: PathLike) -> None:
    """Makes a directory's entries durable: a new file survives a power cut only after this."""
    fsync_path(path)


def fsync_file(path: PathLike) -> None:
    """Makes the contents of the file at ``path`` durable."""
    fsync_path(path)


def atomic_write(path: PathLike, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replaces ``path`` with ``data`` so that the file is either the old or the new one.

    Writes a temporary file (a hidden name in the same directory, so the rename stays on one
    file system), fsyncs it, renames it over ``path`` and fsyncs the directory. When this
    returns, the new content is on disk. ``mode`` is the new file's permission bits (use
    ``0o600`` for secrets: the file never exists with wider permissions, not even briefly).
    On failure the temporary file is removed and the old file is untouched. With
    ``durable=False`` the two fsyncs are left to the caller (:func:`fsync_file` and
    :func:`fsync_dir`), who must make the file durable before anything that depends on it.
    """
    target = Path(path)
    directory = target.parent
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            os.fchmod(tmp.fileno(), mode)
            tmp.write(data)
            tmp.flush()
            if durable:
                os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if durable:
        fsync_dir(directory)
