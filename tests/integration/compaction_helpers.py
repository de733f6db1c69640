"""Helpers of the compaction tests with real nodes: keyed writes that remember what was
acknowledged, the three ways to read a partition (JSON, Kafka batches, the console consumer),
the cleaner's position on a node, and what a compacted log must hold."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.protocol import BATCH_MEDIA_TYPE
from scripts.node_process import Cluster, NodeProcess, http, run_tool, wait_until
from storage.batch import decode_batch, iter_batches
from storage.checkpoints import OffsetCheckpointFile
from storage.cleaner import CLEANER_CHECKPOINT_FILE

# One produce request is one batch: a handful of records each, so that segments hold many
# batches and a clean has whole batches to drop and batches to rebuild.
RECORDS_PER_REQUEST = 10


@dataclass(frozen=True)
class Written:
    """An acknowledged record: its offset, key and value (None: a tombstone)."""

    offset: int
    key: str
    value: str | None


def produce_keyed(
    node: NodeProcess, topic: str, records: Sequence[tuple[str, str | None]], partition: int = 0
) -> list[Written]:
    """acks=all writes of (key, value) pairs to one partition through any node, a request per
    RECORDS_PER_REQUEST records, retried while leadership moves; returns what was acknowledged,
    with the offsets the answers gave."""
    acked: list[Written] = []
    for i in range(0, len(records), RECORDS_PER_REQUEST):
        chunk = records[i : i + RECORDS_PER_REQUEST]
        body = {"records": [{"key": k, "value": v, "partition": partition} for k, v in chunk]}

        def attempt(body: dict[str, Any] = body) -> list[int] | None:
            status, answer = http(
                "POST", f"{node.url}/v1/topics/{topic}/records?acks=all&timeout_ms=10000", body
            )
            if status == 200:
                return [o["offset"] for o in answer["offsets"]]
            # The leader not known yet, or moving (the outcome of a 503 is unknown: a retry may
            # write twice, which only adds an older version of the same key below the other).
            assert status in (404, 503), answer
            return None

        offsets = wait_until(f"records produced to {topic}-{partition}", attempt)
        acked += [Written(o, k, v) for o, (k, v) in zip(offsets, chunk, strict=True)]
    return acked


def latest(written: Iterable[Written]) -> dict[str, Written]:
    """Each key's last acknowledged record."""
    out: dict[str, Written] = {}
    for w in sorted(written, key=lambda w: w.offset):
        out[w.key] = w
    return out


def partition_info(node: NodeProcess, topic: str, partition: int = 0) -> dict[str, Any] | None:
    try:
        status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=5)
    except OSError:
        return None
    return body["partitions"][partition] if status == 200 else None


def wait_leader(cluster: Cluster, topic: str, *, not_: Iterable[int] = ()) -> NodeProcess:
    """The partition's leader once every running node reports the same one (not in ``not_``)
    and the leader itself knows it."""
    excluded = set(not_)

    def agreed() -> int | None:
        infos = [partition_info(n, topic) for n in cluster.running()]
        if None in infos:
            return None
        leaders = {i["leader"] for i in infos if i is not None}
        if len(leaders) != 1:
            return None
        leader = leaders.pop()
        return None if leader is None or leader in excluded else int(leader)

    return cluster.node(wait_until(f"{topic}: one leader known to every node", agreed))


def wait_isr(via: NodeProcess, topic: str, size: int) -> None:
    wait_until(
        f"{topic}: {size} replicas in the ISR",
        lambda: (i := partition_info(via, topic)) is not None and len(i["isr"]) == size,
    )


def wait_high_watermark(node: NodeProcess, topic: str, offset: int, partition: int = 0) -> None:
    """Waits until the node (a leader) exposes records up to ``offset``."""
    wait_until(
        f"{topic}-{partition}: node {node.node_id}'s HW reaches {offset}",
        lambda: (
            (i := partition_info(node, topic, partition)) is not None
            and i["high_watermark"] is not None
            and i["high_watermark"] >= offset
        ),
    )


def cleaner_checkpoint(node: NodeProcess, topic: str, partition: int = 0) -> int | None:
    """The node's cleaner-offset-checkpoint entry for the partition (None: never cleaned)."""
    path = node.log_dir / CLEANER_CHECKPOINT_FILE
    if not path.exists():
        return None
    return OffsetCheckpointFile(path).read().get((topic, partition))


def active_base(node: NodeProcess, topic: str, partition: int = 0) -> int:
    """The base offset of the replica's active segment (its last ``.log`` file)."""
    directory = node.log_dir / f"{topic}-{partition}"
    return max(int(p.stem) for p in directory.glob("*.log"))


def wait_cleaned_up_to_active(
    node: NodeProcess, topic: str, partition: int = 0, *, above: int = 0
) -> int:
    """Waits until the node's cleaner has cleaned everything below its active segment (which
    is past ``above``), and returns that offset: nothing more is cleanable until new writes."""

    seen: list[tuple[int, int | None]] = []

    def done() -> int | None:
        base = active_base(node, topic, partition)
        checkpoint = cleaner_checkpoint(node, topic, partition)
        seen[:] = [(base, checkpoint)]
        return base if base > above and checkpoint == base else None

    try:
        return int(wait_until(f"node {node.node_id} cleaned {topic}-{partition}", done))
    except AssertionError as e:
        lines = [line for line in node.log_tail(400).splitlines() if "clean" in line]
        raise AssertionError(
            f"{e}: active segment at {seen[0][0]} (must be past {above}), cleaner checkpoint "
            f"{seen[0][1]}; the node's log about the cleaner:\n" + "\n".join(lines[-15:])
        ) from None


def segment_bytes_on_disk(node: NodeProcess, topic: str, partition: int = 0) -> int:
    directory = node.log_dir / f"{topic}-{partition}"
    return sum(p.stat().st_size for p in directory.glob("*.log"))


# -- reading ----------------------------------------------------------------------------------

# (offset, key, value) as a reader returns them; value None is a tombstone.
Read = tuple[int, str | None, str | None]


def read_json(node: NodeProcess, topic: str, partition: int = 0) -> list[Read]:
    """Every record below the high watermark through the JSON fetch, page by page (small pages:
    each one starts inside or after a gap the one before ended in)."""
    out: list[Read] = []
    offset: int | str = "earliest"
    while True:
        status, body = http(
            "GET",
            f"{node.url}/v1/topics/{topic}/partitions/{partition}/records"
            f"?offset={offset}&max_records=37",
        )
        assert status == 200, body
        out += [(r["offset"], r["key"], r["value"]) for r in body["records"]]
        if body["next_offset"] >= body["high_watermark"]:
            return out
        assert offset == "earliest" or body["next_offset"] > int(offset), body
        offset = body["next_offset"]


def read_batches(node: NodeProcess, topic: str, partition: int = 0) -> list[Read]:
    """Every record below the high watermark through the binary fetch (the stored batches)."""
    out: list[Read] = []
    offset = 0
    while True:
        request = urllib.request.Request(
            f"{node.url}/v1/topics/{topic}/partitions/{partition}/records"
            f"?offset={offset}&max_bytes=4096",
            headers={"Accept": BATCH_MEDIA_TYPE},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read()
            high_watermark = int(response.headers["Kafka-High-Watermark"])
            next_offset = int(response.headers["Kafka-Next-Offset"])
        for pos, _ in iter_batches(data):
            _, records = decode_batch(data, pos)
            # The first batch comes whole: records below the offset asked are read already.
            out += [
                (
                    r.offset,
                    None if r.key is None else r.key.decode(),
                    None if r.value is None else r.value.decode(),
                )
                for r in records
                if r.offset >= offset
            ]
        if next_offset >= high_watermark:
            return out
        assert next_offset > offset, f"no progress at offset {offset}"
        offset = next_offset


def read_console(node: NodeProcess, topic: str, count: int) -> list[Read]:
    """``count`` records through kraft-console-consumer (Kafka's consumer protocol)."""
    out = run_tool(
        "client.tools.console_consumer",
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        str(count),
        "--property",
        "print.offset=true",
        "--property",
        "print.key=true",
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    records: list[Read] = []
    for line in out.stdout.splitlines():
        offset, key, value = line.split("\t")
        records.append(
            (int(offset.removeprefix("Offset:")), key, None if value == "null" else value)
        )
    return records


def check_compacted_read(
    read: Sequence[Read],
    written: Sequence[Written],
    *,
    cleaned_below: int,
    tombstones_kept: bool,
) -> None:
    """What a reader of a compacted partition must see: offsets strictly increasing, each one
    a record written there; every key's latest acknowledged record (a tombstone only while
    ``tombstones_kept``); every record at or after ``cleaned_below`` (the cleaner's position
    after the read); and below it, at most one record per key (the clean happened)."""
    offsets = [r[0] for r in read]
    assert offsets == sorted(set(offsets)), "offsets must strictly increase"
    by_offset = {w.offset: w for w in written}
    for offset, key, value in read:
        w = by_offset.get(offset)
        assert w is not None and (w.key, w.value) == (key, value), (offset, key, value, w)
    held = set(offsets)
    for key, w in latest(written).items():
        if w.value is None and not tombstones_kept:
            assert w.offset not in held or w.offset >= cleaned_below, f"tombstone of {key} kept"
        else:
            assert w.offset in held, f"the latest record of {key} ({w}) is missing"
    missing_dirty = [w for w in written if w.offset >= cleaned_below and w.offset not in held]
    assert not missing_dirty, f"records above the cleaned range are missing: {missing_dirty[:5]}"
    below = [key for offset, key, _ in read if offset < cleaned_below]
    assert len(below) == len(set(below)), "a key appears twice in the cleaned range"


def expected_latest_values(written: Sequence[Written]) -> dict[str, str]:
    """Each live key's latest value (deleted keys left out)."""
    return {k: w.value for k, w in latest(written).items() if w.value is not None}


def latest_values_read(read: Sequence[Read]) -> dict[str, str]:
    """Each key's latest value in what a reader read (a tombstone deletes it)."""
    out: dict[str, str] = {}
    for _, key, value in read:
        assert key is not None
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def log_has(node: NodeProcess, text: str) -> bool:
    return text in Path(node.log_file).read_text(errors="replace")
