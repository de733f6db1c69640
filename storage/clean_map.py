"""The cleaner's offset map: each key of the dirty part of a log -> its latest offset.

Kafka's ``SkimpyOffsetMap`` keeps a 16-byte MD5 of each key in a fixed buffer
(``log.cleaner.dedupe.buffer.size``, 128 MiB: 24 bytes a slot, 90 % filled at most). Two keys
with one MD5 would make the cleaner drop the older key's latest record. We keep the exact key
bytes in a dict instead: no collision can lose a record, at the price of more memory a key.

The budget is counted, not measured: each entry costs ``len(key) + ENTRY_OVERHEAD_BYTES``.
The overhead is CPython's cost beyond the key's own bytes, measured with ``tracemalloc`` on
3.11 for 1,000 to 175,000 16-byte keys with offsets above 2**30: 106 to 129 bytes (the bytes
object's 33-byte header and 8-byte alignment, a 32-byte int, and the dict's 24-byte entry plus
its index slot at the table's fill). We count 160, room for a dict just after it doubled, so
the map never takes more than its budget (128 MiB hold about 750,000 keys of 20 bytes, Kafka's
buffer about 5 million MD5s).

Building (Kafka's ``buildOffsetMap``): the dirty segments are read oldest first, every keyed
record at or after the first dirty offset is put, control batches are skipped, and after each
batch ``latest_offset`` moves to its last offset; after each whole segment it moves to the
offset before the next segment (or the cleanable range's end), so the range's offset gaps are
covered. When a new key would pass the budget, building stops before the batch that holds it
ends: ``latest_offset`` stays at the last whole batch, so the clean covers [first dirty,
``latest_offset``] and the next round starts after it. The keys that batch put stay in the
map: each points past ``latest_offset``, where every record is kept, so an older record they
supersede is rightly dropped. Kafka stops at the same place (a record, not a segment boundary).
Deviation: the first batch is always mapped whole, even past the budget (by at most one
batch: max.message.bytes bounds it), so every round makes progress; Kafka instead refuses a
buffer too small for one key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice, repeat
from typing import NamedTuple

from storage.batch import (
    HEADER_SIZE,
    BatchHeader,
    check_batch,
    decode_varint,
    decompressed_batch,
    read_header,
)
from storage.errors import CorruptRecordError

# CPython's cost of one map entry beyond its key's bytes (module docstring: measured 106-129).
ENTRY_OVERHEAD_BYTES = 160

# Kafka's log.cleaner.dedupe.buffer.size default: the map's default budget.
DEDUPE_BUFFER_BYTES = 128 * 1024 * 1024


class OffsetMap:
    """key bytes -> the latest offset seen for it, within a memory budget (module docstring)."""

    def __init__(self, memory_bytes: int = DEDUPE_BUFFER_BYTES) -> None:
        if memory_bytes <= ENTRY_OVERHEAD_BYTES:
            raise ValueError(
                f"the offset map needs more than {ENTRY_OVERHEAD_BYTES} bytes, got {memory_bytes}"
            )
        self.memory_bytes = memory_bytes
        self._offsets: dict[bytes, int] = {}
        # The latest offset of a key, or None if the map has not seen it: the dict's own get
        # (the cleaner asks once a record; a method around it costs a fifth more).
        self.get: Callable[[bytes], int | None] = self._offsets.get
        self.used_bytes = 0
        # The last offset the map covers: every record after it is kept by the clean.
        self.latest_offset = -1

    def __len__(self) -> int:
        return len(self._offsets)

    def offsets_of(self, keys: Sequence[bytes]) -> list[int]:
        """The latest offset of each key, -1 for a key the map has not seen."""
        return list(map(self._offsets.get, keys, repeat(-1, len(keys))))

    def put(self, key: bytes, offset: int, *, force: bool = False) -> bool:
        """Records ``offset`` as the latest of ``key``. A key already present costs nothing
        more; a new one is refused (False) when it would pass the budget, unless ``force``."""
        offsets = self._offsets
        if key in offsets:
            offsets[key] = offset
            return True
        cost = len(key) + ENTRY_OVERHEAD_BYTES
        if not force and self.used_bytes + cost > self.memory_bytes:
            return False
        offsets[key] = offset
        self.used_bytes += cost
        return True

    def put_all(
        self, keys: Sequence[bytes], offsets: Sequence[int], *, force: bool = False
    ) -> bool:
        """Puts each ``offsets[i]`` as the latest of ``keys[i]``, in order (the last of a key
        wins), or nothing (False) if the keys new to the map would pass the budget together,
        unless ``force``."""
        known = self._offsets
        if (
            force
            or self.used_bytes + sum(map(len, keys)) + ENTRY_OVERHEAD_BYTES * len(keys)
            <= self.memory_bytes
        ):
            # Even if every key were new the budget would hold: one probe a key, and the cost
            # of the new ones counted after. A dict keeps the order keys came in, so the keys
            # new to the map are its last ones.
            before = len(known)
            known.update(zip(keys, offsets, strict=True))
            added = len(known) - before
            if added:
                new_bytes = sum(map(len, islice(reversed(known), added)))
                self.used_bytes += new_bytes + ENTRY_OVERHEAD_BYTES * added
            return True
        # set.difference(dict) probes the dict once per key of the set (dict_keys' "-" would
        # walk the whole map instead).
        fresh = set(keys).difference(known)
        cost = sum(map(len, fresh)) + ENTRY_OVERHEAD_BYTES * len(fresh)
        if self.used_bytes + cost > self.memory_bytes:
            return False
        self.used_bytes += cost
        known.update(zip(keys, offsets, strict=True))
        return True

    def update_latest_offset(self, offset: int) -> None:
        """Moves ``latest_offset`` up to ``offset`` (never down)."""
        if offset > self.latest_offset:
            self.latest_offset = offset

    @property
    def utilization(self) -> float:
        """Share of the budget in use (Kafka's "buffer utilization")."""
        return self.used_bytes / self.memory_bytes

    def clear(self) -> None:
        self._offsets.clear()
        self.used_bytes = 0
        self.latest_offset = -1


def _bad_record(message: str, position: int) -> CorruptRecordError:
    return CorruptRecordError(message, position)


def _bad_length(length: int, position: int) -> CorruptRecordError:
    return CorruptRecordError(f"a record of {length} bytes does not fit the batch", position)


class RecordWalk(NamedTuple):
    """What :func:`walk_records` read of a batch's records, in record order."""

    offsets: list[int]
    # None for a record without a key.
    keys: list[bytes | None]
    # Where each record starts (its length varint) in the buffer, then where the last ends: record
    # i is ``buf[starts[i] : starts[i + 1]]``.
    starts: list[int]
    # Indexes (into the lists above) of the records whose value is null: tombstones.
    tombstones: list[int]
    # How many records have no key.
    keyless: int


def walk_records(buf: bytes | memoryview, pos: int, header: BatchHeader) -> RecordWalk:
    """Each record's offset, key, position and null-value mark of the (checked, uncompressed)
    batch at ``pos``, reading only what leads to each key and to the null mark of its value:
    the cleaner decides on these. Raises :class:`CorruptRecordError` where a record does not
    parse, as :func:`storage.batch.decode_batch` would.

    This is the cleaner's hottest loop (every record of the dirty range, twice): one function,
    local names, varints of one and two bytes (zigzag -64..63 and -8192..8191: nearly every
    length and offset delta) decoded inline, and one bound check a record: every field read
    lies before the value's null mark, so the mark lying inside the record vouches for them
    all (a read past the buffer's end raises IndexError, turned into the corruption error).
    Whether the records fit the batch, and their offset deltas, are checked once after the
    loop. A record's value and headers are not parsed: the CRC vouches for the bytes, and a
    batch the cleaner rebuilds re-reads the records it keeps (the filter reads each field of a
    kept record, and leaves any it cannot copy as is to decode_batch)."""
    if not isinstance(buf, bytes):
        # Slices of bytes are the keys' bytes; a view's would be views of it.
        buf = bytes(buf)
    end = pos + header.size
    base = header.base_offset
    keyless = 0
    offsets: list[int] = []
    keys: list[bytes | None] = []
    starts: list[int] = []
    tombstones: list[int] = []
    add_offset = offsets.append
    add_key = keys.append
    add_start = starts.append
    c = pos + HEADER_SIZE
    try:
        for _ in repeat(None, header.record_count):
            add_start(c)
            # The record's length (a positive varint: its zigzag form is even and not 0), then
            # c moves past it and the attributes byte after it, to the timestamp delta.
            b = buf[c]
            if b < 0x80:
                if b & 1 or not b:
                    raise _bad_length((b >> 1) ^ -(b & 1), c)
                record_end = c + 1 + (b >> 1)
                c += 2
            elif buf[c + 1] < 0x80:
                zz = (b & 0x7F) | (buf[c + 1] << 7)
                if zz & 1 or not zz:
                    raise _bad_length((zz >> 1) ^ -(zz & 1), c)
                record_end = c + 2 + (zz >> 1)
                c += 3
            else:
                length, c = decode_varint(buf, c, end)
                if length < 1:
                    raise _bad_length(length, c)
                record_end = c + length
                c += 1
            # A record past the batch's end is not refused here: the records after it start past
            # the end too, and the check after the loop refuses the batch.
            # The timestamp delta is not needed: skipped.
            if buf[c] < 0x80:
                c += 1
            elif buf[c + 1] < 0x80:
                c += 2
            else:
                c = decode_varint(buf, c, record_end)[1]
            b = buf[c]
            if b < 0x80:
                add_offset(base + ((b >> 1) ^ -(b & 1)))
                c += 1
            elif buf[c + 1] < 0x80:
                zz = (b & 0x7F) | (buf[c + 1] << 7)
                add_offset(base + ((zz >> 1) ^ -(zz & 1)))
                c += 2
            else:
                delta, c = decode_varint(buf, c, record_end)
                add_offset(base + delta)
            b = buf[c]
            if b < 0x80 and not b & 1:  # a key of 0 to 63 bytes
                c += 1
                key_end = c + (b >> 1)
                add_key(buf[c:key_end])
                c = key_end
            else:
                key_length, c = decode_varint(buf, c, record_end)
                if key_length >= 0:
                    add_key(buf[c : c + key_length])
                    c += key_length
                elif key_length == -1:
                    add_key(None)
                    keyless += 1
                else:
                    raise _bad_record(f"a key of {key_length} bytes", c)
            if c >= record_end:
                raise _bad_record("a record ends before its value", c)
            # A null value is varint -1, one byte 0x01; any other value length is not needed.
            b = buf[c]
            if b == 0x01 or (
                b & 0x7F == 0x01 and decode_varint(buf, c, record_end)[0] == -1
            ):  # the second: -1 in a longer varint (no writer we know does this)
                tombstones.append(len(keys) - 1)
            c = record_end
    except IndexError:
        raise _bad_record(
            f"record {len(starts) - 1} of the batch runs past the buffer", c
        ) from None
    if c != end:
        raise _bad_record(
            f"expected {header.record_count} records to fill the batch to byte {end}, "
            f"they end at {c}",
            c,
        )
    add_start(end)
    # Offset deltas are checked here, all at once, rather than one a record in the loop.
    last = base + header.last_offset_delta
    if offsets and (min(offsets) < base or max(offsets) > last):
        i = next(i for i, offset in enumerate(offsets) if not base <= offset <= last)
        raise _bad_record(
            f"offset delta {offsets[i] - base} is outside [0, {header.last_offset_delta}]",
            starts[i],
        )
    return RecordWalk(offsets, keys, starts, tombstones, keyless)


def record_keys(
    buf: bytes | memoryview, pos: int, header: BatchHeader
) -> list[tuple[int, bytes | None, bool]]:
    """(offset, key or None, whether it is a tombstone) of every record of the (checked,
    uncompressed) batch at ``pos``, in order: :func:`walk_records` as one tuple a record."""
    walk = walk_records(buf, pos, header)
    tombstones = set(walk.tombstones)
    return [
        (offset, key, i in tombstones)
        for i, (offset, key) in enumerate(zip(walk.offsets, walk.keys, strict=True))
    ]


def map_batch(
    offset_map: OffsetMap, buf: bytes | memoryview, pos: int, start_offset: int
) -> tuple[BatchHeader, bool]:
    """Puts the keys of the batch at ``pos`` (records at or after ``start_offset``) into
    ``offset_map`` and moves its latest offset to the batch's last; returns (the batch's
    header, whether the map became full, in which case ``latest_offset`` did not move).
    Checks the batch's CRC; a compressed batch's records are read decompressed (bounded).
    Raises :class:`CorruptRecordError` for a batch that does not parse."""
    header = check_batch(buf, pos)
    if header.last_offset < start_offset:
        return header, False
    if not header.is_control:
        # Before the map covers any batch, this one is mapped whole (progress: docstring).
        force = offset_map.latest_offset < start_offset
        if header.compression:
            plain = decompressed_batch(buf, pos)
            walk = walk_records(plain, 0, read_header(plain))
        else:
            walk = walk_records(buf, pos, header)
        # The common case in one step: every record is at or after the start and keyed, and the
        # batch's new keys fit: the map ends as the puts one by one would leave it (the last
        # offset of each key wins). Otherwise the puts go one by one, to stop where they would.
        if (
            header.base_offset < start_offset
            or walk.keyless
            # No key is None: walk.keyless is 0.
            or not offset_map.put_all(walk.keys, walk.offsets, force=force)  # type: ignore[arg-type]
        ):
            for offset, key in zip(walk.offsets, walk.keys, strict=True):
                if (
                    key is not None
                    and offset >= start_offset
                    and not offset_map.put(key, offset, force=force)
                ):
                    return header, True
    offset_map.update_latest_offset(header.last_offset)
    return header, False
