"""The seeded random scheduler: which event happens next, for as many steps as asked.

Each step picks one event by weight among those possible now: deliver, drop or time out a
message or fetch round, a follower round, a group-commit flush, a produce on a node that
believes it leads, a metadata delivery (to any later version: a node may skip some), an ISR
change request sent, a leader's ISR check, an HW checkpoint, time passing (and the controller
acting on sessions), or a fault: pause, resume, crash (kill -9 or power loss), restart, a node
cut off, one link cut (between nodes, or a node and the controller), the network healed. At
most all nodes but one are paused or down at once. Everything is drawn from ``sim.rng``, so
one seed gives one trace.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.simulation.cluster import CONTROLLER, Simulation

# How far one tick moves the clock, at most.
TICK_MS_MAX = 300

# Relative weights of the events (a fault is one event among ~100 others).
WEIGHTS = {
    "deliver": 30,
    "drop": 2,
    "round": 20,
    "timeout": 2,
    "flush": 8,
    "produce": 10,
    "metadata": 8,
    "isr-send": 4,
    "isr-check": 3,
    "checkpoint": 2,
    "tick": 8,
    "fault": 3,
}


def run_random(sim: Simulation, steps: int, faults: bool = True) -> None:
    """``steps`` events picked by the seeded scheduler, the invariants checked after each."""
    for _ in range(steps):
        _pick(sim, faults)()
        sim.step_done()


def _pick(sim: Simulation, faults: bool) -> Callable[[], object]:
    rng = sim.rng
    choices: list[tuple[str, Callable[[], object]]] = []
    active = [n for n, node in sorted(sim.nodes.items()) if node.active]
    ready = [m for m in sim.in_flight if sim.deliverable(m)]
    if ready:
        choices.append(("deliver", lambda: sim.deliver(rng.choice(ready))))
        choices.append(("drop", lambda: sim.drop(rng.choice(ready))))
    sessions = [
        (n, leader, s.round) for n in active for leader, s in sorted(sim.nodes[n].sessions.items())
    ]
    idle = [(n, leader) for n, leader, round_ in sessions if not round_]
    waiting = [(n, leader) for n, leader, round_ in sessions if round_]
    if idle:
        choices.append(("round", lambda: sim.follower_round(*rng.choice(idle))))
    if waiting:
        choices.append(("timeout", lambda: sim.time_out_round(*rng.choice(waiting))))
    if active:
        choices += [
            ("flush", lambda: sim.flush(rng.choice(active))),
            ("produce", lambda: _produce(sim, rng.choice(active))),
            ("metadata", lambda: _metadata(sim, rng.choice(active))),
            ("isr-send", lambda: sim.send_isr_changes(rng.choice(active))),
            ("isr-check", lambda: sim.check_isr(rng.choice(active))),
            ("checkpoint", lambda: sim.checkpoint(rng.choice(active))),
        ]
    choices.append(("tick", lambda: sim.tick(rng.randint(1, TICK_MS_MAX))))
    if faults:
        choices.append(("fault", lambda: _fault(sim)))
    return rng.choices(choices, [WEIGHTS[name] for name, _ in choices])[0][1]


def _produce(sim: Simulation, node_id: int) -> None:
    index = sim.rng.choice(sorted(sim.replicas))
    if sim.nodes[node_id].partitions[index].is_leader:
        acks = sim.rng.choice(["all", "all", "all", "1"])
        sim.produce(node_id, index, sim.rng.randint(1, 3), acks)


def _metadata(sim: Simulation, node_id: int) -> None:
    node = sim.nodes[node_id]
    if node.version < sim.controller.latest:
        sim.deliver_metadata(node_id, sim.rng.randint(node.version + 1, sim.controller.latest))


def _fault(sim: Simulation) -> None:
    rng = sim.rng
    nodes = sorted(sim.nodes)
    kind = rng.choice(["pause", "resume", "crash", "restart", "isolate", "cut", "heal"])
    node_id = rng.choice(nodes)
    node = sim.nodes[node_id]
    down = [n for n in nodes if not sim.nodes[n].up]
    room = sum(1 for n in nodes if sim.nodes[n].active) > 1
    if kind == "pause" and node.active and room:
        sim.pause(node_id)
    elif kind == "resume" and node.paused:
        sim.resume(node_id)
    elif kind == "crash" and node.up and (room or node.paused):
        sim.crash(node_id, power_loss=rng.random() < 0.5)
    elif kind == "restart" and down:
        target = rng.choice(down)
        if sim.can_restart(target):
            sim.restart(target)
    elif kind == "isolate" and not sim.cut:
        sim.isolate(node_id)
    elif kind == "cut":
        a, b = rng.sample([CONTROLLER, *nodes], 2)
        sim.cut_link(a, b)
    elif kind == "heal" and sim.cut:
        sim.heal()
