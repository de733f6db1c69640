"""The idempotent producer's state for one partition: Kafka's ProducerStateManager in miniature.

A pure table (no I/O, no clocks, no asyncio). The produce path asks :meth:`ProducerStateTable.check`
before it appends a batch that carries a producer id, appends only on :class:`Append`, and then
calls :meth:`ProducerStateTable.record` with the offsets the batch got. Followers, and a node
opening a log, feed batch headers to :meth:`ProducerStateTable.observe` /
:meth:`ProducerStateTable.rebuild`, so the state survives restart and failover: it is a function
of the batch headers in the log, and nothing else (a snapshot of it stands for the headers
below the snapshot's offset, see Snapshots below).

Theory of operation. Per producer id the table keeps the producer's current epoch and the last
five batches it wrote at that epoch (first and last sequence, first and last offset), as Kafka
keeps ``NUM_BATCHES_TO_RETAIN`` = 5 to match ``max.in.flight.requests.per.connection`` <= 5.
The rules of :meth:`ProducerStateTable.check`, in order (Kafka's ``ProducerAppendInfo``):

1. ``epoch < current epoch``: :class:`InvalidProducerEpoch` (a fenced, older instance).
2. ``epoch == current epoch`` and the batch has the same first and last sequence as one of the
   retained five: :class:`Duplicate`, carrying that batch's original offsets.
3. ``epoch > current epoch`` (a bumped epoch): the batch must start at sequence 0.
4. ``epoch == current epoch``: the batch must start at ``last sequence + 1``, where the
   sequence after 2**31 - 1 is 0 (Kafka's int32 wrap).
5. An unknown producer id: its first batch must start at sequence 0 -- *while the table's
   history is complete*, that is while it has seen every batch from offset 0 on and never
   evicted a producer (for a table loaded from a snapshot, see Snapshots below). Once the log
   start offset is above 0 (retention, a log restarted at a later offset) or a producer has
   been evicted, an unknown id may be one whose state was dropped, so any sequence is
   accepted, as Kafka does since KIP-360 (refusing it would wedge a live producer for ever).
   Kafka itself accepts any sequence from an unknown producer; we are stricter where we can
   tell a new producer from a forgotten one.

Rules 3-5 broken: :class:`OutOfOrderSequence`, carrying the sequence expected.

The log, not the check, is the truth: :meth:`record` and :meth:`observe` never refuse a batch
(a follower copies what its leader wrote). A batch at another epoch than the current one,
larger or (only in a log that was written wrongly) smaller, starts a new window at its epoch,
as Kafka's ``ProducerStateEntry.addBatch`` does.

Snapshots (bounded startup). :meth:`ProducerStateTable.snapshot_entries` gives the table as
Kafka's producer snapshot holds it (:mod:`storage.producer_snapshot`): per producer its epoch
and its LAST batch only. :meth:`ProducerStateTable.load` restores a table from such a snapshot,
after which :meth:`observe` continues with the batch headers from the snapshot's offset on: the
result decides as a table rebuilt from every header for each producer's epoch, next sequence
and last batch. Its window holds fewer batches, so a retry of an older in-flight batch right
after a reload is answered OUT_OF_ORDER_SEQUENCE instead of as a duplicate (safe: nothing is
written twice), as in Kafka. And since Kafka's format cannot say whether a producer was ever
evicted, rule 5 after a load relies on this invariant: a table that evicted a producer while
its log starts at 0 stays full (each new producer evicts another; a truncation that would
remove a whole producer from it is not exact, see :meth:`ProducerStateTable.truncate_to`, so
the caller rebuilds, evicting again if the log still holds too many producers). A snapshot
with fewer than ``max_producers`` producers of a log starting at 0 thus comes from a table
that never evicted, and the loaded table stays strict; a full one is taken as evicted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from storage.batch import NO_SEQUENCE, BatchHeader
from storage.producer_snapshot import ProducerSnapshotEntry

# Kafka's NUM_BATCHES_TO_RETAIN: a client has at most five requests in flight per partition,
# so a retry is always of one of its last five batches.
BATCHES_PER_PRODUCER = 5

# Producers remembered per partition. Every run of a client tool allocates a new producer id,
# so without a bound a long-lived partition's table grows without end (Kafka expires ids after
# producer.id.expiration.ms instead, which needs a clock). One entry with five batches takes
# about 2.0 KB (measured with tracemalloc, timestamps included), so 1,000 producers cost about
# 2 MB a partition, and a snapshot of them 46 KB (storage.producer_snapshot). The evicted
# producer is the one idle longest (smallest last offset): a retry of its batch could no longer
# be recognised (it would be written again), but it is the producer least likely to retry;
# eviction also ends the strict rule for unknown ids (rule 5).
PRODUCERS_PER_PARTITION_MAX = 1_000

SEQUENCE_MAX = 2**31 - 1
EPOCH_MAX = 2**15 - 1
# Kafka's RecordBatch.NO_TIMESTAMP: a batch recorded without its largest timestamp.
NO_TIMESTAMP = -1


def next_sequence(sequence: int) -> int:
    """The sequence after ``sequence``: Kafka's int32 sequences wrap from 2**31 - 1 to 0."""
    return 0 if sequence == SEQUENCE_MAX else sequence + 1


def last_sequence_of(base_sequence: int, record_count: int) -> int:
    """The last sequence of a batch of ``record_count`` records from ``base_sequence``,
    wrapped as Kafka's ``DefaultRecordBatch.incrementSequence``."""
    return (base_sequence + record_count - 1) & SEQUENCE_MAX


# -- decisions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Append:
    """The batch is new and in sequence: append it, then :meth:`ProducerStateTable.record`."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The batch was appended before (a retry): answer with its original offsets, append
    nothing."""

    first_offset: int
    last_offset: int


@dataclass(frozen=True, slots=True)
class OutOfOrderSequence:
    """Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER: a gap, or an old sequence no longer retained."""

    expected_sequence: int
    received_sequence: int
    producer_epoch: int

    @property
    def message(self) -> str:
        return (
            f"out of order sequence number at producer epoch {self.producer_epoch}: "
            f"expected {self.expected_sequence}, received {self.received_sequence}"
        )


@dataclass(frozen=True, slots=True)
class InvalidProducerEpoch:
    """Kafka's INVALID_PRODUCER_EPOCH: a newer epoch of this producer id has written; this one
    is fenced."""

    current_epoch: int
    received_epoch: int

    @property
    def message(self) -> str:
        return (
            f"producer epoch {self.received_epoch} is older than the current epoch "
            f"{self.current_epoch}: the producer is fenced"
        )


Decision = Append | Duplicate | OutOfOrderSequence | InvalidProducerEpoch

APPEND = Append()


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    """One retained batch of a producer (``max_timestamp``: its largest record timestamp, or
    -1 when it was recorded without one; only snapshots and tools read it)."""

    first_sequence: int
    last_sequence: int
    first_offset: int
    last_offset: int
    max_timestamp: int = NO_TIMESTAMP


class _Entry:
    """One producer's state: its epoch and the last few batches it wrote at that epoch."""

    __slots__ = ("epoch", "batches", "has_older")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.batches: deque[BatchMetadata] = deque()
        # True once a batch of this producer left the window (a sixth batch, an epoch change):
        # the window then no longer tells the producer's whole history.
        self.has_older = False

    def add(self, epoch: int, batch: BatchMetadata) -> None:
        if epoch != self.epoch:
            self.has_older = self.has_older or bool(self.batches)
            self.batches.clear()
            self.epoch = epoch
        self.batches.append(batch)
        if len(self.batches) > BATCHES_PER_PRODUCER:
            self.batches.popleft()
            self.has_older = True

    @property
    def last_offset(self) -> int:
        return self.batches[-1].last_offset


@dataclass(frozen=True, slots=True)
class ProducerView:
    """What the table knows of one producer (for tools and tests)."""

    producer_id: int
    producer_epoch: int
    batches: tuple[BatchMetadata, ...]

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence


def _check_fields(producer_id: int, producer_epoch: int, base_sequence: int) -> None:
    if producer_id < 0:
        raise ValueError(f"producer id must be >= 0, got {producer_id}")
    if not 0 <= producer_epoch <= EPOCH_MAX:
        raise ValueError(f"producer epoch must be in [0, {EPOCH_MAX}], got {producer_epoch}")
    if not 0 <= base_sequence <= SEQUENCE_MAX:
        raise ValueError(f"sequence must be in [0, {SEQUENCE_MAX}], got {base_sequence}")


class ProducerStateTable:
    """The idempotent producers of one partition (see the module docstring for the rules).

    ``log_start_offset`` is the log's start offset when the table is made: above 0, the
    history is incomplete from the start (rule 5). ``max_producers`` bounds the table.
    """

    def __init__(
        self, *, log_start_offset: int = 0, max_producers: int = PRODUCERS_PER_PARTITION_MAX
    ) -> None:
        if max_producers < 1:
            raise ValueError(f"max_producers must be >= 1, got {max_producers}")
        self._max_producers = max_producers
        # Insertion order is last-append order, which is last-offset order since batches are
        # recorded in log order: the first key is the producer idle longest.
        self._entries: dict[int, _Entry] = {}
        self._log_start_offset = log_start_offset
        self._history_complete = log_start_offset == 0
        # A producer was evicted (or the table was loaded from a full snapshot, which may
        # have been): the table must stay full while its log starts at 0 (see truncate_to).
        self._evicted = False

    # -- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def history_complete(self) -> bool:
        """True while the table has seen every batch from offset 0 and evicted no producer (or
        was loaded from a snapshot that shows no eviction, see :meth:`load`): an unknown
        producer id is then a new one and must start at sequence 0."""
        return self._history_complete

    def producer(self, producer_id: int) -> ProducerView | None:
        """The state kept for ``producer_id``, or None if the table does not know it."""
        entry = self._entries.get(producer_id)
        if entry is None:
            return None
        return ProducerView(producer_id, entry.epoch, tuple(entry.batches))

    def producer_ids(self) -> list[int]:
        """The known producer ids, the one idle longest first."""
        return list(self._entries)

    def last_data_offsets(self) -> dict[int, int]:
        """Each known producer's last batch's last offset: the batches the log cleaner keeps,
        even emptied, so that a producer's sequence survives compaction (Kafka's
        ``lastRecordsOfActiveProducers``)."""
        return {pid: entry.last_offset for pid, entry in self._entries.items() if entry.batches}

    def check(
        self, producer_id: int, producer_epoch: int, base_sequence: int, record_count: int
    ) -> Decision:
        """Decides what to do with a batch before it is appended; changes nothing.

        Call :meth:`record` after appending on :class:`Append`, with no other append of this
        partition in between. Raises ValueError for fields out of Kafka's ranges (producer id
        < 0, epoch outside int16 >= 0, sequence outside int32 >= 0, record_count < 1).
        """
        _check_fields(producer_id, producer_epoch, base_sequence)
        if record_count < 1:
            raise ValueError(f"a batch holds at least one record, got {record_count}")
        entry = self._entries.get(producer_id)
        if entry is None:
            if base_sequence == 0 or not self._history_complete:
                return APPEND
            return OutOfOrderSequence(0, base_sequence, producer_epoch)
        if producer_epoch < entry.epoch:
            return InvalidProducerEpoch(entry.epoch, producer_epoch)
        if producer_epoch > entry.epoch:
            if base_sequence == 0:
                return APPEND
            return OutOfOrderSequence(0, base_sequence, producer_epoch)
        last_sequence = last_sequence_of(base_sequence, record_count)
        for batch in entry.batches:
            if batch.first_sequence == base_sequence and batch.last_sequence == last_sequence:
                return Duplicate(batch.first_offset, batch.last_offset)
        expected = next_sequence(entry.batches[-1].last_sequence)
        if base_sequence == expected:
            return APPEND
        return OutOfOrderSequence(expected, base_sequence, producer_epoch)

    # -- changing ----------------------------------------------------------------------------

    def record(
        self,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        last_sequence: int,
        first_offset: int,
        last_offset: int,
        *,
        max_timestamp: int = NO_TIMESTAMP,
    ) -> None:
        """Remembers a batch that is now in the log (keeps the last five per producer).

        Never refuses a batch: the log is the truth. Batches must come in log order (each
        ``first_offset`` above every offset recorded before). May evict the producer idle
        longest when the table is full. ``max_timestamp`` (the batch's largest timestamp,
        as the append returned it) only goes into snapshots.
        """
        _check_fields(producer_id, producer_epoch, base_sequence)
        if not 0 <= last_sequence <= SEQUENCE_MAX:
            raise ValueError(f"sequence must be in [0, {SEQUENCE_MAX}], got {last_sequence}")
        if not 0 <= first_offset <= last_offset:
            raise ValueError(f"bad offsets: first {first_offset}, last {last_offset}")
        entry = self._entries.get(producer_id)
        if entry is not None and entry.batches and first_offset <= entry.last_offset:
            raise ValueError(
                f"producer {producer_id}: batch at offset {first_offset} recorded after one "
                f"ending at {entry.last_offset} (batches must be recorded in log order)"
            )
        entry = self._entries.pop(producer_id, None)
        if entry is None:
            entry = _Entry(producer_epoch)
        batch = BatchMetadata(
            base_sequence, last_sequence, first_offset, last_offset, max_timestamp
        )
        entry.add(producer_epoch, batch)
        self._entries[producer_id] = entry
        if len(self._entries) > self._max_producers:
            del self._entries[next(iter(self._entries))]
            self._history_complete = False
            self._evicted = True

    def observe(self, header: BatchHeader) -> None:
        """:meth:`record` for a batch read from (or copied into) the log. Batches without a
        producer id, without a sequence, or control batches (we write no transactions) are
        skipped."""
        if header.producer_id < 0 or header.base_sequence == NO_SEQUENCE or header.is_control:
            return
        self.record(
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.last_sequence,
            header.base_offset,
            header.last_offset,
            max_timestamp=header.max_timestamp,
        )

    def rebuild(self, headers: Iterable[BatchHeader], log_start_offset: int = 0) -> None:
        """Replaces the state with the one given by the log's batch headers, in log order
        (on open, after becoming leader, after a truncation :meth:`truncate_to` could not
        follow). Producers whose last batch lies below ``log_start_offset`` are dropped."""
        self._entries.clear()
        self._log_start_offset = log_start_offset
        self._history_complete = log_start_offset == 0
        self._evicted = False
        for header in headers:
            self.observe(header)
        self.advance_log_start(log_start_offset)

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot_entries(self) -> list[ProducerSnapshotEntry]:
        """The table as Kafka's producer snapshot holds it: per producer (the one idle longest
        first) its epoch and its last batch, with the batch's largest timestamp (-1 if it was
        recorded without one); no transactions (coordinator epoch and transaction first offset
        -1). Take it when the table has recorded every batch below the log end offset, and
        write it at that offset."""
        out: list[ProducerSnapshotEntry] = []
        for pid, entry in self._entries.items():
            last = entry.batches[-1]
            out.append(
                ProducerSnapshotEntry(
                    producer_id=pid,
                    producer_epoch=entry.epoch,
                    last_sequence=last.last_sequence,
                    last_offset=last.last_offset,
                    offset_delta=last.last_offset - last.first_offset,
                    timestamp=last.max_timestamp,
                )
            )
        return out

    def load(
        self,
        entries: Iterable[ProducerSnapshotEntry],
        snapshot_offset: int,
        log_start_offset: int = 0,
    ) -> None:
        """Replaces the state with the one a snapshot taken at ``snapshot_offset`` describes;
        then :meth:`observe` the batch headers from ``max(snapshot_offset, log_start_offset)``
        on, in log order, to bring the table to the log end.

        Each producer gets its epoch and a one-batch window (its last batch, whose first
        sequence is ``last_sequence - offset_delta``, Kafka's reading). Producers whose last
        batch lies below ``log_start_offset`` are dropped, as :meth:`rebuild` drops them;
        entries without a batch (Kafka writes some for transactional producers) are skipped.
        If there are more than ``max_producers``, the ones idle longest are evicted. The
        history counts as complete (rule 5) when the log starts at 0 and the snapshot had
        room for another producer (see the module docstring). Raises ValueError for a batch
        at or past ``snapshot_offset``: the snapshot would describe records it does not cover.
        """
        if snapshot_offset < 0:
            raise ValueError(f"a snapshot offset is >= 0, got {snapshot_offset}")
        batches = [e for e in entries if e.has_batch]
        for e in batches:
            if e.last_offset >= snapshot_offset:
                raise ValueError(
                    f"a snapshot at offset {snapshot_offset} cannot hold producer "
                    f"{e.producer_id}'s batch ending at offset {e.last_offset}"
                )
        batches.sort(key=lambda e: e.last_offset)
        self._entries.clear()
        self._log_start_offset = log_start_offset
        self._evicted = len(batches) >= self._max_producers
        self._history_complete = log_start_offset == 0 and not self._evicted
        for e in batches[-self._max_producers :]:
            if e.last_offset < log_start_offset:
                continue
            entry = _Entry(e.producer_epoch)
            entry.add(
                e.producer_epoch,
                BatchMetadata(
                    e.first_sequence, e.last_sequence, e.first_offset, e.last_offset, e.timestamp
                ),
            )
            # Whatever came before this batch is unknown: a truncation that removes it cannot
            # tell what the producer's state was, and says so (truncate_to returns False).
            entry.has_older = True
            self._entries[e.producer_id] = entry
        if log_start_offset > 0:
            self._history_complete = False

    def advance_log_start(self, log_start_offset: int) -> None:
        """The log start moved (retention, deleted records): producers whose last batch is
        below it are forgotten, as Kafka does, and the history is no longer complete."""
        if log_start_offset <= 0:
            return
        self._log_start_offset = max(self._log_start_offset, log_start_offset)
        self._history_complete = False
        gone = [pid for pid, e in self._entries.items() if e.last_offset < log_start_offset]
        for pid in gone:
            del self._entries[pid]

    def truncate_to(self, offset: int) -> bool:
        """Forgets every batch at or after ``offset`` (a follower truncating its log).

        Returns True when the result is exact: every producer's epoch and last sequence are
        what a :meth:`rebuild` from the truncated log would give, and every retained batch is
        one such a rebuild would retain (the rebuild may retain older ones too; a retry of
        one of those is told OUT_OF_ORDER here instead of DUPLICATE: safe, nothing is written
        twice).
        Returns False when some producer lost every batch the table kept of it but had
        earlier ones, which the table no longer knows (always so for a producer loaded from
        a snapshot), or when a table that evicted a producer, of a log starting at 0, loses a
        whole producer (it must stay full, see the module docstring): the caller must then
        :meth:`rebuild` from the log, or :meth:`load` the latest snapshot at or below
        ``offset`` and observe the headers after it; until it does, such a producer is unknown
        to the table.
        """
        if offset < 0:
            raise ValueError(f"cannot truncate to a negative offset ({offset})")
        exact = True
        stay_full = self._evicted and self._log_start_offset == 0
        for pid in list(self._entries):
            entry = self._entries[pid]
            # A batch holding ``offset`` goes whole, as the log truncates it.
            while entry.batches and entry.batches[-1].last_offset >= offset:
                entry.batches.pop()
            if not entry.batches:
                exact = exact and not entry.has_older and not stay_full
                del self._entries[pid]
        # Keep the idle-longest-first order: truncation may have moved last offsets back.
        ordered = sorted(self._entries.items(), key=lambda item: item[1].last_offset)
        self._entries = dict(ordered)
        return exact
