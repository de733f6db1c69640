"""The HTTP/JSON API of API.md: admin, produce, fetch (long poll and follow streams), offsets.

Handlers are thin: parse and check the request, call the node or a pure plan, shape the JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from client.protocol import (
    FORMATS,
    INVALID_REQUEST,
    LEADER_NOT_AVAILABLE,
    NOT_ENOUGH_REPLICAS,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_OUT_OF_RANGE,
    REQUEST_TIMED_OUT,
    ApiError,
    format_record,
    parse_produce_record,
    produce_records_from_body,
)
from kraft.records import MetadataRecord
from kraft.state import MetadataState, TopicState
from server import controller, limits
from server.http_util import (
    errors_as_json,
    json_response,
    path_int,
    query_choice,
    query_int,
    read_json,
)
from server.node import METADATA_INDEX_HEADER, Node
from server.partition import Partition, ProducerBatch
from server.produce import plan_produce
from server.replication import FetchRequest
from storage.batch import Record
from storage.errors import KafkaStorageError, OffsetOutOfRangeError

NODE = web.AppKey("node", Node)
METADATA_INDEX = "metadata_index"
ACKS = ("all", "-1", "1", "0")


def now_ms() -> int:
    return int(time.time() * 1000)


def _node(request: web.Request) -> Node:
    return request.app[NODE]


# -- cluster -------------------------------------------------------------------------------------


async def get_cluster(request: web.Request) -> web.Response:
    return json_response(_node(request).cluster_view())


async def get_quorum(request: web.Request) -> web.Response:
    """API.md's quorum shape, from this node's view of pysyncobj's status."""
    node = _node(request)
    status = node.quorum.status()
    now = now_ms()
    leader_end = max(
        (v.get("log_end_index") or v.get("match_index") or 0 for v in status["voters"]),
        default=0,
    )
    voters = []
    for v in status["voters"]:
        end = v["log_end_index"] if v["id"] == node.node_id else v.get("match_index")
        contact = v.get("last_contact_ms")
        last_fetch = None if contact is None else now - contact
        lag = None if end is None else max(leader_end - end, 0)
        voters.append(
            {
                "id": v["id"],
                "status": v["status"],
                "connected": v.get("connected"),
                "log_end_offset": end,
                "lag": lag,
                "last_fetch_ms": last_fetch,
                "last_caught_up_ms": last_fetch if lag == 0 else None,
            }
        )
    return json_response(
        {
            "cluster_id": node.meta.cluster_id,
            "leader_id": status.get("leader_id"),
            "term": status.get("term"),
            "commit_index": status.get("commit_index"),
            "node": {
                "id": node.node_id,
                "applied_index": status["metadata_applied_index"],
                "metadata_digest": status["metadata_digest"],
            },
            "voters": voters,
        }
    )


async def get_ready(request: web.Request) -> web.Response:
    node = _node(request)
    if node.ready:
        return json_response({"ready": True, "node_id": node.node_id})
    reason = (
        "not registered with the controller yet"
        if not node.registered.is_set()
        else ("catching up on metadata")
    )
    return json_response(
        {"ready": False, "node_id": node.node_id, "reason": reason}, 503, {"Retry-After": "1"}
    )


# -- topics --------------------------------------------------------------------------------------


def _describe(node: Node, name: str) -> dict[str, Any]:
    topic = node.topic(name)
    partitions = []
    for index, p in sorted(topic.partitions.items()):
        local = node.logs.partitions.get((name, index))
        partitions.append(
            {
                "partition": index,
                "leader": p.leader if p.leader >= 0 else None,
                "leader_epoch": p.leader_epoch,
                "replicas": list(p.replicas),
                "isr": list(p.isr),
                "log_start_offset": None if local is None else local.log.log_start_offset,
                "high_watermark": None if local is None else local.high_watermark,
                "offline": None if local is None else local.log.offline is not None,
            }
        )
    return {
        "name": topic.name,
        "topic_id": topic.topic_id,
        "partition_count": len(topic.partitions),
        "replication_factor": _replication_factor(topic),
        "configs": dict(sorted(topic.configs.items())),
        "partitions": partitions,
    }


async def list_topics(request: web.Request) -> web.Response:
    node = _node(request)
    node.require_ready()
    topics = sorted(node.quorum.snapshot_state().topics.values(), key=lambda t: t.name)
    body = [
        {
            "name": t.name,
            "partition_count": len(t.partitions),
            "replication_factor": _replication_factor(t),
        }
        for t in topics
    ]
    return json_response({"topics": body})


def _replication_factor(topic: TopicState) -> int:
    return len(topic.partitions[0].replicas) if topic.partitions else 0


async def _admin(
    request: web.Request, body: Any, plan: Callable[[MetadataState], list[MetadataRecord]]
) -> web.Response | None:
    """Writes an admin plan on the controller; on another node, forwards the request there.

    Returns the controller's answer when it was forwarded, None when written here."""
    node = _node(request)
    node.require_ready()
    if not node.quorum.is_leader():
        return await node.forward(request, body)
    request[METADATA_INDEX] = await node.write_metadata(plan)
    return None


async def _add_metadata_index(request: web.Request, response: web.StreamResponse) -> None:
    """Tells a forwarding node which metadata index to apply before it answers its client."""
    index = request.get(METADATA_INDEX)
    if index is not None:
        response.headers[METADATA_INDEX_HEADER] = str(index)


async def _json_object(request: web.Request, fields: set[str], required: set[str]) -> Any:
    node = _node(request)
    body = await read_json(request, node.config.max_request_bytes)
    if not isinstance(body, dict):
        raise ApiError(INVALID_REQUEST, "the body must be a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise ApiError(INVALID_REQUEST, f"unknown field(s) {', '.join(unknown)}")
    missing = sorted(required - set(body))
    if missing:
        raise ApiError(INVALID_REQUEST, f"the body needs {', '.join(missing)}")
    return body


async def create_topic(request: web.Request) -> web.Response:
    node = _node(request)
    body = await _json_object(
        request, {"name", "partitions", "replication_factor", "configs"}, {"name"}
    )

    def plan(state: MetadataState) -> list[MetadataRecord]:
        return controller.plan_create_topic(
            state,
            body["name"],
            body.get("partitions"),
            body.get("replication_factor"),
            body.get("configs"),
            default_partitions=node.config.num_partitions,
            default_replication_factor=node.config.default_replication_factor,
            rng=node.rng,
        )

    forwarded = await _admin(request, body, plan)
    return forwarded or json_response(_describe(node, body["name"]), 201)


async def describe_topic(request: web.Request) -> web.Response:
    node = _node(request)
    node.require_ready()
    return json_response(_describe(node, request.match_info["topic"]))


async def delete_topic(request: web.Request) -> web.Response:
    name = request.match_info["topic"]
    forwarded = await _admin(request, None, lambda s: controller.plan_delete_topic(s, name))
    return forwarded or web.Response(status=204)


async def add_partitions(request: web.Request) -> web.Response:
    node = _node(request)
    name = request.match_info["topic"]
    body = await _json_object(request, {"count"}, {"count"})
    forwarded = await _admin(
        request,
        body,
        lambda s: controller.plan_add_partitions(s, name, body["count"], rng=node.rng),
    )
    return forwarded or json_response(_describe(node, name))


async def get_configs(request: web.Request) -> web.Response:
    node = _node(request)
    node.require_ready()
    topic = node.topic(request.match_info["topic"])
    return json_response(
        {"configs": node.topic_configs(topic), "overrides": dict(sorted(topic.configs.items()))}
    )


async def put_configs(request: web.Request) -> web.Response:
    node = _node(request)
    name = request.match_info["topic"]
    body = await _json_object(request, {"configs"}, {"configs"})
    forwarded = await _admin(
        request, body, lambda s: controller.plan_alter_configs(s, name, body["configs"])
    )
    return forwarded or json_response({"configs": dict(sorted(node.topic(name).configs.items()))})


# -- internal: the controller's broker sessions --------------------------------------------------


async def register_broker(request: web.Request) -> web.Response:
    body = await _json_object(
        request,
        {"cluster_id", "broker_id", "incarnation_id", "http_url", "raft_address"},
        {"cluster_id", "broker_id", "incarnation_id", "http_url", "raft_address"},
    )
    return json_response(await _node(request).controller.register(body))


async def broker_heartbeat(request: web.Request) -> web.Response:
    body = await _json_object(
        request, {"broker_epoch", "incarnation_id", "applied_index"}, {"broker_epoch"}
    )
    broker_id = path_int(request, "broker")
    return json_response(await _node(request).controller.heartbeat(broker_id, body))


async def allocate_producer_ids(request: web.Request) -> web.Response:
    body = await _json_object(request, {"broker_id", "broker_epoch"}, {"broker_id", "broker_epoch"})
    return json_response(await _node(request).controller.allocate_producer_ids(body))


async def alter_isr(request: web.Request) -> web.Response:
    body = await _json_object(request, {"leader", "partitions"}, {"leader", "partitions"})
    return json_response(await _node(request).controller.alter_isr(body))


async def replica_fetch(request: web.Request) -> web.Response:
    node = _node(request)
    fetch_request = FetchRequest.from_json(await read_json(request, node.config.max_request_bytes))
    body = await node.replicas.fetch(fetch_request)
    return web.Response(body=body, content_type="application/octet-stream")


async def new_producer(request: web.Request) -> web.Response:
    """Allocates an idempotent producer id (API.md): {"producer_id", "producer_epoch"}."""
    node = _node(request)
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
    """The idempotent producer headers (API.md), all three or none, on a partition endpoint."""
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
    values = []
    for header, high in zip(
        _PRODUCER_HEADERS, ((1 << 63) - 1, (1 << 15) - 1, (1 << 31) - 1), strict=True
    ):
        raw = request.headers[header]
        if not raw.isdigit() or int(raw) > high:
            raise ApiError(INVALID_REQUEST, f"{header} must be an integer in [0, {high}]")
        values.append(int(raw))
    return ProducerBatch(*values)


async def _produce(request: web.Request, fixed_partition: int | None) -> web.Response:
    node = _node(request)
    node.require_ready()
    name = request.match_info["topic"]
    acks, timeout_s = _produce_query(request)
    producer = _producer_batch(request, fixed_partition)
    max_message_bytes = int(node.topic_configs(node.topic(name))["max.message.bytes"])
    # Never below what one record of max.message.bytes needs as base64 inside JSON.
    limit = max(node.config.max_request_bytes, max_message_bytes * 4 // 3 + 64 * 1024)
    raw = produce_records_from_body(await read_json(request, limit))
    if len(raw) > limits.PRODUCE_RECORDS_MAX:
        raise ApiError(INVALID_REQUEST, f"at most {limits.PRODUCE_RECORDS_MAX} records per request")
    records = [parse_produce_record(obj, i) for i, obj in enumerate(raw)]
    # Read the topic again: it may have changed while the body arrived.
    topic = node.topic(name)
    count = len(topic.partitions)
    if fixed_partition is not None:
        node.partition(name, fixed_partition)  # an unknown partition refuses the request
    plans = plan_produce(
        records,
        partitions=count,
        fixed_partition=fixed_partition,
        round_robin=node.next_round_robin(name),
        now_ms=now_ms(),
        max_message_bytes=int(node.topic_configs(topic)["max.message.bytes"]),
    )

    # Run-time checks and appends, partition by partition; the request as a whole was valid.
    offsets: list[dict[str, Any]] = [{} for _ in records]
    waits: list[tuple[Partition, int, list[int]]] = []
    failures: list[ApiError] = []

    def fail(index: int, positions: list[int], error: ApiError) -> None:
        failures.append(error)
        for position in positions:
            offsets[position] = {"partition": index, **_error_fields(error)}

    forwards: list[Awaitable[None]] = []
    duplicate = False
    for index, plan in sorted(plans.items()):
        appended: list[int] = []
        try:
            partition = node.leader_partition(name, index)
            for batch in plan.batches:
                if producer is None:
                    info = partition.append(batch, acks)
                else:
                    # Each batch of the request continues the sequence of the one before.
                    seq = (producer.base_sequence + len(appended)) & 0x7FFFFFFF
                    info, again = partition.append_idempotent(
                        batch, acks, dataclasses.replace(producer, base_sequence=seq)
                    )
                    duplicate = duplicate or again
                appended.extend(range(info.first_offset, info.last_offset + 1))
        except ApiError as e:
            if e.kind is NOT_LEADER_OR_FOLLOWER and fixed_partition is None and not appended:
                # The topic endpoint routes each record to its partition's leader.
                forwards.append(
                    _forward_partition(request, index, plan.positions, raw, offsets, fail)
                )
                continue
            # Batches appended before the failure stay, and are reported with their offsets.
            fail(index, plan.positions[len(appended) :], e)
        if not appended:
            continue
        node.logs.mark_dirty(partition)
        done = plan.positions[: len(appended)]
        for position, offset in zip(done, appended, strict=True):
            offsets[position] = {"partition": index, "offset": offset}
        waits.append((partition, appended[-1], done))

    async def wait_local() -> None:
        if acks != "all":
            return
        results = await asyncio.gather(
            *(p.wait_for_high_watermark_above(last, timeout_s) for p, last, _ in waits)
        )
        for (partition, _last, positions), committed in zip(waits, results, strict=True):
            if not committed:
                fail(partition.index, positions, _not_committed(partition))

    await asyncio.gather(wait_local(), *forwards)
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
    node = _node(request)
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
            "POST", target, {"records": records}, limits.PRODUCE_TIMEOUT_MS_MAX / 1000
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


def _not_committed(partition: Partition) -> ApiError:
    """Why an acks=all produce that was appended did not commit; its outcome is unknown."""
    error = partition.storage_error()
    if error is not None:
        return error
    if partition.is_leader and partition.under_min_isr:
        return ApiError(
            NOT_ENOUGH_REPLICAS,
            f"the ISR of {partition.name} shrank below min.insync.replicas "
            f"({partition.min_insync_replicas}) before the records were committed",
            {"retry_after_s": 1},
        )
    return ApiError(
        REQUEST_TIMED_OUT,
        f"the records for {partition.name} were appended but not committed "
        + ("in time" if partition.is_leader else "before this node lost leadership")
        + "; the outcome is unknown",
    )


def _error_fields(error: ApiError) -> dict[str, Any]:
    return {"error_code": error.code, "error": error.name, "message": error.message}


async def produce_topic(request: web.Request) -> web.Response:
    return await _produce(request, None)


async def produce_partition(request: web.Request) -> web.Response:
    return await _produce(request, path_int(request, "partition"))


# -- fetch ---------------------------------------------------------------------------------------


def _fetch_partition(request: web.Request) -> Partition:
    node = _node(request)
    node.require_ready()
    return node.leader_partition(request.match_info["topic"], path_int(request, "partition"))


def _start_offset(request: web.Request, partition: Partition) -> int:
    raw = request.query.get("offset", "earliest")
    if raw == "earliest":
        return partition.log.log_start_offset
    if raw == "latest":
        return partition.high_watermark
    try:
        offset = int(raw)
    except ValueError:
        raise ApiError(
            INVALID_REQUEST, f"offset must be a number, earliest or latest; got {raw!r}"
        ) from None
    log = partition.log
    if not log.log_start_offset <= offset <= log.log_end_offset:
        raise _out_of_range(partition, offset)
    return offset


def _out_of_range(partition: Partition, offset: int) -> ApiError:
    return ApiError(
        OFFSET_OUT_OF_RANGE,
        f"offset {offset} is out of range for {partition.name}: records are at "
        f"[{partition.log.log_start_offset}, {partition.high_watermark})",
        {
            "log_start_offset": partition.log.log_start_offset,
            "high_watermark": partition.high_watermark,
        },
    )


def _read(partition: Partition, offset: int, max_bytes: int, max_records: int) -> list[Record]:
    """Committed records from ``offset``; storage trouble becomes the API's errors."""
    if offset >= partition.high_watermark:
        return []
    try:
        records = partition.log.read_records(offset, max_bytes, partition.high_watermark)
    except OffsetOutOfRangeError:
        raise _out_of_range(partition, offset) from None
    except KafkaStorageError:
        partition.raise_storage_error()
    return records[:max_records]


async def fetch(request: web.Request) -> web.StreamResponse:
    partition = _fetch_partition(request)
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
    if request.query.get("follow", "false").lower() in ("true", "1", "yes"):
        return await _follow(request, partition, offset, fmt)

    if offset >= partition.high_watermark and timeout_ms > 0:
        await partition.wait_for_high_watermark_above(offset, timeout_ms / 1000)
        partition = _fetch_partition(request)  # leadership or the topic may have changed
    records = _read(partition, offset, max_bytes, max_records)
    body = {
        "records": [_record_json(r, partition.index, fmt) for r in records],
        "next_offset": records[-1].offset + 1 if records else offset,
        "high_watermark": partition.high_watermark,
        "log_start_offset": partition.log.log_start_offset,
    }
    return json_response(body)


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
    try:
        while True:
            try:
                partition = _fetch_partition(request)
                records = _read(
                    partition, offset, limits.STREAM_READ_BYTES, limits.FETCH_MAX_RECORDS_MAX
                )
            except ApiError as e:
                await response.write(frame(e.to_json(), event="error"))
                break
            if records:
                await response.write(
                    b"".join(
                        frame(_record_json(r, partition.index, fmt), r.offset) for r in records
                    )
                )
                offset = records[-1].offset + 1
                continue
            if not await partition.wait_for_high_watermark_above(offset, heartbeat_s):
                if offset >= partition.high_watermark:
                    beat = {"heartbeat": now_ms(), "next_offset": offset}
                    await response.write(frame(beat, event="heartbeat"))
    except ConnectionResetError:
        pass  # the client went away
    return response


# -- offsets -------------------------------------------------------------------------------------


async def get_offsets(request: web.Request) -> web.Response:
    partition = _fetch_partition(request)
    timestamp = query_int(request, "timestamp", None, -2, 1 << 62)
    body: dict[str, Any] = {
        "topic": partition.topic,
        "partition": partition.index,
        "earliest": partition.log.log_start_offset,
        "latest": partition.high_watermark,
    }
    if timestamp is not None:
        if timestamp == -2:  # Kafka's EARLIEST_TIMESTAMP
            found: int | None = partition.log.log_start_offset
        elif timestamp == -1:  # Kafka's LATEST_TIMESTAMP
            found = partition.high_watermark
        else:
            try:
                found = partition.log.offset_for_timestamp(timestamp)
            except KafkaStorageError:
                partition.raise_storage_error()
            if found is not None and found >= partition.high_watermark:
                found = None
        body["timestamp"] = timestamp
        body["offset"] = found
    return json_response(body)


# -- the app -------------------------------------------------------------------------------------


def make_app(node: Node) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=1 << 40)
    app[NODE] = node
    app.on_response_prepare.append(_add_metadata_index)
    r = app.router
    r.add_get("/v1/cluster", get_cluster)
    r.add_get("/v1/cluster/quorum", get_quorum)
    r.add_get("/v1/health/ready", get_ready)
    r.add_get("/v1/topics", list_topics)
    r.add_post("/v1/topics", create_topic)
    r.add_get("/v1/topics/{topic}", describe_topic)
    r.add_delete("/v1/topics/{topic}", delete_topic)
    r.add_post("/v1/topics/{topic}/partitions", add_partitions)
    r.add_get("/v1/topics/{topic}/configs", get_configs)
    r.add_put("/v1/topics/{topic}/configs", put_configs)
    r.add_post("/v1/topics/{topic}/records", produce_topic)
    r.add_post("/v1/topics/{topic}/partitions/{partition}/records", produce_partition)
    r.add_get("/v1/topics/{topic}/partitions/{partition}/records", fetch)
    r.add_get("/v1/topics/{topic}/partitions/{partition}/offsets", get_offsets)
    r.add_post("/v1/producers", new_producer)
    r.add_post("/v1/internal/brokers", register_broker)
    r.add_post("/v1/internal/brokers/{broker}/heartbeat", broker_heartbeat)
    r.add_post("/v1/internal/producer-ids", allocate_producer_ids)
    r.add_post("/v1/internal/alter-isr", alter_isr)
    r.add_post("/v1/internal/replica-fetch", replica_fetch)
    return app
