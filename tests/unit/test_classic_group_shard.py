"""Classic groups in their shard: offset commits with Kafka's generation checks, the group's
record and its replay on a new coordinator (a failover keeps generation, assignment and
offsets), the rule between classic and consumer groups, and list, describe and delete."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from client.protocol import (
    GROUP_ID_NOT_FOUND,
    NON_EMPTY_GROUP,
    REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
    ApiError,
)
from client.tools import group_lines as lines
from server.groups import classic_shard
from server.groups.classic import COMPLETING_REBALANCE, EMPTY, PREPARING_REBALANCE, STABLE
from server.groups.classic_messages import (
    FENCED_INSTANCE_ID,
    ILLEGAL_GENERATION,
    UNKNOWN_MEMBER,
    DescribedGroup,
    JoinResponse,
    KafkaError,
)
from server.groups.runtime import replay_log
from server.groups.shard import (
    CommitOffset,
    GroupRecord,
    GroupShard,
    Heartbeat,
    Planned,
    Topics,
)
from storage.batch import NewRecord, build_batch
from storage.group_records import (
    ClassicGroupKey,
    ClassicGroupValue,
    GroupMetadataKey,
    MemberMetadataKey,
    decode,
    encode_key,
    encode_value,
)
from storage.memory_log import MemoryLog
from tests.unit.test_classic_group import (
    GROUP,
    SESSION_MS,
    WALL_MS,
    Coordinator,
    assignment,
    subscription,
)

TOPIC_ID = "AQIDBAUGBwgJCgsMDQ4PEA"
TOPICS = Topics({"t": (TOPIC_ID, 4)})


def commit(
    c: Coordinator, member_id: str | None, generation: int | None, offset: int = 10
) -> Planned:
    planned = c.shard.plan_commit(
        GROUP,
        member_id,
        generation,
        [CommitOffset("t", 0, offset, "m", leader_epoch=3)],
        TOPICS,
        WALL_MS,
        now_ms=c.ms,
    )
    c.shard.apply(planned)
    return planned


def refusal(c: Coordinator, member_id: str | None, generation: int | None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        commit(c, member_id, generation)
    return caught.value


# -- offset commits -------------------------------------------------------------------------------


def test_member_commits_at_its_generation() -> None:
    c = Coordinator()
    a, _ = c.stable("a", "b")
    planned = commit(c, a, 1)
    [(_, value)] = planned.records
    assert value is not None and value.leader_epoch == 3  # type: ignore[union-attr]
    assert c.shard.committed(GROUP) == [
        {"topic": "t", "partition": 0, "offset": 10, "metadata": "m", "commit_timestamp": WALL_MS}
    ]


def test_commit_at_another_generation_is_illegal_generation() -> None:
    c = Coordinator()
    a, _ = c.stable("a", "b")
    assert refusal(c, a, 0).kind == ILLEGAL_GENERATION
    assert refusal(c, a, 2).kind == ILLEGAL_GENERATION


def test_commit_of_an_unknown_member_is_unknown_member_id() -> None:
    c = Coordinator()
    c.stable("a", "b")
    assert refusal(c, "ghost", 1).kind == UNKNOWN_MEMBER_ID


def test_commit_without_member_to_a_group_with_members_is_unknown_member_id() -> None:
    c = Coordinator()
    c.stable("a")
    assert refusal(c, None, None).kind == UNKNOWN_MEMBER_ID
    assert refusal(c, None, -1).kind == UNKNOWN_MEMBER_ID


def test_commit_while_the_group_waits_for_its_assignment_is_rebalance_in_progress() -> None:
    c = Coordinator()
    a = c.member()
    c.join(a)
    c.end_initial_join()
    assert c.group.state == COMPLETING_REBALANCE
    assert refusal(c, a, 1).kind == REBALANCE_IN_PROGRESS


def test_commit_without_member_to_an_empty_classic_group_is_allowed() -> None:
    # An admin's reset, or a consumer that assigns itself: generation -1, no member id.
    c = Coordinator()
    (a,) = c.stable("a")
    c.leave(a)
    assert c.group.state == EMPTY
    commit(c, None, -1, offset=7)
    assert [o["offset"] for o in c.shard.committed(GROUP)] == [7]


def test_commit_keeps_the_session_of_its_member_in_a_stable_group() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    c.alive(SESSION_MS - 1000, b)
    commit(c, a, 1)  # instead of a heartbeat
    c.alive(SESSION_MS - 1000, b)
    assert a in c.group.members and c.group.state == STABLE


def test_commit_of_a_member_to_a_group_that_does_not_exist_depends_on_the_version() -> None:
    # Kafka: GROUP_ID_NOT_FOUND from OffsetCommit v9, ILLEGAL_GENERATION before.
    c = Coordinator()
    for version, kind in ((9, GROUP_ID_NOT_FOUND), (8, ILLEGAL_GENERATION)):
        with pytest.raises(ApiError) as caught:
            c.shard.plan_commit(
                "nobody", "m", 1, [CommitOffset("t", 0, 1)], TOPICS, WALL_MS, api_version=version
            )
        assert caught.value.kind == kind
    # Without member it creates the group's offsets (Kafka's "simple" group).
    commit_planned = c.shard.plan_commit(
        "nobody", None, -1, [CommitOffset("t", 0, 1)], TOPICS, WALL_MS, api_version=9
    )
    assert len(commit_planned.records) == 1


def test_static_member_of_a_loaded_group_fences_another_member_id() -> None:
    # Static members only come from records (a Kafka broker's, say): Kafka's validateMember.
    c = Coordinator()
    c.stable("a")
    key, value = c.records[-1]
    assert isinstance(value, ClassicGroupValue)
    member = dataclasses.replace(value.members[0], group_instance_id="i")
    shard = replayed([(key, dataclasses.replace(value, members=(member,)))])

    def refused(member_id: str, instance_id: str) -> ApiError:
        with pytest.raises(ApiError) as caught:
            shard.plan_commit(
                GROUP,
                member_id,
                1,
                [CommitOffset("t", 0, 1)],
                TOPICS,
                WALL_MS,
                group_instance_id=instance_id,
            )
        return caught.value

    assert refused("other", "i").kind == FENCED_INSTANCE_ID
    assert refused(member.member_id, "j").kind == UNKNOWN_MEMBER_ID
    shard.plan_commit(
        GROUP,
        member.member_id,
        1,
        [CommitOffset("t", 0, 1)],
        TOPICS,
        WALL_MS,
        group_instance_id="i",
    )


# -- persistence: the record, and a new coordinator's replay ---------------------------------------


def replayed(records: list[GroupRecord]) -> GroupShard:
    """A new coordinator's shard, loaded from ``records`` written as Kafka's bytes."""
    log = MemoryLog()
    log.append_batches(
        build_batch([NewRecord(encode_key(k), encode_value(v), WALL_MS) for k, v in records])
    )
    shard = GroupShard(Coordinator().shard.settings, lambda: "x")
    asyncio.run(replay_log(log, shard, 0, lambda: None))
    return shard


def test_group_record_is_kafkas_bytes_and_reads_back() -> None:
    c = Coordinator()
    c.stable("a", "b")
    key, value = c.records[-1]
    assert decode(encode_key(key), encode_value(value)) == (key, value)
    # GroupMetadataValue v3: Kafka 4.4 writes this version.
    assert encode_value(value)[:2] == b"\x00\x03"  # type: ignore[index]


def test_failover_keeps_generation_members_assignment_and_offsets() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    commit(c, a, 1)
    shard = replayed([*c.records, *commit(c, b, 1, offset=11).records])
    group = shard.classic[GROUP]
    assert (group.state, group.generation, group.leader, group.protocol_name) == (
        STABLE,
        1,
        a,
        "range",
    )
    assert {m: group.members[m].assignment for m in (a, b)} == {
        a: assignment("t", 0),
        b: assignment("t", 1),
    }
    assert shard.committed(GROUP)[0]["offset"] == 11
    # The members carry on at their generation with the new coordinator.
    c2 = Coordinator()
    c2.shard = shard
    shard.rearm_sessions(0, WALL_MS)
    assert c2.heartbeat(a, 1) is None and c2.heartbeat(b, 1) is None
    assert c2.sync(b, 1) is not None  # Stable: its assignment at once
    commit(c2, a, 1, offset=12)
    # A member that stops heartbeating is removed after a whole session from the load.
    c2.alive(SESSION_MS, a)
    assert list(shard.classic[GROUP].members) == [a]


def test_member_joining_again_after_a_failover_with_its_protocols_rebalances_once() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    c2 = Coordinator()
    c2.shard = replayed(c.records)
    c2.shard.rearm_sessions(0, WALL_MS)
    # A follower with the same metadata for the chosen protocol gets the generation.
    assert c2.join(b) == JoinResponse(None, b, 1, "consumer", "range", a)


def test_empty_group_replays_empty_with_its_generation() -> None:
    c = Coordinator()
    (a,) = c.stable("a")
    c.leave(a)
    shard = replayed(c.records)
    group = shard.classic[GROUP]
    assert (group.state, group.generation, group.members) == (EMPTY, 2, {})


def test_tombstone_replays_as_no_group() -> None:
    c = Coordinator()
    c.stable("a")
    assert GROUP not in replayed([*c.records, (ClassicGroupKey(GROUP), None)]).classic


# -- the kinds of group ---------------------------------------------------------------------------


def consumer_join(c: Coordinator, epoch: int = 0) -> Planned:
    hb = Heartbeat(member_id="k" if epoch else None, member_epoch=epoch, topics=("t",))
    planned = c.shard.plan_heartbeat(GROUP, hb, TOPICS, c.ms)
    c.shard.apply(planned)
    return planned


def test_consumer_protocol_heartbeat_to_a_classic_group_with_members_is_group_id_not_found() -> (
    None
):
    c = Coordinator()
    c.stable("a")
    with pytest.raises(ApiError) as caught:
        consumer_join(c)
    assert caught.value.kind == GROUP_ID_NOT_FOUND
    assert "not a consumer group" in caught.value.message


def test_consumer_protocol_join_replaces_an_empty_classic_group() -> None:
    c = Coordinator()
    (a,) = c.stable("a")
    c.leave(a)
    planned = consumer_join(c)
    assert planned.records[0] == (ClassicGroupKey(GROUP), None)
    assert GROUP not in c.shard.classic and GROUP in c.shard.groups
    assert c.shard.summary(GROUP)["type"] == "consumer"


def test_classic_join_to_a_consumer_group_with_members_is_inconsistent_group_protocol() -> None:
    c = Coordinator()
    consumer_join(c)
    assert c.join() == JoinResponse(KafkaError.INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER)
    assert GROUP not in c.shard.classic


def test_classic_join_replaces_an_empty_consumer_group() -> None:
    c = Coordinator()
    planned = consumer_join(c)
    member_id = planned.answer["member_id"]
    c.shard.apply(c.shard.plan_leave(GROUP, member_id))
    assert GROUP in c.shard.groups  # its epoch records are left
    c.records.clear()
    answer = c.join()
    assert answer is not None and answer.error == KafkaError.MEMBER_ID_REQUIRED
    tombstoned = [k for k, v in c.records if v is None]
    assert GroupMetadataKey(GROUP) in tombstoned
    assert not any(isinstance(k, MemberMetadataKey) for k in tombstoned)  # it has no members
    assert c.records[-1][0] == ClassicGroupKey(GROUP)
    assert GROUP not in c.shard.groups and c.shard.summary(GROUP)["type"] == "classic"


# -- list, describe, delete -----------------------------------------------------------------------


def test_list_and_describe_show_a_classic_group_as_kafkas_tool_does() -> None:
    c = Coordinator()
    a, b = c.member(client_id="a"), c.member(client_id="b")
    c.join(a, (("range", subscription("t")),), client_id="a")
    c.join(b, (("range", subscription("t", "u")),), client_id="b")
    c.end_initial_join()
    assert c.shard.summary(GROUP) == {
        "group": GROUP,
        "state": COMPLETING_REBALANCE,
        "type": "classic",
        "protocol_type": "consumer",
        "members": 2,
    }
    # Not Stable: no assignment, no protocol (Kafka's DescribeGroups gives none either).
    body = c.shard.describe(GROUP, TOPICS)
    assert body["assignor"] == "" and all(m["assignment"] == [] for m in body["members"])
    c.sync(a, 1, {a: assignment("t", 0, 1), b: assignment("t", 2)})
    c.store()
    commit(c, a, 1)
    body = c.shard.describe(GROUP, TOPICS)
    assert body == {
        "group": GROUP,
        "type": "classic",
        "state": STABLE,
        "protocol_type": "consumer",
        "assignor": "range",
        "generation": 1,
        "leader": a,
        "members": [
            {
                "member_id": a,
                "group_instance_id": None,
                "client_id": "a",
                "client_host": "/127.0.0.1",
                "subscribed_topics": ["t"],
                "assignment": [{"topic": "t", "partition": 0}, {"topic": "t", "partition": 1}],
            },
            {
                "member_id": b,
                "group_instance_id": None,
                "client_id": "b",
                "client_host": "/127.0.0.1",
                "subscribed_topics": ["t", "u"],
                "assignment": [{"topic": "t", "partition": 2}],
            },
        ],
        "offsets": [
            {"topic": "t", "partition": 0, "offset": 10, "metadata": "m", "member_id": a},
            {"topic": "t", "partition": 1, "offset": None, "metadata": "", "member_id": a},
            {"topic": "t", "partition": 2, "offset": None, "metadata": "", "member_id": b},
        ],
    }
    described = classic_shard.describe_group(c.shard, GROUP)
    assert (described.state, described.protocol_type, described.protocol_data) == (
        STABLE,
        "consumer",
        "range",
    )
    assert [m.assignment for m in described.members] == [assignment("t", 0, 1), assignment("t", 2)]
    assert classic_shard.describe_group(c.shard, "other") == DescribedGroup("other", "Dead")


def test_describe_of_a_group_of_another_protocol_type_keeps_its_bytes_opaque() -> None:
    c = Coordinator()
    a = c.member(protocol_type="connect")
    c.join(a, protocol_type="connect")
    c.end_initial_join()
    c.sync(a, 1, {a: b"\xff\xff not a consumer assignment"})
    c.store()
    [member] = c.shard.describe(GROUP, TOPICS)["members"]
    assert member["assignment"] == [] and member["subscribed_topics"] == []


def test_delete_refuses_a_classic_group_with_members_and_deletes_an_empty_one() -> None:
    c = Coordinator()
    (a,) = c.stable("a")
    commit(c, a, 1)
    with pytest.raises(ApiError) as caught:
        c.shard.plan_delete(GROUP)
    assert caught.value.kind == NON_EMPTY_GROUP
    c.leave(a)
    planned = c.shard.plan_delete(GROUP)
    assert [v for _, v in planned.records] == [None, None]
    assert planned.records[-1][0] == ClassicGroupKey(GROUP)
    c.shard.apply(planned)
    assert not c.shard.exists(GROUP)


def test_a_rebalancing_group_is_not_empty_for_delete() -> None:
    c = Coordinator()
    a = c.member()
    c.join(a)
    assert c.group.state == PREPARING_REBALANCE
    with pytest.raises(ApiError) as caught:
        c.shard.plan_delete(GROUP)
    assert caught.value.kind == NON_EMPTY_GROUP


def test_kafkas_tables_of_a_classic_group() -> None:
    # kraft-consumer-groups --describe prints a classic group from the same JSON: members with
    # their decoded assignment, the chosen protocol as the assignment strategy, the offsets.
    c = Coordinator()
    a, b = c.member(client_id="a"), c.member(client_id="b")
    c.join(a, (("range", subscription("t")),), client_id="a")
    c.join(b, (("range", subscription("t")),), client_id="b")
    c.end_initial_join()
    c.sync(a, 1, {a: assignment("t", 0, 1), b: assignment("t", 2)})
    c.store()
    commit(c, a, 1)
    desc = c.shard.describe(GROUP, TOPICS)
    for o in desc["offsets"]:
        o["log_end_offset"] = 20
    assert lines.members_table(desc, verbose=True)[1:] == [
        "GROUP           CONSUMER-ID     HOST            CLIENT-ID       #PARTITIONS     "
        "ASSIGNMENT",
        "g               a-uuid1         /127.0.0.1      a               2               t(0,1)",
        "g               b-uuid2         /127.0.0.1      b               1               t(2)",
    ]
    assert lines.state_table(desc, "localhost:9094  (2)")[2] == (
        "g                         localhost:9094  (2)       range                Stable          2"
    )
    assert [(r.topic, r.partition, r.offset, r.consumer_id) for r in lines.offset_rows(desc)] == [
        ("t", 0, 10, a),
        ("t", 1, None, a),
        ("t", 2, None, b),
    ]
