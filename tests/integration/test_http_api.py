"""The HTTP API of one real node, driven with curl as a user would, and its error contract."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any

import pytest

from scripts.node_process import NodeProcess, http, wait_until


def curl(*args: str, timeout: float = 30.0) -> tuple[int, Any]:
    """Runs curl; returns (HTTP status, parsed JSON body or text)."""
    out = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    body, _, status = out.stdout.rpartition("\n")
    try:
        return int(status), json.loads(body) if body.strip() else None
    except ValueError:
        return int(status), body


@pytest.fixture(scope="module")
def url(node: NodeProcess) -> str:
    return node.url


def create(url: str, name: str, **fields: Any) -> dict:
    status, body = curl(f"{url}/v1/topics", "-d", json.dumps({"name": name, **fields}))
    assert status == 201, body
    return body


def test_lab_with_curl_produce_then_read_from_the_beginning(url: str) -> None:
    create(url, "curl-news")
    for line in ("Good morning", "Good day", "Enjoy the Kafka lab"):
        status, body = curl(f"{url}/v1/topics/curl-news/records", "-d", json.dumps({"value": line}))
        assert status == 200, body
    status, body = curl(f"{url}/v1/topics/curl-news/partitions/0/records?offset=earliest")
    assert status == 200
    assert [r["value"] for r in body["records"]] == [
        "Good morning",
        "Good day",
        "Enjoy the Kafka lab",
    ]
    assert [r["offset"] for r in body["records"]] == [0, 1, 2]
    assert body["next_offset"] == 3 and body["high_watermark"] == 3


def test_a_topic_is_written_and_read_the_moment_its_creation_is_answered(url: str) -> None:
    # Creation answers on the metadata commit, and the replicas open just after: a produce or a
    # fetch sent in that moment waits for them, never 503 (many topics, so the moment is hit).
    for t in range(20):
        name = f"at-once-{t}"
        status, body = http("POST", f"{url}/v1/topics", {"name": name, "partitions": 3})
        assert status == 201, body
        for p in range(3):
            status, body = http(
                "POST", f"{url}/v1/topics/{name}/partitions/{p}/records", {"value": "first"}
            )
            assert status == 200, body
        status, body = http("GET", f"{url}/v1/topics/{name}/partitions/2/records?offset=earliest")
        assert status == 200, body
        assert [r["value"] for r in body["records"]] == ["first"]


def test_record_encodings_round_trip_in_every_format(url: str) -> None:
    create(url, "formats")
    records = [
        {"key": "k1", "value": {"temp_c": 21}, "headers": {"source": "station-1"}},
        {"key_b64": "gA==", "value_b64": "/w==", "headers": [["h", None], ["h", "x"]]},
        {"key": "k3", "value": None},
    ]
    status, body = curl(
        f"{url}/v1/topics/formats/partitions/0/records",
        "-H",
        "Content-Type: application/vnd.kafka.json.v2+json",
        "-d",
        json.dumps({"records": records}),
    )
    assert status == 200, body
    assert [o["offset"] for o in body["offsets"]] == [0, 1, 2]
    _, text = curl(f"{url}/v1/topics/formats/partitions/0/records?offset=0&format=text")
    first, second, third = text["records"]
    assert first["key"] == "k1" and first["value"] == '{"temp_c":21}'
    assert first["headers"] == [["source", "station-1"]]
    assert second["key_b64"] == "gA==" and second["value_b64"] == "/w=="
    assert second["headers"] == [["h", None], ["h", "x"]]
    assert third["value"] is None
    _, as_json = curl(f"{url}/v1/topics/formats/partitions/0/records?offset=0&format=json")
    assert as_json["records"][0]["value"] == {"temp_c": 21}
    _, binary = curl(f"{url}/v1/topics/formats/partitions/0/records?offset=0&format=binary")
    assert binary["records"][0]["key_b64"] == "azE="


def test_long_poll_answers_as_soon_as_a_record_arrives(url: str) -> None:
    create(url, "longpoll")
    result: dict[str, Any] = {}

    def poll() -> None:
        result["response"] = curl(
            f"{url}/v1/topics/longpoll/partitions/0/records?offset=0&timeout_ms=30000", timeout=60
        )

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)
    assert poller.is_alive(), "the long poll must wait for a record"
    curl(f"{url}/v1/topics/longpoll/records", "-d", '{"value":"wake up"}')
    poller.join(30)
    status, body = result["response"]
    assert status == 200 and [r["value"] for r in body["records"]] == ["wake up"]


def test_long_poll_with_nothing_new_returns_an_empty_list_at_the_timeout(url: str) -> None:
    create(url, "quiet")
    status, body = curl(f"{url}/v1/topics/quiet/partitions/0/records?offset=latest&timeout_ms=200")
    assert status == 200 and body["records"] == [] and body["next_offset"] == 0


def test_follow_streams_ndjson_and_sse(url: str) -> None:
    create(url, "stream")
    curl(f"{url}/v1/topics/stream/records", "-d", '{"records":[{"value":"one"},{"value":"two"}]}')
    out = subprocess.run(
        [
            "curl",
            "-sN",
            "--max-time",
            "2",
            f"{url}/v1/topics/stream/partitions/0/records?offset=earliest&follow=true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["value"] for line in lines[:2]] == ["one", "two"]
    sse = subprocess.run(
        [
            "curl",
            "-sN",
            "--max-time",
            "2",
            "-H",
            "Accept: text/event-stream",
            f"{url}/v1/topics/stream/partitions/0/records?offset=1&follow=true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert sse.stdout.startswith("id: 1\ndata: ")
    assert json.loads(sse.stdout.split("data: ", 1)[1].split("\n")[0])["value"] == "two"


def test_offsets_by_time_find_the_first_record_at_or_after(url: str) -> None:
    create(url, "timed")
    records = [{"value": f"r{i}", "timestamp": 1_700_000_000_000 + i * 1000} for i in range(5)]
    curl(f"{url}/v1/topics/timed/partitions/0/records", "-d", json.dumps({"records": records}))
    _, body = curl(f"{url}/v1/topics/timed/partitions/0/offsets?timestamp=1700000002500")
    assert body["offset"] == 3 and body["earliest"] == 0 and body["latest"] == 5
    _, after = curl(f"{url}/v1/topics/timed/partitions/0/offsets?timestamp=1800000000000")
    assert after["offset"] is None


def test_keyed_records_follow_kafkas_partitioner_and_keyless_ones_rotate(url: str) -> None:
    create(url, "users", partitions=3)
    status, body = curl(
        f"{url}/v1/topics/users/records",
        "-d",
        json.dumps(
            {"records": [{"key": "a-little-bit-long-string", "value": str(i)} for i in range(3)]}
        ),
    )
    assert status == 200
    assert {o["partition"] for o in body["offsets"]} == {2}  # Kafka's murmur2 vector
    seen = set()
    for _ in range(3):
        _, body = curl(f"{url}/v1/topics/users/records", "-d", '{"value":"x"}')
        seen.add(body["offsets"][0]["partition"])
    assert seen == {0, 1, 2}


def test_topic_admin_describe_configs_partitions_and_delete(node: NodeProcess, url: str) -> None:
    create(url, "admin", partitions=2, configs={"retention.ms": 60000})
    status, body = curl(f"{url}/v1/topics/admin")
    assert status == 200 and body["configs"] == {"retention.ms": "60000"}
    assert [p["leader"] for p in body["partitions"]] == [1, 1]
    status, body = curl(
        "-X",
        "PUT",
        f"{url}/v1/topics/admin/configs",
        "-d",
        '{"configs":{"segment.bytes":"1048576"}}',
    )
    assert status == 200 and body["configs"]["segment.bytes"] == "1048576"
    status, body = curl(f"{url}/v1/topics/admin/partitions", "-d", '{"count":4}')
    assert status == 200 and body["partition_count"] == 4
    # The new replica opens once the node has applied the change, a moment after the answer.
    wait_until("admin-3 opens", lambda: (node.log_dir / "admin-3").is_dir())
    _, listing = curl(f"{url}/v1/topics")
    assert {"name": "admin", "partition_count": 4, "replication_factor": 1} in listing["topics"]
    status, _ = curl("-X", "DELETE", f"{url}/v1/topics/admin")
    assert status == 204
    assert not any(p.name.startswith("admin-") for p in node.log_dir.iterdir())
    status, body = curl(f"{url}/v1/topics/admin")
    assert status == 404 and body["error_code"] == 40401


def test_cluster_health_and_quorum(url: str) -> None:
    status, cluster = curl(f"{url}/v1/cluster")
    assert status == 200 and cluster["controller_id"] == 1
    assert cluster["brokers"] == [
        {"id": 1, "url": url, "fenced": False, "alive": True, "rack": None}
    ]
    assert cluster["controllers"] == [{"id": 1, "url": url, "voter": True}]
    assert curl(f"{url}/v1/health/ready")[0] == 200
    status, quorum = curl(f"{url}/v1/cluster/quorum")
    assert status == 200 and quorum["leader_id"] == 1
    assert quorum["node"]["applied_index"] >= 1 and len(quorum["node"]["metadata_digest"]) == 64


# -- bad input: a clear error and status, and nothing stored ---------------------------------------


def high_watermark(url: str, topic: str, partition: int = 0) -> int:
    return http("GET", f"{url}/v1/topics/{topic}/partitions/{partition}/offsets")[1]["latest"]


@pytest.mark.parametrize(
    ("args", "status", "code"),
    [
        (["-d", "{not json"], 400, 40002),
        (["-d", '{"records":[]}'], 422, 42206),
        (["-d", '{"records":[{"value":"ok"},{"vaule":"typo"}]}'], 422, 42206),
        (["-d", '{"records":[{"value":"ok"},{"value":"x","partition":7}]}'], 404, 40402),
        (["-d", '{"records":[{"value":"ok"},{"value_b64":"!!"}]}'], 422, 42206),
        (["-H", "Content-Type: text/plain", "-d", '{"value":"x"}'], 415, 41501),
        (["-d", '{"records":[{"value":"ok"}]}', "--url-query", "acks=2"], 400, 40002),
        (["-d", '{"records":[{"value":"ok"}]}', "--url-query", "timeout_ms=-1"], 400, 40002),
    ],
)
def test_a_bad_produce_request_is_refused_whole_and_stores_nothing(
    url: str, args: list[str], status: int, code: int
) -> None:
    create(url, f"bad-{code}-{abs(hash(tuple(args))) % 10_000}")
    topic = f"bad-{code}-{abs(hash(tuple(args))) % 10_000}"
    got_status, body = curl(f"{url}/v1/topics/{topic}/records", *args)
    assert (got_status, body["error_code"]) == (status, code), body
    assert body["message"]
    assert high_watermark(url, topic) == 0


def test_record_over_max_message_bytes_is_refused_with_413(url: str) -> None:
    create(url, "small", configs={"max.message.bytes": 1000})
    status, body = curl(
        f"{url}/v1/topics/small/records",
        "-d",
        json.dumps({"records": [{"value": "ok"}, {"value": "x" * 2000}]}),
    )
    assert status == 413 and body["error"] == "RECORD_TOO_LARGE"
    assert high_watermark(url, "small") == 0


def test_body_over_the_request_limit_gets_a_json_413(url: str) -> None:
    create(url, "huge")
    payload = json.dumps({"value": "x" * (9 * 1024 * 1024)})
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            "--data-binary",
            "@-",
            f"{url}/v1/topics/huge/records",
        ],
        input=payload,
        capture_output=True,
        text=True,
        timeout=60,
    )
    body, _, status = out.stdout.rpartition("\n")
    assert status == "413" and json.loads(body)["error_code"] == 41301
    assert high_watermark(url, "huge") == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        # A produce to a missing topic creates it (auto.create.topics.enable), unless its
        # name is illegal.
        ("POST", "/v1/topics/nope%21/records", {"value": "x"}, 400, 40002),
        ("GET", "/v1/topics/nope/partitions/0/records", None, 404, 40401),
        ("POST", "/v1/topics", {"name": "bad name!"}, 400, 40002),
        ("POST", "/v1/topics", {"name": "x" * 250}, 400, 40002),
        ("POST", "/v1/topics", {"name": ".."}, 400, 40002),
        ("POST", "/v1/topics", {"name": "rf2", "replication_factor": 2}, 400, 40003),
        ("POST", "/v1/topics", {"name": "p0", "partitions": 0}, 400, 40004),
        ("POST", "/v1/topics", {"name": "cfg", "configs": {"retention.ms": "soon"}}, 400, 40005),
        ("GET", "/v1/no/such/path", None, 404, 40400),
        ("PATCH", "/v1/topics", {}, 405, 40500),
    ],
)
def test_bad_requests_get_json_errors(
    url: str, method: str, path: str, body: Any, status: int, code: int
) -> None:
    got_status, got = http(method, url + path, body)
    assert (got_status, got["error_code"]) == (status, code), got
    assert got["message"]


def test_rf2_on_one_node_creates_nothing(url: str) -> None:
    http("POST", f"{url}/v1/topics", {"name": "lab-rf2", "replication_factor": 2})
    assert http("GET", f"{url}/v1/topics/lab-rf2")[0] == 404


def test_existing_topic_is_409(url: str) -> None:
    create(url, "twice")
    status, body = http("POST", f"{url}/v1/topics", {"name": "twice"})
    assert (status, body["error_code"]) == (409, 40901)


def test_fetch_out_of_range_offset_is_416_with_the_range(url: str) -> None:
    create(url, "range")
    http("POST", f"{url}/v1/topics/range/records", {"value": "x"})
    status, body = http("GET", f"{url}/v1/topics/range/partitions/0/records?offset=5")
    assert (status, body["error_code"]) == (416, 41601)
    assert body["log_start_offset"] == 0 and body["high_watermark"] == 1
    status, body = http("GET", f"{url}/v1/topics/range/partitions/3/records")
    assert (status, body["error_code"]) == (404, 40402)
    status, body = http("GET", f"{url}/v1/topics/range/partitions/0/records?max_records=x")
    assert (status, body["error_code"]) == (400, 40002)


def test_a_preferred_election_answers_each_partitions_outcome_and_refuses_unclean(
    url: str,
) -> None:
    create(url, "elect", partitions=2)
    status, body = curl(
        f"{url}/v1/elections",
        "-d",
        json.dumps(
            {"election_type": "PREFERRED", "partitions": [{"topic": "elect", "partition": 1}]}
        ),
    )
    assert status == 200, body
    (one,) = body["partitions"]
    assert (one["topic"], one["partition"], one["outcome"], one["error"]) == (
        "elect",
        1,
        "already_preferred",
        "ELECTION_NOT_NEEDED",
    )
    status, body = curl(f"{url}/v1/elections", "-d", '{"election_type": "preferred"}')
    assert status == 200 and {"elect"} <= {p["topic"] for p in body["partitions"]}, body
    for request, expected in [
        ({"election_type": "UNCLEAN"}, (400, "INVALID_REQUEST", "UNCLEAN is not supported")),
        ({"election_type": "FAIR"}, (400, "INVALID_REQUEST", "PREFERRED")),
        ({}, (400, "INVALID_REQUEST", "election_type")),
        (
            {"election_type": "PREFERRED", "partitions": [{"topic": "elect", "partition": 9}]},
            (404, "UNKNOWN_TOPIC_OR_PARTITION", "Partition 9 of topic 'elect'"),
        ),
        (
            {"election_type": "PREFERRED", "partitions": [{"topic": "nope", "partition": 0}]},
            (404, "UNKNOWN_TOPIC_OR_PARTITION", "Topic 'nope' does not exist."),
        ),
        (
            {"election_type": "PREFERRED", "partitions": [{"topic": "elect"}]},
            (400, "INVALID_REQUEST", "partitions"),
        ),
    ]:
        status, body = curl(f"{url}/v1/elections", "-d", json.dumps(request))
        assert (status, body["error"]) == expected[:2], body
        assert expected[2] in body["message"], body
