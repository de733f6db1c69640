"""A group's committed offsets, as the consumer writes and reads them (the contract's
"Offsets": ``POST``/``GET /v1/groups/{g}/offsets``).

A committed offset is the next offset to read. A group member's commit carries its member id
and epoch, so the coordinator refuses one from a member that lost its partitions (fenced:
FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID) or from an older epoch (STALE_MEMBER_EPOCH; tried once
more when a heartbeat brought a newer epoch meanwhile); a commit without a member is allowed
only while the group has no members. Retriable failures (no coordinator yet, a lost
connection) are retried until ``request.timeout.ms``: a commit is safe to repeat.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from client.client import TransportError
from client.consumer_config import ConsumerConfig
from client.consumer_fetch import next_backoff, retriable, wait_s
from client.group_member import MemberState, TopicPartition
from client.protocol import STALE_MEMBER_EPOCH, ApiError

T = TypeVar("T")


async def with_retries(config: ConsumerConfig, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``'s result, retrying retriable failures with backoff until request.timeout.ms;
    the last failure (or any other) is raised."""
    deadline = time.monotonic() + config.request_timeout_ms / 1000
    backoff_s = 0.0
    while True:
        try:
            return await call()
        except (ApiError, TransportError) as exc:
            if not retriable(exc) or time.monotonic() >= deadline:
                raise
            backoff_s = next_backoff(backoff_s, config.retry_backoff_ms / 1000)
            await asyncio.sleep(wait_s(exc, backoff_s))


async def commit(
    client: Any,
    config: ConsumerConfig,
    group: str,
    offsets: Mapping[TopicPartition, int],
    member: MemberState | None,
) -> None:
    """Stores ``offsets`` (partition -> next offset to read) for ``group``, as ``member``
    (its id and current epoch) when it is a joined member."""
    stale_retried = False
    while True:
        body: dict[str, Any] = {
            "offsets": [
                {"topic": tp.topic, "partition": tp.partition, "offset": offset}
                for tp, offset in sorted(offsets.items())
            ]
        }
        if member is not None and member.member_id is not None and member.epoch > 0:
            body["member_id"] = member.member_id
            body["member_epoch"] = member.epoch
        try:
            await with_retries(config, lambda: client.commit_offsets(group, body))  # noqa: B023
            return
        except ApiError as exc:
            newer = member is not None and member.epoch != body.get("member_epoch")
            if exc.code == STALE_MEMBER_EPOCH.code and newer and not stale_retried:
                stale_retried = True  # a heartbeat brought a newer epoch meanwhile
                continue
            raise


async def committed(
    client: Any, config: ConsumerConfig, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """The group's committed offset of each partition (None where there is none)."""
    found: dict[TopicPartition, int | None] = {tp: None for tp in partitions}
    for topic in sorted({tp.topic for tp in partitions}):
        answer = await with_retries(
            config,
            lambda topic=topic: client.committed_offsets(group, topic),  # type: ignore[misc]
        )
        for item in answer.get("offsets") or []:
            tp = TopicPartition(str(item.get("topic")), int(item.get("partition", -1)))
            if tp in found and isinstance(item.get("offset"), int):
                found[tp] = item["offset"]
    return found
