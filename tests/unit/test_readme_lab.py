"""How the README is read as steps and how output shapes are compared (tests/readme_lab.py)."""

from __future__ import annotations

import pytest

from tests import readme_lab
from tests.readme_lab import Step

CONSOLE = """Some prose.

<!-- readme-test: any order -->
```console
$ kraft-topics --bootstrap-server localhost:9092 \\
    --create --topic news
Created topic news.
$ kraft-console-producer --bootstrap-server localhost:9092 --topic news
>Good morning
>Good day
>^C
$ kraft-console-consumer --bootstrap-server localhost:9092 --topic news --from-beginning
Good morning
Good day
^CProcessed a total of 2 messages
```

<!-- readme-test: not run: needs a Docker engine -->
```sh
docker compose up -d
```

```sh
# a comment
curl -s localhost:9094/v1/topics
kraft-console-producer --topic t \\
    --property parse.key=true
>k,v
```

```text
not a command
```
"""


def all_steps(markdown: str) -> list[Step]:
    return [step for block in readme_lab.blocks(markdown) for step in readme_lab.steps(block)]


def test_console_blocks_give_commands_typed_lines_output_and_ctrl_c() -> None:
    create, produce, consume, curl, keyed = all_steps(CONSOLE)
    assert create.command == (
        "kraft-topics --bootstrap-server localhost:9092 --create --topic news"
    )
    assert create.expected == ["Created topic news."]
    assert create.stdin is None and create.interrupt_after is None and create.any_order
    assert create.line_no == 5
    assert produce.stdin == ["Good morning", "Good day"] and produce.expected == []
    assert consume.expected == ["Good morning", "Good day", "Processed a total of 2 messages"]
    assert consume.interrupt_after == 2
    assert curl.command == "curl -s localhost:9094/v1/topics" and curl.expected is None
    assert keyed.command == "kraft-console-producer --topic t --property parse.key=true"
    assert keyed.stdin == ["k,v"]


def test_a_block_not_run_keeps_its_reason_and_gives_no_steps() -> None:
    compose = [b for b in readme_lab.blocks(CONSOLE) if b.not_run_reason]
    assert [b.not_run_reason for b in compose] == ["needs a Docker engine"]
    assert readme_lab.steps(compose[0]) == []


def test_output_before_a_command_and_an_unclosed_block_are_refused() -> None:
    with pytest.raises(ValueError, match="must follow a '\\$ ' command"):
        all_steps("```console\nstray\n$ ls\n```\n")
    with pytest.raises(ValueError, match="never closed"):
        readme_lab.blocks("```sh\nls\n")


def test_ports_of_the_three_documented_nodes_are_rewritten() -> None:
    text = "localhost:9092 127.0.0.1:9094,node:9096 9093 19092 90920"
    assert readme_lab.rewrite_ports(text, 30000) == (
        "localhost:30000 127.0.0.1:30002,node:30004 30001 19092 90920"
    )
    kafka = "127.0.0.1:19092,127.0.0.1:19094 19100 119092 9092"
    assert readme_lab.rewrite_ports(kafka, 30000, 31000) == (
        "127.0.0.1:31000,127.0.0.1:31002 31008 119092 30000"
    )


def step(command: str, expected: list[str], **kwargs: object) -> Step:
    return Step(command, 1, expected=expected, **kwargs)  # type: ignore[arg-type]


def test_lines_match_up_to_ids_numbers_and_spacing() -> None:
    shown = ["Topic: news\tTopicId: 8s7fm2nYQ7Kl1wT0b7dK3A\tPartitionCount: 3", "", "x  y"]
    printed = "Topic: news\tTopicId: Qx_9-aB3cD4eF5gH6iJ7kL\tPartitionCount: 1\nx y\n"
    assert readme_lab.output_difference(step("kraft-topics", shown), printed) is None
    difference = readme_lab.output_difference(step("kraft-topics", shown), "Topic: other\n")
    assert difference is not None and "Topic: other" in difference


def test_numbers_are_the_runs_but_how_many_is_not() -> None:
    """A replica list keeps its members' count: a topic of one replica is not one of three."""
    shown = ["\tTopic: news\tPartition: 0\tLeader: 2\tReplicas: 2,1,3\tIsr: 2,1,3"]
    same = "\tTopic: news\tPartition: 0\tLeader: 3\tReplicas: 3,2,1\tIsr: 3,1,2\n"
    assert readme_lab.output_difference(step("kraft-topics", shown), same) is None
    one = "\tTopic: news\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n"
    assert readme_lab.output_difference(step("kraft-topics", shown), one) is not None
    small = step("curl", ["kraft_log_fsync_duration_seconds_sum 0.0001518950011814013"])
    assert readme_lab.output_difference(small, "kraft_log_fsync_duration_seconds_sum 4e-05") is None


def test_a_block_may_say_its_commands_exit_with_another_status() -> None:
    markdown = "<!-- readme-test: exits 1 -->\n```console\n$ false\n```\n\n```sh\ntrue\n```\n"
    assert [s.exit_status for s in all_steps(markdown)] == [1, 0]


def test_a_java_date_is_any_date() -> None:
    shown = ["#Sun Dec 06 08:46:17 UTC 2026", "node.id=1"]
    printed = "#Tue Mar  3 23:01:59 CET 2027\nnode.id=1\n"
    assert readme_lab.output_difference(step("cat m", shown), printed) is None
    assert readme_lab.output_difference(step("cat m", shown), "#Sunday\nnode.id=1\n") is not None


def test_a_wildcard_line_stands_for_any_lines_and_order_can_be_free() -> None:
    shown = ["first", "...", "last"]
    assert readme_lab.output_difference(step("t", shown), "first\na\nb\nlast\n") is None
    assert readme_lab.output_difference(step("t", shown), "first\nlast\n") is None
    assert readme_lab.output_difference(step("t", shown), "first\nlast\nmore\n") is not None
    free = step("t", ["a", "b"], any_order=True)
    assert readme_lab.output_difference(free, "b\na\n") is None
    assert readme_lab.output_difference(step("t", ["a", "b"]), "b\na\n") is not None


def test_json_is_compared_by_keys_and_types() -> None:
    shown = ['{"topic":"t","offsets":[{"partition":0,"offset":5}],"leader":null}']
    same = (
        '{"topic":"t","offsets":[{"partition":2,"offset":9},{"partition":1,"offset":0}],'
        '"leader":null}'
    )
    assert readme_lab.output_difference(step("curl", shown), same) is None
    extra_key = '{"topic":"t","offsets":[],"leader":null,"x":1}'
    assert "not documented ['x']" in (
        readme_lab.output_difference(step("curl", shown), extra_key) or ""
    )
    wrong_type = '{"topic":1,"offsets":[{"partition":0,"offset":5}],"leader":null}'
    assert "$.topic" in (readme_lab.output_difference(step("curl", shown), wrong_type) or "")
    assert readme_lab.output_difference(step("curl", shown), "not json") is not None
    other_topic = '{"topic":"u","offsets":[{"partition":0,"offset":5}],"leader":null}'
    assert "expected 't'" in (readme_lab.output_difference(step("curl", shown), other_topic) or "")
    error = step("curl", ['{"error_code":40401,"error":"UNKNOWN_TOPIC_OR_PARTITION"}'])
    server_error = '{"error_code":50000,"error":"UNKNOWN_TOPIC_OR_PARTITION"}'
    assert readme_lab.output_difference(error, server_error) is not None
    ids = step("curl", ['{"cluster_id":"4R4noo8-QZWE90hrE1NyXQ","ready":true}'])
    assert readme_lab.output_difference(ids, '{"cluster_id":"x","ready":true}') is None
    assert readme_lab.output_difference(ids, '{"cluster_id":"x","ready":false}') is not None
    unknown = step("curl", ['{"hw":null}'])
    assert readme_lab.output_difference(unknown, '{"hw":7}') is None
    lines = step("curl", ['{"a":1}', '{"a":2}'])
    assert readme_lab.output_difference(lines, '{"a":3}\n{"a":4}\n') is None


def test_ls_is_compared_as_a_set_of_names_and_prompts_are_dropped() -> None:
    shown = ["00000000000000000000.log  partition.metadata"]
    assert (
        readme_lab.output_difference(
            step("ls d", shown), "partition.metadata\n00000000000000000000.log\n"
        )
        is None
    )
    assert readme_lab.output_difference(step("ls d", shown), "partition.metadata\n") is not None
    some = step("ls d", ["partition.metadata ..."])
    assert readme_lab.output_difference(some, "partition.metadata\nx.log\n") is None
    assert readme_lab.output_difference(some, "x.log\n") is not None
    producer = Step("kraft-console-producer", 1, stdin=["a"], expected=[])
    assert readme_lab.output_difference(producer, ">>") is None


def test_eventually_marks_each_step_of_its_block_and_no_other() -> None:
    markdown = """<!-- readme-test: eventually -->
```console
$ kraft-console-consumer --bootstrap-server localhost:9092 --topic t --from-beginning
v
```

```console
$ kraft-topics --bootstrap-server localhost:9092 --list
t
```
"""
    consume, listing = all_steps(markdown)
    assert consume.eventually and not listing.eventually


def test_the_checkouts_absolute_path_before_the_cluster_directory_is_anyones() -> None:
    readme = "Non-consecutive offsets in /home/me/kraft/.cluster/node-1/t-0/0.log"
    run = "Non-consecutive offsets in /tmp/pytest-of-root/p-3/work/.cluster/node-1/t-0/0.log"
    assert readme_lab.normalize_line(readme) == readme_lab.normalize_line(run)
    assert readme_lab.normalize_line(".cluster/node-1") == ".cluster/node-#"
