"""scripts/kafka_tool.py: Kafka's bin/ names to the classes they run, and the command line
built for them as kafka-run-class.sh builds it (the compat tier runs the tools themselves)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts import kafka_tool as kt
from scripts.bench import kafka_dist
from scripts.bench.kafka_side import JVM_PERFORMANCE_OPTS, TOOLS_LOG4J

LOG4J = Path("/cache/tools-log4j2.properties")
CLASSPATH = "/cache/libs/*"


def test_the_lab_s_tools_run_the_classes_kafka_s_scripts_run() -> None:
    assert {name: kt.TOOLS[name].main for name in kt.TOOLS} == {
        "kafka-topics": "org.apache.kafka.tools.TopicCommand",
        "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
        "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "kafka-groups": "org.apache.kafka.tools.GroupsCommand",
        "kafka-configs": "org.apache.kafka.tools.ConfigCommand",
        "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
        "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
        "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
        "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
        "kafka-cluster": "org.apache.kafka.tools.ClusterTool",
        "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
        "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
        "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
        "kafka-metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
        "kafka-acls": "org.apache.kafka.tools.AclCommand",
        "kafka-dump-log": "org.apache.kafka.tools.DumpLogSegments",
    }


def test_the_scripts_that_set_their_own_heap_get_512m_the_others_kafka_run_class_s_256m() -> None:
    big = {n for n, t in kt.TOOLS.items() if t.heap == ("-Xmx512M",)}
    assert big == {
        "kafka-console-producer",
        "kafka-console-consumer",
        "kafka-producer-perf-test",
        "kafka-consumer-perf-test",
    }
    assert {t.heap for n, t in kt.TOOLS.items() if n not in big} == {("-Xmx256M",)}


def test_a_name_is_kafka_s_script_name_with_or_without_sh() -> None:
    assert kt.tool_of("kafka-topics.sh") is kt.TOOLS["kafka-topics"]
    assert kt.tool_of("kafka-topics") is kt.TOOLS["kafka-topics"]


def test_an_unknown_name_is_refused_with_every_tool_offered() -> None:
    with pytest.raises(kt.Refused) as refused:
        kt.tool_of("kafka-topic")
    message = str(refused.value)
    assert message.startswith("unknown tool 'kafka-topic'\n")
    for name, tool in kt.TOOLS.items():
        assert f"  {name} " in message and tool.main in message


def test_a_tool_whose_api_we_do_not_serve_is_refused_naming_the_api() -> None:
    with pytest.raises(kt.Refused, match=r"kafka-delete-records is not offered: .*DeleteRecords"):
        kt.tool_of("kafka-delete-records.sh")
    assert not set(kt.NOT_SERVED) & set(kt.TOOLS)


def test_arguments_pass_untouched_spaces_and_all() -> None:
    args = ["--bootstrap-server", "h:1", "--property", "key.separator=, ", "--topic", "a b"]
    assert kt.tool_args("kafka-console-consumer", args) == (args, [])
    # Only the console producer's --broker-list is translated: other tools get it as given.
    assert kt.tool_args("kafka-topics", ["--broker-list", "h:1"]) == (["--broker-list", "h:1"], [])


def test_the_console_producer_s_broker_list_becomes_bootstrap_server_with_a_note() -> None:
    args, notes = kt.tool_args(
        "kafka-console-producer.sh", ["--broker-list", "h:1", "--topic", "t", "--broker-list=h:2"]
    )
    assert args == ["--bootstrap-server", "h:1", "--topic", "t", "--bootstrap-server=h:2"]
    assert len(notes) == 1 and "passed as --bootstrap-server" in notes[0]
    assert kt.tool_args("kafka-console-producer", ["--topic", "--broker-list-x"]) == (
        ["--topic", "--broker-list-x"],
        [],
    )


def test_the_command_is_kafka_run_class_s() -> None:
    tool = kt.TOOLS["kafka-console-consumer"]
    assert kt.command(tool, ["--topic", "t"], CLASSPATH, LOG4J, {}) == [
        "java",
        "-Xmx512M",
        *JVM_PERFORMANCE_OPTS,
        f"-Dlog4j2.configurationFile={LOG4J}",
        "-cp",
        CLASSPATH,
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--topic",
        "t",
    ]


def test_kafka_s_environment_variables_replace_and_add_jvm_options() -> None:
    env = {
        "JAVA_HOME": "/opt/jdk",
        "KAFKA_HEAP_OPTS": "-Xmx1G -Xms1G",
        "KAFKA_LOG4J_OPTS": "-Dlog4j2.configurationFile=/my/log4j2.yaml",
        "KAFKA_OPTS": "-Dx=1 -Dy=2",
    }
    assert kt.command(kt.TOOLS["kafka-topics"], ["--list"], CLASSPATH, LOG4J, env) == [
        "/opt/jdk/bin/java",
        "-Xmx1G",
        "-Xms1G",
        *JVM_PERFORMANCE_OPTS,
        "-Dlog4j2.configurationFile=/my/log4j2.yaml",
        "-cp",
        CLASSPATH,
        "-Dx=1",
        "-Dy=2",
        "org.apache.kafka.tools.TopicCommand",
        "--list",
    ]


def test_the_log4j_config_is_kafka_s_tools_config_rewritten_only_when_different(
    tmp_path: Path,
) -> None:
    path = kt.write_log4j(tmp_path)
    assert path == tmp_path / kt.LOG4J_FILE and path.read_text() == TOOLS_LOG4J
    assert "rootLogger.level = warn" in TOOLS_LOG4J and "SYSTEM_ERR" in TOOLS_LOG4J
    mtime = path.stat().st_mtime_ns
    kt.write_log4j(tmp_path)
    assert path.stat().st_mtime_ns == mtime
    path.write_text("rootLogger.level = debug\n")
    kt.write_log4j(tmp_path)
    assert path.read_text() == TOOLS_LOG4J
    assert sorted(p.name for p in tmp_path.iterdir()) == [kt.LOG4J_FILE]


def test_main_execs_java_with_the_tool_and_its_arguments(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "kafka-4.4.0"
    (cache / "libs").mkdir(parents=True)
    (cache / kafka_dist.COMPLETE).write_text("kafka 4.4.0\n")
    monkeypatch.setattr(kafka_dist, "default_cache", lambda: cache)
    for name in ("JAVA_HOME", "KAFKA_HEAP_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS"):
        monkeypatch.delenv(name, raising=False)
    execs: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execvp", lambda file, argv: execs.append((file, list(argv))))
    kt.main(["kafka-console-producer", "--broker-list", "h:1", "--topic", "t"])
    [(file, argv)] = execs
    assert file == "java"
    assert argv[argv.index("-cp") + 1] == f"{cache}/libs/*"
    assert argv[-5:] == [
        "org.apache.kafka.tools.ConsoleProducer",
        "--bootstrap-server",
        "h:1",
        "--topic",
        "t",
    ]
    assert f"-Dlog4j2.configurationFile={cache / kt.LOG4J_FILE}" in argv
    assert (cache / kt.LOG4J_FILE).read_text() == TOOLS_LOG4J
    assert "passed as --bootstrap-server" in capsys.readouterr().err


def test_main_refuses_a_name_with_exit_2_and_lists_with_exit_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert kt.main(["kafka-delete-records", "--list"]) == 2
    assert "DeleteRecords" in capsys.readouterr().err
    assert kt.main([]) == 2
    assert kt.main(["--list"]) == 0
    assert "kafka-topics" in capsys.readouterr().out
