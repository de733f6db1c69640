"""The admin APIs of the Kafka listener: Kafka's own admin clients (AdminClient, librdkafka's
admin API, kafka-python's KafkaAdminClient, ``kafka-topics``, ``kafka-configs``) create, grow,
delete and configure topics and read the cluster here.

Every request goes through the rules of our HTTP admin API, never a copy of them: the plans
of ``server/controller.py`` (create, grow, delete, topic configs), ``server/http_configs.py``
(broker configs and every config's description with its sources), written by
``server.http_api.write_or_forward``, which writes the plan on the controller or, on another
node, sends the HTTP request the plan is made of to the controller (the same route an HTTP
client would call), which plans it on its state. The Kafka side adds only what is Kafka's wire
shape: one result per topic or resource with Kafka's error code and message, the checks Kafka
makes before its controller sees a request (a name twice, a null value, authorization), and
translations (a topic id to its name, incremental config operations to the values they set).

``validate_only`` is planned on this node's applied metadata and nothing is written (Kafka asks
its controller; a topic created a moment ago elsewhere may not be known here yet).

Authorization is Kafka's: CREATE on the cluster or the topic for CreateTopics, DELETE for
DeleteTopics, ALTER for CreatePartitions, DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic or the
cluster (a broker's configs), per topic or resource, with Kafka's TOPIC_/CLUSTER_AUTHORIZATION_
FAILED in its result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from client.protocol import (
    INVALID_CONFIG,
    INVALID_REPLICA_ASSIGNMENT,
    INVALID_REQUEST,
    INVALID_TOPIC_EXCEPTION,
    ApiError,
    topic_name_problem,
)
from kraft.records import (
    CLUSTER_RESOURCE_NAME,
    ConfigRecord,
    MetadataRecord,
    PartitionRecord,
    TopicRecord,
)
from kraft.state import MetadataState
from server import controller, limits, reassignment
from server.http_api import _ELECTION_ERRORS as ELECTION_ERRORS
from server.http_api import UNCLEAN_ELECTION_REFUSAL, write_or_forward
from server.http_configs import (
    TOPIC_BROKER_SYNONYMS,
    broker_config_entries,
    plan_alter_broker_configs,
    topic_config_entries,
)
from server.http_log_dirs import own_log_dirs
from server.kafka.apis import ApiSpec, RequestContext, authorize, cluster_authorized_operations
from server.kafka.entities import build, topic_id_text
from server.kafka.errors import error_message, kafka_error_code
from server.kafka.metadata import AUTHORIZED_OPERATIONS_OMITTED, controller_id, host_port
from server.node import METADATA_INDEX_HEADER, Node
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
    "leader.replication.throttled.replicas": LIST,
    "follower.replication.throttled.replicas": LIST,
}

# The broker configs of http_configs that are not a topic config's synonym, typed as Kafka's
# KafkaConfig types them (ours, http.*, as the nearest Kafka setting).
BROKER_CONFIG_TYPES: dict[str, int] = {
    "node.id": INT,
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

# DescribeCluster's endpoint types (KIP-919): a broker answers for brokers only.
BROKER_ENDPOINT = 1


@dataclass(frozen=True)
class Outcome:
    """One topic's or resource's answer: Kafka's code and message (None: none)."""

    code: ErrorCode = ErrorCode.none
    message: str | None = None

    @classmethod
    def of(cls, e: ApiError) -> Outcome:
        return cls(kafka_error_code(e), error_message(e))

    @property
    def fields(self) -> dict[str, Any]:
        return {"error_code": self.code, "error_message": self.message}


OK = Outcome()
DUPLICATE_TOPIC = Outcome(ErrorCode.invalid_request, "Duplicate topic name.")
TOPIC_DENIED = Outcome(ErrorCode.topic_authorization_failed, "Authorization failed.")
CLUSTER_DENIED = Outcome(ErrorCode.cluster_authorization_failed, "Authorization failed.")


def _response_class(ctx: RequestContext) -> type[Any]:
    return load_response_schema(ctx.api_key, ctx.api_version)


def _answer(ctx: RequestContext, values: Mapping[str, Any]) -> Any:
    return build(_response_class(ctx), {"throttle_time": 0, **values})


def duplicates(names: Iterable[str | None]) -> set[str]:
    """The names given more than once (Kafka answers each of them INVALID_REQUEST once)."""
    return {n for n, count in Counter(names).items() if count > 1 and n is not None}


# -- the write, here or on the controller -----------------------------------------------------


async def forward_json(node: Node, method: str, path: str, body: Any) -> Any:
    """Sends an HTTP admin request to the controller, as ``Node.forward`` relays an HTTP
    client's: signed as the cluster's own, then waits until this node applied the metadata
    entry it names. Returns the controller's JSON answer; raises its error as an ApiError."""
    controller_id, url = node.controller_address()
    status, answer, headers = await node.http_call(
        method,
        url + path,
        body,
        limits.FORWARD_TIMEOUT_S,
        target_id=controller_id,
        role="controller",
    )
    index = headers.get(METADATA_INDEX_HEADER, "")
    if index.isascii() and index.isdigit():
        await node.wait_applied(int(index))
    if status >= 300:
        raise ApiError.from_json(answer if isinstance(answer, dict) else {}, status)
    return answer


Plan = Callable[[MetadataState], list[MetadataRecord]]


async def admin_write(
    node: Node,
    plan: Plan,
    validate_only: bool,
    forward: Callable[[], Awaitable[Any]],
) -> tuple[list[MetadataRecord] | None, Any]:
    """Carries out an admin plan: checked on this node's metadata only (``validate_only``),
    written on the controller, or forwarded to it (``forward``, the HTTP request of the same
    plan). Returns (the records planned here, None) or (None, the controller's answer)."""
    planned: list[list[MetadataRecord]] = []

    def keep(state: MetadataState) -> list[MetadataRecord]:
        records = plan(state)
        planned[:] = [records]
        return records

    if validate_only:
        node.require_ready()
        return keep(node.quorum.snapshot_state()), None
    _, answer = await write_or_forward(node, keep, forward)
    if answer is not None:
        return None, answer
    return planned[0] if planned else [], None


def _topic_path(name: str, *rest: str) -> str:
    return "/".join(["/v1/topics", quote(name, safe=""), *rest])


# -- CreateTopics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedTopic:
    """What CreateTopics v5+ says of a topic it created (or would create)."""

    topic_id: str
    partitions: int
    replication_factor: int
    overrides: dict[str, str]

    @classmethod
    def from_records(cls, records: Sequence[MetadataRecord]) -> CreatedTopic:
        topic = next(r for r in records if isinstance(r, TopicRecord))
        partitions = [r for r in records if isinstance(r, PartitionRecord)]
        return cls(
            topic.topic_id,
            len(partitions),
            len(partitions[0].replicas),
            {
                r.name: r.value
                for r in records
                if isinstance(r, ConfigRecord) and r.value is not None
            },
        )

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> CreatedTopic:
        """From the controller's answer to ``POST /v1/topics`` (a topic's description)."""
        return cls(
            answer["topic_id"],
            answer["partition_count"],
            answer["replication_factor"],
            dict(answer["configs"]),
        )


def creation_assignments(assignments: Sequence[Any]) -> list[list[int]] | None:
    """A CreateTopics topic's manual assignment as the replica lists of partitions 0, 1, ...
    (None: none given), or Kafka's INVALID_REPLICA_ASSIGNMENT for a partition given twice or
    partitions that are not 0..n-1."""
    if not assignments:
        return None
    by_partition: dict[int, list[int]] = {}
    for a in assignments:
        if a.partition_index in by_partition:
            raise ApiError(
                INVALID_REPLICA_ASSIGNMENT,
                f"Found multiple manual partition assignments for partition {a.partition_index}",
            )
        by_partition[a.partition_index] = [int(b) for b in a.broker_ids]
    if sorted(by_partition) != list(range(len(by_partition))):
        raise ApiError(
            INVALID_REPLICA_ASSIGNMENT,
            "partitions should be a consecutive 0-based integer sequence",
        )
    return [by_partition[p] for p in range(len(by_partition))]


def creation_configs(configs: Iterable[Any]) -> dict[str, str]:
    """A CreateTopics topic's configs by name; Kafka refuses a null value (INVALID_CONFIG)."""
    nulls = [c.name for c in configs if c.value is None]
    if nulls:
        raise ApiError(
            INVALID_CONFIG, f"Null value not supported for topic configs: {','.join(nulls)}"
        )
    return {c.name: c.value for c in configs}


def creation_name_problem(name: str) -> ApiError | None:
    """An illegal topic name as Kafka's CreateTopics answers it: INVALID_TOPIC_EXCEPTION (the
    plan's check, which HTTP answers INVALID_REQUEST), Topic.validate's words."""
    problem = topic_name_problem(name)
    return None if problem is None else ApiError(INVALID_TOPIC_EXCEPTION, problem)


def _config_entry(entry: Mapping[str, Any], config_type: int, doc: str | None) -> dict[str, Any]:
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


def failed_creation(name: str, outcome: Outcome) -> dict[str, Any]:
    """CreateTopics' result for a topic not created: no id, no partitions, no configs."""
    return {"name": name, "topic_id": None, **outcome.fields, "configs": []}


def created_result(
    name: str, created: CreatedTopic, may_describe_configs: bool, broker_defaults: Mapping[str, str]
) -> dict[str, Any]:
    """CreateTopics' result for a topic created: with its partitions, factor and every config
    with its source (v5+) when the requester may DESCRIBE_CONFIGS it, else Kafka's
    TOPIC_AUTHORIZATION_FAILED in topic_config_error_code and none of them."""
    result: dict[str, Any] = {"name": name, "topic_id": created.topic_id, **OK.fields}
    if not may_describe_configs:
        result["topic_config_error_code"] = ErrorCode.topic_authorization_failed.value
        result["configs"] = []
        return result
    entries = topic_config_entries(created.overrides, dict(broker_defaults))
    result |= {
        "num_partitions": created.partitions,
        "replication_factor": created.replication_factor,
        "configs": [_config_entry(e, 0, None) for e in entries],
    }
    return result


async def _create_topic(ctx: RequestContext, topic: Any, validate_only: bool) -> CreatedTopic:
    node = ctx.node
    refusal = creation_name_problem(topic.name)
    if refusal is not None:
        raise refusal
    configs = creation_configs(topic.configs)
    assignments = creation_assignments(topic.assignments)
    body: dict[str, Any] = {
        "name": topic.name,
        "partitions": int(topic.num_partitions),
        "replication_factor": int(topic.replication_factor),
        "configs": configs,
    }
    if assignments is not None:
        body["assignments"] = assignments

    def plan(state: MetadataState) -> list[MetadataRecord]:
        return controller.plan_create_topic(
            state,
            topic.name,
            body["partitions"],
            body["replication_factor"],
            configs,
            default_partitions=node.config.num_partitions,
            default_replication_factor=node.config.default_replication_factor,
            rng=node.rng,
            socket_request_max_bytes=node.config.socket_request_max_bytes,
            assignments=assignments,
        )

    records, answer = await admin_write(
        node, plan, validate_only, lambda: forward_json(node, "POST", "/v1/topics", body)
    )
    if answer is not None:
        return CreatedTopic.from_answer(answer)
    assert records, "a topic's creation writes records"
    return CreatedTopic.from_records(records)


async def create_topics(ctx: RequestContext, request: Any) -> Any:
    """CreateTopics (key 19): each topic planned and written on its own, in request order."""
    twice = duplicates(t.name for t in request.topics)
    may_create_any = authorize(ctx, "CREATE", "CLUSTER", CLUSTER_RESOURCE_NAME)
    validate_only = bool(getattr(request, "validate_only", False))
    results: list[dict[str, Any]] = []
    answered: set[str] = set()
    for topic in request.topics:
        name = topic.name
        if name in twice:
            if name not in answered:
                results.append(failed_creation(name, DUPLICATE_TOPIC))
                answered.add(name)
            continue
        if not (may_create_any or authorize(ctx, "CREATE", "TOPIC", name)):
            results.append(failed_creation(name, TOPIC_DENIED))
            continue
        try:
            created = await _create_topic(ctx, topic, validate_only)
        except ApiError as e:
            results.append(failed_creation(name, Outcome.of(e)))
            continue
        may_describe = authorize(ctx, "DESCRIBE_CONFIGS", "TOPIC", name)
        results.append(created_result(name, created, may_describe, ctx.node.config.topic_defaults))
    return _answer(ctx, {"topics": results})


# -- DeleteTopics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deletion:
    """One entry of a DeleteTopics answer: the topic (name, id) and, once decided, its outcome
    (None: to delete)."""

    name: str | None
    topic_id: str | None
    outcome: Outcome | None = None


def plan_deletions(
    entries: Sequence[tuple[str | None, str | None]], state: MetadataState
) -> list[Deletion]:
    """Kafka's reading of a DeleteTopics request (ControllerApis.deleteTopics): each entry by
    name or by id (both or neither: INVALID_REQUEST), a name or id given twice INVALID_REQUEST
    once, an id resolved to its topic's name (UNKNOWN_TOPIC_ID when none has it here). A name
    is left for the controller to find. Returns the entries in request order."""
    names = duplicates(name for name, topic_id in entries if topic_id is None)
    ids = duplicates(topic_id for name, topic_id in entries if name is None)
    out: list[Deletion] = []
    reported: set[str] = set()
    for name, topic_id in entries:
        if name is not None and topic_id is not None:
            message = "You may not specify both topic name and topic id."
            out.append(Deletion(name, topic_id, Outcome(ErrorCode.invalid_request, message)))
        elif name is None and topic_id is None:
            message = "Neither topic name nor id were specified."
            out.append(Deletion(None, None, Outcome(ErrorCode.invalid_request, message)))
        elif name is not None:
            if name in names:
                if name not in reported:
                    reported.add(name)
                    out.append(Deletion(name, None, DUPLICATE_TOPIC))
                continue
            found = state.topics.get(name)
            out.append(Deletion(name, None if found is None else found.topic_id))
        else:
            assert topic_id is not None
            if topic_id in ids:
                if topic_id not in reported:
                    reported.add(topic_id)
                    message = "Duplicate topic id."
                    out.append(
                        Deletion(None, topic_id, Outcome(ErrorCode.invalid_request, message))
                    )
                continue
            topic = state.topic_by_id(topic_id)
            if topic is None:
                message = "This server does not host this topic ID."
                out.append(Deletion(None, topic_id, Outcome(ErrorCode.unknown_topic_id, message)))
            else:
                out.append(Deletion(topic.name, topic_id))
    return out


def _delete_plan(name: str, topic_id: str | None) -> Plan:
    """The delete of ``name``; by id, only while the name is still that topic's (a topic
    deleted and created again under the name meanwhile is another topic)."""

    def plan(state: MetadataState) -> list[MetadataRecord]:
        if topic_id is not None:
            topic = state.topics.get(name)
            if topic is None or topic.topic_id != topic_id:
                raise _UnknownTopicId()
        return controller.plan_delete_topic(state, name)

    return plan


class _UnknownTopicId(Exception):
    """A topic asked for by id that the controller does not have."""


async def delete_topics(ctx: RequestContext, request: Any) -> Any:
    """DeleteTopics (key 20): by name (every version) or by topic id (v6+)."""
    node = ctx.node
    if hasattr(request, "topics"):
        entries = [(t.name, topic_id_text(t.topic_id)) for t in request.topics]
    else:
        entries = [(name, None) for name in request.topic_names]
    results: list[dict[str, Any]] = []
    for d in plan_deletions(entries, node.quorum.snapshot_state()):
        outcome = d.outcome
        name = d.name
        if outcome is None:
            assert name is not None
            if not authorize(ctx, "DELETE", "TOPIC", name):
                # Kafka names a topic asked for by id only to those who may see it.
                if d.topic_id is not None and not authorize(ctx, "DESCRIBE", "TOPIC", name):
                    name = None
                outcome = TOPIC_DENIED
            else:
                outcome = await _delete_topic(node, name, d.topic_id, by_id=d.name is None)
        results.append(
            {
                "name": name,
                "topic_id": d.topic_id,
                **outcome.fields,
            }
        )
    return _answer(ctx, {"responses": results})


async def _delete_topic(node: Node, name: str, topic_id: str | None, by_id: bool) -> Outcome:
    try:
        await admin_write(
            node,
            _delete_plan(name, topic_id if by_id else None),
            False,
            lambda: forward_json(node, "DELETE", _topic_path(name), None),
        )
    except _UnknownTopicId:
        return Outcome(ErrorCode.unknown_topic_id, "This server does not host this topic ID.")
    except ApiError as e:
        return Outcome.of(e)
    return OK


# -- CreatePartitions -----------------------------------------------------------------------


async def _grow_topic(node: Node, name: str, topic: Any, validate_only: bool) -> None:
    body: dict[str, Any] = {"count": int(topic.count)}
    if topic.assignments is not None:
        body["assignments"] = [[int(b) for b in a.broker_ids] for a in topic.assignments]

    def plan(state: MetadataState) -> list[MetadataRecord]:
        return controller.plan_add_partitions(
            state, name, body["count"], rng=node.rng, assignments=body.get("assignments")
        )

    await admin_write(
        node,
        plan,
        validate_only,
        lambda: forward_json(node, "POST", _topic_path(name, "partitions"), body),
    )


async def create_partitions(ctx: RequestContext, request: Any) -> Any:
    """CreatePartitions (key 37): grows topics, placed by us or by the requester."""
    twice = duplicates(t.name for t in request.topics)
    results: list[dict[str, Any]] = []
    answered: set[str] = set()
    for topic in request.topics:
        name = topic.name
        if name in twice:
            if name not in answered:
                results.append({"name": name, **DUPLICATE_TOPIC.fields})
                answered.add(name)
            continue
        if not authorize(ctx, "ALTER", "TOPIC", name):
            results.append({"name": name, **TOPIC_DENIED.fields})
            continue
        try:
            await _grow_topic(ctx.node, name, topic, bool(request.validate_only))
        except ApiError as e:
            results.append({"name": name, **Outcome.of(e).fields})
            continue
        results.append({"name": name, **OK.fields})
    return _answer(ctx, {"results": results})


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
        item = _config_entry(
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
    ctx.node.require_ready()
    results = []
    for resource in request.resources:
        try:
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
    return _answer(ctx, {"results": results})


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
            return forward_json(node, "PUT", _topic_path(name, "configs"), {"configs": changes})

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
    responses = []
    for resource in request.resources:
        if f"{resource.resource_type}:{resource.resource_name}" in twice:
            outcome = Outcome(ErrorCode.invalid_request, "Each resource must appear at most once.")
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
    return _answer(ctx, {"responses": responses})


# -- DescribeCluster ------------------------------------------------------------------------


def cluster_brokers(state: MetadataState, include_fenced: bool) -> list[dict[str, Any]]:
    """DescribeCluster's brokers: the registered brokers with a Kafka listener, by id; fenced
    ones only when asked (v2+), as Kafka lists its alive brokers."""
    out = []
    for broker in sorted(state.brokers.values(), key=lambda b: b.id):
        if broker.kafka_address is None or (broker.fenced and not include_fenced):
            continue
        host, port = host_port(broker.kafka_address)
        out.append(
            {
                "broker_id": broker.id,
                "host": host,
                "port": port,
                "rack": broker.rack,
                "is_fenced": broker.fenced,
            }
        )
    return out


async def describe_cluster(ctx: RequestContext, request: Any) -> Any:
    """DescribeCluster (key 60): the cluster id, a controller id clients can reach, the
    brokers at their Kafka addresses."""
    node = ctx.node
    endpoint_type = getattr(request, "endpoint_type", BROKER_ENDPOINT)
    if endpoint_type != BROKER_ENDPOINT:
        # Kafka's brokers answer for brokers only (KIP-919's controller endpoint is the
        # controller's own listener, which clients do not reach here).
        return _answer(
            ctx,
            {
                "error_code": ErrorCode.mismatched_endpoint_type,
                "error_message": "The request was sent to an endpoint of type BROKER, but we "
                "wanted an endpoint of type CONTROLLER",
                "endpoint_type": BROKER_ENDPOINT,
                "cluster_id": node.meta.cluster_id,
                "controller_id": -1,
                "brokers": [],
                "cluster_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
            },
        )
    state = node.quorum.snapshot_state()
    operations = AUTHORIZED_OPERATIONS_OMITTED
    if request.include_cluster_authorized_operations:
        operations = cluster_authorized_operations(ctx)
    return _answer(
        ctx,
        {
            "error_code": ErrorCode.none,
            "error_message": None,
            "endpoint_type": BROKER_ENDPOINT,
            "cluster_id": node.meta.cluster_id,
            "controller_id": controller_id(state, node.quorum.leader_id(), node.node_id),
            "brokers": cluster_brokers(
                state, bool(getattr(request, "include_fenced_brokers", False))
            ),
            "cluster_authorized_operations": operations,
        },
    )


# -- ElectLeaders ----------------------------------------------------------------------------

PREFERRED_ELECTION, UNCLEAN_ELECTION = 0, 1

# An election's outcome (server/controller.py's, as POST /v1/elections names them) as Kafka's
# per-partition answer.
_ELECTION_OUTCOMES = {
    controller.ELECTED: ErrorCode.none,
    controller.ALREADY_PREFERRED: ErrorCode.election_not_needed,
    controller.PREFERRED_NOT_AVAILABLE: ErrorCode.preferred_leader_not_available,
}


def election_outcome(outcome: str, preferred: int) -> Outcome:
    """One partition's PREFERRED election outcome as Kafka's code and message (HTTP's)."""
    code = _ELECTION_OUTCOMES[outcome]
    if outcome not in ELECTION_ERRORS:
        return Outcome(code)
    return Outcome(code, ELECTION_ERRORS[outcome][1].format(preferred=preferred))


def unclean_outcome(state: MetadataState, topic: str, partition: int) -> Outcome:
    """An UNCLEAN election of one partition: not needed when it has a leader (Kafka's
    answer), else refused (unclean leader election is off here)."""
    found = state.topics.get(topic)
    p = None if found is None else found.partitions.get(partition)
    if p is None:
        return unknown_partition(topic, partition, found is None)
    if p.leader >= 0:
        return Outcome(ErrorCode.election_not_needed)
    return Outcome(ErrorCode.eligible_leaders_not_available, UNCLEAN_ELECTION_REFUSAL)


def unknown_partition(topic: str, partition: int, topic_unknown: bool) -> Outcome:
    """Kafka's ElectLeaders words for a partition it does not have."""
    shown = (
        f"No such topic as {topic}"
        if topic_unknown
        else f"No such partition as {topic}-{partition}"
    )
    return Outcome(ErrorCode.unknown_topic_or_partition, shown)


async def _elect_preferred(
    node: Node, wanted: list[tuple[str, int]] | None
) -> dict[tuple[str, int], Outcome]:
    """The PREFERRED election of ``wanted`` (None: every partition), planned on the controller
    by controller.plan_preferred_elections as POST /v1/elections plans it."""
    outcomes: list[controller.ElectionOutcome] = []

    def plan(state: MetadataState) -> list[MetadataRecord]:
        records, planned = controller.plan_preferred_elections(state, wanted)
        outcomes[:] = planned
        return records

    body: dict[str, Any] = {"election_type": "PREFERRED"}
    if wanted is not None:
        body["partitions"] = [{"topic": t, "partition": p} for t, p in wanted]
    _, answer = await admin_write(
        node, plan, False, lambda: forward_json(node, "POST", "/v1/elections", body)
    )
    if answer is not None:
        return {
            (o["topic"], o["partition"]): election_outcome(o["outcome"], o["preferred_leader"])
            for o in answer["partitions"]
        }
    return {(o.topic, o.partition): election_outcome(o.outcome, o.preferred) for o in outcomes}


async def elect_leaders(ctx: RequestContext, request: Any) -> Any:
    """ElectLeaders (key 43): a PREFERRED election as POST /v1/elections makes it; an UNCLEAN
    one is needed by no partition with a leader and refused for the others."""
    node = ctx.node
    election_type = getattr(request, "election_type", PREFERRED_ELECTION)
    asked = (
        None
        if request.topic_partitions is None
        else [(t.topic, int(p)) for t in request.topic_partitions for p in t.partitions]
    )
    top = OK
    outcomes: dict[tuple[str, int], Outcome] = {}
    if not authorize(ctx, "ALTER", "CLUSTER", CLUSTER_RESOURCE_NAME):
        top = CLUSTER_DENIED
        outcomes = {key: CLUSTER_DENIED for key in asked or []}
    elif election_type not in (PREFERRED_ELECTION, UNCLEAN_ELECTION):
        top = Outcome(ErrorCode.invalid_request, f"Unknown election type {election_type}")
        outcomes = {key: top for key in asked or []}
    else:
        node.require_ready()
        state = node.quorum.snapshot_state()
        if election_type == UNCLEAN_ELECTION:
            everything = [
                (name, p) for name in sorted(state.topics) for p in state.topics[name].partitions
            ]
            outcomes = {(t, p): unclean_outcome(state, t, p) for t, p in asked or everything}
        else:
            known: list[tuple[str, int]] = []
            for t, p in dict.fromkeys(asked or []):
                found = state.topics.get(t)
                if found is None or p not in found.partitions:
                    outcomes[(t, p)] = unknown_partition(t, p, found is None)
                else:
                    known.append((t, p))
            if asked is None or known:
                try:
                    outcomes |= await _elect_preferred(node, None if asked is None else known)
                except ApiError as e:
                    outcomes |= {key: Outcome.of(e) for key in known}
    if asked is None:
        # Kafka's answer for every partition leaves out those that needed no election.
        keys = [k for k, o in outcomes.items() if o.code != ErrorCode.election_not_needed]
        topics = sorted(node.quorum.snapshot_state().topics) if top is OK else []
    else:
        keys = asked
        topics = list(dict.fromkeys(t for t, _ in asked))
    by_topic: dict[str, list[dict[str, Any]]] = {t: [] for t in topics}
    for t, p in keys:
        by_topic.setdefault(t, []).append({"partition_id": p, **outcomes[(t, p)].fields})
    return _answer(
        ctx,
        {
            "error_code": top.code,
            "replica_election_results": [
                {"topic": t, "partition_result": results} for t, results in by_topic.items()
            ],
        },
    )


# -- AlterPartitionReassignments / ListPartitionReassignments ------------------------------


def replication_factor_problem(
    state: MetadataState, r: reassignment.ReassignmentRequest
) -> Outcome | None:
    """With allow_replication_factor_change false (v1+), a move may not change how many
    replicas the partition has (Kafka's INVALID_REPLICATION_FACTOR)."""
    if r.replicas is None:
        return None
    found = state.topics.get(r.topic)
    p = None if found is None else found.partitions.get(r.partition)
    if p is None:
        return None  # the plan says UNKNOWN_TOPIC_OR_PARTITION
    current = len(reassignment.target_replicas(p))
    if len(r.replicas) == current:
        return None
    return Outcome(
        ErrorCode.invalid_replication_factor,
        f"The replication factor is changed from {current} to {len(r.replicas)}",
    )


async def _alter_reassignments(
    node: Node, requests: list[reassignment.ReassignmentRequest]
) -> dict[tuple[str, int], Outcome]:
    outcomes: list[controller.ReassignmentOutcome] = []

    def plan(state: MetadataState) -> list[MetadataRecord]:
        records, planned = controller.plan_alter_reassignments(state, requests)
        outcomes[:] = planned
        return records

    body = {
        "partitions": [
            {
                "topic": r.topic,
                "partition": r.partition,
                "replicas": None if r.replicas is None else list(r.replicas),
            }
            for r in requests
        ]
    }
    _, answer = await admin_write(
        node, plan, False, lambda: forward_json(node, "POST", "/v1/reassignments", body)
    )
    if answer is not None:
        return {
            (o["topic"], o["partition"]): OK
            if "error" not in o
            else Outcome.of(ApiError.from_json({"error": o["error"], "message": o["message"]}))
            for o in answer["partitions"]
        }
    return {
        (o.topic, o.partition): OK if o.error is None else Outcome.of(o.error) for o in outcomes
    }


async def alter_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    """AlterPartitionReassignments (key 45): starts, replaces or cancels (null replicas)
    partition moves as POST /v1/reassignments does. Each partition is first checked alone on
    this node's metadata, so a bad one gets its own error and the others go ahead together."""
    node = ctx.node
    entries = [
        (t.name, int(p.partition_index), p.replicas) for t in request.topics for p in t.partitions
    ]
    outcomes: dict[tuple[str, int], Outcome] = {}
    top = OK
    if not authorize(ctx, "ALTER", "CLUSTER", CLUSTER_RESOURCE_NAME):
        top = CLUSTER_DENIED
        outcomes = {(t, p): CLUSTER_DENIED for t, p, _ in entries}
    else:
        node.require_ready()
        state = node.quorum.snapshot_state()
        allow_change = bool(getattr(request, "allow_replication_factor_change", True))
        good: list[reassignment.ReassignmentRequest] = []
        for t, p, replicas in entries:
            r = reassignment.ReassignmentRequest(
                t, p, None if replicas is None else tuple(int(b) for b in replicas)
            )
            problem = None if allow_change else replication_factor_problem(state, r)
            if problem is None and (t, p) in outcomes:
                problem = Outcome(ErrorCode.invalid_request, f"{t}-{p} is named twice")
            if problem is None:
                try:
                    controller.plan_alter_reassignments(state, [r])
                except ApiError as e:
                    problem = Outcome.of(e)
            if problem is not None:
                outcomes[(t, p)] = problem
                good = [g for g in good if (g.topic, g.partition) != (t, p)]
            else:
                outcomes[(t, p)] = OK
                good.append(r)
        if good:
            try:
                outcomes |= await _alter_reassignments(node, good)
            except ApiError as e:
                outcomes |= {(r.topic, r.partition): Outcome.of(e) for r in good}
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for t, p, _ in entries:
        by_topic.setdefault(t, []).append({"partition_index": p, **outcomes[(t, p)].fields})
    return _answer(
        ctx,
        {
            **top.fields,
            "allow_replication_factor_change": bool(
                getattr(request, "allow_replication_factor_change", True)
            ),
            "responses": [{"name": t, "partitions": ps} for t, ps in by_topic.items()],
        },
    )


async def list_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    """ListPartitionReassignments (key 46): the moving partitions (controller.
    list_reassignments, as GET /v1/reassignments), of the topics and partitions asked."""
    node = ctx.node
    if not authorize(ctx, "DESCRIBE", "CLUSTER", CLUSTER_RESOURCE_NAME):
        return _answer(ctx, {**CLUSTER_DENIED.fields, "topics": []})
    node.require_ready()
    state = node.quorum.snapshot_state()
    if request.topics is None:
        moving = controller.list_reassignments(state)
    else:
        wanted = {(t.name, int(p)) for t in request.topics for p in t.partition_indexes}
        moving = [
            m
            for name in dict.fromkeys(t.name for t in request.topics)
            for m in controller.list_reassignments(state, name)
            if (m["topic"], m["partition"]) in wanted
        ]
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for m in moving:
        by_topic.setdefault(str(m["topic"]), []).append(
            {
                "partition_index": m["partition"],
                "replicas": m["replicas"],
                "adding_replicas": m["adding_replicas"],
                "removing_replicas": m["removing_replicas"],
            }
        )
    return _answer(
        ctx,
        {**OK.fields, "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()]},
    )


# -- DescribeLogDirs ----------------------------------------------------------------------


def described_log_dirs(
    log_dirs: Iterable[Mapping[str, Any]], wanted: Mapping[str, set[int]] | None
) -> list[dict[str, Any]]:
    """http_log_dirs' directories (own_log_dirs) as DescribeLogDirs' results: the partitions
    asked (``wanted``: topic -> partitions; None: all), grouped by topic; a directory in error
    with Kafka's code and none."""
    results = []
    for d in log_dirs:
        if d["error"] is not None:
            error = ApiError.from_json(d["error"])
            results.append(
                {"error_code": kafka_error_code(error), "log_dir": d["log_dir"], "topics": []}
            )
            continue
        topics: dict[str, list[dict[str, Any]]] = {}
        for r in d["partitions"]:
            if wanted is not None and r["partition"] not in wanted.get(r["topic"], ()):
                continue
            topics.setdefault(r["topic"], []).append(
                {
                    "partition_index": r["partition"],
                    "partition_size": r["size"],
                    "offset_lag": r["offset_lag"],
                    "is_future_key": r["is_future"],
                }
            )
        results.append(
            {
                "error_code": ErrorCode.none,
                "log_dir": d["log_dir"],
                "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()],
                "total_bytes": d["total_bytes"],
                "usable_bytes": d["usable_bytes"],
                "is_cordoned": False,
            }
        )
    return results


async def describe_log_dirs(ctx: RequestContext, request: Any) -> Any:
    """DescribeLogDirs (key 35): this broker's log directory and its replicas' sizes, as
    GET /v1/brokers/{broker}/log-dirs answers (clients send it to each broker)."""
    if not authorize(ctx, "DESCRIBE", "CLUSTER", CLUSTER_RESOURCE_NAME):
        return _answer(ctx, {**CLUSTER_DENIED.fields, "results": []})
    ctx.node.require_ready()
    wanted: dict[str, set[int]] | None = None
    if request.topics is not None:
        wanted = {}
        for t in request.topics:
            wanted.setdefault(t.topic, set()).update(int(p) for p in t.partitions)
    names = None if wanted is None else frozenset(wanted)
    log_dirs = own_log_dirs(ctx.node, names) if names != frozenset() else []
    return _answer(ctx, {**OK.fields, "results": described_log_dirs(log_dirs, wanted)})


# The admin APIs with the versions we answer: kio's whole range of each, which is Kafka 4.4's.
ADMIN_APIS: tuple[ApiSpec, ...] = (
    ApiSpec(19, 2, 7, create_topics),
    ApiSpec(20, 1, 6, delete_topics),
    ApiSpec(32, 1, 4, describe_configs),
    ApiSpec(35, 1, 5, describe_log_dirs),
    ApiSpec(37, 0, 3, create_partitions),
    ApiSpec(43, 0, 2, elect_leaders),
    ApiSpec(44, 0, 1, incremental_alter_configs),
    ApiSpec(45, 0, 1, alter_partition_reassignments),
    ApiSpec(46, 0, 0, list_partition_reassignments),
    ApiSpec(60, 0, 2, describe_cluster),
)
