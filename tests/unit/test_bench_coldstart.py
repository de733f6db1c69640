"""scripts/bench_coldstart.py's reading of the nodes' and the probe's logs (pure)."""

from __future__ import annotations

from datetime import datetime

import pytest

from scripts.bench_coldstart import node_events, probe_events, timeline


def at(clock: str) -> float:
    """A log timestamp's wall-clock seconds (local time, as the node's log writes it)."""
    return datetime.strptime(f"2026-12-06 {clock}", "%Y-%m-%d %H:%M:%S.%f").timestamp()


CONTROLLER_LOG = """\
[2026-12-06 05:55:22,100] INFO starting from /x/node.properties (pid 7) (kraft.server)
[2026-12-06 05:55:22,300] INFO node 1: node 1 leads the metadata quorum in term 1 (kraft.quorum)
[2026-12-06 05:55:22,462] INFO node 1 (cluster c) serving HTTP on http://127.0.0.1:1 (kraft.server)
[2026-12-06 05:55:22,462] WARNING controller not reachable yet: no metadata leader (server.x)
[2026-12-06 05:55:23,066] INFO node 1 is the controller (term 1) (server.controller_driver)
[2026-12-06 05:55:23,080] INFO registered as broker 1, epoch 0 (server.broker_lifecycle)
[2026-12-06 05:55:23,103] INFO unfenced broker 1 (epoch 0) (server.controller_driver)
[2026-12-06 05:55:23,470] INFO unfenced broker 3 (epoch 0) (server.controller_driver)
[2026-12-06 05:55:23,728] INFO unfenced broker 2 (epoch 0) (server.controller_driver)
"""
FOLLOWER_LOG = """\
[2026-12-06 05:55:22,200] INFO starting from /y/node.properties (pid 8) (kraft.server)
[2026-12-06 05:55:22,350] INFO node 3: node 1 leads the metadata quorum in term 1 (kraft.quorum)
[2026-12-06 05:55:22,525] INFO node 3 (cluster c) serving HTTP on http://127.0.0.1:2 (kraft.server)
a line without a timestamp (a traceback's)
[2026-12-06 05:55:23,147] INFO registered as broker 3, epoch 0 (server.broker_lifecycle)
"""
PROBE_LOG = """\
1796536522.800 bench imports done
1796536523.700 client.metadata t read from http://127.0.0.1:1: leaders (epochs) 3 (0)
1796536523.750 client.sender t-0: attempt 1 to http://127.0.0.1:2
1796536523.760 client.sender t-0: attempt 2 to http://127.0.0.1:2
1796536523.900 bench cpu_s=0.300
"""


def test_node_events_are_read_from_the_log_lines_with_their_timestamps() -> None:
    events = node_events(CONTROLLER_LOG)
    assert events["imports"] == [pytest.approx(at("05:55:22.100"))]
    assert events["http"] == [pytest.approx(at("05:55:22.462"))]
    assert events["leader"] == [pytest.approx(at("05:55:23.066"))]
    assert events["registered"] == [pytest.approx(at("05:55:23.080"))]
    assert len(events["unfenced"]) == 3
    assert "leader" not in node_events(FOLLOWER_LOG)


def test_probe_events_take_the_imports_and_every_produce_attempt() -> None:
    events = probe_events(PROBE_LOG)
    assert events["probe-imp"] == [1796536522.8]
    assert events["probe-send"] == [1796536523.75, 1796536523.76]


def test_the_timeline_takes_the_last_node_and_the_first_leader() -> None:
    launch = at("05:55:21.000")
    events = timeline(
        launch,
        launch + 2.5,
        [node_events(CONTROLLER_LOG), node_events(FOLLOWER_LOG)],
        probe_events(PROBE_LOG),
    )
    assert events["imports"] == pytest.approx(1.2)  # the follower, later
    assert events["raft"] == pytest.approx(1.35)  # when every node knew the leader
    assert events["http"] == pytest.approx(1.525)
    assert events["leader"] == pytest.approx(2.066)
    assert events["registered"] == pytest.approx(2.147)
    # Two nodes: the second unfencing of the three logged.
    assert events["unfenced"] == pytest.approx(2.47)
    assert events["probe-send"] == pytest.approx(1796536523.75 - launch)
    assert events["ack"] == pytest.approx(2.5)


def test_an_event_some_node_never_logged_is_left_out_of_the_timeline() -> None:
    launch = at("05:55:21.000")
    old_log = "\n".join(x for x in FOLLOWER_LOG.splitlines() if "starting from" not in x)
    events = timeline(launch, launch + 3.0, [node_events(CONTROLLER_LOG), node_events(old_log)], {})
    assert "imports" not in events
    assert "probe-imp" not in events
    assert events["ack"] == pytest.approx(3.0)
