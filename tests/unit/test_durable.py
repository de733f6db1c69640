"""storage.durable: a rewritten file is the old one or the whole new one, and no temporary
file is left behind, whatever step fails."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from storage.durable import atomic_write, fsync_dir, fsync_file, fsync_path


def _failing_fsync(fd: int) -> None:
    raise OSError(errno.EIO, "injected fsync failure")


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_atomic_write_applies_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    atomic_write(target, b"x", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write(tmp_path / "plain", b"x")
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o644


def test_atomic_write_failure_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_a_failed_fsync_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", _failing_fsync)
    with pytest.raises(OSError, match="injected"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_a_failed_rename_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "d"
    target.mkdir()  # a directory where the file should be: the rename over it fails
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert target.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_atomic_write_into_a_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "nope" / "f", b"x")


def test_fsync_dir_accepts_a_directory(tmp_path: Path) -> None:
    fsync_dir(tmp_path)
    fsync_dir(str(tmp_path))


def test_fsync_path_calls_the_injected_fsync(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    calls: list[int] = []
    fsync_path(tmp_path / "f", calls.append)
    fsync_path(tmp_path, calls.append)
    assert len(calls) == 2


def test_os_fsync_is_looked_up_at_each_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The power-cut tests wrap os.fsync after this module is imported: they must see the calls.
    (tmp_path / "f").write_bytes(b"x")
    monkeypatch.setattr(os, "fsync", _failing_fsync)
    with pytest.raises(OSError, match="injected"):
        fsync_file(tmp_path / "f")
    with pytest.raises(OSError, match="injected"):
        fsync_dir(tmp_path)
