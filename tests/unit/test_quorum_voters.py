"""The dynamic quorum's pure parts: the voter set read from a log's files, the rules of a
voter change (kraft/voters.py), and kraft-metadata-quorum add-controller / remove-controller
(flags, the controller's properties, Kafka 4.4's lines and messages). No sockets."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path
from typing import Any

import pytest
from pysyncobj.node import TCPNode

from client.protocol import (
    INVALID_REQUEST,
    LEADER_NOT_AVAILABLE,
    VOTER_CHANGE_NOT_READY,
    ApiError,
)
from client.tools import common
from client.tools import metadata_quorum as mq
from client.tools import quorum_changes as qc
from kraft.dump import Dump, write_dump_file
from kraft.journal import FILE_HEADER, MAGIC, encode_entry
from kraft.journal import FORMAT_VERSION as JOURNAL_VERSION
from kraft.state import MetadataState
from kraft.voters import (
    CATCH_UP_LAG_ENTRIES,
    Observed,
    VoterChangeError,
    apply_changes,
    check_add,
    check_remove,
    log_voters,
    membership_change,
)
from server.http_quorum import parse_add_voter
from storage.properties import MetaProperties

A1, A2, A3, A6 = (f"127.0.0.1:{p}" for p in (9093, 9095, 9097, 9103))
DIR = "J8kcWq2NT9ycFZ2Hvr5bOA"
CLUSTER = "MkU3OEVBNTcwNTJENDM2Qg"


def membership(kind: str, address: str) -> bytes:
    # As pysyncobj appends one: the MEMBERSHIP type byte, then its pickled request.
    return bytes([2]) + pickle.dumps([kind, address, TCPNode(address)])


def write_journal(path: Path, commands: list[bytes], first_index: int = 1) -> None:
    data = FILE_HEADER.pack(MAGIC, JOURNAL_VERSION, 0)
    for offset, command in enumerate(commands):
        data += encode_entry(command, first_index + offset, 1)
    path.write_bytes(data)


# -- the voter set in the log -------------------------------------------------------------------


def test_a_membership_entry_is_read_and_any_other_entry_is_not() -> None:
    assert membership_change(membership("add", A6)) == ("add", A6)
    assert membership_change(membership("rem", A1)) == ("rem", A1)
    assert membership_change(b"\x00" + pickle.dumps(("apply_records", b"x"))) is None
    assert membership_change(b"\x02not a pickle") is None
    assert membership_change(b"") is None


def test_changes_apply_in_order_and_a_repeat_changes_nothing() -> None:
    entries = [
        (membership("add", A6), 5, 1),
        (b"\x01", 6, 1),
        (membership("rem", A1), 7, 1),
        (membership("add", A6), 8, 1),  # already there
        (membership("rem", A1), 9, 1),  # already gone
    ]
    assert apply_changes((A1, A2, A3), entries) == (A2, A3, A6)


def test_a_log_without_voter_news_leaves_the_configured_voters(tmp_path: Path) -> None:
    assert log_voters(tmp_path, "metadata.dump", "raft-journal.log", (A1, A2, A3)) is None
    write_journal(tmp_path / "raft-journal.log", [b"\x01", b"\x00x"])
    assert log_voters(tmp_path, "metadata.dump", "raft-journal.log", (A1, A2, A3)) is None


def test_without_a_dump_the_journal_changes_the_voters_the_log_started_with(
    tmp_path: Path,
) -> None:
    # A controller that joined (its journal from entry 1, no dump yet) and was added: the
    # voters are the formatted ones plus itself, never itself alone (a quorum of one would
    # elect itself beside the real leader).
    write_journal(tmp_path / "raft-journal.log", [b"\x01", membership("add", A6)])
    assert log_voters(tmp_path, "metadata.dump", "raft-journal.log", (A1, A2, A3)) == (
        A1,
        A2,
        A3,
        A6,
    )


def test_the_dump_then_the_journal_after_it_give_the_voters(tmp_path: Path) -> None:
    state = MetadataState().to_snapshot()
    dump = Dump((b"\x01", 10, 1), (membership("rem", A2), 9, 1), (A1, A2, A3, "None"), state)
    write_dump_file(tmp_path / "metadata.dump", dump)
    # Entry 9 (a removal of node 2) is at or before the dump's index: the dump's set already
    # holds its outcome, so it does not count again; entries 11 and 12 do. (The journal was
    # cut after the dump: it starts with the dump's last two entries.)
    write_journal(
        tmp_path / "raft-journal.log",
        [membership("rem", A2), b"\x01", membership("add", A6), membership("rem", A1)],
        first_index=9,
    )
    # An observer's dump names no address for itself ("None"): it is no voter.
    voters = log_voters(tmp_path, "metadata.dump", "raft-journal.log", ("127.0.0.1:1",))
    assert voters == (A2, A3, A6)  # the dump's set, not the base


# -- the rules of a change ----------------------------------------------------------------------

VOTERS = {A1: 1, A2: 2, A3: 3}


def refused_add(**changes: object) -> VoterChangeError:
    args: dict[str, object] = {
        "voter_id": 6,
        "address": A6,
        "voters": VOTERS,
        "observers": [Observed(4, 100), controller(6, 100)],
        "commit_index": 100,
        "pending": None,
        "directory_id": DIR,
    }
    args.update(changes)
    with pytest.raises(VoterChangeError) as caught:
        check_add(**args)  # type: ignore[arg-type]
    return caught.value


def controller(node_id: int, match_index: int | None, address: str = A6) -> Observed:
    """An observer that is a controller waiting to be added, as its handshake says."""
    return Observed(node_id, match_index, address, DIR)


def test_a_caught_up_observer_may_be_added() -> None:
    check_add(6, A6, VOTERS, [controller(6, 100 - CATCH_UP_LAG_ENTRIES)], 100, None, DIR)


@pytest.mark.parametrize(
    "changes, kind, message",
    [
        ({"voter_id": 2}, "DUPLICATE_VOTER", "node 2 is already a voter"),
        ({"address": A3}, "DUPLICATE_VOTER", "the Raft address 127.0.0.1:9097 is already a"),
        ({"observers": [Observed(4, 100)]}, "REQUEST_TIMED_OUT", "node 6 does not follow"),
        (
            {"observers": [controller(6, 100 - CATCH_UP_LAG_ENTRIES - 1)]},
            "REQUEST_TIMED_OUT",
            "node 6 is not caught up: its log ends at 83, the leader's commit index is 100",
        ),
        ({"observers": [controller(6, None)]}, "REQUEST_TIMED_OUT", "node 6 is not caught up"),
        # Any caught-up broker is an observer: it has no Raft listener to become a voter at.
        (
            {"observers": [Observed(6, 100)]},
            "INVALID_REQUEST",
            "node 6 follows the metadata log as a broker-only node: only a controller",
        ),
        # An address nobody serves (or not the one the node takes) would be a phantom voter.
        (
            {"address": "10.9.9.9:1"},
            "INVALID_REQUEST",
            "node 6's Raft address (its CONTROLLER listener in `listeners`) is 127.0.0.1:9103, "
            "not 10.9.9.9:1",
        ),
        (
            {"directory_id": "x"},
            "INVALID_REQUEST",
            f"node 6 has directory id {DIR}, not x",
        ),
        (
            {"pending": "removing node 1 at 127.0.0.1:9093"},
            "REQUEST_TIMED_OUT",
            "a voter change is in progress (removing node 1 at 127.0.0.1:9093); one change at",
        ),
    ],
)
def test_an_add_is_refused_with_a_clear_message(
    changes: dict[str, object], kind: str, message: str
) -> None:
    error = refused_add(**changes)
    assert error.kind == kind and error.message.startswith(message)


def test_a_voter_is_removed_by_id_and_its_directory_id() -> None:
    directories = {1: DIR, 2: None, 3: "other"}
    assert check_remove(1, DIR, VOTERS, directories, None) == A1
    # A registration that never said its directory id: any id given matches.
    assert check_remove(2, DIR, VOTERS, directories, None) == A2


@pytest.mark.parametrize(
    "voter_id, directory_id, voters, pending, kind, message",
    [
        (
            7,
            DIR,
            VOTERS,
            None,
            "VOTER_NOT_FOUND",
            "node 7 is not a voter (the voters are [1, 2, 3])",
        ),
        (3, DIR, VOTERS, None, "VOTER_NOT_FOUND", f"voter 3 has directory id other, not {DIR}"),
        (1, DIR, {A1: 1}, None, "INVALID_REQUEST", "node 1 is the last voter"),
        (1, DIR, VOTERS, "adding node 6", "REQUEST_TIMED_OUT", "a voter change is in progress"),
    ],
)
def test_a_removal_is_refused_with_a_clear_message(
    voter_id: int,
    directory_id: str,
    voters: dict[str, int],
    pending: str | None,
    kind: str,
    message: str,
) -> None:
    with pytest.raises(VoterChangeError) as caught:
        check_remove(voter_id, directory_id, voters, {1: DIR, 3: "other"}, pending)
    assert caught.value.kind == kind and caught.value.message.startswith(message)


# -- kraft-metadata-quorum add-controller / remove-controller -----------------------------------


def controller_properties(tmp_path: Path, **changes: str | None) -> Path:
    log_dir = tmp_path / "node-6"
    log_dir.mkdir(exist_ok=True)
    MetaProperties(cluster_id=CLUSTER, node_id=6, directory_id=DIR).write(log_dir)
    props = {
        "node.id": "6",
        "process.roles": "controller",
        "controller.quorum.bootstrap.servers": f"{A1},{A2},{A3}",
        "listeners": "HTTP://127.0.0.1:9102,CONTROLLER://127.0.0.1:9103",
        "log.dirs": str(log_dir),
    }
    for key, value in changes.items():
        key = key.replace("_", ".")
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    path = tmp_path / "node.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")
    return path


BC = ["--bootstrap-controller", "127.0.0.1:9092"]


def test_add_controller_reads_the_controllers_properties_and_prints_kafkas_line(
    tmp_path: Path,
) -> None:
    config = controller_properties(tmp_path)
    cmd = mq.parse_command([*BC, "--command-config", str(config), "add-controller"])
    assert cmd.report == "add-controller" and cmd.controller is not None
    assert cmd.controller.body() == {
        "voter_id": 6,
        "directory_id": DIR,
        "raft_address": "127.0.0.1:9103",
    }
    assert qc.added_line(cmd.controller, False) == (
        f"Added controller 6 with directory id {DIR} and endpoints: CONTROLLER://127.0.0.1:9103"
    )
    assert qc.added_line(cmd.controller, True).startswith("DRY RUN of adding controller 6 ")


def test_add_controller_reads_a_secure_controllers_own_properties(tmp_path: Path) -> None:
    # Its server-side settings (its keystore) are the node's, not the tool's client's.
    config = controller_properties(
        tmp_path,
        ssl_keystore_type="PEM",
        ssl_keystore_location=str(tmp_path / "node-6.keystore.pem"),
        listener_security_protocol_map="HTTP:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="admin",
        sasl_password="secret",
    )
    cmd = mq.parse_command([*BC, "--command-config", str(config), "add-controller"])
    assert cmd.controller is not None and cmd.controller.node_id == 6
    assert cmd.security is not None and cmd.security.protocol == "SASL_PLAINTEXT"


def test_add_controller_names_the_address_the_controller_listener_binds(tmp_path: Path) -> None:
    # Our voters are named by the CONTROLLER listener's own address (the node turns voter
    # only when the log adds that one), not by an advertised one.
    config = controller_properties(
        tmp_path, advertised_listeners="CONTROLLER://ctl-6.example:19103"
    )
    cmd = mq.parse_command([*BC, "--command-config", str(config), "add-controller"])
    assert cmd.controller is not None and cmd.controller.raft_address == A6


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"node_id": None}, "node.id not found in configuration file. Is this a valid controller"),
        ({"node_id": "-1"}, "node.id was negative in configuration file. Is this a valid"),
        ({"process_roles": "broker"}, "process.roles did not contain 'controller' in"),
        ({"log_dirs": None}, "Neither metadata.log.dir nor log.dirs were found. Is this a valid"),
        ({"log_dirs": "/nonexistent/dir"}, "Unable to read meta.properties from /nonexistent/dir"),
        (
            {"listeners": "HTTP://127.0.0.1:9102"},
            "Cannot find information about controller listener name: CONTROLLER",
        ),
    ],
)
def test_add_controller_refuses_a_bad_controller_configuration_in_kafkas_words(
    tmp_path: Path, changes: dict[str, str | None], message: str
) -> None:
    config = controller_properties(tmp_path, **changes)
    with pytest.raises(common.UsageError) as caught:
        mq.parse_command([*BC, "--command-config", str(config), "add-controller"])
    assert str(caught.value).startswith(message)


def test_add_controller_needs_the_controllers_configuration() -> None:
    with pytest.raises(common.UsageError) as caught:
        mq.parse_command([*BC, "add-controller"])
    assert str(caught.value) == (
        "You must supply the configuration file of the controller you are adding when using "
        "add-controller."
    )


def test_remove_controller_parses_its_flags_and_prints_kafkas_line() -> None:
    cmd = mq.parse_command([*BC, "remove-controller", "-i", "1", "-d", DIR])
    assert (cmd.report, cmd.voter_id, cmd.directory_id) == ("remove-controller", 1, DIR)
    assert qc.removed_line(1, DIR, False) == f"Removed KRaft controller 1 with directory id {DIR}"
    assert qc.removed_line(1, DIR, True) == (
        f"DRY RUN of removing KRaft controller 1 with directory id {DIR}"
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["-i", "-1", "-d", DIR], "Invalid negative --controller-id: -1"),
        (["-i", "1", "-d", "nope"], "Failed to parse --controller-directory-id: Invalid UUID"),
    ],
)
def test_remove_controller_refuses_bad_flags_in_kafkas_words(
    flags: list[str], message: str
) -> None:
    with pytest.raises(common.UsageError) as caught:
        mq.parse_command([*BC, "remove-controller", *flags])
    assert str(caught.value).startswith(message)


def test_a_voter_change_is_retried_through_an_election_but_not_through_a_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mq, "_ELECTION_POLL_S", 0.0)
    answers: list[Exception | str] = [
        ApiError(LEADER_NOT_AVAILABLE, "node 3 is starting or has lost the metadata quorum"),
        ApiError(LEADER_NOT_AVAILABLE, "no controller is known"),
        "done",
    ]

    async def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert asyncio.run(mq._through_elections(call)) == "done"
    refused = ApiError(VOTER_CHANGE_NOT_READY, "node 6 is not caught up")
    answers[:] = [refused, "never asked"]
    with pytest.raises(ApiError) as caught:
        asyncio.run(mq._through_elections(call))
    assert caught.value is refused and answers == ["never asked"]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"voter_id": -1}, "voter_id must be a node id, got -1"),
        ({"voter_id": "6"}, "voter_id must be a node id, got '6'"),
        ({"voter_id": True}, "voter_id must be a node id, got True"),
        ({"directory_id": ""}, "directory_id must be a Kafka uuid, got ''"),
        ({"raft_address": "127.0.0.1"}, "raft_address must be host:port, got '127.0.0.1'"),
        ({"raft_address": 9103}, "raft_address must be host:port, got 9103"),
    ],
)
def test_an_add_body_with_a_malformed_field_is_refused(
    changes: dict[str, object], message: str
) -> None:
    body: dict[str, object] = {"voter_id": 6, "directory_id": DIR, "raft_address": A6}
    assert parse_add_voter(body) == (6, DIR, A6)
    with pytest.raises(ApiError) as caught:
        parse_add_voter({**body, **changes})
    assert caught.value.kind == INVALID_REQUEST and caught.value.message == message


def test_observers_are_listed_in_status_and_as_rows_of_replication() -> None:
    voter = {"id": 1, "status": "Leader", "log_end_offset": 50, "last_fetch_ms": None}
    observer = {"id": 4, "status": "Observer", "log_end_offset": 48, "last_fetch_ms": None}
    quorum = {"leader_id": 1, "term": 3, "commit_index": 50, "voters": [voter]}
    quorum["observers"] = [observer, {**observer, "id": 6, "log_end_offset": 50}]
    assert mq.status_lines(quorum, CLUSTER)[-2:] == [
        "CurrentVoters:          [1]",
        "CurrentObservers:       [4,6]",
    ]
    rows = mq.replication_rows(quorum)
    assert [(r[0], r[2], r[-1]) for r in rows] == [
        ("1", "0", "Leader"),
        ("4", "2", "Observer"),
        ("6", "0", "Observer"),
    ]


# -- a restart's voter set: the files', whatever pysyncobj replays -------------------------------


def test_a_restart_from_its_own_dump_keeps_the_journals_voter_changes(tmp_path: Path) -> None:
    # Two changes committed after the dump (add node 6, remove node 1) and a restart before
    # the commit index was saved: pysyncobj takes the voters from what the dump load returns
    # and replays membership entries only up to the saved commit index, so the load must
    # return the log's set, not the dump's.
    from kraft.journal import DurableJournal
    from kraft.quorum import DUMP_FILE, JOURNAL_FILE, META_FILE, MetadataQuorum

    last, prev = (b"\x01", 10, 1), (b"\x01", 9, 1)
    write_dump_file(
        tmp_path / DUMP_FILE, Dump(last, prev, (A1, A2, A3), MetadataState().to_snapshot())
    )
    write_journal(
        tmp_path / JOURNAL_FILE,
        [b"\x01", b"\x01", membership("add", A6), membership("rem", A1)],
        first_index=9,
    )
    quorum = MetadataQuorum(2, A2, {1: A1, 3: A3}, tmp_path, "secret")
    quorum._journal = DurableJournal(tmp_path / JOURNAL_FILE, tmp_path / META_FILE)
    try:
        quorum._loading_own_dump = True
        _last, _prev, voters = quorum._deserialize(str(tmp_path / DUMP_FILE))
        assert sorted(node.id for node in voters) == [A2, A3, A6]
        # A dump sent by the leader later (the journal is cleared after it) is taken whole.
        _last, _prev, voters = quorum._deserialize(str(tmp_path / DUMP_FILE))
        assert sorted(node.id for node in voters) == [A1, A2, A3]
    finally:
        quorum._journal.close()


def test_applying_a_membership_entry_changes_no_voter() -> None:
    # The set changed when the entry was appended; re-doing it at apply (a restart's replay)
    # would undo a later change: "add 6" replayed after "rem 6" brought 6 back.
    from kraft.quorum import _MetadataSyncObj

    class NoSyncObj:
        pass  # any use of SyncObj's state would fail

    apply: Any = _MetadataSyncObj._SyncObj__doApplyCommand
    assert apply(NoSyncObj(), membership("add", A6)) is None
    assert apply(NoSyncObj(), membership("rem", A1)) is None


# -- one change at a time, as the log says --------------------------------------------------------


def test_a_change_in_the_log_above_the_commit_index_is_in_progress() -> None:
    from kraft.voters import pending_change

    entries = [(b"\x01", 5, 1), (membership("add", A6), 6, 1), (b"\x01", 7, 1)]
    # Whatever became of its request (timed out, or an earlier leader's): still pending.
    assert pending_change(entries, 5) == (f"adding the voter at {A6}, entry 6, not committed yet")
    assert pending_change(entries, 6) is None
    assert pending_change([(membership("rem", A1), 9, 2)], 8) == (
        f"removing the voter at {A1}, entry 9, not committed yet"
    )
    assert pending_change([], 0) is None


def test_a_membership_command_forwarded_by_another_node_is_refused() -> None:
    # pysyncobj forwards a command queued on a node that lost the leadership: a voter change
    # would then skip the new leader's checks. The leader answers REQUEST_DENIED instead.
    from pysyncobj.config import FAIL_REASON

    from kraft.quorum import _MetadataSyncObj

    sent: list[tuple[object, dict[str, object]]] = []

    class Transport:
        def send(self, node: object, message: dict[str, object]) -> None:
            sent.append((node, message))

    class Leader:
        _SyncObj__transport = Transport()

    apply: Any = _MetadataSyncObj._applyCommand
    apply(Leader(), membership("add", A6), ("node-2", 7))
    apply(Leader(), membership("rem", A1), None)  # no answer wanted: dropped
    assert sent == [
        (
            "node-2",
            {
                "type": "apply_command_response",
                "request_id": 7,
                "error": FAIL_REASON.REQUEST_DENIED,
            },
        )
    ]


# -- a new voter turns voter only once its add is committed --------------------------------------


def test_an_add_above_the_commit_index_is_not_settled() -> None:
    from kraft.voters import uncommitted_add

    entries = [(b"\x01", 5, 1), (membership("add", A6), 6, 1), (b"\x01", 7, 1)]
    assert uncommitted_add(entries, A6, 5) == 6
    assert uncommitted_add(entries, A6, 6) is None  # committed
    assert uncommitted_add(entries, A1, 5) is None  # no change of that address
    # The latest change of the address counts: removed again, it is no pending add.
    assert uncommitted_add([*entries, (membership("rem", A6), 8, 1)], A6, 5) is None
    # An add in the dump (before the journal) is committed: the dump holds applied entries.
    assert uncommitted_add([(b"\x01", 9, 1)], A6, 0) is None


def test_the_saved_commit_index_is_read_or_taken_as_none(tmp_path: Path) -> None:
    from kraft.voters import saved_commit_index

    assert saved_commit_index(tmp_path, "quorum-state") == 0
    (tmp_path / "quorum-state").write_bytes(b'{"version": 1, "commit_index": 42}')
    assert saved_commit_index(tmp_path, "quorum-state") == 42
    (tmp_path / "quorum-state").write_bytes(b"garbage")
    assert saved_commit_index(tmp_path, "quorum-state") == 0


def test_an_observer_turns_voter_once_its_add_is_committed(tmp_path: Path) -> None:
    from kraft.journal import DurableJournal
    from kraft.observer import MetadataObserver
    from kraft.quorum import JOURNAL_FILE, META_FILE

    write_journal(tmp_path / JOURNAL_FILE, [b"\x01", membership("add", A6)])
    observer = MetadataObserver(6, {}, (A1, A2, A3), tmp_path, "secret", raft_address=A6)
    observer._journal = DurableJournal(tmp_path / JOURNAL_FILE, tmp_path / META_FILE)

    class Sync:
        otherNodes = {TCPNode(a) for a in (A1, A2, A3, A6)}  # noqa: N815 (pysyncobj's)
        raftCommitIndex = 1  # noqa: N815

    sync: Any = Sync()
    try:
        assert not observer._add_settled(sync)  # a new leader may still overwrite it
        sync.raftCommitIndex = 2
        assert observer._add_settled(sync)
        # One voter before it: the add commits only with its vote, so it turns voter at once.
        sync.raftCommitIndex = 1
        sync.otherNodes = {TCPNode(A1), TCPNode(A6)}
        assert observer._add_settled(sync)
    finally:
        observer._journal.close()


# -- a new voter counts its voters as the leader does -------------------------------------------


def test_an_add_is_refused_when_the_new_voter_would_count_other_voters() -> None:
    from kraft.voters import check_base

    a4, a5 = "127.0.0.1:9099", "127.0.0.1:9101"
    voters = {A1: 1, A2: 2, A3: 3, a4: 4, a5: 5}
    # Formatted with 1, 2, 3; the log added 4 and 5. Until it has a dump, node 6 counts its
    # voters as its base changed by the log: with base {1} that is {1, 4, 5}, and {1, 4, 5, 6}
    # after its add (3 of 6 real voters): a minority that could elect it.
    entries = [(b"\x01", 1, 1), (membership("add", a4), 2, 1), (membership("add", a5), 3, 1)]
    with pytest.raises(VoterChangeError) as caught:
        check_base(6, (A1,), entries, voters)
    assert caught.value.kind == "INVALID_REQUEST"
    assert caught.value.message == (
        f"node 6 counts the voters from its controller.quorum.bootstrap.servers ({A1}) and "
        f"the log as {A1}, {a4}, {a5}, but they are {A1}, {A2}, {A3}, {a4}, {a5}: restart it "
        "with bootstrap servers naming every voter, then add it"
    )
    # The formatted voters, or the voters now, count the same as the leader.
    check_base(6, (A1, A2, A3), entries, voters)
    check_base(6, (A1, A2, A3, a4, a5), entries, voters)
    # A hello naming no base (an older node) cannot be vouched for.
    with pytest.raises(VoterChangeError):
        check_base(6, (), entries, voters)


# -- a change keeps a live majority ---------------------------------------------------------------


def test_a_change_is_refused_when_the_new_set_has_no_live_majority() -> None:
    from kraft.voters import check_live_majority

    ids = {A1: 1, A2: 2, A3: 3, A6: 6}
    # Voters 1, 2, 3 with 3 dead for good: removing 2 by mistake leaves {1, 3}, which needs
    # both; it could never commit.
    with pytest.raises(VoterChangeError) as caught:
        check_live_majority((A1, A3), (A1, A2), ids, "removing node 2")
    assert caught.value.kind == "REQUEST_TIMED_OUT"
    assert caught.value.message == (
        "removing node 2 would leave 1 of 2 voters live, and a quorum needs 2: node 3 "
        f"({A3}) not answering or behind; retry once they are back"
    )
    # Removing the dead one is what the operator meant: {1, 2} are both live.
    check_live_majority((A1, A2), (A1, A2), ids, "removing node 3")
    # An add while a voter is down: {1, 2, 3, 6} needs 3 acks, and the new 6 gives none
    # while it is an observer (it turns voter only once the add is committed): only 1 and 2
    # would ack, the add would never commit and no election could win (6 never votes).
    with pytest.raises(VoterChangeError) as caught:
        check_live_majority((A1, A2, A3, A6), (A1, A2, A6), ids, "adding node 6", adding=A6)
    assert caught.value.kind == "REQUEST_TIMED_OUT"
    assert caught.value.message == (
        "adding node 6 would leave 2 of 4 voters live, and a quorum needs 3 (the new voter "
        f"counts only once its add is committed): node 3 ({A3}) not answering or behind; "
        "remove a voter that is gone for good first, or retry once they are back"
    )
    # With every voter live the add commits on the old voters' acks alone.
    check_live_majority((A1, A2, A3, A6), (A1, A2, A3), ids, "adding node 6", adding=A6)
    # 1 -> 2 voters: the new voter turns voter at once (the add commits only with its vote).
    check_live_majority((A1, A6), (A1,), ids, "adding node 6", adding=A6)
    # 2 -> 3 with one of the two down: 1 alone cannot commit {1, 2, 6}.
    with pytest.raises(VoterChangeError):
        check_live_majority((A1, A2, A6), (A1, A6), ids, "adding node 6", adding=A6)


# -- a voter's id: its registration outranks the formatted voters ---------------------------------


def test_a_voter_replaced_at_the_same_address_is_named_by_its_registration(
    tmp_path: Path,
) -> None:
    from kraft.quorum import MetadataQuorum
    from kraft.records import RegisterControllerRecord

    # Formatted with voters 1, 2, 3; 2 was removed and node 8 added at 2's old address.
    quorum = MetadataQuorum(1, A1, {2: A2, 3: A3}, tmp_path, "secret")
    assert quorum.voter_id(A2) == 2 and quorum.voter_id(A1) == 1
    quorum._state.apply_entry(
        2,
        (
            RegisterControllerRecord(2, "inc-2", "http://127.0.0.1:9094", A2),
            RegisterControllerRecord(8, "inc-8", "http://127.0.0.1:9120", A2),
        ),
    )
    assert quorum.voter_id(A2) == 8
    assert quorum.voter_id(A3) == 3  # configured, not registered yet
    assert quorum.voter_id(A6) is None


def test_an_observer_dials_the_configured_voters_beside_its_logs() -> None:
    from kraft.observer import extra_dial

    # Its log names 1, 2, 3, all replaced by 5, 6, 7 while it was down; the bootstrap servers
    # were updated to name the new ones: it dials those too.
    new = ("127.0.0.1:9105", "127.0.0.1:9107", A6)
    assert extra_dial(new, (A1, A2, A3), None) == new
    assert extra_dial((A1, A6), (A1, A2, A3), None) == (A6,)
    assert extra_dial((A1, A6), (A1, A2, A3), A6) == ()  # its own address, as a controller
    assert extra_dial((A1, A6), None, None) == ()  # no log voters: the configured are all


def test_a_journal_that_does_not_continue_the_dump_counts_for_nothing(tmp_path: Path) -> None:
    # pysyncobj clears a journal that does not start with the dump's last two entries when it
    # loads the dump: its membership entries are no part of the log any more.
    state = MetadataState().to_snapshot()
    dump = Dump((b"\x01", 10, 1), (b"\x01", 9, 1), (A1, A2, A3), state)
    write_dump_file(tmp_path / "metadata.dump", dump)
    write_journal(
        tmp_path / "raft-journal.log",
        [membership("rem", A3), b"\x01", membership("add", A6)],  # its entry 9 is another
        first_index=9,
    )
    assert log_voters(tmp_path, "metadata.dump", "raft-journal.log", ()) == (A1, A2, A3)


def test_a_dump_that_does_not_decode_stops_the_start(tmp_path: Path) -> None:
    from kraft.errors import MetadataSnapshotError
    from kraft.quorum import DUMP_FILE, JOURNAL_FILE

    # pysyncobj would skip it and go on with the base's voters, which need not be the log's.
    (tmp_path / DUMP_FILE).write_bytes(b"not a dump")
    with pytest.raises(MetadataSnapshotError, match="does not decode"):
        log_voters(tmp_path, DUMP_FILE, JOURNAL_FILE, (A1, A2, A3))
    (tmp_path / DUMP_FILE).unlink()
    assert log_voters(tmp_path, DUMP_FILE, JOURNAL_FILE, (A1, A2, A3)) is None  # no dump


def test_a_dump_holds_the_voters_at_its_index_not_a_later_uncommitted_change(
    tmp_path: Path,
) -> None:
    from kraft.dump import decode_dump
    from kraft.journal import DurableJournal
    from kraft.quorum import JOURNAL_FILE, META_FILE, MetadataQuorum

    # The dump is cut at entry 2 (the last applied); entry 3 adds 6 and is not committed.
    # pysyncobj hands _serialize its voters now, 6 among them: a new leader may overwrite
    # entry 3, and a restart from the dump would bring 6 back.
    write_journal(tmp_path / JOURNAL_FILE, [b"\x01", b"\x01", membership("add", A6), b"\x01"])
    quorum = MetadataQuorum(1, A1, {2: A2, 3: A3}, tmp_path, "secret")
    quorum._journal = DurableJournal(tmp_path / JOURNAL_FILE, tmp_path / META_FILE)
    try:
        dump_path = tmp_path / "dump.tmp"
        cluster = [TCPNode(a) for a in (A1, A2, A3, A6)]
        quorum._serialize(str(dump_path), ((b"\x01", 2, 1), (b"\x01", 1, 1), cluster))
        assert decode_dump(dump_path.read_bytes()).voters == (A1, A2, A3)
        # A removal above the dump's index is undone the same way.
        cluster = [TCPNode(a) for a in (A1, A2)]
        write_journal(tmp_path / "j2", [b"\x01", b"\x01", membership("rem", A3)])
        quorum._journal.close()
        (tmp_path / "j2").replace(tmp_path / JOURNAL_FILE)
        quorum._journal = DurableJournal(tmp_path / JOURNAL_FILE, tmp_path / META_FILE)
        quorum._serialize(str(dump_path), ((b"\x01", 2, 1), (b"\x01", 1, 1), cluster))
        assert decode_dump(dump_path.read_bytes()).voters == (A1, A2, A3)
    finally:
        quorum._journal.close()
