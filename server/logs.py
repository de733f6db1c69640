"""The node's own log: one line format naming the node, a level, a size-rotated file, and a
limit on lines that repeat.

Every line names the node that wrote it, as Kafka's name their server (``[KafkaRaftServer
nodeId=1]``), so the lines of several nodes can be read together (``cat node-*/node.log``,
a collector fed by three containers)::

    [2026-12-06 09:01:02,345] INFO [node 2] serving HTTP on ... (kraft.server)
     time (local, ms)         level  who    message              logger

The node's id is known once its properties are read; a line logged before that (a
configuration refused at start) says ``[node ?]``, so every line keeps one shape. The id is
part of the format string, set once: naming the node costs nothing per line.

The level is ``log.level`` in the properties file or ``kraft-server-start --log-level``
(which wins): ERROR, WARN (Kafka's name) or WARNING, INFO (the default), DEBUG, in any case.
Log4j's TRACE, FATAL, OFF and ALL are not Python's levels and are refused with the rest.

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


# The names log.level and --log-level accept (upper-cased first), in the order a help text
# lists them. WARN is Kafka's (log4j's) name for Python's WARNING.
LEVELS: dict[str, int] = {
    "ERROR": logging.ERROR,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}
DEFAULT_LEVEL = logging.INFO


def parse_level(text: str) -> int:
    """The logging level ``text`` names (case and surrounding blanks ignored); raises
    ValueError naming the allowed values for anything else."""
    level = LEVELS.get(text.strip().upper())
    if level is None:
        raise ValueError(f"expected one of {', '.join(LEVELS)} (any case), got {text!r}")
    return level


def line_format(node_id: int | None) -> str:
    """The format string of every line: time, level, ``[node <id>]`` (``[node ?]`` before the
    id is known), message, logger."""
    who = "?" if node_id is None else str(int(node_id))  # int(): no stray % in the format
    return f"[%(asctime)s] %(levelname)s [node {who}] %(message)s (%(name)s)"


def configure(
    log_file: Path | None, level: int = DEFAULT_LEVEL, node_id: int | None = None
) -> None:
    """The node's logging: to ``log_file`` (rotated) or to stderr, repeats limited either way,
    lines at ``level`` and above, in :func:`line_format`'s shape. Replaces any handler the
    root logger had; call :func:`identify` once the node's id is known."""
    handler = logging.StreamHandler() if log_file is None else rotating_file_handler(log_file)
    handler.setFormatter(logging.Formatter(line_format(node_id)))
    handler.addFilter(RepeatLimit())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def identify(node_id: int, level: int) -> None:
    """From now on, every line :func:`configure`'s handler writes names ``node_id``, and lines
    below ``level`` are not written (the same handler and file: nothing is reopened)."""
    formatter = logging.Formatter(line_format(node_id))
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setFormatter(formatter)
    root.setLevel(level)
