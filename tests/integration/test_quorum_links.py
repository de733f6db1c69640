"""The Raft links under bad conditions, on real quorums in one process (127.0.0.1, free ports):
a node with another cluster secret, garbage and stalled connections on the Raft port, voters
that are down, a leader or a follower cut off from the majority, a peer that never answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import random
import socket
import struct
import threading
import zlib
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pysyncobj.encryptor import getEncryptor

from kraft import limits
from kraft.quorum import MetadataQuorum
from kraft.transport import (
    AUTH,
    EVICTED,
    HANDSHAKE_CLOSED,
    HANDSHAKE_TIMEOUT,
    OVERSIZED,
    UNDECODABLE,
)
from tests.integration.quorum_helpers import (
    SECRET,
    Cluster,
    brokers,
    free_port,
    run_cluster,
    topic,
)
from tests.waiting import until

pytestmark = pytest.mark.timeout(120)


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_a_node_with_another_secret_cannot_join_and_the_links_name_cluster_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(limits, "RAFT_CONNECTION_RETRY_S", 0.2)  # many attempts, quickly

    async def body(cluster: Cluster) -> None:
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        leader = await cluster.leader()
        assert leader.node_id != 3
        await leader.write(brokers())
        outsider = cluster.nodes[3]
        outsider_address = cluster.addresses[3]
        # On each link with node 3, the node with the larger address dials the other.
        links = []
        for peer in (1, 2):
            peer_address = cluster.addresses[peer]
            if outsider_address > peer_address:
                links.append((outsider, peer_address))
            else:
                links.append((cluster.nodes[peer], outsider_address))

        def attempts_made() -> bool:
            return all(
                node._links.counts[(HANDSHAKE_CLOSED, target)] >= 5 for node, target in links
            )

        await until(attempts_made, what="for repeated handshake failures")
        assert not outsider.is_ready() and outsider.snapshot_state().applied_index == 0
        for dialler, target in links:
            said = lines(
                caplog,
                f"node {dialler.node_id}: the Raft link with {target} was closed during the "
                "handshake",
            )
            assert len(said) == 1, said  # rate-limited: one line for five failures or more
            assert "cluster.secret differs" in said[0]
        # The nodes that were dialled know it for sure, and say where the connection came from.
        said = lines(caplog, "failed authentication: cluster.secret differs")
        assert any(": the Raft link from 127.0.0.1:" in line for line in said)
        await leader.write(topic(1))  # the two with the same secret go on

    run_cluster(tmp_path, body, secrets={3: "another-secret"})


class _Exploit:
    """A pickle that runs code when it is loaded: it creates the directory `marker`."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.marker,))


def _frame(payload: bytes) -> bytes:
    return struct.pack("i", len(payload)) + payload


def _closed_by_peer(sock: socket.socket, timeout_s: float) -> bool:
    sock.settimeout(timeout_s)
    try:
        while sock.recv(65536):
            pass  # the node never answers a stranger, but read whatever comes
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _send_and_wait_close(port: int, data: bytes, timeout_s: float = 20) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        try:
            sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            return True
        return _closed_by_peer(sock, timeout_s)


def _stream_after_huge_prefix(port: int) -> tuple[int, bool]:
    """Announce a 2 GiB message and stream zeros: (bytes sent before the node cut us, cut)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        try:
            sock.sendall(struct.pack("i", 2**31 - 1))
            chunk = bytes(65536)
            while sent < 256 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            return sent, True
        return sent, _closed_by_peer(sock, 20)


def test_garbage_on_the_raft_port_is_dropped_and_the_node_keeps_committing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(limits, "RAFT_HANDSHAKE_TIMEOUT_S", 1.0)
    marker = tmp_path / "code-ran"
    live = tmp_path / "payload-is-live"
    pickle.loads(pickle.dumps(_Exploit(str(live))))  # the payload does run when unpickled
    assert live.is_dir()
    exploit = zlib.compress(pickle.dumps(_Exploit(str(marker))))

    async def body(cluster: Cluster) -> None:
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        leader = await cluster.leader()
        await leader.write(brokers())
        port = int(leader.self_address.rsplit(":", 1)[1])
        writes = 0

        async def attack(data: bytes, timeout_s: float = 20) -> None:
            nonlocal writes
            assert await asyncio.to_thread(_send_and_wait_close, port, data, timeout_s)
            writes += 1
            await leader.write(topic(writes))  # the node serves on after each attack

        rng = random.Random(3)
        for _ in range(20):  # random bytes, random length prefixes
            await attack(rng.randbytes(rng.randint(4, 5000)))
        for _ in range(5):  # a plausible prefix, then random bytes: fails authentication
            await attack(_frame(rng.randbytes(rng.randint(1, 4000))))
        await attack(struct.pack("i", -1) + b"x" * 10)  # a negative length
        await attack(_frame(exploit))  # a pickle that runs code, unencrypted
        wrong_key = Fernet(Fernet.generate_key())
        await attack(_frame(wrong_key.encrypt(exploit)))  # encrypted with another key
        # Authenticated (it has the secret) but not pysyncobj's framing: dropped, not a crash.
        await attack(_frame(getEncryptor(SECRET).encrypt(b"not zlib data")))
        await attack(struct.pack("i", 1000) + b"y" * 500)  # a truncated message, then silence
        await attack(b"")  # a connection that never says anything

        sent, cut = await asyncio.to_thread(_stream_after_huge_prefix, port)
        assert cut and sent < 16 * 1024 * 1024  # cut at the prefix, not after buffering
        assert not marker.exists()

        links = leader._links
        assert links.counts[(OVERSIZED, "127.0.0.1")] >= 20
        assert links.counts[(AUTH, "127.0.0.1")] >= 7
        assert links.counts[(UNDECODABLE, "127.0.0.1")] == 1
        assert links.counts[(HANDSHAKE_TIMEOUT, "127.0.0.1")] >= 2
        for key, count in links.counts.items():
            assert links.logged[key] == 1, (key, count)  # rate-limited: one line per kind
        assert len(await cluster.converged()) == 1

    run_cluster(tmp_path, body)
    assert len(lines(caplog, "-byte message before authenticating (limit 4096 bytes)")) == 1


def test_a_flood_of_idle_connections_is_bounded_and_the_node_keeps_committing(
    tmp_path: Path,
) -> None:
    flood = 100  # more than the cap of handshaking connections

    async def body(cluster: Cluster) -> None:
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        leader = await cluster.leader()
        await leader.write(brokers())
        port = int(leader.self_address.rsplit(":", 1)[1])
        transport = leader._sync._SyncObj__transport if leader._sync else None
        assert transport is not None
        evicted = (EVICTED, "127.0.0.1")
        timed_out = (HANDSHAKE_TIMEOUT, "127.0.0.1")
        limit = limits.RAFT_HANDSHAKING_CONNECTIONS_COUNT_MAX

        def dropped() -> int:
            # On a busy machine the accepts can trail the handshake deadline, and some
            # connections are then dropped by the deadline rather than evicted. Either
            # way all but `limit` of them must go.
            return leader._links.counts[evicted] + leader._links.counts[timed_out]

        # pysyncobj listens with a backlog of 5: a connect that finds the accept queue full
        # waits out a SYN retransmission (a second), which made the flood take 15 s. So it
        # goes in fives, each once the node has taken the ones before (handshaking or gone).
        sockets: list[socket.socket] = []
        try:
            while len(sockets) < flood:
                sockets.extend(socket.create_connection(("127.0.0.1", port)) for _ in range(5))
                await until(
                    lambda: len(transport._unknownConnections) + dropped() >= len(sockets),
                    what="the node accepting the connections",
                )
            await until(lambda: dropped() >= flood - limit, what="evictions or timeouts")
            assert len(transport._unknownConnections) <= limit
            await leader.write(topic(1))
            closed = await asyncio.gather(
                *(asyncio.to_thread(_closed_by_peer, s, 20) for s in sockets)
            )
            assert all(closed)  # evicted, or dropped at the handshake deadline
            assert leader._links.logged[evicted] <= 1, "one log line, not one per connection"
        finally:
            for s in sockets:
                s.close()
        await leader.write(topic(2))
        assert len(await cluster.converged()) == 1

    run_cluster(tmp_path, body)


def test_a_node_whose_voters_are_down_says_which_and_is_ready_once_a_majority_is_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kraft.quorum")
    monkeypatch.setattr(limits, "RAFT_UNREACHABLE_FIRST_LOG_S", 0.5)
    monkeypatch.setattr(limits, "RAFT_UNREACHABLE_LOG_INTERVAL_S", 0.5)

    async def body(cluster: Cluster) -> None:
        a = cluster.addresses
        first = cluster.start(1)
        both = f"node 1 cannot reach voters 2 ({a[2]}), 3 ({a[3]})"
        await until(lambda: bool(lines(caplog, both)), what="for the unreachable line")
        assert "is not ready until 2 of 3 voters are connected" in lines(caplog, both)[0]
        assert not first.is_ready() and first.leader_id() is None

        second = cluster.start(2)
        await asyncio.gather(first.wait_ready(30), second.wait_ready(30))
        caplog.clear()
        only_three = f"node 1 cannot reach voters 3 ({a[3]}); it keeps retrying"
        await until(lambda: bool(lines(caplog, only_three)), what="for the line naming 3 only")
        assert "not ready" not in lines(caplog, only_three)[0]
        assert first.is_ready()
        await (await cluster.leader()).write(brokers())

        cluster.start(3)
        await until(lambda: bool(lines(caplog, "node 1 reaches every voter again")))

    run_cluster(tmp_path, body)


def test_a_leader_cut_off_from_the_majority_steps_down_and_is_not_ready(tmp_path: Path) -> None:
    async def body(cluster: Cluster) -> None:
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        leader = await cluster.leader()
        assert leader._sync is not None
        assert leader._sync.conf.leaderFallbackTimeout == limits.RAFT_LEADER_FALLBACK_TIMEOUT_S
        for node_id in [i for i in (1, 2, 3) if i != leader.node_id]:
            cluster.stop(node_id)
        # pysyncobj's default would keep it leading for 30 s; ours is 1.5 s.
        await until(lambda: not leader.is_leader(), timeout_s=10, what="for the step-down")
        assert not leader.is_ready() and leader.leader_id() is None

    run_cluster(tmp_path, body)


def test_a_follower_cut_off_from_everyone_is_not_ready(tmp_path: Path) -> None:
    async def body(cluster: Cluster) -> None:
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        leader = await cluster.leader()
        await leader.write(brokers())
        await cluster.converged()
        alone = next(q for q in cluster.nodes.values() if q is not leader)
        assert alone.is_ready()
        for node_id in [i for i in (1, 2, 3) if i != alone.node_id]:
            cluster.stop(node_id)
        # pysyncobj starts no election when it reaches nobody, so it keeps its old leader.
        await until(lambda: not alone.is_ready(), timeout_s=10, what="for not ready")

    run_cluster(tmp_path, body)


def test_a_dialled_peer_that_never_answers_is_dropped_and_redialled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(limits, "RAFT_HANDSHAKE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(limits, "RAFT_CONNECTION_RETRY_S", 0.2)
    # Only the node with the larger address dials: give the silent peer the smaller one.
    silent_address, node_address = sorted(f"127.0.0.1:{free_port()}" for _ in range(2))
    accepted: list[socket.socket] = []
    server = socket.create_server(("127.0.0.1", int(silent_address.rsplit(":", 1)[1])))
    stop = threading.Event()

    def accept_and_say_nothing() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_say_nothing)
    thread.start()

    async def body() -> None:
        node = MetadataQuorum(1, node_address, {2: silent_address}, tmp_path, SECRET)
        node.start(asyncio.get_running_loop())
        try:
            await until(lambda: len(accepted) >= 3, what="for redials")
            assert node._links.counts[(HANDSHAKE_TIMEOUT, silent_address)] >= 2
            assert lines(caplog, f"dropped the Raft link with {silent_address}: no handshake")
        finally:
            node.stop()

    try:
        asyncio.run(asyncio.wait_for(body(), 60))
    finally:
        stop.set()
        thread.join()
        server.close()
        for s in accepted:
            s.close()
