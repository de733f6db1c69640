"""Partition reassignment (KIP-455): the records' move fields, the state's rules and
snapshots, and the controller's plans: start, replace, complete on ISR expansion, cancel."""

from __future__ import annotations

import orjson
import pytest

from client.protocol import ApiError
from kraft.errors import IllegalRecordError, MetadataRecordError
from kraft.records import (
    FenceBrokerRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    decode,
    encode,
)
from kraft.state import MetadataState, PartitionState
from server import controller, reassignment
from server.reassignment import ReassignmentRequest

TOPIC_ID = "x5Ujx2PtQ1C2rkC8-XNMZA"


def cluster(
    replicas: tuple[int, ...], *, brokers: int = 5, isr: tuple[int, ...] | None = None
) -> MetadataState:
    """A state with brokers 1..``brokers`` (unfenced) and topic ``t`` of one partition."""
    state = MetadataState()
    records: list[MetadataRecord] = []
    for i in range(1, brokers + 1):
        records.append(RegisterBrokerRecord(i, f"inc{i}", 0, f"http://h:{9000 + i}", f"h:{i}"))
        records.append(UnfenceBrokerRecord(i, 0))
    records.append(TopicRecord("t", TOPIC_ID))
    in_sync = replicas if isr is None else isr
    records.append(PartitionRecord(TOPIC_ID, 0, replicas, in_sync, in_sync[0], 0, 0))
    state.apply_entry(1, records)
    return state


def part(state: MetadataState) -> PartitionState:
    return state.topics["t"].partitions[0]


def alter(
    state: MetadataState, *moves: tuple[int, tuple[int, ...] | None], topic: str = "t"
) -> tuple[list[MetadataRecord], list[controller.ReassignmentOutcome]]:
    requests = [ReassignmentRequest(topic, p, replicas) for p, replicas in moves]
    return controller.plan_alter_reassignments(state, requests)


def apply(state: MetadataState, records: list[MetadataRecord]) -> None:
    if records:
        state.apply_entry(state.applied_index + 1, records)


def isr_change(state: MetadataState, isr: tuple[int, ...]) -> list[MetadataRecord]:
    p = part(state)
    return controller.plan_alter_isr(
        state, TOPIC_ID, 0, p.leader, p.leader_epoch, isr, p.partition_epoch
    )


# -- records -------------------------------------------------------------------------------------


def test_partition_record_move_fields_must_be_within_replicas_and_disjoint() -> None:
    ok = PartitionRecord(TOPIC_ID, 0, (1, 2, 4, 3), (1, 2, 3), 1, 0, 0, (4,), (3,))
    assert ok.adding_replicas == (4,)
    with pytest.raises(MetadataRecordError, match=r"adding_replicas \[5\] is not within"):
        PartitionRecord(TOPIC_ID, 0, (1, 2), (1, 2), 1, 0, 0, (5,), ())
    with pytest.raises(MetadataRecordError, match="both adding and removing"):
        PartitionRecord(TOPIC_ID, 0, (1, 2, 3), (1, 2), 1, 0, 0, (3,), (3,))
    with pytest.raises(MetadataRecordError, match="would leave no replica"):
        PartitionRecord(TOPIC_ID, 0, (1, 2), (1, 2), 1, 0, 0, (), (1, 2))
    with pytest.raises(MetadataRecordError, match="distinct"):
        PartitionRecord(TOPIC_ID, 0, (1, 2, 3), (1, 2), 1, 0, 0, (3, 3), ())


def test_partition_change_record_checks_the_move_against_its_own_replicas() -> None:
    with pytest.raises(MetadataRecordError, match="not within"):
        PartitionChangeRecord(TOPIC_ID, 0, replicas=(1, 2), adding_replicas=(3,))
    with pytest.raises(MetadataRecordError, match="changes nothing"):
        PartitionChangeRecord(TOPIC_ID, 0)
    assert PartitionChangeRecord(TOPIC_ID, 0, adding_replicas=()).adding_replicas == ()


def test_records_without_a_move_keep_their_old_bytes_and_old_bytes_still_decode() -> None:
    record = PartitionRecord(TOPIC_ID, 0, (1, 2), (1, 2), 1, 0, 0)
    as_json = orjson.loads(encode([record]))["records"][0]
    assert "adding_replicas" not in as_json and "removing_replicas" not in as_json
    assert decode(encode([record])) == [record]
    change = PartitionChangeRecord(TOPIC_ID, 0, isr=(1,))
    assert "adding_replicas" not in orjson.loads(encode([change]))["records"][0]
    moving = PartitionChangeRecord(
        TOPIC_ID, 0, replicas=(1, 2, 3), adding_replicas=(3,), removing_replicas=()
    )
    assert decode(encode([moving])) == [moving]
    assert orjson.loads(encode([moving]))["records"][0]["removing_replicas"] == []


# -- the state -----------------------------------------------------------------------------------


def test_state_refuses_a_move_outside_the_replicas_and_changes_nothing() -> None:
    state = cluster((1, 2, 3))
    before = state.digest()
    with pytest.raises(IllegalRecordError, match="would not be within the replicas"):
        state.apply_entry(2, [PartitionChangeRecord(TOPIC_ID, 0, adding_replicas=(4,))])
    with pytest.raises(IllegalRecordError, match="overlap or leave no target"):
        state.apply_entry(2, [PartitionChangeRecord(TOPIC_ID, 0, removing_replicas=(1, 2, 3))])
    assert state.digest() == before


def test_snapshot_round_trip_keeps_a_move_and_loads_a_snapshot_from_before_moves() -> None:
    state = cluster((1, 2, 3))
    plain = state.to_snapshot()
    assert b"adding_replicas" not in plain  # a cluster that never moves keeps its digest
    assert MetadataState.from_snapshot(plain).digest() == state.digest()
    records, _ = alter(state, (0, (1, 2, 4)))
    apply(state, records)
    loaded = MetadataState.from_snapshot(state.to_snapshot())
    assert part(loaded) == part(state)
    assert part(loaded).adding_replicas == (4,) and part(loaded).removing_replicas == (3,)
    assert loaded.digest() == state.digest()


# -- the plans -----------------------------------------------------------------------------------


def test_a_move_starts_with_the_merged_list_and_completes_with_the_isr_change() -> None:
    state = cluster((1, 2, 3))
    records, outcomes = alter(state, (0, (1, 2, 4)))
    assert [o.error for o in outcomes] == [None]
    assert records == [
        PartitionChangeRecord(
            TOPIC_ID, 0, replicas=(1, 2, 4, 3), adding_replicas=(4,), removing_replicas=(3,)
        )
    ]
    apply(state, records)
    assert part(state).isr == (1, 2, 3) and part(state).leader == 1
    # The ISR change that brings 4 in completes the move in the same record.
    (done,) = isr_change(state, (1, 2, 3, 4))
    assert done == PartitionChangeRecord(
        TOPIC_ID,
        0,
        isr=(1, 2, 4),
        replicas=(1, 2, 4),
        adding_replicas=(),
        removing_replicas=(),
    )
    apply(state, [done])
    p = part(state)
    assert (p.replicas, p.isr, p.leader, p.moving) == ((1, 2, 4), (1, 2, 4), 1, False)


def test_the_leader_epoch_moves_on_when_replicas_go_and_stays_when_they_only_come() -> None:
    # Kafka's rule: a removed replica's fetches on the old epoch are refused from then on.
    state = cluster((1, 2, 3))
    epoch = part(state).leader_epoch
    apply(state, alter(state, (0, (1, 2, 4)))[0])  # the start adds 4, removes nothing yet
    assert part(state).leader_epoch == epoch
    apply(state, isr_change(state, (1, 2, 3, 4)))  # completion drops 3, leader 1 stays
    assert (part(state).leader, part(state).leader_epoch) == (1, epoch + 1)
    apply(state, alter(state, (0, (1, 2)))[0])  # the replication factor lowered: 4 goes
    assert (part(state).leader, part(state).leader_epoch) == (1, epoch + 2)
    apply(state, alter(state, (0, (2, 1)))[0])  # a reorder drops none
    assert part(state).leader_epoch == epoch + 2


def test_a_cancel_that_drops_the_adding_replicas_moves_the_leader_epoch_on() -> None:
    state = cluster((1, 2, 3))
    apply(state, alter(state, (0, (1, 2, 4)))[0])
    epoch = part(state).leader_epoch
    apply(state, alter(state, (0, None))[0])
    p = part(state)
    assert (p.replicas, p.leader, p.leader_epoch) == ((1, 2, 3), 1, epoch + 1)


def test_an_isr_change_that_leaves_an_adding_replica_out_does_not_complete() -> None:
    state = cluster((1, 2, 3))
    apply(state, alter(state, (0, (2, 4, 5)))[0])
    (shrink,) = isr_change(state, (1, 2, 3, 4))  # 5 has not caught up
    assert shrink == PartitionChangeRecord(TOPIC_ID, 0, isr=(1, 2, 3, 4))
    apply(state, [shrink])
    assert part(state).moving


def test_completion_moves_the_leadership_off_a_removed_leader() -> None:
    state = cluster((1, 2, 3))
    apply(state, alter(state, (0, (2, 3, 4)))[0])
    p = part(state)
    assert p.replicas == (2, 3, 4, 1) and p.leader == 1
    (done,) = isr_change(state, (1, 2, 3, 4))
    assert isinstance(done, PartitionChangeRecord)
    assert done.leader == 2 and done.replicas == (2, 3, 4) and done.isr == (2, 3, 4)
    apply(state, [done])
    assert part(state).leader_epoch == p.leader_epoch + 1


def test_raising_the_replication_factor_waits_for_the_new_replica() -> None:
    state = cluster((1, 2))
    records, _ = alter(state, (0, (1, 2, 3)))
    assert records == [
        PartitionChangeRecord(
            TOPIC_ID, 0, replicas=(1, 2, 3), adding_replicas=(3,), removing_replicas=None
        )
    ]
    apply(state, records)
    apply(state, isr_change(state, (1, 2, 3)))
    p = part(state)
    assert (p.replicas, p.isr, p.moving) == ((1, 2, 3), (1, 2, 3), False)


def test_lowering_the_replication_factor_completes_at_once_when_the_target_is_in_sync() -> None:
    state = cluster((1, 2, 3))
    records, _ = alter(state, (0, (1, 2)))
    assert records == [PartitionChangeRecord(TOPIC_ID, 0, isr=(1, 2), replicas=(1, 2))]
    apply(state, records)
    assert part(state).replicas == (1, 2) and not part(state).moving


def test_a_reorder_changes_only_the_replicas_and_keeps_the_leader() -> None:
    state = cluster((1, 2, 3))
    records, _ = alter(state, (0, (3, 1, 2)))
    assert records == [PartitionChangeRecord(TOPIC_ID, 0, replicas=(3, 1, 2))]


def test_the_current_replicas_as_target_write_nothing() -> None:
    state = cluster((1, 2, 3))
    records, outcomes = alter(state, (0, (1, 2, 3)))
    assert records == [] and [o.error for o in outcomes] == [None]


def test_a_new_target_replaces_the_move_and_keeps_the_original_replicas() -> None:
    state = cluster((1, 2, 3))
    apply(state, alter(state, (0, (1, 2, 4)))[0])
    apply(state, isr_change(state, (1, 2, 3)))  # nothing new: no record
    records, _ = alter(state, (0, (1, 2, 5)))
    assert records == [
        PartitionChangeRecord(
            TOPIC_ID, 0, replicas=(1, 2, 5, 3), adding_replicas=(5,), removing_replicas=None
        )
    ]
    apply(state, records)
    records, _ = alter(state, (0, None))
    apply(state, records)
    p = part(state)
    assert (p.replicas, p.isr, p.moving) == ((1, 2, 3), (1, 2, 3), False)


def test_replacing_drops_an_adding_replica_and_completion_elects_the_first_target() -> None:
    state = cluster((1, 2, 3))
    apply(state, alter(state, (0, (4, 2, 3)))[0])
    apply(state, isr_change(state, (1, 2, 3, 4)))  # completes: 4 joins, 1 leaves
    p = part(state)
    assert (p.replicas, p.isr, p.leader) == ((4, 2, 3), (2, 3, 4), 4)
    apply(state, alter(state, (0, (5, 2, 3)))[0])
    assert part(state).adding_replicas == (5,) and part(state).leader == 4
    apply(state, alter(state, (0, (2, 3)))[0])  # drops 5 (adding): completes at once
    p = part(state)
    assert (p.replicas, p.isr, p.leader, p.moving) == ((2, 3), (2, 3), 2, False)


def test_a_move_to_wholly_new_replicas_completes_once_they_are_in_sync() -> None:
    state = cluster((1, 2))
    apply(state, alter(state, (0, (3,)))[0])
    assert part(state).removing_replicas == (1, 2)
    apply(state, isr_change(state, (1, 2, 3)))
    p = part(state)
    assert (p.replicas, p.isr, p.leader, p.moving) == ((3,), (3,), 3, False)


def test_a_cancel_restores_the_original_replicas_and_moves_a_leading_adding_replica_off() -> None:
    state = cluster((1, 2, 3))
    apply(state, alter(state, (0, (4, 1, 2, 3, 5)))[0])
    # 4 caught up and leads (after an election, say); 5 has not caught up.
    state.apply_entry(
        state.applied_index + 1, [PartitionChangeRecord(TOPIC_ID, 0, isr=(1, 2, 3, 4), leader=4)]
    )
    p = part(state)
    assert p.leader == 4 and p.adding_replicas == (4, 5)
    (cancel,) = alter(state, (0, None))[0]
    assert cancel == PartitionChangeRecord(
        TOPIC_ID,
        0,
        leader=1,
        isr=(1, 2, 3),
        replicas=(1, 2, 3),
        adding_replicas=(),
        removing_replicas=None,
    )


def test_a_cancel_of_a_partition_that_is_not_moving_fails_alone() -> None:
    state = cluster((1, 2, 3))
    records, outcomes = alter(state, (0, None))
    assert records == []
    assert outcomes[0].error is not None
    assert outcomes[0].error.name == "NO_REASSIGNMENT_IN_PROGRESS"
    assert outcomes[0].error.message == "no reassignment of t-0 is in progress"


def test_a_cancel_that_would_need_an_unclean_election_is_refused() -> None:
    state = cluster((1, 2))
    apply(state, alter(state, (0, (3, 1, 2)))[0])
    # Only the adding replica is left in the ISR (the others fell out).
    for change in (
        PartitionChangeRecord(TOPIC_ID, 0, isr=(1, 3)),
        PartitionChangeRecord(TOPIC_ID, 0, leader=3),
        PartitionChangeRecord(TOPIC_ID, 0, isr=(3,)),
    ):
        state.apply_entry(state.applied_index + 1, [change])
    before = state.digest()
    with pytest.raises(ApiError, match="would require an unclean leader election") as caught:
        alter(state, (0, None))
    assert caught.value.name == "INVALID_REPLICA_ASSIGNMENT"
    assert state.digest() == before


def test_fencing_an_adding_replica_leaves_the_move_pending() -> None:
    state = cluster((1, 2, 3))
    apply(state, alter(state, (0, (1, 2, 4)))[0])
    records = controller.plan_fence_broker(state, 4)
    assert records == [FenceBrokerRecord(4, 0)]
    apply(state, records)
    assert part(state).adding_replicas == (4,)
    with pytest.raises(ApiError, match="fenced"):
        isr_change(state, (1, 2, 3, 4))


@pytest.mark.parametrize(
    ("target", "kind", "message"),
    [
        ((), "INVALID_REPLICA_ASSIGNMENT", r"replica assignment \[\] of t-0 is empty"),
        (
            (1, 1, 4),
            "INVALID_REPLICA_ASSIGNMENT",
            r"replica assignment \[1, 1, 4\] of t-0 has duplicate replicas \[1\]",
        ),
        (
            (1, 7, 9),
            "INVALID_REPLICA_ASSIGNMENT",
            r"replica assignment \[1, 7, 9\] of t-0 names brokers \[7, 9\] that are not "
            "registered",
        ),
    ],
)
def test_a_bad_target_refuses_the_whole_request(
    target: tuple[int, ...], kind: str, message: str
) -> None:
    state = cluster((1, 2, 3))
    with pytest.raises(ApiError, match=message) as caught:
        alter(state, (0, target))
    assert caught.value.name == kind


def test_an_unknown_topic_or_partition_refuses_the_whole_request() -> None:
    state = cluster((1, 2, 3))
    with pytest.raises(ApiError, match="Topic 'nope' does not exist.") as caught:
        alter(state, (0, (1, 2, 4)), topic="nope")
    assert caught.value.status == 404
    requests = [ReassignmentRequest("t", 0, (1, 2, 4)), ReassignmentRequest("t", 3, (1,))]
    with pytest.raises(ApiError, match="Partition 3 of topic 't' does not exist."):
        controller.plan_alter_reassignments(state, requests)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "give"),
        ({"partitions": []}, "non-empty list"),
        ({"partitions": [{"topic": "t", "partition": 0}]}, "an object with topic"),
        ({"partitions": [{"topic": "t", "partition": -1, "replicas": [1]}]}, "partition must"),
        ({"partitions": [{"topic": "t", "partition": True, "replicas": [1]}]}, "partition must"),
        ({"partitions": [{"topic": "t", "partition": 0, "replicas": [1.5]}]}, "broker ids"),
        ({"partitions": [{"topic": "t", "partition": 0, "replicas": "1"}]}, "broker ids"),
        (
            {
                "partitions": [
                    {"topic": "t", "partition": 0, "replicas": [1]},
                    {"topic": "t", "partition": 0, "replicas": None},
                ]
            },
            "named twice",
        ),
    ],
)
def test_a_malformed_request_is_invalid(body: object, message: str) -> None:
    with pytest.raises(ApiError, match=message) as caught:
        reassignment.parse_request(body)
    assert caught.value.name == "INVALID_REQUEST"


def test_the_list_names_only_moving_partitions_in_order() -> None:
    state = cluster((1, 2, 3))
    assert controller.list_reassignments(state) == []
    apply(state, alter(state, (0, (1, 2, 4)))[0])
    expected = {
        "topic": "t",
        "partition": 0,
        "replicas": [1, 2, 4, 3],
        "adding_replicas": [4],
        "removing_replicas": [3],
    }
    assert controller.list_reassignments(state) == [expected]
    assert controller.list_reassignments(state, "t") == [expected]
    assert controller.list_reassignments(state, "other") == []


# -- kraft-topics --describe ---------------------------------------------------------------------


def test_kraft_topics_describe_prints_kafkas_reassignment_columns_while_moving() -> None:
    from client.tools import topics

    still = {"partition": 0, "leader": 1, "replicas": [1, 2, 3], "isr": [1, 2, 3]}
    moving = {
        "partition": 1,
        "leader": 1,
        "replicas": [1, 2, 4, 3],
        "isr": [1, 2, 3],
        "adding_replicas": [4],
        "removing_replicas": [3],
    }
    growing = {
        "partition": 2,
        "leader": 1,
        "replicas": [1, 2, 3],
        "isr": [1, 2],
        "adding_replicas": [3],
        "removing_replicas": [],
    }
    desc = {"name": "t", "replication_factor": 3, "partitions": [still, moving, growing]}
    assert topics.describe_lines([desc])[1:] == [
        "\tTopic: t\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2,3",
        "\tTopic: t\tPartition: 1\tLeader: 1\tReplicas: 1,2,4,3\tIsr: 1,2,3"
        "\tAdding Replicas: 4\tRemoving Replicas: 3",
        "\tTopic: t\tPartition: 2\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2"
        "\tAdding Replicas: 3\tRemoving Replicas: ",
    ]
    # Kafka's replication factor of a moving partition leaves the adding replicas out: neither
    # move counts as under-replicated while its original replicas are all in the ISR.
    assert not any(topics.is_under_replicated(p) for p in (still, moving, growing))
    assert topics.is_under_replicated(moving | {"isr": [1, 2]})


def test_a_cancel_restores_the_original_set_of_replicas_in_the_merged_order() -> None:
    state = cluster((1, 2, 3))
    apply(state, alter(state, (0, (3, 1, 4)))[0])
    assert part(state).replicas == (3, 1, 4, 2)
    apply(state, alter(state, (0, None))[0])
    # Kafka's revert reads the original replicas from the merged list: the set comes back,
    # not the order (docs/design.md, Reassignment).
    assert part(state).replicas == (3, 1, 2) and not part(state).moving


def test_a_move_hands_over_from_a_leader_that_is_fenced() -> None:
    state = cluster((1, 2, 3))
    # Broker 1 restarted: registered again (fenced) before its old session ended, so it
    # still leads; the builder, as Kafka's isAcceptableLeader, elects a live replica.
    apply(state, [RegisterBrokerRecord(1, "inc1b", 1, "http://h:9001", "h:1")])
    records, _ = alter(state, (0, (1, 2, 3, 4)))
    apply(state, records)
    assert part(state).leader == 2 and part(state).adding_replicas == (4,)


def test_fencing_a_leader_goes_through_the_change_builder() -> None:
    state = cluster((1, 2, 3))
    records = controller.plan_fence_broker(state, 1)
    assert records == [
        FenceBrokerRecord(1, 0),
        PartitionChangeRecord(TOPIC_ID, 0, leader=2, isr=(2, 3)),
    ]
    lonely = cluster((1, 2), isr=(1,))
    records = controller.plan_fence_broker(lonely, 1)
    assert records[1:] == [PartitionChangeRecord(TOPIC_ID, 0, leader=-1)], (
        "the last ISR member stays in it, and the partition has no leader (KIP-841)"
    )
