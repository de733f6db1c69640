"""A compacted topic's configs and produce rules on a real node: kraft-topics creates it,
kraft-configs switches its cleanup policy both ways (Kafka's bracket syntax for a list), a
record without a key is refused in Kafka's words by the JSON and the binary produce alike and
nothing of the request is stored, and ``__consumer_offsets`` is made compacted."""

from __future__ import annotations

import http.client as http_client
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from client.protocol import BATCH_MEDIA_TYPE
from scripts.node_process import NodeProcess, run_tool, wait_until
from storage.batch import NewRecord, build_batch

TOPIC = "tables"
NOW_MS = 1_700_000_000_000
KEYLESS = f"Compacted topic cannot accept message without key in topic partition {TOPIC}-0."


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    handle = NodeProcess(
        tmp_path_factory.mktemp("compaction-configs"),
        extra_properties={
            "offsets.topic.num.partitions": "2",
            "offsets.topic.segment.bytes": "1048576",
        },
    )
    handle.format()
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def tool(module: str, node: NodeProcess, *args: str) -> tuple[int, str, str]:
    out = run_tool(f"client.tools.{module}", "--bootstrap-server", node.bootstrap, *args)
    return out.returncode, out.stdout, out.stderr


def call(node: NodeProcess, method: str, path: str, body: bytes, content_type: str) -> Any:
    """(status, JSON answer) of one request with a body of any type."""
    parts = urlsplit(node.url)
    connection = http_client.HTTPConnection(parts.netloc, timeout=60)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, orjson.loads(response.read())
    finally:
        connection.close()


def produce_json(node: NodeProcess, path: str, records: list[dict[str, Any]]) -> Any:
    return call(node, "POST", path, orjson.dumps({"records": records}), "application/json")


def produce_batch(node: NodeProcess, keys: list[bytes | None]) -> Any:
    data = build_batch([NewRecord(k, b"v", NOW_MS) for k in keys])
    return call(node, "POST", f"/v1/topics/{TOPIC}/partitions/0/records", data, BATCH_MEDIA_TYPE)


def end_offset(node: NodeProcess) -> int:
    status, body = node.http("GET", f"/v1/topics/{TOPIC}")
    assert status == 200, body
    return int(body["partitions"][0]["high_watermark"])


def dynamic_configs(node: NodeProcess) -> list[str]:
    code, out, err = tool(
        "configs", node, "--entity-type", "topics", "--entity-name", TOPIC, "--describe"
    )
    assert code == 0, err
    return out.splitlines()


def test_a_compacted_topic_is_created_and_refuses_keyless_records(node: NodeProcess) -> None:
    code, out, err = tool(
        "topics",
        node,
        "--create",
        "--topic",
        TOPIC,
        "--partitions",
        "1",
        "--config",
        "cleanup.policy=compact",
    )
    assert (code, out, err) == (0, f"Created topic {TOPIC}.\n", "")
    wait_until(
        "the topic's leader",
        lambda: (
            produce_json(
                node, f"/v1/topics/{TOPIC}/partitions/0/records", [{"key": "k0", "value": "v"}]
            )[0]
            == 200
        ),
    )
    written = end_offset(node)

    # The binary produce: one keyless record in the middle of keyed ones refuses the batch.
    status, answer = produce_batch(node, [b"a", None, b"c"])
    assert (status, answer["error"], answer["message"]) == (422, "INVALID_RECORD", KEYLESS)
    assert end_offset(node) == written, "a refused request stores nothing"

    # Keyed records, tombstones and empty keys are taken.
    status, answer = produce_batch(node, [b"a", b"", b"c"])
    assert status == 200, answer
    status, answer = produce_json(
        node, f"/v1/topics/{TOPIC}/records", [{"key": "a", "value": None}, {"key": "b"}]
    )
    assert status == 200, answer
    assert end_offset(node) == written + 5


def test_a_json_produce_of_a_keyless_record_is_refused_whole(node: NodeProcess) -> None:
    written = end_offset(node)
    # To the partition and to the topic (routed by key): the keyed record is not stored either.
    for path in (f"/v1/topics/{TOPIC}/partitions/0/records", f"/v1/topics/{TOPIC}/records"):
        status, answer = produce_json(node, path, [{"key": "a", "value": "1"}, {"value": "no key"}])
        assert (status, answer["error"], answer["message"]) == (422, "INVALID_RECORD", KEYLESS)
    assert end_offset(node) == written, "a refused request stores nothing"


def test_the_policy_switches_both_ways_with_kraft_configs(node: NodeProcess) -> None:
    assert dynamic_configs(node) == [
        f"Dynamic configs for topic {TOPIC} are:",
        "  cleanup.policy=compact sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy="
        "compact, DEFAULT_CONFIG:log.cleanup.policy=delete}",
    ]
    code, out, err = tool(
        "configs",
        node,
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        TOPIC,
        "--add-config",
        "cleanup.policy=[delete,compact],min.cleanable.dirty.ratio=0.1",
    )
    assert (code, out, err) == (0, f"Completed updating config for topic {TOPIC}.\n", "")
    assert dynamic_configs(node)[1:] == [
        "  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:"
        "cleanup.policy=compact,delete, DEFAULT_CONFIG:log.cleanup.policy=delete}",
        "  min.cleanable.dirty.ratio=0.1 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:"
        "min.cleanable.dirty.ratio=0.1, DEFAULT_CONFIG:log.cleaner.min.cleanable.ratio=0.5}",
    ]
    # Still compacted: still no keyless records.
    status, answer = produce_batch(node, [None])
    assert (status, answer["message"]) == (422, KEYLESS)

    code, out, err = tool(
        "configs",
        node,
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        TOPIC,
        "--delete-config",
        "cleanup.policy,min.cleanable.dirty.ratio",
    )
    assert code == 0, err
    assert dynamic_configs(node) == [f"Dynamic configs for topic {TOPIC} are:"]
    code, out, err = tool("configs", node, "--topic", TOPIC, "--describe", "--all")
    assert (
        "  cleanup.policy=delete sensitive=false synonyms={DEFAULT_CONFIG:log.cleanup.policy="
        "delete}" in out.splitlines()
    )
    assert (
        "  max.compaction.lag.ms=9223372036854775807 sensitive=false synonyms={DEFAULT_CONFIG:"
        "log.cleaner.max.compaction.lag.ms=9223372036854775807}" in out.splitlines()
    )

    # Deleted by age again: a keyless record is fine (once the replica has the new config).
    written = end_offset(node)
    wait_until("the keyless batch taken", lambda: produce_batch(node, [None])[0] == 200)
    assert end_offset(node) == written + 1

    code, out, err = tool(
        "configs", node, "--topic", TOPIC, "--alter", "--add-config", "cleanup.policy=compact"
    )
    assert code == 0, err
    wait_until("keyless refused again", lambda: produce_batch(node, [None])[0] == 422)


def test_compaction_lags_are_cross_checked_in_kafkas_words(node: NodeProcess) -> None:
    code, out, err = tool(
        "configs",
        node,
        "--topic",
        TOPIC,
        "--alter",
        "--add-config",
        "min.compaction.lag.ms=5000,max.compaction.lag.ms=4000",
    )
    assert code == 1
    assert err.splitlines()[1] == (
        "conflict topic config setting min.compaction.lag.ms (5000) > max.compaction.lag.ms (4000)"
    )


def test_kraft_topics_alter_refuses_config_as_kafka_does(node: NodeProcess) -> None:
    code, out, err = tool(
        "topics", node, "--alter", "--topic", TOPIC, "--config", "cleanup.policy=delete"
    )
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == (
        'Option combination "[[bootstrap-server], [config]]" can\'t be used with option '
        '"[alter]" (To alter topic configurations, the kraft-configs tool can be used.)'
    )


def test_the_offsets_topic_is_created_compacted(node: NodeProcess) -> None:
    commit = orjson.dumps([{"topic": TOPIC, "partition": 0, "offset": 1}])
    wait_until(
        "an offset commit",
        lambda: call(node, "POST", "/v1/groups/g/offsets", commit, "application/json")[0] == 200,
    )
    status, body = node.http("GET", "/v1/topics/__consumer_offsets/configs")
    assert status == 200, body
    assert body["overrides"] == {
        "cleanup.policy": "compact",
        "retention.ms": "-1",
        "segment.bytes": "1048576",
    }


def test_the_console_producer_shows_the_servers_message(node: NodeProcess) -> None:
    out = run_tool(
        "client.tools.console_producer",
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        TOPIC,
        input="no key\n",
    )
    assert out.stderr.splitlines() == [
        f"Error when sending message to topic {TOPIC} with key: null, value: 6 bytes with "
        f"error: {KEYLESS}"
    ]
