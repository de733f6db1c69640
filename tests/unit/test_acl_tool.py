"""kraft-acls without a cluster (Kafka's AclCommand flags, checks and lines), and the client
config file flag of every tool (``--command-config`` and Kafka's per-tool names)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from client.security import ClientSecurity
from client.tools import acls as tool
from client.tools import (
    common,
    console_consumer,
    console_producer,
    consumer_perf_test,
    leader_election,
    metadata_quorum,
    producer_perf_test,
    topics,
)
from client.tools.acls import Entry, Resource

BS = ["--bootstrap-server", "127.0.0.1:9092"]


def parse(*argv: str) -> tool.AclsCommand:
    return tool.parse_command([*BS, *argv])


def usage_error(*argv: str) -> str:
    with pytest.raises(common.UsageError) as info:
        tool.parse_command(list(argv))
    return str(info.value)


def test_add_builds_every_principal_operation_pair_on_each_resource() -> None:
    cmd = parse(
        "--add",
        "--allow-principal",
        "User:alice",
        "--allow-principal",
        "User:bob",
        "--deny-principal",
        "User:eve",
        "--operation",
        "Read",
        "--operation",
        "Describe",
        "--topic",
        "news",
        "--topic",
        "logs",
    )
    assert cmd.action == "add"
    [(first, first_entries), (second, second_entries)] = cmd.resources
    assert (first, second) == (
        Resource("TOPIC", "logs", "LITERAL"),
        Resource("TOPIC", "news", "LITERAL"),
    )
    assert first_entries == second_entries and len(first_entries) == 6
    assert Entry("User:eve", "*", "DESCRIBE", "DENY") in first_entries
    assert Entry("User:bob", "*", "READ", "ALLOW") in first_entries


def test_group_operations_are_checked_as_kafka() -> None:
    assert usage_error(
        *BS, "--add", "--allow-principal", "User:a", "--operation", "Write", "--group", "g"
    ) == ("ResourceType GROUP only supports operations ALL, READ, DESCRIBE, DELETE")


def test_operation_defaults_to_all_and_takes_kafkas_spellings() -> None:
    cmd = parse("--add", "--allow-principal", "User:a", "--cluster")
    assert cmd.resources == (
        (Resource("CLUSTER", "kafka-cluster", "LITERAL"), (Entry("User:a", "*", "ALL", "ALLOW"),)),
    )
    assert tool.operation_name("IdempotentWrite") == "IDEMPOTENT_WRITE"
    assert tool.operation_name("alter_configs") == "ALTER_CONFIGS"
    assert tool.operation_name("Read") == "READ"
    with pytest.raises(common.UsageError, match="Unknown operation 'Fly'"):
        tool.operation_name("Fly")


def test_producer_and_consumer_conveniences() -> None:
    cmd = parse(
        "--add",
        "--allow-principal",
        "User:a",
        "--producer",
        "--consumer",
        "--idempotent",
        "--topic",
        "t",
        "--group",
        "g",
    )
    got = {r.resource_type: sorted(e.operation for e in entries) for r, entries in cmd.resources}
    assert got == {
        "TOPIC": ["CREATE", "DESCRIBE", "READ", "WRITE"],
        "GROUP": ["READ"],
        "CLUSTER": ["IDEMPOTENT_WRITE"],
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [*BS, "--list", "--add"],
            "Command must include exactly one action: --list, --add, --remove. ",
        ),
        ([*BS], "Command must include exactly one action: --list, --add, --remove. "),
        (["--list"], "One of --bootstrap-server or --bootstrap-controller must be specified"),
        (
            [*BS, "--add", "--topic", "t"],
            "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs.",
        ),
        (
            [*BS, "--add", "--allow-principal", "User:a"],
            "You must provide at least one "
            "resource: --topic <topic> or --cluster or --group <group>",
        ),
        (
            [
                *BS,
                "--add",
                "--allow-principal",
                "User:a",
                "--topic",
                "t",
                "--resource-pattern-type",
                "match",
            ],
            "A '--resource-pattern-type' value of 'MATCH' is not valid when adding acls.",
        ),
        (
            [*BS, "--list", "--resource-pattern-type", "weird"],
            "Unknown resource-pattern-type: weird",
        ),
        (
            [*BS, "--list", "--allow-principal", "User:a"],
            'Option "[list]" can\'t be used with option "[allow-principal]"',
        ),
        (
            [*BS, "--add", "--producer", "--operation", "Read", "--topic", "t"],
            'Option "[producer]" can\'t be used with option "[operation]"',
        ),
        (
            [*BS, "--add", "--principal", "User:a", "--topic", "t"],
            "The --principal option is only available if --list is set",
        ),
        (
            [*BS, "--add", "--producer", "--allow-principal", "User:a"],
            "With --producer you must specify a --topic",
        ),
        (
            [*BS, "--add", "--idempotent", "--allow-principal", "User:a", "--topic", "t"],
            "The --idempotent option is only available if --producer is set",
        ),
        (
            [*BS, "--add", "--consumer", "--allow-principal", "User:a", "--topic", "t"],
            "With --consumer you must specify a --topic and a --group and no --cluster or "
            "--transactional-id option should be specified.",
        ),
        (
            [*BS, "--add", "--allow-principal", "alice", "--topic", "t"],
            "expected a string in format principalType:principalName but got alice",
        ),
        (
            [
                *BS,
                "--add",
                "--allow-principal",
                "User:a",
                "--allow-host",
                "10.0.0.1",
                "--topic",
                "t",
            ],
            "host 10.0.0.1 is not supported: ACLs apply from every host (*)",
        ),
        (
            [*BS, "--list", "--transactional-id", "x"],
            "--transactional-id is not supported: there are no transactions",
        ),
        (
            [*BS, "--list", "--bootstrap-controller", "h:1"],
            "--bootstrap-controller is not "
            "supported: the controller listener speaks Raft only; give any node's HTTP address "
            "with --bootstrap-server",
        ),
    ],
)
def test_a_wrong_command_line_gets_kafkas_message(argv: list[str], message: str) -> None:
    assert usage_error(*argv) == message


def test_list_without_a_resource_lists_everything_and_with_principals_filters() -> None:
    cmd = parse("--list", "--principal", "User:alice")
    assert cmd.resources == () and cmd.list_principals == ("User:alice",)
    cmd = parse("--list", "--topic", "news", "--resource-pattern-type", "match")
    assert cmd.resources == ((Resource("TOPIC", "news", "MATCH"), ()),)


def test_remove_without_principals_removes_all_of_the_resource() -> None:
    cmd = parse("--remove", "--topic", "news", "--force")
    assert cmd.force and cmd.resources == ((Resource("TOPIC", "news", "LITERAL"), ()),)


RESOURCE = Resource("TOPIC", "news", "LITERAL")
WRITE = Entry("User:alice", "*", "WRITE", "ALLOW")
READ = Entry("User:alice", "*", "READ", "ALLOW")


def test_kafkas_lines() -> None:
    pattern = "ResourcePattern(resourceType=TOPIC, name=news, patternType=LITERAL)"
    entry = "(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)"
    assert "\n".join(tool.adding_lines(RESOURCE, [READ, WRITE])) == (
        f"Adding ACLs for resource `{pattern}`: \n \t{str(READ)}\n\t{entry}\n"
    )
    assert "\n".join(tool.current_lines(RESOURCE, [WRITE])) == (
        f"Current ACLs for resource `{pattern}`:\n\t{entry}\n"
    )
    assert tool.already_exists_line(RESOURCE, WRITE) == (
        f"Acl (pattern={pattern}, entry={entry}) already exists."
    )
    assert tool.remove_question(RESOURCE, ()) == (
        f"Are you sure you want to delete all ACLs for resource filter `{pattern}`? (y/n)"
    )
    assert tool.remove_question(RESOURCE, (WRITE,)) == (
        f"Are you sure you want to remove ACLs: \n \t{entry}\n from resource filter "
        f"`{pattern}`? (y/n)"
    )


def test_api_acls_group_by_resource_in_order() -> None:
    def api(name: str, op: str) -> dict[str, Any]:
        return {
            "acl_id": "x",
            "resource_type": "TOPIC",
            "resource_name": name,
            "pattern_type": "LITERAL",
            "principal": "User:alice",
            "host": "*",
            "operation": op,
            "permission": "ALLOW",
        }

    grouped = tool.group_acls([api("news", "WRITE"), api("a", "READ"), api("news", "READ")])
    assert list(grouped) == [Resource("TOPIC", "a", "LITERAL"), RESOURCE]
    assert grouped[RESOURCE] == [READ, WRITE]


# -- --command-config in every tool --------------------------------------------------------------

SASL = (
    "security.protocol=SASL_PLAINTEXT\n"
    "sasl.mechanism=PLAIN\n"
    "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="alice" password="alice-secret";\n'
)

# (tool's parse_command, the smallest command line, its config flags)
TOOLS: list[tuple[Callable[[list[str]], Any], list[str], list[str]]] = [
    (topics.parse_command, [*BS, "--list"], ["--command-config"]),
    (
        console_producer.parse_command,
        [*BS, "--topic", "t"],
        ["--producer.config", "--command-config"],
    ),
    (
        console_consumer.parse_command,
        [*BS, "--topic", "t"],
        ["--consumer.config", "--command-config"],
    ),
    (
        producer_perf_test.parse_command,
        [*BS, "--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "-1"],
        ["--producer.config", "--command-config"],
    ),
    (
        consumer_perf_test.parse_command,
        [*BS, "--topic", "t", "--messages", "1"],
        ["--consumer.config", "--command-config"],
    ),
    (
        leader_election.parse_command,
        [*BS, "--election-type", "preferred", "--all-topic-partitions"],
        ["--admin.config", "--command-config"],
    ),
    (metadata_quorum.parse_command, [*BS, "describe", "--status"], ["--command-config"]),
    (tool.parse_command, [*BS, "--list"], ["--command-config"]),
]


@pytest.mark.parametrize(
    ("parse_command", "argv", "flag"),
    [(p, argv, flag) for p, argv, flags in TOOLS for flag in flags],
)
def test_every_tool_reads_its_client_config_file(
    parse_command: Callable[[list[str]], Any], argv: list[str], flag: str, tmp_path: Path
) -> None:
    config = tmp_path / "client.properties"
    config.write_text(SASL)
    cmd = parse_command([flag, str(config), *argv])
    assert cmd.security == ClientSecurity(
        protocol="SASL_PLAINTEXT", username="alice", password="alice-secret"
    )
    assert parse_command(argv).security is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("security.protocol=KERBEROS\n", "security.protocol must be one of"),
        ("security.protocol=SASL_PLAINTEXT\n", "needs sasl.jaas.config"),
        ("ssl.keystore.location=/x\n", "ssl.keystore.location is not supported"),
        (
            "security.protocol=SSL\nssl.truststore.location=/no/such/ca.pem\n",
            "ssl.truststore.location: cannot load /no/such/ca.pem",
        ),
    ],
)
def test_a_bad_client_config_file_is_one_line_and_exit_1(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "client.properties"
    config.write_text(text)
    assert topics.main(["--command-config", str(config), *BS, "--list"]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_a_missing_client_config_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.properties"
    assert tool.main([*BS, "--list", "--command-config", str(missing)]) == 1
    assert capsys.readouterr().err == f"cannot read {missing}: No such file or directory\n"


def test_a_producer_config_files_acks_is_used_and_the_command_line_wins(tmp_path: Path) -> None:
    config = tmp_path / "producer.properties"
    config.write_text("acks=1\nrequest.timeout.ms=5000\nclient.id=x\n")
    cmd = console_producer.parse_command([*BS, "--topic", "t", "--producer.config", str(config)])
    assert (cmd.acks, cmd.timeout_ms, cmd.security) == ("1", 5000, ClientSecurity())
    cmd = console_producer.parse_command(
        [*BS, "--topic", "t", "--producer.config", str(config), "--producer-property", "acks=0"]
    )
    assert cmd.acks == "0"
    perf = producer_perf_test.parse_command(
        [
            *BS,
            "--topic",
            "t",
            "--num-records",
            "1",
            "--record-size",
            "1",
            "--throughput",
            "-1",
            "--producer.config",
            str(config),
        ]
    )
    assert (perf.acks, perf.timeout_ms) == ("1", 5000)
