"""kraft-cluster: Kafka's kafka-cluster.sh against our cluster's HTTP API.

Same commands, flags and lines as Kafka's tool::

    kraft-cluster cluster-id --bootstrap-server localhost:9092
    Cluster ID: MkU3OEVBNTcwNTJENDM2Qg
    kraft-cluster unregister --bootstrap-server localhost:9092 --id 4
    Broker 4 is no longer registered.

``unregister`` is Kafka's UnregisterBroker (``DELETE /v1/brokers/{id}``): the broker leaves the
cluster's brokers, so placement and ``kraft-topics``/``GET /v1/cluster`` forget it. Unlike
Kafka, the controller refuses while a partition still lists the broker among its replicas (its
message names them): move them first with ``kraft-reassign-partitions``. A broker process still
running registers again on its next heartbeat, as Kafka's does: stop it first.

Kafka's ``--config`` (``-c``) and our tools' ``--command-config`` both name the client
properties file (security settings; ``default.api.timeout.ms``, 60 s, bounds the retries
while no node answers). ``--bootstrap-controller`` is refused: give any node's HTTP address with
``--bootstrap-server`` (a controller's too: every node serves the admin calls).

Parsing is pure (:func:`parse_command`); :func:`main` is the thin async part.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from client.admin import AsyncAdmin, admin_options
from client.client import TransportError
from client.protocol import ApiError
from client.security import ClientSecurity
from client.tools import common

TOOL = "kraft-cluster"
DESCRIPTION = "The Kafka cluster tool."

# Kafka's flags this tool parses but refuses, with the reason ("{flag}" is the flag's name).
REFUSED_FLAGS: dict[str, str] = {
    "--bootstrap-controller": (
        "{flag} is not supported: the controller listener speaks Raft only; give any node's "
        "HTTP address (a controller's too) with --bootstrap-server"
    ),
}


@dataclass(frozen=True)
class ClusterCommand:
    bootstrap: str
    command: str  # "cluster-id" or "unregister"
    broker_id: int | None = None  # unregister's --id
    security: ClientSecurity | None = None  # --config / --command-config
    # The admin client's settings from that file (default.api.timeout.ms...).
    settings: dict[str, int] = field(default_factory=dict)


def _broker_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"could not convert '{text}' to Integer") from None
    if not 0 <= value <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"a broker id is 0 to 2147483647, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(TOOL, DESCRIPTION, {})
    commands = parser.add_subparsers(dest="command", metavar="{cluster-id,unregister}")
    subs = {
        "cluster-id": commands.add_parser(
            "cluster-id", help="Get information about the ID of a cluster.", allow_abbrev=False
        ),
        "unregister": commands.add_parser(
            "unregister", help="Unregister a broker.", allow_abbrev=False
        ),
    }
    for sub in subs.values():
        sub.add_argument(
            "--bootstrap-server",
            "-b",
            metavar="HOST:PORT",
            help="A list of host/port pairs to use for establishing the connection to the "
            "Kafka cluster.",
        )
        # Parsed so that it is refused by name (check_refused), not as an unknown flag.
        sub.add_argument(
            "--bootstrap-controller",
            "-C",
            dest=common._dest("--bootstrap-controller"),
            nargs="?",
            const="",
            help=argparse.SUPPRESS,
        )
        common.add_config_flags(sub, "--config", "-c", "--command-config", what="Admin Client")
    subs["unregister"].add_argument(
        "--id", "-i", type=_broker_id, required=True, help="The ID of the broker to unregister."
    )
    return parser


def parse_command(argv: list[str]) -> ClusterCommand:
    """The command a command line asks for. Raises UsageError (exit 1) with Kafka's message;
    argparse's own errors (an unknown flag, a missing --id) raise SystemExit(2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        raise common.UsageError(parser.format_usage() + f"{TOOL}: error: too few arguments")
    common.check_refused(TOOL, args, REFUSED_FLAGS)
    if not args.bootstrap_server:
        raise common.UsageError(
            "one of the arguments --bootstrap-server --bootstrap-controller is required"
        )
    common.check_bootstrap(args.bootstrap_server)
    security, props = common.load_client_config(args.command_config)
    try:
        settings = admin_options(props)
    except ValueError as exc:
        raise common.UsageError(str(exc)) from None
    return ClusterCommand(
        bootstrap=args.bootstrap_server,
        command=args.command,
        broker_id=getattr(args, "id", None),
        security=security,
        settings=settings,
    )


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        async with AsyncAdmin(cmd.bootstrap, security=cmd.security, **cmd.settings) as admin:
            try:
                if cmd.command == "cluster-id":
                    cluster_id = (await admin.describe_cluster()).get("cluster_id")
                    print(
                        f"Cluster ID: {cluster_id}"
                        if cluster_id
                        else "No cluster ID found. The Kafka version is probably too old.",
                        flush=True,
                    )
                else:
                    assert cmd.broker_id is not None
                    await admin.unregister_broker(cmd.broker_id)
                    print(f"Broker {cmd.broker_id} is no longer registered.", flush=True)
            except (ApiError, TransportError) as exc:
                common.print_error(common.error_text(exc))
                return common.EXIT_ERROR
        return common.EXIT_OK

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
