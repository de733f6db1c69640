"""AsyncConsumer: Kafka's consumer for asyncio code (the public face is client/consumer.py).

Theory of operation:

- **Partitions**: :meth:`AsyncConsumer.assign` names them (no group needed), or
  :meth:`AsyncConsumer.subscribe` lets the group's coordinator hand them out (``group.id``
  required; Kafka 4's consumer protocol, see client/group_member.py). Subscribing and
  assigning are exclusive, as in Kafka.
- **Fetching** (client/consumer_fetch.py): each owned partition has a task long-polling its
  leader, a little ahead of the application, for the stored record batches as they lie in
  the leader's log (``Accept: application/vnd.kafka.batch``), read here with
  client/batches.py. Leader changes and dead nodes are followed by
  client/consumer_client.py; retriable errors are retried for as long as the consumer runs.
- **Positions**: :meth:`poll` returns at most ``max.poll.records`` records and moves each
  partition's position past what it returned (not past what was fetched); that position is
  what :meth:`commit` commits (the next offset to read). A partition with no committed offset,
  or whose position falls out of the log (OFFSET_OUT_OF_RANGE), starts at
  ``auto.offset.reset`` (``latest`` by default; ``none`` raises instead).
- **Commits**: ``enable.auto.commit`` (on by default with a group) commits the positions every
  ``auto.commit.interval.ms`` from :meth:`poll`, when partitions are revoked, and on
  :meth:`close`. A member's commits carry its member id and epoch.
- **The group**: a background task heartbeats (at the coordinator's interval, at once after a
  change in what the member owns). Rebalances run inside :meth:`poll`, as in Kafka: revoked
  partitions stop fetching, their positions are committed, ``on_partitions_revoked`` is
  called, and the next heartbeat reports them given up; new partitions start at their
  committed offset and ``on_partitions_assigned`` is called. A fenced member's partitions are
  lost (``on_partitions_lost``, nothing committed) and it joins again. A member whose
  application does not poll for ``max.poll.interval.ms`` leaves the group until it polls again.
- **Isolation**: a node serves only records below the high watermark (stored by every in-sync
  replica) and there are no transactions, so ``isolation.level`` read_committed and
  read_uncommitted read the same records.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from client import consumer_offsets as offsets_api
from client.client import TransportError
from client.consumer_client import ConsumerClient, ConsumerTransport
from client.consumer_config import ConsumerConfig
from client.consumer_fetch import (
    ConsumerRecord,
    NoOffsetForPartitionError,
    PartitionFetch,
    drain,
    fetch_loop,
    next_backoff,
    retriable,
    wait_s,
)
from client.group_member import MemberState, ProtocolViolation, TopicPartition
from client.protocol import FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID, ApiError
from client.security import ClientSecurity

log = logging.getLogger(__name__)

# How long close() waits for its last commit and the leave heartbeat: a consumer whose
# cluster is gone must still close.
CLOSE_TIMEOUT_S = 10.0

# Offsets to commit: partition -> the next offset to read.
Offsets = Mapping[TopicPartition, int] | Mapping[tuple[str, int], int]


class IllegalStateError(Exception):
    """A call that the consumer's state does not allow (Kafka's IllegalStateException)."""


class ConsumerRebalanceListener:
    """Kafka's rebalance callbacks; subclass and override what you need. Each gets a sorted
    list of partitions. With :class:`AsyncConsumer` a method may be a coroutine; with
    :class:`Consumer` it runs on a worker thread while the caller waits in ``poll`` or
    ``close``, so it may call the consumer (``commit``, ``seek``...)."""

    def on_partitions_revoked(self, partitions: list[TopicPartition]) -> Any:
        """Called before partitions go to another member (after their positions were
        committed when auto commit is on)."""

    def on_partitions_assigned(self, partitions: list[TopicPartition]) -> Any:
        """Called once new partitions are fetched from their committed offsets."""

    def on_partitions_lost(self, partitions: list[TopicPartition]) -> Any:
        """Called when the member was fenced: the partitions may belong to another member
        already, so nothing was committed. Kafka's default calls on_partitions_revoked."""
        return self.on_partitions_revoked(partitions)


class AsyncConsumer:
    """Kafka's consumer for asyncio code (see the module text). ``config`` holds Kafka
    consumer properties (``bootstrap.servers`` required); ``security`` overrides the security
    properties in it; ``transport`` replaces the HTTP client (tests)."""

    def __init__(
        self,
        config: Mapping[str, object],
        *,
        security: ClientSecurity | None = None,
        transport: ConsumerTransport | None = None,
    ) -> None:
        self.config = ConsumerConfig.from_properties(config, security)
        self._own_client = transport is None
        self._client: Any = transport or ConsumerClient(
            self.config.bootstrap_servers,
            self.config.security,
            timeout_s=self.config.request_timeout_ms / 1000,
        )
        self._fetching: dict[TopicPartition, PartitionFetch] = {}
        self._data = asyncio.Event()  # a batch arrived, an error, or an assignment changed
        self._next_drain = 0
        self._mode: str | None = None  # "assign" or "subscribe"
        self._member: MemberState | None = None
        self._listener: ConsumerRebalanceListener | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._heartbeat_wake = asyncio.Event()
        self._lost: list[TopicPartition] = []
        self._group_error: BaseException | None = None
        self._last_poll_s = time.monotonic()
        self._polled = asyncio.Event()
        self._last_auto_commit_s = time.monotonic()
        self._commits: set[asyncio.Task[None]] = set()
        self._closed = False
        self._opened = False

    async def __aenter__(self) -> AsyncConsumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _open(self) -> None:
        if self._closed:
            raise IllegalStateError("This consumer has already been closed.")
        if not self._opened and isinstance(self._client, ConsumerClient):
            self._client.open()
        self._opened = True

    def _require_group(self) -> str:
        if self.config.group_id is None:
            raise IllegalStateError(
                "To use the group management or offset commit APIs, you must provide a valid "
                "group.id in the consumer configuration."
            )
        return self.config.group_id

    # -- choosing partitions --------------------------------------------------------------------

    async def assign(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Reads exactly these partitions (no group membership); a partition kept from the
        previous assignment keeps its position. A new one starts at its committed offset
        (with a group.id) or at auto.offset.reset."""
        self._open()
        if self._mode == "subscribe":
            raise IllegalStateError(
                "Subscription to topics, partitions and pattern are mutually exclusive"
            )
        wanted = {TopicPartition(t, p) for t, p in partitions}
        self._mode = "assign" if wanted else None
        for tp in [tp for tp in self._fetching if tp not in wanted]:
            self._stop(tp)
            del self._fetching[tp]
        new = sorted(wanted - set(self._fetching))
        committed = await self._committed_or_none(new) if self.config.group_id else {}
        for tp in new:
            self._start(tp, committed.get(tp))

    async def subscribe(
        self, topics: Iterable[str], listener: ConsumerRebalanceListener | None = None
    ) -> None:
        """Joins the group (``group.id``) with this subscription, or changes it; the
        coordinator assigns the partitions, which :meth:`poll` starts reading."""
        self._open()
        group = self._require_group()
        if self._mode == "assign":
            raise IllegalStateError(
                "Subscription to topics, partitions and pattern are mutually exclusive"
            )
        names = sorted(set(topics))
        if not names:
            raise ValueError("subscribe needs at least one topic (use close() to leave)")
        self._mode = "subscribe"
        self._listener = listener
        if self._member is None:
            cfg = self.config
            self._member = MemberState(
                names,
                session_timeout_ms=cfg.session_timeout_ms,
                rebalance_timeout_ms=cfg.max_poll_interval_ms,
                assignor=cfg.group_remote_assignor,
                client_id=cfg.client_id,
                heartbeat_interval_ms=cfg.heartbeat_interval_ms or 5000,
            )
            self._heartbeat_task = asyncio.create_task(self._heartbeat_loop(group, self._member))
        else:
            self._member.subscribe(names)
            self._heartbeat_wake.set()

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer reads now."""
        return set(self._fetching)

    def subscription(self) -> list[str]:
        return list(self._member.topics) if self._member is not None else []

    async def partitions_for_topic(self, topic: str) -> list[int]:
        """The topic's partition numbers (raises UNKNOWN_TOPIC_OR_PARTITION for none)."""
        self._open()
        described = await self._client.describe_topic(topic)
        return sorted(int(p["partition"]) for p in described.get("partitions") or [])

    # -- fetching -------------------------------------------------------------------------------

    def _start(self, tp: TopicPartition, committed: int | None) -> PartitionFetch:
        reset = self.config.auto_offset_reset
        state = PartitionFetch(tp, committed, reset if committed is None else committed)
        self._fetching[tp] = state
        if committed is None and reset == "none":
            state.error = NoOffsetForPartitionError(
                f"Undefined offset with no reset policy for partitions: {tp.topic}-{tp.partition}"
            )
            self._data.set()
        else:
            self._run(state)
        return state

    def _run(self, state: PartitionFetch) -> None:
        state.task = asyncio.create_task(fetch_loop(state, self._client, self.config, self._data))

    def _stop(self, tp: TopicPartition) -> None:
        state = self._fetching.get(tp)
        if state is not None:
            state.stop()

    def _restart(self, state: PartitionFetch, position: int | None, fetch_from: int | str) -> None:
        state.reset(position, fetch_from)
        self._run(state)

    def _raise_errors(self) -> None:
        if self._group_error is not None:
            error, self._group_error = self._group_error, None
            raise error
        for state in self._fetching.values():
            if state.error is not None:
                error, state.error = state.error, None
                if isinstance(error, NoOffsetForPartitionError):
                    state.error = error  # stays until the application seeks
                    raise error
                # The next poll() tries the partition again, as Kafka's consumer would.
                self._run(state)
                raise error

    def _drain(self, max_records: int | None) -> list[ConsumerRecord]:
        states = list(self._fetching.values())
        if not states:
            return []
        # A different partition goes first each time, so none starves behind a busy one.
        start = self._next_drain % len(states)
        self._next_drain += 1
        limit = self.config.max_poll_records
        if max_records is not None:
            limit = max(1, min(limit, max_records))
        return drain(states[start:] + states[:start], limit)

    async def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> list[ConsumerRecord]:
        """Records fetched since the last poll (at most max.poll.records, or ``max_records``
        when smaller), waiting up to ``timeout_ms`` for some; runs any pending rebalance first
        and auto-commits when due. Raises the error of a partition or of the group (once)."""
        self._open()
        if self._mode is None:
            raise IllegalStateError(
                "Consumer is not subscribed to any topics or assigned any partitions"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_ms, 0) / 1000
        self._last_poll_s = time.monotonic()
        self._polled.set()
        while True:
            if self._member is not None:
                await self._reconcile(self._member)
            self._raise_errors()
            self._maybe_auto_commit()
            records = self._drain(max_records)
            if records:
                return records
            remaining = deadline - loop.time()
            if remaining <= 0:
                return records
            self._data.clear()
            try:
                await asyncio.wait_for(self._data.wait(), remaining)
            except TimeoutError:
                pass

    # -- positions ------------------------------------------------------------------------------

    def _state(self, tp: tuple[str, int]) -> PartitionFetch:
        state = self._fetching.get(TopicPartition(*tp))
        if state is None:
            raise IllegalStateError(f"No current assignment for partition {tp[0]}-{tp[1]}")
        return state

    async def position(self, tp: tuple[str, int]) -> int:
        """The offset of the next record poll() will return for the partition."""
        self._open()
        state = self._state(tp)
        if state.position is None:
            where = state.fetch_from
            offsets = await self._client.offsets(tp[0], tp[1])
            if state.position is not None:
                return state.position  # the partition's first fetch resolved it meanwhile
            resolved = where if isinstance(where, int) else int(offsets[where])
            self._restart(state, resolved, resolved)
        assert state.position is not None
        return state.position

    async def seek(self, tp: tuple[str, int], offset: int) -> None:
        """The next poll() returns the partition's records from ``offset`` on (an offset out
        of the log is reset by auto.offset.reset at the next fetch)."""
        self._open()
        if offset < 0:
            raise ValueError(f"seek offset must not be negative, got {offset}")
        self._restart(self._state(tp), offset, offset)

    async def seek_to_beginning(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        self._open()
        for tp in self._fetching if partitions is None else partitions:
            self._restart(self._state(tp), None, "earliest")

    async def seek_to_end(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        self._open()
        for tp in self._fetching if partitions is None else partitions:
            self._restart(self._state(tp), None, "latest")

    async def offsets_for_times(self, timestamps: Offsets) -> dict[TopicPartition, int | None]:
        """For each partition, the first offset whose timestamp is at or after the given one
        (ms), or None when there is none."""
        self._open()
        tps = [TopicPartition(*tp) for tp in timestamps]
        answers = await asyncio.gather(
            *(self._client.offsets(tp.topic, tp.partition, timestamps[tp]) for tp in tps)
        )
        return {tp: answer.get("offset") for tp, answer in zip(tps, answers, strict=True)}

    async def beginning_offsets(
        self, partitions: Iterable[tuple[str, int]]
    ) -> dict[TopicPartition, int]:
        return await self._offsets(partitions, "earliest")

    async def end_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int]:
        """Each partition's high watermark (the offset the next committed record gets)."""
        return await self._offsets(partitions, "latest")

    async def _offsets(
        self, partitions: Iterable[tuple[str, int]], which: str
    ) -> dict[TopicPartition, int]:
        self._open()
        tps = [TopicPartition(*tp) for tp in partitions]
        answers = await asyncio.gather(*(self._client.offsets(t, p) for t, p in tps))
        return {tp: int(a[which]) for tp, a in zip(tps, answers, strict=True)}

    # -- commits --------------------------------------------------------------------------------

    def _positions(self, only: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        chosen = self._fetching if only is None else only
        return {
            tp: state.position
            for tp in chosen
            if (state := self._fetching.get(tp)) is not None and state.position is not None
        }

    async def commit(self, offsets: Offsets | None = None) -> None:
        """Commits ``offsets`` (partition -> next offset to read), or every partition's
        position, and returns once the commit is stored; retriable failures are retried
        until request.timeout.ms."""
        self._open()
        group = self._require_group()
        chosen = (
            self._positions()
            if offsets is None
            else {TopicPartition(*tp): int(o) for tp, o in offsets.items()}
        )
        if not chosen:
            return
        await offsets_api.commit(self._client, self.config, group, chosen, self._member)

    def commit_async(
        self,
        offsets: Offsets | None = None,
        callback: Callable[[dict[TopicPartition, int], BaseException | None], Any] | None = None,
    ) -> asyncio.Task[None]:
        """Starts a commit (as :meth:`commit`) and returns at once; ``callback(offsets,
        error)`` runs when it ends (error None on success), else a failure is logged."""
        self._open()
        self._require_group()
        chosen = (
            self._positions()
            if offsets is None
            else {TopicPartition(*tp): int(o) for tp, o in offsets.items()}
        )

        async def run() -> None:
            error: BaseException | None = None
            try:
                await self.commit(chosen)
            except (ApiError, TransportError, IllegalStateError) as exc:
                error = exc
            if callback is not None:
                callback(chosen, error)
            elif error is not None:
                log.warning("offset commit failed: %s", error)

        task = asyncio.create_task(run())
        self._commits.add(task)
        task.add_done_callback(self._commits.discard)
        return task

    def _maybe_auto_commit(self) -> None:
        cfg = self.config
        if not cfg.enable_auto_commit or cfg.group_id is None:
            return
        now = time.monotonic()
        if now - self._last_auto_commit_s < cfg.auto_commit_interval_ms / 1000:
            return
        self._last_auto_commit_s = now
        if self._positions() and not self._commits:
            self.commit_async()

    async def committed(
        self, partitions: Iterable[tuple[str, int]]
    ) -> dict[TopicPartition, int | None]:
        """The group's committed offset of each partition (None where there is none)."""
        self._open()
        self._require_group()
        return await self._committed_or_none([TopicPartition(*tp) for tp in partitions])

    async def _committed_or_none(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        group = self._require_group()
        return await offsets_api.committed(self._client, self.config, group, partitions)

    # -- the group ------------------------------------------------------------------------------

    async def _heartbeat_loop(self, group: str, member: MemberState) -> None:
        cfg = self.config
        backoff_s = 0.0
        while True:
            if time.monotonic() - self._last_poll_s > cfg.max_poll_interval_ms / 1000:
                await self._leave_for_poll_timeout(group, member)
                continue
            body = member.heartbeat_body()
            member.heartbeat_due = False
            try:
                answer = await self._client.heartbeat(group, body)
                member.on_answer(answer, body)
                backoff_s = 0.0
                self._data.set()  # poll() reconciles towards the new target
            except ApiError as exc:
                if exc.code in (FENCED_MEMBER_EPOCH.code, UNKNOWN_MEMBER_ID.code):
                    self._fenced(member)
                    continue
                if not retriable(exc):
                    self._group_error = exc
                    self._data.set()
                    return
                backoff_s = next_backoff(backoff_s, cfg.retry_backoff_ms / 1000)
                await asyncio.sleep(wait_s(exc, backoff_s))
                continue
            except TransportError:
                backoff_s = next_backoff(backoff_s, cfg.retry_backoff_ms / 1000)
                await asyncio.sleep(backoff_s)
                continue
            except ProtocolViolation as exc:
                self._group_error = exc
                self._data.set()
                return
            interval_ms = member.heartbeat_interval_ms
            if cfg.heartbeat_interval_ms is not None:
                interval_ms = min(interval_ms, cfg.heartbeat_interval_ms)
            if not member.heartbeat_due:
                self._heartbeat_wake.clear()
                try:
                    await asyncio.wait_for(self._heartbeat_wake.wait(), interval_ms / 1000)
                except TimeoutError:
                    pass

    def _fenced(self, member: MemberState) -> None:
        lost = member.fenced()
        for tp in lost:
            self._stop(tp)
            self._fetching.pop(tp, None)
        self._lost.extend(lost)
        self._data.set()

    async def _leave_for_poll_timeout(self, group: str, member: MemberState) -> None:
        """Kafka's max.poll.interval.ms: a member whose application stopped polling leaves,
        so its partitions go to members that make progress; it joins again at its next poll."""
        log.warning(
            "poll() was not called for max.poll.interval.ms (%d ms): leaving group %s",
            self.config.max_poll_interval_ms,
            group,
        )
        body = member.leave_body()
        if body is not None:
            try:
                await self._client.heartbeat(group, body)
            except (ApiError, TransportError) as exc:
                log.warning("leaving group %s failed: %s", group, exc)
        self._fenced(member)
        self._polled.clear()
        await self._polled.wait()

    async def _call(self, name: str, partitions: list[TopicPartition]) -> None:
        method = getattr(self._listener, name, None) if self._listener is not None else None
        if method is None:
            return
        result = method(partitions)
        if inspect.isawaitable(result):
            await result

    async def _reconcile(self, member: MemberState) -> None:
        if self._lost:
            lost, self._lost = sorted(set(self._lost)), []
            await self._call("on_partitions_lost", lost)
        while (plan := member.plan()) is not None:
            if plan.revoke:
                for tp in plan.revoke:
                    self._stop(tp)
                positions = self._positions(plan.revoke)
                if self.config.enable_auto_commit and positions:
                    try:
                        await self.commit(positions)
                    except (ApiError, TransportError) as exc:
                        log.warning("commit of revoked partitions failed: %s", exc)
                await self._call("on_partitions_revoked", list(plan.revoke))
                if not member.gave_up(plan.revoke, plan.incarnation):
                    continue  # fenced meanwhile: the partitions were dropped as lost
                for tp in plan.revoke:
                    self._fetching.pop(tp, None)
                self._heartbeat_wake.set()
            if plan.assign:
                try:
                    committed = await self._committed_or_none(list(plan.assign))
                except (ApiError, TransportError) as exc:
                    log.warning(
                        "reading committed offsets failed (retried at the next poll): %s", exc
                    )
                    return
                taken = member.took(plan.assign, plan.incarnation)
                for tp in taken:
                    self._start(tp, committed.get(tp))
                self._heartbeat_wake.set()
                if taken:
                    await self._call("on_partitions_assigned", list(taken))

    # -- closing --------------------------------------------------------------------------------

    async def close(self) -> None:
        """Commits the positions (with auto commit), calls on_partitions_revoked, leaves the
        group and closes the connections. Safe to call twice."""
        if self._closed:
            return
        member = self._member
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        for tp in list(self._fetching):
            self._stop(tp)
        try:
            await asyncio.wait_for(self._close_group(member), CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("closing the consumer: the last commit or leave timed out")
        finally:
            self._closed = True
            if self._commits:
                await asyncio.gather(*self._commits, return_exceptions=True)
            tasks = [s.task for s in self._fetching.values() if s.task is not None]
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._own_client and self._opened:
                await self._client.close()

    async def _close_group(self, member: MemberState | None) -> None:
        if self.config.enable_auto_commit and self.config.group_id is not None and self._opened:
            try:
                await self.commit()
            except (ApiError, TransportError) as exc:
                log.warning("the closing commit failed: %s", exc)
        if member is None:
            return
        owned = sorted(member.owned)
        if owned:
            await self._call("on_partitions_revoked", owned)
        body = member.leave_body()
        if body is not None and self.config.group_id is not None:
            try:
                await self._client.heartbeat(self.config.group_id, body)
            except (ApiError, TransportError) as exc:
                log.warning("leaving the group failed: %s", exc)
