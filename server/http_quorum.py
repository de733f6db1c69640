"""The dynamic controller quorum's admin calls (Kafka's KIP-853 AddRaftVoter/RemoveRaftVoter):

- ``POST /v1/cluster/quorum/voters`` ``{"voter_id", "directory_id", "raft_address"}``: make a
  controller that follows the log as an observer a voter (``kraft-metadata-quorum
  add-controller``);
- ``DELETE /v1/cluster/quorum/voters/{id}?directory_id=D``: remove voter ``id``
  (``kraft-metadata-quorum remove-controller``).

The quorum's leader answers (any other node forwards the call there, as every admin call);
the rules are ``kraft/voters.py``'s, the change ``MetadataQuorum.add_voter`` /
``remove_voter``'s, which return once the change is committed. pysyncobj cannot remove the
leader itself: a leader asked to remove itself hands the leadership to a caught-up voter and
forwards the call to the new leader, which removes it (Kafka's leader resigns once the change
commits; the outcome is the same: the removed node leads no more).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from client.protocol import (
    DUPLICATE_VOTER,
    INVALID_REQUEST,
    JAVA_INT_MAX,
    LEADER_NOT_AVAILABLE,
    REQUEST_TIMED_OUT,
    VOTER_CHANGE_NOT_READY,
    VOTER_NOT_FOUND,
    ApiError,
    ErrorKind,
)
from kraft.errors import NotControllerError, OutcomeUnknownError, QuorumError
from kraft.voters import VoterChangeError
from server.http_api import _json_object
from server.http_records import node_of
from server.http_util import json_response, path_int, query_value

# How long a leader asked to remove itself waits for another voter to take over.
_HANDOVER_WAIT_S = 5.0
_HANDOVER_POLL_S = 0.05
_HANDOVER_RETRY_S = 0.5
_VOTER_CHANGE_TIMEOUT_S = 10.0

_KINDS: dict[str, ErrorKind] = {
    "DUPLICATE_VOTER": DUPLICATE_VOTER,
    "VOTER_NOT_FOUND": VOTER_NOT_FOUND,
    "REQUEST_TIMED_OUT": VOTER_CHANGE_NOT_READY,
    "INVALID_REQUEST": INVALID_REQUEST,
}


def quorum_view(
    status: Mapping[str, Any], node_id: int, cluster_id: str, now_ms: int
) -> dict[str, Any]:
    """``GET /v1/cluster/quorum``'s answer (API.md's quorum shape) from this node's view of
    pysyncobj's status (``MetadataQuorum.status()``) at wall time ``now_ms``; pure, so the
    Kafka listener's DescribeQuorum reads the same figures. Only the leader knows how far each
    follower's log reaches (match_index); what is unknown is None."""
    leader_end = max(
        (v.get("log_end_index") or v.get("match_index") or 0 for v in status["voters"]),
        default=0,
    )
    if status.get("observer"):  # a broker-only node knows only its own end
        leader_end = status.get("commit_index") or 0

    def member(v: Mapping[str, Any]) -> dict[str, Any]:
        end = v["log_end_index"] if v["id"] == node_id else v.get("match_index")
        contact = v.get("last_contact_ms")
        last_fetch = None if contact is None else now_ms - contact
        lag = None if end is None else max(leader_end - end, 0)
        return {
            "id": v["id"],
            "status": v["status"],
            "connected": v.get("connected"),
            "log_end_offset": end,
            "lag": lag,
            "last_fetch_ms": last_fetch,
            "last_caught_up_ms": last_fetch if lag == 0 else None,
        }

    return {
        "cluster_id": cluster_id,
        "leader_id": status.get("leader_id"),
        "term": status.get("term"),
        "commit_index": status.get("commit_index"),
        "node": {
            "id": node_id,
            "applied_index": status["metadata_applied_index"],
            "metadata_digest": status["metadata_digest"],
        },
        "voters": [member(v) for v in status["voters"]],
        # Broker-only nodes that follow the log without voting (Kafka's observers): the leader
        # lists those linked with it, an observer itself.
        "observers": [member(o) for o in status.get("observers", [])],
    }


def _refused(e: VoterChangeError) -> ApiError:
    return ApiError(_KINDS.get(e.kind, INVALID_REQUEST), e.message)


def parse_add_voter(body: dict[str, Any]) -> tuple[int, str, str]:
    """(voter id, directory id, Raft address) of an add body; ApiError INVALID_REQUEST when a
    field is malformed (the body's keys were checked by the caller)."""
    voter_id = body["voter_id"]
    if type(voter_id) is not int or not 0 <= voter_id <= JAVA_INT_MAX:
        raise ApiError(INVALID_REQUEST, f"voter_id must be a node id, got {voter_id!r:.80}")
    directory_id = body["directory_id"]
    if type(directory_id) is not str or not 1 <= len(directory_id) <= 64:
        raise ApiError(
            INVALID_REQUEST, f"directory_id must be a Kafka uuid, got {directory_id!r:.80}"
        )
    address = body["raft_address"]
    host, sep, port = address.rpartition(":") if type(address) is str else ("", "", "")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ApiError(INVALID_REQUEST, f"raft_address must be host:port, got {address!r:.80}")
    return voter_id, directory_id, address


async def add_voter(request: web.Request) -> web.Response:
    """200 ``{"voter_id", "directory_id", "raft_address", "voters"}`` once the new voter is
    committed; 409 DUPLICATE_VOTER; 409 REQUEST_TIMED_OUT (retriable) while the node does not
    follow the log, is not caught up, or another change is in progress."""
    node = node_of(request)
    fields = {"voter_id", "directory_id", "raft_address"}
    body = await _json_object(request, fields, fields)
    voter_id, directory_id, address = parse_add_voter(body)
    node.require_ready()
    if not node.quorum.is_leader():
        return await node.forward(request, body)
    try:
        await node.quorum.add_voter(voter_id, address, directory_id, _VOTER_CHANGE_TIMEOUT_S)
    except VoterChangeError as e:
        raise _refused(e) from None
    except NotControllerError as e:
        raise _leader_changed(e) from None
    except (OutcomeUnknownError, QuorumError) as e:
        raise ApiError(REQUEST_TIMED_OUT, f"the voter change did not commit in time: {e}") from None
    return json_response(
        {
            "voter_id": voter_id,
            "directory_id": directory_id,
            "raft_address": address,
            "voters": _voter_ids(node.quorum),
        }
    )


async def remove_voter(request: web.Request) -> web.Response:
    """204 once voter ``id`` is removed; 404 VOTER_NOT_FOUND for an id that is not a voter or
    a directory id that is not the voter's; 400 INVALID_REQUEST for the last voter."""
    node = node_of(request)
    voter_id = path_int(request, "voter", JAVA_INT_MAX)
    directory_id = query_value(request, "directory_id")
    if directory_id is None:
        # Kafka's RemoveRaftVoter names the voter by id and directory id, both.
        raise ApiError(INVALID_REQUEST, "directory_id is required: the voter's directory id")
    node.require_ready()
    if not node.quorum.is_leader():
        return await node.forward(request, None)
    if voter_id == node.node_id and node.quorum.voter_change_in_progress() is None:
        voters = node.quorum.voter_addresses()
        if len(voters) > 1:
            return await _hand_over_then_forward(request, voter_id, directory_id)
    try:
        await node.quorum.remove_voter(voter_id, directory_id, _VOTER_CHANGE_TIMEOUT_S)
    except VoterChangeError as e:
        raise _refused(e) from None
    except NotControllerError as e:
        raise _leader_changed(e) from None
    except (OutcomeUnknownError, QuorumError) as e:
        raise ApiError(REQUEST_TIMED_OUT, f"the voter change did not commit in time: {e}") from None
    return web.Response(status=204)


async def _hand_over_then_forward(
    request: web.Request, voter_id: int, directory_id: str
) -> web.Response:
    """This leader is the voter to remove: check the request first (nothing moves for a bad
    one), hand the leadership over, and forward the call to the new leader."""
    node = node_of(request)
    directories = node.quorum.read(
        lambda state: {i: c.directory_id for i, c in state.controllers.items()}
    )
    known = directories.get(voter_id)
    if known is not None and directory_id != known:
        raise ApiError(
            VOTER_NOT_FOUND, f"voter {voter_id} has directory id {known}, not {directory_id}"
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _HANDOVER_WAIT_S
    next_ask = loop.time()
    while loop.time() < deadline:
        if node.quorum.is_leader() and loop.time() >= next_ask:
            # Best effort: it needs a voter whose log matches the leader's end; a busy log may
            # move on before the request goes out, so it is asked again until one takes over.
            node.quorum.transfer_leadership()
            next_ask = loop.time() + _HANDOVER_RETRY_S
        await asyncio.sleep(_HANDOVER_POLL_S)
        leader = node.quorum.leader_id()
        if leader is not None and leader != node.node_id and node.quorum.is_ready():
            return await node.forward(request, None)
    raise ApiError(
        VOTER_CHANGE_NOT_READY,
        f"node {voter_id} leads the quorum and could not hand the leadership to another voter "
        f"within {_HANDOVER_WAIT_S} s (none caught up and connected?); retry",
    )


def _leader_changed(e: NotControllerError) -> ApiError:
    return ApiError(
        LEADER_NOT_AVAILABLE,
        f"the metadata leader changed (now: {e.leader_id}); retry",
        {"retry_after_s": 1},
    )


def _voter_ids(quorum: Any) -> list[int | None]:
    return sorted(
        (quorum.voter_id(a) for a in quorum.voter_addresses()),
        key=lambda i: (i is None, i or 0),
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/v1/cluster/quorum/voters", add_voter)
    router.add_delete("/v1/cluster/quorum/voters/{voter}", remove_voter)
