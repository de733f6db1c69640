"""A seeded soak: one cluster behind Toxiproxy under the chaos workload for a long while, the
schedules of the chaos tier picked at random (from the seed) one after another with a heal
and a pause between them, then the chaos tier's checks. Prints one row per fault (its longest
time with no acknowledged write) and the run's row, and exits 1 on any anomaly.

Usage: scripts/soak [--seed N] [--minutes M] [--dir DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.checker import longest_gap_s
from tests.chaos.harness import HEADER, Result, Run, run_schedule
from tests.chaos.schedules import SCHEDULES
from tests.chaos.toxics import ToxiproxyServer

# After each heal, before the next fault: the cluster should serve again meanwhile.
BETWEEN_FAULTS_S = 5.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed if unset)")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to inject faults")
    parser.add_argument("--dir", type=Path, default=None, help="where the nodes keep files")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="kraft-soak-"))
    print(f"soak: seed {seed}, {args.minutes} min of faults, files in {directory}", flush=True)
    steps: list[tuple[str, float, float]] = []

    def faults(run: Run) -> None:
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            name = rng.choice(sorted(SCHEDULES))
            start = time.monotonic()
            print(f"soak: {name}", flush=True)
            SCHEDULES[name](run)
            run.heal()
            time.sleep(BETWEEN_FAULTS_S)
            steps.append((name, start, time.monotonic()))

    server = ToxiproxyServer(directory / "toxiproxy.log")
    directory.mkdir(parents=True, exist_ok=True)
    result = Result(f"soak seed {seed}")
    try:
        server.start()
        anomalies = run_schedule(directory / "cluster", "soak", faults, result)
    finally:
        server.stop()
    result.anomalies = [str(a) for a in anomalies]
    print(HEADER)
    for name, start, end in steps:
        gap = longest_gap_s(result.ack_times, start, end)
        print(f"{name:<26} {'':>6} {'':>6} {'':>7} {'':>9} {gap:>9.1f} s")
    print(result.row())
    for anomaly in result.anomalies:
        print(anomaly)
    print(f"client errors: {result.errors}")
    return 1 if anomalies else 0


if __name__ == "__main__":
    sys.exit(main())
