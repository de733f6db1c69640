"""The producer's compression.type: Kafka's names, levels and messages; batches compressed
with storage/compression.py that the broker's own reader (storage/batch.py) and our consumer
read back; the sender against the in-memory network twin (never a request over
max.request.size, even when a codec makes incompressible records larger); the console
producer's --compression-codec and the perf test's --producer-props."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from client import limits
from client.accumulator import RECORD_BATCH_OVERHEAD, payload_size, record_size
from client.batches import build, compressed, read_all
from client.producer import AsyncProducer, ProducerConfig, RecordMetadata
from client.producer_config import ConfigException
from client.protocol import RECORD_TOO_LARGE, ApiError
from client.tools import common, console_producer, producer_perf_test
from storage import compression
from storage.batch import check_batch, decode_batch, decompressed_batch, read_header
from tests.unit.test_producer_sender import Network, ok, producer_fields, run, values

BS = {"bootstrap.servers": "127.0.0.1:9092"}
CODECS = ["gzip", "snappy", "lz4", "zstd"]
TIMESTAMP = 1_700_000_000_000


def records(count: int, size: int = 40) -> list[tuple[Any, ...]]:
    """Records as the sender's batches hold them: (key, value, headers, size, timestamp)."""
    return [
        (
            None if i % 3 == 0 else b"key-%d" % i,
            (b"reading %d " % i * size)[:size] if i % 5 else None,
            [("source", b"sensor-%d" % (i % 4))] if i % 2 else [],
            0,
            TIMESTAMP + i,
        )
        for i in range(count)
    ]


def build_records(recs: list[tuple[Any, ...]], **kw: Any) -> bytes:
    return build(recs, 7, 2, 40, key=0, value=1, headers=2, timestamp=4, **kw)


# -- the config ------------------------------------------------------------------------------


def test_compression_type_is_none_by_default_with_kafkas_default_levels() -> None:
    config = ProducerConfig.from_properties(BS)
    assert (config.compression_type, config.codec, config.compression_level) == ("none", 0, None)
    assert (
        config.compression_gzip_level,
        config.compression_lz4_level,
        config.compression_zstd_level,
    ) == (-1, 9, 3)


@pytest.mark.parametrize("name", ["none", *CODECS, " zstd "])
def test_each_of_kafkas_compression_types_names_its_codec(name: str) -> None:
    config = ProducerConfig.from_properties({**BS, "compression.type": name})
    assert config.codec == compression.CODEC_IDS[name.strip()]


def test_the_level_is_the_one_of_the_chosen_codec() -> None:
    levels = {
        "compression.gzip.level": "1",
        "compression.lz4.level": "17",
        "compression.zstd.level": "-5",
    }
    expected = {"gzip": 1, "lz4": 17, "zstd": -5, "snappy": None, "none": None}
    for name, level in expected.items():
        config = ProducerConfig.from_properties({**BS, **levels, "compression.type": name})
        assert config.compression_level == level, name


@pytest.mark.parametrize(
    "props, message",
    [
        (
            {"compression.type": "GZIP"},
            "Invalid value GZIP for configuration compression.type: String must be one of: "
            "none, gzip, snappy, lz4, zstd",
        ),
        ({"compression.type": "brotli"}, "Invalid value brotli for configuration compression"),
        (
            {"compression.gzip.level": "0"},
            "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 "
            "and 9 or equal to -1",
        ),
        (
            {"compression.gzip.level": "10"},
            "compression.gzip.level: Value must be between 1 and 9 or equal to -1",
        ),
        (
            {"compression.lz4.level": "18"},
            "Invalid value 18 for configuration compression.lz4.level: Value must be no more "
            "than 17",
        ),
        (
            {"compression.lz4.level": "0"},
            "compression.lz4.level: Value must be at least 1",
        ),
        (
            {"compression.zstd.level": "23"},
            "compression.zstd.level: Value must be no more than 22",
        ),
        (
            {"compression.zstd.level": "-131073"},
            "compression.zstd.level: Value must be at least -131072",
        ),
        ({"compression.zstd.level": "fast"}, "compression.zstd.level: Not a number of type INT"),
    ],
)
def test_a_compression_setting_kafka_refuses_is_refused_with_kafkas_message(
    props: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigException) as caught:
        ProducerConfig.from_properties({**BS, **props})
    assert message in str(caught.value)


def test_an_override_by_field_name_is_checked_as_the_property_is() -> None:
    with pytest.raises(ConfigException, match="compression.type: String must be one of"):
        ProducerConfig.from_properties(BS, compression_type="brotli")
    with pytest.raises(ConfigException, match="compression.lz4.level: Value must be at least 1"):
        ProducerConfig.from_properties(BS, compression_lz4_level=0)


# -- the batches -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CODECS)
def test_a_compressed_batch_holds_the_same_records_for_the_brokers_reader(name: str) -> None:
    recs = records(200)
    plain = build_records(recs)
    packed = build_records(recs, codec=compression.CODEC_IDS[name])
    header = check_batch(packed)  # length, magic and the CRC-32C over the compressed bytes
    assert header.compression == compression.CODEC_IDS[name]
    assert header.size == len(packed) < len(plain)
    before = read_header(plain)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 2, 40)
    assert (header.record_count, header.last_offset_delta) == (200, 199)
    assert (header.base_timestamp, header.max_timestamp) == (
        before.base_timestamp,
        before.max_timestamp,
    )
    assert decode_batch(packed)[1] == decode_batch(plain)[1]
    # The broker's own decompression gives back the uncompressed batch, byte for byte.
    assert decompressed_batch(packed) == plain


@pytest.mark.parametrize("name", CODECS)
def test_our_consumer_reads_the_producers_compressed_batch(name: str) -> None:
    recs = records(50)
    packed = build_records(recs, codec=compression.CODEC_IDS[name])
    read = read_all("t", 0, packed, 0)
    assert [(r.key, r.value, r.timestamp, r.headers) for r in read] == [
        (key, value, timestamp, tuple(headers)) for key, value, headers, _, timestamp in recs
    ]


def test_the_level_given_is_the_level_the_records_are_compressed_at() -> None:
    plain = build_records(records(300))
    section = plain[RECORD_BATCH_OVERHEAD:]
    for codec, level in ((compression.GZIP, 1), (compression.LZ4, 1), (compression.ZSTD, 19)):
        packed = compressed(plain, codec, level)
        assert packed[RECORD_BATCH_OVERHEAD:] == compression.compress(codec, section, level)
        default = compressed(plain, codec)
        assert default[RECORD_BATCH_OVERHEAD:] == compression.compress(codec, section)


# -- the sender ------------------------------------------------------------------------------


async def send_values(producer: AsyncProducer, sent: list[bytes]) -> list[RecordMetadata]:
    futures = [await producer.send("t", v, partition=0) for v in sent]
    await producer.flush()
    return [f.result() for f in futures]


@pytest.mark.parametrize("name", CODECS)
def test_the_producer_sends_its_batch_compressed_with_its_producer_fields(name: str) -> None:
    network = Network([ok(10)])
    sent = [b"temperature %d" % i for i in range(30)]
    results = run(network, lambda p: send_values(p, sent), compression_type=name)
    assert [r.offset for r in results] == list(range(10, 40))
    ((_url, _headers, body),) = network.produced
    assert read_header(body).compression == compression.CODEC_IDS[name]
    assert producer_fields(body) == (7, 0, 0)
    assert values(body) == sent


def test_a_large_batch_is_compressed_in_a_thread_into_the_same_bytes() -> None:
    # Above COMPRESS_IN_THREAD_BYTES_MIN the sender builds in a worker thread.
    count = 2 * limits.COMPRESS_IN_THREAD_BYTES_MIN // 100
    sent = [b"%05d" % i + b"x" * 95 for i in range(count)]
    network = Network([ok(0)])
    run(
        network,
        lambda p: send_values(p, sent),
        compression_type="lz4",
        linger_ms=60_000,
        batch_size=1 << 20,
    )
    ((_url, _headers, body),) = network.produced
    assert read_header(body).compression == compression.LZ4
    assert values(body) == sent
    timestamps = [r.timestamp for r in read_all("t", 0, body, 0)]
    again = build(
        [(None, v, [], 0, t) for v, t in zip(sent, timestamps, strict=True)],
        7,
        0,
        0,
        key=0,
        value=1,
        headers=2,
        timestamp=4,
        codec=compression.LZ4,
    )
    assert body == again


def test_a_batch_compression_made_larger_than_max_request_size_is_split_not_sent() -> None:
    # Random bytes do not compress: gzip's framing makes the batch about 20 bytes larger than
    # the uncompressed one, which the accumulator filled up to max.request.size.
    sent = [os.urandom(300) for _ in range(10)]
    limit = RECORD_BATCH_OVERHEAD + sum(
        record_size(i, 0, payload_size(None, 300, ())) for i in range(10)
    )
    network = Network([])

    async def body(producer: AsyncProducer) -> list[RecordMetadata]:
        # One timestamp for all: the records' sizes are the ones counted above.
        futures = [await producer.send("t", v, partition=0, timestamp_ms=TIMESTAMP) for v in sent]
        await producer.flush()
        return [f.result() for f in futures]

    results = run(
        network,
        body,
        compression_type="gzip",
        max_request_size=limit,
        linger_ms=60_000,
        batch_size=1 << 20,
    )
    assert len(results) == 10
    assert all(len(b) <= limit for _u, _h, b in network.produced), "nothing over the limit"
    assert len(network.produced) >= 2
    assert [v for _u, _h, b in network.produced for v in values(b)] == sent, "in order, once"
    counts = [len(values(b)) for _u, _h, b in network.produced]
    sequences = [producer_fields(b)[2] for _u, _h, b in network.produced]
    assert sequences == [sum(counts[:i]) for i in range(len(counts))]
    assert all(read_header(b).compression == compression.GZIP for _u, _h, b in network.produced)


def test_a_single_record_compression_made_too_large_fails_with_record_too_large() -> None:
    value = os.urandom(500)
    limit = RECORD_BATCH_OVERHEAD + record_size(0, 0, payload_size(None, len(value), ()))
    network = Network([])

    async def body(producer: AsyncProducer) -> BaseException | None:
        future = await producer.send("t", value, partition=0)
        await asyncio.wait_for(producer.flush(), 10)
        return future.exception()

    failure = run(network, body, compression_type="zstd", max_request_size=limit)
    assert isinstance(failure, ApiError) and failure.kind is RECORD_TOO_LARGE
    assert "compressed with zstd" in failure.message
    assert "max.request.size" in failure.message
    assert network.produced == []


# -- the tools -------------------------------------------------------------------------------

CONSOLE = ["--bootstrap-server", "127.0.0.1:9092", "--topic", "news"]


def console(*argv: str) -> ProducerConfig:
    return console_producer.parse_command([*CONSOLE, *argv]).producer_config()


def test_console_compression_codec_without_a_value_is_gzip_as_in_kafka() -> None:
    assert console("--compression-codec").compression_type == "gzip"
    assert console("--compression-codec", "--sync").compression_type == "gzip"
    assert console("--compression-codec=").compression_type == "gzip"


@pytest.mark.parametrize("name", ["none", *CODECS])
def test_console_compression_codec_names_the_producers_compression_type(name: str) -> None:
    assert console("--compression-codec", name).compression_type == name


def test_console_compression_comes_from_the_flag_then_producer_property_then_none() -> None:
    assert console().compression_type == "none"
    prop = ("--producer-property", "compression.type=zstd")
    assert console(*prop).compression_type == "zstd"
    assert console(*prop, "--compression-codec", "lz4").compression_type == "lz4"
    assert console(*prop, "--producer-property", "compression.zstd.level=7").compression_level == 7


def test_console_refuses_a_codec_kafka_has_not_with_kafkas_message() -> None:
    with pytest.raises(common.UsageError) as caught:
        console("--compression-codec", "brotli")
    assert str(caught.value) == (
        "Invalid value brotli for configuration compression.type: String must be one of: "
        "none, gzip, snappy, lz4, zstd"
    )


def test_perf_test_takes_compression_type_through_producer_props() -> None:
    cmd = producer_perf_test.parse_command(
        [
            "--topic",
            "t",
            "--num-records",
            "10",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            "bootstrap.servers=127.0.0.1:9092",
            "compression.type=snappy",
        ]
    )
    assert cmd.config.codec == compression.SNAPPY
    with pytest.raises(common.UsageError, match="compression.type: String must be one of"):
        producer_perf_test.parse_command(
            [
                "--topic",
                "t",
                "--num-records",
                "10",
                "--record-size",
                "100",
                "--throughput",
                "-1",
                "--producer-props",
                "bootstrap.servers=127.0.0.1:9092",
                "compression.type=Snappy",
            ]
        )
