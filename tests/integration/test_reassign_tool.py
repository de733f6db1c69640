"""kraft-reassign-partitions and replica placement with real nodes (issue 16, items 2, 5, 6):
--generate, --execute --throttle, --verify until the move is done and the throttles are gone,
--list and --cancel of a move a 1 KB/s throttle holds back, refusals; broker.rack in GET /v1/cluster
and in the placement of new topics; new topics on the emptiest brokers.

One four-node combined cluster serves the module, nodes 1 and 2 in rack "a", 3 and 4 in rack
"b"; each test makes its own topics (the balance test reads what the others left).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.node_process import Cluster, NodeProcess, http, run_tool, wait_until
from tests.integration.test_cluster import create_topic

NODES = 4
RACKS = {1: "a", 2: "a", 3: "b", 4: "b"}
DEADLINE_S = 60.0
TOOL = "client.tools.reassign_partitions"
THROTTLE_REPLICAS = (
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
)
THROTTLE_RATES = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
UNTHROTTLED = str(2**63 - 1)  # Kafka's Long.MAX_VALUE: no throttle


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("reassign-tool")
    handle = Cluster.create(directory, NODES, **{"min.insync.replicas": "1"})  # type: ignore[arg-type]
    for node in handle.nodes:
        node.properties.write_text(
            node.properties.read_text() + f"broker.rack={RACKS[node.node_id]}\n"
        )
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def reassign(node: NodeProcess, *args: str) -> tuple[int, list[str], str]:
    """Runs the tool against ``node``: exit code, stdout lines, stderr."""
    out = run_tool(TOOL, "--bootstrap-server", node.bootstrap, *args)
    return out.returncode, out.stdout.splitlines(), out.stderr.strip()


def get(node: NodeProcess, path: str) -> Any:
    """A GET answered 200, waiting while the node answers 503 (a node just resumed from a
    pause catches up with the quorum first, as after any partition)."""

    def attempt() -> tuple[int, Any] | None:
        status, body = http("GET", node.url + path, timeout=5)  # follows a 307
        assert status in (200, 503), (path, status, body)
        return (status, body) if status == 200 else None

    return wait_until(f"GET {path}", attempt, DEADLINE_S)[1]


def partitions(node: NodeProcess, topic: str) -> list[dict[str, Any]]:
    return list(get(node, f"/v1/topics/{topic}")["partitions"])


def produce(cluster: Cluster, topic: str, partition: int, count: int) -> None:
    """``count`` records of 1 KB to the partition's leader, acks=all."""
    records = [{"value": f"{n:04d}" + "x" * 1020} for n in range(count)]

    def attempt() -> bool:
        leader = partitions(cluster.nodes[0], topic)[partition]["leader"]
        if leader < 1:
            return False
        status, body = cluster.node(leader).http(
            "POST",
            f"/v1/topics/{topic}/partitions/{partition}/records?acks=all",
            {"records": records},
        )
        assert status in (200, 307, 404, 503), body
        return status == 200

    wait_until(f"records produced to {topic}-{partition}", attempt, DEADLINE_S)


def moving(node: NodeProcess) -> list[dict[str, Any]]:
    return list(get(node, "/v1/reassignments")["reassignments"])


def topic_throttles(node: NodeProcess, topic: str) -> dict[str, str]:
    overrides = get(node, f"/v1/topics/{topic}/configs")["overrides"]
    return {k: v for k, v in overrides.items() if k in THROTTLE_REPLICAS}


def broker_rates(node: NodeProcess, broker: int) -> dict[str, str]:
    configs = get(node, f"/v1/brokers/{broker}/configs")["configs"]
    return {c["name"]: c["value"] for c in configs if c["name"] in THROTTLE_RATES}


def write(path: Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_the_cluster_names_each_brokers_rack_and_new_topics_span_racks(cluster: Cluster) -> None:
    body = get(cluster.nodes[0], "/v1/cluster")
    assert {b["id"]: b["rack"] for b in body["brokers"]} == RACKS
    create_topic(cluster.nodes[0], "spread", partitions=8, replication_factor=2)
    placed = [p["replicas"] for p in partitions(cluster.nodes[0], "spread")]
    for replicas in placed:
        assert sorted(RACKS[b] for b in replicas) == ["a", "b"], placed
    # A new cluster's brokers are even: Kafka's placement keeps them so, leaders too.
    assert sorted(Counter(b for r in placed for b in r).values()) == [4, 4, 4, 4], placed
    assert sorted(Counter(r[0] for r in placed).values()) == [2, 2, 2, 2], placed


def test_generate_execute_with_a_throttle_then_verify_clears_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    node = cluster.nodes[0]
    create_topic(node, "moves", partitions=2, replication_factor=2)
    for p in (0, 1):
        produce(cluster, "moves", p, 200)
    topics = write(tmp_path / "topics.json", {"topics": [{"topic": "moves"}], "version": 1})

    # --broker-list 1,3: one broker of each rack, so every partition goes to both.
    code, lines, err = reassign(
        node, "--generate", "--topics-to-move-json-file", topics, "--broker-list", "1,3"
    )
    assert code == 0, err
    assert lines[0] == "Current partition replica assignment", lines
    assert lines[2:4] == ["", "Proposed partition reassignment configuration"], lines
    current = json.loads(lines[1])
    proposed = json.loads(lines[4])
    assert [sorted(p["replicas"]) for p in proposed["partitions"]] == [[1, 3], [1, 3]]
    assert all(p["log_dirs"] == ["any", "any"] for p in proposed["partitions"])
    plan = write(tmp_path / "plan.json", proposed)

    code, lines, err = reassign(
        node, "--execute", "--reassignment-json-file", plan, "--throttle", "10000000"
    )
    assert code == 0, err
    assert lines[:5] == [
        "Current partition replica assignment",
        "",
        json.dumps(current, separators=(",", ":")),
        "",
        "Save this to use as the --reassignment-json-file option during rollback",
    ]
    assert lines[5:] == [
        "Warning: You must run --verify periodically, until the reassignment completes, to "
        "ensure the throttle is removed.",
        "The inter-broker throttle limit was set to 10000000 B/s",
        "Successfully started partition reassignments for moves-0,moves-1",
    ]
    # The throttles stay until --verify sees the moves done: the leader list names the
    # current replicas, the follower list the adding ones.
    throttles = topic_throttles(node, "moves")
    sources = {f"{p['partition']}:{b}" for p in current["partitions"] for b in p["replicas"]}
    assert set(throttles["leader.replication.throttled.replicas"].split(",")) == sources
    for broker in {1, 3} | {b for p in current["partitions"] for b in p["replicas"]}:
        assert broker_rates(node, broker) == dict.fromkeys(THROTTLE_RATES, "10000000")

    wait_until("the moves are done", lambda: not moving(node), DEADLINE_S)
    code, lines, err = reassign(node, "--verify", "--reassignment-json-file", plan)
    assert code == 0, err
    assert lines == [
        "Status of partition reassignment:",
        "Reassignment of partition moves-0 is completed.",
        "Reassignment of partition moves-1 is completed.",
        "",
        "Clearing broker-level throttles on brokers 1,2,3,4",
        "Clearing topic-level throttles on topic moves",
    ]
    assert topic_throttles(node, "moves") == {}
    for broker in RACKS:
        assert broker_rates(node, broker) == dict.fromkeys(THROTTLE_RATES, UNTHROTTLED)
    moved = partitions(node, "moves")
    assert [p["replicas"] for p in moved] == [p["replicas"] for p in proposed["partitions"]]


def test_a_throttled_move_is_listed_and_cancelled(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.nodes[0]
    create_topic(node, "slow", partitions=1, replication_factor=2)
    produce(cluster, "slow", 0, 300)  # 300 KB: five minutes at 1 KB/s
    replicas = partitions(node, "slow")[0]["replicas"]
    target = next(b for b in sorted(RACKS) if b not in replicas)
    plan = write(
        tmp_path / "slow.json",
        {"version": 1, "partitions": [{"topic": "slow", "partition": 0, "replicas": [target]}]},
    )
    code, lines, err = reassign(
        node, "--execute", "--reassignment-json-file", plan, "--throttle", "1024"
    )
    assert code == 0 and lines[-1] == "Successfully started partition reassignment for slow-0"
    code, lines, err = reassign(node, "--list")
    (move,) = moving(node)
    assert move["replicas"] == [target, *replicas] and move["adding_replicas"] == [target]
    assert sorted(move["removing_replicas"]) == sorted(replicas)
    assert lines == [
        "Current partition reassignments:",
        f"slow-0: replicas: {','.join(map(str, move['replicas']))}. adding: {target}. "
        f"removing: {','.join(map(str, move['removing_replicas']))}.",
    ], err
    # Another --execute without --additional is refused while a move is on.
    code, lines, err = reassign(node, "--execute", "--reassignment-json-file", plan)
    assert code == 1 and err.startswith("Cannot execute because there is an existing")
    # --verify says so, and leaves the throttles alone while anything moves.
    code, lines, err = reassign(node, "--verify", "--reassignment-json-file", plan)
    assert lines == [
        "Status of partition reassignment:",
        "Reassignment of partition slow-0 is still in progress.",
        "",
    ], err
    assert topic_throttles(node, "slow")["follower.replication.throttled.replicas"] == (
        f"0:{target}"
    )
    code, lines, err = reassign(node, "--cancel", "--reassignment-json-file", plan)
    assert code == 0, err
    assert lines == [
        "Successfully cancelled partition reassignment for: slow-0",
        "None of the specified partition moves are active.",
        "Clearing broker-level throttles on brokers 1,2,3,4",
        "Clearing topic-level throttles on topic slow",
    ]
    assert moving(node) == []
    assert partitions(node, "slow")[0]["replicas"] == replicas
    assert topic_throttles(node, "slow") == {}
    code, lines, err = reassign(node, "--verify", "--reassignment-json-file", plan)
    assert lines[1] == (
        f"There is no active reassignment of partition slow-0, but replica set is "
        f"{','.join(map(str, replicas))} rather than {target}."
    ), lines


def test_bad_plans_are_refused_and_change_nothing(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.nodes[0]
    before = moving(node)
    cases = [
        ([{"topic": "spread", "partition": 0, "replicas": [1, 9]}], "Error: Unknown broker id 9"),
        ([{"topic": "nope", "partition": 0, "replicas": [1]}], "Error: Topic nope not found."),
        (
            [{"topic": "spread", "partition": 99, "replicas": [1]}],
            "Error: Unable to find partition: spread-99",
        ),
        (
            [{"topic": "spread", "partition": 0, "replicas": [1, 1]}],
            "Error: Partition replica lists may not contain duplicate entries: spread-0 "
            "contains multiple entries for 1",
        ),
    ]
    for n, (entries, message) in enumerate(cases):
        plan = write(tmp_path / f"bad{n}.json", {"version": 1, "partitions": entries})
        code, lines, err = reassign(node, "--execute", "--reassignment-json-file", plan)
        assert (code, err) == (1, message), lines
    assert moving(node) == before


def test_new_topics_land_on_the_emptiest_brokers(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.nodes[0]
    # Load brokers 1 and 3 (one per rack) with a topic moved onto them.
    create_topic(node, "heavy", partitions=6, replication_factor=2)
    plan = write(
        tmp_path / "heavy.json",
        {
            "version": 1,
            "partitions": [
                {"topic": "heavy", "partition": p, "replicas": [1, 3] if p % 2 else [3, 1]}
                for p in range(6)
            ],
        },
    )
    code, lines, err = reassign(node, "--execute", "--reassignment-json-file", plan)
    assert code == 0, err
    wait_until("heavy moved", lambda: not moving(node), DEADLINE_S)
    held: Counter[int] = Counter()
    for topic in get(node, "/v1/topics")["topics"]:
        for p in partitions(node, topic["name"]):
            held.update(p["replicas"])
    assert min(held[1], held[3]) > max(held[2], held[4]) + 4, held
    create_topic(node, "light", partitions=2, replication_factor=2)
    placed = [p["replicas"] for p in partitions(node, "light")]
    assert all(sorted(replicas) == [2, 4] for replicas in placed), (placed, held)
