"""Shared fixtures of the compatibility tier (tests/compat): Kafka's own programs against our
nodes and files. Keep this small: one fixture per outside program a test needs.

- ``kafka``: Kafka 4.4.0's jars and the harness's Java probe, from the cache that
  ``scripts/setup`` fills (``scripts/bench/kafka_dist.py``; ``~/.cache/kraft-bench``). A test
  using it is skipped, with the reason, only when Java or that cache is missing: CI has both.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.bench import kafka_dist
from scripts.bench.kafka_dist import KafkaDist


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> KafkaDist:
    """Kafka 4.4.0 from the cache (its probe compiled if its source changed); skips when Java
    or the cache is missing, fails when the cache is there and unusable."""
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            pytest.skip(f"'{tool}' is not on PATH: Kafka 4.4.0 needs Java 17 or newer")
    cache = kafka_dist.default_cache()
    if not (cache / kafka_dist.COMPLETE).exists():
        pytest.skip(f"Kafka {kafka_dist.KAFKA_VERSION}'s jars are not in {cache} (scripts/setup)")
    log: Path = tmp_path_factory.mktemp("kafka-dist") / "fetch.log"
    try:
        return kafka_dist.ensure(cache, log)
    except kafka_dist.FetchError as e:
        pytest.fail(f"{e}\n{log.read_text(errors='replace')[-3000:]}")
