"""The binary half of the records API: Kafka v2 record batches in and out of a partition,
``application/vnd.kafka.batch`` (docs/binary-records.md has the contract).

Fetch (``Accept: application/vnd.kafka.batch``): the stored batches as they lie in the segment
files, never decoded, from the batch holding the fetch offset up to the high watermark, at
most ``max_bytes`` unless the first batch alone is larger (Kafka's KIP-74); the answer's
headers say the high watermark, the log start offset and the offset after the last record
sent. The records' work is the client's, as with Kafka's fetch.

Produce (``Content-Type: application/vnd.kafka.batch``): one batch a producer built, checked
whole (:func:`storage.batch_check.check_produce_batch`) and stored as it came, with the
leader's base offset and epoch stamped on it (:meth:`Partition.append_batch_as_leader`). A
compacted topic refuses a batch holding a record without a key, whole (Kafka's rule and
words: :func:`keyless_refused`).

``server/http_records.py`` routes here after the parts both forms share (the query, the long
poll, the topic's creation); nothing here imports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiohttp import web

from client.protocol import (
    BATCH_MEDIA_TYPE,
    CORRUPT_MESSAGE,
    HIGH_WATERMARK_HEADER,
    INVALID_RECORD,
    INVALID_REQUEST,
    INVALID_TOPIC_EXCEPTION,
    LOG_START_OFFSET_HEADER,
    NEXT_OFFSET_HEADER,
    RECORD_TOO_LARGE,
    UNSUPPORTED_COMPRESSION_TYPE,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
)
from server import limits
from server.auto_topics import INTERNAL_TOPICS
from server.http_util import json_response, read_body
from server.node import Node
from server.partition import LeaderAppend, Partition
from server.produce import keyless_refused
from storage.batch import batches_within, iter_batches
from storage.batch_check import (
    CheckedBatch,
    InvalidBatchError,
    UnsupportedCompressionError,
    check_produce_batch,
    is_compressed,
)
from storage.errors import CorruptRecordError, KafkaStorageError, OffsetOutOfRangeError

# The query parameters of the JSON fetch that shape records: a binary fetch has no records
# to shape, and silently ignoring them would hide a client's mistake.
JSON_ONLY_FETCH_PARAMETERS = ("follow", "format", "max_records")


def _media_types(header: str) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in header.split(",")]


def wants_batches(request: web.Request) -> bool:
    """Whether a fetch asks for binary batches: ``Accept`` names the batch media type."""
    return BATCH_MEDIA_TYPE in _media_types(request.headers.get("Accept", ""))


def sends_batch(request: web.Request) -> bool:
    """Whether a produce's body is a binary batch (its ``Content-Type``)."""
    return _media_types(request.headers.get("Content-Type", ""))[0] == BATCH_MEDIA_TYPE


def refuse_topic_produce() -> ApiError:
    """The topic endpoint routes records by key: it cannot route a batch built for one
    partition."""
    return ApiError(
        UNSUPPORTED_MEDIA_TYPE,
        f"a {BATCH_MEDIA_TYPE} body is produced to one partition: "
        "POST it to /v1/topics/T/partitions/P/records",
    )


def refuse_json_only_parameters(request: web.Request) -> None:
    """INVALID_REQUEST naming the JSON-only fetch parameters a binary fetch gave."""
    given = [name for name in JSON_ONLY_FETCH_PARAMETERS if name in request.query]
    if given:
        raise ApiError(
            INVALID_REQUEST,
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for JSON fetches only; "
            f"a fetch with Accept: {BATCH_MEDIA_TYPE} takes offset, max_bytes and timeout_ms",
        )


# -- fetch ---------------------------------------------------------------------------------------


def _read(partition: Partition, offset: int, max_bytes: int, high_watermark: int) -> bytes:
    """Whole batches below ``high_watermark`` from the one holding ``offset`` (one segment's
    at most); storage trouble becomes the API's errors."""
    if offset >= high_watermark:
        return b""
    try:
        return partition.log.read(offset, max_bytes, high_watermark)
    except OffsetOutOfRangeError:
        raise partition.out_of_range_error(offset) from None
    except KafkaStorageError:
        partition.raise_storage_error()


async def read_batches(
    partition: Partition, offset: int, max_bytes: int, *, whole_first: bool = True
) -> tuple[list[bytes], int]:
    """The stored batches a binary fetch at ``offset`` answers, and the offset to fetch from
    next: after the last batch in them; the high watermark when no batch lies between that
    offset and it (a compacted log's gap: the JSON fetch's rule,
    :func:`storage.record_reads.records_in`, so a client does not poll the same offset until
    the high watermark moves); ``offset`` when it is at or above the high watermark.

    Read ``STREAM_READ_BYTES`` at a time with a yield between (a 64 MiB answer must not hold
    the event loop), across segments; the first read returns its first batch whole whatever
    its size (KIP-74; unless ``whole_first`` is False: a Kafka fetch's later partitions),
    later ones only batches that fit in what is left of ``max_bytes``."""
    parts: list[bytes] = []
    size = 0
    next_offset = offset
    while size < max_bytes:
        # The read and the move past a gap use one high watermark (it may move at each yield).
        high_watermark = partition.high_watermark
        data = _read(
            partition,
            next_offset,
            min(max_bytes - size, limits.STREAM_READ_BYTES),
            high_watermark,
        )
        if not data:
            # A log read returns at least one batch when any lies in [next_offset, HW).
            next_offset = max(next_offset, high_watermark)
            break
        whole = whole_first and not parts
        end, after = batches_within(data, len(data) if whole else max_bytes - size)
        if end == 0:
            break  # the next batch does not fit: it is the next fetch's first
        parts.append(data if end == len(data) else data[:end])
        size += end
        next_offset = after
        await asyncio.sleep(0)
        if partition.closed:
            break  # removed meanwhile: what was read is still an answer
    return parts, next_offset


def records_in(parts: Iterable[bytes]) -> int:
    """The records of the whole stored batches in ``parts``: the sum of their headers' record
    counts (read once per batch; not the offsets they span, which compaction leaves gaps in,
    nor only those from the fetch offset: a batch is sent whole)."""
    return sum(h.record_count for part in parts for _, h in iter_batches(part, verify=False))


async def fetch_batches(partition: Partition, offset: int, max_bytes: int) -> web.Response:
    """The binary fetch's answer (the long poll, if any, is over)."""
    parts, next_offset = await read_batches(partition, offset, max_bytes)
    partition.sent_to_client(records_in(parts), sum(map(len, parts)))  # /metrics
    return web.Response(
        body=parts[0] if len(parts) == 1 else b"".join(parts),
        content_type=BATCH_MEDIA_TYPE,
        headers={
            HIGH_WATERMARK_HEADER: str(partition.high_watermark),
            LOG_START_OFFSET_HEADER: str(partition.log.log_start_offset),
            NEXT_OFFSET_HEADER: str(next_offset),
        },
    )


# -- produce -------------------------------------------------------------------------------------


async def _check(body: bytes) -> CheckedBatch:
    """:func:`check_produce_batch`, its errors as the API's kinds (nothing is stored)."""
    try:
        # A compressed batch too: a few bytes may decompress to many (bounded, but not small).
        if len(body) >= limits.CHECK_IN_THREAD_BYTES_MIN or is_compressed(body):
            return await asyncio.to_thread(check_produce_batch, body)
        return check_produce_batch(body)
    except CorruptRecordError as e:
        raise ApiError(CORRUPT_MESSAGE, str(e)) from None
    except UnsupportedCompressionError as e:
        raise ApiError(UNSUPPORTED_COMPRESSION_TYPE, str(e)) from None
    except InvalidBatchError as e:
        raise ApiError(INVALID_RECORD, str(e)) from None


async def append_producer_batch(
    node: Node, topic: str, index: int, body: bytes, acks: str, timeout_s: float
) -> tuple[Partition, LeaderAppend]:
    """One batch a producer built, to partition ``index`` of ``topic`` (which exists): checked
    whole, appended as leader and waited for as ``acks`` says; the partition and what the
    append did (its ``commit_error`` is the caller's to raise or report). Raises ApiError when
    nothing was appended: a batch that does not check, a partition unknown or led elsewhere,
    an internal topic, a keyless record for a compacted topic, the append's own refusals.
    The binary HTTP produce and the Kafka listener's Produce both append through here."""
    batch = await _check(body)
    await node.replica_manager.await_opening(topic, index)
    node.replica_manager.partition(topic, index)  # an unknown partition: 404
    if topic in INTERNAL_TOPICS:
        raise ApiError(
            INVALID_TOPIC_EXCEPTION,
            f"Cannot append to internal topic {topic}: only the cluster writes it",
        )
    partition = node.replica_manager.leader_partition(topic, index)
    # The leader's log config, as Kafka's LogValidator reads it (an attribute, not the topic's
    # configs merged again: a keyless batch to a topic that is not compacted pays nothing).
    if batch.null_key and partition.log.config.compact:
        raise keyless_refused(topic, index)
    # The topic's compression.type (LogValidator): the batch rewritten in another codec, or
    # kept as it came ("producer", or the batch's own codec).
    config = partition.log.config
    batch = await recompressed(batch, config.codec, config.level)
    return partition, await partition.append_batch_as_leader(batch, acks, timeout_s)


async def recompressed(batch: CheckedBatch, codec: int | None, level: int | None) -> CheckedBatch:
    """``batch.recompressed(codec, level)``, in a worker thread when the records to compress
    are large: their decompressed size, not the batch's (a 100 KiB zstd batch may hold 64 MiB
    of records, seconds of gzip-9 that must not hold the event loop)."""
    if codec is None or codec == batch.compression:
        return batch
    records_bytes = batch.size if batch.records is None else len(batch.records)
    if records_bytes >= limits.CHECK_IN_THREAD_BYTES_MIN:
        return await asyncio.to_thread(batch.recompressed, codec, level)
    return batch.recompressed(codec, level)


async def produce_batch(
    request: web.Request, node: Node, topic: str, index: int, acks: str, timeout_s: float
) -> web.Response:
    """A binary produce to partition ``index`` of ``topic`` (which exists): reads and checks
    the body, appends it as leader, and answers as the contract says."""
    max_message_bytes = int(node.topic_configs(node.topic(topic))["max.message.bytes"])
    declared = request.content_length
    if (
        declared is not None
        and max_message_bytes < declared <= node.config.socket_request_max_bytes
    ):
        raise ApiError(
            RECORD_TOO_LARGE,
            f"the batch of {declared} bytes is larger than the topic's max.message.bytes "
            f"({max_message_bytes})",
        )
    # A body above socket.request.max.bytes is REQUEST_TOO_LARGE (read_body's rule).
    body = await read_body(request, max_message_bytes, RECORD_TOO_LARGE)
    partition, result = await append_producer_batch(node, topic, index, body, acks, timeout_s)
    if result.commit_error is not None:
        raise result.commit_error
    if acks == "0":
        return json_response({"topic": topic}, 202)
    if node.failpoints.take("drop_produce_response"):
        # Test-only: the batch is stored and committed, but the client never hears it.
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError
    info = result.infos[0]
    return json_response(
        {
            "topic": topic,
            "partition": index,
            "base_offset": info.first_offset,
            "record_count": info.last_offset - info.first_offset + 1,
            "log_start_offset": partition.log.log_start_offset,
            "duplicate": result.duplicate,
        }
    )
