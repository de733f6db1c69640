"""The authorizer's rules (Kafka's StandardAuthorizer), as a table of ACLs and questions."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest

from kraft.records import AclRecord
from server.authorizer import Authorizer

_ids = itertools.count(1)


def acl(spec: str) -> AclRecord:
    """``"ALLOW User:alice WRITE TOPIC LITERAL news"``."""
    permission, principal, operation, resource_type, pattern_type, name = spec.split()
    acl_id = base64.urlsafe_b64encode(next(_ids).to_bytes(16, "big")).rstrip(b"=").decode()
    fields: dict[str, Any] = {
        "acl_id": acl_id,
        "resource_type": resource_type,
        "resource_name": name,
        "pattern_type": pattern_type,
        "principal": principal,
        "host": "*",
        "operation": operation,
        "permission": permission,
    }
    return AclRecord(**fields)


# (ACLs, principal, operation, resource "TYPE name", allowed)
TABLE: list[tuple[list[str], str, str, str, bool]] = [
    # nothing matches: denied (allow.everyone.if.no.acl.found is off)
    ([], "User:alice", "WRITE", "TOPIC news", False),
    (["ALLOW User:alice WRITE TOPIC LITERAL news"], "User:alice", "WRITE", "TOPIC news", True),
    (["ALLOW User:alice WRITE TOPIC LITERAL news"], "User:bob", "WRITE", "TOPIC news", False),
    (["ALLOW User:alice WRITE TOPIC LITERAL news"], "User:alice", "READ", "TOPIC news", False),
    (["ALLOW User:alice WRITE TOPIC LITERAL news"], "User:alice", "WRITE", "TOPIC news2", False),
    (["ALLOW User:alice WRITE TOPIC LITERAL news"], "User:alice", "WRITE", "GROUP news", False),
    # the wildcard principal and the wildcard resource
    (["ALLOW User:* READ TOPIC LITERAL news"], "User:bob", "READ", "TOPIC news", True),
    (["ALLOW User:bob READ TOPIC LITERAL *"], "User:bob", "READ", "TOPIC anything", True),
    # prefixed patterns
    (["ALLOW User:alice WRITE TOPIC PREFIXED news."], "User:alice", "WRITE", "TOPIC news.a", True),
    (["ALLOW User:alice WRITE TOPIC PREFIXED news."], "User:alice", "WRITE", "TOPIC news", False),
    (["ALLOW User:alice WRITE TOPIC PREFIXED news"], "User:alice", "WRITE", "TOPIC news", True),
    # DENY wins over ALLOW, whichever pattern each has
    (
        ["ALLOW User:alice WRITE TOPIC LITERAL news", "DENY User:alice WRITE TOPIC LITERAL news"],
        "User:alice",
        "WRITE",
        "TOPIC news",
        False,
    ),
    (
        ["ALLOW User:alice ALL TOPIC LITERAL news", "DENY User:* WRITE TOPIC PREFIXED n"],
        "User:alice",
        "WRITE",
        "TOPIC news",
        False,
    ),
    (
        ["ALLOW User:alice ALL TOPIC LITERAL news", "DENY User:* WRITE TOPIC PREFIXED n"],
        "User:alice",
        "READ",
        "TOPIC news",
        True,
    ),
    (
        ["ALLOW User:alice READ TOPIC LITERAL news", "DENY User:alice ALL TOPIC LITERAL *"],
        "User:alice",
        "READ",
        "TOPIC news",
        False,
    ),
    (
        ["ALLOW User:alice WRITE TOPIC LITERAL news", "DENY User:bob WRITE TOPIC LITERAL news"],
        "User:alice",
        "WRITE",
        "TOPIC news",
        True,
    ),
    # implied operations: DESCRIBE by READ, WRITE, DELETE, ALTER; DESCRIBE_CONFIGS by ALTER_CONFIGS
    (["ALLOW User:alice READ TOPIC LITERAL news"], "User:alice", "DESCRIBE", "TOPIC news", True),
    (["ALLOW User:alice WRITE TOPIC LITERAL news"], "User:alice", "DESCRIBE", "TOPIC news", True),
    (["ALLOW User:alice DELETE TOPIC LITERAL news"], "User:alice", "DESCRIBE", "TOPIC news", True),
    (["ALLOW User:alice ALTER TOPIC LITERAL news"], "User:alice", "DESCRIBE", "TOPIC news", True),
    (["ALLOW User:alice CREATE TOPIC LITERAL news"], "User:alice", "DESCRIBE", "TOPIC news", False),
    (
        ["ALLOW User:alice ALTER_CONFIGS TOPIC LITERAL news"],
        "User:alice",
        "DESCRIBE_CONFIGS",
        "TOPIC news",
        True,
    ),
    (
        ["ALLOW User:alice DESCRIBE TOPIC LITERAL news"],
        "User:alice",
        "READ",
        "TOPIC news",
        False,
    ),
    (["ALLOW User:alice ALL TOPIC LITERAL news"], "User:alice", "DELETE", "TOPIC news", True),
    # implication is for ALLOW only: a DENY of DESCRIBE does not refuse READ
    (
        ["ALLOW User:alice READ TOPIC LITERAL news", "DENY User:alice DESCRIBE TOPIC LITERAL news"],
        "User:alice",
        "READ",
        "TOPIC news",
        True,
    ),
    (
        ["ALLOW User:alice READ TOPIC LITERAL news", "DENY User:alice DESCRIBE TOPIC LITERAL news"],
        "User:alice",
        "DESCRIBE",
        "TOPIC news",
        False,
    ),
    # super users may do everything, DENY or not
    (["DENY User:admin ALL TOPIC LITERAL *"], "User:admin", "WRITE", "TOPIC news", True),
    ([], "User:admin", "ALTER", "CLUSTER kafka-cluster", True),
    # the cluster resource
    (
        ["ALLOW User:ops ALTER CLUSTER LITERAL kafka-cluster"],
        "User:ops",
        "DESCRIBE",
        "CLUSTER kafka-cluster",
        True,
    ),
    (
        ["ALLOW User:ops CREATE CLUSTER LITERAL kafka-cluster"],
        "User:ops",
        "ALTER",
        "CLUSTER kafka-cluster",
        False,
    ),
]


@pytest.mark.parametrize(("acls", "principal", "operation", "resource", "allowed"), TABLE)
def test_standard_authorizer_rules(
    acls: list[str], principal: str, operation: str, resource: str, allowed: bool
) -> None:
    authorizer = Authorizer([acl(s) for s in acls], frozenset({"User:admin"}), False)
    resource_type, name = resource.split()
    assert bool(authorizer.authorize(principal, operation, resource_type, name)) is allowed


@pytest.mark.parametrize(
    ("acls", "allowed"),
    [
        ([], True),  # no ACL on the resource at all
        (["ALLOW User:bob READ TOPIC LITERAL news"], False),  # an ACL exists, not alice's
        (["ALLOW User:bob READ TOPIC LITERAL other"], True),  # none on this resource
        (["ALLOW User:bob READ TOPIC PREFIXED ne"], False),
        (["DENY User:bob READ TOPIC LITERAL *"], False),
    ],
)
def test_allow_everyone_if_no_acl_found_only_for_resources_without_any_acl(
    acls: list[str], allowed: bool
) -> None:
    authorizer = Authorizer([acl(s) for s in acls], frozenset(), True)
    assert bool(authorizer.authorize("User:alice", "READ", "TOPIC", "news")) is allowed


@pytest.mark.parametrize(
    ("acls", "allowed"),
    [
        ([], False),
        (["ALLOW User:alice WRITE TOPIC LITERAL news"], True),
        (["ALLOW User:alice ALL TOPIC PREFIXED n"], True),
        (["ALLOW User:alice READ TOPIC LITERAL news"], False),
        (["ALLOW User:bob WRITE TOPIC LITERAL news"], False),
        (
            ["ALLOW User:alice WRITE TOPIC LITERAL news", "DENY User:alice WRITE TOPIC LITERAL *"],
            False,
        ),
        (
            [
                "ALLOW User:alice WRITE TOPIC LITERAL news",
                "DENY User:alice WRITE TOPIC PREFIXED ne",
            ],
            False,
        ),
        (
            ["ALLOW User:alice WRITE TOPIC PREFIXED n", "DENY User:alice WRITE TOPIC LITERAL news"],
            True,  # topics starting with n other than news remain
        ),
        (
            ["ALLOW User:alice WRITE TOPIC LITERAL a", "ALLOW User:alice WRITE TOPIC LITERAL b"]
            + ["DENY User:alice WRITE TOPIC LITERAL a"],
            True,
        ),
    ],
)
def test_write_on_any_topic_implies_idempotent_write(acls: list[str], allowed: bool) -> None:
    authorizer = Authorizer([acl(s) for s in acls], frozenset(), False)
    assert bool(authorizer.authorize_any_topic("User:alice", "WRITE")) is allowed
