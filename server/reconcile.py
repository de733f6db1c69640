"""Reconciliation as a pure plan: what this node must do so that its local replicas match the
metadata log.

The replica manager calls :func:`plan_reconcile` with the metadata state, the topics an entry
named (or every topic, at start and after a snapshot), and what it has locally; it carries the
returned actions out in order: deletions first (a deleted namesake's directory is gone before
the new topic's replica opens in the same place), then opens (off the event loop), then
updates of open replicas. No I/O and no clock here, so every rule is a row of a table test.

The rules, for each named topic and each of its partitions:

- the metadata lists this node among the replicas, and nothing is open: **open** it (also
  when a directory is on disk, or an earlier open failed: opening again is the retry);
- a replica of the same name is open with another topic id (the topic was deleted and made
  again while this node was away): **delete** it, then **open** the new one;
- the open replica's leader, epoch, replicas, ISR, log config or ``min.insync.replicas``
  differ from the metadata's: **update** it, saying whether the leader or epoch changed (the
  replica fetcher then moves the partition to its new leader);
- a local replica (open, failed, or a directory on disk) that the metadata no longer gives
  this node, or whose topic is gone: **delete** it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kraft.state import MetadataState, TopicState
from server.partition import LeaderState
from server.topic_configs import effective_configs
from storage.log_config import LogConfig

Key = tuple[str, int]


@dataclass(frozen=True)
class LocalReplica:
    """What this node has of one open replica, as the plan needs it."""

    topic_id: str
    state: LeaderState
    config: LogConfig
    min_insync_replicas: int


@dataclass(frozen=True)
class ReplicaSettings:
    """What the metadata says a replica should be."""

    topic_id: str
    state: LeaderState
    config: LogConfig
    min_insync_replicas: int


@dataclass(frozen=True)
class OpenReplica:
    key: Key
    settings: ReplicaSettings


@dataclass(frozen=True)
class UpdateReplica:
    key: Key
    settings: ReplicaSettings
    leader_changed: bool  # the leader or its epoch moved: the fetcher must follow


@dataclass(frozen=True)
class DeleteReplica:
    key: Key
    reason: str


Action = OpenReplica | UpdateReplica | DeleteReplica


def topic_log_settings(
    topic: TopicState, topic_defaults: Mapping[str, str]
) -> tuple[LogConfig, int]:
    """The log config and ``min.insync.replicas`` every replica of ``topic`` gets (parsed once
    per topic: a plan over a topic of many partitions, or many new topics, reads each config
    once, not once per partition)."""
    configs = effective_configs(topic_defaults, topic.configs)
    return LogConfig.from_topic_configs(configs), int(configs["min.insync.replicas"])


def replica_settings(
    topic: TopicState,
    index: int,
    topic_defaults: Mapping[str, str],
    log_settings: tuple[LogConfig, int] | None = None,
) -> ReplicaSettings:
    """What the metadata says replica ``index`` of ``topic`` should be; ``log_settings`` is
    :func:`topic_log_settings` of the topic when the caller has it already."""
    config, min_insync_replicas = log_settings or topic_log_settings(topic, topic_defaults)
    p = topic.partitions[index]
    return ReplicaSettings(
        topic_id=topic.topic_id,
        state=LeaderState(
            p.leader, p.leader_epoch, tuple(p.replicas), tuple(p.isr), p.partition_epoch
        ),
        config=config,
        min_insync_replicas=min_insync_replicas,
    )


def plan_reconcile(
    metadata: MetadataState,
    node_id: int,
    topic_defaults: Mapping[str, str],
    names: Iterable[str],
    local: Mapping[Key, LocalReplica | None],
) -> list[Action]:
    """The actions that make the local replicas of the ``names`` topics match ``metadata``.

    ``local`` holds every replica this node has for those topics: open ones with what they
    are, and None for one that failed to open or is only a directory on disk.
    """
    deletes: list[Action] = []
    opens: list[Action] = []
    updates: list[Action] = []
    by_topic: dict[str, list[Key]] = {}
    for key in local:
        by_topic.setdefault(key[0], []).append(key)
    for name in sorted(set(names)):
        topic = metadata.topics.get(name)
        wanted: set[Key] = set()
        if topic is not None:
            log_settings: tuple[LogConfig, int] | None = None
            for index, p in sorted(topic.partitions.items()):
                if node_id not in p.replicas:
                    continue
                key = (name, index)
                wanted.add(key)
                if log_settings is None:
                    log_settings = topic_log_settings(topic, topic_defaults)
                settings = replica_settings(topic, index, topic_defaults, log_settings)
                have = local.get(key)
                if have is None:
                    opens.append(OpenReplica(key, settings))
                elif have.topic_id != topic.topic_id:
                    deletes.append(
                        DeleteReplica(key, f"it belongs to topic id {have.topic_id}, deleted")
                    )
                    opens.append(OpenReplica(key, settings))
                elif (have.state, have.config, have.min_insync_replicas) != (
                    settings.state,
                    settings.config,
                    settings.min_insync_replicas,
                ):
                    changed = (have.state.leader, have.state.leader_epoch) != (
                        settings.state.leader,
                        settings.state.leader_epoch,
                    )
                    updates.append(UpdateReplica(key, settings, changed))
        for key in sorted(by_topic.get(name, ())):
            if key not in wanted:
                why = "the topic is gone" if topic is None else "this node holds no replica of it"
                deletes.append(DeleteReplica(key, why))
    return deletes + opens + updates
