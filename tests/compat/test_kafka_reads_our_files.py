"""Kafka 4.4.0 reads our files (issue 18, item 4), and cannot tell them from its own.

One workload runs twice, once on a three-node cluster of ours and once on a one-node Kafka
4.4.0, each through its own console producer (Kafka's LineMessageReader properties: keys and
headers parsed from the lines): ``plain`` (three partitions, keyed records with headers from
three producer runs), ``rolled`` (one record a batch, ``--sync``, rolled every 20,000 bytes on
ours: several segments; Kafka refuses a ``segment.bytes`` under 1 MiB, so its copy has one),
``table`` (compacted; a second write rolls its segment, and the cleaner cleans the first) and
``packed`` (one partition, four writes with ``--compression-codec`` gzip, snappy, lz4 and zstd:
on ours our Python producer compresses them with storage/compression.py, on Kafka's Java's
codecs). Both stop cleanly. Then:

(a) Kafka's DumpLogSegments reads every segment and index file of every node of ours (every
    batch's CRC, every record, the index sanity check a broker makes at start, every index
    entry against its batch) without a complaint.
(b) A Kafka broker started over a copy of node 1's partition directories (in place of its own
    for the same topics, its clean shutdown file kept: it trusts our recovery points and index
    files) serves every partition, and Kafka's console consumer prints exactly what
    ``kraft-console-consumer`` prints for it from our cluster, started again (a start that
    finds ``.kafka_cleanshutdown``). Kafka leaves our files as they are; and when it recovers
    them itself (its clean shutdown file gone, recovery points 0: every segment re-read, every
    index rebuilt), the index files it writes are ours, byte for byte.
(c) Node 1's log directory holds what the Kafka broker wrote for the same workload: the same
    names (but ``cluster.secret``, ours only, and Kafka's ``*.deleted`` files, which its
    asynchronous deletion had not removed yet), every index file trimmed to its entries with
    the segment's largest timestamp last in its time index, ``partition.metadata`` of 43
    bytes, the same recovery points and high watermarks, ``log-start-offset-checkpoint``
    without entries, ``cleaner-offset-checkpoint`` naming the cleaned partition, and
    ``.kafka_cleanshutdown`` in Kafka's JSON. ``packed-0`` holds batches of the four codecs in
    the same order on every node of ours and on Kafka's.
(d) An unclean stop: node 3 killed (SIGKILL) while its active segments' index files are
    preallocated, written to while it is down, and started again, recovers, and after a clean
    stop its files are node 1's, byte for byte (but for the time-index entry its recovery
    appends, as Kafka's LogSegment.recover does), and Kafka's DumpLogSegments accepts them.

Skipped, with the reason, only when Java or Kafka's jars (``scripts/setup`` fetches them) are
missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.bench import kafka_check
from scripts.bench.kafka_dist import KafkaDist
from scripts.bench.kafka_side import KafkaSide
from scripts.node_process import Cluster, NodeProcess, http, run_tool, wait_until
from storage.batch import iter_batches
from storage.checkpoints import OffsetCheckpointFile
from storage.compression import codec_name
from storage.index import OFFSET_ENTRY_SIZE, TIME_ENTRY_SIZE, TimeIndex, read_used_entries
from storage.limits import INDEX_PREALLOCATE_BYTES

# Waiting on a cluster (a clean, a replica catching up): generous, as everywhere.
DEADLINE_S = 60.0
TOOL_TIMEOUT_S = 120.0
MARKER = ".kafka_cleanshutdown"
RECOVERY = "recovery-point-offset-checkpoint"
HW = "replication-offset-checkpoint"
LOG_START = "log-start-offset-checkpoint"
CLEANER = "cleaner-offset-checkpoint"
# topic -> (partitions, configs); Kafka's copy gets segment.bytes of at least 1 MiB.
TOPICS: dict[str, tuple[int, dict[str, str]]] = {
    "plain": (3, {}),
    "rolled": (1, {"segment.bytes": "20000"}),
    "table": (
        1,
        {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01"},
    ),
    "packed": (1, {}),
}
CODECS = ("gzip", "snappy", "lz4", "zstd")
PARTITIONS = [(t, p) for t, (count, _) in TOPICS.items() for p in range(count)]
READER = ["--property", "parse.key=true", "--property", "parse.headers=true"]
FORMATTER = [
    arg
    for name in ("print.timestamp", "print.partition", "print.offset", "print.headers", "print.key")
    for arg in ("--formatter-property", f"{name}=true")
]
KAFKA_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
KAFKA_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"


@dataclass(frozen=True)
class Write:
    """One console producer run: its lines (``headers<TAB>key<TAB>value``), whether each
    waits for its acknowledgement (``--sync``: a batch per record), and a pause after it."""

    topic: str
    lines: tuple[str, ...]
    sync: bool = False
    pause_s: float = 0.0
    codec: str | None = None  # --compression-codec


def workload(round_: int = 0) -> list[Write]:
    """The writes of the workload (``round_`` 1 for (d)'s later ones: other values)."""
    writes = [
        Write(
            "plain",
            tuple(
                f"source:sensor-{producer},seq:{i}\tstation-{i % 17}\t"
                f'{{"temp_c": {i % 40}, "producer": {producer}, "round": {round_}}}'
                for i in range(200)
            ),
        )
        for producer in range(3)
    ]
    writes.append(
        Write(
            "rolled",
            tuple(f"n:{i}\tk{i % 29}\t{'x' * 180} {round_} {i}" for i in range(300)),
            sync=True,
        )
    )
    if round_ == 0:
        writes += [
            # The first write's records span well under segment.ms (100 ms) of timestamps; the
            # second, after a pause, rolls the segment, so the first can be cleaned.
            # Keys 0-19 come back at the end: the clean leaves a gap (offsets 400-479).
            Write(
                "table",
                tuple(f"v:1\tkey-{i % (50 if i < 400 else 20)}\tvalue {i}" for i in range(500)),
                False,
                0.5,
            ),
            Write("table", tuple(f"v:2\tkey-{i % 10}\tlater {i}" for i in range(10))),
        ]
        writes += [
            Write(
                "packed",
                tuple(
                    f"codec:{codec}\tk{i % 13}\t{codec} record {i} " + "of compressible text " * 3
                    for i in range(50)
                ),
                codec=codec,
            )
            for codec in CODECS
        ]
    return writes


def flags(write: Write) -> list[str]:
    """The console producer flags of a write, the same for both producers."""
    # --timeout is linger.ms: a record that waits for its answer is sent at once.
    sync = ["--sync", "--timeout", "0"] if write.sync else []
    return sync + ([] if write.codec is None else ["--compression-codec", write.codec])


def produce_ours(node: NodeProcess, write: Write) -> None:
    out = run_tool(
        "client.tools.console_producer",
        "--bootstrap-server", node.bootstrap, "--topic", write.topic, *READER, *flags(write),
        input="".join(f"{line}\n" for line in write.lines),
        timeout=TOOL_TIMEOUT_S,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    time.sleep(write.pause_s)


def produce_kafka(side: KafkaSide, write: Write) -> None:
    command = side.java(
        KAFKA_PRODUCER,
        "--bootstrap-server", side.bootstrap, "--topic", write.topic, *READER, *flags(write),
    )  # fmt: skip
    lines = "".join(f"{line}\n" for line in write.lines)
    out = subprocess.run(
        command, input=lines, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    time.sleep(write.pause_s)


def cleaned(log_dir: Path) -> bool:
    """Whether the cleaner has cleaned ``table-0`` in this log directory."""
    return ("table", 0) in OffsetCheckpointFile(log_dir / CLEANER).read()


def partition_dirs(log_dir: Path) -> list[Path]:
    return [log_dir / f"{t}-{p}" for t, p in PARTITIONS]


def segment_bases(directory: Path) -> list[str]:
    return [p.stem for p in kafka_check.segment_files(directory, ".log")]


def settled(node: NodeProcess) -> bool:
    """Whether every replica of the workload's partitions has the leader's log and knows its
    high watermark is there (a follower learns it from the leader's next answer)."""
    for topic in TOPICS:
        status, body = http("GET", f"{node.url}/v1/topics/{topic}/replicas", timeout=5)
        if status != 200:
            return False
        for partition in body["partitions"]:
            ends = {
                (r["log_end_offset"], r["high_watermark"], r["error"])
                for r in partition["replica_states"]
            }
            if len(partition["replica_states"]) != 3 or ends != {
                (partition["high_watermark"], partition["high_watermark"], None)
            }:
                return False
    return True


def wait_settled(node: NodeProcess) -> None:
    """Waits until :func:`settled`: then a clean stop leaves the same checkpoints on every
    node, as a one-node Kafka's are."""
    wait_until(
        "every replica at its leader's end and high watermark", lambda: settled(node), DEADLINE_S
    )


@dataclass
class Run:
    """What the fixture leaves: our cluster and the Kafka node (both stopped, after the
    workload), and a copy of the Kafka node's log directory as it stopped."""

    ours: Cluster
    kafka: KafkaSide
    kafka_files: Path


@pytest.fixture(scope="module")
def run(kafka: KafkaDist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("kafka-reads-our-files")
    # The cleaner looks every 200 ms (Kafka's log.cleaner.backoff.ms; 15 s by default).
    properties: dict[str, Any] = {"min.insync.replicas": "2", "log.cleaner.backoff.ms": "200"}
    ours = Cluster.create(root / "ours", 3, **properties)
    side = KafkaSide(kafka, root / "kafka", count=1, extra={"log.cleaner.backoff.ms": "200"})
    try:
        ours.start()
        bootstrap = ours.nodes[0].bootstrap
        for topic, (count, configs) in TOPICS.items():
            settings = [a for k, v in configs.items() for a in ("--config", f"{k}={v}")]
            out = run_tool(
                "client.tools.topics",
                "--bootstrap-server", bootstrap, "--create", "--topic", topic,
                "--partitions", str(count), "--replication-factor", "3", *settings,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
        for write in workload():
            produce_ours(ours.nodes[0], write)
        wait_until(
            "every replica of table-0 cleaned",
            lambda: all(cleaned(n.log_dir) for n in ours.nodes),
            DEADLINE_S,
        )
        wait_settled(ours.nodes[0])
        ours.stop()
        for node in ours.nodes:
            assert (node.log_dir / MARKER).exists(), f"node {node.node_id} stopped uncleanly"

        side.prepare()
        side.launch()
        side.wait_ready()
        for topic, (count, configs) in TOPICS.items():
            raised = dict(configs)
            if "segment.bytes" in raised:
                raised["segment.bytes"] = str(kafka_check.KAFKA_SEGMENT_BYTES_MIN)
            side.create_topic(topic, count, raised)
        for write in workload():
            produce_kafka(side, write)
        wait_until("Kafka's table-0 cleaned", lambda: cleaned(side.data_dir(1)), DEADLINE_S)
        side.stop()
        copy = root / "kafka-files"
        shutil.copytree(side.data_dir(1), copy)
        yield Run(ours, side, copy)
    finally:
        ours.stop()
        side.stop()


# -- (a) -------------------------------------------------------------------------------------


def test_kafkas_dump_log_segments_accepts_every_file_of_every_node(
    run: Run, tmp_path: Path
) -> None:
    directories = [d for node in run.ours.nodes for d in partition_dirs(node.log_dir)]
    found = kafka_check.dump_log_dirs(KafkaSide(run.kafka.dist, tmp_path / "dump"), directories)
    assert found.ok, "\n".join(found.errors[:20])
    segments = sum(len(segment_bases(d)) for d in directories)
    assert found.files == segments
    for node in run.ours.nodes:
        assert len(segment_bases(node.log_dir / "rolled-0")) >= 3
        assert len(segment_bases(node.log_dir / "table-0")) == 2
    # An .index and a .timeindex each, but for an offset index without entries (a segment
    # of less than index.interval.bytes), which DumpLogSegments calls empty instead.
    empty = sum(1 for d in directories for p in d.glob("*.index") if p.stat().st_size == 0)
    assert found.sane_indexes == 2 * segments - empty
    assert found.records > 0 and found.gaps > 0  # the cleaned table has gaps


# -- (c) -------------------------------------------------------------------------------------


def index_findings(directory: Path) -> list[str]:
    """What is not as a cleanly stopped broker leaves a partition's index files: each trimmed
    to its entries (no unused, all-zero entry in it), and each time index ending with its
    segment's largest timestamp and the offset of the batch where it first appeared."""
    findings = []
    for base in segment_bases(directory):
        for suffix, size in ((".index", OFFSET_ENTRY_SIZE), (".timeindex", TIME_ENTRY_SIZE)):
            path = directory / f"{base}{suffix}"
            with open(path, "rb") as f:
                length = os.fstat(f.fileno()).st_size
                if length % size or len(read_used_entries(f.fileno(), size, length)) != length:
                    findings.append(f"{path.name} is not trimmed to its entries ({length} bytes)")
        largest = (-1, -1)
        for _pos, header in iter_batches((directory / f"{base}.log").read_bytes()):
            if header.max_timestamp > largest[0]:
                largest = (header.max_timestamp, header.last_offset)
        data = (directory / f"{base}.timeindex").read_bytes()
        last = TimeIndex.parse(int(base), data).last_entry() or (-1, -1)
        if last != largest:
            findings.append(
                f"{base}.timeindex ends with {last}, its segment's largest is {largest}"
            )
    return findings


def top_level(log_dir: Path) -> set[str]:
    return {p.name for p in log_dir.iterdir()}


def checkpoint(log_dir: Path, name: str) -> dict[tuple[str, int], int]:
    return OffsetCheckpointFile(log_dir / name).read()


def test_a_log_directory_of_ours_holds_what_kafka_writes_for_the_same_workload(run: Run) -> None:
    ours, theirs = run.ours.node(1).log_dir, run.kafka_files
    # The same names: ours has the cluster secret besides (the Raft links' and node-to-node
    # calls' proof), and __cluster_metadata-0 holds our Raft journal, not Kafka's segments.
    assert top_level(ours) - {"cluster.secret"} == top_level(theirs)
    assert {f"{t}-{p}" for t, p in PARTITIONS} <= top_level(theirs)
    for name in (RECOVERY, HW):
        assert checkpoint(ours, name) == checkpoint(theirs, name), name
    assert (ours / LOG_START).read_bytes() == (theirs / LOG_START).read_bytes() == b"0\n0\n"
    for log_dir in (ours, theirs):
        assert set(checkpoint(log_dir, CLEANER)) == {("table", 0)}
        assert (
            0 < checkpoint(log_dir, CLEANER)[("table", 0)] <= checkpoint(log_dir, HW)[("table", 0)]
        )
    markers = [json.loads((d / MARKER).read_bytes()) for d in (ours, theirs)]
    assert [sorted(m) for m in markers] == [["brokerEpoch", "version"]] * 2
    assert [m["version"] for m in markers] == [0, 0]
    assert not (ours / MARKER).read_bytes().endswith(b"\n")
    properties = [
        {
            line.split("=")[0]
            for line in (d / "meta.properties").read_text().splitlines()
            if not line.startswith("#")
        }
        for d in (ours, theirs)
    ]
    assert properties[0] == properties[1]
    for topic, partition in PARTITIONS:
        mine, kafkas = ours / f"{topic}-{partition}", theirs / f"{topic}-{partition}"
        names = [{p.name for p in d.iterdir() if not p.name[:20].isdigit()} for d in (mine, kafkas)]
        assert names[0] == names[1] == {"leader-epoch-checkpoint", "partition.metadata"}
        for directory in (mine, kafkas):
            segment_files = {p.name for p in directory.iterdir() if p.name[:20].isdigit()}
            kept = {n for n in segment_files if not n.endswith(".deleted")}
            bases = segment_bases(directory)
            expected = {f"{b}{s}" for b in bases for s in (".log", ".index", ".timeindex")}
            end = f"{checkpoint(directory.parent, HW)[(topic, partition)]:020d}.snapshot"
            assert expected | {end} <= kept, directory
            assert all(n in expected or n.endswith(".snapshot") for n in kept), kept
            metadata = (directory / "partition.metadata").read_bytes()
            assert len(metadata) == 43 and metadata.startswith(b"version: 0\ntopic_id: ")
            assert index_findings(directory) == [], directory


def codec_runs(directory: Path) -> list[str]:
    """The codec names of a partition's batches, oldest first, a run of one codec once."""
    runs: list[str] = []
    for base in segment_bases(directory):
        for _pos, header in iter_batches((directory / f"{base}.log").read_bytes()):
            name = codec_name(header.compression)
            if not runs or runs[-1] != name:
                runs.append(name)
    return runs


def test_compressed_batches_are_stored_in_each_producers_codec_as_kafka_stores_them(
    run: Run,
) -> None:
    for log_dir in [n.log_dir for n in run.ours.nodes] + [run.kafka_files]:
        assert codec_runs(log_dir / "packed-0") == list(CODECS), log_dir
        assert record_count(log_dir / "packed-0") == 50 * len(CODECS), log_dir


# -- (b) -------------------------------------------------------------------------------------


def kafka_console_consumer(side: KafkaSide, topic: str, partition: int, count: int) -> str:
    command = side.java(
        KAFKA_CONSUMER,
        "--bootstrap-server", side.bootstrap, "--topic", topic, "--partition", str(partition),
        "--offset", "earliest", "--max-messages", str(count), "--timeout-ms", "30000",
        *FORMATTER,
    )  # fmt: skip
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def our_console_consumer(node: NodeProcess, topic: str, partition: int, count: int) -> str:
    out = run_tool(
        "client.tools.console_consumer",
        "--bootstrap-server", node.bootstrap, "--topic", topic, "--partition", str(partition),
        "--offset", "earliest", "--max-messages", str(count), "--timeout-ms", "30000",
        *FORMATTER,
        timeout=TOOL_TIMEOUT_S,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def record_count(directory: Path) -> int:
    return sum(1 for _ in kafka_check.log_records(directory))


def node_log_count(node: NodeProcess, text: str) -> int:
    return node.log_file.read_text(errors="replace").count(text)


def served_files(directory: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in kafka_check.segment_files(directory, ".log", ".index", ".timeindex")
    }


def restart_kafka(side: KafkaSide) -> None:
    side.processes.clear()
    side.launch()
    side.wait_ready()


def test_a_kafka_broker_serves_our_files_as_kraft_console_consumer_reads_them(
    run: Run, tmp_path: Path
) -> None:
    served = tmp_path / "node-1"
    shutil.copytree(run.ours.node(1).log_dir, served)
    side = run.kafka
    data = side.data_dir(1)
    with open(data.parent / "server.properties", "a") as f:
        f.write("log.cleaner.enable=false\n")  # nothing but loading may touch the files
    for topic, partition in PARTITIONS:
        kafka_check.transplant(served / f"{topic}-{partition}", data / f"{topic}-{partition}")
    for name in (RECOVERY, HW):
        kafka_check.set_checkpoint_entries(data, name, checkpoint(served, name))
    assert (data / MARKER).exists()  # Kafka stopped cleanly: it trusts what it finds
    counts = {(t, p): record_count(served / f"{t}-{p}") for t, p in PARTITIONS}
    assert all(counts.values())

    restart_kafka(side)
    kafka_lines = {(t, p): kafka_console_consumer(side, t, p, n) for (t, p), n in counts.items()}
    side.stop()
    skipped = f"Skipping recovery of {len(PARTITIONS)} logs from {data} since clean shutdown"
    assert skipped in side.server_log(1).read_text(errors="replace")
    for topic, partition in PARTITIONS:
        mine, theirs = served / f"{topic}-{partition}", data / f"{topic}-{partition}"
        assert served_files(theirs) == served_files(mine), f"Kafka changed {topic}-{partition}"

    # Kafka's own recovery of every segment: the index files it rebuilds are ours.
    (data / MARKER).unlink()
    kafka_check.set_checkpoint_entries(data, RECOVERY, dict.fromkeys(PARTITIONS, 0))
    restart_kafka(side)
    recovered_lines = {
        (t, p): kafka_console_consumer(side, t, p, n) for (t, p), n in counts.items()
    }
    side.stop()
    recovered = [
        line
        for line in side.server_log(1).read_text(errors="replace").splitlines()
        if "Recovering unflushed segment" in line
        and any(f"partition={t}-{p}," in line for t, p in PARTITIONS)
    ]
    assert len(recovered) == sum(len(segment_bases(served / f"{t}-{p}")) for t, p in PARTITIONS)
    for topic, partition in PARTITIONS:
        mine, theirs = served / f"{topic}-{partition}", data / f"{topic}-{partition}"
        assert served_files(theirs) == served_files(mine), f"Kafka rebuilt {topic}-{partition}"

    before = [node_log_count(n, "clean shutdown file found") for n in run.ours.nodes]
    run.ours.start()
    try:
        after = [node_log_count(n, "clean shutdown file found") for n in run.ours.nodes]
        assert after == [b + 1 for b in before]  # every node trusted its files
        our_lines = {
            (t, p): our_console_consumer(run.ours.node(1), t, p, n) for (t, p), n in counts.items()
        }
    finally:
        run.ours.stop()
    for key, lines in our_lines.items():
        assert len(lines.splitlines()) == counts[key]
        # Every field printed: timestamp, partition, offset, headers, key (and value).
        first = lines.splitlines()[0].split("\t")
        assert first[0].startswith("CreateTime:") and first[2].startswith("Offset:"), first
        assert first[3].startswith(("source:", "n:", "v:", "codec:")), first
        assert kafka_lines[key] == lines, key
        assert recovered_lines[key] == lines, key


# -- (d) -------------------------------------------------------------------------------------


def partition_info(node: NodeProcess, topic: str) -> list[dict[str, Any]]:
    status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=5)
    assert status == 200, body
    partitions: list[dict[str, Any]] = body["partitions"]
    return partitions


def all_in_sync(node: NodeProcess, topics: Sequence[str]) -> bool:
    return all(len(p["isr"]) == 3 for t in topics for p in partition_info(node, t))


def test_an_unclean_stop_recovers_to_the_files_of_a_replica_that_never_stopped(
    run: Run, tmp_path: Path
) -> None:
    ours = run.ours
    first, victim = ours.node(1), ours.node(3)
    ours.start()
    try:
        writes = workload(1)
        produce_ours(first, writes[0])
        wait_until("node 3 in every ISR", lambda: all_in_sync(first, list(TOPICS)), DEADLINE_S)
        victim.kill()
        # What it leaves: no clean shutdown file (removed at its start), and the active
        # segments' index files at their preallocated length.
        assert not (victim.log_dir / MARKER).exists()
        active = (
            victim.log_dir / "plain-0" / f"{segment_bases(victim.log_dir / 'plain-0')[-1]}.index"
        )
        assert active.stat().st_size == INDEX_PREALLOCATE_BYTES
        for write in writes[1:]:
            produce_ours(first, write)
        before = node_log_count(victim, "clean shutdown file found")
        victim.start()
        assert node_log_count(victim, "clean shutdown file found") == before  # it recovered
        wait_until("node 3 back in every ISR", lambda: all_in_sync(first, list(TOPICS)), DEADLINE_S)
        wait_settled(first)
    finally:
        ours.stop()
    for node in ours.nodes:
        assert (node.log_dir / MARKER).exists()
    for topic, partition in PARTITIONS:
        name = f"{topic}-{partition}"
        mine, reference = victim.log_dir / name, first.log_dir / name
        assert served_files(mine).keys() == served_files(reference).keys(), name
        for base in segment_bases(reference):
            for suffix in (".log", ".index"):
                path = f"{base}{suffix}"
                assert (mine / path).read_bytes() == (reference / path).read_bytes(), path
            # The time index too, but for one entry: recovery ends the recovered segment's
            # time index with its largest timestamp so far, as Kafka's LogSegment.recover does.
            entries = [
                TimeIndex.parse(int(base), (d / f"{base}.timeindex").read_bytes()).entries()
                for d in (mine, reference)
            ]
            assert set(entries[1]) <= set(entries[0]), f"{name}/{base}"
            assert len(entries[0]) - len(entries[1]) <= 1, f"{name}/{base}"
            assert entries[0][-1:] == entries[1][-1:], f"{name}/{base}"
    directories = [d for node in (first, victim) for d in partition_dirs(node.log_dir)]
    found = kafka_check.dump_log_dirs(KafkaSide(run.kafka.dist, tmp_path / "dump"), directories)
    assert found.ok, "\n".join(found.errors[:20])
