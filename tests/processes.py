"""Starting the tools a test interrupts with SIGINT (Ctrl+C) as a terminal would, and never
leaving one behind."""

from __future__ import annotations

import signal
import subprocess


def default_sigint() -> None:
    """``preexec_fn`` for a tool the test will interrupt: a shell without job control (a CI
    script, a background job) starts its children with SIGINT ignored, and Python then leaves
    it ignored, so the tool would never see the Ctrl+C. A terminal gives it the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kills a tool the test started if it still runs (a failed assertion or a timeout must
    not leave it behind), by its pid."""
    if process.poll() is None:
        process.kill()
        process.wait()
