"""The disk view's route without a socket: its query (kraft-dump-log's flags as booleans,
max_bytes within its bounds), the streamed text (the same bytes as the file's text made at
once, in bounded chunks; a reader that stops stops the worker thread too) and the two dumps a
node runs at once (a third request is told to retry)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from client.protocol import ApiError
from server import http_disk
from server.http_disk import (
    DEADLINE_NOTE,
    MAX_BYTES_DEFAULT,
    MAX_BYTES_MAX,
    dump_slot,
    stream_text,
    text_options,
)
from storage.batch import NewRecord, build_batch
from storage.log_files import SEGMENT, TextOptions, write_text

# A reader that stopped must see the worker end well within this (it looks twice a second).
WORKER_END_DEADLINE_S = 30.0


def options_of(query: str) -> TextOptions:
    return text_options(make_mocked_request("GET", f"/files/x.log?{query}"))


def test_the_defaults_read_one_mebibyte_without_records() -> None:
    assert options_of("") == TextOptions(max_bytes=MAX_BYTES_DEFAULT)
    assert MAX_BYTES_DEFAULT == 1 << 20 and MAX_BYTES_MAX == 64 << 20


def test_the_flags_are_kraft_dump_logs() -> None:
    options = options_of("print_data=true&deep_iteration=true&offsets_decoder=false&max_bytes=7")
    assert options == TextOptions(max_bytes=7, print_data=True, deep_iteration=True)


@pytest.mark.parametrize(
    "query",
    [
        "max_bytes=0",
        f"max_bytes={(64 << 20) + 1}",
        "max_bytes=1e6",
        "max_bytes=1&max_bytes=2",
        "print_data=yes",
        "print_data=1",
        "offsets_decoder=TRUE",
    ],
)
def test_a_bad_query_is_refused_by_name(query: str) -> None:
    with pytest.raises(ApiError) as raised:
        options_of(query)
    assert raised.value.name == "INVALID_REQUEST"
    assert query.split("=")[0] in raised.value.message


@pytest.fixture
def segment(tmp_path: Path) -> Path:
    """A segment whose dump with payloads is several chunks of text (over 64 KiB)."""
    path = tmp_path / "00000000000000000000.log"
    batches = [
        build_batch(
            [NewRecord(b"key", f"value {i} ".encode() * 20, 1700000000000 + i, ())], base_offset=i
        )
        for i in range(600)
    ]
    path.write_bytes(b"".join(batches))
    return path


def test_the_streamed_text_is_the_files_text_in_bounded_chunks(segment: Path) -> None:
    options = TextOptions(max_bytes=MAX_BYTES_MAX, print_data=True)
    whole = io.StringIO()
    write_text(segment, SEGMENT, options, whole)
    chunks: list[bytes] = []

    async def send(chunk: bytes) -> None:
        chunks.append(chunk)

    asyncio.run(stream_text(segment, SEGMENT, options, send))
    assert b"".join(chunks).decode() == whole.getvalue()
    assert len(chunks) > 2 and max(len(c) for c in chunks) <= 64 * 1024


def test_a_reader_that_stops_stops_the_worker(segment: Path) -> None:
    options = TextOptions(max_bytes=MAX_BYTES_MAX, print_data=True)
    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)
        raise ConnectionResetError("the reader went away")

    async def read_one_chunk() -> None:
        with pytest.raises(ConnectionResetError):
            # Returns (raises) only once the worker thread has ended.
            await asyncio.wait_for(
                stream_text(segment, SEGMENT, options, send), WORKER_END_DEADLINE_S
            )

    asyncio.run(read_one_chunk())
    assert len(sent) == 1


def test_a_dump_stops_at_its_deadline_with_a_line_saying_so(segment: Path) -> None:
    # A reader slow enough never to finish: its first chunk is still being sent at the
    # deadline, however long the dump took to make it.
    options = TextOptions(max_bytes=MAX_BYTES_MAX, print_data=True)
    sent: list[bytes] = []
    calls = 0

    async def send(chunk: bytes) -> None:
        nonlocal calls
        calls += 1
        sent.append(chunk)
        if calls == 1:
            await asyncio.Event().wait()  # never set: only the deadline ends it

    async def scenario() -> None:
        # Returns only once the worker thread has ended.
        await asyncio.wait_for(
            stream_text(segment, SEGMENT, options, send, deadline_s=0.05),
            WORKER_END_DEADLINE_S,
        )

    asyncio.run(scenario())
    whole = io.StringIO()
    write_text(segment, SEGMENT, options, whole)
    first, note = sent
    assert len(first) < len(whole.getvalue().encode())
    assert whole.getvalue().encode().startswith(first)
    assert note.decode() == ("" if first.endswith(b"\n") else "\n") + DEADLINE_NOTE.format(
        deadline_s=0.05
    )
    assert note.decode().endswith(
        "Stopped at the 0.05 s deadline of a dump: a smaller max_bytes, or a faster reader, "
        "gets the whole text.\n"
    )


def test_a_reader_too_slow_for_the_deadlines_line_is_given_up_on(
    segment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_disk, "_DEADLINE_NOTE_SEND_S", 0.05)

    async def send(chunk: bytes) -> None:
        await asyncio.Event().wait()  # takes nothing, the deadline's line neither

    async def scenario() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(
                stream_text(
                    segment,
                    SEGMENT,
                    TextOptions(max_bytes=MAX_BYTES_DEFAULT),
                    send,
                    deadline_s=0.05,
                ),
                WORKER_END_DEADLINE_S,
            )

    asyncio.run(scenario())


def test_a_third_dump_at_once_is_told_the_node_is_busy_and_to_retry() -> None:
    async def scenario() -> None:
        async with dump_slot(), dump_slot():
            with pytest.raises(ApiError) as raised:
                async with dump_slot(wait_s=0.01):
                    raise AssertionError("a third slot was given")
            assert raised.value.name == "SERVER_BUSY"
            assert raised.value.extra == {"retry_after_s": 1}
        async with dump_slot(wait_s=0.01), dump_slot(wait_s=0.01):
            pass  # both free again

    asyncio.run(scenario())
    asyncio.run(scenario())  # a new event loop gets its own slots
