"""A classic group seen from outside its protocol: rebuilt from its record when a coordinator
loads the partition (:func:`load`), and described, for Kafka's DescribeGroups
(:func:`described`) and for ``GET /v1/groups/{g}`` (:func:`describe`). Pure; the group's
state machine is ``classic.py``.
"""

from __future__ import annotations

from typing import Any

from server.groups.classic import (
    EMPTY,
    STABLE,
    ClassicGroup,
    ClassicMember,
    ClassicSettings,
)
from server.groups.classic_messages import (
    CONSUMER_PROTOCOL_TYPE,
    DescribedGroup,
    DescribedMember,
    assigned_partitions,
    subscribed_topics,
)
from storage.group_records import NO_TIMEOUT, ClassicGroupValue


def load(group_id: str, value: ClassicGroupValue, settings: ClassicSettings) -> ClassicGroup:
    """The group a coordinator rebuilds from its latest record (Kafka's replay): Stable with
    the stored members, generation, leader and assignment, or Empty. Nobody waits in a join or
    sync, and no deadline is set (``ClassicGroup.rearm`` gives every member a whole session)."""
    group = ClassicGroup(
        group_id,
        settings,
        value.current_state_timestamp_ms,
        state=STABLE if value.members else EMPTY,
        generation=value.generation,
        protocol_type=value.protocol_type or None,
        protocol_name=value.protocol,
        leader=value.leader,
    )
    for m in value.members:
        previous = group.members.pop(m.member_id, None)  # a repeated id: the last one wins
        if previous is not None and previous.group_instance_id is not None:
            group.static_members.pop(previous.group_instance_id, None)
        group.members[m.member_id] = ClassicMember(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            rebalance_timeout_ms=m.session_timeout_ms
            if m.rebalance_timeout_ms == NO_TIMEOUT
            else m.rebalance_timeout_ms,
            session_timeout_ms=m.session_timeout_ms,
            protocol_type=value.protocol_type,
            # Only its metadata for the chosen protocol is stored; Kafka rebuilds the member
            # with that one protocol too, so a join with others than that one rebalances.
            protocols=((value.protocol or "", m.subscription),),
            assignment=m.assignment,
        )
        if m.group_instance_id is not None:
            group.static_members[m.group_instance_id] = m.member_id
    return group


def described(group: ClassicGroup) -> DescribedGroup:
    """Kafka's DescribeGroups answer: the members' metadata and assignment once Stable."""
    stable = group.state == STABLE and group.protocol_name is not None
    protocol = group.protocol_name or ""
    return DescribedGroup(
        group_id=group.group_id,
        state=group.state,
        protocol_type=group.protocol_type or "",
        protocol_data=protocol if stable else "",
        members=tuple(
            DescribedMember(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                metadata=m.metadata(protocol) if stable else b"",
                assignment=m.assignment if stable else b"",
            )
            for m in group.members.values()
        ),
    )


def describe(group: ClassicGroup) -> dict[str, Any]:
    """The group for ``GET /v1/groups/{g}`` (docs/groups.md): what :func:`described` says, with
    the embedded consumer protocol read (subscribed topics, assigned partitions) when the group
    is of Kafka's consumers; without offsets (the shard adds them)."""
    view = described(group)
    consumer = view.protocol_type == CONSUMER_PROTOCOL_TYPE
    members = []
    for m in sorted(view.members, key=lambda m: m.member_id):
        topics = subscribed_topics(m.metadata) if consumer and m.metadata else None
        partitions = assigned_partitions(m.assignment) if consumer else None
        members.append(
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "subscribed_topics": topics or [],
                "assignment": [{"topic": t, "partition": p} for t, p in partitions or []],
            }
        )
    return {
        "group": group.group_id,
        "type": "classic",
        "state": group.state,
        "protocol_type": view.protocol_type,
        "assignor": view.protocol_data,
        "generation": group.generation,
        "leader": group.leader,
        "members": members,
    }
