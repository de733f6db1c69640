"""The node's log never fills the disk: repeated lines are limited, the file rolls."""

from __future__ import annotations

import logging
from pathlib import Path

from server.logs import RepeatLimit, rotating_file_handler


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("server.fetcher", level, __file__, 1, msg, args, None)


def test_a_looping_message_is_limited_per_template_and_the_next_window_says_how_many() -> None:
    clock = Clock()
    limit = RepeatLimit(burst=3, interval_s=60, clock=clock)
    loop = "%s: diverges from the leader at epoch %s: truncating from %d to %d"
    passed = [limit.filter(record(loop, "idle-0", 0, 2, 2)) for _ in range(1000)]
    assert passed.count(True) == 3, "the same template with the same or other arguments"
    assert limit.filter(record("another message")), "other templates are not affected"
    assert limit.filter(record(loop, "idle-0", 0, 2, 2, level=logging.WARNING))

    clock.now = 61
    first = record(loop, "idle-0", 0, 2, 2)
    assert limit.filter(first)
    assert first.getMessage() == (
        "idle-0: diverges from the leader at epoch 0: truncating from 2 to 2 "
        "[997 more like this were not logged in 60 s]"
    )


def test_the_log_file_rolls_at_its_size_and_keeps_a_bounded_number_of_old_files(
    tmp_path: Path,
) -> None:
    path = tmp_path / "node.log"
    handler = rotating_file_handler(path, max_bytes=1000, backups=2)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for i in range(200):
        handler.emit(record("line %d %s", i, "x" * 40))
    handler.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["node.log", "node.log.1", "node.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    assert "line 199" in path.read_text()
