"""ACLs in the metadata log: records round-trip, any ACL-shaped JSON parses or raises the one
error, and random scripts of creations and removals keep the state's rules and its snapshot."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kraft.errors import IllegalRecordError, MetadataRecordError
from kraft.records import AclRecord, MetadataRecord, RemoveAclRecord, decode, encode
from kraft.state import MetadataState
from server.acls import BINDING_FIELDS
from server.authorizer import Authorizer

SETTINGS = settings(max_examples=150, deadline=None)
IDS = ["x5Ujx2PtQ1C2rkC8-XNMZA", "AQIDBAUGBwgJCgsMDQ4PEA", "Q2rkC8-XNMZAx5Ujx2PtQA"]
OPERATIONS = ["ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE"]


@st.composite
def acl_records(draw: st.DrawFn) -> AclRecord:
    pattern = draw(st.sampled_from(["LITERAL", "PREFIXED"]))
    names = ["news", "logs.", "n"] + (["*"] if pattern == "LITERAL" else [])
    fields: dict[str, Any] = {
        "acl_id": draw(st.sampled_from(IDS)),
        "resource_type": "TOPIC",
        "resource_name": draw(st.sampled_from(names)),
        "pattern_type": pattern,
        "principal": draw(st.sampled_from(["User:alice", "User:bob", "User:*"])),
        "host": "*",
        "operation": draw(st.sampled_from(OPERATIONS)),
        "permission": draw(st.sampled_from(["ALLOW", "DENY"])),
    }
    return AclRecord(**fields)


records: st.SearchStrategy[MetadataRecord] = st.one_of(
    acl_records(), st.sampled_from(IDS).map(RemoveAclRecord)
)


@SETTINGS
@given(st.lists(records, min_size=1, max_size=20))
def test_acl_records_round_trip(batch: list[MetadataRecord]) -> None:
    assert decode(encode(batch)) == batch


FIELD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    # What JSON can carry into a record: orjson reads and writes 64-bit integers.
    st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1),
    st.text(max_size=8),
    st.sampled_from(["TOPIC", "GROUP", "CLUSTER", "LITERAL", "PREFIXED", "*", "User:a"]),
    st.sampled_from(IDS + ["kafka-cluster", "ALLOW", "DENY", "READ", "ALL"]),
)
ACL_FIELDS = ["acl_id", *BINDING_FIELDS]


@SETTINGS
@given(st.dictionaries(st.sampled_from([*ACL_FIELDS, "other"]), FIELD_VALUES))
def test_any_acl_shaped_json_parses_or_raises_the_one_error(fields: dict[str, Any]) -> None:
    data = orjson.dumps({"v": 1, "records": [{"type": "acl", "v": 1, **fields}]})
    try:
        [record] = decode(data)
    except MetadataRecordError:
        return
    assert isinstance(record, AclRecord)
    assert decode(encode([record])) == [record]


@SETTINGS
@given(st.lists(records, max_size=40))
def test_scripts_keep_one_acl_per_id_and_binding_and_the_snapshot(
    script: list[MetadataRecord],
) -> None:
    state = MetadataState()
    for index, record in enumerate(script, 1):
        before = state.to_snapshot()
        try:
            state.apply_entry(index, [record])
        except IllegalRecordError:
            assert state.to_snapshot() == before  # an illegal record changes nothing
    bindings = [a.binding() for a in state.acls.values()]
    assert len(bindings) == len(set(bindings))
    assert all(acl_id == a.acl_id for acl_id, a in state.acls.items())
    again = MetadataState.from_snapshot(state.to_snapshot())
    assert again.acls == state.acls and again.digest() == state.digest()


@SETTINGS
@given(
    st.lists(acl_records(), max_size=8),
    st.sampled_from(["User:alice", "User:bob"]),
    st.sampled_from(OPERATIONS[1:]),
    st.sampled_from(["news", "logs.app", "nothing", "x"]),
)
def test_a_deny_for_the_operation_always_wins(
    acls: list[AclRecord], principal: str, operation: str, topic: str
) -> None:
    authorizer = Authorizer(acls, frozenset(), allow_everyone_if_no_acl_found=True)
    decision = authorizer.authorize(principal, operation, "TOPIC", topic)
    denied = any(
        a.permission == "DENY"
        and a.principal in (principal, "User:*")
        and a.operation in ("ALL", operation)
        and (
            (a.pattern_type == "LITERAL" and a.resource_name in (topic, "*"))
            or (a.pattern_type == "PREFIXED" and topic.startswith(a.resource_name))
        )
        for a in acls
    )
    if denied:
        assert not decision
    # and a super user is never refused
    assert Authorizer(acls, frozenset({principal}), False).authorize(
        principal, operation, "TOPIC", topic
    )
