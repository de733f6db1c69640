"""The proof of the cluster secret on node-to-node calls (server/internal_auth.py): pure, the
clock passed in."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from client.protocol import SASL_AUTHENTICATION_FAILED, ApiError
from server.internal_auth import (
    HEADERS,
    NODE_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InternalAuth,
    NonceCache,
    derive_key,
    has_proof,
)

SECRET = "s3cret-of-the-cluster"
NOW_MS = 1_780_000_000_000
PATH = "/v1/internal/replica-fetch"
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
    return auth.sign(node_id, method, path, body, now_ms, nonce(i))


def refusal(
    auth: InternalAuth,
    headers: dict[str, str],
    method: str = "POST",
    path: str = PATH,
    body: bytes = BODY,
    now_ms: int = NOW_MS,
) -> str:
    with pytest.raises(ApiError) as caught:
        auth.verify(method, path, body, headers, now_ms)
    assert caught.value.kind is SASL_AUTHENTICATION_FAILED
    assert caught.value.status == 401
    return caught.value.message


def test_a_signed_call_verifies_and_names_its_node() -> None:
    sender, receiver = InternalAuth(SECRET), InternalAuth(SECRET)
    headers = signed(sender, node_id=3)
    assert set(headers) == set(HEADERS)
    assert receiver.verify("POST", PATH, BODY, headers, NOW_MS + 250) == 3


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
        ("POST", PATH, BODY.replace(b"2", b"9")),  # another body
        ("POST", PATH, b""),  # the body dropped
    ],
)
def test_a_call_changed_on_the_way_is_refused(method: str, path: str, body: bytes) -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth)
    message = refusal(auth, headers, method=method, path=path, body=body)
    assert "the signature does not match" in message
    assert len(auth.nonces) == 0, "a refused call leaves no nonce behind"


def test_the_method_is_signed_whatever_its_case() -> None:
    auth = InternalAuth(SECRET)
    assert auth.verify("post", PATH, BODY, signed(auth, method="POST"), NOW_MS) == 2


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
    assert auth.verify("POST", PATH, BODY, signed(auth, i=3, now_ms=NOW_MS - 30_000), NOW_MS)
    assert auth.verify("POST", PATH, BODY, signed(auth, i=4, now_ms=NOW_MS + 30_000), NOW_MS)


def test_an_exact_replay_is_refused() -> None:
    auth = InternalAuth(SECRET)
    headers = signed(auth)
    assert auth.verify("POST", PATH, BODY, headers, NOW_MS) == 2
    assert "a replay" in refusal(auth, headers, now_ms=NOW_MS + 10)
    # Another call (another nonce) of the same content passes.
    assert auth.verify("POST", PATH, BODY, signed(auth, i=2), NOW_MS + 10) == 2


def test_a_replay_after_the_window_is_refused_by_its_timestamp() -> None:
    auth = InternalAuth(SECRET, window_ms=1_000)
    headers = signed(auth)
    auth.verify("POST", PATH, BODY, headers, NOW_MS)
    auth.verify("POST", PATH, BODY, signed(auth, i=2, now_ms=NOW_MS + 1_500), NOW_MS + 1_500)
    assert nonce(1) not in auth.nonces, "gone from the cache with the window"
    assert "ms from this node's clock" in refusal(auth, headers, now_ms=NOW_MS + 1_500)


def test_the_nonce_cache_stays_within_its_size_and_refuses_what_it_may_have_forgotten() -> None:
    auth = InternalAuth(SECRET, window_ms=30_000, nonces_max=3)
    first = signed(auth, i=1, now_ms=NOW_MS)
    auth.verify("POST", PATH, BODY, first, NOW_MS)
    for i in range(2, 5):  # all within the window: the oldest (nonce 1) is dropped
        stamp = NOW_MS + i
        auth.verify("POST", PATH, BODY, signed(auth, i=i, now_ms=stamp), stamp)
    assert len(auth.nonces) == 3
    assert nonce(1) not in auth.nonces
    assert auth.nonces.floor_ms == NOW_MS
    # Its replay is still refused: stamped at or below the floor.
    assert "older than this node's replay cache" in refusal(auth, first, now_ms=NOW_MS + 5)
    # A new call stamped after the floor passes.
    assert auth.verify("POST", PATH, BODY, signed(auth, i=9, now_ms=NOW_MS + 6), NOW_MS + 6)


def test_the_nonce_cache_forgets_by_age_before_it_drops_anything_in_the_window() -> None:
    cache = NonceCache(window_ms=100, size_max=2)
    cache.add(nonce(1), 0, 0)
    cache.add(nonce(2), 50, 50)
    cache.add(nonce(3), 200, 200)  # nonces 1 and 2 left the window: no floor needed
    assert len(cache) == 1 and cache.floor_ms == -1


def test_an_empty_secret_is_a_configuration_mistake() -> None:
    with pytest.raises(ValueError, match="empty"):
        InternalAuth("")
