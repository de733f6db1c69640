"""The node's own log: a size-rotated file, and a limit on lines that repeat.

One looping message must never fill the disk (issue 10: a follower stuck in a truncation loop
wrote 2 GB in 30 minutes). Two guards, as Kafka's log4j setup has a rolling file:

- :class:`RepeatLimit`, a filter: a message template (the format string, before its
  arguments) logged more than ``burst`` times within ``interval_s`` is dropped until the
  window ends; the first line after that says how many were not logged.
- :func:`rotating_file_handler`: ``kraft-server-start --log-file F`` writes F and keeps
  ``LOG_FILE_BACKUPS`` older files (F.1, F.2, ...) of ``LOG_FILE_BYTES`` each.
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from server import limits


@dataclass
class _Window:
    start: float
    count: int
    dropped: int = 0


class RepeatLimit(logging.Filter):
    """Lets at most ``burst`` records of one template through per ``interval_s``."""

    def __init__(
        self,
        burst: int = limits.LOG_REPEAT_BURST,
        interval_s: float = limits.LOG_REPEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._burst = burst
        self._interval_s = interval_s
        self._clock = clock
        self._windows: dict[tuple[str, int, str], _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window.start >= self._interval_s:
            if len(self._windows) >= limits.LOG_REPEAT_TEMPLATES_MAX:
                self._windows = {
                    k: w for k, w in self._windows.items() if now - w.start < self._interval_s
                }
            self._windows[key] = _Window(now, 1)
            if window is not None and window.dropped:
                record.msg = (
                    f"{record.msg} [{window.dropped} more like this were not logged in "
                    f"{self._interval_s:.0f} s]"
                )
            return True
        if window.count < self._burst:
            window.count += 1
            return True
        window.dropped += 1
        return False


def rotating_file_handler(
    path: Path,
    max_bytes: int = limits.LOG_FILE_BYTES,
    backups: int = limits.LOG_FILE_BACKUPS,
) -> logging.Handler:
    """A handler that appends to ``path`` and rolls it to ``path.1`` ... at ``max_bytes``."""
    return logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )


def configure(log_file: Path | None) -> None:
    """The node's logging: to ``log_file`` (rotated) or to stderr, repeats limited either way."""
    handler = logging.StreamHandler() if log_file is None else rotating_file_handler(log_file)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(message)s (%(name)s)"))
    handler.addFilter(RepeatLimit())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
