"""Compressed record batches with Kafka's own clients (issue 18): librdkafka (confluent-kafka)
produces gzip, snappy, lz4 and zstd batches; librdkafka, kafka-python and the HTTP API read
them back; a topic's compression.type rewrites a batch in its codec; the cleaner compacts a
log of compressed batches; a decompression bomb is refused and nothing stored.

One node with a KAFKA listener serves the module (its cleaner looks every 200 ms); each test
uses topics of its own."""

from __future__ import annotations

import http.client as http_client
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from kafka import KafkaConsumer
from kafka import TopicPartition as KpPartition

from client.protocol import BATCH_MEDIA_TYPE
from scripts.node_process import NodeProcess, free_port_run, http, wait_until
from storage.batch import NewRecord, build_batch, decode_batch, iter_batches
from storage.compression import CODEC_IDS
from tests.integration.compaction_helpers import active_base, wait_cleaned_up_to_active
from tests.integration.kafka_helpers import (
    Record,
    consume_assigned,
    records_over_http,
    stored_codecs,
)
from tests.integration.test_cluster import create_topic

DEADLINE_S = 60.0
CODECS = ["gzip", "snappy", "lz4", "zstd"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    handle = NodeProcess(
        tmp_path_factory.mktemp("compression"), extra_properties={"log.cleaner.backoff.ms": "200"}
    )
    handle.format()  # writes the properties file the listener line is added to
    handle.give_kafka_listener(free_port_run(1))
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def produce(
    node: NodeProcess, topic: str, codec: str, records: list[tuple[bytes, bytes]], rounds: int = 1
) -> list[int]:
    """librdkafka sends ``records`` with compression.type ``codec`` (in ``rounds`` flushes, a
    batch or more each); returns the offsets the broker gave, in order."""
    producer = Producer(
        {
            "bootstrap.servers": node.kafka_address,
            "compression.type": codec,
            "linger.ms": 20,
            "acks": "all",
        }
    )
    offsets: list[int] = []
    errors: list[Any] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            offsets.append(msg.offset())

    step = max(1, len(records) // rounds)
    for start in range(0, len(records), step):
        for key, value in records[start : start + step]:
            producer.produce(topic, key=key, value=value, partition=0, on_delivery=delivered)
        assert producer.flush(DEADLINE_S) == 0
    assert not errors, errors
    assert len(offsets) == len(records)
    return offsets


def consume_kafka_python(node: NodeProcess, topic: str, count: int) -> list[Record]:
    consumer = KafkaConsumer(bootstrap_servers=node.kafka_address, enable_auto_commit=False)
    got: list[Record] = []
    try:
        partition = KpPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                got += [(r.offset, r.key, r.value) for r in records]
    finally:
        consumer.close()
    return got


def keyed(count: int, keys: int = 10) -> list[tuple[bytes, bytes]]:
    # Text that compresses (librdkafka stores a batch uncompressed when it would not shrink).
    return [
        (b"key-%d" % (i % keys), b"value %d of a compressible record " % i * 4)
        for i in range(count)
    ]


@pytest.mark.parametrize("codec", CODECS)
def test_librdkafka_compressed_batches_read_back_in_every_client(
    node: NodeProcess, codec: str
) -> None:
    topic = f"comp-{codec}"
    create_topic(node, topic, partitions=1)
    sent = keyed(300)
    offsets = produce(node, topic, codec, sent, rounds=3)
    expected = [(o, k, v) for o, (k, v) in zip(offsets, sent, strict=True)]
    # Stored as the producer sent them (compression.type=producer, the default).
    codecs = stored_codecs(node, topic)
    assert codecs and set(codecs) == {CODEC_IDS[codec]}
    assert consume_assigned(node.kafka_address, topic, 300) == expected
    assert consume_kafka_python(node, topic, 300) == expected
    assert records_over_http(node, topic) == expected


def test_a_zstd_topic_stores_a_gzip_producers_batches_as_zstd(node: NodeProcess) -> None:
    topic = "comp-to-zstd"
    create_topic(node, topic, partitions=1, configs={"compression.type": "zstd"})
    sent = keyed(200)
    offsets = produce(node, topic, "gzip", sent, rounds=2)
    codecs = stored_codecs(node, topic)
    assert codecs and set(codecs) == {CODEC_IDS["zstd"]}
    expected = [(o, k, v) for o, (k, v) in zip(offsets, sent, strict=True)]
    assert consume_assigned(node.kafka_address, topic, 200) == expected
    assert consume_kafka_python(node, topic, 200) == expected


def test_an_uncompressed_topic_stores_compressed_batches_uncompressed(node: NodeProcess) -> None:
    topic = "comp-to-none"
    create_topic(node, topic, partitions=1, configs={"compression.type": "uncompressed"})
    sent = keyed(50)
    offsets = produce(node, topic, "lz4", sent)
    assert set(stored_codecs(node, topic)) == {0}
    assert consume_assigned(node.kafka_address, topic, 50) == [
        (o, k, v) for o, (k, v) in zip(offsets, sent, strict=True)
    ]


def test_json_produce_to_a_snappy_topic_is_stored_as_snappy(node: NodeProcess) -> None:
    topic = "comp-json-snappy"
    create_topic(node, topic, partitions=1, configs={"compression.type": "snappy"})
    records = [{"key": f"k{i}", "value": f"json value {i} " * 5} for i in range(20)]
    status, body = http("POST", f"{node.url}/v1/topics/{topic}/records", {"records": records})
    assert status == 200, body
    assert set(stored_codecs(node, topic)) == {CODEC_IDS["snappy"]}
    got = consume_kafka_python(node, topic, 20)
    assert [(k, v) for _o, k, v in got] == [
        (r["key"].encode(), r["value"].encode()) for r in records
    ]


def test_a_compacted_topic_of_compressed_batches_keeps_each_keys_latest(
    node: NodeProcess,
) -> None:
    topic = "comp-compacted"
    create_topic(
        node,
        topic,
        partitions=1,
        configs={
            "cleanup.policy": "compact",
            "segment.bytes": "4096",
            "min.cleanable.dirty.ratio": "0.01",
        },
    )
    sent = keyed(600, keys=12)
    offsets = produce(node, topic, "lz4", sent, rounds=20)
    written = {o: (k, v) for o, (k, v) in zip(offsets, sent, strict=True)}
    cleaned_to = wait_cleaned_up_to_active(node, topic, above=0)
    assert cleaned_to == active_base(node, topic)
    # A first read, to know the partition answers.
    got = consume_assigned(node.kafka_address, topic, 1)
    assert got
    got = consume_kafka_python(node, topic, len(written))
    # Every record read is one that was written, at its offset.
    assert all(written[o] == (k, v) for o, k, v in got)
    # Below the cleaned point each key appears once: its latest record up to there.
    latest_below: dict[bytes, int] = {}
    for o, (k, _v) in written.items():
        if o < cleaned_to:
            latest_below[k] = max(o, latest_below.get(k, -1))
    kept_below = sorted(o for o, _k, _v in got if o < cleaned_to)
    assert kept_below == sorted(latest_below.values())
    # Everything from the active segment on is there.
    assert sorted(o for o, _k, _v in got if o >= cleaned_to) == sorted(
        o for o in written if o >= cleaned_to
    )
    # The rebuilt and copied batches kept lz4 (Kafka's filterTo keeps a batch's codec); a
    # batch emptied by the clean is Kafka's uncompressed empty header.
    directory = node.log_dir / f"{topic}-0"
    for path in sorted(directory.glob("*.log")):
        data = path.read_bytes()
        for pos, header in iter_batches(data):
            if header.record_count:
                assert header.compression == CODEC_IDS["lz4"], (path.name, pos)
                decode_batch(data, pos)


def test_a_decompression_bomb_is_refused_and_nothing_stored(node: NodeProcess) -> None:
    topic = "comp-bomb"
    create_topic(node, topic, partitions=1)
    # 100 MiB of zeros in one record: a zstd batch of a few KiB.
    bomb = build_batch(
        [NewRecord(None, bytes(100 * 1024 * 1024), 1_700_000_000_000)], compression=4
    )
    assert len(bomb) < 64 * 1024
    connection = http_client.HTTPConnection("127.0.0.1", node.http_port, timeout=DEADLINE_S)
    try:
        connection.request(
            "POST",
            f"/v1/topics/{topic}/partitions/0/records",
            body=bomb,
            headers={"Content-Type": BATCH_MEDIA_TYPE},
        )
        response = connection.getresponse()
        answer = response.read().decode()
    finally:
        connection.close()
    assert response.status == 400, answer
    assert "CORRUPT_MESSAGE" in answer and "zstd records" in answer
    assert "more than 67108864 bytes" in answer
    status, body = http("GET", f"{node.url}/v1/topics/{topic}")
    assert status == 200 and body["partitions"][0]["high_watermark"] == 0, body
    # The node still serves.
    wait_until("the node answers", lambda: http("GET", f"{node.url}/v1/topics")[0] == 200)
