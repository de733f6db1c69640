"""The files of a partition replica on disk, as the web console's disk view shows them.

A broker's log directory (Kafka's ``kraft-combined-logs``) holds one directory per partition
replica and a few files of its own::

    <log dir>/meta.properties                      the directory's identity (cluster, node)
    <log dir>/recovery-point-offset-checkpoint     offsets per partition (storage.checkpoints)
    <log dir>/log-start-offset-checkpoint
    <log dir>/replication-offset-checkpoint        the high watermarks
    <log dir>/cleaner-offset-checkpoint            how far the cleaner got (compacted logs)
    <log dir>/cluster.secret                       NEVER listed nor read: the cluster's secret
    <log dir>/<topic>-<partition>/
        <20-digit base offset>.log                 a segment's record batches
        <base>.index  <base>.timeindex             its offset and time indexes
        <base>.txnindex                            aborted transactions (Kafka's; not written here)
        <base>.snapshot                            producer state at that offset
        leader-epoch-checkpoint  partition.metadata
        *.cleaned  *.swap  *.deleted  *.replaced  .*.tmp   leftovers of work in progress

What may be shown is decided by name, from that layout: in a partition's directory every
regular file (each with its :func:`file_kind`); at the top of the log directory only
``meta.properties`` and the ``*-checkpoint`` files (:func:`log_dir_file_kind`), so the
cluster secret and the other partitions' directories never are. Symbolic links are neither
listed nor followed: a file is found with ``lstat`` and must be a regular file.

A file's text (:func:`write_text`) is what ``kraft-dump-log`` prints for it
(:mod:`storage.dump_log`, stdout and stderr in one stream, as a terminal shows them) for
segments, indexes and producer snapshots, and the file's own text for the checkpoints,
``partition.metadata`` and ``meta.properties``. ``max_bytes`` bounds how much of a segment (or
a text file) is read; when the text stops short of the file's end, its last line says where
and why.

Plain functions doing file I/O only: the HTTP route (``server/http_disk.py``) runs them in a
worker thread.
"""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from storage.dump_log import (
    STOPPED_AT_MAX_BYTES,
    DumpOptions,
    DumpStop,
    dump_files,
)

# Kinds of the files in a partition's directory.
SEGMENT = "segment"
OFFSET_INDEX = "offset_index"
TIME_INDEX = "time_index"
TXN_INDEX = "txn_index"
PRODUCER_SNAPSHOT = "producer_snapshot"
LEADER_EPOCH_CHECKPOINT = "leader_epoch_checkpoint"
PARTITION_METADATA = "partition_metadata"
TEMPORARY = "temporary"
OTHER = "other"
# Kinds of the log directory's own files.
META_PROPERTIES = "meta_properties"
RECOVERY_POINT_CHECKPOINT = "recovery_point_checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log_start_offset_checkpoint"
REPLICATION_OFFSET_CHECKPOINT = "replication_offset_checkpoint"
CLEANER_OFFSET_CHECKPOINT = "cleaner_offset_checkpoint"
CHECKPOINT = "checkpoint"  # another *-checkpoint file at the top

_BY_SUFFIX = {
    ".log": SEGMENT,
    ".index": OFFSET_INDEX,
    ".timeindex": TIME_INDEX,
    ".txnindex": TXN_INDEX,
    ".snapshot": PRODUCER_SNAPSHOT,
}
_SEGMENT_FILE = re.compile(r"^\d{20}(\.[a-z]+)$")
_BY_NAME = {
    "leader-epoch-checkpoint": LEADER_EPOCH_CHECKPOINT,
    "partition.metadata": PARTITION_METADATA,
}
# A cleaner's segment being written (.cleaned) or swapped in (.swap, .replaced), a segment
# deleted by retention (Kafka's .deleted), an atomic write's temporary file (storage.durable).
_TEMPORARY_SUFFIXES = (".cleaned", ".swap", ".replaced", ".deleted", ".tmp")
_LOG_DIR_FILES = {
    "meta.properties": META_PROPERTIES,
    "recovery-point-offset-checkpoint": RECOVERY_POINT_CHECKPOINT,
    "log-start-offset-checkpoint": LOG_START_OFFSET_CHECKPOINT,
    "replication-offset-checkpoint": REPLICATION_OFFSET_CHECKPOINT,
    "cleaner-offset-checkpoint": CLEANER_OFFSET_CHECKPOINT,
}
# Files whose text is the file itself (all are short UTF-8 text written by storage.checkpoints
# and storage.properties); the other kinds are dumped by kraft-dump-log's code.
PLAIN_TEXT_KINDS = frozenset(
    {
        LEADER_EPOCH_CHECKPOINT,
        PARTITION_METADATA,
        META_PROPERTIES,
        RECOVERY_POINT_CHECKPOINT,
        LOG_START_OFFSET_CHECKPOINT,
        REPLICATION_OFFSET_CHECKPOINT,
        CLEANER_OFFSET_CHECKPOINT,
        CHECKPOINT,
    }
)
# The log directory's checkpoints whose entries (``<topic> <partition> <offset>``) name every
# partition of the broker: their text is cut to the requester's topics (:func:`visible_entries`).
TOPIC_CHECKPOINT_KINDS = frozenset(
    {
        RECOVERY_POINT_CHECKPOINT,
        LOG_START_OFFSET_CHECKPOINT,
        REPLICATION_OFFSET_CHECKPOINT,
        CLEANER_OFFSET_CHECKPOINT,
        CHECKPOINT,
    }
)
# Lines :func:`write_text` adds after a file's own text (not entries of the file).
_OWN_NOTES = ("Stopped at byte ", "Cannot read ")
# Linux's NAME_MAX: no file of a directory has a longer name.
_NAME_BYTES_MAX = 255


def file_kind(name: str) -> str:
    """What a file of a partition's directory is, from its name (``OTHER`` when not ours)."""
    if name.endswith(_TEMPORARY_SUFFIXES):
        return TEMPORARY
    match = _SEGMENT_FILE.match(name)
    if match is not None and match[1] in _BY_SUFFIX:
        return _BY_SUFFIX[match[1]]
    return _BY_NAME.get(name, OTHER)


def log_dir_file_kind(name: str) -> str | None:
    """What a file at the top of the log directory is, or None when it is not one to show:
    only ``meta.properties`` and the ``*-checkpoint`` files are (never ``cluster.secret``)."""
    kind = _LOG_DIR_FILES.get(name)
    if kind is None and name.endswith("-checkpoint") and is_plain_name(name):
        return CHECKPOINT
    return kind


def is_plain_name(name: str) -> bool:
    """Whether ``name`` can only mean a file of the directory it is looked up in: not empty,
    no ``/`` (nor NUL), not ``.`` or ``..``, and no longer than a file name can be."""
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\0" not in name
        and len(os.fsencode(name)) <= _NAME_BYTES_MAX
    )


@dataclass(frozen=True)
class FileEntry:
    """One file as the listing shows it."""

    name: str
    size: int
    kind: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "kind": self.kind}


def _regular_size(path: Path) -> int | None:
    """The size of ``path`` if it is a regular file (a symbolic link is not followed)."""
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _list(directory: Path, kind_of: Callable[[str], str | None]) -> list[FileEntry]:
    entries = []
    with os.scandir(directory) as found:
        for entry in found:
            kind = kind_of(entry.name)
            if kind is None:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone meanwhile: a segment deleted, a clean swapped in
            if stat.S_ISREG(info.st_mode):
                entries.append(FileEntry(entry.name, info.st_size, kind))
    # As `LC_ALL=C ls` sorts: by the names' bytes (20-digit base offsets sort numerically).
    entries.sort(key=lambda e: os.fsencode(e.name))
    return entries


def list_partition_files(directory: Path) -> list[FileEntry]:
    """The regular files of a partition's directory with their kinds, sorted by name.
    Raises FileNotFoundError when the directory is not there."""
    return _list(directory, file_kind)


def list_log_dir_files(log_dir: Path) -> list[FileEntry]:
    """The log directory's own files that may be shown (see :func:`log_dir_file_kind`)."""
    return _list(log_dir, log_dir_file_kind)


def find_file(directory: Path, log_dir: Path, name: str) -> tuple[Path, FileEntry] | None:
    """The file ``name`` as a listing of ``directory`` (a partition's) and of ``log_dir`` would
    show it, with its path; None for any name the listings would not show."""
    if not is_plain_name(name):
        return None
    for parent, kind in ((directory, file_kind(name)), (log_dir, log_dir_file_kind(name))):
        if kind is None:
            continue
        path = parent / name
        size = _regular_size(path)
        # The name has no separator and the file is no link: it can only be in `parent`.
        if size is not None and path.resolve().parent == parent.resolve():
            return path, FileEntry(name, size, kind)
    return None


# ---------------------------------------------------------------------------------------------
# A file's text
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextOptions:
    """How a file is printed: ``max_bytes`` of a segment or text file are read; the flags are
    kraft-dump-log's ``--print-data-log``, ``--deep-iteration`` and ``--offsets-decoder``."""

    max_bytes: int
    print_data: bool = False
    deep_iteration: bool = False
    offsets_decoder: bool = False

    def dump_options(self) -> DumpOptions:
        # As the tool's command line: a decoder implies --print-data-log, which implies
        # --deep-iteration.
        print_data = self.print_data or self.offsets_decoder
        return DumpOptions(
            print_data=print_data,
            deep=self.deep_iteration or print_data,
            max_bytes=self.max_bytes,
            offsets_decoder=self.offsets_decoder,
        )


def stop_note(stop: DumpStop, max_bytes: int) -> str:
    """The line ending a text that stopped short of its file's end."""
    where = f"Stopped at byte {stop.position} of {stop.file_size}"
    if stop.reason == STOPPED_AT_MAX_BYTES:
        return (
            f"{where}: the next batch ends past max_bytes={max_bytes}; a larger max_bytes reads on."
        )
    left = stop.file_size - stop.position
    return (
        f"{where}: the last {left} bytes are not a whole batch (one being appended as the "
        "file was read, or a write cut short)."
    )


def _write_plain(path: Path, max_bytes: int, out: TextIO) -> None:
    # O_NOFOLLOW: the file was found as a regular file; a link put in its place is not read.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(max_bytes)
    out.write(data.decode("utf-8", "replace"))
    if len(data) < size:
        if not data.endswith(b"\n"):
            out.write("\n")
        out.write(f"Stopped at byte {len(data)} of {size}: max_bytes={max_bytes}.\n")


def write_text(path: Path, kind: str, options: TextOptions, out: TextIO) -> None:
    """Writes the text of the file at ``path`` (of kind ``kind``) to ``out``: kraft-dump-log's
    output for it (``kraft-dump-log --files <path> 2>&1`` with the matching flags), or its own
    text for a checkpoint, ``partition.metadata`` or ``meta.properties``; then, when the text
    stopped before the file's end, a line saying where and why. A file that cannot be read
    (gone meanwhile: a segment deleted, a clean swapped in) gets the tool's ``Cannot read``
    line."""
    if kind in PLAIN_TEXT_KINDS:
        try:
            _write_plain(path, options.max_bytes, out)
        except OSError as e:
            out.write(f"Cannot read {path}: {e.strerror or e}\n")
        return
    name = str(path)
    report = dump_files([name], options.dump_options(), out, out)
    stop = report.stops.get(name)
    if stop is not None:
        out.write(stop_note(stop, options.max_bytes) + "\n")


def read_text(path: Path, kind: str, options: TextOptions) -> str:
    """:func:`write_text`'s text as one string (for the short text files)."""
    out = io.StringIO()
    write_text(path, kind, options, out)
    return out.getvalue()


def visible_entries(text: str, may_see: Callable[[str], bool]) -> str:
    """The text of a log directory checkpoint (:data:`TOPIC_CHECKPOINT_KINDS`) with only the
    entries whose topic ``may_see`` accepts. The two header lines (version, entry count) stay
    as the file has them, and so do the notes :func:`write_text` ends a text with; any other
    line that is not a whole ``<topic> <partition> <offset>`` entry is left out too (a line
    cut by ``max_bytes`` could show part of a topic's name). When lines were left out, a last
    line says how many, so that the count above is not taken for the entries shown."""
    lines = text.splitlines(keepends=True)
    kept = lines[:2]
    left_out = 0
    for line in lines[2:]:
        fields = line.split()
        if line.startswith(_OWN_NOTES) or (
            len(fields) == 3
            and line.endswith("\n")
            and fields[1].isdigit()
            and fields[2].lstrip("-").isdigit()
            and may_see(fields[0])
        ):
            kept.append(line)
        else:
            left_out += 1
    if left_out:
        if kept and not kept[-1].endswith("\n"):
            kept.append("\n")
        lines_word = "line" if left_out == 1 else "lines"
        kept.append(
            f"({left_out} {lines_word} left out: they are not about topics you may describe)\n"
        )
    return "".join(kept)
