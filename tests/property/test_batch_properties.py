"""Batch codec properties: built batches decode to what was put in; any byte string given to
check_batch/decode_batch either parses or raises CorruptRecordError, and nothing else."""

from __future__ import annotations

import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.batch import (
    HEADER_SIZE,
    NewRecord,
    build_batch,
    check_batch,
    decode_batch,
    iter_batches,
)
from storage.errors import CorruptRecordError

_INT32 = st.integers(-(2**31), 2**31 - 1)
_maybe_bytes = st.none() | st.binary(max_size=64)
_headers = st.lists(st.tuples(st.text(max_size=8), _maybe_bytes).map(tuple), max_size=3).map(tuple)
_records = st.lists(
    st.builds(
        NewRecord,
        key=_maybe_bytes,
        value=_maybe_bytes,
        timestamp=st.integers(0, 2**42),
        headers=_headers,
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(
    records=_records,
    base_offset=st.integers(0, 2**62),
    epoch=st.integers(0, 2**31 - 1),
    producer_id=st.integers(-1, 2**40),
    producer_epoch=st.integers(-1, 2**15 - 1),
    base_sequence=_INT32.filter(lambda s: s >= -1),
)
def test_built_batch_decodes_to_its_records(
    records: list[NewRecord],
    base_offset: int,
    epoch: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
) -> None:
    batch = build_batch(
        records,
        base_offset=base_offset,
        partition_leader_epoch=epoch,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
    )
    header, decoded = decode_batch(batch)
    assert header.size == len(batch)
    assert (header.base_offset, header.partition_leader_epoch) == (base_offset, epoch)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (
        producer_id,
        producer_epoch,
        base_sequence,
    )
    assert header.max_timestamp == max(r.timestamp for r in records)
    assert [r.offset for r in decoded] == [base_offset + i for i in range(len(records))]
    assert [(r.key, r.value, r.timestamp, r.headers) for r in decoded] == [
        (r.key, r.value, r.timestamp, r.headers) for r in records
    ]


def _parse_or_corrupt(data: bytes) -> None:
    for function in (check_batch, decode_batch):
        try:
            function(data)
        except CorruptRecordError:
            pass
    try:
        for _ in iter_batches(data):
            pass
    except CorruptRecordError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_corrupt_record_error(data: bytes) -> None:
    _parse_or_corrupt(data)


@settings(max_examples=200, deadline=None)
@given(records=_records, data=st.data())
def test_a_mutated_batch_parses_or_raises_corrupt_record_error(
    records: list[NewRecord], data: st.DataObject
) -> None:
    batch = bytearray(build_batch(records))
    # Mutate the header (where lengths and counts live) or anywhere, and sometimes cut.
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(batch) - 1))
        batch[where] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(batch)))
    _parse_or_corrupt(bytes(batch[:cut]))
    _parse_or_corrupt(bytes(batch))


@settings(max_examples=100, deadline=None)
@given(records=_records, data=st.data())
def test_a_mutated_batch_with_a_valid_crc_decodes_or_raises_corrupt_record_error(
    records: list[NewRecord], data: st.DataObject
) -> None:
    """Corruption past the CRC check (a buggy producer's batch) reaches the record parser."""
    batch = bytearray(build_batch(records))
    where = data.draw(st.integers(HEADER_SIZE, len(batch) - 1))
    batch[where] = data.draw(st.integers(0, 255))
    batch[17:21] = int(crc32c.crc32c(bytes(batch[21:]))).to_bytes(4, "big")
    _parse_or_corrupt(bytes(batch))
