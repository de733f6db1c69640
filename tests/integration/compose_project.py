"""The compose project (compose/) read as Docker Compose reads it, and its node containers
played by processes on 127.0.0.1, for tests/integration/test_compose.py.

There is no Docker engine here. The files are read as Compose reads them (YAML with merge keys,
``${VAR}`` interpolation from compose/.env or the shell, override files merged), and a node
container is played by the image's entrypoint (scripts/container_entrypoint.py, the file the
Dockerfile copies) run with the environment the container would have: the image's ENV, then the
service's. One function, :meth:`Localizer.value`, makes the only change: service host names and
container ports become 127.0.0.1 and free ports, and the container's /var/lib/kraft a temporary
directory.

A published port (``127.0.0.1:9094:9092``) is played as Docker plays it: its own host-side port
(another free port) and a forwarder to the container's port (:class:`PublishedPort`). The host
side is a different port from the one the node listens on, as in compose, where the host's
127.0.0.1:9094 is not reachable from inside a container at all. A test can stop the
forwarding (:meth:`PublishedPort.unpublish`) and then see that the nodes never dial a peer's
advertised (host-side) address: each connection made to it is refused and counted.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scripts.node_process import free_ports, http

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
CHAOS_FILE = COMPOSE_DIR / "chaos.yaml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
ENTRYPOINT = ROOT / "scripts" / "container_entrypoint.py"
NODES = ("node1", "node2", "node3")
# What `scripts/cluster start` serves node i on: the compose file publishes the same ports.
HOST_HTTP_PORTS = {"node1": 9092, "node2": 9094, "node3": 9096}
HOST_KAFKA_PORTS = {"node1": 19092, "node2": 19094, "node3": 19096}
# The variables compose/.env supplies (the README's one-liner writes the secret).
DOTENV = {"KRAFT_CLUSTER_SECRET": "a-test-secret-of-more-than-16-bytes"}
IMAGE_ROOT = "/var/lib/kraft"
STOP_TIMEOUT_S = 30.0


# ---------------------------------------------------------------------------------------------
# Reading compose/ as Docker reads it
# ---------------------------------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-?])(?P<arg>[^}]*))?\})"
)


class InterpolationError(Exception):
    """What Compose would refuse: a required variable unset."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` with Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``
    replaced, in every string of a nested structure."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        given = env.get(match["name"], "")
        if given:
            return given
        if match["op"] == ":?":
            raise InterpolationError(f"{match['name']}: {match['arg']}")
        return match["arg"] or ""

    return _VARIABLE.sub(replace, value)


def load_compose(*files: Path, env: Mapping[str, str] = DOTENV) -> dict[str, Any]:
    """The project Compose makes of ``files`` (the first, then overrides): interpolated, the
    overrides' service environments merged by name and their depends_on added."""
    project: dict[str, Any] = {}
    for path in files:
        layer = interpolate(yaml.safe_load(path.read_text()), env)
        if not project:
            project = layer
            continue
        for name, override in layer.get("services", {}).items():
            service = project["services"].setdefault(name, {})
            for key, item in override.items():
                if key == "environment":
                    service["environment"] = {**service.get("environment", {}), **item}
                elif key == "depends_on":
                    service["depends_on"] = [*service.get("depends_on", []), *item]
                else:
                    service[key] = item
    for service in project["services"].values():
        # Compose reads a value as text: `KRAFT_NODE_ID: 1` reaches the container as "1".
        service["environment"] = {
            k: "" if v is None else str(v) for k, v in service.get("environment", {}).items()
        }
    return project


@dataclass
class Dockerfile:
    """The instructions of compose/Dockerfile that the compose file relies on."""

    base: str = ""
    env: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    expose: list[int] = field(default_factory=list)
    copies: dict[str, str] = field(default_factory=dict)  # source -> destination
    user: str = ""
    workdir: str = ""
    entrypoint: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)  # the CMD, exec form

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        text = re.sub(r"\\\n", " ", path.read_text())
        out = cls()
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            rest = rest.strip()
            match word.upper():
                case "FROM":
                    out.base = rest
                case "ENV":
                    out.env.update(item.split("=", 1) for item in shlex.split(rest))  # type: ignore[misc]
                case "VOLUME":
                    out.volumes += json.loads(rest) if rest.startswith("[") else rest.split()
                case "EXPOSE":
                    out.expose += [int(p.split("/")[0]) for p in rest.split()]
                case "COPY":
                    parts = [p for p in rest.split() if not p.startswith("--")]
                    out.copies.update({src: parts[-1] for src in parts[:-1]})
                case "USER":
                    out.user = rest
                case "WORKDIR":
                    out.workdir = rest
                case "ENTRYPOINT":
                    out.entrypoint = json.loads(rest)
                case "HEALTHCHECK":
                    out.healthcheck = json.loads(rest.split(" CMD ", 1)[1])
        return out


@dataclass(frozen=True)
class Listener:
    host: str
    port: int


def listener(env: Mapping[str, str], name: str) -> Listener:
    """A listener (HTTP, CONTROLLER or KAFKA) of a service's KRAFT_LISTENERS."""
    for item in env["KRAFT_LISTENERS"].split(","):
        kind, _, address = item.partition("://")
        if kind == name:
            host, port = address.rsplit(":", 1)
            return Listener(host, int(port))
    raise AssertionError(f"KRAFT_LISTENERS has no {name} listener: {env['KRAFT_LISTENERS']}")


def container_env(image: Dockerfile, service: Mapping[str, Any]) -> dict[str, str]:
    """A container's environment: the image's ENV, then the service's."""
    return {**image.env, **service["environment"]}


def published(service: Mapping[str, Any]) -> dict[int, int]:
    """{host port: container port} of a service's ``ports``, each bound to 127.0.0.1 only."""
    out: dict[int, int] = {}
    for item in service.get("ports", []):
        host_ip, host_port, container_port = str(item).split(":")
        assert host_ip == "127.0.0.1", f"{item}: a port is published on 127.0.0.1 only"
        out[int(host_port)] = int(container_port)
    return out


# ---------------------------------------------------------------------------------------------
# The three nodes, run as Compose runs them
# ---------------------------------------------------------------------------------------------

_ADDRESS = re.compile(r"(?P<host>[A-Za-z0-9][A-Za-z0-9.\-]*):(?P<port>[0-9]{2,5})\b")
# Variables whose addresses are the host's view (a client outside the containers dials them).
HOST_VIEW = {"KRAFT_ADVERTISED_LISTENERS"}


@dataclass
class Localizer:
    """Where the compose project's addresses and paths are in this test: the only difference
    between the containers and these processes."""

    root: Path
    # (service, container port) -> the free port on 127.0.0.1 that plays it
    ports: dict[tuple[str, int], int]
    # host port published -> (service, container port)
    published: dict[int, tuple[str, int]]
    # host port published -> the free port on 127.0.0.1 that plays it (never one of ``ports``)
    host_ports: dict[int, int]

    def value(self, text: str, service: str, host_view: bool = False) -> str:
        """``text`` as seen by ``service``'s container (or by the host, for advertised
        addresses): each ``host:port`` to 127.0.0.1 and its free port, /var/lib/kraft to this
        service's temporary directory. An address it does not know fails the test."""

        def replace(match: re.Match[str]) -> str:
            host, port = match["host"], int(match["port"])
            if host in ("127.0.0.1", "localhost") and host_view:
                if port not in self.host_ports:
                    raise AssertionError(f"{match[0]} in {text!r} is published by no service")
                return f"127.0.0.1:{self.host_ports[port]}"
            if host in ("127.0.0.1", "localhost", "0.0.0.0"):
                key = (service, port)  # the container itself
            else:
                key = (host, port)
            if key not in self.ports:
                raise AssertionError(f"{service}: {match[0]} in {text!r} is no node's address")
            return f"127.0.0.1:{self.ports[key]}"

        return _ADDRESS.sub(replace, text).replace(IMAGE_ROOT, str(self.root / service))

    def env(self, env: Mapping[str, str], service: str) -> dict[str, str]:
        return {k: self.value(v, service, host_view=k in HOST_VIEW) for k, v in env.items()}


def localize(
    project: dict[str, Any], image: Dockerfile, root: Path, more: Iterable[tuple[str, int]] = ()
) -> Localizer:
    """Free ports for every container port the node services listen on (and for ``more``,
    (service, port) pairs of other services), keyed as the compose file names them, and other
    free ports for the host ports the nodes publish."""
    keys = [(name, port) for name in NODES for port in image.expose] + list(more)
    by_host = {
        host: (name, container)
        for name in NODES
        for host, container in published(project["services"][name]).items()
    }
    chosen = free_ports(len(keys) + len(by_host))
    ports = dict(zip(keys, chosen[: len(keys)], strict=True))
    host_ports = dict(zip(by_host, chosen[len(keys) :], strict=True))
    return Localizer(root, ports, by_host, host_ports)


def publish(where: Localizer) -> dict[str, PublishedPort]:
    """Starts the forwarders of the nodes' published ports (Docker's port publishing): each
    host-side port to its container port. Keyed by service and host port as the compose file
    names them (``node2:9094``, ``node2:19094``); :func:`unpublish_all` stops them."""
    made: dict[str, PublishedPort] = {}
    try:
        for host, (service, container) in where.published.items():
            name = f"{service}:{host}"
            made[name] = PublishedPort(
                where.host_ports[host], where.ports[(service, container)], name
            )
    except BaseException:
        unpublish_all(made)
        raise
    return made


def unpublish_all(ports: Mapping[str, PublishedPort]) -> None:
    for port in ports.values():
        port.close()


@dataclass
class _Link:
    """A forwarded connection: its two sockets, and how many of its two pumps still run."""

    client: socket.socket
    upstream: socket.socket
    pumps: int = 2


class PublishedPort:
    """A published port: connections to 127.0.0.1:``port`` are forwarded to 127.0.0.1:``to``,
    until :meth:`unpublish`; from then on each connection is reset at once and counted in
    :attr:`refused` (the port stays bound, so no other process takes it meanwhile)."""

    def __init__(self, port: int, to: int, name: str) -> None:
        self.port, self.to, self.name = port, to, name
        self.refused = 0
        self._forwarding = True
        self._closed = False
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._threads: list[threading.Thread] = []
        self._server = socket.create_server(("127.0.0.1", port))
        # accept() wakes up at least this often to see close(): closing a socket does not wake
        # a thread blocked in accept() on it.
        self._server.settimeout(0.2)
        self._acceptor = threading.Thread(target=self._accept, name=f"publish {name}")
        self._acceptor.start()

    def unpublish(self) -> None:
        """Stops forwarding: the connections open now are cut (a pooled keep-alive connection
        does not outlive it) and every new one is refused."""
        with self._lock:
            self._forwarding = False
            links = list(self._links)
        for link in links:
            _cut(link.client)
            _cut(link.upstream)

    def close(self) -> None:
        """Stops everything and frees the port; returns once its threads have ended."""
        self.unpublish()
        self._closed = True
        self._acceptor.join()
        self._server.close()
        for thread in self._threads:
            thread.join()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:  # the timeout (to see close()), or a connection aborted meanwhile
                continue
            client.settimeout(None)
            upstream = None
            if self._forwarding:
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.to), timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    pass  # the container's port is closed: so is the published one
            with self._lock:  # decided with unpublish() excluded: no link escapes its cut
                refused = not self._forwarding
                self.refused += refused
                link = None if refused or upstream is None else _Link(client, upstream)
                if link is not None:
                    self._links.append(link)
            if link is None:
                _reset(client)
                if upstream is not None:
                    upstream.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                thread = threading.Thread(
                    target=self._pump, args=(link, source, sink), name=self.name
                )
                self._threads.append(thread)
                thread.start()

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        """Copies ``source`` to ``sink`` until its end, then ends ``sink``'s sending half (the
        other direction may still be talking); an error cuts both. The last of a link's two
        pumps closes its sockets."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            _cut(source)
            _cut(sink)
        with self._lock:
            link.pumps -= 1
            last = link.pumps == 0
            if last:
                self._links.remove(link)
        if last:
            source.close()
            sink.close()


def _reset(sock: socket.socket) -> None:
    """Closes ``sock`` with an RST (linger 0): the peer sees the connection refused at once."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _cut(sock: socket.socket) -> None:
    """Ends both directions of ``sock`` (waking a thread blocked in recv on it)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def node_containers(
    project: dict[str, Any], image: Dockerfile, where: Localizer
) -> dict[str, Container]:
    """The node services as :class:`Container` (not started), localized by ``where``."""
    made: dict[str, Container] = {}
    for name in NODES:
        service = project["services"][name]
        test = service["healthcheck"]["test"]
        port = listener(service["environment"], "HTTP").port
        made[name] = Container(
            name=name,
            env=where.env(container_env(image, service), name),
            workdir=Path(where.value(image.workdir, name)),
            health=[test[0], *(where.value(part, name) for part in test[1:])],
            url=where.value(f"http://127.0.0.1:{HOST_HTTP_PORTS[name]}", name, host_view=True),
            kafka=where.value(f"127.0.0.1:{HOST_KAFKA_PORTS[name]}", name, host_view=True),
            inside=where.value(f"http://{name}:{port}", "client"),
        )
    return made


@dataclass
class Container:
    """One node service, played by the entrypoint process."""

    name: str
    env: dict[str, str]
    workdir: Path
    health: list[str]
    url: str  # how a host client reaches it (its published port)
    kafka: str  # host:port where a host's Kafka client reaches it (its published KAFKA port)
    inside: str  # how another container reaches it (its service name and HTTP port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def output(self) -> Path:
        return self.workdir / "container.log"

    @property
    def log_dir(self) -> Path:
        return Path(self.env["KRAFT_LOG_DIRS"])

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.output, "ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            out.flush()
            # The image's ENTRYPOINT, run by the Python that has the project installed, as the
            # image's does; its environment is the container's and nothing of ours.
            self.process = subprocess.Popen(
                [sys.executable, str(ENTRYPOINT)],
                env={"PATH": os.environ["PATH"], **self.env},
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def this_run(self) -> str:
        text = self.output.read_text(errors="replace")
        return text[text.rfind(f"--- start {self.starts}\n") :]

    def ready(self, url: str | None = None) -> bool:
        """Whether the node answers 200 on /v1/health/ready at ``url`` (its published port
        unless given); fails the test if it has exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}:\n{self.this_run()[-4000:]}"
            )
        try:
            status, _ = http("GET", (url or self.url) + "/v1/health/ready", timeout=2)
        except OSError:
            return False
        return status == 200

    def health_check(self) -> subprocess.CompletedProcess[str]:
        """The compose file's health check command, run as Docker runs it in the container."""
        assert self.health[0] == "CMD"
        return subprocess.run(
            self.health[1:],
            env={"PATH": os.environ["PATH"], **self.env},
            capture_output=True,
            text=True,
            timeout=30,
        )
