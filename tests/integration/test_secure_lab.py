"""The Kafka lab on a secure cluster: ``scripts/cluster start --secure`` (TLS, SASL users, ACLs),
then README's lab with ``--command-config admin.properties``, a second user limited by
``kraft-acls`` to one topic, curl as the README prints it, and ``scripts/cluster stop``.

The cluster lives in a temporary --dir on a free run of ports, and is stopped by
``scripts/cluster stop``, then, as a safety net, by pid (tests/integration/test_launcher.py's
Cluster).
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import cluster_nodes as cn
from scripts.node_process import http, run_tool, wait_until
from tests.integration.kafka_helpers import confluent_config, consume_subscribed
from tests.integration.test_launcher import ROOT, Cluster, free_port_run, is_our_pid

pytestmark = pytest.mark.timeout(300)

NODES = 3
SECURE_LINE = re.compile(
    r"node (\d+) https://127\.0\.0\.1:(\d+) pid (\d+) kafka 127\.0\.0\.1:(\d+)"
)


@pytest.fixture
def secure_cluster(tmp_path: Path) -> Iterator[Cluster]:
    # Each node has a KAFKA:SASL_SSL listener on the Kafka base port's scheme.
    cluster = Cluster(tmp_path / "lab", NODES, free_port_run(2 * NODES), free_port_run(2 * NODES))
    try:
        yield cluster
    finally:
        cluster.tear_down()


def tool(module: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_tool(module, *args, input=input, timeout=60)


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a tool that failed with exit 1 (and printed no traceback)."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_the_lab_runs_on_a_secure_cluster_with_an_admin_and_a_user_limited_by_acls(
    secure_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = secure_cluster
    out = cluster.cluster("start", "--secure")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    matches = [SECURE_LINE.fullmatch(line) for line in lines[:NODES]]
    assert all(matches), out.stdout
    assert [(int(m.group(1)), int(m.group(2)), int(m.group(4))) for m in matches if m] == [
        (i, cluster.base_port + 2 * (i - 1), cluster.kafka_base_port + 2 * (i - 1))
        for i in range(1, NODES + 1)
    ]
    pids = [int(m.group(3)) for m in matches if m]
    cluster.seen_pids.update(pids)
    directory = cluster.directory
    admin = directory / "admin.properties"
    cafile = directory / "certs" / "ca.pem"
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    usage = "\n".join(lines[NODES:])
    assert f"--command-config {admin}" in usage
    curl_line = next(line for line in lines if line.strip().startswith("curl "))
    assert f"--cacert {cafile} -u admin:" in curl_line

    # README's lab, as the admin (a super user).
    bootstrap = ["--bootstrap-server", cluster.bootstrap(1)]
    as_admin = [*bootstrap, "--command-config", str(admin)]
    out = tool("client.tools.topics", *as_admin, "--create", "--topic", "news")
    assert (out.returncode, out.stdout) == (0, "Created topic news.\n"), out.stderr
    out = tool("client.tools.topics", *as_admin, "--list")
    assert (out.returncode, out.stdout) == (0, "news\n"), out.stderr
    out = tool("client.tools.topics", *as_admin, "--describe", "--topic", "news")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Topic: news\tTopicId: ")
    assert "\tPartitionCount: 1\tReplicationFactor: 3\t" in out.stdout
    lab_lines = "Good morning\nGood day\nEnjoy the Kafka lab\n"
    out = tool("client.tools.console_producer", *as_admin, "--topic", "news", input=lab_lines)
    assert out.returncode == 0, out.stderr
    consume = ["--topic", "news", "--from-beginning", "--max-messages", "3"]
    out = tool("client.tools.console_consumer", *as_admin, *consume)
    assert out.returncode == 0, out.stderr
    assert out.stdout == lab_lines

    # Kafka's own clients over KAFKA:SASL_SSL with admin's SCRAM-SHA-256 properties.
    scram = directory / "admin-scram.properties"
    assert stat.S_IMODE(scram.stat().st_mode) == 0o600
    assert f"--command-config {scram}" in usage
    props = dict(line.split("=", 1) for line in scram.read_text().splitlines() if "=" in line[:30])
    assert props["sasl.mechanism"] == "SCRAM-SHA-256"
    password = props["sasl.jaas.config"].split('password="')[1].split('"')[0]
    config = confluent_config(
        f"127.0.0.1:{cluster.kafka_base_port}",
        "SASL_SSL",
        cafile=cafile,
        mechanism="SCRAM-SHA-256",
        username="admin",
        password=password,
    )
    got = consume_subscribed(config, "news", 3, group="lab-kafka")
    assert got == [line.encode() for line in lab_lines.splitlines()]

    # curl as the launcher printed it.
    curl = shutil.which("curl")
    assert curl is not None, "the lab's README uses curl"
    argv = curl_line.split()[1:]
    answer = subprocess.run([curl, "-s", *argv], capture_output=True, text=True, timeout=30)
    assert answer.returncode == 0 and '"news"' in answer.stdout, answer.stdout + answer.stderr

    # Without credentials (TLS only), or with a wrong password: refused in one line.
    anonymous = tmp_path / "anonymous.properties"
    anonymous.write_text(f"security.protocol=SSL\nssl.truststore.location={cafile}\n")
    out = tool("client.tools.topics", *bootstrap, "--command-config", str(anonymous), "--list")
    assert "uthentication" in one_line_error(out)

    # alice: a user of her own, allowed to write and read the topic news only.
    users = directory / "users"
    out = tool("server.users", "--users-file", str(users), "--add", "alice", "--password", "a1")
    assert out.returncode == 0, out.stderr
    alice = tmp_path / "alice.properties"
    alice.write_text(
        "security.protocol=SASL_SSL\n"
        f"ssl.truststore.location={cafile}\n"
        "sasl.mechanism=PLAIN\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="alice" password="a1";\n'
    )
    as_alice = [*bootstrap, "--command-config", str(alice)]
    # The nodes look at the users file about once a second (server/users.py): wait until
    # every node knows her.
    for port in range(cluster.base_port, cluster.base_port + 2 * NODES, 2):
        url = f"https://127.0.0.1:{port}/v1/topics"
        wait_until(
            f"alice authenticates at {url}",
            lambda url=url: http("GET", url, cafile=cafile, auth=("alice", "a1"))[0] != 401,
        )
    out = tool("client.tools.topics", *as_admin, "--create", "--topic", "payroll")
    assert out.returncode == 0, out.stderr
    # Before any ACL names her, alice may do nothing (allow.everyone.if.no.acl.found=false).
    out = tool("client.tools.console_producer", *as_alice, "--topic", "news", input="early\n")
    # Refused at the producer's first request, the topic's metadata (DESCRIBE), as in Kafka.
    assert "User:alice is not authorized to DESCRIBE topic news" in one_line_error(out)
    acl = [
        "--add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--operation",
        "Read",
        "--topic",
        "news",
    ]
    out = tool("client.tools.acls", *as_admin, *acl)
    assert out.returncode == 0, out.stdout + out.stderr
    out = tool("client.tools.acls", *as_admin, "--list", "--topic", "news")
    assert out.returncode == 0, out.stderr
    assert "User:alice" in out.stdout and "WRITE" in out.stdout.upper(), out.stdout

    out = tool("client.tools.console_producer", *as_alice, "--topic", "news", input="alice\n")
    assert out.returncode == 0, out.stderr
    out = tool(
        "client.tools.console_consumer",
        *as_alice,
        "--topic",
        "news",
        "--from-beginning",
        "--max-messages",
        "4",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == lab_lines + "alice\n"
    # Nothing else: another topic, or a new one.
    out = tool("client.tools.console_producer", *as_alice, "--topic", "payroll", input="x\n")
    assert "User:alice is not authorized to DESCRIBE topic payroll" in one_line_error(out)
    out = tool(
        "client.tools.console_consumer",
        *as_alice,
        "--topic",
        "payroll",
        "--from-beginning",
        "--max-messages",
        "1",
        "--timeout-ms",
        "5000",
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "User:alice is not authorized to DESCRIBE topic payroll" in out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
    out = tool("client.tools.topics", *as_alice, "--create", "--topic", "mine")
    assert "User:alice is not authorized to CREATE" in one_line_error(out)
    # The payroll topic's one record was never written by alice.
    out = tool(
        "client.tools.console_consumer",
        *as_admin,
        "--topic",
        "payroll",
        "--from-beginning",
        "--timeout-ms",
        "3000",
    )
    assert out.stdout == "", out.stdout

    # Stop: every node by its pid.
    out = cluster.cluster("stop")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"stopped node {i} (pid {pid})" for i, pid in enumerate(pids, start=1)
    ]
    assert not any(is_our_pid(pid, directory) for pid in pids)
    for i in range(1, NODES + 1):
        log = (directory / f"node-{i}" / "node.log").read_text()
        assert "Traceback" not in log, log[-3000:]


def test_secure_on_a_plain_cluster_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "plain"
    nodes = cn.plan_nodes(directory, 1, free_port_run(2))
    nodes[0].directory.mkdir(parents=True)
    nodes[0].properties.write_text(cn.properties_text(cn.node_properties(nodes[0], nodes), 1, 1))
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cluster.py"), "start", "--secure"]
        + ["--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "holds a plain cluster; it stays plain" in out.stderr
    assert not (directory / "certs").exists() and not nodes[0].pid_file.exists()
