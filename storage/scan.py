"""Reading the batches of a ``.log`` file in place: headers by position, CRCs in windows.

A scan reads the file through a :class:`FileWindow` (a few large preads, not one per batch)
and parses each batch header where it lies, so it can hop over a big batch by reading its
61-byte header only. Every problem is a :class:`CorruptRecordError` carrying the FILE position
of the batch, which the caller turns into a cut (recovery) or a storage error (reads).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import crc32c as _crc32c

from storage.batch import (
    ATTRIBUTES_OFFSET,
    HEADER_SIZE,
    BatchHeader,
    check_header,
)
from storage.errors import CorruptRecordError
from storage.limits import RECOVERY_WINDOW_BYTES, SCAN_WINDOW_BYTES


def pread_exactly(fd: int, pos: int, length: int) -> bytes:
    """``length`` bytes at ``pos`` (fewer only at the end of the file)."""
    data = os.pread(fd, length, pos)
    if len(data) == length or not data:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        more = os.pread(fd, length - got, pos + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class FileWindow:
    """A cached window of a file, so a scan reads it in few large preads."""

    def __init__(self, fd: int, file_size: int, window_bytes: int = SCAN_WINDOW_BYTES) -> None:
        self._fd = fd
        self._file_size = file_size
        self._window_bytes = window_bytes
        self._buf = b""
        self._start = 0

    def get(self, pos: int, length: int) -> tuple[bytes, int]:
        """(buffer, offset in it) holding the file's bytes [pos, pos + length); raises
        :class:`CorruptRecordError` if the file ends first."""
        start = self._start
        if start <= pos and pos + length <= start + len(self._buf):
            return self._buf, pos - start
        want = min(max(length, self._window_bytes), self._file_size - pos)
        buf = pread_exactly(self._fd, pos, want)
        if len(buf) < length:
            raise CorruptRecordError(f"expected {length} bytes, the file has {len(buf)}", pos)
        self._buf = buf
        self._start = pos
        return buf, 0


def parse_header(buf: bytes, off: int, pos: int, file_end: int) -> BatchHeader:
    """The batch header at ``buf[off:]``, which is file position ``pos``: checks everything
    :func:`storage.batch.read_header` does (magic, length, counts) and that the batch ends
    within ``file_end``, but not the CRC."""
    return check_header(buf, off, position=pos, room=file_end - pos, end="the end of the file")


def header_at(window: FileWindow, pos: int, file_end: int) -> BatchHeader:
    """The header of the batch at file position ``pos``."""
    if file_end - pos < HEADER_SIZE:
        raise CorruptRecordError(
            f"expected a {HEADER_SIZE}-byte batch header, found {file_end - pos} bytes", pos
        )
    buf, off = window.get(pos, HEADER_SIZE)
    return parse_header(buf, off, pos, file_end)


def iter_headers(fd: int, start: int, file_end: int) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each batch from ``start`` (a batch boundary) to ``file_end``,
    headers only; raises :class:`CorruptRecordError` at the first that does not parse."""
    window = FileWindow(fd, file_end)
    pos = start
    while pos < file_end:
        header = header_at(window, pos, file_end)
        yield pos, header
        pos += header.size


def check_crc_at(fd: int, window: FileWindow, pos: int, header: BatchHeader) -> None:
    """Checks the CRC of the batch at ``pos``; a batch larger than the recovery window is
    checked in pieces (the CRC is incremental), so memory stays bounded."""
    if header.size <= RECOVERY_WINDOW_BYTES:
        buf, off = window.get(pos, header.size)
        with memoryview(buf) as view:
            actual = int(_crc32c.crc32c(view[off + ATTRIBUTES_OFFSET : off + header.size]))
    else:
        actual = 0
        cursor = pos + ATTRIBUTES_OFFSET
        end = pos + header.size
        while cursor < end:
            piece = pread_exactly(fd, cursor, min(RECOVERY_WINDOW_BYTES, end - cursor))
            if not piece:
                raise CorruptRecordError("the batch runs past the end of the file", pos)
            actual = int(_crc32c.crc32c(piece, actual))
            cursor += len(piece)
    if actual != header.crc:
        raise CorruptRecordError(
            f"expected CRC-32C {header.crc:#010x}, computed {actual:#010x}", pos
        )
