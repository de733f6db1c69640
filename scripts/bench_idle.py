#!/usr/bin/env python3
"""Benchmark of what partitions at rest cost: idle CPU and memory of a three-node cluster
with many replicated partitions (issue 13, item 2). Prints figures, asserts nothing.

It starts its own three node processes (scripts/node_process.py's Cluster, free 127.0.0.1
ports, a temporary directory; every process it started is stopped by its pid at the end),
creates --partitions partitions (replication factor 3, spread over --topics topics, leaders
spread over the nodes by the controller), waits until every replica is in every ISR, lets
the cluster settle for --settle seconds, then reads each node's CPU time (utime + stime of
/proc/PID/stat) over --seconds and prints it as a percentage of one core, with the node's
resident memory (VmRSS of /proc/PID/status) at the end.

Nothing is produced: the figure is what replication, ISR upkeep, heartbeats and the
metadata quorum cost when no client does anything. On a shared machine the figures are
noisy; the load average is printed with them.

With --profile-dir DIR, after the measurement it runs ``py-spy record`` (if installed; it is
not a project dependency) for --seconds on each node, writing DIR/node-N.txt in py-spy's
"raw" (collapsed stacks) format, one line per stack with its sample count.

Usage: .venv/bin/python scripts/bench_idle.py [--partitions 1000] [--topics 1]
       [--seconds 20] [--settle 10] [--profile-dir DIR] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout, so that the scripts package imports (run as a file, only scripts/ is on the path).
sys.path.insert(0, str(ROOT))

from scripts.node_process import Cluster, NodeProcess, cpu_seconds, wait_until  # noqa: E402

# Creating and opening thousands of replicas on a loaded two-core machine takes a while.
IN_SYNC_DEADLINE_S = 900.0


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def create_topics(node: NodeProcess, partitions: int, topics: int) -> list[str]:
    """``topics`` topics holding ``partitions`` partitions between them; their names."""
    names = []
    for i in range(topics):
        count = partitions // topics + (1 if i < partitions % topics else 0)
        if count == 0:
            continue
        name = f"idle-{i}"
        status, body = node.http(
            "POST",
            "/v1/topics",
            {"name": name, "partitions": count, "replication_factor": 3},
            timeout=300,
        )
        assert status == 201, body
        names.append(name)
    return names


def out_of_sync(cluster: Cluster, names: list[str]) -> int:
    """How many partitions some node's metadata shows with fewer than three in the ISR."""
    lagging = 0
    for name in names:
        for node in cluster.running():
            status, body = node.http("GET", f"/v1/topics/{name}", timeout=30)
            if status != 200:
                return -1
            lagging = max(lagging, sum(1 for p in body["partitions"] if len(p["isr"]) != 3))
    return lagging


def measure(pids: list[int], seconds: float) -> list[float]:
    """Each process's CPU over ``seconds`` as a percentage of one core."""
    before = [cpu_seconds(p) for p in pids]
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    return [(cpu_seconds(p) - b) / elapsed * 100 for p, b in zip(pids, before, strict=True)]


def profile(cluster: Cluster, seconds: float, directory: Path) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("    (no py-spy: pip install py-spy to profile)")
        return
    directory.mkdir(parents=True, exist_ok=True)
    recorders = []
    for node in cluster.nodes:
        assert node.pid is not None
        out = directory / f"node-{node.node_id}.txt"
        # --nonblocking: sampling does not pause the node, so the profile is of its idle self.
        command = [py_spy, "record", "--nonblocking", "--format", "raw", "-r", "50"]
        command += ["-d", str(int(seconds)), "-o", str(out), "--pid", str(node.pid)]
        recorders.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        )
    for node, recorder in zip(cluster.nodes, recorders, strict=True):
        _, err = recorder.communicate(timeout=seconds + 60)
        if recorder.returncode != 0:
            print(f"    py-spy on node {node.node_id} failed: {err.decode()[-300:]}")
        else:
            print(f"    node {node.node_id}'s profile: {directory / f'node-{node.node_id}.txt'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--topics", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    parser.add_argument("--settle", type=float, default=10.0, help="idle time before it")
    parser.add_argument("--profile-dir", type=Path, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="where the temp dir goes")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-idle-", dir=args.dir))
    # Any: mypy matches a ** dict against every keyword of create, not only its properties.
    properties: dict[str, Any] = {"min.insync.replicas": "2"}
    cluster = Cluster.create(workdir, **properties)
    try:
        cluster.start()
        pids = [n.pid for n in cluster.nodes if n.pid is not None]
        print(f"three nodes up on 127.0.0.1, pids {pids}")
        base = measure(pids, args.seconds)
        print(
            "no partitions: idle CPU per node "
            + ", ".join(f"{c:.1f}%" for c in base)
            + f" of a core over {args.seconds:.0f} s; RSS "
            + ", ".join(f"{rss_mib(p):.0f}" for p in pids)
            + " MiB"
        )
        start = time.monotonic()
        names = create_topics(cluster.nodes[0], args.partitions, args.topics)
        created = time.monotonic() - start
        wait_until(
            "every replica in every ISR",
            lambda: out_of_sync(cluster, names) == 0,
            IN_SYNC_DEADLINE_S,
        )
        in_sync = time.monotonic() - start
        print(
            f"{args.partitions} partitions x 3 replicas in {len(names)} topic(s): created in "
            f"{created:.1f} s, all in sync after {in_sync:.1f} s"
        )
        time.sleep(args.settle)
        load = os.getloadavg()[0]
        idle = measure(pids, args.seconds)
        print(
            f"{args.partitions} partitions: idle CPU per node "
            + ", ".join(f"{c:.1f}%" for c in idle)
            + f" of a core over {args.seconds:.0f} s (load average before {load:.1f}); RSS "
            + ", ".join(f"{rss_mib(p):.0f}" for p in pids)
            + " MiB"
        )
        lagging = out_of_sync(cluster, names)
        print(f"partitions out of sync after the idle time: {lagging}")
        if args.profile_dir is not None:
            profile(cluster, args.seconds, args.profile_dir)
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
