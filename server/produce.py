"""Planning a produce request: which partition each record goes to, and in which batches.

Pure: the handler validates the whole request with :func:`plan_produce` before it appends
anything, so a bad record (unknown partition, too large) refuses the request and stores
nothing. The plan is then carried out partition by partition.

A compacted topic (``cleanup.policy`` with ``compact``) takes only records with keys: a request
holding one without is refused whole, in Kafka's words (:func:`keyless_refused`); the binary
produce (``server/http_batches.py``) applies the same rule to a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from client.protocol import (
    INVALID_RECORD,
    RECORD_TOO_LARGE,
    UNKNOWN_PARTITION,
    ApiError,
    ProduceRecord,
    partition_for_key,
)
from storage.batch import HEADER_SIZE, NewRecord, build_batch

# An upper bound of a record's framing in a batch: length, attributes, timestamp delta,
# offset delta, key length, value length and header count varints (at most 5 or 10 bytes
# each), so that a batch cut by this estimate is never over the limit.
_RECORD_OVERHEAD_BYTES_MAX = 5 + 1 + 10 + 5 + 5 + 5 + 5
_HEADER_OVERHEAD_BYTES_MAX = 5 + 5


@dataclass
class PartitionPlan:
    partition: int
    # Index in the request of each record, in the order the records are appended.
    positions: list[int] = field(default_factory=list)
    # The records cut into batches of at most max.message.bytes.
    batches: list[list[NewRecord]] = field(default_factory=list)


def _size_bound(record: NewRecord) -> int:
    size = _RECORD_OVERHEAD_BYTES_MAX + len(record.key or b"") + len(record.value or b"")
    for name, value in record.headers:
        size += _HEADER_OVERHEAD_BYTES_MAX + len(name.encode("utf-8")) + len(value or b"")
    return size


def keyless_refused(topic: str, partition: int) -> ApiError:
    """Kafka's error for a record without a key produced to a compacted topic
    (``LogValidator.validateKey``, INVALID_RECORD): the request is refused, nothing stored."""
    return ApiError(
        INVALID_RECORD,
        "Compacted topic cannot accept message without key in topic partition "
        f"{topic}-{partition}.",
    )


def choose_partition(
    record: ProduceRecord, index: int, partitions: int, fixed: int | None, round_robin: int
) -> int:
    """Kafka's choice: an explicit partition, else murmur2 of the key, else the rotation."""
    if fixed is not None:
        if record.partition is not None and record.partition != fixed:
            raise ApiError(
                INVALID_RECORD,
                f"record {index} names partition {record.partition}, but was sent to {fixed}",
            )
        return fixed
    if record.partition is not None:
        if record.partition >= partitions:
            raise ApiError(
                UNKNOWN_PARTITION,
                f"record {index}: partition {record.partition} does not exist "
                f"(the topic has {partitions})",
            )
        return record.partition
    if record.key is not None:
        return partition_for_key(record.key, partitions)
    return round_robin % partitions


def plan_produce(
    records: Sequence[ProduceRecord],
    *,
    partitions: int,
    fixed_partition: int | None,
    round_robin: int,
    now_ms: int,
    max_message_bytes: int,
    topic: str = "",
    compacted: bool = False,
) -> dict[int, PartitionPlan]:
    """Validates every record and groups them by partition into batches that fit the limit.

    Keyless records of one request all go to the partition of the rotation (``round_robin``),
    so a request is one batch, as Kafka's sticky partitioner makes it; the next request goes to
    the next partition. With ``compacted`` (the topic ``topic`` is), a record without a key
    refuses the request (:func:`keyless_refused`, naming the partition it would have gone to).
    """
    if compacted:  # a pass of its own: a topic that is not compacted pays nothing for it
        for index, record in enumerate(records):
            if record.key is None:
                partition = choose_partition(
                    record, index, partitions, fixed_partition, round_robin
                )
                raise keyless_refused(topic, partition)
    plans: dict[int, PartitionPlan] = {}
    sizes: dict[int, int] = {}
    for index, record in enumerate(records):
        partition = choose_partition(record, index, partitions, fixed_partition, round_robin)
        new = NewRecord(
            key=record.key,
            value=record.value,
            timestamp=now_ms if record.timestamp is None else record.timestamp,
            headers=record.headers,
        )
        bound = _size_bound(new)
        if HEADER_SIZE + bound > max_message_bytes:
            exact = len(build_batch([new]))
            if exact > max_message_bytes:
                raise ApiError(
                    RECORD_TOO_LARGE,
                    f"record {index} needs a {exact}-byte batch, larger than the topic's "
                    f"max.message.bytes of {max_message_bytes}",
                )
        plan = plans.setdefault(partition, PartitionPlan(partition))
        plan.positions.append(index)
        if not plan.batches or sizes[partition] + bound > max_message_bytes:
            plan.batches.append([])
            sizes[partition] = HEADER_SIZE
        plan.batches[-1].append(new)
        sizes[partition] += bound
    return plans
