"""Who is asking, and may they: HTTP client authentication and ACL checks, as one middleware.

It runs after the internal-auth middleware (``server/internal_auth_http.py``): a request that
proved the cluster secret is the cluster's own and skips both steps (the cluster principal is
a super user, as Kafka's inter-broker principal).

Authentication (``listener.security.protocol.map=HTTP:SASL_PLAINTEXT`` or ``HTTP:SASL_SSL``):
every request needs ``Authorization: Basic base64(user:password)``, checked against
``http.users.file`` (``server/users.py``); the principal is ``User:<name>``. Missing or wrong:
401 SASL_AUTHENTICATION_FAILED with ``WWW-Authenticate: Basic realm="kraft"``, except to the web
console (a request with ``X-Kraft-Console: 1``), which asks with its own form: the header would
make the browser show its dialog. Without SASL the principal is ``User:ANONYMOUS``, as
Kafka's. ``GET /v1/health/ready`` stays open for load balancers and health checks, and the
console's files (``/``, ``/ui...``) for everyone: they hold no data.

Authorization (``authorizer.class.name=...StandardAuthorizer``): :data:`RULES` maps each
route to the resource and operation Kafka checks for the matching API; the authorizer
(``server/authorizer.py``) decides on the metadata's ACLs. A refusal is 403
TOPIC_/GROUP_/CLUSTER_AUTHORIZATION_FAILED before the handler runs, so a denied request changes
nothing; a topic the principal may not see answers 403 whether it exists or not (Kafka does not
leak topic names). ``GET /v1/topics`` lists only the topics the principal may DESCRIBE.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from client.protocol import (
    CLUSTER_AUTHORIZATION_FAILED,
    GROUP_AUTHORIZATION_FAILED,
    SASL_AUTHENTICATION_FAILED,
    TOPIC_AUTHORIZATION_FAILED,
    ApiError,
)
from kraft.records import CLUSTER_RESOURCE_NAME
from server import password_checks
from server.authorizer import ANONYMOUS, Authorizer, Decision
from server.config import NodeConfig
from server.http_cors import from_console
from server.http_records import node_of
from server.http_util import error_response, read_body, replay_body
from server.internal_auth_http import INTERNAL_PEER
from server.log_text import LOGGED_MESSAGE_CHARS_MAX, LOGGED_NAME_CHARS_MAX, printable
from server.users import UserStore, parse_basic

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# request[PRINCIPAL]: "User:<name>" (or User:ANONYMOUS); absent on the cluster's own calls.
PRINCIPAL = "kraft.principal"
REALM = 'Basic realm="kraft"'

_ERRORS = {
    "TOPIC": TOPIC_AUTHORIZATION_FAILED,
    "GROUP": GROUP_AUTHORIZATION_FAILED,
    "CLUSTER": CLUSTER_AUTHORIZATION_FAILED,
}


@dataclass(frozen=True)
class Rule:
    """What a route needs: ``operation`` on the resource ``resource_type`` whose name is the
    route's ``{topic}`` (TOPIC) or the cluster's. ``kind`` marks the routes decided otherwise:
    ``open`` (no check), ``list`` (the handler filters), ``create_topic`` (CREATE on the
    cluster or on the topic named in the body), ``idempotent`` (IDEMPOTENT_WRITE on the
    cluster, or WRITE on some topic), ``internal`` (the cluster's own calls only)."""

    resource_type: str = "CLUSTER"
    operation: str = "DESCRIBE"
    kind: str = "acl"


def _topic(operation: str) -> Rule:
    return Rule("TOPIC", operation)


def _group(operation: str) -> Rule:
    return Rule("GROUP", operation)


def _cluster(operation: str) -> Rule:
    return Rule("CLUSTER", operation)


_RECORDS = "/v1/topics/{topic}/partitions/{partition}/records"
_FILES = "/v1/brokers/{broker}/partitions/{topic}/{partition}/files"

# Every route of the node, by method and route pattern (Kafka's API -> its ACL check).
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/v1/health/ready"): Rule(kind="open"),
    # The web console's files (server/http_console.py): no data in them, so no credentials.
    ("GET", "/"): Rule(kind="open"),
    ("GET", "/ui"): Rule(kind="open"),
    ("GET", "/ui/"): Rule(kind="open"),
    ("GET", "/ui/{path}"): Rule(kind="open"),
    # Prometheus's scrape: as DescribeCluster (with SASL on, a user the scraper logs in as).
    ("GET", "/metrics"): _cluster("DESCRIBE"),
    ("GET", "/v1/cluster"): _cluster("DESCRIBE"),  # DescribeCluster
    ("GET", "/v1/cluster/quorum"): _cluster("DESCRIBE"),  # DescribeQuorum
    ("POST", "/v1/cluster/quorum/voters"): _cluster("ALTER"),  # AddRaftVoter
    ("DELETE", "/v1/cluster/quorum/voters/{voter}"): _cluster("ALTER"),  # RemoveRaftVoter
    # The console's overview and the metadata log's events: what DescribeCluster and
    # DescribeQuorum show, read together.
    ("GET", "/v1/cluster/overview"): _cluster("DESCRIBE"),
    ("GET", "/v1/cluster/events"): _cluster("DESCRIBE"),
    ("GET", "/v1/topics"): Rule("TOPIC", "DESCRIBE", kind="list"),  # Metadata
    ("POST", "/v1/topics"): Rule("TOPIC", "CREATE", kind="create_topic"),  # CreateTopics
    ("GET", "/v1/topics/{topic}"): _topic("DESCRIBE"),  # Metadata
    ("DELETE", "/v1/topics/{topic}"): _topic("DELETE"),  # DeleteTopics
    ("POST", "/v1/topics/{topic}/partitions"): _topic("ALTER"),  # CreatePartitions
    ("GET", "/v1/topics/{topic}/configs"): _topic("DESCRIBE_CONFIGS"),  # DescribeConfigs
    ("PUT", "/v1/topics/{topic}/configs"): _topic("ALTER_CONFIGS"),  # IncrementalAlterConfigs
    ("GET", "/v1/topics/{topic}/configs/entries"): _topic("DESCRIBE_CONFIGS"),
    ("GET", "/v1/brokers/{broker}/configs"): _cluster("DESCRIBE_CONFIGS"),  # DescribeConfigs
    ("PUT", "/v1/brokers/{broker}/configs"): _cluster("ALTER_CONFIGS"),  # IncrementalAlterConfigs
    ("GET", "/v1/brokers/{broker}/log-dirs"): _cluster("DESCRIBE"),  # DescribeLogDirs
    ("DELETE", "/v1/brokers/{broker}"): _cluster("ALTER"),  # UnregisterBroker
    # Replica figures (the console): a broker's own as DescribeLogDirs shows them; a topic's
    # from every broker holding one, as describing the topic does.
    ("GET", "/v1/brokers/{broker}/replicas"): _cluster("DESCRIBE"),
    ("GET", "/v1/topics/{topic}/replicas"): _topic("DESCRIBE"),
    # The disk view: a replica's files are the topic's to describe; their text shows its
    # records, as a fetch does.
    ("GET", _FILES): _topic("DESCRIBE"),
    ("GET", _FILES + "/{name}"): _topic("READ"),
    ("POST", "/v1/topics/{topic}/records"): _topic("WRITE"),  # Produce
    ("POST", _RECORDS): _topic("WRITE"),  # Produce
    ("GET", _RECORDS): _topic("READ"),  # Fetch
    # ListOffsets: Kafka checks DESCRIBE (which READ implies)
    ("GET", "/v1/topics/{topic}/partitions/{partition}/offsets"): _topic("DESCRIBE"),
    ("POST", "/v1/producers"): Rule("CLUSTER", "IDEMPOTENT_WRITE", kind="idempotent"),
    ("POST", "/v1/elections"): _cluster("ALTER"),  # ElectLeaders
    ("POST", "/v1/reassignments"): _cluster("ALTER"),  # AlterPartitionReassignments
    ("GET", "/v1/reassignments"): _cluster("DESCRIBE"),  # ListPartitionReassignments
    ("GET", "/v1/acls"): _cluster("DESCRIBE"),  # DescribeAcls
    ("POST", "/v1/acls"): _cluster("ALTER"),  # CreateAcls
    ("DELETE", "/v1/acls"): _cluster("ALTER"),  # DeleteAcls
    # Consumer groups (Kafka: ConsumerGroupHeartbeat, OffsetCommit need READ on the group;
    # OffsetFetch and DescribeGroups DESCRIBE; DeleteGroups DELETE; ListGroups filters).
    ("GET", "/v1/groups"): Rule("GROUP", "DESCRIBE", kind="list"),
    ("GET", "/v1/groups/{group}"): _group("DESCRIBE"),
    ("DELETE", "/v1/groups/{group}"): _group("DELETE"),
    ("POST", "/v1/groups/{group}/heartbeat"): _group("READ"),
    ("DELETE", "/v1/groups/{group}/members/{member}"): _group("READ"),
    ("POST", "/v1/groups/{group}/offsets"): _group("READ"),
    ("GET", "/v1/groups/{group}/offsets"): _group("DESCRIBE"),
    ("POST", "/v1/internal/brokers"): Rule(kind="internal"),
    ("POST", "/v1/internal/brokers/{broker}/heartbeat"): Rule(kind="internal"),
    ("POST", "/v1/internal/controllers"): Rule(kind="internal"),
    ("POST", "/v1/internal/producer-ids"): Rule(kind="internal"),
    ("POST", "/v1/internal/alter-isr"): Rule(kind="internal"),
    ("POST", "/v1/internal/replica-fetch"): Rule(kind="internal"),
}


def route_key(request: web.Request) -> tuple[str, str] | None:
    """(method, route pattern) of the route the request matched, or None (404/405)."""
    if request.match_info.http_exception is not None:
        return None
    resource = request.match_info.route.resource
    if resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return method, resource.canonical


class Security:
    """The node's users and its authorizer, with the state they were built from."""

    def __init__(self, config: NodeConfig, monotonic: Callable[[], float]) -> None:
        self.config = config
        self.users: UserStore | None = None
        if config.sasl:
            assert config.users_file is not None, "config.py requires http.users.file with SASL"
            self.users = UserStore(config.users_file, monotonic)  # UsersFileError: bad file
        self._authorizer: Authorizer | None = None
        self._authorizer_index = -1

    def authorizer(self, request: web.Request) -> Authorizer:
        """The authorizer on the node's current metadata (rebuilt after each new entry)."""
        state = node_of(request).quorum.snapshot_state()
        if self._authorizer is None or self._authorizer_index != state.applied_index:
            self._authorizer = Authorizer(
                state.acls.values(),
                self.config.super_users,
                self.config.allow_everyone_if_no_acl_found,
            )
            self._authorizer_index = state.applied_index
        return self._authorizer

    async def authenticate(self, request: web.Request) -> str:
        """The request's principal; 401 ApiError when its credentials are missing or wrong."""
        store = self.users
        if store is None:
            return ANONYMOUS
        store.maybe_reload()
        header = request.headers.get("Authorization")
        if header is None:
            raise ApiError(
                SASL_AUTHENTICATION_FAILED,
                "authentication required: send Authorization: Basic base64(user:password) "
                "(the tools: sasl.jaas.config in --command-config)",
            )
        name = store.cached(header)
        if name is not None:
            return f"User:{name}"
        parsed = parse_basic(header)
        if parsed is None:
            raise ApiError(
                SASL_AUTHENTICATION_FAILED,
                "the Authorization header must be Basic base64(user:password)",
            )
        user, password = parsed
        credential = store.credential(user)
        # PBKDF2 takes milliseconds by design: off the event loop, in the node's pool of
        # PASSWORD_CHECKS_AT_ONCE_MAX threads, so a flood of wrong passwords cannot take every
        # core; an unknown name costs as much as a wrong password (server/password_checks.py).
        ok = await password_checks.verify(credential, password, store.iterations_max())
        if not ok or credential is None:
            # The listener's client-error line (INFO) says a 401 came from this address; the
            # name tried is for debugging only, and it is the client's text: made printable.
            log.debug(
                "authentication failed for user %s from %s",
                printable(parsed[0], LOGGED_NAME_CHARS_MAX),
                request.remote,
            )
            raise ApiError(
                SASL_AUTHENTICATION_FAILED,
                "Authentication failed: Invalid username or password",
            )
        store.remember(header, user, credential)
        return f"User:{user}"


def _log_denied(
    principal: str, operation: str, resource_type: str, name: str, decision: Decision
) -> None:
    """Why the authorizer refused, at DEBUG: the listener's client-error line (INFO) already
    names the principal, the operation and the resource (the 403's message). Names come from
    clients (a path, a JSON body): made printable and cut."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%s may not %s %s %s (%s)",
            printable(principal, LOGGED_NAME_CHARS_MAX),
            operation,
            resource_type,
            printable(name, LOGGED_NAME_CHARS_MAX),
            printable(decision.reason, LOGGED_MESSAGE_CHARS_MAX),
        )


def _refuse(principal: str, operation: str, resource_type: str, name: str) -> ApiError:
    shown = "the cluster" if resource_type == "CLUSTER" else f"{resource_type.lower()} {name}"
    return ApiError(_ERRORS[resource_type], f"{principal} is not authorized to {operation} {shown}")


def may_describe_topic(request: web.Request, name: str) -> bool:
    """Whether the request's principal may see the topic (for ``GET /v1/topics``)."""
    security: Security | None = request.get(_SECURITY)
    principal = request.get(PRINCIPAL)
    if security is None or principal is None or not security.config.authorizer_enabled:
        return True
    return bool(security.authorizer(request).authorize(principal, "DESCRIBE", "TOPIC", name))


def may_describe_group(request: web.Request, name: str) -> bool:
    """Whether the request's principal may see the group (for ``GET /v1/groups``)."""
    security: Security | None = request.get(_SECURITY)
    principal = request.get(PRINCIPAL)
    if security is None or principal is None or not security.config.authorizer_enabled:
        return True
    return bool(security.authorizer(request).authorize(principal, "DESCRIBE", "GROUP", name))


def require_topics(request: web.Request, operation: str, names: Iterable[str]) -> None:
    """Raises 403 TOPIC_AUTHORIZATION_FAILED unless the request's principal may do
    ``operation`` on every topic named (an offset commit needs READ on its topics, as in
    Kafka, besides READ on the group that the route's rule checks)."""
    security: Security | None = request.get(_SECURITY)
    principal = request.get(PRINCIPAL)
    if security is None or principal is None or not security.config.authorizer_enabled:
        return
    authorizer = security.authorizer(request)
    for name in sorted(set(names)):
        if not authorizer.authorize(principal, operation, "TOPIC", name):
            raise _refuse(principal, operation, "TOPIC", name)


def may_create_topic(request: web.Request, name: str) -> bool:
    """Whether the request's principal may create the topic (CREATE on the cluster or on the
    topic), as Kafka checks before auto-creating one."""
    security: Security | None = request.get(_SECURITY)
    principal = request.get(PRINCIPAL)
    if security is None or principal is None or not security.config.authorizer_enabled:
        return True
    authorizer = security.authorizer(request)
    return bool(
        authorizer.authorize(principal, "CREATE", "CLUSTER", CLUSTER_RESOURCE_NAME)
        or authorizer.authorize(principal, "CREATE", "TOPIC", name)
    )


_SECURITY = "kraft.security"


async def _topic_to_create(request: web.Request, limit_bytes: int) -> str | None:
    """The topic name a create request's body names, or None when it names none. The handler
    then reads the same bytes."""
    body = await read_body(request, limit_bytes)
    replay_body(request, body)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    name = parsed.get("name") if isinstance(parsed, dict) else None
    return name if isinstance(name, str) else None


async def _authorize(security: Security, request: web.Request, rule: Rule, principal: str) -> None:
    authorizer = security.authorizer(request)
    decision: Decision
    name = CLUSTER_RESOURCE_NAME
    if rule.kind == "internal":
        # The internal-auth middleware refuses these already; this keeps the table closed.
        decision = Decision(principal in security.config.super_users, "internal endpoint")
    elif rule.kind == "idempotent":
        decision = authorizer.authorize(principal, "IDEMPOTENT_WRITE", "CLUSTER", name)
        if not decision:
            decision = authorizer.authorize_any_topic(principal, "WRITE")
    elif rule.kind == "create_topic":
        decision = authorizer.authorize(principal, "CREATE", "CLUSTER", name)
        if not decision:
            topic = await _topic_to_create(request, node_of(request).config.max_request_bytes)
            if topic is None:
                # Without CREATE on the cluster only a topic named in the body may be created.
                raise _refuse(principal, "CREATE", "CLUSTER", name)
            decision = authorizer.authorize(principal, "CREATE", "TOPIC", topic)
            if not decision:
                _log_denied(principal, "CREATE", "TOPIC", topic, decision)
                raise _refuse(principal, "CREATE", "TOPIC", topic)
    else:
        if rule.resource_type == "TOPIC":
            name = request.match_info["topic"]
        elif rule.resource_type == "GROUP":
            name = request.match_info["group"]
        decision = authorizer.authorize(principal, rule.operation, rule.resource_type, name)
    if not decision:
        _log_denied(principal, rule.operation, rule.resource_type, name, decision)
        raise _refuse(principal, rule.operation, rule.resource_type, name)


def security_middleware(config: NodeConfig, monotonic: Callable[[], float]) -> Middleware:
    """The middleware (see the module doc). Raises UsersFileError (a ConfigError naming
    http.users.file) when SASL is on and the users file cannot be read."""
    security = Security(config, monotonic)

    @web.middleware
    async def client_security(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.get(INTERNAL_PEER) is not None:
            return await handler(request)
        key = route_key(request)
        rule = RULES.get(key) if key is not None else None
        if rule is not None and rule.kind == "open":
            return await handler(request)
        try:
            principal = await security.authenticate(request)
        except ApiError as e:
            response = error_response(e)
            if not from_console(request):
                # The console asks with its own form: the browser must not show its dialog.
                response.headers["WWW-Authenticate"] = REALM
            return response
        request[PRINCIPAL] = principal
        request[_SECURITY] = security
        if config.authorizer_enabled and key is not None:
            if rule is None:
                # A route missing from the table: refused until someone decides its rule.
                raise ApiError(
                    CLUSTER_AUTHORIZATION_FAILED,
                    f"{request.method} {key[1]} has no authorization rule",
                )
            if rule.kind != "list":
                await _authorize(security, request, rule, principal)
        return await handler(request)

    return client_security
