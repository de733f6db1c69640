"""kraft-consumer-groups: Kafka's checks of the command line and Kafka's lines (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from client.admin import TopicPartition
from client.tools import common
from client.tools import consumer_groups as cg
from client.tools import group_lines as lines

B = ["--bootstrap-server", "localhost:9092"]


def usage_error(argv: list[str]) -> str:
    with pytest.raises(common.UsageError) as info:
        cg.parse_command(argv)
    return str(info.value)


# -- the command line -----------------------------------------------------------------------------


def test_exactly_one_action_is_required() -> None:
    assert usage_error(B) == (
        "Command must include exactly one action: --list, --describe, --delete, "
        "--reset-offsets, --delete-offsets"
    )
    assert "exactly one action" in usage_error([*B, "--list", "--describe", "--all-groups"])


def test_bootstrap_server_is_required() -> None:
    assert usage_error(["--list"]) == 'Missing required argument "[bootstrap-server]"'


def test_describe_needs_a_group_or_all_groups() -> None:
    assert usage_error([*B, "--describe"]) == (
        "Option [describe] takes one of these options: [group], [all-groups]"
    )


def test_describe_takes_at_most_one_of_members_offsets_state() -> None:
    message = usage_error([*B, "--describe", "--group", "g", "--members", "--state"])
    assert message == (
        "Option [describe] takes at most one of these options: [members], [offsets], [state]"
    )


def test_describe_state_takes_no_value() -> None:
    assert usage_error([*B, "--describe", "--group", "g", "--state", "Stable"]) == (
        "Option [describe] does not take a value for [state]"
    )


def test_members_is_only_for_describe() -> None:
    assert "[members]" in usage_error([*B, "--list", "--members"])


def test_list_state_values_are_kafkas_states_in_any_case() -> None:
    cmd = cg.parse_command([*B, "--list", "--state", "stable,EMPTY"])
    assert cmd.state == "stable,EMPTY"
    assert lines.parse_states("stable,EMPTY") == {"Stable", "Empty"}
    assert usage_error([*B, "--list", "--state", "running"]) == (
        "Invalid state list 'running'. Valid states are: PreparingRebalance, "
        "CompletingRebalance, Stable, Dead, Empty, Assigning, Reconciling"
    )


def test_group_cannot_go_with_list_or_all_groups() -> None:
    assert usage_error([*B, "--list", "--group", "g"]) == (
        'Option "[group]" can\'t be used with option "[list]"'
    )
    assert usage_error([*B, "--describe", "--group", "g", "--all-groups"]) == (
        'Option "[group]" can\'t be used with option "[all-groups]"'
    )


def test_delete_refuses_a_topic() -> None:
    assert usage_error([*B, "--delete", "--group", "g", "--topic", "t"]) == (
        "The consumer does not support topic-specific offset deletion from a consumer group."
    )


def test_reset_needs_one_scenario_and_one_scope() -> None:
    assert usage_error([*B, "--reset-offsets", "--group", "g", "--topic", "t", "--execute"]) == (
        "Option '[reset-offsets]' requires one of the following scenarios: [to-offset], "
        "[shift-by], [to-datetime], [by-duration], [to-earliest], [to-latest], [to-current], "
        "[from-file]"
    )
    assert usage_error([*B, "--reset-offsets", "--group", "g", "--to-earliest", "--execute"]) == (
        "One of the reset scopes should be defined: --all-topics, --topic."
    )
    message = usage_error(
        [*B, "--reset-offsets", "--group", "g", "--all-topics", "--to-earliest", "--to-latest"]
    )
    assert message == 'Option "[to-earliest]" can\'t be used with option "[to-latest]"'


def test_reset_accepts_only_one_of_execute_and_dry_run() -> None:
    argv = [*B, "--reset-offsets", "--group", "g", "--all-topics", "--to-earliest"]
    assert usage_error([*argv, "--execute", "--dry-run"]) == (
        "Option [reset-offsets] only accepts one of [execute] and [dry-run]"
    )


def test_reset_without_execute_is_a_dry_run_with_kafkas_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cmd = cg.parse_command([*B, "--reset-offsets", "--group", "g", "--all-topics", "--to-latest"])
    assert not cmd.execute
    assert capsys.readouterr().err.startswith(
        "WARN: No action will be performed as the --execute option is missing."
    )


def test_reset_scenarios_carry_their_values() -> None:
    base = [*B, "--reset-offsets", "--group", "g", "--topic", "t:0,2", "--execute"]
    assert cg.parse_command([*base, "--to-offset", "7"]).scenario_value == 7
    assert cg.parse_command([*base, "--shift-by", "-3"]).scenario_value == -3
    cmd = cg.parse_command([*base, "--to-datetime", "2024-01-02T03:04:05.678"])
    assert cmd.scenario_value == 1704164645678
    assert cg.parse_command([*base, "--by-duration", "PT1H30M"]).duration_ms == 5_400_000


def test_reset_of_a_bad_topic_argument_is_kafkas_error() -> None:
    base = [*B, "--reset-offsets", "--group", "g", "--to-earliest", "--execute", "--topic"]
    assert usage_error([*base, "t:x"]) == "Invalid partition 'x' specified in topic arg 't:x''"
    assert usage_error([*base, "t:1:2"]) == (
        "Invalid topic arg 't:1:2', expected topic name and partitions"
    )


@pytest.mark.parametrize("flag", ["--delete-offsets", "--export", "--from-file"])
def test_flags_we_do_not_have_are_refused_by_name(flag: str) -> None:
    assert flag in usage_error([*B, flag, "x"])


# -- values ---------------------------------------------------------------------------------------


def test_datetime_without_a_zone_is_utc_and_with_one_is_honoured() -> None:
    assert lines.parse_datetime_ms("1970-01-01T00:00:01.000") == 1000
    assert lines.parse_datetime_ms("1970-01-01T01:00:00.000+01:00") == 0
    assert lines.parse_datetime_ms("1970-01-01T00:00:00.000-0130") == 5_400_000
    assert lines.parse_datetime_ms("1970-01-01T00:00:00.000Z") == 0


@pytest.mark.parametrize("text", ["2024-01-01", "2024-01-01T00:00:00", "2024-02-31T00:00:00.000"])
def test_datetime_parsing_is_strict_as_kafkas(text: str) -> None:
    with pytest.raises(lines.LineError):
        lines.parse_datetime_ms(text)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("PT1S", 1000), ("P1D", 86_400_000), ("PT0.5S", 500), ("-PT1M", -60_000), ("pt2h", 7_200_000)],
)
def test_durations_as_java_parses_them(text: str, ms: int) -> None:
    assert lines.parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["P", "PT", "1H", "P1H", "PT1X"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(lines.LineError, match="Text cannot be parsed to a Duration"):
        lines.parse_duration_ms(text)


def test_offsets_outside_the_log_are_clamped_with_kafkas_warning() -> None:
    tp = TopicPartition("t", 0)
    assert lines.clamp_offset(tp, 5, 2, 10) == (5, None)
    assert lines.clamp_offset(tp, 50, 2, 10) == (
        10,
        "New offset (50) is higher than latest offset for topic partition t-0. "
        "Value will be set to 10",
    )
    assert lines.clamp_offset(tp, 1, 2, 10)[0] == 2


def test_shift_needs_a_committed_offset() -> None:
    tp = TopicPartition("t", 1)
    assert lines.shift_offsets([tp], {tp: 10}, -4) == {tp: 6}
    with pytest.raises(lines.LineError, match="no current committed offset"):
        lines.shift_offsets([tp], {}, 1)


def test_only_an_inactive_group_may_be_reset() -> None:
    assert lines.reset_refusal("g", "Empty") is None
    assert lines.reset_refusal("g", "Dead") is None
    assert lines.reset_refusal("g", "Stable") == (
        "Assignments can only be reset if the group 'g' is inactive, but the current state "
        "is Stable."
    )


# -- tables ---------------------------------------------------------------------------------------


def _desc(**extra: Any) -> dict[str, Any]:
    return {
        "group": "g",
        "state": "Stable",
        "assignor": "uniform",
        "coordinator_id": 2,
        "members": [
            {
                "member_id": "m-small",
                "client_id": "c1",
                "client_host": "127.0.0.1",
                "assignment": [{"topic": "t", "partition": 2}],
            },
            {
                "member_id": "m-big",
                "client_id": "c2",
                "client_host": "127.0.0.2",
                "assignment": [{"topic": "t", "partition": 1}, {"topic": "t", "partition": 0}],
            },
        ],
        "offsets": [
            {"topic": "t", "partition": 0, "offset": 5, "log_end_offset": 9},
            {"topic": "t", "partition": 1, "offset": None, "log_end_offset": 3},
            {"topic": "t", "partition": 2, "offset": 1, "log_end_offset": 1},
            {"topic": "u", "partition": 0, "offset": 4, "log_end_offset": 4},
        ],
        **extra,
    }


def test_describe_rows_put_bigger_members_first_then_unowned_commits() -> None:
    rows = lines.offset_rows(_desc())
    assert [(r.topic, r.partition, r.consumer_id) for r in rows] == [
        ("t", 0, "m-big"),
        ("t", 1, "m-big"),
        ("t", 2, "m-small"),
        ("u", 0, "-"),
    ]
    assert [r.lag for r in rows] == [4, None, 0, 0]


def test_describe_table_has_kafkas_columns_and_widths() -> None:
    table = lines.offsets_table(lines.offset_rows(_desc()))
    assert table[0] == ""
    assert table[1] == (
        "GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG       "
        "      CONSUMER-ID     HOST            CLIENT-ID"
    )
    assert table[2] == (
        "g               t               0          5               9               4         "
        "      m-big           /127.0.0.2      c2"
    )
    assert table[3].split() == ["g", "t", "1", "-", "3", "-", "m-big", "/127.0.0.2", "c2"]
    assert table[5].split() == ["g", "u", "0", "4", "4", "0", "-", "-", "-"]


def test_members_table_with_verbose_assignment() -> None:
    table = lines.members_table(_desc(), verbose=True)
    assert table[1] == (
        "GROUP           CONSUMER-ID     HOST            CLIENT-ID       #PARTITIONS     ASSIGNMENT"
    )
    assert table[3] == (
        "g               m-big           /127.0.0.2      c2              2               t(0,1)"
    )


def test_state_table() -> None:
    table = lines.state_table(_desc(), "localhost:9094  (2)")
    assert table[1].split() == [
        "GROUP",
        "COORDINATOR",
        "(ID)",
        "ASSIGNMENT-STRATEGY",
        "STATE",
        "#MEMBERS",
    ]
    assert table[2] == (
        "g                         localhost:9094  (2)       uniform              Stable          2"
    )


def test_list_with_type_prints_kafkas_type_names() -> None:
    groups = [
        {"group": "classic-group", "state": "Stable", "type": "classic"},
        {"group": "g", "state": "Empty", "type": "consumer"},
    ]
    assert lines.list_lines(groups, include_type=True, include_state=True) == [
        "GROUP                     TYPE                 STATE               ",
        "classic-group             Classic              Stable              ",
        "g                         Consumer             Empty               ",
    ]


def test_list_with_state_pads_as_kafka() -> None:
    groups = [{"group": "g", "state": "Empty", "type": "consumer"}]
    assert lines.list_lines(groups, include_type=False, include_state=False) == ["g"]
    assert lines.list_lines(groups, include_type=False, include_state=True) == [
        "GROUP                     STATE               ",
        "g                         Empty               ",
    ]


def test_reset_table() -> None:
    table = lines.reset_table({"g": {TopicPartition("t", 1): 0, TopicPartition("t", 0): 3}})
    assert table == [
        "",
        "GROUP                          TOPIC                          PARTITION  NEW-OFFSET     ",
        "g                              t                              0          3              ",
        "g                              t                              1          0              ",
    ]


def test_state_notices() -> None:
    assert lines.state_notice("g", "Empty") == "Consumer group 'g' has no active members."
    assert lines.state_notice("g", "Reconciling") == "Warning: Consumer group 'g' is rebalancing."
    assert lines.state_notice("g", "Stable") is None


def test_deletion_report() -> None:
    assert lines.deletion_lines(["a", "b"], {}) == (
        ["Deletion of requested consumer groups ('a, b') was successful."],
        [],
    )
    out, err = lines.deletion_lines([], {"g": lines.deletion_failure(40911, "group g has members")})
    assert out == [
        "* Group 'g' could not be deleted due to: java.util.concurrent.ExecutionException: "
        "org.apache.kafka.common.errors.GroupNotEmptyException: The group is not empty."
    ]
    assert err == ["Error: Deletion of some consumer groups failed:"]
