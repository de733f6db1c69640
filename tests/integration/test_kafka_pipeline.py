"""Pipelined requests on a KAFKA connection (server/kafka/listener.py) against a three-node
cluster of its own: librdkafka's producer at its defaults (up to 1,000,000 requests in flight a
connection) at a steady rate, Produce requests sent back to back on one raw socket, and a kill -9
of the partition leader while requests are in flight. What pipelining must keep: appends in a
connection's order, answers in request order, every acknowledged record stored once."""

from __future__ import annotations

import base64
import datetime
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader

from scripts.node_process import Cluster, wait_until
from server.kafka.entities import build
from storage.batch import NewRecord, build_batch
from tests.integration.test_cluster import create_topic
from tests.integration.test_kafka_clients import (
    _read,
    _request,
    http_records,
)
from tests.integration.test_replication import leader_of

DEADLINE_S = 60.0
PARTITIONS = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three combined nodes, topics of three replicas with min.insync.replicas=2, each node
    with a KAFKA listener."""
    handle = Cluster.create(
        tmp_path_factory.mktemp("kafka-pipeline"),
        **{"min.insync.replicas": "2", "default.replication.factor": "3"},
    )
    handle.give_kafka_listeners()
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def stored_values(cluster: Cluster, topic: str, partition: int) -> list[bytes]:
    leader = leader_of(cluster, topic, partition)
    return [base64.b64decode(r["value_b64"]) for r in http_records(leader, topic, partition)]


def test_librdkafka_at_its_defaults_has_every_record_acknowledged_once_in_send_order(
    cluster: Cluster,
) -> None:
    records, rate = 5000, 1000.0
    create_topic(cluster.nodes[0], "steady", partitions=PARTITIONS)
    # Idempotence is the one setting changed: its sequences are what ordering breaks first.
    producer = Producer(
        {"bootstrap.servers": cluster.kafka_bootstrap(), "enable.idempotence": True}
    )
    reports: list[tuple[int, Any, int, int]] = []  # (record, error, partition, offset)

    def report(error: Any, message: Any) -> None:
        reports.append((int(message.value()), error, message.partition(), message.offset()))

    start = time.monotonic()
    for i in range(records):
        # A steady rate: librdkafka sends one small request per linger.ms, many in flight.
        ahead_s = start + i / rate - time.monotonic()
        if ahead_s > 0:
            time.sleep(ahead_s)
        producer.produce("steady", value=b"%d" % i, partition=i % PARTITIONS, on_delivery=report)
        producer.poll(0)
    assert producer.flush(DEADLINE_S) == 0
    assert [error for _, error, _, _ in reports if error is not None] == []
    assert sorted(i for i, *_ in reports) == list(range(records)), "each acknowledged once"
    for p in range(PARTITIONS):
        mine = sorted((i, offset) for i, _, partition, offset in reports if partition == p)
        assert [i % PARTITIONS for i, _ in mine] == [p] * len(mine)
        offsets = [offset for _, offset in mine]
        assert offsets == list(range(len(mine))), f"partition {p}: offsets in send order"
        assert stored_values(cluster, "steady", p) == [b"%d" % i for i, _ in mine]


def _produce_request(topic: str, value: bytes) -> Any:
    return build(
        load_request_schema(0, 9),
        {
            "acks": -1,
            "timeout": datetime.timedelta(seconds=30),
            "topic_data": [
                {
                    "name": topic,
                    "partition_data": [
                        {"index": 0, "records": build_batch([NewRecord(b"k", value, 1)])}
                    ],
                }
            ],
        },
    )


def test_produce_requests_sent_back_to_back_are_appended_and_answered_in_order(
    cluster: Cluster,
) -> None:
    create_topic(cluster.nodes[0], "raw-pipeline")
    leader = leader_of(cluster, "raw-pipeline")
    metadata = build(
        load_request_schema(3, 12),
        {
            "topics": None,
            "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False,
        },
    )
    count = 12
    sent: list[tuple[int, int]] = []  # (api key, correlation id)
    frames = b""
    for cid in range(1, count + 1):
        if cid % 4 == 0:  # a Metadata among them: answered in its place
            frames += _request(3, 12, metadata, correlation_id=cid)
            sent.append((3, cid))
        else:
            frames += _request(0, 9, _produce_request("raw-pipeline", b"%d" % cid), cid)
            sent.append((0, cid))
    answers: list[tuple[int, Any]] = []
    with socket.create_connection(("127.0.0.1", leader.kafka_port), DEADLINE_S) as s:
        s.sendall(frames)  # all at once: the node reads ahead of its answers
        for api_key, _ in sent:
            prefix = _read(s, 4)
            assert prefix is not None, "the node closed the connection"
            answer = _read(s, struct.unpack(">i", prefix)[0])
            assert answer is not None
            (cid,) = struct.unpack(">i", answer[:4])
            # Produce v9 and Metadata v12 answer with response header v1: id, then tags.
            value, _ = entity_reader(load_response_schema(api_key, 9 if api_key == 0 else 12))(
                answer, 5
            )
            answers.append((cid, value))
    assert [cid for cid, _ in answers] == [cid for _, cid in sent], "answers in request order"
    produced = [
        (cid, value.responses[0].partition_responses[0])
        for (api_key, _), (cid, value) in zip(sent, answers, strict=True)
        if api_key == 0
    ]
    assert [p.error_code.name for _, p in produced] == ["none"] * len(produced)
    assert [p.base_offset for _, p in produced] == list(range(len(produced))), "appended in order"
    assert stored_values(cluster, "raw-pipeline", 0) == [b"%d" % cid for cid, _ in produced]


def test_every_record_acknowledged_through_a_leader_kill_during_pipelined_produce_is_stored_once(
    cluster: Cluster,
) -> None:
    records_max = 4000  # the check reads the partition once (10,000 records at most)
    create_topic(cluster.nodes[0], "pipeline-kill")
    leader = leader_of(cluster, "pipeline-kill")
    producer = Producer(
        {
            "bootstrap.servers": cluster.kafka_bootstrap(),
            "enable.idempotence": True,
            "message.timeout.ms": 60_000,
        }
    )
    acked: list[bytes] = []
    failed: list[Any] = []

    def report(error: Any, message: Any) -> None:
        (failed.append(error) if error is not None else acked.append(message.value()))

    stop = threading.Event()

    def produce_all() -> None:
        i = 0
        while not stop.is_set() and i < records_max:
            producer.produce("pipeline-kill", value=b"r%06d" % i, on_delivery=report)
            i += 1
            producer.poll(0.001)  # about 1000 records/s: requests in flight all along

    thread = threading.Thread(target=produce_all)
    thread.start()
    try:
        wait_until("records acked before the kill", lambda: len(acked) >= 500 or None)
        leader.kill()  # kill -9 with requests in flight on the producer's connection
        before = len(acked)
        wait_until("records acked after the kill", lambda: len(acked) >= before + 500 or None)
    finally:
        stop.set()
        thread.join()
        remaining = producer.flush(DEADLINE_S)
        leader.start()
    assert remaining == 0 and failed == []
    stored = stored_values(cluster, "pipeline-kill", 0)
    assert len(stored) == len(set(stored)), "a record stored twice"
    assert set(acked) <= set(stored), "an acknowledged record is missing"
    assert stored == sorted(stored), "stored in the producer's order"
