"""The chaos tier's workload: idempotent ``acks=all`` writers and long-polling readers, one of
each per partition of a busy topic, every operation recorded for the checker.

A writer is a careful Kafka producer (as tests/integration/writer.py): one producer id, each
batch sent with ``Producer-Id``/``Producer-Epoch``/``Producer-Seq`` to the partition's leader
and, after any error or timeout, the *same* batch with the *same* sequence again, the leader
looked up afresh. Each attempt is one :class:`Write`: ``ok`` with offsets, ``failed`` when the
node said it did not take it (not the leader, unknown topic), ``unknown`` otherwise (a timeout,
a reset, any 5xx: ``acks=all`` may time out after the leader appended).

A reader asks the partition's leader for records from its next offset, waiting up to a second
for new ones, and records each answer as a :class:`Poll`. Clients reach every node directly;
only inter-node links go through Toxiproxy.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any

from scripts.node_process import Cluster, NodeProcess, http
from tests.chaos.checker import Poll, Write

# acks=all waits this long on the broker; the socket a little longer, so a paused or cut-off
# leader costs one attempt of a few seconds, and the unavailability measured stays close to
# the cluster's own.
ACK_TIMEOUT_MS = 3_000
SOCKET_TIMEOUT_S = ACK_TIMEOUT_MS / 1000 + 2
# Between attempts after an error, and between batches: the 2 cores run three nodes too.
RETRY_PAUSE_S = 0.1
BATCH_PAUSE_S = 0.02
RECORDS_PER_BATCH = 5
POLL_WAIT_MS = 1_000
POLL_RECORDS_MAX = 1_000
# Answers meaning "the node did not append it": the leader is elsewhere or the topic unknown.
DEFINITE_FAILURES = frozenset({307, 404})


@dataclass
class History:
    """What every client did, appended to from their threads."""

    writes: list[Write] = field(default_factory=list)
    polls: list[Poll] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, w: Write) -> None:
        with self.lock:
            self.writes.append(w)

    def poll(self, p: Poll) -> None:
        with self.lock:
            self.polls.append(p)

    def count(self, what: str) -> None:
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1

    def ack_times(self) -> list[float]:
        with self.lock:
            return [w.at_s for w in self.writes if w.outcome == "ok"]


def leader_node(cluster: Cluster, topic: str, partition: int) -> NodeProcess | None:
    """The partition's leader as the first answering node sees it (None if unknown)."""
    for node in cluster.running():
        try:
            status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=2)
        except (OSError, HTTPException):
            continue
        if status != 200:
            continue
        leader = body["partitions"][partition]["leader"]
        if leader is not None:
            return cluster.node(int(leader))
    return None


def _request(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    return http(method, url, body, SOCKET_TIMEOUT_S, headers)


@dataclass
class Client:
    cluster: Cluster
    topic: str
    partition: int
    history: History
    name: str
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    crash: BaseException | None = None

    @property
    def key(self) -> str:
        return f"{self.topic}-{self.partition}"

    def start(self) -> None:
        self.thread = threading.Thread(target=self._guarded, name=self.name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(SOCKET_TIMEOUT_S + 5)
        assert not self.thread.is_alive(), f"{self.name} did not stop"
        if self.crash is not None:
            raise AssertionError(f"{self.name} crashed: {self.crash!r}") from self.crash

    def _guarded(self) -> None:
        try:
            self.run()
        except BaseException as e:  # handed to the test by join()
            self.crash = e

    def run(self) -> None:
        raise NotImplementedError


@dataclass
class Writer(Client):
    def run(self) -> None:
        producer_id = self._producer_id()
        seq = 0
        leader: NodeProcess | None = None
        while not self.stop_event.is_set():
            values = tuple(
                f"{self.key}-{self.name}-{seq + i:07d}" for i in range(RECORDS_PER_BATCH)
            )
            # The same batch, same sequence, until acknowledged (or the run ends).
            while not self.stop_event.is_set():
                leader = leader or leader_node(self.cluster, self.topic, self.partition)
                if leader is None:
                    time.sleep(RETRY_PAUSE_S)
                    continue
                if self._attempt(leader, producer_id, seq, values):
                    seq += len(values)
                    break
                leader = None
                time.sleep(RETRY_PAUSE_S)
            time.sleep(BATCH_PAUSE_S)

    def _producer_id(self) -> int:
        while not self.stop_event.is_set():
            for node in self.cluster.running():
                try:
                    status, body = http("POST", f"{node.url}/v1/producers", {}, timeout=5)
                except (OSError, HTTPException):
                    continue
                if status == 200:
                    return int(body["producer_id"])
            time.sleep(RETRY_PAUSE_S)
        raise AssertionError("stopped before any node handed out a producer id")

    def _attempt(
        self, node: NodeProcess, producer_id: int, seq: int, values: tuple[str, ...]
    ) -> bool:
        try:
            status, body = _request(
                "POST",
                f"{node.url}/v1/topics/{self.topic}/partitions/{self.partition}/records"
                f"?acks=all&timeout_ms={ACK_TIMEOUT_MS}",
                {"records": [{"value": v} for v in values]},
                {
                    "Producer-Id": str(producer_id),
                    "Producer-Epoch": "0",
                    "Producer-Seq": str(seq),
                },
            )
        except (OSError, ValueError, HTTPException) as e:
            self.history.count(type(e).__name__)
            self.history.write(Write(self.key, values, "unknown", at_s=time.monotonic()))
            return False
        now = time.monotonic()
        if status == 200:
            offsets = tuple(int(o["offset"]) for o in body["offsets"])
            self.history.write(Write(self.key, values, "ok", offsets, at_s=now))
            return True
        error = body.get("error") if isinstance(body, dict) else body
        self.history.count(f"{status} {error}")
        outcome = "failed" if status in DEFINITE_FAILURES else "unknown"
        self.history.write(Write(self.key, values, outcome, at_s=now))  # type: ignore[arg-type]
        return False


@dataclass
class Reader(Client):
    def run(self) -> None:
        offset = 0
        session = 0
        leader: NodeProcess | None = None
        while not self.stop_event.is_set():
            if leader is None:
                leader = leader_node(self.cluster, self.topic, self.partition)
                session += 1
            if leader is None:
                time.sleep(RETRY_PAUSE_S)
                continue
            try:
                status, body = _request(
                    "GET",
                    f"{leader.url}/v1/topics/{self.topic}/partitions/{self.partition}/records"
                    f"?offset={offset}&timeout_ms={POLL_WAIT_MS}&max_records={POLL_RECORDS_MAX}",
                )
            except (OSError, ValueError, HTTPException) as e:
                self.history.count(f"read {type(e).__name__}")
                leader = None
                time.sleep(RETRY_PAUSE_S)
                continue
            if status != 200:
                self.history.count(f"read {status}")
                leader = None
                time.sleep(RETRY_PAUSE_S)
                continue
            records = tuple((int(r["offset"]), str(r["value"])) for r in body["records"])
            self.history.poll(
                Poll(
                    self.name,
                    self.key,
                    leader.node_id,
                    offset,
                    records,
                    int(body["high_watermark"]),
                    time.monotonic(),
                    session,
                )
            )
            offset = int(body["next_offset"])


def read_partition(node: NodeProcess, topic: str, partition: int) -> list[tuple[int, str]]:
    """The whole partition as ``node`` (its leader) serves it, from offset 0 to its HW."""
    out: list[tuple[int, str]] = []
    offset = 0
    while True:
        status, body = http(
            "GET",
            f"{node.url}/v1/topics/{topic}/partitions/{partition}/records"
            f"?offset={offset}&max_records=10000",
        )
        assert status == 200, (topic, partition, status, body)
        out += [(int(r["offset"]), str(r["value"])) for r in body["records"]]
        if not body["records"]:
            return out
        offset = int(body["next_offset"])
