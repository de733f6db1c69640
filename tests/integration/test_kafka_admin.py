"""Kafka's admin clients against the KAFKA listeners of a three-node cluster (issue 18):
confluent-kafka's AdminClient (librdkafka) and kafka-python's KafkaAdminClient create,
describe, configure, grow and delete topics and describe the cluster, and what they change
is what our HTTP API shows (the same plans write it).

Clients send CreateTopics and its kind to the controller they read from Metadata (the quorum
leader), so the requests that a follower forwards to the controller are sent by hand to a
follower's KAFKA listener (kio's codecs build them, as in test_kafka_clients).

One cluster serves the module; each test uses topics of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)
from kafka import TopicPartition as KpTopicPartition
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType as KpConfigResourceType
from kafka.admin import KafkaAdminClient
from kafka.admin import NewPartitions as KpNewPartitions
from kafka.admin import NewTopic as KpNewTopic
from kafka.errors import (
    InvalidReplicationAssignmentError,
    InvalidReplicationFactorError,
    TopicAlreadyExistsError,
)
from kio.schema.errors import ErrorCode

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from server.kafka.entities import topic_uuid
from storage.properties import MetaProperties
from tests.integration.kafka_helpers import controller_and_follower, error_of, kafka_call

DEADLINE_S = 60.0
# Every operation on the cluster resource (Kafka's AclEntry.supportedOperations(CLUSTER)), by
# the clients' names: all allowed without an authorizer.
CLUSTER_OPERATIONS = {
    "CREATE",
    "CLUSTER_ACTION",
    "DESCRIBE_CONFIGS",
    "ALTER_CONFIGS",
    "IDEMPOTENT_WRITE",
    "ALTER",
    "DESCRIBE",
}


@pytest.fixture(scope="module")
def admin_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three combined nodes, each with a KAFKA listener on K + 2(i-1)."""
    handle = Cluster.create(tmp_path_factory.mktemp("kafka-admin"), **{"num.partitions": "2"})
    handle.give_kafka_listeners()
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def confluent_admin(cluster: Cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.kafka_bootstrap()})


def done(futures: dict[Any, Any]) -> dict[Any, Any]:
    """Every future's result (None for a success without one)."""
    return {key: f.result(timeout=DEADLINE_S) for key, f in futures.items()}


def topic_over_http(node: NodeProcess, name: str) -> dict[str, Any] | None:
    status, body = http("GET", f"{node.url}/v1/topics/{name}")
    if status == 404:
        return None
    assert status == 200, body
    answer: dict[str, Any] = body
    return answer


def topic_when(
    node: NodeProcess, name: str, ready: Any = lambda topic: topic is not None
) -> dict[str, Any] | None:
    """The topic as ``node`` describes it once ``ready(topic)`` holds: a client's write is
    applied on the node that answered it first, on the others a moment later."""
    found: list[dict[str, Any] | None] = []

    def check() -> bool:
        found[:] = [topic_over_http(node, name)]
        return bool(ready(found[0]))

    wait_until(f"topic {name} as expected on node {node.node_id}", check)
    return found[0]


# -- confluent-kafka (librdkafka) ---------------------------------------------------------------


def test_confluent_creates_topics_with_kafkas_errors(admin_cluster: Cluster) -> None:
    admin = confluent_admin(admin_cluster)
    node = admin_cluster.nodes[0]
    futures = admin.create_topics(
        [
            NewTopic("ck-orders", 3, 2, config={"retention.ms": "60000"}),
            NewTopic("ck-defaults"),  # -1 and -1: num.partitions=2, the default factor 1
            NewTopic("ck-too-wide", 1, 4),
            NewTopic("ck-bad-config", 1, 1, config={"retention.ms": "soon"}),
            NewTopic("ck-placed", 2, replica_assignment=[[2, 3], [3, 1]]),
        ],
        operation_timeout=30,
    )
    assert futures["ck-orders"].result(timeout=DEADLINE_S) is None
    assert futures["ck-defaults"].result(timeout=DEADLINE_S) is None
    assert futures["ck-placed"].result(timeout=DEADLINE_S) is None
    assert error_of(futures["ck-too-wide"]).code() == KafkaError.INVALID_REPLICATION_FACTOR
    assert error_of(futures["ck-bad-config"]).code() == KafkaError.INVALID_CONFIG
    orders = topic_when(node, "ck-orders")
    assert orders is not None
    assert (orders["partition_count"], orders["replication_factor"]) == (3, 2)
    assert orders["configs"] == {"retention.ms": "60000"}
    defaults = topic_when(node, "ck-defaults")
    assert defaults is not None
    assert (defaults["partition_count"], defaults["replication_factor"]) == (2, 1)
    placed = topic_when(node, "ck-placed")
    assert placed is not None
    assert [p["replicas"] for p in placed["partitions"]] == [[2, 3], [3, 1]]
    assert topic_over_http(node, "ck-too-wide") is None
    assert topic_over_http(node, "ck-bad-config") is None
    # The same name again, and a validate-only request that writes nothing.
    again = admin.create_topics([NewTopic("ck-orders", 1, 1)])["ck-orders"]
    assert error_of(again).code() == KafkaError.TOPIC_ALREADY_EXISTS
    checked = admin.create_topics([NewTopic("ck-checked", 1, 3)], validate_only=True)
    assert checked["ck-checked"].result(timeout=DEADLINE_S) is None
    assert topic_over_http(node, "ck-checked") is None
    # The metadata log's name, over Kafka's protocol and over HTTP (the same plan refuses it):
    # its partition 0 would be the metadata log's own directory.
    (metadata,) = admin.create_topics([NewTopic("__cluster_metadata", 1, 1)]).values()
    assert error_of(metadata).code() == KafkaError.INVALID_REQUEST
    status, body = http("POST", f"{node.url}/v1/topics", {"name": "__cluster_metadata"})
    assert (status, body["error"]) == (400, "INVALID_REQUEST"), body
    assert [http("GET", f"{n.url}/v1/health/ready")[0] for n in admin_cluster.nodes] == [200] * 3


def test_confluent_describes_and_alters_configs_incrementally(admin_cluster: Cluster) -> None:
    admin = confluent_admin(admin_cluster)
    node = admin_cluster.nodes[1]
    done(admin.create_topics([NewTopic("ck-configs", 1, 3, config={"segment.ms": "600000"})]))
    resource = ConfigResource(ConfigResource.Type.TOPIC, "ck-configs")
    (described,) = done(admin.describe_configs([resource])).values()
    assert described["segment.ms"].value == "600000"
    assert described["segment.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert described["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert described["retention.ms"].value == "604800000"
    altered = ConfigResource(
        ConfigResource.Type.TOPIC,
        "ck-configs",
        incremental_configs=[
            ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("segment.ms", None, incremental_operation=AlterConfigOpType.DELETE),
            ConfigEntry(
                "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
            ),
        ],
    )
    done(admin.incremental_alter_configs([altered]))

    def over_http() -> dict[str, str] | None:
        status, body = http("GET", f"{node.url}/v1/topics/ck-configs/configs")
        assert status == 200, body
        overrides: dict[str, str] = body["overrides"]
        return overrides if "retention.ms" in overrides else None

    assert wait_until("the new configs over HTTP", over_http) == {
        "retention.ms": "3600000",
        "cleanup.policy": "compact,delete",
    }
    wrong = ConfigResource(
        ConfigResource.Type.TOPIC,
        "ck-configs",
        incremental_configs=[
            ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND)
        ],
    )
    (failed,) = admin.incremental_alter_configs([wrong]).values()
    assert error_of(failed).code() == KafkaError.INVALID_CONFIG


def test_confluent_describes_and_throttles_a_broker(admin_cluster: Cluster) -> None:
    admin = confluent_admin(admin_cluster)
    broker = ConfigResource(ConfigResource.Type.BROKER, "2")
    (described,) = done(admin.describe_configs([broker])).values()
    assert described["node.id"].value == "2"
    assert described["node.id"].is_read_only
    assert described["leader.replication.throttled.rate"].is_read_only is False
    throttled = ConfigResource(
        ConfigResource.Type.BROKER,
        "2",
        incremental_configs=[
            ConfigEntry(
                "leader.replication.throttled.rate",
                "1048576",
                incremental_operation=AlterConfigOpType.SET,
            )
        ],
    )
    done(admin.incremental_alter_configs([throttled]))
    status, body = http("GET", f"{admin_cluster.node(2).url}/v1/brokers/2/configs")
    assert status == 200, body
    rate = next(c for c in body["configs"] if c["name"] == "leader.replication.throttled.rate")
    assert (rate["value"], rate["source"]) == ("1048576", "DYNAMIC_BROKER_CONFIG")
    (again,) = done(admin.describe_configs([broker])).values()
    assert again["leader.replication.throttled.rate"].value == "1048576"


def test_confluent_grows_and_deletes_topics(admin_cluster: Cluster) -> None:
    admin = confluent_admin(admin_cluster)
    node = admin_cluster.nodes[2]
    done(admin.create_topics([NewTopic("ck-grow", 1, 2), NewTopic("ck-gone", 1, 1)]))
    done(admin.create_partitions([NewPartitions("ck-grow", 4)]))
    grown = topic_when(node, "ck-grow", lambda t: t is not None and t["partition_count"] == 4)
    assert grown is not None
    assert grown["partition_count"] == 4
    assert all(len(p["replicas"]) == 2 for p in grown["partitions"])
    (shrink,) = admin.create_partitions([NewPartitions("ck-grow", 2)]).values()
    assert error_of(shrink).code() == KafkaError.INVALID_PARTITIONS
    done(admin.delete_topics(["ck-gone"], operation_timeout=30))
    assert wait_until("ck-gone deleted", lambda: topic_over_http(node, "ck-gone") is None)
    (unknown,) = admin.delete_topics(["ck-never"]).values()
    assert error_of(unknown).code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_confluent_describes_the_cluster(admin_cluster: Cluster) -> None:
    admin = confluent_admin(admin_cluster)
    # librdkafka reads the cluster from Metadata (v10), not DescribeCluster.
    described = admin.describe_cluster().result(timeout=DEADLINE_S)
    status, cluster = http("GET", f"{admin_cluster.nodes[0].url}/v1/cluster")
    assert status == 200, cluster
    assert described.cluster_id == cluster["cluster_id"]
    assert described.controller.id == cluster["controller_id"]
    assert sorted((n.id, n.host, n.port) for n in described.nodes) == [
        (n.node_id, "127.0.0.1", n.kafka_port) for n in admin_cluster.nodes
    ]
    assert described.authorized_operations is None  # not asked for
    # Asked for, Metadata v10's cluster_authorized_operations: no authorizer, all of them.
    asked = admin.describe_cluster(include_authorized_operations=True).result(timeout=DEADLINE_S)
    assert {op.name for op in asked.authorized_operations or []} == CLUSTER_OPERATIONS


# -- kafka-python ---------------------------------------------------------------------------------


def test_kafka_python_admin_round_trip(admin_cluster: Cluster) -> None:
    admin = KafkaAdminClient(
        bootstrap_servers=admin_cluster.kafka_bootstrap(), request_timeout_ms=30000
    )
    node = admin_cluster.nodes[0]
    try:
        admin.create_topics(
            [KpNewTopic("kp-admin", 2, 3, topic_configs={"retention.bytes": "1048576"})]
        )
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([KpNewTopic("kp-admin", 1, 1)])
        with pytest.raises(InvalidReplicationFactorError):
            admin.create_topics([KpNewTopic("kp-wide", 1, 5)])
        created = topic_when(node, "kp-admin")
        assert created is not None
        assert (created["partition_count"], created["replication_factor"]) == (2, 3)
        described = admin.describe_configs(
            [KpConfigResource(KpConfigResourceType.TOPIC, "kp-admin")], config_filter="all"
        )
        configs = described["topic"]["kp-admin"]
        assert (
            configs["retention.bytes"]["value"],
            configs["retention.bytes"]["config_source"],
        ) == (
            "1048576",
            "DYNAMIC_TOPIC_CONFIG",
        )
        assert configs["retention.ms"]["config_type"] == "LONG"
        admin.alter_configs(
            [KpConfigResource(KpConfigResourceType.TOPIC, "kp-admin", {"retention.bytes": "2048"})]
        )
        altered = topic_when(
            node, "kp-admin", lambda t: t["configs"] == {"retention.bytes": "2048"}
        )
        assert altered is not None
        admin.create_partitions({"kp-admin": KpNewPartitions(total_count=3)})
        topic_when(node, "kp-admin", lambda t: t["partition_count"] == 3)
        cluster = admin.describe_cluster()
        assert sorted((b["broker_id"], b["port"]) for b in cluster["brokers"]) == [
            (n.node_id, n.kafka_port) for n in admin_cluster.nodes
        ]
        assert cluster["controller_id"] == admin_cluster.controller_id()
        # No authorizer: every operation on the cluster is allowed.
        assert set(cluster["authorized_operations"]) == CLUSTER_OPERATIONS
        admin.delete_topics(["kp-admin"])
        assert wait_until("kp-admin deleted", lambda: topic_over_http(node, "kp-admin") is None)
    finally:
        admin.close()


def test_kafka_python_moves_elects_and_reads_log_dirs(admin_cluster: Cluster) -> None:
    admin = KafkaAdminClient(
        bootstrap_servers=admin_cluster.kafka_bootstrap(), request_timeout_ms=30000
    )
    node = admin_cluster.nodes[1]
    try:
        admin.create_topics([KpNewTopic("kp-move", replica_assignments={0: [1, 2], 1: [2, 3]})])
        topic_when(node, "kp-move")
        answer = admin.alter_partition_reassignments(
            {KpTopicPartition("kp-move", 0): [3, 1], KpTopicPartition("kp-move", 1): [2, 9]}
        )
        assert answer[KpTopicPartition("kp-move", 0)] is None
        assert answer[KpTopicPartition("kp-move", 1)] is InvalidReplicationAssignmentError
        # The move completes once replica 3 caught up (an empty partition: at once); none is
        # listed then, and partition 0's replicas are the target, led by a member of it.
        moved = topic_when(
            node,
            "kp-move",
            lambda t: (
                t["partitions"][0]["replicas"] == [3, 1]
                and not t["partitions"][0]["adding_replicas"]
            ),
        )
        assert moved is not None
        wait_until("no move listed", lambda: admin.list_partition_reassignments() == {})
        # Preferred election: partition 0's preferred leader is now 3.
        admin.elect_leaders(0, {"kp-move": [0, 1]})
        led = topic_when(node, "kp-move", lambda t: t["partitions"][0]["leader"] == 3)
        assert led is not None
        dirs = admin.describe_log_dirs({"kp-move": [0, 1]}, brokers=[3])
        ((broker,),) = [[d for d in dirs if d["broker"] == 3]]
        (log_dir,) = broker["log_dirs"]
        assert log_dir["error_code"] == 0
        assert [
            (t["name"], sorted(p["partition_index"] for p in t["partitions"]))
            for t in log_dir["topics"]
        ] == [("kp-move", [0, 1])]
    finally:
        admin.close()


# -- a follower forwards to the controller ------------------------------------------------------


def test_a_follower_forwards_admin_writes_to_the_controller(admin_cluster: Cluster) -> None:
    _, follower = controller_and_follower(admin_cluster)
    created = kafka_call(
        follower.kafka_port,
        19,
        7,
        {
            "timeout": 30000,
            "validate_only": False,
            "topics": [
                {
                    "name": "fw-placed",
                    "num_partitions": -1,
                    "replication_factor": -1,
                    "assignments": [
                        {"partition_index": 0, "broker_ids": [3, 1]},
                        {"partition_index": 1, "broker_ids": [1, 2]},
                    ],
                    "configs": [{"name": "min.insync.replicas", "value": "2"}],
                },
                {
                    "name": "fw-plain",
                    "num_partitions": 1,
                    "replication_factor": 3,
                    "assignments": [],
                    "configs": [],
                },
            ],
        },
    )
    results = {t.name: t for t in created.topics}
    assert {n: r.error_code for n, r in results.items()} == {
        "fw-placed": ErrorCode.none,
        "fw-plain": ErrorCode.none,
    }
    assert (results["fw-placed"].num_partitions, results["fw-placed"].replication_factor) == (2, 2)
    # The follower answers once it has applied the write: its own HTTP shows the topic.
    placed = topic_over_http(follower, "fw-placed")
    assert placed is not None
    assert [p["replicas"] for p in placed["partitions"]] == [[3, 1], [1, 2]]
    assert placed["configs"] == {"min.insync.replicas": "2"}
    assert results["fw-placed"].topic_id is not None

    grown = kafka_call(
        follower.kafka_port,
        37,
        3,
        {
            "timeout": 30000,
            "validate_only": False,
            "topics": [{"name": "fw-placed", "count": 3, "assignments": [{"broker_ids": [2, 3]}]}],
        },
    )
    assert [(r.name, r.error_code) for r in grown.results] == [("fw-placed", ErrorCode.none)]
    placed = topic_over_http(follower, "fw-placed")
    assert placed is not None
    assert placed["partitions"][2]["replicas"] == [2, 3]

    altered = kafka_call(
        follower.kafka_port,
        44,
        1,
        {
            "validate_only": False,
            "resources": [
                {
                    "resource_type": 2,
                    "resource_name": "fw-placed",
                    "configs": [
                        {"name": "retention.ms", "config_operation": 0, "value": "120000"},
                        {"name": "min.insync.replicas", "config_operation": 1, "value": None},
                    ],
                }
            ],
        },
    )
    assert [r.error_code for r in altered.responses] == [ErrorCode.none]
    placed = topic_over_http(follower, "fw-placed")
    assert placed is not None
    assert placed["configs"] == {"retention.ms": "120000"}

    plain_id = results["fw-plain"].topic_id
    deleted = kafka_call(
        follower.kafka_port,
        20,
        6,
        {
            "timeout": 30000,
            "topics": [
                {"name": None, "topic_id": plain_id},
                {"name": "fw-placed", "topic_id": None},
                {"name": "fw-never", "topic_id": None},
            ],
        },
    )
    assert [(r.name, r.topic_id, r.error_code) for r in deleted.responses] == [
        ("fw-plain", plain_id, ErrorCode.none),
        ("fw-placed", results["fw-placed"].topic_id, ErrorCode.none),
        ("fw-never", None, ErrorCode.unknown_topic_or_partition),
    ]
    assert topic_over_http(follower, "fw-plain") is None
    assert topic_over_http(follower, "fw-placed") is None


def test_validate_only_on_a_follower_checks_and_writes_nothing(admin_cluster: Cluster) -> None:
    _, follower = controller_and_follower(admin_cluster)
    checked = kafka_call(
        follower.kafka_port,
        19,
        5,
        {
            "timeout": 30000,
            "validate_only": True,
            "topics": [
                {
                    "name": "vo-fine",
                    "num_partitions": 4,
                    "replication_factor": 2,
                    "assignments": [],
                    "configs": [],
                },
                {
                    "name": "vo-wide",
                    "num_partitions": 1,
                    "replication_factor": 4,
                    "assignments": [],
                    "configs": [],
                },
            ],
        },
    )
    assert [(t.name, t.error_code, t.num_partitions) for t in checked.topics] == [
        ("vo-fine", ErrorCode.none, 4),
        ("vo-wide", ErrorCode.invalid_replication_factor, -1),
    ]
    # Nothing was written (a write is applied here, and on the controller, before the answer).
    assert [topic_over_http(n, "vo-fine") for n in admin_cluster.nodes] == [None] * 3


# -- DescribeQuorum -------------------------------------------------------------------------------


def test_describe_quorum_answers_the_leaders_view_at_every_node(admin_cluster: Cluster) -> None:
    """DescribeQuorum (v2, Kafka's Admin describeMetadataQuorum) at the controller and at a
    follower, which asks the controller over HTTP: GET /v1/cluster/quorum's figures, the
    voters' directory ids (meta.properties) and Raft addresses."""
    controller, follower = controller_and_follower(admin_cluster)
    metadata = [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]

    def quorum_over_http() -> dict[str, Any]:
        status, body = http("GET", f"{controller.url}/v1/cluster/quorum")
        assert status == 200, body
        view: dict[str, Any] = body
        return view

    for node in (controller, follower):
        before = quorum_over_http()
        response = kafka_call(node.kafka_port, 55, 2, {"topics": metadata})
        after = quorum_over_http()
        assert (response.error_code, response.error_message) == (ErrorCode.none, None)
        (topic,) = response.topics
        (partition,) = topic.partitions
        assert (topic.topic_name, partition.partition_index, partition.error_code) == (
            "__cluster_metadata",
            0,
            ErrorCode.none,
        )
        assert partition.leader_id == before["leader_id"] == after["leader_id"]
        assert partition.leader_epoch == before["term"] == after["term"]
        assert before["commit_index"] <= partition.high_watermark <= after["commit_index"]
        ends_before = {v["id"]: v["log_end_offset"] for v in before["voters"]}
        ends_after = {v["id"]: v["log_end_offset"] for v in after["voters"]}
        voters = {v.replica_id: v for v in partition.current_voters}
        assert sorted(voters) == [n.node_id for n in admin_cluster.nodes]
        for i, v in voters.items():
            assert ends_before[i] <= v.log_end_offset <= ends_after[i], (i, v, before, after)
            meta = MetaProperties.read(admin_cluster.node(i).log_dir)
            assert meta is not None and meta.directory_id is not None
            assert v.replica_directory_id == topic_uuid(meta.directory_id)
            # The leader heard from every voter (itself: now, as Kafka reports its own).
            assert v.last_fetch_timestamp > 0
        assert partition.observers == ()
        endpoints = {
            n.node_id: [(e.name, e.host, e.port) for e in n.listeners] for n in response.nodes
        }
        assert endpoints == {
            n.node_id: [("CONTROLLER", "127.0.0.1", n.raft_port)] for n in admin_cluster.nodes
        }

    # Kafka's answer to any other partition.
    other = kafka_call(
        follower.kafka_port,
        55,
        0,
        {"topics": [{"topic_name": "orders", "partitions": [{"partition_index": 0}]}]},
    )
    (partition,) = other.topics[0].partitions
    assert partition.error_code == ErrorCode.unknown_topic_or_partition
