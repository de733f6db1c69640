#!/usr/bin/env python3
"""Benchmark of partition replication on a real three-node cluster. Prints figures, asserts
nothing.

It starts its own three node processes (scripts/node_process.py's Cluster, in a temporary
directory, min.insync.replicas=2; every process it started is stopped by pid at the end), then:

  (a) 1,000 partitions: creates a topic of --partitions partitions with replication factor 3,
      waits until every replica is in sync, then runs kraft-producer-perf-test on it (acks=all,
      100-byte records) and prints its summary line, and the nodes' CPU use while idle with
      that many partitions (followers poll every leader once per fetch session, not per
      partition).
  (b) failover, --kills rounds of each kind: a fresh topic of 3 partitions (replication
      factor 3) puts one leader on each node; kill -9 the leader of one partition, then produce
      to it with acks=all through the survivors in a tight loop (following 307s); the time
      from the kill to the first acknowledged produce. Reported separately for a dead node that
      was not and was the quorum leader (a Raft election comes first). The killed node is
      restarted and back in every ISR before the next round.

Targets (issue 4): failover median <= 2 s when the dead node was not the quorum leader, and
<= 3.5 s when it was. Throughput and latency targets are measured with
kraft-producer-perf-test itself (README, "Tests and benchmarks").

Usage: .venv/bin/python scripts/bench_replication.py [--partitions 1000] [--kills 10]
       [--records 100000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout, so that the scripts package imports (run as a file, only scripts/ is on the path).
sys.path.insert(0, str(ROOT))

from scripts.node_process import Cluster, NodeProcess, cpu_seconds, http, wait_until  # noqa: E402

TARGET_NOT_QUORUM_LEADER_S = 2.0
TARGET_QUORUM_LEADER_S = 3.5
# One produce attempt during a failover: short, so a request stuck on the dead node is
# abandoned quickly and the next attempt goes elsewhere.
ATTEMPT_TIMEOUT_S = 1.0


def post(url: str, body: Any, timeout: float) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else {}


def topic(node: NodeProcess, name: str) -> dict[str, Any] | None:
    status, body = http("GET", f"{node.url}/v1/topics/{name}", timeout=5)
    return body if status == 200 else None


def all_in_sync(cluster: Cluster, name: str) -> bool:
    for node in cluster.running():
        described = topic(node, name)
        if described is None or any(len(p["isr"]) != 3 for p in described["partitions"]):
            return False
    return True


def bench_wide(cluster: Cluster, partitions: int, records: int) -> None:
    node = cluster.nodes[0]
    start = time.monotonic()
    status, body = http(
        "POST",
        f"{node.url}/v1/topics",
        {"name": "wide", "partitions": partitions, "replication_factor": 3},
        timeout=120,
    )
    assert status == 201, body
    created = time.monotonic() - start
    wait_until("every replica in sync", lambda: all_in_sync(cluster, "wide"), 300)
    in_sync = time.monotonic() - start
    print(
        f"(a) {partitions} partitions x 3 replicas: created in {created:.2f} s, "
        f"every replica in the ISR after {in_sync:.2f} s"
    )
    pids = [n.pid for n in cluster.nodes if n.pid]
    before = [cpu_seconds(p) for p in pids]
    time.sleep(10)
    idle = [(cpu_seconds(p) - b) / 10 * 100 for p, b in zip(pids, before, strict=True)]
    print(
        f"    idle CPU per node with {partitions} partitions: "
        + ", ".join(f"{c:.0f}%" for c in idle)
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "client.tools.producer_perf_test",
            "--topic",
            "wide",
            "--num-records",
            str(records),
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={node.bootstrap}",
            "acks=all",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    summary = [line for line in out.stdout.splitlines() if "99.9th" in line]
    print("    kraft-producer-perf-test, acks=all, 100-byte records:")
    print("      " + (summary[-1] if summary else f"(failed: {out.stderr.strip()[-300:]})"))


def produce_until_acknowledged(cluster: Cluster, name: str, partition: int, dead: int) -> float:
    """Seconds until an acks=all produce to the partition succeeds through the survivors."""
    survivors = [n for n in cluster.nodes if n.node_id != dead]
    path = f"/v1/topics/{name}/partitions/{partition}/records?timeout_ms=2000"
    attempt = 0
    while True:
        node = survivors[attempt % len(survivors)]
        attempt += 1
        url = node.url + path
        try:
            for _hop in range(3):
                status, body = post(url, {"value": "probe"}, ATTEMPT_TIMEOUT_S + 2)
                if status == 307 and body.get("leader_url"):
                    url = body["leader_url"].rstrip("/") + path
                    continue
                break
            if status == 200:
                return time.monotonic()
        except (OSError, ValueError):
            pass
        time.sleep(0.02)


def failover_round(cluster: Cluster, round_no: int, quorum_leader: bool) -> float | None:
    name = f"fo-{round_no}-{'q' if quorum_leader else 'n'}"
    status, body = http(
        "POST",
        f"{cluster.nodes[0].url}/v1/topics",
        {"name": name, "partitions": 3, "replication_factor": 3},
        timeout=30,
    )
    if status != 201:
        print(f"    round {round_no}: topic not created: {body}")
        return None
    wait_until("replicas in sync", lambda: all_in_sync(cluster, name), 60)
    controller = wait_until("a controller", cluster.controller_id)
    described = topic(cluster.nodes[0], name) or {"partitions": []}
    chosen = next(
        (p for p in described["partitions"] if (p["leader"] == controller) == quorum_leader),
        None,
    )
    if chosen is None:
        print(f"    round {round_no}: no partition led by the wanted kind of node")
        return None
    victim = cluster.node(chosen["leader"])
    killed_at = time.monotonic()
    victim.stop(signal.SIGKILL)
    acknowledged_at = produce_until_acknowledged(cluster, name, chosen["partition"], victim.node_id)
    seconds = acknowledged_at - killed_at
    victim.start()
    wait_until("the killed node back in every ISR", lambda: all_in_sync(cluster, name), 120)
    return seconds


def summarize(label: str, times: list[float], target: float) -> None:
    if not times:
        print(f"    {label}: no round completed")
        return
    median = statistics.median(times)
    verdict = "met" if median <= target else "MISSED"
    print(
        f"    {label}: median {median:.2f} s, max {max(times):.2f} s over {len(times)} "
        f"rounds (target median <= {target} s: {verdict})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-replication-", dir=args.dir))
    cluster = Cluster.create(workdir, **{"min.insync.replicas": "2"})
    try:
        cluster.start()
        print(f"three nodes up on 127.0.0.1 (load average {os.getloadavg()[0]:.1f})")
        if args.partitions > 0:
            bench_wide(cluster, args.partitions, args.records)
        print("(b) failover: kill -9 of a partition leader -> first acknowledged acks=all produce")
        for quorum_leader in (False, True):
            times = []
            for round_no in range(args.kills):
                seconds = failover_round(cluster, round_no, quorum_leader)
                if seconds is not None:
                    times.append(seconds)
            label = "dead node was the quorum leader" if quorum_leader else "dead node was not"
            target = TARGET_QUORUM_LEADER_S if quorum_leader else TARGET_NOT_QUORUM_LEADER_S
            summarize(label, times, target)
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
