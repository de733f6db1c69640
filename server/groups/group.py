"""One consumer group's membership, as Kafka 4's consumer protocol (KIP-848) keeps it.

Theory of operation:

- The state is a fold of ``__consumer_offsets`` records (:meth:`ConsumerGroup.replay`), and
  nothing else changes it: the coordinator plans an operation on a copy (:meth:`copy`),
  whose records are replayed into the copy as they are made, appends the records, and only
  then swaps the copy in. So the state in memory is always the fold of the log, and a new
  coordinator that replays the log has the same state.
- Three epochs. The **group epoch** rises whenever the membership or a subscription (or the
  subscribed topics' partitions) changes. The **assignment epoch** is the group epoch the
  **target assignment** was computed for (by the assignor, when the group epoch passes it).
  Each member's **member epoch** is the assignment epoch it has caught up with.
- A member moves towards its target partition by partition, without stopping the others
  (:func:`reconcile`): a partition it must give up is first left out of its assignment and
  held "pending revocation" until the member's heartbeat no longer owns it; only then does the
  member take the new epoch, and a partition another member still holds (assigned or pending)
  is handed over only once that member has let it go ("unreleased").
- Session and revocation deadlines are times in this coordinator's memory, never records: a
  new coordinator gives every member a fresh session (as Kafka does).

Topic ids, not names, are what assignments hold (as in Kafka's records): a topic deleted and
created again under the same name is another topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from storage.group_records import (
    Assignment,
    CurrentAssignmentKey,
    CurrentAssignmentValue,
    GroupKey,
    GroupMetadataKey,
    GroupMetadataValue,
    GroupValue,
    MemberMetadataKey,
    MemberMetadataValue,
    MemberState,
    TargetAssignmentMemberKey,
    TargetAssignmentMemberValue,
    TargetAssignmentMetadataKey,
    TargetAssignmentMetadataValue,
)

# A partition by topic id.
TopicPartition = tuple[str, int]

# Kafka 4's consumer-group states (ConsumerGroup.ConsumerGroupState), as its tools print them.
EMPTY = "Empty"
ASSIGNING = "Assigning"
RECONCILING = "Reconciling"
STABLE = "Stable"


def partitions_of(assignment: Assignment) -> frozenset[TopicPartition]:
    return frozenset((topic_id, p) for topic_id, ps in assignment for p in ps)


def assignment_of(partitions: Iterable[TopicPartition]) -> Assignment:
    by_topic: dict[str, list[int]] = {}
    for topic_id, p in partitions:
        by_topic.setdefault(topic_id, []).append(p)
    return tuple((t, tuple(sorted(ps))) for t, ps in sorted(by_topic.items()))


NO_ASSIGNMENT = CurrentAssignmentValue(
    member_epoch=0,
    previous_member_epoch=-1,
    state=MemberState.STABLE,
    assigned=(),
    pending_revocation=(),
)


@dataclass
class ConsumerGroup:
    group_id: str
    epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, MemberMetadataValue] = field(default_factory=dict)
    current: dict[str, CurrentAssignmentValue] = field(default_factory=dict)
    target: dict[str, Assignment] = field(default_factory=dict)
    # Whether a GroupMetadata record is live (the group exists as a consumer group).
    has_metadata: bool = False
    # In memory only (see the module doc): monotonic deadlines in ms.
    session_deadline_ms: dict[str, int] = field(default_factory=dict)
    revocation_deadline_ms: dict[str, int] = field(default_factory=dict)
    # The subscribed topics' (name, id, partition count) the target was computed from; None
    # after a load, so the first heartbeat recomputes it (the same target, by stickiness).
    assigned_topics: tuple[tuple[str, str, int], ...] | None = None

    def copy(self) -> ConsumerGroup:
        """A copy an operation may change (records are frozen; the dicts are not shared)."""
        return ConsumerGroup(
            group_id=self.group_id,
            epoch=self.epoch,
            assignment_epoch=self.assignment_epoch,
            members=dict(self.members),
            current=dict(self.current),
            target=dict(self.target),
            has_metadata=self.has_metadata,
            session_deadline_ms=dict(self.session_deadline_ms),
            revocation_deadline_ms=dict(self.revocation_deadline_ms),
            assigned_topics=self.assigned_topics,
        )

    # -- the fold ------------------------------------------------------------------------------

    def replay(self, key: GroupKey, value: GroupValue | None) -> None:
        """Applies one membership record (offset commits are the shard's)."""
        if isinstance(key, GroupMetadataKey):
            if value is None:
                self.has_metadata = False
                self.epoch = 0
            else:
                assert isinstance(value, GroupMetadataValue), value
                self.has_metadata = True
                self.epoch = value.epoch
        elif isinstance(key, MemberMetadataKey):
            if value is None:
                self.members.pop(key.member_id, None)
                self.session_deadline_ms.pop(key.member_id, None)
            else:
                assert isinstance(value, MemberMetadataValue), value
                self.members[key.member_id] = value
        elif isinstance(key, TargetAssignmentMetadataKey):
            if value is None:
                self.assignment_epoch = 0
            else:
                assert isinstance(value, TargetAssignmentMetadataValue), value
                self.assignment_epoch = value.assignment_epoch
        elif isinstance(key, TargetAssignmentMemberKey):
            if value is None:
                self.target.pop(key.member_id, None)
            else:
                assert isinstance(value, TargetAssignmentMemberValue), value
                self.target[key.member_id] = value.partitions
        elif isinstance(key, CurrentAssignmentKey):
            if value is None:
                self.current.pop(key.member_id, None)
                self.revocation_deadline_ms.pop(key.member_id, None)
            else:
                assert isinstance(value, CurrentAssignmentValue), value
                self.current[key.member_id] = value
        else:
            raise AssertionError(f"not a membership record: {key!r}")

    # -- views ---------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        if not self.members:
            return EMPTY
        if self.epoch > self.assignment_epoch:
            return ASSIGNING
        for member_id in self.members:
            current = self.current.get(member_id, NO_ASSIGNMENT)
            if current.member_epoch != self.assignment_epoch or current.state != MemberState.STABLE:
                return RECONCILING
        return STABLE

    @property
    def is_empty(self) -> bool:
        """Nothing of the group's membership is left (it may still have offsets)."""
        return not (self.has_metadata or self.members or self.current or self.target)

    def assignment(self, member_id: str) -> CurrentAssignmentValue:
        return self.current.get(member_id, NO_ASSIGNMENT)

    def held_by_others(self, member_id: str) -> set[TopicPartition]:
        """Partitions another member holds: assigned to it, or still pending its revocation."""
        held: set[TopicPartition] = set()
        for other, current in self.current.items():
            if other != member_id:
                held |= partitions_of(current.assigned)
                held |= partitions_of(current.pending_revocation)
        return held

    def owner_of(self) -> dict[TopicPartition, str]:
        """Which member holds each partition now (assigned or pending revocation)."""
        owners: dict[TopicPartition, str] = {}
        for member_id, current in sorted(self.current.items()):
            for tp in partitions_of(current.assigned) | partitions_of(current.pending_revocation):
                owners.setdefault(tp, member_id)
        return owners


def reconcile(
    current: CurrentAssignmentValue,
    target: frozenset[TopicPartition],
    target_epoch: int,
    held_by_others: set[TopicPartition],
    owned: frozenset[TopicPartition] | None,
) -> CurrentAssignmentValue:
    """The member's next assignment (Kafka's CurrentAssignmentBuilder), given its target at
    ``target_epoch``, what the other members hold, and what its heartbeat says it owns
    (None: not said). Returns ``current`` itself when nothing changes."""
    if current.state == MemberState.UNREVOKED_PARTITIONS:
        pending = partitions_of(current.pending_revocation)
        if owned is None or owned & pending:
            return current  # still revoking
        # Revoked: continue from what it kept.
        current = CurrentAssignmentValue(
            member_epoch=current.member_epoch,
            previous_member_epoch=current.previous_member_epoch,
            state=MemberState.STABLE,
            assigned=current.assigned,
            pending_revocation=(),
        )
    elif current.member_epoch == target_epoch and current.state == MemberState.STABLE:
        return current
    assigned = partitions_of(current.assigned)
    keep = assigned & target
    revoke = assigned - target
    if revoke:
        return CurrentAssignmentValue(
            member_epoch=current.member_epoch,
            previous_member_epoch=current.previous_member_epoch,
            state=MemberState.UNREVOKED_PARTITIONS,
            assigned=assignment_of(keep),
            pending_revocation=assignment_of(revoke),
        )
    newly = (target - keep) - held_by_others
    now_assigned = keep | newly
    unreleased = target - now_assigned
    moved_epoch = current.member_epoch != target_epoch
    return CurrentAssignmentValue(
        member_epoch=target_epoch,
        previous_member_epoch=current.member_epoch
        if moved_epoch
        else current.previous_member_epoch,
        state=MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE,
        assigned=assignment_of(now_assigned),
        pending_revocation=(),
    )


def topics_snapshot(
    subscribed: Iterable[str], topics: Mapping[str, tuple[str, int]]
) -> tuple[tuple[str, str, int], ...]:
    """(name, id, partitions) of the subscribed topics that exist: when it changes, the target
    must be computed again."""
    return tuple(
        (name, topics[name][0], topics[name][1])
        for name in sorted(set(subscribed))
        if name in topics
    )
