"""How an observer (a broker-only node) names itself on a Raft link, and how voters read it."""

from __future__ import annotations

import pytest

from kraft.transport import observer_hello, observer_id_of, observer_key, parse_observer_hello


def test_an_observer_names_itself_with_its_node_id() -> None:
    assert observer_key(4) == "observer 4"
    assert observer_id_of(observer_key(4)) == 4


@pytest.mark.parametrize(
    "message",
    [
        "readonly",
        "observer",
        "observer ",
        "observer -1",
        "observer 4x",
        "observer ٣",
        4,
        None,
        "observer 12345678901",
        "127.0.0.1:9093",
    ],
)
def test_anything_else_is_no_observer(message: object) -> None:
    assert observer_id_of(message) is None


def test_a_controller_waiting_to_be_added_says_its_raft_address_and_directory_id() -> None:
    base = ("127.0.0.1:9093", "127.0.0.1:9095")
    hello = observer_hello(6, ("127.0.0.1:9103", "J8kcWq2NT9ycFZ2Hvr5bOA", base))
    assert hello == (
        "observer 6 127.0.0.1:9103 J8kcWq2NT9ycFZ2Hvr5bOA 127.0.0.1:9093,127.0.0.1:9095"
    )
    assert parse_observer_hello(hello) == (
        6,
        ("127.0.0.1:9103", "J8kcWq2NT9ycFZ2Hvr5bOA", base),
    )
    assert observer_id_of(hello) == 6
    assert parse_observer_hello(observer_hello(4, None)) == (4, None)
    # A hello without the base voters (an older node): the leader refuses to add it.
    assert parse_observer_hello("observer 6 127.0.0.1:9103 D") == (6, ("127.0.0.1:9103", "D", ()))


@pytest.mark.parametrize(
    "message",
    [
        "observer 6 127.0.0.1:9103",
        "observer 6 nohost D",
        "observer 6 h:1 D extra",
        "observer 6 h:1 D h:2 extra",
        "observer 6  ",
    ],
)
def test_a_malformed_controller_hello_is_no_observer(message: str) -> None:
    assert parse_observer_hello(message) is None
