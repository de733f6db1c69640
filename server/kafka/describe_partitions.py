"""DescribeTopicPartitions (key 75, KIP-966) on the Kafka listener: the topics and partitions
Kafka 4's Admin client reads for ``describeTopics`` by name (``kafka-topics --describe``), a
page at a time. Without it the client falls back to Metadata, and ``kafka-topics`` prints
``Elr: N/A`` and ``LastKnownElr: N/A`` where a Kafka 4.4 broker's answer prints both empty.

Kafka's rules (``DescribeTopicPartitionsRequestHandler`` and
``KRaftMetadataCache.getTopicMetadataForDescribeTopicResponse``):

- the topics named, each once, or every topic when none is named; only those whose name is at
  or after the cursor's topic (Java's ``String.compareTo``: UTF-16 code units), in that order;
- named topics only: a topic the principal may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED (the
  zero topic id, after the others, whatever the page holds), one that does not exist
  UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an illegal name). Listing every
  topic leaves both kinds out;
- a page holds at most ``response_partition_limit`` partitions, cut to Kafka's
  ``max.request.partition.size.limit`` (2000) and raised to 1; the cursor's topic starts at the
  cursor's partition, the others at 0. A topic cut short ends the page with ``next_cursor`` at
  its first partition left out; a page filled exactly by a topic ends at the next topic, if
  any, at partition 0 (a topic unknown or named twice never takes room);
- each partition as Metadata describes it (``server.kafka.metadata.partition_entry``: leader
  -1 when it has no KAFKA listener, the replicas and ISR as they are, offline replicas), but
  with no error code: Kafka sets none on this API's partitions. We have no ELR (KIP-966's
  eligible leader replicas): both ELR lists are empty, as a Kafka 4.4 cluster without the
  ``eligible.leader.replicas.version`` feature answers (its partitions' ELR arrays are empty,
  never null, and Kafka's client reads them as lists);
- each topic answered (unknown ones too) carries the principal's authorized operations on it;
- a cursor whose topic is not among those named, or whose partition is negative, is Kafka's
  InvalidRequestException: every topic named is answered INVALID_REQUEST, and nothing else.

A node that is not ready answers each topic named its retriable readiness error (every topic:
none), as the admin APIs do: before the metadata is loaded, neither the topics nor the ACLs are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from client.protocol import topic_name_problem
from kraft.state import BrokerState, MetadataState
from server.auto_topics import INTERNAL_TOPICS
from server.kafka.admin_writes import OK, readiness, response_of
from server.kafka.apis import ApiSpec, RequestContext, authorize, authorized_operations
from server.kafka.entities import ZERO_UUID
from server.kafka.limits import DESCRIBE_PARTITIONS_PER_RESPONSE_MAX
from server.kafka.metadata import (
    AUTHORIZED_OPERATIONS_OMITTED,
    TOPIC_OPERATIONS,
    kafka_brokers,
    partition_entry,
)

DESCRIBE_TOPIC_PARTITIONS_KEY = 75


@dataclass(frozen=True)
class Cursor:
    """Where a page starts (a request's cursor) or the next one would (the answer's)."""

    topic: str
    partition: int


class InvalidCursorError(ValueError):
    """A request's cursor Kafka refuses (its InvalidRequestException), with Kafka's message."""


def java_order(name: str) -> bytes:
    """A sort key ordering names as Java's ``String.compareTo`` does (by UTF-16 code unit, where
    Python's order is by code point: they differ above U+FFFF)."""
    return name.encode("utf-16-be", "surrogatepass")


def page_limit(requested: int) -> int:
    """The partitions a page may hold: the request's limit within [1, Kafka's maximum]."""
    return max(min(DESCRIBE_PARTITIONS_PER_RESPONSE_MAX, requested), 1)


def described_partition(
    state: MetadataState, partition: Any, brokers: dict[int, BrokerState]
) -> dict[str, Any]:
    """One partition of the answer: Metadata's entry without its error, with empty ELR lists."""
    return {
        **partition_entry(state, partition, brokers),
        "error_code": ErrorCode.none,
        "eligible_leader_replicas": [],
        "last_known_elr": [],
    }


def _missing_topic(name: str, operations: int) -> dict[str, Any]:
    problem = topic_name_problem(name)
    return {
        "error_code": (
            ErrorCode.unknown_topic_or_partition
            if problem is None
            else ErrorCode.invalid_topic_exception
        ),
        "name": name,
        "topic_id": ZERO_UUID,
        "is_internal": name in INTERNAL_TOPICS,
        "partitions": [],
        "topic_authorized_operations": operations,
    }


def _refused_topic(name: str | None, error: ErrorCode) -> dict[str, Any]:
    return {
        "error_code": error,
        "name": name,
        "topic_id": ZERO_UUID,
        "is_internal": False,
        "partitions": [],
        "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


def refused_answer(named: Iterable[str | None], error: ErrorCode) -> dict[str, Any]:
    """The answer to a request refused whole (Kafka's ``getErrorResponse``): every topic named,
    as named (twice when named twice), with ``error``."""
    return {"topics": [_refused_topic(n, error) for n in named], "next_cursor": None}


def describe_page(
    state: MetadataState,
    named: Sequence[str] | None,
    cursor: Cursor | None,
    limit: int,
    may_describe: Callable[[str], bool],
    operations: Callable[[str], int],
) -> dict[str, Any]:
    """One page of DescribeTopicPartitions (module docstring): ``topics`` and ``next_cursor``.
    ``named`` None: every topic; ``limit``: partitions, as :func:`page_limit` gives it;
    ``may_describe(topic)``: DESCRIBE allowed; ``operations(topic)``: the authorized-operations
    bit field. Raises InvalidCursorError for a cursor Kafka refuses."""
    first = "" if cursor is None else cursor.topic
    candidates = set(state.topics if named is None else named)
    wanted = sorted((n for n in candidates if java_order(n) >= java_order(first)), key=java_order)
    if cursor is not None and named is not None and cursor.topic not in wanted:
        raise InvalidCursorError(
            "DescribeTopicPartitionsRequest topic list should contain the cursor topic: "
            f"{cursor.topic}"
        )
    if cursor is not None and cursor.partition < 0:
        raise InvalidCursorError(
            "DescribeTopicPartitionsRequest cursor partition must be valid: "
            f"Cursor(topicName={cursor.topic}, partitionIndex={cursor.partition})"
        )
    allowed = [n for n in wanted if may_describe(n)]
    # Kafka checks every topic before the page is cut: the refused ones are all answered.
    refused = [] if named is None else sorted(set(wanted) - set(allowed), key=java_order)
    brokers = kafka_brokers(state)
    topics: list[dict[str, Any]] = []
    next_cursor: Cursor | None = None
    remaining = limit
    for name in allowed:
        if remaining == 0:
            # The page ended exactly with the topic before: the next page starts here (the
            # topic may not exist; its answer comes then).
            next_cursor = Cursor(name, 0)
            break
        topic = state.topics.get(name)
        if topic is None:
            if named is not None:
                topics.append(_missing_topic(name, operations(name)))
            continue
        start = cursor.partition if cursor is not None and name == cursor.topic else 0
        count = len(topic.partitions)
        end = min(count, start + remaining)
        topics.append(
            {
                "error_code": ErrorCode.none,
                "name": name,
                "topic_id": topic.topic_id,
                "is_internal": name in INTERNAL_TOPICS,
                "partitions": [
                    described_partition(state, topic.partitions[i], brokers)
                    for i in range(start, end)
                ],
                "topic_authorized_operations": operations(name),
            }
        )
        if end < count:
            next_cursor = Cursor(name, end)
            break
        remaining -= max(end - start, 0)
    topics += [_refused_topic(n, ErrorCode.topic_authorization_failed) for n in refused]
    return {
        "topics": topics,
        "next_cursor": (
            None
            if next_cursor is None
            else {"topic_name": next_cursor.topic, "partition_index": next_cursor.partition}
        ),
    }


async def describe_topic_partitions(ctx: RequestContext, request: Any) -> Any:
    """DescribeTopicPartitions (key 75): a page of the topics named (or of every topic) with
    their partitions, as a Kafka 4.4 broker answers it (module docstring)."""
    named_as_sent = [t.name for t in request.topics]
    named = named_as_sent or None  # none named: every topic
    if (unready := readiness(ctx.node)) is not OK:
        return response_of(ctx, refused_answer(named_as_sent, unready.code))
    cursor = None
    if request.cursor is not None:
        cursor = Cursor(request.cursor.topic_name, int(request.cursor.partition_index))
    state = ctx.node.quorum.snapshot_state()
    try:
        answer = describe_page(
            state,
            named,
            cursor,
            page_limit(int(request.response_partition_limit)),
            lambda name: authorize(ctx, "DESCRIBE", "TOPIC", name),
            lambda name: authorized_operations(ctx, "TOPIC", name, TOPIC_OPERATIONS),
        )
    except InvalidCursorError:
        answer = refused_answer(named_as_sent, ErrorCode.invalid_request)
    return response_of(ctx, answer)


DESCRIBE_TOPIC_PARTITIONS = ApiSpec(DESCRIBE_TOPIC_PARTITIONS_KEY, 0, 0, describe_topic_partitions)
