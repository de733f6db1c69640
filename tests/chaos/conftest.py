"""The chaos tier's fixtures: one Toxiproxy server for the session (stopped by pid at the end),
and the summary table of every schedule run, printed at the end of the tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.harness import HEADER, Result
from tests.chaos.toxics import ToxiproxyServer

RESULTS: list[Result] = []


@pytest.fixture(scope="session")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyServer]:
    server = ToxiproxyServer(tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log")
    try:
        server.start()  # a missing build fails every chaos test with the build's error
        yield server
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    terminalreporter.section("chaos schedules")
    terminalreporter.write_line(HEADER)
    for result in RESULTS:
        terminalreporter.write_line(result.row())
    for result in RESULTS:
        for anomaly in result.anomalies:
            terminalreporter.write_line(f"{result.schedule}: {anomaly}")
