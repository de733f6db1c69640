"""Where a produce spends its time on our KAFKA listener, beside our HTTP path, on one cluster.

    .venv/bin/python -m scripts.bench.kafka_path [--rate 1000] [--records 5000] [--size 100]
        [--in-flight 5,1] [--librdkafka] [--e2e] [--profile-dir DIR] [--cache DIR]

Three of our nodes with KAFKA listeners (scripts/bench/ours_kafka_side.py's: replication factor
3, ``min.insync.replicas=2``, topics of 3 partitions). For each value of Kafka's producer
``max.in.flight.requests.per.connection`` (its default is 5), Kafka 4.4.0's ProducerPerformance
sends ``--records`` records of ``--size`` bytes at ``--rate`` records/s (``acks=all``, its
other defaults) to a new topic; then ``kraft-producer-perf-test`` does the same over HTTP. Each
row: the client's latency from send to acknowledgement (p50, p99), and what the three nodes saw
meanwhile (the deltas of their /metrics): produce requests, records per request, and the mean
time a request spent in a node (frame read to answer written; for HTTP, the request's time).
The gap between the client's latency and the node's time is time the request waited outside
the handler: in the client, or in the socket behind the connection's request in flight (the
listener answers one request of a connection at a time, as Kafka's broker does). With
``--librdkafka``, confluent-kafka's producer (librdkafka: ``linger.ms`` 5, ``acks=all``) does
the same at its default in-flight limit (1,000,000 a connection) and at 1.

With ``--e2e``, the harness's end-to-end probes at the same rate and size (KafkaProbe on Kafka's
Java client through the KAFKA listeners, scripts/bench/probe.py over HTTP). With
``--profile-dir``, every node runs under cProfile (``python -m cProfile -o DIR/node<N>.prof``)
and the script prints each node's busiest functions (own time) after the nodes stop. Every
process is started here and stopped by its pid.
"""

from __future__ import annotations

import argparse
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench import kafka_dist, parse  # noqa: E402
from scripts.bench.kafka_side import PERF_TOOL_HEAP  # noqa: E402
from scripts.bench.measure import run_probe  # noqa: E402
from scripts.bench.ours_kafka_side import OursKafkaToolsSide  # noqa: E402
from scripts.node_process import ROOT  # noqa: E402

PARTITIONS = 3
PROFILE_TOP = 15
KAFKA_SUM = "kraft_kafka_request_duration_seconds_sum"
KAFKA_COUNT = "kraft_kafka_request_duration_seconds_count"
HTTP_SUM = "kraft_http_request_duration_seconds_sum"
HTTP_COUNT = "kraft_http_request_duration_seconds_count"
HTTP_PRODUCE = "/v1/topics/{topic}/partitions/{partition}/records"


@dataclass(frozen=True)
class Served:
    """What the nodes' /metrics say about produce requests: their count and total seconds."""

    kafka_requests: float
    kafka_s: float
    http_requests: float
    http_s: float

    def __sub__(self, other: Served) -> Served:
        return Served(
            self.kafka_requests - other.kafka_requests,
            self.kafka_s - other.kafka_s,
            self.http_requests - other.http_requests,
            self.http_s - other.http_s,
        )


def served(side: OursKafkaToolsSide) -> Served:
    totals = [0.0, 0.0, 0.0, 0.0]
    assert side.ours.cluster is not None
    for node in side.ours.cluster.running():
        with urllib.request.urlopen(node.url + "/metrics", timeout=30) as answer:
            text = answer.read().decode()
        produce = {"endpoint": HTTP_PRODUCE, "method": "POST"}
        for i, (name, labels) in enumerate(
            (
                (KAFKA_COUNT, {"api": "produce"}),
                (KAFKA_SUM, {"api": "produce"}),
                (HTTP_COUNT, produce),
                (HTTP_SUM, produce),
            )
        ):
            totals[i] += parse.metric_total(text, name, **labels)
    return Served(*totals)


def row(what: str, result: parse.ProduceResult, requests: float, seconds: float) -> str:
    per_request = result.records / requests if requests else 0.0
    mean_ms = 1000 * seconds / requests if requests else 0.0
    return (
        f"| {what} | {result.p50_ms} | {result.p99_ms} | {requests:,.0f} | {per_request:,.1f} "
        f"| {mean_ms:.1f} |"
    )


def librdkafka(
    bootstrap: str, topic: str, records: int, rate: float, size: int, in_flight: int | None
) -> parse.ProduceResult:
    """confluent-kafka's producer sending ``records`` at ``rate``/s; the latencies from each
    produce() to its delivery report, as ProducerPerformance's figures."""
    from confluent_kafka import Producer  # a test dependency, imported only when asked for

    conf: dict[str, str | int] = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5}
    if in_flight is not None:
        conf["max.in.flight.requests.per.connection"] = in_flight
    producer = Producer(conf)
    latencies: list[float] = []
    failures: list[object] = []

    def reported(sent: float) -> Callable[[object, object], None]:
        def report(error: object, message: object) -> None:
            if error is not None:
                failures.append(error)
            latencies.append(time.monotonic() - sent)

        return report

    value = b"x" * size
    start = time.monotonic()
    for i in range(records):
        due = start + i / rate
        while (wait := due - time.monotonic()) > 0:
            producer.poll(wait)
        producer.produce(topic, value, on_delivery=reported(time.monotonic()))
    left = producer.flush(120)
    if left or failures:
        raise RuntimeError(f"librdkafka: {left} records not delivered, failures {failures[:3]}")
    elapsed = time.monotonic() - start
    latencies.sort()

    def at(rank: float) -> int:
        return int(1000 * latencies[min(int(rank * len(latencies)), len(latencies) - 1)])

    mean_ms = 1000 * sum(latencies) / len(latencies)
    return parse.ProduceResult(
        records, records / elapsed, records * size / elapsed / 2**20, mean_ms,
        1000 * latencies[-1], at(0.5), at(0.95), at(0.99), at(0.999),
    )  # fmt: skip


def start(side: OursKafkaToolsSide, profile_dir: Path | None) -> None:
    """Starts the nodes (under cProfile with ``profile_dir``) and waits until they serve."""
    assert side.ours.cluster is not None
    for node in side.ours.cluster.nodes:
        if profile_dir is None:
            node.start(wait=False)
            continue
        out = profile_dir / f"node{node.node_id}.prof"
        command = [sys.executable, "-m", "cProfile", "-o", str(out)]
        with open(node.log_file, "ab") as log:
            node.process = subprocess.Popen(
                [*command, "-m", "server.main", str(node.properties)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
    for node in side.ours.cluster.nodes:
        node.wait_ready()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench/kafka_path.py", description=__doc__)
    parser.add_argument("--rate", type=float, default=1000.0, help="records/s (1000)")
    parser.add_argument("--records", type=int, default=5000, help="records per run (5000)")
    parser.add_argument("--size", type=int, default=100, help="bytes a record (100)")
    parser.add_argument(
        "--in-flight", default="5,1", help="Kafka producer's max.in.flight values (5,1)"
    )
    parser.add_argument("--librdkafka", action="store_true", help="also confluent-kafka's producer")
    parser.add_argument("--e2e", action="store_true", help="also the end-to-end probes")
    parser.add_argument("--profile-dir", type=Path, help="run the nodes under cProfile")
    parser.add_argument("--cache", type=Path, help="Kafka's jars (vs-kafka's cache)")
    args = parser.parse_args(argv)
    in_flight = [int(v) for v in args.in_flight.split(",") if v.strip()]
    dist = kafka_dist.ensure(args.cache or kafka_dist.default_cache(), Path("/dev/null"))
    if args.profile_dir is not None:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"produce at {args.rate:,.0f} records/s, {args.records:,} records of {args.size} B, "
        f"acks=all, {PARTITIONS} partitions, 3 nodes",
        "",
        "| client | p50 ms | p99 ms | produce requests | records a request | in the node, ms |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="kafka-path-") as directory:
        side = OursKafkaToolsSide(dist, Path(directory))
        side.prepare()
        try:
            start(side, args.profile_dir)
            rate = f"{args.rate:g}"
            for n in in_flight:
                topic = f"kafka-inflight-{n}"
                side.create_topic(topic, PARTITIONS, {})
                before = served(side)
                text = side.run_tool(
                    "org.apache.kafka.tools.ProducerPerformance",
                    "--bootstrap-server", side.bootstrap, "--topic", topic,
                    "--num-records", str(args.records), "--record-size", str(args.size),
                    "--throughput", rate, "--producer-props", "acks=all",
                    f"max.in.flight.requests.per.connection={n}",
                    heap=PERF_TOOL_HEAP,
                )  # fmt: skip
                delta = served(side) - before
                result = parse.producer_performance(text)
                what = f"Kafka's producer, max.in.flight {n}"
                lines.append(row(what, result, delta.kafka_requests, delta.kafka_s))
            for limit in (None, 1) if args.librdkafka else ():
                topic = f"librdkafka-{limit}"
                side.create_topic(topic, PARTITIONS, {})
                before = served(side)
                result = librdkafka(
                    side.bootstrap, topic, args.records, args.rate, args.size, limit
                )
                delta = served(side) - before
                what = f"librdkafka, max.in.flight {'default' if limit is None else limit}"
                lines.append(row(what, result, delta.kafka_requests, delta.kafka_s))
            topic = "ours-http"
            side.ours.create_topic(topic, PARTITIONS, {})
            before = served(side)
            text = side.ours.run_tool(
                "client.tools.producer_perf_test",
                "--bootstrap-server", side.ours.bootstrap, "--topic", topic,
                "--num-records", str(args.records), "--record-size", str(args.size),
                "--throughput", rate, "--producer-props", "acks=all",
            )  # fmt: skip
            delta = served(side) - before
            result = parse.producer_performance(text)
            lines.append(row("ours (HTTP)", result, delta.http_requests, delta.http_s))
            if args.e2e:
                lines += ["", "| end-to-end | p50 ms | p99 ms |", "|---|---|---|"]
                for what, probe in (
                    ("KafkaProbe (Kafka's client, KAFKA listener)", side.probe),
                    ("probe.py (ours, HTTP)", side.ours.probe),
                ):
                    topic = f"e2e-{len(lines)}"
                    side.create_topic(topic, PARTITIONS, {})
                    records = str(max(200, int(args.rate * 5)))
                    out = run_probe(probe("e2e", topic, records, rate, str(args.size)))
                    latency = parse.e2e_latency(out)
                    lines.append(f"| {what} | {latency.p50_ms:.1f} | {latency.p99_ms:.1f} |")
        finally:
            assert side.ours.cluster is not None
            for node in side.ours.cluster.nodes:
                node.stop(signal.SIGTERM, 60)
    print("\n".join(lines))
    if args.profile_dir is not None:
        for prof in sorted(args.profile_dir.glob("node*.prof")):
            print(f"\n== {prof.name}: the busiest functions by own time")
            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(PROFILE_TOP)
    return 0


if __name__ == "__main__":
    sys.exit(main())
