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


STATUS = """ClusterId:              MkU3OEVBNTcwNTJENDM2Qg
LeaderId:               2
LeaderEpoch:            3
HighWatermark:          {hw}
MaxFollowerLag:         0
MaxFollowerLagTimeMs:   12
CurrentVoters:          [{voters}]
CurrentObservers:       [4]
"""


def test_a_removal_counts_as_done_only_once_committed() -> None:
    from client.tools.metadata_quorum import replication_lines

    quorum = {
        "leader_id": 2,
        "voters": [
            {"id": 2, "status": "Leader", "log_end_offset": 57, "lag": 0},
            {"id": 3, "status": "Follower", "log_end_offset": 57, "lag": 0},
        ],
        "observers": [],
    }
    table = "\n".join(replication_lines(quorum))
    assert cluster.leader_log_end_of(table) == 57
    assert cluster.leader_log_end_of("") is None
    # The voters shown count the removal of 1 as soon as the leader appended it (entry 57):
    # not done until the high watermark reaches the leader's log end read then.
    assert not cluster.removal_committed(1, STATUS.format(hw=56, voters="2,3"), 57)
    assert cluster.removal_committed(1, STATUS.format(hw=57, voters="2,3"), 57)
    # A new leader overwrote it: 1 is a voter again, whatever the high watermark.
    assert not cluster.removal_committed(1, STATUS.format(hw=60, voters="1,2,3"), 57)
