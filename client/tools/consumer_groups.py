"""kraft-consumer-groups: Kafka's kafka-consumer-groups.sh against our cluster.

Same flags and the same lines as Kafka's tool::

    kraft-consumer-groups --bootstrap-server localhost:9092 --list --state
    kraft-consumer-groups --bootstrap-server localhost:9092 --describe --group g [--members
        [--verbose] | --state | --offsets]
    kraft-consumer-groups --bootstrap-server localhost:9092 --reset-offsets --group g
        --topic t[:0,1] | --all-topics  --to-earliest | --to-latest | --to-offset N |
        --shift-by N | --to-current | --to-datetime 2026-01-01T00:00:00.000 | --by-duration PT1H
        --dry-run | --execute
    kraft-consumer-groups --bootstrap-server localhost:9092 --delete --group g

Where Kafka prints an error on stdout after a blank line and still exits 0, we print its
wording on stderr and exit 1, as every kraft-* tool does. The parsing is
:func:`parse_command` (Kafka's ConsumerGroupCommandOptions.checkArgs, in its order), the lines
are client.tools.group_lines; :func:`execute` is the thin async part.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

from client.admin import AsyncAdmin, TopicPartition, admin_options
from client.client import TransportError
from client.protocol import GROUP_ID_NOT_FOUND, INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, ApiError
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
_FAILED = "Executing consumer group command failed due to "


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


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


def _out(text: str) -> None:
    print(text, flush=True)


class GroupsRun:
    """One command's run: prints Kafka's lines, counts the errors for the exit code."""

    def __init__(self, cmd: GroupsCommand, admin: AsyncAdmin) -> None:
        self.cmd = cmd
        self.admin = admin
        self.errors = 0

    def error(self, message: str) -> None:
        self.errors += 1
        common.print_error("Error: " + message)

    async def group_ids(self) -> list[str]:
        if self.cmd.all_groups:
            return [str(g["group"]) for g in await self.admin.list_groups()]
        return list(self.cmd.groups)

    async def describe_or_none(self, group: str) -> dict[str, object] | None:
        """The group's description; None (after Kafka's message) for an unknown group."""
        try:
            return await self.admin.describe_group(group)
        except ApiError as exc:
            if exc.code == GROUP_ID_NOT_FOUND.code:
                return None
            if exc.code == INVALID_GROUP_ID.code:
                self.error(f"'{group}' is not valid.")
                return {}
            raise

    # -- --list --------------------------------------------------------------------------------

    async def list_groups(self) -> None:
        groups = await self.admin.list_groups()
        if self.cmd.state:
            wanted = lines.parse_states(self.cmd.state)
            groups = [g for g in groups if g.get("state") in wanted]
        if self.cmd.types:
            kinds = lines.parse_types(self.cmd.types)
            groups = [g for g in groups if str(g.get("type", "consumer")).lower() in kinds]
        for line in lines.list_lines(
            groups,
            include_type=self.cmd.types is not None,
            include_state=self.cmd.state is not None,
        ):
            _out(line)

    # -- --describe ----------------------------------------------------------------------------

    async def coordinator_text(self, coordinator_id: object) -> str:
        for broker in (await self.admin.describe_cluster()).get("brokers") or []:
            if isinstance(broker, dict) and broker.get("id") == coordinator_id:
                url = str(broker.get("url", ""))
                return f"{url.split('://', 1)[-1].rstrip('/')}  ({coordinator_id})"
        return f"{lines.MISSING}  ({coordinator_id})"

    async def describe(self) -> None:
        for group in sorted(await self.group_ids()):
            desc = await self.describe_or_none(group)
            if desc is None:
                self.error(f"Consumer group '{group}' does not exist.")
                continue
            if not desc:
                continue
            state = str(desc.get("state"))
            notice = lines.state_notice(group, state)
            if self.cmd.members:
                if notice:
                    common.print_error(notice)
                for line in lines.members_table(desc, self.cmd.verbose):
                    _out(line)
            elif self.cmd.state is not None:
                if notice:
                    common.print_error(notice)
                coordinator = await self.coordinator_text(desc.get("coordinator_id"))
                for line in lines.state_table(desc, coordinator):
                    _out(line)
            else:
                rows = lines.offset_rows(desc)
                if notice:
                    common.print_error(notice)
                if rows:
                    for line in lines.offsets_table(rows):
                        _out(line)

    # -- --reset-offsets -----------------------------------------------------------------------

    async def partitions_to_reset(self, group: str) -> list[TopicPartition]:
        if self.cmd.all_topics:
            return sorted(
                (await self.admin.list_group_offsets(group)),
                key=lambda tp: (tp.topic, tp.partition),
            )
        out: list[TopicPartition] = []
        whole: list[str] = []
        for arg in self.cmd.topics:
            topic, partitions = lines.parse_topic_arg(arg)
            if partitions is None:
                whole.append(topic)
            else:
                out += [TopicPartition(topic, p) for p in partitions]
        for topic, desc in (await self.admin.describe_topics(whole)).items():
            out += [
                TopicPartition(topic, int(p["partition"])) for p in desc.get("partitions") or []
            ]
        return out

    async def log_offsets(
        self, partitions: list[TopicPartition], spec: str | int
    ) -> dict[TopicPartition, int | None]:
        return await self.admin.list_offsets_many(partitions, spec)

    async def checked(self, wanted: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        starts = await self.log_offsets(list(wanted), "earliest")
        ends = await self.log_offsets(list(wanted), "latest")
        out: dict[TopicPartition, int] = {}
        for tp, offset in wanted.items():
            out[tp], warning = lines.clamp_offset(tp, offset, starts[tp], ends[tp])
            if warning:
                common.print_error("WARN " + warning)
        return out

    async def by_timestamp(
        self, partitions: list[TopicPartition], timestamp: int
    ) -> dict[TopicPartition, int]:
        found = await self.log_offsets(partitions, timestamp)
        empty = [tp for tp in partitions if found[tp] is None]
        for tp in empty:
            _out("")
            _out(
                f"Warn: Partition {tp.partition} from topic {tp.topic} is empty. Falling back "
                "to latest known offset."
            )
        ends = await self.log_offsets(empty, "latest")
        out: dict[TopicPartition, int] = {}
        for tp in partitions:
            offset = found[tp] if found[tp] is not None else ends[tp]
            if offset is None:
                raise common.UsageError(
                    f"Error getting offset by timestamp of topic partition: {tp}"
                )
            out[tp] = offset
        return out

    async def plan(self, group: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Kafka's prepareOffsetsToReset for one group."""
        scenario = self.cmd.scenario
        if scenario == "to-offset":
            assert self.cmd.scenario_value is not None
            return await self.checked({tp: self.cmd.scenario_value for tp in partitions})
        if scenario in ("to-earliest", "to-latest"):
            found = await self.log_offsets(partitions, scenario[3:])
            missing = [tp for tp in partitions if found[tp] is None]
            if missing:
                which = "starting" if scenario == "to-earliest" else "ending"
                raise common.UsageError(
                    f"Error getting {which} offset of topic partition: {missing[0]}"
                )
            return {tp: int(found[tp] or 0) for tp in partitions}
        if scenario == "shift-by":
            assert self.cmd.scenario_value is not None
            committed = await self.admin.list_group_offsets(group)
            try:
                wanted = lines.shift_offsets(partitions, committed, self.cmd.scenario_value)
            except lines.LineError as exc:
                raise common.UsageError(str(exc)) from None
            return await self.checked(wanted)
        if scenario == "to-datetime":
            assert self.cmd.scenario_value is not None
            return await self.by_timestamp(partitions, self.cmd.scenario_value)
        if scenario == "by-duration":
            assert self.cmd.duration_ms is not None
            now_ms = int(time.time() * 1000)
            return await self.by_timestamp(partitions, max(0, now_ms - self.cmd.duration_ms))
        assert scenario == "to-current", scenario
        committed = await self.admin.list_group_offsets(group)
        without = [tp for tp in partitions if tp not in committed]
        ends = await self.log_offsets(without, "latest")
        return {tp: committed[tp] if tp in committed else int(ends[tp] or 0) for tp in partitions}

    async def reset(self) -> None:
        plans: dict[str, dict[TopicPartition, int]] = {}
        for group in await self.group_ids():
            desc = await self.describe_or_none(group)
            if desc == {}:
                continue
            state = "Dead" if desc is None else str(desc.get("state"))
            refusal = lines.reset_refusal(group, state)
            if refusal:
                self.error(refusal)
                plans[group] = {}
                continue
            planned = await self.plan(group, await self.partitions_to_reset(group))
            if self.cmd.execute:
                try:
                    await self.admin.alter_group_offsets(group, planned)
                except ApiError as exc:
                    if exc.code != UNKNOWN_MEMBER_ID.code:
                        raise
                    # A member joined between the state check and the commit.
                    self.error(lines.reset_refusal(group, "Stable") or "")
                    plans[group] = {}
                    continue
            plans[group] = planned
        for line in lines.reset_table(plans):
            _out(line)

    # -- --delete ------------------------------------------------------------------------------

    async def delete(self) -> None:
        deleted: list[str] = []
        failed: dict[str, str] = {}
        for group in await self.group_ids():
            try:
                await self.admin.delete_group(group)
            except ApiError as exc:
                failed[group] = lines.deletion_failure(exc.code, common.error_text(exc))
                continue
            deleted.append(group)
        out, err = lines.deletion_lines(deleted, failed)
        for line in err:
            self.error(line.removeprefix("Error: "))
        for line in out:
            _out(line)


async def execute(cmd: GroupsCommand, admin: AsyncAdmin) -> int:
    """Carries out one command, printing Kafka's lines; the exit code."""
    run = GroupsRun(cmd, admin)
    if cmd.action == "list":
        await run.list_groups()
    elif cmd.action == "describe":
        await run.describe()
    elif cmd.action == "reset-offsets":
        await run.reset()
    else:
        await run.delete()
    return common.EXIT_ERROR if run.errors else common.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        settings = dict(cmd.admin_settings)
        if cmd.timeout_ms is not None:
            settings["default_api_timeout_ms"] = cmd.timeout_ms
        async with AsyncAdmin(cmd.bootstrap, security=cmd.security, **settings) as admin:
            try:
                return await execute(cmd, admin)
            except common.UsageError as exc:
                common.print_error(str(exc))
            except (ApiError, TransportError) as exc:
                common.print_error("Error: " + _FAILED + common.error_text(exc))
        return common.EXIT_ERROR

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
