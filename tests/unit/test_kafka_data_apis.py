"""The data APIs of the Kafka listener (server/kafka/data_apis.py, fetch.py, replicas.py) with
a node whose metadata is a real MetadataState: the per-partition codes Kafka's clients can take
while the node is not ready (Node.require_ready's own refusal), and Metadata's controller id
and cluster authorized operations. No sockets.
"""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from kio.schema.errors import ErrorCode

from client.protocol import (
    INVALID_REQUEST,
    LEADER_NOT_AVAILABLE,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_OUT_OF_RANGE,
    REQUEST_TIMED_OUT,
    ApiError,
)
from kraft.records import CLUSTER_RESOURCE_NAME, AclOperation, AclRecord
from server.kafka.fetch import sessions_of
from server.kafka.frames import CloseConnection
from server.kafka.metadata import (
    ACL_OPERATION_CODES,
    AUTHORIZED_OPERATIONS_OMITTED,
    CLUSTER_OPERATIONS,
)
from server.kafka.replicas import FETCH_PARTITION_CODES, partition_code
from server.node import Node
from storage.batch import NewRecord, build_batch
from tests.unit.test_kafka_groups import FakeNode, call, metadata

ORDERS = "orders"


class NotReadyNode(FakeNode):
    """A node between metadata quorum leaders: Node.require_ready's own refusal."""

    def __init__(self) -> None:
        super().__init__(metadata())
        self.ready = False

    def require_ready(self) -> None:
        Node.require_ready(cast(Node, self))


def _partition(response: Any) -> Any:
    [topic] = response.responses
    [partition] = getattr(topic, "partitions", None) or topic.partition_responses
    return partition


def test_the_refusal_of_a_node_that_is_not_ready_is_leader_not_available() -> None:
    """The guard for the tests below: what they turn into Kafka's codes."""
    node = NotReadyNode()
    try:
        node.require_ready()
    except ApiError as e:
        assert e.kind is LEADER_NOT_AVAILABLE
    else:
        raise AssertionError("a node that is not ready refuses")


def test_a_fetch_on_a_node_that_is_not_ready_answers_not_leader_or_follower() -> None:
    # Kafka's Java consumer treats LEADER_NOT_AVAILABLE in a Fetch as fatal ("Unexpected
    # error code 5 while fetching"); NOT_LEADER_OR_FOLLOWER makes it refresh and retry.
    node = NotReadyNode()
    response = call(
        node,
        1,
        12,
        {
            "max_wait": datetime.timedelta(milliseconds=500),
            "min_bytes": 1,
            "topics": [
                {
                    "topic": ORDERS,
                    "partitions": [
                        {
                            "partition": 0,
                            "current_leader_epoch": -1,
                            "fetch_offset": 0,
                            "log_start_offset": -1,
                            "partition_max_bytes": 1 << 20,
                        }
                    ],
                }
            ],
            "forgotten_topics_data": [],
        },
    )
    assert response.error_code is ErrorCode.none
    partition = _partition(response)
    assert partition.error_code is ErrorCode.not_leader_or_follower
    # The current leader (broker 1, epoch 0) goes with it, as for any NOT_LEADER_OR_FOLLOWER.
    assert (partition.current_leader.leader_id, partition.current_leader.leader_epoch) == (1, 0)
    assert partition.records is None or partition.records == b""


def test_a_produce_on_a_node_that_is_not_ready_answers_not_leader_or_follower() -> None:
    node = NotReadyNode()
    response = call(
        node,
        0,
        10,
        {
            "acks": -1,
            "timeout": datetime.timedelta(seconds=5),
            "topic_data": [
                {
                    "name": ORDERS,
                    "partition_data": [
                        {"index": 0, "records": build_batch([NewRecord(b"k", b"v", 1)])}
                    ],
                }
            ],
        },
    )
    partition = _partition(response)
    assert partition.error_code is ErrorCode.not_leader_or_follower
    assert partition.base_offset == -1
    assert partition.current_leader.leader_id == 1
    assert [(e.node_id, e.host, e.port) for e in response.node_endpoints] == [(1, "k1", 9001)]


def test_an_acks_0_produce_that_fails_on_a_partition_closes_its_connection() -> None:
    # Kafka's KafkaApis closes the connection: an acks=0 client gets no answer to learn of the
    # error from, and refreshes its metadata on the disconnect instead of writing into the void.
    node = NotReadyNode()
    request = {
        "acks": 0,
        "timeout": datetime.timedelta(seconds=5),
        "topic_data": [
            {
                "name": ORDERS,
                "partition_data": [
                    {"index": 0, "records": build_batch([NewRecord(b"k", b"v", 1)])}
                ],
            }
        ],
    }
    with pytest.raises(CloseConnection, match="1 partition.*not_leader_or_follower"):
        call(node, 0, 10, request)


def test_a_list_offsets_on_a_node_that_is_not_ready_answers_not_leader_or_follower() -> None:
    node = NotReadyNode()
    response = call(
        node,
        2,
        7,
        {
            "replica_id": -1,
            "isolation_level": 0,
            "topics": [
                {
                    "name": ORDERS,
                    "partitions": [
                        {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}
                    ],
                }
            ],
        },
    )
    [topic] = response.topics
    [partition] = topic.partitions
    assert partition.error_code is ErrorCode.not_leader_or_follower
    assert partition.offset == -1


def test_an_offset_commit_on_a_node_that_is_not_ready_answers_coordinator_not_available() -> None:
    # The Java consumer retries COORDINATOR_NOT_AVAILABLE (it finds the coordinator again);
    # LEADER_NOT_AVAILABLE would fail the commit ("Unexpected error in commit").
    node = NotReadyNode()
    response = call(
        node,
        8,
        8,
        {
            "group_id": "g",
            "generation_id_or_member_epoch": 1,
            "member_id": "m1",
            "topics": [
                {
                    "name": ORDERS,
                    "partitions": [
                        {
                            "partition_index": 0,
                            "committed_offset": 5,
                            "committed_leader_epoch": -1,
                            "committed_metadata": "",
                        }
                    ],
                }
            ],
        },
    )
    [topic] = response.topics
    [partition] = topic.partitions
    assert partition.error_code is ErrorCode.coordinator_not_available
    assert node.groups.calls == []


def test_a_partition_code_is_one_kafka_sends_for_the_api() -> None:
    def error(kind: Any) -> ApiError:
        return ApiError(kind, "why")

    # Kafka's broker never answers LEADER_NOT_AVAILABLE for a partition of Produce, Fetch or
    # ListOffsets: NOT_LEADER_OR_FOLLOWER, whatever the API.
    assert partition_code(error(LEADER_NOT_AVAILABLE)) is ErrorCode.not_leader_or_follower
    assert (
        partition_code(error(LEADER_NOT_AVAILABLE), FETCH_PARTITION_CODES)
        is ErrorCode.not_leader_or_follower
    )
    # A code the API's clients take goes as it is.
    assert partition_code(error(NOT_LEADER_OR_FOLLOWER), FETCH_PARTITION_CODES) is (
        ErrorCode.not_leader_or_follower
    )
    assert partition_code(error(OFFSET_OUT_OF_RANGE), FETCH_PARTITION_CODES) is (
        ErrorCode.offset_out_of_range
    )
    # Outside the consumer's list: retriable ones refresh and retry, the rest are the server's.
    assert partition_code(error(REQUEST_TIMED_OUT)) is ErrorCode.request_timed_out
    assert partition_code(error(REQUEST_TIMED_OUT), FETCH_PARTITION_CODES) is (
        ErrorCode.not_leader_or_follower
    )
    assert partition_code(error(INVALID_REQUEST), FETCH_PARTITION_CODES) is (
        ErrorCode.unknown_server_error
    )


# -- Metadata: the controller id and the cluster's authorized operations ------------------------


def _metadata_node(acls: tuple[AclRecord, ...] = (), leader: int | None = 2) -> FakeNode:
    node = FakeNode(metadata(acls), authorizer=bool(acls))
    node.quorum.leader_id = lambda: leader
    node.meta = SimpleNamespace(cluster_id="c")  # type: ignore[attr-defined]
    return node


def _metadata(node: FakeNode, version: int, include_cluster: bool) -> Any:
    values: dict[str, Any] = {"topics": None, "include_topic_authorized_operations": False}
    if 8 <= version <= 10:
        values["include_cluster_authorized_operations"] = include_cluster
    return call(node, 3, version, values)


def test_metadata_names_the_controller_as_describe_cluster_does() -> None:
    assert _metadata(_metadata_node(leader=2), 12, False).controller_id == 2
    # A leader that is no broker Kafka's clients can reach (a controller-only node): this one.
    assert _metadata(_metadata_node(leader=9), 12, False).controller_id == 1
    assert _metadata(_metadata_node(leader=None), 1, False).controller_id == 1


def test_metadata_v8_to_v10_answer_the_cluster_s_authorized_operations_when_asked() -> None:
    every = sum(1 << ACL_OPERATION_CODES[op] for op in CLUSTER_OPERATIONS)
    for version in (8, 9, 10):
        node = _metadata_node()
        omitted = _metadata(node, version, False)
        assert omitted.cluster_authorized_operations == AUTHORIZED_OPERATIONS_OMITTED
        # No authorizer: every cluster operation is allowed.
        assert _metadata(node, version, True).cluster_authorized_operations == every


def test_the_cluster_s_authorized_operations_are_the_principal_s() -> None:
    def acl(acl_id: str, operation: AclOperation) -> AclRecord:
        return AclRecord(
            acl_id,
            "CLUSTER",
            CLUSTER_RESOURCE_NAME,
            "LITERAL",
            "User:alice",
            "*",
            operation,
            "ALLOW",
        )

    describe = acl("AQIDBAUGBwgJCgsMDQ4PEQ", "DESCRIBE")
    create = acl("AQIDBAUGBwgJCgsMDQ4PEg", "CREATE")
    answer = _metadata(_metadata_node((describe, create)), 10, True)
    assert answer.cluster_authorized_operations == (
        1 << ACL_OPERATION_CODES["DESCRIBE"] | 1 << ACL_OPERATION_CODES["CREATE"]
    )
    # Without DESCRIBE on the cluster (CREATE does not imply it), Kafka answers none at all.
    assert _metadata(_metadata_node((create,)), 10, True).cluster_authorized_operations == 0


def test_a_fetch_session_keeps_only_partitions_that_exist() -> None:
    # A partition the topic does not have is answered UNKNOWN_TOPIC_OR_PARTITION and never held
    # in the session: 4 requests naming 100k new indices each grew a node by 450 MiB.
    node = NotReadyNode()

    def partition(index: int) -> dict[str, Any]:
        return {
            "partition": index,
            "current_leader_epoch": -1,
            "fetch_offset": 0,
            "log_start_offset": -1,
            "partition_max_bytes": 1 << 20,
        }

    response = call(
        node,
        1,
        12,
        {
            "max_wait": datetime.timedelta(milliseconds=0),
            "min_bytes": 1,
            "session_id": 0,
            "session_epoch": 0,
            "topics": [{"topic": ORDERS, "partitions": [partition(0), partition(7)]}],
            "forgotten_topics_data": [],
        },
    )
    assert response.error_code is ErrorCode.none and response.session_id != 0
    [topic] = response.responses
    codes = {p.partition_index: p.error_code for p in topic.partitions}
    assert codes == {
        0: ErrorCode.not_leader_or_follower,
        7: ErrorCode.unknown_topic_or_partition,
    }
    session = sessions_of(cast(Node, node)).table.get(response.session_id)
    assert session is not None and list(session.partitions) == [(ORDERS, 0)]


def test_an_acks_all_produce_whose_leader_moved_while_it_waited_is_not_leader_or_follower(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Kafka's DelayedProduce answers NOT_LEADER_OR_FOLLOWER (retriable: the producer refreshes
    # its metadata and sends again), not a timeout, when leadership moves during the wait.
    from server.kafka import data_apis

    def appended(leading: bool) -> Any:
        error = ApiError(REQUEST_TIMED_OUT, "appended but not committed; outcome unknown")

        async def no_commit(_last: int, _timeout_s: float) -> None:
            return None  # the wait ends without the high watermark passing the batch

        async def append(*_args: Any) -> Any:
            partition = SimpleNamespace(
                is_leader=leading,
                log=SimpleNamespace(log_start_offset=0),
                wait_for_high_watermark_above=no_commit,
                acks_all_error=lambda _last: error,
            )
            info = SimpleNamespace(first_offset=7, last_offset=7)
            return partition, SimpleNamespace(infos=[info], commit_error=None)

        return append

    request = {
        "acks": -1,
        "timeout": datetime.timedelta(seconds=5),
        "topic_data": [
            {
                "name": ORDERS,
                "partition_data": [
                    {"index": 0, "records": build_batch([NewRecord(b"k", b"v", 1)])}
                ],
            }
        ],
    }
    monkeypatch.setattr(data_apis, "append_producer_batch", appended(False))
    moved = _partition(call(FakeNode(metadata()), 0, 10, request))
    assert moved.error_code is ErrorCode.not_leader_or_follower
    monkeypatch.setattr(data_apis, "append_producer_batch", appended(True))
    late = _partition(call(FakeNode(metadata()), 0, 10, request))
    assert late.error_code is ErrorCode.request_timed_out
