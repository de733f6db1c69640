"""Replication throttles: Kafka's replication quotas (KIP-73), as a pure core.

Four settings, Kafka's names and meanings:

- topic configs ``leader.replication.throttled.replicas`` and
  ``follower.replication.throttled.replicas``: ``""`` (none, the default), ``"*"`` (every
  replica of the topic), or ``"0:1,0:2,1:3"`` (partition:broker pairs). A broker throttles the
  partitions the list names with its own id (or all, for ``*``).
- broker dynamic configs ``leader.replication.throttled.rate`` and
  ``follower.replication.throttled.rate``: bytes per second, default Long.MAX_VALUE
  (unthrottled); the broker's own record first, then the cluster default (broker ``""``).

Each broker keeps two :class:`ReplicationQuota` (Kafka's ReplicationQuotaManager), one per
side. The leader leaves a throttled partition out of its answer to a follower that is not in
the ISR while the leader quota is exceeded; the follower leaves a throttled partition it is
not caught up on out of its request while the follower quota is exceeded. Both count every
byte of their throttled partitions, in-sync traffic included, as Kafka does (the bound is on
the partitions' whole replication traffic). An in-sync follower and an unthrottled partition
are never held back.

The quota is exceeded when the rate measured over the last :data:`QUOTA_SAMPLES` windows of
:data:`QUOTA_WINDOW_MS` is above the bound: Kafka's SimpleRate over a windowed sum (the
elapsed time counts from the oldest sample kept, and is at least one window). When it is,
nothing throttled moves until the rate decays below the bound; once it is under, one more
read goes through: a throttled partition always makes progress, a batch at least. Kafka lets
that read be as big as the fetch allows (megabytes above a small bound); here a leader's read
of a throttled partition for a follower out of the ISR takes at most one window of the bound
(:meth:`ReplicationQuota.read_cap`), so the measured rate stays near it.

Nothing here does I/O or reads a clock: the caller passes ``now_ms`` (monotonic).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

LEADER_REPLICAS = "leader.replication.throttled.replicas"
FOLLOWER_REPLICAS = "follower.replication.throttled.replicas"
LEADER_RATE = "leader.replication.throttled.rate"
FOLLOWER_RATE = "follower.replication.throttled.rate"
REPLICA_LISTS = (LEADER_REPLICAS, FOLLOWER_REPLICAS)
RATES = (LEADER_RATE, FOLLOWER_RATE)

LONG_MAX = (1 << 63) - 1  # Long.MAX_VALUE: Kafka's "no throttle"
# Kafka's replication.quota.window.num and replication.quota.window.size.seconds defaults:
# the rate is measured over the last 11 one-second samples.
QUOTA_SAMPLES = 11
QUOTA_WINDOW_MS = 1000

ALL_PARTITIONS = None  # a throttled-replicas list of "*"
Throttled = frozenset[int] | None  # the partitions of a topic this broker throttles; None: all

_PAIR = re.compile(r"[0-9]+:[0-9]+")
_LIST_FORMAT = "[partitionId]:[brokerId],[partitionId]:[brokerId],..."
_NUMBER = re.compile(r"[+-]?[0-9]{1,20}")


def replica_list_problem(name: str, value: str) -> str | None:
    """Kafka's ThrottledReplicaListValidator, in its words: ``*`` or ``partition:broker``
    pairs separated by commas (spaces around them allowed); None when ``value`` is fine."""
    items = [item.strip() for item in value.split(",")]
    if "".join(items) == "*" or all(not item or _PAIR.fullmatch(item) for item in items):
        return None
    shown = "[" + ", ".join(items) + "]"
    return (
        f"Invalid value {shown} for configuration {name}: {name} must be the literal '*' or a "
        f"list of replicas in the following format: {_LIST_FORMAT}"
    )


def normal_replica_list(value: str) -> str:
    """The stored form of a valid list: ``*``, or its pairs joined by commas with no spaces
    and no empty items (Kafka would fail on an empty item when it reads the list back)."""
    items = [item.strip() for item in value.split(",")]
    if "".join(items) == "*":
        return "*"
    return ",".join(item for item in items if item)


def throttled_partitions(value: str, broker_id: int) -> Throttled:
    """The partitions a stored list throttles on ``broker_id`` (Kafka's
    ``parseThrottledPartitions``): None for ``*``, else the partitions paired with it."""
    if value.strip() == "*":
        return ALL_PARTITIONS
    out = set()
    for item in value.split(","):
        partition, _, broker = item.strip().partition(":")
        if broker and int(broker) == broker_id:
            out.add(int(partition))
    return frozenset(out)


def rate_problem(name: str, value: str) -> str | None:
    """Kafka's check of a throttle rate (a long, at least 0), in its words, or None."""
    text = value.strip()
    if not _NUMBER.fullmatch(text) or not -LONG_MAX - 1 <= int(text) <= LONG_MAX:
        return f"Invalid value {value[:24]} for configuration {name}: Not a number of type LONG"
    if int(text) < 0:
        return f"Invalid value {text} for configuration {name}: Value must be at least 0"
    return None


def broker_rate(name: str, own: Mapping[str, str], cluster: Mapping[str, str]) -> int:
    """A broker's rate: its own dynamic config, else the cluster default, else unthrottled.
    A stored value that does not parse (it was checked when written) counts as unset."""
    for configs in (own, cluster):
        value = configs.get(name)
        if value is not None and rate_problem(name, value) is None:
            return int(value)
    return LONG_MAX


@dataclass
class _Sample:
    start_ms: int
    last_ms: int
    total: float = 0.0


@dataclass
class SampledRate:
    """Kafka's SimpleRate over a WindowedSum: bytes per second over the last ``samples``
    windows of ``window_ms``. A sample whose last event is ``samples`` windows old is reset;
    the elapsed time counts from the oldest sample's start and is at least one window."""

    samples: int = QUOTA_SAMPLES
    window_ms: int = QUOTA_WINDOW_MS
    _samples: list[_Sample] = field(default_factory=list)
    _current: int = 0

    def record(self, value: float, now_ms: int) -> None:
        if not self._samples:
            self._samples.append(_Sample(now_ms, now_ms))
        sample = self._samples[self._current]
        if now_ms - sample.start_ms >= self.window_ms:
            # Kafka keeps one sample more than it measures: the oldest may overlap the window.
            self._current = (self._current + 1) % (self.samples + 1)
            if self._current >= len(self._samples):
                self._samples.append(_Sample(now_ms, now_ms))
            else:
                self._samples[self._current] = _Sample(now_ms, now_ms)
            sample = self._samples[self._current]
        sample.total += value
        sample.last_ms = now_ms

    def measure(self, now_ms: int) -> float:
        """Bytes per second now."""
        if not self._samples:
            return 0.0
        expire_ms = self.samples * self.window_ms
        for i, sample in enumerate(self._samples):
            if now_ms - sample.last_ms >= expire_ms:
                self._samples[i] = _Sample(now_ms, now_ms)
        oldest = min(sample.start_ms for sample in self._samples)
        elapsed_ms = max(now_ms - oldest, self.window_ms)
        return sum(sample.total for sample in self._samples) * 1000 / elapsed_ms


class ReplicationQuota:
    """One side's quota on this broker (Kafka's ReplicationQuotaManager): the bound, the
    partitions it throttles, the measured rate, and the bytes counted in all.

    ``active`` is the one check the fetch paths make for a partition: False while no topic
    throttles anything here, so an unthrottled cluster pays an attribute read."""

    def __init__(self, samples: int = QUOTA_SAMPLES, window_ms: int = QUOTA_WINDOW_MS) -> None:
        self.bound = LONG_MAX  # bytes per second
        self._throttled: dict[str, Throttled] = {}
        self._rate = SampledRate(samples, window_ms)
        self.active = False
        self.bytes_total = 0  # throttled bytes counted since start (/metrics)

    def set_bound(self, bytes_per_s: int) -> None:
        self.bound = bytes_per_s

    def set_topic(self, topic: str, partitions: Throttled) -> None:
        """Throttles ``partitions`` of ``topic`` (None: all); an empty set removes the
        topic's throttle."""
        if partitions is not None and not partitions:
            self._throttled.pop(topic, None)
        else:
            self._throttled[topic] = partitions
        self.active = bool(self._throttled)

    def clear_topics(self) -> None:
        self._throttled.clear()
        self.active = False

    def topics(self) -> dict[str, Throttled]:
        return dict(self._throttled)

    def is_throttled(self, topic: str, partition: int) -> bool:
        if topic not in self._throttled:
            return False
        partitions = self._throttled[topic]
        return partitions is None or partition in partitions

    def record(self, size: int, now_ms: int) -> None:
        """Counts ``size`` bytes of throttled partitions, over the bound or not."""
        if size:
            self._rate.record(size, now_ms)
            self.bytes_total += size

    def exceeded(self, now_ms: int) -> bool:
        """Whether the measured rate is above the bound (never, unbounded)."""
        return self.bound < LONG_MAX and self._rate.measure(now_ms) > self.bound

    def rate(self, now_ms: int) -> float:
        return self._rate.measure(now_ms)

    def read_cap(self, budget: int) -> int:
        """The most a leader reads of a throttled partition for a follower out of the ISR:
        one window of the bound (a batch at least: the log returns one whatever the cap)."""
        if self.bound >= LONG_MAX:
            return budget
        return min(budget, max(1, self.bound * self._rate.window_ms // 1000))


class ReplicationQuotas:
    """This broker's two quotas, kept in step with the metadata: the topics' throttled
    replica lists and the broker's (or the cluster's default) rates."""

    def __init__(self, broker_id: int) -> None:
        self.broker_id = broker_id
        self.leader = ReplicationQuota()
        self.follower = ReplicationQuota()

    def _sides(self) -> tuple[tuple[str, ReplicationQuota], tuple[str, ReplicationQuota]]:
        return (LEADER_REPLICAS, self.leader), (FOLLOWER_REPLICAS, self.follower)

    def update_topic(self, topic: str, configs: Mapping[str, str] | None) -> None:
        """``topic``'s configs now (None: the topic is gone)."""
        for name, quota in self._sides():
            value = None if configs is None else configs.get(name)
            if value is None or replica_list_problem(name, value) is not None:
                quota.set_topic(topic, frozenset())
            else:
                quota.set_topic(topic, throttled_partitions(value, self.broker_id))

    def update_rates(self, broker_configs: Mapping[str, Mapping[str, str]]) -> None:
        """The rates from the brokers' dynamic configs (by broker id as text; ``""`` is the
        cluster default)."""
        own = broker_configs.get(str(self.broker_id), {})
        cluster = broker_configs.get("", {})
        self.leader.set_bound(broker_rate(LEADER_RATE, own, cluster))
        self.follower.set_bound(broker_rate(FOLLOWER_RATE, own, cluster))

    def reload(
        self,
        topic_configs: Mapping[str, Mapping[str, str]],
        broker_configs: Mapping[str, Mapping[str, str]],
    ) -> None:
        """Everything again, from a whole metadata state (at start, after a snapshot)."""
        self.leader.clear_topics()
        self.follower.clear_topics()
        for topic, configs in topic_configs.items():
            if LEADER_REPLICAS in configs or FOLLOWER_REPLICAS in configs:
                self.update_topic(topic, configs)
        self.update_rates(broker_configs)
