"""The README runs as written: every command of it, in order, against a cluster its own first
command starts (on free ports, in a temporary directory), with the output compared to what the
README shows. How the README is read and compared: tests/readme_lab.py.

A command runs as a user would type it in the checkout, after source .venv/bin/activate, with
three rewrites and no others: the documented ports (9092-9097) become the test's, the
checkout's paths (``scripts/``, ``.venv/``, ``docs/``, ``compose/``) are made absolute because
the commands run in a temporary directory (whatever they write lands there), and
``scripts/cluster`` is given that directory's ``.cluster`` and the test's base port.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from scripts.node_process import free_port_run
from tests import readme_lab
from tests.processes import default_sigint
from tests.unit.test_docs_api import ROUTES

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
STEP_TIMEOUT_S = 120.0
README_TIMEOUT_S = 1200
INTERRUPT_WAIT_S = 60.0
# How long a step marked "eventually" may take to show what the README shows.
EVENTUALLY_S = 60.0
_CLUSTER = re.compile(r"(?<![\w/.-])scripts/cluster (start|add|remove-controller|stop|status)\b")
_CHECKOUT_PATH = re.compile(r"(?<![\w/.-])(scripts|\.venv|docs|compose)/")


@dataclass
class Lab:
    """The temporary directory the README's commands run in, and the test's ports."""

    work: Path
    base_port: int
    kafka_base_port: int

    def rewrite(self, command: str) -> str:
        """``command`` as the test runs it (the three rewrites of the module docstring)."""
        command = readme_lab.rewrite_ports(command, self.base_port, self.kafka_base_port)

        def cluster(match: re.Match[str]) -> str:
            verb = match.group(1)
            extra = "" if "--dir" in command else " --dir .cluster"
            if verb == "start" and "--base-port" not in command:
                extra += f" --base-port {self.base_port}"
            if verb == "start" and "--kafka-base-port" not in command:
                extra += f" --kafka-base-port {self.kafka_base_port}"
            return f"scripts/cluster {verb}{extra}"

        command = _CLUSTER.sub(cluster, command)
        return _CHECKOUT_PATH.sub(lambda m: f"{ROOT}/{m.group(1)}/", command)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(ROOT / ".venv")
        env.pop("PYTHONPATH", None)
        env["COLUMNS"] = "200"
        return env

    def run(self, step: readme_lab.Step) -> tuple[int, str]:
        """Runs one step; returns its exit status and everything it printed (both streams,
        as a terminal shows them)."""
        if step.python:
            script = self.work / f"readme_line_{step.line_no}.py"
            script.write_text(
                readme_lab.rewrite_ports(step.command, self.base_port, self.kafka_base_port)
            )
            argv = [str(ROOT / ".venv" / "bin" / "python"), str(script)]
        else:
            argv = ["bash", "-c", self.rewrite(step.command)]
        process = subprocess.Popen(
            argv,
            cwd=self.work,
            env=self.environment(),
            stdin=subprocess.PIPE if step.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl+C and kill reach all of it
            preexec_fn=default_sigint,
        )
        printed: list[bytes] = []
        assert process.stdout is not None
        reader = threading.Thread(target=_read_all, args=(process.stdout, printed), daemon=True)
        reader.start()
        try:
            if step.stdin is not None:
                assert process.stdin is not None
                try:
                    process.stdin.write("".join(f"{line}\n" for line in step.stdin).encode())
                    process.stdin.close()
                except BrokenPipeError:
                    pass  # it exited before reading: its status and output say why
            if step.interrupt_after is not None:
                # Ctrl+C once what the README shows before it has appeared (not merely as many
                # lines: a warning line in between must not make it come early).
                want = Counter(
                    readme_lab.normalize_line(line)
                    for line in (step.expected or [])[: step.interrupt_after]
                    if line.strip()
                )
                deadline = time.monotonic() + INTERRUPT_WAIT_S
                while not want <= _printed_lines(printed) and process.poll() is None:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGINT)
            status = process.wait(timeout=STEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = -9
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        reader.join(timeout=10)
        return status, b"".join(printed).decode(errors="replace")

    def stop_clusters(self) -> None:
        """Stops every cluster a README command started under the work directory: by the
        launcher, then any node still alive by the pid in its pid file."""
        for pid_file in sorted(self.work.glob("**/node-*/node.pid")):
            directory = pid_file.parent.parent
            subprocess.run(
                [str(ROOT / "scripts" / "cluster"), "stop", "--dir", str(directory)],
                capture_output=True,
                timeout=120,
                check=False,
            )
        for pid_file in self.work.glob("**/node-*/node.pid"):
            try:
                pid = int(pid_file.read_text())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except (OSError, ValueError):
                continue
            if str(pid_file.parent) in cmdline:
                os.kill(pid, signal.SIGKILL)


def _read_all(stream: object, into: list[bytes]) -> None:
    read = stream.read1  # type: ignore[attr-defined]
    while chunk := read(65536):
        into.append(chunk)


def _printed_lines(printed: list[bytes]) -> Counter[str]:
    text = b"".join(printed).decode(errors="replace")
    return Counter(readme_lab.normalize_line(line) for line in text.splitlines() if line.strip())


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    work = tmp_path / "work"
    work.mkdir()
    handle = Lab(
        work,
        free_port_run(readme_lab.CLUSTER_PORTS),
        free_port_run(readme_lab.KAFKA_PORTS),
    )
    try:
        yield handle
    finally:
        handle.stop_clusters()


def readme_blocks() -> list[readme_lab.Block]:
    return readme_lab.blocks(README.read_text())


def _check_step(lab: Lab, step: readme_lab.Step, where: str) -> str | None:
    """Runs one step; what differs from the README, or None."""
    status, printed = lab.run(step)
    # After Ctrl+C: Kafka's tools exit 130, others die of the signal.
    allowed = {step.exit_status}
    if step.interrupt_after is not None:
        allowed = {130, -signal.SIGINT}
    if status not in allowed:
        return f"{where}\n  exit status {status}; printed:\n{printed}"
    if step.expected is None:
        return None
    shown = [
        readme_lab.rewrite_ports(line, lab.base_port, lab.kafka_base_port) for line in step.expected
    ]
    difference = readme_lab.output_difference(replace(step, expected=shown), printed)
    return f"{where}\n{difference}" if difference else None


@pytest.mark.timeout(README_TIMEOUT_S)
def test_the_readme_runs_as_written(lab: Lab) -> None:
    failures: list[str] = []
    ran = 0
    for block in readme_blocks():
        for step in readme_lab.steps(block):
            where = f"README line {step.line_no}: {step.command.splitlines()[0][:120]}"
            started = time.monotonic()
            while True:
                failure = _check_step(lab, step, where)
                if not (failure and step.eventually):
                    break
                if time.monotonic() - started > EVENTUALLY_S:
                    failure = f"{failure}\n  (still so after {EVENTUALLY_S:.0f} s)"
                    break
                time.sleep(0.5)
            print(f"{time.monotonic() - started:6.1f} s  {where}")  # shown when it fails
            ran += 1
            if failure:
                failures.append(failure)
    assert ran > 0, "the README has no commands"
    assert not failures, f"{len(failures)} of {ran} README steps differ:\n\n" + "\n\n".join(
        failures
    )


# Endpoints the plain cluster of the README cannot show: they need an authorizer, and
# docs/security.md's secure lab covers them.
NEEDS_THE_SECURE_LAB = {("POST", "/v1/acls"), ("DELETE", "/v1/acls")}
_URL = re.compile(r"localhost:9092(/[^\s'\"?]*)")


def _curl_calls() -> set[tuple[str, str]]:
    """(method, path) of every curl command the README runs."""
    calls: set[tuple[str, str]] = set()
    for block in readme_blocks():
        for step in readme_lab.steps(block):
            if not step.command.startswith("curl "):
                continue
            words = step.command.split()
            if "-X" in words:
                method = words[words.index("-X") + 1]
            else:
                method = "POST" if "-d" in words else "GET"
            calls.update((method, url) for url in _URL.findall(step.command))
    return calls


def test_every_public_endpoint_has_a_curl_recipe() -> None:
    calls = _curl_calls()
    missing = []
    for method, template in sorted(ROUTES - NEEDS_THE_SECURE_LAB):
        if template.startswith("/v1/internal/"):
            continue
        pattern = re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template)) + "$")
        if not any(m == method and pattern.match(path) for m, path in calls):
            missing.append(f"{method} {template}")
    assert not missing, "endpoints without a curl line in the README: " + ", ".join(missing)


def test_only_the_test_command_and_compose_are_left_out() -> None:
    """A block left out names its reason, and is the test command (CI runs it: it runs this
    test) or compose's (they need a Docker engine); every other command runs."""
    for block in readme_blocks():
        reason = block.not_run_reason
        if reason is None:
            continue
        assert len(reason) > 10, f"README line {block.line_no}: say why it is not run"
        text = "\n".join(block.lines)
        assert "docker compose" in text or text.strip().startswith("scripts/test"), (
            f"README line {block.line_no}: only the test command and compose may be left out"
        )
    unknown = [b for b in readme_blocks() if b.language in ("", "bash", "shell", "zsh")]
    assert not unknown, (
        "blocks with commands must say console, sh or python (or text if not commands): "
        + ", ".join(f"line {b.line_no}" for b in unknown)
    )
