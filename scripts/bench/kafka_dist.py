"""Apache Kafka 4.4.0 for scripts/bench/vs-kafka: its jars fetched from Maven Central into a
cache outside the checkout (nothing of Kafka is committed), and the harness's Java probe
compiled against them.

The cache (``~/.cache/kraft-bench/kafka-4.4.0`` unless ``--cache`` says otherwise)::

    pom.xml        a generated pom depending on kafka_2.13 (the broker, kafka.Kafka,
                   kafka.tools.StorageTool) and kafka-tools (ProducerPerformance,
                   ConsumerPerformance, TopicCommand), plus log4j's binding for slf4j 1.7,
                   which Kafka's distribution ships and its poms leave out (without it
                   the broker would log nothing, which is not how Kafka runs)
    libs/          every runtime jar (mvn dependency:copy-dependencies)
    classes/       KafkaProbe.class (scripts/bench/KafkaProbe.java)
    COMPLETE       written last: a cache without it is fetched again

Maven runs offline first (``-o``: from ~/.m2 when a previous fetch filled it, no network),
and only when that fails, against Maven Central.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "4.4.0"
# Kafka 4.4's own logging jars are log4j 2.25.5 behind slf4j 1.7.36 (its poms).
LOG4J_VERSION = "2.25.5"
ARTIFACTS = (
    ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
    ("org.apache.kafka", "kafka-tools", KAFKA_VERSION),
    ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
)
PROBE_SOURCE = Path(__file__).with_name("KafkaProbe.java")
COMPLETE = "COMPLETE"
# A fetch from Maven Central of ~90 jars (about 60 MB) takes a minute on a slow line.
MAVEN_TIMEOUT_S = 900.0


class FetchError(Exception):
    """Kafka could not be fetched or the probe not compiled."""


def default_cache() -> Path:
    return Path.home() / ".cache" / "kraft-bench" / f"kafka-{KAFKA_VERSION}"


def pom_text(artifacts: tuple[tuple[str, str, str], ...] = ARTIFACTS) -> str:
    """A pom whose runtime dependencies are Kafka's broker and tools."""
    deps = "".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>\n"
        for g, a, v in artifacts
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>local.kraft-bench</groupId>\n"
        f"  <artifactId>kafka-runtime-{KAFKA_VERSION}</artifactId>\n"
        "  <version>1</version>\n"
        "  <packaging>pom</packaging>\n"
        f"  <dependencies>\n{deps}  </dependencies>\n"
        "</project>\n"
    )


def maven_commands(pom: Path, libs: Path) -> list[list[str]]:
    """The commands to try in turn until one succeeds: offline, then online."""
    base = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    return [[*base[:3], "-o", *base[3:]], base]


def javac_command(libs: Path, classes: Path, source: Path = PROBE_SOURCE) -> list[str]:
    return ["javac", "-d", str(classes), "-cp", f"{libs}/*", str(source)]


@dataclass(frozen=True)
class KafkaDist:
    """A complete cache: the class path of Kafka's jars and of the probe."""

    root: Path

    @property
    def libs(self) -> Path:
        return self.root / "libs"

    @property
    def classes(self) -> Path:
        return self.root / "classes"

    @property
    def classpath(self) -> str:
        return f"{self.libs}/*:{self.classes}"


def ensure(cache: Path, log: Path) -> KafkaDist:
    """The cache, fetched and compiled first when incomplete (or when the probe's source is
    newer than its class). Tools' output goes to ``log``; raises FetchError naming the step."""
    dist = KafkaDist(cache)
    probe_class = dist.classes / "KafkaProbe.class"
    if (cache / COMPLETE).exists():
        if probe_class.exists() and probe_class.stat().st_mtime >= PROBE_SOURCE.stat().st_mtime:
            return dist
    else:
        for tool in ("mvn", "java", "javac"):
            if shutil.which(tool) is None:
                raise FetchError(
                    f"'{tool}' is not on PATH (Kafka {KAFKA_VERSION} needs Java 17+ and Maven)"
                )
        cache.mkdir(parents=True, exist_ok=True)
        pom = cache / "pom.xml"
        pom.write_text(pom_text())
        if dist.libs.exists():
            shutil.rmtree(dist.libs)
        for command in maven_commands(pom, dist.libs):
            if _run(command, log) == 0:
                break
        else:
            raise FetchError(f"mvn could not fetch Kafka {KAFKA_VERSION}: see {log}")
    dist.classes.mkdir(parents=True, exist_ok=True)
    if _run(javac_command(dist.libs, dist.classes), log) != 0:
        raise FetchError(f"javac could not compile {PROBE_SOURCE.name}: see {log}")
    (cache / COMPLETE).write_text(f"kafka {KAFKA_VERSION}\n")
    return dist


def _run(command: list[str], log: Path) -> int:
    with log.open("a") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        return subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, timeout=MAVEN_TIMEOUT_S, check=False
        ).returncode
