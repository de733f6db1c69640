"""Replica placement: Kafka's AdminUtils.assignReplicasToBrokers (its AdminRackAwareTest
expectations where they are deterministic) and the controller's balanced use of it."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping

import pytest

from client.replica_assignment import (
    NO_RACK_INFORMATION,
    PlacementError,
    assign_replicas,
    balanced_assignment,
    rack_alternated_brokers,
)

Assignment = Mapping[int, tuple[int, ...]]

# Kafka's AdminRackAwareTest mappings.
SIX_ON_THREE_RACKS = {0: "rack1", 1: "rack2", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack1"}
UNEVEN_RACKS = {0: "rack1", 1: "rack1", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack1"}


def kafka(
    racks: Mapping[int, str | None],
    partitions: int,
    factor: int,
    fixed_start: int = -1,
    start_partition: int = -1,
    seed: int = 0,
) -> Assignment:
    """Kafka's call: brokers sorted by id, a fixed start index setting start and shift."""
    return assign_replicas(
        sorted(racks),
        racks,
        partitions,
        factor,
        start_index=fixed_start,
        next_replica_shift=fixed_start,
        first_partition=start_partition,
        rng=random.Random(seed),
    )


def check_distribution(
    assignment: Assignment,
    racks: Mapping[int, str],
    partitions: int,
    factor: int,
    *,
    rack_aware: bool = True,
    leaders_even: bool = True,
    replicas_even: bool = True,
) -> None:
    """Kafka's RackAwareTest.checkReplicaDistribution."""
    assert len(assignment) == partitions
    for replicas in assignment.values():
        assert len(set(replicas)) == len(replicas) == factor
    if rack_aware:
        for replicas in assignment.values():
            assert len({racks[b] for b in replicas}) == factor
    if leaders_even:
        leaders = Counter(replicas[0] for replicas in assignment.values())
        assert sorted(leaders.values()) == [partitions // len(racks)] * len(racks)
    if replicas_even:
        counts = Counter(b for replicas in assignment.values() for b in replicas)
        assert sorted(counts.values()) == [partitions * factor // len(racks)] * len(racks)


def test_rack_alternated_list_matches_kafkas() -> None:
    racks = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    assert rack_alternated_brokers(racks) == [0, 3, 1, 5, 4, 2]
    del racks[5]
    assert rack_alternated_brokers(racks) == [0, 3, 1, 4, 2]


def test_rack_aware_assignment_with_fixed_start_matches_kafkas_table() -> None:
    racks = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}
    assert kafka(racks, 7, 3, fixed_start=0, start_partition=0) == {
        0: (0, 3, 1),
        1: (3, 1, 5),
        2: (1, 5, 4),
        3: (5, 4, 2),
        4: (4, 2, 0),
        5: (2, 0, 3),
        6: (0, 4, 2),
    }


def test_rack_unaware_assignment_with_fixed_start_matches_kafkas_table() -> None:
    racks: dict[int, str | None] = {b: None for b in range(5)}
    assert kafka(racks, 10, 3, fixed_start=0) == {
        0: (0, 1, 2),
        1: (1, 2, 3),
        2: (2, 3, 4),
        3: (3, 4, 0),
        4: (4, 0, 1),
        5: (0, 2, 3),
        6: (1, 3, 4),
        7: (2, 4, 0),
        8: (3, 0, 1),
        9: (4, 1, 2),
    }


@pytest.mark.parametrize(
    ("racks", "partitions", "factor", "fixed_start", "start_partition", "even"),
    [
        (SIX_ON_THREE_RACKS, 6, 3, 2, 0, (True, True)),  # testAssignmentWithRackAware
        (SIX_ON_THREE_RACKS, 13, 3, 0, 0, (False, False)),  # ...WithUnevenReplicas
        (UNEVEN_RACKS, 12, 3, -1, -1, (True, False)),  # ...WithUnevenRacks
        (SIX_ON_THREE_RACKS, 12, 2, -1, -1, (True, True)),  # ...With2ReplicasRackAware
        (SIX_ON_THREE_RACKS, 6, 2, -1, -1, (True, True)),  # ...With6Partitions
        ({0: "rack1", 1: "rack2", 4: "rack3"}, 3, 2, -1, -1, (True, True)),  # ...And3Brokers
        (  # testRackAwareExpansion
            {6: "rack1", 7: "rack2", 8: "rack2", 9: "rack3", 10: "rack3", 11: "rack1"},
            12,
            2,
            -1,
            12,
            (True, True),
        ),
        (  # testLargeNumberPartitionsAssignment
            {
                **SIX_ON_THREE_RACKS,
                6: "rack1",
                7: "rack2",
                8: "rack2",
                9: "rack3",
                10: "rack1",
                11: "rack3",
            },
            96,
            3,
            -1,
            -1,
            (True, True),
        ),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_rack_aware_placement_spreads_replicas_over_racks_and_brokers(
    racks: dict[int, str],
    partitions: int,
    factor: int,
    fixed_start: int,
    start_partition: int,
    even: tuple[bool, bool],
    seed: int,
) -> None:
    assignment = kafka(racks, partitions, factor, fixed_start, start_partition, seed)
    if start_partition > 0:
        assert sorted(assignment) == list(range(start_partition, start_partition + partitions))
    check_distribution(
        assignment, racks, partitions, factor, leaders_even=even[0], replicas_even=even[1]
    )


def test_more_replicas_than_racks_puts_a_replica_on_every_rack() -> None:
    racks = {0: "rack1", 1: "rack2", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack2"}
    for seed in range(4):
        for replicas in kafka(racks, 6, 5, seed=seed).values():
            assert len(replicas) == 5
            assert len({racks[b] for b in replicas}) == 3


def test_fewer_replicas_than_racks_puts_each_on_its_own_rack() -> None:
    racks = {0: "rack1", 1: "rack2", 2: "rack2", 3: "rack3", 4: "rack3", 5: "rack2"}
    for seed in range(4):
        for replicas in kafka(racks, 6, 2, seed=seed).values():
            assert len({racks[b] for b in replicas}) == 2


def test_single_rack_spreads_leaders_over_every_broker() -> None:
    racks = {b: "rack1" for b in range(6)}
    assignment = kafka(racks, 6, 3)
    assert Counter(replicas[0] for replicas in assignment.values()) == {b: 1 for b in range(6)}


def test_a_broker_is_skipped_once_it_holds_a_replica() -> None:
    # Kafka's testSkipBrokerWithReplicaAlreadyAssigned: 4 replicas over 3 racks.
    racks = {0: "a", 1: "b", 2: "c", 3: "a", 4: "a"}
    assignment = kafka(racks, 6, 4, fixed_start=2)
    check_distribution(
        assignment, racks, 6, 4, rack_aware=False, leaders_even=False, replicas_even=False
    )


@pytest.mark.parametrize(
    ("partitions", "factor", "kind", "message"),
    [
        (0, 1, "INVALID_PARTITIONS", "Number of partitions must be larger than 0."),
        (10, 0, "INVALID_REPLICATION_FACTOR", "Replication factor must be larger than 0."),
        (
            10,
            6,
            "INVALID_REPLICATION_FACTOR",
            "Replication factor: 6 larger than available brokers: 5.",
        ),
        (10, 5, "INVALID_REPLICA_ASSIGNMENT", NO_RACK_INFORMATION),
    ],
)
def test_bad_placements_raise_kafkas_errors(
    partitions: int, factor: int, kind: str, message: str
) -> None:
    racks = {0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: None}
    with pytest.raises(PlacementError) as caught:
        kafka(racks, partitions, factor)
    assert (caught.value.kind, caught.value.message) == (kind, message)


def test_balanced_placement_fills_the_emptiest_brokers_first() -> None:
    racks: dict[int, str | None] = {1: None, 2: None, 3: None, 4: None}
    counts = {1: 30, 2: 30, 3: 0, 4: 5}
    for seed in range(5):
        placed = balanced_assignment([1, 2, 3, 4], racks, counts, 1, 2, rng=random.Random(seed))
        assert placed == {0: (3, 4)}
        placed = balanced_assignment([1, 2, 3, 4], racks, counts, 2, 2, rng=random.Random(seed))
        assert {b for replicas in placed.values() for b in replicas} == {3, 4}
        placed = balanced_assignment(
            [1, 2, 3, 4], racks, counts, 7, 1, leader_counts=counts, rng=random.Random(seed)
        )
        leaders = [r[0] for r in placed.values()]
        assert leaders[:5] == [3] * 5 and set(leaders) == {3, 4}
        assert abs(leaders.count(3) - (5 + leaders.count(4))) <= 1


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("brokers", "partitions", "factor"), [(5, 10, 3), (4, 8, 2), (6, 6, 3)])
def test_balanced_placement_on_a_balanced_cluster_spreads_as_kafkas(
    seed: int, brokers: int, partitions: int, factor: int
) -> None:
    racks: dict[int, str | None] = {b: None for b in range(1, brokers + 1)}
    placed = balanced_assignment(
        list(racks), racks, {}, partitions, factor, rng=random.Random(seed)
    )
    assert all(len(set(replicas)) == factor for replicas in placed.values())
    leaders = Counter(replicas[0] for replicas in placed.values())
    assert sorted(leaders.values()) == [partitions // brokers] * brokers
    counts = Counter(b for replicas in placed.values() for b in replicas)
    assert sorted(counts.values()) == [partitions * factor // brokers] * brokers
    # Goal 2: a broker's partitions do not all share the same followers.
    if partitions // brokers > 1:
        for leader in racks:
            sets = {frozenset(r[1:]) for r in placed.values() if r[0] == leader}
            assert len(sets) > 1, (leader, placed)


def test_balanced_placement_evens_out_an_imbalance() -> None:
    racks: dict[int, str | None] = {b: None for b in range(1, 6)}
    counts = {1: 9, 3: 2}
    placed = balanced_assignment(
        list(racks), racks, counts, 10, 3, first_partition=4, rng=random.Random(1)
    )
    assert sorted(placed) == list(range(4, 14))
    total = Counter(counts)
    total.update(b for replicas in placed.values() for b in replicas)
    assert max(total.values()) - min(total.values()) <= 1
    assert all(len(set(replicas)) == 3 for replicas in placed.values())


def test_balanced_placement_is_deterministic_given_the_rng() -> None:
    racks: dict[int, str | None] = {b: None for b in range(1, 7)}
    first = balanced_assignment(list(racks), racks, {}, 6, 3, rng=random.Random(42))
    again = balanced_assignment(list(reversed(racks)), racks, {}, 6, 3, rng=random.Random(42))
    assert first == again
    others = {
        tuple(balanced_assignment(list(racks), racks, {}, 1, 1, rng=random.Random(seed))[0])
        for seed in range(20)
    }
    assert len(others) > 1, "ties are broken by the rng, so topics start on different brokers"


def test_balanced_placement_with_racks_spans_racks_from_the_emptiest() -> None:
    racks: dict[int, str | None] = {1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"}
    counts = {1: 10, 2: 10, 3: 10, 4: 1, 5: 10, 6: 10}
    for seed in range(5):
        placed = balanced_assignment(list(racks), racks, counts, 12, 3, rng=random.Random(seed))
        assert placed[0][0] == 4
        for replicas in placed.values():
            assert sorted(str(racks[b]) for b in replicas) == ["a", "b", "c"]


def test_balanced_placement_counts_brokers_without_a_rack_as_one_more_rack() -> None:
    # Kafka's controller (StripedReplicaPlacer) does the same: a broker added without
    # broker.rack must not stop topic creation, as AdminUtils' error would.
    racks: dict[int, str | None] = {1: "a", 2: "a", 3: "b", 4: None, 5: None}
    for seed in range(5):
        placed = balanced_assignment(list(racks), racks, {}, 6, 3, rng=random.Random(seed))
        for replicas in placed.values():
            assert len({racks[b] for b in replicas}) == 3


@pytest.mark.parametrize("seed", range(40))
def test_balanced_placement_keeps_its_rules_on_random_clusters(seed: int) -> None:
    rng = random.Random(seed)
    brokers = rng.sample(range(1, 40), rng.randint(1, 9))
    names = ["a", "b", "c", None][: rng.randint(1, 4)]
    racks = {b: rng.choice(names) for b in brokers}
    counts = {b: rng.randint(0, 20) for b in brokers if rng.random() < 0.7}
    if rng.random() < 0.4:
        counts = {}
    factor = rng.randint(1, len(brokers))
    partitions = rng.randint(1, 30)
    placed = balanced_assignment(brokers, racks, counts, partitions, factor, rng=random.Random(1))
    again = balanced_assignment(brokers, racks, counts, partitions, factor, rng=random.Random(1))
    assert placed == again
    rack_count = len(set(racks.values()))
    total = Counter(counts)
    for replicas in placed.values():
        assert len(set(replicas)) == len(replicas) == factor
        assert set(replicas) <= set(brokers)
        assert len({racks[b] for b in replicas}) == min(factor, rack_count)
        total.update(replicas)
    if rack_count == 1 and not counts:
        # From an even start the brokers stay even: their totals end within one.
        assert max(total[b] for b in brokers) - min(total[b] for b in brokers) <= 1
