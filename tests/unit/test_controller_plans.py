"""The controller's plans: Kafka's placement and validation, before any record is written."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from client.protocol import ApiError
from kraft.records import RegisterBrokerRecord, UnfenceBrokerRecord
from kraft.state import MetadataState
from server import controller


def state_with_brokers(*ids: int) -> MetadataState:
    state = MetadataState()
    records = []
    for i in ids:
        records.append(
            RegisterBrokerRecord(
                i, f"inc{i}", 0, f"http://127.0.0.1:{9000 + i}", f"127.0.0.1:{9100 + i}"
            )
        )
        records.append(UnfenceBrokerRecord(i, 0))
    state.apply_entry(1, records)
    return state


def create(
    state: MetadataState,
    name: object = "news",
    partitions: object = None,
    factor: object = None,
    configs: object = None,
) -> list:
    return controller.plan_create_topic(
        state,
        name,
        partitions,
        factor,
        configs,
        default_partitions=1,
        default_replication_factor=1,
        rng=random.Random(7),
    )


def test_kafka_placement_spreads_leaders_and_replicas_evenly() -> None:
    assignment = controller.assign_replicas([1, 2, 3], 6, 3, rng=random.Random(1))
    leaders = Counter(replicas[0] for replicas in assignment.values())
    assert leaders == {1: 2, 2: 2, 3: 2}
    for replicas in assignment.values():
        assert sorted(replicas) == [1, 2, 3]


def test_kafka_placement_with_fixed_start_matches_kafkas_table() -> None:
    # Kafka's AdminUtils with start index 0 and shift 0 over brokers 0..4, 10 partitions, RF 3.
    class Zero(random.Random):
        def randrange(self, *args: object, **kwargs: object) -> int:  # type: ignore[override]
            return 0

    assignment = controller.assign_replicas([0, 1, 2, 3, 4], 10, 3, rng=Zero())
    assert assignment == {
        0: (0, 1, 2),
        1: (1, 2, 3),
        2: (2, 3, 4),
        3: (3, 4, 0),
        4: (4, 0, 1),
        5: (0, 2, 3),
        6: (1, 3, 4),
        7: (2, 4, 0),
        8: (3, 0, 1),
        9: (4, 1, 2),
    }


def test_created_topic_applies_cleanly_with_leader_first_replica() -> None:
    state = state_with_brokers(1)
    records = create(state, partitions=3, configs={"retention.ms": 60000})
    state.apply_entry(2, records)
    topic = state.topics["news"]
    assert sorted(topic.partitions) == [0, 1, 2]
    assert all(p.leader == 1 and p.isr == (1,) for p in topic.partitions.values())
    assert topic.configs == {"retention.ms": "60000"}


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": "bad name"}, 40002),
        ({"name": "."}, 40002),
        ({"name": "x" * 250}, 40002),
        ({"partitions": 0}, 40004),
        ({"factor": 2}, 40003),
        ({"configs": {"retention.ms": "soon"}}, 40005),
        ({"configs": {"no.such.config": "1"}}, 40005),
    ],
)
def test_bad_create_requests_are_refused_before_any_record(kwargs: dict, code: int) -> None:
    with pytest.raises(ApiError) as caught:
        create(state_with_brokers(1), **kwargs)
    assert caught.value.code == code


def test_replication_factor_above_live_brokers_uses_kafkas_message() -> None:
    with pytest.raises(ApiError) as caught:
        create(state_with_brokers(1), factor=2)
    assert caught.value.message == "Replication factor: 2 larger than available brokers: 1."


def test_existing_topic_is_refused() -> None:
    state = state_with_brokers(1)
    state.apply_entry(2, create(state))
    with pytest.raises(ApiError) as caught:
        create(state)
    assert caught.value.code == 40901


def test_adding_partitions_keeps_the_replication_factor_and_only_grows() -> None:
    state = state_with_brokers(1, 2, 3)
    state.apply_entry(2, create(state, partitions=2, factor=2))
    records = controller.plan_add_partitions(state, "news", 5, rng=random.Random(3))
    state.apply_entry(3, records)
    assert sorted(state.topics["news"].partitions) == [0, 1, 2, 3, 4]
    assert all(len(p.replicas) == 2 for p in state.topics["news"].partitions.values())
    with pytest.raises(ApiError) as caught:
        controller.plan_add_partitions(state, "news", 5, rng=random.Random(3))
    assert caught.value.code == 40004


def test_unknown_topic_is_reported_for_delete_and_configs() -> None:
    state = state_with_brokers(1)
    for plan in (
        lambda: controller.plan_delete_topic(state, "nope"),
        lambda: controller.plan_alter_configs(state, "nope", {"retention.ms": "1"}),
    ):
        with pytest.raises(ApiError) as caught:
            plan()
        assert caught.value.code == 40401
