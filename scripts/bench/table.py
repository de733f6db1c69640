"""The table scripts/bench/vs-kafka prints: pure (figures in, Markdown out).

Figures are kept per way (scripts/bench/plan.py: ``kafka-default``, ``kafka-flush``,
``kafka-tuned``, ``ours``, ``ours-kt-default``, ``ours-kt-tuned``) under keys such as
``produce_rps/100`` (a figure of 100-byte records) or ``cold_start_s``. The columns are the
ways of the systems measured, in that order, then the ratios: ``ours/Kafka`` (ours on our
tools over each Kafka way that applies to the row) and, when ours was also measured with
Kafka's tools, ``Kafka's tools: ours/Kafka`` (each Kafka way against the way of ours with the
same producer settings, plan.KT_PAIR), whatever the values are. The first row says whose tools
made each column's figures. A figure that was measured but failed shows ``n/a``; a way that
does not apply to the row shows ``-``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from scripts.bench.plan import (
    KAFKA,
    KAFKA_WAYS,
    KT_PAIR,
    OURS,
    OURS_KAFKA_TOOLS,
    OURS_OWN,
    SYSTEMS,
    System,
)

Figures = Mapping[str, Mapping[str, float]]  # way -> key -> value

WAY_TITLES = {
    "kafka-default": "Kafka, defaults",
    "kafka-flush": "Kafka, flush.messages=1",
    "kafka-tuned": "Kafka, producer tuned",
    OURS: "ours",
    "ours-kt-default": "ours, Kafka's tools, defaults",
    "ours-kt-tuned": "ours, Kafka's tools, producer tuned",
}
TOOLS_TITLES = {"kafka": "Kafka's", "ours": "ours"}
RATIO_OURS = "ours/Kafka"
RATIO_KT = "Kafka's tools: ours/Kafka"
# Under the table: what each "made by" cell means.
TOOLS_LEGEND = {
    "kafka": (
        "Kafka's = Kafka 4.4.0's ProducerPerformance and ConsumerPerformance "
        "(kafka-producer-perf-test, kafka-consumer-perf-test), TopicCommand, and "
        "scripts/bench/KafkaProbe.java on Kafka's Java client (end-to-end, cold start, "
        "failover); in the \"ours, Kafka's tools\" columns pointed at our nodes' KAFKA "
        "listeners (Kafka's binary protocol)"
    ),
    "ours": (
        "ours = kraft-producer-perf-test, kraft-consumer-perf-test, kraft-topics and "
        "scripts/bench/probe.py on our Python client, over HTTP"
    ),
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


def columns(systems: tuple[System, ...]) -> tuple[list[str], list[str]]:
    """The ways shown (in the systems' order) and the ratio columns (those whose two sides
    were both measured)."""
    ways = [w for s in SYSTEMS if s in systems for w in s.ways]
    ratios = []
    if KAFKA in systems and OURS_OWN in systems:
        ratios.append(RATIO_OURS)
    if KAFKA in systems and OURS_KAFKA_TOOLS in systems:
        ratios.append(RATIO_KT)
    return ways, ratios


def _applies(row: Row, way: str) -> bool:
    if way in KAFKA_WAYS:
        return way in row.kafka_ways
    if way == OURS:
        return True
    return way in {KT_PAIR[w] for w in row.kafka_ways}


def render(
    figures: Figures, sizes: tuple[int, ...], e2e_rate: float, systems: tuple[System, ...] = SYSTEMS
) -> str:
    """The Markdown table of ``figures``: figure | each way of ``systems`` | the ratios."""
    ways, ratio_columns = columns(systems)
    header = ["figure", *(WAY_TITLES[w] for w in ways), *ratio_columns]
    tool_of = {w: s.tools for s in SYSTEMS for w in s.ways}
    made_by = ["made by", *(TOOLS_TITLES[tool_of[w]] for w in ways), *[""] * len(ratio_columns)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        "| " + " | ".join(made_by) + " |",
    ]

    def get(way: str, key: str) -> float | None:
        return figures.get(way, {}).get(key)

    for row in rows(sizes, e2e_rate):
        cells = [row.label]
        for way in ways:
            if not _applies(row, way):
                cells.append("-")
                continue
            value = get(way, row.key)
            cells.append("n/a" if value is None else row.show(value))
        for column in ratio_columns:
            pair = {w: OURS for w in KAFKA_WAYS} if column == RATIO_OURS else KT_PAIR
            cells.append(
                " / ".join(ratio(get(pair[w], row.key), get(w, row.key)) for w in row.kafka_ways)
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tools_legend(systems: tuple[System, ...] = SYSTEMS) -> str:
    """The line under the table that says what each "made by" cell means."""
    used = [t for t in ("kafka", "ours") if any(s.tools == t for s in systems)]
    return "made by: " + "; ".join(TOOLS_LEGEND[t] for t in used)


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
