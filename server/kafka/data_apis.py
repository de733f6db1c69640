"""The data APIs of the Kafka listener: Metadata, Produce, ListOffsets, InitProducerId (and
Fetch, in ``server/kafka/fetch.py``). Each handler is thin: it reads the kio request, carries
it out through the paths the HTTP API uses (never a second implementation of a rule), and
describes its answer as plain values for :func:`server.kafka.entities.build`.

- Metadata: the cluster as ``server/kafka/metadata.py`` builds it; a topic named that does not
  exist is created when the request allows it (``allow_auto_topic_creation``, always before
  v4) and ``auto.create.topics.enable`` says so (``server/auto_topics.ensure_topic``, as the
  HTTP produce does); with an authorizer, DESCRIBE filters the topics (CREATE for creation).
- Produce: each partition's batch through ``http_batches.append_producer_batch`` (the binary
  HTTP produce's path: Kafka's checks, the idempotent producer's sequence rules, acks), the
  partitions concurrently; acks=0 gets no response at all, as in Kafka. An acks=all Produce
  ends its ordered part (``RequestContext.release_order``) once every batch is appended, and
  waits for the high watermark while the connection's next request starts.
- ListOffsets: ``http_records.find_offset`` (the HTTP offsets lookup) for earliest, latest,
  a timestamp and the max timestamp; Kafka's answers for the tiered-storage lookups of a log
  that has no tiered storage.
- InitProducerId: a producer id from this broker's block (``Node.new_producer_id``, the HTTP
  producer's), epoch 0. Transactions are not built: a transactional id is refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from client.protocol import NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, ApiError
from kraft.records import CLUSTER_RESOURCE_NAME
from server.auto_topics import INTERNAL_TOPICS, ensure_topic
from server.http_batches import append_producer_batch
from server.http_records import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, find_offset
from server.kafka import limits
from server.kafka.apis import (
    ApiSpec,
    RequestContext,
    authorize,
    authorized_operations,
    cluster_authorized_operations,
)
from server.kafka.entities import build, topic_id_text
from server.kafka.errors import error_message, kafka_error_code
from server.kafka.fetch import FETCH
from server.kafka.frames import CloseConnection
from server.kafka.metadata import (
    AUTHORIZED_OPERATIONS_OMITTED,
    TOPIC_OPERATIONS,
    broker_entries,
    controller_id,
    kafka_brokers,
    topic_entry,
    topic_error,
)
from server.kafka.replicas import error_fields, node_endpoints, partition_code, serving_leader

if TYPE_CHECKING:
    from server.partition import Partition

log = logging.getLogger(__name__)

METADATA_KEY = 3
PRODUCE_KEY = 0
LIST_OFFSETS_KEY = 2
INIT_PRODUCER_ID_KEY = 22


def _response(ctx: RequestContext, values: dict[str, Any]) -> Any:
    return build(load_response_schema(ctx.api_key, ctx.api_version), {"throttle_time": 0, **values})


# -- Metadata ------------------------------------------------------------------------------------


def _may_create(ctx: RequestContext, name: str) -> bool:
    return authorize(ctx, "CREATE", "CLUSTER", CLUSTER_RESOURCE_NAME) or authorize(
        ctx, "CREATE", "TOPIC", name
    )


async def metadata(ctx: RequestContext, request: Any) -> Any:
    node = ctx.node
    version = ctx.api_version
    topics = request.topics
    all_topics = topics is None or (version == 0 and not topics)
    allow_create = getattr(request, "allow_auto_topic_creation", True)
    want_operations = bool(getattr(request, "include_topic_authorized_operations", False))
    answers: list[dict[str, Any]] = []
    names: list[str] = []
    failed: dict[str, ApiError] = {}  # topics whose creation was refused
    if not all_topics:
        state = node.quorum.snapshot_state()
        for t in topics:
            topic_id = topic_id_text(getattr(t, "topic_id", None))
            if topic_id is not None:
                found = state.topic_by_id(topic_id)
                if found is None or not authorize(ctx, "DESCRIBE", "TOPIC", found.name):
                    # Kafka answers an unknown id and one not allowed alike: the id unknown.
                    answers.append(topic_error(ErrorCode.unknown_topic_id, None, topic_id))
                    continue
                names.append(found.name)
            elif t.name is not None:
                names.append(t.name)
        missing = [n for n in dict.fromkeys(names) if n not in state.topics]
        creatable = [
            n
            for n in missing
            if allow_create
            and node.config.auto_create_topics_enable
            and n not in INTERNAL_TOPICS
            and authorize(ctx, "DESCRIBE", "TOPIC", n)
            and _may_create(ctx, n)
        ]
        created = await asyncio.gather(
            *(ensure_topic(node, n, allowed=True) for n in creatable), return_exceptions=True
        )
        for n, outcome in zip(creatable, created, strict=True):
            if isinstance(outcome, ApiError):
                failed[n] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
    state = node.quorum.snapshot_state()
    brokers = kafka_brokers(state)
    if all_topics:
        names = [n for n in sorted(state.topics) if authorize(ctx, "DESCRIBE", "TOPIC", n)]
    for name in dict.fromkeys(names):
        if not authorize(ctx, "DESCRIBE", "TOPIC", name):
            answers.append(topic_error(ErrorCode.topic_authorization_failed, name))
            continue
        topic = state.topics.get(name)
        if topic is None:
            error = failed.get(name)
            code = (
                ErrorCode.unknown_topic_or_partition if error is None else kafka_error_code(error)
            )
            answers.append(topic_error(code, name))
            continue
        operations = AUTHORIZED_OPERATIONS_OMITTED
        if want_operations:
            operations = authorized_operations(ctx, "TOPIC", name, TOPIC_OPERATIONS)
        answers.append(
            topic_entry(
                state,
                topic,
                brokers,
                authorized_operations=operations,
                filter_replicas=version == 0,
            )
        )
    cluster_operations = AUTHORIZED_OPERATIONS_OMITTED
    if getattr(request, "include_cluster_authorized_operations", False):  # v8-v10
        cluster_operations = cluster_authorized_operations(ctx)
    return _response(
        ctx,
        {
            "brokers": broker_entries(brokers),
            "cluster_id": node.meta.cluster_id,
            "controller_id": controller_id(state, node.quorum.leader_id(), node.node_id),
            "topics": answers,
            "cluster_authorized_operations": cluster_operations,
            "error_code": ErrorCode.none,
        },
    )


# -- Produce -------------------------------------------------------------------------------------

_ACKS = {-1: "all", 1: "1", 0: "0"}


async def produce(ctx: RequestContext, request: Any) -> Any:
    node = ctx.node
    acks = _ACKS.get(int(request.acks))
    timeout_ms = min(
        max(int(request.timeout.total_seconds() * 1000), 0), limits.PRODUCE_TIMEOUT_MS_MAX
    )
    state = node.quorum.snapshot_state()
    # (topic answer, partition answers); the topic as named (v13: by id).
    topics: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    work: list[Any] = []
    for t in request.topic_data:
        by_id = topic_id_text(getattr(t, "topic_id", None))
        name: str | None = getattr(t, "name", None)
        unknown_code = ErrorCode.unknown_topic_or_partition
        if by_id is not None or name is None:
            found = state.topic_by_id(by_id) if by_id is not None else None
            name = None if found is None else found.name
            unknown_code = ErrorCode.unknown_topic_id
        answers: list[dict[str, Any]] = []
        topics.append(({"name": name, "topic_id": by_id}, answers))
        for p in t.partition_data:
            answer: dict[str, Any] = {
                "index": p.index,
                "base_offset": -1,
                "log_start_offset": -1,
                "record_errors": [],
            }
            answers.append(answer)
            if acks is None:
                answer["error_code"] = ErrorCode.invalid_required_acks
            elif request.transactional_id is not None:
                # InitProducerId refuses transactional ids: no transactional producer gets here.
                answer["error_code"] = ErrorCode.invalid_txn_state
            elif name is None or name not in state.topics:
                answer["error_code"] = unknown_code
            elif not authorize(ctx, "WRITE", "TOPIC", name):
                answer["error_code"] = ErrorCode.topic_authorization_failed
            else:
                work.append(
                    _produce_partition(ctx, name, p.index, p.records, acks, timeout_ms, answer)
                )
    appended = await asyncio.gather(*work)
    if acks == "all":
        # Every batch is appended (or refused): the connection's next request may start while
        # these wait for the high watermark, and appends after them on the connection land
        # after them (the listener starts requests in order).
        ctx.release_order()
        await asyncio.gather(*(wait() for wait in appended if wait is not None))
    if acks == "0":
        # Kafka sends nothing back to acks=0, but closes the connection when any partition
        # failed (a leader moved, a topic gone): the client's only way to learn of it.
        failed = [
            a
            for _, answers in topics
            for a in answers
            if a.get("error_code", ErrorCode.none) != ErrorCode.none
        ]
        if failed:
            raise CloseConnection(
                f"an acks=0 Produce failed on {len(failed)} partition(s), the first with "
                f"{ErrorCode(failed[0]['error_code']).name}"
            )
        return None
    all_answers = [a for _, answers in topics for a in answers]
    for answer in all_answers:
        answer.setdefault("error_code", ErrorCode.none)
    return _response(
        ctx,
        {
            "responses": [{**topic, "partition_responses": answers} for topic, answers in topics],
            "node_endpoints": node_endpoints(node.quorum.snapshot_state(), all_answers),
        },
    )


async def _produce_partition(
    ctx: RequestContext,
    topic: str,
    index: int,
    records: bytes | None,
    acks: str,
    timeout_ms: int,
    answer: dict[str, Any],
) -> Callable[[], Awaitable[None]] | None:
    """Appends one partition's batch and fills ``answer``; for acks=all, returns the wait for
    the high watermark to pass it (which completes ``answer``), so the request's ordered part
    ends at the append (RequestContext.release_order). None when there is nothing to wait for."""
    node = ctx.node
    try:
        node.require_ready()
        # acks=all with no time: append_producer_batch returns once appended (its wait, with
        # no time, ends at once); the real wait is the returned one.
        partition, result = await append_producer_batch(
            node, topic, index, records or b"", acks, 0.0 if acks == "all" else timeout_ms / 1000
        )
    except ApiError as e:
        answer.update(error_fields(node.quorum.snapshot_state(), topic, index, e))
        return None
    answer["base_offset"] = result.infos[0].first_offset
    if acks != "all":
        _answer_appended(answer, partition, result.commit_error)
        return None

    async def wait() -> None:
        last = result.infos[-1].last_offset
        await partition.wait_for_high_watermark_above(last, timeout_ms / 1000)
        _answer_appended(answer, partition, partition.acks_all_error(last))

    return wait


def _answer_appended(answer: dict[str, Any], partition: Partition, error: ApiError | None) -> None:
    """Fills the answer of a partition's appended batch: its log start, and why it is not
    acknowledged if it is not (``error``: what the acks wait ended with)."""
    answer["log_start_offset"] = partition.log.log_start_offset
    if error is not None:
        code = partition_code(error)
        if error.kind is NOT_ENOUGH_REPLICAS:
            # Appended, then the ISR shrank below min.insync.replicas (Kafka's distinct code).
            code = ErrorCode.not_enough_replicas_after_append
        elif error.kind is REQUEST_TIMED_OUT and not partition.is_leader:
            # Leadership moved while the records waited (Kafka's DelayedProduce answers this,
            # retriable: the producer refreshes its metadata and sends again to the new leader,
            # where an idempotent producer's batch is a duplicate or appended once).
            code = ErrorCode.not_leader_or_follower
        answer.update(error_code=code, error_message=error_message(error))


# -- ListOffsets ---------------------------------------------------------------------------------

EARLIEST_LOCAL_TIMESTAMP = -4  # KIP-405: the first offset on local disk (all of it here)
LATEST_TIERED_TIMESTAMP = -5  # KIP-1005: the last offset in tiered storage (none here)


async def list_offsets(ctx: RequestContext, request: Any) -> Any:
    topics: list[dict[str, Any]] = []
    work: list[Any] = []
    for t in request.topics:
        partitions: list[dict[str, Any]] = []
        topics.append({"name": t.name, "partitions": partitions})
        # Kafka refuses a partition named twice in one request, both times.
        counts = Counter(p.partition_index for p in t.partitions)
        duplicated = {index for index, count in counts.items() if count > 1}
        for p in t.partitions:
            answer: dict[str, Any] = {"partition_index": p.partition_index}
            partitions.append(answer)
            if p.partition_index in duplicated:
                answer["error_code"] = ErrorCode.invalid_request
            elif not authorize(ctx, "DESCRIBE", "TOPIC", t.name):
                answer["error_code"] = ErrorCode.topic_authorization_failed
            else:
                work.append(_list_offset(ctx, t.name, p, answer))
    await asyncio.gather(*work)
    return _response(ctx, {"topics": topics})


async def _list_offset(ctx: RequestContext, topic: str, p: Any, answer: dict[str, Any]) -> None:
    node = ctx.node
    timestamp = int(p.timestamp)
    answer.update(timestamp=-1, offset=-1, leader_epoch=-1)
    try:
        partition = await serving_leader(
            node, topic, p.partition_index, int(getattr(p, "current_leader_epoch", -1))
        )
        if timestamp == LATEST_TIERED_TIMESTAMP:
            found = None  # Kafka's answer without tiered storage: offset -1, epoch -1
        else:
            if timestamp == EARLIEST_LOCAL_TIMESTAMP:
                timestamp = EARLIEST_TIMESTAMP
            # A new leader whose high watermark has not reached its epoch's start yet cannot
            # say where the end is (Kafka's OFFSET_NOT_AVAILABLE, retriable).
            if (
                timestamp == LATEST_TIMESTAMP
                and partition.leader_epoch_start_offset() > partition.high_watermark
            ):
                answer["error_code"] = ErrorCode.offset_not_available
                return
            found = find_offset(partition, timestamp)
    except ApiError as e:
        answer.update(error_fields(node.quorum.snapshot_state(), topic, p.partition_index, e))
        return
    answer["error_code"] = ErrorCode.none
    if found is not None:
        answer.update(
            timestamp=found.timestamp, offset=found.offset, leader_epoch=found.leader_epoch
        )


# -- InitProducerId ------------------------------------------------------------------------------


async def init_producer_id(ctx: RequestContext, request: Any) -> Any:
    node = ctx.node
    if request.transactional_id is not None:
        log.info(
            "InitProducerId from %s (%s) refused: transactional id given, and transactions "
            "are not built yet (idempotent producers are: leave transactional.id unset)",
            ctx.client_host,
            ctx.client_id,
        )
        return _init_answer(ctx, ErrorCode.invalid_request)
    state = node.quorum.snapshot_state()
    allowed = authorize(ctx, "IDEMPOTENT_WRITE", "CLUSTER", CLUSTER_RESOURCE_NAME) or any(
        authorize(ctx, "WRITE", "TOPIC", name) for name in state.topics
    )
    if not allowed:
        return _init_answer(ctx, ErrorCode.cluster_authorization_failed)
    try:
        node.require_ready()
        producer_id = await node.new_producer_id()
    except ApiError as e:
        # The Java producer retries COORDINATOR_NOT_AVAILABLE: what a broker that cannot
        # reach its controller for a block of ids is, for now.
        return _init_answer(
            ctx, ErrorCode.coordinator_not_available if e.retriable else kafka_error_code(e)
        )
    return _init_answer(ctx, ErrorCode.none, producer_id, 0)


def _init_answer(
    ctx: RequestContext, code: ErrorCode, producer_id: int = -1, epoch: int = -1
) -> Any:
    return _response(ctx, {"error_code": code, "producer_id": producer_id, "producer_epoch": epoch})


DATA_APIS: tuple[ApiSpec, ...] = (
    ApiSpec(PRODUCE_KEY, 3, 13, produce),
    FETCH,
    ApiSpec(LIST_OFFSETS_KEY, 1, 10, list_offsets),
    ApiSpec(METADATA_KEY, 0, 13, metadata),
    ApiSpec(INIT_PRODUCER_ID_KEY, 0, 6, init_producer_id),
)
