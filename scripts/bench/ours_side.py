"""Our three nodes on 127.0.0.1 for scripts/bench/vs-kafka, and our tools against them.

The nodes are scripts/node_process.py's (real ``python -m server.main`` processes, formatted
with ``kraft-storage format``, free ports), with the launcher's topic defaults for three nodes
(replication factor 3, ``min.insync.replicas=2``). The tools are called through their command
lines only (``python -m client.tools.producer_perf_test`` is ``kraft-producer-perf-test``),
with the flags Kafka's take, so a change inside the client cannot break the harness. With
``kafka_listeners`` every node also has a KAFKA listener (Kafka's binary protocol) on
K + 2(i-1), as the launcher gives them (K from ``free_port_run``): :attr:`OursSide.kafka_bootstrap`
is where Kafka's own tools reach them (scripts/bench/ours_kafka_side.py).

Before the nodes start, our packages' bytecode is written (:func:`compile_bytecode`), as
``pip install`` writes it for an installed package and as Kafka ships compiled classes: a
process that finds no up-to-date ``.pyc`` compiles every module of ours from source at each
start (with ``PYTHONDONTWRITEBYTECODE=1``, as scripts/test sets, or a read-only checkout),
about 0.1 s of CPU per process, which the cold start would count four times (three nodes and
the probe, on two cores).
"""

from __future__ import annotations

import compileall
import signal
import sys
from pathlib import Path
from typing import Any

from scripts.bench import parse
from scripts.bench.measure import run_command
from scripts.bench.plan import tool_timeout_s
from scripts.node_process import ROOT, Cluster

# Other tools (topics, the storage tool) answer in seconds; perf tools get plan.tool_timeout_s.
TOOL_TIMEOUT_S = 180.0
NODE_PROPERTIES = {
    "num.partitions": "1",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
}

PACKAGES = ("kraft", "storage", "server", "client", "scripts")


def compile_bytecode(root: Path = ROOT) -> None:
    """Writes the ``.pyc`` files of our packages under ``root`` that are missing or stale."""
    for package in PACKAGES:
        compileall.compile_dir(root / package, quiet=1)


class OursSide:
    """Three of our nodes (formatted by :meth:`prepare`, started by :meth:`launch`) and the
    commands of our tools against them; with ``kafka_listeners``, a KAFKA listener on each."""

    name = "ours"

    def __init__(self, directory: Path, count: int = 3, kafka_listeners: bool = False) -> None:
        self.directory = directory
        self.count = count
        self.kafka_listeners = kafka_listeners
        self.kafka_ports: list[int] = []
        self.cluster: Cluster | None = None

    def _cluster(self) -> Cluster:
        assert self.cluster is not None, "prepare() first"
        return self.cluster

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self._cluster().nodes)

    @property
    def kafka_bootstrap(self) -> str:
        """host:port,... of the nodes' KAFKA listeners."""
        assert self.kafka_ports, "prepare() with kafka_listeners first"
        return ",".join(f"127.0.0.1:{port}" for port in self.kafka_ports)

    def run_tool(self, module: str, *args: str, timeout_s: float = TOOL_TIMEOUT_S) -> str:
        """Runs one of our tools to completion; its stdout (raises on a failure)."""
        command = [sys.executable, "-m", module, *args]
        return run_command(command, f"{module} {' '.join(args)}", timeout_s, ROOT)

    def prepare(self) -> None:
        compile_bytecode()
        # Node properties go through **: Kafka's dotted names are not identifiers.
        properties: Any = NODE_PROPERTIES
        self.cluster = Cluster.create(self.directory, self.count, **properties)
        if self.kafka_listeners:
            self.cluster.give_kafka_listeners()
            self.kafka_ports = [n.kafka_port for n in self.cluster.nodes]

    def launch(self) -> None:
        for node in self._cluster().nodes:
            node.start(wait=False)

    def node_pids(self) -> list[int]:
        return [n.pid for n in self._cluster().running() if n.pid is not None]

    def create_topic(self, topic: str, partitions: int, configs: dict[str, str]) -> None:
        args = [
            "--bootstrap-server", self.bootstrap, "--create", "--topic", topic,
            "--partitions", str(partitions), "--replication-factor", "3",
        ]  # fmt: skip
        for k, v in {"min.insync.replicas": "2", **configs}.items():
            args += ["--config", f"{k}={v}"]
        self.run_tool("client.tools.topics", *args)

    def describe(self, topic: str) -> str:
        return self.run_tool(
            "client.tools.topics", "--bootstrap-server", self.bootstrap, "--describe",
            "--topic", topic,
        )  # fmt: skip

    def producer_perf(self, topic: str, records: int, size: int, props: dict[str, str]) -> str:
        pairs = [f"{k}={v}" for k, v in {"acks": "all", **props}.items()]
        return self.run_tool(
            "client.tools.producer_perf_test",
            "--bootstrap-server", self.bootstrap, "--topic", topic,
            "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
            "--producer-props", *pairs,
            timeout_s=tool_timeout_s(records),
        )  # fmt: skip

    def consumer_perf(self, topic: str, records: int, group: str) -> str:
        return self.run_tool(
            "client.tools.consumer_perf_test",
            "--bootstrap-server", self.bootstrap, "--topic", topic,
            "--num-records", str(records), "--group", group, "--timeout", "30000",
            timeout_s=tool_timeout_s(records),
        )  # fmt: skip

    def probe(self, *args: str) -> list[str]:
        """The command of a probe (scripts/bench/probe.py): mode, bootstrap, ..."""
        return [sys.executable, "-m", "scripts.bench.probe", args[0], self.bootstrap, *args[1:]]

    def leader(self, topic: str, partition: int) -> int | None:
        return parse.partition_leader(self.describe(topic), partition)

    def kill(self, node_id: int) -> None:
        self._cluster().node(node_id).stop(signal.SIGKILL)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()

    def log_tail(self) -> str:
        if self.cluster is None:
            return "(not started)"
        return "\n".join(f"-- our node {n.node_id}:\n{n.log_tail(15)}" for n in self.cluster.nodes)
