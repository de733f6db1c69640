"""__consumer_offsets record properties: every record round-trips through its bytes; any bytes
given to decode either parse or raise GroupRecordError, and nothing else."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.group_records import (
    CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
    CONSUMER_GROUP_MEMBER_METADATA,
    CONSUMER_GROUP_METADATA,
    CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
    CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
    OFFSET_COMMIT,
    Assignment,
    CurrentAssignmentKey,
    CurrentAssignmentValue,
    GroupKey,
    GroupMetadataKey,
    GroupMetadataValue,
    GroupRecordError,
    GroupValue,
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
from storage.ids import ZERO_UUID, uuid_to_string

_INT32 = st.integers(-(2**31), 2**31 - 1)
_INT64 = st.integers(-(2**63), 2**63 - 1)
# Any text, including what needs 2-4 bytes of UTF-8, minus lone surrogates (not UTF-8).
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_MAYBE_TEXT = st.none() | _TEXT
_TOPIC_ID = st.binary(min_size=16, max_size=16).map(uuid_to_string)


@st.composite
def _assignments(draw: st.DrawFn) -> Assignment:
    by_topic = draw(
        st.dictionaries(_TOPIC_ID, st.frozensets(st.integers(0, 2**31 - 1), max_size=5), max_size=4)
    )
    return tuple((t, tuple(sorted(ps))) for t, ps in sorted(by_topic.items()))


_OFFSET_VALUES = st.builds(
    OffsetCommitValue,
    offset=_INT64,
    leader_epoch=_INT32,
    metadata=_TEXT,
    commit_timestamp_ms=_INT64,
    topic_id=st.none() | _TOPIC_ID.filter(lambda t: t != ZERO_UUID),
)
_MEMBER_VALUES = st.builds(
    MemberMetadataValue,
    client_id=_TEXT,
    client_host=_TEXT,
    subscribed_topic_names=st.lists(_TEXT, max_size=4).map(tuple),
    server_assignor=_MAYBE_TEXT,
    rebalance_timeout_ms=_INT32,
    session_timeout_ms=st.integers(-1, 2**31 - 1),
    instance_id=_MAYBE_TEXT,
    rack_id=_MAYBE_TEXT,
    subscribed_topic_regex=_MAYBE_TEXT,
)
_CURRENT_VALUES = st.builds(
    CurrentAssignmentValue,
    member_epoch=_INT32,
    previous_member_epoch=_INT32,
    state=st.sampled_from(MemberState),
    assigned=_assignments(),
    pending_revocation=_assignments(),
)


def _maybe(values: st.SearchStrategy[GroupValue]) -> st.SearchStrategy[GroupValue | None]:
    return st.none() | values


_RECORDS: st.SearchStrategy[tuple[GroupKey, GroupValue | None]] = st.one_of(
    st.tuples(st.builds(OffsetCommitKey, _TEXT, _TEXT, _INT32), _maybe(_OFFSET_VALUES)),
    st.tuples(
        st.builds(GroupMetadataKey, _TEXT),
        _maybe(st.builds(GroupMetadataValue, _INT32, _INT64)),
    ),
    st.tuples(st.builds(MemberMetadataKey, _TEXT, _TEXT), _maybe(_MEMBER_VALUES)),
    st.tuples(
        st.builds(TargetAssignmentMetadataKey, _TEXT),
        _maybe(st.builds(TargetAssignmentMetadataValue, _INT32, _INT64)),
    ),
    st.tuples(
        st.builds(TargetAssignmentMemberKey, _TEXT, _TEXT),
        _maybe(st.builds(TargetAssignmentMemberValue, _assignments())),
    ),
    st.tuples(st.builds(CurrentAssignmentKey, _TEXT, _TEXT), _maybe(_CURRENT_VALUES)),
)


@settings(max_examples=400, deadline=None)
@given(record=_RECORDS)
def test_every_record_round_trips(record: tuple[GroupKey, GroupValue | None]) -> None:
    key, value = record
    assert decode(encode_key(key), encode_value(value)) == (key, value)


def _decodes_or_refuses(key: bytes, value: bytes | None) -> None:
    try:
        decode(key, value)
    except GroupRecordError:
        pass


_KNOWN_TYPES = st.sampled_from(
    [
        OFFSET_COMMIT,
        CONSUMER_GROUP_METADATA,
        CONSUMER_GROUP_MEMBER_METADATA,
        CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
        CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
        CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
    ]
)


@settings(max_examples=500, deadline=None)
@given(key=st.binary(max_size=40), value=st.none() | st.binary(max_size=80))
def test_any_bytes_decode_or_raise_the_one_error(key: bytes, value: bytes | None) -> None:
    _decodes_or_refuses(key, value)


@settings(max_examples=500, deadline=None)
@given(
    record_type=_KNOWN_TYPES,
    key_tail=st.binary(max_size=30),
    version=st.integers(0, 5),
    value_tail=st.binary(max_size=120),
)
def test_bytes_after_a_known_type_decode_or_raise_the_one_error(
    record_type: int, key_tail: bytes, version: int, value_tail: bytes
) -> None:
    # A known record type and a plausible version, so the fields' readers are reached.
    _decodes_or_refuses(
        struct.pack(">h", record_type) + key_tail, struct.pack(">h", version) + value_tail
    )


@settings(max_examples=400, deadline=None)
@given(record=_RECORDS, data=st.data())
def test_damaged_records_decode_or_raise_the_one_error(
    record: tuple[GroupKey, GroupValue | None], data: st.DataObject
) -> None:
    key, value = record
    key_bytes, value_bytes = encode_key(key), encode_value(value) or b"\x00\x00"
    which = data.draw(st.sampled_from(["key", "value"]))
    target = bytearray(key_bytes if which == "key" else value_bytes)
    how = data.draw(st.sampled_from(["truncate", "flip", "append"]))
    if how == "truncate":
        del target[data.draw(st.integers(0, len(target))) :]
    elif how == "flip" and target:
        at = data.draw(st.integers(0, len(target) - 1))
        target[at] ^= data.draw(st.integers(1, 255))
    else:
        target += data.draw(st.binary(min_size=1, max_size=8))
    if which == "key":
        _decodes_or_refuses(bytes(target), value_bytes)
    else:
        _decodes_or_refuses(key_bytes, bytes(target))
