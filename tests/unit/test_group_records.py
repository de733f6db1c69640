"""__consumer_offsets records: the bytes of each record type, derived by hand from Kafka's
schemas (group-coordinator/src/main/resources/common/message/*.json, Kafka 4.4), and the one
error for bytes that do not parse.

The expected bytes were also produced by Kafka 4.4.0's own GroupCoordinatorRecordSerde for the
same records (a check run by hand: CI has no Kafka jars); they matched byte for byte.
"""

from __future__ import annotations

import pytest

from storage.group_records import (
    NO_SESSION_TIMEOUT,
    CurrentAssignmentKey,
    CurrentAssignmentValue,
    GroupMetadataKey,
    GroupMetadataValue,
    GroupRecordError,
    MemberMetadataKey,
    MemberMetadataValue,
    MemberState,
    OffsetCommitKey,
    OffsetCommitValue,
    TargetAssignmentMemberKey,
    TargetAssignmentMemberValue,
    TargetAssignmentMetadataKey,
    TargetAssignmentMetadataValue,
    decode,
    encode_key,
    encode_value,
)

# A topic id whose 16 bytes are 00 01 02 ... 0f.
TOPIC_ID = "AAECAwQFBgcICQoLDA0ODw"
TOPIC_ID_HEX = "000102030405060708090a0b0c0d0e0f"
# A second topic id, bytes ff ff ... ff: sorts after TOPIC_ID as a string too.
TOPIC_ID_2 = "_____________________w"
TOPIC_ID_2_HEX = "ff" * 16


def h(text: str) -> bytes:
    """Hex with spaces and comments-free line breaks allowed, for readable vectors."""
    return bytes.fromhex("".join(text.split()))


# Keys: int16 record type, then non-flexible strings (int16 length + UTF-8).
OFFSET_COMMIT_KEY = h("0001  0001 67  0001 74  00000003")  # type 1, "g", "t", partition 3
GROUP_KEY = h("0003  0001 67")  # type 3, "g"
MEMBER_KEY = h("0005  0001 67  0002 6d31")  # type 5, "g", "m1"
TARGET_METADATA_KEY = h("0006  0001 67")  # type 6, "g"
TARGET_MEMBER_KEY = h("0007  0001 67  0002 6d31")  # type 7, "g", "m1"
CURRENT_KEY = h("0008  0001 67  0002 6d31")  # type 8, "g", "m1"


def test_offset_commit_is_value_version_4_with_a_compact_metadata_string() -> None:
    key = OffsetCommitKey("g", "t", 3)
    value = OffsetCommitValue(42, 5, "m", 1_700_000_000_000)
    expected = h(
        "0004"  # value version 4 (first flexible)
        "000000000000002a"  # offset 42
        "00000005"  # leader epoch 5
        "02 6d"  # metadata: compact string, length 1 + 1
        "0000018bcfe56800"  # commit timestamp 1700000000000
        "00"  # no tagged fields
    )
    assert encode_key(key) == OFFSET_COMMIT_KEY
    assert encode_value(value) == expected
    assert decode(OFFSET_COMMIT_KEY, expected) == (key, value)


def test_offset_commit_topic_id_is_tag_0() -> None:
    value = OffsetCommitValue(42, -1, "", 1_700_000_000_000, topic_id=TOPIC_ID)
    expected = h(
        "0004 000000000000002a ffffffff"  # version, offset, no leader epoch
        "01"  # metadata "" (length 0 + 1)
        "0000018bcfe56800"
        "01  00 10" + TOPIC_ID_HEX  # one tagged field: tag 0, 16 bytes
    )
    assert encode_value(value) == expected
    assert decode(OFFSET_COMMIT_KEY, expected) == (OffsetCommitKey("g", "t", 3), value)


def test_offset_commit_tombstone_is_a_null_value() -> None:
    key = OffsetCommitKey("g", "t", 3)
    assert encode_value(None) is None
    assert decode(OFFSET_COMMIT_KEY, None) == (key, None)


@pytest.mark.parametrize(
    ("value_hex", "leader_epoch"),
    [
        # v3: offset, leader epoch, metadata as int16 string, commit timestamp.
        ("0003 000000000000002a 00000005 0001 6d 0000018bcfe56800", 5),
        # v1: offset, metadata, commit timestamp, expire timestamp (dropped).
        ("0001 000000000000002a 0001 6d 0000018bcfe56800 0000018bcfe56801", -1),
        # v0 and v2: offset, metadata, commit timestamp.
        ("0000 000000000000002a 0001 6d 0000018bcfe56800", -1),
        ("0002 000000000000002a 0001 6d 0000018bcfe56800", -1),
    ],
)
def test_offset_commit_values_of_older_brokers_are_read(value_hex: str, leader_epoch: int) -> None:
    decoded = decode(OFFSET_COMMIT_KEY, h(value_hex))
    assert decoded == (
        OffsetCommitKey("g", "t", 3),
        OffsetCommitValue(42, leader_epoch, "m", 1_700_000_000_000),
    )


def test_group_metadata_value_is_the_epoch() -> None:
    key, value = GroupMetadataKey("g"), GroupMetadataValue(7)
    expected = h("0000 00000007 00")
    assert encode_key(key) == GROUP_KEY
    assert encode_value(value) == expected
    assert decode(GROUP_KEY, expected) == (key, value)


def test_group_metadata_hash_is_tag_0_and_omitted_when_0() -> None:
    value = GroupMetadataValue(7, metadata_hash=0x0102030405060708)
    expected = h("0000 00000007  01 00 08 0102030405060708")
    assert encode_value(value) == expected
    assert decode(GROUP_KEY, expected) == (GroupMetadataKey("g"), value)


# Member metadata as Kafka 4.4 writes it (no session timeout), and with ours.
MEMBER_VALUE_KAFKA = h(
    "0000"  # version 0
    "00"  # instance id null
    "00"  # rack id null
    "02 63"  # client id "c"
    "0b 2f3132372e302e302e31"  # client host "/127.0.0.1"
    "03 02 61 02 62"  # subscribed topic names: 2 + 1, "a", "b"
    "00"  # subscribed topic regex null
    "000493e0"  # rebalance timeout 300000
    "08 756e69666f726d"  # server assignor "uniform"
    "01  00 01 00"  # one tagged field: tag 0 (classic member metadata), 1 byte: null
)


def test_member_metadata_carries_the_session_timeout_in_tag_10000() -> None:
    key = MemberMetadataKey("g", "m1")
    value = MemberMetadataValue("c", "/127.0.0.1", ("a", "b"), "uniform", 300_000, 45_000)
    expected = MEMBER_VALUE_KAFKA[:-4] + h(
        "02"  # two tagged fields
        "00 01 00"  # tag 0: classic member metadata null (Kafka reads an absent one as set)
        "904e 04 0000afc8"  # tag 10000 (varint 90 4e), 4 bytes: 45000
    )
    assert encode_key(key) == MEMBER_KEY
    assert encode_value(value) == expected
    assert decode(MEMBER_KEY, expected) == (key, value)


def test_member_metadata_without_the_session_tag_reads_as_no_session_timeout() -> None:
    decoded = decode(MEMBER_KEY, MEMBER_VALUE_KAFKA)
    assert decoded is not None
    _, value = decoded
    assert isinstance(value, MemberMetadataValue)
    assert value.session_timeout_ms == NO_SESSION_TIMEOUT
    assert value == MemberMetadataValue("c", "/127.0.0.1", ("a", "b"), "uniform", 300_000, -1)
    # And written back as Kafka writes it.
    assert encode_value(value) == MEMBER_VALUE_KAFKA


def test_member_metadata_nullable_strings() -> None:
    value = MemberMetadataValue(
        "c", "h", (), None, -1, 6000, instance_id="i", rack_id="r", subscribed_topic_regex="t.*"
    )
    expected = h(
        "0000 02 69 02 72 02 63 02 68"  # version, instance "i", rack "r", client "c", host "h"
        "01"  # no subscribed topic names (0 + 1)
        "04 742e2a"  # regex "t.*"
        "ffffffff"  # rebalance timeout -1
        "00"  # server assignor null
        "02 00 01 00 904e 04 00001770"
    )
    assert encode_value(value) == expected
    assert decode(MEMBER_KEY, expected) == (MemberMetadataKey("g", "m1"), value)


def test_target_assignment_metadata_value() -> None:
    key = TargetAssignmentMetadataKey("g")
    value = TargetAssignmentMetadataValue(7, assignment_timestamp_ms=1_700_000_000_000)
    expected = h("0000 00000007  01 00 08 0000018bcfe56800")
    assert encode_key(key) == TARGET_METADATA_KEY
    assert encode_value(value) == expected
    assert decode(TARGET_METADATA_KEY, expected) == (key, value)
    assert encode_value(TargetAssignmentMetadataValue(7)) == h("0000 00000007 00")


def test_target_assignment_member_value() -> None:
    key = TargetAssignmentMemberKey("g", "m1")
    value = TargetAssignmentMemberValue(((TOPIC_ID, (0, 1)), (TOPIC_ID_2, (4,))))
    expected = h(
        "0000"
        "03"  # two topics
        + TOPIC_ID_HEX
        + "03 00000000 00000001 00"  # partitions 0, 1; no tags
        + TOPIC_ID_2_HEX
        + "02 00000004 00"  # partition 4
        "00"  # no tagged fields
    )
    assert encode_key(key) == TARGET_MEMBER_KEY
    assert encode_value(value) == expected
    assert decode(TARGET_MEMBER_KEY, expected) == (key, value)


def test_current_assignment_value() -> None:
    key = CurrentAssignmentKey("g", "m1")
    value = CurrentAssignmentValue(
        7, 6, MemberState.UNREVOKED_PARTITIONS, ((TOPIC_ID, (0,)),), ((TOPIC_ID, (1,)),)
    )
    expected = h(
        "0000 00000007 00000006"  # version, member epoch 7, previous epoch 6
        "01"  # state: UNREVOKED_PARTITIONS
        "02" + TOPIC_ID_HEX + "02 00000000 00"  # assigned: partition 0
        "02" + TOPIC_ID_HEX + "02 00000001 00"  # pending revocation: partition 1
        "00"
    )
    assert encode_key(key) == CURRENT_KEY
    assert encode_value(value) == expected
    assert decode(CURRENT_KEY, expected) == (key, value)


def test_member_state_codes_are_kafkas() -> None:
    assert {s.name: s.value for s in MemberState} == {
        "STABLE": 0,
        "UNREVOKED_PARTITIONS": 1,
        "UNRELEASED_PARTITIONS": 2,
        "UNKNOWN": 127,
    }


def test_assignment_written_by_kafka_in_any_order_reads_sorted() -> None:
    value_bytes = h(
        "0000 03"
        + TOPIC_ID_2_HEX
        + "03 00000005 00000002 00"
        + TOPIC_ID_HEX
        + "02 00000003"
        + "01 00 05 02 00000009"  # tag 0 (Kafka's assignment epochs): skipped
        + "00"
    )
    decoded = decode(TARGET_MEMBER_KEY, value_bytes)
    assert decoded is not None
    assert decoded[1] == TargetAssignmentMemberValue(((TOPIC_ID, (3,)), (TOPIC_ID_2, (2, 5))))


@pytest.mark.parametrize(
    "key_hex",
    [
        "0000 0001 67 0001 74 00000003",  # legacy offset commit
        "0004 0001 67",  # deprecated partition metadata
        "000b 0001 67",  # share group metadata
        "0011 0001 67",  # streams group metadata
        "7fff",  # any other
        "ffff",
    ],
)
def test_record_types_of_other_groups_are_skipped(key_hex: str) -> None:
    assert decode(h(key_hex), b"\x00\x00 anything") is None
    assert decode(h(key_hex), None) is None


def test_unknown_tags_are_skipped() -> None:
    expected = h("0000 00000007  02  05 02 abcd  07 00")  # tags 5 and 7: not ours
    assert decode(GROUP_KEY, expected) == (GroupMetadataKey("g"), GroupMetadataValue(7))


# --- corruption: one error, saying what and where ----------------------------------------------


def error_of(key: bytes, value: bytes | None) -> GroupRecordError:
    with pytest.raises(GroupRecordError) as caught:
        decode(key, value)
    return caught.value


def test_truncated_key_names_what_is_missing() -> None:
    err = error_of(OFFSET_COMMIT_KEY[:-1], None)
    assert err.part == "key"
    assert err.position == len(OFFSET_COMMIT_KEY) - 4
    assert "4 bytes of partition" in str(err) and "3 bytes left" in str(err)


def test_key_shorter_than_its_record_type() -> None:
    err = error_of(b"\x00", None)
    assert err.position == 0 and "record type" in str(err)


def test_trailing_key_bytes() -> None:
    err = error_of(GROUP_KEY + b"\x00", None)
    assert "the end of the bytes" in str(err) and "1 more bytes" in str(err)
    assert err.position == len(GROUP_KEY)


def test_trailing_value_bytes() -> None:
    err = error_of(GROUP_KEY, h("0000 00000007 00 ff"))
    assert err.part == "value" and err.position == 7


def test_truncated_value() -> None:
    err = error_of(OFFSET_COMMIT_KEY, h("0004 000000000000002a 0000"))
    assert err.part == "value" and err.position == 10


def test_unknown_value_version_of_a_known_type() -> None:
    err = error_of(GROUP_KEY, h("0001 00000007 00"))
    assert "value version 0 of record type 3" in str(err) and "found 1" in str(err)
    err = error_of(OFFSET_COMMIT_KEY, h("0005 000000000000002a"))
    assert "0..4" in str(err)


def test_negative_key_string_length() -> None:
    err = error_of(h("0003 ffff"), None)
    assert "never null" in str(err) and err.position == 2


def test_null_compact_string_where_none_is_allowed() -> None:
    value = bytearray(MEMBER_VALUE_KAFKA)
    value[4] = 0x00  # client id: compact length 0 = null
    err = error_of(MEMBER_KEY, bytes(value))
    assert "client id (never null)" in str(err) and err.position == 4


def test_invalid_utf8() -> None:
    err = error_of(h("0003 0002 c328"), None)
    assert "UTF-8" in str(err) and err.position == 4


def test_count_larger_than_the_bytes_left_is_corruption_not_a_huge_list() -> None:
    # 2^31 - 2 topics, announced in five bytes, and nothing after.
    err = error_of(TARGET_MEMBER_KEY, h("0000 ffffffff07"))
    assert "bytes left" in str(err) and err.position == 2


def test_varint_longer_than_five_bytes() -> None:
    err = error_of(TARGET_MEMBER_KEY, h("0000 8080808080 00"))
    assert "at most 5 bytes" in str(err)


def test_unknown_member_state_code() -> None:
    err = error_of(CURRENT_KEY, h("0000 00000007 00000006 05 01 01 00"))
    assert "member state" in str(err) and "found 5" in str(err) and err.position == 10


def test_tags_out_of_order() -> None:
    err = error_of(GROUP_KEY, h("0000 00000007  02  05 00  03 00"))
    assert "above 5" in str(err)


def test_known_tag_of_the_wrong_size() -> None:
    err = error_of(GROUP_KEY, h("0000 00000007  01 00 04 01020304"))
    assert "8 bytes of metadata hash" in str(err) and err.position == 9


def test_duplicate_partitions() -> None:
    err = error_of(TARGET_MEMBER_KEY, h("0000 02" + TOPIC_ID_HEX + "03 00000001 00000001 00 00"))
    assert "distinct partition ids" in str(err)


# --- records check themselves ------------------------------------------------------------------


def test_assignments_must_be_sorted_and_unique() -> None:
    with pytest.raises(ValueError, match="ascending"):
        TargetAssignmentMemberValue(((TOPIC_ID, (1, 0)),))
    with pytest.raises(ValueError, match="ascending"):
        TargetAssignmentMemberValue(((TOPIC_ID_2, (0,)), (TOPIC_ID, (0,))))
    with pytest.raises(ValueError, match="topic id"):
        TargetAssignmentMemberValue((("not-an-id", (0,)),))


def test_fields_must_fit_their_kafka_types() -> None:
    with pytest.raises(ValueError, match="int32"):
        OffsetCommitKey("g", "t", 2**31)
    with pytest.raises(ValueError, match="32767"):
        GroupMetadataKey("g" * 40_000)
    with pytest.raises(ValueError, match="zero uuid"):
        OffsetCommitValue(0, -1, "", 0, topic_id="AAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(ValueError, match="UTF-8"):
        GroupMetadataKey("\udc80")
