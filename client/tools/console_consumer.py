"""kraft-console-consumer: Kafka's kafka-console-consumer.sh on the Consumer (client/consumer.py).

Prints records as Kafka's DefaultMessageFormatter does (``--property print.key=true`` and the
rest), e.g. ``CreateTime:1700000000000\\tPartition:0\\tOffset:3\\tuser1\\tlogin website``.

With ``--group G`` (or ``group.id`` in ``--consumer-property`` or ``--consumer.config``) the
consumer joins the group, reads the partitions the coordinator gives it, and commits what it
has printed (auto commit, and at exit): a new group starts at the end of each partition, or at
the beginning with ``--from-beginning`` (``auto.offset.reset=earliest``), and a group that has
committed resumes where it stopped. Without a group every partition of the topic is read (no
throwaway ``console-consumer-NNNNN`` group is made, so nothing is committed), each with its own
long poll, concurrently; records of one partition keep their order. The start is the end of
each partition (new records only) unless ``--from-beginning``; with ``--partition``,
``--offset earliest|latest|N`` chooses it. A position that falls out of range (retention, or an
offset past the end) is reset by ``auto.offset.reset``: the earliest offset with
``--from-beginning``, else the latest. Only records below the high watermark are served, so
what is printed was committed. A node's death is ridden out: the consumer follows the new
leaders and coordinator.

At every exit once reading has begun (``--max-messages`` reached, ``--timeout-ms`` passed with
no message, Ctrl+C, an error) ``Processed a total of N messages`` goes to stderr, as in Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from dataclasses import dataclass, field
from typing import Any

from client import limits
from client.async_consumer import AsyncConsumer, IllegalStateError
from client.client import TransportError
from client.consumer_client import ConsumerTransport
from client.consumer_config import ConsumerConfig, ConsumerConfigError
from client.consumer_fetch import ConsumerRecord, NoOffsetForPartitionError, tune_collector
from client.protocol import UNKNOWN_TOPIC, ApiError
from client.security import ClientSecurity
from client.tools import common

TOOL = "kraft-console-consumer"
FORMATTER_PROPERTIES = frozenset(
    {
        "print.timestamp",
        "print.key",
        "print.offset",
        "print.partition",
        "print.headers",
        "print.value",
        "key.separator",
        "line.separator",
        "headers.separator",
        "null.literal",
    }
)
# Kafka's formatter properties we cannot honour, refused by name rather than ignored.
REFUSED_FORMATTER_PROPERTIES = {
    "print.epoch": "the fetch API does not return each record's leader epoch",
    "print.delivery": "there are no share groups",
    "key.deserializer": "keys are printed as stored",
    "value.deserializer": "values are printed as stored",
    "headers.deserializer": "header values are printed as stored",
}
_ERROR_PREFIX = "Error processing message, terminating consumer process: "


@dataclass(frozen=True)
class FormatterConfig:
    """Kafka's DefaultMessageFormatter settings (separators as bytes, as it writes them)."""

    print_timestamp: bool = False
    print_key: bool = False
    print_offset: bool = False
    print_partition: bool = False
    print_headers: bool = False
    print_value: bool = True
    key_separator: bytes = b"\t"
    line_separator: bytes = b"\n"
    headers_separator: bytes = b","
    null_literal: bytes = b"null"

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> FormatterConfig:
        for name in props:
            if name in REFUSED_FORMATTER_PROPERTIES:
                raise common.UsageError(
                    f"--property {name} is not supported: {REFUSED_FORMATTER_PROPERTIES[name]}"
                )
            if name not in FORMATTER_PROPERTIES:
                raise common.UsageError(
                    f"--property {name} is not supported; the formatter takes "
                    + ", ".join(sorted(FORMATTER_PROPERTIES))
                )

        def flag(name: str, default: bool) -> bool:
            return common.parse_bool(props[name]) if name in props else default

        def sep(name: str, default: bytes) -> bytes:
            return props[name].encode("utf-8") if name in props else default

        return cls(
            print_timestamp=flag("print.timestamp", False),
            print_key=flag("print.key", False),
            print_offset=flag("print.offset", False),
            print_partition=flag("print.partition", False),
            print_headers=flag("print.headers", False),
            print_value=flag("print.value", True),
            key_separator=sep("key.separator", b"\t"),
            line_separator=sep("line.separator", b"\n"),
            headers_separator=sep("headers.separator", b","),
            null_literal=sep("null.literal", b"null"),
        )


@dataclass(frozen=True)
class ConsumedRecord:
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True)
class ConsumerCommand:
    bootstrap: str
    topic: str
    partition: int | None = None
    # Where to start: "earliest", "latest" or an offset (only with a partition).
    start: int | str = "latest"
    # Where to go when the position is out of range (Kafka's auto.offset.reset).
    reset: str = "latest"
    max_messages: int | None = None
    timeout_ms: int | None = None
    formatter: FormatterConfig = field(default_factory=FormatterConfig)
    security: ClientSecurity | None = None  # --consumer.config / --command-config
    group: str | None = None  # --group, or group.id in the consumer properties
    # Kafka consumer properties from --consumer.config and --consumer-property (later wins),
    # security ones excepted (they are in ``security``).
    consumer_props: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Pure: parsing and formatting
# ---------------------------------------------------------------------------------------------


def format_record(record: ConsumedRecord | ConsumerRecord, cfg: FormatterConfig) -> bytes:
    """The bytes Kafka's DefaultMessageFormatter writes for one record."""
    out: list[bytes] = []

    def separator(more: bool) -> None:
        out.append(cfg.key_separator if more else cfg.line_separator)

    def or_null(data: bytes | None) -> bytes:
        return cfg.null_literal if data is None else data

    if cfg.print_timestamp:
        out.append(
            f"CreateTime:{record.timestamp}".encode() if record.timestamp >= 0 else b"NO_TIMESTAMP"
        )
        separator(
            cfg.print_partition
            or cfg.print_offset
            or cfg.print_headers
            or cfg.print_key
            or cfg.print_value
        )
    if cfg.print_partition:
        out.append(f"Partition:{record.partition}".encode())
        separator(cfg.print_offset or cfg.print_headers or cfg.print_key or cfg.print_value)
    if cfg.print_offset:
        out.append(f"Offset:{record.offset}".encode())
        separator(cfg.print_headers or cfg.print_key or cfg.print_value)
    if cfg.print_headers:
        if record.headers:
            out.append(
                cfg.headers_separator.join(
                    name.encode("utf-8") + b":" + or_null(value) for name, value in record.headers
                )
            )
        else:
            out.append(b"NO_HEADERS")
        separator(cfg.print_key or cfg.print_value)
    if cfg.print_key:
        out.append(or_null(record.key))
        separator(cfg.print_value)
    if cfg.print_value:
        out.append(or_null(record.value))
        out.append(cfg.line_separator)
    return b"".join(out)


def _b64(obj: dict[str, Any], name: str) -> bytes | None:
    if f"{name}_b64" in obj:
        encoded = obj[f"{name}_b64"]
        return None if encoded is None else base64.b64decode(encoded)
    raw = obj.get(name)  # a server that ignored format=binary: text is still exact
    return None if raw is None else str(raw).encode("utf-8")


def record_from_json(obj: dict[str, Any], partition: int) -> ConsumedRecord:
    """A record of a ``format=binary`` fetch answer (base64 key, value and header values)."""
    headers: list[tuple[str, bytes | None]] = []
    for pair in obj.get("headers") or []:
        name, value = pair[0], pair[1]
        headers.append((str(name), None if value is None else base64.b64decode(value)))
    return ConsumedRecord(
        partition=int(obj.get("partition", partition)),
        offset=int(obj["offset"]),
        timestamp=int(obj.get("timestamp", -1)),
        key=_b64(obj, "key"),
        value=_b64(obj, "value"),
        headers=tuple(headers),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(
        TOOL, "This tool helps to read data from topics and outputs it to standard output."
    )
    parser.add_argument(
        "--bootstrap-server", metavar="HOST:PORT", help="REQUIRED: the node(s) to connect to."
    )
    common.add_config_flags(parser, "--consumer.config", "--command-config", what="consumer")
    parser.add_argument("--topic", help="The topic to consume from.")
    parser.add_argument(
        "--partition",
        type=int,
        metavar="P",
        help="The partition to consume from. Consumption starts from the end "
        "of the partition unless --offset is specified.",
    )
    parser.add_argument(
        "--offset",
        metavar="OFFSET",
        help="The offset to start from (a non-negative number), or 'earliest' "
        "or 'latest' (default). Needs --partition.",
    )
    parser.add_argument("--group", metavar="GROUP", help="The consumer group id of the consumer.")
    parser.add_argument(
        "--consumer-property",
        "--command-property",
        dest="consumer_property",
        action="append",
        metavar="KEY=VALUE",
        help="A consumer property (group.id, auto.offset.reset, session.timeout.ms...); "
        "repeat the flag for several. --command-property is Kafka 4.2's name for it.",
    )
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="Start with the earliest message rather than the latest.",
    )
    parser.add_argument(
        "--max-messages",
        type=int,
        metavar="N",
        help="The number of messages to consume before exiting.",
    )
    parser.add_argument(
        "--timeout-ms",
        type=int,
        metavar="MS",
        help="Exit if no message is available for this long.",
    )
    parser.add_argument(
        "--property",
        action="append",
        metavar="KEY=VALUE",
        help="Formatter properties: print.timestamp, print.key, print.offset, "
        "print.partition, print.headers, print.value, key.separator, "
        "line.separator, headers.separator, null.literal.",
    )
    parser.add_argument(
        "--formatter-property",
        action="append",
        metavar="KEY=VALUE",
        help="The same as --property (Kafka 4.2's name for it).",
    )
    return parser


def _offset(text: str) -> int | str:
    lowered = text.lower()
    if lowered in ("earliest", "latest"):
        return lowered
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise common.UsageError(
            f"The provided offset value '{text}' is incorrect. Valid values are 'earliest', "
            "'latest', or a non-negative long."
        )
    return value


def parse_command(argv: list[str]) -> ConsumerCommand:
    """The consumer's settings from a command line, checked as Kafka's ConsoleConsumerOptions
    does; raises UsageError (exit 1), or SystemExit(2) from argparse for an unknown flag."""
    args = build_parser().parse_args(argv)
    common.check_refused(TOOL, args)
    if args.topic is None:
        raise common.UsageError("Exactly one of the following arguments is required: [topic]")
    if args.partition is not None:
        if args.from_beginning and args.offset is not None:
            raise common.UsageError(
                "Options from-beginning and offset cannot be specified together."
            )
    elif args.offset is not None:
        raise common.UsageError("The partition is required when offset is specified.")
    if not args.bootstrap_server:
        raise common.UsageError('Missing required argument "[bootstrap-server]"')
    common.check_bootstrap(args.bootstrap_server)
    if args.property and args.formatter_property:
        raise common.UsageError(
            "Options --property and --formatter-property cannot be specified together."
        )
    formatter = FormatterConfig.from_properties(
        common.parse_key_values(args.property or args.formatter_property)
    )
    security, file_props = common.load_client_config(args.command_config)
    props = {k: v for k, v in file_props.items() if not _is_security(k)}
    extra = common.parse_key_values(args.consumer_property)
    props.update(extra)
    groups = [g for g in (args.group, file_props.get("group.id"), extra.get("group.id")) if g]
    if len(set(groups)) > 1:
        raise common.UsageError(
            "The group ids provided in different places (directly using '--group', via "
            "'--consumer-property', or via '--consumer.config') do not match. Detected group "
            "ids: " + ", ".join(f"'{g}'" for g in dict.fromkeys(groups))
        )
    group = groups[0] if groups else None
    if group is not None and args.partition is not None:
        raise common.UsageError("Options group and partition cannot be specified together.")
    reset = "earliest" if args.from_beginning else "latest"
    if "auto.offset.reset" in props:
        if args.from_beginning and props["auto.offset.reset"] != "earliest":
            raise common.UsageError(
                "Can't simultaneously specify --from-beginning and 'auto.offset.reset="
                f"{props['auto.offset.reset']}', please remove one option"
            )
        reset = props["auto.offset.reset"]
    props["auto.offset.reset"] = reset
    props.pop("bootstrap.servers", None)  # --bootstrap-server wins, as in Kafka
    if group is not None:
        props["group.id"] = group
    try:
        ConsumerConfig.from_properties(
            {**props, "bootstrap.servers": args.bootstrap_server}, security
        )
    except ConsumerConfigError as exc:
        raise common.UsageError(str(exc)) from None
    start: int | str = reset if args.offset is None else _offset(args.offset)
    max_messages = (
        args.max_messages if args.max_messages is not None and args.max_messages >= 0 else None
    )
    timeout_ms = args.timeout_ms if args.timeout_ms is not None and args.timeout_ms >= 0 else None
    return ConsumerCommand(
        bootstrap=args.bootstrap_server,
        topic=args.topic,
        partition=args.partition,
        start=start,
        reset=reset,
        max_messages=max_messages,
        timeout_ms=timeout_ms,
        formatter=formatter,
        security=security,
        group=group,
        consumer_props=props,
    )


def _is_security(name: str) -> bool:
    return name == "security.protocol" or name.startswith(("ssl.", "sasl."))


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """What the closing line reports; kept outside the event loop so Ctrl+C cannot lose it."""

    started: bool = False
    count: int = 0


class ConsumerFailed(Exception):
    """Reading cannot go on; the message is printed after Kafka's prefix."""


async def _partitions(consumer: AsyncConsumer, cmd: ConsumerCommand) -> list[int]:
    try:
        known = await consumer.partitions_for_topic(cmd.topic)
    except ApiError as exc:
        if exc.code == UNKNOWN_TOPIC.code:
            raise ConsumerFailed(f"Topic '{cmd.topic}' does not exist") from None
        raise
    if cmd.partition is None:
        return known
    if cmd.partition not in known:
        raise ConsumerFailed(
            f"Partition {cmd.partition} of topic '{cmd.topic}' does not exist "
            f"(the topic has {len(known)} partition(s))"
        )
    return [cmd.partition]


async def _start(consumer: AsyncConsumer, cmd: ConsumerCommand) -> None:
    """Subscribes with a group; without one, assigns the partitions and moves to --offset."""
    if cmd.group is not None:
        # A group's topic may not exist yet (subscribing creates it), but a cluster that
        # cannot be reached is reported now rather than retried in silence.
        try:
            await consumer.partitions_for_topic(cmd.topic)
        except ApiError as exc:
            if exc.code != UNKNOWN_TOPIC.code:
                raise
        await consumer.subscribe([cmd.topic])
        return
    partitions = [(cmd.topic, p) for p in await _partitions(consumer, cmd)]
    await consumer.assign(partitions)
    if isinstance(cmd.start, int):
        for tp in partitions:
            await consumer.seek(tp, cmd.start)
    elif cmd.start != cmd.reset:
        # --offset earliest|latest differs from where an out-of-range position is reset to.
        if cmd.start == "earliest":
            await consumer.seek_to_beginning(partitions)
        else:
            await consumer.seek_to_end(partitions)


async def consume(
    cmd: ConsumerCommand, client: ConsumerTransport | None, progress: Progress
) -> int:
    """Prints records until a stop condition; returns the exit code. ``client`` replaces the
    consumer's HTTP client (tests); None uses the real one."""
    progress.started = True
    consumer = AsyncConsumer(
        {**cmd.consumer_props, "bootstrap.servers": cmd.bootstrap},
        security=cmd.security,
        transport=client,
    )
    out = sys.stdout.buffer
    try:
        await _start(consumer, cmd)
        loop = asyncio.get_running_loop()
        last_message = loop.time()
        while cmd.max_messages is None or progress.count < cmd.max_messages:
            wait_ms = limits.FETCH_WAIT_MS
            if cmd.timeout_ms is not None:
                left_ms = int((last_message + cmd.timeout_ms / 1000 - loop.time()) * 1000)
                if left_ms <= 0:
                    return common.EXIT_OK
                wait_ms = min(wait_ms, left_ms)
            left = None if cmd.max_messages is None else cmd.max_messages - progress.count
            records = await consumer.poll(wait_ms, max_records=left)
            if not records:
                continue
            last_message = loop.time()
            for record in records:
                out.write(format_record(record, cmd.formatter))
            progress.count += len(records)
            out.flush()
        return common.EXIT_OK
    except (
        ApiError,
        ConsumerFailed,
        TransportError,
        NoOffsetForPartitionError,
        IllegalStateError,
    ) as exc:
        common.print_error(_ERROR_PREFIX + common.error_text(exc))
        return common.EXIT_ERROR
    finally:
        await consumer.close()


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd
    progress = Progress()
    tune_collector()  # this process only consumes: see consumer_fetch.GC_GEN0_THRESHOLD

    async def run() -> int:
        return await consume(cmd, None, progress)

    try:
        return common.run(run)
    finally:
        if progress.started:
            common.print_error(f"Processed a total of {progress.count} messages")


if __name__ == "__main__":
    sys.exit(main())
