"""ACL bindings and filters as the HTTP API speaks them, and the controller's pure ACL plans.

An ACL in JSON (``POST /v1/acls`` takes a list of them; ``host`` defaults to ``*``,
``pattern_type`` to ``LITERAL``)::

    {"resource_type": "TOPIC", "resource_name": "news", "pattern_type": "LITERAL",
     "principal": "User:alice", "host": "*", "operation": "WRITE", "permission": "ALLOW"}

Answers add the ``acl_id``. A filter (``GET`` and ``DELETE /v1/acls``, as query parameters)
has the same names, each optional (absent or ``ANY`` matches everything); its
``pattern_type`` is ``ANY`` (default), ``LITERAL``, ``PREFIXED`` or ``MATCH`` (Kafka's: every
ACL that applies to the named resource: the literal name, the literal ``*`` and every prefix of
it). Names are case-insensitive in input (``Write``, ``write``) and upper case in answers.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from client.protocol import INVALID_REQUEST, ApiError
from kraft.errors import MetadataRecordError
from kraft.records import (
    ACL_OPERATIONS,
    CLUSTER_RESOURCE_NAME,
    WILDCARD,
    AclRecord,
    RemoveAclRecord,
    validate_topic_id,
)
from kraft.state import MetadataState
from server import limits

RESOURCE_TYPES = ("TOPIC", "GROUP", "CLUSTER")
PATTERN_TYPES = ("LITERAL", "PREFIXED")
FILTER_PATTERN_TYPES = ("ANY", "MATCH", *PATTERN_TYPES)
PERMISSIONS = ("ALLOW", "DENY")
# The fields of an ACL binding, in requests, filters and answers.
BINDING_FIELDS = (
    "resource_type",
    "resource_name",
    "pattern_type",
    "principal",
    "host",
    "operation",
    "permission",
)


def acl_json(acl: AclRecord) -> dict[str, Any]:
    """An ACL as the API answers it."""
    return {k: v for k, v in acl.to_json_dict().items() if k not in ("type", "v")}


def _name(value: Any, field: str, choices: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value.strip().upper().replace("-", "_") not in choices:
        raise ApiError(
            INVALID_REQUEST, f"{where}{field} must be one of {', '.join(choices)}, got {value!r}"
        )
    return value.strip().upper().replace("-", "_")


def parse_acl(raw: Any, where: str = "") -> dict[str, str]:
    """The fields of an AclRecord (all but the id) from an API object; 400 naming the field."""
    if not isinstance(raw, dict):
        raise ApiError(INVALID_REQUEST, f"{where}an ACL is a JSON object")
    unknown = sorted(set(raw) - set(BINDING_FIELDS))
    if unknown:
        raise ApiError(INVALID_REQUEST, f"{where}unknown field(s) {', '.join(unknown)}")
    missing = sorted({"resource_type", "principal", "operation", "permission"} - set(raw))
    if missing:
        raise ApiError(INVALID_REQUEST, f"{where}the ACL needs {', '.join(missing)}")
    resource_type = _name(raw["resource_type"], "resource_type", RESOURCE_TYPES, where)
    default_name = CLUSTER_RESOURCE_NAME if resource_type == "CLUSTER" else None
    name = raw.get("resource_name")
    name = default_name if name is None else name
    if not isinstance(name, str):
        raise ApiError(INVALID_REQUEST, f"{where}resource_name must be a string")
    for field in ("principal", "host"):
        if field in raw and not isinstance(raw[field], str):
            raise ApiError(INVALID_REQUEST, f"{where}{field} must be a string")
    host = raw.get("host", WILDCARD)
    if host != WILDCARD:
        raise ApiError(
            INVALID_REQUEST, f"{where}host: only * is supported (ACLs apply from every host)"
        )
    return {
        "resource_type": resource_type,
        "resource_name": name,
        "pattern_type": _name(
            raw.get("pattern_type", "LITERAL"), "pattern_type", PATTERN_TYPES, where
        ),
        "principal": raw["principal"],
        "host": host,
        "operation": _name(raw["operation"], "operation", ACL_OPERATIONS, where),
        "permission": _name(raw["permission"], "permission", PERMISSIONS, where),
    }


@dataclass(frozen=True)
class AclFilter:
    """Kafka's AclBindingFilter: None matches anything."""

    resource_type: str | None = None
    resource_name: str | None = None
    pattern_type: str = "ANY"
    principal: str | None = None
    host: str | None = None
    operation: str | None = None
    permission: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> AclFilter:
        unknown = sorted(set(query) - set(BINDING_FIELDS))
        if unknown:
            raise ApiError(INVALID_REQUEST, f"unknown query parameter(s) {', '.join(unknown)}")

        def choice(field: str, choices: tuple[str, ...]) -> str | None:
            value = query.get(field)
            if value is None or value.strip().upper() == "ANY":
                return None
            return _name(value, field, choices, "")

        return cls(
            resource_type=choice("resource_type", RESOURCE_TYPES),
            resource_name=query.get("resource_name"),
            pattern_type=_name(
                query.get("pattern_type", "ANY"), "pattern_type", FILTER_PATTERN_TYPES, ""
            ),
            principal=query.get("principal"),
            host=query.get("host"),
            operation=choice("operation", ACL_OPERATIONS),
            permission=choice("permission", PERMISSIONS),
        )

    def matches(self, acl: AclRecord) -> bool:
        if self.resource_type is not None and acl.resource_type != self.resource_type:
            return False
        if self.pattern_type == "MATCH":
            if self.resource_name is not None and not (
                (
                    acl.pattern_type == "LITERAL"
                    and acl.resource_name in (self.resource_name, WILDCARD)
                )
                or (
                    acl.pattern_type == "PREFIXED"
                    and self.resource_name.startswith(acl.resource_name)
                )
            ):
                return False
        else:
            if self.pattern_type != "ANY" and acl.pattern_type != self.pattern_type:
                return False
            if self.resource_name is not None and acl.resource_name != self.resource_name:
                return False
        return all(
            wanted is None or wanted == actual
            for wanted, actual in (
                (self.principal, acl.principal),
                (self.host, acl.host),
                (self.operation, acl.operation),
                (self.permission, acl.permission),
            )
        )


def list_acls(state: MetadataState, acl_filter: AclFilter) -> list[AclRecord]:
    """The ACLs the filter matches, in a stable order (resource, then principal...)."""
    found = [a for a in state.acls.values() if acl_filter.matches(a)]
    return sorted(found, key=lambda a: (*a.binding(), a.acl_id))


def _new_acl_id(rng: random.Random, used: Mapping[str, object]) -> str:
    while True:
        acl_id = base64.urlsafe_b64encode(rng.randbytes(16)).rstrip(b"=").decode("ascii")
        if validate_topic_id(acl_id) is None and acl_id not in used:
            return acl_id


def plan_create_acls(
    state: MetadataState, raw_acls: Any, rng: random.Random
) -> tuple[list[AclRecord], list[AclRecord]]:
    """The records that create the ACLs of a ``POST /v1/acls`` body's ``acls`` list, and every
    ACL the request names (new or already there, as Kafka, which skips duplicates). Every ACL is
    checked before anything is written: one bad ACL refuses the whole request (400)."""
    if not isinstance(raw_acls, list) or not 1 <= len(raw_acls) <= limits.ACLS_PER_REQUEST_MAX:
        raise ApiError(
            INVALID_REQUEST,
            f'give "acls": a list of 1 to {limits.ACLS_PER_REQUEST_MAX} ACL objects',
        )
    existing = {a.binding(): a for a in state.acls.values()}
    used: dict[str, object] = dict(state.acls)
    records: list[AclRecord] = []
    named: list[AclRecord] = []
    for position, raw in enumerate(raw_acls):
        fields = parse_acl(raw, f"acls[{position}]: ")
        acl_id = _new_acl_id(rng, used)
        try:
            acl = AclRecord(acl_id=acl_id, **fields)  # type: ignore[arg-type]
        except MetadataRecordError as e:
            message = str(e).removeprefix("AclRecord: ")
            raise ApiError(INVALID_REQUEST, f"acls[{position}]: {message}") from None
        same = existing.get(acl.binding())
        if same is not None:
            named.append(same)
            continue
        used[acl_id] = acl
        existing[acl.binding()] = acl
        records.append(acl)
        named.append(acl)
    return records, named


def plan_delete_acls(
    state: MetadataState, acl_filter: AclFilter
) -> tuple[list[RemoveAclRecord], list[AclRecord]]:
    """The records that remove every ACL the filter matches, and those ACLs."""
    removed = list_acls(state, acl_filter)
    return [RemoveAclRecord(a.acl_id) for a in removed], removed
