"""kraft-leader-election: Kafka's kafka-leader-election.sh against our cluster's HTTP API.

Same flags and the same lines as Kafka's tool::

    kraft-leader-election --bootstrap-server localhost:9092 --election-type PREFERRED \\
        --all-topic-partitions
    Successfully completed leader election (PREFERRED) for partitions news-0, news-1
    kraft-leader-election --bootstrap-server localhost:9092 --election-type preferred \\
        --topic news --partition 2
    Valid replica already elected for partitions news-2

The partitions are named by ``--topic T --partition P``, by ``--path-to-json-file F`` (Kafka's
``{"partitions": [{"topic": "news", "partition": 0}, ...]}``), or all of them with
``--all-topic-partitions``; as in Kafka, the last one reports only the partitions that were
elected or could not be (not those already led by their preferred replica). A partition whose
preferred replica is fenced or out of its ISR is printed as an error and the tool exits 1.
Election type UNCLEAN is refused by name: unclean election is off in this cluster.

Parsing and formatting are pure functions (:func:`parse_command`, :func:`parse_election_json`,
:func:`result_lines`); :func:`main` is the thin async part that talks to the cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.client import KraftClient, TransportError
from client.protocol import ApiError
from client.security import ClientSecurity
from client.tools import common

TOOL = "kraft-leader-election"
DESCRIPTION = (
    "This tool attempts to elect a new leader for a set of topic partitions. The type of "
    "elections supported are preferred replicas and unclean replicas."
)
ELECTION_TYPES = ("preferred", "unclean")

# Kafka's flags this tool parses but refuses, with the reason ("{flag}" is the flag's name).
REFUSED_FLAGS: dict[str, str] = {}
UNCLEAN_REFUSED = (
    "Election type UNCLEAN is not supported: unclean leader election is off in this cluster "
    "(a replica outside the ISR may lack acknowledged records)"
)
# What Kafka's controller reports for a partition already led by its preferred replica.
_NOT_NEEDED = "ELECTION_NOT_NEEDED"


@dataclass(frozen=True)
class ElectionCommand:
    bootstrap: str
    election_type: str  # "PREFERRED" (the only one we run)
    # The partitions named with --topic/--partition, or None (all, or the JSON file's).
    partitions: tuple[tuple[str, int], ...] | None = None
    json_file: str | None = None
    security: ClientSecurity | None = None  # --admin.config / --command-config

    @property
    def all_partitions(self) -> bool:
        return self.partitions is None and self.json_file is None


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(TOOL, DESCRIPTION, REFUSED_FLAGS)
    parser.add_argument(
        "--bootstrap-server",
        metavar="HOST:PORT",
        help="A hostname and port for the broker to connect to, in the form host:port. "
        "Multiple comma separated URLs can be given. REQUIRED.",
    )
    common.add_config_flags(parser, "--admin.config", "--command-config", what="Admin Client")
    parser.add_argument(
        "--election-type",
        metavar="TYPE",
        help='Type of election to attempt: "preferred" (the only one supported here; '
        '"unclean" is refused). REQUIRED.',
    )
    parser.add_argument(
        "--path-to-json-file",
        metavar="FILE",
        help='The JSON file with the partitions to elect: {"partitions": [{"topic": "foo", '
        '"partition": 1}, ...]}. Not allowed with --all-topic-partitions or --topic.',
    )
    parser.add_argument(
        "--topic",
        help="Name of topic for which to perform an election. Not allowed if "
        "--path-to-json-file or --all-topic-partitions is specified.",
    )
    parser.add_argument(
        "--partition",
        type=int,
        metavar="ID",
        help="Partition id for which to perform an election. REQUIRED if --topic is specified.",
    )
    parser.add_argument(
        "--all-topic-partitions",
        action="store_true",
        help="Perform election on all of the eligible topic partitions. Not allowed if "
        "--topic or --path-to-json-file is specified.",
    )
    return parser


def parse_command(argv: list[str]) -> ElectionCommand:
    """The command a command line asks for, checked as Kafka's LeaderElectionCommand checks
    it. Raises UsageError (exit 1) with Kafka's message; argparse's own errors (an unknown
    flag, a partition that is not a number) raise SystemExit(2) as usual."""
    parser = build_parser()
    if not argv:
        raise common.UsageError(parser.format_usage() + DESCRIPTION)
    args = parser.parse_args(argv)
    missing = [
        name
        for name, value in (
            ("bootstrap-server", args.bootstrap_server),
            ("election-type", args.election_type),
        )
        if not value
    ]
    if missing:
        raise common.UsageError("Missing required option(s): " + ", ".join(missing))
    election_type = args.election_type.strip().lower()
    if election_type not in ELECTION_TYPES:
        raise common.UsageError(
            f"Value {args.election_type} is not one of [{', '.join(ELECTION_TYPES)}]"
        )
    if election_type == "unclean":
        raise common.UsageError(UNCLEAN_REFUSED)
    common.check_refused(TOOL, args, REFUSED_FLAGS)
    common.check_bootstrap(args.bootstrap_server)
    chosen = [
        args.topic is not None,
        args.all_topic_partitions,
        args.path_to_json_file is not None,
    ]
    if sum(chosen) != 1:
        raise common.UsageError(
            "One and only one of the following options is required: "
            "topic, all-topic-partitions, path-to-json-file"
        )
    if args.topic is not None and args.partition is None:
        raise common.UsageError("Missing required option(s): partition")
    if args.topic is None and args.partition is not None:
        raise common.UsageError("Option partition is only allowed if topic is used")
    return ElectionCommand(
        bootstrap=args.bootstrap_server,
        election_type="PREFERRED",
        partitions=None if args.topic is None else ((args.topic, args.partition),),
        json_file=args.path_to_json_file,
        security=common.load_security(args.command_config),
    )


def parse_election_json(text: str) -> tuple[tuple[str, int], ...]:
    """Kafka's replica election file: ``{"partitions": [{"topic": T, "partition": P}, ...]}``.
    Raises UsageError with Kafka's messages (empty, no "partitions", a partition twice)."""
    if not text.strip():
        raise common.UsageError("Replica election data is empty")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise common.UsageError(f"Replica election data is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "partitions" not in data:
        raise common.UsageError('Replica election data is missing "partitions" field')
    items = data["partitions"]
    out: list[tuple[str, int]] = []
    for item in items if isinstance(items, list) else [None]:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("topic"), str)
            or isinstance(item.get("partition"), bool)
            or not isinstance(item.get("partition"), int)
        ):
            raise common.UsageError(
                'Replica election data: each partition needs "topic" (a string) and '
                '"partition" (a number)'
            )
        out.append((item["topic"], item["partition"]))
    twice = sorted({p for p in out if out.count(p) > 1})
    if twice:
        names = ", ".join(f"{t}-{p}" for t, p in twice)
        raise common.UsageError(f"Replica election data contains duplicate partitions: [{names}]")
    return tuple(out)


def result_lines(results: list[dict[str, Any]], all_partitions: bool) -> tuple[list[str], int]:
    """Kafka's lines for the controller's per-partition results, and how many failed.

    With ``all_partitions`` the partitions already led by their preferred replica are left
    out, as Kafka's controller leaves them out of an election of every partition."""
    succeeded: list[str] = []
    noop: list[str] = []
    failed: list[str] = []
    for r in results:
        name = f"{r.get('topic')}-{r.get('partition')}"
        error = r.get("error")
        if error is None:
            succeeded.append(name)
        elif error == _NOT_NEEDED:
            if not all_partitions:
                noop.append(name)
        else:
            failed.append(
                f"Error completing leader election (PREFERRED) for partition: {name}: "
                f"{error}: {r.get('message') or error}"
            )
    lines = []
    if succeeded:
        lines.append(
            "Successfully completed leader election (PREFERRED) for partitions "
            + ", ".join(succeeded)
        )
    if noop:
        lines.append("Valid replica already elected for partitions " + ", ".join(noop))
    return lines + failed, len(failed)


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd
    partitions = cmd.partitions
    if cmd.json_file is not None:
        try:
            partitions = parse_election_json(Path(cmd.json_file).read_text(encoding="utf-8"))
        except OSError as exc:
            common.print_error(f"Cannot read {cmd.json_file}: {exc.strerror}")
            return common.EXIT_ERROR
        except common.UsageError as exc:
            common.print_error(str(exc))
            return common.EXIT_ERROR

    async def run() -> int:
        async with KraftClient(cmd.bootstrap, security=cmd.security) as client:
            try:
                results = await client.elect_leaders(
                    cmd.election_type, None if partitions is None else list(partitions)
                )
            except (ApiError, TransportError) as exc:
                common.print_error(common.error_text(exc))
                return common.EXIT_ERROR
        lines, failures = result_lines(results, cmd.all_partitions)
        for line in lines:
            print(line, flush=True)
        if failures:
            common.print_error(f"{failures} replica(s) could not be elected")
            return common.EXIT_ERROR
        return common.EXIT_OK

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
