"""The proof of the cluster secret on node-to-node calls (server/internal_auth.py): pure, the
clock passed in."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from client.protocol import SASL_AUTHENTICATION_FAILED, ApiError
from server.internal_auth import (
    BODY_HEADER,
    HEADERS,
    NODE_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TARGET_HEADER,
    TIMESTAMP_HEADER,
    InternalAuth,
    NonceCache,
    Proof,
    body_digest,
    derive_key,
    has_proof,
)

SECRET = "s3cret-of-the-cluster"
NOW_MS = 1_780_000_000_000
PATH = "/v1/internal/replica-fetch"
RECEIVER = 1  # the node the calls are for
BODY = b'{"replica_id":2,"partitions":[]}'


def nonce(i: int) -> str:
    return f"{i:032x}"


def signed(
    auth: InternalAuth,
    i: int = 1,
    now_ms: int = NOW_MS,
    method: str = "POST",
    path: str = PATH,
    body: bytes = BODY,
    node_id: int = 2,
) -> dict[str, str]:
    return auth.sign(node_id, method, path, body, now_ms, nonce(i), target_id=RECEIVER)


def verify(
    auth: InternalAuth,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    now_ms: int,
) -> int:
    """The receiver's whole check, in the middleware's order: the headers, then (the body
    read) its digest, then the nonce recorded."""
    proof = auth.check_headers(method, path, headers, now_ms, receiver_id=RECEIVER)
    proof.check_body(body)
    return auth.accept(proof, now_ms)


def refusal(
    auth: InternalAuth,
    headers: dict[str, str],
    method: str = "POST",
    path: str = PATH,
    body: bytes = BODY,
    now_ms: int = NOW_MS,
) -> str:
    with pytest.raises(ApiError) as caught:
        verify(auth, method, path, body, headers, now_ms)
    assert caught.value.kind is SASL_AUTHENTICATION_FAILED
    assert caught.value.status == 401
    return caught.value.message


def test_a_signed_call_verifies_and_names_its_node() -> None:
    sender, receiver = InternalAuth(SECRET), InternalAuth(SECRET)
    headers = signed(sender, node_id=3)
    assert set(headers) == set(HEADERS)
    assert headers[BODY_HEADER] == hashlib.sha256(BODY).hexdigest() == body_digest(BODY)
    assert verify(receiver, "POST", PATH, BODY, headers, NOW_MS + 250) == 3


def test_a_call_meant_for_another_node_is_refused_and_its_target_is_signed() -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth)  # for RECEIVER
    with pytest.raises(ApiError, match=f"meant for node {RECEIVER}"):
        auth.check_headers("POST", PATH, headers, NOW_MS, receiver_id=RECEIVER + 1)
    retargeted = headers | {TARGET_HEADER: str(RECEIVER + 1)}
    with pytest.raises(ApiError, match="the signature does not match"):
        auth.check_headers("POST", PATH, retargeted, NOW_MS, receiver_id=RECEIVER + 1)
    assert verify(auth, "POST", PATH, BODY, headers, NOW_MS) == 2


def test_the_key_is_derived_from_the_secret_not_the_secret_itself() -> None:
    key = derive_key(SECRET)
    assert key != SECRET.encode()
    assert key == hmac.new(SECRET.encode(), b"kraft internal http v1", hashlib.sha256).digest()


def test_a_call_without_any_proof_header_is_refused_naming_what_is_missing() -> None:
    message = refusal(InternalAuth(SECRET), {})
    assert "no proof of the cluster secret" in message
    assert all(name in message for name in HEADERS)
    assert not has_proof({"Content-Type": "application/json"})


@pytest.mark.parametrize("header", HEADERS)
def test_a_call_missing_one_proof_header_is_refused(header: str) -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth)
    del headers[header]
    assert has_proof(headers)
    assert header in refusal(auth, headers)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", PATH, BODY),  # another method
        ("POST", "/v1/internal/alter-isr", BODY),  # another endpoint
        ("POST", PATH + "?x=1", BODY),  # a query added
    ],
)
def test_a_call_changed_on_the_way_is_refused(method: str, path: str, body: bytes) -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth)
    message = refusal(auth, headers, method=method, path=path, body=body)
    assert "the signature does not match" in message
    assert len(auth.nonces) == 0, "a refused call leaves no nonce behind"


@pytest.mark.parametrize("body", [BODY.replace(b"2", b"9"), b"", BODY + b" "])
def test_a_body_other_than_the_signed_one_is_refused_and_its_nonce_not_recorded(
    body: bytes,
) -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth)
    proof = auth.check_headers(
        "POST", PATH, headers, NOW_MS, receiver_id=RECEIVER
    )  # the headers verify
    with pytest.raises(ApiError) as caught:
        proof.check_body(body)
    assert caught.value.kind is SASL_AUTHENTICATION_FAILED
    assert BODY_HEADER in caught.value.message and "not the one signed" in caught.value.message
    assert nonce(1) not in auth.nonces and len(auth.nonces) == 0
    # The same call with its own body still passes: nothing was recorded.
    assert verify(auth, "POST", PATH, BODY, headers, NOW_MS + 5) == 2


def test_a_changed_body_digest_header_breaks_the_signature() -> None:
    auth = InternalAuth(SECRET)
    other = b"another body"
    headers = signed(auth) | {BODY_HEADER: body_digest(other)}
    # A stranger who swaps the body and its digest header is refused at the head.
    assert "the signature does not match" in refusal(auth, headers, body=other)


def test_a_call_without_a_body_signs_the_digest_of_nothing() -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth, method="GET", body=b"")
    assert headers[BODY_HEADER] == hashlib.sha256(b"").hexdigest()
    assert verify(auth, "GET", PATH, b"", headers, NOW_MS) == 2


def test_checking_the_headers_records_nothing_and_accept_records_the_nonce() -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth, node_id=4)
    proof = auth.check_headers("POST", PATH, headers, NOW_MS, receiver_id=RECEIVER)
    assert proof == Proof(4, NOW_MS, nonce(1), body_digest(BODY))
    assert auth.check_headers("POST", PATH, headers, NOW_MS + 1, receiver_id=RECEIVER) == proof, (
        "nothing recorded"
    )
    assert len(auth.nonces) == 0
    proof.check_body(BODY)
    assert auth.accept(proof, NOW_MS + 2) == 4
    assert nonce(1) in auth.nonces
    assert "a replay" in refusal(auth, headers, now_ms=NOW_MS + 3)


def test_two_copies_that_pass_the_headers_at_once_are_accepted_once() -> None:
    """A replay sent while the original's body is still arriving: both heads verify, only the
    first copy to be accepted is served."""
    auth = InternalAuth(SECRET)
    headers = signed(auth)
    first = auth.check_headers("POST", PATH, headers, NOW_MS, receiver_id=RECEIVER)
    second = auth.check_headers("POST", PATH, headers, NOW_MS + 1, receiver_id=RECEIVER)
    assert auth.accept(first, NOW_MS + 2) == 2
    with pytest.raises(ApiError, match="a replay"):
        auth.accept(second, NOW_MS + 3)


def test_a_call_whose_body_arrives_after_the_window_is_not_accepted() -> None:
    """Its nonce would leave the cache at once, and a copy that passed the head meanwhile
    could then be accepted too: accept checks the window again."""
    auth = InternalAuth(SECRET, window_ms=1_000)
    headers = signed(auth)
    proof = auth.check_headers("POST", PATH, headers, NOW_MS + 900, receiver_id=RECEIVER)
    with pytest.raises(ApiError, match="-1001 ms from this node's clock"):
        auth.accept(proof, NOW_MS + 1_001)
    assert len(auth.nonces) == 0


def test_the_method_is_signed_whatever_its_case() -> None:
    auth = InternalAuth(SECRET)
    assert verify(auth, "post", PATH, BODY, signed(auth, method="POST"), NOW_MS) == 2


def test_a_changed_timestamp_or_node_breaks_the_signature() -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth) | {TIMESTAMP_HEADER: str(NOW_MS + 1)}
    assert "the signature does not match" in refusal(auth, headers)
    headers = signed(auth) | {NODE_HEADER: "1"}
    assert "the signature does not match" in refusal(auth, headers)


def test_a_call_signed_with_another_secret_is_refused() -> None:
    stranger = InternalAuth("not-the-secret")
    assert "the signature does not match" in refusal(InternalAuth(SECRET), signed(stranger))


def test_a_forged_signature_of_the_right_shape_is_refused() -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth) | {SIGNATURE_HEADER: "0" * 64}
    assert "the signature does not match" in refusal(auth, headers)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (NODE_HEADER, "-1"),
        (NODE_HEADER, "2147483648"),  # above int32
        (NODE_HEADER, "\u0662"),  # an Arabic-Indic 2: isdigit() is true, not ASCII
        (NODE_HEADER, "1" * 22),
        (TIMESTAMP_HEADER, "1.7e12"),
        (TIMESTAMP_HEADER, "\u00b2"),  # "²"
        (TIMESTAMP_HEADER, "9" * 22),
        (NONCE_HEADER, "short"),
        (NONCE_HEADER, "A" * 32),  # upper case: one spelling per nonce, or a replay passes
        (SIGNATURE_HEADER, "zz"),
        (SIGNATURE_HEADER, "0" * 65),
        (BODY_HEADER, ""),
        (BODY_HEADER, "A" * 64),  # upper case
        (BODY_HEADER, "0" * 63),
    ],
)
def test_malformed_proof_headers_are_refused_by_name(header: str, value: str) -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth) | {header: value}
    assert header in refusal(auth, headers)


def test_a_call_stamped_outside_the_window_is_refused() -> None:
    auth = InternalAuth(SECRET, window_ms=30_000)
    late = refusal(auth, signed(auth, now_ms=NOW_MS - 30_001))
    assert "-30001 ms from this node's clock" in late
    early = refusal(auth, signed(auth, i=2, now_ms=NOW_MS + 30_001))
    assert "30001 ms from this node's clock" in early
    # At the edges of the window, both ways, it is accepted.
    assert verify(auth, "POST", PATH, BODY, signed(auth, i=3, now_ms=NOW_MS - 30_000), NOW_MS)
    assert verify(auth, "POST", PATH, BODY, signed(auth, i=4, now_ms=NOW_MS + 30_000), NOW_MS)


def test_an_exact_replay_is_refused() -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth)
    assert verify(auth, "POST", PATH, BODY, headers, NOW_MS) == 2
    assert "a replay" in refusal(auth, headers, now_ms=NOW_MS + 10)
    # Another call (another nonce) of the same content passes.
    assert verify(auth, "POST", PATH, BODY, signed(auth, i=2), NOW_MS + 10) == 2


def test_a_replay_after_the_window_is_refused_by_its_timestamp() -> None:
    auth = InternalAuth(SECRET, window_ms=1_000)
    headers = signed(auth)
    verify(auth, "POST", PATH, BODY, headers, NOW_MS)
    verify(auth, "POST", PATH, BODY, signed(auth, i=2, now_ms=NOW_MS + 1_500), NOW_MS + 1_500)
    assert nonce(1) not in auth.nonces, "gone from the cache with the window"
    assert "ms from this node's clock" in refusal(auth, headers, now_ms=NOW_MS + 1_500)


def test_the_nonce_cache_stays_within_its_size_and_refuses_what_it_may_have_forgotten() -> None:
    auth = InternalAuth(SECRET, window_ms=30_000, nonces_max=3)
    first = signed(auth, i=1, now_ms=NOW_MS)
    verify(auth, "POST", PATH, BODY, first, NOW_MS)
    for i in range(2, 5):  # all within the window: the oldest (nonce 1) is dropped
        stamp = NOW_MS + i
        verify(auth, "POST", PATH, BODY, signed(auth, i=i, now_ms=stamp), stamp)
    assert len(auth.nonces) == 3
    assert nonce(1) not in auth.nonces
    assert auth.nonces.floor_ms == NOW_MS
    # Its replay is still refused: stamped at or below the floor.
    assert "older than this node's replay cache" in refusal(auth, first, now_ms=NOW_MS + 5)
    # A new call stamped after the floor passes.
    assert verify(auth, "POST", PATH, BODY, signed(auth, i=9, now_ms=NOW_MS + 6), NOW_MS + 6)


def test_the_nonce_cache_forgets_by_age_before_it_drops_anything_in_the_window() -> None:
    cache = NonceCache(window_ms=100, size_max=2)
    cache.add(nonce(1), 0, 0)
    cache.add(nonce(2), 50, 50)
    cache.add(nonce(3), 200, 200)  # nonces 1 and 2 left the window: no floor needed
    assert len(cache) == 1 and cache.floor_ms == -1


def test_an_empty_secret_is_a_configuration_mistake() -> None:
    with pytest.raises(ValueError, match="empty"):
        InternalAuth("")
