"""Growing and shrinking a cluster with the launcher and kraft-cluster, on real nodes: the
dedicated layout (``scripts/cluster start --controllers 3 --brokers 2``), a broker added to
the running cluster (``scripts/cluster add --roles broker``), a broker unregistered
(``kraft-cluster unregister``: refused while it holds replicas, done once its replicas were
moved to the new broker and it is stopped), and the layout read back from the directory by a
plain ``start``, which brings the unregistered broker back as a registered one (Kafka's
behaviour).

The cluster lives in a temporary --dir on a free run of ports and is stopped by
``scripts/cluster stop``, then, as a safety net, by pid (only a pid whose command line names
that directory).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.node_process import free_port_run, http, run_tool, wait_until
from storage.properties import load_properties
from tests.integration.test_launcher import CLUSTER, START_TIMEOUT_S, is_our_pid, run

pytestmark = pytest.mark.timeout(300)

CONTROLLERS, BROKERS = 3, 2
LINE = re.compile(
    r"node (\d+) http://127\.0\.0\.1:(\d+) pid (\d+) (controller|broker)"
    r"(?: kafka 127\.0\.0\.1:\d+)?"
)


class Launcher:
    """scripts/cluster on one directory; remembers every pid it printed, for the tear-down."""

    def __init__(self, directory: Path, base_port: int, kafka_base_port: int) -> None:
        self.directory = directory
        self.base_port = base_port
        self.kafka_base_port = kafka_base_port
        self.pids: set[int] = set()

    def __call__(self, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
        argv = [str(CLUSTER), command, "--dir", str(self.directory), *extra]
        if command in ("start", "add"):  # generous: a loaded machine starts nodes slowly
            argv += ["--timeout", str(START_TIMEOUT_S - 20)]
        out = run(argv)
        self.pids.update(int(m.group(3)) for m in LINE.finditer(out.stdout))
        return out

    def lines(self, out: subprocess.CompletedProcess[str]) -> list[tuple[int, int, str]]:
        """(node id, HTTP port, role) of each line; every line must be a node line."""
        assert out.returncode == 0, out.stdout + out.stderr
        matches = [LINE.fullmatch(line) for line in out.stdout.splitlines()]
        assert matches and all(matches), out.stdout
        return [(int(m.group(1)), int(m.group(2)), m.group(4)) for m in matches if m]

    def pids_of(self, out: subprocess.CompletedProcess[str]) -> dict[int, int]:
        """{node id: pid} of the node lines."""
        return {int(m.group(1)): int(m.group(3)) for m in LINE.finditer(out.stdout)}

    def url(self, node_id: int) -> str:
        return f"http://127.0.0.1:{self.base_port + 2 * (node_id - 1)}"

    def bootstrap(self, node_id: int) -> str:
        return self.url(node_id).removeprefix("http://")

    def tear_down(self) -> None:
        try:
            self("stop")
        finally:
            pids = set(self.pids)
            for pid_file in self.directory.glob("node-*/node.pid"):
                try:
                    pids.add(int(pid_file.read_text()))
                except (OSError, ValueError):
                    pass
            for pid in pids:
                if is_our_pid(pid, self.directory):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    # Room for the added node 6 and a refused node 7 in the port run.
    handle = Launcher(
        tmp_path / "cluster",
        free_port_run(2 * (CONTROLLERS + BROKERS + 2)),
        free_port_run(2 * (CONTROLLERS + BROKERS + 2)),
    )
    try:
        yield handle
    finally:
        handle.tear_down()


def brokers(launcher: Launcher, via: int = 1) -> list[int]:
    status, body = http("GET", launcher.url(via) + "/v1/cluster", timeout=10)
    assert status == 200, body
    return sorted(b["id"] for b in body["brokers"])


def controller_urls(launcher: Launcher) -> dict[int, str]:
    """The registered controllers' URLs by id, as node 1 sees them."""
    status, body = http("GET", launcher.url(1) + "/v1/cluster", timeout=10)
    assert status == 200, body
    return {c["id"]: c["url"] for c in body["controllers"] if c["url"]}


def kraft_cluster(*args: str) -> subprocess.CompletedProcess[str]:
    return run_tool("client.tools.cluster", *args, timeout=60)


def test_layout_flags_that_do_not_mix_are_refused_before_anything_is_made(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "nothing"
    start = [str(CLUSTER), "start", "--dir", str(directory)]
    alone = run([*start, "--brokers", "2"])
    assert alone.returncode == 1
    assert "--controllers and --brokers go together" in alone.stderr
    both = run([*start, "--nodes", "3", "--controllers", "3", "--brokers", "2"])
    assert both.returncode == 1 and "do not mix: choose one" in both.stderr
    controller = run([str(CLUSTER), "add", "--dir", str(directory), "--roles", "controller"])
    assert controller.returncode == 1
    assert "no cluster in" in controller.stderr  # a controller joins a running cluster only
    assert not directory.exists()


def test_dedicated_layout_grows_by_a_broker_and_shrinks_by_unregistering_it(
    launcher: Launcher,
) -> None:
    # Three controllers and two brokers: each line names its role, ids in layout order.
    start = launcher(
        "start",
        "--controllers",
        str(CONTROLLERS),
        "--brokers",
        str(BROKERS),
        "--base-port",
        str(launcher.base_port),
        "--kafka-base-port",
        str(launcher.kafka_base_port),
    )
    started = launcher.lines(start)
    assert launcher.lines(launcher("status")) == started
    assert [(i, role) for i, _port, role in started] == [
        (1, "controller"),
        (2, "controller"),
        (3, "controller"),
        (4, "broker"),
        (5, "broker"),
    ]
    assert [port for _i, port, _role in started] == [
        launcher.base_port + 2 * (i - 1) for i in range(1, 6)
    ]
    broker_props = load_properties(launcher.directory / "node-4" / "node.properties")
    p = launcher.base_port
    assert broker_props["process.roles"] == "broker"
    assert broker_props["controller.quorum.bootstrap.servers"] == (
        f"127.0.0.1:{p + 1},127.0.0.1:{p + 3},127.0.0.1:{p + 5}"
    )
    assert "controller.quorum.voters" not in broker_props
    # Node 1's metadata may trail the quorum's commit by a moment: each view is waited for.
    wait_until("brokers 4 and 5 registered", lambda: brokers(launcher) == [4, 5])

    # A topic on brokers 4 and 5 only, before node 6 exists.
    status, body = http(
        "POST",
        launcher.url(4) + "/v1/topics",
        {"name": "held", "partitions": 2, "replication_factor": 2},
    )
    assert status == 201, body

    # Node 6 joins the running cluster as a broker, with its line as start prints it.
    added = launcher("add", "--roles", "broker")
    assert launcher.lines(added) == [(6, p + 10, "broker")]
    first_pids = {**launcher.pids_of(start), **launcher.pids_of(added)}
    wait_until("broker 6 registered", lambda: brokers(launcher) == [4, 5, 6])
    # Node 7 joins as a controller: it catches up as an observer, then becomes a voter
    # (KIP-853); removed again, it is stopped and later starts skip it.
    joined = launcher("add", "--roles", "controller")
    assert launcher.lines(joined) == [(7, p + 12, "controller")], joined.stderr
    assert "caught up and became a voter" in joined.stderr
    removed = launcher("remove-controller", "--node-id", "7")
    assert removed.returncode == 0, removed.stderr
    assert "Removed KRaft controller 7 with directory id " in removed.stdout
    assert "stopped node 7" in removed.stdout
    # The layout is the directory's: --nodes does not describe it.
    wrong = launcher("start", "--nodes", "3")
    assert wrong.returncode == 1
    assert "holds 3 controllers and 3 brokers, not 3" in wrong.stderr

    # Refusals, each one line and exit 1: a broker with replicas, an unknown id, a controller.
    held = kraft_cluster("unregister", "--bootstrap-server", launcher.bootstrap(1), "--id", "4")
    assert held.returncode == 1, held.stdout + held.stderr
    assert held.stderr.strip() == (
        "broker 4 still holds replicas of 2 partitions (held-0, held-1): move them first with "
        "kraft-reassign-partitions (--generate with the remaining brokers, then --execute)"
    )
    unknown = kraft_cluster("unregister", "-b", launcher.bootstrap(5), "--id", "9")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "Broker ID 9 is not currently registered"
    # A controller-only node is ready once caught up; its registration may come after.
    wait_until("controller 2 registered", lambda: 2 in controller_urls(launcher))
    controller = kraft_cluster("unregister", "-b", launcher.bootstrap(2), "--id", "2")
    assert controller.returncode == 1
    assert "node 2 is a controller, which holds no partitions" in controller.stderr
    assert brokers(launcher) == [4, 5, 6]

    # Drained (its replicas moved to broker 6), stopped alone, then unregistered through a
    # controller-only node.
    status, body = http("GET", launcher.url(5) + "/v1/topics/held")
    assert status == 200, body
    moves = [
        {
            "topic": "held",
            "partition": p["partition"],
            "replicas": [6 if r == 4 else r for r in p["replicas"]],
        }
        for p in body["partitions"]
    ]
    status, body = http("POST", launcher.url(5) + "/v1/reassignments", {"partitions": moves})
    assert status == 200, body

    def drained() -> bool:
        status, body = http("GET", launcher.url(1) + "/v1/topics/held")
        return status == 200 and all(4 not in p["replicas"] for p in body["partitions"])

    wait_until("broker 4 drained", drained)
    pid = int((launcher.directory / "node-4" / "node.pid").read_text())
    stopped = launcher("stop", "--node-id", "4")  # back once it has exited
    assert stopped.stdout == f"stopped node 4 (pid {pid})\n", stopped.stderr
    assert not is_our_pid(pid, launcher.directory)
    assert is_our_pid(first_pids[5], launcher.directory)
    done = kraft_cluster("unregister", "--bootstrap-server", launcher.bootstrap(1), "--id", "4")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Broker 4 is no longer registered.\n"
    wait_until("broker 4 gone", lambda: brokers(launcher, 1) == [5, 6])
    wait_until("broker 5 applied the unregistration", lambda: brokers(launcher, 5) == [5, 6])
    cluster_id = kraft_cluster("cluster-id", "-b", launcher.bootstrap(3))
    assert cluster_id.returncode == 0, cluster_id.stderr
    assert cluster_id.stdout == (
        f"Cluster ID: {(launcher.directory / 'cluster.id').read_text().strip()}\n"
    )

    # A plain start reads the layout from the directory and restarts only node 4, which
    # registers again (Kafka's behaviour for an unregistered broker that comes back).
    again = launcher("start")
    lines = launcher.lines(again)
    assert [(i, role) for i, _port, role in lines] == [
        (1, "controller"),
        (2, "controller"),
        (3, "controller"),
        (4, "broker"),
        (5, "broker"),
        (6, "broker"),
    ]
    restarted = {i for i, pid in launcher.pids_of(again).items() if pid != first_pids.get(i)}
    assert restarted == {4}
    wait_until("broker 4 registered again", lambda: brokers(launcher) == [4, 5, 6])

    stop = launcher("stop")
    assert stop.returncode == 0, stop.stderr
    assert [line.split(" (")[0] for line in stop.stdout.splitlines()] == [
        f"stopped node {i}" for i in range(1, 7)
    ]
