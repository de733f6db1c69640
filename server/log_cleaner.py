"""The log cleaner of one log directory: Kafka's ``LogCleaner`` and ``LogCleanerManager``.

The work itself is :mod:`storage.cleaner` (map, filter, write, swap); this module decides when
and which log, runs it off the event loop, and keeps the cleaner's position.

- ``log.cleaner.threads`` slots (Kafka's cleaner threads), each a task on the event loop that
  picks a log and hands the clean to a worker thread of the cleaner's own pool: the selection
  reads the partitions (which come and go on the event loop), the clean never runs on it.
- Picking: every compacted partition (``cleanup.policy`` with ``compact``) that is open, not
  offline, not being cleaned by another slot and not marked uncleanable, is measured
  (:func:`storage.clean_plan.log_to_clean`: its cleanable range below the active segment, the
  high watermark and ``min.compaction.lag.ms``, its dirty ratio, ``max.compaction.lag.ms``);
  the filthiest one above ``min.cleanable.dirty.ratio`` (or past its max lag) is cleaned. With
  none, a slot sleeps ``log.cleaner.backoff.ms``.
- Each slot has its own offset map (its share of ``log.cleaner.dedupe.buffer.size``); one
  throttle (``log.cleaner.io.max.bytes.per.second``) is shared by all, as Kafka's is.
- Each cleaned group of segments is swapped in by :meth:`storage.log.Log.replace_segments`,
  which checks, under the log's lock, that the group is still the log's (retention or a
  truncation may have changed it: the clean is then given up, nothing lost).
- The position: ``cleaner-offset-checkpoint`` (Kafka's file and format) holds each compacted
  partition's first dirty offset, written after each clean; a checkpoint the log no longer
  covers (below its start, past its end) is reset to the log start, as Kafka does.
- A log the cleaner cannot read (a corrupt batch, or a compressed one whose records do not
  decompress within ``DECOMPRESSED_BATCH_BYTES_MAX``; compressed batches are cleaned as
  Kafka cleans them, see :mod:`storage.clean_filter`), or whose clean raised an unexpected
  error, is marked uncleanable until the node restarts (Kafka's
  ``uncleanablePartitions``); the other logs go on, and the node with them. Stopping, a
  deleted partition or a log gone offline abort a clean quietly: the groups already swapped
  in stay (each is a whole clean), the rest is untouched.
- Each thread reads old segments through half its share of ``log.cleaner.io.buffer.size``
  (Kafka's read buffer; the other half is Kafka's write buffer).
- For /metrics (``server/metrics.py``, Kafka's LogCleaner and LogCleanerManager gauges), the
  driver keeps, on the event loop: each slot's last finished clean (its
  :class:`~storage.clean_stats.CleanerStats`) and the largest ``max.compaction.lag.ms`` delay
  its last pick saw, the largest dirty ratio and the time of the last pick, and counters of
  cleans and bytes. A scrape reads them; nothing is counted per record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from server.clock import Clock
from server.config import CleanerSettings
from server.partition import Partition
from server.tasks import supervised
from storage.checkpoints import OffsetCheckpointFile
from storage.clean_map import OffsetMap
from storage.clean_plan import LogToClean, filthiest
from storage.cleaner import (
    CLEANER_CHECKPOINT_FILE,
    CleanAbortedError,
    CleanerStats,
    CleanResult,
    Throttle,
    UncleanableLogError,
    clean_log,
)
from storage.errors import CorruptCheckpointError, KafkaStorageError
from storage.log import Log

log = logging.getLogger(__name__)

Key = tuple[str, int]


@dataclass(frozen=True, slots=True)
class _Pick:
    partition: Partition
    log: Log
    target: LogToClean
    last_data_offsets: dict[int, int]
    # The largest max.compaction.lag.ms delay among the logs measured for this pick (Kafka's
    # PreCleanStats.maxCompactionDelayMs).
    compaction_delay_ms: int = 0


class LogCleaner:
    """The cleaner of the logs in ``log_dir`` (see the module docstring)."""

    def __init__(
        self,
        log_dir: Path,
        settings: CleanerSettings,
        partitions: Callable[[], Iterable[Partition]],
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._partitions = partitions
        self._clock = clock
        self._file = OffsetCheckpointFile(log_dir / CLEANER_CHECKPOINT_FILE)
        try:
            self._checkpoints: dict[Key, int] = self._file.read()
        except CorruptCheckpointError as e:
            # Only the cleaner's position is lost: the next clean of each log starts from its
            # beginning (more work, nothing else).
            log.warning("%s; the cleaner starts over from each log's start", e)
            self._checkpoints = {}
        self._checkpoints_lock = threading.Lock()  # written from the cleaner's threads
        self._in_progress: set[Key] = set()
        self.uncleanable: dict[Key, str] = {}
        threads = max(settings.threads, 1)
        self._maps = [OffsetMap(settings.dedupe_buffer_size // threads) for _ in range(threads)]
        # Kafka gives each thread half its share for reading, half for writing.
        self.read_window_bytes = settings.io_buffer_size // threads // 2
        self._throttle = Throttle(settings.io_max_bytes_per_second)
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="log-cleaner")
        self._stopping = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # /metrics (module docstring), written on the event loop only. Kafka starts the time
        # of the last run when the cleaner is made.
        self.last_stats: list[CleanerStats | None] = [None] * threads
        self.last_compaction_delay_ms = [0] * threads
        self.max_dirty_ratio = 0.0
        self.last_run_ms = clock.wall_ms()
        self.cleans = 0
        self.bytes_read = 0
        self.bytes_written = 0

    @property
    def runs(self) -> bool:
        """Whether the node runs cleaner threads (``log.cleaner.enable``, ``threads``)."""
        return self._settings.runs

    def start(self, on_fatal: Callable[[str], None]) -> None:
        if not self._settings.runs:
            log.info("the log cleaner is off (log.cleaner.enable, log.cleaner.threads)")
            return
        self._tasks = [
            supervised(f"log-cleaner-{slot}", self._slot(slot), on_fatal)
            for slot in range(self._settings.threads)
        ]

    async def stop(self) -> None:
        """Aborts the cleans in progress and waits for their threads to leave the files."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: self._executor.shutdown(wait=True)
        )

    def wake(self) -> None:
        """Looks for a log to clean now rather than after the backoff (a config change)."""
        self._wake.set()

    def forget(self, key: Key) -> None:
        """A partition left this node: its checkpoint entry and uncleanable mark go."""
        self.uncleanable.pop(key, None)
        with self._checkpoints_lock:
            self._checkpoints.pop(key, None)

    def checkpoint(self, key: Key) -> int | None:
        with self._checkpoints_lock:
            return self._checkpoints.get(key)

    # -- picking ---------------------------------------------------------------------------

    def pick(self) -> _Pick | None:
        """The log to clean now, on the event loop (Kafka's ``grabFilthiestCompactedLog``).
        Sets the time of the last run and the largest dirty ratio of the logs it measured."""
        now = self._clock.wall_ms()
        self.last_run_ms = now
        candidates: list[_Pick] = []
        for partition in self._partitions():
            log_ = partition.log
            key = (partition.topic, partition.index)
            if (
                not isinstance(log_, Log)
                or not log_.config.compact
                or partition.closed
                or log_.offline is not None
                or key in self._in_progress
                or key in self.uncleanable
            ):
                continue
            target = self._measure(log_, key, now)
            if target is None:
                continue
            if target.force_checkpoint:
                # Kept in memory; the file gets it with the next clean's write.
                with self._checkpoints_lock:
                    self._checkpoints[key] = target.first_dirty
            candidates.append(_Pick(partition, log_, target, {}))
        # Kafka's max-dirty-percent: over every log measured (an empty one's ratio is 0),
        # cleanable or not.
        self.max_dirty_ratio = max((c.target.dirty_ratio for c in candidates), default=0.0)
        best = filthiest([(c.target, c.log.config) for c in candidates])
        if best is None:
            return None
        chosen = candidates[best]
        # The producers' last batches survive the clean (their sequences do). A snapshot of
        # the table is enough: a producer appending meanwhile appends above the cleaned range.
        offsets = chosen.partition.producers.last_data_offsets()
        delay = max(c.target.compaction_delay_ms for c in candidates)
        return _Pick(chosen.partition, chosen.log, chosen.target, offsets, delay)

    def since_last_run_ms(self) -> int:
        """Milliseconds since a slot last looked for a log to clean (Kafka's
        time-since-last-run-ms; from the cleaner's creation before the first look)."""
        return max(self._clock.wall_ms() - self.last_run_ms, 0)

    def uncleanable_bytes(self) -> int:
        """The cleanable bytes of the logs marked uncleanable (Kafka's uncleanable-bytes: what
        the cleaner would clean in them now), on the event loop, when /metrics is scraped."""
        marked = set(self.uncleanable.copy())
        if not marked:
            return 0
        now = self._clock.wall_ms()
        total = 0
        for partition in self._partitions():
            log_ = partition.log
            if (partition.topic, partition.index) not in marked or not isinstance(log_, Log):
                continue
            if partition.closed or log_.offline is not None:
                continue
            target = self._measure(log_, (partition.topic, partition.index), now)
            if target is not None:
                total += target.cleanable_bytes
        return total

    def _measure(self, log_: Log, key: Key, now_ms: int) -> LogToClean | None:
        """The log's cleanable range and dirt from its cleaning view and checkpoint, or None
        when it went offline since the caller looked."""
        try:
            return log_.to_clean(self.checkpoint(key), now_ms)
        except KafkaStorageError:
            return None

    # -- cleaning --------------------------------------------------------------------------

    async def _slot(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            picked = self.pick()
            if picked is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.backoff_ms / 1000)
                continue
            key = (picked.partition.topic, picked.partition.index)
            self._in_progress.add(key)
            self.last_compaction_delay_ms[slot] = picked.compaction_delay_ms
            try:
                result = await loop.run_in_executor(
                    self._executor, self.clean, picked, self._maps[slot]
                )
            finally:
                self._in_progress.discard(key)
            if result is not None:
                self.finished(slot, result.stats)

    def finished(self, slot: int, stats: CleanerStats) -> None:
        """A clean of ``slot`` finished (on the event loop): the gauges read its stats until
        the slot's next one, the counters add them up (Kafka's ``recordStats``)."""
        self.last_stats[slot] = stats
        self.cleans += 1
        self.bytes_read += stats.map_bytes_read + stats.bytes_read
        self.bytes_written += stats.bytes_written

    def clean(self, picked: _Pick, offset_map: OffsetMap) -> CleanResult | None:
        """Cleans one log (in a cleaner thread); returns the result, or None when the clean was
        given up or failed (logged)."""
        partition, log_ = picked.partition, picked.log
        key = (partition.topic, partition.index)

        def check_abort() -> None:
            if self._stopping or partition.closed or log_.offline is not None:
                raise CleanAbortedError("the node is stopping or the log went away")

        try:
            result = clean_log(
                log_.directory,
                log_.cleaning_view()[0],
                picked.target,
                config=log_.config,
                offset_map=offset_map,
                last_data_offsets=picked.last_data_offsets,
                now_ms=self._clock.wall_ms(),
                commit=log_.replace_segments,
                throttle=self._throttle,
                fsync=log_.fsync,
                check_abort=check_abort,
                read_window_bytes=self.read_window_bytes,
            )
        except CleanAbortedError as e:
            log.info("cleaning of %s given up: %s", partition.name, e)
            return None
        except UncleanableLogError as e:
            self.uncleanable[key] = str(e)
            log.error("%s cannot be cleaned (until the node restarts): %s", partition.name, e)
            return None
        except (OSError, KafkaStorageError) as e:
            if partition.closed:
                return None  # deleted meanwhile: its directory went with the files
            log.error("cleaning of %s failed: %s", partition.name, e)
            return None
        except Exception as e:
            # A bug met by this log's data (Kafka's LogCleaningException): every replica of
            # the log would meet it, so ending the node would take down each of them, again
            # at each restart. As Kafka does, the partition is marked uncleanable, loudly, and
            # the node serves on; what was swapped in is whole (each group is), the rest as
            # it was, the .cleaned files gone.
            self.uncleanable[key] = f"{type(e).__name__}: {e}"
            log.exception(
                "unexpected error cleaning %s; its partition is marked uncleanable until the "
                "node restarts",
                partition.name,
            )
            return None
        self._write_checkpoint(partition, result.checkpoint)
        log.info("%s", result.stats.describe(partition.name, result.first_dirty, result.checkpoint))
        return result

    def _write_checkpoint(self, partition: Partition, offset: int) -> None:
        key = (partition.topic, partition.index)
        with self._checkpoints_lock:
            if partition.closed:
                # Deleted since its last swap: the log manager closes a partition before it
                # forgets its entry, so checking under the lock is enough to never write an
                # entry for a log that is gone (a namesake created later would inherit it).
                return
            self._checkpoints[key] = offset
            values = dict(self._checkpoints)
            try:
                self._file.write(values)
            except OSError as e:
                # The position is kept in memory; a restart would clean the same range again.
                log.error("writing %s failed: %s", CLEANER_CHECKPOINT_FILE, e)
