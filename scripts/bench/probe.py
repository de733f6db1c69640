"""Our side of scripts/bench/vs-kafka's probes, on our Python client (client.producer,
client.async_consumer): the same three measurements as KafkaProbe.java makes of Kafka, printing
the same lines (parsed by scripts/bench/parse.py).

    python -m scripts.bench.probe e2e BOOTSTRAP TOPIC RECORDS RATE SIZE
        a producer process sends RECORDS records of SIZE bytes at RATE records/s, each value
        starting with its send time (wall clock, ns, big-endian); this process consumes them
        (every partition assigned, from the end) and prints
        "e2e count=N of=M rate=R p50_ms=.. p99_ms=.. p999_ms=.. max_ms=.."
    python -m scripts.bench.probe first-ack BOOTSTRAP TOPIC START_MS
        sends one record (acks=all) until one is acknowledged, then prints
        "first-ack ms=<ack time - START_MS>" (START_MS: when the nodes were launched)
    python -m scripts.bench.probe acks BOOTSTRAP TOPIC SECONDS [trace]
        sends to partition 0 one record at a time (acks=all, each waiting for its ack) for
        SECONDS and prints "ack <sent ms> <acknowledged ms>" (wall clock) per acknowledged
        record, flushed at once; with ``trace``, the client's debug lines (every attempt, its
        node, the answer, each metadata read) go to stderr as "trace <ms> <line>"
        (scripts/bench_failover.py reads them into its timelines)

The producer of ``e2e`` runs in a process of its own (``e2e-send``), as Kafka's runs on a
thread of its own in the JVM: one Python process would make the consumer wait for the
producer's turn on the event loop, which is not what end-to-end latency means.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import subprocess
import sys
import time

from client.async_consumer import AsyncConsumer
from client.producer import AsyncProducer
from scripts.bench.parse import latency_line

# The consumer gives up after this long without a record (a producer that died).
E2E_QUIET_S = 30.0
SEND_TIME = struct.Struct(">q")  # the value's first 8 bytes: send time, ns since the epoch


async def e2e_send(bootstrap: str, topic: str, records: int, rate: float, size: int) -> None:
    padding = b"x" * max(size - SEND_TIME.size, 0)
    async with AsyncProducer({"bootstrap.servers": bootstrap, "acks": "all"}) as producer:
        start = time.monotonic()
        for i in range(records):
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await producer.send(topic, SEND_TIME.pack(time.time_ns()) + padding)
        await producer.flush()


async def e2e(bootstrap: str, topic: str, records: int, rate: float, size: int) -> str:
    consumer = AsyncConsumer({"bootstrap.servers": bootstrap, "enable.auto.commit": "false"})
    try:
        partitions = [(topic, p) for p in await consumer.partitions_for_topic(topic)]
        await consumer.assign(partitions)
        await consumer.seek_to_end(partitions)
        for tp in partitions:
            await consumer.position(tp)  # resolve the end now, before anything is sent
        sender = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scripts.bench.probe",
                "e2e-send",
                bootstrap,
                topic,
                str(records),
                str(rate),
                str(size),
            ]
        )
        latencies: list[int] = []
        quiet_since = time.monotonic()
        try:
            while len(latencies) < records and time.monotonic() - quiet_since < E2E_QUIET_S:
                batch = await consumer.poll(100)
                now = time.time_ns()
                for record in batch:
                    if len(latencies) < records and record.value is not None:
                        latencies.append(now - SEND_TIME.unpack_from(record.value)[0])
                    quiet_since = time.monotonic()
        finally:
            try:
                sender.wait(E2E_QUIET_S)
            except subprocess.TimeoutExpired:
                sender.kill()
                sender.wait()
        return latency_line(latencies, records, rate)
    finally:
        await consumer.close()


async def first_ack(bootstrap: str, topic: str, start_ms: int) -> str:
    props = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "max.block.ms": "2000",
        "delivery.timeout.ms": "3000",
        "request.timeout.ms": "2000",
        "retry.backoff.ms": "50",
        "linger.ms": "0",
    }
    while True:
        try:
            async with AsyncProducer(props) as producer:
                await producer.send_and_wait(topic, b"first")
            return f"first-ack ms={int(time.time() * 1000) - start_ms}"
        except Exception:  # noqa: BLE001  (not up yet: any error means try again)
            await asyncio.sleep(0.05)


async def acks(bootstrap: str, topic: str, seconds: float) -> None:
    props = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "delivery.timeout.ms": "120000",
        "linger.ms": "0",
    }
    async with AsyncProducer(props) as producer:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sent_ms = int(time.time() * 1000)
            try:
                await producer.send_and_wait(topic, b"probe", partition=0)
            except Exception:  # noqa: BLE001  (a failed send during the failover: go on)
                await asyncio.sleep(0.01)
                continue
            print(f"ack {sent_ms} {int(time.time() * 1000)}", flush=True)


class _TraceFormat(logging.Formatter):
    """One line per client debug record: "trace <wall clock ms> <logger> <message>"."""

    def format(self, record: logging.LogRecord) -> str:
        return f"trace {record.created * 1000:.0f} {record.name} {record.getMessage()}"


def trace_client() -> None:
    """Sends the client's debug lines (client.*) to stderr, one "trace" line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TraceFormat())
    client_log = logging.getLogger("client")
    client_log.addHandler(handler)
    client_log.setLevel(logging.DEBUG)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    mode, bootstrap, topic = args[0], args[1], args[2]
    if mode == "e2e":
        print(asyncio.run(e2e(bootstrap, topic, int(args[3]), float(args[4]), int(args[5]))))
    elif mode == "e2e-send":
        asyncio.run(e2e_send(bootstrap, topic, int(args[3]), float(args[4]), int(args[5])))
    elif mode == "first-ack":
        print(asyncio.run(first_ack(bootstrap, topic, int(args[3]))), flush=True)
    elif mode == "acks":
        if args[4:] == ["trace"]:
            trace_client()
        asyncio.run(acks(bootstrap, topic, float(args[3])))
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
