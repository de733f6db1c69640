"""scripts/cluster.py's controller-quorum paths that need no running node: the bootstrap
servers of a joining controller, and reading whether a removal took effect."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

# scripts/cluster.py runs as a script: its imports are its own directory's modules.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
cluster: Any = importlib.import_module("cluster")
BROKER, COMBINED, CONTROLLER = cluster.BROKER, cluster.COMBINED, cluster.CONTROLLER


def _node(tmp_path: Path, node_id: int, roles: str) -> Any:
    directory = tmp_path / f"node-{node_id}"
    directory.mkdir()
    return cluster.NodeLayout(node_id, 9090 + node_id, 9190 + node_id, directory, roles=roles)


def test_a_joining_controller_bootstraps_from_every_controller_not_removed(
    tmp_path: Path,
) -> None:
    # None of these nodes runs (no pid files): a voter stopped a moment is still a voter, and
    # the joiner counts its voters from this list until it has a dump.
    nodes = [
        _node(tmp_path, 1, COMBINED),
        _node(tmp_path, 2, CONTROLLER),
        _node(tmp_path, 3, BROKER),
        _node(tmp_path, 4, CONTROLLER),
    ]
    (nodes[3].directory / cluster.REMOVED_MARK).write_text("")
    assert cluster.bootstrap_servers(nodes) == "127.0.0.1:9191,127.0.0.1:9192"
