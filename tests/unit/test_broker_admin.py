"""Unregistering a broker: the controller's plan (server/broker_admin.py) and the state's rule
for UnregisterBrokerRecord (kraft/state.py), with the record's own checks."""

from __future__ import annotations

import random

import pytest

from client.protocol import BROKER_ID_NOT_REGISTERED, INVALID_REQUEST, ApiError
from kraft.errors import IllegalRecordError, MetadataRecordError
from kraft.records import (
    FenceBrokerRecord,
    MetadataRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RegisterControllerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
    decode,
    encode,
)
from kraft.state import MetadataState
from server import controller
from server.broker_admin import NAMED_PARTITIONS_MAX, plan_unregister_broker


def _state(*broker_ids: int) -> MetadataState:
    state = MetadataState()
    records: list[MetadataRecord] = []
    for i in broker_ids:
        records.append(
            RegisterBrokerRecord(i, f"inc{i}", 0, f"http://127.0.0.1:{9000 + i}", f"h:{9100 + i}")
        )
        records.append(UnfenceBrokerRecord(i, 0))
    state.apply_entry(1, records)
    return state


def _topic(state: MetadataState, name: str, *replica_lists: tuple[int, ...]) -> None:
    topic_id = f"{name:A<21}Q"
    records: list[MetadataRecord] = [TopicRecord(name, topic_id)]
    for number, replicas in enumerate(replica_lists):
        records.append(PartitionRecord(topic_id, number, replicas, replicas, replicas[0], 0, 0))
    state.apply_entry(state.applied_index + 1, records)


def test_a_broker_that_holds_nothing_is_unregistered_at_its_epoch() -> None:
    state = _state(1, 2, 3, 4)
    _topic(state, "news", (1, 2, 3), (2, 3, 1))
    records = plan_unregister_broker(state, 4)
    assert records == [UnregisterBrokerRecord(4, 0)]
    state.apply_entry(state.applied_index + 1, records)
    assert sorted(state.brokers) == [1, 2, 3]
    # Placement forgets it: a new topic goes to the brokers that are left.
    created = controller.plan_create_topic(
        state,
        "later",
        4,
        3,
        None,
        default_partitions=1,
        default_replication_factor=1,
        rng=random.Random(3),
    )
    placed = {b for r in created if isinstance(r, PartitionRecord) for b in r.replicas}
    assert placed == {1, 2, 3}
    # And the snapshot, so a node that loads it does too.
    assert sorted(MetadataState.from_snapshot(state.to_snapshot()).brokers) == [1, 2, 3]


def test_a_fenced_broker_is_unregistered_too() -> None:
    state = _state(1, 2)
    state.apply_entry(state.applied_index + 1, [FenceBrokerRecord(2, 0)])
    state.apply_entry(state.applied_index + 1, plan_unregister_broker(state, 2))
    assert list(state.brokers) == [1]


def test_a_broker_holding_replicas_is_refused_naming_a_few_and_the_tool() -> None:
    state = _state(1, 2, 3, 4)
    _topic(state, "b", *[(4, 1)] * 4)
    _topic(state, "a", (1, 2), (2, 4), (2, 1))
    assert state.partitions_listing(4) == [("a", 1), ("b", 0), ("b", 1), ("b", 2), ("b", 3)]
    _topic(state, "c", (3, 4))
    with pytest.raises(ApiError) as refused:
        plan_unregister_broker(state, 4)
    assert refused.value.kind is INVALID_REQUEST
    assert refused.value.message == (
        "broker 4 still holds replicas of 6 partitions (a-1, b-0, b-1, b-2, b-3, ...): move "
        "them first with kraft-reassign-partitions (--generate with the remaining brokers, "
        "then --execute)"
    )
    assert NAMED_PARTITIONS_MAX == 5
    with pytest.raises(ApiError, match=r"replicas of 1 partition \(c-0\):"):
        plan_unregister_broker(state, 3)


def test_an_unknown_broker_is_not_registered_and_a_controller_is_named_as_one() -> None:
    state = _state(1)
    with pytest.raises(ApiError) as unknown:
        plan_unregister_broker(state, 7)
    assert unknown.value.kind is BROKER_ID_NOT_REGISTERED and unknown.value.kind.status == 404
    assert unknown.value.message == "Broker ID 7 is not currently registered"
    state.apply_entry(
        state.applied_index + 1,
        [RegisterControllerRecord(9, "c9", "http://127.0.0.1:9200", "127.0.0.1:9201")],
    )
    with pytest.raises(ApiError, match="node 9 is a controller, which holds no partitions"):
        plan_unregister_broker(state, 9)


def test_the_state_refuses_an_unregistration_while_a_partition_lists_the_broker() -> None:
    state = _state(1, 2)
    _topic(state, "news", (1, 2))
    before = state.to_snapshot()
    with pytest.raises(IllegalRecordError, match=r"partition news-0 .* lists the broker"):
        state.apply_entry(state.applied_index + 1, [UnregisterBrokerRecord(2, 0)])
    assert state.to_snapshot() == before


def test_the_state_refuses_an_unknown_broker_or_another_epoch() -> None:
    state = _state(1)
    with pytest.raises(IllegalRecordError, match="broker 5 is unknown"):
        state.apply(UnregisterBrokerRecord(5, 0))
    with pytest.raises(IllegalRecordError, match="broker epoch 1 is not the current one"):
        state.apply(UnregisterBrokerRecord(1, 1))
    assert list(state.brokers) == [1]


def test_an_unregistered_broker_registers_again_as_a_new_one() -> None:
    # What a live broker does on its next heartbeat (STALE_BROKER_EPOCH, then a registration).
    state = _state(1, 2)
    state.apply_entry(state.applied_index + 1, plan_unregister_broker(state, 2))
    again = controller.plan_register_broker(
        state, 2, "inc2b", "http://127.0.0.1:9002", "h:9102", session_alive=True
    )
    state.apply_entry(state.applied_index + 1, again)
    assert state.brokers[2].incarnation_id == "inc2b" and state.brokers[2].fenced


def test_broker_epochs_only_grow_across_an_unregistration_and_a_snapshot() -> None:
    state = _state(1, 2)
    for _ in range(2):  # epochs 1 and 2
        state.apply_entry(
            state.applied_index + 1,
            controller.plan_register_broker(
                state, 2, "inc2", "http://127.0.0.1:9002", "h:9102", session_alive=False
            ),
        )
    state.apply_entry(state.applied_index + 1, plan_unregister_broker(state, 2))
    assert state.unregistered_epochs == {2: 2}
    loaded = MetadataState.from_snapshot(state.to_snapshot())
    assert loaded.unregistered_epochs == {2: 2} and loaded.digest() == state.digest()
    (again,) = controller.plan_register_broker(
        loaded, 2, "inc2b", "http://127.0.0.1:9002", "h:9102", session_alive=False
    )
    assert isinstance(again, RegisterBrokerRecord) and again.broker_epoch == 3, (
        "a request of the old registration (epoch 0, 1 or 2) matches nothing"
    )
    loaded.apply_entry(loaded.applied_index + 1, [again])
    assert loaded.unregistered_epochs == {} and loaded.brokers[2].epoch == 3
    # A snapshot of a cluster that never unregistered anything keeps its bytes.
    assert b"unregistered" not in _state(1, 2).to_snapshot()


def test_a_journal_that_reused_an_epoch_after_an_unregistration_still_loads() -> None:
    # Written before the state remembered unregistered epochs: the id registered again at 0.
    state = _state(1, 2)
    state.apply_entry(state.applied_index + 1, [UnregisterBrokerRecord(2, 0)])
    reused = RegisterBrokerRecord(2, "inc2b", 0, "http://127.0.0.1:9002", "h:9102")
    state.apply_entry(state.applied_index + 1, [reused])
    assert state.brokers[2].epoch == 0


def test_the_record_checks_its_fields_and_round_trips() -> None:
    record = UnregisterBrokerRecord(4, 17)
    assert record.to_json_dict() == {
        "type": "unregister_broker",
        "v": 1,
        "broker_id": 4,
        "broker_epoch": 17,
    }
    assert decode(encode([record])) == [record]
    with pytest.raises(MetadataRecordError, match="broker_id must be in"):
        UnregisterBrokerRecord(-1, 0)
    with pytest.raises(MetadataRecordError, match="broker_epoch must be in"):
        UnregisterBrokerRecord(1, -1)
