"""The weather pipeline's per-station average over tumbling windows, as an ordinary Quix Streams
application (PyPI ``quixstreams``): nothing in it knows it talks to our nodes.

    python quix_weather_app.py --bootstrap-server HOST:PORT --group G --state-dir DIR
        [--readings weather] [--averages weather-window-averages] [--window-ms 10000]

Reads weather readings (scripts/examples/weather.py's shape, keyed by station)::

    {"station": "stn-2", "temperature_c": 14.3, "humidity": 71, "timestamp": 1765011662345}

and writes, keyed by station, one average per station and closed window (event time: the
reading's ``timestamp``; a station's window closes when a later reading of that station
passes its end)::

    {"start": 1765011660000, "end": 1765011670000, "avg_temperature_c": 14.12}

Quix keeps each open window's sum and count in RocksDB under ``--state-dir`` and in a compacted
changelog topic it creates (``changelog__<group>--<readings>--tumbling_window_<ms>``), from
which a new state directory is filled again. At-least-once processing (exactly-once needs
Kafka's transactions). The output topic is created with three partitions of three replicas
(Quix's default is one replica, which ``min.insync.replicas=2`` refuses writes to, in Kafka as
in ours). Runs until SIGTERM or Ctrl+C, when it commits what it processed and leaves.

It runs under the Python of tests/compat/quix-requirements.txt's environment, not the project's.
"""

from __future__ import annotations

import argparse
from typing import Any

from quixstreams import Application
from quixstreams.dataframe.windows import Mean
from quixstreams.models import TopicConfig


def reading_time(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    """Event time: when the reading was taken, not when it was produced."""
    return int(value["timestamp"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-server", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--readings", default="weather")
    parser.add_argument("--averages", default="weather-window-averages")
    parser.add_argument("--window-ms", type=int, default=10_000)
    args = parser.parse_args()

    app = Application(
        broker_address=args.bootstrap_server,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        processing_guarantee="at-least-once",
        commit_interval=1.0,
    )
    readings = app.topic(
        args.readings,
        key_deserializer="str",
        value_deserializer="json",
        timestamp_extractor=reading_time,
    )
    averages = app.topic(
        args.averages,
        key_serializer="str",
        value_serializer="json",
        config=TopicConfig(num_partitions=3, replication_factor=3),
    )
    sdf = app.dataframe(readings)
    sdf = (
        sdf.tumbling_window(duration_ms=args.window_ms)
        .agg(avg_temperature_c=Mean("temperature_c"))
        .final()
    )
    sdf.to_topic(averages)
    app.run()


if __name__ == "__main__":
    main()
