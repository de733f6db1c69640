"""A partition leader killed (-9) while its cleaner is rewriting the log, and restarted: the
node settles the interrupted clean when it opens the log (its WARNING line), loses no key's
latest acknowledged value, goes on cleaning from its cleaner-offset-checkpoint, and serves the
same table when it leads again. The cleaners are throttled
(``log.cleaner.io.max.bytes.per.second``) so that a clean of the data written takes many
seconds and the kill lands inside one: it waits until the leader's directory holds a
``.cleaned`` segment being written."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.node_process import Cluster, NodeProcess, http, wait_until
from storage.clean_swap import CLEANED_SUFFIX, REPLACED_SUFFIX, SWAP_SUFFIX
from tests.integration.compaction_helpers import (
    Written,
    check_compacted_read,
    cleaner_checkpoint,
    expected_latest_values,
    latest,
    latest_values_read,
    partition_info,
    produce_keyed,
    read_json,
    wait_cleaned_up_to_active,
    wait_high_watermark,
    wait_isr,
    wait_leader,
)
from tests.integration.conftest import running_cluster
from tests.integration.test_cluster import create_topic
from tests.invariants import check_replicas, records_of, view_of_directory

TOPIC = "accounts"
# Many keys: what a clean keeps is large, and every clean rewrites it from the log start (as
# Kafka's does), so the writing part of a clean is long. A hundred of them get many versions
# and ten are deleted.
KEYS = 1500
UPDATED_KEYS = 100
VERSIONS = 6
DELETED_KEYS = 10
VALUE_BYTES = 200
# About 450 KB written; a clean reads its dirty part, then reads and writes what it keeps: at
# 60 KB/s, many seconds of writing a .cleaned segment in which the kill lands.
THROTTLE_BYTES_PER_SECOND = "60000"
KILL_ATTEMPTS = 5
# A produce of churn, then this long looking for a clean being written, then again.
LOOK_S = 0.5
CLEANING_SUFFIXES = (CLEANED_SUFFIX, SWAP_SUFFIX, REPLACED_SUFFIX)
DIRTY_SECTION = re.compile(r"cleaned log " + TOPIC + r"-0 \(dirty section = \[(\d+), (\d+)\]")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path,
        **{
            "log.cleaner.backoff.ms": "200",
            "log.cleaner.io.max.bytes.per.second": THROTTLE_BYTES_PER_SECOND,
            "auto.leader.rebalance.enable": "false",
        },
    ) as handle:
        yield handle


def cleaning_files(directory: Path) -> list[str]:
    """The files of a clean in progress (being written, or mid-swap) in a partition directory."""
    return [p.name for p in directory.iterdir() if p.name.endswith(CLEANING_SUFFIXES)]


def write_until_cleaning(node: NodeProcess, directory: Path) -> list[Written]:
    """Writes updates (each makes the log dirty again: another clean) until the node's
    directory holds a clean in progress; returns what was acknowledged."""
    acked: list[Written] = []
    deadline = time.monotonic() + 120
    version = 0
    while time.monotonic() < deadline:
        keys = [(version * 10 + i) % UPDATED_KEYS for i in range(10)]
        acked += produce_keyed(
            node, TOPIC, [(f"account-{k}", f"churn-{version}:" + "c" * VALUE_BYTES) for k in keys]
        )
        version += 1
        look_until = time.monotonic() + LOOK_S
        while time.monotonic() < look_until:
            if cleaning_files(directory):
                return acked
            time.sleep(0.005)
    raise AssertionError(f"node {node.node_id} never cleaned: {node.log_tail(20)}")


def lead(cluster: Cluster, node: NodeProcess) -> None:
    """Makes ``node``, the partition's preferred replica and in its ISR, lead it."""

    def elected() -> bool:
        status, body = http(
            "POST",
            f"{node.url}/v1/elections",
            {"election_type": "PREFERRED", "partitions": [{"topic": TOPIC, "partition": 0}]},
        )
        return status == 200 and body["partitions"][0]["leader"] == node.node_id

    wait_until(f"node {node.node_id} leads {TOPIC}-0", elected)
    # The election is committed; the nodes apply it a moment apart.
    wait_until(
        f"every node knows node {node.node_id} leads {TOPIC}-0",
        lambda: all(
            (partition_info(n, TOPIC) or {}).get("leader") == node.node_id
            for n in cluster.running()
        ),
    )


def test_a_leader_killed_mid_clean_settles_the_swap_loses_no_latest_value_and_resumes(
    cluster: Cluster,
) -> None:
    create_topic(
        cluster.nodes[0],
        TOPIC,
        partitions=1,
        replication_factor=3,
        configs={
            "cleanup.policy": "compact",
            "segment.bytes": "16384",
            "min.cleanable.dirty.ratio": "0.01",
        },
    )
    leader = wait_leader(cluster, TOPIC)
    info = partition_info(leader, TOPIC)
    assert info is not None
    victim = cluster.node(info["replicas"][0])
    updates: list[tuple[str, str | None]] = [
        (f"account-{key}", "0:" + "b" * VALUE_BYTES) for key in range(KEYS)
    ]
    for version in range(1, VERSIONS):
        updates += [
            (f"account-{key}", f"{version}:" + "b" * VALUE_BYTES) for key in range(UPDATED_KEYS)
        ]
    updates += [(f"account-{key}", None) for key in range(DELETED_KEYS)]
    written = produce_keyed(leader, TOPIC, updates)
    directory = victim.log_dir / f"{TOPIC}-0"
    # A kill may come just after a clean ended (nothing left to settle): then again.
    for _attempt in range(KILL_ATTEMPTS):
        lead(cluster, victim)
        log_size = victim.log_file.stat().st_size
        written += write_until_cleaning(victim, directory)
        victim.kill()
        interrupted = cleaning_files(directory)
        before = cleaner_checkpoint(victim, TOPIC)
        end = max(w.offset for w in written) + 1
        new_leader = wait_leader(cluster, TOPIC, not_=[victim.node_id])
        wait_high_watermark(new_leader, TOPIC, end)
        read = read_json(new_leader, TOPIC)
        assert latest_values_read(read) == expected_latest_values(written)
        victim.start()
        wait_isr(new_leader, TOPIC, 3)
        if interrupted:
            break
    else:
        raise AssertionError(f"no kill of {KILL_ATTEMPTS} landed inside a clean")
    wait_until(
        "the restarted node settles the interrupted clean (its WARNING line)",
        lambda: "an interrupted clean" in victim.log_file.read_text(errors="replace")[log_size:],
    )
    leader = victim

    # The node's own copy holds every key's latest acknowledged record (what the crash left,
    # plus what it fetched since), before and after its cleaner goes on.
    def own_latest() -> dict[bytes | None, int]:
        view = view_of_directory(
            leader.node_id, leader.log_dir, TOPIC, 0, high_watermark=end, compacted=True
        )
        records = records_of(view, view.log_start_offset, end)
        out: dict[bytes | None, int] = {}
        for offset in sorted(records):
            out[records[offset].key] = offset
        return out

    expected = {k.encode(): w.offset for k, w in latest(written).items()}
    wait_until("the restarted replica holds the log end", lambda: own_latest() == expected)
    cleaned = wait_cleaned_up_to_active(leader, TOPIC)
    assert own_latest() == expected
    # Cleaning resumed where the checkpoint says, not from the log start.
    sections = [
        (int(a), int(b))
        for a, b in DIRTY_SECTION.findall(leader.log_file.read_text(errors="replace")[log_size:])
    ]
    assert sections, "the restarted node logged no clean"
    assert sections[0][0] == (before if before is not None else 0), (before, sections)
    assert sections[-1][1] == cleaned

    # It leads again (the preferred replica) and serves the same table.
    lead(cluster, leader)
    wait_high_watermark(leader, TOPIC, end)
    read = read_json(leader, TOPIC)
    check_compacted_read(
        read, written, cleaned_below=cleaner_checkpoint(leader, TOPIC) or 0, tombstones_kept=True
    )

    def replicas_agree() -> bool:
        # Read while the nodes run: a swap may rename a file being read (an OSError, which
        # wait_until retries); a violation fails at once.
        views = [
            view_of_directory(
                n.node_id,
                n.log_dir,
                TOPIC,
                0,
                in_isr=True,
                high_watermark=(partition_info(n, TOPIC) or {}).get("high_watermark"),
                compacted=True,
            )
            for n in cluster.nodes
        ]
        check_replicas(f"{TOPIC}-0", views, compacted=True)
        return True

    wait_until(f"{TOPIC}-0: the replicas' files read whole", replicas_agree)
