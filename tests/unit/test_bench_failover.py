"""scripts/bench_failover.py's reading of node logs and the probe's trace into a timeline."""

from __future__ import annotations

from datetime import datetime

from scripts.bench_failover import Event, node_log_events, summary, timeline, trace_events


def stamp_ms(text: str) -> int:
    """A node log's local-time stamp as wall-clock ms (as server/logs.py writes it)."""
    return round(datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp() * 1000)


def test_node_log_lines_in_the_window_become_events_noise_and_tracebacks_left_out() -> None:
    kill = stamp_ms("2026-12-06 06:00:01,000")
    log = "\n".join(
        [
            "[2026-12-06 06:00:00,500] INFO before the window (server.node)",
            "[2026-12-06 06:00:02,486] WARNING broker 3 missed its heartbeats for 1.5 s: "
            "fencing it (server.controller_driver)",
            "Traceback (most recent call last):",
            "[2026-12-06 06:00:02,600] INFO closed a connection from 127.0.0.1: reset",
            "[2026-12-06 06:00:02,700] INFO node 1 is the controller (term 4); voters last "
            "heard: node 2 3 ms ago (server.controller_driver)",
            "[2026-12-06 06:00:09,000] INFO after the window (server.node)",
        ]
    )
    events = node_log_events(log, "node 1", kill, kill + 5000)
    assert [(e.at_ms - kill, e.text.split(":")[0]) for e in events] == [
        (1486, "WARNING broker 3 missed its heartbeats for 1.5 s"),
        (1700, "node 1 is the controller (term 4); voters last heard"),
    ]


def test_the_probes_trace_lines_in_the_window_become_client_events() -> None:
    lines = [
        "trace 1000 client.sender t-0: attempt 1 to http://127.0.0.1:1\n",
        "trace 2500 client.metadata t read from http://127.0.0.1:2: leaders (epochs) 2 (1)\n",
        "a line of something else\n",
        "trace 9000 client.sender t-0: retry in 100 ms\n",
    ]
    assert trace_events(lines, 1000, 5000) == [
        Event(1000, "client", "t-0: attempt 1 to http://127.0.0.1:1"),
        Event(2500, "client", "t read from http://127.0.0.1:2: leaders (epochs) 2 (1)"),
    ]


def test_a_timeline_is_in_order_in_ms_from_the_kill() -> None:
    events = [Event(1500, "node 2", "fencing"), Event(1000, "bench", "kill"), Event(990, "c", "x")]
    assert [line.split()[0] for line in timeline(events, 1000)] == ["-10", "+0", "+500"]


def test_the_summary_meets_the_target_only_when_every_round_does() -> None:
    assert summary([1.5, 1.9, 2.0]).endswith("met)")
    assert "median 1.90 s, max 2.10 s over 3 rounds" in summary([1.5, 1.9, 2.1])
    assert summary([1.5, 1.9, 2.1]).endswith("MISSED)")
    assert summary([]) == "no round completed"
