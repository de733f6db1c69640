"""The Consumer without a group (assign mode) against real node processes: exact bytes, every
partition, positions, seeks, offsets by time, and a partition leader's kill -9 ridden out.

Each test has its own three-node cluster (``min.insync.replicas=2``), stopped by pid after it;
deadlines are generous and nothing asserts how long something took.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.consumer import Consumer, ConsumerRecord, TopicPartition
from client.producer import Producer
from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.conftest import running_cluster
from tests.integration.test_cluster import create_topic
from tests.integration.test_replication import leader_of

DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("consumer")) as handle:
        yield handle


def produce(cluster: Cluster, topic: str, partition: int, records: list[dict[str, Any]]) -> None:
    """acks=all to the partition's leader (following its 307), retrying while it moves."""

    def attempt() -> bool:
        url = f"{cluster.running()[0].url}/v1/topics/{topic}/partitions/{partition}/records"
        for _hop in range(3):
            try:
                status, body = http("POST", url + "?timeout_ms=10000", {"records": records})
            except OSError:
                return False
            if status == 307:
                url = (
                    body["leader_url"].rstrip("/")
                    + f"/v1/topics/{topic}/partitions/{partition}/records"
                )
                continue
            if status == 200:
                return True
            assert status in (404, 503), body
            return False
        return False

    wait_until(f"records produced to {topic}-{partition}", attempt)


def poll_until(consumer: Consumer, count: int) -> list[ConsumerRecord]:
    got: list[ConsumerRecord] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < count:
        assert time.monotonic() < deadline, f"got {len(got)} of {count} records"
        got.extend(consumer.poll(500))
    return got


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_assigned_partitions_are_read_from_the_beginning_with_exact_bytes(shared: Cluster) -> None:
    node = shared.nodes[0]
    create_topic(node, "exact", partitions=3, replication_factor=3)
    sent: dict[int, list[bytes]] = {
        p: [bytes([p, i, 0xFF, 0]) for i in range(20)] for p in range(3)
    }
    for p, values in sent.items():
        produce(
            shared,
            "exact",
            p,
            [
                {"key_b64": b64(b"k%d" % i), "value_b64": b64(v), "headers": [["h", "x"]]}
                for i, v in enumerate(values)
            ],
        )
    with Consumer({"bootstrap.servers": node.bootstrap, "auto.offset.reset": "earliest"}) as c:
        c.assign([("exact", p) for p in range(3)])
        got = poll_until(c, 60)
        assert c.poll(200) == []
        for p in range(3):
            mine = [r for r in got if r.partition == p]
            assert [r.offset for r in mine] == list(range(20))  # in order, none twice
            assert [r.value for r in mine] == sent[p]
            assert mine[3].key == b"k3" and mine[3].headers == (("h", b"x"),)
            assert c.position(("exact", p)) == 20
        assert c.end_offsets([("exact", 0)]) == {TopicPartition("exact", 0): 20}
        assert c.assignment() == {TopicPartition("exact", p) for p in range(3)}


def test_latest_reset_reads_only_records_produced_after_the_start(shared: Cluster) -> None:
    node = shared.nodes[1]
    create_topic(node, "fresh", partitions=1, replication_factor=3)
    produce(shared, "fresh", 0, [{"value": "old"}])
    with Consumer({"bootstrap.servers": node.bootstrap}) as c:  # auto.offset.reset=latest
        c.assign([("fresh", 0)])
        assert c.position(("fresh", 0)) == 1
        produce(shared, "fresh", 0, [{"value": "new"}])
        assert [r.value for r in poll_until(c, 1)] == [b"new"]


def test_seek_and_offsets_for_times_move_the_position(shared: Cluster) -> None:
    node = shared.nodes[2]
    create_topic(node, "times", partitions=1, replication_factor=3)
    produce(
        shared,
        "times",
        0,
        [{"value": f"v{i}", "timestamp": 1_700_000_000_000 + 1000 * i} for i in range(10)],
    )
    tp = ("times", 0)
    with Consumer({"bootstrap.servers": node.bootstrap, "auto.offset.reset": "earliest"}) as c:
        c.assign([tp])
        found = c.offsets_for_times({tp: 1_700_000_000_000 + 4500})
        assert found == {TopicPartition("times", 0): 5}
        assert c.offsets_for_times({tp: 1_800_000_000_000}) == {TopicPartition("times", 0): None}
        c.seek(tp, 7)
        assert [r.offset for r in poll_until(c, 3)] == [7, 8, 9]
        c.seek_to_beginning([tp])
        assert [r.value for r in poll_until(c, 10)][:2] == [b"v0", b"v1"]
        c.seek_to_end()
        assert c.position(tp) == 10


def test_an_offset_past_the_end_is_reset_by_auto_offset_reset(shared: Cluster) -> None:
    node = shared.nodes[0]
    create_topic(node, "reset", partitions=1, replication_factor=3)
    produce(shared, "reset", 0, [{"value": f"r{i}"} for i in range(3)])
    with Consumer({"bootstrap.servers": node.bootstrap, "auto.offset.reset": "earliest"}) as c:
        c.assign([("reset", 0)])
        c.seek(("reset", 0), 1000)
        assert [r.offset for r in poll_until(c, 3)] == [0, 1, 2]


def test_consumer_follows_a_new_leader_after_kill_9_and_misses_nothing(tmp_path: Path) -> None:
    with running_cluster(tmp_path) as cluster:
        create_topic(cluster.nodes[0], "moving", partitions=1, replication_factor=3)
        leader = leader_of(cluster, "moving")
        survivor: NodeProcess = next(n for n in cluster.nodes if n is not leader)
        produce(cluster, "moving", 0, [{"value": f"a{i}"} for i in range(50)])
        bootstrap = ",".join(n.bootstrap for n in cluster.nodes)
        with Consumer({"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest"}) as c:
            c.assign([("moving", 0)])
            first = poll_until(c, 50)
            leader.kill()
            produce(cluster, "moving", 0, [{"value": f"b{i}"} for i in range(50)])
            second = poll_until(c, 50)
        values = [r.value for r in first + second]
        assert values == [f"a{i}".encode() for i in range(50)] + [
            f"b{i}".encode() for i in range(50)
        ]
        assert survivor.process is not None and survivor.process.poll() is None


def test_the_producers_batches_come_back_byte_for_byte_to_the_consumer_and_to_curl(
    shared: Cluster,
) -> None:
    """Both binary paths end to end: what the Producer built (keys, values and header values
    that are not UTF-8, a tombstone, the timestamps it was given) is what the Consumer reads
    from the stored batches and what the JSON fetch shows a curl user."""
    node = shared.nodes[0]
    create_topic(node, "binary-both-ways", partitions=1, replication_factor=3)
    sent = [
        (b"\xff\x00k%d" % i, None if i == 7 else b"\x80v%d" % i, [("h", b"\xfe%d" % i)])
        for i in range(300)
    ]
    with Producer({"bootstrap.servers": node.bootstrap, "linger.ms": "20"}) as producer:
        futures = [
            producer.send(
                "binary-both-ways",
                v,
                key=k,
                partition=0,
                timestamp_ms=1_700_000_000_000 + i,
                headers=h,
            )
            for i, (k, v, h) in enumerate(sent)
        ]
        producer.flush()
    assert [f.result().offset for f in futures] == list(range(300))
    with Consumer({"bootstrap.servers": node.bootstrap, "auto.offset.reset": "earliest"}) as c:
        c.assign([("binary-both-ways", 0)])
        got = poll_until(c, 300)
    assert [(r.key, r.value, list(r.headers)) for r in got] == sent
    assert [r.timestamp for r in got] == [1_700_000_000_000 + i for i in range(300)]
    leader = leader_of(shared, "binary-both-ways")
    status, body = http(
        "GET",
        f"{leader.url}/v1/topics/binary-both-ways/partitions/0/records"
        "?offset=5&max_records=3&format=binary",
    )
    assert status == 200, body
    assert [base64.b64decode(r["key_b64"]) for r in body["records"]] == [s[0] for s in sent[5:8]]
    assert body["records"][2]["value"] is None  # the tombstone
