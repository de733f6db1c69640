"""``/v1/acls``: Kafka's DescribeAcls, CreateAcls and DeleteAcls over HTTP.

Writes go through the controller as every admin call does (``_admin``: planned on the
controller's state by the pure plans of ``server/acls.py``, forwarded there from any other
node). Who may call them is ``server/http_security.py``'s table (DESCRIBE or ALTER on the
cluster).
"""

from __future__ import annotations

from aiohttp import web

from client.protocol import INVALID_REQUEST, SECURITY_DISABLED, ApiError
from kraft.records import AclRecord, MetadataRecord
from kraft.state import MetadataState
from server import acls
from server.http_api import _admin, _json_object
from server.http_records import node_of
from server.http_util import json_response

# Kafka answers SECURITY_DISABLED ("No Authorizer is configured.") to every ACL call of a
# cluster without an authorizer: ACLs that nothing enforces would only mislead.
_NO_AUTHORIZER = (
    "No Authorizer is configured: set authorizer.class.name="
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer on every node to use ACLs"
)


def _require_authorizer(request: web.Request) -> None:
    if not node_of(request).config.authorizer_enabled:
        raise ApiError(SECURITY_DISABLED, _NO_AUTHORIZER)


async def describe_acls(request: web.Request) -> web.Response:
    """``GET /v1/acls?resource_type=TOPIC&...``: the ACLs the filter matches."""
    _require_authorizer(request)
    node = node_of(request)
    node.require_ready()
    acl_filter = acls.AclFilter.from_query(request.query)
    found = acls.list_acls(node.quorum.snapshot_state(), acl_filter)
    return json_response({"acls": [acls.acl_json(a) for a in found]})


async def create_acls(request: web.Request) -> web.Response:
    """``POST /v1/acls`` ``{"acls": [...]}``: creates them all or none; answers every ACL named
    (201), with its id, those that existed already included."""
    _require_authorizer(request)
    node = node_of(request)
    body = await _json_object(request, {"acls"}, {"acls"})
    named: list[AclRecord] = []

    def plan(state: MetadataState) -> list[MetadataRecord]:
        records, acl_list = acls.plan_create_acls(state, body["acls"], node.rng)
        named[:] = acl_list
        return list(records)

    forwarded = await _admin(request, body, plan)
    return forwarded or json_response({"acls": [acls.acl_json(a) for a in named]}, 201)


async def delete_acls(request: web.Request) -> web.Response:
    """``DELETE /v1/acls?...``: removes the ACLs the filter matches and answers them. At least
    one filter parameter is required (``resource_type=ANY`` for every ACL), so a bare DELETE
    cannot wipe them by mistake."""
    _require_authorizer(request)
    if not request.query:
        raise ApiError(
            INVALID_REQUEST,
            "give at least one filter as a query parameter (resource_type=ANY removes every ACL)",
        )
    acl_filter = acls.AclFilter.from_query(request.query)
    removed: list[AclRecord] = []

    def plan(state: MetadataState) -> list[MetadataRecord]:
        records, acl_list = acls.plan_delete_acls(state, acl_filter)
        removed[:] = acl_list
        return list(records)

    forwarded = await _admin(request, None, plan)
    return forwarded or json_response({"acls": [acls.acl_json(a) for a in removed]})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/acls", describe_acls)
    router.add_post("/v1/acls", create_acls)
    router.add_delete("/v1/acls", delete_acls)
