"""Swapping a cleaned segment in for the segments it replaces, crash-safely, and recovery.

A clean writes one new segment for a group of old ones (bases ``b0 < b1 < ... < bk``); it takes
the first one's name, ``b0``. Files, beside the log's segments::

    <b0>.log.cleaned  <b0>.index.cleaned  <b0>.timeindex.cleaned   the new segment, being written
    <b0>.log.swap     <b0>.index.swap     <b0>.timeindex.swap      the new segment, committed
    <bi>.log.replaced <bi>.index.replaced <bi>.timeindex.replaced  old segment bi (i >= 1), set
                                                                   aside until the commit is sure

The protocol (every step is a rename or an unlink; "sync" is an fsync of the directory, which
makes every earlier name change in it durable, in order with what follows):

1. The ``.cleaned`` files are written and each fsynced (the writer, storage.cleaner).
2. Every old segment but the first is renamed to ``.replaced`` (its ``.log`` and its index
   files); sync. (These also make the ``.cleaned`` names durable.)
3. a. ``<b0>.index.cleaned`` and ``<b0>.timeindex.cleaned`` become ``.swap``; sync.
   b. ``<b0>.log.cleaned`` becomes ``<b0>.log.swap``; sync. THE COMMIT POINT: the presence of
      a ``.log.swap`` is what recovery reads as "the new segment won".
4. The ``.replaced`` files are removed.
5. a. The index ``.swap`` files are renamed over ``<b0>.index`` and ``<b0>.timeindex``; sync.
   b. ``<b0>.log.swap`` is renamed over ``<b0>.log``; sync. Done.

Recovery (:func:`recover_swaps`, before the log's segments are loaded) reads the directory:

- if a ``.log.swap`` exists, the clean committed: ``.replaced`` and ``.cleaned`` files are
  removed, the index ``.swap`` files renamed to their final names, sync, then the
  ``.log.swap``, sync: steps 4-5 finished;
- otherwise it did not: ``.cleaned`` files and index ``.swap`` files (step 3a without 3b) are
  removed and every ``.replaced`` file renamed back; sync: the old segments, as they were.

Why this order closes every hole: the old segments bi (i >= 1) are only ever renamed before the
commit and removed after it, so before the commit they can all be restored and after it none
survives; ``b0`` is replaced only after the commit, index files first, the ``.log`` last, so a
``.log.swap`` is present until the very last rename, and its absence with no ``.replaced`` file
means done. The sync between 3a and 3b (and between 5a and 5b) keeps a power cut from making
the ``.log`` rename durable without the index renames before it. Kafka's own recovery instead
deletes the old segments inside [swap base, swap's next offset): a last old segment whose every
batch the clean removed lies past that range and would survive beside the new segment, its
records back from the dead. Here the group is named by the ``.replaced`` files, not guessed
from offsets, so that cannot happen.

The swap runs with the log's lock held (nothing else may rename, delete or truncate the group's
segments meanwhile); the in-memory segments are replaced by the caller afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from storage.durable import Fsync, fsync_path
from storage.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, segment_name

CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
REPLACED_SUFFIX = ".replaced"
_INDEX_SUFFIXES = (INDEX_SUFFIX, TIME_INDEX_SUFFIX)
_SEGMENT_SUFFIXES = (LOG_SUFFIX, *_INDEX_SUFFIXES)

# One step of the swap: a name for tests and logs, and the action.
Step = tuple[str, Callable[[], None]]


def segment_file(directory: Path, base_offset: int, suffix: str, state: str = "") -> Path:
    """``<directory>/<20-digit base><suffix><state>``, e.g. ``...00042.log.cleaned``."""
    return directory / f"{segment_name(base_offset)}{suffix}{state}"


def cleaned_files(directory: Path, base_offset: int) -> tuple[Path, Path, Path]:
    """The (``.log``, ``.index``, ``.timeindex``) ``.cleaned`` paths of a new segment."""
    return (
        segment_file(directory, base_offset, LOG_SUFFIX, CLEANED_SUFFIX),
        segment_file(directory, base_offset, INDEX_SUFFIX, CLEANED_SUFFIX),
        segment_file(directory, base_offset, TIME_INDEX_SUFFIX, CLEANED_SUFFIX),
    )


def discard_cleaned(directory: Path, base_offset: int) -> None:
    """Removes a new segment's ``.cleaned`` files (a clean given up before its swap)."""
    for path in cleaned_files(directory, base_offset):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _rename(source: Path, target: Path, *, required: bool) -> None:
    try:
        os.replace(source, target)
    except FileNotFoundError:
        # An old segment's index files may be missing (they are rebuilt at open); its .log
        # and the new segment's files may not.
        if required:
            raise


def swap_steps(directory: Path, old_bases: Sequence[int], fsync: Fsync | None = None) -> list[Step]:
    """Steps 2-5 of the protocol (module docstring) for the new segment named by
    ``old_bases[0]`` replacing the segments at ``old_bases``; run them in order. Split into
    single renames, unlinks and syncs so a test can stop after any one of them."""
    assert old_bases and list(old_bases) == sorted(set(old_bases)), old_bases
    first = old_bases[0]
    steps: list[Step] = []

    def sync() -> Step:
        return ("sync", partial(fsync_path, directory, fsync))

    for base in old_bases[1:]:
        for suffix in _SEGMENT_SUFFIXES:
            source = segment_file(directory, base, suffix)
            target = segment_file(directory, base, suffix, REPLACED_SUFFIX)
            required = suffix == LOG_SUFFIX
            steps.append(
                (f"set aside {source.name}", partial(_rename, source, target, required=required))
            )
    steps.append(sync())
    for suffix in (*_INDEX_SUFFIXES, LOG_SUFFIX):
        source = segment_file(directory, first, suffix, CLEANED_SUFFIX)
        target = segment_file(directory, first, suffix, SWAP_SUFFIX)
        steps.append((f"commit {source.name}", partial(_rename, source, target, required=True)))
        if suffix == TIME_INDEX_SUFFIX or suffix == LOG_SUFFIX:
            steps.append(sync())
    for base in old_bases[1:]:
        for suffix in _SEGMENT_SUFFIXES:
            path = segment_file(directory, base, suffix, REPLACED_SUFFIX)
            steps.append((f"remove {path.name}", partial(_unlink, path)))
    for suffix in (*_INDEX_SUFFIXES, LOG_SUFFIX):
        source = segment_file(directory, first, suffix, SWAP_SUFFIX)
        target = segment_file(directory, first, suffix)
        steps.append((f"install {source.name}", partial(_rename, source, target, required=True)))
        if suffix == TIME_INDEX_SUFFIX or suffix == LOG_SUFFIX:
            steps.append(sync())
    return steps


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def swap_in(directory: Path, old_bases: Sequence[int], fsync: Fsync | None = None) -> None:
    """Replaces the segments at ``old_bases`` (oldest first, all in ``directory``) by the
    fsynced ``.cleaned`` segment named ``old_bases[0]``: steps 2-5 of the protocol. On return
    the files are in place and durable; the caller then swaps the in-memory segments (and must
    not delete the old segments' files: ``<b0>`` files are the new segment's now). An
    ``OSError`` leaves a state :func:`recover_swaps` resolves (before step 3b: the old
    segments; after: the new one)."""
    for _name, action in swap_steps(directory, old_bases, fsync):
        action()


@dataclass
class SwapRecovery:
    """What :func:`recover_swaps` did, for a log line (all empty: nothing to do)."""

    # "completed": a committed swap finished; "rolled back": an uncommitted one undone.
    outcome: str = ""
    removed: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.removed or self.renamed)

    def describe(self) -> str:
        """One line: the outcome and the files removed and renamed."""
        return (
            f"{self.outcome} an interrupted clean: removed {', '.join(self.removed) or 'nothing'}; "
            f"renamed {', '.join(self.renamed) or 'nothing'}"
        )


def recover_swaps(directory: Path, fsync: Fsync | None = None) -> SwapRecovery:
    """Resolves an interrupted swap in ``directory`` (module docstring): after it, the
    directory holds either the old segments or the new one, with no ``.cleaned``, ``.swap``
    or ``.replaced`` file left. Call it before loading the segments. Idempotent."""
    names = sorted(p.name for p in directory.iterdir())
    cleaned = [n for n in names if n.endswith(CLEANED_SUFFIX)]
    swaps = [n for n in names if n.endswith(SWAP_SUFFIX)]
    replaced = [n for n in names if n.endswith(REPLACED_SUFFIX)]
    result = SwapRecovery()
    if not (cleaned or swaps or replaced):
        return result
    committed = any(n.endswith(LOG_SUFFIX + SWAP_SUFFIX) for n in swaps)
    for name in cleaned:
        _unlink(directory / name)
        result.removed.append(name)
    if committed:
        result.outcome = "completed"
        for name in replaced:
            _unlink(directory / name)
            result.removed.append(name)
        # Index files first, the .log.swap (the commit mark) last, each batch synced.
        index_swaps = [n for n in swaps if not n.endswith(LOG_SUFFIX + SWAP_SUFFIX)]
        log_swaps = [n for n in swaps if n.endswith(LOG_SUFFIX + SWAP_SUFFIX)]
        for group in (index_swaps, log_swaps):
            for name in group:
                final = name[: -len(SWAP_SUFFIX)]
                os.replace(directory / name, directory / final)
                result.renamed.append(f"{name} -> {final}")
            fsync_path(directory, fsync)
    else:
        result.outcome = "rolled back"
        for name in swaps:  # index .swap files of a step 3a whose 3b never came
            _unlink(directory / name)
            result.removed.append(name)
        for name in replaced:
            final = name[: -len(REPLACED_SUFFIX)]
            os.replace(directory / name, directory / final)
            result.renamed.append(f"{name} -> {final}")
        fsync_path(directory, fsync)
    return result
