#!/usr/bin/env python3
"""Cold start and idle memory of three nodes, as scripts/bench/vs-kafka measures them, with a
timeline of where the time goes. Prints figures, asserts nothing.

Each run formats three nodes (not timed), then launches them and, at the same moment, the
harness's probe (``scripts.bench.probe first-ack``: one record, ``acks=all``, to a new topic,
auto-created, retried until acknowledged). The figure is launch to that acknowledgement, the
probe's own start (a Python process importing our client) included, as in the harness. The
timeline comes from the nodes' logs and the probe's (run with the client's debug log on):

    imports    a node logged its first line (the interpreter and the imports the quorum
               needs; it starts right after, the rest is imported during its election)
    raft       a node learned of the Raft leader (kraft.quorum's line)
    http       a node serves HTTP
    leader     the first node to log that it is the controller (its controller task runs
               once it serves HTTP: an election that ended earlier shows at that moment)
    registered a broker registered with the controller
    unfenced   the controller unfenced a broker (its heartbeat showed it caught up)
    probe-imp  the probe imported its modules
    probe-send the probe's first produce request (the topic exists and has a leader)
    ack        the first acknowledgement (the figure)

Node events are the last of the three nodes (a topic of replication factor 3 waits for all of
them). ``cpu`` is the CPU time each process used up to the ack (2 cores shared by 4 processes:
CPU is what a cold start waits for). After ``--idle-s`` (10 s, as the harness) it reads each
node's VmRSS (the harness's figure: resident memory, shared libraries counted in every
process), RssAnon, RssFile and thread count.

``--code DIR`` (repeatable) runs the nodes and the probe from another checkout (a ``git
worktree`` of an older commit: the "before"); the rounds alternate between them, so a busy
machine slows both alike. ``--importtime`` prints ``python -X importtime`` of ``import
server.main`` instead (median self time per module and per package).

Bytecode: a process that finds no up-to-date ``.pyc`` compiles every module of ours from source
at each start (``PYTHONDONTWRITEBYTECODE=1``, as scripts/test sets, or a read-only tree), about
0.1 s of CPU per process here. Like an installed package (``pip install`` compiles) and like
the harness (scripts/bench/ours_side.py), the runs use compiled bytecode; ``--bytecode
source`` removes our packages' ``__pycache__`` instead, for the figure without it; ``--bytecode
as-is`` leaves them (checkouts prepared by hand).

Usage: .venv/bin/python scripts/bench_coldstart.py [--runs 5] [--idle-s 10] [--code DIR ...]
       [--bytecode compiled|source|as-is] [--importtime] [--dir DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts import node_process  # noqa: E402
from scripts.bench.ours_side import PACKAGES, compile_bytecode  # noqa: E402
from scripts.node_process import Cluster, cpu_seconds  # noqa: E402

NODE_PROPERTIES = {
    "num.partitions": "1",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
}
TOPIC = "bench-first-ack"
PROBE_DEADLINE_S = 120.0
# The probe with the client's debug log on (to stderr, wall-clock seconds first): the harness's
# probe itself, unchanged, so the figure is the harness's.
PROBE_WRAPPER = """
import logging, sys, time
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                    format="%(created).3f %(name)s %(message)s")
logging.getLogger("asyncio").setLevel(logging.WARNING)
from scripts.bench import probe
logging.getLogger("bench").info("imports done")
code = probe.main(sys.argv[1:])
logging.getLogger("bench").info("cpu_s=%.3f", time.process_time())
sys.exit(code)
"""
# (event, pattern) of a node's log line; the first match of a line wins.
NODE_EVENTS = (
    ("imports", re.compile(r"starting from ")),
    ("raft", re.compile(r"leads the metadata")),
    ("http", re.compile(r"serving HTTP on ")),
    ("leader", re.compile(r"is the controller \(term ")),
    ("registered", re.compile(r"registered as broker \d+")),
    ("unfenced", re.compile(r"unfenced broker \d+")),
)
PROBE_EVENTS = (
    ("probe-imp", re.compile(r" bench imports done$")),
    ("probe-send", re.compile(r" client\.sender \S+: attempt \d+ to ")),
)
ORDER = (
    "imports",
    "raft",
    "http",
    "leader",
    "registered",
    "unfenced",
    "probe-imp",
    "probe-send",
    "ack",
)
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\] ")
_PROBE_TIME = re.compile(r"^(\d+\.\d{3}) ")


# -- reading the logs (pure) ---------------------------------------------------------------------


def node_events(log: str) -> dict[str, list[float]]:
    """Each event's wall-clock times (seconds since the epoch) in one node's log. The log's
    timestamps are local time with milliseconds, as server.logs writes them."""
    found: dict[str, list[float]] = {}
    for line in log.splitlines():
        stamp = _LOG_TIME.match(line)
        if stamp is None:
            continue
        for event, pattern in NODE_EVENTS:
            if pattern.search(line):
                at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
                found.setdefault(event, []).append(at + int(stamp.group(2)) / 1000)
                break
    return found


def probe_events(log: str) -> dict[str, list[float]]:
    """Each event's wall-clock times in the probe's debug log (PROBE_WRAPPER's format)."""
    found: dict[str, list[float]] = {}
    for line in log.splitlines():
        stamp = _PROBE_TIME.match(line)
        if stamp is None:
            continue
        for event, pattern in PROBE_EVENTS:
            if pattern.search(line):
                found.setdefault(event, []).append(float(stamp.group(1)))
                break
    return found


Events = dict[str, list[float]]


def timeline(launch_s: float, ack_s: float, nodes: list[Events], probe: Events) -> dict[str, float]:
    """Seconds from launch to each event: for node events the node that got there last (its
    first occurrence), the controller's election the first; unfenced the last broker."""
    out: dict[str, float] = {}
    for event in ("imports", "raft", "http", "registered"):
        firsts = [min(n[event]) for n in nodes if event in n]
        if len(firsts) == len(nodes):
            out[event] = max(firsts) - launch_s
    leaders = [min(n["leader"]) for n in nodes if "leader" in n]
    if leaders:
        out["leader"] = min(leaders) - launch_s
    unfenced = sorted(t for n in nodes for t in n.get("unfenced", []))
    if len(unfenced) >= len(nodes):
        out["unfenced"] = unfenced[len(nodes) - 1] - launch_s
    for event in ("probe-imp", "probe-send"):
        if event in probe:
            out[event] = min(probe[event]) - launch_s
    out["ack"] = ack_s - launch_s
    return out


# -- running -------------------------------------------------------------------------------------


@dataclass
class Run:
    code: Path
    events: dict[str, float]
    cpu_s: list[float]  # per node, then the probe
    status: list[dict[str, int]] = field(default_factory=list)  # per node, KiB or count


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile (KiB) and Threads of a process."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            out[key] = int(value.split()[0])
    return out


def prepare_bytecode(code: Path, bytecode: str) -> None:
    """Writes the .pyc of our packages, as the harness does ("compiled"), or removes them
    ("source"); "as-is" leaves them."""
    if bytecode == "compiled":
        compile_bytecode(code)
    elif bytecode == "source":
        for package in PACKAGES:
            for cache in (code / package).rglob("__pycache__"):
                shutil.rmtree(cache, ignore_errors=True)


def one_run(code: Path, work: Path, idle_s: float, verbose: bool) -> Run:
    node_process.ROOT = code  # the nodes and the storage tool run from that checkout
    properties: Any = NODE_PROPERTIES  # through **: Kafka's dotted names are not identifiers
    cluster = Cluster.create(work, 3, **properties)
    bootstrap = ",".join(n.bootstrap for n in cluster.nodes)
    try:
        launch_s = time.time()
        for node in cluster.nodes:
            node.start(wait=False)
        probe = subprocess.run(
            [sys.executable, "-c", PROBE_WRAPPER, "first-ack", bootstrap, TOPIC]
            + [str(int(launch_s * 1000))],
            capture_output=True,
            text=True,
            timeout=PROBE_DEADLINE_S,
            cwd=code,
            check=False,
        )
        ack_s = time.time()
        cpu = [cpu_seconds(n.pid) for n in cluster.nodes if n.pid is not None]
        if probe.returncode != 0:
            raise RuntimeError(f"the probe exited {probe.returncode}:\n{probe.stderr[-3000:]}")
        figure = re.search(r"^first-ack ms=(\d+)$", probe.stdout, re.MULTILINE)
        assert figure is not None, probe.stdout
        ack_s = launch_s + int(figure.group(1)) / 1000  # the probe's own clock, as the harness
        probe_cpu = re.search(r" bench cpu_s=([\d.]+)$", probe.stderr, re.MULTILINE)
        cpu.append(float(probe_cpu.group(1)) if probe_cpu else float("nan"))
        logs = [n.log_file.read_text(errors="replace") for n in cluster.nodes]
        nodes = [node_events(text) for text in logs]
        events = timeline(launch_s, ack_s, nodes, probe_events(probe.stderr))
        if verbose:
            for node, text in zip(cluster.nodes, logs, strict=True):
                print(f"--- node {node.node_id}\n{text}")
            print(f"--- probe\n{probe.stderr}")
        time.sleep(idle_s)
        status = [proc_status(n.pid) for n in cluster.nodes if n.pid is not None]
        return Run(code, events, cpu, status)
    finally:
        cluster.stop()


def print_run(index: int, run: Run) -> None:
    events = "  ".join(f"{e} {run.events[e]:.2f}" if e in run.events else f"{e} -" for e in ORDER)
    cpu = " ".join(f"{c:.2f}" for c in run.cpu_s)
    rss = " ".join(f"{s['VmRSS'] / 1024:.1f}" for s in run.status)
    print(f"run {index} [{run.code}]: {events}  | cpu s (nodes, probe) {cpu} | RSS MiB {rss}")


def print_summary(runs: list[Run]) -> None:
    for code in dict.fromkeys(r.code for r in runs):
        mine = [r for r in runs if r.code == code]
        print(f"\n{code}: {len(mine)} runs, medians (seconds after launch)")
        for event in ORDER:
            values = [r.events[event] for r in mine if event in r.events]
            if values:
                print(
                    f"  {event:<11} {statistics.median(values):5.2f}   "
                    f"(min {min(values):.2f}, max {max(values):.2f})"
                )
        # Less sensitive to a busy machine than the figure: the imports are CPU, what follows
        # is mostly waiting (elections, registrations, polls).
        after_http = [r.events["ack"] - r.events["http"] for r in mine if "http" in r.events]
        if after_http:
            print(
                f"  ack after the last node serves HTTP: {statistics.median(after_http):.2f} s "
                f"(min {min(after_http):.2f}, max {max(after_http):.2f})"
            )
        cpus = [statistics.median(r.cpu_s[:-1]) for r in mine]
        probe_cpus = [r.cpu_s[-1] for r in mine]
        print(
            f"  cpu to the ack: node {statistics.median(cpus):.2f} s, "
            f"probe {statistics.median(probe_cpus):.2f} s"
        )
        for key in ("VmRSS", "RssAnon", "RssFile"):
            per_node = [s[key] / 1024 for r in mine for s in r.status]
            if per_node:
                print(
                    f"  {key:<8} per node, idle: median {statistics.median(per_node):.1f} MiB "
                    f"(min {min(per_node):.1f}, max {max(per_node):.1f}); three nodes "
                    f"{statistics.median(per_node) * 3:.0f} MiB"
                )
        threads = [s["Threads"] for r in mine for s in r.status]
        if threads:
            print(f"  threads per node, idle: {statistics.median(threads):.0f}")


def importtime(code: Path, rounds: int) -> None:
    """Median ``-X importtime`` self time of ``import server.main``: the slowest modules, the
    packages, and the resident memory and module count after the import."""
    selfs: dict[str, list[int]] = {}
    line = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)")
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import server.main"],
            capture_output=True,
            text=True,
            cwd=code,
            check=True,
        )
        for match in line.finditer(out.stderr):
            selfs.setdefault(match.group(2), []).append(int(match.group(1)))
    median = {name: statistics.median(times) / 1000 for name, times in selfs.items()}
    packages: dict[str, float] = {}
    for name, ms in median.items():
        packages[name.split(".")[0]] = packages.get(name.split(".")[0], 0.0) + ms
    print(f"{code}: import server.main, {len(median)} modules, {sum(median.values()):.0f} ms")
    print("  slowest modules (self ms):")
    for name, ms in sorted(median.items(), key=lambda x: -x[1])[:15]:
        print(f"    {ms:6.1f}  {name}")
    print("  by package (self ms):")
    for name, ms in sorted(packages.items(), key=lambda x: -x[1])[:15]:
        print(f"    {ms:6.1f}  {name}")
    probe = (
        "import server.main, sys; s = open('/proc/self/status').read(); "
        "print(len(sys.modules), s.split('VmRSS:')[1].split()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=code, check=True
    )
    modules, rss_kib = out.stdout.split()
    print(f"  after the import: {modules} modules, VmRSS {int(rss_kib) / 1024:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold starts per checkout")
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle time before the RSS")
    parser.add_argument("--code", type=Path, action="append", help="checkout(s) to run")
    parser.add_argument(
        "--bytecode", choices=("compiled", "source", "as-is"), default="compiled", help="our .pyc"
    )
    parser.add_argument("--importtime", action="store_true", help="import times only")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the work directory")
    parser.add_argument("--verbose", action="store_true", help="print every log")
    args = parser.parse_args()
    codes = [c.resolve() for c in (args.code or [node_process.ROOT])]
    for code in codes:
        prepare_bytecode(code, args.bytecode)
    if args.importtime:
        for code in codes:
            importtime(code, max(args.runs, 3))
        return
    runs: list[Run] = []
    work = Path(tempfile.mkdtemp(prefix="coldstart-", dir=args.dir))
    try:
        for index in range(args.runs):
            for code in codes:
                run = one_run(code, work / f"run-{len(runs)}", args.idle_s, args.verbose)
                runs.append(run)
                print_run(index, run)
                sys.stdout.flush()
                shutil.rmtree(work / f"run-{len(runs) - 1}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_summary(runs)
    if args.bytecode == "source" and not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("\n(PYTHONDONTWRITEBYTECODE is not set: the first run wrote .pyc files)")


if __name__ == "__main__":
    main()
