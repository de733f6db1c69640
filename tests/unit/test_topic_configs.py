"""Topic configs are checked where they enter (a request, a node's defaults) with the same
ranges the log engine holds them to, so no accepted config can stop a partition opening."""

from __future__ import annotations

import pytest

from client.protocol import ApiError
from server.topic_configs import effective_configs, normalize_configs
from storage.log_config import LogConfig


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("segment.bytes", "3000000000", "must be at most 2147483647"),  # int32 index positions
        ("segment.bytes", "13", "must be at least 14"),
        ("flush.messages", "0", "must be at least 1"),
        ("flush.ms", str(2**63), "must be at most 9223372036854775807"),
        ("retention.ms", "soon", "expected an integer"),
        ("min.insync.replicas", "0", "must be at least 1"),
        ("cleanup.policy", "compact", "only delete is supported"),
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
