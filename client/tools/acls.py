"""``kraft-acls``: Kafka's ``kafka-acls.sh`` (AclCommand) against ``/v1/acls``.

    kraft-acls --bootstrap-server H [--command-config F] --add --allow-principal User:alice \\
        --operation Write --topic news [--resource-pattern-type prefixed]
    kraft-acls --bootstrap-server H --list [--topic news] [--principal User:alice]
    kraft-acls --bootstrap-server H --remove --allow-principal User:alice --operation Write \\
        --topic news [--force]

Kafka's lines: ``Adding ACLs for resource `ResourcePattern(...)`:`` then each entry
``(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)``;
``Current ACLs for resource `...`:`` for ``--list``; ``--remove`` asks first unless
``--force``. ``--producer`` and ``--consumer`` (Kafka's conveniences) are supported; the
resource types we have no use for (``--transactional-id``, ``--delegation-token``,
``--user-principal``) and ``--bootstrap-controller`` are refused by name.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from typing import Any

from client.client import KraftClient, TransportError
from client.protocol import ApiError
from client.security import ClientSecurity
from client.tools import common

TOOL = "kraft-acls"
CLUSTER_NAME = "kafka-cluster"  # Kafka's Resource.CLUSTER_NAME
# Kafka's AclEntry.supportedOperations (ALL is allowed everywhere), in Kafka's order.
SUPPORTED_OPERATIONS = {
    "TOPIC": (
        "READ",
        "WRITE",
        "CREATE",
        "DESCRIBE",
        "DELETE",
        "ALTER",
        "DESCRIBE_CONFIGS",
        "ALTER_CONFIGS",
    ),
    "GROUP": ("READ", "DESCRIBE", "DELETE"),
    "CLUSTER": (
        "CREATE",
        "DESCRIBE_CONFIGS",
        "ALTER_CONFIGS",
        "IDEMPOTENT_WRITE",
        "ALTER",
        "DESCRIBE",
    ),
}
OPERATIONS = ("ALL", *SUPPORTED_OPERATIONS["TOPIC"], "IDEMPOTENT_WRITE")
PATTERN_TYPES = ("LITERAL", "PREFIXED", "ANY", "MATCH")
_REFUSED: dict[str, str] = {
    "--bootstrap-controller": (
        "{flag} is not supported: the controller listener speaks Raft only; give any node's "
        "HTTP address with --bootstrap-server"
    ),
    "--transactional-id": "{flag} is not supported: there are no transactions",
    "--delegation-token": "{flag} is not supported: there are no delegation tokens",
    "--user-principal": "{flag} is not supported: there are no delegation tokens",
    "--authorizer": "{flag} is not supported (Kafka 4 removed it); use --bootstrap-server",
    "--authorizer-properties": (
        "{flag} is not supported (Kafka 4 removed it); use --bootstrap-server"
    ),
    "--zookeeper": "--zookeeper is not supported: this cluster has no ZooKeeper; "
    "use --bootstrap-server",
}


@dataclass(frozen=True, order=True)
class Resource:
    """Kafka's ResourcePattern (or, with ANY / MATCH, its filter)."""

    resource_type: str
    name: str
    pattern_type: str

    def __str__(self) -> str:
        return (
            f"ResourcePattern(resourceType={self.resource_type}, name={self.name}, "
            f"patternType={self.pattern_type})"
        )


@dataclass(frozen=True, order=True)
class Entry:
    """Kafka's AccessControlEntry."""

    principal: str
    host: str
    operation: str
    permission: str

    def __str__(self) -> str:
        return (
            f"(principal={self.principal}, host={self.host}, operation={self.operation}, "
            f"permissionType={self.permission})"
        )


@dataclass(frozen=True)
class AclsCommand:
    action: str  # "add", "list" or "remove"
    bootstrap: str
    # Each resource (pattern or filter) with the entries to add or remove (empty: all of
    # the resource's, for --remove).
    resources: tuple[tuple[Resource, tuple[Entry, ...]], ...] = ()
    list_principals: tuple[str, ...] = ()
    force: bool = False
    security: ClientSecurity | None = None


def operation_name(text: str) -> str:
    """Kafka's SecurityUtils.operation: ``Write``, ``IdempotentWrite``, ``describe_configs``
    and ``DESCRIBE-CONFIGS`` are all accepted."""
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", text.strip()).upper().replace("-", "_")
    if name not in OPERATIONS:
        raise common.UsageError(
            f"Unknown operation {text!r}; valid operations: "
            + ", ".join(_pascal(op) for op in OPERATIONS)
        )
    return name


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def principal(text: str) -> str:
    kind, sep, name = text.strip().partition(":")
    if not sep or not name:
        raise common.UsageError(
            f"expected a string in format principalType:principalName but got {text.strip()}"
        )
    if kind != "User":
        raise common.UsageError(f"principal type {kind} is not supported: use User:name")
    return f"{kind}:{name}"


def build_parser() -> argparse.ArgumentParser:
    parser = common.new_parser(TOOL, "This tool helps to manage acls on the cluster.", _REFUSED)
    parser.add_argument(
        "--bootstrap-server",
        metavar="HOST:PORT",
        help="REQUIRED: the node(s) to connect to (host1:port1,host2:port2,...).",
    )
    common.add_config_flags(parser, "--command-config", what="Admin Client")
    for action, text in (
        ("add", "Indicates you are trying to add ACLs."),
        ("remove", "Indicates you are trying to remove ACLs."),
        (
            "list",
            "List ACLs for the specified resource, use --topic <topic> or --group "
            "<group> or --cluster to specify a resource.",
        ),
    ):
        parser.add_argument(f"--{action}", action="store_true", help=text)
    parser.add_argument(
        "--topic",
        action="append",
        help="topic to which ACLs should be added or removed. A value of '*' indicates ACL "
        "should apply to all topics.",
    )
    parser.add_argument("--cluster", action="store_true", help="Add/Remove cluster ACLs.")
    parser.add_argument(
        "--group",
        action="append",
        help="Consumer Group to which the ACLs should be added or removed. A value of '*' "
        "indicates the ACLs should apply to all groups.",
    )
    parser.add_argument(
        "--resource-pattern-type",
        default="LITERAL",
        metavar="ANY|MATCH|LITERAL|PREFIXED",
        help="The type of the resource pattern or pattern filter (default literal).",
    )
    parser.add_argument(
        "--operation",
        action="append",
        help="Operation that is being allowed or denied (repeatable; default All): "
        + ", ".join(_pascal(op) for op in OPERATIONS),
    )
    parser.add_argument("--allow-principal", action="append", help="principalType:name")
    parser.add_argument("--deny-principal", action="append", help="principalType:name")
    parser.add_argument(
        "--principal", action="append", help="List ACLs for the specified principal."
    )
    parser.add_argument("--allow-host", action="append", help="Only * (all hosts).")
    parser.add_argument("--deny-host", action="append", help="Only * (all hosts).")
    parser.add_argument(
        "--producer",
        action="store_true",
        help="Convenience option to add/remove ACLs for producer role: WRITE, DESCRIBE and "
        "CREATE on topic.",
    )
    parser.add_argument(
        "--consumer",
        action="store_true",
        help="Convenience option to add/remove ACLs for consumer role: READ, DESCRIBE on "
        "topic and READ on group.",
    )
    parser.add_argument(
        "--idempotent",
        action="store_true",
        help="With --producer: also IDEMPOTENT_WRITE on the cluster.",
    )
    parser.add_argument(
        "--force", action="store_true", help="Assume Yes to all queries and do not prompt."
    )
    return parser


def _option(name: str) -> str:
    return f'"[{name}]"'


def _hosts(given: list[str] | None, principals: list[str]) -> list[str]:
    if given is None:
        return ["*"] if principals else []
    hosts = [h.strip() for h in given]
    bad = [h for h in hosts if h != "*"]
    if bad:
        raise common.UsageError(f"host {bad[0]} is not supported: ACLs apply from every host (*)")
    return hosts


def _entries(args: argparse.Namespace, operations: list[str]) -> tuple[Entry, ...]:
    """Kafka's getAcl: every principal x operation x host, allow and deny."""
    allow = [principal(p) for p in args.allow_principal or []]
    deny = [principal(p) for p in args.deny_principal or []]
    entries: set[Entry] = set()
    for principals, hosts, permission in (
        (allow, _hosts(args.allow_host, allow), "ALLOW"),
        (deny, _hosts(args.deny_host, deny), "DENY"),
    ):
        for p in principals:
            for op in operations:
                for host in hosts:
                    entries.add(Entry(p, host, op, permission))
    return tuple(sorted(entries))


def _resources(args: argparse.Namespace, pattern: str, required: bool) -> list[Resource]:
    """Kafka's getResourceFilter."""
    resources = [Resource("TOPIC", t.strip(), pattern) for t in args.topic or []]
    if pattern == "LITERAL" and (args.cluster or args.idempotent):
        resources.append(Resource("CLUSTER", CLUSTER_NAME, "LITERAL"))
    resources += [Resource("GROUP", g.strip(), pattern) for g in args.group or []]
    if not resources and required:
        raise common.UsageError(
            "You must provide at least one resource: --topic <topic> or --cluster or "
            "--group <group>"
        )
    return sorted(set(resources))


def _resource_acls(
    args: argparse.Namespace, pattern: str
) -> list[tuple[Resource, tuple[Entry, ...]]]:
    """Kafka's getResourceFilterToAcls, with --producer and --consumer."""
    out: dict[Resource, set[Entry]] = {}
    resources = _resources(args, pattern, required=True)
    if not args.producer and not args.consumer:
        operations = sorted({operation_name(o) for o in args.operation or ["All"]})
        entries = _entries(args, operations)
        out = {r: set(entries) for r in resources}
    if args.producer:
        for r in resources:
            if r.resource_type == "TOPIC":
                out.setdefault(r, set()).update(_entries(args, ["WRITE", "DESCRIBE", "CREATE"]))
        if args.idempotent:
            cluster = Resource("CLUSTER", CLUSTER_NAME, "LITERAL")
            out.setdefault(cluster, set()).update(_entries(args, ["IDEMPOTENT_WRITE"]))
    if args.consumer:
        for r in resources:
            if r.resource_type == "TOPIC":
                out.setdefault(r, set()).update(_entries(args, ["READ", "DESCRIBE"]))
            elif r.resource_type == "GROUP":
                out.setdefault(r, set()).update(_entries(args, ["READ"]))
    for r, wanted in out.items():
        supported = ("ALL", *SUPPORTED_OPERATIONS[r.resource_type])
        if any(e.operation not in supported for e in wanted):
            raise common.UsageError(
                f"ResourceType {r.resource_type} only supports operations " + ", ".join(supported)
            )
    return [(r, tuple(sorted(out[r]))) for r in sorted(out)]


def parse_command(argv: list[str]) -> AclsCommand:
    """The command a command line asks for, checked as Kafka's AclCommandOptions.checkArgs;
    UsageError (exit 1) with Kafka's message, SystemExit(2) for an unknown flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    common.check_refused(TOOL, args, _REFUSED)
    if not args.bootstrap_server:
        raise common.UsageError(
            "One of --bootstrap-server or --bootstrap-controller must be specified"
        )
    common.check_bootstrap(args.bootstrap_server)
    actions = [a for a in ("add", "remove", "list") if getattr(args, a)]
    if len(actions) != 1:
        raise common.UsageError(
            "Command must include exactly one action: --list, --add, --remove. "
        )
    action = actions[0]
    if action == "list":
        for name in (
            "producer",
            "consumer",
            "allow_host",
            "allow_principal",
            "deny_host",
            "deny_principal",
        ):
            if getattr(args, name):
                raise common.UsageError(
                    f"Option {_option('list')} can't be used with option "
                    f"{_option(name.replace('_', '-'))}"
                )
    for role in ("producer", "consumer"):
        if getattr(args, role):
            for name in ("operation", "deny_principal", "deny_host"):
                if getattr(args, name):
                    raise common.UsageError(
                        f"Option {_option(role)} can't be used with option "
                        f"{_option(name.replace('_', '-'))}"
                    )
    if args.principal and action != "list":
        raise common.UsageError("The --principal option is only available if --list is set")
    if args.producer and not args.topic:
        raise common.UsageError("With --producer you must specify a --topic")
    if args.idempotent and not args.producer:
        raise common.UsageError("The --idempotent option is only available if --producer is set")
    if args.consumer and (not args.topic or not args.group or (not args.producer and args.cluster)):
        raise common.UsageError(
            "With --consumer you must specify a --topic and a --group and no --cluster or "
            "--transactional-id option should be specified."
        )
    pattern = args.resource_pattern_type.strip().upper()
    if pattern not in PATTERN_TYPES:
        raise common.UsageError(f"Unknown resource-pattern-type: {args.resource_pattern_type}")
    security = common.load_security(args.command_config)
    if action == "list":
        resources = tuple((r, ()) for r in _resources(args, pattern, required=False))
        return AclsCommand(
            "list",
            args.bootstrap_server,
            resources,
            tuple(principal(p) for p in args.principal or []),
            security=security,
        )
    if action == "add" and pattern not in ("LITERAL", "PREFIXED"):
        raise common.UsageError(
            f"A '--resource-pattern-type' value of '{pattern}' is not valid when adding acls."
        )
    resource_acls = _resource_acls(args, pattern)
    if action == "add" and any(not entries for _r, entries in resource_acls):
        raise common.UsageError(
            "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs."
        )
    return AclsCommand(
        action, args.bootstrap_server, tuple(resource_acls), force=args.force, security=security
    )


# ---------------------------------------------------------------------------------------------
# Kafka's lines
# ---------------------------------------------------------------------------------------------


def adding_lines(resource: Resource, entries: list[Entry]) -> list[str]:
    """AclCommand.addAcls: the first entry after a space, the others alone, a blank line."""
    body = "\n".join("\t" + str(e) for e in entries)
    return [f"Adding ACLs for resource `{resource}`: ", f" {body}", ""]


def current_lines(resource: Resource, entries: list[Entry]) -> list[str]:
    """AclCommand.printResourceAcls."""
    return [f"Current ACLs for resource `{resource}`:", *("\t" + str(e) for e in entries), ""]


def already_exists_line(resource: Resource, entry: Entry) -> str:
    return f"Acl (pattern={resource}, entry={entry}) already exists."


def remove_question(resource: Resource, entries: tuple[Entry, ...]) -> str:
    if not entries:
        return f"Are you sure you want to delete all ACLs for resource filter `{resource}`? (y/n)"
    body = "\n".join("\t" + str(e) for e in entries)
    return (
        f"Are you sure you want to remove ACLs: \n {body}\n from resource filter "
        f"`{resource}`? (y/n)"
    )


def group_acls(acls: list[dict[str, Any]]) -> dict[Resource, list[Entry]]:
    """The API's ACLs by resource pattern, each list sorted."""
    out: dict[Resource, list[Entry]] = {}
    for a in acls:
        resource = Resource(a["resource_type"], a["resource_name"], a["pattern_type"])
        entry = Entry(a["principal"], a["host"], a["operation"], a["permission"])
        out.setdefault(resource, []).append(entry)
    return {r: sorted(out[r]) for r in sorted(out)}


def _filter_params(resource: Resource | None, entry: Entry | None = None) -> dict[str, str]:
    params: dict[str, str] = {}
    if resource is not None:
        params |= {
            "resource_type": resource.resource_type,
            "resource_name": resource.name,
            "pattern_type": resource.pattern_type,
        }
    if entry is not None:
        params |= {
            "principal": entry.principal,
            "host": entry.host,
            "operation": entry.operation,
            "permission": entry.permission,
        }
    return params


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


async def _describe(client: KraftClient, params: dict[str, str]) -> list[dict[str, Any]]:
    return await client.describe_acls(params)


async def _add(client: KraftClient, cmd: AclsCommand) -> None:
    for resource, entries in cmd.resources:
        existing = group_acls(await _describe(client, _filter_params(resource))).get(resource, [])
        new: list[Entry] = []
        for entry in entries:
            if entry in existing:
                print(already_exists_line(resource, entry), flush=True)
            else:
                new.append(entry)
        if new:
            for line in adding_lines(resource, new):
                print(line, flush=True)
            acls = [
                {
                    "resource_type": resource.resource_type,
                    "resource_name": resource.name,
                    "pattern_type": resource.pattern_type,
                    "principal": e.principal,
                    "host": e.host,
                    "operation": e.operation,
                    "permission": e.permission,
                }
                for e in new
            ]
            await client.create_acls(acls)


def _confirm(question: str) -> bool:
    print(question, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() == "y"


async def _remove(client: KraftClient, cmd: AclsCommand) -> None:
    for resource, entries in cmd.resources:
        if not cmd.force and not _confirm(remove_question(resource, entries)):
            continue
        for entry in entries or (None,):
            await client.delete_acls(_filter_params(resource, entry))


async def _list(client: KraftClient, cmd: AclsCommand) -> None:
    acls: list[dict[str, Any]] = []
    if not cmd.resources:
        acls = await _describe(client, {"resource_type": "ANY"})
    for resource, _entries in cmd.resources:
        acls += await _describe(client, _filter_params(resource))
    by_resource = group_acls(acls)
    if not cmd.list_principals:
        for resource, entries in by_resource.items():
            for line in current_lines(resource, entries):
                print(line, flush=True)
        return
    for p in cmd.list_principals:
        print(f"ACLs for principal `{p}`", flush=True)
        for resource, entries in by_resource.items():
            mine = [e for e in entries if e.principal == p]
            if mine:
                for line in current_lines(resource, mine):
                    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        async with KraftClient(cmd.bootstrap, security=cmd.security) as client:
            try:
                await {"add": _add, "remove": _remove, "list": _list}[cmd.action](client, cmd)
            except (ApiError, TransportError) as exc:
                common.print_error("Error while executing ACL command: " + common.error_text(exc))
                return common.EXIT_ERROR
        return common.EXIT_OK

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
