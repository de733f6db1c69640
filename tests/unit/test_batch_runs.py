"""The column check of alike records (storage/batch_runs.py): which records a run takes, where
it stops, and which records start none (the property tier checks that the walk decides the
same with runs as without)."""

from __future__ import annotations

from storage.batch import HEADER_SIZE, NewRecord, build_batch, decode_varint, encode_varint
from storage.batch_runs import extend, match_run, template_at

NOW_MS = 1_700_000_000_000


def _alike(count: int, value: bytes = b"v" * 100, step_ms: int = 0) -> bytes:
    return build_batch([NewRecord(None, value, NOW_MS + i * step_ms) for i in range(count)])


def _record_size(data: bytes | bytearray) -> int:
    """The size of the batch's first record (all of them, in an alike batch below 64)."""
    length, after = decode_varint(data, HEADER_SIZE, len(data))
    return after - HEADER_SIZE + length


def test_runs_take_alike_records_up_to_the_first_wider_offset_delta() -> None:
    data = _alike(200, step_ms=1)
    size = _record_size(data)
    pos, index, low, high = extend(data, HEADER_SIZE, HEADER_SIZE + size, 1, 200, 0, 0)
    # Record 64 is the first whose offset delta takes two bytes: a new template.
    assert (pos, index) == (HEADER_SIZE + 64 * size, 64)
    assert (low, high) == (0, 63)


def test_runs_after_a_two_byte_offset_delta_template_reach_the_batch_end() -> None:
    data = _alike(3000)
    size = _record_size(data)
    start = HEADER_SIZE + 64 * size
    wide = size + 1  # one more byte of offset delta
    pos, index, _low, _high = extend(data, start, start + wide, 65, 3000, 0, 0)
    assert (pos, index) == (len(data), 3000)


def test_a_run_stops_before_a_record_with_a_wrong_offset_delta() -> None:
    data = bytearray(_alike(40))
    size = _record_size(data)
    offset_delta_at = HEADER_SIZE + 20 * size + 4  # length (2 bytes), attributes, timestamp
    assert data[offset_delta_at] == 40  # zigzag of 20
    data[offset_delta_at] = 42
    template = template_at(bytes(data), HEADER_SIZE, HEADER_SIZE + size, 1)
    assert template is not None
    matched, _low, _high = match_run(bytes(data), HEADER_SIZE + size, 39, template, 1)
    assert matched == 19


def test_a_run_stops_before_a_one_byte_timestamp_delta_with_its_continuation_bit() -> None:
    data = bytearray(_alike(40))
    size = _record_size(data)
    data[HEADER_SIZE + 10 * size + 3] = 0x81  # after the length (2 bytes) and attributes
    template = template_at(bytes(data), HEADER_SIZE, HEADER_SIZE + size, 1)
    assert template is not None
    assert match_run(bytes(data), HEADER_SIZE + size, 39, template, 1)[0] == 9


def test_a_run_of_two_byte_timestamp_deltas_reads_their_values() -> None:
    records = [NewRecord(None, b"v", NOW_MS)] + [
        NewRecord(None, b"v", NOW_MS + delta) for delta in (100, 5000, 64, 8191, 300)
    ]
    data = build_batch(records)
    first = HEADER_SIZE + _record_size(data)
    second_size = 1 + 1 + 2 + 1 + 1 + 2 + 1  # length, attributes, delta, offset, key, value, h
    template = template_at(data, first, first + second_size, 2)
    assert template is not None and template.timestamp_width == 2
    assert match_run(data, first + second_size, 4, template, 2) == (4, 64, 8191)


def test_a_record_with_headers_starts_no_run() -> None:
    data = build_batch([NewRecord(None, b"v", NOW_MS, (("h", b"1"),)) for _ in range(5)])
    size = _record_size(data)
    assert template_at(data, HEADER_SIZE, HEADER_SIZE + size, 1) is None


def test_a_record_whose_offset_delta_is_not_in_its_shortest_form_starts_no_run() -> None:
    # Record 0 with offset delta 0 written in two bytes (0x80 0x00), which the walk takes.
    body = b"\x00" + encode_varint(0) + b"\x80\x00" + encode_varint(-1) + encode_varint(1)
    body += b"v\x00"
    record = encode_varint(len(body)) + body
    data = bytes(HEADER_SIZE) + record * 3
    assert template_at(data, HEADER_SIZE, HEADER_SIZE + len(record), 1) is None


def test_a_run_never_reads_past_the_body() -> None:
    data = _alike(30)
    size = _record_size(data)
    # The count claims 100 records: the runs stop where the bytes do.
    pos, index, _low, _high = extend(data, HEADER_SIZE, HEADER_SIZE + size, 1, 100, 0, 0)
    assert (pos, index) == (len(data), 30)
