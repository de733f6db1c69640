"""The admin client's rules that need no cluster: retries to the api timeout, backoff, offset
specs, Kafka's admin properties, and the broker/topic config entries the server describes."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from client.admin import (
    Admin,
    AsyncAdmin,
    admin_options,
    backoff_s,
    is_retriable,
    offset_spec_timestamp,
)
from client.client import KraftClient, TransportError
from client.protocol import (
    COORDINATOR_LOAD_IN_PROGRESS,
    GROUP_ID_NOT_FOUND,
    NON_EMPTY_GROUP,
    ApiError,
)
from server.config import NodeConfig
from server.http_configs import broker_config_entries, topic_config_entries


def test_offset_specs_are_kafkas_timestamps() -> None:
    assert offset_spec_timestamp("earliest") == -2
    assert offset_spec_timestamp("LATEST") == -1
    assert offset_spec_timestamp("1000") == 1000
    assert offset_spec_timestamp(0) == 0
    with pytest.raises(ValueError):
        offset_spec_timestamp("-3")
    with pytest.raises(ValueError):
        offset_spec_timestamp("soon")


def test_backoff_doubles_to_its_cap_and_honours_retry_after() -> None:
    plain = TransportError("down")
    assert [backoff_s(n, plain, 100, 1000) for n in range(5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    told = ApiError(COORDINATOR_LOAD_IN_PROGRESS, "loading", {"retry_after_s": 0.5})
    assert backoff_s(0, told, 100, 1000) == 0.5
    # A Retry-After larger than the cap the tools honour is cut down to it.
    assert (
        backoff_s(0, ApiError(COORDINATOR_LOAD_IN_PROGRESS, "", {"retry_after_s": 99}), 1, 2) == 2.0
    )


def test_which_errors_are_retried() -> None:
    assert is_retriable(TransportError("no answer"))
    assert is_retriable(ApiError(COORDINATOR_LOAD_IN_PROGRESS, ""))
    assert not is_retriable(ApiError(NON_EMPTY_GROUP, ""))
    assert not is_retriable(ApiError(GROUP_ID_NOT_FOUND, ""))


def test_admin_properties_from_a_command_config() -> None:
    assert admin_options(
        {"default.api.timeout.ms": "5000", "retry.backoff.ms": "50", "x": "y"}
    ) == {
        "default_api_timeout_ms": 5000,
        "retry_backoff_ms": 50,
    }
    with pytest.raises(ValueError, match="request.timeout.ms"):
        admin_options({"request.timeout.ms": "soon"})


def _admin(timeout_ms: int) -> AsyncAdmin:
    admin = AsyncAdmin(
        "127.0.0.1:1", default_api_timeout_ms=timeout_ms, retry_backoff_ms=1, retry_backoff_max_ms=5
    )
    admin._opened = True  # the calls below never touch the session
    return admin


def test_a_retriable_error_is_retried_until_the_call_succeeds() -> None:
    tries: list[int] = []

    async def call(_client: KraftClient) -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ApiError(COORDINATOR_LOAD_IN_PROGRESS, "loading")
        return "done"

    assert asyncio.run(_admin(60_000)._retrying(call)) == "done"
    assert len(tries) == 3


def test_a_fatal_error_is_raised_at_once() -> None:
    tries: list[int] = []

    async def call(_client: KraftClient) -> Any:
        tries.append(1)
        raise ApiError(NON_EMPTY_GROUP, "members")

    with pytest.raises(ApiError) as info:
        asyncio.run(_admin(60_000)._retrying(call))
    assert info.value.code == NON_EMPTY_GROUP.code
    assert len(tries) == 1


def test_retries_stop_at_the_api_timeout_with_the_last_error() -> None:
    tries: list[int] = []

    async def call(_client: KraftClient) -> Any:
        tries.append(1)
        raise TransportError(f"try {len(tries)}")

    with pytest.raises(TransportError) as info:
        asyncio.run(_admin(30)._retrying(call))
    assert len(tries) >= 2
    assert str(info.value) == f"try {len(tries)}"


# -- the server's config entries (server/http_configs.py, pure functions) ------------------------


def _node_config(tmp_path: Path, **extra: str) -> NodeConfig:
    return NodeConfig.from_properties(
        {
            "node.id": "1",
            "process.roles": "broker,controller",
            "controller.quorum.voters": "1@127.0.0.1:9093",
            "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            "log.dirs": str(tmp_path),
            **extra,
        }
    )


def _by_name(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in entries}


def test_broker_entries_say_where_each_value_comes_from(tmp_path: Path) -> None:
    config = _node_config(tmp_path, **{"num.partitions": "3", "log.retention.hours": "1"})
    entries = _by_name(broker_config_entries(config, {}, {}))
    assert entries["num.partitions"]["source"] == "STATIC_BROKER_CONFIG"
    assert entries["num.partitions"]["synonyms"] == [
        {"name": "num.partitions", "value": "3", "source": "STATIC_BROKER_CONFIG"},
        {"name": "num.partitions", "value": "1", "source": "DEFAULT_CONFIG"},
    ]
    assert entries["default.replication.factor"]["source"] == "DEFAULT_CONFIG"
    assert entries["log.retention.ms"]["value"] == "3600000"
    assert entries["log.retention.ms"]["source"] == "STATIC_BROKER_CONFIG"


def test_dynamic_broker_records_come_first(tmp_path: Path) -> None:
    entries = _by_name(broker_config_entries(_node_config(tmp_path), {"x.y": "1"}, {"x.y": "2"}))
    assert [s["source"] for s in entries["x.y"]["synonyms"]] == [
        "DYNAMIC_BROKER_CONFIG",
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    ]
    assert entries["x.y"]["value"] == "1"


def test_a_sensitive_broker_config_shows_no_value(tmp_path: Path) -> None:
    entries = _by_name(broker_config_entries(_node_config(tmp_path), {}, {}))
    assert entries["ssl.key.password"]["sensitive"] is True
    assert all(s["value"] is None for s in entries["ssl.key.password"]["synonyms"])


def test_topic_entries_list_the_topic_then_the_node_then_kafkas_default() -> None:
    entries = _by_name(topic_config_entries({"retention.ms": "1000"}, {"retention.ms": "5000"}))
    assert entries["retention.ms"]["value"] == "1000"
    assert entries["retention.ms"]["synonyms"] == [
        {"name": "retention.ms", "value": "1000", "source": "DYNAMIC_TOPIC_CONFIG"},
        {"name": "log.retention.ms", "value": "5000", "source": "STATIC_BROKER_CONFIG"},
        {"name": "log.retention.ms", "value": "604800000", "source": "DEFAULT_CONFIG"},
    ]
    assert entries["min.insync.replicas"]["source"] == "DEFAULT_CONFIG"


def test_bad_settings_are_refused_before_anything_starts() -> None:
    before = threading.active_count()
    with pytest.raises(ValueError, match="must be host:port"):
        Admin("localhost")
    with pytest.raises(ValueError, match="retry.backoff.ms"):
        Admin("localhost:9092", retry_backoff_ms=10, retry_backoff_max_ms=1)
    assert threading.active_count() == before
