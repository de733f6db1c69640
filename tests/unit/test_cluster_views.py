"""The overview's figures from the metadata (server/http_cluster_views.cluster_counts) and
whose view of the quorum it shows (controller_quorum, with a stand-in node: no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from client.protocol import LEADER_NOT_AVAILABLE, ApiError
from kraft.records import (
    ConfigRecord,
    FenceBrokerRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
)
from kraft.state import MetadataState
from server.http_cluster_views import (
    QUORUM_ASK_TIMEOUT_S,
    cluster_counts,
    controller_quorum,
    visible_events,
)

NEWS = "x5Ujx2PtQ1C2rkC8-XNMZA"
LOGS = "Q2rkC8-XNMZAx5Ujx2PtQA"


def cluster() -> MetadataState:
    """Brokers 1-3; news: 3 partitions of 3 replicas, led by 1, 2, 3; logs: 1 of 1, on 2."""
    state = MetadataState()
    state.apply_entry(
        1,
        [
            RegisterBrokerRecord(b, "i", 1, f"http://127.0.0.1:{9090 + b}", "h:1", fenced=False)
            for b in (1, 2, 3)
        ],
    )
    state.apply_entry(
        2,
        [
            TopicRecord("news", NEWS),
            PartitionRecord(NEWS, 0, (1, 2, 3), (1, 2, 3), 1, 0, 0),
            PartitionRecord(NEWS, 1, (2, 3, 1), (2, 3, 1), 2, 0, 0),
            PartitionRecord(NEWS, 2, (3, 1, 2), (3, 1, 2), 3, 0, 0),
        ],
    )
    state.apply_entry(3, [TopicRecord("logs", LOGS), PartitionRecord(LOGS, 0, (2,), (2,), 2, 0, 0)])
    return state


def test_a_healthy_cluster_counts_each_brokers_replicas_and_leaders() -> None:
    counts = cluster_counts(cluster(), {"min.insync.replicas": "2"})
    assert counts["brokers"] == [
        {
            "id": 1,
            "url": "http://127.0.0.1:9091",
            "fenced": False,
            "alive": True,
            "replicas": 3,
            "leaders": 1,
        },
        {
            "id": 2,
            "url": "http://127.0.0.1:9092",
            "fenced": False,
            "alive": True,
            "replicas": 4,
            "leaders": 2,
        },
        {
            "id": 3,
            "url": "http://127.0.0.1:9093",
            "fenced": False,
            "alive": True,
            "replicas": 3,
            "leaders": 1,
        },
    ]
    # logs has one replica: its ISR of one is below the node default of 2, not under-replicated.
    assert counts["partitions"] == {
        "total": 4,
        "under_replicated": 0,
        "under_min_isr": 1,
        "offline": 0,
    }
    assert counts["topics"] == 2


def test_a_fenced_broker_makes_partitions_under_replicated_and_offline() -> None:
    state = cluster()
    state.apply_entry(
        4,
        [
            FenceBrokerRecord(2, 1),
            PartitionChangeRecord(NEWS, 0, isr=(1, 3)),
            PartitionChangeRecord(NEWS, 1, leader=3, isr=(3, 1)),
            PartitionChangeRecord(NEWS, 2, isr=(3, 1)),
            PartitionChangeRecord(LOGS, 0, leader=-1),  # the last ISR member stays (KIP-841)
        ],
    )
    counts = cluster_counts(state, {})
    assert counts["partitions"] == {
        "total": 4,
        "under_replicated": 3,
        "under_min_isr": 0,
        "offline": 1,
    }
    broker_2 = counts["brokers"][1]
    assert broker_2["fenced"] and not broker_2["alive"]
    assert (broker_2["replicas"], broker_2["leaders"]) == (4, 0)
    assert [b["leaders"] for b in counts["brokers"]] == [1, 0, 2]


def test_a_topics_own_min_insync_replicas_beats_the_node_default() -> None:
    state = cluster()
    state.apply_entry(4, [ConfigRecord("topic", "news", "min.insync.replicas", "3")])
    state.apply_entry(5, [PartitionChangeRecord(NEWS, 0, isr=(1, 2))])
    counts = cluster_counts(state, {"min.insync.replicas": "1"})
    assert counts["partitions"]["under_min_isr"] == 1  # news-0: 2 in sync, 3 needed
    # Without either, Kafka's default of 1.
    assert cluster_counts(cluster(), {})["partitions"]["under_min_isr"] == 0


class FakeQuorum:
    def __init__(self, leader: int | None) -> None:
        self.leader = leader

    def leader_id(self) -> int | None:
        return self.leader


class FakeNode:
    """A node as controller_quorum sees it: its id, the quorum's leader, its peers' URLs and
    a node-to-node call that answers (or fails) as the test says."""

    def __init__(
        self, leader: int | None, answer: tuple[int, Any] | ApiError, node_id: int = 2
    ) -> None:
        self.node_id = node_id
        self.quorum = FakeQuorum(leader)
        self.answer = answer
        self.calls: list[tuple[str, str, float, int]] = []

    def broker_url(self, broker_id: int, dial: bool = False) -> str | None:
        return f"http://127.0.0.1:{9090 + broker_id}" if broker_id in (1, 2, 3) else None

    async def http_call(
        self, method: str, url: str, body: Any, timeout_s: float, *, target_id: int, role: str
    ) -> tuple[int, Any, dict[str, str]]:
        self.calls.append((method, url, timeout_s, target_id))
        if isinstance(self.answer, ApiError):
            raise self.answer
        return self.answer[0], self.answer[1], {}


OWN = {"leader_id": 1, "voters": [{"id": 1, "lag": None}]}
CONTROLLERS = {"leader_id": 1, "voters": [{"id": 1, "lag": 0}]}


def quorum_of(node: FakeNode) -> dict[str, Any]:
    async def own_view() -> dict[str, Any]:
        return dict(OWN)

    return asyncio.run(controller_quorum(node, own_view))  # type: ignore[arg-type]


def test_a_follower_shows_the_quorum_the_controller_answers() -> None:
    node = FakeNode(leader=1, answer=(200, CONTROLLERS))
    assert quorum_of(node) == {**CONTROLLERS, "source_node": 1, "source_error": None}
    assert node.calls == [
        ("GET", "http://127.0.0.1:9091/v1/cluster/quorum", QUORUM_ASK_TIMEOUT_S, 1)
    ]


def test_the_controller_shows_its_own_view_without_a_call() -> None:
    node = FakeNode(leader=2, answer=(200, CONTROLLERS))
    assert quorum_of(node) == {**OWN, "source_node": 2, "source_error": None}
    assert node.calls == []


@pytest.mark.parametrize(
    ("leader", "answer", "error"),
    [
        (
            1,
            ApiError(LEADER_NOT_AVAILABLE, "the controller at 127.0.0.1:9091 did not answer"),
            "the controller at 127.0.0.1:9091 did not answer",
        ),
        (
            1,
            (503, {"error": "LEADER_NOT_AVAILABLE", "message": "node 1 is starting"}),
            "the controller, node 1, answered 503: node 1 is starting",
        ),
        (1, (200, ["not", "an", "object"]), "the controller, node 1, answered 200: None"),
        (None, (200, CONTROLLERS), "no controller is known to this node"),
        (
            7,
            (200, CONTROLLERS),
            "the controller, node 7, has no registered HTTP address (neither a controller nor "
            "a broker registration names one yet)",
        ),
    ],
)
def test_when_the_controller_cannot_be_asked_the_answer_is_this_nodes_view_and_says_why(
    leader: int | None, answer: tuple[int, Any] | ApiError, error: str
) -> None:
    node = FakeNode(leader, answer)
    assert quorum_of(node) == {**OWN, "source_node": 2, "source_error": error}


def _event(index: int, topic: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"index": index, "type": "broker_fenced" if topic is None else "x"}
    if topic is not None:
        event["topic"] = topic
    return event


def _not_vault(event: Any) -> bool:
    return bool(event.get("topic") != "vault")


EVENTS = [
    _event(1, "news"),
    _event(2, "vault"),
    _event(2, "vault"),
    _event(3),  # a broker's event: no topic
    _event(3, "vault"),
    _event(4, "vault"),
    _event(5, "news"),
]


def test_events_of_topics_one_may_not_describe_are_left_out_cluster_events_stay() -> None:
    shown = visible_events(EVENTS, _not_vault, newest=True, limit=100)
    assert shown == [_event(1, "news"), _event(3), _event(5, "news")]


def test_the_limit_counts_only_the_events_shown() -> None:
    # Without the hidden ones, the newest two are those of entries 3 and 5.
    newest = visible_events(EVENTS, _not_vault, newest=True, limit=2)
    assert newest == [_event(3), _event(5, "news")]
    # From the oldest: a page of hidden events would have looked like the end of the list.
    assert visible_events(EVENTS[1:], _not_vault, newest=False, limit=1) == [_event(3)]


def test_an_entrys_events_stay_together_past_the_limit() -> None:
    everything = visible_events(EVENTS, lambda e: True, newest=False, limit=2)
    assert [e["index"] for e in everything] == [1, 2, 2]
