"""A clean that raises an unexpected error (a bug the log's data meets, in every replica of
it) marks the partition uncleanable, as Kafka's LogCleaningException does, instead of ending
the cleaner's task and with it the node: the log is as before (no .cleaned file left), the
other logs are still cleaned, and no checkpoint moves. Real logs in tmp_path; no sockets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import server.log_cleaner as log_cleaner_module
from server.clock import ManualClock
from storage.clean_map import OffsetMap
from storage.cleaner import clean_log
from storage.log import Log
from tests.unit.cleaner_logs import CONFIG, NOW, FakePartition, driver, write


def test_an_unexpected_error_marks_the_partition_uncleanable_and_the_cleaner_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bad, good = Log.open(tmp_path / "t-0", CONFIG), Log.open(tmp_path / "u-0", CONFIG)
    try:
        write(bad, 300)  # the dirtier: picked first
        write(good, 200)
        before = sorted(p.name for p in bad.directory.iterdir())
        cleaner = driver(
            tmp_path, [FakePartition(bad), FakePartition(good, topic="u")], ManualClock(NOW)
        )

        def buggy(directory: Path, *args: Any, **kwargs: Any) -> Any:
            if directory == bad.directory:
                raise NameError("name 'walk_records' is not defined")
            return clean_log(directory, *args, **kwargs)

        monkeypatch.setattr(log_cleaner_module, "clean_log", buggy)
        picked = cleaner.pick()
        assert picked is not None and picked.partition.topic == "t"
        with caplog.at_level(logging.ERROR, logger="server.log_cleaner"):
            assert cleaner.clean(picked, OffsetMap()) is None
        assert "unexpected error cleaning t-0" in caplog.text
        assert "NameError" in caplog.text  # the traceback is logged
        assert cleaner.uncleanable == {("t", 0): "NameError: name 'walk_records' is not defined"}
        assert cleaner.checkpoint(("t", 0)) is None
        assert sorted(p.name for p in bad.directory.iterdir()) == before

        picked = cleaner.pick()
        assert picked is not None and picked.partition.topic == "u"
        assert cleaner.clean(picked, OffsetMap()) is not None
        assert cleaner.pick() is None  # t-0 is not picked again until the node restarts
    finally:
        bad.close()
        good.close()
