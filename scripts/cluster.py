"""The local cluster launcher behind ``scripts/cluster`` (DESIGN.md, "Conventions").

Usage::

    scripts/cluster start [--nodes N | --controllers C --brokers B] [--dir DIR]
                          [--base-port P] [--kafka-base-port K] [--timeout S] [--secure]
    scripts/cluster add --roles broker|controller [--dir DIR] [--timeout S]
    scripts/cluster remove-controller --node-id N [--dir DIR]
    scripts/cluster stop [--dir DIR] [--node-id N]...
    scripts/cluster status [--dir DIR]

``start`` (defaults: 3 nodes, the checkout's ``.cluster``, base port 9092, 60 s) makes what is
missing, starts every node of DIR that is not running and returns once all answer 200 on
``/v1/health/ready``, printing ``node <id> http://127.0.0.1:<port> pid <pid>`` per node. Run it
again after a node died and it restarts just that node, whatever the layout: an existing
directory's layout is read from its node directories. ``stop`` sends SIGTERM (then SIGKILL)
to each running node by its pid (``--node-id N``: node N only, as Kafka's
``kafka-server-stop.sh --node-id``) and returns once they have exited; ``status`` prints the
running nodes' lines.

``start --controllers C --brokers B`` makes KRaft's dedicated layout instead of N combined
nodes: nodes 1..C are controller-only Raft voters, C+1..C+B broker-only nodes (see
``cluster_nodes``); their lines end with the role (``node 4 http://127.0.0.1:9098 pid 1234
broker``), a combined node's line has none. ``add --roles broker`` formats node max+1 as a
broker of the running cluster (its id and secret), starts it, waits until it is ready and
prints its line. ``add --roles controller`` does the same for a controller (Kafka's KIP-853
way): the node has ``controller.quorum.bootstrap.servers`` (the running controllers' Raft
addresses), follows the metadata log as an observer until it is caught up, and is then added
as a voter with ``kraft-metadata-quorum add-controller`` (retried while the quorum says it is
not caught up yet); its line comes once it is a voter. ``remove-controller --node-id N``
removes voter N with ``kraft-metadata-quorum remove-controller`` (its directory id read from
its meta.properties; asked of another running controller) and then stops it; its directory
stays, and a later ``start`` starts it again as an observer (the log says it is no voter).
A broker leaves for good by ``kraft-cluster unregister`` once it holds
no replica and is stopped, and then by deleting its DIR/node-<id> (else the next ``start``
starts it again and it registers again); ``add`` takes the id after the highest one left.

Topic defaults: ``default.replication.factor`` min(3, brokers) and ``min.insync.replicas`` 2
once there are three brokers; an added broker takes the cluster's (node 1's) values.

What DIR holds::

    DIR/cluster.id                      the id every node is formatted with (one line)
    DIR/cluster.secret                  the Raft links' secret, mode 0600, reused by later starts
    DIR/node-<id>/node.properties       the node's config, Kafka's names (written once)
    DIR/node-<id>/node.log              the node's log, appended across runs, rolled at 64 MiB
                                        (node.log.1 ... node.log.4 are the older ones)
    DIR/node-<id>/node.out              what the process printed outside its log this run
                                        (a crash's traceback), as Kafka's kafkaServer.out
    DIR/node-<id>/node.pid              its pid, while it runs
    DIR/node-<id>/kraft-combined-logs/  its log directory (formatted by kraft-storage format)

``start --secure`` makes a secure cluster instead (HTTP:SASL_SSL, ACLs on; see
``cluster_nodes``): a CA and node keystores in DIR/certs, a users file with an ``admin`` user
(a super user) whose random password goes into DIR/admin.properties, the tools'
``--command-config``. Its node lines name https URLs, and a few lines after them say how to
reach it. A cluster keeps the security it was made with: ``start`` without the flag starts a
secure cluster as secure, and ``--secure`` on a plain one is refused.

Ports: node i (from 1) serves HTTP on P + 2(i-1) and Raft on P + 2(i-1) + 1 (a broker-only
node has no Raft listener: its port stays unused), and Kafka's binary protocol (a KAFKA
listener, for Kafka's own clients) on K + 2(i-1), K = P + 10000 unless ``--kafka-base-port``
says (19092, 19094, 19096 by default): every node with the broker role, but on a secure
cluster (SASL on the Kafka listener is not built yet); its line ends with
``kafka 127.0.0.1:<port>``. A cluster made before the Kafka listener keeps the properties it
was made with (no KAFKA listener) until its directory is deleted.

Whether a node runs is judged by more than its pid file (see ``cluster_nodes``).

Exit codes: 0 done; 1 an error (a message on stderr); 2 bad usage; 3 ``status`` found a node
not running (or no cluster); 130 interrupted by Ctrl+C.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import certs
from cluster_nodes import (
    ADMIN_CONFIG_NAME,
    ADMIN_SCRAM_CONFIG_NAME,
    ADMIN_USER,
    BROKER,
    CERTS_DIR_NAME,
    COMBINED,
    CONTROLLER,
    KAFKA_BASE_PORT_OFFSET,
    START_MARK,
    USERS_FILE_NAME,
    LauncherError,
    NodeLayout,
    admin_properties_text,
    admin_scram_properties_text,
    existing_nodes,
    kafka_base_of,
    log_tail,
    node_line,
    node_properties,
    plan_node,
    plan_nodes,
    port_problem,
    probe_ready,
    properties_text,
    remove_file,
    running_pid,
    topic_defaults,
)

from client.security import ClientSecurity, SecurityConfigError
from client.tools.quorum_changes import removed_line
from storage.durable import atomic_write
from storage.ids import is_valid_uuid, random_uuid
from storage.properties import MetaProperties, load_properties, parse_properties

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / ".cluster"
DEFAULT_NODES = 3
DEFAULT_BASE_PORT = 9092
DEFAULT_TIMEOUT_S = 60.0

# Every node is a Raft voter and a Python process: more voters make each metadata write wait
# for more acknowledgements and crowd a laptop's cores. Nine is plenty for a local cluster.
NODES_MAX = 9
# Brokers are not voters, but each is a Python process on the same laptop.
BROKERS_MAX = 16
# A node stops within its 2 s HTTP shutdown grace plus its final fsyncs; 30 s leaves room for
# a slow disk before SIGKILL, whose acknowledged data survives anyway (fsynced on commit).
STOP_GRACE_S = 30.0
# After SIGKILL the kernel frees the process at once unless it is stuck in the disk (state D).
KILL_WAIT_S = 10.0
# How often `start` asks each node whether it is ready: often enough that it returns soon
# after the last node is, rarely enough not to load nodes that are still starting.
READY_POLL_S = 0.2

SECRET_NAME = "cluster.secret"
CLUSTER_ID_NAME = "cluster.id"

# 2 (bad usage) is argparse's own exit.
EXIT_OK, EXIT_ERROR, EXIT_NOT_RUNNING, EXIT_INTERRUPTED = 0, 1, 3, 130


# ---------------------------------------------------------------------------------------------
# Making a node: secret, cluster id, properties, format, launch
# ---------------------------------------------------------------------------------------------


def _ensure_secret(directory: Path) -> Path:
    path = directory / SECRET_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if not path.read_text().strip():
            raise LauncherError(f"{path} is empty; delete it to have a new secret made") from None
        os.chmod(path, 0o600)
        return path
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def _formatted_cluster_ids(nodes: Iterable[NodeLayout]) -> dict[int, str]:
    found = {}
    for node in nodes:
        try:
            meta = MetaProperties.read(node.log_dir)
        except (OSError, ValueError) as e:
            raise LauncherError(f"cannot read {node.log_dir}/meta.properties: {e}") from None
        if meta is not None:
            found[node.node_id] = meta.cluster_id
    return found


def _ensure_cluster_id(directory: Path, nodes: list[NodeLayout]) -> str:
    path = directory / CLUSTER_ID_NAME
    formatted = _formatted_cluster_ids(nodes)
    if path.is_file():
        cluster_id = path.read_text().strip()
        if not is_valid_uuid(cluster_id):
            raise LauncherError(f"{path} does not hold a cluster id (kraft-storage random-uuid)")
    else:
        # A directory formatted before cluster.id existed (or whose file was deleted) keeps
        # the id its nodes already have.
        cluster_id = next(iter(formatted.values()), None) or random_uuid()
        atomic_write(path, f"{cluster_id}\n".encode())
    for node_id, other in sorted(formatted.items()):
        if other != cluster_id:
            raise LauncherError(
                f"node {node_id}'s log directory is formatted for cluster {other}, but {path} "
                f"says {cluster_id}; a node never joins another cluster"
            )
    return cluster_id


def _bin(name: str, module: str) -> list[str]:
    """How to run one of our console scripts: the one beside this Python, else ``-m``."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.is_file() else [sys.executable, "-m", module]


def _format(node: NodeLayout, cluster_id: str, secret: Path) -> None:
    argv = _bin("kraft-storage", "storage.storage_tool")
    out = subprocess.run(
        [
            *argv,
            "format",
            "-t",
            cluster_id,
            "-c",
            str(node.properties),
            "--secret-file",
            str(secret),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise LauncherError(f"formatting node {node.node_id} failed: {out.stderr.strip()}")


def _launch(node: NodeLayout) -> subprocess.Popen[bytes]:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with open(node.log_file, "ab") as log:
        log.write(f"{START_MARK} {node.node_id} at {stamp} ---\n".encode())
    # The node writes (and rolls) node.log itself; what it prints outside its log goes here.
    with open(node.out_file, "wb") as out:
        # A session of its own: Ctrl+C in the terminal that ran `start` must not reach it.
        process = subprocess.Popen(
            [
                *_bin("kraft-server-start", "server.main"),
                str(node.properties),
                "--log-file",
                str(node.log_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=node.directory,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    atomic_write(node.pid_file, f"{process.pid}\n".encode())
    return process


def _ensure_certs(directory: Path, nodes: list[NodeLayout]) -> None:
    """The cluster's CA (made once) and a keystore for each node that has none."""
    store = directory / CERTS_DIR_NAME
    try:
        ca = certs.ensure_ca(store)
        for node in nodes:
            if not node.keystore.exists():
                certs.write_keystore(store, ca, f"node-{node.node_id}")
    except certs.CertificateError as e:
        raise LauncherError(str(e)) from None


def _ensure_admin(directory: Path, cafile: Path) -> tuple[str, str]:
    """(admin, password): read from DIR/admin.properties, or a new random password given to
    kraft-users and written there (0600) when the file or the users file is missing."""
    config, users = directory / ADMIN_CONFIG_NAME, directory / USERS_FILE_NAME
    if config.exists() and users.exists():
        try:
            security = ClientSecurity.load(config)
        except SecurityConfigError as e:
            raise LauncherError(f"{e}; delete {config} to have a new admin password made") from None
        if security.username is None or security.password is None:
            raise LauncherError(f"{config} names no user; delete it to have it made again")
        return security.username, security.password
    password = secrets.token_urlsafe(18)
    # The password goes to kraft-users in a file, not on its command line (ps shows that).
    secret = directory / "admin.password.tmp"
    certs.write_private(secret, f"{password}\n".encode())
    try:
        out = subprocess.run(
            [
                *_bin("kraft-users", "server.users"),
                "--users-file",
                str(users),
                "--add",
                ADMIN_USER,
                "--password-file",
                str(secret),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        remove_file(secret)
    if out.returncode != 0:
        raise LauncherError(f"kraft-users could not add {ADMIN_USER}: {out.stderr.strip()}")
    certs.write_private(config, admin_properties_text(cafile, password).encode())
    certs.write_private(
        directory / ADMIN_SCRAM_CONFIG_NAME,
        admin_scram_properties_text(cafile, password).encode(),
    )
    return ADMIN_USER, password


def _secure_usage(directory: Path, node: NodeLayout, auth: tuple[str, str]) -> list[str]:
    """How to reach a secure cluster, printed after the node lines."""
    config = directory / ADMIN_CONFIG_NAME
    users = directory / USERS_FILE_NAME
    bootstrap = f"127.0.0.1:{node.http_port}"
    lines = [
        "",
        f"secure cluster: TLS (CA {node.cafile}), SASL users in {users}, ACLs on; "
        f"user {auth[0]} is a super user, its client properties are in {config}",
        f"  kraft-topics --bootstrap-server {bootstrap} --command-config {config} --list",
        f"  curl --cacert {node.cafile} -u {auth[0]}:{auth[1]} {node.url}/v1/topics",
        f"  kraft-users --users-file {users} --add alice --password <password>",
        f"  kraft-acls --bootstrap-server {bootstrap} --command-config {config} --add "
        "--allow-principal User:alice --operation Write --topic news",
    ]
    if node.kafka_address is not None:
        scram = directory / ADMIN_SCRAM_CONFIG_NAME
        lines += [
            f"Kafka's clients: KAFKA:SASL_SSL on the kafka addresses above (PLAIN or "
            f"SCRAM-SHA-256, the CA as truststore); admin's SCRAM properties are in {scram}",
            f"  scripts/kafka-tool kafka-topics --bootstrap-server {node.kafka_address} "
            f"--command-config {scram} --list",
        ]
    return lines


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def _layout_text(nodes: list[NodeLayout]) -> str:
    """What a directory holds, in the flags' terms: "a 3-node cluster", "3 controllers and 2
    brokers", "a 3-node cluster and 1 broker" (brokers added to a combined cluster)."""
    combined = sum(1 for n in nodes if n.roles == COMBINED)
    controllers = sum(1 for n in nodes if n.roles == CONTROLLER)
    brokers = sum(1 for n in nodes if n.roles == BROKER)
    parts = [f"a {combined}-node cluster"] if combined else []
    if controllers:
        parts.append(_count(controllers, "controller"))
    if brokers:
        parts.append(_count(brokers, "broker"))
    return " and ".join(parts)


def _shape(
    args: argparse.Namespace, directory: Path, existing: list[NodeLayout]
) -> tuple[int, int]:
    """(node count, base port): the existing cluster's, which the flags may only repeat."""
    if (args.controllers is None) != (args.brokers is None):
        raise LauncherError(
            "--controllers and --brokers go together (the dedicated layout: "
            "--controllers 3 --brokers 3); for combined nodes use --nodes"
        )
    if args.nodes is not None and args.controllers is not None:
        raise LauncherError(
            "--nodes (combined nodes, each a controller and a broker) and --controllers/"
            "--brokers (the dedicated layout) do not mix: choose one"
        )
    if not existing:
        count = args.controllers + args.brokers if args.controllers else args.nodes
        return count or DEFAULT_NODES, args.base_port or DEFAULT_BASE_PORT
    count, base = len(existing), existing[0].http_port
    advice = "leave the flag out to start it as it is, or use another --dir"
    combined = sum(1 for n in existing if n.roles == COMBINED)
    controllers = sum(1 for n in existing if n.roles == CONTROLLER)
    brokers = sum(1 for n in existing if n.roles == BROKER)
    # Brokers added later (scripts/cluster add) do not change what --nodes means.
    if args.nodes is not None and (combined, controllers) != (args.nodes, 0):
        raise LauncherError(
            f"{directory} holds {_layout_text(existing)}, not {args.nodes}; {advice} "
            f"(or stop it and delete {directory} to begin again)"
        )
    if args.controllers is not None and (combined, controllers, brokers) != (
        0,
        args.controllers,
        args.brokers,
    ):
        raise LauncherError(
            f"{directory} holds {_layout_text(existing)}, not "
            f"{_count(args.controllers, 'controller')} and {_count(args.brokers, 'broker')}; "
            f"{advice} (or stop it and delete {directory} to begin again)"
        )
    if args.base_port is not None and args.base_port != base:
        raise LauncherError(
            f"{directory} holds a cluster whose base port is {base}, not {args.base_port}; {advice}"
        )
    kafka_base = kafka_base_of(existing)
    if args.kafka_base_port is not None and args.kafka_base_port != kafka_base:
        held = "no KAFKA listeners" if kafka_base is None else f"Kafka base port {kafka_base}"
        raise LauncherError(
            f"{directory} holds a cluster with {held}, not {args.kafka_base_port}; {advice}"
        )
    return count, base


def _write_properties(node: NodeLayout, props: dict[str, str], count: int) -> None:
    text = properties_text(props, node.node_id, count)
    if parse_properties(text) != props:
        raise LauncherError(
            f"{node.directory} holds characters a properties file would read differently "
            "(a backslash, say); choose a plainer --dir"
        )
    atomic_write(node.properties, text.encode())


def _report_failure(node: NodeLayout, what: str) -> None:
    print(f"cluster: node {node.node_id} {what}; the end of {node.log_file}:", file=sys.stderr)
    print(log_tail(node), file=sys.stderr)


def _wait_ready(
    nodes: list[NodeLayout],
    started: dict[int, subprocess.Popen[bytes]],
    timeout_s: float,
    auth: tuple[str, str] | None = None,
) -> bool:
    """True once every node answers ready; False (after saying why) if one exits first or
    the timeout passes."""
    deadline = time.monotonic() + timeout_s
    waiting = {node.node_id: node for node in nodes}
    why: dict[int, str] = {}
    while waiting:
        for node in list(waiting.values()):
            process = started.get(node.node_id)
            exited = process.poll() if process is not None else None
            if exited is not None or (process is None and running_pid(node) is None):
                remove_file(node.pid_file)
                code = "" if exited is None else f" with code {exited}"
                _report_failure(node, f"exited{code} before it was ready")
                return False
            ready, why[node.node_id] = probe_ready(node, auth)
            if ready:
                del waiting[node.node_id]
        if waiting and time.monotonic() >= deadline:
            for node in waiting.values():
                _report_failure(node, f"is not ready after {timeout_s:g} s ({why[node.node_id]})")
            return False
        if waiting:
            time.sleep(READY_POLL_S)
    return True


def _port_problems(nodes: list[NodeLayout]) -> None:
    """Refuses (naming them) the ports of ``nodes`` that another program holds."""
    busy = [
        f"port {port} ({kind} of node {node.node_id}) is {problem}"
        for node in nodes
        for port, kind in (
            (node.http_port, "HTTP"),
            (node.raft_port, "Raft"),
            (node.kafka_port, "KAFKA"),
        )
        if (kind == "HTTP" or (kind == "Raft" and node.is_controller) or (kind == "KAFKA" and port))
        and (problem := port_problem(port)) is not None
    ]
    if busy:
        raise LauncherError(
            "; ".join(busy) + ". Stop what holds it, or choose another --base-port or "
            "--kafka-base-port (with another --dir if this one already holds a cluster)"
        )


def cmd_start(args: argparse.Namespace) -> int:
    directory = args.dir.resolve()
    every = existing_nodes(directory)
    existing = _skip_removed(every)
    if every and not existing:
        raise LauncherError(f"every node of {directory} was removed from the quorum")
    count, base = _shape(args, directory, existing)
    if base < 1 or base + 2 * count - 1 > 65535:
        raise LauncherError(f"ports {base}..{base + 2 * count - 1} are not all valid TCP ports")
    kafka_base = args.kafka_base_port or base + KAFKA_BASE_PORT_OFFSET
    if not existing and kafka_base + 2 * (count - 1) > 65535:
        raise LauncherError(
            f"Kafka ports {kafka_base}..{kafka_base + 2 * (count - 1)} are not all valid TCP "
            "ports; choose a lower --kafka-base-port (or --base-port)"
        )
    if existing and args.secure and not existing[0].secure:
        raise LauncherError(
            f"{directory} holds a plain cluster; it stays plain (leave --secure out), or stop "
            f"it and delete {directory}, or use another --dir for a secure one"
        )
    nodes = existing or plan_nodes(
        directory,
        count,
        base,
        secure=args.secure,
        controllers=args.controllers or 0,
        kafka_base_port=kafka_base,
    )
    secure = nodes[0].secure
    pids = {node.node_id: running_pid(node) for node in nodes}
    to_start = [node for node in nodes if pids[node.node_id] is None]
    _port_problems(to_start)
    directory.mkdir(parents=True, exist_ok=True)
    secret = _ensure_secret(directory)
    auth: tuple[str, str] | None = None
    if secure:
        _ensure_certs(directory, nodes)
        auth = _ensure_admin(directory, nodes[0].cafile)
    for node in nodes:
        node.directory.mkdir(exist_ok=True)
        if not node.properties.exists():
            _write_properties(node, node_properties(node, nodes), len(nodes))
    cluster_id = _ensure_cluster_id(directory, nodes)
    for node in to_start:
        if not MetaProperties.path_in(node.log_dir).exists():
            _format(node, cluster_id, secret)
    started: dict[int, subprocess.Popen[bytes]] = {}
    for node in to_start:
        started[node.node_id] = _launch(node)
        pids[node.node_id] = started[node.node_id].pid
    if not _wait_ready(nodes, started, args.timeout, auth):
        print(
            "cluster: the nodes that started keep running; "
            f"'scripts/cluster stop --dir {directory}' stops them",
            file=sys.stderr,
        )
        return EXIT_ERROR
    for node in nodes:
        print(node_line(node, pids[node.node_id] or 0), flush=True)
    if auth is not None:
        print("\n".join(_secure_usage(directory, nodes[0], auth)), flush=True)
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    directory = args.dir.resolve()
    nodes = existing_nodes(directory)
    if not nodes:
        raise LauncherError(f"no cluster in {directory} ('scripts/cluster start' makes one)")
    if not any(n.is_controller and running_pid(n) is not None for n in nodes):
        raise LauncherError(
            f"no controller of {directory} is running, so a new broker cannot join; "
            f"'scripts/cluster start --dir {directory}' starts the cluster"
        )
    node_id = nodes[-1].node_id + 1
    kafka_base = kafka_base_of(nodes)
    node = plan_node(
        directory, node_id, nodes[0].http_port, nodes[0].secure, args.roles, kafka_base
    )
    if kafka_base is None and node.kafka_port:
        node = dataclasses.replace(node, kafka_port=0)  # the cluster has no Kafka listeners
    if node.http_port > 65535 or node.kafka_port > 65535:
        raise LauncherError(
            f"node {node_id}'s ports ({node.http_port}, {node.kafka_port}) are not all TCP ports"
        )
    _port_problems([node])
    secret = _ensure_secret(directory)
    cluster_id = _ensure_cluster_id(directory, nodes)
    auth: tuple[str, str] | None = None
    if node.secure:
        auth = _ensure_admin(directory, node.cafile)
    try:
        node.directory.mkdir()
    except FileExistsError:
        raise LauncherError(
            f"{node.directory} exists but holds no node.properties; delete it and add again"
        ) from None
    try:
        if node.secure:
            _ensure_certs(directory, [node])
        # The cluster's topic defaults, not ones counted for this node: every node that
        # takes a create request must agree.
        first = load_properties(nodes[0].properties)
        props = node_properties(node, [*nodes, node])
        props.update({k: first[k] for k in topic_defaults(1) if k in first})
        if node.roles == CONTROLLER:
            # KIP-853: a controller joining a running quorum knows where the voters are, not
            # who they are; its log tells it, and makes it a voter once it is added.
            del props["controller.quorum.voters"]
            props["controller.quorum.bootstrap.servers"] = bootstrap_servers(nodes)
        _write_properties(node, props, len(nodes) + 1)
        _format(node, cluster_id, secret)
    except BaseException:
        # A half-made node directory would be taken for a node by every later command.
        shutil.rmtree(node.directory, ignore_errors=True)
        raise
    started = time.monotonic()
    process = _launch(node)
    if not _wait_ready([node], {node_id: process}, args.timeout, auth) or (
        node.roles == CONTROLLER
        and not _add_voter(directory, nodes, node, started + args.timeout, auth)
    ):
        print(
            f"cluster: node {node_id} stays in {directory}: 'scripts/cluster start --dir "
            f"{directory}' starts it again, 'scripts/cluster stop --dir {directory}' stops "
            "every node",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if node.roles == CONTROLLER:
        print(
            f"cluster: node {node_id} caught up and became a voter in "
            f"{time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
    print(node_line(node, process.pid), flush=True)
    return EXIT_OK


# What kraft-metadata-quorum add-controller answers while the new controller is not ready to
# be a voter yet (it is catching up, or another change is finishing): worth another try.
_ADD_VOTER_RETRY = ("not caught up", "does not follow", "in progress", "retry")
_ADD_VOTER_PAUSE_S = 0.2


def _quorum_tool(
    directory: Path, via: NodeLayout, auth: tuple[str, str] | None, *command: str
) -> subprocess.CompletedProcess[str]:
    """kraft-metadata-quorum ``command`` against node ``via``; a secure cluster's admin
    properties join the command config (add-controller's also names the controller's)."""
    argv = [
        *_bin("kraft-metadata-quorum", "client.tools.metadata_quorum"),
        "--bootstrap-controller",
        via.url.partition("://")[2],
    ]
    if auth is not None and "--command-config" not in command:
        argv += ["--command-config", str(directory / ADMIN_CONFIG_NAME)]
    return subprocess.run([*argv, *command], capture_output=True, text=True, check=False)


def _command_config(directory: Path, node: NodeLayout, auth: tuple[str, str] | None) -> Path:
    """The add-controller config: the controller's properties (plus, on a secure cluster,
    the admin's client settings, which its own properties do not hold)."""
    if auth is None:
        return node.properties
    merged = node.directory / "add-controller.properties"
    text = node.properties.read_text(encoding="utf-8")
    admin = (directory / ADMIN_CONFIG_NAME).read_text(encoding="utf-8")
    atomic_write(merged, (text + "\n" + admin).encode(), mode=0o600)
    return merged


def _add_voter(
    directory: Path,
    nodes: list[NodeLayout],
    node: NodeLayout,
    deadline: float,
    auth: tuple[str, str] | None,
) -> bool:
    """Adds the running controller ``node`` to the quorum's voters through a running
    controller, retrying while it is catching up; False (after saying why) on a refusal or
    at the deadline."""
    via = _ready_controller(nodes, auth, node)
    if via is None:
        _report_failure(node, "cannot be added: no other controller is running and ready")
        return False
    config = _command_config(directory, node, auth)
    while True:
        out = _quorum_tool(directory, via, auth, "--command-config", str(config), "add-controller")
        if out.returncode == 0:
            print(out.stdout.strip(), file=sys.stderr)
            return True
        error = out.stderr.strip()
        if not any(word in error for word in _ADD_VOTER_RETRY) or time.monotonic() > deadline:
            _report_failure(node, f"was not added as a voter: {error}")
            return False
        time.sleep(_ADD_VOTER_PAUSE_S)


def cmd_remove_controller(args: argparse.Namespace) -> int:
    directory = args.dir.resolve()
    nodes = existing_nodes(directory)
    node = next((n for n in nodes if n.node_id == args.node_id), None)
    if node is None or not node.is_controller:
        raise LauncherError(f"{directory} holds no controller {args.node_id}")
    meta = MetaProperties.read(node.log_dir)
    if meta is None or meta.directory_id is None:
        raise LauncherError(f"{node.log_dir} has no meta.properties with a directory.id")
    auth = _ensure_admin(directory, node.cafile) if node.secure else None
    via = _ready_controller(nodes, auth, node)
    if via is None:
        raise LauncherError("no other controller is running and ready to remove it through")
    command = ["remove-controller", "--controller-id", str(node.node_id)]
    command += ["--controller-directory-id", meta.directory_id]
    out = _quorum_tool(directory, via, auth, *command)
    if out.returncode != 0:
        error = out.stderr.strip()
        if _UNKNOWN_OUTCOME not in error:
            raise LauncherError(error)
        # The removal may still commit: the quorum says whether it did.
        if not _removed_in_time(directory, nodes, node, auth, time.monotonic() + _REMOVAL_WAIT_S):
            raise LauncherError(
                f"{error}\nnode {node.node_id} is still a voter after {_REMOVAL_WAIT_S:g} s; it "
                "was left running. See kraft-metadata-quorum describe --status, and run "
                "remove-controller again"
            )
        print(removed_line(node.node_id, meta.directory_id, False), flush=True)
    else:
        print(out.stdout.strip(), flush=True)
    # Its log may not hold its own removal (the leader stops sending to it at once): started
    # again it would take itself for a voter that the others refuse. So it stays stopped,
    # marked before it is stopped: an interrupted stop leaves it marked all the same.
    atomic_write(
        node.directory / REMOVED_MARK,
        f"node {node.node_id} was removed from the metadata quorum's voters; scripts/cluster "
        "start skips it (delete this directory to forget it)\n".encode(),
    )
    return cmd_stop(argparse.Namespace(dir=args.dir, node_id=[node.node_id]))


# What the quorum answers when a voter change was written but not seen committed in time.
_UNKNOWN_OUTCOME = "did not commit in time"
_REMOVAL_POLL_S = 0.5
_REMOVAL_WAIT_S = 30.0


def _removed_in_time(
    directory: Path,
    nodes: list[NodeLayout],
    node: NodeLayout,
    auth: tuple[str, str] | None,
    deadline: float,
) -> bool:
    """Whether the quorum's voters (kraft-metadata-quorum describe through a ready
    controller) leave ``node`` out, committed, before ``deadline``.

    The voters it shows count an uncommitted removal already (the log's latest set), which a
    new leader may still overwrite: the removal is in the leader's log at or below its log
    end once the set leaves the node out, so it is committed once the high watermark reaches
    that log end with the node still out."""
    target: int | None = None
    while True:
        via = _ready_controller(nodes, auth, node)
        if via is not None:
            out = _quorum_tool(directory, via, auth, "describe", "--status")
            status = out.stdout if out.returncode == 0 else ""
            voters = voter_ids_of(status)
            if voters is None or node.node_id in voters:
                target = None  # not out (again: a new leader overwrote the removal)
            elif target is None:
                table = _quorum_tool(directory, via, auth, "describe", "--replication")
                target = leader_log_end_of(table.stdout) if table.returncode == 0 else None
            elif removal_committed(node.node_id, status, target):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_REMOVAL_POLL_S)


def removal_committed(node_id: int, status: str, target: int) -> bool:
    """Whether describe --status' ``status`` shows voter ``node_id`` out with the high
    watermark at or past ``target``: the leader's log end read once the set left it out."""
    voters = voter_ids_of(status)
    watermark = _status_int(status, "HighWatermark")
    return (
        voters is not None
        and node_id not in voters
        and watermark is not None
        and watermark >= target
    )


def leader_log_end_of(table: str) -> int | None:
    """The Leader row's LogEndOffset in kraft-metadata-quorum describe --replication."""
    lines = [line.split("\t") for line in table.splitlines()]
    if not lines:
        return None
    header = [cell.strip() for cell in lines[0]]
    if "LogEndOffset" not in header or "Status" not in header:
        return None
    end, state = header.index("LogEndOffset"), header.index("Status")
    for cells in lines[1:]:
        cells = [cell.strip() for cell in cells]
        if len(cells) > max(end, state) and cells[state] == "Leader":
            return int(cells[end]) if cells[end].isdigit() else None
    return None


def _status_int(status: str, field: str) -> int | None:
    for line in status.splitlines():
        name, _sep, value = line.partition(":")
        if name.strip() == field:
            return int(value.strip()) if value.strip().isdigit() else None
    return None


def voter_ids_of(status: str) -> set[int] | None:
    """The voter ids of kraft-metadata-quorum describe --status' CurrentVoters line."""
    for line in status.splitlines():
        name, _sep, value = line.partition(":")
        if name.strip() == "CurrentVoters":
            items = value.strip().strip("[]").split(",")
            return {int(i) for i in items if i.strip().isdigit()}
    return None


REMOVED_MARK = "removed-controller"


def _ready_controller(
    nodes: list[NodeLayout], auth: tuple[str, str] | None, besides: NodeLayout
) -> NodeLayout | None:
    """A controller other than ``besides`` that runs and answers ready (one removed from the
    quorum but still running is not: it has no quorum), to send a voter change through."""
    for node in _skip_removed(nodes, quiet=True):
        if node.is_controller and node.node_id != besides.node_id and running_pid(node):
            if probe_ready(node, auth)[0]:
                return node
    return None


def bootstrap_servers(nodes: list[NodeLayout]) -> str:
    """controller.quorum.bootstrap.servers of a controller joining the quorum: every
    controller not removed, running or not. Until it gets a dump, the joiner counts its voters
    as this list changed by the log's membership entries, so a voter left out (one stopped a
    moment) would be missing from the set it turns voter with: a minority that elects it."""
    return ",".join(
        f"127.0.0.1:{n.raft_port}" for n in _skip_removed(nodes, quiet=True) if n.is_controller
    )


def _skip_removed(nodes: list[NodeLayout], *, quiet: bool = False) -> list[NodeLayout]:
    """The nodes less the controllers ``remove-controller`` removed (said on stderr)."""
    kept = [n for n in nodes if not (n.directory / REMOVED_MARK).exists()]
    gone = sorted(n.node_id for n in nodes if n not in kept)
    if gone and not quiet:
        print(
            f"cluster: skipping node(s) {', '.join(map(str, gone))}: removed from the "
            "controller quorum (scripts/cluster remove-controller)",
            file=sys.stderr,
        )
    return kept


def _wait_gone(
    targets: list[tuple[NodeLayout, int]], timeout_s: float
) -> list[tuple[NodeLayout, int]]:
    """The targets still running after up to ``timeout_s`` (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout_s
    left = list(targets)
    while left:
        left = [(node, pid) for node, pid in left if running_pid(node) == pid]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return left


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # it exited between the check and the signal


def cmd_stop(args: argparse.Namespace) -> int:
    directory = args.dir.resolve()
    nodes = existing_nodes(directory)
    if args.node_id is not None:
        # Kafka's kafka-server-stop.sh --node-id: that node only, and back once it has exited
        # (a broker about to be unregistered must send no more heartbeats).
        unknown = sorted(set(args.node_id) - {n.node_id for n in nodes})
        if unknown:
            raise LauncherError(f"{directory} holds no node {', '.join(map(str, unknown))}")
        nodes = [n for n in nodes if n.node_id in args.node_id]
    targets = [(node, pid) for node in nodes if (pid := running_pid(node)) is not None]
    for _node, pid in targets:
        _signal(pid, signal.SIGTERM)
    left = _wait_gone(targets, STOP_GRACE_S)
    for node, pid in left:
        if running_pid(node) == pid:  # checked again right before: never a recycled pid
            print(
                f"cluster: node {node.node_id} (pid {pid}) did not stop within "
                f"{STOP_GRACE_S:g} s of SIGTERM; sending SIGKILL",
                file=sys.stderr,
            )
            _signal(pid, signal.SIGKILL)
    left = _wait_gone(left, KILL_WAIT_S)
    stuck = {node.node_id for node, _pid in left}
    for node in nodes:
        if node.node_id not in stuck:
            remove_file(node.pid_file)
    for node, pid in targets:
        if node.node_id not in stuck:
            print(f"stopped node {node.node_id} (pid {pid})", flush=True)
    if stuck:
        raise LauncherError(f"still running after SIGKILL: node(s) {sorted(stuck)}")
    if not targets:
        which = "" if args.node_id is None else f" ({', '.join(map(str, sorted(args.node_id)))})"
        print(f"no node of {directory}{which} is running", flush=True)
    return EXIT_OK


def _why_not_running(node: NodeLayout) -> str:
    try:
        pid = node.pid_file.read_text().strip()
    except OSError:
        return "no pid file"
    return f"pid {pid} is gone or is not this node"


def cmd_status(args: argparse.Namespace) -> int:
    directory = args.dir.resolve()
    nodes = existing_nodes(directory)
    if not nodes:
        print(
            f"cluster: no cluster in {directory} ('scripts/cluster start' makes one)",
            file=sys.stderr,
        )
        return EXIT_NOT_RUNNING
    down = []
    for node in _skip_removed(nodes):
        pid = running_pid(node)
        if pid is None:
            down.append(node)
        else:
            print(node_line(node, pid), flush=True)
    for node in down:
        print(f"node {node.node_id} is not running ({_why_not_running(node)})", file=sys.stderr)
    return EXIT_NOT_RUNNING if down else EXIT_OK


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _node_count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= NODES_MAX:
        raise argparse.ArgumentTypeError(f"must be 1 to {NODES_MAX}, not {value}")
    return value


def _broker_count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= BROKERS_MAX:
        raise argparse.ArgumentTypeError(f"must be 1 to {BROKERS_MAX}, not {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port (1-65535), not {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/cluster",
        description="Start, stop and check a local cluster of nodes on 127.0.0.1.",
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", metavar="{start,add,stop,status}")
    commands.required = True
    dir_help = f"the cluster's directory (default {DEFAULT_DIR})"
    start = commands.add_parser(
        "start",
        help="start every node that is not running and wait until all are ready",
        allow_abbrev=False,
    )
    start.add_argument(
        "--nodes",
        type=_node_count,
        metavar="N",
        help=f"how many combined nodes, each a controller and a broker (default "
        f"{DEFAULT_NODES}; an existing cluster keeps its layout)",
    )
    start.add_argument(
        "--controllers",
        type=_node_count,
        metavar="C",
        help="the dedicated layout: nodes 1..C are controllers (Raft voters only); with --brokers",
    )
    start.add_argument(
        "--brokers",
        type=_broker_count,
        metavar="B",
        help="the dedicated layout: nodes C+1..C+B are brokers (no Raft port); with --controllers",
    )
    start.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=dir_help)
    start.add_argument(
        "--base-port",
        type=_port,
        metavar="P",
        help=f"node i serves HTTP on P+2(i-1), Raft on P+2(i-1)+1 (default {DEFAULT_BASE_PORT})",
    )
    start.add_argument(
        "--kafka-base-port",
        type=_port,
        metavar="K",
        help="node i serves Kafka's protocol (a KAFKA listener) on K+2(i-1) (default P+10000)",
    )
    start.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for the nodes to be ready (default {DEFAULT_TIMEOUT_S:g})",
    )
    start.add_argument(
        "--secure",
        action="store_true",
        help="a new cluster serves HTTP:SASL_SSL with ACLs on: a CA and node certificates, "
        f"a users file with {ADMIN_USER}, and DIR/{ADMIN_CONFIG_NAME} for the tools",
    )
    add = commands.add_parser(
        "add",
        help="format and start one more node (id max+1) that joins the running cluster",
        allow_abbrev=False,
    )
    add.add_argument(
        "--roles",
        required=True,
        choices=(BROKER, CONTROLLER),
        help="broker: a broker-only node; controller: a controller that catches up as an "
        "observer and is then added to the quorum's voters",
    )
    add.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=dir_help)
    add.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for the node to be ready (default {DEFAULT_TIMEOUT_S:g})",
    )
    for name, text in (
        ("stop", "stop the running nodes (SIGTERM, then SIGKILL after 30 s)"),
        ("status", "show the running nodes; exit 3 if one is not running"),
    ):
        sub = commands.add_parser(name, help=text, allow_abbrev=False)
        sub.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=dir_help)
        if name == "stop":
            sub.add_argument(
                "--node-id",
                type=int,
                action="append",
                metavar="N",
                help="stop only node N (again for more), as kafka-server-stop.sh --node-id",
            )
    remove = commands.add_parser(
        "remove-controller",
        help="remove a controller from the quorum's voters (kraft-metadata-quorum "
        "remove-controller), then stop it",
        allow_abbrev=False,
    )
    remove.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=dir_help)
    remove.add_argument("--node-id", type=int, required=True, metavar="N", help="the voter")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {
        "start": cmd_start,
        "add": cmd_add,
        "stop": cmd_stop,
        "status": cmd_status,
        "remove-controller": cmd_remove_controller,
    }
    command = commands[args.command]
    try:
        return command(args)
    except LauncherError as e:
        print(f"cluster: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:  # a file of DIR that cannot be read or written: say which
        print(f"cluster: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(
            "cluster: interrupted; nodes already started keep running "
            f"('scripts/cluster status --dir {args.dir}' shows them)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
