"""Consumer groups over Kafka's protocol (issue 18), with clients no one here wrote: librdkafka
(confluent-kafka) in both of Kafka 4's group protocols (classic, and KIP-848's
``group.protocol=consumer``), kafka-python and aiokafka (classic), and confluent-kafka's
AdminClient, against the KAFKA listeners of one three-node cluster.

What a group consumer relies on: a restarted consumer resumes from what its group committed;
two consumers share a topic and, when one is killed (kill -9, its session left to expire), the
other takes every partition and no record is lost; the admin client lists, describes, reads
the offsets of and deletes groups; offsets committed over Kafka's protocol are the HTTP API's
and ``kraft-consumer-groups``'s, and the other way; a group goes on when its coordinator's
node is killed.

One cluster serves the module; each test uses topics and groups of its own. Sessions are
short (6 s, Kafka's minimum for classic groups; the consumer protocol's is the cluster's
``group.consumer.session.timeout.ms``) so that a killed member's partitions move in seconds.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as AioPartition
from confluent_kafka import Consumer as KafkaConsumerClient
from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ConsumerGroupType,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer
from kafka import TopicPartition as KpPartition

from scripts.node_process import Cluster, NodeProcess, http, run_tool, wait_until
from tests.integration.test_cluster import create_topic

DEADLINE_S = 60.0
SESSION_MS = 6000
ROOT = __file__.rsplit("/tests/", 1)[0]
PROTOCOLS = ["classic", "consumer"]


@pytest.fixture(scope="module")
def group_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three combined nodes, each with a KAFKA listener on K + 2(i-1); topics of three
    replicas with min.insync.replicas=2; five offsets partitions (Kafka's 50 take longer to
    create, the rule is the same); the consumer protocol's session as short as a classic one's."""
    handle = Cluster.create(
        tmp_path_factory.mktemp("kafka-groups"),
        **{
            "min.insync.replicas": "2",
            "default.replication.factor": "3",
            "offsets.topic.num.partitions": "5",
            "group.consumer.session.timeout.ms": str(SESSION_MS),
            "group.consumer.heartbeat.interval.ms": "1000",
        },
    )
    handle.give_kafka_listeners()
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def consumer_config(
    cluster: Cluster, group: str, protocol: str = "classic", **extra: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": cluster.kafka_bootstrap(),
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **extra,
    }
    if protocol == "consumer":
        config["group.protocol"] = "consumer"
    else:
        config["session.timeout.ms"] = SESSION_MS
        config["heartbeat.interval.ms"] = 1000
    return config


def produce(cluster: Cluster, topic: str, keys: list[str]) -> dict[str, tuple[int, int]]:
    """Each key as one record (key and value alike), acks=all; where each went
    (partition, offset), by key."""
    producer = Producer(
        {"bootstrap.servers": cluster.kafka_bootstrap(), "acks": "all", "enable.idempotence": True}
    )
    placed: dict[str, tuple[int, int]] = {}
    errors: list[Any] = []

    def report(error: Any, message: Any) -> None:
        if error is not None:
            errors.append(error)
        else:
            placed[message.key().decode()] = (message.partition(), message.offset())

    for key in keys:
        producer.produce(topic, key=key.encode(), value=key.encode(), on_delivery=report)
    assert producer.flush(DEADLINE_S) == 0
    assert errors == []
    return placed


def ends(placed: dict[str, tuple[int, int]]) -> dict[int, int]:
    """The log end offset of each partition the records went to."""
    out: dict[int, int] = {}
    for partition, offset in placed.values():
        out[partition] = max(out.get(partition, 0), offset + 1)
    return out


def poll_until(
    consumer: KafkaConsumerClient, done: Callable[[list[Message]], bool], what: str
) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + DEADLINE_S
    while not done(got):
        assert time.monotonic() < deadline, f"{what}: {len(got)} record(s) so far"
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        got.append(message)
    return got


def keys_of(messages: list[Message]) -> list[str]:
    return sorted(m.key().decode() for m in messages)


def group_json(cluster: Cluster, group: str) -> dict[str, Any] | None:
    """``GET /v1/groups/{g}`` through any running node, following its coordinator's 307 and
    waiting out 503s; None for 404."""
    path = f"/v1/groups/{quote(group, safe='')}"

    def attempt() -> tuple[int, Any] | None:
        url = cluster.running()[0].url + path
        status, body = http("GET", url)
        if status == 307:
            status, body = http("GET", body["leader_url"].rstrip("/") + path)
        return None if status in (307, 503) else (status, body)

    status, body = wait_until(f"group {group} described", attempt)
    if status == 404:
        return None
    assert status == 200, body
    answer: dict[str, Any] = body
    return answer


def committed_over_http(cluster: Cluster, group: str) -> dict[int, int | None]:
    body = group_json(cluster, group)
    assert body is not None, f"group {group} does not exist"
    return {o["partition"]: o["offset"] for o in body["offsets"]}


# -- librdkafka, both protocols -------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_restarted_group_consumer_resumes_from_what_its_group_committed(
    group_cluster: Cluster, protocol: str
) -> None:
    topic = group = f"resume-{protocol}"
    create_topic(group_cluster.nodes[0], topic, partitions=3)
    first = produce(group_cluster, topic, [f"a{i}" for i in range(30)])
    consumer = KafkaConsumerClient(consumer_config(group_cluster, group, protocol))
    consumer.subscribe([topic])
    try:
        got = poll_until(consumer, lambda got: len(got) >= len(first), "the first records")
        assert sorted({(p.topic, p.partition) for p in consumer.assignment()}) == [
            (topic, p) for p in range(3)
        ]
        consumer.commit(asynchronous=False)
        while_member = group_json(group_cluster, group)
    finally:
        consumer.close()
    assert keys_of(got) == sorted(first)
    assert while_member is not None
    assert while_member["type"] == protocol
    assert len(while_member["members"]) == 1
    assert committed_over_http(group_cluster, group) == ends(first)

    second = produce(group_cluster, topic, [f"b{i}" for i in range(12)])
    again = KafkaConsumerClient(consumer_config(group_cluster, group, protocol))
    again.subscribe([topic])
    try:
        got = poll_until(again, lambda got: len(got) >= len(second), "the records after")
    finally:
        again.close()
    # Nothing from before the commit comes again: each partition starts where it was left.
    assert keys_of(got) == sorted(second)
    for partition, start in ends(first).items():
        offsets = [m.offset() for m in got if m.partition() == partition]
        assert offsets == sorted(offsets) and (not offsets or offsets[0] == start)


# A group member in its own process, to be killed: it prints each record as it processes it,
# then commits it (at-least-once: a record printed but not committed comes again).
MEMBER = r"""
import sys, time
from confluent_kafka import Consumer
config = dict(arg.split("=", 1) for arg in sys.argv[2:])
config["enable.auto.commit"] = False
consumer = Consumer(config)
consumer.subscribe([sys.argv[1]])
while True:
    message = consumer.poll(0.2)
    if message is None:
        continue
    if message.error():
        print("error", message.error(), flush=True)
        continue
    print("record", message.partition(), message.offset(), message.key().decode(), flush=True)
    time.sleep(0.05)  # a slow consumer: it holds records when it dies
    consumer.commit(message=message, asynchronous=False)
"""


class Member:
    """:data:`MEMBER` running; its printed lines gathered by a thread."""

    def __init__(self, topic: str, config: dict[str, Any]) -> None:
        argv = [sys.executable, "-c", MEMBER, topic, *(f"{k}={v}" for k, v in config.items())]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def records(self) -> list[tuple[int, int, str]]:
        out = []
        for line in list(self.lines):
            kind, *fields = line.split()
            assert kind == "record", line
            out.append((int(fields[0]), int(fields[1]), fields[2]))
        return out

    def kill(self) -> None:
        self.process.kill()  # kill -9
        self.process.wait(DEADLINE_S)
        self._reader.join(DEADLINE_S)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_survivor_of_a_killed_member_takes_every_partition_and_no_record_is_lost(
    group_cluster: Cluster, protocol: str
) -> None:
    topic = group = f"shared-{protocol}"
    create_topic(group_cluster.nodes[0], topic, partitions=4)
    placed = produce(group_cluster, topic, [f"x{i}" for i in range(40)])
    member = Member(topic, consumer_config(group_cluster, group, protocol))
    survivor = KafkaConsumerClient(consumer_config(group_cluster, group, protocol))
    consumed: list[Message] = []

    def consume_until(done: Callable[[], bool], what: str) -> None:
        """The survivor polls, processes and commits each record (as the member does)."""
        deadline = time.monotonic() + DEADLINE_S
        while not done():
            assert time.monotonic() < deadline, f"{what}: {len(consumed)} record(s) so far"
            message = survivor.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            consumed.append(message)
            survivor.commit(message=message, asynchronous=False)

    try:
        wait_until("the member consumes", lambda: member.records() or None)
        survivor.subscribe([topic])
        # The two share the topic: two partitions each.
        consume_until(lambda: len(survivor.assignment()) == 2, "the survivor gets its share")
        placed.update(produce(group_cluster, topic, [f"y{i}" for i in range(200)]))
        shared_at = len(member.records())
        consume_until(
            lambda: len(member.records()) >= shared_at + 5, "the member consumes its share"
        )
        member.kill()
        consume_until(lambda: len(survivor.assignment()) == 4, "the survivor takes over")
        seen = {key for _, _, key in member.records()}
        consume_until(lambda: seen | set(keys_of(consumed)) >= set(placed), "every record consumed")
    finally:
        member.kill()
        survivor.close()
    by_member = [key for _, _, key in member.records()]
    by_survivor = keys_of(consumed)
    assert set(by_member) | set(by_survivor) == set(placed)
    # At least once, not all over again: what comes twice is at most the record in hand in
    # each partition that moved (to the survivor at the share, back at the kill).
    duplicates = len(by_member) + len(by_survivor) - len(placed)
    assert duplicates <= 8, duplicates
    assert committed_over_http(group_cluster, group) == ends(placed)


# -- kafka-python and aiokafka -------------------------------------------------------------------


def test_kafka_python_and_aiokafka_consume_as_a_group_and_commit(group_cluster: Cluster) -> None:
    topic = "py-groups"
    create_topic(group_cluster.nodes[0], topic, partitions=2)
    placed = produce(group_cluster, topic, [f"p{i}" for i in range(20)])
    partitions = [KpPartition(topic, 0), KpPartition(topic, 1)]

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=group_cluster.kafka_bootstrap(),
        group_id="kafka-python",
        client_id="kp-member",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=1000,
    )
    try:
        got: list[Any] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < len(placed):
            assert time.monotonic() < deadline, f"kafka-python got {len(got)}"
            for records in consumer.poll(timeout_ms=500).values():
                got += records
        consumer.commit()
        assert {tp.partition: consumer.committed(tp) for tp in partitions} == ends(placed)
        described = group_json(group_cluster, "kafka-python")
    finally:
        consumer.close()
    assert sorted(r.key.decode() for r in got) == sorted(placed)
    assert described is not None
    assert (described["type"], described["state"], described["protocol_type"]) == (
        "classic",
        "Stable",
        "consumer",
    )
    (member,) = described["members"]
    assert member["client_id"] == "kp-member"
    assert member["assignment"] == [{"topic": topic, "partition": p} for p in (0, 1)]
    assert committed_over_http(group_cluster, "kafka-python") == ends(placed)

    async def aiokafka_group() -> tuple[list[Any], dict[int, int | None]]:
        aio = AIOKafkaConsumer(
            topic,
            bootstrap_servers=group_cluster.kafka_bootstrap(),
            group_id="aiokafka",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=1000,
        )
        await aio.start()
        try:
            records: list[Any] = []
            deadline = time.monotonic() + DEADLINE_S
            while len(records) < len(placed):
                assert time.monotonic() < deadline, f"aiokafka got {len(records)}"
                for batch in (await aio.getmany(timeout_ms=500)).values():
                    records += batch
            await aio.commit()
            committed = {p: await aio.committed(AioPartition(topic, p)) for p in (0, 1)}
        finally:
            await aio.stop()
        return records, committed

    records, committed = asyncio.run(aiokafka_group())
    assert sorted(r.key.decode() for r in records) == sorted(placed)
    assert committed == ends(placed)
    assert committed_over_http(group_cluster, "aiokafka") == ends(placed)


# -- the admin client ----------------------------------------------------------------------------


def test_the_admin_client_lists_describes_reads_offsets_of_and_deletes_groups(
    group_cluster: Cluster,
) -> None:
    topic = "admin-groups"
    create_topic(group_cluster.nodes[0], topic, partitions=2)
    placed = produce(group_cluster, topic, [f"q{i}" for i in range(10)])
    admin = AdminClient({"bootstrap.servers": group_cluster.kafka_bootstrap()})
    members = {
        "adm-classic": KafkaConsumerClient(
            consumer_config(group_cluster, "adm-classic", **{"client.id": "adm"})
        ),
        "adm-consumer": KafkaConsumerClient(
            consumer_config(group_cluster, "adm-consumer", "consumer", **{"client.id": "adm"})
        ),
    }
    try:
        for consumer in members.values():
            consumer.subscribe([topic])
            poll_until(consumer, lambda got: len(got) >= len(placed), "a member consumes")
            consumer.commit(asynchronous=False)
        # A group that only has offsets: Kafka's "simple" group.
        simple = ConsumerGroupTopicPartitions("adm-simple", [TopicPartition(topic, 0, 3)])
        (future,) = admin.alter_consumer_group_offsets([simple]).values()
        assert [(tp.partition, tp.offset) for tp in future.result().topic_partitions] == [(0, 3)]

        listed = admin.list_consumer_groups().result(timeout=DEADLINE_S)
        assert listed.errors == []
        by_id = {g.group_id: g for g in listed.valid}
        assert (by_id["adm-classic"].type, by_id["adm-classic"].state) == (
            ConsumerGroupType.CLASSIC,
            ConsumerGroupState.STABLE,
        )
        assert (by_id["adm-consumer"].type, by_id["adm-consumer"].state) == (
            ConsumerGroupType.CONSUMER,
            ConsumerGroupState.STABLE,
        )
        assert by_id["adm-simple"].is_simple_consumer_group
        assert by_id["adm-simple"].state == ConsumerGroupState.EMPTY
        stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result()
        assert {"adm-classic", "adm-consumer"} <= {g.group_id for g in stable.valid}
        assert "adm-simple" not in {g.group_id for g in stable.valid}

        described = admin.describe_consumer_groups(list(members))
        for group, future in described.items():
            description = future.result(timeout=DEADLINE_S)
            assert description.state == ConsumerGroupState.STABLE, group
            (member,) = description.members
            assert member.client_id == "adm"
            assert sorted(tp.partition for tp in member.assignment.topic_partitions) == [0, 1]
            body = group_json(group_cluster, group)
            assert body is not None and description.coordinator.id == body["coordinator_id"]

        asked = [ConsumerGroupTopicPartitions(g) for g in (*members, "adm-simple")]
        for request in asked:
            (future,) = admin.list_consumer_group_offsets([request]).values()
            offsets = {tp.partition: tp.offset for tp in future.result().topic_partitions}
            want = {0: 3} if request.group_id == "adm-simple" else ends(placed)
            assert offsets == want, request.group_id

        # A group with a member is not deleted.
        (future,) = admin.delete_consumer_groups(["adm-classic"]).values()
        with pytest.raises(KafkaException) as caught:
            future.result(timeout=DEADLINE_S)
        assert caught.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    finally:
        for consumer in members.values():
            consumer.close()
    for group, future in admin.delete_consumer_groups([*members, "adm-simple"]).items():
        assert future.result(timeout=DEADLINE_S) is None, group
        assert group_json(group_cluster, group) is None


# -- the HTTP API and the tool, both ways --------------------------------------------------------


def test_offsets_committed_over_kafka_show_over_http_and_in_the_tool_and_back(
    group_cluster: Cluster,
) -> None:
    topic = "both-ways"
    create_topic(group_cluster.nodes[0], topic, partitions=2)
    placed = produce(group_cluster, topic, [f"w{i}" for i in range(20)])
    end = ends(placed)

    # Kafka's protocol -> HTTP and kraft-consumer-groups: a commit without membership.
    committer = KafkaConsumerClient(consumer_config(group_cluster, "to-http"))
    try:
        committer.commit(
            offsets=[TopicPartition(topic, 0, 2), TopicPartition(topic, 1, 3)],
            asynchronous=False,
        )
    finally:
        committer.close()
    assert committed_over_http(group_cluster, "to-http") == {0: 2, 1: 3}
    node = group_cluster.running()[0]
    out = run_tool(
        "client.tools.consumer_groups",
        "--bootstrap-server",
        node.bootstrap,
        "--describe",
        "--group",
        "to-http",
    )
    assert out.returncode == 0, out.stderr
    assert [line.split() for line in out.stdout.splitlines()[2:]] == [
        ["to-http", topic, str(p), str(o), str(end[p]), str(end[p] - o), "-", "-", "-"]
        for p, o in ((0, 2), (1, 3))
    ]

    # HTTP -> Kafka's protocol: the admin client reads the offsets, a consumer starts there.
    path = "/v1/groups/from-http/offsets"
    body = {
        "offsets": [
            {"topic": topic, "partition": 0, "offset": 4},
            {"topic": topic, "partition": 1, "offset": 1},
        ]
    }

    def commit() -> bool | None:
        status, answer = http("POST", node.url + path, body)
        if status == 307:
            status, answer = http("POST", answer["leader_url"].rstrip("/") + path, body)
        return True if status == 200 else None

    wait_until("offsets committed over HTTP", commit)
    admin = AdminClient({"bootstrap.servers": group_cluster.kafka_bootstrap()})
    (future,) = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("from-http")]
    ).values()
    assert {tp.partition: tp.offset for tp in future.result().topic_partitions} == {0: 4, 1: 1}
    consumer = KafkaConsumerClient(consumer_config(group_cluster, "from-http"))
    consumer.subscribe([topic])
    try:
        want = end[0] - 4 + end[1] - 1
        got = poll_until(consumer, lambda got: len(got) >= want, "from the HTTP commit")
    finally:
        consumer.close()
    assert sorted((m.partition(), m.offset()) for m in got) == [
        (p, o) for p, start in ((0, 4), (1, 1)) for o in range(start, end[p])
    ]


# -- the coordinator's node killed (last: it leaves one node restarted) --------------------------


def test_a_group_goes_on_when_its_coordinator_s_node_is_killed(group_cluster: Cluster) -> None:
    topic = group = "moving"
    create_topic(group_cluster.nodes[0], topic, partitions=2)
    placed = produce(group_cluster, topic, [f"m{i}" for i in range(20)])
    consumer = KafkaConsumerClient(consumer_config(group_cluster, group))
    consumer.subscribe([topic])
    victim: NodeProcess | None = None
    try:
        got = poll_until(consumer, lambda got: len(got) >= len(placed), "before the kill")
        consumer.commit(asynchronous=False)
        before = group_json(group_cluster, group)
        assert before is not None
        victim = group_cluster.node(before["coordinator_id"])
        victim.kill()  # kill -9 of the group's coordinator
        placed.update(produce(group_cluster, topic, [f"n{i}" for i in range(20)]))
        got += poll_until(consumer, lambda more: len(more) >= 20, "after the kill")

        def committed() -> bool | None:
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as e:
                if e.args[0].retriable() or e.args[0].code() in (
                    KafkaError.NOT_COORDINATOR,
                    KafkaError.COORDINATOR_NOT_AVAILABLE,
                    KafkaError._WAIT_COORD,
                ):
                    return None
                raise
            return True

        wait_until("a commit to the new coordinator", committed)
        after = group_json(group_cluster, group)
    finally:
        consumer.close()
        if victim is not None:
            victim.start()
    assert sorted(m.key().decode() for m in got) == sorted(placed)
    assert after is not None and after["coordinator_id"] != before["coordinator_id"]
    assert committed_over_http(group_cluster, group) == ends(placed)
