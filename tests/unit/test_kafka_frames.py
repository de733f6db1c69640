"""Kafka's frames and request headers (server/kafka/frames.py) and the dispatch rules of
server/kafka/apis.py that need no node: ApiVersions and its fallback, what closes a
connection."""

from __future__ import annotations

import asyncio
import io
import struct
from typing import Any, cast

import pytest
from kio.index import load_response_schema
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest
from kio.serial import entity_reader, entity_writer

from server.kafka import frames
from server.kafka.apis import ApiTable, api_table, dispatch, error_counts
from server.kafka.frames import FrameError, NotServedError
from server.node import Node


def _header(api_key: int, version: int, client_id: str | None, tags: bytes = b"\x00") -> bytes:
    """A request header v2 written by hand: fixed part, client id (int16 length), tags."""
    client = (
        b"\xff\xff" if client_id is None else struct.pack(">h", len(client_id)) + client_id.encode()
    )
    return struct.pack(">hhi", api_key, version, 42) + client + tags


def test_a_frame_size_below_a_header_or_above_the_limit_is_refused_before_the_body() -> None:
    assert frames.frame_size(struct.pack(">i", 8), 100) == 8
    assert frames.frame_size(struct.pack(">i", 100), 100) == 100
    with pytest.raises(FrameError, match="cannot hold a request header"):
        frames.frame_size(struct.pack(">i", 7), 100)
    with pytest.raises(FrameError, match="cannot hold"):
        frames.frame_size(struct.pack(">i", -1), 100)
    with pytest.raises(FrameError, match="socket.request.max.bytes"):
        frames.frame_size(struct.pack(">i", 101), 100)


def test_a_v1_header_keeps_a_null_client_id_and_says_where_the_body_starts() -> None:
    frame = struct.pack(">hhi", 3, 4, 9) + b"\xff\xff" + b"BODY"
    head = frames.parse_header(frame, 1)
    assert (head.api_key, head.api_version, head.correlation_id) == (3, 4, 9)
    assert head.client_id is None and frame[head.body_offset :] == b"BODY"


def test_a_flexible_header_reads_a_legacy_client_id_then_its_tag_buffer() -> None:
    # Header v2: the client id stays an int16-length string; then an empty tag buffer.
    frame = _header(3, 12, "app") + b"BODY"
    head = frames.parse_header(frame, 2)
    assert head.client_id == "app" and head.correlation_id == 42
    assert frame[head.body_offset :] == b"BODY"


def test_a_tagged_field_kio_does_not_know_is_refused_not_a_crash() -> None:
    # One tagged field, tag 5, two bytes: a header field of a future version. Kafka skips it;
    # kio cannot, so the connection closes (FrameError), where kio would raise KeyError.
    with pytest.raises(FrameError, match="does not parse"):
        frames.parse_header(_header(3, 12, "app", tags=b"\x01\x05\x02ab"), 2)


@pytest.mark.parametrize(
    "frame",
    [
        struct.pack(">hhi", 3, 12, 1),  # no client id
        struct.pack(">hhi", 3, 12, 1) + b"\x00\x05ab",  # a client id cut short
        _header(3, 12, "x", tags=b"\x02\x05"),  # tags cut short
    ],
)
def test_a_header_that_does_not_parse_is_a_frame_error(frame: bytes) -> None:
    with pytest.raises(FrameError, match="header does not parse"):
        frames.parse_header(frame, 2)


def test_bytes_after_the_body_are_ignored_as_kafka_ignores_them() -> None:
    body = io.BytesIO()
    request = MetadataRequest(
        topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False
    )
    entity_writer(MetadataRequest)(body, request)
    frame = b"HEAD" + body.getvalue()
    assert frames.decode(MetadataRequest, frame, 4) == request
    # librdkafka 2.16's Metadata v13 for all topics (AdminClient.list_topics), as sent.
    assert frames.decode(MetadataRequest, frame + b"\x01\x00\x00", 4) == request
    with pytest.raises(FrameError, match="reaches past the request's end"):
        frames.decode(MetadataRequest, frame[:-2], 4)


def test_response_headers_v0_and_v1_differ_by_the_tag_buffer() -> None:
    assert frames.response_frame(7, 0, b"B") == struct.pack(">ii", 5, 7) + b"B"
    assert frames.response_frame(7, 1, b"B") == struct.pack(">ii", 6, 7) + b"\x00B"


# -- dispatch --------------------------------------------------------------------------------


def _run(frame: bytes, table: ApiTable | None = None) -> Any:
    node = cast(Node, None)  # ApiVersions and the refusals never look at the node
    return asyncio.run(dispatch(table or api_table(), node, frame, "127.0.0.1"))


def _api_versions_frame(version: int) -> bytes:
    body = io.BytesIO()
    entity_writer(ApiVersionsRequest)(
        body, ApiVersionsRequest(client_software_name="unit", client_software_version="1.0")
    )
    return _header(18, version, "unit") + body.getvalue()


def test_api_versions_lists_every_api_of_the_table_with_its_range() -> None:
    answered = _run(_api_versions_frame(3))
    assert answered.response.error_code.name == "none"
    assert answered.frame[8:] == frames.encode(answered.response)  # response header v0
    ranges = {k.api_key: (k.min_version, k.max_version) for k in answered.response.api_keys}
    assert ranges == {s.api_key: (s.min_version, s.max_version) for s in api_table().specs.values()}
    # The data APIs with their versions (Kafka 4's minimums).
    assert ranges[0] == (3, 13) and ranges[1] == (4, 18) and ranges[2] == (1, 10)
    assert ranges[3] == (0, 13) and ranges[18] == (0, 4) and ranges[22] == (0, 6)
    # The group APIs, FindCoordinator to ConsumerGroupDescribe.
    assert {10, 11, 12, 13, 14, 68, 69} <= set(ranges)
    # No transactional API: InitProducerId refuses a transactional id, so none is advertised.
    for txn_api in (24, 25, 26, 28):  # AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit
        assert txn_api not in ranges


def test_a_too_new_api_versions_gets_a_v0_answer_with_unsupported_version_and_our_ranges() -> None:
    answered = _run(_api_versions_frame(5))
    assert answered.frame[4:8] == struct.pack(">i", 42)
    value: Any
    value, size = entity_reader(load_response_schema(18, 0))(answered.frame, 8)
    assert 8 + size == len(answered.frame)
    assert value.error_code.name == "unsupported_version"
    assert {k.api_key for k in value.api_keys} == set(api_table().specs)


def test_an_api_versions_naming_bad_software_is_invalid_request_with_no_apis() -> None:
    body = io.BytesIO()
    entity_writer(ApiVersionsRequest)(
        body, ApiVersionsRequest(client_software_name="-bad-", client_software_version="1")
    )
    answered = _run(_header(18, 3, None) + body.getvalue())
    assert answered.response.error_code.name == "invalid_request"
    assert answered.response.api_keys == ()


def test_an_unknown_api_or_a_version_out_of_range_closes_the_connection() -> None:
    with pytest.raises(NotServedError, match="API key 999"):
        _run(_header(999, 0, None))
    with pytest.raises(NotServedError, match="add_partitions_to_txn"):
        _run(_header(24, 4, None))
    with pytest.raises(NotServedError, match=r"metadata v14"):
        _run(_header(3, 14, None))
    with pytest.raises(NotServedError, match=r"produce v2"):
        _run(_header(0, 2, None))


def test_a_garbage_body_is_a_frame_error() -> None:
    with pytest.raises(FrameError):
        _run(_header(18, 3, "x") + b"\x05")


def test_error_counts_walk_every_error_code_of_a_response() -> None:
    from kio.schema.errors import ErrorCode

    from server.kafka.entities import build

    response = build(
        load_response_schema(1, 12),
        {
            "throttle_time": 0,
            "error_code": ErrorCode.none,
            "responses": [
                {
                    "topic": "t",
                    "partitions": [
                        {"partition_index": i, "error_code": code, "high_watermark": -1,
                         "aborted_transactions": None, "records": b""}
                        for i, code in enumerate(
                            [ErrorCode.none, ErrorCode.not_leader_or_follower,
                             ErrorCode.not_leader_or_follower]
                        )
                    ],
                }
            ],
        },
    )  # fmt: skip
    assert error_counts(response) == {"none": 2, "not_leader_or_follower": 2}


def test_a_bare_sasl_token_has_no_header_minimum_but_keeps_the_maximum() -> None:
    # After SaslHandshake v0, PLAIN's "\0ab\0cd" is a 6-byte frame with no request header.
    assert frames.frame_size(struct.pack(">i", 6), 100, bare_token=True) == 6
    assert frames.frame_size(struct.pack(">i", 0), 100, bare_token=True) == 0
    with pytest.raises(FrameError, match="cannot hold a request header"):
        frames.frame_size(struct.pack(">i", 6), 100)
    with pytest.raises(FrameError, match="socket.request.max.bytes"):
        frames.frame_size(struct.pack(">i", 101), 100, bare_token=True)
    with pytest.raises(FrameError, match="-1 bytes"):
        frames.frame_size(struct.pack(">i", -1), 100, bare_token=True)
