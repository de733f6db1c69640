"""The partition logs of one log directory, and the background work they need.

- Opening: ``<log dir>/<topic>-<partition>/`` with its ``partition.metadata`` (the topic id, so
  a directory left by a deleted topic of the same name is never mistaken for the new one), at
  the recovery point and log start offset of the checkpoint files.
- Group commit: appends mark their partition dirty; one flush task fsyncs every dirty log in a
  worker thread (one fsync per file covers everything appended meanwhile) and then lets each
  partition move its high watermark.
- Checkpoints: ``recovery-point-offset-checkpoint``, ``log-start-offset-checkpoint`` and
  ``replication-offset-checkpoint`` (the HW) are rewritten every few seconds and at shutdown.
- Retention: old segments are deleted every ``log.retention.check.interval.ms``.
- Deletion: a deleted partition's directory is renamed ``<name>.<id>-delete`` (as Kafka does),
  the rename made durable, and then removed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from server import limits
from server.partition import LeaderState, Partition
from storage.checkpoints import OffsetCheckpointFile, PartitionMetadataFile, fsync_dir
from storage.errors import KafkaStorageError
from storage.log import Log
from storage.log_config import LogConfig

log = logging.getLogger(__name__)

RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
LOG_START_FILE = "log-start-offset-checkpoint"
HW_FILE = "replication-offset-checkpoint"
PARTITION_METADATA_FILE = "partition.metadata"
_PARTITION_DIR = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+)-(?P<partition>\d+)$")


def now_ms() -> int:
    return int(time.time() * 1000)


class LogManager:
    def __init__(self, log_dir: Path, node_id: int) -> None:
        self.log_dir = log_dir
        self.node_id = node_id
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._recovery_points = OffsetCheckpointFile(log_dir / RECOVERY_POINT_FILE)
        self._log_starts = OffsetCheckpointFile(log_dir / LOG_START_FILE)
        self._hws = OffsetCheckpointFile(log_dir / HW_FILE)
        self._saved_recovery = self._recovery_points.read()
        self._saved_starts = self._log_starts.read()
        self._saved_hws = self._hws.read()
        self._dirty: set[Partition] = set()
        self._dirty_event = asyncio.Event()
        # One thread: fsyncs of one disk do not go faster in parallel, and one thread keeps
        # the flush order simple (a flush never overtakes an earlier one).
        self._flush_executor = ThreadPoolExecutor(1, thread_name_prefix="flush")
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, retention_check_interval_ms: int) -> None:
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="group-commit"),
            asyncio.create_task(self._checkpoint_loop(), name="checkpoints"),
            asyncio.create_task(
                self._retention_loop(retention_check_interval_ms), name="retention"
            ),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        partitions = list(self.partitions.values())
        await loop.run_in_executor(self._flush_executor, self._flush_all, partitions)
        for partition in partitions:
            partition.on_flushed()
        self.write_checkpoints()
        for partition in partitions:
            partition.log.close()
        self._flush_executor.shutdown(wait=True)

    # -- partitions ----------------------------------------------------------------------------

    def on_disk(self) -> dict[tuple[str, int], Path]:
        """The partition directories found in the log directory."""
        found: dict[tuple[str, int], Path] = {}
        if not self.log_dir.is_dir():
            return found
        for child in self.log_dir.iterdir():
            match = _PARTITION_DIR.match(child.name)
            if child.is_dir() and match and not child.name.startswith("__cluster_metadata"):
                found[(match["topic"], int(match["partition"]))] = child
        return found

    def open_partition(
        self,
        topic: str,
        topic_id: str,
        index: int,
        state: LeaderState,
        config: LogConfig,
        min_insync_replicas: int,
    ) -> Partition:
        """Opens (creating if needed) the replica of ``topic``-``index`` on this node."""
        key = (topic, index)
        existing = self.partitions.get(key)
        if existing is not None:
            return existing
        directory = self.log_dir / f"{topic}-{index}"
        metadata = PartitionMetadataFile(directory / PARTITION_METADATA_FILE)
        if directory.exists():
            found = metadata.read() if (directory / PARTITION_METADATA_FILE).exists() else None
            if found != topic_id:
                # Left by a topic of the same name that was deleted while this node was away.
                log.warning(
                    "%s belongs to topic id %s, not %s: removing it", directory, found, topic_id
                )
                self._remove_directory(directory)
        created = not directory.exists()
        partition_log = Log.open(
            directory,
            config,
            recovery_point=self._saved_recovery.get(key, 0),
            log_start_offset=self._saved_starts.get(key, 0),
        )
        if created or not (directory / PARTITION_METADATA_FILE).exists():
            metadata.write(topic_id)
            fsync_dir(self.log_dir)
        partition = Partition(
            topic=topic,
            topic_id=topic_id,
            index=index,
            node_id=self.node_id,
            log=partition_log,
            state=state,
            min_insync_replicas=min_insync_replicas,
        )
        saved_hw = self._saved_hws.get(key)
        if saved_hw is not None:
            partition_log.update_high_watermark(saved_hw)
        self.partitions[key] = partition
        # What recovery kept but no fsync covered yet is flushed before anyone can see it.
        self.mark_dirty(partition)
        return partition

    def delete_partition(self, topic: str, index: int) -> None:
        """Closes the replica and removes its directory (the topic was deleted)."""
        partition = self.partitions.pop((topic, index), None)
        if partition is not None:
            self._dirty.discard(partition)
            partition.log.close()
            partition.state = LeaderState(-1, partition.state.leader_epoch, (), ())
            partition.notify()
        directory = self.log_dir / f"{topic}-{index}"
        if directory.exists():
            self._remove_directory(directory)

    def _remove_directory(self, directory: Path) -> None:
        doomed = directory.with_name(f"{directory.name}.{uuid.uuid4().hex}-delete")
        directory.rename(doomed)
        fsync_dir(self.log_dir)
        shutil.rmtree(doomed, ignore_errors=True)

    # -- group commit --------------------------------------------------------------------------

    def mark_dirty(self, partition: Partition) -> None:
        self._dirty.add(partition)
        self._dirty_event.set()

    @staticmethod
    def _flush_all(partitions: list[Partition]) -> None:
        for partition in partitions:
            if partition.log.offline:
                continue
            try:
                partition.log.flush()
            except (KafkaStorageError, OSError) as e:
                log.error("flush of %s failed: %s", partition.name, e)

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            batch = list(self._dirty)
            self._dirty.clear()
            await loop.run_in_executor(self._flush_executor, self._flush_all, batch)
            for partition in batch:
                partition.on_flushed()

    # -- checkpoints and retention -------------------------------------------------------------

    def _checkpoint_offsets(self) -> tuple[dict[tuple[str, int], int], ...]:
        """Recovery points, log start offsets and HWs, read on the event loop."""
        recovery: dict[tuple[str, int], int] = {}
        starts: dict[tuple[str, int], int] = {}
        hws: dict[tuple[str, int], int] = {}
        for key, partition in self.partitions.items():
            if partition.log.offline:
                continue
            recovery[key] = partition.log.recovery_point
            starts[key] = partition.log.log_start_offset
            hws[key] = partition.log.high_watermark
        return recovery, starts, hws

    def _write_checkpoints(self, offsets: tuple[dict[tuple[str, int], int], ...]) -> None:
        recovery, starts, hws = offsets
        self._recovery_points.write(recovery)
        self._log_starts.write(starts)
        self._hws.write(hws)

    def write_checkpoints(self) -> None:
        self._write_checkpoints(self._checkpoint_offsets())

    async def _checkpoint_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(limits.CHECKPOINT_INTERVAL_MS / 1000)
            offsets = self._checkpoint_offsets()  # on the loop: partitions come and go here
            try:
                await loop.run_in_executor(self._flush_executor, self._write_checkpoints, offsets)
            except OSError as e:
                log.error("writing checkpoint files failed: %s", e)

    def delete_old_segments(self, at_ms: int) -> int:
        deleted = 0
        for partition in list(self.partitions.values()):
            if partition.log.offline:
                continue
            deleted += partition.log.delete_retained_segments(at_ms)
        return deleted

    async def _retention_loop(self, interval_ms: int) -> None:
        while True:
            await asyncio.sleep(interval_ms / 1000)
            deleted = self.delete_old_segments(now_ms())
            if deleted:
                log.info("retention deleted %d segment(s)", deleted)

    def update_configs(self, configs: Mapping[tuple[str, int], LogConfig]) -> None:
        for key, config in configs.items():
            partition = self.partitions.get(key)
            if partition is not None:
                partition.log.update_config(config)
