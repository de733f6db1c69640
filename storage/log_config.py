"""A partition log's settings: Kafka's topic configs that the log engine obeys.

Names, units and defaults are Kafka's. :meth:`LogConfig.from_topic_configs` reads them from
Kafka's dotted names (``segment.bytes`` ...); every value is validated when the config is
made, so a bad setting fails with a message naming it, before any log uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from storage.compression import (
    CODEC_IDS,
    GZIP,
    GZIP_LEVEL_DEFAULT,
    GZIP_LEVEL_MAX,
    LZ4,
    LZ4_LEVEL_DEFAULT,
    LZ4_LEVEL_MAX,
    LZ4_LEVEL_MIN,
    NONE,
    ZSTD,
    ZSTD_LEVEL_DEFAULT,
    ZSTD_LEVEL_MAX,
    ZSTD_LEVEL_MIN,
    check_level,
)
from storage.limits import SEGMENT_BYTES_MAX

_DAY_MS = 24 * 60 * 60 * 1000

LONG_MAX = 2**63 - 1  # Kafka's settings are Java longs
# Kafka's default for flush.messages and flush.ms (Long.MAX_VALUE): never force an fsync.
FLUSH_NEVER = LONG_MAX

# Kafka's topic config name for each field, and the range of values it accepts (Kafka's own
# minimums: a segment must hold at least a 14-byte record of the oldest format; -1 means
# "no limit" for retention; index positions are int32, so a segment is at most 2 GiB).
_TOPIC_KEYS: dict[str, tuple[str, int, int]] = {
    "segment.bytes": ("segment_bytes", 14, SEGMENT_BYTES_MAX),
    "segment.ms": ("segment_ms", 1, LONG_MAX),
    "retention.ms": ("retention_ms", -1, LONG_MAX),
    "retention.bytes": ("retention_bytes", -1, LONG_MAX),
    "index.interval.bytes": ("index_interval_bytes", 0, LONG_MAX),
    "max.message.bytes": ("max_message_bytes", 0, LONG_MAX),
    "flush.messages": ("flush_messages", 1, LONG_MAX),
    "flush.ms": ("flush_ms", 0, LONG_MAX),
    "delete.retention.ms": ("delete_retention_ms", 0, LONG_MAX),
    "min.compaction.lag.ms": ("min_compaction_lag_ms", 0, LONG_MAX),
    "max.compaction.lag.ms": ("max_compaction_lag_ms", 1, LONG_MAX),
    # Kafka's levels (storage.compression); gzip's range has a hole at 0, checked below.
    "compression.gzip.level": ("compression_gzip_level", GZIP_LEVEL_DEFAULT, GZIP_LEVEL_MAX),
    "compression.lz4.level": ("compression_lz4_level", LZ4_LEVEL_MIN, LZ4_LEVEL_MAX),
    "compression.zstd.level": ("compression_zstd_level", ZSTD_LEVEL_MIN, ZSTD_LEVEL_MAX),
}
_LEVEL_CODECS = {
    "compression.gzip.level": GZIP,
    "compression.lz4.level": LZ4,
    "compression.zstd.level": ZSTD,
}
# The settings that are not integers, each with its own parser below.
CLEANUP_POLICY = "cleanup.policy"
MIN_CLEANABLE_DIRTY_RATIO = "min.cleanable.dirty.ratio"
COMPRESSION_TYPE = "compression.type"
INTEGER_CONFIG_NAMES = frozenset(_TOPIC_KEYS)
TOPIC_CONFIG_NAMES = INTEGER_CONFIG_NAMES | {
    CLEANUP_POLICY,
    MIN_CLEANABLE_DIRTY_RATIO,
    COMPRESSION_TYPE,
}
# Kafka's compression.type values (BrokerCompressionType): "producer" keeps the producer's
# codec, "uncompressed" stores none, a codec's name stores that codec.
PRODUCER = "producer"
UNCOMPRESSED = "uncompressed"
COMPRESSION_TYPES = (UNCOMPRESSED, "zstd", "lz4", "snappy", "gzip", PRODUCER)
_POLICIES = ("compact", "delete")


def parse_setting(name: str, raw: str | int) -> int:
    """The value of topic config ``name`` (one of TOPIC_CONFIG_NAMES) given as ``raw``;
    raises ``ValueError`` saying what is wrong with it (not an integer, out of range)."""
    _field, minimum, maximum = _TOPIC_KEYS[name]
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = raw if isinstance(raw, int) else int(str(raw).strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"must be at least {minimum}, got {value}")
    if value > maximum:
        raise ValueError(f"must be at most {maximum}, got {value}")
    codec = _LEVEL_CODECS.get(name)
    problem = None if codec is None else check_level(codec, value)
    if problem:
        raise ValueError(problem)
    return value


def default_setting(name: str) -> int:
    """The default of integer topic config ``name`` (one of INTEGER_CONFIG_NAMES)."""
    value: int = getattr(LogConfig(), _TOPIC_KEYS[name][0])
    return value


def parse_cleanup_policy(raw: str) -> str:
    """``cleanup.policy`` as Kafka takes it (``delete``, ``compact``, or both as a comma
    list, in either order, spaces allowed), normalized to ``delete``, ``compact`` or
    ``compact,delete``; raises ``ValueError`` saying what is wrong."""
    parts = [p.strip() for p in str(raw).split(",")]
    unknown = [p for p in parts if p not in _POLICIES]
    if unknown or not parts:
        raise ValueError(f"expected delete, compact or compact,delete, got {str(raw)!r}")
    return ",".join(p for p in _POLICIES if p in parts)


def parse_compression_type(raw: str) -> str:
    """``compression.type`` as Kafka takes it (any case), in lower case; raises
    ``ValueError`` naming the values it takes."""
    value = str(raw).strip().lower()
    if value not in COMPRESSION_TYPES:
        raise ValueError(f"expected one of {', '.join(COMPRESSION_TYPES)}, got {str(raw)!r}")
    return value


def parse_ratio(raw: str | float) -> float:
    """``min.cleanable.dirty.ratio``: a number in [0, 1]; raises ``ValueError``."""
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = float(raw)
    except ValueError:
        raise ValueError(f"expected a number between 0 and 1, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(f"must be between 0 and 1, got {raw!r}")
    return value


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
    # What happens to old records: deleted by retention ("delete"), kept as each key's latest
    # record by the cleaner ("compact"), or both ("compact,delete").
    cleanup_policy: str = "delete"
    # The cleaner takes a compacted log once this share of it is dirty (written since the
    # last clean)...
    min_cleanable_dirty_ratio: float = 0.5
    # ... never cleaning a record younger than this ...
    min_compaction_lag_ms: int = 0
    # ... and cleaning one older than this even below the ratio (Kafka: Long.MAX_VALUE).
    max_compaction_lag_ms: int = LONG_MAX
    # A tombstone (a null value) is kept this long after the cleaner first saw it (Kafka: 1 day).
    delete_retention_ms: int = _DAY_MS
    # The codec a leader stores batches with: "producer" keeps each producer batch's own
    # (Kafka's default), "uncompressed" or a codec's name rewrites a batch in another codec.
    compression_type: str = PRODUCER
    # The level of each codec when the leader compresses (Kafka's defaults).
    compression_gzip_level: int = GZIP_LEVEL_DEFAULT
    compression_lz4_level: int = LZ4_LEVEL_DEFAULT
    compression_zstd_level: int = ZSTD_LEVEL_DEFAULT

    @property
    def compact(self) -> bool:
        """Whether the cleaner compacts this log."""
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        """Whether retention deletes this log's old segments."""
        return "delete" in self.cleanup_policy

    @property
    def max_segment_ms(self) -> int:
        """The age at which a segment rolls: ``segment.ms``, or ``max.compaction.lag.ms`` if
        that is smaller on a compacted log (the active segment is never cleaned, so it must
        roll for its records to be cleaned in time; Kafka's ``LogConfig.maxSegmentMs``)."""
        if self.compact:
            return min(self.segment_ms, self.max_compaction_lag_ms)
        return self.segment_ms

    @property
    def codec(self) -> int | None:
        """The codec id the leader stores batches with: None for ``producer`` (each batch's
        own), 0 for ``uncompressed``."""
        if self.compression_type == PRODUCER:
            return None
        if self.compression_type == UNCOMPRESSED:
            return NONE
        return CODEC_IDS[self.compression_type]

    @property
    def level(self) -> int | None:
        """The level for :attr:`codec` (None for a codec without levels)."""
        return {
            GZIP: self.compression_gzip_level,
            LZ4: self.compression_lz4_level,
            ZSTD: self.compression_zstd_level,
        }.get(self.codec or NONE)

    @property
    def flushes_every_record(self) -> bool:
        """Whether a record counts as replicated only once it is fsynced (flush.messages=1)."""
        return self.flush_messages == 1

    def __post_init__(self) -> None:
        for name, (field, _minimum, _maximum) in _TOPIC_KEYS.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} ({field}) must be an integer, got {value!r}")
            try:
                parse_setting(name, value)
            except ValueError as e:
                raise ValueError(f"{name} ({field}) {e}") from None
        if parse_cleanup_policy(self.cleanup_policy) != self.cleanup_policy:
            raise ValueError(f"cleanup.policy: not normalized: {self.cleanup_policy!r}")
        parse_ratio(self.min_cleanable_dirty_ratio)
        if parse_compression_type(self.compression_type) != self.compression_type:
            raise ValueError(f"compression.type: not normalized: {self.compression_type!r}")

    @classmethod
    def from_topic_configs(
        cls, configs: Mapping[str, str | int], defaults: LogConfig | None = None
    ) -> LogConfig:
        """The config that Kafka topic configs (``{"segment.bytes": "1048576", ...}``) describe.

        Keys this class does not use (``min.insync.replicas`` ...) are
        ignored; missing keys keep ``defaults`` (Kafka's defaults when None). Raises
        ``ValueError`` naming the key and value when a value is not an integer or is out of
        range.
        """
        base = defaults if defaults is not None else cls()
        values = {f.name: getattr(base, f.name) for f in fields(cls)}
        for key, raw in configs.items():
            try:
                if key == CLEANUP_POLICY:
                    values["cleanup_policy"] = parse_cleanup_policy(str(raw))
                elif key == MIN_CLEANABLE_DIRTY_RATIO:
                    values["min_cleanable_dirty_ratio"] = parse_ratio(raw)
                elif key == COMPRESSION_TYPE:
                    values["compression_type"] = parse_compression_type(str(raw))
                elif key in _TOPIC_KEYS:
                    values[_TOPIC_KEYS[key][0]] = parse_setting(key, raw)
            except ValueError as e:
                raise ValueError(f"topic config {key}: {e}") from None
        return cls(**values)
