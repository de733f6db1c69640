"""The idempotent producer: a retried batch is stored once, across restarts and failover."""

from __future__ import annotations

import http.client as http_client
import json
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.test_cluster import create_topic
from tests.integration.test_replication import leader_of, read_all

MakeNode = Callable[..., NodeProcess]


def idempotent(
    node: NodeProcess, topic: str, values: list[str], pid: int, seq: int, epoch: int = 0
) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{node.url}/v1/topics/{topic}/partitions/0/records",
        data=json.dumps({"records": [{"value": v} for v in values]}).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Producer-Id": str(pid),
            "Producer-Epoch": str(epoch),
            "Producer-Seq": str(seq),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def producer_id(node: NodeProcess) -> int:
    status, body = http("POST", f"{node.url}/v1/producers", {})
    assert status == 200 and body["producer_epoch"] == 0, body
    return int(body["producer_id"])


def test_a_retried_batch_is_stored_once_and_gaps_and_stale_epochs_are_refused(
    make_node: MakeNode,
) -> None:
    node = make_node()
    node.format()
    node.start()
    http("POST", f"{node.url}/v1/topics", {"name": "once"})
    pid = producer_id(node)
    assert producer_id(node) == pid + 1, "ids come from the broker's block"
    status, first = idempotent(node, "once", ["a", "b"], pid, 0)
    assert status == 200 and [o["offset"] for o in first["offsets"]] == [0, 1]
    status, retry = idempotent(node, "once", ["a", "b"], pid, 0)
    assert status == 200 and retry["duplicate"] is True and retry["offsets"] == first["offsets"]
    status, gap = idempotent(node, "once", ["c"], pid, 5)
    assert (status, gap["error"], gap["expected_sequence"]) == (
        409,
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        2,
    )
    assert idempotent(node, "once", ["c"], pid, 0, epoch=1)[0] == 200  # a new epoch starts at 0
    status, stale = idempotent(node, "once", ["d"], pid, 2, epoch=0)
    assert (status, stale["error"]) == (403, "INVALID_PRODUCER_EPOCH")
    assert read_all(node, "once") == ["a", "b", "c"]

    node.stop(signal.SIGKILL)
    node.start()
    status, after = idempotent(node, "once", ["c"], pid, 0, epoch=1)
    assert status == 200 and after["duplicate"] is True, "the state is rebuilt from the log"
    assert read_all(node, "once") == ["a", "b", "c"]


def test_bad_producer_headers_are_refused(make_node: MakeNode) -> None:
    node = make_node()
    node.format()
    node.start()
    http("POST", f"{node.url}/v1/topics", {"name": "hdr"})
    assert idempotent(node, "hdr", ["x"], 7, 0)[0] == 200
    request = urllib.request.Request(
        f"{node.url}/v1/topics/hdr/records",
        data=b'{"value":"x"}',
        method="POST",
        headers={"Producer-Id": "1", "Producer-Epoch": "0", "Producer-Seq": "0"},
    )
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("the topic endpoint must refuse producer headers")
    except urllib.error.HTTPError as e:
        assert e.code == 400


def test_a_retry_after_the_leader_died_is_recognised_by_the_new_leader(cluster: Cluster) -> None:
    create_topic(cluster.nodes[0], "failover-once", replication_factor=3)
    old = leader_of(cluster, "failover-once")
    pid = producer_id(old)

    def first_write() -> Any:
        # The metadata names the leader before it has opened its replica (503 until then);
        # a refused write stores nothing, so sequence 0 is sent again.
        status, body = idempotent(old, "failover-once", ["x", "y"], pid, 0)
        return body if status == 200 else None

    first = wait_until("the leader takes the first write", first_write)
    old.stop(signal.SIGKILL)  # as if the answer had been lost with the leader

    def new_leader() -> NodeProcess | None:
        status, body = http("GET", f"{cluster.running()[0].url}/v1/topics/failover-once")
        leader = body["partitions"][0]["leader"] if status == 200 else None
        return None if leader in (None, old.node_id) else cluster.node(leader)

    new = wait_until("a new leader", new_leader)

    def retry() -> Any:
        status, body = idempotent(new, "failover-once", ["x", "y"], pid, 0)
        return body if status == 200 else None

    again = wait_until("the retry answered", retry)
    assert again["duplicate"] is True and again["offsets"] == first["offsets"]
    assert read_all(new, "failover-once") == ["x", "y"]


def test_a_committed_batch_whose_answer_was_lost_is_stored_once_on_retry(
    make_node: MakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRAFT_TEST_FAILPOINTS", "drop_produce_response=1")
    node = make_node()
    node.format()
    node.start()  # the node inherits the failpoint from this process's environment
    http("POST", f"{node.url}/v1/topics", {"name": "lost-answer"})
    pid = producer_id(node)
    with pytest.raises((ConnectionError, urllib.error.URLError, http_client.HTTPException)):
        idempotent(node, "lost-answer", ["only", "once"], pid, 0)
    status, retry = idempotent(node, "lost-answer", ["only", "once"], pid, 0)
    assert status == 200 and retry["duplicate"] is True
    assert [o["offset"] for o in retry["offsets"]] == [0, 1]
    assert read_all(node, "lost-answer") == ["only", "once"]
