"""kraft-metadata-quorum add-controller / remove-controller (Kafka's KIP-853 commands).

``add-controller --command-config controller.properties`` reads, as Kafka's tool does, the new
controller's ``node.id`` (a controller: ``process.roles`` has ``controller``), its metadata
log directory (``metadata.log.dir``, else the first of ``log.dirs``/``log.dir``) and that
directory's ``meta.properties`` ``directory.id``, and its CONTROLLER listener (advertised
first); then ``POST /v1/cluster/quorum/voters``. ``remove-controller --controller-id N
--controller-directory-id D`` is ``DELETE /v1/cluster/quorum/voters/N?directory_id=D``. Both
print Kafka 4.4's line; ``--dry-run`` prints it without asking the cluster.

The new controller must be running first (it follows the log as an observer and catches up);
the quorum's leader adds it only once it is caught up (docs/design.md, "Roles").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.security import ClientSecurity, SecurityConfigError
from client.tools.common import UsageError
from storage.ids import is_valid_uuid
from storage.properties import MetaProperties, PropertiesError, parse_properties

CONTROLLER_LISTENER = "CONTROLLER"
_LISTENER = re.compile(r"^([A-Za-z0-9_]+)://(\[[^\]]*\]|[^:/]*):(\d+)$")
_HINT = "Is this a valid controller configuration file?"


@dataclass(frozen=True)
class NewController:
    """What add-controller tells the quorum about the controller it adds."""

    node_id: int
    directory_id: str
    host: str
    port: int

    @property
    def raft_address(self) -> str:
        return f"{self.host}:{self.port}"

    def body(self) -> dict[str, Any]:
        """The ``POST /v1/cluster/quorum/voters`` body."""
        return {
            "voter_id": self.node_id,
            "directory_id": self.directory_id,
            "raft_address": self.raft_address,
        }


# Settings of a controller's own properties that only its server side reads (its keystore and
# key): add-controller's client leaves them out, as Kafka's admin client ignores the configs it
# does not know; the client settings of the same file (security.protocol, the truststore, SASL)
# are the tool's.
_SERVER_ONLY = ("ssl.keystore.", "ssl.key.")


def load_controller_config(path: str) -> tuple[ClientSecurity | None, dict[str, str]]:
    """add-controller's ``--command-config``: the controller's properties (all of them) and
    the client security its client settings give; UsageError for a file that cannot be read
    or a wrong client setting."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read {path}: {why}") from None
    try:
        props = parse_properties(text, source=path)
        client = {k: v for k, v in props.items() if not k.startswith(_SERVER_ONLY)}
        security = ClientSecurity.from_properties(client, path)
        security.ssl_context()  # a truststore that cannot be loaded fails here, not mid-run
    except (PropertiesError, SecurityConfigError) as exc:
        raise UsageError(str(exc)) from None
    return security, props


def controller_id(props: dict[str, str]) -> int:
    """Kafka's getControllerId: node.id of a controller configuration, with Kafka's errors."""
    if "node.id" not in props:
        raise UsageError(f"node.id not found in configuration file. {_HINT}")
    text = props["node.id"].strip()
    if not re.fullmatch(r"-?\d+", text):
        raise UsageError(f"node.id must be an integer, got {text!r}. {_HINT}")
    node_id = int(text)
    if node_id < 0:
        raise UsageError(f"node.id was negative in configuration file. {_HINT}")
    if "controller" not in props.get("process.roles", ""):
        raise UsageError(
            f"process.roles did not contain 'controller' in configuration file. {_HINT}"
        )
    return node_id


def metadata_directory(props: dict[str, str]) -> str:
    """Kafka's getMetadataDirectory: metadata.log.dir, else the first log directory."""
    if "metadata.log.dir" in props:
        return props["metadata.log.dir"]
    for key in ("log.dirs", "log.dir"):
        if key in props:
            dirs = [d.strip() for d in props[key].strip().split(",") if d.strip()]
            if dirs:
                return dirs[0]
    raise UsageError(f"Neither metadata.log.dir nor log.dirs were found. {_HINT}")


def directory_id_of(directory: str) -> str:
    """The ``directory.id`` of ``directory``'s meta.properties, with Kafka's errors."""
    try:
        meta = MetaProperties.read(directory)
    except (OSError, PropertiesError):
        meta = None
    if meta is None:
        raise UsageError(f"Unable to read meta.properties from {directory}")
    if meta.directory_id is None:
        raise UsageError(f"No directory id found in {directory}")
    return meta.directory_id


def controller_endpoint(props: dict[str, str]) -> tuple[str, int]:
    """The controller listener's (host, port) in ``listeners``.

    Kafka takes advertised.listeners' entry over it; our quorum names a voter by the address
    its CONTROLLER listener binds (pysyncobj's node identity, which the other voters dial or
    reach through raft dial overrides), and the node turns voter only when the log adds that
    address: an advertised one would make a voter nobody answers for (the leader refuses it)."""
    found: dict[str, tuple[str, int]] = {}
    for key in ("listeners",):
        for item in filter(None, (p.strip() for p in props.get(key, "").split(","))):
            match = _LISTENER.match(item)
            if match is None:
                raise UsageError(f"{key}: expected NAME://host:port, got {item!r}")
            host = match[2].strip("[]") or "localhost"
            found[match[1].upper()] = (host, int(match[3]))
    names = props.get("controller.listener.names", CONTROLLER_LISTENER)
    for name in filter(None, (n.strip().upper() for n in names.split(","))):
        if name not in found:
            raise UsageError(f"Cannot find information about controller listener name: {name}")
        return found[name]
    raise UsageError(f"controller.listener.names was not found. {_HINT}")


def new_controller(props: dict[str, str]) -> NewController:
    """Everything add-controller needs from the controller's properties (UsageError else)."""
    node_id = controller_id(props)
    directory_id = directory_id_of(metadata_directory(props))
    host, port = controller_endpoint(props)
    return NewController(node_id, directory_id, host, port)


def added_line(controller: NewController, dry_run: bool) -> str:
    """Kafka's add-controller line."""
    host = f"[{controller.host}]" if ":" in controller.host else controller.host
    return (
        f"{'DRY RUN of adding' if dry_run else 'Added'} controller {controller.node_id} with "
        f"directory id {controller.directory_id} and endpoints: "
        f"{CONTROLLER_LISTENER}://{host}:{controller.port}"
    )


def check_removal(voter_id: int, directory_id: str) -> None:
    """Kafka's checks of remove-controller's flags (UsageError with its messages)."""
    if voter_id < 0:
        raise UsageError(f"Invalid negative --controller-id: {voter_id}")
    if not is_valid_uuid(directory_id):
        raise UsageError(
            f"Failed to parse --controller-directory-id: Invalid UUID string: {directory_id}"
        )


def removed_line(voter_id: int, directory_id: str, dry_run: bool) -> str:
    """Kafka's remove-controller line."""
    verb = "DRY RUN of removing " if dry_run else "Removed "
    return f"{verb}KRaft controller {voter_id} with directory id {directory_id}"
