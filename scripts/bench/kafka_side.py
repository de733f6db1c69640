"""A KRaft Kafka 4.4.0 on 127.0.0.1 for scripts/bench/vs-kafka (three nodes) and
scripts/bench_cleaner.py (one), and its tools (:class:`KafkaTools`, which vs-kafka also points
at our nodes' KAFKA listeners: scripts/bench/ours_kafka_side.py).

Each node is combined (``process.roles=broker,controller``, as ours), with a static quorum of
all of them (``controller.quorum.voters``), free ports, its own directory under the run's
temporary one, and what ``bin/kafka-server-start.sh`` gives it: a 1 GiB heap (``-Xmx1G
-Xms1G``), kafka-run-class.sh's JVM options, GC logging, and log4j at INFO to a file (Kafka's
shipped config logs INFO). The tools run as ``bin/kafka-*-perf-test.sh`` runs them
(``-Xmx512M``). Processes are started directly with ``java`` (no shell in between), so the pid
held is the JVM's: it is what is killed and whose memory is read. Topic defaults: replication
factor 3, ``min.insync.replicas=2`` (one node: 1 and 1).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from scripts.bench import parse
from scripts.bench.kafka_dist import KafkaDist
from scripts.bench.measure import run_command
from scripts.bench.plan import tool_timeout_s
from scripts.node_process import free_ports

# kafka-run-class.sh's KAFKA_JVM_PERFORMANCE_OPTS.
JVM_PERFORMANCE_OPTS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)
SERVER_HEAP = ("-Xmx1G", "-Xms1G")  # kafka-server-start.sh
PERF_TOOL_HEAP = ("-Xmx512M",)  # kafka-producer-perf-test.sh, kafka-consumer-perf-test.sh
TOOL_HEAP = ("-Xmx256M",)  # kafka-run-class.sh's default (kafka-topics.sh, the storage tool)
# A node whose peers stopped first may wait for a quorum that is gone: not for long.
STOP_TIMEOUT_S = 20.0
# Other tools (topics, the storage tool) answer in seconds; perf tools get plan.tool_timeout_s.
TOOL_TIMEOUT_S = 180.0

SERVER_LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
"""
TOOLS_LOG4J = """\
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
"""


def server_properties(
    node_id: int,
    port: int,
    controller_port: int,
    voters: str,
    log_dir: Path,
    replication_factor: int = 3,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A combined node's settings (``extra`` added last); everything else is Kafka's default.
    Internal topics get ``replication_factor`` replicas, ``min.insync.replicas`` 2 when there
    are at least three (1 below)."""
    rf = str(replication_factor)
    min_isr = "2" if replication_factor >= 3 else "1"
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "default.replication.factor": rf,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        **(extra or {}),
    }


class KafkaTools:
    """Kafka 4.4.0's tools (topics, configs, the perf tools, KafkaProbe) against the nodes at
    :attr:`bootstrap`, run as Kafka's bin/ scripts run them, their log4j config under
    ``directory``. :class:`KafkaSide` points them at Kafka's nodes,
    scripts/bench/ours_kafka_side.py at the KAFKA listeners of ours. Topics get
    ``replication_factor`` replicas and ``min.insync.replicas`` ``min_insync``."""

    name = "Kafka's tools"
    replication_factor = 3
    min_insync = 2

    def __init__(self, dist: KafkaDist, directory: Path) -> None:
        self.dist = dist
        self.directory = directory
        self.tools_log4j = directory / "tools-log4j2.properties"

    @property
    def bootstrap(self) -> str:
        """host:port,... of the nodes the tools talk to."""
        raise NotImplementedError

    def java(self, main: str, *args: str, heap: tuple[str, ...] = TOOL_HEAP) -> list[str]:
        """The command running ``main`` of Kafka's jars as its bin/ script would."""
        return [
            "java",
            *heap,
            *JVM_PERFORMANCE_OPTS,
            f"-Dlog4j2.configurationFile={self.tools_log4j}",
            "-cp",
            self.dist.classpath,
            main,
            *args,
        ]

    def run_tool(
        self,
        main: str,
        *args: str,
        heap: tuple[str, ...] = TOOL_HEAP,
        timeout_s: float = TOOL_TIMEOUT_S,
    ) -> str:
        """Runs one of Kafka's tools to completion; its stdout (raises on a failure)."""
        return run_command(self.java(main, *args, heap=heap), f"{main} {' '.join(args)}", timeout_s)

    def write_tools_config(self) -> None:
        """The tools' log4j config (WARN and above to stderr): what :meth:`run_tool` needs,
        for tools that run without nodes (DumpLogSegments)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tools_log4j.write_text(TOOLS_LOG4J)

    def alter_topic(self, topic: str, configs: dict[str, str]) -> None:
        """Sets topic configs (Kafka's ConfigCommand, as kafka-configs.sh runs it)."""
        self.run_tool(
            "org.apache.kafka.tools.ConfigCommand",
            "--bootstrap-server", self.bootstrap, "--alter", "--entity-type", "topics",
            "--entity-name", topic,
            "--add-config", ",".join(f"{k}={v}" for k, v in configs.items()),
        )  # fmt: skip

    def create_topic(self, topic: str, partitions: int, configs: dict[str, str]) -> None:
        args = [
            "--bootstrap-server", self.bootstrap, "--create", "--topic", topic,
            "--partitions", str(partitions),
            "--replication-factor", str(self.replication_factor),
        ]  # fmt: skip
        for k, v in {"min.insync.replicas": str(self.min_insync), **configs}.items():
            args += ["--config", f"{k}={v}"]
        self.run_tool("org.apache.kafka.tools.TopicCommand", *args)

    def describe(self, topic: str) -> str:
        return self.run_tool(
            "org.apache.kafka.tools.TopicCommand",
            "--bootstrap-server", self.bootstrap, "--describe", "--topic", topic,
        )  # fmt: skip

    def producer_perf(self, topic: str, records: int, size: int, props: dict[str, str]) -> str:
        pairs = [f"{k}={v}" for k, v in {"acks": "all", **props}.items()]
        return self.run_tool(
            "org.apache.kafka.tools.ProducerPerformance",
            "--bootstrap-server", self.bootstrap, "--topic", topic,
            "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
            "--producer-props", *pairs,
            heap=PERF_TOOL_HEAP, timeout_s=tool_timeout_s(records),
        )  # fmt: skip

    def consumer_perf(self, topic: str, records: int, group: str) -> str:
        return self.run_tool(
            "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server", self.bootstrap, "--topic", topic,
            "--num-records", str(records), "--group", group, "--timeout", "30000",
            heap=PERF_TOOL_HEAP, timeout_s=tool_timeout_s(records),
        )  # fmt: skip

    def probe(self, *args: str) -> list[str]:
        """The command of a probe (scripts/bench/KafkaProbe.java): mode, bootstrap, ..."""
        return self.java("KafkaProbe", args[0], self.bootstrap, *args[1:], heap=PERF_TOOL_HEAP)

    def leader(self, topic: str, partition: int) -> int | None:
        return parse.partition_leader(self.describe(topic), partition)


class KafkaSide(KafkaTools):
    """Kafka nodes (three unless told; formatted by :meth:`prepare`, started by
    :meth:`launch`) and Kafka's tools against them. Topics get ``min(count, 3)`` replicas;
    ``extra`` settings go into every node's properties."""

    name = "Kafka 4.4.0"

    def __init__(
        self,
        dist: KafkaDist,
        directory: Path,
        count: int = 3,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(dist, directory)
        self.replication_factor = min(count, 3)
        self.min_insync = 2 if self.replication_factor >= 3 else 1
        self.extra = dict(extra or {})
        ports = free_ports(2 * count)
        self.ports = {i + 1: (ports[2 * i], ports[2 * i + 1]) for i in range(count)}
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port, _ in self.ports.values())

    def _node_dir(self, node_id: int) -> Path:
        return self.directory / f"kafka-{node_id}"

    def data_dir(self, node_id: int) -> Path:
        """The node's ``log.dirs``: its partition directories and checkpoints."""
        return self._node_dir(node_id) / "data"

    def server_log(self, node_id: int) -> Path:
        """The node's log4j file (every logger at INFO, the cleaner's stats included)."""
        return self._node_dir(node_id) / "server.log"

    def prepare(self) -> None:
        """Writes each node's properties and formats its log directory (one cluster id)."""
        self.write_tools_config()
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in self.ports.items())
        cluster_id = (
            self.run_tool("kafka.tools.StorageTool", "random-uuid").strip().splitlines()[-1]
        )
        for node_id, (port, controller_port) in self.ports.items():
            node_dir = self._node_dir(node_id)
            node_dir.mkdir(parents=True, exist_ok=True)
            props = server_properties(
                node_id,
                port,
                controller_port,
                voters,
                self.data_dir(node_id),
                self.replication_factor,
                self.extra,
            )
            (node_dir / "server.properties").write_text(
                "".join(f"{k}={v}\n" for k, v in props.items())
            )
            (node_dir / "log4j2.properties").write_text(
                SERVER_LOG4J.format(log=self.server_log(node_id))
            )
            self.run_tool(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(node_dir / "server.properties"),
            )

    def launch(self) -> None:
        """Starts the JVMs without waiting for them (the cold start is timed outside)."""
        for node_id in self.ports:
            node_dir = self._node_dir(node_id)
            command = [
                "java",
                *SERVER_HEAP,
                *JVM_PERFORMANCE_OPTS,
                f"-Xlog:gc*:file={node_dir}/kafkaServer-gc.log:time,tags:filecount=10,filesize=100M",
                f"-Dlog4j2.configurationFile={node_dir / 'log4j2.properties'}",
                "-cp",
                self.dist.classpath,
                "kafka.Kafka",
                str(node_dir / "server.properties"),
            ]
            with open(node_dir / "stdout.log", "ab") as out:
                self.processes[node_id] = subprocess.Popen(
                    command, stdout=out, stderr=subprocess.STDOUT
                )

    def wait_ready(self, deadline_s: float = 120.0) -> None:
        """Waits until the nodes answer an admin request (a topic listing); raises
        RuntimeError with the last failure after ``deadline_s``."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                self.run_tool(
                    "org.apache.kafka.tools.TopicCommand",
                    "--bootstrap-server", self.bootstrap, "--list",
                    timeout_s=max(deadline - time.monotonic(), 1.0),
                )  # fmt: skip
                return
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Kafka did not answer within {deadline_s:.0f} s: {exc}"
                    ) from exc
                time.sleep(0.5)

    def node_pids(self) -> list[int]:
        return [p.pid for p in self.processes.values() if p.poll() is None]

    def kill(self, node_id: int) -> None:
        process = self.processes[node_id]
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        """SIGTERM to every node (Kafka's controlled shutdown), SIGKILL after STOP_TIMEOUT_S."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self) -> str:
        parts = []
        for node_id in self.ports:
            log = self.server_log(node_id)
            try:
                lines = log.read_text(errors="replace").splitlines()[-15:]
            except OSError:
                lines = ["(no log)"]
            parts.append(f"-- kafka node {node_id}:\n" + "\n".join(lines))
        return "\n".join(parts)
