"""Fetch on the Kafka listener: consumers read stored batches as they lie on disk (never
decoded), with Kafka's limits, long poll and fetch sessions (KIP-227).

Theory of operation
-------------------
A request names partitions with a fetch offset and a partition_max_bytes each, and for the
whole answer max_bytes, min_bytes and max_wait_ms. The answer holds, per partition, the
batches from the one holding the fetch offset up to the high watermark
(``http_batches.read_batches``, the binary HTTP fetch's read), the high watermark, the last
stable offset (the high watermark: no transactions) and the log start offset, or an error, in
Kafka's order (KafkaApis.handleFetchRequest): UNKNOWN_TOPIC_ID for an id the node does not
know; TOPIC_AUTHORIZATION_FAILED without READ on the topic, whether or not it or the partition
exists (existence is not told); UNKNOWN_TOPIC_OR_PARTITION; INCONSISTENT_TOPIC_ID for a
session's partition named by a topic id (v13+) whose name is now another topic's (deleted and
recreated: the new log is not served from the old one's offset); NOT_LEADER_OR_FOLLOWER
(with the current leader; also while this node is not ready or the replica is still opening:
never LEADER_NOT_AVAILABLE, which the Java consumer cannot take), FENCED_LEADER_EPOCH /
UNKNOWN_LEADER_EPOCH against the request's current leader epoch, OFFSET_OUT_OF_RANGE outside
[log start, log end] (``http_records.check_fetch_offset``, the HTTP fetch's rule).

Sizes (KIP-74): partitions are read in order, each up to min(partition_max_bytes, what is left
of max_bytes); the first batch of the first partition with data goes whole even above both,
so a consumer always progresses; after it only whole batches that fit.

Long poll (Kafka's DelayedFetch): while the answer holds fewer than min_bytes and no error, the
request waits, up to max_wait_ms, for a change of any partition it reads (an append, a high
watermark move, a leadership change), and reads again.

Sessions: ``server/fetch_sessions.SessionTable`` (the replica fetch's, one rule set for both):
a full request (epoch 0) opens a session holding its partitions; an incremental one (the
session's id and next epoch) names only partitions whose fetch state changed, plus forgotten
ones; the answer then holds only partitions with news (records, a new high watermark or log
start offset, an error), the first answer every one. A sessionless request (epoch -1) is the
old full fetch. An unknown session or a wrong epoch is a top-level FETCH_SESSION_ID_NOT_FOUND
or INVALID_FETCH_SESSION_EPOCH; the client then starts a full session. An incremental answer
moves the partitions that returned records to the end of the session (Kafka's rule), so under
max_bytes the next answer serves the others first and none is starved. A session holds at most
FETCH_SESSION_PARTITIONS_MAX partitions: a full request naming more gets no session (session
id 0, answered sessionless: Kafka's answer when it cannot cache one); an incremental one that
would take it above ends the session and is answered sessionless, as Kafka ends a session an
incremental request empties. Here a session belongs to its connection and ends with it
(Kafka's outlive their connection; a client that reconnects starts a full one, which the
protocol allows at any time).

Follower fetches (a replica id) are Kafka's replication, which this listener does not serve:
the connection closes, as for an API it does not have.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from client.protocol import ApiError
from kraft.state import MetadataState
from server.clock import SYSTEM_CLOCK
from server.fetch_sessions import (
    FULL_EPOCH,
    SESSIONLESS_EPOCH,
    Cached,
    LeaderSession,
    SessionError,
    SessionTable,
)
from server.http_batches import read_batches, records_in
from server.http_records import check_fetch_offset
from server.kafka import limits
from server.kafka.apis import ApiSpec, RequestContext, authorize
from server.kafka.entities import build, topic_id_text
from server.kafka.errors import error_code_of
from server.kafka.frames import NotServedError
from server.kafka.replicas import (
    FETCH_PARTITION_CODES,
    error_fields,
    node_endpoints,
    serving_leader,
)
from server.node import Node
from server.partition import Partition

FETCH_KEY = 1
READ_COMMITTED = 1


@dataclass(frozen=True)
class FetchWant:
    """A consumer's fetch state of one partition (what a session holds of it)."""

    topic: str
    partition: int
    topic_id: str
    fetch_offset: int
    current_leader_epoch: int
    partition_max_bytes: int
    # Named by topic id (Fetch v13+): the id is the partition's identity, and a session's
    # partition whose topic was deleted and recreated under its name is not the new one.
    by_id: bool = False


class ConsumerSessions:
    """A node's consumer fetch sessions, each owned by the connection that opened it."""

    def __init__(
        self,
        sessions_max: int = limits.FETCH_SESSIONS_MAX,
        partitions_max: int = limits.FETCH_SESSION_PARTITIONS_MAX,
    ) -> None:
        rng = random.Random()
        self.table: SessionTable[FetchWant] = SessionTable(
            sessions_max, lambda: rng.randrange(1, 2**31), partitions_max
        )

    def connection_closed(self, connection_id: int) -> None:
        """The connection's session (if any) ends with it."""
        session = self.table.of_replica(connection_id)
        if session is not None:
            self.table.close(session)


_sessions: weakref.WeakKeyDictionary[Node, ConsumerSessions] = weakref.WeakKeyDictionary()


def sessions_of(node: Node) -> ConsumerSessions:
    sessions = _sessions.get(node)
    if sessions is None:
        sessions = _sessions[node] = ConsumerSessions()
    return sessions


# -- the request -------------------------------------------------------------------------------


@dataclass
class Slot:
    """One partition of the answer: what the request (or session) wants and, once read, the
    answer's fields."""

    want: FetchWant | None  # None: the topic is unknown (``name`` or ``topic_id`` says which)
    name: str | None
    topic_id: str | None
    partition: int
    answer: dict[str, Any]
    named: bool = True  # named in this request (an incremental answer names it if it changed)


def _wants(
    ctx: RequestContext, request: Any
) -> tuple[list[Slot], list[tuple[str, int]], set[tuple[str, int]]]:
    """The partitions the request names (slots in order; unknown topics and partitions answer
    an error), the partitions it forgets (incremental requests), and the forgotten ones named
    by a topic id the metadata no longer has (id, partition): a session may hold them."""
    state = ctx.node.quorum.snapshot_state()
    slots: list[Slot] = []
    readable: dict[str, bool] = {}

    def may_read(topic: str) -> bool:
        if topic not in readable:
            readable[topic] = authorize(ctx, "READ", "TOPIC", topic)
        return readable[topic]

    for t in request.topics:
        by_id = topic_id_text(getattr(t, "topic_id", None))
        name: str | None = getattr(t, "topic", None)
        if by_id is not None or name is None:
            found = state.topic_by_id(by_id) if by_id is not None else None
            name = None if found is None else found.name
        topic = None if name is None else state.topics.get(name)
        for p in t.partitions:
            if name is None:  # an unknown id names no topic to authorize: Kafka's order
                code = (
                    ErrorCode.unknown_topic_id
                    if by_id is not None
                    else ErrorCode.unknown_topic_or_partition
                )
                slots.append(Slot(None, None, by_id, p.partition, {"error_code": code}))
                continue
            if topic is None or int(p.partition) not in topic.partitions:
                # READ first, as Kafka's KafkaApis.handleFetchRequest: a principal that may not
                # read the topic learns nothing of whether it (or the partition) exists.
                # Answered as an error only, never kept in a fetch session: a client naming
                # 100k partitions that do not exist must not grow the node's memory.
                code = (
                    ErrorCode.unknown_topic_or_partition
                    if may_read(name)
                    else ErrorCode.topic_authorization_failed
                )
                topic_id = by_id if topic is None else topic.topic_id
                slots.append(Slot(None, name, topic_id, p.partition, {"error_code": code}))
                continue
            want = FetchWant(
                topic.name,
                int(p.partition),
                topic.topic_id,
                int(p.fetch_offset),
                int(getattr(p, "current_leader_epoch", -1)),
                max(int(p.partition_max_bytes), 0),
                by_id is not None,
            )
            slots.append(Slot(want, topic.name, topic.topic_id, want.partition, {}))
    forgotten: list[tuple[str, int]] = []
    forgotten_ids: set[tuple[str, int]] = set()
    for f in getattr(request, "forgotten_topics_data", ()):
        by_id = topic_id_text(getattr(f, "topic_id", None))
        name = getattr(f, "topic", None)
        if by_id is not None:
            found = state.topic_by_id(by_id)
            name = None if found is None else found.name
            if found is None:
                forgotten_ids.update((by_id, int(i)) for i in f.partitions)
        if name is not None:
            forgotten.extend((name, int(i)) for i in f.partitions)
    return slots, forgotten, forgotten_ids


def _forgotten_by_old_id(
    session: LeaderSession[FetchWant] | None, ids: set[tuple[str, int]]
) -> list[tuple[str, int]]:
    """The session's partitions that ``ids`` (topic id, partition) forget: a client forgets a
    partition by the id it fetched it under, which the metadata may not know any more (the
    topic was deleted, perhaps recreated under its name)."""
    if session is None or not ids:
        return []
    return [key for key, c in session.partitions.items() if (c.want.topic_id, key[1]) in ids]


def _replica_id(request: Any) -> int:
    state = getattr(request, "replica_state", None)
    if state is not None and int(state.replica_id) >= 0:
        return int(state.replica_id)
    return int(getattr(request, "replica_id", -1))


async def fetch(ctx: RequestContext, request: Any) -> Any:
    replica = _replica_id(request)
    if replica >= 0:
        raise NotServedError(
            f"a fetch from replica {replica}: Kafka's replication is not served on this listener"
        )
    node = ctx.node
    slots, forgotten, forgotten_ids = _wants(ctx, request)
    session_id = int(getattr(request, "session_id", 0))
    session_epoch = int(getattr(request, "session_epoch", SESSIONLESS_EPOCH))
    incremental = session_epoch > FULL_EPOCH
    session = None
    if session_epoch != SESSIONLESS_EPOCH or session_id != 0:
        sessions = sessions_of(node).table
        if incremental and forgotten_ids:
            held = sessions.get(session_id)
            if held is not None and held.replica_id == ctx.connection_id:
                forgotten += _forgotten_by_old_id(held, forgotten_ids)
        try:
            session, _closed = sessions.begin(
                ctx.connection_id,
                session_id,
                session_epoch,
                [s.want for s in slots if s.want is not None],
                forgotten,
                SYSTEM_CLOCK.wall_ms(),
            )
        except SessionError as e:
            return _response(ctx, error_code_of(e.kind), 0, [], [])
    if session is not None:
        session.dirty.clear()  # news is found by looking, not marked (module docstring)
        named = {(s.want.topic, s.want.partition) for s in slots if s.want is not None}
        unknown = [s for s in slots if s.want is None]
        slots = unknown + [
            Slot(c.want, c.want.topic, c.want.topic_id, c.want.partition, {}, key in named)
            for key, c in session.partitions.items()
        ]
    max_bytes = min(max(int(request.max_bytes), 0), limits.FETCH_RESPONSE_BYTES_MAX)
    min_bytes = max(int(request.min_bytes), 0)
    max_wait_ms = min(
        max(int(request.max_wait.total_seconds() * 1000), 0), limits.FETCH_MAX_WAIT_MS_MAX
    )
    read_committed = int(getattr(request, "isolation_level", 0)) == READ_COMMITTED
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait_ms / 1000
    while True:
        changes: list[Coroutine[Any, Any, bool]] = []
        size, errors = await _read_all(ctx, slots, max_bytes, changes)
        remaining = deadline - loop.time()
        if size >= min_bytes or errors or remaining <= 0:
            for change in changes:
                change.close()
            break
        if changes:
            await _first_change(changes, remaining)
        else:  # nothing to watch (no partition): Kafka's delayed fetch waits it out
            await asyncio.sleep(remaining)
    for slot in slots:
        if read_committed and slot.answer.get("error_code") is ErrorCode.none:
            slot.answer["aborted_transactions"] = []  # no transactions: none was aborted
    if session is not None and incremental:
        slots = [s for s in slots if _has_news(s, session.partitions)]
        for s in slots:
            if s.want is not None and s.answer.get("records"):
                # Kafka's rule (FetchSession's incremental PartitionIterator): a partition that
                # returned records goes to the end of the session, so that the next answer's
                # max_bytes goes first to the others and none is starved.
                session.move_to_end((s.want.topic, s.want.partition))
    if session is not None:
        for s in slots:
            cached = (
                None if s.want is None else session.partitions.get((s.want.topic, s.want.partition))
            )
            if cached is not None and s.answer.get("error_code") is ErrorCode.none:
                cached.high_watermark_sent = s.answer["high_watermark"]
                cached.log_start_sent = s.answer["log_start_offset"]
    for slot in slots:
        if slot.want is not None and "records" in slot.answer:
            parts = slot.answer.pop("parts")
            if parts:
                local = node.replica_manager.local(slot.want.topic, slot.want.partition)
                if local is not None:
                    local.sent_to_client(records_in(parts), len(slot.answer["records"]))
    answers = [s.answer for s in slots]
    state = node.quorum.snapshot_state()
    return _response(
        ctx,
        ErrorCode.none,
        0 if session is None else session.session_id,
        _grouped(slots),
        node_endpoints(state, answers),
    )


def _has_news(slot: Slot, cached: dict[tuple[str, int], Cached[FetchWant]]) -> bool:
    """Whether an incremental answer must name the partition (Kafka's CachedPartition rule)."""
    answer = slot.answer
    if slot.want is None or answer.get("error_code") is not ErrorCode.none:
        return True
    if answer.get("records"):
        return True
    held = cached.get((slot.want.topic, slot.want.partition))
    return held is None or (
        held.high_watermark_sent != answer["high_watermark"]
        or held.log_start_sent != answer["log_start_offset"]
    )


async def _read_all(
    ctx: RequestContext,
    slots: list[Slot],
    max_bytes: int,
    changes: list[Coroutine[Any, Any, bool]],
) -> tuple[int, bool]:
    """Fills every slot's answer (module docstring); returns the bytes read and whether any
    partition answered an error. ``changes`` gets a wait for the next change of each
    partition read, taken before its read, so that no change between the read and the wait
    goes unseen."""
    size = 0
    errors = False
    state = ctx.node.quorum.snapshot_state()
    readable: dict[str, bool] = {}
    for i, slot in enumerate(slots):
        if i and not i % limits.YIELD_EVERY_PARTITIONS:
            await asyncio.sleep(0)  # a fetch of many partitions lets the other connections in
        want = slot.want
        if want is None:
            errors = True
            continue
        answer: dict[str, Any] = {}
        slot.answer = answer
        try:
            if want.topic not in readable:
                readable[want.topic] = authorize(ctx, "READ", "TOPIC", want.topic)
            if not readable[want.topic]:
                answer["error_code"] = ErrorCode.topic_authorization_failed
                errors = True
                continue
            if want.by_id and _recreated(state, want):
                # Kafka's ReplicaManager.readFromLog: the session's topic id is not the log's
                # (the topic was deleted and recreated under its name). The new log is never
                # served from the old one's offset; the client refreshes its metadata.
                answer["error_code"] = ErrorCode.inconsistent_topic_id
                errors = True
                continue
            partition = await serving_leader(
                ctx.node, want.topic, want.partition, want.current_leader_epoch
            )
            changes.append(partition.changed())
            check_fetch_offset(partition, want.fetch_offset)
            limit = min(want.partition_max_bytes, max_bytes - size)
            parts: list[bytes] = []
            if limit > 0 or size == 0:
                parts, _ = await read_batches(
                    partition, want.fetch_offset, max(limit, 1), whole_first=size == 0
                )
        except ApiError as e:
            state = ctx.node.quorum.snapshot_state()
            answer.update(error_fields(state, want.topic, want.partition, e, FETCH_PARTITION_CODES))
            answer.setdefault("high_watermark", -1)
            errors = True
            continue
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        size += len(data)
        answer.update(_partition_fields(partition, data, parts))
    return size, errors


def _recreated(state: MetadataState, want: FetchWant) -> bool:
    """Whether the want's topic name now belongs to another topic id that has its partition
    (a deleted topic with no successor is the partition lookup's UNKNOWN_TOPIC_OR_PARTITION,
    as Kafka answers a session's partition whose topic it no longer has)."""
    topic = state.topics.get(want.topic)
    return (
        topic is not None and topic.topic_id != want.topic_id and want.partition in topic.partitions
    )


def _partition_fields(partition: Partition, data: bytes, parts: list[bytes]) -> dict[str, Any]:
    high_watermark = partition.high_watermark
    return {
        "error_code": ErrorCode.none,
        "high_watermark": high_watermark,
        "last_stable_offset": high_watermark,  # no transactions: everything is stable
        "log_start_offset": partition.log.log_start_offset,
        "records": data,
        "parts": parts,
    }


async def _first_change(changes: list[Coroutine[Any, Any, bool]], timeout_s: float) -> None:
    """Waits for the first of ``changes`` or the timeout; the rest are cancelled."""
    tasks = [asyncio.ensure_future(c) for c in changes]
    try:
        await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _grouped(slots: list[Slot]) -> list[dict[str, Any]]:
    """The answers by topic, topics in the order of their first partition."""
    topics: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for slot in slots:
        key = (slot.name, slot.topic_id)
        topic = topics.get(key)
        if topic is None:
            topic = topics[key] = {"topic": slot.name, "topic_id": slot.topic_id, "partitions": []}
        answer = slot.answer
        topic["partitions"].append(
            {
                "partition_index": slot.partition,
                "high_watermark": -1,
                "last_stable_offset": -1,
                "log_start_offset": -1,
                "aborted_transactions": None,
                "records": b"",
                **{k: v for k, v in answer.items() if k != "error_message"},
            }
        )
    return list(topics.values())


def _response(
    ctx: RequestContext,
    code: ErrorCode,
    session_id: int,
    topics: list[dict[str, Any]],
    endpoints: list[dict[str, Any]],
) -> Any:
    return build(
        load_response_schema(ctx.api_key, ctx.api_version),
        {
            "throttle_time": 0,
            "error_code": code,
            "session_id": session_id,
            "responses": topics,
            "node_endpoints": endpoints,
        },
    )


FETCH = ApiSpec(FETCH_KEY, 4, 18, fetch)
