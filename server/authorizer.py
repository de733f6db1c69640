"""Kafka's StandardAuthorizer over the ACLs of the metadata log: pure, no I/O.

Rules, as Kafka's (``StandardAuthorizerData``):

1. A super user (``super.users``) may do everything.
2. An ACL matches a request when its principal is the request's or ``User:*``, its host is
   ``*`` (the only host we keep), and its resource pattern covers the resource: LITERAL with
   the same name, LITERAL ``*`` (every resource of the type), or PREFIXED with a prefix of the
   name.
3. A matching DENY for the operation (or for ALL) refuses, whatever else allows: DENY wins.
4. Else a matching ALLOW permits the operation when it names the operation, ALL, or an
   operation that implies it: READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS
   implies DESCRIBE_CONFIGS. Implication works for ALLOW only (a DENY of DESCRIBE does not
   refuse READ).
5. Else, when no ACL at all (of any principal or operation) matches the resource, the answer
   is ``allow.everyone.if.no.acl.found``; otherwise refused.

IDEMPOTENT_WRITE on the cluster is also allowed to a principal that may WRITE some topic
(Kafka 3.0+, KIP-679): :meth:`Authorizer.authorize_any_topic`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kraft.records import WILDCARD, AclRecord

ANONYMOUS = "User:ANONYMOUS"
WILDCARD_PRINCIPAL = "User:*"

# What an ALLOW of the key also allows (Kafka's AclOperation implications).
_IMPLIED_BY: dict[str, frozenset[str]] = {
    "DESCRIBE": frozenset({"READ", "WRITE", "DELETE", "ALTER"}),
    "DESCRIBE_CONFIGS": frozenset({"ALTER_CONFIGS"}),
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # for the node's log and tests: which rule decided

    def __bool__(self) -> bool:
        return self.allowed


def _covers(acl: AclRecord, name: str) -> bool:
    if acl.pattern_type == "PREFIXED":
        return name.startswith(acl.resource_name)
    return acl.resource_name == name or acl.resource_name == WILDCARD


def _allows(acl_operation: str, operation: str) -> bool:
    return acl_operation in ("ALL", operation) or acl_operation in _IMPLIED_BY.get(
        operation, frozenset()
    )


class Authorizer:
    """The decisions for one set of ACLs (build a new one when the ACLs change)."""

    def __init__(
        self,
        acls: Iterable[AclRecord],
        super_users: frozenset[str],
        allow_everyone_if_no_acl_found: bool,
    ) -> None:
        self.super_users = super_users
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found
        self._by_type: dict[str, list[AclRecord]] = {}
        for acl in acls:
            self._by_type.setdefault(acl.resource_type, []).append(acl)

    def authorize(
        self, principal: str, operation: str, resource_type: str, resource_name: str
    ) -> Decision:
        """May ``principal`` do ``operation`` on the resource? (Rules 1-5 above.)"""
        if principal in self.super_users:
            return Decision(True, "super user")
        matching = [a for a in self._by_type.get(resource_type, ()) if _covers(a, resource_name)]
        mine = [a for a in matching if a.principal in (principal, WILDCARD_PRINCIPAL)]
        for acl in mine:
            if acl.permission == "DENY" and acl.operation in ("ALL", operation):
                return Decision(False, f"denied by ACL {acl.acl_id}")
        for acl in mine:
            if acl.permission == "ALLOW" and _allows(acl.operation, operation):
                return Decision(True, f"allowed by ACL {acl.acl_id}")
        if not matching and self.allow_everyone_if_no_acl_found:
            return Decision(True, "no ACL on the resource, allow.everyone.if.no.acl.found")
        return Decision(False, "no ACL allows it")

    def authorize_any_topic(self, principal: str, operation: str) -> Decision:
        """May ``principal`` do ``operation`` on at least one topic? (Kafka's
        authorizeByResourceType: an ALLOW on some topic pattern that no DENY covers whole.)"""
        if principal in self.super_users:
            return Decision(True, "super user")
        mine = [
            a
            for a in self._by_type.get("TOPIC", ())
            if a.principal in (principal, WILDCARD_PRINCIPAL)
        ]
        denies = [a for a in mine if a.permission == "DENY" and a.operation in ("ALL", operation)]

        def denied_whole(allow: AclRecord) -> bool:
            for deny in denies:
                if deny.pattern_type == "LITERAL" and deny.resource_name == WILDCARD:
                    return True
                if deny.pattern_type == "PREFIXED" and allow.resource_name.startswith(
                    deny.resource_name
                ):
                    return True
                if (
                    allow.pattern_type == "LITERAL"
                    and deny.pattern_type == "LITERAL"
                    and deny.resource_name == allow.resource_name
                ):
                    return True
            return False

        for acl in mine:
            if acl.permission == "ALLOW" and _allows(acl.operation, operation):
                if not denied_whole(acl):
                    return Decision(True, f"allowed on some topic by ACL {acl.acl_id}")
        return Decision(False, f"no ACL allows {operation} on any topic")
