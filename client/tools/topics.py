"""kraft-topics: Kafka's kafka-topics.sh against our cluster's HTTP API.

Same flags and the same lines as Kafka's tool::

    kraft-topics --bootstrap-server localhost:9092 --create --topic news --partitions 3
    Created topic news.
    kraft-topics --bootstrap-server localhost:9092 --describe --topic news
    Topic: news\tTopicId: ...\tPartitionCount: 3\tReplicationFactor: 1\tConfigs:
    \tTopic: news\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1

As in Kafka, ``--topic`` is a regular expression (full match; ',' separates alternatives) for
everything but ``--create``. ``--config`` goes with ``--create`` only: as Kafka's tool, this one
refuses ``--alter --config`` and sends users to kraft-configs (``--alter --entity-type topics
--entity-name T --add-config k=v``), which changes a topic's configs.

Parsing and formatting are pure functions (:func:`parse_command`, :func:`describe_lines`);
:func:`execute` is the thin async part that talks to the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from client.client import KraftClient, TransportError
from client.protocol import TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC, ApiError, topic_name_problem
from client.security import ClientSecurity
from client.tools import common

TOOL = "kraft-topics"
ACTIONS = ("create", "list", "alter", "describe", "delete")
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
_ERROR_PREFIX = "Error while executing topic command : "
# Kafka's pointer to the tool that alters topic configs, with our tool's name.
_USE_CONFIGS_TOOL = " (To alter topic configurations, the kraft-configs tool can be used.)"


class CommandError(Exception):
    """An error Kafka prints as "Error while executing topic command : <message>"."""


@dataclass(frozen=True)
class TopicsCommand:
    action: str
    bootstrap: str
    topic: str | None = None
    partitions: int | None = None
    replication_factor: int | None = None
    configs: dict[str, str] = field(default_factory=dict)
    if_exists: bool = False
    if_not_exists: bool = False
    under_replicated: bool = False
    unavailable: bool = False
    under_min_isr: bool = False
    at_min_isr: bool = False
    with_overrides: bool = False
    exclude_internal: bool = False
    security: ClientSecurity | None = None  # --command-config


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(
        TOOL, "This tool helps to create, delete, describe, or change a topic."
    )
    parser.add_argument(
        "--bootstrap-server",
        metavar="HOST:PORT",
        help="REQUIRED: the node to connect to (host:port[,host:port])",
    )
    common.add_config_flags(parser, "--command-config", what="Admin Client")
    for action in ACTIONS:
        parser.add_argument(
            f"--{action}",
            action="store_true",
            help={
                "create": "Create a new topic.",
                "list": "List all available topics.",
                "alter": "Alter the number of partitions." + _USE_CONFIGS_TOOL,
                "describe": "List details for the given topics.",
                "delete": "Delete a topic.",
            }[action],
        )
    parser.add_argument(
        "--topic",
        help="The topic to create, alter, describe or delete. It "
        "also accepts a regular expression, except for --create.",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="Partitions of the topic being created, or its new total on --alter.",
    )
    parser.add_argument(
        "--replication-factor",
        type=int,
        metavar="R",
        help="Replicas of each partition of the topic being created.",
    )
    parser.add_argument(
        "--config",
        action="append",
        metavar="NAME=VALUE",
        help="A topic configuration override for the topic being created (repeatable). It is "
        "supported only in combination with --create." + _USE_CONFIGS_TOOL,
    )
    parser.add_argument(
        "--if-exists",
        action="store_true",
        help="With --alter, --delete or --describe: do nothing if no topic matches.",
    )
    parser.add_argument(
        "--if-not-exists",
        action="store_true",
        help="With --create: do not fail if the topic already exists.",
    )
    parser.add_argument(
        "--under-replicated-partitions",
        action="store_true",
        help="With --describe: only show under-replicated partitions.",
    )
    parser.add_argument(
        "--under-min-isr-partitions",
        action="store_true",
        help="With --describe: only show partitions whose isr count is less than the "
        "configured minimum.",
    )
    parser.add_argument(
        "--at-min-isr-partitions",
        action="store_true",
        help="With --describe: only show partitions whose isr count is equal to the configured "
        "minimum.",
    )
    parser.add_argument(
        "--unavailable-partitions",
        action="store_true",
        help="With --describe: only show partitions whose leader is not available.",
    )
    parser.add_argument(
        "--topics-with-overrides",
        action="store_true",
        help="With --describe: only show topics that have overridden configs.",
    )
    parser.add_argument(
        "--exclude-internal",
        action="store_true",
        help="Exclude internal topics when listing or describing topics.",
    )
    return parser


def _opt(name: str) -> str:
    return f'"[{name}]"'


def _parse_configs(items: list[str] | None) -> dict[str, str]:
    configs: dict[str, str] = {}
    for item in items or []:
        # Kafka splits on '=' with surrounding blanks and wants exactly two parts (Java's
        # split drops trailing empty parts, so "k=" is refused as well).
        parts = re.split(r"\s*=\s*", item)
        while parts and parts[-1] == "":
            parts.pop()
        if len(parts) != 2:
            raise common.UsageError(
                "requirement failed: Invalid topic config: all configs to be added must be in "
                'the format "key=val".'
            )
        configs[parts[0].strip()] = parts[1].strip()
    return configs


def parse_command(argv: list[str]) -> TopicsCommand:
    """The command a command line asks for, checked as Kafka's TopicCommand checks it.

    Raises UsageError (exit 1) with Kafka's message; argparse's own errors (unknown flag, a
    value that is not a number) raise SystemExit(2) as usual.
    """
    parser = build_parser()
    if not argv:
        raise common.UsageError(
            parser.format_usage() + "Create, delete, describe, or change a topic."
        )
    args = parser.parse_args(argv)
    common.check_refused(TOOL, args)
    given = {name for name in ACTIONS if getattr(args, name)}
    if len(given) != 1:
        raise common.UsageError(
            "Command must include exactly one action: --list, --describe, --create, --alter or "
            "--delete"
        )
    action = given.pop()
    if not args.bootstrap_server:
        raise common.UsageError("--bootstrap-server must be specified")
    common.check_bootstrap(args.bootstrap_server)
    if action == "describe" and args.if_exists and args.topic is None:
        raise common.UsageError("--topic or --topic-id is required to describe a topic")
    if action not in ("list", "describe") and args.topic is None:
        raise common.UsageError(f"Missing required argument {_opt('topic')}")
    if action == "alter" and args.config is not None:
        # Kafka's checkInvalidArgsSet, in its words (its option sets print as nested lists).
        raise common.UsageError(
            f'Option combination "[[bootstrap-server], [config]]" can\'t be used with option '
            f"{_opt('alter')}{_USE_CONFIGS_TOOL}"
        )
    if action == "alter" and args.partitions is None:
        raise common.UsageError(f"Missing required argument {_opt('partitions')}")

    used = {
        "config": args.config is not None,
        "partitions": args.partitions is not None,
        "replication-factor": args.replication_factor is not None,
        "under-replicated-partitions": args.under_replicated_partitions,
        "under-min-isr-partitions": args.under_min_isr_partitions,
        "at-min-isr-partitions": args.at_min_isr_partitions,
        "unavailable-partitions": args.unavailable_partitions,
        "topics-with-overrides": args.topics_with_overrides,
        "if-exists": args.if_exists,
        "if-not-exists": args.if_not_exists,
        "exclude-internal": args.exclude_internal,
    }
    # Which actions each option goes with (Kafka's checkInvalidArgs, in its order).
    allowed = {
        "config": ("create",),
        "partitions": ("alter", "create"),
        "replication-factor": ("create",),
        "under-replicated-partitions": ("describe",),
        "under-min-isr-partitions": ("describe",),
        "at-min-isr-partitions": ("describe",),
        "unavailable-partitions": ("describe",),
        "topics-with-overrides": ("describe",),
        "if-exists": ("alter", "delete", "describe"),
        "if-not-exists": ("create",),
        "exclude-internal": ("list", "describe"),
    }
    for option, actions in allowed.items():
        if used[option] and action not in actions:
            raise common.UsageError(
                f"Option {_opt(option)} can't be used with option {_opt(action)}"
            )
    if args.topics_with_overrides:
        for report in (
            "under-replicated-partitions",
            "under-min-isr-partitions",
            "at-min-isr-partitions",
            "unavailable-partitions",
        ):
            if used[report]:
                raise common.UsageError(
                    f"Option {_opt(report)} can't be used with option "
                    f"{_opt('topics-with-overrides')}"
                )
    return TopicsCommand(
        action=action,
        bootstrap=args.bootstrap_server,
        topic=args.topic,
        partitions=args.partitions,
        replication_factor=args.replication_factor,
        configs=_parse_configs(args.config),
        if_exists=args.if_exists,
        if_not_exists=args.if_not_exists,
        under_replicated=args.under_replicated_partitions,
        unavailable=args.unavailable_partitions,
        under_min_isr=args.under_min_isr_partitions,
        at_min_isr=args.at_min_isr_partitions,
        with_overrides=args.topics_with_overrides,
        exclude_internal=args.exclude_internal,
        security=common.load_security(args.command_config),
    )


# ---------------------------------------------------------------------------------------------
# Pure rules and formatting
# ---------------------------------------------------------------------------------------------


def has_collision_chars(name: str) -> bool:
    return "." in name or "_" in name


COLLISION_WARNING = (
    "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore "
    "('_') could collide. To avoid issues it is best to use either, but not both."
)


def select_topics(names: list[str], pattern: str | None, exclude_internal: bool) -> list[str]:
    """Kafka's topic selection: sorted names that fully match ``pattern`` (a regex in which ','
    separates alternatives and '"' is ignored), internal topics left out on request."""
    regex = None
    if pattern is not None:
        cleaned = pattern.strip().replace(",", "|").replace('"', "")
        try:
            regex = re.compile(cleaned)
        except re.error as exc:
            raise CommandError(f"{pattern} is an invalid regex: {exc}") from None
    selected = []
    for name in sorted(names):
        if exclude_internal and name in INTERNAL_TOPICS:
            continue
        if regex is not None and not regex.fullmatch(name):
            continue
        selected.append(name)
    return selected


def _ids(values: Any) -> str:
    return ",".join(str(v) for v in values or [])


def topic_line(desc: dict[str, Any]) -> str:
    partitions = desc.get("partitions") or []
    factor = desc.get("replication_factor")
    if factor is None and partitions:
        factor = len(partitions[0].get("replicas") or [])
    configs = desc.get("configs") or {}
    configs_text = ",".join(f"{k}={configs[k]}" for k in sorted(configs))
    topic_id = desc.get("topic_id")
    id_part = f"\tTopicId: {topic_id}" if topic_id else ""
    return (
        f"Topic: {desc.get('name')}{id_part}\tPartitionCount: {len(partitions)}"
        f"\tReplicationFactor: {factor}\tConfigs: {configs_text}"
    )


def partition_line(topic: str, part: dict[str, Any]) -> str:
    leader = part.get("leader")
    line = (
        f"\tTopic: {topic}\tPartition: {part.get('partition')}"
        f"\tLeader: {'none' if leader is None else leader}"
        f"\tReplicas: {_ids(part.get('replicas'))}\tIsr: {_ids(part.get('isr'))}"
    )
    adding, removing = part.get("adding_replicas"), part.get("removing_replicas")
    if adding or removing:
        # Kafka 4.4's TopicCommand prints both while the partition is being reassigned.
        line += f"\tAdding Replicas: {_ids(adding)}\tRemoving Replicas: {_ids(removing)}"
    return line


def is_under_replicated(part: dict[str, Any]) -> bool:
    """Kafka's isUnderReplicated: fewer ISR members than the replication factor, which for
    a partition being reassigned is its replicas less the adding ones."""
    factor = len(part.get("replicas") or []) - len(part.get("adding_replicas") or [])
    return len(part.get("isr") or []) < factor


def is_unavailable(part: dict[str, Any], live_brokers: set[int]) -> bool:
    leader = part.get("leader")
    return leader is None or leader not in live_brokers


def is_under_min_isr(part: dict[str, Any], min_isr: int) -> bool:
    """Kafka's isUnderMinIsr: no leader, or fewer ISR members than min.insync.replicas."""
    return part.get("leader") is None or len(part.get("isr") or []) < min_isr


def is_at_min_isr(part: dict[str, Any], min_isr: int) -> bool:
    """Kafka's isAtMinIsrPartitions: exactly min.insync.replicas ISR members (one more loss
    and acks=all produce stops)."""
    return len(part.get("isr") or []) == min_isr


def describe_lines(
    descs: list[dict[str, Any]],
    *,
    under_replicated: bool = False,
    unavailable: bool = False,
    under_min_isr: bool = False,
    at_min_isr: bool = False,
    with_overrides: bool = False,
    live_brokers: set[int] | None = None,
    min_isr: dict[str, int] | None = None,
) -> list[str]:
    """Kafka's --describe output for the given topic descriptions (docs/api.md's shape).

    With partition filters only the partition lines matching one of them are printed (no
    topic line), as Kafka does; with ``with_overrides`` only the topic lines of topics that
    have configs. ``min_isr`` is each topic's effective min.insync.replicas (default 1).
    """
    lines: list[str] = []
    filtered = under_replicated or unavailable or under_min_isr or at_min_isr
    for desc in descs:
        name = str(desc.get("name"))
        topic_min_isr = (min_isr or {}).get(name, 1)
        parts = sorted(desc.get("partitions") or [], key=lambda p: p.get("partition", 0))
        if not filtered and (not with_overrides or desc.get("configs")):
            lines.append(topic_line(desc))
        if with_overrides:
            continue
        for part in parts:
            if (
                not filtered
                or (under_replicated and is_under_replicated(part))
                or (unavailable and is_unavailable(part, live_brokers or set()))
                or (under_min_isr and is_under_min_isr(part, topic_min_isr))
                or (at_min_isr and is_at_min_isr(part, topic_min_isr))
            ):
                lines.append(partition_line(name, part))
    return lines


def live_broker_ids(cluster: dict[str, Any]) -> set[int]:
    return {
        b["id"]
        for b in cluster.get("brokers") or []
        if isinstance(b, dict) and b.get("alive", True) and not b.get("fenced", False)
    }


def error_line(exc: BaseException, topic: str | None = None) -> str:
    """The one line printed for a failed command (Kafka's wording where it has one)."""
    if isinstance(exc, common.UsageError):
        return str(exc)
    if isinstance(exc, ApiError) and exc.code == TOPIC_ALREADY_EXISTS.code and topic:
        return f"{_ERROR_PREFIX}Topic '{topic}' already exists."
    return _ERROR_PREFIX + common.error_text(exc)


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


def _out(line: str) -> None:
    print(line, flush=True)


async def _matching(client: KraftClient, cmd: TopicsCommand) -> list[str]:
    names = [str(t.get("name")) for t in await client.list_topics()]
    found = select_topics(names, cmd.topic, cmd.exclude_internal)
    if cmd.topic and not found and not cmd.if_exists:
        raise common.UsageError(f"Topic '{cmd.topic}' does not exist as expected")
    return found


async def _create(client: KraftClient, cmd: TopicsCommand) -> None:
    name = cmd.topic or ""
    if has_collision_chars(name):
        _out(COLLISION_WARNING)
    if cmd.replication_factor is not None and not 1 <= cmd.replication_factor <= 32767:
        raise common.UsageError("The replication factor must be between 1 and 32767 inclusive")
    if cmd.partitions is not None and cmd.partitions < 1:
        raise common.UsageError("The partitions must be greater than 0")
    problem = topic_name_problem(name)
    if problem:
        raise CommandError(problem)
    try:
        await client.create_topic(name, cmd.partitions, cmd.replication_factor, cmd.configs)
    except ApiError as exc:
        if exc.code == TOPIC_ALREADY_EXISTS.code and cmd.if_not_exists:
            return
        raise
    _out(f"Created topic {name}.")


async def _describe_all(client: KraftClient, names: list[str]) -> list[dict[str, Any]]:
    async def one(name: str) -> dict[str, Any] | None:
        try:
            return await client.describe_topic(name)
        except ApiError as exc:
            if exc.code == UNKNOWN_TOPIC.code:  # deleted since it was listed
                return None
            raise

    found = await asyncio.gather(*(one(name) for name in names))
    return [desc for desc in found if desc is not None]


async def _min_isr(client: KraftClient, names: list[str]) -> dict[str, int]:
    """Each topic's effective min.insync.replicas (its own config, else the node's default),
    which a topic description leaves out when it is not the topic's own."""

    async def one(name: str) -> tuple[str, int]:
        body = await client._dict("GET", "/v1/topics/" + quote(name, safe="") + "/configs")
        configs = body.get("configs")
        value = configs.get("min.insync.replicas") if isinstance(configs, dict) else None
        return name, int(value) if isinstance(value, (str, int)) and str(value).isdigit() else 1

    return dict(await asyncio.gather(*(one(name) for name in names)))


async def execute(cmd: TopicsCommand, client: KraftClient) -> None:
    """Carries out one command, printing Kafka's lines; raises on failure."""
    if cmd.action == "create":
        await _create(client, cmd)
    elif cmd.action == "list":
        names = [str(t.get("name")) for t in await client.list_topics()]
        for name in select_topics(names, cmd.topic, cmd.exclude_internal):
            _out(name)
    elif cmd.action == "describe":
        descs = await _describe_all(client, await _matching(client, cmd))
        live = live_broker_ids(await client.cluster()) if cmd.unavailable else None
        min_isr = (
            await _min_isr(client, [str(d.get("name")) for d in descs])
            if cmd.under_min_isr or cmd.at_min_isr
            else None
        )
        for line in describe_lines(
            descs,
            under_replicated=cmd.under_replicated,
            unavailable=cmd.unavailable,
            under_min_isr=cmd.under_min_isr,
            at_min_isr=cmd.at_min_isr,
            with_overrides=cmd.with_overrides,
            live_brokers=live,
            min_isr=min_isr,
        ):
            _out(line)
    elif cmd.action == "delete":
        for name in await _matching(client, cmd):
            await client.delete_topic(name)
    elif cmd.action == "alter":
        assert cmd.partitions is not None, "parse_command requires --partitions with --alter"
        for name in await _matching(client, cmd):
            await client.add_partitions(name, cmd.partitions)


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        async with KraftClient(cmd.bootstrap, security=cmd.security) as client:
            try:
                await execute(cmd, client)
            except (ApiError, CommandError, common.UsageError, TransportError) as exc:
                common.print_error(error_line(exc, cmd.topic))
                return common.EXIT_ERROR
        return common.EXIT_OK

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
