"""Kafka's group APIs on the Kafka listener (server/kafka/group_apis.py): each kio request turned
into the group coordinator's call and its answer into the response of the request's version,
with what Kafka's KafkaApis does before its coordinator (ACLs, topics checked per partition,
the coordinator's failures as Kafka answers them). The coordinator is a recording fake; the
metadata a real MetadataState. No sockets.

Also the coordinator's calls that exist for the listener (server/groups/shard.py): OffsetDelete,
the OffsetFetch member check, and a group's kind as Kafka names it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import typing
import uuid
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode

from client.protocol import (
    COORDINATOR_LOAD_IN_PROGRESS,
    FENCED_MEMBER_EPOCH,
    GROUP_ID_NOT_FOUND,
    GROUP_MAX_SIZE_REACHED,
    ILLEGAL_GENERATION,
    NON_EMPTY_GROUP,
    NOT_COORDINATOR,
    NOT_ENOUGH_REPLICAS,
    NOT_LEADER_OR_FOLLOWER,
    RECORD_TOO_LARGE,
    STALE_MEMBER_EPOCH,
    UNKNOWN_MEMBER_ID,
    ApiError,
)
from kraft.records import (
    AclRecord,
    MetadataRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from kraft.state import MetadataState
from server import limits
from server.auto_topics import OFFSETS_TOPIC
from server.config import GroupSettings
from server.groups.classic_messages import (
    DescribedGroup,
    DescribedMember,
    JoinMember,
    JoinRequest,
    JoinResponse,
    KafkaError,
    LeaveRequest,
    LeaveResponse,
    LeavingMember,
    LeftMember,
    SyncRequest,
    SyncResponse,
)
from server.groups.runtime import partition_for_group
from server.groups.shard import CommitOffset, GroupShard, Heartbeat, Topics
from server.kafka import frames, group_apis
from server.kafka.apis import ApiTable, RequestContext, api_table
from server.kafka.entities import build, topic_uuid
from server.kafka.metadata import AUTHORIZED_OPERATIONS_OMITTED
from storage.group_records import OffsetCommitValue

ORDERS_ID = "x5Ujx2PtQ1C2rkC8-XNMZA"
OFFSETS_ID = "AAAAAAAAAAAAAAAAAAAAAQ"
OFFSETS_PARTITIONS = 3
GROUP = "g"


def metadata(
    acls: tuple[AclRecord, ...] = (), kafka: dict[int, str | None] | None = None
) -> MetadataState:
    """Brokers 1-3 (KAFKA listeners k1:9001..k3:9003 unless ``kafka`` says otherwise), topic
    ``orders`` of two partitions, ``__consumer_offsets`` of three led by brokers 1, 2, 3."""
    kafka = kafka or {b: f"k{b}:900{b}" for b in (1, 2, 3)}
    records: list[MetadataRecord] = []
    for b, address in kafka.items():
        records.append(
            RegisterBrokerRecord(b, f"i{b}", 0, f"http://h{b}:9092", "", True, None, address)
        )
        records.append(UnfenceBrokerRecord(b, 0))
    records.append(TopicRecord("orders", ORDERS_ID))
    records += [PartitionRecord(ORDERS_ID, p, (1, 2, 3), (1, 2, 3), 1, 0, 0) for p in (0, 1)]
    records.append(TopicRecord(OFFSETS_TOPIC, OFFSETS_ID))
    records += [
        PartitionRecord(OFFSETS_ID, p, (1, 2, 3), (1, 2, 3), p + 1, 0, 0)
        for p in range(OFFSETS_PARTITIONS)
    ]
    records += acls
    state = MetadataState()
    state.apply_entry(1, records)
    return state


def committed(offset: int, leader_epoch: int = -1, text: str = "") -> OffsetCommitValue:
    return OffsetCommitValue(offset, leader_epoch, text, 0, ORDERS_ID)


class FakeCoordinator:
    """Records the listener's calls (name, arguments); answers from ``answers`` (by call name)
    or raises ``errors[name]``."""

    def __init__(self, state: MetadataState) -> None:
        self.state = state
        self.calls: list[tuple[Any, ...]] = []
        self.answers: dict[str, Any] = {}
        self.errors: dict[str, ApiError] = {}

    def _call(self, name: str, *args: Any) -> Any:
        self.calls.append((name, *args))
        if name in self.errors:
            raise self.errors[name]
        return self.answers.get(name)

    async def join_group(self, group_id: str, request: JoinRequest) -> JoinResponse:
        answer = self._call("join", group_id, request)
        return answer or JoinResponse(None, "m1", 1, "consumer", "range", "m1")

    async def sync_group(self, group_id: str, request: SyncRequest) -> SyncResponse:
        return self._call("sync", group_id, request) or SyncResponse(
            None, b"A", "consumer", "range"
        )

    async def heartbeat(self, group_id: str, request: Any) -> KafkaError | None:
        answer: KafkaError | None = self._call("heartbeat", group_id, request)
        return answer

    async def leave_group(self, group_id: str, request: LeaveRequest) -> LeaveResponse:
        answer = self._call("leave", group_id, request)
        return answer or LeaveResponse(
            None, tuple(LeftMember(m.member_id, m.group_instance_id, None) for m in request.members)
        )

    async def commit_offsets(
        self,
        group_id: str,
        member_id: str | None,
        generation: int | None,
        offsets: list[CommitOffset],
        *,
        group_instance_id: str | None = None,
        api_version: int | None = None,
    ) -> Any:
        return self._call(
            "commit", group_id, member_id, generation, offsets, group_instance_id, api_version
        )

    async def fetch_offsets(
        self, group_id: str, member_id: str | None, member_epoch: int
    ) -> dict[tuple[str, int], OffsetCommitValue]:
        answer = self._call("fetch", group_id, member_id, member_epoch)
        return dict(answer or {})

    async def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]) -> list[str]:
        return list(self._call("delete_offsets", group_id, partitions) or [])

    async def delete_group(self, group_id: str) -> None:
        self._call("delete_group", group_id)

    async def describe_classic(self, group_id: str) -> DescribedGroup:
        answer = self._call("describe_classic", group_id)
        return answer or DescribedGroup(group_id, "Empty")

    async def describe_consumer(self, group_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("describe_consumer", group_id)
        return answer

    async def consumer_heartbeat(self, group_id: str, hb: Heartbeat) -> tuple[Any, bool]:
        answer = self._call("consumer_heartbeat", group_id, hb)
        return answer or (
            {
                "member_id": hb.member_id or "new",
                "member_epoch": 5,
                "heartbeat_interval_ms": 5000,
                "assignment": [{"topic": "orders", "partition": 1}],
            },
            False,
        )

    def kafka_groups(self) -> list[tuple[str, str, str, str]]:
        answer: list[tuple[str, str, str, str]] = self._call("kafka_groups")
        return answer

    def topics(self) -> Topics:
        return Topics({n: (t.topic_id, len(t.partitions)) for n, t in self.state.topics.items()})


class FakeNode:
    node_id = 1

    def __init__(self, state: MetadataState, *, authorizer: bool = False) -> None:
        self.state = state
        self.ready = True
        self.quorum = SimpleNamespace(snapshot_state=lambda: self.state)
        self.config = SimpleNamespace(
            groups=GroupSettings(),
            authorizer_enabled=authorizer,
            super_users=frozenset(),
            allow_everyone_if_no_acl_found=False,
        )
        self.groups = FakeCoordinator(state)

    def require_ready(self) -> None:
        assert self.ready


def context(node: FakeNode, api_key: int, version: int) -> RequestContext:
    return RequestContext(cast(Any, node), api_key, version, 7, "app", "User:alice", "10.0.0.9")


def call(node: FakeNode, api_key: int, version: int, values: dict[str, Any]) -> Any:
    """The handler's response to the request of ``values`` (built as the request class of the
    version), after checking it is the response class of that version and encodes."""
    request = build(load_request_schema(api_key, version), values)
    spec = api_table().specs[api_key]
    response = run(spec.handler(context(node, api_key, version), request))
    assert type(response) is load_response_schema(api_key, version)
    frames.encode(response)
    return response


def run(awaitable: Awaitable[Any]) -> Any:
    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())


def ms(value: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=value)


# -- the table -----------------------------------------------------------------------------------


def test_the_table_serves_kio_s_versions_of_every_group_api() -> None:
    served = {s.api_key: (s.min_version, s.max_version) for s in group_apis.GROUP_APIS}
    assert served == {
        8: (2, 10),  # OffsetCommit (Kafka 4 dropped v0-1)
        9: (1, 10),  # OffsetFetch (Kafka 4 dropped v0)
        10: (0, 6),  # FindCoordinator
        11: (0, 9),  # JoinGroup
        12: (0, 4),  # Heartbeat
        13: (0, 5),  # LeaveGroup
        14: (0, 5),  # SyncGroup
        15: (0, 6),  # DescribeGroups
        16: (0, 5),  # ListGroups
        42: (0, 2),  # DeleteGroups
        47: (0, 0),  # OffsetDelete
        68: (0, 1),  # ConsumerGroupHeartbeat
        69: (0, 1),  # ConsumerGroupDescribe
    }
    ApiTable(group_apis.GROUP_APIS)  # kio has every version named


def _sample(cls: Any) -> Any:
    """A request of kio class ``cls`` with a value in every field (one element in each
    array), as a client could send."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint)
        if type(None) in args:
            hint = next(a for a in args if a is not type(None))
            args = typing.get_args(hint)
        kafka_type = f.metadata.get("kafka_type")
        if typing.get_origin(hint) is tuple:
            item = args[0]
            values[f.name] = (
                (_sample(item),)
                if dataclasses.is_dataclass(item)
                else (_primitive(kafka_type, f.name),)
            )
        elif dataclasses.is_dataclass(hint):
            values[f.name] = _sample(hint)
        else:
            values[f.name] = _primitive(kafka_type, f.name)
    return cls(**values)


def _primitive(kafka_type: Any, name: str) -> Any:
    if kafka_type == "string":
        return {"protocol_type": "consumer"}.get(name, "orders" if "topic" in name else GROUP)
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return ms(30_000)
    if kafka_type == "uuid":
        return topic_uuid(ORDERS_ID)
    if kafka_type == "bool":
        return False
    if kafka_type == "bytes":
        return b""
    return 0


@pytest.mark.parametrize(
    ("api_key", "version"),
    [
        (s.api_key, v)
        for s in group_apis.GROUP_APIS
        for v in range(s.min_version, s.max_version + 1)
    ],
)
def test_every_version_answers_with_its_own_response_class(api_key: int, version: int) -> None:
    node = FakeNode(metadata())
    node.groups.answers.update(
        kafka_groups=[(GROUP, "classic", "consumer", "Stable")],
        describe_consumer={
            "state": "Stable",
            "group_epoch": 2,
            "assignment_epoch": 2,
            "assignor": "uniform",
            "members": [],
        },
    )
    request = _sample(load_request_schema(api_key, version))
    spec = api_table().specs[api_key]
    response = run(spec.handler(context(node, api_key, version), request))
    assert type(response) is load_response_schema(api_key, version)
    frames.encode(response)


# -- FindCoordinator -----------------------------------------------------------------------------


def _leader_of(group: str) -> int:
    return partition_for_group(group, OFFSETS_PARTITIONS) + 1  # partition p is led by p + 1


def test_find_coordinator_names_the_leader_of_the_group_s_offsets_partition() -> None:
    node = FakeNode(metadata())
    for version in (0, 3):
        answer = call(node, 10, version, {"key": "payments", "key_type": 0})
        leader = _leader_of("payments")
        assert (answer.error_code, answer.node_id) == (ErrorCode.none, leader)
        assert (answer.host, answer.port) == (f"k{leader}", 9000 + leader)


def test_find_coordinator_v4_answers_every_key_of_the_batch() -> None:
    keys = ["a", "b", "c", "d"]
    answer = call(FakeNode(metadata()), 10, 4, {"key_type": 0, "coordinator_keys": keys})
    assert [(c.key, c.node_id, c.port) for c in answer.coordinators] == [
        (k, _leader_of(k), 9000 + _leader_of(k)) for k in keys
    ]
    assert {c.error_code for c in answer.coordinators} == {ErrorCode.none}


def test_find_coordinator_refuses_transaction_and_share_keys_as_invalid_request() -> None:
    node = FakeNode(metadata())
    for key_type in (1, 2, 9):
        answer = call(node, 10, 6, {"key_type": key_type, "coordinator_keys": ["x"]})
        (c,) = answer.coordinators
        assert (c.error_code, c.node_id, c.host, c.port) == (ErrorCode.invalid_request, -1, "", -1)
        assert c.error_message
    answer = call(node, 10, 3, {"key": "tx", "key_type": 1})
    assert answer.error_code == ErrorCode.invalid_request
    assert "transactional.id" in answer.error_message


def test_a_coordinator_without_a_kafka_listener_is_not_available() -> None:
    state = metadata(kafka={1: "k1:9001", 2: "k2:9002", 3: None})
    group = next(g for g in (f"g{i}" for i in range(100)) if _leader_of(g) == 3)
    answer = call(FakeNode(state), 10, 3, {"key": group, "key_type": 0})
    assert (answer.error_code, answer.node_id) == (ErrorCode.coordinator_not_available, -1)


# -- the classic protocol ------------------------------------------------------------------------


def test_join_group_v0_takes_the_session_timeout_as_rebalance_timeout() -> None:
    node = FakeNode(metadata())
    request = {
        "group_id": GROUP,
        "session_timeout": ms(10_000),
        "member_id": "",
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b"sub"}],
    }
    answer = call(node, 11, 0, request)
    (name, group, join) = node.groups.calls[0]
    assert (name, group) == ("join", GROUP)
    assert join == JoinRequest(
        member_id="",
        protocol_type="consumer",
        protocols=(("range", b"sub"),),
        session_timeout_ms=10_000,
        rebalance_timeout_ms=10_000,
        client_id="app",
        client_host="/10.0.0.9",
        requires_known_member_id=False,
    )
    assert (answer.error_code, answer.generation_id, answer.protocol_name) == (
        ErrorCode.none,
        1,
        "range",
    )


def test_join_group_v9_carries_its_fields_and_the_leader_sees_every_member() -> None:
    node = FakeNode(metadata())
    members = (JoinMember("m1", None, b"s1"), JoinMember("m2", None, b"s2"))
    node.groups.answers["join"] = JoinResponse(
        None, "m1", 3, "consumer", "range", "m1", False, members
    )
    answer = call(
        node,
        11,
        9,
        {
            "group_id": GROUP,
            "session_timeout": ms(45_000),
            "rebalance_timeout": ms(300_000),
            "member_id": "m1",
            "group_instance_id": None,
            "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": b"s1"}],
            "reason": "rejoin",
        },
    )
    join = node.groups.calls[0][2]
    assert (join.rebalance_timeout_ms, join.requires_known_member_id, join.reason) == (
        300_000,
        True,
        "rejoin",
    )
    assert [(m.member_id, m.metadata) for m in answer.members] == [("m1", b"s1"), ("m2", b"s2")]
    assert (answer.leader, answer.protocol_type, answer.skip_assignment) == (
        "m1",
        "consumer",
        False,
    )


def test_join_group_errors_are_kafka_s_codes_and_a_v0_protocol_name_is_empty() -> None:
    node = FakeNode(metadata())
    node.groups.answers["join"] = JoinResponse(KafkaError.MEMBER_ID_REQUIRED, "m-new")
    request = {
        "group_id": GROUP,
        "session_timeout": ms(10_000),
        "rebalance_timeout": ms(10_000),
        "member_id": "",
        "protocol_type": "consumer",
        "protocols": [],
    }
    answer = call(node, 11, 5, request)
    assert (answer.error_code, answer.member_id, answer.protocol_name) == (
        ErrorCode.member_id_required,
        "m-new",
        "",
    )
    answer = call(node, 11, 7, request)
    assert answer.protocol_name is None


def test_sync_and_heartbeat_carry_generation_and_assignments() -> None:
    node = FakeNode(metadata())
    answer = call(
        node,
        14,
        5,
        {
            "group_id": GROUP,
            "generation_id": 4,
            "member_id": "m1",
            "group_instance_id": None,
            "protocol_type": "consumer",
            "protocol_name": "range",
            "assignments": [{"member_id": "m1", "assignment": b"A"}],
        },
    )
    assert node.groups.calls[-1][2] == SyncRequest(
        "m1", 4, (("m1", b"A"),), None, "consumer", "range"
    )
    assert (answer.error_code, answer.assignment, answer.protocol_name) == (
        ErrorCode.none,
        b"A",
        "range",
    )
    node.groups.answers["heartbeat"] = KafkaError.REBALANCE_IN_PROGRESS
    answer = call(node, 12, 4, {"group_id": GROUP, "generation_id": 4, "member_id": "m1"})
    assert answer.error_code == ErrorCode.rebalance_in_progress


def test_leave_group_before_v3_answers_its_one_member_s_error() -> None:
    node = FakeNode(metadata())
    node.groups.answers["leave"] = LeaveResponse(
        None, (LeftMember("m1", None, KafkaError.UNKNOWN_MEMBER_ID),)
    )
    answer = call(node, 13, 2, {"group_id": GROUP, "member_id": "m1"})
    assert node.groups.calls[-1][2] == LeaveRequest((LeavingMember("m1"),))
    assert answer.error_code == ErrorCode.unknown_member_id
    # The request's own error comes first (the group is gone, the coordinator moved).
    node.groups.answers["leave"] = LeaveResponse(KafkaError.NOT_COORDINATOR)
    assert call(node, 13, 0, {"group_id": GROUP, "member_id": "m1"}).error_code == (
        ErrorCode.not_coordinator
    )


def test_leave_group_v3_answers_each_member() -> None:
    node = FakeNode(metadata())
    node.groups.answers["leave"] = LeaveResponse(
        None,
        (LeftMember("m1", None, None), LeftMember("m2", None, KafkaError.UNKNOWN_MEMBER_ID)),
    )
    members = [
        {"member_id": "m1", "group_instance_id": None, "reason": "bye"},
        {"member_id": "m2", "group_instance_id": None, "reason": None},
    ]
    answer = call(node, 13, 5, {"group_id": GROUP, "members": members})
    assert node.groups.calls[-1][2] == LeaveRequest(
        (LeavingMember("m1", None, "bye"), LeavingMember("m2", None, None))
    )
    assert answer.error_code == ErrorCode.none
    assert [(m.member_id, m.error_code) for m in answer.members] == [
        ("m1", ErrorCode.none),
        ("m2", ErrorCode.unknown_member_id),
    ]


# -- OffsetCommit --------------------------------------------------------------------------------


def _commit(version: int, topics: list[dict[str, Any]], **values: Any) -> dict[str, Any]:
    return {
        "group_id": GROUP,
        "generation_id_or_member_epoch": 3,
        "member_id": "m1",
        "retention_time": ms(-1),
        "group_instance_id": None,
        "topics": topics,
        **values,
    }


def _partition(index: int, offset: int, text: str | None = "", epoch: int = -1) -> dict[str, Any]:
    return {
        "partition_index": index,
        "committed_offset": offset,
        "committed_leader_epoch": epoch,
        "committed_metadata": text,
    }


def _codes(answer: Any) -> list[tuple[str | None, int, ErrorCode]]:
    return [
        (getattr(t, "name", None), p.partition_index, p.error_code)
        for t in answer.topics
        for p in t.partitions
    ]


def test_offset_commit_leaves_unknown_topics_and_partitions_out_of_the_commit() -> None:
    node = FakeNode(metadata())
    topics = [
        {"name": "orders", "partitions": [_partition(0, 10, "m", 4), _partition(7, 1)]},
        {"name": "nope", "partitions": [_partition(0, 1)]},
    ]
    answer = call(node, 8, 9, _commit(9, topics))
    assert _codes(answer) == [
        ("orders", 0, ErrorCode.none),
        ("orders", 7, ErrorCode.unknown_topic_or_partition),
        ("nope", 0, ErrorCode.unknown_topic_or_partition),
    ]
    assert node.groups.calls == [
        ("commit", GROUP, "m1", 3, [CommitOffset("orders", 0, 10, "m", 4)], None, 9)
    ]


def test_offset_commit_gives_a_group_error_to_every_partition_it_committed() -> None:
    node = FakeNode(metadata())
    node.groups.errors["commit"] = ApiError(ILLEGAL_GENERATION, "generation 3 is not the group's")
    topics = [
        {"name": "orders", "partitions": [_partition(0, 10), _partition(1, 4)]},
        {"name": "nope", "partitions": [_partition(0, 1)]},
    ]
    assert _codes(call(node, 8, 8, _commit(8, topics))) == [
        ("orders", 0, ErrorCode.illegal_generation),
        ("orders", 1, ErrorCode.illegal_generation),
        ("nope", 0, ErrorCode.unknown_topic_or_partition),
    ]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ApiError(NOT_ENOUGH_REPLICAS, "isr"), ErrorCode.coordinator_not_available),
        (ApiError(NOT_LEADER_OR_FOLLOWER, "moved"), ErrorCode.not_coordinator),
        (ApiError(NOT_COORDINATOR, "not here"), ErrorCode.not_coordinator),
        (ApiError(COORDINATOR_LOAD_IN_PROGRESS, "loading"), ErrorCode.coordinator_load_in_progress),
        (ApiError(RECORD_TOO_LARGE, "too many"), ErrorCode.unknown_server_error),
        (ApiError(STALE_MEMBER_EPOCH, "old"), ErrorCode.stale_member_epoch),
        (ApiError(GROUP_ID_NOT_FOUND, "none"), ErrorCode.group_id_not_found),
        (ApiError(UNKNOWN_MEMBER_ID, "who"), ErrorCode.unknown_member_id),
    ],
)
def test_the_coordinator_s_failures_are_answered_as_kafka_s_coordinator_answers(
    error: ApiError, code: ErrorCode
) -> None:
    assert group_apis.group_error(error) == code


def test_offset_commit_refuses_long_metadata_per_partition_and_commits_the_rest() -> None:
    node = FakeNode(metadata())
    long = "x" * (node.config.groups.offset_metadata_max_bytes + 1)
    topics = [{"name": "orders", "partitions": [_partition(0, 10, long), _partition(1, 4, None)]}]
    answer = call(node, 8, 7, _commit(7, topics))
    assert _codes(answer) == [
        ("orders", 0, ErrorCode.offset_metadata_too_large),
        ("orders", 1, ErrorCode.none),
    ]
    assert node.groups.calls[0][4] == [CommitOffset("orders", 1, 4, "", -1)]


def test_offset_commit_without_group_id_is_invalid_group_id() -> None:
    node = FakeNode(metadata())
    topics = [{"name": "orders", "partitions": [_partition(0, 1)]}]
    answer = call(node, 8, 9, _commit(9, topics, group_id=""))
    assert _codes(answer) == [("orders", 0, ErrorCode.invalid_group_id)]
    assert node.groups.calls == []


def test_offset_commit_v10_names_topics_by_id() -> None:
    node = FakeNode(metadata())
    unknown = uuid.UUID(int=7)
    topics = [
        {"topic_id": topic_uuid(ORDERS_ID), "partitions": [_partition(1, 9)]},
        {"topic_id": unknown, "partitions": [_partition(0, 1)]},
    ]
    answer = call(node, 8, 10, _commit(10, topics))
    assert [(t.topic_id, [p.error_code for p in t.partitions]) for t in answer.topics] == [
        (topic_uuid(ORDERS_ID), [ErrorCode.none]),
        (unknown, [ErrorCode.unknown_topic_id]),
    ]
    assert node.groups.calls[0][4] == [CommitOffset("orders", 1, 9, "", -1)]


# -- OffsetFetch ---------------------------------------------------------------------------------


def test_offset_fetch_answers_the_partitions_asked_for_and_minus_one_without_offset() -> None:
    node = FakeNode(metadata())
    node.groups.answers["fetch"] = {("orders", 0): committed(12, 3, "m")}
    topics = [{"name": "orders", "partition_indexes": [0, 1]}]
    answer = call(node, 9, 7, {"group_id": GROUP, "topics": topics, "require_stable": True})
    assert answer.error_code == ErrorCode.none
    (topic,) = answer.topics
    assert [
        (p.partition_index, p.committed_offset, p.committed_leader_epoch, p.metadata)
        for p in topic.partitions
    ] == [(0, 12, 3, "m"), (1, -1, -1, "")]
    assert node.groups.calls == [("fetch", GROUP, None, -1)]


def test_offset_fetch_of_all_topics_lists_every_committed_offset() -> None:
    node = FakeNode(metadata())
    node.groups.answers["fetch"] = {("orders", 1): committed(5), ("orders", 0): committed(2)}
    answer = call(node, 9, 6, {"group_id": GROUP, "topics": None})
    assert [
        (t.name, [(p.partition_index, p.committed_offset) for p in t.partitions])
        for t in answer.topics
    ] == [("orders", [(0, 2), (1, 5)])]


def test_offset_fetch_v1_puts_the_group_error_on_every_partition() -> None:
    node = FakeNode(metadata())
    node.groups.errors["fetch"] = ApiError(NOT_COORDINATOR, "not here")
    topics = [{"name": "orders", "partition_indexes": [0, 1]}]
    answer = call(node, 9, 1, {"group_id": GROUP, "topics": topics})
    assert _codes(answer) == [("orders", 0, ErrorCode.not_coordinator)] * 1 + [
        ("orders", 1, ErrorCode.not_coordinator)
    ]
    answer = call(node, 9, 2, {"group_id": GROUP, "topics": topics})
    assert (answer.error_code, answer.topics) == (ErrorCode.not_coordinator, ())


def test_offset_fetch_v9_answers_each_group_with_its_member_checked() -> None:
    node = FakeNode(metadata())
    node.groups.answers["fetch"] = {("orders", 0): committed(3)}
    groups = [
        {"group_id": "a", "member_id": "m1", "member_epoch": 4, "topics": None},
        {"group_id": "b", "member_id": None, "member_epoch": -1, "topics": None},
    ]
    answer = call(node, 9, 9, {"groups": groups, "require_stable": False})
    assert node.groups.calls == [("fetch", "a", "m1", 4), ("fetch", "b", None, -1)]
    assert [(g.group_id, g.error_code, len(g.topics)) for g in answer.groups] == [
        ("a", ErrorCode.none, 1),
        ("b", ErrorCode.none, 1),
    ]


def test_offset_fetch_v10_names_topics_by_id() -> None:
    node = FakeNode(metadata())
    node.groups.answers["fetch"] = {("orders", 1): committed(8)}
    groups = [
        {
            "group_id": GROUP,
            "member_id": None,
            "member_epoch": -1,
            "topics": [
                {"topic_id": topic_uuid(ORDERS_ID), "partition_indexes": [1]},
                {"topic_id": uuid.UUID(int=5), "partition_indexes": [0]},
            ],
        }
    ]
    (group,) = call(node, 9, 10, {"groups": groups, "require_stable": False}).groups
    assert [
        (t.topic_id, [(p.committed_offset, p.error_code) for p in t.partitions])
        for t in group.topics
    ] == [
        (topic_uuid(ORDERS_ID), [(8, ErrorCode.none)]),
        (uuid.UUID(int=5), [(-1, ErrorCode.unknown_topic_id)]),
    ]
    all_topics = [{"group_id": GROUP, "member_id": None, "member_epoch": -1, "topics": None}]
    (group,) = call(node, 9, 10, {"groups": all_topics, "require_stable": False}).groups
    assert [t.topic_id for t in group.topics] == [topic_uuid(ORDERS_ID)]


# -- OffsetDelete, DeleteGroups ------------------------------------------------------------------


def test_offset_delete_answers_subscribed_topics_and_unknown_partitions() -> None:
    node = FakeNode(metadata())
    node.groups.answers["delete_offsets"] = ["orders"]
    topics = [
        {"name": "orders", "partitions": [{"partition_index": 0}, {"partition_index": 9}]},
        {"name": "nope", "partitions": [{"partition_index": 0}]},
    ]
    answer = call(node, 47, 0, {"group_id": GROUP, "topics": topics})
    assert answer.error_code == ErrorCode.none
    assert _codes(answer) == [
        ("orders", 0, ErrorCode.group_subscribed_to_topic),
        ("orders", 9, ErrorCode.unknown_topic_or_partition),
        ("nope", 0, ErrorCode.unknown_topic_or_partition),
    ]
    assert node.groups.calls == [("delete_offsets", GROUP, [("orders", 0)])]
    node.groups.errors["delete_offsets"] = ApiError(NON_EMPTY_GROUP, "members")
    answer = call(node, 47, 0, {"group_id": GROUP, "topics": topics})
    assert (answer.error_code, answer.topics) == (ErrorCode.non_empty_group, ())


def test_delete_groups_answers_each_group() -> None:
    node = FakeNode(metadata())
    node.groups.errors["delete_group"] = ApiError(NON_EMPTY_GROUP, "members")
    answer = call(node, 42, 2, {"groups_names": ["a", ""]})
    assert [(r.group_id, r.error_code) for r in answer.results] == [
        ("a", ErrorCode.non_empty_group),
        ("", ErrorCode.invalid_group_id),
    ]


# -- ConsumerGroupHeartbeat ----------------------------------------------------------------------


def _heartbeat(**values: Any) -> dict[str, Any]:
    return {
        "group_id": GROUP,
        "member_id": "m1",
        "member_epoch": 0,
        "instance_id": None,
        "rack_id": None,
        "rebalance_timeout": ms(300_000),
        "subscribed_topic_names": ["orders"],
        "subscribed_topic_regex": None,
        "server_assignor": None,
        "topic_partitions": [],
        **values,
    }


@pytest.mark.parametrize(
    ("values", "code", "words"),
    [
        ({"member_id": ""}, ErrorCode.invalid_request, "MemberId can't be empty."),
        ({"group_id": ""}, ErrorCode.invalid_group_id, "GroupId can't be empty."),
        ({"rack_id": ""}, ErrorCode.invalid_request, "RackId can't be empty."),
        ({"rebalance_timeout": ms(-1)}, ErrorCode.invalid_request, "RebalanceTimeoutMs must"),
        (
            {"topic_partitions": [{"topic_id": topic_uuid(ORDERS_ID), "partitions": [0]}]},
            ErrorCode.invalid_request,
            "TopicPartitions must be empty",
        ),
        ({"subscribed_topic_names": None}, ErrorCode.invalid_request, "Either SubscribedTopic"),
        ({"member_epoch": -3}, ErrorCode.invalid_request, "MemberEpoch is invalid."),
        ({"member_epoch": -2}, ErrorCode.invalid_request, "InstanceId can't be null."),
        ({"server_assignor": "sticky"}, ErrorCode.unsupported_assignor, "sticky"),
        ({"instance_id": "i1"}, ErrorCode.invalid_request, "group.instance.id"),
        ({"subscribed_topic_regex": "ord.*"}, ErrorCode.invalid_request, "regular expression"),
    ],
)
def test_consumer_group_heartbeat_is_checked_as_kafka_checks_it(
    values: dict[str, Any], code: ErrorCode, words: str
) -> None:
    node = FakeNode(metadata())
    answer = call(node, 68, 1, _heartbeat(**values))
    assert (answer.error_code, answer.member_id, answer.assignment) == (code, None, None)
    assert words in (answer.error_message or "")
    assert node.groups.calls == []


def test_consumer_group_heartbeat_v0_joins_without_a_member_id_and_regex_empty_is_none() -> None:
    node = FakeNode(metadata())
    answer = call(node, 68, 0, _heartbeat(member_id=""))
    assert answer.error_code == ErrorCode.none
    assert node.groups.calls[0][2].member_id is None
    answer = call(node, 68, 1, _heartbeat(subscribed_topic_regex=""))
    assert answer.error_code == ErrorCode.none


def test_a_join_sends_the_assignment_by_topic_id() -> None:
    node = FakeNode(metadata())
    answer = call(node, 68, 1, _heartbeat())
    (_, group, hb) = node.groups.calls[0]
    assert (group, hb) == (
        GROUP,
        Heartbeat(
            member_id="m1",
            member_epoch=0,
            topics=("orders",),
            owned=(),
            rebalance_timeout_ms=300_000,
            client_id="app",
            client_host="/10.0.0.9",
        ),
    )
    assert (answer.member_id, answer.member_epoch, answer.heartbeat_interval) == (
        "m1",
        5,
        ms(5000),
    )
    assert answer.assignment is not None
    assert [(t.topic_id, t.partitions) for t in answer.assignment.topic_partitions] == [
        (topic_uuid(ORDERS_ID), (1,))
    ]


def test_a_heartbeat_carries_the_assignment_only_when_it_changed() -> None:
    node = FakeNode(metadata())
    same = {
        "member_id": "m1",
        "member_epoch": 5,
        "heartbeat_interval_ms": 5000,
        "assignment": [{"topic": "orders", "partition": 0}],
    }
    owned = [{"topic_id": topic_uuid(ORDERS_ID), "partitions": [0]}]
    quiet = _heartbeat(
        member_epoch=5, rebalance_timeout=ms(-1), subscribed_topic_names=None, topic_partitions=None
    )
    node.groups.answers["consumer_heartbeat"] = (same, False)
    assert call(node, 68, 1, quiet).assignment is None
    node.groups.answers["consumer_heartbeat"] = (same, True)
    assert call(node, 68, 1, quiet).assignment is not None
    # A full request (every field, as after an error) gets it whether it changed or not.
    node.groups.answers["consumer_heartbeat"] = (same, False)
    full = call(node, 68, 1, _heartbeat(member_epoch=5, topic_partitions=owned))
    assert full.assignment is not None
    assert node.groups.calls[-1][2].owned == (("orders", 0),)


def test_a_leave_and_a_coordinator_error_carry_no_assignment() -> None:
    node = FakeNode(metadata())
    left = {"member_id": "m1", "member_epoch": -1, "heartbeat_interval_ms": 0, "assignment": []}
    node.groups.answers["consumer_heartbeat"] = (left, True)
    answer = call(node, 68, 1, _heartbeat(member_epoch=-1, subscribed_topic_names=None))
    assert (answer.member_epoch, answer.assignment) == (-1, None)
    node.groups.errors["consumer_heartbeat"] = ApiError(FENCED_MEMBER_EPOCH, "epoch 3, not 5")
    answer = call(node, 68, 1, _heartbeat(member_epoch=3))
    assert (answer.error_code, answer.error_message) == (
        ErrorCode.fenced_member_epoch,
        "epoch 3, not 5",
    )


# -- describing and listing ----------------------------------------------------------------------


def test_describe_groups_answers_a_classic_group_with_its_members() -> None:
    node = FakeNode(metadata())
    node.groups.answers["describe_classic"] = DescribedGroup(
        GROUP,
        "Stable",
        "consumer",
        "range",
        (DescribedMember("m1", None, "app", "/10.0.0.9", b"sub", b"asg"),),
    )
    (group,) = call(node, 15, 5, {"groups": [GROUP], "include_authorized_operations": True}).groups
    assert (group.error_code, group.group_state, group.protocol_type, group.protocol_data) == (
        ErrorCode.none,
        "Stable",
        "consumer",
        "range",
    )
    assert [
        (m.member_id, m.client_host, m.member_metadata, m.member_assignment) for m in group.members
    ] == [("m1", "/10.0.0.9", b"sub", b"asg")]
    # Without an authorizer every operation of a group is allowed: READ, DELETE, DESCRIBE.
    assert group.authorized_operations == (1 << 3) | (1 << 6) | (1 << 8)


def test_describe_groups_answers_dead_for_a_group_it_does_not_have_and_v6_says_why() -> None:
    node = FakeNode(metadata())
    node.groups.errors["describe_classic"] = ApiError(GROUP_ID_NOT_FOUND, "Group g not found.")
    (group,) = call(node, 15, 5, {"groups": [GROUP], "include_authorized_operations": False}).groups
    assert (group.error_code, group.group_state) == (ErrorCode.none, "Dead")
    assert group.authorized_operations == AUTHORIZED_OPERATIONS_OMITTED
    (group,) = call(node, 15, 6, {"groups": [GROUP], "include_authorized_operations": False}).groups
    assert (group.error_code, group.group_state, group.error_message) == (
        ErrorCode.group_id_not_found,
        "Dead",
        "Group g not found.",
    )
    node.groups.errors["describe_classic"] = ApiError(NOT_COORDINATOR, "not here")
    (group,) = call(node, 15, 6, {"groups": [GROUP], "include_authorized_operations": False}).groups
    assert (group.error_code, group.group_state) == (ErrorCode.not_coordinator, "")


def test_consumer_group_describe_names_topics_by_id_and_name() -> None:
    node = FakeNode(metadata())
    node.groups.answers["describe_consumer"] = {
        "state": "Reconciling",
        "group_epoch": 4,
        "assignment_epoch": 4,
        "assignor": "uniform",
        "members": [
            {
                "member_id": "m1",
                "client_id": "app",
                "client_host": "/10.0.0.9",
                "member_epoch": 3,
                "subscribed_topics": ["orders"],
                "assignment": [{"topic": "orders", "partition": 0}],
                "target_assignment": [
                    {"topic": "orders", "partition": 0},
                    {"topic": "orders", "partition": 1},
                ],
            }
        ],
    }
    request = {"group_ids": [GROUP], "include_authorized_operations": False}
    (group,) = call(node, 69, 1, request).groups
    assert (group.group_state, group.group_epoch, group.assignor_name) == (
        "Reconciling",
        4,
        "uniform",
    )
    (member,) = group.members
    assert (member.member_epoch, member.member_type, member.subscribed_topic_names) == (
        3,
        1,
        ("orders",),
    )
    assert [
        (t.topic_id, t.topic_name, t.partitions) for t in member.target_assignment.topic_partitions
    ] == [(topic_uuid(ORDERS_ID), "orders", (0, 1))]
    node.groups.errors["describe_consumer"] = ApiError(
        GROUP_ID_NOT_FOUND, "Group g is not a consumer group."
    )
    (group,) = call(node, 69, 0, request).groups
    assert (group.error_code, group.error_message) == (
        ErrorCode.group_id_not_found,
        "Group g is not a consumer group.",
    )


def test_list_groups_filters_by_state_and_type_whatever_their_case() -> None:
    node = FakeNode(metadata())
    node.groups.answers["kafka_groups"] = [
        ("a", "classic", "consumer", "Stable"),
        ("b", "consumer", "consumer", "Empty"),
        ("c", "classic", "", "Empty"),
    ]
    answer = call(node, 16, 5, {"states_filter": ["EMPTY"], "types_filter": ["Classic"]})
    assert [(g.group_id, g.group_type, g.protocol_type) for g in answer.groups] == [
        ("c", "classic", "")
    ]
    answer = call(node, 16, 0, {})
    assert [(g.group_id, g.protocol_type) for g in answer.groups] == [
        ("a", "consumer"),
        ("b", "consumer"),
        ("c", ""),
    ]
    node.groups.errors["kafka_groups"] = ApiError(COORDINATOR_LOAD_IN_PROGRESS, "loading")
    answer = call(node, 16, 4, {"states_filter": []})
    assert (answer.error_code, answer.groups) == (ErrorCode.coordinator_load_in_progress, ())


# -- authorization -------------------------------------------------------------------------------


def test_without_acls_every_group_api_is_refused_as_kafka_refuses_it() -> None:
    node = FakeNode(metadata(), authorizer=True)
    find = call(node, 10, 3, {"key": GROUP, "key_type": 0})
    assert find.error_code == ErrorCode.group_authorization_failed
    join = {
        "group_id": GROUP,
        "session_timeout": ms(10_000),
        "member_id": "",
        "protocol_type": "consumer",
        "protocols": [],
    }
    assert call(node, 11, 0, join).error_code == ErrorCode.group_authorization_failed
    topics = [{"name": "orders", "partitions": [_partition(0, 1)]}]
    assert _codes(call(node, 8, 9, _commit(9, topics))) == [
        ("orders", 0, ErrorCode.group_authorization_failed)
    ]
    fetch = call(node, 9, 7, {"group_id": GROUP, "topics": None, "require_stable": False})
    assert fetch.error_code == ErrorCode.group_authorization_failed
    heartbeat = call(node, 68, 1, _heartbeat())
    assert heartbeat.error_code == ErrorCode.group_authorization_failed
    node.groups.answers["kafka_groups"] = [("a", "classic", "consumer", "Stable")]
    assert call(node, 16, 5, {"states_filter": [], "types_filter": []}).groups == ()
    assert node.groups.calls == [("kafka_groups",)]


def test_a_group_acl_without_topic_acls_refuses_the_topics() -> None:
    acls = (
        AclRecord(
            "AQIDBAUGBwgJCgsMDQ4PEQ", "GROUP", GROUP, "LITERAL", "User:alice", "*", "READ", "ALLOW"
        ),
        AclRecord(
            "AQIDBAUGBwgJCgsMDQ4PEg",
            "GROUP",
            GROUP,
            "LITERAL",
            "User:alice",
            "*",
            "DESCRIBE",
            "ALLOW",
        ),
    )
    node = FakeNode(metadata(acls), authorizer=True)
    topics = [{"name": "orders", "partitions": [_partition(0, 1)]}]
    assert _codes(call(node, 8, 9, _commit(9, topics))) == [
        ("orders", 0, ErrorCode.topic_authorization_failed)
    ]
    heartbeat = call(node, 68, 1, _heartbeat())
    assert heartbeat.error_code == ErrorCode.topic_authorization_failed
    node.groups.answers["fetch"] = {("orders", 0): committed(4)}
    named = [{"name": "orders", "partition_indexes": [0]}]
    fetch = call(node, 9, 7, {"group_id": GROUP, "topics": named, "require_stable": False})
    assert _codes(fetch) == [("orders", 0, ErrorCode.topic_authorization_failed)]
    # Asked for every offset, the topics it may not describe are left out.
    fetch = call(node, 9, 7, {"group_id": GROUP, "topics": None, "require_stable": False})
    assert (fetch.error_code, fetch.topics) == (ErrorCode.none, ())
    assert [c[0] for c in node.groups.calls] == ["fetch", "fetch"]


# -- the coordinator's calls for the listener (server/groups/shard.py) ---------------------------

TOPICS = Topics({"orders": (ORDERS_ID, 2), "audit": ("AQIDBAUGBwgJCgsMDQ4PEA", 1)})


def _shard() -> GroupShard:
    ids = iter(f"m{i}" for i in range(1, 100))
    return GroupShard(GroupSettings(), lambda: next(ids))


def _write(shard: GroupShard, planned: Any) -> Any:
    shard.apply(planned)
    return planned.answer


def test_a_group_with_only_offsets_is_kafka_s_simple_group() -> None:
    shard = _shard()
    assert shard.kind(GROUP) is None
    _write(shard, shard.plan_commit(GROUP, None, None, [CommitOffset("orders", 0, 3)], TOPICS, 0))
    assert shard.kind(GROUP) == "classic"
    assert shard.kafka_listing(GROUP) == ("classic", "", "Empty")
    _write(shard, shard.plan_heartbeat("c", Heartbeat(None, 0, ("orders",)), TOPICS, 0))
    assert shard.kind("c") == "consumer"
    assert shard.kafka_listing("c") == ("consumer", "consumer", "Stable")


def test_offset_delete_removes_offsets_of_topics_the_group_does_not_subscribe_to() -> None:
    shard = _shard()
    with pytest.raises(ApiError) as caught:
        shard.plan_offset_delete(GROUP, [("orders", 0)])
    assert caught.value.kind == GROUP_ID_NOT_FOUND
    answer = _write(shard, shard.plan_heartbeat(GROUP, Heartbeat(None, 0, ("orders",)), TOPICS, 0))
    member_epoch = answer["member_epoch"]
    offsets = [CommitOffset("orders", 0, 3), CommitOffset("audit", 0, 9)]
    _write(shard, shard.plan_commit(GROUP, "m1", member_epoch, offsets, TOPICS, 0))
    planned = shard.plan_offset_delete(GROUP, [("orders", 0), ("audit", 0), ("audit", 0)])
    assert planned.answer == ["orders"]
    _write(shard, planned)
    assert [(o["topic"], o["partition"]) for o in shard.committed(GROUP)] == [("orders", 0)]
    # Nothing committed there: nothing to delete.
    assert shard.plan_offset_delete(GROUP, [("audit", 0)]).records == []


def test_offset_fetch_checks_a_consumer_group_member_and_its_epoch() -> None:
    shard = _shard()
    answer = _write(shard, shard.plan_heartbeat(GROUP, Heartbeat(None, 0, ("orders",)), TOPICS, 0))
    epoch = answer["member_epoch"]
    shard.check_offset_fetch(GROUP, "m1", epoch)
    shard.check_offset_fetch(GROUP, None, -1)  # an admin
    shard.check_offset_fetch("other", "x", 3)  # not a consumer group: nothing to check
    with pytest.raises(ApiError) as caught:
        shard.check_offset_fetch(GROUP, "m1", epoch - 1)
    assert caught.value.kind == STALE_MEMBER_EPOCH
    with pytest.raises(ApiError) as caught:
        shard.check_offset_fetch(GROUP, "m9", epoch)
    assert caught.value.kind == UNKNOWN_MEMBER_ID


def test_a_full_consumer_group_refuses_a_new_member_with_kafka_s_group_max_size_reached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "GROUP_MEMBERS_MAX", 2)
    shard = _shard()
    for _ in range(2):
        _write(shard, shard.plan_heartbeat(GROUP, Heartbeat(None, 0, ("orders",)), TOPICS, 0))
    with pytest.raises(ApiError) as caught:
        shard.plan_heartbeat(GROUP, Heartbeat(None, 0, ("orders",)), TOPICS, 0)
    assert caught.value.kind is GROUP_MAX_SIZE_REACHED
    assert caught.value.kind.status == 409
    # On the Kafka listener, Kafka's code (81), not INVALID_REQUEST.
    node = FakeNode(metadata())
    node.groups.errors["consumer_heartbeat"] = caught.value
    answer = call(node, 68, 1, _heartbeat())
    assert (answer.error_code, answer.member_id) == (ErrorCode.group_max_size_reached, None)
