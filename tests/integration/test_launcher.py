"""scripts/cluster and kraft-metadata-quorum against real nodes on 127.0.0.1.

Every cluster lives in a temporary --dir on a free run of ports, and every node is stopped
after its test: by ``scripts/cluster stop``, then, as a safety net, by pid (only a pid whose
command line names that directory).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scripts.node_process import free_port_run
from storage.properties import MetaProperties, load_properties

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "scripts" / "cluster"
# The console script scripts/setup installs (scripts/cluster runs it before any test uses this).
QUORUM_TOOL = ROOT / ".venv" / "bin" / "kraft-metadata-quorum"
# Generous: a start waits for every node to be ready, which takes seconds on a loaded machine.
START_TIMEOUT_S = 120
LINE = re.compile(r"node (\d+) http://127\.0\.0\.1:(\d+) pid (\d+) kafka 127\.0\.0\.1:(\d+)")


def run(argv: list[str], timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def quorum_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return run([str(QUORUM_TOOL), *args], timeout=60)


def is_our_pid(pid: int, directory: Path) -> bool:
    """True if ``pid`` is alive, not a zombie, and its command line names ``directory``."""
    try:
        stat_text = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    state = stat_text[stat_text.rindex(")") + 1 :].split()[0]
    return state != "Z" and str(directory) in cmdline


@dataclass
class Cluster:
    directory: Path
    nodes: int
    base_port: int
    kafka_base_port: int
    seen_pids: set[int] = field(default_factory=set)

    def cluster(self, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
        argv = [str(CLUSTER), command, "--dir", str(self.directory), *extra]
        if command == "start":
            argv += ["--nodes", str(self.nodes), "--base-port", str(self.base_port)]
            argv += ["--kafka-base-port", str(self.kafka_base_port)]
            argv += ["--timeout", str(START_TIMEOUT_S - 20)]
        out = run(argv)
        self.seen_pids.update(int(m.group(3)) for m in LINE.finditer(out.stdout))
        return out

    def start(self) -> dict[int, int]:
        """Runs ``start``, checks it succeeded, returns {node id: pid} from its lines."""
        out = self.cluster("start")
        assert out.returncode == 0, out.stdout + out.stderr
        return self.check_lines(out.stdout)

    def check_lines(self, stdout: str) -> dict[int, int]:
        """The {node id: pid} of lines that must be exactly one documented line per node."""
        lines = stdout.splitlines()
        matches = [LINE.fullmatch(line) for line in lines]
        assert all(matches), stdout
        assert [(int(m.group(1)), int(m.group(2)), int(m.group(4))) for m in matches if m] == [
            (i, self.base_port + 2 * (i - 1), self.kafka_base_port + 2 * (i - 1))
            for i in range(1, self.nodes + 1)
        ]
        return {int(m.group(1)): int(m.group(3)) for m in matches if m}

    def node_dir(self, node_id: int) -> Path:
        return self.directory / f"node-{node_id}"

    def bootstrap(self, node_id: int = 1) -> str:
        return f"127.0.0.1:{self.base_port + 2 * (node_id - 1)}"

    def tear_down(self) -> None:
        try:
            self.cluster("stop")
        finally:
            pids = set(self.seen_pids)
            for pid_file in self.directory.glob("node-*/node.pid"):
                try:
                    pids.add(int(pid_file.read_text()))
                except (OSError, ValueError):
                    pass
            for pid in pids:
                if is_our_pid(pid, self.directory):
                    os.kill(pid, signal.SIGKILL)


MakeCluster = Callable[[int], Cluster]


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[MakeCluster]:
    made: list[Cluster] = []

    def factory(nodes: int) -> Cluster:
        cluster = Cluster(
            tmp_path / f"cluster{len(made)}",
            nodes,
            free_port_run(2 * nodes),
            free_port_run(2 * nodes),
        )
        made.append(cluster)
        return cluster

    try:
        yield factory
    finally:
        for cluster in made:
            cluster.tear_down()


def status_fields(stdout: str) -> dict[str, str]:
    fields = {}
    for line in stdout.splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def replication_rows(stdout: str) -> list[list[str]]:
    # Kafka's table: each cell padded to its column and followed by a tab.
    return [[cell.strip() for cell in line.split("\t")[:-1]] for line in stdout.splitlines()]


# ---------------------------------------------------------------------------------------------
# One node
# ---------------------------------------------------------------------------------------------


def test_start_one_node_writes_kafka_properties_formats_and_reports_it(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(1)
    pids = cluster.start()
    node = cluster.node_dir(1)
    p, k = cluster.base_port, cluster.kafka_base_port
    assert load_properties(node / "node.properties") == {
        "node.id": "1",
        "process.roles": "broker,controller",
        "controller.quorum.voters": f"1@127.0.0.1:{p + 1}",
        "listeners": f"HTTP://127.0.0.1:{p},CONTROLLER://127.0.0.1:{p + 1},KAFKA://127.0.0.1:{k}",
        "advertised.listeners": f"HTTP://127.0.0.1:{p},KAFKA://127.0.0.1:{k}",
        "log.dirs": str(node / "kraft-combined-logs"),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "log.cleaner.backoff.ms": "1000",
    }
    secret = cluster.directory / "cluster.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    cluster_id = (cluster.directory / "cluster.id").read_text().strip()
    meta = MetaProperties.read(node / "kraft-combined-logs")
    assert meta is not None and meta.cluster_id == cluster_id and meta.node_id == 1
    assert (node / "node.pid").read_text().strip() == str(pids[1])
    assert "serving" in (node / "node.log").read_text()
    stamped = [x for x in (node / "node.log").read_text().splitlines() if x.startswith("[")]
    assert all(re.match(r"\[[^\]]+\] [A-Z]+ \[node 1\] ", x) for x in stamped), stamped

    status = cluster.cluster("status")
    assert status.returncode == 0, status.stderr
    assert cluster.check_lines(status.stdout) == pids

    # Quorum tool: Kafka's lines for a quorum of one.
    out = quorum_tool("--bootstrap-server", cluster.bootstrap(), "describe", "--status")
    assert out.returncode == 0, out.stderr
    fields = status_fields(out.stdout)
    assert list(fields) == [
        "ClusterId",
        "LeaderId",
        "LeaderEpoch",
        "HighWatermark",
        "MaxFollowerLag",
        "MaxFollowerLagTimeMs",
        "CurrentVoters",
        "CurrentObservers",
    ]
    assert fields["ClusterId"] == cluster_id
    assert fields["LeaderId"] == "1"
    assert int(fields["LeaderEpoch"]) >= 1 and int(fields["HighWatermark"]) >= 1
    assert fields["MaxFollowerLag"] == "0" and fields["MaxFollowerLagTimeMs"] == "0"
    assert fields["CurrentVoters"] == "[1]" and fields["CurrentObservers"] == "[]"

    out = quorum_tool("--bootstrap-server", cluster.bootstrap(), "describe", "--replication")
    assert out.returncode == 0, out.stderr
    rows = replication_rows(out.stdout)
    assert rows[0] == [
        "NodeId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ]
    assert len(rows) == 2 and rows[1][0] == "1" and rows[1][2] == "0" and rows[1][5] == "Leader"
    assert int(rows[1][1]) >= int(fields["HighWatermark"])


def test_start_restarts_a_node_killed_with_sigkill_and_stop_stops_it(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(1)
    first = cluster.start()[1]
    os.kill(first, signal.SIGKILL)

    # Killed a moment ago, the node may linger as a zombie: status must not count it.
    status = cluster.cluster("status")
    assert status.returncode == 3
    assert status.stdout == ""
    assert "node 1 is not running" in status.stderr

    second = cluster.start()[1]
    assert second != first
    assert (cluster.node_dir(1) / "node.pid").read_text().strip() == str(second)

    stop = cluster.cluster("stop")
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout.splitlines() == [f"stopped node 1 (pid {second})"]
    assert not (cluster.node_dir(1) / "node.pid").exists()
    assert not is_our_pid(second, cluster.directory)
    assert cluster.cluster("status").returncode == 3


def test_start_refuses_a_directory_made_for_another_node_count(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(1)
    cluster.start()
    cluster.nodes = 3
    out = cluster.cluster("start")
    assert out.returncode == 1
    assert "1-node cluster, not 3" in out.stderr
    assert not cluster.node_dir(2).exists()


def test_start_names_a_port_taken_by_another_program_and_starts_nothing(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(1)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", cluster.base_port + 1))
        squatter.listen()
        out = cluster.cluster("start")
    assert out.returncode == 1
    assert f"port {cluster.base_port + 1} (Raft of node 1) is already in use" in out.stderr
    assert not (cluster.node_dir(1) / "node.pid").exists()


# ---------------------------------------------------------------------------------------------
# Three nodes
# ---------------------------------------------------------------------------------------------


def test_three_nodes_start_form_one_quorum_and_a_killed_follower_is_restarted(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(3)
    pids = cluster.start()
    p = cluster.base_port
    props = load_properties(cluster.node_dir(2) / "node.properties")
    assert props["controller.quorum.voters"] == (
        f"1@127.0.0.1:{p + 1},2@127.0.0.1:{p + 3},3@127.0.0.1:{p + 5}"
    )
    assert props["listeners"] == (
        f"HTTP://127.0.0.1:{p + 2},CONTROLLER://127.0.0.1:{p + 3},"
        f"KAFKA://127.0.0.1:{cluster.kafka_base_port + 2}"
    )
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    cluster_id = (cluster.directory / "cluster.id").read_text().strip()
    for node_id in (1, 2, 3):
        meta = MetaProperties.read(cluster.node_dir(node_id) / "kraft-combined-logs")
        assert meta is not None and (meta.cluster_id, meta.node_id) == (cluster_id, node_id)

    # Asked through any node, the tool reads the leader's view: three voters, leader first.
    out = quorum_tool("--bootstrap-server", cluster.bootstrap(3), "describe", "--status")
    assert out.returncode == 0, out.stderr
    fields = status_fields(out.stdout)
    assert fields["ClusterId"] == cluster_id
    assert fields["CurrentVoters"] == "[1,2,3]"
    leader = int(fields["LeaderId"])
    assert leader in (1, 2, 3)
    out = quorum_tool("--bootstrap-server", cluster.bootstrap(3), "describe", "--replication")
    assert out.returncode == 0, out.stderr
    rows = replication_rows(out.stdout)[1:]
    assert [row[5] for row in rows] == ["Leader", "Follower", "Follower"]
    assert int(rows[0][0]) == leader
    assert sorted(int(row[0]) for row in rows) == [1, 2, 3]
    assert all(int(row[1]) >= 0 for row in rows)  # the leader knows every follower's log end

    follower = next(i for i in (1, 2, 3) if i != leader)
    os.kill(pids[follower], signal.SIGKILL)
    again = cluster.start()
    assert again[follower] != pids[follower]
    assert {i: again[i] for i in again if i != follower} == {
        i: pids[i] for i in pids if i != follower
    }

    stop = cluster.cluster("stop")
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout.splitlines() == [f"stopped node {i} (pid {again[i]})" for i in (1, 2, 3)]
    assert not any(is_our_pid(pid, cluster.directory) for pid in again.values())
    # A clean stop leaves Kafka's clean shutdown file, naming the broker epoch the node had.
    for node_id in (1, 2, 3):
        marker = cluster.node_dir(node_id) / "kraft-combined-logs" / ".kafka_cleanshutdown"
        content = json.loads(marker.read_text())
        assert content["version"] == 0 and content["brokerEpoch"] >= 0, content
