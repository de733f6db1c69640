"""The broker id of a ``/v1/brokers/{broker}/...`` path, without sockets: a Java int that is
not negative, else 400 INVALID_REQUEST, never a 500 (a path of thousands of digits included)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from client.protocol import ApiError
from server.http_configs import requested_broker


def broker_of(raw: str) -> int:
    return requested_broker(
        make_mocked_request("GET", "/v1/brokers/x/configs", match_info={"broker": raw})
    )


def test_a_broker_id_in_range_is_taken() -> None:
    assert broker_of("0") == 0
    assert broker_of("2147483647") == 2**31 - 1


@pytest.mark.parametrize("raw", ["9" * 4301, "2147483648", "-1", "1.5", "٣", "x", ""])
def test_anything_else_is_invalid_request_naming_the_broker(raw: str) -> None:
    with pytest.raises(ApiError) as caught:
        broker_of(raw)
    assert caught.value.name == "INVALID_REQUEST" and "broker must be an integer" in str(
        caught.value.message
    )
    assert len(caught.value.message) < 200, "the path is not quoted back whole"
