"""The wire contract (client/protocol.py): Kafka's murmur2, error JSON, the JSON record codec."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from client import protocol
from client.protocol import (
    ERROR_KINDS,
    INVALID_RECORD,
    NOT_LEADER_OR_FOLLOWER,
    UNKNOWN_TOPIC,
    ApiError,
    ErrorKind,
    format_record,
    murmur2,
    parse_produce_record,
    partition_for_key,
    produce_records_from_body,
    record_bytes,
)

DATA = Path(__file__).resolve().parents[1] / "data"
MURMUR2 = json.loads((DATA / "murmur2.json").read_text())["vectors"]

# ---------------------------------------------------------------------------------------------
# murmur2
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", MURMUR2, ids=lambda v: repr(v["key"]))
def test_murmur2_matches_kafka_utils_murmur2(vector: dict[str, Any]) -> None:
    assert murmur2(vector["key"].encode("utf-8")) == vector["murmur2"]


@pytest.mark.parametrize("vector", MURMUR2, ids=lambda v: repr(v["key"]))
def test_keyed_partition_is_kafkas_positive_murmur2_modulo(vector: dict[str, Any]) -> None:
    key = vector["key"].encode("utf-8")
    assert partition_for_key(key, 3) == vector["partition_of_3"]
    assert partition_for_key(key, 12) == vector["partition_of_12"]


def test_murmur2_is_a_signed_32_bit_int_for_every_tail_length() -> None:
    for length in range(0, 9):
        value = murmur2(bytes(range(200, 200 + length)))
        assert -(2**31) <= value < 2**31


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_every_error_code_starts_with_its_http_status() -> None:
    for code, kind in ERROR_KINDS.items():
        assert code == kind.code
        assert 100 <= kind.status <= 599
        assert str(code).startswith(str(kind.status))


def test_error_kinds_include_every_kind_declared_in_the_module() -> None:
    declared = [v for v in vars(protocol).values() if isinstance(v, ErrorKind)]
    assert len({k.code for k in declared}) == len(declared), "two kinds share a code"
    assert set(ERROR_KINDS.values()) == set(declared)


@pytest.mark.parametrize("kind", list(ERROR_KINDS.values()), ids=lambda k: str(k.code))
def test_error_json_round_trip_keeps_kind_message_and_extra(kind: ErrorKind) -> None:
    error = ApiError(kind, "something went wrong", {"leader_id": 2})
    back = ApiError.from_json(json.loads(json.dumps(error.to_json())), kind.status)
    assert back.kind == kind
    assert back.message == "something went wrong"
    assert back.extra == {"leader_id": 2}
    assert back.retriable == kind.retriable


def test_error_json_has_confluent_code_kafka_name_and_message() -> None:
    body = ApiError(UNKNOWN_TOPIC, "Topic 'news' does not exist").to_json()
    assert body == {
        "error_code": 40401,
        "error": "UNKNOWN_TOPIC_OR_PARTITION",
        "message": "Topic 'news' does not exist",
    }


def test_not_leader_error_carries_its_redirect_fields() -> None:
    body = {
        "error_code": 30701,
        "error": "NOT_LEADER_OR_FOLLOWER",
        "leader_id": 2,
        "leader_epoch": 7,
        "leader_url": "http://127.0.0.1:9094",
    }
    error = ApiError.from_json(body, 307)
    assert error.kind == NOT_LEADER_OR_FOLLOWER
    assert error.extra["leader_url"] == "http://127.0.0.1:9094"
    assert error.message == ""


def test_unknown_error_code_keeps_its_number_and_name() -> None:
    error = ApiError.from_json({"error_code": 42299, "error": "SOMETHING_NEW", "message": "m"})
    assert (error.code, error.name, error.status) == (42299, "SOMETHING_NEW", 422)


def test_known_code_with_another_name_keeps_the_name_sent() -> None:
    error = ApiError.from_json({"error_code": 40401, "error": "OTHER_NAME"})
    assert (error.code, error.name) == (40401, "OTHER_NAME")


def test_error_without_a_code_takes_it_from_the_http_status() -> None:
    error = ApiError.from_json({"message": "oops"}, 503)
    assert error.code == 50300
    assert error.status == 503


def test_api_error_is_an_exception_naming_kind_and_code() -> None:
    error = ApiError(UNKNOWN_TOPIC, "no such topic")
    with pytest.raises(ApiError) as info:
        raise error
    assert "UNKNOWN_TOPIC_OR_PARTITION (40401): no such topic" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Records in JSON: produce side
# ---------------------------------------------------------------------------------------------


def test_string_key_and_value_are_stored_as_their_utf8_bytes() -> None:
    record = parse_produce_record({"key": "user1", "value": "héllo"})
    assert record.key == b"user1"
    assert record.value == "héllo".encode()


def test_non_string_json_value_is_stored_as_compact_json_text() -> None:
    record = parse_produce_record({"value": {"temp": 21.5, "city": "Oslo"}})
    assert record.value == b'{"temp":21.5,"city":"Oslo"}'
    assert parse_produce_record({"value": 42}).value == b"42"
    assert parse_produce_record({"value": [1, True]}).value == b"[1,true]"


def test_null_and_missing_value_are_a_tombstone_and_missing_key_is_null() -> None:
    assert parse_produce_record({"value": None}).value is None
    assert parse_produce_record({}).value is None
    assert parse_produce_record({"value": "x"}).key is None


def test_b64_fields_carry_raw_bytes() -> None:
    raw = bytes(range(256))
    record = parse_produce_record(
        {"key_b64": base64.b64encode(b"\xff").decode(), "value_b64": base64.b64encode(raw).decode()}
    )
    assert record.key == b"\xff"
    assert record.value == raw


@pytest.mark.parametrize(
    "obj, fragment",
    [
        ({"value": "a", "value_b64": "YQ=="}, "not both"),
        ({"value_b64": "***"}, "not valid base64"),
        ({"value_b64": 5}, "base64 string"),
        ({"vaule": "typo"}, "unknown field(s) vaule"),
        ({"value": "a", "partition": -1}, "non-negative"),
        ({"value": "a", "partition": True}, "non-negative"),
        ({"value": "a", "timestamp": "now"}, "non-negative"),
        ({"value": "a", "headers": "h"}, "headers must be"),
        ({"value": "a", "headers": [["h"]]}, "[name, value]"),
        ({"value": "a", "headers": {"h": 1}}, "string or null"),
        ("just a string", "must be a JSON object"),
    ],
)
def test_malformed_record_is_refused_with_invalid_record_naming_the_problem(
    obj: Any, fragment: str
) -> None:
    with pytest.raises(ApiError) as info:
        parse_produce_record(obj, 3)
    assert info.value.kind == INVALID_RECORD
    assert fragment in info.value.message
    assert "record 3" in info.value.message


def test_headers_accept_an_object_or_pairs_with_repeated_names_and_nulls() -> None:
    assert parse_produce_record({"headers": {"a": "1", "b": None}}).headers == (
        ("a", b"1"),
        ("b", None),
    )
    assert parse_produce_record({"headers": [["a", "1"], ["a", "2"]]}).headers == (
        ("a", b"1"),
        ("a", b"2"),
    )


def test_partition_and_timestamp_are_optional_integers() -> None:
    record = parse_produce_record({"value": "v", "partition": 2, "timestamp": 1700000000000})
    assert (record.partition, record.timestamp) == (2, 1700000000000)


def test_produce_body_may_be_a_records_list_one_record_or_a_bare_list() -> None:
    assert produce_records_from_body({"records": [{"value": "a"}]}) == [{"value": "a"}]
    assert produce_records_from_body({"value": "a"}) == [{"value": "a"}]
    assert produce_records_from_body([{"value": "a"}]) == [{"value": "a"}]


@pytest.mark.parametrize("body", [{"records": []}, [], {"records": "x"}, "text", 5])
def test_empty_or_malformed_produce_body_is_refused(body: Any) -> None:
    with pytest.raises(ApiError) as info:
        produce_records_from_body(body)
    assert info.value.status in (400, 422)


# ---------------------------------------------------------------------------------------------
# Records in JSON: fetch side
# ---------------------------------------------------------------------------------------------


def _fetched(value: bytes | None, fmt: str, key: bytes | None = b"k") -> dict[str, Any]:
    return format_record(
        offset=7,
        timestamp=1700000000000,
        key=key,
        value=value,
        headers=[("h", b"v"), ("n", None)],
        partition=1,
        fmt=fmt,
    )


def test_text_format_returns_strings_and_header_pairs() -> None:
    out = _fetched(b"hello", "text")
    assert out == {
        "offset": 7,
        "timestamp": 1700000000000,
        "partition": 1,
        "key": "k",
        "value": "hello",
        "headers": [["h", "v"], ["n", None]],
    }


def test_text_format_switches_to_b64_for_bytes_that_are_not_utf8() -> None:
    out = _fetched(b"\xff\xfe", "text")
    assert "value" not in out
    assert base64.b64decode(out["value_b64"]) == b"\xff\xfe"
    assert out["key"] == "k"


def test_json_format_parses_stored_json_and_keeps_other_text_as_string() -> None:
    assert _fetched(b'{"a":1}', "json")["value"] == {"a": 1}
    assert _fetched(b"not json", "json")["value"] == "not json"


def test_binary_format_is_always_base64() -> None:
    out = _fetched(b"hello", "binary")
    assert out["value_b64"] == base64.b64encode(b"hello").decode()
    assert out["key_b64"] == base64.b64encode(b"k").decode()


def test_null_key_and_value_come_back_as_null() -> None:
    out = _fetched(None, "text", key=None)
    assert out["key"] is None and out["value"] is None


@pytest.mark.parametrize("fmt", protocol.FORMATS)
@pytest.mark.parametrize("value", [b"hello", b"\xff\x00", b'{"a":1}', b"", None])
def test_record_bytes_recovers_the_stored_bytes_in_text_and_binary(
    fmt: str, value: bytes | None
) -> None:
    out = _fetched(value, fmt)
    if fmt == "json" and value == b'{"a":1}':
        # The json format re-serialises parsed JSON: the same JSON, compact.
        assert record_bytes(out, "value") == b'{"a":1}'
    else:
        assert record_bytes(out, "value") == value
    assert record_bytes(out, "key") == b"k"
