"""A partition's leader epoch cache: Kafka's ``LeaderEpochFileCache``.

The cache maps each leader epoch to the first offset written in it, ascending in both. A
leader answers a follower's "where does my epoch end?" from it (KIP-101/279), and a follower
truncates its log to that answer instead of to the high watermark, so a log never keeps
records a later leader did not have.

It is persisted in the partition's ``leader-epoch-checkpoint`` (layout in
:mod:`storage.checkpoints`), rewritten atomically on every change. The rules are Kafka's,
method by method; where they may surprise, the docstring says so.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path

from storage.checkpoints import LeaderEpochCheckpointFile

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class LeaderEpochCache:
    """(epoch, start offset) entries, strictly ascending in both, optionally backed by a file.

    Not thread-safe: the owner (the partition's log) serialises calls.
    """

    def __init__(self, checkpoint_path: str | os.PathLike[str] | None) -> None:
        """Loads the checkpoint if there is one; ``None`` keeps the cache in memory only.

        Entries are loaded through :meth:`assign`'s rule, as Kafka does, so a file whose
        entries are not monotonic loads as the consistent suffix that rule leaves (the file
        itself is rewritten on the next change). A file that does not parse raises
        :class:`~storage.errors.CorruptCheckpointError`.
        """
        self._file = (
            LeaderEpochCheckpointFile(Path(checkpoint_path))
            if checkpoint_path is not None
            else None
        )
        self._epochs: list[int] = []
        self._starts: list[int] = []
        if self._file is not None:
            for epoch, start_offset in self._file.read():
                self._assign(epoch, start_offset)

    # -- reading ---------------------------------------------------------------------------

    @property
    def entries(self) -> list[tuple[int, int]]:
        """A copy of the (epoch, start offset) entries, ascending."""
        return list(zip(self._epochs, self._starts, strict=True))

    @property
    def latest_epoch(self) -> int | None:
        """The epoch of the last entry (the one being written to), or None if empty."""
        return self._epochs[-1] if self._epochs else None

    @property
    def latest_entry(self) -> tuple[int, int] | None:
        return (self._epochs[-1], self._starts[-1]) if self._epochs else None

    @property
    def earliest_entry(self) -> tuple[int, int] | None:
        return (self._epochs[0], self._starts[0]) if self._epochs else None

    def __len__(self) -> int:
        return len(self._epochs)

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """Kafka's ``endOffsetFor``: (the largest epoch <= ``epoch``, the offset where it ends).

        - ``epoch`` is the latest epoch: (epoch, ``log_end_offset``): it has not ended.
        - Otherwise the end is the start offset of the first epoch above ``epoch``, paired with
          the largest known epoch at or below ``epoch``.
        - ``epoch`` is below every known epoch (the log start moved past it): (``epoch``, start
          offset of the first entry). This is Kafka 2.0+ (KIP-279) code; Kafka's docstring
          still says UNDEFINED, which was the 1.x behaviour. The follower truncates to that
          offset, which is where the leader's log now begins.
        - The cache is empty, ``epoch`` is above every known epoch, or ``epoch`` is -1:
          (-1, -1), Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET.
        """
        if epoch == UNDEFINED_EPOCH or not self._epochs:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if epoch == self._epochs[-1]:
            return epoch, log_end_offset
        higher = bisect.bisect_right(self._epochs, epoch)  # first index with epoch > requested
        if higher == len(self._epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            return epoch, self._starts[0]
        return self._epochs[higher - 1], self._starts[higher]

    # -- changing --------------------------------------------------------------------------

    def assign(self, epoch: int, start_offset: int) -> None:
        """Records that ``epoch`` starts at ``start_offset`` (Kafka's ``assign``).

        - The same epoch as the latest, at or after its start offset: nothing changes (every
          batch appended in the current epoch calls this).
        - Otherwise every entry at the end that conflicts with the new one is dropped, i.e.
          each whose epoch is >= ``epoch`` or whose start offset is >= ``start_offset``, and the
          new entry is appended. So a lower epoch, or the latest epoch at a lower offset,
          replaces the entries it conflicts with rather than being refused: that is Kafka's
          rule, and it keeps the cache consistent with the log that was just written.

        Persists the file (atomically) when the entries change. Raises ``ValueError`` for a
        negative epoch or offset.
        """
        if self._assign(epoch, start_offset):
            self._flush()

    def truncate_from_end(self, end_offset: int) -> None:
        """Drops every entry whose start offset is >= ``end_offset`` (the log was truncated
        to ``end_offset``). Does nothing for a negative ``end_offset``."""
        if end_offset < 0 or not self._starts or self._starts[-1] < end_offset:
            return
        keep = bisect.bisect_left(self._starts, end_offset)
        del self._epochs[keep:]
        del self._starts[keep:]
        self._flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """Forgets offsets below ``start_offset`` (the log start moved forward).

        Entries starting at or below ``start_offset`` are dropped, and the last of them (the
        epoch that covers ``start_offset``) is kept with its start moved to ``start_offset``;
        an entry starting exactly there is kept as is (Kafka's ``truncateFromStart``).
        """
        covering = bisect.bisect_right(self._starts, start_offset)  # entries starting <= it
        if covering == 0:
            return
        epoch = self._epochs[covering - 1]
        del self._epochs[:covering]
        del self._starts[:covering]
        self._epochs.insert(0, epoch)
        self._starts.insert(0, start_offset)
        self._flush()

    def clear(self) -> None:
        """Drops every entry and persists the empty cache."""
        self._epochs.clear()
        self._starts.clear()
        self._flush()

    # -- internals -------------------------------------------------------------------------

    def _assign(self, epoch: int, start_offset: int) -> bool:
        if epoch < 0 or start_offset < 0:
            raise ValueError(
                f"invalid leader epoch entry: epoch {epoch}, start offset {start_offset}"
            )
        if self._epochs and epoch == self._epochs[-1] and start_offset >= self._starts[-1]:
            return False
        while self._epochs and (self._epochs[-1] >= epoch or self._starts[-1] >= start_offset):
            self._epochs.pop()
            self._starts.pop()
        self._epochs.append(epoch)
        self._starts.append(start_offset)
        return True

    def _flush(self) -> None:
        if self._file is not None:
            self._file.write(self.entries)
