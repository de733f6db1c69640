"""RegisterControllerRecord and the state's controllers: where every node finds the active
controller's HTTP URL, even when that controller holds no partitions."""

from __future__ import annotations

import orjson
import pytest

from kraft.errors import MetadataRecordError
from kraft.records import RegisterControllerRecord, TopicRecord, decode, encode
from kraft.state import ControllerState, MetadataState

TID = "x5Ujx2PtQ1C2rkC8-XNMZA"


def test_register_controller_round_trips_as_documented_json() -> None:
    record = RegisterControllerRecord(1, "inc-1", "http://127.0.0.1:9092", "127.0.0.1:9093")
    data = encode([record])
    assert orjson.loads(data)["records"] == [
        {
            "type": "register_controller",
            "v": 1,
            "controller_id": 1,
            "incarnation_id": "inc-1",
            "http_url": "http://127.0.0.1:9092",
            "raft_address": "127.0.0.1:9093",
        }
    ]
    assert decode(data) == [record]


@pytest.mark.parametrize(
    "args, problem",
    [
        ((-1, "i", "http://h:1", "h:2"), "controller_id"),
        ((1, "", "http://h:1", "h:2"), "incarnation_id"),
        ((1, "i", "ftp://h:1", "h:2"), "http_url"),
        ((1, "i", "http://h:1", "h"), "raft_address"),
    ],
)
def test_register_controller_checks_its_fields(
    args: tuple[int, str, str, str], problem: str
) -> None:
    with pytest.raises(MetadataRecordError, match=problem):
        RegisterControllerRecord(*args)


def test_a_new_registration_of_a_controller_replaces_the_previous_one() -> None:
    state = MetadataState()
    state.apply_entry(1, [RegisterControllerRecord(1, "a", "http://h:1", "h:2")])
    state.apply_entry(2, [RegisterControllerRecord(2, "b", "http://h:3", "h:4")])
    state.apply_entry(3, [RegisterControllerRecord(1, "c", "http://h:5", "h:2")])
    assert dict(state.controllers) == {
        1: ControllerState(1, "c", "http://h:5", "h:2"),
        2: ControllerState(2, "b", "http://h:3", "h:4"),
    }
    assert state.brokers == {}  # a controller is not a broker


def test_controllers_survive_a_snapshot_and_copies_do_not_see_later_ones() -> None:
    state = MetadataState()
    state.apply_entry(1, [RegisterControllerRecord(1, "a", "http://h:1", "h:2")])
    copy = state.copy()
    state.apply_entry(2, [RegisterControllerRecord(2, "b", "http://h:3", "h:4")])
    assert set(copy.controllers) == {1}
    loaded = MetadataState.from_snapshot(state.to_snapshot())
    assert loaded == state and dict(loaded.controllers) == dict(state.controllers)
    assert loaded.digest() == state.digest()


def test_a_state_without_controllers_keeps_the_snapshot_it_had_before_them() -> None:
    state = MetadataState()
    state.apply_entry(1, [TopicRecord("news", TID)])
    assert b"controllers" not in state.to_snapshot()


def test_a_snapshot_naming_a_controller_twice_is_refused() -> None:
    state = MetadataState()
    state.apply_entry(1, [RegisterControllerRecord(1, "a", "http://h:1", "h:2")])
    obj = orjson.loads(state.to_snapshot())
    obj["controllers"] = obj["controllers"] * 2
    with pytest.raises(Exception, match="appears twice"):
        MetadataState.from_snapshot(orjson.dumps(obj))
