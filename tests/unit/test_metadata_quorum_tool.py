"""kraft-metadata-quorum without a cluster: flags, Kafka's messages and lines, whom it asks.

The async part runs against in-memory fakes of the HTTP client (no sockets).
"""

from __future__ import annotations

import asyncio
import copy
from types import TracebackType
from typing import Any

import pytest

from client.client import TransportError
from client.protocol import LEADER_NOT_AVAILABLE, ApiError
from client.tools import common
from client.tools import metadata_quorum as mq

BS = ["--bootstrap-server", "127.0.0.1:9092"]
NOW_MS = 1_700_000_010_000

# A leader's view (node 2 leads), docs/api.md's quorum shape, as GET /v1/cluster/quorum serves it.
LEADER_VIEW: dict[str, Any] = {
    "cluster_id": "MkU3OEVBNTcwNTJENDM2Qg",
    "leader_id": 2,
    "term": 7,
    "commit_index": 1042,
    "node": {"id": 2, "applied_index": 1042, "metadata_digest": "ab"},
    "voters": [
        {
            "id": 1,
            "status": "Follower",
            "connected": True,
            "log_end_offset": 1040,
            "lag": 2,
            "last_fetch_ms": 1_700_000_009_990,
            "last_caught_up_ms": 1_700_000_009_700,
        },
        {
            "id": 2,
            "status": "Leader",
            "connected": True,
            "log_end_offset": 1042,
            "lag": 0,
            "last_fetch_ms": 1_700_000_010_000,
            "last_caught_up_ms": 1_700_000_010_000,
        },
        {
            "id": 3,
            "status": "Follower",
            "connected": True,
            "log_end_offset": 1042,
            "lag": 0,
            "last_fetch_ms": 1_700_000_009_995,
            "last_caught_up_ms": 1_700_000_009_995,
        },
    ],
}

# Node 1's own view while node 2 leads: a follower knows no one's log end but its own.
FOLLOWER_VIEW: dict[str, Any] = {
    **LEADER_VIEW,
    "node": {"id": 1, "applied_index": 1040, "metadata_digest": "ab"},
    "voters": [
        {**LEADER_VIEW["voters"][0], "last_caught_up_ms": None},
        {
            "id": 2,
            "status": "Leader",
            "connected": True,
            "log_end_offset": None,
            "lag": None,
            "last_fetch_ms": 1_700_000_009_990,
            "last_caught_up_ms": None,
        },
        {
            "id": 3,
            "status": "Follower",
            "connected": False,
            "log_end_offset": None,
            "lag": None,
            "last_fetch_ms": None,
            "last_caught_up_ms": None,
        },
    ],
}

CLUSTER: dict[str, Any] = {
    "cluster_id": "MkU3OEVBNTcwNTJENDM2Qg",
    "controller_id": 2,
    "brokers": [
        {"id": 1, "url": "http://127.0.0.1:9092", "fenced": False, "alive": True},
        {"id": 2, "url": "http://127.0.0.1:9094", "fenced": False, "alive": True},
        {"id": 3, "url": "http://127.0.0.1:9096", "fenced": False, "alive": True},
    ],
}


def usage_error(argv: list[str]) -> str:
    with pytest.raises(common.UsageError) as info:
        mq.parse_command(argv)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Flags
# ---------------------------------------------------------------------------------------------


def test_describe_status_and_replication_parse_to_their_report() -> None:
    assert mq.parse_command([*BS, "describe", "--status"]) == mq.QuorumCommand(
        "127.0.0.1:9092", "status"
    )
    assert mq.parse_command([*BS, "describe", "--replication", "--human-readable"]) == (
        mq.QuorumCommand("127.0.0.1:9092", "replication", human_readable=True)
    )


def test_bootstrap_server_is_also_accepted_after_the_command() -> None:
    cmd = mq.parse_command(["describe", "--status", *BS])
    assert cmd.bootstrap == "127.0.0.1:9092"


def test_status_and_replication_together_are_refused_with_kafkas_message() -> None:
    assert usage_error([*BS, "describe", "--status", "--replication"]) == (
        "Only one of --status or --replication should be specified with describe sub-command"
    )


def test_describe_needs_status_or_replication() -> None:
    assert usage_error([*BS, "describe"]) == (
        "One of --status or --replication must be specified with describe sub-command"
    )


def test_human_readable_goes_with_replication_only() -> None:
    assert usage_error([*BS, "describe", "--status", "--human-readable"]) == (
        "The option --human-readable is only supported along with --replication"
    )


def test_missing_bootstrap_server_is_named() -> None:
    assert "--bootstrap-server" in usage_error(["describe", "--status"])


def test_bad_bootstrap_address_is_refused() -> None:
    assert "host:port" in usage_error(["--bootstrap-server", "nohost", "describe", "--status"])


def test_missing_command_is_an_error() -> None:
    assert "too few arguments" in usage_error(BS)


def test_bootstrap_controller_is_a_nodes_address_too_but_not_with_bootstrap_server() -> None:
    cmd = mq.parse_command(["--bootstrap-controller", "127.0.0.1:9102", "describe", "--status"])
    assert cmd.bootstrap == "127.0.0.1:9102" and cmd.report == "status"
    both = [*BS, "--bootstrap-controller", "127.0.0.1:9102", "describe", "--status"]
    assert usage_error(both) == (
        "argument --bootstrap-controller: not allowed with argument --bootstrap-server"
    )


def test_unknown_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert mq.main([*BS, "describe", "--status", "--no-such-flag"]) == 2
    assert "--no-such-flag" in capsys.readouterr().err


def test_no_arguments_print_usage_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert mq.main([]) == common.EXIT_ERROR
    assert "usage: kraft-metadata-quorum" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# --status
# ---------------------------------------------------------------------------------------------


def test_status_prints_kafkas_lines_from_the_leaders_view() -> None:
    # Voter 1 has the smallest log end: lag 1042-1040, lag time leader's caught-up less its.
    assert mq.status_lines(LEADER_VIEW, "MkU3OEVBNTcwNTJENDM2Qg") == [
        "ClusterId:              MkU3OEVBNTcwNTJENDM2Qg",
        "LeaderId:               2",
        "LeaderEpoch:            7",
        "HighWatermark:          1042",
        "MaxFollowerLag:         2",
        "MaxFollowerLagTimeMs:   300",
        "CurrentVoters:          [1,2,3]",
        "CurrentObservers:       []",
    ]


def test_max_follower_lag_time_is_zero_when_the_leader_is_the_first_slowest_voter() -> None:
    quorum = copy.deepcopy(LEADER_VIEW)
    quorum["voters"] = [quorum["voters"][1], quorum["voters"][2]]  # leader first, all at 1042
    assert mq.max_follower_lag(quorum) == (0, 0)


def test_max_follower_lag_time_between_caught_up_voters_is_their_caught_up_difference() -> None:
    # As Kafka: with every log end equal, the first voter is "the slowest"; here a follower.
    quorum = copy.deepcopy(LEADER_VIEW)
    quorum["voters"][0]["log_end_offset"] = 1042
    assert mq.max_follower_lag(quorum) == (0, 300)


def test_max_follower_lag_time_is_minus_one_without_a_caught_up_timestamp() -> None:
    quorum = copy.deepcopy(LEADER_VIEW)
    quorum["voters"][0]["last_caught_up_ms"] = None
    assert mq.max_follower_lag(quorum) == (2, -1)


def test_status_from_a_followers_view_prints_minus_one_for_what_it_cannot_know() -> None:
    lines = mq.status_lines(FOLLOWER_VIEW, None)
    assert lines[0] == "ClusterId:              MkU3OEVBNTcwNTJENDM2Qg"
    assert lines[4:6] == ["MaxFollowerLag:         -1", "MaxFollowerLagTimeMs:   -1"]


def test_status_without_a_known_leader_is_an_error_not_a_guess() -> None:
    with pytest.raises(mq.QuorumError, match="No quorum leader"):
        mq.status_lines({**LEADER_VIEW, "leader_id": None}, "x")


def test_unknown_term_and_commit_index_print_minus_one() -> None:
    lines = mq.status_lines({**LEADER_VIEW, "term": None, "commit_index": None}, "x")
    assert lines[2:4] == ["LeaderEpoch:            -1", "HighWatermark:          -1"]


# ---------------------------------------------------------------------------------------------
# --replication
# ---------------------------------------------------------------------------------------------


def test_replication_is_kafkas_table_leader_first_cells_padded_and_tab_ended() -> None:
    assert mq.replication_lines(LEADER_VIEW) == [
        "NodeId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t",
        "2     \t1042        \t0  \t1700000010000     \t1700000010000        \tLeader  \t",
        "1     \t1040        \t2  \t1700000009990     \t1700000009700        \tFollower\t",
        "3     \t1042        \t0  \t1700000009995     \t1700000009995        \tFollower\t",
    ]


def test_replication_columns_split_on_tabs_into_kafkas_fields() -> None:
    lines = mq.replication_lines(LEADER_VIEW)
    rows = [[cell.strip() for cell in line.split("\t")[:-1]] for line in lines]
    assert rows[0] == list(mq.REPLICATION_HEADERS)
    assert [row[0] for row in rows[1:]] == ["2", "1", "3"]
    assert [row[-1] for row in rows[1:]] == ["Leader", "Follower", "Follower"]


def test_replication_from_a_followers_view_prints_minus_one_for_unknown_values() -> None:
    rows = mq.replication_rows(FOLLOWER_VIEW)
    assert rows[0] == ["2", "-1", "-1", "1700000009990", "-1", "Leader"]
    assert rows[2] == ["3", "-1", "-1", "-1", "-1", "Follower"]


def test_human_readable_timestamps_are_ms_ago() -> None:
    rows = mq.replication_rows(LEADER_VIEW, human_readable=True, now_ms=NOW_MS)
    assert rows[0][3:5] == ["0 ms ago", "0 ms ago"]
    assert rows[1][3:5] == ["10 ms ago", "300 ms ago"]


def test_human_readable_timestamp_in_the_future_is_kafkas_clock_drift_error() -> None:
    with pytest.raises(mq.QuorumError, match="possible drift in system clock"):
        mq.replication_rows(LEADER_VIEW, human_readable=True, now_ms=NOW_MS - 1)


def test_controller_url_is_the_controllers_broker_url() -> None:
    assert mq.controller_url(CLUSTER) == "http://127.0.0.1:9094"
    assert mq.controller_url({**CLUSTER, "controller_id": None}) is None
    assert mq.controller_url({**CLUSTER, "controller_id": 9}) is None


# ---------------------------------------------------------------------------------------------
# Whom the tool asks (fakes, no sockets)
# ---------------------------------------------------------------------------------------------


class FakeNode:
    """A fake QuorumClient for one node: its answers, or an error to raise."""

    def __init__(self, quorum: Any = None, cluster: Any = None) -> None:
        self._quorum = quorum
        self._cluster = cluster
        self.asked = 0

    async def __aenter__(self) -> FakeNode:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def cluster(self) -> dict[str, Any]:
        if isinstance(self._cluster, Exception):
            raise self._cluster
        return dict(self._cluster)

    async def quorum(self) -> dict[str, Any]:
        self.asked += 1
        if isinstance(self._quorum, Exception):
            raise self._quorum
        return copy.deepcopy(self._quorum)


def run_execute(
    cmd: mq.QuorumCommand,
    bootstrap: FakeNode,
    nodes: dict[str, FakeNode],
    capsys: pytest.CaptureFixture[str],
) -> list[str]:
    """Runs the command against fakes; the lines it printed."""
    connect: Any = nodes.__getitem__
    asyncio.run(mq.execute(cmd, bootstrap, connect, lambda: NOW_MS))  # type: ignore[arg-type]
    return capsys.readouterr().out.splitlines()


def test_the_leader_named_by_the_bootstrap_node_is_asked_for_the_quorum(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bootstrap = FakeNode(quorum=FOLLOWER_VIEW, cluster=CLUSTER)
    leader = FakeNode(quorum=LEADER_VIEW)
    lines = run_execute(
        mq.QuorumCommand("x:1", "status"), bootstrap, {"http://127.0.0.1:9094": leader}, capsys
    )
    assert leader.asked == 1 and bootstrap.asked == 0
    assert "MaxFollowerLag:         2" in lines


def test_an_unreachable_leader_falls_back_to_the_bootstrap_nodes_view(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bootstrap = FakeNode(quorum=FOLLOWER_VIEW, cluster=CLUSTER)
    leader = FakeNode(quorum=TransportError("Could not connect"))
    lines = run_execute(
        mq.QuorumCommand("x:1", "replication"),
        bootstrap,
        {"http://127.0.0.1:9094": leader},
        capsys,
    )
    assert bootstrap.asked == 1
    assert lines[1].split("\t")[1].strip() == "-1"  # the leader's log end, unknown to node 1


def test_an_answer_from_a_deposed_leader_is_not_taken_for_the_leaders_view(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Node 2 was named controller, but by the time it answers node 3 leads.
    moved = {**FOLLOWER_VIEW, "node": {"id": 2}, "leader_id": 3}
    bootstrap = FakeNode(quorum=FOLLOWER_VIEW, cluster=CLUSTER)
    run_execute(
        mq.QuorumCommand("x:1", "status"),
        bootstrap,
        {"http://127.0.0.1:9094": FakeNode(quorum=moved)},
        capsys,
    )
    assert bootstrap.asked == 1


def test_an_error_from_the_bootstrap_node_is_raised(capsys: pytest.CaptureFixture[str]) -> None:
    bootstrap = FakeNode(cluster=ApiError(LEADER_NOT_AVAILABLE, "no leader"))
    with pytest.raises(ApiError):
        run_execute(mq.QuorumCommand("x:1", "status"), bootstrap, {}, capsys)


def test_error_line_is_the_servers_message() -> None:
    assert mq.error_line(ApiError(LEADER_NOT_AVAILABLE, "no leader yet")) == "no leader yet"
    assert mq.error_line(mq.QuorumError("No quorum leader")) == "No quorum leader"
