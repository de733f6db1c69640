"""kraft-producer-perf-test: Kafka's kafka-producer-perf-test.sh against our cluster's HTTP API.

Produces ``--num-records`` records of ``--record-size`` bytes (one random payload of printable
letters, reused for every record, as Kafka's ProducerPerformance does; or payloads picked at
random from ``--payload-file``) to the topic's partitions in turn, at most ``--throughput``
records a second (-1: no limit), and prints Kafka's lines: every ~5 s a window line, and at the
end the total line with the latency percentiles.

How records travel (a small model of Kafka's producer):

- Each record gets its send time when it is created and joins its partition's accumulator.
- A partition's accumulated records leave as one request (``POST .../partitions/P/records``,
  straight to the leader, see :mod:`client.tools.perf_http`) when ``batch.size`` records are
  there (here a count of records, not bytes), or when the oldest has waited ``linger.ms``.
- At most ``max.in.flight.requests.per.connection`` requests per partition are in flight; when
  all are busy and the batch is full, record creation waits (Kafka's producer blocks likewise
  when its buffer is full), and that wait counts in the records' latency.
- A record's latency is its acknowledgement time minus its send time, as in Kafka.

Records are sent without the idempotent producer's headers: a request retried after a 503
NOT_ENOUGH_REPLICAS that came after the append may store its records twice (the count of
acknowledged records stays exact). A request that fails for good is reported on stderr, its
records are not counted as sent, and the tool exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import string
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from client.client import KraftClient, TransportError
from client.protocol import ApiError
from client.security import ClientSecurity
from client.tools import common
from client.tools.perf_http import LeaderRouter
from client.tools.perf_stats import (  # noqa: F401  (re-exported for tests and callers)
    PerfStats,
    percentiles,
    throttle_sleep_s,
    total_line,
    window_line,
)

TOOL = "kraft-producer-perf-test"

# Defaults of the producer settings, measured on the 2-core machine against three nodes with
# replication factor 3 and acks=all, 3 partitions: requests of 1,000 records amortise the
# node's per-request work (500 gave about half the records/s); one request in flight per
# partition gave the lowest latency at 10,000 records/s (p99 51-55 ms against 56-76 ms with
# two, 118-141 ms with five and ten: each extra request costs the leader and both followers
# another append, fsync and fetch round) and no less throughput unthrottled. Kafka's
# linger.ms default (5 ms since Kafka 4.0) did as well as 10 ms.
BATCH_RECORDS_DEFAULT = 1000
LINGER_MS_DEFAULT = 5
IN_FLIGHT_PER_PARTITION_DEFAULT = 1
# The node refuses a produce of more records than this (server PRODUCE_RECORDS_MAX).
BATCH_RECORDS_MAX = 10_000
# The accumulators are checked for lingering records this often when linger.ms is 0.
LINGER_POLL_MIN_S = 0.001

ACKS_VALUES = ("all", "-1", "0", "1")
PRODUCER_PROPERTIES = (
    "acks",
    "batch.size",
    "bootstrap.servers",
    "client.id",
    "linger.ms",
    "max.in.flight.requests.per.connection",
    "request.timeout.ms",
)
_REFUSED: dict[str, str] = {
    "--print-metrics": "{flag} is not supported: the tool keeps no client metrics to print",
    "--transactional-id": "{flag} is not supported: there are no transactions",
    "--transaction-duration-ms": "{flag} is not supported: there are no transactions",
}


@dataclass(frozen=True)
class PerfCommand:
    bootstrap: str
    topic: str
    num_records: int
    record_size: int | None
    payload_file: str | None
    payload_delimiter: str
    throughput: float  # records/s; <= 0 means no limit
    acks: str = "all"
    batch_records: int = BATCH_RECORDS_DEFAULT
    linger_ms: float = LINGER_MS_DEFAULT
    in_flight: int = IN_FLIGHT_PER_PARTITION_DEFAULT
    timeout_ms: int | None = None
    security: ClientSecurity | None = None  # --producer.config / --command-config


# ---------------------------------------------------------------------------------------------
# Pure: the command line
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(
        TOOL, "This tool is used to verify the producer performance.", _REFUSED
    )
    parser.add_argument("--topic", metavar="TOPIC", help="produce messages to this topic")
    parser.add_argument(
        "--num-records", metavar="NUM-RECORDS", help="number of messages to produce"
    )
    parser.add_argument(
        "--record-size",
        metavar="RECORD-SIZE",
        help="message size in bytes; give exactly one of --record-size or --payload-file",
    )
    parser.add_argument(
        "--payload-file",
        metavar="PAYLOAD-FILE",
        help="file to read the message payloads from (UTF-8 text); a payload is picked at "
        "random for each message",
    )
    parser.add_argument(
        "--payload-delimiter",
        metavar="PAYLOAD-DELIMITER",
        default="\\n",
        help="delimiter between the payloads of --payload-file (default: new line)",
    )
    parser.add_argument(
        "--throughput",
        metavar="THROUGHPUT",
        help="throttle to *approximately* THROUGHPUT messages/sec; -1 disables throttling",
    )
    parser.add_argument(
        "--producer-props",
        nargs="+",
        action="extend",
        metavar="PROP-NAME=PROP-VALUE",
        help="producer settings: " + ", ".join(PRODUCER_PROPERTIES) + " (batch.size counts "
        "records per request, not bytes)",
    )
    parser.add_argument(
        "--bootstrap-server",
        metavar="HOST:PORT",
        help="the node(s) to connect to; overrides bootstrap.servers in --producer-props",
    )
    common.add_config_flags(parser, "--producer.config", "--command-config", what="producer")
    return parser


def _int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise common.UsageError(f"argument {name}: could not convert '{raw}' (int)") from None
    if value < minimum:
        raise common.UsageError(f"argument {name}: must be at least {minimum}, got {value}")
    return value


def parse_producer_props(items: list[str]) -> dict[str, str]:
    """Kafka's ``name=value`` producer properties; raises UsageError for a malformed one or
    a setting this tool does not honour (it is named, so nobody believes it was applied)."""
    props: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise common.UsageError(f"Invalid property: {item}")
        props[name.strip()] = value.strip()
    unknown = sorted(set(props) - set(PRODUCER_PROPERTIES))
    if unknown:
        raise common.UsageError(
            f"producer property {unknown[0]} is not supported; supported: "
            + ", ".join(PRODUCER_PROPERTIES)
        )
    return props


def parse_command(argv: list[str]) -> PerfCommand:
    """The test's settings from a command line; raises UsageError (exit 1), or SystemExit(2)
    from argparse for an unknown flag."""
    args = build_parser().parse_args(argv)
    common.check_refused(TOOL, args, _REFUSED)
    for flag, value in (
        ("--topic", args.topic),
        ("--num-records", args.num_records),
        ("--throughput", args.throughput),
    ):
        if value is None:
            raise common.UsageError(f"argument {flag} is required")
    if args.record_size is not None and args.payload_file is not None:
        raise common.UsageError("argument --payload-file: not allowed with argument --record-size")
    if args.record_size is None and args.payload_file is None:
        raise common.UsageError("one of the arguments --record-size --payload-file is required")
    num_records = _int("--num-records", args.num_records, 1)
    record_size = None if args.record_size is None else _int("--record-size", args.record_size, 0)
    try:
        throughput = float(args.throughput)
    except ValueError:
        raise common.UsageError(
            f"argument --throughput: could not convert '{args.throughput}' (double)"
        ) from None
    if throughput == 0:
        # Kafka's throttler would wait for ever; say so instead.
        raise common.UsageError("argument --throughput: 0 sends nothing; use -1 for no limit")
    security, file_props = common.load_client_config(args.command_config)
    # As Kafka's: the file's producer settings, overridden by --producer-props.
    props = {k: v for k, v in file_props.items() if k in PRODUCER_PROPERTIES}
    props |= parse_producer_props(args.producer_props or [])
    bootstrap = args.bootstrap_server or props.get("bootstrap.servers")
    if not bootstrap:
        raise common.UsageError(
            "Either --bootstrap-server or bootstrap.servers in --producer-props must be given."
        )
    common.check_bootstrap(bootstrap)
    acks = props.get("acks", "all")
    if acks not in ACKS_VALUES:
        raise common.UsageError(
            f"Invalid value {acks} for configuration acks: String must be one of: all, -1, 0, 1"
        )
    batch = _int("batch.size", props.get("batch.size", str(BATCH_RECORDS_DEFAULT)), 1)
    if batch > BATCH_RECORDS_MAX:
        raise common.UsageError(
            f"batch.size {batch} is over {BATCH_RECORDS_MAX}, the records a node takes in "
            "one request (batch.size counts records here, not bytes)"
        )
    linger_ms = _int("linger.ms", props.get("linger.ms", str(LINGER_MS_DEFAULT)), 0)
    in_flight = _int(
        "max.in.flight.requests.per.connection",
        props.get("max.in.flight.requests.per.connection", str(IN_FLIGHT_PER_PARTITION_DEFAULT)),
        1,
    )
    timeout_ms = None
    if "request.timeout.ms" in props:
        timeout_ms = _int("request.timeout.ms", props["request.timeout.ms"], 1)
    delimiter = "\n" if args.payload_delimiter == "\\n" else args.payload_delimiter
    if args.payload_file is not None and not delimiter:
        raise common.UsageError("argument --payload-delimiter: must not be empty")
    return PerfCommand(
        bootstrap=bootstrap,
        topic=args.topic,
        num_records=num_records,
        record_size=record_size,
        payload_file=args.payload_file,
        payload_delimiter=delimiter,
        throughput=throughput,
        acks="all" if acks == "-1" else acks,
        batch_records=batch,
        linger_ms=linger_ms,
        in_flight=in_flight,
        timeout_ms=timeout_ms,
        security=security,
    )


# ---------------------------------------------------------------------------------------------
# Pure: payloads (Kafka's lines and statistics are in perf_stats)
# ---------------------------------------------------------------------------------------------


def split_payloads(text: str, delimiter: str) -> list[str]:
    """The payloads of a payload file (Kafka splits the text at the delimiter)."""
    return [p for p in text.split(delimiter) if p]


def random_payload(size: int, rng: random.Random) -> str:
    """``size`` random capital letters: Kafka's payload, one byte per character."""
    return "".join(rng.choices(string.ascii_uppercase, k=size))


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


class _Payloads:
    """Request bodies: the JSON of each payload once, joined per request."""

    def __init__(self, payloads: list[str], rng: random.Random) -> None:
        self._items = [orjson.dumps({"value": p}) for p in payloads]
        self._sizes = [len(p.encode("utf-8")) for p in payloads]
        self._rng = rng
        self._cache: dict[int, bytes] = {}

    def body(self, count: int) -> tuple[bytes, list[int]]:
        """A produce body of ``count`` records and each record's value size."""
        if len(self._items) == 1:
            body = self._cache.get(count)
            if body is None:
                body = b'{"records":[' + b",".join([self._items[0]] * count) + b"]}"
                self._cache[count] = body
            return body, [self._sizes[0]] * count
        picks = [self._rng.randrange(len(self._items)) for _ in range(count)]
        body = b'{"records":[' + b",".join(self._items[i] for i in picks) + b"]}"
        return body, [self._sizes[i] for i in picks]


class _Producer:
    def __init__(
        self,
        cmd: PerfCommand,
        router: LeaderRouter,
        payloads: _Payloads,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.cmd = cmd
        self.router = router
        self.payloads = payloads
        self.clock = clock
        self.partitions = list(router.partitions)
        self.acc: dict[int, list[float]] = {p: [] for p in self.partitions}
        self.slots = {p: asyncio.Semaphore(cmd.in_flight) for p in self.partitions}
        self.tasks: set[asyncio.Task[None]] = set()
        self.failed = 0
        self.stats = PerfStats(cmd.num_records, clock())
        self.params = {"acks": cmd.acks}
        if cmd.timeout_ms is not None:
            self.params["timeout_ms"] = str(cmd.timeout_ms)

    async def _dispatch(self, partition: int) -> None:
        await self.slots[partition].acquire()
        pending = self.acc[partition]
        batch = pending[: self.cmd.batch_records]
        del pending[: self.cmd.batch_records]
        if not batch:
            self.slots[partition].release()
            return
        task = asyncio.create_task(self._send(partition, batch))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, partition: int, sent_at: list[float]) -> None:
        body, sizes = self.payloads.body(len(sent_at))
        try:
            _status, raw = await self.router.request(
                "POST", partition, self.params, body, wait_ms=self.cmd.timeout_ms or 0
            )
            if self.cmd.acks != "0":
                answer = orjson.loads(raw) if raw else {}
                offsets = answer.get("offsets") if isinstance(answer, dict) else None
                if not isinstance(offsets, list) or len(offsets) != len(sent_at):
                    raise TransportError(f"unexpected produce answer: {raw[:200]!r}")
        except (ApiError, TransportError, orjson.JSONDecodeError) as exc:
            self.failed += len(sent_at)
            common.print_error(
                f"Error when sending {len(sent_at)} records to {self.cmd.topic}-{partition}: "
                f"{common.error_text(exc)}"
            )
            return
        finally:
            self.slots[partition].release()
        now = self.clock()
        record = self.stats.record
        for started, size in zip(sent_at, sizes, strict=True):
            line = record((now - started) * 1000.0, size, now)
            if line is not None:
                print(line, flush=True)

    async def _linger(self, done: asyncio.Event) -> None:
        linger_s = self.cmd.linger_ms / 1000.0
        while not done.is_set():
            await asyncio.sleep(max(linger_s, LINGER_POLL_MIN_S))
            now = self.clock()
            for partition in self.partitions:
                pending = self.acc[partition]
                if pending and now - pending[0] >= linger_s and not self.slots[partition].locked():
                    await self._dispatch(partition)

    async def run(self) -> None:
        done = asyncio.Event()
        linger = asyncio.create_task(self._linger(done))
        cmd, clock, acc = self.cmd, self.clock, self.acc
        partitions, count = self.partitions, len(self.partitions)
        start = self.stats.start_s
        try:
            for i in range(cmd.num_records):
                if cmd.throughput > 0:
                    pause = throttle_sleep_s(i, clock() - start, cmd.throughput)
                    if pause:
                        await asyncio.sleep(pause)
                partition = partitions[i % count]
                pending = acc[partition]
                pending.append(clock())
                if len(pending) >= cmd.batch_records:
                    await self._dispatch(partition)
            for partition in partitions:
                while acc[partition]:
                    await self._dispatch(partition)
        finally:
            done.set()
            await linger
        while self.tasks:
            await asyncio.gather(*list(self.tasks))


def _load_payloads(cmd: PerfCommand, rng: random.Random) -> list[str]:
    if cmd.payload_file is None:
        assert cmd.record_size is not None
        return [random_payload(cmd.record_size, rng)]
    path = os.path.abspath(cmd.payload_file)
    print(f"Reading payloads from: {path}", flush=True)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        text = ""
    payloads = split_payloads(text, cmd.payload_delimiter)
    if not payloads:
        raise common.UsageError("File does not exist or empty file provided.")
    print(f"Number of messages read: {len(payloads)}", flush=True)
    return payloads


async def run_test(cmd: PerfCommand) -> int:
    """Runs the test and prints Kafka's lines; returns the exit code."""
    rng = random.Random()
    try:
        payloads = _Payloads(_load_payloads(cmd, rng), rng)
    except common.UsageError as exc:
        common.print_error(str(exc))
        return common.EXIT_ERROR
    async with (
        KraftClient(cmd.bootstrap, security=cmd.security) as client,
        LeaderRouter(client, cmd.topic, cmd.security) as router,
    ):
        try:
            await router.refresh()
        except ApiError as exc:
            common.print_error(f"{cmd.topic}: {common.error_text(exc)}")
            return common.EXIT_ERROR
        if not router.partitions:
            common.print_error(f"Topic {cmd.topic} has no partitions")
            return common.EXIT_ERROR
        producer = _Producer(cmd, router, payloads)
        await producer.run()
        print(producer.stats.total(producer.clock()), flush=True)
        if producer.failed:
            common.print_error(f"{producer.failed} records could not be sent")
            return common.EXIT_ERROR
    return common.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd
    return common.run(lambda: run_test(cmd))


if __name__ == "__main__":
    sys.exit(main())
