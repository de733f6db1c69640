"""The fault schedules of issue 10, each a function of a :class:`Run` that injects its faults
for a short while and returns (the harness heals after it). Durations are figures to keep the
tier short on two cores; nothing asserts how long anything took."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from scripts.node_process import wait_until
from server import limits
from tests.chaos import toxics
from tests.chaos.harness import Run

# How long a network fault lasts (the issue: 15 s for the controller's HTTP cut).
FAULT_S = float(os.environ.get("CHAOS_FAULT_S", "12"))
# A kill -9'd node stays down this long before it is restarted.
DOWN_S = float(os.environ.get("CHAOS_DOWN_S", "8"))
# Longer than the broker session, so the paused leader is fenced.
PAUSE_S = 4 * limits.BROKER_SESSION_TIMEOUT_S


def kill_leader(run: Run) -> None:
    victim = run.leader(0)
    run.kill(victim)
    time.sleep(DOWN_S)


def kill_follower(run: Run) -> None:
    leader = run.leader(0)
    victim = next(n.node_id for n in run.cluster.nodes if n.node_id != leader)
    run.kill(victim)
    time.sleep(DOWN_S)


def kill_controller(run: Run) -> None:
    run.kill(run.controller())
    time.sleep(DOWN_S)


def kill_all(run: Run) -> None:
    for node in run.cluster.nodes:
        run.kill(node.node_id)
    time.sleep(2.0)


def pause_leader(run: Run) -> None:
    victim = run.leader(0)
    run.pause(victim)
    time.sleep(PAUSE_S)
    run.resume(victim)
    time.sleep(DOWN_S - PAUSE_S if DOWN_S > PAUSE_S else 0)


def _isolate(run: Run, node_id: int, how: str) -> None:
    names = run.links.of(node_id)
    if how == "down":
        toxics.set_enabled(names, False)
    elif how == "timeout":
        toxics.add_toxic(names, "timeout", timeout=0)
    elif how == "reset_peer":
        toxics.add_toxic(names, "reset_peer", timeout=0)
    time.sleep(FAULT_S)


def isolate_leader_timeout(run: Run) -> None:
    _isolate(run, run.leader(0), "timeout")


def isolate_leader_down(run: Run) -> None:
    _isolate(run, run.leader(0), "down")


def isolate_leader_reset(run: Run) -> None:
    _isolate(run, run.leader(0), "reset_peer")


def isolate_controller(run: Run) -> None:
    _isolate(run, run.controller(), "down")


def cut_controller_http(run: Run) -> None:
    """Only the controller's HTTP links, both ways; its Raft links stay up (issue 10, item 2)."""
    toxics.set_enabled(run.links.of(run.controller(), raft=False), False)
    time.sleep(15.0)


def cut_raft(run: Run) -> None:
    toxics.set_enabled(list(run.links.raft.values()), False)
    time.sleep(FAULT_S)


def bridge(run: Run) -> None:
    """Nodes 1 and 3 cannot talk; 2 sees both."""
    toxics.set_enabled(run.links.between(1, 3), False)
    time.sleep(FAULT_S)


def latency(run: Run) -> None:
    toxics.add_toxic(run.links.all(), "latency", latency=50, jitter=50)
    time.sleep(FAULT_S)


def bandwidth(run: Run) -> None:
    toxics.add_toxic(run.links.all(), "bandwidth", rate=64)  # KB/s
    time.sleep(FAULT_S)


def slicer(run: Run) -> None:
    toxics.add_toxic(run.links.all(), "slicer", average_size=64, size_variation=32, delay=50)
    time.sleep(FAULT_S)


def rolling_restart(run: Run) -> None:
    for node in run.cluster.nodes:
        node.stop()
        node.start(wait=False)
        node.wait_ready()
        wait_until(
            f"node {node.node_id} back in every ISR",
            lambda: all(len(p["isr"]) == 3 for p in _partitions(run)),
            30.0,
        )


def _partitions(run: Run) -> list[dict[str, object]]:
    from scripts.node_process import http

    status, body = http("GET", f"{run.cluster.nodes[0].url}/v1/topics/busy", timeout=5)
    return body["partitions"] if status == 200 else [{"isr": []}]


SCHEDULES: dict[str, Callable[[Run], None]] = {
    "kill-leader": kill_leader,
    "kill-follower": kill_follower,
    "kill-controller": kill_controller,
    "kill-all": kill_all,
    "pause-leader": pause_leader,
    "isolate-leader-timeout": isolate_leader_timeout,
    "isolate-leader-down": isolate_leader_down,
    "isolate-leader-reset": isolate_leader_reset,
    "isolate-controller": isolate_controller,
    "cut-controller-http": cut_controller_http,
    "cut-raft": cut_raft,
    "bridge": bridge,
    "latency": latency,
    "bandwidth": bandwidth,
    "slicer": slicer,
    "rolling-restart": rolling_restart,
}
