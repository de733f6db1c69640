"""DescribeAcls (29), CreateAcls (30) and DeleteAcls (31) on the Kafka listener: Kafka's
``kafka-acls``, the Java AdminClient, librdkafka's and kafka-python's admin clients manage the
ACLs that ``/v1/acls`` and ``kraft-acls`` manage, the ones the authorizer reads
(``server/authorizer.py``). Versions 1 to 3, Kafka 4.4's (it removed v0) and kio's.

Kafka's rules (``AclApis``, ``AclControlManager``, the requests' own checks), and ours:

- Without an authorizer every call answers SECURITY_DISABLED: DescribeAcls in its top-level
  error, the others in every creation's or filter's result.
- DescribeAcls needs DESCRIBE on the cluster, CreateAcls and DeleteAcls ALTER on it (else
  CLUSTER_AUTHORIZATION_FAILED, in the same places). A node not ready yet answers its
  retriable error there instead, before any authorization: its ACLs are not loaded yet.
- The request carries Kafka's enum codes (the tables below). A code Kafka does not know reads
  as UNKNOWN, as Kafka's ``fromCode`` reads it; a request holding the code of UNKNOWN itself
  (0) closes the connection, as Kafka's request parser refuses it.
- CreateAcls: each creation has its own result. A creation is checked on its own, first with
  Kafka's checks and words (an UNKNOWN or ANY type, operation or permission, a pattern type
  other than LITERAL or PREFIXED, an empty name, a cluster not named ``kafka-cluster``), then
  against what our ACLs can hold (below); a refusal is INVALID_REQUEST in that creation's
  result. The valid ones are then written together, as the plan of ``POST /v1/acls``
  (``server/acls.py``), on the controller or forwarded to it as that request: all of them or
  none, as Kafka's controller writes one request's records in one atomic batch. An ACL that
  exists already is a success, not a second copy (Kafka skips duplicates too).
- DeleteAcls: each filter has its own result listing the ACLs it matched and deleted; a filter
  with an UNKNOWN type answers INVALID_REQUEST (Kafka's ``validateFilter``). On the controller
  every filter is planned on one state and written at once (an ACL two filters match is listed
  by both, removed once), as Kafka's controller does. From another node each filter is its
  own ``DELETE /v1/acls`` sent to the controller in order, since that HTTP call takes one
  filter: an ACL two filters match is listed by the first only, and a controller lost between
  two filters fails the later ones alone.
- DescribeAcls answers this node's applied ACLs (as a Kafka broker answers from its
  authorizer's copy), grouped by resource pattern as Kafka's answer is, in a stable order.
- Filters match as Kafka's ``AclBindingFilter`` (``server.acls.AclFilter``).

What our ACL model lacks, refused in the creation's result, never stored half-understood:
the resource types TRANSACTIONAL_ID, DELEGATION_TOKEN and USER, the operations CLUSTER_ACTION,
CREATE_TOKENS, DESCRIBE_TOKENS and TWO_PHASE_COMMIT, a host other than ``*``, a principal that
is not ``User:name``, and the combinations ``kraft.records.AclRecord`` refuses (an operation
that does not apply to the type, an invalid topic name). A filter naming one of them matches
nothing, since no such ACL can exist here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from kio.schema.errors import ErrorCode

from client.protocol import INVALID_REQUEST, ApiError
from kraft.errors import MetadataRecordError
from kraft.records import (
    ACL_OPERATIONS,
    CLUSTER_RESOURCE_NAME,
    WILDCARD,
    AclRecord,
    MetadataRecord,
    RemoveAclRecord,
)
from kraft.state import MetadataState
from server import acls, limits
from server.config import STANDARD_AUTHORIZER
from server.kafka.admin_writes import (
    CLUSTER_DENIED,
    OK,
    Outcome,
    admin_write,
    forward_json,
    readiness,
    response_of,
)
from server.kafka.apis import ApiSpec, RequestContext, authorize
from server.kafka.frames import FrameError
from server.kafka.metadata import ACL_OPERATION_CODES
from server.node import Node

# Kafka's enums by their wire codes (org.apache.kafka.common.resource.ResourceType,
# PatternType, org.apache.kafka.common.acl.AclOperation, AclPermissionType of Kafka 4.4).
RESOURCE_TYPE_CODES: dict[str, int] = {
    "UNKNOWN": 0,
    "ANY": 1,
    "TOPIC": 2,
    "GROUP": 3,
    "CLUSTER": 4,
    "TRANSACTIONAL_ID": 5,
    "DELEGATION_TOKEN": 6,
    "USER": 7,
}
PATTERN_TYPE_CODES: dict[str, int] = {
    "UNKNOWN": 0,
    "ANY": 1,
    "MATCH": 2,
    "LITERAL": 3,
    "PREFIXED": 4,
}
OPERATION_CODES: dict[str, int] = {
    "UNKNOWN": 0,
    "ANY": 1,
    "ALL": 2,
    **ACL_OPERATION_CODES,  # READ (3) to IDEMPOTENT_WRITE (12)
    "CREATE_TOKENS": 13,
    "DESCRIBE_TOKENS": 14,
    "TWO_PHASE_COMMIT": 15,
}
PERMISSION_CODES: dict[str, int] = {"UNKNOWN": 0, "ANY": 1, "DENY": 2, "ALLOW": 3}
UNKNOWN_CODE = 0


def _by_code(codes: Mapping[str, int]) -> dict[int, str]:
    return {code: name for name, code in codes.items()}


RESOURCE_TYPE_NAMES = _by_code(RESOURCE_TYPE_CODES)
PATTERN_TYPE_NAMES = _by_code(PATTERN_TYPE_CODES)
OPERATION_NAMES = _by_code(OPERATION_CODES)
PERMISSION_NAMES = _by_code(PERMISSION_CODES)

# AclRecord checks its fields when made; a creation is checked as one before it is planned
# (its real id is drawn by the controller's plan). A valid id, never written.
_PROBE_ACL_ID = "AAAAAAAAAAAAAAAAAAAAAQ"

_ENABLE = f"set authorizer.class.name={STANDARD_AUTHORIZER} on every node to use ACLs"
# Kafka's words (AclApis), and how to turn the authorizer on.
DESCRIBE_DISABLED = Outcome(
    ErrorCode.security_disabled, f"No Authorizer is configured on the broker: {_ENABLE}"
)
CHANGE_DISABLED = Outcome(ErrorCode.security_disabled, f"No Authorizer is configured: {_ENABLE}")


def name_of(names: Mapping[int, str], code: int) -> str:
    """Kafka's name of an enum code (``names``: one of the ``*_NAMES`` tables); UNKNOWN for a
    code the enum does not have, as Kafka's ``fromCode`` reads it."""
    return names.get(int(code), "UNKNOWN")


@dataclass(frozen=True)
class Binding:
    """Kafka's AclBinding as a CreateAcls creation names it: the enums by Kafka's names."""

    resource_type: str
    resource_name: str
    pattern_type: str
    principal: str
    host: str
    operation: str
    permission: str

    @classmethod
    def of_creation(cls, creation: Any) -> Binding:
        """From a kio ``AclCreation`` (any version)."""
        return cls(
            name_of(RESOURCE_TYPE_NAMES, creation.resource_type),
            creation.resource_name,
            name_of(PATTERN_TYPE_NAMES, creation.resource_pattern_type),
            creation.principal,
            creation.host,
            name_of(OPERATION_NAMES, creation.operation),
            name_of(PERMISSION_NAMES, creation.permission_type),
        )


def _invalid(message: str) -> ApiError:
    return ApiError(INVALID_REQUEST, message)


def creation_fields(binding: Binding) -> dict[str, str]:
    """The ACL a creation asks for, as ``POST /v1/acls`` takes it; raises INVALID_REQUEST
    (ApiError) naming what Kafka or our ACL model refuses (module docstring)."""
    # Kafka's controller (AclControlManager.validateNewAcl), in its order and words.
    if binding.resource_type in ("UNKNOWN", "ANY"):
        raise _invalid(f"Invalid resourceType {binding.resource_type}")
    if binding.pattern_type not in acls.PATTERN_TYPES:
        raise _invalid(f"Invalid patternType {binding.pattern_type}")
    if binding.operation in ("UNKNOWN", "ANY"):
        raise _invalid(f"Invalid operation {binding.operation}")
    if binding.permission not in acls.PERMISSIONS:
        raise _invalid(f"Invalid permissionType {binding.permission}")
    # Kafka's broker (AclApis.handleCreateAcls).
    if binding.resource_type == "CLUSTER" and binding.resource_name != CLUSTER_RESOURCE_NAME:
        raise _invalid(f"The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}")
    if not binding.resource_name:
        raise _invalid("Invalid empty resource name")
    # What our ACLs hold: Kafka would store these, our authorizer would not read them right.
    if binding.resource_type not in acls.RESOURCE_TYPES:
        raise _invalid(
            f"resource type {binding.resource_type} is not supported here: ACLs here are on "
            f"{', '.join(acls.RESOURCE_TYPES)} resources only"
        )
    if binding.operation not in ACL_OPERATIONS:
        raise _invalid(
            f"operation {binding.operation} is not supported here: the authorizer here checks "
            f"{', '.join(ACL_OPERATIONS)}"
        )
    if binding.host != WILDCARD:
        raise _invalid(
            f"host {binding.host!r} is not supported here: only * (ACLs here apply from every host)"
        )
    fields = acls.parse_acl(
        {
            "resource_type": binding.resource_type,
            "resource_name": binding.resource_name,
            "pattern_type": binding.pattern_type,
            "principal": binding.principal,
            "host": binding.host,
            "operation": binding.operation,
            "permission": binding.permission,
        }
    )
    try:
        AclRecord(acl_id=_PROBE_ACL_ID, **fields)  # type: ignore[arg-type]
    except MetadataRecordError as e:
        raise _invalid(str(e).removeprefix("AclRecord: ")) from None
    return fields


def acl_filter_of(entry: Any) -> acls.AclFilter | Outcome:
    """The filter of a DescribeAcls request or a DeleteAcls filter (kio entities with the same
    field names), or Kafka's INVALID_REQUEST for an UNKNOWN type (``validateFilter``)."""
    resource_type = name_of(RESOURCE_TYPE_NAMES, entry.resource_type_filter)
    pattern_type = name_of(PATTERN_TYPE_NAMES, entry.pattern_type_filter)
    operation = name_of(OPERATION_NAMES, entry.operation)
    permission = name_of(PERMISSION_NAMES, entry.permission_type)
    if "UNKNOWN" in (resource_type, pattern_type):
        return Outcome(ErrorCode.invalid_request, "Unknown patternFilter.")
    if "UNKNOWN" in (operation, permission):
        return Outcome(ErrorCode.invalid_request, "Unknown entryFilter.")
    return acls.AclFilter(
        resource_type=None if resource_type == "ANY" else resource_type,
        resource_name=entry.resource_name_filter,
        pattern_type=pattern_type,
        principal=entry.principal_filter,
        host=entry.host_filter,
        operation=None if operation == "ANY" else operation,
        permission=None if permission == "ANY" else permission,
    )


def refuse_unknown_codes(what: str, codes: Iterable[tuple[int, int, int, int]]) -> None:
    """Raises FrameError (the connection closes) when an entry holds the code of UNKNOWN (0) as
    its resource type, pattern type, operation or permission, as Kafka's request parser refuses
    it (``DescribeAclsRequest.normalizeAndValidate`` and its kin)."""
    for entry in codes:
        if UNKNOWN_CODE in (int(code) for code in entry):
            raise FrameError(f"{what} holds UNKNOWN (code 0) elements, which Kafka refuses")


def filter_query(acl_filter: acls.AclFilter) -> dict[str, str] | None:
    """The query parameters of ``DELETE /v1/acls`` that say the filter; None when the filter
    names a type, operation or pattern type our ACLs never have (it matches nothing)."""
    named = {
        "resource_type": (acl_filter.resource_type, acls.RESOURCE_TYPES),
        "operation": (acl_filter.operation, ACL_OPERATIONS),
        "permission": (acl_filter.permission, acls.PERMISSIONS),
        "pattern_type": (acl_filter.pattern_type, acls.FILTER_PATTERN_TYPES),
    }
    query: dict[str, str] = {}
    for field, (value, choices) in named.items():
        if value is None:
            query[field] = "ANY"
        elif value in choices:
            query[field] = value
        else:
            return None
    for field, text in (
        ("resource_name", acl_filter.resource_name),
        ("principal", acl_filter.principal),
        ("host", acl_filter.host),
    ):
        if text is not None:
            query[field] = text
    return query


def matching_acl(acl: Mapping[str, Any]) -> dict[str, Any]:
    """A DeleteAcls matching ACL (deleted: no error) from an ACL in the API's JSON."""
    return {
        "error_code": ErrorCode.none,
        "error_message": None,
        "resource_type": RESOURCE_TYPE_CODES[acl["resource_type"]],
        "resource_name": acl["resource_name"],
        "pattern_type": PATTERN_TYPE_CODES[acl["pattern_type"]],
        "principal": acl["principal"],
        "host": acl["host"],
        "operation": OPERATION_CODES[acl["operation"]],
        "permission_type": PERMISSION_CODES[acl["permission"]],
    }


def describe_resources(found: Iterable[AclRecord]) -> list[dict[str, Any]]:
    """DescribeAcls' resources: one per resource pattern (type, name, pattern type), each
    with its ACLs, in the order first met."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for acl in found:
        key = (acl.resource_type, acl.resource_name, acl.pattern_type)
        groups.setdefault(key, []).append(
            {
                "principal": acl.principal,
                "host": acl.host,
                "operation": OPERATION_CODES[acl.operation],
                "permission_type": PERMISSION_CODES[acl.permission],
            }
        )
    return [
        {
            "resource_type": RESOURCE_TYPE_CODES[resource_type],
            "resource_name": name,
            "pattern_type": PATTERN_TYPE_CODES[pattern_type],
            "acls": entries,
        }
        for (resource_type, name, pattern_type), entries in groups.items()
    ]


def plan_delete_filters(
    state: MetadataState, filters: Sequence[acls.AclFilter]
) -> tuple[list[RemoveAclRecord], list[list[AclRecord]]]:
    """The records that remove every ACL some filter matches (each once), and each filter's
    matches (Kafka's AclControlManager.deleteAcls: one state, one atomic batch)."""
    removed: dict[str, None] = {}
    per_filter: list[list[AclRecord]] = []
    for acl_filter in filters:
        found = acls.list_acls(state, acl_filter)
        per_filter.append(found)
        for acl in found:
            removed.setdefault(acl.acl_id)
    return [RemoveAclRecord(acl_id) for acl_id in removed], per_filter


def _refusal(ctx: RequestContext, operation: str, disabled: Outcome) -> Outcome | None:
    """SECURITY_DISABLED without an authorizer; the retriable error of a node that is not
    ready (its ACLs are not loaded yet: an authorization now would refuse wrongly, and no
    client retries CLUSTER_AUTHORIZATION_FAILED); CLUSTER_AUTHORIZATION_FAILED without
    ``operation`` on the cluster; else None."""
    if not ctx.node.config.authorizer_enabled:
        return disabled
    ready = readiness(ctx.node)
    if ready != OK:
        return ready
    if not authorize(ctx, operation, "CLUSTER", CLUSTER_RESOURCE_NAME):
        return CLUSTER_DENIED
    return None


def _codes_of_filter(entry: Any) -> tuple[int, int, int, int]:
    return (
        entry.resource_type_filter,
        entry.pattern_type_filter,
        entry.operation,
        entry.permission_type,
    )


# -- DescribeAcls ---------------------------------------------------------------------------


async def describe_acls(ctx: RequestContext, request: Any) -> Any:
    """DescribeAcls (key 29): the ACLs the request's filter matches."""
    refuse_unknown_codes("a DescribeAcls request", [_codes_of_filter(request)])
    refusal = _refusal(ctx, "DESCRIBE", DESCRIBE_DISABLED)
    if refusal is not None:
        return response_of(ctx, {**refusal.fields, "resources": []})
    acl_filter = acl_filter_of(request)
    if isinstance(acl_filter, Outcome):
        # Kafka's broker asks its authorizer, which matches nothing with such a filter.
        return response_of(ctx, {**OK.fields, "resources": []})
    found = acls.list_acls(ctx.node.quorum.snapshot_state(), acl_filter)
    return response_of(ctx, {**OK.fields, "resources": describe_resources(found)})


# -- CreateAcls -----------------------------------------------------------------------------


async def _write_creations(node: Node, valid: list[dict[str, str]]) -> None:
    def plan(state: MetadataState) -> list[MetadataRecord]:
        records, _ = acls.plan_create_acls(state, valid, node.rng)
        return list(records)

    await admin_write(
        node, plan, False, lambda: forward_json(node, "POST", "/v1/acls", {"acls": valid})
    )


async def create_acls(ctx: RequestContext, request: Any) -> Any:
    """CreateAcls (key 30): each creation checked on its own, the valid ones written at once."""
    creations = request.creations
    refuse_unknown_codes(
        "a CreateAcls request",
        [
            (c.resource_type, c.resource_pattern_type, c.operation, c.permission_type)
            for c in creations
        ],
    )
    refusal = _refusal(ctx, "ALTER", CHANGE_DISABLED)
    if refusal is None and len(creations) > limits.ACLS_PER_REQUEST_MAX:
        refusal = Outcome(
            ErrorCode.invalid_request,
            f"a request creates at most {limits.ACLS_PER_REQUEST_MAX} ACLs, got {len(creations)}",
        )
    if refusal is not None:
        return response_of(ctx, {"results": [refusal.fields] * len(creations)})
    checked: list[Outcome | None] = []  # None: valid, its outcome is the write's
    valid: list[dict[str, str]] = []
    for creation in creations:
        try:
            valid.append(creation_fields(Binding.of_creation(creation)))
        except ApiError as e:
            checked.append(Outcome.of(e))
        else:
            checked.append(None)
    written = OK
    if valid:
        try:
            await _write_creations(ctx.node, valid)
        except ApiError as e:
            written = Outcome.of(e)
    results = [(written if outcome is None else outcome).fields for outcome in checked]
    return response_of(ctx, {"results": results})


# -- DeleteAcls -----------------------------------------------------------------------------


async def _delete_matching(
    node: Node, filters: list[acls.AclFilter]
) -> list[Outcome | list[dict[str, Any]]]:
    """Each filter's deleted ACLs (as the API's JSON), or the outcome of its failed delete."""
    found: list[list[AclRecord]] = []

    def plan(state: MetadataState) -> list[MetadataRecord]:
        records, per_filter = plan_delete_filters(state, filters)
        found[:] = per_filter
        return list(records)

    async def forward() -> list[Outcome | list[dict[str, Any]]]:
        answers: list[Outcome | list[dict[str, Any]]] = []
        for acl_filter in filters:
            query = filter_query(acl_filter)
            if query is None:
                answers.append([])
                continue
            try:
                answer = await forward_json(node, "DELETE", f"/v1/acls?{urlencode(query)}", None)
            except ApiError as e:
                answers.append(Outcome.of(e))
                continue
            answers.append(list(answer["acls"]))
        return answers

    _, forwarded = await admin_write(node, plan, False, forward)
    if forwarded is not None:
        result: list[Outcome | list[dict[str, Any]]] = forwarded
        return result
    return [[acls.acl_json(a) for a in matched] for matched in found]


async def delete_acls(ctx: RequestContext, request: Any) -> Any:
    """DeleteAcls (key 31): the ACLs each filter matches are deleted and listed."""
    filters = request.filters
    refuse_unknown_codes("a DeleteAcls request", [_codes_of_filter(f) for f in filters])
    refusal = _refusal(ctx, "ALTER", CHANGE_DISABLED)
    if refusal is None and len(filters) > limits.ACLS_PER_REQUEST_MAX:
        # As CreateAcls: each filter is matched against every ACL on the event loop, and one
        # from a follower is a forwarded DELETE of its own.
        refusal = Outcome(
            ErrorCode.invalid_request,
            f"a request deletes with at most {limits.ACLS_PER_REQUEST_MAX} filters, "
            f"got {len(filters)}",
        )
    if refusal is not None:
        failed = {**refusal.fields, "matching_acls": []}
        return response_of(ctx, {"filter_results": [failed] * len(filters)})
    parsed = [acl_filter_of(f) for f in filters]
    to_delete = [f for f in parsed if isinstance(f, acls.AclFilter)]
    outcomes: list[Outcome | list[dict[str, Any]]] = []
    if to_delete:
        try:
            outcomes = await _delete_matching(ctx.node, to_delete)
        except ApiError as e:
            outcomes = [Outcome.of(e)] * len(to_delete)
    deleted = iter(outcomes)
    results: list[dict[str, Any]] = []
    for acl_filter in parsed:
        outcome = acl_filter if isinstance(acl_filter, Outcome) else next(deleted)
        if isinstance(outcome, Outcome):
            results.append({**outcome.fields, "matching_acls": []})
        else:
            matching = [matching_acl(a) for a in outcome]
            results.append({**OK.fields, "matching_acls": matching})
    return response_of(ctx, {"filter_results": results})


# The ACL APIs with the versions we answer: Kafka 4.4's (v1-v3), which are kio's.
ACL_APIS: tuple[ApiSpec, ...] = (
    ApiSpec(29, 1, 3, describe_acls),
    ApiSpec(30, 1, 3, create_acls),
    ApiSpec(31, 1, 3, delete_acls),
)
