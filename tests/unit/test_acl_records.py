"""ACL records (Kafka's AccessControlEntryRecord and its removal) and their state rules."""

from __future__ import annotations

from typing import Any

import pytest

from kraft.errors import IllegalRecordError, MetadataRecordError, MetadataSnapshotError
from kraft.records import AclRecord, NoOpRecord, RemoveAclRecord, decode, encode
from kraft.state import MetadataState

ID1 = "x5Ujx2PtQ1C2rkC8-XNMZA"
ID2 = "AQIDBAUGBwgJCgsMDQ4PEA"


def acl(acl_id: str = ID1, **changes: Any) -> AclRecord:
    fields: dict[str, Any] = {
        "acl_id": acl_id,
        "resource_type": "TOPIC",
        "resource_name": "news",
        "pattern_type": "LITERAL",
        "principal": "User:alice",
        "host": "*",
        "operation": "WRITE",
        "permission": "ALLOW",
    }
    return AclRecord(**(fields | changes))


def test_acl_records_round_trip_through_an_entry() -> None:
    records = [
        acl(),
        acl(ID2, resource_type="GROUP", resource_name="g 1", operation="READ", permission="DENY"),
        acl(resource_type="CLUSTER", resource_name="kafka-cluster", operation="IDEMPOTENT_WRITE"),
        acl(resource_name="news.", pattern_type="PREFIXED", principal="User:*", operation="ALL"),
        acl(resource_name="*"),
        RemoveAclRecord(ID1),
    ]
    assert decode(encode(records)) == records


def test_acl_record_is_the_documented_json() -> None:
    assert acl().to_json_dict() == {
        "type": "acl",
        "v": 1,
        "acl_id": ID1,
        "resource_type": "TOPIC",
        "resource_name": "news",
        "pattern_type": "LITERAL",
        "principal": "User:alice",
        "host": "*",
        "operation": "WRITE",
        "permission": "ALLOW",
    }


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"acl_id": "nope"}, "acl id"),
        ({"resource_type": "BROKER"}, "resource_type"),
        ({"pattern_type": "MATCH"}, "pattern_type"),
        ({"principal": "alice"}, "User:name"),
        ({"principal": "Group:x"}, "User:name"),
        ({"principal": "User:"}, "User:name"),
        ({"host": "10.0.0.1"}, "host"),
        ({"operation": "ANY"}, "operation"),
        ({"permission": "ANY"}, "permission"),
        ({"resource_name": ""}, "empty"),
        ({"resource_name": "bad name"}, "is illegal"),
        ({"resource_name": "bad*", "pattern_type": "PREFIXED"}, "prefix"),
        ({"resource_type": "CLUSTER", "resource_name": "other"}, "kafka-cluster"),
        ({"resource_type": "GROUP", "operation": "WRITE"}, "does not apply to a GROUP"),
        ({"resource_type": "CLUSTER", "resource_name": "kafka-cluster"}, "does not apply"),
        ({"operation": "IDEMPOTENT_WRITE"}, "does not apply to a TOPIC"),
    ],
)
def test_acl_records_refuse_what_kafka_refuses(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(MetadataRecordError, match=words):
        acl(**changes)


def test_remove_acl_needs_a_valid_id() -> None:
    with pytest.raises(MetadataRecordError, match="acl id"):
        RemoveAclRecord("x")


def test_state_adds_and_removes_acls() -> None:
    state = MetadataState()
    state.apply_entry(1, [acl(), acl(ID2, operation="READ")])
    assert sorted(state.acls) == sorted([ID1, ID2])
    assert state.acls[ID1] == acl()
    state.apply_entry(2, [RemoveAclRecord(ID1)])
    assert list(state.acls) == [ID2]


def test_state_refuses_a_second_acl_with_the_same_id_or_binding() -> None:
    state = MetadataState()
    state.apply(acl())
    with pytest.raises(IllegalRecordError, match="an ACL with this id exists"):
        state.apply(acl(operation="READ"))
    with pytest.raises(IllegalRecordError, match="an ACL says the same"):
        state.apply(acl(ID2))
    assert list(state.acls) == [ID1]


def test_removing_an_unknown_acl_is_illegal_and_changes_nothing() -> None:
    state = MetadataState()
    state.apply(acl())
    with pytest.raises(IllegalRecordError, match="no ACL has the id"):
        state.apply_entry(1, [RemoveAclRecord(ID1), RemoveAclRecord(ID2)])
    assert list(state.acls) == [ID1]


def test_snapshot_round_trip_keeps_acls_and_digest() -> None:
    state = MetadataState()
    state.apply_entry(1, [acl(), acl(ID2, principal="User:*", permission="DENY")])
    again = MetadataState.from_snapshot(state.to_snapshot())
    assert again.acls == state.acls
    assert again.digest() == state.digest()


def test_a_state_without_acls_keeps_its_old_snapshot_shape() -> None:
    assert b"acls" not in MetadataState().to_snapshot()
    state = MetadataState()
    state.apply_entry(1, [acl()])
    state.apply_entry(2, [RemoveAclRecord(ID1)])
    plain = MetadataState()
    plain.apply_entry(2, [NoOpRecord()])
    assert state.to_snapshot() == plain.to_snapshot()


def test_a_snapshot_with_a_bad_acl_is_refused() -> None:
    state = MetadataState()
    state.apply(acl())
    data = state.to_snapshot().replace(b'"WRITE"', b'"FLY"')
    with pytest.raises(MetadataSnapshotError):
        MetadataState.from_snapshot(data)
