"""The order in which Java's ``HashMap`` and ``HashSet`` hand back their keys.

Kafka's tools print some of their output by iterating hash maps (kafka-dump-log.sh's
"Non-consecutive offsets in" blocks, one per file; kafka-log-dirs.sh's whole JSON line, keys
and lists alike). Our tools print what Kafka's print, so they put their keys in the order
OpenJDK's ``java.util.HashMap`` (Java 8 to 21) iterates them:

- a key's bucket is ``(h ^ (h >>> 16)) & (capacity - 1)``, ``h`` its ``hashCode()``;
- the table starts at ``capacity`` (16 for ``new HashMap<>()``, the next power of two for
  ``new HashMap<>(n)``) and doubles whenever the size passes three quarters of it;
- iteration walks the buckets in index order; keys that share a bucket keep the order they
  were ``put`` in, but ``computeIfAbsent`` puts a new key at the head of its bucket, so there
  the newest comes first (a resize splits a bucket in two without reordering either half);
- ``put`` resizes once the size, new key counted, passes the threshold; ``computeIfAbsent``
  resizes before adding a key when the size already passes it.

A bucket holding eight or more keys in a table of 64 or more becomes a tree whose iteration
order differs; the few keys our tools order never come near that.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_CAPACITY = 16  # new HashMap<>() and new HashSet<>()
_INT_MASK = 0xFFFFFFFF
_MAXIMUM_CAPACITY = 1 << 30  # HashMap.MAXIMUM_CAPACITY


def to_int32(value: int) -> int:
    """``value`` wrapped to a Java int, as Java's int arithmetic leaves it."""
    value &= _INT_MASK
    return value - (1 << 32) if value >= 1 << 31 else value


def string_hash(text: str) -> int:
    """Java's ``String.hashCode()``: ``s[0]*31^(n-1) + ... + s[n-1]`` over UTF-16 code units."""
    h = 0
    units = text.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & _INT_MASK
    return to_int32(h)


def long_hash(value: int) -> int:
    """Java's ``Long.hashCode()`` (``Integer.hashCode()`` is the value itself)."""
    bits = value & 0xFFFFFFFFFFFFFFFF
    return to_int32(bits ^ (bits >> 32))


def topic_partition_hash(topic: str, partition: int) -> int:
    """Kafka's ``TopicPartition.hashCode()``: ``31 * (31 + partition) + topic.hashCode()``."""
    return to_int32(31 * (31 + partition) + string_hash(topic))


def table_size_for(capacity: int) -> int:
    """``HashMap.tableSizeFor``: the smallest power of two at least ``capacity`` (1 for 0)."""
    size = 1
    while size < capacity and size < _MAXIMUM_CAPACITY:
        size <<= 1
    return size


def hash_set_capacity(size: int) -> int:
    """The table ``new HashSet<>(collection)`` starts with for a collection of ``size``."""
    return table_size_for(max(int(size / 0.75) + 1, DEFAULT_CAPACITY))


def hash_map_order(
    entries: Iterable[tuple[K, int]],
    capacity: int = DEFAULT_CAPACITY,
    compute_if_absent: bool = False,
) -> list[K]:
    """The keys of ``entries`` (key, its Java ``hashCode()``; added in this order, a key added
    again keeping its first place) in the order a ``HashMap`` whose table started at
    ``capacity`` (a power of two) iterates them, the keys added by ``put`` (or ``add``,
    ``putIfAbsent``) or, with ``compute_if_absent``, by ``computeIfAbsent``."""
    first_seen: dict[K, tuple[int, int]] = {}
    for key, h in entries:
        if key not in first_seen:
            first_seen[key] = (len(first_seen), to_int32(h))
    table = capacity
    # The most keys the table held at a resize check: putVal checks after adding
    # (++size > threshold), computeIfAbsent before (size > threshold).
    checked = len(first_seen) - 1 if compute_if_absent else len(first_seen)
    while checked > table * 3 // 4 and table < _MAXIMUM_CAPACITY:
        table <<= 1
    newest_first = -1 if compute_if_absent else 1

    def bucket(key: K) -> tuple[int, int]:
        order, h = first_seen[key]
        spread = (h & _INT_MASK) ^ ((h & _INT_MASK) >> 16)
        return spread & (table - 1), newest_first * order

    return sorted(first_seen, key=bucket)
