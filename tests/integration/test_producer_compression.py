"""Our producer's compression.type against a real node (issue 18): for each of Kafka's codecs
the partition's segment holds the producer's batches in that codec (the node keeps them as
they came: the topic's compression.type is ``producer``), and the records read back the same
over the HTTP API (JSON) and through the KAFKA listener by librdkafka (confluent-kafka).
kraft-console-producer compresses with --compression-codec (no value: gzip) and with
compression.type from --producer-property.

One node with a KAFKA listener serves the module; each test uses topics of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

from client.producer import Producer
from scripts.node_process import NodeProcess, free_port_run, http, run_tool
from storage.batch import iter_batches
from storage.compression import CODEC_IDS
from tests.integration.test_cluster import create_topic

DEADLINE_S = 60.0
CODECS = ["gzip", "snappy", "lz4", "zstd"]
_KAFKA_PORT: list[int] = []

Record = tuple[int, bytes | None, bytes | None]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    handle = NodeProcess(tmp_path_factory.mktemp("producer-compression"))
    handle.format()  # writes the properties file the listener line is added to
    port = free_port_run(1)
    handle.give_kafka_listener(port)
    _KAFKA_PORT[:] = [port]
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def stored_codecs(node: NodeProcess, topic: str) -> list[int]:
    """The codec of every batch in the partition's segment files, oldest first."""
    codecs = []
    for path in sorted((node.log_dir / f"{topic}-0").glob("*.log")):
        codecs += [header.compression for _pos, header in iter_batches(path.read_bytes())]
    return codecs


def consume_http(node: NodeProcess, topic: str) -> list[Record]:
    status, body = http(
        "GET", f"{node.url}/v1/topics/{topic}/partitions/0/records?offset=0&max_records=10000"
    )
    assert status == 200, body
    return [
        (
            r["offset"],
            None if r["key"] is None else r["key"].encode(),
            None if r["value"] is None else r["value"].encode(),
        )
        for r in body["records"]
    ]


def consume_confluent(topic: str, count: int) -> list[Record]:
    consumer = Consumer(
        {
            "bootstrap.servers": f"127.0.0.1:{_KAFKA_PORT[0]}",
            "group.id": f"g-{topic}",
            "enable.auto.commit": False,
        }
    )
    got: list[Record] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            offset = msg.offset()
            assert offset is not None
            got.append((offset, msg.key(), msg.value()))
    finally:
        consumer.close()
    return got


def keyed(count: int) -> list[tuple[bytes | None, bytes]]:
    return [
        (
            None if i % 7 == 0 else b"key-%d" % (i % 10),
            b"reading %d of a compressible record " % i * 3,
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("codec", CODECS)
def test_our_producers_batches_are_stored_in_its_codec_and_read_back_by_every_client(
    node: NodeProcess, codec: str
) -> None:
    topic = f"ours-{codec}"
    create_topic(node, topic, partitions=1)
    sent = keyed(400)
    with Producer(
        bootstrap_servers=node.bootstrap, compression_type=codec, linger_ms=20, batch_size=8192
    ) as producer:
        futures = [producer.send(topic, value, key=key, partition=0) for key, value in sent]
        offsets = [future.result(DEADLINE_S).offset for future in futures]
    assert offsets == list(range(400))
    codecs = stored_codecs(node, topic)
    assert len(codecs) > 1, "several batches (batch.size 8192)"
    assert set(codecs) == {CODEC_IDS[codec]}
    expected = [(o, k, v) for o, (k, v) in zip(offsets, sent, strict=True)]
    assert consume_http(node, topic) == expected
    assert consume_confluent(topic, 400) == expected


@pytest.mark.parametrize(
    "flags, codec",
    [
        (["--compression-codec"], "gzip"),
        (["--compression-codec", "zstd"], "zstd"),
        (["--producer-property", "compression.type=lz4"], "lz4"),
        ([], "none"),
    ],
)
def test_the_console_producer_compresses_as_its_flags_say(
    node: NodeProcess, flags: list[str], codec: str
) -> None:
    topic = f"console-{codec}"
    create_topic(node, topic, partitions=1)
    lines = [f"line {i} of the console producer's compressible input" for i in range(50)]
    out = run_tool(
        "client.tools.console_producer",
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        topic,
        *flags,
        input="".join(line + "\n" for line in lines),
    )
    assert out.returncode == 0, out.stderr
    assert set(stored_codecs(node, topic)) == {CODEC_IDS[codec]}
    assert consume_http(node, topic) == [(i, None, line.encode()) for i, line in enumerate(lines)]
