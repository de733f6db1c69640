"""A checked producer batch through the leader (Partition.append_batch_now) and back out
(storage.batch.batches_within, the binary fetch's cut): stamped at the log end with the
leader's epoch, the producer's bytes otherwise unchanged, the idempotent producer's rules
shared with the JSON path, and nothing stored for a refused batch."""

from __future__ import annotations

from typing import Any

import pytest

from client.protocol import (
    INVALID_PRODUCER_EPOCH,
    NOT_ENOUGH_REPLICAS,
    OUT_OF_ORDER_SEQUENCE_NUMBER,
    RECORD_TOO_LARGE,
    ApiError,
)
from server.partition import LeaderState, Partition, ProducerBatch
from storage.batch import NewRecord, batches_within, build_batch, decode_batch, iter_batches
from storage.batch_check import check_produce_batch
from storage.log_config import LogConfig
from storage.memory_log import MemoryLog

NOW_MS = 1_700_000_000_000


def partition(isr: tuple[int, ...] = (1,), min_isr: int = 1, **config: Any) -> Partition:
    return Partition(
        topic="t",
        topic_id="AAAAAAAAAAAAAAAAAAAAAQ",
        index=0,
        node_id=1,
        log=MemoryLog(LogConfig(**config)),
        state=LeaderState(1, 4, (1, 2, 3), isr),
        min_insync_replicas=min_isr,
    )


def produced(
    values: list[bytes], producer: tuple[int, int, int] = (-1, -1, -1), base_offset: int = 0
) -> bytes:
    pid, epoch, sequence = producer
    return build_batch(
        [NewRecord(None, v, NOW_MS + i) for i, v in enumerate(values)],
        base_offset=base_offset,
        partition_leader_epoch=77,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=sequence,
    )


def stored(p: Partition) -> bytes:
    return p.log.read(0, 1 << 20)


def test_a_batch_is_stamped_at_the_log_end_with_the_leaders_epoch() -> None:
    p = partition()
    p.append_now([[NewRecord(None, b"json", NOW_MS)]], "1")
    data = produced([b"a", b"b"], base_offset=12345)
    result = p.append_batch_now(check_produce_batch(data), "1")
    assert [(i.first_offset, i.last_offset) for i in result.infos] == [(1, 2)]
    assert not result.duplicate
    (_, first), (position, second) = list(iter_batches(stored(p)))
    assert (second.base_offset, second.partition_leader_epoch) == (1, 4)
    assert stored(p)[position + 16 :] == data[16:], "the producer's bytes after the stamp"
    assert [r.value for r in decode_batch(stored(p), position)[1]] == [b"a", b"b"]


def test_an_idempotent_batch_follows_the_json_paths_rules() -> None:
    p = partition()
    first = p.append_batch_now(check_produce_batch(produced([b"a", b"b"], (9, 0, 0))), "1")
    again = p.append_batch_now(check_produce_batch(produced([b"a", b"b"], (9, 0, 0))), "1")
    assert again.duplicate and again.offsets == first.offsets == [0, 1]
    with pytest.raises(ApiError) as gap:
        p.append_batch_now(check_produce_batch(produced([b"c"], (9, 0, 5))), "1")
    assert gap.value.kind is OUT_OF_ORDER_SEQUENCE_NUMBER
    assert gap.value.extra["expected_sequence"] == 2
    # The JSON path continues the binary path's sequence: one producer state.
    json = p.append_now([[NewRecord(None, b"c", NOW_MS)]], "1", ProducerBatch(9, 0, 2))
    assert json.offsets == [2]
    p.append_batch_now(check_produce_batch(produced([b"d"], (9, 1, 0))), "1")
    with pytest.raises(ApiError) as fenced:
        p.append_batch_now(check_produce_batch(produced([b"e"], (9, 0, 4))), "1")
    assert fenced.value.kind is INVALID_PRODUCER_EPOCH
    assert p.log.log_end_offset == 4


def test_a_refused_batch_stores_nothing() -> None:
    p = partition(isr=(1,), min_isr=2, max_message_bytes=200)
    with pytest.raises(ApiError) as few:
        p.append_batch_now(check_produce_batch(produced([b"a"])), "all")
    assert few.value.kind is NOT_ENOUGH_REPLICAS
    with pytest.raises(ApiError) as large:
        p.append_batch_now(check_produce_batch(produced([b"x" * 300])), "1")
    assert large.value.kind is RECORD_TOO_LARGE
    assert "max.message.bytes (200)" in large.value.message
    assert p.log.log_end_offset == 0 and stored(p) == b""


def test_batches_within_cuts_at_whole_batches() -> None:
    batches = [produced([b"x" * n], base_offset=o) for o, n in ((0, 10), (1, 50), (2, 5))]
    data = b"".join(batches)
    sizes = [len(b) for b in batches]
    assert batches_within(data, len(data)) == (len(data), 3)
    assert batches_within(data, len(data) - 1) == (sizes[0] + sizes[1], 2)
    assert batches_within(data, sizes[0]) == (sizes[0], 1)
    assert batches_within(data, sizes[0] - 1) == (0, -1)
    assert batches_within(b"", 100) == (0, -1)
