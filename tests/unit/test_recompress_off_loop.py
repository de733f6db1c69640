"""server/http_batches.recompressed: a batch rewritten in the topic's compression.type is
rewritten in a worker thread when its records are large, counted decompressed (a small zstd
batch may hold 64 MiB of records, seconds of gzip-9 that must not hold the event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from server import http_batches, limits
from storage.batch import NewRecord, build_batch, decode_batch
from storage.batch_check import CheckedBatch, check_produce_batch
from storage.compression import GZIP, LZ4, ZSTD

NOW_MS = 1_700_000_000_000


def recompress_watching_threads(
    monkeypatch: pytest.MonkeyPatch, batch: CheckedBatch, codec: int | None
) -> tuple[CheckedBatch, list[Callable[..., Any]]]:
    """``recompressed(batch, codec)`` and the functions it sent to a worker thread."""
    sent: list[Callable[..., Any]] = []
    to_thread = asyncio.to_thread

    async def watched(func: Callable[..., Any], /, *args: Any) -> Any:
        sent.append(func)
        return await to_thread(func, *args)

    monkeypatch.setattr(asyncio, "to_thread", watched)
    return asyncio.run(http_batches.recompressed(batch, codec, None)), sent


def test_a_small_batch_of_large_records_is_recompressed_in_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = bytes(4 * limits.CHECK_IN_THREAD_BYTES_MIN)
    batch = check_produce_batch(build_batch([NewRecord(None, value, NOW_MS)], compression=ZSTD))
    assert batch.size < limits.CHECK_IN_THREAD_BYTES_MIN // 100
    out, sent = recompress_watching_threads(monkeypatch, batch, GZIP)
    assert len(sent) == 1
    assert out.compression == GZIP
    assert [r.value for r in decode_batch(out.data)[1]] == [value]


def test_small_records_are_recompressed_on_the_loop_and_a_kept_codec_not_at_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = [NewRecord(b"k", b"v" * 100, NOW_MS + i) for i in range(10)]
    batch = check_produce_batch(build_batch(records, compression=LZ4))
    out, sent = recompress_watching_threads(monkeypatch, batch, 0)
    assert sent == [] and out.compression == 0
    assert [r.value for r in decode_batch(out.data)[1]] == [b"v" * 100] * 10
    for kept in (None, LZ4):
        same, sent = recompress_watching_threads(monkeypatch, batch, kept)
        assert same is batch and sent == []
