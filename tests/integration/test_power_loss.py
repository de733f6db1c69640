"""Power loss on every node at once: what the nodes fsynced is all that is left, and every
acknowledged topic and record must still be there (issue 4, "Power loss").

The fsync journal comes from a shim loaded into the node processes from outside our code
(``powerloss/sitecustomize.py`` first on PYTHONPATH); ``power_cut.py`` turns it into the
worst case an OS allows after kill -9 of all three nodes. What was cut is written to
``power-cut.txt`` in the test's tmp directory and quoted when a check fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.client import HTTPException
from pathlib import Path

import pytest

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.power_cut import (
    JOURNAL_ENV,
    REPO_ROOT,
    cut_power,
    read_journals,
    shim_env,
)
from tests.integration.test_cluster import assert_same_metadata, create_topic, describe
from tests.integration.test_replication import wait_identical_replicas
from tests.invariants import InvariantViolation, check_replicas, view_of_directory

pytestmark = pytest.mark.timeout(240)

TOPIC = "events"
PARTITIONS = 3
ACKED_RECORDS_BEFORE_CUT = 3000  # "a few thousand", in about ten seconds on two cores
BATCH_RECORDS = 20
PRODUCE_DEADLINE_S = 90.0

Acked = tuple[int, int, str]  # (partition, offset, value)


def test_the_cut_keeps_only_what_fsyncs_made_durable(tmp_path: Path) -> None:
    """The shim and the cut together, on a script whose syncs say exactly what must remain."""
    root = tmp_path / "root"
    root.mkdir()
    script = textwrap.dedent(
        """
        import mmap, os
        def write(path, data, sync):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT)
            os.write(fd, data)
            if sync:
                os.fdatasync(fd)
            os.close(fd)
        def fsync_dir(path):
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        os.mkdir("d")
        fsync_dir(".")
        write("d/synced", b"a" * 100, sync=True)
        with open("d/synced", "ab") as f:
            f.write(b"b" * 50)  # after the sync: lost
        write("d/never", b"c" * 10, sync=False)
        write("d/ck.tmp", b"e" * 20, sync=True)
        os.replace("d/ck.tmp", "d/ck")
        fd = os.open("d/mapped", os.O_RDWR | os.O_CREAT)
        os.ftruncate(fd, 4096)
        m = mmap.mmap(fd, 4096)
        os.close(fd)
        m[:3] = b"xyz"
        m.flush()
        m.close()
        fsync_dir("d")
        write("d/late", b"f" * 5, sync=True)  # its name was never made durable
        os.mkdir("gone")
        write("gone/f", b"g" * 5, sync=True)
        fsync_dir("gone")  # but "gone" itself is not in any fsync of the root
        """
    )
    journal = tmp_path / "journal.jsonl"
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=shim_env(journal),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    actions = cut_power(root, read_journals([journal]))
    sizes = {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}
    assert sizes == {"d/synced": 100, "d/never": 0, "d/ck": 20, "d/mapped": 4096}, actions
    assert not (root / "gone").exists()
    assert (root / "d" / "mapped").read_bytes()[:3] == b"xyz"


def test_the_shim_stays_out_of_a_process_without_a_journal() -> None:
    env = shim_env(Path("/nonexistent"))
    del env[JOURNAL_ENV]
    out = subprocess.run(
        [sys.executable, "-c", "import os, sitecustomize; print(os.fsync.__module__)"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "posix"


class Workload:
    """Producer threads (one per partition, acks=all through the topic endpoint of each node
    in turn) and a thread creating topics, recording only what the cluster acknowledged."""

    def __init__(self, nodes: list[NodeProcess]) -> None:
        self.nodes = nodes
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: list[Acked] = []
        self.topics: list[str] = []
        self.threads = [
            threading.Thread(target=self._produce, args=(p,), daemon=True)
            for p in range(PARTITIONS)
        ] + [threading.Thread(target=self._create_topics, daemon=True)]

    def __enter__(self) -> Workload:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def _produce(self, partition: int) -> None:
        sent = 0
        while not self.stop.is_set():
            node = self.nodes[sent // BATCH_RECORDS % len(self.nodes)]
            values = [f"p{partition}-{sent + i}" for i in range(BATCH_RECORDS)]
            sent += BATCH_RECORDS  # never resent: an acknowledged value is in the log once
            try:
                status, body = http(
                    "POST",
                    f"{node.url}/v1/topics/{TOPIC}/records?acks=all&timeout_ms=10000",
                    {"records": [{"value": v, "partition": partition} for v in values]},
                )
            except (OSError, HTTPException):
                continue  # the nodes are being killed, or were
            if status in (200, 207):
                with self.lock:
                    self.acked.extend(
                        (o["partition"], o["offset"], v)
                        for o, v in zip(body["offsets"], values, strict=True)
                        if "offset" in o
                    )

    def _create_topics(self) -> None:
        number = 0
        while not self.stop.is_set():
            name = f"late-{number}"
            number += 1
            try:
                status, _ = http(
                    "POST",
                    f"{self.nodes[number % len(self.nodes)].url}/v1/topics",
                    {"name": name, "partitions": 1, "replication_factor": 3},
                )
            except (OSError, HTTPException):
                continue
            if status == 201:
                with self.lock:
                    self.topics.append(name)
            self.stop.wait(0.2)


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    journals = tmp_path / "journals"
    journals.mkdir()
    with monkeypatch.context() as m:
        # kraft-storage format runs under the shim too: its fsyncs are what keeps
        # meta.properties and the log directory itself.
        for name, value in shim_env(journals / "format.jsonl").items():
            m.setenv(name, value)
        handle = Cluster.create(tmp_path / "cluster", **{"min.insync.replicas": "2"})
    for node in handle.nodes:
        node.env = shim_env(journals / f"node-{node.node_id}.jsonl")
    try:
        yield handle
    finally:
        handle.stop()


def kill_all_at_once(cluster: Cluster) -> None:
    for node in cluster.nodes:
        assert node.pid is not None
        os.kill(node.pid, signal.SIGKILL)
    for node in cluster.nodes:
        node.stop(signal.SIGKILL)


def leader(cluster: Cluster, topic: str, partition: int) -> tuple[NodeProcess, dict]:
    def known() -> tuple[NodeProcess, dict] | None:
        status, body = http("GET", f"{cluster.nodes[0].url}/v1/topics/{topic}")
        if status != 200 or body["partitions"][partition]["leader"] is None:
            return None
        info = body["partitions"][partition]
        return cluster.node(info["leader"]), info

    return wait_until(f"{topic}-{partition} has a leader", known)


def read_partition(node: NodeProcess, topic: str, partition: int, end: int) -> list[dict]:
    records: list[dict] = []
    offset = 0
    while offset < end:
        status, body = http(
            "GET",
            f"{node.url}/v1/topics/{topic}/partitions/{partition}/records"
            f"?offset={offset}&max_records=5000",
        )
        assert status == 200, body
        if not body["records"]:
            break
        records.extend(body["records"])
        offset = body["next_offset"]
    return records


def test_acknowledged_topics_and_records_survive_a_power_cut_of_every_node(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start()
    create_topic(cluster.nodes[0], TOPIC, partitions=PARTITIONS, replication_factor=3)
    with Workload(cluster.nodes) as workload:
        wait_until(
            f"{ACKED_RECORDS_BEFORE_CUT} records acknowledged",
            lambda: workload.count() >= ACKED_RECORDS_BEFORE_CUT,
            PRODUCE_DEADLINE_S,
        )
        kill_all_at_once(cluster)  # while the producers and the topic creator are busy
    acked, topics = list(workload.acked), [TOPIC, *workload.topics]

    journals = sorted((tmp_path / "journals").glob("*.jsonl"))
    assert [j.name for j in journals] == [
        "format.jsonl",
        "node-1.jsonl",
        "node-2.jsonl",
        "node-3.jsonl",
    ], "the shim did not load into every process"
    syncs = read_journals(journals)
    report = tmp_path / "power-cut.txt"
    actions = [line for node in cluster.nodes for line in cut_power(node.log_dir, syncs)]
    report.write_text("".join(line + "\n" for line in actions))

    def context() -> str:
        return f"\npower cut ({report}):\n" + "\n".join(actions[:60])

    # What the cut left, before any node recovers it: below its own HW (its checkpoint), each
    # replica holds the committed batches, the same on every node.
    for partition in range(PARTITIONS):
        try:
            check_replicas(
                f"{TOPIC}-{partition}",
                [view_of_directory(n.node_id, n.log_dir, TOPIC, partition) for n in cluster.nodes],
            )
        except InvariantViolation as e:
            raise AssertionError(f"{e}{context()}") from None

    try:
        cluster.start()
    except AssertionError as e:
        raise AssertionError(
            f"the cluster did not restart after the power cut: {e}{context()}"
        ) from None
    assert_same_metadata(cluster.nodes)

    for name in topics:
        status, body = http("GET", f"{cluster.nodes[0].url}/v1/topics/{name}")
        assert status == 200, f"acknowledged topic {name} lost: {body}{context()}"

    last_hw: dict[int, int] = {}  # by partition, for the failure message
    for partition in range(PARTITIONS):
        mine = sorted((o, v) for p, o, v in acked if p == partition)
        needed = mine[-1][0] + 1 if mine else 0

        def caught_up(partition: int = partition, needed: int = needed) -> NodeProcess | None:
            node, info = leader(cluster, TOPIC, partition)
            last_hw[partition] = info["high_watermark"]
            return node if info["high_watermark"] >= needed else None

        try:
            node = wait_until(f"{TOPIC}-{partition}'s HW reaches {needed}", caught_up, 30.0)
        except AssertionError:
            raise AssertionError(
                f"{TOPIC}-{partition}: records acknowledged up to offset {needed - 1}, but the "
                f"high watermark stays at {last_hw.get(partition)} after the restart{context()}"
            ) from None
        records = read_partition(node, TOPIC, partition, needed)
        offsets = [r["offset"] for r in records]
        assert offsets == list(range(len(offsets))), f"offsets not dense from 0{context()}"
        lost = [(o, v) for o, v in mine if o >= len(records) or records[o]["value"] != v]
        assert not lost, f"{TOPIC}-{partition} lost {len(lost)} acknowledged records{context()}"
        values = [r["value"] for r in records]
        assert len(values) == len(set(values)), f"a value stored twice{context()}"

        replicas = [
            cluster.node(r) for r in describe(node, TOPIC)["partitions"][partition]["replicas"]
        ]
        wait_identical_replicas(replicas, TOPIC, partition)
    assert len(acked) >= ACKED_RECORDS_BEFORE_CUT


def produce_acked(node: NodeProcess, topic: str, count: int) -> list[str]:
    """Produces ``count`` records to partition 0 with acks=all through the topic endpoint
    (routed to the leader), 50 per request; returns the values, all of them acknowledged.
    A 503 (no leader yet, or an ISR too small) stored nothing, so it is retried."""
    values = [f"{topic}-{i}" for i in range(count)]
    for start in range(0, count, 50):
        chunk = {"records": [{"value": v, "partition": 0} for v in values[start : start + 50]]}

        def attempt(chunk: dict = chunk) -> tuple[int, dict] | None:
            status, body = http("POST", f"{node.url}/v1/topics/{topic}/records?acks=all", chunk)
            return None if status == 503 else (status, body)

        status, body = wait_until(f"records produced to {topic}", attempt)
        assert status == 200, body
    return values


def test_a_topic_that_relaxes_flushing_may_lose_acknowledged_records_to_a_power_cut(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The risk the README states for flush.messages above 1: acknowledged records that no
    fsync covered yet are in page caches only, and a power cut of every node takes them. The
    topic with our default keeps every one; the partitions come back consistent and writable."""
    cluster.start()
    relaxed = {"flush.messages": str(2**63 - 1)}  # Kafka's default: never force an fsync
    for name, configs in (("durable", {}), ("relaxed", relaxed)):
        create_topic(cluster.nodes[0], name, partitions=1, replication_factor=3, configs=configs)
    acked = {name: produce_acked(cluster.nodes[0], name, 200) for name in ("durable", "relaxed")}
    kill_all_at_once(cluster)
    syncs = read_journals(sorted((tmp_path / "journals").glob("*.jsonl")))
    actions = [line for node in cluster.nodes for line in cut_power(node.log_dir, syncs)]
    context = "\npower cut:\n" + "\n".join(actions[:60])
    cluster.start()

    def durable_leader() -> NodeProcess | None:
        node, info = leader(cluster, "durable", 0)
        return node if info["high_watermark"] >= 200 else None

    node = wait_until("the durable topic's HW is back", durable_leader)
    values = [r["value"] for r in read_partition(node, "durable", 0, 200)]
    assert values == acked["durable"], f"the durable topic lost records{context}"

    after = produce_acked(cluster.nodes[0], "relaxed", 50)  # the HW then covers all before
    node, info = leader(cluster, "relaxed", 0)
    records = read_partition(node, "relaxed", 0, 10**9)
    assert [r["offset"] for r in records] == list(range(len(records))), "offsets not dense"
    values = [r["value"] for r in records]
    kept = values[:-50]
    assert values[-50:] == after
    assert kept == acked["relaxed"][: len(kept)], f"not a prefix of what was acknowledged{context}"
    assert len(kept) < 200, f"nothing was lost, so the topic did not relax flushing{context}"
    replicas = [cluster.node(r) for r in info["replicas"]]
    wait_identical_replicas(replicas, "relaxed", invariants=False)
