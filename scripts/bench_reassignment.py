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

Each row: the size, the time to in-sync, MB/s (size / time). With ``--throttle BYTES_PER_S``
each size is moved a second time, on a topic of its own, throttled as
``kraft-reassign-partitions --execute --throttle`` throttles it (the tool's own functions
compute the lists: the topic's ``leader.replication.throttled.replicas`` names the current
replicas, ``follower.replication.throttled.replicas`` the new one, and both
``*.replication.throttled.rate`` are set on every broker of the move), and the row gets the
throttled time and MB/s beside the unthrottled ones; the throttles are removed after, as
``--verify`` does. :func:`timed_move` is the measurement both use.

Usage: .venv/bin/python scripts/bench_reassignment.py [--mb 10,100] [--throttle 5000000]
       [--dir DIR]
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

from client.admin import TopicPartition  # noqa: E402
from client.producer import Producer  # noqa: E402
from client.tools import reassignment_files  # noqa: E402
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


RATES = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
LISTS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")


def put_configs(node: NodeProcess, path: str, configs: dict[str, str | None]) -> None:
    status, answer = node.http("PUT", path, {"configs": configs})
    if status != 200:
        raise SystemExit(f"PUT {path} was refused: {status} {answer}")


def set_throttle(
    node: NodeProcess, topic: str, replicas: list[int], target: list[int], rate: int
) -> list[int]:
    """The throttles kraft-reassign-partitions --execute --throttle sets for this move;
    returns the brokers whose rates it set."""
    tp = TopicPartition(topic, 0)
    moves = reassignment_files.move_map([], {tp: target}, {tp: replicas})
    leaders = reassignment_files.leader_throttles(moves)[topic]
    followers = reassignment_files.follower_throttles(moves)[topic]
    put_configs(
        node, f"/v1/topics/{topic}/configs", dict(zip(LISTS, (leaders, followers), strict=True))
    )
    brokers = reassignment_files.reassigning_brokers(moves)
    for broker in brokers:
        put_configs(node, f"/v1/brokers/{broker}/configs", dict.fromkeys(RATES, str(rate)))
    return brokers


def clear_throttle(node: NodeProcess, topic: str, brokers: list[int]) -> None:
    put_configs(node, f"/v1/topics/{topic}/configs", dict.fromkeys(LISTS))
    for broker in brokers:
        put_configs(node, f"/v1/brokers/{broker}/configs", dict.fromkeys(RATES))


def bench_size(
    cluster: Cluster, megabytes: int, throttle: int | None = None
) -> tuple[int, float | None]:
    topic = f"move-{megabytes}mb" + ("" if throttle is None else f"-throttled-{throttle}")
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
    if throttle is None:
        return megabytes, timed_move(first, topic, target)
    brokers = set_throttle(first, topic, replicas, target, throttle)
    try:
        return megabytes, timed_move(first, topic, target)
    finally:
        clear_throttle(first, topic, brokers)


def figures(megabytes: int, seconds: float | None) -> str:
    if seconds is None:
        return f"{'not done':>13} {'-':>8}"
    return f"{seconds:>13.2f} {megabytes / seconds:>8.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", default="10,100", help="sizes to move, in MB (comma-separated)")
    parser.add_argument(
        "--throttle",
        type=int,
        metavar="BYTES_PER_S",
        help="also move each size throttled to this rate (as kraft-reassign-partitions does)",
    )
    parser.add_argument("--dir", type=Path, help="where the nodes live (default: a temp dir)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.mb.split(",") if x.strip()]
    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench-reassignment-"))
    cluster = Cluster.create(directory, NODES, **{"min.insync.replicas": "2"})  # type: ignore[arg-type]
    try:
        cluster.start()
        header = f"{'MB':>6} {'to in-sync s':>13} {'MB/s':>8}"
        if args.throttle is not None:
            header += f" {'throttled s':>13} {'MB/s':>8}  (throttle {args.throttle} B/s)"
        print(header, flush=True)
        for megabytes in sizes:
            size, seconds = bench_size(cluster, megabytes)
            row = f"{size:>6} {figures(size, seconds)}"
            if args.throttle is not None:
                _, throttled = bench_size(cluster, megabytes, args.throttle)
                row += f" {figures(size, throttled)}"
            print(row, flush=True)
    finally:
        cluster.stop()
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
