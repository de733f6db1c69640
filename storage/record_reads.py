"""Decoding a log read into records and the offset the next read starts from.

Offsets in a log need not be dense (a compacted log, Kafka's rules: see
:mod:`storage.segment`): a batch keeps its base and last offsets while records inside it were
cleaned away, some batches hold no record at all, and whole ranges between batches hold
nothing. So a reader's next offset is never "the last record's offset + 1": it is the offset
after the last batch it was given (or after the last record it took, when it stopped inside a
batch), and a read that found nothing below its upper bound has learnt that the whole range up
to that bound is empty. :func:`records_in` computes both from one read, per batch (no work per
record beyond decoding).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.batch import Record, decode_batch


@dataclass(frozen=True, slots=True)
class RecordsRead:
    """The records of one read and the offset to read from next (past every offset the read
    showed to hold no record for the reader: gaps, empty batches, records below its start)."""

    records: list[Record]
    next_offset: int


def records_in(
    data: bytes, *, offset: int, low: int, high: int, max_records: int | None = None
) -> RecordsRead:
    """The records of ``data`` (whole batches a log read returned from ``offset``) with offsets
    in [``low``, ``high``), at most ``max_records``, and the next offset to read from:

    - the offset after the last record taken when ``max_records`` stopped the read inside a
      batch;
    - else the offset after the last batch (at most ``high``: a batch reaching past it is read
      again from there);
    - ``high`` when ``data`` is empty (the log read finds no batch below ``high`` only when
      none lies at or after ``offset``);

    never below ``offset``. Raises :class:`~storage.errors.CorruptRecordError` (with the
    position in ``data``) for a batch that does not decode.
    """
    records: list[Record] = []
    next_offset = high
    pos = 0
    while pos < len(data):
        header, batch_records = decode_batch(data, pos)
        pos += header.size
        next_offset = min(header.next_offset, high)
        for record in batch_records:
            if low <= record.offset < high:
                records.append(record)
        if max_records is not None and len(records) >= max_records:
            if len(records) > max_records:
                del records[max_records:]
                next_offset = records[-1].offset + 1
            break
    return RecordsRead(records, max(next_offset, offset))
