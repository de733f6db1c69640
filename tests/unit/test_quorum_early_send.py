"""A leader sends new entries, and the news that entries committed, at the end of the tick
that appended or committed them, not at the next append period, only when no follower has an
append in flight (pysyncobj moves a follower's next index back when an
answer to one batch arrives while a later one is in flight, and the follower then drops
entries it applied). The transport counts each peer's unanswered appends; these tests drive
its counting and the leader's decision with fakes in place of pysyncobj's connections."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pysyncobj.transport import TCPTransport

from kraft.quorum import _MetadataSyncObj
from kraft.transport import KraftTransport

A, B = "node-a", "node-b"


@pytest.fixture
def transport(monkeypatch: pytest.MonkeyPatch) -> KraftTransport:
    monkeypatch.setattr(TCPTransport, "send", lambda self, node, message: True)
    monkeypatch.setattr(TCPTransport, "_onMessageReceived", lambda self, node, message: None)
    made: KraftTransport = object.__new__(KraftTransport)
    made._hooks = SimpleNamespace(before_send=lambda: True, last_heard={})  # type: ignore[assignment]
    made.kraft_unanswered = {}
    made.kraft_told_commit = {}
    made.kraft_observers = {}
    made._syncObj = SimpleNamespace(_SyncObj__raftNextIndex={})
    return made


class Node:
    """What the transport needs of a pysyncobj node: an id, and hashable."""

    def __init__(self, name: str) -> None:
        self.id = name


def node(name: str) -> Node:
    return Node(name)


def append(prev: int | None = 4, serialized: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "append_entries", "term": 3, "commit_index": 4}
    if prev is not None:
        message |= {"prevLogIdx": prev, "prevLogTerm": 3, "entries": []}
    else:
        message["serialized"] = serialized
    return message


def test_each_append_is_unanswered_until_its_next_node_idx_arrives(
    transport: KraftTransport,
) -> None:
    a = node(A)
    transport.send(a, append())
    transport.send(a, append())
    transport.send(a, {"type": "request_vote", "term": 4})  # not an append: never counted
    assert transport.kraft_unanswered[a] == 2
    transport._onMessageReceived(a, {"type": "next_node_idx", "next_node_idx": 5})
    assert transport.kraft_unanswered[a] == 1
    transport._onMessageReceived(a, {"type": "next_node_idx", "next_node_idx": 6})
    transport._onMessageReceived(a, {"type": "next_node_idx", "next_node_idx": 6})  # extra
    assert transport.kraft_unanswered[a] == 0


def test_only_the_last_chunk_of_a_dump_is_answered(transport: KraftTransport) -> None:
    a = node(A)
    transport.send(a, append(None, serialized=(b"chunk", True, False)))
    transport.send(a, append(None, serialized=None))  # no dump ready yet: no answer either
    assert transport.kraft_unanswered.get(a, 0) == 0
    transport.send(a, append(None, serialized=(b"last", False, True)))
    assert transport.kraft_unanswered[a] == 1


def leader(
    next_index: dict[str, int],
    unanswered: dict[str, int],
    *,
    last: int = 10,
    first: int = 1,
    commit: int = 9,
    told: dict[str, int] | None = None,
    connected: tuple[str, ...] = (A, B),
    is_leader: bool = True,
) -> Any:
    return SimpleNamespace(
        _isLeader=lambda: is_leader,
        _SyncObj__getCurrentLogIndex=lambda: last,
        _SyncObj__raftLog=[(b"", first, 1)],
        _SyncObj__connectedNodes=set(connected),
        _SyncObj__raftNextIndex=next_index,
        raftCommitIndex=commit,
        _SyncObj__transport=SimpleNamespace(
            kraft_unanswered=unanswered,
            kraft_told_commit={A: commit, B: commit} if told is None else told,
        ),
    )


@pytest.mark.parametrize(
    ("fake", "early"),
    [
        (leader({A: 11, B: 11}, {}), False),  # everything sent
        (leader({A: 10, B: 11}, {}), True),  # entry 10 not sent to A, nothing in flight
        (leader({A: 10, B: 11}, {B: 1}), False),  # B has an append in flight
        (leader({A: 10, B: 11}, {A: 1}), False),  # A too
        (leader({A: 10, B: 11}, {B: 1}, connected=(A,)), True),  # B is not connected
        (leader({A: 10, B: 11}, {}, first=10), False),  # A needs entries only the dump has
        (leader({A: 10, B: 11}, {}, is_leader=False), False),
        # Every entry sent, but entry 10 committed since: B was told commit index 9.
        (leader({A: 11, B: 11}, {}, commit=10, told={A: 10, B: 9}), True),
        (leader({A: 11, B: 11}, {}, commit=10, told={A: 10}), True),  # B never told
        (leader({A: 11, B: 11}, {B: 1}, commit=10, told={A: 10, B: 9}), False),  # in flight
        (leader({A: 11, B: 11}, {}, commit=10, told={A: 10}, connected=(A,)), False),
    ],
)
def test_entries_and_commits_go_early_only_when_no_follower_has_an_append_in_flight(
    fake: Any, early: bool
) -> None:
    assert _MetadataSyncObj._kraft_should_send_early(fake) is early


def test_every_append_records_the_commit_index_it_told(
    transport: KraftTransport,
) -> None:
    a = node(A)
    transport.send(a, append())
    assert transport.kraft_told_commit[a] == 4
    transport.send(a, {"type": "append_entries", "term": 3, "commit_index": 7, "serialized": None})
    assert transport.kraft_told_commit[a] == 7
    transport.send(a, {"type": "request_vote", "term": 4})
    assert transport.kraft_told_commit[a] == 7


def pysyncobj_on_next_node_idx(transport: KraftTransport, node: Node, message: Any) -> None:
    """What pysyncobj's leader does with a follower's next_node_idx (its __onMessageReceived)."""
    next_index = transport._syncObj._SyncObj__raftNextIndex
    if message["reset"]:
        next_index[node] = message["next_node_idx"]
    if message["success"]:
        next_index[node] = message["next_node_idx"]  # its match index had moved: always here


def answer(next_node_idx: int, *, success: bool = True, reset: bool = False) -> dict[str, Any]:
    return {
        "type": "next_node_idx",
        "next_node_idx": next_node_idx,
        "success": success,
        "reset": reset,
    }


def test_a_success_never_moves_a_followers_next_index_back_a_failure_does(
    transport: KraftTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race behind test_a_lagging_follower_gets_the_dump_and_catches_up's rare failure:
    # the dump's answer (next 14) came while a heartbeat carrying entries 14-15 was in
    # flight (next 16); pysyncobj moved the next index back to 14 and resent entry 14, which
    # the follower had applied: "truncating already-applied log entries from index 14".
    monkeypatch.setattr(TCPTransport, "_onMessageReceived", pysyncobj_on_next_node_idx)
    a = node(A)
    next_index = transport._syncObj._SyncObj__raftNextIndex
    next_index[a] = 16
    transport._onMessageReceived(a, answer(14))
    assert next_index[a] == 16
    transport._onMessageReceived(a, answer(16))
    transport._onMessageReceived(a, answer(18))  # entries the leader sent since
    assert next_index[a] == 18
    transport._onMessageReceived(a, answer(12, success=False, reset=True))  # log mismatch
    assert next_index[a] == 12
