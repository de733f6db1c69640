"""Shared fixtures of the compatibility tier (tests/compat): Kafka's own programs against our
nodes and files. Keep this small: one fixture per outside program a test needs.

- ``kafka``: Kafka 4.4.0's jars and the harness's Java probe, from the cache that
  ``scripts/setup`` fills (``scripts/bench/kafka_dist.py``; ``~/.cache/kraft-bench``). A test
  using it is skipped, with the reason, only when Java or that cache is missing: CI has both.
- ``kafka_tool``: Kafka's command-line tools as ``scripts/kafka-tool`` runs them (on ``kafka``).
- ``kcat``: Debian's kcat (librdkafka's command-line client); skipped only when not installed.
- ``quix_python``: a Python with Quix Streams, in a virtual environment of its own.
- ``kafka_nodes``: a three-node cluster of ours with KAFKA listeners, one per module.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.bench import kafka_dist
from scripts.bench.kafka_dist import KafkaDist
from scripts.node_process import ROOT, Cluster, NodeProcess

# One of Kafka's tools (a JVM starting, a request or two) answers in seconds: a generous bound.
TOOL_TIMEOUT_S = 120.0


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


# -- our nodes with KAFKA listeners, and the programs pointed at them ----------------------------


@dataclass(frozen=True)
class KafkaNodes:
    """A running cluster of ours whose nodes each have a KAFKA listener (:func:`kafka_nodes`)."""

    cluster: Cluster

    def address(self, node: NodeProcess) -> str:
        return node.kafka_address

    @property
    def bootstrap(self) -> str:
        """host:port of every running node, as a client's bootstrap list."""
        return self.cluster.kafka_bootstrap()


@pytest.fixture(scope="module")
def kafka_nodes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaNodes]:
    """Three combined nodes as ``scripts/cluster start`` makes them (topics of three replicas,
    min.insync.replicas=2), node i with a KAFKA listener on K + 2(i-1); five offsets
    partitions (Kafka's 50 take longer to create, the rule is the same). One per module; a
    module's ``KAFKA_NODES_PROPERTIES`` (a dict, optional) adds or overrides node properties."""
    extra: dict[str, Any] = getattr(request.module, "KAFKA_NODES_PROPERTIES", {})
    cluster = Cluster.create(
        tmp_path_factory.mktemp("compat"),
        **{
            "min.insync.replicas": "2",
            "default.replication.factor": "3",
            "offsets.topic.num.partitions": "5",
            **extra,
        },
    )
    cluster.give_kafka_listeners()
    try:
        cluster.start()
        yield KafkaNodes(cluster)
    finally:
        cluster.stop()


@dataclass(frozen=True)
class KafkaToolRunner:
    """Kafka 4.4.0's tools through scripts/kafka_tool.py (``python -m``: the JVM replaces it,
    so the pid of a started tool is the JVM's and a signal reaches the tool itself)."""

    def argv(self, tool: str, *args: str) -> list[str]:
        return [sys.executable, "-m", "scripts.kafka_tool", tool, *args]

    def run(
        self, tool: str, *args: str, input: str | None = None, timeout_s: float = TOOL_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """Runs the tool to completion (its exit code is the caller's to check)."""
        return subprocess.run(
            self.argv(tool, *args),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=ROOT,
        )

    def start(self, tool: str, *args: str) -> subprocess.Popen[str]:
        """Starts the tool with pipes for stdin, stdout and stderr (line-buffered text)."""
        return subprocess.Popen(
            self.argv(tool, *args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=ROOT,
        )


@pytest.fixture(scope="session")
def kafka_tool(kafka: KafkaDist) -> KafkaToolRunner:
    """Kafka's tools as ``scripts/kafka-tool`` runs them (skipped where ``kafka`` is)."""
    return KafkaToolRunner()


@pytest.fixture(scope="session")
def kcat() -> str:
    """kcat (Debian's package, librdkafka's command-line client); skips when not installed
    (``scripts/setup`` installs it when run as root, as in CI)."""
    path = shutil.which("kcat")
    if path is None:
        pytest.skip("kcat is not installed (apt-get install kcat; scripts/setup does it as root)")
    return path


# -- Quix Streams, in a virtual environment of its own --------------------------------------------

QUIX_REQUIREMENTS = Path(__file__).with_name("quix-requirements.txt")
# pip installing ~30 wheels from PyPI (about a minute on a slow line).
QUIX_INSTALL_TIMEOUT_S = 900.0


def quix_venv_dir() -> Path:
    """Where the Quix Streams environment lives (beside Kafka's jars): named by its
    requirements and by this Python's version, so that a change of either builds a new one."""
    cache = kafka_dist.default_cache().parent
    digest = hashlib.sha256(QUIX_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return cache / f"quix-py{version}-{digest}"


@pytest.fixture(scope="session")
def quix_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a virtual environment holding Quix Streams (quix-requirements.txt says
    why it is not the project's), built on first use from PyPI wheels into the cache beside
    Kafka's jars; fails with pip's output when it cannot be built."""
    venv = quix_venv_dir()
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session building the same one: wait
        if python.exists():
            return python
        building = venv.with_name(venv.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        log = tmp_path_factory.mktemp("quix-venv") / "pip.log"
        steps = [
            [sys.executable, "-m", "venv", str(building)],
            [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--only-binary", ":all:", "-r", str(QUIX_REQUIREMENTS)],
        ]  # fmt: skip
        with log.open("w") as out:
            for step in steps:
                done = subprocess.run(
                    step, stdout=out, stderr=subprocess.STDOUT,
                    timeout=QUIX_INSTALL_TIMEOUT_S, check=False,
                )  # fmt: skip
                if done.returncode != 0:
                    pytest.fail(f"{' '.join(step)} failed:\n{log.read_text()[-3000:]}")
        building.rename(venv)
    return python
