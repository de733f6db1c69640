"""The disk view's API: the files of one partition replica on its broker, and their text::

    GET /v1/brokers/{broker}/partitions/{topic}/{partition}/files
    -> {"broker_id", "log_dir", "directory", "files": [{"name", "size", "kind"}],
        "log_dir_files": [{"name", "size", "kind"}]}
    GET /v1/brokers/{broker}/partitions/{topic}/{partition}/files/{name}
        [?max_bytes=N&print_data=true&deep_iteration=true&offsets_decoder=true]
    -> text/plain: what ``kraft-dump-log --files <path> 2>&1`` prints for it

Only the broker holding the files can read them, so another node answers 307 to it (as
``/v1/brokers/{broker}/log-dirs`` does), after checking that the topic and partition exist
and that the broker holds a replica of it (404 otherwise, saying which). What may be listed and
read, the file kinds and the text are :mod:`storage.log_files`'s.

A segment's dump can take seconds and megabytes: it runs in a worker thread and its text is
streamed as it is made (a 64 MiB segment printed with its payloads is hundreds of MB of text,
never held whole). The thread hands the event loop chunks through a queue a few chunks deep,
so a slow reader slows the dump down instead of filling memory; a reader that goes away, or
stops reading for :data:`_WRITE_TIMEOUT_S`, stops it. At most :data:`_DUMPS_AT_ONCE_MAX` run
at once on a node, on threads of their own (never the default executor's, which other work
shares); a request that finds no room within :data:`_DUMP_WAIT_S` gets 503 SERVER_BUSY with
``Retry-After``. A dump ends at :data:`DUMP_DEADLINE_S` however its reader reads, so a reader
taking a chunk just before each write timeout cannot keep a slot: its text then ends with
:data:`DEADLINE_NOTE`'s line, or, for a reader too slow to take even that within
:data:`_DEADLINE_NOTE_SEND_S`, the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from client.protocol import NOT_FOUND, SERVER_BUSY, UNKNOWN_PARTITION, ApiError
from server.http_configs import redirect_to_broker, requested_broker
from server.http_records import node_of
from server.http_security import may_describe_topic
from server.http_util import json_response, path_int, query_choice, query_int, quoted
from server.node import Node
from storage.log_files import (
    TOPIC_CHECKPOINT_KINDS,
    FileEntry,
    TextOptions,
    find_file,
    list_log_dir_files,
    list_partition_files,
    read_text,
    visible_entries,
    write_text,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = logging.getLogger(__name__)

# Kafka's DumpLogSegments reads the whole file by default; a web page asks for a screenful:
# 1 MiB of a segment is a few thousand batches. 64 MiB bounds one request's disk reads (a
# default segment is 1 GiB: its start is what a reader of the disk view looks at).
MAX_BYTES_DEFAULT = 1024 * 1024
MAX_BYTES_MAX = 64 * 1024 * 1024
# Dumps are disk and CPU work in worker threads: two at once leave the rest of the node's
# threads (opening logs, password checks) room on a small machine.
_DUMPS_AT_ONCE_MAX = 2
# How long a request waits for a dump slot before 503 (a dump of 1 MiB takes well under 1 s).
_DUMP_WAIT_S = 10.0
_BUSY_RETRY_AFTER_S = 1
# Text goes to the client in chunks of this size, at most this many made ahead of the socket.
_CHUNK_BYTES = 64 * 1024
_CHUNKS_AHEAD_MAX = 4
# A reader that takes nothing for this long is given up on (its dump slot freed).
_WRITE_TIMEOUT_S = 30.0
# A dump, however its reader reads, ends this long after its text starts: a slow reader could
# otherwise hold a slot and its thread forever by taking a chunk every 29 s. 2 minutes is
# ample for 64 MiB of a segment read over any usable link (the default 1 MiB takes under 1 s).
DUMP_DEADLINE_S = 120.0
# The line ending a text cut at the deadline, and how long its reader gets to take it.
DEADLINE_NOTE = (
    "Stopped at the {deadline_s:g} s deadline of a dump: a smaller max_bytes, or a faster "
    "reader, gets the whole text.\n"
)
_DEADLINE_NOTE_SEND_S = 5.0
# How often a dump waiting for room looks whether its reader went away.
_CANCEL_CHECK_S = 0.5

_BOOLEAN = ("true", "false")
_NAME_QUOTED_CHARS_MAX = 255
# Per event loop (a node has one; tests run several): a semaphore belongs to its loop.
_dump_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
# The dumps' own threads, one per slot: a dump held by a slow reader waits in one of these,
# never in the default executor that the rest of the node's to_thread work needs. (Threads
# start on first use.)
_dump_threads = ThreadPoolExecutor(_DUMPS_AT_ONCE_MAX, thread_name_prefix="disk-view-dump")


def _flag(request: web.Request, name: str) -> bool:
    return query_choice(request, name, _BOOLEAN, "false") == "true"


def text_options(request: web.Request) -> TextOptions:
    """The query of a file's text: ``max_bytes`` (1 MiB by default, at most 64 MiB) and
    kraft-dump-log's flags as booleans (``true`` or ``false``; anything else is a 400)."""
    max_bytes = query_int(request, "max_bytes", MAX_BYTES_DEFAULT, 1, MAX_BYTES_MAX)
    assert max_bytes is not None
    return TextOptions(
        max_bytes=max_bytes,
        print_data=_flag(request, "print_data"),
        deep_iteration=_flag(request, "deep_iteration"),
        offsets_decoder=_flag(request, "offsets_decoder"),
    )


def _replica_directory(node: Node, request: web.Request) -> tuple[int, str, Path] | web.Response:
    """(broker id, ``<topic>-<partition>``, the replica's directory on this node), or the 307
    to the broker asked about; ApiError 404 when there is no such replica."""
    broker_id = requested_broker(request)
    topic = node.topic(request.match_info["topic"])
    index = path_int(request, "partition")
    state = topic.partitions.get(index)
    if state is None:
        raise ApiError(
            UNKNOWN_PARTITION, f"Partition {index} of topic '{topic.name}' does not exist."
        )
    name = f"{topic.name}-{index}"
    if broker_id not in state.replicas:
        if broker_id not in node.quorum.snapshot_state().brokers:
            raise ApiError(NOT_FOUND, f"broker {broker_id} is not registered in the cluster")
        brokers = ", ".join(str(b) for b in state.replicas)
        raise ApiError(
            NOT_FOUND, f"broker {broker_id} holds no replica of {name} (its replicas: {brokers})"
        )
    if broker_id != node.node_id:
        return redirect_to_broker(node, broker_id, request)
    logs = node.replica_manager.logs
    key = (topic.name, index)
    partition = logs.partitions.get(key)
    # Absolute: the text of a segment starts with its path, as kraft-dump-log's does.
    if partition is not None:
        return broker_id, name, partition.log.directory.absolute()
    if key in logs.failed:
        # Offline: its files are what someone looking into why wants to see.
        return broker_id, name, (logs.log_dir / name).absolute()
    raise ApiError(NOT_FOUND, f"broker {broker_id} has not opened its replica of {name} yet")


def _listing(directory: Path, log_dir: Path) -> tuple[list[FileEntry], list[FileEntry]]:
    return list_partition_files(directory), list_log_dir_files(log_dir)


async def list_files(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    found = _replica_directory(node, request)
    if isinstance(found, web.Response):
        return found
    broker_id, name, directory = found
    log_dir = node.replica_manager.logs.log_dir.absolute()
    try:
        # Off the event loop: a log directory may hold thousands of partition directories.
        files, top = await asyncio.to_thread(_listing, directory, log_dir)
    except (FileNotFoundError, NotADirectoryError):
        # Deleted meanwhile, or never created (an offline replica whose directory is gone).
        raise ApiError(NOT_FOUND, f"broker {broker_id} has no directory {name}") from None
    return json_response(
        {
            "broker_id": broker_id,
            "log_dir": str(log_dir),
            "directory": directory.name,
            "files": [f.to_json() for f in files],
            "log_dir_files": [f.to_json() for f in top],
        }
    )


# -- a file's text ------------------------------------------------------------------------------


class _Abandoned(Exception):
    """The reader went away: the dump stops. Not an OSError, which the dump would report as a
    file it could not read and carry on."""


class _ChunkSink(io.RawIOBase):
    """The worker thread's end of a streamed answer: each chunk written is handed to the event
    loop's queue, waiting while :data:`_CHUNKS_AHEAD_MAX` are not yet sent."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.room = threading.Semaphore(_CHUNKS_AHEAD_MAX)
        self._loop = loop
        self._cancelled = threading.Event()
        self._dead = False

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        if self._dead:
            return len(chunk)  # the text's last flush after the reader left: dropped
        while not self.room.acquire(timeout=_CANCEL_CHECK_S):
            if self._cancelled.is_set():
                break
        if self._cancelled.is_set():
            self._dead = True
            raise _Abandoned
        self._hand_over(chunk)
        return len(chunk)

    def _hand_over(self, chunk: bytes | None) -> None:
        try:
            self._loop.call_soon_threadsafe(self.chunks.put_nowait, chunk)
        except RuntimeError:  # the event loop is closed: the node is stopping
            self._dead = True
            raise _Abandoned from None

    def finish(self) -> None:
        """Tells the event loop that no chunk follows (called once, by the worker)."""
        try:
            self._hand_over(None)
        except _Abandoned:
            pass

    def cancel(self) -> None:
        """Called on the event loop when the answer ends early: the worker stops soon."""
        self._cancelled.set()


def _dump(path: Path, kind: str, options: TextOptions, sink: _ChunkSink) -> None:
    """The worker thread: the file's text, encoded and chunked, into ``sink``."""
    text = io.TextIOWrapper(
        io.BufferedWriter(sink, _CHUNK_BYTES),
        encoding="utf-8",
        errors="backslashreplace",
        newline="\n",
    )
    try:
        write_text(path, kind, options, text)
    except _Abandoned:
        pass
    except Exception:
        # The status line went out already: the text says it ended badly, the log says why.
        log.exception("dumping %s failed", path)
        with contextlib.suppress(_Abandoned):
            text.write("\nThe dump failed: unexpected server error; see the node's log.\n")
    finally:
        with contextlib.suppress(_Abandoned):
            text.close()  # sends what is left
        sink.finish()


@contextlib.asynccontextmanager
async def dump_slot(wait_s: float = _DUMP_WAIT_S) -> AsyncIterator[None]:
    """One of the node's :data:`_DUMPS_AT_ONCE_MAX` dump slots, held for the block; 503
    SERVER_BUSY (with ``Retry-After``) when none is free within ``wait_s``."""
    loop = asyncio.get_running_loop()
    slots = _dump_slots.get(loop)
    if slots is None:
        slots = _dump_slots[loop] = asyncio.Semaphore(_DUMPS_AT_ONCE_MAX)
    try:
        await asyncio.wait_for(slots.acquire(), wait_s)
    except TimeoutError:
        raise ApiError(
            SERVER_BUSY,
            f"{_DUMPS_AT_ONCE_MAX} file dumps are running on this node; retry shortly",
            {"retry_after_s": _BUSY_RETRY_AFTER_S},
        ) from None
    try:
        yield
    finally:
        slots.release()


async def file_text(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    node.require_ready()
    found = _replica_directory(node, request)
    if isinstance(found, web.Response):
        return found
    broker_id, partition_name, directory = found
    options = text_options(request)
    name = request.match_info["name"]
    log_dir = node.replica_manager.logs.log_dir.absolute()
    located = await asyncio.to_thread(find_file, directory, log_dir, name)
    if located is None:
        # A file name is at most 255 bytes: quoted whole, unless it is no file name at all.
        shown = repr(name) if len(name) <= _NAME_QUOTED_CHARS_MAX else quoted(name)
        raise ApiError(NOT_FOUND, f"{partition_name} on broker {broker_id} has no file {shown}")
    path, entry = located
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/plain; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
    )
    if request.method == "HEAD":
        await response.prepare(request)
        return response

    async def send(chunk: bytes) -> None:
        await asyncio.wait_for(response.write(chunk), _WRITE_TIMEOUT_S)

    async with dump_slot():
        await response.prepare(request)
        try:
            if entry.kind in TOPIC_CHECKPOINT_KINDS:
                # Its entries name every partition of the broker: only the requester's show.
                text = await asyncio.to_thread(read_text, path, entry.kind, options)
                await send(visible_entries(text, _describable(request)).encode())
            else:
                await stream_text(path, entry.kind, options, send)
        except ConnectionResetError:
            pass  # the reader went away
        except TimeoutError:
            # Nothing read for _WRITE_TIMEOUT_S, or the deadline's line not read in time.
            log.info(
                "gave up a dump of %s for %s: its reader reads too slowly", path, request.remote
            )
            response.force_close()
    return response


def _describable(request: web.Request) -> Callable[[str], bool]:
    """Whether the requester may describe a topic, asked once per topic."""
    seen: dict[str, bool] = {}

    def may_see(topic: str) -> bool:
        if topic not in seen:
            seen[topic] = may_describe_topic(request, topic)
        return seen[topic]

    return may_see


async def stream_text(
    path: Path,
    kind: str,
    options: TextOptions,
    send: Callable[[bytes], Awaitable[None]],
    deadline_s: float = DUMP_DEADLINE_S,
) -> None:
    """Sends the text of the file (:func:`storage.log_files.write_text`) through ``send`` in
    UTF-8 chunks, made in a worker thread a few chunks ahead of ``send``. When ``send``
    raises (or this is cancelled), the worker stops at its next chunk; either way it has ended
    when this returns or raises. When the text is not all sent within ``deadline_s``, the
    worker stops and the text ends with :data:`DEADLINE_NOTE`'s line (TimeoutError when
    ``send`` does not take that line within :data:`_DEADLINE_NOTE_SEND_S`)."""
    loop = asyncio.get_running_loop()
    sink = _ChunkSink(loop)
    work = loop.run_in_executor(_dump_threads, _dump, path, kind, options, sink)
    ended_line = True
    try:
        async with asyncio.timeout(deadline_s) as deadline:
            while (chunk := await sink.chunks.get()) is not None:
                # Before the send: aiohttp puts a chunk in the transport before its first
                # await, so a send cut by the deadline has sent its chunk.
                ended_line = chunk.endswith(b"\n")
                await send(chunk)
                sink.room.release()
    except TimeoutError:
        if not deadline.expired():
            raise  # send's own timeout, not the deadline
    finally:
        sink.cancel()  # nothing to stop when the worker is done
        # The worker never raises (it reports its own failures). Awaited so that a dump slot
        # is free only once its thread is.
        await work
    if deadline.expired():
        # The text cut by the deadline may end mid-line: the note starts a line of its own.
        note = ("" if ended_line else "\n") + DEADLINE_NOTE.format(deadline_s=deadline_s)
        await asyncio.wait_for(send(note.encode()), _DEADLINE_NOTE_SEND_S)


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/v1/brokers/{broker}/partitions/{topic}/{partition}/files"
    router.add_get(base, list_files)
    router.add_get(base + "/{name}", file_text)
