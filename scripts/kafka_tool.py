"""Kafka 4.4.0's own command-line tools, pointed at our nodes' KAFKA listeners (or at any
Kafka): ``scripts/kafka-tool kafka-topics --bootstrap-server localhost:19092 --list``.

    scripts/kafka-tool TOOL [ARGS...]    TOOL as Kafka's bin/ names it (a ``.sh`` is dropped)
    scripts/kafka-tool --list            the tools offered, with their classes

Nothing of Kafka is committed: the tool runs from the jars that scripts/setup fetches from
Maven Central into ``~/.cache/kraft-bench/kafka-4.4.0`` (scripts/bench/kafka_dist.py), fetched
first when missing (Java 17+ and Maven needed then). It runs as Kafka's ``bin/<tool>.sh``
runs it (kafka-run-class.sh): ``java`` (``$JAVA_HOME/bin/java`` when set) with the script's
heap, kafka-run-class.sh's JVM options and Kafka's tools log4j config (WARN and above to
stderr, Kafka's pattern), the jars on the class path, the tool's main class and the
arguments as given. ``KAFKA_HEAP_OPTS``, ``KAFKA_LOG4J_OPTS`` and ``KAFKA_OPTS`` replace or add
JVM options as they do for Kafka's scripts. The JVM replaces this process (exec), so Ctrl+C
and the exit code are the tool's own.

One translation, said on stderr when made: Kafka 4.0 removed ``--broker-list`` from
kafka-console-producer (``--bootstrap-server`` took its place), but the lab our users come
from types it (/work/shared/LAB.md); it is passed to that tool as ``--bootstrap-server``.

Offered: the tools whose requests our nodes serve (docs/api.md, Kafka's protocol). A name
Kafka has but whose API we do not serve is refused with the reason; any other name with the
list. Exit codes: the tool's; 2 a name refused; 1 Kafka's jars missing and not fetchable.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.bench import kafka_dist
from scripts.bench.kafka_side import JVM_PERFORMANCE_OPTS, PERF_TOOL_HEAP, TOOL_HEAP, TOOLS_LOG4J

PROG = "kafka-tool"
LOG4J_FILE = "tools-log4j2.properties"  # in the cache, beside libs/


@dataclass(frozen=True)
class Tool:
    """What Kafka's ``bin/<name>.sh`` runs: the main class, and the heap the script sets
    (kafka-run-class.sh's -Xmx256M unless the script sets its own)."""

    main: str
    heap: tuple[str, ...] = TOOL_HEAP


# Kafka 4.4.0's bin/ scripts and the classes they run (each checked in kafka-tools-4.4.0.jar).
TOOLS: dict[str, Tool] = {
    "kafka-topics": Tool("org.apache.kafka.tools.TopicCommand"),
    "kafka-console-producer": Tool("org.apache.kafka.tools.ConsoleProducer", PERF_TOOL_HEAP),
    "kafka-console-consumer": Tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer", PERF_TOOL_HEAP
    ),
    "kafka-consumer-groups": Tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"),
    "kafka-groups": Tool("org.apache.kafka.tools.GroupsCommand"),
    "kafka-configs": Tool("org.apache.kafka.tools.ConfigCommand"),
    "kafka-producer-perf-test": Tool("org.apache.kafka.tools.ProducerPerformance", PERF_TOOL_HEAP),
    "kafka-consumer-perf-test": Tool("org.apache.kafka.tools.ConsumerPerformance", PERF_TOOL_HEAP),
    "kafka-get-offsets": Tool("org.apache.kafka.tools.GetOffsetShell"),
    "kafka-broker-api-versions": Tool("org.apache.kafka.tools.BrokerApiVersionsCommand"),
    "kafka-cluster": Tool("org.apache.kafka.tools.ClusterTool"),
    "kafka-leader-election": Tool("org.apache.kafka.tools.LeaderElectionCommand"),
    "kafka-reassign-partitions": Tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand"),
    "kafka-log-dirs": Tool("org.apache.kafka.tools.LogDirsCommand"),
    "kafka-acls": Tool("org.apache.kafka.tools.AclCommand"),
    "kafka-metadata-quorum": Tool("org.apache.kafka.tools.MetadataQuorumCommand"),
    # Reads segment and index files, no node involved: our files are Kafka's.
    "kafka-dump-log": Tool("org.apache.kafka.tools.DumpLogSegments"),
}

# Kafka's tools that need a request our nodes do not serve (left out of ApiVersions): the tool
# would only fail with "The node does not support ...".
NOT_SERVED: dict[str, str] = {
    "kafka-delete-records": "DeleteRecords (21)",
    "kafka-features": "ApiVersions' feature levels and UpdateFeatures (57): nothing is versioned",
    "kafka-transactions": "the transaction APIs (DescribeTransactions 65, ListTransactions 66)",
    "kafka-share-groups": "the share group APIs (76-79, 90-92)",
    "kafka-streams-groups": "the streams group APIs (88, 89)",
    "kafka-client-metrics": "DescribeConfigs of CLIENT_METRICS resources, telemetry (71, 72)",
}

BROKER_LIST = "--broker-list"
BOOTSTRAP_SERVER = "--bootstrap-server"


class Refused(Exception):
    """A tool name that is not offered; the message says why and what is."""


def tool_of(name: str) -> Tool:
    """The tool named ``name`` (Kafka's script name, with or without ``.sh``)."""
    bare = name.removesuffix(".sh")
    tool = TOOLS.get(bare)
    if tool is not None:
        return tool
    if bare in NOT_SERVED:
        raise Refused(
            f"{bare} is not offered: our nodes do not serve {NOT_SERVED[bare]}\n{listing()}"
        )
    raise Refused(f"unknown tool {name!r}\n{listing()}")


def listing() -> str:
    """The tools offered, one a line with its class."""
    width = max(len(n) for n in TOOLS)
    lines = [f"  {n:<{width}}  {t.main}" for n, t in sorted(TOOLS.items())]
    return "tools offered (Kafka 4.4.0's bin/ names):\n" + "\n".join(lines)


def tool_args(name: str, args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The arguments the tool gets, and the notes to print about what was changed: only
    the console producer's ``--broker-list`` (``--broker-list=HOST`` too), which Kafka 4.0
    removed, becomes ``--bootstrap-server``; everything else goes through untouched."""
    if name.removesuffix(".sh") != "kafka-console-producer":
        return list(args), []
    out: list[str] = []
    notes: list[str] = []
    for arg in args:
        if arg == BROKER_LIST or arg.startswith(BROKER_LIST + "="):
            out.append(BOOTSTRAP_SERVER + arg[len(BROKER_LIST) :])
            notes = [
                f"{PROG}: Kafka 4.x's console producer has no {BROKER_LIST} (removed in 4.0): "
                f"passed as {BOOTSTRAP_SERVER}"
            ]
        else:
            out.append(arg)
    return out, notes


def command(
    tool: Tool,
    args: Sequence[str],
    classpath: str,
    log4j: Path,
    env: Mapping[str, str],
) -> list[str]:
    """The command kafka-run-class.sh would run for ``tool`` with ``args``: ``env``'s
    KAFKA_HEAP_OPTS replaces the heap, KAFKA_LOG4J_OPTS the log4j option, KAFKA_OPTS adds
    options after the class path (where the script puts them); JAVA_HOME picks the java."""
    java = str(Path(env["JAVA_HOME"]) / "bin" / "java") if env.get("JAVA_HOME") else "java"
    heap = shlex.split(env["KAFKA_HEAP_OPTS"]) if env.get("KAFKA_HEAP_OPTS") else list(tool.heap)
    log4j_opts = (
        shlex.split(env["KAFKA_LOG4J_OPTS"])
        if env.get("KAFKA_LOG4J_OPTS")
        else [f"-Dlog4j2.configurationFile={log4j}"]
    )
    extra = shlex.split(env.get("KAFKA_OPTS", ""))
    return [
        java,
        *heap,
        *JVM_PERFORMANCE_OPTS,
        *log4j_opts,
        "-cp",
        classpath,
        *extra,
        tool.main,
        *args,
    ]


def write_log4j(cache: Path) -> Path:
    """Kafka's tools log4j config in ``cache`` (written when missing or different; by rename,
    so that tools starting at the same time never read half a file)."""
    path = cache / LOG4J_FILE
    if not path.exists() or path.read_text() != TOOLS_LOG4J:
        temporary = path.with_name(f"{LOG4J_FILE}.{os.getpid()}")
        temporary.write_text(TOOLS_LOG4J)
        temporary.replace(path)
    return path


def distribution(cache: Path) -> kafka_dist.KafkaDist:
    """Kafka's jars in ``cache``, fetched first when missing (Maven's output in a log beside
    the cache, named in the error when the fetch fails)."""
    if (cache / kafka_dist.COMPLETE).exists():
        return kafka_dist.KafkaDist(cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    log = cache.parent / f"kafka-{kafka_dist.KAFKA_VERSION}-fetch.log"
    print(
        f"{PROG}: fetching Kafka {kafka_dist.KAFKA_VERSION}'s jars into {cache} "
        "(Maven, about a minute)",
        file=sys.stderr,
    )
    return kafka_dist.ensure(cache, log)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(f"usage: {PROG} TOOL [ARGS...]   (TOOL --help: the tool's own help)")
        print(listing())
        return 0 if args else 2
    if args[0] == "--list":
        print(listing())
        return 0
    name, rest = args[0], args[1:]
    try:
        tool = tool_of(name)
    except Refused as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    rest, notes = tool_args(name, rest)
    cache = kafka_dist.default_cache()
    try:
        dist = distribution(cache)
    except (kafka_dist.FetchError, OSError) as e:
        print(f"{PROG}: Kafka {kafka_dist.KAFKA_VERSION}'s jars are missing: {e}", file=sys.stderr)
        return 1
    argv_java = command(tool, rest, f"{dist.libs}/*", write_log4j(cache), os.environ)
    for note in notes:
        print(note, file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os.execvp(argv_java[0], argv_java)
    return 1  # not reached: exec replaced the process


if __name__ == "__main__":
    sys.exit(main())
