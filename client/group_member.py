"""A consumer group member's half of Kafka 4's consumer protocol (KIP-848), with no I/O.

Theory of operation (the wire contract is docs/groups.md, "Membership"):

- The member **joins** with ``member_epoch`` 0 and its subscription; every answer carries the
  member's id, its epoch and ``assignment``, the *full* set of partitions it may own now.
- **Reconciliation** moves what the member owns towards that target in two steps, each ending
  with a heartbeat that reports ``owned``: partitions it owns that are not in the target are
  *given up* (the driver stops fetching them, commits their positions, calls the revocation
  listener, then :meth:`MemberState.gave_up`); partitions in the target it does not own are
  *taken* (the driver starts fetching them from the committed offset, then
  :meth:`MemberState.took` and the assignment listener). The coordinator hands a partition to
  another member only once its owner has reported giving it up, so two members never fetch
  one partition under the same assignment.
- **Fencing**: FENCED_MEMBER_EPOCH or UNKNOWN_MEMBER_ID means the coordinator no longer counts
  this member as owning anything (its session expired, or its epoch is stale). Everything it
  owned is *lost* (not committed: another member may own it already), and it joins again with
  epoch 0 under the same member id, owning nothing (:meth:`MemberState.fenced`).
  ``incarnation`` counts these rejoins, so a reconciliation that was under way when the member
  was fenced can tell that its plan is void.
- **Leaving**: a heartbeat with epoch -1 (:meth:`MemberState.leave_body`).

The driver (client/consumer.py) sends what :meth:`heartbeat_body` gives, feeds answers to
:meth:`on_answer` and errors to :meth:`fenced`, asks :meth:`plan` what to reconcile, and
heartbeats at once whenever ``heartbeat_due`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

# The epochs with a meaning of their own (KIP-848).
JOIN_EPOCH = 0
LEAVE_EPOCH = -1


class TopicPartition(NamedTuple):
    """A partition of a topic. A plain ``(topic, partition)`` tuple is equal to it."""

    topic: str
    partition: int


class ProtocolViolation(Exception):
    """A heartbeat answer that does not follow the contract (the peer broke it)."""


@dataclass(frozen=True)
class Plan:
    """One reconciliation step: what to give up and what to take, each sorted."""

    revoke: tuple[TopicPartition, ...]
    assign: tuple[TopicPartition, ...]
    incarnation: int


def _partitions(raw: Any, what: str) -> frozenset[TopicPartition]:
    if not isinstance(raw, list):
        raise ProtocolViolation(f"{what} must be a list of {{topic, partition}}, got {raw!r}")
    out: set[TopicPartition] = set()
    for item in raw:
        topic = item.get("topic") if isinstance(item, dict) else None
        partition = item.get("partition") if isinstance(item, dict) else None
        if (
            not isinstance(topic, str)
            or isinstance(partition, bool)
            or not isinstance(partition, int)
        ):
            raise ProtocolViolation(f"{what} holds {item!r}, not a {{topic, partition}}")
        out.add(TopicPartition(topic, partition))
    return frozenset(out)


def partitions_json(partitions: frozenset[TopicPartition] | list[TopicPartition]) -> list[Any]:
    """``[{"topic", "partition"}]`` in topic, partition order (the wire's form)."""
    return [{"topic": t, "partition": p} for t, p in sorted(partitions)]


class MemberState:
    """What one member knows of its membership; see the module text for the rules."""

    def __init__(
        self,
        topics: list[str],
        *,
        session_timeout_ms: int | None = None,
        rebalance_timeout_ms: int | None = None,
        assignor: str | None = None,
        client_id: str | None = None,
        heartbeat_interval_ms: int = 5000,
    ) -> None:
        self.topics = sorted(set(topics))
        self.session_timeout_ms = session_timeout_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.assignor = assignor
        self.client_id = client_id
        self.member_id: str | None = None
        self.epoch = JOIN_EPOCH
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.owned: frozenset[TopicPartition] = frozenset()
        # The coordinator's latest assignment; None until the first answer of this incarnation.
        self.target: frozenset[TopicPartition] | None = None
        self.incarnation = 0
        # Set when the coordinator should hear from us now rather than at the next interval:
        # a join, a change in what we own, a new subscription.
        self.heartbeat_due = True
        self._topics_changed = True
        self.left = False

    # -- what to send ---------------------------------------------------------------------------

    def heartbeat_body(self) -> dict[str, Any]:
        """The next heartbeat's body; a join carries the subscription and the settings."""
        body: dict[str, Any] = {"member_epoch": self.epoch}
        if self.member_id is not None:
            body["member_id"] = self.member_id
        if self.epoch == JOIN_EPOCH:
            body["topics"] = list(self.topics)
            for name, value in (
                ("session_timeout_ms", self.session_timeout_ms),
                ("rebalance_timeout_ms", self.rebalance_timeout_ms),
                ("assignor", self.assignor),
                ("client_id", self.client_id),
            ):
                if value is not None:
                    body[name] = value
        elif self._topics_changed:
            body["topics"] = list(self.topics)
        body["owned"] = partitions_json(self.owned)
        return body

    def leave_body(self) -> dict[str, Any] | None:
        """The leave heartbeat (epoch -1), or None when the member never joined."""
        if self.member_id is None:
            return None
        return {"member_id": self.member_id, "member_epoch": LEAVE_EPOCH}

    # -- what the coordinator said --------------------------------------------------------------

    def on_answer(self, answer: Any, sent: dict[str, Any]) -> None:
        """Takes a 200 answer to the heartbeat ``sent`` (its body)."""
        if not isinstance(answer, dict):
            raise ProtocolViolation(f"a heartbeat answer must be an object, got {answer!r}")
        member_id = answer.get("member_id")
        epoch = answer.get("member_epoch")
        interval = answer.get("heartbeat_interval_ms")
        if not isinstance(member_id, str) or not member_id:
            raise ProtocolViolation(f"heartbeat answer without a member_id: {answer!r}")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ProtocolViolation(f"heartbeat answer with member_epoch {epoch!r}")
        if sent.get("member_epoch") != self.epoch or sent.get("member_id") not in (
            None,
            self.member_id,
        ):
            # An answer to a heartbeat sent before we were fenced: it speaks of a membership
            # we have given up.
            return
        target = _partitions(answer.get("assignment", []), "assignment")  # checked first
        self.member_id = member_id
        self.epoch = epoch
        if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0:
            self.heartbeat_interval_ms = interval
        self.target = target
        if "topics" in sent and sent["topics"] == self.topics:
            self._topics_changed = False

    def fenced(self) -> list[TopicPartition]:
        """FENCED_MEMBER_EPOCH or UNKNOWN_MEMBER_ID: returns what was owned, now lost; the
        next heartbeat joins again with epoch 0 under the same member id."""
        lost = sorted(self.owned)
        self.owned = frozenset()
        self.target = None
        self.epoch = JOIN_EPOCH
        self.incarnation += 1
        self.heartbeat_due = True
        return lost

    def subscribe(self, topics: list[str]) -> None:
        """A new subscription, sent with the next heartbeat (at once)."""
        topics = sorted(set(topics))
        if topics != self.topics:
            self.topics = topics
            self._topics_changed = True
            self.heartbeat_due = True

    # -- reconciliation -------------------------------------------------------------------------

    def plan(self) -> Plan | None:
        """What to give up and take to reach the target, or None when owned is the target."""
        if self.target is None or self.target == self.owned:
            return None
        return Plan(
            revoke=tuple(sorted(self.owned - self.target)),
            assign=tuple(sorted(self.target - self.owned)),
            incarnation=self.incarnation,
        )

    def gave_up(self, partitions: tuple[TopicPartition, ...], incarnation: int) -> bool:
        """Records that ``partitions`` were given up (fetching stopped, positions committed,
        listener called); False when the member was fenced meanwhile (nothing to record)."""
        if incarnation != self.incarnation:
            return False
        self.owned = self.owned - frozenset(partitions)
        self.heartbeat_due = True
        return True

    def took(
        self, partitions: tuple[TopicPartition, ...], incarnation: int
    ) -> tuple[TopicPartition, ...]:
        """Records that those of ``partitions`` still in the target are owned now and returns
        them (the driver fetches only these); none when the member was fenced meanwhile."""
        if incarnation != self.incarnation or self.target is None:
            return ()
        taken = tuple(tp for tp in partitions if tp in self.target)
        if taken:
            self.owned = self.owned | frozenset(taken)
            self.heartbeat_due = True
        return taken
