"""kraft-dump-log --offsets-decoder properties: every record our coordinator writes prints as
JSON holding its fields, with no problem reported; any bytes print as something, never raise."""

from __future__ import annotations

import json
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.group_records import (
    CurrentAssignmentValue,
    GroupKey,
    GroupValue,
    MemberMetadataValue,
    OffsetCommitValue,
    encode_key,
    encode_value,
)
from storage.offsets_decoder import decode_record
from tests.property.test_group_records_property import _RECORDS


def _expected_fields(value: GroupValue) -> dict[str, Any]:
    """Some of the value's fields under Kafka's JSON names."""
    match value:
        case OffsetCommitValue():
            return {
                "offset": value.offset,
                "leaderEpoch": value.leader_epoch,
                "metadata": value.metadata,
                "commitTimestamp": value.commit_timestamp_ms,
            }
        case MemberMetadataValue():
            return {
                "clientId": value.client_id,
                "clientHost": value.client_host,
                "subscribedTopicNames": list(value.subscribed_topic_names),
                "serverAssignor": value.server_assignor,
                "classicMemberMetadata": None,
            }
        case CurrentAssignmentValue():
            return {
                "memberEpoch": value.member_epoch,
                "state": int(value.state),
                "assignedPartitions": [
                    {"topicId": t, "partitions": list(p)} for t, p in value.assigned
                ],
            }
    return {}


@settings(max_examples=400, deadline=None)
@given(record=_RECORDS)
def test_every_coordinator_record_prints_as_json_of_its_fields(
    record: tuple[GroupKey, GroupValue | None],
) -> None:
    key, value = record
    key_bytes = encode_key(key)
    decoded = decode_record(7, key_bytes, encode_value(value))
    assert decoded.problem is None
    key_json = json.loads(decoded.key)
    assert key_json["type"] == str(struct.unpack_from(">h", key_bytes)[0])
    assert key.group in key_json["data"].values()
    if value is None:
        assert decoded.payload == "<DELETE>"
        return
    assert decoded.payload is not None
    data = json.loads(decoded.payload)["data"]
    for name, expected in _expected_fields(value).items():
        assert data[name] == expected, name


@settings(max_examples=1000, deadline=None)
@given(
    record_type=st.integers(-2, 10) | st.integers(-(2**15), 2**15 - 1),
    key_tail=st.binary(max_size=30),
    value=st.none() | st.binary(max_size=120),
)
def test_any_bytes_print_as_a_record_or_as_kafkas_skipping_line(
    record_type: int, key_tail: bytes, value: bytes | None
) -> None:
    decoded = decode_record(3, struct.pack(">h", record_type) + key_tail, value)
    if decoded.payload is None:
        assert decoded.key.endswith("skipping.") or "skipping. " in decoded.key
    else:
        json.loads(decoded.key)
        assert decoded.payload == "<DELETE>" or json.loads(decoded.payload)["data"] is not None
