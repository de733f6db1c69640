#!/usr/bin/env python3
"""Benchmark of consumer groups on a real three-node cluster, over the HTTP API. Prints
figures, asserts nothing.

It starts its own three node processes (scripts/node_process.py's Cluster, in a temporary
directory, min.insync.replicas=2; every process it started is stopped by pid at the end), a
topic of 6 partitions (replication factor 3), then measures:

  (a) commit throughput: one client committing one offset at a time, then --groups clients
      (one group each) committing at once; commits/s and the latency of one commit (each is
      replicated to every in-sync replica before it is answered);
  (b) rebalance: two members split the topic; one stops heartbeating (as a killed process
      does); the time until the survivor owns every partition (session timeout + the
      survivor's next heartbeat), and the same when the member leaves cleanly;
  (c) coordinator failover: kill -9 of the group's coordinator; the time until a commit is
      answered again by the new one (its election, then it reads the group back).

Usage: .venv/bin/python scripts/bench_groups.py [--commits 2000] [--groups 8]
       [--session-ms 6000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.node_process import Cluster, http  # noqa: E402

TOPIC = "bench-groups"
PARTITIONS = 6
HEARTBEAT_MS = 500


class Api:
    """Group calls that follow the 307 to the coordinator and retry while it moves."""

    def __init__(self, session: aiohttp.ClientSession, urls: list[str]) -> None:
        self.session = session
        self.urls = urls

    async def call(self, method: str, path: str, body: Any = None, retry_s: float = 60) -> Any:
        deadline = time.monotonic() + retry_s
        url = self.urls[0] + path
        while True:
            try:
                async with self.session.request(
                    method, url, json=body, allow_redirects=False
                ) as response:
                    answer = await response.json(content_type=None)
                    if response.status == 307:
                        url = answer["leader_url"] + path
                        continue
                    if response.status < 300:
                        return answer
                    if response.status != 503 or time.monotonic() > deadline:
                        raise RuntimeError(f"{method} {path}: {response.status} {answer}")
            except (aiohttp.ClientError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                self.urls.append(self.urls.pop(0))
                url = self.urls[0] + path
            await asyncio.sleep(0.05)


def ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000:.1f} ms"


async def commit_loop(api: Api, group: str, count: int) -> list[float]:
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        await api.call(
            "POST",
            f"/v1/groups/{group}/offsets",
            [{"topic": TOPIC, "partition": i % PARTITIONS, "offset": i}],
        )
        latencies.append(time.perf_counter() - started)
    return latencies


async def commits(api: Api, count: int, groups: int) -> None:
    await commit_loop(api, "warm-up", 20)
    started = time.perf_counter()
    latencies = await commit_loop(api, "one-client", count)
    took = time.perf_counter() - started
    print(
        f"(a) commits, one client: {count / took:,.0f} commits/s; latency p50 "
        f"{ms(latencies, 0.5)}, p99 {ms(latencies, 0.99)}"
    )
    per_group = max(count // groups, 1)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(commit_loop(api, f"parallel-{g}", per_group) for g in range(groups))
    )
    took = time.perf_counter() - started
    every = [x for r in results for x in r]
    print(
        f"    commits, {groups} clients (one group each): {len(every) / took:,.0f} commits/s; "
        f"latency p50 {ms(every, 0.5)}, p99 {ms(every, 0.99)}"
    )


class Member:
    """A member that heartbeats as the protocol asks, owning what it was given."""

    def __init__(self, api: Api, group: str, session_ms: int) -> None:
        self.api, self.group, self.session_ms = api, group, session_ms
        self.answer: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def owned(self) -> set[int]:
        return {p["partition"] for p in (self.answer or {}).get("assignment", [])}

    async def beat(self) -> None:
        path = f"/v1/groups/{self.group}/heartbeat"
        if self.answer is None:
            body: dict[str, Any] = {
                "member_epoch": 0,
                "topics": [TOPIC],
                "session_timeout_ms": self.session_ms,
            }
        else:
            body = {
                "member_id": self.answer["member_id"],
                "member_epoch": self.answer["member_epoch"],
                "owned": self.answer["assignment"],
            }
        self.answer = await self.api.call("POST", path, body)

    async def run(self) -> None:
        while True:
            before = self.owned
            await self.beat()
            if self.owned == before:  # a change is acknowledged at once, else wait
                await asyncio.sleep(HEARTBEAT_MS / 1000)

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.run())

    async def stop(self, leave: bool) -> None:
        assert self.task is not None and self.answer is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        if leave:
            await self.api.call(
                "POST",
                f"/v1/groups/{self.group}/heartbeat",
                {"member_id": self.answer["member_id"], "member_epoch": -1},
            )


async def wait_for(check: Any, deadline_s: float = 120) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > deadline_s:
            raise RuntimeError("not reached within the deadline")
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


async def rebalance_once(api: Api, session_ms: int, leave: bool) -> None:
    group = f"rebalance-{'leave' if leave else 'kill'}"
    a, b = Member(api, group, session_ms), Member(api, group, session_ms)
    a.start()
    await wait_for(lambda: len(a.owned) == PARTITIONS)
    b.start()
    await wait_for(lambda: len(a.owned) == len(b.owned) == PARTITIONS // 2)
    started = time.perf_counter()
    await b.stop(leave)
    await wait_for(lambda: len(a.owned) == PARTITIONS)
    took = time.perf_counter() - started
    how = "leaves" if leave else f"stops heartbeating (session {session_ms} ms)"
    print(f"(b) rebalance: a member {how}: the survivor owns all {PARTITIONS} in {took:.2f} s")
    await a.stop(True)


async def failover(api: Api, cluster: Cluster) -> None:
    await commit_loop(api, "failover", 5)
    coordinator = (await api.call("GET", "/v1/groups/failover"))["coordinator_id"]
    cluster.node(coordinator).kill()
    api.urls = [n.url for n in cluster.nodes if n.node_id != coordinator]
    started = time.perf_counter()
    await api.call(
        "POST", "/v1/groups/failover/offsets", [{"topic": TOPIC, "partition": 0, "offset": 99}]
    )
    took = time.perf_counter() - started
    print(
        f"(c) coordinator failover (kill -9 of node {coordinator}): commits answered again "
        f"in {took:.2f} s"
    )


async def main_async(args: argparse.Namespace, cluster: Cluster) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        api = Api(session, [n.url for n in cluster.nodes])
        await commits(api, args.commits, args.groups)
        for leave in (False, True):
            await rebalance_once(api, args.session_ms, leave)
        await failover(api, cluster)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--session-ms", type=int, default=6000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench-groups-"))
    cluster = Cluster.create(
        directory,
        3,
        **{
            "min.insync.replicas": "2",
            "group.consumer.heartbeat.interval.ms": str(HEARTBEAT_MS),
        },
    )
    try:
        cluster.start()
        status, body = http(
            "POST",
            cluster.nodes[0].url + "/v1/topics",
            {"name": TOPIC, "partitions": PARTITIONS, "replication_factor": 3},
        )
        assert status == 201, body
        asyncio.run(main_async(args, cluster))
    finally:
        cluster.stop()
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
