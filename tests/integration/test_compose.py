"""compose/: the compose file's structure, and its three nodes run as Compose would run them
(see compose_project: no Docker engine here, so each container is played by the image's
entrypoint on 127.0.0.1 with the container's environment, only its addresses and paths moved).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from scripts.container_entrypoint import EntrypointError, prepare, settings_from_env
from scripts.node_process import http, run_tool, wait_until
from server.config import NodeConfig
from storage.ids import random_uuid
from storage.properties import MetaProperties
from tests.integration.compose_project import (
    CHAOS_FILE,
    COMPOSE_DIR,
    COMPOSE_FILE,
    DOCKERFILE,
    DOTENV,
    ENTRYPOINT,
    HOST_HTTP_PORTS,
    HOST_KAFKA_PORTS,
    IMAGE_ROOT,
    NODES,
    ROOT,
    Container,
    Dockerfile,
    InterpolationError,
    Localizer,
    PublishedPort,
    container_env,
    listener,
    load_compose,
    localize,
    node_containers,
    publish,
    published,
    unpublish_all,
)

pytestmark = pytest.mark.timeout(300)

# The chaos tier's Toxiproxy servers (scripts/setup builds the one of the compose file's image).
TOXIPROXY_BINARIES = ROOT / ".venv" / "toxiproxy" / "bin"
TOXIPROXY_API_PORT = 8474
# How long a Kafka client's calls may take (a topic's leaders elected, a group formed).
KAFKA_DEADLINE_S = 60.0


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
        kafka_port = listener(service["environment"], "KAFKA").port
        expected = {HOST_HTTP_PORTS[name]: http_port, HOST_KAFKA_PORTS[name]: kafka_port}
        assert published(service) == expected, (
            f"{name} publishes {published(service)}, expected {expected} (its HTTP and KAFKA "
            "listeners on the launcher's ports; Raft never published)"
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
        assert config.kafka_port in image.expose and config.kafka_host == "0.0.0.0"
        # A host client is sent to the address it can dial: the port published for this node.
        assert config.advertised_http_url == f"http://127.0.0.1:{HOST_HTTP_PORTS[name]}"
        assert config.advertised_kafka_address == f"127.0.0.1:{HOST_KAFKA_PORTS[name]}"
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


def test_chaos_overlay_routes_every_link_through_toxiproxy(
    project: dict[str, Any], image: Dockerfile
) -> None:
    # The overlay file is the opt-in: a plain `up` has no Toxiproxy, and the overlay's has no
    # profile to name (Compose refuses a node depending on a service of an inactive profile,
    # so a profile would be needed on every command of the run, `down` included).
    assert "toxiproxy" not in project["services"]
    project = load_compose(COMPOSE_FILE, CHAOS_FILE)
    toxiproxy = project["services"]["toxiproxy"]
    assert toxiproxy["image"] == "ghcr.io/shopify/toxiproxy:2.12.0"
    assert "profiles" not in toxiproxy, "the chaos overlay's services start without a profile"
    links = _chaos_links(project, image)
    assert len(links) == 12  # 6 ordered pairs, HTTP and Raft
    for link in links.values():
        assert "toxiproxy" in project["services"][link["from"]]["depends_on"]


@pytest.fixture
def compose_run(
    project: dict[str, Any], image: Dockerfile, tmp_path: Path
) -> Iterator[tuple[dict[str, Container], Localizer, dict[str, PublishedPort]]]:
    """The node containers (not started), where their addresses are, and their published
    ports (forwarding); all stopped after."""
    where = localize(project, image, tmp_path)
    made = node_containers(project, image, where)
    ports = publish(where)
    try:
        yield made, where, ports
    finally:
        for container in made.values():
            container.stop()
        unpublish_all(ports)


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


def _leader(url: str, topic: str) -> int:
    """The leader of ``topic``'s partition 0, as the node at ``url`` describes it."""
    status, described = http("GET", f"{url}/v1/topics/{topic}")
    assert status == 200, f"describe {topic}: {status} {described}"
    return int(described["partitions"][0]["leader"])


def _segments(log_dir: Path, topic: str) -> list[Path]:
    return sorted((log_dir / f"{topic}-0").glob("*.log"))


def test_the_compose_nodes_form_a_cluster_and_a_restart_keeps_the_data(
    project: dict[str, Any],
    compose_run: tuple[dict[str, Container], Localizer, dict[str, PublishedPort]],
) -> None:
    containers, where, _ = compose_run
    for container in containers.values():
        container.start()
    _wait_ready(containers)
    node1, node2, node3 = (containers[n] for n in NODES)

    # The compose file's health check passes in each container once the node is ready.
    for container in containers.values():
        result = container.health_check()
        assert result.returncode == 0, f"{container.name} health check: {result.stderr}"

    # What the metrics profile's Prometheus scrapes answers in Prometheus's format.
    scrape = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())["scrape_configs"][0]
    for target in (t for group in scrape["static_configs"] for t in group["targets"]):
        url = f"http://{where.value(target, 'prometheus')}{scrape['metrics_path']}"
        status, text = http("GET", url)
        assert status == 200 and "# TYPE " in text, f"scraping {target}: {status} {text!r:.200}"

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
    # A follower redirects to the leader's advertised URL, which the host reaches.
    for container in containers.values():
        assert _read_all(container.url, topic, 40) == first

    _kafka_clients_produce_and_consume(containers)

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


def _kafka_clients_produce_and_consume(containers: Mapping[str, Container]) -> None:
    """A host's Kafka client (confluent-kafka, librdkafka) on the published KAFKA ports:
    Metadata names each broker at its advertised address, the host's published port, so the
    client that bootstraps at one node then produces to and fetches from every leader."""
    bootstrap = ",".join(c.kafka for c in containers.values())
    topic = "compose-kafka"
    admin = AdminClient({"bootstrap.servers": containers["node2"].kafka})
    brokers = admin.list_topics(timeout=KAFKA_DEADLINE_S).brokers
    assert {i: f"{b.host}:{b.port}" for i, b in brokers.items()} == {
        i: containers[n].kafka for i, n in enumerate(NODES, start=1)
    }
    admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(timeout=KAFKA_DEADLINE_S)
    sent = {f"kafka-{i}" for i in range(30)}
    delivered: list[str] = []
    failed: list[str] = []

    def on_delivery(error: Any, message: Any) -> None:
        (failed if error is not None else delivered).append(str(error or message.value()))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i, value in enumerate(sorted(sent)):
        producer.produce(topic, value.encode(), key=f"k{i % 5}".encode(), on_delivery=on_delivery)
    assert producer.flush(KAFKA_DEADLINE_S) == 0, "records still unsent"
    assert not failed and len(delivered) == len(sent), failed

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "compose-readers",
            "auto.offset.reset": "earliest",
        }
    )
    received: list[str] = []
    try:
        consumer.subscribe([topic])

        def all_read() -> bool:
            message = consumer.poll(1.0)
            if message is not None:
                assert message.error() is None, message.error()
                received.append((message.value() or b"").decode())
            return len(received) >= len(sent)

        wait_until("the Kafka consumer has read every record", all_read)
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 307 comes back as the answer


_NOT_FOLLOWING = urllib.request.build_opener(_NoRedirect)


def _inside(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """A request of a client inside the compose network: a 307 is not followed (it names an
    advertised, host-side address, which this client does not dial); (status, JSON)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _NOT_FOLLOWING.open(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    return status, json.loads(raw) if raw else None


def _until_ok(what: str, method: str, url: str, body: Any = None) -> Any:
    """The answer of the first 2xx, retrying while the answer is retriable (a 503 while a
    leader or coordinator moves); any other answer fails the test at once."""

    def attempt() -> Any:
        status, answer = _inside(method, url, body)
        if status // 100 == 2:
            return answer or True
        assert status == 503, f"{what}: {status} {answer}"
        return None

    return wait_until(what, attempt)


def test_the_nodes_reach_each_other_by_service_name_only(
    compose_run: tuple[dict[str, Container], Localizer, dict[str, PublishedPort]],
) -> None:
    """In compose a node cannot reach a peer at its advertised address (the host's
    127.0.0.1:9094 is, inside a container, the container itself). Once the cluster is up the
    published ports stop forwarding, and every path from node to node is driven through the
    nodes' own listeners: registration and heartbeats, a topic created through a node that is
    not the controller, records produced (acks=all) through a node that does not lead all of
    them, a producer id, offsets committed and the group described at its coordinator, the
    groups listed at another node, a follower restarted that catches up and rejoins the ISRs.
    Any of them dialling an advertised address fails, and each such connection is counted."""
    containers, _, ports = compose_run
    for container in containers.values():
        container.start()
    _wait_ready(containers)
    for port in ports.values():
        port.unpublish()
    for container in containers.values():
        with pytest.raises(OSError):
            http("GET", container.url + "/v1/health/ready", timeout=5)
    before = {name: port.refused for name, port in ports.items()}

    def dialled() -> dict[str, int]:
        """Connections to each node's advertised address since the forwarding stopped."""
        return {name: port.refused - before[name] for name, port in ports.items()}

    try:
        _drive_node_to_node_paths(containers)
    except AssertionError as e:
        raise AssertionError(
            f"{e}\n(connections refused at the advertised addresses meanwhile: {dialled()})"
        ) from None
    assert dialled() == dict.fromkeys(ports, 0), (
        f"nodes dialled peers at their advertised (host-side) addresses: {dialled()}"
    )


def _drive_node_to_node_paths(containers: Mapping[str, Container]) -> None:
    """Every path from node to node, driven by a client inside the compose network."""
    by_id = {i: containers[name] for i, name in enumerate(NODES, start=1)}

    cluster = _until_ok("the cluster", "GET", by_id[1].inside + "/v1/cluster")
    controller = cluster["controller_id"]
    other = next(i for i in by_id if i != controller)
    topic = "inside"
    created = _until_ok(
        "create through a node that is not the controller",
        "POST",
        by_id[other].inside + "/v1/topics",
        {"name": topic, "partitions": 3, "replication_factor": 3},
    )
    leaders = {p["partition"]: p["leader"] for p in created["partitions"]}
    entry = by_id[next(i for i in by_id if i != leaders[0])]  # forwards partition 0 at least

    def produce(values: list[str], entry: Container = entry) -> None:
        records = [{"partition": i % 3, "value": v} for i, v in enumerate(values)]
        answer = _until_ok(
            f"produce acks=all through {entry.name}",
            "POST",
            f"{entry.inside}/v1/topics/{topic}/records?acks=all",
            {"records": records},
        )
        assert all("offset" in o for o in answer["offsets"]), answer

    produce([f"first-{i}" for i in range(9)])
    assert "producer_id" in _until_ok(
        "a producer id", "POST", by_id[other].inside + "/v1/producers"
    )

    # Node 1 takes the commit (it coordinates the group) or names the coordinator in its 307.
    group = "inside-readers"
    commit = {"offsets": [{"topic": topic, "partition": i, "offset": 2} for i in range(3)]}

    def coordinator() -> int | None:
        status, answer = _inside("POST", f"{by_id[1].inside}/v1/groups/{group}/offsets", commit)
        if status == 200:
            return 1
        assert status in (307, 503), f"commit: {status} {answer}"
        return answer.get("coordinator_id") if status == 307 else None

    coordinator_id = wait_until("the group's coordinator", coordinator)
    at = by_id[coordinator_id].inside
    _until_ok("commit at the coordinator", "POST", f"{at}/v1/groups/{group}/offsets", commit)
    described = _until_ok("the group", "GET", f"{at}/v1/groups/{group}")
    # The coordinator asks each partition's leader for its log end (the others' over HTTP).
    lags = {(o["partition"], o["log_end_offset"], o["lag"]) for o in described["offsets"]}
    assert lags == {(0, 3, 1), (1, 3, 1), (2, 3, 1)}, described
    elsewhere = by_id[next(i for i in by_id if i != coordinator_id)].inside
    listed = _until_ok(
        "the groups, at a node that is not the coordinator", "GET", elsewhere + "/v1/groups"
    )
    assert [g["group"] for g in listed["groups"]] == [group], listed

    # A follower (not the controller) stopped and restarted on its volume catches up.
    follower = by_id[next(i for i in by_id if i not in (controller, leaders[0]))]
    assert follower.stop() == 0, f"{follower.name} did not stop cleanly:\n{follower.this_run()}"
    gone = next(i for i, c in by_id.items() if c is follower)

    def partitions() -> list[dict[str, Any]]:
        status, answer = _inside("GET", f"{by_id[controller].inside}/v1/topics/{topic}")
        assert status == 200, f"describe {topic}: {status} {answer}"
        return list(answer["partitions"])

    wait_until(
        f"{follower.name} out of every ISR of {topic}",
        lambda: all(gone not in p["isr"] and p["leader"] != gone for p in partitions()),
    )
    produce([f"second-{i}" for i in range(9)], by_id[controller])
    follower.start()
    wait_until(f"{follower.name} ready again", lambda: follower.ready(follower.inside))

    wait_until(
        f"{follower.name} back in every ISR of {topic}",
        lambda: all(len(p["isr"]) == 3 for p in partitions()),
    )
    produce([f"third-{i}" for i in range(9)], follower)

    def replicas_identical() -> bool:
        for index in range(3):
            files = {
                b"".join(
                    p.read_bytes() for p in sorted((c.log_dir / f"{topic}-{index}").glob("*.log"))
                )
                for c in containers.values()
            }
            if len(files) != 1:
                return False
        return True

    wait_until("the three replicas of each partition are byte-identical", replicas_identical)


def test_the_chaos_overlay_carries_every_link_through_toxiproxy(
    image: Dockerfile, tmp_path: Path
) -> None:
    """The cluster forms through the proxies (each Raft pair and each follower's fetch is seen
    there), and nothing goes around them: with the HTTP proxies disabled the followers stop
    replicating and the controller fences the brokers whose heartbeats stop; with the Raft
    proxies disabled every node loses its Raft peers; after Toxiproxy's reset both come back."""
    project = load_compose(COMPOSE_FILE, CHAOS_FILE)
    toxiproxy = project["services"]["toxiproxy"]
    config_at = next(a.split("=", 1)[1] for a in toxiproxy["command"] if a.startswith("-config="))
    source = next(
        src
        for src, target in (str(v).rsplit(":", 1)[0].split(":") for v in toxiproxy["volumes"])
        if target == config_at
    )
    config_text = (COMPOSE_DIR / source).read_text()
    proxies = json.loads(config_text)
    links = _chaos_links(project, image)
    api_port = published(toxiproxy)[TOXIPROXY_API_PORT]
    listens = [("toxiproxy", int(p["listen"].rsplit(":", 1)[1])) for p in proxies]
    where = localize(project, image, tmp_path, [*listens, ("toxiproxy", api_port)])
    api = f"http://127.0.0.1:{where.ports[('toxiproxy', api_port)]}"
    config = tmp_path / "toxiproxy.json"
    config.write_text(where.value(config_text, "toxiproxy"))
    log = tmp_path / "toxiproxy.log"
    # The image's server with the service's command; only its addresses and file are moved.
    binary = TOXIPROXY_BINARIES / f"toxiproxy-server-v{toxiproxy['image'].rsplit(':', 1)[1]}"
    command = [
        str(binary),
        *(a for a in toxiproxy["command"] if not a.startswith(("-host=", "-config="))),
        "-host=127.0.0.1",
        f"-port={where.ports[('toxiproxy', api_port)]}",
        f"-config={config}",
    ]
    assert binary.exists(), f"{binary} is missing: scripts/setup builds it ({toxiproxy['image']})"
    containers = node_containers(project, image, where)
    by_id = {i: containers[name] for i, name in enumerate(NODES, start=1)}
    ports: dict[str, PublishedPort] = {}
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(
            "toxiproxy has started every proxy",
            lambda: log.read_text().count('"Started proxy"') == len(proxies),
        )
        ports = publish(where)
        for container in containers.values():
            container.start()
        _wait_ready(containers)
        node1 = containers["node1"]
        topic = "chaos-check"
        status, body = http(
            "POST", node1.url + "/v1/topics", {"name": topic, "replication_factor": 3}
        )
        assert status == 201, f"create: {status} {body}"
        values = [f"v{i}" for i in range(10)]
        _produce(node1.url, topic, values)
        assert _read_all(node1.url, topic, 20) == values
        first_leader = _leader(node1.url, topic)
        status, cluster = http("GET", f"{node1.url}/v1/cluster")
        controller = cluster["controller_id"]

        def set_links(kind: str, enabled: bool, node: str | None = None) -> None:
            """Enables or disables the ``kind`` proxies (those of ``node`` only, if given)."""
            for name, link in links.items():
                if link["kind"] == kind and node in (None, link["from"], link["to"]):
                    status, answer = http("POST", f"{api}/proxies/{name}", {"enabled": enabled})
                    assert status == 200 and answer["enabled"] is enabled, f"{name}: {answer}"

        def reset() -> None:
            """Every proxy enabled again; back to a cluster of three ready, in-sync nodes."""
            assert http("POST", f"{api}/reset")[0] == 204
            _wait_ready(containers)
            wait_until("no broker fenced after the reset", lambda: fenced() == set())
            wait_until(f"every replica of {topic} in sync", lambda: in_sync() == {1, 2, 3})

        def fenced() -> set[int]:
            status, cluster = http("GET", f"{node1.url}/v1/cluster")
            assert status == 200, f"cluster: {status} {cluster}"
            return {b["id"] for b in cluster["brokers"] if b["fenced"]}

        def in_sync() -> set[int]:
            status, described = http("GET", f"{node1.url}/v1/topics/{topic}")
            assert status == 200, f"describe {topic}: {status} {described}"
            return set(described["partitions"][0]["isr"])

        # One node's HTTP links cut: its heartbeats no longer reach the controller (the only
        # way they have is through its proxies), which fences it.
        cut = next(i for i in by_id if i != controller)
        set_links("http", False, f"node{cut}")
        wait_until(f"the controller fences node {cut}", lambda: fenced() == {cut})
        reset()

        # Every HTTP link cut: no follower can fetch the leader's new record, so acks=all
        # cannot complete (the controller fences nobody then: hearing no broker, it hands
        # its leadership over instead).
        leader = _leader(node1.url, topic)
        set_links("http", False)
        status, body = http(
            "POST",
            f"{by_id[leader].url}/v1/topics/{topic}/partitions/0/records?acks=all&timeout_ms=2000",
            {"records": [{"value": "while-cut"}]},
        )
        assert status != 200, f"acks=all completed with the HTTP proxies disabled: {body}"
        reset()

        def raft_peers_connected(container: Container) -> list[bool]:
            status, quorum = http("GET", f"{container.url}/v1/cluster/quorum")
            assert status == 200, f"quorum at {container.name}: {status} {quorum}"
            me = quorum["node"]["id"]
            return [v["connected"] for v in quorum["voters"] if v["id"] != me]

        # Raft links cut: every node loses both of its Raft peers.
        set_links("raft", False)
        for container in containers.values():
            wait_until(
                f"{container.name} sees no Raft peer connected",
                lambda c=container: raft_peers_connected(c) == [False, False],
            )
        assert http("POST", f"{api}/reset")[0] == 204
        for container in containers.values():
            wait_until(
                f"{container.name} sees both Raft peers again",
                lambda c=container: raft_peers_connected(c) == [True, True],
            )
    finally:
        for container in containers.values():
            container.stop()
        unpublish_all(ports)
        server.terminate()
        server.wait(30)
    accepted = {
        line["name"]
        for line in map(json.loads, log.read_text().splitlines())
        if line.get("message") == "Accepted client"
    }
    # Each pair's Raft link is dialled one way (pysyncobj: the larger address dials), and each
    # follower fetched from the leader through its proxy (that none went around them is what
    # the disabled proxies showed above).
    for i, j in ((1, 2), (1, 3), (2, 3)):
        pair = {f"node{i}-to-node{j}-raft", f"node{j}-to-node{i}-raft"}
        assert pair & accepted, f"no Raft link between node{i} and node{j} went through toxiproxy"
    for follower in {1, 2, 3} - {first_leader}:
        name = f"node{follower}-to-node{first_leader}-http"
        assert name in accepted, f"{name} carried nothing: {sorted(accepted)}"


def test_the_entrypoint_formats_a_volume_once_with_a_mounted_secret_file(
    project: dict[str, Any], image: Dockerfile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = localize(project, image, tmp_path)
    env = where.env(container_env(image, project["services"]["node2"]), "node2")
    secret = tmp_path / "run" / "secrets" / "cluster_secret"  # where Docker mounts a secret
    secret.parent.mkdir(parents=True)
    secret.write_text(env.pop("CLUSTER_SECRET") + "\n")
    env["CLUSTER_SECRET_FILE"] = str(secret)

    properties = prepare(env)
    log_dir = Path(env["KRAFT_LOG_DIRS"])
    assert properties == log_dir.parent / "node.properties"
    assert NodeConfig.load(properties).node_id == 2
    meta = MetaProperties.read(log_dir)
    assert meta is not None and meta.cluster_id == env["CLUSTER_ID"] and meta.node_id == 2
    assert (log_dir / "cluster.secret").read_text() == secret.read_text()
    assert "Formatting" in capsys.readouterr().err

    assert prepare(env) == properties
    assert MetaProperties.read(log_dir) == meta, "formatted again"
    assert "starting it as it is" in capsys.readouterr().err

    secret.write_text("another-secret-of-enough-bytes\n")
    with pytest.raises(EntrypointError, match="cluster.secret differs from the secret given"):
        prepare(env)
    with pytest.raises(EntrypointError, match="CLUSTER_SECRET_FILE and CLUSTER_SECRET"):
        prepare({**env, "CLUSTER_SECRET": "another-secret-of-enough-bytes"})
    assert MetaProperties.read(log_dir) == meta
