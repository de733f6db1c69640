"""Replica placement: Kafka's ``AdminUtils.assignReplicasToBrokers`` (what
``kraft-reassign-partitions --generate`` proposes, as Kafka's tool does), and the controller's
balanced placement of new topics and partitions, which follows the same goals.

Pure functions, no I/O, importing nothing of ours (like :mod:`client.protocol`), so that the
tool and the controller share them.

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
    :func:`balanced_assignment` is the controller's placement. On brokers that all hold the
    same number of replicas (a new cluster, say) it is Kafka's placement above, its random
    start and shift drawn from the caller's ``rng``: Kafka's even spread of replicas and
    leaders. Otherwise Kafka's round robin would ignore the imbalance, so the controller
    fills greedily, one partition at a time, counting the replicas it has placed so far:

    - the leader (first replica) is, among the brokers within one replica of the emptiest,
      the one that is the preferred leader of the fewest partitions, then the one with the
      fewest replicas, then the first in a rotating order;
    - each other replica is the broker with the fewest replicas among those that are not yet
      a replica of the partition and, while some rack has no replica of it, on such a rack,
      then the first in a rotating order that starts after the leader.

    The rotating order is a permutation of the brokers drawn from the ``rng`` (one shuffle of
    the sorted ids), turned by one for each partition; the followers' order turns once more
    every full round, as Kafka's replica shift does. So new replicas go to the emptiest
    brokers until they catch up, leaders stay spread, and a plan is deterministic given the
    rng's state. Brokers without a rack, when others have one, count as one more rack (and
    the greedy fill is used): unlike Kafka's tool (AdminUtils) and like Kafka's controller
    (StripedReplicaPlacer), that is no error, so adding a broker without ``broker.rack``
    never stops topic creation.
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
    return _interleave([by_rack[rack] for rack in rack_order])


def _interleave(groups: Sequence[Sequence[int]]) -> list[int]:
    """The first of each group in turn, then the second of each, and so on."""
    queues = [list(reversed(group)) for group in groups]
    out: list[int] = []
    while any(queues):
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
    leader_counts: Mapping[int, int] | None = None,
    first_partition: int = 0,
    rng: random.Random,
) -> dict[int, tuple[int, ...]]:
    """The controller's placement of new partitions (see the module's docstring, Balance):
    partition -> replicas for ``partitions`` partitions numbered from ``first_partition``,
    Kafka's placement when every broker holds as many replicas (``replica_counts``; a broker
    not in it holds none), else filling the brokers with the fewest replicas and, among
    those, the fewest preferred leaderships (``leader_counts``) first, over racks where
    brokers have one. Deterministic given the rng's state. Raises PlacementError
    as :func:`assign_replicas` does for a count or factor out of range."""
    _check(brokers, partitions, replication_factor)
    ids = sorted(brokers)
    with_rack = sum(1 for b in ids if racks.get(b) is not None)
    if len({replica_counts.get(b, 0) for b in ids}) == 1 and with_rack in (0, len(ids)):
        # Even brokers: Kafka's own placement keeps them even, leaders too.
        return assign_replicas(
            ids, racks, partitions, replication_factor, first_partition=first_partition, rng=rng
        )
    count = len(ids)
    order = list(ids)
    rng.shuffle(order)
    position = {b: n for n, b in enumerate(order)}
    held = {b: replica_counts.get(b, 0) for b in ids}
    leading = {b: (leader_counts or {}).get(b, 0) for b in ids}
    rack_of = {b: racks.get(b) for b in ids}  # None: no rack, one more rack here
    rack_count = len(set(rack_of.values()))
    out: dict[int, tuple[int, ...]] = {}
    for n in range(partitions):
        # The leader: among the brokers within one replica of the emptiest, the one leading
        # the fewest, then the fewest replicas, then the rotating order.
        low = min(held.values())
        leader = min(
            (b for b in ids if held[b] <= low + 1),
            key=lambda b: (leading[b], held[b], (position[b] - n) % count),
        )
        replicas = [leader]
        racks_used = {rack_of[leader]}
        # The followers' order starts after the leader and turns once more every full round
        # (Kafka's replica shift), so a broker's partitions vary their followers.
        origin = position[leader] + 1 + n // count
        for _ in range(replication_factor - 1):
            fresh_rack = len(racks_used) < rack_count
            follower = min(
                (
                    b
                    for b in ids
                    if b not in replicas and not (fresh_rack and rack_of[b] in racks_used)
                ),
                key=lambda b: (held[b], (position[b] - origin) % count),
            )
            replicas.append(follower)
            racks_used.add(rack_of[follower])
        for b in replicas:
            held[b] += 1
        leading[leader] += 1
        out[first_partition + n] = tuple(replicas)
    return out
