#!/usr/bin/env python3
"""The node container's entrypoint (``compose/Dockerfile``): the node's settings from the
environment, its log directory formatted on the first start only, then ``kraft-server-start``.

The environment, as Kafka's own image reads it (``KAFKA_*``, ``CLUSTER_ID``)::

    KRAFT_<NAME>          one node setting: NAME is the setting upper-cased with its dots as
                          underscores (KRAFT_NODE_ID -> node.id, KRAFT_CONTROLLER_QUORUM_VOTERS
                          -> controller.quorum.voters, KRAFT_PEER_2_HTTP_DIAL ->
                          peer.2.http.dial). Each must be a setting the node accepts: the node's
                          own validation (server/config.py) checks them all before anything is
                          written, and a mistake is refused naming the variable.
    CLUSTER_ID            the cluster's id (kraft-storage random-uuid), the same on every node
    CLUSTER_SECRET_FILE   a file holding the cluster secret (a mounted Docker secret), or
    CLUSTER_SECRET        the secret itself (at least 16 bytes), the same on every node; it is
                          removed from the node's environment

What it does, each start:

1. Maps the ``KRAFT_*`` variables to settings and validates them as the node will.
2. Writes ``node.properties`` beside the log directory (``/var/lib/kraft/node.properties`` in
   the image): anew at each start, so the environment is the one source of the settings.
3. A log directory without ``meta.properties`` is formatted, as ``kraft-storage format`` does
   (it is that code). A formatted one is never formatted again: it must belong to CLUSTER_ID and
   this node.id, and hold the secret given, or the start is refused with what differs (a node
   never joins another cluster, and a changed secret would cut its Raft links silently).
4. Replaces itself with ``kraft-server-start node.properties`` (same pid, so signals from the
   container runtime reach the node), passing on its own arguments (``--override k=v``, ...).

Exit status: 1 and one line on stderr (``container-entrypoint: ...``) when refused; else the
node's.
"""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from server.config import ConfigError, NodeConfig
from storage.ids import is_valid_uuid
from storage.properties import MetaProperties, PropertiesError, format_properties, parse_properties
from storage.storage_tool import (
    CLUSTER_SECRET_NAME,
    SECRET_BYTES_MAX,
    SECRET_BYTES_MIN,
    ToolError,
    format_command,
    read_secret,
)

PROG = "container-entrypoint"
SETTING_PREFIX = "KRAFT_"
CLUSTER_ID_VAR = "CLUSTER_ID"
SECRET_VAR = "CLUSTER_SECRET"
SECRET_FILE_VAR = "CLUSTER_SECRET_FILE"
PROPERTIES_NAME = "node.properties"

# Kafka's image also maps "__" to "_" and "___" to "-"; no setting of ours has either, so a
# variable name is upper-case letters and digits between single underscores.
_SETTING_VAR = re.compile(r"^KRAFT_[A-Z0-9]+(?:_[A-Z0-9]+)*$")
_SETTING = re.compile(r"^[a-z][a-z0-9]*(?:\.[a-z0-9]+)*$")


class EntrypointError(Exception):
    """A refusal: printed as one line on stderr, exit status 1."""


def setting_name(variable: str) -> str:
    """The node setting a ``KRAFT_*`` variable sets (``KRAFT_NODE_ID`` -> ``node.id``)."""
    return variable[len(SETTING_PREFIX) :].lower().replace("_", ".")


def variable_name(setting: str) -> str:
    """The ``KRAFT_*`` variable that sets ``setting`` (``node.id`` -> ``KRAFT_NODE_ID``)."""
    return SETTING_PREFIX + setting.upper().replace(".", "_")


def settings_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """The node settings the ``KRAFT_*`` variables of ``env`` give, in name order, checked by
    the node's own validation; :class:`EntrypointError` naming the variable otherwise."""
    variables = sorted(name for name in env if name.startswith(SETTING_PREFIX))
    for name in variables:
        if not _SETTING_VAR.match(name):
            raise EntrypointError(
                f"{name}: not a setting variable; KRAFT_ is followed by the setting's name "
                "upper-cased with its dots as underscores (KRAFT_NODE_ID for node.id)"
            )
    by_setting = {setting_name(name): name for name in variables}
    props = {setting: env[name] for setting, name in by_setting.items()}
    try:
        NodeConfig.from_properties(props)
    except ConfigError as e:
        message = str(e)
        # The node's messages start with the setting they are about: name the variable too
        # (the one given, or the one to give for a required setting that is missing).
        setting, sep, rest = message.partition(":")
        if sep and _SETTING.match(setting):
            variable = by_setting.get(setting, variable_name(setting))
            raise EntrypointError(f"{variable} ({setting}):{rest}") from None
        raise EntrypointError(message) from None
    return props


def properties_text(props: Mapping[str, str]) -> str:
    """``node.properties`` for ``props``: plain ``key=value`` lines where a value reads back as
    itself (all of ours), escaped as Java's ``Properties.store`` would otherwise."""
    lines = [f"# Written by {PROG} from the container's KRAFT_* variables at each start.\n"]
    for key, value in props.items():
        plain = f"{key}={value}\n"
        lines.append(
            plain if parse_properties(plain) == {key: value} else format_properties({key: value})
        )
    return "".join(lines)


def read_given_secret(env: Mapping[str, str]) -> bytes:
    """The secret from CLUSTER_SECRET_FILE or CLUSTER_SECRET (exactly one), checked as
    ``kraft-storage format`` checks a secret file."""
    path, value = env.get(SECRET_FILE_VAR), env.get(SECRET_VAR)
    if path and value:
        raise EntrypointError(f"{SECRET_FILE_VAR} and {SECRET_VAR} are both set; set one")
    if path:
        try:
            return read_secret(path)
        except ToolError as e:
            raise EntrypointError(f"{SECRET_FILE_VAR}: {e}") from None
    if not value:
        raise EntrypointError(
            f"{SECRET_VAR} (or {SECRET_FILE_VAR}) is not set: every node needs the cluster's "
            "secret, the same on all of them"
        )
    secret = value.encode("utf-8")
    meaningful = len(secret.strip())
    # The storage tool's bounds for a secret file, applied to the variable's value.
    if not SECRET_BYTES_MIN <= meaningful <= SECRET_BYTES_MAX:
        raise EntrypointError(
            f"{SECRET_VAR} holds {meaningful} bytes (not counting surrounding whitespace); a "
            f"cluster secret needs {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX}"
        )
    return secret


def prepare(env: Mapping[str, str]) -> Path:
    """Steps 1-3 of the module's docstring; returns the ``node.properties`` written."""
    props = settings_from_env(env)
    config = NodeConfig.from_properties(props)
    cluster_id = env.get(CLUSTER_ID_VAR, "").strip()
    if not cluster_id:
        raise EntrypointError(
            f"{CLUSTER_ID_VAR} is not set: every node is formatted with the cluster's id "
            "(kraft-storage random-uuid), the same on all of them"
        )
    if not is_valid_uuid(cluster_id):
        raise EntrypointError(
            f"{CLUSTER_ID_VAR}: {cluster_id!r} is not a cluster id: expected 22 characters of "
            "unpadded base64url, as `kraft-storage random-uuid` prints"
        )
    secret = read_given_secret(env)
    log_dir = config.log_dir
    properties = log_dir.parent / PROPERTIES_NAME
    try:
        log_dir.parent.mkdir(parents=True, exist_ok=True)
        properties.write_text(properties_text(props), encoding="utf-8")
    except OSError as e:
        raise EntrypointError(f"cannot write {properties}: {e.strerror or e}") from None
    try:
        meta = MetaProperties.read(log_dir)
    except (OSError, PropertiesError) as e:
        raise EntrypointError(f"cannot read {MetaProperties.path_in(log_dir)}: {e}") from None
    if meta is None:
        _format(log_dir, cluster_id, properties, secret)
    else:
        _check_formatted(log_dir, meta, cluster_id, config.node_id, secret)
    return properties


def _format(log_dir: Path, cluster_id: str, properties: Path, secret: bytes) -> None:
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch) / "secret"
        staged.write_bytes(secret)
        try:
            format_command(cluster_id, str(properties), str(staged), False, out)
        except ToolError as e:
            raise EntrypointError(str(e)) from None
    print(f"{PROG}: {out.getvalue().strip()}", file=sys.stderr)


def _check_formatted(
    log_dir: Path, meta: MetaProperties, cluster_id: str, node_id: int, secret: bytes
) -> None:
    remedy = "a node never joins another cluster; remove the volume to begin again"
    if meta.cluster_id != cluster_id:
        raise EntrypointError(
            f"{log_dir} belongs to cluster {meta.cluster_id}, but {CLUSTER_ID_VAR} is "
            f"{cluster_id}; {remedy}"
        )
    if meta.node_id != node_id:
        raise EntrypointError(
            f"{log_dir} belongs to node {meta.node_id}, but KRAFT_NODE_ID is {node_id}; a node "
            "never starts on another node's directory"
        )
    stored = log_dir / CLUSTER_SECRET_NAME
    try:
        same = stored.read_bytes().strip() == secret.strip()
    except OSError as e:
        raise EntrypointError(f"cannot read {stored}: {e.strerror or e}") from None
    if not same:
        raise EntrypointError(
            f"{stored} differs from the secret given ({SECRET_VAR} or {SECRET_FILE_VAR}): the "
            "other nodes would refuse this one's Raft links; give every node the secret it was "
            "formatted with"
        )
    print(
        f"{PROG}: {log_dir} is formatted for cluster {cluster_id} and node {node_id}; "
        "starting it as it is",
        file=sys.stderr,
    )


def server_command(properties: Path, args: Sequence[str]) -> list[str]:
    """``kraft-server-start`` beside this Python (the image's, the venv's), else ``-m``."""
    script = Path(sys.executable).parent / "kraft-server-start"
    head = [str(script)] if script.is_file() else [sys.executable, "-m", "server.main"]
    return [*head, str(properties), *args]


def main(argv: Sequence[str] | None = None) -> int:
    """Prepares the node and replaces this process with it; returns 1 only when refused."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        properties = prepare(os.environ)
    except EntrypointError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    env = {k: v for k, v in os.environ.items() if k != SECRET_VAR}
    command = server_command(properties, args)
    sys.stderr.flush()
    os.execve(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main())
