"""SaslHandshake (17) and SaslAuthenticate (36): the driver of server/kafka/sasl.py's core on
the KAFKA listener.

The listener (server/kafka/listener.py) gives each connection of a SASL listener an
:class:`~server.kafka.sasl.Authenticator` (``SaslNode.open``) and lets through, until it is
complete, only ApiVersions, SaslHandshake and SaslAuthenticate (Kafka's
SaslServerAuthenticator). These handlers drive it:

- a refusal (a wrong password, an unknown mechanism) is answered with its error after
  connection.failed.authentication.delay.ms, and the listener then closes the connection;
- a request the state does not allow (SaslAuthenticate before SaslHandshake, a second
  SaslHandshake) is a failed authentication too, as in Kafka: counted and logged, and the
  connection closes without an answer after connection.failed.authentication.delay.ms;
- after SaslHandshake v0 the tokens come as bare size-prefixed frames, no request header
  (Kafka before 1.0): :func:`sasl_token` answers each with the response token, size-prefixed
  (PLAIN's is empty, as Kafka sends it); a refusal has no error field to carry it, so the
  connection closes after the delay without an answer, as in Kafka;
- on a connection that is not SASL, or is authenticated already, both answer
  ILLEGAL_SASL_STATE, as Kafka's KafkaApis does (the connection stays open).

Versions: SaslHandshake v0 and v1, as Kafka 4 serves them. Every client since Kafka 1.0 uses
v1 when ApiVersions offers it, but librdkafka before 2.x (Debian's kcat 1.7: librdkafka 2.0.2
still) enables SASL only when the range offered includes v0. SaslAuthenticate v0 to v2; its
session_lifetime_ms is 0: no re-authentication (Kafka's default connections.max.reauth.ms=0).

PLAIN's password check is PBKDF2 (milliseconds by design): it runs in the node's pool of
PASSWORD_CHECKS_AT_ONCE_MAX threads (server/password_checks.py), and an unknown user costs as
much as a wrong password. SCRAM's server does no PBKDF2; an unknown user gets a made-up salt
(sasl.py), keyed by a secret this node draws at start.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import weakref
from typing import TYPE_CHECKING, Any

from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from server import password_checks
from server.config import NodeConfig
from server.kafka.apis import ApiSpec, RequestContext
from server.kafka.entities import build
from server.kafka.frames import SIZE, CloseConnection
from server.kafka.limits import ERROR_MESSAGE_CHARS_MAX
from server.kafka.sasl import (
    AuthenticationFailed,
    Authenticator,
    IllegalSaslState,
    PasswordCheck,
    Step,
)
from server.log_text import LOGGED_NAME_CHARS_MAX, printable
from server.users import Credential, UserStore

if TYPE_CHECKING:
    from server.node import Node

log = logging.getLogger(__name__)

SASL_HANDSHAKE_KEY = 17
SASL_AUTHENTICATE_KEY = 36


class SaslNode:
    """The node's SASL side of the KAFKA listener: its users, the connections authenticating,
    and the password checks' turn."""

    def __init__(self, config: NodeConfig) -> None:
        assert config.users_file is not None, "config.py requires http.users.file with SASL"
        self.config = config
        self.users = UserStore(config.users_file, time.monotonic)  # UsersFileError: bad file
        self._connections: dict[int, Authenticator] = {}
        # Connections whose SaslHandshake was v0: their tokens come as bare frames.
        self._bare_tokens: set[int] = set()
        # SCRAM's made-up salts for unknown users (sasl.py): stable while the node runs.
        self._salt_key = secrets.token_bytes(32)

    def open(self, connection_id: int) -> Authenticator:
        """A new connection's authenticator (its state lives until :meth:`closed`)."""
        authenticator = Authenticator(
            self.config.sasl_enabled_mechanisms, self._credential, salt_key=self._salt_key
        )
        self._connections[connection_id] = authenticator
        return authenticator

    def closed(self, connection_id: int) -> None:
        self._connections.pop(connection_id, None)
        self._bare_tokens.discard(connection_id)

    def expect_bare_tokens(self, connection_id: int) -> None:
        """After SaslHandshake v0: the connection's tokens come as bare frames."""
        self._bare_tokens.add(connection_id)

    def bare_tokens(self, connection_id: int) -> bool:
        """Whether the connection's next frame is a bare SASL token (after SaslHandshake v0,
        until it is authenticated)."""
        return connection_id in self._bare_tokens

    def authenticator(self, connection_id: int) -> Authenticator | None:
        return self._connections.get(connection_id)

    def _credential(self, name: str) -> Credential | None:
        return self.users.credential(name)

    async def check_password(self, check: PasswordCheck) -> bool:
        """PBKDF2 in the node's password check threads; a decoy for an unknown user."""
        return await password_checks.verify(
            check.credential, check.password, self.users.iterations_max()
        )


_nodes: weakref.WeakKeyDictionary[Node, SaslNode] = weakref.WeakKeyDictionary()


def register(node: Node, sasl: SaslNode) -> None:
    """The listener's SaslNode, for the handlers to find."""
    _nodes[node] = sasl


def _authenticator(ctx: RequestContext) -> Authenticator | None:
    """The connection's authenticator while it is authenticating; None on a connection that
    is not SASL or is authenticated already."""
    sasl = _nodes.get(ctx.node)
    authenticator = sasl.authenticator(ctx.connection_id) if sasl is not None else None
    if authenticator is None or authenticator.complete:
        return None
    return authenticator


async def _refused(
    node: Node, host: str, mechanism: str | None, e: AuthenticationFailed | IllegalSaslState
) -> None:
    """Counts and logs a refusal, then waits connection.failed.authentication.delay.ms."""
    node.metrics.kafka.authenticated(mechanism or "none", ok=False)
    reason = e.reason if isinstance(e, AuthenticationFailed) else str(e)
    log.info(
        "Kafka listener: authentication failed for %s (%s): %s",
        host,
        mechanism or "no mechanism",
        printable(reason, ERROR_MESSAGE_CHARS_MAX),
    )
    await asyncio.sleep(node.config.failed_authentication_delay_ms / 1000)


async def _out_of_turn(
    node: Node, host: str, authenticator: Authenticator, e: IllegalSaslState
) -> CloseConnection:
    """A SASL request the state does not allow: a failed authentication (Kafka's selector
    counts and delays it as any other), then the connection closes unanswered."""
    await _refused(node, host, authenticator.mechanism, e)
    return CloseConnection(str(e))


async def _step(node: Node, host: str, authenticator: Authenticator, token: bytes) -> Step:
    """One token of the mechanism's exchange: the next step (counted and logged once it
    authenticates); AuthenticationFailed once refused (counted, logged, and after the delay);
    IllegalSaslState out of turn."""
    mechanism = authenticator.mechanism
    try:
        step = authenticator.authenticate(token)
        if isinstance(step, PasswordCheck):
            ok = await _nodes[node].check_password(step)
            step = authenticator.password_checked(ok)
    except AuthenticationFailed as e:
        await _refused(node, host, mechanism, e)
        raise
    assert isinstance(step, Step)
    if step.principal is not None:
        node.metrics.kafka.authenticated(mechanism or "none", ok=True)
        log.debug(
            "Kafka listener: %s authenticated as %s with %s",
            host,
            printable(step.principal, LOGGED_NAME_CHARS_MAX),
            mechanism,
        )
    return step


async def sasl_handshake(ctx: RequestContext, request: Any) -> Any:
    """SaslHandshake: the mechanism the client will use, and the enabled ones."""
    response_cls = load_response_schema(ctx.api_key, ctx.api_version)
    authenticator = _authenticator(ctx)
    if authenticator is None:
        return build(response_cls, {"error_code": ErrorCode.illegal_sasl_state, "mechanisms": []})
    mechanisms = list(authenticator.mechanisms)
    sasl = _nodes[ctx.node]
    sasl.users.maybe_reload()
    try:
        authenticator.handshake(request.mechanism)
    except IllegalSaslState as e:
        raise await _out_of_turn(ctx.node, ctx.client_host, authenticator, e) from None
    except AuthenticationFailed as e:
        await _refused(ctx.node, ctx.client_host, None, e)
        return build(response_cls, {"error_code": e.error_code, "mechanisms": mechanisms})
    if ctx.api_version == 0:
        sasl.expect_bare_tokens(ctx.connection_id)
    return build(response_cls, {"error_code": ErrorCode.none, "mechanisms": mechanisms})


async def sasl_authenticate(ctx: RequestContext, request: Any) -> Any:
    """SaslAuthenticate: one step of the mechanism's exchange."""
    response_cls = load_response_schema(ctx.api_key, ctx.api_version)
    authenticator = _authenticator(ctx)
    if authenticator is None:
        return build(
            response_cls,
            {
                "error_code": ErrorCode.illegal_sasl_state,
                "error_message": "SaslAuthenticate request received after successful "
                "authentication",
                "auth_bytes": b"",
            },
        )
    try:
        step = await _step(ctx.node, ctx.client_host, authenticator, request.auth_bytes)
    except IllegalSaslState as e:
        raise await _out_of_turn(ctx.node, ctx.client_host, authenticator, e) from None
    except AuthenticationFailed as e:
        return build(
            response_cls,
            {
                "error_code": e.error_code,
                "error_message": e.message[:ERROR_MESSAGE_CHARS_MAX],
                "auth_bytes": b"",
            },
        )
    # session_lifetime_ms keeps its default 0: no re-authentication.
    return build(
        response_cls,
        {"error_code": ErrorCode.none, "error_message": None, "auth_bytes": step.response},
    )


async def sasl_token(node: Node, connection_id: int, host: str, token: bytes) -> bytes:
    """A bare SASL token after SaslHandshake v0 (a frame with no request header): the
    response token as a size-prefixed frame. CloseConnection when refused (after the delay:
    v0 has no error field, so Kafka answers nothing and closes) or out of turn."""
    authenticator = _nodes[node].authenticator(connection_id)
    assert authenticator is not None and not authenticator.complete, "bare_tokens() first"
    try:
        step = await _step(node, host, authenticator, token)
    except IllegalSaslState as e:
        raise await _out_of_turn(node, host, authenticator, e) from None
    except AuthenticationFailed:
        raise CloseConnection("SASL authentication failed (SaslHandshake v0: no answer)") from None
    return SIZE.pack(len(step.response)) + step.response


SASL_APIS = (
    ApiSpec(SASL_HANDSHAKE_KEY, 0, 1, sasl_handshake),
    ApiSpec(SASL_AUTHENTICATE_KEY, 0, 2, sasl_authenticate),
)
