"""The admin APIs of the Kafka listener: Kafka's own admin clients (AdminClient, librdkafka's
admin API, kafka-python's KafkaAdminClient, ``kafka-topics``, ``kafka-configs``) create, grow,
delete and configure topics, move leaders and replicas, and read the cluster here.

Every request goes through the rules of our HTTP admin API, never a copy of them: the plans
of ``server/controller.py`` (create, grow, delete, topic configs, elections, reassignments),
``server/http_configs.py`` (broker configs and every config's description with its sources),
written by ``server.http_api.write_or_forward``, which writes the plan on the controller or, on
another node, sends the HTTP request the plan is made of to the controller (the same route an
HTTP client would call), which plans it on its state. The Kafka side adds only what is Kafka's
wire shape: one result per topic or resource with Kafka's error code and message, the checks
Kafka makes before its controller sees a request (a name twice, a null value, authorization),
and translations (a topic id to its name, incremental config operations to the values they
set).

By concept, each module with its APIs:

- ``admin_writes.py``: what they share (a result's outcome, the response, the write here or
  on the controller, ``validate_only``);
- ``admin_topics.py``: CreateTopics, DeleteTopics, CreatePartitions;
- ``admin_configs.py``: DescribeConfigs, IncrementalAlterConfigs;
- ``admin_cluster.py``: DescribeCluster, DescribeLogDirs;
- ``admin_quorum.py``: DescribeQuorum (the metadata quorum, as the quorum leader sees it);
- ``admin_moves.py``: ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments;
- ``describe_partitions.py``: DescribeTopicPartitions (``describeTopics`` by name, paged).

Authorization is Kafka's, per topic or resource, with Kafka's TOPIC_/CLUSTER_AUTHORIZATION_
FAILED in its result (each module says which operation its APIs need).
"""

from __future__ import annotations

from server.kafka.admin_cluster import describe_cluster, describe_log_dirs
from server.kafka.admin_configs import describe_configs, incremental_alter_configs
from server.kafka.admin_moves import (
    alter_partition_reassignments,
    elect_leaders,
    list_partition_reassignments,
)
from server.kafka.admin_quorum import describe_quorum
from server.kafka.admin_topics import create_partitions, create_topics, delete_topics
from server.kafka.apis import ApiSpec
from server.kafka.describe_partitions import DESCRIBE_TOPIC_PARTITIONS

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
    ApiSpec(55, 0, 2, describe_quorum),
    ApiSpec(60, 0, 2, describe_cluster),
    DESCRIBE_TOPIC_PARTITIONS,
)
