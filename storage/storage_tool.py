"""``kraft-storage``: Kafka's ``kafka-storage.sh`` for our log directories.

Commands::

    kraft-storage random-uuid
    kraft-storage format -t CLUSTER_ID -c node.properties --secret-file FILE [--ignore-formatted]
    kraft-storage info -c node.properties

``format`` reads ``log.dirs`` (or ``log.dir``; comma separated; default
``/tmp/kraft-combined-logs``), ``metadata.log.dir`` if set, and ``node.id`` from the node's
properties file, checks every directory first and only then writes, so a refused format
leaves every directory as it was. Each new directory gets ``cluster.secret`` (the secret file's
bytes, mode 0600) and then ``meta.properties`` (cluster.id, node.id, a fresh directory.id):
a directory with a ``meta.properties`` always has its secret.

Exit status: 0 done; 1 refused or failed (one line on stderr, no traceback); 2 a usage error
(argparse's message, naming the flag); 130 interrupted (Ctrl+C).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TextIO

from storage.durable import atomic_write, fsync_dir
from storage.ids import RESERVED_UUIDS, is_valid_uuid, random_uuid
from storage.properties import MetaProperties, PropertiesError, load_properties

DEFAULT_LOG_DIR = "/tmp/kraft-combined-logs"
CLUSTER_SECRET_NAME = "cluster.secret"

# pysyncobj derives its link key from the secret: fewer than 16 bytes is guessable.
SECRET_BYTES_MIN = 16
# A secret is a line of text; a bigger file is a wrong path (a log, a binary).
SECRET_BYTES_MAX = 64 * 1024

# Kafka's format flags we do not implement: refused by name rather than as unknown.
_UNSUPPORTED_FORMAT_FLAGS = {
    "release_version": ("--release-version", "-r"),
    "add_scram": ("--add-scram", "-S"),
    "feature": ("--feature", "-f"),
    "standalone": ("--standalone", "-s"),
    "initial_controllers": ("--initial-controllers", "-I"),
    "no_initial_controllers": ("--no-initial-controllers", "-N"),
}
_FLAG_TAKES_VALUE = {"release_version", "add_scram", "feature", "initial_controllers"}


class ToolError(Exception):
    """A refusal or failure to report as one line on stderr, exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build_parser() -> tuple[_Parser, _Parser]:
    """The tool's parser and its ``format`` subparser."""
    parser = _Parser(prog="kraft-storage", description="The storage tool: format log directories.")
    commands = parser.add_subparsers(
        dest="command", metavar="{info,format,random-uuid}", parser_class=_Parser
    )
    commands.required = True

    info = commands.add_parser("info", help="Show the log directories of this node.")
    info.add_argument("--config", "-c", required=True, help="The node's properties file.")

    fmt = commands.add_parser("format", help="Format the log directories of this node.")
    fmt.add_argument("--config", "-c", required=True, help="The node's properties file.")
    fmt.add_argument("--cluster-id", "-t", required=True, help="The cluster id (random-uuid).")
    fmt.add_argument(
        "--secret-file",
        required=True,
        help="A file holding the cluster secret (>= 16 bytes), copied to cluster.secret.",
    )
    fmt.add_argument(
        "--ignore-formatted",
        "-g",
        action="store_true",
        help="Skip directories already formatted for this cluster and node.",
    )
    for dest, flags in _UNSUPPORTED_FORMAT_FLAGS.items():
        if dest in _FLAG_TAKES_VALUE:
            fmt.add_argument(*flags, dest=dest, action="append", help=argparse.SUPPRESS)
        else:
            fmt.add_argument(*flags, dest=dest, action="store_true", help=argparse.SUPPRESS)

    commands.add_parser("random-uuid", help="Print a random id.")
    return parser, fmt


# ---------------------------------------------------------------------------------------------
# Reading the node's configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeStorageConfig:
    """What the storage tool needs from a node's properties file."""

    node_id: int
    log_dirs: tuple[str, ...]


def read_node_config(path: str) -> NodeStorageConfig:
    """``node.id`` and the log directories of a node's properties file; :class:`ToolError`
    naming the file and the setting if they are missing or wrong."""
    try:
        props = load_properties(path)
    except PropertiesError as e:
        raise ToolError(str(e)) from None
    except OSError as e:
        raise ToolError(f"Cannot read the configuration file {path}: {e.strerror or e}") from None
    raw_id = props.get("node.id", "").strip()
    if not raw_id:
        raise ToolError(f"node.id is not set in {path}; it must be a non-negative integer.")
    try:
        node_id = int(raw_id)
    except ValueError:
        node_id = -1
    if node_id < 0:
        raise ToolError(
            f"The node.id must be set to a non-negative integer. We saw {raw_id!r} in {path}."
        )
    setting = "log.dirs" if "log.dirs" in props else "log.dir"
    raw_dirs = props.get(setting, DEFAULT_LOG_DIR)
    dirs = [d.strip() for d in raw_dirs.split(",") if d.strip()]
    if not dirs:
        raise ToolError(f"{setting} in {path} names no directory.")
    metadata_dir = props.get("metadata.log.dir", "").strip()
    if metadata_dir:
        dirs.append(metadata_dir)
    unique = tuple(dict.fromkeys(os.path.normpath(d) for d in dirs))
    return NodeStorageConfig(node_id, unique)


def read_secret(path: str) -> bytes:
    """The secret file's bytes; :class:`ToolError` if it is missing, empty or too short."""
    try:
        with open(path, "rb") as f:
            secret = f.read(SECRET_BYTES_MAX + 1)
    except FileNotFoundError:
        raise ToolError(f"The secret file {path} does not exist.") from None
    except OSError as e:
        raise ToolError(f"Cannot read the secret file {path}: {e.strerror or e}") from None
    if len(secret) > SECRET_BYTES_MAX:
        raise ToolError(f"The secret file {path} is larger than {SECRET_BYTES_MAX} bytes.")
    meaningful = len(secret.strip())
    if meaningful == 0:
        raise ToolError(f"The secret file {path} is empty.")
    if meaningful < SECRET_BYTES_MIN:
        raise ToolError(
            f"The secret file {path} holds {meaningful} bytes (not counting surrounding "
            f"whitespace); a cluster secret needs at least {SECRET_BYTES_MIN}."
        )
    return secret


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _read_meta(directory: str) -> MetaProperties | None:
    try:
        return MetaProperties.read(directory)
    except PropertiesError as e:
        raise ToolError(f"Cannot use {directory}: {e}") from None
    except OSError as e:
        raise ToolError(f"Cannot read {MetaProperties.path_in(directory)}: {e}") from None


def _mkdirs_durably(directory: Path) -> None:
    """Creates ``directory`` and its missing parents, fsyncing each parent that gained one."""
    missing: list[Path] = []
    p = directory
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        fsync_dir(d.parent)


def format_command(
    cluster_id: str, config_path: str, secret_path: str, ignore_formatted: bool, out: TextIO
) -> None:
    """Formats every log directory of the node (see the module docstring); :class:`ToolError`
    before anything is written if any directory must be refused."""
    if not is_valid_uuid(cluster_id):
        raise ToolError(
            f"Cluster ID string {cluster_id} does not appear to be a valid UUID: expected 22 "
            "characters of unpadded base64url, as `kraft-storage random-uuid` prints."
        )
    if cluster_id in RESERVED_UUIDS:
        raise ToolError(f"Cluster ID {cluster_id} is reserved; use `kraft-storage random-uuid`.")
    config = read_node_config(config_path)
    secret = read_secret(secret_path)

    to_format: list[str] = []
    skipped: list[str] = []
    for directory in config.log_dirs:
        path = Path(directory)
        if path.exists() and not path.is_dir():
            raise ToolError(f"Log directory {directory} exists and is not a directory.")
        meta = _read_meta(directory) if path.is_dir() else None
        if meta is None:
            to_format.append(directory)
        elif meta.cluster_id != cluster_id or meta.node_id != config.node_id:
            raise ToolError(
                f"Log directory {directory} is formatted for cluster.id {meta.cluster_id} and "
                f"node.id {meta.node_id}, not for cluster.id {cluster_id} and node.id "
                f"{config.node_id}. Refusing to format it (remove it first if it is no longer "
                "wanted)."
            )
        elif not ignore_formatted:
            raise ToolError(
                f"Log directory {directory} is already formatted. Use --ignore-formatted to "
                "ignore this directory and format the others."
            )
        else:
            skipped.append(directory)

    for directory in skipped:
        print(f"Log directory {directory} is already formatted; skipping it.", file=out)
        existing = Path(directory) / CLUSTER_SECRET_NAME
        try:
            same = existing.read_bytes() == secret
        except OSError:
            same = False
        if not same:
            print(
                f"Warning: {existing} is missing or differs from {secret_path}; it is left as is.",
                file=sys.stderr,
            )
    if not to_format:
        print("All of the log directories are already formatted.", file=out)
        return

    for directory in to_format:
        print(
            f"Formatting {directory} with cluster.id {cluster_id} and node.id {config.node_id}",
            file=out,
        )
        path = Path(directory)
        try:
            _mkdirs_durably(path)
            atomic_write(path / CLUSTER_SECRET_NAME, secret, mode=0o600)
            MetaProperties(
                cluster_id=cluster_id, node_id=config.node_id, directory_id=random_uuid()
            ).write(path)
        except OSError as e:
            raise ToolError(f"Cannot format {directory}: {e.strerror or e}") from None


def info_command(config_path: str, out: TextIO) -> int:
    """Prints what each log directory holds, as ``kafka-storage info``; 1 if any problem."""
    config = read_node_config(config_path)
    problems: list[str] = []
    found: list[str] = []
    first: MetaProperties | None = None
    for directory in sorted(config.log_dirs):
        path = Path(directory)
        if not path.is_dir():
            problems.append(
                f"{directory} is not a directory"
                if path.exists()
                else f"{directory} does not exist"
            )
            continue
        found.append(directory)
        try:
            meta = MetaProperties.read(directory)
        except (PropertiesError, OSError) as e:
            problems.append(f"Error loading {MetaProperties.path_in(directory)}: {e}")
            continue
        if meta is None:
            problems.append(f"{directory} is not formatted.")
        elif first is None:
            first = meta
        elif meta.cluster_id != first.cluster_id:
            problems.append("Mismatched cluster IDs between storage directories.")
        elif meta.node_id != first.node_id:
            problems.append("Mismatched node IDs between storage directories.")
    if found:
        print("Found log directory:" if len(found) == 1 else "Found log directories:", file=out)
        for directory in found:
            print(f"  {directory}", file=out)
        print("", file=out)
    if first is not None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(first.to_properties().items()))
        print(f"Found metadata: {{{shown}}}", file=out)
        print("", file=out)
    if problems:
        print("Found problem:" if len(problems) == 1 else "Found problems:", file=out)
        for problem in problems:
            print(f"  {problem}", file=out)
        print("", file=out)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the tool with ``argv`` (default: the command line); returns the exit status."""
    try:
        parser, format_parser = _build_parser()
        args = parser.parse_args(argv)
        if args.command == "random-uuid":
            print(random_uuid())
            return 0
        if args.command == "info":
            return info_command(args.config, sys.stdout)
        for dest, flags in _UNSUPPORTED_FORMAT_FLAGS.items():
            if getattr(args, dest):
                format_parser.error(f"{flags[0]} is not supported")
        format_command(
            args.cluster_id, args.config, args.secret_file, args.ignore_formatted, sys.stdout
        )
        return 0
    except ToolError as e:
        sys.stdout.flush()
        print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2


if __name__ == "__main__":
    sys.exit(main())
