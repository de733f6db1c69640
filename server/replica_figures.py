"""Reading replica figures: this node's own, and other brokers' over signed internal calls.

The aggregate views (a topic's replicas, the topic list's detail, the groups' lag) ask several
brokers at once. Each call has a short timeout (``limits.INTERNAL_HTTP_TIMEOUT_S``) and never
raises: a broker that cannot be asked comes back as the sentence saying why, which the answer
shows in place of its figures. Fenced brokers are not asked (``replica_views.asking_plan``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
from urllib.parse import quote

from client.protocol import ApiError
from server import limits
from server.node import Node
from server.replica_views import BrokerAnswer, ReplicaFigures, parse_broker_answer

# Well under the 8190 bytes aiohttp allows a request line (the path and host come on top).
TOPICS_QUERY_CHARS_MAX = 2048


def local_figures(node: Node) -> list[ReplicaFigures]:
    """The figures of every replica this node holds, also those whose log could not be opened
    (offline, without offsets). Reads memory only: no file is touched."""
    logs = node.replica_manager.logs
    state = node.quorum.snapshot_state()
    out = []
    for (topic, index), partition in logs.partitions.items():
        log = partition.log
        out.append(
            ReplicaFigures(
                topic,
                index,
                partition.is_leader,
                partition.state.leader_epoch,
                log.log_start_offset,
                log.log_end_offset,
                log.high_watermark,
                # The bytes of the segment files, as GET /v1/brokers/{b}/log-dirs counts them.
                log.size_bytes,
                log.offline is not None,
            )
        )
    for topic, index in logs.failed:
        meta = state.topics.get(topic)
        partition_state = meta.partitions.get(index) if meta is not None else None
        out.append(
            ReplicaFigures(
                topic,
                index,
                partition_state is not None and partition_state.leader == node.node_id,
                partition_state.leader_epoch if partition_state is not None else -1,
                None,
                None,
                None,
                None,
                True,
            )
        )
    return out


async def broker_figures(node: Node, broker_id: int, topics: frozenset[str] | None) -> BrokerAnswer:
    """Broker ``broker_id``'s figures of its replicas of ``topics`` (all when None), or why
    they could not be read."""
    if broker_id == node.node_id:
        return {
            (f.topic, f.partition): f
            for f in local_figures(node)
            if topics is None or f.topic in topics
        }
    url = node.broker_url(broker_id, dial=True)
    if url is None:
        return f"broker {broker_id} is not registered"
    path = replicas_path(broker_id, topics, node.quorum.snapshot_state().topics.keys())
    try:
        status, answer, _ = await node.http_call(
            "GET",
            url + path,
            None,
            limits.INTERNAL_HTTP_TIMEOUT_S,
            target_id=broker_id,
            role=f"broker {broker_id}",
        )
    except ApiError as e:
        return e.message
    if status != 200:
        message = answer.get("message") if isinstance(answer, dict) else None
        return f"broker {broker_id} answered {status}: {message or 'no message'}"
    try:
        figures = parse_broker_answer(answer)
    except ValueError as e:
        return f"broker {broker_id} answered something unreadable: {e}"
    # The path may have asked for every topic: the answer is cut to ``topics`` here.
    if topics is None:
        return figures
    return {key: f for key, f in figures.items() if key[0] in topics}


def replicas_path(broker_id: int, topics: frozenset[str] | None, known: Collection[str]) -> str:
    """The path of the internal ``GET /v1/brokers/{broker}/replicas`` call for ``topics``
    (all when None) of a cluster whose topics are ``known``. The ``topics`` parameter is left
    out when it would ask for every known topic or be longer than
    :data:`TOPICS_QUERY_CHARS_MAX`: a request line over aiohttp's 8190 bytes is refused
    (hundreds of topics reach it), so the caller then cuts the answer itself."""
    path = f"/v1/brokers/{broker_id}/replicas"
    if topics is None or topics.issuperset(known):
        return path
    query = quote(",".join(sorted(topics)), safe=",")
    if len(query) > TOPICS_QUERY_CHARS_MAX:
        return path
    return f"{path}?topics={query}"


async def gather_figures(
    node: Node, brokers: Iterable[int], topics: frozenset[str] | None
) -> dict[int, BrokerAnswer]:
    """:func:`broker_figures` of each of ``brokers``, asked concurrently."""
    ids = list(brokers)
    answers = await asyncio.gather(*(broker_figures(node, b, topics) for b in ids))
    return dict(zip(ids, answers, strict=True))
