"""Binary record batches over HTTP (docs/binary-records.md) on a real three-node cluster
(min.insync.replicas=2): what a binary produce stores is what the JSON fetch reads, what the
binary fetch sends is the segment file's bytes, and every refusal stores nothing."""

from __future__ import annotations

import base64
import http.client as http_client
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from client.protocol import (
    BATCH_MEDIA_TYPE,
    HIGH_WATERMARK_HEADER,
    LOG_START_OFFSET_HEADER,
    NEXT_OFFSET_HEADER,
)
from scripts.node_process import Cluster, NodeProcess, http, wait_until
from storage.batch import (
    ATTRIBUTES_OFFSET,
    NewRecord,
    build_batch,
    crc32c,
    decode_batch,
    iter_batches,
)
from tests.integration.conftest import running_cluster
from tests.integration.test_cluster import create_topic
from tests.integration.test_replication import leader_of

NOW_MS = 1_700_000_000_000
BATCH = {"Content-Type": BATCH_MEDIA_TYPE}
ACCEPT = {"Accept": BATCH_MEDIA_TYPE}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("binary")) as handle:
        yield handle


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body)


def call(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Answer:
    """One request, no redirect followed (a 307 is an answer here)."""
    parts = urlsplit(url)
    connection = http_client.HTTPConnection(parts.netloc, timeout=60)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def batch(values: list[bytes], producer: tuple[int, int, int] = (-1, -1, -1), **kw: Any) -> bytes:
    pid, epoch, sequence = producer
    rows = [
        NewRecord(
            b"k%d" % i if i % 2 else None,
            v,
            NOW_MS + i,
            (("trace", b"t%d" % i), ("none", None)) if i % 3 == 0 else (),
        )
        for i, v in enumerate(values)
    ]
    return build_batch(rows, producer_id=pid, producer_epoch=epoch, base_sequence=sequence, **kw)


def records_url(node: NodeProcess, topic: str, query: str = "") -> str:
    return f"{node.url}/v1/topics/{topic}/partitions/0/records" + (f"?{query}" if query else "")


def produce(node: NodeProcess, topic: str, data: bytes, query: str = "") -> Answer:
    return call("POST", records_url(node, topic, query), data, BATCH)


def fetch(node: NodeProcess, topic: str, query: str) -> Answer:
    return call("GET", records_url(node, topic, query), None, ACCEPT)


def json_records(node: NodeProcess, topic: str) -> list[dict[str, Any]]:
    status, body = http("GET", records_url(node, topic, "offset=0&max_records=10000&format=binary"))
    assert status == 200, body
    return list(body["records"])


def end_offsets(node: NodeProcess, topic: str) -> tuple[int, int]:
    status, body = http("GET", f"{node.url}/v1/topics/{topic}")
    assert status == 200, body
    p = body["partitions"][0]
    return p["log_start_offset"], p["high_watermark"]


def topic_with_leader(cluster: Cluster, name: str, **fields: Any) -> NodeProcess:
    """A new topic of one partition on all three nodes, and its leader once it serves it (the
    metadata names the leader a moment before the leader has opened its replica)."""
    create_topic(cluster.running()[0], name, partitions=1, replication_factor=3, **fields)
    leader = leader_of(cluster, name)
    wait_until(
        f"{name} served by its leader",
        lambda: http("GET", records_url(leader, name, "offset=0"))[0] == 200,
    )
    return leader


def test_a_binary_produce_reads_back_through_the_json_fetch(cluster: Cluster) -> None:
    leader = topic_with_leader(cluster, "bin-to-json")
    values = [b"v%d" % i for i in range(7)] + [b"\xff\x00binary"]
    answer = produce(leader, "bin-to-json", batch(values, base_offset=999))
    assert answer.status == 200, answer.body
    assert answer.json() == {
        "topic": "bin-to-json",
        "partition": 0,
        "base_offset": 0,
        "record_count": 8,
        "log_start_offset": 0,
        "duplicate": False,
    }
    got = json_records(leader, "bin-to-json")
    _, expected = decode_batch(batch(values))
    assert [r["offset"] for r in got] == [r.offset for r in expected]
    assert [r["timestamp"] for r in got] == [r.timestamp for r in expected]

    def field(record: dict[str, Any], name: str) -> bytes | None:
        # format=binary: base64 under name_b64, or null under the name itself.
        encoded = record.get(f"{name}_b64")
        return None if encoded is None else base64.b64decode(encoded)

    assert [field(r, "key") for r in got] == [r.key for r in expected]
    assert [field(r, "value") for r in got] == [r.value for r in expected]
    assert [
        [(n, None if v is None else base64.b64decode(v)) for n, v in r["headers"]] for r in got
    ] == [list(r.headers) for r in expected]


def test_a_binary_fetch_sends_the_segment_files_bytes(cluster: Cluster) -> None:
    leader = topic_with_leader(cluster, "json-to-bin")
    for i in range(3):
        status, body = http(
            "POST",
            records_url(leader, "json-to-bin"),
            {"records": [{"key": f"k{i}", "value": f"value {i}.{j}"} for j in range(4)]},
        )
        assert status == 200, body
    answer = fetch(leader, "json-to-bin", "offset=0")
    assert answer.status == 200 and answer.headers["Content-Type"] == BATCH_MEDIA_TYPE
    assert answer.headers[HIGH_WATERMARK_HEADER] == "12"
    assert answer.headers[LOG_START_OFFSET_HEADER] == "0"
    assert answer.headers[NEXT_OFFSET_HEADER] == "12"
    segment = Path(leader.log_dir) / "json-to-bin-0" / "00000000000000000000.log"
    assert answer.body == segment.read_bytes()
    # From the middle of a batch: the whole batch holding the offset comes, as in Kafka.
    middle = fetch(leader, "json-to-bin", "offset=5")
    assert middle.body == segment.read_bytes()[len(answer.body) // 3 :]
    assert [h.base_offset for _, h in iter_batches(middle.body)] == [4, 8]
    # At the high watermark: an empty body, the next offset the one asked.
    empty = fetch(leader, "json-to-bin", "offset=latest")
    assert (empty.status, empty.body, empty.headers[NEXT_OFFSET_HEADER]) == (200, b"", "12")


def test_max_bytes_is_a_bound_but_the_first_batch_comes_whole(cluster: Cluster) -> None:
    leader = topic_with_leader(cluster, "bounds")
    sizes = []
    for n in (10, 200, 30):
        data = batch([b"x" * n] * 3)
        sizes.append(len(data))
        assert produce(leader, "bounds", data).status == 200
    first = fetch(leader, "bounds", "offset=0&max_bytes=1")
    assert len(first.body) == sizes[0] and first.headers[NEXT_OFFSET_HEADER] == "3"
    cut = fetch(leader, "bounds", f"offset=0&max_bytes={sizes[0] + sizes[1] - 1}")
    assert len(cut.body) == sizes[0] and cut.headers[NEXT_OFFSET_HEADER] == "3"
    two = fetch(leader, "bounds", f"offset=3&max_bytes={sizes[1] + sizes[2]}")
    assert len(two.body) == sizes[1] + sizes[2] and two.headers[NEXT_OFFSET_HEADER] == "9"
    big_first = fetch(leader, "bounds", "offset=3&max_bytes=100")
    assert len(big_first.body) == sizes[1], "a first batch over max_bytes still comes whole"


def test_an_idempotent_retry_is_a_duplicate_and_a_gap_is_refused(cluster: Cluster) -> None:
    leader = topic_with_leader(cluster, "bin-idem")
    status, body = http("POST", f"{leader.url}/v1/producers", {})
    assert status == 200, body
    pid = body["producer_id"]
    first = produce(leader, "bin-idem", batch([b"a", b"b"], (pid, 0, 0)))
    assert first.status == 200 and first.json()["base_offset"] == 0
    retry = produce(leader, "bin-idem", batch([b"a", b"b"], (pid, 0, 0)))
    assert retry.status == 200
    assert (retry.json()["base_offset"], retry.json()["duplicate"]) == (0, True)
    gap = produce(leader, "bin-idem", batch([b"c"], (pid, 0, 7)))
    assert (gap.status, gap.json()["error"], gap.json()["expected_sequence"]) == (
        409,
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        2,
    )
    headers = {**BATCH, "Producer-Id": str(pid), "Producer-Epoch": "0", "Producer-Seq": "2"}
    both = call("POST", records_url(leader, "bin-idem"), batch([b"c"], (pid, 0, 2)), headers)
    assert (both.status, both.json()["error"]) == (400, "INVALID_REQUEST")
    assert end_offsets(leader, "bin-idem") == (0, 2)


def test_acks_0_1_and_all(cluster: Cluster) -> None:
    leader = topic_with_leader(cluster, "bin-acks")
    none = produce(leader, "bin-acks", batch([b"zero"]), "acks=0")
    assert none.status == 202 and none.json() == {"topic": "bin-acks"}
    one = produce(leader, "bin-acks", batch([b"one"]), "acks=1")
    assert one.status == 200 and one.json()["base_offset"] == 1
    every = produce(leader, "bin-acks", batch([b"all"]), "acks=all")
    assert every.status == 200 and every.json()["base_offset"] == 2
    wait_until("all three committed", lambda: end_offsets(leader, "bin-acks")[1] == 3)
    assert [r["value_b64"] for r in json_records(leader, "bin-acks")] == [
        "emVybw==",
        "b25l",
        "YWxs",
    ]


def test_refused_bodies_store_nothing(cluster: Cluster) -> None:
    leader = topic_with_leader(cluster, "bin-refused", configs={"max.message.bytes": "2000"})
    good = batch([b"ok"])
    assert produce(leader, "bin-refused", good).status == 200
    torn = bytearray(good)
    torn[-1] ^= 0xFF
    # Records marked gzip that are not a gzip stream, and a codec id Kafka has not (5): the
    # codec bits changed, the CRC fixed up.
    gzip = bytearray(batch([b"z"]))
    gzip[22] |= 1
    gzip[17:21] = crc32c(bytes(gzip[ATTRIBUTES_OFFSET:])).to_bytes(4, "big")
    codec5 = bytearray(batch([b"5"]))
    codec5[22] |= 5
    codec5[17:21] = crc32c(bytes(codec5[ATTRIBUTES_OFFSET:])).to_bytes(4, "big")
    control = bytearray(batch([b"c"]))
    control[22] |= 0x20
    control[17:21] = crc32c(bytes(control[ATTRIBUTES_OFFSET:])).to_bytes(4, "big")
    cases = [
        (bytes(torn), 400, "CORRUPT_MESSAGE"),
        (good + good, 400, "CORRUPT_MESSAGE"),
        (b"", 400, "CORRUPT_MESSAGE"),
        (bytes(gzip), 400, "CORRUPT_MESSAGE"),
        (bytes(codec5), 400, "UNSUPPORTED_COMPRESSION_TYPE"),
        (bytes(control), 422, "INVALID_RECORD"),
        (batch([b"x" * 3000]), 413, "RECORD_TOO_LARGE"),
    ]
    for body, status, error in cases:
        answer = produce(leader, "bin-refused", body)
        assert (answer.status, answer.json()["error"]) == (status, error), answer.body
    assert end_offsets(leader, "bin-refused") == (0, 1)
    assert len(json_records(leader, "bin-refused")) == 1


def test_json_only_parameters_and_the_topic_endpoint_are_refused(cluster: Cluster) -> None:
    leader = topic_with_leader(cluster, "bin-params")
    for query in ("follow=true", "format=text", "max_records=5"):
        answer = fetch(leader, "bin-params", f"offset=0&{query}")
        assert answer.status == 400, answer.body
        assert answer.json()["error"] == "INVALID_REQUEST"
        assert query.split("=")[0] in answer.json()["message"]
    topic_level = call("POST", f"{leader.url}/v1/topics/bin-params/records", batch([b"a"]), BATCH)
    assert topic_level.status == 415
    assert "/v1/topics/T/partitions/P/records" in topic_level.json()["message"]
    assert end_offsets(leader, "bin-params") == (0, 0)


def test_a_follower_redirects_binary_requests_to_the_leader(cluster: Cluster) -> None:
    leader = topic_with_leader(cluster, "bin-redirect")
    follower = next(n for n in cluster.running() if n.node_id != leader.node_id)
    # A replica not open yet answers 503 (retry): wait until the follower has its own.
    wait_until(
        "the follower's replica is open",
        lambda: call("GET", records_url(follower, "bin-redirect", "offset=0")).status == 307,
    )
    for answer in (
        produce(follower, "bin-redirect", batch([b"a"])),
        fetch(follower, "bin-redirect", "offset=0"),
    ):
        assert answer.status == 307, answer.body
        assert answer.headers["Location"].startswith(leader.url)
        assert answer.headers["X-Leader-Id"] == str(leader.node_id)


def test_a_long_poll_wakes_on_a_produce(cluster: Cluster) -> None:
    leader = topic_with_leader(cluster, "bin-poll")
    answers: list[Answer] = []
    waiting = threading.Thread(
        target=lambda: answers.append(fetch(leader, "bin-poll", "offset=0&timeout_ms=60000"))
    )
    waiting.start()
    try:
        time.sleep(0.5)
        assert waiting.is_alive(), "the long poll must wait for a record"
        assert produce(leader, "bin-poll", batch([b"wake"])).status == 200
    finally:
        waiting.join(90)
    (answer,) = answers
    assert answer.status == 200
    assert [h.base_offset for _, h in iter_batches(answer.body)] == [0]
    assert answer.headers[NEXT_OFFSET_HEADER] == "1"
