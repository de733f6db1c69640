"""kraft-console-producer: Kafka's kafka-console-producer.sh on the Python Producer.

Reads standard input line by line and sends each line as one record, as Kafka's
LineMessageReader does (same properties: ``parse.key``, ``key.separator`` (tab),
``parse.headers``, ``headers.delimiter``, ``headers.separator``, ``headers.key.separator``,
``ignore.error``, ``null.marker``). A ``>`` prompt is printed to stdout before each line is
read, even when stdin is a pipe (Kafka before 3.7 did so; later versions print it only on a
terminal).

Records go through :class:`client.producer.AsyncProducer` with Kafka's console settings
(``ConsoleProducer.producerProps``): ``--request-required-acks`` (acks, default all),
``--request-timeout-ms`` (1500), ``--message-send-max-retries`` (retries, 3),
``--retry-backoff-ms`` (100), ``--timeout`` (linger.ms, 1000), ``--batch-size`` or
``--max-partition-memory-bytes`` (batch.size, 16384), ``--max-memory-bytes`` (buffer.memory),
``--max-block-ms`` (60000), ``--metadata-expiry-ms`` (300000); a flag given on the command
line wins over ``--producer-property`` and the ``--producer.config`` file, whose settings win
over the flags' defaults. ``--compression-codec [CODEC]`` sets ``compression.type`` (none,
gzip, snappy, lz4, zstd; the flag without a value means gzip, as in Kafka). Without the flag,
``compression.type`` from ``--producer-property`` or the file applies (default none): Kafka
4.4's ConsoleProducer puts its flag's default ``none`` over them, so there only the flag
compresses. So the tool survives the death of the node it was given, as Kafka's
does: the producer knows every node once it has met the cluster, and follows leaders.

A record that cannot be sent prints Kafka's ErrorLoggingCallback line and the tool goes on
with the next lines (as Kafka's); it exits 1 at the end when any record failed. With
``--sync`` each line waits for its acknowledgement, and the first failure ends the tool. A
line the reader cannot parse stops the tool with Kafka's message and exit 1, after the lines
before it are sent; nothing of it is. Ctrl+C ends it (exit 130), after giving what was read
``CONSOLE_CLOSE_ON_INTERRUPT_S`` to be acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from client import limits
from client.client import TransportError
from client.producer import (
    AsyncProducer,
    ConfigException,
    ProducerConfig,
    ProducerTimeout,
    RecordMetadata,
)
from client.producer_config import PROPERTY_NAMES
from client.protocol import ApiError
from client.security import ClientSecurity
from client.tools import common
from client.tools.line_reader import LineError, LineSplitter, ReaderConfig, decode_line, parse_line

TOOL = "kraft-console-producer"
ACKS_VALUES = ("all", "-1", "0", "1")

# Kafka's console producer flags that set a producer property, with Kafka's defaults
# (ConsoleProducer): the flag given on the command line wins over --producer-property and
# --producer.config; the default applies only where neither set the property.
FLAG_PROPERTIES: dict[str, tuple[str, str]] = {
    # dest: (property, Kafka's default)
    "request_required_acks": ("acks", "-1"),
    "request_timeout_ms": ("request.timeout.ms", "1500"),
    "message_send_max_retries": ("retries", "3"),
    "retry_backoff_ms": ("retry.backoff.ms", "100"),
    "timeout": ("linger.ms", "1000"),
    "max_memory_bytes": ("buffer.memory", str(32 * 1024 * 1024)),
    "batch_size": ("batch.size", "16384"),
    "max_block_ms": ("max.block.ms", "60000"),
    "metadata_expiry_ms": ("metadata.max.age.ms", "300000"),
}


@dataclass(frozen=True)
class ProducerCommand:
    bootstrap: str
    topic: str
    reader: ReaderConfig
    acks: str = "all"
    timeout_ms: int | None = None  # request.timeout.ms
    sync: bool = False
    security: ClientSecurity | None = None  # --producer.config / --command-config
    # The producer's Kafka properties, merged as Kafka's ConsoleProducer merges them.
    properties: dict[str, str] = field(default_factory=dict)

    def producer_config(self) -> ProducerConfig:
        """The producer's settings (checked already by :func:`parse_command`)."""
        return ProducerConfig.from_properties(
            self.properties,
            bootstrap_servers=self.bootstrap,
            security=self.security or ClientSecurity(),
        )


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
        TOOL,
        "This tool helps to read data from standard input and publish it to the cluster.",
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
        help="Producer properties (Kafka's names: acks, linger.ms, batch.size, retries, "
        "delivery.timeout.ms, enable.idempotence...).",
    )
    flags = [
        ("--request-required-acks", "ACKS", "The acks of each request: all (-1), 1 or 0."),
        ("--request-timeout-ms", "MS", "How long the node may wait for the acks."),
        ("--message-send-max-retries", "N", "How many times a request is retried."),
        ("--retry-backoff-ms", "MS", "The wait before the first retry (it grows to 1 s)."),
        ("--timeout", "MS", "linger.ms: how long a line may wait for others to join it."),
        ("--batch-size", "BYTES", "batch.size: bytes per partition sent together."),
        ("--max-partition-memory-bytes", "BYTES", "batch.size (wins over --batch-size)."),
        ("--max-memory-bytes", "BYTES", "buffer.memory: bytes waiting to be sent."),
        ("--max-block-ms", "MS", "How long a line may wait for metadata or buffer room."),
        ("--metadata-expiry-ms", "MS", "metadata.max.age.ms."),
    ]
    for flag, metavar, text in flags:
        default = FLAG_PROPERTIES.get(flag.lstrip("-").replace("-", "_"))
        suffix = f" Default: {default[1]}." if default else ""
        parser.add_argument(flag, metavar=metavar, help=text + suffix)
    parser.add_argument(
        "--compression-codec",
        nargs="?",
        const="",
        metavar="CODEC",
        help="The compression codec: either 'none', 'gzip', 'snappy', 'lz4', or 'zstd'. If "
        "specified without value, then it defaults to 'gzip'. Without the flag, "
        "compression.type from --producer-property or --producer.config applies (default "
        "none).",
    )
    parser.add_argument(
        "--sync",
        action="store_true",
        help="Send each line and wait for its acknowledgement before reading the next.",
    )
    return parser


def _producer_properties(args: argparse.Namespace, file_props: dict[str, str]) -> dict[str, str]:
    """Kafka's merge (ConsoleProducer.producerProps): the file, then --producer-property, then
    each flag given on the command line; a flag's default only where nothing set it."""
    # A client file may hold other clients' settings too: those are left out (Kafka warns of
    # them), where an unknown --producer-property is refused.
    props = {k: v for k, v in file_props.items() if k in PROPERTY_NAMES}
    props.pop("bootstrap.servers", None)
    props |= common.parse_key_values(args.producer_property)
    if args.compression_codec is not None:
        # Kafka's ConsoleProducer.compressionCodec: no value (or an empty one) means gzip.
        props["compression.type"] = args.compression_codec or "gzip"
    if args.max_partition_memory_bytes is not None:
        # Kafka: max-partition-memory-bytes replaces batch-size when both are given.
        args.batch_size = args.max_partition_memory_bytes
    for dest, (name, default) in FLAG_PROPERTIES.items():
        given = getattr(args, dest)
        if given is not None:
            props[name] = given
        else:
            props.setdefault(name, default)
    props.setdefault("client.id", "console-producer")
    return props


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
    props = _producer_properties(args, file_props)
    acks = props["acks"].strip()
    if acks not in ACKS_VALUES:
        raise common.UsageError(
            f"Invalid value {acks} for configuration acks: String must be one of: all, -1, 0, 1"
        )
    try:
        config = ProducerConfig.from_properties(
            props, bootstrap_servers=bootstrap, security=security or ClientSecurity()
        )
    except ConfigException as exc:
        raise common.UsageError(str(exc)) from None
    return ProducerCommand(
        bootstrap=bootstrap,
        topic=args.topic,
        reader=reader,
        acks=config.acks,
        timeout_ms=config.request_timeout_ms,
        sync=args.sync,
        security=security,
        properties=props,
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


class RecordSender(Protocol):
    """What the loop needs of a producer (AsyncProducer; a fake in tests)."""

    def send(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, Any]] | None = None,
        callback: Callable[[RecordMetadata | None, BaseException | None], None] | None = None,
    ) -> Awaitable[asyncio.Future[RecordMetadata]]: ...

    def flush(self) -> Awaitable[None]: ...


def _field(record: dict[str, Any], name: str) -> bytes | str | None:
    if f"{name}_b64" in record:
        return base64.b64decode(record[f"{name}_b64"])
    value = record.get(name)
    return None if value is None else str(value)


_SEND_ERRORS = (ApiError, TransportError, ProducerTimeout, ValueError)


async def produce_lines(cmd: ProducerCommand, producer: RecordSender, lines: Any) -> int:
    """Reads, parses and sends until end of input; returns the exit code."""
    failures = 0

    def callback_for(record: dict[str, Any]) -> Any:
        # Kafka's ErrorLoggingCallback: one line per record that could not be sent.
        def done(_metadata: RecordMetadata | None, error: BaseException | None) -> None:
            nonlocal failures
            if error is not None:
                failures += 1
                common.print_error(send_error_line(cmd.topic, record, common.error_text(error)))

        return done

    line_number = 0
    _prompt()
    while True:
        batch = await lines.next_lines(limits.STDIN_BATCH_LINES_MAX, limits.STDIN_BATCH_BYTES_MAX)
        if batch is None:
            break
        for raw in batch:
            line_number += 1
            try:
                record = parse_line(decode_line(raw), line_number, cmd.reader)
            except LineError as exc:
                await producer.flush()
                common.print_error(str(exc))
                return common.EXIT_ERROR
            headers = record.get("headers")
            try:
                future = await producer.send(
                    cmd.topic,
                    _field(record, "value"),
                    _field(record, "key"),
                    headers=None if headers is None else [(n, v) for n, v in headers],
                    callback=None if cmd.sync else callback_for(record),
                )
                if cmd.sync:
                    await future
            except _SEND_ERRORS as exc:
                common.print_error(send_error_line(cmd.topic, record, common.error_text(exc)))
                if cmd.sync:
                    return common.EXIT_ERROR
                failures += 1
            _prompt()
    await producer.flush()
    return common.EXIT_ERROR if failures else common.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        producer = AsyncProducer(cmd.producer_config())
        await producer.start()
        try:
            code = await produce_lines(cmd, producer, StdinLines())
        except asyncio.CancelledError:
            # Ctrl+C: what was read gets a moment to be acknowledged, then the tool ends.
            await producer.close(limits.CONSOLE_CLOSE_ON_INTERRUPT_S)
            raise
        await producer.close()
        return code

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
