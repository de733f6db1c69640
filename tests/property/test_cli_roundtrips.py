"""Round trips of the console tools: bytes typed or piped in are the bytes stored and printed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from client.protocol import format_record, parse_produce_record
from client.tools.console_consumer import ConsumedRecord, record_from_json
from client.tools.line_reader import LineSplitter, ReaderConfig, decode_line, parse_line

SETTINGS = settings(max_examples=150, deadline=None)
# A line's content: any bytes but the line break, and not ending in the "\r" of a CRLF.
line_bytes = st.binary(max_size=64).filter(lambda b: b"\n" not in b and not b.endswith(b"\r"))


@SETTINGS
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=8))
def test_line_splitter_loses_and_reorders_nothing_however_input_is_chunked(
    data: bytes, cuts: list[int]
) -> None:
    splitter = LineSplitter()
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    lines: list[bytes] = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        lines += splitter.feed(data[start:end])
    lines += splitter.finish()
    assert b"".join(lines) == data
    assert all(line.endswith(b"\n") for line in lines[:-1])


@SETTINGS
@given(line=line_bytes)
def test_a_piped_line_is_stored_byte_for_byte(line: bytes) -> None:
    record = parse_produce_record(parse_line(decode_line(line + b"\n"), 1, ReaderConfig()))
    assert record.key is None
    assert record.value == line


@SETTINGS
@given(key=line_bytes.filter(lambda b: b"," not in b), value=line_bytes)
def test_a_keyed_line_splits_into_exact_key_and_value_bytes(key: bytes, value: bytes) -> None:
    cfg = ReaderConfig(parse_key=True, key_separator=",")
    record = parse_produce_record(parse_line(decode_line(key + b"," + value + b"\r\n"), 1, cfg))
    assert (record.key, record.value) == (key, value)


@SETTINGS
@given(
    key=st.none() | st.binary(max_size=32),
    value=st.none() | st.binary(max_size=64),
    headers=st.lists(
        st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=16)), max_size=3
    ),
    offset=st.integers(0, 2**63 - 1),
    partition=st.integers(0, 1000),
)
def test_a_binary_fetch_record_decodes_to_the_stored_bytes(
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
    offset: int,
    partition: int,
) -> None:
    obj = format_record(
        offset=offset,
        timestamp=1700000000000,
        key=key,
        value=value,
        headers=headers,
        partition=partition,
        fmt="binary",
    )
    assert record_from_json(obj, partition) == ConsumedRecord(
        partition=partition,
        offset=offset,
        timestamp=1700000000000,
        key=key,
        value=value,
        headers=tuple(headers),
    )
