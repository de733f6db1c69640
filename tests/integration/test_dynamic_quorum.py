"""The dynamic controller quorum (KIP-853) on real nodes: every voter of a three-controller
quorum replaced one by one while writes go on, and what is refused.

One cluster for the module (the tests run in order and share it): controllers 1 to 3 and
broker 4. Controllers 5, 6 and 7 join with controller.quorum.bootstrap.servers, follow the
log as observers, and are added with kraft-metadata-quorum add-controller; 1, 2 and 3 are
removed with remove-controller (the leader among them hands over first) and stopped. An
acks=all writer on the broker and a creator of topics (metadata writes through the
controller) run the whole time; each of their writes succeeds (retrying only the retriable
answers of a leader change). Then a new voter and the broker restart and come back with the
log's voter set, not the formatted one; bad changes are refused with nothing changed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from scripts.node_process import CONTROLLER, Cluster, NodeProcess, run_tool, wait_until
from storage.properties import MetaProperties

WAIT_S = 60.0
REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER = 4
# Answers a client retries (a leader change, a node catching up): not failures.
RETRIABLE = {"LEADER_NOT_AVAILABLE", "NOT_LEADER_OR_FOLLOWER", "REQUEST_TIMED_OUT"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    handle = Cluster.create(tmp_path_factory.mktemp("dynamic-quorum"), controllers=3, brokers=1)
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def quorum(node: NodeProcess) -> dict[str, Any]:
    status, body = node.http("GET", "/v1/cluster/quorum", timeout=5)
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def voters_seen_by(node: NodeProcess) -> list[int | None]:
    return sorted((v["id"] for v in quorum(node)["voters"]), key=lambda i: (i is None, i or 0))


def metadata_quorum(node: NodeProcess, *args: str) -> Any:
    return run_tool("client.tools.metadata_quorum", "--bootstrap-controller", node.bootstrap, *args)


def directory_id(node: NodeProcess) -> str:
    meta = MetaProperties.read(node.log_dir)
    assert meta is not None and meta.directory_id is not None
    return meta.directory_id


class Writers:
    """An acks=all producer and a topic creator on the broker, each writing until stopped;
    a write that is refused with a retriable answer is tried again (up to WAIT_S)."""

    def __init__(self, broker: NodeProcess) -> None:
        self.broker = broker
        self.acked = 0
        self.topics = 0
        self.failures: list[str] = []
        self.produce_retries = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._produce, daemon=True),
            threading.Thread(target=self._create, daemon=True),
        ]

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(WAIT_S)

    def _write(self, method: str, path: str, body: Any, ok: int) -> bool:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                status, answer = self.broker.http(method, path, body, timeout=15)
            except OSError as e:
                self.failures.append(f"{path}: {e}")
                return False
            if status == ok:
                return True
            error = answer.get("error") if isinstance(answer, dict) else None
            if error not in RETRIABLE:
                self.failures.append(f"{path}: {status} {answer}")
                return False
            if "records" in path:
                self.produce_retries += 1
            time.sleep(0.05)
        self.failures.append(f"{path}: still refused after {WAIT_S} s")
        return False

    def _produce(self) -> None:
        n = 0
        while not self._stop.is_set():
            body = {"records": [{"value": f"r{n}"}]}
            if not self._write("POST", "/v1/topics/events/records?acks=all", body, 200):
                return
            self.acked += 1
            n += 1

    def _create(self) -> None:
        while not self._stop.is_set():
            body = {"name": f"t{self.topics}", "partitions": 1, "replication_factor": 1}
            if not self._write("POST", "/v1/topics", body, 201):
                return
            self.topics += 1
            self._stop.wait(0.1)


def add_controller(cluster: Cluster) -> tuple[NodeProcess, float]:
    """Starts one more controller, adds it as a voter once it has caught up (the quorum says
    when it has not yet), and returns it with the seconds from its start to being a voter."""
    started = time.monotonic()
    node = cluster.add_node(CONTROLLER)  # ready: it follows the log as an observer
    via = next(n for n in cluster.running() if n.is_controller and n is not node)

    def added() -> bool:
        out = metadata_quorum(via, "--command-config", str(node.properties), "add-controller")
        if out.returncode == 0:
            assert out.stdout.strip() == (
                f"Added controller {node.node_id} with directory id {directory_id(node)} and "
                f"endpoints: CONTROLLER://127.0.0.1:{node.raft_port}"
            )
            return True
        # Not yet: catching up, the previous change finishing, or a leader that took over a
        # moment ago and has not heard the observer yet.
        waits = ("not caught up", "in progress", "does not follow")
        assert any(word in out.stderr for word in waits), out.stderr
        return False

    wait_until(f"node {node.node_id} to be added", added, WAIT_S)
    return node, time.monotonic() - started


def remove_controller(cluster: Cluster, node: NodeProcess) -> None:
    via = next(n for n in cluster.running() if n.is_controller and n is not node)
    out = metadata_quorum(
        via,
        "remove-controller",
        "--controller-id",
        str(node.node_id),
        "--controller-directory-id",
        directory_id(node),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        f"Removed KRaft controller {node.node_id} with directory id {directory_id(node)}"
    )
    node.stop()


def restart_joined_voter(cluster: Cluster, node: NodeProcess) -> None:
    """A voter that joined (no controller.quorum.voters) restarts while the original voters
    run: it comes back as one of their quorum, never as a quorum of its own."""
    one = cluster.node(1)
    wait_until(  # its registration may follow its promotion
        f"node 1 to name voter {node.node_id}",
        lambda: node.node_id in voters_seen_by(one),
        WAIT_S,
    )
    before = voters_seen_by(one)
    node.stop()
    node.start()  # ready: it knows a live leader and caught up with it
    status = quorum(node)
    assert status["leader_id"] != node.node_id, status
    leader = cluster.node(status["leader_id"])
    assert quorum(leader)["leader_id"] == leader.node_id
    assert quorum(leader)["term"] == status["term"]
    wait_until(
        f"node {node.node_id} to see the voters {before}",
        lambda: voters_seen_by(node) == before,
        WAIT_S,
    )
    wait_until(
        f"the leader to reach node {node.node_id} again",
        lambda: any(v["id"] == node.node_id and v["connected"] for v in quorum(leader)["voters"]),
        WAIT_S,
    )
    # Again with its saved commit index from before its add (it is saved lazily: a restart
    # right after the add): the add may have been overwritten, for all its files say, so it
    # starts as an observer and turns voter once the leader shows the add committed.
    node.stop()
    state_file = node.log_dir / "__cluster_metadata-0" / "quorum-state"
    saved = orjson.loads(state_file.read_bytes())
    state_file.write_bytes(orjson.dumps({**saved, "commit_index": 1}))
    turned = f"node {node.node_id} is a voter of the metadata quorum now"
    log = node.directory / "node.log"
    before_turns = log.read_text(encoding="utf-8").count(turned)
    node.start()
    wait_until(
        f"node {node.node_id} to turn voter again",
        lambda: (
            log.read_text(encoding="utf-8").count(turned) == before_turns + 1
            and any(v["id"] == node.node_id and v["connected"] for v in quorum(leader)["voters"])
        ),
        WAIT_S,
    )
    assert quorum(node)["leader_id"] == leader.node_id


def test_every_voter_is_replaced_one_by_one_while_writes_go_on(cluster: Cluster) -> None:
    broker = cluster.node(BROKER)
    status, topic = broker.http(
        "POST", "/v1/topics", {"name": "events", "partitions": 1, "replication_factor": 1}
    )
    assert status == 201, topic
    catch_up: list[float] = []
    with Writers(broker) as writers:
        for old in (1, 2, 3):
            new, seconds = add_controller(cluster)
            catch_up.append(seconds)
            if old == 1:
                restart_joined_voter(cluster, new)
            remove_controller(cluster, cluster.node(old))
            # The voters now: the original ones left and the new ones.
            expected = sorted(n.node_id for n in cluster.running() if n.is_controller)
            wait_until(
                f"broker {BROKER} to follow the voters {expected}",
                lambda expected=expected: voters_seen_by(broker) == expected,
                WAIT_S,
            )
            assert writers.failures == [], writers.failures
    assert writers.failures == [], writers.failures
    assert writers.acked > 0 and writers.topics > 0
    print(f"\nnew voters caught up and were added in {', '.join(f'{s:.1f}' for s in catch_up)} s")
    # Every acknowledged record is in the log; once, unless a produce was retried (a retry
    # after an unknown outcome may store it twice: no idempotence here).
    status, body = broker.http("GET", "/v1/topics/events/partitions/0/offsets")
    assert status == 200, body
    if writers.produce_retries:
        assert body["latest"] >= writers.acked, body
    else:
        assert body["latest"] == writers.acked, body
    leader = quorum(broker)["leader_id"]
    assert leader in (5, 6, 7)
    for node in (cluster.node(5), cluster.node(6), cluster.node(7)):
        assert voters_seen_by(node) == [5, 6, 7]
    out = metadata_quorum(cluster.node(5), "describe", "--status")
    assert out.returncode == 0, out.stderr
    assert "CurrentVoters:          [5,6,7]" in out.stdout
    assert "CurrentObservers:       [4]" in out.stdout


def test_a_new_voter_and_a_broker_restart_with_the_logs_voter_set(cluster: Cluster) -> None:
    for node_id in (6, BROKER):
        node = cluster.node(node_id)
        node.stop()
        node.start()  # waits until ready: it needs the quorum (5, 6, 7), none of 1 to 3
        wait_until(
            f"node {node_id} to see the voters 5, 6, 7",
            lambda node=node: voters_seen_by(node) == [5, 6, 7],
            WAIT_S,
        )
    broker = cluster.node(BROKER)
    status, answer = broker.http(
        "POST", "/v1/topics", {"name": "after-restart", "partitions": 1, "replication_factor": 1}
    )
    assert status == 201, answer


def test_bad_changes_are_refused_with_a_clear_message_and_change_nothing(
    cluster: Cluster,
) -> None:
    via = cluster.node(5)
    six = cluster.node(6)
    before = voters_seen_by(via)
    again = metadata_quorum(via, "--command-config", str(six.properties), "add-controller")
    assert again.returncode == 1
    assert f"the Raft address 127.0.0.1:{six.raft_port} is already a voter's (node 6)" in (
        again.stderr
    )
    unknown = metadata_quorum(
        via,
        "remove-controller",
        "--controller-id",
        "9",
        "--controller-directory-id",
        directory_id(six),
    )
    assert unknown.returncode == 1 and "node 9 is not a voter" in unknown.stderr
    wrong = metadata_quorum(
        via,
        "remove-controller",
        "--controller-id",
        "6",
        "--controller-directory-id",
        directory_id(via),
    )
    assert wrong.returncode == 1
    assert f"voter 6 has directory id {directory_id(six)}, not {directory_id(via)}" in wrong.stderr
    # A removed controller's node (1, stopped) cannot be added back while it does not run.
    one = cluster.node(1)
    gone = metadata_quorum(via, "--command-config", str(one.properties), "add-controller")
    assert gone.returncode == 1 and "node 1 does not follow the metadata log" in gone.stderr
    # A broker follows the log too, caught up: it is no controller to add, at any address.
    status, answer = via.http(
        "POST",
        "/v1/cluster/quorum/voters",
        {
            "voter_id": BROKER,
            "directory_id": directory_id(cluster.node(BROKER)),
            "raft_address": "10.9.9.9:1",
        },
    )
    assert status == 400, answer
    assert f"node {BROKER} follows the metadata log as a broker-only node" in str(answer)
    assert voters_seen_by(via) == before == [5, 6, 7]


def test_a_broker_down_while_every_voter_it_knew_was_replaced_comes_back(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The broker's log names voters 5, 6, 7 in a dump of its own; all three are replaced
    # while it is down, and its bootstrap servers are updated to the new ones: it dials those
    # besides its log's (all stopped), and follows the log again.
    broker = cluster.node(BROKER)
    broker.stop()
    broker.env = compaction_shim(tmp_path)  # a dump within a second, not five minutes
    broker.start()
    dump = broker.log_dir / "__cluster_metadata-0" / "metadata.dump"
    wait_until(f"broker {BROKER} to write a dump", dump.exists, WAIT_S)
    broker.stop()
    for old in (5, 6, 7):
        add_controller(cluster)
        remove_controller(cluster, cluster.node(old))
    new = sorted(n.node_id for n in cluster.running() if n.is_controller)
    assert len(new) == 3 and not {5, 6, 7} & set(new)
    bootstrap = ",".join(f"127.0.0.1:{cluster.node(n).raft_port}" for n in new)
    lines = broker.properties.read_text(encoding="utf-8").splitlines()
    key = "controller.quorum.bootstrap.servers="
    lines = [f"{key}{bootstrap}" if line.startswith(key) else line for line in lines]
    broker.properties.write_text("\n".join(lines) + "\n", encoding="utf-8")
    broker.start()  # waits until ready: it hears the new leader
    wait_until(
        f"broker {BROKER} to follow the voters {new}",
        lambda: voters_seen_by(broker) == new,
        WAIT_S,
    )


def compaction_shim(directory: Path) -> dict[str, str]:
    """A node environment whose metadata quorum compacts its log every second."""
    (directory / "sitecustomize.py").write_text(
        "import kraft.limits\nkraft.limits.RAFT_COMPACTION_INTERVAL_S = 1.0\n",
        encoding="utf-8",
    )
    env = dict(os.environ)
    paths = [str(directory), str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
