"""The broker registration carries the advertised KAFKA listener (issue 18), written only when
present: journals, snapshots and digests from before it keep their bytes."""

from __future__ import annotations

import pytest

from kraft.records import MetadataRecordError, RegisterBrokerRecord, decode, encode
from kraft.state import MetadataState
from server.controller import plan_register_broker

# A registration as a node from before the Kafka listener wrote it (and as one without a
# KAFKA listener still writes it).
OLD_ENTRY = (
    b'{"v":1,"records":[{"type":"register_broker","v":1,"broker_id":1,'
    b'"incarnation_id":"abc","broker_epoch":0,"http_url":"http://127.0.0.1:9092",'
    b'"raft_address":"127.0.0.1:9093","fenced":true}]}'
)


def test_an_old_registration_decodes_and_encodes_to_the_same_bytes() -> None:
    records = decode(OLD_ENTRY)
    assert records == [
        RegisterBrokerRecord(1, "abc", 0, "http://127.0.0.1:9092", "127.0.0.1:9093", True)
    ]
    assert isinstance(records[0], RegisterBrokerRecord) and records[0].kafka_address is None
    assert encode(records) == OLD_ENTRY


def test_a_registration_with_a_kafka_address_round_trips() -> None:
    record = RegisterBrokerRecord(
        1, "abc", 0, "http://127.0.0.1:9092", "", True, kafka_address="127.0.0.1:19092"
    )
    data = encode([record])
    assert b'"kafka_address":"127.0.0.1:19092"' in data
    assert decode(data) == [record]


@pytest.mark.parametrize("address", ["", "host", "host:0", "host:70000", ":9092", "h:x"])
def test_a_kafka_address_that_is_no_host_port_is_refused(address: str) -> None:
    with pytest.raises(MetadataRecordError, match="kafka_address"):
        RegisterBrokerRecord(1, "abc", 0, "http://h:1", "", True, kafka_address=address)


def _state_with(record: RegisterBrokerRecord) -> MetadataState:
    state = MetadataState()
    state.apply_entry(1, [record])
    return state


def test_a_snapshot_without_kafka_addresses_keeps_its_bytes_and_digest() -> None:
    old = RegisterBrokerRecord(1, "abc", 0, "http://127.0.0.1:9092", "127.0.0.1:9093", True)
    state = _state_with(old)
    snapshot = state.to_snapshot()
    assert b"kafka_address" not in snapshot
    loaded = MetadataState.from_snapshot(snapshot)
    assert loaded.to_snapshot() == snapshot
    assert loaded.digest() == state.digest()
    assert loaded.brokers[1].kafka_address is None


def test_a_snapshot_keeps_each_brokers_kafka_address() -> None:
    record = RegisterBrokerRecord(
        2, "abc", 0, "http://127.0.0.1:9094", "", True, kafka_address="kafka-2.lan:19094"
    )
    state = _state_with(record)
    loaded = MetadataState.from_snapshot(state.to_snapshot())
    assert loaded.brokers[2].kafka_address == "kafka-2.lan:19094"
    assert loaded.digest() == state.digest()


def test_a_registration_plan_carries_the_kafka_address_and_a_new_one_replaces_it() -> None:
    state = MetadataState()
    first = plan_register_broker(
        state, 1, "a", "http://127.0.0.1:9092", "", session_alive=False,
        kafka_address="127.0.0.1:19092",
    )  # fmt: skip
    state.apply_entry(1, first)
    assert state.brokers[1].kafka_address == "127.0.0.1:19092"
    # Restarted without a KAFKA listener: the registration says so, and Metadata leaves it out.
    again = plan_register_broker(state, 1, "b", "http://127.0.0.1:9092", "", session_alive=False)
    state.apply_entry(2, again)
    assert state.brokers[1].kafka_address is None
