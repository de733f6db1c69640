"""The pure half of kraft-reassign-partitions: Kafka's JSON files, checks, throttle lists and
lines (ReassignPartitionsCommand's static helpers), with no I/O.

The two files, as Kafka writes and reads them::

    topics to move     {"topics": [{"topic": "news"}, ...], "version": 1}
    reassignment       {"version": 1, "partitions": [{"topic": "news", "partition": 0,
                        "replicas": [1, 2, 4], "log_dirs": ["any", "any", "any"]}, ...]}

``log_dirs`` is optional; every entry must be ``"any"`` here, since a node has one log
directory (``log.dirs`` takes one), so there is no directory to move a replica to.

A reassignment is a list of ``(TopicPartition, replicas)`` in the file's order; the first
replica is the preferred leader. Messages are Kafka's words where Kafka has them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from client.admin import TopicPartition
from client.replica_assignment import assign_replicas

ANY_LOG_DIR = "any"
EARLIEST_VERSION = 1

Assignment = dict[TopicPartition, list[int]]
Reassignment = list[tuple[TopicPartition, list[int]]]


class ReassignmentFileError(ValueError):
    """A file or argument the tool refuses before it asks the cluster anything: one line, in
    Kafka's words where Kafka has them."""


def _sort_key(tp: TopicPartition) -> tuple[str, int]:
    return tp.topic, tp.partition


def _java_set(values: Iterable[object]) -> str:
    # How Kafka prints a Set in its messages: "[1, 2]".
    return "[" + ", ".join(str(v) for v in values) + "]"


def _duplicates(values: Sequence[Any]) -> list[Any]:
    seen: set[Any] = set()
    twice: list[Any] = []
    for v in values:
        if v in seen and v not in twice:
            twice.append(v)
        seen.add(v)
    return twice


def _load(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise ReassignmentFileError("The input string is not a valid JSON") from None
    if not isinstance(data, dict):
        raise ReassignmentFileError("The input string is not a JSON object")
    version = data.get("version", EARLIEST_VERSION)
    if version != EARLIEST_VERSION or isinstance(version, bool):
        raise ReassignmentFileError(f"Not supported version field value {version}")
    return data


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReassignmentFileError(f"{what} must be a number, got {json.dumps(value)}")
    return value


def parse_topics_to_move(text: str) -> list[str]:
    """The topics of a ``--topics-to-move-json-file``, in the file's order."""
    data = _load(text)
    topics = data.get("topics", [])
    if not isinstance(topics, list):
        raise ReassignmentFileError('"topics" must be a list of {"topic": name}')
    out: list[str] = []
    for entry in topics:
        if not isinstance(entry, dict) or not isinstance(entry.get("topic"), str):
            raise ReassignmentFileError('each of "topics" must be {"topic": name}')
        out.append(entry["topic"])
    return out


def parse_reassignment(text: str) -> Reassignment:
    """The partitions of a ``--reassignment-json-file`` (duplicates kept, for the checks of
    :func:`check_execute`); a ``log_dirs`` entry other than "any" is refused."""
    data = _load(text)
    partitions = data.get("partitions", [])
    if not isinstance(partitions, list):
        raise ReassignmentFileError('"partitions" must be a list')
    out: Reassignment = []
    for entry in partitions:
        if not isinstance(entry, dict) or not isinstance(entry.get("topic"), str):
            raise ReassignmentFileError(
                'each of "partitions" needs "topic", "partition" and "replicas"'
            )
        tp = TopicPartition(entry["topic"], _int(entry.get("partition"), "partition"))
        raw = entry.get("replicas")
        if not isinstance(raw, list):
            raise ReassignmentFileError(f'"replicas" of {tp} must be a list of broker ids')
        replicas = [_int(r, f"a replica of {tp}") for r in raw]
        log_dirs = entry.get("log_dirs")
        if log_dirs is None:
            log_dirs = [ANY_LOG_DIR] * len(replicas)
        if not isinstance(log_dirs, list) or not all(isinstance(d, str) for d in log_dirs):
            raise ReassignmentFileError(f'"log_dirs" of {tp} must be a list of strings')
        if len(log_dirs) != len(replicas):
            raise ReassignmentFileError(
                f"Size of replicas list {_java_set(replicas)} is different from size of log "
                f"dirs list {_java_set(log_dirs)} for partition {tp}"
            )
        moved = [d for d in log_dirs if d != ANY_LOG_DIR]
        if moved:
            raise ReassignmentFileError(
                f'log_dirs of {tp} names {moved[0]!r}: only "any" is supported, each node '
                "has one log directory (log.dirs), so a replica cannot move between them"
            )
        out.append((tp, replicas))
    return out


def check_execute(parts: Reassignment) -> Assignment:
    """Kafka's parseExecuteAssignmentArgs checks: the partitions to move, by partition."""
    if not parts:
        raise ReassignmentFileError("Partition reassignment list cannot be empty")
    if any(not replicas for _, replicas in parts):
        raise ReassignmentFileError("Partition replica list cannot be empty")
    twice = _duplicates([tp for tp, _ in parts])
    if twice:
        raise ReassignmentFileError(
            "Partition reassignment contains duplicate topic partitions: "
            + ",".join(str(tp) for tp in twice)
        )
    repeated = [(tp, _duplicates(replicas)) for tp, replicas in parts if _duplicates(replicas)]
    if repeated:
        raise ReassignmentFileError(
            "Partition replica lists may not contain duplicate entries: "
            + ". ".join(
                f"{tp} contains multiple entries for {','.join(str(b) for b in brokers)}"
                for tp, brokers in repeated
            )
        )
    return dict(parts)


def parse_broker_list(text: str) -> list[int]:
    """``--broker-list 1,2,4``; Kafka's message for a broker named twice."""
    brokers: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item.lstrip("-").isdigit():
            raise ReassignmentFileError(f'For input string: "{item}"')
        brokers.append(int(item))
    twice = _duplicates(brokers)
    if twice:
        raise ReassignmentFileError(
            f"Broker list contains duplicate entries: {_java_set(sorted(twice))}"
        )
    return brokers


def check_topics_to_move(topics: list[str]) -> list[str]:
    twice = _duplicates(topics)
    if twice:
        raise ReassignmentFileError(
            f"List of topics to reassign contains duplicate entries: {_java_set(twice)}"
        )
    return topics


def format_reassignment(assignment: Mapping[TopicPartition, Sequence[int]]) -> str:
    """Kafka's formatAsReassignmentJson: compact JSON, partitions by topic and number."""
    partitions = [
        {
            "topic": tp.topic,
            "partition": tp.partition,
            "replicas": list(assignment[tp]),
            "log_dirs": [ANY_LOG_DIR] * len(assignment[tp]),
        }
        for tp in sorted(assignment, key=_sort_key)
    ]
    return json.dumps({"version": 1, "partitions": partitions}, separators=(",", ":"))


def propose(
    current: Mapping[TopicPartition, Sequence[int]],
    brokers: Sequence[int],
    racks: Mapping[int, str | None],
    *,
    start_index: int = -1,
) -> Assignment:
    """Kafka's calculateAssignment for ``--generate``: each topic's partitions placed anew
    over ``brokers`` by Kafka's AdminUtils (rack-aware when ``racks`` names racks), with
    the replication factor of its partition 0 (raises PlacementError)."""
    by_topic: dict[str, list[TopicPartition]] = {}
    for tp in current:
        by_topic.setdefault(tp.topic, []).append(tp)
    proposed: Assignment = {}
    for topic in sorted(by_topic):
        parts = sorted(by_topic[topic], key=_sort_key)
        factor = len(current[parts[0]])
        placed = assign_replicas(
            brokers,
            racks,
            len(parts),
            factor,
            start_index=start_index,
            next_replica_shift=start_index,
        )
        proposed.update({TopicPartition(topic, p): list(r) for p, r in placed.items()})
    return proposed


# -- throttles (Kafka's calculateProposedMoveMap and what follows from it) --------------------


@dataclass
class PartitionMove:
    """The brokers a partition's data comes from, and those it goes to."""

    sources: set[int]
    destinations: set[int]


MoveMap = dict[str, dict[int, PartitionMove]]


def move_map(
    ongoing: Sequence[Mapping[str, Any]],
    proposed: Mapping[TopicPartition, Sequence[int]],
    current: Mapping[TopicPartition, Sequence[int]],
) -> MoveMap:
    """Kafka's calculateProposedMoveMap: the moves in progress (``GET /v1/reassignments``
    entries: their replicas less the adding ones are the sources) and the proposed ones
    (sources: those of the move in progress, else the current replicas)."""
    moves: MoveMap = {}
    for r in ongoing:
        adding = set(r.get("adding_replicas") or [])
        sources = set(r.get("replicas") or []) - adding
        moves.setdefault(str(r["topic"]), {})[int(r["partition"])] = PartitionMove(sources, adding)
    for tp, replicas in proposed.items():
        parts = moves.setdefault(tp.topic, {})
        if tp.partition in parts:
            sources = set(parts[tp.partition].sources)
        else:
            sources = set(current[tp])
        parts[tp.partition] = PartitionMove(sources, set(replicas) - sources)
    return moves


def leader_throttles(moves: MoveMap) -> dict[str, str]:
    """Per topic, ``leader.replication.throttled.replicas``: every source, as "p:b"."""
    return {
        topic: ",".join(sorted(f"{p}:{b}" for p, m in parts.items() for b in m.sources))
        for topic, parts in moves.items()
    }


def follower_throttles(moves: MoveMap) -> dict[str, str]:
    """Per topic, ``follower.replication.throttled.replicas``: every destination."""
    return {
        topic: ",".join(
            sorted(
                f"{p}:{b}" for p, m in parts.items() for b in m.destinations if b not in m.sources
            )
        )
        for topic, parts in moves.items()
    }


def reassigning_brokers(moves: MoveMap) -> list[int]:
    """Every broker a move reads from or writes to: the ones whose rates are set."""
    return sorted(
        {b for parts in moves.values() for m in parts.values() for b in m.sources | m.destinations}
    )


# -- lines --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionState:
    """Kafka's PartitionReassignmentState: the replicas now, the target, and whether no move
    of the partition is in progress."""

    current: list[int]
    target: list[int]
    done: bool


def status_lines(states: Mapping[TopicPartition, PartitionState]) -> list[str]:
    """Kafka's partitionReassignmentStatesToString."""
    lines = ["Status of partition reassignment:"]
    for tp in sorted(states, key=_sort_key):
        state = states[tp]
        if not state.done:
            lines.append(f"Reassignment of partition {tp} is still in progress.")
        elif state.current == state.target:
            lines.append(f"Reassignment of partition {tp} is completed.")
        else:
            lines.append(
                f"There is no active reassignment of partition {tp}, but replica set is "
                f"{','.join(map(str, state.current))} rather than "
                f"{','.join(map(str, state.target))}."
            )
    return lines


def list_lines(ongoing: Sequence[Mapping[str, Any]]) -> list[str]:
    """Kafka's curReassignmentsToString for ``--list``."""
    if not ongoing:
        return ["No partition reassignments found."]
    lines = ["Current partition reassignments:"]
    for r in sorted(ongoing, key=lambda r: (str(r["topic"]), int(r["partition"]))):
        adding = r.get("adding_replicas") or []
        removing = r.get("removing_replicas") or []
        line = f"{r['topic']}-{r['partition']}: replicas: {','.join(map(str, r['replicas']))}."
        if adding:
            line += f" adding: {','.join(map(str, adding))}."
        if removing:
            line += f" removing: {','.join(map(str, removing))}."
        lines.append(line)
    return lines


def plural(count: int) -> str:
    return "" if count == 1 else "s"


def partition_names(partitions: Iterable[TopicPartition]) -> str:
    return ",".join(str(tp) for tp in sorted(partitions, key=_sort_key))
