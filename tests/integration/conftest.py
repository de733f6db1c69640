"""Fixtures that start real nodes. Every process started here is stopped here, by pid."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scripts.node_process import Cluster, NodeProcess


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One formatted, running, ready node, shared by the tests of a module."""
    handle = NodeProcess(tmp_path_factory.mktemp("node"))
    handle.format()
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[type[NodeProcess] | object]:
    """A factory for nodes of one test (restarts, odd settings); all are stopped after it."""
    started: list[NodeProcess] = []

    def factory(**kwargs: object) -> NodeProcess:
        handle = NodeProcess(tmp_path / f"node{len(started)}", **kwargs)  # type: ignore[arg-type]
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()


@contextmanager
def running_cluster(directory: Path, **properties: str) -> Iterator[Cluster]:
    """A started three-node cluster with ``min.insync.replicas=2`` (and ``properties``), stopped
    after (a node a test paused is resumed by its stop)."""
    handle = Cluster.create(directory, **{"min.insync.replicas": "2", **properties})
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A three-node cluster of one test, ``min.insync.replicas=2`` (see :func:`running_cluster`)."""
    with running_cluster(tmp_path) as handle:
        yield handle
