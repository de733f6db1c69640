"""The classic protocol's operations on the groups of one ``__consumer_offsets`` partition
(JoinGroup, SyncGroup, Heartbeat, LeaveGroup, timers): the checks Kafka's coordinator makes
before a group sees a request (``GroupCoordinatorService``), finding or creating the group,
Kafka's rule between the two kinds of group, then the group's own state machine
(``classic.py``). Pure, like the shard; the driver is ``runtime.py``.

Kafka's rule between kinds, as Kafka 4.4 applies it with online migration off: a JoinGroup to
an empty consumer group replaces it (its records get tombstones), to one with members gets
INCONSISTENT_GROUP_PROTOCOL (Kafka would take the member into the consumer group); SyncGroup,
Heartbeat and LeaveGroup to a group that is not classic get UNKNOWN_MEMBER_ID, as Kafka
answers for a group it does not have.
"""

from __future__ import annotations

from server.groups.classic import ClassicGroup
from server.groups.classic_messages import (
    UNKNOWN_MEMBER,
    DescribedGroup,
    HeartbeatRequest,
    JoinRequest,
    JoinResponse,
    KafkaError,
    LeaveRequest,
    LeaveResponse,
    Now,
    Step,
    StoreAssignment,
    SyncRequest,
    SyncResponse,
)
from server.groups.classic_views import described
from server.groups.shard import GroupShard, tombstones_of_empty


def join(shard: GroupShard, group_id: str, req: JoinRequest, now: Now) -> Step:
    """A JoinGroup. A first join (no member id) creates the group; its record is written
    then, as Kafka writes one, even when the join itself gets an error."""
    settings = shard.classic_settings
    if not group_id:
        return Step(answer=JoinResponse(KafkaError.INVALID_GROUP_ID, req.member_id))
    low, high = settings.min_session_timeout_ms, settings.max_session_timeout_ms
    if not low <= req.session_timeout_ms <= high:
        return Step(answer=JoinResponse(KafkaError.INVALID_SESSION_TIMEOUT, req.member_id))
    group = shard.classic.get(group_id)
    step = Step()
    if group is None:
        consumer = shard.groups.get(group_id)
        if consumer is not None and consumer.members:
            return Step(answer=JoinResponse(KafkaError.INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER))
        if req.member_id != UNKNOWN_MEMBER:
            # A member id for a group this coordinator does not have: it was removed (or the
            # group deleted); the member joins again without one.
            return Step(answer=JoinResponse(KafkaError.UNKNOWN_MEMBER_ID, req.member_id))
        if consumer is not None:
            step.records += tombstones_of_empty(consumer)
            del shard.groups[group_id]
        group = ClassicGroup(group_id, settings, now.wall_ms)
        shard.classic[group_id] = group
        created = True
    else:
        created = False
    joined = group.join(req, f"{req.client_id}-{shard.new_uuid()}", now)
    if created and not joined.records:
        step.records.append(group.empty_record())
    step.records += joined.records
    step.replies = joined.replies
    step.answer = joined.answer
    step.parked = joined.parked
    return step


def sync(shard: GroupShard, group_id: str, req: SyncRequest, now: Now) -> Step:
    if not group_id:
        return Step(answer=SyncResponse(KafkaError.INVALID_GROUP_ID))
    group = shard.classic.get(group_id)
    if group is None:
        return Step(answer=SyncResponse(KafkaError.UNKNOWN_MEMBER_ID))
    return group.sync(req, now)


def heartbeat(shard: GroupShard, group_id: str, req: HeartbeatRequest, now: Now) -> Step:
    """A Heartbeat; the step's answer is its error (None: none)."""
    if not group_id:
        return Step(answer=KafkaError.INVALID_GROUP_ID)
    group = shard.classic.get(group_id)
    if group is None:
        return Step(answer=KafkaError.UNKNOWN_MEMBER_ID)
    return group.heartbeat(req, now)


def leave(shard: GroupShard, group_id: str, req: LeaveRequest, now: Now) -> Step:
    if not group_id:
        return Step(answer=LeaveResponse(KafkaError.INVALID_GROUP_ID))
    group = shard.classic.get(group_id)
    if group is None:
        return Step(answer=LeaveResponse(KafkaError.UNKNOWN_MEMBER_ID))
    return group.leave(req, now)


def tick(shard: GroupShard, group_id: str, now: Now) -> Step:
    """The group's timers due by ``now`` (nothing when the group is gone)."""
    group = shard.classic.get(group_id)
    return group.tick(now) if group is not None else Step()


def assignment_stored(
    shard: GroupShard,
    group_id: str,
    stored: StoreAssignment,
    error: KafkaError | None,
    now: Now,
) -> Step:
    group = shard.classic.get(group_id)
    return group.assignment_stored(stored, error, now) if group is not None else Step()


def describe_group(shard: GroupShard, group_id: str) -> DescribedGroup:
    """Kafka's DescribeGroups answer for one group: Dead for a group that is not classic."""
    group = shard.classic.get(group_id)
    return described(group) if group is not None else DescribedGroup(group_id, "Dead")
