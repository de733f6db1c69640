"""The recent events of the metadata log, for ``GET /v1/cluster/events`` (the console's timeline).

A pure reader of the entries this node applies (an ``EntryListener`` of the quorum,
``kraft/applied_entries.py``): it turns each entry's records into events a person reads,
and keeps the newest :data:`EVENTS_COUNT_MAX` in memory. No I/O, no
clock (an entry carries the time this node applied it).

Events, each with the ``index`` and ``term`` of its entry and ``time_ms`` (when this node
applied it), a ``type``, the fields of its type, and a ``text``:

    quorum_leader      leader                 a node took over the quorum (LeaderChangeRecord)
    broker_registered  broker                 a broker (re)registered (it starts fenced)
    broker_fenced      broker                 its session ended
    broker_unfenced    broker                 it is back
    broker_unregistered broker                it left the cluster (kraft-cluster unregister)
    topic_created      topic, partitions      the count the entry created
    topic_deleted      topic
    partitions_added   topic, partitions      the new count
    leader_change      topic, partition, leader, previous_leader, leader_epoch
                                              (leader null: the partition went offline)
    isr_shrink         topic, partition, isr, previous_isr
    isr_expand         topic, partition, isr, previous_isr
    replicas_change    topic, partition, replicas, previous_replicas, adding_replicas,
                       removing_replicas      a reassignment started, was replaced, completed
                                              or was cancelled (Kafka's KIP-455 records)

Within an entry the events follow its records; a record that changes the replicas, the leader
and the ISR of a partition gives the replicas change, then the leader change, then the ISR's.
An ISR that lost members and gained none shrank; one that gained members and lost none grew;
one that did both is called by its size (smaller: a shrink, else a growth). Records nobody
watches (configs, producer ids, ACLs, no-ops) give none. A LeaderChangeRecord naming the
leader and term of the previous ``quorum_leader`` event gives none: a controller whose
record's write timed out writes it again, and the first may commit too.

To say what a change changed (the previous leader and ISR), the tracker keeps each
partition's leader, leader epoch and ISR, and each topic's name and partition count, from the
records it reads; a new state (at the start, or a dump from the leader that replaced this
node's state) rebuilds that map from the state. Events from before a dump are kept (they
happened); the entries the dump covered give none, and ``first_index`` moves past them.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kraft.applied_entries import AppliedEntry
from kraft.records import (
    NO_LEADER,
    FenceBrokerRecord,
    LeaderChangeRecord,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
)
from kraft.state import MetadataState, replicas_removed

__all__ = ["EVENTS_COUNT_MAX", "EVENT_TYPES", "MetadataEvents"]

# Events kept: the contract's 1,000 (a few hundred bytes each, so well under a MiB); a timeline
# reads the newest and polls with `after`, so it never needs more.
EVENTS_COUNT_MAX = 1000

EVENT_TYPES = (
    "quorum_leader",
    "broker_registered",
    "broker_fenced",
    "broker_unfenced",
    "broker_unregistered",
    "topic_created",
    "topic_deleted",
    "partitions_added",
    "leader_change",
    "isr_shrink",
    "isr_expand",
    "replicas_change",
)

Event = dict[str, Any]


@dataclass(frozen=True)
class _Partition:
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


@dataclass
class _Topic:
    name: str
    partitions: dict[int, _Partition]


def _ids(ids: Iterable[int]) -> str:
    return "[" + ",".join(str(i) for i in ids) + "]"


def _moving(adding: tuple[int, ...], removing: tuple[int, ...]) -> str:
    """What a move still does, as Kafka's describe names it; nothing once it is over."""
    parts = []
    if adding:
        parts.append(f"adding {_ids(adding)}")
    if removing:
        parts.append(f"removing {_ids(removing)}")
    return f" ({', '.join(parts)})" if parts else ""


def _leader(leader: int) -> int | None:
    return None if leader == NO_LEADER else leader


class MetadataEvents:
    """The newest events of the metadata log as this node applied it (module docstring)."""

    def __init__(self, count_max: int = EVENTS_COUNT_MAX) -> None:
        assert count_max > 0, count_max
        self._events: deque[Event] = deque()
        self._count_max = count_max
        self._topics: dict[str, _Topic] = {}  # topic id -> name and partitions
        self._applied_index = 0
        # Entries from here on all gave their events to the list (see first_index).
        self._complete_from = 1
        # (leader, term) of the last quorum_leader event: a second one alike is not told.
        self._quorum_leader: tuple[int, int] | None = None

    # -- the quorum's EntryListener ---------------------------------------------------------------

    def state_replaced(self, index: int, state: MetadataState) -> None:
        """Starts over from ``state`` (applied up to ``index``); the events kept stay."""
        self._topics = {
            topic.topic_id: _Topic(
                topic.name,
                {
                    number: _Partition(
                        p.leader,
                        p.leader_epoch,
                        p.isr,
                        p.replicas,
                        p.adding_replicas,
                        p.removing_replicas,
                    )
                    for number, p in topic.partitions.items()
                },
            )
            for topic in state.topics.values()
        }
        self._applied_index = index
        self._complete_from = max(self._complete_from, index + 1)

    def entry_applied(self, entry: AppliedEntry) -> None:
        """Adds the events of ``entry``, the entry after the last one read."""
        self._applied_index = entry.index
        for event in _EntryReader(self._topics, entry).events():
            if event["type"] == "quorum_leader":
                leader = (event["leader"], event["term"])
                if leader == self._quorum_leader:
                    continue  # the same election written twice (module docstring)
                self._quorum_leader = leader
            self._events.append(event)
            if len(self._events) > self._count_max:
                dropped = self._events.popleft()
                # Its entry may have more events still kept: that entry is no longer whole.
                self._complete_from = max(self._complete_from, dropped["index"] + 1)

    # -- reads ----------------------------------------------------------------------------------

    @property
    def applied_index(self) -> int:
        """The index of the last entry read (or of the state started from)."""
        return self._applied_index

    @property
    def first_index(self) -> int:
        """The list holds every event of the entries from this index up to ``applied_index``;
        events of earlier entries may be missing (dropped as the list filled, or never told:
        the entries a dump covered, or applied before this node started)."""
        return self._complete_from

    def events(self, after: int | None, limit: int) -> list[Event]:
        """Oldest first: the newest events when ``after`` is None, else the first events of
        the entries after index ``after``: whole entries until there are ``limit`` events or
        none is left. An entry's events are never split between two answers, so the last
        entry may take the answer past ``limit``; an answer with fewer than ``limit`` events
        holds every event after ``after``. A reader that goes on from the last index it got
        misses none.
        """
        assert limit > 0, limit
        if after is None:
            newest: list[list[Event]] = []
            count = 0
            for group in _entries(reversed(self._events)):
                if count >= limit:
                    break
                newest.append(group)
                count += len(group)
            return [event for group in reversed(newest) for event in reversed(group)]
        out: list[Event] = []
        for group in _entries(e for e in self._events if e["index"] > after):
            if len(out) >= limit:
                break
            out.extend(group)
        return out


def _entries(events: Iterable[Event]) -> Iterator[list[Event]]:
    """``events`` in runs of one entry each."""
    for _index, group in itertools.groupby(events, key=lambda e: e["index"]):
        yield list(group)


class _EntryReader:
    """The events of one entry, updating the tracker's partition map as it reads."""

    def __init__(self, topics: dict[str, _Topic], entry: AppliedEntry) -> None:
        self._topics = topics
        self._entry = entry
        self._out: list[Event] = []
        # Topics created, and topics given partitions, by this entry: one event each, with
        # the count after the whole entry.
        self._counted: dict[str, Event] = {}

    def events(self) -> list[Event]:
        for record in self._entry.records:
            handler = _HANDLERS.get(type(record))
            if handler is not None:
                handler(self, record)
        return self._out

    def _event(self, type_: str, text: str, **fields: Any) -> Event:
        event: Event = {
            "index": self._entry.index,
            "term": self._entry.term,
            "time_ms": self._entry.time_ms,
            "type": type_,
            **fields,
            "text": text,
        }
        self._out.append(event)
        return event

    def _quorum_leader(self, r: LeaderChangeRecord) -> None:
        self._event(
            "quorum_leader",
            f"node {r.leader_id} leads the metadata quorum (term {self._entry.term})",
            leader=r.leader_id,
        )

    def _broker_registered(self, r: RegisterBrokerRecord) -> None:
        self._event(
            "broker_registered",
            f"broker {r.broker_id} registered (broker epoch {r.broker_epoch})",
            broker=r.broker_id,
        )

    def _broker_fenced(self, r: FenceBrokerRecord) -> None:
        self._event("broker_fenced", f"broker {r.broker_id} fenced", broker=r.broker_id)

    def _broker_unfenced(self, r: UnfenceBrokerRecord) -> None:
        self._event("broker_unfenced", f"broker {r.broker_id} unfenced", broker=r.broker_id)

    def _broker_unregistered(self, r: UnregisterBrokerRecord) -> None:
        self._event("broker_unregistered", f"broker {r.broker_id} unregistered", broker=r.broker_id)

    def _topic_created(self, r: TopicRecord) -> None:
        self._topics[r.topic_id] = _Topic(r.name, {})
        self._counted[r.topic_id] = self._event(
            "topic_created", f"topic {r.name} created", topic=r.name, partitions=0
        )

    def _topic_deleted(self, r: RemoveTopicRecord) -> None:
        topic = self._topics.pop(r.topic_id, None)
        if topic is not None:
            self._event("topic_deleted", f"topic {topic.name} deleted", topic=topic.name)

    def _partition(self, r: PartitionRecord) -> None:
        topic = self._topics.get(r.topic_id)
        if topic is None:
            return  # the state refused such a record: it was never applied
        topic.partitions[r.partition] = _Partition(
            r.leader, r.leader_epoch, r.isr, r.replicas, r.adding_replicas, r.removing_replicas
        )
        count = len(topic.partitions)
        event = self._counted.get(r.topic_id)
        if event is None:
            event = self._event("partitions_added", "", topic=topic.name, partitions=count)
            self._counted[r.topic_id] = event
        event["partitions"] = count
        if event["type"] == "topic_created":
            event["text"] = f"topic {topic.name} created with {count} partitions"
        else:
            event["text"] = f"topic {topic.name} now has {count} partitions"

    def _partition_change(self, r: PartitionChangeRecord) -> None:
        topic = self._topics.get(r.topic_id)
        old = None if topic is None else topic.partitions.get(r.partition)
        if topic is None or old is None:
            return  # refused by the state, never applied
        name = f"{topic.name}-{r.partition}"
        replicas = old.replicas if r.replicas is None else r.replicas
        adding = old.adding if r.adding_replicas is None else r.adding_replicas
        removing = old.removing if r.removing_replicas is None else r.removing_replicas
        if (replicas, adding, removing) != (old.replicas, old.adding, old.removing):
            self._event(
                "replicas_change",
                f"{name}: replicas {_ids(old.replicas)} -> {_ids(replicas)}"
                + _moving(adding, removing),
                topic=topic.name,
                partition=r.partition,
                replicas=list(replicas),
                previous_replicas=list(old.replicas),
                adding_replicas=list(adding),
                removing_replicas=list(removing),
            )
        leader, epoch = old.leader, old.leader_epoch
        if (r.leader is None or r.leader == old.leader) and leader != NO_LEADER:
            if replicas_removed(old.replicas, r.replicas):
                epoch += 1  # as the state bumps it (a move that removed replicas)
        if r.leader is not None and r.leader != old.leader:
            leader, epoch = r.leader, old.leader_epoch + 1  # as the state bumps it
            before = "none" if old.leader == NO_LEADER else str(old.leader)
            after = "none" if leader == NO_LEADER else str(leader)
            self._event(
                "leader_change",
                f"{name}: leader {before} -> {after} (epoch {epoch})",
                topic=topic.name,
                partition=r.partition,
                leader=_leader(leader),
                previous_leader=_leader(old.leader),
                leader_epoch=epoch,
            )
        isr = old.isr if r.isr is None else r.isr
        if set(isr) != set(old.isr):
            lost = bool(set(old.isr) - set(isr))
            gained = bool(set(isr) - set(old.isr))
            shrank = lost and (not gained or len(isr) < len(old.isr))
            self._event(
                "isr_shrink" if shrank else "isr_expand",
                f"{name}: ISR {_ids(old.isr)} -> {_ids(isr)}",
                topic=topic.name,
                partition=r.partition,
                isr=list(isr),
                previous_isr=list(old.isr),
            )
        topic.partitions[r.partition] = _Partition(leader, epoch, isr, replicas, adding, removing)


_HANDLERS: dict[type[MetadataRecord], Callable[[_EntryReader, Any], None]] = {
    LeaderChangeRecord: _EntryReader._quorum_leader,
    RegisterBrokerRecord: _EntryReader._broker_registered,
    FenceBrokerRecord: _EntryReader._broker_fenced,
    UnfenceBrokerRecord: _EntryReader._broker_unfenced,
    UnregisterBrokerRecord: _EntryReader._broker_unregistered,
    TopicRecord: _EntryReader._topic_created,
    RemoveTopicRecord: _EntryReader._topic_deleted,
    PartitionRecord: _EntryReader._partition,
    PartitionChangeRecord: _EntryReader._partition_change,
}
