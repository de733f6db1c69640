"""Reading what the measuring tools print, for scripts/bench/vs-kafka: pure (text in, figures
out); a line that is not there raises :class:`ParseError` naming what was expected and quoting
the end of what was found, so a failed run says why.

Both systems' perf tools print Kafka's lines (ours copy them), so one parser reads each:

- ProducerPerformance's closing line: ``N records sent, R records/sec (M MB/sec), A ms avg
  latency, X ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th.``
- ConsumerPerformance's line under its header: ``start.time, end.time, data.consumed.in.MB,
  MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec,
  fetch.nMsg.sec``
- the probes' lines (scripts/bench/probe.py, KafkaProbe.java): ``e2e count=.. p50_ms=..``,
  ``first-ack ms=..``, ``ack <sent ms> <acknowledged ms>``
- kafka-topics --describe (Kafka's TopicCommand and our kraft-topics print the same):
  ``Topic: T\tPartition: 0\tLeader: 2\tReplicas: ...``
- /proc/PID/status: ``VmRSS:\t  123456 kB``
- a node's /metrics (Prometheus' text format): ``name{label="value",...} 1.5``
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class ParseError(Exception):
    """A tool's output lacks the line a figure comes from."""


def _fail(what: str, text: str) -> ParseError:
    tail = "\n".join(text.strip().splitlines()[-5:])
    return ParseError(f"no {what} in the output; its last lines:\n{tail}")


@dataclass(frozen=True)
class ProduceResult:
    records: int
    records_per_s: float
    mb_per_s: float
    avg_latency_ms: float
    max_latency_ms: float
    p50_ms: int
    p95_ms: int
    p99_ms: int
    p999_ms: int


_PRODUCE_TOTAL = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th"
)


def producer_performance(text: str) -> ProduceResult:
    """The figures of ProducerPerformance's (or kraft-producer-perf-test's) closing line."""
    matches = _PRODUCE_TOTAL.findall(text)
    if not matches:
        raise _fail("ProducerPerformance total line", text)
    n, rate, mb, avg, mx, p50, p95, p99, p999 = matches[-1]
    return ProduceResult(
        int(n), float(rate), float(mb), float(avg), float(mx),
        int(p50), int(p95), int(p99), int(p999),
    )  # fmt: skip


@dataclass(frozen=True)
class ConsumeResult:
    mb: float
    mb_per_s: float
    records: int
    records_per_s: float
    rebalance_ms: int
    fetch_ms: int
    fetch_mb_per_s: float
    fetch_records_per_s: float


_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def consumer_performance(text: str) -> ConsumeResult:
    """The figures of ConsumerPerformance's (or kraft-consumer-perf-test's) result line: the
    last line of ten comma-separated fields whose last eight are numbers."""
    for line in reversed(text.splitlines()):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 10 or not all(_NUMBER.fullmatch(f) for f in fields[2:]):
            continue
        mb, mbs, n, ns, reb, fetch, fmbs, fns = fields[2:]
        return ConsumeResult(
            float(mb), float(mbs), int(float(n)), float(ns),
            int(float(reb)), int(float(fetch)), float(fmbs), float(fns),
        )  # fmt: skip
    raise _fail("ConsumerPerformance result line", text)


@dataclass(frozen=True)
class LatencyResult:
    count: int
    expected: int
    rate: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


_E2E = re.compile(
    r"^e2e count=(\d+) of=(\d+) rate=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+) "
    r"p999_ms=([\d.]+) max_ms=([\d.]+)\s*$",
    re.MULTILINE,
)


def e2e_latency(text: str) -> LatencyResult:
    """The probes' ``e2e`` line."""
    matches = _E2E.findall(text)
    if not matches:
        raise _fail("'e2e count=...' line", text)
    count, expected, rate, p50, p99, p999, mx = matches[-1]
    return LatencyResult(
        int(count), int(expected), float(rate), float(p50), float(p99), float(p999), float(mx)
    )


# The first records of a run pay for connections and metadata: left out, as KafkaProbe does.
E2E_WARMUP_RECORDS = 100


def latency_line(latencies_ns: list[int], records: int, rate: float) -> str:
    """The ``e2e`` result line (KafkaProbe.printLatencies' format): percentiles are the sorted
    sample at ``int(rank * n)`` after the warm-up records, in ms."""
    kept = sorted(
        latencies_ns[E2E_WARMUP_RECORDS:]
        if len(latencies_ns) > E2E_WARMUP_RECORDS
        else latencies_ns
    )

    def at(rank: float) -> float:
        return kept[min(int(rank * len(kept)), len(kept) - 1)] / 1e6 if kept else 0.0

    return (
        f"e2e count={len(latencies_ns)} of={records} rate={rate:.0f} p50_ms={at(0.5):.3f} "
        f"p99_ms={at(0.99):.3f} p999_ms={at(0.999):.3f} max_ms={at(1.0):.3f}"
    )


def first_ack_ms(text: str) -> int:
    """The probes' ``first-ack ms=N`` line: N."""
    found = re.findall(r"^first-ack ms=(-?\d+)\s*$", text, re.MULTILINE)
    if not found:
        raise _fail("'first-ack ms=...' line", text)
    return int(found[-1])


def acks(text: str) -> list[tuple[int, int]]:
    """The probes' ``ack <sent ms> <acknowledged ms>`` lines, in order (an unfinished last
    line is left out)."""
    return [(int(s), int(a)) for s, a in re.findall(r"^ack (\d+) (\d+)\n", text, re.MULTILINE)]


def first_ack_sent_after(acked: list[tuple[int, int]], dead_ms: int) -> int | None:
    """When the first record sent at or after ``dead_ms`` (the killed leader was gone) was
    acknowledged, or None. A record sent before it may have been answered by the old leader
    in its last moment, its answer read after the kill: it does not count."""
    return next((a for s, a in acked if s >= dead_ms), None)


def partition_leader(describe: str, partition: int) -> int | None:
    """The leader's node id of ``partition`` in kafka-topics --describe output (None when the
    partition has none: ``Leader: none`` or ``-1``)."""
    for line in describe.splitlines():
        fields = dict(
            (k.strip(), v.strip())
            for k, sep, v in (item.partition(":") for item in line.strip().split("\t"))
            if sep
        )
        if fields.get("Partition") == str(partition) and "Leader" in fields:
            leader = fields["Leader"]
            return int(leader) if leader.lstrip("-").isdigit() and int(leader) >= 0 else None
    return None


def vm_rss_kib(status: str) -> int:
    """VmRSS of a /proc/PID/status text, in KiB."""
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    if found is None:
        raise _fail("VmRSS line", status)
    return int(found.group(1))


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_total(text: str, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` in a Prometheus text exposition whose labels
    include ``labels`` (0 when there is none: a counter not yet touched is absent)."""
    total = 0.0
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found is None or found.group(1) != name:
            continue
        have = dict(_LABEL.findall(found.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(found.group(3))
    return total
