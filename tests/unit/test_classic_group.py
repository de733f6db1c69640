"""The classic group protocol's core (server/groups/classic.py, classic_shard.py), read like
Kafka's GroupMetadataManagerTest classic cases: JoinGroup with KIP-394, the initial rebalance
delay, protocol selection, SyncGroup, Heartbeat, LeaveGroup, session and rebalance timeouts,
leader changes, generation checks, and the kinds of group. No sockets: time is a number moved
by hand, parked requests are answers collected from the steps."""

from __future__ import annotations

import io
import itertools
from typing import Any

import pytest
from kio.schema.consumer_protocol_assignment.v0.data import (
    ConsumerProtocolAssignment,
    TopicPartition,
)
from kio.schema.consumer_protocol_subscription.v0.data import ConsumerProtocolSubscription
from kio.schema.types import TopicName
from kio.serial import entity_writer
from kio.static.primitive import i32

from server.config import GroupSettings
from server.groups import classic_shard
from server.groups.classic import (
    COMPLETING_REBALANCE,
    EMPTY,
    PREPARING_REBALANCE,
    STABLE,
    ClassicSettings,
)
from server.groups.classic_messages import (
    UNKNOWN_MEMBER,
    HeartbeatRequest,
    JoinRequest,
    JoinResponse,
    KafkaError,
    LeaveRequest,
    LeaveResponse,
    LeavingMember,
    LeftMember,
    Now,
    Protocols,
    Step,
    StoreAssignment,
    SyncRequest,
    SyncResponse,
)
from server.groups.shard import GroupShard
from storage.group_records import ClassicGroupKey, ClassicGroupValue

GROUP = "g"
WALL_MS = 1_700_000_000_000
SESSION_MS = 10_000
REBALANCE_MS = 60_000
DELAY_MS = 3_000
RANGE: Protocols = (("range", b"range-metadata"),)


def subscription(*topics: str) -> bytes:
    """A consumer's JoinGroup metadata: ConsumerProtocolSubscription v0 after its version."""
    out = io.BytesIO()
    value = ConsumerProtocolSubscription(topics=topics, user_data=None)
    entity_writer(ConsumerProtocolSubscription)(out, value)
    return b"\x00\x00" + out.getvalue()


def assignment(topic: str, *partitions: int) -> bytes:
    """A consumer's assignment: ConsumerProtocolAssignment v0 after its version."""
    out = io.BytesIO()
    value = ConsumerProtocolAssignment(
        assigned_partitions=(
            TopicPartition(topic=TopicName(topic), partitions=tuple(i32(p) for p in partitions)),
        ),
        user_data=None,
    )
    entity_writer(ConsumerProtocolAssignment)(out, value)
    return b"\x00\x00" + out.getvalue()


class Coordinator:
    """One shard's classic groups as the driver runs them, with a clock moved by hand: each
    step's records are kept, its answers to parked requests collected by (member, kind)."""

    def __init__(self, **settings: Any) -> None:
        numbers = itertools.count(1)
        self.shard = GroupShard(
            GroupSettings(),
            lambda: "consumer-member",
            ClassicSettings(**{"initial_rebalance_delay_ms": DELAY_MS, **settings}),
            new_uuid=lambda: f"uuid{next(numbers)}",
        )
        self.ms = 0
        self.records: list[tuple[Any, Any]] = []
        self.answers: dict[tuple[str, str], JoinResponse | SyncResponse] = {}
        self.stored: list[StoreAssignment] = []

    def now(self) -> Now:
        return Now(self.ms, WALL_MS + self.ms)

    @property
    def group(self) -> Any:
        return self.shard.classic[GROUP]

    def run(self, step: Step) -> Any:
        self.records += step.records
        for reply in step.replies:
            kind = "join" if isinstance(reply.response, JoinResponse) else "sync"
            self.answers[(reply.member_id, kind)] = reply.response
        if step.stored is not None:
            self.stored.append(step.stored)
        return step.answer

    def answer(self, member_id: str, kind: str) -> Any:
        return self.answers.pop((member_id, kind), None)

    def join(
        self,
        member_id: str = UNKNOWN_MEMBER,
        protocols: Protocols = RANGE,
        *,
        protocol_type: str = "consumer",
        session_ms: int = SESSION_MS,
        rebalance_ms: int = REBALANCE_MS,
        client_id: str = "client",
        known_member_id: bool = True,
        group: str = GROUP,
    ) -> JoinResponse | None:
        request = JoinRequest(
            member_id=member_id,
            protocol_type=protocol_type,
            protocols=protocols,
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=rebalance_ms,
            client_id=client_id,
            client_host="/127.0.0.1",
            requires_known_member_id=known_member_id,
        )
        answer = self.run(classic_shard.join(self.shard, group, request, self.now()))
        assert answer is None or isinstance(answer, JoinResponse)
        return answer

    def member(self, client_id: str = "client", **kwargs: Any) -> str:
        """A new member's id: a first join (KIP-394), which must be joined again with it."""
        answer = self.join(client_id=client_id, **kwargs)
        assert answer is not None and answer.error == KafkaError.MEMBER_ID_REQUIRED
        return answer.member_id

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        **kwargs: Any,
    ) -> SyncResponse | None:
        request = SyncRequest(member_id, generation, tuple((assignments or {}).items()), **kwargs)
        answer = self.run(classic_shard.sync(self.shard, GROUP, request, self.now()))
        assert answer is None or isinstance(answer, SyncResponse)
        return answer

    def heartbeat(self, member_id: str, generation: int) -> KafkaError | None:
        request = HeartbeatRequest(member_id, generation)
        answer = self.run(classic_shard.heartbeat(self.shard, GROUP, request, self.now()))
        assert answer is None or isinstance(answer, KafkaError)
        return answer

    def leave(self, *member_ids: str) -> LeaveResponse:
        request = LeaveRequest(tuple(LeavingMember(m) for m in member_ids))
        answer = self.run(classic_shard.leave(self.shard, GROUP, request, self.now()))
        assert isinstance(answer, LeaveResponse)
        return answer

    def advance(self, ms: int) -> None:
        self.ms += ms
        self.run(classic_shard.tick(self.shard, GROUP, self.now()))

    def alive(self, ms: int, *member_ids: str) -> None:
        """Lets ``ms`` pass while ``member_ids`` heartbeat every second, as clients do."""
        for _ in range(ms // 1000):
            self.advance(1000)
            for member_id in member_ids:
                if member_id in self.group.members:
                    self.heartbeat(member_id, self.group.generation)

    def end_initial_join(self) -> None:
        """Lets the initial rebalance's delay pass: a delay, and another while members came
        during the last one (Kafka's group.initial.rebalance.delay.ms)."""
        for _ in range(REBALANCE_MS // DELAY_MS + 1):
            if self.group.state != PREPARING_REBALANCE:
                return
            self.advance(DELAY_MS)
        raise AssertionError("the initial rebalance never ended")

    def store(self, error: KafkaError | None = None) -> None:
        """The leader's assignment record is committed (or failed with ``error``)."""
        stored = self.stored.pop(0)
        self.run(classic_shard.assignment_stored(self.shard, GROUP, stored, error, self.now()))

    def stable(self, *clients: str) -> list[str]:
        """A group of one member per client, through its first rebalance and sync: their ids,
        the leader (the first) first."""
        ids = [self.member(client_id=c) for c in clients]
        for member_id in ids:
            assert self.join(member_id) is None
        self.end_initial_join()
        generation = self.group.generation
        given = {m: assignment("t", i) for i, m in enumerate(ids)}
        for member_id in ids[1:]:
            assert self.sync(member_id, generation) is None
        assert self.sync(ids[0], generation, given) is None
        self.store()
        assert self.group.state == STABLE
        for member_id in ids:
            answer = self.answer(member_id, "sync")
            assert answer == SyncResponse(None, given[member_id], "consumer", "range")
            self.answer(member_id, "join")
        return ids


# -- JoinGroup -------------------------------------------------------------------------------------


def test_first_join_without_member_id_gets_member_id_required_and_creates_the_group() -> None:
    c = Coordinator()
    answer = c.join(client_id="app")
    # Kafka's member id: the client id, "-", a UUID.
    assert answer == JoinResponse(KafkaError.MEMBER_ID_REQUIRED, "app-uuid1")
    assert c.group.state == EMPTY and c.group.pending == {"app-uuid1": SESSION_MS}
    # The new group is written at once, empty (Kafka's newEmptyGroupMetadataRecord).
    assert c.records == [
        (ClassicGroupKey(GROUP), ClassicGroupValue("", 0, None, None, WALL_MS, ())),
    ]


def test_pending_member_that_does_not_join_within_its_session_is_forgotten() -> None:
    c = Coordinator()
    member_id = c.member()
    c.advance(SESSION_MS - 1)
    assert member_id in c.group.pending
    c.advance(1)
    assert c.group.pending == {}
    assert c.join(member_id) == JoinResponse(KafkaError.UNKNOWN_MEMBER_ID, member_id)


def test_join_with_a_member_id_to_a_group_that_does_not_exist_is_unknown_member() -> None:
    c = Coordinator()
    assert c.join("ghost") == JoinResponse(KafkaError.UNKNOWN_MEMBER_ID, "ghost")
    assert GROUP not in c.shard.classic and c.records == []


def test_session_timeout_outside_the_allowed_range_is_refused() -> None:
    c = Coordinator()
    for session_ms in (5_999, 1_800_001):
        answer = c.join(session_ms=session_ms)
        assert answer == JoinResponse(KafkaError.INVALID_SESSION_TIMEOUT, UNKNOWN_MEMBER)
    assert c.records == []


def test_first_join_of_an_empty_group_needs_a_protocol_type_and_protocols() -> None:
    c = Coordinator()
    assert c.join(protocol_type="") == JoinResponse(
        KafkaError.INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER
    )
    assert c.join(protocols=()) == JoinResponse(
        KafkaError.INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER
    )


def test_initial_rebalance_waits_for_the_delay_then_answers_with_generation_one() -> None:
    c = Coordinator()
    member_id = c.member()
    assert c.join(member_id) is None  # parked
    assert c.group.state == PREPARING_REBALANCE
    c.advance(DELAY_MS - 1)
    assert c.answer(member_id, "join") is None
    c.advance(1)
    answer = c.answer(member_id, "join")
    assert answer is not None and answer.error is None
    assert (answer.generation_id, answer.leader, answer.protocol_name) == (1, member_id, "range")
    assert answer.protocol_type == "consumer"
    assert [(m.member_id, m.metadata) for m in answer.members] == [(member_id, b"range-metadata")]
    assert c.group.state == COMPLETING_REBALANCE


def test_initial_rebalance_is_extended_while_new_members_join() -> None:
    # Kafka's testDelayInitialRebalanceByGroupInitialRebalanceDelayOnEmptyGroup: each new member
    # during the delay pushes the end by another delay, within the rebalance timeout.
    c = Coordinator()
    first = c.member(client_id="a")
    c.join(first)
    c.advance(DELAY_MS - 1)
    second = c.member(client_id="b")
    c.join(second)
    c.advance(1)  # the first delay ends; a member came meanwhile: wait another delay
    assert c.group.state == PREPARING_REBALANCE and not c.answers
    c.advance(DELAY_MS)
    assert c.group.state == COMPLETING_REBALANCE
    one, two = c.answer(first, "join"), c.answer(second, "join")
    assert one is not None and two is not None and one.generation_id == two.generation_id == 1
    assert one.leader == two.leader == first
    assert {m.member_id for m in one.members} == {first, second} and two.members == ()


def test_initial_rebalance_extension_stops_at_the_rebalance_timeout() -> None:
    # Kafka's testDelayRebalanceUptoRebalanceTimeout: new members keep coming, the join phase
    # still ends once the rebalance timeout is spent.
    c = Coordinator()
    members = [c.member(client_id=f"c{i}", rebalance_ms=2 * DELAY_MS) for i in range(4)]
    c.join(members[0], rebalance_ms=2 * DELAY_MS)
    for member_id in members[1:]:
        c.advance(DELAY_MS - 1)
        c.join(member_id, rebalance_ms=2 * DELAY_MS)
        c.advance(1)
        if c.group.state == COMPLETING_REBALANCE:
            break
    assert c.group.state == COMPLETING_REBALANCE
    assert c.ms == 2 * DELAY_MS


def test_join_of_join_group_v3_takes_the_member_in_at_once() -> None:
    # Before KIP-394 a first join is added with the id it gets, without a round trip.
    c = Coordinator()
    assert c.join(client_id="old", known_member_id=False) is None
    assert list(c.group.members) == ["old-uuid1"]
    c.advance(DELAY_MS)
    answer = c.answer("old-uuid1", "join")
    assert answer is not None and answer.member_id == "old-uuid1" and answer.generation_id == 1


def test_protocol_is_the_one_all_members_support_chosen_by_their_votes() -> None:
    c = Coordinator()
    a = c.member(client_id="a")
    b = c.member(client_id="b")
    d = c.member(client_id="d")
    c.join(a, (("range", b"a"), ("roundrobin", b"a2")))
    c.join(b, (("roundrobin", b"b"), ("range", b"b2")))
    c.join(d, (("range", b"d"), ("roundrobin", b"d2")))
    c.end_initial_join()
    answer = c.answer(a, "join")
    assert answer is not None and answer.protocol_name == "range"  # two votes to one
    # The leader sees each member's metadata for the chosen protocol.
    assert {m.member_id: m.metadata for m in answer.members} == {a: b"a", b: b"b2", d: b"d"}


def test_a_protocol_one_member_lacks_cannot_win() -> None:
    c = Coordinator()
    a = c.member(client_id="a")
    b = c.member(client_id="b")
    c.join(a, (("range", b""), ("roundrobin", b"")))
    c.join(b, (("roundrobin", b""),))
    c.end_initial_join()
    answer = c.answer(a, "join")
    assert answer is not None and answer.protocol_name == "roundrobin"


def test_member_supporting_no_protocol_of_the_group_is_refused() -> None:
    c = Coordinator()
    a = c.member(client_id="a")
    c.join(a)
    other = c.member(client_id="b")
    assert c.join(other, (("sticky", b""),)) == JoinResponse(
        KafkaError.INCONSISTENT_GROUP_PROTOCOL, other
    )
    assert c.join(other, protocol_type="connect") == JoinResponse(
        KafkaError.INCONSISTENT_GROUP_PROTOCOL, other
    )


def test_group_over_its_size_refuses_a_new_member() -> None:
    c = Coordinator(max_size=1)
    a = c.member(client_id="a")
    c.join(a)
    assert c.join(client_id="b") == JoinResponse(KafkaError.GROUP_MAX_SIZE_REACHED, UNKNOWN_MEMBER)


def test_follower_joining_again_in_a_stable_group_with_same_metadata_gets_the_generation() -> None:
    c = Coordinator()
    leader, follower = c.stable("a", "b")
    answer = c.join(follower)
    assert answer == JoinResponse(None, follower, 1, "consumer", "range", leader)
    assert c.group.state == STABLE


def test_leader_joining_again_in_a_stable_group_forces_a_rebalance() -> None:
    c = Coordinator()
    leader, follower = c.stable("a", "b")
    assert c.join(leader) is None
    assert c.group.state == PREPARING_REBALANCE
    assert c.heartbeat(follower, 1) == KafkaError.REBALANCE_IN_PROGRESS
    assert c.join(follower) is None  # the last one: the join phase ends at once
    answers = c.answer(leader, "join"), c.answer(follower, "join")
    assert [a.generation_id for a in answers if a is not None] == [2, 2]
    assert c.group.state == COMPLETING_REBALANCE


def test_member_joining_with_new_metadata_forces_a_rebalance() -> None:
    c = Coordinator()
    _, follower = c.stable("a", "b")
    assert c.join(follower, (("range", b"new"),)) is None
    assert c.group.state == PREPARING_REBALANCE


# -- SyncGroup -------------------------------------------------------------------------------------


def test_leader_assignment_is_stored_then_handed_out_to_every_waiting_member() -> None:
    c = Coordinator()
    a, b = c.member(client_id="a"), c.member(client_id="b")
    c.join(a, (("range", subscription("t")),))
    c.join(b, (("range", subscription("t")),))
    c.end_initial_join()
    c.records.clear()
    c.answers.clear()
    assert c.sync(b, 1) is None  # a follower waits for the leader
    given = {a: assignment("t", 0), b: assignment("t", 1)}
    assert c.sync(a, 1, given) is None
    # Kafka's GroupMetadataValue, before anyone is told: generation, protocol, leader, members.
    [(key, value)] = c.records
    assert key == ClassicGroupKey(GROUP)
    assert (value.protocol_type, value.generation, value.protocol, value.leader) == (
        "consumer",
        1,
        "range",
        a,
    )
    assert [(m.member_id, m.subscription, m.assignment) for m in value.members] == [
        (a, subscription("t"), given[a]),
        (b, subscription("t"), given[b]),
    ]
    assert value.current_state_timestamp_ms == WALL_MS + c.ms  # when the join phase ended
    assert not c.answers and c.group.state == COMPLETING_REBALANCE
    c.store()
    assert c.group.state == STABLE
    assert c.answer(a, "sync") == SyncResponse(None, given[a], "consumer", "range")
    assert c.answer(b, "sync") == SyncResponse(None, given[b], "consumer", "range")


def test_follower_syncing_after_the_group_is_stable_gets_its_assignment_at_once() -> None:
    c = Coordinator()
    a, b = c.member(client_id="a"), c.member(client_id="b")
    c.join(a)
    c.join(b)
    c.end_initial_join()
    c.sync(a, 1, {a: b"A", b: b"B"})
    c.store()
    assert c.sync(b, 1) == SyncResponse(None, b"B", "consumer", "range")


def test_member_the_leader_gave_nothing_gets_an_empty_assignment() -> None:
    c = Coordinator()
    a, b = c.member(client_id="a"), c.member(client_id="b")
    c.join(a)
    c.join(b)
    c.end_initial_join()
    c.sync(b, 1)
    c.sync(a, 1, {a: b"A"})
    c.store()
    assert c.answer(b, "sync") == SyncResponse(None, b"", "consumer", "range")


def test_sync_checks_member_generation_and_protocol() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    assert c.sync("ghost", 1) == SyncResponse(KafkaError.UNKNOWN_MEMBER_ID)
    assert c.sync(b, 2) == SyncResponse(KafkaError.ILLEGAL_GENERATION)
    assert c.sync(b, 1, protocol_name="roundrobin") == SyncResponse(
        KafkaError.INCONSISTENT_GROUP_PROTOCOL
    )
    assert c.sync(b, 1, protocol_type="connect") == SyncResponse(
        KafkaError.INCONSISTENT_GROUP_PROTOCOL
    )
    c.join(a)  # a rebalance starts
    assert c.sync(b, 1) == SyncResponse(KafkaError.REBALANCE_IN_PROGRESS)


def test_sync_to_a_group_that_does_not_exist_is_unknown_member() -> None:
    c = Coordinator()
    assert c.sync("m", 1) == SyncResponse(KafkaError.UNKNOWN_MEMBER_ID)


def test_failed_store_of_the_assignment_tells_the_waiting_members_and_rebalances() -> None:
    c = Coordinator()
    a, b = c.member(client_id="a"), c.member(client_id="b")
    c.join(a)
    c.join(b)
    c.end_initial_join()
    c.sync(b, 1)
    c.sync(a, 1, {a: b"A", b: b"B"})
    c.store(KafkaError.NOT_COORDINATOR)
    assert c.answer(a, "sync") == SyncResponse(KafkaError.NOT_COORDINATOR)
    assert c.answer(b, "sync") == SyncResponse(KafkaError.NOT_COORDINATOR)
    assert c.group.state == PREPARING_REBALANCE
    assert all(m.assignment == b"" for m in c.group.members.values())


def test_store_of_an_older_generation_changes_nothing() -> None:
    c = Coordinator()
    a, b = c.member(client_id="a"), c.member(client_id="b")
    c.join(a)
    c.join(b)
    c.end_initial_join()
    c.answers.clear()
    c.sync(a, 1, {a: b"A", b: b"B"})
    c.join(b, (("range", b"other"),))  # a rebalance before the record is stored
    assert c.answer(a, "sync") == SyncResponse(KafkaError.REBALANCE_IN_PROGRESS)
    c.store()
    assert c.group.state == PREPARING_REBALANCE and not c.answers


def test_member_that_does_not_sync_within_the_rebalance_timeout_is_removed() -> None:
    c = Coordinator()
    a, b = c.member(client_id="a"), c.member(client_id="b")
    c.join(a)
    c.join(b)
    c.end_initial_join()
    joined_ms = c.ms
    c.sync(a, 1, {a: b"A", b: b"B"})
    c.store()
    assert c.group.state == STABLE
    c.alive(REBALANCE_MS - 1000, a, b)  # b is alive, but never syncs
    assert b in c.group.members and c.group.state == STABLE
    c.alive(1000, a, b)
    assert c.ms - joined_ms == REBALANCE_MS
    assert b not in c.group.members and c.group.state == PREPARING_REBALANCE


# -- Heartbeat -------------------------------------------------------------------------------------


def test_heartbeat_checks_member_and_generation() -> None:
    c = Coordinator()
    a, _ = c.stable("a", "b")
    assert c.heartbeat(a, 1) is None
    assert c.heartbeat(a, 0) == KafkaError.ILLEGAL_GENERATION
    assert c.heartbeat("ghost", 1) == KafkaError.UNKNOWN_MEMBER_ID
    c2 = Coordinator()
    assert c2.heartbeat("m", 1) == KafkaError.UNKNOWN_MEMBER_ID


def test_heartbeat_during_a_rebalance_says_join_again() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    c.join(a, (("range", b"new"),))
    assert c.heartbeat(b, 1) == KafkaError.REBALANCE_IN_PROGRESS


def test_heartbeat_while_waiting_for_the_assignment_is_fine() -> None:
    c = Coordinator()
    a, b = c.member(client_id="a"), c.member(client_id="b")
    c.join(a)
    c.join(b)
    c.end_initial_join()
    assert c.group.state == COMPLETING_REBALANCE
    assert c.heartbeat(b, 1) is None


# -- session expiry and rebalance timeout -----------------------------------------------------


def test_member_missing_its_session_is_removed_and_the_rest_rebalance() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    c.alive(SESSION_MS - 1000, a)
    assert b in c.group.members and c.group.state == STABLE
    c.advance(1000)
    assert b not in c.group.members and c.group.state == PREPARING_REBALANCE
    assert c.heartbeat(a, 1) == KafkaError.REBALANCE_IN_PROGRESS
    assert c.join(a) is None  # the only member left: the join phase ends at once
    answer = c.answer(a, "join")
    assert answer is not None and (answer.generation_id, answer.leader) == (2, a)


def test_member_that_does_not_join_again_within_the_rebalance_timeout_is_removed() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    c.join(a, (("range", b"new"),))
    assert c.heartbeat(b, 1) == KafkaError.REBALANCE_IN_PROGRESS
    # b heartbeats (it is alive) but never joins again; a waits in its join.
    c.alive(REBALANCE_MS - 1000, b)
    assert set(c.group.members) == {a, b} and c.group.state == PREPARING_REBALANCE
    c.alive(1000, b)
    assert list(c.group.members) == [a] and c.group.state == COMPLETING_REBALANCE
    answer = c.answer(a, "join")
    assert answer is not None and answer.generation_id == 2


def test_leader_that_does_not_join_again_gives_way_to_one_that_did() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    assert c.group.leader == a
    c.join(b, (("range", b"new"),))
    c.advance(REBALANCE_MS)
    answer = c.answer(b, "join")
    assert answer is not None and answer.leader == b and answer.generation_id == 2
    assert [m.member_id for m in answer.members] == [b]
    assert list(c.group.members) == [b]


def test_new_member_whose_join_waits_too_long_is_removed() -> None:
    # Kafka's testNewMemberJoinExpiration: a new member's parked join has a limit of its own
    # (it has no heartbeat to keep it), while the group waits for a slow old member.
    c = Coordinator(new_member_join_timeout_ms=20_000)
    a, b = c.stable("a", "b")
    newcomer = c.member(client_id="n")
    assert c.join(newcomer) is None
    assert c.group.state == PREPARING_REBALANCE
    c.join(a)  # b is slow to join again, but alive
    c.alive(19_000, b)
    assert newcomer in c.group.members
    c.alive(1000, b)
    assert c.answer(newcomer, "join") == JoinResponse(KafkaError.UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER)
    assert newcomer not in c.group.members and c.group.state == PREPARING_REBALANCE


def test_waiting_in_a_join_keeps_an_old_member_alive() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    c.join(a, (("range", b"new"),))
    c.advance(SESSION_MS * 2)  # a sends no heartbeat while its join waits
    assert a in c.group.members


# -- LeaveGroup -----------------------------------------------------------------------------------


def test_leave_group_of_several_members_answers_each_and_rebalances() -> None:
    c = Coordinator()
    a, b, d = c.stable("a", "b", "d")
    answer = c.leave(b, "ghost")
    assert answer == LeaveResponse(
        None,
        (LeftMember(b, None, None), LeftMember("ghost", None, KafkaError.UNKNOWN_MEMBER_ID)),
    )
    assert set(c.group.members) == {a, d} and c.group.state == PREPARING_REBALANCE


def test_leaving_during_a_join_phase_may_end_it() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    c.join(a, (("range", b"new"),))
    c.leave(b)  # everyone left has joined: the phase ends
    answer = c.answer(a, "join")
    assert answer is not None and answer.generation_id == 2


def test_member_leaving_while_its_join_waits_is_answered_unknown_member() -> None:
    c = Coordinator()
    a, b = c.stable("a", "b")
    c.join(a, (("range", b"new"),))
    c.leave(a)
    assert c.answer(a, "join") == JoinResponse(KafkaError.UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER)


def test_last_member_leaving_empties_the_group_and_stores_it_empty() -> None:
    c = Coordinator()
    (a,) = c.stable("a")
    c.records.clear()
    c.leave(a)
    assert c.group.state == EMPTY and c.group.generation == 2
    assert c.records == [
        (
            ClassicGroupKey(GROUP),
            ClassicGroupValue("consumer", 2, None, None, WALL_MS + DELAY_MS, ()),
        )
    ]


def test_pending_member_may_leave() -> None:
    c = Coordinator()
    member_id = c.member()
    assert c.leave(member_id) == LeaveResponse(None, (LeftMember(member_id, None, None),))
    assert c.group.pending == {}


def test_leave_from_a_group_that_does_not_exist_is_unknown_member() -> None:
    c = Coordinator()
    assert c.leave("m") == LeaveResponse(KafkaError.UNKNOWN_MEMBER_ID)


# -- static membership is refused by name ----------------------------------------------------------


def test_join_with_a_group_instance_id_is_refused_as_unsupported() -> None:
    c = Coordinator()
    request = JoinRequest(
        member_id=UNKNOWN_MEMBER,
        protocol_type="consumer",
        protocols=RANGE,
        session_timeout_ms=SESSION_MS,
        rebalance_timeout_ms=REBALANCE_MS,
        group_instance_id="instance-1",
    )
    step = classic_shard.join(c.shard, GROUP, request, c.now())
    assert step.answer == JoinResponse(KafkaError.UNSUPPORTED_VERSION, UNKNOWN_MEMBER)


# -- unload -------------------------------------------------------------------------------------


def test_unloading_answers_every_parked_request_not_coordinator() -> None:
    c = Coordinator()
    a, b = c.member(client_id="a"), c.member(client_id="b")
    c.join(a)
    c.join(b)
    replies = c.group.unload()
    assert {(r.member_id, r.response) for r in replies} == {
        (a, JoinResponse(KafkaError.NOT_COORDINATOR, a)),
        (b, JoinResponse(KafkaError.NOT_COORDINATOR, b)),
    }
    assert c.group.next_deadline_ms() is None


@pytest.mark.parametrize("state", [COMPLETING_REBALANCE, STABLE])
def test_timers_say_when_the_driver_must_tick(state: str) -> None:
    c = Coordinator()
    a = c.member()
    assert c.group.next_deadline_ms() == SESSION_MS  # the pending member's
    c.join(a)
    assert c.group.next_deadline_ms() == DELAY_MS
    c.advance(DELAY_MS)
    if state == STABLE:
        c.sync(a, 1, {a: b""})
        c.store()
    # The member's session, from its answer.
    assert c.group.next_deadline_ms() == DELAY_MS + SESSION_MS
