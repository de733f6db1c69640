"""Kafka's own clients against the KAFKA listener of a three-node cluster (issue 18):
confluent-kafka (librdkafka), kafka-python and aiokafka, none written here.

One cluster serves the module; each test uses topics of its own. Consumers use assign and
explicit offsets (consumer groups over Kafka's protocol come later): librdkafka requires a
group.id, set with auto commit off, and never asks for a coordinator then.

The bad-input tests speak the protocol by hand (kio's codecs build the requests) to send what
no client would: garbage, an oversized frame, an unknown API, a version not served.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import io
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioPartition
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpPartition
from kio.index import load_response_schema
from kio.serial import entity_reader, entity_writer

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from storage.batch import NewRecord, build_batch
from tests.integration.test_cluster import create_topic
from tests.integration.test_replication import leader_of

DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three combined nodes, topics of three replicas with min.insync.replicas=2 (the lab's
    defaults), each node with a KAFKA listener on K + 2(i-1)."""
    handle = Cluster.create(
        tmp_path_factory.mktemp("kafka"),
        **{"min.insync.replicas": "2", "default.replication.factor": "3"},
    )
    handle.give_kafka_listeners()
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def http_records(node: NodeProcess, topic: str, partition: int = 0) -> list[dict[str, Any]]:
    status, body = http(
        "GET",
        f"{node.url}/v1/topics/{topic}/partitions/{partition}/records"
        "?offset=0&max_records=10000&format=binary",
    )
    assert status == 200, body
    records: list[dict[str, Any]] = body["records"]
    return records


# -- the clients ---------------------------------------------------------------------------------


def test_kafka_python_produces_idempotently_and_reads_back_with_assign(
    kafka_cluster: Cluster,
) -> None:
    create_topic(kafka_cluster.nodes[0], "kp", partitions=2)
    producer = KafkaProducer(
        bootstrap_servers=kafka_cluster.kafka_bootstrap(), acks="all", enable_idempotence=True
    )
    try:
        sent = [
            producer.send("kp", key=b"k%d" % i, value=b"v%d" % i, headers=[("n", b"%d" % i)])
            for i in range(40)
        ]
        producer.flush(DEADLINE_S)
        acked = [f.get(timeout=DEADLINE_S) for f in sent]
    finally:
        producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_cluster.kafka_bootstrap(), enable_auto_commit=False
    )
    try:
        partitions = [KpPartition("kp", 0), KpPartition("kp", 1)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        got: dict[tuple[int, int], Any] = {}
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < 40 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    got[(r.partition, r.offset)] = r
        assert consumer.end_offsets(partitions) == {
            tp: sum(1 for a in acked if a.partition == tp.partition) for tp in partitions
        }
    finally:
        consumer.close()
    assert len(got) == 40
    for i, meta in enumerate(acked):
        record = got[(meta.partition, meta.offset)]
        assert (record.key, record.value) == (b"k%d" % i, b"v%d" % i)
        assert record.headers == [("n", b"%d" % i)]
        assert record.timestamp == meta.timestamp
    # Keys go to Kafka's partitions (murmur2), the same the HTTP produce picks: both exist.
    assert {m.partition for m in acked} == {0, 1}


def test_confluent_kafka_produces_idempotently_and_reads_back_with_assign(
    kafka_cluster: Cluster,
) -> None:
    create_topic(kafka_cluster.nodes[0], "ck")
    producer = Producer(
        {
            "bootstrap.servers": kafka_cluster.kafka_bootstrap(),
            "acks": "all",
            "enable.idempotence": True,
        }
    )
    reports: list[tuple[Any, Any]] = []
    for i in range(30):
        producer.produce(
            "ck",
            key=b"k%d" % i,
            value=b"v%d" % i,
            headers=[("n", b"%d" % i)],
            timestamp=1_700_000_000_000 + i,
            on_delivery=lambda error, message: reports.append((error, message)),
        )
    assert producer.flush(DEADLINE_S) == 0
    assert [e for e, _ in reports if e is not None] == []
    assert [m.offset() for _, m in reports] == list(range(30))
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_cluster.kafka_bootstrap(),
            "group.id": "assign-only",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition("ck", 0, 0)])
        got = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < 30 and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            got.append(message)
        assert consumer.get_watermark_offsets(TopicPartition("ck", 0), timeout=10) == (0, 30)
        # By timestamp: the first record at or after it, with its own timestamp.
        [found] = consumer.offsets_for_times(
            [TopicPartition("ck", 0, 1_700_000_000_010)], timeout=10
        )
        assert found.offset == 10
    finally:
        consumer.close()
    assert [(m.offset(), m.key(), m.value()) for m in got] == [
        (i, b"k%d" % i, b"v%d" % i) for i in range(30)
    ]
    assert [m.headers() for m in got] == [[("n", b"%d" % i)] for i in range(30)]
    assert [m.timestamp()[1] for m in got] == [1_700_000_000_000 + i for i in range(30)]


def test_aiokafka_produces_idempotently_and_reads_back_with_assign(
    kafka_cluster: Cluster,
) -> None:
    create_topic(kafka_cluster.nodes[0], "aio")

    async def run() -> tuple[list[Any], list[Any], int]:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_cluster.kafka_bootstrap(), acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            acked = [
                await producer.send_and_wait("aio", key=b"k%d" % i, value=b"v%d" % i)
                for i in range(20)
            ]
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_cluster.kafka_bootstrap(), enable_auto_commit=False
        )
        await consumer.start()
        try:
            tp = AioPartition("aio", 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            got: list[Any] = []
            async with asyncio.timeout(DEADLINE_S):
                while len(got) < 20:
                    for records in (await consumer.getmany(timeout_ms=1000)).values():
                        got += records
            end = (await consumer.end_offsets([tp]))[tp]
        finally:
            await consumer.stop()
        return acked, got, end

    acked, got, end = asyncio.run(run())
    assert [a.offset for a in acked] == list(range(20))
    assert [(r.offset, r.key, r.value) for r in got] == [
        (i, b"k%d" % i, b"v%d" % i) for i in range(20)
    ]
    assert end == 20


def test_metadata_names_every_broker_at_its_kafka_port_and_each_partitions_leader(
    kafka_cluster: Cluster,
) -> None:
    create_topic(kafka_cluster.nodes[0], "meta", partitions=3)
    consumer = Consumer({"bootstrap.servers": kafka_cluster.kafka_bootstrap(), "group.id": "m"})
    try:
        metadata = consumer.list_topics("meta", timeout=10)
    finally:
        consumer.close()
    assert {b.id: (b.host, b.port) for b in metadata.brokers.values()} == {
        n.node_id: ("127.0.0.1", n.kafka_port) for n in kafka_cluster.nodes
    }
    status, described = http("GET", f"{kafka_cluster.nodes[0].url}/v1/topics/meta")
    assert status == 200, described
    topic = metadata.topics["meta"]
    assert topic.error is None
    assert {
        p.id: (p.leader, sorted(p.replicas), sorted(p.isrs)) for p in topic.partitions.values()
    } == {
        p["partition"]: (p["leader"], sorted(p["replicas"]), sorted(p["isr"]))
        for p in described["partitions"]
    }


# -- the same records over both listeners ------------------------------------------------------


def test_a_record_produced_over_http_reads_the_same_over_kafka_and_back(
    kafka_cluster: Cluster,
) -> None:
    node = kafka_cluster.nodes[0]
    create_topic(node, "both")
    leader = leader_of(kafka_cluster, "both")
    status, body = http(
        "POST",
        f"{leader.url}/v1/topics/both/partitions/0/records",
        {
            "records": [
                {"key": "a", "value": "one", "headers": [["h", "x"]], "timestamp": 1_000},
                {"key": None, "value": "two", "timestamp": 2_000},
            ]
        },
    )
    assert status == 200, body
    producer = Producer({"bootstrap.servers": kafka_cluster.kafka_bootstrap(), "acks": "all"})
    producer.produce("both", key=b"b", value=b"three", headers=[("h", b"y")], timestamp=3_000)
    assert producer.flush(DEADLINE_S) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_cluster.kafka_bootstrap(),
            "group.id": "b",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition("both", 0, 0)])
        got = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < 3 and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None:
                assert message.error() is None, message.error()
                got.append(message)
    finally:
        consumer.close()
    over_kafka = [
        (m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp()[1]) for m in got
    ]
    assert over_kafka == [
        (0, b"a", b"one", [("h", b"x")], 1_000),
        (1, None, b"two", [], 2_000),
        (2, b"b", b"three", [("h", b"y")], 3_000),
    ]
    over_http = [
        (r["offset"], r.get("key_b64"), r.get("value_b64"), r["headers"], r["timestamp"])
        for r in http_records(leader, "both")
    ]
    assert [(o, ts) for o, *_, ts in over_http] == [(0, 1_000), (1, 2_000), (2, 3_000)]
    assert over_http[2][3] == [["h", "eQ=="]], "the Kafka-produced header, base64 of y"


# -- an idempotent producer through a leader's death --------------------------------------------


def test_an_idempotent_producer_writes_through_the_kill_of_the_partition_leader_exactly_once(
    kafka_cluster: Cluster,
) -> None:
    RECORDS_MAX = 3000
    create_topic(kafka_cluster.nodes[0], "survive")
    leader = leader_of(kafka_cluster, "survive")
    producer = Producer(
        {
            "bootstrap.servers": kafka_cluster.kafka_bootstrap(),
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 60_000,
            "linger.ms": 5,
        }
    )
    acked: list[bytes] = []
    failed: list[Any] = []

    def report(error: Any, message: Any) -> None:
        (failed.append(error) if error is not None else acked.append(message.value()))

    stop = threading.Event()

    def produce_all() -> None:
        i = 0
        # At most RECORDS_MAX, so the check's one read of the partition sees all of them.
        while not stop.is_set() and i < RECORDS_MAX:
            try:
                producer.produce("survive", value=b"r%06d" % i, on_delivery=report)
                i += 1
            except BufferError:
                pass
            producer.poll(0.005)

    thread = threading.Thread(target=produce_all)
    thread.start()
    try:
        wait_until("records acked before the kill", lambda: len(acked) >= 200 or None)
        leader.kill()  # kill -9 of the partition's leader
        before = len(acked)
        wait_until("records acked after the kill", lambda: len(acked) >= before + 300 or None)
    finally:
        stop.set()
        thread.join()
        producer.flush(DEADLINE_S)
    assert failed == []
    leader.start()
    new_leader = leader_of(kafka_cluster, "survive")
    stored = [base64.b64decode(r["value_b64"]) for r in http_records(new_leader, "survive")]
    assert len(stored) == len(set(stored)), "a record stored twice"
    assert set(acked) <= set(stored), "an acked record is missing"
    # In order too: the producer's sequence numbers keep its order across the failover.
    assert stored == sorted(stored)


# -- bad input: the node closes that connection and goes on serving ------------------------------


def _request(api_key: int, version: int, body: Any, correlation_id: int = 7) -> bytes:
    header_cls = type(body).__header_schema__
    header = header_cls(
        request_api_key=api_key,
        request_api_version=version,
        correlation_id=correlation_id,
        client_id="raw",
    )
    buffer = io.BytesIO()
    entity_writer(header_cls)(buffer, header)
    entity_writer(type(body))(buffer, body)
    data = buffer.getvalue()
    return struct.pack(">i", len(data)) + data


def _exchange(port: int, frame: bytes) -> bytes | None:
    """Sends one frame; the response frame's bytes after its size, or None when the node
    closed the connection instead."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as s:
        s.sendall(frame)
        prefix = _read(s, 4)
        if prefix is None:
            return None
        (size,) = struct.unpack(">i", prefix)
        return _read(s, size)


def _read(s: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        part = s.recv(size - len(data))
        if not part:
            return None
        data += part
    return data


def _api_versions(port: int) -> Any:
    from kio.schema.api_versions.v3.request import ApiVersionsRequest

    answer = _exchange(
        port,
        _request(
            18, 3, ApiVersionsRequest(client_software_name="raw", client_software_version="1")
        ),
    )
    assert answer is not None
    # ApiVersions answers with response header v0 (the correlation id alone).
    value, _ = entity_reader(load_response_schema(18, 3))(answer, 4)
    return value


def test_garbage_oversized_unknown_and_unsupported_requests_close_only_their_connection(
    kafka_cluster: Cluster,
) -> None:
    from kio.schema.api_versions.v3.request import ApiVersionsRequest
    from kio.schema.metadata.v12.request import MetadataRequest

    node = kafka_cluster.nodes[1]
    port = node.kafka_port
    create_topic(node, "untouched")
    leader = leader_of(kafka_cluster, "untouched")
    status, body = http(
        "POST",
        f"{leader.url}/v1/topics/untouched/partitions/0/records",
        {"records": [{"value": "x"}]},
    )
    assert status == 200, body
    before = http_records(leader, "untouched")

    # Garbage: a size, then bytes that are no request header.
    assert _exchange(port, struct.pack(">i", 3) + b"abc") is None
    assert _exchange(port, struct.pack(">i", 12) + b"\xff" * 12) is None
    # A frame above socket.request.max.bytes (100 MiB): refused from its size alone.
    assert _exchange(port, struct.pack(">i", 200 * 1024 * 1024) + b"\0" * 64) is None
    # An API key Kafka does not have, and one Kafka has that is not served here.
    metadata = MetadataRequest(
        topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False
    )
    unknown = bytearray(_request(3, 12, metadata))
    unknown[4:6] = struct.pack(">h", 999)
    assert _exchange(port, bytes(unknown)) is None
    add_partitions_to_txn = bytearray(_request(3, 12, metadata))  # no transactions here
    add_partitions_to_txn[4:6] = struct.pack(">h", 24)
    assert _exchange(port, bytes(add_partitions_to_txn)) is None
    # A Metadata version above the served range closes the connection ...
    too_new = bytearray(_request(3, 12, metadata))
    too_new[6:8] = struct.pack(">h", 99)
    assert _exchange(port, bytes(too_new)) is None
    # ... but a too-new ApiVersions gets Kafka's v0 answer: UNSUPPORTED_VERSION and our ranges.
    request = bytearray(
        _request(18, 3, ApiVersionsRequest(client_software_name="raw", client_software_version="1"))
    )
    request[6:8] = struct.pack(">h", 99)
    answer = _exchange(port, bytes(request))
    assert answer is not None
    assert struct.unpack(">i", answer[:4]) == (7,)
    fallback, _ = entity_reader(load_response_schema(18, 0))(answer, 4)
    assert fallback.error_code.name == "unsupported_version"
    ranges = {k.api_key: (k.min_version, k.max_version) for k in fallback.api_keys}
    assert ranges[18] == (0, 4) and ranges[1][0] == 4 and 24 not in ranges

    # The node goes on serving: ApiVersions, and a client's whole round trip.
    served = _api_versions(port)
    assert served.error_code.name == "none"
    assert {k.api_key for k in served.api_keys} >= {0, 1, 2, 3, 18, 22}
    assert http_records(leader, "untouched") == before
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "acks": "all"})
    producer.produce("untouched", value=b"y")
    assert producer.flush(DEADLINE_S) == 0
    assert [r["offset"] for r in http_records(leader, "untouched")] == [0, 1]
    status, metrics = http("GET", f"{node.url}/metrics")
    assert status == 200
    text = metrics if isinstance(metrics, str) else str(metrics)
    for reason in ("garbage", "too_large", "unsupported"):
        assert f'kraft_kafka_connections_closed_total{{reason="{reason}"}}' in text, reason


def test_a_produce_to_a_follower_is_refused_with_the_current_leader(
    kafka_cluster: Cluster,
) -> None:
    from kio.schema.produce.v10.request import (
        PartitionProduceData,
        ProduceRequest,
        TopicProduceData,
    )

    create_topic(kafka_cluster.nodes[0], "lead")
    leader = leader_of(kafka_cluster, "lead")
    follower = next(n for n in kafka_cluster.running() if n is not leader)
    # The follower learns the topic and its leader a moment after the controller commits it:
    # before that it answers UNKNOWN_TOPIC_OR_PARTITION, which is not what this test asks.
    wait_until(
        f"node {follower.node_id} knows partition lead-0's leader",
        lambda: (
            (view := http("GET", f"{follower.url}/v1/topics/lead"))[0] == 200
            and {q["partition"]: q["leader"] for q in view[1]["partitions"]}.get(0)
            == leader.node_id
        ),
        DEADLINE_S,
    )
    request = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout=datetime.timedelta(seconds=10),
        topic_data=(
            TopicProduceData(
                name="lead",
                partition_data=(
                    PartitionProduceData(index=0, records=build_batch([NewRecord(b"k", b"v", 1)])),
                ),
            ),
        ),
    )
    answer = _exchange(follower.kafka_port, _request(0, 10, request))
    assert answer is not None
    response, _ = entity_reader(load_response_schema(0, 10))(answer, 5)  # header v1: id, tags
    [partition] = response.responses[0].partition_responses
    assert partition.error_code.name == "not_leader_or_follower"
    assert partition.current_leader.leader_id == leader.node_id
    assert [(e.node_id, e.port) for e in response.node_endpoints] == [
        (leader.node_id, leader.kafka_port)
    ]


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A connection to the node from ``source`` (any 127.x address is this host's loopback:
    a test's own peer address, so no other test's connections count with it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(DEADLINE_S)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _closed(s: socket.socket) -> bool:
    """Whether the node closed the connection (read to its end; a reset counts)."""
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True


def _answer(s: socket.socket) -> bytes | None:
    """The next response frame's bytes after its size, or None when the node closed."""
    prefix = _read(s, 4)
    return None if prefix is None else _read(s, struct.unpack(">i", prefix)[0])


def _fetch_v4_naming(partitions: int) -> bytes:
    """A Fetch v4 frame naming ``partitions`` partitions of topic "x" (16 bytes each)."""
    head = struct.pack(">hhih", 1, 4, 99, 3) + b"raw"
    body = struct.pack(">iiiib", -1, 0, 1, 1_000_000, 0)
    body += struct.pack(">ih", 1, 1) + b"x" + struct.pack(">i", partitions)
    body += b"".join(struct.pack(">iqi", i, 0, 1 << 20) for i in range(partitions))
    return struct.pack(">i", len(head) + len(body)) + head + body


def test_requests_other_than_produce_are_refused_above_4_mib_or_100k_array_elements(
    kafka_cluster: Cluster,
) -> None:
    # Our parsing is Python in the event loop (a 10 MiB Fetch of 650k partitions stopped a
    # node for 15 s): only Produce may be larger than 4 MiB, and no request names more than
    # 100k elements.
    from kio.schema.produce.v10.request import (
        PartitionProduceData,
        ProduceRequest,
        TopicProduceData,
    )

    create_topic(kafka_cluster.nodes[0], "big")
    leader = leader_of(kafka_cluster, "big")
    port = leader.kafka_port
    # A 5 MiB Fetch is refused from its header: the node reads no more of it.
    with _connect(port) as s:
        s.sendall(struct.pack(">ihhih", 5 * 1024 * 1024, 1, 4, 99, 3) + b"raw")
        assert _closed(s)
    # A Fetch of 100,001 partitions (1.6 MiB) is refused before it is decoded; 1,000 are
    # answered (the topic does not exist: each partition's error).
    assert _exchange(port, _fetch_v4_naming(100_001)) is None
    answer = _exchange(port, _fetch_v4_naming(1_000))
    assert answer is not None
    fetched, _ = entity_reader(load_response_schema(1, 4))(answer, 4)
    assert len(fetched.responses[0].partitions) == 1_000
    # A 5 MiB Produce is read and answered (its batch is above max.message.bytes).
    records = build_batch([NewRecord(b"k", b"v" * (5 * 1024 * 1024), 1)])
    request = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout=datetime.timedelta(seconds=10),
        topic_data=(
            TopicProduceData(
                name="big", partition_data=(PartitionProduceData(index=0, records=records),)
            ),
        ),
    )
    answer = _exchange(port, _request(0, 10, request))
    assert answer is not None
    response, _ = entity_reader(load_response_schema(0, 10))(answer, 5)
    [partition] = response.responses[0].partition_responses
    assert partition.error_code.name in ("message_too_large", "record_list_too_large")
    assert _api_versions(port).error_code.name == "none"


def test_slow_senders_of_big_frames_hold_only_the_bytes_they_sent(
    kafka_cluster: Cluster,
) -> None:
    # Two frames announcing 100 MiB each would take all of queued.max.request.bytes (200 MiB)
    # if the budget were reserved from the size prefix: while they trickle in, another
    # client's ApiVersions must still be answered.
    from kio.schema.api_versions.v3.request import ApiVersionsRequest

    port = kafka_cluster.nodes[2].kafka_port
    hogs = [_connect(port, "127.0.0.3") for _ in range(2)]
    stop = threading.Event()

    def trickle() -> None:
        for h in hogs:
            h.sendall(struct.pack(">ihhih", 100 * 1024 * 1024, 0, 10, 1, 3) + b"raw")
        while not stop.wait(2.0):
            for h in hogs:
                h.sendall(b"\0" * 65536)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        time.sleep(1.0)  # the announcements are in before the victim asks
        request = _request(
            18, 3, ApiVersionsRequest(client_software_name="raw", client_software_version="1")
        )
        answer = _exchange(port, request)  # times out (DEADLINE_S) if locked out
        assert answer is not None and struct.unpack(">i", answer[:4]) == (7,)
        # The hogs are still being read (slow, not refused).
        for h in hogs:
            h.setblocking(False)
            with pytest.raises(BlockingIOError):
                h.recv(1)
    finally:
        stop.set()
        sender.join()
        for h in hogs:
            h.close()


def test_one_address_cannot_take_every_connection(kafka_cluster: Cluster) -> None:
    # max.connections.per.ip (200 by default): the 201st connection from one address is
    # closed at once; another address is still served.
    from kio.schema.api_versions.v3.request import ApiVersionsRequest

    port = kafka_cluster.nodes[0].kafka_port
    request = _request(
        18, 3, ApiVersionsRequest(client_software_name="raw", client_software_version="1")
    )
    held: list[socket.socket] = []
    try:
        for _ in range(200):
            s = _connect(port, "127.0.0.5")
            held.append(s)
            s.sendall(request)
            assert _answer(s) is not None  # answered: the connection was let in
        one_more = _connect(port, "127.0.0.5")
        held.append(one_more)
        assert _closed(one_more)
        other = _connect(port, "127.0.0.6")
        held.append(other)
        other.sendall(request)
        assert _answer(other) is not None
    finally:
        for s in held:
            s.close()
