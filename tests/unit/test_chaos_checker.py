"""The chaos checker reports each of Jepsen's Kafka anomalies, and nothing on a clean history."""

from __future__ import annotations

import re

from tests.chaos.checker import Poll, Write, check_history, check_log, longest_gap_s

P = "busy-0"


def kinds(
    writes: list[Write], polls: list[Poll], final: dict[str, list[tuple[int, str]]]
) -> set[str]:
    return {a.kind for a in check_history(writes, polls, final)}


def clean() -> tuple[list[Write], list[Poll], dict[str, list[tuple[int, str]]]]:
    writes = [
        Write(P, ("a", "b"), "unknown"),
        Write(P, ("a", "b"), "ok", (0, 1)),
        Write(P, ("c",), "failed"),
        Write(P, ("c",), "ok", (2,)),
    ]
    polls = [
        Poll("r", P, 1, 0, ((0, "a"),), 1),
        Poll("r", P, 1, 1, ((1, "b"), (2, "c")), 3),
        Poll("r", P, 2, 3, (), 3),
    ]
    return writes, polls, {P: [(0, "a"), (1, "b"), (2, "c")]}


def test_a_clean_history_has_no_anomaly() -> None:
    assert check_history(*clean()) == []


def test_an_acknowledged_value_absent_from_the_log_is_a_lost_write() -> None:
    writes, polls, final = clean()
    final[P] = final[P][:2]
    assert "lost-write" in kinds(writes, polls[:1], final)


def test_an_unknown_write_absent_from_the_log_is_no_anomaly() -> None:
    writes, polls, final = clean()
    writes.append(Write(P, ("z",), "unknown"))
    assert check_history(writes, polls, final) == []


def test_one_value_at_two_offsets_is_a_duplicate() -> None:
    writes, polls, final = clean()
    final[P].append((3, "c"))
    assert "duplicate" in kinds(writes, polls, final)


def test_two_values_at_one_offset_between_the_ack_and_the_log() -> None:
    writes, polls, final = clean()
    writes.append(Write(P, ("d",), "ok", (3,)))
    final[P].append((3, "e"))
    assert "two-values-at-offset" in kinds(writes, polls, final)


def test_two_values_at_one_offset_between_a_reader_and_the_log() -> None:
    writes, polls, final = clean()
    polls.append(Poll("r2", P, 2, 0, ((0, "x"),), 1))
    assert "two-values-at-offset" in kinds(writes, polls, final)


def test_an_answer_going_back_is_a_non_monotonic_poll() -> None:
    writes, polls, final = clean()
    polls.append(Poll("r", P, 1, 1, ((1, "b"), (0, "a")), 3))
    assert "non-monotonic-poll" in kinds(writes, polls, final)


def test_a_hole_in_a_readers_view_is_a_skipped_offset() -> None:
    writes, polls, final = clean()
    polls.append(Poll("r", P, 1, 0, ((0, "a"), (2, "c")), 3))
    assert "skipped-offset" in kinds(writes, polls, final)
    polls2 = [Poll("r", P, 1, 0, ((1, "b"),), 3)]
    assert "skipped-offset" in kinds(writes, polls2, final)


def test_a_lower_hw_from_the_same_node_is_a_high_watermark_going_back() -> None:
    writes, polls, final = clean()
    polls.append(Poll("r", P, 2, 3, (), 2))
    assert "hw-went-back" in kinds(writes, polls, final)


def test_a_new_leader_answering_a_lower_hw_is_not_an_anomaly() -> None:
    writes, polls, final = clean()
    polls.append(Poll("r", P, 3, 3, (), 2))
    assert check_history(writes, polls, final) == []


def test_longest_gap_counts_the_edges_of_the_window() -> None:
    assert longest_gap_s([2.0, 3.0, 9.0], 0.0, 10.0) == 6.0
    assert longest_gap_s([], 0.0, 10.0) == 10.0


def test_the_log_check_reports_tracebacks_errors_and_loops() -> None:
    line = "[2026-12-05 18:39:33,123] {} {} (server.x)"
    text = "\n".join(
        [
            line.format("INFO", "started"),
            "Traceback (most recent call last):",
            line.format("ERROR", "boom"),
            line.format("ERROR", "peer went away"),
            *(line.format("INFO", f"idle-0: truncating from {i} to {i}") for i in range(11)),
        ]
    )
    found = {
        a.kind: str(a)
        for a in check_log("1", text, repeat_max=10, allowed_errors=[re.compile("went away")])
    }
    assert set(found) == {"traceback", "error-line", "log-loop"}
    assert "boom" in found["error-line"]
    assert "truncating from N to N" in found["log-loop"]


def test_a_restarted_leader_answering_a_lower_hw_in_a_new_session_is_not_an_anomaly() -> None:
    writes, polls, final = clean()
    polls.append(Poll("r", P, 2, 3, (), 0, session=1))
    assert check_history(writes, polls, final) == []
