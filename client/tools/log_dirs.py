"""``kraft-log-dirs``: Kafka's ``kafka-log-dirs.sh`` (LogDirsCommand) for this cluster.

    kraft-log-dirs --bootstrap-server H:P --describe [--broker-list 1,2] [--topic-list a,b]
                   [--command-config FILE]

Asks every broker (or those of ``--broker-list``), each at its own address from ``GET
/v1/cluster``, for its log directories (``GET /v1/brokers/{id}/log-dirs``, DescribeLogDirs)
and prints Kafka 4.4's three lines::

    Querying brokers for log directories information
    Received log directory information from brokers 1,2,3
    {"brokers":[{"broker":1,"logDirs":[{"partitions":[{"partition":"t-0","size":84,
    "offsetLag":0,"isFuture":false}],"error":null,"logDir":"/abs/path"}]}],"version":1}

Kafka builds that JSON from Java hash maps, so its keys and lists come out in HashMap order
(brokers by id, partitions scattered); this tool puts them in the same order
(:mod:`storage.java_order`), so a script comparing the two outputs sees the same text. A
directory with an error prints its Java exception class (``org.apache.kafka.common.errors.
KafkaStorageException``) and no partitions, as Kafka's does.

Errors (one line on stderr, exit 1): Kafka's ``ERROR: The given brokers do not exist from
--broker-list: ...`` for ids that are not live brokers, ``For input string: "x"`` for an id
that is not a number, ``Missing required argument "[describe]"``; a broker that cannot be
reached or answers an error is named with its error. Exit 2 for an unknown flag.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from client.client import KraftClient, TransportError
from client.protocol import ApiError
from client.security import ClientSecurity
from client.tools import common
from storage.java_order import (
    hash_map_order,
    hash_set_capacity,
    string_hash,
    table_size_for,
    topic_partition_hash,
)

TOOL = "kraft-log-dirs"
DESCRIPTION = "This tool helps to query log directory usage on the specified brokers."
QUERYING = "Querying brokers for log directories information"

# Kafka's exception class for a directory's error code (what LogDirDescription.error() is).
_EXCEPTIONS = {"KAFKA_STORAGE_ERROR": "org.apache.kafka.common.errors.KafkaStorageException"}
_UNKNOWN_EXCEPTION = "org.apache.kafka.common.errors.UnknownServerException"
# Integer.valueOf's syntax: an optional sign, ASCII digits, within a Java int.
_JAVA_INT = re.compile(r"[+-]?[0-9]+")
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1


def _key_order(*names: str) -> tuple[str, ...]:
    # The keys of one of LogDirsCommand's `new HashMap<String, Object>() {{ put(...) }}`.
    return tuple(hash_map_order((name, string_hash(name)) for name in names))


_TOP_KEYS = _key_order("version", "brokers")
_BROKER_KEYS = _key_order("broker", "logDirs")
_LOG_DIR_KEYS = _key_order("logDir", "error", "partitions")
_PARTITION_KEYS = _key_order("partition", "size", "offsetLag", "isFuture")


@dataclass(frozen=True)
class LogDirsCommand:
    bootstrap: str
    brokers: tuple[int, ...]  # as Kafka's Collectors.toSet() holds them; () for every broker
    topics: frozenset[str]  # empty: every topic
    security: ClientSecurity | None


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def build_parser() -> Any:
    parser = common.new_parser(TOOL, DESCRIPTION, refused={})
    parser.add_argument(
        "--bootstrap-server", help="REQUIRED: the server(s) to use for bootstrapping"
    )
    common.add_config_flags(parser, "--command-config", what="Admin Client")
    parser.add_argument(
        "--describe",
        action="store_true",
        help="Describe the specified log directories on the specified brokers.",
    )
    parser.add_argument(
        "--topic-list",
        default="",
        help='The list of topics to be queried in the form "topic1,topic2,topic3". '
        "All topics will be queried if no topic list is specified",
    )
    parser.add_argument(
        "--broker-list",
        default="",
        help='The list of brokers to be queried in the form "0,1,2". '
        "All brokers in the cluster will be queried if no broker list is specified",
    )
    return parser


def _java_int(text: str) -> int:
    if _JAVA_INT.fullmatch(text) and _INT_MIN <= int(text) <= _INT_MAX:
        return int(text)
    raise common.UsageError(f'For input string: "{text}"')  # Integer.valueOf's message


def java_set_order(ids: Iterable[int], capacity: int | None = None) -> list[int]:
    """Integers in the order a Java HashSet (``Collectors.toSet()``: a default table; or
    ``new HashSet<>(collection)`` with ``capacity``) built from ``ids`` iterates them."""
    ids = list(ids)
    return hash_map_order(((i, i) for i in ids), capacity or 16)


def parse_command(argv: list[str]) -> LogDirsCommand:
    """The command a command line asks for, checked as Kafka's LogDirsCommandOptions checks it;
    UsageError (exit 1) with Kafka's message, SystemExit(2) for an unknown flag."""
    parser = build_parser()
    if not argv:
        raise common.UsageError(parser.format_usage() + DESCRIPTION)
    args = parser.parse_args(argv)
    if not args.bootstrap_server:
        raise common.UsageError('Missing required argument "[bootstrap-server]"')
    if not args.describe:
        raise common.UsageError('Missing required argument "[describe]"')
    common.check_bootstrap(args.bootstrap_server)
    brokers = [_java_int(item) for item in args.broker_list.split(",") if item]
    return LogDirsCommand(
        bootstrap=args.bootstrap_server,
        brokers=tuple(java_set_order(brokers)),
        topics=frozenset(name for name in args.topic_list.split(",") if name),
        security=common.load_security(args.command_config),
    )


# ---------------------------------------------------------------------------------------------
# Pure: which brokers, and Kafka's lines
# ---------------------------------------------------------------------------------------------


def _ids(ids: Iterable[int]) -> str:
    return ",".join(str(i) for i in ids)


def brokers_to_ask(wanted: tuple[int, ...], cluster: list[int]) -> list[int]:
    """The brokers to query, in the order Kafka's ``existingBrokers`` set iterates them (every
    broker of ``cluster`` when ``wanted`` is empty); UsageError with Kafka's message when
    ``wanted`` names brokers the cluster does not have."""
    cluster_set = java_set_order(cluster)
    asked = java_set_order(wanted, hash_set_capacity(len(wanted)))
    missing = [b for b in asked if b not in cluster]
    if missing:
        raise common.UsageError(
            "ERROR: The given brokers do not exist from --broker-list: "
            f"{_ids(missing)}. Current existent brokers: {_ids(cluster_set)}"
        )
    source = list(wanted) if wanted else cluster_set
    return java_set_order(source, hash_set_capacity(len(source)))


def received_line(brokers: list[int]) -> str:
    return f"Received log directory information from brokers {_ids(brokers)}"


def _answer_order(brokers: list[int]) -> list[int]:
    # The admin client's futures (new HashMap<>(n)), copied into DescribeLogDirsResult (new
    # HashMap<>(map)), then collected by allDescriptions() (new HashMap<>(n)).
    n = len(brokers)
    futures = hash_map_order(((b, b) for b in brokers), table_size_for(n))
    copied = hash_map_order(((b, b) for b in futures), table_size_for(int(n / 0.75 + 1)))
    return hash_map_order(((b, b) for b in copied), table_size_for(n))


def _ordered(keys: tuple[str, ...], values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: values[key] for key in keys}


def _error_class(error: Any) -> str | None:
    if error is None:
        return None
    name = error.get("error") if isinstance(error, dict) else None
    return _EXCEPTIONS.get(str(name), _UNKNOWN_EXCEPTION)


def _partitions(log_dir: Mapping[str, Any], topics: frozenset[str]) -> list[dict[str, Any]]:
    replicas: list[tuple[tuple[str, int], dict[str, Any]]] = []
    for p in log_dir.get("partitions") or []:
        key = (str(p["topic"]), int(p["partition"]))
        replicas.append((key, p))
    # The admin client's replicaInfos (a HashMap put in the answer's order), then the tool's
    # Collectors.toMap of those of --topic-list (another HashMap, in the first one's order).
    infos = hash_map_order((key, topic_partition_hash(*key)) for key, _ in replicas)
    chosen = [key for key in infos if not topics or key[0] in topics]
    by_key = dict(replicas)
    return [
        _ordered(
            _PARTITION_KEYS,
            {
                "partition": f"{key[0]}-{key[1]}",
                "size": by_key[key]["size"],
                "offsetLag": by_key[key]["offset_lag"],
                "isFuture": bool(by_key[key]["is_future"]),
            },
        )
        for key in hash_map_order((key, topic_partition_hash(*key)) for key in chosen)
    ]


def describe_json(answers: Mapping[int, Mapping[str, Any]], topics: frozenset[str]) -> str:
    """Kafka's JSON line for the brokers' answers (broker id -> ``GET
    /v1/brokers/{id}/log-dirs`` body), keys and lists in Kafka's order."""
    brokers = []
    for broker in _answer_order(list(answers)):
        dirs = {str(d["log_dir"]): d for d in answers[broker].get("log_dirs") or []}
        log_dirs = [
            _ordered(
                _LOG_DIR_KEYS,
                {
                    "logDir": name,
                    "error": _error_class(dirs[name].get("error")),
                    "partitions": _partitions(dirs[name], topics),
                },
            )
            for name in hash_map_order((name, string_hash(name)) for name in dirs)
        ]
        brokers.append(_ordered(_BROKER_KEYS, {"broker": broker, "logDirs": log_dirs}))
    top = _ordered(_TOP_KEYS, {"version": 1, "brokers": brokers})
    # Jackson's compact form: no spaces, non-ASCII written as it is.
    return json.dumps(top, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# The async part
# ---------------------------------------------------------------------------------------------


class LogDirsClient(KraftClient):
    """The HTTP client with the one call this tool adds."""

    async def log_dirs(self, broker_id: int, topics: frozenset[str]) -> dict[str, Any]:
        """``GET /v1/brokers/{id}/log-dirs``: the broker's own directories (of ``topics``)."""
        params = {"topics": ",".join(sorted(topics))} if topics else None
        return await self._dict("GET", f"/v1/brokers/{int(broker_id)}/log-dirs", params=params)


def live_brokers(cluster: Mapping[str, Any]) -> dict[int, str]:
    """Broker id -> URL of the brokers DescribeCluster would list (the unfenced ones)."""
    found: dict[int, str] = {}
    for broker in cluster.get("brokers") or []:
        if not isinstance(broker, dict) or broker.get("fenced"):
            continue
        broker_id, url = broker.get("id"), broker.get("url")
        if isinstance(broker_id, int) and isinstance(url, str) and url:
            found[broker_id] = url
    return found


async def _ask(
    connect: Callable[[str], LogDirsClient], broker_id: int, url: str, topics: frozenset[str]
) -> dict[str, Any]:
    client = connect(url)
    try:
        async with client:
            return await client.log_dirs(broker_id, topics)
    except (ApiError, TransportError) as exc:
        raise common.UsageError(
            f"Error describing the log directories of broker {broker_id} ({url}): "
            f"{common.error_text(exc)}"
        ) from None


async def execute(
    cmd: LogDirsCommand,
    client: LogDirsClient,
    connect: Callable[[str], LogDirsClient],
    out: Callable[[str], None],
) -> None:
    """Carries out ``--describe``, printing Kafka's lines with ``out``; raises UsageError (or
    the client's errors) on failure."""
    urls = live_brokers(await client.cluster())
    brokers = brokers_to_ask(cmd.brokers, list(urls))
    out(QUERYING)
    answers = await asyncio.gather(*(_ask(connect, b, urls[b], cmd.topics) for b in brokers))
    out(received_line(brokers))
    out(describe_json(dict(zip(brokers, answers, strict=True)), cmd.topics))


def main(argv: list[str] | None = None) -> int:
    cmd = common.parse_argv(argv, parse_command)
    if isinstance(cmd, int):  # --version, --help or a usage error: already answered
        return cmd

    async def run() -> int:
        def connect(url: str) -> LogDirsClient:
            return LogDirsClient(url, security=cmd.security)

        client = connect(cmd.bootstrap)
        try:
            async with client:
                await execute(cmd, client, connect, lambda line: print(line, flush=True))
        except common.UsageError as exc:
            common.print_error(str(exc))
            return common.EXIT_ERROR
        except ApiError as exc:
            common.print_error(common.error_text(exc))
            return common.EXIT_ERROR
        return common.EXIT_OK

    return common.run(run)


if __name__ == "__main__":
    sys.exit(main())
