"""The classic groups' side of the group coordinator's driver: the futures of parked
JoinGroup/SyncGroup requests, each group's timer on the event loop, and the wait for a leader's
assignment record to commit before it is handed out. ``runtime.GroupCoordinator`` owns one and
calls it with each step the groups (``classic.py``, through ``classic_shard.py``) return.

Nothing here awaits between taking a step and carrying it out: the records are appended, the
parked requests answered and the timer set before the next operation on the shard runs, so
the next one sees all of it (as Kafka's coordinator runs one operation at a time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from client.protocol import ApiError
from server import limits
from server.groups import classic_shard
from server.groups.classic_messages import (
    JoinResponse,
    KafkaError,
    Now,
    Reply,
    Step,
    StoreAssignment,
    SyncResponse,
)
from server.groups.shard import GroupRecord

if TYPE_CHECKING:
    from server.groups.runtime import Loaded

log = logging.getLogger(__name__)

# A parked classic request: (group id, member id, "join" or "sync").
ParkedKey = tuple[str, str, str]


class ClassicDriver:
    def __init__(
        self,
        append: Callable[[Loaded, list[GroupRecord]], int],
        is_current: Callable[[Loaded], bool],
    ) -> None:
        """``append`` appends records through the leader append and returns the last offset;
        ``is_current`` says whether a loaded shard is still this coordinator's."""
        self._append = append
        self._is_current = is_current
        self._parked: dict[ParkedKey, tuple[Loaded, asyncio.Future[Any]]] = {}
        self._timers: dict[str, tuple[Loaded, asyncio.TimerHandle]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def parked_count(self) -> int:
        """Requests waiting for an answer (for tests: nothing leaks)."""
        return len(self._parked)

    def unload(self, loaded: Loaded) -> None:
        """Lets a shard's classic groups go: their parked requests are answered
        NOT_COORDINATOR (Kafka's onUnloaded), their timers stopped."""
        for group_id, group in loaded.shard.classic.items():
            self._deliver(group_id, group.unload())
        for key, (owner, future) in list(self._parked.items()):
            if owner is loaded:
                del self._parked[key]
                if not future.done():
                    future.set_result(refusal(key[2], key[1], KafkaError.NOT_COORDINATOR))
        for group_id, (owner, handle) in list(self._timers.items()):
            if owner is loaded:
                handle.cancel()
                del self._timers[group_id]

    async def answer(self, loaded: Loaded, group_id: str, step: Step, kind: str) -> Any:
        """Carries ``step`` out and returns the caller's answer: at once, or when its parked
        request is answered."""
        future = None
        if step.parked is not None:
            key = (group_id, step.parked, kind)
            previous = self._parked.get(key)
            if previous is not None and not previous[1].done():
                # The member asked again (its client gave up on the first request): the first
                # is answered as a rebalance, which its client would retry anyway.
                previous[1].set_result(refusal(kind, step.parked, KafkaError.REBALANCE_IN_PROGRESS))
            future = asyncio.get_running_loop().create_future()
            self._parked[key] = (loaded, future)
        self.carry_out(loaded, group_id, step)
        if future is None:
            return step.answer
        try:
            return await future
        finally:
            entry = self._parked.get(key)
            if entry is not None and entry[1] is future:
                del self._parked[key]

    def carry_out(self, loaded: Loaded, group_id: str, step: Step) -> None:
        """Appends the step's records, answers the parked requests it answers, and sets the
        group's timer. No await: the next operation on the shard sees all of it."""
        if step.records:
            try:
                last = self._append(loaded, step.records)
            except ApiError as e:
                log.warning("group %s: records not written: %s", group_id, e)
                if step.stored is not None:
                    failed = classic_shard.assignment_stored(
                        loaded.shard, group_id, step.stored, _append_error(e), clock_now()
                    )
                    self._deliver(group_id, step.replies)
                    self.carry_out(loaded, group_id, failed)
                    return
            else:
                if step.stored is not None:
                    task = asyncio.ensure_future(
                        self._when_stored(loaded, group_id, step.stored, last)
                    )
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        self._deliver(group_id, step.replies)
        self.arm(loaded, group_id)

    async def _when_stored(
        self, loaded: Loaded, group_id: str, stored: StoreAssignment, last: int
    ) -> None:
        """Hands a leader's assignment out once its record is committed (Kafka answers the
        SyncGroups from the append's future), or reports why it is not."""
        error: KafkaError | None = None
        partition = loaded.partition
        try:
            if partition.high_watermark <= last:
                timeout_s = limits.PRODUCE_TIMEOUT_MS_DEFAULT / 1000
                await partition.wait_for_high_watermark_above(last, timeout_s)
                if partition.high_watermark <= last:
                    raise partition.not_committed_error()
            refusal = partition.acks_all_error(last)
            if refusal is not None:
                raise refusal
        except ApiError as e:
            error = _append_error(e)
        if not self._is_current(loaded):
            return  # unloaded meanwhile: its parked requests were answered NOT_COORDINATOR
        step = classic_shard.assignment_stored(loaded.shard, group_id, stored, error, clock_now())
        self.carry_out(loaded, group_id, step)

    def _deliver(self, group_id: str, replies: list[Reply]) -> None:
        for reply in replies:
            kind = "join" if isinstance(reply.response, JoinResponse) else "sync"
            entry = self._parked.pop((group_id, reply.member_id, kind), None)
            if entry is not None and not entry[1].done():
                entry[1].set_result(reply.response)

    def arm(self, loaded: Loaded, group_id: str) -> None:
        """Sets the group's one timer to its next deadline (none when it has none)."""
        previous = self._timers.pop(group_id, None)
        if previous is not None:
            previous[1].cancel()
        group = loaded.shard.classic.get(group_id)
        deadline = group.next_deadline_ms() if group is not None else None
        if deadline is None:
            return
        delay_s = max(deadline - clock_now().ms, 0) / 1000
        handle = asyncio.get_running_loop().call_later(delay_s, self._fire, loaded, group_id)
        self._timers[group_id] = (loaded, handle)

    def _fire(self, loaded: Loaded, group_id: str) -> None:
        entry = self._timers.get(group_id)
        if entry is not None and entry[0] is loaded:
            del self._timers[group_id]
        if not self._is_current(loaded):
            return
        try:
            step = classic_shard.tick(loaded.shard, group_id, clock_now())
            self.carry_out(loaded, group_id, step)
        except Exception:
            log.exception("group %s: its timers failed", group_id)


def clock_now() -> Now:
    """This moment: the monotonic clock for deadlines, the wall clock for records."""
    return Now(int(time.monotonic() * 1000), int(time.time() * 1000))


def refusal(kind: str, member_id: str, error: KafkaError) -> JoinResponse | SyncResponse:
    return JoinResponse(error, member_id) if kind == "join" else SyncResponse(error)


# Kafka's answers to a coordinator's failures (GroupCoordinatorService.handleOperationException
# and GroupMetadataManager.appendGroupMetadataErrorToResponseError): a client finds the
# coordinator again, or retries.
_APPEND_ERRORS = {
    "UNKNOWN_TOPIC_OR_PARTITION": KafkaError.COORDINATOR_NOT_AVAILABLE,
    "NOT_ENOUGH_REPLICAS": KafkaError.COORDINATOR_NOT_AVAILABLE,
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND": KafkaError.COORDINATOR_NOT_AVAILABLE,
    "REQUEST_TIMED_OUT": KafkaError.COORDINATOR_NOT_AVAILABLE,
    "LEADER_NOT_AVAILABLE": KafkaError.COORDINATOR_NOT_AVAILABLE,
    "NOT_LEADER_OR_FOLLOWER": KafkaError.NOT_COORDINATOR,
    "KAFKA_STORAGE_ERROR": KafkaError.NOT_COORDINATOR,
    # Kafka's MESSAGE_TOO_LARGE of a batch of group records (too many offsets at once).
    "RECORD_TOO_LARGE": KafkaError.UNKNOWN_SERVER_ERROR,
}


def coordinator_failure(e: ApiError) -> KafkaError | None:
    """Kafka's answer when the coordinator failed to carry a request out (its records not
    written or not committed, leadership moving), for any group API; None when ``e`` is an
    answer of the group's own (UNKNOWN_MEMBER_ID, GROUP_ID_NOT_FOUND...)."""
    return _APPEND_ERRORS.get(e.name)


def _append_error(e: ApiError) -> KafkaError:
    return _APPEND_ERRORS.get(e.name, KafkaError.UNKNOWN_SERVER_ERROR)


def kafka_error(e: ApiError) -> KafkaError:
    """The answer a classic request gets for an ApiError of the coordinator."""
    try:
        return KafkaError(e.name)
    except ValueError:
        return _append_error(e)
