"""Compressed batches with Kafka 4.4.0's own tools against three nodes of ours (issue 18): the
console producer with ``--compression-codec`` (gzip, snappy, lz4, zstd: Java's own codecs, the
xerial snappy framing and Kafka's LZ4 block stream) writes through our KAFKA listener; every
replica stores the producer's batches; Kafka's DumpLogSegments reads our segment files and
prints the records; the console consumer prints them back.

Skipped, with the reason, only when Java or Kafka's jars (``scripts/setup`` fetches them) are
missing.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from scripts.node_process import NodeProcess, http, wait_until
from storage.batch import decode_batch, iter_batches
from storage.compression import CODEC_IDS
from tests.compat.conftest import KafkaNodes, KafkaToolRunner
from tests.integration.test_cluster import create_topic

CODECS = ["gzip", "snappy", "lz4", "zstd"]
LINES = 200


def ok(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a tool printed on stdout; it must have exited 0 without an exception."""
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Exception" not in done.stderr, done.stderr
    return done.stdout.splitlines()


def partition_view(node: NodeProcess, topic: str) -> dict[str, Any] | None:
    status, body = http("GET", f"{node.url}/v1/topics/{topic}")
    return body["partitions"][0] if status == 200 else None


@pytest.mark.parametrize("codec", CODECS)
def test_kafkas_console_producer_compresses_and_its_tools_read_our_files(
    kafka_nodes: KafkaNodes, kafka_tool: KafkaToolRunner, codec: str
) -> None:
    topic = f"java-{codec}"
    nodes = kafka_nodes.cluster.nodes
    create_topic(nodes[0], topic, partitions=1, replication_factor=3)
    lines = [f"{codec} line {i} " + "of compressible text " * 3 for i in range(LINES)]
    ok(
        kafka_tool.run(
            "kafka-console-producer", "--bootstrap-server", kafka_nodes.bootstrap,
            "--topic", topic, "--compression-codec", codec,
            "--producer-property", "acks=all",
            input="\n".join(lines) + "\n",
        )
    )  # fmt: skip
    # Every replica holds the records, as the producer compressed them.
    for node in nodes:
        wait_until(
            f"node {node.node_id} holds {topic}'s {LINES} records",
            lambda node=node: (
                (p := partition_view(node, topic)) is not None and p["high_watermark"] == LINES
            ),
        )
    segment = nodes[0].log_dir / f"{topic}-0" / "00000000000000000000.log"

    def replicated() -> bool:
        return all(
            (n.log_dir / f"{topic}-0" / segment.name).exists()
            and (n.log_dir / f"{topic}-0" / segment.name).read_bytes()[:4096]
            == segment.read_bytes()[:4096]
            for n in nodes
        )

    wait_until(f"{topic}'s replicas hold the same bytes", replicated)
    data = segment.read_bytes()
    values: list[bytes | None] = []
    for pos, header in iter_batches(data):
        assert header.compression == CODEC_IDS[codec]
        values += [r.value for r in decode_batch(data, pos)[1]]
    assert values == [line.encode() for line in lines]

    # Kafka's DumpLogSegments reads our file: the codec on every batch, every payload.
    dumped = ok(kafka_tool.run("kafka-dump-log", "--files", str(segment), "--print-data-log"))
    batches = [line for line in dumped if line.startswith("baseOffset:")]
    assert batches and all(f"compresscodec: {codec}" in line.lower() for line in batches)
    assert all("isvalid: true" in line for line in batches)
    payloads = [line.split(" payload: ", 1)[1] for line in dumped if " payload: " in line]
    assert payloads == lines

    # Kafka's console consumer prints them back.
    consumed = ok(
        kafka_tool.run(
            "kafka-console-consumer", "--bootstrap-server", kafka_nodes.bootstrap,
            "--topic", topic, "--from-beginning", "--max-messages", str(LINES),
        )
    )  # fmt: skip
    assert consumed == lines
