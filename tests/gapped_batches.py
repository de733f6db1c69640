"""Batches as Kafka's cleaner leaves them, for tests that need offset gaps without a cleaner.

:func:`storage.batch.build_batch` writes dense offsets (records at base, base + 1, ...). A
compacted log also has batches whose records skip offsets (the batch keeps its base and last
offsets while records inside it went) and batches with no record at all (an idempotent
producer's last batch, kept for its sequence). :func:`gapped_batch` encodes those with
:func:`storage.batch.assemble_batch` (Kafka's v2 layout, a correct CRC-32C), so the code under
test reads them exactly as it would read a cleaned segment.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.batch import (
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    NewRecord,
    assemble_batch,
    encode_record,
)

T0 = 1_700_000_000_000


def gapped_batch(
    records: Sequence[tuple[int, NewRecord]],
    *,
    base_offset: int,
    last_offset: int,
    partition_leader_epoch: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    empty_timestamp: int = T0,
) -> bytes:
    """One uncompressed v2 batch covering offsets [``base_offset``, ``last_offset``] that holds
    ``records`` as (offset, record) pairs, in increasing offset order, possibly none. With no
    record, the timestamps are ``empty_timestamp`` (Kafka's cleaner keeps the original
    batch's; any value serves a test)."""
    offsets = [offset for offset, _record_ in records]
    assert offsets == sorted(set(offsets)), "records in strictly increasing offset order"
    assert all(base_offset <= o <= last_offset for o in offsets), "records inside the batch"
    base_timestamp = records[0][1].timestamp if records else empty_timestamp
    max_timestamp = max((r.timestamp for _o, r in records), default=empty_timestamp)
    body = b"".join(encode_record(r, o - base_offset, base_timestamp) for o, r in records)
    return assemble_batch(
        body,
        base_offset=base_offset,
        last_offset_delta=last_offset - base_offset,
        record_count=len(records),
        base_timestamp=base_timestamp,
        max_timestamp=max_timestamp,
        partition_leader_epoch=partition_leader_epoch,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
    )


def rec(offset: int, value: bytes | None = None, key: bytes | None = b"k") -> NewRecord:
    """A record whose timestamp and value say its offset (the value unless given)."""
    return NewRecord(key, value if value is not None else b"v%d" % offset, T0 + offset)


def sparse_batch(offsets: Sequence[int], *, base_offset: int, last_offset: int) -> bytes:
    """:func:`gapped_batch` with one :func:`rec` at each of ``offsets``."""
    return gapped_batch(
        [(o, rec(o)) for o in offsets], base_offset=base_offset, last_offset=last_offset
    )


def empty_batch(
    base_offset: int, last_offset: int, *, producer_id: int = 1, base_sequence: int = 0
) -> bytes:
    """A batch with no record left covering [``base_offset``, ``last_offset``]: an
    idempotent producer's last batch, which Kafka's cleaner keeps for its sequence."""
    return gapped_batch(
        [],
        base_offset=base_offset,
        last_offset=last_offset,
        producer_id=producer_id,
        producer_epoch=0,
        base_sequence=base_sequence,
    )
