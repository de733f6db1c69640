"""Partition reassignment (Kafka's KIP-455) as pure rules: the controller's plans call them.

Theory of operation
-------------------
A partition moves from its *original* replicas to a *target* list in two metadata changes,
with ordinary replication in between:

1. **Start.** One PartitionChangeRecord sets ``replicas`` to the merged list (the target in
   target order, then the original replicas that are not in the target), ``adding_replicas``
   = target - original and ``removing_replicas`` = original - target (both sorted, as Kafka's
   PartitionReassignmentReplicas). Every broker in the merged list holds the partition: an
   adding one opens it as a follower and catches up like any follower. The ISR rules do not
   change: ``min.insync.replicas`` and ``acks=all`` count the ISR, which may hold any replica
   of the merged list.
2. **Completion**, in the same record as the ISR change that makes it possible (the leader's
   AlterPartition, :func:`build_change`): when the ISR without the removing replicas is not
   empty and holds every target replica, ``replicas`` becomes the target, the ISR loses the
   removing replicas, and both lists are cleared. If the leader was being removed, the first
   target replica that is in the new ISR and live leads (a new leader epoch).

A move that needs no catching up (a reorder, or a smaller replication factor whose target is
in the ISR already) completes in its start record. A new target while a move is on replaces
it: the original replicas stay those before the first move, and an adding replica the new
target drops leaves at once (the ISR and, if it led, the leadership with it). A cancel goes
back to the original replicas: the ISR loses the adding replicas; one that led hands over to
the first original replica in the ISR that is live. A cancel or replace that would leave the
ISR empty (only adding replicas caught up) is refused: it would need an unclean election.

Nothing here does I/O or reads a clock; the controller (``server/controller.py``) runs these
on the Raft leader's state, and the state machine checks the records again when they apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from client.protocol import INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST, ApiError
from kraft.limits import INT32_MAX, REPLICAS_COUNT_MAX
from kraft.records import NO_LEADER, PartitionChangeRecord
from kraft.state import MetadataState, PartitionState

# One request names at most this many partitions: a request that size still fits one
# metadata entry's record limit (kraft.limits.ENTRY_RECORDS_COUNT_MAX), so it applies whole.
REASSIGNMENT_PARTITIONS_MAX = 1000


@dataclass(frozen=True)
class ReassignmentRequest:
    """One entry of ``POST /v1/reassignments``: a target replica list, or None to cancel."""

    topic: str
    partition: int
    replicas: tuple[int, ...] | None


def parse_request(body: Any) -> list[ReassignmentRequest]:
    """The entries of a ``POST /v1/reassignments`` body, or INVALID_REQUEST naming what is
    wrong with its shape (the replica lists' contents are checked against the state later)."""
    if not isinstance(body, dict) or set(body) != {"partitions"}:
        raise ApiError(
            INVALID_REQUEST,
            'give {"partitions": [{"topic": T, "partition": N, "replicas": [ids] or null}]}',
        )
    items = body["partitions"]
    if not isinstance(items, list) or not items:
        raise ApiError(INVALID_REQUEST, "partitions must be a non-empty list")
    if len(items) > REASSIGNMENT_PARTITIONS_MAX:
        raise ApiError(
            INVALID_REQUEST,
            f"a request moves at most {REASSIGNMENT_PARTITIONS_MAX} partitions, got {len(items)}",
        )
    out: list[ReassignmentRequest] = []
    seen: set[tuple[str, int]] = set()
    for n, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"topic", "partition", "replicas"}:
            raise ApiError(
                INVALID_REQUEST,
                f"partitions[{n}] must be an object with topic, partition and replicas",
            )
        topic, partition, replicas = item["topic"], item["partition"], item["replicas"]
        if not isinstance(topic, str) or not topic:
            raise ApiError(INVALID_REQUEST, f"partitions[{n}].topic must be a topic name")
        if not _is_int(partition, 0, INT32_MAX):
            raise ApiError(INVALID_REQUEST, f"partitions[{n}].partition must be an integer >= 0")
        if replicas is not None:
            if not isinstance(replicas, list) or not all(
                _is_int(r, 0, INT32_MAX) for r in replicas
            ):
                raise ApiError(
                    INVALID_REQUEST,
                    f"partitions[{n}].replicas must be a list of broker ids or null (cancel)",
                )
            if len(replicas) > REPLICAS_COUNT_MAX:
                raise ApiError(
                    INVALID_REPLICA_ASSIGNMENT,
                    f"replica assignment of {topic}-{partition} names {len(replicas)} "
                    f"replicas, more than {REPLICAS_COUNT_MAX}",
                )
        if (topic, partition) in seen:
            raise ApiError(
                INVALID_REQUEST, f"partition {topic}-{partition} is named twice in the request"
            )
        seen.add((topic, partition))
        out.append(
            ReassignmentRequest(topic, partition, None if replicas is None else tuple(replicas))
        )
    return out


def _is_int(value: object, low: int, high: int) -> bool:
    # A bool is an int to Python, and JSON's true is not a broker id.
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_target(state: MetadataState, name: str, partition: int, target: Sequence[int]) -> None:
    """Kafka's validateManualPartitionAssignment: INVALID_REPLICA_ASSIGNMENT for an empty
    list, a repeated broker, or a broker that is not registered (a fenced one is allowed)."""
    shown = f"replica assignment {list(target)} of {name}-{partition}"
    if not target:
        raise ApiError(INVALID_REPLICA_ASSIGNMENT, f"{shown} is empty")
    duplicates = sorted({r for r in target if target.count(r) > 1})
    if duplicates:
        raise ApiError(INVALID_REPLICA_ASSIGNMENT, f"{shown} has duplicate replicas {duplicates}")
    unknown = sorted(r for r in set(target) if r not in state.brokers)
    if unknown:
        raise ApiError(
            INVALID_REPLICA_ASSIGNMENT, f"{shown} names brokers {unknown} that are not registered"
        )


def original_replicas(p: PartitionState) -> tuple[int, ...]:
    """The replicas before the move (all of them when nothing moves)."""
    return tuple(r for r in p.replicas if r not in p.adding_replicas)


def target_replicas(p: PartitionState) -> tuple[int, ...]:
    """The replicas the move goes to (all of them when nothing moves)."""
    return tuple(r for r in p.replicas if r not in p.removing_replicas)


@dataclass(frozen=True)
class Move:
    """The merged replica list of a move and its adding and removing replicas."""

    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


def merge(original: Sequence[int], target: Sequence[int]) -> Move:
    """Kafka's PartitionReassignmentReplicas: the target, then the original replicas that are
    not in it; adding and removing sorted."""
    replicas = tuple(target) + tuple(r for r in original if r not in target)
    return Move(
        replicas,
        tuple(sorted(set(target) - set(original))),
        tuple(sorted(set(original) - set(target))),
    )


def completed(
    replicas: Sequence[int], adding: Sequence[int], removing: Sequence[int], isr: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Kafka's maybeCompleteReassignment: the replicas and ISR once a move completes, or None
    while it cannot (nothing moves, or the ISR without the removing replicas is empty or lacks
    a target replica)."""
    if not adding and not removing:
        return None
    target = tuple(r for r in replicas if r not in removing)
    new_isr = tuple(r for r in isr if r not in removing)
    if not new_isr or not set(target) <= set(new_isr):
        return None
    return target, new_isr


def elect_leader(replicas: Sequence[int], isr: Sequence[int], live: set[int]) -> int:
    """Kafka's clean election: the first replica, in replica order, that is in the ISR and
    live (an unfenced broker); NO_LEADER when none is (an unclean election is off)."""
    return next((r for r in replicas if r in isr and r in live), NO_LEADER)


def build_change(
    p: PartitionState,
    live: set[int],
    *,
    replicas: tuple[int, ...] | None = None,
    isr: tuple[int, ...] | None = None,
    adding: tuple[int, ...] | None = None,
    removing: tuple[int, ...] | None = None,
) -> PartitionChangeRecord | None:
    """Kafka's PartitionChangeBuilder: the record that gives ``p`` the new lists (None =
    unchanged), completing its move when the ISR allows it and electing a leader
    (:func:`elect_leader` over the new replicas and ISR) when the leader would leave the ISR
    or is not live (fenced). A partition with no leader keeps none (the controller's
    leaderless election gives it one). None when nothing would change. The ISR changes of
    moves, of AlterPartition and of a fenced broker all go through it."""
    replicas = p.replicas if replicas is None else replicas
    isr = p.isr if isr is None else isr
    adding = p.adding_replicas if adding is None else adding
    removing = p.removing_replicas if removing is None else removing
    done = completed(replicas, adding, removing, isr)
    if done is not None:
        replicas, isr = done
        adding = removing = ()
    leader = p.leader
    if leader != NO_LEADER and (leader not in isr or leader not in live):
        leader = elect_leader(replicas, isr, live)
    if (replicas, isr, adding, removing, leader) == (
        p.replicas,
        p.isr,
        p.adding_replicas,
        p.removing_replicas,
        p.leader,
    ):
        return None
    return PartitionChangeRecord(
        p.topic_id,
        p.partition,
        leader=None if leader == p.leader else leader,
        isr=None if isr == p.isr else isr,
        replicas=None if replicas == p.replicas else replicas,
        adding_replicas=None if adding == p.adding_replicas else adding,
        removing_replicas=None if removing == p.removing_replicas else removing,
    )


def _unclean(name: str, p: PartitionState) -> ApiError:
    return ApiError(
        INVALID_REPLICA_ASSIGNMENT,
        f"Unable to revert partition assignment for {name}:{p.partition} because it would "
        "require an unclean leader election.",
    )


def plan_move(
    name: str, p: PartitionState, target: tuple[int, ...], live: set[int]
) -> PartitionChangeRecord | None:
    """The record that starts (or replaces, or at once completes) the move of ``p`` to
    ``target`` (checked already by :func:`check_target`); None when ``p`` is there already."""
    move = merge(original_replicas(p), target)
    # The adding replicas of a replaced move that the new one does not want leave now.
    dropped = set(p.replicas) - set(move.replicas)
    isr = tuple(r for r in p.isr if r not in dropped)
    if not isr:
        raise _unclean(name, p)
    return build_change(
        p, live, replicas=move.replicas, isr=isr, adding=move.adding, removing=move.removing
    )


def plan_cancel(name: str, p: PartitionState, live: set[int]) -> PartitionChangeRecord | None:
    """The record that reverts the move of ``p`` (Kafka's PartitionReassignmentRevert): the
    original replicas, the ISR without the adding ones. ``p`` must be moving."""
    assert p.moving, "the caller answers NO_REASSIGNMENT_IN_PROGRESS"
    isr = tuple(r for r in p.isr if r not in p.adding_replicas)
    if not isr:
        raise _unclean(name, p)
    return build_change(p, live, replicas=original_replicas(p), isr=isr, adding=(), removing=())


def describe(name: str, p: PartitionState) -> dict[str, Any]:
    """One entry of ``GET /v1/reassignments``."""
    return {
        "topic": name,
        "partition": p.partition,
        "replicas": list(p.replicas),
        "adding_replicas": list(p.adding_replicas),
        "removing_replicas": list(p.removing_replicas),
    }
