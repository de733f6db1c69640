"""The disk view's text of a segment on any bytes and any ``max_bytes``: it never raises, it
is the tool's output plus at most one closing line, that line says where the dump stopped
within what was read, and a dump that stopped short without it is one the tool reported."""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.batch import NewRecord, build_batch
from storage.dump_log import dump_files
from storage.log_files import SEGMENT, TextOptions, write_text

SETTINGS = settings(max_examples=150, deadline=None)
_STOP = re.compile(r"^Stopped at byte (\d+) of (\d+): ")

_BATCHES = b"".join(
    build_batch([NewRecord(b"k", b"v" * n, 1700000000000, ())], base_offset=n) for n in range(5)
)

segments = (
    st.binary(max_size=400)
    | st.integers(0, len(_BATCHES)).map(lambda n: _BATCHES[:n])
    | st.tuples(st.integers(0, len(_BATCHES) - 1), st.integers(1, 255)).map(
        lambda t: _BATCHES[: t[0]] + bytes([_BATCHES[t[0]] ^ t[1]]) + _BATCHES[t[0] + 1 :]
    )
)


@SETTINGS
@given(segments, st.integers(1, 2 * len(_BATCHES)), st.booleans())
def test_a_segments_text_is_the_tools_and_says_where_it_stopped(
    data: bytes, max_bytes: int, print_data: bool
) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "00000000000000000000.log"
        path.write_bytes(data)
        options = TextOptions(max_bytes=max_bytes, print_data=print_data)
        text = io.StringIO()
        write_text(path, SEGMENT, options, text)
        tool = io.StringIO()
        dump_files([str(path)], options.dump_options(), tool, tool)
    assert text.getvalue().startswith(tool.getvalue())
    rest = text.getvalue()[len(tool.getvalue()) :].splitlines()
    assert len(rest) <= 1
    if rest:
        stop = _STOP.match(rest[0])
        assert stop is not None, rest[0]
        position, size = int(stop[1]), int(stop[2])
        assert size == len(data) and position < size and position <= max_bytes
    elif len(data) > max_bytes:
        # Not read to the end and no note: only a batch whose header does not parse stops a
        # dump earlier (the batches after it cannot be found), and the tool says so.
        assert "the batches after it cannot be found" in tool.getvalue()
