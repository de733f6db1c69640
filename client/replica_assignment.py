"""Replica placement: Kafka's ``AdminUtils.assignReplicasToBrokers``, and the controller's
balanced use of it.

Pure functions, no I/O, importing nothing of ours (like :mod:`client.protocol`), so that the
controller (topic creation, new partitions) and ``kraft-reassign-partitions --generate`` place
replicas the same way.

Kafka's placement has three goals: spread the replicas evenly over the brokers; spread the
other replicas of the partitions a broker leads over the other brokers; and, when every broker
has a rack, put a partition's replicas on different racks where possible.

Rack-unaware (no broker has a rack)
    The first replica of partition ``p`` is ``brokers[(p + start_index) % n]`` (round robin);
    replica ``j + 1`` sits ``1 + (shift + j) % (n - 1)`` places after it, where ``shift``
    (``next_replica_shift``) grows by one each time ``p`` passes a multiple of ``n``, so that
    a second round does not repeat the first round's replica sets.

Rack-aware (every broker has a rack)
    The same round robin over a *rack-alternated* list (one broker of each rack in turn:
    racks ``a: 1, 2``, ``b: 3``, ``c: 4, 5`` give ``1, 3, 4, 2, 5``); each next replica is the
    next broker on that list, from the shifted position, that is on a rack without a replica
    of the partition yet (until every rack has one) and is not already a replica (until every
    broker is one).

Some brokers with a rack and some without is an error (:class:`PlacementError`), as in Kafka.

Balance (issue 16 §6: new topics prefer the brokers with the fewest replicas)
    :func:`balanced_assignment` is the controller's use: it orders the brokers by how many
    replicas they hold (fewest first; ties in an order drawn from the caller's ``rng``), and
    runs the placement above on that order with start index 0 and shift 0, numbering the new
    partitions from ``first_partition``. So the first new partition's replicas go to the
    emptiest brokers, the next ones round robin down the list, and a full round still gives
    every broker the same share. With racks, the racks are ordered by their emptiest broker
    (then the rng), and each rack's brokers by their count (then the rng).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

__all__ = [
    "PlacementError",
    "NO_RACK_INFORMATION",
    "assign_replicas",
    "balanced_assignment",
    "rack_alternated_brokers",
]

# Kafka's words (AdminUtils) when some brokers have a rack and some do not.
NO_RACK_INFORMATION = "Not all brokers have rack information for replica rack aware assignment."


class PlacementError(ValueError):
    """A placement that cannot be made: Kafka's message in ``message``, and ``kind`` its
    error name (INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, or INVALID_REPLICA_ASSIGNMENT
    for the missing rack information)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _check(brokers: Sequence[int], partitions: int, replication_factor: int) -> None:
    if partitions <= 0:
        raise PlacementError("INVALID_PARTITIONS", "Number of partitions must be larger than 0.")
    if replication_factor <= 0:
        raise PlacementError(
            "INVALID_REPLICATION_FACTOR", "Replication factor must be larger than 0."
        )
    if replication_factor > len(brokers):
        raise PlacementError(
            "INVALID_REPLICATION_FACTOR",
            f"Replication factor: {replication_factor} larger than available brokers: "
            f"{len(brokers)}.",
        )
    if len(set(brokers)) != len(brokers):
        raise ValueError(f"brokers must be distinct, got {list(brokers)}")  # a caller's bug


def _rack_aware(racks: Mapping[int, str | None], brokers: Sequence[int]) -> bool:
    """True when every broker has a rack, False when none has; PlacementError otherwise."""
    with_rack = sum(1 for b in brokers if racks.get(b) is not None)
    if with_rack == 0:
        return False
    if with_rack != len(brokers):
        raise PlacementError("INVALID_REPLICA_ASSIGNMENT", NO_RACK_INFORMATION)
    return True


def _replica_index(first: int, shift: int, j: int, count: int) -> int:
    return (first + 1 + (shift + j) % (count - 1)) % count


def _unaware(
    brokers: Sequence[int],
    partitions: int,
    replication_factor: int,
    start_index: int,
    next_replica_shift: int,
    first_partition: int,
) -> dict[int, tuple[int, ...]]:
    count = len(brokers)
    shift = next_replica_shift
    out: dict[int, tuple[int, ...]] = {}
    for partition in range(first_partition, first_partition + partitions):
        if partition > 0 and partition % count == 0:
            shift += 1
        first = (partition + start_index) % count
        replicas = [brokers[first]]
        for j in range(replication_factor - 1):
            replicas.append(brokers[_replica_index(first, shift, j, count)])
        out[partition] = tuple(replicas)
    return out


def _aware(
    arranged: Sequence[int],
    racks: Mapping[int, str | None],
    partitions: int,
    replication_factor: int,
    start_index: int,
    next_replica_shift: int,
    first_partition: int,
) -> dict[int, tuple[int, ...]]:
    count = len(arranged)
    rack_count = len({racks[b] for b in arranged})
    shift = next_replica_shift
    out: dict[int, tuple[int, ...]] = {}
    for partition in range(first_partition, first_partition + partitions):
        if partition > 0 and partition % count == 0:
            shift += 1
        first = (partition + start_index) % count
        leader = arranged[first]
        replicas = [leader]
        racks_used = {racks[leader]}
        brokers_used = {leader}
        k = 0
        for _ in range(replication_factor - 1):
            while True:
                broker = arranged[_replica_index(first, shift * rack_count, k, count)]
                rack = racks[broker]
                k += 1
                # Skip a broker on a rack that already has a replica while some rack has none,
                # and a broker that already is a replica while some broker is not.
                if (rack not in racks_used or len(racks_used) == rack_count) and (
                    broker not in brokers_used or len(brokers_used) == count
                ):
                    replicas.append(broker)
                    racks_used.add(rack)
                    brokers_used.add(broker)
                    break
        out[partition] = tuple(replicas)
    return out


def rack_alternated_brokers(
    racks: Mapping[int, str | None], rack_order: Sequence[str] | None = None
) -> list[int]:
    """Kafka's ``getRackAlternatedBrokerList``: one broker of each rack in turn, racks in
    ``rack_order`` (default: sorted by name), each rack's brokers in the mapping's order
    when ``rack_order`` is given, else sorted by id. ``0: r1, 1: r3, 2: r3, 3: r2, 4: r2,
    5: r1`` gives ``0, 3, 1, 5, 4, 2``."""
    by_rack: dict[str, list[int]] = {}
    for broker, rack in racks.items():
        if rack is None:
            raise PlacementError("INVALID_REPLICA_ASSIGNMENT", NO_RACK_INFORMATION)
        by_rack.setdefault(rack, []).append(broker)
    if rack_order is None:
        rack_order = sorted(by_rack)
        for members in by_rack.values():
            members.sort()
    assert sorted(rack_order) == sorted(by_rack), "rack_order names every rack once"
    queues = [list(reversed(by_rack[rack])) for rack in rack_order]
    out: list[int] = []
    while len(out) < len(racks):
        for queue in queues:
            if queue:
                out.append(queue.pop())
    return out


def assign_replicas(
    brokers: Sequence[int],
    racks: Mapping[int, str | None],
    partitions: int,
    replication_factor: int,
    *,
    start_index: int = -1,
    next_replica_shift: int = -1,
    first_partition: int = 0,
    rng: random.Random | None = None,
) -> dict[int, tuple[int, ...]]:
    """Kafka's ``AdminUtils.assignReplicasToBrokers``: partition -> replicas (the first is the
    preferred leader) for ``partitions`` partitions numbered from ``first_partition``.

    ``brokers`` is the broker list in Kafka's order (its callers sort it); ``racks`` maps a
    broker to its rack or None (a missing broker counts as None). A negative ``start_index``
    or ``next_replica_shift`` is drawn from ``rng``, as Kafka draws them; Kafka's fixed start
    index sets both, which is ``start_index=i, next_replica_shift=i`` here. Raises
    PlacementError with Kafka's message for a count below 1, a replication factor above the
    brokers, or rack information on some brokers only.
    """
    _check(brokers, partitions, replication_factor)
    aware = _rack_aware(racks, brokers)
    ordered = rack_alternated_brokers({b: racks[b] for b in brokers}) if aware else list(brokers)
    draw = rng if rng is not None else random.Random()
    start = start_index if start_index >= 0 else draw.randrange(len(ordered))
    shift = next_replica_shift if next_replica_shift >= 0 else draw.randrange(len(ordered))
    first = max(0, first_partition)
    if aware:
        return _aware(ordered, racks, partitions, replication_factor, start, shift, first)
    return _unaware(ordered, partitions, replication_factor, start, shift, first)


def balanced_assignment(
    brokers: Sequence[int],
    racks: Mapping[int, str | None],
    replica_counts: Mapping[int, int],
    partitions: int,
    replication_factor: int,
    *,
    first_partition: int = 0,
    rng: random.Random,
) -> dict[int, tuple[int, ...]]:
    """The controller's placement of new partitions (see the module's docstring, Balance):
    Kafka's placement over ``brokers`` ordered by ``replica_counts`` (a broker not in it
    holds none), fewest first, ties in an order drawn from ``rng``; start index and shift 0;
    partitions numbered from ``first_partition``. Deterministic given the rng's state.
    Raises PlacementError as :func:`assign_replicas` does."""
    _check(brokers, partitions, replication_factor)
    aware = _rack_aware(racks, brokers)
    # One draw per broker, in id order, so the result depends on the rng and the counts only.
    tie = {b: rng.random() for b in sorted(brokers)}
    by_load = sorted(brokers, key=lambda b: (replica_counts.get(b, 0), tie[b]))
    if aware:
        emptiest: dict[str, tuple[int, float]] = {}
        for b in by_load:  # the first broker seen of a rack is its emptiest
            emptiest.setdefault(str(racks[b]), (replica_counts.get(b, 0), tie[b]))
        rack_order = sorted(emptiest, key=lambda r: emptiest[r])
        ordered = rack_alternated_brokers({b: racks[b] for b in by_load}, rack_order)
        placed = _aware(ordered, racks, partitions, replication_factor, 0, 0, 0)
    else:
        placed = _unaware(by_load, partitions, replication_factor, 0, 0, 0)
    return {first_partition + p: replicas for p, replicas in placed.items()}
