#!/usr/bin/env python3
"""How fast a partition moves (issue 16's closing note): the time from ``POST
/v1/reassignments`` to the move being complete, and the MB/s that makes. Prints figures,
asserts nothing.

It starts its own four node processes (scripts/node_process.py's Cluster: combined nodes on
free ports of 127.0.0.1 in a temporary directory, min.insync.replicas=2; every process it
started is stopped by its pid at the end and the directory removed), then for each size in
``--mb``:

- a new topic of one partition, replication factor 3, on three of the four brokers;
- that many MB of 1 KB records written to it with the Python producer (acks=all, idle once
  written: the move copies a log at rest);
- the partition moved so that the fourth broker replaces one of the followers (the leader
  stays: the figure is the new replica's catch-up, not an election);
- the time from the POST to the first ``GET /v1/reassignments`` that no longer lists it
  (polled every ``POLL_S``), which is when the new replica joined the ISR and the controller
  completed the move in that same metadata write.

Each row: the size, the time to in-sync, MB/s (size / time). The throttle column (task T):
``--throttle BYTES_PER_S`` is meant to set ``leader.`` / ``follower.replication.throttled.rate``
on the brokers and the topic's throttled replica lists as ``kraft-reassign-partitions
--execute --throttle`` does, and print the same row for the throttled move beside the
unthrottled one; :func:`timed_move` is the measurement both use.

Usage: .venv/bin/python scripts/bench_reassignment.py [--mb 10,100] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout, so that the scripts package imports (run as a file, only scripts/ is on the path).
sys.path.insert(0, str(ROOT))

from client.producer import Producer  # noqa: E402
from scripts.node_process import Cluster, NodeProcess, wait_until  # noqa: E402

NODES = 4
RECORD_BYTES = 1000
# How often the list of moves is read while waiting: the figure's resolution.
POLL_S = 0.02
# A move that takes longer than this is reported as not finished.
MOVE_DEADLINE_S = 600.0


def write_megabytes(node: NodeProcess, topic: str, megabytes: int) -> None:
    """``megabytes`` MB of ``RECORD_BYTES`` records to partition 0, acks=all, all flushed."""
    value = b"x" * RECORD_BYTES
    with Producer(
        bootstrap_servers=node.bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024
    ) as producer:
        for _ in range(megabytes * 1_000_000 // RECORD_BYTES):
            producer.send(topic, value, partition=0)
        producer.flush()


def partition(node: NodeProcess, topic: str) -> dict[str, Any] | None:
    status, body = node.http("GET", f"/v1/topics/{topic}", timeout=10)
    return body["partitions"][0] if status == 200 else None


def timed_move(node: NodeProcess, topic: str, target: list[int]) -> float | None:
    """Seconds from the POST that moves partition 0 to ``target`` until no node-visible move
    of the topic is left (None past ``MOVE_DEADLINE_S``)."""
    body = {"partitions": [{"topic": topic, "partition": 0, "replicas": target}]}
    started = time.monotonic()
    status, answer = node.http("POST", "/v1/reassignments", body)
    if status != 200 or "error" in answer["partitions"][0]:
        raise SystemExit(f"the move was refused: {status} {answer}")
    while time.monotonic() - started < MOVE_DEADLINE_S:
        status, listed = node.http("GET", f"/v1/reassignments?topic={topic}", timeout=10)
        if status == 200 and not listed["reassignments"]:
            return time.monotonic() - started
        time.sleep(POLL_S)
    return None


def bench_size(cluster: Cluster, megabytes: int) -> tuple[int, float | None]:
    topic = f"move-{megabytes}mb"
    first = cluster.nodes[0]
    status, answer = first.http(
        "POST", "/v1/topics", {"name": topic, "partitions": 1, "replication_factor": 3}
    )
    assert status == 201, answer
    view = wait_until(f"{topic} has a leader", lambda: partition(first, topic), 60)
    write_megabytes(first, topic, megabytes)
    replicas, leader = view["replicas"], view["leader"]
    newcomer = next(n.node_id for n in cluster.nodes if n.node_id not in replicas)
    follower = next(r for r in replicas if r != leader)
    target = [newcomer if r == follower else r for r in replicas]
    return megabytes, timed_move(first, topic, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", default="10,100", help="sizes to move, in MB (comma-separated)")
    parser.add_argument("--dir", type=Path, help="where the nodes live (default: a temp dir)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.mb.split(",") if x.strip()]
    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench-reassignment-"))
    cluster = Cluster.create(directory, NODES, **{"min.insync.replicas": "2"})  # type: ignore[arg-type]
    try:
        cluster.start()
        print(f"{'MB':>6} {'to in-sync s':>13} {'MB/s':>8}")
        for megabytes in sizes:
            size, seconds = bench_size(cluster, megabytes)
            if seconds is None:
                print(f"{size:>6} {'not done':>13} {'-':>8}")
            else:
                print(f"{size:>6} {seconds:>13.2f} {size / seconds:>8.1f}", flush=True)
    finally:
        cluster.stop()
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
