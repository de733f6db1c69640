"""The seed lab (/work/shared/LAB.md) typed with Kafka 4.4.0's own tools, through
``scripts/kafka-tool``, against the KAFKA listeners of three of our nodes (issue 18, item 3).

Each lab line runs as the user types it (our Kafka port where the lab says 9092), and what the
tool prints is checked against what our HTTP API says about the same topics, partitions and
groups: the describe lines carry our leaders, replicas and ISR; the keyed records land in the
partition murmur2 picks; the group's offsets are ours. Then what the lab does by hand: the
``news`` topic with a producer and a consumer left running (a line typed later appears), Ctrl+C
(SIGINT) ending the console consumer with Kafka's closing line, a consumer group described,
reset to the earliest offsets and read again, and kafka-producer-perf-test with acks=all and an
idempotent producer (kafka-consumer-perf-test reading it back in a group).

Two differences from the lab as typed, both Kafka 4.4.0's: its console producer no longer has
``--broker-list`` (removed in Kafka 4.0; ``scripts/kafka-tool`` passes it as
``--bootstrap-server`` and says so), and a topic the producer creates gets ``num.partitions``
(1), so ``user_topic`` is made with three partitions first, for "one partition" to mean
something.

Skipped, with the reason, only when Java or Kafka's jars (``scripts/setup`` fetches them) are
missing.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from client.protocol import partition_for_key
from scripts import kafka_tool
from scripts.bench.kafka_dist import KafkaDist
from scripts.node_process import ROOT, NodeProcess, http, wait_until
from tests.compat.conftest import KafkaNodes, KafkaToolRunner

DEADLINE_S = 60.0
CLOSING = re.compile(r"^Processed a total of (\d+) messages$", re.MULTILINE)
# TopicCommand's warning for names with '.' or '_' (on stdout, before its answer).
UNDERSCORE_WARNING = (
    "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore "
    "('_') could collide. To avoid issues it is best to use either, but not both."
)


class Running:
    """A tool left running (a console producer or consumer), its stdout lines gathered by a
    thread, its stderr by another (a full pipe would stop the JVM)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(process.stderr, self.errors), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def type(self, line: str) -> None:
        """A line typed into the tool's standard input."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def wait_for_lines(self, count: int, what: str) -> list[str]:
        wait_until(f"{what} ({count} lines)", lambda: len(self.lines) >= count or None, DEADLINE_S)
        return list(self.lines)

    def interrupt(self) -> tuple[int, str]:
        """Ctrl+C: SIGINT to the tool (the JVM itself); its exit code and stderr."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(DEADLINE_S)
        for thread in self._threads:
            thread.join(DEADLINE_S)
        return code, "\n".join(self.errors)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(DEADLINE_S)


def ok(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a tool printed on stdout; it must have exited 0 without an exception."""
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Exception" not in done.stderr, done.stderr
    return done.stdout.splitlines()


def topic_view(node: NodeProcess, topic: str) -> dict[str, Any] | None:
    status, body = http("GET", f"{node.url}/v1/topics/{topic}")
    return body if status == 200 else None


def topic_names(node: NodeProcess) -> set[str]:
    status, body = http("GET", f"{node.url}/v1/topics")
    assert status == 200, body
    return {t["name"] if isinstance(t, dict) else t for t in body["topics"]}


def records(node: NodeProcess, topic: str, partition: int) -> list[dict[str, Any]]:
    """The partition's records over HTTP (any node: a GET follows the 307 to the leader)."""
    status, body = http(
        "GET", f"{node.url}/v1/topics/{topic}/partitions/{partition}/records?offset=0"
    )
    assert status == 200, body
    out: list[dict[str, Any]] = body["records"]
    return out


def high_watermarks(node: NodeProcess, topic: str) -> dict[int, int]:
    view = topic_view(node, topic)
    assert view is not None
    return {p["partition"]: p["high_watermark"] for p in view["partitions"]}


def produce(nodes: KafkaNodes, topic: str, values: list[str], partitions: int = 1) -> None:
    """Keyless records, acks=all (librdkafka), all acknowledged; record i to partition
    i % ``partitions``."""
    producer = Producer({"bootstrap.servers": nodes.bootstrap, "acks": "all"})
    errors: list[Any] = []
    for i, value in enumerate(values):
        producer.produce(
            topic, value.encode(), partition=i % partitions,
            on_delivery=lambda e, _m: errors.append(e),
        )  # fmt: skip
    assert producer.flush(DEADLINE_S) == 0
    assert errors == [None] * len(values)


def describe_requests(nodes: KafkaNodes) -> float:
    """DescribeTopicPartitions requests answered so far, over every node (the Admin client
    sends each to the node it picks)."""
    total = 0.0
    for node in nodes.cluster.nodes:
        status, text = http("GET", f"{node.url}/metrics")
        assert status == 200, text
        total += sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('kraft_kafka_requests_total{api="describe_topic_partitions"')
        )
    return total


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    return wait_until(what, check, DEADLINE_S)


# -- the launcher ------------------------------------------------------------------------------


def test_every_tool_offered_is_a_class_of_kafka_s_jars(kafka: KafkaDist) -> None:
    classes: set[str] = set()
    for jar in kafka.libs.glob("kafka*.jar"):
        with zipfile.ZipFile(jar) as z:
            classes |= {n.removesuffix(".class").replace("/", ".") for n in z.namelist()}
    assert {t.main for t in kafka_tool.TOOLS.values()} <= classes


def test_the_launcher_runs_kafka_s_tool_and_refuses_what_we_do_not_serve(
    kafka: KafkaDist, kafka_nodes: KafkaNodes
) -> None:
    launcher = str(ROOT / "scripts" / "kafka-tool")
    done = subprocess.run(
        [launcher, "kafka-cluster", "cluster-id", "--bootstrap-server", kafka_nodes.bootstrap],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert ok(done) == [f"Cluster ID: {kafka_nodes.cluster.cluster_id}"]
    refused = subprocess.run(
        [launcher, "kafka-delete-records", "--bootstrap-server", kafka_nodes.bootstrap],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert refused.returncode == 2
    assert "our nodes do not serve DeleteRecords (21)" in refused.stderr


# -- the lab's lines -----------------------------------------------------------------------------


def test_lab_topics_create_list_describe_delete(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[0]
    bootstrap = ["--bootstrap-server", kafka_nodes.address(node)]
    created = kafka_tool.run(
        "kafka-topics", *bootstrap, "--topic", "log_topic", "--create",
        "--partitions", "2", "--replication-factor", "2",
    )  # fmt: skip
    assert ok(created) == [UNDERSCORE_WARNING, "Created topic log_topic."]

    listed = ok(kafka_tool.run("kafka-topics", *bootstrap, "--list"))
    assert "log_topic" in listed and set(listed) == topic_names(node)

    # Every replica in the ISR first: the describe then shows what the HTTP API shows.
    view = wait_for(
        "log_topic's ISR whole",
        lambda: (
            (v := topic_view(node, "log_topic"))
            and all(len(p["isr"]) == 2 for p in v["partitions"])
            and v
        ),
    )
    asked = describe_requests(kafka_nodes)
    described = ok(kafka_tool.run("kafka-topics", *bootstrap, "--describe", "--topic", "log_topic"))
    # The tool asks DescribeTopicPartitions (KIP-966) and prints the ELR lists as a Kafka 4.4
    # broker without the ELR feature answers them: empty (over Metadata it printed N/A).
    expected = [
        f"Topic: log_topic\tTopicId: {view['topic_id']}\tPartitionCount: 2\t"
        "ReplicationFactor: 2\tConfigs: min.insync.replicas=2",
        *(
            f"\tTopic: log_topic\tPartition: {p['partition']}\tLeader: {p['leader']}\t"
            f"Replicas: {','.join(map(str, p['replicas']))}\t"
            f"Isr: {','.join(map(str, p['isr']))}\tElr: \tLastKnownElr: "
            for p in view["partitions"]
        ),
    ]
    assert described == expected
    assert describe_requests(kafka_nodes) == asked + 1
    # A page of one partition: the Admin client follows the cursor to the second one.
    paged = kafka_tool.run(
        "kafka-topics", *bootstrap, "--describe", "--topic", "log_topic",
        "--partition-size-limit-per-response", "1",
    )  # fmt: skip
    assert ok(paged) == expected
    assert describe_requests(kafka_nodes) == asked + 3
    assert len({p["leader"] for p in view["partitions"]}) == 2  # spread over the brokers

    assert ok(kafka_tool.run("kafka-topics", *bootstrap, "--topic", "log_topic", "--delete")) == []
    wait_for("log_topic deleted", lambda: "log_topic" not in topic_names(node))


def test_lab_producer_then_consumers_new_events_only_and_from_the_beginning(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[1]
    address = kafka_nodes.address(node)
    # As typed in the lab, --broker-list and all: the producer creates the topic.
    produced = kafka_tool.run(
        "kafka-console-producer", "--broker-list", address, "--topic", "log_topic",
        input="log1\nlog2\n",
    )  # fmt: skip
    assert ok(produced) == []
    assert "passed as --bootstrap-server" in produced.stderr
    [partition] = wait_for("log_topic created", lambda: topic_view(node, "log_topic"))["partitions"]
    assert [r["value"] for r in records(node, "log_topic", partition["partition"])] == [
        "log1",
        "log2",
    ]

    # --from-beginning: offset 0 on.
    everything = kafka_tool.run(
        "kafka-console-consumer", "--bootstrap-server", address, "--topic", "log_topic",
        "--from-beginning", "--max-messages", "2",
    )  # fmt: skip
    assert ok(everything) == ["log1", "log2"]
    assert CLOSING.findall(everything.stderr) == ["2"]

    # Without it, new events only: log1 and log2 never show; records sent once it runs do.
    # When it has taken its position is not printed, so records go in one at a time until
    # one shows: from then on every one does, in order.
    consumer = Running(
        kafka_tool.start(
            "kafka-console-consumer", "--bootstrap-server", address, "--topic", "log_topic"
        )
    )
    try:
        sent: list[str] = []

        def one_more_shown() -> bool:
            sent.append(f"new-{len(sent)}")
            produce(kafka_nodes, "log_topic", [sent[-1]])
            time.sleep(0.5)
            return bool(consumer.lines)

        wait_for("the consumer shows a new record", one_more_shown)
        produce(kafka_nodes, "log_topic", ["new-last"])
        wait_for("new-last shown", lambda: consumer.lines[-1:] == ["new-last"])
        shown = list(consumer.lines)
        first = sent.index(shown[0])
        assert shown == [*sent[first:], "new-last"]
        code, err = consumer.interrupt()
    finally:
        consumer.kill()
    assert code == 130, err  # the JVM's exit on SIGINT, after Kafka's shutdown hook ran
    assert CLOSING.findall(err) == [str(len(shown))]
    assert "Exception" not in err


def test_lab_keyed_producer_puts_every_event_of_a_user_in_one_partition(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[2]
    address = kafka_nodes.address(node)
    ok(
        kafka_tool.run(
            "kafka-topics", "--bootstrap-server", address, "--create", "--topic", "user_topic",
            "--partitions", "3",
        )
    )  # fmt: skip
    events = ["login website", "click the top item", "logout website"]
    produced = kafka_tool.run(
        "kafka-console-producer", "--broker-list", address, "--topic", "user_topic",
        "--property", "parse.key=true", "--property", "key.separator=,",
        input="".join(f"user1,{e}\n" for e in events),
    )  # fmt: skip
    ok(produced)
    # The partition murmur2 picks for the key, as Kafka's default partitioner does.
    chosen = partition_for_key(b"user1", 3)
    wait_for("three records", lambda: sum(high_watermarks(node, "user_topic").values()) == 3)
    assert high_watermarks(node, "user_topic") == {p: 3 if p == chosen else 0 for p in range(3)}
    assert [(r["key"], r["value"]) for r in records(node, "user_topic", chosen)] == [
        ("user1", e) for e in events
    ]
    consumed = kafka_tool.run(
        "kafka-console-consumer", "--bootstrap-server", address, "--topic", "user_topic",
        "--from-beginning", "--max-messages", "3",
        "--formatter-property", "print.key=true", "--formatter-property", "print.partition=true",
        "--formatter-property", "print.offset=true",
    )  # fmt: skip
    assert ok(consumed) == [
        f"Partition:{chosen}\tOffset:{i}\tuser1\t{e}" for i, e in enumerate(events)
    ]


def group_table(lines: list[str]) -> list[dict[str, str]]:
    """The rows of a kafka-consumer-groups table, by its column names."""
    rows = [line.split() for line in lines if line.strip()]
    header, body = rows[0], rows[1:]
    return [dict(zip(header, row, strict=True)) for row in body]


def test_lab_group_reads_is_described_reset_to_the_earliest_and_reads_everything_again(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[0]
    bootstrap = ["--bootstrap-server", kafka_nodes.bootstrap]
    ok(
        kafka_tool.run(
            "kafka-topics", *bootstrap, "--create", "--topic", "events", "--partitions", "2"
        )
    )
    values = [f"event-{i}" for i in range(20)]
    produce(kafka_nodes, "events", values, partitions=2)
    # A follower learns the high watermark a moment after the leader.
    ends = {0: 10, 1: 10}
    wait_for("node 1 sees every record", lambda: high_watermarks(node, "events") == ends)

    def read_all(*extra: str) -> list[str]:
        done = kafka_tool.run(
            "kafka-console-consumer", *bootstrap, "--topic", "events", "--group", "lab",
            "--max-messages", "20", *extra,
        )  # fmt: skip
        assert CLOSING.findall(done.stderr) == ["20"]
        return ok(done)

    assert sorted(read_all("--from-beginning")) == sorted(values)
    assert "lab" in ok(kafka_tool.run("kafka-consumer-groups", *bootstrap, "--list"))

    described = kafka_tool.run("kafka-consumer-groups", *bootstrap, "--describe", "--group", "lab")
    assert "Consumer group 'lab' has no active members." in described.stderr
    rows = group_table(ok(described))
    assert {
        int(r["PARTITION"]): (r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"]) for r in rows
    } == {p: (str(end), str(end), "0") for p, end in ends.items()}
    assert {(r["GROUP"], r["TOPIC"], r["CONSUMER-ID"]) for r in rows} == {("lab", "events", "-")}

    reset = kafka_tool.run(
        "kafka-consumer-groups", *bootstrap, "--group", "lab", "--topic", "events",
        "--reset-offsets", "--to-earliest", "--execute",
    )  # fmt: skip
    assert {int(r["PARTITION"]): r["NEW-OFFSET"] for r in group_table(ok(reset))} == {
        0: "0",
        1: "0",
    }
    # Our HTTP API sees the same commits.
    status, group = http("GET", f"{node.url}/v1/groups/lab")
    assert status == 200, group
    assert {(o["topic"], o["partition"], o["offset"]) for o in group["offsets"]} == {
        ("events", p, 0) for p in ends
    }
    again = group_table(
        ok(kafka_tool.run("kafka-consumer-groups", *bootstrap, "--describe", "--group", "lab"))
    )
    assert {int(r["PARTITION"]): (r["CURRENT-OFFSET"], r["LAG"]) for r in again} == {
        p: ("0", str(end)) for p, end in ends.items()
    }
    # The group's committed offsets are at 0: it reads everything again, no --from-beginning.
    assert sorted(read_all()) == sorted(values)


def test_lab_news_hands_on_a_line_typed_later_appears_and_ctrl_c_ends_both_cleanly(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[0]
    address = kafka_nodes.address(node)
    created = ok(
        kafka_tool.run("kafka-topics", "--bootstrap-server", address, "--create", "--topic", "news")
    )
    assert created == ["Created topic news."]
    producer = Running(
        kafka_tool.start("kafka-console-producer", "--bootstrap-server", address, "--topic", "news")
    )
    consumer = Running(
        kafka_tool.start(
            "kafka-console-consumer", "--bootstrap-server", address, "--topic", "news",
            "--from-beginning", "--group", "news-readers",
        )
    )  # fmt: skip
    try:
        lines = ["Good morning", "Good day", "Enjoy the Kafka lab"]
        for line in lines:
            producer.type(line)
        assert consumer.wait_for_lines(3, "the three lines shown") == lines
        # While it runs, the group shows it as its member with Kafka's client id and host.
        members = group_table(
            ok(
                kafka_tool.run(
                    "kafka-consumer-groups", "--bootstrap-server", address,
                    "--describe", "--group", "news-readers",
                )
            )
        )  # fmt: skip
        # (Its offset is "-" until its first automatic commit, 3 after.)
        [member] = members
        assert member["CONSUMER-ID"].startswith("console-consumer-"), member
        assert {
            k: member[k] for k in ("TOPIC", "PARTITION", "LOG-END-OFFSET", "HOST", "CLIENT-ID")
        } == {
            "TOPIC": "news",
            "PARTITION": "0",
            "LOG-END-OFFSET": "3",
            "HOST": "/127.0.0.1",
            "CLIENT-ID": "console-consumer",
        }
        producer.type("a line typed later")
        assert consumer.wait_for_lines(4, "the later line shown") == [*lines, "a line typed later"]
        consumer_code, consumer_err = consumer.interrupt()
        producer_code, producer_err = producer.interrupt()
    finally:
        consumer.kill()
        producer.kill()
    assert consumer_code == 130 and CLOSING.findall(consumer_err) == ["4"], consumer_err
    assert producer_code == 130 and "Exception" not in producer_err, producer_err
    # `ls /tmp/kraft-combined-logs/news-0` on the leader: Kafka's files.
    leader = kafka_nodes.cluster.node(topic_view(node, "news")["partitions"][0]["leader"])
    files = sorted(p.name for p in (leader.log_dir / "news-0").iterdir())
    assert files == [
        "00000000000000000000.index",
        "00000000000000000000.log",
        "00000000000000000000.timeindex",
        "leader-epoch-checkpoint",
        "partition.metadata",
    ]


def test_producer_perf_test_with_acks_all_and_idempotence_then_the_consumer_perf_test(
    kafka_tool: KafkaToolRunner, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[1]
    bootstrap = kafka_nodes.bootstrap
    ok(
        kafka_tool.run(
            "kafka-topics",
            "--bootstrap-server",
            bootstrap,
            "--create",
            "--topic",
            "perf",
            "--partitions",
            "3",
        )
    )
    count = 20_000
    sent = ok(
        kafka_tool.run(
            "kafka-producer-perf-test", "--bootstrap-server", bootstrap, "--topic", "perf",
            "--num-records", str(count), "--record-size", "100", "--throughput", "-1",
            "--command-property", "acks=all", "enable.idempotence=true",
        )
    )  # fmt: skip
    assert re.match(rf"^{count} records sent, ", sent[-1]), sent
    # Idempotent: every record stored once.
    wait_for("every record stored", lambda: sum(high_watermarks(node, "perf").values()) >= count)
    assert sum(high_watermarks(node, "perf").values()) == count
    read = ok(
        kafka_tool.run(
            "kafka-consumer-perf-test", "--bootstrap-server", bootstrap, "--topic", "perf",
            "--num-records", str(count), "--group", "perf-readers", "--timeout", "30000",
        )
    )  # fmt: skip
    header, row = read[-2].split(", "), read[-1].split(", ")
    assert int(dict(zip(header, row, strict=True))["data.consumed.in.nMsg"]) == count
