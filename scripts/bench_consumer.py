"""Consumer benchmarks on a real three-node cluster on 127.0.0.1.

    .venv/bin/python scripts/bench_consumer.py perf [--records 300000] [--runs 3] [--tool MODULE]
        [--code DIR]
    .venv/bin/python scripts/bench_consumer.py groups [--session-timeout-ms 6000] [--kills 3]

``perf`` creates ``perf`` (3 partitions, replication factor 3), fills it with ``--records``
records of 100 bytes (kraft-producer-perf-test, acks=all) and runs kraft-consumer-perf-test
(or ``--tool``, a module run with ``python -m``) ``--runs`` times, printing each summary line.
With ``--code DIR`` (another checkout, such as ``git worktree add /tmp/old <commit>``) each run
produces and consumes ``--records`` with that checkout's tools and with this one's, in turn,
against the same cluster (this checkout's nodes), and prints the medians of both: a client
before and after a change, under the same load on the machine.

``groups`` measures two things of the Consumer: the rebalance time (a member's process killed
with SIGKILL -> the survivor consuming the dead member's partitions again; this includes the
session timeout, since the coordinator only learns of the death by missing heartbeats) and the
commit throughput (commits/s of one consumer committing after each poll).
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.node_process import Cluster, http, wait_until  # noqa: E402


def create_topic(url: str, name: str, partitions: int, replication_factor: int = 3) -> None:
    def attempt() -> tuple[int, object] | None:
        status, body = http(
            "POST",
            f"{url}/v1/topics",
            {"name": name, "partitions": partitions, "replication_factor": replication_factor},
        )
        return None if status == 503 else (status, body)

    status, body = wait_until(f"topic {name} created", attempt)
    assert status == 201, body

    def leaders_known() -> bool:
        status, described = http("GET", f"{url}/v1/topics/{name}")
        return status == 200 and all(p["leader"] is not None for p in described["partitions"])

    wait_until(f"topic {name} has leaders", leaders_known)


def _tool(code: Path, module: str, *args: str) -> tuple[str, float]:
    """The last line a tool of the checkout ``code`` printed, and the CPU seconds (user +
    system) its process used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The checkout's own modules: python -m finds them in its working directory first.
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=code,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert out.returncode == 0, out.stderr
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out.stdout.splitlines()[-1], cpu_s


def produce(bootstrap: str, topic: str, records: int, code: Path = ROOT) -> tuple[str, float]:
    """kraft-producer-perf-test of ``code``: 100-byte records, acks=all, as fast as it goes."""
    return _tool(
        code,
        "client.tools.producer_perf_test",
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        "100",
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        "acks=all",
    )


def _run_perf_tool(
    tool: str, bootstrap: str, records: int, extra: list[str], code: Path = ROOT
) -> tuple[str, float]:
    """The tool's summary line and the CPU seconds its process used."""
    return _tool(
        code,
        tool,
        "--bootstrap-server",
        bootstrap,
        "--topic",
        "perf",
        "--messages",
        str(records),
        *extra,
    )


def bench_perf(args: argparse.Namespace, cluster: Cluster) -> None:
    first = cluster.nodes[0]
    create_topic(first.url, "perf", 3)
    if args.code is not None:
        bench_codes(args, cluster, Path(args.code).resolve())
        return
    line, _cpu_s = produce(first.bootstrap, "perf", args.records)
    print("produced:", line, flush=True)
    tools = [args.tool, *([args.compare] if args.compare else [])]
    rates: dict[str, list[float]] = {tool: [] for tool in tools}
    for _run in range(args.runs):
        for tool in tools:  # interleaved, so both see the same load on the machine
            line, cpu_s = _run_perf_tool(tool, first.bootstrap, args.records, args.extra)
            rates[tool].append(float(line.split(", ")[5]))
            print(f"{tool}: {line}  (client CPU {cpu_s:.2f} s)", flush=True)
    for tool, values in rates.items():
        print(
            f"{tool}: median {statistics.median(values):,.0f} records/s, best {max(values):,.0f}",
            flush=True,
        )


def bench_codes(args: argparse.Namespace, cluster: Cluster, other: Path) -> None:
    """The perf tools of ``other`` and of this checkout in turn (see the module text)."""
    first = cluster.nodes[0]
    codes = {"other": other, "this": ROOT}
    rates: dict[tuple[str, str], list[float]] = {}
    for _run in range(args.runs):
        for name, code in codes.items():
            line, cpu_s = produce(first.bootstrap, "perf", args.records, code)
            rate = float(line.split(", ")[1].split()[0])
            rates.setdefault(("produce", name), []).append(rate)
            print(f"produce, {name} ({code}): {line}  (client CPU {cpu_s:.2f} s)", flush=True)
        for name, code in codes.items():
            line, cpu_s = _run_perf_tool(args.tool, first.bootstrap, args.records, args.extra, code)
            rates.setdefault(("consume", name), []).append(float(line.split(", ")[5]))
            print(f"consume, {name} ({code}): {line}  (client CPU {cpu_s:.2f} s)", flush=True)
    for (what, name), values in rates.items():
        print(
            f"{what}, {name}: median {statistics.median(values):,.0f} records/s, "
            f"all {', '.join(f'{v:,.0f}' for v in values)}",
            flush=True,
        )


def produce_one(cluster: Cluster, topic: str, partition: int, value: str) -> None:
    """One record, acks=all, to the partition's leader (its 307 followed)."""
    path = f"/v1/topics/{topic}/partitions/{partition}/records?timeout_ms=10000"

    def attempt() -> bool:
        url = cluster.running()[0].url + path
        for _hop in range(3):
            status, body = http("POST", url, {"records": [{"value": value}]})
            if status == 307:
                url = body["leader_url"].rstrip("/") + path
                continue
            return status == 200
        return False

    wait_until(f"a record produced to {topic}-{partition}", attempt)


# A member process for the rebalance measurement: it joins the group and prints its
# assignment changes as JSON lines, flushed at once.
MEMBER = """
import json, sys
from client.consumer import Consumer, ConsumerRebalanceListener
bootstrap, group, topic, session = sys.argv[1:5]
class Listener(ConsumerRebalanceListener):
    def on_partitions_assigned(self, partitions):
        print(json.dumps([p for _, p in partitions]), flush=True)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "session.timeout.ms": session, "heartbeat.interval.ms": "500"})
c.subscribe([topic], Listener())
while True:
    c.poll(200)
"""


def rebalance_once(cluster: Cluster, round_: int, session_ms: int) -> tuple[float, float]:
    """(seconds from the member's kill -9 to the survivor's first record of an orphaned
    partition, seconds until it has read from all of them)."""
    from client.consumer import Consumer

    bootstrap = ",".join(n.bootstrap for n in cluster.nodes)
    group = f"rebalance-{round_}"
    member = subprocess.Popen(
        [sys.executable, "-c", MEMBER, bootstrap, group, "reb", str(session_ms)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    props = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": str(session_ms),
        "heartbeat.interval.ms": "500",
    }
    survivor = Consumer(props)
    try:
        survivor.subscribe(["reb"])
        deadline = time.monotonic() + 60
        while len(survivor.assignment()) != 2:
            assert time.monotonic() < deadline, "the group did not split in two"
            survivor.poll(100)
        for _ in range(10):  # settle: the member reports what it was assigned
            survivor.poll(50)
        orphaned = sorted({p for p in range(4)} - {tp.partition for tp in survivor.assignment()})
        os.kill(member.pid, signal.SIGKILL)
        member.wait()
        killed = time.monotonic()
        for p in orphaned:
            produce_one(cluster, "reb", p, f"after-kill-{round_}")
        first: float | None = None
        read: set[int] = set()
        while read != set(orphaned):
            assert time.monotonic() - killed < 120, "orphaned partitions never read again"
            for record in survivor.poll(50):
                if record.partition in orphaned:
                    first = first if first is not None else time.monotonic() - killed
                    read.add(record.partition)
        assert first is not None
        return first, time.monotonic() - killed
    finally:
        if member.poll() is None:
            member.kill()
            member.wait()
        survivor.close()


def handover_once(cluster: Cluster, round_: int) -> float:
    """Seconds from one member's close() (it commits and leaves with epoch -1) to the other
    member reading the partitions it had."""
    from client.consumer import Consumer

    props = {
        "bootstrap.servers": ",".join(n.bootstrap for n in cluster.nodes),
        "group.id": f"handover-{round_}",
        "auto.offset.reset": "earliest",
        "heartbeat.interval.ms": "500",
    }
    stays, leaves = Consumer(props), Consumer(props)
    try:
        stays.subscribe(["reb"])
        leaves.subscribe(["reb"])
        deadline = time.monotonic() + 60
        while len(stays.assignment()) != 2 or len(leaves.assignment()) != 2:
            assert time.monotonic() < deadline, "the group did not split in two"
            stays.poll(20)
            leaves.poll(20)
        moving = sorted(tp.partition for tp in leaves.assignment())
        for p in moving:
            produce_one(cluster, "reb", p, f"handover-{round_}")
        leaves.close()
        closed = time.monotonic()
        read: set[int] = set()
        while read != set(moving):
            assert time.monotonic() - closed < 60, "the partitions never moved"
            read |= {r.partition for r in stays.poll(20) if r.partition in moving}
        return time.monotonic() - closed
    finally:
        stays.close()
        leaves.close()


def commit_rate(cluster: Cluster, commits: int) -> tuple[float, float]:
    """Commits per second of one consumer committing after each poll: (as a group member,
    with its member id and epoch; without a group, in assign mode)."""
    from client.consumer import Consumer

    bootstrap = cluster.nodes[0].bootstrap
    rates = []
    for mode in ("subscribe", "assign"):
        props = {"bootstrap.servers": bootstrap, "group.id": f"commits-{mode}"}
        with Consumer({**props, "enable.auto.commit": "false"}) as c:
            if mode == "subscribe":
                c.subscribe(["reb"])
                deadline = time.monotonic() + 60
                while len(c.assignment()) != 4:
                    assert time.monotonic() < deadline
                    c.poll(100)
            else:
                c.assign([("reb", p) for p in range(4)])
            c.poll(0)
            start = time.monotonic()
            for i in range(commits):
                c.poll(0)
                c.commit({("reb", i % 4): i})
            rates.append(commits / (time.monotonic() - start))
    return rates[0], rates[1]


def bench_groups(args: argparse.Namespace, cluster: Cluster) -> None:
    create_topic(cluster.nodes[0].url, "reb", 4)
    firsts, alls = [], []
    for round_ in range(args.kills):
        first, everything = rebalance_once(cluster, round_, args.session_timeout_ms)
        firsts.append(first)
        alls.append(everything)
        print(
            f"rebalance {round_}: kill -9 -> first orphaned record {first:.2f} s, "
            f"all orphaned partitions {everything:.2f} s",
            flush=True,
        )
    print(
        f"rebalance (session.timeout.ms={args.session_timeout_ms}): median "
        f"{statistics.median(firsts):.2f} s (max {max(firsts):.2f} s) to the first record, "
        f"{statistics.median(alls):.2f} s to all",
        flush=True,
    )
    handovers = [handover_once(cluster, round_) for round_ in range(args.kills)]
    print(
        "clean close -> its partitions read by the other member: "
        + ", ".join(f"{h:.2f} s" for h in handovers),
        flush=True,
    )
    member_rate, plain_rate = commit_rate(cluster, args.commits)
    print(
        f"commits/s of one consumer committing after each poll: {member_rate:,.0f} as a group "
        f"member, {plain_rate:,.0f} without a group ({args.commits} commits each)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    perf = sub.add_parser("perf")
    perf.add_argument("--records", type=int, default=300_000)
    perf.add_argument("--runs", type=int, default=3)
    perf.add_argument("--tool", default="client.tools.consumer_perf_test")
    perf.add_argument("--compare", help="another tool module, run in turn with --tool")
    perf.add_argument(
        "--code", help="another checkout whose perf tools run in turn with this one's"
    )
    perf.add_argument("extra", nargs="*", help="more flags for the tool (after --)")
    groups = sub.add_parser("groups")
    groups.add_argument("--session-timeout-ms", type=int, default=6000)
    groups.add_argument("--kills", type=int, default=3)
    groups.add_argument("--commits", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-consumer-") as tmp:
        cluster = Cluster.create(Path(tmp), **{"min.insync.replicas": "2"})  # type: ignore[arg-type]
        try:
            cluster.start()
            if args.what == "perf":
                bench_perf(args, cluster)
            else:
                bench_groups(args, cluster)
        finally:
            for node in cluster.running():
                if node.pid is not None:
                    os.kill(node.pid, signal.SIGCONT)
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
