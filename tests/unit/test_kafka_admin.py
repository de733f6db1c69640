"""The Kafka listener's admin APIs (server/kafka/admin_*.py): Kafka's reading of each request,
its per-topic and per-resource errors, and every version's answer, over the plans of our HTTP
admin API. The handlers run against an in-memory controller (plans applied to a
MetadataState, as the quorum would); every answer is encoded with kio, so a field a version
lacks or needs is caught here."""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_writer

from client.protocol import ApiError
from kraft.records import (
    AclRecord,
    ConfigRecord,
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    UnfenceBrokerRecord,
)
from kraft.state import MetadataState
from server import controller
from server.config import NodeConfig
from server.kafka import admin_apis, admin_cluster, admin_configs, admin_moves, admin_topics
from server.kafka.apis import RequestContext
from server.kafka.entities import build, topic_uuid
from server.kafka.metadata import (
    ACL_OPERATION_CODES,
    AUTHORIZED_OPERATIONS_OMITTED,
    CLUSTER_OPERATIONS,
    controller_id,
)
from server.topic_configs import TOPIC_CONFIGS

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qk"


def state_with_brokers(*ids: int, fenced: Sequence[int] = ()) -> MetadataState:
    state = MetadataState()
    records: list[MetadataRecord] = []
    for i in ids:
        records.append(
            RegisterBrokerRecord(
                i,
                f"inc{i}",
                0,
                f"http://127.0.0.1:{9000 + i}",
                f"127.0.0.1:{9100 + i}",
                rack=f"rack{i}",
                kafka_address=f"127.0.0.1:{19000 + i}",
            )
        )
        if i not in fenced:
            records.append(UnfenceBrokerRecord(i, 0))
    state.apply_entry(1, records)
    return state


class _Quorum:
    def __init__(self, state: MetadataState) -> None:
        self.state = state

    def snapshot_state(self) -> MetadataState:
        return self.state

    def is_leader(self) -> bool:
        return True

    def leader_id(self) -> int:
        return 1


class Controller:
    """Node 1 leading the quorum, in memory: an admin plan is applied to the state at once."""

    def __init__(self, state: MetadataState, **properties: str) -> None:
        self.node_id = 1
        self.config = NodeConfig.from_properties(
            {
                "node.id": "1",
                "controller.quorum.voters": "1@127.0.0.1:9093",
                "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
                **properties,
            }
        )
        self.meta = SimpleNamespace(cluster_id=CLUSTER_ID)
        self.rng = random.Random(3)
        self.quorum = _Quorum(state)
        self.writes = 0

    @property
    def state(self) -> MetadataState:
        return self.quorum.state

    def require_ready(self) -> None:
        pass

    async def write_metadata(self, plan: Any) -> int | None:
        records = plan(self.state)
        if not records:
            return None
        self.writes += 1
        index = self.state.applied_index + 1
        self.state.apply_entry(index, records)
        return index


def call(
    node: Controller,
    api_key: int,
    version: int,
    body: dict[str, Any],
    principal: str = "User:ANONYMOUS",
) -> Any:
    """The handler's answer to a request of ``version`` built from ``body``, checked to encode."""
    request = build(load_request_schema(api_key, version), body)
    spec = next(s for s in admin_apis.ADMIN_APIS if s.api_key == api_key)
    assert spec.min_version <= version <= spec.max_version
    ctx = RequestContext(node, api_key, version, 7, "test", principal, "127.0.0.1")  # type: ignore[arg-type]

    async def answer() -> Any:
        return await spec.handler(ctx, request)

    response = asyncio.run(answer())
    entity_writer(type(response))(io.BytesIO(), response)
    return response


def new_topic(
    name: str,
    partitions: int = -1,
    factor: int = -1,
    configs: dict[str, str | None] | None = None,
    assignments: list[tuple[int, list[int]]] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "num_partitions": partitions,
        "replication_factor": factor,
        "assignments": [
            {"partition_index": p, "broker_ids": brokers} for p, brokers in assignments or []
        ],
        "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()],
    }


def create(
    node: Controller,
    *topics: dict[str, Any],
    version: int = 7,
    principal: str = "User:ANONYMOUS",
    **extra: Any,
) -> Any:
    body = {"topics": list(topics), "timeout": 30000, **extra}
    return call(node, 19, version, body, principal)


def codes(results: Any) -> dict[str | None, ErrorCode]:
    return {r.name: r.error_code for r in results}


# -- CreateTopics -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(2, 8))
def test_create_topics_answers_every_version_with_the_topics_figures(version: int) -> None:
    node = Controller(state_with_brokers(1, 2, 3))
    response = create(node, new_topic("news", 4, 2, {"retention.ms": "60000"}), version=version)
    (result,) = response.topics
    assert (result.name, result.error_code, result.error_message) == ("news", ErrorCode.none, None)
    topic = node.state.topics["news"]
    assert len(topic.partitions) == 4
    assert all(len(p.replicas) == 2 for p in topic.partitions.values())
    assert topic.configs == {"retention.ms": "60000"}
    if version >= 5:
        assert (result.num_partitions, result.replication_factor) == (4, 2)
        configs = {c.name: c for c in result.configs}
        assert set(configs) == set(TOPIC_CONFIGS)
        assert (configs["retention.ms"].value, configs["retention.ms"].config_source) == (
            "60000",
            1,  # DYNAMIC_TOPIC_CONFIG
        )
        assert configs["segment.bytes"].config_source == 5  # DEFAULT_CONFIG
    if version >= 7:
        assert result.topic_id == topic_uuid(topic.topic_id)


def test_minus_one_takes_the_broker_defaults() -> None:
    node = Controller(
        state_with_brokers(1, 2, 3), **{"num.partitions": "5", "default.replication.factor": "3"}
    )
    (result,) = create(node, new_topic("news")).topics
    assert (result.error_code, result.num_partitions, result.replication_factor) == (
        ErrorCode.none,
        5,
        3,
    )


def test_each_topic_gets_kafkas_error_and_the_rest_are_created() -> None:
    node = Controller(state_with_brokers(1, 2, 3))
    create(node, new_topic("existing", 1, 1))
    response = create(
        node,
        new_topic("existing", 1, 1),
        new_topic("too-many-replicas", 1, 4),
        new_topic("no-partitions", 0, 1),
        new_topic("zero-factor", 1, 0),
        new_topic("bad-config", 1, 1, {"retention.ms": "soon"}),
        new_topic("unknown-config", 1, 1, {"retention.hours": "1"}),
        new_topic("null-config", 1, 1, {"retention.ms": None}),
        new_topic("bad/name", 1, 1),
        new_topic("__cluster_metadata", 1, 1),
        new_topic("twice", 1, 1),
        new_topic("twice", 2, 1),
        new_topic("fine", 2, 3),
    )
    assert codes(response.topics) == {
        "existing": ErrorCode.topic_already_exists,
        "too-many-replicas": ErrorCode.invalid_replication_factor,
        "no-partitions": ErrorCode.invalid_partitions,
        "zero-factor": ErrorCode.invalid_replication_factor,
        "bad-config": ErrorCode.invalid_config,
        "unknown-config": ErrorCode.invalid_config,
        "null-config": ErrorCode.invalid_config,
        "bad/name": ErrorCode.invalid_topic_exception,
        "__cluster_metadata": ErrorCode.invalid_request,
        "twice": ErrorCode.invalid_request,
        "fine": ErrorCode.none,
    }
    assert len(response.topics) == 11  # a name given twice is answered once
    messages = {r.name: r.error_message for r in response.topics}
    assert messages["existing"] == "Topic 'existing' already exists."
    assert messages["twice"] == "Duplicate topic name."
    assert messages["null-config"] == "Null value not supported for topic configs: retention.ms"
    assert "illegal" in messages["bad/name"]
    assert sorted(node.state.topics) == ["existing", "fine"]
    failed = next(r for r in response.topics if r.name == "existing")
    assert (failed.topic_id, failed.num_partitions, failed.configs) == (None, -1, ())


def test_validate_only_checks_and_writes_nothing() -> None:
    node = Controller(state_with_brokers(1, 2, 3))
    response = create(
        node,
        new_topic("news", 3, 3),
        new_topic("wide", 1, 9),
        validate_only=True,
    )
    assert codes(response.topics) == {
        "news": ErrorCode.none,
        "wide": ErrorCode.invalid_replication_factor,
    }
    assert response.topics[0].num_partitions == 3
    assert node.state.topics == {} and node.writes == 0


def test_a_manual_assignment_places_replicas_and_leaves_fenced_ones_out_of_the_isr() -> None:
    node = Controller(state_with_brokers(1, 2, 3, fenced=[3]))
    (result,) = create(node, new_topic("placed", assignments=[(1, [3, 2]), (0, [1, 3])])).topics
    assert result.error_code == ErrorCode.none
    assert (result.num_partitions, result.replication_factor) == (2, 2)
    partitions = node.state.topics["placed"].partitions
    assert (partitions[0].replicas, partitions[0].isr, partitions[0].leader) == ((1, 3), (1,), 1)
    assert (partitions[1].replicas, partitions[1].isr, partitions[1].leader) == ((3, 2), (2,), 2)


@pytest.mark.parametrize(
    ("topic", "code", "message"),
    [
        (
            new_topic("t", factor=2, assignments=[(0, [1, 2])]),
            ErrorCode.invalid_request,
            "A manual partition assignment was specified, but replication factor was not set "
            "to -1.",
        ),
        (
            new_topic("t", partitions=1, assignments=[(0, [1, 2])]),
            ErrorCode.invalid_request,
            "A manual partition assignment was specified, but numPartitions was not set to -1.",
        ),
        (
            new_topic("t", assignments=[(0, [1]), (0, [2])]),
            ErrorCode.invalid_replica_assignment,
            "Found multiple manual partition assignments for partition 0",
        ),
        (
            new_topic("t", assignments=[(0, [1]), (2, [2])]),
            ErrorCode.invalid_replica_assignment,
            "partitions should be a consecutive 0-based integer sequence",
        ),
        (
            new_topic("t", assignments=[(0, [1, 2]), (1, [3])]),
            ErrorCode.invalid_replica_assignment,
            "The manual partition assignment includes a partition with 1 replica(s), but this "
            "is not consistent with previous partitions, which have 2 replica(s).",
        ),
        (
            new_topic("t", assignments=[(0, [1, 1])]),
            ErrorCode.invalid_replica_assignment,
            None,
        ),
        (
            new_topic("t", assignments=[(0, [1, 7])]),
            ErrorCode.invalid_replica_assignment,
            None,
        ),
        (
            new_topic("t", assignments=[(0, [])]),
            ErrorCode.invalid_replica_assignment,
            None,
        ),
        (
            new_topic("t", assignments=[(0, [1]), (1, [4])]),
            ErrorCode.invalid_replica_assignment,
            "All brokers specified in the manual partition assignment for partition 1 are "
            "fenced or in controlled shutdown.",
        ),
    ],
)
def test_bad_manual_assignments_get_kafkas_errors(
    topic: dict[str, Any], code: ErrorCode, message: str | None
) -> None:
    node = Controller(state_with_brokers(1, 2, 3, 4, fenced=[4]))
    (result,) = create(node, topic).topics
    assert result.error_code == code
    if message is not None:
        assert result.error_message == message
    assert node.state.topics == {}


def test_create_needs_create_on_the_cluster_or_the_topic() -> None:
    node = Controller(
        state_with_brokers(1),
        **{
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
        },
    )
    node.state.apply_entry(
        2,
        [
            AclRecord(
                "AAAAAAAAAAAAAAAAAAAAAQ",
                "TOPIC",
                "mine-",
                "PREFIXED",
                "User:alice",
                "*",
                "CREATE",
                "ALLOW",
            )
        ],
    )
    response = create(
        node, new_topic("mine-1", 1, 1), new_topic("theirs", 1, 1), principal="User:alice"
    )
    assert codes(response.topics) == {
        "mine-1": ErrorCode.none,
        "theirs": ErrorCode.topic_authorization_failed,
    }
    # Created, but alice may not DESCRIBE_CONFIGS it: Kafka says so instead of the configs.
    created = response.topics[0]
    assert created.topic_config_error_code == ErrorCode.topic_authorization_failed.value
    assert (created.num_partitions, created.configs) == (-1, ())
    assert sorted(node.state.topics) == ["mine-1"]


# -- DeleteTopics -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(1, 7))
def test_delete_topics_by_name_in_every_version(version: int) -> None:
    node = Controller(state_with_brokers(1))
    create(node, new_topic("a", 1, 1), new_topic("b", 1, 1))
    body: dict[str, Any] = {"timeout": 1000}
    if version >= 6:
        body["topics"] = [{"name": n, "topic_id": None} for n in ("a", "gone")]
    else:
        body["topic_names"] = ["a", "gone"]
    response = call(node, 20, version, body)
    assert codes(response.responses) == {
        "a": ErrorCode.none,
        "gone": ErrorCode.unknown_topic_or_partition,
    }
    assert sorted(node.state.topics) == ["b"]


def test_delete_topics_by_id_and_kafkas_refusals() -> None:
    node = Controller(state_with_brokers(1))
    create(node, new_topic("a", 1, 1), new_topic("b", 1, 1), new_topic("c", 1, 1))
    ids = {name: topic_uuid(t.topic_id) for name, t in node.state.topics.items()}
    unknown = topic_uuid("AAAAAAAAAAAAAAAAAAAAAQ")
    response = call(
        node,
        20,
        6,
        {
            "timeout": 1000,
            "topics": [
                {"name": None, "topic_id": ids["a"]},
                {"name": "b", "topic_id": ids["b"]},
                {"name": None, "topic_id": None},
                {"name": None, "topic_id": unknown},
                {"name": "c", "topic_id": None},
                {"name": "c", "topic_id": None},
            ],
        },
    )
    got = [(r.name, r.topic_id, r.error_code, r.error_message) for r in response.responses]
    assert got == [
        ("a", ids["a"], ErrorCode.none, None),
        (
            "b",
            ids["b"],
            ErrorCode.invalid_request,
            "You may not specify both topic name and topic id.",
        ),
        (None, None, ErrorCode.invalid_request, "Neither topic name nor id were specified."),
        (None, unknown, ErrorCode.unknown_topic_id, "This server does not host this topic ID."),
        ("c", None, ErrorCode.invalid_request, "Duplicate topic name."),
    ]
    assert sorted(node.state.topics) == ["b", "c"]


def test_a_delete_by_id_never_deletes_a_new_topic_of_the_same_name() -> None:
    state = state_with_brokers(1)
    node = Controller(state)
    create(node, new_topic("a", 1, 1))
    old_id = state.topics["a"].topic_id
    plan = admin_topics._delete_plan("a", old_id)
    state.apply_entry(state.applied_index + 1, controller.plan_delete_topic(state, "a"))
    create(node, new_topic("a", 1, 1))
    with pytest.raises(admin_topics._UnknownTopicId):
        plan(state)
    assert "a" in state.topics


# -- CreatePartitions -------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(0, 4))
def test_create_partitions_grows_topics_in_every_version(version: int) -> None:
    node = Controller(state_with_brokers(1, 2, 3))
    create(node, new_topic("a", 1, 2), new_topic("b", 2, 1))
    response = call(
        node,
        37,
        version,
        {
            "timeout": 1000,
            "validate_only": False,
            "topics": [
                {"name": "a", "count": 3, "assignments": None},
                {"name": "b", "count": 2, "assignments": None},
                {"name": "gone", "count": 2, "assignments": None},
            ],
        },
    )
    assert codes(response.results) == {
        "a": ErrorCode.none,
        "b": ErrorCode.invalid_partitions,
        "gone": ErrorCode.unknown_topic_or_partition,
    }
    assert len(node.state.topics["a"].partitions) == 3
    assert all(len(p.replicas) == 2 for p in node.state.topics["a"].partitions.values())


def test_create_partitions_with_assignments_and_validate_only() -> None:
    node = Controller(state_with_brokers(1, 2, 3))
    create(node, new_topic("a", 1, 2))

    def grow(assignments: list[list[int]] | None, validate_only: bool = False) -> Any:
        (result,) = call(
            node,
            37,
            3,
            {
                "timeout": 1000,
                "validate_only": validate_only,
                "topics": [
                    {
                        "name": "a",
                        "count": 3,
                        "assignments": None
                        if assignments is None
                        else [{"broker_ids": b} for b in assignments],
                    }
                ],
            },
        ).results
        return result

    short = grow([[1, 2]])
    assert (short.error_code, short.error_message) == (
        ErrorCode.invalid_replica_assignment,
        "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.",
    )
    assert grow([[1, 2], [3]]).error_code == ErrorCode.invalid_replica_assignment
    assert grow([[3, 1], [2, 3]], validate_only=True).error_code == ErrorCode.none
    assert len(node.state.topics["a"].partitions) == 1
    assert grow([[3, 1], [2, 3]]).error_code == ErrorCode.none
    partitions = node.state.topics["a"].partitions
    assert (partitions[1].replicas, partitions[2].replicas) == ((3, 1), (2, 3))


# -- DescribeConfigs --------------------------------------------------------------------------


def describe(
    node: Controller, version: int, *resources: tuple[int, str, list[str] | None], **kw: Any
) -> Any:
    body: dict[str, Any] = {
        "resources": [
            {"resource_type": t, "resource_name": n, "configuration_keys": keys}
            for t, n, keys in resources
        ],
        "include_synonyms": kw.get("synonyms", False),
        "include_documentation": kw.get("documentation", False),
    }
    return call(node, 32, version, body).results


@pytest.mark.parametrize("version", range(1, 5))
def test_describe_configs_of_a_topic_with_sources_in_every_version(version: int) -> None:
    node = Controller(state_with_brokers(1), **{"log.retention.ms": "7200000"})
    create(node, new_topic("a", 1, 1, {"cleanup.policy": "compact"}))
    (result,) = describe(node, version, (admin_configs.TOPIC_RESOURCE, "a", None), synonyms=True)
    assert result.error_code == ErrorCode.none
    configs = {c.name: c for c in result.configs}
    assert set(configs) == set(TOPIC_CONFIGS)
    policy = configs["cleanup.policy"]
    assert (policy.value, policy.config_source, policy.read_only) == ("compact", 1, False)
    assert [(s.name, s.value, s.source) for s in policy.synonyms] == [
        ("cleanup.policy", "compact", 1),
        ("log.cleanup.policy", "delete", 5),
    ]
    retention = configs["retention.ms"]
    assert (retention.value, retention.config_source) == ("7200000", 4)  # STATIC_BROKER_CONFIG
    if version >= 3:
        assert (retention.config_type, policy.config_type) == (
            admin_configs.LONG,
            admin_configs.LIST,
        )
        assert retention.documentation is None  # not asked for


def test_describe_configs_filters_keys_and_gives_synonyms_and_docs_only_when_asked() -> None:
    node = Controller(state_with_brokers(1))
    create(node, new_topic("a", 1, 1))
    (plain,) = describe(node, 4, (admin_configs.TOPIC_RESOURCE, "a", ["retention.ms", "no.such"]))
    assert [(c.name, c.synonyms, c.documentation) for c in plain.configs] == [
        ("retention.ms", (), None)
    ]
    (full,) = describe(
        node,
        4,
        (admin_configs.TOPIC_RESOURCE, "a", ["retention.ms"]),
        synonyms=True,
        documentation=True,
    )
    (entry,) = full.configs
    assert entry.documentation == TOPIC_CONFIGS["retention.ms"].doc
    assert [s.source for s in entry.synonyms] == [5]


def test_describe_configs_of_this_broker_the_defaults_and_others() -> None:
    node = Controller(state_with_brokers(1, 2), **{"num.partitions": "6"})
    node.state.apply_entry(
        2,
        [
            ConfigRecord("broker", "1", "leader.replication.throttled.rate", "1000"),
            ConfigRecord("broker", "", "follower.replication.throttled.rate", "500"),
        ],
    )
    mine, default, other, bad, unsupported, gone = describe(
        node,
        4,
        (admin_configs.BROKER_RESOURCE, "1", None),
        (admin_configs.BROKER_RESOURCE, "", None),
        (admin_configs.BROKER_RESOURCE, "2", None),
        (admin_configs.BROKER_RESOURCE, "one", None),
        (32, "group", None),
        (admin_configs.TOPIC_RESOURCE, "gone", None),
        synonyms=True,
    )
    configs = {c.name: c for c in mine.configs}
    assert (configs["num.partitions"].value, configs["num.partitions"].config_source) == ("6", 4)
    rate = configs["leader.replication.throttled.rate"]
    assert (rate.value, rate.config_source, rate.read_only) == ("1000", 2, False)
    assert configs["num.partitions"].read_only
    password = configs["ssl.key.password"]
    assert (password.value, password.is_sensitive, password.config_type) == (
        None,
        True,
        admin_configs.PASSWORD,
    )
    assert [(c.name, c.value, c.config_source) for c in default.configs] == [
        ("follower.replication.throttled.rate", "500", 3)
    ]
    assert (other.error_code, other.error_message) == (
        ErrorCode.invalid_request,
        "Unexpected broker id, expected 1 or empty string, but received 2",
    )
    assert bad.error_code == ErrorCode.invalid_request
    assert unsupported.error_code == ErrorCode.invalid_request
    assert gone.error_code == ErrorCode.unknown_topic_or_partition


def test_every_described_config_has_its_kafka_type() -> None:
    node = Controller(state_with_brokers(1))
    (broker,) = describe(node, 4, (admin_configs.BROKER_RESOURCE, "1", None))
    assert [c.name for c in broker.configs if c.config_type == 0] == []
    assert set(TOPIC_CONFIGS) == set(admin_configs.TOPIC_CONFIG_TYPES)


# -- IncrementalAlterConfigs -----------------------------------------------------------------


def alter(
    node: Controller,
    resources: list[tuple[int, str, list[tuple[str, int, str | None]]]],
    version: int = 1,
    validate_only: bool = False,
) -> Any:
    body = {
        "validate_only": validate_only,
        "resources": [
            {
                "resource_type": t,
                "resource_name": n,
                "configs": [{"name": k, "config_operation": op, "value": v} for k, op, v in ops],
            }
            for t, n, ops in resources
        ],
    }
    return call(node, 44, version, body).responses


@pytest.mark.parametrize("version", [0, 1])
def test_incremental_alter_configs_of_a_topic(version: int) -> None:
    node = Controller(state_with_brokers(1))
    create(node, new_topic("a", 1, 1, {"retention.ms": "1000", "segment.ms": "5000"}))
    (result,) = alter(
        node,
        [
            (
                admin_configs.TOPIC_RESOURCE,
                "a",
                [
                    ("retention.ms", admin_configs.SET, "2000"),
                    ("segment.ms", admin_configs.DELETE, None),
                    ("flush.ms", admin_configs.DELETE, None),  # not set: nothing to do, no error
                    ("cleanup.policy", admin_configs.APPEND, "compact"),
                ],
            )
        ],
        version,
    )
    assert (result.error_code, result.resource_name) == (ErrorCode.none, "a")
    assert node.state.topics["a"].configs == {
        "retention.ms": "2000",
        "cleanup.policy": "compact,delete",
    }
    alter(
        node,
        [
            (
                admin_configs.TOPIC_RESOURCE,
                "a",
                [("cleanup.policy", admin_configs.SUBTRACT, "delete")],
            )
        ],
    )
    assert node.state.topics["a"].configs["cleanup.policy"] == "compact"


def test_incremental_alter_configs_refusals_and_validate_only() -> None:
    node = Controller(state_with_brokers(1))
    create(node, new_topic("a", 1, 1), new_topic("b", 1, 1))
    results = alter(
        node,
        [
            (admin_configs.TOPIC_RESOURCE, "a", [("retention.ms", admin_configs.APPEND, "5")]),
            (admin_configs.TOPIC_RESOURCE, "b", [("retention.ms", admin_configs.SET, "x")]),
            (admin_configs.TOPIC_RESOURCE, "gone", [("retention.ms", admin_configs.SET, "5")]),
            (admin_configs.TOPIC_RESOURCE, "c", []),
            (admin_configs.TOPIC_RESOURCE, "c", []),
            (
                admin_configs.BROKER_RESOURCE,
                "2",
                [("leader.replication.throttled.rate", admin_configs.SET, "9")],
            ),
            (admin_configs.BROKER_RESOURCE, "1", [("num.partitions", admin_configs.SET, "9")]),
            (
                admin_configs.BROKER_RESOURCE,
                "",
                [("leader.replication.throttled.rate", admin_configs.SET, "9")],
            ),
            (admin_configs.BROKER_LOGGER_RESOURCE, "1", [("kafka", admin_configs.SET, "DEBUG")]),
        ],
    )
    got = [(r.resource_name, r.error_code) for r in results]
    assert got == [
        ("a", ErrorCode.invalid_config),
        ("b", ErrorCode.invalid_config),
        ("gone", ErrorCode.unknown_topic_or_partition),
        ("c", ErrorCode.invalid_request),
        ("c", ErrorCode.invalid_request),
        ("2", ErrorCode.invalid_request),
        ("1", ErrorCode.invalid_config),
        ("", ErrorCode.invalid_request),
        ("1", ErrorCode.invalid_request),
    ]
    assert (
        results[0].error_message == "Can't APPEND to key retention.ms because its type is not LIST."
    )
    assert results[3].error_message == "Each resource must appear at most once."
    (checked,) = alter(
        node,
        [(admin_configs.TOPIC_RESOURCE, "a", [("retention.ms", admin_configs.SET, "5")])],
        validate_only=True,
    )
    assert checked.error_code == ErrorCode.none
    assert node.state.topics["a"].configs == {}


def test_incremental_alter_configs_sets_and_deletes_this_brokers_throttle_rate() -> None:
    node = Controller(state_with_brokers(1))
    rate = "leader.replication.throttled.rate"
    (result,) = alter(
        node, [(admin_configs.BROKER_RESOURCE, "1", [(rate, admin_configs.SET, "1048576")])]
    )
    assert result.error_code == ErrorCode.none
    assert node.state.broker_configs["1"] == {rate: "1048576"}
    (bad,) = alter(node, [(admin_configs.BROKER_RESOURCE, "1", [(rate, admin_configs.SET, "-5")])])
    assert bad.error_code == ErrorCode.invalid_config
    (listed,) = alter(
        node, [(admin_configs.BROKER_RESOURCE, "1", [(rate, admin_configs.APPEND, "5")])]
    )
    assert listed.error_code == ErrorCode.invalid_config
    # kafka-reassign-partitions clears every throttle a Kafka broker has, ours or not: a
    # DELETE of a config that is not set is nothing to do, whatever its name.
    other = "replica.alter.log.dirs.io.max.bytes.per.second"
    (cleared,) = alter(
        node,
        [
            (
                admin_configs.BROKER_RESOURCE,
                "1",
                [(rate, admin_configs.DELETE, None), (other, admin_configs.DELETE, None)],
            )
        ],
    )
    assert cleared.error_code == ErrorCode.none
    assert "1" not in node.state.broker_configs
    (again,) = alter(
        node, [(admin_configs.BROKER_RESOURCE, "1", [(rate, admin_configs.DELETE, None)])]
    )
    assert again.error_code == ErrorCode.none


def test_operation_checks_are_kafkas() -> None:
    with pytest.raises(ApiError, match="duplicate config keys"):
        admin_configs.check_operations(
            [("a", admin_configs.SET, "1"), ("a", admin_configs.DELETE, None)]
        )
    with pytest.raises(ApiError, match="Null value not supported for : a, b"):
        admin_configs.check_operations(
            [("a", admin_configs.SET, None), ("b", admin_configs.APPEND, None)]
        )
    with pytest.raises(ApiError, match="Unknown operations type 9"):
        admin_configs.check_operations([("a", 9, "1")])
    admin_configs.check_operations([("a", admin_configs.DELETE, None)])


def test_append_and_subtract_work_on_list_items_of_the_override_or_default() -> None:
    changes = admin_configs.topic_config_changes(
        [
            ("cleanup.policy", admin_configs.APPEND, "compact,delete"),
            ("leader.replication.throttled.replicas", admin_configs.SUBTRACT, "0:2"),
        ],
        {"leader.replication.throttled.replicas": "0:1,0:2,1:1"},
    )
    assert changes == {
        "cleanup.policy": "delete,compact",
        "leader.replication.throttled.replicas": "0:1,1:1",
    }


# -- DescribeCluster --------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(0, 3))
def test_describe_cluster_in_every_version(version: int) -> None:
    state = state_with_brokers(1, 2, 3)
    state.apply_entry(2, [FenceBrokerRecord(3, 0)])
    node = Controller(state)
    body: dict[str, Any] = {"include_cluster_authorized_operations": False}
    if version >= 2:
        body["include_fenced_brokers"] = True
    response = call(node, 60, version, body)
    assert (response.error_code, response.cluster_id, response.controller_id) == (
        ErrorCode.none,
        CLUSTER_ID,
        1,
    )
    brokers = [(b.broker_id, b.host, b.port, b.rack) for b in response.brokers]
    expected = [(1, "127.0.0.1", 19001, "rack1"), (2, "127.0.0.1", 19002, "rack2")]
    if version >= 2:
        expected.append((3, "127.0.0.1", 19003, "rack3"))
        assert [b.is_fenced for b in response.brokers] == [False, False, True]
    assert brokers == expected
    assert response.cluster_authorized_operations == AUTHORIZED_OPERATIONS_OMITTED


def test_describe_cluster_authorized_operations_and_the_controller_endpoint() -> None:
    node = Controller(state_with_brokers(1))
    response = call(
        node,
        60,
        2,
        {"include_cluster_authorized_operations": True, "include_fenced_brokers": False},
    )
    every = sum(1 << ACL_OPERATION_CODES[op] for op in CLUSTER_OPERATIONS)
    assert response.cluster_authorized_operations == every
    refused = call(
        node, 60, 1, {"include_cluster_authorized_operations": False, "endpoint_type": 2}
    )
    assert refused.error_code == ErrorCode.mismatched_endpoint_type


def test_the_controller_clients_are_given_is_a_broker_they_can_reach() -> None:
    state = state_with_brokers(1, 2, 3)
    assert controller_id(state, 2, node_id=1) == 2
    # A controller-only leader (not a broker) or none: this node, else the first such broker.
    assert controller_id(state, 9, node_id=3) == 3
    assert controller_id(state, None, node_id=9) == 1
    state.apply_entry(2, [FenceBrokerRecord(b, 0) for b in (1, 2, 3)])
    assert controller_id(state, 1, node_id=1) == -1


def test_every_created_partition_record_applies() -> None:
    state = state_with_brokers(1, 2, 3)
    records = controller.plan_create_topic(
        state,
        "t",
        -1,
        -1,
        None,
        default_partitions=1,
        default_replication_factor=1,
        rng=random.Random(1),
        assignments=[[1, 2, 3], [3, 2, 1]],
    )
    assert [r.replicas for r in records if isinstance(r, PartitionRecord)] == [(1, 2, 3), (3, 2, 1)]
    state.apply_entry(2, records)


# -- ElectLeaders ---------------------------------------------------------------------------


def led_by_second_replica(node: Controller) -> None:
    """Topic "a": partition 0 led by its second replica, 1 by its preferred one."""
    create(node, new_topic("a", assignments=[(0, [1, 2]), (1, [2, 1])]))
    topic_id = node.state.topics["a"].topic_id
    node.state.apply_entry(
        node.state.applied_index + 1, [PartitionChangeRecord(topic_id, 0, leader=2)]
    )


def elect(
    node: Controller, version: int, partitions: dict[str, list[int]] | None, kind: int = 0
) -> Any:
    body: dict[str, Any] = {
        "election_type": kind,
        "timeout": 1000,
        "topic_partitions": None
        if partitions is None
        else [{"topic": t, "partitions": ps} for t, ps in partitions.items()],
    }
    return call(node, 43, version, body)


def election_results(response: Any) -> dict[tuple[str, int], ErrorCode]:
    return {
        (r.topic, p.partition_id): p.error_code
        for r in response.replica_election_results
        for p in r.partition_result
    }


@pytest.mark.parametrize("version", range(0, 3))
def test_elect_leaders_preferred_in_every_version(version: int) -> None:
    node = Controller(state_with_brokers(1, 2))
    led_by_second_replica(node)
    response = elect(node, version, {"a": [0, 1, 7], "gone": [0]})
    assert election_results(response) == {
        ("a", 0): ErrorCode.none,
        ("a", 1): ErrorCode.election_not_needed,
        ("a", 7): ErrorCode.unknown_topic_or_partition,
        ("gone", 0): ErrorCode.unknown_topic_or_partition,
    }
    assert node.state.topics["a"].partitions[0].leader == 1


def test_elect_leaders_of_every_partition_leaves_out_those_not_needing_one() -> None:
    node = Controller(state_with_brokers(1, 2))
    led_by_second_replica(node)
    response = elect(node, 2, None)
    assert election_results(response) == {("a", 0): ErrorCode.none}
    assert [r.topic for r in response.replica_election_results] == ["a"]


def test_unclean_elections_are_needed_by_no_led_partition_and_refused_otherwise() -> None:
    state = state_with_brokers(1, 2)
    node = Controller(state)
    create(node, new_topic("a", assignments=[(0, [1]), (1, [2])]))
    # Broker 2 goes: partition 1's last ISR member stays, with no leader.
    state.apply_entry(state.applied_index + 1, controller.plan_fence_broker(state, 2))
    response = elect(node, 1, {"a": [0, 1]}, kind=admin_moves.UNCLEAN_ELECTION)
    assert election_results(response) == {
        ("a", 0): ErrorCode.election_not_needed,
        ("a", 1): ErrorCode.eligible_leaders_not_available,
    }
    assert node.writes == 1  # the create only


# -- AlterPartitionReassignments / ListPartitionReassignments -------------------------------


def reassign(
    node: Controller, version: int, moves: dict[tuple[str, int], list[int] | None], **kw: Any
) -> Any:
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (t, p), replicas in moves.items():
        by_topic.setdefault(t, []).append({"partition_index": p, "replicas": replicas})
    body = {
        "timeout": 1000,
        "allow_replication_factor_change": kw.get("allow_change", True),
        "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()],
    }
    return call(node, 45, version, body)


def reassignment_results(response: Any) -> dict[tuple[str, int], ErrorCode]:
    return {
        (t.name, p.partition_index): p.error_code for t in response.responses for p in t.partitions
    }


@pytest.mark.parametrize("version", [0, 1])
def test_alter_partition_reassignments_answers_each_partition(version: int) -> None:
    node = Controller(state_with_brokers(1, 2, 3))
    create(node, new_topic("a", assignments=[(0, [1]), (1, [2]), (2, [3])]))
    response = reassign(
        node, version, {("a", 0): [2], ("a", 1): [9], ("a", 2): None, ("a", 5): [1]}
    )
    assert response.error_code == ErrorCode.none
    assert reassignment_results(response) == {
        ("a", 0): ErrorCode.none,
        ("a", 1): ErrorCode.invalid_replica_assignment,
        ("a", 2): ErrorCode.no_reassignment_in_progress,
        ("a", 5): ErrorCode.unknown_topic_or_partition,
    }
    moving = node.state.topics["a"].partitions[0]
    assert (moving.replicas, moving.adding_replicas, moving.removing_replicas) == (
        (2, 1),
        (2,),
        (1,),
    )
    listed = call(node, 46, 0, {"timeout": 1000, "topics": None})
    assert [
        (t.name, [(p.partition_index, p.replicas, p.adding_replicas) for p in t.partitions])
        for t in listed.topics
    ] == [("a", [(0, (2, 1), (2,))])]
    asked = call(
        node, 46, 0, {"timeout": 1000, "topics": [{"name": "a", "partition_indexes": [1]}]}
    )
    assert asked.topics == ()


def test_a_move_may_change_the_replication_factor_only_when_allowed() -> None:
    node = Controller(state_with_brokers(1, 2, 3))
    create(node, new_topic("a", assignments=[(0, [1])]))
    refused = reassign(node, 1, {("a", 0): [1, 2]}, allow_change=False)
    (partition,) = refused.responses[0].partitions
    assert (partition.error_code, partition.error_message) == (
        ErrorCode.invalid_replication_factor,
        "The replication factor is changed from 1 to 2",
    )
    assert reassignment_results(reassign(node, 1, {("a", 0): [1, 2]})) == {("a", 0): ErrorCode.none}


# -- DescribeLogDirs ------------------------------------------------------------------------


def test_log_dirs_answer_the_partitions_asked_and_a_directory_error() -> None:
    healthy = {
        "log_dir": "/data",
        "error": None,
        "total_bytes": 100,
        "usable_bytes": 40,
        "partitions": [
            {"topic": "a", "partition": 0, "size": 10, "offset_lag": 0, "is_future": False},
            {"topic": "a", "partition": 1, "size": 20, "offset_lag": 0, "is_future": False},
            {"topic": "b", "partition": 0, "size": 30, "offset_lag": 0, "is_future": False},
        ],
    }
    (everything,) = admin_cluster.described_log_dirs([healthy], None)
    assert [
        (t["name"], [p["partition_index"] for p in t["partitions"]]) for t in everything["topics"]
    ] == [
        ("a", [0, 1]),
        ("b", [0]),
    ]
    (some,) = admin_cluster.described_log_dirs([healthy], {"a": {1}})
    assert some["topics"] == [
        {
            "name": "a",
            "partitions": [
                {
                    "partition_index": 1,
                    "partition_size": 20,
                    "offset_lag": 0,
                    "is_future_key": False,
                }
            ],
        }
    ]
    broken = {
        "log_dir": "/data",
        "error": {"error_code": 50001, "error": "KAFKA_STORAGE_ERROR", "message": "offline"},
        "partitions": [],
    }
    (failed,) = admin_cluster.described_log_dirs([broken], None)
    assert (failed["error_code"], failed["topics"]) == (ErrorCode.kafka_storage_error, [])


def test_no_topic_may_take_the_metadata_logs_name() -> None:
    # Its partition 0 would be __cluster_metadata-0, the metadata log's own directory: the
    # plan (HTTP's, auto-creation's and Kafka's CreateTopics') refuses it as Kafka does.
    with pytest.raises(ApiError, match="Creation of internal topic __cluster_metadata"):
        controller.plan_create_topic(
            state_with_brokers(1),
            "__cluster_metadata",
            1,
            1,
            None,
            default_partitions=1,
            default_replication_factor=1,
            rng=random.Random(1),
        )


def test_a_broker_describes_its_listeners_the_kafka_one_included() -> None:
    node = Controller(
        state_with_brokers(1),
        listeners="HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,KAFKA://127.0.0.1:19092",
    )
    (broker,) = describe(node, 4, (admin_configs.BROKER_RESOURCE, "1", None), synonyms=True)
    configs = {c.name: c for c in broker.configs}
    assert configs["listeners"].value == (
        "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,KAFKA://127.0.0.1:19092"
    )
    advertised = configs["advertised.listeners"]
    assert advertised.value == "HTTP://127.0.0.1:9092,KAFKA://127.0.0.1:19092"
    assert [(s.value, s.source) for s in advertised.synonyms] == [(advertised.value, 4)]
    assert configs["group.initial.rebalance.delay.ms"].value == "3000"
    assert configs["group.max.size"].value == "1000"
