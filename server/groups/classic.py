"""One classic group (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), as Kafka 4.4's group
coordinator runs it (``ClassicGroup`` and the classic paths of ``GroupMetadataManager``): the
protocol of Kafka's clients before KIP-848, which librdkafka, kafka-python and aiokafka speak.

Theory of operation:

- States (Kafka's ``ClassicGroupState``)::

      Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
      CompletingRebalance --leader's assignment stored--> Stable
      Stable | CompletingRebalance --join with new metadata, leave, expiry--> PreparingRebalance
      PreparingRebalance --nobody left--> Empty;   any --unloaded--> Dead

  A transition not in :data:`VALID_PREVIOUS` is a bug and raises.
- **Join.** A member joins and waits ("awaiting join") until every member has joined again or
  the rebalance timeout (the largest of the members') passes; members that did not join again
  are removed. The generation then rises, the protocol every member supports wins by the
  members' votes (each votes for its most preferred one), and every waiting member gets its
  answer; the leader's lists the members with their metadata. The first rebalance of an empty
  group waits ``initial_rebalance_delay_ms`` first, and again (within the rebalance timeout)
  while new members keep coming (Kafka's ``group.initial.rebalance.delay.ms``).
- **KIP-394.** A first join of JoinGroup v4+ without a member id gets MEMBER_ID_REQUIRED and a
  new id; it is "pending" until it joins with it, and forgotten after its session timeout.
- **Sync.** Each member then sends SyncGroup and waits; the leader's carries every member's
  assignment. The group's record (generation, members, assignment) is appended, and only once
  it is stored (:meth:`ClassicGroup.assignment_stored`) does every waiting member get its
  assignment and the group turn Stable. A member that does not sync within the rebalance
  timeout is removed and the group rebalances.
- **Liveness.** A member's heartbeat (and its offset commits in Stable/PreparingRebalance)
  pushes its session deadline; a member past it is removed, unless it is waiting in a join or
  sync (Kafka counts that as alive), except a new member, which only has
  ``new_member_join_timeout_ms`` to see its first join through.

Pure: time comes in (``Now``), nothing awaits. An operation returns a ``Step``
(``classic_messages.py``): the records to append, the answer to the caller (or None: parked,
the answer comes later) and the answers for parked requests (``Reply``), which the driver hands
to its waiting futures.
Deadlines are fields; :meth:`ClassicGroup.next_deadline_ms` says when to call
:meth:`ClassicGroup.tick`.

Unlike a consumer group (``group.py``), a classic group is not the fold of its records: as in
Kafka, the records are its persisted form, written when a generation's assignment is set and
when the group turns empty (and when a join creates it), and read back only when a coordinator
loads the partition (``classic_views.load``), which gives a Stable group (or an Empty
one) of the stored generation: members keep their generation and assignment across a
coordinator move.

Static membership (``group.instance.id``) is refused: a join naming an instance id this group
does not know gets UNSUPPORTED_VERSION, the answer Kafka's clients take for "this broker has no
static membership" (Java's consumer says to unset group.instance.id). Static members of a
loaded record (a Kafka broker's files) are checked as Kafka checks them (FENCED_INSTANCE_ID),
and kept when they do not join again, but a static member is never replaced by a new id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from server import limits
from server.groups.classic_messages import (
    UNKNOWN_MEMBER,
    HeartbeatRequest,
    JoinMember,
    JoinRequest,
    JoinResponse,
    KafkaError,
    LeaveRequest,
    LeaveResponse,
    LeftMember,
    Now,
    Protocols,
    Reply,
    Step,
    StoreAssignment,
    SyncRequest,
    SyncResponse,
)
from storage.group_records import ClassicGroupKey, ClassicGroupValue, ClassicMemberMetadata

EMPTY = "Empty"
PREPARING_REBALANCE = "PreparingRebalance"
COMPLETING_REBALANCE = "CompletingRebalance"
STABLE = "Stable"
DEAD = "Dead"

# Kafka's ClassicGroupState.validPreviousStates.
VALID_PREVIOUS: dict[str, frozenset[str]] = {
    EMPTY: frozenset({PREPARING_REBALANCE}),
    PREPARING_REBALANCE: frozenset({STABLE, COMPLETING_REBALANCE, EMPTY}),
    COMPLETING_REBALANCE: frozenset({PREPARING_REBALANCE}),
    STABLE: frozenset({COMPLETING_REBALANCE}),
    DEAD: frozenset({STABLE, PREPARING_REBALANCE, COMPLETING_REBALANCE, EMPTY, DEAD}),
}

ClassicRecord = tuple[ClassicGroupKey, ClassicGroupValue | None]


@dataclass(frozen=True)
class ClassicSettings:
    """The classic protocol's settings, with Kafka's names and defaults (its group.max.size
    is unbounded; ours is the consumer groups' limit)."""

    initial_rebalance_delay_ms: int = 3000  # group.initial.rebalance.delay.ms
    min_session_timeout_ms: int = 6000  # group.min.session.timeout.ms
    max_session_timeout_ms: int = 1_800_000  # group.max.session.timeout.ms
    max_size: int = limits.GROUP_MEMBERS_MAX  # group.max.size
    # Kafka's classicGroupNewMemberJoinTimeoutMs (not a setting there either): a new member's
    # join is parked with no heartbeat to keep it; a client that gave up would stay forever.
    new_member_join_timeout_ms: int = 300_000


@dataclass
class ClassicMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    assignment: bytes = b""
    awaiting_join: bool = False
    awaiting_sync: bool = False
    is_new: bool = False
    heartbeat_deadline_ms: int | None = None

    def metadata(self, protocol: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        raise AssertionError(f"member {self.member_id} does not support protocol {protocol!r}")

    def vote(self, candidates: set[str]) -> str:
        """Its most preferred protocol among ``candidates`` (Kafka's ClassicGroupMember.vote)."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise AssertionError(f"member {self.member_id} supports none of {sorted(candidates)}")

    def has_satisfied_heartbeat(self) -> bool:
        """Waiting in a join or sync keeps a member alive, unless it is new."""
        return not self.is_new and (self.awaiting_join or self.awaiting_sync)


@dataclass
class _JoinTimer:
    """When the join phase ends: after the initial delay (``initial``, which may be extended
    by ``delay_ms`` while new members come, ``remaining_ms`` at most) or the rebalance
    timeout."""

    deadline_ms: int
    initial: bool = False
    delay_ms: int = 0
    remaining_ms: int = 0


@dataclass
class _SyncTimer:
    deadline_ms: int
    generation: int


class ClassicGroup:
    def __init__(
        self,
        group_id: str,
        settings: ClassicSettings,
        wall_ms: int,
        *,
        state: str = EMPTY,
        generation: int = 0,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
        leader: str | None = None,
    ) -> None:
        self.group_id = group_id
        self.settings = settings
        self.state = state
        self.previous_state = DEAD
        self.state_timestamp_ms = wall_ms
        self.generation = generation
        self.protocol_type = protocol_type
        self.protocol_name = protocol_name
        self.leader = leader
        self.members: dict[str, ClassicMember] = {}
        self.static_members: dict[str, str] = {}
        # KIP-394: member ids handed out that have not joined yet -> their deadline.
        self.pending: dict[str, int] = {}
        self.pending_sync: set[str] = set()
        self.new_member_added = False
        self.join_timer: _JoinTimer | None = None
        self.sync_timer: _SyncTimer | None = None

    def rearm(self, now: Now) -> Step:
        """After a load: every member gets a whole session (deadlines are not stored); a group
        over the size limit rebalances (Kafka's onLoaded)."""
        step = Step()
        for member in self.members.values():
            member.heartbeat_deadline_ms = now.ms + member.session_timeout_ms
        if len(self.members) > self.settings.max_size:
            self._prepare_rebalance(now, step)
        return step

    # -- views ---------------------------------------------------------------------------------

    @property
    def is_empty(self) -> bool:
        return self.state == EMPTY

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def has_all_members_joined(self) -> bool:
        return not self.pending and all(m.awaiting_join for m in self.members.values())

    def parked(self) -> list[tuple[str, str]]:
        """(member id, "join" or "sync") of every request waiting for an answer."""
        out = []
        for member in self.members.values():
            if member.awaiting_join:
                out.append((member.member_id, "join"))
            if member.awaiting_sync:
                out.append((member.member_id, "sync"))
        return out

    def next_deadline_ms(self) -> int | None:
        """When :meth:`tick` has something to do, or None."""
        deadlines = [d for d, _ in self._timers()]
        return min(deadlines) if deadlines else None

    def candidate_protocols(self) -> set[str]:
        """The protocols every member supports."""
        members = list(self.members.values())
        if not members:
            return set()
        common = {name for name, _ in members[0].protocols}
        for member in members[1:]:
            common &= {name for name, _ in member.protocols}
        return common

    def select_protocol(self) -> str:
        """The candidate most members prefer (Kafka's selectProtocol). Kafka leaves a tie to a
        HashMap's order; here it goes to the tied protocol voted for first, in member order."""
        candidates = self.candidate_protocols()
        assert candidates, f"group {self.group_id}: no protocol every member supports"
        votes: dict[str, int] = {}
        for member in self.members.values():
            name = member.vote(candidates)
            votes[name] = votes.get(name, 0) + 1
        top = max(votes.values())
        return next(name for name, count in votes.items() if count == top)

    def supports_protocols(self, protocol_type: str, names: Iterable[str]) -> bool:
        """Whether a member of ``protocol_type`` with protocols ``names`` may join."""
        names = set(names)
        if self.state == EMPTY:
            return bool(protocol_type) and bool(names)
        return protocol_type == self.protocol_type and bool(names & self.candidate_protocols())

    def validate_member(self, member_id: str, instance_id: str | None) -> KafkaError | None:
        if instance_id is not None:
            existing = self.static_members.get(instance_id)
            if existing is None:
                return KafkaError.UNKNOWN_MEMBER_ID
            if existing != member_id:
                return KafkaError.FENCED_INSTANCE_ID
        if member_id not in self.members:
            return KafkaError.UNKNOWN_MEMBER_ID
        return None

    def validate_offset_commit(
        self, member_id: str, instance_id: str | None, generation: int
    ) -> KafkaError | None:
        """Kafka's ClassicGroup.validateOffsetCommit (not transactional): a commit without
        member (generation < 0) only to an empty group; a member's at its generation, and not
        while the group waits for its assignment."""
        if self.state == DEAD:
            return KafkaError.COORDINATOR_NOT_AVAILABLE
        if generation < 0 and self.state == EMPTY:
            return None
        if generation >= 0 or member_id != UNKNOWN_MEMBER or instance_id is not None:
            error = self.validate_member(member_id, instance_id)
            if error is not None:
                return error
            if generation != self.generation:
                return KafkaError.ILLEGAL_GENERATION
        elif self.state != EMPTY:
            return KafkaError.UNKNOWN_MEMBER_ID
        if self.state == COMPLETING_REBALANCE:
            return KafkaError.REBALANCE_IN_PROGRESS
        return None

    def committed_by(self, member_id: str, now: Now) -> None:
        """An offset commit keeps its member's session in Stable and PreparingRebalance (Kafka:
        "in the old protocol, offset commits maintain the session")."""
        member = self.members.get(member_id)
        if member is not None and self.state in (STABLE, PREPARING_REBALANCE):
            member.heartbeat_deadline_ms = now.ms + member.session_timeout_ms

    def join_members(self) -> tuple[JoinMember, ...]:
        """The members as the leader's JoinGroup answer lists them."""
        assert self.protocol_name is not None and self.state not in (DEAD, PREPARING_REBALANCE)
        return tuple(
            JoinMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
            for m in self.members.values()
        )

    # -- records -------------------------------------------------------------------------------

    def record(self, assignment: Mapping[str, bytes]) -> ClassicRecord:
        """The group's record with ``assignment`` (Kafka's newGroupMetadataRecord)."""
        members = []
        for m in self.members.values():
            assert self.protocol_name is not None, f"group {self.group_id}: members, no protocol"
            members.append(
                ClassicMemberMetadata(
                    member_id=m.member_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout_ms=m.rebalance_timeout_ms,
                    session_timeout_ms=m.session_timeout_ms,
                    subscription=m.metadata(self.protocol_name),
                    assignment=assignment[m.member_id],
                    group_instance_id=m.group_instance_id,
                )
            )
        return ClassicGroupKey(self.group_id), ClassicGroupValue(
            protocol_type=self.protocol_type or "",
            generation=self.generation,
            protocol=self.protocol_name,
            leader=self.leader,
            current_state_timestamp_ms=self.state_timestamp_ms,
            members=tuple(members),
        )

    def empty_record(self) -> ClassicRecord:
        """The record of a group a join just created (Kafka's newEmptyGroupMetadataRecord)."""
        return ClassicGroupKey(self.group_id), ClassicGroupValue(
            protocol_type="",
            generation=0,
            protocol=None,
            leader=None,
            current_state_timestamp_ms=self.state_timestamp_ms,
            members=(),
        )

    # -- JoinGroup -----------------------------------------------------------------------------

    def join(self, req: JoinRequest, new_member_id: str, now: Now) -> Step:
        """A JoinGroup; ``new_member_id`` is the id a member without one gets."""
        step = Step()
        if not self._accepts_joining(req.member_id):
            self._forget(req.member_id, step)
            step.answer = JoinResponse(KafkaError.GROUP_MAX_SIZE_REACHED, UNKNOWN_MEMBER)
        elif req.member_id == UNKNOWN_MEMBER:
            self._join_new(req, new_member_id, now, step)
        else:
            self._join_known(req, now, step)
        return step

    def _accepts_joining(self, member_id: str) -> bool:
        """Kafka's acceptJoiningMember: room for one more (a member already waiting always)."""
        if self.state in (EMPTY, DEAD):
            return True
        member = self.members.get(member_id)
        if self.state == PREPARING_REBALANCE:
            awaiting = sum(1 for m in self.members.values() if m.awaiting_join)
            return (member is not None and member.awaiting_join) or (
                awaiting < self.settings.max_size
            )
        return member is not None or len(self.members) < self.settings.max_size

    def _join_new(self, req: JoinRequest, new_member_id: str, now: Now, step: Step) -> None:
        names = [name for name, _ in req.protocols]
        if self.state == DEAD:
            step.answer = JoinResponse(KafkaError.COORDINATOR_NOT_AVAILABLE, UNKNOWN_MEMBER)
        elif not self.supports_protocols(req.protocol_type, names):
            step.answer = JoinResponse(KafkaError.INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER)
        elif req.group_instance_id is not None:
            step.answer = JoinResponse(KafkaError.UNSUPPORTED_VERSION, UNKNOWN_MEMBER)
        elif req.requires_known_member_id:
            self.pending[new_member_id] = now.ms + req.session_timeout_ms
            step.answer = JoinResponse(KafkaError.MEMBER_ID_REQUIRED, new_member_id)
        else:
            self._add_member(req, new_member_id, now, step)

    def _join_known(self, req: JoinRequest, now: Now, step: Step) -> None:
        member_id = req.member_id
        names = [name for name, _ in req.protocols]
        if self.state == DEAD:
            step.answer = JoinResponse(KafkaError.COORDINATOR_NOT_AVAILABLE, member_id)
            return
        if not self.supports_protocols(req.protocol_type, names):
            step.answer = JoinResponse(KafkaError.INCONSISTENT_GROUP_PROTOCOL, member_id)
            return
        if member_id in self.pending:
            if req.group_instance_id is not None:
                step.answer = JoinResponse(KafkaError.UNSUPPORTED_VERSION, member_id)
            else:
                self._add_member(req, member_id, now, step)
            return
        if req.group_instance_id is not None and req.group_instance_id not in self.static_members:
            # A new static member (only those of a loaded record are known).
            step.answer = JoinResponse(KafkaError.UNSUPPORTED_VERSION, member_id)
            return
        error = self.validate_member(member_id, req.group_instance_id)
        if error is not None:
            step.answer = JoinResponse(error, member_id)
            return
        member = self.members[member_id]
        same = member.protocols == req.protocols
        if self.state == PREPARING_REBALANCE:
            self._update_member(member, req, now, step)
        elif self.state == COMPLETING_REBALANCE and same:
            # The answer was lost: the same again, for this generation.
            step.answer = self._join_answer(member_id)
        elif self.state == COMPLETING_REBALANCE:
            self._update_member(member, req, now, step)
        elif self.state == STABLE and (member_id == self.leader or not same):
            # A leader's join forces a rebalance: it may have seen the topics change.
            self._update_member(member, req, now, step)
        elif self.state == STABLE:
            step.answer = JoinResponse(
                None,
                member_id,
                self.generation,
                self.protocol_type,
                self.protocol_name,
                self.leader or "",
            )
        else:  # Empty: it was removed meanwhile; it must join again
            step.answer = JoinResponse(KafkaError.UNKNOWN_MEMBER_ID, member_id)

    def _join_answer(self, member_id: str) -> JoinResponse:
        return JoinResponse(
            None,
            member_id,
            self.generation,
            self.protocol_type,
            self.protocol_name,
            self.leader or "",
            members=self.join_members() if member_id == self.leader else (),
        )

    def _add_member(self, req: JoinRequest, member_id: str, now: Now, step: Step) -> None:
        member = ClassicMember(
            member_id=member_id,
            group_instance_id=req.group_instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            session_timeout_ms=req.session_timeout_ms,
            protocol_type=req.protocol_type,
            protocols=req.protocols,
            awaiting_join=True,
            is_new=True,
            # Its join is parked with no heartbeat to keep it (see ClassicSettings).
            heartbeat_deadline_ms=now.ms + self.settings.new_member_join_timeout_ms,
        )
        if self.state == PREPARING_REBALANCE and self.previous_state == EMPTY:
            self.new_member_added = True  # the initial rebalance waits a little longer
        if not self.members:
            self.protocol_type = req.protocol_type
        assert self.protocol_type == req.protocol_type, (self.protocol_type, req.protocol_type)
        if self.leader is None:
            self.leader = member_id
        self.members[member_id] = member
        self.pending.pop(member_id, None)
        step.parked = member_id
        self._prepare_or_complete_join(now, step)

    def _update_member(self, member: ClassicMember, req: JoinRequest, now: Now, step: Step) -> None:
        member.protocols = req.protocols
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_timeout_ms = req.session_timeout_ms
        member.awaiting_join = True
        step.parked = member.member_id
        self._prepare_or_complete_join(now, step)

    # -- the join phase ------------------------------------------------------------------------

    def _prepare_or_complete_join(self, now: Now, step: Step) -> None:
        if self.state in VALID_PREVIOUS[PREPARING_REBALANCE]:
            self._prepare_rebalance(now, step)
        else:
            self._maybe_complete_join(now, step)

    def _prepare_rebalance(self, now: Now, step: Step) -> None:
        if self.state == COMPLETING_REBALANCE:
            # Members waiting in a sync must join again.
            for member in self.members.values():
                member.assignment = b""
            self._propagate(KafkaError.REBALANCE_IN_PROGRESS, now, step)
        self.pending_sync.clear()
        self.sync_timer = None
        initial = self.state == EMPTY
        if initial:
            delay = self.settings.initial_rebalance_delay_ms
            self.join_timer = _JoinTimer(
                now.ms + delay,
                initial=True,
                delay_ms=delay,
                remaining_ms=max(self.rebalance_timeout_ms() - delay, 0),
            )
        self._transition(PREPARING_REBALANCE, now)
        if not initial:
            if self.has_all_members_joined():
                self._complete_join(now, step)
            else:
                self.join_timer = _JoinTimer(now.ms + self.rebalance_timeout_ms())

    def _maybe_complete_join(self, now: Now, step: Step) -> None:
        """Completes the join phase once everyone joined (never early in the initial one)."""
        if (
            self.state == PREPARING_REBALANCE
            and self.previous_state != EMPTY
            and self.has_all_members_joined()
        ):
            self._complete_join(now, step)

    def _complete_join(self, now: Now, step: Step) -> None:
        self.join_timer = None
        late = [
            m.member_id
            for m in self.members.values()
            if not m.awaiting_join and m.group_instance_id is None
        ]
        for member_id in late:
            self._forget(member_id, step)
        if self.state == DEAD:
            return
        if self.members and not self._elect_joined_leader():
            # Nobody joined again: wait once more, until sessions remove them.
            self.join_timer = _JoinTimer(now.ms + self.rebalance_timeout_ms())
            return
        self.generation += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self._transition(COMPLETING_REBALANCE, now)
        else:
            self.protocol_name = None
            self._transition(EMPTY, now)
        self.pending_sync.clear()
        if self.state == EMPTY:
            step.records.append(self.record({}))
            return
        for member in self.members.values():
            if member.awaiting_join:
                member.awaiting_join = False
                step.replies.append(Reply(member.member_id, self._join_answer(member.member_id)))
            member.heartbeat_deadline_ms = now.ms + member.session_timeout_ms
            member.is_new = False
            self.pending_sync.add(member.member_id)
        self.sync_timer = _SyncTimer(now.ms + self.rebalance_timeout_ms(), self.generation)

    def _elect_joined_leader(self) -> bool:
        """A leader that did not join again gives way to one that did; False when none did."""
        if self.leader is None:
            return False
        if self.members[self.leader].awaiting_join:
            return True
        for member in self.members.values():
            if member.awaiting_join:
                self.leader = member.member_id
                return True
        return False

    # -- SyncGroup -----------------------------------------------------------------------------

    def sync(self, req: SyncRequest, now: Now) -> Step:
        step = Step()
        member_id = req.member_id
        error = self._sync_error(req)
        if error is not None:
            step.answer = SyncResponse(error)
        elif self.state == PREPARING_REBALANCE:
            step.answer = SyncResponse(KafkaError.REBALANCE_IN_PROGRESS)
        elif self.state == COMPLETING_REBALANCE:
            self.members[member_id].awaiting_sync = True
            step.parked = member_id
            self._synced(member_id)
            if member_id == self.leader:
                given = dict(req.assignments)
                assignment = {m: given.get(m, b"") for m in self.members}
                step.records.append(self.record(assignment))
                step.stored = StoreAssignment(self.generation, tuple(assignment.items()))
        else:
            assert self.state == STABLE, self.state
            self._synced(member_id)
            step.answer = SyncResponse(
                None, self.members[member_id].assignment, self.protocol_type, self.protocol_name
            )
        return step

    def _sync_error(self, req: SyncRequest) -> KafkaError | None:
        if self.state == EMPTY:
            return KafkaError.UNKNOWN_MEMBER_ID
        if self.state == DEAD:
            return KafkaError.COORDINATOR_NOT_AVAILABLE
        error = self.validate_member(req.member_id, req.group_instance_id)
        if error is not None:
            return error
        if req.generation_id != self.generation:
            return KafkaError.ILLEGAL_GENERATION
        if _inconsistent(req.protocol_type, self.protocol_type) or _inconsistent(
            req.protocol_name, self.protocol_name
        ):
            return KafkaError.INCONSISTENT_GROUP_PROTOCOL
        return None

    def _synced(self, member_id: str) -> None:
        self.pending_sync.discard(member_id)
        if not self.pending_sync:
            self.sync_timer = None

    def assignment_stored(
        self, stored: StoreAssignment, error: KafkaError | None, now: Now
    ) -> Step:
        """The leader's assignment record is stored (``error`` None) or could not be: hand the
        assignment out and turn Stable, or tell the waiting members and rebalance. Nothing
        happens when the group moved on meanwhile (another rebalance)."""
        step = Step()
        if self.state != COMPLETING_REBALANCE or stored.generation != self.generation:
            return step
        given = dict(stored.assignment)
        for member in self.members.values():
            member.assignment = b"" if error is not None else given.get(member.member_id, b"")
        self._propagate(error, now, step)
        if error is not None:
            self._prepare_or_complete_join(now, step)
        else:
            self._transition(STABLE, now)
        return step

    def _propagate(self, error: KafkaError | None, now: Now, step: Step) -> None:
        for member in self.members.values():
            if not member.awaiting_sync:
                continue
            member.awaiting_sync = False
            if error is None:
                answer = SyncResponse(
                    None, member.assignment, self.protocol_type, self.protocol_name
                )
            else:
                answer = SyncResponse(error)
            step.replies.append(Reply(member.member_id, answer))
            # Its session starts again from its answer (it could not heartbeat while waiting).
            member.heartbeat_deadline_ms = now.ms + member.session_timeout_ms

    # -- Heartbeat -----------------------------------------------------------------------------

    def heartbeat(self, req: HeartbeatRequest, now: Now) -> Step:
        step = Step()
        if self.state == DEAD:
            step.answer = KafkaError.COORDINATOR_NOT_AVAILABLE
            return step
        error = self.validate_member(req.member_id, req.group_instance_id)
        if error is None and req.generation_id != self.generation:
            error = KafkaError.ILLEGAL_GENERATION
        if error is None and self.state == EMPTY:
            error = KafkaError.UNKNOWN_MEMBER_ID
        if error is not None:
            step.answer = error
            return step
        member = self.members[req.member_id]
        member.heartbeat_deadline_ms = now.ms + member.session_timeout_ms
        if self.state == PREPARING_REBALANCE:
            step.answer = KafkaError.REBALANCE_IN_PROGRESS
        return step

    # -- LeaveGroup ----------------------------------------------------------------------------

    def leave(self, req: LeaveRequest, now: Now) -> Step:
        step = Step()
        if self.state == DEAD:
            step.answer = LeaveResponse(KafkaError.COORDINATOR_NOT_AVAILABLE)
            return step
        answers = []
        left = False
        for who in req.members:
            error: KafkaError | None = None
            if who.member_id == UNKNOWN_MEMBER:
                # An admin's removal by instance id.
                static = (
                    self.static_members.get(who.group_instance_id)
                    if who.group_instance_id is not None
                    else None
                )
                if static is None:
                    error = KafkaError.UNKNOWN_MEMBER_ID
                else:
                    self._forget(static, step)
            elif who.member_id in self.pending:
                del self.pending[who.member_id]
            else:
                error = self.validate_member(who.member_id, who.group_instance_id)
                if error is None:
                    self._forget(who.member_id, step)
            left = left or error is None
            answers.append(LeftMember(who.member_id, who.group_instance_id, error))
        if left:
            if self.state in (STABLE, COMPLETING_REBALANCE):
                self._prepare_or_complete_join(now, step)
            elif self.state == PREPARING_REBALANCE:
                self._maybe_complete_join(now, step)
        step.answer = LeaveResponse(None, tuple(answers))
        return step

    # -- removal and timers --------------------------------------------------------------------

    def _forget(self, member_id: str, step: Step | None = None) -> None:
        """Removes a member (or a pending one): a parked join of it is answered
        UNKNOWN_MEMBER_ID (as Kafka does), and so is a parked sync (Kafka leaves that one to
        the client's request timeout); the leader passes to the next member."""
        member = self.members.pop(member_id, None)
        if member is not None:
            if step is not None and member.awaiting_join:
                step.replies.append(
                    Reply(member_id, JoinResponse(KafkaError.UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER))
                )
            if step is not None and member.awaiting_sync:
                step.replies.append(Reply(member_id, SyncResponse(KafkaError.UNKNOWN_MEMBER_ID)))
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.leader == member_id:
            self.leader = next(iter(self.members), None)
        self.pending.pop(member_id, None)
        self.pending_sync.discard(member_id)

    def _timers(self) -> list[tuple[int, tuple[int, str]]]:
        """(deadline, (kind order, member id)) of every timer; the order breaks ties."""
        timers = [
            (m.heartbeat_deadline_ms, (0, m.member_id))
            for m in self.members.values()
            if m.heartbeat_deadline_ms is not None
        ]
        timers += [(deadline, (1, member_id)) for member_id, deadline in self.pending.items()]
        if self.join_timer is not None:
            timers.append((self.join_timer.deadline_ms, (2, "")))
        if self.sync_timer is not None:
            timers.append((self.sync_timer.deadline_ms, (3, "")))
        return timers

    def tick(self, now: Now) -> Step:
        """Fires every timer due by ``now``, earliest first (one may cancel another)."""
        step = Step()
        while True:
            due = [t for t in self._timers() if t[0] <= now.ms]
            if not due:
                return step
            _, (kind, member_id) = min(due)
            if kind == 0:
                self._session_expired(member_id, now, step)
            elif kind == 1:
                del self.pending[member_id]
                if self.state == PREPARING_REBALANCE and self.has_all_members_joined():
                    self._complete_join(now, step)
            elif kind == 2:
                self._join_timer_fired(now, step)
            else:
                self._sync_timer_fired(now, step)

    def _session_expired(self, member_id: str, now: Now, step: Step) -> None:
        member = self.members[member_id]
        member.heartbeat_deadline_ms = None
        if member.has_satisfied_heartbeat():
            return
        self._forget(member_id, step)
        if self.state in (STABLE, COMPLETING_REBALANCE):
            self._prepare_or_complete_join(now, step)
        elif self.state == PREPARING_REBALANCE and self.has_all_members_joined():
            self._complete_join(now, step)

    def _join_timer_fired(self, now: Now, step: Step) -> None:
        timer = self.join_timer
        assert timer is not None
        self.join_timer = None
        if timer.initial and self.new_member_added and timer.remaining_ms != 0:
            # New members came during the delay: wait again, within the rebalance timeout.
            self.new_member_added = False
            delay = min(self.settings.initial_rebalance_delay_ms, timer.remaining_ms)
            self.join_timer = _JoinTimer(
                now.ms + delay,
                initial=True,
                delay_ms=delay,
                remaining_ms=max(timer.remaining_ms - timer.delay_ms, 0),
            )
        else:
            self._complete_join(now, step)

    def _sync_timer_fired(self, now: Now, step: Step) -> None:
        timer = self.sync_timer
        assert timer is not None
        self.sync_timer = None
        if timer.generation != self.generation:
            return
        if self.state in (COMPLETING_REBALANCE, STABLE) and self.pending_sync:
            for member_id in sorted(self.pending_sync):
                self._forget(member_id, step)
            self._prepare_rebalance(now, step)

    def unload(self) -> list[Reply]:
        """The coordinator lets the group go (leadership moved): it is Dead, and every parked
        request is answered NOT_COORDINATOR, to find the new coordinator."""
        replies: list[Reply] = []
        for member_id, kind in self.parked():
            if kind == "join":
                replies.append(
                    Reply(member_id, JoinResponse(KafkaError.NOT_COORDINATOR, member_id))
                )
            else:
                replies.append(Reply(member_id, SyncResponse(KafkaError.NOT_COORDINATOR)))
        for member in self.members.values():
            member.awaiting_join = member.awaiting_sync = False
            member.heartbeat_deadline_ms = None
        self.pending.clear()
        self.join_timer = self.sync_timer = None
        self.previous_state, self.state = self.state, DEAD
        return replies

    def _transition(self, state: str, now: Now) -> None:
        if self.state not in VALID_PREVIOUS[state]:
            raise AssertionError(
                f"group {self.group_id}: no transition from {self.state} to {state}"
            )
        self.previous_state, self.state = self.state, state
        self.state_timestamp_ms = now.wall_ms


def _inconsistent(asked: str | None, group: str | None) -> bool:
    return asked is not None and group is not None and asked != group
