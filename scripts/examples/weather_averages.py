"""The weather pipeline's processor: a consumer-group member that turns readings into each
station's rolling average.

    python scripts/examples/weather_averages.py [--bootstrap-server localhost:9092]
        [--group weather-averager] [--window 5] [--topic weather]
        [--output-topic weather-averages] [--max-records N] [--max-idle-ms MS]
        [--restore-records 1000] [--partitions 3]

Reads ``weather`` as a member of ``--group`` (the project's AsyncConsumer, KIP-848 groups:
start a second one with the same group and the coordinator splits the partitions between
them), keeps each station's last ``--window`` temperatures, and for every reading produces
that station's average, keyed by station, to ``weather-averages``::

    {"station": "stn-2", "avg_temperature_c": 14.12, "readings": 5, "window": 5}

Delivery is at-least-once: after each poll the averages are produced and the member waits
until every one is acknowledged (acks=all) before it commits the offsets past the readings
they came from; offsets are never committed automatically. A member that dies between the
two leaves its last readings uncommitted, and whoever takes their partition averages them
again: an average can appear twice, never not at all. A station's averages keep the order of
its readings (one partition in, one partition out, an idempotent producer).

The windows live in the member's memory. A member given a partition (at its start, or by a
rebalance when another member left or joined) fills them first: it reads the partition's last
``--restore-records`` readings (1000) before the committed offset again, averaging none of
them a second time, then goes on from the committed offset. A station whose last ``--window``
readings lie further back than that starts with a shorter window (``readings`` says how many
its average is over). Kafka Streams keeps such state in a changelog topic instead.

Both topics are created when missing (``--partitions`` each, three replicas on three nodes).
A record of ``weather`` that is not a reading is skipped, with a line on stderr.

Lines on stdout: the member's assignment as it changes (``assigned weather-0, weather-2
(windows filled from weather-0 offsets 0-41)``, ``revoked weather-2``) and one line per poll
(``weather-0 offsets 42-45, weather-2 offsets 0-2: 7 averages written, offsets committed``).
It stops cleanly (the last averages acknowledged, the offsets committed, the group left) on
Ctrl+C or SIGTERM, after ``--max-records`` readings, or when no reading came for
``--max-idle-ms`` (counted from the start too), and says on stderr how many readings it
averaged. Exit codes: 0 done, 1 an error (one line on stderr), 130 Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from client.async_consumer import AsyncConsumer, ConsumerRebalanceListener  # noqa: E402
from client.batches import ConsumerRecord  # noqa: E402
from client.group_member import TopicPartition  # noqa: E402
from client.producer import AsyncProducer, RecordMetadata  # noqa: E402
from scripts.examples.running import run_until_stopped  # noqa: E402
from scripts.examples.topics import ensure_topics  # noqa: E402
from scripts.examples.weather import (  # noqa: E402
    AVERAGES_TOPIC,
    GROUP,
    PARTITIONS,
    READINGS_TOPIC,
    WINDOW,
    NotAReading,
    RollingAverages,
    parse_reading,
    to_json,
)

PROG = "weather_averages"
POLL_MS = 500  # how long one poll waits: also how soon Ctrl+C is noticed
# Readings read again per partition taken over: enough for the windows of the default six
# stations (two a partition) many times over, and read in well under a second.
RESTORE_RECORDS = 1000


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Per-station rolling averages of weather readings."
    )
    parser.add_argument("--bootstrap-server", default="localhost:9092", metavar="HOST:PORT")
    parser.add_argument("--topic", default=READINGS_TOPIC, help="the readings' topic")
    parser.add_argument("--output-topic", default=AVERAGES_TOPIC, help="the averages' topic")
    parser.add_argument("--group", default=GROUP, help=f"the consumer group ({GROUP})")
    parser.add_argument(
        "--window", type=int, default=WINDOW, help=f"readings per average ({WINDOW})"
    )
    parser.add_argument(
        "--max-records", type=int, default=None, metavar="N", help="stop after N readings"
    )
    parser.add_argument(
        "--max-idle-ms",
        type=int,
        default=None,
        metavar="MS",
        help="stop when no reading came for this long",
    )
    parser.add_argument(
        "--restore-records",
        type=int,
        default=RESTORE_RECORDS,
        metavar="N",
        help="readings of a partition read again when it is assigned, to fill its stations' "
        f"windows ({RESTORE_RECORDS})",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=PARTITIONS,
        help=f"each topic's partitions when it is created here ({PARTITIONS})",
    )
    args = parser.parse_args(argv)
    if args.window < 1 or args.partitions < 1:
        parser.error("--window and --partitions must be at least 1")
    if args.restore_records < 0:
        parser.error("--restore-records must not be negative")
    if (args.max_records is not None and args.max_records < 1) or (
        args.max_idle_ms is not None and args.max_idle_ms < 0
    ):
        parser.error("--max-records must be at least 1 and --max-idle-ms not negative")
    return args


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}-{tp.partition}" for tp in partitions) or "nothing"


class Windows(ConsumerRebalanceListener):
    """The member's rolling averages; which partition each station's readings come from, so
    the windows of a partition that leaves are dropped with it; and, for each partition taken
    over, the offset below which its readings are read again only to fill the windows."""

    def __init__(self, window: int, restore_records: int) -> None:
        self.averages = RollingAverages(window)
        self.partition_of: dict[str, TopicPartition] = {}
        self.restore_records = restore_records
        self.replay_until: dict[TopicPartition, int] = {}
        self.consumer: AsyncConsumer | None = None

    async def on_partitions_assigned(self, partitions: list[TopicPartition]) -> None:
        # Called inside poll(), each partition fetched from its committed offset (the
        # earliest when there is none: nothing to fill then): move back to read up to
        # restore_records readings again, averaging none of them a second time.
        assert self.consumer is not None
        committed = await self.consumer.committed(partitions)
        again = []
        for tp in partitions:
            position = committed.get(tp)
            if position is None:
                continue
            start = max(0, position - self.restore_records)
            if start < position:
                await self.consumer.seek(tp, start)
                self.replay_until[tp] = position
                again.append(f"{tp.topic}-{tp.partition} offsets {start}-{position - 1}")
        read_again = f" (windows filled from {', '.join(again)})" if again else ""
        print(f"assigned {_names(partitions)}{read_again}", flush=True)

    def on_partitions_revoked(self, partitions: list[TopicPartition]) -> None:
        # Called after the last poll's averages were acknowledged and committed: this member
        # has finished with these partitions.
        print(f"revoked {_names(partitions)}", flush=True)
        self._drop(partitions)

    def on_partitions_lost(self, partitions: list[TopicPartition]) -> None:
        print(f"lost {_names(partitions)} (fenced by the group)", flush=True)
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        gone = set(partitions)
        stations = [s for s, tp in self.partition_of.items() if tp in gone]
        self.averages.forget(stations)
        for station in stations:
            del self.partition_of[station]
        for tp in gone:
            self.replay_until.pop(tp, None)


def _summary(records: list[ConsumerRecord]) -> str:
    """``weather-0 offsets 0-3, weather-2 offsets 0-2: 7 averages written``."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for r in records:
        first, _ = ranges.get((r.topic, r.partition), (r.offset, r.offset))
        ranges[(r.topic, r.partition)] = (first, r.offset)
    where = ", ".join(
        f"{topic}-{partition} offsets {first}-{last}"
        for (topic, partition), (first, last) in sorted(ranges.items())
    )
    return f"{where}: {len(records)} average{'' if len(records) == 1 else 's'} written"


async def _average(
    args: argparse.Namespace,
    windows: Windows,
    producer: AsyncProducer,
    records: list[ConsumerRecord],
) -> tuple[list[ConsumerRecord], dict[TopicPartition, int]]:
    """Takes one poll's records into the windows and produces an average for each reading
    past its partition's read-again part; returns once all are acknowledged, with the readings
    averaged and the offsets to commit (past them and past the records skipped)."""
    sent: list[asyncio.Future[RecordMetadata]] = []
    averaged: list[ConsumerRecord] = []
    committing: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        again = record.offset < windows.replay_until.get(tp, 0)
        if not again:
            committing[tp] = record.offset + 1
        try:
            reading = parse_reading(record.value, record.key)
        except NotAReading as e:
            if not again:
                print(
                    f"{PROG}: skipping {tp.topic}-{tp.partition} offset {record.offset}: {e}",
                    file=sys.stderr,
                    flush=True,
                )
            continue
        windows.partition_of[reading.station] = tp
        result = windows.averages.add(reading)
        if again:
            continue
        averaged.append(record)
        sent.append(
            await producer.send(
                args.output_topic,
                to_json(result),
                key=reading.station,
                timestamp_ms=record.timestamp if record.timestamp >= 0 else None,
            )
        )
    await asyncio.gather(*sent)
    return averaged, committing


async def average(args: argparse.Namespace, stop: asyncio.Event) -> int:
    """Runs the member until a stop condition; returns how many readings it processed."""
    await ensure_topics(args.bootstrap_server, [args.topic, args.output_topic], args.partitions)
    windows = Windows(args.window, args.restore_records)
    processed = 0
    consumer = AsyncConsumer(
        {
            "bootstrap.servers": args.bootstrap_server,
            "group.id": args.group,
            "enable.auto.commit": "false",  # committed below, once the averages are stored
            "auto.offset.reset": "earliest",  # a new group averages what is there already
        }
    )
    windows.consumer = consumer
    try:
        async with AsyncProducer({"bootstrap.servers": args.bootstrap_server}) as producer:
            await consumer.subscribe([args.topic], windows)
            last_record_s = time.monotonic()
            while not stop.is_set():
                if args.max_records is not None and processed >= args.max_records:
                    break
                wait_ms = POLL_MS
                if args.max_idle_ms is not None:
                    left_ms = int(
                        (last_record_s + args.max_idle_ms / 1000 - time.monotonic()) * 1000
                    )
                    if left_ms <= 0:
                        break
                    wait_ms = min(wait_ms, left_ms)
                left = None if args.max_records is None else args.max_records - processed
                records = await consumer.poll(wait_ms, max_records=left)
                if not records:
                    continue
                last_record_s = time.monotonic()
                averaged, committing = await _average(args, windows, producer, records)
                # At-least-once: the offsets move only once every average is stored (a failed
                # send raised above, before any commit: the readings will be read again).
                if committing:
                    await consumer.commit(committing)
                if averaged:
                    processed += len(averaged)
                    print(f"{_summary(averaged)}, offsets committed", flush=True)
    finally:
        await consumer.close()
    return processed


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    code, count = run_until_stopped(PROG, lambda stop: average(args, stop))
    if count >= 0:
        print(f"Averaged {count} readings", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
