"""Replication, the leader's side: the replica fetch, the high watermark, and the ISR.

Kafka's ISR model carries partition data; Raft carries only who leads and who is in sync.
Followers pull: one long-polling fetch per leader broker covers every partition a follower
follows there (``server/fetcher.py`` sends it). The fetch is the follower's report too: how
far it has appended and how far it has fsynced (a follower fsyncs what it appended before it
fetches again, unless the topic's ``flush.messages`` is above 1). The high watermark is the
smallest fsynced offset over the ISR, or the smallest appended one for such topics
(``Partition.advance_high_watermark``).

Wire format of ``POST /v1/internal/replica-fetch``
--------------------------------------------------
Request, JSON::

    {"replica_id": 2, "max_wait_ms": 500, "max_bytes": 8388608,
     "partitions": [{"topic": "news", "partition": 0, "topic_id": "...",
                     "leader_epoch": 3,          # the epoch the follower believes in
                     "fetch_offset": 120,        # its log end offset
                     "flushed_offset": 120,      # how far it has fsynced (its recovery point)
                     "last_fetched_epoch": 2}]}  # the epoch of its last batch, -1 if none

Response, ``application/octet-stream``, raw batch bytes rather than JSON::

    header_length   uint32, big-endian
    header          JSON: {"partitions": [{"topic", "partition", "size",
                            "high_watermark", "log_start_offset", "log_end_offset",
                            "diverging": null | {"epoch", "end_offset"},
                            "error": null | {"error_code", "error", "message"}}]}
    data            each partition's batches, ``size`` bytes each, in header order

Epochs (KIP-320, KIP-279): a fetch carrying an older leader epoch than the leader's gets
FENCED_LEADER_EPOCH (the follower waits for newer metadata). One carrying a newer epoch tells
this node it was deposed, say while it was paused: it stops leading at once and acknowledges
nothing more. A follower whose last epoch ends earlier here than its fetch offset gets the
``diverging`` epoch and end offset, truncates there, and fetches again: followers truncate by
leader epoch, never by the high watermark alone.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from client.protocol import (
    FENCED_LEADER_EPOCH,
    INVALID_REQUEST,
    KAFKA_STORAGE_ERROR,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_OUT_OF_RANGE,
    UNKNOWN_LEADER_EPOCH,
    UNKNOWN_PARTITION,
    ApiError,
    ErrorKind,
)
from server import limits
from server.clock import SYSTEM_CLOCK, Clock
from server.partition import FollowerProgress, Partition
from storage.errors import KafkaStorageError

log = logging.getLogger(__name__)

HEADER_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class FetchPartition:
    topic: str
    partition: int
    topic_id: str
    leader_epoch: int
    fetch_offset: int
    flushed_offset: int
    last_fetched_epoch: int


@dataclass(frozen=True)
class FetchRequest:
    replica_id: int
    max_wait_ms: int
    max_bytes: int
    partitions: tuple[FetchPartition, ...]

    @classmethod
    def from_json(cls, body: Any) -> FetchRequest:
        try:
            partitions = tuple(
                FetchPartition(
                    str(p["topic"]),
                    int(p["partition"]),
                    str(p["topic_id"]),
                    int(p["leader_epoch"]),
                    int(p["fetch_offset"]),
                    int(p["flushed_offset"]),
                    int(p["last_fetched_epoch"]),
                )
                for p in body["partitions"]
            )
            return cls(
                int(body["replica_id"]),
                min(max(int(body.get("max_wait_ms", 0)), 0), limits.REPLICA_FETCH_WAIT_MS_MAX),
                min(max(int(body.get("max_bytes", 1)), 1), limits.REPLICA_FETCH_BYTES_MAX),
                partitions,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ApiError(INVALID_REQUEST, f"malformed replica fetch: {e!r}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "replica_id": self.replica_id,
            "max_wait_ms": self.max_wait_ms,
            "max_bytes": self.max_bytes,
            "partitions": [p.__dict__ for p in self.partitions],
        }


def encode_response(entries: list[dict[str, Any]], chunks: list[bytes]) -> bytes:
    header = orjson.dumps({"partitions": entries})
    return HEADER_LENGTH.pack(len(header)) + header + b"".join(chunks)


def decode_response(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """The (header entry, batch bytes) of each partition; ValueError if malformed."""
    if len(data) < HEADER_LENGTH.size:
        raise ValueError("the replica fetch response is shorter than its header length")
    (length,) = HEADER_LENGTH.unpack_from(data)
    end = HEADER_LENGTH.size + length
    if end > len(data):
        raise ValueError("the replica fetch header runs past the response")
    entries = orjson.loads(data[HEADER_LENGTH.size : end])["partitions"]
    out = []
    for entry in entries:
        size = int(entry["size"])
        if size < 0 or end + size > len(data):
            raise ValueError("a partition's data runs past the response")
        out.append((entry, data[end : end + size]))
        end += size
    if end != len(data):
        raise ValueError("the replica fetch response has bytes after its last partition")
    return out


def _error(kind: ErrorKind, message: str) -> dict[str, Any]:
    return {"error_code": kind.code, "error": kind.name, "message": message}


class ReplicaFetchHandler:
    """Serves followers' fetches for the partitions this node leads."""

    def __init__(
        self,
        node_id: int,
        lookup: Callable[[str, int], Partition | None],
        request_isr_change: Callable[[Partition, tuple[int, ...]], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.node_id = node_id
        self._lookup = lookup
        self._request_isr_change = request_isr_change
        self._clock = clock

    def _one(
        self, request: FetchRequest, want: FetchPartition, now_ms: int, budget: int
    ) -> tuple[dict[str, Any], bytes]:
        entry: dict[str, Any] = {"topic": want.topic, "partition": want.partition, "size": 0}
        p: Partition | None = self._lookup(want.topic, want.partition)
        if p is None or p.topic_id != want.topic_id:
            entry["error"] = _error(UNKNOWN_PARTITION, f"{want.topic}-{want.partition} is not here")
            return entry, b""
        epoch = p.state.leader_epoch
        if want.leader_epoch < epoch:
            entry["error"] = _error(
                FENCED_LEADER_EPOCH, f"leader epoch {want.leader_epoch} is older than {epoch}"
            )
            return entry, b""
        if want.leader_epoch > epoch:
            p.learn_deposed(want.leader_epoch)
            entry["error"] = _error(
                UNKNOWN_LEADER_EPOCH, f"leader epoch {want.leader_epoch} is newer than {epoch}"
            )
            return entry, b""
        if not p.is_leader or p.log.offline:
            entry["error"] = _error(NOT_LEADER_OR_FOLLOWER, f"node {self.node_id} does not lead")
            return entry, b""
        log_ = p.log
        entry.update(
            high_watermark=log_.high_watermark,
            log_start_offset=log_.log_start_offset,
            log_end_offset=log_.log_end_offset,
        )
        if want.last_fetched_epoch >= 0:
            end_epoch, end_offset = log_.epoch_cache.end_offset_for(
                want.last_fetched_epoch, log_.log_end_offset
            )
            if end_epoch != want.last_fetched_epoch or end_offset < want.fetch_offset:
                entry["diverging"] = {"epoch": end_epoch, "end_offset": end_offset}
                return entry, b""
        if not log_.log_start_offset <= want.fetch_offset <= log_.log_end_offset:
            entry["error"] = _error(
                OFFSET_OUT_OF_RANGE,
                f"fetch offset {want.fetch_offset} is outside "
                f"[{log_.log_start_offset}, {log_.log_end_offset}]",
            )
            return entry, b""
        self._record_progress(p, request.replica_id, want, now_ms)
        entry["high_watermark"] = log_.high_watermark
        if budget <= 0 or want.fetch_offset == log_.log_end_offset:
            return entry, b""
        try:
            data = log_.read(want.fetch_offset, budget)
        except KafkaStorageError:
            p.notify()
            entry["error"] = _error(KAFKA_STORAGE_ERROR, str(log_.offline))
            return entry, b""
        entry["size"] = len(data)
        return entry, data

    def _record_progress(
        self, p: Partition, replica: int, want: FetchPartition, now_ms: int
    ) -> None:
        """Kafka's rules: the fetch offset is what the follower has; it is caught up if it
        reached the log end, or the log end of its last fetch."""
        fetch_offset = want.fetch_offset
        leo = p.log.log_end_offset
        progress = p.followers.get(replica)
        if progress is None:
            progress = p.followers[replica] = FollowerProgress(now_ms, now_ms, leo)
        if fetch_offset >= leo:
            progress.last_caught_up_ms = now_ms
        elif fetch_offset >= progress.last_fetch_leo:
            progress.last_caught_up_ms = progress.last_fetch_ms
        progress.last_fetch_ms = now_ms
        progress.last_fetch_leo = leo
        p.follower_reported(replica, fetch_offset, want.flushed_offset)
        if (
            replica in p.state.replicas
            and replica not in p.state.isr
            and fetch_offset >= p.log.high_watermark
            and fetch_offset >= p.leader_epoch_start_offset()
        ):
            self._request_isr_change(p, (*p.state.isr, replica))

    def answer(
        self, request: FetchRequest, now_ms: int
    ) -> tuple[list[dict[str, Any]], list[bytes]]:
        """One pass over the request's partitions: each one's header entry and batch bytes
        (within the request's byte budget), the followers' progress recorded."""
        budget = request.max_bytes
        entries, chunks = [], []
        for want in request.partitions:
            entry, data = self._one(request, want, now_ms, budget)
            budget -= len(data)
            entries.append(entry)
            chunks.append(data)
        return entries, chunks

    async def fetch(self, request: FetchRequest) -> bytes:
        """Answers at once when there is data or an error, else after up to max_wait_ms."""
        deadline = self._clock.monotonic_s() + request.max_wait_ms / 1000
        while True:
            entries, chunks = self.answer(request, self._clock.wall_ms())
            remaining = deadline - self._clock.monotonic_s()
            if (
                any(chunks)
                or any("error" in e or "diverging" in e for e in entries)
                or remaining <= 0
            ):
                return encode_response(entries, chunks)
            waiters = [
                p.changed()
                for want in request.partitions
                if (p := self._lookup(want.topic, want.partition)) is not None
            ]
            if not waiters:
                return encode_response(entries, chunks)
            done, pending = await asyncio.wait(
                [asyncio.ensure_future(w) for w in waiters],
                timeout=remaining,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()


def isr_to_shrink(p: Partition, now_ms: int, lag_max_ms: int) -> tuple[int, ...] | None:
    """The ISR without the followers that have not caught up for ``lag_max_ms``, or None."""

    def caught_up_ms(replica: int) -> int:
        progress = p.followers.get(replica)
        # A follower not heard from since this node became leader has had that long.
        return p.leader_since_ms if progress is None else progress.last_caught_up_ms

    keep = tuple(r for r in p.state.isr if r == p.node_id or now_ms - caught_up_ms(r) <= lag_max_ms)
    return keep if keep != p.state.isr else None
