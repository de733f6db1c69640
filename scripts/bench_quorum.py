#!/usr/bin/env python3
"""Benchmark of the metadata quorum on a real three-node cluster. Prints figures, asserts
nothing.

It starts its own three node processes (scripts/node_process.py's Cluster, in a temporary
directory; every process it started is stopped by pid at the end), then measures:

  (a) metadata writes: --topics single-partition topics created with --concurrency requests
      in flight (aiohttp), sent to the controller; then as many again sent to a follower,
      which forwards each one to the controller. Figure: topic creations per second, from
      the first request sent to the last 201 received, and each request's latency.
  (b) failover, --kills times: kill -9 the controller (the quorum leader), then create a topic
      (1 partition, replication factor 1) through the survivors in a tight loop (a new name
      per attempt, alternating between them); the time from the kill to the first 201. Also
      printed: when a survivor first named a new leader. The killed node is restarted and
      every node is ready again before the next round.

  (c) cold start, --cold-starts times (before (a)): three freshly formatted nodes launched at
      once; the time from the launch to the first node's log line naming a leader (and that
      node's time from its quorum's start, the Raft part alone), the leader's term (above 1:
      a split vote), and the time until every node answers /v1/health/ready.

Also printed: whether the nodes' metadata states agree at the end, and how many CRITICAL
"truncating already-applied log entries" lines pysyncobj wrote (docs/design.md, "Known traps").

Targets (issue 3): (a) >= 500 topic creations/s, (b) median <= 1.5 s.

Usage: .venv/bin/python scripts/bench_quorum.py [--topics 1000] [--kills 10] [--cold-starts 5]
       [--replication-factor 3] [--concurrency 32] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp

# The checkout, so that the scripts package imports (run as a file, only scripts/ is on the path).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.node_process import Cluster, NodeProcess, http, wait_until  # noqa: E402

TARGET_CREATIONS_PER_S = 500.0
TARGET_FAILOVER_MEDIAN_S = 1.5
# A bulk creation answers within the controller's metadata write timeout (10 s) plus the
# forwarding margin; a request still open after this is counted as an error.
REQUEST_TIMEOUT_S = 30.0
# A failover attempt that hangs (a request forwarded to a controller that just died may wait)
# is abandoned after this, and the next attempt goes to the other survivor.
FAILOVER_ATTEMPT_TIMEOUT_S = 1.0
# Back-pressure answers (429, 503) are retried after this pause, and counted.
RETRY_PAUSE_S = 0.02
RETRIES_PER_TOPIC_MAX = 200
# How long one failover round may take before it is reported as failed.
FAILOVER_DEADLINE_S = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
TRUNCATION_LINE = "truncating already-applied log entries"


def cpu_seconds(pid: int | None) -> tuple[float, float]:
    """User and system CPU time of a process so far ((0, 0) if it is gone)."""
    if pid is None:
        return 0.0, 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


@dataclass
class BulkResult:
    via: str
    created: int = 0
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    retry_reasons: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    cpu_s: dict[int, tuple[float, float]] = field(default_factory=dict)  # (user, system)

    @property
    def rate(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0


def reason(text: str) -> str:
    """An error answer's name and message, short, for counting why requests were retried."""
    try:
        body = json.loads(text)
        return f"{body.get('error')}: {str(body.get('message'))[:90]}"
    except (ValueError, AttributeError):
        return text[:90]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def create_topics(
    session: aiohttp.ClientSession,
    node: NodeProcess,
    names: list[str],
    replication_factor: int,
    concurrency: int,
    via: str,
    cluster: Cluster,
) -> BulkResult:
    """Creates every topic through `node` with `concurrency` requests in flight."""
    result = BulkResult(via)
    queue = iter(names)
    url = f"{node.url}/v1/topics"

    async def worker() -> None:
        for name in queue:
            body = {"name": name, "partitions": 1, "replication_factor": replication_factor}
            for attempt in range(RETRIES_PER_TOPIC_MAX):
                sent = time.monotonic()
                try:
                    async with session.post(url, json=body) as response:
                        status = response.status
                        text = await response.text()
                except (aiohttp.ClientError, TimeoutError) as e:
                    result.errors.append(f"{name}: {e!r}")
                    break
                result.statuses[status] += 1
                if status == 201:
                    result.created += 1
                    result.latencies_s.append(time.monotonic() - sent)
                    break
                if status in (429, 503) and attempt + 1 < RETRIES_PER_TOPIC_MAX:
                    result.retries += 1
                    result.retry_reasons[f"{status} {reason(text)}"] += 1
                    await asyncio.sleep(RETRY_PAUSE_S)
                    continue
                result.errors.append(f"{name}: {status} {text[:200]}")
                break

    cpu_before = {n.node_id: cpu_seconds(n.pid) for n in cluster.nodes}
    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.monotonic() - start
    for n in cluster.nodes:
        (user, system), (user0, system0) = cpu_seconds(n.pid), cpu_before[n.node_id]
        result.cpu_s[n.node_id] = (user - user0, system - system0)
    return result


@dataclass
class FailoverRound:
    killed: int
    leader_seen_s: float | None  # first time a survivor named another leader
    new_leader: int | None
    write_s: float | None  # first 201 through a survivor
    attempts: Counter[str]


async def leader_watch(
    session: aiohttp.ClientSession, survivors: list[NodeProcess], old: int, t0: float
) -> tuple[float, int]:
    """Polls the survivors' /v1/cluster until one names a leader other than `old`."""
    while True:
        for node in survivors:
            try:
                async with session.get(
                    f"{node.url}/v1/cluster", timeout=aiohttp.ClientTimeout(total=0.5)
                ) as response:
                    body = await response.json()
                leader = body.get("controller_id")
                if leader is not None and leader != old:
                    return time.monotonic() - t0, int(leader)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                pass
        await asyncio.sleep(0.005)


async def failover_round(
    session: aiohttp.ClientSession, cluster: Cluster, round_no: int
) -> FailoverRound:
    for node in cluster.nodes:
        node.wait_ready()
    old_id = wait_until("one controller seen by every node", lambda: agreed_controller(cluster))
    victim = cluster.node(old_id)
    survivors = [n for n in cluster.nodes if n is not victim]
    attempts: Counter[str] = Counter()
    assert victim.pid is not None
    t0 = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    watch = asyncio.create_task(leader_watch(session, survivors, old_id, t0))
    write_s: float | None = None
    attempt = 0
    while time.monotonic() - t0 < FAILOVER_DEADLINE_S:
        node = survivors[attempt % 2]
        name = f"failover-{round_no}-{attempt}"
        attempt += 1
        try:
            async with session.post(
                f"{node.url}/v1/topics",
                json={"name": name, "partitions": 1, "replication_factor": 1},
                timeout=aiohttp.ClientTimeout(total=FAILOVER_ATTEMPT_TIMEOUT_S),
            ) as response:
                await response.read()
                attempts[str(response.status)] += 1
                if response.status == 201:
                    write_s = time.monotonic() - t0
                    break
        except (aiohttp.ClientError, TimeoutError) as e:
            attempts[type(e).__name__] += 1
        await asyncio.sleep(0.002)  # a tight loop, but let the leader watch run
    try:
        leader_seen_s, new_leader = await asyncio.wait_for(watch, 10.0)
    except TimeoutError:
        leader_seen_s, new_leader = None, None
    victim.process.wait()  # type: ignore[union-attr]  # reap it before the restart
    victim.start(wait=True)
    return FailoverRound(old_id, leader_seen_s, new_leader, write_s, attempts)


# kraft.quorum's line when a node learns of a leader; the timestamp is the node log's (local).
LEADER_LINE = re.compile(
    r"^\[(?P<at>[\d-]+ [\d:]+,\d+)\] INFO \[node \d+\] node (?P<leader>\d+) leads the "
    r"metadata quorum in term (?P<term>\d+) \((?P<after>[\d.]+) s after"
)


@dataclass
class ColdStart:
    leader_s: float | None  # launch -> the first log line naming a leader
    raft_s: float | None  # that node's quorum start -> that line
    term: int | None
    ready_s: float  # launch -> every node ready


def cold_start_round(base: Path) -> ColdStart:
    """Formats three nodes in `base`, launches them at once, waits until all are ready, stops
    them and removes `base`."""
    cluster = Cluster.create(base, count=3)
    launched = datetime.now()
    t0 = time.monotonic()
    try:
        for node in cluster.nodes:
            node.start(wait=False)
        for node in cluster.nodes:
            node.wait_ready()
        ready_s = time.monotonic() - t0
        first: tuple[float, float, int] | None = None
        for node in cluster.nodes:
            for line in node.log_file.read_text(errors="replace").splitlines():
                match = LEADER_LINE.match(line)
                if match:
                    at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f")
                    seen = (
                        (at - launched).total_seconds(),
                        float(match["after"]),
                        int(match["term"]),
                    )
                    first = seen if first is None or seen < first else first
                    break
    finally:
        cluster.stop()
    shutil.rmtree(base, ignore_errors=True)
    if first is None:
        return ColdStart(None, None, None, ready_s)
    return ColdStart(first[0], first[1], first[2], ready_s)


def print_cold_starts(starts: list[ColdStart]) -> None:
    leader = [s.leader_s for s in starts if s.leader_s is not None]
    raft = [s.raft_s for s in starts if s.raft_s is not None]
    ready = [s.ready_s for s in starts]
    splits = sum(1 for s in starts if s.term is not None and s.term > 1)
    if leader and raft:
        print(
            f"  launch -> first leader named: median {statistics.median(leader):.2f} s, max "
            f"{max(leader):.2f} s; of which after that node's quorum started: median "
            f"{statistics.median(raft):.2f} s, max {max(raft):.2f} s"
        )
    print(
        f"  launch -> every node ready: median {statistics.median(ready):.2f} s, max "
        f"{max(ready):.2f} s; first leader in a term above 1 (a split vote) in {splits} of "
        f"{len(starts)}; no leader line in {len(starts) - len(leader)}"
    )


def agreed_controller(cluster: Cluster) -> int | None:
    views = {cluster.controller_id(n) for n in cluster.nodes}
    return views.pop() if len(views) == 1 else None


def print_bulk(result: BulkResult, total: int) -> None:
    lat = result.latencies_s
    cpu = ", ".join(
        f"node {k} {u + s:.1f} s ({s:.1f} s system)" for k, (u, s) in sorted(result.cpu_s.items())
    )
    print(
        f"  via {result.via}: {result.created}/{total} created in {result.seconds:.2f} s = "
        f"{result.rate:.0f}/s; latency median {statistics.median(lat) * 1000 if lat else 0:.0f}"
        f" ms, p99 {quantile(lat, 0.99) * 1000:.0f} ms; retries {result.retries}; "
        f"statuses {dict(result.statuses)}"
    )
    print(f"    CPU used meanwhile: {cpu} (wall {result.seconds:.1f} s)")
    for why, count in result.retry_reasons.most_common(3):
        print(f"    retried {count} x: {why}")
    for error in result.errors[:5]:
        print(f"    error: {error}")
    if len(result.errors) > 5:
        print(f"    ... {len(result.errors) - 5} more errors")


async def run(args: argparse.Namespace, cluster: Cluster) -> bool:
    """Runs both measurements and prints them; False if a failover round could not finish."""
    connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        controller = cluster.node(
            wait_until("one controller seen by every node", lambda: agreed_controller(cluster))
        )
        follower = next(n for n in cluster.nodes if n is not controller)
        rf = args.replication_factor
        print(
            f"metadata writes: {args.topics} topics x 2, 1 partition, replication factor {rf}, "
            f"{args.concurrency} requests in flight"
        )
        bulk = []
        for via, node, prefix in (
            (f"controller (node {controller.node_id})", controller, "direct"),
            (f"follower (node {follower.node_id}, forwarding)", follower, "forwarded"),
        ):
            names = [f"{prefix}-{i:05d}" for i in range(args.topics)]
            result = await create_topics(session, node, names, rf, args.concurrency, via, cluster)
            print_bulk(result, args.topics)
            bulk.append(result)

        print_truncations(cluster)
        # Let every node apply and open what was created before the failover rounds.
        wait_until(
            "every node lists the created topics",
            lambda: all(
                len(http("GET", f"{n.url}/v1/topics")[1]["topics"]) >= 2 * args.topics
                for n in cluster.nodes
            ),
            deadline_s=300,
        )

        # Probes use replication factor 1: once the dead broker is fenced (after its 1.5 s
        # session), a factor of 3 is refused (INVALID_REPLICATION_FACTOR) until it is back.
        print(
            f"failover: {args.kills} x kill -9 of the controller; probes are topics of 1 "
            "partition, replication factor 1"
        )
        rounds: list[FailoverRound] = []
        for round_no in range(args.kills):
            try:
                r = await failover_round(session, cluster, round_no)
            except AssertionError as e:  # a node did not get ready (again): say so, stop
                print(f"  round {round_no + 1}: STOPPED: {str(e).splitlines()[0]}")
                print(f"    (node logs: {cluster.nodes[0].directory.parent}/node-*/node.log)")
                break
            rounds.append(r)
            seen = "-" if r.leader_seen_s is None else f"{r.leader_seen_s:.3f} s"
            wrote = "FAILED" if r.write_s is None else f"{r.write_s:.3f} s"
            print(
                f"  round {round_no + 1}: killed node {r.killed}; new leader node "
                f"{r.new_leader} named after {seen}; first 201 after {wrote}; attempts "
                f"{dict(r.attempts)}"
            )

    print_summary(bulk, rounds, args.kills)
    print_agreement(cluster)
    print_truncations(cluster)
    return bool(len(rounds) == args.kills)


def row(label: str, value: str, target: str = "", verdict: str = "") -> None:
    print(f"{label:<46} {value:>10} {target:>8}  {verdict}")


def print_agreement(cluster: Cluster) -> None:
    """Whether the running nodes reach one applied index and metadata digest."""

    def views() -> set[tuple[int, str]]:
        out = set()
        for node in cluster.running():
            status, body = http("GET", f"{node.url}/v1/cluster/quorum", timeout=5)
            if status != 200:
                return set()
            out.add((body["node"]["applied_index"], body["node"]["metadata_digest"]))
        return out

    try:
        agreed = wait_until("the nodes' metadata states agree", lambda: len(views()) == 1, 60.0)
    except AssertionError:
        agreed = False
    print(f"metadata states of the {len(cluster.running())} running nodes agree: {bool(agreed)}")


def print_truncations(cluster: Cluster) -> None:
    """docs/design.md asks to count pysyncobj's CRITICAL 'truncating already-applied' lines."""
    counts = {
        n.node_id: n.log_file.read_text(errors="replace").count(TRUNCATION_LINE)
        for n in cluster.nodes
    }
    listed = ", ".join(f"node {k}: {v}" for k, v in sorted(counts.items()))
    print(f"CRITICAL '{TRUNCATION_LINE}' lines in the node logs: {listed}")


def print_summary(bulk: list[BulkResult], rounds: list[FailoverRound], kills: int) -> None:
    writes = [r.write_s for r in rounds if r.write_s is not None]
    seen = [r.leader_seen_s for r in rounds if r.leader_seen_s is not None]
    print()
    row("figure", "measured", "target")
    for result in bulk:
        verdict = "ok" if result.rate >= TARGET_CREATIONS_PER_S else "MISSED"
        label = f"topic creations/s via {result.via.split(' (')[0]}"
        row(label, f"{result.rate:.0f}", f">= {TARGET_CREATIONS_PER_S:.0f}", verdict)
    if writes:
        median = statistics.median(writes)
        all_wrote = len(writes) == len(rounds)
        verdict = "ok" if median <= TARGET_FAILOVER_MEDIAN_S and all_wrote else "MISSED"
        target = f"<= {TARGET_FAILOVER_MEDIAN_S}"
        row("failover, kill -9 -> next 201: median (s)", f"{median:.3f}", target, verdict)
        row("failover, kill -9 -> next 201: max (s)", f"{max(writes):.3f}")
    if seen:
        row("failover, kill -9 -> new leader named: median", f"{statistics.median(seen):.3f}")
    if len(writes) != len(rounds):
        print(f"rounds without a write within {FAILOVER_DEADLINE_S} s: {len(rounds) - len(writes)}")
    if len(rounds) != kills:
        print(f"failover rounds completed: {len(rounds)} of {kills}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", type=int, default=1000, help="topics per bulk phase")
    parser.add_argument("--kills", type=int, default=10, help="failover rounds")
    parser.add_argument("--cold-starts", type=int, default=5, help="cold start rounds")
    parser.add_argument("--replication-factor", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument(
        "--dir",
        type=Path,
        help="keep the cluster's files (node logs) in a new directory under DIR "
        "(default: a temporary directory, removed afterwards)",
    )
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix="bench-quorum-", dir=args.dir))
    else:
        base = Path(tempfile.mkdtemp(prefix="bench-quorum-"))
    print(f"cluster files in {base}; load average before: {load_average()}")
    if args.cold_starts:
        print(f"cold start: {args.cold_starts} x three new nodes launched at once")
        starts = []
        for i in range(args.cold_starts):
            start = cold_start_round(base / f"cold-{i}")
            starts.append(start)
            named = "-" if start.leader_s is None else f"{start.leader_s:.2f} s"
            print(
                f"  round {i + 1}: leader named {named} after the launch (term {start.term}, "
                f"{start.raft_s} s after that node's quorum started); all ready after "
                f"{start.ready_s:.2f} s"
            )
        print_cold_starts(starts)
    cluster = Cluster.create(base / "cluster", count=3)
    completed = False
    try:
        started = time.monotonic()
        cluster.start()
        print(f"three nodes ready in {time.monotonic() - started:.1f} s")
        completed = asyncio.run(run(args, cluster))
        print(f"load average after: {load_average()} (2 cores shared with other work)")
    finally:
        cluster.stop()
        if args.dir is None and completed:
            shutil.rmtree(base, ignore_errors=True)
        elif not completed:
            print(f"kept the cluster's files for a look: {base}")
    return 0 if completed else 1


if __name__ == "__main__":
    sys.exit(main())
