"""A partition log's settings: Kafka's topic configs that the log engine obeys.

Names, units and defaults are Kafka's. :meth:`LogConfig.from_topic_configs` reads them from
Kafka's dotted names (``segment.bytes`` ...); every value is validated when the config is
made, so a bad setting fails with a message naming it, before any log uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from storage.limits import SEGMENT_BYTES_MAX

_DAY_MS = 24 * 60 * 60 * 1000

# Kafka's topic config name for each field, and the smallest value it accepts (Kafka's own
# minimums: a segment must hold at least a 14-byte record of the oldest format; -1 means
# "no limit" for retention).
_TOPIC_KEYS: dict[str, tuple[str, int]] = {
    "segment.bytes": ("segment_bytes", 14),
    "segment.ms": ("segment_ms", 1),
    "retention.ms": ("retention_ms", -1),
    "retention.bytes": ("retention_bytes", -1),
    "index.interval.bytes": ("index_interval_bytes", 0),
    "max.message.bytes": ("max_message_bytes", 0),
    "flush.messages": ("flush_messages", 1),
    "flush.ms": ("flush_ms", 0),
}

# Kafka's default for flush.messages and flush.ms (Long.MAX_VALUE): never force an fsync.
FLUSH_NEVER = 2**63 - 1


@dataclass(frozen=True, slots=True)
class LogConfig:
    """The settings of one partition log (Kafka's defaults)."""

    # A segment rolls when a batch would make it larger than this (Kafka: 1 GiB).
    segment_bytes: int = 1024 * 1024 * 1024
    # ... or when the batches' own timestamps span more than this (Kafka: 7 days).
    segment_ms: int = 7 * _DAY_MS
    # Whole segments whose newest record is older than this are deleted; -1 keeps them forever.
    retention_ms: int = 7 * _DAY_MS
    # The oldest segments are deleted while the log is larger than this; -1: no size limit.
    retention_bytes: int = -1
    # Bytes appended between two entries of the sparse offset index (Kafka: 4 KiB).
    index_interval_bytes: int = 4096
    # The largest batch a leader accepts (Kafka: 1 MiB + 12 bytes of log overhead).
    max_message_bytes: int = 1048588
    # An fsync is forced once this many records are unflushed. 1 (our default; Kafka's is
    # FLUSH_NEVER) means every record is fsynced, by group commit, before it counts as
    # replicated: acknowledged records then survive a power cut of every node.
    flush_messages: int = 1
    # ... or once the oldest unflushed record is this old (Kafka: FLUSH_NEVER).
    flush_ms: int = FLUSH_NEVER

    @property
    def flushes_every_record(self) -> bool:
        """Whether a record counts as replicated only once it is fsynced (flush.messages=1)."""
        return self.flush_messages == 1

    def __post_init__(self) -> None:
        for name, (field, minimum) in _TOPIC_KEYS.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} ({field}) must be an integer, got {value!r}")
            if value < minimum:
                raise ValueError(f"{name} ({field}) must be at least {minimum}, got {value}")
            if value > FLUSH_NEVER:  # Kafka's settings are Java longs
                raise ValueError(f"{name} ({field}) must be at most {FLUSH_NEVER}, got {value}")
        if self.segment_bytes > SEGMENT_BYTES_MAX:
            # Index positions are int32 (Kafka's format).
            raise ValueError(
                f"segment.bytes (segment_bytes) must be at most {SEGMENT_BYTES_MAX}, "
                f"got {self.segment_bytes}"
            )

    @classmethod
    def from_topic_configs(
        cls, configs: Mapping[str, str | int], defaults: LogConfig | None = None
    ) -> LogConfig:
        """The config that Kafka topic configs (``{"segment.bytes": "1048576", ...}``) describe.

        Keys this class does not use (``cleanup.policy``, ``min.insync.replicas`` ...) are
        ignored; missing keys keep ``defaults`` (Kafka's defaults when None). Raises
        ``ValueError`` naming the key and value when a value is not an integer or is out of
        range.
        """
        base = defaults if defaults is not None else cls()
        values = {f.name: getattr(base, f.name) for f in fields(cls)}
        for key, raw in configs.items():
            known = _TOPIC_KEYS.get(key)
            if known is None:
                continue
            field, minimum = known
            if isinstance(raw, bool):
                raise ValueError(f"topic config {key}={raw!r}: expected an integer")
            try:
                value = raw if isinstance(raw, int) else int(str(raw).strip())
            except ValueError:
                raise ValueError(f"topic config {key}={raw!r}: expected an integer") from None
            if value < minimum:
                raise ValueError(f"topic config {key}={raw!r}: must be at least {minimum}")
            values[field] = value
        try:
            return cls(**values)
        except ValueError as e:
            raise ValueError(f"topic config: {e}") from None
