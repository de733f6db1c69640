"""Starting the tools a test interrupts with SIGINT (Ctrl+C) as a terminal would."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` for a tool the test will interrupt: a shell without job control (a CI
    script, a background job) starts its children with SIGINT ignored, and Python then leaves
    it ignored, so the tool would never see the Ctrl+C. A terminal gives it the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
