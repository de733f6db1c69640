"""GET /metrics: the node's metrics in Prometheus's text format.

Each node has its own ``CollectorRegistry`` (never prometheus-client's global one: a test may
run several nodes in one process). Two kinds of metric live in it:

- counted at the event, once per request, batch or fsync (never per record): HTTP requests
  and their latency (:class:`RequestMetrics`, fed by ``server/http_server.py``, the one place
  that sees every answer), the Kafka listener's requests, error codes, latency and connections
  (:class:`KafkaRequestMetrics`, fed by ``server/kafka/listener.py``), the fsync latency of
  partition logs (``storage.durable``'s observer), the event-loop lag
  (``server/loop_monitor.py``'s observer);
- computed when scraped: gauges of partitions, quorum and groups read from the node's state,
  and the counters the node keeps as plain integers (per-topic traffic, ISR changes, leader
  elections, quorum leader changes), so the produce path adds to an integer instead of taking
  a Prometheus child's lock. :func:`gather` copies what they need from the node on the event
  loop (copies only, no per-series work), and :func:`families` turns those
  :class:`NodeFacts` into metric families without looking at the node: the pure half,
  unit-tested over made-up facts. The families and their text are made in a worker thread
  (:meth:`NodeMetrics.exposition`): a scrape's cost grows with the series (a group-lag series
  per committed offset: 100,000 of them took a second), and the event loop must not wait for it.

Labels are bounded by what the cluster holds, never by what a stranger sends: the HTTP
``endpoint`` is the route's template (``/v1/topics/{topic}``), and every path no route matches
is ``unmatched``; a method the API does not serve is ``other``. A request signed by another node
of the cluster (a forwarded admin request, a replica fetch, a heartbeat) is labelled
``peer="true"``: a forwarded request is counted on the node the client called and again on the
one that did the work, and ``peer="false"`` counts each client request once.

Where Kafka has the metric, the meaning is Kafka's: under-replicated and under-min-ISR
partitions and ISR shrinks/expands are counted by each partition's leader; offline partitions
(no leader) only by the active controller (0 elsewhere), so ``sum()`` over nodes is right.
Partition leader elections are counted by the node that becomes the leader, when it applies
the change; quorum leader changes by each node, once per Raft term in which it learned of a
leader. The log cleaner's families (``kraft_log_cleaner_*``) are Kafka's LogCleaner and
LogCleanerManager gauges, as ratios and seconds where Kafka has percents and milliseconds, read
from what ``server/log_cleaner.py`` keeps; a node whose cleaner does not run has none of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import prometheus_client
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.registry import Collector

from server import limits
from server.clock import SYSTEM_CLOCK
from server.http_util import FOLLOW_VALUES
from server.topic_metrics import TopicTraffic
from storage import durable

if TYPE_CHECKING:
    from server.log_cleaner import LogCleaner
    from server.node import Node

# Each counter's ``_created`` twin (its start time as a second series) doubles the output
# and tells nothing a restart's reset does not: off, for the node's own registries too.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# Request latency: 0.5 ms (a metadata read) to 10 s (a produce waiting for acks=all).
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# fsync: 50 us (a fast SSD's cache) to 5 s (a disk in trouble).
FSYNC_BUCKETS_S = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 5.0,
)  # fmt: skip
# Event-loop lag, measured every LOOP_LAG_INTERVAL_S: 1 ms (a quiet loop) to 5 s.
LOOP_LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

UNMATCHED = "unmatched"  # the endpoint label of every path no route matches
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})
# The routes whose requests may wait for records: their latency is labelled long_poll="true",
# so the waiting does not read as slowness. A client's fetch waits when it asks to (GET with
# timeout_ms above 0, or follow); a follower's replica fetch waits up to the replica fetch wait
# whenever the leader has nothing new, so every one counts as a long poll.
FETCH_ROUTE = "/v1/topics/{topic}/partitions/{partition}/records"
REPLICA_FETCH_ROUTE = "/v1/internal/replica-fetch"


# -- labels --------------------------------------------------------------------------------------


def method_label(method: str) -> str:
    """The request's method, or ``other`` for one the API does not serve."""
    return method if method in _METHODS else "other"


def endpoint_label(request: web.BaseRequest) -> str:
    """The template of the route the request matched, or :data:`UNMATCHED` (no route, a
    method the route does not serve, or refused before routing)."""
    match_info = getattr(request, "_match_info", None)  # set by the app's router
    if match_info is None or match_info.http_exception is not None:
        return UNMATCHED
    resource = match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


def is_long_poll(request: web.BaseRequest, endpoint: str) -> bool:
    """Whether the request may have waited for records: a replica fetch, or a client's fetch
    (GET; a produce to the same route never waits for records) with ``timeout_ms`` above 0 or
    ``follow`` on, read as the fetch handler reads them."""
    if endpoint == REPLICA_FETCH_ROUTE:
        return True
    if endpoint != FETCH_ROUTE or request.method != "GET":
        return False
    query = request.query
    if query.get("follow", "").lower() in FOLLOW_VALUES:
        return True
    timeout_ms = query.get("timeout_ms", "")
    # Anything but a plain positive number is refused by the handler: not a wait.
    return timeout_ms.isascii() and timeout_ms.isdigit() and int(timeout_ms) > 0


# -- counted at the event ------------------------------------------------------------------------


def _bool_label(value: bool) -> str:
    return "true" if value else "false"


class RequestMetrics:
    """Requests answered and their latency, by method, endpoint (route template), status and
    caller (a client, or a peer node: module doc).

    The labelled children are cached by their key: a request costs one dict lookup, one
    increment and one observation."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "kraft_http_requests",
            "HTTP requests answered, by method, endpoint (the route's template; 'unmatched' "
            "for a path no route serves), status code, and peer ('true' for a call signed by "
            "another node of the cluster, a forwarded request among them).",
            ["method", "endpoint", "code", "peer"],
            registry=registry,
        )
        self._latency = Histogram(
            "kraft_http_request_duration_seconds",
            "Time from a request's headers to its answer, by method, endpoint and peer; "
            "long_poll='true' for requests that may wait for records (a fetch with timeout_ms "
            "or follow, a replica fetch).",
            ["method", "endpoint", "long_poll", "peer"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self._children: dict[tuple[str, str, int, bool, bool], tuple[Counter, Histogram]] = {}

    def observe(
        self,
        method: str,
        endpoint: str,
        status: int,
        long_poll: bool,
        seconds: float | None,
        peer: bool = False,
    ) -> None:
        """One answer; ``seconds`` None for a request refused before it was read whole."""
        key = (method, endpoint, status, long_poll, peer)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.labels(method, endpoint, str(status), _bool_label(peer)),
                self._latency.labels(method, endpoint, _bool_label(long_poll), _bool_label(peer)),
            )
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)


REQUEST_METRICS = web.AppKey("request_metrics", RequestMetrics)


class KafkaRequestMetrics:
    """The Kafka listener's requests (Kafka's RequestMetrics: RequestsPerSec, ErrorsPerSec,
    TotalTimeMs), by API (Kafka's name, snake case; ``unknown`` for a key Kafka lacks) and
    version, the errors their responses carry by Kafka's error name, and the connections
    closed for what the peer sent, by a reason from a fixed set (a frame too large, one that
    does not parse, an API or version not served)."""

    CLOSE_REASONS = ("too_large", "garbage", "unsupported", "timeout")

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "kraft_kafka_requests",
            "Requests answered on the Kafka listener, by API and version (a Produce with "
            "acks=0 counts though it gets no answer).",
            ["api", "version"],
            registry=registry,
        )
        self._errors = Counter(
            "kraft_kafka_request_errors",
            "Error codes in the Kafka listener's answers, by API and Kafka's error name (one "
            "per error_code field that is not NONE: a Fetch of three partitions that are "
            "not led here counts three NOT_LEADER_OR_FOLLOWER).",
            ["api", "error"],
            registry=registry,
        )
        self._latency = Histogram(
            "kraft_kafka_request_duration_seconds",
            "Time from a Kafka request's frame read to its answer written, by API; "
            "long_poll='true' for a Fetch that may wait for records (max_wait_ms above 0).",
            ["api", "long_poll"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self._closed = Counter(
            "kraft_kafka_connections_closed",
            "Kafka listener connections closed for what the peer sent or did not send: "
            "too_large (above socket.request.max.bytes), garbage (a frame that does not "
            "parse), unsupported (an API or version not served), timeout (a frame cut off).",
            ["reason"],
            registry=registry,
        )
        self._authentications = Counter(
            "kraft_kafka_authentications",
            "SASL authentications on the Kafka listener, by mechanism (PLAIN, SCRAM-SHA-256; "
            "none for a handshake refused before one was chosen) and result (success, "
            "failure).",
            ["mechanism", "result"],
            registry=registry,
        )
        self._connections = prometheus_client.Gauge(
            "kraft_kafka_connections",
            "Open connections on the Kafka listener.",
            registry=registry,
        )

    def observe(
        self,
        api: str,
        version: int,
        seconds: float,
        long_poll: bool,
        errors: dict[str, int],
    ) -> None:
        """One request answered (or taken, for acks=0), with its response's error counts."""
        self._requests.labels(api, str(version)).inc()
        self._latency.labels(api, _bool_label(long_poll)).observe(seconds)
        for name, count in errors.items():
            if name != "none":
                self._errors.labels(api, name.upper()).inc(count)

    def closed(self, reason: str) -> None:
        assert reason in self.CLOSE_REASONS, reason
        self._closed.labels(reason).inc()

    def authenticated(self, mechanism: str, ok: bool) -> None:
        """A SASL authentication that succeeded or was refused."""
        self._authentications.labels(mechanism, "success" if ok else "failure").inc()

    def connection_opened(self) -> None:
        self._connections.inc()

    def connection_ended(self) -> None:
        self._connections.dec()


# -- computed when scraped -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaFacts:
    """One open replica on this node, as /metrics reads it."""

    topic: str
    partition: int
    leader: bool
    replicas: int
    isr: int
    min_isr: int
    log_end_offset: int
    leader_log_end_offset: int  # as a follower: the leader's, last heard (-1: not yet)


@dataclass(frozen=True)
class CleanerSlotFacts:
    """One cleaner thread's last finished clean (all 0 before its first) and the largest
    ``max.compaction.lag.ms`` delay its last pick saw."""

    bytes_read: int = 0  # the copy pass's (Kafka's bytesRead; the map's pass not counted)
    bytes_written: int = 0
    elapsed_s: float = 0.0
    buffer_utilization: float = 0.0  # the offset map's fill at the end, 0 to 1
    compaction_delay_ms: int = 0


@dataclass(frozen=True)
class CleanerFacts:
    """The log cleaner's state, as /metrics reads it."""

    slots: tuple[CleanerSlotFacts, ...] = ()
    max_dirty_ratio: float = 0.0  # of the logs measured by the last pick
    uncleanable_partitions: int = 0
    uncleanable_bytes: int = 0
    since_last_run_s: float = 0.0
    cleans: int = 0
    bytes_read: int = 0  # both passes, over every finished clean
    bytes_written: int = 0


# (group, topic, partition, committed offset): a committed offset of a group this node
# coordinates, as GroupRuntime.committed_offsets yields it.
CommittedOffset = tuple[str, str, int, int]


@dataclass
class NodeFacts:
    """Everything the scrape-time metrics are computed from."""

    replicas: list[ReplicaFacts] = field(default_factory=list)
    offline_partitions: int = 0  # partitions without a leader (the active controller's view)
    quorum_leader: bool = False
    quorum_term: int = 0
    applied_index: int = -1
    quorum_leader_changes: int = 0
    isr_shrinks: int = 0
    isr_expands: int = 0
    leader_elections: int = 0
    committed_offsets: list[CommittedOffset] = field(default_factory=list)
    # The high watermark of each partition with a replica open here, by (topic, partition).
    high_watermarks: dict[tuple[str, int], int] = field(default_factory=dict)
    traffic: dict[str, TopicTraffic] = field(default_factory=dict)
    loop_lag_max_s: float = 0.0
    cleaner: CleanerFacts | None = None  # None: the node runs no cleaner thread
    # Replication throttles, by side ("leader", "follower"): what each quota counted.
    throttles: list[ThrottleFacts] = field(default_factory=list)


@dataclass(frozen=True)
class ThrottleFacts:
    """One side's replication quota as /metrics reads it (server/replication_quota.py)."""

    side: str  # leader | follower
    bytes_total: int  # throttled bytes counted since the node started
    byte_rate: float  # the measured rate over the quota's window, bytes/s
    bound: int  # the throttle rate in force, bytes/s (Long.MAX_VALUE: none)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def families(facts: NodeFacts) -> list[Metric]:
    """The scrape-time metric families of ``facts`` (pure)."""
    led = [r for r in facts.replicas if r.leader]
    out: list[Metric] = [
        _gauge(
            "kraft_partition_replicas", "Partition replicas open on this node.", len(facts.replicas)
        ),
        _gauge("kraft_partition_leaders", "Partitions this node leads.", len(led)),
        _gauge(
            "kraft_partitions_under_replicated",
            "Partitions this node leads whose ISR is smaller than their replica set "
            "(Kafka's UnderReplicatedPartitions).",
            sum(r.isr < r.replicas for r in led),
        ),
        _gauge(
            "kraft_partitions_under_min_isr",
            "Partitions this node leads whose ISR is smaller than min.insync.replicas: "
            "acks=all produces to them fail (Kafka's UnderMinIsrPartitionCount).",
            sum(r.isr < r.min_isr for r in led),
        ),
        _gauge(
            "kraft_partitions_offline",
            "Partitions with no leader, counted by the active controller only (0 on the other "
            "nodes; Kafka's OfflinePartitionsCount).",
            facts.offline_partitions if facts.quorum_leader else 0,
        ),
        _counter(
            "kraft_isr_shrinks",
            "ISR shrinks of partitions this node leads, as the metadata applied them.",
            facts.isr_shrinks,
        ),
        _counter(
            "kraft_isr_expands",
            "ISR expansions of partitions this node leads, as the metadata applied them.",
            facts.isr_expands,
        ),
        _counter(
            "kraft_leader_elections",
            "Partition leaderships this node took (a new leader epoch naming it); summed over "
            "the nodes, the cluster's leader elections.",
            facts.leader_elections,
        ),
        _gauge(
            "kraft_quorum_leader",
            "1 if this node leads the metadata quorum (it is the active controller), else 0.",
            int(facts.quorum_leader),
        ),
        _gauge(
            "kraft_quorum_term",
            "The metadata quorum's current Raft term on this node.",
            facts.quorum_term,
        ),
        _gauge(
            "kraft_quorum_applied_index",
            "The index of the last metadata entry this node applied.",
            facts.applied_index,
        ),
        _counter(
            "kraft_quorum_leader_changes",
            "Raft terms in which this node learned of a new metadata quorum leader (the first, "
            "at start, counts).",
            facts.quorum_leader_changes,
        ),
        _gauge(
            "kraft_event_loop_lag_max_seconds",
            "The longest the node's event loop was late since the node started.",
            facts.loop_lag_max_s,
        ),
    ]
    lag = GaugeMetricFamily(
        "kraft_follower_lag_records",
        "For each partition this node follows: the leader's log end offset (as of the last "
        "fetch answer) minus this replica's log end offset.",
        labels=["topic", "partition"],
    )
    worst = 0
    for r in facts.replicas:
        if not r.leader and r.leader_log_end_offset >= 0:
            behind = max(r.leader_log_end_offset - r.log_end_offset, 0)
            worst = max(worst, behind)
            lag.add_metric([r.topic, str(r.partition)], behind)
    out += [
        lag,
        _gauge(
            "kraft_follower_lag_max_records",
            "The largest kraft_follower_lag_records of this node (0 when it follows nothing).",
            worst,
        ),
    ]
    group_lag = GaugeMetricFamily(
        "kraft_consumer_group_lag_records",
        "For each committed offset of the groups this node coordinates: the partition's high "
        "watermark (as this node's replica knows it) minus the committed offset. Only for "
        "partitions with a replica on the coordinator: a group's other partitions have no "
        "series here.",
        labels=["group", "topic", "partition"],
    )
    high_watermarks = facts.high_watermarks
    for group, topic, partition, committed in facts.committed_offsets:
        high_watermark = high_watermarks.get((topic, partition))
        if high_watermark is not None:
            group_lag.add_metric([group, topic, str(partition)], max(high_watermark - committed, 0))
    out.append(group_lag)
    not_replication = "; replication is not counted."
    traffic = [
        ("bytes_in", "Bytes appended by this node as leader (producers, group coordinator)"),
        ("records_in", "Records appended by this node as leader"),
        ("bytes_out", "Bytes of fetch answers to clients (JSON or record batches)"),
        ("records_out", "Records in fetch answers to clients"),
    ]
    for attribute, documentation in traffic:
        family = CounterMetricFamily(
            f"kraft_topic_{attribute}",
            f"{documentation}, by topic{not_replication}",
            labels=["topic"],
        )
        for topic, counts in sorted(facts.traffic.items()):
            family.add_metric([topic], getattr(counts, attribute))
        out.append(family)
    out += throttle_families(facts.throttles)
    if facts.cleaner is not None:
        out += cleaner_families(facts.cleaner)
    return out


def throttle_families(throttles: list[ThrottleFacts]) -> list[Metric]:
    """Kafka's LeaderReplication / FollowerReplication quota metrics, labelled by side."""
    counted = CounterMetricFamily(
        "kraft_replication_throttled_bytes",
        "Bytes of replication-throttled partitions (the topics' leader/follower."
        "replication.throttled.replicas) sent as leader or received as follower, in-sync "
        "replicas' traffic included, as Kafka counts them.",
        labels=["side"],
    )
    rate = GaugeMetricFamily(
        "kraft_replication_throttled_byte_rate",
        "The rate of those bytes over the quota's window (11 s), bytes per second: what the "
        "throttle compares with its bound (Kafka's byte-rate of LeaderReplication and "
        "FollowerReplication).",
        labels=["side"],
    )
    bound = GaugeMetricFamily(
        "kraft_replication_throttle_rate_bytes_per_second",
        "The throttle in force on this broker (leader/follower.replication.throttled.rate); "
        "9223372036854775807 when none.",
        labels=["side"],
    )
    for t in throttles:
        counted.add_metric([t.side], t.bytes_total)
        rate.add_metric([t.side], t.byte_rate)
        bound.add_metric([t.side], t.bound)
    return [counted, rate, bound]


def cleaner_families(facts: CleanerFacts) -> list[Metric]:
    """The log cleaner's families (pure): Kafka's gauges, each computed as Kafka computes it
    over its cleaner threads' last cleans (max over threads; the recopy ratio over their sums),
    as a ratio or in seconds, and our counters."""
    slots = facts.slots
    read = sum(s.bytes_read for s in slots)
    written = sum(s.bytes_written for s in slots)
    return [
        _gauge(
            "kraft_log_cleaner_buffer_utilization_max_ratio",
            "The largest share of its offset map a cleaner thread's last clean filled, 0 to 1 "
            "(Kafka's max-buffer-utilization-percent / 100).",
            max((s.buffer_utilization for s in slots), default=0.0),
        ),
        _gauge(
            "kraft_log_cleaner_recopy_ratio",
            "Bytes written over bytes read by the cleaner threads' last cleans: the share of "
            "a cleaned log that was kept (Kafka's cleaner-recopy-percent / 100).",
            written / max(read, 1),
        ),
        _gauge(
            "kraft_log_cleaner_clean_time_max_seconds",
            "The longest of the cleaner threads' last cleans (Kafka's max-clean-time-secs).",
            max((s.elapsed_s for s in slots), default=0.0),
        ),
        _gauge(
            "kraft_log_cleaner_compaction_delay_max_seconds",
            "How long past its max.compaction.lag.ms the most overdue compacted log was, as "
            "the cleaner threads' last picks measured it (Kafka's max-compaction-delay-secs).",
            max((s.compaction_delay_ms for s in slots), default=0) / 1000,
        ),
        _gauge(
            "kraft_log_cleaner_dirty_max_ratio",
            "The largest dirty ratio of the compacted logs the cleaner last measured, cleanable "
            "or not: bytes written since a log's last clean over its bytes up to where cleaning "
            "stops, 0 to 1 (Kafka's max-dirty-percent / 100).",
            facts.max_dirty_ratio,
        ),
        _gauge(
            "kraft_log_cleaner_uncleanable_partitions",
            "Compacted partitions the cleaner gave up on (a batch it cannot read) until the "
            "node restarts (Kafka's uncleanable-partitions-count).",
            facts.uncleanable_partitions,
        ),
        _gauge(
            "kraft_log_cleaner_uncleanable_bytes",
            "The bytes the cleaner would clean now in the partitions it gave up on (Kafka's "
            "uncleanable-bytes).",
            facts.uncleanable_bytes,
        ),
        _gauge(
            "kraft_log_cleaner_time_since_last_run_seconds",
            "Time since a cleaner thread last looked for a log to clean (Kafka's "
            "time-since-last-run-ms / 1000): it grows while every thread is busy cleaning.",
            facts.since_last_run_s,
        ),
        _counter(
            "kraft_log_cleaner_cleans",
            "Cleans of a compacted log finished (given up ones not counted).",
            facts.cleans,
        ),
        _counter(
            "kraft_log_cleaner_bytes_read",
            "Bytes of log the finished cleans read: building the offset map and copying.",
            facts.bytes_read,
        ),
        _counter(
            "kraft_log_cleaner_bytes_written",
            "Bytes of cleaned segments the finished cleans wrote.",
            facts.bytes_written,
        ),
    ]


def gather_cleaner(cleaner: LogCleaner) -> CleanerFacts | None:
    """The cleaner's state for a scrape, on the event loop (None when it does not run)."""
    if not cleaner.runs:
        return None
    slots = []
    for stats, delay_ms in zip(cleaner.last_stats, cleaner.last_compaction_delay_ms, strict=True):
        if stats is None:
            slots.append(CleanerSlotFacts(compaction_delay_ms=delay_ms))
        else:
            slots.append(
                CleanerSlotFacts(
                    stats.bytes_read,
                    stats.bytes_written,
                    stats.elapsed_s,
                    stats.buffer_utilization,
                    delay_ms,
                )
            )
    return CleanerFacts(
        slots=tuple(slots),
        max_dirty_ratio=cleaner.max_dirty_ratio,
        uncleanable_partitions=len(cleaner.uncleanable),
        uncleanable_bytes=cleaner.uncleanable_bytes(),
        since_last_run_s=cleaner.since_last_run_ms() / 1000,
        cleans=cleaner.cleans,
        bytes_read=cleaner.bytes_read,
        bytes_written=cleaner.bytes_written,
    )


def gather(node: Node) -> NodeFacts:
    """The node's state as /metrics reads it, copied on the event loop when scraped (the
    families are made from the copies in another thread: nothing here may be shared)."""
    rm = node.replica_manager
    open_replicas = [p for p in list(rm.logs.partitions.values()) if not p.closed]
    replicas = [
        ReplicaFacts(
            p.topic,
            p.index,
            p.is_leader,
            len(p.state.replicas),
            len(p.state.isr),
            p.min_insync_replicas,
            p.log.log_end_offset,
            p.leader_log_end_offset,
        )
        for p in open_replicas
    ]
    state = node.quorum.snapshot_state()
    quorum_leader = node.quorum.is_leader()
    offline = 0
    if quorum_leader:
        offline = sum(p.leader < 0 for t in state.topics.values() for p in t.partitions.values())
    # A deleted topic's counters go with it (a topic made again under its name starts at 0,
    # which Prometheus reads as a counter reset).
    rm.traffic.keep_only(state.topics)
    monitor = node.loop_monitor
    now_ms = int(SYSTEM_CLOCK.monotonic_s() * 1000)  # the quotas' clock (replication, fetcher)
    return NodeFacts(
        replicas=replicas,
        offline_partitions=offline,
        quorum_leader=quorum_leader,
        quorum_term=node.quorum.current_term(),
        applied_index=state.applied_index,
        quorum_leader_changes=node.quorum.leader_changes,
        isr_shrinks=rm.isr_shrinks,
        isr_expands=rm.isr_expands,
        leader_elections=rm.leader_elections,
        # Tuples, copied by list(): the one step per committed offset done on the loop.
        committed_offsets=list(node.groups.committed_offsets()),
        high_watermarks={(p.topic, p.index): p.high_watermark for p in open_replicas},
        traffic={topic: counts.copy() for topic, counts in rm.traffic.topics.items()},
        loop_lag_max_s=0.0 if monitor is None else monitor.max_lag_ms / 1000,
        cleaner=gather_cleaner(rm.logs.cleaner),
        throttles=[
            ThrottleFacts(side, q.bytes_total, q.rate(now_ms), q.bound)
            for side, q in (("leader", rm.quotas.leader), ("follower", rm.quotas.follower))
        ],
    )


class Scrape(Collector):
    """One scrape: the registry's metrics counted at the event, then the families of facts
    gathered for this scrape (never shared with another: scrapes may overlap)."""

    def __init__(self, registry: CollectorRegistry, facts: NodeFacts) -> None:
        self._registry = registry
        self._facts = facts

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        yield from families(self._facts)


Encoder = Callable[[Collector], bytes]


def encoder_for(accept: str | None) -> tuple[Encoder, str]:
    """The encoder and content type ``accept`` asks for: OpenMetrics, or Prometheus's text
    format (also for any header prometheus-client cannot read, such as a version that is not
    a number, where it raises)."""
    try:
        return choose_encoder(accept or "")
    except (TypeError, ValueError):
        return generate_latest, CONTENT_TYPE_PLAIN_0_0_4


class NodeMetrics:
    """One node's registry (the request metrics, the fsync and event-loop histograms) and its
    scrape (the registry with the node's state, module doc)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = RequestMetrics(self.registry)
        self.kafka = KafkaRequestMetrics(self.registry)
        self.fsync = Histogram(
            "kraft_log_fsync_duration_seconds",
            "Time of each fsync of a partition log's files (segments, indexes, directories) "
            "by the group commit and the followers' flushes.",
            buckets=FSYNC_BUCKETS_S,
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "kraft_event_loop_lag_seconds",
            f"How late the event loop woke a task that slept (measured every "
            f"{limits.LOOP_LAG_INTERVAL_S:g} s): the longest a callback held the loop then.",
            buckets=LOOP_LAG_BUCKETS_S,
            registry=self.registry,
        )

    def install(self) -> None:
        """Starts the observers that live outside the node's objects: the fsync timing of
        ``storage.durable`` (process-wide: the last node started in a process has it)."""
        durable.fsync_observer = self.fsync.observe

    def uninstall(self) -> None:
        if durable.fsync_observer == self.fsync.observe:
            durable.fsync_observer = None

    async def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The node's metrics in the format ``accept`` asks for (:func:`encoder_for`), and its
        content type. The node's state is copied here, on the event loop; the families and
        their text are made in a worker thread."""
        encoder, content_type = encoder_for(accept)
        scrape = Scrape(self.registry, gather(self._node))
        return await asyncio.to_thread(encoder, scrape), content_type
