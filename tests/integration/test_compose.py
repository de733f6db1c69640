"""compose/: the compose file's structure, and its three nodes run as Compose would run them.

There is no Docker engine here, so the file is read as Compose reads it (YAML with merge keys,
``${VAR}`` interpolation from compose/.env or the shell, override files merged) and its node
containers are played by processes: each runs the image's entrypoint
(scripts/container_entrypoint.py, the file the Dockerfile copies) with the environment the
container would have (the image's ENV, then the service's). One function, :func:`localize`,
makes the only change: service host names and container ports become 127.0.0.1 and free ports,
and the container's /var/lib/kraft a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs installed (types-PyYAML)

from scripts.container_entrypoint import settings_from_env
from scripts.node_process import free_ports, http, run_tool, wait_until
from server.config import NodeConfig
from storage.ids import random_uuid
from storage.properties import MetaProperties

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
CHAOS_FILE = COMPOSE_DIR / "chaos.yaml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
ENTRYPOINT = ROOT / "scripts" / "container_entrypoint.py"
NODES = ("node1", "node2", "node3")
# What `scripts/cluster start` serves node i on: the compose file publishes the same ports.
HOST_HTTP_PORTS = {"node1": 9092, "node2": 9094, "node3": 9096}
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
    """A listener (HTTP or CONTROLLER) of a service's KRAFT_LISTENERS."""
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


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return load_compose(COMPOSE_FILE)


@pytest.fixture(scope="module")
def image() -> Dockerfile:
    return Dockerfile.read(DOCKERFILE)


# ---------------------------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------------------------


def test_three_node_services_publish_the_launchers_ports(project: dict[str, Any]) -> None:
    services = project["services"]
    nodes = [name for name, s in services.items() if "KRAFT_NODE_ID" in s["environment"]]
    assert nodes == list(NODES), f"node services {nodes}, expected {list(NODES)}"
    for i, name in enumerate(NODES, start=1):
        service = services[name]
        assert service["hostname"] == name
        assert service["environment"]["KRAFT_NODE_ID"] == str(i)
        assert "profiles" not in service, f"{name} must start with a plain `up`"
        http_port = listener(service["environment"], "HTTP").port
        assert published(service) == {HOST_HTTP_PORTS[name]: http_port}, (
            f"{name} publishes {published(service)}, expected {{{HOST_HTTP_PORTS[name]}: "
            f"{http_port}}} (its HTTP listener on the launcher's port; Raft never published)"
        )
    images = {(services[n]["image"], json.dumps(services[n]["build"])) for n in NODES}
    assert len(images) == 1, f"the nodes run different images: {images}"
    build = services["node1"]["build"]
    assert (COMPOSE_DIR / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE


def test_each_node_has_its_own_named_volume_at_the_images_log_dir(
    project: dict[str, Any], image: Dockerfile
) -> None:
    log_dir = image.env["KRAFT_LOG_DIRS"]
    assert image.volumes == [log_dir], (
        f"the image's VOLUME {image.volumes} is not its log dir KRAFT_LOG_DIRS={log_dir}"
    )
    assert Path(log_dir).name == "kraft-combined-logs"
    seen = set()
    for name in NODES:
        service = project["services"][name]
        assert "KRAFT_LOG_DIRS" not in service["environment"] or (
            service["environment"]["KRAFT_LOG_DIRS"] == log_dir
        )
        mounts = [str(v).split(":") for v in service["volumes"]]
        at_log_dir = [m for m in mounts if m[1] == log_dir]
        assert len(at_log_dir) == 1, f"{name}: no single volume at {log_dir}: {mounts}"
        volume = at_log_dir[0][0]
        assert volume in project["volumes"], f"{name}: {volume} is not a named volume"
        assert volume not in seen, f"{volume} is shared by two nodes"
        seen.add(volume)


def test_every_kraft_variable_is_a_setting_the_node_accepts(
    project: dict[str, Any], image: Dockerfile
) -> None:
    configs = {
        name: NodeConfig.from_properties(
            settings_from_env(container_env(image, project["services"][name]))
        )
        for name in NODES
    }
    voters = {name: config.voters for name, config in configs.items()}
    assert len({json.dumps(v, sort_keys=True) for v in voters.values()}) == 1, voters
    for i, name in enumerate(NODES, start=1):
        config = configs[name]
        assert config.node_id == i
        assert config.voters[i] == (name, config.raft_port) == (config.raft_host, config.raft_port)
        assert config.log_dir == Path(image.env["KRAFT_LOG_DIRS"])
        assert config.http_port in image.expose and config.raft_port in image.expose
        # A host client is sent to the address it can dial: the port published for this node.
        assert config.advertised_http_url == f"http://127.0.0.1:{HOST_HTTP_PORTS[name]}"
        # Peers dial each other by service name (127.0.0.1 in a container is the container).
        peers = {j: (other, configs[other].http_port) for j, other in enumerate(NODES, start=1)}
        del peers[i]
        assert config.http_dial == peers, f"{name} dials peers' HTTP at {config.http_dial}"
        assert config.default_replication_factor == 3
        assert config.topic_defaults["min.insync.replicas"] == "2"
    # The id and secret are the same everywhere (one anchor), and the secret is the user's.
    for key in ("CLUSTER_ID", "CLUSTER_SECRET"):
        values = {project["services"][n]["environment"][key] for n in NODES}
        assert len(values) == 1, f"{key} differs between the nodes: {values}"
    assert (
        project["services"]["node1"]["environment"]["CLUSTER_SECRET"]
        == (DOTENV["KRAFT_CLUSTER_SECRET"])
    )


def test_compose_refuses_to_start_without_the_users_secret() -> None:
    with pytest.raises(InterpolationError, match="KRAFT_CLUSTER_SECRET"):
        load_compose(COMPOSE_FILE, env={})


def test_health_checks_ask_each_nodes_own_ready_endpoint(
    project: dict[str, Any], image: Dockerfile
) -> None:
    assert image.healthcheck[:2] == ["python", "-c"], image.healthcheck
    for name in NODES:
        service = project["services"][name]
        test = service["healthcheck"]["test"]
        assert test == ["CMD", *image.healthcheck], (
            f"{name}'s health check {test} is not the image's {image.healthcheck}"
        )
        port = listener(service["environment"], "HTTP").port
        assert f"http://127.0.0.1:{port}/v1/health/ready" in test[-1]


def test_dockerfile_runs_the_entrypoint_as_a_user_from_python_311_slim(image: Dockerfile) -> None:
    assert image.base == "python:3.11-slim"
    destination = image.copies.get(str(ENTRYPOINT.relative_to(ROOT)))
    assert destination is not None, f"the Dockerfile does not copy {ENTRYPOINT}: {image.copies}"
    assert image.entrypoint == [Path(destination).name]
    assert Path(destination).parent == Path("/usr/local/bin"), "on the image's PATH"
    assert image.user not in ("", "root", "0"), "the node runs as a user, not root"
    assert image.workdir == IMAGE_ROOT
    assert os.access(ENTRYPOINT, os.X_OK)


def test_metrics_profile_scrapes_every_node_and_provisions_grafana(
    project: dict[str, Any],
) -> None:
    services = project["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert prometheus["profiles"] == ["metrics"] and grafana["profiles"] == ["metrics"]
    mounts = dict(str(v).rsplit(":", 1)[0].split(":") for v in prometheus["volumes"])
    config_path = COMPOSE_DIR / "prometheus.yml"
    assert mounts == {"./prometheus.yml": "/etc/prometheus/prometheus.yml"}
    config = yaml.safe_load(config_path.read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    expected = [f"{n}:{listener(services[n]['environment'], 'HTTP').port}" for n in NODES]
    assert targets == expected
    grafana_mounts = dict(str(v).rsplit(":", 1)[0].split(":") for v in grafana["volumes"])
    for source in grafana_mounts:
        assert (COMPOSE_DIR / source).is_dir(), f"grafana mounts {source}, which is missing"
    assert grafana_mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    # Grafana's provisioning (compose/grafana/) reads the dashboards where they are mounted,
    # and its data source is this file's prometheus service.
    providers = [
        p
        for f in sorted((COMPOSE_DIR / "grafana/provisioning/dashboards").glob("*.y*ml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    assert {p["options"]["path"] for p in providers} == {grafana_mounts["./grafana/dashboards"]}
    sources = [
        s
        for f in sorted((COMPOSE_DIR / "grafana/provisioning/datasources").glob("*.y*ml"))
        for s in yaml.safe_load(f.read_text())["datasources"]
    ]
    port = prometheus["ports"][0].rsplit(":", 1)[1]
    assert [s["url"] for s in sources] == [f"http://prometheus:{port}"]


def _chaos_links(project: dict[str, Any], image: Dockerfile) -> dict[str, dict[str, Any]]:
    """Each Toxiproxy proxy by name, with the node dialling through it and the peer it reaches."""
    toxiproxy = project["services"]["toxiproxy"]
    config_at = next(a.split("=", 1)[1] for a in toxiproxy["command"] if a.startswith("-config="))
    mounts = dict(str(v).rsplit(":", 1)[0].split(":") for v in toxiproxy["volumes"])
    source = next(src for src, target in mounts.items() if target == config_at)
    proxies = {p["name"]: p for p in json.loads((COMPOSE_DIR / source).read_text())}
    by_listen_port = {int(p["listen"].rsplit(":", 1)[1]): p for p in proxies.values()}
    configs = {
        n: NodeConfig.from_properties(
            settings_from_env(container_env(image, project["services"][n]))
        )
        for n in NODES
    }
    links: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(NODES, start=1):
        config = configs[name]
        for kind, dials in (("http", config.http_dial), ("raft", config.raft_dial)):
            assert sorted(dials) == [j for j in range(1, 4) if j != i], (
                f"{name} does not dial every peer's {kind} through toxiproxy: {dials}"
            )
            for j, (host, port) in dials.items():
                assert host == "toxiproxy", f"{name} dials peer {j}'s {kind} at {host}:{port}"
                proxy = by_listen_port.get(port)
                assert proxy is not None, f"no proxy listens on {port} ({name} -> node{j})"
                peer = configs[NODES[j - 1]]
                want = (
                    f"{NODES[j - 1]}:{peer.http_port}"
                    if kind == "http"
                    else "{}:{}".format(*peer.voters[j])
                )
                assert proxy["upstream"] == want, f"{proxy['name']} forwards to the wrong place"
                links[proxy["name"]] = {"from": name, "to": NODES[j - 1], "kind": kind}
    assert sorted(links) == sorted(proxies), "a proxy of toxiproxy.json carries no link"
    return links


def test_chaos_profile_routes_every_link_through_toxiproxy(image: Dockerfile) -> None:
    project = load_compose(COMPOSE_FILE, CHAOS_FILE)
    toxiproxy = project["services"]["toxiproxy"]
    assert toxiproxy["image"] == "ghcr.io/shopify/toxiproxy:2.12.0"
    assert toxiproxy["profiles"] == ["chaos"]
    links = _chaos_links(project, image)
    assert len(links) == 12  # 6 ordered pairs, HTTP and Raft
    for link in links.values():
        assert "toxiproxy" in project["services"][link["from"]]["depends_on"]


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

    def value(self, text: str, service: str, host_view: bool = False) -> str:
        """``text`` as seen by ``service``'s container (or by the host, for advertised
        addresses): each ``host:port`` to 127.0.0.1 and its free port, /var/lib/kraft to this
        service's temporary directory. An address it does not know fails the test."""

        def replace(match: re.Match[str]) -> str:
            host, port = match["host"], int(match["port"])
            if host in ("127.0.0.1", "localhost") and host_view:
                key = self.published.get(port)
            elif host in ("127.0.0.1", "localhost", "0.0.0.0"):
                key = (service, port)  # the container itself
            else:
                key = (host, port)
            if key not in self.ports:
                raise AssertionError(f"{service}: {match[0]} in {text!r} is no node's address")
            return f"127.0.0.1:{self.ports[key]}"

        return _ADDRESS.sub(replace, text).replace(IMAGE_ROOT, str(self.root / service))

    def env(self, env: Mapping[str, str], service: str) -> dict[str, str]:
        return {k: self.value(v, service, host_view=k in HOST_VIEW) for k, v in env.items()}


def localize(project: dict[str, Any], image: Dockerfile, root: Path) -> Localizer:
    """Free ports for every container port the node services listen on, keyed as the compose
    file names them (service, port), and the host ports they publish."""
    keys = [(name, port) for name in NODES for port in image.expose]
    ports = dict(zip(keys, free_ports(len(keys)), strict=True))
    by_host = {
        host: (name, container)
        for name in NODES
        for host, container in published(project["services"][name]).items()
    }
    return Localizer(root, ports, by_host)


@dataclass
class Container:
    """One node service, played by the entrypoint process."""

    name: str
    env: dict[str, str]
    workdir: Path
    health: list[str]
    url: str  # how a host client reaches it (its published port)
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

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}:\n{self.this_run()[-4000:]}"
            )
        try:
            status, _ = http("GET", self.url + "/v1/health/ready", timeout=2)
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


@pytest.fixture
def containers(
    project: dict[str, Any], image: Dockerfile, tmp_path: Path
) -> Iterator[dict[str, Container]]:
    where = localize(project, image, tmp_path)
    made: dict[str, Container] = {}
    for name in NODES:
        service = project["services"][name]
        env = where.env(container_env(image, service), name)
        made[name] = Container(
            name=name,
            env=env,
            workdir=Path(where.value(image.workdir, name)),
            health=[
                where.value(part, name) if i else part
                for i, part in enumerate(service["healthcheck"]["test"])
            ],
            url=where.value(f"http://127.0.0.1:{HOST_HTTP_PORTS[name]}", name, host_view=True),
        )
    try:
        yield made
    finally:
        for container in made.values():
            container.stop()


def _wait_ready(containers: Mapping[str, Container]) -> None:
    for container in containers.values():
        wait_until(f"{container.name} answers 200 on /v1/health/ready", container.ready)


def _produce(url: str, topic: str, values: list[str]) -> None:
    records = [{"key": f"k{i % 3}", "value": v} for i, v in enumerate(values)]
    status, body = http("POST", f"{url}/v1/topics/{topic}/records?acks=all", {"records": records})
    assert status == 200, f"produce: {status} {body}"
    assert all("offset" in o for o in body["offsets"]), body


def _read_all(url: str, topic: str, count: int) -> list[str]:
    status, body = http(
        "GET", f"{url}/v1/topics/{topic}/partitions/0/records?offset=0&max_records={count + 10}"
    )
    assert status == 200, f"fetch through {url}: {status} {body}"
    return [r["value"] for r in body["records"]]


def _segments(log_dir: Path, topic: str) -> list[Path]:
    return sorted((log_dir / f"{topic}-0").glob("*.log"))


def test_the_compose_nodes_form_a_cluster_and_a_restart_keeps_the_data(
    project: dict[str, Any], containers: dict[str, Container]
) -> None:
    for container in containers.values():
        container.start()
    _wait_ready(containers)
    node1, node2, node3 = (containers[n] for n in NODES)

    # The compose file's health check passes in each container once the node is ready.
    for container in containers.values():
        result = container.health_check()
        assert result.returncode == 0, f"{container.name} health check: {result.stderr}"

    status, cluster = http("GET", node1.url + "/v1/cluster")
    assert status == 200
    assert cluster["cluster_id"] == project["services"]["node1"]["environment"]["CLUSTER_ID"]
    # Each broker advertises the URL a host client dials: the compose file's published port.
    assert {b["id"]: b["url"] for b in cluster["brokers"]} == {
        i: containers[n].url for i, n in enumerate(NODES, start=1)
    }

    topic = "compose-check"
    status, body = http(
        "POST", node1.url + "/v1/topics", {"name": topic, "partitions": 1, "replication_factor": 3}
    )
    assert status == 201, f"create: {status} {body}"
    first = [f"reading-{i}" for i in range(20)]
    _produce(node3.url, topic, first)
    for container in containers.values():  # a follower redirects to the leader's advertised URL
        assert _read_all(container.url, topic, 40) == first

    status, described = http("GET", f"{node1.url}/v1/topics/{topic}")
    assert status == 200 and sorted(described["partitions"][0]["replicas"]) == [1, 2, 3]
    leader = described["partitions"][0]["leader"]
    # Restart a follower as `docker compose restart` would: the same volume, the same env.
    follower = next(c for i, c in enumerate(containers.values(), start=1) if i != leader)
    meta_before = MetaProperties.read(follower.log_dir)
    assert meta_before is not None
    assert follower.stop() == 0, f"{follower.name} did not stop cleanly:\n{follower.this_run()}"
    result = follower.health_check()
    assert result.returncode != 0, "the health check passes with the node stopped"

    follower.start()
    wait_until(f"{follower.name} ready again", follower.ready)
    assert MetaProperties.read(follower.log_dir) == meta_before, "the restart reformatted it"
    restart = follower.this_run()
    assert "Formatting" not in restart and "starting it as it is" in restart, restart
    dump = run_tool(
        "storage.dump_log",
        "--files",
        ",".join(str(p) for p in _segments(follower.log_dir, topic)),
        "--print-data-log",
    )
    assert dump.returncode == 0, dump.stderr
    stored = re.findall(r"payload: (\S+)$", dump.stdout, re.MULTILINE)
    missing = [v for v in first if v not in stored]
    assert not missing, f"{follower.name} lost {missing} over its restart:\n{dump.stdout}"

    second = [f"reading-{i}" for i in range(20, 30)]
    _produce(follower.url, topic, second)
    assert _read_all(follower.url, topic, 40) == first + second

    def replicas_identical() -> bool:
        files = [
            b"".join(p.read_bytes() for p in _segments(c.log_dir, topic))
            for c in containers.values()
        ]
        return len(set(files)) == 1 and bool(files[0])

    wait_until("the three replicas' logs are byte-identical", replicas_identical)

    # A volume of another cluster is refused, not reformatted.
    assert follower.stop() == 0
    other = subprocess.run(
        [sys.executable, str(ENTRYPOINT)],
        env={"PATH": os.environ["PATH"], **follower.env, "CLUSTER_ID": random_uuid()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other.returncode == 1 and "belongs to cluster" in other.stderr, other.stderr
    assert MetaProperties.read(follower.log_dir) == meta_before
