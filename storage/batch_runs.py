"""Runs of alike records in a produced batch, checked a column at a time instead of a record at
a time: the fast path of the leader's record walk (storage/batch_check.py).

A producer's batch is mostly records framed alike: the same key and value lengths, no headers,
timestamp deltas of the same width, offset deltas 0, 1, 2, ... After the walk has checked one
record byte by byte (the *template*), the records after it that are framed like it lie at a
fixed stride: the template's size. Field ``f`` of the ``j``-th record after the template is then
at ``first + j * stride + f``, and each framing byte of a run of ``k`` such records is one
strided slice of the body, ``data[first + f : first + f + k * stride : stride]``, checked by
bytes methods in C (``lstrip``, ``translate``, ``find``, ``==``) rather than by a Python loop
per record, which is what made the walk the leader's produce hot spot (about 0.7 µs a record).

A run's records are checked exactly as the record walk checks each of them; the run stops at
the first record that differs from the template in any framing byte, and the walk takes that
record up byte by byte again (so its verdict, and its error, are the walk's own). Field by
field, for a record of the run:

- the length varint, the key length varint, the value length varint and the header count: the
  template's bytes (so the template's lengths, which the walk checked, and no headers: a
  template with headers starts no run). The record then ends where its length says, since
  every field has the template's width;
- attributes: not read (Kafka ignores them, as the walk does);
- the timestamp delta: a varlong of the template's width, 1 or 2 bytes (every byte but the
  last with its continuation bit set, the last without), read for the batch's smallest and
  largest timestamp; a run of 2-byte deltas takes only non-negative ones;
- the offset delta: the record's index in the batch, written in the template's width, which
  must be the index's shortest (canonical) form for every record of the run; a batch writing
  its offset deltas otherwise is walked record by record, as before.

Key and value bytes are never read, as in the walk. The run's length is bounded by the body
(``k * stride`` bytes must be there) and by the record count, so nothing is read past either.
A run is tried only after the template, first for a few records, then growing fourfold while
every record matches (so a batch of records of varied sizes pays about one comparison a
record, and one of alike records a few dozen C calls per thousand records).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.batch import decode_varint

# The first run after a template covers this many records, each further one four times more:
# small enough that a run broken early costs little, growing fast over a batch of alike records.
RUN_PROBE_RECORDS = 16
RUN_GROWTH = 4

# Offset deltas in their shortest form: a record index below each bound takes 1, 2 or 3 bytes
# (a zigzag varint of 2 * index holds 7 bits a byte). A batch of 2^20 records or more (7 MiB
# of the smallest records) walks its later records one by one.
_OFFSET_DELTA_WIDTH_ENDS = (1 << 6, 1 << 13, 1 << 20)

# Offset delta bytes of indexes below 2^13, one table per byte of each width: the columns a
# run of 1- or 2-byte offset deltas must equal (16 KiB, built once).
_OD1 = bytes(2 * i for i in range(1 << 6))
_OD2_LOW = bytes(((2 * i) & 0x7F) | 0x80 for i in range(1 << 13))
_OD2_HIGH = bytes((2 * i) >> 7 for i in range(1 << 13))

# A 1-byte timestamp delta (zigzag) -> its value + 64 (0..127, in the order of the values),
# and 0xFF for a byte with the continuation bit: min/max of a translated column are the run's
# smallest and largest deltas.
_INVALID = 0xFF
_TS1_RANK = bytes(((b >> 1) ^ -(b & 1)) + 64 if b < 0x80 else _INVALID for b in range(256))
_TS1_BIAS = 64
# A 2-byte timestamp delta: its first byte (continuation bit set, an even zigzag: a delta >= 0)
# -> the delta's low 6 bits; its last byte (no continuation bit) -> itself, the delta's bits
# 6..12. Anything else -> 0xFF.
_TS2_FIRST = bytes((b - 0x80) >> 1 if b >= 0x80 and not b & 1 else _INVALID for b in range(256))
_TS2_LAST = bytes(b if b < 0x80 else _INVALID for b in range(256))
_INVALID_BYTE = bytes((_INVALID,))


@dataclass(frozen=True, slots=True)
class Template:
    """The framing of a record the walk has checked, which a run's records must repeat."""

    stride: int  # the record's size in bytes, its length varint included
    same: tuple[tuple[int, bytes], ...]  # (offset in the record, the byte every record has)
    timestamp_at: int
    timestamp_width: int  # 1 or 2
    offset_delta_at: int
    offset_delta_width: int  # 1, 2 or 3
    index_end: int  # the first record index whose offset delta is wider


def _varint_width(data: bytes, pos: int) -> int:
    width = 1
    while data[pos] & 0x80:
        pos += 1
        width += 1
    return width


def template_at(data: bytes, start: int, end: int, index: int) -> Template | None:
    """The template of the record at ``start`` (``end`` its end), which the walk has checked,
    for a run starting with record ``index`` of the batch; None when that record starts no
    run (headers, a wide timestamp delta, an offset delta not in its shortest form, or the
    next index needing a wider one)."""
    same: list[tuple[int, bytes]] = []
    pos = start
    width = _varint_width(data, pos)
    same += [(pos + i - start, data[pos + i : pos + i + 1]) for i in range(width)]
    pos += width + 1  # and the attributes
    timestamp_at = pos - start
    timestamp_width = _varint_width(data, pos)
    if timestamp_width > 2:
        return None
    pos += timestamp_width
    offset_delta_at = pos - start
    offset_delta_width = _varint_width(data, pos)
    pos += offset_delta_width
    for ends_at in _OFFSET_DELTA_WIDTH_ENDS[: offset_delta_width - 1]:
        if index - 1 < ends_at:
            return None  # the template's offset delta is wider than its shortest form
    if offset_delta_width > len(_OFFSET_DELTA_WIDTH_ENDS):
        return None
    index_end = _OFFSET_DELTA_WIDTH_ENDS[offset_delta_width - 1]
    if index >= index_end:
        return None
    for _field in ("key", "value"):
        length, after = decode_varint(data, pos, end)
        width = after - pos
        same += [(pos + i - start, data[pos + i : pos + i + 1]) for i in range(width)]
        pos += width + max(length, 0)
    if data[pos] != 0 or pos + 1 != end:
        return None  # headers: walked one record at a time
    same.append((pos - start, b"\x00"))
    return Template(
        end - start,
        tuple(same),
        timestamp_at,
        timestamp_width,
        offset_delta_at,
        offset_delta_width,
        index_end,
    )


def _offset_delta_columns(width: int, index: int, count: int) -> tuple[bytes, ...]:
    """The offset delta bytes of records ``index`` .. ``index + count - 1`` in ``width`` bytes
    (their shortest form), one bytes object per byte of the varint."""
    if width == 1:
        return (_OD1[index : index + count],)
    if width == 2:
        return (_OD2_LOW[index : index + count], _OD2_HIGH[index : index + count])
    indexes = range(2 * index, 2 * (index + count), 2)
    return (
        bytes((zz & 0x7F) | 0x80 for zz in indexes),
        bytes(((zz >> 7) & 0x7F) | 0x80 for zz in indexes),
        bytes(zz >> 14 for zz in indexes),
    )


def _matching_prefix(actual: bytes, expected: bytes) -> int:
    """How many leading bytes of two equally long byte strings are equal."""
    assert len(actual) == len(expected), (len(actual), len(expected))
    if actual == expected:
        return len(actual)
    differ = int.from_bytes(actual, "big") ^ int.from_bytes(expected, "big")
    return (len(actual) * 8 - differ.bit_length()) // 8


def match_run(
    data: bytes, first: int, count: int, template: Template, index: int
) -> tuple[int, int, int]:
    """How many of the ``count`` records from byte ``first`` on (record ``index`` of the batch
    the first; the caller makes sure ``count * template.stride`` bytes are there and that
    ``index + count <= template.index_end``) are framed as ``template``, from the first on;
    and the smallest and largest timestamp delta among those (0, 0 when none)."""
    stride = template.stride
    span = count * stride
    matched = count
    for offset, byte in template.same:
        at = first + offset
        column = data[at : at + span : stride]
        run = len(column) - len(column.lstrip(byte))
        if run < matched:
            if run == 0:
                return 0, 0, 0
            matched = run
            span = matched * stride
    at = first + template.offset_delta_at
    for column_index, expected in enumerate(
        _offset_delta_columns(template.offset_delta_width, index, matched)
    ):
        column = data[at + column_index : at + column_index + span : stride]
        run = _matching_prefix(column, expected[:matched])
        if run < matched:
            if run == 0:
                return 0, 0, 0
            matched = run
            span = matched * stride
    at = first + template.timestamp_at
    if template.timestamp_width == 1:
        ranks = data[at : at + span : stride].translate(_TS1_RANK)
        bad = ranks.find(_INVALID_BYTE)
        if bad >= 0:
            if bad == 0:
                return 0, 0, 0
            matched = bad
            ranks = ranks[:matched]
        return matched, min(ranks) - _TS1_BIAS, max(ranks) - _TS1_BIAS
    lows = data[at : at + span : stride].translate(_TS2_FIRST)
    highs = data[at + 1 : at + 1 + span : stride].translate(_TS2_LAST)
    for column in (lows, highs):
        bad = column.find(_INVALID_BYTE)
        if 0 <= bad < matched:
            if bad == 0:
                return 0, 0, 0
            matched = bad
    pairs = list(zip(highs[:matched], lows[:matched], strict=True))
    low_high, low_low = min(pairs)
    high_high, high_low = max(pairs)
    return matched, (low_high << 6) | low_low, (high_high << 6) | high_low


def extend(
    data: bytes, start: int, pos: int, index: int, count: int, low: int, high: int
) -> tuple[int, int, int, int]:
    """Follows the record the walk checked at ``start`` .. ``pos`` (record ``index - 1``) with
    the runs of records framed like it, as far as they go: returns the position and index
    after them and the smallest and largest timestamp delta so far (``low``, ``high`` and the
    runs'). Returns ``pos, index, low, high`` unchanged when no record follows alike."""
    template = template_at(data, start, pos, index)
    if template is None:
        return pos, index, low, high
    stride = template.stride
    end = len(data)
    size = RUN_PROBE_RECORDS
    while True:
        limit = min(size, count - index, (end - pos) // stride, template.index_end - index)
        if limit <= 0:
            break
        matched, run_low, run_high = match_run(data, pos, limit, template, index)
        if matched:
            pos += matched * stride
            index += matched
            if run_low < low:
                low = run_low
            if run_high > high:
                high = run_high
        if matched < limit:
            break
        size *= RUN_GROWTH
    return pos, index, low, high
