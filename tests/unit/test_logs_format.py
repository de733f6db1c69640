"""Every line of a node's log names the node; its level is log.level or --log-level, and a
level that is not one of ours is refused at start, naming the setting and the allowed values."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import logs
from server.config import ConfigError, NodeConfig
from server.main import main

GOOD = {
    "node.id": "2",
    "controller.quorum.voters": "2@127.0.0.1:9095",
    "listeners": "HTTP://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095",
    "log.dirs": "/tmp/x/kraft-combined-logs",
}
REFUSAL = "expected one of ERROR, WARN, WARNING, INFO, DEBUG (any case), got "
STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]"


def record(msg: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kraft.server", level, __file__, 1, msg, args, None)


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, given back to pytest as it was (configure replaces its handlers)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_a_line_reads_time_level_node_message_logger() -> None:
    line = logging.Formatter(logs.line_format(2)).format(record("serving on %s", "x:1"))
    assert re.fullmatch(STAMP + r" INFO \[node 2\] serving on x:1 \(kraft.server\)", line), line


def test_a_line_before_the_node_id_is_known_says_node_question_mark() -> None:
    line = logging.Formatter(logs.line_format(None)).format(
        record("log.level: bad", level=logging.CRITICAL)
    )
    assert re.fullmatch(STAMP + r" CRITICAL \[node \?\] log.level: bad \(kraft.server\)", line)


def test_a_message_holding_percent_signs_or_brackets_leaves_the_line_shape_alone() -> None:
    line = logging.Formatter(logs.line_format(3)).format(record("100%% [sic] %s", "%(name)s"))
    assert re.fullmatch(STAMP + r" INFO \[node 3\] 100% \[sic\] %\(name\)s \(kraft.server\)", line)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("ERROR", logging.ERROR),
        ("warn", logging.WARNING),
        ("Warning", logging.WARNING),
        (" info ", logging.INFO),
        ("debug", logging.DEBUG),
    ],
)
def test_levels_are_read_in_any_case_warn_being_kafkas_name(text: str, level: int) -> None:
    assert logs.parse_level(text) == level
    assert NodeConfig.from_properties({**GOOD, "log.level": text}).log_level == level


@pytest.mark.parametrize("text", ["TRACE", "FATAL", "OFF", "", "10", "INFO,stdout"])
def test_a_level_that_is_not_ours_is_refused_naming_the_setting_and_the_allowed_values(
    text: str,
) -> None:
    with pytest.raises(ValueError) as refused:
        logs.parse_level(text)
    assert str(refused.value) == REFUSAL + repr(text)
    with pytest.raises(ConfigError) as config_refused:
        NodeConfig.from_properties({**GOOD, "log.level": text})
    assert str(config_refused.value) == "log.level: " + REFUSAL + repr(text)


def test_the_default_level_is_info() -> None:
    assert NodeConfig.from_properties(dict(GOOD)).log_level == logging.INFO


def test_kraft_server_start_refuses_a_log_level_flag_it_cannot_use(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["node.properties", "--log-level", "TRACE"])
    assert exited.value.code == 2
    assert "argument --log-level: " + REFUSAL + "'TRACE'" in capsys.readouterr().err


def test_lines_name_the_node_once_identified_at_the_level_chosen(
    tmp_path: Path, root_logger: logging.Logger
) -> None:
    path = tmp_path / "node.log"
    logs.configure(path, logging.INFO)
    log = logging.getLogger("kraft.server")
    log.info("before the config")
    log.debug("not at INFO")
    logs.identify(2, logging.WARNING)
    log.info("not at WARNING")
    log.warning("after the config")
    logs.identify(2, logging.DEBUG)
    log.debug("at DEBUG")
    for handler in root_logger.handlers:
        handler.flush()
    lines = path.read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "INFO [node ?] before the config (kraft.server)",
        "WARNING [node 2] after the config (kraft.server)",
        "DEBUG [node 2] at DEBUG (kraft.server)",
    ]
