"""The topic admin APIs of the Kafka listener: CreateTopics, DeleteTopics, CreatePartitions,
each over the plans of ``server/controller.py`` that ``POST /v1/topics``, ``DELETE
/v1/topics/{topic}`` and ``POST /v1/topics/{topic}/partitions`` carry out
(``server/kafka/admin_writes.py``). The Kafka side adds the checks Kafka makes before its
controller sees a request (a name twice, a null config value, a manual assignment's shape,
by-id deletes) and one result per topic with Kafka's code and message.

Authorization is Kafka's: CREATE on the cluster or the topic for CreateTopics (and
DESCRIBE_CONFIGS on it for the configs of v5+ results), DELETE for DeleteTopics, ALTER for
CreatePartitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from client.protocol import (
    INVALID_CONFIG,
    INVALID_REPLICA_ASSIGNMENT,
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
from server import controller
from server.http_configs import topic_config_entries
from server.kafka.admin_configs import config_entry
from server.kafka.admin_writes import (
    DUPLICATE_TOPIC,
    OK,
    TOPIC_DENIED,
    Outcome,
    Plan,
    admin_write,
    duplicates,
    forward_json,
    named_once,
    readiness,
    response_of,
    topic_path,
)
from server.kafka.apis import RequestContext, authorize
from server.kafka.entities import topic_id_text
from server.node import Node

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
    def fromresponse_of(cls, answer: Mapping[str, Any]) -> CreatedTopic:
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
        "configs": [config_entry(e, 0, None) for e in entries],
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
        return CreatedTopic.fromresponse_of(answer)
    assert records, "a topic's creation writes records"
    return CreatedTopic.from_records(records)


async def create_topics(ctx: RequestContext, request: Any) -> Any:
    """CreateTopics (key 19): each topic planned and written on its own, in request order."""
    # Readiness before authorization: until the metadata is loaded, the ACLs are not.
    unready = readiness(ctx.node)
    may_create_any = authorize(ctx, "CREATE", "CLUSTER", CLUSTER_RESOURCE_NAME)
    validate_only = bool(getattr(request, "validate_only", False))
    results: list[dict[str, Any]] = []
    for name, topic in named_once(request.topics):
        if topic is None:
            results.append(failed_creation(name, DUPLICATE_TOPIC))
            continue
        if unready is not OK:
            results.append(failed_creation(name, unready))
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
    return response_of(ctx, {"topics": results})


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
    if (unready := readiness(node)) is not OK:
        # Neither the topics (an id's name) nor the ACLs are known before the metadata is.
        failed = [{"name": n, "topic_id": i, **unready.fields} for n, i in entries]
        return response_of(ctx, {"responses": failed})
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
    return response_of(ctx, {"responses": results})


async def _delete_topic(node: Node, name: str, topic_id: str | None, by_id: bool) -> Outcome:
    try:
        await admin_write(
            node,
            _delete_plan(name, topic_id if by_id else None),
            False,
            lambda: forward_json(node, "DELETE", topic_path(name), None),
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
        lambda: forward_json(node, "POST", topic_path(name, "partitions"), body),
    )


async def create_partitions(ctx: RequestContext, request: Any) -> Any:
    """CreatePartitions (key 37): grows topics, placed by us or by the requester."""
    # Readiness before authorization: until the metadata is loaded, the ACLs are not.
    unready = readiness(ctx.node)
    results: list[dict[str, Any]] = []
    for name, topic in named_once(request.topics):
        if topic is None:
            results.append({"name": name, **DUPLICATE_TOPIC.fields})
            continue
        if unready is not OK:
            results.append({"name": name, **unready.fields})
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
    return response_of(ctx, {"results": results})
