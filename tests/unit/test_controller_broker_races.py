"""A broker's registration and heartbeat on the controller when an unregistration lands while
they wait for a write: the answer is the registration's own epoch, or STALE_BROKER_EPOCH
(Kafka's answer to a registration that is no longer current), never a 500 from a lookup."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from client.protocol import ApiError
from kraft.records import MetadataRecord, UnregisterBrokerRecord
from kraft.state import MetadataState
from server.controller_driver import ControllerDriver
from tests.unit.test_controller_registration import LeadingQuorum, Plan

CLUSTER = "cluster-a"


class UnregisteringWrites:
    """Applies each plan's records; after the ``after``-th write, broker 4 is unregistered
    (an admin's DELETE /v1/brokers/4 committed while the caller awaited its write)."""

    def __init__(self, quorum: LeadingQuorum, after: int) -> None:
        self.quorum = quorum
        self.after = after
        self.count = 0

    async def __call__(self, plan: Plan, term: int | None) -> int | None:
        state = self.quorum.state
        records: list[MetadataRecord] = plan(state.copy())
        index = state.applied_index + 1
        state.apply_entry(index, records)
        self.count += 1
        if self.count == self.after:
            epoch = state.brokers[4].epoch
            state.apply_entry(state.applied_index + 1, [UnregisterBrokerRecord(4, epoch)])
        return index


def registration(incarnation: str = "inc-4") -> dict[str, Any]:
    return {
        "broker_id": 4,
        "incarnation_id": incarnation,
        "http_url": "http://127.0.0.1:9200",
        "raft_address": "127.0.0.1:9201",
        "cluster_id": CLUSTER,
    }


def driver_with(after: int) -> tuple[ControllerDriver, LeadingQuorum]:
    quorum = LeadingQuorum(state=MetadataState())
    writes = UnregisteringWrites(quorum, after)
    return ControllerDriver(quorum, CLUSTER, writes), quorum  # type: ignore[arg-type]


def test_a_registration_answers_its_own_epoch_though_an_unregistration_came_after() -> None:
    driver, quorum = driver_with(after=2)  # 1: the takeover record, 2: the registration
    answer = asyncio.run(driver.register(registration()))
    assert answer["broker_epoch"] == 0 and 4 not in quorum.state.brokers


def test_a_heartbeat_whose_unfencing_meets_an_unregistration_is_stale() -> None:
    driver, quorum = driver_with(after=3)  # 3: the unfencing, written by the heartbeat
    first = asyncio.run(driver.register(registration()))
    body = {
        "broker_epoch": first["broker_epoch"],
        "incarnation_id": "inc-4",
        "applied_index": first["registered_index"],
    }
    with pytest.raises(ApiError) as caught:
        asyncio.run(driver.heartbeat(4, body))
    assert caught.value.name == "STALE_BROKER_EPOCH"
    assert "broker 4 at epoch 0 is not registered" in caught.value.message
    # Registered again, the broker continues above its old epoch (Kafka's only grow).
    again = asyncio.run(driver.register(registration("inc-4b")))
    assert again["broker_epoch"] == 1
