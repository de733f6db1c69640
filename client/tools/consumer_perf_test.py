"""kraft-consumer-perf-test: Kafka's kafka-consumer-perf-test.sh against our cluster's HTTP API.

Reads every partition of ``--topic`` from its beginning (``--from-latest``: from its high
watermark) with fetches sent straight to each leader (``format=binary``, up to
``--fetch-size`` bytes each, see :mod:`client.tools.perf_http`), all partitions at once, until
``--messages`` records have arrived or none has for ``--timeout`` ms. Then it prints Kafka's
header and line::

    start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec

Bytes are the records' key and value bytes, as Kafka counts them. There is no consumer group
to join, so ``rebalance.time.ms`` is 0 and the fetch time is the whole run. As in Kafka, the
records of the last answers are all counted, so the count may pass ``--messages`` a little.
With ``--show-detailed-stats`` a line per ``--reporting-interval`` is printed instead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from client.client import KraftClient, TransportError
from client.protocol import ApiError
from client.security import ClientSecurity
from client.tools import common
from client.tools.perf_http import LeaderRouter

TOOL = "kraft-consumer-perf-test"

# Kafka's defaults: --timeout 10 s without a record ends the test; --fetch-size 1 MiB;
# --reporting-interval 5 s.
TIMEOUT_MS_DEFAULT = 10_000
FETCH_BYTES_DEFAULT = 1024 * 1024
REPORTING_INTERVAL_MS_DEFAULT = 5_000
# The node's bounds on one fetch (server FETCH_MAX_BYTES_MAX, FETCH_MAX_RECORDS_MAX).
FETCH_BYTES_MAX = 64 * 1024 * 1024
FETCH_RECORDS_MAX = 10_000
# A partition with nothing new is long-polled this long: the node answers as soon as a record
# is there, and the short wait lets the --timeout check run several times a second.
FETCH_WAIT_MS = 200

HEADER = (
    "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec"
    ", rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)
DETAILED_HEADER = (
    "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec"
    ", rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)
_GROUPS = "{flag} is not supported yet (consumer groups come later); every partition is read"
_REFUSED: dict[str, str] = {
    "--group": _GROUPS,
    "--include": "{flag} is not supported yet; name one topic with --topic",
    "--command-property": "{flag} is not supported yet (consumer settings come with groups)",
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
    return ConsumerPerfCommand(
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
        security=common.load_security(args.command_config),
    )


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


def b64_size(encoded: str | None) -> int:
    """The byte count behind a base64 text, without decoding it."""
    if not encoded:
        return 0
    padding = 2 if encoded.endswith("==") else 1 if encoded.endswith("=") else 0
    return len(encoded) * 3 // 4 - padding


def answer_bytes(records: list[dict[str, Any]]) -> int:
    """Key plus value bytes of a ``format=binary`` fetch answer's records."""
    total = 0
    for record in records:
        total += b64_size(record.get("key_b64")) + b64_size(record.get("value_b64"))
    return total


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


class _Consumer:
    def __init__(self, cmd: ConsumerPerfCommand, router: LeaderRouter) -> None:
        self.cmd = cmd
        self.router = router
        self.count = 0
        self.bytes = 0
        self.last_consumed_s = time.monotonic()
        self.done = asyncio.Event()
        self.error: BaseException | None = None
        self.last_report_s = self.last_consumed_s
        self.last_report_count = 0
        self.last_report_bytes = 0

    def _counted(self, records: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        self.last_consumed_s = now
        self.count += len(records)
        self.bytes += answer_bytes(records)
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
                ),
                flush=True,
            )
            self.last_report_s = now
            self.last_report_count = self.count
            self.last_report_bytes = self.bytes
        if self.count >= self.cmd.messages:
            self.done.set()

    async def _read(self, partition: int) -> None:
        offset: int | str = "latest" if self.cmd.from_latest else "earliest"
        try:
            while not self.done.is_set():
                # Each partition asks for its share of what is missing, so the partitions'
                # last answers together pass --messages by little.
                share = -(-(self.cmd.messages - self.count) // len(self.router.partitions))
                remaining = max(1, min(FETCH_RECORDS_MAX, share))
                _status, raw = await self.router.request(
                    "GET",
                    partition,
                    {
                        "offset": str(offset),
                        "max_records": str(remaining),
                        "max_bytes": str(self.cmd.fetch_bytes),
                        "timeout_ms": str(FETCH_WAIT_MS),
                        "format": "binary",
                    },
                    wait_ms=FETCH_WAIT_MS,
                )
                answer = orjson.loads(raw)
                records = answer.get("records") or []
                offset = int(answer.get("next_offset", offset))
                if records and not self.done.is_set():
                    self._counted(records)
        except (ApiError, TransportError, orjson.JSONDecodeError, ValueError) as exc:
            self.error = exc
            self.done.set()

    async def _watch_timeout(self) -> None:
        timeout_s = self.cmd.timeout_ms / 1000
        while not self.done.is_set():
            idle_s = time.monotonic() - self.last_consumed_s
            if idle_s > timeout_s:
                self.done.set()
                return
            try:
                await asyncio.wait_for(self.done.wait(), timeout_s - idle_s + 0.001)
            except TimeoutError:
                pass

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._read(p)) for p in self.router.partitions]
        tasks.append(asyncio.create_task(self._watch_timeout()))
        try:
            await self.done.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def run_test(cmd: ConsumerPerfCommand) -> int:
    """Runs the test and prints Kafka's lines; returns the exit code."""
    if not cmd.hide_header:
        print(DETAILED_HEADER if cmd.show_detailed_stats else HEADER, flush=True)
    async with (
        KraftClient(cmd.bootstrap, security=cmd.security) as client,
        LeaderRouter(client, cmd.topic, cmd.security) as router,
    ):
        start_ms = int(time.time() * 1000)
        try:
            await router.refresh()
        except ApiError as exc:
            common.print_error(f"{cmd.topic}: {common.error_text(exc)}")
            return common.EXIT_ERROR
        consumer = _Consumer(cmd, router)
        await consumer.run()
        end_ms = int(time.time() * 1000)
        if consumer.error is not None:
            common.print_error(common.error_text(consumer.error))
            return common.EXIT_ERROR
        if consumer.count < cmd.messages:
            print(timeout_warning(cmd.timeout_ms), flush=True)
        if not cmd.show_detailed_stats:
            print(summary_line(start_ms, end_ms, consumer.bytes, consumer.count, 0), flush=True)
    return common.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd
    return common.run(lambda: run_test(cmd))


if __name__ == "__main__":
    sys.exit(main())
