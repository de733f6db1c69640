"""The records half of the HTTP API (docs/api.md): produce (routing, acks, the idempotent
producer), fetch (long polls and follow streams) and offsets.

Handlers are thin: parse and check the request, plan it with ``server/produce.py``, carry the
plan out on the partitions, shape the JSON. A produce or fetch of binary record batches
(``application/vnd.kafka.batch``) goes to ``server/http_batches.py`` once the parts both forms
share are done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from client.protocol import (
    BATCH_MEDIA_TYPE,
    FORMATS,
    INVALID_REQUEST,
    LEADER_NOT_AVAILABLE,
    NOT_LEADER_OR_FOLLOWER,
    RECORD_TOO_LARGE,
    REQUEST_TOO_LARGE,
    ApiError,
    format_record,
    parse_produce_record,
    produce_records_from_body,
)
from server import http_batches, limits
from server.auto_topics import INTERNAL_TOPICS
from server.clock import SYSTEM_CLOCK
from server.http_util import (
    FOLLOW_VALUES,
    INT_MAX,
    LONG_MAX,
    LONG_MIN,
    json_response,
    parse_int,
    path_int,
    query_choice,
    query_int,
    query_value,
    read_json,
)
from server.node import Node
from server.partition import Partition, ProducerBatch
from server.produce import PartitionPlan, plan_produce
from storage.batch import Record, batch_records, read_header
from storage.errors import KafkaStorageError, OffsetOutOfRangeError
from storage.record_reads import RecordsRead

NODE = web.AppKey("node", Node)
ACKS = ("all", "-1", "1", "0")


def node_of(request: web.Request) -> Node:
    return request.app[NODE]


async def new_producer(request: web.Request) -> web.Response:
    """Allocates an idempotent producer id (docs/api.md): {"producer_id", "producer_epoch"}."""
    node = node_of(request)
    node.require_ready()
    return json_response({"producer_id": await node.new_producer_id(), "producer_epoch": 0})


# -- produce -------------------------------------------------------------------------------------


def _produce_query(request: web.Request) -> tuple[str, float]:
    acks = query_choice(request, "acks", ACKS, "all")
    acks = "all" if acks == "-1" else acks
    timeout_ms = query_int(
        request, "timeout_ms", limits.PRODUCE_TIMEOUT_MS_DEFAULT, 0, limits.PRODUCE_TIMEOUT_MS_MAX
    )
    assert timeout_ms is not None
    return acks, timeout_ms / 1000


_PRODUCER_HEADERS = ("Producer-Id", "Producer-Epoch", "Producer-Seq")


def _producer_batch(request: web.Request, fixed_partition: int | None) -> ProducerBatch | None:
    """The idempotent producer headers (docs/api.md), all three or none, on a partition endpoint."""
    given = [h for h in _PRODUCER_HEADERS if h in request.headers]
    if not given:
        return None
    if fixed_partition is None:
        raise ApiError(
            INVALID_REQUEST,
            "idempotent produce goes to a partition: POST /v1/topics/T/partitions/P/records",
        )
    if len(given) != len(_PRODUCER_HEADERS):
        raise ApiError(INVALID_REQUEST, f"give all of {', '.join(_PRODUCER_HEADERS)}")
    values = [
        parse_int(request.headers[header], header, 0, high)
        for header, high in zip(_PRODUCER_HEADERS, (LONG_MAX, (1 << 15) - 1, INT_MAX), strict=True)
    ]
    return ProducerBatch(*values)


async def _produce(request: web.Request, fixed_partition: int | None) -> web.Response:
    node = node_of(request)
    node.require_ready()
    binary = http_batches.sends_batch(request)
    if binary and fixed_partition is None:
        raise http_batches.refuse_topic_produce()
    name = request.match_info["topic"]
    if name not in node.quorum.snapshot_state().topics:
        await _auto_create(request, node, name)
    acks, timeout_s = _produce_query(request)
    producer = _producer_batch(request, fixed_partition)
    if binary:
        assert fixed_partition is not None
        if producer is not None:
            raise ApiError(
                INVALID_REQUEST,
                f"a {BATCH_MEDIA_TYPE} body carries its producer id, epoch and sequence in its "
                f"header: send no {', '.join(_PRODUCER_HEADERS)} headers with it",
            )
        return await http_batches.produce_batch(
            request, node, name, fixed_partition, acks, timeout_s
        )
    max_message_bytes = int(node.topic_configs(node.topic(name))["max.message.bytes"])
    # Never below what one record of max.message.bytes needs as base64 inside JSON, never
    # above the node-wide socket.request.max.bytes (read_json refuses that with
    # REQUEST_TOO_LARGE): records over the limit are too large, the request is not.
    limit = max(node.config.max_request_bytes, max_message_bytes * 4 // 3 + 64 * 1024)
    limit = min(limit, node.config.socket_request_max_bytes)
    too_large = (
        RECORD_TOO_LARGE if limit < node.config.socket_request_max_bytes else REQUEST_TOO_LARGE
    )
    raw = produce_records_from_body(await read_json(request, limit, too_large))
    if len(raw) > limits.PRODUCE_RECORDS_MAX:
        raise ApiError(INVALID_REQUEST, f"at most {limits.PRODUCE_RECORDS_MAX} records per request")
    records = [parse_produce_record(obj, i) for i, obj in enumerate(raw)]
    # Read the topic again: it may have changed while the body arrived.
    topic = node.topic(name)
    count = len(topic.partitions)
    if fixed_partition is not None:
        await node.replica_manager.await_opening(name, fixed_partition)
        node.replica_manager.partition(name, fixed_partition)  # an unknown one refuses it
    configs = node.topic_configs(topic)
    plans = plan_produce(
        records,
        partitions=count,
        fixed_partition=fixed_partition,
        round_robin=node.next_round_robin(name),
        now_ms=SYSTEM_CLOCK.wall_ms(),
        max_message_bytes=int(configs["max.message.bytes"]),
        topic=name,
        # A compacted topic refuses a record without a key, the request whole (Kafka's
        # LogValidator), before anything is appended. An internal topic refuses any produce
        # first, as Kafka's ReplicaManager does (the append says so).
        compacted="compact" in configs.get("cleanup.policy", "delete")
        and name not in INTERNAL_TOPICS,
    )

    # Run-time checks, appends and acks, partition by partition (concurrently); the request
    # as a whole was valid.
    offsets: list[dict[str, Any]] = [{} for _ in records]
    failures: list[ApiError] = []
    duplicate = False

    def fail(index: int, positions: list[int], error: ApiError) -> None:
        failures.append(error)
        for position in positions:
            offsets[position] = {"partition": index, **_error_fields(error)}

    async def append(index: int, plan: PartitionPlan) -> None:
        nonlocal duplicate
        try:
            result = await node.replica_manager.append_records(
                name, index, plan.batches, acks, producer, timeout_s
            )
        except ApiError as e:
            if e.kind is NOT_LEADER_OR_FOLLOWER and fixed_partition is None:
                # The topic endpoint routes each record to its partition's leader.
                await _forward_partition(request, index, plan.positions, raw, offsets, fail)
            else:
                fail(index, plan.positions, e)
            return
        duplicate = duplicate or result.duplicate
        appended = result.offsets
        done = plan.positions[: len(appended)]
        for position, offset in zip(done, appended, strict=True):
            offsets[position] = {"partition": index, "offset": offset}
        if result.error is not None:
            # Batches appended before the failure stay, and are reported with their offsets.
            fail(index, plan.positions[len(appended) :], result.error)
        if result.commit_error is not None:
            fail(index, done, result.commit_error)

    await asyncio.gather(*(append(index, plan) for index, plan in sorted(plans.items())))
    if failures and (fixed_partition is not None or len(failures) == len(plans)):
        raise failures[0]
    if acks == "0":
        return json_response({"topic": name}, 202)
    if node.failpoints.take("drop_produce_response") and not failures:
        # Test-only: the records are stored and committed, but the client never hears it.
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError
    body: dict[str, Any] = {"topic": name, "offsets": offsets}
    if duplicate:
        body["duplicate"] = True  # a retry: these are the offsets of the first copy
    return json_response(body, 207 if failures else 200)


async def _auto_create(request: web.Request, node: Node, name: str) -> None:
    """Creates a missing topic a produce names, as Kafka's auto.create.topics.enable does
    (only for a requester allowed to CREATE it, and never an internal topic, which has its
    own settings); otherwise the topic's 404 stays."""
    # Imported here: server.http_security imports this module (node_of).
    from server.auto_topics import ensure_topic
    from server.http_security import may_create_topic

    allowed = name not in INTERNAL_TOPICS and may_create_topic(request, name)
    await ensure_topic(node, name, allowed=None if allowed else False)


async def _forward_partition(
    request: web.Request,
    index: int,
    positions: list[int],
    raw: list[Any],
    offsets: list[dict[str, Any]],
    fail: Callable[[int, list[int], ApiError], None],
) -> None:
    """Sends one partition's records to its leader's partition endpoint, and fills in the
    offsets (or the error) it answers for them."""
    node = node_of(request)
    name = request.match_info["topic"]
    leader = node.topic(name).partitions[index].leader
    url = node.broker_url(leader, dial=True) if leader >= 0 else None
    if url is None:
        fail(index, positions, ApiError(LEADER_NOT_AVAILABLE, f"{name}-{index} has no leader"))
        return
    query = request.query_string
    target = f"{url}/v1/topics/{name}/partitions/{index}/records" + (f"?{query}" if query else "")
    records = [
        raw[i] if not isinstance(raw[i], dict) else {**raw[i], "partition": index}
        for i in positions
    ]
    try:
        status, body, _ = await node.http_call(
            "POST",
            target,
            {"records": records},
            limits.PRODUCE_TIMEOUT_MS_MAX / 1000,
            target_id=leader,
            role=f"leader of {name}-{index}",
        )
    except ApiError as e:
        fail(index, positions, e)
        return
    if status == 202:
        return
    if status != 200 or not isinstance(body, dict):
        error = ApiError.from_json(body if isinstance(body, dict) else {}, status)
        fail(index, positions, error)
        return
    for position, answer in zip(positions, body["offsets"], strict=True):
        offsets[position] = answer


def _error_fields(error: ApiError) -> dict[str, Any]:
    return {"error_code": error.code, "error": error.name, "message": error.message}


async def produce_topic(request: web.Request) -> web.Response:
    return await _produce(request, None)


async def produce_partition(request: web.Request) -> web.Response:
    return await _produce(request, path_int(request, "partition"))


# -- fetch ---------------------------------------------------------------------------------------


async def _fetch_partition(request: web.Request) -> Partition:
    node = node_of(request)
    node.require_ready()
    return await node.replica_manager.serving_leader(
        request.match_info["topic"], path_int(request, "partition")
    )


def _start_offset(request: web.Request, partition: Partition) -> int:
    raw = query_value(request, "offset")
    raw = "earliest" if raw is None else raw
    if raw == "earliest":
        return partition.log.log_start_offset
    if raw == "latest":
        return partition.high_watermark
    # Any long, so a negative one is out of range (416) as in Kafka, not malformed.
    offset = parse_int(raw, "offset (or earliest, latest)", LONG_MIN, LONG_MAX)
    check_fetch_offset(partition, offset)
    return offset


def check_fetch_offset(partition: Partition, offset: int) -> None:
    """Kafka's rule for a consumer's fetch offset: OFFSET_OUT_OF_RANGE outside [log start
    offset, log end offset]; between the high watermark and the log end the fetch is empty.
    The HTTP fetch and the Kafka listener's Fetch share it."""
    log = partition.log
    if not log.log_start_offset <= offset <= log.log_end_offset:
        raise partition.out_of_range_error(offset)


async def _read(
    partition: Partition,
    offset: int,
    max_bytes: int,
    max_records: int,
    max_decoded_bytes: int | None = None,
) -> RecordsRead:
    """Committed records from ``offset`` (a log read of ``max_bytes``) and the offset to read
    from next (past gaps and empty batches of a compacted log:
    :func:`storage.record_reads.records_in`); storage trouble becomes the API's errors.

    The batches are read under the log's lock. A read holding a compressed batch is decoded in
    a worker thread, outside the lock (a batch of a few KiB may hold a million records:
    seconds of decoding that must hold neither the event loop nor appends), and stops once the
    records it took reach ``max_decoded_bytes`` (default ``max_bytes``), counted decompressed;
    a read of uncompressed batches is decoded here (``max_bytes`` bounds it already)."""
    if offset >= partition.high_watermark:
        return RecordsRead([], offset)
    log = partition.log
    try:
        read = log.read_for_records(offset, max_bytes, partition.high_watermark)
        if read.compressed:
            decoded = max_bytes if max_decoded_bytes is None else max_decoded_bytes
            return await asyncio.to_thread(log.records_of, read, max_records, decoded)
        return log.records_of(read, max_records, max_bytes)
    except OffsetOutOfRangeError:
        raise partition.out_of_range_error(offset) from None
    except KafkaStorageError:
        partition.raise_storage_error()


async def _read_in_steps(
    partition: Partition, offset: int, max_bytes: int, max_records: int
) -> RecordsRead:
    """:func:`_read` of up to ``max_bytes`` (records' bytes, decompressed), done
    ``STREAM_READ_BYTES`` of log at a time with a yield between: a 64 MiB fetch of small
    records decodes for a long while, and the event loop (heartbeats, every other request)
    must not wait for all of it. A step that decodes in a worker thread (compressed batches)
    may take the rest of ``max_bytes`` at once: it holds no loop, and a compressed batch is
    decompressed once, not again at each 256 KiB of its records. A step that finds no record
    (a compacted log's gap or empty batches) still moves the next offset on."""
    records: list[Record] = []
    next_offset = offset
    remaining = max_bytes
    while remaining > 0 and len(records) < max_records:
        if records or next_offset > offset:
            await asyncio.sleep(0)
            if partition.closed:
                break  # removed meanwhile: what was read is still an answer
        step = await _read(
            partition,
            next_offset,
            min(remaining, limits.STREAM_READ_BYTES),
            max_records - len(records),
            remaining,
        )
        if step.next_offset == next_offset:
            break  # nothing more below the high watermark
        records += step.records
        next_offset = step.next_offset
        remaining -= max(limits.STREAM_READ_BYTES, step.decoded_bytes)
    return RecordsRead(records, next_offset)


async def fetch(request: web.Request) -> web.StreamResponse:
    partition = await _fetch_partition(request)
    binary = http_batches.wants_batches(request)
    if binary:
        http_batches.refuse_json_only_parameters(request)
    fmt = query_choice(request, "format", FORMATS, "text")
    max_bytes = query_int(
        request, "max_bytes", limits.FETCH_MAX_BYTES_DEFAULT, 1, limits.FETCH_MAX_BYTES_MAX
    )
    max_records = query_int(
        request, "max_records", limits.FETCH_MAX_RECORDS_DEFAULT, 1, limits.FETCH_MAX_RECORDS_MAX
    )
    timeout_ms = query_int(request, "timeout_ms", 0, 0, limits.FETCH_TIMEOUT_MS_MAX)
    assert max_bytes is not None and max_records is not None and timeout_ms is not None
    offset = _start_offset(request, partition)
    if (query_value(request, "follow") or "").lower() in FOLLOW_VALUES:
        return await _follow(request, partition, offset, fmt)

    if timeout_ms > 0:
        partition = await _long_poll(request, partition, offset, timeout_ms / 1000)
    if binary:
        return await http_batches.fetch_batches(partition, offset, max_bytes)
    read = await _read_in_steps(partition, offset, max_bytes, max_records)
    records = read.records
    body = {
        "records": [_record_json(r, partition.index, fmt) for r in records],
        # Past every batch read, not the last record + 1: a compacted log has gaps and empty
        # batches, and a reader sent back to them would read them again forever.
        "next_offset": read.next_offset,
        "high_watermark": partition.high_watermark,
        "log_start_offset": partition.log.log_start_offset,
    }
    response = json_response(body)
    partition.sent_to_client(len(records), response.content_length or 0)  # /metrics
    return response


async def _wait_for_change(partition: Partition, timeout_s: float) -> None:
    """Returns at the partition's next change (an append, a HW move, leadership, removal) or
    at the timeout: never at once while nothing happens. The caller looks at the partition
    first; nothing awaits between its look and this wait, so no change is missed.

    Not ``wait_for_high_watermark_above``: that is the acks=all wait, which ends at once when
    the partition cannot commit (below ``min.insync.replicas``), and a reader looping on it
    spun (issue 11: a follow stream sent 11,000 heartbeats a second)."""
    try:
        await asyncio.wait_for(partition.changed(), timeout_s)
    except TimeoutError:
        pass


async def _long_poll(
    request: web.Request, partition: Partition, offset: int, timeout_s: float
) -> Partition:
    """Waits up to ``timeout_s`` for a committed record at ``offset``; returns the partition
    as it is then (leadership or the topic may have changed: the redirect or error)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while partition.high_watermark <= offset:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        await _wait_for_change(partition, remaining)
        partition = await _fetch_partition(request)
    return partition


def _record_json(record: Record, partition: int, fmt: str) -> dict[str, Any]:
    return format_record(
        offset=record.offset,
        timestamp=record.timestamp,
        key=record.key,
        value=record.value,
        headers=record.headers,
        partition=partition,
        fmt=fmt,
    )


async def _follow(
    request: web.Request, partition: Partition, offset: int, fmt: str
) -> web.StreamResponse:
    """A never-ending stream: NDJSON lines, or Server-Sent Events with ``id:`` = offset."""
    sse = "text/event-stream" in request.headers.get("Accept", "")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream" if sse else "application/x-ndjson",
            "Cache-Control": "no-cache",
        }
    )
    await response.prepare(request)

    def frame(body: dict[str, Any], event_id: int | None = None, event: str | None = None) -> bytes:
        data = orjson.dumps(body)
        if not sse:
            return data + b"\n"
        head = b"" if event_id is None else b"id: %d\n" % event_id
        head += b"" if event is None else b"event: %s\n" % event.encode()
        return head + b"data: " + data + b"\n\n"

    heartbeat_s = limits.STREAM_HEARTBEAT_MS / 1000
    loop = asyncio.get_running_loop()
    next_heartbeat = loop.time() + heartbeat_s
    try:
        while True:
            try:
                partition = await _fetch_partition(request)
                read = await _read(
                    partition, offset, limits.STREAM_READ_BYTES, limits.FETCH_MAX_RECORDS_MAX
                )
            except ApiError as e:
                await response.write(frame(e.to_json(), event="error"))
                break
            records = read.records
            if read.next_offset != offset and not records:
                # Only gaps or empty batches (a compacted log): nothing to send, go on.
                offset = read.next_offset
                await asyncio.sleep(0)
                continue
            if records:
                chunk = b"".join(
                    frame(_record_json(r, partition.index, fmt), r.offset) for r in records
                )
                await response.write(chunk)
                partition.sent_to_client(len(records), len(chunk))  # /metrics
                offset = read.next_offset
                next_heartbeat = loop.time() + heartbeat_s
                # A write returns at once while the socket takes the bytes: let other
                # requests run between two reads of a long backlog.
                await asyncio.sleep(0)
                continue
            remaining = next_heartbeat - loop.time()
            if remaining <= 0:
                # Time-based, whatever woke the loop: one heartbeat per interval at most.
                beat = {"heartbeat": SYSTEM_CLOCK.wall_ms(), "next_offset": offset}
                await response.write(frame(beat, event="heartbeat"))
                next_heartbeat = loop.time() + heartbeat_s
                continue
            await _wait_for_change(partition, remaining)
    except ConnectionResetError:
        pass  # the client went away
    return response


# -- offsets -------------------------------------------------------------------------------------


async def get_offsets(request: web.Request) -> web.Response:
    partition = await _fetch_partition(request)
    timestamp = query_int(request, "timestamp", None, EARLIEST_TIMESTAMP, LONG_MAX)
    body: dict[str, Any] = {
        "topic": partition.topic,
        "partition": partition.index,
        "earliest": partition.log.log_start_offset,
        "latest": partition.high_watermark,
    }
    if timestamp is not None:
        found = find_offset(partition, timestamp)
        body["timestamp"] = timestamp
        body["offset"] = None if found is None else found.offset
    return json_response(body)


# Kafka's special timestamps of ListOffsets (ListOffsetsRequest).
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3  # KIP-734: the record with the largest timestamp


@dataclass(frozen=True)
class FoundOffset:
    """An offset lookup's answer (Kafka's TimestampAndOffset)."""

    offset: int
    timestamp: int  # the record's timestamp; -1 for the earliest and latest lookups
    leader_epoch: int  # the leader epoch of the batch holding it; -1 when unknown


def find_offset(partition: Partition, timestamp: int) -> FoundOffset | None:
    """Kafka's offset lookup for a consumer (Partition.fetchOffsetForTimestamp at
    read_uncommitted; GET .../offsets and the Kafka listener's ListOffsets share it):

    - ``EARLIEST_TIMESTAMP``: the log start offset;
    - ``LATEST_TIMESTAMP``: the high watermark, with this leader's epoch;
    - ``MAX_TIMESTAMP``: the first record with the largest timestamp in the log;
    - any other (>= 0): the first record whose timestamp is at or after it;

    the last two only below the high watermark (None otherwise, or when no record matches).
    """
    log = partition.log
    try:
        if timestamp == EARLIEST_TIMESTAMP:
            entries = log.epoch_cache.entries
            epoch = entries[0][0] if entries and entries[0][1] <= log.log_start_offset else -1
            return FoundOffset(log.log_start_offset, -1, epoch)
        if timestamp == LATEST_TIMESTAMP:
            return FoundOffset(partition.high_watermark, -1, partition.state.leader_epoch)
        if timestamp == MAX_TIMESTAMP:
            return _max_timestamp_offset(partition)
        offset = log.offset_for_timestamp(timestamp)
        if offset is None or offset >= partition.high_watermark:
            return None
        return _record_at(partition, offset, lambda r: r.offset >= offset)
    except KafkaStorageError:
        partition.raise_storage_error()


def _record_at(
    partition: Partition, offset: int, matches: Callable[[Record], bool]
) -> FoundOffset | None:
    """The first record of the batch holding ``offset`` that ``matches`` (below the high
    watermark), with its timestamp and its batch's leader epoch."""
    high_watermark = partition.high_watermark
    data = partition.log.read(offset, 1, high_watermark)  # the batch holding it, whole
    if not data:
        return None
    header = read_header(data)
    # Lazily, from ``offset``: a compressed batch of a million records is not decoded whole
    # for its first match (the records below ``offset`` are stepped over by length).
    for record, _size, _more in batch_records(data, 0, header, offset):
        if record.offset >= high_watermark:
            break
        if matches(record):
            epoch = header.partition_leader_epoch
            return FoundOffset(record.offset, record.timestamp, epoch if epoch >= 0 else -1)
    return None


def _max_timestamp_offset(partition: Partition) -> FoundOffset | None:
    """The first record with the log's largest timestamp (Kafka's MAX_TIMESTAMP lookup: the
    segment with the largest one, the first batch there whose max timestamp it is, the first
    record of that batch that has it); None when that record is not below the HW."""
    log = partition.log
    segments = [s for s in log.segments if s.next_offset > log.log_start_offset]
    if not segments:
        return None
    segment = max(segments, key=lambda s: s.max_timestamp)  # the first of equals, as Kafka's
    largest = segment.max_timestamp
    if largest < 0:
        return None
    start = max(segment.base_offset, log.log_start_offset)
    if start >= log.log_end_offset:
        return None
    for header in log.batch_headers(start):
        if (
            header.base_offset >= segment.next_offset
            or header.base_offset >= partition.high_watermark
        ):
            return None
        if header.max_timestamp == largest:
            return _record_at(partition, header.base_offset, lambda r: r.timestamp == largest)
    return None
