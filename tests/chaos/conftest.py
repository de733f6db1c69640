"""The chaos tier's fixtures: one Toxiproxy server for the session (stopped by pid at the end;
under pytest-xdist one per worker, each on a port of the worker's own), and the summary table of
every schedule run, printed at the end of the tier (a worker's rows are sent to the controller,
which prints them all)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chaos.harness import HEADER, Result
from tests.chaos.schedules import SCHEDULES
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


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: hands the controller this worker's results."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["chaos_results"] = [dataclasses.asdict(r) for r in RESULTS]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the xdist controller: takes a finished worker's results for the table."""
    for fields in getattr(node, "workeroutput", {}).get("chaos_results", []):
        RESULTS.append(Result(**fields))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    order = list(SCHEDULES)
    RESULTS.sort(key=lambda r: order.index(r.schedule) if r.schedule in order else len(order))
    terminalreporter.section("chaos schedules")
    terminalreporter.write_line(HEADER)
    for result in RESULTS:
        terminalreporter.write_line(result.row())
    for result in RESULTS:
        for anomaly in result.anomalies:
            terminalreporter.write_line(f"{result.schedule}: {anomaly}")
