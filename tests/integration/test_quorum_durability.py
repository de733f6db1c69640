"""Durability order on a real three-node quorum in one process: what reaches the disk before
what leaves a node (an acknowledgement, a vote) or is applied.

Each node's Raft work runs on its own tick thread, so a recorder keyed by thread sees, in
order, per node: the journal's fdatasyncs (and the last index each covers), the durable
writes of term and vote, every message handed to a connection, and every entry applied.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from kraft.dump import decode_dump
from kraft.errors import QuorumStoppedError
from kraft.journal import DurableJournal
from kraft.quorum import DUMP_FILE, MetadataQuorum
from kraft.transport import KraftConnection
from tests.integration.quorum_helpers import (
    Cluster,
    brokers,
    leave_a_follower_behind_a_dump,
    run_cluster,
    topic,
)
from tests.waiting import until

pytestmark = pytest.mark.timeout(120)

Event = tuple[Any, ...]


class Recorder:
    """Events per tick thread, from wrappers around the journal, the connections and apply."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cluster: Cluster) -> None:
        self.cluster = cluster
        self.events: dict[int, list[Event]] = defaultdict(list)
        self.fdatasyncs: dict[int, int] = defaultdict(int)  # by fd
        real_fdatasync = os.fdatasync
        real_sync = DurableJournal.sync
        real_rewrite = DurableJournal._rewrite
        real_store_meta = DurableJournal._store_meta
        real_send = KraftConnection.send
        real_apply = MetadataQuorum._apply

        def fdatasync(fd: int) -> None:
            real_fdatasync(fd)
            self.fdatasyncs[fd] += 1

        def sync(journal: DurableJournal) -> None:
            before = self.fdatasyncs[journal._fd]
            real_sync(journal)
            if self.fdatasyncs[journal._fd] > before:
                self.record("durable", journal.last_index)

        def rewrite(journal: DurableJournal, entries: Any) -> None:
            real_rewrite(journal, entries)  # tmp file fsynced, renamed, directory fsynced
            self.record("durable", journal.last_index)

        def store_meta(journal: DurableJournal) -> None:
            real_store_meta(journal)
            self.record("meta", journal.getCurrentTerm(), journal.getVotedForNodeId())

        def send(conn: Any, message: Any) -> None:
            if type(message) is dict:
                self.record("send", self.peer_of(conn), message)
            real_send(conn, message)

        def apply(quorum: MetadataQuorum, index: int, data: bytes, term: int) -> Any:
            self.record("apply", index)
            return real_apply(quorum, index, data, term)

        monkeypatch.setattr(os, "fdatasync", fdatasync)
        monkeypatch.setattr(DurableJournal, "sync", sync)
        monkeypatch.setattr(DurableJournal, "_rewrite", rewrite)
        monkeypatch.setattr(DurableJournal, "_store_meta", store_meta)
        monkeypatch.setattr(KraftConnection, "send", send)
        monkeypatch.setattr(MetadataQuorum, "_apply", apply)

    def record(self, *event: Any) -> None:
        self.events[threading.get_ident()].append(event)

    def peer_of(self, conn: Any) -> str | None:
        for quorum in list(self.cluster.nodes.values()):
            transport = quorum._sync._SyncObj__transport if quorum._sync else None
            for node, c in list(getattr(transport, "_connections", {}).items()):
                if c is conn:
                    return str(node.id)
        return None

    def of(self, quorum: MetadataQuorum) -> list[Event]:
        """The events of `quorum`'s tick thread (call while it runs)."""
        assert quorum._sync is not None
        return self.events[quorum._sync._SyncObj__thread.ident]


def check_order(address: str, events: list[Event]) -> dict[str, int]:
    """Assert the durability order for one node; return how many of each check it made."""
    durable = 0  # entries up to this index are on disk
    meta: tuple[int, str | None] = (0, None)
    checked = {"acks": 0, "votes": 0, "vote_requests": 0, "applies": 0}
    for event in events:
        kind = event[0]
        if kind == "durable":
            durable = event[1]
        elif kind == "meta":
            meta = (event[1], event[2])
        elif kind == "apply":
            assert event[1] <= durable, f"{address} applied entry {event[1]}, on disk: {durable}"
            checked["applies"] += 1
        elif kind == "send":
            peer, message = event[1], event[2]
            if message["type"] == "next_node_idx" and message["success"]:
                acked = message["next_node_idx"] - 1
                assert acked <= durable, f"{address} acknowledged {acked}, on disk: {durable}"
                checked["acks"] += acked > 0
            elif message["type"] == "response_vote":
                assert meta == (message["term"], peer), f"{address} voted with {meta} on disk"
                checked["votes"] += 1
            elif message["type"] == "request_vote":
                assert meta == (message["term"], address), f"{address} asked with {meta}"
                checked["vote_requests"] += 1
    return checked


def test_every_acknowledgement_and_vote_leaves_after_the_fsync_covering_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    totals: dict[str, int] = defaultdict(int)

    async def body(cluster: Cluster) -> None:
        recorder = Recorder(monkeypatch, cluster)
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        old = await cluster.leader()
        await old.write(brokers())
        for wave in range(3):  # sequential and concurrent writes
            await old.write(topic(wave))
            await asyncio.gather(*(old.write(topic(100 * (wave + 1) + n)) for n in range(20)))
        await cluster.converged()
        histories = {q.self_address: recorder.of(q) for q in cluster.nodes.values()}
        cluster.stop(old.node_id)  # the other two elect a new leader: votes again
        new = await cluster.leader()
        await new.write(topic(999))
        await cluster.converged()
        histories.update({q.self_address: recorder.of(q) for q in cluster.nodes.values()})
        for address, events in histories.items():
            for name, count in check_order(address, events).items():
                totals[name] += count

    run_cluster(tmp_path, body)
    # The checks ran: followers acknowledged entries, nodes voted and asked for votes.
    assert totals["acks"] > 0 and totals["applies"] > 0
    assert totals["votes"] >= 2 and totals["vote_requests"] >= 2


def test_a_follower_installs_a_dump_durably_before_it_acknowledges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(cluster: Cluster) -> None:
        events: dict[int, list[Event]] = defaultdict(list)
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            real_fsync(fd)
            events[threading.get_ident()].append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

        def replace(source: Any, target: Any) -> None:
            real_replace(source, target)
            events[threading.get_ident()].append(("rename", str(source), str(target)))

        real_send = KraftConnection.send

        def send(conn: Any, message: Any) -> None:
            if type(message) is dict and message.get("type") == "next_node_idx":
                events[threading.get_ident()].append(("ack", message["success"]))
            real_send(conn, message)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(KraftConnection, "send", send)

        lagging = await leave_a_follower_behind_a_dump(cluster)
        follower = cluster.start(lagging)
        await follower.wait_ready(30)
        await cluster.converged()

        assert follower._sync is not None
        mine = events[follower._sync._SyncObj__thread.ident]
        dump = str(follower.data_dir / DUMP_FILE)
        received = dump + ".1.tmp"  # where pysyncobj writes a dump it receives
        renames = [i for i, e in enumerate(mine) if e == ("rename", received, dump)]
        assert renames, "the follower installed no dump from the leader"
        at = renames[0]
        assert ("fsync", received) in mine[:at]  # the content is durable before the rename
        dir_synced = [
            i for i, e in enumerate(mine) if i > at and e == ("fsync", str(follower.data_dir))
        ]
        assert dir_synced, "the directory was not fsynced after the rename"
        acks = [i for i, e in enumerate(mine) if i > at and e == ("ack", True)]
        assert acks and dir_synced[0] < acks[0]
        assert decode_dump(Path(dump).read_bytes()).last_entry[1] > 3

    run_cluster(tmp_path, body)


def test_a_follower_whose_journal_fsync_fails_leaves_the_quorum_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    async def body(cluster: Cluster) -> None:
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        leader = await cluster.leader()
        await leader.write(brokers())
        await cluster.converged()
        broken = next(q for q in cluster.nodes.values() if q is not leader)
        real_fdatasync = os.fdatasync
        calls_after_failure: list[int] = []

        def fdatasync(fd: int) -> None:
            if fd == broken._journal._fd:
                calls_after_failure.append(fd)
                raise OSError(errno.EIO, "injected I/O error")
            real_fdatasync(fd)

        monkeypatch.setattr(os, "fdatasync", fdatasync)
        applied_before = broken.snapshot_state().applied_index
        for n in range(5):
            await leader.write(topic(n))  # the other follower makes the majority
        await until(lambda: not broken.is_ready(), what="the broken node to leave")
        with pytest.raises(QuorumStoppedError, match="restart it"):
            await broken.wait_ready(5)
        # It applied nothing it could not make durable, and never retried the fsync.
        assert broken.snapshot_state().applied_index == applied_before
        assert len(calls_after_failure) == 1
        await leader.write(topic(99))
        others = [q for q in cluster.nodes.values() if q is not broken]
        await until(lambda: len({q.snapshot_state().applied_index for q in others}) == 1)

    run_cluster(tmp_path, body)
    assert "a write or fsync failed" in caplog.text and "left the quorum" in caplog.text
