"""The entries a node applies, as its readers of the metadata log see them.

Most of a node reads the metadata *state* (who leads what now). A few readers want the log
itself, entry by entry: the recent events of ``GET /v1/cluster/events`` (a leader moved, an ISR
shrank, a node took over the quorum). An :class:`EntryListener` gets, in log order:

- :meth:`EntryListener.state_replaced` with a state and its index, when its view starts over:
  when it is added, and when a dump (a snapshot from the leader) replaced the whole state;
  the entries the dump covered are not told one by one (this node never applied them);
- :meth:`EntryListener.entry_applied` with each entry applied after that: its index, the Raft
  term it was appended in, when this node applied it, and its records.

The quorum applies entries on its tick thread from the moment it starts, which on a node is
before the rest of the node exists (the election overlaps the imports) and so before anyone
listens: a restarted node replays its journal then. :class:`EarlyEntries` keeps what was
applied until the first entry listener comes, so that listener sees the replay too.

Pure: no threads, sockets or clocks (the quorum passes the time in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from kraft.records import MetadataRecord
from kraft.state import MetadataState

__all__ = ["AppliedEntry", "EarlyEntries", "EntryListener"]


@dataclass(frozen=True)
class AppliedEntry:
    """One entry this node applied: Raft index and term, wall-clock time of the apply (ms),
    and its records in order."""

    index: int
    term: int
    time_ms: int
    records: tuple[MetadataRecord, ...]


class EntryListener(Protocol):
    """A reader of the applied entries (see the module's docstring). Called on the event loop,
    in log order; both calls must be quick and must not raise."""

    def state_replaced(self, index: int, state: MetadataState) -> None:
        """The view starts over at ``state``, applied up to ``index``; entries after it follow."""

    def entry_applied(self, entry: AppliedEntry) -> None:
        """``entry`` was applied, right after the previous entry or the replaced state."""


@dataclass
class EarlyEntries:
    """What was applied before the first entry listener: a base state and the entries after
    it, at most ``count_max`` of them.

    When more come, the base moves up to the state after the newest entry and the entries are
    dropped (a listener then sees fewer events, never a wrong one: its view still starts from
    a state that matches the entries that follow it).
    """

    count_max: int
    base_index: int = 0
    base_state: MetadataState = field(default_factory=MetadataState)
    entries: list[AppliedEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.count_max > 0, self.count_max

    def replaced(self, index: int, state: MetadataState) -> None:
        """A dump replaced the state: it is the new base (``state`` must not change later)."""
        self.base_index = index
        self.base_state = state
        self.entries.clear()

    def applied(self, entry: AppliedEntry, state_after: MetadataState) -> None:
        """``entry`` was applied, leaving ``state_after`` (copied only if it becomes the base)."""
        if len(self.entries) < self.count_max:
            self.entries.append(entry)
        else:
            self.replaced(entry.index, state_after.copy())

    def replay(self, listener: EntryListener) -> None:
        """Tells ``listener`` the base and every entry kept since, in order."""
        listener.state_replaced(self.base_index, self.base_state)
        for entry in self.entries:
            listener.entry_applied(entry)
