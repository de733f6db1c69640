"""The data of scripts/bench_cleaner.py: a compacted topic's records, the same bytes on both
sides. Pure: parameters in, records out; nothing here touches a file or a clock.

Record ``i`` (0-based, offset ``i`` in a partition written from empty) is a function of the
parameters alone, computed the same way by :class:`Workload` and by KafkaProbe.java's
``produce-workload`` mode, so Kafka's producer and our storage write byte-identical batches:

- two 64-bit draws from a counter-based generator (SplitMix64's finalizer over
  ``seed + (2 i + j + 1) * 0x9E3779B97F4A7C15``, modulo 2^64): draw ``j = 0`` picks the key,
  ``draw mod keys``; draw ``j = 1`` makes the record a tombstone when its top 53 bits, as a
  fraction of 2^53, fall below ``tombstone_share`` (an IEEE double on both sides, so both agree
  to the last bit)
- key: ``key-%08d`` of the key index, ASCII
- value: ``i`` as 8 bytes big-endian, then ``value_bytes - 8`` dots; ``None`` for a tombstone
- timestamp: ``base_timestamp_ms + i`` (CreateTime; fixed, so two runs write the same bytes)
- batches of ``batch_records`` records each (the last one may be shorter), no headers, no
  producer id, leader epoch 0: what Kafka's producer sends with ``enable.idempotence=false``
  and what ``storage.log.Log.append_as_leader(records, 0)`` writes
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from storage.batch import NewRecord

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment
# 2026-01-01T00:00:00Z: a fixed time in the past (Kafka refuses timestamps more than an hour
# ahead of its clock, message.timestamp.after.max.ms, and none of the past).
BASE_TIMESTAMP_MS = 1_767_225_600_000
INDEX_PREFIX = struct.Struct(">q")  # the value's first 8 bytes: the record's index
# Kafka's producer refuses a batch larger than its max.request.size; ours the topic's
# max.message.bytes. A workload's batch must fit both (see max_batch_bytes).
BATCH_BYTES_MAX = 8 * 1024 * 1024


def mix64(z: int) -> int:
    """SplitMix64's finalizer (Steele, Lea, Flood 2014): a bijection of 64-bit integers."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def draw(seed: int, index: int, stream: int) -> int:
    """The ``stream``-th 64-bit draw of record ``index`` (unsigned)."""
    return mix64((seed + (2 * index + stream + 1) * GOLDEN_GAMMA) & MASK64)


@dataclass(frozen=True)
class Workload:
    """A compacted partition's records, deterministic in its parameters."""

    records: int = 1_000_000
    keys: int = 100_000
    value_bytes: int = 100
    tombstone_share: float = 0.01
    batch_records: int = 1000
    seed: int = 1
    base_timestamp_ms: int = BASE_TIMESTAMP_MS

    def __post_init__(self) -> None:
        if self.records < 1:
            raise ValueError(f"--records must be at least 1, got {self.records}")
        if self.keys < 1:
            raise ValueError(f"--keys must be at least 1, got {self.keys}")
        if self.value_bytes < INDEX_PREFIX.size:
            raise ValueError(
                f"--value-bytes must be at least {INDEX_PREFIX.size} (the record's index), "
                f"got {self.value_bytes}"
            )
        if not 0.0 <= self.tombstone_share <= 1.0:
            raise ValueError(f"--tombstones must be between 0 and 1, got {self.tombstone_share}")
        if self.batch_records < 1:
            raise ValueError(f"--batch-records must be at least 1, got {self.batch_records}")
        if not 0 <= self.seed <= MASK64:
            raise ValueError(f"--seed must be in [0, 2^64), got {self.seed}")
        if self.max_batch_bytes() > BATCH_BYTES_MAX:
            raise ValueError(
                f"a batch of {self.batch_records} records of {self.value_bytes} bytes may take "
                f"{self.max_batch_bytes():,} bytes, more than {BATCH_BYTES_MAX:,}: fewer "
                "--batch-records"
            )

    def key_index(self, index: int) -> int:
        return draw(self.seed, index, 0) % self.keys

    def is_tombstone(self, index: int) -> bool:
        # The top 53 bits as a fraction of 2^53: exact in a double, as in the Java probe.
        return (draw(self.seed, index, 1) >> 11) * 2.0**-53 < self.tombstone_share

    def key(self, index: int) -> bytes:
        return b"key-%08d" % self.key_index(index)

    def value(self, index: int) -> bytes | None:
        if self.is_tombstone(index):
            return None
        return INDEX_PREFIX.pack(index) + b"." * (self.value_bytes - INDEX_PREFIX.size)

    def record(self, index: int) -> NewRecord:
        return NewRecord(self.key(index), self.value(index), self.base_timestamp_ms + index)

    def batches(self) -> Iterator[list[NewRecord]]:
        """The records in batches of ``batch_records``, in offset order."""
        filler = b"." * (self.value_bytes - INDEX_PREFIX.size)
        pack = INDEX_PREFIX.pack
        for start in range(0, self.records, self.batch_records):
            batch = []
            for i in range(start, min(start + self.batch_records, self.records)):
                value = None if self.is_tombstone(i) else pack(i) + filler
                batch.append(NewRecord(self.key(i), value, self.base_timestamp_ms + i))
            yield batch

    @property
    def batch_count(self) -> int:
        return -(-self.records // self.batch_records)

    def max_batch_bytes(self) -> int:
        """An upper bound of one batch's size in the log: the 61-byte header and, per record,
        at most 5 bytes of length, 1 of attributes, 10 of timestamp delta, 5 of offset delta,
        5 + 5 of key and value lengths, 1 of header count, the key (at most 24 bytes: 'key-'
        and a 64-bit number) and the value."""
        per_record = 5 + 1 + 10 + 5 + 5 + 24 + 5 + self.value_bytes + 1
        return 61 + self.batch_records * per_record

    def latest_per_key(self) -> dict[bytes, int]:
        """Each key's latest record index (what compaction keeps, tombstones included, up to
        the point a clean reaches): for checks, not for the timed path."""
        latest: dict[bytes, int] = {}
        for i in range(self.records):
            latest[self.key(i)] = i
        return latest

    def probe_args(self) -> list[str]:
        """The arguments of KafkaProbe's ``produce-workload`` mode after BOOTSTRAP TOPIC, in
        its order."""
        return [
            str(self.records),
            str(self.keys),
            str(self.value_bytes),
            repr(self.tombstone_share),
            str(self.batch_records),
            str(self.seed),
            str(self.base_timestamp_ms),
        ]
