"""Our producer's compression.type against a real node (issue 18): for each of Kafka's codecs
the partition's segment holds the producer's batches in that codec (the node keeps them as
they came: the topic's compression.type is ``producer``), and the records read back the same
over the HTTP API (JSON) and through the KAFKA listener by librdkafka (confluent-kafka).
kraft-console-producer compresses with --compression-codec (no value: gzip) and with
compression.type from --producer-property.

One node with a KAFKA listener serves the module; each test uses topics of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from client.producer import Producer
from scripts.node_process import NodeProcess, free_port_run, run_tool
from storage.compression import CODEC_IDS
from tests.integration.kafka_helpers import (
    consume_assigned,
    records_over_http,
    stored_codecs,
)
from tests.integration.test_cluster import create_topic

DEADLINE_S = 60.0
CODECS = ["gzip", "snappy", "lz4", "zstd"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    handle = NodeProcess(tmp_path_factory.mktemp("producer-compression"))
    handle.format()  # writes the properties file the listener line is added to
    handle.give_kafka_listener(free_port_run(1))
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


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
    assert records_over_http(node, topic) == expected
    assert consume_assigned(node.kafka_address, topic, 400) == expected


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
    assert records_over_http(node, topic) == [
        (i, None, line.encode()) for i, line in enumerate(lines)
    ]
