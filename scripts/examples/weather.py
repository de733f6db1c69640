"""The weather pipeline's pure parts: the readings, the rolling averages, their JSON.

The lab our users come from ends with a weather pipeline: readings go into a topic, a
consumer processes them, the results land in a second topic for a dashboard. Here:

    weather_producer.py  --(weather, key station)-->  weather_averages.py (group
    weather-averager)  --(weather-averages, key station)-->  kraft-console-consumer

A reading (topic ``weather``, key the station id)::

    {"station": "stn-2", "temperature_c": 14.3, "humidity": 71, "timestamp": 1765011662345}

An average (topic ``weather-averages``, key the station id; the record's timestamp is the
reading's)::

    {"station": "stn-2", "avg_temperature_c": 14.12, "readings": 5, "window": 5}

``readings`` is how many readings the average is over: fewer than ``window`` until the
station has had that many (and, after a rebalance, when the member that took the station's
partition could not read enough of them again: see weather_averages.py).

Nothing here does I/O: the scripts do, and tests can run these parts alone.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

READINGS_TOPIC = "weather"
AVERAGES_TOPIC = "weather-averages"
GROUP = "weather-averager"
PARTITIONS = 3  # each topic's, when a script creates it
WINDOW = 5  # readings per average, by default
AVERAGE_DECIMALS = 2  # readings have one decimal; the averages two

# What a station's weather does between two of its readings (a random walk, bounded).
_TEMPERATURE_STEP_C = 0.6
_HUMIDITY_STEP = 3
_HUMIDITY_RANGE = (5, 100)


STATIONS = 6  # by default: murmur2 puts two of stn-1..stn-6 in each of three partitions, so
# two averagers in one group both have stations to average


def station_id(index: int) -> str:
    """The key of station ``index`` (from 1): ``stn-1``, ``stn-2``..."""
    return f"stn-{index}"


class Readings:
    """Readings of ``stations`` stations, each a bounded random walk from its own start.
    The same seed gives the same stations, temperatures and humidities in the same order;
    only the timestamps (given to :meth:`next`) differ between runs."""

    def __init__(self, stations: int, seed: int) -> None:
        if stations < 1:
            raise ValueError(f"stations must be at least 1, got {stations}")
        self._rng = random.Random(seed)
        self._ids = [station_id(i + 1) for i in range(stations)]
        self._temperature = {s: round(self._rng.uniform(-5.0, 30.0), 1) for s in self._ids}
        self._humidity = {s: self._rng.randint(30, 90) for s in self._ids}

    def next(self, timestamp_ms: int) -> dict[str, Any]:
        """The next reading: a station picked at random, its weather moved one step."""
        station = self._rng.choice(self._ids)
        temperature = round(
            self._temperature[station]
            + self._rng.uniform(-_TEMPERATURE_STEP_C, _TEMPERATURE_STEP_C),
            1,
        )
        low, high = _HUMIDITY_RANGE
        humidity = min(
            high,
            max(low, self._humidity[station] + self._rng.randint(-_HUMIDITY_STEP, _HUMIDITY_STEP)),
        )
        self._temperature[station], self._humidity[station] = temperature, humidity
        return {
            "station": station,
            "temperature_c": temperature,
            "humidity": humidity,
            "timestamp": timestamp_ms,
        }


class NotAReading(ValueError):
    """A record of the readings topic that is not a reading; the message says why."""


@dataclass(frozen=True)
class Reading:
    station: str
    temperature_c: float


# Colder or hotter than anywhere on Earth: a typo, or a value no average should take in (a
# 1e308 would turn the station's average into infinity, which JSON cannot carry).
TEMPERATURE_C_RANGE = (-100.0, 100.0)


def parse_reading(value: bytes | None, key: bytes | None = None) -> Reading:
    """The station and temperature of a reading's JSON; raises NotAReading otherwise (a line
    typed into the topic by hand, say). With ``key``, the record's key must be the station:
    the key decides the partition, and a station's readings must all be in one window."""
    if value is None:
        raise NotAReading("no value")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise NotAReading(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise NotAReading("not a JSON object")
    station, temperature = obj.get("station"), obj.get("temperature_c")
    if not isinstance(station, str) or not station:
        raise NotAReading('"station" is not a non-empty string')
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise NotAReading('"temperature_c" is not a number')
    low, high = TEMPERATURE_C_RANGE
    if not low <= temperature <= high:
        raise NotAReading(f'"temperature_c" {temperature!r} is outside [{low:g}, {high:g}]')
    if key is not None and key != station.encode():
        raise NotAReading(f"the key {key[:40]!r} is not the station {station[:40]!r}")
    return Reading(station, float(temperature))


class RollingAverages:
    """Each station's mean temperature over its last ``window`` readings."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.window = window
        self._last: dict[str, deque[float]] = {}

    def add(self, reading: Reading) -> dict[str, Any]:
        """Takes ``reading`` into its station's window; returns the station's average now."""
        last = self._last.get(reading.station)
        if last is None:
            last = self._last[reading.station] = deque(maxlen=self.window)
        last.append(reading.temperature_c)
        return {
            "station": reading.station,
            "avg_temperature_c": round(sum(last) / len(last), AVERAGE_DECIMALS),
            "readings": len(last),
            "window": self.window,
        }

    def forget(self, stations: Iterable[str]) -> None:
        """Drops the windows of ``stations`` (their partition went to another member)."""
        for station in stations:
            self._last.pop(station, None)


def to_json(obj: dict[str, Any]) -> bytes:
    """A reading's or an average's value, as the topics hold it."""
    return orjson.dumps(obj)
