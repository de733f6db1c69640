"""An idempotent writer for failover tests: it keeps sending while nodes die and come back.

The writer is what a careful Kafka producer is: it takes a producer id (``POST /v1/producers``),
sends each batch with ``Producer-Id``/``Producer-Epoch``/``Producer-Seq`` to the partition's
leader, and after any error or timeout sends the *same* batch with the *same* sequence again,
looking the leader up afresh (``GET /v1/topics/T``), until it is acknowledged. So every
batch ends up stored exactly once, whatever happened to the answers, if the broker keeps the
idempotence promise; the tests then check that it did.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any

from scripts.node_process import Cluster, NodeProcess, http

# Per attempt: the broker's own acks=all wait, and the client's socket timeout above it, so a
# stuck leader (paused, partitioned) costs one attempt rather than the test.
ATTEMPT_TIMEOUT_MS = 10_000
SOCKET_TIMEOUT_S = ATTEMPT_TIMEOUT_MS / 1000 + 5
# Pause between retries: leadership moves within seconds; a tight loop only burns the 2 cores.
RETRY_PAUSE_S = 0.1
# A batch that cannot be acknowledged for this long means the cluster did not recover.
BATCH_DEADLINE_S = 90.0
# Answers after which the same batch is simply sent again (the outcome was unknown or the
# node was not, or no longer, the leader). Anything else (a sequence gap, a fenced epoch,
# a malformed request) is a broken promise and stops the writer.
RETRIABLE_STATUSES = frozenset({307, 404, 500, 502, 503})


@dataclass(frozen=True)
class Ack:
    """One acknowledged batch: its values, the offsets it was given, who answered."""

    values: tuple[str, ...]
    offsets: tuple[int, ...]
    node_id: int
    duplicate: bool
    at_monotonic: float


@dataclass
class IdempotentWriter:
    cluster: Cluster
    topic: str
    total: int
    batch_size: int = 50
    partition: int = 0
    acks: list[Ack] = field(default_factory=list)
    retries: dict[str, int] = field(default_factory=dict)
    error: BaseException | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the test's side ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="idempotent-writer", daemon=True)
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        """Waits for the writer to finish; re-raises what stopped it, fails if it is stuck."""
        assert self._thread is not None
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._stop.set()
            raise AssertionError(f"the writer did not finish in {timeout_s} s: {self.status()}")
        if self.error is not None:
            raise AssertionError(f"the writer stopped: {self.error!r}") from self.error

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(SOCKET_TIMEOUT_S + 5)

    def acknowledged_records(self) -> int:
        with self._lock:
            return sum(len(a.values) for a in self.acks)

    def acks_since(self, moment: float, node_id: int | None = None) -> list[Ack]:
        """Batches acknowledged after ``moment`` (time.monotonic), by ``node_id`` if given."""
        with self._lock:
            return [
                a
                for a in self.acks
                if a.at_monotonic > moment and (node_id is None or a.node_id == node_id)
            ]

    def status(self) -> str:
        with self._lock:
            duplicates = sum(a.duplicate for a in self.acks)
        return (
            f"{self.acknowledged_records()} of {self.total} acknowledged "
            f"({duplicates} batches answered as duplicates), retries {self.retries}"
        )

    # -- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            producer_id = self._producer_id()
            leader: NodeProcess | None = None
            for seq in range(0, self.total, self.batch_size):
                if self._stop.is_set():
                    return
                values = tuple(
                    f"record-{i:06d}" for i in range(seq, min(seq + self.batch_size, self.total))
                )
                leader = self._send(producer_id, seq, values, leader)
        except BaseException as e:  # handed to the test thread by join()
            self.error = e

    def _producer_id(self) -> int:
        deadline = time.monotonic() + BATCH_DEADLINE_S
        while time.monotonic() < deadline:
            for node in self.cluster.running():
                try:
                    status, body = http("POST", f"{node.url}/v1/producers", {}, timeout=10)
                except OSError:
                    continue
                if status == 200:
                    return int(body["producer_id"])
            time.sleep(RETRY_PAUSE_S)
        raise AssertionError("no node handed out a producer id")

    def _send(
        self, producer_id: int, seq: int, values: tuple[str, ...], leader: NodeProcess | None
    ) -> NodeProcess | None:
        """Sends one batch until it is acknowledged; returns the node that acknowledged it."""
        deadline = time.monotonic() + BATCH_DEADLINE_S
        while time.monotonic() < deadline and not self._stop.is_set():
            if leader is None:
                leader = self._find_leader()
                if leader is None:
                    time.sleep(RETRY_PAUSE_S)
                    continue
            try:
                status, body = self._post(leader, producer_id, seq, values)
            except (OSError, ValueError, HTTPException) as e:
                # Refused, reset, timed out, or cut off mid-answer: the outcome is unknown.
                self._count(type(e).__name__)
                leader = None
                time.sleep(RETRY_PAUSE_S)
                continue
            if status == 200:
                offsets = tuple(int(o["offset"]) for o in body["offsets"])
                if offsets != tuple(range(offsets[0], offsets[0] + len(values))):
                    raise AssertionError(f"batch at seq {seq} got offsets {offsets}")
                with self._lock:
                    self.acks.append(
                        Ack(
                            values,
                            offsets,
                            leader.node_id,
                            bool(body.get("duplicate")),
                            time.monotonic(),
                        )
                    )
                return leader
            if status not in RETRIABLE_STATUSES:
                raise AssertionError(f"batch at seq {seq}: {status} {body}")
            self._count(f"{status} {body.get('error') if isinstance(body, dict) else body}")
            leader = None
            time.sleep(RETRY_PAUSE_S)
        raise AssertionError(f"batch at seq {seq} not acknowledged in {BATCH_DEADLINE_S} s")

    def _count(self, what: str) -> None:
        with self._lock:
            self.retries[what] = self.retries.get(what, 0) + 1

    def _find_leader(self) -> NodeProcess | None:
        for node in self.cluster.running():
            try:
                status, body = http("GET", f"{node.url}/v1/topics/{self.topic}", timeout=5)
            except OSError:
                continue
            if status != 200:
                continue
            leader = body["partitions"][self.partition]["leader"]
            if leader is not None:
                return self.cluster.node(int(leader))
        return None

    def _post(
        self, node: NodeProcess, producer_id: int, seq: int, values: tuple[str, ...]
    ) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{node.url}/v1/topics/{self.topic}/partitions/{self.partition}/records"
            f"?acks=all&timeout_ms={ATTEMPT_TIMEOUT_MS}",
            data=json.dumps({"records": [{"value": v} for v in values]}).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Producer-Id": str(producer_id),
                "Producer-Epoch": "0",
                "Producer-Seq": str(seq),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=SOCKET_TIMEOUT_S) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")
