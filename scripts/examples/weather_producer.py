"""The weather pipeline's source: readings of weather stations, keyed by station, into
``weather``.

    python scripts/examples/weather_producer.py [--bootstrap-server localhost:9092]
        [--topic weather] [--stations 6] [--count 20] [--rate 5] [--seed 1] [--partitions 3]

Sends ``--count`` readings (0: until Ctrl+C) at ``--rate`` readings a second (0: no limit but
the producer's buffer) through the project's producer (client/producer.py: acks=all,
idempotent, so a station's readings stay in order in its partition). A reading is a JSON
object, ``{"station", "temperature_c", "humidity", "timestamp"}`` (scripts/examples/
weather.py), keyed by its station, so all of a station's readings land in one partition; the
record's timestamp is the reading's. The same ``--seed`` and ``--stations`` give the same
readings but for their timestamps.

The topic is created when missing (``--partitions``, three replicas on three nodes); an
existing one is used as it is.

Each acknowledged reading is printed on stdout, in the order sent, as the console consumer
prints a record with print.partition, print.offset and print.key (tab-separated)::

    Partition:2  Offset:0  stn-2  {"station":"stn-2","temperature_c":14.3,...}

At the end (the count reached, or Ctrl+C) a line on stderr says how many were sent. Exit
codes: 0 done, 1 an error (one line on stderr), 130 Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from client.producer import AsyncProducer, RecordMetadata  # noqa: E402
from scripts.examples.running import run_until_stopped  # noqa: E402
from scripts.examples.topics import ensure_topics  # noqa: E402
from scripts.examples.weather import (  # noqa: E402
    PARTITIONS,
    READINGS_TOPIC,
    STATIONS,
    Readings,
    to_json,
)

PROG = "weather_producer"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Produce weather readings keyed by station."
    )
    parser.add_argument("--bootstrap-server", default="localhost:9092", metavar="HOST:PORT")
    parser.add_argument("--topic", default=READINGS_TOPIC)
    parser.add_argument(
        "--stations", type=int, default=STATIONS, help=f"how many stations ({STATIONS})"
    )
    parser.add_argument(
        "--count", type=int, default=20, help="readings to send (20; 0: until Ctrl+C)"
    )
    parser.add_argument(
        "--rate", type=float, default=5.0, help="readings a second (5; 0: no limit)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the readings' random seed (1)")
    parser.add_argument(
        "--partitions",
        type=int,
        default=PARTITIONS,
        help=f"the topic's partitions when it is created here ({PARTITIONS})",
    )
    args = parser.parse_args(argv)
    for name in ("stations", "partitions"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.count < 0 or args.rate < 0:
        parser.error("--count and --rate must not be negative")
    return args


def _line(metadata: RecordMetadata, key: str, value: bytes) -> str:
    return f"Partition:{metadata.partition}\tOffset:{metadata.offset}\t{key}\t{value.decode()}"


async def produce(args: argparse.Namespace, stop: asyncio.Event) -> int:
    """Sends the readings until the count or ``stop``; returns how many were acknowledged."""
    await ensure_topics(args.bootstrap_server, [args.topic], args.partitions)
    readings = Readings(args.stations, args.seed)
    # Sent, not yet printed: printed in the order sent, as each is acknowledged.
    pending: deque[tuple[asyncio.Future[RecordMetadata], str, bytes]] = deque()
    acknowledged = 0

    def print_done() -> None:
        nonlocal acknowledged
        while pending and pending[0][0].done():
            future, key, value = pending.popleft()
            print(_line(future.result(), key, value), flush=True)  # raises a failed send
            acknowledged += 1

    async with AsyncProducer({"bootstrap.servers": args.bootstrap_server}) as producer:
        start = time.monotonic()
        sent = 0
        while (args.count == 0 or sent < args.count) and not stop.is_set():
            if args.rate > 0:
                wait_s = start + sent / args.rate - time.monotonic()
                if wait_s > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), wait_s)
                        break
                    except TimeoutError:
                        pass
            now_ms = time.time_ns() // 1_000_000
            reading = readings.next(now_ms)
            key, value = reading["station"], to_json(reading)
            future = await producer.send(args.topic, value, key=key, timestamp_ms=now_ms)
            pending.append((future, key, value))
            sent += 1
            print_done()
        await producer.flush()
        print_done()
    return acknowledged


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    code, count = run_until_stopped(PROG, lambda stop: produce(args, stop))
    if count >= 0:
        print(f"Sent {count} readings of {args.stations} stations to {args.topic}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
