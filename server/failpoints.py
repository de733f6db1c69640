"""Test-only failpoints, switched on by the ``KRAFT_TEST_FAILPOINTS`` environment variable.

``KRAFT_TEST_FAILPOINTS=drop_produce_response=2`` makes the node close the connection instead
of answering its next two successful produce requests (the records are stored and committed),
so a test can show that an idempotent producer's retry stores them once. Unset, nothing fires.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

ENV = "KRAFT_TEST_FAILPOINTS"


class Failpoints:
    def __init__(self, spec: str | None = None) -> None:
        spec = os.environ.get(ENV, "") if spec is None else spec
        self._left: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, count = item.partition("=")
            self._left[name] = int(count or "1")
        if self._left:
            log.warning("test failpoints are on: %s", self._left)

    def take(self, name: str) -> bool:
        """Whether the failpoint fires now (each firing uses one of its count)."""
        left = self._left.get(name, 0)
        if left <= 0:
            return False
        self._left[name] = left - 1
        return True
