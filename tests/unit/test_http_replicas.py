"""GET /v1/brokers/{broker}/replicas about this node: a fenced broker is a 404, as it is when
another node is asked about it."""

from __future__ import annotations

from client.protocol import NOT_FOUND
from kraft.records import FenceBrokerRecord, RegisterBrokerRecord
from kraft.state import MetadataState
from server.http_replicas import fenced_broker_error


def brokers() -> MetadataState:
    state = MetadataState()
    state.apply_entry(
        1,
        [
            RegisterBrokerRecord(b, "i", 1, f"http://127.0.0.1:{9090 + b}", "h:1", fenced=False)
            for b in (1, 2)
        ],
    )
    return state


def test_an_unfenced_broker_may_describe_itself() -> None:
    assert fenced_broker_error(brokers(), 1) is None


def test_a_fenced_broker_is_a_404() -> None:
    state = brokers()
    state.apply_entry(2, [FenceBrokerRecord(2, 1)])
    error = fenced_broker_error(state, 2)
    assert error is not None
    assert error.kind == NOT_FOUND
    assert error.message == "broker 2 is fenced: it cannot describe itself"
    assert fenced_broker_error(state, 1) is None


def test_a_broker_not_registered_yet_is_left_to_the_readiness_check() -> None:
    assert fenced_broker_error(brokers(), 7) is None
