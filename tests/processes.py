"""Starting the tools a test interrupts with SIGINT (Ctrl+C) as a terminal would, and never
leaving one behind."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


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


def interrupt_when_blocked(process: subprocess.Popen[bytes], deadline_s: float = 30.0) -> None:
    """Sends SIGINT once the single-threaded tool sleeps in a system call (state S).

    Python checks for signals between bytecodes and when a system call returns EINTR; a signal
    that lands after its last check but before the blocking call starts is noticed only when
    that call returns, which for a FIFO nobody writes is never. Interrupting a sleeping call
    always makes it return EINTR.
    """
    deadline = time.monotonic() + deadline_s
    stat = Path(f"/proc/{process.pid}/stat")
    # The state is the first field after the command name, which is in parentheses.
    while stat.read_text().rpartition(")")[2].split()[0] != "S":
        assert process.poll() is None, "the tool exited before it blocked"
        assert time.monotonic() < deadline, "the tool never blocked"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
