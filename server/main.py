"""``kraft-server-start node.properties``: runs one node until Ctrl+C or SIGTERM.

Start order, for a quick cold start: the metadata quorum (its Raft port, its links to the
other voters and its election timer) starts as soon as the configuration is read, before the
modules that serve HTTP and host partitions are imported (aiohttp and the node: about 0.2 s of
CPU, several times that when three nodes and a client start at once on two cores). The first
election then runs while they load, not after; the node attaches to the running quorum and
reads its state whole (``Node.start``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

from kraft.observer import MetadataObserver
from kraft.quorum import DUMP_FILE, JOURNAL_FILE, META_FILE, MetadataQuorum, QuorumError
from kraft.voters import journal_entries, log_voters, saved_commit_index, uncommitted_add
from server import logs
from server.config import ConfigError, NodeConfig
from server.tls import server_ssl_context
from storage.properties import MetaProperties

log = logging.getLogger("kraft.server")

SECRET_FILE = "cluster.secret"


class StartupError(Exception):
    """The node cannot start; the message says why and what to do."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="kraft-server-start",
        description="Start one node (a controller, a broker or both, as its process.roles "
        "says) from a properties file.",
    )
    parser.add_argument("properties", type=Path, help="the node's properties file")
    parser.add_argument(
        "--log-file",
        type=Path,
        default=None,
        help="write the log to this file, rolled at 64 MiB with 4 old files kept "
        "(default: standard error)",
    )
    parser.add_argument(
        "--log-level",
        type=_level,
        default=None,
        metavar="LEVEL",
        help="the log's level, overriding log.level: ERROR, WARN, INFO or DEBUG (default: "
        "log.level, else INFO)",
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a property (as Kafka's --override)",
    )
    return parser.parse_args(argv)


def _level(text: str) -> int:
    try:
        return logs.parse_level(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def load_config(args: argparse.Namespace) -> NodeConfig:
    """The node's settings: its properties file with ``--override``s applied. Raises
    ConfigError or StartupError naming what is wrong."""
    overrides: dict[str, str] = {}
    for item in args.override:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StartupError(f"--override expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return NodeConfig.load(args.properties, overrides)


def load(args: argparse.Namespace, config: NodeConfig) -> tuple[MetaProperties, str]:
    """What the node's formatted log directory holds: its meta.properties and the cluster
    secret. Raises StartupError saying what to do when they are missing or not this node's."""
    log_dir = config.log_dir
    format_hint = (
        f"format it first: kraft-storage format -t $(kraft-storage random-uuid) "
        f"-c {args.properties} --secret-file <file>"
    )
    try:
        meta = MetaProperties.read(log_dir)
    except (OSError, ValueError) as e:
        raise StartupError(f"cannot read {log_dir / 'meta.properties'}: {e}") from None
    if meta is None:
        raise StartupError(f"log directory {log_dir} is not formatted; {format_hint}")
    if meta.node_id != config.node_id:
        raise StartupError(
            f"node.id: {args.properties} says {config.node_id}, but {log_dir} was formatted "
            f"for node {meta.node_id}; a node never starts on another node's directory"
        )
    try:
        secret = (log_dir / SECRET_FILE).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise StartupError(
            f"cannot read {log_dir / SECRET_FILE}: {e.strerror}; {format_hint}"
        ) from None
    if not secret:
        raise StartupError(f"{log_dir / SECRET_FILE} is empty; {format_hint}")
    return meta, secret


def start_quorum(
    config: NodeConfig,
    secret: str,
    loop: asyncio.AbstractEventLoop,
    directory_id: str | None = None,
) -> MetadataQuorum:
    """The node's metadata quorum, started (bound, dialing its peers, its election timer
    running). ``directory_id`` is the node's (meta.properties): a controller waiting to be
    added says it to the leader. Raises StartupError when its listener cannot start or its
    files cannot be opened."""
    peers = {
        vid: f"{host}:{port}"
        for vid, (host, port) in config.voters.items()
        if vid != config.node_id
    }
    dial_overrides = {vid: f"{h}:{p}" for vid, (h, p) in config.raft_dial.items()}
    quorum: MetadataQuorum
    data_dir = config.log_dir / "__cluster_metadata-0"
    # The voter set is the log's once it names one (kraft/voters.py): a controller that the
    # log does not list (one joining with controller.quorum.bootstrap.servers, or one that was
    # removed) follows the log as an observer, and becomes a voter when the log makes it one.
    try:
        in_log = log_voters(data_dir, DUMP_FILE, JOURNAL_FILE, config.quorum_addresses)
    except ValueError as e:  # a dump that does not decode: the message names the file
        raise StartupError(str(e)) from None
    except OSError as e:
        raise StartupError(f"cannot read {data_dir}: {e}") from None
    if in_log is None:
        voter = config.is_controller and config.node_id in config.voters
    else:
        voter = config.is_controller and config.raft_address in in_log
        # Added by an entry not known to be committed: a new leader may have overwritten it,
        # and as a voter this node would never hear so. It follows the log as an observer and
        # turns voter once it sees the add committed.
        if voter and uncommitted_add(
            journal_entries(data_dir, JOURNAL_FILE),
            config.raft_address,
            saved_commit_index(data_dir, META_FILE),
        ):
            voter = False
    if voter:
        quorum = MetadataQuorum(
            config.node_id,
            config.raft_address,
            peers,
            config.log_dir / "__cluster_metadata-0",
            secret,
            dial_overrides=dial_overrides,
            # The base its files' voter changes apply to: the same one `in_log` used (for a
            # controller that joined, its bootstrap servers, never itself alone).
            formatted_voters=None if config.voters else config.quorum_addresses,
        )
    else:  # a broker-only node (or a controller not a voter yet) follows the log
        quorum = MetadataObserver(
            config.node_id,
            peers,
            [a for a in config.quorum_addresses if a != config.raft_address],
            data_dir,
            secret,
            dial_overrides=dial_overrides,
            raft_address=config.raft_address if config.is_controller else None,
            directory_id=directory_id,
        )
    try:
        quorum.start(loop)
    except QuorumError as e:
        raise StartupError(f"listeners: the CONTROLLER listener cannot start: {e}") from None
    except ValueError as e:  # a journal that is not ours: the message names the file
        raise StartupError(str(e)) from None
    except OSError as e:
        raise StartupError(f"cannot open {config.log_dir}: {e}") from None
    return quorum


async def serve(config: NodeConfig, meta: MetaProperties, secret: str) -> str | None:
    """Runs the node until a signal (returns None) or a fatal error (returns the reason)."""
    ssl_context = server_ssl_context(config)  # before anything opens: a bad keystore stops us
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    quorum = start_quorum(config, secret, loop, meta.directory_id)
    try:
        return await _serve(config, meta, secret, ssl_context, quorum, stop)
    finally:
        quorum.stop()  # the node stopped it already, unless it failed to start (a no-op then)


async def _serve(
    config: NodeConfig,
    meta: MetaProperties,
    secret: str,
    ssl_context: ssl.SSLContext | None,
    quorum: MetadataQuorum,
    stop: asyncio.Event,
) -> str | None:
    # Imported now, while the quorum elects its leader (see the module's docstring).
    from server.clock import SYSTEM_CLOCK
    from server.http_api import make_app
    from server.http_server import start_http
    from server.kafka.listener import KafkaListener
    from server.loop_monitor import LOOP_MONITOR, LoopMonitor
    from server.node import Node
    from server.tasks import supervised

    try:
        node = Node(config, meta, secret, quorum)
    except (OSError, ValueError) as e:
        raise StartupError(f"cannot open {config.log_dir}: {e}") from None
    # Long polls and follow streams end when the node stops; a short shutdown timeout keeps
    # a stop from waiting for the longest of them.
    cannot_listen = f"listeners: cannot listen on HTTP://{config.http_host}:{config.http_port}"
    monitor = LoopMonitor()
    app = make_app(node)
    app[LOOP_MONITOR] = monitor
    try:
        listener = await start_http(
            app,
            config,
            ssl_context,
            internal_auth=node.internal_auth,
            now_ms=SYSTEM_CLOCK.wall_ms,
            shutdown_timeout_s=2.0,
        )
    except OSError as e:
        raise StartupError(f"{cannot_listen}: {e.strerror}") from None
    # Kafka's protocol (KAFKA://), when configured: a port of its own beside HTTP's.
    kafka: KafkaListener | None = None
    if config.has_kafka_listener:
        kafka = KafkaListener(node, config)
        try:
            await kafka.start()
        except OSError as e:
            await listener.close()
            raise StartupError(
                f"listeners: cannot listen on KAFKA://{config.kafka_host}:{config.kafka_port}: "
                f"{e.strerror}"
            ) from None
    try:
        await node.start()
    except (OSError, ValueError) as e:
        if kafka is not None:
            await kafka.close()
        await listener.close()
        raise StartupError(
            f"{cannot_listen}: {e.strerror}" if isinstance(e, OSError) else str(e)
        ) from None
    # What the start built (modules, classes, the node's objects: about 50,000 tracked
    # objects) lives as long as the process: out of the collector's sight, a full collection
    # no longer walks it (7-11 ms a time measured here, a pause of the event loop). main()
    # turned the collector off for the start, which allocates and keeps (collections during
    # the imports found nothing and cost 10-20 ms of a node's 0.28 s).
    gc.freeze()
    gc.enable()
    lag_task = supervised("loop-monitor", monitor.run(), node.fail)
    log.info(
        "node %d (cluster %s, process.roles=%s) serving HTTP on %s, Kafka's protocol on %s, "
        "Raft on %s, log dir %s",
        config.node_id,
        meta.cluster_id,
        ",".join(sorted(config.roles)),
        config.advertised_http_url,
        config.advertised_kafka_address or "none (no KAFKA listener)",
        config.raft_address or "none (an observer of the metadata quorum)",
        config.log_dir,
    )
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    fatal: asyncio.Future[Any] = node.fatal
    await asyncio.wait([stopping, fatal], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    lag_task.cancel()
    log.info("shutting down")
    # The listeners first, so no request reaches logs or a quorum that are closing.
    if kafka is not None:
        await kafka.close()
    await listener.close()
    await node.stop()
    log.info("node %d stopped", config.node_id)
    return node.fatal.result() if node.fatal.done() else None


def main(argv: list[str] | None = None) -> int:
    gc.disable()  # until the node has started (_serve)
    args = _parse_args(argv)
    # Until the properties are read the node's id is unknown: a refusal of them says [node ?].
    logs.configure(args.log_file, args.log_level or logs.DEFAULT_LEVEL)
    try:
        config = load_config(args)
        logs.identify(config.node_id, args.log_level or config.log_level)
        # The first line: its time, against the launch, is what the interpreter and the
        # imports before the quorum took (scripts/bench_coldstart.py reads it).
        log.info("starting from %s (pid %d)", args.properties, os.getpid())
        meta, secret = load(args, config)
        fatal = asyncio.run(serve(config, meta, secret))
    except (ConfigError, StartupError) as e:
        if args.log_file is not None:
            log.critical("%s", e)
        print(f"kraft-server-start: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if fatal is not None:
        print(f"kraft-server-start: {fatal}", file=sys.stderr)  # the log has it already
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
