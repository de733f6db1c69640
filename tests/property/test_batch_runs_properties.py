"""The record walk's column check of alike records (storage/batch_runs.py) decides exactly as
the walk record by record: on batches of mostly alike records, whole or with bytes
overwritten, the walk with runs returns what the walk without them returns (the smallest and
largest timestamp delta), or raises the same error with the same message."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.batch import HEADER_SIZE, NewRecord, build_batch
from storage.batch_check import _walk_records
from storage.errors import CorruptRecordError

NOW_MS = 1_700_000_000_000
_COUNT = struct.Struct(">i")
_COUNT_OFFSET = 57

# A few shapes, so that most records repeat the one before: keys and values of a few lengths
# (the 2-byte length varints start at 64 bytes), a header now and then.
_shapes = st.tuples(
    st.sampled_from([None, b"", b"k", b"key-" * 20]),
    st.sampled_from([None, b"", b"v" * 10, b"v" * 100, b"w" * 100, b"x" * 2000]),
    st.sampled_from([(), (), (), (("h", b"1"),)]),
)
# Timestamp deltas of one, two and three bytes, negative ones too.
_deltas = st.sampled_from([0, 0, 1, 2, 5, 31, 63, 64, 100, 8191, 8192, 70_000, -1, -40, -9000])


def _batch(
    shapes: list[tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]],
    deltas: list[int],
    repeats: list[int],
) -> bytes:
    records = []
    for (key, value, headers), delta, repeat in zip(shapes, deltas, repeats, strict=True):
        for _ in range(repeat):
            records.append(NewRecord(key, value, NOW_MS + delta, headers))
    return build_batch(records)


def _verdict(data: bytes, count: int, runs: bool) -> object:
    try:
        return _walk_records(data, count, runs)
    except CorruptRecordError as e:
        return ("refused", str(e), e.position)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.tuples(_shapes, _deltas, st.integers(1, 90)), min_size=1, max_size=6),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=3),
    count_change=st.sampled_from([0, 0, 0, -1, 1]),
)
def test_walk_with_runs_decides_as_the_walk_record_by_record(
    parts: list[tuple[tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]], int, int]],
    edits: list[tuple[float, int]],
    count_change: int,
) -> None:
    data = bytearray(_batch([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts]))
    count = _COUNT.unpack_from(data, _COUNT_OFFSET)[0] + count_change
    records = len(data) - HEADER_SIZE
    for where, byte in edits:
        data[HEADER_SIZE + int(where * records)] = byte
    body = bytes(data)
    assert _verdict(body, count, runs=True) == _verdict(body, count, runs=False)


@settings(max_examples=20, deadline=None)
@given(
    records=st.integers(8000, 8400),
    value=st.sampled_from([None, b"", b"v" * 3]),
    edit=st.none() | st.tuples(st.integers(0, 8400 * 8), st.integers(0, 255)),
)
def test_walk_with_runs_decides_as_the_walk_past_two_byte_offset_deltas(
    records: int, value: bytes | None, edit: tuple[int, int] | None
) -> None:
    data = bytearray(build_batch([NewRecord(None, value, NOW_MS) for _ in range(records)]))
    if edit is not None:
        data[HEADER_SIZE + edit[0] % (len(data) - HEADER_SIZE)] = edit[1]
    body = bytes(data)
    assert _verdict(body, records, runs=True) == _verdict(body, records, runs=False)
