"""What scripts/bench/vs-kafka measures and with which settings: pure (no I/O), so the choices
are written down once and tested.

The ways a system is measured (one column of the table each):

- ``kafka-default``: Kafka 4.4.0 as shipped (its producer's ``batch.size`` 16 KiB,
  ``linger.ms`` 5, ``acks=all``; the broker acknowledges once the in-sync replicas have the
  records in memory: Kafka does not fsync before acknowledging)
- ``kafka-flush``: the same, its topic with ``flush.messages=1``: an fsync of every append
  before it is acknowledged, the durability we give (equal durability)
- ``kafka-tuned``: its producer with our batch size (``batch.size`` bytes holding
  ``batch_records`` records) on a topic like ``kafka-default``'s
- ``ours``: our three nodes and tools, our producer with ``batch.size`` for ``batch_records``
  records (it fsyncs before acknowledging, always)
- ``ours-kt-default``: our three nodes, measured with Kafka's tools (ProducerPerformance,
  ConsumerPerformance, KafkaProbe on Kafka's Java client) through their KAFKA listeners, the
  producer with Kafka's defaults, as ``kafka-default``'s
- ``ours-kt-tuned``: the same, the producer's ``batch.size`` as ``kafka-tuned``'s

The three Kafka ways share one Kafka cluster (``flush.messages`` is a topic setting, the
batch size a producer one), so Kafka starts once per run; the two ``ours-kt`` ways share one
cluster of ours (a fresh one, not ``ours``'s, so each system's figures come from the same
order of steps on new nodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

KAFKA_WAYS = ("kafka-default", "kafka-flush", "kafka-tuned")
OURS = "ours"
KT_WAYS = ("ours-kt-default", "ours-kt-tuned")
WAYS = (*KAFKA_WAYS, OURS, *KT_WAYS)
# The way of ours measured with Kafka's tools that compares with each Kafka way: the same
# producer settings (``kafka-flush`` differs from ``kafka-default`` by a topic setting that
# gives Kafka the fsync our nodes always do, so it compares with Kafka's defaults on ours).
KT_PAIR = {
    "kafka-default": "ours-kt-default",
    "kafka-flush": "ours-kt-default",
    "kafka-tuned": "ours-kt-tuned",
}
# Each way's topic configs (besides the replication factor and min.insync.replicas every
# topic has) and whether its producer gets our batch size (else the producer's defaults).
_TOPIC_CONFIGS: dict[str, dict[str, str]] = {"kafka-flush": {"flush.messages": "1"}}
_TUNED = frozenset({"kafka-tuned", OURS, "ours-kt-tuned"})


@dataclass(frozen=True)
class System:
    """Nodes and the tools that measure them: one cluster started per run. ``name`` is what
    ``--only`` takes, ``ways`` the table's columns it fills, ``main`` the way that holds the
    figures other than producing (consume, end-to-end, memory, cold start, failover) and
    whose produce topic the consumer reads."""

    name: str
    ways: tuple[str, ...]
    main: str
    tools: str  # whose tools measure it: "kafka" or "ours"

    def __post_init__(self) -> None:
        assert self.main in self.ways and self.tools in ("kafka", "ours"), self


KAFKA = System("kafka", KAFKA_WAYS, "kafka-default", "kafka")
OURS_OWN = System(OURS, (OURS,), OURS, "ours")
OURS_KAFKA_TOOLS = System("ours-kafka-tools", KT_WAYS, "ours-kt-default", "kafka")
SYSTEMS = (KAFKA, OURS_OWN, OURS_KAFKA_TOOLS)
SYSTEM_NAMES = tuple(s.name for s in SYSTEMS)


def systems_named(text: str) -> tuple[System, ...]:
    """The systems of a comma-separated ``--only`` value, in the table's order (raises
    ValueError naming the choices for an unknown or empty one)."""
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = names - set(SYSTEM_NAMES)
    if not names or unknown:
        raise ValueError(
            f"--only takes some of {', '.join(SYSTEM_NAMES)} (comma-separated), got {text!r}"
        )
    return tuple(s for s in SYSTEMS if s.name in names)


@dataclass(frozen=True)
class ProduceRun:
    """One produce run: the way it fills, its new topic, the topic's configs and the
    producer's properties (``acks=all`` is added by the tool's command)."""

    way: str
    topic: str
    topic_configs: Mapping[str, str] = field(default_factory=dict)
    producer_props: Mapping[str, str] = field(default_factory=dict)


def way_topic(way: str, size: int) -> str:
    """The topic a way's produce run of ``size``-byte records fills (``p100-default``,
    ``p100-ours``, ``p100-kt-tuned``)."""
    return f"p{size}-{way.removeprefix('kafka-').removeprefix('ours-')}"


# Kafka's v2 batch: a 61-byte header, then per record at most 21 bytes besides its value for a
# keyless, headerless record (length varint <= 5, attributes 1, timestamp delta varint <= 5
# for deltas under 2^34 ms, offset delta varint <= 5, key length 1 (null), value length
# varint <= 3 for values under 2 MiB, header count 1). batch.size counted this way holds at
# least ``batch_records`` records in either producer.
BATCH_HEADER_BYTES = 61
RECORD_OVERHEAD_BYTES_MAX = 21


# A perf tool moving fewer records a second than this has hung (seen once: a producer whose
# sender task died on an assertion waited for ever); it is killed and its step fails.
TOOL_RECORDS_PER_S_MIN = 500
TOOL_STARTUP_S = 300.0


def tool_timeout_s(records: int) -> float:
    """How long a perf tool moving ``records`` records may run before it is killed."""
    return TOOL_STARTUP_S + records / TOOL_RECORDS_PER_S_MIN


def batch_bytes(records: int, value_bytes: int) -> int:
    """``batch.size`` (bytes, as Kafka counts them) that holds ``records`` keyless records of
    ``value_bytes`` each."""
    if records < 1 or value_bytes < 0:
        raise ValueError(f"batch of {records} records of {value_bytes} bytes")
    return BATCH_HEADER_BYTES + records * (value_bytes + RECORD_OVERHEAD_BYTES_MAX)


@dataclass(frozen=True)
class Plan:
    """One run's sizes. ``records`` is the count of 100-byte records; 1 KiB records are
    ``records_1k`` (fewer, so each size moves about the same time's worth)."""

    records: int = 1_000_000
    records_1k: int = 200_000
    record_sizes: tuple[int, ...] = (100, 1024)
    partitions: int = 3
    batch_records: int = 1000
    e2e_rate: float = 1000.0  # records/s
    e2e_seconds: float = 10.0
    idle_settle_s: float = 10.0  # after the first ack, before idle memory is read
    failover_probe_s: float = 90.0  # the longest a failover is waited for

    def __post_init__(self) -> None:
        if self.records < 1 or self.records_1k < 1:
            raise ValueError("--records must be at least 1")
        if self.partitions < 1:
            raise ValueError("--partitions must be at least 1")
        if self.batch_records < 1:
            raise ValueError("--batch-records must be at least 1")
        if self.e2e_rate <= 0 or self.e2e_seconds <= 0:
            raise ValueError("the end-to-end rate and duration must be positive")

    def records_for(self, size: int) -> int:
        return self.records if size < 1024 else self.records_1k

    def e2e_records(self) -> int:
        return max(1, int(self.e2e_rate * self.e2e_seconds))

    def tuned_producer_props(self, size: int) -> dict[str, str]:
        """Our producer's and Kafka's tuned producer's batch size for ``size``-byte records."""
        return {"batch.size": str(batch_bytes(self.batch_records, size))}

    def produce_runs(self, system: System, size: int) -> list[ProduceRun]:
        """The produce runs of ``system`` for ``size``-byte records, one per way, in order."""
        return [
            ProduceRun(
                way,
                way_topic(way, size),
                dict(_TOPIC_CONFIGS.get(way, {})),
                self.tuned_producer_props(size) if way in _TUNED else {},
            )
            for way in system.ways
        ]


def full_plan(records: int | None = None) -> Plan:
    """The default run; ``records`` (100-byte) scales the 1 KiB count by 1/5."""
    if records is None:
        return Plan()
    return Plan(records=records, records_1k=max(1, records // 5))


def quick_plan(records: int | None = None) -> Plan:
    """A short run for checking the harness: 200,000 records of 100 B, 40,000 of 1 KiB, a
    5-second end-to-end run, a 3-second idle settle."""
    n = 200_000 if records is None else records
    return Plan(records=n, records_1k=max(1, n // 5), e2e_seconds=5.0, idle_settle_s=3.0)
