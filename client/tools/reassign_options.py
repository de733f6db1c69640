"""kraft-reassign-partitions' command line: Kafka's ReassignPartitionsCommandOptions and the
checks of its validateAndParseArgs (exactly one action; the arguments each action needs and
those it may take; --bootstrap-server or, for --cancel and --list, --bootstrap-controller),
with Kafka's messages. Pure: nothing here reads a file other than --command-config."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from client.admin import admin_options
from client.security import ClientSecurity
from client.tools import common

TOOL = "kraft-reassign-partitions"
DESCRIPTION = "This tool helps to move topic partitions between replicas."

ACTIONS = ("generate", "execute", "verify", "cancel", "list")
# Kafka's validateAndParseArgs: the arguments each action needs, and those it may take.
REQUIRED: dict[str, tuple[str, ...]] = {
    "verify": ("reassignment-json-file",),
    "generate": ("topics-to-move-json-file", "broker-list"),
    "execute": ("reassignment-json-file",),
    "cancel": ("reassignment-json-file",),
    "list": (),
}
PERMITTED: dict[str, tuple[str, ...]] = {
    "verify": ("bootstrap-server", "command-config", "preserve-throttles"),
    "generate": ("bootstrap-server", "broker-list", "command-config", "disable-rack-aware"),
    "execute": (
        "additional",
        "bootstrap-server",
        "command-config",
        "throttle",
        "replica-alter-log-dirs-throttle",
        "timeout",
        "disallow-replication-factor-change",
    ),
    "cancel": ("bootstrap-server", "command-config", "preserve-throttles", "timeout"),
    "list": ("bootstrap-server", "command-config"),
}
# --bootstrap-controller takes the place of --bootstrap-server for these (Kafka's rule).
CONTROLLER_ACTIONS = ("cancel", "list")

LOG_DIRS_THROTTLE_REFUSED = (
    "--replica-alter-log-dirs-throttle is not supported: each node has one log directory "
    "(log.dirs), so replicas never move between directories"
)


@dataclass(frozen=True)
class ReassignCommand:
    action: str
    bootstrap: str
    reassignment_file: str | None = None
    topics_file: str | None = None
    broker_list: str | None = None
    rack_aware: bool = True
    throttle: int = -1
    additional: bool = False
    preserve_throttles: bool = False
    disallow_rf_change: bool = False
    security: ClientSecurity | None = None
    admin_settings: dict[str, int] = field(default_factory=dict)


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(TOOL, DESCRIPTION, {})
    for action, text in (
        (
            "verify",
            "Verify if the reassignment completed as specified by the "
            "--reassignment-json-file option. If there is a throttle engaged for the replicas "
            "specified, and the rebalance has completed, the throttle will be removed",
        ),
        (
            "generate",
            "Generate a candidate partition reassignment configuration. Note that "
            "this only generates a candidate assignment, it does not execute it.",
        ),
        (
            "execute",
            "Kick off the reassignment as specified by the --reassignment-json-file option.",
        ),
        ("cancel", "Cancel an active reassignment."),
        ("list", "List all active partition reassignments."),
    ):
        parser.add_argument(f"--{action}", action="store_true", help=text)
    parser.add_argument(
        "--bootstrap-server", metavar="HOST:PORT", help="the server(s) to use for bootstrapping."
    )
    parser.add_argument(
        "--bootstrap-controller",
        metavar="HOST:PORT",
        help="The controller to use for reassignment (--cancel and --list only); any node "
        "answers here, so it is used as --bootstrap-server is.",
    )
    common.add_config_flags(parser, "--command-config", what="Admin Client")
    parser.add_argument(
        "--reassignment-json-file",
        metavar="FILE",
        help='The JSON file with the partition reassignment configuration: {"partitions": '
        '[{"topic": "foo", "partition": 1, "replicas": [1,2,3], "log_dirs": ["any","any",'
        '"any"]}], "version": 1}. "log_dirs" is optional; here its entries must be "any".',
    )
    parser.add_argument(
        "--topics-to-move-json-file",
        metavar="FILE",
        help="Generate a reassignment configuration to move the partitions of the specified "
        'topics to the list of brokers specified by the --broker-list option: {"topics": '
        '[{"topic": "foo"},{"topic": "foo1"}], "version": 1}',
    )
    parser.add_argument(
        "--broker-list",
        metavar="BROKERLIST",
        help="The list of brokers to which the partitions need to be reassigned in the form "
        '"0,1,2". This is required if --topics-to-move-json-file is used to generate '
        "reassignment configuration",
    )
    parser.add_argument(
        "--disable-rack-aware", action="store_true", help="Disable rack aware replica assignment"
    )
    parser.add_argument(
        "--disallow-replication-factor-change",
        action="store_true",
        help="Denies the ability to change a partition's replication factor as part of this "
        "reassignment through adding validation against it.",
    )
    parser.add_argument(
        "--throttle",
        type=int,
        metavar="BYTES_PER_S",
        help="The movement of partitions between brokers will be throttled to this value "
        "(bytes/sec). This option can be included with --execute when a reassignment is "
        "started, and it can be altered by resubmitting the current reassignment along with "
        "the --additional flag. The throttle rate should be at least 1 KB/s.",
    )
    parser.add_argument(
        "--replica-alter-log-dirs-throttle",
        type=int,
        metavar="BYTES_PER_S",
        help="Refused: each node has one log directory.",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        metavar="MS",
        help="The maximum time in ms to wait for log directory replica assignment to begin "
        "(accepted for Kafka's command lines; there are no log directory moves here).",
    )
    parser.add_argument(
        "--additional",
        action="store_true",
        help="Execute this reassignment in addition to any other ongoing ones. This option "
        "can also be used to change the throttle of an ongoing reassignment.",
    )
    parser.add_argument(
        "--preserve-throttles",
        action="store_true",
        help="Do not modify broker or topic throttles.",
    )
    return parser


def _given(args: argparse.Namespace) -> list[str]:
    """The flags given, by Kafka's option names."""
    names = []
    for name, value in vars(args).items():
        if name == "version":
            continue
        # `is`, not `in`: a --throttle of 0 is given (0 == False in Python).
        if value is not None and value is not False:
            names.append(name.replace("_", "-"))
    return names


def parse_command(argv: list[str]) -> ReassignCommand:
    """The command a command line asks for, checked as Kafka's validateAndParseArgs checks
    it (its messages). Raises UsageError (exit 1); argparse's own errors (an unknown flag, a
    throttle that is not a number) raise SystemExit(2) as usual."""
    parser = build_parser()
    if not argv:
        raise common.UsageError(parser.format_usage() + DESCRIPTION)
    args = parser.parse_args(argv)
    actions = [a for a in ACTIONS if getattr(args, a)]
    if len(actions) != 1:
        raise common.UsageError(
            "Command must include exactly one action: " + ", ".join(f"--{a}" for a in ACTIONS)
        )
    action = actions[0]
    if args.bootstrap_server and args.bootstrap_controller:
        raise common.UsageError(
            "Please don't specify both --bootstrap-server and --bootstrap-controller"
        )
    if not args.bootstrap_server and not args.bootstrap_controller:
        raise common.UsageError(
            "Please specify either --bootstrap-server or --bootstrap-controller"
        )
    given = _given(args)
    for required in REQUIRED[action]:
        if required not in given:
            raise common.UsageError(f'Missing required argument "[{required}]"')
    permitted = set(PERMITTED[action]) | set(REQUIRED[action]) | {action}
    if args.bootstrap_controller and action in CONTROLLER_ACTIONS:
        permitted = (permitted - {"bootstrap-server"}) | {"bootstrap-controller"}
    for flag in given:
        if flag not in permitted:
            raise common.UsageError(f'Option "[{flag}]" can\'t be used with action "[{action}]"')
    if args.replica_alter_log_dirs_throttle is not None:
        raise common.UsageError(LOG_DIRS_THROTTLE_REFUSED)
    bootstrap = args.bootstrap_server or args.bootstrap_controller
    common.check_bootstrap(bootstrap)
    security, props = common.load_client_config(args.command_config)
    try:
        settings = admin_options(props)
    except ValueError as exc:
        raise common.UsageError(str(exc)) from None
    return ReassignCommand(
        action=action,
        bootstrap=bootstrap,
        reassignment_file=args.reassignment_json_file,
        topics_file=args.topics_to_move_json_file,
        broker_list=args.broker_list,
        rack_aware=not args.disable_rack_aware,
        throttle=-1 if args.throttle is None else args.throttle,
        additional=args.additional,
        preserve_throttles=args.preserve_throttles,
        disallow_rf_change=args.disallow_replication_factor_change,
        security=security,
        admin_settings=settings,
    )
