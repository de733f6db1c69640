"""The pure part of GET /v1/brokers/{broker}/log-dirs: what one directory's entry says, as
Kafka's ReplicaManager.describeLogDirs would."""

from __future__ import annotations

from server.http_log_dirs import ReplicaSize, log_dir_answer, offset_lag, parse_topics

DIR = "/data/node-1/kraft-combined-logs"
DISK = (1000, 400)


def test_replicas_are_listed_by_topic_and_partition_with_their_size() -> None:
    replicas = [
        ReplicaSize("weather", 1, 300, 12, 12),
        ReplicaSize("news", 0, 121, 3, 3),
        ReplicaSize("weather", 0, 0, 0, 0),
    ]
    assert log_dir_answer(DIR, replicas, {}, None, DISK) == {
        "log_dir": DIR,
        "error": None,
        "total_bytes": 1000,
        "usable_bytes": 400,
        "partitions": [
            {"topic": "news", "partition": 0, "size": 121, "offset_lag": 0, "is_future": False},
            {"topic": "weather", "partition": 0, "size": 0, "offset_lag": 0, "is_future": False},
            {"topic": "weather", "partition": 1, "size": 300, "offset_lag": 0, "is_future": False},
        ],
    }


def test_a_topic_filter_keeps_only_its_topics() -> None:
    replicas = [ReplicaSize("news", 0, 1, 0, 0), ReplicaSize("weather", 0, 2, 0, 0)]
    answer = log_dir_answer(DIR, replicas, {}, frozenset({"weather", "absent"}), DISK)
    assert [p["topic"] for p in answer["partitions"]] == ["weather"]


def test_the_offset_lag_of_a_current_replica_is_never_negative() -> None:
    # Kafka: max(highWatermark - logEndOffset, 0); a follower's HW never passes its LEO, a
    # leader's lags it while followers catch up: both give 0.
    assert offset_lag(ReplicaSize("t", 0, 0, log_end_offset=10, high_watermark=7)) == 0
    assert offset_lag(ReplicaSize("t", 0, 0, log_end_offset=10, high_watermark=10)) == 0
    assert offset_lag(ReplicaSize("t", 0, 0, log_end_offset=5, high_watermark=8)) == 3


def test_an_offline_replica_reports_the_directorys_error_in_place_of_its_partitions() -> None:
    replicas = [
        ReplicaSize("news", 0, 121, 3, 3),
        ReplicaSize("news", 1, 0, 7, 7, offline="corrupt batch (file x.log, position 9)"),
    ]
    answer = log_dir_answer(DIR, replicas, {("weather", 2): "cannot open"}, None, DISK)
    assert answer == {
        "log_dir": DIR,
        "error": {
            "error_code": 50001,
            "error": "KAFKA_STORAGE_ERROR",
            "message": f"Log directory {DIR} is offline: replicas news-1, weather-2 cannot be "
            "read or written",
        },
        "partitions": [],
    }


def test_many_offline_replicas_are_counted_past_the_first_ten() -> None:
    failed = {("t", i): "cannot open" for i in range(12)}
    message = log_dir_answer(DIR, [], failed, None, DISK)["error"]["message"]
    assert message.endswith("t-8, t-9 and 2 more cannot be read or written")


def test_a_file_system_that_cannot_be_read_is_the_directorys_error() -> None:
    answer = log_dir_answer(DIR, [ReplicaSize("news", 0, 1, 0, 0)], {}, None, None)
    assert answer["error"]["error"] == "KAFKA_STORAGE_ERROR"
    assert answer["partitions"] == []


def test_the_topics_parameter_is_a_comma_separated_list() -> None:
    assert parse_topics(None) is None
    assert parse_topics("") is None
    assert parse_topics(",,") is None
    assert parse_topics("a,,b") == frozenset({"a", "b"})
