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

Every number is checked: integers only (no bool, no float, which is what orjson makes of an
integer beyond 64 bits), within Java's int or long as Kafka's FetchRequest has them; anything
else is a 400 INVALID_REQUEST naming the field. The call carries proof of the cluster secret
(``server/internal_auth.py``) and ``replica_id`` must be the node that signed it.

Epochs (KIP-320, KIP-279) come from the metadata log only. A fetch carrying an older leader
epoch than the leader's gets FENCED_LEADER_EPOCH (the follower waits for newer metadata); one
carrying a newer epoch gets UNKNOWN_LEADER_EPOCH (this node has not applied it yet) and changes
nothing: the leader holds such a fetch until its own metadata moves or the wait ends, as a long
poll, so the follower does not spin. A newer epoch in a request is never taken as proof that
this node was deposed: whoever can send a request could then stop any partition for good.

Why a deposed leader whose metadata lags (say after a pause) still cannot acknowledge what
it could not replicate: its high watermark is the smallest offset over the ISR it knows, and
that ISR's members only move it by fetching from it with its own epoch. The controller elects
a new leader from the ISR and a new ISR that is a subset of it; a member that applied the new
epoch fetches elsewhere (or fetches here and is refused), so what it reported last bounds the
old leader's HW; a member that has not applied it yet holds everything it reported, and the
new leader's epoch starts at its own log end. A write to the old leader waits for the HW,
times out or fails once the metadata arrives, and is truncated away by leader epoch.

A follower whose last epoch ends earlier here than its fetch offset gets the ``diverging``
epoch and end offset, truncates there, and fetches again: followers truncate by leader epoch,
never by the high watermark alone.
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
        """The request of a follower's JSON; 400 INVALID_REQUEST naming the first bad field."""
        obj = _object(body, "the body")
        raw_partitions = obj.get("partitions")
        if not isinstance(raw_partitions, list):
            raise _malformed("partitions must be a list")
        partitions = []
        for i, raw in enumerate(raw_partitions):
            where = f"partitions[{i}]"
            p = _object(raw, where)
            partitions.append(
                FetchPartition(
                    _string(p, "topic", where),
                    _integer(p, "partition", where, 0, INT32_MAX),
                    _string(p, "topic_id", where),
                    _integer(p, "leader_epoch", where, 0, INT32_MAX),
                    _integer(p, "fetch_offset", where, 0, INT64_MAX),
                    _integer(p, "flushed_offset", where, 0, INT64_MAX),
                    _integer(p, "last_fetched_epoch", where, -1, INT32_MAX),
                )
            )
        max_wait_ms = _integer(obj, "max_wait_ms", None, 0, INT32_MAX, default=0)
        max_bytes = _integer(obj, "max_bytes", None, 0, INT32_MAX, default=1)
        return cls(
            _integer(obj, "replica_id", None, 0, INT32_MAX),
            min(max_wait_ms, limits.REPLICA_FETCH_WAIT_MS_MAX),
            min(max(max_bytes, 1), limits.REPLICA_FETCH_BYTES_MAX),
            tuple(partitions),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "replica_id": self.replica_id,
            "max_wait_ms": self.max_wait_ms,
            "max_bytes": self.max_bytes,
            "partitions": [p.__dict__ for p in self.partitions],
        }


# Kafka's FetchRequest types: epochs, partitions and ids are int32, offsets int64.
INT32_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1


def _malformed(problem: str) -> ApiError:
    return ApiError(INVALID_REQUEST, f"malformed replica fetch: {problem}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(f"{where} must be a JSON object")
    return value


def _string(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise _malformed(f"{where}.{name} must be a string")
    return value


def _integer(
    obj: dict[str, Any],
    name: str,
    where: str | None,
    minimum: int,
    maximum: int,
    default: int | None = None,
) -> int:
    field = name if where is None else f"{where}.{name}"
    if name not in obj:
        if default is None:
            raise _malformed(f"{field} is missing")
        return default
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(f"{field} must be an integer, got {_shape(value)}")
    if not minimum <= value <= maximum:
        raise _malformed(f"{field} must be in [{minimum}, {maximum}], got {value}")
    return value


def _shape(value: Any) -> str:
    """What a wrong value is, briefly (a float is shown: orjson makes one of a huge integer)."""
    if isinstance(value, float):
        return f"{value!r} (a float; integers beyond 64 bits become floats)"
    return "a boolean" if isinstance(value, bool) else type(value).__name__


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
            # This node has not applied that epoch yet (or it does not exist): the metadata
            # decides who leads, never a request, so nothing changes here.
            entry["error"] = _error(
                UNKNOWN_LEADER_EPOCH,
                f"leader epoch {want.leader_epoch} is newer than {epoch}, the latest node "
                f"{self.node_id} knows of {want.topic}-{want.partition}",
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
        """Answers at once when there is data or an error, else after up to max_wait_ms. An
        epoch this node has not applied yet is no reason to answer at once: it waits for the
        metadata (a partition's change wakes it) like a fetch with nothing new."""
        deadline = self._clock.monotonic_s() + request.max_wait_ms / 1000
        while True:
            entries, chunks = self.answer(request, self._clock.wall_ms())
            remaining = deadline - self._clock.monotonic_s()
            if any(chunks) or any(_answer_now(e) for e in entries) or remaining <= 0:
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


def _answer_now(entry: dict[str, Any]) -> bool:
    """Whether a partition's answer is news for the follower (diverging, or an error it
    acts on) rather than something the leader's own metadata will settle."""
    error = entry.get("error")
    if error is not None:
        return bool(error["error_code"] != UNKNOWN_LEADER_EPOCH.code)
    return "diverging" in entry


def isr_to_shrink(p: Partition, now_ms: int, lag_max_ms: int) -> tuple[int, ...] | None:
    """The ISR without the followers that have not caught up for ``lag_max_ms``, or None."""

    def caught_up_ms(replica: int) -> int:
        progress = p.followers.get(replica)
        # A follower not heard from since this node became leader has had that long.
        return p.leader_since_ms if progress is None else progress.last_caught_up_ms

    keep = tuple(r for r in p.state.isr if r == p.node_id or now_ms - caught_up_ms(r) <= lag_max_ms)
    return keep if keep != p.state.isr else None
