"""The config admin APIs of the Kafka listener: DescribeConfigs and IncrementalAlterConfigs,
of a topic, this broker, or the cluster-wide broker defaults (the resource named ""). Configs
are described as ``server/http_configs.py`` describes them (each with its source and
synonyms), typed as Kafka's ConfigDef types them; incremental operations (SET, DELETE, APPEND,
SUBTRACT) become the values ``PUT /v1/topics/{topic}/configs`` and ``PUT
/v1/brokers/{broker}/configs`` set, written as those routes write them.

Authorization is Kafka's: DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic, or on the cluster for
a broker's configs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from kio.schema.errors import ErrorCode

from client.protocol import INVALID_CONFIG, INVALID_REQUEST, ApiError
from kraft.records import CLUSTER_RESOURCE_NAME, MetadataRecord
from kraft.state import MetadataState
from server import controller
from server.http_configs import (
    TOPIC_BROKER_SYNONYMS,
    broker_config_entries,
    plan_alter_broker_configs,
    topic_config_entries,
)
from server.kafka.admin_writes import (
    CLUSTER_DENIED,
    OK,
    TOPIC_DENIED,
    Outcome,
    admin_write,
    duplicates,
    forward_json,
    readiness,
    response_of,
    topic_path,
)
from server.kafka.apis import RequestContext, authorize
from server.replication_quota import RATES
from server.topic_configs import TOPIC_CONFIGS

# Kafka's ConfigResource.Type ids.
TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4
BROKER_LOGGER_RESOURCE = 8

# Kafka's AlterConfigOp.OpType ids.
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
_OP_NAMES = {SET: "SET", DELETE: "DELETE", APPEND: "APPEND", SUBTRACT: "SUBTRACT"}

# Kafka's DescribeConfigsResponse.ConfigSource ids, by the names http_configs gives sources.
CONFIG_SOURCES = {
    "DYNAMIC_TOPIC_CONFIG": 1,
    "DYNAMIC_BROKER_CONFIG": 2,
    "DYNAMIC_DEFAULT_BROKER_CONFIG": 3,
    "STATIC_BROKER_CONFIG": 4,
    "DEFAULT_CONFIG": 5,
}

# Kafka's ConfigDef.Type ids (DescribeConfigs v3+ says each config's type).
BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST, CLASS, PASSWORD = range(1, 10)

# Each topic config's type in Kafka's LogConfig; a broker-wide synonym has its topic config's.
TOPIC_CONFIG_TYPES: dict[str, int] = {
    "cleanup.policy": LIST,
    "retention.ms": LONG,
    "retention.bytes": LONG,
    "segment.bytes": INT,
    "segment.ms": LONG,
    "max.message.bytes": INT,
    "min.insync.replicas": INT,
    "index.interval.bytes": INT,
    "flush.messages": LONG,
    "flush.ms": LONG,
    "min.cleanable.dirty.ratio": DOUBLE,
    "delete.retention.ms": LONG,
    "min.compaction.lag.ms": LONG,
    "max.compaction.lag.ms": LONG,
    "message.timestamp.type": STRING,
    "unclean.leader.election.enable": BOOLEAN,
    "compression.type": STRING,
    "compression.gzip.level": INT,
    "compression.lz4.level": INT,
    "compression.zstd.level": INT,
    "leader.replication.throttled.replicas": LIST,
    "follower.replication.throttled.replicas": LIST,
}

# The broker configs of http_configs that are not a topic config's synonym, typed as Kafka's
# KafkaConfig types them (ours, http.*, as the nearest Kafka setting).
BROKER_CONFIG_TYPES: dict[str, int] = {
    "node.id": INT,
    "listeners": STRING,
    "advertised.listeners": STRING,
    "log.dirs": STRING,
    "num.partitions": INT,
    "default.replication.factor": INT,
    "log.retention.check.interval.ms": LONG,
    "replica.lag.time.max.ms": LONG,
    "http.max.request.bytes": INT,
    "socket.request.max.bytes": INT,
    "queued.max.request.bytes": LONG,
    "max.connections": INT,
    "max.connections.per.ip": INT,
    "connections.max.idle.ms": LONG,
    "http.request.read.timeout.ms": INT,
    "auto.leader.rebalance.enable": BOOLEAN,
    "leader.imbalance.check.interval.seconds": LONG,
    "leader.imbalance.per.broker.percentage": INT,
    "auto.create.topics.enable": BOOLEAN,
    "authorizer.class.name": STRING,
    "super.users": STRING,
    "allow.everyone.if.no.acl.found": BOOLEAN,
    "ssl.key.password": PASSWORD,
    "offsets.topic.num.partitions": INT,
    "offsets.topic.replication.factor": SHORT,
    "group.consumer.session.timeout.ms": INT,
    "group.consumer.min.session.timeout.ms": INT,
    "group.consumer.max.session.timeout.ms": INT,
    "group.consumer.heartbeat.interval.ms": INT,
    "group.initial.rebalance.delay.ms": INT,
    "group.min.session.timeout.ms": INT,
    "group.max.session.timeout.ms": INT,
    "group.max.size": INT,
    "offsets.topic.segment.bytes": INT,
    "log.cleaner.enable": BOOLEAN,
    "log.cleaner.threads": INT,
    "log.cleaner.io.max.bytes.per.second": DOUBLE,
    "log.cleaner.dedupe.buffer.size": LONG,
    "log.cleaner.io.buffer.size": INT,
    "log.cleaner.backoff.ms": LONG,
    "leader.replication.throttled.rate": LONG,
    "follower.replication.throttled.rate": LONG,
    **{broker: TOPIC_CONFIG_TYPES[topic] for topic, broker in TOPIC_BROKER_SYNONYMS.items()},
}
_BROKER_SYNONYM_OF = {broker: topic for topic, broker in TOPIC_BROKER_SYNONYMS.items()}


def config_entry(entry: Mapping[str, Any], config_type: int, doc: str | None) -> dict[str, Any]:
    """One config of http_configs' entries as Kafka's config fields (a value hidden when
    sensitive, as http_configs hides it already)."""
    return {
        "name": entry["name"],
        "value": entry["value"],
        "read_only": entry["read_only"],
        "config_source": CONFIG_SOURCES[entry["source"]],
        "is_sensitive": entry["sensitive"],
        "config_type": config_type,
        "documentation": doc,
        "synonyms": [
            {"name": s["name"], "value": s["value"], "source": CONFIG_SOURCES[s["source"]]}
            for s in entry["synonyms"]
        ],
    }


# -- DescribeConfigs ------------------------------------------------------------------------


def _topic_config_doc(name: str) -> str | None:
    definition = TOPIC_CONFIGS.get(name)
    return None if definition is None else definition.doc


def described_configs(
    entries: Iterable[Mapping[str, Any]],
    keys: Sequence[str] | None,
    *,
    types: Mapping[str, int],
    docs: Callable[[str], str | None],
    include_synonyms: bool,
    include_documentation: bool,
) -> list[dict[str, Any]]:
    """http_configs' entries as DescribeConfigs' configs: only ``keys`` when given (a name we
    do not have is left out, as Kafka does), synonyms only when asked (else none), the
    documentation only when asked (else null), each config's Kafka type."""
    wanted = None if keys is None else set(keys)
    out = []
    for entry in entries:
        if wanted is not None and entry["name"] not in wanted:
            continue
        item = config_entry(
            entry,
            types.get(entry["name"], 0),
            docs(entry["name"]) if include_documentation else None,
        )
        if not include_synonyms:
            item["synonyms"] = []
        out.append(item)
    return out


def broker_default_entries(cluster_default: Mapping[str, str]) -> list[dict[str, Any]]:
    """The cluster-wide broker configs (the broker resource named ""): Kafka describes only
    the dynamic defaults set for every broker."""
    return [
        {
            "name": name,
            "value": value,
            "source": "DYNAMIC_DEFAULT_BROKER_CONFIG",
            "sensitive": False,
            "read_only": name not in RATES,
            "synonyms": [{"name": name, "value": value, "source": "DYNAMIC_DEFAULT_BROKER_CONFIG"}],
        }
        for name, value in sorted(cluster_default.items())
    ]


def broker_id_of(name: str, node_id: int, *, allow_default: bool) -> int | None:
    """The broker a config resource names, which must be this node (Kafka's brokers answer
    and alter only their own; clients send each broker's request to it), or None for "" (the
    cluster-wide default) when ``allow_default``."""
    if name == "" and allow_default:
        return None
    try:
        broker_id = int(name)
    except ValueError:
        raise ApiError(
            INVALID_REQUEST, f"Broker id must be an integer, but it is: {name[:64]}"
        ) from None
    if broker_id != node_id:
        expected = f"{node_id} or empty string" if allow_default else str(node_id)
        raise ApiError(
            INVALID_REQUEST,
            f"Unexpected broker id, expected {expected}, but received {name[:64]}",
        )
    return broker_id


def _broker_config_doc(name: str) -> str | None:
    topic_name = _BROKER_SYNONYM_OF.get(name)
    return None if topic_name is None else _topic_config_doc(topic_name)


def _describe_resource(ctx: RequestContext, request: Any, resource: Any) -> dict[str, Any]:
    node = ctx.node
    head = {"resource_type": resource.resource_type, "resource_name": resource.resource_name}
    options = {
        "include_synonyms": bool(request.include_synonyms),
        "include_documentation": bool(getattr(request, "include_documentation", False)),
    }
    state = node.quorum.snapshot_state()
    if resource.resource_type == TOPIC_RESOURCE:
        if not authorize(ctx, "DESCRIBE_CONFIGS", "TOPIC", resource.resource_name):
            return {**head, **TOPIC_DENIED.fields, "configs": []}
        topic = controller.existing_topic(state, resource.resource_name)
        entries = topic_config_entries(dict(topic.configs), node.config.topic_defaults)
        configs = described_configs(
            entries,
            resource.configuration_keys,
            types=TOPIC_CONFIG_TYPES,
            docs=_topic_config_doc,
            **options,
        )
    elif resource.resource_type == BROKER_RESOURCE:
        if not authorize(ctx, "DESCRIBE_CONFIGS", "CLUSTER", CLUSTER_RESOURCE_NAME):
            return {**head, **CLUSTER_DENIED.fields, "configs": []}
        broker_id = broker_id_of(resource.resource_name, node.node_id, allow_default=True)
        cluster_default = dict(state.broker_configs.get("", {}))
        if broker_id is None:
            entries = broker_default_entries(cluster_default)
        else:
            dynamic = dict(state.broker_configs.get(str(broker_id), {}))
            entries = broker_config_entries(node.config, dynamic, cluster_default)
        configs = described_configs(
            entries,
            resource.configuration_keys,
            types=BROKER_CONFIG_TYPES,
            docs=_broker_config_doc,
            **options,
        )
    else:
        raise ApiError(INVALID_REQUEST, f"Unsupported resource type: {resource.resource_type}")
    return {**head, **OK.fields, "configs": configs}


async def describe_configs(ctx: RequestContext, request: Any) -> Any:
    """DescribeConfigs (key 32): a topic's configs, this broker's, or the cluster-wide broker
    defaults (name ""), each with its source and synonyms (http_configs' entries)."""
    unready = readiness(ctx.node)
    results = []
    for resource in request.resources:
        try:
            if unready is not OK:
                results.append(
                    {
                        "resource_type": resource.resource_type,
                        "resource_name": resource.resource_name,
                        **unready.fields,
                        "configs": [],
                    }
                )
            else:
                results.append(_describe_resource(ctx, request, resource))
        except ApiError as e:
            results.append(
                {
                    "resource_type": resource.resource_type,
                    "resource_name": resource.resource_name,
                    **Outcome.of(e).fields,
                    "configs": [],
                }
            )
    return response_of(ctx, {"results": results})


# -- IncrementalAlterConfigs ----------------------------------------------------------------


def check_operations(ops: Sequence[tuple[str, int, str | None]]) -> None:
    """Kafka's checks of one resource's operations before they are applied
    (ConfigAdminManager.preprocess): no name twice, no null value but to DELETE, known ops."""
    if duplicates(name for name, _, _ in ops):
        raise ApiError(INVALID_REQUEST, "Error due to duplicate config keys")
    nulls = [name for name, op, value in ops if op != DELETE and value is None]
    if nulls:
        raise ApiError(INVALID_REQUEST, f"Null value not supported for : {', '.join(nulls)}")
    for _, op, _ in ops:
        if op not in _OP_NAMES:
            raise ApiError(INVALID_REQUEST, f"Unknown operations type {op}")


def _not_a_list(op: int, name: str) -> ApiError:
    return ApiError(
        INVALID_CONFIG, f"Can't {_OP_NAMES[op]} to key {name[:64]} because its type is not LIST."
    )


def topic_config_changes(
    ops: Sequence[tuple[str, int, str | None]], overrides: Mapping[str, str]
) -> dict[str, str | None]:
    """Kafka's incremental operations on a topic's configs as the values to set (None: the
    override goes), the body of ``PUT /v1/topics/{topic}/configs``: SET a value, DELETE an
    override (nothing to do when there is none), APPEND to or SUBTRACT from a LIST config's
    items (the current override, else Kafka's default), as Kafka's
    ConfigurationControlManager does."""
    changes: dict[str, str | None] = {}
    for name, op, value in ops:
        if op == SET:
            changes[name] = value
        elif op == DELETE:
            if name in overrides:
                changes[name] = None
        else:
            if TOPIC_CONFIG_TYPES.get(name) != LIST:
                raise _not_a_list(op, name)
            assert value is not None, "check_operations refuses a null value"
            current = overrides.get(name, TOPIC_CONFIGS[name].default)
            items = [item for item in current.split(",") if item]
            for item in value.split(","):
                if op == APPEND and item not in items:
                    items.append(item)
                elif op == SUBTRACT and item in items:
                    items.remove(item)
            changes[name] = ",".join(items)
    return changes


def broker_config_changes(
    ops: Sequence[tuple[str, int, str | None]], dynamic: Mapping[str, str]
) -> dict[str, str | None]:
    """Kafka's incremental operations on a broker's dynamic configs (``dynamic``, those set)
    as the body of ``PUT /v1/brokers/{broker}/configs``: SET a value; DELETE one that is set
    (one that is not, whatever its name, is nothing to do, as in Kafka: kafka-reassign-
    partitions clears every throttle a Kafka broker has this way); no broker config here is
    a LIST."""
    changes: dict[str, str | None] = {}
    for name, op, value in ops:
        if op in (APPEND, SUBTRACT):
            raise _not_a_list(op, name)
        if op == SET:
            changes[name] = value
        elif name in dynamic:
            changes[name] = None
    return changes


async def _alter_resource(ctx: RequestContext, resource: Any, validate_only: bool) -> Outcome:
    node = ctx.node
    ops = [(c.name, int(c.config_operation), c.value) for c in resource.configs]
    check_operations(ops)
    name = resource.resource_name
    if resource.resource_type == TOPIC_RESOURCE:
        if not authorize(ctx, "ALTER_CONFIGS", "TOPIC", name):
            return TOPIC_DENIED
        socket_max = node.config.socket_request_max_bytes

        def topic_plan(state: MetadataState) -> list[MetadataRecord]:
            topic = controller.existing_topic(state, name)
            changes = topic_config_changes(ops, topic.configs)
            if not changes:
                return []
            return controller.plan_alter_configs(
                state, name, changes, socket_request_max_bytes=socket_max
            )

        def forward_topic() -> Awaitable[Any]:
            # The values are worked out from this node's metadata (the HTTP route sets values).
            topic = controller.existing_topic(node.quorum.snapshot_state(), name)
            changes = topic_config_changes(ops, topic.configs)
            if not changes:
                return _nothing()
            return forward_json(node, "PUT", topic_path(name, "configs"), {"configs": changes})

        await admin_write(node, topic_plan, validate_only, forward_topic)
    elif resource.resource_type == BROKER_RESOURCE:
        if not authorize(ctx, "ALTER_CONFIGS", "CLUSTER", CLUSTER_RESOURCE_NAME):
            return CLUSTER_DENIED
        if name == "":
            raise ApiError(
                INVALID_REQUEST,
                "cluster-wide default broker configs cannot be altered here: name a broker (its "
                f"id); only {' and '.join(RATES)} are dynamic",
            )
        broker_id = broker_id_of(name, node.node_id, allow_default=False)
        assert broker_id is not None

        def broker_changes(state: MetadataState) -> dict[str, str | None]:
            return broker_config_changes(ops, state.broker_configs.get(str(broker_id), {}))

        def broker_plan(state: MetadataState) -> list[MetadataRecord]:
            changes = broker_changes(state)
            return plan_alter_broker_configs(state, broker_id, changes) if changes else []

        def forward_broker() -> Awaitable[Any]:
            # Worked out from this node's metadata (the HTTP route sets values).
            changes = broker_changes(node.quorum.snapshot_state())
            if not changes:
                return _nothing()
            path = f"/v1/brokers/{broker_id}/configs"
            return forward_json(node, "PUT", path, {"configs": changes})

        await admin_write(node, broker_plan, validate_only, forward_broker)
    else:
        raise ApiError(INVALID_REQUEST, f"Unknown resource type {resource.resource_type}")
    return OK


async def _nothing() -> dict[str, Any]:
    return {}


async def incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
    """IncrementalAlterConfigs (key 44): SET, DELETE, APPEND, SUBTRACT on a topic's configs;
    SET and DELETE on this broker's throttle rates (its only dynamic configs)."""
    twice = duplicates(f"{r.resource_type}:{r.resource_name}" for r in request.resources)
    # Readiness before authorization: until the metadata is loaded, the ACLs are not.
    unready = readiness(ctx.node)
    responses = []
    for resource in request.resources:
        if f"{resource.resource_type}:{resource.resource_name}" in twice:
            outcome = Outcome(ErrorCode.invalid_request, "Each resource must appear at most once.")
        elif unready is not OK:
            outcome = unready
        else:
            try:
                outcome = await _alter_resource(ctx, resource, bool(request.validate_only))
            except ApiError as e:
                outcome = Outcome.of(e)
        responses.append(
            {
                "resource_type": resource.resource_type,
                "resource_name": resource.resource_name,
                **outcome.fields,
            }
        )
    return response_of(ctx, {"responses": responses})
