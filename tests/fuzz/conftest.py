"""The fuzz tier's live cluster: three real nodes (so forwarding to the controller, 307s to
partition leaders and the internal endpoints are all in reach), with topics holding records.
Every process started here is stopped here, by pid. Under pytest-xdist each worker has its
own (each module starts its own anyway), and sends its tally and findings to the controller,
which prints the tier's summary and fails the run on a finding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scripts.node_process import Cluster, http, wait_until
from tests.fuzz.checks import FOUND, TALLY
from tests.fuzz.live import IDLE_MS, FenceWatch, Target, full_isr, ok, produce
from tests.fuzz.routes import (
    CONFIG_TOPIC,
    DOOMED_TOPIC,
    MAIN_PARTITIONS,
    MAIN_TOPIC,
    READ_TIMEOUT_MS,
    Context,
)

# Records put in every partition of the main topic before the fuzz starts.
RECORDS_PER_PARTITION = 10


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """Three running nodes; ``fuzz`` (3 partitions, replication factor 3, records in each),
    ``fuzz-configs`` (the target of configuration changes) and ``fuzz-doomed`` (of deletes)."""
    properties = {
        "http.request.read.timeout.ms": str(READ_TIMEOUT_MS),
        "connections.max.idle.ms": str(IDLE_MS),
        # The groups' internal topic, created by the first group request: small, to keep the
        # fuzz cluster light.
        "offsets.topic.num.partitions": "3",
    }
    cluster = Cluster.create(tmp_path_factory.mktemp("fuzz"), **properties)  # type: ignore[arg-type]
    try:
        cluster.start()
        first = cluster.nodes[0]
        for name, partitions, replicas in (
            (MAIN_TOPIC, MAIN_PARTITIONS, 3),
            (CONFIG_TOPIC, 1, 3),
            (DOOMED_TOPIC, 1, 1),
        ):
            ok(
                *http(
                    "POST",
                    f"{first.url}/v1/topics",
                    {"name": name, "partitions": partitions, "replication_factor": replicas},
                ),
                f"create {name}",
            )
        for partition in range(MAIN_PARTITIONS):
            records = [
                {"key": f"k{i}", "value": {"partition": partition, "i": i}}
                for i in range(RECORDS_PER_PARTITION)
            ]
            ok(
                *produce(first, MAIN_TOPIC, partition, records),
                f"produce to {MAIN_TOPIC}-{partition}",
            )
        wait_until(f"{MAIN_TOPIC} has its full ISR", lambda: full_isr(first, MAIN_TOPIC))
        described = ok(*http("GET", f"{first.url}/v1/topics"), "list topics")
        assert {t["name"] for t in described["topics"]} >= {MAIN_TOPIC, CONFIG_TOPIC}
        topic_ids = {
            name: ok(*http("GET", f"{first.url}/v1/topics/{name}"), "describe")["topic_id"]
            for name in (MAIN_TOPIC, CONFIG_TOPIC, DOOMED_TOPIC)
        }
        cluster_id = ok(*http("GET", f"{first.url}/v1/cluster"), "cluster")["cluster_id"]
        ctx = Context(
            cluster_id=cluster_id,
            topic_ids=topic_ids,
            node_ids=tuple(n.node_id for n in cluster.nodes),
            urls=tuple(n.url for n in cluster.nodes),
        )
        offsets = {n.node_id: n.log_file.stat().st_size for n in cluster.nodes}
        watch = FenceWatch([n.url for n in cluster.nodes], set(ctx.node_ids))
        watch.start()
        try:
            yield Target(cluster, ctx, offsets, watch=watch)
        finally:
            watch.stop()
    finally:
        cluster.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if FOUND and exitstatus == 0:
        session.exitstatus = 1  # the survey found broken rules: the run fails
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints and decides
        workeroutput["fuzz_tally"] = dict(TALLY)
        workeroutput["fuzz_found"] = [[*key, size, text] for key, (size, text) in FOUND.items()]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the xdist controller: adds a finished worker's tally and findings to this process's."""
    output = getattr(node, "workeroutput", {})
    TALLY.update(output.get("fuzz_tally", {}))
    for rule, route, got, name, size, text in output.get("fuzz_found", []):
        key = (rule, route, got, name)
        if key not in FOUND or size < FOUND[key][0]:
            FOUND[key] = (size, text)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The tier's short summary: requests sent, by status; in survey mode, what broke."""
    if TALLY:
        by_status = ", ".join(
            f"{name}: {count}"
            for name, count in sorted(TALLY.items(), key=lambda kv: (not kv[0].isdigit(), kv[0]))
        )
        terminalreporter.write_line(
            f"fuzz: {sum(TALLY.values())} requests sent; answers by status: {by_status}"
        )
    if FOUND:
        terminalreporter.write_line(f"fuzz survey: {len(FOUND)} kind(s) of broken rule")
        for (rule, route, got, name), (_, text) in sorted(FOUND.items()):
            terminalreporter.write_line(f"- {rule} on {route}: {got} {name}\n  {text}")
