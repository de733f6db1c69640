"""The table scripts/bench/vs-kafka prints: pure (figures in, Markdown out).

Figures are kept per way (scripts/bench/plan.py: ``kafka-default``, ``kafka-flush``,
``kafka-tuned``, ``ours``) under keys such as ``produce_rps/100`` (a figure of 100-byte
records) or ``cold_start_s``. Each row shows every Kafka way that applies to it, ours, and the
ratio ours/Kafka for each of those ways, in the same order: whatever the values are. A figure
that was measured but failed shows ``n/a``; a way that does not apply shows ``-``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from scripts.bench.plan import KAFKA_WAYS, OURS

Figures = Mapping[str, Mapping[str, float]]  # way -> key -> value

WAY_TITLES = {
    "kafka-default": "Kafka, defaults",
    "kafka-flush": "Kafka, flush.messages=1",
    "kafka-tuned": "Kafka, producer tuned",
    OURS: "ours",
}


def _int(value: float) -> str:
    return f"{value:,.0f}"


def _two(value: float) -> str:
    return f"{value:,.2f}"


def _one(value: float) -> str:
    return f"{value:,.1f}"


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    kafka_ways: tuple[str, ...]
    show: Callable[[float], str]


def size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def rows(sizes: tuple[int, ...], e2e_rate: float) -> list[Row]:
    """The table's rows, in order, for records of ``sizes`` bytes."""
    every, default = KAFKA_WAYS, ("kafka-default",)
    out: list[Row] = []
    for size in sizes:
        s = size_label(size)
        out += [
            Row(f"produce_rps/{size}", f"{s}: produce, records/s", every, _int),
            Row(f"produce_mbs/{size}", f"{s}: produce, MB/s", every, _two),
            Row(f"produce_p99/{size}", f"{s}: produce latency p99 under load, ms", every, _int),
            Row(f"consume_rps/{size}", f"{s}: consume, records/s", default, _int),
            Row(
                f"consume_fetch_rps/{size}",
                f"{s}: consume without the group join, records/s",
                default,
                _int,
            ),
            Row(f"consume_mbs/{size}", f"{s}: consume, MB/s", default, _two),
            Row(f"e2e_p50/{size}", f"{s}: end-to-end p50 at {e2e_rate:,.0f}/s, ms", default, _one),
            Row(f"e2e_p99/{size}", f"{s}: end-to-end p99 at {e2e_rate:,.0f}/s, ms", default, _one),
        ]
    out += [
        Row("rss_idle_mib", "resident memory, 3 nodes idle, MiB", default, _int),
        Row("rss_load_mib", "resident memory, 3 nodes after load, MiB", default, _int),
        Row("cold_start_s", "cold start to first acked produce, s", default, _two),
        Row("failover_s", "failover, kill -9 of a leader to the next ack, s", default, _two),
    ]
    return out


def ratio(ours: float | None, kafka: float | None) -> str:
    """ours/Kafka with two decimals; ``n/a`` when either is missing or Kafka's is 0."""
    if ours is None or kafka is None or kafka == 0:
        return "n/a"
    return f"{ours / kafka:.2f}"


def render(figures: Figures, sizes: tuple[int, ...], e2e_rate: float) -> str:
    """The Markdown table of ``figures``: figure | each Kafka way | ours | ours/Kafka."""
    header = ["figure", *(WAY_TITLES[w] for w in KAFKA_WAYS), WAY_TITLES[OURS], "ours/Kafka"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows(sizes, e2e_rate):
        ours = figures.get(OURS, {}).get(row.key)
        cells = [row.label]
        ratios: list[str] = []
        for way in KAFKA_WAYS:
            if way not in row.kafka_ways:
                cells.append("-")
                continue
            kafka = figures.get(way, {}).get(row.key)
            cells.append("n/a" if kafka is None else row.show(kafka))
            ratios.append(ratio(ours, kafka))
        cells.append("n/a" if ours is None else row.show(ours))
        cells.append(" / ".join(ratios))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_line(cpuinfo: str, meminfo: str, cores: int | None) -> str:
    """``machine: N cores, M GiB RAM, <CPU model>`` from /proc/cpuinfo and /proc/meminfo."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.lower().startswith("model name") and ":" in line
        ),
        "unknown CPU",
    )
    kib = next(
        (
            int(line.split()[1])
            for line in meminfo.splitlines()
            if line.startswith("MemTotal:") and len(line.split()) >= 2
        ),
        0,
    )
    return f"machine: {cores or '?'} cores, {kib / 1024 / 1024:.1f} GiB RAM, {model}"


def this_machine() -> str:
    """:func:`machine_line` of the machine this runs on (unknown parts where /proc is not)."""

    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    return machine_line(read("/proc/cpuinfo"), read("/proc/meminfo"), os.cpu_count())
