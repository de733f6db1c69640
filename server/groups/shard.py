"""The groups of one ``__consumer_offsets`` partition, and the operations on them, with no I/O.

A coordinator (``server/groups/runtime.py``) holds one :class:`GroupShard` per partition it
leads. Every operation is planned first (``plan_*``): it checks the request against the state
and returns the records to append with the answer, changing nothing. The driver appends the
records and, only once they are in the log, calls :meth:`GroupShard.apply`; so the shard is
always the fold of its partition's log (see ``server/groups/group.py``).

Time comes in as arguments: ``now_ms`` is a monotonic clock for sessions, ``wall_ms`` the
wall clock for commit timestamps.

Classic groups (JoinGroup/SyncGroup, ``classic.py``) live beside the consumer groups in
:attr:`GroupShard.classic`; their operations are in ``classic_shard.py``. A group id is one or
the other (Kafka's rule): an empty group of one kind is replaced by the other kind's first
join, a non-empty one refuses the other protocol (GROUP_ID_NOT_FOUND to a consumer heartbeat,
INCONSISTENT_GROUP_PROTOCOL to a JoinGroup). A group that has only committed offsets is of
neither kind yet.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from client.protocol import (
    FENCED_MEMBER_EPOCH,
    GROUP_ID_NOT_FOUND,
    GROUP_MAX_SIZE_REACHED,
    INVALID_REQUEST,
    NON_EMPTY_GROUP,
    STALE_MEMBER_EPOCH,
    UNKNOWN_MEMBER_ID,
    UNKNOWN_PARTITION,
    UNKNOWN_TOPIC,
    UNSUPPORTED_ASSIGNOR,
    ApiError,
)
from server import limits
from server.config import GroupSettings
from server.groups import assignors
from server.groups.classic import ClassicGroup, ClassicSettings
from server.groups.classic_messages import UNKNOWN_MEMBER, KafkaError, Now, api_error
from server.groups.classic_views import describe as describe_classic
from server.groups.classic_views import load as load_classic
from server.groups.group import (
    ConsumerGroup,
    TopicPartition,
    assignment_of,
    partitions_of,
    reconcile,
    topics_snapshot,
)
from storage.group_records import (
    ClassicGroupKey,
    ClassicGroupValue,
    CurrentAssignmentKey,
    GroupKey,
    GroupMetadataKey,
    GroupMetadataValue,
    GroupValue,
    MemberMetadataKey,
    MemberMetadataValue,
    MemberState,
    OffsetCommitKey,
    OffsetCommitValue,
    TargetAssignmentMemberKey,
    TargetAssignmentMemberValue,
    TargetAssignmentMetadataKey,
    TargetAssignmentMetadataValue,
)

GroupRecord = tuple[GroupKey, GroupValue | None]


@dataclass(frozen=True)
class Topics:
    """The metadata's topics as groups see them: name -> (topic id, partition count)."""

    by_name: Mapping[str, tuple[str, int]]

    @property
    def names(self) -> dict[str, str]:
        return {topic_id: name for name, (topic_id, _) in self.by_name.items()}

    def to_names(self, partitions: Iterable[TopicPartition]) -> list[tuple[str, int]]:
        """(name, partition) of partitions by topic id, sorted; ids of deleted topics dropped."""
        names = self.names
        return sorted((names[t], p) for t, p in partitions if t in names)


@dataclass(frozen=True)
class Heartbeat:
    """A parsed ``POST /v1/groups/{g}/heartbeat`` (see the HTTP contract)."""

    member_id: str | None
    member_epoch: int
    topics: tuple[str, ...] | None = None
    owned: tuple[tuple[str, int], ...] | None = None  # by topic name
    session_timeout_ms: int | None = None
    rebalance_timeout_ms: int | None = None
    assignor: str | None = None
    client_id: str = ""
    client_host: str = ""


@dataclass(frozen=True)
class CommitOffset:
    topic: str
    partition: int
    offset: int
    metadata: str = ""
    leader_epoch: int = -1  # the committer's leader epoch of the partition, -1 = none


@dataclass
class Planned:
    """An operation's records and answer. ``group`` is the changed copy of the group to swap
    in once the records are appended (None when only offsets change)."""

    group_id: str
    records: list[GroupRecord] = field(default_factory=list)
    group: ConsumerGroup | None = None
    answer: Any = None


class _Change:
    """A group being changed by one operation: each record is replayed into the copy as it is
    made, so later steps of the operation see it."""

    def __init__(self, group: ConsumerGroup) -> None:
        self.group = group
        self.records: list[GroupRecord] = []
        self.bumped = False

    def emit(self, key: GroupKey, value: GroupValue | None) -> None:
        self.records.append((key, value))
        self.group.replay(key, value)

    def bump_epoch(self) -> None:
        """Raises the group epoch, at most once per operation."""
        if not self.bumped:
            self.bumped = True
            self.emit(
                GroupMetadataKey(self.group.group_id), GroupMetadataValue(self.group.epoch + 1)
            )


class GroupShard:
    def __init__(
        self,
        settings: GroupSettings,
        new_member_id: Callable[[], str],
        classic_settings: ClassicSettings | None = None,
        new_uuid: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.settings = settings
        self.classic_settings = classic_settings or ClassicSettings()
        self._new_member_id = new_member_id
        # A classic member's id is Kafka's: its client id, "-", a random UUID.
        self.new_uuid = new_uuid
        self.groups: dict[str, ConsumerGroup] = {}
        self.classic: dict[str, ClassicGroup] = {}
        self.offsets: dict[str, dict[tuple[str, int], OffsetCommitValue]] = {}

    # -- the fold ------------------------------------------------------------------------------

    def replay(self, key: GroupKey, value: GroupValue | None) -> None:
        """Applies one record of the partition's log."""
        group_id = key.group
        if isinstance(key, OffsetCommitKey):
            offsets = self.offsets.setdefault(group_id, {})
            if value is None:
                offsets.pop((key.topic, key.partition), None)
                if not offsets:
                    del self.offsets[group_id]
            else:
                assert isinstance(value, OffsetCommitValue), value
                offsets[(key.topic, key.partition)] = value
            return
        if isinstance(key, ClassicGroupKey):
            # Kafka's replay: the group is rebuilt from its latest record, or gone.
            if value is None:
                self.classic.pop(group_id, None)
            else:
                assert isinstance(value, ClassicGroupValue), value
                self.classic[group_id] = load_classic(group_id, value, self.classic_settings)
            return
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = ConsumerGroup(group_id)
        group.replay(key, value)
        if group.is_empty:
            del self.groups[group_id]

    def apply(self, planned: Planned) -> None:
        """Makes a planned operation's change, once its records are in the log."""
        for key, value in planned.records:
            if isinstance(key, OffsetCommitKey):
                self.replay(key, value)
            elif isinstance(key, ClassicGroupKey):
                # Only a classic group's removal is planned here (a delete, or a consumer
                # group's first member taking the id over); its other records are written
                # from the live group, which is never rebuilt from them while loaded.
                assert value is None, value
                self.classic.pop(key.group, None)
        if planned.group is not None:
            if planned.group.is_empty:
                self.groups.pop(planned.group_id, None)
            else:
                self.groups[planned.group_id] = planned.group

    def rearm_sessions(self, now_ms: int, wall_ms: int = 0) -> None:
        """After a load: every member gets a whole session from now (deadlines are not
        records); a member revoking partitions gets a whole rebalance timeout; a classic group
        over its size limit rebalances."""
        for group in self.groups.values():
            for member_id, member in group.members.items():
                group.session_deadline_ms[member_id] = now_ms + self._session_ms(member)
                if group.assignment(member_id).state == MemberState.UNREVOKED_PARTITIONS:
                    group.revocation_deadline_ms[member_id] = now_ms + member.rebalance_timeout_ms
        for classic in self.classic.values():
            step = classic.rearm(Now(now_ms, wall_ms))
            assert not step.records and not step.replies, step  # nobody waits after a load

    def exists(self, group_id: str) -> bool:
        return group_id in self.groups or group_id in self.classic or group_id in self.offsets

    def _session_ms(self, member: MemberMetadataValue) -> int:
        session = member.session_timeout_ms
        return session if session > 0 else self.settings.session_timeout_ms

    # -- membership ----------------------------------------------------------------------------

    def plan_heartbeat(self, group_id: str, hb: Heartbeat, topics: Topics, now_ms: int) -> Planned:
        """KIP-848's ConsumerGroupHeartbeat: join (epoch 0), heartbeat, or leave (-1)."""
        classic = self.classic.get(group_id)
        taken_over: list[GroupRecord] = []
        if classic is not None:
            if hb.member_epoch != 0 or not classic.is_empty:
                raise ApiError(
                    GROUP_ID_NOT_FOUND,
                    f"Group {group_id} is not a consumer group: it is a classic group "
                    f"({classic.state}, {len(classic.members)} member(s)) of Kafka's "
                    f"JoinGroup/SyncGroup protocol",
                )
            # An empty classic group makes way (Kafka's maybeDeleteEmptyClassicGroup).
            taken_over.append((ClassicGroupKey(group_id), None))
        planned = self._plan_heartbeat(group_id, hb, topics, now_ms)
        planned.records[:0] = taken_over
        return planned

    def _plan_heartbeat(self, group_id: str, hb: Heartbeat, topics: Topics, now_ms: int) -> Planned:
        existing = self.groups.get(group_id)
        change = _Change(existing.copy() if existing is not None else ConsumerGroup(group_id))
        group = change.group
        if hb.member_epoch == -1:
            if hb.member_id is None or hb.member_id not in group.members:
                raise _unknown_member(group_id, hb.member_id)
            self._remove(change, hb.member_id)
            answer = {
                "member_id": hb.member_id,
                "member_epoch": -1,
                "heartbeat_interval_ms": 0,
                "assignment": [],
            }
            return Planned(group_id, change.records, group, answer)

        if hb.assignor is not None and hb.assignor not in self.settings.assignors:
            raise ApiError(
                UNSUPPORTED_ASSIGNOR,
                f"assignor {hb.assignor!r} is not one of this cluster's "
                f"({', '.join(self.settings.assignors)})",
            )
        if hb.member_epoch == 0:
            member_id = self._join(change, hb, now_ms)
            owned: frozenset[TopicPartition] | None = frozenset()
        else:
            member_id = self._check_member(group, hb)
            member = group.members[member_id]
            if hb.topics is not None and tuple(sorted(set(hb.topics))) != tuple(
                sorted(member.subscribed_topic_names)
            ):
                change.emit(
                    MemberMetadataKey(group_id, member_id),
                    _member_value(member, subscribed=tuple(sorted(set(hb.topics)))),
                )
                change.bump_epoch()
            owned = self._owned_ids(hb, topics)
        group.session_deadline_ms[member_id] = now_ms + self._session_ms(group.members[member_id])

        self._update_target(change, topics)
        self._reconcile_member(change, member_id, owned, now_ms)
        assigned = partitions_of(group.assignment(member_id).assigned)
        answer = {
            "member_id": member_id,
            "member_epoch": group.assignment(member_id).member_epoch,
            "heartbeat_interval_ms": self.settings.heartbeat_interval_ms,
            "assignment": [{"topic": t, "partition": p} for t, p in topics.to_names(assigned)],
        }
        return Planned(group_id, change.records, group, answer)

    def _join(self, change: _Change, hb: Heartbeat, now_ms: int) -> str:
        group = change.group
        if hb.topics is None:
            raise ApiError(INVALID_REQUEST, 'joining (member_epoch 0) needs "topics"')
        member_id = hb.member_id or self._new_member_id()
        if member_id in group.members:
            # The member lost its state (restarted with the same id): its old incarnation
            # leaves first, freeing what it held.
            self._remove(change, member_id)
        elif len(group.members) >= limits.GROUP_MEMBERS_MAX:
            raise ApiError(
                GROUP_MAX_SIZE_REACHED,
                f"group {group.group_id} has reached its maximum size "
                f"({limits.GROUP_MEMBERS_MAX} members)",
            )
        session = hb.session_timeout_ms or self.settings.session_timeout_ms
        if not (
            self.settings.min_session_timeout_ms <= session <= self.settings.max_session_timeout_ms
        ):
            raise ApiError(
                INVALID_REQUEST,
                f"session_timeout_ms {session} is outside the range this cluster allows "
                f"({self.settings.min_session_timeout_ms}..{self.settings.max_session_timeout_ms})",
            )
        change.emit(
            MemberMetadataKey(group.group_id, member_id),
            MemberMetadataValue(
                client_id=hb.client_id,
                client_host=hb.client_host,
                subscribed_topic_names=tuple(sorted(set(hb.topics))),
                server_assignor=hb.assignor,
                rebalance_timeout_ms=hb.rebalance_timeout_ms or limits.GROUP_REBALANCE_TIMEOUT_MS,
                session_timeout_ms=session,
            ),
        )
        change.bump_epoch()
        return member_id

    def _check_member(self, group: ConsumerGroup, hb: Heartbeat) -> str:
        """The member, if the heartbeat's epoch is its own (or the one before, when the answer
        that carried the new one was lost and it owns nothing it should not)."""
        member_id = hb.member_id
        if member_id is None or member_id not in group.members:
            raise _unknown_member(group.group_id, member_id)
        current = group.assignment(member_id)
        if hb.member_epoch == current.member_epoch:
            return member_id
        if hb.member_epoch == current.previous_member_epoch and hb.owned is not None:
            return member_id
        raise ApiError(
            FENCED_MEMBER_EPOCH,
            f"member {member_id} of group {group.group_id} sent epoch {hb.member_epoch}, "
            f"its epoch is {current.member_epoch}: give up your partitions and join again "
            f"with member_epoch 0",
            {"member_epoch": current.member_epoch},
        )

    @staticmethod
    def _owned_ids(hb: Heartbeat, topics: Topics) -> frozenset[TopicPartition] | None:
        if hb.owned is None:
            return None
        return frozenset(
            (topics.by_name[name][0], p) for name, p in hb.owned if name in topics.by_name
        )

    def _remove(self, change: _Change, member_id: str) -> None:
        group_id = change.group.group_id
        if member_id in change.group.current:
            change.emit(CurrentAssignmentKey(group_id, member_id), None)
        if member_id in change.group.target:
            change.emit(TargetAssignmentMemberKey(group_id, member_id), None)
        change.emit(MemberMetadataKey(group_id, member_id), None)
        change.bump_epoch()

    def _assignor(self, group: ConsumerGroup) -> str:
        wanted = Counter(m.server_assignor for m in group.members.values() if m.server_assignor)
        if wanted:
            top = max(wanted.values())
            # The most asked for; a tie goes to the one this cluster lists first.
            for name in self.settings.assignors:
                if wanted.get(name) == top:
                    return name
        return self.settings.assignors[0]

    def _update_target(self, change: _Change, topics: Topics) -> None:
        """A new target assignment when the group epoch passed the assignment epoch, or when
        the subscribed topics changed (created, deleted, partitions added)."""
        group = change.group
        subscribed = {t for m in group.members.values() for t in m.subscribed_topic_names}
        snapshot = topics_snapshot(subscribed, topics.by_name)
        if (
            group.members
            and snapshot != group.assigned_topics
            and group.assigned_topics is not None
        ):
            change.bump_epoch()
        group.assigned_topics = snapshot
        if group.epoch <= group.assignment_epoch:
            return
        names = topics.names
        previous = {
            member_id: _by_name(target, names) for member_id, target in group.target.items()
        }
        target = assignors.assign(
            self._assignor(group),
            {m: set(v.subscribed_topic_names) for m, v in group.members.items()},
            {name: count for name, (_, count) in topics.by_name.items()},
            previous,
        )
        for member_id in sorted(group.members):
            new = assignment_of(
                (topics.by_name[t][0], p) for t, ps in target.get(member_id, {}).items() for p in ps
            )
            if group.target.get(member_id) != new:
                change.emit(
                    TargetAssignmentMemberKey(group.group_id, member_id),
                    TargetAssignmentMemberValue(new),
                )
        change.emit(
            TargetAssignmentMetadataKey(group.group_id), TargetAssignmentMetadataValue(group.epoch)
        )

    def _reconcile_member(
        self, change: _Change, member_id: str, owned: frozenset[TopicPartition] | None, now_ms: int
    ) -> None:
        group = change.group
        current = group.assignment(member_id)
        new = reconcile(
            current,
            partitions_of(group.target.get(member_id, ())),
            group.assignment_epoch,
            group.held_by_others(member_id),
            owned,
        )
        if new is not current or member_id not in group.current:
            change.emit(CurrentAssignmentKey(group.group_id, member_id), new)
        if new.state == MemberState.UNREVOKED_PARTITIONS:
            if current.state != MemberState.UNREVOKED_PARTITIONS:
                timeout = group.members[member_id].rebalance_timeout_ms
                group.revocation_deadline_ms[member_id] = now_ms + timeout
        else:
            group.revocation_deadline_ms.pop(member_id, None)

    def plan_leave(self, group_id: str, member_id: str) -> Planned:
        return self.plan_heartbeat(group_id, Heartbeat(member_id, -1), Topics({}), 0)

    def late_members(self, group_id: str, now_ms: int) -> list[str]:
        """Members whose session expired, or that did not give up partitions within their
        rebalance timeout."""
        group = self.groups.get(group_id)
        if group is None:
            return []
        return sorted(
            m
            for m in group.members
            if group.session_deadline_ms.get(m, now_ms + 1) <= now_ms
            or group.revocation_deadline_ms.get(m, now_ms + 1) <= now_ms
        )

    def plan_expiry(self, group_id: str, now_ms: int) -> Planned | None:
        """Removes the group's late members (:meth:`late_members`); None when there are none."""
        late = self.late_members(group_id, now_ms)
        if not late:
            return None
        change = _Change(self.groups[group_id].copy())
        for member_id in late:
            self._remove(change, member_id)
        return Planned(group_id, change.records, change.group, late)

    # -- offsets -------------------------------------------------------------------------------

    def plan_commit(
        self,
        group_id: str,
        member_id: str | None,
        member_epoch: int | None,
        offsets: list[CommitOffset],
        topics: Topics,
        wall_ms: int,
        *,
        group_instance_id: str | None = None,
        now_ms: int | None = None,
        api_version: int | None = None,
    ) -> Planned:
        """An offset commit: by a member at its epoch (a consumer group) or generation (a
        classic group: ``member_epoch`` is the generation, as in Kafka's OffsetCommit v9+), or
        without member when the group has none (an admin reset, a consumer that assigns
        partitions itself). ``api_version``: the Kafka OffsetCommit version, for Kafka's answer
        to a member's commit to a group that does not exist (GROUP_ID_NOT_FOUND from v9,
        ILLEGAL_GENERATION before); None for HTTP (UNKNOWN_MEMBER_ID). ``now_ms``: a classic
        member's commit keeps its session, as Kafka's does."""
        for o in offsets:
            if o.topic not in topics.by_name:
                raise ApiError(UNKNOWN_TOPIC, f"Topic '{o.topic}' does not exist.")
            count = topics.by_name[o.topic][1]
            if not 0 <= o.partition < count:
                raise ApiError(
                    UNKNOWN_PARTITION,
                    f"partition {o.partition} of topic '{o.topic}' does not exist (it has {count})",
                )
            if len(o.metadata.encode()) > self.settings.offset_metadata_max_bytes:
                raise ApiError(
                    INVALID_REQUEST,
                    f"the metadata of {o.topic}-{o.partition} is longer than "
                    f"offset.metadata.max.bytes ({self.settings.offset_metadata_max_bytes}) "
                    f"(Kafka's OFFSET_METADATA_TOO_LARGE)",
                )
        classic = self.classic.get(group_id)
        if classic is not None:
            generation = -1 if member_epoch is None else member_epoch
            error = classic.validate_offset_commit(
                member_id or UNKNOWN_MEMBER, group_instance_id, generation
            )
            if error is not None:
                raise api_error(error, _commit_refusal(group_id, member_id, generation, error))
            if member_id is not None and now_ms is not None:
                classic.committed_by(member_id, Now(now_ms, wall_ms))
        else:
            self._check_committer(group_id, member_id, member_epoch, api_version)
        records: list[GroupRecord] = [
            (
                OffsetCommitKey(group_id, o.topic, o.partition),
                OffsetCommitValue(
                    o.offset,
                    o.leader_epoch,
                    o.metadata,
                    wall_ms,
                    topic_id=topics.by_name[o.topic][0],
                ),
            )
            for o in offsets
        ]
        answer = {
            "group": group_id,
            "offsets": [
                {"topic": o.topic, "partition": o.partition, "offset": o.offset} for o in offsets
            ],
        }
        return Planned(group_id, records, None, answer)

    def _check_committer(
        self,
        group_id: str,
        member_id: str | None,
        member_epoch: int | None,
        api_version: int | None,
    ) -> None:
        """Raises unless a commit to a group that is not classic may go ahead."""
        group = self.groups.get(group_id)
        members = group.members if group is not None else {}
        by_member = member_id is not None or (member_epoch is not None and member_epoch >= 0)
        if by_member and api_version is not None and not self.exists(group_id):
            if api_version >= 9:
                raise ApiError(GROUP_ID_NOT_FOUND, f"Group {group_id} does not exist.")
            raise api_error(
                KafkaError.ILLEGAL_GENERATION,
                f"group {group_id} does not exist (Kafka's answer before OffsetCommit v9)",
            )
        if member_id is None:
            if members:
                raise ApiError(
                    UNKNOWN_MEMBER_ID,
                    f"group {group_id} has active members: only a member may commit "
                    f"(give member_id and member_epoch)",
                )
            return
        if member_id not in members:
            raise _unknown_member(group_id, member_id)
        assert group is not None
        epoch = group.assignment(member_id).member_epoch
        if member_epoch is None or member_epoch > epoch:
            raise ApiError(
                FENCED_MEMBER_EPOCH,
                f"member {member_id} committed with epoch {member_epoch}, its epoch is {epoch}",
                {"member_epoch": epoch},
            )
        if member_epoch < epoch:
            raise ApiError(
                STALE_MEMBER_EPOCH,
                f"member {member_id} committed with epoch {member_epoch}, its epoch is "
                f"{epoch}: commit again with the current epoch",
                {"member_epoch": epoch},
            )

    def committed(self, group_id: str, topic: str | None = None) -> list[dict[str, Any]]:
        """The group's committed offsets, sorted (empty for a group without any)."""
        return [
            {
                "topic": t,
                "partition": p,
                "offset": v.offset,
                "metadata": v.metadata,
                "commit_timestamp": v.commit_timestamp_ms,
            }
            for (t, p), v in sorted(self.offsets.get(group_id, {}).items())
            if topic is None or t == topic
        ]

    def check_offset_fetch(self, group_id: str, member_id: str | None, member_epoch: int) -> None:
        """Kafka's check of an OffsetFetch (v9+) naming a member of a consumer group
        (``ConsumerGroup.validateOffsetFetch``): it must be a member, at its current epoch.
        Nothing is checked without a member (an admin, a classic consumer) or for a group that
        is not a consumer group. Raises UNKNOWN_MEMBER_ID or STALE_MEMBER_EPOCH."""
        group = self.groups.get(group_id)
        if group is None or (not member_id and member_epoch < 0):
            return
        if not member_id or member_id not in group.members:
            raise _unknown_member(group_id, member_id)
        epoch = group.assignment(member_id).member_epoch
        if member_epoch != epoch:
            raise ApiError(
                STALE_MEMBER_EPOCH,
                f"The received member epoch {member_epoch} does not match the expected member "
                f"epoch {epoch}.",
                {"member_epoch": epoch},
            )

    def plan_offset_delete(self, group_id: str, partitions: Iterable[tuple[str, int]]) -> Planned:
        """Kafka's OffsetDelete: tombstones for the committed offsets of ``partitions`` (those
        without one need none), except on topics a member of the group subscribes to; the
        answer is those topics, sorted, whose partitions Kafka answers GROUP_SUBSCRIBED_TO_TOPIC.
        Raises GROUP_ID_NOT_FOUND for a group that does not exist and NON_EMPTY_GROUP for a
        classic group with members (Kafka's ``validateOffsetDelete``)."""
        if not self.exists(group_id):
            raise ApiError(GROUP_ID_NOT_FOUND, f"Group {group_id} not found.")
        wanted = list(dict.fromkeys(partitions))
        subscribed: set[str] = set()
        classic = self.classic.get(group_id)
        if classic is not None and not classic.is_empty:
            raise ApiError(
                NON_EMPTY_GROUP,
                f"The group '{group_id}' is not empty: it is {classic.state} with "
                f"{len(classic.members)} member(s)",
            )
        group = self.groups.get(group_id)
        if group is not None:
            subscribed = {t for m in group.members.values() for t in m.subscribed_topic_names}
        committed = self.offsets.get(group_id, {})
        records: list[GroupRecord] = [
            (OffsetCommitKey(group_id, t, p), None)
            for t, p in wanted
            if t not in subscribed and (t, p) in committed
        ]
        return Planned(group_id, records, None, sorted(subscribed & {t for t, _ in wanted}))

    # -- admin ---------------------------------------------------------------------------------

    def plan_delete(self, group_id: str) -> Planned:
        """Kafka's DeleteGroups: the group's offsets and metadata go; refused with members."""
        if not self.exists(group_id):
            raise ApiError(GROUP_ID_NOT_FOUND, f"Consumer group '{group_id}' does not exist.")
        offsets: list[GroupRecord] = [
            (OffsetCommitKey(group_id, t, p), None)
            for (t, p) in sorted(self.offsets.get(group_id, {}))
        ]
        classic = self.classic.get(group_id)
        if classic is not None:
            if not classic.is_empty:
                raise ApiError(
                    NON_EMPTY_GROUP,
                    f"The group '{group_id}' is not empty: it is {classic.state} with "
                    f"{len(classic.members)} member(s)",
                )
            return Planned(group_id, [*offsets, (ClassicGroupKey(group_id), None)], None, None)
        existing = self.groups.get(group_id)
        change = _Change(existing.copy() if existing is not None else ConsumerGroup(group_id))
        group = change.group
        if group.members:
            raise ApiError(
                NON_EMPTY_GROUP,
                f"The group '{group_id}' is not empty: it has {len(group.members)} active "
                f"member(s)",
            )
        consumer_tombstones(change)
        return Planned(group_id, offsets + change.records, group, None)

    def summary(self, group_id: str) -> dict[str, Any]:
        classic = self.classic.get(group_id)
        if classic is not None:
            return {
                "group": group_id,
                "state": classic.state,
                "type": "classic",
                "protocol_type": classic.protocol_type or "",
                "members": len(classic.members),
            }
        group = self.groups.get(group_id)
        return {
            "group": group_id,
            "state": group.state if group is not None else "Empty",
            "type": "consumer",
            "members": len(group.members) if group is not None else 0,
        }

    def kind(self, group_id: str) -> str | None:
        """The group's type as Kafka names it: "consumer" (KIP-848's protocol), "classic" (the
        JoinGroup protocol's, or a group that only has committed offsets: Kafka's "simple"
        group, an Empty classic group made by a commit without member), None for none."""
        if group_id in self.classic:
            return "classic"
        if group_id in self.groups:
            return "consumer"
        return "classic" if group_id in self.offsets else None

    def kafka_listing(self, group_id: str) -> tuple[str, str, str]:
        """(type, protocol type, state) of the group as Kafka's ListGroups shows it."""
        classic = self.classic.get(group_id)
        if classic is not None:
            return "classic", classic.protocol_type or "", classic.state
        group = self.groups.get(group_id)
        if group is not None:
            return "consumer", "consumer", group.state
        return "classic", "", "Empty"

    def group_ids(self) -> list[str]:
        return sorted(set(self.groups) | set(self.classic) | set(self.offsets))

    def describe(self, group_id: str, topics: Topics) -> dict[str, Any]:
        """The group's members and offsets (without log end offsets: the driver adds them)."""
        if not self.exists(group_id):
            raise ApiError(GROUP_ID_NOT_FOUND, f"Consumer group '{group_id}' does not exist.")
        classic = self.classic.get(group_id)
        if classic is not None:
            body = describe_classic(classic)
            owners = {
                (a["topic"], a["partition"]): m["member_id"]
                for m in body["members"]
                for a in m["assignment"]
            }
            body["offsets"] = self._offsets_json(group_id, owners)
            return body
        group = self.groups.get(group_id) or ConsumerGroup(group_id)
        members = []
        names = topics.names
        for member_id, member in sorted(group.members.items()):
            current = group.assignment(member_id)
            members.append(
                {
                    "member_id": member_id,
                    "client_id": member.client_id,
                    "client_host": member.client_host,
                    "member_epoch": current.member_epoch,
                    "state": current.state.name,
                    "subscribed_topics": list(member.subscribed_topic_names),
                    "assignment": _json_partitions(partitions_of(current.assigned), names),
                    "target_assignment": _json_partitions(
                        partitions_of(group.target.get(member_id, ())), names
                    ),
                }
            )
        owners = {(names[t], p): m for (t, p), m in group.owner_of().items() if t in names}
        return {
            "group": group_id,
            "type": "consumer",
            "state": group.state,
            "group_epoch": group.epoch,
            "assignment_epoch": group.assignment_epoch,
            "assignor": self._assignor(group),
            "members": members,
            "offsets": self._offsets_json(group_id, owners),
        }

    def _offsets_json(
        self, group_id: str, owners: Mapping[tuple[str, int], str]
    ) -> list[dict[str, Any]]:
        """Every partition with a committed offset or an owner, sorted."""
        committed = self.offsets.get(group_id, {})
        offsets = []
        for topic, partition in sorted(set(committed) | set(owners)):
            value = committed.get((topic, partition))
            offsets.append(
                {
                    "topic": topic,
                    "partition": partition,
                    "offset": None if value is None else value.offset,
                    "metadata": "" if value is None else value.metadata,
                    "member_id": owners.get((topic, partition)),
                }
            )
        return offsets


def tombstones_of_empty(group: ConsumerGroup) -> list[GroupRecord]:
    """The records that delete a consumer group without members (not its offsets)."""
    change = _Change(group.copy())
    consumer_tombstones(change)
    return change.records


def consumer_tombstones(change: _Change) -> None:
    """Emits the tombstones of a consumer group without members: its target and current
    assignments, their epoch and the group's (Kafka's ConsumerGroup.createGroupTombstoneRecords
    less the members, which it has none of)."""
    group = change.group
    assert not group.members, group.members
    for member_id in sorted(group.target):
        change.emit(TargetAssignmentMemberKey(group.group_id, member_id), None)
    for member_id in sorted(group.current):
        change.emit(CurrentAssignmentKey(group.group_id, member_id), None)
    if group.assignment_epoch:
        change.emit(TargetAssignmentMetadataKey(group.group_id), None)
    if group.has_metadata:
        change.emit(GroupMetadataKey(group.group_id), None)


def _commit_refusal(
    group_id: str, member_id: str | None, generation: int, error: KafkaError
) -> str:
    who = f"member {member_id}" if member_id else "a commit without member"
    if error == KafkaError.ILLEGAL_GENERATION:
        return (
            f"{who} of classic group {group_id} committed at generation {generation}, which is "
            f"not the group's: join the group again"
        )
    if error == KafkaError.REBALANCE_IN_PROGRESS:
        return f"classic group {group_id} is rebalancing: commit again once it is stable"
    if error == KafkaError.UNKNOWN_MEMBER_ID and not member_id:
        return f"classic group {group_id} has active members: only a member may commit"
    return f"{who} may not commit to classic group {group_id} ({error})"


def _unknown_member(group_id: str, member_id: str | None) -> ApiError:
    return ApiError(
        UNKNOWN_MEMBER_ID,
        f"member {member_id} is not a member of group {group_id} (its session may have "
        f"expired): join again with member_epoch 0",
    )


def _member_value(
    member: MemberMetadataValue, *, subscribed: tuple[str, ...]
) -> MemberMetadataValue:
    return MemberMetadataValue(
        client_id=member.client_id,
        client_host=member.client_host,
        subscribed_topic_names=subscribed,
        server_assignor=member.server_assignor,
        rebalance_timeout_ms=member.rebalance_timeout_ms,
        session_timeout_ms=member.session_timeout_ms,
    )


def _by_name(assignment: Any, names: Mapping[str, str]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for topic_id, p in partitions_of(assignment):
        if topic_id in names:
            out.setdefault(names[topic_id], set()).add(p)
    return out


def _json_partitions(
    partitions: Iterable[TopicPartition], names: Mapping[str, str]
) -> list[dict[str, Any]]:
    return [
        {"topic": names[t], "partition": p}
        for t, p in sorted(partitions, key=lambda tp: (names.get(tp[0], ""), tp[1]))
        if t in names
    ]
