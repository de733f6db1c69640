"""kraft-reassign-partitions: Kafka's kafka-reassign-partitions.sh against our cluster.

Same flags, files and lines as Kafka's ReassignPartitionsCommand::

    kraft-reassign-partitions --bootstrap-server localhost:9092 --generate \\
        --topics-to-move-json-file topics.json --broker-list 1,2,4
    Current partition replica assignment
    {"version":1,"partitions":[{"topic":"news","partition":0,"replicas":[1,2],...}]}

    Proposed partition reassignment configuration
    {"version":1,"partitions":[{"topic":"news","partition":0,"replicas":[4,1],...}]}
    kraft-reassign-partitions --bootstrap-server localhost:9092 --execute \\
        --reassignment-json-file plan.json --throttle 1000000
    kraft-reassign-partitions --bootstrap-server localhost:9092 --verify \\
        --reassignment-json-file plan.json
    Status of partition reassignment:
    Reassignment of partition news-0 is completed.
    ...
    kraft-reassign-partitions --bootstrap-server localhost:9092 --cancel \\
        --reassignment-json-file plan.json
    kraft-reassign-partitions --bootstrap-server localhost:9092 --list

``--execute --throttle N`` sets both replication throttle rates to N bytes/s on every broker
a move reads from or writes to, and the topics' ``leader.replication.throttled.replicas`` (the
current replicas of each moving partition) and ``follower.replication.throttled.replicas``
(the adding ones); ``--verify`` removes them all once no reassignment is left in the cluster,
and ``--cancel`` at once (neither with ``--preserve-throttles``). Moves between a node's log
directories do not exist here (one log directory per node): ``log_dirs`` other than "any" and
``--replica-alter-log-dirs-throttle`` are refused.

As in Kafka, the brokers the tool knows are the live ones (Kafka's describeCluster): a
fenced broker in ``--broker-list`` is left out of ``--generate``'s plan, and one in an
``--execute`` plan is an "Unknown broker id".

``--disallow-replication-factor-change`` (Kafka 4.1's KIP-860) is checked by the tool before
anything is sent: a partition whose new replica count differs from its current one refuses
the whole ``--execute`` (Kafka's controller refuses such partitions one by one).

The command line is parsed in :mod:`client.tools.reassign_options`; the files, checks and
lines are pure functions in :mod:`client.tools.reassignment_files`; this module talks to the
cluster.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from client.admin import AsyncAdmin, TopicPartition
from client.client import TransportError
from client.protocol import ApiError
from client.replica_assignment import PlacementError
from client.tools import common
from client.tools import reassignment_files as files
from client.tools.reassign_options import ReassignCommand, parse_command
from client.tools.reassignment_files import (
    Assignment,
    PartitionState,
    ReassignmentFileError,
    partition_names,
    plural,
)

# Kafka's names of the throttle configs (QuotaConfig).
LEADER_RATE = "leader.replication.throttled.rate"
FOLLOWER_RATE = "follower.replication.throttled.rate"
LEADER_REPLICAS = "leader.replication.throttled.replicas"
FOLLOWER_REPLICAS = "follower.replication.throttled.replicas"

CANNOT_EXECUTE_BECAUSE_OF_EXISTING = (
    "Cannot execute because there is an existing partition assignment.  Use --additional to "
    "override this and create a new partition assignment in addition to the existing one. "
    "The --additional flag can also be used to change the throttle by resubmitting the "
    "current reassignment."
)
RUN_VERIFY_WARNING = (
    "Warning: You must run --verify periodically, until the reassignment completes, to "
    "ensure the throttle is removed."
)


class TerseError(ReassignmentFileError):
    """Kafka's TerseException: printed as it is, without "Error: " before it."""


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ReassignmentFileError(f"Cannot read {path}: {why}") from None


def _out(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


# -- what the cluster holds -----------------------------------------------------------------


async def _describe(admin: AsyncAdmin, topics: set[str]) -> dict[str, dict[str, Any]]:
    """Kafka's describeTopics (the topics asked at once), its words for a topic that does not
    exist (the first by name)."""
    names = sorted(topics)
    found = await asyncio.gather(*(admin.describe_topic(t) for t in names), return_exceptions=True)
    described: dict[str, dict[str, Any]] = {}
    for topic, answer in zip(names, found, strict=True):
        if isinstance(answer, ApiError) and answer.name == "UNKNOWN_TOPIC_OR_PARTITION":
            raise ReassignmentFileError(f"Topic {topic} not found.")
        if isinstance(answer, BaseException):
            raise answer
        described[topic] = answer
    return described


def _replicas_of(description: dict[str, Any]) -> dict[int, list[int]]:
    return {
        int(p["partition"]): [int(b) for b in p["replicas"]]
        for p in description.get("partitions", [])
    }


async def _current_assignment(admin: AsyncAdmin, topics: list[str]) -> Assignment:
    described = await _describe(admin, set(topics))
    return {
        TopicPartition(topic, p): replicas
        for topic, d in described.items()
        for p, replicas in _replicas_of(d).items()
    }


async def _current_of_partitions(admin: AsyncAdmin, partitions: set[TopicPartition]) -> Assignment:
    """Kafka's getReplicaAssignmentForPartitions (the replicas, merged while moving)."""
    every = await _current_assignment(admin, sorted({tp.topic for tp in partitions}))
    missing = partitions - every.keys()
    if missing:
        raise ReassignmentFileError(
            "Unable to find partition: "
            + ", ".join(str(tp) for tp in sorted(missing, key=lambda tp: (tp.topic, tp.partition)))
        )
    return {tp: every[tp] for tp in partitions}


async def _brokers(admin: AsyncAdmin, *, live: bool) -> list[dict[str, Any]]:
    """The registered brokers by id; with ``live``, only the unfenced ones, which are what
    Kafka's describeCluster answers (so a fenced broker is an unknown one to the tool)."""
    brokers = (await admin.describe_cluster()).get("brokers", [])
    return sorted(
        (b for b in brokers if isinstance(b, dict) and not (live and b.get("fenced"))),
        key=lambda b: int(b["id"]),
    )


# -- the actions --------------------------------------------------------------------------------


async def generate(cmd: ReassignCommand, admin: AsyncAdmin) -> None:
    assert cmd.topics_file is not None and cmd.broker_list is not None
    wanted = files.parse_broker_list(cmd.broker_list)
    topics = files.check_topics_to_move(files.parse_topics_to_move(_read(cmd.topics_file)))
    current = await _current_assignment(admin, topics)
    # Kafka's getBrokerMetadata: the listed brokers the cluster knows (others are left out).
    found = [b for b in await _brokers(admin, live=True) if int(b["id"]) in wanted]
    racks: dict[int, str | None] = {
        int(b["id"]): (b.get("rack") if cmd.rack_aware else None) for b in found
    }
    rackless = sum(1 for r in racks.values() if r is None)
    if cmd.rack_aware and 0 < rackless < len(racks):
        raise ReassignmentFileError(
            "Not all brokers have rack information. Add --disable-rack-aware in command line "
            "to make replica assignment without rack information."
        )
    proposed = files.propose(current, sorted(racks), racks)
    _out(
        "Current partition replica assignment",
        files.format_reassignment(current),
        "",
        "Proposed partition reassignment configuration",
        files.format_reassignment(proposed),
    )


async def _set_throttles(
    admin: AsyncAdmin,
    ongoing: list[dict[str, Any]],
    proposed: Assignment,
    current: Assignment,
    throttle: int,
) -> None:
    """Kafka's modifyReassignmentThrottle: the topics' replica lists, then the rates."""
    moves = files.move_map(ongoing, proposed, current)
    leaders = files.leader_throttles(moves)
    followers = files.follower_throttles(moves)
    for topic in sorted(moves):
        await admin.incremental_alter_topic_configs(
            topic, {LEADER_REPLICAS: leaders[topic], FOLLOWER_REPLICAS: followers[topic]}, []
        )
    for broker in files.reassigning_brokers(moves):
        await admin.incremental_alter_broker_configs(
            broker, {LEADER_RATE: str(throttle), FOLLOWER_RATE: str(throttle)}, []
        )
    _out(f"The inter-broker throttle limit was set to {throttle} B/s")


def replication_factor_changes(
    proposed: Assignment, current: Assignment, ongoing: list[dict[str, Any]]
) -> str:
    """The --disallow-replication-factor-change refusals: Kafka's controller's words."""
    adding = {
        TopicPartition(str(r["topic"]), int(r["partition"])): len(r.get("adding_replicas") or [])
        for r in ongoing
    }
    lines = []
    for tp in sorted(proposed, key=lambda tp: (tp.topic, tp.partition)):
        before = len(current[tp]) - adding.get(tp, 0)
        if len(proposed[tp]) != before:
            lines.append(
                f"{tp}: The replication factor is changed from {before} to {len(proposed[tp])}"
            )
    return "\n".join(lines)


async def execute(cmd: ReassignCommand, admin: AsyncAdmin) -> None:
    assert cmd.reassignment_file is not None
    proposed = files.check_execute(files.parse_reassignment(_read(cmd.reassignment_file)))
    ongoing = await admin.list_partition_reassignments()
    if not cmd.additional and ongoing:
        raise TerseError(CANNOT_EXECUTE_BECAUSE_OF_EXISTING)
    known = {int(b["id"]) for b in await _brokers(admin, live=True)}
    unknown = [b for replicas in proposed.values() for b in replicas if b not in known]
    if unknown:
        raise ReassignmentFileError(f"Unknown broker id {unknown[0]}")
    current = await _current_of_partitions(admin, set(proposed))
    if cmd.disallow_rf_change:
        changes = replication_factor_changes(proposed, current, ongoing)
        if changes:
            raise TerseError(f"Error reassigning partition(s):\n{changes}")
    _out(
        "Current partition replica assignment",
        "",
        files.format_reassignment(current),
        "",
        "Save this to use as the --reassignment-json-file option during rollback",
    )
    if cmd.throttle >= 0:
        _out(RUN_VERIFY_WARNING)
        await _set_throttles(admin, ongoing, proposed, current, cmd.throttle)
    errors = await admin.alter_partition_reassignments(
        {(tp.topic, tp.partition): replicas for tp, replicas in proposed.items()}
    )
    failed = {tp: errors.get((tp.topic, tp.partition)) for tp in proposed}
    failed_lines = [
        f"{tp}: {common.error_text(e)}"
        for tp, e in sorted(failed.items(), key=lambda kv: (kv[0].topic, kv[0].partition))
        if e is not None
    ]
    if failed_lines:
        raise TerseError("Error reassigning partition(s):\n" + "\n".join(failed_lines))
    _out(
        f"Successfully started partition reassignment{plural(len(proposed))} for "
        f"{partition_names(proposed)}"
    )


async def _states(
    admin: AsyncAdmin, targets: files.Reassignment, ongoing: list[dict[str, Any]]
) -> dict[TopicPartition, PartitionState]:
    """Kafka's findPartitionReassignmentStates."""
    moving = {
        TopicPartition(str(r["topic"]), int(r["partition"])): [int(b) for b in r["replicas"]]
        for r in ongoing
    }
    states: dict[TopicPartition, PartitionState] = {}
    names = sorted({tp.topic for tp, _ in targets if tp not in moving})
    found = await asyncio.gather(*(admin.describe_topic(t) for t in names), return_exceptions=True)
    described: dict[str, dict[int, list[int]]] = {}
    for topic, answer in zip(names, found, strict=True):
        if isinstance(answer, ApiError) and answer.name == "UNKNOWN_TOPIC_OR_PARTITION":
            described[topic] = {}  # Kafka: done, with no replicas
        elif isinstance(answer, BaseException):
            raise answer
        else:
            described[topic] = _replicas_of(answer)
    for tp, target in targets:
        if tp in moving:
            states[tp] = PartitionState(moving[tp], target, False)
        else:
            states[tp] = PartitionState(described[tp.topic].get(tp.partition, []), target, True)
    return states


async def _clear_throttles(admin: AsyncAdmin, targets: files.Reassignment) -> None:
    """Kafka's clearAllThrottles: the rates on every broker of the cluster and of the file,
    the replica lists on every topic of the file."""
    # Every registered broker, fenced ones too (Kafka's tool clears the live ones only): one
    # that comes back must not keep a throttle nobody will remove.
    brokers = {int(b["id"]) for b in await _brokers(admin, live=False)}
    brokers |= {b for _, replicas in targets for b in replicas}
    _out(
        f"Clearing broker-level throttles on broker{plural(len(brokers))} "
        + ",".join(str(b) for b in sorted(brokers))
    )
    for broker in sorted(brokers):
        try:
            await admin.incremental_alter_broker_configs(broker, {}, [LEADER_RATE, FOLLOWER_RATE])
        except ApiError as exc:
            # A broker of the file that is not registered has no throttle to clear.
            if exc.status != 404:
                raise
    topics = sorted({tp.topic for tp, _ in targets})
    _out(f"Clearing topic-level throttles on topic{plural(len(topics))} " + ",".join(topics))
    for topic in topics:
        try:
            overrides = (await admin.describe_topic_configs(topic)).get("overrides", {})
        except ApiError as exc:
            if exc.name == "UNKNOWN_TOPIC_OR_PARTITION":
                continue
            raise
        # Kafka's DELETE of an unset config is a no-op; ours refuses it, so only the set ones.
        present = [n for n in (LEADER_REPLICAS, FOLLOWER_REPLICAS) if n in overrides]
        if present:
            await admin.incremental_alter_topic_configs(topic, {}, present)


async def verify(cmd: ReassignCommand, admin: AsyncAdmin) -> bool:
    """Prints the state of each partition of the file; True when none is still moving."""
    assert cmd.reassignment_file is not None
    targets = files.parse_reassignment(_read(cmd.reassignment_file))
    ongoing = await admin.list_partition_reassignments()
    states = await _states(admin, targets, ongoing)
    _out(*files.status_lines(states))
    # Kafka prints the log directory moves next: there are none here, an empty line.
    _out("")
    if not ongoing and not cmd.preserve_throttles:
        # Kafka clears only once no reassignment at all is left: a throttle may serve
        # another move it cannot tell apart.
        await _clear_throttles(admin, targets)
    return all(s.done for s in states.values())


async def cancel(cmd: ReassignCommand, admin: AsyncAdmin) -> None:
    assert cmd.reassignment_file is not None
    targets = files.parse_reassignment(_read(cmd.reassignment_file))
    wanted = {tp for tp, _ in targets}
    ongoing = await admin.list_partition_reassignments()
    active = {
        TopicPartition(str(r["topic"]), int(r["partition"]))
        for r in ongoing
        if TopicPartition(str(r["topic"]), int(r["partition"])) in wanted
    }
    if active:
        errors = await admin.alter_partition_reassignments(
            {(tp.topic, tp.partition): None for tp in active}
        )
        failed = [
            f"{tp}: {common.error_text(error)}"
            for tp in sorted(active, key=lambda tp: (tp.topic, tp.partition))
            if (error := errors.get((tp.topic, tp.partition))) is not None
        ]
        if failed:
            raise TerseError(
                f"Error cancelling partition reassignment{plural(len(failed))} for:\n"
                + "\n".join(failed)
            )
        _out(
            f"Successfully cancelled partition reassignment{plural(len(active))} for: "
            f"{partition_names(active)}"
        )
    else:
        _out("None of the specified partition reassignments are active.")
    # Kafka prints this without a line end (the next line then starts on it): a line here.
    _out("None of the specified partition moves are active.")
    if not cmd.preserve_throttles:
        await _clear_throttles(admin, targets)


async def run_command(cmd: ReassignCommand, admin: AsyncAdmin) -> int:
    """Runs one action and returns its exit code: 0, also when --verify finds a partition
    still moving (as Kafka's tool); a refusal raises instead."""
    if cmd.action == "generate":
        await generate(cmd, admin)
    elif cmd.action == "execute":
        await execute(cmd, admin)
    elif cmd.action == "verify":
        await verify(cmd, admin)
    elif cmd.action == "cancel":
        await cancel(cmd, admin)
    else:
        _out(*files.list_lines(await admin.list_partition_reassignments()))
    return common.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        async with AsyncAdmin(cmd.bootstrap, security=cmd.security, **cmd.admin_settings) as admin:
            try:
                return await run_command(cmd, admin)
            except TerseError as exc:
                common.print_error(str(exc))
            except (ReassignmentFileError, PlacementError) as exc:
                common.print_error(f"Error: {exc}")
            except (ApiError, TransportError) as exc:
                common.print_error("Error: " + common.error_text(exc))
        return common.EXIT_ERROR

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
