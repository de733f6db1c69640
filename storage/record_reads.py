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

from storage.batch import COMPRESSION_MASK, Record, batch_records, check_batch, iter_batches


@dataclass(frozen=True, slots=True)
class RecordsRead:
    """The records of one read and the offset to read from next (past every offset the read
    showed to hold no record for the reader: gaps, empty batches, records below its start)."""

    records: list[Record]
    next_offset: int
    # The bytes of the records taken, as they lie in their batches' records sections
    # (decompressed for a compressed batch): the work the read did.
    decoded_bytes: int = 0


@dataclass(frozen=True, slots=True)
class LogRead:
    """Whole batches a log read returned from ``offset`` (CRC-checked), not yet decoded, the
    bounds of the offsets a reader takes from them ([``low``, ``high``)), and where they lie
    (``where``, at byte ``position``) for a decoding error. Decoding needs no lock: a reader
    takes the bytes under the log's lock and decodes them after (in a worker thread when
    :attr:`compressed`)."""

    data: bytes
    offset: int
    low: int
    high: int
    where: str
    position: int

    @property
    def compressed(self) -> bool:
        """Whether a batch here is compressed (its records are decompressed to be read)."""
        return any(
            h.attributes & COMPRESSION_MASK for _, h in iter_batches(self.data, verify=False)
        )


def records_in(
    data: bytes,
    *,
    offset: int,
    low: int,
    high: int,
    max_records: int | None = None,
    max_bytes: int | None = None,
) -> RecordsRead:
    """The records of ``data`` (whole batches a log read returned from ``offset``) with offsets
    in [``low``, ``high``), at most ``max_records``, and the next offset to read from:

    - the offset after the last record taken when ``max_records`` stopped the read inside a
      batch, or ``max_bytes`` did inside a compressed one;
    - else the offset after the last batch (at most ``high``: a batch reaching past it is read
      again from there);
    - ``high`` when ``data`` is empty (the log read finds no batch below ``high`` only when
      none lies at or after ``offset``);

    never below ``offset``. ``max_bytes`` bounds the records' bytes decoded, counted
    decompressed: the log read bounded the stored bytes, but a compressed batch of a few KiB
    may hold 64 MiB of records, so a read stops inside one once the records it took reach
    ``max_bytes`` (it takes at least one). Records are decoded lazily, so a read decodes what
    it takes and steps over a batch's records below ``low`` without decoding them (the next
    read resumes inside the batch, as Kafka's consumers skip the records below their fetch
    offset). Raises :class:`~storage.errors.CorruptRecordError` (with the position in
    ``data``) for a batch that does not decode.
    """
    records: list[Record] = []
    next_offset = high
    decoded = 0
    pos = 0
    while pos < len(data):
        if records and max_bytes is not None and decoded >= max_bytes:
            break
        header = check_batch(data, pos)
        next_offset = min(header.next_offset, high)
        for record, size, more in batch_records(data, pos, header, low):
            if record.offset >= high:
                break
            records.append(record)
            decoded += size
            full = max_records is not None and len(records) >= max_records
            spent = header.compression and max_bytes is not None and decoded >= max_bytes
            if full or spent:
                if more:
                    next_offset = record.offset + 1
                return RecordsRead(records, max(next_offset, offset), decoded)
        pos += header.size
    return RecordsRead(records, max(next_offset, offset), decoded)
