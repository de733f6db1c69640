"""Three metadata quorum members in one process (three SyncObj, three free ports, tmp dirs).

Every test here runs through `run_cluster`, which fails it if pysyncobj logs a CRITICAL
"truncating already-applied log entries" line.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kraft.errors import NotControllerError
from kraft.quorum import MetadataQuorum
from kraft.records import NoOpRecord
from tests.integration.quorum_helpers import (
    SECRET,
    Cluster,
    brokers,
    leave_a_follower_behind_a_dump,
    run_cluster,
    topic,
)
from tests.waiting import until

pytestmark = pytest.mark.timeout(120)


def test_three_nodes_agree_on_the_digest_and_followers_refuse_writes(tmp_path: Path) -> None:
    async def body(cluster: Cluster) -> None:
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        await asyncio.gather(*(q.wait_ready(30) for q in cluster.nodes.values()))
        leader = await cluster.leader()
        await leader.write(brokers())
        for n in range(30):
            await leader.write(topic(n))
        assert len(await cluster.converged()) == 1
        for node in cluster.nodes.values():
            assert len(node.snapshot_state().topics) == 30
            if node is not leader:
                with pytest.raises(NotControllerError) as info:
                    await node.write([NoOpRecord()])
                assert info.value.leader_id == leader.node_id
        # Every node's listener saw the same entries in the same order.
        histories = [[i for i, r in cluster.events[n] if r is not None] for n in (1, 2, 3)]
        assert histories[0] == histories[1] == histories[2] and len(histories[0]) == 31

    run_cluster(tmp_path, body)


def test_concurrent_writes_commit_in_batches_and_every_node_applies_them_in_one_order(
    tmp_path: Path,
) -> None:
    async def body(cluster: Cluster) -> None:
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        leader = await cluster.leader()
        await leader.write(brokers())
        for wave in range(4):  # 4 x 50 writes in flight at once: many entries per append
            indexes = await asyncio.gather(*(leader.write(topic(wave * 50 + n)) for n in range(50)))
            assert len(set(indexes)) == 50
        assert len(await cluster.converged()) == 1
        histories = [[i for i, r in cluster.events[n] if r is not None] for n in (1, 2, 3)]
        assert histories[0] == histories[1] == histories[2] and len(histories[0]) == 201

    run_cluster(tmp_path, body)


def test_a_lagging_follower_gets_the_dump_and_catches_up(tmp_path: Path) -> None:
    async def body(cluster: Cluster) -> None:
        lagging = await leave_a_follower_behind_a_dump(cluster)
        await (await cluster.leader()).write(topic(10))

        follower = cluster.start(lagging)
        await follower.wait_ready(30)
        assert len(await cluster.converged()) == 1
        assert len(follower.snapshot_state().topics) == 11
        assert any(records is None for _, records in cluster.events[lagging])  # a reset

    run_cluster(tmp_path, body)


def test_a_new_leader_takes_over_and_the_old_term_is_fenced(tmp_path: Path) -> None:
    async def body(cluster: Cluster) -> None:
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        old = await cluster.leader()
        old_term = old.current_term()
        await old.write(brokers())
        cluster.stop(old.node_id)

        new = await cluster.leader()
        assert new.node_id != old.node_id and new.current_term() > old_term
        with pytest.raises(NotControllerError):
            await new.write([NoOpRecord()], expected_term=old_term)
        await new.write(topic(1), expected_term=new.current_term())

        rejoined = cluster.start(old.node_id)
        await rejoined.wait_ready(30)
        assert len(await cluster.converged()) == 1
        assert "t1" in rejoined.snapshot_state().topics

    run_cluster(tmp_path, body)


def test_a_full_cluster_restart_after_compaction_keeps_every_topic(tmp_path: Path) -> None:
    async def body(cluster: Cluster) -> None:
        for node_id in (1, 2, 3):
            cluster.start(node_id)
        leader = await cluster.leader()
        await leader.write(brokers())
        for n in range(5):
            await leader.write(topic(n))
        await cluster.converged()
        for node in cluster.nodes.values():
            node.compact()
        await until(lambda: all(q._journal[0][1] > 3 for q in cluster.nodes.values()))
        await leader.write(topic(5))
        (digest,) = await cluster.converged()
        cluster.stop_all()

        for node_id in (1, 2, 3):
            cluster.start(node_id)
        await asyncio.gather(*(q.wait_ready(30) for q in cluster.nodes.values()))
        assert await cluster.converged() == {digest}
        leader = await cluster.leader()
        await leader.write(topic(6))  # and the cluster commits again
        assert len(await cluster.converged()) == 1

    run_cluster(tmp_path, body)


def test_a_peer_is_dialled_at_its_override_and_known_by_its_advertised_address(
    tmp_path: Path,
) -> None:
    async def body(cluster: Cluster) -> None:
        connections: list[int] = []

        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        async def on_connect(
            client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
        ) -> None:
            connections.append(1)
            host, port = target.rsplit(":", 1)
            server_reader, server_writer = await asyncio.open_connection(host, int(port))
            await asyncio.gather(
                forward(client_reader, server_writer),
                forward(server_reader, client_writer),
                return_exceptions=True,
            )

        # Two voters: only the node with the larger address dials, so it gets the override.
        small, large = sorted(cluster.addresses.items(), key=lambda item: item[1])[:2]
        target = small[1]
        proxy = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        proxy_address = f"127.0.0.1:{proxy.sockets[0].getsockname()[1]}"
        try:
            nodes = []
            for (node_id, address), (peer_id, peer_address), dial in (
                (small, large, None),
                (large, small, {small[0]: proxy_address}),
            ):
                quorum = MetadataQuorum(
                    node_id,
                    address,
                    {peer_id: peer_address},
                    tmp_path / f"node-{node_id}",
                    SECRET,
                    dial_overrides=dial,
                )
                quorum.start(asyncio.get_running_loop())
                cluster.nodes[node_id] = quorum
                nodes.append(quorum)
            await asyncio.gather(*(q.wait_ready(30) for q in nodes))
            leader = await cluster.leader()
            await leader.write(brokers())
            assert len(await cluster.converged()) == 1
            assert connections  # the dialling node went through the proxy
            assert {v["connected"] for n in nodes for v in n.status()["voters"]} == {True}
        finally:
            cluster.stop_all()
            proxy.close()

    run_cluster(tmp_path, body)
