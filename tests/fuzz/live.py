"""The fuzz tier's live cluster and the calls its checks make to it (with the standard
library's client: these requests are meant to be valid)."""

from __future__ import annotations

import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings

from scripts.node_process import Cluster, NodeProcess, http
from tests.fuzz.routes import Context

# A connection with no request is closed after this long (connections.max.idle.ms); short so
# the tier's idle-connection case ends soon.
IDLE_MS = 5000

# A complete request is answered within this: the longest valid wait the fuzz asks for is a
# replica fetch's 5 s; a stalled one is cut by the node's read timeout (2 s) well before.
ANSWER_DEADLINE_S = 15.0


def fuzz(examples: int) -> settings:
    """Hypothesis settings of the tier: reproducible (derandomized, no database), no deadline
    (a request may wait on the cluster), ``examples`` requests."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


@dataclass(repr=False)
class Target:
    cluster: Cluster
    ctx: Context
    # Where each node's log was when the fuzz started: the checks after it read from there.
    log_offsets: dict[int, int]
    # The nodes' TLS (a client context that trusts their CA), or None for plain HTTP.
    tls: ssl.SSLContext | None = None
    watch: FenceWatch | None = field(default=None)

    def __repr__(self) -> str:
        return f"Target({', '.join(n.url for n in self.nodes)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis prints it in a falsifying example: short."""
        printer.text(repr(self))

    @property
    def nodes(self) -> list[NodeProcess]:
        return self.cluster.nodes

    def port(self, index: int) -> int:
        return self.cluster.nodes[index].http_port

    def dead(self) -> list[str]:
        """The nodes whose process has exited, with their exit code and log tail."""
        return [
            f"node {n.node_id} exited with {n.process.poll() if n.process else None}:\n"
            + n.log_tail(30)
            for n in self.nodes
            if n.process is None or n.process.poll() is not None
        ]

    def log_since_start(self, node: NodeProcess) -> str:
        data = node.log_file.read_bytes()[self.log_offsets[node.node_id] :]
        return data.decode(errors="replace")


class FenceWatch:
    """Asks every node for its view of the brokers (``GET /v1/cluster``) every
    ``interval_s`` while the fuzz runs, one thread per node, and keeps what was wrong: a
    broker of the cluster fenced, or a node that did not answer within ``timeout_s`` (its
    event loop starved). A fenced broker stays fenced for at least a heartbeat and a
    metadata write, so a fencing during the run is seen even when it has healed by the end."""

    def __init__(self, urls: list[str], broker_ids: set[int], interval_s: float = 0.2) -> None:
        self.broker_ids = broker_ids
        self.interval_s = interval_s
        # Twice a broker session (1.5 s): a node this silent has its heartbeats stalled too,
        # and a loaded machine's hiccup stays well below it.
        self.timeout_s = 3.0
        self.seen: list[str] = []
        self.polls = 0
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, args=(url,), name=f"watch {url}", daemon=True)
            for url in urls
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _watch(self, url: str) -> None:
        while not self._stop_event.wait(self.interval_s):
            at = time.strftime("%H:%M:%S")
            try:
                status, body = http("GET", f"{url}/v1/cluster", timeout=self.timeout_s)
            except OSError as e:
                problem: str | None = f"{at} {url}: no answer within {self.timeout_s} s ({e!r})"
            else:
                problem = None
                if status != 200 or not isinstance(body, dict):
                    problem = f"{at} {url}: {status} {body}"
                else:
                    fenced = [
                        b["id"]
                        for b in body["brokers"]
                        if b["id"] in self.broker_ids and b["fenced"]
                    ]
                    if fenced:
                        problem = f"{at} {url}: brokers {fenced} fenced"
            with self._lock:
                self.polls += 1
                if problem is not None:
                    self.seen.append(problem)

    def stop(self) -> None:
        self._stop_event.set()
        for thread in self._threads:
            thread.join()


def ok(status: int, body: Any, what: str) -> Any:
    assert 200 <= status < 300, f"{what}: {status} {body}"
    return body


def full_isr(node: NodeProcess, topic: str) -> bool:
    status, body = http("GET", f"{node.url}/v1/topics/{topic}", timeout=5)
    return status == 200 and all(
        p["leader"] is not None and len(p["isr"]) == len(p["replicas"]) for p in body["partitions"]
    )


def produce(
    node: NodeProcess, topic: str, partition: int, records: list[Any], deadline_s: float = 60.0
) -> tuple[int, Any]:
    """Produces to one partition through ``node``, following the 307 to its leader and
    waiting out a leader election (503) or a leader still applying the topic (404) until
    ``deadline_s``."""
    path = f"/v1/topics/{topic}/partitions/{partition}/records"
    url = node.url + path
    deadline = time.monotonic() + deadline_s
    while True:
        status, body = http("POST", url, {"records": records}, timeout=30)
        if time.monotonic() < deadline:
            if status == 307 and isinstance(body, dict) and body.get("leader_url"):
                url = str(body["leader_url"]).rstrip("/") + path
                continue
            # 404: the leader may not have applied a topic just created (Kafka's clients retry
            # UNKNOWN_TOPIC_OR_PARTITION too).
            if status in (503, 404):
                time.sleep(0.2)
                continue
        return status, body


def logged_tracebacks(text: str) -> list[str]:
    """Each log record of ``text`` that holds a traceback, as its first line and the last line
    of its traceback (the exception). A record starts with "[" (the node's log format)."""
    records: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("[") or not records:
            records.append([line])
        else:
            records[-1].append(line)
    found = []
    for record in records:
        if any(re.match(r"\s*Traceback \(most recent call last\)", line) for line in record):
            last = next((line for line in reversed(record) if line.strip()), "")
            found.append(f"{record[0]} ... {last.strip()}")
    return found
