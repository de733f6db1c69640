"""Consumers read across a compacted log's gaps on a real node: the log is written as Kafka's
cleaner leaves one (records cleaned away inside batches, a whole batch gone, a batch with no
record left, an idempotent producer's last) into the partition's segment while the node is
stopped, and made durable as the cleaner makes its segments (fsynced, below the recovery
point); the node opens it at start, and the JSON fetch, its follow stream and the binary
consumer (the console consumer) return every kept record at its offset and move past the
gaps to the log end."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from scripts.node_process import NodeProcess, run_tool, wait_until
from storage.batch import iter_batches
from storage.checkpoints import OffsetCheckpointFile
from tests.gapped_batches import empty_batch, gapped_batch, rec

TOPIC = "table"
# Offset 0 is produced through the node; the rest is what the cleaner left of offsets 1..16.
KEPT = [0, 4, 6, 16]


def cleaned_tail(leader_epoch: int) -> bytes:
    return (
        gapped_batch(
            [(4, rec(4, b"four")), (6, rec(6, b"six"))],
            base_offset=3,
            last_offset=6,
            partition_leader_epoch=leader_epoch,
        )
        + empty_batch(7, 9, producer_id=9, base_sequence=0)
        + gapped_batch(
            [(16, rec(16, b"sixteen"))],
            base_offset=15,
            last_offset=16,
            partition_leader_epoch=leader_epoch,
        )
    )


def fetch(node: NodeProcess, query: str) -> dict[str, Any]:
    status, body = node.http("GET", f"/v1/topics/{TOPIC}/partitions/0/records?{query}")
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def offsets(body: dict[str, Any]) -> list[int]:
    return [r["offset"] for r in body["records"]]


def test_consumers_read_across_the_gaps_of_a_compacted_log(make_node: Any) -> None:
    node: NodeProcess = make_node()
    node.format()
    node.start()
    status, body = node.http("POST", "/v1/topics", {"name": TOPIC, "partitions": 1})
    assert status == 201, body
    status, body = node.http(
        "POST", f"/v1/topics/{TOPIC}/partitions/0/records", {"records": [{"value": "zero"}]}
    )
    assert status == 200, body
    assert node.stop() == 0
    segment: Path = node.log_dir / f"{TOPIC}-0" / f"{0:020d}.log"
    first = next(iter_batches(segment.read_bytes()))[1]
    with open(segment, "ab") as f:
        f.write(cleaned_tail(first.partition_leader_epoch))
        f.flush()
        os.fsync(f.fileno())
    # Flushed, as the cleaner's segments are before they are swapped in: the recovery point
    # (Kafka's checkpoint file of the log directory) moves past it.
    checkpoint = OffsetCheckpointFile(node.log_dir / "recovery-point-offset-checkpoint")
    recovery_points = checkpoint.read()
    assert recovery_points[(TOPIC, 0)] == 1
    checkpoint.write({**recovery_points, (TOPIC, 0): 17})
    node.start()

    wait_until(
        "the high watermark reaches the log end",
        lambda: fetch(node, "offset=latest")["high_watermark"] == 17,
    )
    # One answer: every kept record, and the next offset after the last batch.
    whole = fetch(node, "offset=0")
    assert offsets(whole) == KEPT
    assert [r["value"] for r in whole["records"]] == ["zero", "four", "six", "sixteen"]
    assert whole["next_offset"] == 17
    # From inside each kind of gap: the next kept record.
    for start, expected in [(1, [4, 6, 16]), (5, [6, 16]), (7, [16]), (12, [16]), (16, [16])]:
        body = fetch(node, f"offset={start}")
        assert (offsets(body), body["next_offset"]) == (expected, 17), start
    # A record limit stops after the last record returned; reading on from there loses none.
    read: list[int] = []
    start = 0
    for _ in range(10):
        body = fetch(node, f"offset={start}&max_records=1")
        read += offsets(body)
        if body["next_offset"] == start:
            break
        start = body["next_offset"]
    assert read == KEPT and start == 17

    # The follow stream: the kept records, then nothing (heartbeats every 5 s, none in 2 s).
    stream = subprocess.run(
        [
            "curl",
            "-sN",
            "--max-time",
            "2",
            f"{node.url}/v1/topics/{TOPIC}/partitions/0/records?offset=1&follow=true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = [json.loads(line) for line in stream.stdout.splitlines()]
    assert [line["offset"] for line in lines if "offset" in line] == [4, 6, 16]

    # The binary path: Kafka's console consumer reads the stored batches as they are.
    out = run_tool(
        "client.tools.console_consumer",
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        TOPIC,
        "--from-beginning",
        "--max-messages",
        "4",
        "--property",
        "print.offset=true",
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "Offset:0\tzero",
        "Offset:4\tfour",
        "Offset:6\tsix",
        "Offset:16\tsixteen",
    ]
