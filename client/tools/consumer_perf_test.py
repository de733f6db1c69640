"""kraft-consumer-perf-test: Kafka's kafka-consumer-perf-test.sh on the Consumer (client/consumer).

Reads ``--topic`` with one Consumer until ``--messages`` records have arrived or none has for
``--timeout`` ms, then prints Kafka's header and line::

    start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec

With ``--group G`` the consumer joins the group and reads what the coordinator assigns it
(from the group's committed offsets, else the beginning, or the end with ``--from-latest``);
``rebalance.time.ms`` is the time from subscribing to the first assignment, as Kafka measures
it, and the fetch time is the rest. Without ``--group`` every partition is assigned (no group,
nothing committed) and ``rebalance.time.ms`` is 0. ``--fetch-size`` is Kafka's
``max.partition.fetch.bytes``; ``--command-property`` and ``--consumer.config`` give any other
consumer property. Bytes are the records' key and value bytes, as Kafka counts them. As in
Kafka, every record a poll returns is counted, so the count may pass ``--messages`` a little.
With ``--show-detailed-stats`` a line per ``--reporting-interval`` is printed instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime

from client.async_consumer import AsyncConsumer, ConsumerRebalanceListener, IllegalStateError
from client.client import TransportError
from client.consumer_config import ConsumerConfig, ConsumerConfigError
from client.consumer_fetch import ConsumerRecord, NoOffsetForPartitionError, tune_collector
from client.group_member import TopicPartition
from client.protocol import UNKNOWN_TOPIC, ApiError
from client.security import ClientSecurity
from client.tools import common

TOOL = "kraft-consumer-perf-test"

# Kafka's defaults: --timeout 10 s without a record ends the test; --fetch-size 1 MiB;
# --reporting-interval 5 s.
TIMEOUT_MS_DEFAULT = 10_000
FETCH_BYTES_DEFAULT = 1024 * 1024
REPORTING_INTERVAL_MS_DEFAULT = 5_000
# The node's bound on one fetch (server FETCH_MAX_BYTES_MAX).
FETCH_BYTES_MAX = 64 * 1024 * 1024
# One poll waits at most this long: short, so the --timeout check runs several times a second.
POLL_WAIT_MS = 200

HEADER = (
    "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec"
    ", rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)
DETAILED_HEADER = (
    "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec"
    ", rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)
_REFUSED: dict[str, str] = {
    "--include": "{flag} is not supported yet; name one topic with --topic",
    "--print-metrics": "{flag} is not supported: the tool keeps no client metrics to print",
    "--date-format": "{flag} is not supported: times print as yyyy-MM-dd HH:mm:ss:SSS",
    "--threads": "{flag} is not supported: one task reads every partition",
    "--num-fetch-threads": "{flag} is not supported: one task reads every partition",
    "--socket-buffer-size": "{flag} is not supported",
    "--zookeeper": "--zookeeper is not supported: this cluster has no ZooKeeper; "
    "use --bootstrap-server",
}


@dataclass(frozen=True)
class ConsumerPerfCommand:
    bootstrap: str
    topic: str
    messages: int
    timeout_ms: int = TIMEOUT_MS_DEFAULT
    fetch_bytes: int = FETCH_BYTES_DEFAULT
    from_latest: bool = False
    show_detailed_stats: bool = False
    reporting_interval_ms: int = REPORTING_INTERVAL_MS_DEFAULT
    hide_header: bool = False
    security: ClientSecurity | None = None  # --consumer.config / --command-config
    group: str | None = None
    # Kafka consumer properties from --consumer.config and --command-property (later wins),
    # security ones excepted (they are in ``security``).
    consumer_props: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Pure: the command line and Kafka's lines
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(
        TOOL, "This tool is used to verify the consumer performance.", _REFUSED
    )
    parser.add_argument(
        "--bootstrap-server", metavar="HOST:PORT", help="REQUIRED: The server(s) to connect to."
    )
    common.add_config_flags(parser, "--consumer.config", "--command-config", what="consumer")
    parser.add_argument(
        "--broker-list", metavar="HOST:PORT", help="DEPRECATED, use --bootstrap-server."
    )
    parser.add_argument("--topic", help="REQUIRED: The topic to consume from.")
    parser.add_argument(
        "--messages", metavar="COUNT", help="REQUIRED: The number of messages to consume."
    )
    parser.add_argument("--num-records", metavar="COUNT", help="The same as --messages.")
    parser.add_argument(
        "--timeout",
        metavar="MS",
        help=f"The maximum allowed time in milliseconds between returned records "
        f"(default {TIMEOUT_MS_DEFAULT}).",
    )
    parser.add_argument(
        "--fetch-size",
        metavar="BYTES",
        help=f"The most bytes to fetch from one partition per request "
        f"(default {FETCH_BYTES_DEFAULT}).",
    )
    parser.add_argument(
        "--from-latest",
        action="store_true",
        help="Start at the latest record of each partition rather than the earliest.",
    )
    parser.add_argument(
        "--show-detailed-stats",
        action="store_true",
        help="Print a line per reporting interval instead of the summary.",
    )
    parser.add_argument(
        "--reporting-interval",
        metavar="MS",
        help=f"The interval of --show-detailed-stats (default {REPORTING_INTERVAL_MS_DEFAULT}).",
    )
    parser.add_argument("--hide-header", action="store_true", help="Do not print the header.")
    parser.add_argument("--group", metavar="GROUP", help="The consumer group id to join.")
    parser.add_argument(
        "--command-property",
        "--consumer-property",
        dest="command_property",
        action="append",
        metavar="KEY=VALUE",
        help="A consumer property (max.poll.records, fetch.max.wait.ms...); repeat for several.",
    )
    return parser


def _int(name: str, raw: str | None, default: int, minimum: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise common.UsageError(f"Option {name} expects a number, got '{raw}'") from None
    if value < minimum:
        raise common.UsageError(f"Option {name} must be at least {minimum}, got {value}")
    return value


def parse_command(argv: list[str]) -> ConsumerPerfCommand:
    """The test's settings from a command line; raises UsageError (exit 1), or SystemExit(2)
    from argparse for an unknown flag."""
    args = build_parser().parse_args(argv)
    common.check_refused(TOOL, args, _REFUSED)
    bootstrap = args.bootstrap_server or args.broker_list
    missing = [
        name
        for name, value in (
            ("bootstrap-server", bootstrap),
            ("topic", args.topic),
            ("messages", args.messages or args.num_records),
        )
        if value is None
    ]
    if missing:
        raise common.UsageError(f"Missing required option(s) [{', '.join(missing)}]")
    common.check_bootstrap(bootstrap)
    fetch_bytes = _int("fetch-size", args.fetch_size, FETCH_BYTES_DEFAULT, 1)
    if fetch_bytes > FETCH_BYTES_MAX:
        raise common.UsageError(
            f"Option fetch-size {fetch_bytes} is over {FETCH_BYTES_MAX}, the most a node "
            "answers in one fetch"
        )
    security, file_props = common.load_client_config(args.command_config)
    props = {
        k: v
        for k, v in file_props.items()
        if k != "security.protocol" and not k.startswith(("ssl.", "sasl."))
    }
    props.update(common.parse_key_values(args.command_property))
    group = args.group or props.get("group.id") or None
    cmd = ConsumerPerfCommand(
        bootstrap=bootstrap,
        topic=args.topic,
        messages=_int("messages", args.messages or args.num_records, 0, 1),
        timeout_ms=_int("timeout", args.timeout, TIMEOUT_MS_DEFAULT, 0),
        fetch_bytes=fetch_bytes,
        from_latest=args.from_latest,
        show_detailed_stats=args.show_detailed_stats,
        reporting_interval_ms=_int(
            "reporting-interval", args.reporting_interval, REPORTING_INTERVAL_MS_DEFAULT, 1
        ),
        hide_header=args.hide_header,
        security=security,
        group=group,
        consumer_props=props,
    )
    try:
        ConsumerConfig.from_properties(consumer_properties(cmd), security)
    except ConsumerConfigError as exc:
        raise common.UsageError(str(exc)) from None
    return cmd


def consumer_properties(cmd: ConsumerPerfCommand) -> dict[str, str]:
    """The Consumer's properties for a run: Kafka's ConsumerPerformance sets the fetch size,
    the reset policy and the group; the user's properties come under them."""
    props = dict(cmd.consumer_props)
    props["bootstrap.servers"] = cmd.bootstrap
    props["max.partition.fetch.bytes"] = str(cmd.fetch_bytes)
    props["auto.offset.reset"] = "latest" if cmd.from_latest else "earliest"
    props.pop("group.id", None)
    if cmd.group is not None:
        props["group.id"] = cmd.group
    return props


def format_time_ms(epoch_ms: int) -> str:
    """Kafka's default date format, ``yyyy-MM-dd HH:mm:ss:SSS``, in local time."""
    moment = datetime.fromtimestamp(epoch_ms / 1000)
    return moment.strftime("%Y-%m-%d %H:%M:%S:") + f"{epoch_ms % 1000:03d}"


_MIB = 1024.0 * 1024.0


def summary_line(start_ms: int, end_ms: int, nbytes: int, count: int, rebalance_ms: int) -> str:
    """Kafka's ConsumerPerformance closing line."""
    mb = nbytes / _MIB
    elapsed_s = max((end_ms - start_ms) / 1000.0, 1e-9)
    fetch_ms = end_ms - start_ms - rebalance_ms
    fetch_s = max(fetch_ms / 1000.0, 1e-9)
    return (
        f"{format_time_ms(start_ms)}, {format_time_ms(end_ms)}, {mb:.4f}, {mb / elapsed_s:.4f}, "
        f"{count}, {count / elapsed_s:.4f}, {rebalance_ms}, {fetch_ms}, "
        f"{mb / fetch_s:.4f}, {count / fetch_s:.4f}"
    )


def detailed_line(
    end_ms: int,
    nbytes: int,
    last_bytes: int,
    count: int,
    last_count: int,
    interval_ms: int,
    rebalance_ms: int = 0,
) -> str:
    """Kafka's --show-detailed-stats line for one interval (thread id 0)."""
    elapsed_ms = max(float(interval_ms), 1e-9)
    interval_mb = (nbytes - last_bytes) / _MIB
    fetch_ms = interval_ms - rebalance_ms
    fetch_mb_s = 0.0 if fetch_ms <= 0 else 1000.0 * interval_mb / fetch_ms
    fetch_n_s = 0.0 if fetch_ms <= 0 else 1000.0 * (count - last_count) / fetch_ms
    mb_s = 1000.0 * interval_mb / elapsed_ms
    n_s = 1000.0 * (count - last_count) / elapsed_ms
    return (
        f"{format_time_ms(end_ms)}, 0, {nbytes / _MIB:.4f}, {mb_s:.4f}, {count}, {n_s:.4f}, "
        f"{rebalance_ms}, {fetch_ms}, {fetch_mb_s:.4f}, {fetch_n_s:.4f}"
    )


def timeout_warning(timeout_ms: int) -> str:
    return (
        "WARNING: Exiting before consuming the expected number of messages: timeout "
        f"({timeout_ms} ms) exceeded. You can use the --timeout option to increase the timeout."
    )


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


def records_bytes(records: list[ConsumerRecord]) -> int:
    """Key plus value bytes of records, as Kafka's ConsumerPerformance counts them."""
    total = 0
    for record in records:
        if record.key is not None:
            total += len(record.key)
        if record.value is not None:
            total += len(record.value)
    return total


class _JoinTimer(ConsumerRebalanceListener):
    """Kafka's rebalance.time.ms: from subscribing to the first assignment."""

    def __init__(self, start_s: float) -> None:
        self.start_s = start_s
        self.rebalance_ms = 0
        self._joined = False

    def on_partitions_assigned(self, partitions: list[TopicPartition]) -> None:
        if not self._joined:
            self._joined = True
            self.rebalance_ms = int((time.monotonic() - self.start_s) * 1000)


class _Stats:
    def __init__(self, cmd: ConsumerPerfCommand) -> None:
        self.cmd = cmd
        self.count = 0
        self.bytes = 0
        self.last_report_s = time.monotonic()
        self.last_report_count = 0
        self.last_report_bytes = 0

    def counted(self, records: list[ConsumerRecord], rebalance_ms: int) -> None:
        self.count += len(records)
        self.bytes += records_bytes(records)
        now = time.monotonic()
        interval_ms = int((now - self.last_report_s) * 1000)
        if self.cmd.show_detailed_stats and interval_ms >= self.cmd.reporting_interval_ms:
            print(
                detailed_line(
                    int(time.time() * 1000),
                    self.bytes,
                    self.last_report_bytes,
                    self.count,
                    self.last_report_count,
                    interval_ms,
                    rebalance_ms if self.last_report_count == 0 else 0,
                ),
                flush=True,
            )
            self.last_report_s = now
            self.last_report_count = self.count
            self.last_report_bytes = self.bytes


async def _start(consumer: AsyncConsumer, cmd: ConsumerPerfCommand, timer: _JoinTimer) -> None:
    if cmd.group is not None:
        await consumer.subscribe([cmd.topic], timer)
        return
    partitions = await consumer.partitions_for_topic(cmd.topic)
    await consumer.assign([(cmd.topic, p) for p in partitions])


async def run_test(cmd: ConsumerPerfCommand) -> int:
    """Runs the test and prints Kafka's lines; returns the exit code."""
    if not cmd.hide_header:
        print(DETAILED_HEADER if cmd.show_detailed_stats else HEADER, flush=True)
    consumer = AsyncConsumer(consumer_properties(cmd), security=cmd.security)
    stats = _Stats(cmd)
    try:
        start_ms = int(time.time() * 1000)
        timer = _JoinTimer(time.monotonic())
        try:
            await _start(consumer, cmd, timer)
        except ApiError as exc:
            if exc.code == UNKNOWN_TOPIC.code:
                common.print_error(f"{cmd.topic}: {common.error_text(exc)}")
                return common.EXIT_ERROR
            raise
        last_consumed_s = time.monotonic()
        while stats.count < cmd.messages:
            records = await consumer.poll(POLL_WAIT_MS)
            now = time.monotonic()
            if records:
                last_consumed_s = now
                stats.counted(records, timer.rebalance_ms)
            elif now - last_consumed_s > cmd.timeout_ms / 1000:
                break
        end_ms = int(time.time() * 1000)
    except (ApiError, TransportError, NoOffsetForPartitionError, IllegalStateError) as exc:
        common.print_error(common.error_text(exc))
        return common.EXIT_ERROR
    finally:
        await consumer.close()
    if stats.count < cmd.messages:
        print(timeout_warning(cmd.timeout_ms), flush=True)
    if not cmd.show_detailed_stats:
        print(
            summary_line(start_ms, end_ms, stats.bytes, stats.count, timer.rebalance_ms),
            flush=True,
        )
    return common.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd
    tune_collector()  # this process only consumes: see consumer_fetch.GC_GEN0_THRESHOLD
    return common.run(lambda: run_test(cmd))


if __name__ == "__main__":
    sys.exit(main())
