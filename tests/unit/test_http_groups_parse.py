"""The heartbeat body's checks (server/http_groups.py): bad fields are a 400, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from client.protocol import INVALID_REQUEST, ApiError
from server.http_groups import parse_heartbeat


@pytest.mark.parametrize(
    "body",
    [
        {"member_epoch": None},
        {"member_epoch": "0"},
        {"member_epoch": -2},
        {"member_epoch": True},
        {},
    ],
)
def test_a_member_epoch_that_is_missing_null_or_not_an_epoch_is_an_invalid_request(
    body: dict[str, Any],
) -> None:
    with pytest.raises(ApiError) as caught:
        parse_heartbeat(body, "127.0.0.1")
    assert caught.value.kind == INVALID_REQUEST
    assert "member_epoch" in str(caught.value)


def test_a_join_needs_no_member_id() -> None:
    heartbeat = parse_heartbeat({"member_epoch": 0, "topics": ["t"]}, "127.0.0.1")
    assert (heartbeat.member_id, heartbeat.member_epoch, heartbeat.topics) == (None, 0, ("t",))
