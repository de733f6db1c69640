"""kraft-dump-log --offsets-decoder prints __consumer_offsets records as Kafka 4.4 prints them.

The expected lines in tests/data/kafka_4.4_offsets_dump_*.txt are the output of Kafka 4.4.0's
own tool (``java -cp 'libs/*' org.apache.kafka.tools.DumpLogSegments --offsets-decoder``) on
the very segments these tests build with storage's batch builder, without its first line
(``Dumping <path>``).
"""

from __future__ import annotations

import itertools
import struct
from base64 import b64decode, b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.batch import NewRecord, build_batch
from storage.dump_log import main
from storage.group_records import (
    CurrentAssignmentKey,
    CurrentAssignmentValue,
    GroupKey,
    GroupMetadataKey,
    GroupMetadataValue,
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
    encode_key,
    encode_value,
)
from storage.group_wire import compact_string, string, tagged_fields, uvarint
from storage.ids import uuid_from_string, uuid_to_string
from storage.offsets_decoder import decode_record, to_json
from storage.offsets_schemas import (
    CONSUMER_PROTOCOL_ASSIGNMENT,
    CONSUMER_PROTOCOL_SUBSCRIPTION,
    SCHEMAS,
    Array,
    Field,
    Kind,
    Struct,
)

DATA = Path(__file__).resolve().parents[1] / "data"
T = "AAECAwQFBgcICQoLDA0ODw"
T_BYTES = uuid_from_string(T)


def lines(text: str) -> list[str]:
    # Not str.splitlines(): that also splits at U+2028, which a record may hold (offset 13).
    assert text.endswith("\n") or not text
    return text.split("\n")[:-1]


def kafka_lines(name: str) -> list[str]:
    return lines((DATA / name).read_text(encoding="utf-8"))


def write_segment(tmp_path: Path, batches: list[bytes]) -> Path:
    d = tmp_path / "__consumer_offsets-7"
    d.mkdir()
    log = d / "00000000000000000000.log"
    log.write_bytes(b"".join(batches))
    return log


def dump(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, lines(captured.out), lines(captured.err)


# -- what our coordinator writes ------------------------------------------------------------------


def coordinator_records() -> list[tuple[GroupKey, GroupValue | None]]:
    g = "my-group"
    return [
        (OffsetCommitKey(g, "orders", 3), OffsetCommitValue(42, 5, "m", 1700000000000)),
        (OffsetCommitKey(g, "orders", 4), OffsetCommitValue(7, -1, "", 1700000000001, T)),
        (GroupMetadataKey(g), GroupMetadataValue(7)),
        (
            MemberMetadataKey(g, "m1"),
            MemberMetadataValue(
                "console-consumer", "/127.0.0.1", ("orders", "payments"), "uniform", 300000, 45000
            ),
        ),
        (
            MemberMetadataKey(g, "m2"),
            MemberMetadataValue("c2", "/10.0.0.2", ("orders",), None, 300000, -1, rack_id="r1"),
        ),
        (TargetAssignmentMetadataKey(g), TargetAssignmentMetadataValue(7)),
        (
            TargetAssignmentMemberKey(g, "m1"),
            TargetAssignmentMemberValue(((T, (0, 1)), ("_____________________w", (2,)))),
        ),
        (
            CurrentAssignmentKey(g, "m1"),
            CurrentAssignmentValue(
                7, 6, MemberState.UNREVOKED_PARTITIONS, ((T, (0,)),), ((T, (1,)),)
            ),
        ),
        (
            CurrentAssignmentKey(g, "m2"),
            CurrentAssignmentValue(7, 7, MemberState.UNRELEASED_PARTITIONS, (), ()),
        ),
    ]


def coordinator_segment(tmp_path: Path) -> Path:
    live = [
        NewRecord(encode_key(k), encode_value(v), 1700000000000 + i)
        for i, (k, v) in enumerate(coordinator_records())
    ]
    g = "my-group"
    deleted: list[GroupKey] = [
        OffsetCommitKey(g, "orders", 3),
        MemberMetadataKey(g, "m2"),
        CurrentAssignmentKey(g, "m2"),
        GroupMetadataKey(g),
    ]
    tombstones = [NewRecord(encode_key(k), None, 1700000001000 + i) for i, k in enumerate(deleted)]
    return write_segment(tmp_path, [build_batch(live), build_batch(tombstones, base_offset=9)])


def test_the_coordinators_records_print_exactly_as_kafka_prints_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = coordinator_segment(tmp_path)
    code, out, err = dump(capsys, "--offsets-decoder", "--files", str(log))
    assert (code, err) == (0, [])
    assert out == [f"Dumping {log}", *kafka_lines("kafka_4.4_offsets_dump_coordinator.txt")]


def test_offsets_decoder_implies_print_data_log_and_keeps_skip_record_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = coordinator_segment(tmp_path)
    _, out, _ = dump(capsys, "--offsets-decoder", "--skip-record-metadata", "--files", str(log))
    assert out[3] == (
        '| key: {"type":"1","data":{"group":"my-group","topic":"orders","partition":3}} '
        'payload: {"version":"4","data":{"offset":42,"leaderEpoch":5,"metadata":"m",'
        '"commitTimestamp":1700000000000}}'
    )
    assert out[-1] == '| key: {"type":"3","data":{"groupId":"my-group"}} payload: <DELETE>'


# -- every value version, fields we do not keep, corrupt bytes -------------------------------------


def _h(v: int) -> bytes:
    return struct.pack(">h", v)


def _i(v: int) -> bytes:
    return struct.pack(">i", v)


def _q(v: int) -> bytes:
    return struct.pack(">q", v)


def _key(record_type: int, *parts: str) -> bytes:
    return _h(record_type) + b"".join(string(p) for p in parts)


def _oc_key(group: str, topic: str, partition: int) -> bytes:
    return _h(1) + string(group) + string(topic) + _i(partition)


def _array(items: list[bytes]) -> bytes:
    return uvarint(len(items) + 1) + b"".join(items)


def _topic(tid: bytes, parts: list[int], tags: list[tuple[int, bytes]] | None = None) -> bytes:
    return tid + _array([_i(p) for p in parts]) + tagged_fields(tags or [])


def _member(classic_tag: list[tuple[int, bytes]], topics: bytes = _array([])) -> bytes:
    return (
        _h(0)
        + compact_string(None)
        + compact_string(None)
        + compact_string("c")
        + compact_string("h")
        + topics
        + compact_string(None)
        + _i(-1)
        + compact_string(None)
        + tagged_fields(classic_tag)
    )


EMPTY = b""
NO_CLIENT_ID = (
    _h(0)
    + compact_string(None)
    + compact_string(None)
    + compact_string(None)
    + compact_string("h")
    + _array([])
    + compact_string(None)
    + _i(-1)
    + compact_string(None)
    + b"\x00"
)

# (key, value) at offsets 0, 1, ...: the segment Kafka's expected lines were made from.
EDGE_CASES: list[tuple[bytes, bytes | None]] = [
    # 0-4: offset commit values v4 (with topic id), v3, v1 (expireTimestamp), v0, v2
    (
        _oc_key("g", "t", 0),
        _h(4)
        + _q(42)
        + _i(5)
        + compact_string("m")
        + _q(1700000000000)
        + tagged_fields([(0, T_BYTES)]),
    ),
    (_oc_key("g", "t", 1), _h(3) + _q(43) + _i(6) + string("meta") + _q(1700000000001)),
    (_oc_key("g", "t", 2), _h(1) + _q(44) + string("") + _q(1700000000002) + _q(1700000099999)),
    (_oc_key("g", "t", 3), _h(0) + _q(45) + string("x") + _q(1700000000003)),
    (_oc_key("g", "t", 4), _h(2) + _q(46) + string("y") + _q(1700000000004)),
    # 5: group metadata with a metadata hash
    (_key(3, "g"), _h(0) + _i(9) + tagged_fields([(0, _q(-5))])),
    # 6: member with classic metadata null and our session timeout tag (Kafka skips it)
    (
        _key(5, "g", "m1"),
        _h(0)
        + compact_string("inst")
        + compact_string(None)
        + compact_string("cid")
        + compact_string("/1.2.3.4")
        + _array([compact_string("a")])
        + compact_string("re.*")
        + _i(1000)
        + compact_string("range")
        + tagged_fields([(0, b"\x00"), (10000, _i(45000))]),
    ),
    # 7: classic metadata absent; 8: present, with protocol bytes; 9: present but empty
    (_key(5, "g", "m2"), _member([])),
    (
        _key(5, "g", "m3"),
        _member(
            [
                (
                    0,
                    b"\x01"
                    + _i(30000)
                    + _array([compact_string("range") + uvarint(4) + b"\x00\x01\xff\x00"])
                    + b"\x00",
                )
            ]
        ),
    ),
    (_key(5, "g", "m4"), _member([(0, b"\x01" + _i(0) + _array([]) + b"\x00")])),
    # 10: target assignment metadata with its timestamp; 11: partitions as written
    (_key(6, "g"), _h(0) + _i(7) + tagged_fields([(0, _q(1700000000123))])),
    (_key(7, "g", "m1"), _h(0) + _array([_topic(T_BYTES, [2, 0, 1])]) + b"\x00"),
    # 12: assignment epochs present, null and empty; state 9 (no such state)
    (
        _key(8, "g", "m1"),
        _h(0)
        + _i(7)
        + _i(6)
        + b"\x09"
        + _array([_topic(T_BYTES, [0, 1], [(0, _array([_i(3), _i(4)]))])])
        + _array(
            [
                _topic(T_BYTES, [2], [(0, b"\x00")]),
                _topic(bytes(16), [3], [(0, _array([]))]),
            ]
        )
        + b"\x00",
    ),
    # 13: JSON escapes
    (
        _oc_key('a"b\\c\n\t\x01\x1f\x7f\u00e9/\u2028\U0001f600', "t", 0),
        _h(4) + _q(1) + _i(-1) + compact_string("\b\f\r") + _q(0) + b"\x00",
    ),
    # 14, 15: types Kafka does not know; 16: a classic group's tombstone
    (_h(99) + string("g"), _h(0) + b"xyz"),
    (_h(9) + string("g"), None),
    (_h(2) + string("g"), None),
    # 17: a tombstone
    (_key(3, "g"), None),
    # 18: truncated value; 19, 20: value versions out of range
    (_oc_key("g", "t", 0), _h(4) + _q(42)),
    (_oc_key("g", "t", 0), _h(5) + _q(42) + _i(5) + compact_string("m") + _q(1) + b"\x00"),
    (_key(3, "g"), _h(1) + _i(9) + b"\x00"),
    # 21, 22: keys too short for a record type
    (b"\x00", _h(0)),
    (EMPTY, _h(0)),
    # 23: bytes after the value's last field (Kafka ignores them; our coordinator refuses them)
    (_key(3, "g"), _h(0) + _i(9) + b"\x00" + b"junk"),
    # 24: a group name that is not UTF-8
    (_h(3) + _h(3) + b"a\xffb", _h(0) + _i(1) + b"\x00"),
    # 25, 26: null in a field that may not be null
    (_key(5, "g", "m9"), NO_CLIENT_ID),
    (_h(3) + _h(-1), _h(0) + _i(1) + b"\x00"),
    # 27: value version -1; 28: an empty value
    (_key(3, "g"), _h(-1) + _i(1) + b"\x00"),
    (_key(3, "g"), EMPTY),
    # 29: a tombstone of an unknown type; 30: bytes after the key's last field
    (_h(99) + string("g"), None),
    (_key(3, "g") + b"zz", _h(0) + _i(1) + b"\x00"),
    # 31: a tagged int64 of 4 bytes; 32: an array count far beyond the bytes
    (_key(3, "g"), _h(0) + _i(9) + tagged_fields([(0, _i(5))])),
    (_key(7, "g", "m1"), _h(0) + uvarint(1000000) + b"\x00"),
    # 33: record type -1; 34: Kafka's legacy offset commit (type 0)
    (_h(-1) + string("g"), None),
    (_h(0) + string("g") + string("t") + _i(0), _h(0) + _q(1) + string("") + _q(5)),
    # 35: a null topic name in a subscription; 36: a key string of length -2 (null to Kafka)
    (_key(5, "g", "m"), _member([], topics=_array([b"\x00"]))),
    (_h(3) + _h(-2), _h(0) + _i(1) + b"\x00"),
    # 37: a null subscription; 38: tags out of order and unknown (Kafka takes them)
    (_key(5, "g", "m"), _member([], topics=b"\x00")),
    (_key(5, "g", "m"), _member([])[:-1] + b"\x02\x05\x00\x01\x00"),
]

# Where our line differs from Kafka's, on purpose: our reason after "due to:" (Kafka's is
# "null", a BufferUnderflowException's message).
OURS = {
    18: "Error at offset 18, skipping. Could not read record with version 4 from value's buffer "
    "due to: expected 4 bytes of leaderEpoch at byte 10, found 0 bytes left.",
    31: "Error at offset 31, skipping. Could not read record with version 0 from value's buffer "
    "due to: expected 8 bytes of metadataHash at byte 9, found 4 bytes left.",
}


def test_every_version_tag_and_corruption_prints_as_kafka_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [NewRecord(k, v, 1700000000000 + n) for n, (k, v) in enumerate(EDGE_CASES)]
    log = write_segment(
        tmp_path, [build_batch(records[:12]), build_batch(records[12:], base_offset=12)]
    )
    code, out, err = dump(capsys, "--offsets-decoder", "--files", str(log))
    expected = [f"Dumping {log}", *kafka_lines("kafka_4.4_offsets_dump_edge_cases.txt")]
    assert len(out) == len(expected)
    for ours, kafkas in zip(out, expected, strict=True):
        offset = int(kafkas.split()[2]) if kafkas.startswith("| offset: ") else None
        if offset in OURS:
            metadata = kafkas.partition(" key: ")[0]
            assert ours == f"{metadata} key: {OURS[offset]}"
        else:
            assert ours == kafkas
    # Exit 1, and a line on stderr for each record that is unreadable or that our coordinator
    # would not load (12: state 9; 23, 30: trailing bytes; 24: not UTF-8), none for the others.
    assert code == 1
    flagged = [int(line.split(": offset ")[1].split(":")[0]) for line in err]
    assert flagged == [12, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30, 31, 32, 35, 36, 37, 38]
    assert err[0] == (
        f"{log}: offset 12: Kafka reads it, our group coordinator would not load it: corrupt "
        "__consumer_offsets record value at byte 10: expected a member state code: 0 (STABLE), "
        "1 (UNREVOKED_PARTITIONS), 2 (UNRELEASED_PARTITIONS), 127 (UNKNOWN), found 9"
    )
    assert err[1].startswith(f"{log}: offset 18: unreadable: Could not read record with version 4")


def test_a_record_without_a_key_is_said_and_the_dump_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, value = encode_key(GroupMetadataKey("g")), encode_value(GroupMetadataValue(3))
    records = [NewRecord(key, value, 1), NewRecord(None, value, 2), NewRecord(key, None, 3)]
    log = write_segment(tmp_path, [build_batch(records)])
    code, out, err = dump(capsys, "--offsets-decoder", "--files", str(log))
    assert code == 1
    # Kafka's tool stops here with this exception; ours says it and reads on.
    assert err == [
        f"{log}: offset 1: Failed to decode message at offset 1 using the specified decoder "
        "(message had a missing key)"
    ]
    assert (
        out[4] == "| offset: 1 CreateTime: 2 keySize: -1 valueSize: 7 sequence: -1 headerKeys: []"
    )
    assert out[5].endswith('key: {"type":"3","data":{"groupId":"g"}} payload: <DELETE>')


def test_decode_record_never_raises_on_any_prefix_of_a_record() -> None:
    # Every cut of every edge case is either printed or named as unreadable, never an exception.
    for key, value in EDGE_CASES:
        for cut in range(len(key) + 1):
            assert decode_record(0, key[:cut], value).key
        if value is not None:
            for cut in range(len(value) + 1):
                assert decode_record(0, key, value[:cut]).key


def test_json_strings_are_escaped_as_jackson_escapes_them() -> None:
    assert (
        to_json('"\\\b\t\n\f\r\x00\x1f\x7f/\u2028é')
        == '"\\"\\\\\\b\\t\\n\\f\\r\\u0000\\u001F\x7f/\u2028é"'
    )
    assert to_json({"a": [1, None, {"b": "c"}]}) == '{"a":[1,null,{"b":"c"}]}'


# -- every record type Kafka 4.4 knows, from its schemas ------------------------------------------


def _encode_field(field: Field, value: Any, version: int, flexible: bool) -> bytes:
    if isinstance(field.kind, Struct) and field.nullable:
        if field.tag is not None:
            marker = uvarint(0 if value is None else 1)
        else:
            marker = struct.pack(">b", -1 if value is None else 1)
        if value is None:
            return marker
        return marker + _encode(field.kind, value, version, flexible)
    return _encode(field.kind, value, version, flexible)


def _encode(kind: Kind, value: Any, version: int, flexible: bool) -> bytes:
    """Kafka's bytes of ``value`` (as its JSON prints it) for a field of this kind."""
    if isinstance(kind, Struct):
        out = b"".join(
            _encode_field(f, value[f.name], version, flexible)
            for f in kind.fields
            if f.tag is None and version in f.versions
        )
        if flexible:
            tags = [
                (f.tag, _encode_field(f, value[f.name], version, flexible))
                for f in kind.fields
                if f.tag is not None and f.name in value
            ]
            out += tagged_fields(sorted(tags))
        return out
    if isinstance(kind, Array):
        if value is None:
            return uvarint(0) if flexible else _i(-1)
        count = uvarint(len(value) + 1) if flexible else _i(len(value))
        return count + b"".join(_encode(kind.element, v, version, flexible) for v in value)
    formats = {"int8": ">b", "int16": ">h", "uint16": ">H", "int32": ">i", "int64": ">q"}
    if kind in formats:
        return struct.pack(formats[kind], value)
    if kind == "uuid":
        return uuid_from_string(value)
    raw = None if value is None else value.encode() if kind == "string" else b64decode(value)
    if flexible:
        return uvarint(0) if raw is None else uvarint(len(raw) + 1) + raw
    if raw is None:
        return _h(-1) if kind == "string" else _i(-1)
    return (_h(len(raw)) if kind == "string" else _i(len(raw))) + raw


def _sample(kind: Kind, version: int, n: Iterator[int], nullable: bool = False) -> Any:
    """A value of every field (tagged ones too, none at its default), some nulls."""
    i = next(n)
    if nullable and i % 4 == 0:
        return None
    if isinstance(kind, Struct):
        return {
            f.name: _sample(f.kind, version, n, f.nullable)
            for f in kind.fields
            if version in f.versions
        }
    if isinstance(kind, Array):
        return [_sample(kind.element, version, n) for _ in range(2)]
    samples = {"int8": i % 100, "int16": -i, "uint16": 60000 + i, "int32": i * 1001}
    if kind in samples:
        return samples[kind]
    if kind == "int64":
        return i * 10**12 + 1
    if kind == "uuid":
        return uuid_to_string(bytes([i % 256]) * 16)
    if kind == "bytes":
        return b64encode(bytes([i % 256, 255, 0])).decode()
    return f"s{i}"


def _subscription(version: int, n: Iterator[int]) -> bytes:
    sample = _sample(CONSUMER_PROTOCOL_SUBSCRIPTION, version, n)
    return _h(version) + _encode(CONSUMER_PROTOCOL_SUBSCRIPTION, sample, version, False)


def _classic_group(version: int, n: Iterator[int]) -> bytes:
    """A classic group of the consumer protocol, its members' subscriptions of each version,
    and bytes that are not a subscription (kept as bytes)."""
    schema = SCHEMAS[2]
    value = _sample(schema.value, version, n)
    value["protocolType"] = "consumer"
    members = [
        {**value["members"][0], "subscription": b64encode(_subscription(v, n)).decode()}
        for v in range(4)
    ]
    assignment = _h(1) + _encode(
        CONSUMER_PROTOCOL_ASSIGNMENT, _sample(CONSUMER_PROTOCOL_ASSIGNMENT, 1, n), 1, False
    )
    members[0]["assignment"] = b64encode(assignment).decode()
    members[1]["subscription"] = b64encode(_h(9) + b"\x00").decode()  # a version Kafka lacks
    members[2]["assignment"] = b64encode(b"\x00").decode()
    value["members"] = members
    flexible = version >= schema.flexible_from
    return _h(version) + _encode(schema.value, value, version, flexible)


def all_types_records() -> list[tuple[bytes, bytes | None]]:
    """Per record type Kafka knows: each value version of a sample, then a tombstone; then
    classic groups of the consumer protocol."""
    n = itertools.count(1)
    records: list[tuple[bytes, bytes | None]] = []
    for record_type, schema in SCHEMAS.items():
        key = _h(record_type) + _encode(schema.key, _sample(schema.key, 0, n), 0, False)
        for version in schema.value_versions:
            value = _sample(schema.value, version, n)
            flexible = version >= schema.flexible_from
            records.append((key, _h(version) + _encode(schema.value, value, version, flexible)))
        records.append((key, None))
    key = _h(2) + string("classic")
    records += [(key, _classic_group(version, n)) for version in SCHEMAS[2].value_versions]
    return records


def test_every_record_type_kafka_knows_prints_as_kafka_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [NewRecord(k, v, 1700000000000 + n) for n, (k, v) in enumerate(all_types_records())]
    log = write_segment(tmp_path, [build_batch(records)])
    code, out, err = dump(capsys, "--offsets-decoder", "--files", str(log))
    assert out == [f"Dumping {log}", *kafka_lines("kafka_4.4_offsets_dump_all_types.txt")]
    assert not any("skipping" in line for line in out)
    # Only one is a record our coordinator would not load: its sampled member state, 42.
    assert code == 1 and [line.split(": offset ")[1].split(":")[0] for line in err] == ["24"]
    assert err[0].endswith("found 42")
