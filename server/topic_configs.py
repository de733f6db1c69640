"""Topic configs: which Kafka topic configs we support, their defaults and their checks.

A topic's effective config is Kafka's default, overridden by the node's broker-level default
(``log.retention.ms`` and friends in node.properties), overridden by the topic's own config
records. Values are strings, as in Kafka; numbers are accepted on input and stored as strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from client.protocol import INVALID_CONFIG, ApiError
from server import limits
from storage.log_config import INTEGER_CONFIG_NAMES, LONG_MAX, default_setting, parse_setting

# ASCII digits only: int() also takes "٣" (Arabic-Indic three), " 7" and "1_0". Twenty digits
# hold any long with room to say "too large" rather than "not a number".
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_QUOTED_CHARS_MAX = 24


def _not_an_integer(value: str) -> str | None:
    if _INTEGER.fullmatch(value):
        return None
    shown = repr(value[:_QUOTED_CHARS_MAX]) + ("..." if len(value) > _QUOTED_CHARS_MAX else "")
    return f"expected an integer, got {shown}"


@dataclass(frozen=True)
class TopicConfigDef:
    default: str
    check: Callable[[str], str | None]  # returns a problem, or None when the value is fine
    doc: str


def _log_setting(name: str, doc: str) -> TopicConfigDef:
    """A config the log engine obeys: its default and range are the log's own."""

    def check(value: str) -> str | None:
        problem = _not_an_integer(value)
        if problem:
            return problem
        try:
            parse_setting(name, value)
        except ValueError as e:
            return str(e)
        return None

    return TopicConfigDef(str(default_setting(name)), check, doc)


def _long(minimum: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        problem = _not_an_integer(value)
        if problem:
            return problem
        number = int(value)
        if number < minimum:
            return f"must be at least {minimum}, got {number}"
        if number > LONG_MAX:
            return f"must be at most {LONG_MAX} (a Java long), got {number}"
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
    "retention.ms": _log_setting("retention.ms", "age after which segments go; -1 never"),
    "retention.bytes": _log_setting("retention.bytes", "size above which old segments go"),
    "segment.bytes": _log_setting("segment.bytes", "size at which a segment rolls"),
    "segment.ms": _log_setting("segment.ms", "age at which a segment rolls"),
    "max.message.bytes": _log_setting("max.message.bytes", "largest record batch accepted"),
    "min.insync.replicas": TopicConfigDef("1", _long(1), "ISR size acks=all needs"),
    "index.interval.bytes": _log_setting("index.interval.bytes", "bytes between index entries"),
    "flush.messages": _log_setting(
        "flush.messages", "unflushed records that force an fsync; 1: fsynced before acknowledged"
    ),
    "flush.ms": _log_setting("flush.ms", "age of the oldest unflushed record that forces an fsync"),
    "message.timestamp.type": TopicConfigDef(
        "CreateTime", _one_of("CreateTime"), "the producer's timestamp is kept"
    ),
    "unclean.leader.election.enable": TopicConfigDef(
        "false", _one_of("false"), "only ISR members become leaders"
    ),
}
# The compaction settings are not topic configs yet (cleanup.policy takes only delete).
_NOT_YET = {"delete.retention.ms", "min.compaction.lag.ms", "max.compaction.lag.ms"}
assert INTEGER_CONFIG_NAMES - _NOT_YET <= TOPIC_CONFIGS.keys(), "every log setting is a config"


def normalize_configs(
    raw: object, *, socket_request_max_bytes: int = limits.SOCKET_REQUEST_MAX_BYTES
) -> dict[str, str]:
    """Checks a request's configs object; raises INVALID_CONFIG naming the bad entry.

    ``max.message.bytes`` may not pass the node's ``socket.request.max.bytes``: no request
    could carry such a batch (issue 11: 2147483647 was accepted, then a 100 MB produce took
    the leader to 768 MB)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(INVALID_CONFIG, "configs must be a JSON object of name to value")
    out: dict[str, str] = {}
    for name, value in raw.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            known = ", ".join(sorted(TOPIC_CONFIGS))
            shown = repr(name[:_QUOTED_CHARS_MAX]) + (
                "..." if len(name) > _QUOTED_CHARS_MAX else ""
            )
            raise ApiError(INVALID_CONFIG, f"unknown topic config {shown} (supported: {known})")
        # A float is refused whole: orjson reads an integer beyond 64 bits as one, and its
        # digits are not the number the client sent.
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ApiError(
                INVALID_CONFIG, f"config {name}: the value must be a string or an integer"
            )
        text = str(value).strip()
        problem = definition.check(text)
        if problem:
            raise ApiError(INVALID_CONFIG, f"config {name}: {problem}")
        if name == "max.message.bytes" and int(text) > socket_request_max_bytes:
            raise ApiError(
                INVALID_CONFIG,
                f"config max.message.bytes: {text} is above socket.request.max.bytes "
                f"({socket_request_max_bytes}), the largest request a node reads: no produce "
                "could carry such a batch",
            )
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
