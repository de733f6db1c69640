"""kraft-reassign-partitions' pure half: Kafka's command-line rules, files, checks, throttle
lists and lines (the expectations of Kafka's ReassignPartitionsUnitTest where it has them)."""

from __future__ import annotations

import json

import pytest

from client.admin import TopicPartition
from client.replica_assignment import PlacementError
from client.tools import common
from client.tools import reassignment_files as files
from client.tools.reassign_options import parse_command
from client.tools.reassign_partitions import replication_factor_changes
from client.tools.reassignment_files import PartitionMove, PartitionState, ReassignmentFileError


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--bootstrap-server", "h:1"],
            "Command must include exactly one action: --generate, --execute, --verify, "
            "--cancel, --list",
        ),
        (
            ["--bootstrap-server", "h:1", "--generate", "--execute"],
            "Command must include exactly one action: --generate, --execute, --verify, "
            "--cancel, --list",
        ),
        (["--list"], "Please specify either --bootstrap-server or --bootstrap-controller"),
        (
            ["--list", "--bootstrap-server", "h:1", "--bootstrap-controller", "h:2"],
            "Please don't specify both --bootstrap-server and --bootstrap-controller",
        ),
        (
            ["--verify", "--bootstrap-server", "h:1"],
            'Missing required argument "[reassignment-json-file]"',
        ),
        (
            ["--generate", "--bootstrap-server", "h:1", "--broker-list", "1"],
            'Missing required argument "[topics-to-move-json-file]"',
        ),
        (
            ["--verify", "--bootstrap-server", "h:1", "--reassignment-json-file", "f"]
            + ["--throttle", "0"],
            'Option "[throttle]" can\'t be used with action "[verify]"',
        ),
        (
            ["--verify", "--bootstrap-controller", "h:1", "--reassignment-json-file", "f"],
            'Option "[bootstrap-controller]" can\'t be used with action "[verify]"',
        ),
        (
            ["--list", "--bootstrap-server", "h:1", "--disable-rack-aware"],
            'Option "[disable-rack-aware]" can\'t be used with action "[list]"',
        ),
        (
            ["--execute", "--bootstrap-server", "h:1", "--reassignment-json-file", "f"]
            + ["--replica-alter-log-dirs-throttle", "1000"],
            "--replica-alter-log-dirs-throttle is not supported: each node has one log "
            "directory (log.dirs), so replicas never move between directories",
        ),
    ],
)
def test_command_lines_are_checked_as_kafkas(argv: list[str], message: str) -> None:
    with pytest.raises(common.UsageError) as caught:
        parse_command(argv)
    assert str(caught.value) == message


def test_each_action_takes_kafkas_arguments() -> None:
    cmd = parse_command(
        ["--execute", "--bootstrap-server", "h:1", "--reassignment-json-file", "f"]
        + ["--throttle", "1000", "--additional", "--timeout", "5"]
    )
    assert (cmd.action, cmd.throttle, cmd.additional, cmd.reassignment_file) == (
        "execute",
        1000,
        True,
        "f",
    )
    cmd = parse_command(
        ["--generate", "--bootstrap-server", "h:1", "--topics-to-move-json-file", "t"]
        + ["--broker-list", "1,2", "--disable-rack-aware"]
    )
    assert (cmd.action, cmd.broker_list, cmd.rack_aware) == ("generate", "1,2", False)
    cmd = parse_command(["--list", "--bootstrap-controller", "h:9"])
    assert (cmd.action, cmd.bootstrap) == ("list", "h:9")
    cmd = parse_command(
        ["--cancel", "--bootstrap-server", "h:1", "--reassignment-json-file", "f"]
        + ["--preserve-throttles"]
    )
    assert cmd.preserve_throttles and cmd.throttle == -1


# -- the files -----------------------------------------------------------------------------------


def test_generate_arguments_refuse_duplicates_in_kafkas_words() -> None:
    with pytest.raises(ReassignmentFileError, match=r"^Broker list contains duplicate entries"):
        files.parse_broker_list("5,2,3,4,5")
    assert files.parse_broker_list("5,2,3,4") == [5, 2, 3, 4]
    topics = files.parse_topics_to_move('{"topics": [{"topic": "foo"},{"topic": "foo"}]}')
    with pytest.raises(ReassignmentFileError) as caught:
        files.check_topics_to_move(topics)
    assert str(caught.value) == "List of topics to reassign contains duplicate entries: [foo]"
    assert files.parse_topics_to_move(
        '{"topics": [{"topic": "foo"},{"topic": "bar"}], "version":1}'
    ) == ["foo", "bar"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"version":1,"partitions":[]}', "Partition reassignment list cannot be empty"),
        (
            '{"version":1,"partitions":[{"topic":"foo","partition":0,"replicas":[]}]}',
            "Partition replica list cannot be empty",
        ),
        (
            '{"version":1,"partitions":[{"topic":"foo","partition":0,"replicas":[0,1],'
            '"log_dirs":["any","any"]},{"topic":"foo","partition":0,"replicas":[2,3,4],'
            '"log_dirs":["any","any","any"]}]}',
            "Partition reassignment contains duplicate topic partitions: foo-0",
        ),
        (
            '{"version":1,"partitions":[{"topic":"foo","partition":0,"replicas":[0,0]},'
            '{"topic":"foo","partition":1,"replicas":[2,3]}]}',
            "Partition replica lists may not contain duplicate entries: foo-0 contains "
            "multiple entries for 0",
        ),
        (
            '{"version":1,"partitions":[{"topic":"foo","partition":0,"replicas":[1,2],'
            '"log_dirs":["any"]}]}',
            "Size of replicas list [1, 2] is different from size of log dirs list [any] for "
            "partition foo-0",
        ),
        (
            '{"version":1,"partitions":[{"topic":"foo","partition":0,"replicas":[1,2,3],'
            '"log_dirs":["/tmp/a","/tmp/b","/tmp/c"]}]}',
            "log_dirs of foo-0 names '/tmp/a': only \"any\" is supported, each node has one "
            "log directory (log.dirs), so a replica cannot move between them",
        ),
        ('{"version":2,"partitions":[]}', "Not supported version field value 2"),
        ("{nope", "The input string is not a valid JSON"),
        (
            '{"partitions":[{"topic":"foo","partition":"0","replicas":[1]}]}',
            'partition must be a number, got "0"',
        ),
    ],
)
def test_reassignment_files_are_checked_before_anything_is_asked(text: str, message: str) -> None:
    with pytest.raises(ReassignmentFileError) as caught:
        files.check_execute(files.parse_reassignment(text))
    assert str(caught.value) == message


def test_a_reassignment_file_reads_as_kafkas() -> None:
    parsed = files.check_execute(
        files.parse_reassignment(
            '{"version":1,"partitions":[{"topic":"foo","partition":0,"replicas":[1,2,3],'
            '"log_dirs":["any","any","any"]},{"topic":"foo","partition":1,"replicas":[3,4,5]}]}'
        )
    )
    assert parsed == {tp("foo", 0): [1, 2, 3], tp("foo", 1): [3, 4, 5]}


def test_the_printed_json_is_kafkas() -> None:
    text = files.format_reassignment({tp("foo", 1): [4, 5, 6], tp("bar", 0): [7, 8]})
    assert text == (
        '{"version":1,"partitions":'
        '[{"topic":"bar","partition":0,"replicas":[7,8],"log_dirs":["any","any"]},'
        '{"topic":"foo","partition":1,"replicas":[4,5,6],"log_dirs":["any","any","any"]}]}'
    )
    # What --generate prints, --execute reads.
    assert files.check_execute(files.parse_reassignment(text)) == {
        tp("bar", 0): [7, 8],
        tp("foo", 1): [4, 5, 6],
    }


def test_generate_proposes_kafkas_placement_over_the_listed_brokers() -> None:
    current = {tp("foo", 0): [0, 1, 2], tp("foo", 1): [1, 2, 3], tp("bar", 0): [2, 3, 0]}
    racks: dict[int, str | None] = {0: None, 1: None, 3: None}
    proposed = files.propose(current, [0, 1, 3], racks, start_index=0)
    assert proposed == {tp("bar", 0): [0, 1, 3], tp("foo", 0): [0, 1, 3], tp("foo", 1): [1, 3, 0]}
    for _ in range(10):
        assert {b for r in files.propose(current, [0, 1, 3], racks).values() for b in r} == {
            0,
            1,
            3,
        }
    with pytest.raises(PlacementError, match=r"^Replication factor: 3 larger than available"):
        files.propose(current, [0, 1], {0: None, 1: None})


def test_generate_spreads_replicas_over_racks() -> None:
    current = {tp("foo", p): [1, 2] for p in range(6)}
    racks: dict[int, str | None] = {1: "a", 2: "a", 3: "b", 4: "b"}
    for replicas in files.propose(current, [1, 2, 3, 4], racks).values():
        assert {racks[b] for b in replicas} == {"a", "b"}


# -- throttles (Kafka's testMoveMap) -------------------------------------------------------------


def test_move_map_and_throttle_lists_match_kafkas() -> None:
    def ongoing(
        topic: str, p: int, replicas: list[int], adding: list[int], removing: list[int]
    ) -> dict[str, object]:
        return {
            "topic": topic,
            "partition": p,
            "replicas": replicas,
            "adding_replicas": adding,
            "removing_replicas": removing,
        }

    current_moves = [
        ongoing("foo", 0, [1, 2, 3, 4], [4], [3]),
        ongoing("foo", 1, [4, 5, 6, 7, 8], [7, 8], [4, 5]),
        ongoing("foo", 2, [1, 2, 3, 4], [3, 4], [1, 2]),
        ongoing("foo", 3, [1, 2, 3, 4], [3, 4], [1, 2]),
        ongoing("foo", 4, [1, 2, 3, 4], [3, 4], [1, 2]),
        ongoing("foo", 5, [1, 2, 3, 4], [3, 4], [1, 2]),
    ]
    proposed = {
        tp("foo", 0): [1, 2, 5],
        tp("foo", 2): [3, 4],
        tp("foo", 3): [5, 6],
        tp("foo", 4): [3],
        tp("foo", 5): [3, 4, 5, 6],
        tp("bar", 0): [1, 2, 3],
    }
    current = {
        tp("foo", 0): [1, 2, 3, 4],
        tp("foo", 1): [4, 5, 6, 7, 8],
        tp("foo", 2): [1, 2, 3, 4],
        tp("foo", 3): [1, 2, 3, 4],
        tp("foo", 4): [1, 2, 3, 4],
        tp("foo", 5): [1, 2, 3, 4],
        tp("bar", 0): [2, 3, 4],
        tp("baz", 0): [1, 2, 3],
    }
    moves = files.move_map(current_moves, proposed, current)
    assert moves["foo"] == {
        0: PartitionMove({1, 2, 3}, {5}),
        1: PartitionMove({4, 5, 6}, {7, 8}),
        2: PartitionMove({1, 2}, {3, 4}),
        3: PartitionMove({1, 2}, {5, 6}),
        4: PartitionMove({1, 2}, {3}),
        5: PartitionMove({1, 2}, {3, 4, 5, 6}),
    }
    assert moves["bar"] == {0: PartitionMove({2, 3, 4}, {1})}
    assert files.leader_throttles(moves) == {
        "foo": "0:1,0:2,0:3,1:4,1:5,1:6,2:1,2:2,3:1,3:2,4:1,4:2,5:1,5:2",
        "bar": "0:2,0:3,0:4",
    }
    assert files.follower_throttles(moves) == {
        "foo": "0:5,1:7,1:8,2:3,2:4,3:5,3:6,4:3,5:3,5:4,5:5,5:6",
        "bar": "0:1",
    }
    assert files.reassigning_brokers(moves) == [1, 2, 3, 4, 5, 6, 7, 8]


# -- lines ---------------------------------------------------------------------------------------


def test_status_lines_are_kafkas() -> None:
    states = {
        tp("foo", 0): PartitionState([1, 2, 3], [1, 2, 3], True),
        tp("foo", 1): PartitionState([1, 2, 3], [1, 2, 4], False),
        tp("bar", 0): PartitionState([1, 2, 3], [1, 2, 4], False),
        tp("baz", 0): PartitionState([1, 2], [1, 3], True),
    }
    assert files.status_lines(states) == [
        "Status of partition reassignment:",
        "Reassignment of partition bar-0 is still in progress.",
        "There is no active reassignment of partition baz-0, but replica set is 1,2 rather "
        "than 1,3.",
        "Reassignment of partition foo-0 is completed.",
        "Reassignment of partition foo-1 is still in progress.",
    ]


def test_list_lines_are_kafkas() -> None:
    assert files.list_lines([]) == ["No partition reassignments found."]
    ongoing = [
        {
            "topic": "foo",
            "partition": 1,
            "replicas": [1, 2, 4, 3],
            "adding_replicas": [4],
            "removing_replicas": [3],
        },
        {
            "topic": "bar",
            "partition": 0,
            "replicas": [1, 2, 3],
            "adding_replicas": [3],
            "removing_replicas": [],
        },
    ]
    assert files.list_lines(ongoing) == [
        "Current partition reassignments:",
        "bar-0: replicas: 1,2,3. adding: 3.",
        "foo-1: replicas: 1,2,4,3. adding: 4. removing: 3.",
    ]


def test_generated_json_is_valid_json_of_kafkas_shape() -> None:
    text = files.format_reassignment({tp("t", 0): [1]})
    assert json.loads(text) == {
        "version": 1,
        "partitions": [{"topic": "t", "partition": 0, "replicas": [1], "log_dirs": ["any"]}],
    }


def test_a_replication_factor_change_is_named_when_disallowed() -> None:
    proposed = {tp("foo", 0): [1, 2], tp("foo", 1): [1, 2, 3], tp("bar", 0): [4, 5]}
    current = {tp("foo", 0): [1, 3], tp("foo", 1): [1, 2], tp("bar", 0): [4, 6, 5]}
    # bar-0 is moving: its merged list holds the adding replica 6, so its factor is 2.
    ongoing = [
        {
            "topic": "bar",
            "partition": 0,
            "replicas": [4, 6, 5],
            "adding_replicas": [6],
            "removing_replicas": [5],
        }
    ]
    assert replication_factor_changes(proposed, current, ongoing) == (
        "foo-1: The replication factor is changed from 2 to 3"
    )
