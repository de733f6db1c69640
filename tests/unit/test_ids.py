"""Kafka ids: 16 bytes as 22 characters of unpadded base64url, Uuid.randomUuid's rules."""

from __future__ import annotations

import uuid

import pytest

from storage.ids import (
    METADATA_TOPIC_ID,
    ZERO_UUID,
    is_valid_uuid,
    random_uuid,
    uuid_from_string,
    uuid_to_string,
)


def test_random_uuid_is_22_chars_of_base64url_that_round_trip() -> None:
    for _ in range(200):
        text = random_uuid()
        assert len(text) == 22
        assert is_valid_uuid(text)
        assert uuid_to_string(uuid_from_string(text)) == text


def test_random_uuid_is_a_version_4_uuid_like_javas() -> None:
    raw = uuid_from_string(random_uuid())
    assert uuid.UUID(bytes=raw).version == 4


def test_random_uuid_skips_ids_starting_with_a_dash_and_reserved_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dash = uuid.UUID(bytes=b"\xfb" + bytes(15))  # base64url of 0xfb... starts with "-"
    assert uuid_to_string(dash.bytes).startswith("-")
    sequence = iter([dash, uuid.UUID(int=0), uuid.UUID(int=1), uuid.UUID(int=7)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(sequence))  # the module storage.ids calls
    assert random_uuid() == uuid_to_string(uuid.UUID(int=7).bytes)


def test_reserved_ids_are_kafkas() -> None:
    assert ZERO_UUID == uuid_to_string(bytes(16))
    assert METADATA_TOPIC_ID == uuid_to_string(bytes(15) + b"\x01")


def test_known_kafka_id_decodes() -> None:
    # The id used in Kafka's quickstart docs.
    assert is_valid_uuid("MkU3OEVBNTcwNTJENDM2Qg")
    assert uuid_from_string("MkU3OEVBNTcwNTJENDM2Qg") == b"2E78EA57052D436B"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "MkU3OEVBNTcwNTJENDM2Q",  # 21 characters
        "MkU3OEVBNTcwNTJENDM2QgA",  # 23
        "MkU3OEVBNTcwNTJENDM2Qg==",  # padded
        "MkU3OEVBNTcwNTJENDM2Q+",  # not the url alphabet
        "MkU3OEVBNTcwNTJENDM2Qh",  # unused low bits set: not canonical
        "MkU3OEVBNTcwNTJENDM2Q\u00e9",
    ],
)
def test_invalid_ids_are_refused(text: str) -> None:
    assert not is_valid_uuid(text)
    with pytest.raises(ValueError):
        uuid_from_string(text)


def test_uuid_to_string_needs_16_bytes() -> None:
    with pytest.raises(ValueError):
        uuid_to_string(b"short")
