"""Every fault schedule of issue 10 against a real three-node cluster whose inter-node links
all go through Toxiproxy: no anomaly in the history, and the cluster whole after the heal.

Run one: ``.venv/bin/python -m pytest tests/chaos -k kill-leader``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.conftest import RESULTS
from tests.chaos.harness import Result, run_schedule
from tests.chaos.schedules import SCHEDULES
from tests.chaos.toxics import ToxiproxyServer


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_leaves_no_anomaly_and_the_cluster_whole(
    name: str, toxiproxy: ToxiproxyServer, tmp_path: Path
) -> None:
    result = Result(name)
    RESULTS.append(result)
    anomalies = run_schedule(tmp_path, name, SCHEDULES[name], result)
    result.anomalies = [str(a) for a in anomalies]
    print(result.row(), result.errors)
    assert not anomalies, "\n".join(result.anomalies)
