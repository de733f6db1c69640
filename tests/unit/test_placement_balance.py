"""Racks and balance (issue 16 §5, §6): broker.rack from the config to the registration record
and the state, the replica count per broker the state keeps, and the controller's placement of
new topics and partitions on the emptiest brokers, over racks."""

from __future__ import annotations

import random
from collections import Counter

import orjson
import pytest

from client.protocol import ApiError
from kraft.errors import IllegalRecordError, MetadataRecordError
from kraft.records import (
    MetadataRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    UnfenceBrokerRecord,
    decode,
    encode,
)
from kraft.state import MetadataState
from server import controller
from server.config import ConfigError, NodeConfig
from tests.unit.test_state_index import ENTRIES, Scripter

PROPS = {
    "node.id": "1",
    "controller.quorum.voters": "1@127.0.0.1:9093",
    "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
    "log.dirs": "/tmp/x/kraft-combined-logs",
}


def cluster(racks: dict[int, str | None]) -> MetadataState:
    state = MetadataState()
    records: list[MetadataRecord] = []
    for b, rack in racks.items():
        records.append(
            RegisterBrokerRecord(b, f"i{b}", 0, f"http://h:{b}", f"h:{b + 100}", True, rack)
        )
        records.append(UnfenceBrokerRecord(b, 0))
    state.apply_entry(1, records)
    return state


def create(state: MetadataState, name: str, partitions: int, factor: int, seed: int = 0) -> None:
    records = controller.plan_create_topic(
        state,
        name,
        partitions,
        factor,
        None,
        default_partitions=1,
        default_replication_factor=1,
        rng=random.Random(seed),
    )
    state.apply_entry(state.applied_index + 1, records)


def replicas_of(state: MetadataState, name: str) -> list[tuple[int, ...]]:
    return [p.replicas for _, p in sorted(state.topics[name].partitions.items())]


def scanned_counts(state: MetadataState) -> dict[int, int]:
    counts: Counter[int] = Counter()
    for topic in state.topics.values():
        for p in topic.partitions.values():
            counts.update(p.replicas)
    return dict(counts)


# -- broker.rack ---------------------------------------------------------------------------------


def test_broker_rack_is_optional_text_and_empty_means_none() -> None:
    assert NodeConfig.from_properties(dict(PROPS)).rack is None
    assert NodeConfig.from_properties({**PROPS, "broker.rack": ""}).rack is None
    assert NodeConfig.from_properties({**PROPS, "broker.rack": " us-east-1a "}).rack == (
        "us-east-1a"
    )
    with pytest.raises(ConfigError, match="^broker.rack: "):
        NodeConfig.from_properties({**PROPS, "broker.rack": "a\x07b"})


def test_a_registration_carries_its_rack_into_the_state_and_the_snapshot() -> None:
    state = cluster({1: "a", 2: None})
    assert state.brokers[1].rack == "a" and state.brokers[2].rack is None
    loaded = MetadataState.from_snapshot(state.to_snapshot())
    assert loaded.brokers[1].rack == "a" and loaded.brokers[2].rack is None
    # Fencing keeps the rack; a re-registration may change it.
    state.apply_entry(2, controller.plan_fence_broker(state, 1))
    assert state.brokers[1].rack == "a"
    records = controller.plan_register_broker(
        state, 1, "i1b", "http://h:1", "h:101", session_alive=False, rack="b"
    )
    state.apply_entry(3, records)
    assert state.brokers[1].rack == "b"


def test_a_broker_without_a_rack_keeps_the_bytes_it_had_before_racks() -> None:
    record = RegisterBrokerRecord(1, "i", 0, "http://h:1", "h:2")
    assert "rack" not in orjson.loads(encode([record]))["records"][0]
    assert decode(encode([record])) == [record]
    snapshot = orjson.loads(cluster({1: None}).to_snapshot())
    assert "rack" not in snapshot["brokers"][0]
    racked = RegisterBrokerRecord(1, "i", 0, "http://h:1", "h:2", rack="r1")
    assert decode(encode([racked])) == [racked]


def test_a_bad_rack_is_refused_before_any_record() -> None:
    with pytest.raises(MetadataRecordError):
        RegisterBrokerRecord(1, "i", 0, "http://h:1", "h:2", rack="")
    with pytest.raises(ApiError) as caught:
        controller.plan_register_broker(
            MetadataState(), 1, "i", "http://h:1", "h:2", session_alive=False, rack="\n"
        )
    assert caught.value.name == "INVALID_REQUEST" and "rack" in caught.value.message


# -- the replica counts the state keeps ----------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_the_replica_counts_equal_a_full_scan_after_every_entry(seed: int) -> None:
    script = Scripter(random.Random(seed))
    state = MetadataState()
    for index in range(1, ENTRIES + 1):
        before = dict(state.replica_counts())
        try:
            state.apply_entry(index, script.entry(state))
        except IllegalRecordError:
            assert dict(state.replica_counts()) == before, "a refused entry moved the counts"
        assert dict(state.replica_counts()) == scanned_counts(state)
    loaded = MetadataState.from_snapshot(state.to_snapshot())
    assert dict(loaded.replica_counts()) == scanned_counts(state)


# -- balance -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_a_new_topic_lands_on_the_emptiest_brokers(seed: int) -> None:
    state = cluster({1: None, 2: None, 3: None, 4: None, 5: None})
    create(state, "old", 12, 2, seed)  # brokers 1..5 hold about 5 replicas each
    # Grow the imbalance: a topic only on 1, 2 and 3, made by hand.
    topic = controller.plan_create_topic(
        state,
        "heavy",
        1,
        1,
        None,
        default_partitions=1,
        default_replication_factor=1,
        rng=random.Random(seed),
    )
    topic_id = topic[0].topic_id  # type: ignore[attr-defined]
    state.apply_entry(
        state.applied_index + 1,
        [topic[0]]
        + [PartitionRecord(topic_id, n, (1, 2, 3), (1, 2, 3), 1, 0, 0) for n in range(20)],
    )
    create(state, "new", 2, 2, seed)
    assert {b for replicas in replicas_of(state, "new") for b in replicas} == {4, 5}
    create(state, "one", 1, 1, seed)
    assert replicas_of(state, "one")[0][0] in (4, 5)


def test_added_partitions_land_on_the_emptiest_brokers() -> None:
    state = cluster({1: None, 2: None, 3: None})
    create(state, "news", 3, 1)
    create(state, "big", 9, 1)  # 4 replicas on each broker now
    state.apply_entry(
        state.applied_index + 1,
        controller.plan_add_partitions(state, "news", 4, rng=random.Random(0)),
    )
    counts = dict(state.replica_counts())
    assert sorted(counts.values()) == [4, 4, 5]
    # The next partition goes to one of the two emptier brokers.
    emptier = {b for b, n in counts.items() if n == 4}
    state.apply_entry(
        state.applied_index + 1,
        controller.plan_add_partitions(state, "news", 5, rng=random.Random(0)),
    )
    assert replicas_of(state, "news")[4][0] in emptier


@pytest.mark.parametrize("seed", range(4))
def test_with_racks_every_partition_spans_racks(seed: int) -> None:
    state = cluster({1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"})
    create(state, "spread", 12, 3, seed)
    racks = {b: state.brokers[b].rack for b in state.brokers}
    for replicas in replicas_of(state, "spread"):
        assert sorted(str(racks[b]) for b in replicas) == ["a", "b", "c"]
    assert sorted(Counter(b for r in replicas_of(state, "spread") for b in r).values()) == [6] * 6
    create(state, "pair", 6, 2, seed)
    for replicas in replicas_of(state, "pair"):
        assert racks[replicas[0]] != racks[replicas[1]]


def test_the_controllers_placement_is_deterministic_given_the_rng() -> None:
    a = cluster({1: None, 2: None, 3: None, 4: None})
    b = cluster({1: None, 2: None, 3: None, 4: None})
    create(a, "t", 8, 3, seed=5)
    create(b, "t", 8, 3, seed=5)
    assert replicas_of(a, "t") == replicas_of(b, "t")
