"""server/kafka/acl_apis.py's pure parts: Kafka's enum codes, a creation read and checked as
Kafka's controller and our ACL model check it, filters matching as Kafka's AclBindingFilter,
the DELETE /v1/acls query a forwarded filter becomes, the delete plan and DescribeAcls'
grouping."""

from __future__ import annotations

import random
from typing import Any

import pytest
from kio.schema.create_acls.v3.request import AclCreation
from kio.schema.delete_acls.v3.request import DeleteAclsFilter
from kio.schema.errors import ErrorCode
from kio.static.primitive import i8

from client.protocol import ApiError
from kraft.records import ACL_OPERATIONS, AclRecord
from kraft.state import MetadataState
from server import acls
from server.kafka import acl_apis as aa
from server.kafka.admin_writes import Outcome
from server.kafka.frames import FrameError
from server.kafka.metadata import ACL_OPERATION_CODES

TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, USER = 2, 3, 4, 5, 7
ANY, MATCH, LITERAL, PREFIXED = 1, 2, 3, 4
OP_ANY, ALL, READ, WRITE, ALTER, DESCRIBE, CLUSTER_ACTION = 1, 2, 3, 4, 7, 8, 9
DENY, ALLOW = 2, 3


def creation(**changes: Any) -> AclCreation:
    fields: dict[str, Any] = {
        "resource_type": i8(TOPIC),
        "resource_name": "news",
        "resource_pattern_type": i8(LITERAL),
        "principal": "User:alice",
        "host": "*",
        "operation": i8(WRITE),
        "permission_type": i8(ALLOW),
    }
    fields.update({k: i8(v) if isinstance(v, int) else v for k, v in changes.items()})
    return AclCreation(**fields)


def delete_filter(**changes: Any) -> DeleteAclsFilter:
    fields: dict[str, Any] = {
        "resource_type_filter": i8(ANY),
        "resource_name_filter": None,
        "pattern_type_filter": i8(ANY),
        "principal_filter": None,
        "host_filter": None,
        "operation": i8(OP_ANY),
        "permission_type": i8(ANY),
    }
    fields.update({k: i8(v) if isinstance(v, int) else v for k, v in changes.items()})
    return DeleteAclsFilter(**fields)


def checked(c: AclCreation) -> dict[str, str]:
    return aa.creation_fields(aa.Binding.of_creation(c))


def refusal(c: AclCreation) -> str:
    with pytest.raises(ApiError) as raised:
        checked(c)
    assert raised.value.kind.name == "INVALID_REQUEST"
    return raised.value.message


def state_with(*raws: dict[str, Any]) -> MetadataState:
    state = MetadataState()
    records, _ = acls.plan_create_acls(state, list(raws), random.Random(1))
    state.apply_entry(1, records)
    return state


def acl(**changes: str) -> dict[str, str]:
    fields = {
        "resource_type": "TOPIC",
        "resource_name": "news",
        "pattern_type": "LITERAL",
        "principal": "User:alice",
        "operation": "WRITE",
        "permission": "ALLOW",
    }
    return {**fields, **changes}


def test_kafkas_enum_codes_cover_our_names_and_agree_with_the_authorized_operations_bits() -> None:
    for name in (*acls.RESOURCE_TYPES, "ANY", "UNKNOWN"):
        assert aa.name_of(aa.RESOURCE_TYPE_NAMES, aa.RESOURCE_TYPE_CODES[name]) == name
    for name in (*ACL_OPERATIONS, "ANY", "UNKNOWN"):
        assert aa.name_of(aa.OPERATION_NAMES, aa.OPERATION_CODES[name]) == name
    for name in acls.FILTER_PATTERN_TYPES:
        assert aa.name_of(aa.PATTERN_TYPE_NAMES, aa.PATTERN_TYPE_CODES[name]) == name
    for name, code in ACL_OPERATION_CODES.items():
        assert aa.OPERATION_CODES[name] == code
    # Codes as Kafka's enums number them.
    assert aa.RESOURCE_TYPE_CODES["TOPIC"] == 2 and aa.RESOURCE_TYPE_CODES["USER"] == 7
    assert aa.PATTERN_TYPE_CODES["PREFIXED"] == 4 and aa.PERMISSION_CODES["ALLOW"] == 3
    assert aa.OPERATION_CODES["IDEMPOTENT_WRITE"] == 12
    assert aa.OPERATION_CODES["TWO_PHASE_COMMIT"] == 15


def test_a_code_kafka_does_not_know_reads_as_unknown() -> None:
    assert aa.name_of(aa.RESOURCE_TYPE_NAMES, 99) == "UNKNOWN"
    assert aa.name_of(aa.OPERATION_NAMES, -3) == "UNKNOWN"


def test_a_valid_creation_becomes_the_fields_post_v1_acls_takes() -> None:
    assert checked(creation()) == {
        "resource_type": "TOPIC",
        "resource_name": "news",
        "pattern_type": "LITERAL",
        "principal": "User:alice",
        "host": "*",
        "operation": "WRITE",
        "permission": "ALLOW",
    }
    prefixed = checked(creation(resource_pattern_type=PREFIXED, resource_name="ne"))
    assert prefixed["pattern_type"] == "PREFIXED"
    cluster = checked(
        creation(resource_type=CLUSTER, resource_name="kafka-cluster", operation=ALTER)
    )
    assert cluster["resource_name"] == "kafka-cluster"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # Kafka's controller's words (AclControlManager.validateNewAcl).
        ({"resource_type": 1}, "Invalid resourceType ANY"),
        ({"resource_type": 99}, "Invalid resourceType UNKNOWN"),
        ({"resource_pattern_type": MATCH}, "Invalid patternType MATCH"),
        ({"resource_pattern_type": ANY}, "Invalid patternType ANY"),
        ({"operation": OP_ANY}, "Invalid operation ANY"),
        ({"permission_type": ANY}, "Invalid permissionType ANY"),
        # Kafka's broker's (AclApis).
        (
            {"resource_type": CLUSTER, "resource_name": "prod", "operation": ALTER},
            "The only valid name for the CLUSTER resource is kafka-cluster",
        ),
        ({"resource_name": ""}, "Invalid empty resource name"),
    ],
)
def test_a_creation_kafka_refuses_is_refused_with_kafkas_words(
    changes: dict[str, Any], message: str
) -> None:
    assert refusal(creation(**changes)) == message


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"resource_type": TRANSACTIONAL_ID}, "resource type TRANSACTIONAL_ID is not supported"),
        ({"resource_type": USER}, "resource type USER is not supported"),
        ({"operation": CLUSTER_ACTION}, "operation CLUSTER_ACTION is not supported"),
        ({"operation": 15}, "operation TWO_PHASE_COMMIT is not supported"),
        ({"host": "10.0.0.1"}, "host '10.0.0.1' is not supported here: only *"),
        ({"principal": "alice"}, "principal must be User:name"),
        ({"principal": "Group:ops"}, "principal must be User:name"),
        ({"resource_type": GROUP, "operation": WRITE}, "WRITE does not apply to a GROUP"),
        ({"resource_name": "no spaces"}, 'Topic name "no spaces" is illegal'),
    ],
)
def test_a_creation_our_acls_cannot_hold_is_refused_naming_what(
    changes: dict[str, Any], words: str
) -> None:
    assert words in refusal(creation(**changes))


def test_a_request_holding_the_unknown_code_closes_the_connection() -> None:
    aa.refuse_unknown_codes("a CreateAcls request", [(2, 3, 4, 3), (99, 3, 4, 3)])
    with pytest.raises(FrameError, match="UNKNOWN"):
        aa.refuse_unknown_codes("a CreateAcls request", [(2, 3, 4, 3), (2, 3, 0, 3)])


def test_a_filter_with_an_unknown_type_is_kafkas_invalid_request() -> None:
    pattern = aa.acl_filter_of(delete_filter(resource_type_filter=42))
    assert pattern == Outcome(ErrorCode.invalid_request, "Unknown patternFilter.")
    assert aa.acl_filter_of(delete_filter(pattern_type_filter=42)) == pattern
    entry = aa.acl_filter_of(delete_filter(operation=42))
    assert entry == Outcome(ErrorCode.invalid_request, "Unknown entryFilter.")
    assert aa.acl_filter_of(delete_filter(permission_type=42)) == entry


def test_an_any_filter_matches_every_acl() -> None:
    state = state_with(acl(), acl(resource_type="GROUP", resource_name="g", operation="READ"))
    everything = aa.acl_filter_of(delete_filter())
    assert isinstance(everything, acls.AclFilter)
    assert len(acls.list_acls(state, everything)) == 2


def names(state: MetadataState, **changes: Any) -> set[tuple[str, str]]:
    acl_filter = aa.acl_filter_of(delete_filter(**changes))
    assert isinstance(acl_filter, acls.AclFilter)
    return {(a.pattern_type, a.resource_name) for a in acls.list_acls(state, acl_filter)}


def test_filters_match_as_kafkas_acl_binding_filter() -> None:
    state = state_with(
        acl(resource_name="news"),
        acl(resource_name="*"),
        acl(resource_name="ne", pattern_type="PREFIXED"),
        acl(resource_name="sport", pattern_type="PREFIXED"),
        acl(resource_name="newsroom"),
    )
    # MATCH: every ACL that applies to the named resource.
    match = names(
        state, resource_type_filter=TOPIC, resource_name_filter="news", pattern_type_filter=MATCH
    )
    assert match == {("LITERAL", "news"), ("LITERAL", "*"), ("PREFIXED", "ne")}
    # ANY with a name: that exact name, of any pattern type.
    assert names(state, resource_name_filter="ne") == {("PREFIXED", "ne")}
    # A pattern type with a name: that pattern.
    assert names(state, resource_name_filter="news", pattern_type_filter=LITERAL) == {
        ("LITERAL", "news")
    }
    assert names(state, resource_name_filter="news", pattern_type_filter=PREFIXED) == set()
    # A type our ACLs never have matches nothing.
    assert names(state, resource_type_filter=TRANSACTIONAL_ID) == set()
    assert names(state, operation=CLUSTER_ACTION) == set()


def test_entry_fields_of_a_filter_match_exactly() -> None:
    state = state_with(
        acl(principal="User:alice"),
        acl(principal="User:bob", permission="DENY"),
        acl(principal="User:bob", operation="READ"),
    )
    bob = names(state, principal_filter="User:bob")
    assert bob == {("LITERAL", "news")}
    acl_filter = aa.acl_filter_of(delete_filter(principal_filter="User:bob", permission_type=DENY))
    assert isinstance(acl_filter, acls.AclFilter)
    assert [a.permission for a in acls.list_acls(state, acl_filter)] == ["DENY"]
    assert names(state, host_filter="10.0.0.1") == set()
    assert len(acls.list_acls(state, aa.acl_filter_of(delete_filter(host_filter="*")))) == 3  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {
            "resource_type_filter": TOPIC,
            "resource_name_filter": "news",
            "pattern_type_filter": MATCH,
        },
        {"principal_filter": "User:bob", "host_filter": "*", "operation": READ},
        {"resource_type_filter": CLUSTER, "permission_type": DENY, "pattern_type_filter": LITERAL},
        {"resource_name_filter": "ANY", "principal_filter": "User:a&b=c"},
    ],
)
def test_a_forwarded_filter_is_the_same_filter_on_the_controller(changes: dict[str, Any]) -> None:
    acl_filter = aa.acl_filter_of(delete_filter(**changes))
    assert isinstance(acl_filter, acls.AclFilter)
    query = aa.filter_query(acl_filter)
    assert query is not None
    assert acls.AclFilter.from_query(query) == acl_filter


def test_a_filter_naming_what_our_acls_never_have_is_not_forwarded() -> None:
    for changes in ({"resource_type_filter": TRANSACTIONAL_ID}, {"operation": CLUSTER_ACTION}):
        acl_filter = aa.acl_filter_of(delete_filter(**changes))
        assert isinstance(acl_filter, acls.AclFilter)
        assert aa.filter_query(acl_filter) is None


def test_the_delete_plan_removes_each_acl_once_and_lists_it_for_every_filter() -> None:
    state = state_with(
        acl(),
        acl(principal="User:bob"),
        acl(resource_type="GROUP", operation="READ", resource_name="g"),
    )
    alice = aa.acl_filter_of(delete_filter(principal_filter="User:alice"))
    topics = aa.acl_filter_of(delete_filter(resource_type_filter=TOPIC))
    none = aa.acl_filter_of(delete_filter(resource_type_filter=CLUSTER))
    assert isinstance(alice, acls.AclFilter) and isinstance(topics, acls.AclFilter)
    assert isinstance(none, acls.AclFilter)
    records, per_filter = aa.plan_delete_filters(state, [alice, topics, none])
    assert [len(found) for found in per_filter] == [2, 2, 0]
    removed = {r.acl_id for r in records}
    assert len(records) == len(removed) == 3
    state.apply_entry(2, records)
    assert not state.acls


def test_describe_groups_acls_by_resource_pattern_with_kafkas_codes() -> None:
    state = state_with(
        acl(),
        acl(principal="User:bob", operation="READ", permission="DENY"),
        acl(resource_name="ne", pattern_type="PREFIXED"),
    )
    resources = aa.describe_resources(acls.list_acls(state, acls.AclFilter()))
    by_pattern = {
        (r["resource_type"], r["resource_name"], r["pattern_type"]): r["acls"] for r in resources
    }
    assert set(by_pattern) == {(TOPIC, "news", LITERAL), (TOPIC, "ne", PREFIXED)}
    assert sorted(by_pattern[(TOPIC, "news", LITERAL)], key=lambda a: a["principal"]) == [
        {"principal": "User:alice", "host": "*", "operation": WRITE, "permission_type": ALLOW},
        {"principal": "User:bob", "host": "*", "operation": READ, "permission_type": DENY},
    ]


def test_a_deleted_acl_is_answered_with_kafkas_codes() -> None:
    record = AclRecord(
        acl_id="AAAAAAAAAAAAAAAAAAAAAg",
        resource_type="CLUSTER",
        resource_name="kafka-cluster",
        pattern_type="LITERAL",
        principal="User:ops",
        host="*",
        operation="IDEMPOTENT_WRITE",
        permission="ALLOW",
    )
    assert aa.matching_acl(acls.acl_json(record)) == {
        "error_code": ErrorCode.none,
        "error_message": None,
        "resource_type": CLUSTER,
        "resource_name": "kafka-cluster",
        "pattern_type": LITERAL,
        "principal": "User:ops",
        "host": "*",
        "operation": 12,
        "permission_type": ALLOW,
    }
