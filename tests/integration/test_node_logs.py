"""A real node's log: every line names the node; log.level and --log-level choose what is
written; a level that is not one of ours stops the node at start with a line naming it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from scripts.node_process import ROOT, NodeProcess

# server/logs.py's line: [time] LEVEL [node <id>] message (logger)
LINE = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] (?P<level>[A-Z]+) \[node (?P<who>[^\]]+)\] "
)
STAMPED = re.compile(r"^\[\d{4}-")


def stamped_lines(text: str) -> list[re.Match[str] | str]:
    """Each line that starts with a time stamp: its match, or the line when it has not the
    shape (a traceback's lines carry no stamp and are left out)."""
    return [LINE.match(line) or line for line in text.splitlines() if STAMPED.match(line)]


def run_node(node: NodeProcess, *flags: str) -> str:
    """Starts ``node`` with ``flags``, waits until it is ready, stops it; returns the log
    lines this run wrote."""
    node.log_file.touch()
    start = node.log_file.stat().st_size
    with open(node.log_file, "ab") as log:
        node.process = subprocess.Popen(
            [sys.executable, "-m", "server.main", str(node.properties), *flags],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        node.wait_ready()
    finally:
        node.stop()
    return node.log_file.read_bytes()[start:].decode(errors="replace")


def test_every_line_names_the_node_and_the_flag_overrides_log_level(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path, node_id=4, extra_properties={"log.level": "warn"})
    node.format()

    quiet = run_node(node)
    assert all(
        isinstance(m, re.Match) and m["level"] in ("WARNING", "ERROR", "CRITICAL")
        for m in stamped_lines(quiet)
    ), f"log.level=warn writes no INFO line:\n{quiet}"

    told = run_node(node, "--log-level", "INFO")
    lines = stamped_lines(told)
    assert "serving HTTP on" in told, f"--log-level INFO wins over log.level=warn:\n{told}"
    odd = [
        m if isinstance(m, str) else m.group(0)
        for m in lines
        if not isinstance(m, re.Match) or m["who"] != "4"
    ]
    assert not odd, f"lines that do not name node 4: {odd}"


def test_a_level_that_is_not_ours_stops_the_node_at_start_naming_log_level(
    tmp_path: Path,
) -> None:
    node = NodeProcess(tmp_path, extra_properties={"log.level": "TRACE"})
    node.format()
    log_file = tmp_path / "refused.log"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.main",
            str(node.properties),
            "--log-file",
            str(log_file),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    refusal = "log.level: expected one of ERROR, WARN, WARNING, INFO, DEBUG (any case), got 'TRACE'"
    assert out.returncode == 1
    assert out.stderr == f"kraft-server-start: {refusal}\n"
    (line,) = log_file.read_text().splitlines()
    match = LINE.match(line)
    assert match is not None and match["level"] == "CRITICAL" and match["who"] == "?", line
    assert line.endswith(f"{refusal} (kraft.server)")
