"""The member's half of KIP-848 (client/group_member.py), fed heartbeat answers: no sockets."""

from __future__ import annotations

from typing import Any

import pytest

from client.group_member import MemberState, ProtocolViolation, TopicPartition

A0, A1, A2 = (TopicPartition("a", p) for p in range(3))


def answer(epoch: int, *partitions: TopicPartition, member_id: str = "m1") -> dict[str, Any]:
    return {
        "member_id": member_id,
        "member_epoch": epoch,
        "heartbeat_interval_ms": 3000,
        "assignment": [{"topic": t, "partition": p} for t, p in partitions],
    }


def joined(*partitions: TopicPartition) -> MemberState:
    """A member that joined and took ``partitions``."""
    member = MemberState(["a"], session_timeout_ms=6000, assignor="range", client_id="c1")
    member.on_answer(answer(1, *partitions), member.heartbeat_body())
    plan = member.plan()
    assert plan is not None
    member.took(plan.assign, plan.incarnation)
    return member


def test_join_carries_the_subscription_and_settings_and_owns_nothing() -> None:
    member = MemberState(["b", "a", "a"], session_timeout_ms=6000, assignor="range", client_id="c")
    assert member.heartbeat_body() == {
        "member_epoch": 0,
        "topics": ["a", "b"],
        "session_timeout_ms": 6000,
        "assignor": "range",
        "client_id": "c",
        "owned": [],
    }
    assert member.leave_body() is None  # never joined: nothing to leave


def test_an_answer_gives_id_epoch_interval_and_the_target() -> None:
    member = MemberState(["a"])
    member.on_answer(answer(3, A1, A0), member.heartbeat_body())
    assert (member.member_id, member.epoch, member.heartbeat_interval_ms) == ("m1", 3, 3000)
    assert member.target == frozenset({A0, A1})
    plan = member.plan()
    assert plan is not None and plan.revoke == () and plan.assign == (A0, A1)


def test_after_taking_partitions_the_next_heartbeat_reports_them_without_the_subscription() -> None:
    member = joined(A0, A1)
    assert member.owned == {A0, A1} and member.heartbeat_due
    assert member.plan() is None
    assert member.heartbeat_body() == {
        "member_epoch": 1,
        "member_id": "m1",
        "owned": [{"topic": "a", "partition": 0}, {"topic": "a", "partition": 1}],
    }


def test_a_smaller_target_is_given_up_before_anything_is_taken() -> None:
    member = joined(A0, A1)
    member.on_answer(answer(2, A0, A2), member.heartbeat_body())
    plan = member.plan()
    assert plan is not None and plan.revoke == (A1,) and plan.assign == (A2,)
    assert member.gave_up(plan.revoke, plan.incarnation)
    assert member.owned == {A0}  # A1 is reported given up at the next heartbeat
    assert member.took(plan.assign, plan.incarnation) == (A2,)
    assert member.owned == {A0, A2} and member.plan() is None


def test_fencing_loses_everything_and_joins_again_under_the_same_id() -> None:
    member = joined(A0, A1)
    assert member.fenced() == [A0, A1]
    assert member.owned == set() and member.target is None and member.plan() is None
    body = member.heartbeat_body()
    assert body["member_epoch"] == 0 and body["member_id"] == "m1"
    assert body["owned"] == [] and body["topics"] == ["a"]


def test_a_plan_made_before_fencing_is_void_after_it() -> None:
    member = joined(A0)
    member.on_answer(answer(2, A1), member.heartbeat_body())
    plan = member.plan()
    assert plan is not None
    member.fenced()
    assert not member.gave_up(plan.revoke, plan.incarnation)
    assert member.took(plan.assign, plan.incarnation) == ()
    assert member.owned == set()


def test_an_answer_to_a_heartbeat_sent_before_fencing_is_ignored() -> None:
    member = joined(A0)
    stale = member.heartbeat_body()  # epoch 1, in flight
    member.fenced()
    member.on_answer(answer(1, A0), stale)
    assert member.epoch == 0 and member.target is None


def test_only_partitions_still_in_the_target_are_taken() -> None:
    member = MemberState(["a"])
    member.on_answer(answer(1, A0, A1), member.heartbeat_body())
    plan = member.plan()
    assert plan is not None
    member.on_answer(answer(2, A0), member.heartbeat_body())  # A1 went elsewhere meanwhile
    assert member.took(plan.assign, plan.incarnation) == (A0,)
    assert member.owned == {A0}


def test_a_new_subscription_is_sent_until_the_coordinator_has_answered_it() -> None:
    member = joined(A0)
    member.heartbeat_due = False
    member.subscribe(["a", "b"])
    assert member.heartbeat_due
    body = member.heartbeat_body()
    assert body["topics"] == ["a", "b"]
    member.on_answer(answer(2, A0), body)
    assert "topics" not in member.heartbeat_body()


def test_leave_is_epoch_minus_one_with_the_member_id() -> None:
    assert joined(A0).leave_body() == {"member_id": "m1", "member_epoch": -1}


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"member_epoch": 1, "assignment": []},
        {"member_id": "m", "member_epoch": -1, "assignment": []},
        {"member_id": "m", "member_epoch": True, "assignment": []},
        {"member_id": "m", "member_epoch": 1, "assignment": {"a": 0}},
        {"member_id": "m", "member_epoch": 1, "assignment": [{"topic": "a"}]},
        {"member_id": "m", "member_epoch": 1, "assignment": [{"topic": 1, "partition": 0}]},
    ],
)
def test_an_answer_that_breaks_the_contract_is_refused(bad: Any) -> None:
    member = MemberState(["a"])
    with pytest.raises(ProtocolViolation):
        member.on_answer(bad, member.heartbeat_body())
    assert member.epoch == 0 and member.member_id is None
