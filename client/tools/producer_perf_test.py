"""kraft-producer-perf-test: Kafka's kafka-producer-perf-test.sh on the Python Producer.

Produces ``--num-records`` records of ``--record-size`` bytes (one random payload of printable
letters, reused for every record, as Kafka's ProducerPerformance does; or payloads picked at
random from ``--payload-file``) through :class:`client.producer.AsyncProducer`, at most
``--throughput`` records a second (-1: no limit), and prints Kafka's lines: every ~5 s a
window line, and at the end the total line with the latency percentiles.

As in Kafka, the records have no key, so the producer's sticky partitioner spreads them
(``batch.size`` bytes to a partition, then another), and ``--producer-props`` (or the
``--producer.config`` file) takes any of the producer's Kafka properties (``acks``,
``linger.ms``, ``batch.size`` in bytes, ``max.in.flight.requests.per.connection``,
``enable.idempotence``, ``retries``, ``delivery.timeout.ms``, ``compression.type`` and its
levels ...). A record's latency is its
acknowledgement time minus the time it was handed to ``send`` (Kafka's callback measures the
same), so time spent waiting for buffer room counts in it. A record that fails for good is
reported on stderr (each distinct error once), is not counted as sent, and the tool exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import string
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from client.client import TransportError
from client.producer import (
    AsyncProducer,
    ConfigException,
    GroupCallback,
    ProducerConfig,
    ProducerTimeout,
    RecordResults,
)
from client.producer_config import PROPERTY_NAMES
from client.protocol import ApiError
from client.security import ClientSecurity
from client.tools import common
from client.tools.perf_stats import (  # noqa: F401  (re-exported for tests and callers)
    PerfStats,
    percentiles,
    throttle_sleep_s,
    total_line,
    window_line,
)

TOOL = "kraft-producer-perf-test"
# Records handed to the producer in one send_many call when nothing throttles: large enough
# that the per-call overhead vanishes, small enough that the sender runs between runs and a
# record's latency (counted from its run's hand-over) is not stretched by the run itself.
SEND_RUN_RECORDS_MAX = 200

# The garbage collector's thresholds while the test runs (Python's: 700, 10, 10). The tool
# makes container objects for every record (the accumulator's tuple of a record, a run's
# lists), and they live until the record is acknowledged: with up to buffer.memory of records
# waiting, a young collection every 700 new objects walked thousands of live records, moved
# them to the older generations and made those collections walk them again, for nothing:
# they are freed by their reference counts, not by the collector. The collector was ~40% of
# the tool's steady CPU (engineer E: 2.73-3.16 us a record with Python's thresholds,
# 1.87-2.18 us with these, 1.80-1.87 us with no collector at all; with the results made
# lazily, 2.33 -> 1.93 us a record, medians of 4 runs interleaved on the busy machine). A
# collection every 50,000 new objects still bounds what real cycles (asyncio's tracebacks of
# failed requests, say) can hold.
GC_THRESHOLDS = (50_000, 20, 100)

ACKS_VALUES = ("all", "-1", "0", "1")
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
    config: ProducerConfig
    # The Kafka producer properties given (--producer.config, then --producer-props).
    properties: dict[str, str] = field(default_factory=dict)
    security: ClientSecurity | None = None  # --producer.config / --command-config

    @property
    def acks(self) -> str:
        return self.config.acks

    @property
    def timeout_ms(self) -> int | None:
        """request.timeout.ms when given, else None (the producer's default applies)."""
        return self.config.request_timeout_ms if "request.timeout.ms" in self.properties else None


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
        help="the producer's Kafka properties: " + ", ".join(PROPERTY_NAMES),
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
    """Kafka's ``name=value`` producer properties; raises UsageError for a malformed one (the
    producer's config refuses a setting it does not know, by name)."""
    props: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise common.UsageError(f"Invalid property: {item}")
        props[name.strip()] = value.strip()
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
    # As Kafka's: the file's producer settings, overridden by --producer-props. A client file
    # may hold other clients' settings too: those are left out (Kafka warns of them), where
    # an unknown --producer-props name is refused.
    props = {k: v for k, v in file_props.items() if k in PROPERTY_NAMES}
    props |= parse_producer_props(args.producer_props or [])
    bootstrap = args.bootstrap_server or props.pop("bootstrap.servers", None)
    props.pop("bootstrap.servers", None)
    if not bootstrap:
        raise common.UsageError(
            "Either --bootstrap-server or bootstrap.servers in --producer-props must be given."
        )
    common.check_bootstrap(bootstrap)
    if props.get("acks", "all").strip() not in ACKS_VALUES:
        raise common.UsageError(
            f"Invalid value {props['acks']} for configuration acks: String must be one of: "
            "all, -1, 0, 1"
        )
    try:
        config = ProducerConfig.from_properties(
            props, bootstrap_servers=bootstrap, security=security or ClientSecurity()
        )
    except ConfigException as exc:
        raise common.UsageError(str(exc)) from None
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
        config=config,
        properties=props,
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


class _Run:
    """One test: sends the records, counts the acknowledged ones (Kafka's PerfCallback).

    Records go to the producer in runs (``send_many``): as many as the throttle lets out now,
    at most ``SEND_RUN_RECORDS_MAX``. Each is still a record of its own to the producer
    (partitioned, batched by bytes, acknowledged one by one); the run only spares the
    per-call overhead, which would otherwise cost the test more CPU than the records do. A
    record's latency counts from the moment its run was handed over.
    """

    def __init__(
        self,
        cmd: PerfCommand,
        producer: AsyncProducer,
        payloads: list[str],
        rng: random.Random,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.cmd = cmd
        self.producer = producer
        # Encoded once: Kafka's ProducerPerformance sends the same byte array every time
        # (each record is still written into its batch when the batch is built).
        self.payloads = [p.encode("utf-8") for p in payloads]
        self.sizes = [len(p) for p in self.payloads]
        self.rng = rng
        self.clock = clock
        self.stats = PerfStats(cmd.num_records, clock())
        self.failed = 0
        self.errors: set[str] = set()

    def _callback(self, sent_at: float, nbytes: int, sizes: list[int] | None) -> GroupCallback:
        """The callback of a run of records sent at ``sent_at``: ``nbytes`` bytes in all, of
        ``sizes`` each (None: all of one size)."""

        def done(results: RecordResults, error: BaseException | None) -> None:
            now = self.clock()
            failed = results.failed
            count = len(results) - failed
            size = nbytes
            if failed:
                self.failed += failed
                if sizes is None:
                    size = nbytes // len(results) * count
                else:  # only here are the results looked at one by one
                    size = sum(s for m, s in zip(results, sizes, strict=True) if m is not None)
            # Every record of the run has the same latency: counted once for the run.
            line = self.stats.record_group((now - sent_at) * 1000.0, count, size, now)
            if line is not None:
                print(line, flush=True)
            if error is not None:
                text = common.error_text(error)
                if text not in self.errors:  # each distinct error once, not once per record
                    self.errors.add(text)
                    common.print_error(f"Error when sending to {self.cmd.topic}: {text}")

        return done

    def _run_length(self, sent: int, elapsed_s: float) -> int:
        left = self.cmd.num_records - sent
        if self.cmd.throughput <= 0:
            return min(left, SEND_RUN_RECORDS_MAX)
        due = int(elapsed_s * self.cmd.throughput) + 1 - sent
        return max(1, min(due, left, SEND_RUN_RECORDS_MAX))

    async def run(self) -> None:
        cmd, clock, send_many = self.cmd, self.clock, self.producer.send_many
        start = self.stats.start_s
        single = len(self.payloads) == 1
        sent = 0
        while sent < cmd.num_records:
            if cmd.throughput > 0:
                pause = throttle_sleep_s(sent, clock() - start, cmd.throughput)
                if pause:
                    await asyncio.sleep(pause)
            count = self._run_length(sent, clock() - start)
            sizes: list[int] | None
            if single:
                values, sizes, nbytes = [self.payloads[0]] * count, None, self.sizes[0] * count
            else:
                picks = [self.rng.randrange(len(self.payloads)) for _ in range(count)]
                values = [self.payloads[p] for p in picks]
                sizes = [self.sizes[p] for p in picks]
                nbytes = sum(sizes)
            await send_many(cmd.topic, values, callback=self._callback(clock(), nbytes, sizes))
            sent += count
        await self.producer.flush()


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


@contextlib.contextmanager
def _collector_for_load() -> Iterator[None]:
    """The garbage collector set for the test (``GC_THRESHOLDS``), and what was made before
    it (the modules, the producer, the metadata) frozen out of its walks; as it was after."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


async def run_test(cmd: PerfCommand) -> int:
    """Runs the test and prints Kafka's lines; returns the exit code."""
    rng = random.Random()
    try:
        payloads = _load_payloads(cmd, rng)
    except common.UsageError as exc:
        common.print_error(str(exc))
        return common.EXIT_ERROR
    producer = AsyncProducer(cmd.config)
    await producer.start()
    try:
        try:
            await producer.partitions_for(cmd.topic)
        except (ApiError, ProducerTimeout, TransportError) as exc:
            common.print_error(f"{cmd.topic}: {common.error_text(exc)}")
            return common.EXIT_ERROR
        test = _Run(cmd, producer, payloads, rng)
        with _collector_for_load():
            await test.run()
        print(test.stats.total(test.clock()), flush=True)
    finally:
        await producer.close()
    if test.failed:
        common.print_error(f"{test.failed} records could not be sent")
        return common.EXIT_ERROR
    return common.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd
    return common.run(lambda: run_test(cmd))


if __name__ == "__main__":
    sys.exit(main())
