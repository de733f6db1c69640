"""kraft-log-dirs --describe on a real three-node cluster: every replica of a topic listed on
its three brokers with its directory, sizes that grow after a produce, Kafka's errors for bad
flags and unknown brokers, and the route's redirect to the broker asked about."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest

from client.admin import Admin
from scripts.node_process import Cluster, NodeProcess, http, run_tool
from tests.integration.conftest import running_cluster

TOPIC = "sizes"
# Replication after an acks=all produce reaches the third replica a moment later.
CATCH_UP_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def sized_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("log-dirs")) as c:
        with Admin(c.nodes[0].bootstrap) as admin:
            admin.create_topic(TOPIC, 2, 3)
            admin.create_topic("other", 1, 1)
        yield c


def log_dirs(node: NodeProcess, *args: str) -> tuple[int, str, str]:
    out = run_tool("client.tools.log_dirs", "--bootstrap-server", node.bootstrap, *args)
    return out.returncode, out.stdout, out.stderr


def describe(node: NodeProcess, *args: str) -> dict[str, Any]:
    code, out, err = log_dirs(node, "--describe", *args)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:2] == [
        "Querying brokers for log directories information",
        "Received log directory information from brokers 1,2,3",
    ]
    assert len(lines) == 3
    parsed: dict[str, Any] = json.loads(lines[2])
    return parsed


def sizes(answer: dict[str, Any]) -> dict[tuple[int, str], int]:
    """(broker, partition) -> size, checking each broker's one directory on the way."""
    found: dict[tuple[int, str], int] = {}
    for broker in answer["brokers"]:
        (log_dir,) = broker["logDirs"]
        assert log_dir["error"] is None
        for p in log_dir["partitions"]:
            assert (p["offsetLag"], p["isFuture"]) == (0, False)
            found[(broker["broker"], p["partition"])] = p["size"]
    return found


def _produce(node: NodeProcess, partition: int, count: int) -> None:
    path = f"/v1/topics/{TOPIC}/partitions/{partition}/records?acks=all"
    records = [{"key": f"k{i}", "value": "x" * 100} for i in range(count)]
    url = node.url + path
    for _hop in range(3):
        status, answer = http("POST", url, {"records": records})
        if status != 307:
            break
        url = answer["leader_url"].rstrip("/") + path
    assert status == 200, answer


def test_every_replica_is_listed_on_its_broker_and_grows_after_a_produce(
    sized_cluster: Cluster,
) -> None:
    node = sized_cluster.nodes[1]
    answer = describe(node, "--topic-list", TOPIC)
    assert answer["version"] == 1
    assert [b["broker"] for b in answer["brokers"]] == [1, 2, 3]
    for broker in answer["brokers"]:
        (log_dir,) = broker["logDirs"]
        assert log_dir["logDir"] == str(sized_cluster.node(broker["broker"]).log_dir.absolute())
    before = sizes(answer)
    replicas = {(b, f"{TOPIC}-{p}") for b in (1, 2, 3) for p in (0, 1)}
    assert set(before) == replicas  # --topic-list leaves "other" out

    _produce(node, 0, 20)
    deadline = time.monotonic() + CATCH_UP_DEADLINE_S
    while True:
        after = sizes(describe(node, "--topic-list", TOPIC))
        grown = {key for key in replicas if after[key] > before[key]}
        if grown == {(b, f"{TOPIC}-0") for b in (1, 2, 3)} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert grown == {(b, f"{TOPIC}-0") for b in (1, 2, 3)}
    assert {after[(b, f"{TOPIC}-0")] for b in (1, 2, 3)} == {after[(1, f"{TOPIC}-0")]}


def test_without_a_topic_list_every_topic_is_listed(sized_cluster: Cluster) -> None:
    found = sizes(describe(sized_cluster.nodes[0]))
    assert sum(1 for (_, name) in found if name == "other-0") == 1  # one replica
    assert {name for (_, name) in found} >= {f"{TOPIC}-0", f"{TOPIC}-1", "other-0"}


def test_a_broker_list_asks_only_those_brokers(sized_cluster: Cluster) -> None:
    code, out, err = log_dirs(sized_cluster.nodes[0], "--describe", "--broker-list", "3,1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1] == "Received log directory information from brokers 1,3"
    assert [b["broker"] for b in json.loads(lines[2])["brokers"]] == [1, 3]


def test_unknown_brokers_are_refused_with_kafkas_message(sized_cluster: Cluster) -> None:
    code, out, err = log_dirs(sized_cluster.nodes[0], "--describe", "--broker-list", "1,9,7")
    assert (code, out) == (1, "")
    assert err == (
        "ERROR: The given brokers do not exist from --broker-list: 7,9. "
        "Current existent brokers: 1,2,3\n"
    )


def test_bad_flags_are_refused(sized_cluster: Cluster) -> None:
    node = sized_cluster.nodes[0]
    assert log_dirs(node, "--describe", "--broker-list", "1,x") == (
        1,
        "",
        'For input string: "x"\n',
    )
    assert log_dirs(node) == (1, "", 'Missing required argument "[describe]"\n')
    code, _, err = log_dirs(node, "--describe", "--brokers", "1")
    assert code == 2 and "unrecognized arguments: --brokers" in err


def test_a_node_sends_a_request_about_another_broker_to_it(sized_cluster: Cluster) -> None:
    one, two = sized_cluster.node(1), sized_cluster.node(2)
    path = "/v1/brokers/2/log-dirs?topics=sizes"
    connection = HTTPConnection("127.0.0.1", one.http_port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 307
        assert response.getheader("Location") == two.url + path
        assert json.loads(response.read()) == {"broker_id": 2, "leader_url": two.url}
    finally:
        connection.close()
    # Followed (urllib follows a GET's 307), broker 2 answers about its own directory.
    status, answer = http("GET", one.url + path)
    assert status == 200 and answer["broker_id"] == 2
    assert answer["log_dirs"][0]["log_dir"] == str(two.log_dir.absolute())
    assert [p["topic"] for p in answer["log_dirs"][0]["partitions"]] == [TOPIC, TOPIC]
    status, answer = http("GET", one.url + "/v1/brokers/9/log-dirs")
    assert status == 404 and answer["error"] == "NOT_FOUND"


# -- with an authorizer: DescribeLogDirs needs DESCRIBE on the cluster ---------------------------

ADMIN = ("admin", "admin-secret")
ALICE = ("alice", "alice-secret")


@pytest.fixture(scope="module")
def secure_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    handle = Cluster.create(
        tmp_path_factory.mktemp("log-dirs-acls"),
        1,
        security="SASL_PLAINTEXT",
        users=dict([ADMIN, ALICE]),
        **{
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
        },
    )
    try:
        handle.start()
        yield handle.nodes[0]
    finally:
        handle.stop()


def test_describing_log_dirs_needs_describe_on_the_cluster(
    secure_node: NodeProcess, tmp_path: Path
) -> None:
    status, answer = secure_node.http("GET", "/v1/brokers/1/log-dirs", auth=ALICE)
    assert (status, answer["error"]) == (403, "CLUSTER_AUTHORIZATION_FAILED")
    config = secure_node.client_properties(tmp_path / "admin.properties", ADMIN)
    out = run_tool(
        "client.tools.log_dirs",
        "--bootstrap-server",
        secure_node.bootstrap,
        "--describe",
        "--command-config",
        str(config),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1] == "Received log directory information from brokers 1"
