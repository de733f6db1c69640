"""What a power cut may leave of a directory tree, judged from the fsync journal that
``tests/integration/powerloss/sitecustomize.py`` writes in the node processes.

The model is the strict POSIX one (what an OS may lose, not what ext4 usually keeps):
- a file's bytes are durable up to its size at the last fsync/fdatasync/msync of its inode;
  a file never synced keeps nothing (cut to 0 bytes);
- a name in a directory is durable only if it was among the directory's entries at that
  directory's last fsync; a file or directory whose name is not durable is removed, whole.

Limits of the model, said plainly: bytes can only be cut, never brought back, so a file that
is now shorter than at its last sync (a truncation not yet synced) or a name that now points at
another inode than at the directory's last fsync (a rename not yet synced: the OS could bring
the old file back) is kept as it is and reported as a ``note``; and an inode number reused by
a new file that was never synced inherits the old file's last synced size.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The variable the shim reads (tests/integration/powerloss/sitecustomize.py, JOURNAL_ENV).
JOURNAL_ENV = "KRAFT_POWERLOSS_JOURNAL"
SHIM_DIR = Path(__file__).resolve().parent / "powerloss"
REPO_ROOT = Path(__file__).resolve().parents[2]

Inode = tuple[int, int]


def shim_env(journal: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment that loads the shim (journaling to ``journal``) into a Python process
    started from the repository root."""
    env = dict(os.environ if base is None else base)
    paths = [str(SHIM_DIR), str(REPO_ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env[JOURNAL_ENV] = str(journal)
    return env


@dataclass(frozen=True)
class Sync:
    """One journaled sync: what it made durable."""

    t: int  # CLOCK_MONOTONIC ns when its state was taken (before the call)
    pid: int
    op: str
    path: str
    inode: Inode
    size: int | None  # files
    entries: dict[str, int] | None  # directories: name -> inode

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Sync:
        return cls(
            t=raw["t"],
            pid=raw["pid"],
            op=raw["op"],
            path=raw["path"],
            inode=(raw["dev"], raw["ino"]),
            size=raw.get("size"),
            entries=raw.get("entries"),
        )


def read_journals(paths: Iterable[Path]) -> list[Sync]:
    """Every sync of every journal, oldest first. A torn last line (the writer was killed in
    the middle of it) is skipped: that sync had not been recorded as done."""
    syncs = []
    for path in paths:
        for line in path.read_text().splitlines():
            try:
                syncs.append(Sync.from_json(json.loads(line)))
            except (ValueError, KeyError):
                continue
    return sorted(syncs, key=lambda s: s.t)


@dataclass(frozen=True)
class Durable:
    """The last sync of each inode, files and directories apart."""

    files: dict[Inode, Sync]
    dirs: dict[Inode, Sync]

    @classmethod
    def of(cls, syncs: Iterable[Sync]) -> Durable:
        files: dict[Inode, Sync] = {}
        dirs: dict[Inode, Sync] = {}
        for sync in sorted(syncs, key=lambda s: s.t):
            (dirs if sync.entries is not None else files)[sync.inode] = sync
        return cls(files, dirs)


def _inode(st: os.stat_result) -> Inode:
    return (st.st_dev, st.st_ino)


def cut_power(root: Path, syncs: Iterable[Sync]) -> list[str]:
    """Cuts the tree under ``root`` (whose own name is taken as durable) back to what the
    syncs made durable, in place. Returns one line per change or note, e.g.
    ``cut n/a/b.log 1234 -> 1000 bytes (fdatasync by pid 7)``, ``removed n/a/c (n/a never
    fsynced)``, ``note: ...``."""
    durable = Durable.of(syncs)
    actions: list[str] = []
    _cut_dir(root, root, durable, actions)
    return actions


def _cut_dir(root: Path, directory: Path, durable: Durable, actions: list[str]) -> None:
    def rel(p: Path) -> str:
        return str(p.relative_to(root.parent.parent))  # e.g. node-1/kraft-combined-logs/...

    last = durable.dirs.get(_inode(directory.lstat()))
    entries = last.entries if last is not None and last.entries is not None else None
    for child in sorted(directory.iterdir()):
        st = child.lstat()
        is_dir = stat.S_ISDIR(st.st_mode)
        if entries is None or child.name not in entries:
            if last is None or entries is None:
                why = f"{rel(directory)} never fsynced"
            else:
                why = f"not among the entries of {rel(directory)}'s last fsync (pid {last.pid})"
            if is_dir:
                shutil.rmtree(child)
            else:
                child.unlink()
            actions.append(f"removed {rel(child)}{'/' if is_dir else ''} ({why})")
            continue
        if entries[child.name] != st.st_ino:
            actions.append(
                f"note: {rel(child)} is inode {st.st_ino}, {rel(directory)}'s last fsync saw "
                f"inode {entries[child.name]} under that name (a rename not yet durable): kept"
            )
        if is_dir:
            _cut_dir(root, child, durable, actions)
        elif stat.S_ISREG(st.st_mode):
            _cut_file(child, st, durable, actions, rel(child))


def _cut_file(
    path: Path, st: os.stat_result, durable: Durable, actions: list[str], name: str
) -> None:
    sync = durable.files.get(_inode(st))
    size = sync.size if sync is not None and sync.size is not None else 0
    how = f"{sync.op} by pid {sync.pid}" if sync is not None else "never synced"
    if st.st_size > size:
        os.truncate(path, size)
        actions.append(f"cut {name} {st.st_size} -> {size} bytes ({how})")
    elif st.st_size < size:
        actions.append(
            f"note: {name} is {st.st_size} bytes, {size} at its last sync ({how}): a "
            "truncation not yet durable, kept"
        )
