"""Replication's rules, one scripted scenario each, on the simulated cluster (as etcd-raft's
``raft_paper_test.go`` reads like the paper). Three nodes, one partition whose replicas are
nodes 1, 2, 3 in that order, node 1 leading at epoch 0; the invariant checker runs after every
step of every scenario (``tests/invariants.py``)."""

from __future__ import annotations

from client.protocol import NOT_ENOUGH_REPLICAS, ApiError
from server.fetcher import fetch_request
from storage.batch import read_header
from tests.simulation.cluster import (
    CONTROLLER,
    PendingAck,
    Settings,
    Simulation,
    records_of,
)
from tests.simulation.scheduler import run_random

SESSION_MS = Settings().session_ms
LAG_MAX_MS = Settings().lag_max_ms


def acked(result: PendingAck | ApiError) -> PendingAck:
    assert isinstance(result, PendingAck), f"the produce was refused: {result}"
    return result


def lapse_session(sim: Simulation, node: int) -> None:
    """The node loses the controller for longer than its session (a network blip: it stays
    alive and keeps its data), is fenced, then comes back and is unfenced."""
    sim.cut_link(node, CONTROLLER)
    sim.tick(SESSION_MS + 1)
    sim.heal()
    sim.settle_metadata()


def truncations(sim: Simulation) -> list[str]:
    return [line.split(" ", 1)[1] for line in sim.trace if " truncates " in line]


def test_leadership_moving_back_and_forth_without_writes_leaves_no_follower_looping() -> None:
    """Issue 10: the old leader appended in epoch 0; leadership moves to node 2 (epoch 1) and
    back to node 1 (epoch 2) with no write in between, node 2 alive throughout. Node 2 then
    holds an epoch-1 entry at its log end that the leader never had: it must drop it when it
    truncates (even though no record goes), or the same fetch and truncation repeat forever."""
    sim = Simulation()
    first = acked(sim.produce(1, count=2))
    sim.replicate_until_quiet()
    assert first.outcome == "acknowledged"

    lapse_session(sim, 1)  # node 2 leads at epoch 1, at its log end: no write follows
    assert sim.controller.current(0).leader == 2
    sim.replicate_until_quiet()  # node 1 follows node 2 and rejoins the ISR
    assert sorted(sim.controller.current(0).isr) == [1, 2, 3]

    lapse_session(sim, 2)  # node 1 leads again, at epoch 2
    state = sim.controller.current(0)
    assert (state.leader, state.leader_epoch) == (1, 2)
    rounds = sim.replicate_until_quiet(rounds_max=5)

    assert rounds <= 3, "a follower needs one fetch to learn where it diverges, one to go on"
    sim.check_converged()
    node2 = sim.nodes[2].logs[0]
    assert node2.epoch_cache.entries == [(0, 0)], "the epoch-1 entry at the log end is gone"
    assert [v for _, v in records_of(node2)] == first.values


def test_a_deposed_leaders_unreplicated_tail_is_truncated_by_leader_epoch() -> None:
    """KIP-101/279: a leader appends records no follower fetched and is deposed; the new leader
    writes other records at the same offsets. When the old leader follows again it truncates
    to where its last common epoch ends on the new leader, then copies the new records."""
    sim = Simulation()
    committed = acked(sim.produce(1, count=3))
    sim.replicate_until_quiet()

    sim.isolate(1)
    tail = acked(sim.produce(1, count=2, acks="1"))  # offsets 3-4, acknowledged on node 1 only
    stranded = acked(sim.produce(1, count=1, acks="all"))  # offset 5 waits for the followers
    sim.flush(1)
    sim.tick(SESSION_MS + 1)  # the controller fences node 1: node 2 leads at epoch 1
    sim.settle_metadata()
    newer = acked(sim.produce(2, count=3))  # offsets 3-5 again, at epoch 1
    sim.replicate_until_quiet()
    assert newer.outcome == "acknowledged"
    assert stranded.outcome is None, "a cut-off leader commits no acks=all write"

    sim.heal()
    sim.settle_metadata()  # node 1 learns it follows node 2
    assert stranded.outcome is not None and stranded.outcome.startswith("not committed")
    sim.replicate_until_quiet()

    assert truncations(sim) == ["node 1 truncates p0 from 6 to 3"]
    sim.check_converged()
    node1 = sim.nodes[1].logs[0]
    assert [v for _, v in records_of(node1)] == committed.values + newer.values
    assert tail.values[0] not in [v for _, v in records_of(node1)]
    assert node1.epoch_cache.entries == [(0, 0), (1, 3)]


def test_a_follower_far_behind_catches_up_within_the_fetch_byte_budget() -> None:
    """A follower cut off while the leader took 150 batches catches up over many fetches,
    none of which carries more than the byte budget (whole batches, at least one)."""
    budget = 1024
    sim = Simulation(settings=Settings(fetch_bytes=budget))
    sim.cut_link(1, 3)  # node 3 still reaches the controller: it stays live, and lags
    sim.cut_link(2, 3)
    for _ in range(150):
        acked(sim.produce(1, count=1, acks="1"))
        sim.replication_pass()
    log = sim.nodes[1].logs[0]
    sizes = [read_header(b).size for s in log.segments for b in s.batches]
    assert sim.nodes[3].logs[0].log_end_offset == 0

    sim.heal()
    start = len(sim.answers)
    sim.replicate_until_quiet(rounds_max=100)

    to_node3 = [size for follower, _, size, _ in sim.answers[start:] if follower == 3 and size]
    assert all(size <= budget for size in to_node3)
    assert sum(to_node3) == sum(sizes)
    assert len(to_node3) >= sum(sizes) // budget
    assert len(to_node3) <= sum(sizes) // (budget - max(sizes)) + 1
    sim.check_converged()


def lag(sim: Simulation, ms: int) -> None:
    """Time passes with the live followers fetching; the leader (node 1) checks its ISR, as
    it does every second, and asks the controller for the change."""
    for _ in range(ms // 500):
        sim.tick(500)
        sim.replication_pass()
        sim.check_isr(1)
        sim.replicate_until_quiet()


def test_a_lagging_follower_leaves_the_isr_after_the_lag_time_and_rejoins_when_caught_up() -> None:
    """replica.lag.time.max.ms with min.insync.replicas=2: the HW waits for every ISR member;
    a follower that has not caught up for the lag time leaves the ISR (the leader asks, the
    controller writes it) and the HW moves on; below min.insync.replicas acks=all is refused
    but acks=1 still commits; caught-up followers rejoin and acks=all works again."""
    sim = Simulation(settings=Settings(min_insync_replicas=2))
    sim.cut_link(1, 3)  # node 3 lags but stays live (it still reaches the controller)
    waiting = acked(sim.produce(1, count=2))
    sim.replicate_until_quiet()
    assert waiting.outcome is None and sim.nodes[1].partitions[0].high_watermark == 0, (
        "the HW waits for node 3, still in the ISR"
    )
    lag(sim, LAG_MAX_MS - 500)
    assert sorted(sim.controller.current(0).isr) == [1, 2, 3], "not lagging for long enough yet"
    lag(sim, 1000)
    assert sorted(sim.controller.current(0).isr) == [1, 2]
    assert waiting.outcome == "acknowledged", "the HW moved on with nodes 1 and 2"

    sim.cut_link(1, 2)
    lag(sim, LAG_MAX_MS + 500)
    assert sim.controller.current(0).isr == (1,)
    refused = sim.produce(1, count=1)
    assert isinstance(refused, ApiError) and refused.kind == NOT_ENOUGH_REPLICAS
    alone = acked(sim.produce(1, count=1, acks="1"))
    sim.flush(1)
    assert sim.nodes[1].partitions[0].high_watermark == alone.last_offset + 1, (
        "the HW is the smallest flushed offset over the ISR, whatever min.insync.replicas"
    )

    sim.heal()
    sim.replicate_until_quiet()
    assert sorted(sim.controller.current(0).isr) == [1, 2, 3]
    again = acked(sim.produce(1, count=1))
    sim.replicate_until_quiet()
    assert again.outcome == "acknowledged"
    sim.check_converged()


def test_no_acks_all_success_when_the_isr_shrinks_below_min_insync_to_commit_the_write() -> None:
    """min.insync.replicas=2 promises that an acknowledged acks=all record is on two replicas.
    A write accepted with the ISR [1, 2] waits for node 2, which has stopped fetching; when
    node 2 leaves the ISR the HW passes the write with node 1 alone: the answer must be
    NOT_ENOUGH_REPLICAS (the outcome is unknown), not success."""
    sim = Simulation(settings=Settings(min_insync_replicas=2))
    sim.cut_link(1, 3)
    lag(sim, LAG_MAX_MS + 500)
    assert sorted(sim.controller.current(0).isr) == [1, 2]

    sim.cut_link(1, 2)
    write = acked(sim.produce(1, count=1))  # accepted: the ISR is [1, 2] still
    lag(sim, LAG_MAX_MS + 500)
    assert sim.controller.current(0).isr == (1,)
    holding = [n for n, node in sorted(sim.nodes.items()) if node.logs[0].log_end_offset > 0]
    assert holding == [1]
    assert write.outcome == (
        "not committed: the ISR of sim-0 shrank below min.insync.replicas (2) before the "
        "records were committed"
    )


def test_a_follower_that_knows_a_newer_epoch_deposes_no_leader() -> None:
    """Epochs come from the metadata log only: node 1, last of its ISR, is paused past its
    session; the controller keeps it in the ISR (KIP-841) with no leader, and when it resumes
    makes it leader again at epoch 2 before node 1 has applied any of it. A follower at epoch
    2 fetches from it and is told UNKNOWN_LEADER_EPOCH; node 1 still leads (a number in a
    request deposes nobody). That is safe: the controller could elect only node 1, and its
    epoch 2 starts at its own log end, so what it acknowledged meanwhile stays."""
    sim = Simulation()
    committed = acked(sim.produce(1, count=2))
    sim.replicate_until_quiet()
    sim.cut_link(1, 2)
    sim.cut_link(1, 3)
    for _ in range(5):  # the followers lag: the ISR shrinks to node 1 alone
        sim.tick(500)
        sim.check_isr(1)
        sim.send_isr_changes(1)
        sim.deliver_all()
        sim.settle_metadata()
    assert sim.controller.current(0).isr == (1,)

    sim.pause(1)
    sim.tick(SESSION_MS + 1)
    sim.settle_metadata()
    state = sim.controller.current(0)
    assert (state.leader, state.leader_epoch, state.isr) == (-1, 1, (1,))
    sim.resume(1)
    sim.heal()
    sim.tick(0)  # its heartbeat: unfenced, and leader of what it is the ISR of
    assert sim.controller.current(0).leader_epoch == 2
    sim.deliver_metadata(2)
    sim.deliver_metadata(3)

    leader = sim.nodes[1].partitions[0]
    assert leader.is_leader and leader.state.leader_epoch == 0, "node 1 has not heard"
    pending = acked(sim.produce(1, count=1))  # appended at epoch 0, not yet flushed
    assert sim.follower_round(2, leader=1)
    sim.deliver_all()
    sim.step_done()

    assert any("UNKNOWN_LEADER_EPOCH" in line for line in sim.trace[-6:]), sim.trace[-6:]
    assert leader.is_leader and leader.state.leader_epoch == 0, "still leading, by its metadata"
    sim.flush(1)
    sim.step_done()
    assert pending.outcome == "acknowledged", "its ISR is node 1 alone"
    assert leader.high_watermark == pending.last_offset + 1 > committed.last_offset + 1

    sim.settle_metadata()  # node 1 leads at epoch 2 now, from where its log ends
    assert sim.nodes[1].partitions[0].is_leader
    assert sim.nodes[1].partitions[0].state.leader_epoch == 2
    sim.converge()
    assert not sim.missing_acknowledged()


def test_a_deposed_leader_whose_metadata_lags_acknowledges_nothing_it_could_not_replicate() -> None:
    """Node 1 is paused past its session: the controller fences it and elects node 2 at epoch
    1 (ISR [2, 3]), and nodes 2 and 3 apply it. Node 1 resumes before its metadata arrives: it
    leads epoch 0 in its own eyes and takes a write, but the ISR it knows (1, 2, 3) fetches from
    node 2 now, and a follower that asks node 1 with epoch 1 is refused and moves nothing, so
    node 1's high watermark cannot pass the write: it is not acknowledged, and node 1 truncates
    it by leader epoch once it follows node 2."""
    sim = Simulation()
    committed = acked(sim.produce(1, count=2))
    sim.replicate_until_quiet()
    assert committed.outcome == "acknowledged"

    sim.pause(1)
    sim.tick(SESSION_MS + 1)
    sim.deliver_metadata(2)
    sim.deliver_metadata(3)
    sim.step_done()
    state = sim.controller.current(0)
    assert (state.leader, state.leader_epoch, sorted(state.isr)) == (2, 1, [2, 3])
    sim.resume(1)

    stale = sim.nodes[1].partitions[0]
    assert stale.is_leader and stale.state.leader_epoch == 0, "node 1 has not heard"
    write = acked(sim.produce(1, count=1))
    sim.flush(1)
    sim.step_done()
    asking = fetch_request(3, [sim.nodes[3].partitions[0]])
    assert asking.partitions[0].leader_epoch == 1
    entries, _ = sim.nodes[1].handler.answer(asking, sim.clock.wall_ms())
    assert entries[0]["error"]["error"] == "UNKNOWN_LEADER_EPOCH"
    for _ in range(3):  # node 3 follows node 2
        assert sim.follower_round(3, leader=2)
        sim.deliver_all()
        sim.step_done()
    assert stale.is_leader, "only the metadata deposes it"
    assert write.outcome is None, "node 1's HW waits for followers that fetch elsewhere"
    assert stale.high_watermark == committed.last_offset + 1

    sim.deliver_metadata(1)
    sim.step_done()
    assert not stale.is_leader
    assert write.outcome is not None and write.outcome.startswith("not committed")
    sim.converge()
    assert not sim.missing_acknowledged()
    held = [value for _, value in records_of(sim.nodes[1].logs[0])]
    assert write.values[0] not in held, "truncated by leader epoch"


def test_a_follower_the_controller_adds_to_the_isr_holds_every_record_committed_after() -> None:
    """Node 2 caught up and the leader asked to add it to the ISR; the controller did, but the
    leader has not applied that metadata yet when a record reaches node 3. Node 1 then dies:
    the controller elects node 2 (first in replica order of the ISR), and an acknowledged
    record must be on it. The leader counts the ISR it asked for (Kafka's maximal ISR), so the
    record waits for node 2 and is not acknowledged before node 1 dies."""
    sim = Simulation()
    sim.checking = False  # the rule is checked below by what happens to the record
    acked(sim.produce(1, count=1))
    sim.cut_link(1, 2)
    for _ in range(5):
        sim.tick(500)
        sim.check_isr(1)
        sim.replication_pass()
    assert sorted(sim.controller.current(0).isr) == [1, 3]

    sim.heal()
    for _ in range(2):  # node 2 catches up, then reports it: the leader asks to add it
        assert sim.follower_round(2, leader=1)
        sim.deliver_all()
    assert sim.send_isr_changes(1)
    sim.deliver_all()
    assert sim.controller.current(0).isr == (1, 3, 2)
    sim.deliver_metadata(2)
    sim.deliver_metadata(3)  # node 1's metadata lags a moment

    record = acked(sim.produce(1, count=1))
    sim.flush(1)
    for _ in range(2):  # node 3 fetches it, then reports it fetched
        assert sim.follower_round(3, leader=1)
        sim.deliver_all()
        sim.step_done()
    committed = record.outcome == "acknowledged"

    sim.crash(1, power_loss=False)
    sim.tick(SESSION_MS + 1)
    sim.settle_metadata()
    assert sim.controller.current(0).leader == 2
    sim.replicate_until_quiet()
    sim.restart(1)
    sim.settle_metadata()
    sim.replicate_until_quiet()

    if committed:
        assert not sim.missing_acknowledged(), "an acknowledged record was lost"
    else:
        assert record.outcome is not None  # not acknowledged: it may go, the client knows
    sim.checking = True
    sim.check()
    sim.check_converged()


def test_the_same_seed_gives_the_same_trace() -> None:
    def run(seed: int) -> list[str]:
        sim = Simulation(seed, Settings(partitions=2))
        run_random(sim, 300)
        return sim.trace

    assert run(7) == run(7)
    assert run(7) != run(8)
