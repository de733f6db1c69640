"""How an observer (a broker-only node) names itself on a Raft link, and how voters read it."""

from __future__ import annotations

import pytest

from kraft.transport import observer_id_of, observer_key


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
