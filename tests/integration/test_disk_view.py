"""The disk view's API on a real three-node cluster: each replica's files listed by its own
broker (a 307 from any other node), a segment's text exactly what ``kraft-dump-log`` prints for
the same file, payloads with ``print_data``, ``max_bytes`` stopping early with a note, and 404s
for names outside the listing, unknown partitions, brokers without the replica and a fenced
broker."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest

from scripts.node_process import Cluster, NodeProcess, http, run_tool
from tests.integration.conftest import running_cluster

TOPIC = "disk"
RECORDS = 12
# Replicas and checkpoints settle within seconds; a loaded machine is slower.
DEADLINE_S = 60.0
SEGMENT = "00000000000000000000.log"


def files_path(broker: int, partition: int = 0, topic: str = TOPIC) -> str:
    return f"/v1/brokers/{broker}/partitions/{topic}/{partition}/files"


def raw_get(node: NodeProcess, path: str) -> tuple[int, dict[str, str], bytes]:
    """One GET of ``path`` sent as written (no redirect followed, no URL normalised)."""
    connection = HTTPConnection("127.0.0.1", node.http_port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def node_at(cluster: Cluster, url: str) -> NodeProcess:
    port = urlsplit(url).port
    return next(n for n in cluster.nodes if n.http_port == port)


def get_followed(cluster: Cluster, asked: NodeProcess, path: str) -> tuple[int, Any, str]:
    """GET ``path`` from ``asked``, following one 307; (status, JSON or text, content type)."""
    status, headers, body = raw_get(asked, path)
    if status == 307:
        location = urlsplit(headers["Location"])
        target = node_at(cluster, headers["Location"])
        assert location.path + (f"?{location.query}" if location.query else "") == path
        status, headers, body = raw_get(target, path)
    content_type = headers.get("Content-Type", "")
    if content_type.startswith("application/json"):
        return status, json.loads(body), content_type
    return status, body.decode(), content_type


def produce(node: NodeProcess, values: list[str], partition: int = 0) -> None:
    path = f"/v1/topics/{TOPIC}/partitions/{partition}/records?acks=all"
    url = node.url + path
    for _hop in range(3):
        status, answer = http("POST", url, {"records": [{"value": v} for v in values]})
        if status != 307:
            break
        url = answer["leader_url"].rstrip("/") + path
    assert status == 200, answer


def segment_sizes(cluster: Cluster) -> set[int]:
    return {
        (n.log_dir / f"{TOPIC}-0" / SEGMENT).stat().st_size
        for n in cluster.nodes
        if (n.log_dir / f"{TOPIC}-0" / SEGMENT).exists()
    }


@pytest.fixture(scope="module")
def disk_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("disk-view")) as c:
        node = c.nodes[0]
        status, answer = node.http(
            "POST", "/v1/topics", {"name": TOPIC, "partitions": 2, "replication_factor": 3}
        )
        assert status == 201, answer
        status, answer = node.http(
            "POST", "/v1/topics", {"name": "single", "partitions": 1, "replication_factor": 1}
        )
        assert status == 201, answer
        # Several produces: several batches, so max_bytes has somewhere to stop.
        for start in range(0, RECORDS, 3):
            produce(node, [f"value-{i}" for i in range(start, start + 3)])
        # acks=all: every ISR member has the batches; wait until each wrote them whole.
        deadline = time.monotonic() + DEADLINE_S
        while len(segment_sizes(c)) != 1 or 0 in segment_sizes(c):
            assert time.monotonic() < deadline, f"replicas differ: {segment_sizes(c)}"
            time.sleep(0.1)
        yield c


def test_each_replicas_files_are_listed_by_its_broker_after_a_307_from_another_node(
    disk_cluster: Cluster,
) -> None:
    for node in disk_cluster.nodes:
        other = disk_cluster.nodes[node.node_id % 3]
        status, headers, _ = raw_get(other, files_path(node.node_id))
        assert status == 307
        assert headers["Location"] == node.url + files_path(node.node_id)
        status, listing, _ = get_followed(disk_cluster, other, files_path(node.node_id))
        assert status == 200, listing
        directory = node.log_dir / f"{TOPIC}-0"
        assert listing["broker_id"] == node.node_id
        assert listing["log_dir"] == str(node.log_dir.absolute())
        assert listing["directory"] == f"{TOPIC}-0"
        on_disk = {p.name: p.stat().st_size for p in directory.iterdir() if p.is_file()}
        names = [f["name"] for f in listing["files"]]
        assert names == sorted(on_disk, key=os.fsencode)
        kinds = {f["name"]: f["kind"] for f in listing["files"]}
        assert kinds[SEGMENT] == "segment"
        assert kinds["00000000000000000000.index"] == "offset_index"
        assert kinds["00000000000000000000.timeindex"] == "time_index"
        assert kinds["leader-epoch-checkpoint"] == "leader_epoch_checkpoint"
        assert kinds["partition.metadata"] == "partition_metadata"
        sizes = {f["name"]: f["size"] for f in listing["files"]}
        assert sizes[SEGMENT] == on_disk[SEGMENT] > 0
        top = {f["name"]: f["kind"] for f in listing["log_dir_files"]}
        assert top["meta.properties"] == "meta_properties"
        # Only meta.properties and the checkpoints: never the secret, nor other partitions.
        assert all(name == "meta.properties" or name.endswith("-checkpoint") for name in top)
        assert (node.log_dir / "cluster.secret").exists() and "cluster.secret" not in top


def test_a_segment_reads_as_kraft_dump_log_prints_the_same_file(disk_cluster: Cluster) -> None:
    for node in disk_cluster.nodes:
        path = node.log_dir.absolute() / f"{TOPIC}-0" / SEGMENT
        for query, flags in (("", []), ("?print_data=true", ["--print-data-log"])):
            status, text, content_type = get_followed(
                disk_cluster, disk_cluster.nodes[0], files_path(node.node_id) + f"/{SEGMENT}{query}"
            )
            assert status == 200, text
            assert content_type == "text/plain; charset=utf-8"
            tool = run_tool("storage.dump_log", "--files", str(path), *flags)
            assert tool.returncode == 0 and tool.stderr == ""
            assert text == tool.stdout
            assert text.startswith(f"Dumping {path}\nLog starting offset: 0\n")
            shown = "payload: value-" in text
            assert shown == bool(flags)
        assert all(f"payload: value-{i}\n" in text for i in range(RECORDS))


def test_a_long_text_streams_whole_in_many_chunks(disk_cluster: Cluster) -> None:
    node = disk_cluster.nodes[0]
    for start in range(0, 2000, 500):
        produce(node, [f"long-{i}-" + "x" * 200 for i in range(start, start + 500)], 1)
    path = node.log_dir.absolute() / f"{TOPIC}-1" / SEGMENT
    deadline = time.monotonic() + DEADLINE_S
    while True:
        tool = run_tool("storage.dump_log", "--files", str(path), "--print-data-log")
        if "payload: long-1999-" in tool.stdout:
            break  # node 1's replica has every batch, and nothing more comes
        assert time.monotonic() < deadline, "node 1's replica never got the last record"
        time.sleep(0.2)
    status, text, _ = get_followed(
        disk_cluster, node, files_path(1, partition=1) + f"/{SEGMENT}?print_data=true"
    )
    assert status == 200
    assert len(text) > 512 * 1024  # several of the route's 64 KiB chunks
    assert text == tool.stdout


def test_max_bytes_stops_after_the_batches_that_fit_and_says_where(disk_cluster: Cluster) -> None:
    node = disk_cluster.nodes[1]
    path = node.log_dir.absolute() / f"{TOPIC}-0" / SEGMENT
    full = run_tool("storage.dump_log", "--files", str(path)).stdout.splitlines()
    batches = [line for line in full if line.startswith("baseOffset: ")]
    assert len(batches) == RECORDS // 3
    second = int(batches[1].split(" position: ")[1].split()[0])
    size = path.stat().st_size
    status, text, _ = get_followed(
        disk_cluster, node, files_path(node.node_id) + f"/{SEGMENT}?max_bytes={second + 10}"
    )
    assert status == 200, text
    lines = text.splitlines()
    assert lines[:-1] == full[:3]  # Dumping, Log starting offset, the first batch
    assert lines[-1] == (
        f"Stopped at byte {second} of {size}: the next batch ends past "
        f"max_bytes={second + 10}; a larger max_bytes reads on."
    )
    tool = run_tool("storage.dump_log", "--files", str(path), "--max-bytes", str(second + 10))
    assert lines[:-1] == tool.stdout.splitlines()


def test_index_checkpoint_and_metadata_files_read_as_their_text(disk_cluster: Cluster) -> None:
    node = disk_cluster.nodes[2]
    directory = node.log_dir.absolute() / f"{TOPIC}-0"
    for name in ("leader-epoch-checkpoint", "partition.metadata"):
        status, text, _ = get_followed(disk_cluster, node, files_path(3) + f"/{name}")
        assert status == 200 and text == (directory / name).read_text()
    status, text, _ = get_followed(disk_cluster, node, files_path(3) + "/meta.properties")
    assert status == 200 and text == (node.log_dir / "meta.properties").read_text()
    index = directory / "00000000000000000000.index"
    status, text, _ = get_followed(disk_cluster, node, files_path(3) + f"/{index.name}")
    assert status == 200
    assert text == run_tool("storage.dump_log", "--files", str(index)).stdout


@pytest.mark.parametrize(
    "name",
    [
        "..%2Fmeta.properties",
        "..%2F..%2Fcluster.secret",
        "nope.log",
        "cluster.secret",
        "%2Fetc%2Fpasswd",
        "..%2Fdisk-1%2F00000000000000000000.log",
    ],
)
def test_a_name_the_listing_does_not_show_is_404(disk_cluster: Cluster, name: str) -> None:
    node = disk_cluster.nodes[0]
    status, _, body = raw_get(node, files_path(1) + f"/{name}")
    answer = json.loads(body)
    assert (status, answer["error"]) == (404, "NOT_FOUND"), answer
    assert "has no file" in answer["message"]


def test_unknown_partitions_topics_and_brokers_without_the_replica_are_404(
    disk_cluster: Cluster,
) -> None:
    node = disk_cluster.nodes[0]
    status, answer = node.http("GET", files_path(1, partition=7))
    assert (status, answer["error_code"]) == (404, 40402), answer
    assert answer["message"] == f"Partition 7 of topic '{TOPIC}' does not exist."
    status, answer = node.http("GET", files_path(1, topic="nope"))
    assert (status, answer["error_code"]) == (404, 40401), answer
    status, answer = node.http("GET", "/v1/topics/single")
    (holder,) = answer["partitions"][0]["replicas"]
    other = next(n.node_id for n in disk_cluster.nodes if n.node_id != holder)
    status, answer = node.http("GET", files_path(other, topic="single") + f"/{SEGMENT}")
    assert (status, answer["error"]) == (404, "NOT_FOUND"), answer
    assert (
        answer["message"] == f"broker {other} holds no replica of single-0 (its replicas: {holder})"
    )
    status, answer = node.http("GET", files_path(9))
    assert (status, answer["error"]) == (404, "NOT_FOUND"), answer
    assert "broker 9 is not registered" in answer["message"]


def test_bad_query_values_are_400(disk_cluster: Cluster) -> None:
    node = disk_cluster.nodes[0]
    for query in ("max_bytes=0", f"max_bytes={64 * 1024 * 1024 + 1}", "print_data=yes"):
        status, answer = node.http("GET", files_path(1) + f"/{SEGMENT}?{query}")
        assert (status, answer["error"]) == (400, "INVALID_REQUEST"), (query, answer)


def test_head_answers_like_get_without_a_body(disk_cluster: Cluster) -> None:
    node = disk_cluster.nodes[0]
    for path, status, content_type in (
        (files_path(1) + f"/{SEGMENT}", 200, "text/plain; charset=utf-8"),
        (files_path(1) + "/nope.log", 404, "application/json"),
        (files_path(1), 200, "application/json"),
    ):
        connection = HTTPConnection("127.0.0.1", node.http_port, timeout=30)
        try:
            connection.request("HEAD", path)
            response = connection.getresponse()
            assert (response.status, response.read()) == (status, b""), path
            assert response.getheader("Content-Type", "").startswith(content_type), path
        finally:
            connection.close()


def test_a_fenced_broker_is_404(disk_cluster: Cluster) -> None:
    """Last in this module: it stops a node."""
    asked = disk_cluster.nodes[0]
    controller = disk_cluster.controller_id(asked)
    stopped = next(n for n in disk_cluster.nodes[1:] if n.node_id != controller)
    stopped.stop()
    deadline = time.monotonic() + DEADLINE_S
    while True:
        status, view = asked.http("GET", "/v1/cluster")
        fenced = {b["id"] for b in view.get("brokers", []) if b.get("fenced")}
        if stopped.node_id in fenced:
            break
        assert time.monotonic() < deadline, f"broker {stopped.node_id} never fenced: {view}"
        time.sleep(0.2)
    status, answer = asked.http("GET", files_path(stopped.node_id))
    assert (status, answer["error"]) == (404, "NOT_FOUND"), answer
    assert answer["message"] == f"broker {stopped.node_id} is fenced: it cannot describe itself"
