"""TLS on the HTTP listener (``listener.security.protocol.map=HTTP:SSL``), with real nodes.

Each cluster gets its own CA and node keystores (scripts/certs.py, through
``Cluster.create(security="SSL")``). Checked: a node serves https only; every node-to-node call
(registration and heartbeats, forwarded admin requests, replica fetches, the redirects clients
follow) works over https with the peers' certificates verified; the tools reach the cluster
with Kafka's client properties (``security.protocol=SSL`` and the CA as truststore) and fail in
one line without the CA; and a kill -9 of a partition leader is a failover like any other.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.node_process import Cluster, NodeProcess, http, run_tool, wait_until

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    handle = Cluster.create(
        tmp_path_factory.mktemp("tls"), 3, security="SSL", **{"min.insync.replicas": "2"}
    )
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def partition_view(node: NodeProcess, topic: str) -> dict[str, Any] | None:
    try:
        status, body = node.http("GET", f"/v1/topics/{topic}", timeout=5)
    except OSError:
        return None
    return body["partitions"][0] if status == 200 else None


def wait_known_everywhere(cluster: Cluster, topic: str, isr: int = 3) -> int:
    """Waits until every running node sees the topic's leader and an ISR of ``isr``;
    returns the leader's id."""

    def agreed() -> int | None:
        views = [partition_view(n, topic) for n in cluster.running()]
        if None in views:
            return None
        leaders = {v["leader"] for v in views if v is not None}
        full = all(v is not None and len(v["isr"]) == isr for v in views)
        return leaders.pop() if len(leaders) == 1 and full and None not in leaders else None

    leader: int = wait_until(f"{topic}: every node knows its leader and ISR", agreed)
    return leader


def tool(module: str, *args: str, input: str | None = None) -> Any:
    return run_tool(module, *args, input=input, timeout=60)


def test_a_tls_node_answers_plain_http_with_a_closed_connection_not_data(
    tls_cluster: Cluster,
) -> None:
    node = tls_cluster.nodes[0]
    with socket.create_connection(("127.0.0.1", node.http_port), timeout=10) as s:
        s.sendall(b"GET /v1/cluster HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        try:
            while chunk := s.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    assert b"HTTP/" not in received and b"cluster_id" not in received, received
    # Plain urllib sees the same: no answer, an error.
    with pytest.raises(OSError):
        http("GET", f"http://127.0.0.1:{node.http_port}/v1/cluster", timeout=10)
    # ... and the node serves https as before, without a traceback in its log for it.
    status, body = node.http("GET", "/v1/health/ready")
    assert status == 200, body
    assert "Traceback" not in node.log_file.read_text()


def test_every_node_registers_its_https_url_and_verifies_its_peers(
    tls_cluster: Cluster,
) -> None:
    for node in tls_cluster.nodes:
        status, body = node.http("GET", "/v1/cluster")
        assert status == 200, body
        assert {b["id"]: (b["url"], b["fenced"]) for b in body["brokers"]} == {
            n.node_id: (n.url, False) for n in tls_cluster.nodes
        }
        assert all(n.url.startswith("https://127.0.0.1:") for n in tls_cluster.nodes)


def test_a_client_without_the_ca_fails_certificate_verification(tls_cluster: Cluster) -> None:
    node = tls_cluster.nodes[0]
    with pytest.raises(urllib.error.URLError) as caught:
        http("GET", f"{node.url}/v1/cluster", timeout=10)
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)


def test_forwarded_admin_calls_redirects_and_replication_work_over_https(
    tls_cluster: Cluster,
) -> None:
    controller_id = tls_cluster.controller_id()
    assert controller_id is not None
    # An admin call to a node that is not the controller is forwarded to it (over https).
    via = next(n for n in tls_cluster.nodes if n.node_id != controller_id)
    status, body = via.http(
        "POST", "/v1/topics", {"name": "forwarded", "partitions": 1, "replication_factor": 3}
    )
    assert status == 201, body
    leader_id = wait_known_everywhere(tls_cluster, "forwarded")
    follower = next(n for n in tls_cluster.nodes if n.node_id != leader_id)
    # A produce to a follower is sent to the leader's https URL (307, Location).
    status, body = follower.http(
        "POST", "/v1/topics/forwarded/partitions/0/records", {"records": [{"value": "x"}]}
    )
    assert status == 307, body
    leader = tls_cluster.node(leader_id)
    assert body["leader_url"] == leader.url, body
    # The topic endpoint of a follower forwards the records to the leader itself (https).
    status, body = follower.http(
        "POST", "/v1/topics/forwarded/records?acks=all", {"records": [{"value": "v0"}]}
    )
    assert status == 200, body
    # acks=all with min.insync.replicas=2: answered only once followers fetched it over https.
    status, body = leader.http(
        "POST",
        "/v1/topics/forwarded/partitions/0/records?acks=all",
        {"records": [{"value": f"v{i}"} for i in range(1, 5)]},
    )
    assert status == 200, body

    def replicated() -> bool:
        views = [partition_view(n, "forwarded") for n in tls_cluster.nodes]
        return all(v is not None and v["high_watermark"] == 5 for v in views)

    wait_until("every replica's high watermark reaches 5", replicated)
    # A fetch from a follower follows the redirect to the leader (urllib, GET) over https.
    status, body = follower.http(
        "GET", "/v1/topics/forwarded/partitions/0/records?offset=earliest&format=json"
    )
    assert status == 200, body
    assert [r["value"] for r in body["records"]] == [f"v{i}" for i in range(5)]


def test_the_tools_produce_and_consume_with_a_command_config_of_ssl_and_the_ca(
    tls_cluster: Cluster, tmp_path: Path
) -> None:
    node = tls_cluster.nodes[1]
    config = node.client_properties(tmp_path / "client.properties")
    assert config.read_text().splitlines() == [
        "security.protocol=SSL",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={node.cafile}",
    ]
    common = ["--bootstrap-server", node.bootstrap, "--command-config", str(config)]
    out = tool(
        "client.tools.topics",
        *common,
        "--create",
        "--topic",
        "tls-news",
        "--replication-factor",
        "3",
    )
    assert (out.returncode, out.stdout) == (0, "Created topic tls-news.\n"), out.stderr
    wait_known_everywhere(tls_cluster, "tls-news")
    out = tool("client.tools.topics", *common, "--list")
    assert out.returncode == 0 and "tls-news" in out.stdout.split(), out.stderr
    out = tool(
        "client.tools.console_producer",
        *common,
        "--topic",
        "tls-news",
        input="Good morning\nGood day\nEnjoy the Kafka lab\n",
    )
    assert out.returncode == 0, out.stderr
    out = tool(
        "client.tools.console_consumer",
        *common,
        "--topic",
        "tls-news",
        "--from-beginning",
        "--max-messages",
        "3",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["Good morning", "Good day", "Enjoy the Kafka lab"]


def test_a_tool_without_the_ca_fails_in_one_line_naming_the_certificate(
    tls_cluster: Cluster, tmp_path: Path
) -> None:
    config = tmp_path / "no-ca.properties"
    config.write_text("security.protocol=SSL\n")
    node = tls_cluster.nodes[0]
    out = tool(
        "client.tools.topics",
        "--bootstrap-server",
        node.bootstrap,
        "--command-config",
        str(config),
        "--list",
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert "certificate verify failed" in lines[0], lines[0]
    assert "Traceback" not in out.stderr
    # Plain http to the https port is refused too, as a transport error in one line.
    out = tool("client.tools.topics", "--bootstrap-server", node.bootstrap, "--list")
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 1, out.stderr


def test_kill_9_of_a_leader_over_tls_moves_leadership_and_produces_go_on(
    tmp_path: Path,
) -> None:
    cluster = Cluster.create(tmp_path / "c", 3, security="SSL", **{"min.insync.replicas": "2"})
    # The nodes dial each other as the chaos tier has them (peer.<id>.http.dial), here at
    # localhost: the dialled address is https too, and its name is verified as well.
    for node in cluster.nodes:
        dial = {
            f"peer.{peer.node_id}.http.dial": f"localhost:{peer.http_port}"
            for peer in cluster.nodes
            if peer is not node
        }
        node.extra_properties.update(dial)
        with node.properties.open("a") as f:
            f.writelines(f"{k}={v}\n" for k, v in dial.items())
    try:
        cluster.start()
        status, body = cluster.nodes[0].http(
            "POST", "/v1/topics", {"name": "moves", "partitions": 1, "replication_factor": 3}
        )
        assert status == 201, body
        leader = cluster.node(wait_known_everywhere(cluster, "moves"))
        status, body = leader.http(
            "POST", "/v1/topics/moves/partitions/0/records", {"records": [{"value": "before"}]}
        )
        assert status == 200, body
        leader.kill()
        survivor = next(n for n in cluster.nodes if n is not leader)
        attempts: list[str] = []

        def produced() -> str | None:
            """The value of a produce acknowledged by the new leader (each try its own value:
            a try that timed out may be stored too)."""
            view = partition_view(survivor, "moves")
            if view is None or view["leader"] in (None, -1, leader.node_id):
                return None
            attempts.append(f"after-{len(attempts)}")
            try:
                status, _ = cluster.node(view["leader"]).http(
                    "POST",
                    "/v1/topics/moves/partitions/0/records?acks=all&timeout_ms=5000",
                    {"records": [{"value": attempts[-1]}]},
                    timeout=10,
                )
            except OSError:
                return None
            return attempts[-1] if status == 200 else None

        acknowledged = wait_until("a produce after the leader's kill -9 succeeds", produced)
        view = partition_view(survivor, "moves")
        assert view is not None and view["leader"] != leader.node_id
        status, body = cluster.node(view["leader"]).http(
            "GET", "/v1/topics/moves/partitions/0/records?offset=earliest&format=json"
        )
        assert status == 200, body
        values = [r["value"] for r in body["records"]]
        assert values[0] == "before" and acknowledged in values, values
        assert set(values[1:]) <= set(attempts), values
    finally:
        cluster.stop()
