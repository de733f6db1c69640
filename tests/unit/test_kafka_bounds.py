"""The length walk before kio decodes a request (server/kafka/bounds.py): any bytes either
decode or raise FrameError, and no length can make kio reserve more than the frame holds."""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema
from kio.schema.fetch.v12.request import FetchRequest
from kio.schema.metadata.v12.request import MetadataRequest
from kio.serial import entity_writer

from server.kafka import frames
from server.kafka.entities import build
from server.kafka.frames import FrameError
from server.kafka.limits import REQUEST_ARRAY_ELEMENTS_MAX

# (API key, versions) of the APIs the listener serves itself, flexible and not.
SERVED = [(0, (3, 9, 13)), (1, (4, 7, 12, 13, 18)), (2, (1, 6, 10)), (3, (0, 9, 12, 13)),
          (18, (0, 3, 4)), (22, (0, 2, 6))]  # fmt: skip
SCHEMAS = [load_request_schema(k, v) for k, versions in SERVED for v in versions]


def _encode(value: Any) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(value))(buffer, value)
    return buffer.getvalue()


def test_a_compact_array_announcing_billions_of_elements_is_refused_before_kio_reads_it() -> None:
    # Metadata v12: topics is a compact array; 0xFFFFFFFF (varint) elements, then nothing.
    # kio alone would reserve ~34 GB and abort the process.
    frame = b"\xf0\xff\xff\xff\x0f" + b"\x00" * 8
    with pytest.raises(FrameError, match="topics: an array of 4294967279 elements in 8 bytes"):
        frames.decode(MetadataRequest, frame, 0)


def test_strings_and_bytes_longer_than_the_frame_are_refused() -> None:
    # Metadata v4 (legacy): one topic whose name claims 0x7fff bytes.
    schema = load_request_schema(3, 4)
    with pytest.raises(FrameError, match="string of 32767 bytes"):
        frames.decode(schema, struct.pack(">ih", 1, 0x7FFF) + b"ab\x00", 0)


def _metadata(topics: int) -> Any:
    return build(
        MetadataRequest,
        {
            "topics": [{"topic_id": None, "name": f"t{i}"} for i in range(topics)],
            "allow_auto_topic_creation": True,
            "include_topic_authorized_operations": True,
        },
    )


def test_real_requests_pass_the_walk_and_decode_whole() -> None:
    metadata = _metadata(300)
    assert frames.decode(MetadataRequest, _encode(metadata), 0) == metadata
    fetch = build(
        FetchRequest,
        {
            "max_wait": 500, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1,
            "topics": [
                {
                    "topic": "t",
                    "partitions": [
                        {"partition": i, "current_leader_epoch": 0, "fetch_offset": i,
                         "last_fetched_epoch": -1, "log_start_offset": -1,
                         "partition_max_bytes": 1024}
                        for i in range(50)
                    ],
                }
            ],
            "forgotten_topics_data": [{"topic": "gone", "partitions": [1, 2, 3]}],
            "rack_id": "r",
        },
    )  # fmt: skip
    assert frames.decode(FetchRequest, _encode(fetch), 0) == fetch


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SCHEMAS), st.binary(max_size=120))
def test_any_bytes_decode_or_raise_the_one_frame_error(schema: Any, data: bytes) -> None:
    try:
        frames.decode(schema, data, 0)
    except FrameError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_real_request_with_any_byte_changed_decodes_or_raises_the_one_frame_error(
    data: st.DataObject,
) -> None:
    frame = bytearray(_encode(_metadata(3)))
    position = data.draw(st.integers(0, len(frame) - 1))
    frame[position] = data.draw(st.integers(0, 255))
    try:
        frames.decode(MetadataRequest, bytes(frame), 0)
    except FrameError:
        pass


def _metadata_v12_naming(topics: int) -> bytes:
    """A Metadata v12 body naming ``topics`` topics by id (18 bytes each): well-formed."""
    count = topics + 1
    varint = bytearray()
    while count >= 0x80:
        varint.append(count & 0x7F | 0x80)
        count >>= 7
    varint.append(count)
    topic = b"\x01" * 16 + b"\x00" + b"\x00"  # topic id, a null name, no tagged fields
    return bytes(varint) + topic * topics + b"\x00\x00\x00"


def test_a_request_of_more_array_elements_than_the_cap_is_refused_before_kio_decodes_it() -> None:
    # Every element costs the walk, kio and the handler Python time in the event loop: a 10 MiB
    # Fetch naming 650k partitions stopped a node for 15 s. Well-formed, under the cap, decodes.
    decoded = frames.decode(MetadataRequest, _metadata_v12_naming(REQUEST_ARRAY_ELEMENTS_MAX), 0)
    assert decoded.topics is not None and len(decoded.topics) == REQUEST_ARRAY_ELEMENTS_MAX
    with pytest.raises(FrameError, match=f"more than {REQUEST_ARRAY_ELEMENTS_MAX} array elements"):
        frames.decode(MetadataRequest, _metadata_v12_naming(REQUEST_ARRAY_ELEMENTS_MAX + 1), 0)


def test_null_where_the_schema_does_not_allow_it_is_refused_as_kafkas_reader_refuses_it() -> None:
    produce_v9 = load_request_schema(0, 9)
    # A Produce v9 body of zeros: null transactional_id (nullable), acks 0, timeout 0, then
    # topic_data's compact length 0, which is null: kio would decode topic_data=None.
    with pytest.raises(FrameError, match="non-nullable field topic_data was serialized as null"):
        frames.decode(produce_v9, b"\x00" * 9, 0)
    # Produce v3: the same with legacy lengths (int16 -1 for the null string, int32 -1 array).
    produce_v3 = load_request_schema(0, 3)
    body = b"\xff\xff" + b"\x00\x01" + b"\x00\x00\x00\x00" + b"\xff\xff\xff\xff"
    with pytest.raises(FrameError, match="non-nullable field topic_data"):
        frames.decode(produce_v3, body, 0)
    # A non-nullable string: CreateTopics v2's topic name as int16 -1.
    create_v2 = load_request_schema(19, 2)
    body = struct.pack(">i", 1) + b"\xff\xff" + b"\x00" * 20
    with pytest.raises(FrameError, match="non-nullable field name was serialized as null"):
        frames.decode(create_v2, body, 0)
    # Null where it is allowed still decodes: Metadata v12's topics (all topics).
    value = frames.decode(MetadataRequest, b"\x00\x00\x00\x00", 0)
    assert value.topics is None
