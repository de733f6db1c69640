"""kraft-consumer-groups' command line: Kafka's flags, checked as Kafka's
ConsumerGroupCommandOptions.checkArgs checks them (in its order, with its messages).

:func:`parse_command` turns a command line into a :class:`GroupsCommand` or raises
common.UsageError (one line, exit 1); the run is client.tools.consumer_groups.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from client.admin import admin_options
from client.security import ClientSecurity
from client.tools import common
from client.tools import group_lines as lines

TOOL = "kraft-consumer-groups"
ACTIONS = ("list", "describe", "delete", "reset-offsets", "delete-offsets")
SCENARIOS = (
    "to-offset",
    "shift-by",
    "to-datetime",
    "by-duration",
    "to-earliest",
    "to-latest",
    "to-current",
    "from-file",
)
_REFUSED = {
    "--delete-offsets": "{flag} is not supported yet: the cluster has no API to delete a "
    "group's offsets of one topic; --delete removes the whole group",
    "--export": "{flag} is not supported: the reset plan is printed as a table",
    "--from-file": "{flag} is not supported: give the scenario with --to-offset, --to-earliest...",
}


@dataclass(frozen=True)
class GroupsCommand:
    action: str
    bootstrap: str
    groups: tuple[str, ...] = ()
    all_groups: bool = False
    topics: tuple[str, ...] = ()
    all_topics: bool = False
    state: str | None = None  # None: not given; "": given without a value
    types: str | None = None
    members: bool = False
    offsets: bool = False
    verbose: bool = False
    scenario: str | None = None
    scenario_value: int | None = None  # to-offset, shift-by; the timestamp of the time ones
    duration_ms: int | None = None  # by-duration: resolved against the clock when run
    execute: bool = False
    timeout_ms: int | None = None
    security: ClientSecurity | None = None
    admin_settings: dict[str, int] = field(default_factory=dict)


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(
        TOOL,
        "This tool helps to list all consumer groups, describe a consumer group, delete "
        "consumer group info, or reset consumer group offsets.",
        refused=_REFUSED,
    )
    parser.add_argument("--bootstrap-server", help="REQUIRED: The server(s) to connect to.")
    parser.add_argument(
        "--group", action="append", help="The consumer group we wish to act on (repeatable)."
    )
    parser.add_argument(
        "--topic",
        action="append",
        help="The topic whose group offsets are reset; partitions as topic1:0,1,2 (repeatable).",
    )
    parser.add_argument(
        "--all-topics",
        action="store_true",
        help="Consider all topics assigned to a group in the `reset-offsets` process.",
    )
    for action, text in (
        ("list", "List all consumer groups."),
        ("describe", "Describe consumer group and list offset lag related to given group."),
        ("delete", "Pass in groups to delete their offsets and ownership information."),
        ("reset-offsets", "Reset offsets of consumer group (the group must be inactive)."),
    ):
        parser.add_argument(f"--{action}", action="store_true", help=text)
    parser.add_argument("--all-groups", action="store_true", help="Apply to all consumer groups.")
    parser.add_argument(
        "--timeout", type=int, metavar="MS", help="How long each admin call may take (ms)."
    )
    common.add_config_flags(parser, "--command-config", what="Admin Client")
    parser.add_argument("--dry-run", action="store_true", help="Only show results (default).")
    parser.add_argument("--execute", action="store_true", help="Execute the reset.")
    parser.add_argument("--to-offset", type=int, metavar="OFFSET", help="Reset to this offset.")
    parser.add_argument(
        "--to-datetime", metavar="DATETIME", help="Format: 'YYYY-MM-DDTHH:mm:SS.sss'"
    )
    parser.add_argument("--by-duration", metavar="DURATION", help="From now back by 'PnDTnHnMnS'.")
    parser.add_argument("--to-earliest", action="store_true", help="Reset to earliest offset.")
    parser.add_argument("--to-latest", action="store_true", help="Reset to latest offset.")
    parser.add_argument("--to-current", action="store_true", help="Reset to current offset.")
    parser.add_argument(
        "--shift-by", type=int, metavar="N", help="Shift the current offset by N (+/-)."
    )
    parser.add_argument("--members", action="store_true", help="Describe members of the group.")
    parser.add_argument("--verbose", action="store_true", help="More detail with --members.")
    parser.add_argument(
        "--offsets", action="store_true", help="Describe offsets and lag (the default)."
    )
    parser.add_argument(
        "--state",
        nargs="?",
        const="",
        help="With --describe: the group's state; with --list: states (or filter by them).",
    )
    parser.add_argument(
        "--type", nargs="?", const="", help="With --list: group types (or filter by them)."
    )
    return parser


def _opt(name: str) -> str:
    return f"[{name}]"


def _given(args: argparse.Namespace, name: str) -> bool:
    value = getattr(args, name.replace("-", "_"))
    return value is not None and value is not False and value != []


def parse_command(argv: list[str]) -> GroupsCommand:
    """The command a command line asks for, checked as Kafka's checkArgs checks it; raises
    common.UsageError (exit 1) with Kafka's message, SystemExit(2) for an unknown flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    common.check_refused(TOOL, args, _REFUSED)
    if not args.bootstrap_server:
        raise common.UsageError(f'Missing required argument "{_opt("bootstrap-server")}"')
    common.check_bootstrap(args.bootstrap_server)
    scoped = bool(args.group) or args.all_groups
    if args.describe:
        if not scoped:
            raise common.UsageError(
                f"Option {_opt('describe')} takes one of these options: "
                f"{_opt('group')}, {_opt('all-groups')}"
            )
        if sum(_given(args, n) for n in ("members", "offsets", "state")) > 1:
            raise common.UsageError(
                f"Option {_opt('describe')} takes at most one of these options: "
                f"{_opt('members')}, {_opt('offsets')}, {_opt('state')}"
            )
        if args.state:
            raise common.UsageError(
                f"Option {_opt('describe')} does not take a value for {_opt('state')}"
            )
    for flag, allowed in (
        ("members", ("describe",)),
        ("verbose", ("describe",)),
        ("offsets", ("describe",)),
        ("state", ("describe", "list")),
        ("type", ("list",)),
    ):
        if _given(args, flag) and not any(_given(args, a) for a in allowed):
            raise common.UsageError(
                f"Option(s) {_opt(flag)} are unavailable given other options on the command line"
            )
    if args.delete:
        if not scoped:
            raise common.UsageError(
                f"Option {_opt('delete')} takes one of these options: "
                f"{_opt('group')}, {_opt('all-groups')}"
            )
        if args.topic:
            raise common.UsageError(
                "The consumer does not support topic-specific offset deletion from a consumer "
                "group."
            )
    scenarios = [s for s in SCENARIOS if s != "from-file" and _given(args, s)]
    if args.reset_offsets:
        if args.dry_run and args.execute:
            raise common.UsageError(
                f"Option {_opt('reset-offsets')} only accepts one of {_opt('execute')} and "
                f"{_opt('dry-run')}"
            )
        if not args.dry_run and not args.execute:
            common.print_error(
                "WARN: No action will be performed as the --execute option is missing.In a "
                "future major release, the default behavior of this command will be to prompt "
                "the user before executing the reset rather than doing a dry run. You should "
                "add the --dry-run option explicitly if you are scripting this command and want "
                "to keep the current default behavior without prompting."
            )
        if not scoped:
            raise common.UsageError(
                f"Option {_opt('reset-offsets')} takes one of these options: "
                f"{_opt('group')}, {_opt('all-groups')}"
            )
        if len(scenarios) > 1:
            raise common.UsageError(
                f'Option "{_opt(scenarios[0])}" can\'t be used with option "{_opt(scenarios[1])}"'
            )
    if args.group and args.all_groups:
        raise common.UsageError(
            f'Option "{_opt("group")}" can\'t be used with option "{_opt("all-groups")}"'
        )
    if args.group and args.list:
        raise common.UsageError(
            f'Option "{_opt("group")}" can\'t be used with option "{_opt("list")}"'
        )
    for action in ("list", "describe"):
        if args.topic and getattr(args, action):
            raise common.UsageError(
                f'Option "{_opt("topic")}" can\'t be used with option "{_opt(action)}"'
            )
    actions = [a for a in ACTIONS if a != "delete-offsets" and _given(args, a)]
    if len(actions) != 1:
        raise common.UsageError(
            "Command must include exactly one action: --list, --describe, --delete, "
            "--reset-offsets, --delete-offsets"
        )
    action = actions[0]
    scenario = None
    value: int | None = None
    duration_ms: int | None = None
    if action == "reset-offsets":
        if not scenarios:
            raise common.UsageError(
                f"Option '{_opt('reset-offsets')}' requires one of the following scenarios: "
                + ", ".join(_opt(s) for s in SCENARIOS)
            )
        if not args.topic and not args.all_topics:
            raise common.UsageError(
                "One of the reset scopes should be defined: --all-topics, --topic."
            )
        scenario = scenarios[0]
        try:
            if scenario == "to-offset":
                value = args.to_offset
            elif scenario == "shift-by":
                value = args.shift_by
            elif scenario == "to-datetime":
                value = lines.parse_datetime_ms(args.to_datetime)
            elif scenario == "by-duration":
                duration_ms = lines.parse_duration_ms(args.by_duration)
            for topic in args.topic or []:
                lines.parse_topic_arg(topic)
        except lines.LineError as exc:
            raise common.UsageError(str(exc)) from None
    try:
        if action == "list" and args.state:
            lines.parse_states(args.state)
        if action == "list" and args.type:
            lines.parse_types(args.type)
    except lines.LineError as exc:
        raise common.UsageError(str(exc)) from None
    if args.timeout is not None and args.timeout <= 0:
        raise common.UsageError("--timeout must be a positive number of milliseconds")
    security, props = common.load_client_config(args.command_config)
    try:
        settings = admin_options(props)
    except ValueError as exc:
        raise common.UsageError(str(exc)) from None
    return GroupsCommand(
        action=action,
        bootstrap=args.bootstrap_server,
        groups=tuple(args.group or ()),
        all_groups=args.all_groups,
        topics=tuple(args.topic or ()),
        all_topics=args.all_topics,
        state=args.state,
        types=args.type,
        members=args.members,
        offsets=args.offsets,
        verbose=args.verbose,
        scenario=scenario,
        scenario_value=value,
        duration_ms=duration_ms,
        execute=args.execute,
        timeout_ms=args.timeout,
        security=security,
        admin_settings=settings,
    )
