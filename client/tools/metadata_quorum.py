"""kraft-metadata-quorum: Kafka's kafka-metadata-quorum.sh against our cluster's HTTP API.

Same commands and lines as Kafka's tool::

    kraft-metadata-quorum --bootstrap-server localhost:9092 describe --status
    ClusterId:              MkU3OEVBNTcwNTJENDM2Qg
    LeaderId:               1
    LeaderEpoch:            3
    HighWatermark:          1042
    MaxFollowerLag:         0
    MaxFollowerLagTimeMs:   12
    CurrentVoters:          [1,2,3]
    CurrentObservers:       []

    kraft-metadata-quorum --bootstrap-server localhost:9092 describe --replication
    NodeId  LogEndOffset  Lag  LastFetchTimestamp  LastCaughtUpTimestamp  Status  (tab separated)

    kraft-metadata-quorum --bootstrap-controller localhost:9102 add-controller \
        --command-config node-6/node.properties
    Added controller 6 with directory id ... and endpoints: CONTROLLER://127.0.0.1:9103

    kraft-metadata-quorum --bootstrap-controller localhost:9102 remove-controller \
        --controller-id 1 --controller-directory-id ...
    Removed KRaft controller 1 with directory id ...

How our quorum maps onto Kafka's fields: the metadata log is pysyncobj's Raft log, so
LeaderEpoch is the Raft term, HighWatermark the commit index, and a voter's LogEndOffset its
last log index (the leader's match index for a follower). Lag is the leader's LogEndOffset less
the voter's. Timestamps are milliseconds since the epoch. What is unknown prints as -1, as Kafka
prints an unknown timestamp. Observers (broker-only nodes, and a controller that is not a voter
yet) are the nodes the leader sends the log to without counting them for a majority.

Only the quorum leader knows how far each follower's log reaches, so the tool asks the bootstrap
node who the controller (the quorum leader) is (``GET /v1/cluster``) and reads
``GET /v1/cluster/quorum`` from it; if the leader cannot be asked, it shows the bootstrap
node's own view, in which the followers' offsets are unknown.

Parsing and formatting are pure (:func:`parse_command`, :func:`status_lines`,
:func:`replication_lines`); :func:`execute` is the thin async part.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from client.client import KraftClient, TransportError
from client.protocol import LEADER_NOT_AVAILABLE, ApiError
from client.security import ClientSecurity
from client.tools import common
from client.tools.quorum_changes import (
    NewController,
    added_line,
    check_removal,
    load_controller_config,
    new_controller,
    removed_line,
)

TOOL = "kraft-metadata-quorum"
DESCRIPTION = "This tool describes kraft metadata quorum status."
UNKNOWN = -1  # what Kafka prints for an unknown timestamp; we print it for any unknown number

REPLICATION_HEADERS = (
    "NodeId",
    "LogEndOffset",
    "Lag",
    "LastFetchTimestamp",
    "LastCaughtUpTimestamp",
    "Status",
)

# Kafka's flags and commands this tool parses but refuses, with the reason ("{flag}" is the
# flag's name). Refused by name so nobody thinks the flag was honoured.
REFUSED_FLAGS: dict[str, str] = {}


class QuorumError(Exception):
    """A quorum answer that cannot be described (no leader known); one line, exit 1."""


@dataclass(frozen=True)
class QuorumCommand:
    bootstrap: str
    report: str  # "status", "replication", "add-controller" or "remove-controller"
    human_readable: bool = False
    security: ClientSecurity | None = None  # --command-config
    controller: NewController | None = None  # add-controller: from --command-config
    voter_id: int | None = None  # remove-controller --controller-id
    directory_id: str | None = None  # remove-controller --controller-directory-id
    dry_run: bool = False


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(TOOL, DESCRIPTION, REFUSED_FLAGS)
    parser.add_argument(
        "--bootstrap-server",
        metavar="HOST:PORT",
        help="A list of host/port pairs to use for establishing the connection to the Kafka "
        "cluster (any node's HTTP address).",
    )
    parser.add_argument(
        "--bootstrap-controller",
        metavar="HOST:PORT",
        help="A list of host/port pairs to use for establishing the connection to the KRaft "
        "controllers (a controller's HTTP address: our controllers answer the admin calls "
        "over HTTP, as every node).",
    )
    common.add_config_flags(parser, "--command-config", what="Admin Client")
    commands = parser.add_subparsers(
        dest="command", metavar="{describe,add-controller,remove-controller}"
    )
    add = commands.add_parser(
        "add-controller", help="Add a controller to the KRaft controller cluster"
    )
    add.add_argument(
        "--dry-run",
        action="store_true",
        help="True if we should print what would be done, but not do it.",
    )
    remove = commands.add_parser(
        "remove-controller", help="Remove a controller from the KRaft controller cluster"
    )
    remove.add_argument(
        "--controller-id", "-i", type=int, required=True, help="The id of the controller to remove."
    )
    remove.add_argument(
        "--controller-directory-id",
        "-d",
        required=True,
        help="The directory ID of the controller to remove.",
    )
    remove.add_argument(
        "--dry-run",
        action="store_true",
        help="True if we should print what would be done, but not do it.",
    )
    describe = commands.add_parser(
        "describe", help="Describe the metadata quorum info", allow_abbrev=False
    )
    describe.add_argument(
        "--status",
        action="store_true",
        help="A short summary of the quorum status and the other provides detailed "
        "information about the status of replication.",
    )
    describe.add_argument(
        "--replication",
        action="store_true",
        help="Detailed information about the status of replication",
    )
    describe.add_argument(
        "--human-readable", action="store_true", help="Human-readable output (with --replication)"
    )
    # Also accepted after the command; a separate dest, or argparse would reset the first one.
    describe.add_argument("--bootstrap-server", dest="late_bootstrap", help=argparse.SUPPRESS)
    describe.add_argument("--command-config", dest="late_command_config", help=argparse.SUPPRESS)
    return parser


def parse_command(argv: list[str]) -> QuorumCommand:
    """The command a command line asks for, checked as Kafka's MetadataQuorumCommand checks it.

    Raises UsageError (exit 1) with Kafka's message; argparse's own errors (an unknown flag)
    raise SystemExit(2) as usual.
    """
    parser = build_parser()
    if not argv:
        raise common.UsageError(parser.format_usage() + DESCRIPTION)
    args = parser.parse_args(argv)
    common.check_refused(TOOL, args, REFUSED_FLAGS)
    late = getattr(args, "late_bootstrap", None)
    given = [b for b in (args.bootstrap_server or late, args.bootstrap_controller) if b]
    if not given:
        raise common.UsageError(
            "one of the arguments --bootstrap-server --bootstrap-controller is required"
        )
    if len(given) > 1:
        raise common.UsageError(
            "argument --bootstrap-controller: not allowed with argument --bootstrap-server"
        )
    bootstrap = given[0]
    common.check_bootstrap(bootstrap)
    if args.command == "add-controller":
        if args.command_config is None:
            raise common.UsageError(
                "You must supply the configuration file of the controller you are adding when "
                "using add-controller."
            )
        security, props = load_controller_config(args.command_config)
        return QuorumCommand(
            bootstrap=bootstrap,
            report="add-controller",
            security=security,
            controller=new_controller(props),
            dry_run=args.dry_run,
        )
    if args.command == "remove-controller":
        check_removal(args.controller_id, args.controller_directory_id)
        return QuorumCommand(
            bootstrap=bootstrap,
            report="remove-controller",
            security=common.load_security(args.command_config),
            voter_id=args.controller_id,
            directory_id=args.controller_directory_id,
            dry_run=args.dry_run,
        )
    if args.command != "describe":
        raise common.UsageError(parser.format_usage() + f"{TOOL}: error: too few arguments")
    if args.status and args.replication:
        raise common.UsageError(
            "Only one of --status or --replication should be specified with describe sub-command"
        )
    if args.status and args.human_readable:
        raise common.UsageError(
            "The option --human-readable is only supported along with --replication"
        )
    if not args.status and not args.replication:
        raise common.UsageError(
            "One of --status or --replication must be specified with describe sub-command"
        )
    return QuorumCommand(
        bootstrap=bootstrap,
        report="status" if args.status else "replication",
        human_readable=args.human_readable,
        security=common.load_security(
            args.command_config or getattr(args, "late_command_config", None)
        ),
    )


# ---------------------------------------------------------------------------------------------
# Pure formatting
# ---------------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _known(value: int | None) -> int:
    return UNKNOWN if value is None else value


def voters_of(quorum: dict[str, Any]) -> list[dict[str, Any]]:
    """The voters of a quorum answer, in its order, those without an id left out."""
    voters = quorum.get("voters")
    if not isinstance(voters, list):
        return []
    return [v for v in voters if isinstance(v, dict) and _int(v.get("id")) is not None]


def observers_of(quorum: dict[str, Any]) -> list[dict[str, Any]]:
    """The observers of a quorum answer (nodes that follow the log without voting)."""
    observers = quorum.get("observers")
    if not isinstance(observers, list):
        return []
    return [o for o in observers if isinstance(o, dict) and _int(o.get("id")) is not None]


def leader_of(quorum: dict[str, Any]) -> dict[str, Any]:
    """The leader's voter entry; QuorumError when no leader is known."""
    leader_id = _int(quorum.get("leader_id"))
    if leader_id is None:
        raise QuorumError(
            "No quorum leader is known right now (the voters may be electing one); try again"
        )
    for voter in voters_of(quorum):
        if voter["id"] == leader_id:
            return voter
    raise QuorumError(f"The quorum leader {leader_id} is not among the voters the node listed")


def lag_of(voter: dict[str, Any], leader: dict[str, Any]) -> int | None:
    """Kafka's lag: the leader's log end offset less the voter's; None if either is unknown."""
    leader_end = _int(leader.get("log_end_offset"))
    end = _int(voter.get("log_end_offset"))
    return None if leader_end is None or end is None else leader_end - end


def max_follower_lag(quorum: dict[str, Any]) -> tuple[int, int]:
    """(MaxFollowerLag, MaxFollowerLagTimeMs) as Kafka computes them: from the voter with the
    smallest log end offset (the first such one; the leader itself if none is behind); -1
    each when an offset or timestamp it needs is unknown."""
    leader = leader_of(quorum)
    voters = voters_of(quorum)
    if any(_int(v.get("log_end_offset")) is None for v in voters):
        return UNKNOWN, UNKNOWN
    slowest = min(voters, key=lambda v: int(v["log_end_offset"]))
    lag = _known(lag_of(slowest, leader))
    if slowest["id"] == leader["id"]:
        return lag, 0
    leader_caught_up = _int(leader.get("last_caught_up_ms"))
    slowest_caught_up = _int(slowest.get("last_caught_up_ms"))
    if leader_caught_up is None or slowest_caught_up is None:
        return lag, UNKNOWN
    return lag, leader_caught_up - slowest_caught_up


def status_lines(quorum: dict[str, Any], cluster_id: str | None) -> list[str]:
    """Kafka's ``describe --status`` lines for a quorum answer (docs/api.md's shape)."""
    leader = leader_of(quorum)
    lag, lag_time_ms = max_follower_lag(quorum)
    voter_ids = ",".join(str(v["id"]) for v in voters_of(quorum))
    observer_ids = ",".join(str(o["id"]) for o in observers_of(quorum))
    return [
        f"ClusterId:              {cluster_id or quorum.get('cluster_id')}",
        f"LeaderId:               {leader['id']}",
        f"LeaderEpoch:            {_known(_int(quorum.get('term')))}",
        f"HighWatermark:          {_known(_int(quorum.get('commit_index')))}",
        f"MaxFollowerLag:         {lag}",
        f"MaxFollowerLagTimeMs:   {lag_time_ms}",
        f"CurrentVoters:          [{voter_ids}]",
        f"CurrentObservers:       [{observer_ids}]",
    ]


def relative_ms(timestamp_ms: int, now_ms: int, what: str) -> int:
    """How long ago ``timestamp_ms`` was; Kafka's error for a moment not in (epoch, now]."""
    if not 0 < timestamp_ms <= now_ms:
        raise QuorumError(
            "Error while computing relative time, possible drift in system clock.\n"
            f"Current timestamp is {now_ms}, {what} timestamp is {timestamp_ms}"
        )
    return now_ms - timestamp_ms


def _timestamp(value: Any, human_readable: bool, now_ms: int, what: str) -> str:
    moment = _int(value)
    if moment is None:
        return str(UNKNOWN)
    return f"{relative_ms(moment, now_ms, what)} ms ago" if human_readable else str(moment)


def replication_rows(
    quorum: dict[str, Any], *, human_readable: bool = False, now_ms: int = 0
) -> list[list[str]]:
    """One row per voter, the leader first, then the followers in the answer's order, then
    one per observer (Kafka's order)."""
    leader = leader_of(quorum)
    ordered = (
        [(leader, "Leader")]
        + [(v, "Follower") for v in voters_of(quorum) if v["id"] != leader["id"]]
        + [(o, "Observer") for o in observers_of(quorum)]
    )
    return [
        [
            str(voter["id"]),
            str(_known(_int(voter.get("log_end_offset")))),
            str(_known(lag_of(voter, leader))),
            _timestamp(voter.get("last_fetch_ms"), human_readable, now_ms, "last fetch"),
            _timestamp(voter.get("last_caught_up_ms"), human_readable, now_ms, "last caught up"),
            status,
        ]
        for voter, status in ordered
    ]


def table_lines(headers: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    """Kafka's ``prettyPrintTable``: each cell padded to its column's width, then a tab."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    return [
        "".join(cell.ljust(width) + "\t" for cell, width in zip(line, widths, strict=True))
        for line in [list(headers), *rows]
    ]


def replication_lines(
    quorum: dict[str, Any], *, human_readable: bool = False, now_ms: int = 0
) -> list[str]:
    """Kafka's ``describe --replication`` table for a quorum answer."""
    rows = replication_rows(quorum, human_readable=human_readable, now_ms=now_ms)
    return table_lines(REPLICATION_HEADERS, rows)


def controller_url(cluster: dict[str, Any]) -> str | None:
    """The HTTP URL of the controller (the quorum leader) named by ``GET /v1/cluster``."""
    controller = _int(cluster.get("controller_id"))
    # A controller-only leader is listed among the controllers, a combined one in both.
    for broker in [*(cluster.get("controllers") or []), *(cluster.get("brokers") or [])]:
        if isinstance(broker, dict) and broker.get("id") == controller and controller is not None:
            url = broker.get("url")
            return url if isinstance(url, str) and url else None
    return None


def error_line(exc: BaseException) -> str:
    """The one line (two for Kafka's clock drift message) printed for a failed command."""
    if isinstance(exc, QuorumError | common.UsageError | TransportError):
        return str(exc)
    return common.error_text(exc)


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


class QuorumClient(KraftClient):
    """The HTTP client with the one call this tool adds."""

    async def quorum(self) -> dict[str, Any]:
        """``GET /v1/cluster/quorum``: the Raft status from the answering node's view."""
        return await self._dict("GET", "/v1/cluster/quorum")

    async def add_voter(self, controller: NewController) -> dict[str, Any]:
        """``POST /v1/cluster/quorum/voters`` (Kafka's AddRaftVoter); returns once committed."""
        body = controller.body()
        return await _through_elections(
            lambda: self._dict("POST", "/v1/cluster/quorum/voters", json=body)
        )

    async def remove_voter(self, voter_id: int, directory_id: str) -> None:
        """``DELETE /v1/cluster/quorum/voters/{id}`` (Kafka's RemoveRaftVoter)."""
        await _through_elections(
            lambda: self._request(
                "DELETE",
                f"/v1/cluster/quorum/voters/{voter_id}",
                params={"directory_id": directory_id},
            )
        )


# How long add-controller and remove-controller retry a cluster that has no leader at the
# moment (an election, a leader that just handed over), as Kafka's admin client retries.
ELECTION_WAIT_S = 15.0
_ELECTION_POLL_S = 0.2
T = TypeVar("T")


async def _through_elections(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, again while the answer is LEADER_NOT_AVAILABLE (no leader known right now)
    for up to ELECTION_WAIT_S. Other refusals, REQUEST_TIMED_OUT's "not caught up" too, come
    back at once: they say what to wait for."""
    deadline = time.monotonic() + ELECTION_WAIT_S
    while True:
        try:
            return await call()
        except ApiError as e:
            if e.kind != LEADER_NOT_AVAILABLE or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(_ELECTION_POLL_S)


async def fetch_quorum(
    client: QuorumClient, connect: Callable[[str], QuorumClient] = QuorumClient
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(cluster, quorum): the quorum from its leader's view if the leader can be asked, else
    from the bootstrap node's own view."""
    cluster = await client.cluster()
    url = controller_url(cluster)
    if url is not None:
        try:
            leader = connect(url)
            async with leader:
                quorum = await leader.quorum()
            node = quorum.get("node")
            # Leadership may have moved since /v1/cluster answered: only a leader's view has
            # its followers' offsets.
            if isinstance(node, dict) and node.get("id") == quorum.get("leader_id"):
                return cluster, quorum
        except (ApiError, TransportError):
            pass  # the leader is unreachable from here: the bootstrap node's view will do
    return cluster, await client.quorum()


async def execute(
    cmd: QuorumCommand,
    client: QuorumClient,
    connect: Callable[[str], QuorumClient] = QuorumClient,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> None:
    """Carries out one command, printing Kafka's lines; raises on failure."""
    if cmd.report == "add-controller":
        assert cmd.controller is not None, "parse_command reads it"
        if not cmd.dry_run:
            await client.add_voter(cmd.controller)
        print(added_line(cmd.controller, cmd.dry_run), flush=True)
        return
    if cmd.report == "remove-controller":
        assert cmd.voter_id is not None and cmd.directory_id is not None
        if not cmd.dry_run:
            await client.remove_voter(cmd.voter_id, cmd.directory_id)
        print(removed_line(cmd.voter_id, cmd.directory_id, cmd.dry_run), flush=True)
        return
    cluster, quorum = await fetch_quorum(client, connect)
    if cmd.report == "status":
        cluster_id = cluster.get("cluster_id")
        lines = status_lines(quorum, cluster_id if isinstance(cluster_id, str) else None)
    else:
        lines = replication_lines(quorum, human_readable=cmd.human_readable, now_ms=now_ms())
    for line in lines:
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        def connect(url: str) -> QuorumClient:
            return QuorumClient(url, security=cmd.security)

        client = connect(cmd.bootstrap)
        async with client:
            try:
                await execute(cmd, client, connect)
            except (ApiError, QuorumError, TransportError) as exc:
                common.print_error(error_line(exc))
                return common.EXIT_ERROR
        return common.EXIT_OK

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
