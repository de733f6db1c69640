"""kraft-console-producer: Kafka's kafka-console-producer.sh against our cluster's HTTP API.

Reads standard input line by line and sends each line as one record, as Kafka's
LineMessageReader does (same properties: ``parse.key``, ``key.separator`` (tab),
``parse.headers``, ``headers.delimiter``, ``headers.separator``, ``headers.key.separator``,
``ignore.error``, ``null.marker``). A ``>`` prompt is printed to stdout before each line is
read, even when stdin is a pipe (Kafka before 3.7 did so; later versions print it only on a
terminal). Records go to the topic endpoint, so the node picks a keyed record's partition with
Kafka's murmur2 and spreads the others.

Lines already waiting on stdin are sent together as one request, in order; lines typed on a
terminal arrive one by one and are sent one by one. A line the reader cannot parse stops the
tool with Kafka's message and exit 1; the lines before it are sent first, nothing of it is.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from client import limits
from client.client import KraftClient, TransportError
from client.protocol import (
    LEADER_NOT_AVAILABLE,
    NOT_LEADER_OR_FOLLOWER,
    TOO_MANY_REQUESTS,
    ApiError,
)
from client.security import ClientSecurity
from client.tools import common
from client.tools.line_reader import LineError, LineSplitter, ReaderConfig, decode_line, parse_line

TOOL = "kraft-console-producer"
ACKS_VALUES = ("all", "-1", "0", "1")
PRODUCER_PROPERTIES = frozenset({"acks", "request.timeout.ms"})
# Errors the node answers before storing anything, so sending again cannot duplicate a record.
_RETRY_BEFORE_APPEND = frozenset(
    {LEADER_NOT_AVAILABLE.code, TOO_MANY_REQUESTS.code, NOT_LEADER_OR_FOLLOWER.code}
)


@dataclass(frozen=True)
class ProducerCommand:
    bootstrap: str
    topic: str
    reader: ReaderConfig
    acks: str = "all"
    timeout_ms: int | None = None
    sync: bool = False
    security: ClientSecurity | None = None  # --producer.config / --command-config


# ---------------------------------------------------------------------------------------------
# Pure: the command line and error lines
# ---------------------------------------------------------------------------------------------


def send_error_line(topic: str, record: dict[str, Any], message: str) -> str:
    """Kafka's ErrorLoggingCallback line for a record that could not be sent."""

    def size(name: str) -> str:
        if record.get(name) is None and record.get(f"{name}_b64") is None:
            return "null"
        if f"{name}_b64" in record:
            return f"{len(base64.b64decode(record[f'{name}_b64']))} bytes"
        return f"{len(str(record[name]).encode('utf-8', 'surrogateescape'))} bytes"

    return (
        f"Error when sending message to topic {topic} with key: {size('key')}, value: "
        f"{size('value')} with error: {message}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(
        TOOL, "This tool helps to read data from standard input and publish it to the cluster."
    )
    parser.add_argument(
        "--bootstrap-server",
        metavar="HOST:PORT",
        help="REQUIRED unless --broker-list is given: the node(s) to connect to.",
    )
    common.add_config_flags(parser, "--producer.config", "--command-config", what="producer")
    parser.add_argument(
        "--broker-list",
        metavar="HOST:PORT",
        help="DEPRECATED, use --bootstrap-server; ignored if it is given.",
    )
    parser.add_argument("--topic", help="REQUIRED: the topic to produce messages to.")
    parser.add_argument(
        "--property",
        action="append",
        metavar="KEY=VALUE",
        help="Reader properties: parse.key, key.separator, parse.headers, "
        "headers.delimiter, headers.separator, headers.key.separator, "
        "ignore.error, null.marker.",
    )
    parser.add_argument(
        "--producer-property",
        action="append",
        metavar="KEY=VALUE",
        help="Producer properties: acks, request.timeout.ms.",
    )
    parser.add_argument(
        "--request-required-acks",
        metavar="ACKS",
        help="The acks of each request: all (-1, the default), 1 or 0.",
    )
    parser.add_argument(
        "--request-timeout-ms",
        type=int,
        metavar="MS",
        help="How long the node may wait for acks=all before answering.",
    )
    parser.add_argument(
        "--sync", action="store_true", help="Send each line as its own request, one at a time."
    )
    return parser


def parse_command(argv: list[str]) -> ProducerCommand:
    """The producer's settings from a command line, checked as Kafka's ConsoleProducer does;
    raises UsageError (exit 1), or SystemExit(2) from argparse for an unknown flag."""
    args = build_parser().parse_args(argv)
    common.check_refused(TOOL, args)
    if args.topic is None:
        raise common.UsageError('Missing required argument "[topic]"')
    bootstrap = args.bootstrap_server or args.broker_list
    if not bootstrap:
        raise common.UsageError("Missing required option(s) [bootstrap-server]")
    common.check_bootstrap(bootstrap)
    reader = ReaderConfig.from_properties(common.parse_key_values(args.property))
    security, file_props = common.load_client_config(args.command_config)
    # As Kafka's: the file's acks and request.timeout.ms, overridden by --producer-property.
    producer_props = {k: v for k, v in file_props.items() if k in PRODUCER_PROPERTIES}
    producer_props |= common.parse_key_values(args.producer_property)
    unknown = sorted(set(producer_props) - PRODUCER_PROPERTIES)
    if unknown:
        raise common.UsageError(
            f"--producer-property {unknown[0]} is not supported; supported: "
            + ", ".join(sorted(PRODUCER_PROPERTIES))
        )
    # As in Kafka, an explicit --request-required-acks wins over --producer-property acks.
    acks = args.request_required_acks or producer_props.get("acks", "all")
    if acks not in ACKS_VALUES:
        raise common.UsageError(
            f"Invalid value {acks} for configuration acks: String must be one of: all, -1, 0, 1"
        )
    timeout_ms = args.request_timeout_ms
    if timeout_ms is None and "request.timeout.ms" in producer_props:
        try:
            timeout_ms = int(producer_props["request.timeout.ms"])
        except ValueError:
            raise common.UsageError(
                "Invalid value for configuration request.timeout.ms: Not a number of type INT"
            ) from None
    if timeout_ms is not None and timeout_ms <= 0:
        raise common.UsageError("request.timeout.ms must be a positive number of milliseconds")
    return ProducerCommand(
        bootstrap=bootstrap,
        topic=args.topic,
        reader=reader,
        acks="all" if acks == "-1" else acks,
        timeout_ms=timeout_ms,
        sync=args.sync,
        security=security,
    )


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


class StdinLines:
    """Lines of standard input, read by a daemon thread so the event loop never blocks on it.

    The thread uses ``os.read`` on the file descriptor, not ``sys.stdin``: a daemon thread
    parked inside a buffered reader would hold its lock and make interpreter shutdown abort
    on Ctrl+C. It hands chunks of lines to the loop with ``call_soon_threadsafe`` (no
    coroutine is created on its side, so none is left un-awaited when the tool exits while it
    reads), at most ``STDIN_CHUNKS_AHEAD`` ahead of the sender: a huge file piped in is read
    only as fast as it is sent.
    """

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._chunks: deque[list[bytes] | None] = deque()
        self._arrived = asyncio.Event()
        self._slots = threading.Semaphore(limits.STDIN_CHUNKS_AHEAD)
        self._pending: deque[bytes] = deque()
        self._eof = False
        threading.Thread(target=self._read, name="stdin-reader", daemon=True).start()

    # -- the reader thread ---------------------------------------------------------------------

    def _put(self, item: list[bytes] | None) -> None:
        self._slots.acquire()
        self._loop.call_soon_threadsafe(self._deliver, item)

    def _read(self) -> None:
        splitter = LineSplitter()
        try:
            while True:
                chunk = os.read(self._fd, limits.STDIN_READ_BYTES)
                if not chunk:
                    break
                lines = splitter.feed(chunk)
                if lines:
                    self._put(lines)
            rest = splitter.finish()
            if rest:
                self._put(rest)
            self._put(None)
        except RuntimeError:
            pass  # the event loop is closed: the tool is exiting, nobody wants more lines
        except OSError:
            try:  # stdin failed: end of input, as far as the sender is concerned
                self._put(None)
            except RuntimeError:
                pass

    # -- the event loop ------------------------------------------------------------------------

    def _deliver(self, item: list[bytes] | None) -> None:
        self._chunks.append(item)
        self._arrived.set()

    def _take(self) -> list[bytes] | None:
        item = self._chunks.popleft()
        self._slots.release()
        if item is None:
            self._eof = True
        return item

    async def next_lines(self, max_lines: int, max_bytes: int) -> list[bytes] | None:
        """At least one line (waiting for it), plus those already read, within the bounds;
        None at end of input."""
        while not self._pending and not self._eof:
            while not self._chunks:
                self._arrived.clear()
                await self._arrived.wait()
            self._pending.extend(self._take() or [])
        if not self._pending:
            return None
        while self._chunks and not self._eof and len(self._pending) < max_lines:
            self._pending.extend(self._take() or [])
        taken: list[bytes] = []
        size = 0
        while self._pending and len(taken) < max_lines:
            line = self._pending[0]
            if taken and size + len(line) > max_bytes:
                break
            taken.append(self._pending.popleft())
            size += len(line)
        return taken


def _prompt() -> None:
    sys.stdout.write(">")
    sys.stdout.flush()


async def send(client: KraftClient, cmd: ProducerCommand, records: list[dict[str, Any]]) -> None:
    """Sends records as one request, retrying errors the node answers before storing anything
    (until ``RETRY_DEADLINE_S``); raises ApiError or TransportError otherwise, and _SendFailed
    when the node stored some records but refused others."""
    deadline = time.monotonic() + limits.RETRY_DEADLINE_S
    while True:
        try:
            answer = await client.produce(
                cmd.topic, records, acks=cmd.acks, timeout_ms=cmd.timeout_ms
            )
        except ApiError as exc:
            if exc.code not in _RETRY_BEFORE_APPEND or time.monotonic() > deadline:
                raise
            wait_s = exc.extra.get("retry_after_s", limits.RETRY_BACKOFF_S)
            await asyncio.sleep(min(float(wait_s), limits.RETRY_AFTER_MAX_S))
            continue
        for index, result in enumerate(answer.get("offsets") or []):
            if isinstance(result, dict) and "error_code" in result:
                failed = ApiError.from_json(result, None)
                raise _SendFailed(records[min(index, len(records) - 1)], failed)
        return


class _SendFailed(Exception):
    def __init__(self, record: dict[str, Any], error: ApiError) -> None:
        super().__init__(error.message)
        self.record = record
        self.error = error


async def produce_lines(cmd: ProducerCommand, client: KraftClient, lines: StdinLines) -> int:
    """Reads, parses and sends until end of input; returns the exit code."""
    max_lines = 1 if cmd.sync else limits.PRODUCE_BATCH_RECORDS_MAX
    line_number = 0
    _prompt()
    while True:
        batch = await lines.next_lines(max_lines, limits.PRODUCE_BATCH_BYTES_MAX)
        if batch is None:
            return common.EXIT_OK
        records: list[dict[str, Any]] = []
        bad: LineError | None = None
        for raw in batch:
            line_number += 1
            try:
                records.append(parse_line(decode_line(raw), line_number, cmd.reader))
            except LineError as exc:
                bad = exc
                break
        if records:
            try:
                await send(client, cmd, records)
            except _SendFailed as exc:
                common.print_error(
                    send_error_line(cmd.topic, exc.record, common.error_text(exc.error))
                )
                return common.EXIT_ERROR
            except (ApiError, TransportError) as exc:
                common.print_error(send_error_line(cmd.topic, records[0], common.error_text(exc)))
                return common.EXIT_ERROR
        for _ in records:
            _prompt()
        if bad is not None:
            common.print_error(str(bad))
            return common.EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        async with KraftClient(cmd.bootstrap, security=cmd.security) as client:
            return await produce_lines(cmd, client, StdinLines())

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
