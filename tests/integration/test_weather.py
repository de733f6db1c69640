"""The weather pipeline of scripts/examples, run as a user runs it on three real nodes: two
averagers in one group, the producer, Ctrl+C to one averager half-way (the other takes its
partitions over), the producer again, then the console consumer reading the averages.

Every average must be the mean of the last ``window`` readings of its station as the
producer printed them (across the takeover too), a station's averages in the order of its
readings, one per reading, and both members of the group must have had partitions and
readings to average."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from scripts.node_process import ROOT, Cluster
from tests.processes import default_sigint, stop

EXAMPLES = ROOT / "scripts" / "examples"
CONSOLE_CONSUMER = [sys.executable, "-m", "client.tools.console_consumer"]
WINDOW = 4
HALF = 75  # readings produced before, and again after, the second averager stops
PARTITIONS = {f"weather-{p}" for p in range(3)}
DEADLINE_S = 60.0  # generous: two cores shared with other work
AVERAGES_LINE = re.compile(r": (\d+) averages? written, offsets committed$")


class Member:
    """One averager process; its stdout lines gathered by a thread as they come."""

    def __init__(self, bootstrap: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(EXAMPLES / "weather_averages.py"),
                "--bootstrap-server",
                bootstrap,
                "--group",
                "weather-averager",
                "--window",
                str(WINDOW),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            preexec_fn=default_sigint,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        # One reader per stream, each until its end: the tool never blocks on a full pipe, and
        # nothing else reads (or closes) the streams while the readers run.
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=_read, args=(self.process.stdout, self.lines), daemon=True),
            threading.Thread(target=_read, args=(self.process.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def owned(self) -> set[str]:
        """The partitions it owns now, by its assigned/revoked lines."""
        owned: set[str] = set()
        for line in list(self.lines):
            kind, _, rest = line.partition(" ")
            names = set(rest.split(" (")[0].split(", "))  # "(windows filled from ...)" left out
            if kind == "assigned":
                owned |= names
            elif kind in ("revoked", "lost"):
                owned -= names
        return owned

    def interrupt(self) -> tuple[int, str]:
        """Ctrl+C; its exit code and stderr once it has stopped."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=DEADLINE_S)
        for reader in self._readers:
            reader.join(DEADLINE_S)
        return self.process.returncode, "".join(f"{line}\n" for line in self.errors)


def _read(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


def wait_until(what: str, predicate: Callable[[], bool], members: list[Member]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        lines = [m.lines for m in members]
        assert time.monotonic() < deadline, f"gave up waiting until {what}: {lines}"
        time.sleep(0.1)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, timeout=DEADLINE_S * 2, check=False
    )


def produce(bootstrap: str, count: int, seed: int, cwd: Path) -> list[tuple[str, float]]:
    """Runs the producer; the (station, temperature) of each reading it printed, in order."""
    out = run(
        [
            sys.executable,
            str(EXAMPLES / "weather_producer.py"),
            "--bootstrap-server",
            bootstrap,
            "--count",
            str(count),
            "--rate",
            "0",
            "--seed",
            str(seed),
        ],
        cwd,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.endswith(f"Sent {count} readings of 6 stations to weather\n")
    readings = []
    for line in out.stdout.splitlines():
        partition, offset, key, value = line.split("\t")
        assert partition.startswith("Partition:") and offset.startswith("Offset:"), line
        reading = json.loads(value)
        assert reading["station"] == key, line
        assert set(reading) == {"station", "temperature_c", "humidity", "timestamp"}, line
        readings.append((key, reading["temperature_c"]))
    assert len(readings) == count
    return readings


def written(members: list[Member]) -> int:
    """How many averages the members say they have written (and committed)."""
    return sum(
        int(m.group(1))
        for member in members
        for line in list(member.lines)
        if (m := AVERAGES_LINE.search(line))
    )


def test_two_averagers_turn_readings_into_each_stations_rolling_average(
    cluster: Cluster, tmp_path: Path
) -> None:
    bootstrap = cluster.nodes[0].bootstrap
    first, second = Member(bootstrap, tmp_path), None
    try:
        members = [first]
        wait_until(
            "the first averager owns every partition", lambda: first.owned() == PARTITIONS, members
        )
        second = Member(bootstrap, tmp_path)
        members.append(second)
        wait_until(
            "the group splits the partitions between the two averagers",
            lambda: (
                all(m.owned() for m in members)
                and first.owned() | second.owned() == PARTITIONS
                and not first.owned() & second.owned()
            ),
            members,
        )
        taken_over = second.owned()

        readings = produce(bootstrap, HALF, 7, tmp_path)
        wait_until(
            "both averagers have averaged the first half", lambda: written(members) == HALF, members
        )
        second_end = second.interrupt()
        wait_until(
            "the first averager owns every partition again",
            lambda: first.owned() == PARTITIONS,
            members,
        )
        readings += produce(bootstrap, HALF, 8, tmp_path)

        consumed = run(
            [
                *CONSOLE_CONSUMER,
                "--bootstrap-server",
                bootstrap,
                "--topic",
                "weather-averages",
                "--from-beginning",
                "--property",
                "print.key=true",
                "--max-messages",
                str(2 * HALF),
                "--timeout-ms",
                str(int(DEADLINE_S * 1000)),
            ],
            tmp_path,
        )
        assert consumed.returncode == 0, consumed.stderr
        first_end = first.interrupt()
    finally:
        for member in (first, second):
            if member is not None:
                stop(member.process)  # type: ignore[arg-type]

    # Ctrl+C: a clean stop, saying how many readings each averaged; both had some to average.
    ends = [first_end, second_end]
    for code, err in ends:
        assert code == 130 and "Traceback" not in err, err
    averaged = [int(re.findall(r"^Averaged (\d+) readings$", err, re.M)[-1]) for _, err in ends]
    assert all(averaged) and sum(averaged) == 2 * HALF, [err for _, err in ends]

    # One average per reading, in order, each over the last WINDOW readings of its station.
    temperatures: dict[str, list[float]] = defaultdict(list)
    for station, temperature in readings:
        temperatures[station].append(temperature)
    averages: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in consumed.stdout.splitlines():
        key, value = line.split("\t")
        average = json.loads(value)
        assert average["station"] == key
        averages[key].append(average)
    assert set(averages) == set(temperatures)
    for station, temps in temperatures.items():
        got = averages[station]
        assert len(got) == len(temps), f"{station}: one average per reading"
        for i, average in enumerate(got):  # in the order of the station's readings
            last = temps[max(0, i + 1 - WINDOW) : i + 1]
            assert (average["readings"], average["window"]) == (len(last), WINDOW), (station, i)
            assert abs(average["avg_temperature_c"] - sum(last) / len(last)) < 0.005 + 1e-9, (
                station,
                i,
            )

    # The first averager filled the windows of the partitions it took over by reading them again.
    takeover = [x for x in first.lines if x.startswith("assigned ") and "windows filled" in x]
    assert takeover and all(tp in takeover[-1] for tp in taken_over), first.lines
