"""The weather pipeline's pure parts (scripts/examples/weather.py): seeded readings, the
rolling averages, and what is not a reading."""

from __future__ import annotations

import orjson
import pytest

from scripts.examples.weather import (
    NotAReading,
    Reading,
    Readings,
    RollingAverages,
    parse_reading,
    to_json,
)


def test_the_same_seed_gives_the_same_readings_but_for_their_timestamps() -> None:
    first = [Readings(6, seed=3).next(1000 + i) for i in range(50)]
    again = [Readings(6, seed=3).next(9000 + i) for i in range(50)]
    assert [{**r, "timestamp": 0} for r in first] == [{**r, "timestamp": 0} for r in again]
    assert [r["timestamp"] for r in again] == list(range(9000, 9050))
    other = [Readings(6, seed=4).next(1000 + i) for i in range(50)]
    assert other != first
    assert {r["station"] for r in first} <= {f"stn-{i}" for i in range(1, 7)}
    assert all(5 <= r["humidity"] <= 100 for r in first)


def test_a_reading_round_trips_through_its_json() -> None:
    reading = Readings(2, seed=1).next(1_765_000_000_000)
    assert parse_reading(to_json(reading)) == Reading(reading["station"], reading["temperature_c"])


def test_an_average_is_over_the_last_window_readings_of_its_station_alone() -> None:
    averages = RollingAverages(window=3)
    temps = [10.0, 11.0, 12.0, 13.0]
    got = [averages.add(Reading("a", t)) for t in temps]
    assert averages.add(Reading("b", 0.0))["avg_temperature_c"] == 0.0
    assert [(g["avg_temperature_c"], g["readings"], g["window"]) for g in got] == [
        (10.0, 1, 3),
        (10.5, 2, 3),
        (11.0, 3, 3),
        (12.0, 3, 3),
    ]
    assert averages.add(Reading("a", 2.0)) == {
        "station": "a",
        "avg_temperature_c": 9.0,
        "readings": 3,
        "window": 3,
    }


def test_a_forgotten_station_starts_a_new_window() -> None:
    averages = RollingAverages(window=2)
    averages.add(Reading("a", 10.0))
    averages.forget(["a", "never-seen"])
    assert averages.add(Reading("a", 4.0))["readings"] == 1


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "no value"),
        (b"hello", "not JSON"),
        (b"[1]", "not a JSON object"),
        (orjson.dumps({"temperature_c": 1}), '"station" is not a non-empty string'),
        (orjson.dumps({"station": "a", "temperature_c": "hot"}), '"temperature_c" is not'),
        (orjson.dumps({"station": "a", "temperature_c": True}), '"temperature_c" is not'),
        (b'{"station": "a", "temperature_c": 1e308}', "outside"),
        (orjson.dumps({"station": "a", "temperature_c": -273.2}), "outside"),
        (orjson.dumps({"station": "b", "temperature_c": 3}), "the key b'a' is not the station"),
    ],
)
def test_what_is_not_a_reading_is_refused_saying_why(value: bytes | None, why: str) -> None:
    with pytest.raises(NotAReading, match=why):
        parse_reading(value, b"a")


def test_a_window_or_a_station_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="window must be at least 1"):
        RollingAverages(0)
    with pytest.raises(ValueError, match="stations must be at least 1"):
        Readings(0, seed=1)
