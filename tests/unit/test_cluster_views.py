"""The overview's figures from the metadata (server/http_cluster_views.cluster_counts)."""

from __future__ import annotations

from kraft.records import (
    ConfigRecord,
    FenceBrokerRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
)
from kraft.state import MetadataState
from server.http_cluster_views import cluster_counts

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
