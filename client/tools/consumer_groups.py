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
wording on stderr and exit 1, as every kraft-* tool does. The command line is
client.tools.group_options (Kafka's checkArgs, in its order), the lines are
client.tools.group_lines; :func:`execute` is the thin async part.
"""

from __future__ import annotations

import sys
import time

from client.admin import AsyncAdmin, TopicPartition
from client.client import TransportError
from client.protocol import GROUP_ID_NOT_FOUND, INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, ApiError
from client.tools import common
from client.tools import group_lines as lines
from client.tools.group_options import TOOL, GroupsCommand, parse_command

__all__ = ["TOOL", "GroupsCommand", "execute", "main", "parse_command"]

_FAILED = "Executing consumer group command failed due to "


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
