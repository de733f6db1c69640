"""GET /metrics on a real three-node cluster: what each counter counts, the partition gauges
through a follower's death and return, the log cleaner's families as each replica's cleaner
compacts a topic, and the Grafana dashboard against a real scrape; the client-error lines of
refused permissions on a one-node cluster with SASL and ACLs.

The tests of the three-node cluster share it and run in order; the kills come last (a
follower's, restarted, then the controller's)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.compaction_helpers import produce_keyed
from tests.integration.conftest import running_cluster
from tests.integration.test_cluster import create_topic

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "compose" / "grafana" / "dashboards" / "kraft.json"
TOPIC = "traffic"
RECORDS = "/v1/topics/{topic}/partitions/{partition}/records"
REPLICA_FETCH = "/v1/internal/replica-fetch"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
CLEANER_PROPERTIES = {"log.cleaner.backoff.ms": "200"}
CLEANER = "kraft_log_cleaner_"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # The cleaner looks for work every 200 ms (Kafka's 15 s would slow the cleaner's test).
    with running_cluster(tmp_path_factory.mktemp("metrics"), **CLEANER_PROPERTIES) as handle:
        yield handle


def scrape_text(node: NodeProcess) -> tuple[str, str]:
    with urllib.request.urlopen(node.url + "/metrics", timeout=30) as response:
        return response.headers["Content-Type"], response.read().decode()


def scrape(node: NodeProcess) -> Samples:
    """Every sample of the node's /metrics, parsed as Prometheus parses it."""
    _, text = scrape_text(node)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def leader_of(cluster: Cluster, topic: str) -> NodeProcess:
    def known() -> int | None:
        status, body = http("GET", f"{cluster.running()[0].url}/v1/topics/{topic}")
        leader = body["partitions"][0]["leader"] if status == 200 else None
        if leader is None:
            return None
        # The leader itself must know it leads (metadata reaches nodes a moment apart).
        status, body = http("GET", f"{cluster.node(leader).url}/v1/topics/{topic}")
        return leader if status == 200 and body["partitions"][0]["leader"] == leader else None

    return cluster.node(wait_until(f"{topic} has a leader", known))


def raw_get(url: str, accept: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        body: bytes = response.read()
        return body


def segment_bytes(node: NodeProcess, topic: str) -> int:
    return (node.log_dir / f"{topic}-0" / "00000000000000000000.log").stat().st_size


def written_topic(cluster: Cluster, topic: str, values: list[str]) -> NodeProcess:
    """A new topic of one partition on the three nodes, ``values`` written to it (acks=all);
    its leader."""
    create_topic(cluster.nodes[0], topic, partitions=1, replication_factor=3)
    leader = leader_of(cluster, topic)
    status, body = http(
        "POST",
        f"{leader.url}/v1/topics/{topic}/partitions/0/records?acks=all",
        {"records": [{"value": v} for v in values]},
    )
    assert status == 200, body
    return leader


@pytest.fixture(scope="module")
def traffic(cluster: Cluster) -> NodeProcess:
    """The topic the traffic tests write: one partition on the three nodes; its leader."""
    create_topic(cluster.nodes[0], TOPIC, partitions=1, replication_factor=3)
    return leader_of(cluster, TOPIC)


def test_every_node_serves_its_metrics_in_prometheus_text_format(cluster: Cluster) -> None:
    leaders = 0
    for node in cluster.nodes:
        content_type, text = scrape_text(node)
        assert content_type.startswith("text/plain; version=0.0.4"), content_type
        assert "# HELP kraft_partitions_under_replicated " in text
        samples = scrape(node)
        leaders += int(value(samples, "kraft_quorum_leader"))
        assert value(samples, "kraft_quorum_term") >= 1
        assert value(samples, "kraft_quorum_leader_changes_total") >= 1
        # The event-loop monitor measures every 0.2 s; the fsyncs of the metadata log are
        # the quorum's, not a partition's, so only the loop is sure to have a sample.
        wait_until(
            f"node {node.node_id} measured its event loop",
            lambda n=node: value(scrape(n), "kraft_event_loop_lag_seconds_count") > 0,
        )
    assert leaders == 1  # one active controller


def test_openmetrics_is_served_when_asked(cluster: Cluster) -> None:
    request = urllib.request.Request(
        cluster.nodes[0].url + "/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert response.read().decode().rstrip().endswith("# EOF")


def test_an_accept_header_the_exporter_cannot_read_gets_the_text_format(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    for _ in range(2):
        request = urllib.request.Request(
            node.url + "/metrics", headers={"Accept": "text/plain; version=x"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "# HELP kraft_partitions_under_replicated " in response.read().decode()
    assert " ERROR " not in node.log_file.read_text(errors="replace")


def test_produce_and_fetch_move_the_topics_counters_by_what_was_sent(
    cluster: Cluster, traffic: NodeProcess
) -> None:
    leader = traffic
    followers = [n for n in cluster.nodes if n is not leader]
    before = {n.node_id: scrape(n) for n in cluster.nodes}
    # timeout_ms as the producer sends it (the wait for acks): a produce, not a long poll.
    status, body = http(
        "POST",
        f"{leader.url}/v1/topics/{TOPIC}/partitions/0/records?acks=all&timeout_ms=30000",
        {"records": [{"key": f"k{i}", "value": "v" * i} for i in range(10)]},
    )
    assert status == 200, body
    after = scrape(leader)

    def moved(samples: Samples, old: Samples, name: str) -> float:
        return value(samples, name, topic=TOPIC) - value(old, name, topic=TOPIC)

    old = before[leader.node_id]
    assert moved(after, old, "kraft_topic_records_in_total") == 10
    # The bytes stored: the leader's segment holds this one batch and nothing else.
    assert moved(after, old, "kraft_topic_bytes_in_total") == segment_bytes(leader, TOPIC)
    for follower in followers:  # replication is not counted as traffic in
        assert moved(scrape(follower), before[follower.node_id], "kraft_topic_bytes_in_total") == 0

    url = f"{leader.url}/v1/topics/{TOPIC}/partitions/0/records?offset=0"
    answer = raw_get(url)
    assert len(json.loads(answer)["records"]) == 10
    fetched = scrape(leader)
    assert moved(fetched, after, "kraft_topic_records_out_total") == 10
    assert moved(fetched, after, "kraft_topic_bytes_out_total") == len(answer)

    batches = raw_get(url, accept="application/vnd.kafka.batch")
    assert len(batches) == segment_bytes(leader, TOPIC)
    binary = scrape(leader)
    assert moved(binary, fetched, "kraft_topic_records_out_total") == 10
    assert moved(binary, fetched, "kraft_topic_bytes_out_total") == len(batches)
    # From the middle of the batch: the batch is sent whole, and its ten records are counted.
    again = raw_get(url.replace("offset=0", "offset=5"), accept="application/vnd.kafka.batch")
    assert again == batches
    mid = scrape(leader)
    assert moved(mid, binary, "kraft_topic_records_out_total") == 10

    for method, count in (("POST", 1), ("GET", 3)):
        labels = {"method": method, "endpoint": RECORDS, "code": "200", "peer": "false"}
        moved_requests = value(mid, "kraft_http_requests_total", **labels) - value(
            old, "kraft_http_requests_total", **labels
        )
        assert moved_requests == count, method
    count_name = "kraft_http_request_duration_seconds_count"
    for method, count in (("POST", 1), ("GET", 3)):
        latency = {"method": method, "endpoint": RECORDS, "long_poll": "false", "peer": "false"}
        assert value(mid, count_name, **latency) - value(old, count_name, **latency) == count
    # The followers' replica fetches wait at the leader for news: long polls, by peers.
    waits = {"method": "POST", "endpoint": REPLICA_FETCH, "long_poll": "true", "peer": "true"}
    assert value(mid, count_name, **waits) > 0
    fetch_polls = {
        dict(labels)["long_poll"]
        for name, labels in mid
        if name == count_name and ("endpoint", REPLICA_FETCH) in labels
    }
    assert fetch_polls == {"true"}


def test_a_deleted_topics_counters_leave_the_scrape(cluster: Cluster) -> None:
    leader = written_topic(cluster, "short-lived", ["x"])
    assert value(scrape(leader), "kraft_topic_records_in_total", topic="short-lived") == 1
    status, body = http("DELETE", f"{leader.url}/v1/topics/short-lived")
    assert status in (200, 202, 204), body

    def series() -> list[str]:
        return [
            name
            for node in cluster.nodes
            for name, labels in scrape(node)
            if ("topic", "short-lived") in labels
        ]

    wait_until("no series of the deleted topic", lambda: not series())


def test_a_404_is_counted_under_its_route_and_a_strangers_path_under_unmatched(
    cluster: Cluster,
) -> None:
    node = cluster.nodes[0]
    before = scrape(node)
    assert http("GET", f"{node.url}/v1/topics/no-such-topic")[0] == 404
    assert http("GET", f"{node.url}/no/such/%0aFORGED%20line")[0] == 404
    after = scrape(node)
    route = {"method": "GET", "endpoint": "/v1/topics/{topic}", "code": "404", "peer": "false"}
    stranger = {"method": "GET", "endpoint": "unmatched", "code": "404", "peer": "false"}
    for labels in (route, stranger):
        moved = value(after, "kraft_http_requests_total", **labels) - value(
            before, "kraft_http_requests_total", **labels
        )
        assert moved == 1, labels
    assert "FORGED" not in str(list(after))  # no series of the stranger's path

    def logged() -> list[str]:
        text = node.log_file.read_text(errors="replace")
        return [line for line in text.splitlines() if "client error: GET /" in line]

    lines = wait_until("the two client-error lines", lambda: len(logged()) >= 2 and logged())
    topic_line = next(line for line in lines if "/v1/topics/no-such-topic" in line)
    assert " INFO " in topic_line and "404 UNKNOWN_TOPIC_OR_PARTITION" in topic_line
    assert "from 127.0.0.1" in topic_line
    forged = next(line for line in lines if "/no/such/" in line)
    assert "/no/such/\\x0aFORGED line" in forged  # the newline escaped: no forged line
    assert not any(line.startswith("FORGED") for line in node.log_file.read_text().splitlines())


def test_a_forwarded_requests_client_error_is_logged_once_by_the_node_called(
    cluster: Cluster,
) -> None:
    controller = cluster.node(wait_until("a controller", cluster.controller_id))
    called = next(n for n in cluster.nodes if n is not controller)
    before = {n.node_id: scrape(n) for n in (called, controller)}
    status, body = http(
        "POST",
        f"{called.url}/v1/topics",
        {"name": "too-many-replicas", "partitions": 1, "replication_factor": 9},
    )
    assert status == 400 and body["error"] == "INVALID_REPLICATION_FACTOR", body

    def moved(node: NodeProcess, peer: str) -> float:
        labels = {"method": "POST", "endpoint": "/v1/topics", "code": "400", "peer": peer}
        name = "kraft_http_requests_total"
        return value(scrape(node), name, **labels) - value(before[node.node_id], name, **labels)

    # The client's request, counted where it was made; the forwarded one, as a peer's.
    assert (moved(called, "false"), moved(called, "true")) == (1, 0)
    assert (moved(controller, "false"), moved(controller, "true")) == (0, 1)

    def lines(node: NodeProcess) -> list[str]:
        text = node.log_file.read_text(errors="replace")
        return [line for line in text.splitlines() if "client error: POST /v1/topics " in line]

    wait_until("the called node's client-error line", lambda: lines(called))
    [line] = lines(called)
    assert "400 INVALID_REPLICATION_FACTOR" in line
    assert lines(controller) == []  # nothing the client did there


def test_consumer_group_lag_is_reported_by_the_groups_coordinator(cluster: Cluster) -> None:
    written_topic(cluster, "lag-topic", [str(i) for i in range(10)])

    def commit() -> bool:
        for node in cluster.running():
            status, _ = http(
                "POST",
                f"{node.url}/v1/groups/lagging/offsets",
                {"offsets": [{"topic": "lag-topic", "partition": 0, "offset": 4}]},
            )
            if status == 200:
                return True
        return False

    wait_until("an offset commit at the coordinator", commit)
    labels = {"group": "lagging", "topic": "lag-topic", "partition": "0"}

    def lags() -> list[float]:
        return [
            value(scrape(n), "kraft_consumer_group_lag_records", **labels)
            for n in cluster.nodes
            if (
                "kraft_consumer_group_lag_records",
                tuple(sorted(labels.items())),
            )
            in scrape(n)
        ]

    # Ten records written (acks=all: every replica's high watermark reaches 10), committed 4.
    assert wait_until("the coordinator reports the lag", lambda: lags() == [6.0] and lags())


def test_each_replicas_cleaner_reports_its_cleans_of_a_compacted_topic(cluster: Cluster) -> None:
    topic = "cleaned"
    create_topic(
        cluster.nodes[0],
        topic,
        partitions=1,
        replication_factor=3,
        configs={
            "cleanup.policy": "compact",
            "segment.bytes": "4096",
            "min.cleanable.dirty.ratio": "0.01",
        },
    )
    leader_of(cluster, topic)
    before = {node.node_id: scrape(node) for node in cluster.nodes}
    for node in cluster.nodes:  # every family, before any clean of this topic too
        series = [name for name, _labels in before[node.node_id] if name.startswith(CLEANER)]
        assert len(series) == 11, series
    # Few keys, many versions: segments roll, and most of each clean's bytes go.
    acked = produce_keyed(
        cluster.nodes[0], topic, [(f"k{i % 5}", "v" * 40 + str(i)) for i in range(600)]
    )
    assert len(acked) == 600

    def moved(node: NodeProcess, name: str) -> float:
        return value(scrape(node), name) - value(before[node.node_id], name)

    for node in cluster.nodes:  # each replica's own cleaner
        wait_until(
            f"node {node.node_id} counts a clean",
            lambda n=node: moved(n, CLEANER + "cleans_total") >= 1,
        )
        samples = scrape(node)
        read, written = (
            moved(node, CLEANER + "bytes_read_total"),
            moved(node, CLEANER + "bytes_written_total"),
        )
        assert 0 < written < read, (written, read)
        assert 0 < value(samples, CLEANER + "recopy_ratio") < 1
        assert 0 < value(samples, CLEANER + "buffer_utilization_max_ratio") <= 1
        assert value(samples, CLEANER + "clean_time_max_seconds") > 0
        assert 0 <= value(samples, CLEANER + "dirty_max_ratio") <= 1
        assert value(samples, CLEANER + "uncleanable_partitions") == 0
        assert value(samples, CLEANER + "uncleanable_bytes") == 0
        assert value(samples, CLEANER + "compaction_delay_max_seconds") == 0  # no max lag set


def test_every_metric_of_the_dashboard_exists_and_every_metric_of_the_issue_has_a_panel(
    cluster: Cluster,
) -> None:
    _, text = scrape_text(cluster.nodes[0])
    served: set[str] = set()
    for family in text_string_to_metric_families(text):
        served.add(family.name)
        if family.type == "counter":
            served.add(family.name + "_total")
        if family.type == "histogram":
            served |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        served |= {s.name for s in family.samples}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bkraft_[a-z0-9_]+", expr)}
    assert used and used <= served, sorted(used - served)
    # Every label a panel selects on is one the metric has in a real scrape.
    labels_of: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels_of.setdefault(sample.name, set()).update(sample.labels)
    selected = {
        (name, label)
        for expr in exprs
        for name, selector in re.findall(r"\b(kraft_[a-z0-9_]+)\{([^}]*)\}", expr)
        for label in re.findall(r"([a-z_]+)\s*=~?", selector)
    }
    assert selected, exprs
    unknown = {(name, label) for name, label in selected if label not in labels_of.get(name, ())}
    assert not unknown, unknown
    # Issue 14's list of metrics, each on some panel.
    issue = {
        "requests by endpoint": {"kraft_http_requests_total"},
        "latency by endpoint": {"kraft_http_request_duration_seconds_bucket"},
        "bytes in and out per topic": {"kraft_topic_bytes_in_total", "kraft_topic_bytes_out_total"},
        "records in and out per topic": {
            "kraft_topic_records_in_total",
            "kraft_topic_records_out_total",
        },
        "under-replicated partitions": {"kraft_partitions_under_replicated"},
        "under-min-ISR partitions": {"kraft_partitions_under_min_isr"},
        "offline partitions": {"kraft_partitions_offline"},
        "ISR shrinks and expansions": {"kraft_isr_shrinks_total", "kraft_isr_expands_total"},
        "leader elections": {"kraft_leader_elections_total"},
        "quorum leader changes": {"kraft_quorum_leader_changes_total"},
        "follower fetch lag": {"kraft_follower_lag_max_records"},
        "consumer-group lag": {"kraft_consumer_group_lag_records"},
        "event-loop lag": {"kraft_event_loop_lag_seconds_bucket"},
        "fsync latency": {"kraft_log_fsync_duration_seconds_bucket"},
        # Issue 17's: Kafka's cleaner metrics.
        "cleaner dirty ratio": {"kraft_log_cleaner_dirty_max_ratio"},
        "cleaner recopy and buffer": {
            "kraft_log_cleaner_recopy_ratio",
            "kraft_log_cleaner_buffer_utilization_max_ratio",
        },
        "cleaner times": {
            "kraft_log_cleaner_time_since_last_run_seconds",
            "kraft_log_cleaner_clean_time_max_seconds",
            "kraft_log_cleaner_compaction_delay_max_seconds",
        },
        "cleaner I/O": {
            "kraft_log_cleaner_bytes_read_total",
            "kraft_log_cleaner_bytes_written_total",
        },
        "uncleanable partitions": {"kraft_log_cleaner_uncleanable_partitions"},
    }
    missing = {what: names - used for what, names in issue.items() if names - used}
    assert not missing, missing


def test_a_dead_follower_makes_its_partitions_under_replicated_until_it_returns(
    cluster: Cluster, traffic: NodeProcess
) -> None:
    leader = traffic
    controller = cluster.controller_id()
    follower = next(n for n in cluster.nodes if n.node_id not in (leader.node_id, controller))
    before = scrape(leader)
    follower.kill()
    down = wait_until(
        "the leader reports under-replicated partitions",
        lambda: (s := scrape(leader)) and value(s, "kraft_partitions_under_replicated") > 0 and s,
        deadline_s=60,
    )
    assert value(down, "kraft_isr_shrinks_total") > value(before, "kraft_isr_shrinks_total")
    # With min.insync.replicas=2, two of three in the ISR are still enough.
    assert value(down, "kraft_partitions_under_min_isr") == 0
    follower.start()
    up = wait_until(
        "the follower is back in every ISR",
        lambda: (s := scrape(leader)) and value(s, "kraft_partitions_under_replicated") == 0 and s,
        deadline_s=60,
    )
    assert value(up, "kraft_isr_expands_total") > value(down, "kraft_isr_expands_total")
    # The follower follows again and says how far behind it is (caught up: 0).
    wait_until(
        "the follower reports its lag",
        lambda: (
            (
                "kraft_follower_lag_records",
                (("partition", "0"), ("topic", TOPIC)),
            )
            in scrape(follower)
        ),
        deadline_s=60,
    )


def test_the_controllers_death_is_a_quorum_leader_change_and_elections_on_the_survivors(
    cluster: Cluster,
) -> None:
    # Three partitions on three live brokers: leaders go round-robin, one on each node.
    create_topic(cluster.nodes[0], "elect", partitions=3, replication_factor=3)
    controller = cluster.node(wait_until("a controller", cluster.controller_id))
    survivors = [n for n in cluster.nodes if n is not controller]
    led = wait_until(
        "the controller leads its partition of elect",
        lambda: value(scrape(controller), "kraft_partition_leaders"),
    )
    before = {n.node_id: scrape(n) for n in survivors}
    controller.kill()

    def elections() -> float:
        return sum(
            value(scrape(n), "kraft_leader_elections_total")
            - value(before[n.node_id], "kraft_leader_elections_total")
            for n in survivors
        )

    # Each partition the dead node led gets a new leader, which counts its election.
    wait_until("the survivors elect new leaders", lambda: elections() >= led, deadline_s=60)
    wait_until(
        "a survivor becomes the active controller",
        lambda: sum(value(scrape(n), "kraft_quorum_leader") for n in survivors) == 1,
        deadline_s=60,
    )
    for node in survivors:
        samples = scrape(node)
        changes = "kraft_quorum_leader_changes_total"
        assert value(samples, changes) > value(before[node.node_id], changes), node.node_id
        assert value(samples, "kraft_quorum_term") > value(
            before[node.node_id], "kraft_quorum_term"
        )
        assert value(samples, "kraft_partitions_offline") == 0  # every partition has a leader


def test_refused_permissions_are_one_client_error_line_each_and_forge_none(
    tmp_path: Path,
) -> None:
    users = {"admin": "admin-secret-1", "bob": "bob-secret-123"}
    cluster = Cluster.create(
        tmp_path / "acl",
        1,
        security="SASL_PLAINTEXT",
        users=users,
        **{
            "super.users": "User:admin",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        },
    )
    bob = ("bob", users["bob"])
    try:
        cluster.start()
        node = cluster.nodes[0]
        forged_path = "/v1/topics/x%0aFORGED%20ONE/partitions/0/records"
        assert http("GET", node.url + forged_path, auth=bob)[0] == 403
        huge = "n\nFORGED TWO " + "A" * 1_000_000
        assert http("POST", node.url + "/v1/topics", {"name": huge}, auth=bob)[0] == 403
        assert http("GET", node.url + "/v1/topics/x", auth=("bob", "wrong\nFORGED"))[0] == 401

        def client_errors() -> list[str]:
            text = node.log_file.read_text(errors="replace")
            return [line for line in text.splitlines() if "client error:" in line]

        wait_until("three client-error lines", lambda: len(client_errors()) >= 3)
        text = node.log_file.read_text(errors="replace")
        assert not any(line.startswith("FORGED") for line in text.splitlines())
        assert len(text) < 20_000  # the megabyte name is cut, not logged whole
        assert sum("User:bob" in line for line in text.splitlines()) == 2  # one line per 403
        read, create, login = client_errors()
        assert "403 TOPIC_AUTHORIZATION_FAILED: User:bob is not authorized to " in read
        assert "x\\x0aFORGED ONE" in read
        assert "403 TOPIC_AUTHORIZATION_FAILED: User:bob is not authorized to CREATE" in create
        assert "401 SASL_AUTHENTICATION_FAILED" in login
    finally:
        cluster.stop()
