"""The overview and the metadata events with real nodes: a cluster losing a node and healing.

Each test starts its own three-node cluster (``min.insync.replicas=2``) and stops every process
by pid. Waits have generous deadlines; nothing asserts how long something took.
"""

from __future__ import annotations

from typing import Any

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from tests.integration.test_cluster import create_topic

# How long a change may take to show (a fence comes 1.5 s after the kill, an election within
# about a second, a restarted node catches up in a few): far more than any of them needs.
DEADLINE_S = 60.0


def get(node: NodeProcess, path: str) -> dict[str, Any]:
    status, body = http("GET", f"{node.url}{path}", timeout=10)
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def events_after(node: NodeProcess, after: int) -> list[dict[str, Any]]:
    """Every event ``node`` holds of the entries after ``after``, paging as a console does."""
    out: list[dict[str, Any]] = []
    while page := get(node, f"/v1/cluster/events?after={after}&limit=50")["events"]:
        out += page
        after = page[-1]["index"]
    return out


def applied_index(node: NodeProcess) -> int:
    return int(get(node, "/v1/cluster/events?limit=1")["applied_index"])


def leaders(node: NodeProcess, topic: str) -> dict[int, int | None]:
    body = get(node, f"/v1/topics/{topic}")
    return {p["partition"]: p["leader"] for p in body["partitions"]}


def overview_partitions(node: NodeProcess) -> dict[str, int] | None:
    try:
        return dict(get(node, "/v1/cluster/overview")["partitions"])
    except (OSError, AssertionError):
        return None


def test_overview_from_a_follower_shows_the_controllers_quorum_with_each_voters_lag(
    cluster: Cluster,
) -> None:
    create_topic(cluster.nodes[0], "news", partitions=3, replication_factor=3)
    controller = cluster.controller_id()
    assert controller is not None
    follower = next(n for n in cluster.nodes if n.node_id != controller)
    overview = wait_until(
        "the follower's overview counts the new topic's partitions",
        lambda: o if (o := get(follower, "/v1/cluster/overview"))["topics"] == 1 else None,
        DEADLINE_S,
    )
    assert overview["node_id"] == follower.node_id
    assert overview["controller_id"] == controller
    quorum = overview["quorum"]
    # The controller's view: a follower knows no other voter's log end, the leader all.
    assert (quorum["source_node"], quorum["source_error"]) == (controller, None)
    assert quorum["leader_id"] == controller and quorum["node"]["id"] == controller
    assert [v["id"] for v in quorum["voters"]] == [1, 2, 3]
    assert all(isinstance(v["lag"], int) for v in quorum["voters"])
    assert all(isinstance(v["log_end_offset"], int) for v in quorum["voters"])
    assert [(b["id"], b["alive"], b["replicas"]) for b in overview["brokers"]] == [
        (1, True, 3),
        (2, True, 3),
        (3, True, 3),
    ]
    assert sum(b["leaders"] for b in overview["brokers"]) == 3
    assert overview["partitions"] == {
        "total": 3,
        "under_replicated": 0,
        "under_min_isr": 0,
        "offline": 0,
    }


def test_a_killed_partition_leader_shows_in_the_events_and_the_overview_until_it_is_back(
    cluster: Cluster,
) -> None:
    create_topic(cluster.nodes[0], "news", partitions=3, replication_factor=3)
    controller = cluster.controller_id()
    watcher = cluster.node(controller) if controller is not None else cluster.nodes[0]
    led = wait_until(
        "every partition of news has a leader",
        lambda: x if None not in (x := leaders(watcher, "news")).values() else None,
        DEADLINE_S,
    )
    # A leader that is not the controller: its fence is written by a controller that lives.
    victim = cluster.node(next(b for b in sorted(set(led.values())) if b != controller))
    victim_led = sorted(p for p, b in led.items() if b == victim.node_id)
    before = applied_index(watcher)
    victim.kill()

    def shrunk() -> list[dict[str, Any]] | None:
        found = events_after(watcher, before)
        types = {(e["type"], e.get("partition")) for e in found}
        fenced = any(e["type"] == "broker_fenced" and e["broker"] == victim.node_id for e in found)
        moved = all(("leader_change", p) in types for p in victim_led)
        return found if fenced and moved and ("isr_shrink", victim_led[0]) in types else None

    found = wait_until(f"events of node {victim.node_id}'s fence", shrunk, DEADLINE_S)
    for event in found:
        if event["type"] == "leader_change":
            assert event["previous_leader"] == victim.node_id
            assert event["leader"] not in (None, victim.node_id)
            assert event["topic"] == "news"
        if event["type"] == "isr_shrink":
            assert victim.node_id in event["previous_isr"]
            assert victim.node_id not in event["isr"]
    fence = next(e for e in found if e["type"] == "broker_fenced")
    # The fence and its elections are one metadata entry, the fence first.
    assert {e["index"] for e in found if e["type"] == "leader_change"} == {fence["index"]}
    assert found.index(fence) < min(i for i, e in enumerate(found) if e["type"] == "leader_change")
    wait_until(
        "the overview counts the partitions under-replicated, none offline",
        lambda: (
            overview_partitions(watcher)
            == {"total": 3, "under_replicated": 3, "under_min_isr": 0, "offline": 0}
        ),
        DEADLINE_S,
    )
    overview = get(watcher, "/v1/cluster/overview")
    down = next(b for b in overview["brokers"] if b["id"] == victim.node_id)
    assert down["fenced"] and not down["alive"] and down["leaders"] == 0

    after_fence = fence["index"]
    victim.start()

    def healed() -> list[dict[str, Any]] | None:
        found = events_after(watcher, after_fence)
        unfenced = any(
            e["type"] == "broker_unfenced" and e["broker"] == victim.node_id for e in found
        )
        back = {
            e["partition"]
            for e in found
            if e["type"] == "isr_expand" and victim.node_id in e["isr"]
        }
        return found if unfenced and back == {0, 1, 2} else None

    wait_until(f"events of node {victim.node_id}'s return", healed, DEADLINE_S)
    wait_until(
        "the overview counts no partition under-replicated",
        lambda: (
            overview_partitions(watcher)
            == {"total": 3, "under_replicated": 0, "under_min_isr": 0, "offline": 0}
        ),
        DEADLINE_S,
    )
    # The restarted node built its events from the entries it replayed at start: it shows
    # the topic's creation and its own fence, which it applied before it was killed or read
    # from its journal.
    replayed = events_after(victim, 0)
    assert any(e["type"] == "topic_created" and e["topic"] == "news" for e in replayed)
    assert any(e["type"] == "broker_fenced" and e["broker"] == victim.node_id for e in replayed)


def test_a_new_controller_puts_its_election_in_the_events(cluster: Cluster) -> None:
    old = cluster.controller_id()
    assert old is not None
    survivors = [n for n in cluster.nodes if n.node_id != old]
    first = [e for e in events_after(survivors[0], 0) if e["type"] == "quorum_leader"]
    assert first and first[-1]["leader"] == old  # the controller named itself in the log
    before = applied_index(survivors[0])
    cluster.node(old).kill()

    def elected() -> dict[str, Any] | None:
        found = events_after(survivors[0], before)
        return next((e for e in found if e["type"] == "quorum_leader"), None)

    event = wait_until("a quorum_leader event for the new controller", elected, DEADLINE_S)
    assert event["leader"] in {n.node_id for n in survivors}
    assert event["term"] > first[-1]["term"]
    assert event["text"] == (
        f"node {event['leader']} leads the metadata quorum (term {event['term']})"
    )
    # Every survivor applied the same entry: the same event, at the same index and term.
    other = wait_until(
        "the other survivor has it too",
        lambda: next(
            (e for e in events_after(survivors[1], before) if e["type"] == "quorum_leader"),
            None,
        ),
        DEADLINE_S,
    )
    assert {k: v for k, v in other.items() if k != "time_ms"} == {
        k: v for k, v in event.items() if k != "time_ms"
    }
