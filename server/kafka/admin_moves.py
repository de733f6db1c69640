"""The admin APIs of the Kafka listener that move leaders and replicas: ElectLeaders
(``POST /v1/elections``' PREFERRED election; UNCLEAN is needed by no partition with a leader
and refused for the others), AlterPartitionReassignments and ListPartitionReassignments
(``POST`` and ``GET /v1/reassignments``), over the plans of ``server/controller.py``. Each
needs ALTER (moves) or DESCRIBE (the list) on the cluster.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from client.protocol import ApiError
from kraft.records import CLUSTER_RESOURCE_NAME, MetadataRecord
from kraft.state import MetadataState
from server import controller, reassignment
from server.http_api import _ELECTION_ERRORS as ELECTION_ERRORS
from server.http_api import UNCLEAN_ELECTION_REFUSAL
from server.kafka.admin_writes import (
    CLUSTER_DENIED,
    OK,
    Outcome,
    admin_write,
    forward_json,
    readiness,
    response_of,
)
from server.kafka.apis import RequestContext, authorize
from server.node import Node

# -- ElectLeaders ----------------------------------------------------------------------------

PREFERRED_ELECTION, UNCLEAN_ELECTION = 0, 1

# An election's outcome (server/controller.py's, as POST /v1/elections names them) as Kafka's
# per-partition answer.
_ELECTION_OUTCOMES = {
    controller.ELECTED: ErrorCode.none,
    controller.ALREADY_PREFERRED: ErrorCode.election_not_needed,
    controller.PREFERRED_NOT_AVAILABLE: ErrorCode.preferred_leader_not_available,
}


def election_outcome(outcome: str, preferred: int) -> Outcome:
    """One partition's PREFERRED election outcome as Kafka's code and message (HTTP's)."""
    code = _ELECTION_OUTCOMES[outcome]
    if outcome not in ELECTION_ERRORS:
        return Outcome(code)
    return Outcome(code, ELECTION_ERRORS[outcome][1].format(preferred=preferred))


def unclean_outcome(state: MetadataState, topic: str, partition: int) -> Outcome:
    """An UNCLEAN election of one partition: not needed when it has a leader (Kafka's
    answer), else refused (unclean leader election is off here)."""
    found = state.topics.get(topic)
    p = None if found is None else found.partitions.get(partition)
    if p is None:
        return unknown_partition(topic, partition, found is None)
    if p.leader >= 0:
        return Outcome(ErrorCode.election_not_needed)
    return Outcome(ErrorCode.eligible_leaders_not_available, UNCLEAN_ELECTION_REFUSAL)


def unknown_partition(topic: str, partition: int, topic_unknown: bool) -> Outcome:
    """Kafka's ElectLeaders words for a partition it does not have."""
    shown = (
        f"No such topic as {topic}"
        if topic_unknown
        else f"No such partition as {topic}-{partition}"
    )
    return Outcome(ErrorCode.unknown_topic_or_partition, shown)


async def _elect_preferred(
    node: Node, wanted: list[tuple[str, int]] | None
) -> dict[tuple[str, int], Outcome]:
    """The PREFERRED election of ``wanted`` (None: every partition), planned on the controller
    by controller.plan_preferred_elections as POST /v1/elections plans it."""
    outcomes: list[controller.ElectionOutcome] = []

    def plan(state: MetadataState) -> list[MetadataRecord]:
        records, planned = controller.plan_preferred_elections(state, wanted)
        outcomes[:] = planned
        return records

    body: dict[str, Any] = {"election_type": "PREFERRED"}
    if wanted is not None:
        body["partitions"] = [{"topic": t, "partition": p} for t, p in wanted]
    _, answer = await admin_write(
        node, plan, False, lambda: forward_json(node, "POST", "/v1/elections", body)
    )
    if answer is not None:
        return {
            (o["topic"], o["partition"]): election_outcome(o["outcome"], o["preferred_leader"])
            for o in answer["partitions"]
        }
    return {(o.topic, o.partition): election_outcome(o.outcome, o.preferred) for o in outcomes}


async def elect_leaders(ctx: RequestContext, request: Any) -> Any:
    """ElectLeaders (key 43): a PREFERRED election as POST /v1/elections makes it; an UNCLEAN
    one is needed by no partition with a leader and refused for the others."""
    node = ctx.node
    election_type = getattr(request, "election_type", PREFERRED_ELECTION)
    asked = (
        None
        if request.topic_partitions is None
        else [(t.topic, int(p)) for t in request.topic_partitions for p in t.partitions]
    )
    outcomes: dict[tuple[str, int], Outcome] = {}
    # Readiness first: before the metadata is loaded, neither the ACLs nor the topics are.
    if (top := readiness(node)) is not OK:
        outcomes = {key: top for key in asked or []}
    elif not authorize(ctx, "ALTER", "CLUSTER", CLUSTER_RESOURCE_NAME):
        top = CLUSTER_DENIED
        outcomes = {key: CLUSTER_DENIED for key in asked or []}
    elif election_type not in (PREFERRED_ELECTION, UNCLEAN_ELECTION):
        top = Outcome(ErrorCode.invalid_request, f"Unknown election type {election_type}")
        outcomes = {key: top for key in asked or []}
    else:
        state = node.quorum.snapshot_state()
        if election_type == UNCLEAN_ELECTION:
            everything = [
                (name, p) for name in sorted(state.topics) for p in state.topics[name].partitions
            ]
            outcomes = {(t, p): unclean_outcome(state, t, p) for t, p in asked or everything}
        else:
            known: list[tuple[str, int]] = []
            for t, p in dict.fromkeys(asked or []):
                found = state.topics.get(t)
                if found is None or p not in found.partitions:
                    outcomes[(t, p)] = unknown_partition(t, p, found is None)
                else:
                    known.append((t, p))
            if asked is None or known:
                try:
                    outcomes |= await _elect_preferred(node, None if asked is None else known)
                except ApiError as e:
                    outcomes |= {key: Outcome.of(e) for key in known}
    if asked is None:
        # Kafka's answer for every partition leaves out those that needed no election.
        keys = [k for k, o in outcomes.items() if o.code != ErrorCode.election_not_needed]
        topics = sorted(node.quorum.snapshot_state().topics) if top is OK else []
    else:
        keys = asked
        topics = list(dict.fromkeys(t for t, _ in asked))
    by_topic: dict[str, list[dict[str, Any]]] = {t: [] for t in topics}
    for t, p in keys:
        by_topic.setdefault(t, []).append({"partition_id": p, **outcomes[(t, p)].fields})
    return response_of(
        ctx,
        {
            "error_code": top.code,
            "replica_election_results": [
                {"topic": t, "partition_result": results} for t, results in by_topic.items()
            ],
        },
    )


# -- AlterPartitionReassignments / ListPartitionReassignments ------------------------------


def replication_factor_problem(
    state: MetadataState, r: reassignment.ReassignmentRequest
) -> Outcome | None:
    """With allow_replication_factor_change false (v1+), a move may not change how many
    replicas the partition has (Kafka's INVALID_REPLICATION_FACTOR)."""
    if r.replicas is None:
        return None
    found = state.topics.get(r.topic)
    p = None if found is None else found.partitions.get(r.partition)
    if p is None:
        return None  # the plan says UNKNOWN_TOPIC_OR_PARTITION
    current = len(reassignment.target_replicas(p))
    if len(r.replicas) == current:
        return None
    return Outcome(
        ErrorCode.invalid_replication_factor,
        f"The replication factor is changed from {current} to {len(r.replicas)}",
    )


async def _alter_reassignments(
    node: Node, requests: list[reassignment.ReassignmentRequest]
) -> dict[tuple[str, int], Outcome]:
    outcomes: list[controller.ReassignmentOutcome] = []

    def plan(state: MetadataState) -> list[MetadataRecord]:
        records, planned = controller.plan_alter_reassignments(state, requests)
        outcomes[:] = planned
        return records

    body = {
        "partitions": [
            {
                "topic": r.topic,
                "partition": r.partition,
                "replicas": None if r.replicas is None else list(r.replicas),
            }
            for r in requests
        ]
    }
    _, answer = await admin_write(
        node, plan, False, lambda: forward_json(node, "POST", "/v1/reassignments", body)
    )
    if answer is not None:
        return {
            (o["topic"], o["partition"]): OK
            if "error" not in o
            else Outcome.of(ApiError.from_json({"error": o["error"], "message": o["message"]}))
            for o in answer["partitions"]
        }
    return {
        (o.topic, o.partition): OK if o.error is None else Outcome.of(o.error) for o in outcomes
    }


async def alter_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    """AlterPartitionReassignments (key 45): starts, replaces or cancels (null replicas)
    partition moves as POST /v1/reassignments does. Each partition is first checked alone on
    this node's metadata, so a bad one gets its own error and the others go ahead together."""
    node = ctx.node
    entries = [
        (t.name, int(p.partition_index), p.replicas) for t in request.topics for p in t.partitions
    ]
    outcomes: dict[tuple[str, int], Outcome] = {}
    # Readiness first: before the metadata is loaded, neither the ACLs nor the topics are.
    if (top := readiness(node)) is not OK:
        outcomes = {(t, p): top for t, p, _ in entries}
    elif not authorize(ctx, "ALTER", "CLUSTER", CLUSTER_RESOURCE_NAME):
        top = CLUSTER_DENIED
        outcomes = {(t, p): CLUSTER_DENIED for t, p, _ in entries}
    else:
        state = node.quorum.snapshot_state()
        allow_change = bool(getattr(request, "allow_replication_factor_change", True))
        good: list[reassignment.ReassignmentRequest] = []
        for t, p, replicas in entries:
            r = reassignment.ReassignmentRequest(
                t, p, None if replicas is None else tuple(int(b) for b in replicas)
            )
            problem = None if allow_change else replication_factor_problem(state, r)
            if problem is None and (t, p) in outcomes:
                problem = Outcome(ErrorCode.invalid_request, f"{t}-{p} is named twice")
            if problem is None:
                try:
                    controller.plan_alter_reassignments(state, [r])
                except ApiError as e:
                    problem = Outcome.of(e)
            if problem is not None:
                outcomes[(t, p)] = problem
                good = [g for g in good if (g.topic, g.partition) != (t, p)]
            else:
                outcomes[(t, p)] = OK
                good.append(r)
        if good:
            try:
                outcomes |= await _alter_reassignments(node, good)
            except ApiError as e:
                outcomes |= {(r.topic, r.partition): Outcome.of(e) for r in good}
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for t, p, _ in entries:
        by_topic.setdefault(t, []).append({"partition_index": p, **outcomes[(t, p)].fields})
    return response_of(
        ctx,
        {
            **top.fields,
            "allow_replication_factor_change": bool(
                getattr(request, "allow_replication_factor_change", True)
            ),
            "responses": [{"name": t, "partitions": ps} for t, ps in by_topic.items()],
        },
    )


async def list_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    """ListPartitionReassignments (key 46): the moving partitions (controller.
    list_reassignments, as GET /v1/reassignments), of the topics and partitions asked."""
    node = ctx.node
    # Readiness first: before the metadata is loaded, the ACLs are not.
    if (unready := readiness(node)) is not OK:
        return response_of(ctx, {**unready.fields, "topics": []})
    if not authorize(ctx, "DESCRIBE", "CLUSTER", CLUSTER_RESOURCE_NAME):
        return response_of(ctx, {**CLUSTER_DENIED.fields, "topics": []})
    state = node.quorum.snapshot_state()
    if request.topics is None:
        moving = controller.list_reassignments(state)
    else:
        wanted = {(t.name, int(p)) for t in request.topics for p in t.partition_indexes}
        moving = [
            m
            for name in dict.fromkeys(t.name for t in request.topics)
            for m in controller.list_reassignments(state, name)
            if (m["topic"], m["partition"]) in wanted
        ]
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for m in moving:
        by_topic.setdefault(str(m["topic"]), []).append(
            {
                "partition_index": m["partition"],
                "replicas": m["replicas"],
                "adding_replicas": m["adding_replicas"],
                "removing_replicas": m["removing_replicas"],
            }
        )
    return response_of(
        ctx,
        {**OK.fields, "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()]},
    )
