"""docs/settings.md against the code, so the settings table cannot drift.

The node's settings are the ones ``server.config`` accepts (its ``_KNOWN`` names and the
``peer.<id>.*.dial`` pattern) and the topic configs are ``server.topic_configs.TOPIC_CONFIGS``.
Each must have a row in the doc, each row must name a setting the code knows, and a default
written in backticks must be the code's: writing it in a node's properties file changes
nothing, and a topic config's is the default the code gives it. (*empty* stands for the empty
value; a default in words, such as "required", is not checked.)

Pure: the doc is read as text and configs are built from properties, no node runs.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

# Private names: the config module's table of accepted settings is what this test checks the
# doc against; a public copy would be one more thing to keep in step.
from server.config import _KNOWN, _PEER_DIAL, NodeConfig
from server.http_configs import TOPIC_BROKER_SYNONYMS
from server.topic_configs import TOPIC_CONFIGS, effective_configs

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
NODE_SECTION = "## Node settings"
TOPIC_SECTION = "## Topic configs"
# The settings a node cannot start without; every documented default is tried on top of them.
BASE = {
    "node.id": "1",
    "controller.quorum.voters": "1@127.0.0.1:9093",
    "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
}
# A documented name with a placeholder stands for every id.
_PLACEHOLDER = "<id>"
_SOME_ID = "2"
_LITERAL = re.compile(r"`([^`]*)`")


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    default: str | None  # the literal default, "" for *empty*, None for one in words
    cells: tuple[str, ...]
    line: int


def _section(text: str, start: str, end: str | None) -> tuple[str, int]:
    begin = text.index(start)
    stop = text.index(end, begin) if end is not None else len(text)
    return text[begin:stop], text.count("\n", 0, begin) + 1


def _rows(section: str, first_line: int) -> list[Row]:
    """The table rows of a section whose first cell is one backticked name."""
    rows = []
    for number, line in enumerate(section.splitlines(), first_line):
        if not line.startswith("| `"):
            continue
        cells = tuple(cell.strip() for cell in line.strip().strip("|").split("|"))
        name = _LITERAL.fullmatch(cells[0])
        assert name is not None, f"docs/settings.md:{number}: the first cell is not one `name`"
        default_cell = cells[1]
        literal = _LITERAL.match(default_cell)
        default = literal.group(1) if literal else "" if default_cell == "*empty*" else None
        rows.append(Row(name.group(1), default, cells, number))
    return rows


def _doc_rows() -> tuple[list[Row], list[Row]]:
    text = DOC.read_text(encoding="utf-8")
    node = _rows(*_section(text, NODE_SECTION, TOPIC_SECTION))
    topic = _rows(*_section(text, TOPIC_SECTION, None))
    return node, topic


NODE_ROWS, TOPIC_ROWS = _doc_rows()


def _concrete(name: str) -> str:
    return name.replace(_PLACEHOLDER, _SOME_ID)


def _accepted(name: str) -> bool:
    return name in _KNOWN or _PEER_DIAL.match(name) is not None


def _peer_dial_names() -> set[str]:
    """The ``peer.<id>.X.dial`` names the config's pattern accepts, read from its pattern."""
    choice = re.search(r"\(([a-z]+(?:\|[a-z]+)+)\)", _PEER_DIAL.pattern)
    assert choice is not None, f"cannot read the kinds of dial setting from {_PEER_DIAL.pattern}"
    names = {f"peer.{_PLACEHOLDER}.{kind}.dial" for kind in choice.group(1).split("|")}
    assert all(_PEER_DIAL.match(_concrete(n)) for n in names), _PEER_DIAL.pattern
    return names


def _comparable(config: NodeConfig) -> tuple[NodeConfig, dict[str, str]]:
    """A config as the node acts on it: a topic default written out (log.roll.hours=168)
    counts as the same as none when it makes the topic config the code's default anyway."""
    return dataclasses.replace(config, topic_defaults={}), effective_configs(
        config.topic_defaults, {}
    )


def _differences(got: NodeConfig, want: NodeConfig) -> list[str]:
    (got_fields, got_topics), (want_fields, want_topics) = _comparable(got), _comparable(want)
    out = [
        f"{f.name}: {getattr(got_fields, f.name)!r} instead of {getattr(want_fields, f.name)!r}"
        for f in dataclasses.fields(NodeConfig)
        if getattr(got_fields, f.name) != getattr(want_fields, f.name)
    ]
    out += [
        f"topic config {name}: {got_topics[name]!r} instead of {want_topics[name]!r}"
        for name in sorted(want_topics)
        if got_topics[name] != want_topics[name]
    ]
    return out


# -- node settings -------------------------------------------------------------------------------


def test_every_setting_the_node_accepts_has_a_row_in_the_settings_doc() -> None:
    documented = {row.name for row in NODE_ROWS}
    missing = sorted((_KNOWN | _peer_dial_names()) - documented)
    assert not missing, f"docs/settings.md, {NODE_SECTION}, has no row for: {', '.join(missing)}"


def test_every_node_setting_in_the_doc_is_one_the_node_accepts() -> None:
    unknown = [
        f"{row.name} (line {row.line})" for row in NODE_ROWS if not _accepted(_concrete(row.name))
    ]
    assert not unknown, (
        "docs/settings.md documents node settings that server/config.py refuses as unknown: "
        + ", ".join(unknown)
    )


def test_each_node_setting_is_documented_once() -> None:
    names = [row.name for row in NODE_ROWS]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"docs/settings.md has more than one row for: {', '.join(twice)}"


@pytest.mark.parametrize(
    "row", [r for r in NODE_ROWS if r.default is not None], ids=lambda r: r.name
)
def test_a_documented_node_default_is_the_codes(row: Row) -> None:
    """Writing the documented default in the properties file gives the node it would have had
    without the line."""
    assert row.default is not None
    default = NodeConfig.from_properties(BASE)
    written = NodeConfig.from_properties(BASE | {_concrete(row.name): row.default})
    differences = _differences(written, default)
    assert not differences, (
        f"docs/settings.md:{row.line}: {row.name}={row.default!r} is not the default the code "
        f"uses: {'; '.join(differences)}"
    )


def test_most_node_defaults_are_checked_literally() -> None:
    """A row whose default is in words is not checked: keep those the exception."""
    in_words = [row.name for row in NODE_ROWS if row.default is None]
    assert len(in_words) <= 8, f"defaults in words, not checked: {', '.join(in_words)}"


# -- topic configs -------------------------------------------------------------------------------


def test_the_topic_config_table_lists_exactly_the_topic_configs_the_code_has() -> None:
    documented = {row.name for row in TOPIC_ROWS}
    missing = sorted(TOPIC_CONFIGS.keys() - documented)
    unknown = sorted(documented - TOPIC_CONFIGS.keys())
    assert not missing, f"docs/settings.md, {TOPIC_SECTION}, has no row for: {', '.join(missing)}"
    assert not unknown, (
        f"docs/settings.md, {TOPIC_SECTION}, documents topic configs server/topic_configs.py "
        f"does not have: {', '.join(unknown)}"
    )


@pytest.mark.parametrize("row", TOPIC_ROWS, ids=lambda r: r.name)
def test_a_documented_topic_config_default_is_the_codes(row: Row) -> None:
    want = TOPIC_CONFIGS[row.name].default
    assert row.default == want, (
        f"docs/settings.md:{row.line}: {row.name} defaults to {want!r} in "
        f"server/topic_configs.py, the doc says {row.default!r}"
    )


@pytest.mark.parametrize("row", TOPIC_ROWS, ids=lambda r: r.name)
def test_a_topic_configs_node_wide_setting_is_the_one_the_node_reads(row: Row) -> None:
    """The "node-wide" column names Kafka's broker synonym; where the node reads that setting,
    setting it changes this topic config's default."""
    node_wide = _LITERAL.match(row.cells[2])
    assert node_wide is not None, f"docs/settings.md:{row.line}: no `node-wide` setting named"
    name = node_wide.group(1)
    assert name == TOPIC_BROKER_SYNONYMS[row.name], (
        f"docs/settings.md:{row.line}: {row.name}'s broker synonym is "
        f"{TOPIC_BROKER_SYNONYMS[row.name]} (server/http_configs.py), the doc says {name}"
    )
    if name not in _KNOWN:
        assert "not a node setting here" in row.cells[2], (
            f"docs/settings.md:{row.line}: {name} is not a setting the node reads; say so"
        )
        return
    assert row.default is not None
    config = NodeConfig.from_properties(BASE | {name: row.default})
    assert row.name in config.topic_defaults, (
        f"docs/settings.md:{row.line}: the node reads {name}, but not as {row.name}'s default"
    )
