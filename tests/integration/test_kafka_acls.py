"""DescribeAcls, CreateAcls and DeleteAcls on the KAFKA listeners (issue 18): confluent-kafka's
AdminClient (librdkafka) and kafka-python's KafkaAdminClient manage the ACLs that /v1/acls
manages, and what they create is what the authorizer enforces.

The cluster: three nodes, the StandardAuthorizer, HTTP with SASL (``admin`` is the super user)
and PLAINTEXT KAFKA listeners, where every request is User:ANONYMOUS. The admin grants
User:ANONYMOUS (over HTTP) ALTER on the cluster (ACL calls) and ALL on every topic, so a
DENY made over Kafka's protocol for User:ANONYMOUS is one the test's own Kafka clients meet.
Requests a follower forwards to the controller are sent by hand to a follower's KAFKA
listener (kio's codecs build them, as in test_kafka_admin).

One cluster serves the module; each test uses principals or topics of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KpResourceType
from kafka.errors import SecurityDisabledError
from kio.schema.errors import ErrorCode

from scripts.node_process import Cluster, NodeProcess, free_ports, wait_until
from server import limits
from tests.integration.kafka_helpers import controller_and_follower, error_of, kafka_call

pytestmark = pytest.mark.timeout(300)

DEADLINE_S = 60.0
ADMIN = ("admin", "admin-secret")
ANONYMOUS = "User:ANONYMOUS"
AUTHORIZER = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:admin",
}
# What the admin grants the Kafka listeners' principal before the tests.
GRANTS = [
    {
        "resource_type": "CLUSTER",
        "principal": ANONYMOUS,
        "operation": "ALTER",
        "permission": "ALLOW",
    },
    {
        "resource_type": "TOPIC",
        "resource_name": "*",
        "principal": ANONYMOUS,
        "operation": "ALL",
        "permission": "ALLOW",
    },
]
DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS = 29, 30, 31
ANY_FILTER = AclBindingFilter(
    ResourceType.ANY,
    None,
    ResourcePatternType.ANY,
    None,
    None,
    AclOperation.ANY,
    AclPermissionType.ANY,
)
KP_ANY_FILTER = ACLFilter(
    principal=None,
    host=None,
    operation=ACLOperation.ANY,
    permission_type=ACLPermissionType.ANY,
    resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None, ACLResourcePatternType.ANY),
)
# A DescribeAcls request or DeleteAcls filter that matches every ACL, as kio takes it.
RAW_ANY_FILTER: dict[str, Any] = {
    "resource_type_filter": 1,
    "resource_name_filter": None,
    "pattern_type_filter": 1,
    "principal_filter": None,
    "host_filter": None,
    "operation": 1,
    "permission_type": 1,
}


@pytest.fixture(scope="module")
def acl_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    handle = Cluster.create(
        tmp_path_factory.mktemp("kafka-acls"),
        security="SASL_PLAINTEXT",
        users=dict([ADMIN]),
        **AUTHORIZER,
    )
    handle.give_kafka_listeners()
    try:
        handle.start()
        status, body = handle.nodes[0].http("POST", "/v1/acls", {"acls": GRANTS})
        assert status == 201, body
        for node in handle.nodes:
            wait_until(
                f"node {node.node_id} applies the grants",
                lambda node=node: len(acls_over_http(node, principal=ANONYMOUS)) >= 2,
            )
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def open_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node without an authorizer, with a KAFKA listener."""
    handle = NodeProcess(tmp_path_factory.mktemp("kafka-acls-open"))
    handle.format()
    (port,) = free_ports(1)
    handle.give_kafka_listener(port)
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def confluent_admin(servers: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": servers})


def acls_over_http(node: NodeProcess, **query: str) -> list[dict[str, Any]]:
    path = "/v1/acls"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    status, body = node.http("GET", path)
    assert status == 200, body
    found: list[dict[str, Any]] = body["acls"]
    return found


def bindings_of(found: list[dict[str, Any]]) -> set[tuple[str, ...]]:
    return {
        (
            a["resource_type"],
            a["resource_name"],
            a["pattern_type"],
            a["principal"],
            a["host"],
            a["operation"],
            a["permission"],
        )
        for a in found
    }


def produce_error(servers: str, topic: str) -> KafkaError | None:
    """The error of one record produced to ``topic`` over Kafka's protocol (None: written)."""
    outcome: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": servers, "message.timeout.ms": 30_000})
    producer.produce(topic, b"v", callback=lambda err, msg: outcome.append(err))
    producer.flush(DEADLINE_S)
    assert outcome, f"no delivery report for {topic} within {DEADLINE_S} s"
    return outcome[0]


# -- without an authorizer --------------------------------------------------------------------


def test_without_an_authorizer_every_acl_call_answers_security_disabled(
    open_node: NodeProcess,
) -> None:
    port = open_node.kafka_port
    servers = f"127.0.0.1:{port}"
    admin = confluent_admin(servers)
    binding = AclBinding(
        ResourceType.TOPIC,
        "t",
        ResourcePatternType.LITERAL,
        "User:a",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    (created,) = admin.create_acls([binding]).values()
    assert error_of(created).code() == KafkaError.SECURITY_DISABLED
    (deleted,) = admin.delete_acls([ANY_FILTER]).values()
    assert error_of(deleted).code() == KafkaError.SECURITY_DISABLED
    # librdkafka drops DescribeAcls' top-level error (rd_kafka_DescribeAclsResponse_parse
    # returns no error whatever the code): its describe reads as empty; kafka-python's raises.
    assert admin.describe_acls(ANY_FILTER).result(timeout=DEADLINE_S) == []
    kp = KafkaAdminClient(bootstrap_servers=servers)
    try:
        with pytest.raises(SecurityDisabledError):
            kp.describe_acls(KP_ANY_FILTER)
        ((_, matched, error),) = kp.delete_acls([KP_ANY_FILTER])
        assert error is SecurityDisabledError and matched == []
    finally:
        kp.close()
    # The words say how to turn it on.
    answer = kafka_call(port, DESCRIBE_ACLS, 3, RAW_ANY_FILTER)
    assert answer.error_code == ErrorCode.security_disabled
    assert "authorizer.class.name" in answer.error_message


# -- with the authorizer ----------------------------------------------------------------------


def binding(
    principal: str,
    name: str,
    operation: AclOperation,
    permission: AclPermissionType = AclPermissionType.ALLOW,
    restype: ResourceType = ResourceType.TOPIC,
    pattern: ResourcePatternType = ResourcePatternType.LITERAL,
    host: str = "*",
) -> AclBinding:
    return AclBinding(restype, name, pattern, principal, host, operation, permission)


def principal_filter(
    principal: str,
    restype: ResourceType = ResourceType.ANY,
    name: str | None = None,
    pattern: ResourcePatternType = ResourcePatternType.ANY,
) -> AclBindingFilter:
    return AclBindingFilter(
        restype, name, pattern, principal, None, AclOperation.ANY, AclPermissionType.ANY
    )


def described(admin: AdminClient, acl_filter: AclBindingFilter) -> set[AclBinding]:
    return set(admin.describe_acls(acl_filter).result(timeout=DEADLINE_S))


def http_sees(cluster: Cluster, principal: str, count: int) -> list[dict[str, Any]]:
    """The principal's ACLs over HTTP once every node has applied ``count`` of them."""
    found: list[list[dict[str, Any]]] = []

    def check() -> bool:
        found[:] = [acls_over_http(n, principal=principal) for n in cluster.nodes]
        return all(len(f) == count for f in found)

    wait_until(f"{count} ACLs of {principal} on every node", check)
    return found[0]


def test_confluent_creates_describes_and_deletes_acls_http_sees(acl_cluster: Cluster) -> None:
    admin = confluent_admin(acl_cluster.kafka_bootstrap())
    carol = "User:carol"
    wanted = [
        binding(carol, "ck-news", AclOperation.READ),
        binding(
            carol,
            "ck-",
            AclOperation.WRITE,
            AclPermissionType.DENY,
            pattern=ResourcePatternType.PREFIXED,
        ),
        binding(carol, "ck-group", AclOperation.READ, restype=ResourceType.GROUP),
    ]
    assert set(done(admin.create_acls(wanted)).values()) == {None}
    over_http = http_sees(acl_cluster, carol, 3)
    assert bindings_of(over_http) == {
        ("TOPIC", "ck-news", "LITERAL", carol, "*", "READ", "ALLOW"),
        ("TOPIC", "ck-", "PREFIXED", carol, "*", "WRITE", "DENY"),
        ("GROUP", "ck-group", "LITERAL", carol, "*", "READ", "ALLOW"),
    }
    assert described(admin, principal_filter(carol)) == set(wanted)
    # MATCH: the ACLs that apply to topic ck-news (its literal one and the prefix's).
    match = principal_filter(carol, ResourceType.TOPIC, "ck-news", ResourcePatternType.MATCH)
    assert described(admin, match) == set(wanted[:2])
    # Made again: a success, not a second copy.
    assert set(done(admin.create_acls(wanted[:1])).values()) == {None}
    # One made over HTTP is one DescribeAcls answers.
    status, body = acl_cluster.nodes[0].http(
        "POST",
        "/v1/acls",
        {
            "acls": [
                {
                    "resource_type": "CLUSTER",
                    "principal": carol,
                    "operation": "DESCRIBE",
                    "permission": "ALLOW",
                }
            ]
        },
    )
    assert status == 201, body
    http_sees(acl_cluster, carol, 4)
    cluster_binding = binding(
        carol, "kafka-cluster", AclOperation.DESCRIBE, restype=ResourceType.BROKER
    )
    assert described(admin, principal_filter(carol)) == {*wanted, cluster_binding}
    # Deleting answers what each filter matched.
    topics, everything = principal_filter(carol, ResourceType.TOPIC), principal_filter(carol)
    deleted = done(admin.delete_acls([topics]))
    assert set(deleted[topics]) == set(wanted[:2])
    http_sees(acl_cluster, carol, 2)
    deleted = done(admin.delete_acls([everything]))
    assert set(deleted[everything]) == {wanted[2], cluster_binding}
    http_sees(acl_cluster, carol, 0)


def done(futures: dict[Any, Any]) -> dict[Any, Any]:
    return {key: f.result(timeout=DEADLINE_S) for key, f in futures.items()}


def test_a_creation_our_acls_cannot_hold_fails_alone(acl_cluster: Cluster) -> None:
    admin = confluent_admin(acl_cluster.kafka_bootstrap())
    dave = "User:dave"
    good = binding(dave, "dv-news", AclOperation.READ)
    transactional = binding(dave, "tx-1", AclOperation.WRITE, restype=ResourceType.TRANSACTIONAL_ID)
    from_a_host = binding(dave, "dv-news", AclOperation.WRITE, host="10.0.0.1")
    futures = admin.create_acls([good, transactional, from_a_host])
    assert futures[good].result(timeout=DEADLINE_S) is None
    refused = error_of(futures[transactional])
    assert refused.code() == KafkaError.INVALID_REQUEST
    assert "TRANSACTIONAL_ID is not supported" in refused.str()
    refused = error_of(futures[from_a_host])
    assert refused.code() == KafkaError.INVALID_REQUEST and "only *" in refused.str()
    # kafka-python's: a principal that is not User:name, and the cluster by another name.
    kp = KafkaAdminClient(bootstrap_servers=acl_cluster.kafka_bootstrap())
    try:
        result = kp.create_acls(
            [
                ACL(
                    principal="dave",
                    host="*",
                    operation=ACLOperation.READ,
                    permission_type=ACLPermissionType.ALLOW,
                    resource_pattern=ResourcePattern(
                        KpResourceType.TOPIC, "dv-news", ACLResourcePatternType.LITERAL
                    ),
                ),
                ACL(
                    principal=dave,
                    host="*",
                    operation=ACLOperation.ALTER,
                    permission_type=ACLPermissionType.ALLOW,
                    resource_pattern=ResourcePattern(
                        KpResourceType.CLUSTER, "prod", ACLResourcePatternType.LITERAL
                    ),
                ),
            ]
        )
    finally:
        kp.close()
    assert result["succeeded"] == []
    assert [e.__name__ for e in result["failed"]] == ["InvalidRequestError"] * 2
    found = http_sees(acl_cluster, dave, 1)
    assert bindings_of(found) == {("TOPIC", "dv-news", "LITERAL", dave, "*", "READ", "ALLOW")}
    status, body = acl_cluster.nodes[0].http("DELETE", f"/v1/acls?principal={dave}")
    assert status == 200, body


def test_kafka_python_creates_describes_and_deletes_acls(acl_cluster: Cluster) -> None:
    erin = "User:erin"

    def acl(name: str, pattern: ACLResourcePatternType, permission: ACLPermissionType) -> ACL:
        return ACL(
            principal=erin,
            host="*",
            operation=ACLOperation.DESCRIBE,
            permission_type=permission,
            resource_pattern=ResourcePattern(KpResourceType.TOPIC, name, pattern),
        )

    wanted = [
        acl("kp-a", ACLResourcePatternType.LITERAL, ACLPermissionType.ALLOW),
        acl("kp-", ACLResourcePatternType.PREFIXED, ACLPermissionType.DENY),
    ]
    erin_filter = ACLFilter(
        principal=erin,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(
            KpResourceType.ANY, None, ACLResourcePatternType.ANY
        ),
    )
    kp = KafkaAdminClient(bootstrap_servers=acl_cluster.kafka_bootstrap())
    try:
        result = kp.create_acls(wanted)
        assert result["failed"] == [] and len(result["succeeded"]) == 2
        http_sees(acl_cluster, erin, 2)

        def seen() -> set[tuple[str, int, int]]:
            acl_list, error = kp.describe_acls(erin_filter)
            assert error.__name__ == "NoError"
            return {
                (
                    a.resource_pattern.resource_name,
                    a.resource_pattern.pattern_type,
                    a.permission_type,
                )
                for a in acl_list
            }

        assert seen() == {
            ("kp-a", ACLResourcePatternType.LITERAL, ACLPermissionType.ALLOW),
            ("kp-", ACLResourcePatternType.PREFIXED, ACLPermissionType.DENY),
        }
        ((_, matched, error),) = kp.delete_acls([erin_filter])
        assert error.__name__ == "NoError"
        assert {a.resource_pattern.resource_name for a in matched} == {"kp-a", "kp-"}
    finally:
        kp.close()
    http_sees(acl_cluster, erin, 0)


def raw_creation(principal: str, name: str, **changes: Any) -> dict[str, Any]:
    return {
        "resource_type": 2,
        "resource_name": name,
        "resource_pattern_type": 3,
        "principal": principal,
        "host": "*",
        "operation": 3,
        "permission_type": 3,
        **changes,
    }


def test_a_follower_forwards_acl_writes_to_the_controller(acl_cluster: Cluster) -> None:
    controller, follower = controller_and_follower(acl_cluster)
    frank = "User:frank"
    port = follower.kafka_port
    created = kafka_call(
        port,
        CREATE_ACLS,
        3,
        {
            "creations": [
                raw_creation(frank, "fw-a"),
                raw_creation(frank, "fw-b"),
                raw_creation(frank, "fw-c", operation=9),  # CLUSTER_ACTION: not ours
                raw_creation(frank, "fw-", resource_pattern_type=4),
            ]
        },
    )
    assert [r.error_code for r in created.results] == [
        ErrorCode.none,
        ErrorCode.none,
        ErrorCode.invalid_request,
        ErrorCode.none,
    ]
    # The follower answers once it has applied the write.
    assert len(acls_over_http(follower, principal=frank)) == 3
    frank_filter = {**RAW_ANY_FILTER, "principal_filter": frank}
    deleted = kafka_call(
        port,
        DELETE_ACLS,
        3,
        {
            "filters": [
                {**frank_filter, "resource_name_filter": "fw-a"},
                {**frank_filter, "resource_type_filter": 5},  # TRANSACTIONAL_ID: matches nothing
                {**frank_filter, "pattern_type_filter": 42},  # Kafka knows no such pattern type
                {**frank_filter, "resource_name_filter": "fw-", "pattern_type_filter": 4},
            ]
        },
    )
    results = deleted.filter_results
    assert [r.error_code for r in results] == [ErrorCode.none] * 2 + [
        ErrorCode.invalid_request,
        ErrorCode.none,
    ]
    assert results[2].error_message == "Unknown patternFilter."
    assert [[m.resource_name for m in r.matching_acls] for r in results] == [
        ["fw-a"],
        [],
        [],
        ["fw-"],
    ]
    assert results[3].matching_acls[0].pattern_type == 4
    assert bindings_of(acls_over_http(follower, principal=frank)) == {
        ("TOPIC", "fw-b", "LITERAL", frank, "*", "READ", "ALLOW")
    }
    # On the controller, the filters of one request are planned on one state: an ACL two
    # filters match is listed by both.
    both = kafka_call(
        controller.kafka_port,
        DELETE_ACLS,
        2,
        {"filters": [frank_filter, {**frank_filter, "resource_name_filter": "fw-b"}]},
    )
    assert [[m.resource_name for m in r.matching_acls] for r in both.filter_results] == [
        ["fw-b"],
        ["fw-b"],
    ]
    assert acls_over_http(controller, principal=frank) == []


def test_a_delete_with_more_filters_than_the_limit_is_refused_for_each(
    acl_cluster: Cluster,
) -> None:
    """DeleteAcls holds at most ACLS_PER_REQUEST_MAX filters, as CreateAcls holds at most that
    many creations: one more and every filter is INVALID_REQUEST, nothing deleted; at the
    limit the request is served."""
    controller, follower = controller_and_follower(acl_cluster)
    gina = "User:gina"
    created = kafka_call(
        controller.kafka_port,
        CREATE_ACLS,
        3,
        {"creations": [raw_creation(gina, "cap-a")]},
    )
    assert [r.error_code for r in created.results] == [ErrorCode.none]
    wait_until("the follower has gina's ACL", lambda: acls_over_http(follower, principal=gina))
    gina_filter = {**RAW_ANY_FILTER, "principal_filter": gina}
    for node in (controller, follower):
        refused = kafka_call(
            node.kafka_port,
            DELETE_ACLS,
            3,
            {"filters": [gina_filter] * (limits.ACLS_PER_REQUEST_MAX + 1)},
        )
        results = refused.filter_results
        assert len(results) == limits.ACLS_PER_REQUEST_MAX + 1
        assert {(r.error_code, r.error_message, len(r.matching_acls)) for r in results} == {
            (
                ErrorCode.invalid_request,
                f"a request deletes with at most {limits.ACLS_PER_REQUEST_MAX} filters, "
                f"got {limits.ACLS_PER_REQUEST_MAX + 1}",
                0,
            )
        }
        assert len(acls_over_http(controller, principal=gina)) == 1
    # At the limit: served (on the controller, one state for every filter).
    served = kafka_call(
        controller.kafka_port,
        DELETE_ACLS,
        3,
        {"filters": [gina_filter] * limits.ACLS_PER_REQUEST_MAX},
    )
    assert {r.error_code for r in served.filter_results} == {ErrorCode.none}
    assert [m.resource_name for m in served.filter_results[-1].matching_acls] == ["cap-a"]
    assert acls_over_http(controller, principal=gina) == []


def test_a_request_holding_the_unknown_code_closes_the_connection(acl_cluster: Cluster) -> None:
    node = acl_cluster.nodes[0]
    with pytest.raises(AssertionError, match="closed the connection"):
        kafka_call(
            node.kafka_port,
            DESCRIBE_ACLS,
            3,
            {**RAW_ANY_FILTER, "operation": 0},
        )


def test_a_deny_created_over_kafka_is_enforced_and_its_delete_lifts_it(
    acl_cluster: Cluster,
) -> None:
    node = acl_cluster.nodes[0]
    for name in ("guarded", "unguarded"):
        status, body = node.http(
            "POST", "/v1/topics", {"name": name, "partitions": 1, "replication_factor": 3}
        )
        assert status == 201, body
    servers = acl_cluster.kafka_bootstrap()
    wait_until("a write to guarded", lambda: produce_error(servers, "guarded") is None)
    admin = confluent_admin(servers)
    deny = binding(ANONYMOUS, "guarded", AclOperation.WRITE, AclPermissionType.DENY)
    assert done(admin.create_acls([deny])) == {deny: None}

    def refused() -> bool:
        error = produce_error(servers, "guarded")
        return error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    wait_until("guarded refuses User:ANONYMOUS's writes", refused)
    assert produce_error(servers, "unguarded") is None
    deny_filter = principal_filter(ANONYMOUS, ResourceType.TOPIC, "guarded")
    assert done(admin.delete_acls([deny_filter])) == {deny_filter: [deny]}
    wait_until("guarded takes writes again", lambda: produce_error(servers, "guarded") is None)


def test_acl_calls_need_describe_or_alter_on_the_cluster(acl_cluster: Cluster) -> None:
    """Last in the module: it takes User:ANONYMOUS's ALTER away, and gives it back."""
    node = acl_cluster.nodes[0]

    def set_cluster_grant(operation: str | None) -> None:
        status, body = node.http("DELETE", f"/v1/acls?resource_type=CLUSTER&principal={ANONYMOUS}")
        assert status == 200, body
        if operation is not None:
            grant = {**GRANTS[0], "operation": operation}
            status, body = node.http("POST", "/v1/acls", {"acls": [grant]})
            assert status == 201, body
        expected = [] if operation is None else [operation]
        for n in acl_cluster.nodes:
            wait_until(
                f"node {n.node_id} applies the cluster grant {expected}",
                lambda n=n: (
                    [
                        a["operation"]
                        for a in acls_over_http(n, principal=ANONYMOUS, resource_type="CLUSTER")
                    ]
                    == expected
                ),
            )

    creation = {"creations": [raw_creation("User:gina", "gn-a")]}
    gina_filter = {**RAW_ANY_FILTER, "principal_filter": "User:gina"}
    try:
        set_cluster_grant("DESCRIBE")
        for n in acl_cluster.nodes:
            port = n.kafka_port
            created = kafka_call(port, CREATE_ACLS, 3, creation)
            assert [r.error_code for r in created.results] == [
                ErrorCode.cluster_authorization_failed
            ]
            deleted = kafka_call(port, DELETE_ACLS, 3, {"filters": [gina_filter]})
            assert [r.error_code for r in deleted.filter_results] == [
                ErrorCode.cluster_authorization_failed
            ]
            assert kafka_call(port, DESCRIBE_ACLS, 3, RAW_ANY_FILTER).error_code == ErrorCode.none
        assert acls_over_http(node, principal="User:gina") == []
        set_cluster_grant(None)
        for n in acl_cluster.nodes:
            answer = kafka_call(n.kafka_port, DESCRIBE_ACLS, 1, RAW_ANY_FILTER)
            assert answer.error_code == ErrorCode.cluster_authorization_failed
            assert answer.resources == ()
    finally:
        set_cluster_grant("ALTER")
