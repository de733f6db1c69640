"""Topics a node creates on its own: a produce to, or a subscription to, a topic that does not
exist (Kafka's ``auto.create.topics.enable``), and the internal ``__consumer_offsets``.

Creation is the controller's: on the controller the plan is written here, elsewhere the node
asks the controller with a signed internal call, as a forwarded create would. Concurrent
requests for one missing topic share one creation. The caller gets the topic once this node
has applied it and opened its own replicas of it: an auto-creation stands for the producer
that asked, and Kafka's producer waits for the new topic's metadata before it sends (an
explicit create, ``POST /v1/topics``, answers on the commit instead, as Kafka's CreateTopics
does). Partitions led elsewhere may still be opening or electing leaders (a client retries
LEADER_NOT_AVAILABLE, as Kafka's does after auto-creation).

With an authorizer, the handler checks first that the requester may create the topic
(``server.http_security.may_create_topic``), as Kafka checks CREATE before auto-creating.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from client.protocol import TOPIC_ALREADY_EXISTS, ApiError
from kraft.records import MetadataRecord
from kraft.state import MetadataState, TopicState
from server import controller, limits

if TYPE_CHECKING:  # server.node builds the group coordinator, which imports this module
    from server.node import Node

OFFSETS_TOPIC = "__consumer_offsets"
# Topics the cluster writes itself: clients may read them, never produce to them.
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC})

_creating: dict[tuple[int, str], asyncio.Future[None]] = {}  # (id(node), topic) -> creation


async def ensure_topic(node: Node, name: str, *, allowed: bool | None = None) -> TopicState:
    """The topic, created first with the node's defaults when it does not exist and
    ``allowed`` (default: ``auto.create.topics.enable``). Raises UNKNOWN_TOPIC_OR_PARTITION
    when it does not exist and may not be created, or the controller's error (an invalid name,
    too few brokers; LEADER_NOT_AVAILABLE when no controller answers)."""
    state = node.quorum.snapshot_state()
    if name in state.topics:
        return state.topics[name]
    if not (node.config.auto_create_topics_enable if allowed is None else allowed):
        return node.topic(name)  # raises Kafka's "Topic 'x' does not exist."
    await _create_once(node, name, {"name": name})
    return node.topic(name)


async def ensure_offsets_topic(node: Node) -> TopicState:
    """``__consumer_offsets``, created on first use whatever auto.create.topics.enable says,
    as Kafka does: ``offsets.topic.num.partitions`` partitions, ``offsets.topic.replication.
    factor`` copies (at most the live brokers), compacted with segments of
    ``offsets.topic.segment.bytes`` (Kafka's configs of it), so that a group committing a
    million times keeps one record per partition plus what is not cleaned yet. Every record
    the coordinator writes has a key (``storage.group_records.encode_key``), as compaction
    needs. A topic that exists keeps the configs it has, as in Kafka."""
    state = node.quorum.snapshot_state()
    if OFFSETS_TOPIC in state.topics:
        return state.topics[OFFSETS_TOPIC]
    settings = node.config.groups
    brokers = len(controller.live_brokers(state))
    body = {
        "name": OFFSETS_TOPIC,
        "partitions": settings.offsets_topic_partitions,
        "replication_factor": max(1, min(settings.offsets_topic_replication_factor, brokers)),
        "configs": {
            "cleanup.policy": "compact",
            "segment.bytes": str(settings.offsets_topic_segment_bytes),
            # No effect on a log that is only compacted (Kafka does not set it); it keeps
            # committed offsets from deletion by age should the policy gain delete.
            "retention.ms": "-1",
        },
    }
    await _create_once(node, OFFSETS_TOPIC, body)
    return node.topic(OFFSETS_TOPIC)


async def _create_once(node: Node, name: str, body: dict[str, Any]) -> None:
    key = (id(node), name)
    task = _creating.get(key)
    if task is None:
        task = asyncio.ensure_future(_create(node, body))
        _creating[key] = task
        task.add_done_callback(lambda _: _creating.pop(key, None))
    # Shielded: one caller giving up (its client went away) does not cancel the others' wait.
    await asyncio.shield(task)


async def _create(node: Node, body: dict[str, Any]) -> None:
    name = body["name"]
    if node.quorum.is_leader():

        def plan(state: MetadataState) -> list[MetadataRecord]:
            if name in state.topics:  # created meanwhile: nothing to do
                return []
            return controller.plan_create_topic(
                state,
                name,
                body.get("partitions"),
                body.get("replication_factor"),
                body.get("configs"),
                default_partitions=node.config.num_partitions,
                default_replication_factor=node.config.default_replication_factor,
                rng=node.rng,
                socket_request_max_bytes=node.config.socket_request_max_bytes,
            )

        index = await node.write_metadata(plan)  # returns once applied on this node
        if index is not None:
            await _wait_opened(node, index)
        return
    from server.node import METADATA_INDEX_HEADER

    controller_id, url = node.controller_address()
    status, answer, headers = await node.http_call(
        "POST",
        url + "/v1/topics",
        body,
        limits.FORWARD_TIMEOUT_S,
        target_id=controller_id,
        role="controller",
    )
    error = None
    if status >= 300:
        error = ApiError.from_json(answer if isinstance(answer, dict) else {}, status)
        if error.kind != TOPIC_ALREADY_EXISTS:
            raise error
    applied = headers.get(METADATA_INDEX_HEADER, "")
    if applied.isascii() and applied.isdigit():
        await node.wait_applied(int(applied))
        await _wait_opened(node, int(applied))
    elif error is not None:
        # Created by someone else; wait for this node to see it.
        await _wait_for_topic(node, name)


async def _wait_opened(node: Node, index: int) -> None:
    """Waits (briefly) until this node's replicas match metadata entry ``index``."""
    await node.replica_manager.wait_reconciled(index, limits.FORWARD_APPLY_WAIT_S)


async def _wait_for_topic(node: Node, name: str) -> None:
    try:
        async with asyncio.timeout(limits.FORWARD_APPLY_WAIT_S):
            while name not in node.quorum.snapshot_state().topics:
                await asyncio.sleep(0.05)
    except TimeoutError:
        pass
