"""One node of the local cluster (``scripts/cluster``): where its files and ports are, what its
properties say, and whether it runs.

A pid file alone does not prove a node runs: a pid is recycled, and a node killed a moment ago
lingers as a zombie that still passes ``kill(pid, 0)``. A node runs when its pid is alive, not
a zombie (state ``Z`` in ``/proc/<pid>/stat``), and its command line is ``kraft-server-start``
(or ``python -m server.main``) with this node's properties file. Only such a pid is signalled.

A secure cluster (``scripts/cluster start --secure``) serves HTTP:SASL_SSL: each node has a
keystore signed by the cluster's own CA, users are checked against one users file, and ACLs
are on with ``admin`` as super user. Its files::

    DIR/certs/ca.pem, ca-key.pem        the cluster's CA (scripts/certs.py); the key is 0600
    DIR/certs/node-<id>.keystore.pem    node <id>'s certificate chain and key (0600)
    DIR/users                           the users file (kraft-users): admin, and any you add
    DIR/admin.properties                Kafka client properties of the admin user (0600), for
                                        the tools' --command-config (SASL PLAIN): ours over
                                        HTTP, Kafka's own over the KAFKA listener
    DIR/admin-scram.properties          the same with SASL SCRAM-SHA-256, for Kafka's own
                                        clients on the KAFKA listener (KAFKA:SASL_SSL)

Roles (Kafka's ``process.roles``): every node of the default layout is combined (a Raft voter
and a broker). ``scripts/cluster start --controllers C --brokers B`` makes the dedicated
layout: nodes 1..C are controller-only voters, C+1..C+B broker-only nodes, which have no Raft
listener and find the quorum through ``controller.quorum.bootstrap.servers``. A node's role
is read back from its own ``process.roles``, so the layout of a directory is what its node
directories say, and ``scripts/cluster add --roles broker`` appends node max+1.

The layout functions are pure; the rest reads ``/proc``, the node's files and its HTTP port.
"""

from __future__ import annotations

import base64
import errno
import re
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from storage.properties import PropertiesError, load_properties

LOG_DIR_NAME = "kraft-combined-logs"
# Written to a node's log before each start, so a failure shows the lines of this run only.
START_MARK = "--- scripts/cluster: starting node"
# One readiness probe: a node that serves at all answers at once, so a slow answer is "not yet".
PROBE_TIMEOUT_S = 2.0
# Lines of a node's log shown when it fails to start: enough for a traceback and its cause.
LOG_TAIL_LINES = 40

CERTS_DIR_NAME = "certs"
USERS_FILE_NAME = "users"
ADMIN_CONFIG_NAME = "admin.properties"
ADMIN_SCRAM_CONFIG_NAME = "admin-scram.properties"
ADMIN_USER = "admin"
SECURE_PROTOCOL = "SASL_SSL"
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"

COMBINED, CONTROLLER, BROKER = "broker,controller", "controller", "broker"

_NODE_DIR = re.compile(r"node-([1-9][0-9]*)")
_LISTENER = re.compile(r"(HTTP|CONTROLLER|KAFKA)://([^,:]*):([0-9]+)", re.IGNORECASE)
# Kafka's protocol (KAFKA://) on node i: K + 2(i-1), K the Kafka base port, by default the
# HTTP base port + KAFKA_BASE_PORT_OFFSET (19092, 19094, ... with the default 9092).
KAFKA_BASE_PORT_OFFSET = 10_000

# No proxy for 127.0.0.1, whatever http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LauncherError(Exception):
    """Something the user must fix; printed as is on stderr, exit 1."""


class NodeFiles:
    """A node's files and URL, named from its directory and HTTP port: one naming rule for the
    launcher's nodes (:class:`NodeLayout`) and the test and benchmark nodes
    (``scripts/node_process.py``)."""

    directory: Path
    http_port: int

    @property
    def properties(self) -> Path:
        return self.directory / "node.properties"

    @property
    def log_file(self) -> Path:
        return self.directory / "node.log"

    @property
    def out_file(self) -> Path:
        """What the process printed outside its log (the launcher's nodes)."""
        return self.directory / "node.out"

    @property
    def pid_file(self) -> Path:
        return self.directory / "node.pid"

    @property
    def log_dir(self) -> Path:
        return self.directory / LOG_DIR_NAME

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@dataclass(frozen=True)
class NodeLayout(NodeFiles):
    """Where one node of the local cluster lives: its id, ports and files, and whether it is
    secure (https, SASL, ACLs: see the module docstring)."""

    node_id: int
    http_port: int
    # The port scheme's Raft port; a broker-only node does not listen on it.
    raft_port: int
    directory: Path
    secure: bool = False
    # process.roles: COMBINED, CONTROLLER or BROKER.
    roles: str = COMBINED
    # Its KAFKA listener's port (Kafka's binary protocol); 0: none (a controller-only node,
    # a secure cluster's node, or one made before the Kafka listener existed).
    kafka_port: int = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self.http_port}"

    @property
    def kafka_address(self) -> str | None:
        """host:port of its KAFKA listener, or None."""
        return f"127.0.0.1:{self.kafka_port}" if self.kafka_port else None

    @property
    def is_controller(self) -> bool:
        """True when the node is a Raft voter (combined or controller-only)."""
        return self.roles != BROKER

    @property
    def is_broker(self) -> bool:
        """True when the node holds partitions (combined or broker-only)."""
        return self.roles != CONTROLLER

    @property
    def cluster_dir(self) -> Path:
        return self.directory.parent

    @property
    def cafile(self) -> Path:
        """The cluster's CA certificate (a secure cluster's)."""
        return self.cluster_dir / CERTS_DIR_NAME / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.cluster_dir / CERTS_DIR_NAME / f"node-{self.node_id}.keystore.pem"


def plan_node(
    directory: Path,
    node_id: int,
    base_port: int,
    secure: bool,
    roles: str,
    kafka_base_port: int | None = None,
) -> NodeLayout:
    """Node ``node_id`` of the cluster in ``directory`` whose node 1 serves HTTP on
    ``base_port`` (DESIGN.md's port rule: HTTP on P + 2(i-1), Raft on the next port), and
    a node with the broker role Kafka's protocol on K + 2(i-1), K ``kafka_base_port`` (default
    P + KAFKA_BASE_PORT_OFFSET); on a secure cluster it is KAFKA:SASL_SSL, as HTTP is."""
    http_port = base_port + 2 * (node_id - 1)
    kafka_base = base_port + KAFKA_BASE_PORT_OFFSET if kafka_base_port is None else kafka_base_port
    kafka_port = 0 if roles == CONTROLLER else kafka_base + 2 * (node_id - 1)
    return NodeLayout(
        node_id, http_port, http_port + 1, directory / f"node-{node_id}", secure, roles, kafka_port
    )


def plan_nodes(
    directory: Path,
    count: int,
    base_port: int,
    secure: bool = False,
    *,
    controllers: int = 0,
    kafka_base_port: int | None = None,
) -> list[NodeLayout]:
    """The nodes of a cluster of ``count`` in ``directory`` with HTTP on ``base_port`` for
    node 1: all combined, or with ``controllers`` the first that many controller-only and the
    rest broker-only; Kafka's protocol as :func:`plan_node` says."""
    return [
        plan_node(
            directory,
            i,
            base_port,
            secure,
            COMBINED if not controllers else CONTROLLER if i <= controllers else BROKER,
            kafka_base_port,
        )
        for i in range(1, count + 1)
    ]


def kafka_base_of(nodes: list[NodeLayout]) -> int | None:
    """The Kafka base port K of an existing cluster (from a node with a KAFKA listener), or
    None when none has one (a cluster made before the Kafka listener: nodes added to it
    get none either)."""
    for node in nodes:
        if node.kafka_port:
            return node.kafka_port - 2 * (node.node_id - 1)
    return None


def voters_of(nodes: list[NodeLayout]) -> str:
    """``controller.quorum.voters``: the controllers' id@host:port."""
    return ",".join(f"{n.node_id}@127.0.0.1:{n.raft_port}" for n in nodes if n.is_controller)


def topic_defaults(brokers: int) -> dict[str, str]:
    """The topic defaults DESIGN.md gives for a cluster of ``brokers`` brokers: replication
    factor min(3, brokers), min.insync.replicas 2 once there are three."""
    return {
        "default.replication.factor": str(max(1, min(3, brokers))),
        "min.insync.replicas": "2" if brokers >= 3 else "1",
    }


def node_properties(node: NodeLayout, nodes: list[NodeLayout]) -> dict[str, str]:
    """The node's settings, Kafka's names, with the topic defaults for the brokers of
    ``nodes``. A broker-only node has no Raft listener: it finds the quorum through
    ``controller.quorum.bootstrap.servers`` (the controllers' Raft addresses)."""
    voters = voters_of(nodes)
    kafka = f",KAFKA://127.0.0.1:{node.kafka_port}" if node.kafka_port else ""
    if node.roles == BROKER:
        quorum = {
            "controller.quorum.bootstrap.servers": ",".join(
                item.partition("@")[2] for item in voters.split(",")
            ),
            "listeners": f"HTTP://127.0.0.1:{node.http_port}{kafka}",
        }
    else:
        quorum = {
            "controller.quorum.voters": voters,
            "listeners": f"HTTP://127.0.0.1:{node.http_port},"
            f"CONTROLLER://127.0.0.1:{node.raft_port}{kafka}",
        }
    return {
        "node.id": str(node.node_id),
        "process.roles": node.roles,
        **quorum,
        "advertised.listeners": f"HTTP://127.0.0.1:{node.http_port}{kafka}",
        "log.dirs": str(node.log_dir),
        "num.partitions": "1",
        **topic_defaults(sum(1 for n in nodes if n.is_broker)),
        # The lab's cleaner looks for dirty logs every second (Kafka's: 15 s), so that a
        # compacted topic shows its clean while the user watches.
        "log.cleaner.backoff.ms": "1000",
        **(security_properties(node) if node.secure else {}),
    }


def security_properties(node: NodeLayout) -> dict[str, str]:
    """A secure node's settings (Kafka's names): TLS with its keystore and the cluster's CA,
    SASL against the users file, the StandardAuthorizer with admin as super user."""
    return {
        "listener.security.protocol.map": (
            f"HTTP:{SECURE_PROTOCOL},CONTROLLER:PLAINTEXT,KAFKA:{SECURE_PROTOCOL}"
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(node.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(node.cafile),
        "http.users.file": str(node.cluster_dir / USERS_FILE_NAME),
        "authorizer.class.name": STANDARD_AUTHORIZER,
        "super.users": f"User:{ADMIN_USER}",
    }


def admin_properties_text(cafile: Path, password: str) -> str:
    """Kafka client properties of the admin user (the tools' --command-config)."""
    return (
        "# The secure lab's admin user (a super user), written by scripts/cluster start --secure.\n"
        f"security.protocol={SECURE_PROTOCOL}\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={cafile}\n"
        "sasl.mechanism=PLAIN\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{ADMIN_USER}" password="{password}";\n'
    )


def admin_scram_properties_text(cafile: Path, password: str) -> str:
    """Kafka client properties of the admin user with SCRAM-SHA-256, for Kafka's own tools
    and clients on a secure cluster's KAFKA listener (our tools speak HTTP: PLAIN)."""
    return (
        "# The secure lab's admin user for Kafka's clients on the KAFKA listener (SASL_SSL,\n"
        "# SCRAM-SHA-256), written by scripts/cluster start --secure.\n"
        f"security.protocol={SECURE_PROTOCOL}\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={cafile}\n"
        "sasl.mechanism=SCRAM-SHA-256\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{password}";\n'
    )


def is_secure(props: dict[str, str]) -> bool:
    """True when a node's properties make its HTTP listener TLS (SSL or SASL_SSL)."""
    for item in props.get("listener.security.protocol.map", "").split(","):
        name, _, value = item.partition(":")
        if name.strip().upper() == "HTTP":
            return value.strip().upper() in ("SSL", "SASL_SSL")
    return False


_ROLE_TEXT = {
    COMBINED: "A combined-mode node: a Raft voter of the metadata quorum and a broker.",
    CONTROLLER: "A controller: a Raft voter of the metadata quorum; it holds no partitions.",
    BROKER: "A broker: it holds partitions and follows the metadata quorum, never a voter.",
}


def properties_text(props: dict[str, str], node_id: int, count: int) -> str:
    # Plain key=value lines, as Kafka's sample configs are: our values hold no character the
    # properties format would need escaped, and the caller checks the round trip.
    role = _ROLE_TEXT.get(roles_of(props), "")
    header = (
        f"# Node {node_id} of a {count}-node local cluster, written by scripts/cluster.\n# {role}\n"
    )
    return header + "".join(f"{key}={value}\n" for key, value in props.items())


def roles_of(props: dict[str, str]) -> str:
    """COMBINED, CONTROLLER or BROKER from ``process.roles`` (any order, spaces); the value
    as written when it is none of them."""
    value = props.get("process.roles", COMBINED)
    names = {part.strip() for part in value.split(",") if part.strip()}
    if names == {"broker", "controller"}:
        return COMBINED
    return value.strip() if len(names) != 1 else names.pop()


def ports_of(props: dict[str, str]) -> tuple[int, int] | None:
    """(HTTP port, Raft port) named by a properties file's ``listeners``, or None. A
    broker-only node has no Raft listener: its Raft port is the port scheme's, HTTP + 1."""
    found = {
        m.group(1).upper(): int(m.group(3)) for m in _LISTENER.finditer(props.get("listeners", ""))
    }
    if "HTTP" not in found:
        return None
    if "CONTROLLER" not in found:
        return (found["HTTP"], found["HTTP"] + 1) if roles_of(props) == BROKER else None
    return found["HTTP"], found["CONTROLLER"]


def kafka_port_of(props: dict[str, str]) -> int:
    """The KAFKA listener's port a properties file's ``listeners`` names; 0 for none."""
    for m in _LISTENER.finditer(props.get("listeners", "")):
        if m.group(1).upper() == "KAFKA":
            return int(m.group(3))
    return 0


def process_state(stat_text: str) -> str:
    """The state letter of a ``/proc/<pid>/stat`` line (after the command name, which may hold
    spaces and parentheses, so it is found from the last ')')."""
    return stat_text[stat_text.rindex(")") + 1 :].split()[0]


def is_node_command(argv: list[str], properties: Path) -> bool:
    """True when ``argv`` is a node process (kraft-server-start or python -m server.main)
    started with this properties file."""
    runs_node = any(
        Path(arg).name == "kraft-server-start" or arg == "server.main" for arg in argv[:3]
    )
    return runs_node and str(properties) in argv[1:]


def node_line(node: NodeLayout, pid: int) -> str:
    """``node <id> <url> pid <pid>``, then the role of a node that is not combined, then
    ``kafka <host:port>`` for a node with a KAFKA listener (Kafka's clients' bootstrap)."""
    line = f"node {node.node_id} {node.url} pid {pid}"
    if node.roles != COMBINED:
        line += f" {node.roles}"
    return line if not node.kafka_port else f"{line} kafka {node.kafka_address}"


def _proc_view(pid: int) -> tuple[str, list[str]] | None:
    """(state letter, argv) of a live process, or None if there is none."""
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            state = process_state((proc / "stat").read_text())
            raw = (proc / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        return state, [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    # No /proc (macOS): ps shows the same two things; its command line is space-joined.
    out = subprocess.run(
        ["ps", "-p", str(pid), "-o", "stat=", "-o", "command="],
        capture_output=True,
        text=True,
        check=False,
    )
    fields = out.stdout.split()
    return (fields[0][0], fields[1:]) if out.returncode == 0 and fields else None


def running_pid(node: NodeLayout) -> int | None:
    """The pid of the node's process if it runs (see the module docstring), else None."""
    try:
        pid = int(node.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    view = _proc_view(pid) if pid > 0 else None
    if view is None or view[0] in ("Z", "X"):
        return None
    return pid if is_node_command(view[1], node.properties) else None


def existing_nodes(directory: Path) -> list[NodeLayout]:
    """The nodes DIR already holds (a ``node-<id>`` directory with its properties), their
    ports read from their own properties files."""
    if not directory.is_dir():
        return []
    nodes = []
    voter_ids: set[int] = set()
    for entry in directory.iterdir():
        match = _NODE_DIR.fullmatch(entry.name)
        if match is None or not (entry / "node.properties").is_file():
            continue
        try:
            props = load_properties(entry / "node.properties")
        except (OSError, PropertiesError) as e:
            raise LauncherError(f"cannot read {entry / 'node.properties'}: {e}") from None
        roles = roles_of(props)
        if roles not in (COMBINED, CONTROLLER, BROKER):
            raise LauncherError(
                f"{entry / 'node.properties'}: process.roles must be broker, controller or "
                f"broker,controller, not {roles!r}"
            )
        ports = ports_of(props)
        if ports is None:
            need = "an HTTP" if roles == BROKER else "an HTTP and a CONTROLLER"
            raise LauncherError(f"{entry / 'node.properties'}: listeners must name {need} listener")
        nodes.append(
            NodeLayout(
                int(match.group(1)),
                ports[0],
                ports[1],
                entry,
                is_secure(props),
                roles,
                kafka_port_of(props),
            )
        )
        voter_ids.update(_voter_ids(props.get("controller.quorum.voters", "")))
    nodes.sort(key=lambda n: n.node_id)
    # Brokers may leave gaps (a broker unregistered and its directory deleted); a voter may
    # not go: the quorum's voters are fixed when the cluster is formatted.
    present = {n.node_id for n in nodes}
    missing = sorted(voter_ids - present)
    if missing:
        raise LauncherError(
            f"{directory} has no node directory for voters {missing} of its quorum "
            "(controller.quorum.voters); a controller cannot be removed, its voters are fixed"
        )
    if len({n.secure for n in nodes}) > 1:
        raise LauncherError(
            f"{directory} holds secure and plain nodes; a cluster's nodes speak one protocol"
        )
    if nodes and not any(n.is_controller for n in nodes):
        raise LauncherError(f"{directory} holds brokers but no controller; it cannot run")
    return nodes


def _voter_ids(voters: str) -> set[int]:
    """The ids of ``controller.quorum.voters`` (id@host:port,...); what is not a number is
    left to the node, which refuses it with a clear message."""
    ids = (item.partition("@")[0].strip() for item in voters.split(","))
    return {int(i) for i in ids if i.isdigit()}


def log_tail(node: NodeLayout, lines: int = LOG_TAIL_LINES) -> str:
    """The end of the node's log since its last start."""
    try:
        text = node.log_file.read_text(errors="replace")
    except OSError:
        return "(no log)"
    mark = text.rfind(START_MARK)
    tail = (text[mark:] if mark >= 0 else text).splitlines()[1 if mark >= 0 else 0 :]
    try:
        printed = node.out_file.read_text(errors="replace").splitlines()
    except OSError:
        printed = []
    if printed:  # a crash's traceback, say: it never reached the log
        tail += [f"--- {node.out_file.name}:", *printed[-lines:]]
    return "\n".join(tail[-lines:]) or "(the log is empty)"


def probe_ready(node: NodeLayout, auth: tuple[str, str] | None = None) -> tuple[bool, str]:
    """(ready, why not) from the node's /v1/health/ready (a secure node's over https,
    checked against the cluster's CA, as ``auth`` (user, password) when given)."""
    request = urllib.request.Request(node.url + "/v1/health/ready")
    if auth is not None:
        pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        request.add_header("Authorization", f"Basic {pair}")
    opener = _OPENER
    if node.secure:
        try:
            context = ssl.create_default_context(cafile=str(node.cafile))
        except OSError as e:
            return False, f"cannot load {node.cafile}: {e}"
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
    try:
        with opener.open(request, timeout=PROBE_TIMEOUT_S) as answer:
            return answer.status == 200, f"HTTP {answer.status}"
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace").strip()
        return False, f"HTTP {e.code} {body}"
    except (OSError, ValueError) as e:
        return False, f"no answer ({getattr(e, 'reason', e)})"


def port_problem(port: int) -> str | None:
    """Why a node could not listen on 127.0.0.1:``port`` ("already in use", ...), or None."""
    with socket.socket() as s:
        # SO_REUSEADDR as the node sets it: a port left in TIME_WAIT by a stopped node is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            return "already in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
    return None


def remove_file(path: Path) -> None:
    """Deletes ``path`` if it is there."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
