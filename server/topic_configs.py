"""Topic configs: which Kafka topic configs we support, their defaults and their checks.

A topic's effective config is Kafka's default, overridden by the node's broker-level default
(``log.retention.ms`` and friends in node.properties), overridden by the topic's own config
records. Values are strings, as in Kafka; numbers are accepted on input and stored as strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from client.protocol import INVALID_CONFIG, ApiError
from storage.log_config import FLUSH_NEVER


@dataclass(frozen=True)
class TopicConfigDef:
    default: str
    check: Callable[[str], str | None]  # returns a problem, or None when the value is fine
    doc: str


def _long(minimum: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            number = int(value)
        except ValueError:
            return f"expected an integer, got {value!r}"
        if number < minimum:
            return f"must be at least {minimum}, got {number}"
        if number > FLUSH_NEVER:
            return f"must be at most {FLUSH_NEVER} (a Java long), got {number}"
        return None

    return check


def _one_of(*allowed: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value not in allowed:
            return f"only {', '.join(allowed)} is supported, got {value!r}"
        return None

    return check


TOPIC_CONFIGS: dict[str, TopicConfigDef] = {
    "cleanup.policy": TopicConfigDef("delete", _one_of("delete"), "log compaction is not built"),
    "retention.ms": TopicConfigDef("604800000", _long(-1), "age after which segments go; -1 never"),
    "retention.bytes": TopicConfigDef("-1", _long(-1), "size above which old segments go"),
    "segment.bytes": TopicConfigDef("1073741824", _long(14), "size at which a segment rolls"),
    "segment.ms": TopicConfigDef("604800000", _long(1), "age at which a segment rolls"),
    "max.message.bytes": TopicConfigDef("1048588", _long(0), "largest record batch accepted"),
    "min.insync.replicas": TopicConfigDef("1", _long(1), "ISR size acks=all needs"),
    "index.interval.bytes": TopicConfigDef("4096", _long(0), "bytes between index entries"),
    "flush.messages": TopicConfigDef(
        "1", _long(1), "unflushed records that force an fsync; 1: fsynced before acknowledged"
    ),
    "flush.ms": TopicConfigDef(
        str(FLUSH_NEVER), _long(0), "age of the oldest unflushed record that forces an fsync"
    ),
    "message.timestamp.type": TopicConfigDef(
        "CreateTime", _one_of("CreateTime"), "the producer's timestamp is kept"
    ),
    "unclean.leader.election.enable": TopicConfigDef(
        "false", _one_of("false"), "only ISR members become leaders"
    ),
}


def normalize_configs(raw: object) -> dict[str, str]:
    """Checks a request's configs object; raises INVALID_CONFIG naming the bad entry."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(INVALID_CONFIG, "configs must be a JSON object of name to value")
    out: dict[str, str] = {}
    for name, value in raw.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            known = ", ".join(sorted(TOPIC_CONFIGS))
            raise ApiError(INVALID_CONFIG, f"unknown topic config {name!r} (supported: {known})")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ApiError(INVALID_CONFIG, f"config {name}: the value must be a string or number")
        text = str(value).strip()
        problem = definition.check(text)
        if problem:
            raise ApiError(INVALID_CONFIG, f"config {name}: {problem}")
        out[name] = text
    return out


def effective_configs(
    broker_defaults: Mapping[str, str], topic: Mapping[str, str]
) -> dict[str, str]:
    """Kafka's defaults, then the node's, then the topic's own."""
    merged = {name: d.default for name, d in TOPIC_CONFIGS.items()}
    merged.update({k: v for k, v in broker_defaults.items() if k in TOPIC_CONFIGS})
    merged.update(topic)
    return merged
