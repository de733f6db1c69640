"""Server-side assignors of Kafka 4's consumer protocol (KIP-848): who should own which
partition. Pure functions of the members' subscriptions, the topics and the previous target.

- ``range`` is Kafka's RangeAssignor: for each topic, the members subscribed to it, sorted by
  member id, get consecutive ranges of its partitions; the first ``partitions % members`` of
  them get one more. Two topics of equal size are thus co-partitioned: the member that gets
  partition 0 of one gets partition 0 of the other.
- ``uniform`` is Kafka's default: partitions spread as evenly as the subscriptions allow (no
  member owns two more than another member that could take one of them), and sticky: a
  member keeps what it had in the previous target as far as balance allows, so a member
  joining or leaving moves only the partitions that must move.

An assignment maps member id -> topic name -> sorted partition numbers; members with nothing
map to an empty dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

Assignment = dict[str, dict[str, tuple[int, ...]]]

RANGE = "range"
UNIFORM = "uniform"


def assign(
    assignor: str,
    subscriptions: Mapping[str, Set[str]],
    partition_counts: Mapping[str, int],
    previous: Mapping[str, Mapping[str, Set[int]]],
) -> Assignment:
    """The target assignment by ``assignor`` (``range`` or ``uniform``). ``subscriptions``
    maps each member to the topic names it subscribes to, ``partition_counts`` each existing
    topic to its partition count (subscribed topics missing from it are ignored), ``previous``
    is the target before (only ``uniform`` uses it)."""
    if assignor == RANGE:
        return assign_range(subscriptions, partition_counts)
    if assignor == UNIFORM:
        return assign_uniform(subscriptions, partition_counts, previous)
    raise ValueError(f"unknown assignor {assignor!r}")


def _freeze(owned: Mapping[str, dict[str, set[int]]]) -> Assignment:
    return {
        member: {topic: tuple(sorted(ps)) for topic, ps in sorted(topics.items()) if ps}
        for member, topics in owned.items()
    }


def assign_range(
    subscriptions: Mapping[str, Set[str]], partition_counts: Mapping[str, int]
) -> Assignment:
    owned: dict[str, dict[str, set[int]]] = {member: {} for member in subscriptions}
    topics = sorted({t for subscribed in subscriptions.values() for t in subscribed})
    for topic in topics:
        count = partition_counts.get(topic)
        if not count:
            continue
        members = sorted(m for m, subscribed in subscriptions.items() if topic in subscribed)
        quota, extra = divmod(count, len(members))
        start = 0
        for i, member in enumerate(members):
            size = quota + (1 if i < extra else 0)
            if size:
                owned[member][topic] = set(range(start, start + size))
            start += size
    return _freeze(owned)


def assign_uniform(
    subscriptions: Mapping[str, Set[str]],
    partition_counts: Mapping[str, int],
    previous: Mapping[str, Mapping[str, Set[int]]],
) -> Assignment:
    members = sorted(subscriptions)
    owner: dict[tuple[str, int], str] = {}
    owned: dict[str, set[tuple[str, int]]] = {m: set() for m in members}

    def eligible(member: str, tp: tuple[str, int]) -> bool:
        return tp[0] in subscriptions[member]

    # 1. Keep what each member had, where it is still valid and not claimed twice.
    for member in members:
        for topic, partitions in sorted(previous.get(member, {}).items()):
            count = partition_counts.get(topic, 0)
            for p in sorted(partitions):
                tp = (topic, p)
                if p < count and eligible(member, tp) and tp not in owner:
                    owner[tp] = member
                    owned[member].add(tp)

    # 2. Every unowned partition goes to the eligible member owning the fewest.
    wanted = sorted(
        (topic, p)
        for topic in {t for subscribed in subscriptions.values() for t in subscribed}
        for p in range(partition_counts.get(topic, 0))
    )
    for tp in wanted:
        if tp in owner:
            continue
        candidates = [m for m in members if eligible(m, tp)]
        if candidates:
            chosen = min(candidates, key=lambda m: (len(owned[m]), m))
            owner[tp] = chosen
            owned[chosen].add(tp)

    # 3. Balance: move a partition from a member owning at least two more than an eligible
    # other, until none can move. Each move lowers the sum of squared counts, so this ends.
    moved = True
    while moved:
        moved = False
        for giver in sorted(members, key=lambda m: (-len(owned[m]), m)):
            for tp in sorted(owned[giver], reverse=True):
                takers = [
                    m
                    for m in members
                    if m != giver and eligible(m, tp) and len(owned[m]) + 1 < len(owned[giver])
                ]
                if takers:
                    taker = min(takers, key=lambda m: (len(owned[m]), m))
                    owned[giver].discard(tp)
                    owned[taker].add(tp)
                    owner[tp] = taker
                    moved = True
                    break
            if moved:
                break

    by_topic: dict[str, dict[str, set[int]]] = {m: {} for m in members}
    for member, tps in owned.items():
        for topic, p in tps:
            by_topic[member].setdefault(topic, set()).add(p)
    return _freeze(by_topic)
