"""The replica figures of the whole cluster, shaped for the console (pure: no I/O).

Each broker knows only its own replicas: their log start, log end, high watermark, leader
epoch, size on disk and whether their log is offline. A node that answers about a topic, the
topic list or the groups' lag asks every broker holding a replica for its figures (see
``server/replica_figures.py``) and the functions here put the answers together with the
metadata:

- ``GET /v1/brokers/{broker}/replicas``: :func:`broker_answer`;
- ``GET /v1/topics/{topic}/replicas``: :func:`topic_answer`, one state per replica in the
  order of the partition's replicas, with an ``error`` where its broker could not be asked;
- ``GET /v1/topics?detail=true``: :func:`topic_detail`;
- the ``lag`` of ``GET /v1/groups``: :func:`group_lags`, each committed offset against its
  partition leader's high watermark, as ``GET /v1/groups/{group}`` computes it.

A broker's answer is either a mapping (topic, partition) -> :class:`ReplicaFigures` or a
string saying why it is missing (fenced, not registered, did not answer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kraft.state import BrokerState, MetadataState, PartitionState, TopicState

Key = tuple[str, int]
# (group, topic, partition, committed offset), as GroupCoordinator.committed_offsets yields it.
Committed = tuple[str, str, int, int]


@dataclass(frozen=True)
class ReplicaFigures:
    """What a broker says of one replica it holds. The offsets and size are None for a
    replica whose log could not be opened (``offline`` then true)."""

    topic: str
    partition: int
    is_leader: bool
    leader_epoch: int
    log_start_offset: int | None
    log_end_offset: int | None
    high_watermark: int | None
    size: int | None
    offline: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "is_leader": self.is_leader,
            "leader_epoch": self.leader_epoch,
            "log_start_offset": self.log_start_offset,
            "log_end_offset": self.log_end_offset,
            "high_watermark": self.high_watermark,
            "size": self.size,
            "offline": self.offline,
        }

    @classmethod
    def from_json(cls, raw: Any) -> ReplicaFigures:
        """One entry of a broker's answer; ValueError naming what is wrong with it."""
        if not isinstance(raw, dict):
            raise ValueError(f"a replica entry must be an object, found {type(raw).__name__}")

        def integer(name: str, optional: bool) -> Any:
            value = raw.get(name)
            if value is None and optional:
                return None
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"a replica entry's {name} must be an integer, found {value!r}")
            return value

        topic = raw.get("topic")
        if not isinstance(topic, str):
            raise ValueError(f"a replica entry's topic must be a string, found {topic!r}")
        flags = {name: raw.get(name) for name in ("is_leader", "offline")}
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise ValueError(f"a replica entry's {name} must be true or false")
        return cls(
            topic,
            integer("partition", False),
            bool(flags["is_leader"]),
            integer("leader_epoch", False),
            integer("log_start_offset", True),
            integer("log_end_offset", True),
            integer("high_watermark", True),
            integer("size", True),
            bool(flags["offline"]),
        )


# What a broker answered: its replicas' figures, or why there are none.
BrokerAnswer = Mapping[Key, ReplicaFigures] | str


def parse_broker_answer(raw: Any) -> dict[Key, ReplicaFigures]:
    """The ``replicas`` of a ``GET /v1/brokers/{broker}/replicas`` answer, by (topic,
    partition); ValueError when the answer is not of that shape."""
    if not isinstance(raw, dict) or not isinstance(raw.get("replicas"), list):
        raise ValueError("the answer has no list of replicas")
    figures = (ReplicaFigures.from_json(entry) for entry in raw["replicas"])
    return {(f.topic, f.partition): f for f in figures}


def broker_answer(
    broker_id: int, figures: Iterable[ReplicaFigures], topics: frozenset[str] | None
) -> dict[str, Any]:
    """The answer of ``GET /v1/brokers/{broker}/replicas``: the replicas of ``topics`` (all
    when None), by topic and partition."""
    chosen = sorted(
        (f for f in figures if topics is None or f.topic in topics),
        key=lambda f: (f.topic, f.partition),
    )
    return {"broker_id": broker_id, "replicas": [f.to_json() for f in chosen]}


def brokers_to_ask(
    state: MetadataState, topics: Iterable[TopicState]
) -> tuple[list[int], dict[int, str]]:
    """Which brokers hold a replica of ``topics`` and can be asked (registered, unfenced),
    sorted; and, for the others, why not. A fenced broker is not asked at all: it is most
    likely down, and asking it would only make the answer wait for the timeout."""
    holders = {b for t in topics for p in t.partitions.values() for b in p.replicas}
    return asking_plan(state.brokers, holders)


def asking_plan(
    brokers: Mapping[int, BrokerState], wanted: Iterable[int]
) -> tuple[list[int], dict[int, str]]:
    """The brokers of ``wanted`` to ask (sorted), and why each other one is not asked."""
    ask = []
    skipped = {}
    for broker_id in sorted(set(wanted)):
        broker = brokers.get(broker_id)
        if broker is None:
            skipped[broker_id] = f"broker {broker_id} is not registered"
        elif broker.fenced:
            skipped[broker_id] = f"broker {broker_id} is fenced"
        else:
            ask.append(broker_id)
    return ask, skipped


def _figures(answers: Mapping[int, BrokerAnswer], broker: int, key: Key) -> ReplicaFigures | str:
    """Broker ``broker``'s figures of replica ``key``, or why there are none."""
    answer = answers.get(broker, f"broker {broker} was not asked")
    if isinstance(answer, str):
        return answer
    figures = answer.get(key)
    if figures is None:
        return f"broker {broker} has no replica of {key[0]}-{key[1]} open"
    return figures


def _leader_figures(
    answers: Mapping[int, BrokerAnswer], name: str, partition: PartitionState
) -> ReplicaFigures | None:
    if partition.leader < 0:
        return None
    figures = _figures(answers, partition.leader, (name, partition.partition))
    return None if isinstance(figures, str) else figures


def replica_state(
    answers: Mapping[int, BrokerAnswer], name: str, partition: PartitionState, broker: int
) -> dict[str, Any]:
    """One entry of a partition's ``replica_states``."""
    figures = _figures(answers, broker, (name, partition.partition))
    state: dict[str, Any] = {"broker": broker, "in_isr": broker in partition.isr}
    if isinstance(figures, str):
        state.update(
            log_end_offset=None,
            high_watermark=None,
            log_start_offset=None,
            size=None,
            offline=None,
            error=figures,
        )
    else:
        state.update(
            log_end_offset=figures.log_end_offset,
            high_watermark=figures.high_watermark,
            log_start_offset=figures.log_start_offset,
            size=figures.size,
            offline=figures.offline,
            error=None,
        )
    return state


def topic_answer(topic: TopicState, answers: Mapping[int, BrokerAnswer]) -> dict[str, Any]:
    """The answer of ``GET /v1/topics/{topic}/replicas``: the metadata's leader, epoch,
    replicas and ISR of each partition, its leader's high watermark and log start (None when
    the leader could not be asked or there is none), and each replica's figures."""
    partitions = []
    for index in sorted(topic.partitions):
        partition = topic.partitions[index]
        leader = _leader_figures(answers, topic.name, partition)
        partitions.append(
            {
                "partition": index,
                "leader": partition.leader if partition.leader >= 0 else None,
                "leader_epoch": partition.leader_epoch,
                "replicas": list(partition.replicas),
                "isr": list(partition.isr),
                "high_watermark": None if leader is None else leader.high_watermark,
                "log_start_offset": None if leader is None else leader.log_start_offset,
                "replica_states": [
                    replica_state(answers, topic.name, partition, broker)
                    for broker in partition.replicas
                ],
            }
        )
    return {"topic": topic.name, "topic_id": topic.topic_id, "partitions": partitions}


def leader_ends(state: MetadataState, answers: Mapping[int, BrokerAnswer]) -> dict[Key, int]:
    """The high watermark of each partition whose leader (as the metadata names it) answered:
    the log end a committed offset's lag is measured against."""
    ends = {}
    for topic in state.topics.values():
        for partition in topic.partitions.values():
            leader = _leader_figures(answers, topic.name, partition)
            if leader is not None and leader.high_watermark is not None:
                ends[(topic.name, partition.partition)] = leader.high_watermark
    return ends


@dataclass(frozen=True)
class GroupLag:
    """A group's lag: summed over its committed offsets, and by topic (None: unknown, some
    partition's leader could not be asked; for the whole group also when it has no offsets
    on an existing topic)."""

    lag: int | None
    topics: tuple[tuple[str, int | None], ...]

    def topics_json(self) -> list[dict[str, Any]]:
        return [{"topic": topic, "lag": lag} for topic, lag in self.topics]


def _sum(values: Iterable[int | None]) -> int | None:
    total = 0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def parse_committed(raw: Any) -> list[Committed]:
    """The ``offsets`` of a coordinator's ``GET /v1/groups?local=true`` answer: a list of
    [group, topic, partition, offset]; ValueError when it is not that."""
    problem = "committed offsets must be a list of [group, topic, partition, offset]"
    if not isinstance(raw, list):
        raise ValueError(problem)
    out = []
    for item in raw:
        if (
            not isinstance(item, list)
            or len(item) != 4
            or not all(isinstance(v, str) for v in item[:2])
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in item[2:])
        ):
            raise ValueError(f"{problem}, found {str(item)[:80]}")
        out.append((item[0], item[1], item[2], item[3]))
    return out


def group_lags(
    committed: Iterable[Committed],
    ends: Mapping[Key, int],
    existing_topics: Iterable[str],
) -> dict[str, GroupLag]:
    """The lag of each group of ``committed`` ((group, topic, partition, committed offset)):
    ``max(high watermark - committed, 0)`` per partition, as ``GET /v1/groups/{group}`` says
    it, summed by topic and over the group. Offsets on a topic that no longer exists are left
    out: the topic has no log end to lag behind."""
    names = set(existing_topics)
    by_group: dict[str, dict[str, list[int | None]]] = {}
    for group, topic, partition, offset in committed:
        topics = by_group.setdefault(group, {})
        if topic not in names:
            continue
        end = ends.get((topic, partition))
        topics.setdefault(topic, []).append(None if end is None else max(end - offset, 0))
    out = {}
    for group, topics in by_group.items():
        per_topic = tuple((topic, _sum(lags)) for topic, lags in sorted(topics.items()))
        # Nothing committed on an existing topic: no lag to speak of (not 0, which would
        # read as a group that caught up).
        total = _sum(lag for _, lag in per_topic) if per_topic else None
        out[group] = GroupLag(total, per_topic)
    return out


def topic_detail(
    topic: TopicState,
    answers: Mapping[int, BrokerAnswer],
    lags: Mapping[str, GroupLag],
) -> dict[str, Any]:
    """The fields ``detail=true`` adds to a topic of ``GET /v1/topics``: partition health
    counts from the metadata; ``records`` (leaders' high watermark minus log start, None if a
    leader could not be asked or there is none); ``size_bytes`` (every replica's, None if one
    is unknown); the groups of ``lags`` with offsets on the topic, by name."""
    partitions = [topic.partitions[i] for i in sorted(topic.partitions)]
    records: list[int | None] = []
    for partition in partitions:
        leader = _leader_figures(answers, topic.name, partition)
        if leader is None or leader.high_watermark is None or leader.log_start_offset is None:
            records.append(None)
        else:
            records.append(leader.high_watermark - leader.log_start_offset)
    sizes: list[int | None] = []
    for partition in partitions:
        for broker in partition.replicas:
            figures = _figures(answers, broker, (topic.name, partition.partition))
            sizes.append(None if isinstance(figures, str) else figures.size)
    groups = []
    for group in sorted(lags):
        for name, lag in lags[group].topics:
            if name == topic.name:
                groups.append({"group": group, "lag": lag})
    return {
        "under_replicated": sum(len(p.isr) < len(p.replicas) for p in partitions),
        "offline": sum(p.leader < 0 for p in partitions),
        "records": _sum(records),
        "size_bytes": _sum(sizes),
        "groups": groups,
    }
