"""The server side of Kafka's SASL authentication, without I/O: one :class:`Authenticator` per
connection of a KAFKA:SASL_PLAINTEXT or KAFKA:SASL_SSL listener (Kafka's
SaslServerAuthenticator, PlainSaslServer and ScramSaslServer).

Theory of operation. A SASL connection starts unauthenticated; until it is authenticated only
ApiVersions (once, before the handshake), SaslHandshake and SaslAuthenticate are allowed, and
anything else closes the connection (Kafka: "Unexpected Kafka request of type X during SASL
handshake"). The states, and the one event each takes::

    VERSIONS_OR_HANDSHAKE --api_versions--> HANDSHAKE --handshake--> AUTHENTICATE
    VERSIONS_OR_HANDSHAKE --handshake-----> AUTHENTICATE
    AUTHENTICATE --authenticate (token)--> AUTHENTICATE (SCRAM's first message) | COMPLETE
    any state --a refusal--> FAILED

An event not in the table raises :class:`IllegalSaslState` (a failed authentication: the
listener closes the connection after connection.failed.authentication.delay.ms). A refusal
raises :class:`AuthenticationFailed` carrying the error code and message the client gets
(the listener answers it after connection.failed.authentication.delay.ms and closes); the
state is then FAILED. COMPLETE gives the principal ``User:<name>``.

The tokens (SaslAuthenticate's auth_bytes), UTF-8:

- PLAIN (RFC 4616): ``authzid NUL user NUL password``; the authzid is empty or the user's
  name, as Kafka requires. The password is checked with PBKDF2 (milliseconds by design), so
  the core hands the driver a :class:`PasswordCheck` to run off the event loop and takes the
  outcome back with :meth:`Authenticator.password_checked`.
- SCRAM-SHA-256 (RFC 5802, RFC 7677), two round trips::

      client-first  n,[a=authzid],n=saslname,r=client-nonce[,ext=value...]
      server-first  r=client-nonce+server-nonce,s=base64(salt),i=iterations
      client-final  c=base64(gs2 header),r=nonce,p=base64(ClientProof)
      server-final  v=base64(ServerSignature)

  with AuthMessage = client-first-bare "," server-first "," client-final-without-proof,
  ClientSignature = HMAC(StoredKey, AuthMessage), and the proof accepted when
  SHA256(ClientProof XOR ClientSignature) == StoredKey. A saslname writes ``,`` as ``=2C`` and
  ``=`` as ``=3D``. Only the gs2 header ``n`` (no channel binding) is accepted, as in Kafka.
  Extensions are ignored as Kafka ignores those it does not support, but ``tokenauth=true``
  (delegation tokens, which this node does not have) is refused.

  A name that is not a user gets a server-first message too, with a made-up salt
  (HMAC-SHA256 of the node's ``salt_key`` and the name: the same on every try, as a real
  user's is) and ITERATIONS_MIN, and is refused at the final message with the sentence a wrong
  password gets, so the exchange does not say which names exist (Kafka refuses an unknown name
  at the first message).

Never a password is kept: PLAIN's is handed to the check and dropped, SCRAM never sees it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from server.kafka.limits import SASL_TOKEN_BYTES_MAX
from server.users import ITERATIONS_MIN, Credential

PLAIN = "PLAIN"
SCRAM_SHA_256 = "SCRAM-SHA-256"
MECHANISMS = (PLAIN, SCRAM_SHA_256)

# Kafka's words (PlainSaslServer): what a PLAIN client is told.
PLAIN_INVALID = "Authentication failed: Invalid username or password"
AUTHZID_DIFFERS = (
    "Authentication failed: Client requested an authorization id that is different from username"
)


def scram_refusal(mechanism: str) -> str:
    """What a SCRAM client is told whatever went wrong (Kafka hides the reason, which may say
    whether the user exists, behind this sentence)."""
    return (
        "Authentication failed during authentication due to invalid credentials with SASL "
        f"mechanism {mechanism}"
    )


class State(enum.Enum):
    VERSIONS_OR_HANDSHAKE = "VERSIONS_OR_HANDSHAKE"
    HANDSHAKE = "HANDSHAKE"
    AUTHENTICATE = "AUTHENTICATE"
    CHECKING_PASSWORD = "CHECKING_PASSWORD"  # PLAIN: the driver runs the PasswordCheck
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


class IllegalSaslState(Exception):  # noqa: N818 (Kafka's name, IllegalSaslStateException)
    """A request the connection's state does not allow: the connection closes."""


class AuthenticationFailed(Exception):  # noqa: N818 (the peer's failure, named as Kafka's)
    """A refusal: ``error_code`` and ``message`` are what the client is told; ``reason`` is
    for the node's log (it may name what the client must not learn, as a missing user)."""

    def __init__(self, error_code: ErrorCode, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.reason = reason or message


@dataclass(frozen=True)
class Step:
    """An authentication step done: the bytes to send back, and the principal once complete."""

    response: bytes
    principal: str | None = None


@dataclass(frozen=True)
class PasswordCheck:
    """PLAIN's password to check against ``credential`` (None: no such user; the driver still
    spends a check's time, so timing does not say which names exist). Run it off the event
    loop and give the outcome to :meth:`Authenticator.password_checked`."""

    user: str
    password: str
    credential: Credential | None

    def __repr__(self) -> str:  # never the password in a log or a traceback
        return f"PasswordCheck(user={self.user!r})"


# Kafka's ScramMessages patterns (ASCII only, as Kafka's).
_VALUE = r"[\x01-\x2b\x2d-\x7f]+"  # no ","
_PRINTABLE = r"[\x21-\x2b\x2d-\x7e]+"  # printable, no ","
_SASLNAME = r"(?:[\x01-\x2b\x2d-\x3c\x3e-\x7f]|=2C|=3D)+"  # no "," or "=" but escaped
_BASE64 = r"(?:[a-zA-Z0-9/+]{4})*(?:[a-zA-Z0-9/+]{3}=|[a-zA-Z0-9/+]{2}==)?"
_EXTENSIONS = rf"(?:,[A-Za-z]+={_VALUE})*"
_CLIENT_FIRST = re.compile(
    rf"n,(?:a=(?P<authzid>{_SASLNAME}))?,(?P<bare>(?:m={_VALUE},)?n=(?P<saslname>{_SASLNAME}),"
    rf"r=(?P<nonce>{_PRINTABLE})(?P<extensions>{_EXTENSIONS}))"
)
_CLIENT_FINAL = re.compile(
    rf"(?P<without_proof>c=(?P<channel>{_BASE64}),r=(?P<nonce>{_PRINTABLE}){_EXTENSIONS}),"
    rf"p=(?P<proof>{_BASE64})"
)


def sasl_name_to_user(saslname: str) -> str:
    """RFC 5802's saslname decoded (``=2C`` is ``,``, ``=3D`` is ``=``); ValueError for any
    other ``=``."""
    if "=" in saslname.replace("=2C", "").replace("=3D", ""):
        raise ValueError(f"invalid saslname {saslname!r}")
    return saslname.replace("=2C", ",").replace("=3D", "=")


def server_nonce() -> str:
    """A fresh server nonce: printable, no comma (Kafka: 130 random bits in base 36)."""
    return secrets.token_urlsafe(24)


class Authenticator:
    """One connection's SASL server state (module docstring).

    ``users`` finds a user's credential (None: no such user); ``nonce`` makes SCRAM's server
    nonce (tests pass RFC 7677's); ``salt_key`` keys SCRAM's made-up salts for unknown names
    (the node's, the same for all its connections, so a name's salt does not change between
    tries)."""

    def __init__(
        self,
        mechanisms: tuple[str, ...],
        users: Callable[[str], Credential | None],
        nonce: Callable[[], str] = server_nonce,
        *,
        salt_key: bytes,
    ) -> None:
        assert mechanisms and set(mechanisms) <= set(MECHANISMS), mechanisms
        assert salt_key, "a made-up salt needs a secret key"
        self.mechanisms = mechanisms
        self._users = users
        self._nonce = nonce
        self._salt_key = salt_key
        self.state = State.VERSIONS_OR_HANDSHAKE
        self.mechanism: str | None = None
        self.principal: str | None = None
        # SCRAM between its two messages: what the final message is checked against.
        self._scram: _ScramExchange | None = None
        self._checking: str | None = None  # PLAIN: the user whose password is being checked

    @property
    def complete(self) -> bool:
        return self.state is State.COMPLETE

    def _expect(self, event: str, *states: State) -> None:
        if self.state not in states:
            state = self.state
            self.state = State.FAILED
            raise IllegalSaslState(
                f"unexpected {event} during SASL authentication state {state.value}"
            )

    def api_versions(self) -> None:
        """An ApiVersions request: allowed once, before the handshake."""
        self._expect("ApiVersions request", State.VERSIONS_OR_HANDSHAKE)
        self.state = State.HANDSHAKE

    def handshake(self, mechanism: str) -> None:
        """SaslHandshake: the client's mechanism. AuthenticationFailed with
        UNSUPPORTED_SASL_MECHANISM when it is not enabled (the answer lists the enabled)."""
        self._expect("SaslHandshake request", State.VERSIONS_OR_HANDSHAKE, State.HANDSHAKE)
        if mechanism not in self.mechanisms:
            self.state = State.FAILED
            raise AuthenticationFailed(
                ErrorCode.unsupported_sasl_mechanism,
                f"Unsupported SASL mechanism {mechanism} (enabled: {', '.join(self.mechanisms)})",
            )
        self.mechanism = mechanism
        self.state = State.AUTHENTICATE

    def authenticate(self, token: bytes) -> Step | PasswordCheck:
        """SaslAuthenticate's bytes: the next step (SCRAM), the password check to run (PLAIN),
        or AuthenticationFailed."""
        self._expect("SaslAuthenticate request", State.AUTHENTICATE)
        try:
            if len(token) > SASL_TOKEN_BYTES_MAX:
                raise self._refusal(
                    f"a SASL token of {len(token)} bytes (at most {SASL_TOKEN_BYTES_MAX})"
                )
            if self.mechanism == PLAIN:
                return self._plain(token)
            return self._scram_step(token)
        except AuthenticationFailed:
            self.state = State.FAILED
            self._scram = None
            raise

    def password_checked(self, ok: bool) -> Step:
        """The outcome of the PasswordCheck that :meth:`authenticate` gave."""
        self._expect("password check", State.CHECKING_PASSWORD)
        user, self._checking = self._checking, None
        if not ok or user is None:
            self.state = State.FAILED
            raise AuthenticationFailed(ErrorCode.sasl_authentication_failed, PLAIN_INVALID)
        self.principal = f"User:{user}"
        self.state = State.COMPLETE
        return Step(b"", self.principal)

    # -- PLAIN ---------------------------------------------------------------------------------

    def _plain(self, token: bytes) -> PasswordCheck:
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            raise self._refusal("a PLAIN token that is not UTF-8") from None
        parts = text.split("\0")
        if len(parts) != 3:
            # Kafka's extractTokens counts at most four.
            raise AuthenticationFailed(
                ErrorCode.sasl_authentication_failed,
                f"Invalid SASL/PLAIN response: expected 3 tokens, got {min(len(parts), 4)}",
            )
        authzid, user, password = parts
        if not user:
            raise self._refusal("Authentication failed: username not specified", shown=True)
        if not password:
            raise self._refusal("Authentication failed: password not specified", shown=True)
        if authzid and authzid != user:
            raise self._refusal(AUTHZID_DIFFERS, shown=True)
        self._checking = user
        self.state = State.CHECKING_PASSWORD
        return PasswordCheck(user, password, self._users(user))

    # -- SCRAM-SHA-256 -------------------------------------------------------------------------

    def _scram_step(self, token: bytes) -> Step:
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            raise self._refusal("a SCRAM message that is not ASCII") from None
        if self._scram is None:
            return self._scram_first(text)
        return self._scram_final(text, self._scram)

    def _scram_first(self, text: str) -> Step:
        match = _CLIENT_FIRST.fullmatch(text)
        if match is None:
            raise self._refusal(f"Invalid SCRAM client first message format: {text[:200]!r}")
        extensions = dict(item.split("=", 1) for item in match["extensions"].split(",") if item)
        if extensions.get("tokenauth", "").lower() == "true":
            raise self._refusal("delegation token authentication (tokenauth) is not built")
        try:
            user = sasl_name_to_user(match["saslname"])
            authzid = sasl_name_to_user(match["authzid"] or "")
        except ValueError as e:
            raise self._refusal(str(e)) from None
        credential = self._users(user)
        known = credential is not None
        if credential is None:
            credential = self._made_up(user)
        if authzid and authzid != user:
            raise self._refusal(AUTHZID_DIFFERS, shown=True)
        nonce = match["nonce"] + self._nonce()
        server_first = (
            f"r={nonce},s={base64.b64encode(credential.salt).decode()},i={credential.iterations}"
        )
        gs2_header = text[: match.start("bare")]
        self._scram = _ScramExchange(
            user, credential, known, gs2_header, match["bare"], server_first, nonce
        )
        return Step(server_first.encode())

    def _scram_final(self, text: str, exchange: _ScramExchange) -> Step:
        self._scram = None
        match = _CLIENT_FINAL.fullmatch(text)
        if match is None:
            raise self._refusal(f"Invalid SCRAM client final message format: {text[:200]!r}")
        if match["nonce"] != exchange.nonce:
            raise self._refusal("Invalid client nonce in the final client message.")
        try:
            channel = base64.b64decode(match["channel"], validate=True)
            proof = base64.b64decode(match["proof"], validate=True)
        except binascii.Error:
            raise self._refusal("invalid base64 in the final client message") from None
        if channel != exchange.gs2_header.encode():
            raise self._refusal("the channel binding is not the first message's gs2 header")
        credential = exchange.credential
        auth_message = (
            f"{exchange.client_first_bare},{exchange.server_first},{match['without_proof']}"
        ).encode()
        client_signature = hmac.digest(credential.stored_key, auth_message, "sha256")
        if len(proof) != len(client_signature):
            raise self._refusal("Invalid client credentials")
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        matches = hmac.compare_digest(hashlib.sha256(client_key).digest(), credential.stored_key)
        if not exchange.known:  # a made-up credential's random keys match no proof anyway
            raise self._refusal("Authentication failed: Invalid user credentials (no such user)")
        if not matches:
            raise self._refusal("Invalid client credentials")
        server_signature = hmac.digest(credential.server_key, auth_message, "sha256")
        self.principal = f"User:{exchange.user}"
        self.state = State.COMPLETE
        return Step(b"v=" + base64.b64encode(server_signature), self.principal)

    def _made_up(self, user: str) -> Credential:
        """The credential an unknown name is answered with: its salt HMAC(salt_key, name), the
        same on every try; random keys, which no proof matches."""
        salt = hmac.digest(self._salt_key, user.encode(), "sha256")
        return Credential(
            iterations=ITERATIONS_MIN,
            salt=salt,
            stored_key=secrets.token_bytes(32),
            server_key=secrets.token_bytes(32),
        )

    def _refusal(self, reason: str, shown: bool = False) -> AuthenticationFailed:
        """SASL_AUTHENTICATION_FAILED. SCRAM's client learns Kafka's one sentence unless
        ``shown`` (Kafka's SaslAuthenticationException messages, sent as they are); PLAIN's
        learns the reason (Kafka's PLAIN messages name no secret)."""
        if self.mechanism == SCRAM_SHA_256 and not shown:
            return AuthenticationFailed(
                ErrorCode.sasl_authentication_failed, scram_refusal(SCRAM_SHA_256), reason
            )
        return AuthenticationFailed(ErrorCode.sasl_authentication_failed, reason)


@dataclass(frozen=True)
class _ScramExchange:
    """A SCRAM authentication between its first and final client messages."""

    user: str
    credential: Credential  # a made-up one when the name is not a user's
    known: bool  # whether the name is a user's
    gs2_header: str
    client_first_bare: str
    server_first: str
    nonce: str
