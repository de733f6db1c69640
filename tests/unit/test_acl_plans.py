"""The ACL API's pure parts: parsing, filters (Kafka's AclBindingFilter), the controller's
plans, and the table that gives every route of the node its ACL check."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from client.protocol import ApiError
from kraft.records import AclRecord
from kraft.state import MetadataState
from server import acls
from server.config import NodeConfig
from server.http_api import make_app
from server.http_security import RULES
from server.internal_auth import InternalAuth


def raw(**changes: Any) -> dict[str, Any]:
    fields = {
        "resource_type": "TOPIC",
        "resource_name": "news",
        "principal": "User:alice",
        "operation": "WRITE",
        "permission": "ALLOW",
    }
    return {**fields, **changes}


def state_with(*raws: dict[str, Any]) -> MetadataState:
    state = MetadataState()
    records, _ = acls.plan_create_acls(state, list(raws), random.Random(1))
    state.apply_entry(1, records)
    return state


def test_parse_acl_takes_kafkas_names_in_any_case_with_defaults() -> None:
    assert acls.parse_acl(raw(resource_type="topic", operation="Write", permission="allow")) == {
        "resource_type": "TOPIC",
        "resource_name": "news",
        "pattern_type": "LITERAL",
        "principal": "User:alice",
        "host": "*",
        "operation": "WRITE",
        "permission": "ALLOW",
    }
    cluster = acls.parse_acl(raw(resource_type="CLUSTER", resource_name=None, operation="alter"))
    assert cluster["resource_name"] == "kafka-cluster"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (raw(operation="FLY"), "operation must be one of"),
        (raw(resource_type="BROKER"), "resource_type must be one of"),
        (raw(pattern_type="MATCH"), "pattern_type must be one of LITERAL, PREFIXED"),
        (raw(host="10.0.0.1"), "only * is supported"),
        (raw(extra=1), "unknown field(s) extra"),
        ({"resource_type": "TOPIC"}, "needs operation, permission, principal"),
        (raw(resource_name=5), "resource_name must be a string"),
        (raw(resource_name=None), "resource_name must be a string"),
        ("nope", "an ACL is a JSON object"),
    ],
)
def test_parse_acl_refuses_with_a_400_naming_the_field(body: Any, words: str) -> None:
    with pytest.raises(ApiError) as info:
        acls.parse_acl(body, "acls[0]: ")
    assert info.value.status == 400 and words in info.value.message
    assert info.value.message.startswith("acls[0]: ")


def test_plan_create_skips_acls_that_exist_and_answers_them_all() -> None:
    state = state_with(raw())
    records, named = acls.plan_create_acls(
        state, [raw(), raw(operation="READ"), raw(operation="read")], random.Random(2)
    )
    assert [r.operation for r in records] == ["READ"]
    assert [a.operation for a in named] == ["WRITE", "READ", "READ"]
    assert named[0] is next(iter(state.acls.values()))  # the existing one, with its id


def test_plan_create_refuses_the_whole_request_for_one_bad_acl() -> None:
    with pytest.raises(ApiError, match=r"acls\[1\]: .*does not apply to a GROUP"):
        acls.plan_create_acls(
            MetadataState(),
            [raw(), raw(resource_type="GROUP", operation="WRITE")],
            random.Random(3),
        )
    with pytest.raises(ApiError, match="a list of 1 to"):
        acls.plan_create_acls(MetadataState(), [], random.Random(3))


def names(found: list[AclRecord]) -> list[tuple[str, str, str]]:
    return [(a.resource_name, a.pattern_type, a.operation) for a in found]


STATE_ACLS = [
    raw(),
    raw(resource_name="*"),
    raw(resource_name="ne", pattern_type="PREFIXED", operation="READ"),
    raw(resource_name="other", principal="User:bob", permission="DENY"),
    raw(resource_type="GROUP", resource_name="g", operation="READ"),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, 5),
        ({"resource_type": "ANY"}, 5),
        ({"resource_type": "topic"}, 4),
        ({"resource_type": "TOPIC", "resource_name": "news"}, [("news", "LITERAL", "WRITE")]),
        ({"resource_name": "news", "pattern_type": "MATCH"}, 3),  # news, *, ne*
        ({"resource_name": "ne", "pattern_type": "PREFIXED"}, [("ne", "PREFIXED", "READ")]),
        ({"principal": "User:bob"}, [("other", "LITERAL", "WRITE")]),
        ({"permission": "DENY"}, 1),
        ({"operation": "Read"}, 2),
    ],
)
def test_filters_match_as_kafkas(query: dict[str, str], expected: Any) -> None:
    state = state_with(*STATE_ACLS)
    found = acls.list_acls(state, acls.AclFilter.from_query(query))
    if isinstance(expected, int):
        assert len(found) == expected
    else:
        assert names(found) == expected


def test_a_filter_refuses_unknown_parameters_and_values() -> None:
    with pytest.raises(ApiError, match="unknown query parameter"):
        acls.AclFilter.from_query({"topic": "x"})
    with pytest.raises(ApiError, match="pattern_type must be one of"):
        acls.AclFilter.from_query({"pattern_type": "SOME"})


def test_plan_delete_removes_what_the_filter_matches() -> None:
    state = state_with(*STATE_ACLS)
    records, removed = acls.plan_delete_acls(
        state, acls.AclFilter.from_query({"principal": "User:alice", "resource_type": "TOPIC"})
    )
    assert len(records) == len(removed) == 3
    state.apply_entry(2, records)
    assert sorted(a.principal for a in state.acls.values()) == ["User:alice", "User:bob"]


def test_every_route_of_the_node_has_an_authorization_rule() -> None:
    config = NodeConfig.from_properties(
        {
            "node.id": "1",
            "controller.quorum.voters": "1@127.0.0.1:9093",
            "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
        }
    )
    node = SimpleNamespace(config=config, node_id=1, internal_auth=InternalAuth("a-test-secret"))
    app = make_app(node)  # type: ignore[arg-type]
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert routes == set(RULES)
    assert isinstance(app, web.Application)
