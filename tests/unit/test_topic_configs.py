"""Topic configs are checked where they enter (a request, a node's defaults) with the same
ranges the log engine holds them to, so no accepted config can stop a partition opening."""

from __future__ import annotations

import pytest

from client.protocol import ApiError
from server.topic_configs import TOPIC_CONFIGS, effective_configs, normalize_configs
from storage.log_config import LONG_MAX, LogConfig


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("segment.bytes", "3000000000", "must be at most 2147483647"),  # int32 index positions
        ("segment.bytes", "13", "must be at least 14"),
        ("flush.messages", "0", "must be at least 1"),
        ("flush.ms", str(2**63), "must be at most 9223372036854775807"),
        ("retention.ms", "soon", "expected an integer"),
        ("min.insync.replicas", "0", "must be at least 1"),
        ("cleanup.policy", "compact,deleted", "expected delete, compact or compact,delete"),
        ("cleanup.policy", "", "expected delete, compact or compact,delete"),
        ("min.cleanable.dirty.ratio", "1.5", "must be between 0 and 1"),
        ("min.cleanable.dirty.ratio", "nan", "expected a number between 0 and 1"),
        ("min.cleanable.dirty.ratio", "0_5", "expected a number between 0 and 1"),
        ("min.cleanable.dirty.ratio", "-0.1", "must be between 0 and 1"),
        ("delete.retention.ms", "-1", "must be at least 0"),
        ("min.compaction.lag.ms", "-1", "must be at least 0"),
        ("max.compaction.lag.ms", "0", "must be at least 1"),
        ("retension.ms", "1", "unknown topic config 'retension.ms'"),
    ],
)
def test_a_bad_topic_config_is_refused_naming_it(name: str, value: str, problem: str) -> None:
    with pytest.raises(ApiError) as caught:
        normalize_configs({name: value})
    assert caught.value.name == "INVALID_CONFIG"
    assert problem in caught.value.message and name in caught.value.message


def test_the_defaults_are_the_log_engines_and_every_accepted_config_opens_a_log() -> None:
    defaults = effective_configs({}, {})
    assert LogConfig.from_topic_configs(defaults) == LogConfig()
    edges = {"segment.bytes": "2147483647", "flush.ms": "0", "retention.bytes": "-1"}
    assert LogConfig.from_topic_configs(normalize_configs(edges)).segment_bytes == 2**31 - 1


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("compact", "compact"),
        ("delete", "delete"),
        ("compact,delete", "compact,delete"),
        ("delete,compact", "compact,delete"),
        (" delete , compact ", "compact,delete"),
    ],
)
def test_cleanup_policy_takes_either_or_both_and_is_stored_normalized(
    given: str, stored: str
) -> None:
    assert normalize_configs({"cleanup.policy": given}) == {"cleanup.policy": stored}
    config = LogConfig.from_topic_configs(effective_configs({}, {"cleanup.policy": stored}))
    assert (config.compact, config.delete) == ("compact" in stored, "delete" in stored)


def test_the_compaction_configs_have_kafkas_defaults() -> None:
    assert {
        name: TOPIC_CONFIGS[name].default
        for name in (
            "cleanup.policy",
            "min.cleanable.dirty.ratio",
            "min.compaction.lag.ms",
            "max.compaction.lag.ms",
            "delete.retention.ms",
        )
    } == {
        "cleanup.policy": "delete",
        "min.cleanable.dirty.ratio": "0.5",
        "min.compaction.lag.ms": "0",
        "max.compaction.lag.ms": str(LONG_MAX),
        "delete.retention.ms": "86400000",
    }


def test_the_compaction_configs_reach_the_log_config() -> None:
    configs = normalize_configs(
        {
            "cleanup.policy": "compact",
            "min.cleanable.dirty.ratio": 0.25,  # a JSON number is taken for a decimal config
            "min.compaction.lag.ms": "1000",
            "max.compaction.lag.ms": 60000,
            "delete.retention.ms": "0",
        }
    )
    assert configs["min.cleanable.dirty.ratio"] == "0.25"
    config = LogConfig.from_topic_configs(effective_configs({}, configs))
    assert (
        config.cleanup_policy,
        config.min_cleanable_dirty_ratio,
        config.min_compaction_lag_ms,
        config.max_compaction_lag_ms,
        config.delete_retention_ms,
    ) == ("compact", 0.25, 1000, 60000, 0)


def _refused(
    raw: dict[str, object],
    existing: dict[str, str] | None = None,
    broker_defaults: dict[str, str] | None = None,
) -> str:
    with pytest.raises(ApiError) as caught:
        normalize_configs(raw, existing=existing, broker_defaults=broker_defaults)
    assert caught.value.name == "INVALID_CONFIG"
    return caught.value.message


def test_min_compaction_lag_above_max_is_refused_in_kafkas_words() -> None:
    message = _refused({"min.compaction.lag.ms": "5000", "max.compaction.lag.ms": "4000"})
    assert message == (
        "conflict topic config setting min.compaction.lag.ms (5000) > max.compaction.lag.ms (4000)"
    )
    assert normalize_configs({"min.compaction.lag.ms": "4000", "max.compaction.lag.ms": "4000"})


def test_the_lag_cross_check_sees_the_topics_other_configs_and_the_nodes_defaults() -> None:
    """Kafka checks the config a topic would have: one lag set now, the other set before (or
    by the node) still conflicts."""
    assert "(5000) > max.compaction.lag.ms (4000)" in _refused(
        {"min.compaction.lag.ms": "5000"}, existing={"max.compaction.lag.ms": "4000"}
    )
    assert "(7) > max.compaction.lag.ms (3)" in _refused(
        {"max.compaction.lag.ms": "3"}, broker_defaults={"min.compaction.lag.ms": "7"}
    )
    # The topic's own value wins over the node's default, as in the effective config.
    assert normalize_configs(
        {"max.compaction.lag.ms": "3"},
        existing={"min.compaction.lag.ms": "0"},
        broker_defaults={"min.compaction.lag.ms": "7"},
    ) == {"max.compaction.lag.ms": "3"}
