#!/usr/bin/env python3
"""Benchmark of metadata at scale (issue 13, items 2 and 3). Prints figures, asserts nothing.

A three-node cluster (real node processes on free 127.0.0.1 ports, temp dirs) and two modes:

  create  ``--topics`` topics (3,000) of ``--partitions`` partitions (1) with replication
          factor ``--rf`` (3), created as fast as the HTTP API takes them from ``--clients``
          (8) concurrent clients, each on a keep-alive connection to one node (round-robin
          over the nodes: a non-controller forwards to the controller, as for any client).
          Prints creations/s (topics and partitions) and, from the first request, the time
          until every partition is open on every node that hosts it (its directory on disk:
          the first ``.log`` comes with the first append) and every partition has a leader
          and its whole replica set in its ISR in the controller's metadata.
  scale   brings the cluster to ``--total-partitions`` (10,000) partitions, in topics of
          ``--partitions`` (10) each, then prints the time that took, each node's resident
          memory, open file descriptors and threads, and each node's CPU while idle for
          ``--idle-s`` (30) seconds (from /proc: utime + stime over the window), and the ISR
          shrinks the nodes logged (a follower dropped from an ISR: it fell behind).

Both modes end with the same idle measurement and the ISR check. ``--profile DIR`` records
the controller and one other node with py-spy during creation (``pip install py-spy``; not a
project dependency) into DIR/<node>.svg (flame graphs) and DIR/<node>.txt (top functions).

Usage: .venv/bin/python scripts/bench_topics.py create [--topics 3000] [--partitions 1]
       .venv/bin/python scripts/bench_topics.py scale [--total-partitions 10000]
       (common: --rf 3 --clients 8 --idle-s 30 --dir DIR --keep --profile DIR
        --property k=v for every node)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.node_process import Cluster, NodeProcess, cpu_seconds  # noqa: E402

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
# How long the bench waits for the cluster to settle after the last creation.
SETTLE_DEADLINE_S = 600.0
TOPIC_PREFIX = "bench-"


class Connection:
    """One keep-alive HTTP/1.1 connection to a node, reopened after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self._conn.request(method, path, data, headers)
                response = self._conn.getresponse()
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def create_topics(
    nodes: list[NodeProcess], names: list[str], partitions: int, rf: int, clients: int
) -> tuple[float, int]:
    """Creates the topics from ``clients`` threads; returns (seconds, retries)."""
    todo = iter(names)
    lock = threading.Lock()
    retries = [0]
    errors: list[str] = []

    def next_name() -> str | None:
        with lock:
            return next(todo, None)

    def client(n: int) -> None:
        conn = Connection(nodes[n % len(nodes)].http_port)
        try:
            while (name := next_name()) is not None:
                body = {"name": name, "partitions": partitions, "replication_factor": rf}
                for _attempt in range(20):
                    status, answer = conn.request("POST", "/v1/topics", body)
                    if status == 201:
                        break
                    if status in (429, 503, 504, 408):  # busy or moving: retry, as a client
                        with lock:
                            retries[0] += 1
                        time.sleep(0.05)
                        continue
                    if status == 400 and answer.get("error") == "TOPIC_ALREADY_EXISTS":
                        break  # a retry of a creation that did commit
                    errors.append(f"{name}: {status} {answer}")
                    return
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    if errors:
        raise SystemExit(f"creation failed: {errors[:3]}")
    return took, retries[0]


def opened_on_disk(node: NodeProcess) -> int:
    """The bench's partition directories on this node (what opening a new replica creates:
    its first ``.log`` comes with its first append, partition.metadata with its first
    flush)."""
    count = 0
    with os.scandir(node.log_dir) as entries:
        for entry in entries:
            if entry.name.startswith(TOPIC_PREFIX) and entry.is_dir():
                count += 1
    return count


def wait_opened(nodes: list[NodeProcess], per_node: dict[int, int]) -> None:
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    while time.monotonic() < deadline:
        if all(opened_on_disk(n) >= per_node[n.node_id] for n in nodes):
            return
        time.sleep(0.05)
    seen = {n.node_id: opened_on_disk(n) for n in nodes}
    raise SystemExit(f"not every replica opened in {SETTLE_DEADLINE_S} s: {seen} of {per_node}")


def describe_all(node: NodeProcess, names: list[str], clients: int) -> list[dict[str, Any]]:
    """Every topic's partitions as ``node`` describes them."""
    out: list[dict[str, Any]] = []
    unavailable = [0]
    lock = threading.Lock()
    todo = iter(names)

    def client() -> None:
        conn = Connection(node.http_port)
        try:
            while True:
                with lock:
                    name = next(todo, None)
                if name is None:
                    return
                for _attempt in range(100):
                    status, answer = conn.request("GET", f"/v1/topics/{name}")
                    if status != 503:  # a node that lost the quorum a moment: ask again
                        break
                    with lock:
                        unavailable[0] += 1
                    time.sleep(0.1)
                assert status == 200, (name, status, answer)
                with lock:
                    out.extend(answer["partitions"])
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if unavailable[0]:
        print(f"  ({unavailable[0]} describe answers were 503: the node had lost the quorum)")
    return out


def not_in_sync(partitions: list[dict[str, Any]]) -> int:
    return sum(
        1 for p in partitions if p["leader"] is None or sorted(p["isr"]) != sorted(p["replicas"])
    )


def replicas_per_node(partitions: list[dict[str, Any]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for p in partitions:
        for r in p["replicas"]:
            counts[r] = counts.get(r, 0) + 1
    return counts


def proc_figures(pid: int) -> dict[str, float]:
    with open(f"/proc/{pid}/statm") as f:
        rss = int(f.read().split()[1]) * PAGE_BYTES
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    return {"rss_mib": rss / MIB, "fds": fds, "threads": threads}


def idle_cpu(nodes: list[NodeProcess], seconds: float) -> dict[int, float]:
    """Each node's CPU use over ``seconds`` of idleness, in percent of one core."""
    before = {n.node_id: cpu_seconds(n.pid or 0) for n in nodes}
    start = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - start
    return {n.node_id: 100 * (cpu_seconds(n.pid or 0) - before[n.node_id]) / took for n in nodes}


def isr_shrinks(nodes: list[NodeProcess]) -> int:
    count = 0
    for n in nodes:
        try:
            count += n.log_file.read_text(errors="replace").count("shrinking the ISR")
        except OSError:
            pass
    return count


def controller(cluster: Cluster) -> NodeProcess:
    for _ in range(100):
        cid = cluster.controller_id()
        if cid is not None:
            return cluster.node(cid)
        time.sleep(0.1)
    raise SystemExit("no controller")


def start_profiles(cluster: Cluster, directory: Path) -> list[tuple[subprocess.Popen[bytes], Path]]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("--profile needs py-spy (.venv/bin/pip install py-spy)")
    directory.mkdir(parents=True, exist_ok=True)
    lead = controller(cluster)
    other = next(n for n in cluster.nodes if n is not lead)
    out = []
    for node, role in ((lead, "controller"), (other, "broker")):
        path = directory / f"node-{node.node_id}-{role}"
        proc = subprocess.Popen(
            [
                py_spy,
                "record",
                "-p",
                str(node.pid),
                "-o",
                str(path) + ".speedscope",
                "-f",
                "raw",
                "-r",
                "200",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        out.append((proc, path))
    return out


def stop_profiles(profiles: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    """Stops py-spy (SIGINT writes its output) and prints each profile's top frames."""
    for proc, _path in profiles:
        proc.send_signal(2)
    for proc, path in profiles:
        proc.wait(60)
        raw = Path(str(path) + ".speedscope")
        if raw.exists():
            print(f"\nprofile {path.name} (self samples, top 25):")
            for line in top_frames(raw, 25):
                print("  " + line)


def top_frames(raw: Path, count: int) -> Iterator[str]:
    """The leaf frames with the most samples in py-spy's raw (collapsed stacks) output, and the
    frames with the most inclusive samples."""
    leaf: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        samples = int(count_text)
        total += samples
        frames = stack.split(";")
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + samples
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + samples
    yield f"{total} samples; self:"
    for frame, n in sorted(leaf.items(), key=lambda kv: -kv[1])[:count]:
        yield f"{100 * n / max(total, 1):5.1f}%  {frame}"
    yield "inclusive:"
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:count]:
        yield f"{100 * n / max(total, 1):5.1f}%  {frame}"


def run(args: argparse.Namespace, directory: Path) -> None:
    properties = dict(p.split("=", 1) for p in args.property)
    cluster = Cluster.create(directory, 3, **properties)
    try:
        cluster.start()
        nodes = cluster.nodes
        if args.mode == "create":
            count, partitions = args.topics, args.partitions
        else:
            partitions = args.partitions
            count = -(-args.total_partitions // partitions)
        names = [f"{TOPIC_PREFIX}{i:06d}" for i in range(count)]
        total = count * partitions
        print(
            f"{args.mode}: {count} topics x {partitions} partitions, rf {args.rf}, "
            f"{args.clients} clients, 3 nodes"
        )
        print("before: " + figures_line(nodes))
        profiles = start_profiles(cluster, Path(args.profile)) if args.profile else []
        cpu_before = {n.node_id: cpu_seconds(n.pid or 0) for n in nodes}
        start = time.monotonic()
        targets = [controller(cluster)] if args.to == "controller" else nodes
        took, retries = create_topics(targets, names, partitions, args.rf, args.clients)
        print(
            f"created {count} topics ({total} partitions) in {took:.2f} s: "
            f"{count / took:,.0f} topics/s, {total / took:,.0f} partitions/s "
            f"({retries} retries)"
        )
        used_s = sum(cpu_seconds(n.pid or 0) - cpu_before[n.node_id] for n in nodes)
        print(
            f"CPU per topic created, all nodes: {1000 * used_s / count:.2f} ms "
            f"({1000 * used_s / total:.2f} ms per partition): the figure a loaded machine "
            "changes least"
        )
        print(
            "CPU during creation, % of a core: "
            + ", ".join(
                f"node {n.node_id}: "
                f"{100 * (cpu_seconds(n.pid or 0) - cpu_before[n.node_id]) / took:.0f}"
                for n in nodes
            )
        )
        stop_profiles(profiles)
        lead = controller(cluster)
        described = describe_all(lead, names, args.clients)
        per_node = replicas_per_node(described)
        wait_opened(nodes, per_node)
        opened = time.monotonic() - start
        print(f"every replica open on its nodes {opened:.2f} s after the first request")
        deadline = time.monotonic() + SETTLE_DEADLINE_S
        lagging = not_in_sync(described)
        while lagging and time.monotonic() < deadline:
            time.sleep(0.5)
            lagging = not_in_sync(describe_all(lead, names, args.clients))
        print(
            f"every partition led with a full ISR {time.monotonic() - start:.2f} s after the "
            f"first request ({lagging} not)"
        )
        time.sleep(2)  # let the last opens' flushes and checkpoints pass
        print("after:  " + figures_line(nodes))
        cpu = idle_cpu(nodes, args.idle_s)
        print(
            f"idle CPU over {args.idle_s:g} s, % of a core: "
            + ", ".join(f"node {i}: {v:.1f}" for i, v in sorted(cpu.items()))
        )
        final = describe_all(lead, names, args.clients)
        print(
            f"after idling: {not_in_sync(final)} partitions without a leader or a full ISR; "
            f"{isr_shrinks(nodes)} ISR shrinks logged"
        )
    finally:
        cluster.stop()


def figures_line(nodes: list[NodeProcess]) -> str:
    parts = []
    for n in nodes:
        f = proc_figures(n.pid or 0)
        parts.append(
            f"node {n.node_id}: {f['rss_mib']:.0f} MiB RSS, {f['fds']:.0f} fds, "
            f"{f['threads']:.0f} threads"
        )
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("create", "scale"))
    parser.add_argument("--topics", type=int, default=3000)
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--total-partitions", type=int, default=10_000)
    parser.add_argument("--rf", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--to",
        choices=("all", "controller"),
        default="all",
        help="send the creations to every node (round-robin), or to the controller only",
    )
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--dir", default=None, help="where the nodes live (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep --dir afterwards")
    parser.add_argument("--profile", default=None, help="py-spy output directory")
    parser.add_argument("--property", action="append", default=[], help="k=v for every node")
    args = parser.parse_args()
    if args.partitions is None:
        args.partitions = 1 if args.mode == "create" else 10
    if args.dir:
        directory = Path(args.dir)
        directory.mkdir(parents=True, exist_ok=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix="bench-topics-"))
    try:
        run(args, directory)
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
