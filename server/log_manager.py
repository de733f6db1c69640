"""The partition logs of one log directory, and the background work they need.

- Opening: ``<log dir>/<topic>-<partition>/`` with its ``partition.metadata`` (the topic id, so
  a directory left by a deleted topic of the same name is never mistaken for the new one), at
  the recovery point and log start offset of the checkpoint files. Opening has two halves:
  :meth:`LogManager.load_replica` does the I/O (recovery, the producer state) and may run in
  a worker thread; :meth:`LogManager.add_replica` joins the result on the event loop.
- A new partition's ``partition.metadata`` is written by its first flush, before any of its
  data is fsynced (Kafka too only records the topic id when it creates a log, and writes the
  file from its flush, ``maybeFlushMetadataFile``): creating files is most of what opening a
  new partition costs, and a node creating thousands of them saves one file in four. A
  directory without the file and without a byte of data is therefore adopted as it is; one
  with data and no file (or a file naming another topic) is a deleted namesake's, removed.
- Group commit: a partition's append calls :meth:`LogManager.schedule_flush` (the partition's
  ``Flusher``), which marks it dirty; one flush task fsyncs every dirty log in a worker
  thread (one fsync per file covers everything appended meanwhile) and then lets each
  partition move its high watermark.
- Topics with ``flush.messages`` above 1 (Kafka's relaxed durability) are not fsynced after
  every append: their partitions become dirty once ``flush.messages`` records are unflushed,
  or once the oldest unflushed record is ``flush.ms`` old (a timer task watches that).
- Checkpoints: ``recovery-point-offset-checkpoint``, ``log-start-offset-checkpoint`` and
  ``replication-offset-checkpoint`` (the HW) are rewritten every few seconds when they changed,
  and at shutdown. A partition that is not open (not yet, or offline) keeps the values it had:
  losing a recovery point would make the next start re-read, and cut, data below it. Each log
  says when one of its three offsets moved (``Log.on_offsets_changed``), so the periodic check
  reads only those partitions: a node holding 10,000 idle partitions does no per-partition
  work to find that nothing changed. ``log-start-offset-checkpoint`` names a log only when its
  log start offset is above its first segment's base offset (Kafka's
  ``LogManager.checkpointLogStartOffsetsInDir``: otherwise the segments say it).
  ``cleaner-offset-checkpoint`` is created empty at start when missing, as Kafka's
  ``CheckpointFile`` does (the log cleaner writes it after a clean).
- Clean shutdown (Kafka's ``CleanShutdownFileHandler`` and ``LogManager.loadLogs``/``shutdown``):
  a start that finds ``.kafka_cleanshutdown`` removes it (durably, before any log is touched)
  and opens every log of this run without re-reading it, trusting its recovery point and
  index files; a start without it recovers each log from its recovery point. :meth:`close`
  writes the file last, after every log was flushed, sealed and closed and the checkpoints
  written, and only when every partition directory it may vouch for was opened (recovered)
  in this run or was clean at start, none failed, and no log went offline.
- Retention: old segments are deleted every ``log.retention.check.interval.ms``.
- Compaction: the log cleaner (:mod:`server.log_cleaner`) cleans the compacted logs in its own
  threads and keeps ``cleaner-offset-checkpoint``.
- Deletion: a deleted partition's directory is renamed ``<name>.<id>-delete`` (as Kafka does),
  the rename made durable, and then removed; leftovers of a crash mid-delete go at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server import limits
from server.clock import SYSTEM_CLOCK, Clock
from server.config import CleanerSettings
from server.log_cleaner import LogCleaner
from server.partition import LeaderState, Partition, restore_producers
from server.producer_state import ProducerStateTable
from server.tasks import supervised
from storage.checkpoints import CleanShutdownFile, OffsetCheckpointFile, PartitionMetadataFile
from storage.cleaner import CLEANER_CHECKPOINT_FILE
from storage.durable import fsync_dir, fsync_file
from storage.errors import CorruptCheckpointError, KafkaStorageError
from storage.log import Log
from storage.log_config import LogConfig
from storage.producer_snapshot import ProducerSnapshots

log = logging.getLogger(__name__)

RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
LOG_START_FILE = "log-start-offset-checkpoint"
HW_FILE = "replication-offset-checkpoint"
PARTITION_METADATA_FILE = "partition.metadata"
_PARTITION_DIR = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+)-(?P<partition>\d+)$")
_DELETED_DIR = re.compile(r"^[A-Za-z0-9._-]+-\d+\.[0-9a-f]{32}-delete$")

# The flush timer's longest sleep (flush.ms defaults to Kafka's "never", 2^63 - 1 ms).
_IDLE_WAIT_S = 3600.0

Key = tuple[str, int]
Offsets = tuple[dict[Key, int], dict[Key, int], dict[Key, int]]


@dataclass(frozen=True)
class LoadedReplica:
    """A replica's log opened off the event loop, waiting to join the node's partitions."""

    topic: str
    topic_id: str
    index: int
    log: Log
    producers: ProducerStateTable
    snapshots: ProducerSnapshots
    high_watermark: int | None  # from the checkpoint file, if it has one
    replaced_namesake: bool  # a deleted namesake's directory was removed to make room
    metadata_synced: bool = False  # partition.metadata made durable while opening


class LogManager:
    def __init__(
        self,
        log_dir: Path,
        node_id: int,
        clock: Clock = SYSTEM_CLOCK,
        cleaner: CleanerSettings | None = None,
    ) -> None:
        """Reads the checkpoint files (raising CorruptCheckpointError for a damaged one)."""
        self.log_dir = log_dir
        self.node_id = node_id
        self._clock = clock
        self.partitions: dict[Key, Partition] = {}
        # Partitions this node should host but could not open, with the reason.
        self.failed: dict[Key, str] = {}
        # Indexes of self.partitions and self.failed by topic, so that reconciling one topic
        # costs what that topic has, not what the node has.
        self._by_topic: dict[str, set[int]] = {}
        self._names: dict[str, str] = {}  # topic id -> name, of the partitions open here
        self._files = (
            OffsetCheckpointFile(log_dir / RECOVERY_POINT_FILE),
            OffsetCheckpointFile(log_dir / LOG_START_FILE),
            OffsetCheckpointFile(log_dir / HW_FILE),
        )
        # Before anything of a log is touched: whether the last run ended cleanly. The file
        # goes at once, so a crash of this run is never taken for a clean shutdown.
        self._clean_shutdown_file = CleanShutdownFile(log_dir)
        self.had_clean_shutdown = log_dir.is_dir() and self._clean_shutdown_file.exists()
        if self.had_clean_shutdown:
            epoch = self._clean_shutdown_file.read_broker_epoch()
            self._clean_shutdown_file.delete()
            log.info(
                "%s: clean shutdown file found (broker epoch %s): logs open without recovery",
                log_dir,
                epoch,
            )
        if log_dir.is_dir():
            # Kafka's LogCleanerManager creates it empty at start, and it stays so until a log
            # is cleaned. (The other three are written by the first checkpoint, or at close.)
            OffsetCheckpointFile(log_dir / CLEANER_CHECKPOINT_FILE).create_if_missing()
        # The partition directories this run found unclean and has not opened (recovered)
        # yet: a clean shutdown file may vouch for a directory only once it has been.
        self._unrecovered: set[Key] = set() if self.had_clean_shutdown else set(self.on_disk())
        self._unrecovered_lock = threading.Lock()  # load_replica runs in a worker thread
        # Logs load_replica opened that add_replica has not taken yet (under the same lock):
        # a stop while the open thread runs drops them, and close must still seal them, and
        # keep the clean shutdown file from vouching for what their opening wrote unsynced.
        self._loaded: dict[Key, Log] = {}
        # Set by stopping(): load_replicas opens no further replica of its batch.
        self._stopping = False
        self._saved: Offsets = (
            self._files[0].read(),
            self._files[1].read(),
            self._files[2].read(),
        )
        # Partitions whose offsets moved since the checkpoint loop last looked (added from
        # flush threads too, hence the lock), and whether _saved holds offsets the files lack.
        self._offsets_moved: set[Key] = set()
        self._offsets_moved_lock = threading.Lock()
        self._unwritten = False
        self._dirty: set[Partition] = set()
        self._dirty_event = asyncio.Event()
        # Partitions of relaxed topics with unflushed records: when flush.ms makes them dirty.
        self._flush_due: dict[Partition, float] = {}  # monotonic seconds
        self._flush_due_event = asyncio.Event()
        # One thread for fsyncs: they do not go faster in parallel on one disk, and one thread
        # keeps the order simple (a flush never overtakes an earlier one). Checkpoints have
        # their own, so six fsyncs every few seconds never delay a group commit.
        self._flush_executor = ThreadPoolExecutor(1, thread_name_prefix="flush")
        self._checkpoint_executor = ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
        self._tasks: list[asyncio.Task[None]] = []
        self._remove_leftover_deletions()
        self.cleaner = LogCleaner(
            log_dir,
            cleaner if cleaner is not None else CleanerSettings(),
            lambda: list(self.partitions.values()),
            clock,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, retention_check_interval_ms: int, on_fatal: Callable[[str], None]) -> None:
        self._tasks = [
            supervised("group-commit", self._flush_loop(), on_fatal),
            supervised("flush-timer", self._flush_timer_loop(), on_fatal),
            supervised("checkpoints", self._checkpoint_loop(), on_fatal),
            supervised("retention", self._retention_loop(retention_check_interval_ms), on_fatal),
        ]
        self.cleaner.start(on_fatal)

    async def close(self, broker_epoch: int = -1) -> None:
        """Flushes and closes every log, writes the checkpoints, and last the clean shutdown
        file (holding ``broker_epoch``, -1 when unknown, as Kafka's) when it may."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.cleaner.stop()  # no clean touches a log once they close
        self._stopping = True
        loop = asyncio.get_running_loop()
        partitions = list(self.partitions.values())
        with self._unrecovered_lock:
            dropped = list(self._loaded.items())
            self._loaded.clear()
        await loop.run_in_executor(self._flush_executor, self._flush_all, partitions)
        for partition in partitions:
            partition.advance_high_watermark()
            partition.close()
        self.write_checkpoints()
        for partition in partitions:
            # Kafka's clean-shutdown snapshot: the next open replays nothing. Not of a log
            # without a batch (Kafka's ProducerStateManager.takeSnapshot writes one only past
            # its latest: an empty partition's directory gets none).
            try:
                if partition.log.log_end_offset > partition.log.log_start_offset:
                    partition.snapshot_producers()
            except (KafkaStorageError, OSError) as e:
                log.warning("no producer snapshot for %s: %s", partition.name, e)
            partition.log.close()
        for _key, dropped_log in dropped:
            # Opened (perhaps recovered) but never added: sealed, trimmed and fsynced like
            # the others, yet its recovery point was never checkpointed, and the key stays
            # unrecovered, so the next start recovers it.
            dropped_log.close()
        self._flush_executor.shutdown(wait=True)
        self._checkpoint_executor.shutdown(wait=True)
        why_not = self._unclean_reason(partitions, [key for key, _ in dropped])
        if why_not is not None:
            log.info("no clean shutdown file: %s (the next start recovers)", why_not)
            return
        try:
            self._clean_shutdown_file.write(broker_epoch)
        except OSError as e:
            log.error("writing %s failed: %s", self._clean_shutdown_file.path, e)

    def stopping(self) -> None:
        """The node stops: a :meth:`load_replicas` still running opens no further replica
        (called before the open thread is waited for; :meth:`close` sets it too)."""
        self._stopping = True

    def _unclean_reason(self, partitions: list[Partition], dropped: list[Key]) -> str | None:
        """Why this close may not leave a clean shutdown file (Kafka writes it for a log
        directory whose logs were all loaded and closed without an error), or None.
        ``dropped``: the replicas opened but never added (a stop during their open)."""
        if dropped:
            names = ", ".join(f"{t}-{i}" for t, i in sorted(dropped)[:3])
            return f"{len(dropped)} partition(s) were opened but never added ({names})"
        with self._unrecovered_lock:
            unrecovered = sorted(self._unrecovered)
        if unrecovered:
            names = ", ".join(f"{t}-{i}" for t, i in unrecovered[:3])
            return f"{len(unrecovered)} partition(s) found unclean were never opened ({names})"
        if self.failed:
            return f"{len(self.failed)} partition(s) failed to open"
        offline = [p.name for p in partitions if p.log.offline is not None]
        if offline:
            return f"{len(offline)} partition(s) are offline ({', '.join(offline[:3])})"
        return None

    # -- partitions ----------------------------------------------------------------------------

    def local_keys(self, topic: str) -> set[Key]:
        """The replicas of ``topic`` this node has open or failed to open."""
        return {(topic, index) for index in self._by_topic.get(topic, ())}

    def topic_names(self) -> set[str]:
        return set(self._by_topic)

    def topic_name(self, topic_id: str) -> str | None:
        return self._names.get(topic_id)

    def mark_failed(self, key: Key, reason: str) -> None:
        self.failed[key] = reason
        self._by_topic.setdefault(key[0], set()).add(key[1])

    def _unindex(self, key: Key) -> None:
        indexes = self._by_topic.get(key[0])
        if indexes is not None:
            indexes.discard(key[1])
            if not indexes:
                del self._by_topic[key[0]]

    def on_disk(self) -> dict[Key, Path]:
        """The partition directories found in the log directory."""
        found: dict[Key, Path] = {}
        if not self.log_dir.is_dir():
            return found
        for child in self.log_dir.iterdir():
            match = _PARTITION_DIR.match(child.name)
            if child.is_dir() and match and not child.name.startswith("__cluster_metadata"):
                found[(match["topic"], int(match["partition"]))] = child
        return found

    def load_replica(
        self, topic: str, topic_id: str, index: int, config: LogConfig
    ) -> LoadedReplica:
        """The I/O half of opening a replica, safe to run off the event loop: checks the
        directory's topic id, opens (recovers) the log, and reads its producer state.

        A directory left by a deleted topic of the same name (another topic id) is removed
        first. Raises OSError or ValueError when the replica cannot open.
        """
        key = (topic, index)
        directory = self.log_dir / f"{topic}-{index}"
        recovery, starts, hws = self._saved
        if key not in recovery and key not in starts and key not in hws:
            # A new replica (no directory, nothing checkpointed): create it without reading
            # anything back, which is most of what opening costs besides the mkdir and the
            # .log's creation. The same log as opening a missing directory would give.
            try:
                new_log = Log.create(directory, config)
            except FileExistsError:
                pass  # a directory is there: open it and check whose it is
            else:
                with self._unrecovered_lock:
                    self._loaded[key] = new_log
                snapshots = ProducerSnapshots(directory)
                return LoadedReplica(
                    topic, topic_id, index, new_log, ProducerStateTable(), snapshots, None, False
                )
        metadata = PartitionMetadataFile(directory / PARTITION_METADATA_FILE)
        found: str | None = None
        namesake = False
        if directory.exists():
            try:
                found = metadata.read()
            except CorruptCheckpointError:
                # Written but never fsynced before a power cut: and since it is fsynced
                # before the first batch is, the directory holds nothing acknowledged.
                found = None
            else:
                if found is None and not _holds_data(directory):
                    found = topic_id  # a new partition whose first flush did not come
            if found != topic_id:
                log.warning(
                    "%s belongs to topic id %s, not %s: removing it", directory, found, topic_id
                )
                self._remove_directory(directory)
                found = None
                namesake = True
        partition_log = Log.open(
            directory,
            config,
            recovery_point=0 if namesake else recovery.get(key, 0),
            log_start_offset=0 if namesake else starts.get(key, 0),
            cleaned=not namesake and self.cleaner.checkpoint(key) is not None,
            clean_shutdown=self.had_clean_shutdown and not namesake,
        )
        with self._unrecovered_lock:
            # Recovered or not, it counts as opened only once add_replica takes it (a stop
            # may drop it before: see close).
            self._loaded[key] = partition_log
        metadata_synced = False
        if (
            partition_log.recovery_point < partition_log.log_end_offset
            and not partition_log.offline
        ):
            # Recovery kept batches no fsync covered yet (a crash after appends the recovery
            # point checkpoint missed: acknowledged ones among them). They are made durable
            # here, before the replica is seen, so the high watermark counts them from the
            # start, as Kafka's leader does at once, rather than after the first flush, with
            # a fetch in between answering none of them.
            try:
                _write_partition_metadata(directory, topic_id)
                metadata_synced = True
                partition_log.flush()
            except OSError as e:
                # A failed flush took the log offline (its reads and appends say so); a
                # failed partition.metadata write is tried again by the replica's next flush.
                log.error("flush of %s after recovery failed: %s", directory, e)
        snapshots = ProducerSnapshots(directory)
        try:
            producers = restore_producers(partition_log, snapshots)
        except KafkaStorageError:
            # The log is offline now; its reads and appends say so, with file and position.
            producers = ProducerStateTable()
        return LoadedReplica(
            topic,
            topic_id,
            index,
            partition_log,
            producers,
            snapshots,
            None if namesake else hws.get(key),
            namesake,
            metadata_synced,
        )

    def load_replicas(
        self, replicas: Sequence[tuple[str, str, int, LogConfig]]
    ) -> list[LoadedReplica | Exception]:
        """:meth:`load_replica` for each (topic, topic id, index, config), in one call off the
        event loop: a metadata entry that creates many partitions costs one hand-off to the
        worker thread, not one per replica. Each result is the loaded replica or the error
        that replica met (OSError, ValueError, KafkaStorageError); one failing does not stop
        the others."""
        results: list[LoadedReplica | Exception] = []
        for topic, topic_id, index, config in replicas:
            if self._stopping:
                # The node stops: the rest stay unopened (the next start opens them).
                results.append(OSError(f"{topic}-{index} not opened: the node is stopping"))
                continue
            try:
                results.append(self.load_replica(topic, topic_id, index, config))
            except Exception as e:  # reported per replica, as the caller retries each
                results.append(e)
        return results

    def add_replica(
        self, loaded: LoadedReplica, state: LeaderState, min_insync_replicas: int
    ) -> Partition:
        """The event-loop half of opening: the partition joins this node's replicas."""
        key = (loaded.topic, loaded.index)
        with self._unrecovered_lock:
            self._loaded.pop(key, None)
            if loaded.log.offline is None:
                self._unrecovered.discard(key)  # opened (recovered if it had to be), and kept
        if loaded.replaced_namesake:
            # The checkpoints' offsets were the namesake's (deleted while this node was down),
            # the cleaner's too: kept, the new log would count as cleaned up to there.
            self._forget(key)
            self.cleaner.forget(key)
        partition = Partition(
            topic=loaded.topic,
            topic_id=loaded.topic_id,
            index=loaded.index,
            node_id=self.node_id,
            log=loaded.log,
            state=state,
            min_insync_replicas=min_insync_replicas,
            flusher=self,
            leader_since_ms=self._clock.wall_ms(),  # followers get a full lag allowance
            producers=loaded.producers,
            snapshots=loaded.snapshots,
            # As Kafka does, partition.metadata is made durable by the first flush, before
            # any data. Also when the file was already there: a node killed before its first
            # flush may have left it in the page cache only (unless opening synced it).
            metadata_unsynced=not loaded.metadata_synced,
        )
        if loaded.high_watermark is not None:
            partition.restore_high_watermark(loaded.high_watermark)
        partition.advance_high_watermark()  # a leader alone in its ISR: all it holds, flushed
        self.partitions[key] = partition
        loaded.log.on_offsets_changed = functools.partial(self._offsets_changed, key)
        self._offsets_changed(key)
        self.failed.pop(key, None)
        self._by_topic.setdefault(loaded.topic, set()).add(loaded.index)
        self._names[loaded.topic_id] = loaded.topic
        # What recovery kept past the recovery point was flushed by load_replica; if that
        # failed short of taking the log offline (partition.metadata could not be written),
        # the group commit tries again. A new, empty log waits for its first batch: that
        # flush makes its files durable.
        if loaded.log.recovery_point < loaded.log.log_end_offset:
            self.mark_dirty(partition)
        return partition

    def open_partition(
        self,
        topic: str,
        topic_id: str,
        index: int,
        state: LeaderState,
        config: LogConfig,
        min_insync_replicas: int,
    ) -> Partition:
        """Opens (creating if needed) the replica of ``topic``-``index``, on the event loop
        (the replica manager runs :meth:`load_replica` in a thread instead)."""
        loaded = self.load_replica(topic, topic_id, index, config)
        return self.add_replica(loaded, state, min_insync_replicas)

    def delete_partition(self, topic: str, index: int) -> None:
        """Closes the replica and removes its directory (the topic, or this replica, is gone)."""
        key = (topic, index)
        partition = self.partitions.pop(key, None)
        self.failed.pop(key, None)
        self._unindex(key)
        self._forget(key)
        with self._unrecovered_lock:
            self._unrecovered.discard(key)  # its directory goes
        directory = self.log_dir / f"{topic}-{index}"
        if partition is not None:
            if not self.local_keys(topic):
                self._names.pop(partition.topic_id, None)
            self._dirty.discard(partition)
            self._flush_due.pop(partition, None)
            partition.close()
            partition.log.delete()
        elif directory.exists():
            self._remove_directory(directory)
        # After the close: a clean finishing in a cleaner thread writes its checkpoint only
        # for a partition still open (LogCleaner._write_checkpoint), so the entry dropped
        # here cannot come back with a deleted log's offset for a namesake to inherit.
        self.cleaner.forget(key)

    def _forget(self, key: Key) -> None:
        for offsets in self._saved:
            if offsets.pop(key, None) is not None:
                self._unwritten = True

    def _offsets_changed(self, key: Key) -> None:
        """A log's recovery point, start offset or HW moved (any thread)."""
        with self._offsets_moved_lock:
            self._offsets_moved.add(key)

    def _remove_directory(self, directory: Path) -> None:
        doomed = directory.with_name(f"{directory.name}.{uuid.uuid4().hex}-delete")
        directory.rename(doomed)
        fsync_dir(self.log_dir)
        shutil.rmtree(doomed, onerror=_log_rmtree_error)

    def _remove_leftover_deletions(self) -> None:
        if not self.log_dir.is_dir():
            return
        for child in self.log_dir.iterdir():
            if child.is_dir() and _DELETED_DIR.match(child.name):
                log.info("removing %s, left by a deletion that did not finish", child)
                shutil.rmtree(child, onerror=_log_rmtree_error)

    # -- group commit --------------------------------------------------------------------------

    def mark_dirty(self, partition: Partition) -> None:
        """Has the group commit fsync this partition's log as soon as it can."""
        self._dirty.add(partition)
        self._dirty_event.set()

    def schedule_flush(self, partition: Partition) -> None:
        """After an append: the fsync now, or when the topic's flush settings say."""
        if partition.flushes_every_record:
            self.mark_dirty(partition)
        else:
            self.flush_when_due(partition)

    def flush_when_due(self, partition: Partition) -> None:
        """For a topic with ``flush.messages`` above 1: marks the partition dirty once that
        many records are unflushed, else makes sure the flush timer knows of it."""
        config = partition.log.config
        if partition.log.log_end_offset - partition.log.recovery_point >= config.flush_messages:
            self.mark_dirty(partition)
        elif partition not in self._flush_due:
            self._flush_due[partition] = self._clock.monotonic_s() + config.flush_ms / 1000
            self._flush_due_event.set()

    @staticmethod
    def _flush_all(partitions: list[Partition]) -> None:
        live = [p for p in partitions if not (p.log.offline or p.closed)]
        # New logs' directory names: one fsync of their parent (the log directory) covers
        # every one in this batch, where each log's flush would fsync it once per log. A
        # failed one is left to each log's own flush, which then takes that log offline.
        # (Only files on disk have directories to sync: the logs this manager opens are Logs.)
        disk_logs = [p.log for p in live if isinstance(p.log, Log)]
        synced: set[Path] = set()
        for parent in {d.directory.parent for d in disk_logs if d.parent_unsynced}:
            try:
                fsync_dir(parent)
            except OSError as e:
                log.error("fsync of %s failed: %s", parent, e)
            else:
                synced.add(parent)
        for partition in live:
            try:
                if partition.metadata_unsynced:
                    _write_partition_metadata(partition.log.directory, partition.topic_id)
                    partition.metadata_unsynced = False
                if isinstance(partition.log, Log):
                    partition.log.flush(synced)
                else:
                    partition.log.flush()
            except OSError as e:  # the log marked itself offline; the loop tells the waiters
                log.error("flush of %s failed: %s", partition.name, e)

    def config_changed(self, partition: Partition) -> None:
        """The topic's config changed: what is unflushed is scheduled by the new settings,
        and the cleaner looks again (the topic may be compacted now)."""
        self._flush_due.pop(partition, None)
        self.cleaner.wake()
        if partition.log.recovery_point < partition.log.log_end_offset:
            self.schedule_flush(partition)  # with flush.messages=1 now, acks=all waits for it
        partition.advance_high_watermark()

    async def flush(self, partitions: list[Partition]) -> None:
        """Flushes these partitions now (a follower, before it reports its offsets)."""
        for partition in partitions:
            self._flush_due.pop(partition, None)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._flush_executor, self._flush_all, partitions)

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            batch = list(self._dirty)
            self._dirty.clear()
            flushed_before = {}
            for partition in batch:
                self._flush_due.pop(partition, None)  # this flush covers what was due
                flushed_before[partition] = partition.log.recovery_point
            await loop.run_in_executor(self._flush_executor, self._flush_all, batch)
            for partition in batch:
                if partition.log.offline:
                    partition.notify()  # waiters answer KAFKA_STORAGE_ERROR now, not at timeout
                elif partition.is_leader:
                    partition.advance_high_watermark()
                elif partition.log.recovery_point != flushed_before[partition]:
                    # A follower's flushed offset is part of what its fetch session reports
                    # (the leader's HW counts it): the notify makes the fetcher name it again.
                    partition.notify()

    async def _flush_timer_loop(self) -> None:
        while True:
            now = self._clock.monotonic_s()
            for partition, due in list(self._flush_due.items()):
                if due <= now:
                    del self._flush_due[partition]
                    if partition.log.recovery_point < partition.log.log_end_offset:
                        self.mark_dirty(partition)
            wait = min(self._flush_due.values(), default=now + _IDLE_WAIT_S) - now
            self._flush_due_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_due_event.wait(), min(wait, _IDLE_WAIT_S))

    # -- checkpoints and retention -------------------------------------------------------------

    def _checkpoint_offsets(self, every_partition: bool = False) -> Offsets | None:
        """Copies of the saved offsets with the open partitions' overlaid (on the event loop:
        partitions come and go there), or None when nothing moved since the last call. Reads
        the partitions whose offsets moved, or with ``every_partition`` all of them."""
        with self._offsets_moved_lock:
            moved, self._offsets_moved = self._offsets_moved, set()
        keys = self.partitions.keys() if every_partition else moved
        recovery, starts, hws = self._saved
        for key in keys:
            partition = self.partitions.get(key)
            if partition is None or partition.log.offline:
                continue
            log_ = partition.log
            # Kafka's rule: a log start offset its first segment's base offset says is no entry.
            start: int | None = log_.log_start_offset
            if start is not None and start <= log_.first_segment_base_offset:
                start = None
            values = (log_.recovery_point, start, log_.high_watermark)
            if values != (recovery.get(key), starts.get(key), hws.get(key)):
                recovery[key], hws[key] = log_.recovery_point, log_.high_watermark
                if start is None:
                    starts.pop(key, None)
                else:
                    starts[key] = start
                self._unwritten = True
        if not (self._unwritten or every_partition):
            return None
        self._unwritten = False  # set again if the write fails
        return dict(recovery), dict(starts), dict(hws)

    def _write_checkpoints(self, offsets: Offsets) -> None:
        for file, values in zip(self._files, offsets, strict=True):
            file.write(values)

    def write_checkpoints(self) -> None:
        """Writes the three checkpoint files now, from every open partition."""
        offsets = self._checkpoint_offsets(every_partition=True)
        assert offsets is not None
        try:
            self._write_checkpoints(offsets)
        except BaseException:
            self._unwritten = True
            raise

    async def _checkpoint_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(limits.CHECKPOINT_INTERVAL_MS / 1000)
            offsets = self._checkpoint_offsets()
            if offsets is None:
                continue
            try:
                await loop.run_in_executor(
                    self._checkpoint_executor, self._write_checkpoints, offsets
                )
            except OSError as e:
                self._unwritten = True
                log.error("writing checkpoint files failed: %s", e)

    def delete_old_segments(self, at_ms: int) -> int:
        deleted = 0
        for partition in list(self.partitions.values()):
            if partition.log.offline:
                continue
            try:
                count = partition.delete_retained_segments(at_ms)
            except OSError as e:  # that partition is offline now; the others go on
                log.error("retention of %s failed: %s", partition.name, e)
                continue
            if count:
                # The deletions are durable once the directory is fsynced: the group commit
                # does it now, rather than at the next append's flush. Until then the log
                # start checkpoint keeps naming the log (Log.first_segment_base_offset).
                self.mark_dirty(partition)
                deleted += count
        return deleted

    async def _retention_loop(self, interval_ms: int) -> None:
        while True:
            await asyncio.sleep(interval_ms / 1000)
            deleted = self.delete_old_segments(self._clock.wall_ms())
            if deleted:
                log.info("retention deleted %d segment(s)", deleted)


def _write_partition_metadata(directory: Path, topic_id: str) -> None:
    """Makes ``partition.metadata`` durable, writing it if it is not there yet (a new
    partition's first flush): before any data of the partition is fsynced."""
    path = directory / PARTITION_METADATA_FILE
    metadata = PartitionMetadataFile(path)
    try:
        fsync_file(path)
    except FileNotFoundError:
        metadata.write(topic_id)  # fsyncs the file and the directory
    else:
        # Also when the file was already there: a node killed before this flush may have
        # left it in the page cache only.
        fsync_dir(directory)


def _holds_data(directory: Path) -> bool:
    """Whether any segment file in ``directory`` has a byte in it (a ``.log``, or a leftover
    index: anything a deleted namesake may have left)."""
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith((".log", ".index", ".timeindex")) and entry.stat().st_size:
                return True
    return False


def _log_rmtree_error(function: Any, path: str, excinfo: Any) -> None:
    log.error("could not remove %s: %s", path, excinfo[1])
