"""Logs with offset gaps, as Kafka's cleaner leaves them, for any shape of gaps: batches whose
records skip offsets, batches with no record, gaps between batches and at segments' ends.
Whatever the shape, the file log and its in-memory twin read from any offset exactly the
records at or after it, a consumer moving on by batches reaches the log end, the file log
reopened (recovered from any recovery point) reads the same, and a truncation at any offset
keeps exactly the records below it."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.batch import iter_batches
from storage.log import Log
from storage.log_config import LogConfig
from storage.memory_log import MemoryLog
from storage.partition_log import PartitionLog
from tests.gapped_batches import empty_batch, sparse_batch

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def cleaned_batches(draw: st.DrawFn) -> list[tuple[int, int, list[int]]]:
    """(base offset, last offset, record offsets) of each batch, in log order."""
    batches = []
    offset = draw(st.integers(0, 3))
    for _ in range(draw(st.integers(1, 12))):
        offset += draw(st.sampled_from([0, 0, 1, 5]))  # a gap before the batch, or none
        span = draw(st.integers(1, 6))
        last = offset + span - 1
        kept = draw(st.sets(st.integers(offset, last), max_size=span))
        batches.append((offset, last, sorted(kept)))
        offset = last + 1
    return batches


def encode(batch: tuple[int, int, list[int]]) -> bytes:
    base, last, kept = batch
    if not kept:
        return empty_batch(base, last)
    return sparse_batch(kept, base_offset=base, last_offset=last)


def consume(log: PartitionLog, start: int) -> list[int]:
    """A consumer's reads: each from the offset after the last batch of the one before."""
    found: list[int] = []
    reads = 0
    while start < log.log_end_offset:
        data = log.read(start, 150)
        reads += 1
        assert reads < 1000, f"no progress at {start}"
        if not data:
            break
        found += [r.offset for r in log.read_records(start, 150)]
        start = list(iter_batches(data))[-1][1].next_offset
    return found


@pytest.fixture(autouse=True)
def quiet_storage() -> Iterator[None]:
    logger = logging.getLogger("storage")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@SETTINGS
@given(batches=cleaned_batches(), data=st.data())
def test_any_gapped_log_reads_recovers_and_truncates_as_kafka_does(
    batches: list[tuple[int, int, list[int]]], data: st.DataObject
) -> None:
    records = [o for _b, _l, kept in batches for o in kept]
    end = batches[-1][1] + 1
    # Small segments (a batch is 61 bytes and more) so gaps fall at segments' ends too.
    config = LogConfig(
        segment_bytes=data.draw(st.sampled_from([100, 250, 1 << 20])), cleanup_policy="compact"
    )
    root = Path(tempfile.mkdtemp(prefix="gapped-log-"))
    try:
        logs: list[PartitionLog] = [Log.open(root / "t-0", config), MemoryLog(config)]
        for log in logs:
            # The replica path, in chunks as a follower fetches them.
            cut = data.draw(st.integers(1, len(batches)), label="chunk")
            log.append_batches(b"".join(encode(b) for b in batches[:cut]))
            if cut < len(batches):
                log.append_batches(b"".join(encode(b) for b in batches[cut:]))
            assert log.log_end_offset == end
        start = data.draw(st.integers(0, end), label="read from")
        for log in logs:
            assert consume(log, start) == [o for o in records if o >= start]
        file_log = logs[0]
        file_log.close()
        recovery_point = data.draw(st.integers(0, end), label="recovery point")
        reopened = Log.open(root / "t-0", config, recovery_point=recovery_point)
        assert reopened.offline is None
        assert reopened.log_end_offset == end
        assert consume(reopened, start) == [o for o in records if o >= start]
        logs[0] = reopened
        target = data.draw(st.integers(0, end), label="truncate to")
        for log in logs:
            log.truncate_to(target)
            assert log.log_end_offset <= target
            assert consume(log, 0) == [o for o in records if o < log.log_end_offset]
            assert all(o < target for o in consume(log, 0))
            # Every record below the target whose batch lies wholly below it stays.
            kept = [o for b, last, ks in batches if last < target for o in ks]
            assert consume(log, 0)[: len(kept)] == kept
        assert logs[0].log_end_offset == logs[1].log_end_offset
        for log in logs:
            log.close()
    finally:
        shutil.rmtree(root)
