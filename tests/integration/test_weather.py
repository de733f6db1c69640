"""The weather pipeline of scripts/examples, run as a user runs it on three real nodes: two
averagers in one group, the producer, then the console consumer reading the averages.

Every average must be the mean of the last ``window`` readings of its station as the
producer printed them, a station's averages in the order of its readings, and both members
of the group must have had partitions and readings to average."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.node_process import ROOT, Cluster
from tests.processes import default_sigint, stop

EXAMPLES = ROOT / "scripts" / "examples"
CONSOLE_CONSUMER = [sys.executable, "-m", "client.tools.console_consumer"]
WINDOW = 4
READINGS = 150
PARTITIONS = {f"weather-{p}" for p in range(3)}
DEADLINE_S = 60.0  # generous: two cores shared with other work


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
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def owned(self) -> set[str]:
        """The partitions it owns now, by its assigned/revoked lines."""
        owned: set[str] = set()
        for line in list(self.lines):
            kind, _, names = line.partition(" ")
            if kind == "assigned":
                owned |= set(names.split(", "))
            elif kind in ("revoked", "lost"):
                owned -= set(names.split(" (")[0].split(", "))
        return owned

    def interrupt(self) -> tuple[int, str]:
        """Ctrl+C; its exit code and stderr once it has stopped."""
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=DEADLINE_S)
        self._reader.join(DEADLINE_S)
        return self.process.returncode, err


def wait_until(what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.1)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, timeout=DEADLINE_S * 2, check=False
    )


def test_two_averagers_turn_readings_into_each_stations_rolling_average(
    cluster: Cluster, tmp_path: Path
) -> None:
    bootstrap = cluster.nodes[0].bootstrap
    members = [Member(bootstrap, tmp_path)]
    try:
        wait_until(
            "the first averager owns every partition", lambda: members[0].owned() == PARTITIONS
        )
        members.append(Member(bootstrap, tmp_path))
        wait_until(
            "the group splits the partitions between the two averagers",
            lambda: (
                all(m.owned() for m in members)
                and members[0].owned() | members[1].owned() == PARTITIONS
                and not members[0].owned() & members[1].owned()
            ),
        )

        produced = run(
            [
                sys.executable,
                str(EXAMPLES / "weather_producer.py"),
                "--bootstrap-server",
                bootstrap,
                "--count",
                str(READINGS),
                "--rate",
                "0",
                "--seed",
                "7",
            ],
            tmp_path,
        )
        assert produced.returncode == 0, produced.stderr
        assert produced.stderr.endswith(f"Sent {READINGS} readings of 6 stations to weather\n")
        temperatures: dict[str, list[float]] = defaultdict(list)
        for line in produced.stdout.splitlines():
            partition, offset, key, value = line.split("\t")
            assert partition.startswith("Partition:") and offset.startswith("Offset:"), line
            reading = json.loads(value)
            assert reading["station"] == key and set(reading) == {
                "station",
                "temperature_c",
                "humidity",
                "timestamp",
            }
            temperatures[key].append(reading["temperature_c"])
        assert sum(map(len, temperatures.values())) == READINGS

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
                str(READINGS),
                "--timeout-ms",
                str(int(DEADLINE_S * 1000)),
            ],
            tmp_path,
        )
        assert consumed.returncode == 0, consumed.stderr
        ends = [m.interrupt() for m in members]
    finally:
        for member in members:
            stop(member.process)  # type: ignore[arg-type]

    for code, err in ends:
        assert code == 130 and "Traceback" not in err, err
    processed = [int(err.splitlines()[-1].split()[1]) for _, err in ends]
    assert all(processed) and sum(processed) == READINGS, [err for _, err in ends]

    averages: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in consumed.stdout.splitlines():
        key, value = line.split("\t")
        average = json.loads(value)
        assert average["station"] == key
        averages[key].append(average)
    assert set(averages) == set(temperatures)
    for station, readings in temperatures.items():
        expected = []
        for i in range(len(readings)):
            last = readings[max(0, i + 1 - WINDOW) : i + 1]
            expected.append((sum(last) / len(last), len(last)))
        got = averages[station]
        assert len(got) == len(expected), f"{station}: one average per reading"
        for i, (average, (mean, count)) in enumerate(zip(got, expected, strict=True)):
            assert (average["readings"], average["window"]) == (count, WINDOW), (station, i)
            assert abs(average["avg_temperature_c"] - mean) < 0.005 + 1e-9, (station, i)
