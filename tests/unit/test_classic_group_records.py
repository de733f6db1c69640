"""Kafka's GroupMetadata record (type 2, a classic group) byte for byte: the key, the value as
Kafka 4.4 writes it (v3), every version Kafka reads (v0-v4, v4 flexible), and corruption
reported as the one GroupRecordError. The expected bytes are written out by hand from Kafka's
GroupMetadataKey.json / GroupMetadataValue.json, not by our writer."""

from __future__ import annotations

import pytest

from storage.group_records import (
    NO_TIMEOUT,
    NO_TIMESTAMP,
    ClassicGroupKey,
    ClassicGroupValue,
    ClassicMemberMetadata,
    GroupRecordError,
    decode,
    encode_key,
    encode_value,
)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


KEY = h("0002 0001 67")  # record type 2, group "g"

MEMBER = ClassicMemberMetadata(
    member_id="m",
    client_id="c",
    client_host="/h",
    rebalance_timeout_ms=300000,
    session_timeout_ms=45000,
    subscription=b"\x01\x02",
    assignment=b"\x03",
)
VALUE = ClassicGroupValue(
    protocol_type="consumer",
    generation=5,
    protocol="range",
    leader="m",
    current_state_timestamp_ms=1700000000000,
    members=(MEMBER,),
)

V3 = h(
    "0003"  # value version 3
    "0008 636f6e73756d6572"  # protocol type "consumer"
    "00000005"  # generation
    "0005 72616e6765"  # protocol "range"
    "0001 6d"  # leader "m"
    "0000018bcfe56800"  # current state timestamp
    "00000001"  # one member
    "0001 6d"  # member id
    "ffff"  # group instance id: null
    "0001 63"  # client id
    "0002 2f68"  # client host
    "000493e0"  # rebalance timeout 300000
    "0000afc8"  # session timeout 45000
    "00000002 0102"  # subscription
    "00000001 03"  # assignment
)


def test_key_and_value_are_written_as_kafka_4_4_writes_them() -> None:
    assert encode_key(ClassicGroupKey("g")) == KEY
    assert encode_value(VALUE) == V3
    assert decode(KEY, V3) == (ClassicGroupKey("g"), VALUE)


def test_tombstone() -> None:
    assert encode_value(None) is None
    assert decode(KEY, None) == (ClassicGroupKey("g"), None)


def test_empty_group_has_null_protocol_and_leader() -> None:
    empty = ClassicGroupValue("consumer", 6, None, None, 1700000000000, ())
    raw = encode_value(empty)
    assert raw == h("0003 0008 636f6e73756d6572 00000006 ffff ffff 0000018bcfe56800 00000000")
    assert decode(KEY, raw) == (ClassicGroupKey("g"), empty)


def test_version_0_has_no_rebalance_timeout_timestamp_nor_instance_id() -> None:
    v0 = h(
        "0000 0008 636f6e73756d6572 00000005 0005 72616e6765 0001 6d"
        "00000001 0001 6d 0001 63 0002 2f68 0000afc8 00000002 0102 00000001 03"
    )
    decoded = decode(KEY, v0)
    assert decoded is not None
    value = decoded[1]
    assert isinstance(value, ClassicGroupValue)
    assert value.current_state_timestamp_ms == NO_TIMESTAMP
    assert value.members[0].rebalance_timeout_ms == NO_TIMEOUT
    assert value.members[0].session_timeout_ms == 45000


def test_version_1_adds_the_rebalance_timeout_and_version_2_the_timestamp() -> None:
    v1 = h(
        "0001 0008 636f6e73756d6572 00000005 0005 72616e6765 0001 6d"
        "00000001 0001 6d 0001 63 0002 2f68 000493e0 0000afc8 00000002 0102 00000001 03"
    )
    v2 = h(
        "0002 0008 636f6e73756d6572 00000005 0005 72616e6765 0001 6d 0000018bcfe56800"
        "00000001 0001 6d 0001 63 0002 2f68 000493e0 0000afc8 00000002 0102 00000001 03"
    )
    one, two = decode(KEY, v1), decode(KEY, v2)
    assert one is not None and two is not None
    assert one[1] == ClassicGroupValue("consumer", 5, "range", "m", NO_TIMESTAMP, (MEMBER,))
    assert two[1] == VALUE


def test_version_4_is_flexible() -> None:
    v4 = h(
        "0004"
        "09 636f6e73756d6572"  # compact string
        "00000005"
        "06 72616e6765"
        "02 6d"
        "0000018bcfe56800"
        "02"  # compact array: one member
        "02 6d 00 02 63 03 2f68 000493e0 0000afc8 03 0102 02 03"
        "01 05 01 ff"  # the member's tagged fields: an unknown tag 5, skipped
        "00"  # the value's tagged fields
    )
    assert decode(KEY, v4) == (ClassicGroupKey("g"), VALUE)


def test_static_member_keeps_its_instance_id() -> None:
    static = ClassicGroupValue(
        "consumer",
        1,
        "range",
        "m",
        0,
        (ClassicMemberMetadata("m", "c", "/h", 1, 2, b"", b"", group_instance_id="i"),),
    )
    assert decode(KEY, encode_value(static)) == (ClassicGroupKey("g"), static)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (h("0005"), "group metadata value version 0..4"),
        (V3[:-1], "1 bytes of assignment"),
        (h("0003 0008 636f6e73756d6572 00000005 ffff ffff 0000000000000000 7fffffff"), "elements"),
        (h("0003 fffe"), "the length of protocol type"),
        (V3 + b"\x00", "the end of the bytes"),
    ],
)
def test_corrupt_values_are_one_error_saying_what_and_where(value: bytes, expected: str) -> None:
    with pytest.raises(GroupRecordError) as caught:
        decode(KEY, value)
    assert expected in str(caught.value)
