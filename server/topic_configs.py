"""Topic configs: which Kafka topic configs we support, their defaults and their checks.

A topic's effective config is Kafka's default, overridden by the node's broker-level default
(``log.retention.ms`` and friends in node.properties), overridden by the topic's own config
records. Values are strings, as in Kafka; numbers are accepted on input and stored as strings,
``cleanup.policy`` in its normal form (``delete``, ``compact`` or ``compact,delete``).

Besides each value's own range, the effective config as a whole must hold Kafka's one
cross-check (``LogConfig.validateValues``): ``min.compaction.lag.ms`` is not above
``max.compaction.lag.ms``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from client.protocol import INVALID_CONFIG, ApiError
from server import limits
from server.replication_quota import (
    FOLLOWER_REPLICAS,
    LEADER_REPLICAS,
    normal_replica_list,
    replica_list_problem,
)
from storage.log_config import (
    CLEANUP_POLICY,
    COMPRESSION_TYPE,
    COMPRESSION_TYPES,
    LONG_MAX,
    MIN_CLEANABLE_DIRTY_RATIO,
    TOPIC_CONFIG_NAMES,
    LogConfig,
    default_setting,
    parse_cleanup_policy,
    parse_compression_type,
    parse_ratio,
    parse_setting,
)

# ASCII digits only: int() also takes "٣" (Arabic-Indic three), " 7" and "1_0". Twenty digits
# hold any long with room to say "too large" rather than "not a number".
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_QUOTED_CHARS_MAX = 24
# A decimal as Java's Double.parseDouble reads one, in ASCII (float() also takes "inf", "nan",
# "1_0" and other scripts' digits); a ratio needs no more than 32 characters.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_DECIMAL_CHARS_MAX = 32


def _shown(value: str) -> str:
    return repr(value[:_QUOTED_CHARS_MAX]) + ("..." if len(value) > _QUOTED_CHARS_MAX else "")


def _not_an_integer(value: str) -> str | None:
    if _INTEGER.fullmatch(value):
        return None
    return f"expected an integer, got {_shown(value)}"


def _same(value: str) -> str:
    return value


@dataclass(frozen=True)
class TopicConfigDef:
    default: str
    check: Callable[[str], str | None]  # returns a problem, or None when the value is fine
    doc: str
    # The form a valid value is stored in (cleanup.policy's order and spaces are Kafka's
    # free choice; a topic's config holds one spelling of each policy).
    normal: Callable[[str], str] = _same


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


def _policy(value: str) -> str | None:
    try:
        parse_cleanup_policy(value)
    except ValueError as e:
        return str(e)
    return None


def _compression_type(value: str) -> str | None:
    try:
        parse_compression_type(value)
    except ValueError as e:
        return str(e)
    return None


def _ratio(value: str) -> str | None:
    if len(value) > _DECIMAL_CHARS_MAX or not _DECIMAL.fullmatch(value):
        return f"expected a number between 0 and 1, got {_shown(value)}"
    try:
        parse_ratio(value)
    except ValueError as e:
        return str(e)
    return None


def _one_of(*allowed: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value not in allowed:
            return f"only {', '.join(allowed)} is supported, got {value!r}"
        return None

    return check


TOPIC_CONFIGS: dict[str, TopicConfigDef] = {
    CLEANUP_POLICY: TopicConfigDef(
        LogConfig().cleanup_policy,
        _policy,
        "delete, compact or compact,delete: old segments deleted, or each key's latest kept",
        parse_cleanup_policy,
    ),
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
    MIN_CLEANABLE_DIRTY_RATIO: TopicConfigDef(
        str(LogConfig().min_cleanable_dirty_ratio),
        _ratio,
        "share of a compacted log written since its last clean that makes it cleanable",
    ),
    "delete.retention.ms": _log_setting(
        "delete.retention.ms", "how long the cleaner keeps a tombstone it has seen"
    ),
    "min.compaction.lag.ms": _log_setting(
        "min.compaction.lag.ms", "a record younger than this is never compacted"
    ),
    "max.compaction.lag.ms": _log_setting(
        "max.compaction.lag.ms", "a record older than this is cleanable whatever the ratio"
    ),
    COMPRESSION_TYPE: TopicConfigDef(
        LogConfig().compression_type,
        _compression_type,
        f"{', '.join(COMPRESSION_TYPES)}: the codec batches are stored in; producer keeps "
        "each producer's own",
        parse_compression_type,
    ),
    "compression.gzip.level": _log_setting(
        "compression.gzip.level", "gzip level the leader compresses with: -1 (6) or 1..9"
    ),
    "compression.lz4.level": _log_setting(
        "compression.lz4.level", "lz4 level the leader compresses with: 1..17"
    ),
    "compression.zstd.level": _log_setting(
        "compression.zstd.level", "zstd level the leader compresses with: -131072..22"
    ),
    "message.timestamp.type": TopicConfigDef(
        "CreateTime", _one_of("CreateTime"), "the producer's timestamp is kept"
    ),
    "unclean.leader.election.enable": TopicConfigDef(
        "false", _one_of("false"), "only ISR members become leaders"
    ),
    LEADER_REPLICAS: TopicConfigDef(
        "",
        lambda value: replica_list_problem(LEADER_REPLICAS, value),
        "replicas (partition:broker, or *) whose leader throttles followers out of the ISR "
        "to the broker's leader.replication.throttled.rate",
        normal_replica_list,
    ),
    FOLLOWER_REPLICAS: TopicConfigDef(
        "",
        lambda value: replica_list_problem(FOLLOWER_REPLICAS, value),
        "replicas (partition:broker, or *) whose follower fetches at most the broker's "
        "follower.replication.throttled.rate while it catches up",
        normal_replica_list,
    ),
}
assert TOPIC_CONFIG_NAMES <= TOPIC_CONFIGS.keys(), "every log setting is a topic config"


def conflict_problem(configs: Mapping[str, str]) -> str | None:
    """Kafka's cross-check of an effective topic config (``LogConfig.validateValues``, in its
    words), or None: ``min.compaction.lag.ms`` may not be above ``max.compaction.lag.ms``.
    ``configs`` holds every config (:func:`effective_configs`), each value already checked."""
    low = int(configs["min.compaction.lag.ms"])
    high = int(configs["max.compaction.lag.ms"])
    if low > high:
        return (
            f"conflict topic config setting min.compaction.lag.ms ({low}) > "
            f"max.compaction.lag.ms ({high})"
        )
    return None


def normalize_configs(
    raw: object,
    *,
    socket_request_max_bytes: int = limits.SOCKET_REQUEST_MAX_BYTES,
    existing: Mapping[str, str] | None = None,
    broker_defaults: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Checks a request's configs object; returns them in their stored form, or raises
    INVALID_CONFIG naming the bad entry.

    ``max.message.bytes`` may not pass the node's ``socket.request.max.bytes``: no request
    could carry such a batch (issue 11: 2147483647 was accepted, then a 100 MB produce took
    the leader to 768 MB). The topic's config with these set on top of ``existing`` (the
    topic's own configs that stay, for an alter) and ``broker_defaults`` (the node's) must
    pass :func:`conflict_problem`, as Kafka checks the merged config."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(INVALID_CONFIG, "configs must be a JSON object of name to value")
    out: dict[str, str] = {}
    for name, value in raw.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            known = ", ".join(sorted(TOPIC_CONFIGS))
            raise ApiError(
                INVALID_CONFIG, f"unknown topic config {_shown(name)} (supported: {known})"
            )
        if name == MIN_CLEANABLE_DIRTY_RATIO and isinstance(value, float):
            value = repr(value)  # a decimal config: JSON's number is its natural form
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
        out[name] = definition.normal(text)
    problem = conflict_problem(
        effective_configs(broker_defaults or {}, {**(existing or {}), **out})
    )
    if problem:
        raise ApiError(INVALID_CONFIG, problem)
    return out


def effective_configs(
    broker_defaults: Mapping[str, str], topic: Mapping[str, str]
) -> dict[str, str]:
    """Kafka's defaults, then the node's, then the topic's own."""
    merged = {name: d.default for name, d in TOPIC_CONFIGS.items()}
    merged.update({k: v for k, v in broker_defaults.items() if k in TOPIC_CONFIGS})
    merged.update(topic)
    return merged
