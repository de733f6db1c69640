"""Compaction with real nodes: the cleaner of every node compacts its own replicas of a keyed
topic written with acks=all, and whatever replica leads, readers (the JSON fetch, the binary
fetch, the console consumer) get every key's latest acknowledged value at the offset the
produce answered, tombstones until their horizon, and everything not cleaned yet; a replica
wiped while its node was down takes the leader's compacted batches as they are and rejoins the
ISR; an idempotent producer's last batch stays (emptied) on every replica, so that a new
leader still knows its sequence; kraft-configs switches a topic in and out of the cleaner's
hands; ``__consumer_offsets``
stays bounded under thousands of commits and the coordinator reloads the last ones across its
gaps. (The leader killed in the middle of a clean is in test_compaction_crash.py.)

One five-node cluster serves the module (five voters: two replicas of a partition can be down
at once and the third still leads). Each test has its own topic; the order of the tests does
not matter. Every node's cleaner looks every 200 ms."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from scripts.node_process import Cluster, NodeProcess, http, run_tool, wait_until
from storage.batch import read_header
from tests.integration.compaction_helpers import (
    active_base,
    check_compacted_read,
    cleaner_checkpoint,
    expected_latest_values,
    latest_values_read,
    partition_info,
    produce_keyed,
    read_batches,
    read_console,
    read_json,
    segment_bytes_on_disk,
    wait_cleaned_up_to_active,
    wait_high_watermark,
    wait_isr,
    wait_leader,
)
from tests.integration.test_cluster import create_topic
from tests.invariants import ReplicaView, check_replicas, identical, view_of_directory

NODE_PROPERTIES = {
    "log.cleaner.backoff.ms": "200",
    # One offsets partition (the group's), in small segments, so that the cleaner reaches
    # committed offsets after a few hundred commits.
    "offsets.topic.num.partitions": "1",
    "offsets.topic.segment.bytes": "4096",
    # Leadership stays where the kills put it.
    "auto.leader.rebalance.enable": "false",
}
# Segments of a few dozen small batches: the writes below roll many of them.
SEGMENT_BYTES = "4096"
KEYS = 12
VERSIONS = 25


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    handle = Cluster.create(
        tmp_path_factory.mktemp("compaction"),
        count=5,
        **{"min.insync.replicas": "2", **NODE_PROPERTIES},  # type: ignore[arg-type]
    )
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def create_compacted(
    cluster: Cluster, topic: str, replication_factor: int = 3, **configs: str
) -> list[NodeProcess]:
    """A compacted topic of one partition; returns its replicas' nodes."""
    create_topic(
        cluster.nodes[0],
        topic,
        partitions=1,
        replication_factor=replication_factor,
        configs={
            "cleanup.policy": "compact",
            "segment.bytes": SEGMENT_BYTES,
            "min.cleanable.dirty.ratio": "0.01",
            **configs,
        },
    )
    leader = wait_leader(cluster, topic)
    info = partition_info(leader, topic)
    assert info is not None
    return [cluster.node(r) for r in info["replicas"]]


def log_dirs_sizes(via: NodeProcess, topic: str) -> dict[int, int]:
    """Each broker's size of ``topic``-0 as ``kraft-log-dirs --describe`` prints it."""
    out = run_tool(
        "client.tools.log_dirs",
        "--bootstrap-server",
        via.bootstrap,
        "--describe",
        "--topic-list",
        topic,
    )
    assert out.returncode == 0, out.stderr
    described = json.loads(out.stdout.splitlines()[-1])
    return {
        broker["broker"]: partition["size"]
        for broker in described["brokers"]
        for log_dir in broker["logDirs"]
        for partition in log_dir["partitions"]
        if partition["partition"] == f"{topic}-0"
    }


def table_updates(rounds: int = VERSIONS, keys: int = KEYS) -> list[tuple[str, str | None]]:
    """Few keys, many versions; key 0 is deleted for good at the end, key 1 is deleted and
    written again, key 2 is deleted in every other round (its last version a value)."""
    records: list[tuple[str, str | None]] = []
    for version in range(rounds):
        for key in range(keys):
            records.append((f"k{key}", f"k{key}-v{version}-" + "x" * 40))
        if version % 2 == 0:
            records.append(("k2", None))
        if version == rounds // 2:
            records.append(("k1", None))
    records.append(("k0", None))
    return records


def replica_views(nodes: list[NodeProcess], topic: str) -> list[ReplicaView]:
    """Each replica's files as the invariant checker reads them, with the HW its node reports
    (asked before the files are read) and the ISR as the leader reports it."""
    views = []
    isr: set[int] = set()
    for node in nodes:
        info = partition_info(node, topic)
        if info is not None and info["leader"] == node.node_id:
            isr = set(info["isr"])
    for node in nodes:
        info = partition_info(node, topic)
        views.append(
            view_of_directory(
                node.node_id,
                node.log_dir,
                topic,
                0,
                in_isr=node.node_id in isr,
                high_watermark=None if info is None else info["high_watermark"],
                compacted=True,
            )
        )
    return views


def check_compacted_replicas(nodes: list[NodeProcess], topic: str) -> None:
    """The compacted-log invariants over the replicas' files, read while the nodes run: a
    cleaner's swap may rename a file the view was about to read (FileNotFoundError, an
    OSError, which wait_until retries: the next look reads the new files); a violation fails
    at once."""

    def check() -> bool:
        check_replicas(f"{topic}-0", replica_views(nodes, topic), compacted=True)
        return True

    wait_until(f"{topic}-0: the replicas' files read whole", check)


def test_every_replica_compacts_and_serves_each_keys_latest_acknowledged_value(
    cluster: Cluster,
) -> None:
    topic = "table"
    replicas = create_compacted(cluster, topic)
    written = produce_keyed(cluster.nodes[0], topic, table_updates())
    # Each replica's cleaner reaches its own active segment (they need not roll together).
    for node in replicas:
        wait_cleaned_up_to_active(node, topic)
    total = max(w.offset for w in written) + 1
    check_compacted_replicas(replicas, topic)
    # kraft-log-dirs reports each replica's size as its cleaned segments take on disk.
    sizes = log_dirs_sizes(cluster.nodes[0], topic)
    assert sizes == {n.node_id: segment_bytes_on_disk(n, topic) for n in replicas}
    assert all(size < total * 40 for size in sizes.values()), sizes  # 40+ bytes a value

    leader = wait_leader(cluster, topic)
    down: list[NodeProcess] = []
    served: list[int] = []
    while True:
        wait_high_watermark(leader, topic, total)
        by_json = read_json(leader, topic)
        by_batches = read_batches(leader, topic)
        cleaned = cleaner_checkpoint(leader, topic)
        assert cleaned is not None
        check_compacted_read(by_json, written, cleaned_below=cleaned, tombstones_kept=True)
        assert by_batches == by_json
        assert len(by_json) < total // 2, "the leader's log was not compacted"
        assert latest_values_read(by_json) == expected_latest_values(written)
        served.append(leader.node_id)
        if len(down) == 2:
            break
        # The next replica leads: the leader is killed (-9), the election takes the next one
        # in the ISR. Five voters keep the metadata quorum with two nodes down.
        leader.kill()
        down.append(leader)
        leader = wait_leader(cluster, topic, not_=[n.node_id for n in down])
    by_console = read_console(leader, topic, len(by_json))
    assert by_console == by_json
    assert sorted(served) == sorted(n.node_id for n in replicas)

    for node in down:
        node.start()
    wait_isr(leader, topic, 3)
    check_compacted_replicas(replicas, topic)


def test_tombstones_are_kept_until_their_horizon_then_removed(cluster: Cluster) -> None:
    topic = "deletions"
    # Written before the topic is compacted, so that one clean takes it all: cleans during the
    # writes would put a horizon on some tombstones that a later one, past it, removes.
    replicas = create_compacted(
        cluster, topic, 3, **{"cleanup.policy": "delete", "delete.retention.ms": "0"}
    )
    leader = wait_leader(cluster, topic)
    # Updates of other keys after the deletions roll the segment past them.
    updates = table_updates(rounds=10)
    updates += [(f"k{key}", f"pad-{key}-" + "x" * 40) for key in range(3, KEYS)] * 10
    written = produce_keyed(leader, topic, updates)
    status, body = http(
        "PUT", f"{leader.url}/v1/topics/{topic}/configs", {"configs": {"cleanup.policy": "compact"}}
    )
    assert status == 200, body
    first = wait_cleaned_up_to_active(leader, topic)
    tombstone = max(w.offset for w in written if w.key == "k0")
    assert tombstone < first, "the test needs the deletion below the active segment"
    # The first clean keeps them (and stamps the delete horizon, now + 0 ms, in their batches).
    read = read_json(leader, topic)
    check_compacted_read(read, written, cleaned_below=first, tombstones_kept=True)
    assert (tombstone, "k0", None) in read
    # New writes make the log dirty again; the next clean is past the horizon.
    more = produce_keyed(
        leader, topic, [(f"k{key}", f"later-{key}-" + "x" * 40) for key in range(3, KEYS)] * 10
    )
    written += more
    second = wait_cleaned_up_to_active(leader, topic, above=first)
    read = read_json(leader, topic)
    check_compacted_read(read, written, cleaned_below=second, tombstones_kept=False)
    assert not [r for r in read if r[1] == "k0"], "the deleted key is gone entirely"
    assert latest_values_read(read) == expected_latest_values(written)
    check_compacted_replicas(replicas, topic)


def test_a_wiped_replica_fetches_the_compacted_batches_as_they_are_and_rejoins_the_isr(
    cluster: Cluster,
) -> None:
    topic = "rebuilt"
    replicas = create_compacted(cluster, topic)
    leader = wait_leader(cluster, topic)
    written = produce_keyed(leader, topic, table_updates())
    cleaned = wait_cleaned_up_to_active(leader, topic)
    follower = next(n for n in replicas if n is not leader)
    follower.stop()
    shutil.rmtree(follower.log_dir / f"{topic}-0")
    # Its own cleaner off for now: what it fetched stays as the leader sent it.
    settings = follower.properties.read_text()
    follower.properties.write_text(settings + "log.cleaner.enable=false\n")
    follower.start()
    wait_isr(leader, topic, 3)
    # The leader's cleaned batches (gaps inside and between them) were appended as they are:
    # the two logs are the same, byte for byte.
    wait_until(
        "the wiped replica holds the leader's log",
        lambda: identical(
            [
                view_of_directory(n.node_id, n.log_dir, topic, 0, compacted=True)
                for n in (leader, follower)
            ]
        ),
    )
    check_compacted_replicas(replicas, topic)
    # With its cleaner back, it cleans on its own, and leads with the same table.
    follower.stop()
    follower.properties.write_text(settings)
    follower.start()
    wait_isr(leader, topic, 3)
    # It leads with the same table.
    others = [n for n in replicas if n is not follower]
    for node in others:
        node.kill()
    try:
        new_leader = wait_leader(cluster, topic, not_=[n.node_id for n in others])
        assert new_leader is follower
        wait_high_watermark(follower, topic, max(w.offset for w in written) + 1)
        read = read_json(follower, topic)
        # Below the leader's cleaned offset the follower holds the leader's clean; its own
        # cleaner may have gone further.
        own = cleaner_checkpoint(follower, topic) or 0
        check_compacted_read(read, written, cleaned_below=max(cleaned, own), tombstones_kept=True)
        assert latest_values_read(read) == expected_latest_values(written)
    finally:
        for node in others:
            node.start()
    wait_isr(follower, topic, 3)


def test_an_idempotent_producers_last_batch_survives_the_clean_and_a_new_leader(
    cluster: Cluster,
) -> None:
    topic = "sequences"
    replicas = create_compacted(cluster, topic)
    leader = wait_leader(cluster, topic)
    status, producer = http("POST", f"{leader.url}/v1/producers", {})
    assert status == 200, producer

    def send(node: NodeProcess, seq: int, batch: int) -> tuple[int, Any]:
        records = [{"key": f"k{i % 3}", "value": f"p{batch}-{i}"} for i in range(10)]
        headers = {
            "Producer-Id": str(producer["producer_id"]),
            "Producer-Epoch": str(producer["producer_epoch"]),
            "Producer-Seq": str(seq),
        }
        status, body = http(
            "POST",
            f"{node.url}/v1/topics/{topic}/partitions/0/records",
            {"records": records},
            headers=headers,
        )
        return status, body

    answers: list[Any] = []
    for batch in range(20):
        status, body = send(leader, batch * 10, batch)
        assert status == 200, body
        answers.append(body)
    last_base = answers[-1]["offsets"][0]["offset"]
    # Later writes of the same keys (no producer id) supersede every record of the producer
    # and roll the segment past its batches.
    written = produce_keyed(
        leader, topic, [(f"k{i % 3}", f"later-{i}-" + "x" * 40) for i in range(300)]
    )
    assert last_base < written[0].offset
    for node in replicas:
        wait_cleaned_up_to_active(node, topic)
    # Every replica kept the producer's last batch, emptied, for its sequence (and no other).
    for node in replicas:
        view = view_of_directory(node.node_id, node.log_dir, topic, 0, compacted=True)
        kept = [
            (h.base_offset, h.record_count)
            for h in map(read_header, view.batches)
            if h.producer_id == producer["producer_id"]
        ]
        assert kept == [(last_base, 0)], (node.node_id, kept)

    # A new leader knows the sequence: the last batch again is a duplicate, the next one new.
    leader.kill()
    try:
        new_leader = wait_leader(cluster, topic, not_=[leader.node_id])
        status, body = wait_until(
            "the new leader answers the retried batch",
            lambda: (a := send(new_leader, 190, 19))[0] != 503 and a,
        )
        assert status == 200 and body.get("duplicate") is True, body
        assert body["offsets"] == answers[-1]["offsets"]
        status, body = send(new_leader, 200, 20)
        assert status == 200 and not body.get("duplicate"), body
        assert body["offsets"][0]["offset"] == max(w.offset for w in written) + 1
    finally:
        leader.start()
    wait_isr(new_leader, topic, 3)


def test_kraft_configs_hands_a_topic_to_the_cleaner_and_takes_it_back(cluster: Cluster) -> None:
    topic = "switched"
    create_topic(
        cluster.nodes[0],
        topic,
        partitions=1,
        replication_factor=3,
        configs={"segment.bytes": SEGMENT_BYTES, "min.cleanable.dirty.ratio": "0.01"},
    )
    leader = wait_leader(cluster, topic)
    written = produce_keyed(leader, topic, table_updates(rounds=10))
    assert cleaner_checkpoint(leader, topic) is None
    size = segment_bytes_on_disk(leader, topic)

    def configs(*args: str) -> None:
        out = run_tool(
            "client.tools.configs",
            "--bootstrap-server",
            leader.bootstrap,
            "--entity-type",
            "topics",
            "--entity-name",
            topic,
            "--alter",
            *args,
        )
        assert out.returncode == 0, out.stderr

    configs("--add-config", "cleanup.policy=compact")
    cleaned = wait_cleaned_up_to_active(leader, topic)
    assert segment_bytes_on_disk(leader, topic) < size
    read = read_json(leader, topic)
    check_compacted_read(read, written, cleaned_below=cleaned, tombstones_kept=True)

    configs("--add-config", "cleanup.policy=delete")
    wait_until(
        "the leader applied cleanup.policy=delete",
        lambda: (
            http("GET", f"{leader.url}/v1/topics/{topic}/configs")[1]["configs"]["cleanup.policy"]
            == "delete"
        ),
    )
    more = produce_keyed(leader, topic, table_updates(rounds=10))
    assert active_base(leader, topic) > cleaned
    # The leader's cleaner has looked at every log since: a compacted topic with a replica on
    # every node, written after, is cleaned there.
    create_compacted(cluster, "marker", replication_factor=len(cluster.nodes))
    produce_keyed(leader, "marker", table_updates(rounds=6))
    wait_cleaned_up_to_active(leader, "marker")
    assert cleaner_checkpoint(leader, topic) == cleaned
    read = read_json(leader, topic)
    held = {r[0] for r in read}
    assert all(w.offset in held for w in more), "a record of the delete-policy topic went"


def test_consumer_offsets_stays_bounded_and_the_coordinator_reloads_the_last_commits(
    cluster: Cluster,
) -> None:
    topic, group = "orders", "billing"
    create_topic(cluster.nodes[0], topic, partitions=2, replication_factor=3)
    wait_leader(cluster, topic)
    commits = 1500
    committed: dict[int, int] = {}
    target = cluster.nodes[0]
    for n in range(commits):
        offsets: list[dict[str, object]] = [
            {"topic": topic, "partition": p, "offset": n * 2 + p} for p in (0, 1)
        ]

        def commit(offsets: list[dict[str, object]] = offsets) -> bool:
            nonlocal target
            status, body = http(
                "POST", f"{target.url}/v1/groups/{group}/offsets", {"offsets": offsets}
            )
            if status == 307:  # not the coordinator: the offsets partition's leader is
                target = wait_leader(cluster, "__consumer_offsets")
            assert status in (200, 307, 503), body
            return status == 200

        wait_until("a commit", commit)
        committed = {p: n * 2 + p for p in (0, 1)}
    coordinator = wait_leader(cluster, "__consumer_offsets")
    cleaned = wait_cleaned_up_to_active(coordinator, "__consumer_offsets", above=commits)
    written_bytes = commits * 2 * 60  # well below what each commit record takes
    assert segment_bytes_on_disk(coordinator, "__consumer_offsets") < written_bytes // 10
    view = view_of_directory(
        coordinator.node_id, coordinator.log_dir, "__consumer_offsets", 0, compacted=True
    )
    below = [b for b, e in zip(view.bases, view.ends, strict=True) if e <= cleaned]
    # One record per (group, topic, partition) plus the group's own records, in a few batches.
    assert len(below) <= 10, below

    coordinator.kill()
    coordinator.start()
    wait_leader(cluster, "__consumer_offsets")

    def reloaded() -> dict[int, int] | None:
        status, body = http("GET", f"{cluster.nodes[-1].url}/v1/groups/{group}/offsets")
        if status != 200:
            return None
        return {o["partition"]: o["offset"] for o in body["offsets"] if o["topic"] == topic}

    assert wait_until("the group's offsets after the restart", reloaded) == committed
