"""The test vectors in tests/data were made outside the project (Kafka's batch bytes, Kafka's
murmur2 values) and are the oracle: copied unchanged, never edited to fit. Their SHA-256 digests
were taken from the originals when they were copied, so an edited copy fails here on any clone."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
ORIGINAL_SHA256 = {
    "kafka_v2_batches.json": "4937a820b9ef8c23fe3a894fcb7d987961c8fbf040f0db6588ef11d842f0507b",
    "murmur2.json": "736068d3523d5c3fc046ed96460321c9f57a742912062bdb232ad72953161bb6",
}


def test_every_vector_file_has_a_known_original() -> None:
    # kafka_4.4_*: what Kafka 4.4.0's own code printed, captured in this project (not vectors).
    vectors = [p.name for p in DATA.glob("*.json") if not p.name.startswith("kafka_4.4_")]
    assert sorted(vectors) == sorted(ORIGINAL_SHA256)


@pytest.mark.parametrize("name", sorted(ORIGINAL_SHA256))
def test_a_vector_file_is_an_unchanged_copy_of_its_original(name: str) -> None:
    digest = hashlib.sha256((DATA / name).read_bytes()).hexdigest()
    assert digest == ORIGINAL_SHA256[name], f"tests/data/{name} differs from its original"
