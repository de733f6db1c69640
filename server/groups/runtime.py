"""The group coordinator's driver: which groups this node coordinates, loading them from
``__consumer_offsets``, writing their records, and expiring sessions.

Theory of operation:

- A group belongs to partition ``abs(java_hash(group)) % partitions`` of
  ``__consumer_offsets`` (Kafka's rule), and the leader of that partition is its coordinator.
  A request for a group this node does not coordinate gets a 307 NOT_COORDINATOR to the
  leader, or 503 COORDINATOR_NOT_AVAILABLE while the partition has none.
- When this node leads a partition (at a leader epoch), its :class:`GroupShard` is loaded by
  reading the partition's whole log, from the log start to the log end: the records a leader
  holds above the high watermark are its own and will commit while it leads. A shard loaded
  at another leader epoch is thrown away (the log may have been truncated as a follower
  meanwhile) and loaded again; a partition no longer led is unloaded. While a shard loads,
  its groups answer 503 COORDINATOR_LOAD_IN_PROGRESS.
- An operation is planned on the shard, its records appended as one batch through the
  partition's leader append (the path every produce takes), the shard changed, and only then
  does the coordinator wait for the batch to commit (``acks=all``): nothing awaits between
  plan, append and change, so operations on one shard never interleave, and the next one
  already sees this one's effect, as Kafka's coordinator does with its uncommitted state.
  When the wait fails (the ISR shrank, leadership moved, a timeout), the caller gets a
  retriable error: its retry is safe, commits and heartbeats being idempotent.
- Classic groups (JoinGroup, SyncGroup, Heartbeat, LeaveGroup: ``classic.py``) are driven as
  Kafka drives them: an operation changes the group at once and returns records to append and
  answers; a JoinGroup or SyncGroup that must wait is parked on a future here, answered when
  the group says (the last member joins, the leader's assignment is stored, a timer fires);
  each group's next deadline is one timer of the event loop. The leader's assignment is handed
  out only once its record is committed; Heartbeat and LeaveGroup answer once what this
  coordinator wrote is committed. When the partition is no longer led here, every parked
  request is answered NOT_COORDINATOR.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from client.protocol import (
    COORDINATOR_LOAD_IN_PROGRESS,
    COORDINATOR_NOT_AVAILABLE,
    GROUP_ID_NOT_FOUND,
    NOT_COORDINATOR,
    RECORD_TOO_LARGE,
    ApiError,
)
from server import limits
from server.auto_topics import OFFSETS_TOPIC, ensure_offsets_topic
from server.groups import classic_shard
from server.groups.classic import EMPTY, ClassicSettings
from server.groups.classic_driver import ClassicDriver, clock_now, kafka_error
from server.groups.classic_messages import (
    DescribedGroup,
    HeartbeatRequest,
    JoinRequest,
    JoinResponse,
    KafkaError,
    LeaveRequest,
    LeaveResponse,
    SyncRequest,
    SyncResponse,
)
from server.groups.group import partitions_of
from server.groups.shard import CommitOffset, GroupRecord, GroupShard, Heartbeat, Planned, Topics
from server.partition import Partition
from storage.batch import NewRecord
from storage.errors import KafkaStorageError
from storage.group_records import (
    GroupRecordError,
    OffsetCommitValue,
    decode,
    encode_key,
    encode_value,
)
from storage.partition_log import PartitionLog

if TYPE_CHECKING:
    from server.node import Node

log = logging.getLogger(__name__)

# How long a request waits for its coordinator to appear or load before a retriable 503: the
# first group request of a cluster creates __consumer_offsets, whose 50 partitions take a
# moment to open; a curl user should get an answer, not a retry hint, then.
COORDINATOR_WAIT_S = 10.0
# Bytes read at a time while loading (a yield between reads keeps the node answering).
LOAD_READ_BYTES = 1 << 20


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode``: over UTF-16 code units, in 32-bit two's complement."""
    data = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_group(group_id: str, partitions: int) -> int:
    """Kafka's ``Utils.abs(groupId.hashCode()) % partitions`` (abs(MIN_VALUE) is 0 there)."""
    h = java_string_hash(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


async def replay_log(
    log_: PartitionLog, shard: GroupShard, index: int, check: Callable[[], None]
) -> tuple[int, int]:
    """Replays every group record of ``log_`` (a ``__consumer_offsets`` partition) from its
    log start to its log end into ``shard``; returns (records replayed, records skipped).

    Calls ``check`` before each read (it raises to stop the load) and yields to the event
    loop between reads. The log may be compacted (Kafka's rules): each read goes on from the
    offset after the last batch read, past gaps and batches with no record left, so a load
    never stops early at an empty batch nor reads one twice. Raises KafkaStorageError as the
    log does."""
    offset = log_.log_start_offset
    count = skipped = 0
    while offset < log_.log_end_offset:
        check()
        read = log_.fetch_records(offset, LOAD_READ_BYTES, log_.log_end_offset)
        if read.next_offset <= offset:
            break  # nothing at or after the offset: the rest is a gap
        for record in read.records:
            if record.key is None:
                skipped += 1
                continue
            try:
                decoded = decode(record.key, record.value)
            except GroupRecordError as e:
                log.error(
                    "%s-%d offset %d: skipping a record that is not a group record: %s",
                    OFFSETS_TOPIC,
                    index,
                    record.offset,
                    e,
                )
                skipped += 1
                continue
            if decoded is None:
                skipped += 1  # a record type of Kafka's that this coordinator does not use
                continue
            shard.replay(*decoded)
            count += 1
        offset = read.next_offset
        await asyncio.sleep(0)
    return count, skipped


def new_member_id() -> str:
    """A member id as Kafka 4 makes one: a random UUID in 22 base64url characters."""
    return urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


@dataclass
class Loaded:
    """A shard and the partition replica (at one leader epoch) it was loaded from."""

    index: int
    partition: Partition
    leader_epoch: int
    shard: GroupShard
    # The offset of the last record this coordinator appended (-1: none): an answer that
    # writes nothing still waits until the high watermark passes it, so no client is told
    # of a state that is not committed yet (Kafka's coordinator defers such answers too).
    last_written: int = -1


class GroupCoordinator:
    def __init__(self, node: Node, classic_settings: ClassicSettings | None = None) -> None:
        self.node = node
        # Kafka's group.initial.rebalance.delay.ms, the classic session limits and
        # group.max.size, from the node's configuration (server/node.py builds them).
        self.classic_settings = classic_settings or ClassicSettings()
        self._loaded: dict[int, Loaded] = {}
        self._loading: dict[int, asyncio.Task[Loaded]] = {}
        # Classic groups' parked requests, timers and commit waits.
        self.classic = ClassicDriver(
            self._append, lambda loaded: self._current(loaded.index) is loaded
        )

    # -- finding the coordinator ---------------------------------------------------------------

    async def shard_for(self, group_id: str) -> Loaded:
        """The loaded shard of the group, when this node coordinates it; else raises the 307
        to the coordinator, or a retriable 503 (none yet, or still loading)."""
        topic = await ensure_offsets_topic(self.node)
        index = partition_for_group(group_id, len(topic.partitions))
        deadline = time.monotonic() + COORDINATOR_WAIT_S
        while True:
            loaded = self._current(index)
            if loaded is not None:
                return loaded
            partition = self._led_partition(index)
            if partition is not None:
                task = self._start_load(index, partition)
                try:
                    return await asyncio.wait_for(
                        asyncio.shield(task), max(deadline - time.monotonic(), 0.01)
                    )
                except TimeoutError:
                    raise ApiError(
                        COORDINATOR_LOAD_IN_PROGRESS,
                        f"node {self.node.node_id} is loading the groups of "
                        f"{OFFSETS_TOPIC}-{index}; retry shortly",
                        {"retry_after_s": 1},
                    ) from None
            self._raise_not_here(index)
            if time.monotonic() >= deadline:
                raise ApiError(
                    COORDINATOR_NOT_AVAILABLE,
                    f"{OFFSETS_TOPIC}-{index}, which holds group {group_id}, has no leader "
                    f"right now; retry shortly",
                    {"retry_after_s": 1},
                )
            await asyncio.sleep(0.1)

    def _led_partition(self, index: int) -> Partition | None:
        partition = self.node.replica_manager.local(OFFSETS_TOPIC, index)
        if partition is None or not partition.is_leader or partition.closed:
            return None
        return partition

    def _current(self, index: int) -> Loaded | None:
        loaded = self._loaded.get(index)
        partition = self._led_partition(index)
        if loaded is None or partition is None:
            return None
        if loaded.partition is not partition or loaded.leader_epoch != partition.state.leader_epoch:
            return None
        return loaded

    def _raise_not_here(self, index: int) -> None:
        """Raises the 307 when another node leads the partition; returns when none does (or
        this node does, but has not opened its replica yet)."""
        state = self.node.quorum.snapshot_state()
        topic = state.topics.get(OFFSETS_TOPIC)
        meta = topic.partitions.get(index) if topic is not None else None
        if meta is None or meta.leader < 0 or meta.leader == self.node.node_id:
            return
        url = self.node.broker_url(meta.leader)
        if url is None:
            return
        raise ApiError(
            NOT_COORDINATOR,
            f"node {self.node.node_id} is not the coordinator of this group; node "
            f"{meta.leader} is (it leads {OFFSETS_TOPIC}-{index})",
            {"coordinator_id": meta.leader, "leader_id": meta.leader, "leader_url": url},
        )

    # -- loading -------------------------------------------------------------------------------

    def _start_load(self, index: int, partition: Partition) -> asyncio.Task[Loaded]:
        task = self._loading.get(index)
        if task is None or task.done():
            task = asyncio.ensure_future(self._load(index, partition))
            self._loading[index] = task
            task.add_done_callback(lambda _: self._loading.pop(index, None))
        return task

    async def _load(self, index: int, partition: Partition) -> Loaded:
        epoch = partition.state.leader_epoch
        shard = GroupShard(self.node.config.groups, new_member_id, self.classic_settings)
        started = time.monotonic()

        def check_leadership() -> None:
            if partition.closed or not partition.is_leader or partition.state.leader_epoch != epoch:
                raise ApiError(
                    COORDINATOR_NOT_AVAILABLE,
                    f"leadership of {OFFSETS_TOPIC}-{index} moved while its groups loaded",
                    {"retry_after_s": 1},
                )

        try:
            count, skipped = await replay_log(partition.log, shard, index, check_leadership)
        except KafkaStorageError:
            partition.raise_storage_error()
        now = clock_now()
        shard.rearm_sessions(now.ms, now.wall_ms)
        loaded = Loaded(index, partition, epoch, shard)
        previous = self._loaded.get(index)
        if previous is not None:
            self.classic.unload(previous)
        self._loaded[index] = loaded
        for group_id in shard.classic:
            self.classic.arm(loaded, group_id)
        log.info(
            "coordinator of %s-%d (leader epoch %d): loaded %d record(s) (%d skipped), %d "
            "group(s), in %.0f ms",
            OFFSETS_TOPIC,
            index,
            epoch,
            count,
            skipped,
            len(shard.group_ids()),
            (time.monotonic() - started) * 1000,
        )
        return loaded

    # -- writing -------------------------------------------------------------------------------

    async def write(self, loaded: Loaded, planned: Planned) -> Any:
        """Appends the plan's records as one batch, applies the plan, waits for the commit;
        returns the plan's answer. Call with no await between planning and this call."""
        if not planned.records:
            loaded.shard.apply(planned)
            await self.settled(loaded)
            return planned.answer
        last = self._append(loaded, planned.records)
        loaded.shard.apply(planned)
        await self.settled(loaded)
        # Committed is not enough when the ISR shrank below min.insync.replicas meanwhile (as
        # for a produce: Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND).
        error = loaded.partition.acks_all_error(last)
        if error is not None:
            raise error
        return planned.answer

    def _append(self, loaded: Loaded, records: list[GroupRecord]) -> int:
        """Appends ``records`` as one batch through the leader append (no await); returns the
        last offset, which the coordinator's next answers wait to see committed."""
        now = int(time.time() * 1000)
        batch = [NewRecord(encode_key(k), encode_value(v), now) for k, v in records]
        size = sum(len(r.key or b"") + len(r.value or b"") + 32 for r in batch)
        limit = int(self.node.topic_configs(self.node.topic(OFFSETS_TOPIC))["max.message.bytes"])
        if size > limit:
            raise ApiError(
                RECORD_TOO_LARGE,
                f"the group's records ({size} bytes) would exceed max.message.bytes of "
                f"{OFFSETS_TOPIC} ({limit}): commit fewer offsets at once",
            )
        appended = loaded.partition.append_now([batch], "all")
        last: int = appended.infos[-1].last_offset
        loaded.last_written = last
        return last

    async def settled(self, loaded: Loaded) -> None:
        """Waits until everything this coordinator wrote is committed; raises the retriable
        error saying why not (the ISR shrank, leadership moved, a timeout)."""
        last = loaded.last_written
        if last < 0:
            return
        partition = loaded.partition
        if partition.high_watermark <= last:
            timeout_s = limits.PRODUCE_TIMEOUT_MS_DEFAULT / 1000
            await partition.wait_for_high_watermark_above(last, timeout_s)
            if partition.high_watermark <= last:
                raise partition.not_committed_error()

    # -- the background duty -------------------------------------------------------------------

    async def run(self) -> None:
        """Unloads partitions no longer led, loads newly led ones that hold records, and
        removes members whose session expired."""
        interval_s = limits.GROUP_EXPIRY_CHECK_INTERVAL_MS / 1000
        while True:
            await asyncio.sleep(interval_s)
            self._unload_stale()
            self._load_led()
            for loaded in list(self._loaded.values()):
                for group_id in loaded.shard.group_ids():
                    # Planned right before its write: an earlier write's wait may have let
                    # heartbeats change the group.
                    if self._current(loaded.index) is not loaded:
                        break
                    planned = loaded.shard.plan_expiry(group_id, int(time.monotonic() * 1000))
                    if planned is None:
                        continue
                    log.info(
                        "group %s: removing member(s) %s (session or rebalance timeout)",
                        group_id,
                        ", ".join(planned.answer),
                    )
                    try:
                        await self.write(loaded, planned)
                    except ApiError as e:
                        log.warning("group %s: expiry not written: %s", group_id, e)

    def _unload_stale(self) -> None:
        for index, loaded in list(self._loaded.items()):
            if self._current(index) is not loaded:
                del self._loaded[index]
                self.classic.unload(loaded)
                log.info("no longer the coordinator of %s-%d", OFFSETS_TOPIC, index)

    def _load_led(self) -> None:
        topic = self.node.quorum.snapshot_state().topics.get(OFFSETS_TOPIC)
        if topic is None:
            return
        for index in topic.partitions:
            if index in self._loaded or index in self._loading:
                continue
            partition = self._led_partition(index)
            if (
                partition is not None
                and partition.log.log_end_offset > partition.log.log_start_offset
            ):
                task = self._start_load(index, partition)
                task.add_done_callback(_log_load_failure)

    # -- the classic protocol: the Kafka listener's entry points -------------------------------

    async def join_group(self, group_id: str, request: JoinRequest) -> JoinResponse:
        """Kafka's JoinGroup. Answers when the group's join phase ends for this member (at
        most its rebalance timeout, or the initial delay of a new group's first rebalance),
        or at once (MEMBER_ID_REQUIRED, an error, a member of the current generation). Never
        raises for the coordinator's errors: they are the answer's (NOT_COORDINATOR...)."""
        try:
            loaded = await self.shard_for(group_id)
        except ApiError as e:
            return JoinResponse(kafka_error(e), request.member_id)
        step = classic_shard.join(loaded.shard, group_id, request, clock_now())
        answer = await self.classic.answer(loaded, group_id, step, "join")
        assert isinstance(answer, JoinResponse), answer
        return answer

    async def sync_group(self, group_id: str, request: SyncRequest) -> SyncResponse:
        """Kafka's SyncGroup: answers with the member's assignment once the leader's is stored
        (at once in a Stable group), or an error."""
        try:
            loaded = await self.shard_for(group_id)
        except ApiError as e:
            return SyncResponse(kafka_error(e))
        step = classic_shard.sync(loaded.shard, group_id, request, clock_now())
        answer = await self.classic.answer(loaded, group_id, step, "sync")
        assert isinstance(answer, SyncResponse), answer
        return answer

    async def heartbeat(self, group_id: str, request: HeartbeatRequest) -> KafkaError | None:
        """Kafka's Heartbeat: its error (REBALANCE_IN_PROGRESS: join again), None for none."""
        try:
            loaded = await self.shard_for(group_id)
            step = classic_shard.heartbeat(loaded.shard, group_id, request, clock_now())
            self.classic.carry_out(loaded, group_id, step)
            await self.settled(loaded)
        except ApiError as e:
            return kafka_error(e)
        assert step.answer is None or isinstance(step.answer, KafkaError), step.answer
        return step.answer

    async def leave_group(self, group_id: str, request: LeaveRequest) -> LeaveResponse:
        """Kafka's LeaveGroup (v3+: several members; each has its own error)."""
        try:
            loaded = await self.shard_for(group_id)
            step = classic_shard.leave(loaded.shard, group_id, request, clock_now())
            self.classic.carry_out(loaded, group_id, step)
            await self.settled(loaded)
        except ApiError as e:
            return LeaveResponse(kafka_error(e))
        assert isinstance(step.answer, LeaveResponse), step.answer
        return step.answer

    async def describe_classic(self, group_id: str) -> DescribedGroup:
        """Kafka's DescribeGroups for one group: a classic group as described, and a group
        with only committed offsets as the Empty classic group Kafka has for it. Raises
        GROUP_ID_NOT_FOUND, with Kafka 4.4's words, for a group that does not exist or is not
        classic (DescribeGroups v6 answers so; before v6, state Dead and no error), and the
        coordinator's errors (NOT_COORDINATOR...) as ApiError."""
        loaded = await self.shard_for(group_id)
        kind = loaded.shard.kind(group_id)
        described = classic_shard.describe_group(loaded.shard, group_id)
        await self.settled(loaded)
        if kind is None:
            raise ApiError(GROUP_ID_NOT_FOUND, f"Group {group_id} not found.")
        if kind != "classic":
            raise ApiError(GROUP_ID_NOT_FOUND, f"Group {group_id} is not a classic group.")
        if group_id not in loaded.shard.classic:
            return DescribedGroup(group_id, EMPTY)
        return described

    async def describe_consumer(self, group_id: str) -> dict[str, Any]:
        """Kafka's ConsumerGroupDescribe of one group, as ``GroupShard.describe`` shapes it
        (topics by name). Raises GROUP_ID_NOT_FOUND, with Kafka's words, for a group that does
        not exist or is not a consumer group, and the coordinator's errors."""
        loaded = await self.shard_for(group_id)
        kind = loaded.shard.kind(group_id)
        body = loaded.shard.describe(group_id, self.topics()) if kind == "consumer" else None
        await self.settled(loaded)
        if kind is None:
            raise ApiError(GROUP_ID_NOT_FOUND, f"Group {group_id} not found.")
        if body is None:
            raise ApiError(GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group.")
        return body

    async def consumer_heartbeat(self, group_id: str, hb: Heartbeat) -> tuple[dict[str, Any], bool]:
        """KIP-848's ConsumerGroupHeartbeat (``GroupShard.plan_heartbeat``): its answer, and
        whether the member's assigned partitions changed with it (Kafka sends the assignment
        only then, or to a full request). Raises the shard's and the coordinator's errors."""
        loaded = await self.shard_for(group_id)
        topics = self.topics()
        group = loaded.shard.groups.get(group_id)
        before: set[tuple[str, int]] | None = None
        if group is not None and hb.member_id in group.members:
            assigned = partitions_of(group.assignment(hb.member_id).assigned)
            before = set(topics.to_names(assigned))
        planned = loaded.shard.plan_heartbeat(group_id, hb, topics, clock_now().ms)
        answer: dict[str, Any] = await self.write(loaded, planned)
        after = {(a["topic"], a["partition"]) for a in answer["assignment"]}
        return answer, before != after

    async def fetch_offsets(
        self, group_id: str, member_id: str | None = None, member_epoch: int = -1
    ) -> dict[tuple[str, int], OffsetCommitValue]:
        """Kafka's OffsetFetch of one group: its committed offsets by (topic, partition), none
        for a group that does not exist, answered once what this coordinator wrote is
        committed. A consumer group's member is checked (``GroupShard.check_offset_fetch``).
        Raises those checks' errors and the coordinator's."""
        loaded = await self.shard_for(group_id)
        loaded.shard.check_offset_fetch(group_id, member_id, member_epoch)
        offsets = dict(loaded.shard.offsets.get(group_id, {}))
        await self.settled(loaded)
        return offsets

    async def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]) -> list[str]:
        """Kafka's OffsetDelete (``GroupShard.plan_offset_delete``): the topics left alone
        because the group subscribes to them."""
        loaded = await self.shard_for(group_id)
        subscribed: list[str] = await self.write(
            loaded, loaded.shard.plan_offset_delete(group_id, partitions)
        )
        return subscribed

    async def delete_group(self, group_id: str) -> None:
        """Kafka's DeleteGroups for one group (``GroupShard.plan_delete``)."""
        loaded = await self.shard_for(group_id)
        await self.write(loaded, loaded.shard.plan_delete(group_id))

    async def commit_offsets(
        self,
        group_id: str,
        member_id: str | None,
        generation_or_epoch: int | None,
        offsets: list[CommitOffset],
        *,
        group_instance_id: str | None = None,
        api_version: int | None = None,
    ) -> Any:
        """An offset commit to either kind of group (``GroupShard.plan_commit``): for a classic
        group ``generation_or_epoch`` is the generation (-1 or None with no member: a commit
        of an admin or of a consumer that assigns itself, only to an empty group). Answers
        once the commit is stored; raises ApiError (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
        REBALANCE_IN_PROGRESS, GROUP_ID_NOT_FOUND, UNKNOWN_TOPIC_OR_PARTITION, the
        coordinator's), which Kafka's OffsetCommit gives every partition of the request."""
        loaded = await self.shard_for(group_id)
        now = clock_now()
        planned = loaded.shard.plan_commit(
            group_id,
            member_id,
            generation_or_epoch,
            offsets,
            self.topics(),
            now.wall_ms,
            group_instance_id=group_instance_id,
            now_ms=now.ms,
            api_version=api_version,
        )
        return await self.write(loaded, planned)

    # -- views across shards -------------------------------------------------------------------

    def local_groups(self) -> list[dict[str, Any]]:
        """The groups of the shards this node has loaded."""
        out = []
        for index in sorted(self._loaded):
            loaded = self._current(index)
            if loaded is not None:
                out += [loaded.shard.summary(g) for g in loaded.shard.group_ids()]
        return out

    def kafka_groups(self) -> list[tuple[str, str, str, str]]:
        """(group, type, protocol type, state) of every group this node coordinates, as Kafka's
        ListGroups lists them (``GroupShard.kafka_listing``). Raises COORDINATOR_LOAD_IN_PROGRESS
        while a partition led here is still loading, as Kafka does, rather than leave its
        groups out."""
        self._load_led()
        if any(not task.done() for task in self._loading.values()):
            raise ApiError(
                COORDINATOR_LOAD_IN_PROGRESS,
                f"node {self.node.node_id} is loading groups from {OFFSETS_TOPIC}; retry shortly",
                {"retry_after_s": 1},
            )
        out = []
        for index in sorted(self._loaded):
            loaded = self._current(index)
            if loaded is not None:
                out += [(g, *loaded.shard.kafka_listing(g)) for g in loaded.shard.group_ids()]
        return out

    def committed_offsets(self) -> Iterator[tuple[str, str, int, int]]:
        """(group, topic, partition, committed offset) of every group this node coordinates
        now (its loaded shards), for the consumer-group lag of /metrics."""
        for index in sorted(self._loaded):
            loaded = self._current(index)
            if loaded is None:
                continue
            for group, offsets in loaded.shard.offsets.items():
                for (topic, partition), value in offsets.items():
                    yield group, topic, partition, value.offset

    def topics(self) -> Topics:
        state = self.node.quorum.snapshot_state()
        return Topics({name: (t.topic_id, len(t.partitions)) for name, t in state.topics.items()})


def _log_load_failure(task: asyncio.Task[Loaded]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("loading groups failed: %s", task.exception())
