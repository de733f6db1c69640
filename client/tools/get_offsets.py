"""kraft-get-offsets: Kafka's kafka-get-offsets.sh (GetOffsetShell) against our cluster.

Prints ``topic:partition:offset`` for every partition the filters select, sorted as Kafka sorts
them (by the text ``topic-partition``)::

    kraft-get-offsets --bootstrap-server localhost:9092 --topic news --time -1
    news:0:42
    news:1:17

``--time`` is ``-1``/``latest`` (the high watermark), ``-2``/``earliest`` (the log start) or a
timestamp in ms (the first offset whose record is at or after it; a partition with none is left
out, as Kafka leaves it out). Kafka's ``-3``/``max-timestamp`` and the tiered-storage specs are
refused by name: there is no per-record max-timestamp index and no tiered storage.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass

from client.admin import AsyncAdmin, TopicPartition, admin_options
from client.client import TransportError
from client.protocol import UNKNOWN_TOPIC, ApiError
from client.security import ClientSecurity
from client.tools import common

TOOL = "kraft-get-offsets"
INT32_MAX = 2**31 - 1
# Kafka's TOPIC_PARTITION_PATTERN: an optional topic regex, then ':' and a partition, a range
# 'lower-upper' (upper exclusive), 'lower-' or '-upper'.
_RULE = re.compile(r"([^:,]*)(?::(?:([0-9]*)|(?:([0-9]*)-([0-9]*))))?")
_UNSUPPORTED_TIMES = {
    "-3": "max-timestamp",
    "max-timestamp": "max-timestamp",
    "-4": "earliest-local",
    "earliest-local": "earliest-local",
    "-5": "latest-tiered",
    "latest-tiered": "latest-tiered",
}
_TIME_HELP = (
    "Please use -1 or latest / -2 or earliest / -3 or max-timestamp / -4 or earliest-local / "
    "-5 or latest-tiered, or a specified long format timestamp"
)


class TerseError(Exception):
    """Kafka's TerseException: printed as "Error occurred: <message>", exit 1."""


@dataclass(frozen=True)
class Rule:
    """One topic-partition filter: a topic regex and a partition range [lower, upper)."""

    topic: re.Pattern[str]
    lower: int = 0
    upper: int = INT32_MAX

    def allows_topic(self, name: str) -> bool:
        return self.topic.fullmatch(name) is not None

    def allows(self, tp: TopicPartition) -> bool:
        return self.allows_topic(tp.topic) and self.lower <= tp.partition < self.upper


@dataclass(frozen=True)
class GetOffsetsCommand:
    bootstrap: str
    rules: tuple[Rule, ...]
    partitions: frozenset[int] = frozenset()  # --partitions: empty = all
    time: str | int = "latest"
    exclude_internal: bool = False
    security: ClientSecurity | None = None
    admin_settings: tuple[tuple[str, int], ...] = ()


def include_list(raw: str) -> re.Pattern[str]:
    """Kafka's IncludeList: ',' separates alternatives, blanks and surrounding quotes go."""
    cleaned = raw.strip().replace(",", "|").replace(" ", "")
    cleaned = re.sub(r"^[\"']+", "", cleaned)
    cleaned = re.sub(r"[\"']+$", "", cleaned)
    try:
        return re.compile(cleaned)
    except re.error as exc:
        raise TerseError(f"{raw} is an invalid regex: {exc}") from None


def _int32(text: str) -> int:
    value = int(text)
    if value > INT32_MAX:
        raise TerseError(f'For input string: "{text}"')
    return value


def parse_rules(text: str) -> tuple[Rule, ...]:
    """Kafka's createTopicPartitionFilterWithPatternList."""
    rules = []
    for spec in text.split(","):
        match = _RULE.fullmatch(spec)
        if match is None:
            raise TerseError(f"Invalid rule specification: {spec}")
        topic, single, lower, upper = (g or None for g in match.groups())
        regex = include_list(topic) if topic is not None else re.compile(".*")
        if single is not None:
            value = _int32(single)
            rules.append(Rule(regex, value, value + 1))
        else:
            rules.append(
                Rule(
                    regex,
                    _int32(lower) if lower is not None else 0,
                    _int32(upper) if upper is not None else INT32_MAX,
                )
            )
    return tuple(rules)


def parse_partitions(text: str | None) -> frozenset[int]:
    if not text:
        return frozenset()
    try:
        return frozenset(int(p) for p in text.split(","))
    except ValueError:
        raise TerseError(
            "--partitions expects a comma separated list of numeric partition ids, but "
            f"received: {text}"
        ) from None


def parse_time(text: str) -> str | int:
    """Kafka's parseOffsetSpec: ``earliest``, ``latest`` or a timestamp in ms."""
    if text in _UNSUPPORTED_TIMES:
        raise TerseError(
            f"--time {text} ({_UNSUPPORTED_TIMES[text]}) is not supported: only -1/latest, "
            "-2/earliest and timestamps are"
        )
    if text in ("earliest", "latest"):
        return text
    if not re.fullmatch(r"[+-]?[0-9]{1,19}", text) or not -(2**63) <= int(text) < 2**63:
        raise TerseError(f"Malformed time argument {text}. {_TIME_HELP}")
    value = int(text)
    if value == -2:
        return "earliest"
    if value == -1:
        return "latest"
    if value < 0:
        raise TerseError(f"Malformed time argument {text}. {_TIME_HELP}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(
        TOOL, "An interactive shell for getting topic-partition offsets.", refused={}
    )
    parser.add_argument(
        "--bootstrap-server",
        metavar="HOST1:PORT1,...",
        help="REQUIRED. The server(s) to connect to in the form HOST1:PORT1,HOST2:PORT2.",
    )
    parser.add_argument(
        "--topic-partitions",
        metavar="topic1:1,topic2:0-3,topic3,topic4:5-,topic5:-3",
        help="Comma separated list of topic-partition patterns to get the offsets for.",
    )
    parser.add_argument(
        "--topic",
        help="The topic to get the offsets for. It also accepts a regular expression. If not "
        "present, all topics are queried.",
    )
    parser.add_argument(
        "--partitions", metavar="IDS", help="Comma separated list of partition ids."
    )
    parser.add_argument(
        "--time",
        default="latest",
        metavar="<timestamp> / -1 or latest / -2 or earliest",
        help="timestamp of the offsets before that (default latest).",
    )
    common.add_config_flags(parser, "--command-config", what="Admin Client")
    parser.add_argument(
        "--exclude-internal-topics",
        action="store_true",
        help="By default, internal topics are included. If specified, internal topics are "
        "excluded.",
    )
    return parser


def parse_command(argv: list[str]) -> GetOffsetsCommand:
    """The command a command line asks for; TerseError or common.UsageError (exit 1) with
    Kafka's message, SystemExit(2) for an unknown flag."""
    parser = build_parser()
    if not argv:
        raise common.UsageError(
            parser.format_usage() + "An interactive shell for getting topic-partition offsets."
        )
    args = parser.parse_args(argv)
    if not args.bootstrap_server:
        raise common.UsageError('Missing required argument "[bootstrap-server]"')
    common.check_bootstrap(args.bootstrap_server)
    if args.topic_partitions is not None and (
        args.topic is not None or args.partitions is not None
    ):
        raise TerseError("--topic-partitions cannot be used with --topic or --partitions")
    time_spec = parse_time(args.time)
    if args.topic_partitions is not None:
        rules = parse_rules(args.topic_partitions)
        partitions: frozenset[int] = frozenset()
    else:
        rules = (Rule(include_list(args.topic if args.topic is not None else ".*")),)
        partitions = parse_partitions(args.partitions)
    security, props = common.load_client_config(args.command_config)
    try:
        settings = admin_options(props)
    except ValueError as exc:
        raise common.UsageError(str(exc)) from None
    return GetOffsetsCommand(
        bootstrap=args.bootstrap_server,
        rules=rules,
        partitions=partitions,
        time=time_spec,
        exclude_internal=args.exclude_internal_topics,
        security=security,
        admin_settings=tuple(sorted(settings.items())),
    )


def select(cmd: GetOffsetsCommand, partition_counts: dict[str, int]) -> list[TopicPartition]:
    """The partitions the command's filters allow, from each topic's partition count."""
    out: list[TopicPartition] = []
    for topic in sorted(partition_counts):
        for index in range(partition_counts[topic]):
            tp = TopicPartition(topic, index)
            if any(rule.allows(tp) for rule in cmd.rules) and (
                not cmd.partitions or index in cmd.partitions
            ):
                out.append(tp)
    return out


def offset_lines(offsets: dict[TopicPartition, int | None]) -> list[str]:
    """Kafka's ``topic:partition:offset`` lines, in the order of ``str(TopicPartition)``;
    a partition without an offset (no record at or after the time) is left out."""
    found = [(tp, o) for tp, o in offsets.items() if o is not None]
    return [f"{tp.topic}:{tp.partition}:{o}" for tp, o in sorted(found, key=lambda e: str(e[0]))]


async def execute(cmd: GetOffsetsCommand, admin: AsyncAdmin) -> list[str]:
    """The lines to print; raises TerseError when no partition matches."""
    topics = await admin.list_topics(include_internal=not cmd.exclude_internal)
    wanted = [t for t in topics if any(rule.allows_topic(t) for rule in cmd.rules)]
    counts: dict[str, int] = {}
    for topic in wanted:
        try:
            counts[topic] = len((await admin.describe_topic(topic)).get("partitions") or [])
        except ApiError as exc:
            if exc.code != UNKNOWN_TOPIC.code:  # deleted since it was listed
                raise
    partitions = select(cmd, counts)
    if not partitions:
        raise TerseError("Could not match any topic-partitions with the specified filters")
    results = await asyncio.gather(
        *(admin.list_offsets(tp.topic, tp.partition, cmd.time) for tp in partitions),
        return_exceptions=True,
    )
    offsets: dict[TopicPartition, int | None] = {}
    for tp, result in zip(partitions, results, strict=True):
        if isinstance(result, ApiError):
            # Kafka skips a partition whose offsets cannot be read, saying so.
            common.print_error(
                f"Skip getting offsets for topic-partition {tp} due to error: "
                + common.error_text(result)
            )
        elif isinstance(result, BaseException):
            raise result
        else:
            offsets[tp] = result
    return offset_lines(offsets)


def main(argv: list[str] | None = None) -> int:
    try:
        cmd = common.parse_argv(argv, parse_command)
    except TerseError as exc:
        common.print_error(f"Error occurred: {exc}")
        return common.EXIT_ERROR
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        async with AsyncAdmin(
            cmd.bootstrap, security=cmd.security, **dict(cmd.admin_settings)
        ) as admin:
            try:
                for line in await execute(cmd, admin):
                    print(line, flush=True)
            except (ApiError, TerseError, TransportError) as exc:
                common.print_error(f"Error occurred: {common.error_text(exc)}")
                return common.EXIT_ERROR
        return common.EXIT_OK

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
