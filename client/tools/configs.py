"""kraft-configs: Kafka's kafka-configs.sh (ConfigCommand) for topics and brokers.

Same flags and the same lines as Kafka's tool::

    kraft-configs --bootstrap-server localhost:9092 --entity-type topics --entity-name t \\
        --alter --add-config retention.ms=1000,cleanup.policy=[delete]
    Completed updating config for topic t.
    kraft-configs --bootstrap-server localhost:9092 --topic t --describe
    Dynamic configs for topic t are:
      retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000, ...}
    kraft-configs --bootstrap-server localhost:9092 --entity-type brokers --entity-name 1 \\
        --describe --all

Topics: describe (their own configs, or ``--all``), alter with ``--add-config`` /
``--add-config-file`` / ``--delete-config`` (Kafka's incrementalAlterConfigs: one metadata
write). Brokers: describe, and alter of the two dynamic broker configs, the replication
throttle rates (``--entity-type brokers --entity-name 1 --alter --add-config
leader.replication.throttled.rate=1000000``); the server refuses any other broker config in
Kafka's words (a broker's other configs come from its properties file at start and nothing
applies a changed one to a running node). The brokers' default entity (``--entity-default``)
cannot be altered here: set the rates per broker. The other entity types (users, clients,
ips, groups...) are refused by name.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.admin import AsyncAdmin, admin_options
from client.client import TransportError
from client.protocol import ApiError, topic_name_problem
from client.security import ClientSecurity
from client.tools import common
from storage.properties import PropertiesError, parse_properties

TOOL = "kraft-configs"
SUPPORTED_TYPES = ("topics", "brokers")
# Kafka's BrokerSupportedConfigTypes that we do not have.
OTHER_TYPES = ("clients", "users", "broker-loggers", "ips", "client-metrics", "groups")
_DEFAULT_SOURCE = {"topics": "DYNAMIC_TOPIC_CONFIG", "brokers": "DYNAMIC_BROKER_CONFIG"}
_NO_OTHER = "{flag} is not supported: only topics and brokers have configs here"
_REFUSED = {
    "--zookeeper": "--zookeeper is not supported: this cluster has no ZooKeeper; use "
    "--bootstrap-server",
    "--bootstrap-controller": "{flag} is not supported: use --bootstrap-server (every node "
    "answers admin requests)",
    "--user": _NO_OTHER,
    "--client": _NO_OTHER,
    "--ip": _NO_OTHER,
    "--group": _NO_OTHER,
    "--client-metrics": _NO_OTHER,
    "--broker-logger": _NO_OTHER,
    "--user-defaults": _NO_OTHER,
    "--client-defaults": _NO_OTHER,
    "--ip-defaults": _NO_OTHER,
}
_BROKER_DEFAULT_ALTER = (
    "--alter of the brokers' default entity is not supported: set "
    "leader.replication.throttled.rate and follower.replication.throttled.rate per broker, "
    "with --entity-name (the other broker configs are read from the properties file at start)"
)
# Kafka splits --add-config at commas and '=' outside square brackets.
_OUTSIDE_BRACKETS = r"(?=[^\]]*(?:\[|$))"
_CONFIG_KEY = re.compile(r"[a-zA-Z0-9._-]*")


@dataclass(frozen=True)
class ConfigsCommand:
    action: str  # describe | alter
    bootstrap: str
    entity_type: str
    entity_name: str | None  # None: every entity; "": the default entity (brokers)
    describe_all: bool = False
    add: tuple[tuple[str, str], ...] = ()
    delete: tuple[str, ...] = ()
    security: ClientSecurity | None = None
    admin_settings: tuple[tuple[str, int], ...] = ()


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(
        TOOL,
        "This tool helps to manipulate and describe entity config for a topic or broker",
        refused=_REFUSED,
    )
    parser.add_argument("--bootstrap-server", help="The Kafka servers to connect to.")
    common.add_config_flags(parser, "--command-config", what="Admin Client")
    parser.add_argument("--describe", action="store_true", help="List configs for the entity.")
    parser.add_argument("--alter", action="store_true", help="Alter the configuration.")
    parser.add_argument(
        "--all",
        action="store_true",
        help="List all configs for the given entity (with --describe).",
    )
    parser.add_argument("--entity-type", action="append", help="Type of entity (topics/brokers).")
    parser.add_argument(
        "--entity-name", action="append", help="Name of entity (topic name/broker id)."
    )
    parser.add_argument(
        "--entity-default", action="store_true", help="Default entity name for brokers."
    )
    parser.add_argument("--topic", help="The topic's name.")
    parser.add_argument("--broker", help="The broker's ID.")
    parser.add_argument(
        "--broker-defaults", action="store_true", help="The config defaults for all brokers."
    )
    parser.add_argument(
        "--add-config",
        help="Key Value pairs of configs to add. Square brackets can be used to group values "
        "which contain commas: 'k1=v1,k2=[v1,v2,v2],k3=v3'.",
    )
    parser.add_argument(
        "--add-config-file", metavar="FILE", help="Path to a properties file of configs to add."
    )
    parser.add_argument(
        "--delete-config", action="append", help="config keys to remove 'k1,k2' (repeatable)."
    )
    return parser


def parse_add_config(text: str) -> dict[str, str]:
    """Kafka's parseConfigsToBeAdded for ``--add-config``: 'k1=v1,k2=[a,b]'; brackets are
    dropped from values; keys may hold only [a-zA-Z0-9._-]."""
    out: dict[str, str] = {}
    for item in re.split("," + _OUTSIDE_BRACKETS, text):
        pair = re.split(r"\s*=\s*" + _OUTSIDE_BRACKETS, item)
        if len(pair) != 2:
            raise common.UsageError(
                "requirement failed: Invalid entity config: all configs to be added must be in "
                'the format "key=val".'
            )
        key, value = pair[0].strip(), re.sub(r"\[?\]?", "", pair[1]).strip()
        out[key] = value
    _check_keys(out)
    return out


def _check_keys(configs: dict[str, str]) -> None:
    for key in configs:
        if not _CONFIG_KEY.fullmatch(key):
            raise common.UsageError(f"Invalid character found for config key: {key}")


def _add_config_file(path: str) -> dict[str, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise common.UsageError(f"cannot read {path}: {why}") from None
    try:
        configs = parse_properties(text, source=path)
    except PropertiesError as exc:
        raise common.UsageError(str(exc)) from None
    _check_keys(configs)
    return configs


def _entity(args: argparse.Namespace) -> tuple[str, str | None]:
    """(entity type, name or None or "" for the default) from Kafka's two ways to say it."""
    generic = bool(args.entity_type or args.entity_name or args.entity_default)
    specific = [
        (t, n)
        for t, n in (
            ("topics", args.topic),
            ("brokers", args.broker),
            ("brokers", "" if args.broker_defaults else None),
        )
        if n is not None
    ]
    if generic and specific:
        raise common.UsageError(
            "--entity-{type,name,default} should not be used in conjunction with specific "
            "entity flags"
        )
    if specific:
        if len(specific) > 1:
            raise common.UsageError(
                "Only 'users' and 'clients' entity types may be specified together"
            )
        return specific[0]
    types = [t.strip() for t in args.entity_type or []]
    duplicated = sorted({t for t in types if types.count(t) > 1})
    if duplicated:
        raise common.UsageError("Duplicate entity type(s) specified: " + ",".join(duplicated))
    for entity_type in types:
        if entity_type not in SUPPORTED_TYPES:
            if entity_type in OTHER_TYPES:
                raise common.UsageError(
                    f"--entity-type {entity_type} is not supported: only topics and brokers "
                    "have configs here"
                )
            raise common.UsageError(
                f"Invalid entity type {entity_type}, the entity type must be one of "
                + ", ".join(SUPPORTED_TYPES)
                + " with a --bootstrap-server or --bootstrap-controller argument"
            )
    if not types:
        raise common.UsageError("At least one entity type must be specified")
    if len(types) > 1:
        raise common.UsageError("Only 'users' and 'clients' entity types may be specified together")
    names = [n for n in args.entity_name or []]
    if args.entity_default:
        names.append("")
    if len(names) > 1:
        raise common.UsageError("Exactly one entity name must be specified for every entity type")
    return types[0], (names[0] if names else None)


def parse_command(argv: list[str]) -> ConfigsCommand:
    """The command a command line asks for, checked as Kafka's ConfigCommandOptions.checkArgs;
    common.UsageError (exit 1) with Kafka's message, SystemExit(2) for an unknown flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    common.check_refused(TOOL, args, _REFUSED)
    if args.alter + args.describe != 1:
        raise common.UsageError("Command must include exactly one action: --describe, --alter")
    action = "alter" if args.alter else "describe"
    if action == "describe":
        for flag in ("add_config", "delete_config", "add_config_file"):
            if getattr(args, flag):
                raise common.UsageError(
                    f'Option "[describe]" can\'t be used with option "[{flag.replace("_", "-")}]"'
                )
    entity_type, entity_name = _entity(args)
    if not args.bootstrap_server:
        raise common.UsageError(
            "One of the required --bootstrap-server, --boostrap-controller, or --zookeeper "
            "arguments must be specified"
        )
    common.check_bootstrap(args.bootstrap_server)
    if entity_type == "brokers" and entity_name:
        if not entity_name.lstrip("-").isdigit() or not entity_name.isascii():
            raise common.UsageError(
                f"The entity name for brokers must be a valid integer broker id, but it is: "
                f"{entity_name}"
            )
    if action == "describe" and entity_name == "" and entity_type != "brokers":
        raise common.UsageError(
            f"--entity-default must not be specified with --describe of {entity_type}"
        )
    if entity_type == "topics" and entity_name:
        problem = topic_name_problem(entity_name)
        if problem:
            raise common.UsageError(problem)
    if args.all and action != "describe":
        raise common.UsageError('Option "[all]" can\'t be used with option "[alter]"')
    add: dict[str, str] = {}
    delete: list[str] = []
    if action == "alter":
        if entity_type == "brokers":
            if entity_name is None:
                raise common.UsageError(
                    "An entity-name or default entity must be specified with --alter of users, "
                    "clients, brokers or ips"
                )
            if entity_name == "":
                raise common.UsageError(_BROKER_DEFAULT_ALTER)
        if not entity_name:
            raise common.UsageError(
                f"An entity name must be specified with --alter of {entity_type}"
            )
        if args.add_config is not None and args.add_config_file is not None:
            raise common.UsageError(
                "Only one of --add-config or --add-config-file must be specified"
            )
        if args.add_config is None and args.add_config_file is None and not args.delete_config:
            raise common.UsageError(
                "At least one of --add-config, --add-config-file, or --delete-config must be "
                "specified with --alter"
            )
        if args.add_config is not None:
            add = parse_add_config(args.add_config)
        if args.add_config_file is not None:
            add = _add_config_file(args.add_config_file)
        delete = [k.strip() for item in args.delete_config or [] for k in item.split(",")]
    security, props = common.load_client_config(args.command_config)
    try:
        settings = admin_options(props)
    except ValueError as exc:
        raise common.UsageError(str(exc)) from None
    return ConfigsCommand(
        action=action,
        bootstrap=args.bootstrap_server,
        entity_type=entity_type,
        entity_name=entity_name,
        describe_all=args.all,
        add=tuple(add.items()),
        delete=tuple(delete),
        security=security,
        admin_settings=tuple(sorted(settings.items())),
    )


# ---------------------------------------------------------------------------------------------
# Kafka's lines
# ---------------------------------------------------------------------------------------------


def _value(value: object) -> str:
    return "null" if value is None else str(value)


def entry_line(entry: dict[str, Any]) -> str:
    """``  name=value sensitive=false synonyms={SOURCE:name=value, ...}``."""
    synonyms = ", ".join(
        f"{s.get('source')}:{s.get('name')}={_value(s.get('value'))}"
        for s in entry.get("synonyms") or []
        if isinstance(s, dict)
    )
    sensitive = "true" if entry.get("sensitive") else "false"
    value = _value(entry.get("value"))
    return f"  {entry.get('name')}={value} sensitive={sensitive} synonyms={{{synonyms}}}"


def describe_lines(
    entity_type: str, entity: str, entries: list[dict[str, Any]], describe_all: bool
) -> list[str]:
    """Kafka's describeResourceConfig for one entity ("" = the brokers' default entity)."""
    if entity == "":
        head = f"Default configs for {entity_type} in the cluster are:"
        wanted = [e for e in entries if e.get("source") == "DYNAMIC_DEFAULT_BROKER_CONFIG"]
    else:
        head = (
            f"{'All' if describe_all else 'Dynamic'} configs for {entity_type[:-1]} {entity} are:"
        )
        source = _DEFAULT_SOURCE[entity_type]
        wanted = entries if describe_all else [e for e in entries if e.get("source") == source]
    return [head, *(entry_line(e) for e in sorted(wanted, key=lambda e: str(e.get("name"))))]


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


async def _entities(cmd: ConfigsCommand, admin: AsyncAdmin) -> list[str]:
    if cmd.entity_name is not None:
        return [cmd.entity_name]
    if cmd.entity_type == "topics":
        return await admin.list_topics(include_internal=True)
    brokers = (await admin.describe_cluster()).get("brokers") or []
    return [str(b["id"]) for b in brokers if isinstance(b, dict)] + [""]


async def _entries(cmd: ConfigsCommand, admin: AsyncAdmin, entity: str) -> list[dict[str, Any]]:
    if cmd.entity_type == "topics":
        return await admin.describe_topic_config_entries(entity)
    if entity == "":
        # The cluster-wide dynamic defaults are in every broker's answer; ask a live one.
        brokers = (await admin.describe_cluster()).get("brokers") or []
        live = [b["id"] for b in brokers if isinstance(b, dict) and not b.get("fenced")]
        if not live:
            return []
        return await admin.describe_broker_configs(int(live[0]))
    return await admin.describe_broker_configs(int(entity))


async def execute(cmd: ConfigsCommand, admin: AsyncAdmin) -> list[str]:
    """Carries out one command; the lines to print."""
    if cmd.action == "describe":
        out: list[str] = []
        for entity in await _entities(cmd, admin):
            entries = await _entries(cmd, admin, entity)
            out += describe_lines(cmd.entity_type, entity, entries, cmd.describe_all)
        return out
    name = cmd.entity_name or ""
    brokers = cmd.entity_type == "brokers"
    if cmd.delete or not brokers:
        # Kafka's check that what is deleted is set. A broker describes itself, so it is
        # asked only for a delete: the rates of a broker that is down can still be set.
        entries = await (
            admin.describe_broker_configs(int(name))
            if brokers
            else admin.describe_topic_config_entries(name)
        )
        source = _DEFAULT_SOURCE[cmd.entity_type]
        current = {str(e.get("name")) for e in entries if e.get("source") == source}
        invalid = [k for k in cmd.delete if k not in current]
        if invalid:
            raise common.UsageError("Invalid config(s): " + ",".join(invalid))
    if brokers:
        await admin.incremental_alter_broker_configs(int(name), dict(cmd.add), list(cmd.delete))
        return [f"Completed updating config for broker {name}."]
    await admin.incremental_alter_topic_configs(name, dict(cmd.add), list(cmd.delete))
    return [f"Completed updating config for topic {name}."]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        async with AsyncAdmin(
            cmd.bootstrap, security=cmd.security, **dict(cmd.admin_settings)
        ) as admin:
            try:
                for line in await execute(cmd, admin):
                    print(line, flush=True)
            except common.UsageError as exc:
                common.print_error(str(exc))
                return common.EXIT_ERROR
            except (ApiError, TransportError) as exc:
                common.print_error(
                    f"Error while executing config command with args '{' '.join(argv)}'"
                )
                common.print_error(common.error_text(exc))
                return common.EXIT_ERROR
        return common.EXIT_OK

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
