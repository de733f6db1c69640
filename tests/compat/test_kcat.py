"""kcat (Debian's package: kcat 1.7 on its own librdkafka, older than the confluent-kafka
wheel's) against the KAFKA listeners of three of our nodes (issue 18, item 3): metadata (-L),
keyed records with headers produced (-P -K) and consumed from the beginning to the end (-C -o
beginning -e), and a balanced consumer group (-G) of two kcat processes sharing a topic, one
killed (SIGKILL), the other taking its partitions over, the commits ours.

Skipped only when kcat is not installed (CI installs it: scripts/setup).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from typing import Any

from client.protocol import partition_for_key
from scripts.node_process import NodeProcess, http, wait_until
from tests.compat.conftest import KafkaNodes

DEADLINE_S = 60.0
# librdkafka's defaults are 45 s and 3 s: a killed member is noticed sooner (our group
# coordinator's minimum session, as Kafka's, is 6 s).
SESSION = ["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000"]
# Where a member starts a partition the group has no commit for. Not kcat's -o: in -G mode it
# is the start of every partition assigned, whatever the group committed.
EARLIEST = ["-X", "auto.offset.reset=earliest"]
ASSIGNED = re.compile(r"rebalanced \(memberid [^)]*\): assigned: (.*)$")


def kcat_run(kcat: str, *args: str, input: str | None = None) -> str:
    done = subprocess.run(
        [kcat, *args], input=input, capture_output=True, text=True, timeout=DEADLINE_S
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    return done.stdout


def topic_view(node: NodeProcess, topic: str) -> dict[str, Any]:
    status, body = http("GET", f"{node.url}/v1/topics/{topic}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def create_topic(node: NodeProcess, topic: str, partitions: int) -> dict[str, Any]:
    """Through the HTTP API, every replica in the ISR before it returns."""
    status, body = http("POST", f"{node.url}/v1/topics", {"name": topic, "partitions": partitions})
    assert status == 201, body
    return wait_until(  # type: ignore[no-any-return]
        f"{topic}'s ISR whole",
        lambda: (
            (v := topic_view(node, topic))
            and all(len(p["isr"]) == 3 and p["leader"] is not None for p in v["partitions"])
            and v
        ),
        DEADLINE_S,
    )


def test_kcat_lists_the_brokers_and_partitions_our_http_api_shows(
    kcat: str, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[0]
    view = create_topic(node, "kcat-meta", 3)
    metadata = json.loads(kcat_run(kcat, "-b", kafka_nodes.address(node), "-L", "-J"))
    assert metadata["brokers"] == [
        {"id": n.node_id, "name": kafka_nodes.address(n)} for n in kafka_nodes.cluster.nodes
    ]
    assert metadata["controllerid"] == kafka_nodes.cluster.controller_id()
    topics = {t["topic"]: t for t in metadata["topics"]}
    status, listing = http("GET", f"{node.url}/v1/topics")
    assert status == 200, listing
    assert set(topics) == {t["name"] for t in listing["topics"]}
    assert [
        (
            p["partition"],
            p["leader"],
            [r["id"] for r in p["replicas"]],
            [r["id"] for r in p["isrs"]],
        )
        for p in topics["kcat-meta"]["partitions"]
    ] == [(p["partition"], p["leader"], p["replicas"], p["isr"]) for p in view["partitions"]]
    # The plain listing of one topic, as kcat prints it.
    lines = kcat_run(kcat, "-b", kafka_nodes.bootstrap, "-L", "-t", "kcat-meta").splitlines()
    assert '  topic "kcat-meta" with 3 partitions:' in lines
    for p in view["partitions"]:
        replicas = ",".join(map(str, p["replicas"]))
        isr = ",".join(map(str, p["isr"]))
        leader = f"partition {p['partition']}, leader {p['leader']}"
        assert f"    {leader}, replicas: {replicas}, isrs: {isr}" in lines


def test_kcat_produces_keyed_records_with_headers_and_reads_them_from_the_beginning(
    kcat: str, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[1]
    create_topic(node, "kcat-keyed", 3)
    sent = [(f"user{i % 4}", f"event {i}") for i in range(24)]
    # murmur2_random: Java's partitioner (librdkafka's default hashes with CRC32 instead).
    kcat_run(
        kcat, "-b", kafka_nodes.bootstrap, "-P", "-t", "kcat-keyed", "-K", ":",
        "-H", "source=kcat", "-X", "topic.partitioner=murmur2_random", "-X", "acks=all",
        input="".join(f"{k}:{v}\n" for k, v in sent),
    )  # fmt: skip
    out = kcat_run(
        kcat, "-b", kafka_nodes.bootstrap, "-C", "-t", "kcat-keyed", "-o", "beginning", "-e",
        "-f", "%p\t%o\t%k\t%h\t%s\n",
    )  # fmt: skip
    got = [line.split("\t") for line in out.splitlines()]
    by_partition: dict[int, list[tuple[str, str]]] = {}
    for partition, offset, key, headers, value in got:
        assert headers == "source=kcat"
        records = by_partition.setdefault(int(partition), [])
        assert int(offset) == len(records)  # dense, from 0, in order
        records.append((key, value))
    expected: dict[int, list[tuple[str, str]]] = {}
    for key, value in sent:
        expected.setdefault(partition_for_key(key.encode(), 3), []).append((key, value))
    assert by_partition == expected
    # What the HTTP API reads from the same partitions.
    for partition, records in expected.items():
        status, body = http(
            "GET", f"{node.url}/v1/topics/kcat-keyed/partitions/{partition}/records?offset=0"
        )
        assert status == 200, body
        assert [(r["key"], r["value"]) for r in body["records"]] == records


class Member:
    """A ``kcat -G`` member left running (``-u``: its lines unbuffered): what it prints
    (``%p %k``) and the partitions its latest rebalance assigned it, gathered by threads."""

    def __init__(self, kcat: str, bootstrap: str, group: str, topic: str) -> None:
        argv = [kcat, "-b", bootstrap, "-G", group, *SESSION, *EARLIEST, "-u"]
        argv += ["-f", "%p %k\n", topic]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.assigned: set[int] | None = None
        self.log: list[str] = []
        self._threads = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_out(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))
            found = ASSIGNED.search(line)
            if found:
                self.assigned = {int(p) for p in re.findall(r"\[(\d+)\]", found.group(1))}

    def keys(self) -> list[str]:
        return [line.split(" ", 1)[1] for line in list(self.lines)]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(DEADLINE_S)
        for thread in self._threads:
            thread.join(DEADLINE_S)
        return code


def produce_keys(kcat: str, bootstrap: str, topic: str, keys: list[str]) -> None:
    kcat_run(
        kcat, "-b", bootstrap, "-P", "-t", topic, "-K", ":", "-X", "acks=all",
        input="".join(f"{k}:{k}\n" for k in keys),
    )  # fmt: skip


def ends_of(node: NodeProcess, topic: str) -> dict[int, int]:
    """The high watermark of each partition, as ``node`` knows it."""
    return {p["partition"]: p["high_watermark"] for p in topic_view(node, topic)["partitions"]}


def committed(node: NodeProcess, group: str) -> dict[int, int]:
    status, body = http("GET", f"{node.url}/v1/groups/{group}")
    assert status == 200, body
    return {o["partition"]: o["offset"] for o in body["offsets"]}


def test_two_kcat_members_share_a_topic_and_the_survivor_of_a_kill_takes_it_all(
    kcat: str, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[2]
    topic = group = "kcat-shared"
    create_topic(node, topic, 4)
    first = Member(kcat, kafka_nodes.bootstrap, group, topic)
    second = Member(kcat, kafka_nodes.bootstrap, group, topic)
    members = [first, second]
    try:
        wait_until(
            "the two members share the four partitions",
            lambda: (
                first.assigned
                and second.assigned
                and not first.assigned & second.assigned
                and first.assigned | second.assigned == {0, 1, 2, 3}
            ),
            DEADLINE_S,
        )
        keys = [f"k{i}" for i in range(40)]
        produce_keys(kcat, kafka_nodes.bootstrap, topic, keys)
        wait_until(
            "every record consumed once",
            lambda: sorted(first.keys() + second.keys()) == sorted(keys),
            DEADLINE_S,
        )
        # Each read only its own partitions.
        for member in members:
            assert member.assigned is not None
            assert {int(line.split(" ")[0]) for line in member.lines} <= member.assigned
        first.stop(signal.SIGKILL)
        later = [f"later{i}" for i in range(20)]
        produce_keys(kcat, kafka_nodes.bootstrap, topic, later)
        wait_until(
            "the survivor takes every partition and reads what came later",
            lambda: second.assigned == {0, 1, 2, 3} and set(later) <= set(second.keys()),
            DEADLINE_S,
        )
        # Ctrl+C's twin: kcat leaves the group, committing what it read.
        assert second.stop(signal.SIGTERM) == 0, second.log
    finally:
        for member in members:
            if member.process.poll() is None:
                member.process.kill()
                member.process.wait(DEADLINE_S)
    # At least once: the survivor may read again what the killed member had read but not yet
    # committed (auto commit every 5 s), never less.
    assert set(second.keys()) | set(first.keys()) == set(keys) | set(later)
    # A follower learns the high watermark a moment after the leader.
    ends = wait_until("60 records", lambda: sum((e := ends_of(node, topic)).values()) == 60 and e)
    assert committed(node, group) == ends


def test_a_kcat_group_commits_and_a_new_member_resumes_from_the_commit(
    kcat: str, kafka_nodes: KafkaNodes
) -> None:
    node = kafka_nodes.cluster.nodes[0]
    topic = group = "kcat-resume"
    create_topic(node, topic, 2)
    keys = [f"a{i}" for i in range(10)]
    produce_keys(kcat, kafka_nodes.bootstrap, topic, keys)

    def read_to_the_end() -> list[str]:
        out = kcat_run(
            kcat, "-b", kafka_nodes.bootstrap, "-G", group, *EARLIEST, "-e", "-f", "%k\n", topic,
        )  # fmt: skip
        return out.splitlines()

    assert sorted(read_to_the_end()) == sorted(keys)
    ends = wait_until("10 records", lambda: sum((e := ends_of(node, topic)).values()) == 10 and e)
    assert committed(node, group) == ends
    more = [f"b{i}" for i in range(6)]
    produce_keys(kcat, kafka_nodes.bootstrap, topic, more)
    # The group's commits win over auto.offset.reset: only the new records.
    assert sorted(read_to_the_end()) == sorted(more)
