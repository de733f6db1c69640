"""The SASL core of the KAFKA listener (server/kafka/sasl.py): Kafka's SASL server states,
PLAIN (RFC 4616) and SCRAM-SHA-256 (RFC 5802/7677), with RFC 7677's example as an oracle and a
SCRAM client written here driving the server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

import pytest
from kio.schema.errors import ErrorCode

from server.kafka.sasl import (
    PLAIN_INVALID,
    AuthenticationFailed,
    Authenticator,
    IllegalSaslState,
    PasswordCheck,
    State,
    Step,
    sasl_name_to_user,
    scram_refusal,
)
from server.users import ITERATIONS_MIN, Credential

# RFC 7677 section 3: user "user", password "pencil".
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
# The RFC prints v=6rriTRBi23WpRR/wtup+mMhUq3lBTRl8fJM5oBTuGsM=, which its errata correct to
# this (the signature over the same AuthMessage the example's ClientProof signs; the test
# below recomputes it from the password too).
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

SALT_KEY = secrets.token_bytes(32)  # the node's key of made-up SCRAM salts
USERS = {
    "user": Credential.derive("pencil", salt=RFC_SALT),
    "alice": Credential.derive("alice-secret"),
    "a,b=c": Credential.derive("odd-name"),
}


def authenticator(
    mechanisms: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256"), nonce: str | None = None
) -> Authenticator:
    if nonce is None:
        return Authenticator(mechanisms, USERS.get, salt_key=SALT_KEY)
    return Authenticator(mechanisms, USERS.get, lambda: nonce, salt_key=SALT_KEY)


def scram(server: Authenticator, user: str, password: str, authzid: str = "") -> Step:
    """A SCRAM-SHA-256 client (RFC 5802) written from the RFC: the whole exchange; checks the
    server's signature and returns the final step."""
    name = user.replace("=", "=3D").replace(",", "=2C")
    gs2 = f"n,{'a=' + authzid if authzid else ''},"
    client_nonce = secrets.token_urlsafe(18)
    bare = f"n={name},r={client_nonce}"
    first = server.authenticate((gs2 + bare).encode())
    assert isinstance(first, Step) and first.principal is None
    server_first = first.response.decode()
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    assert fields["r"].startswith(client_nonce) and len(fields["r"]) > len(client_nonce)
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c={base64.b64encode(gs2.encode()).decode()},r={fields['r']}"
    auth_message = f"{bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(stored_key, auth_message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    final = server.authenticate(f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
    assert isinstance(final, Step)
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    expected = b"v=" + base64.b64encode(hmac.digest(server_key, auth_message, "sha256"))
    assert final.response == expected
    return final


def plain(server: Authenticator, token: bytes) -> Step:
    check = server.authenticate(token)
    assert isinstance(check, PasswordCheck)
    ok = check.credential is not None and check.credential.verify(check.password)
    return server.password_checked(ok)


# -- SCRAM-SHA-256 -------------------------------------------------------------------------------


def test_scram_answers_rfc_7677s_example_byte_for_byte() -> None:
    server = authenticator(nonce=RFC_SERVER_NONCE)
    server.handshake("SCRAM-SHA-256")
    first = server.authenticate(RFC_CLIENT_FIRST)
    assert first == Step(RFC_SERVER_FIRST)
    final = server.authenticate(RFC_CLIENT_FINAL)
    assert final == Step(RFC_SERVER_FINAL, "User:user")
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", RFC_SALT, 4096)
    auth_message = RFC_CLIENT_FIRST[3:] + b"," + RFC_SERVER_FIRST + b"," + RFC_CLIENT_FINAL[:-47]
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    assert final.response == b"v=" + base64.b64encode(
        hmac.digest(server_key, auth_message, "sha256")
    )
    assert server.complete and server.principal == "User:user"


def test_scram_client_written_from_the_rfc_authenticates() -> None:
    server = authenticator()
    server.api_versions()
    server.handshake("SCRAM-SHA-256")
    assert scram(server, "alice", "alice-secret").principal == "User:alice"
    assert server.state is State.COMPLETE


def test_scram_decodes_escaped_names_and_accepts_an_authzid_equal_to_the_user() -> None:
    server = authenticator()
    server.handshake("SCRAM-SHA-256")
    assert scram(server, "a,b=c", "odd-name").principal == "User:a,b=c"
    server = authenticator()
    server.handshake("SCRAM-SHA-256")
    assert scram(server, "alice", "alice-secret", authzid="alice").principal == "User:alice"


def test_scram_wrong_password_is_refused_with_kafkas_sentence() -> None:
    server = authenticator()
    server.handshake("SCRAM-SHA-256")
    with pytest.raises(AuthenticationFailed) as e:
        scram(server, "alice", "wrong")
    assert e.value.error_code == ErrorCode.sasl_authentication_failed
    assert e.value.message == scram_refusal("SCRAM-SHA-256")
    assert e.value.reason == "Invalid client credentials"
    assert server.state is State.FAILED and server.principal is None


def _server_first(server: Authenticator, name: str) -> dict[str, str]:
    server.handshake("SCRAM-SHA-256")
    first = server.authenticate(f"n,,n={name},r=abcdef".encode())
    assert isinstance(first, Step) and first.principal is None
    return dict(part.split("=", 1) for part in first.response.decode().split(","))


def test_scram_unknown_user_gets_a_stable_made_up_salt_and_is_refused_at_the_final_message() -> (
    None
):
    # An unknown name is answered as a user is: a salt of a user's size and ITERATIONS_MIN;
    # the same salt on every try (a changing one would say the name is not a user's), and
    # another for another name.
    fields = _server_first(authenticator(), "mallory")
    assert fields["i"] == str(ITERATIONS_MIN)
    assert len(base64.b64decode(fields["s"])) == len(USERS["alice"].salt)
    assert _server_first(authenticator(), "mallory")["s"] == fields["s"]
    assert _server_first(authenticator(), "trudy")["s"] != fields["s"]
    real = _server_first(authenticator(), "alice")
    assert real["s"] == base64.b64encode(USERS["alice"].salt).decode()
    # A node with another key makes up other salts.
    other = Authenticator(("SCRAM-SHA-256",), USERS.get, salt_key=b"another key")
    assert _server_first(other, "mallory")["s"] != fields["s"]
    # The refusal comes at the final message, with the sentence a wrong password gets.
    server = authenticator()
    server.handshake("SCRAM-SHA-256")
    with pytest.raises(AuthenticationFailed) as e:
        scram(server, "mallory", "any password")
    assert e.value.message == scram_refusal("SCRAM-SHA-256")
    assert "no such user" in e.value.reason  # for the node's log only
    assert server.state is State.FAILED and server.principal is None


def test_scram_authzid_of_another_user_is_refused_with_kafkas_words() -> None:
    server = authenticator()
    server.handshake("SCRAM-SHA-256")
    with pytest.raises(AuthenticationFailed, match="authorization id that is different"):
        server.authenticate(b"n,a=user,n=alice,r=abcdef")


@pytest.mark.parametrize(
    "first",
    [
        b"y,,n=alice,r=abc",  # channel binding supported by the client: not built
        b"p=tls-unique,,n=alice,r=abc",  # channel binding required
        b"n,,n=alice",  # no nonce
        b"n,,n=al=ice,r=abc",  # an unescaped "=" in the name
        b"n,,r=abc,n=alice",  # out of order
        b"n,,n=alice,r=abc,tokenauth=true",  # delegation tokens are not built
        b"n,,n=\xc3\xa9,r=abc",  # not ASCII
        b"n,,n=alice,r=" + b"a" * 9000,  # over SASL_TOKEN_BYTES_MAX
    ],
)
def test_scram_bad_first_messages_are_refused(first: bytes) -> None:
    server = authenticator()
    server.handshake("SCRAM-SHA-256")
    with pytest.raises(AuthenticationFailed) as e:
        server.authenticate(first)
    assert e.value.error_code == ErrorCode.sasl_authentication_failed
    assert server.state is State.FAILED


def test_scram_ignores_extensions_kafka_ignores() -> None:
    server = authenticator(nonce=RFC_SERVER_NONCE)
    server.handshake("SCRAM-SHA-256")
    first = server.authenticate(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO,future=1")
    assert isinstance(first, Step) and first.response == RFC_SERVER_FIRST


@pytest.mark.parametrize(
    ("final", "reason"),
    [
        (RFC_CLIENT_FINAL.replace(b"k0,p=", b"k1,p="), "Invalid client nonce"),
        (RFC_CLIENT_FINAL.replace(b"c=biws", b"c=eSws"), "channel binding"),
        (RFC_CLIENT_FINAL.replace(b"p=dHzb", b"p=dHzc"), "Invalid client credentials"),
        (RFC_CLIENT_FINAL[: RFC_CLIENT_FINAL.index(b",p=")], "format"),
        (RFC_CLIENT_FINAL[:-8] + b"AAAA", "Invalid client credentials"),  # a short proof
    ],
)
def test_scram_bad_final_messages_are_refused(final: bytes, reason: str) -> None:
    server = authenticator(nonce=RFC_SERVER_NONCE)
    server.handshake("SCRAM-SHA-256")
    server.authenticate(RFC_CLIENT_FIRST)
    with pytest.raises(AuthenticationFailed) as e:
        server.authenticate(final)
    assert reason in e.value.reason and e.value.message == scram_refusal("SCRAM-SHA-256")
    assert server.principal is None


def test_sasl_names_decode_as_rfc_5802_says() -> None:
    assert sasl_name_to_user("a=2Cb=3Dc") == "a,b=c"
    with pytest.raises(ValueError, match="invalid saslname"):
        sasl_name_to_user("a=2Db")


# -- PLAIN ---------------------------------------------------------------------------------------


def test_plain_right_password_authenticates_and_authzid_may_name_the_user() -> None:
    server = authenticator()
    server.handshake("PLAIN")
    assert plain(server, b"\0alice\0alice-secret") == Step(b"", "User:alice")
    server = authenticator()
    server.handshake("PLAIN")
    assert plain(server, b"alice\0alice\0alice-secret").principal == "User:alice"


@pytest.mark.parametrize("token", [b"\0alice\0wrong", b"\0mallory\0alice-secret"])
def test_plain_wrong_password_or_unknown_user_gets_kafkas_one_message(token: bytes) -> None:
    server = authenticator()
    server.handshake("PLAIN")
    check = server.authenticate(token)
    assert isinstance(check, PasswordCheck)
    assert "alice-secret" not in repr(check) and "wrong" not in repr(check)
    with pytest.raises(AuthenticationFailed) as e:
        server.password_checked(
            check.credential is not None and check.credential.verify(check.password)
        )
    assert e.value.message == PLAIN_INVALID
    assert server.state is State.FAILED


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (b"alice\0alice-secret", "Invalid SASL/PLAIN response: expected 3 tokens, got 2"),
        (b"\0a\0b\0c\0d", "Invalid SASL/PLAIN response: expected 3 tokens, got 4"),
        (b"\0\0alice-secret", "Authentication failed: username not specified"),
        (b"\0alice\0", "Authentication failed: password not specified"),
        (b"user\0alice\0alice-secret", "authorization id that is different from username"),
    ],
)
def test_plain_malformed_tokens_are_refused_with_kafkas_words(token: bytes, message: str) -> None:
    server = authenticator()
    server.handshake("PLAIN")
    with pytest.raises(AuthenticationFailed, match=message):
        server.authenticate(token)


# -- the states ----------------------------------------------------------------------------------


def test_an_unsupported_mechanism_is_refused_with_the_enabled_ones() -> None:
    server = authenticator(("SCRAM-SHA-256",))
    with pytest.raises(AuthenticationFailed) as e:
        server.handshake("PLAIN")
    assert e.value.error_code == ErrorCode.unsupported_sasl_mechanism
    assert "SCRAM-SHA-256" in e.value.message
    assert server.state is State.FAILED


@pytest.mark.parametrize(
    "steps",
    [
        ["authenticate"],  # no handshake first
        ["api_versions", "api_versions"],  # ApiVersions once only
        ["handshake", "api_versions"],  # not after the handshake
        ["handshake", "handshake"],
        ["handshake", "checked"],  # no password check pending
    ],
)
def test_events_out_of_order_are_illegal(steps: list[str]) -> None:
    server = authenticator()
    actions: dict[str, Callable[[], object]] = {
        "api_versions": server.api_versions,
        "handshake": lambda: server.handshake("PLAIN"),
        "authenticate": lambda: server.authenticate(b"\0alice\0alice-secret"),
        "checked": lambda: server.password_checked(True),
    }
    for step in steps[:-1]:
        actions[step]()
    with pytest.raises(IllegalSaslState):
        actions[steps[-1]]()
    assert server.state is State.FAILED


def test_nothing_more_after_completion_or_failure() -> None:
    server = authenticator()
    server.handshake("PLAIN")
    plain(server, b"\0alice\0alice-secret")
    with pytest.raises(IllegalSaslState):
        server.authenticate(b"\0alice\0alice-secret")
    server = authenticator()
    server.handshake("PLAIN")
    with pytest.raises(AuthenticationFailed):
        plain(server, b"\0alice\0nope")
    with pytest.raises(IllegalSaslState):
        server.authenticate(b"\0alice\0alice-secret")
