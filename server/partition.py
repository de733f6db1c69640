"""One partition replica on this node: its log, what the metadata says of it, and its waiters.

A replica's state has one owner, this class: the leader appends through
:meth:`Partition.append_as_leader` (which schedules its own flush and completes when the acks
condition holds), a follower through :meth:`Partition.append_as_follower` and
:meth:`Partition.truncate_to`, and nothing but this class assigns the high watermark.

The high watermark (HW) is the smallest *flushed* offset over the ISR: the leader counts its
own recovery point (what its last group-commit fsync covered), each follower the flushed
offset it reported (a follower fsyncs what it appended before it fetches again). Consumers
only see records below the HW, and an ``acks=all`` produce answers once the HW has passed its
batch, so nothing a client was told is stored can vanish in a power cut of every node.

A topic with ``flush.messages`` above 1 relaxes this the Kafka way: the HW is the smallest log
end offset over the ISR, flushed or not (followers then fetch again without an fsync), and
the log manager fsyncs by ``flush.messages`` and ``flush.ms``. Acknowledged records then survive
kill -9 of every node and, with ``min.insync.replicas`` of 2 or more, the loss of one machine,
but not a power cut of all of them.

Everything here runs on the event loop; the fsync itself runs in the log manager's flush
thread (the :class:`Flusher` a partition is given) and reports back through
:meth:`Partition.advance_high_watermark`. Apart from the waits of ``append_as_leader`` and
``wait_for_high_watermark_above`` the methods are synchronous, so the simulation tier drives
them without an event loop of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from client.protocol import (
    INVALID_PRODUCER_EPOCH,
    INVALID_REQUEST,
    KAFKA_STORAGE_ERROR,
    LEADER_NOT_AVAILABLE,
    NOT_ENOUGH_REPLICAS,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_OUT_OF_RANGE,
    OUT_OF_ORDER_SEQUENCE_NUMBER,
    RECORD_TOO_LARGE,
    REQUEST_TIMED_OUT,
    ApiError,
)
from server.producer_state import (
    Duplicate,
    InvalidProducerEpoch,
    OutOfOrderSequence,
    ProducerStateTable,
    last_sequence_of,
)
from server.topic_metrics import TopicTraffic
from storage.batch import NO_PRODUCER_ID, NewRecord, iter_batches
from storage.batch_check import CheckedBatch
from storage.errors import (
    CorruptRecordError,
    KafkaStorageError,
    RecordTooLargeError,
    UnexpectedAppendOffsetError,
)
from storage.log import AppendInfo
from storage.partition_log import PartitionLog
from storage.producer_snapshot import ProducerSnapshots

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProducerBatch:
    """The idempotent producer fields of one batch."""

    producer_id: int
    producer_epoch: int
    base_sequence: int


def restore_producers(log: PartitionLog, snapshots: ProducerSnapshots) -> ProducerStateTable:
    """The producer state of a log: its latest snapshot at or below the log end, and the batch
    headers after it (all of them when there is no snapshot). Snapshots above the log end
    (recovery cut the tail, or a crash came before their deletion) describe records that are
    gone: they are deleted first. Raises KafkaStorageError if the log cannot be read."""
    snapshots.delete_above(log.log_end_offset)
    table = ProducerStateTable()
    found = snapshots.latest_at_or_below(log.log_end_offset)
    if found is None:
        table.rebuild(log.batch_headers(log.log_start_offset), log.log_start_offset)
        return table
    offset, entries = found
    table.load(entries, offset, log.log_start_offset)
    for header in log.batch_headers(max(offset, log.log_start_offset)):
        table.observe(header)
    return table


@dataclass
class FollowerProgress:
    """What a leader knows of one follower (Kafka's Replica); reset when leadership changes."""

    last_fetch_ms: int
    last_caught_up_ms: int
    last_fetch_leo: int = 0


@dataclass
class LeaderState:
    """What the metadata log says about a partition (kept in step by the node)."""

    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    # Bumped by every change of the partition (leader, ISR, replicas): an ISR change asked
    # on one partition epoch is refused once the metadata has moved past it.
    partition_epoch: int = 0


class Flusher(Protocol):
    """Who fsyncs a partition's log (the log manager's group commit)."""

    def schedule_flush(self, partition: Partition) -> None:
        """Fsyncs the partition's log now or when its flush settings say, then calls
        :meth:`Partition.advance_high_watermark`."""


@dataclass(frozen=True)
class LeaderAppend:
    """What :meth:`Partition.append_as_leader` did with a request's batches."""

    infos: tuple[AppendInfo, ...]  # one per batch appended (or recognised as a retry), in order
    duplicate: bool  # a retried idempotent batch: the offsets are those of its first copy
    # Why the batches after ``infos`` were not appended (those before it stay appended).
    error: ApiError | None = None
    # acks=all: why the appended batches are not known to be committed (the outcome is
    # unknown: they may still be), or None once the high watermark passed them.
    commit_error: ApiError | None = None

    @property
    def offsets(self) -> list[int]:
        return [o for info in self.infos for o in range(info.first_offset, info.last_offset + 1)]


@dataclass(eq=False)  # identity: partitions live in sets (the dirty set of group commit)
class Partition:
    topic: str
    topic_id: str
    index: int
    node_id: int
    log: PartitionLog
    state: LeaderState
    min_insync_replicas: int = 1
    # Who fsyncs this log; None in unit tests that flush by hand.
    flusher: Flusher | None = None
    # What each follower (by node id) reported in its last fetch: the offset up to which it
    # has appended (its fetch offset), and up to which it has fsynced (its recovery point).
    follower_offsets: dict[int, int] = field(default_factory=dict)
    follower_flushed: dict[int, int] = field(default_factory=dict)
    followers: dict[int, FollowerProgress] = field(default_factory=dict)
    # When this node last became the partition's leader (ms), for the ISR lag rule.
    leader_since_ms: int = 0
    # When this leader saw each follower (re)join the replicas within its leader epoch (ms):
    # a fetch state the follower named at or before that time may describe a log it has
    # deleted since (a replica removed and added back), so it counts for nothing (Kafka
    # drops a removed replica's state: Partition.updateAssignmentAndIsr).
    replica_since_ms: dict[int, int] = field(default_factory=dict)
    # Followers this leader asked the controller to add to the ISR, or to keep in it, whose
    # answer has not come back in the metadata yet. The HW counts them (Kafka's maximal ISR):
    # the controller may have added one already, and a record committed without it could be
    # missing from the ISR member the next election picks.
    isr_requested: frozenset[int] = frozenset()
    # Idempotent producers' last batches, kept on followers too (they observe what they
    # copy), so a new leader recognises a retried batch at once. Loaded by whoever opens the
    # log (off the event loop: :func:`restore_producers`), as it needs the log's batch headers.
    producers: ProducerStateTable = field(default_factory=ProducerStateTable)
    # The log directory's producer snapshots (Kafka's <offset>.snapshot files); None for a
    # log with no directory (unit tests over MemoryLog).
    snapshots: ProducerSnapshots | None = None
    # Set when the replica is closed (node stopping, topic deleted): waiters give up at once.
    closed: bool = False
    # partition.metadata was written without fsync: the next flush makes it durable first.
    metadata_unsynced: bool = False
    _hw_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Called by notify(), so the leader's fetch sessions learn which of their partitions have
    # news without a waiter per partition (server/replication.py); set by the replica manager.
    change_listener: Callable[[Partition], None] | None = None
    # The topic's traffic counters (/metrics), set by the replica manager; None in unit tests.
    traffic: TopicTraffic | None = None
    # As a follower: the leader's log end offset in its last fetch answer (-1: none yet at
    # this leader epoch), for the follower lag /metrics reports.
    leader_log_end_offset: int = -1

    def __post_init__(self) -> None:
        # The segment appends went to last: when it changes, the log rolled, and a producer
        # snapshot bounds the next open's replay to the segments after it (Kafka's rule).
        self._segment_base = self.log.active_segment_base_offset
        if self.is_leader and not self.log.offline:
            self._start_epoch()

    def rebuild_producers(self) -> None:
        """Reads the producer state back from the latest snapshot and the headers after it
        (from the whole log when there is no snapshot)."""
        if self.snapshots is None:
            start = self.log.log_start_offset
            self.producers.rebuild(self.log.batch_headers(start), start)
        else:
            self.producers = restore_producers(self.log, self.snapshots)

    def snapshot_producers(self) -> None:
        """Writes the producer state as a snapshot at the log end (clean shutdown, segment
        roll), so the next open replays only what comes after it. Not fsynced: a snapshot
        lost or torn by a power cut only means a longer replay (its CRC tells)."""
        if self.snapshots is not None and not self.log.offline:
            self.snapshots.write(
                self.log.log_end_offset, self.producers.snapshot_entries(), durable=False
            )

    def _snapshot_if_rolled(self) -> None:
        base = self.log.active_segment_base_offset
        if base == self._segment_base:
            return
        self._segment_base = base
        try:
            self.snapshot_producers()
        except KafkaStorageError as e:  # only a longer replay at the next open
            logger.warning("%s: no producer snapshot at the roll: %s", self.name, e)

    def delete_retained_segments(self, now_ms: int) -> int:
        """Retention: deletes old segments by the topic's settings, and forgets what the
        producer state and its snapshots knew below the new log start. Returns how many
        segments went."""
        deleted = self.log.delete_retained_segments(now_ms)
        if deleted:
            start = self.log.log_start_offset
            self.producers.advance_log_start(start)
            if self.snapshots is not None:
                self.snapshots.delete_below(start)
        return deleted

    def _start_epoch(self) -> None:
        # As Kafka does at become-leader: the new epoch starts at the log end, so followers'
        # divergence checks see it before this leader appends anything. An empty log needs no
        # entry (a follower with data then truncates to the leader's end, 0), and skipping it
        # saves a checkpoint write for every partition of a new topic.
        if self.log.log_end_offset > 0:
            self.log.epoch_cache.assign(self.state.leader_epoch, self.log.log_end_offset)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.index}"

    @property
    def is_leader(self) -> bool:
        """Whether the metadata this node has applied names it leader. Only the metadata log
        decides: nothing a request says (a fetch's newer epoch) deposes a leader. A leader whose
        metadata lags may go on acting as one, but commits nothing the ISR it knows has not
        fetched from it, and the members of that ISR that learned of a newer epoch fetch from
        it no more (see ``server/replication.py``)."""
        return self.state.leader == self.node_id

    @property
    def under_min_isr(self) -> bool:
        return len(self.state.isr) < self.min_insync_replicas

    @property
    def flushes_every_record(self) -> bool:
        """Whether records count as replicated only once fsynced (``flush.messages=1``)."""
        return self.log.config.flushes_every_record

    # -- what the metadata says ------------------------------------------------------------------

    def update_state(self, state: LeaderState, now_ms: int) -> bool:
        """Takes what the metadata now says; a new leader epoch starts leadership afresh.
        Returns whether the leader or its epoch changed."""
        if state == self.state:
            return False
        new_epoch = state.leader_epoch != self.state.leader_epoch
        if new_epoch or state.partition_epoch != self.state.partition_epoch:
            # The metadata answered (or moved past) every ISR change asked on the old state:
            # the controller refuses those still in flight (INVALID_UPDATE_VERSION).
            self.isr_requested = frozenset()
        if new_epoch:
            self.follower_offsets.clear()
            self.follower_flushed.clear()
            self.followers.clear()
            self.replica_since_ms.clear()
            self.leader_since_ms = now_ms
            self.leader_log_end_offset = -1
        else:
            self._renew_followers(state, now_ms)
        self.state = state
        if new_epoch and self.is_leader and not self.log.offline:
            self._start_epoch()
        self.advance_high_watermark()  # the ISR may have changed, and the HW with it
        self.notify()
        return new_epoch

    def _renew_followers(self, state: LeaderState, now_ms: int) -> None:
        """Within a leader epoch: forgets what this leader knew of the followers that left
        the replicas, and of those that (may have) joined them again, whose logs may be new.

        A removed replica's broker deletes its log; added back, it starts from an empty one,
        while its last report here (and the fetch state its session holds) still says it is
        caught up. So a joining follower counts from its first fetch state named after this
        leader saw it join (``replica_since_ms``). When the partition epoch jumped (changes
        applied together, say a removal and the re-adding), the followers outside the ISR
        are treated as joining: one of them may have left and come back unseen."""
        old = self.state
        if state.replicas == old.replicas and state.partition_epoch <= old.partition_epoch + 1:
            return
        renewed = {r for r in state.replicas if r not in old.replicas}
        if state.partition_epoch > old.partition_epoch + 1:
            renewed |= {r for r in state.replicas if r not in state.isr}
        renewed.discard(self.node_id)
        for r in renewed:
            self.replica_since_ms[r] = now_ms
        gone = {
            r
            for r in (*self.followers, *self.follower_offsets, *self.replica_since_ms)
            if r not in state.replicas
        }
        for r in renewed | gone:
            self.followers.pop(r, None)
            self.follower_offsets.pop(r, None)
            self.follower_flushed.pop(r, None)
        for r in gone:
            self.replica_since_ms.pop(r, None)

    def counts_fetch_state(self, replica: int, named_ms: int) -> bool:
        """Whether a fetch state ``replica`` named at ``named_ms`` describes its log as it is
        now: the follower is a replica and named it after this leader saw it join."""
        if replica not in self.state.replicas:
            return False
        since = self.replica_since_ms.get(replica)
        return since is None or named_ms > since

    def follower_since_ms(self, replica: int) -> int:
        """Since when ``replica`` has had to keep up here, for the ISR lag rule when it has
        not fetched yet: since this node led, or since it joined the replicas, if later."""
        return max(self.leader_since_ms, self.replica_since_ms.get(replica, self.leader_since_ms))

    def isr_change_requested(self, isr: tuple[int, ...]) -> None:
        """This leader asked the controller for ``isr``: its members count in the HW from
        now on, until the metadata shows a new partition epoch (see ``isr_requested``)."""
        self.isr_requested |= frozenset(isr)

    def isr_change_refused(self) -> None:
        """The controller refused the change for a reason of its own (a fenced broker, an
        invalid ISR): it never happened, and the metadata will not answer it."""
        self.isr_requested = frozenset()
        self.advance_high_watermark()

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """The ISR the HW counts: the metadata's, and the members of changes in flight."""
        if not self.isr_requested:
            return self.state.isr
        # Never a broker that is no longer a replica (its request predates its removal).
        replicas = self.state.replicas
        extra = sorted(r for r in self.isr_requested if r not in self.state.isr and r in replicas)
        return self.state.isr + tuple(extra)

    def leader_epoch_start_offset(self) -> int:
        """Where this leader's epoch starts in the log (its log end if it appended nothing)."""
        entries = self.log.epoch_cache.entries
        if entries and entries[-1][0] == self.state.leader_epoch:
            return entries[-1][1]
        return self.log.log_end_offset

    # -- the high watermark ----------------------------------------------------------------------

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    def restore_high_watermark(self, offset: int) -> None:
        """At open: the high watermark of the checkpoint file (capped at the log end)."""
        self.log.update_high_watermark(offset)

    def follower_reported(self, replica: int, fetch_offset: int, flushed_offset: int) -> None:
        """A follower's fetch told what it has appended and fsynced; the HW may move."""
        self.follower_offsets[replica] = fetch_offset
        self.follower_flushed[replica] = min(flushed_offset, fetch_offset)
        self.advance_high_watermark()

    def advance_high_watermark(self) -> None:
        """Recomputes the leader's HW after a flush, an append or a follower's report, and
        wakes waiters if it moved. Judged by this leader's config alone: a follower that has
        not applied a config change yet still reports what it fsynced."""
        if not self.is_leader:
            return
        if self.flushes_every_record:
            own, followers = self.log.recovery_point, self.follower_flushed
        else:
            own, followers = self.log.log_end_offset, self.follower_offsets
        offsets = [own]
        for replica in self.maximal_isr:
            if replica != self.node_id:
                offsets.append(followers.get(replica, self.log.log_start_offset))
        new_hw = min(offsets)
        if new_hw > self.log.high_watermark:
            self.log.update_high_watermark(new_hw)
            self.notify()

    def changed(self) -> Coroutine[Any, Any, bool]:
        """Waits for the next notify (an append, a HW move, a state change)."""
        return self._hw_changed.wait()

    def notify(self) -> None:
        """Wakes every waiter (HW moved, leadership changed, partition removed)."""
        self._hw_changed.set()
        self._hw_changed = asyncio.Event()
        if self.change_listener is not None:
            self.change_listener(self)

    async def wait_for_high_watermark_above(self, offset: int, timeout_s: float) -> bool:
        """Waits until the HW is above ``offset`` (so ``offset`` is committed) or the timeout.

        Returns whether it is. Also returns early, False, if this node stops leading.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.log.high_watermark <= offset:
            if self.acks_all_done(offset):
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            event = self._hw_changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return self.log.high_watermark > offset
        return True

    # -- errors ----------------------------------------------------------------------------------

    def storage_error(self) -> ApiError | None:
        """The error a client gets while the log is offline, else None."""
        error = self.log.offline
        if error is None:
            return None
        return ApiError(
            KAFKA_STORAGE_ERROR,
            f"partition {self.name} is offline: {error}",
            {"file": error.path, "position": error.position},
        )

    def out_of_range_error(self, offset: int) -> ApiError:
        """OFFSET_OUT_OF_RANGE for a fetch at ``offset``, with where the records are."""
        return ApiError(
            OFFSET_OUT_OF_RANGE,
            f"offset {offset} is out of range for {self.name}: records are at "
            f"[{self.log.log_start_offset}, {self.high_watermark})",
            {"log_start_offset": self.log.log_start_offset, "high_watermark": self.high_watermark},
        )

    def raise_storage_error(self) -> NoReturn:
        """Called where the log just raised KafkaStorageError (which took it offline)."""
        error = self.storage_error()
        assert error is not None, "a storage error marks the log offline"
        raise error

    def close(self) -> None:
        self.closed = True
        self.notify()

    def check_leader(self, leader_url: str | None) -> None:
        """Raises unless this node leads the partition (307 to the leader, or 503)."""
        offline = self.storage_error()
        if offline:
            raise offline
        if self.is_leader:
            return
        if self.state.leader < 0 or leader_url is None:
            raise ApiError(
                LEADER_NOT_AVAILABLE,
                f"partition {self.name} has no leader right now; retry shortly",
                {"retry_after_s": 1},
            )
        raise ApiError(
            NOT_LEADER_OR_FOLLOWER,
            f"node {self.node_id} does not lead {self.name}; node {self.state.leader} does",
            {
                "leader_id": self.state.leader,
                "leader_epoch": self.state.leader_epoch,
                "leader_url": leader_url,
            },
        )

    # -- the leader's append ---------------------------------------------------------------------

    async def append_as_leader(
        self,
        batches: Sequence[Sequence[NewRecord]],
        acks: str,
        producer: ProducerBatch | None = None,
        timeout_s: float = 0.0,
    ) -> LeaderAppend:
        """Appends a request's batches as leader, schedules their flush, and completes when
        the acks condition holds: at once for ``acks=0`` and ``1``, once the high watermark
        passed the last of them for ``all`` (else ``commit_error`` says why not, within
        ``timeout_s``).

        With ``producer``, each batch continues the sequence of the one before, and a retried
        batch is recognised (``duplicate``). Raises ApiError when the first batch cannot be
        appended (not the leader, ``min.insync.replicas``, a sequence gap, a storage error);
        a later batch's failure is reported in ``error`` with the earlier ones kept.
        """
        return await self._acks(self.append_now(batches, acks, producer), acks, timeout_s)

    async def append_batch_as_leader(
        self, batch: CheckedBatch, acks: str, timeout_s: float = 0.0
    ) -> LeaderAppend:
        """:meth:`append_as_leader` for one batch a producer built (a binary produce, checked
        by :func:`storage.batch_check.check_produce_batch`): its bytes are stored as they came,
        with this leader's base offset and epoch stamped on them. Its header's producer id,
        epoch and base sequence drive the idempotent producer's checks (a producer id of -1:
        none). Raises ApiError as :meth:`append_as_leader` does, and RECORD_TOO_LARGE above
        ``max.message.bytes``."""
        return await self._acks(self.append_batch_now(batch, acks), acks, timeout_s)

    async def _acks(self, result: LeaderAppend, acks: str, timeout_s: float) -> LeaderAppend:
        """Completes an append when the acks condition holds (see :meth:`append_as_leader`)."""
        if acks != "all":
            return result
        last = result.infos[-1].last_offset
        await self.wait_for_high_watermark_above(last, timeout_s)
        return dataclasses.replace(result, commit_error=self.acks_all_error(last))

    def acks_all_done(self, last_offset: int) -> bool:
        """Whether an ``acks=all`` wait for ``last_offset`` is over: the HW passed it, or this
        replica can no longer commit it (closed, not leading, offline, below
        ``min.insync.replicas``)."""
        return (
            self.high_watermark > last_offset
            or self.closed
            or not self.is_leader
            or self.log.offline is not None
            or self.under_min_isr
        )

    def acks_all_error(self, last_offset: int) -> ApiError | None:
        """When an ``acks=all`` wait is over (or timed out): None if the records count as
        acknowledged, else why not. Committed is not enough: the ISR shrinking below
        ``min.insync.replicas`` is what lets the HW pass a record a lagging follower never
        fetched, and then the promise of that many copies is broken (Kafka's
        NOT_ENOUGH_REPLICAS_AFTER_APPEND)."""
        if self.high_watermark > last_offset and not self.under_min_isr:
            return None
        return self.not_committed_error()

    def append_now(
        self,
        batches: Sequence[Sequence[NewRecord]],
        acks: str,
        producer: ProducerBatch | None = None,
    ) -> LeaderAppend:
        """The synchronous half of :meth:`append_as_leader`: appends and schedules the
        flush, without waiting for the commit (no await: nothing else appends meanwhile)."""
        infos: list[AppendInfo] = []
        duplicate = fresh = False
        sequence_delta = 0
        error: ApiError | None = None
        for records in batches:
            try:
                if producer is None:
                    info, again = self._append(records, acks, None), False
                else:
                    # Each batch of the request continues the sequence of the one before.
                    this = dataclasses.replace(
                        producer,
                        base_sequence=(producer.base_sequence + sequence_delta) & 0x7FFFFFFF,
                    )
                    info, again = self._append_idempotent(
                        this, len(records), functools.partial(self._append, records, acks, this)
                    )
                    duplicate = duplicate or again
                    sequence_delta += len(records)
            except ApiError as e:
                if not infos:
                    raise
                error = e
                break
            infos.append(info)
            fresh = fresh or not again
        if fresh:
            self._appended(infos)
        return LeaderAppend(tuple(infos), duplicate, error)

    def append_batch_now(self, batch: CheckedBatch, acks: str) -> LeaderAppend:
        """The synchronous half of :meth:`append_batch_as_leader` (no await: nothing else
        appends meanwhile, so the base offset stamped is the log end's)."""
        header = batch.header
        if header.producer_id == NO_PRODUCER_ID:
            info, again = self._append_checked(batch, acks), False
        else:
            producer = ProducerBatch(
                header.producer_id, header.producer_epoch, header.base_sequence
            )
            info, again = self._append_idempotent(
                producer, header.record_count, lambda: self._append_checked(batch, acks)
            )
        if not again:
            self._appended((info,))
        return LeaderAppend((info,), again)

    def _appended(self, infos: Sequence[AppendInfo]) -> None:
        """After a leader append of ``infos``: a producer snapshot if the log rolled, the HW,
        the flush, the topic's traffic counters."""
        if self.traffic is not None:
            self.traffic.appended(infos)
        self._snapshot_if_rolled()
        if not self.flushes_every_record:
            self.advance_high_watermark()  # unflushed records count: the ISR may have them
        if self.flusher is not None:
            self.flusher.schedule_flush(self)

    def _append_idempotent(
        self, producer: ProducerBatch, record_count: int, append: Callable[[], AppendInfo]
    ) -> tuple[AppendInfo, bool]:
        """Appends one batch of an idempotent producer with ``append`` (which refuses or
        appends it, see :meth:`_append` and :meth:`_append_checked`); returns its offsets and
        whether it was a duplicate (a retry: then nothing is appended and the offsets are the
        first copy's). The JSON and the binary produce share it.

        Raises OUT_OF_ORDER_SEQUENCE_NUMBER (with the expected sequence) for a gap, and
        INVALID_PRODUCER_EPOCH for a fenced producer; nothing is appended then.
        """
        try:
            decision = self.producers.check(
                producer.producer_id, producer.producer_epoch, producer.base_sequence, record_count
            )
        except ValueError as e:
            raise ApiError(INVALID_REQUEST, str(e)) from None
        if isinstance(decision, Duplicate):
            return AppendInfo(decision.first_offset, decision.last_offset, -1, 0), True
        if isinstance(decision, OutOfOrderSequence):
            raise ApiError(
                OUT_OF_ORDER_SEQUENCE_NUMBER,
                decision.message,
                {"expected_sequence": decision.expected_sequence},
            )
        if isinstance(decision, InvalidProducerEpoch):
            raise ApiError(INVALID_PRODUCER_EPOCH, decision.message)
        info = append()
        self.producers.record(
            producer.producer_id,
            producer.producer_epoch,
            producer.base_sequence,
            last_sequence_of(producer.base_sequence, record_count),
            info.first_offset,
            info.last_offset,
            max_timestamp=info.max_timestamp,
        )
        return info, False

    def _append(
        self, records: Sequence[NewRecord], acks: str, producer: ProducerBatch | None
    ) -> AppendInfo:
        """Appends one batch as leader; refuses ``acks=all`` below ``min.insync.replicas``."""
        self._check_min_isr(acks)
        try:
            if producer is None:
                info = self.log.append_as_leader(records, self.state.leader_epoch)
            else:
                info = self.log.append_as_leader(
                    records,
                    self.state.leader_epoch,
                    producer_id=producer.producer_id,
                    producer_epoch=producer.producer_epoch,
                    base_sequence=producer.base_sequence,
                )
            self.notify()  # followers' long polls
            return info
        except RecordTooLargeError as e:  # the produce plan cuts batches to fit: a backstop
            raise ApiError(RECORD_TOO_LARGE, str(e)) from None
        except KafkaStorageError:
            self.raise_storage_error()

    def _append_checked(self, batch: CheckedBatch, acks: str) -> AppendInfo:
        """Appends a checked producer batch as leader, stamped at the log end with this
        leader's epoch; refuses it as :meth:`_append` does, and above ``max.message.bytes``."""
        self._check_min_isr(acks)
        limit = self.log.config.max_message_bytes
        if batch.size > limit:
            raise ApiError(
                RECORD_TOO_LARGE,
                f"the batch of {batch.size} bytes is larger than the topic's max.message.bytes "
                f"({limit})",
            )
        data = batch.stamped(self.log.log_end_offset, self.state.leader_epoch)
        try:
            info = self.log.append_batches(data)
        except KafkaStorageError:
            self.raise_storage_error()
        self.notify()  # followers' long polls
        return info

    def _check_min_isr(self, acks: str) -> None:
        if acks == "all" and self.under_min_isr:
            raise ApiError(
                NOT_ENOUGH_REPLICAS,
                f"partition {self.name} has {len(self.state.isr)} in-sync replicas, "
                f"min.insync.replicas is {self.min_insync_replicas}",
                {"retry_after_s": 1},
            )

    def not_committed_error(self) -> ApiError:
        """Why an acks=all append did not commit; its outcome is unknown."""
        error = self.storage_error()
        if error is not None:
            return error
        if self.is_leader and self.under_min_isr:
            return ApiError(
                NOT_ENOUGH_REPLICAS,
                f"the ISR of {self.name} shrank below min.insync.replicas "
                f"({self.min_insync_replicas}) before the records were committed",
                {"retry_after_s": 1},
            )
        return ApiError(
            REQUEST_TIMED_OUT,
            f"the records for {self.name} were appended but not committed "
            + ("in time" if self.is_leader else "before this node lost leadership")
            + "; the outcome is unknown",
        )

    def sent_to_client(self, records: int, size_bytes: int) -> None:
        """Counts a fetch answer to a client (/metrics: records and bytes out)."""
        if self.traffic is not None:
            self.traffic.sent(records, size_bytes)

    # -- the follower's side ---------------------------------------------------------------------

    def append_as_follower(self, data: bytes, leader_high_watermark: int) -> bool:
        """Appends the leader's batch bytes unchanged (so replicas hold the same byte stream),
        tracks their producers, and takes the leader's high watermark, capped at this log's
        end. Returns whether bytes were appended. Bytes the log refuses are logged and
        dropped: the next fetch asks for them again."""
        appended = False
        if data:
            try:
                self.log.append_batches(data)
                appended = True
                for _position, header in iter_batches(data, verify=False):
                    self.producers.observe(header)
            except (CorruptRecordError, UnexpectedAppendOffsetError) as e:
                logger.warning("%s: the leader's bytes were refused: %s", self.name, e)
            except KafkaStorageError as e:
                logger.error("%s: append failed, the replica is offline: %s", self.name, e)
                return False
        self.log.update_high_watermark(min(leader_high_watermark, self.log.log_end_offset))
        if appended:
            self._snapshot_if_rolled()
            self.notify()
            if not self.flushes_every_record and self.flusher is not None:
                # flush.messages above 1: fsync by the topic's settings, not before the next
                # fetch (the fetcher fsyncs durable topics itself before it reports).
                self.flusher.schedule_flush(self)
        return appended

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """A follower behind its leader's log start: the log restarts there, empty (see
        ``Log.truncate_fully_and_start_at``), and the producer state and its snapshots, which
        described the records that went, start over with it."""
        self.log.truncate_fully_and_start_at(offset)
        self._segment_base = self.log.active_segment_base_offset
        if self.snapshots is not None:
            self.snapshots.delete_all()
        self.producers.rebuild((), offset)

    def truncate_to(self, offset: int) -> None:
        """Follower truncation: the log, its epochs, and the producer state that described it
        (snapshots above the new log end go too)."""
        self.log.truncate_to(offset)
        if self.snapshots is not None:
            self.snapshots.delete_above(self.log.log_end_offset)
        if not self.producers.truncate_to(self.log.log_end_offset):
            self.rebuild_producers()
