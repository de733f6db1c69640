"""Real node processes on 127.0.0.1 for the integration tests and the benchmarks: free ports,
temporary directories, pids.

Each :class:`NodeProcess` is a real ``python -m server.main`` process, formatted with the real
``kraft-storage format``; a :class:`Cluster` is several of them sharing a cluster id, a secret
and the quorum's voters. Whoever starts a node stops it, by its pid. Its files are named as the
launcher's (:class:`scripts.cluster_nodes.NodeFiles`).

Secure nodes: ``Cluster.create(directory, security="SSL")`` (or ``SASL_SSL`` with ``users``)
makes a CA and a keystore per node in ``directory/certs`` (``scripts/certs.py``) and a users
file, and sets Kafka's properties on every node. Each :class:`NodeProcess` then knows how a
client reaches it (``cafile``, ``auth``): its :attr:`NodeProcess.url` is https, and
:meth:`NodeProcess.http`, the readiness wait and :meth:`NodeProcess.client_properties` (a
``--command-config`` file for the tools) use them. The module's :func:`http` takes them as
keyword arguments.

Roles (Kafka's ``process.roles``): a node is combined (``broker,controller``, the default),
``controller`` (a Raft voter that holds no partitions) or ``broker`` (no Raft port of its own:
it finds the quorum through ``controller.quorum.bootstrap.servers``).
``Cluster.create(directory, controllers=3, brokers=2)`` makes the dedicated layout (ids 1..3
controllers, 4..5 brokers); :meth:`Cluster.add_node` formats one more broker with the
cluster's id and secret, as ``scripts/cluster add --roles broker`` does.

KAFKA listeners (Kafka's binary protocol): ``cluster.give_kafka_listeners()`` between
``Cluster.create`` and ``start`` gives node i one on a free base port + 2i, as the launcher lays
them out; then :attr:`NodeProcess.kafka_port` and :meth:`Cluster.kafka_bootstrap` (the running
nodes' host:port list) are what a Kafka client is given.
"""

from __future__ import annotations

import base64
import json
import os
import random
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts import certs
from scripts.cluster_nodes import NodeFiles

ROOT = Path(__file__).resolve().parents[1]
# A node formats its log directory and joins the quorum in seconds; a loaded machine is slower.
READY_DEADLINE_S = 60.0
TLS_PROTOCOLS = ("SSL", "SASL_SSL")
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
COMBINED, CONTROLLER, BROKER = "broker,controller", "controller", "broker"
ROLES = (COMBINED, CONTROLLER, BROKER)


# Ports handed out by this process: never twice, even when the first taker has not bound yet.
_HANDED_OUT: set[int] = set()
# Listening ports are chosen from here up to the kernel's ephemeral range (below).
_LISTEN_PORT_LOW = 20000
# Below this many ports to choose from, bind(0) is left to pick (a random draw would collide).
_LISTEN_PORTS_MIN = 1000


def _ephemeral_low() -> int:
    """The first port the kernel may give an outgoing connection."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def listen_port_range() -> range:
    """The ports :func:`free_ports` draws from: [20000, the ephemeral range's start), and under
    pytest-xdist only this worker's slice of it (``PYTEST_XDIST_WORKER`` gwN of
    ``PYTEST_XDIST_WORKER_COUNT``, inherited by the processes a test starts).

    _HANDED_OUT keeps one process from handing a port out twice, but two workers are two
    processes: each could check the same port free and give it to a node before the other's
    node binds it. Disjoint slices make that impossible."""
    low, high = _LISTEN_PORT_LOW, _ephemeral_low()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 1:
        index, workers = int(worker[2:]), int(count)
        size = (high - low) // workers
        low, high = low + index * size, low + (index + 1) * size
    return range(low, high)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (its threads included), for benchmarks."""
    # Fields after the command name (which may hold spaces, hence the split at the last ')').
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on right now, for nodes and proxies to bind a moment later.

    They are taken below the kernel's ephemeral range: a port from bind(0) is an ephemeral
    one, which the kernel may give an outgoing connection (the nodes, clients and Toxiproxy
    make many) between this call and the bind, and the node then fails with "address already
    in use" (seen once in the chaos tier). Below the range only an explicit bind competes,
    and under pytest-xdist each worker draws from its own slice (:func:`listen_port_range`)."""
    ports = listen_port_range()
    rng = random.SystemRandom()
    chosen: list[int] = []
    for _ in range(100 * count):
        if len(chosen) == count:
            return chosen
        port = rng.choice(ports) if len(ports) > _LISTEN_PORTS_MIN else _kernel_port()
        if port in _HANDED_OUT or not _bindable(port):
            continue
        _HANDED_OUT.add(port)
        chosen.append(port)
    raise RuntimeError(f"no {count} free ports found")


PORT_RUN_ATTEMPTS = 50


def free_port_run(length: int) -> int:
    """A base port P with P..P+length-1 all free right now, inside this process's range
    (:func:`listen_port_range`) and handed out as a whole: no later :func:`free_ports` or
    :func:`free_port_run` of this process answers one of them."""
    ports = listen_port_range()
    bases: Iterable[int]
    if len(ports) > _LISTEN_PORTS_MIN:
        # Every base in turn from a random one, not random draws: the ports handed out fill
        # the range as a session goes on (hundreds of clusters), and a random run of ten then
        # meets one of them more often than not.
        start = random.SystemRandom().randrange(len(ports))
        bases = (ports[(start + i) % len(ports)] for i in range(len(ports)))
    else:
        bases = (_kernel_port() for _ in range(PORT_RUN_ATTEMPTS))
    for base in bases:
        run = range(base, base + length)
        if run[-1] > 65535 or (len(ports) > _LISTEN_PORTS_MIN and run[-1] not in ports):
            continue
        if any(port in _HANDED_OUT for port in run):
            continue
        held: list[socket.socket] = []
        try:
            for port in run:
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        _HANDED_OUT.update(run)
        return base
    raise AssertionError(f"no run of {length} free ports found")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_port() -> int:
    """A port bind(0) picks (an ephemeral one): only when the range is too small to draw from."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def run_tool(
    module: str, *args: str, input: str | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Runs one of our command-line tools (``python -m module args``) to completion."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def http(
    method: str,
    url: str,
    body: Any = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
    *,
    cafile: Path | None = None,
    auth: tuple[str, str] | None = None,
) -> tuple[int, Any]:
    """One HTTP request with the standard library; returns (status, parsed JSON or text).

    An https ``url`` is checked against ``cafile`` (else the system's CAs); ``auth`` (user,
    password) is sent as HTTP basic. A failed TLS handshake raises ``ssl.SSLError`` (an
    ``OSError``, as a refused connection) or ``urllib.error.URLError`` wrapping it."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", basic_authorization(*auth))
    context = (
        ssl.create_default_context(cafile=None if cafile is None else str(cafile))
        if url.startswith("https:")
        else None
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP basic authentication."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def client_properties_text(
    protocol: str, cafile: Path | None = None, auth: tuple[str, str] | None = None
) -> str:
    """Kafka client properties (a tool's ``--command-config``) for ``protocol``."""
    lines = [f"security.protocol={protocol}"]
    if protocol in TLS_PROTOCOLS and cafile is not None:
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={cafile}"]
    if protocol in SASL_PROTOCOLS and auth is not None:
        username, password = auth
        lines += [
            "sasl.mechanism=PLAIN",
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{username}" password="{password}";',
        ]
    return "".join(line + "\n" for line in lines)


def add_user(users_file: Path, username: str, password: str) -> None:
    """Adds a user to a users file (``http.users.file``) with the real ``kraft-users``."""
    out = run_tool(
        "server.users", "--users-file", str(users_file), "--add", username, "--password", password
    )
    assert out.returncode == 0, out.stderr


@dataclass
class NodeProcess(NodeFiles):
    """One node process (not started until :meth:`start`); free ports unless given."""

    directory: Path
    node_id: int = 1
    http_port: int = 0
    raft_port: int = 0
    extra_properties: dict[str, str] = field(default_factory=dict)
    # controller.quorum.voters; None: a quorum of this node alone.
    voters: str | None = None
    process: subprocess.Popen[bytes] | None = None
    # The node process's environment; None: this process's own (a test may load a shim).
    env: dict[str, str] | None = None
    # How clients reach it when it is secure (its properties say so): the CA its certificate
    # chains to, and a user's (name, password) sent as HTTP basic.
    cafile: Path | None = None
    auth: tuple[str, str] | None = None
    # process.roles: COMBINED, CONTROLLER or BROKER.
    roles: str = COMBINED
    # controller.quorum.bootstrap.servers of a broker-only node: the controllers' Raft
    # host:port list (a broker-only node has no Raft port; its raft_port stays unused).
    bootstrap_servers: str | None = None
    # The KAFKA listener's port, set by give_kafka_listener; None: the node has none.
    _kafka_port: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        assert self.roles in ROLES, f"roles must be one of {ROLES}, not {self.roles!r}"
        if not self.http_port:
            self.http_port, self.raft_port = free_ports(2)

    @property
    def is_broker(self) -> bool:
        """True when the node holds partitions (combined or broker-only)."""
        return self.roles != CONTROLLER

    @property
    def is_controller(self) -> bool:
        """True when the node is a Raft voter (combined or controller-only)."""
        return self.roles != BROKER

    def give_kafka_listener(self, kafka_port: int) -> None:
        """A KAFKA listener on ``kafka_port`` (the last ``listeners`` line of the properties
        file wins), for tests of Kafka's protocol on a node formatted but not started; the
        port is then :attr:`kafka_port`."""
        # format() writes the properties file anew: a line added before it would be lost.
        assert self.properties.exists(), f"node {self.node_id}: format() before a KAFKA listener"
        listeners = f"HTTP://127.0.0.1:{self.http_port},CONTROLLER://127.0.0.1:{self.raft_port}"
        with self.properties.open("a") as f:
            f.write(f"listeners={listeners},KAFKA://127.0.0.1:{kafka_port}\n")
        self._kafka_port = kafka_port

    @property
    def has_kafka_listener(self) -> bool:
        """True once :meth:`give_kafka_listener` gave the node one."""
        return self._kafka_port is not None

    @property
    def kafka_port(self) -> int:
        """The KAFKA listener's port (:meth:`give_kafka_listener`); fails naming the node when
        it has none."""
        assert self._kafka_port is not None, f"node {self.node_id} has no KAFKA listener"
        return self._kafka_port

    @property
    def kafka_address(self) -> str:
        """host:port of the KAFKA listener, as a Kafka client's bootstrap server."""
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def security_protocol(self) -> str:
        """The HTTP listener's protocol, from its listener.security.protocol.map."""
        for item in self.extra_properties.get("listener.security.protocol.map", "").split(","):
            name, _, value = item.partition(":")
            if name.strip().upper() == "HTTP":
                return value.strip().upper()
        return "PLAINTEXT"

    @property
    def url(self) -> str:
        scheme = "https" if self.security_protocol in TLS_PROTOCOLS else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    def http(
        self, method: str, path: str, body: Any = None, timeout: float = 30.0, **kwargs: Any
    ) -> tuple[int, Any]:
        """:func:`http` to this node's ``path``, with its CA and credentials."""
        kwargs.setdefault("cafile", self.cafile)
        kwargs.setdefault("auth", self.auth)
        return http(method, self.url + path, body, timeout, **kwargs)

    def client_properties(self, path: Path, auth: tuple[str, str] | None = None) -> Path:
        """Writes a ``--command-config`` file to reach this node (as ``auth``, else as its own
        user) and returns its path."""
        path.write_text(
            client_properties_text(self.security_protocol, self.cafile, auth or self.auth)
        )
        return path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def format(self, cluster_id: str | None = None, secret: Path | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        props = {"node.id": str(self.node_id), "process.roles": self.roles}
        if self.roles == BROKER:
            assert self.bootstrap_servers, "a broker-only node needs bootstrap_servers"
            props["controller.quorum.bootstrap.servers"] = self.bootstrap_servers
            props["listeners"] = f"HTTP://127.0.0.1:{self.http_port}"
        else:
            if self.voters is None and self.bootstrap_servers:
                # A controller joining a running quorum (KIP-853): it follows the log until
                # kraft-metadata-quorum add-controller makes it a voter.
                props["controller.quorum.bootstrap.servers"] = self.bootstrap_servers
            else:
                voters = self.voters or f"{self.node_id}@127.0.0.1:{self.raft_port}"
                props["controller.quorum.voters"] = voters
            props["listeners"] = (
                f"HTTP://127.0.0.1:{self.http_port},CONTROLLER://127.0.0.1:{self.raft_port}"
            )
        props["log.dirs"] = str(self.log_dir)
        props.update(self.extra_properties)
        self.properties.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        if secret is None:
            secret = self.directory / "secret"
            secret.write_text(secrets.token_urlsafe(32))
        if cluster_id is None:
            out = run_tool("storage.storage_tool", "random-uuid")
            assert out.returncode == 0, out.stderr
            cluster_id = out.stdout.strip()
        out = run_tool(
            "storage.storage_tool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(self.properties),
            "--secret-file",
            str(secret),
        )
        assert out.returncode == 0, out.stderr

    def start(self, wait: bool = True) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        log = open(self.log_file, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.main", str(self.properties)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=self.env,
        )
        log.close()
        if wait:
            self.wait_ready()

    def wait_ready(self, deadline_s: float = READY_DEADLINE_S) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"node exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                status, _ = self.http("GET", "/v1/health/ready", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"node not ready after {deadline_s} s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int | None:
        """Stops the process by its pid; SIGKILL if it does not exit in time. Returns its code.
        A node a test paused (SIGSTOP) is resumed after the signal, so it acts on it."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            if sig != signal.SIGKILL:
                os.kill(self.process.pid, signal.SIGCONT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Cluster:
    """Real node processes forming one cluster: one cluster id, one secret, shared voters."""

    nodes: list[NodeProcess]
    # What add_node needs to make one more node of the same cluster (set by create).
    directory: Path | None = None
    cluster_id: str = ""
    secret: Path | None = None
    properties: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        directory: Path,
        count: int = 3,
        *,
        controllers: int = 0,
        brokers: int = 0,
        security: str = "PLAINTEXT",
        users: Mapping[str, str] | None = None,
        **properties: str,
    ) -> Cluster:
        """``count`` formatted combined nodes (not started); or, with ``controllers`` and
        ``brokers``, the dedicated layout: nodes 1..C are controller-only voters, C+1..C+B
        broker-only nodes that bootstrap from them (``count`` is then not used).
        ``security`` is the HTTP listener's protocol: with SSL or SASL_SSL a CA and node
        keystores are made in ``directory/certs``; with SASL ``users`` ({name: password}, at
        least one) go into a users file, and the first is the nodes' own ``auth``.
        ``properties`` go to every node (after the security ones, so a test may override
        them)."""
        assert controllers >= 0 and brokers >= 0
        roles = (
            [CONTROLLER] * controllers + [BROKER] * brokers
            if controllers or brokers
            else [COMBINED] * count
        )
        assert CONTROLLER not in roles or BROKER in roles, "a dedicated layout needs brokers"
        assert BROKER not in roles or CONTROLLER in roles, "brokers need controllers"
        count = len(roles)
        ports = free_ports(2 * count)
        directory.mkdir(parents=True, exist_ok=True)
        secure, cafile, auth = _security_setup(directory, count, security, users or {})
        nodes = [
            NodeProcess(
                directory / f"node-{i + 1}",
                node_id=i + 1,
                http_port=ports[2 * i],
                raft_port=ports[2 * i + 1],
                extra_properties={**secure[i], **properties},
                cafile=cafile,
                auth=auth,
                roles=roles[i],
            )
            for i in range(count)
        ]
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.raft_port}" for n in nodes if n.is_controller)
        secret = directory / "cluster.secret"
        secret.write_text(secrets.token_urlsafe(32))
        out = run_tool("storage.storage_tool", "random-uuid")
        assert out.returncode == 0, out.stderr
        cluster_id = out.stdout.strip()
        for node in nodes:
            node.voters = voters
            node.bootstrap_servers = _bootstrap_servers(voters)
            node.format(cluster_id, secret)
        return cls(nodes, directory, cluster_id, secret, dict(properties))

    def add_node(self, roles: str = BROKER, *, start: bool = True) -> NodeProcess:
        """Formats one more node (id max+1, the cluster's id and secret, the first node's
        security settings with a keystore of its own) and starts it unless ``start`` is False;
        it joins the running cluster through the voters' addresses. A broker-only node, or a
        controller-only one (``roles=CONTROLLER``): that one has the running controllers'
        Raft addresses as controller.quorum.bootstrap.servers and follows the log as an
        observer until kraft-metadata-quorum add-controller makes it a voter."""
        assert roles in (BROKER, CONTROLLER), "a broker or a controller joins a running cluster"
        assert self.directory is not None and self.secret is not None, "made by Cluster.create"
        first = self.nodes[0]
        assert first.voters is not None
        node_id = max(n.node_id for n in self.nodes) + 1
        extra = dict(first.extra_properties)
        if "ssl.keystore.location" in extra:
            store = self.directory / "certs"
            keystore = certs.write_keystore(store, certs.ensure_ca(store), f"node-{node_id}")
            extra["ssl.keystore.location"] = str(keystore)
        bootstrap = _bootstrap_servers(first.voters)
        if roles == CONTROLLER:
            running = [n for n in self.running() if n.is_controller]
            bootstrap = ",".join(f"127.0.0.1:{n.raft_port}" for n in running) or bootstrap
        node = NodeProcess(
            self.directory / f"node-{node_id}",
            node_id=node_id,
            extra_properties=extra,
            voters=None if roles == CONTROLLER else first.voters,
            cafile=first.cafile,
            auth=first.auth,
            roles=roles,
            bootstrap_servers=bootstrap,
        )
        node.format(self.cluster_id, self.secret)
        self.nodes.append(node)
        if start:
            node.start()
        return node

    @property
    def brokers(self) -> list[NodeProcess]:
        """The nodes that hold partitions (combined or broker-only)."""
        return [n for n in self.nodes if n.is_broker]

    @property
    def controllers(self) -> list[NodeProcess]:
        """The quorum's voters (combined or controller-only)."""
        return [n for n in self.nodes if n.is_controller]

    def node(self, node_id: int) -> NodeProcess:
        return next(n for n in self.nodes if n.node_id == node_id)

    def give_kafka_listeners(self, base_port: int | None = None) -> None:
        """A KAFKA listener on every node, the i-th (from 0) on ``base_port + 2i`` as the
        launcher lays them out (``scripts/cluster``: 19092, 19094, ...); ``base_port`` None: a
        run of ports free now. Before :meth:`start`; each port is then the node's
        :attr:`NodeProcess.kafka_port`."""
        if base_port is None:
            base_port = free_port_run(2 * len(self.nodes) - 1)
        for i, node in enumerate(self.nodes):
            node.give_kafka_listener(base_port + 2 * i)

    def kafka_bootstrap(self) -> str:
        """host:port of the KAFKA listener of every running node that has one, as a Kafka
        client's ``bootstrap.servers``."""
        addresses = [n.kafka_address for n in self.running() if n.has_kafka_listener]
        assert addresses, "no running node has a KAFKA listener (give_kafka_listeners)"
        return ",".join(addresses)

    def start(self) -> None:
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_ready()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def running(self) -> list[NodeProcess]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def controller_id(self, via: NodeProcess | None = None) -> int | None:
        """The metadata leader as the given (or any running) node sees it."""
        for node in [via] if via else self.running():
            try:
                status, body = node.http("GET", "/v1/cluster", timeout=5)
            except OSError:
                continue
            if status == 200 and body.get("controller_id") is not None:
                return int(body["controller_id"])
        return None


def _bootstrap_servers(voters: str) -> str:
    """``controller.quorum.bootstrap.servers`` (host:port,...) from the voters (id@host:port)."""
    return ",".join(item.partition("@")[2] for item in voters.split(","))


def _security_setup(
    directory: Path, count: int, protocol: str, users: Mapping[str, str]
) -> tuple[list[dict[str, str]], Path | None, tuple[str, str] | None]:
    """(each node's security properties, the CA file, the nodes' own credentials)."""
    protocol = protocol.upper()
    props: list[dict[str, str]] = [{} for _ in range(count)]
    if protocol == "PLAINTEXT":
        assert not users, "users need a SASL security protocol"
        return props, None, None
    cafile: Path | None = None
    for node in props:
        node["listener.security.protocol.map"] = f"HTTP:{protocol}"
    if protocol in TLS_PROTOCOLS:
        store = directory / "certs"
        ca = certs.ensure_ca(store)
        cafile = store / certs.CA_CERT_NAME
        for i, node in enumerate(props):
            keystore = certs.write_keystore(store, ca, f"node-{i + 1}")
            node["ssl.keystore.location"] = str(keystore)
            node["ssl.truststore.location"] = str(cafile)
    auth: tuple[str, str] | None = None
    if protocol in SASL_PROTOCOLS:
        assert users, f"{protocol} needs at least one user"
        users_file = directory / "users"
        for name, password in users.items():
            add_user(users_file, name, password)
        auth = next(iter(users.items()))
        for node in props:
            node["http.users.file"] = str(users_file)
    return props, cafile, auth


def wait_until(what: str, check: Any, deadline_s: float = READY_DEADLINE_S) -> Any:
    """Polls ``check()`` until it returns something truthy; fails naming ``what`` after it."""
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not true after {deadline_s} s (last: {last!r})")
