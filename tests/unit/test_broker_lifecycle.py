"""The broker lifecycle's pauses: quick while starting (Kafka's STARTING state), the heartbeat
interval once unfenced, and a backoff when a starting broker cannot reach a controller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from client.protocol import LEADER_NOT_AVAILABLE, ApiError
from server import limits
from server.broker_lifecycle import BrokerLifecycle, next_pause_s

POLL = limits.BROKER_STARTING_POLL_S
HEARTBEAT = limits.BROKER_HEARTBEAT_INTERVAL_S


def test_a_starting_broker_asks_again_quickly_after_an_answer() -> None:
    assert next_pause_s(HEARTBEAT, answered=True, started=False) == POLL


def test_a_starting_broker_backs_off_by_doubling_up_to_the_heartbeat_interval() -> None:
    pauses = [POLL]
    for _ in range(8):
        pauses.append(next_pause_s(pauses[-1], answered=False, started=False))
    assert pauses[:4] == [POLL, 2 * POLL, 4 * POLL, 8 * POLL]
    assert max(pauses) == HEARTBEAT
    assert pauses[-1] == HEARTBEAT


def test_an_unfenced_broker_heartbeats_at_the_interval_whatever_happens() -> None:
    assert next_pause_s(POLL, answered=True, started=True) == HEARTBEAT
    assert next_pause_s(POLL, answered=False, started=True) == HEARTBEAT


class Stop(Exception):
    """Ends the lifecycle's loop once the test has seen enough pauses."""


def test_a_cold_start_waits_on_no_heartbeat_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    script: list[Any] = [
        ApiError(LEADER_NOT_AVAILABLE, "no metadata leader is known yet"),
        ApiError(LEADER_NOT_AVAILABLE, "the controller did not answer"),
        {"broker_epoch": 7},  # registered
        {"fenced": True},  # not caught up with its registration yet
        {"fenced": False},  # unfenced
        ApiError(LEADER_NOT_AVAILABLE, "the controller did not answer"),
    ]
    calls: list[str] = []
    pauses: list[float] = []
    unfenced: list[bool] = []

    async def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        calls.append(path)
        answer = script.pop(0)
        if isinstance(answer, ApiError):
            raise answer
        return dict(answer)

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if not script:
            raise Stop

    lifecycle = BrokerLifecycle(
        call,
        {"broker_id": 2, "incarnation_id": "i"},
        lambda: 0,
        lambda: unfenced.append(True),
        lambda reason: pytest.fail(reason),
    )
    monkeypatch.setattr("server.broker_lifecycle.asyncio.sleep", sleep)
    with pytest.raises(Stop):
        asyncio.run(lifecycle.run())

    assert pauses == [2 * POLL, 4 * POLL, POLL, HEARTBEAT, HEARTBEAT]
    assert calls[:3] == ["/v1/internal/brokers"] * 3
    assert calls[3:] == ["/v1/internal/brokers/2/heartbeat"] * 3
    assert unfenced == [True]
    assert lifecycle.unfenced_once and lifecycle.broker_epoch == 7
