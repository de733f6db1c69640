"""Binary fetch answers for in-memory twins of the cluster: stored batches as a leader would
send them (built by client/batches.py, then stamped with their base offset as the leader does)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from client.batches import NO_HEADERS, build
from client.consumer_client import FetchedBatches

Stored = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]


def stamped(records: Sequence[Stored], base_offset: int) -> bytes:
    """One batch of ``records`` (key, value, headers, timestamp) stored at ``base_offset``."""
    batch = build(records)
    return struct.pack(">q", base_offset) + batch[8:12] + struct.pack(">i", 0) + batch[16:]


def log_answer(
    values: Sequence[bytes],
    start: int,
    *,
    per_batch: int = 1,
    timestamp_base: int = 1000,
    log_start: int = 0,
) -> FetchedBatches:
    """The answer of a log holding ``values`` at offsets 0.. in batches of ``per_batch``
    records, to a fetch from ``start``: every batch from the one holding ``start`` on."""
    first_batch = (start // per_batch) * per_batch
    body = b"".join(
        stamped(
            [
                (None, values[o], NO_HEADERS, timestamp_base + o)
                for o in range(base, min(base + per_batch, len(values)))
            ],
            base,
        )
        for base in range(first_batch, len(values), per_batch)
    )
    end = max(start, len(values))
    return FetchedBatches(body, end, len(values), log_start)
