"""The codecs of a record batch's records section: Kafka's gzip, snappy, lz4 and zstd.

A v2 batch names its codec in attributes bits 0-2 (:mod:`storage.batch`): 0 none, 1 gzip,
2 snappy, 3 lz4, 4 zstd (Kafka's ``CompressionType`` ids). Only the records section, the bytes
after the 61-byte header, is compressed; the header stays readable and the CRC covers the
compressed bytes. The formats, as Kafka's Java client writes and reads them:

- gzip: one RFC 1952 gzip stream (``GzipOutputStream``); read as Java's ``GZIPInputStream``
  reads, members back to back, at most ``GZIP_MEMBERS_MAX`` of them (:mod:`storage.limits`).
- snappy: xerial's ``SnappyOutputStream`` framing, which Java writes::

      magic              8 bytes  0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00
      version            int32    1
      compatible         int32    1
      then, per block:   int32 length of the block, big-endian, and that many bytes of raw
                         snappy (each block holds up to 32 KiB of input)

  librdkafka and other clients send raw snappy instead (a varint of the uncompressed length,
  then the compressed stream); a body without the magic is read as raw, as xerial's
  ``SnappyInputStream`` does.
- lz4: the LZ4 frame format (``Lz4BlockOutputStream``): version 1, independent 64 KiB
  blocks, no content checksum. Kafka's reader refuses linked blocks, so we never write them.
- zstd: zstd frames (``ZstdOutputStreamNoFinalizer`` through zstd-jni).

Levels are Kafka's (``compression.gzip.level`` -1 or 1..9, ``compression.lz4.level`` 1..17,
``compression.zstd.level`` -131072..22) with its defaults.

Reading is bounded (:func:`decompress`): a batch of a few KiB can decompress to gigabytes (a
bomb), so no codec is asked for more than the caller's bound, and the output buffer never
grows past it: gzip through zlib's ``max_length``; lz4 and zstd into a buffer that starts near
the compressed size and doubles up to the bound (the codec stops when the buffer is full);
snappy blocks carry their uncompressed length up front, checked before a byte is written.
Every failure is one :class:`CompressionError` naming the codec: a
:class:`~storage.errors.CorruptRecordError`, so each batch reader's one error still holds.
"""

from __future__ import annotations

import struct
import zlib

import cramjam

from storage.errors import CorruptRecordError
from storage.limits import DECOMPRESS_START_BYTES, DECOMPRESSED_BATCH_BYTES_MAX, GZIP_MEMBERS_MAX

NONE = 0
GZIP = 1
SNAPPY = 2
LZ4 = 3
ZSTD = 4

CODEC_NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}
CODEC_IDS = {name: codec for codec, name in CODEC_NAMES.items()}

# Kafka's level ranges and defaults (GzipCompression, Lz4Compression, ZstdCompression).
GZIP_LEVEL_DEFAULT = -1  # Deflater.DEFAULT_COMPRESSION: zlib's 6
GZIP_LEVEL_MIN, GZIP_LEVEL_MAX = 1, 9
LZ4_LEVEL_DEFAULT = 9
LZ4_LEVEL_MIN, LZ4_LEVEL_MAX = 1, 17
ZSTD_LEVEL_DEFAULT = 3
ZSTD_LEVEL_MIN, ZSTD_LEVEL_MAX = -131072, 22
DEFAULT_LEVELS = {GZIP: GZIP_LEVEL_DEFAULT, LZ4: LZ4_LEVEL_DEFAULT, ZSTD: ZSTD_LEVEL_DEFAULT}

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(">8sii")  # magic, version, compatible version
_XERIAL_VERSION = 1
_XERIAL_BLOCK_LENGTH = struct.Struct(">i")
# xerial's SnappyOutputStream.DEFAULT_BLOCK_SIZE: the input one block holds.
_XERIAL_BLOCK_BYTES = 32 * 1024
# gzip wrapping for zlib (RFC 1952 header and trailer).
_GZIP_WBITS = 31
# The LZ4 frame format's header, as Kafka's Lz4BlockInputStream reads it: a little-endian
# magic, then the FLG byte (bits 0-1 reserved, 2 content checksum, 3 content size, 4 block
# checksum, 5 block independence, 6-7 version) and the BD byte (bits 0-3 and 7 reserved, 4-6 the
# block size id: 4..7 for 64 KiB..4 MiB), then an optional 8-byte content size and a one-byte
# descriptor checksum. Blocks: a little-endian int32 size (bit 31: stored uncompressed; 0: the
# end mark) and that many bytes, each followed by a 4-byte checksum if FLG says so; after the
# end mark a 4-byte content checksum if FLG says so.
_LZ4_INT = struct.Struct("<I")
_LZ4_MAGIC = 0x184D2204
_LZ4_DESCRIPTOR_END = 7  # magic, FLG, BD, descriptor checksum
_LZ4_VERSION = 1
_LZ4_FLG_RESERVED = 0x03
_LZ4_FLG_CONTENT_CHECKSUM = 0x04
_LZ4_FLG_CONTENT_SIZE = 0x08
_LZ4_FLG_BLOCK_CHECKSUM = 0x10
_LZ4_FLG_INDEPENDENT = 0x20
_LZ4_BD_RESERVED = 0x8F
_LZ4_UNCOMPRESSED_BLOCK = 0x80000000
# cramjam's message when the output buffer is full before the codec is done.
_BUFFER_FULL = "failed to write whole buffer"


class CompressionError(CorruptRecordError):
    """A records section that does not decompress with its batch's codec, or decompresses to
    more than the bound: the message names the codec."""

    def __init__(self, codec: int, message: str) -> None:
        self.codec = codec
        super().__init__(f"{codec_name(codec)} records: {message}")


def codec_name(codec: int) -> str:
    """Kafka's name of a codec id (``unknown(n)`` for an id Kafka has none for)."""
    return CODEC_NAMES.get(codec, f"unknown({codec})")


def check_level(codec: int, level: int) -> str | None:
    """Why ``level`` is not a level Kafka takes for ``codec``, or None if it is."""
    if codec == GZIP:
        if level == GZIP_LEVEL_DEFAULT or GZIP_LEVEL_MIN <= level <= GZIP_LEVEL_MAX:
            return None
        return f"expected -1 or {GZIP_LEVEL_MIN}..{GZIP_LEVEL_MAX}, got {level}"
    if codec == LZ4:
        low, high = LZ4_LEVEL_MIN, LZ4_LEVEL_MAX
    elif codec == ZSTD:
        low, high = ZSTD_LEVEL_MIN, ZSTD_LEVEL_MAX
    else:
        return None if level == -1 else f"{codec_name(codec)} has no levels"
    if low <= level <= high:
        return None
    return f"expected {low}..{high}, got {level}"


# ---------------------------------------------------------------------------------------------
# Compressing
# ---------------------------------------------------------------------------------------------


def compress(codec: int, data: bytes | bytearray | memoryview, level: int | None = None) -> bytes:
    """``data`` compressed as Kafka's Java client writes ``codec`` (module docstring), at
    ``level`` (None: Kafka's default). A programmer's error for ``NONE`` or an unknown id."""
    assert codec in CODEC_NAMES and codec != NONE, f"no codec {codec} to compress with"
    if level is None:
        level = DEFAULT_LEVELS.get(codec, -1)
    assert check_level(codec, level) is None, check_level(codec, level)
    if codec == GZIP:
        packer = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
        return packer.compress(data) + packer.flush()
    if codec == SNAPPY:
        parts = [_XERIAL_HEADER.pack(_XERIAL_MAGIC, _XERIAL_VERSION, _XERIAL_VERSION)]
        view = memoryview(data)
        for start in range(0, len(view), _XERIAL_BLOCK_BYTES):
            block = bytes(cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK_BYTES]))
            parts.append(_XERIAL_BLOCK_LENGTH.pack(len(block)))
            parts.append(block)
        return b"".join(parts)
    if codec == LZ4:
        frame = cramjam.lz4.Compressor(level=level, content_checksum=False, block_linked=False)
        frame.compress(bytes(data))
        return bytes(frame.finish())
    return bytes(cramjam.zstd.compress(bytes(data), level=level))


# ---------------------------------------------------------------------------------------------
# Decompressing, bounded
# ---------------------------------------------------------------------------------------------


def decompress(
    codec: int,
    data: bytes | bytearray | memoryview,
    limit_bytes: int = DECOMPRESSED_BATCH_BYTES_MAX,
) -> bytes:
    """``data`` decompressed with ``codec``, never more than ``limit_bytes`` of it (module
    docstring). Raises :class:`CompressionError` naming the codec for an unknown codec, bytes
    that do not decompress, or output beyond ``limit_bytes`` (nothing past the bound is
    allocated)."""
    if codec == GZIP:
        return _gunzip(data, limit_bytes)
    if codec == SNAPPY:
        return _unsnappy(data, limit_bytes)
    if codec == LZ4:
        _check_lz4_frame(data)
        return _into(codec, cramjam.lz4.decompress_into, data, limit_bytes)
    if codec == ZSTD:
        return _into(codec, cramjam.zstd.decompress_into, data, limit_bytes)
    raise CompressionError(codec, "no such codec (Kafka's are 1 gzip, 2 snappy, 3 lz4, 4 zstd)")


def _too_large(codec: int, limit_bytes: int) -> CompressionError:
    return CompressionError(
        codec, f"the records decompress to more than {limit_bytes} bytes, the bound a batch has"
    )


def _gunzip(data: bytes | bytearray | memoryview, limit_bytes: int) -> bytes:
    out: list[bytes] = []
    left = limit_bytes
    rest = bytes(data)
    try:
        for _member in range(GZIP_MEMBERS_MAX):
            unpacker = zlib.decompressobj(_GZIP_WBITS)
            # One byte past the bound tells "more than the bound" from "exactly the bound".
            out.append(unpacker.decompress(rest, left + 1))
            left -= len(out[-1])
            if left < 0 or unpacker.unconsumed_tail:
                raise _too_large(GZIP, limit_bytes)
            if not unpacker.eof:
                raise CompressionError(GZIP, "the gzip stream is cut short")
            rest = unpacker.unused_data
            if not rest:
                return b"".join(out)
    except zlib.error as e:
        raise CompressionError(GZIP, f"not a valid gzip stream ({e})") from None
    raise CompressionError(
        GZIP, f"more than {GZIP_MEMBERS_MAX} gzip members back to back (Kafka writes one)"
    )


def _check_lz4_frame(data: bytes | bytearray | memoryview) -> None:
    """Refuses the LZ4 frames Kafka's reader (``Lz4BlockInputStream``) refuses or reads
    otherwise than the frame format does: a magic other than the frame's, a descriptor with
    reserved bits set, a version other than 1, linked blocks ("Dependent block stream is
    unsupported"), a block size id outside 4..7 or a block larger than it; and anything after
    the first frame's end mark (Kafka stops reading there, so a second frame's records would
    be records no Java client sees). The descriptor's checksum is cramjam's to check."""
    size = len(data)
    if size < _LZ4_DESCRIPTOR_END or _LZ4_INT.unpack_from(data, 0)[0] != _LZ4_MAGIC:
        raise CompressionError(LZ4, "not an LZ4 frame (Kafka's reader: no LZ4 frame magic)")
    flg, bd = data[4], data[5]
    if flg & _LZ4_FLG_RESERVED or bd & _LZ4_BD_RESERVED:
        raise CompressionError(LZ4, "the frame descriptor's reserved bits are not 0")
    if flg >> 6 != _LZ4_VERSION:
        raise CompressionError(LZ4, f"frame version {flg >> 6} is unsupported (Kafka reads 1)")
    if not flg & _LZ4_FLG_INDEPENDENT:
        raise CompressionError(LZ4, "Dependent block stream is unsupported (Kafka's words)")
    block_id = (bd >> 4) & 7
    if not 4 <= block_id <= 7:
        raise CompressionError(LZ4, f"block size id {block_id} is not 4..7")
    max_block = 1 << (2 * block_id + 8)
    pos = _LZ4_DESCRIPTOR_END + (8 if flg & _LZ4_FLG_CONTENT_SIZE else 0)
    block_checksum = 4 if flg & _LZ4_FLG_BLOCK_CHECKSUM else 0
    while True:
        if pos + 4 > size:
            raise CompressionError(LZ4, "the frame is cut short before its end mark")
        (block,) = _LZ4_INT.unpack_from(data, pos)
        block &= ~_LZ4_UNCOMPRESSED_BLOCK
        pos += 4
        if block == 0:
            break
        if block > max_block:
            raise CompressionError(LZ4, f"a block of {block} bytes exceeds its max {max_block}")
        pos += block + block_checksum
    pos += 4 if flg & _LZ4_FLG_CONTENT_CHECKSUM else 0
    if pos > size:
        raise CompressionError(LZ4, "the frame's content checksum is cut short")
    if pos < size:
        raise CompressionError(
            LZ4,
            f"{size - pos} bytes follow the frame's end mark (Kafka reads one frame, not these)",
        )


def _into(
    codec: int,
    decompress_into: object,
    data: bytes | bytearray | memoryview,
    limit_bytes: int,
) -> bytes:
    """lz4 and zstd through cramjam's ``decompress_into``, which stops when its output buffer is
    full: the buffer starts at a few times the input and doubles up to ``limit_bytes + 1``
    (one byte past the bound tells "more" from "exactly the bound")."""
    assert callable(decompress_into)
    data = bytes(data)
    size = min(max(DECOMPRESS_START_BYTES, 8 * len(data)), limit_bytes + 1)
    while True:
        buffer = bytearray(size)
        try:
            written = int(decompress_into(data, buffer))
        except cramjam.DecompressionError as e:
            if _BUFFER_FULL not in str(e):
                raise CompressionError(codec, f"the bytes do not decompress ({e})") from None
            written = size
        if written < size:
            del buffer[written:]
            return bytes(buffer)
        if size > limit_bytes:
            raise _too_large(codec, limit_bytes)
        size = min(size * 2, limit_bytes + 1)


def _unsnappy(data: bytes | bytearray | memoryview, limit_bytes: int) -> bytes:
    data = bytes(data)
    if not data.startswith(_XERIAL_MAGIC):
        return _raw_snappy(data, limit_bytes)
    if len(data) < _XERIAL_HEADER.size:
        raise CompressionError(SNAPPY, "the xerial snappy header is cut short")
    out: list[bytes] = []
    left = limit_bytes
    pos = _XERIAL_HEADER.size
    while pos < len(data):
        if pos + _XERIAL_BLOCK_LENGTH.size > len(data):
            raise CompressionError(SNAPPY, f"a block length is cut short at byte {pos}")
        (length,) = _XERIAL_BLOCK_LENGTH.unpack_from(data, pos)
        pos += _XERIAL_BLOCK_LENGTH.size
        if length < 0 or pos + length > len(data):
            raise CompressionError(
                SNAPPY, f"a block of {length} bytes at byte {pos} runs past the records"
            )
        out.append(_raw_snappy(data[pos : pos + length], left, limit_bytes))
        left -= len(out[-1])
        pos += length
    return b"".join(out)


def _raw_snappy(block: bytes, left_bytes: int, limit_bytes: int | None = None) -> bytes:
    """One raw snappy stream; its uncompressed length (a varint up front) is checked against
    ``left_bytes`` before anything is allocated."""
    try:
        length = int(cramjam.snappy.decompress_raw_len(block))
    except cramjam.DecompressionError as e:
        raise CompressionError(SNAPPY, f"not a raw snappy stream ({e})") from None
    if length > left_bytes:
        raise _too_large(SNAPPY, left_bytes if limit_bytes is None else limit_bytes)
    buffer = bytearray(length)
    try:
        written = int(cramjam.snappy.decompress_raw_into(block, buffer))
    except cramjam.DecompressionError as e:
        raise CompressionError(SNAPPY, f"the bytes do not decompress ({e})") from None
    if written != length:
        raise CompressionError(
            SNAPPY, f"the stream declares {length} bytes and decompresses to {written}"
        )
    return bytes(buffer)
