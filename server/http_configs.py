"""Kafka's DescribeConfigs over HTTP: every config of a topic or a broker with its source.

``GET /v1/topics/{topic}/configs`` answers a topic's effective configs as a map; Kafka's
kafka-configs.sh also prints where each value comes from (``sensitive=false
synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000, DEFAULT_CONFIG:log.retention.ms=...}``), which
these two routes give::

    GET /v1/topics/{topic}/configs/entries
    GET /v1/brokers/{broker}/configs
    -> {"resource_type", "resource_name", "configs": [{"name", "value", "source", "sensitive",
        "read_only", "synonyms": [{"name", "value", "source"}]}]}

Sources are Kafka's, most specific first: DYNAMIC_TOPIC_CONFIG (the topic's own config record),
DYNAMIC_BROKER_CONFIG / DYNAMIC_DEFAULT_BROKER_CONFIG (broker config records of the metadata
log), STATIC_BROKER_CONFIG (the node's properties file, where the value differs from the
default: the node keeps values, not which lines were written), DEFAULT_CONFIG.

A broker's static configs are known only to that broker, so a node asked about another broker
answers 307 to it (as Kafka sends DescribeConfigs of a broker to that broker).

Two broker configs are dynamic, the replication throttle rates (``server/replication_quota.py``)::

    PUT /v1/brokers/{broker}/configs
    {"configs": {"leader.replication.throttled.rate": "1000000",
                 "follower.replication.throttled.rate": null}}      # null: back to the default
    -> {"configs": {the broker's dynamic configs, by name}}

It is a metadata write (a broker ConfigRecord), so any node takes it (forwarded to the
controller); every broker applies the new rate when it applies the record. Every other broker
config is read-only here (nothing applies a changed one to a running node): a request naming
one is refused whole, in Kafka's words ("Cannot update these configs dynamically: ...",
"Unknown config name: ...").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from client.protocol import INVALID_CONFIG, INVALID_REQUEST, NOT_FOUND, ApiError
from kraft.records import ConfigRecord, MetadataRecord
from kraft.state import MetadataState
from server.config import DEFAULT_LOG_DIR, NodeConfig
from server.http_records import node_of
from server.http_util import json_response, path_int
from server.node import Node
from server.replication_quota import (
    FOLLOWER_REPLICAS,
    LEADER_REPLICAS,
    LONG_MAX,
    RATES,
    REPLICA_LISTS,
    rate_problem,
)
from server.topic_configs import TOPIC_CONFIGS

# A topic config's broker-wide synonym (Kafka's LogConfig synonyms, in the unit we store).
TOPIC_BROKER_SYNONYMS = {
    "cleanup.policy": "log.cleanup.policy",
    "retention.ms": "log.retention.ms",
    "retention.bytes": "log.retention.bytes",
    "segment.bytes": "log.segment.bytes",
    "segment.ms": "log.roll.ms",
    "max.message.bytes": "message.max.bytes",
    "min.insync.replicas": "min.insync.replicas",
    "index.interval.bytes": "log.index.interval.bytes",
    "flush.messages": "log.flush.interval.messages",
    "flush.ms": "log.flush.interval.ms",
    "message.timestamp.type": "log.message.timestamp.type",
    "unclean.leader.election.enable": "unclean.leader.election.enable",
    "min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
    "delete.retention.ms": "log.cleaner.delete.retention.ms",
    "min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms",
    "max.compaction.lag.ms": "log.cleaner.max.compaction.lag.ms",
    # Kafka's broker settings of these have the topic's names.
    "compression.type": "compression.type",
    "compression.gzip.level": "compression.gzip.level",
    "compression.lz4.level": "compression.lz4.level",
    "compression.zstd.level": "compression.zstd.level",
    # Topic-only in Kafka (no broker-wide synonym): they name themselves.
    LEADER_REPLICAS: LEADER_REPLICAS,
    FOLLOWER_REPLICAS: FOLLOWER_REPLICAS,
}

# Kafka's password-type settings: described with a null value, as Kafka does.
_SENSITIVE = frozenset({"ssl.key.password"})


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    return "" if value is None else str(value)


def java_double(value: float) -> str:
    """A double as Java's Double.toString writes it (Kafka describes its double settings so):
    the shortest digits that read back, in E notation below 1e-3 and from 1e7 on
    (``1.7976931348623157E308``, ``1048576.0``, ``1.0E7``)."""
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    mantissa, _, exponent = f"{value!r}".partition("e")
    if not exponent:  # repr wrote it out in full (1e7 .. 1e16): write it as E notation
        mantissa, _, exponent = f"{value:.16e}".partition("e")
        mantissa = repr(float(mantissa))
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{int(exponent)}"


# A broker config's Kafka name and how to read it from the node's config.
_BROKER_FIELDS: dict[str, Callable[[NodeConfig], object]] = {
    "node.id": lambda c: c.node_id,
    "listeners": lambda c: c.listeners,
    "advertised.listeners": lambda c: c.advertised_listeners,
    "log.dirs": lambda c: c.log_dir,
    "num.partitions": lambda c: c.num_partitions,
    "default.replication.factor": lambda c: c.default_replication_factor,
    "log.retention.check.interval.ms": lambda c: c.retention_check_interval_ms,
    "replica.lag.time.max.ms": lambda c: c.replica_lag_time_max_ms,
    "http.max.request.bytes": lambda c: c.max_request_bytes,
    "socket.request.max.bytes": lambda c: c.socket_request_max_bytes,
    "queued.max.request.bytes": lambda c: c.queued_max_request_bytes,
    "max.connections": lambda c: c.max_connections,
    "max.connections.per.ip": lambda c: c.max_connections_per_ip,
    "connections.max.idle.ms": lambda c: c.connections_max_idle_ms,
    "http.request.read.timeout.ms": lambda c: c.request_read_timeout_ms,
    "auto.leader.rebalance.enable": lambda c: c.auto_leader_rebalance_enable,
    "leader.imbalance.check.interval.seconds": lambda c: c.leader_imbalance_check_interval_s,
    "leader.imbalance.per.broker.percentage": lambda c: c.leader_imbalance_per_broker_percentage,
    "auto.create.topics.enable": lambda c: c.auto_create_topics_enable,
    "authorizer.class.name": lambda c: (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer" if c.authorizer_enabled else ""
    ),
    "super.users": lambda c: ";".join(sorted(c.super_users)),
    "allow.everyone.if.no.acl.found": lambda c: c.allow_everyone_if_no_acl_found,
    "ssl.key.password": lambda c: c.ssl_key_password,
    "offsets.topic.num.partitions": lambda c: c.groups.offsets_topic_partitions,
    "offsets.topic.replication.factor": lambda c: c.groups.offsets_topic_replication_factor,
    "group.consumer.session.timeout.ms": lambda c: c.groups.session_timeout_ms,
    "group.consumer.min.session.timeout.ms": lambda c: c.groups.min_session_timeout_ms,
    "group.consumer.max.session.timeout.ms": lambda c: c.groups.max_session_timeout_ms,
    "group.consumer.heartbeat.interval.ms": lambda c: c.groups.heartbeat_interval_ms,
    "group.initial.rebalance.delay.ms": lambda c: c.groups.initial_rebalance_delay_ms,
    "group.min.session.timeout.ms": lambda c: c.groups.classic_min_session_timeout_ms,
    "group.max.session.timeout.ms": lambda c: c.groups.classic_max_session_timeout_ms,
    "group.max.size": lambda c: c.groups.max_size,
    "offsets.topic.segment.bytes": lambda c: c.groups.offsets_topic_segment_bytes,
    "log.cleaner.enable": lambda c: c.cleaner.enable,
    "log.cleaner.threads": lambda c: c.cleaner.threads,
    "log.cleaner.io.max.bytes.per.second": lambda c: c.cleaner.io_max_bytes_per_second,
    "log.cleaner.dedupe.buffer.size": lambda c: c.cleaner.dedupe_buffer_size,
    "log.cleaner.io.buffer.size": lambda c: c.cleaner.io_buffer_size,
    "log.cleaner.backoff.ms": lambda c: c.cleaner.backoff_ms,
}


# Settings every node has its own value of (no Kafka default to show beside it).
_ALWAYS_STATIC = ("node.id", "listeners", "advertised.listeners")


def _default_config(config: NodeConfig) -> NodeConfig:
    """A config with every optional setting at its default (the required ones as given)."""
    return NodeConfig(
        node_id=config.node_id,
        voters=config.voters,
        http_host=config.http_host,
        http_port=config.http_port,
        raft_host=config.raft_host,
        raft_port=config.raft_port,
        advertised_http_url=config.advertised_http_url,
        log_dir=Path(DEFAULT_LOG_DIR),
    )


def _entry(name: str, synonyms: list[dict[str, str | None]]) -> dict[str, Any]:
    sensitive = name in _SENSITIVE
    if sensitive:
        synonyms = [{**s, "value": None} for s in synonyms]
    first = synonyms[0]
    return {
        "name": name,
        "value": first["value"],
        "source": first["source"],
        "sensitive": sensitive,
        "read_only": True,
        "synonyms": synonyms,
    }


def broker_config_entries(
    config: NodeConfig, dynamic: dict[str, str], cluster_default: dict[str, str]
) -> list[dict[str, Any]]:
    """A broker's configs, sorted by name: the node's settings and the broker-wide defaults
    of topic configs, each with its synonyms (dynamic records first, then static, then
    default)."""
    defaults = _default_config(config)
    by_name: dict[str, list[dict[str, str | None]]] = {}
    for name, read in _BROKER_FIELDS.items():
        value, default = _text(read(config)), _text(read(defaults))
        synonyms: list[dict[str, str | None]] = []
        if name in _ALWAYS_STATIC or value != default:
            synonyms.append({"name": name, "value": value, "source": "STATIC_BROKER_CONFIG"})
        if name not in _ALWAYS_STATIC:
            synonyms.append({"name": name, "value": default, "source": "DEFAULT_CONFIG"})
        by_name[name] = synonyms
    for name in RATES:  # dynamic only: no static value, Long.MAX_VALUE (no throttle) by default
        by_name[name] = [{"name": name, "value": str(LONG_MAX), "source": "DEFAULT_CONFIG"}]
    for topic_name, name in TOPIC_BROKER_SYNONYMS.items():
        if name in REPLICA_LISTS:
            continue  # a topic's config only
        synonyms = []
        if topic_name in config.topic_defaults:
            synonyms.append(
                {
                    "name": name,
                    "value": config.topic_defaults[topic_name],
                    "source": "STATIC_BROKER_CONFIG",
                }
            )
        synonyms.append(
            {"name": name, "value": TOPIC_CONFIGS[topic_name].default, "source": "DEFAULT_CONFIG"}
        )
        by_name[name] = synonyms
    for source, records in (
        ("DYNAMIC_DEFAULT_BROKER_CONFIG", cluster_default),
        ("DYNAMIC_BROKER_CONFIG", dynamic),
    ):
        for name, value in records.items():
            by_name[name] = [
                {"name": name, "value": value, "source": source},
                *by_name.get(name, []),
            ]
    entries = [_entry(name, by_name[name]) for name in sorted(by_name)]
    for entry in entries:
        entry["read_only"] = entry["name"] not in RATES
    return entries


def topic_config_entries(
    overrides: dict[str, str], broker_defaults: dict[str, str]
) -> list[dict[str, Any]]:
    """A topic's configs, sorted by name, each with its synonyms: the topic's own config,
    the node's broker-wide default, Kafka's default."""
    entries = []
    for name in sorted(TOPIC_CONFIGS):
        synonyms: list[dict[str, str | None]] = []
        if name in overrides:
            synonyms.append(
                {"name": name, "value": overrides[name], "source": "DYNAMIC_TOPIC_CONFIG"}
            )
        broker_name = TOPIC_BROKER_SYNONYMS.get(name, name)
        if name in broker_defaults:
            synonyms.append(
                {
                    "name": broker_name,
                    "value": broker_defaults[name],
                    "source": "STATIC_BROKER_CONFIG",
                }
            )
        synonyms.append(
            {"name": broker_name, "value": TOPIC_CONFIGS[name].default, "source": "DEFAULT_CONFIG"}
        )
        entry = _entry(name, synonyms)
        entry["read_only"] = False
        entries.append(entry)
    return entries


async def describe_topic_configs(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    topic = node.topic(request.match_info["topic"])
    return json_response(
        {
            "resource_type": "topic",
            "resource_name": topic.name,
            "configs": topic_config_entries(dict(topic.configs), node.config.topic_defaults),
        }
    )


def requested_broker(request: web.Request) -> int:
    """The ``{broker}`` of a ``/v1/brokers/{broker}/...`` path, checked: a Java int, not
    negative, else INVALID_REQUEST (a path of thousands of digits too, which ``int()`` would
    refuse with a ValueError, a 500)."""
    return path_int(request, "broker")


def redirect_to_broker(node: Node, broker_id: int, request: web.Request) -> web.Response:
    """The 307 that sends a request about another broker to that broker: only it knows its
    own static configs and directories (as Kafka sends DescribeConfigs of a broker and
    DescribeLogDirs to that broker)."""
    broker = node.quorum.snapshot_state().brokers.get(broker_id)
    if broker is None:
        raise ApiError(NOT_FOUND, f"broker {broker_id} is not registered in the cluster")
    if broker.fenced:
        raise ApiError(NOT_FOUND, f"broker {broker_id} is fenced: it cannot describe itself")
    response = json_response({"broker_id": broker_id, "leader_url": broker.http_url}, 307)
    response.headers["Location"] = broker.http_url.rstrip("/") + request.path_qs
    return response


async def describe_broker_configs(request: web.Request) -> web.Response:
    node = node_of(request)
    node.require_ready()
    broker_id = requested_broker(request)
    if broker_id != node.node_id:
        return redirect_to_broker(node, broker_id, request)
    state = node.quorum.snapshot_state()
    configs = broker_config_entries(
        node.config,
        dict(state.broker_configs.get(str(broker_id), {})),
        dict(state.broker_configs.get("", {})),
    )
    return json_response(
        {"resource_type": "broker", "resource_name": str(broker_id), "configs": configs}
    )


# Every broker config name this node knows (the rest are unknown, in Kafka's words).
_KNOWN_BROKER_CONFIGS = frozenset(_BROKER_FIELDS) | {
    name for name in TOPIC_BROKER_SYNONYMS.values() if name not in REPLICA_LISTS
}


def plan_alter_broker_configs(
    state: MetadataState, broker_id: int, configs: object
) -> list[MetadataRecord]:
    """Sets (a value) or removes (null) a registered broker's dynamic configs, only the two
    throttle rates; the whole request is refused when any entry is bad. Removing a config
    that is not set writes nothing for it, as Kafka's incremental DELETE does."""
    if not isinstance(configs, dict) or not configs:
        raise ApiError(INVALID_REQUEST, 'give "configs": {name: value, ...} with at least one')
    if broker_id not in state.brokers:
        raise ApiError(NOT_FOUND, f"broker {broker_id} is not registered in the cluster")
    others = [name for name in configs if name not in RATES]
    unknown = [name for name in others if name not in _KNOWN_BROKER_CONFIGS]
    if unknown:
        raise ApiError(INVALID_CONFIG, f"Unknown config name: {str(unknown[0])[:64]}")
    if others:
        raise ApiError(
            INVALID_CONFIG,
            f"Cannot update these configs dynamically: Set({', '.join(sorted(others))}) "
            f"(only {' and '.join(RATES)} are dynamic here)",
        )
    current = state.broker_configs.get(str(broker_id), {})
    records: list[MetadataRecord] = []
    for name, value in sorted(configs.items()):
        if value is None:
            if name in current:
                records.append(ConfigRecord("broker", str(broker_id), name, None))
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ApiError(
                INVALID_CONFIG, f"config {name}: the value must be a string or an integer"
            )
        problem = rate_problem(name, str(value))
        if problem:
            raise ApiError(INVALID_CONFIG, problem)
        records.append(ConfigRecord("broker", str(broker_id), name, str(int(str(value)))))
    return records


async def alter_broker_configs(request: web.Request) -> web.Response:
    """Kafka's IncrementalAlterConfigs of a broker (the throttle rates): a metadata write."""
    # http_api imports the modules that import this one: import it when first called.
    from server.http_api import _admin, _json_object

    node = node_of(request)
    broker_id = requested_broker(request)
    body = await _json_object(request, {"configs"}, {"configs"})
    forwarded = await _admin(
        request, body, lambda s: plan_alter_broker_configs(s, broker_id, body["configs"])
    )
    if forwarded is not None:
        return forwarded
    configs = node.quorum.snapshot_state().broker_configs.get(str(broker_id), {})
    return json_response({"configs": dict(sorted(configs.items()))})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/topics/{topic}/configs/entries", describe_topic_configs)
    router.add_get("/v1/brokers/{broker}/configs", describe_broker_configs)
    router.add_put("/v1/brokers/{broker}/configs", alter_broker_configs)
