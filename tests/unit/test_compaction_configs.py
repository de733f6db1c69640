"""The compaction configs as the describe routes show them: each with its source and the
node-wide setting it falls back to, and the cleaner's node settings among a broker's configs."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from server.config import NodeConfig
from server.http_configs import broker_config_entries, java_double, topic_config_entries

BASE = {
    "node.id": "1",
    "controller.quorum.voters": "1@127.0.0.1:9093",
    "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
}


def _by_name(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in entries}


def test_a_topics_describe_shows_the_compaction_configs_with_kafkas_defaults() -> None:
    entries = _by_name(topic_config_entries({}, {}))
    assert {
        name: (
            entries[name]["value"],
            entries[name]["source"],
            entries[name]["synonyms"][0]["name"],
        )
        for name in (
            "cleanup.policy",
            "min.cleanable.dirty.ratio",
            "min.compaction.lag.ms",
            "max.compaction.lag.ms",
            "delete.retention.ms",
        )
    } == {
        "cleanup.policy": ("delete", "DEFAULT_CONFIG", "log.cleanup.policy"),
        "min.cleanable.dirty.ratio": ("0.5", "DEFAULT_CONFIG", "log.cleaner.min.cleanable.ratio"),
        "min.compaction.lag.ms": ("0", "DEFAULT_CONFIG", "log.cleaner.min.compaction.lag.ms"),
        "max.compaction.lag.ms": (
            "9223372036854775807",
            "DEFAULT_CONFIG",
            "log.cleaner.max.compaction.lag.ms",
        ),
        "delete.retention.ms": ("86400000", "DEFAULT_CONFIG", "log.cleaner.delete.retention.ms"),
    }


def test_a_topics_policy_comes_from_its_own_config_then_the_nodes_default() -> None:
    config = NodeConfig.from_properties(BASE | {"log.cleanup.policy": "compact"})
    node_default = _by_name(topic_config_entries({}, config.topic_defaults))["cleanup.policy"]
    assert (node_default["value"], node_default["source"]) == ("compact", "STATIC_BROKER_CONFIG")
    own = _by_name(topic_config_entries({"cleanup.policy": "compact,delete"}, {}))
    assert [(s["source"], s["value"]) for s in own["cleanup.policy"]["synonyms"]] == [
        ("DYNAMIC_TOPIC_CONFIG", "compact,delete"),
        ("DEFAULT_CONFIG", "delete"),
    ]


def test_a_brokers_describe_shows_the_cleaners_settings() -> None:
    default = _by_name(broker_config_entries(NodeConfig.from_properties(BASE), {}, {}))
    assert {
        name: (default[name]["value"], default[name]["source"])
        for name in (
            "log.cleaner.enable",
            "log.cleaner.threads",
            "log.cleaner.io.max.bytes.per.second",
            "log.cleaner.dedupe.buffer.size",
            "log.cleaner.io.buffer.size",
            "log.cleaner.backoff.ms",
            "log.cleanup.policy",
            "log.cleaner.min.cleanable.ratio",
            "offsets.topic.segment.bytes",
        )
    } == {
        "log.cleaner.enable": ("true", "DEFAULT_CONFIG"),
        "log.cleaner.threads": ("1", "DEFAULT_CONFIG"),
        "log.cleaner.io.max.bytes.per.second": ("1.7976931348623157E308", "DEFAULT_CONFIG"),
        "log.cleaner.dedupe.buffer.size": ("134217728", "DEFAULT_CONFIG"),
        "log.cleaner.io.buffer.size": ("524288", "DEFAULT_CONFIG"),
        "log.cleaner.backoff.ms": ("15000", "DEFAULT_CONFIG"),
        "log.cleanup.policy": ("delete", "DEFAULT_CONFIG"),
        "log.cleaner.min.cleanable.ratio": ("0.5", "DEFAULT_CONFIG"),
        "offsets.topic.segment.bytes": ("104857600", "DEFAULT_CONFIG"),
    }
    throttled = NodeConfig.from_properties(
        BASE | {"log.cleaner.io.max.bytes.per.second": "1e7", "log.cleaner.threads": "2"}
    )
    entries = _by_name(broker_config_entries(throttled, {}, {}))
    assert entries["log.cleaner.io.max.bytes.per.second"]["synonyms"] == [
        {
            "name": "log.cleaner.io.max.bytes.per.second",
            "value": "1.0E7",
            "source": "STATIC_BROKER_CONFIG",
        },
        {
            "name": "log.cleaner.io.max.bytes.per.second",
            "value": "1.7976931348623157E308",
            "source": "DEFAULT_CONFIG",
        },
    ]
    assert entries["log.cleaner.threads"]["value"] == "2"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (sys.float_info.max, "1.7976931348623157E308"),
        (1e7, "1.0E7"),
        (1048576.0, "1048576.0"),
        (0.5, "0.5"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1.5e20, "1.5E20"),
        (0.0, "0.0"),
    ],
)
def test_a_double_is_written_as_java_writes_it(value: float, text: str) -> None:
    assert java_double(value) == text
