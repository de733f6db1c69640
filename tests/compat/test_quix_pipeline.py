"""A stream processor no one here wrote, unchanged, on three of our nodes (issue 18, item 3):
the weather pipeline's per-station average over 10-second tumbling windows as a Quix Streams
application (tests/compat/quix_weather_app.py, run as a subprocess under the Python of
quix-requirements.txt's environment), its window state in the compacted changelog topic Quix
creates.

Readings (scripts/examples/weather.py's, seeded) are produced keyed by station with event
times one second apart, then one closing reading per station an hour later, which closes every
window before it. What the application writes is checked against the same averages computed
here in Python (the same sums in the same order: equal floats):

- every window of every station is there, with its average, and nothing else is;
- a restart of the application on an empty state directory (its windows filled again from
  the changelog) halfway through, in the middle of a window: the windows open at the restart
  come out with the readings of both runs, and every window exactly once (the first run
  committed what it wrote when it stopped);
- the kill -9 of a partition leader of ours while it runs: the same windows and averages; a
  window may come out more than once (at-least-once: a write retried or a record processed
  again after a commit that failed), but only ever with the same average.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from scripts.examples.weather import Readings
from scripts.node_process import NodeProcess, http, wait_until
from tests.compat.conftest import KafkaNodes

APP = Path(__file__).with_name("quix_weather_app.py")
DEADLINE_S = 60.0
# Quix starting (imports, its topics, the group's first join) or catching up after a kill.
APP_DEADLINE_S = 120.0
WINDOW_MS = 10_000
STATIONS = 6
READINGS = 300  # one a second: 30 windows of each station that had a reading in it
SEED = 7
Window = tuple[str, int]  # station, start


def readings(base_ms: int) -> list[dict[str, Any]]:
    source = Readings(STATIONS, SEED)
    return [source.next(base_ms + i * 1000) for i in range(READINGS)]


def closing_readings(base_ms: int) -> list[dict[str, Any]]:
    """One reading per station an hour after the others: it closes all their windows (its
    own stays open, so it is never written)."""
    at = base_ms + 3_600_000
    return [
        {"station": f"stn-{i + 1}", "temperature_c": 0.0, "humidity": 50, "timestamp": at}
        for i in range(STATIONS)
    ]


def averages(taken: list[dict[str, Any]]) -> dict[Window, float]:
    """Each station's mean temperature per window, summed in the order of the readings."""
    sums: dict[Window, tuple[float, int]] = {}
    for r in taken:
        window = (r["station"], r["timestamp"] // WINDOW_MS * WINDOW_MS)
        total, count = sums.get(window, (0.0, 0))
        sums[window] = (total + r["temperature_c"], count + 1)
    return {w: total / count for w, (total, count) in sums.items()}


def closed(taken: list[dict[str, Any]]) -> set[Window]:
    """The windows closed once ``taken`` is processed: those that end at or before the latest
    reading of their station (Quix's rule for a window without grace, closed per key)."""
    latest: dict[str, int] = {}
    for r in taken:
        latest[r["station"]] = max(latest.get(r["station"], 0), r["timestamp"])
    return {(s, start) for s, start in averages(taken) if start + WINDOW_MS <= latest[s]}


def produce(nodes: KafkaNodes, topic: str, taken: list[dict[str, Any]]) -> None:
    """Keyed by station, acks=all, idempotent (librdkafka), every one acknowledged."""
    producer = Producer(
        {"bootstrap.servers": nodes.bootstrap, "acks": "all", "enable.idempotence": True}
    )
    errors: list[Any] = []
    for r in taken:
        producer.produce(
            topic, key=r["station"], value=orjson.dumps(r),
            on_delivery=lambda e, _m: errors.append(e),
        )  # fmt: skip
    assert producer.flush(DEADLINE_S) == 0
    assert errors == [None] * len(taken)


def written(nodes: KafkaNodes, topic: str) -> list[tuple[Window, dict[str, Any]]]:
    """Everything in the averages topic, by window (nothing when Quix has not created it)."""
    consumer = Consumer(
        {
            "bootstrap.servers": nodes.bootstrap,
            "group.id": "quix-test-reader",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            return []
        partitions = [TopicPartition(topic, p, 0) for p in metadata.partitions]
        ends = {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions
        }
        consumer.assign(partitions)
        out: list[tuple[Window, dict[str, Any]]] = []
        positions = dict.fromkeys(ends, 0)
        deadline = time.monotonic() + DEADLINE_S
        while any(positions[p] < ends[p] for p in ends):
            assert time.monotonic() < deadline, f"{topic}: read {positions} of {ends}"
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            value = orjson.loads(message.value())
            out.append(((message.key().decode(), value["start"]), value))
            positions[message.partition()] = message.offset() + 1
        return out
    finally:
        consumer.close()


class App:
    """The Quix application running (its stderr, Quix's log, gathered by a thread)."""

    def __init__(
        self, python: Path, nodes: KafkaNodes, group: str, topics: tuple[str, str], state: Path
    ) -> None:
        argv = [
            str(python), str(APP), "--bootstrap-server", nodes.bootstrap, "--group", group,
            "--state-dir", str(state), "--readings", topics[0], "--averages", topics[1],
            "--window-ms", str(WINDOW_MS),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))

    def alive(self) -> bool:
        assert self.process.poll() is None, "Quix exited:\n" + "\n".join(self.log[-40:])
        return True

    def stop(self) -> int:
        """SIGTERM, as a supervisor stops it: Quix commits what it processed and leaves."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(APP_DEADLINE_S)
        self._reader.join(DEADLINE_S)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(DEADLINE_S)


def wait_for_windows(
    app: App, nodes: KafkaNodes, topic: str, windows: set[Window], what: str
) -> list[tuple[Window, dict[str, Any]]]:
    """Waits until every window of ``windows`` has been written (the app alive all along)."""

    failures: list[KafkaException] = []

    def done() -> list[tuple[Window, dict[str, Any]]] | None:
        app.alive()
        try:
            out = written(nodes, topic)
        except KafkaException as e:  # a topic Quix just made, a leader just killed: again
            failures.append(e)
            return None
        return out if windows <= {w for w, _ in out} else None

    try:
        return wait_until(what, done, APP_DEADLINE_S)  # type: ignore[no-any-return]
    except AssertionError as e:
        if app.process.poll() is not None:
            raise  # alive() said it all
        raise AssertionError(
            f"{e}\nlast read failure: {failures[-1:]}\nQuix's log:\n" + "\n".join(app.log[-40:])
        ) from None


def check(
    out: list[tuple[Window, dict[str, Any]]], expected: dict[Window, float]
) -> Counter[Window]:
    """Every window written is expected, with its end and its average; every expected one is
    written. Returns how often each was written."""
    for (station, start), value in out:
        assert value == {
            "start": start,
            "end": start + WINDOW_MS,
            "avg_temperature_c": expected[(station, start)],
        }, (station, start)
    times = Counter(w for w, _ in out)
    assert set(times) == set(expected)
    return times


def base_ms() -> int:
    """Event times from two hours ago: inside the topics' retention (7 days by the record
    timestamp, which Quix sets to the window's start)."""
    return int(time.time() * 1000) // WINDOW_MS * WINDOW_MS - 7_200_000


def create_topic(node: NodeProcess, topic: str) -> None:
    status, body = http("POST", f"{node.url}/v1/topics", {"name": topic, "partitions": 3})
    assert status == 201, body


def changelog_of(group: str, topic: str) -> str:
    return f"changelog__{group}--{topic}--tumbling_window_{WINDOW_MS}"


@pytest.fixture
def apps() -> Iterator[list[App]]:
    """The applications a test starts, killed at its end if still running."""
    started: list[App] = []
    yield started
    for app in started:
        app.kill()


def test_the_window_averages_survive_a_restart_on_an_empty_state_directory(
    quix_python: Path, kafka_nodes: KafkaNodes, tmp_path: Path, apps: list[App]
) -> None:
    node = kafka_nodes.cluster.nodes[0]
    group, topics = "quix-restart", ("weather-restart", "averages-restart")
    create_topic(node, topics[0])
    base = base_ms()
    taken = readings(base)
    # The restart falls in the middle of a window (readings 150-159), which some station has
    # readings of on both sides of it.
    first, second = taken[:155], taken[155:] + closing_readings(base)
    expected = averages(taken)
    spanning = {(r["station"], r["timestamp"] // WINDOW_MS * WINDOW_MS) for r in first[150:]} & {
        (r["station"], r["timestamp"] // WINDOW_MS * WINDOW_MS) for r in second[:5]
    }
    assert spanning

    produce(kafka_nodes, topics[0], first)
    apps.append(App(quix_python, kafka_nodes, group, topics, tmp_path / "state-1"))
    wait_for_windows(apps[0], kafka_nodes, topics[1], closed(first), "the first run's windows")
    assert apps[0].stop() == 0, "\n".join(apps[0].log[-40:])

    # The state Quix keeps is in a compacted topic it made, on our nodes.
    status, changelog = http("GET", f"{node.url}/v1/topics/{changelog_of(group, topics[0])}")
    assert status == 200, changelog
    assert changelog["configs"]["cleanup.policy"] == "compact"
    assert changelog["partition_count"] == 3 and changelog["replication_factor"] == 3
    assert sum(p["high_watermark"] for p in changelog["partitions"]) > 0

    produce(kafka_nodes, topics[0], second)
    apps.append(App(quix_python, kafka_nodes, group, topics, tmp_path / "state-2"))
    out = wait_for_windows(apps[1], kafka_nodes, topics[1], set(expected), "every window")
    assert apps[1].stop() == 0, "\n".join(apps[1].log[-40:])
    # Quix's own word that the second run's windows came from the changelog.
    assert any("Recovery successful for" in line for line in apps[1].log), apps[1].log
    times = check(out, expected)
    assert [w for w, n in times.items() if n != 1] == []


def test_the_window_averages_survive_the_kill_of_a_partition_leader(
    quix_python: Path, kafka_nodes: KafkaNodes, tmp_path: Path, apps: list[App]
) -> None:
    group, topics = "quix-kill", ("weather-kill", "averages-kill")
    create_topic(kafka_nodes.cluster.nodes[1], topics[0])
    base = base_ms()
    taken = readings(base)
    first, second = taken[:100], taken[100:] + closing_readings(base)
    expected = averages(taken)

    produce(kafka_nodes, topics[0], first)
    apps.append(App(quix_python, kafka_nodes, group, topics, tmp_path / "state"))
    wait_for_windows(apps[0], kafka_nodes, topics[1], closed(first), "the windows before the kill")
    status, view = http("GET", f"{kafka_nodes.cluster.nodes[1].url}/v1/topics/{topics[0]}")
    assert status == 200, view
    leader = kafka_nodes.cluster.node(view["partitions"][0]["leader"])
    # Asked through a node that stays up.
    node = next(n for n in kafka_nodes.cluster.nodes if n is not leader)
    leader.kill()

    def new_leader() -> bool:
        # A 503 is "not yet": the killed node may also have led the metadata quorum, and the
        # survivors answer 503 until they elect.
        status, view = http("GET", f"{node.url}/v1/topics/{topics[0]}")
        return status == 200 and view["partitions"][0]["leader"] not in (None, leader.node_id)

    try:
        wait_until(f"a new leader of {topics[0]}-0", new_leader, DEADLINE_S)
        produce(kafka_nodes, topics[0], second)
        out = wait_for_windows(apps[0], kafka_nodes, topics[1], set(expected), "every window")
        assert apps[0].stop() == 0, "\n".join(apps[0].log[-40:])
    finally:
        leader.start()
    # At least once: a window written twice was written with the same average (check).
    check(out, expected)
