"""Compressed record batches: the codecs (storage/compression.py), the produce check and the
topic's recompression (storage/batch_check.py), the readers (storage/batch.py), the cleaner
(storage/clean_map.py, clean_filter.py) and compression.type (storage/log_config.py)."""

from __future__ import annotations

import os
import struct
import tracemalloc
import zlib

import cramjam
import lz4.frame  # type: ignore[import-untyped]
import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder  # type: ignore[import-untyped]

from client.batches import read_all
from storage.batch import (
    ATTRIBUTES_OFFSET,
    HEADER_SIZE,
    NewRecord,
    build_batch,
    check_batch,
    compressed_batch,
    crc32c,
    decode_batch,
    decompressed_batch,
)
from storage.batch_check import check_produce_batch
from storage.clean_filter import FilterResult, filter_batch
from storage.clean_map import OffsetMap, map_batch
from storage.compression import (
    CODEC_NAMES,
    GZIP,
    LZ4,
    NONE,
    SNAPPY,
    ZSTD,
    CompressionError,
    compress,
    decompress,
)
from storage.errors import CorruptRecordError
from storage.limits import GZIP_MEMBERS_MAX
from storage.log_config import LogConfig
from storage.memory_log import MemoryLog

CODECS = [GZIP, SNAPPY, LZ4, ZSTD]
NOW_MS = 1_700_000_000_000


def records(n: int = 20, size: int = 100) -> list[NewRecord]:
    return [
        NewRecord(b"key-%d" % (i % 5), b"value %d " % i * (size // 8), NOW_MS + i, (("h", b"x"),))
        for i in range(n)
    ]


def kafka_python_batch(codec: int, values: list[bytes], keys: list[bytes] | None = None) -> bytes:
    """A batch as kafka-python builds it: its own codec code (xerial snappy, the lz4 and
    zstandard packages, the gzip module), an implementation independent of ours."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 24,
    )
    for i, value in enumerate(values):
        key = keys[i] if keys else None
        builder.append(i, timestamp=NOW_MS + i, key=key, value=value, headers=[])
    return bytes(builder.build())


def with_body(batch: bytes, body: bytes) -> bytes:
    """``batch`` with its records section replaced by ``body``, length and CRC made right."""
    data = bytearray(batch[:HEADER_SIZE] + body)
    struct.pack_into(">i", data, 8, len(data) - 12)
    struct.pack_into(">I", data, 17, crc32c(bytes(data[ATTRIBUTES_OFFSET:])))
    return bytes(data)


# -- the codecs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])
@pytest.mark.parametrize("size", [0, 1, 1000, 300_000])
def test_each_codec_round_trips(codec: int, size: int) -> None:
    # 300 KB spans several snappy (32 KiB) and lz4 (64 KiB) blocks.
    data = (os.urandom(64) * (size // 64 + 1))[:size]
    assert decompress(codec, compress(codec, data)) == data


def test_lz4_frames_are_written_as_kafkas_reader_takes_them() -> None:
    frame = compress(LZ4, b"x" * 200_000)
    flg = frame[4]
    assert frame[:4] == b"\x04\x22\x4d\x18"
    assert flg >> 6 == 1, "version 1"
    assert flg & 0x20, "independent blocks: Kafka's Lz4BlockInputStream refuses linked ones"
    assert not flg & 0x04, "no content checksum, as Kafka writes"


def test_snappy_is_written_in_xerial_framing_and_raw_snappy_is_read() -> None:
    data = b"abc" * 30_000
    framed = compress(SNAPPY, data)
    assert framed.startswith(b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01")
    raw = bytes(cramjam.snappy.compress_raw(data))  # what librdkafka sends
    assert decompress(SNAPPY, raw) == data


def test_gzip_members_back_to_back_are_read_as_javas_gzip_stream_reads_them() -> None:
    assert decompress(GZIP, compress(GZIP, b"one ") + compress(GZIP, b"two")) == b"one two"


def test_gzip_members_are_read_up_to_the_limit_and_refused_past_it() -> None:
    # Thousands of empty members cost a copy of the rest each (quadratic): a bound, not a hang.
    empty = compress(GZIP, b"")
    assert decompress(GZIP, empty * (GZIP_MEMBERS_MAX - 1) + compress(GZIP, b"x")) == b"x"
    with pytest.raises(CompressionError, match=f"more than {GZIP_MEMBERS_MAX} gzip members"):
        decompress(GZIP, empty * GZIP_MEMBERS_MAX + compress(GZIP, b"x"))
    with pytest.raises(CompressionError, match="gzip members"):
        decompress(GZIP, empty * 50_000)


def lz4_frame(data: bytes, **options: bool) -> bytes:
    """An LZ4 frame by python-lz4 (kafka-python's codec) with ``options`` (block_linked,
    checksums, store_size)."""
    frame: bytes = lz4.frame.compress(data, **options)
    return frame


def test_lz4_frames_kafkas_reader_refuses_are_refused() -> None:
    data = b"value %d " * 50 * 3000
    # Linked blocks: Kafka's Lz4BlockInputStream throws "Dependent block stream is unsupported".
    with pytest.raises(CompressionError, match="lz4 records: Dependent block stream"):
        decompress(LZ4, lz4_frame(data, block_linked=True, store_size=False))
    good = compress(LZ4, data)
    # Two frames: Kafka stops at the first's end mark, so the second's records are unseen.
    with pytest.raises(CompressionError, match="bytes follow the frame's end mark"):
        decompress(LZ4, good + compress(LZ4, b"more"))
    with pytest.raises(CompressionError, match="follow the frame's end mark"):
        decompress(LZ4, good + b"\0")
    for byte, value, why in (
        (4, good[4] | 0x01, "reserved bits"),
        (5, good[5] | 0x01, "reserved bits"),
        (4, (good[4] & 0x3F) | 0x80, "version 2 is unsupported"),
        (5, (good[5] & 0x8F) | 0x30, "block size id 3"),
    ):
        bad = bytearray(good)
        bad[byte] = value
        with pytest.raises(CompressionError, match=why):
            decompress(LZ4, bytes(bad))
    with pytest.raises(CompressionError, match="not an LZ4 frame"):
        decompress(LZ4, b"\x05\x22\x4d\x18" + good[4:])
    with pytest.raises(CompressionError, match="cut short before its end mark"):
        decompress(LZ4, good[:-4])


def test_lz4_frames_kafka_reads_are_read() -> None:
    data = os.urandom(100) * 2000
    # Block and content checksums.
    for options in (
        {"block_checksum": True},
        {"content_checksum": True},
        {"block_checksum": True, "content_checksum": True},
    ):
        assert decompress(LZ4, lz4_frame(data, block_linked=False, **options)) == data
    # A content size after the descriptor: python-lz4's default, so kafka-python's frames.
    sized = lz4_frame(data, block_linked=False, store_size=True)
    assert sized[4] & 0x08
    assert decompress(LZ4, sized) == data


@pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])
def test_a_bomb_is_refused_at_the_bound_without_allocating_past_it(codec: int) -> None:
    bomb = compress(codec, bytes(32 * 1024 * 1024))
    limit = 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(CompressionError, match=f"more than {limit} bytes"):
            decompress(codec, bomb, limit)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The output buffer (at most the bound and a byte) and copies of the small input.
    assert peak < 2 * limit + 4 * len(bomb) + 64 * 1024
    # Exactly the bound passes.
    assert len(decompress(codec, compress(codec, bytes(limit)), limit)) == limit


@pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])
def test_corrupt_or_cut_bytes_are_one_error_naming_the_codec(codec: int) -> None:
    good = compress(codec, os.urandom(500) * 40)
    name = CODEC_NAMES[codec]
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    for bad in (good[: len(good) // 2], bytes(flipped), b"", b"garbage!" * 3):
        try:
            out = decompress(codec, bad)
        except CompressionError as e:
            assert f"{name} records:" in str(e)
        else:
            # A flipped byte in a literal run may still decompress (gzip and lz4 frames carry
            # checksums, snappy and zstd as Kafka writes them none): the batch's record walk
            # or its consumer sees it; the length never changes.
            assert codec in (SNAPPY, ZSTD) and bad == bytes(flipped) and len(out) == 20_000


def test_an_unknown_codec_is_refused_by_name() -> None:
    with pytest.raises(CompressionError, match=r"unknown\(5\) records: no such codec"):
        decompress(5, b"x")


# -- batches -------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])
def test_batches_compressed_by_kafka_python_decode_and_pass_the_produce_check(codec: int) -> None:
    values = [b"value-%d " % i * 40 for i in range(200)]
    keys = [b"k%d" % i for i in range(200)]
    data = kafka_python_batch(codec, values, keys)
    header, decoded = decode_batch(data)
    assert header.compression == codec
    assert [r.value for r in decoded] == values
    assert [r.key for r in decoded] == keys
    checked = check_produce_batch(data)
    assert checked.data == data and checked.record_count == 200 and not checked.null_key


@pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])
def test_build_batch_compresses_and_decode_batch_reads_it_back(codec: int) -> None:
    batch = build_batch(records(), base_offset=7, compression=codec)
    header, decoded = decode_batch(batch)
    assert header.compression == codec and header.record_count == 20
    assert [(r.offset, r.key, r.value, r.headers) for r in decoded] == [
        (7 + i, r.key, r.value, r.headers) for i, r in enumerate(records())
    ]
    plain = decompressed_batch(batch)
    assert check_batch(plain).compression == NONE
    assert decode_batch(plain)[1] == decoded
    assert decode_batch(compressed_batch(plain, codec))[1] == decoded


@pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])
def test_a_produced_bomb_is_refused_as_corrupt(codec: int) -> None:
    # One record whose 80 MiB value of zeros compresses to a few KiB or less.
    batch = build_batch([NewRecord(None, bytes(80 * 1024 * 1024), NOW_MS)], compression=codec)
    assert len(batch) < 4 * 1024 * 1024
    with pytest.raises(CorruptRecordError, match="decompress to more than 67108864 bytes"):
        check_produce_batch(batch)


@pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])
def test_records_that_decompress_but_do_not_parse_are_corrupt(codec: int) -> None:
    batch = build_batch(records(3), compression=codec)
    body = decompress(codec, batch[HEADER_SIZE:])
    bad = with_body(batch, compress(codec, body[:-1]))  # the last record cut by a byte
    with pytest.raises(CorruptRecordError, match="record 2"):
        check_produce_batch(bad)
    with pytest.raises(CorruptRecordError):
        decode_batch(bad)
    extra = with_body(batch, compress(codec, body + b"\x00"))  # a byte after the last record
    with pytest.raises(CorruptRecordError, match="fill the batch"):
        check_produce_batch(extra)


def test_a_keyless_record_in_a_compressed_batch_is_noted() -> None:
    data = kafka_python_batch(ZSTD, [b"a", b"b"], None)
    assert check_produce_batch(data).null_key


# -- the topic's compression.type ----------------------------------------------------------------


@pytest.mark.parametrize("source", [NONE, *CODECS], ids=["none", *[CODEC_NAMES[c] for c in CODECS]])
@pytest.mark.parametrize("target", [NONE, *CODECS], ids=["none", *[CODEC_NAMES[c] for c in CODECS]])
def test_a_batch_is_recompressed_when_the_topic_names_another_codec(
    source: int, target: int
) -> None:
    produced = build_batch(
        records(), producer_id=9, producer_epoch=1, base_sequence=4, compression=source
    )
    checked = check_produce_batch(produced)
    stored = checked.recompressed(target)
    if source == target:
        assert stored is checked
    header, decoded = decode_batch(stored.stamped(100, 3))
    assert header.compression == target
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (9, 1, 4)
    assert (header.base_offset, header.partition_leader_epoch) == (100, 3)
    assert header.max_timestamp == NOW_MS + 19
    assert [(r.offset, r.key, r.value, r.headers) for r in decoded] == [
        (100 + i, r.key, r.value, r.headers) for i, r in enumerate(records())
    ]
    # What is stored passes the produce check itself (a follower or a re-read trusts it).
    assert check_produce_batch(stored.data).record_count == 20


def test_producer_keeps_the_producers_bytes() -> None:
    checked = check_produce_batch(build_batch(records(), compression=GZIP))
    assert checked.recompressed(LogConfig().codec) is checked  # the default: producer


def test_compression_type_and_levels_are_kafkas() -> None:
    config = LogConfig.from_topic_configs(
        {"compression.type": "ZSTD", "compression.zstd.level": "-5"}
    )
    assert (config.compression_type, config.codec, config.level) == ("zstd", ZSTD, -5)
    assert LogConfig.from_topic_configs({"compression.type": "uncompressed"}).codec == NONE
    assert LogConfig.from_topic_configs({"compression.type": "gzip"}).level == -1
    with pytest.raises(ValueError, match="compression.type: expected one of uncompressed"):
        LogConfig.from_topic_configs({"compression.type": "brotli"})
    with pytest.raises(ValueError, match="compression.gzip.level: expected -1 or 1..9, got 0"):
        LogConfig.from_topic_configs({"compression.gzip.level": "0"})
    with pytest.raises(ValueError, match="compression.lz4.level: must be at most 17"):
        LogConfig.from_topic_configs({"compression.lz4.level": "18"})


@pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])
def test_a_leader_built_batch_takes_the_topics_codec(codec: int) -> None:
    log = MemoryLog(LogConfig(compression_type=CODEC_NAMES[codec]))
    log.append_as_leader(records(), leader_epoch=0)
    log.append_as_leader(records(2), leader_epoch=0)
    data = log.read(0, 1 << 20)
    first, decoded = decode_batch(data)
    assert first.compression == codec and len(decoded) == 20
    assert [r.offset for r in log.read_records(0, 1 << 20)] == list(range(22))


# -- the cleaner ---------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])
def test_the_cleaner_maps_and_rebuilds_a_compressed_batch_in_its_codec(codec: int) -> None:
    older = build_batch(records(20), compression=codec)  # keys key-0..key-4, offsets 0..19
    newer = build_batch(records(5), base_offset=20, compression=codec)  # the same five keys
    offset_map = OffsetMap()
    map_batch(offset_map, newer, 0, start_offset=20)
    assert offset_map.get(b"key-3") == 23

    def clean(batch: bytes, offsets: OffsetMap, upper_bound: int) -> FilterResult:
        return filter_batch(
            batch,
            0,
            offset_map=offsets,
            now_ms=NOW_MS,
            delete_retention_ms=1000,
            last_data_offsets={},
            upper_bound_offset=upper_bound,
        )[1]

    # Every record of the older batch is superseded: it goes.
    gone = clean(older, offset_map, 25)
    assert gone.data == b"" and gone.records_kept == 0
    # The newer batch is kept whole: its own bytes.
    kept = clean(newer, offset_map, 25)
    assert kept.copied and kept.data == newer
    # A batch of which some records stay is rebuilt compressed with its codec.
    partial = OffsetMap()
    map_batch(partial, build_batch(records(3), base_offset=20), 0, start_offset=20)  # key-0..2
    result = clean(older, partial, 23)
    header, decoded = decode_batch(result.data)
    assert header.compression == codec and not result.copied
    assert {r.key for r in decoded} == {b"key-3", b"key-4"}
    assert [r.offset for r in decoded] == [i for i in range(20) if i % 5 >= 3]
    assert header.last_offset == 19


def test_the_cleaner_reports_a_compressed_batch_that_does_not_decompress() -> None:
    batch = with_body(build_batch(records(3), compression=GZIP), zlib.compress(b"not gzip"))
    with pytest.raises(CorruptRecordError, match="gzip records"):
        map_batch(OffsetMap(), batch, 0, start_offset=0)


@pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])
def test_our_python_consumer_reads_compressed_batches(codec: int) -> None:
    # client/batches.py reads a binary fetch with aiokafka's record layer (cramjam's codecs).
    batch = build_batch(records(5), base_offset=40, compression=codec)
    read = read_all("t", 0, batch, 41)
    assert [(r.offset, r.key, r.value) for r in read] == [
        (41 + i, r.key, r.value) for i, r in enumerate(records(5)[1:])
    ]
