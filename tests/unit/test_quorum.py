"""The quorum shell on a real single-node pysyncobj quorum (127.0.0.1, free port, tmp dir)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pysyncobj.node import TCPNode

from kraft import limits
from kraft import quorum as quorum_module
from kraft.applied_entries import AppliedEntry
from kraft.errors import IllegalRecordError, NotControllerError, QuorumError
from kraft.journal import DurableJournal
from kraft.quorum import DUMP_FILE, JOURNAL_FILE, META_FILE, MetadataQuorum
from kraft.records import (
    LeaderChangeRecord,
    MetadataRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
)
from kraft.state import MetadataState
from scripts.node_process import free_ports
from tests.waiting import until

pytestmark = pytest.mark.timeout(60)

SECRET = "test-secret"
TOPIC_IDS = ["x5Ujx2PtQ1C2rkC8-XNMZA", "Q2rkC8-XNMZAx5Ujx2PtQA", "MZAx5Ujx2PtQ1C2rkC8-XA"]


# How long a test here waits for an in-process quorum to get somewhere.
UNTIL_S = 15


def free_port() -> int:
    """A port below the ephemeral range, this xdist worker's own (free_ports): a bind(0) port
    is one the kernel may give an outgoing connection before the quorum binds it."""
    (port,) = free_ports(1)
    return port


def broker(node_id: int = 1) -> RegisterBrokerRecord:
    return RegisterBrokerRecord(
        node_id, f"inc-{node_id}", 1, "http://127.0.0.1:9092", "127.0.0.1:9093", fenced=False
    )


def topic(name: str, topic_id: str, partitions: int = 1) -> list[MetadataRecord]:
    records: list[MetadataRecord] = [TopicRecord(name, topic_id)]
    records += [PartitionRecord(topic_id, p, (1,), (1,), 1, 0, 0) for p in range(partitions)]
    return records


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 50))


async def started(data_dir: Path, port: int, **kwargs: Any) -> MetadataQuorum:
    quorum = MetadataQuorum(1, f"127.0.0.1:{port}", {}, data_dir, SECRET, **kwargs)
    quorum.start(asyncio.get_running_loop())
    await quorum.wait_ready(15)
    return quorum


def test_single_node_commits_writes_and_restarts_with_its_topics(tmp_path: Path) -> None:
    data_dir = tmp_path / "__cluster_metadata-0"
    port = free_port()

    async def body() -> None:
        quorum = await started(data_dir, port)
        first = await quorum.write([broker()])
        second = await quorum.write(topic("news", TOPIC_IDS[0], partitions=2))
        assert second > first
        assert quorum.read(lambda s: sorted(s.topics["news"].partitions)) == [0, 1]
        digest = quorum.status()["metadata_digest"]
        quorum.stop()
        assert {JOURNAL_FILE, META_FILE} <= {p.name for p in data_dir.iterdir()}

        again = await started(data_dir, port)
        try:
            await until(
                lambda: again.snapshot_state().applied_index == second, "for replay", UNTIL_S
            )
            state = again.snapshot_state()
            assert state.topics["news"].topic_id == TOPIC_IDS[0]
            assert again.status()["metadata_digest"] == digest
            # And it goes on committing after the restart.
            third = await again.write([PartitionChangeRecord(TOPIC_IDS[0], 1, leader=-1)])
            assert third > second
        finally:
            again.stop()

    run(body)


def test_restart_after_forced_log_compaction_loads_the_dump_then_the_journal(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "__cluster_metadata-0"
    port = free_port()

    async def body() -> None:
        quorum = await started(data_dir, port)
        await quorum.write([broker()])
        await quorum.write(topic("news", TOPIC_IDS[0]))
        compacted_at = await quorum.write(topic("logs", TOPIC_IDS[1]))
        quorum.compact()
        await until(lambda: (data_dir / DUMP_FILE).exists(), "for the dump", UNTIL_S)
        # The journal is cut once the dump is durable: it restarts two entries before the end.
        await until(
            lambda: quorum._journal[0][1] >= compacted_at - 1, "for the journal cut", UNTIL_S
        )
        last = await quorum.write(topic("metrics", TOPIC_IDS[2]))  # lives only in the journal
        digest = quorum.status()["metadata_digest"]
        quorum.stop()

        journal = DurableJournal(data_dir / JOURNAL_FILE, data_dir / META_FILE)
        assert journal[0][1] > 1  # the early entries now live only in the dump
        journal.close()

        resets: list[int] = []
        again = MetadataQuorum(1, f"127.0.0.1:{port}", {}, data_dir, SECRET)
        again.add_listener(lambda index, records: resets.append(index) if records is None else None)
        again.start(asyncio.get_running_loop())
        try:
            await again.wait_ready(15)
            await until(lambda: again.snapshot_state().applied_index == last, "for replay", UNTIL_S)
            assert sorted(again.snapshot_state().topics) == ["logs", "metrics", "news"]
            assert again.status()["metadata_digest"] == digest
            assert resets and resets[0] >= compacted_at  # the dump was loaded: a reset
        finally:
            again.stop()

    run(body)


def test_illegal_write_raises_illegal_record_error_and_leaves_the_state_alone(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        quorum = await started(tmp_path, free_port())
        try:
            await quorum.write([broker()])
            await quorum.write(topic("news", TOPIC_IDS[0]))
            before = quorum.snapshot_state()
            with pytest.raises(IllegalRecordError, match="a topic with this name exists"):
                # The first record is legal, the second is not: neither applies.
                await quorum.write(topic("logs", TOPIC_IDS[1]) + topic("news", TOPIC_IDS[2]))
            after = quorum.snapshot_state()
            assert after.digest() == before.digest() and "logs" not in after.topics
            # The quorum goes on: the next legal write commits.
            await quorum.write(topic("logs", TOPIC_IDS[1]))
        finally:
            quorum.stop()

    run(body)


def test_listener_sees_every_entry_in_order(tmp_path: Path) -> None:
    async def body() -> None:
        seen: list[tuple[int, Any]] = []
        quorum = MetadataQuorum(1, f"127.0.0.1:{free_port()}", {}, tmp_path, SECRET)
        quorum.add_listener(lambda index, records: seen.append((index, records)))
        quorum.start(asyncio.get_running_loop())
        try:
            await quorum.wait_ready(15)
            written = []
            batches: list[list[MetadataRecord]] = [[broker()], topic("news", TOPIC_IDS[0])]
            batches += [[NoOpRecord()] for _ in range(20)]
            for records in batches:
                written.append((await quorum.write(records), tuple(records)))
            with pytest.raises(IllegalRecordError):
                await quorum.write(topic("news", TOPIC_IDS[1]))  # rejected: not an entry seen
            await asyncio.sleep(0)  # let the last call_soon_threadsafe run
            assert seen == written
        finally:
            quorum.stop()

    run(body)


class EntryLog:
    """An entry listener that writes down what it is told."""

    def __init__(self) -> None:
        self.bases: list[tuple[int, MetadataState]] = []
        self.entries: list[AppliedEntry] = []

    def state_replaced(self, index: int, state: MetadataState) -> None:
        self.bases.append((index, state))

    def entry_applied(self, entry: AppliedEntry) -> None:
        self.entries.append(entry)


def test_an_entry_listener_sees_each_entry_with_its_term_and_apply_time(tmp_path: Path) -> None:
    async def body() -> None:
        quorum = await started(tmp_path, free_port())
        try:
            first = await quorum.write([broker()])
            log = EntryLog()
            quorum.add_entry_listener(log)
            # Added late (the first one): it replays from the empty start, then goes on live.
            assert [index for index, _ in log.bases] == [0]
            before_ms = int(time.time() * 1000)
            second = await quorum.write([LeaderChangeRecord(1)])
            await asyncio.sleep(0)  # let the last call_soon_threadsafe run
            assert [e.index for e in log.entries] == [first, second]
            assert [e.records for e in log.entries] == [(broker(),), (LeaderChangeRecord(1),)]
            assert {e.term for e in log.entries} == {quorum.current_term()}
            assert log.entries[1].time_ms >= before_ms
            # A later listener starts from the state as it is now.
            late = EntryLog()
            quorum.add_entry_listener(late)
            assert [index for index, _ in late.bases] == [second]
            assert late.bases[0][1].brokers.keys() == {1} and not late.entries
        finally:
            quorum.stop()

    run(body)


def test_the_first_entry_listener_sees_the_replay_of_a_restart_after_the_dump(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "__cluster_metadata-0"
    port = free_port()

    async def body() -> None:
        quorum = await started(data_dir, port)
        await quorum.write([broker()])
        dumped_at = await quorum.write(topic("news", TOPIC_IDS[0]))
        quorum.compact()
        await until(lambda: (data_dir / DUMP_FILE).exists(), "for the dump", UNTIL_S)
        await until(lambda: quorum._journal[0][1] >= dumped_at - 1, "for the cut", UNTIL_S)
        last = await quorum.write(topic("logs", TOPIC_IDS[1]))
        term = quorum.current_term()
        quorum.stop()

        again = await started(data_dir, port)
        try:
            await until(lambda: again.snapshot_state().applied_index == last, "replay", UNTIL_S)
            log = EntryLog()
            again.add_entry_listener(log)  # after the replay, as a node's comes
            # The dump's state, then the entries applied from the journal after it, with the
            # term they were written in (the restart's own term is a later one).
            ((base_index, base),) = log.bases
            assert dumped_at <= base_index < last and "news" in base.topics
            replayed = [e for e in log.entries if e.records == tuple(topic("logs", TOPIC_IDS[1]))]
            assert [(e.index, e.term) for e in replayed] == [(last, term)]
            assert [e.index for e in log.entries] == list(range(base_index + 1, last + 1))
        finally:
            again.stop()

    run(body)


def test_an_entry_listener_may_read_the_quorum_while_it_is_told(tmp_path: Path) -> None:
    # The first listener is told its replay, a later one the current state: both times it
    # reads the quorum back (the lock is not held then, else this would deadlock).
    quorum = MetadataQuorum(1, f"127.0.0.1:{free_port()}", {}, tmp_path, SECRET)
    assert quorum._early is not None
    quorum._early.applied(AppliedEntry(1, 1, 1000, (broker(),)), MetadataState())
    read_back: list[tuple[int, int]] = []

    class Reader(EntryLog):
        def state_replaced(self, index: int, state: MetadataState) -> None:
            super().state_replaced(index, state)
            read_back.append((quorum.snapshot_state().applied_index, quorum.read(len_topics)))

    def len_topics(state: MetadataState) -> int:
        return len(state.topics)

    first, later = Reader(), Reader()

    def add_both() -> None:
        quorum.add_entry_listener(first)
        quorum.add_entry_listener(later)

    adding = threading.Thread(target=add_both, daemon=True)
    adding.start()
    adding.join(30)  # generous: it takes microseconds, or forever if it deadlocks
    assert not adding.is_alive(), "add_entry_listener deadlocked on the quorum's lock"
    assert read_back == [(0, 0), (0, 0)]
    assert [index for index, _ in first.bases] == [0] and [e.index for e in first.entries] == [1]
    assert [index for index, _ in later.bases] == [0] and not later.entries
    assert quorum._early is None


def test_write_fenced_by_a_stale_term_raises_not_controller(tmp_path: Path) -> None:
    async def body() -> None:
        quorum = await started(tmp_path, free_port())
        try:
            term = quorum.current_term()
            assert await quorum.write([NoOpRecord()], expected_term=term) > 0
            with pytest.raises(NotControllerError) as info:
                await quorum.write([NoOpRecord()], expected_term=term - 1)
            assert info.value.leader_id == 1
        finally:
            quorum.stop()

    run(body)


def test_write_without_a_leader_raises_not_controller_and_submits_nothing(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        # Two voters, the peer never started: no majority, no leader.
        quorum = MetadataQuorum(
            1, f"127.0.0.1:{free_port()}", {2: f"127.0.0.1:{free_port()}"}, tmp_path, SECRET
        )
        quorum.start(asyncio.get_running_loop())
        try:
            with pytest.raises(NotControllerError) as info:
                await quorum.write([NoOpRecord()])
            assert info.value.leader_id is None
            assert not quorum.is_ready()
            status = quorum.status()
            assert status["leader_id"] is None
            assert [v["connected"] for v in status["voters"]] == [True, False]
        finally:
            quorum.stop()

    run(body)


def test_status_reports_leader_term_indexes_and_digest(tmp_path: Path) -> None:
    async def body() -> None:
        quorum = await started(tmp_path, free_port())
        try:
            index = await quorum.write([broker()])
            status = quorum.status()
            assert status["leader_id"] == 1 and status["term"] >= 1
            assert status["commit_index"] >= index and status["applied_index"] >= index
            assert status["metadata_applied_index"] == index
            assert status["metadata_digest"] == quorum.snapshot_state().digest()
            assert status["voters"][0]["status"] == "Leader"
        finally:
            quorum.stop()

    run(body)


def test_raft_port_drops_a_peer_announcing_an_oversized_message(tmp_path: Path) -> None:
    port = free_port()

    async def body() -> None:
        quorum = await started(tmp_path, port)
        try:

            def probe() -> bytes:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(struct.pack("i", 2**30) + b"x" * 100)
                    return s.recv(10)  # b"" once the node closes the connection

            assert await asyncio.to_thread(probe) == b""
            assert await quorum.write([NoOpRecord()]) > 0  # the node serves on
        finally:
            quorum.stop()

    run(body)


def test_an_address_in_use_fails_start_with_a_quorum_error(tmp_path: Path) -> None:
    async def body() -> None:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            quorum = MetadataQuorum(1, f"127.0.0.1:{port}", {}, tmp_path, SECRET)
            with pytest.raises(QuorumError, match="cannot bind"):
                quorum.start(asyncio.get_running_loop())

    run(body)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"self_address": "nope"}, "host:port"),
        ({"peers": {1: "127.0.0.1:2"}}, "its own peers"),
        ({"peers": {2: "127.0.0.1:1"}}, "distinct"),
        ({"secret": ""}, "secret"),
        ({"dial_overrides": {3: "127.0.0.1:5"}}, "non-voters"),
    ],
)
def test_bad_quorum_settings_are_refused_with_a_message(
    tmp_path: Path, kwargs: dict[str, Any], words: str
) -> None:
    settings: dict[str, Any] = {
        "node_id": 1,
        "self_address": "127.0.0.1:1",
        "peers": {},
        "data_dir": tmp_path,
        "secret": SECRET,
    }
    dial = kwargs.pop("dial_overrides", None)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=words):
        MetadataQuorum(**settings, dial_overrides=dial)


def test_pysyncobj_settings_avoid_the_known_traps(tmp_path: Path) -> None:
    async def body() -> None:
        quorum = await started(tmp_path, free_port())
        try:
            assert quorum._sync is not None
            conf = quorum._sync.conf
            # docs/design.md, "Known traps": a cut-off leader steps down in about 1.5 s (not 30 s),
            # a lost peer is redialled every second (not 5 s), journal and dump go together,
            # the links are encrypted with the secret and bound to the configured address.
            assert conf.leaderFallbackTimeout == 1.5 and conf.connectionRetryTime == 1.0
            assert conf.journalFile and conf.fullDumpFile
            assert conf.password == SECRET and conf.bindAddress == quorum.self_address
            assert conf.appendEntriesUseBatch and conf.raftMinTimeout > 3 * conf.appendEntriesPeriod
        finally:
            quorum.stop()

    run(body)


class _StubSync:
    """What is_ready reads of pysyncobj's SyncObj."""

    def __init__(self) -> None:
        self.leader: str | None = "127.0.0.1:2"
        self.raftLastApplied = 5
        self.raftCommitIndex = 7

    def isReady(self) -> bool:  # noqa: N802
        return True

    def _getLeader(self) -> Any:
        return None if self.leader is None else TCPNode(self.leader)


def test_readiness_needs_a_live_leader_and_one_catch_up_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quorum = MetadataQuorum(
        1, "127.0.0.1:1", {2: "127.0.0.1:2", 3: "127.0.0.1:3"}, tmp_path, SECRET
    )
    sync = _StubSync()
    quorum._sync = sync  # type: ignore[assignment]
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    assert not quorum.is_ready()  # never heard from the leader
    quorum._last_heard["127.0.0.1:2"] = now[0]
    assert not quorum.is_ready()  # heard, but 5 applied of 7 committed
    sync.raftLastApplied = 7
    assert quorum.is_ready()
    sync.raftCommitIndex = 9  # committed, applied at the next tick: still ready meanwhile
    assert quorum.is_ready()
    now[0] += limits.RAFT_CONNECTION_TIMEOUT_S + 0.1  # the leader went silent
    assert not quorum.is_ready()
    quorum._last_heard["127.0.0.1:2"] = now[0]
    assert not quorum.is_ready()  # back, but it must catch up again: 7 of 9
    sync.raftLastApplied = 9
    assert quorum.is_ready()
    sync.leader, sync.raftCommitIndex = "127.0.0.1:3", 10  # a new leader: catch up under it
    quorum._last_heard["127.0.0.1:3"] = now[0]
    assert not quorum.is_ready()
    sync.raftLastApplied = 10
    assert quorum.is_ready()
    quorum._sync = None


class _LaggingStatusSync(_StubSync):
    """pysyncobj as the writer sees it right after its write's callback: the entry is in our
    state (index 3), but pysyncobj counts it applied only after the callback returns."""

    def getStatus(self) -> dict[str, Any]:  # noqa: N802
        return {"state": 2, "raft_term": 1, "commit_idx": 3, "last_applied": 2}


def test_status_never_reports_less_applied_than_a_write_returned(tmp_path: Path) -> None:
    # The race seen once in 32 runs of test_status_reports_leader_term_indexes_and_digest:
    # write() returned 3, status() then read pysyncobj's last_applied of 2.
    quorum = MetadataQuorum(1, "127.0.0.1:1", {}, tmp_path, SECRET)
    sync = _LaggingStatusSync()
    sync.leader = "127.0.0.1:1"
    quorum._sync = sync  # type: ignore[assignment]
    quorum._journal = SimpleNamespace(last_index=3)  # type: ignore[assignment]
    quorum._state.apply_entry(3, [broker()])
    status = quorum.status()
    assert status["applied_index"] == 3 and status["metadata_applied_index"] == 3
    sync.getStatus = lambda: {"state": 2, "last_applied": 4}  # type: ignore[method-assign]
    assert quorum.status()["applied_index"] == 4  # pysyncobj's own no-op entries count too
    quorum._sync = None


def test_a_listener_that_raises_does_not_keep_the_others_from_being_told() -> None:
    told: list[Any] = []

    def broken(index: int, records: Any) -> None:
        raise RuntimeError("a bug in one listener")

    class Entries(EntryLog):
        def entry_applied(self, entry: AppliedEntry) -> None:
            raise RuntimeError("a bug in one entry listener")

    later = EntryLog()
    entry = AppliedEntry(7, 2, 1000, (NoOpRecord(),))
    quorum_module._tell(
        (broken, lambda index, records: told.append((index, records))),
        7,
        entry.records,
        (Entries(), later),
        entry,
    )
    assert told == [(7, entry.records)] and later.entries == [entry]
