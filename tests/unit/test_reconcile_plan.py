"""Reconciliation as a pure plan: a table of what a node has and what the metadata says, and
the actions that make them match."""

from __future__ import annotations

import pytest

from kraft.records import (
    ConfigRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from kraft.state import MetadataState
from server.partition import LeaderState
from server.reconcile import (
    Action,
    DeleteReplica,
    LocalReplica,
    OpenReplica,
    UpdateReplica,
    plan_reconcile,
    replica_settings,
)
from server.topic_configs import effective_configs
from storage.log_config import LogConfig

NEWS = "AAAAAAAAAAAAAAAAAAAAAQ"
OTHER = "AAAAAAAAAAAAAAAAAAAAAg"
ME = 2


def metadata(*changes: MetadataRecord, replicas: tuple[int, ...] = (1, 2, 3)) -> MetadataState:
    """Three brokers and topic "news" (id NEWS) with two partitions led by node 1."""
    state = MetadataState()
    records: list[MetadataRecord] = []
    for i in (1, 2, 3):
        records.append(
            RegisterBrokerRecord(i, f"inc{i}", 0, f"http://127.0.0.1:{9000 + i}", f"h:{i}")
        )
        records.append(UnfenceBrokerRecord(i, 0))
    records.append(TopicRecord("news", NEWS))
    for index in (0, 1):
        records.append(PartitionRecord(NEWS, index, replicas, replicas, replicas[0], 0, 0))
    state.apply_entry(1, records)
    if changes:
        state.apply_entry(2, list(changes))
    return state


def have(state: MetadataState, index: int, topic_id: str = NEWS, **over: object) -> LocalReplica:
    """What a node that is up to date with ``state`` has of news-``index``."""
    settings = replica_settings(state.topics["news"], index, {})
    fields = {
        "topic_id": topic_id,
        "state": settings.state,
        "config": settings.config,
        "min_insync_replicas": settings.min_insync_replicas,
    }
    fields.update(over)
    return LocalReplica(**fields)  # type: ignore[arg-type]


def plan(
    state: MetadataState, local: dict[tuple[str, int], LocalReplica | None]
) -> list[tuple[str, tuple[str, int]]]:
    actions: list[Action] = plan_reconcile(state, ME, {}, {"news"} | {k[0] for k in local}, local)
    return [(type(a).__name__, a.key) for a in actions]


BASE = metadata()
CASES = [
    pytest.param(
        BASE,
        {},
        [("OpenReplica", ("news", 0)), ("OpenReplica", ("news", 1))],
        id="a new topic: open every replica this node holds",
    ),
    pytest.param(
        BASE,
        {("news", 0): have(BASE, 0), ("news", 1): have(BASE, 1)},
        [],
        id="up to date: nothing to do",
    ),
    pytest.param(
        BASE,
        {("news", 0): have(BASE, 0), ("news", 1): None},
        [("OpenReplica", ("news", 1))],
        id="a failed open, or a directory on disk: open it (the retry)",
    ),
    pytest.param(
        BASE,
        {("news", 0): have(BASE, 0, OTHER), ("news", 1): have(BASE, 1)},
        [("DeleteReplica", ("news", 0)), ("OpenReplica", ("news", 0))],
        id="a deleted namesake's replica: delete it before opening the new one",
    ),
    pytest.param(
        metadata(replicas=(1, 3)),
        {("news", 0): have(BASE, 0), ("news", 1): None},
        [("DeleteReplica", ("news", 0)), ("DeleteReplica", ("news", 1))],
        id="replicas elsewhere: delete what this node has",
    ),
    pytest.param(
        BASE,
        {("gone", 0): None},
        [
            ("DeleteReplica", ("gone", 0)),
            ("OpenReplica", ("news", 0)),
            ("OpenReplica", ("news", 1)),
        ],
        id="a topic the metadata no longer has: delete its directory",
    ),
]


@pytest.mark.parametrize("state, local, expected", CASES)
def test_the_plan_makes_local_replicas_match_the_metadata(
    state: MetadataState,
    local: dict[tuple[str, int], LocalReplica | None],
    expected: list[tuple[str, tuple[str, int]]],
) -> None:
    assert plan(state, local) == expected


def test_a_new_leader_epoch_is_an_update_that_moves_the_fetcher() -> None:
    moved = metadata(PartitionChangeRecord(NEWS, 1, leader=2))
    (action,) = plan_reconcile(
        moved, ME, {}, {"news"}, {("news", 0): have(moved, 0), ("news", 1): have(BASE, 1)}
    )
    assert isinstance(action, UpdateReplica) and action.key == ("news", 1)
    assert action.leader_changed
    assert action.settings.state == LeaderState(2, 1, (1, 2, 3), (1, 2, 3), partition_epoch=1)


def test_an_isr_or_config_change_is_an_update_that_leaves_the_fetcher_alone() -> None:
    shrunk = metadata(
        PartitionChangeRecord(NEWS, 0, isr=(1, 2)),
        ConfigRecord("topic", "news", "min.insync.replicas", "2"),
        ConfigRecord("topic", "news", "retention.ms", "60000"),
    )
    local = {("news", 0): have(BASE, 0), ("news", 1): have(BASE, 1)}
    actions = plan_reconcile(shrunk, ME, {}, {"news"}, local)
    assert [a.key for a in actions] == [("news", 0), ("news", 1)]
    for action in actions:
        assert isinstance(action, UpdateReplica) and not action.leader_changed
        assert action.settings.min_insync_replicas == 2
        assert action.settings.config.retention_ms == 60000
    assert actions[0].settings.state.isr == (1, 2)  # type: ignore[union-attr]


def test_node_defaults_apply_below_the_topics_own_configs() -> None:
    (first, _) = plan_reconcile(BASE, ME, {"segment.bytes": "1048576"}, {"news"}, {})
    assert isinstance(first, OpenReplica)
    assert first.settings.config == LogConfig.from_topic_configs(
        {**effective_configs({}, {}), "segment.bytes": "1048576"}
    )


def test_topics_not_named_are_left_alone() -> None:
    local = {("other", 0): None}
    assert plan_reconcile(BASE, ME, {}, {"news"}, local) == [
        OpenReplica(("news", 0), replica_settings(BASE.topics["news"], 0, {})),
        OpenReplica(("news", 1), replica_settings(BASE.topics["news"], 1, {})),
    ]
    assert not any(isinstance(a, DeleteReplica) for a in plan_reconcile(BASE, ME, {}, {"x"}, local))
